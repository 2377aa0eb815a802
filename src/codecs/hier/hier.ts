/**
 * HIER, the hierarchical tensor codec. An element is split into fields, each field is
 * one byte stream, and each stream is coded with the best of: a constant, stored bytes,
 * canonical Huffman with a stored codebook, or zstd. Without a dtype, the element width,
 * field layout and alignment are detected on a sample. docs/FORMAT.md §6.2 is the spec.
 */

import { endianness } from "node:os";
import { crc32 } from "node:zlib";
import { dispose } from "../../common/bytes.ts";
import { dtypeByName } from "../../common/dtype.ts";
import { check, MmhError } from "../../common/errors.ts";
import { repeatShare } from "../../common/repeats.ts";
import type { Codec, CodecOptions, EncodedPayload } from "../types.ts";
import { zstdDecodeInto } from "../zstd.ts";
import { kernelDecode, kernelDecodeLent, kernelSplit, type Part } from "./fused.ts";
import {
  BLOCK_HUFFMAN,
  histogram,
  huffmanDecode,
  huffmanDecodeBf16,
  huffmanEncode,
  huffmanEncodeInto,
  huffmanSizeFromHistogram,
} from "./huffman.ts";
import { BLOCK_CONTEXT, huffmanDecodeContext, huffmanEncodeContext } from "./huffman-context.ts";
import { loadedKernels } from "./kernels.ts";
import {
  LAYOUTS,
  type Layout,
  layoutById,
  layoutByKey,
  layoutForDType,
  RECORDS,
  recordsLayout,
  recordWidthAllowed,
  streamLength,
} from "./layouts.ts";
import { zstdFrame, zstdFrameLength } from "./zstdframe.ts";

export const HIER_VERSION = 1;
const METHOD_CONSTANT = 0;
const METHOD_STORED = 1;
const METHOD_HUFFMAN = 2;
const METHOD_ZSTD = 3;
const METHOD_CONTEXT = 4;
/** From this zstd level up (the "ratio" goal uses 19), Huffman streams also try context coding. */
const CONTEXT_LEVEL = 10;
const FIXED = 8; // version, layout, head, streams, header crc32
const DESCRIPTOR = 5; // method u8, coded length u32

const littleEndian = endianness() === "LE";

/**
 * Scratch memory reused from call to call (the codec is synchronous, so one call never
 * overlaps another in a thread): split streams, aligned input copies and decoded streams
 * live here, never in the returned payload or output.
 */
let scratch = new Uint8Array(1 << 20);

function scratchOf(length: number, at = 0): Uint8Array {
  if (scratch.length < at + length) {
    const grown = new Uint8Array(Math.max(at + length, scratch.length * 2));
    grown.set(scratch.subarray(0, at));
    scratch = grown;
  }
  return scratch.subarray(at, at + length);
}

/**
 * `data` itself when its byte `head` sits at a multiple of 8 in its buffer, else a copy in
 * scratch (from `at`) that is: typed-array views of any width then fit.
 */
function aligned(data: Uint8Array, head: number, at: number): Uint8Array {
  if ((data.byteOffset + head) % 8 === 0) return data;
  const pad = (8 - ((scratch.byteOffset + at + head) % 8)) % 8;
  const copy = scratchOf(data.length + pad, at).subarray(pad);
  copy.set(data);
  return copy;
}

/** Views of `buffer` for the streams of n elements of `layout`, one after another. */
function streamViews(layout: Layout, n: number, buffer: Uint8Array): Uint8Array[] {
  const views: Uint8Array[] = [];
  let at = 0;
  for (let k = 0; k < layout.streams; k++) {
    const length = streamLength(layout, k, n);
    views.push(buffer.subarray(at, at + length));
    at += length;
  }
  return views;
}

/** Bytes all the streams of n elements of `layout` take. */
function streamsBytes(layout: Layout, n: number): number {
  let total = 0;
  for (let k = 0; k < layout.streams; k++) total += streamLength(layout, k, n);
  return total;
}

/** A fresh, unzeroed output of `length` bytes whose byte `head` is aligned to 8. */
function alignedOutput(length: number, head: number): Uint8Array {
  const pad = (8 - (head % 8)) % 8;
  const buffer = Buffer.allocUnsafeSlow(length + pad);
  return buffer.subarray(pad, pad + length);
}

function entropyBits(hist: Uint32Array, n: number): number {
  let bits = 0;
  for (let s = 0; s < 256; s++) {
    const c = hist[s];
    if (c > 0) bits -= c * Math.log2(c / n);
  }
  return bits;
}

/**
 * c * log2(c) for the counts detectionBits has met, made as they are first needed: up to
 * the largest count of a detection sample (DETECT_SAMPLE), but no further than the
 * samples seen so far reach, so that a small file does not pay for the whole table.
 */
let xLogX = new Float64Array(0);

/**
 * entropyBits as n * log2(n) - sum(c * log2(c)), the terms read from a table: the same
 * figure to rounding, without a division and a logarithm per symbol. detectLayout measures
 * dozens of streams per chunk, and on the small chunks of model files (the bytes between
 * tensors) that arithmetic was most of its time.
 */
function detectionBits(hist: Uint32Array, n: number): number {
  if (n === 0) return 0;
  if (xLogX.length <= n && xLogX.length <= DETECT_SAMPLE) {
    // Every count is at most n. Grown by doubling, to the table's full size at most.
    const size = Math.min(DETECT_SAMPLE + 1, Math.max(n + 1, 2 * xLogX.length, 256));
    const grown = new Float64Array(size);
    grown.set(xLogX);
    for (let c = Math.max(1, xLogX.length); c < size; c++) grown[c] = c * Math.log2(c);
    xLogX = grown;
  }
  const table = xLogX;
  let sum = 0;
  for (let s = 0; s < 256; s++) {
    const c = hist[s];
    if (c > 0) sum += c < table.length ? table[c] : c * Math.log2(c);
  }
  return (n < table.length ? table[n] : n * Math.log2(n)) - sum;
}

export interface Detection {
  layout: Layout;
  head: number;
  /** Estimated coded bytes per raw byte on the sample (order-0 entropy of every stream). */
  estimate: number;
}

const DETECT_SAMPLE = 16 << 10;

