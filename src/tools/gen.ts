/**
 * `mmh gen`: deterministic synthetic data for tests, demos and benchmarks. The same seed
 * and size always give the same bytes. Synthetic data is labelled as such (in the
 * safetensors __metadata__), so nobody mistakes its figures for real weights.
 */
import type { BlockDTypeName } from "../common/dtype.ts";
import { MmhError } from "../common/errors.ts";
import { genGguf, isBlockDType } from "./gen-gguf.ts";

export type GenKind = "safetensors" | "gguf" | "periodic" | "text" | "random";
/** Float and int dtypes (safetensors), and ggml block types (GGUF: safetensors cannot hold them). */
export type GenDType = "BF16" | "F16" | "F32" | "I8" | "F8_E4M3" | GenBlockDType;
export type GenBlockDType = Exclude<BlockDTypeName, "IQ4_NL">;
export const GEN_KINDS: readonly GenKind[] = ["safetensors", "gguf", "periodic", "text", "random"];
export const GEN_BLOCK_DTYPES: readonly GenBlockDType[] = [
  "Q4_0",
  "Q4_1",
  "Q5_0",
  "Q5_1",
  "Q8_0",
  "Q8_1",
  "Q2_K",
  "Q3_K",
  "Q4_K",
  "Q5_K",
  "Q6_K",
];
export const GEN_DTYPES: readonly GenDType[] = ["BF16", "F16", "F32", "I8", "F8_E4M3", ...GEN_BLOCK_DTYPES];

export interface GenOptions {
  kind: GenKind;
  size: number;
  seed?: number;
  dtype?: GenDType;
  /** Standard deviation of the weights (default 0.02). */
  std?: number;
  /** Period of `periodic` data in bytes (default 251). */
  period?: number;
}

/** mulberry32: small, fast, and the same everywhere. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function gaussian(next: () => number): () => number {
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const v = spare;
      spare = undefined;
      return v;
    }
    const u = Math.max(next(), 1e-300);
    const r = Math.sqrt(-2 * Math.log(u));
    const theta = 2 * Math.PI * next();
    spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  };
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

function toBf16(x: number): number {
  f32[0] = x;
  const bits = u32[0];
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

function toF16(x: number): number {
  f32[0] = x;
  const bits = u32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = ((bits >>> 23) & 0xff) - 127 + 15;
  const mant = bits & 0x7fffff;
  if (exp >= 31) return sign | 0x7c00;
  if (exp <= 0) {
    if (exp < -10) return sign;
    const m = (mant | 0x800000) >>> (1 - exp + 13);
    return sign | m;
  }
  let h = sign | (exp << 10) | (mant >>> 13);
  if (mant & 0x1000 && (mant & 0x2fff) !== 0) h++; // round to nearest even
  return h;
}

/** E4M3 (bias 7, no infinities, max 448), round to nearest. */
function toE4M3(x: number): number {
  const sign = x < 0 || Object.is(x, -0) ? 0x80 : 0;
  let a = Math.abs(x);
  if (a >= 448) return sign | 0x7e;
  if (a < 2 ** -10) return sign;
  let e = Math.floor(Math.log2(a));
  if (e < -6) {
    const m = Math.round(a / 2 ** -9); // subnormal: m * 2^-9
    return sign | Math.min(m, 7);
  }
  let m = Math.round((a / 2 ** e - 1) * 8);
  if (m === 8) {
    m = 0;
    e++;
  }
  a = e + 7;
  return sign | (a << 3) | m;
}

/**
 * Spread of the per-row scale: each row's standard deviation is std × e^(ROW_SPREAD × z),
 * z ~ N(0, 1), so rows differ by about ±10% in scale, as channels of trained layers do,
 * while the order-0 entropy of the fields stays near that of N(0, std) draws.
 */
export const ROW_SPREAD = 0.1;

