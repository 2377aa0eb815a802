/**
 * ONNX models (onnx/onnx.proto, IR versions 3 and later): a protobuf ModelProto whose
 * graph holds the weights as TensorProtos, in `initializer`, `sparse_initializer` and the
 * tensor attributes of nodes (Constant nodes among them), in subgraphs too (If, Loop,
 * Scan). Each tensor's data is a `raw_data` field (little-endian values, the usual form)
 * or a packed `float_data` / `double_data` field; either is a region of the file with the
 * tensor's element type. Other encodings (int32_data, int64_data, string_data: varints
 * and strings) and tensors stored outside the file (data_location EXTERNAL) are listed
 * where they have bytes here, and left to the raw regions.
 *
 * ONNX has no magic number. A serialiser writes ModelProto's fields in field order, so a
 * model starts with ir_version (field 1, a varint); the file is taken as ONNX when it
 * starts that way and the whole of it then parses as a ModelProto with a graph.
 */

import { byteLength, type DTypeName, dtypeByName, type Region } from "../common/dtype.ts";
import { check } from "../common/errors.ts";
import type { RandomAccessSource } from "../common/source.ts";
import { MODEL_IR_VERSION } from "./magic.ts";
import { type ProtoField, ProtoReader, WIRE_LEN, WIRE_VARINT } from "./protobuf.ts";
import { checkedProduct, decodeUtf8, maxHeaderBytes, tensorRegion, tileRegions } from "./regions.ts";
import type { Recognised, RecogniseOptions, TensorEntry } from "./types.ts";

export { looksLikeOnnx } from "./magic.ts";

/**
 * TensorProto.DataType: the ONNX name, and the DType whose bit layout the values have
 * (the FNUZ float8 variants share their bits with E4M3 / E5M2; only the special values
 * differ, which a lossless codec does not care about). No dtype: kept as raw bytes.
 */
export const ONNX_TYPES: ReadonlyMap<number, { name: string; dtype?: DTypeName }> = new Map([
  [1, { name: "FLOAT", dtype: "F32" }],
  [2, { name: "UINT8", dtype: "U8" }],
  [3, { name: "INT8", dtype: "I8" }],
  [4, { name: "UINT16", dtype: "U16" }],
  [5, { name: "INT16", dtype: "I16" }],
  [6, { name: "INT32", dtype: "I32" }],
  [7, { name: "INT64", dtype: "I64" }],
  [8, { name: "STRING" }],
  [9, { name: "BOOL", dtype: "BOOL" }],
  [10, { name: "FLOAT16", dtype: "F16" }],
  [11, { name: "DOUBLE", dtype: "F64" }],
  [12, { name: "UINT32", dtype: "U32" }],
  [13, { name: "UINT64", dtype: "U64" }],
  [14, { name: "COMPLEX64", dtype: "C64" }],
  [15, { name: "COMPLEX128" }],
  [16, { name: "BFLOAT16", dtype: "BF16" }],
  [17, { name: "FLOAT8E4M3FN", dtype: "F8_E4M3" }],
  [18, { name: "FLOAT8E4M3FNUZ", dtype: "F8_E4M3" }],
  [19, { name: "FLOAT8E5M2", dtype: "F8_E5M2" }],
  [20, { name: "FLOAT8E5M2FNUZ", dtype: "F8_E5M2" }],
  [21, { name: "UINT4", dtype: "U4" }],
  [22, { name: "INT4", dtype: "I4" }],
  [23, { name: "FLOAT4E2M1", dtype: "F4" }],
  [24, { name: "FLOAT8E8M0", dtype: "F8_E8M0" }],
]);

/** Bytes per element of the types with no DType here (COMPLEX128). */
const OTHER_SIZES: Record<number, number> = { 15: 16 };

/** Graphs nest through node attributes (If, Loop, Scan); deeper than this is E_LIMIT. */
export const ONNX_MAX_DEPTH = 32;
/** Longest tensor name kept (a longer one is cut, with its position added to keep it unique). */
const MAX_NAME = 4096;
/** Tensors below this many bytes stay in the raw regions: a chunk of their own would cost more than typing them saves. */
export const ONNX_MIN_REGION = 4096;

