/**
 * Context-conditioned Huffman: each symbol is coded with one of K codebooks (K = 2..4),
 * chosen by the bucket of the previous symbol in the same lane. HIER uses it (stream
 * method 4) only at ratio levels: on real weights it saves about 1% of an exponent
 * stream at about half the plain coder's encode speed (bench/results/huffman.md).
 *
 * Block layout (type 3; types 0..2 are huffman.ts blocks, returned when context does
 * not pay):
 *
 *   byte 0        3
 *   varint        n (as in huffman.ts)
 *   byte          K, 2..4
 *   K - 1 bytes   thresholds t1 < t2 < ... (t1 >= 1): a previous symbol v is in bucket
 *                 "number of t_j <= v"; the first symbol of each lane uses bucket 0
 *   K codebooks   as in huffman.ts; a codebook with lo == hi and a zero length nibble
 *                 is one symbol coded in zero bits
 *   4 lane ends, bitstream: as in huffman.ts (lanes of ceil(n / 4) symbols)
 *
 * Bucket boundaries are chosen by dynamic programming over the previous-symbol values
 * seen, minimising the order-1 entropy of the bucketed model.
 */
import { MmhError } from "../../common/errors.ts";
import {
  canonicalCodes,
  checkCount,
  checkLanesEnded,
  codebookSize,
  codeLengths,
  corrupt,
  fieldWidth,
  HUFFMAN_MAX_BITS,
  histogram,
  huffmanDecode,
  huffmanEncode,
  huffmanSizeFromHistogram,
  laneSize,
  peekSafe,
  readCodebook,
  readHeader,
  readLaneEnds,
  safeSteps,
  varintLength,
  writeCodebook,
} from "./huffman.ts";

export const BLOCK_CONTEXT = 3;
export const MAX_CONTEXTS = 4;

const MAX_BITS = HUFFMAN_MAX_BITS;
const TABLE = 1 << MAX_BITS;
const LANES = 4;
/**
 * Below this, or with more distinct previous values than DP_MAX_VALUES, code without
 * context. 256 admits every byte stream: FP16 fields (bits 7-14, 5 exponent and 3
 * mantissa bits) have over a hundred values and gain 3-4% on real weights
 * (bench/results/context.md).
 */
const MIN_SYMBOLS = 4096;
const DP_MAX_VALUES = 256;

// ---------------------------------------------------------------------------------------
// Modelling

const joint = new Uint32Array(65536);
/** One pair table per lane, so that the four counting chains do not wait on each other. */
let laneJoint = new Uint32Array(0);

/**
 * Counts (previous, current) pairs within lanes into `joint`, and lane-first symbols into
 * `firsts`. The four lanes are counted in one loop, each into its own table.
 */
function countPairs(symbols: Uint8Array, hist: Uint32Array, firsts: Uint32Array): void {
  if (laneJoint.length === 0) laneJoint = new Uint32Array(LANES * 65536);
  const t = laneJoint;
  t.fill(0);
  const n = symbols.length;
  const q = laneSize(n);
  const s0 = 0;
  const s1 = Math.min(n, q);
  const s2 = Math.min(n, 2 * q);
  const s3 = Math.min(n, 3 * q);
  const ends = [s1, s2, s3, n];
  const starts = [s0, s1, s2, s3];
  for (let lane = 0; lane < LANES; lane++) if (starts[lane] < ends[lane]) firsts[symbols[starts[lane]]]++;
  // Every lane has at least n - s3 symbols; count that many in step.
  const common = n - s3;
  for (let j = 1; j < common; j++) {
    t[(symbols[s0 + j - 1] << 8) | symbols[s0 + j]]++;
    t[65536 + ((symbols[s1 + j - 1] << 8) | symbols[s1 + j])]++;
    t[131072 + ((symbols[s2 + j - 1] << 8) | symbols[s2 + j])]++;
    t[196608 + ((symbols[s3 + j - 1] << 8) | symbols[s3 + j])]++;
  }
  for (let lane = 0; lane < LANES; lane++) {
    for (let i = Math.max(starts[lane] + 1, starts[lane] + common); i < ends[lane]; i++) {
      t[(symbols[i - 1] << 8) | symbols[i]]++;
    }
  }
  joint.fill(0);
  for (let v = 0; v < 256; v++) {
    if (hist[v] === 0) continue;
    const row = v << 8;
    for (let s = 0; s < 256; s++) {
      if (hist[s] === 0) continue;
      const at = row | s;
      joint[at] = t[at] + t[65536 + at] + t[131072 + at] + t[196608 + at];
    }
  }
}

