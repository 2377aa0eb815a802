/**
 * Element types MMH knows, with the bit layout the tensor codecs split into fields.
 * Names follow safetensors (F32, BF16, F8_E4M3, ...); other formats map onto them.
 */
export type DTypeName =
  | "F64"
  | "F32"
  | "F16"
  | "BF16"
  | "F8_E4M3"
  | "F8_E5M2"
  | "F8_E8M0"
  | "F6_E2M3"
  | "F6_E3M2"
  | "F4"
  | "I64"
  | "I32"
  | "I16"
  | "I8"
  | "I4"
  | "U64"
  | "U32"
  | "U16"
  | "U8"
  | "U4"
  | "BOOL"
  | "C64"
  | BlockDTypeName;

/** ggml's quantisation blocks (GGUF), each a DType whose element is one whole block. */
export type BlockDTypeName =
  | "Q4_0"
  | "Q4_1"
  | "Q5_0"
  | "Q5_1"
  | "Q8_0"
  | "Q8_1"
  | "Q2_K"
  | "Q3_K"
  | "Q4_K"
  | "Q5_K"
  | "Q6_K"
  | "IQ4_NL";

export interface DType {
  readonly name: DTypeName;
  /** Bits per element (4 and 6 for the sub-byte types; a whole block's for "block"). */
  readonly bits: number;
  readonly kind: "float" | "int" | "uint" | "bool" | "complex" | "block";
  /** For "block": the weights one block holds (its element is the block). */
  readonly blockElements?: number;
  /** Float layout: sign, exponent and mantissa bits (sign + exponent + mantissa = bits). */
  readonly sign?: number;
  readonly exponent?: number;
  readonly mantissa?: number;
}

const table: DType[] = [
  { name: "F64", bits: 64, kind: "float", sign: 1, exponent: 11, mantissa: 52 },
  { name: "F32", bits: 32, kind: "float", sign: 1, exponent: 8, mantissa: 23 },
  { name: "F16", bits: 16, kind: "float", sign: 1, exponent: 5, mantissa: 10 },
  { name: "BF16", bits: 16, kind: "float", sign: 1, exponent: 8, mantissa: 7 },
  { name: "F8_E4M3", bits: 8, kind: "float", sign: 1, exponent: 4, mantissa: 3 },
  { name: "F8_E5M2", bits: 8, kind: "float", sign: 1, exponent: 5, mantissa: 2 },
  { name: "F8_E8M0", bits: 8, kind: "float", sign: 0, exponent: 8, mantissa: 0 },
  { name: "F6_E2M3", bits: 6, kind: "float", sign: 1, exponent: 2, mantissa: 3 },
  { name: "F6_E3M2", bits: 6, kind: "float", sign: 1, exponent: 3, mantissa: 2 },
  { name: "F4", bits: 4, kind: "float", sign: 1, exponent: 2, mantissa: 1 },
  { name: "I64", bits: 64, kind: "int" },
  { name: "I32", bits: 32, kind: "int" },
  { name: "I16", bits: 16, kind: "int" },
  { name: "I8", bits: 8, kind: "int" },
  { name: "I4", bits: 4, kind: "int" },
  { name: "U64", bits: 64, kind: "uint" },
  { name: "U32", bits: 32, kind: "uint" },
  { name: "U16", bits: 16, kind: "uint" },
  { name: "U8", bits: 8, kind: "uint" },
  { name: "U4", bits: 4, kind: "uint" },
  { name: "BOOL", bits: 8, kind: "bool" },
  { name: "C64", bits: 64, kind: "complex" },
  // ggml-common.h's block_* structs (QK_K = 256): bytes per block x 8, weights per block.
  { name: "Q4_0", bits: 18 * 8, kind: "block", blockElements: 32 },
  { name: "Q4_1", bits: 20 * 8, kind: "block", blockElements: 32 },
  { name: "Q5_0", bits: 22 * 8, kind: "block", blockElements: 32 },
  { name: "Q5_1", bits: 24 * 8, kind: "block", blockElements: 32 },
  { name: "Q8_0", bits: 34 * 8, kind: "block", blockElements: 32 },
  { name: "Q8_1", bits: 36 * 8, kind: "block", blockElements: 32 },
  { name: "Q2_K", bits: 84 * 8, kind: "block", blockElements: 256 },
  { name: "Q3_K", bits: 110 * 8, kind: "block", blockElements: 256 },
  { name: "Q4_K", bits: 144 * 8, kind: "block", blockElements: 256 },
  { name: "Q5_K", bits: 176 * 8, kind: "block", blockElements: 256 },
  { name: "Q6_K", bits: 210 * 8, kind: "block", blockElements: 256 },
  { name: "IQ4_NL", bits: 18 * 8, kind: "block", blockElements: 32 },
];

const byName = new Map<string, DType>(table.map((d) => [d.name, d]));

export function dtypeByName(name: string): DType | undefined {
  return byName.get(name);
}

export function allDTypes(): readonly DType[] {
  return table;
}

/**
 * The unit chunks and samples of `dtype` are cut in, so that each piece starts on an
 * element: 8 bytes (a multiple of every plain element's size), or for a quantisation
 * block the least common multiple of 8 and the block's bytes.
 */
export function cutUnit(dtype: DTypeName | null): number {
  const d = dtype === null ? undefined : byName.get(dtype);
  if (d?.kind !== "block") return 8;
  const bytes = d.bits / 8;
  let a = bytes;
  let b = 8;
  while (b !== 0) [a, b] = [b, a % b];
  return (bytes * 8) / a;
}

/** Bytes for `count` elements, or undefined when it is not a whole number of bytes. */
export function byteLength(dtype: DType, count: number): number | undefined {
  const bits = dtype.bits * count;
  return bits % 8 === 0 ? bits / 8 : undefined;
}

/**
 * A stretch of a source file. Tensor regions carry their dtype; everything else
 * (headers, metadata, quantised blocks, unknown bytes) is a raw region, with whatever
 * the recogniser learnt about it in `note`.
 */
export interface Region {
  /** Tensor name, or a description such as "header" for raw regions. */
  name: string;
  /** Byte offset in the source file. */
  offset: number;
  length: number;
  /** Element type when known (given by the format or detected); null for raw bytes. */
  dtype: DTypeName | null;
  shape?: number[];
  /** "tensor" for a named array, "raw" for anything else. */
  kind: "tensor" | "raw";
  /** What the format says of a raw region, e.g. a GGUF quantisation type "Q4_K". */
  note?: string;
}