// detectLayout's working memory, reused from call to call: it runs on every chunk of
// unknown dtype, and on small chunks allocating these cost more than the counting.
const detectPhases = new Uint32Array(8 * 256);
const detectByPhase = Array.from({ length: 8 }, (_, k) => detectPhases.subarray(k * 256, (k + 1) * 256));
const detectMerged = new Uint32Array(256);
const detectCounts = new Uint32Array(256);
let detectStreams = new Uint8Array(0);

/**
 * Try every layout at every alignment on a sample and keep the one whose streams have
 * the lowest total order-0 entropy: the dtype and offset that make the data most
 * predictable. Ties go to the simpler (earlier) layout.
 */
export function detectLayout(raw: Uint8Array, sampleSize = DETECT_SAMPLE): Detection {
  const start = raw.length > sampleSize ? ((raw.length - sampleSize) >> 1) & ~7 : 0;
  const sample = raw.subarray(start, start + Math.min(raw.length, sampleSize));
  const len = sample.length;
  let best: Detection = { layout: LAYOUTS[0], head: 0, estimate: 1 };
  let bestBits = Number.POSITIVE_INFINITY;
  const consider = (layout: Layout, head: number, bits: number, bytes: number) => {
    const perByte = bits / (bytes * 8);
    if (bytes > 0 && perByte < bestBits - 1e-3) {
      bestBits = perByte;
      // The sample starts at a multiple of 8, so its alignment is the chunk's.
      best = { layout, head, estimate: perByte };
    }
  };
  // Byte planes of every width come from 8 histograms of bytes by offset mod 8: plane p
  // of width w holds the bytes at offsets = p (mod w).
  const phases = detectPhases.fill(0);
  for (let i = 0; i < len; i++) phases[((i & 7) << 8) | sample[i]]++;
  const byPhase = detectByPhase;
  const merged = detectMerged;
  for (const layout of LAYOUTS) {
    if (layout.name !== "bytes" && !layout.name.startsWith("planes")) continue;
    const w = layout.width;
    // Head 0 only: w divides 8, so the planes of any head are those of head 0 in another
    // order (plane p of head a is plane (a + p) mod w of head 0), with the same bits, and
    // a later head never beats an earlier one.
    let bits = 0;
    for (let p = 0; p < w; p++) {
      merged.fill(0);
      let count = 0;
      for (let k = p; k < 8; k += w) {
        const h = byPhase[k];
        for (let v = 0; v < 256; v++) merged[v] += h[v];
      }
      for (let v = 0; v < 256; v++) count += merged[v];
      bits += Math.min(count * 8, detectionBits(merged, count) + 256);
    }
    consider(layout, 0, bits, len);
  }
  // Float layouts split bits across bytes, so their streams are built and measured.
  // Quantised-block layouts are used only when the dtype says so.
  for (const layout of LAYOUTS) {
    if (layout.name === "bytes" || layout.name.startsWith("planes") || layout.declaredOnly) continue;
    const w = layout.width;
    for (let head = 0; head < w; head++) {
      const n = Math.floor((len - head) / w);
      if (n < 64) continue;
      const streams = detectSplit(sample, layout, head, n);
      let bits = (len - n * w) * 8;
      for (const stream of streams)
        bits += Math.min(n * 8, detectionBits(histogram(stream, detectCounts), n) + 256);
      consider(layout, head, bits, len);
    }
  }
  return best;
}

/**
 * detectLayout's streams of one float layout at one head: split by the kernels into their
 * memory where they are loaded (counted there too, by histogram), else by the TypeScript
 * twin into memory reused from call to call. The same bytes either way.
 */
function detectSplit(sample: Uint8Array, layout: Layout, head: number, n: number): Uint8Array[] {
  // The kernels' arena is taken anew: a chunk split before must be split again to be written.
  splits++;
  const fast = kernelSplit(layout, sample, head, n, false);
  if (fast) return fast.streams;
  const src = aligned(sample, head, 0).subarray(head, head + n * layout.width);
  // The float layouts' splits write every byte of their streams: memory reused.
  const bytes = streamsBytes(layout, n);
  if (detectStreams.length < bytes) detectStreams = new Uint8Array(Math.max(bytes, DETECT_SAMPLE));
  const streams = streamViews(layout, n, detectStreams.subarray(0, bytes));
  layout.split(src, n, streams);
  return streams;
}

/**
 * Estimated coded bits per raw bit of one layout at one head on a sample (order-0
 * entropy of its streams), on the same scale as Detection.estimate.
 */
export function estimateLayout(sample: Uint8Array, layout: Layout, head: number): number {
  const w = layout.width;
  const n = Math.floor((sample.length - head) / w);
  if (n < 16) return 1;
  const src = aligned(sample, head, 0).subarray(head, head + n * w);
  const streams = streamViews(layout, n, new Uint8Array(streamsBytes(layout, n)));
  layout.split(src, n, streams);
  let bits = (sample.length - n * w) * 8;
  for (const stream of streams)
    bits += Math.min(stream.length * 8, entropyBits(histogram(stream), stream.length) + 256);
  return bits / (sample.length * 8);
}

interface CodedStream {
  method: number;
  /** The coded length: bytes.length once coded. */
  size: number;
  /**
   * The coded bytes; undefined for a Huffman stream until it is the one kept: its exact
   * size comes from the histogram (huffmanSizeFromHistogram), so the zstd trials compare
   * against it without coding it, and a stream zstd wins is never Huffman-coded.
   */
  bytes: Uint8Array | undefined;
}

const coded = (method: number, bytes: Uint8Array): CodedStream => ({ method, size: bytes.length, bytes });

const ZSTD_PROBE = 16 << 10;

/** node:zlib's default output piece (zlib's Z_DEFAULT_CHUNK). */
const ZLIB_PIECE = 16 << 10;
/** The smallest window zstd takes at a level of 1 or more for a stream of over 256 KiB. */
const ZSTD_SMALLEST_WINDOW = 512 << 10;

/** ZSTD_compressBound: the largest frame zstd makes of n bytes. */
const zstdBound = (n: number) => n + (n >>> 8) + (n < 128 << 10 ? ((128 << 10) - n) >>> 11 : 0);

