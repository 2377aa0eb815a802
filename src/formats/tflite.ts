/**
 * TensorFlow Lite models (tensorflow/lite/schema/schema.fbs, schema version 3): a
 * FlatBuffer whose root `Model` holds `subgraphs` (each a list of `Tensor`s with shape,
 * type, name and a buffer index) and `buffers` (each a `Buffer` whose `data` vector holds
 * a constant tensor's little-endian values; models over 2 GB instead give an `offset` and
 * `size` in the file, after the FlatBuffer). Each buffer with data is a region of the
 * element type of the first tensor that uses it.
 *
 * The file identifier "TFL3" at bytes 4..8 is the magic.
 */

import { type DTypeName, dtypeByName, type Region } from "../common/dtype.ts";
import { check } from "../common/errors.ts";
import type { RandomAccessSource } from "../common/source.ts";
import { type FbTable, FlatReader, type Walk } from "./flatbuffers.ts";
import {
  checkedProduct,
  decodeUtf8,
  maxHeaderBytes,
  rawRegion,
  tensorRegion,
  tileRegions,
} from "./regions.ts";
import type { Recognised, RecogniseOptions, TensorEntry } from "./types.ts";

export { looksLikeTflite, TFLITE_IDENTIFIER } from "./magic.ts";

/** TensorType: the TFLite name, and the DType of the values when there is one. */
export const TFLITE_TYPES: ReadonlyMap<number, { name: string; dtype?: DTypeName }> = new Map([
  [0, { name: "FLOAT32", dtype: "F32" }],
  [1, { name: "FLOAT16", dtype: "F16" }],
  [2, { name: "INT32", dtype: "I32" }],
  [3, { name: "UINT8", dtype: "U8" }],
  [4, { name: "INT64", dtype: "I64" }],
  [5, { name: "STRING" }],
  [6, { name: "BOOL", dtype: "BOOL" }],
  [7, { name: "INT16", dtype: "I16" }],
  [8, { name: "COMPLEX64", dtype: "C64" }],
  [9, { name: "INT8", dtype: "I8" }],
  [10, { name: "FLOAT64", dtype: "F64" }],
  [11, { name: "COMPLEX128" }],
  [12, { name: "UINT64", dtype: "U64" }],
  [13, { name: "RESOURCE" }],
  [14, { name: "VARIANT" }],
  [15, { name: "UINT32", dtype: "U32" }],
  [16, { name: "UINT16", dtype: "U16" }],
  [17, { name: "INT4", dtype: "I4" }],
  [18, { name: "BFLOAT16", dtype: "BF16" }],
  [19, { name: "INT2" }],
  [20, { name: "UINT4", dtype: "U4" }],
  [21, { name: "FLOAT8_E4M3FN", dtype: "F8_E4M3" }],
  [22, { name: "FLOAT8_E5M2", dtype: "F8_E5M2" }],
]);

/** Buffers below this many bytes stay in the raw regions (as for ONNX: a chunk costs more than typing saves). */
export const TFLITE_MIN_REGION = 4096;
const MAX_NAME = 4096;

// Field indices (schema.fbs).
const MODEL_VERSION = 0;
const MODEL_SUBGRAPHS = 2;
const MODEL_DESCRIPTION = 3;
const MODEL_BUFFERS = 4;
const SUBGRAPH_TENSORS = 0;
const SUBGRAPH_NAME = 4;
const TENSOR_SHAPE = 0;
const TENSOR_TYPE = 1;
const TENSOR_BUFFER = 2;
const TENSOR_NAME = 3;
const BUFFER_DATA = 0;
const BUFFER_OFFSET = 1;
const BUFFER_SIZE = 2;

interface BufferData {
  offset: number;
  length: number;
}

function* readName(r: FlatReader, t: FbTable, index: number, what: string): Walk<string> {
  const bytes = yield* r.string(t, index, what, MAX_NAME);
  if (bytes === undefined) return "";
  const text = decodeUtf8(bytes);
  check(text !== undefined, "E_CORRUPT", `tflite: ${what} is not valid UTF-8`);
  return text;
}

export async function recogniseTflite(
  source: RandomAccessSource,
  options?: RecogniseOptions,
): Promise<Recognised> {
  const r = new FlatReader(source, maxHeaderBytes(options), "tflite");
  return r.run(walkTflite(r, source.size));
}

