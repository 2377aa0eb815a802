/**
 * What context Huffman (HIER stream method 4, each symbol coded with the codebook of its
 * previous symbol's bucket; used at `--goal ratio`) gains over order-0 Huffman on real
 * weights, per dtype and per field. Each file is planned into chunks as mmh does; every
 * chunk of a float dtype is split with its dtype's HIER layout, and each field stream is
 * coded both ways (the stored size is the smaller of the coded block and the stream).
 * Writes bench/results/context.md.
 *
 *   npx node bench/context.ts            (after bench/floor.ts, whose inputs it reads)
 *   npx node bench/context.ts --quick    the ../shared/data files only, writes nothing
 *
 * Inputs: ../shared/data/*.safetensors (real F32), their BF16 and FP16 roundings and the
 * npm model files that bench/floor.ts leaves in .bench-data/floor/ (real weights only:
 * no generated weights).
 */
import "./lib/help.ts";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { huffmanEncode } from "../src/codecs/hier/huffman.ts";
import { huffmanEncodeContext } from "../src/codecs/hier/huffman-context.ts";
import { bufferSource } from "../src/common/source.ts";
import { describeSource } from "../src/engine/describe.ts";
import { codeLine, root, writeReport } from "./lib/commands.ts";
import { floatChunkStreams } from "./lib/fields.ts";
import { argValue, fmt, machineLines, table } from "./lib/report.ts";

const quick = process.argv.includes("--quick");
const outFile = argValue("--out") ?? (quick ? undefined : join(root, "bench", "results", "context.md"));
const SHARED = join(root, "..", "shared", "data");
const FLOOR = join(root, ".bench-data", "floor");

function files(): string[] {
  const list = existsSync(SHARED)
    ? readdirSync(SHARED)
        .filter((f) => f.endsWith(".safetensors"))
        .map((f) => join(SHARED, f))
    : [];
  if (quick) return list;
  if (existsSync(FLOOR))
    for (const f of readdirSync(FLOOR).sort())
      if (/\.(bf16|f16)\.safetensors$/.test(f) && !f.startsWith("gen-")) list.push(join(FLOOR, f));
  const npm = join(FLOOR, "npm");
  if (existsSync(npm))
    for (const pkg of readdirSync(npm).sort()) {
      const dir = join(npm, pkg);
      if (!pkg.endsWith(".tgz"))
        for (const sub of ["package/assets", "package/dist", "package/model"]) {
          const folder = join(dir, sub);
          if (existsSync(folder))
            for (const f of readdirSync(folder).sort())
              if (f.endsWith(".onnx") || f.endsWith(".bin")) list.push(join(folder, f));
        }
    }
  return list;
}

interface Tally {
  symbols: number;
  order0: number;
  context: number;
}
const tallies = new Map<string, Tally>();

const capped = (coded: number, n: number) => Math.min(coded, n);

/** The exponent field the HIER layout's first stream holds, of element i. */
function exponentOf(view: DataView, dtype: string, i: number): number {
  if (dtype === "F32") return (view.getUint32(i * 4, true) >>> 23) & 0xff;
  return (view.getUint16(i * 2, true) >>> 7) & 0xff; // BF16 exponent; F16 bits 7-14
}

/** Empirical conditional entropy in bits of `cur` given `ctx` (counts, no model cost). */
function conditionalBits(pairs: Map<number, Map<number, number>>): number {
  let bits = 0;
  for (const row of pairs.values()) {
    let total = 0;
    for (const c of row.values()) total += c;
    for (const c of row.values()) bits -= c * Math.log2(c / total);
  }
  return bits;
}

/** Per dtype: symbols and bits of the exponent field given nothing, its left neighbour, the one above, both. */
const grid = new Map<
  string,
  { n: number; h0: number; left: number; up: number; both: number; tensors: number }
>();

function countGrid(data: Buffer, dtype: string, offset: number, length: number, cols: number): void {
  const width = dtype === "F32" ? 4 : 2;
  const n = Math.min(Math.floor(length / width), 1 << 20);
  if (n < 4 * cols || cols < 8 || n < 4096) return;
  const view = new DataView(data.buffer, data.byteOffset + offset, n * width);
  const maps = [new Map(), new Map(), new Map(), new Map()] as Map<number, Map<number, number>>[];
  const add = (m: Map<number, Map<number, number>>, ctx: number, cur: number) => {
    let row = m.get(ctx);
    if (!row) {
      row = new Map();
      m.set(ctx, row);
    }
    row.set(cur, (row.get(cur) ?? 0) + 1);
  };
  let counted = 0;
  for (let i = cols; i < n; i++) {
    if (i % cols === 0) continue;
    const e = exponentOf(view, dtype, i);
    const left = exponentOf(view, dtype, i - 1);
    const up = exponentOf(view, dtype, i - cols);
    add(maps[0], 0, e);
    add(maps[1], left, e);
    add(maps[2], up, e);
    add(maps[3], (left << 8) | up, e);
    counted++;
  }
  const g = grid.get(dtype) ?? { n: 0, h0: 0, left: 0, up: 0, both: 0, tensors: 0 };
  g.n += counted;
  g.h0 += conditionalBits(maps[0]);
  g.left += conditionalBits(maps[1]);
  g.up += conditionalBits(maps[2]);
  g.both += conditionalBits(maps[3]);
  g.tensors++;
  grid.set(dtype, g);
}