/**
 * zstd's frame of `bytes` at `level`. node:zlib collects a frame in pieces of 16 KiB and
 * joins them: a 256 KiB stream left 16 pieces of garbage and a copy. A stream within
 * zstd's smallest window gets one piece one byte short of zstd's bound (16 KiB at least,
 * as before): zstd then takes the path it takes with 16 KiB pieces (it compresses
 * straight into the caller's memory only when that holds the bound, and there cuts blocks
 * elsewhere on streams of more than two blocks), and the frame is the same, byte for byte.
 * On streams longer than the window the piece's size changed frames: those keep 16 KiB.
 * Levels up to 3 go through a compressor kept from call to call (zstdframe.ts), which
 * makes the same frames without a stream and a zstd context of its own per call.
 */
export function zstd(bytes: Uint8Array, level: number): Buffer {
  return zstdFrame(bytes, level, zstdPiece(bytes.length));
}

/** The output piece zstd() collects a frame of n bytes in. */
const zstdPiece = (n: number) =>
  n <= ZSTD_SMALLEST_WINDOW ? Math.max(ZLIB_PIECE, zstdBound(n) - 1) : ZLIB_PIECE;

/** Share of positions whose next 8 bytes occurred before, below which zstd is not even probed. */
const REPEATS_WORTH_A_PROBE = 0.02;
const REPEAT_SAMPLE = 2048;
const REPEAT_HASH_BITS = 11;
/** Per hash slot, 1 + the position last hashed there, or 0. */
const repeatTable = new Int32Array(1 << REPEAT_HASH_BITS);

/**
 * Whether at least REPEATS_WORTH_A_PROBE of the positions in a 2 KiB sample start 8 bytes
 * that already occurred earlier in it. Order-0 statistics are Huffman's job; zstd only
 * gains on such long repeats (zero runs, duplicated rows, few distinct values), and 8-byte
 * repeats are rare by chance in any stream worth entropy coding. It stops as soon as the
 * share is reached: a few microseconds, against ~60 for a zstd probe. The comparison is
 * made without a branch (an empty slot compares position 0 and counts nothing): whether
 * a slot was taken is a coin toss once the table fills, and the mispredicted branch cost
 * a third of the time.
 */
export function repeatsWorthAProbe(stream: Uint8Array): boolean {
  const n = Math.min(stream.length, REPEAT_SAMPLE);
  if (n < 64) return true;
  const last = n - 8;
  const enough = Math.ceil((last + 1) * REPEATS_WORTH_A_PROBE);
  // A stream in the kernels' memory (HIER's split streams) is looked at there.
  const k = loadedKernels();
  if (k?.holds(stream)) return k.x.repeatsWorthAProbe(stream.byteOffset, n, enough, k.at.repeats) !== 0;
  const view = new DataView(stream.buffer, stream.byteOffset, n);
  repeatTable.fill(0);
  let hits = 0;
  for (let i = 0; i <= last; i++) {
    const a = view.getUint32(i, true);
    const b = view.getUint32(i + 4, true);
    const h = (Math.imul(a, 0x9e3779b1) ^ Math.imul(b ^ (a >>> 15), 0x85ebca77)) >>> (32 - REPEAT_HASH_BITS);
    const taken = repeatTable[h];
    const j = taken > 0 ? taken - 1 : 0;
    const differ = (view.getUint32(j, true) ^ a) | (view.getUint32(j + 4, true) ^ b);
    // 1 when the 8 bytes at j are these (differ is 0) and the slot was taken.
    hits += (((differ | -differ) >>> 31) ^ 1) & (-taken >>> 31);
    if (hits >= enough) return true;
    repeatTable[h] = i + 1;
  }
  return false;
}

const NEIGHBOUR_WINDOWS = 32;
const NEIGHBOUR_WINDOW = 256;

/**
 * Whether neighbouring symbols are equal clearly more often than order-0 statistics
 * predict (sum of p(v)^2), counted in 32 windows of 256 bytes spread over the stream. Per-channel
 * scales (fused batch norm), dead channels and other local structure do this: order-0
 * Huffman cannot see it, zstd's matches and per-block tables can. A few microseconds.
 */
export function locallyStructured(stream: Uint8Array, hist: Uint32Array): boolean {
  return neighbourShare(stream, hist) > 0;
}

/**
 * locallyStructured's measure: equal neighbours counted over the count order-0 statistics
 * predict, where that count passes locallyStructured's bar, else 0 (also for a stream
 * under 256 bytes).
 */
export function neighbourShare(stream: Uint8Array, hist: Uint32Array): number {
  const n = stream.length;
  if (n < 256) return 0;
  let expected = 0;
  for (let v = 0; v < 256; v++) {
    const c = hist[v];
    if (c > 0) expected += (c / n) * (c / n);
  }
  const windows = n >= NEIGHBOUR_WINDOWS * NEIGHBOUR_WINDOW * 2 ? NEIGHBOUR_WINDOWS : 1;
  const length = windows === 1 ? n : NEIGHBOUR_WINDOW;
  const step = Math.floor(n / windows);
  const pairs = windows * (length - 1);
  // A stream in the kernels' memory (HIER's split streams) is looked at there.
  const k = loadedKernels();
  const equal = k?.holds(stream)
    ? k.x.equalNeighbours(stream.byteOffset, windows, length, step)
    : equalNeighbours(stream, windows, length, step);
  const mean = expected * pairs;
  return equal > mean * 1.2 + 4 * Math.sqrt(mean) + 8 ? equal / mean : 0;
}

/** neighbourShare's count: the positions of the windows whose byte equals the one before it in the window. */
export function equalNeighbours(stream: Uint8Array, windows: number, length: number, step: number): number {
  let equal = 0;
  for (let w = 0; w < windows; w++) {
    const start = w * step;
    // Without a branch: on exponent streams neighbours are equal a few times in ten, and
    // the mispredicted branches made this loop 2.5 times as slow.
    let previous = stream[start];
    for (let i = start + 1; i < start + length; i++) {
      const current = stream[i];
      equal += ((previous ^ current) - 1) >>> 31;
      previous = current;
    }
  }
  return equal;
}

const ZSTD_WINDOWS = 4;
const ZSTD_WINDOW = 16 << 10;
/** Streams shorter than this are tried with zstd whole: the windows would cover too much of them. */
const ZSTD_WINDOWS_FROM = 128 << 10;
/**
 * zstd's size (level 1) over Huffman's on the windows, below which zstd is tried on the
 * whole stream. On a window zstd lacks the history it has on the whole stream, so the
 * bound is above 1; it was set on the exponent streams of real weights (docs/ENGINE.md,
 * HIER's stream method).
 */
const ZSTD_WINDOW_SHARE = 1.08;