function* walkTflite(r: FlatReader, size: number): Walk<Recognised> {
  check(size >= 8, "E_TRUNCATED", "tflite: shorter than its root offset and identifier");
  const model = yield* r.tableAt(0, "the model");
  const versionAt = yield* r.field(model, MODEL_VERSION, 4, "version");
  const version = versionAt === undefined ? 0 : yield* r.u32(versionAt, "version");
  check(version === 3, "E_UNSUPPORTED", `tflite: schema version ${version} (3 is read)`);
  const description = yield* readName(r, model, MODEL_DESCRIPTION, "the description");

  // Buffers: where each one's bytes are.
  const buffers: (BufferData | undefined)[] = [];
  const bufferList = yield* r.vector(model, MODEL_BUFFERS, 4, "buffers");
  for (let i = 0; i < (bufferList?.length ?? 0); i++) {
    const what = `buffer ${i}`;
    const b = yield* r.tableAt(bufferList!.start + 4 * i, what);
    const data = yield* r.vector(b, BUFFER_DATA, 1, `${what} data`);
    const offsetAt = yield* r.field(b, BUFFER_OFFSET, 8, `${what} offset`);
    const sizeAt = yield* r.field(b, BUFFER_SIZE, 8, `${what} size`);
    const offset = offsetAt === undefined ? 0 : yield* r.u64(offsetAt, `${what} offset`);
    const length = sizeAt === undefined ? 0 : yield* r.u64(sizeAt, `${what} size`);
    if (data && data.length > 0) {
      check(offset === 0, "E_CORRUPT", `tflite: buffer ${i} has both data and an offset`);
      buffers.push({ offset: data.start, length: data.length });
    } else if (length > 0) {
      // Data outside the FlatBuffer (models over 2 GB): offset is from the file's start.
      r.inFile(offset, length, `buffer ${i}`);
      buffers.push({ offset, length });
    } else buffers.push(undefined);
  }

  // Tensors, subgraph by subgraph.
  const subgraphs = yield* r.vector(model, MODEL_SUBGRAPHS, 4, "subgraphs");
  check(subgraphs !== undefined && subgraphs.length > 0, "E_CORRUPT", "tflite: a model with no subgraph");
  const tensors: TensorEntry[] = [];
  const typeOfBuffer = new Map<number, DTypeName | null>();
  const names = new Map<string, number>();
  for (let s = 0; s < subgraphs.length; s++) {
    const g = yield* r.tableAt(subgraphs.start + 4 * s, `subgraph ${s}`);
    const graphName = yield* readName(r, g, SUBGRAPH_NAME, `subgraph ${s} name`);
    const list = yield* r.vector(g, SUBGRAPH_TENSORS, 4, `subgraph ${s} tensors`);
    for (let i = 0; i < (list?.length ?? 0); i++) {
      const what = `subgraph ${s} tensor ${i}`;
      const t = yield* r.tableAt(list!.start + 4 * i, what);
      const bufferAt = yield* r.field(t, TENSOR_BUFFER, 4, `${what} buffer`);
      const index = bufferAt === undefined ? 0 : yield* r.u32(bufferAt, `${what} buffer`);
      check(
        index < buffers.length || index === 0,
        "E_CORRUPT",
        `tflite: ${what} names buffer ${index} of ${buffers.length}`,
      );
      const data = buffers[index];
      if (index === 0 || data === undefined) continue; // an activation, or an empty constant
      const typeAt = yield* r.field(t, TENSOR_TYPE, 1, `${what} type`);
      const typeId = typeAt === undefined ? 0 : yield* r.u8(typeAt, `${what} type`);
      const type = TFLITE_TYPES.get(typeId);
      const shape: number[] = [];
      const dims = yield* r.vector(t, TENSOR_SHAPE, 4, `${what} shape`);
      for (let d = 0; d < (dims?.length ?? 0); d++) {
        const dim = yield* r.i32(dims!.start + 4 * d, `${what} shape`);
        check(dim >= 0, "E_CORRUPT", `tflite: ${what} has a dimension ${dim}`);
        shape.push(dim);
      }
      const dtype = type?.dtype;
      if (dtype !== undefined) {
        // Sub-byte values are packed two (or four) to a byte.
        const bits = dtypeByName(dtype)!.bits;
        const elements = checkedProduct(shape);
        const bytes = elements === undefined ? undefined : Math.ceil((elements * bits) / 8);
        if (bytes !== data.length)
          check(
            false,
            "E_CORRUPT",
            `tflite: ${what} (${type!.name} ${JSON.stringify(shape)}) has a buffer of ${data.length} bytes, expected ${bytes}`,
          );
      }
      if (!typeOfBuffer.has(index)) typeOfBuffer.set(index, dtype ?? null);
      let name = (yield* readName(r, t, TENSOR_NAME, `${what} name`)) || `tensor ${i}`;
      if (subgraphs.length > 1 && s > 0) name = `${graphName || `subgraph ${s}`}/${name}`;
      const seen = names.get(name) ?? 0;
      names.set(name, seen + 1);
      tensors.push({
        name: seen === 0 ? name : `${name}#${seen + 1}`,
        dtype: dtype ?? type?.name ?? `tflite type ${typeId}`,
        shape,
        offset: data.offset,
        length: data.length,
      });
    }
  }

  // Each region is named after the first tensor at its offset.
  const firstAt = new Map<number, TensorEntry>();
  for (const t of tensors) if (!firstAt.has(t.offset)) firstAt.set(t.offset, t);
  const regions: Region[] = [];
  for (const [index, dtype] of typeOfBuffer) {
    const data = buffers[index]!;
    if (data.length >= TFLITE_MIN_REGION) {
      const first = firstAt.get(data.offset)!;
      regions.push(
        dtype !== null
          ? tensorRegion(first.name, data.offset, data.length, dtype, first.shape)
          : rawRegion(first.name, data.offset, data.length, String(first.dtype)),
      );
    }
  }
  const metadata: Record<string, unknown> = {
    version,
    subgraphs: subgraphs.length,
    buffers: buffers.length,
    tensorCount: tensors.length,
  };
  if (description) metadata.description = description.slice(0, 256);
  return { format: "tflite", regions: tileRegions(regions, size, "flatbuffer"), tensors, metadata };
}
