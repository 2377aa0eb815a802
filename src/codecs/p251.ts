/**
 * P251, the pattern codec: a chunk that starts with a block of `period` bytes repeated
 * (periods 1 to 64 KiB; runs of one value such as zero padding are period 1), followed by
 * a tail that does not continue it. The payload holds the pattern once and the tail, each
 * zstd-compressed when that makes it smaller; the fixed fields (flags, period, periodic
 * length, pattern part size) are the record's 17 bytes of params, so they are covered by
 * the record CRC and a non-periodic, stored chunk needs no copy. The name is historical:
 * 251 is one period.
 *
 * Everything here works at memory speed: periods are found with Buffer.indexOf and checked
 * with native compares (a periodic prefix of period p is exactly the range where
 * data.subarray(p) equals data.subarray(0, n - p)), and output is written by copying the
 * pattern once and then doubling it with copyWithin. See docs/FORMAT.md §6.1 for the layout.
 */
import { constants, zstdCompressSync } from "node:zlib";
import { asBuffer, readU64, writeU64 } from "../common/bytes.ts";
import { MmhError } from "../common/errors.ts";
import type { Codec } from "./types.ts";
import { zstdCodec } from "./zstd.ts";

/** The largest period P251 stores (and findPeriod looks for by default). */
export const P251_MAX_PERIOD = 65536;
/** A periodic prefix shorter than this is not reported: not worth a pattern. */
export const P251_MIN_PERIODIC = 64;
/** Bytes of the chunk record's params: P251's fixed fields (docs/FORMAT.md §6.1). */
export const P251_PARAMS_SIZE = 17;

const FLAG_PATTERN_ZSTD = 0x01;
const FLAG_TAIL_ZSTD = 0x02;
const ZSTD_LEVEL = 3;

/** Candidate periods are occurrences of the first KEY_LENGTH bytes. */
const KEY_LENGTH = 32;
/** How far back from the end of the matched prefix the key looks for a change of value. */
const CHANGE_LOOKBACK = 256;
/** At most this many candidate periods are verified before giving up. */
const MAX_CANDIDATES = 64;
/** Blocks of the galloping compare: start small (cheap early mismatch), grow to this. */
const FIRST_STEP = 256;
const MAX_STEP = 4 << 20;
/** Below this many bytes a mismatch is located by a byte loop. */
const LINEAR_SPAN = 64;
/** periodicFill doubles its output up to this size, then copies that block repeatedly. */
const FILL_BLOCK = 256 << 10;

const EMPTY = new Uint8Array(0);

export interface PeriodInfo {
  /** The period p: data[i] === data[i - p] for p <= i < periodicLength. */
  period: number;
  /** Length of the periodic prefix (at least 2 × period and at least 64); the rest is the tail. */
  periodicLength: number;
}

/** Index of the first byte where a and b differ, or the shorter length when one is a prefix of the other. */
export function mismatch(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  let pos = 0;
  let step = FIRST_STEP;
  while (pos < n) {
    const end = Math.min(n, pos + step);
    if (Buffer.compare(a.subarray(pos, end), b.subarray(pos, end)) !== 0)
      return firstDifference(a, b, pos, end);
    pos = end;
    if (step < MAX_STEP) step *= 2;
  }
  return n;
}

/** The first differing index in [lo, hi), given that the two ranges differ: binary search, then bytes. */
function firstDifference(a: Uint8Array, b: Uint8Array, lo: number, hi: number): number {
  while (hi - lo > LINEAR_SPAN) {
    const mid = lo + ((hi - lo) >>> 1);
    if (Buffer.compare(a.subarray(lo, mid), b.subarray(lo, mid)) !== 0) hi = mid;
    else lo = mid;
  }
  for (; lo < hi; lo++) if (a[lo] !== b[lo]) return lo;
  return hi;
}

/**
 * Where, in the prefix [0, c), the 32-byte key used to find candidates starts: just after
 * the last change of value within the 256 bytes before c (so that a run of one value,
 * which occurs everywhere in a run, does not make every position a candidate), else c − 32.
 */
function keyStart(buf: Buffer, c: number): number {
  const low = Math.max(KEY_LENGTH - 1, c - CHANGE_LOOKBACK);
  for (let b = c - 1; b >= low; b--) if (buf[b] !== buf[b - 1]) return b + 1 - KEY_LENGTH;
  return c - KEY_LENGTH;
}