/**
 * zstd's size over Huffman's on a locally structured stream, by windows: zstd at level 1
 * and Huffman (each window with its own table, as zstd's blocks have) on ZSTD_WINDOWS
 * windows spread over the stream, each a sixteenth of it at most. 0 for a stream too
 * short for the windows (zstd is tried on it).
 */
function zstdWindows(stream: Uint8Array): number {
  const n = stream.length;
  if (n < ZSTD_WINDOWS_FROM) return 0;
  const size = Math.min(ZSTD_WINDOW, n >> 4);
  let zstdBytes = 0;
  let huffmanBytes = 0;
  for (let k = 0; k < ZSTD_WINDOWS; k++) {
    const at = Math.floor(((2 * k + 1) * n) / (2 * ZSTD_WINDOWS) - size / 2);
    const window = stream.subarray(at, at + size);
    zstdBytes += zstdLength(window, 1);
    huffmanBytes += Math.min(size, huffmanSizeFromHistogram(histogram(window)));
  }
  return zstdBytes / huffmanBytes;
}

/**
 * Bits per symbol of a structured stream's best coding (Huffman or stored) from which zstd
 * is tried on the whole stream without windows first: on the real-derived sets the windows
 * sent every stream this dense to the whole pass anyway, and decided only on sparser
 * exponent streams (docs/ENGINE.md, HIER's stream method, has the measurements).
 */
const DENSE_BITS = 5;

/**
 * zstd's size at level 1 over the stream's best size so far, under which the chunk's own
 * level is tried too (when it is above 1). See zstdWhole.
 */
const ZSTD_LEVEL_TRY = 0.95;

/**
 * The smaller of `best` and zstd on the whole stream. Below the ratio goal's levels, zstd
 * runs at level 1 first: on field streams (exponents, mantissa bytes) level 1 came out
 * smaller than level 3 on all but a few of the streams measured, and faster; level 3's
 * longer matches paid only where zstd won clearly (docs/ENGINE.md, HIER's stream method),
 * so the chunk's level is tried only where level 1 is under ZSTD_LEVEL_TRY of `best` and
 * a window of the stream does not say the level loses to level 1 there (levelPays).
 * Streams under ZSTD_WINDOWS_FROM keep the chunk's level alone: there level 3 was the
 * smaller by up to 1.5% on small ONNX tensors, and a whole chunk of text that HIER codes
 * as one stream must not come out smaller than the zstd record by level 1's luck alone,
 * which would keep auto from trying brotli on it (encodeChoices' ifBest).
 */
function zstdWhole(stream: Uint8Array, level: number, best: CodedStream): CodedStream {
  if (level <= 1 || level >= CONTEXT_LEVEL || stream.length < ZSTD_WINDOWS_FROM)
    return smallerOf(best, zstd(stream, level));
  const fast = zstd(stream, 1);
  const beaten = fast.length < best.size * ZSTD_LEVEL_TRY;
  const chosen = smallerOf(best, fast);
  return beaten && levelPays(stream, level) ? smallerOf(chosen, zstd(stream, level)) : chosen;
}

/**
 * `best` or zstd's frame `z`, whichever is smaller (`best` on a tie). The one left out, when
 * it is a zstd frame, is given back now: node:zlib's memory for it would otherwise wait
 * for the collector, and those frames (hundreds of KiB a chunk) set off full collections.
 */
function smallerOf(best: CodedStream, z: Buffer): CodedStream {
  if (z.length >= best.size) {
    dispose(z, true);
    return best;
  }
  if (best.method === METHOD_ZSTD && best.bytes !== undefined) dispose(best.bytes, true);
  return coded(METHOD_ZSTD, z);
}

/** The length of zstd's frame of `bytes` at `level` (its bytes are not kept). */
function zstdLength(bytes: Uint8Array, level: number): number {
  return zstdFrameLength(bytes, level, zstdPiece(bytes.length));
}

/**
 * zstd's size at the chunk's level over its size at level 1 on one window of the stream,
 * from which the level is not tried on the whole stream after level 1. On the exponent
 * streams of BF16 and F32 weights level 3's short matches cost more than they save, on
 * the window as on the whole stream; where level 3 won on a whole stream, its window was
 * within a fraction of a percent of level 1's (docs/ENGINE.md, HIER's stream method).
 */
const LEVEL_WINDOW_SHARE = 1.015;

/**
 * Whether the chunk's level may beat level 1 on the stream, from zstd at both levels on
 * the window of ZSTD_WINDOW bytes (a sixteenth of the stream at most) around the
 * stream's middle: about a tenth of the cost of the level's whole pass it can save.
 */
export function levelPays(stream: Uint8Array, level: number): boolean {
  const n = stream.length;
  const size = Math.min(ZSTD_WINDOW, n >> 4);
  const at = ((n - size) >> 1) & ~7;
  const window = stream.subarray(at, at + size);
  return zstdLength(window, level) < zstdLength(window, 1) * LEVEL_WINDOW_SHARE;
}

/** zstd's largest block: the literals of each block get a Huffman table of their own. */
const ZSTD_BLOCK = 128 << 10;
/** blockTableShare counts every this many bytes. */
const BLOCK_SAMPLE_STEP = 16;
/**
 * zstd's predicted size over Huffman's with one table, below which zstd is tried on the
 * whole stream: blockTableShare times zstd's cost over Huffman's at a table each
 * (zstdWindows' estimate where it ran, else 1). Set on real weights and their BF16/FP16
 * roundings (docs/ENGINE.md, HIER's stream method).
 */
const ZSTD_BLOCK_SHARE = 0.98;
const blockCounts = new Uint32Array(256);
const wholeCounts = new Uint32Array(256);

/**
 * Order-0 entropy with statistics per ZSTD_BLOCK block over that with one set for the
 * stream (what Huffman tables per block would save over one table), from histograms of
 * every BLOCK_SAMPLE_STEP-th byte; 1 for a stream of one block. zstd gives each block's
 * literals a table of their own, so it follows statistics that change along a stream
 * (tensors of other scales in one chunk) where HIER's one table cannot.
 */
