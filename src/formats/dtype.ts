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
  | "C64";

export interface DType {
  readonly name: DTypeName;
  /** Bits per element (4 and 6 for the sub-byte types). */
  readonly bits: number;
  readonly kind: "float" | "int" | "uint" | "bool" | "complex";
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
];

const byName = new Map<string, DType>(table.map((d) => [d.name, d]));

export function dtypeByName(name: string): DType | undefined {
  return byName.get(name);
}

export function allDTypes(): readonly DType[] {
  return table;
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