// Field numbers (onnx.proto).
const MODEL_PRODUCER_NAME = 2;
const MODEL_PRODUCER_VERSION = 3;
const MODEL_GRAPH = 7;
const MODEL_OPSET_IMPORT = 8;
const MODEL_FUNCTIONS = 25;
const GRAPH_NODE = 1;
const GRAPH_INITIALIZER = 5;
const GRAPH_SPARSE_INITIALIZER = 15;
const NODE_OUTPUT = 2;
const NODE_NAME = 3;
const NODE_ATTRIBUTE = 5;
const FUNCTION_NODE = 7;
const ATTR_NAME = 1;
const ATTR_T = 5;
const ATTR_G = 6;
const ATTR_TENSORS = 10;
const ATTR_GRAPHS = 11;
const ATTR_SPARSE_TENSOR = 22;
const ATTR_SPARSE_TENSORS = 23;
const SPARSE_VALUES = 1;
const SPARSE_INDICES = 2;
const TENSOR_DIMS = 1;
const TENSOR_DATA_TYPE = 2;
const TENSOR_FLOAT_DATA = 4;
const TENSOR_NAME = 8;
const TENSOR_RAW_DATA = 9;
const TENSOR_DOUBLE_DATA = 10;
const TENSOR_DATA_LOCATION = 14;
const OPSET_VERSION = 2;
const OPSET_DOMAIN = 1;
const LOCATION_EXTERNAL = 1;

interface Found {
  name: string;
  typeId: number;
  dims: number[];
  /** The data field, if the tensor has its values in this file as fixed-width bytes. */
  data?: { start: number; length: number; field: number };
  external: boolean;
}

/** A node's fields read so far (OnnxWalker.heldNode). */
interface NodeScan {
  name: string;
  output: string;
  /** The attribute fields, in order. */
  list: ProtoField[];
  /** The first attribute not yet read. */
  next: number;
  /** An attribute read whose tensors or graphs are not yet walked. */
  pending?: AttributeScan;
}

/** An attribute's name and its tensor and graph fields. */
interface AttributeScan {
  name: string;
  inner: ProtoField[];
}

class OnnxWalker {
  readonly r: ProtoReader;
  readonly tensors: Found[] = [];
  constructor(r: ProtoReader) {
    this.r = r;
  }

  async string(field: ProtoField, what: string): Promise<string> {
    return this.heldString(field, what) ?? this.text(field, what, await this.r.bytes(this.cut(field)));
  }

  /** string() without a promise when the window holds the bytes; undefined otherwise, nothing counted. */
  heldString(field: ProtoField, what: string): string | undefined {
    check(field.wire === WIRE_LEN, "E_CORRUPT", `onnx: ${what} is not a string`);
    const bytes = this.r.heldBytes(this.cut(field));
    return bytes && this.text(field, what, bytes);
  }

  /** The bytes of a string field read: all of them, or the first MAX_NAME of a longer one. */
  private cut(field: ProtoField): ProtoField {
    return field.length > MAX_NAME ? { ...field, length: MAX_NAME } : field;
  }

  private text(field: ProtoField, what: string, bytes: Buffer): string {
    if (field.length > MAX_NAME) return `${decodeUtf8(bytes.subarray(0, MAX_NAME)) ?? ""}...@${field.start}`;
    const text = decodeUtf8(bytes);
    check(text !== undefined, "E_CORRUPT", `onnx: ${what} is not valid UTF-8`);
    return text;
  }

  private expectLen(field: ProtoField, what: string): void {
    check(field.wire === WIRE_LEN, "E_CORRUPT", `onnx: ${what} (field ${field.number}) is not a message`);
  }

  private depth(depth: number): void {
    check(depth <= ONNX_MAX_DEPTH, "E_LIMIT", `onnx: graphs nest deeper than ${ONNX_MAX_DEPTH}`);
  }

  async graph(field: ProtoField, depth: number, prefix: string): Promise<void> {
    this.expectLen(field, "a graph");
    this.depth(depth);
    const end = field.start + field.length;
    this.r.checkMessage(field.start, end);
    for (let pos = field.start; pos < end; ) {
      const { field: f, next } = this.r.heldField(pos, end) ?? (await this.r.field(pos, end));
      pos = next;
      if (f.number === GRAPH_NODE) {
        // Most nodes (operators, their attributes of numbers and strings) are walked here
        // without a promise; node() goes on where one holds a tensor or graph.
        this.expectLen(f, "a node");
        const scan = this.heldNode(f);
        if (!scan) await this.node(f, depth, prefix);
        else if (scan.pending) await this.attributes(scan, depth, prefix);
      } else if (f.number === GRAPH_INITIALIZER) await this.tensor(f, prefix);
      else if (f.number === GRAPH_SPARSE_INITIALIZER) await this.sparse(f, prefix);
    }
  }