/**
 * Thresholds for up to K buckets of the previous symbol, minimising the bucketed order-1
 * entropy; returns them (strictly rising, each >= 1), or null when there are too many
 * distinct values for the search.
 */
export function chooseThresholds(hist: Uint32Array, K: number): number[] | null {
  const values: number[] = [];
  for (let v = 0; v < 256; v++) {
    let row = 0;
    for (let s = 0; s < 256 && row === 0; s++) row += joint[(v << 8) | s];
    if (row > 0) values.push(v);
  }
  const used = new Uint8Array(256);
  let m = 0;
  for (let s = 0; s < 256; s++) if (hist[s] > 0) used[m++] = s;
  const D = values.length;
  if (D > DP_MAX_VALUES) return null;
  if (D <= 1) return [];
  // cost[a][b]: entropy of the symbols following values a..b (indices into values),
  // T log T - sum of c log c over the merged counts, kept up to date as each value's row
  // is added (only the row's non-zero counts change the sum).
  const cost: Float64Array[] = [];
  const acc = new Float64Array(256);
  const xlog = (x: number) => (x > 0 ? x * Math.log2(x) : 0);
  for (let a = 0; a < D; a++) {
    acc.fill(0);
    let total = 0;
    let sumXlog = 0;
    const row = new Float64Array(D);
    for (let b = a; b < D; b++) {
      const base = values[b] << 8;
      for (let k = 0; k < m; k++) {
        const c = joint[base | used[k]];
        if (c === 0) continue;
        const old = acc[used[k]];
        sumXlog += xlog(old + c) - xlog(old);
        acc[used[k]] = old + c;
        total += c;
      }
      row[b] = Math.max(0, xlog(total) - sumXlog);
    }
    cost.push(row);
  }
  const buckets = Math.min(K, D);
  // best[j][i]: cheapest split of values[0..i) into j segments; from[j][i] the last cut.
  let best = new Float64Array(D + 1).fill(Number.POSITIVE_INFINITY);
  best[0] = 0;
  const from: Int32Array[] = [];
  for (let j = 1; j <= buckets; j++) {
    const next = new Float64Array(D + 1).fill(Number.POSITIVE_INFINITY);
    const cut = new Int32Array(D + 1);
    for (let i = 1; i <= D; i++) {
      for (let c = j - 1; c < i; c++) {
        const value = best[c] + cost[c][i - 1];
        if (value < next[i]) {
          next[i] = value;
          cut[i] = c;
        }
      }
    }
    from.push(cut);
    best = next;
  }
  const thresholds: number[] = [];
  let i = D;
  for (let j = buckets; j > 1; j--) {
    i = from[j - 1][i];
    thresholds.unshift(values[i]);
  }
  return thresholds;
}

// ---------------------------------------------------------------------------------------
// Encoding

const ctxHist: Uint32Array[] = Array.from({ length: MAX_CONTEXTS }, () => new Uint32Array(256));
const ctxLengths: Uint8Array[] = Array.from({ length: MAX_CONTEXTS }, () => new Uint8Array(256));
const ctxCodes = new Uint16Array(256);
const encTable = new Int32Array(MAX_CONTEXTS * 256);
const nextBase = new Int32Array(256);

/**
 * Codes symbols with K codebooks chosen by the previous symbol's bucket. Falls back to
 * huffmanEncode() (a type 0..2 block) when that is no larger or the input is small.
 */
