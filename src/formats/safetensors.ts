/**
 * safetensors: an 8-byte little-endian header length N, N bytes of UTF-8 JSON, then the
 * tensor data. Validated like the reference implementation (huggingface/safetensors,
 * `SafeTensors::read_metadata` and `Metadata::validate`), in the same order:
 *
 *  1. the file holds the 8-byte length;                 E_TRUNCATED
 *  2. N ≤ 100 MB (or the caller's cap);                  E_LIMIT
 *  3. 8 + N ≤ file size;                                  E_TRUNCATED
 *  4. the header is UTF-8;                                E_CORRUPT
 *  5. it is JSON, and a JSON object;                      E_CORRUPT
 *  6. `__metadata__`, if present, maps strings to strings; E_CORRUPT
 *  7. every entry: an object with a known dtype (E_UNSUPPORTED for an unknown name),
 *     a shape of non-negative safe integers and data_offsets [begin, end];  E_CORRUPT
 *  8. entries sorted by offsets: each begins where the previous ended, end ≥ begin;
 *     elements × bits does not overflow, is whole bytes, and equals end − begin;  E_CORRUPT
 *  9. the last end equals file size − 8 − N (short: E_TRUNCATED, long: E_CORRUPT).
 */

import type { DTypeName, Region } from "../common/dtype.ts";
import { check, MmhError } from "../common/errors.ts";
import type { RandomAccessSource } from "../common/source.ts";
import {
  checkedProduct,
  decodeUtf8,
  jsonSize,
  maxHeaderBytes,
  rawRegion,
  readAt,
  tensorRegion,
  tileRegions,
} from "./regions.ts";
import type { Recognised, RecogniseOptions, TensorEntry } from "./types.ts";

export { looksLikeSafetensors } from "./magic.ts";

/** The reference implementation's MAX_HEADER_SIZE. */
export const SAFETENSORS_MAX_HEADER = 100_000_000;

/** Bits per element of every dtype in the safetensors spec (Dtype::bitsize). */
const BITS: Record<string, number> = {
  BOOL: 8,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  C64: 64,
  F64: 64,
  I64: 64,
  U64: 64,
};

interface Entry {
  name: string;
  dtype: DTypeName;
  shape: number[];
  begin: number;
  end: number;
}

function isNonNegativeInteger(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 0;
}

function parseEntry(name: string, value: unknown): Entry {
  check(
    typeof value === "object" && value !== null && !Array.isArray(value),
    "E_CORRUPT",
    `safetensors: entry "${name}" is not an object`,
  );
  const info = value as Record<string, unknown>;
  check(typeof info.dtype === "string", "E_CORRUPT", `safetensors: entry "${name}" has no dtype string`);
  check(
    Object.hasOwn(BITS, info.dtype),
    "E_UNSUPPORTED",
    `safetensors: entry "${name}" has unknown dtype ${JSON.stringify(info.dtype).slice(0, 40)}`,
  );
  check(Array.isArray(info.shape), "E_CORRUPT", `safetensors: entry "${name}" has no shape array`);
  for (const dim of info.shape) {
    check(
      isNonNegativeInteger(dim),
      "E_CORRUPT",
      `safetensors: entry "${name}" has a shape entry that is not a non-negative integer`,
    );
    check(
      Number.isSafeInteger(dim),
      "E_LIMIT",
      `safetensors: entry "${name}" has a shape entry over 2^53 (${dim})`,
    );
  }
  const offsets = info.data_offsets;
  check(
    Array.isArray(offsets) && offsets.length === 2,
    "E_CORRUPT",
    `safetensors: entry "${name}" has no data_offsets pair`,
  );
  for (const off of offsets) {
    check(
      isNonNegativeInteger(off),
      "E_CORRUPT",
      `safetensors: entry "${name}" has a data offset that is not a non-negative integer`,
    );
    check(Number.isSafeInteger(off), "E_LIMIT", `safetensors: entry "${name}" has a data offset over 2^53`);
  }
  return {
    name,
    dtype: info.dtype as DTypeName,
    shape: info.shape as number[],
    begin: offsets[0] as number,
    end: offsets[1] as number,
  };
}