  async node(field: ProtoField, depth: number, prefix: string): Promise<void> {
    this.expectLen(field, "a node");
    const held = this.heldNode(field);
    if (held) {
      if (held.pending) await this.attributes(held, depth, prefix);
      return;
    }
    const scan: NodeScan = { name: "", output: "", list: [], next: 0 };
    const end = field.start + field.length;
    this.r.checkMessage(field.start, end);
    for (let pos = field.start; pos < end; ) {
      const { field: f, next } = this.r.heldField(pos, end) ?? (await this.r.field(pos, end));
      pos = next;
      if (f.number === NODE_NAME) scan.name = await this.string(f, "a node name");
      else if (f.number === NODE_OUTPUT && scan.output === "")
        scan.output = await this.string(f, "a node output");
      else if (f.number === NODE_ATTRIBUTE) {
        this.expectLen(f, "an attribute");
        scan.list.push(f);
      }
    }
    await this.attributes(scan, depth, prefix);
  }

  /**
   * A node whose message the window holds whole, walked without a promise: its fields,
   * then its attributes in turn up to the first that holds a tensor or graph (`pending`,
   * read but not walked: attributes() goes on from there). Undefined when the window does
   * not hold the node; nothing is read or counted then.
   */
  private heldNode(field: ProtoField): NodeScan | undefined {
    const end = field.start + field.length;
    if (!this.r.holds(field.start, field.length)) return undefined;
    this.r.checkMessage(field.start, end);
    const scan: NodeScan = { name: "", output: "", list: [], next: 0 };
    for (let pos = field.start; pos < end; ) {
      const { field: f, next } = this.r.heldField(pos, end) as { field: ProtoField; next: number };
      pos = next;
      if (f.number === NODE_NAME) scan.name = this.heldString(f, "a node name") as string;
      else if (f.number === NODE_OUTPUT && scan.output === "")
        scan.output = this.heldString(f, "a node output") as string;
      else if (f.number === NODE_ATTRIBUTE) {
        this.expectLen(f, "an attribute");
        scan.list.push(f);
      }
    }
    while (scan.next < scan.list.length) {
      const a = this.heldAttribute(scan.list[scan.next++]) as AttributeScan;
      if (a.inner.length > 0) {
        scan.pending = a;
        break;
      }
    }
    return scan;
  }

  /**
   * The attributes of a node from `scan.next` on, each read and then its tensors and
   * graphs walked, `scan.pending` (read already) first. A Constant node's tensor is known
   * by the node's output; subgraphs by the node's name.
   */
  private async attributes(scan: NodeScan, depth: number, prefix: string): Promise<void> {
    const owner = scan.output || scan.name;
    const node = scan.name || scan.output;
    if (scan.pending) await this.values(scan.pending, depth, prefix, owner, node);
    for (; scan.next < scan.list.length; scan.next++) {
      const a = scan.list[scan.next];
      const read = this.heldAttribute(a) ?? (await this.readAttribute(a));
      if (read.inner.length > 0) await this.values(read, depth, prefix, owner, node);
    }
  }

  /** An attribute's name and the fields of its tensors and graphs, without a promise when the window holds it. */
  private heldAttribute(field: ProtoField): AttributeScan | undefined {
    const end = field.start + field.length;
    if (!this.r.holds(field.start, field.length)) return undefined;
    this.r.checkMessage(field.start, end);
    const scan: AttributeScan = { name: "", inner: [] };
    for (let pos = field.start; pos < end; ) {
      const { field: f, next } = this.r.heldField(pos, end) as { field: ProtoField; next: number };
      pos = next;
      if (f.number === ATTR_NAME) scan.name = this.heldString(f, "an attribute name") as string;
      else this.attributeValue(f, scan);
    }
    return scan;
  }

  /** heldAttribute(), reading what the window does not hold. */
  private async readAttribute(field: ProtoField): Promise<AttributeScan> {
    const end = field.start + field.length;
    this.r.checkMessage(field.start, end);
    const scan: AttributeScan = { name: "", inner: [] };
    for (let pos = field.start; pos < end; ) {
      const { field: f, next } = this.r.heldField(pos, end) ?? (await this.r.field(pos, end));
      pos = next;
      if (f.number === ATTR_NAME) scan.name = await this.string(f, "an attribute name");
      else this.attributeValue(f, scan);
    }
    return scan;
  }

  /** An attribute's field, kept when it is a tensor or graph. */
  private attributeValue(f: ProtoField, scan: AttributeScan): void {
    if (
      f.number === ATTR_T ||
      f.number === ATTR_TENSORS ||
      f.number === ATTR_G ||
      f.number === ATTR_GRAPHS ||
      f.number === ATTR_SPARSE_TENSOR ||
      f.number === ATTR_SPARSE_TENSORS
    ) {
      this.expectLen(f, "an attribute value");
      scan.inner.push(f);
    }
  }