export function blockTableShare(stream: Uint8Array): number {
  const n = stream.length;
  if (n <= ZSTD_BLOCK) return 1;
  wholeCounts.fill(0);
  let blocks = 0;
  let samples = 0;
  // A stream in the kernels' memory (HIER's split streams) is counted there.
  const k = loadedKernels();
  const inKernels = k?.holds(stream) === true;
  for (let at = 0; at < n; at += ZSTD_BLOCK) {
    const end = Math.min(n, at + ZSTD_BLOCK);
    if (k && inKernels) {
      const mem = k.u8();
      mem.fill(0, k.at.counts, k.at.counts + 1024);
      k.x.countStrided(stream.byteOffset + at, end - at, BLOCK_SAMPLE_STEP, k.at.counts);
      blockCounts.set(new Uint32Array(mem.buffer, k.at.counts, 256));
    } else {
      blockCounts.fill(0);
      for (let i = at; i < end; i += BLOCK_SAMPLE_STEP) blockCounts[stream[i]]++;
    }
    const count = Math.ceil((end - at) / BLOCK_SAMPLE_STEP);
    for (let s = 0; s < 256; s++) wholeCounts[s] += blockCounts[s];
    blocks += entropyBits(blockCounts, count);
    samples += count;
  }
  const whole = entropyBits(wholeCounts, samples);
  return whole > 0 ? blocks / whole : 1;
}

/**
 * repeatShare of a stored plane of a byte grouping under which zstd is not tried on it:
 * below the shares where zstd came out smaller on the low byte plane of FP16 weights, and
 * above those where it stored the plane as raw blocks (docs/ENGINE.md, HIER's stream
 * method, has the measurements).
 */
const STORED_REPEATS = 0.003;

/** Bits per symbol above which a stream is taken as random (stored) from a sample alone. */
const RANDOM_BITS = 7.95;
const RANDOM_SAMPLE = 16 << 10;

/**
 * Bits per symbol of an exponent stream's best coding, and neighbourShare, under either of
 * which the stream has no windows (and no whole pass from them): on the exponent streams
 * of BF16 and F32 weights of 128 KiB and more, zstd on the whole stream came out smaller
 * than Huffman only from 3.18 bits and from a share of 1.47 up (docs/ENGINE.md, HIER's
 * stream method, has the measurements).
 */
const SPARSE_EXPONENT_BITS = 3.1;
const WEAK_NEIGHBOURS = 1.4;
/**
 * neighbourShare from which an exponent stream has the whole pass without windows: zstd
 * level 1 came out smaller than Huffman on every such stream measured, also where the
 * windows turned it down (zero rows spread over a tensor share 2-3 at under 3 bits).
 */
const STRONG_NEIGHBOURS = 1.8;

/**
 * What a structured exponent stream (not dense) of `bits` per symbol and this
 * neighbourShare is tried with: zstd on the whole stream at once, the windows first
 * (zstdWindows), or neither (as a stream without local structure).
 */
export function exponentTrial(bits: number, share: number): "whole" | "windows" | "none" {
  if (share >= STRONG_NEIGHBOURS) return "whole";
  return bits >= SPARSE_EXPONENT_BITS && share >= WEAK_NEIGHBOURS ? "windows" : "none";
}

/**
 * `counts`, when given, is histogram(stream), counted while the stream was split off.
 * `alwaysZstd`: a plane of a forced layout; `floatPlanes`: of float weights. `exponents`:
 * the exponent stream of the BF16 or F32 layout (exponentTrial).
 */
function codeStream(
  stream: Uint8Array,
  level: number,
  tryZstd: boolean,
  counts?: Uint32Array,
  alwaysZstd = false,
  floatPlanes = false,
  exponents = false,
): StreamChoice {
  const n = stream.length;
  let best: CodedStream | undefined;
  let hist: Uint32Array | undefined;
  let structured = false;
  let share = 0;
  // Mantissa bytes are near random: a sample says so without counting the whole stream.
  if (counts === undefined && n >= 4 * RANDOM_SAMPLE) {
    const at = (n >> 1) & ~7;
    const sample = stream.subarray(at, at + RANDOM_SAMPLE);
    if (entropyBits(histogram(sample), sample.length) / sample.length > RANDOM_BITS) {
      best = coded(METHOD_STORED, stream);
    }
  }
  if (!best) {
    hist = counts ?? histogram(stream);
    let distinct = 0;
    for (let s = 0; s < 256 && distinct < 2; s++) if (hist[s] > 0) distinct++;
    if (distinct <= 1) return coded(METHOD_CONSTANT, stream.subarray(0, Math.min(1, n)));
    share = tryZstd && !alwaysZstd ? neighbourShare(stream, hist) : 0;
    structured = share > 0;
    const huffmanSize = huffmanSizeFromHistogram(hist);
    best =
      huffmanSize < n
        ? { method: METHOD_HUFFMAN, size: huffmanSize, bytes: undefined }
        : coded(METHOD_STORED, stream);
    // Conditioning each symbol on the previous one saves ~1% on real exponent streams at
    // about half the encode speed (bench/results/huffman.md): worth it only for ratio.
    if (best.method === METHOD_HUFFMAN && level >= CONTEXT_LEVEL) {
      const context = huffmanEncodeContext(stream);
      if (context[0] === BLOCK_CONTEXT && context.length < best.size) {
        best = coded(METHOD_CONTEXT, context);
      }
    }
  }
  // zstd wins where a stream has repeats that order-0 coding cannot see (quantised values,
  // repeated rows). A cheap probe on the start of the stream decides whether to try it.
  // Local structure: zstd on the whole stream when windows spread over it say zstd may win
  // (the stream's start need not show it); for the ratio goal's levels, always.
  // zstd's cost over Huffman's at a table each, where the windows measured it.
  // A dense structured stream (Huffman at DENSE_BITS per symbol or more) goes to the whole
  // pass without its windows, which sent every such stream there.
  const dense = structured && best.size * 8 >= DENSE_BITS * n;
  // An exponent stream's windows are skipped where they never led to a win on the corpus
  // measured: straight to the whole pass, or treated as without local structure.
  const trial =
    structured && exponents && !dense && level < CONTEXT_LEVEL
      ? exponentTrial((best.size * 8) / n, share)
      : "windows";
  const eager = dense || trial === "whole";
  const unmeasured = trial === "none" && n >= ZSTD_WINDOWS_FROM;
  const windows = structured && level < CONTEXT_LEVEL && !eager && !unmeasured ? zstdWindows(stream) : 1;
  if (alwaysZstd) {
    // A byte grouping's plane that no Huffman code shrinks (near-random mantissa bytes)
    // can only gain from zstd's matches: without repeated words, zstd is not run (below
    // the ratio goal's levels, whose zstd found a byte or two even there). The planes of
    // float weights go through zstdWhole (level 1 first) as field streams do: on the high
    // byte plane of FP16 weights level 1 was both faster and smaller than level 3; other
    // planes keep the chunk's level, which was smaller on packed assets (docs/ENGINE.md,
    // HIER's stream method).
    const worth =
      best.method !== METHOD_STORED || level >= CONTEXT_LEVEL || repeatShare(stream) >= STORED_REPEATS;
    if (n > 0 && worth)
      best = floatPlanes ? zstdWhole(stream, level, best) : smallerOf(best, zstd(stream, level));
  } else if (
    structured &&
    !unmeasured &&
    (eager || level >= CONTEXT_LEVEL || windows < ZSTD_WINDOW_SHARE) &&
    n > 0
  ) {
    best = zstdWhole(stream, level, best);
  } else if (tryZstd) {
    let whole = false;
    if (repeatsWorthAProbe(stream)) {
      const probe = stream.subarray(0, Math.min(n, ZSTD_PROBE));
      whole = zstdLength(probe, 1) / probe.length < (best.size / n) * 0.97;
    }
    // Statistics that change along the stream: zstd's per-block tables may win.
    // (A stream taken as random from its sample is not.)
    if (!whole && hist !== undefined) whole = blockTableShare(stream) * windows < ZSTD_BLOCK_SHARE;
    if (whole) best = zstdWhole(stream, level, best);
  }
  if (best.bytes === undefined && hist === undefined)
    throw new MmhError("E_INTERNAL", "HIER: a Huffman stream without its counts");
  return best.bytes === undefined ? { ...best, hist } : best;
}

