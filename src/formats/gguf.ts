/**
 * GGUF v2 and v3 (ggml's docs/gguf.md): "GGUF", version u32, tensor count u64, metadata
 * KV count u64, the metadata KVs, the tensor infos, padding to the alignment, then the
 * tensor data. v1 (u32 counts) is E_UNSUPPORTED, as are big-endian files.
 *
 * Unquantised ggml types map onto DTypes, and so do the quantisation blocks HIER has a
 * layout for (Q4_0 ... Q8_1, Q2_K ... Q6_K, IQ4_NL: a DType whose element is one block).
 * Other quantised block types become raw regions whose note is the type name, sized from
 * the block tables below. An unknown type id becomes a
 * raw region noted "ggml type N", bounded by the next tensor's offset (or the end of the
 * file for the last one).
 */

import type { DTypeName, Region } from "../common/dtype.ts";
import { check } from "../common/errors.ts";
import type { RandomAccessSource } from "../common/source.ts";
import { Cursor } from "./cursor.ts";
import { GGUF_MAGIC } from "./magic.ts";
import {
  checkedProduct,
  decodeUtf8,
  maxHeaderBytes,
  rawRegion,
  tensorRegion,
  tileRegions,
} from "./regions.ts";
import type { Recognised, RecogniseOptions, TensorEntry } from "./types.ts";

export { GGUF_MAGIC, looksLikeGguf } from "./magic.ts";

export const GGUF_DEFAULT_ALIGNMENT = 32;
/** Our bound on nested metadata arrays (the spec allows nesting, ggml itself reads none). */
export const GGUF_MAX_ARRAY_DEPTH = 8;
export const GGUF_MAX_DIMS = 8;
export const GGUF_MAX_NAME = 1024;
export const GGUF_MAX_KEY = 65535;

export interface GgmlType {
  name: string;
  /** Elements per block (1 for plain types). */
  blockSize: number;
  /** Bytes per block. */
  typeSize: number;
  dtype?: DTypeName;
}

/**
 * ggml_type ids with block size and bytes per block (ggml.c type_traits and the block_*
 * structs of ggml-common.h, QK_K = 256). 31-33 and 36-38 are the removed repacked types
 * (same blocks as Q4_0 and IQ4_NL); 40-42 are recent additions (NVFP4, Q1_0, Q2_0).
 */
export const GGML_TYPES: ReadonlyMap<number, GgmlType> = new Map<number, GgmlType>([
  [0, { name: "F32", blockSize: 1, typeSize: 4, dtype: "F32" }],
  [1, { name: "F16", blockSize: 1, typeSize: 2, dtype: "F16" }],
  [2, { name: "Q4_0", blockSize: 32, typeSize: 18, dtype: "Q4_0" }],
  [3, { name: "Q4_1", blockSize: 32, typeSize: 20, dtype: "Q4_1" }],
  [6, { name: "Q5_0", blockSize: 32, typeSize: 22, dtype: "Q5_0" }],
  [7, { name: "Q5_1", blockSize: 32, typeSize: 24, dtype: "Q5_1" }],
  [8, { name: "Q8_0", blockSize: 32, typeSize: 34, dtype: "Q8_0" }],
  [9, { name: "Q8_1", blockSize: 32, typeSize: 36, dtype: "Q8_1" }],
  [10, { name: "Q2_K", blockSize: 256, typeSize: 84, dtype: "Q2_K" }],
  [11, { name: "Q3_K", blockSize: 256, typeSize: 110, dtype: "Q3_K" }],
  [12, { name: "Q4_K", blockSize: 256, typeSize: 144, dtype: "Q4_K" }],
  [13, { name: "Q5_K", blockSize: 256, typeSize: 176, dtype: "Q5_K" }],
  [14, { name: "Q6_K", blockSize: 256, typeSize: 210, dtype: "Q6_K" }],
  [15, { name: "Q8_K", blockSize: 256, typeSize: 292 }],
  [16, { name: "IQ2_XXS", blockSize: 256, typeSize: 66 }],
  [17, { name: "IQ2_XS", blockSize: 256, typeSize: 74 }],
  [18, { name: "IQ3_XXS", blockSize: 256, typeSize: 98 }],
  [19, { name: "IQ1_S", blockSize: 256, typeSize: 50 }],
  [20, { name: "IQ4_NL", blockSize: 32, typeSize: 18, dtype: "IQ4_NL" }],
  [21, { name: "IQ3_S", blockSize: 256, typeSize: 110 }],
  [22, { name: "IQ2_S", blockSize: 256, typeSize: 82 }],
  [23, { name: "IQ4_XS", blockSize: 256, typeSize: 136 }],
  [24, { name: "I8", blockSize: 1, typeSize: 1, dtype: "I8" }],
  [25, { name: "I16", blockSize: 1, typeSize: 2, dtype: "I16" }],
  [26, { name: "I32", blockSize: 1, typeSize: 4, dtype: "I32" }],
  [27, { name: "I64", blockSize: 1, typeSize: 8, dtype: "I64" }],
  [28, { name: "F64", blockSize: 1, typeSize: 8, dtype: "F64" }],
  [29, { name: "IQ1_M", blockSize: 256, typeSize: 56 }],
  [30, { name: "BF16", blockSize: 1, typeSize: 2, dtype: "BF16" }],
  [31, { name: "Q4_0_4_4", blockSize: 32, typeSize: 18 }],
  [32, { name: "Q4_0_4_8", blockSize: 32, typeSize: 18 }],
  [33, { name: "Q4_0_8_8", blockSize: 32, typeSize: 18 }],
  [34, { name: "TQ1_0", blockSize: 256, typeSize: 54 }],
  [35, { name: "TQ2_0", blockSize: 256, typeSize: 66 }],
  [36, { name: "IQ4_NL_4_4", blockSize: 32, typeSize: 18 }],
  [37, { name: "IQ4_NL_4_8", blockSize: 32, typeSize: 18 }],
  [38, { name: "IQ4_NL_8_8", blockSize: 32, typeSize: 18 }],
  [39, { name: "MXFP4", blockSize: 32, typeSize: 17 }],
  [40, { name: "NVFP4", blockSize: 64, typeSize: 36 }],
  [41, { name: "Q1_0", blockSize: 128, typeSize: 18 }],
  [42, { name: "Q2_0", blockSize: 64, typeSize: 18 }],
]);

