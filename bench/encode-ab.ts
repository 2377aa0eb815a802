/**
 * The chunk encode alone, this checkout against a baseline checkout, in one process:
 * auto's choice and the kept encode (chooseCodecs + encodeChoices, src/engine/auto.ts) of
 * every 512 KiB chunk of bench/speed.ts's 64 MiB inputs (the real F32 weights of
 * ../shared/data and the PaddleOCR ONNX files, tiled, and rounded to BF16 and FP16), on
 * the calling thread, the output written into one reused buffer. No reading, hashing,
 * CRC of the container or output copy: what HIER and auto cost, with less of the noise
 * that compress-ab.ts's whole calls carry. Rounds alternate (baseline, this) and the
 * order flips every round; CPU time is process.cpuUsage over one pass of a set.
 *
 *   npx node bench/encode-ab.ts --baseline DIR [--rounds 9] [--size 64M] [--out FILE]
 *
 * DIR is another checkout with node_modules (e.g. `git worktree add DIR main`); the
 * report goes to bench/results/encode-ab.md unless --out says otherwise.
 */

import "./lib/help.ts";
import { loadavg } from "node:os";
import { join } from "node:path";
import { codeLine, moduleAt, root, writeReport } from "./lib/commands.ts";
import { speedF32Parts, tile, toBf16, toF16 } from "./lib/derived.ts";
import {
  argValue,
  baselineArg,
  contentionNote,
  cpuWaitMicros,
  fmt,
  machineLines,
  median,
  parseSizeArg,
  table,
} from "./lib/report.ts";

const { given: baselineGiven, dir: baseline } = baselineArg("encode-ab");
const rounds = Number(argValue("--rounds") ?? 9);
const size = parseSizeArg(argValue("--size") ?? "64M");
const outFile = argValue("--out") ?? join(root, "bench", "results", "encode-ab.md");
const CHUNK = 512 << 10;

interface Auto {
  chooseCodecs(raw: Uint8Array, dtype: string, goal: string, level: undefined, stats: object): unknown[];
  encodeChoices(
    raw: Uint8Array,
    dtype: string,
    choices: unknown[],
    output?: (size: number) => Uint8Array,
  ): { chunk: { header: Uint8Array; payload: Uint8Array } };
}
const load = (dir: string) => moduleAt<Auto>(dir, "engine/auto.ts");
const sides = [
  { name: "baseline", auto: await load(baseline) },
  { name: "this", auto: await load(root) },
];

const started = performance.now();
const waitAtStart = cpuWaitMicros();
const loadAtStart = loadavg();

const f32 = await speedF32Parts();
const sets = (["BF16", "F16", "F32"] as const).map((dtype) => {
  const width = dtype === "F32" ? 4 : 2;
  const parts = dtype === "F32" ? f32 : f32.map(dtype === "BF16" ? toBf16 : toF16);
  return { dtype, data: tile(parts, Math.floor(size / width) * width) };
});

const out = new Uint8Array(CHUNK + 4096);
const output = (n: number) => (n <= out.length ? out.subarray(0, n) : new Uint8Array(n));

/** One pass over a set: CPU ms and the stored bytes (record headers and payloads). */
function pass(auto: Auto, dtype: string, data: Uint8Array): { cpu: number; stored: number } {
  const stats = { choiceMs: 0 };
  let stored = 0;
  const at = process.cpuUsage();
  for (let i = 0; i < data.length; i += CHUNK) {
    const raw = data.subarray(i, Math.min(data.length, i + CHUNK));
    const choices = auto.chooseCodecs(raw, dtype, "balanced", undefined, stats);
    const { chunk } = auto.encodeChoices(raw, dtype, choices, output);
    stored += chunk.header.length + chunk.payload.length;
  }
  const cpu = process.cpuUsage(at);
  return { cpu: (cpu.user + cpu.system) / 1000, stored };
}

const rows: string[][] = [];
for (const { dtype, data } of sets) {
  const cpu: number[][] = [[], []];
  const stored = [0, 0];
  const ratios: number[] = [];
  for (let r = -1; r < rounds; r++) {
    const order = r % 2 === 0 ? [0, 1] : [1, 0];
    const round = [0, 0];
    for (const s of order) {
      const result = pass(sides[s].auto, dtype, data);
      stored[s] = result.stored;
      round[s] = result.cpu;
    }
    // The first round compiles the code: not counted.
    if (r < 0) continue;
    cpu[0].push(round[0]);
    cpu[1].push(round[1]);
    ratios.push(round[0] / round[1]);
  }
  const [b, t] = [median(cpu[0]), median(cpu[1])];
  console.log(`${dtype}: CPU ms ${fmt(b, 0)} / ${fmt(t, 0)}, stored ${stored[0]} / ${stored[1]}`);
  rows.push([
    `${dtype === "F32" ? "FP32 real" : `${dtype === "F16" ? "FP16" : dtype} real-derived`}`,
    String(data.length),
    `${stored[0]} / ${stored[1]}`,
    `${fmt(b, 0)} / ${fmt(t, 0)}`,
    `${fmt(Math.min(...cpu[0]), 0)} / ${fmt(Math.min(...cpu[1]), 0)}`,
    `${fmt(median(ratios), 2)}x`,
    `${fmt(data.length / 1e6 / (b / 1000), 0)} / ${fmt(data.length / 1e6 / (t / 1000), 0)}`,
  ]);
}

const elapsed = performance.now() - started;
writeReport(outFile, [
  "# Chunk encode: this checkout against a baseline, in process, same run",
  "",
  ...machineLines(
    `npx node bench/encode-ab.ts --baseline DIR --rounds ${rounds} --size ${argValue("--size") ?? "64M"}`,
  ),
  codeLine(),
  `- Baseline: ${baselineGiven}`,
  `- Load average (1, 5, 15 min) at start: ${loadAtStart.map((v) => fmt(v, 2)).join(", ")}; at end: ${loadavg()
    .map((v) => fmt(v, 2))
    .join(", ")}`,
  `- Took ${fmt(elapsed / 1000, 0)} s. ${contentionNote(waitAtStart, elapsed)}`,
  "",
  `chooseCodecs + encodeChoices (the default goal) over every ${CHUNK >> 10} KiB chunk of each set, on this thread, from the baseline's src/ and this checkout's; one untimed round, then ${rounds} rounds, each running both (the order flips every round). CPU ms is process.cpuUsage over one pass (medians; min beside them); the speed-up is the median of the per-round ratios, baseline over this. MB/s is the set's bytes over the median CPU time.`,
  "",
  table(
    [
      "input",
      "bytes",
      "stored baseline / this",
      "CPU ms baseline / this",
      "min CPU ms",
      "speed-up",
      "MB/s of CPU baseline / this",
    ],
    rows,
  ),
  "",
]);