/** Weights drawn N(0, std) with a per-row scale (log-normal), as trained layers have. */
export function fillWeights(
  rows: number,
  cols: number,
  std: number,
  next: () => number,
  dtype: Exclude<GenDType, GenBlockDType>,
): Buffer {
  const normal = gaussian(next);
  const width = dtype === "F32" ? 4 : dtype === "BF16" || dtype === "F16" ? 2 : 1;
  const out = Buffer.alloc(rows * cols * width);
  for (let r = 0; r < rows; r++) {
    const scale = std * Math.exp(ROW_SPREAD * normal());
    let rowMax = 0;
    const row = new Float64Array(cols);
    for (let c = 0; c < cols; c++) {
      row[c] = normal() * scale;
      rowMax = Math.max(rowMax, Math.abs(row[c]));
    }
    const base = r * cols * width;
    for (let c = 0; c < cols; c++) {
      const v = row[c];
      const at = base + c * width;
      switch (dtype) {
        case "F32":
          out.writeFloatLE(v, at);
          break;
        case "BF16":
          out.writeUInt16LE(toBf16(v), at);
          break;
        case "F16":
          out.writeUInt16LE(toF16(v), at);
          break;
        case "I8":
          out.writeInt8(Math.max(-127, Math.min(127, Math.round((v / (rowMax || 1)) * 127))), at);
          break;
        default:
          out[at] = toE4M3((v / (rowMax || 1)) * 448);
      }
    }
  }
  return out;
}

const LAYER = [
  ["self_attn.q_proj.weight", 1, 1],
  ["self_attn.k_proj.weight", 0.25, 1],
  ["self_attn.v_proj.weight", 0.25, 1],
  ["self_attn.o_proj.weight", 1, 1],
  ["mlp.gate_proj.weight", 2.75, 1],
  ["mlp.up_proj.weight", 2.75, 1],
  ["mlp.down_proj.weight", 1, 2.75],
] as const;

/** A safetensors file of about `size` bytes with LLM-like tensor names and shapes. */
export function genSafetensors(
  size: number,
  dtype: Exclude<GenDType, GenBlockDType>,
  std: number,
  seed: number,
): Buffer {
  const next = rng(seed);
  const width = dtype === "F32" ? 4 : dtype === "BF16" || dtype === "F16" ? 2 : 1;
  const elements = Math.max(1, Math.floor(size / width));
  // Pick the hidden size so that a few layers fill the requested size.
  let hidden = 64;
  while (hidden * hidden * 12 * 4 < elements && hidden < 8192) hidden *= 2;
  const tensors: { name: string; shape: number[]; data: Buffer; dtype: string }[] = [];
  let used = 0;
  for (let layer = 0; used < elements; layer++) {
    for (const [name, rowsScale, colsScale] of LAYER) {
      const rows = Math.max(1, Math.round(hidden * rowsScale));
      const cols = Math.max(1, Math.round(hidden * colsScale));
      const room = elements - used;
      if (room <= 0) break;
      const r = Math.min(rows, Math.max(1, Math.floor(room / cols)));
      const c = r === rows || room >= cols ? cols : room;
      tensors.push({
        name: `model.layers.${layer}.${name}`,
        shape: [r, c],
        data: fillWeights(r, c, std, next, dtype),
        dtype,
      });
      used += r * c;
    }
    if (used < elements) {
      const norm = Buffer.alloc(hidden * 4);
      for (let i = 0; i < hidden; i++) norm.writeFloatLE(1 + 0.05 * Math.sin(i * 0.37 + layer), i * 4);
      tensors.push({
        name: `model.layers.${layer}.input_layernorm.weight`,
        shape: [hidden],
        data: norm,
        dtype: "F32",
      });
      used += hidden * (4 / width);
    }
  }
  const header: Record<string, unknown> = {
    __metadata__: { format: "pt", generator: `mmh gen --seed ${seed}`, synthetic: "true" },
  };
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.length] };
    offset += t.data.length;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - ((json.length + 8) % 8)) % 8);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([length, Buffer.from(json), ...tensors.map((t) => t.data)]);
}

export function genText(size: number, seed: number): Buffer {
  const next = rng(seed);
  const parts: string[] = [];
  let total = 0;
  let loss = 4.2;
  for (let step = 1; total < size; step++) {
    loss = Math.max(0.5, loss * 0.9995 + (next() - 0.5) * 0.02);
    const line = `${JSON.stringify({
      step,
      loss: Number(loss.toFixed(4)),
      lr: Number((3e-4 * Math.min(1, step / 500)).toExponential(3)),
      grad_norm: Number((0.3 + next()).toFixed(3)),
      tokens_per_s: Math.round(40000 + next() * 4000),
      split: step % 100 === 0 ? "eval" : "train",
    })}\n`;
    parts.push(line);
    total += line.length;
  }
  return Buffer.from(parts.join("")).subarray(0, size);
}

