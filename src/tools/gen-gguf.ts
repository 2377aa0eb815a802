/**
 * `mmh gen --dtype Q4_K` (and the other ggml block types): a GGUF v3 file of LLM-like
 * tensors holding real quantised blocks, made by the reference quantisers of quant.ts from
 * Student-t-like weights. Marked synthetic in its metadata (`mmh.synthetic`).
 */
import type { BlockDTypeName } from "../common/dtype.ts";
import { QUANT_TYPES, quantise, studentWeights } from "./quant.ts";

const ALIGNMENT = 32;

const LAYER = [
  ["attn_q.weight", 1, 1],
  ["attn_k.weight", 0.25, 1],
  ["attn_v.weight", 0.25, 1],
  ["attn_output.weight", 1, 1],
  ["ffn_gate.weight", 2.75, 1],
  ["ffn_up.weight", 2.75, 1],
  ["ffn_down.weight", 1, 2.75],
] as const;

class Writer {
  private readonly parts: Buffer[] = [];
  length = 0;
  raw(b: Buffer): this {
    this.parts.push(b);
    this.length += b.length;
    return this;
  }
  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    return this.raw(b);
  }
  u64(v: number): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    return this.raw(b);
  }
  str(s: string): this {
    const b = Buffer.from(s, "utf8");
    return this.u64(b.length).raw(b);
  }
  pad(): this {
    const n = (ALIGNMENT - (this.length % ALIGNMENT)) % ALIGNMENT;
    return n ? this.raw(Buffer.alloc(n)) : this;
  }
  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

const GGUF_STRING = 8;

export function isBlockDType(dtype: string): dtype is BlockDTypeName {
  return QUANT_TYPES.some((t) => t.dtype === dtype);
}

/** About `size` bytes of GGUF: layers of `dtype` blocks quantised from weights of standard deviation `std`. */
export function genGguf(size: number, dtype: BlockDTypeName, std: number, seed: number): Buffer {
  const type = QUANT_TYPES.find((t) => t.dtype === dtype)!;
  const bytesPerWeight = type.bytes / type.weights;
  const weights = Math.max(256, Math.floor(size / bytesPerWeight));
  let hidden = 256;
  while (hidden * hidden * 12 < weights && hidden < 8192) hidden *= 2;
  const tensors: { name: string; dims: [number, number]; data: Buffer }[] = [];
  let used = 0;
  let k = 0;
  for (let layer = 0; weights - used >= 256; layer++) {
    for (const [name, rowsScale, colsScale] of LAYER) {
      const room = weights - used;
      if (room < 256) break;
      // Rows of whole 256-weight super-blocks, so every block type fits.
      const cols = Math.ceil((hidden * colsScale) / 256) * 256;
      const rows = Math.max(1, Math.min(Math.round(hidden * rowsScale), Math.floor(room / cols)));
      const width = rows * cols <= room ? cols : Math.floor(room / 256) * 256;
      const x = studentWeights(rows * width, seed + k++, { row: width, std });
      tensors.push({ name: `blk.${layer}.${name}`, dims: [width, rows], data: quantise(type, x) });
      used += rows * width;
    }
  }
  const kv: [string, string][] = [
    ["general.architecture", "llama"],
    ["general.name", `synthetic Student-t weights, ${dtype} (mmh gen --seed ${seed}; not a real model)`],
    ["mmh.synthetic", "true"],
  ];
  const w = new Writer().raw(Buffer.from("GGUF", "latin1")).u32(3).u64(tensors.length).u64(kv.length);
  for (const [key, value] of kv) w.str(key).u32(GGUF_STRING).str(value);
  let offset = 0;
  for (const t of tensors) {
    w.str(t.name).u32(2).u64(t.dims[0]).u64(t.dims[1]).u32(type.ggml).u64(offset);
    offset += Math.ceil(t.data.length / ALIGNMENT) * ALIGNMENT;
  }
  w.pad();
  for (const [i, t] of tensors.entries()) {
    w.raw(t.data);
    if (i < tensors.length - 1) w.pad();
  }
  return w.bytes();
}
