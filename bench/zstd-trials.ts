/**
 * Counts the zstd calls of the chunk encode (chooseCodecs + encodeChoices, the default
 * goal, as bench/encode-ab.ts runs them) on bench/speed.ts's 64 MiB sets: node:zlib's
 * zstdCompressSync is wrapped (syncBuiltinESMExports, so the project's imports see the
 * wrapper; nothing in src/ is changed) and every call is put in a row by where it came
 * from (its stack): auto's sample of a candidate or the kept chunk's encode, and in HIER
 * the windows check, the level check, the probe or the whole-stream trial (its level and
 * stream size). Per row: calls, bytes in, CPU ms (process.cpuUsage around the call), and
 * for whole-stream trials how often zstd's frame came out under the stream's best order-0
 * coding (min of stored and Huffman with its codebook, huffmanSizeFromHistogram) and by
 * how much. One untimed pass, then five plain passes (the encode's CPU: their median) and five counted passes (each row's CPU: their median).
 *
 *   npx node bench/zstd-trials.ts [--size 64M] [--out FILE]
 *
 * The report goes to bench/results/zstd-trials.md unless --out says otherwise.
 */

import "./lib/help.ts";
import { createRequire, syncBuiltinESMExports } from "node:module";
import { join } from "node:path";
import { codeLine, root, writeReport } from "./lib/commands.ts";
import { speedF32Parts, tile, toBf16, toF16 } from "./lib/derived.ts";
import {
  argValue,
  contentionNote,
  cpuWaitMicros,
  fmt,
  machineLines,
  parseSizeArg,
  table,
} from "./lib/report.ts";

const size = parseSizeArg(argValue("--size") ?? "64M");
const outFile = argValue("--out") ?? join(root, "bench", "results", "zstd-trials.md");
const CHUNK = 512 << 10;

interface Row {
  calls: number;
  bytesIn: number;
  cpuUs: number;
  /** Whole-stream trials only: frames under the stream's best order-0 coding, and the bytes saved. */
  wins: number;
  saved: number;
  /** zstd's frame over the best order-0 coding: under 0.97, within 3%, 1.03 to 1.10, over 1.10. */
  buckets: [number, number, number, number];
}

const zlib = createRequire(import.meta.url)("node:zlib") as typeof import("node:zlib");
const original = zlib.zstdCompressSync;
const rows = new Map<string, Row>();
let counting = false;
let bestOrder0: ((bytes: Uint8Array) => number) | undefined;
Error.stackTraceLimit = 40;

const SITES = ["zstdWindows", "levelPays", "zstdWhole", "codeStream"] as const;

function siteOf(stack: string, level: number, n: number): string {
  const where = stack.includes("at sampleSize ") ? "sample" : "chunk";
  const hier = SITES.find((f) => stack.includes(`at ${f} `));
  if (hier === undefined) return `${where}: zstd record (level ${level})`;
  if (hier === "codeStream") return `${where}: HIER 16 KiB probe`;
  if (hier !== "zstdWhole") return `${where}: HIER ${hier}`;
  const span = n < 64 << 10 ? "< 64 KiB" : n < 128 << 10 ? "64-128 KiB" : ">= 128 KiB";
  return `${where}: HIER whole, level ${level}, ${span}`;
}

const wrapped = ((bytes: Uint8Array, options: { params: Record<number, number> }) => {
  if (!counting) return original(bytes, options as never);
  const stack = new Error().stack ?? "";
  const level = options.params[zlib.constants.ZSTD_c_compressionLevel];
  const at = process.cpuUsage();
  const out = original(bytes, options as never);
  const spent = process.cpuUsage(at);
  const key = siteOf(stack, level, bytes.length);
  const row = rows.get(key) ?? { calls: 0, bytesIn: 0, cpuUs: 0, wins: 0, saved: 0, buckets: [0, 0, 0, 0] };
  row.calls++;
  row.bytesIn += bytes.length;
  row.cpuUs += spent.user + spent.system;
  if (key.includes("whole") && bestOrder0 !== undefined) {
    const best = bestOrder0(bytes);
    if (out.length < best) {
      row.wins++;
      row.saved += best - out.length;
    }
    const r = out.length / best;
    row.buckets[r < 0.97 ? 0 : r < 1.03 ? 1 : r < 1.1 ? 2 : 3]++;
  }
  rows.set(key, row);
  return out;
}) as typeof original;
zlib.zstdCompressSync = wrapped;
syncBuiltinESMExports();

