/**
 * The model formats MMH used to code as raw bytes, now read as tensors: Keras HDF5 and
 * legacy ggml. Files are built here from the real F32 weights in ../shared/data:
 *
 *   - keras-f32.h5, keras-f16.h5: written by Debian's python3-h5py in Keras's layout
 *     (model_weights/<layer>/<layer>/<weight>:0, attributes layer_names and weight_names,
 *     libver earliest as Keras writes), every weight float32, or float16;
 *   - rwkv-q5_1.bin: rwkv.cpp's ggmf v101, 2-D weights whose rows are a multiple of 32
 *     quantised to Q5_1 (the other tensors F32, as rwkv.cpp's quantiser leaves them);
 *   - ggjt-q4_0.bin, ggjt-f16.bin: llama.cpp's ggjt v3 (a 256-token vocabulary, data
 *     aligned to 32), Q4_0 in the same way, or every tensor F16.
 *
 * Quantisation is src/tools/quant.ts's, written from ggml's reference quantisers.
 *
 * Each file is compressed in process by compress() with default options and with
 * goal "ratio" (the bytes `mmh FILE` and `mmh --goal ratio FILE` write), and so is its
 * "before" twin: the same bytes with the first byte changed, so that no recogniser claims
 * it and it takes the raw path (segmented by detection) every such file took before these
 * recognisers. Every output is decoded and compared. Baselines: the zstd CLI at -3 and -19,
 * and byte grouping (the file cut into 2 or 4 byte planes, byte i to plane i mod n, each
 * plane coded by node:zlib zstd -3). Speed: the CPU time of default compression with
 * threads 1, the twin and the file interleaved, 5 runs each, as a ratio.
 *
 *   npx node bench/formats-raw.ts           writes bench/results/formats-raw.md
 *   npx node bench/formats-raw.ts --quick   one file of each format, writes nothing
 *
 * Needs /usr/bin/python3 with h5py and numpy (Debian's python3-h5py), and zstd.
 */

import "./lib/help.ts";
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { constants, zstdCompressSync } from "node:zlib";
import { bufferSource } from "../src/common/source.ts";
import { MmhReader } from "../src/engine/reader.ts";
import { recognise } from "../src/formats/index.ts";
import { compress, decompress } from "../src/index.ts";
import { type Quantise, q4_0, q5_1, toHalf } from "../src/tools/quant.ts";
import { ByteWriter } from "../test/support-gguf.ts";
import { codeLine, output, writeReport } from "./lib/commands.ts";
import { bytePlanes } from "./lib/derived.ts";
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

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");
const quick = process.argv.includes("--quick");
const outFile = argValue("--out") ?? (quick ? undefined : join(here, "results", "formats-raw.md"));
const dataDir = join(root, "..", "shared", "data");
const workDir = join(root, ".bench-data", "formats-raw");
const PYTHON = "/usr/bin/python3";

const started = performance.now();
const codeAtStart = codeLine();
const loadAtStart = loadavg();
const waitAtStart = cpuWaitMicros();

interface Weight {
  model: string;
  name: string;
  shape: number[];
  values: Float32Array;
}