/**
 * Find the period of data's periodic prefix: the p (1 ≤ p ≤ maxPeriod) whose prefix
 * [0, periodicLength) satisfies data[i] === data[i - p] for p ≤ i < periodicLength,
 * chosen to maximise the bytes the pattern stands for (periodicLength − p), the smallest
 * such p on a tie. Since every prefix trivially "repeats" with a period as long as itself,
 * a result needs periodicLength ≥ 2 × period and ≥ 64 bytes; otherwise null.
 *
 * A candidate p ≥ pos can only qualify if data[p, p + c) equals data[0, c) for
 * c = max(pos, 32), so candidates are found with Buffer.indexOf of a 32-byte key taken
 * from [0, c), searching no further than maxPeriod + c: non-periodic data is rejected
 * after one native scan of about 64 KiB. Each candidate is verified by one native compare
 * of data.subarray(p) with data.subarray(0, n − p), in growing blocks so that a false
 * candidate costs little. Once p is verified with periodicLength L, the candidates r with
 * p < r ≤ L − p are skipped: each has a periodic length ≤ L (were it longer, data[L] =
 * data[L − r] = data[L − r − p] = data[L − p], using period r at L and at L − p and period
 * p at L − r, contradicting the mismatch at L), so it stands for fewer bytes. The search is
 * therefore exact, except that it gives up after verifying 64 candidates.
 */
export function findPeriod(data: Uint8Array, maxPeriod = P251_MAX_PERIOD): PeriodInfo | null {
  if (!Number.isSafeInteger(maxPeriod) || maxPeriod < 1) {
    throw new MmhError("E_INTERNAL", `findPeriod: maxPeriod ${maxPeriod} is not a positive integer`);
  }
  const n = data.length;
  if (n < P251_MIN_PERIODIC) return null;
  const buf = asBuffer(data);
  let bestPeriod = 0;
  let bestScore = 0; // periodicLength - period of the best candidate
  let pos = 1; // every candidate below pos is tried or cannot do better
  for (let tries = 0; tries < MAX_CANDIDATES; tries++) {
    // A qualifying candidate q ≥ pos has q ≤ maxPeriod, 2q ≤ n and n − q > bestScore.
    if (pos > maxPeriod || 2 * pos > n || n - pos <= bestScore) break;
    const c = Math.max(pos, KEY_LENGTH);
    const a = keyStart(buf, c);
    const window = buf.subarray(0, Math.min(n, maxPeriod + a + KEY_LENGTH));
    const found = window.indexOf(buf.subarray(a, a + KEY_LENGTH), pos + a);
    if (found < 0) break;
    const q = found - a;
    if (2 * q > n || n - q <= bestScore) break;
    const length = q + mismatch(buf.subarray(q), buf.subarray(0, n - q));
    if (length - q >= q && length >= P251_MIN_PERIODIC && length - q > bestScore) {
      bestPeriod = q;
      bestScore = length - q;
    }
    if (length === n) break;
    pos = length - q >= q ? length - q + 1 : q + 1;
  }
  return bestPeriod === 0 ? null : { period: bestPeriod, periodicLength: bestPeriod + bestScore };
}

function checkPattern(pattern: Uint8Array, phase: number, what: string): number {
  if (pattern.length === 0) throw new MmhError("E_INTERNAL", `${what}: the pattern is empty`);
  if (!Number.isSafeInteger(phase) || phase < 0) {
    throw new MmhError("E_INTERNAL", `${what}: phase ${phase} is not a non-negative integer`);
  }
  return phase % pattern.length;
}

/**
 * Write out[i] = pattern[(phase + i) % pattern.length] for every i, at memory speed: one
 * rotation of the pattern, then doubling with copyWithin up to 256 KiB, then that block
 * copied repeatedly (the source stays in cache). phase may be any non-negative integer
 * (e.g. an absolute offset into a long run). out must not overlap pattern.
 */
export function periodicFill(pattern: Uint8Array, phase: number, out: Uint8Array): void {
  const n = out.length;
  if (n === 0) return;
  phase = checkPattern(pattern, phase, "periodicFill");
  const p = pattern.length;
  if (p === 1) {
    out.fill(pattern[0]);
    return;
  }
  const first = Math.min(n, p - phase);
  out.set(pattern.subarray(phase, phase + first), 0);
  if (first === n) return;
  const second = Math.min(n - first, phase);
  out.set(pattern.subarray(0, second), first);
  let filled = first + second; // min(n, p): from here on a multiple of p until the end
  while (filled < n && filled < FILL_BLOCK) {
    const count = Math.min(filled, n - filled);
    out.copyWithin(filled, 0, count);
    filled += count;
  }
  const block = filled;
  while (filled < n) {
    const count = Math.min(block, n - filled);
    out.copyWithin(filled, 0, count);
    filled += count;
  }
}

