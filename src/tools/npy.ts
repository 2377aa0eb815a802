import { MmhError } from "../common/errors.ts";

/** numpy descr for each dtype numpy has; BF16 and the FP8/FP6/FP4 types have none. */
const DESCR: Record<string, string> = {
  F64: "<f8",
  F32: "<f4",
  F16: "<f2",
  I64: "<i8",
  I32: "<i4",
  I16: "<i2",
  I8: "|i1",
  U64: "<u8",
  U32: "<u4",
  U16: "<u2",
  U8: "|u1",
  BOOL: "|b1",
  C64: "<c8",
};

/** A .npy (version 1.0) header for C-ordered data of this dtype and shape. */
export function npyHeader(dtype: string, shape: readonly number[]): Buffer {
  const descr = DESCR[dtype];
  if (!descr) {
    throw new MmhError("E_UNSUPPORTED", `numpy has no dtype for ${dtype}; extract it with --format raw`);
  }
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // Magic (6) + version (2) + length (2) + dict + newline, padded to a multiple of 64.
  const unpadded = 10 + dict.length + 1;
  dict += " ".repeat((64 - (unpadded % 64)) % 64);
  const header = Buffer.alloc(10 + dict.length + 1);
  header.write("\x93NUMPY", 0, "latin1");
  header[6] = 1;
  header[7] = 0;
  header.writeUInt16LE(dict.length + 1, 8);
  header.write(`${dict}\n`, 10, "latin1");
  return header;
}