for (const file of files()) {
  const data = readFileSync(file);
  const layout = await describeSource(bufferSource(data), 512 << 10);
  for (const t of layout.recognised.tensors)
    if ((t.dtype === "F32" || t.dtype === "BF16" || t.dtype === "F16") && t.shape.length >= 2)
      countGrid(data, t.dtype, t.offset, t.length, t.shape[t.shape.length - 1]);
  for (const { dtype, streams } of floatChunkStreams(data, layout.plan)) {
    for (const [k, s] of streams.entries()) {
      const key = `${dtype}|${k}`;
      const t = tallies.get(key) ?? { symbols: 0, order0: 0, context: 0 };
      const plain = capped(huffmanEncode(s).length, s.length);
      t.symbols += s.length;
      t.order0 += plain;
      // A near-random stream (HIER stores it) is not context coded: counted as order-0.
      const random = plain >= s.length * 0.99;
      t.context += random ? plain : Math.min(plain, capped(huffmanEncodeContext(s).length, s.length));
      tallies.set(key, t);
    }
  }
  console.log(file);
}

const FIELDS: Record<string, string[]> = {
  BF16: ["exponent", "sign + mantissa"],
  F16: ["bits 7-14 (exponent + 3 mantissa bits)", "sign + mantissa bits 0-6"],
  F32: ["exponent", "mantissa byte 0", "mantissa byte 1", "sign + mantissa top 7 bits"],
};
const rows: string[][] = [];
const byDtype = new Map<string, Tally>();
for (const [key, t] of [...tallies.entries()].sort()) {
  const [dtype, k] = key.split("|");
  rows.push([
    dtype,
    FIELDS[dtype]?.[Number(k)] ?? k,
    String(t.symbols),
    fmt((t.order0 * 8) / t.symbols, 3),
    fmt((t.context * 8) / t.symbols, 3),
    `${fmt((1 - t.context / t.order0) * 100, 2)}%`,
  ]);
  const d = byDtype.get(dtype) ?? { symbols: 0, order0: 0, context: 0 };
  d.symbols += t.symbols;
  d.order0 += t.order0;
  d.context += t.context;
  byDtype.set(dtype, d);
}
const dtypeRows = [...byDtype.entries()].map(([dtype, d]) => [
  dtype,
  String(d.order0),
  String(d.context),
  `${fmt((1 - d.context / d.order0) * 100, 2)}%`,
]);

const gridRows = [...grid.entries()].map(([dtype, g]) => [
  dtype,
  String(g.tensors),
  String(g.n),
  fmt(g.h0 / g.n, 3),
  fmt(g.left / g.n, 3),
  fmt(g.up / g.n, 3),
  fmt(g.both / g.n, 3),
]);

writeReport(outFile, [
  "# Context Huffman on real weights",
  "",
  ...machineLines(`npx node bench/context.ts${quick ? " --quick" : ""}`),
  codeLine(),
  "",
  "Real weights only: the F32 files in ../shared/data, the same rounded to BF16 and FP16, and the F32 tensors of the npm model files bench/floor.ts fetches (PaddleOCR and Silero VAD ONNX, face-api tfjs shards where mmh finds float regions). Every chunk of 4096 or more elements, split by its dtype's HIER layout; each field coded by order-0 Huffman and by context Huffman (the codebook chosen by the previous symbol's bucket, up to 4), each capped at the stream's own length (stored; a stream order-0 Huffman cannot bring below 99% of its length is counted as stored both ways, as HIER stores it). Bits per symbol, and the context coder's saving.",
  "",
  "## Per field",
  "",
  table(["dtype", "field", "symbols", "order-0 bits/symbol", "context bits/symbol", "saving"], rows),
  "",
  "## Per dtype (all fields)",
  "",
  table(["dtype", "order-0 bytes", "context bytes", "saving"], dtypeRows),
  "",
  "## Which neighbour predicts the exponent",
  "",
  "For the tensors of 2 or more dimensions in files with a tensor table (rows of the last dimension), the exponent field (the first HIER stream: F32 bits 23-30, BF16 bits 7-14, F16 bits 7-14) of up to 2^20 elements per tensor, not the first row or column: its empirical entropy alone, given the previous element in the row (left), given the same column in the previous row (up), and given both. Bits per symbol with no model cost counted, so they are lower bounds, and the two-neighbour figure (65,536 contexts) flatters small tensors most.",
  "",
  table(
    ["dtype", "tensors", "symbols", "H(e)", "H(e given left)", "H(e given up)", "H(e given left and up)"],
    gridRows,
  ),
  "",
]);