export function huffmanEncodeContext(symbols: Uint8Array, contexts = MAX_CONTEXTS): Uint8Array {
  const n = symbols.length;
  checkCount(n);
  if (!(contexts >= 2 && contexts <= MAX_CONTEXTS)) {
    throw new MmhError("E_BAD_OPTION", `huffman: contexts must be 2..${MAX_CONTEXTS}`);
  }
  if (n < MIN_SYMBOLS) return huffmanEncode(symbols);
  warmUpFor(n);
  const hist = histogram(symbols);
  const firsts = new Uint32Array(256);
  countPairs(symbols, hist, firsts);
  const thresholds = chooseThresholds(hist, contexts);
  if (thresholds === null || thresholds.length === 0) return huffmanEncode(symbols);
  const K = thresholds.length + 1;
  const bucketOf = new Uint8Array(256);
  for (let v = 0; v < 256; v++) {
    let b = 0;
    while (b < thresholds.length && thresholds[b] <= v) b++;
    bucketOf[v] = b;
  }
  for (let c = 0; c < K; c++) ctxHist[c].fill(0);
  ctxHist[0].set(firsts);
  for (let v = 0; v < 256; v++) {
    const h = ctxHist[bucketOf[v]];
    const base = v << 8;
    for (let s = 0; s < 256; s++) h[s] += joint[base | s];
  }
  // Sizes: a zero-length single-symbol codebook is 3 bytes (lo, hi, one zero byte).
  let size = 1 + varintLength(n) + 1 + (K - 1) + LANES * fieldWidth(n);
  let totalBits = 0;
  const lo = new Int32Array(K);
  const hi = new Int32Array(K);
  for (let c = 0; c < K; c++) {
    const used = codeLengths(ctxHist[c], ctxLengths[c]);
    if (used <= 1) {
      let s = 0;
      while (s < 255 && ctxHist[c][s] === 0) s++;
      ctxLengths[c].fill(0);
      lo[c] = hi[c] = used === 1 ? s : 0;
      size += 3;
      continue;
    }
    let a = 0;
    while (ctxLengths[c][a] === 0) a++;
    let b = 255;
    while (ctxLengths[c][b] === 0) b--;
    lo[c] = a;
    hi[c] = b;
    size += codebookSize(ctxLengths[c], a, b);
    for (let s = a; s <= b; s++) totalBits += ctxHist[c][s] * ctxLengths[c][s];
  }
  size += Math.ceil(totalBits / 8);
  if (size >= huffmanSizeFromHistogram(hist)) return huffmanEncode(symbols);

  const out = new Uint8Array(size);
  out[0] = BLOCK_CONTEXT;
  let pos = 1;
  let v = n;
  while (v >= 0x80) {
    out[pos++] = (v & 0x7f) | 0x80;
    v = Math.floor(v / 128);
  }
  out[pos++] = v;
  out[pos++] = K;
  for (const t of thresholds) out[pos++] = t;
  for (let c = 0; c < K; c++) {
    if (lo[c] === hi[c] && ctxLengths[c][lo[c]] === 0) {
      out[pos++] = lo[c];
      out[pos++] = hi[c];
      out[pos++] = 0;
    } else {
      pos = writeCodebook(out, pos, ctxLengths[c], lo[c], hi[c]);
    }
    canonicalCodes(ctxLengths[c], ctxCodes);
    for (let s = 0; s < 256; s++) encTable[c * 256 + s] = ctxCodes[s] | (ctxLengths[c][s] << 16);
  }
  const w = fieldWidth(n);
  const fieldsAt = pos;
  const dataStart = pos + LANES * w;
  let used = 0;
  for (let s = 0; s < 256; s++) {
    nextBase[s] = bucketOf[s] << 8;
    nextPair[s] = bucketOf[s] << 16;
    if (hist[s] !== 0) usedSymbols[used++] = s;
  }
  const usePairs = K * used * used <= n;
  if (usePairs) buildPairTable(K, used);
  const q = laneSize(n);
  // The words hold the bitstream from its first bit: one more word than it fills.
  const need = (totalBits >>> 5) + 1;
  if (encScratch.words.length < need)
    encScratch.words = new Int32Array(Math.max(need, encScratch.words.length * 2));
  const words = encScratch.words;
  encState.fill(0);
  for (let lane = 0; lane < LANES; lane++) {
    const from = Math.min(n, lane * q);
    encodeLane(symbols, from, Math.min(n, from + q), words, usePairs);
    let end = encState[2] * 32 + encState[1];
    for (let b = 0; b < w; b++) {
      out[fieldsAt + lane * w + b] = end & 0xff;
      end = Math.floor(end / 256);
    }
  }
  if (Math.ceil((encState[2] * 32 + encState[1]) / 8) !== out.length - dataStart)
    throw new MmhError("E_INTERNAL", "huffman: context size mismatch");
  out.set(new Uint8Array(words.buffer, 0, out.length - dataStart), dataStart);
  return out;
}

