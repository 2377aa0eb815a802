/**
 * ggml-quantised weights and HIER's block layouts: GGUF files of one tensor for each of
 * Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1 (quantised as ggml's reference quantisers do) and
 * K-quant-shaped Q2_K-Q6_K blocks (simplified quantisers), from synthetic heavy-tailed
 * weights, since no real GGUF file is at hand: each stored by mmh (default, `--goal
 * ratio`, `--codec hier`, `--codec zstd`; every output decoded and its sha256 checked),
 * by zstd -3 and -19, and by HIER as one byte stream, against the fields' order-0 bound.
 *
 *   npx node bench/quantised.ts            full run (writes bench/results/quantised.md)
 *   npx node bench/quantised.ts --quick    512 Ki weights per type, writes nothing
 * Options: --weights N (a multiple of the row length), --keep (keep the generated files in .bench-data/quantised),
 * --out FILE
 */
import "./lib/help.ts";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { hierCodec } from "../src/codecs/hier/hier.ts";
import { layoutForDType } from "../src/codecs/hier/layouts.ts";
import { fileSource } from "../src/common/source.ts";
import { CHUNK_HEADER_SIZE, INDEX_ENTRY_SIZE } from "../src/container/format.ts";
import { planChunks } from "../src/engine/plan.ts";
import { MmhReader } from "../src/engine/reader.ts";
import {
  type BlockType,
  checkHalf,
  checkQuantiser,
  QUANT_TYPES,
  type QuantCheck,
  quantise,
  studentWeights,
} from "../src/tools/quant.ts";
import { writeGguf } from "../test/support-gguf.ts";
import { codeLine, output, run, writeReport } from "./lib/commands.ts";
import {
  argValue,
  contentionNote,
  cpuWaitMicros,
  fmt,
  machineLines,
  mbps,
  table,
  zstdCliVersion,
} from "./lib/report.ts";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");
const quick = process.argv.includes("--quick");
const keep = process.argv.includes("--keep");
const outFile = argValue("--out") ?? (quick ? undefined : join(here, "results", "quantised.md"));
const ROW = 4096;
const WEIGHTS = Number(argValue("--weights") ?? (quick ? 512 * 1024 : 8 * 1024 * 1024));
if (!Number.isInteger(WEIGHTS) || WEIGHTS <= 0 || WEIGHTS % ROW !== 0)
  throw new Error(`--weights must be a positive multiple of ${ROW}`);
const ROWS = WEIGHTS / ROW;
const SEED = 20250;
const STD = 0.02;
const ROW_SIGMA = 0.3;
const DOF = 5;
const CHUNK = 512 * 1024;
/** A chunk record's header and its index entry: what each chunk costs beyond its payload. */
const PER_CHUNK = CHUNK_HEADER_SIZE + INDEX_ENTRY_SIZE;
const workDir = join(root, ".bench-data", "quantised");
const cli = join(root, "bin", "mmh.js");
const node = process.execPath;

const started = performance.now();
const loadAtStart = loadavg();
const waitAtStart = cpuWaitMicros();

// Measuring

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** Compress with the CLI, decode with the CLI, require the input's sha256; the .mmh size. */
function mmhRoundTrip(file: string, sha: string, out: string, options: readonly string[]): number {
  run(node, [cli, file, "-o", out, "-f", "-q", ...options]);
  const restored = `${out}.out`;
  run(node, [cli, "-d", out, "-o", restored, "-f", "-q"]);
  const got = sha256(readFileSync(restored));
  rmSync(restored, { force: true });
  if (got !== sha)
    throw new Error(
      `ROUND TRIP FAILED: ${file} through mmh ${options.join(" ") || "(default)"} decodes to sha256 ${got}, not ${sha}`,
    );
  return statSync(out).size;
}

function entropyBytes(counts: Float64Array, total: number): number {
  let bits = 0;
  for (const c of counts) if (c > 0) bits -= c * Math.log2(c / total);
  return bits / 8;
}

interface Field {
  name: string;
  bytes: number;
  /** Order-0 entropy of the field's bytes, in bytes. */
  order0: number;
  /** HIER's coded bytes for the field (its streams summed over the chunks). */
  coded: number;
  methods: Map<number, number>;
}

