/**
 * Deltas against a base model and deduplication (docs/FORMAT.md §6.3, §6.4), on weights of
 * a real training run: bench/deltas-gen.py trains a small transformer with torch
 * (/usr/bin/python3) on this repository's text and writes a base, a checkpoint series
 * (Adam, lr 1e-4, a checkpoint every K steps), a merged LoRA and a tied-embedding model, in
 * F32 and BF16, into .bench-data/deltas/ (reused while the script is unchanged).
 *
 * Measured:
 * 1. each checkpoint coded against the one before it, against its own standalone MMH size
 *    (target <= 0.35), and against the base for context;
 * 2. the merged LoRA coded against the base (target <= 0.5);
 * 3. deduplication: tied embeddings in one file, and two shards repeating a tensor in a
 *    `pack`, with and without dedup;
 * 4. the cost on files with no repeats: compression time with dedup on and off,
 *    interleaved in one run, as a ratio (target: under 3% slower), the outputs byte-equal;
 *    and SHA-256 and CRC-32 speed beside compression speed (why candidates are found by
 *    CRC-32).
 * Every .mmh is decoded (with its base) and checked by sha256.
 *
 * usage: npx node bench/deltas.ts [--quick] [--k N] [--runs N] [--out FILE]
 */
import "./lib/help.ts";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { bufferSource } from "../src/common/source.ts";
import { decodeContainer } from "../src/engine/decoder.ts";
import { isLowRankMode, parseBlocks } from "../src/engine/lowrank.ts";
import { Deduper } from "../src/engine/refwriter.ts";
import { compress, compressFile, decompress, decompressFile, pack, unpack } from "../src/index.ts";
import { generate } from "../src/tools/index.ts";
import { differenceBound, type Tensor } from "./deltas-bound.ts";
import { codeLine, root, writeReport } from "./lib/commands.ts";
import {
  argValue,
  contentionNote,
  cpuWaitMicros,
  fmt,
  machineLines,
  median,
  spread,
  table,
} from "./lib/report.ts";

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const KS = (argValue("--k") ?? "1,10").split(",").map(Number);
const runs = Number(argValue("--runs") ?? (quick ? 2 : 15));
const outFile = argValue("--out") ?? (quick ? undefined : join(root, "bench", "results", "deltas.md"));
const started = performance.now();
const waitStart = cpuWaitMicros();

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const data = join(root, ".bench-data", "deltas", `k${KS.join("-")}`);
const work = join(root, ".bench-data", "deltas", "work");
mkdirSync(work, { recursive: true });

// ---- data ---------------------------------------------------------------------------------

const script = join(root, "bench", "deltas-gen.py");
const stamp = join(data, "script.sha256");
const scriptHash = sha256(readFileSync(script));
if (!existsSync(stamp) || readFileSync(stamp, "utf8") !== scriptHash) {
  rmSync(data, { recursive: true, force: true });
  console.log(`training the model (bench/deltas-gen.py, K=${KS.join(",")}) ...`);
  const r = spawnSync("/usr/bin/python3", [script, data, KS.join(",")], {
    stdio: "inherit",
    timeout: 3_600_000,
  });
  if (r.status !== 0) throw new Error(`bench/deltas-gen.py failed (${r.status ?? r.signal})`);
  writeFileSync(stamp, scriptHash);
}
const file = (name: string, dtype: string) => join(data, `${name}.${dtype}.safetensors`);

/** What the DLTA records of the last file `stored` wrote hold: by mode, and the low-rank blocks' factors. */
interface DeltaRecords {
  records: number;
  byMode: Map<number, number>;
  /** Payload and params bytes of low-rank records (modes 5 to 7), and of their factors. */
  lowRankBytes: number;
  factorBytes: number;
  /** Blocks of rank > 0 and their ranks. */
  ranks: number[];
}
let lastDeltas: DeltaRecords | undefined;

