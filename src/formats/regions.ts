/** Helpers shared by the recognisers: region tiling and bounded reads. */

import type { DTypeName, Region } from "../common/dtype.ts";
import { check, MmhError } from "../common/errors.ts";
import type { RandomAccessSource } from "../common/source.ts";
import { DEFAULT_MAX_HEADER_BYTES, type RecogniseOptions } from "./types.ts";

export function rawRegion(name: string, offset: number, length: number, note?: string): Region {
  const region: Region = { name, offset, length, dtype: null, kind: "raw" };
  if (note !== undefined) region.note = note;
  return region;
}

export function tensorRegion(
  name: string,
  offset: number,
  length: number,
  dtype: DTypeName,
  shape: number[],
  note?: string,
): Region {
  const region: Region = { name, offset, length, dtype, shape, kind: "tensor" };
  if (note !== undefined) region.note = note;
  return region;
}

/**
 * Sort `regions`, check that none overlaps another or leaves [0, size), drop empty ones,
 * and fill every gap with a raw region named `gapName`. The result tiles [0, size)
 * exactly. Overlaps and out-of-range regions are E_CORRUPT: they come from the file's own
 * offsets.
 */
export function tileRegions(regions: readonly Region[], size: number, gapName = "raw"): Region[] {
  check(Number.isSafeInteger(size) && size >= 0, "E_INTERNAL", `bad size ${size} to tile`);
  // The messages of these per-region checks are built only when one fails.
  for (const r of regions) {
    if (!(Number.isSafeInteger(r.offset) && Number.isSafeInteger(r.length) && r.offset >= 0 && r.length >= 0))
      check(false, "E_CORRUPT", `region "${r.name}" has a bad offset or length (${r.offset}, ${r.length})`);
    if (!(r.offset + r.length <= size))
      check(
        false,
        "E_TRUNCATED",
        `region "${r.name}" at ${r.offset}+${r.length} runs past the end of the file (${size} bytes)`,
      );
  }
  const sorted = regions.filter((r) => r.length > 0).sort((a, b) => a.offset - b.offset);
  const out: Region[] = [];
  let pos = 0;
  for (const r of sorted) {
    if (r.offset < pos) {
      const prev = out[out.length - 1];
      throw new MmhError(
        "E_CORRUPT",
        `region "${r.name}" at ${r.offset}+${r.length} overlaps "${prev.name}" at ${prev.offset}+${prev.length}`,
      );
    }
    if (r.offset > pos) out.push(rawRegion(gapName, pos, r.offset - pos));
    out.push(r);
    pos = r.offset + r.length;
  }
  if (pos < size) out.push(rawRegion(gapName, pos, size - pos));
  return out;
}

/** Check the invariant every Recognised result keeps: sorted, non-empty, exact tiling. */
export function assertTiles(regions: readonly Region[], size: number): void {
  let pos = 0;
  for (const r of regions) {
    if (!(r.offset === pos && r.length > 0 && Number.isSafeInteger(r.length)))
      check(
        false,
        "E_INTERNAL",
        `regions do not tile the file at offset ${pos} ("${r.name}" at ${r.offset}+${r.length})`,
      );
    if ((r.kind === "tensor") !== (r.dtype !== null))
      check(false, "E_INTERNAL", `region "${r.name}" is ${r.kind} with dtype ${r.dtype}`);
    pos += r.length;
  }
  check(pos === size, "E_INTERNAL", `regions cover ${pos} of ${size} bytes`);
}

/** Read exactly `length` bytes at `offset`, or E_TRUNCATED naming `what`. */
export async function readAt(
  source: RandomAccessSource,
  offset: number,
  length: number,
  what: string,
): Promise<Buffer> {
  if (!(Number.isSafeInteger(offset) && Number.isSafeInteger(length) && offset >= 0 && length >= 0))
    check(false, "E_CORRUPT", `${what}: bad position ${offset}+${length}`);
  if (!(offset + length <= source.size))
    check(
      false,
      "E_TRUNCATED",
      `${what} at ${offset}+${length} runs past the end of the file (${source.size} bytes)`,
    );
  const bytes = await source.read(offset, length);
  if (bytes.length !== length) check(false, "E_TRUNCATED", `${what}: short read at offset ${offset}`);
  return bytes;
}

export function maxHeaderBytes(options: RecogniseOptions | undefined): number {
  const value = options?.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  check(
    Number.isSafeInteger(value) && value > 0,
    "E_BAD_OPTION",
    `maxHeaderBytes must be a positive integer, got ${value}`,
  );
  return value;
}

/** Product of non-negative safe integers, or undefined past Number.MAX_SAFE_INTEGER. */
export function checkedProduct(values: readonly number[], start = 1): number | undefined {
  let product = start;
  for (const v of values) {
    product *= v;
    if (!Number.isSafeInteger(product)) return undefined;
  }
  return product;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Decode strict UTF-8, or undefined when the bytes are not valid UTF-8. */
export function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** Keep a JSON value if its serialisation fits `budget` characters. */
export function jsonSize(value: unknown): number {
  return JSON.stringify(value)?.length ?? 0;
}