export function genPeriodic(size: number, period: number, seed: number): Buffer {
  const next = rng(seed);
  const pattern = Buffer.alloc(period);
  for (let i = 0; i < period; i++) pattern[i] = Math.floor(next() * 256);
  const out = Buffer.alloc(size);
  if (size > 0) {
    pattern.copy(out, 0, 0, Math.min(period, size));
    for (let filled = Math.min(period, size); filled < size; filled *= 2)
      out.copy(out, filled, 0, Math.min(filled, size - filled));
  }
  return out;
}

export function genRandom(size: number, seed: number): Buffer {
  const next = rng(seed);
  const out = Buffer.alloc(size);
  for (let i = 0; i + 4 <= size; i += 4) out.writeUInt32LE(Math.floor(next() * 4294967296), i);
  for (let i = size - (size % 4); i < size; i++) out[i] = Math.floor(next() * 256);
  return out;
}

export function generate(options: GenOptions): Buffer {
  const { kind, size } = options;
  const seed = options.seed ?? 1;
  if (!Number.isSafeInteger(size) || size < 0 || size > 2 ** 31) {
    throw new MmhError("E_BAD_OPTION", `gen size must be 0 to 2 GiB, got ${size}`);
  }
  switch (kind) {
    case "safetensors":
    case "gguf": {
      const dtype = options.dtype ?? (kind === "gguf" ? "Q4_K" : "BF16");
      if (!GEN_DTYPES.includes(dtype))
        throw new MmhError("E_BAD_OPTION", `gen dtype must be one of ${GEN_DTYPES.join(", ")}`);
      const std = options.std ?? 0.02;
      if (!Number.isFinite(std) || std <= 0)
        throw new MmhError("E_BAD_OPTION", `std must be a positive number, got ${std}`);
      // A ggml block type makes a GGUF file, whatever the kind: safetensors has no such dtypes.
      if (isBlockDType(dtype)) return genGguf(size, dtype, std, seed);
      if (kind === "gguf")
        throw new MmhError(
          "E_BAD_OPTION",
          `gen gguf takes a ggml block dtype (${GEN_BLOCK_DTYPES.join(", ")})`,
        );
      return genSafetensors(size, dtype, std, seed);
    }
    case "text":
      return genText(size, seed);
    case "periodic": {
      const period = options.period ?? 251;
      if (!Number.isSafeInteger(period) || period < 1 || period > 65536) {
        throw new MmhError("E_BAD_OPTION", `period must be 1 to 65536, got ${period}`);
      }
      return genPeriodic(size, period, seed);
    }
    case "random":
      return genRandom(size, seed);
    default:
      throw new MmhError("E_BAD_OPTION", `gen kind must be one of ${GEN_KINDS.join(", ")}`);
  }
}

/**
 * Values serialised as dlib serialises floats: each a mantissa and a binary exponent
 * (value = mantissa · 2^exponent, the mantissa 24 bits with its zero low bytes dropped),
 * each written as a compact integer, a control byte (bit 7 the sign, bits 0-3 the byte
 * count) then its magnitude's bytes, least significant first (FORMAT.md §6.6).
 */
export function compactFloats(values: readonly number[]): Buffer {
  const out: number[] = [];
  const integer = (v: number) => {
    let magnitude = Math.abs(v);
    const bytes: number[] = [];
    while (magnitude > 0) {
      bytes.push(magnitude & 0xff);
      magnitude = Math.floor(magnitude / 256);
    }
    out.push((v < 0 ? 0x80 : 0) | bytes.length, ...bytes);
  };
  for (const value of values) {
    if (value === 0) {
      integer(0);
      integer(0);
      continue;
    }
    let exponent = Math.floor(Math.log2(Math.abs(value))) + 1 - 24;
    let mantissa = Math.round(Math.abs(value) / 2 ** exponent);
    if (mantissa >= 1 << 24) {
      mantissa /= 2;
      exponent++;
    }
    while ((mantissa & 0xff) === 0) {
      mantissa /= 256;
      exponent += 8;
    }
    integer(value < 0 ? -mantissa : mantissa);
    integer(exponent);
  }
  return Buffer.from(out);
}