/** Walk a container's records (FORMAT.md §3) and sum up its DLTA records. */
function deltaRecords(file: Buffer): DeltaRecords {
  const out: DeltaRecords = { records: 0, byMode: new Map(), lowRankBytes: 0, factorBytes: 0, ranks: [] };
  let at = 20 + file.readUInt32LE(12);
  while (file.toString("latin1", at, at + 4) === "CHNK") {
    const codec = file.toString("latin1", at + 4, at + 8);
    const stored = Number(file.readBigUInt64LE(at + 16));
    const paramsLength = file.readUInt16LE(at + 28);
    const params = file.subarray(at + 36, at + 36 + paramsLength);
    if (codec === "DLTA") {
      const mode = params[0];
      out.records++;
      out.byMode.set(mode, (out.byMode.get(mode) ?? 0) + 1);
      if (isLowRankMode(mode)) {
        const { blocks, factors } = parseBlocks(
          params.subarray(45),
          mode,
          Number(file.readBigUInt64LE(at + 8)),
          stored,
          "bench",
        );
        out.lowRankBytes += 36 + paramsLength + stored;
        out.factorBytes += factors;
        for (const b of blocks) if (b.rank > 0) out.ranks.push(b.rank);
      }
    }
    at += 36 + paramsLength + stored;
  }
  return out;
}

/** Compress `src` (against `base`), decode it back and check it; returns the stored size. */
async function stored(src: string, options: { base?: string; dedup?: boolean } = {}): Promise<number> {
  const out = join(work, "out.mmh");
  const summary = await compressFile(src, out, { overwrite: true, ...options });
  lastDeltas = options.base ? deltaRecords(readFileSync(out)) : undefined;
  const back = join(work, "back.bin");
  await decompressFile(out, back, { overwrite: true, base: options.base });
  if (sha256(readFileSync(back)) !== sha256(readFileSync(src))) throw new Error(`${src}: round trip differs`);
  rmSync(back);
  return summary.storedBytes;
}

const lines: string[] = [
  "# Deltas against a base model, and deduplication",
  "",
  ...machineLines(`npx node bench/deltas.ts --k ${KS.join(",")}`),
  codeLine(),
  "",
  "Weights from a real training run: `bench/deltas-gen.py` trains a byte-level transformer (3 layers, width 96, 391,008 parameters) with torch on this repository's own text, then writes a base (150 Adam steps, lr 2e-3, on the docs), checkpoint series from it (Adam, lr 1e-4, on the sources, a checkpoint every K steps, four checkpoints; one series for each K, each from the base), a LoRA (rank 8, alpha 16, on every projection, 60 steps, lr 2e-4, on the tests) merged into the base, and the base with its output projection tied to the embedding. Each is written in F32 and BF16. Every .mmh below is decoded (with its base) and checked by sha256.",
  "",
];

// ---- 1. checkpoint series -------------------------------------------------------------------

const seriesRows: string[][] = [];
const seriesSizes = new Map<string, { alone: number; delta: number }>();
const verdicts: string[] = [];
for (const K of KS)
  for (const dtype of ["bf16", "f32"]) {
    let worst = 0;
    for (let j = 1; j <= 4; j++) {
      const src = file(`k${K}-ckpt${j}`, dtype);
      const previous = j === 1 ? file("base", dtype) : file(`k${K}-ckpt${j - 1}`, dtype);
      const size = readFileSync(src).length;
      const alone = await stored(src);
      const delta = await stored(src, { base: previous });
      const vsBase = j === 1 ? delta : await stored(src, { base: file("base", dtype) });
      worst = Math.max(worst, delta / alone);
      seriesSizes.set(`${K} ${dtype} ${j}`, { alone, delta });
      seriesRows.push([
        `${dtype.toUpperCase()} K=${K}, checkpoint ${j} (${j * K} steps)`,
        String(size),
        `${alone} (${fmt(alone / size, 3)})`,
        `${delta} (${fmt(delta / size, 3)})`,
        fmt(delta / alone, 3),
        fmt(vsBase / alone, 3),
      ]);
      console.log(seriesRows.at(-1)!.join(" | "));
    }
    verdicts.push(
      `- Checkpoint series, a checkpoint every ${K} step${K > 1 ? "s" : ""}, ${dtype.toUpperCase()}: each checkpoint against the one before at most ${fmt(worst, 3)} of its standalone size: target <= 0.35 **${worst <= 0.35 ? "met" : "not met"}**.`,
    );
  }
lines.push(
  `## 1. Checkpoint series (a checkpoint every K Adam steps, lr 1e-4; K = ${KS.join(", ")})`,
  "",
  "Each checkpoint compressed on its own (`mmh compress`), and against the checkpoint before it (`--base`, the first against the base); stored bytes, and stored / original in brackets. The last column codes it against the base instead, for context.",
  "",
  table(
    [
      "file",
      "bytes",
      "standalone .mmh",
      "--base previous .mmh",
      "delta / standalone",
      "--base base / standalone",
    ],
    seriesRows,
  ),
  "",
);

