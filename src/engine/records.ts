/**
 * Record detection for `auto`: whether a chunk of unknown content is an array of records of
 * W bytes (structs, interleaved channels, tabular rows, values serialised at a fixed size)
 * for a W that the byte groupings (2, 4 bytes) do not cover. The byte at one place in a
 * record (a control byte, an exponent, a high byte) repeats from record to record, so
 * bytes W apart are equal far more often than bytes at other distances: the detector
 * counts, on two windows of the chunk, how often raw[i] = raw[i − d] for every distance d
 * up to RECORDS_MAX. The smallest d whose rate is within a margin of the best is the
 * record size (a multiple of W matches as often as W itself). A few hundred microseconds
 * per sampled chunk (docs/ENGINE.md, "Records of W bytes").
 */

import { RECORDS_MAX, recordWidthAllowed } from "../codecs/hier/layouts.ts";

/** Bytes in each of the two windows the distances are counted on. */
const WINDOW = 2 << 10;
/**
 * A distance is a record size when its matches over the background rate (the median over
 * all distances) are at least this share of the best distance's: the smallest such d is
 * W. Multiples of W match at least as often as W (bytes two records apart are alike too,
 * and where records pair up, as points of two coordinates do, more so), so the smallest
 * strong distance is the record, the larger ones its multiples.
 */
const STRONG = 0.5;
/**
 * How much more often bytes W apart must match than bytes at the best distance the
 * byte groupings see (1, 2, 4 or 8 bytes, whose periods auto codes already), and by how
 * much at least (matches per byte): weaker structure is left to those candidates.
 */
const OVER_GROUPING = 1.5;
const OVER_GROUPING_ABS = 0.02;

const matches = new Int32Array(RECORDS_MAX + 1);
const sorted = new Int32Array(RECORDS_MAX);
/**
 * A window and three copies of it shifted by 1, 2 and 3 bytes, as 32-bit words: the word
 * of bytes i-d..i-d+3 is shifted[d mod 4][i/4 - floor(d/4)] (i a multiple of 4), so four
 * byte pairs are compared per word.
 */
const SHIFTED_BYTES = WINDOW + RECORDS_MAX + 8;
const shiftedBytes = Array.from({ length: 4 }, () => new Uint8Array(SHIFTED_BYTES));
const shifted = shiftedBytes.map((b) => new Uint32Array(b.buffer));

/** Adds to `matches` how often bytes d apart are equal, for d = 1..RECORDS_MAX, over raw[from..from+size). */
function countMatches(raw: Uint8Array, from: number, size: number): number {
  // Byte j of copy r is raw[from - RECORDS_MAX + j - r]: word k of copy 0 starts at byte
  // 4k of the window (counted from RECORDS_MAX bytes before `from`).
  const lead = RECORDS_MAX;
  const length = size + lead;
  for (let r = 0; r < 4; r++) {
    const b = shiftedBytes[r];
    b.fill(0);
    b.set(raw.subarray(from - lead, from - lead + length), r);
  }
  const words = length >>> 2;
  const first = lead >>> 2;
  const a = shifted[0];
  for (let d = 1; d <= RECORDS_MAX; d++) {
    const s = shifted[d & 3];
    const back = d >>> 2;
    let nonzero = 0;
    for (let k = first; k < words; k++) {
      const x = a[k] ^ s[k - back];
      // One bit per non-zero byte of x, summed into the top byte.
      nonzero += Math.imul(((((x & 0x7f7f7f7f) + 0x7f7f7f7f) | x) & 0x80808080) >>> 7, 0x01010101) >>> 24;
    }
    matches[d] += 4 * (words - first) - nonzero;
  }
  return 4 * (words - first);
}

/**
 * The record width W of a chunk (3..32, not 4 or 8) when its bytes W apart match clearly
 * more often than at any distance the byte groupings cover; undefined otherwise, or for a
 * chunk too small to say. Depends on the bytes alone.
 */
export function recordWidth(raw: Uint8Array): number | undefined {
  const windows = raw.length >= 4 * WINDOW ? [raw.length >> 2, (raw.length * 3) >> 2] : [RECORDS_MAX];
  const size = Math.min(WINDOW, raw.length - windows[0]) & ~3;
  if (size < 16 * RECORDS_MAX) return undefined;
  matches.fill(0);
  let pairs = 0;
  for (const start of windows) pairs += countMatches(raw, start, size);
  sorted.set(matches.subarray(1));
  sorted.sort();
  const background = sorted[RECORDS_MAX >> 1];
  let best = 0;
  for (let d = 1; d <= RECORDS_MAX; d++) best = Math.max(best, matches[d]);
  let width = 0;
  for (let d = 1; d <= RECORDS_MAX; d++) {
    if (matches[d] - background >= (best - background) * STRONG) {
      width = d;
      break;
    }
  }
  if (!recordWidthAllowed(width)) return undefined;
  const grouping = Math.max(matches[1], matches[2], matches[4], matches[8]);
  if (matches[width] < grouping * OVER_GROUPING || matches[width] - grouping < pairs * OVER_GROUPING_ABS)
    return undefined;
  return width;
}
