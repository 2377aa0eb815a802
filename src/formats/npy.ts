/**
 * NumPy .npy (NEP 1): "\x93NUMPY", major and minor version bytes, a header length (u16
 * for 1.0, u32 for 2.0 and 3.0), then a Python dict literal {'descr': ..., 'fortran_order':
 * ..., 'shape': (...)} padded with spaces and a newline, then the array's bytes.
 *
 * The dict is parsed by a tiny literal parser (never evaluated). Little-endian numeric
 * descrs map onto DTypes; big-endian, structured, object, string, datetime and other
 * types become raw regions whose note says what they are.
 */

import type { DTypeName, Region } from "../common/dtype.ts";
import { check } from "../common/errors.ts";
import type { RandomAccessSource } from "../common/source.ts";
import { NPY_MAGIC } from "./magic.ts";
import { isDict, isTuple, type PyLiteral, parsePyLiteral } from "./pyliteral.ts";
import {
  checkedProduct,
  decodeUtf8,
  maxHeaderBytes,
  rawRegion,
  readAt,
  tensorRegion,
  tileRegions,
} from "./regions.ts";
import type { Recognised, RecogniseOptions, TensorEntry } from "./types.ts";

export { looksLikeNpy, NPY_MAGIC } from "./magic.ts";

/** NumPy itself refuses headers over 10000 bytes by default; we allow a little more. */
export const NPY_MAX_HEADER = 1024 * 1024;

export interface NpyLayout {
  version: string;
  /** Bytes from the magic to the first data byte. */
  headerLength: number;
  /** The descr as written: a typestr such as "<f4", or "structured" for a field list. */
  descr: string;
  fortranOrder: boolean;
  shape: number[];
  /** Bytes of array data; null when it cannot be known (object arrays are pickled). */
  dataLength: number | null;
  /** The element type when the bytes are plain little-endian numbers. */
  dtype: DTypeName | null;
  /** What a raw data region's note says (and the tensor entry's dtype when dtype is null). */
  note?: string;
}

const NUMERIC: Record<string, DTypeName> = {
  f2: "F16",
  f4: "F32",
  f8: "F64",
  i1: "I8",
  i2: "I16",
  i4: "I32",
  i8: "I64",
  u1: "U8",
  u2: "U16",
  u4: "U32",
  u8: "U64",
  b1: "BOOL",
  c8: "C64",
};

interface Descr {
  itemsize: number | null;
  dtype: DTypeName | null;
  note?: string;
}

function interpretDescr(descr: string): Descr {
  const m = /^([<>|=])([a-zA-Z?])(\d+)?(\[[0-9A-Za-z]+\])?$/.exec(descr);
  if (!m) return { itemsize: null, dtype: null, note: `unknown descr ${descr.slice(0, 40)}` };
  const [, order, kind, digits, unit] = m;
  if (kind === "O") return { itemsize: null, dtype: null, note: "object array (pickled)" };
  if (digits === undefined) return { itemsize: null, dtype: null, note: `unknown descr ${descr}` };
  const count = Number(digits);
  check(Number.isSafeInteger(count), "E_CORRUPT", `npy: item size in ${descr.slice(0, 40)} is too large`);
  const itemsize = kind === "U" ? count * 4 : count;
  if (unit !== undefined && kind !== "M" && kind !== "m") {
    return { itemsize: null, dtype: null, note: `unknown descr ${descr}` };
  }
  const key = `${kind}${digits}`;
  const mapped = NUMERIC[key];
  if (mapped !== undefined && !unit) {
    if (order === ">" && itemsize > 1) return { itemsize, dtype: null, note: `big-endian ${key}` };
    if (order === "=" && itemsize > 1) return { itemsize, dtype: mapped, note: "native byte order" };
    return { itemsize, dtype: mapped };
  }
  if (!"fiucbUSaVMm".includes(kind)) return { itemsize: null, dtype: null, note: `unknown descr ${descr}` };
  return { itemsize, dtype: null, note: `numpy ${descr}` };
}

/**
 * Read and check an .npy header at `start`, with `available` bytes of the file (or zip
 * member) from there. The data must fit in `available`.
 */