  /** The tensors and graphs of an attribute. */
  private async values(
    scan: AttributeScan,
    depth: number,
    prefix: string,
    owner: string,
    node: string,
  ): Promise<void> {
    const { name, inner } = scan;
    const label = `${prefix}${name === "value" ? owner : `${owner}/${name}`}`;
    for (const f of inner) {
      if (f.number === ATTR_T || f.number === ATTR_TENSORS) await this.tensor(f, "", label);
      else if (f.number === ATTR_SPARSE_TENSOR || f.number === ATTR_SPARSE_TENSORS)
        await this.sparse(f, "", label);
      else await this.graph(f, depth + 1, `${prefix}${node}/${name}/`);
    }
  }

  /** A SparseTensorProto: its values tensor, then its indices, named after the values. */
  async sparse(field: ProtoField, prefix: string, label?: string): Promise<void> {
    this.expectLen(field, "a sparse tensor");
    let values: ProtoField | undefined;
    let indices: ProtoField | undefined;
    const end = field.start + field.length;
    this.r.checkMessage(field.start, end);
    for (let pos = field.start; pos < end; ) {
      const { field: f, next } = this.r.heldField(pos, end) ?? (await this.r.field(pos, end));
      pos = next;
      if (f.number === SPARSE_VALUES) values = f;
      else if (f.number === SPARSE_INDICES) indices = f;
    }
    let name = label ?? `sparse@${field.start}`;
    if (values) name = (await this.tensor(values, prefix, label)).name;
    if (indices) await this.tensor(indices, "", `${name}/indices`, true);
  }

  /** A TensorProto, named by its own name, else by `label`, else by its position. */
  async tensor(field: ProtoField, prefix: string, label?: string, labelFirst = false): Promise<Found> {
    this.expectLen(field, "a tensor");
    let name = "";
    let typeId = 0;
    let external = false;
    const dims: number[] = [];
    let data: Found["data"];
    const end = field.start + field.length;
    this.r.checkMessage(field.start, end);
    for (let pos = field.start; pos < end; ) {
      const { field: f, next } = this.r.heldField(pos, end) ?? (await this.r.field(pos, end));
      pos = next;
      switch (f.number) {
        case TENSOR_DIMS:
          for (const d of f.wire === WIRE_VARINT ? [f.value] : await this.r.packedVarints(f)) {
            check(
              Number.isSafeInteger(d),
              "E_CORRUPT",
              `onnx: a tensor dimension ${d} is negative or too large`,
            );
            dims.push(d);
          }
          break;
        case TENSOR_DATA_TYPE:
          check(f.wire === WIRE_VARINT, "E_CORRUPT", "onnx: a tensor's data_type is not a varint");
          typeId = f.value;
          break;
        case TENSOR_NAME:
          name = await this.string(f, "a tensor name");
          break;
        case TENSOR_DATA_LOCATION:
          check(f.wire === WIRE_VARINT, "E_CORRUPT", "onnx: a tensor's data_location is not a varint");
          external = f.value === LOCATION_EXTERNAL;
          break;
        case TENSOR_RAW_DATA:
        case TENSOR_FLOAT_DATA:
        case TENSOR_DOUBLE_DATA:
          // float_data and double_data are packed (one length-delimited field) as every
          // serialiser writes them; unpacked values, one field each, stay raw bytes.
          if (f.wire === WIRE_LEN) {
            check(data === undefined, "E_CORRUPT", "onnx: a tensor has its data twice");
            data = { start: f.start, length: f.length, field: f.number };
          }
          break;
      }
    }
    const chosen = (labelFirst ? label || name : name || label) || `tensor@${field.start}`;
    const found: Found = { name: `${prefix}${chosen}`, typeId, dims, data, external };
    this.tensors.push(found);
    return found;
  }
}

/** Bytes a tensor of `type` and `elements` takes as raw_data, or undefined when not fixed width. */
function rawLength(typeId: number, elements: number): number | undefined {
  const dtype = ONNX_TYPES.get(typeId)?.dtype;
  if (dtype !== undefined) {
    const d = dtypeByName(dtype)!;
    // Sub-byte types pack two values to a byte, the last byte padded (onnx.proto).
    return d.bits < 8 ? Math.ceil((elements * d.bits) / 8) : byteLength(d, elements);
  }
  const size = OTHER_SIZES[typeId];
  return size === undefined ? undefined : checkedProduct([size], elements);
}