/** A stream's method and exact coded size; a Huffman stream is coded (codedBytes) only once kept. */
interface StreamChoice extends CodedStream {
  /** The stream's counts, for a Huffman stream not yet coded. */
  hist?: Uint32Array;
}

/** Whether a stream's coded bytes are (or come from) the split stream itself: all but zstd's and context coding's. */
const fromStream = (choice: StreamChoice) =>
  choice.method !== METHOD_ZSTD && choice.method !== METHOD_CONTEXT;

/** The coded bytes of a stream codeStream chose the method of (`stream` as split). */
function codedBytes(stream: Uint8Array, choice: StreamChoice): Uint8Array {
  switch (choice.method) {
    case METHOD_STORED:
      return stream;
    case METHOD_CONSTANT:
      return stream.subarray(0, Math.min(1, stream.length));
    case METHOD_HUFFMAN:
      if (choice.hist === undefined)
        throw new MmhError("E_INTERNAL", "HIER: a Huffman stream without its counts");
      return huffmanEncode(stream, choice.hist);
    default:
      if (choice.bytes === undefined)
        throw new MmhError("E_INTERNAL", "HIER: a coded stream without its bytes");
      return choice.bytes;
  }
}

/** What hierEncode decided for a chunk: the layout, and each stream's method and size. */
interface HierChoice {
  layout: Layout;
  head: number;
  n: number;
  tail: number;
  /** Valid while `split` is the count of splits (splitChunk). */
  streams: Uint8Array[];
  choices: StreamChoice[];
  split: number;
}

/** Splits the chunk (into the kernels' memory when they take it) and chooses each stream's method. */
function hierChoose(raw: Uint8Array, options: CodecOptions): HierChoice {
  check(littleEndian, "E_UNSUPPORTED", "HIER needs a little-endian host");
  let layout: Layout;
  let head = 0;
  const known = options.dtype ? dtypeByName(options.dtype) : undefined;
  const forced = options.layout === undefined ? undefined : layoutByKey(options.layout);
  if (options.layout !== undefined && !forced)
    throw new MmhError("E_BAD_OPTION", `HIER: no layout ${options.layout}`);
  // Detected by the caller already (CodecOptions.detected), or here.
  const given = options.detected;
  const detected = given && layoutByKey(given.layout);
  if (given && !detected) throw new MmhError("E_BAD_OPTION", `HIER: no layout ${given.layout}`);
  if (forced) layout = forced;
  else if (known) layout = layoutForDType(known.name);
  else if (detected) [layout, head] = [detected, given?.head ?? 0];
  else ({ layout, head } = detectLayout(raw));
  const width = layout.width;
  if (raw.length < head + width) head = 0;
  const n = Math.floor((raw.length - head) / width);
  const tail = raw.length - head - n * width;
  const { streams, exponents } = splitChunk(raw, layout, head, n);
  const level = options.level ?? 3;
  const tryZstd = level >= 0;
  const floatPlanes = forced !== undefined && known?.kind === "float";
  const exponentStream = layout.name === "bf16" || layout.name === "f32" ? 0 : -1;
  const choices = streams.map((s, k) =>
    codeStream(
      s,
      Math.max(1, level),
      tryZstd,
      k === 0 ? exponents : undefined,
      forced !== undefined,
      floatPlanes,
      k === exponentStream,
    ),
  );
  return { layout, head, n, tail, streams, choices, split: splits };
}

/** Splits so far on this thread: a chunk's streams are valid until the next split. */
let splits = 0;

/**
 * n elements of `layout` at raw[head..] split into streams: in the kernels' memory when
 * they take the chunk (fused.ts), else in scratch. Either is reused by the next split.
 */
function splitChunk(
  raw: Uint8Array,
  layout: Layout,
  head: number,
  n: number,
  /** Count the exponents as they are split (where the layout does); false when only the streams are wanted. */
  count = true,
): { streams: Uint8Array[]; exponents: Uint32Array | undefined } {
  splits++;
  const fast = kernelSplit(layout, raw, head, n, count);
  if (fast) return { streams: fast.streams, exponents: fast.counts };
  const streamBytes = streamsBytes(layout, n);
  scratchOf(streamBytes + raw.length + 8); // grow once, before taking views of it
  const src = aligned(raw, head, streamBytes).subarray(head, head + n * layout.width);
  const streams = streamViews(layout, n, scratch.subarray(0, streamBytes));
  let exponents: Uint32Array | undefined;
  if (layout.splitCounting && count) {
    exponents = new Uint32Array(256);
    layout.splitCounting(src, n, streams, exponents);
  } else layout.split(src, n, streams);
  return { streams, exponents };
}