// ---- 1b. the information in a checkpoint's difference ------------------------------------------

const boundRows: string[][] = [];
const boundVerdicts: string[] = [];
const asTensors = (path: string): Tensor[] =>
  tensorsOf(path).map(([name, t, bytes]) => ({ name, dtype: t.dtype, bytes }));
for (const K of KS)
  for (const dtype of ["f32", "bf16"]) {
    const ckpt = (j: number) => (j === 0 ? file("base", dtype) : file(`k${K}-ckpt${j}`, dtype));
    const estimates: number[] = [];
    for (let j = 1; j <= 4; j++) {
      const b = differenceBound(
        asTensors(ckpt(j)),
        asTensors(ckpt(j - 1)),
        j > 1 ? asTensors(ckpt(j - 2)) : undefined,
      );
      const { alone, delta } = seriesSizes.get(`${K} ${dtype} ${j}`)!;
      const bits = (bytes: number) => (bytes * 8) / b.elements;
      boundRows.push([
        `${dtype.toUpperCase()} K=${K}, checkpoint ${j}`,
        fmt(bits(alone), 2),
        fmt(bits(alone) * 0.35, 2),
        fmt(bits(delta), 2),
        fmt(b.order0, 2),
        fmt(b.classes, 2),
        fmt(b.givenExponent, 2),
        b.givenPrevious === undefined ? "-" : fmt(b.givenPrevious, 2),
        b.minusPrevious === undefined ? "-" : fmt(b.minusPrevious, 2),
        String(b.medianLength),
        fmt(b.belowTop, 2),
      ]);
      console.log(boundRows.at(-1)!.join(" | "));
      // The estimate holds where the bits below the class are noise.
      if (b.belowTop >= 0.95)
        estimates.push(Math.min(b.givenExponent, b.givenPrevious ?? Number.POSITIVE_INFINITY) / bits(alone));
    }
    if (estimates.length > 0)
      boundVerdicts.push(
        `- Information in the differences, a checkpoint every ${K} step${K > 1 ? "s" : ""}, ${dtype.toUpperCase()}: the lower of _classes given the exponent_ and _classes given the previous change_ is ${fmt(Math.min(...estimates), 3)} to ${fmt(Math.max(...estimates), 3)} of the standalone size on the ${estimates.length} checkpoints whose bits below the class are noise (0.95 bits per bit or more)${Math.min(...estimates) > 0.35 ? ": a coder that sees these contexts cannot reach 0.35 there" : ""}.`,
      );
  }
lines.push(
  "### The information in the differences",
  "",
  "Bits per weight (all weights are F32 or BF16 here; the .mmh sizes include the file's header and index) of the checkpoints above: stored on its own, the 0.35 target, stored against the checkpoint before, and estimates of the information in the differences d of the bit patterns from the checkpoint before (what DLTA modes 3 and 4 code), measured by `bench/deltas-bound.ts`. _order 0_: the empirical entropy of d over the file; sound for BF16, whose differences take few values, but far too low for F32, where most values of d occur once or twice in a file (it cannot exceed log2 of the 391,008 weights, 18.6). So d (zigzag-coded) is split into a _class_ (its bit length and top 4 bits: a few hundred values, whose empirical entropy is sound) and the bits below, counted as stored: _classes_ is the class's order-0 entropy plus those bits; _given the exponent_ codes the class given the base weight's exponent field (the same change in value is a different count of units in the last place for each exponent); _given the previous change_ codes it given the bit length and sign of the previous step's change d' (Adam's momentum); _d − d'_ takes the previous change as the prediction. The median bit length of d (zigzag-coded) says how many units in the last place a step moves a weight (a bit length L means 2^(L−2) to 2^(L−1) units). The last column is the entropy of the 4 bits right below the class, per bit, over the differences of 12 bits or more: 1.00 means they are noise, so nothing that sees only these contexts can code them in fewer bits.",
  "",
  table(
    [
      "checkpoint (against the one before)",
      "standalone",
      "0.35 target",
      "--base previous",
      "order 0",
      "classes",
      "classes given the exponent",
      "classes given the previous change",
      "classes of d − d'",
      "median bit length of d",
      "bits below the class",
    ],
    boundRows,
  ),
  "",
);