const METHOD_NAMES = ["constant", "stored", "Huffman", "zstd", "context Huffman"];

/**
 * The tensor in chunks as the engine plans them (whole blocks, <= 512 KiB), each coded by
 * HIER with the type's block layout at level 3, in process: each field's coded size and
 * method, from the payload's stream descriptors (FORMAT.md §6.2).
 */
function fieldsOf(t: BlockType, data: Buffer): { fields: Field[]; chunks: number; payload: number } {
  const layout = layoutForDType(t.dtype);
  if (layout.perElement?.length !== t.fields.length)
    throw new Error(`${t.dtype}: field names do not fit the layout`);
  const fields: Field[] = t.fields.map((name) => ({
    name,
    bytes: 0,
    order0: 0,
    coded: 0,
    methods: new Map(),
  }));
  // order-0 of each field over the whole tensor
  let start = 0;
  for (const [k, length] of (layout.perElement ?? []).entries()) {
    const counts = new Float64Array(256);
    for (let b = 0; b < data.length; b += t.bytes)
      for (let i = 0; i < length; i++) counts[data[b + start + i]]++;
    fields[k].bytes = (data.length / t.bytes) * length;
    fields[k].order0 = entropyBytes(counts, fields[k].bytes);
    start += length;
  }
  const plan = planChunks(
    [{ name: "w", offset: 0, length: data.length, dtype: t.dtype, kind: "tensor" }],
    CHUNK,
  );
  let at = 0;
  let payload = 0;
  for (const c of plan) {
    const p = hierCodec.encode(data.subarray(at, at + c.length), { dtype: t.dtype, level: 3 }).payload;
    if (p[1] !== layout.id || p[3] !== fields.length)
      throw new Error(`${t.dtype}: HIER did not use layout ${layout.id}`);
    for (let k = 0; k < fields.length; k++) {
      const method = p[8 + 5 * k];
      fields[k].coded += p[9 + 5 * k] | (p[10 + 5 * k] << 8) | (p[11 + 5 * k] << 16) | (p[12 + 5 * k] << 24);
      fields[k].methods.set(method, (fields[k].methods.get(method) ?? 0) + 1);
    }
    payload += p.length;
    at += c.length;
  }
  return { fields, chunks: plan.length, payload };
}

/** HIER on 512 KiB pieces as one byte stream (dtype U8: layout 0), each decoded again. */
function oneStream(data: Buffer): { bytes: number; chunks: number } {
  let bytes = 0;
  let chunks = 0;
  for (let at = 0; at < data.length; at += CHUNK) {
    const piece = data.subarray(at, Math.min(at + CHUNK, data.length));
    const payload = Buffer.from(hierCodec.encode(piece, { dtype: "U8", level: 3 }).payload);
    if (payload[1] !== 0) throw new Error("HIER with dtype U8 did not use the bytes layout");
    if (!Buffer.from(hierCodec.decode(payload, new Uint8Array(0), piece.length)).equals(piece))
      throw new Error("ROUND TRIP FAILED: HIER one byte stream");
    bytes += payload.length + PER_CHUNK;
    chunks++;
  }
  return { bytes, chunks };
}

/** The tensor's chunk records in an .mmh file: their bytes with index entries, and codecs. */
async function tensorChunks(
  mmhFile: string,
  offset: number,
  length: number,
): Promise<{ bytes: number; count: number; codecs: Map<string, number> }> {
  const reader = await MmhReader.open(await fileSource(mmhFile));
  try {
    let bytes = 0;
    let count = 0;
    const codecs = new Map<string, number>();
    for (const c of reader.chunks) {
      if (c.rawOffset < offset || c.rawOffset >= offset + length) continue;
      if (c.rawOffset + c.rawLength > offset + length)
        throw new Error(`${mmhFile}: a chunk runs past the tensor`);
      bytes += c.recordLength + INDEX_ENTRY_SIZE;
      count++;
      const codec = c.codec.trim();
      codecs.set(codec, (codecs.get(codec) ?? 0) + 1);
    }
    return { bytes, count, codecs };
  } finally {
    await reader.close();
  }
}