/**
 * The length of the payload hierEncode makes of `raw` with these options, without
 * Huffman-coding a stream or writing the payload: `auto` ranks candidates by size on
 * samples, and only the size of each was ever used.
 */
export function hierEncodedLength(raw: Uint8Array, options: CodecOptions = {}): number {
  const chosen = hierChoose(raw, options);
  dropFrames(chosen);
  return payloadLength(chosen);
}

function payloadLength({ head, tail, choices }: HierChoice): number {
  let total = FIXED + DESCRIPTOR * choices.length + head + tail;
  for (const c of choices) total += c.size;
  return total;
}

/** Gives back the zstd frames of a choice that will not be written. */
function dropFrames({ choices }: HierChoice): void {
  for (const c of choices) if (c.method === METHOD_ZSTD && c.bytes !== undefined) dispose(c.bytes, true);
}

/**
 * A chunk HIER has chosen every stream's method for, not yet written: `length` is the
 * payload's exact length. `auto` drafts each HIER candidate of a chunk it codes whole
 * with several, and writes only the smallest (encodeChoices): the others' Huffman
 * streams are never coded.
 */
export interface HierDraft {
  readonly length: number;
  /** The payload, as hierEncode would give it (into `output` when given). Once. */
  write(output?: (size: number) => Uint8Array): EncodedPayload;
  /** Gives back the memory of a draft that will not be written. */
  drop(): void;
}

export function hierDraft(raw: Uint8Array, options: CodecOptions = {}): HierDraft {
  const chosen = hierChoose(raw, options);
  return {
    length: payloadLength(chosen),
    write: (output) => writePayload(raw, chosen, output),
    drop: () => dropFrames(chosen),
  };
}

export function hierEncode(raw: Uint8Array, options: CodecOptions = {}): EncodedPayload {
  return writePayload(raw, hierChoose(raw, options), options.output);
}

function writePayload(
  raw: Uint8Array,
  chosen: HierChoice,
  output: ((size: number) => Uint8Array) | undefined,
): EncodedPayload {
  const { layout, head, n, tail, choices } = chosen;
  // Huffman, stored and constant streams are written from this chunk's split, or (when
  // another chunk was split since, over the same memory) from a new one: the same bytes.
  const again = chosen.split !== splits && choices.some(fromStream);
  // (The counts are in the choices already: the split again does not count.)
  const streams = again ? splitChunk(raw, layout, head, n, false).streams : chosen.streams;
  // A Huffman stream is coded straight into the payload (its size is exact): the others' bytes first.
  const coded = choices.map((c, k) => {
    const hist = c.method === METHOD_HUFFMAN ? c.hist : undefined;
    const bytes = hist === undefined ? codedBytes(streams[k], c) : undefined;
    return { method: c.method, bytes, hist, stream: streams[k], length: bytes?.length ?? c.size };
  });
  const headerLength = FIXED + DESCRIPTOR * coded.length;
  const total = headerLength + head + coded.reduce((a, c) => a + c.length, 0) + tail;
  // Every byte of out is written below, so memory from the caller need not be cleared.
  const out = output?.(total) ?? new Uint8Array(total);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  out[0] = HIER_VERSION;
  out[1] = layout.id;
  out[2] = head;
  out[3] = coded.length;
  let pos = FIXED;
  for (const c of coded) {
    out[pos] = c.method;
    view.setUint32(pos + 1, c.length, true);
    pos += DESCRIPTOR;
  }
  view.setUint32(4, crc32(out.subarray(FIXED, headerLength), crc32(out.subarray(0, 4))), true);
  out.set(raw.subarray(0, head), pos);
  pos += head;
  for (const c of coded) {
    if (c.hist !== undefined) huffmanEncodeInto(c.stream, c.hist, out.subarray(pos, pos + c.length));
    else if (c.bytes !== undefined) {
      out.set(c.bytes, pos);
      // Coded streams are fresh memory (zstd's a view into node:zlib's own), copied now.
      if (c.method !== METHOD_STORED && c.method !== METHOD_CONSTANT) dispose(c.bytes, true);
    }
    pos += c.length;
  }
  out.set(raw.subarray(raw.length - tail), pos);
  return { payload: out, owned: !output };
}

function corrupt(message: string): MmhError {
  return new MmhError("E_CORRUPT", `HIER: ${message}`);
}

/** What a HIER payload's header says, checked against the payload and the chunk's length. */
interface HierHeader {
  layout: Layout;
  head: number;
  n: number;
  tail: number;
  headerLength: number;
  parts: Part[];
}

function readHeader(payload: Uint8Array, rawLength: number): HierHeader {
  check(littleEndian, "E_UNSUPPORTED", "HIER needs a little-endian host");
  if (payload.length < FIXED) throw corrupt("payload shorter than its header");
  // A new HIER would get a new FourCC, so any other version byte here is damage.
  if (payload[0] !== HIER_VERSION) throw corrupt(`version byte ${payload[0]} (expected ${HIER_VERSION})`);
  const head = payload[2];
  const count = payload[3];
  const headerLength = FIXED + DESCRIPTOR * count;
  if (payload.length < headerLength) throw corrupt("payload shorter than its stream table");
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  // The header CRC first: a damaged layout byte is then E_CHECKSUM, and only an intact
  // header with a layout id this reader does not know is E_UNSUPPORTED below.
  if (
    crc32(payload.subarray(FIXED, headerLength), crc32(payload.subarray(0, 4))) !== view.getUint32(4, true)
  ) {
    throw new MmhError("E_CHECKSUM", "HIER: header checksum mismatch");
  }
  // Layout 19's element width is its stream count (FORMAT.md §6.2).
  if (payload[1] === RECORDS && !recordWidthAllowed(count))
    throw corrupt(`layout 19 (records) with ${count} streams: W must be 3 to 32 but 4 and 8`);
  const layout = payload[1] === RECORDS ? recordsLayout(count) : layoutById(payload[1]);
  // Layouts are added without a new FourCC (7-17 came in mmh 0.2, 19 later): an unknown
  // id in an intact header is a newer writer's, not damage.
  if (!layout)
    throw new MmhError("E_UNSUPPORTED", `HIER: unknown layout ${payload[1]} (written by a newer MMH?)`);
  const width = layout.width;
  if (count !== layout.streams)
    throw corrupt(`layout ${layout.name} has ${layout.streams} streams, header says ${count}`);
  if (head >= width) throw corrupt(`head ${head} is not less than the element width ${width}`);
  if (rawLength < head) throw corrupt("head longer than the chunk");
  const n = Math.floor((rawLength - head) / width);
  const tail = rawLength - head - n * width;
  let pos = headerLength + head;
  const parts: Part[] = [];
  for (let k = 0; k < count; k++) {
    const at = FIXED + DESCRIPTOR * k;
    const method = payload[at];
    const length = view.getUint32(at + 1, true);
    if (method > METHOD_CONTEXT) throw corrupt(`stream ${k}: unknown method ${method}`);
    parts.push({ method, start: pos, length });
    pos += length;
    if (pos > payload.length) throw corrupt(`stream ${k} runs past the payload`);
  }
  if (pos + tail !== payload.length) throw corrupt("stream lengths do not add up to the payload");
  return { layout, head, n, tail, headerLength, parts };
}