const usedSymbols = new Uint8Array(256);
const nextPair = new Int32Array(256);
/** Per context c: codes of symbol pairs (c << 16 | first | second << 8) and their lengths. */
let pairCodes = new Int32Array(0);
let pairLengths = new Uint8Array(0);

function buildPairTable(K: number, used: number): void {
  if (pairCodes.length === 0) {
    pairCodes = new Int32Array(MAX_CONTEXTS << 16);
    pairLengths = new Uint8Array(MAX_CONTEXTS << 16);
  }
  for (let c = 0; c < K; c++) {
    for (let a = 0; a < used; a++) {
      const sa = usedSymbols[a];
      const ea = encTable[(c << 8) | sa];
      const la = ea >>> 16;
      const next = nextBase[sa];
      for (let b = 0; b < used; b++) {
        const sb = usedSymbols[b];
        const eb = encTable[next | sb];
        pairCodes[(c << 16) | sa | (sb << 8)] = (ea & 0xffff) | ((eb & 0xffff) << la);
        pairLengths[(c << 16) | sa | (sb << 8)] = la + (eb >>> 16);
      }
    }
  }
}

/**
 * The bit writer's state across lanes: pending bits (fewer than 32), their count and the
 * index of the word they go to, in a typed array rather than module variables (see
 * huffman.ts, encodeRange).
 */
const encState = new Int32Array(3);
/** The bitstream as 32-bit words (little-endian, as HIER requires), grown as needed. */
const encScratch = { words: new Int32Array(1 << 12) };

/**
 * Codes symbols[from..to) (first symbol in context 0) into `words`, from the state in
 * encState. With pairs, the symbols up to a 4-byte boundary are coded one at a time, then
 * each aligned 32-bit word of symbols as two pairs. Typed-array access only, no DataView
 * calls, and the same branch-free word writer as huffman.ts's encodeRange (which says why).
 */
function encodeLane(
  symbols: Uint8Array,
  from: number,
  to: number,
  words: Int32Array,
  usePairs: boolean,
): void {
  let acc = encState[0];
  let nb = encState[1];
  let wi = encState[2];
  const single = encTable;
  let i = from;
  /** The context of the next symbol, as an index base into encTable (bucket << 8). */
  let base = 0;
  if (usePairs && to - from >= 16) {
    for (; ((symbols.byteOffset + i) & 3) !== 0; i++) {
      const s = symbols[i];
      const e = single[base | s];
      const code = e & 0xffff;
      const spill = (code >>> 1) >>> (31 - nb);
      acc |= code << nb;
      nb += e >>> 16;
      words[wi] = acc;
      const full = nb >>> 5;
      wi += full;
      acc = spill | (acc & (full - 1));
      nb &= 31;
      base = nextBase[s];
    }
    const count = (to - i) >>> 2;
    const quads = new Int32Array(symbols.buffer, symbols.byteOffset + i, count);
    const pc = pairCodes;
    const pl = pairLengths;
    // The pair tables' context base: bucket << 16.
    let c = base << 8;
    for (let j = 0; j < count; j++) {
      const word = quads[j];
      let pair = c | (word & 0xffff);
      let code = pc[pair];
      let spill = (code >>> 1) >>> (31 - nb);
      acc |= code << nb;
      nb += pl[pair];
      words[wi] = acc;
      let full = nb >>> 5;
      wi += full;
      acc = spill | (acc & (full - 1));
      nb &= 31;
      pair = nextPair[(word >>> 8) & 0xff] | (word >>> 16);
      code = pc[pair];
      spill = (code >>> 1) >>> (31 - nb);
      acc |= code << nb;
      nb += pl[pair];
      words[wi] = acc;
      full = nb >>> 5;
      wi += full;
      acc = spill | (acc & (full - 1));
      nb &= 31;
      c = nextPair[word >>> 24];
    }
    base = c >>> 8;
    i += count * 4;
  }
  for (; i < to; i++) {
    const s = symbols[i];
    const e = single[base | s];
    const code = e & 0xffff;
    const spill = (code >>> 1) >>> (31 - nb);
    acc |= code << nb;
    nb += e >>> 16;
    words[wi] = acc;
    const full = nb >>> 5;
    wi += full;
    acc = spill | (acc & (full - 1));
    nb &= 31;
    base = nextBase[s];
  }
  words[wi] = acc;
  encState[0] = acc;
  encState[1] = nb;
  encState[2] = wi;
}