const { histogram, huffmanSizeFromHistogram } = await import(
  join(root, "src", "codecs", "hier", "huffman.ts")
);
bestOrder0 = (bytes) => Math.min(bytes.length, huffmanSizeFromHistogram(histogram(bytes)));
interface Auto {
  chooseCodecs(raw: Uint8Array, dtype: string, goal: string, level: undefined, stats: object): unknown[];
  encodeChoices(
    raw: Uint8Array,
    dtype: string,
    choices: unknown[],
  ): { chunk: { header: Uint8Array; payload: Uint8Array } };
}
const auto = (await import(join(root, "src", "engine", "auto.ts"))) as Auto;

const started = performance.now();
const waitAtStart = cpuWaitMicros();
const f32 = await speedF32Parts();
const sections: string[] = [];
for (const dtype of ["BF16", "F16", "F32"] as const) {
  const width = dtype === "F32" ? 4 : 2;
  const parts = dtype === "F32" ? f32 : f32.map(dtype === "BF16" ? toBf16 : toF16);
  const data = tile(parts, Math.floor(size / width) * width);
  const pass = () => {
    const stats = { choiceMs: 0 };
    let stored = 0;
    const at = process.cpuUsage();
    for (let i = 0; i < data.length; i += CHUNK) {
      const raw = data.subarray(i, Math.min(data.length, i + CHUNK));
      const choices = auto.chooseCodecs(raw, dtype, "balanced", undefined, stats);
      const { chunk } = auto.encodeChoices(raw, dtype, choices);
      stored += chunk.header.length + chunk.payload.length;
    }
    const cpu = process.cpuUsage(at);
    return { cpu: (cpu.user + cpu.system) / 1000, stored };
  };
  pass();
  const plains = [pass(), pass(), pass(), pass(), pass()].sort((a, b) => a.cpu - b.cpu);
  const plain = plains[2];
  // Five counted passes: the calls and sizes repeat exactly, each row's CPU is their median.
  const cpuByRow = new Map<string, number[]>();
  for (let k = 0; k < 5; k++) {
    rows.clear();
    counting = true;
    pass();
    counting = false;
    for (const [key, row] of rows) cpuByRow.set(key, [...(cpuByRow.get(key) ?? []), row.cpuUs]);
  }
  for (const [key, row] of rows) row.cpuUs = (cpuByRow.get(key) ?? []).sort((a, b) => a - b)[2] ?? row.cpuUs;
  let zstdUs = 0;
  let calls = 0;
  const lines = [...rows].sort(([a], [b]) => a.localeCompare(b));
  for (const [, row] of lines) {
    zstdUs += row.cpuUs;
    calls += row.calls;
  }
  const name = dtype === "F32" ? "FP32 real" : `${dtype === "F16" ? "FP16" : dtype} real-derived`;
  console.log(
    `${name}: encode ${fmt(plain.cpu, 0)} ms CPU, zstd ${fmt(zstdUs / 1000, 0)} ms in ${calls} calls`,
  );
  sections.push(
    `## ${name} (${data.length} bytes, ${plain.stored} stored)`,
    "",
    `Encode CPU (median of 5 plain passes): ${fmt(plain.cpu, 0)} ms; zstd calls (a counted pass): ${calls}, ${fmt(zstdUs / 1000, 0)} ms CPU (${fmt((100 * zstdUs) / 1000 / plain.cpu, 0)}% of the plain passes' median).`,
    "",
    table(
      [
        "call site",
        "calls",
        "MB in",
        "CPU ms",
        "us a call",
        "zstd smaller",
        "bytes saved",
        "<0.97 / ±3% / ≤1.10 / >1.10",
      ],
      lines.map(([key, row]) => [
        key,
        String(row.calls),
        fmt(row.bytesIn / 1e6, 1),
        fmt(row.cpuUs / 1000, 1),
        fmt(row.cpuUs / row.calls, 0),
        key.includes("whole") ? String(row.wins) : "",
        key.includes("whole") ? String(row.saved) : "",
        key.includes("whole") ? row.buckets.join(" / ") : "",
      ]),
    ),
    "",
  );
}