/**
 * A HIER payload decoded by the WebAssembly kernels and left in their memory (see
 * kernelDecodeLent): valid only until the next call into HIER on this thread. Undefined
 * when the kernels do not take the chunk (hierDecode then decodes it).
 */
export function hierDecodeLent(payload: Uint8Array, rawLength: number): Uint8Array | undefined {
  const { layout, head, n, tail, headerLength, parts } = readHeader(payload, rawLength);
  return kernelDecodeLent(
    layout,
    parts,
    payload,
    n,
    payload.subarray(headerLength, headerLength + head),
    payload.subarray(payload.length - tail),
  );
}

export function hierDecode(payload: Uint8Array, rawLength: number, into?: Uint8Array): Uint8Array {
  const { layout, head, n, tail, headerLength, parts } = readHeader(payload, rawLength);
  const width = layout.width;
  const fits = into !== undefined && into.length === rawLength;
  // The WebAssembly kernels decode into the caller's memory wherever it lies (they merge
  // in their own memory and copy the words out), so a chunk whose tensor starts at an odd
  // place in the content needs no memory of its own and no second copy (fused.ts).
  if (fits && kernelDecode(layout, parts, payload, n, into.subarray(head, head + n * width))) {
    into.set(payload.subarray(headerLength, headerLength + head), 0);
    into.set(payload.subarray(payload.length - tail), rawLength - tail);
    return into;
  }
  // The TypeScript path: the caller's memory when it is aligned for the layout's
  // word-wise merge.
  const out = fits && ((into.byteOffset + head) & 7) === 0 ? into : alignedOutput(rawLength, head);
  out.set(payload.subarray(headerLength, headerLength + head), 0);
  out.set(payload.subarray(payload.length - tail), rawLength - tail);
  if (!fits && kernelDecode(layout, parts, payload, n, out.subarray(head, head + n * width))) return out;
  const [first, second] = parts;
  if (
    layout.name === "bf16" &&
    first.method === METHOD_HUFFMAN &&
    payload[first.start] === BLOCK_HUFFMAN &&
    second.method === METHOD_STORED &&
    second.length === n
  ) {
    // The usual BF16 (and F16) chunk: Huffman-coded exponents decoded straight into the
    // output words with the stored sign|mantissa bytes, in one pass and no copy.
    huffmanDecodeBf16(
      payload.subarray(first.start, first.start + first.length),
      payload.subarray(second.start, second.start + n),
      new Uint16Array(out.buffer, out.byteOffset + head, n),
    );
    return out;
  }
  const streams: Uint8Array[] = [];
  // One 8-aligned slot per stream, so that the layouts' word-wise fast paths apply.
  const lengths = parts.map((_, k) => streamLength(layout, k, n));
  const starts: number[] = [];
  let room = 0;
  for (const length of lengths) {
    starts.push(room);
    room += (length + 7) & ~7;
  }
  const decoded = scratchOf(room);
  const slot = (k: number) => decoded.subarray(starts[k], starts[k] + lengths[k]);
  for (const [k, part] of parts.entries()) {
    const bytes = payload.subarray(part.start, part.start + part.length);
    const size = lengths[k];
    switch (part.method) {
      case METHOD_CONSTANT:
        if (part.length !== Math.min(1, size))
          throw corrupt(`stream ${k}: constant stream of ${part.length} bytes`);
        streams.push(slot(k).fill(size > 0 ? bytes[0] : 0));
        break;
      case METHOD_STORED:
        if (part.length !== size) throw corrupt(`stream ${k}: stored ${part.length} bytes for ${size}`);
        // The layouts' fast paths read whole words, so a misaligned stream is copied
        // (memcpy is several times faster than merging byte by byte).
        if ((bytes.byteOffset & 7) === 0) streams.push(bytes);
        else {
          const copy = slot(k);
          copy.set(bytes);
          streams.push(copy);
        }
        break;
      case METHOD_HUFFMAN:
      case METHOD_CONTEXT: {
        const out = slot(k);
        // Method 4 holds a context block only; method 2 any block of huffman.ts but a
        // context block (stored, single-symbol or Huffman: FORMAT.md §6.2).
        if (part.method === METHOD_CONTEXT) {
          if (bytes[0] !== BLOCK_CONTEXT)
            throw corrupt(`stream ${k}: context method without a context block`);
          huffmanDecodeContext(bytes, out);
        } else {
          if (bytes[0] === BLOCK_CONTEXT) throw corrupt(`stream ${k}: Huffman method with a context block`);
          huffmanDecode(bytes, out);
        }
        streams.push(out);
        break;
      }
      default: {
        // Exactly one frame, window bounded by the size, that many bytes out.
        const out = slot(k);
        zstdDecodeInto(bytes, out);
        streams.push(out);
      }
    }
  }
  layout.merge(streams, n, out.subarray(head, head + n * width));
  return out;
}

export const hierCodec: Codec = {
  id: "HIER",
  name: "hier",
  description: "tensor-aware: fields split by dtype, each coded by Huffman, zstd, constant or stored",
  decodesToOwn: true,
  levels: { min: -7, max: 22, default: 3 },
  encode(raw, options) {
    return hierEncode(raw, options);
  },
  decode(payload, params, rawLength, into) {
    if (params.length !== 0) throw corrupt("unexpected parameters");
    return hierDecode(payload, rawLength, into);
  },
  decodeLent(payload, params, rawLength) {
    if (params.length !== 0) throw corrupt("unexpected parameters");
    return hierDecodeLent(payload, rawLength);
  },
};