export async function readNpyLayout(
  source: RandomAccessSource,
  start: number,
  available: number,
  cap: number,
  what = "npy",
): Promise<NpyLayout> {
  check(available >= 10, "E_TRUNCATED", `${what}: shorter than the 10-byte npy preamble`);
  const pre = await readAt(source, start, Math.min(12, available), `${what} preamble`);
  check(pre.subarray(0, 6).equals(NPY_MAGIC), "E_CORRUPT", `${what}: bad npy magic`);
  const major = pre[6];
  const minor = pre[7];
  check(
    (major === 1 || major === 2 || major === 3) && minor === 0,
    "E_UNSUPPORTED",
    `${what}: npy version ${major}.${minor} is not supported (1.0, 2.0 and 3.0 are)`,
  );
  let preamble = 10;
  let headerLen: number;
  if (major === 1) {
    headerLen = pre.readUInt16LE(8);
  } else {
    check(available >= 12, "E_TRUNCATED", `${what}: shorter than the 12-byte npy ${major}.0 preamble`);
    preamble = 12;
    headerLen = pre.readUInt32LE(8);
  }
  const limit = Math.min(cap, NPY_MAX_HEADER);
  check(headerLen <= limit, "E_LIMIT", `${what}: header of ${headerLen} bytes is over the limit of ${limit}`);
  check(
    preamble + headerLen <= available,
    "E_TRUNCATED",
    `${what}: header of ${headerLen} bytes runs past the end of the data`,
  );
  const raw = await readAt(source, start + preamble, headerLen, `${what} header`);
  let text: string | undefined;
  if (major === 3) {
    text = decodeUtf8(raw);
    check(text !== undefined, "E_CORRUPT", `${what}: version 3.0 header is not valid UTF-8`);
  } else {
    text = raw.toString("latin1");
  }
  const dict = parsePyLiteral(text, `${what} header`);
  check(isDict(dict), "E_CORRUPT", `${what}: header is not a dict`);
  const fields = new Map<string, PyLiteral>();
  for (const [k, v] of dict.dict) {
    check(typeof k === "string", "E_CORRUPT", `${what}: header has a key that is not a string`);
    fields.set(k, v);
  }
  check(
    fields.size === 3 && fields.has("descr") && fields.has("fortran_order") && fields.has("shape"),
    "E_CORRUPT",
    `${what}: header keys are not exactly descr, fortran_order and shape`,
  );
  const fortran = fields.get("fortran_order");
  check(typeof fortran === "boolean", "E_CORRUPT", `${what}: fortran_order is not True or False`);
  const shapeValue = fields.get("shape")!;
  check(isTuple(shapeValue), "E_CORRUPT", `${what}: shape is not a tuple`);
  const shape: number[] = [];
  for (const d of shapeValue.tuple) {
    check(
      typeof d === "number" && Number.isInteger(d) && d >= 0,
      "E_CORRUPT",
      `${what}: shape has an entry that is not a non-negative integer`,
    );
    check(Number.isSafeInteger(d), "E_LIMIT", `${what}: shape has an entry over 2^53`);
    shape.push(d);
  }
  const descrValue = fields.get("descr")!;
  let descr: string;
  let info: Descr;
  if (typeof descrValue === "string") {
    descr = descrValue;
    info = interpretDescr(descrValue);
  } else {
    check(Array.isArray(descrValue), "E_CORRUPT", `${what}: descr is neither a string nor a field list`);
    descr = "structured";
    info = { itemsize: null, dtype: null, note: "structured dtype" };
  }
  const headerLength = preamble + headerLen;
  let dataLength: number | null = null;
  if (info.itemsize !== null) {
    const count = checkedProduct(shape);
    const bytes = count === undefined ? undefined : checkedProduct([info.itemsize], count);
    check(bytes !== undefined, "E_CORRUPT", `${what}: shape × item size overflows`);
    check(
      headerLength + bytes <= available,
      "E_TRUNCATED",
      `${what}: ${bytes} bytes of array data run past the end of the data (${available - headerLength} left)`,
    );
    dataLength = bytes;
  }
  const layout: NpyLayout = {
    version: `${major}.0`,
    headerLength,
    descr,
    fortranOrder: fortran,
    shape,
    dataLength,
    dtype: info.dtype,
  };
  if (info.note !== undefined) layout.note = info.note;
  return layout;
}

/**
 * The regions and tensor entry of an npy layout placed at `start`, whose data may run to
 * `end` (exclusive) when its length is not known. Leaves gaps for the caller to tile.
 */
export function npyRegions(
  layout: NpyLayout,
  start: number,
  end: number,
  name: string,
): { regions: Region[]; tensor: TensorEntry } {
  const dataStart = start + layout.headerLength;
  const dataLength = layout.dataLength ?? end - dataStart;
  const regions: Region[] = [rawRegion(`${name} npy header`, start, layout.headerLength)];
  const tensor: TensorEntry = {
    name,
    dtype: layout.dtype ?? (layout.descr === "structured" ? "structured" : layout.descr),
    shape: layout.shape,
    offset: dataStart,
    length: dataLength,
  };
  if (layout.dtype !== null && layout.dataLength !== null) {
    // Fortran order: the bytes are the C-order array of the reversed shape.
    const shape = layout.fortranOrder ? [...layout.shape].reverse() : layout.shape;
    const notes = [layout.note, layout.fortranOrder ? "fortran order (shape reversed)" : undefined].filter(
      (n) => n !== undefined,
    );
    regions.push(
      tensorRegion(
        name,
        dataStart,
        dataLength,
        layout.dtype,
        shape,
        notes.length ? notes.join("; ") : undefined,
      ),
    );
  } else {
    regions.push(rawRegion(name, dataStart, dataLength, layout.note));
  }
  return { regions, tensor };
}

export async function recogniseNpy(
  source: RandomAccessSource,
  options?: RecogniseOptions,
): Promise<Recognised> {
  const cap = maxHeaderBytes(options);
  const layout = await readNpyLayout(source, 0, source.size, cap);
  const { regions, tensor } = npyRegions(layout, 0, source.size, "array");
  const end = layout.headerLength + tensor.length;
  if (end < source.size) regions.push(rawRegion("trailing bytes", end, source.size - end));
  return {
    format: "npy",
    regions: tileRegions(regions, source.size),
    tensors: [tensor],
    metadata: { version: layout.version, descr: layout.descr, fortranOrder: layout.fortranOrder },
  };
}