const r4 = (stored: number, original: number) => fmt(stored / original, 4);
const pct = (v: number) => `${fmt(v * 100, 1)}%`;
const mix = (m: Map<string | number, number>, names?: string[]) =>
  [...m.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${names ? names[k as number] : k} ${n}`)
    .join(", ");

interface Result {
  t: BlockType;
  fileBytes: number;
  tensorBytes: number;
  check: QuantCheck;
  mmh: number;
  ratio: number;
  one: number;
  oneChunks: number;
  mmhZstd: number;
  mmhHier: number;
  zstd3: number;
  zstd19: number;
  order0Fields: number;
  order0One: number;
  /** Bytes of the .mmh file outside the tensor's chunks: header, header region, index, trailer. */
  overhead: number;
  codecs: Map<string, number>;
  fields: Field[];
  blockChunks: number;
  blockPayload: number;
  times: { mmhC: number; mmhD: number; zstdC: number; zstdD: number };
}

// ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  mkdirSync(workDir, { recursive: true });
  checkHalf();
  console.log(`load average at start: ${loadAtStart.map((l) => fmt(l, 2)).join(", ")}`);
  console.log(`drawing ${WEIGHTS} weights (${ROWS} rows of ${ROW}), seed ${SEED} ...`);
  const x = studentWeights(WEIGHTS, SEED, { row: ROW, std: STD, rowSigma: ROW_SIGMA, dof: DOF });
  let s2 = 0;
  let s4 = 0;
  for (const v of x) {
    s2 += v * v;
    s4 += v ** 4;
  }
  const std = Math.sqrt(s2 / x.length);
  const kurtosis = s4 / x.length / (s2 / x.length) ** 2;
  console.log(`  std ${fmt(std, 5)}, kurtosis ${fmt(kurtosis, 2)}`);

  const startup = (() => {
    run(node, [cli, "--version"]);
    return run(node, [cli, "--version"]);
  })();

  const results: Result[] = [];
  for (const t of QUANT_TYPES) {
    const q = quantise(t, x);
    const check = checkQuantiser(t, x, q);
    const gguf = writeGguf({
      kv: [
        ["general.architecture", { t: "string", v: "synthetic" }],
        ["general.name", { t: "string", v: `synthetic Student-t weights, ${t.dtype} (not a real model)` }],
      ],
      tensors: [
        {
          name: "blk.0.ffn_down.weight",
          dims: [ROW, ROWS],
          type: { id: t.ggml, block: t.weights, size: t.bytes },
          data: q,
        },
      ],
    });
    const tensor = gguf.tensors[0];
    if (tensor.length !== q.length) throw new Error("GGUF tensor size");
    const file = join(workDir, `synthetic-${t.dtype.toLowerCase()}.gguf`);
    writeFileSync(file, gguf.bytes);
    const sha = sha256(gguf.bytes);
    const base = file;
    console.log(
      `${t.dtype}: ${gguf.bytes.length} bytes; quantiser check on ${check.blocks} blocks: max error ${fmt(check.maxErrorSteps, 3)} steps`,
    );

    const mmh = mmhRoundTrip(file, sha, `${base}.mmh`, []);
    const ratio = mmhRoundTrip(file, sha, `${base}.ratio.mmh`, ["--goal", "ratio"]);
    const mmhZstd = mmhRoundTrip(file, sha, `${base}.zstd.mmh`, ["--codec", "zstd"]);
    const mmhHier = mmhRoundTrip(file, sha, `${base}.hier.mmh`, ["--codec", "hier"]);
    const chunks = await tensorChunks(`${base}.mmh`, tensor.offset, tensor.length);
    const overhead = mmh - chunks.bytes;
    const one = oneStream(q);
    const zstd3 = output("zstd", ["-3", "-q", "-c", file]).length;
    const zstd19 = output("zstd", ["-19", "-q", "-c", file]).length;
    const { fields, chunks: blockChunks, payload: blockPayload } = fieldsOf(t, q);
    const allCounts = new Float64Array(256);
    for (const v of q) allCounts[v]++;

    // one timed run of each after a warm-up (the runs above warmed the page cache and node)
    const zst = `${base}.zst`;
    const zstOut = `${base}.zst.out`;
    const mmhOut = `${base}.mmh.out`;
    const timed = (command: string, args: string[]) => {
      run(command, args);
      return run(command, args);
    };
    const times = {
      mmhC: timed(node, [cli, file, "-o", `${base}.mmh`, "-f", "-q"]),
      mmhD: timed(node, [cli, "-d", `${base}.mmh`, "-o", mmhOut, "-f", "-q"]),
      zstdC: timed("zstd", ["-3", "-q", "-f", file, "-o", zst]),
      zstdD: timed("zstd", ["-d", "-q", "-f", zst, "-o", zstOut]),
    };
    if (sha256(readFileSync(mmhOut)) !== sha || sha256(readFileSync(zstOut)) !== sha)
      throw new Error(`ROUND TRIP FAILED: ${t.dtype} in the timed runs`);
    rmSync(mmhOut, { force: true });
    rmSync(zstOut, { force: true });

    const r: Result = {
      t,
      fileBytes: gguf.bytes.length,
      tensorBytes: q.length,
      check,
      mmh,
      ratio,
      one: overhead + one.bytes,
      oneChunks: one.chunks,
      mmhZstd,
      mmhHier,
      zstd3,
      zstd19,
      order0Fields: fields.reduce((s, f) => s + f.order0, 0),
      order0One: entropyBytes(allCounts, q.length),
      overhead,
      codecs: chunks.codecs,
      fields,
      blockChunks,
      blockPayload,
      times,
    };
    results.push(r);
    console.log(
      `  mmh ${r4(mmh, r.fileBytes)}, ratio ${r4(ratio, r.fileBytes)}, hier ${r4(mmhHier, r.fileBytes)}, one stream ${r4(r.one, r.fileBytes)}, mmh zstd ${r4(mmhZstd, r.fileBytes)}, zstd -3 ${r4(zstd3, r.fileBytes)}, zstd -19 ${r4(zstd19, r.fileBytes)}, order-0 fields ${r4(r.order0Fields, r.tensorBytes)}`,
    );
    if (!keep)
      for (const f of [file, `${base}.mmh`, `${base}.ratio.mmh`, `${base}.zstd.mmh`, `${base}.hier.mmh`, zst])
        rmSync(f, { force: true });
  }

  // ----- report
  const loadAtEnd = loadavg();
  const elapsed = performance.now() - started;
  const label = (t: BlockType) => (t.exact ? t.dtype : `${t.dtype}*`);
  const bpw = (t: BlockType) => fmt((t.bytes * 8) / t.weights, 4);

  const summaryRows = results.map((r) => [
    label(r.t),
    bpw(r.t),
    String(r.fileBytes),
    r4(r.mmh, r.fileBytes),
    r4(r.one, r.fileBytes),
    pct(1 - r.mmh / r.one),
    r4(r.zstd19, r.fileBytes),
    pct(1 - r.mmh / r.zstd19),
  ]);
  const summaryTable = table(
    [
      "type",
      "bits / weight",
      "GGUF bytes",
      "mmh default",
      "HIER, one byte stream (before block layouts)",
      "block layouts save",
      "zstd -19",
      "mmh smaller than zstd -19 by",
    ],
    summaryRows,
  );
  const summaryLines = results.map((r) => {
    const vsOne = 1 - r.mmh / r.one;
    const vs19 = 1 - r.mmh / r.zstd19;
    return `- ${r.t.dtype}${r.t.exact ? "" : " (K-quant-shaped, simplified quantiser)"}: mmh default stores ${r4(r.mmh, r.fileBytes)} of the file (${r.mmh} bytes), ${vsOne >= 0 ? `${pct(vsOne)} less` : `${pct(-vsOne)} more`} than the same chunks coded as one byte stream (${r4(r.one, r.fileBytes)}), and ${vs19 >= 0 ? `${pct(vs19)} less` : `${pct(-vs19)} more`} than zstd -19 (${r4(r.zstd19, r.fileBytes)}); --goal ratio ${r4(r.ratio, r.fileBytes)}, order-0 bound of the fields ${r4(r.order0Fields + r.overhead, r.fileBytes)}.`;
  });
  const surprises: string[] = [];
  for (const r of results) {
    if (r.mmh >= r.zstd19)
      surprises.push(
        `- ${r.t.dtype}: mmh default (${r.mmh} bytes) is not smaller than zstd -19 (${r.zstd19} bytes).`,
      );
    if (r.ratio >= r.zstd19 && r.mmh < r.zstd19) {
      // cannot happen unless --goal ratio is worse than default; reported if it does
      surprises.push(
        `- ${r.t.dtype}: mmh --goal ratio (${r.ratio}) is not smaller than zstd -19 (${r.zstd19}).`,
      );
    }
    if (r.mmh >= r.one)
      surprises.push(
        `- ${r.t.dtype}: the block layout (${r.mmh} bytes) does not beat one byte stream (${r.one} bytes).`,
      );
    const notHier = [...r.codecs.entries()].filter(([c]) => c !== "HIER");
    // (a tensor's last, short chunk is often stored as NONE by any codec: only a real loss counts)
    if (notHier.length > 0 && r.mmhHier < r.mmh * 0.999) {
      const total = [...r.codecs.values()].reduce((a, b) => a + b, 0);
      surprises.push(
        `- ${r.t.dtype}: mmh default (auto, balanced) coded ${notHier.map(([c, n]) => `${n} of the tensor's ${total} chunks as ${c}`).join(" and ")} rather than with HIER: it stores ${r4(r.mmh, r.fileBytes)}, where \`--codec hier\` stores ${r4(r.mmhHier, r.fileBytes)} (${pct(1 - r.mmhHier / r.mmh)} less) and \`--goal ratio\` ${r4(r.ratio, r.fileBytes)}.`,
      );
    }
    if (r.ratio > r.mmh)
      surprises.push(`- ${r.t.dtype}: --goal ratio (${r.ratio}) is larger than the default (${r.mmh}).`);
    for (const f of r.fields)
      if (f.coded > f.bytes)
        surprises.push(
          `- ${r.t.dtype}: field ${f.name} codes to ${f.coded} bytes, more than its ${f.bytes} raw bytes.`,
        );
  }

  const sizeTable = table(
    [
      "type",
      "GGUF bytes",
      "mmh default",
      "mmh --goal ratio",
      "HIER, one byte stream (before block layouts)",
      "mmh --codec hier",
      "mmh --codec zstd",
      "zstd -3",
      "zstd -19",
      "order-0 bound, fields",
      "order-0 bound, one stream",
      "mmh chunks (codecs)",
    ],
    results.map((r) => [
      label(r.t),
      String(r.fileBytes),
      r4(r.mmh, r.fileBytes),
      r4(r.ratio, r.fileBytes),
      r4(r.one, r.fileBytes),
      r4(r.mmhHier, r.fileBytes),
      r4(r.mmhZstd, r.fileBytes),
      r4(r.zstd3, r.fileBytes),
      r4(r.zstd19, r.fileBytes),
      r4(r.order0Fields + r.overhead, r.fileBytes),
      r4(r.order0One + r.overhead, r.fileBytes),
      mix(r.codecs),
    ]),
  );
  const byteTable = table(
    [
      "type",
      "GGUF",
      "mmh default",
      "mmh --goal ratio",
      "one byte stream",
      "mmh --codec hier",
      "mmh --codec zstd",
      "zstd -3",
      "zstd -19",
    ],
    results.map((r) => [
      label(r.t),
      String(r.fileBytes),
      String(r.mmh),
      String(r.ratio),
      String(r.one),
      String(r.mmhHier),
      String(r.mmhZstd),
      String(r.zstd3),
      String(r.zstd19),
    ]),
  );
  const fieldRows: string[][] = [];
  for (const r of results) {
    for (const f of r.fields)
      fieldRows.push([
        `${label(r.t)} ${f.name}`,
        String(f.bytes),
        fmt((f.order0 * 8) / f.bytes, 3),
        String(f.coded),
        fmt((f.coded * 8) / f.bytes, 3),
        mix(f.methods, METHOD_NAMES),
      ]);
  }
  const fieldTable = table(
    [
      "type, field",
      "raw bytes",
      "order-0 bits / byte",
      "HIER coded bytes",
      "coded bits / byte",
      "methods (chunks)",
    ],
    fieldRows,
  );
  const checkTable = table(
    [
      "type",
      "quantiser",
      "blocks checked",
      "max error (steps)",
      "weights > 1.5 steps off (clamped at a range end)",
      "RMS error / RMS weight",
    ],
    results.map((r) => [
      r.t.dtype,
      r.t.exact
        ? `as ggml's quantize_row_${r.t.dtype.toLowerCase()}_ref`
        : "K-quant-shaped (simplified quantiser)",
      String(r.check.blocks),
      fmt(r.check.maxErrorSteps, 3),
      String(r.check.clamped),
      fmt(r.check.relativeRms, 4),
    ]),
  );
  const secs = (ms: number) => fmt(ms / 1000, 3);
  const speedTable = table(
    [
      "type",
      "MB",
      "mmh compress s",
      "zstd -3 s",
      "mmh -d s",
      "zstd -d s",
      "mmh compress MB/s",
      "mmh -d MB/s",
    ],
    results.map((r) => [
      label(r.t),
      fmt(r.fileBytes / 1e6, 2),
      secs(r.times.mmhC),
      secs(r.times.zstdC),
      secs(r.times.mmhD),
      secs(r.times.zstdD),
      fmt(mbps(r.fileBytes, r.times.mmhC), 1),
      fmt(mbps(r.fileBytes, r.times.mmhD), 1),
    ]),
  );
  const notes = results.filter((r) => r.t.note).map((r) => `- ${r.t.dtype}: ${r.t.note}.`);

  console.log(`\n${summaryTable}\n`);
  console.log(summaryLines.join("\n"));
  console.log(surprises.length > 0 ? `\nSurprises:\n${surprises.join("\n")}` : "\nNo surprises.");
  console.log(
    `\nload average at end: ${loadAtEnd.map((l) => fmt(l, 2)).join(", ")}; took ${fmt(elapsed / 1000, 0)} s`,
  );

  const lines = [
    "# ggml-quantised weights: HIER block layouts",
    "",
    ...machineLines(`npx node bench/quantised.ts${quick ? " --quick" : ""}`),
    codeLine(),
    `- zstd CLI: ${zstdCliVersion()}`,
    `- Load average (1, 5, 15 min) at start: ${loadAtStart.map((l) => fmt(l, 2)).join(", ")}; at end: ${loadAtEnd.map((l) => fmt(l, 2)).join(", ")}`,
    `- Took ${fmt(elapsed / 1000, 0)} s. ${contentionNote(waitAtStart, elapsed)}`,
    "",
    "**The data is synthetic.** No real GGUF file was available on this machine, so these are not figures for a real model: the weights are drawn by this script and quantised by it. Real quantised weights may compress differently (trained layers have structure, outlier channels and per-layer scale patterns these draws lack, and ggml's K-quant search picks different scales than the simplified quantisers below).",
    "",
    `- Weights: ${WEIGHTS} per type (${ROWS} rows of ${ROW}), the same draws for every type: a normal over the square root of a chi-square with ${DOF} degrees of freedom (Student-t, scaled to unit variance), times ${STD}, each row times exp(N(0, ${ROW_SIGMA})); src/tools/gen.ts's rng and gaussian, seed ${SEED}. Measured: std ${fmt(std, 5)}, kurtosis ${fmt(kurtosis, 2)} (a normal has 3).`,
    "- Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1: quantised as ggml's quantize_row_*_ref (ggml-quants.c) do, in float32 arithmetic, the f16 scales rounded to nearest even.",
    "- Types marked * (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K) are **K-quant-shaped (simplified quantiser)**: blocks with the exact byte layout of ggml's block_q*_K (scales and mins packed as ggml packs them), made by ggml's quantize_row_q*_K_ref with its per-sub-block search (make_qkx2_quants, make_q3_quants' refinement, make_qx_quants' search) replaced by plain min/max (Q2_K, Q4_K, Q5_K) or absolute-max (Q3_K, Q6_K) scaling of each sub-block.",
    ...notes,
    `- Each GGUF file (v3, alignment 32, written by test/support-gguf.ts) holds one tensor \`blk.0.ffn_down.weight\`, dims [${ROW}, ${ROWS}], of that type; mmh sees it as one typed region, coded in chunks of whole blocks of at most 512 KiB.`,
    "- Sizes are exact, as stored / original (the whole GGUF file). `mmh default`, `--goal ratio`, `--codec hier` and `--codec zstd`: `node bin/mmh.js FILE -o OUT -f -q [OPTIONS]`, each output decoded again with `node bin/mmh.js -d` and its sha256 checked against the input's. zstd: `zstd -3 -c FILE`, `zstd -19 -c FILE`.",
    `- **HIER, one byte stream (before block layouts)**: the tensor data cut into 512 KiB pieces, each coded in process by \`hierCodec.encode(piece, { dtype: "U8", level: 3 })\` (HIER's bytes layout, one stream; each decoded again), summing payloads + ${PER_CHUNK} bytes per chunk (${CHUNK_HEADER_SIZE}-byte record header, ${INDEX_ENTRY_SIZE}-byte index entry), plus the bytes of the default .mmh file outside the tensor's chunks (header, the GGUF header region, index, trailer: ${results.map((r) => `${r.t.dtype} ${r.overhead}`).join(", ")} bytes), so it is the whole file as mmh would store it with the tensor's chunks coded as one byte stream.`,
    "- Order-0 bound, fields: the sum over the block fields (the streams of the type's block layout, FORMAT.md §6.2) of the order-0 entropy of each field's bytes over the whole tensor, plus the same non-tensor bytes; one stream: the order-0 entropy of the tensor's bytes as one stream. Context, not a limit: HIER codes each chunk with its own tables, and context Huffman (`--goal ratio`) codes below order 0.",
    "",
    "## Summary",
    "",
    summaryTable,
    "",
    "Block layouts save = 1 − (mmh default / one byte stream); mmh smaller than zstd -19 by = 1 − (mmh default / zstd -19); negative means larger.",
    "",
    ...summaryLines,
    "",
    surprises.length > 0
      ? "Surprising results:"
      : "Nothing surprising: on every type mmh default is smaller than zstd -19 and than one byte stream, every field codes to at most its raw size, and `--codec hier` was nowhere 0.1% or more smaller than the default.",
    ...(surprises.length > 0 ? ["", ...surprises] : []),
    "",
    "## Sizes (stored / original)",
    "",
    sizeTable,
    "",
    "Exact bytes:",
    "",
    byteTable,
    "",
    "## Per field",
    "",
    `Each field of the block layout as HIER codes it, in process (\`hierCodec.encode(chunk, { dtype: TYPE, level: 3 })\` on the chunks the engine plans, ${results.map((r) => `${r.t.dtype} ${r.blockChunks}`).join(", ")} chunks), from the payload's stream descriptors. The HIER payloads total ${results.map((r) => `${r.t.dtype} ${r.blockPayload}`).join(", ")} bytes. An f16 scale is two fields, its low byte (.lo) and its high byte (.hi, sign and exponent).`,
    "",
    fieldTable,
    "",
    "## Quantiser check",
    "",
    "Blocks dequantised by code written from ggml's dequantize_row_* (the first 64 and every 97th after); every weight had to dequantise to a whole level in the type's range, with the step read from the block no larger than 2.1 times the sub-block's range over the type's levels, and lie within 1.5 quantisation steps of its float value, or else beyond the values its sub-block can represent and dequantised to the nearest of them, within 4 steps (the clamping a K-quant's rounded sub-block scale causes, in ggml's quantisers too; counted below). A wrong bit layout fails this and stops the run.",
    "",
    checkTable,
    "",
    "## Speed (context)",
    "",
    `One timed run of each command after a warm-up run, wall clock including process start, files in the page cache; mmh with its default threads (one, for files this size), zstd with its defaults. \`node bin/mmh.js --version\` alone took ${secs(startup)} s. Every timed output was decoded and checked. Single runs vary: compare within this run only.`,
    "",
    speedTable,
    "",
  ];
  writeReport(outFile, lines);
}

await main();
