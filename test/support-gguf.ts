/**
 * A GGUF writer for tests, written from ggml's docs/gguf.md (v2 and v3 share the layout:
 * u64 counts and string lengths). It builds files in memory; `ByteWriter` is exposed so
 * tests can also hand-craft broken ones.
 */

/** GGUF metadata value type ids. */
export const GT = {
  u8: 0,
  i8: 1,
  u16: 2,
  i16: 3,
  u32: 4,
  i32: 5,
  f32: 6,
  bool: 7,
  string: 8,
  array: 9,
  u64: 10,
  i64: 11,
  f64: 12,
} as const;

export type GgufValue =
  | { t: "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "f32" | "f64"; v: number }
  | { t: "u64" | "i64"; v: bigint | number }
  | { t: "bool"; v: boolean }
  | { t: "string"; v: string }
  | { t: "array"; of: keyof typeof GT; items: GgufValue[] };

/** ggml type ids and their block geometry (elements per block, bytes per block). */
export const GGML = {
  F32: { id: 0, block: 1, size: 4 },
  F16: { id: 1, block: 1, size: 2 },
  Q4_0: { id: 2, block: 32, size: 18 },
  Q8_0: { id: 8, block: 32, size: 34 },
  Q4_K: { id: 12, block: 256, size: 144 },
  I32: { id: 26, block: 1, size: 4 },
  BF16: { id: 30, block: 1, size: 2 },
  MXFP4: { id: 39, block: 32, size: 17 },
} as const;

export class ByteWriter {
  private parts: Buffer[] = [];
  length = 0;

  raw(bytes: Uint8Array): this {
    const b = Buffer.from(bytes);
    this.parts.push(b);
    this.length += b.length;
    return this;
  }
  u8(v: number): this {
    return this.raw(Buffer.from([v]));
  }
  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    return this.raw(b);
  }
  u64(v: number | bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    return this.raw(b);
  }
  /** A GGUF string: u64 byte length, then the bytes. */
  str(s: string | Uint8Array): this {
    const b = typeof s === "string" ? Buffer.from(s, "utf8") : Buffer.from(s);
    return this.u64(b.length).raw(b);
  }
  pad(alignment: number): this {
    const n = (alignment - (this.length % alignment)) % alignment;
    return this.raw(Buffer.alloc(n));
  }
  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

export function writeValue(w: ByteWriter, value: GgufValue): void {
  const b = Buffer.alloc(8);
  switch (value.t) {
    case "u8":
      w.u8(value.v);
      break;
    case "i8":
      b.writeInt8(value.v);
      w.raw(b.subarray(0, 1));
      break;
    case "u16":
      b.writeUInt16LE(value.v);
      w.raw(b.subarray(0, 2));
      break;
    case "i16":
      b.writeInt16LE(value.v);
      w.raw(b.subarray(0, 2));
      break;
    case "u32":
      w.u32(value.v);
      break;
    case "i32":
      b.writeInt32LE(value.v);
      w.raw(b.subarray(0, 4));
      break;
    case "f32":
      b.writeFloatLE(value.v);
      w.raw(b.subarray(0, 4));
      break;
    case "f64":
      b.writeDoubleLE(value.v);
      w.raw(b);
      break;
    case "u64":
      w.u64(value.v);
      break;
    case "i64":
      b.writeBigInt64LE(BigInt(value.v));
      w.raw(b);
      break;
    case "bool":
      w.u8(value.v ? 1 : 0);
      break;
    case "string":
      w.str(value.v);
      break;
    case "array":
      w.u32(GT[value.of]);
      w.u64(value.items.length);
      for (const item of value.items) writeValue(w, item);
      break;
  }
}

export interface GgufTensorSpec {
  name: string;
  /** ggml order: dims[0] varies fastest. */
  dims: number[];
  type: { id: number; block: number; size: number };
  /** Defaults to deterministic bytes of the right length (F32: 0, 0.5, 1, ...). */
  data?: Buffer;
  /** Override the offset written in the tensor info (relative to the data section). */
  offset?: number;
}

export interface GgufSpec {
  version?: number;
  /** Written as general.alignment when given; 32 is assumed otherwise. */
  alignment?: number;
  kv?: [string, GgufValue][];
  tensors: GgufTensorSpec[];
}

export interface GgufFile {
  bytes: Buffer;
  dataOffset: number;
  /** Absolute file offset and byte length of each tensor, in spec order. */
  tensors: { name: string; offset: number; length: number }[];
}

export function tensorBytes(t: GgufTensorSpec): number {
  const elements = t.dims.reduce((a, b) => a * b, 1);
  return (elements / t.type.block) * t.type.size;
}

function defaultData(t: GgufTensorSpec): Buffer {
  const length = tensorBytes(t);
  const out = Buffer.alloc(length);
  if (t.type.id === GGML.F32.id) for (let i = 0; i < length / 4; i++) out.writeFloatLE(i * 0.5, i * 4);
  else for (let i = 0; i < length; i++) out[i] = (i * 37 + t.name.length) & 0xff;
  return out;
}

export function writeGguf(spec: GgufSpec): GgufFile {
  const alignment = spec.alignment ?? 32;
  const w = new ByteWriter();
  const kv: [string, GgufValue][] = [...(spec.kv ?? [])];
  if (spec.alignment !== undefined) kv.unshift(["general.alignment", { t: "u32", v: spec.alignment }]);
  w.raw(Buffer.from("GGUF", "latin1"))
    .u32(spec.version ?? 3)
    .u64(spec.tensors.length)
    .u64(kv.length);
  for (const [key, value] of kv) {
    w.str(key);
    w.u32(GT[value.t]);
    writeValue(w, value);
  }
  const datas = spec.tensors.map((t) => t.data ?? defaultData(t));
  let rel = 0;
  const relOffsets: number[] = [];
  for (let i = 0; i < spec.tensors.length; i++) {
    const t = spec.tensors[i];
    relOffsets.push(t.offset ?? rel);
    rel += Math.ceil(datas[i].length / alignment) * alignment;
    w.str(t.name).u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(t.type.id).u64(relOffsets[i]);
  }
  w.pad(alignment);
  const dataOffset = w.length;
  for (let i = 0; i < datas.length; i++) {
    w.raw(datas[i]);
    if (i < datas.length - 1) w.pad(alignment);
  }
  return {
    bytes: w.bytes(),
    dataOffset,
    tensors: spec.tensors.map((t, i) => ({
      name: t.name,
      offset: dataOffset + relOffsets[i],
      length: datas[i].length,
    })),
  };
}

/** A small llama-like model: F32 and F16 tensors, a Q4_0 and a Q8_0 one, a token array. */
export function sampleGguf(version = 3, alignment?: number): GgufFile {
  return writeGguf({
    version,
    alignment,
    kv: [
      ["general.architecture", { t: "string", v: "llama" }],
      ["general.name", { t: "string", v: "tiny test model" }],
      ["general.quantization_version", { t: "u32", v: 2 }],
      ["llama.context_length", { t: "u64", v: 2048 }],
      ["llama.attention.layer_norm_rms_epsilon", { t: "f32", v: 1e-5 }],
      ["llama.use_parallel_residual", { t: "bool", v: true }],
      [
        "tokenizer.ggml.tokens",
        {
          t: "array",
          of: "string",
          items: ["<s>", "</s>", "hello", "wörld"].map((v) => ({ t: "string", v })),
        },
      ],
      [
        "tokenizer.ggml.scores",
        { t: "array", of: "f32", items: [0, 0, -1.5, -2].map((v) => ({ t: "f32", v })) },
      ],
    ],
    tensors: [
      { name: "token_embd.weight", dims: [8, 4], type: GGML.F32 },
      { name: "blk.0.attn_norm.weight", dims: [8], type: GGML.F16 },
      { name: "blk.0.attn_q.weight", dims: [64, 2], type: GGML.Q4_0 },
      { name: "blk.0.ffn_down.weight", dims: [32, 3], type: GGML.Q8_0 },
      { name: "output.weight", dims: [8, 2], type: GGML.BF16 },
    ],
  });
}