// ---- 2. merged LoRA -------------------------------------------------------------------------

/** Mean |merged - base| / mean |base| over the tensors the LoRA changed (F32 files). */
function relativeUpdate(): number {
  const merged = tensorsOf(file("lora-merged", "f32"));
  const base = new Map(tensorsOf(file("base", "f32")).map(([name, , bytes]) => [name, bytes]));
  let diff = 0;
  let size = 0;
  for (const [name, , bytes] of merged) {
    const b = base.get(name)!;
    if (b.equals(bytes)) continue;
    const m = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
    const o = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
    for (let i = 0; i < m.length; i++) {
      diff += Math.abs(m[i] - o[i]);
      size += Math.abs(o[i]);
    }
  }
  return diff / size;
}
const loraRows: string[][] = [];
for (const dtype of ["bf16", "f32"]) {
  const src = file("lora-merged", dtype);
  const size = readFileSync(src).length;
  const alone = await stored(src);
  const delta = await stored(src, { base: file("base", dtype) });
  const records = lastDeltas!;
  const ranks = [...new Set(records.ranks)].sort((a, b) => a - b);
  loraRows.push([
    `${dtype.toUpperCase()} base + merged LoRA`,
    String(size),
    `${alone} (${fmt(alone / size, 3)})`,
    `${delta} (${fmt(delta / size, 3)})`,
    fmt(delta / alone, 3),
    [...records.byMode].map(([mode, n]) => `${n} x mode ${mode}`).join(", "),
    `${records.ranks.length} (rank ${ranks.join(", ")})`,
    `${records.factorBytes} (${fmt((records.factorBytes / delta) * 100, 1)}%)`,
  ]);
  verdicts.push(
    `- Merged LoRA, ${dtype.toUpperCase()}: ${fmt(delta / alone, 3)} of its standalone size: target <= 0.5 **${delta / alone <= 0.5 ? "met" : "not met"}**.`,
  );
  console.log(loraRows.at(-1)!.join(" | "));
}
lines.push(
  "## 2. A LoRA merged into its base",
  "",
  `The merged model compressed on its own, and against the base (\`--base\`). The LoRA changes the weights it touches by ${fmt(relativeUpdate() * 100, 1)}% on average (mean |merged - base| / mean |base|, F32).`,
  "",
  table(
    [
      "file",
      "bytes",
      "standalone .mmh",
      "--base base .mmh",
      "delta / standalone",
      "DLTA records",
      "low-rank blocks",
      "factor bytes (share of the .mmh)",
    ],
    loraRows,
  ),
  "",
  "Modes 5 (F32) and 6 (BF16) code a chunk as its difference from the base plus a low-rank product U·V (FORMAT.md §6.4); each chunk carries the factors of its own rows, so the factors are a visible share here, where the matrices are only 96 to 384 wide and a chunk holds several of them. A low-rank block is one matrix's rows in one chunk.",
  "",
);

// ---- 2b. what coding against a base costs in time ----------------------------------------------