export async function recogniseSafetensors(
  source: RandomAccessSource,
  options?: RecogniseOptions,
): Promise<Recognised> {
  const size = source.size;
  // 1-3: the header length.
  check(size >= 8, "E_TRUNCATED", "safetensors: file is shorter than the 8-byte header length");
  const n64 = (await readAt(source, 0, 8, "safetensors header length")).readBigUInt64LE(0);
  const cap = Math.min(SAFETENSORS_MAX_HEADER, maxHeaderBytes(options));
  check(n64 <= BigInt(cap), "E_LIMIT", `safetensors: header length ${n64} is over the limit of ${cap} bytes`);
  const n = Number(n64);
  check(
    8 + n <= size,
    "E_TRUNCATED",
    `safetensors: header of ${n} bytes runs past the end of the file (${size} bytes)`,
  );
  // 4-5: UTF-8 JSON object.
  const text = decodeUtf8(await readAt(source, 8, n, "safetensors header"));
  check(text !== undefined, "E_CORRUPT", "safetensors: header is not valid UTF-8");
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new MmhError("E_CORRUPT", "safetensors: header is not valid JSON");
  }
  check(
    typeof json === "object" && json !== null && !Array.isArray(json),
    "E_CORRUPT",
    "safetensors: header is not a JSON object",
  );
  const header = json as Record<string, unknown>;
  // 6: __metadata__.
  let metadata: Record<string, string> | undefined;
  const meta = header.__metadata__;
  if (meta !== undefined && meta !== null) {
    check(
      typeof meta === "object" && !Array.isArray(meta),
      "E_CORRUPT",
      "safetensors: __metadata__ is not an object",
    );
    for (const value of Object.values(meta)) {
      check(
        typeof value === "string",
        "E_CORRUPT",
        "safetensors: __metadata__ has a value that is not a string",
      );
    }
    metadata = meta as Record<string, string>;
  }
  // 7: each entry.
  const entries: Entry[] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    entries.push(parseEntry(name, value));
  }
  // 8: sorted by offsets, contiguous, sizes agree.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let start = 0;
  for (const e of entries) {
    check(
      e.begin === start && e.end >= e.begin,
      "E_CORRUPT",
      `safetensors: invalid offsets [${e.begin}, ${e.end}] for tensor "${e.name}" (expected it to begin at ${start})`,
    );
    start = e.end;
    const elements = checkedProduct(e.shape);
    const bits = elements === undefined ? undefined : checkedProduct([BITS[e.dtype]], elements);
    check(bits !== undefined, "E_CORRUPT", `safetensors: shape × dtype of tensor "${e.name}" overflows`);
    check(
      bits % 8 === 0,
      "E_CORRUPT",
      `safetensors: tensor "${e.name}" of ${e.dtype} has ${bits} bits, not a whole number of bytes`,
    );
    check(
      e.end - e.begin === bits / 8,
      "E_CORRUPT",
      `safetensors: tensor "${e.name}" has ${e.end - e.begin} bytes, but ${e.dtype} ${JSON.stringify(e.shape)} needs ${bits / 8}`,
    );
  }
  // 9: the data fills the rest of the file exactly.
  const dataStart = 8 + n;
  check(
    dataStart + start <= size,
    "E_TRUNCATED",
    `safetensors: tensor data ends at ${dataStart + start}, past the end of the file (${size} bytes)`,
  );
  check(
    dataStart + start === size,
    "E_CORRUPT",
    `safetensors: tensor data ends at ${dataStart + start} but the file has ${size} bytes (incomplete coverage)`,
  );

  const regions: Region[] = [rawRegion("safetensors header", 0, dataStart)];
  const tensors: TensorEntry[] = [];
  for (const e of entries) {
    const offset = dataStart + e.begin;
    const length = e.end - e.begin;
    tensors.push({ name: e.name, dtype: e.dtype, shape: e.shape, offset, length });
    if (length > 0) regions.push(tensorRegion(e.name, offset, length, e.dtype, e.shape));
  }
  const result: Recognised = { format: "safetensors", regions: tileRegions(regions, size), tensors };
  const facts: Record<string, unknown> = { headerLength: n, tensorCount: entries.length };
  if (metadata !== undefined) {
    // Usually a few short strings ({"format": "pt"}); keep only what fits.
    facts.metadata = jsonSize(metadata) <= 32 * 1024 ? metadata : { omitted: Object.keys(metadata).length };
  }
  result.metadata = facts;
  return result;
}