const VALUE_TYPE_NAMES = [
  "u8",
  "i8",
  "u16",
  "i16",
  "u32",
  "i32",
  "f32",
  "bool",
  "string",
  "array",
  "u64",
  "i64",
  "f64",
];
/** Bytes of each fixed-size metadata value type (string and array are variable). */
const FIXED_SIZE: Record<number, number> = {
  0: 1,
  1: 1,
  2: 2,
  3: 2,
  4: 4,
  5: 4,
  6: 4,
  7: 1,
  10: 8,
  11: 8,
  12: 8,
};

/** The smallest a KV pair can be: key length, empty key, value type, a 1-byte value. */
const MIN_KV_BYTES = 8 + 4 + 1;
/** The smallest a tensor info can be: name length, n_dims, type, offset. */
const MIN_TENSOR_INFO_BYTES = 8 + 4 + 4 + 8;
/** String values longer than this are not copied into metadata. */
const KEEP_STRING = 256;
const KEEP_BUDGET = 48 * 1024;

type Kept = string | number | boolean | { array: string; length: number };

function jsonNumber(value: number | bigint): number | string {
  if (typeof value === "bigint") {
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(value)
      : value.toString();
  }
  return Number.isFinite(value) ? value : String(value);
}

class GgufReader {
  readonly c: Cursor;
  constructor(c: Cursor) {
    this.c = c;
  }

  async string(field: string, maxLength?: number): Promise<string> {
    const length = await this.c.u64(`${field} length`);
    this.c.ensure(length, field);
    if (maxLength !== undefined) {
      check(length <= BigInt(maxLength), "E_CORRUPT", `gguf: ${field} is ${length} bytes, over ${maxLength}`);
    }
    const text = decodeUtf8(await this.c.bytes(length, field));
    check(text !== undefined, "E_CORRUPT", `gguf: ${field} is not valid UTF-8`);
    return text;
  }

  async skipString(field: string): Promise<void> {
    this.c.skip(await this.c.u64(`${field} length`), field);
  }