const costRows: string[][] = [];
for (const [label, name, baseName, dtype] of [
  ["F32 merged LoRA against the base", "lora-merged", "base", "f32"],
  ["BF16 merged LoRA against the base", "lora-merged", "base", "bf16"],
  [
    `F32 K=${KS.at(-1)} checkpoint 2 against checkpoint 1`,
    `k${KS.at(-1)}-ckpt2`,
    `k${KS.at(-1)}-ckpt1`,
    "f32",
  ],
  [
    `BF16 K=${KS.at(-1)} checkpoint 2 against checkpoint 1`,
    `k${KS.at(-1)}-ckpt2`,
    `k${KS.at(-1)}-ckpt1`,
    "bf16",
  ],
] as const) {
  const input = readFileSync(file(name, dtype));
  const basePath = file(baseName, dtype);
  const times = { alone: [] as number[], base: [] as number[] };
  const pairs: number[] = [];
  const costRuns = quick ? 2 : 5;
  for (let r = 0; r < costRuns + 1; r++) {
    for (const how of r % 2 === 0 ? (["alone", "base"] as const) : (["base", "alone"] as const)) {
      const t = performance.now();
      await compress(input, { threads: 1, ...(how === "base" ? { base: basePath } : {}) });
      if (r > 0) times[how].push(performance.now() - t);
    }
    if (r > 0) pairs.push(times.base.at(-1)! / times.alone.at(-1)!);
  }
  costRows.push([
    label,
    String(input.length),
    fmt(median(times.alone), 0),
    fmt(median(times.base), 0),
    fmt(median(pairs), 1),
    `${fmt(spread(pairs) * 100, 0)}%`,
  ]);
  console.log(costRows.at(-1)!.join(" | "));
}
lines.push(
  "### What coding against a base costs in time",
  "",
  `\`compress()\` in memory, one thread, on its own and with \`base\`, interleaved (the first of each pair alternating), ${quick ? 2 : 5} runs after a warm-up; median milliseconds, and the median of the pairs' ratios. With a base the writer hashes and recognises the base, estimates each DLTA mode's size for each chunk that the base holds (XOR, subtraction, the low-rank fit where a look at a sample of rows says it may pay, and the grouped differences) and codes in full, with auto's choice, the modes within 5% of the smallest estimate (docs/ENGINE.md, References and deltas); with one thread, all on the calling thread (with more, on the pool's workers: bench/results/base-speed.md).`,
  "",
  table(
    [
      "input",
      "bytes",
      "on its own ms",
      "--base ms",
      "--base / on its own",
      "spread of the pair ratios (IQR/median)",
    ],
    costRows,
  ),
  "",
);

// ---- 3. deduplication -----------------------------------------------------------------------

/** A safetensors file's tensors: name, header entry and bytes. */
function tensorsOf(path: string): [string, { dtype: string; shape: number[] }, Buffer][] {
  const bytes = readFileSync(path);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString()) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  return Object.entries(header)
    .filter(([name]) => name !== "__metadata__")
    .map(([name, t]) => [
      name,
      { dtype: t.dtype, shape: t.shape },
      bytes.subarray(8 + n + t.data_offsets[0], 8 + n + t.data_offsets[1]),
    ]);
}

function safetensors(tensors: [string, { dtype: string; shape: number[] }, Buffer][]): Buffer {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, t, bytes] of tensors) {
    header[name] = { ...t, data_offsets: [offset, offset + bytes.length] };
    offset += bytes.length;
  }
  let json = Buffer.from(JSON.stringify(header));
  json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, json, ...tensors.map((t) => t[2])]);
}

async function packed(dir: string, dedup: boolean): Promise<number> {
  const out = join(work, "pack.mmh");
  const summary = await pack(dir, out, { overwrite: true, dedup, long: false });
  const back = join(work, "unpacked");
  await unpack(out, back, { overwrite: true });
  for (const name of readdirSync(dir, { recursive: true, encoding: "utf8" })) {
    if (!statSync(join(dir, name)).isFile()) continue;
    if (sha256(readFileSync(join(back, name))) !== sha256(readFileSync(join(dir, name))))
      throw new Error(`pack of ${dir}: ${name} differs`);
  }
  rmSync(back, { recursive: true, force: true });
  return summary.storedBytes;
}