/** Every F32 tensor of the safetensors files in ../shared/data. */
function realWeights(): Weight[] {
  const out: Weight[] = [];
  for (const file of readdirSync(dataDir)
    .filter((f) => f.endsWith(".safetensors"))
    .sort()) {
    const data = readFileSync(join(dataDir, file));
    const length = Number(data.readBigUInt64LE(0));
    const header = JSON.parse(data.subarray(8, 8 + length).toString("utf8")) as Record<
      string,
      { dtype: string; shape: number[]; data_offsets: [number, number] }
    >;
    const model = file.replace(/_.*$/, "").replace(/[^a-z0-9]+/gi, "_");
    for (const [name, t] of Object.entries(header)) {
      if (name === "__metadata__" || t.dtype !== "F32") continue;
      const [a, b] = t.data_offsets;
      const bytes = data.subarray(8 + length + a, 8 + length + b);
      const values = new Float32Array(bytes.length / 4);
      for (let i = 0; i < values.length; i++) values[i] = bytes.readFloatLE(i * 4);
      out.push({ model, name, shape: t.shape, values });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Writers

function kerasH5(weights: Weight[], dtype: "float32" | "float16", path: string): void {
  const dir = join(workDir, "h5-input");
  mkdirSync(dir, { recursive: true });
  const manifest = weights.map((w, i) => {
    const file = join(dir, `${i}.f32`);
    writeFileSync(file, Buffer.from(w.values.buffer, w.values.byteOffset, w.values.byteLength));
    // Keras names a layer's weights <layer>/<weight>:0; a layer here is a model's tensor path.
    const layer = `${w.model}.${w.name.replace(/\.(weight|bias)$/, "")}`.replace(/\//g, ".");
    return { file, layer, weight: `${/\.bias$/.test(w.name) ? "bias" : "kernel"}:0`, shape: w.shape };
  });
  const script = `
import json, sys, h5py, numpy as np
manifest = json.load(open(sys.argv[1]))
with h5py.File(sys.argv[2], "w") as f:
    f.attrs["keras_version"] = "2.11.0"
    f.attrs["backend"] = "tensorflow"
    mw = f.create_group("model_weights")
    layers = []
    names = {}
    for m in manifest:
        if m["layer"] not in mw:
            layers.append(m["layer"])
            mw.create_group(m["layer"]).create_group(m["layer"])
        g = mw[m["layer"]][m["layer"]]
        g.create_dataset(m["weight"], data=np.fromfile(m["file"], "<f4").reshape(m["shape"]).astype(sys.argv[3]))
        names.setdefault(m["layer"], []).append((m["layer"] + "/" + m["weight"]).encode())
    for layer, weight_names in names.items():
        mw[layer].attrs["weight_names"] = weight_names
    mw.attrs["layer_names"] = [n.encode() for n in layers]
`;
  writeFileSync(join(dir, "manifest.json"), JSON.stringify(manifest));
  execFileSync(PYTHON, ["-c", script, join(dir, "manifest.json"), path, dtype]);
}

/** ggml data of one tensor: Q (when its rows allow) or F32 / F16. */
function ggmlData(
  w: Weight,
  kind: "Q5_1" | "Q4_0" | "F16",
): { type: "F32" | "F16" | "Q5_1" | "Q4_0"; data: Buffer } {
  const row = w.shape.at(-1) ?? 1;
  if (kind === "F16") {
    const out = Buffer.alloc(w.values.length * 2);
    for (let i = 0; i < w.values.length; i++) out.writeUInt16LE(toHalf(w.values[i]), i * 2);
    return { type: "F16", data: out };
  }
  if (w.shape.length !== 2 || row % 32 !== 0) {
    return { type: "F32", data: Buffer.from(w.values.buffer, w.values.byteOffset, w.values.byteLength) };
  }
  const [quantise, size]: [Quantise, number] = kind === "Q5_1" ? [q5_1, 24] : [q4_0, 18];
  const out = Buffer.alloc((w.values.length / 32) * size);
  for (let b = 0; b < w.values.length / 32; b++) quantise(w.values, b * 32, out, b * size);
  return { type: kind, data: out };
}

/** rwkv.cpp ggmf v101 (its type numbers: F32 0, F16 1, Q4_0 2, Q5_1 8). */
function rwkvFile(weights: Weight[], kind: "Q5_1"): Buffer {
  const ids = { F32: 0, F16: 1, Q4_0: 2, Q5_1: 8 };
  const w = new ByteWriter().u32(0x67676d66).u32(101);
  for (const h of [50277, 768, 12, kind === "Q5_1" ? 8 : 1]) w.u32(h);
  for (const t of weights) {
    const { type, data } = ggmlData(t, kind);
    const name = Buffer.from(`${t.model}.${t.name}`);
    w.u32(t.shape.length).u32(name.length).u32(ids[type]);
    for (const d of [...t.shape].reverse()) w.u32(d);
    w.raw(name).raw(data);
  }
  return w.bytes();
}

/** llama.cpp ggjt v3 (ggml type numbers: F32 0, F16 1, Q4_0 2, Q5_1 7). */
function ggjtFile(weights: Weight[], kind: "Q4_0" | "F16"): Buffer {
  const ids = { F32: 0, F16: 1, Q4_0: 2, Q5_1: 7 };
  const w = new ByteWriter().u32(0x67676a74).u32(3);
  for (const h of [256, 768, 256, 12, 12, 64, kind === "Q4_0" ? 2 : 1]) w.u32(h);
  for (let i = 0; i < 256; i++) {
    const token = Buffer.from(i < 3 ? ["<unk>", "<s>", "</s>"][i] : `tok${i}`);
    const score = Buffer.alloc(4);
    score.writeFloatLE(-i);
    w.u32(token.length).raw(token).raw(score);
  }
  for (const t of weights) {
    const { type, data } = ggmlData(t, kind);
    const name = Buffer.from(`${t.model}.${t.name}`);
    w.u32(t.shape.length).u32(name.length).u32(ids[type]);
    for (const d of [...t.shape].reverse()) w.u32(d);
    w.raw(name).pad(32).raw(data);
  }
  return w.bytes();
}

// ---------------------------------------------------------------------------------------
// Measuring

function planesZstd3(data: Buffer, n: number): number {
  return bytePlanes(data, n).reduce(
    (total, plane) =>
      total + zstdCompressSync(plane, { params: { [constants.ZSTD_c_compressionLevel]: 3 } }).length,
    0,
  );
}

async function mmhSize(data: Buffer, goal: "balanced" | "ratio"): Promise<number> {
  const packed = Buffer.from(await compress(data, { goal }));
  const back = Buffer.from(await decompress(packed));
  if (!back.equals(data)) throw new Error("round trip failed");
  return packed.length;
}

/** Chunks in the default output. */
async function chunkCount(data: Buffer): Promise<number> {
  const reader = await MmhReader.open(bufferSource(await compress(data)));
  try {
    return reader.chunks.length;
  } finally {
    await reader.close();
  }
}

interface Row {
  file: string;
  what: string;
  bytes: number;
  format: string;
  tensors: number;
  typedShare: number;
  before: { def: number; ratio: number };
  after: { def: number; ratio: number };
  z3: number;
  z19: number;
  g2: number;
  g4: number;
  speed: number;
  cpu: { before: number; after: number };
  chunks: { before: number; after: number };
}

async function measure(file: string, what: string, data: Buffer): Promise<Row> {
  writeFileSync(join(workDir, file), data);
  const twin = Buffer.from(data);
  twin[0] ^= 1;
  const recognised = await recognise(bufferSource(data));
  const typed = recognised.regions.filter((r) => r.kind === "tensor").reduce((a, r) => a + r.length, 0);
  const beforeRaw = await recognise(bufferSource(twin));
  if (beforeRaw.format !== "raw") throw new Error(`${file}: the twin is still ${beforeRaw.format}`);
  const before = { def: await mmhSize(twin, "balanced"), ratio: await mmhSize(twin, "ratio") };
  const after = { def: await mmhSize(data, "balanced"), ratio: await mmhSize(data, "ratio") };
  const z3 = output("zstd", ["-3", "-q", "-c", join(workDir, file)]).length;
  const z19 = output("zstd", ["-19", "-q", "-c", join(workDir, file)]).length;
  // Speed: CPU time of default compression on the calling thread (threads 1), the twin and
  // the file interleaved, 5 runs each: CPU time, unlike wall time, hardly moves with the
  // other work on a shared machine.
  const tBefore: number[] = [];
  const tAfter: number[] = [];
  for (let i = 0; i < 5; i++) {
    for (const [bytes, times] of [
      [twin, tBefore],
      [data, tAfter],
    ] as const) {
      const usage = process.cpuUsage();
      await compress(bytes, { threads: 1 });
      const spent = process.cpuUsage(usage);
      times.push((spent.user + spent.system) / 1000);
    }
  }
  return {
    file,
    what,
    bytes: data.length,
    format: recognised.format,
    tensors: recognised.tensors.length,
    typedShare: typed / data.length,
    before,
    after,
    z3,
    z19,
    g2: planesZstd3(data, 2),
    g4: planesZstd3(data, 4),
    speed: median(tAfter) / median(tBefore),
    cpu: { before: median(tBefore), after: median(tAfter) },
    chunks: { before: await chunkCount(twin), after: await chunkCount(data) },
  };
}

async function main(): Promise<void> {
  mkdirSync(workDir, { recursive: true });
  const weights = realWeights();
  const rows: Row[] = [];
  const h5 = join(workDir, "keras-f32.h5");
  kerasH5(weights, "float32", h5);
  rows.push(await measure("keras-f32.h5", "Keras HDF5, float32 (h5py, libver earliest)", readFileSync(h5)));
  if (!quick) {
    const h5f16 = join(workDir, "keras-f16.h5");
    kerasH5(weights, "float16", h5f16);
    rows.push(await measure("keras-f16.h5", "Keras HDF5, float16", readFileSync(h5f16)));
  }
  rows.push(await measure("rwkv-q5_1.bin", "rwkv.cpp ggmf v101, Q5_1", rwkvFile(weights, "Q5_1")));
  if (!quick) {
    rows.push(await measure("ggjt-q4_0.bin", "llama.cpp ggjt v3, Q4_0", ggjtFile(weights, "Q4_0")));
    rows.push(await measure("ggjt-f16.bin", "llama.cpp ggjt v3, F16", ggjtFile(weights, "F16")));
  }

  const r4 = (stored: number, original: number) => fmt(stored / original, 4);
  const best = (r: Row) => Math.min(r.z3, r.g2, r.g4);
  const lines = [
    "# Formats read as raw before: Keras HDF5 and legacy ggml",
    "",
    ...machineLines(`npx node bench/formats-raw.ts${quick ? " --quick" : ""}`),
    codeAtStart,
    `- zstd CLI: ${zstdCliVersion()}`,
    `- Load average at start: ${loadAtStart.map((v) => fmt(v, 2)).join(", ")}`,
    `- ${contentionNote(waitAtStart, performance.now() - started)}`,
    "",
    `Inputs: the F32 tensors of the safetensors files in \`../shared/data\` (${weights.length} tensors, ${weights.reduce((a, w) => a + w.values.length, 0)} weights), written into each format as the header of bench/formats-raw.ts describes. Sizes are stored / original (smaller is better). "before" is the same file with its first byte changed, so that no recogniser claims it: the raw path (segmented by detection) these formats took before. Every mmh output was decoded and compared.`,
    "",
    table(
      [
        "file",
        "bytes",
        "format (tensors, bytes in typed regions)",
        "mmh before",
        "mmh after",
        "--goal ratio before",
        "--goal ratio after",
        "zstd -3",
        "zstd -19",
        "2 planes + zstd -3",
        "4 planes + zstd -3",
        "chunks before / after",
        "compress CPU time after / before",
      ],
      rows.map((r) => [
        `${r.file} (${r.what})`,
        String(r.bytes),
        `${r.format} (${r.tensors}, ${fmt(r.typedShare * 100, 1)}%)`,
        r4(r.before.def, r.bytes),
        r4(r.after.def, r.bytes),
        r4(r.before.ratio, r.bytes),
        r4(r.after.ratio, r.bytes),
        r4(r.z3, r.bytes),
        r4(r.z19, r.bytes),
        r4(r.g2, r.bytes),
        r4(r.g4, r.bytes),
        `${r.chunks.before} / ${r.chunks.after}`,
        `${fmt(r.speed, 2)} (${fmt(r.cpu.before, 0)} / ${fmt(r.cpu.after, 0)} ms)`,
      ]),
    ),
    "",
    "Each small tensor is a chunk of its own after recognition (and so is each ggml tensor record or run of HDF5 structure between them), where the raw path cut the file into 512 KiB chunks: the chunk planner joins neighbouring regions of one dtype only, and a raw gap of a few dozen bytes between two tensors of one dtype keeps them apart. The CPU time column (compress() with threads 1, median of 5 runs, interleaved with the twin's) shows what the extra chunks cost.",
    "",
    ...rows.map(
      (r) =>
        `- ${r.file}: default ${r.after.def <= best(r) * 1.005 ? "within 0.5% of or below" : "above"} the best of zstd -3 and byte grouping + zstd -3 (${r4(best(r), r.bytes)}) at ${r4(r.after.def, r.bytes)}; --goal ratio ${r.after.ratio <= Math.min(r.z19, best(r)) * 1.005 ? "within 0.5% of or below" : "above"} zstd -19 (${r4(r.z19, r.bytes)}) at ${r4(r.after.ratio, r.bytes)}; recognising it changed the default's size by ${fmt((r.after.def / r.before.def - 1) * 100, 2)}% and --goal ratio's by ${fmt((r.after.ratio / r.before.ratio - 1) * 100, 2)}%.`,
    ),
    "",
  ];
  console.log(lines.join("\n"));
  writeReport(outFile, lines);
}

await main();
