/**
 * The long-range matcher's anchor scan (LongMatcher.scan, src/engine/longwriter.ts), timed
 * inside compress() in memory on one thread, against another checkout's: the wall time
 * around each scan call, summed per compression, the two checkouts' compressions
 * interleaved (the first of each pair alternating). The figure is the median of the
 * pairs' ratios (this checkout / baseline) with a 95% bootstrap interval. Both checkouts
 * must write the same bytes (checked).
 *
 * usage: npx node bench/long-scan.ts --baseline DIR [--pairs N] [--out FILE]
 */
import "./lib/help.ts";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { LongMatcher } from "../src/engine/longwriter.ts";
import { compress } from "../src/index.ts";
import { generate } from "../src/tools/index.ts";
import { codeLine, root, writeReport } from "./lib/commands.ts";
import { safetensors, safetensorsData, toBf16 } from "./lib/derived.ts";
import {
  argValue,
  baselineArg,
  bootstrapMedian,
  contentionNote,
  cpuWaitMicros,
  fmt,
  machineLines,
  median,
  table,
} from "./lib/report.ts";

const baseline = baselineArg("long-scan", "a built checkout of main");
const pairs = Number(argValue("--pairs") ?? 40);
const outFile = argValue("--out") ?? join(root, "bench", "results", "long-scan.md");
type Compress = typeof compress;
type Scan = (raw: Uint8Array, rawOffset: number) => void;
const other = {
  compress: (
    (await import(pathToFileURL(join(baseline.dir, "src", "index.ts")).href)) as { compress: Compress }
  ).compress,
  proto: (
    (await import(pathToFileURL(join(baseline.dir, "src", "engine", "longwriter.ts")).href)) as {
      LongMatcher: { prototype: { scan: Scan } };
    }
  ).LongMatcher.prototype,
};
const mine = { compress, proto: LongMatcher.prototype as unknown as { scan: Scan } };

const started = performance.now();
const waitStart = cpuWaitMicros();
const measuredCode = codeLine();
const shared = join(root, "..", "shared", "data");
const { readdirSync } = await import("node:fs");
const names = readdirSync(shared)
  .filter((n) => n.endsWith(".safetensors"))
  .sort();
const inputs = [
  {
    label: "mmh gen BF16 32 MiB (synthetic)",
    bytes: generate({ kind: "safetensors", dtype: "BF16", size: 32 << 20, seed: 1 }),
  },
  {
    label: "../shared/data tensors as BF16 (real-derived)",
    bytes: safetensors("BF16", toBf16(Buffer.concat(names.map((n) => safetensorsData(join(shared, n)))))),
  },
];

/** One compression with every scan call timed: the bytes written and the scan's milliseconds. */
async function scanMs(side: typeof mine, bytes: Uint8Array): Promise<{ out: Uint8Array; ms: number }> {
  const original = side.proto.scan;
  let ms = 0;
  side.proto.scan = function (this: unknown, raw: Uint8Array, rawOffset: number) {
    const t = performance.now();
    original.call(this, raw, rawOffset);
    ms += performance.now() - t;
  };
  try {
    return { out: await side.compress(bytes, { threads: 1 }), ms };
  } finally {
    side.proto.scan = original;
  }
}

const rows: string[][] = [];
for (const { label, bytes } of inputs) {
  const a = await scanMs(other, bytes);
  const b = await scanMs(mine, bytes);
  if (!Buffer.from(a.out).equals(Buffer.from(b.out))) throw new Error(`${label}: the outputs differ`);
  const msA: number[] = [];
  const msB: number[] = [];
  const ratios: number[] = [];
  for (let i = 0; i < pairs; i++) {
    const first = i % 2 === 0;
    const x = first ? await scanMs(other, bytes) : undefined;
    const y = await scanMs(mine, bytes);
    const z = x ?? (await scanMs(other, bytes));
    msA.push(z.ms);
    msB.push(y.ms);
    ratios.push(y.ms / z.ms);
  }
  const { median: m, lo, hi } = bootstrapMedian(ratios);
  console.log(
    `${label}: scan ${fmt(median(msA), 2)} / ${fmt(median(msB), 2)} ms, ratio ${fmt(m, 3)} [${fmt(lo, 3)}, ${fmt(hi, 3)}]`,
  );
  rows.push([
    label,
    String(bytes.length),
    String(pairs),
    `${fmt(median(msA), 2)} / ${fmt(median(msB), 2)}`,
    `**${fmt(m, 3)}** [${fmt(lo, 3)}, ${fmt(hi, 3)}]`,
  ]);
}
const elapsed = performance.now() - started;
writeReport(outFile, [
  "# The long-range matcher's anchor scan against a baseline",
  "",
  ...machineLines(`npx node bench/long-scan.ts --baseline ${baseline.given} --pairs ${pairs}`),
  `${measuredCode}; baseline: ${baseline.given}`,
  `- Took ${fmt(elapsed / 1000)} s. ${contentionNote(waitStart, elapsed)}`,
  "",
  "compress() in memory, one thread, the default goal; the wall time around each LongMatcher.scan call, summed per compression (A: the baseline, B: this checkout), interleaved pairs; the figure is the median of the pairs' ratios B / A with its 95% bootstrap interval. Both write the same bytes (checked).",
  "",
  table(["input", "bytes", "pairs", "scan ms per compression A / B", "B / A [95% interval]"], rows),
  "",
]);