/**
 * How many leading bytes of data continue the periodic sequence pattern[(phase + i) % p]:
 * data.length when all do. The first p bytes are compared with the pattern's rotation;
 * after that the sequence is periodic exactly where data.subarray(p) equals
 * data.subarray(0, n − p), one native compare (in blocks) at memory speed.
 */
export function continuesPeriod(pattern: Uint8Array, phase: number, data: Uint8Array): number {
  const n = data.length;
  if (n === 0) return 0;
  phase = checkPattern(pattern, phase, "continuesPeriod");
  const p = pattern.length;
  const first = Math.min(n, p - phase);
  const a = mismatch(data.subarray(0, first), pattern.subarray(phase, phase + first));
  if (a < first || first === n) return a;
  const second = Math.min(n - first, phase);
  const b = mismatch(data.subarray(first, first + second), pattern.subarray(0, second));
  if (b < second || first + second === n) return first + b;
  return p + mismatch(data.subarray(p), data.subarray(0, n - p));
}

/**
 * One zstd frame of `part`, with the parameters of the ZSTD codec (content size, no
 * checksum) but an output buffer sized to the part: zstdCodec.encode's 1 MiB buffer costs
 * ~100 µs per call, too much for a pattern of a few hundred bytes in every chunk.
 */
function zstdFrame(part: Uint8Array): Uint8Array {
  return zstdCompressSync(part, {
    chunkSize: Math.min(1 << 20, Math.max(64, part.length + (part.length >> 7) + 64)),
    pledgedSrcSize: part.length,
    params: {
      [constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL,
      [constants.ZSTD_c_checksumFlag]: 0,
      [constants.ZSTD_c_contentSizeFlag]: 1,
    },
  });
}

/** A part as stored: zstd when that is smaller, else the bytes themselves. */
function packPart(part: Uint8Array): { zstd: boolean; bytes: Uint8Array } {
  if (part.length === 0) return { zstd: false, bytes: EMPTY };
  const compressed = zstdFrame(part);
  return compressed.length < part.length ? { zstd: true, bytes: compressed } : { zstd: false, bytes: part };
}

function corrupt(message: string, cause?: unknown): MmhError {
  return new MmhError("E_CORRUPT", `P251 payload: ${message}`, cause === undefined ? undefined : { cause });
}

/** Check a part's stored form against the size it must decode to, before decoding anything. */
function checkPart(part: Uint8Array, zstd: boolean, size: number, what: string): void {
  if (zstd ? size === 0 : part.length !== size) {
    throw corrupt(
      zstd
        ? `${what} is empty but marked as zstd`
        : `${what} stores ${part.length} bytes but must hold ${size}`,
    );
  }
}

/** Decode one checked part to exactly `size` bytes (zstd stops at size: no larger allocation). */
function unpackPart(part: Uint8Array, zstd: boolean, size: number, what: string): Uint8Array {
  if (!zstd) return part;
  try {
    return zstdCodec.decode(part, EMPTY, size);
  } catch (error) {
    throw corrupt(`${what}: ${(error as Error).message}`, error);
  }
}

/** A payload of the two parts, without a copy when one of them is empty. */
function joinParts(pattern: Uint8Array, tail: Uint8Array): Uint8Array {
  if (pattern.length === 0) return tail;
  if (tail.length === 0) return pattern;
  const payload = Buffer.allocUnsafe(pattern.length + tail.length);
  payload.set(pattern, 0);
  payload.set(tail, pattern.length);
  return payload;
}

interface P251Fields {
  period: number;
  periodicLength: number;
  /** The decoded pattern (at most 64 KiB). */
  pattern: Uint8Array;
  /** The decoded tail, or an empty array when `withTail` was false. */
  tail: Uint8Array;
}

/** Check every field against the record and decode the pattern (and the tail when asked). */
function parseP251(
  payload: Uint8Array,
  params: Uint8Array,
  rawLength: number,
  withTail: boolean,
): P251Fields {
  if (params.length !== P251_PARAMS_SIZE) {
    throw corrupt(`parameters are ${params.length} bytes, not ${P251_PARAMS_SIZE}`);
  }
  if (!Number.isSafeInteger(rawLength) || rawLength < 0) throw corrupt(`raw length ${rawLength} is invalid`);
  const fields = asBuffer(params);
  const flags = fields[0];
  if (flags & ~(FLAG_PATTERN_ZSTD | FLAG_TAIL_ZSTD)) throw corrupt(`reserved flag bits set (${flags})`);
  const period = fields.readUInt32LE(1);
  if (period > P251_MAX_PERIOD) throw corrupt(`period ${period} is over ${P251_MAX_PERIOD}`);
  let periodicLength: number;
  try {
    periodicLength = readU64(fields, 5, "periodic length");
  } catch (error) {
    throw corrupt((error as Error).message, error);
  }
  if (periodicLength > rawLength) {
    throw corrupt(`periodic length ${periodicLength} is over the raw length ${rawLength}`);
  }
  if (period === 0 ? periodicLength !== 0 : periodicLength < period) {
    throw corrupt(`periodic length ${periodicLength} does not fit period ${period}`);
  }
  const patternStored = fields.readUInt32LE(13);
  if (patternStored > payload.length) {
    throw corrupt(`pattern part of ${patternStored} bytes runs past the ${payload.length}-byte payload`);
  }
  const patternPart = payload.subarray(0, patternStored);
  const tailPart = payload.subarray(patternStored);
  const patternZstd = (flags & FLAG_PATTERN_ZSTD) !== 0;
  const tailZstd = (flags & FLAG_TAIL_ZSTD) !== 0;
  const tailLength = rawLength - periodicLength;
  checkPart(patternPart, patternZstd, period, "pattern");
  checkPart(tailPart, tailZstd, tailLength, "tail");
  const pattern = unpackPart(patternPart, patternZstd, period, "pattern");
  const tail = withTail ? unpackPart(tailPart, tailZstd, tailLength, "tail") : EMPTY;
  return { period, periodicLength, pattern, tail };
}

/**
 * A record standing for `length` bytes of `pattern` repeated from its first byte, with no
 * tail: how one P251 record covers a run of any length (docs/FORMAT.md §6.1, runs).
 */
export function encodeRun(pattern: Uint8Array, length: number): { payload: Uint8Array; params: Uint8Array } {
  const packed = packPart(pattern);
  const params = Buffer.alloc(P251_PARAMS_SIZE);
  params[0] = packed.zstd ? FLAG_PATTERN_ZSTD : 0;
  params.writeUInt32LE(pattern.length, 1);
  writeU64(params, length, 5);
  params.writeUInt32LE(packed.bytes.length, 13);
  return { payload: packed.bytes, params };
}

/**
 * The pattern of a P251 record with no tail, checked like decode checks it, without
 * producing the output: for records larger than any buffer, which are written out in
 * pieces with periodicFill. Undefined when the record has a tail or nothing periodic.
 */
export function runPattern(
  payload: Uint8Array,
  params: Uint8Array,
  rawLength: number,
): Uint8Array | undefined {
  const fields = parseP251(payload, params, rawLength, false);
  if (fields.period === 0 || fields.periodicLength !== rawLength) return undefined;
  return fields.pattern;
}

export const p251Codec: Codec = {
  id: "P251",
  name: "p251",
  description: "pattern codec: a block of 1 B to 64 KiB repeated, then a tail (zstd when smaller)",
  encode(raw) {
    const found = findPeriod(raw);
    const period = found?.period ?? 0;
    const periodicLength = found?.periodicLength ?? 0;
    const pattern = packPart(raw.subarray(0, period));
    const tail = packPart(raw.subarray(periodicLength));
    const params = Buffer.alloc(P251_PARAMS_SIZE);
    params[0] = (pattern.zstd ? FLAG_PATTERN_ZSTD : 0) | (tail.zstd ? FLAG_TAIL_ZSTD : 0);
    params.writeUInt32LE(period, 1);
    writeU64(params, periodicLength, 5);
    params.writeUInt32LE(pattern.bytes.length, 13);
    return { payload: joinParts(pattern.bytes, tail.bytes), params };
  },
  decode(payload, params, rawLength) {
    const { periodicLength, pattern, tail } = parseP251(payload, params, rawLength, true);
    // Nothing periodic: the tail is the whole output (a stored tail is returned as a view, as NONE does).
    if (periodicLength === 0) return tail;
    const out = Buffer.allocUnsafe(rawLength);
    periodicFill(pattern, 0, out.subarray(0, periodicLength));
    out.set(tail, periodicLength);
    return out;
  },
};