const dedupRows: string[][] = [];
for (const dtype of ["bf16", "f32"]) {
  const src = file("tied", dtype);
  const on = await stored(src);
  const off = await stored(src, { dedup: false });
  dedupRows.push([
    `${dtype.toUpperCase()} tied embeddings (one file)`,
    String(readFileSync(src).length),
    String(off),
    String(on),
    fmt(on / off, 3),
  ]);
  // Two shards, each with the embedding: the base's tensors split between them.
  const shards = join(work, `shards-${dtype}`);
  rmSync(shards, { recursive: true, force: true });
  mkdirSync(shards, { recursive: true });
  const all = tensorsOf(file("base", dtype));
  const embed = all.find(([name]) => name === "embed.weight")!;
  const rest = all.filter(([name]) => name !== "embed.weight");
  const half = Math.ceil(rest.length / 2);
  writeFileSync(
    join(shards, "model-00001-of-00002.safetensors"),
    safetensors([embed, ...rest.slice(0, half)]),
  );
  writeFileSync(join(shards, "model-00002-of-00002.safetensors"), safetensors([embed, ...rest.slice(half)]));
  const total = readdirSync(shards).reduce((sum, name) => sum + readFileSync(join(shards, name)).length, 0);
  const pOn = await packed(shards, true);
  const pOff = await packed(shards, false);
  dedupRows.push([
    `${dtype.toUpperCase()} two shards repeating the embedding (pack)`,
    String(total),
    String(pOff),
    String(pOn),
    fmt(pOn / pOff, 3),
  ]);
  console.log(dedupRows.at(-2)!.join(" | "));
  console.log(dedupRows.at(-1)!.join(" | "));
}
// Real weights repeated as they are in practice: a run folder whose final model is a copy of
// its last checkpoint, and a file that stores the same group of tensors twice.
if (existsSync(join(root, "..", "shared", "data"))) {
  const real = join(root, "..", "shared", "data");
  const run = join(work, "run-folder");
  rmSync(run, { recursive: true, force: true });
  mkdirSync(join(run, "checkpoint-1000"), { recursive: true });
  const adapter = readFileSync(join(real, "lora-imdb-distilbert_adapter_model.safetensors"));
  writeFileSync(join(run, "checkpoint-1000", "adapter_model.safetensors"), adapter);
  writeFileSync(join(run, "adapter_model.safetensors"), adapter);
  const runOn = await packed(run, true);
  const runOff = await packed(run, false);
  dedupRows.push([
    "real LoRA adapter, final copy of the last checkpoint (pack of both)",
    String(2 * adapter.length),
    String(runOff),
    String(runOn),
    fmt(runOn / runOff, 3),
  ]);
  const mnist = tensorsOf(join(real, "mnist-tinygrad_model.safetensors"));
  const twice = join(work, "mnist-twice.safetensors");
  writeFileSync(
    twice,
    safetensors([...mnist, ...mnist.map(([name, t, b]): (typeof mnist)[number] => [`copy.${name}`, t, b])]),
  );
  const twiceOn = await stored(twice);
  const twiceOff = await stored(twice, { dedup: false });
  dedupRows.push([
    "real MLP weights stored twice in one file (a repeated initialiser)",
    String(readFileSync(twice).length),
    String(twiceOff),
    String(twiceOn),
    fmt(twiceOn / twiceOff, 3),
  ]);
  console.log(dedupRows.at(-2)!.join(" | "));
  console.log(dedupRows.at(-1)!.join(" | "));
}
lines.push(
  "## 3. Deduplication",
  "",
  "Stored bytes with `--no-dedup` and with deduplication (the default). The packs are made with `--no-long`, so that the rows measure deduplication alone (and because `pack` with long-range matches stops with E_INTERNAL when a LONG dictionary spans two files of the folder: its content is read again one file at a time). The embedding is 256 x 96 weights (96 KiB in F32, 48 KiB in BF16), so it shares its chunk with the tensors after it (chunks of one dtype are filled with neighbouring small tensors, FORMAT.md §7): a repeat is found only where the same bytes fill a whole chunk, as in the rows from ../shared/data.",
  "",
  table(["input", "bytes", "--no-dedup .mmh", "dedup .mmh", "dedup / no-dedup"], dedupRows),
  "",
);

// ---- 4. the cost on files with no repeats ----------------------------------------------------

const shared = join(root, "..", "shared", "data");
const inputs: [string, Buffer][] = [];
if (existsSync(shared))
  for (const name of readdirSync(shared).filter((n) => n.endsWith(".safetensors")))
    inputs.push([`${name} (real, ../shared/data)`, readFileSync(join(shared, name))]);
inputs.push([`base.f32 (trained here)`, readFileSync(file("base", "f32"))]);
inputs.push([
  "mmh gen BF16 32 MiB (synthetic, reference row)",
  generate({ kind: "safetensors", dtype: "BF16", size: quick ? 4 << 20 : 32 << 20 }),
]);
const speedRows: string[][] = [];
let worstSpeed = 0;
let worstSpread = 0;
/** A timing verdict against 1.03, or inconclusive when the runs disagree by more than twice the margin. */
const verdict = (ratio: number, spreadOf: number) =>
  spreadOf > 0.06
    ? "inconclusive (the runs disagree more than the margin)"
    : ratio < 1.03
      ? "met"
      : "not met";