  /** Read (or skip) one value; returns what is worth keeping in metadata, if anything. */
  async value(type: number, field: string, depth: number): Promise<Kept | undefined> {
    const fixed = FIXED_SIZE[type];
    if (fixed !== undefined) {
      const b = await this.c.bytes(fixed, field);
      switch (type) {
        case 0:
          return b.readUInt8(0);
        case 1:
          return b.readInt8(0);
        case 2:
          return b.readUInt16LE(0);
        case 3:
          return b.readInt16LE(0);
        case 4:
          return b.readUInt32LE(0);
        case 5:
          return b.readInt32LE(0);
        case 6:
          return jsonNumber(b.readFloatLE(0));
        case 7:
          check(b[0] <= 1, "E_CORRUPT", `gguf: ${field} is a bool of value ${b[0]}`);
          return b[0] === 1;
        case 10:
          return jsonNumber(b.readBigUInt64LE(0));
        case 11:
          return jsonNumber(b.readBigInt64LE(0));
        default:
          return jsonNumber(b.readDoubleLE(0));
      }
    }
    if (type === 8) {
      const length = await this.c.u64(`${field} length`);
      if (length > BigInt(KEEP_STRING)) {
        this.c.skip(length, field);
        return undefined;
      }
      const text = decodeUtf8(await this.c.bytes(length, field));
      check(text !== undefined, "E_CORRUPT", `gguf: ${field} is not valid UTF-8`);
      return text;
    }
    check(type === 9, "E_CORRUPT", `gguf: ${field} has unknown value type ${type}`);
    check(
      depth < GGUF_MAX_ARRAY_DEPTH,
      "E_LIMIT",
      `gguf: ${field} nests arrays deeper than ${GGUF_MAX_ARRAY_DEPTH}`,
    );
    const itemType = await this.c.u32(`${field} array type`);
    const count = await this.c.u64(`${field} array length`);
    const itemFixed = FIXED_SIZE[itemType];
    if (itemFixed !== undefined) {
      this.c.skip(count * BigInt(itemFixed), `${field} array of ${count} ${VALUE_TYPE_NAMES[itemType]}`);
    } else if (itemType === 8) {
      this.c.ensure(count * 8n, `${field} array of ${count} strings`);
      for (let i = 0n; i < count; i++) await this.skipString(`${field}[${i}]`);
    } else if (itemType === 9) {
      this.c.ensure(count * 12n, `${field} array of ${count} arrays`);
      for (let i = 0n; i < count; i++) await this.value(9, `${field}[${i}]`, depth + 1);
    } else {
      check(false, "E_CORRUPT", `gguf: ${field} is an array of unknown value type ${itemType}`);
    }
    return { array: VALUE_TYPE_NAMES[itemType], length: Number(count) };
  }
}

interface TensorInfo {
  name: string;
  dims: number[];
  type: number;
  relOffset: number;
  elements: number;
}