// ---------------------------------------------------------------------------------------
// Decoding

const lengths = new Uint8Array(256);
const codes = new Uint16Array(256);
/** Per context: symbol | length << 8 (length 0 for a zero-length single symbol). */
const singleTable = new Uint16Array(MAX_CONTEXTS * TABLE);
/** Per context: s1 | s2 << 8 | s3 << 16 | count << 24 | bits << 26 | next context << 30. */
const multiTable = new Int32Array(MAX_CONTEXTS * TABLE);
const ctxOf = new Uint8Array(256);
const laneBit = new Int32Array(LANES + 1);

/** Decodes a block from huffmanEncodeContext() (or huffmanEncode()) into out. */
export function huffmanDecodeContext(block: Uint8Array, out: Uint8Array): void {
  const n = out.length;
  checkCount(n);
  warmUpFor(n);
  let pos = readHeader(block, n);
  if (block[0] !== BLOCK_CONTEXT) {
    huffmanDecode(block, out);
    return;
  }
  if (pos >= block.length) corrupt("truncated header");
  const K = block[pos++];
  if (K < 2 || K > MAX_CONTEXTS) corrupt("bad context count");
  if (pos + K - 1 > block.length) corrupt("truncated header");
  let last = 0;
  ctxOf.fill(0);
  for (let j = 1; j < K; j++) {
    const t = block[pos++];
    if (t <= last) corrupt("thresholds not rising");
    for (let v = t; v < 256; v++) ctxOf[v] = j;
    last = t;
  }
  for (let c = 0; c < K; c++) {
    const book = readCodebook(block, pos, lengths, true);
    pos = book.end;
    const base = c * TABLE;
    if (book.single >= 0) {
      singleTable.fill(book.single, base, base + TABLE);
      continue;
    }
    canonicalCodes(lengths, codes);
    for (let s = 0; s < 256; s++) {
      const len = lengths[s];
      if (len === 0) continue;
      const entry = s | (len << 8);
      for (let idx = codes[s]; idx < TABLE; idx += 1 << len) singleTable[base + idx] = entry;
    }
  }
  // Multi-symbol entries follow the context from each decoded symbol to the next.
  for (let c = 0; c < K; c++) {
    for (let idx = 0; idx < TABLE; idx++) {
      let e = singleTable[c * TABLE + idx];
      let bits = e >>> 8;
      let sym = e & 0xff;
      let entry = sym;
      let count = 1;
      while (count < 3) {
        e = singleTable[ctxOf[sym] * TABLE + (idx >>> bits)];
        const len = e >>> 8;
        if (bits + len > MAX_BITS) break;
        sym = e & 0xff;
        entry |= sym << (8 * count);
        bits += len;
        count++;
      }
      multiTable[c * TABLE + idx] = entry | (count << 24) | (bits << 26) | (ctxOf[sym] << 30);
    }
  }
  readLaneEnds(block, pos, n, laneBit);
  decodeLanes(block, out);
}