for (const [label, bytes] of inputs) {
  const times = { on: [] as number[], off: [] as number[] };
  const pairs: number[] = [];
  let sizes = { on: 0, off: 0 };
  let same = true;
  // Each sample compresses the input `reps` times (at least 16 MiB in all), so that small
  // files are timed over more than a few milliseconds.
  const reps = Math.max(1, Math.round((16 << 20) / bytes.length));
  for (let r = 0; r < runs + 1; r++) {
    // Interleaved, the first of each pair alternating; round 0 is a warm-up.
    for (const dedup of r % 2 === 0 ? [true, false] : [false, true]) {
      let out: Uint8Array = new Uint8Array(0);
      const t = performance.now();
      for (let k = 0; k < reps; k++) out = await compress(bytes, { dedup, threads: 1 });
      const ms = (performance.now() - t) / reps;
      if (r > 0) times[dedup ? "on" : "off"].push(ms);
      sizes = { ...sizes, [dedup ? "on" : "off"]: out.length };
      if (dedup && r === 0 && !Buffer.from(await decompress(out)).equals(bytes))
        throw new Error(`${label}: round trip differs`);
    }
    if (r > 0) pairs.push(times.on.at(-1)! / times.off.at(-1)!);
  }
  same = sizes.on === sizes.off;
  // The median of the ratios of back-to-back pairs: a change of load between pairs cancels.
  const ratio = median(pairs);
  worstSpeed = Math.max(worstSpeed, ratio);
  worstSpread = Math.max(worstSpread, spread(pairs));
  speedRows.push([
    label,
    String(bytes.length),
    fmt(median(times.off), 1),
    fmt(median(times.on), 1),
    fmt(ratio, 3),
    `${fmt(spread(pairs) * 100, 1)}%`,
    same ? "yes" : "NO",
  ]);
  console.log(speedRows.at(-1)!.join(" | "));
}
// Decoding from a pipe keeps the last 4 MiB of records for references (FORMAT.md §6.3);
// a decoder that can read its input again keeps nothing. The same file both ways.
const pipeInput = await compress(inputs.at(-1)![1], { threads: 1 });
async function* pieces(): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < pipeInput.length; at += 1 << 20) yield pipeInput.subarray(at, at + (1 << 20));
}
const pipeTimes = { keep: [] as number[], again: [] as number[] };
const pipePairs: number[] = [];
for (let r = 0; r < runs + 1; r++) {
  for (const mode of r % 2 === 0 ? (["keep", "again"] as const) : (["again", "keep"] as const)) {
    const t = performance.now();
    const again = mode === "again" ? async () => bufferSource(pipeInput) : undefined;
    for await (const _ of decodeContainer(pieces(), { threads: 1 }, undefined, true, undefined, again)) {
      // the content is not needed
    }
    if (r > 0) pipeTimes[mode].push(performance.now() - t);
  }
  if (r > 0) pipePairs.push(pipeTimes.keep.at(-1)! / pipeTimes.again.at(-1)!);
}
const pipeRatio = median(pipePairs);
speedRows.push([
  "decoding the BF16 .mmh from a pipe (keeps records) vs from memory (keeps none)",
  String(pipeInput.length),
  fmt(median(pipeTimes.again), 1),
  fmt(median(pipeTimes.keep), 1),
  fmt(pipeRatio, 3),
  `${fmt(spread(pipePairs) * 100, 1)}%`,
  "-",
]);
console.log(speedRows.at(-1)!.join(" | "));
verdicts.push(
  `- Decoding from a pipe, which keeps 4 MiB of records for references: ${fmt(pipeRatio, 3)}x the time of a decoder that keeps none, the pair ratios spreading ${fmt(spread(pipePairs) * 100, 0)}%: target < 1.03 in wall-clock time **${verdict(pipeRatio, spread(pipePairs))}**; decided in CPU time, with an interval, by bench/refs-cost.ts (results/refs-cost.md).`,
);
verdicts.push(
  `- Files with no repeats: dedup's compression time at most ${fmt(worstSpeed, 3)}x of --no-dedup's (median of ${runs} interleaved pairs each), the pair ratios spreading up to ${fmt(worstSpread * 100, 0)}%: target < 1.03 in wall-clock time **${verdict(worstSpeed, worstSpread)}**; decided in CPU time, with an interval, by bench/refs-cost.ts (results/refs-cost.md).`,
);