export async function recogniseOnnx(
  source: RandomAccessSource,
  options?: RecogniseOptions,
): Promise<Recognised> {
  const size = source.size;
  const r = new ProtoReader(source, maxHeaderBytes(options), "onnx");
  const walker = new OnnxWalker(r);
  let irVersion: number | undefined;
  let producer = "";
  let producerVersion = "";
  const opsets: Record<string, number> = {};
  let graphs = 0;
  for await (const f of r.fields(0, size)) {
    switch (f.number) {
      case MODEL_IR_VERSION:
        check(f.wire === WIRE_VARINT, "E_CORRUPT", "onnx: ir_version is not a varint");
        irVersion = f.value;
        break;
      case MODEL_PRODUCER_NAME:
        producer = await walker.string(f, "producer_name");
        break;
      case MODEL_PRODUCER_VERSION:
        producerVersion = await walker.string(f, "producer_version");
        break;
      case MODEL_GRAPH:
        graphs++;
        await walker.graph(f, 0, "");
        break;
      case MODEL_OPSET_IMPORT: {
        check(f.wire === WIRE_LEN, "E_CORRUPT", "onnx: an opset_import is not a message");
        let domain = "";
        let version = 0;
        for await (const o of r.fields(f.start, f.start + f.length)) {
          if (o.number === OPSET_DOMAIN) domain = await walker.string(o, "an opset domain");
          else if (o.number === OPSET_VERSION && o.wire === WIRE_VARINT) version = o.value;
        }
        if (Object.keys(opsets).length < 64) opsets[domain || "ai.onnx"] = version;
        break;
      }
      case MODEL_FUNCTIONS: {
        check(f.wire === WIRE_LEN, "E_CORRUPT", "onnx: a function is not a message");
        for await (const n of r.fields(f.start, f.start + f.length)) {
          if (n.number === FUNCTION_NODE) await walker.node(n, 1, "");
        }
        break;
      }
    }
  }
  check(irVersion !== undefined && graphs === 1, "E_CORRUPT", "onnx: not a model with one graph");

  const names = new Map<string, number>();
  const regions: Region[] = [];
  const tensors: TensorEntry[] = [];
  for (const t of walker.tensors) {
    const type = ONNX_TYPES.get(t.typeId);
    const typeName = type?.name ?? `onnx type ${t.typeId}`;
    const elements = checkedProduct(t.dims);
    if (elements === undefined)
      check(false, "E_CORRUPT", `onnx: tensor ${t.name} has an element count that overflows`);
    // Listed when its values are bytes of this file (or it has none); values as varints
    // or strings, or in another file, are not.
    if (!t.data && (t.external || elements > 0)) continue;
    let dtype: DTypeName | undefined = type?.dtype;
    if (t.data) {
      let expected: number | undefined;
      if (t.data.field === TENSOR_RAW_DATA) expected = rawLength(t.typeId, elements);
      else {
        // float_data holds FLOAT and COMPLEX64 values, double_data DOUBLE and COMPLEX128.
        const floats = t.data.field === TENSOR_FLOAT_DATA;
        const scalar = floats ? 1 : 11;
        const complex = floats ? 14 : 15;
        check(
          t.typeId === scalar || t.typeId === complex,
          "E_CORRUPT",
          `onnx: tensor ${t.name} of ${typeName} has ${floats ? "float" : "double"}_data`,
        );
        expected = checkedProduct([floats ? 4 : 8, t.typeId === complex ? 2 : 1], elements);
        dtype = floats ? (t.typeId === complex ? "C64" : "F32") : t.typeId === complex ? undefined : "F64";
      }
      if (expected !== undefined && expected !== t.data.length)
        check(
          false,
          "E_CORRUPT",
          `onnx: tensor ${t.name} (${typeName} ${JSON.stringify(t.dims)}) has ${t.data.length} bytes of data, expected ${expected}`,
        );
      if (dtype !== undefined && t.data.length >= ONNX_MIN_REGION)
        regions.push(tensorRegion(t.name, t.data.start, t.data.length, dtype, t.dims));
    }
    const seen = names.get(t.name) ?? 0;
    names.set(t.name, seen + 1);
    tensors.push({
      name: seen === 0 ? t.name : `${t.name}#${seen + 1}`,
      dtype: dtype ?? typeName,
      shape: t.dims,
      offset: t.data?.start ?? 0,
      length: t.data?.length ?? 0,
    });
  }
  const metadata: Record<string, unknown> = { irVersion, opsets, tensorCount: tensors.length };
  if (producer) metadata.producer = producerVersion ? `${producer} ${producerVersion}` : producer;
  const external = walker.tensors.filter((t) => t.external).length;
  if (external > 0) metadata.externalTensors = external;
  return { format: "onnx", regions: tileRegions(regions, size, "protobuf"), tensors, metadata };
}