export async function recogniseGguf(
  source: RandomAccessSource,
  options?: RecogniseOptions,
): Promise<Recognised> {
  const size = source.size;
  const c = new Cursor(source, 0, maxHeaderBytes(options), "gguf");
  const r = new GgufReader(c);
  check((await c.bytes(4, "magic")).equals(GGUF_MAGIC), "E_CORRUPT", "gguf: bad magic");
  const version = await c.u32("version");
  check(version !== 1, "E_UNSUPPORTED", "gguf: version 1 is not supported (2 and 3 are)");
  check(
    !(version > 0xffff && (version & 0xffff) === 0),
    "E_UNSUPPORTED",
    "gguf: a big-endian GGUF file is not supported",
  );
  check(version === 2 || version === 3, "E_UNSUPPORTED", `gguf: version ${version} is not supported`);
  const tensorCount64 = await c.u64("tensor count");
  const kvCount64 = await c.u64("metadata kv count");
  c.ensure(
    tensorCount64 * BigInt(MIN_TENSOR_INFO_BYTES) + kvCount64 * BigInt(MIN_KV_BYTES),
    `${tensorCount64} tensor infos and ${kvCount64} metadata pairs`,
  );
  const tensorCount = Number(tensorCount64);
  const kvCount = Number(kvCount64);

  // Metadata.
  const keys = new Set<string>();
  const kept: Record<string, Kept> = {};
  let keptSize = 0;
  let alignment = GGUF_DEFAULT_ALIGNMENT;
  for (let i = 0; i < kvCount; i++) {
    const key = await r.string(`metadata key ${i}`, GGUF_MAX_KEY);
    check(!keys.has(key), "E_CORRUPT", `gguf: duplicate metadata key ${JSON.stringify(key).slice(0, 80)}`);
    keys.add(key);
    const type = await c.u32(`type of ${key}`);
    if (key === "general.alignment") {
      check(type === 4, "E_CORRUPT", "gguf: general.alignment is not a u32");
      const value = await c.u32("general.alignment");
      check(
        value > 0 && (value & (value - 1)) === 0,
        "E_CORRUPT",
        `gguf: general.alignment ${value} is not a power of two`,
      );
      alignment = value;
      kept[key] = value;
      continue;
    }
    const value = await r.value(type, key, 0);
    if (value !== undefined) {
      const cost = key.length + JSON.stringify(value).length + 4;
      if (keptSize + cost <= KEEP_BUDGET) {
        kept[key] = value;
        keptSize += cost;
      }
    }
  }

  // Tensor infos.
  const names = new Set<string>();
  const infos: TensorInfo[] = [];
  for (let i = 0; i < tensorCount; i++) {
    const name = await r.string(`tensor ${i} name`, GGUF_MAX_NAME);
    check(!names.has(name), "E_CORRUPT", `gguf: duplicate tensor name ${JSON.stringify(name)}`);
    names.add(name);
    const nDims = await c.u32(`tensor ${name} n_dims`);
    check(nDims <= GGUF_MAX_DIMS, "E_CORRUPT", `gguf: tensor ${name} has ${nDims} dimensions (at most 8)`);
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) {
      const dim = await c.u64(`tensor ${name} dimension ${d}`);
      check(
        dim <= BigInt(Number.MAX_SAFE_INTEGER),
        "E_CORRUPT",
        `gguf: tensor ${name} dimension ${dim} overflows`,
      );
      dims.push(Number(dim));
    }
    const type = await c.u32(`tensor ${name} type`);
    const offset = await c.u64(`tensor ${name} offset`);
    check(offset <= BigInt(Number.MAX_SAFE_INTEGER), "E_CORRUPT", `gguf: tensor ${name} offset overflows`);
    const elements = checkedProduct(dims);
    check(elements !== undefined, "E_CORRUPT", `gguf: tensor ${name} element count overflows`);
    infos.push({ name, dims, type, relOffset: Number(offset), elements });
  }
  const headerEnd = c.pos;
  const dataStart = Math.ceil(headerEnd / alignment) * alignment;
  if (tensorCount > 0) {
    check(dataStart <= size, "E_TRUNCATED", `gguf: data section at ${dataStart} is past the end of the file`);
  }

  // Tensor sizes and regions, in file order.
  const order = [...infos].sort((a, b) => a.relOffset - b.relOffset);
  const regions: Region[] = [rawRegion("gguf header", 0, Math.min(dataStart, size))];
  const tensors: TensorEntry[] = [];
  for (let i = 0; i < order.length; i++) {
    const t = order[i];
    check(
      t.relOffset % alignment === 0,
      "E_CORRUPT",
      `gguf: tensor ${t.name} offset ${t.relOffset} is not a multiple of the alignment ${alignment}`,
    );
    const offset = dataStart + t.relOffset;
    check(offset <= size, "E_TRUNCATED", `gguf: tensor ${t.name} starts past the end of the file`);
    // ggml's ne[0] varies fastest: the row-major shape is the dims reversed.
    const shape = [...t.dims].reverse();
    const ggml = GGML_TYPES.get(t.type);
    let length: number;
    if (ggml !== undefined) {
      check(
        (t.dims[0] ?? 1) % ggml.blockSize === 0,
        "E_CORRUPT",
        `gguf: tensor ${t.name} of ${ggml.name} has a row of ${t.dims[0] ?? 1}, not a multiple of ${ggml.blockSize}`,
      );
      const bytes = checkedProduct([ggml.typeSize], t.elements / ggml.blockSize);
      check(bytes !== undefined, "E_CORRUPT", `gguf: tensor ${t.name} size overflows`);
      length = bytes;
      check(
        offset + length <= size,
        "E_TRUNCATED",
        `gguf: tensor ${t.name} (${length} bytes at ${offset}) runs past the end of the file (${size} bytes)`,
      );
      if (ggml.dtype !== undefined) regions.push(tensorRegion(t.name, offset, length, ggml.dtype, shape));
      else regions.push(rawRegion(t.name, offset, length, ggml.name));
    } else {
      // Unknown type: its bytes end where the next tensor starts, or at the end of the file.
      const next = order.slice(i + 1).find((o) => o.relOffset > t.relOffset);
      const bound = next ? dataStart + next.relOffset : size;
      const shared = order.some((o) => o !== t && o.relOffset === t.relOffset && o.elements > 0);
      check(
        t.elements === 0 || (bound > offset && !shared),
        "E_CORRUPT",
        `gguf: tensor ${t.name} has unknown ggml type ${t.type} and its size cannot be bounded`,
      );
      length = t.elements === 0 ? 0 : Math.min(bound, size) - offset;
      regions.push(rawRegion(t.name, offset, length, `ggml type ${t.type}`));
    }
    tensors.push({
      name: t.name,
      dtype: ggml?.dtype ?? ggml?.name ?? `ggml type ${t.type}`,
      shape,
      offset,
      length,
    });
  }
  const metadata: Record<string, unknown> = {
    version,
    tensorCount,
    kvCount,
    alignment,
    dataOffset: dataStart,
  };
  if (typeof kept["general.architecture"] === "string") metadata.architecture = kept["general.architecture"];
  if (typeof kept["general.name"] === "string") metadata.name = kept["general.name"];
  metadata.kv = kept;
  return { format: "gguf", regions: tileRegions(regions, size, "padding"), tensors, metadata };
}