// Deduplication's own work, timed alone: the lookup by length and CRC-32 that each chunk
// of a file with no repeats gets (the CRC-32 is computed for the record in any case).
const chunkCount = Math.floor(inputs.at(-1)![1].length / (512 << 10));
const lookups: number[] = [];
for (let r = 0; r < runs; r++) {
  const deduper = new Deduper(async () => {
    throw new Error("no chunk of this input repeats: nothing is read again");
  });
  const bf16 = inputs.at(-1)![1];
  const chunks = Array.from({ length: chunkCount }, (_, i) => ({
    header: Buffer.alloc(36),
    payload: Buffer.alloc(1000),
    codec: "HIER",
    rawLength: 512 << 10,
    rawCrc: crc32(bf16.subarray(i * (512 << 10), (i + 1) * (512 << 10))),
    owned: false,
  }));
  const t = performance.now();
  for (const [i, chunk] of chunks.entries()) await deduper.reference(chunk, i, i * (512 << 10));
  lookups.push(performance.now() - t);
}
const perChunkMs = median(lookups) / chunkCount;
const compressPerChunkMs = Number(speedRows.at(-2)![2]) / chunkCount;
verdicts.push(
  `- Files with no repeats, dedup's own work timed alone: ${fmt((perChunkMs / compressPerChunkMs) * 100, 4)}% of compression time: target < 3% **${perChunkMs / compressPerChunkMs < 0.03 ? "met" : "not met"}**.`,
);

// The hashes a candidate could be found by, on 512 KiB pieces of the BF16 input.
const sample = inputs.at(-1)![1];
const piece = 512 << 10;
const hashSpeed = (hash: (b: Uint8Array) => unknown) => {
  const samples: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t = performance.now();
    for (let at = 0; at + piece <= sample.length; at += piece) hash(sample.subarray(at, at + piece));
    samples.push(performance.now() - t);
  }
  return (Math.floor(sample.length / piece) * piece) / 1e6 / (median(samples) / 1000);
};
const crcSpeed = hashSpeed((b) => crc32(b));
const shaSpeed = hashSpeed((b) => createHash("sha256").update(b).digest());
const compressSpeed = sample.length / 1e6 / (Number(speedRows.at(-2)![2]) / 1000);

lines.push(
  "## 4. The cost of deduplication on files with no repeats",
  "",
  `\`compress()\` in memory, one thread, with dedup on and off, interleaved (the first of each pair alternating), ${runs} runs after a warm-up, each compressing the input as many times as make 16 MiB (at least once); median milliseconds per compression, and the median of the ratios of each back-to-back pair (a change of load between pairs cancels out). The outputs must be the same bytes (nothing repeats, so nothing is referred to). The last row decodes the BF16 input's .mmh front to back, one thread, fed 1 MiB pieces: as from a pipe (the decoder keeps the last 4 MiB of records, for references), and given the bytes to read again (it keeps nothing); columns as above, "--no-dedup" standing for the decoder that keeps nothing.`,
  "",
  table(
    [
      "input",
      "bytes",
      "--no-dedup ms",
      "dedup ms",
      "dedup / no-dedup",
      "spread of the pair ratios (IQR/median)",
      "same bytes",
    ],
    speedRows,
  ),
  "",
  `Finding candidates: on 512 KiB pieces of the BF16 input, CRC-32 (node:zlib) runs at ${fmt(crcSpeed)} MB/s and SHA-256 (node:crypto) at ${fmt(shaSpeed)} MB/s, where compression runs at ${fmt(compressSpeed)} MB/s (the row above). A SHA-256 of every chunk would add about ${fmt((compressSpeed / shaSpeed) * 100)}% to compression time; the CRC-32 is computed for every chunk already (the record's raw CRC), so MMH finds candidates by length and CRC-32 and compares every byte.`,
  "",
  `Deduplication's own work on a file with no repeats, timed alone (the lookup of each chunk's length and CRC-32, the CRC-32 being computed for its record in any case), over the ${chunkCount} chunks of the BF16 input: ${fmt(perChunkMs * 1000, 2)} µs per chunk, against ${fmt(compressPerChunkMs * 1000, 0)} µs to compress a chunk (the row above): ${fmt((perChunkMs / compressPerChunkMs) * 100, 4)}% of compression time. This figure, unlike the interleaved timings above, does not drown in the machine's load.`,
  "",
  "## Verdicts",
  "",
  ...verdicts,
  ...boundVerdicts,
  "",
  contentionNote(waitStart, performance.now() - started),
  "",
);
writeReport(outFile, lines);