function decodeTail(block: Uint8Array, p: number, c: number, out: Uint8Array, o: number, oe: number): number {
  while (o < oe) {
    const e = singleTable[c + ((peekSafe(block, p >>> 3) >>> (p & 7)) & (TABLE - 1))];
    const s = e & 0xff;
    out[o++] = s;
    p += e >>> 8;
    c = ctxOf[s] << MAX_BITS;
  }
  return p;
}

function decodeLanes(block: Uint8Array, out: Uint8Array): void {
  const n = out.length;
  const q = laneSize(n);
  const mask = TABLE - 1;
  const multi = multiTable;
  const dv = new DataView(block.buffer, block.byteOffset, block.byteLength);
  const ov = new DataView(out.buffer, out.byteOffset, out.byteLength);
  let p0 = laneBit[0];
  let p1 = laneBit[1];
  let p2 = laneBit[2];
  let p3 = laneBit[3];
  let c0 = 0;
  let c1 = 0;
  let c2 = 0;
  let c3 = 0;
  let o0 = 0;
  let o1 = Math.min(n, q);
  let o2 = Math.min(n, 2 * q);
  let o3 = Math.min(n, 3 * q);
  const e0 = o1;
  const e1 = o2;
  const e2 = o3;
  const e3 = n;
  const readLimit = (block.length - 4) * 8;
  for (;;) {
    let k = safeSteps(e0 - o0, e1 - o1, e2 - o2, e3 - o3, readLimit - Math.max(p0, p1, p2, p3), MAX_BITS);
    if (k < 4) break;
    for (; k > 0; k--) {
      const a = multi[c0 + ((dv.getUint32(p0 >>> 3, true) >>> (p0 & 7)) & mask)];
      const b = multi[c1 + ((dv.getUint32(p1 >>> 3, true) >>> (p1 & 7)) & mask)];
      const c = multi[c2 + ((dv.getUint32(p2 >>> 3, true) >>> (p2 & 7)) & mask)];
      const d = multi[c3 + ((dv.getUint32(p3 >>> 3, true) >>> (p3 & 7)) & mask)];
      ov.setInt32(o0, a, true);
      ov.setInt32(o1, b, true);
      ov.setInt32(o2, c, true);
      ov.setInt32(o3, d, true);
      o0 += (a >>> 24) & 3;
      o1 += (b >>> 24) & 3;
      o2 += (c >>> 24) & 3;
      o3 += (d >>> 24) & 3;
      p0 += (a >>> 26) & 15;
      p1 += (b >>> 26) & 15;
      p2 += (c >>> 26) & 15;
      p3 += (d >>> 26) & 15;
      c0 = (a >>> 30) << MAX_BITS;
      c1 = (b >>> 30) << MAX_BITS;
      c2 = (c >>> 30) << MAX_BITS;
      c3 = (d >>> 30) << MAX_BITS;
    }
  }
  p0 = decodeTail(block, p0, c0, out, o0, e0);
  p1 = decodeTail(block, p1, c1, out, o1, e1);
  p2 = decodeTail(block, p2, c2, out, o2, e2);
  p3 = decodeTail(block, p3, c3, out, o3, e3);
  checkLanesEnded(laneBit, p0, p1, p2, p3);
}

// ---------------------------------------------------------------------------------------
// Warm-up (see huffman.ts): run every path on small odd-sized inputs before the first big
// block, so that V8 optimises with full type feedback.

let warm = false;

function warmUpFor(n: number): void {
  if (warm || n < 1 << 15) return;
  warm = true;
  const data = new Uint8Array(9011);
  let x = 0x2545f491;
  let g = 0;
  for (let i = 0; i < data.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    if ((x & 15) === 0) g = (x >>> 4) % 5;
    data[i] = 90 + g * 4 + ((x >>> 8) % 3);
  }
  for (const [from, length] of [
    [1, 9007],
    [2, 4099],
  ]) {
    const input = data.subarray(from, from + length);
    const block = huffmanEncodeContext(input, 4);
    const out = new Uint8Array(length);
    huffmanDecodeContext(block, out);
    for (let i = 0; i < length; i++) {
      if (out[i] !== input[i] || block[0] !== BLOCK_CONTEXT) {
        throw new MmhError("E_INTERNAL", "huffman: context self-test failed");
      }
    }
  }
}