// What a call costs beyond its bytes: HIER's zstd (level 1) on four 16 KiB pieces of the
// BF16 set's high bytes (sign and exponent) one call each, against one call on the same
// 64 KiB, and a 64-byte call; CPU us per call group, medians of 5 rounds of 200.
const { zstd } = (await import(join(root, "src", "codecs", "hier", "hier.ts"))) as {
  zstd(bytes: Uint8Array, level: number): Uint8Array;
};
const bf16 = tile(f32.map(toBf16), 1 << 20);
const high = new Uint8Array(64 << 10);
for (let i = 0; i < high.length; i++) high[i] = bf16[2 * i + 1];
const perCall = (work: () => void) => {
  const rounds: number[] = [];
  for (let r = 0; r < 5; r++) {
    const at = process.cpuUsage();
    for (let k = 0; k < 200; k++) work();
    const spent = process.cpuUsage(at);
    rounds.push((spent.user + spent.system) / 200);
  }
  return rounds.sort((a, b) => a - b)[2];
};
const piece = 16 << 10;
const fourCalls = perCall(() => {
  for (let k = 0; k < 4; k++) zstd(high.subarray(k * piece, (k + 1) * piece), 1);
});
const oneCall = perCall(() => zstd(high, 1));
const tinyCall = perCall(() => zstd(high.subarray(0, 64), 1));
console.log(
  `4 x 16 KiB ${fmt(fourCalls, 0)} us, 1 x 64 KiB ${fmt(oneCall, 0)} us, 64 B ${fmt(tinyCall, 0)} us`,
);
sections.push(
  "## What a call costs beyond its bytes",
  "",
  `HIER's zstd at level 1 on the BF16 set's first 64 KiB of high bytes (sign and exponent), CPU us (medians of 5 rounds of 200): four calls of 16 KiB ${fmt(fourCalls, 0)}, one call of the same 64 KiB ${fmt(oneCall, 0)}, one call of 64 bytes ${fmt(tinyCall, 0)}.`,
  "",
);

const elapsed = performance.now() - started;
writeReport(outFile, [
  "# zstd calls of the chunk encode, counted by call site",
  "",
  ...machineLines(`npx node bench/zstd-trials.ts --size ${argValue("--size") ?? "64M"}`),
  codeLine(),
  `- Took ${fmt(elapsed / 1000, 0)} s. ${contentionNote(waitAtStart, elapsed)}`,
  "",
  `chooseCodecs + encodeChoices (the default goal) over every ${CHUNK >> 10} KiB chunk of each set, on this thread. "sample" rows are auto's sample encodes of its candidates (HIER's fields, the byte groupings, the zstd record), "chunk" rows the whole encodes of the kept candidates. "zstd smaller" compares a whole-stream trial's frame with the stream's best order-0 coding (stored, or Huffman with its codebook); the last column buckets zstd's frame over that size. A level-3 trial after level 1 is compared with order-0 too, not with level 1's frame. CPU ms is process.cpuUsage around each call, summed over a pass (the median of five counted passes); its resolution makes it approximate.`,
  "",
  ...sections,
]);
