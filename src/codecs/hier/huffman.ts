/**
 * Canonical Huffman coding of byte streams, built for speed in plain TypeScript.
 *
 * Block layout (every block is self-describing; the caller supplies the symbol count
 * only to size the output, and the block repeats it so a mismatch is caught):
 *
 *   byte 0        block type: 0 stored, 1 single symbol, 2 Huffman
 *   varint        n, the number of symbols (LEB128, minimal, n <= 2^27)
 *   stored        n raw bytes
 *   single        1 byte: the symbol, repeated n times (n >= 1)
 *   Huffman       codebook: lo, hi (bytes), the range of symbols with a code, then
 *                   4-bit nibbles (low nibble first, zero-padded to a byte) giving the
 *                   code length of each symbol lo..hi in turn: 1..11 a length, 0 no
 *                   code, 15 followed by two nibbles r (low first) a run of r + 1
 *                   symbols without a code. Lengths are at most 11, lo and hi have a
 *                   code, at least two symbols have one and the code is complete
 *                   (Kraft sum = 1)
 *                 4 fields of w bytes (little-endian), w = bytes needed for n * 11:
 *                   the bit offset where lane 0, 1, 2, 3 ends
 *                 the bitstream, ceil(end3 / 8) bytes, zero-padded
 *
 * The n symbols are split into 4 contiguous lanes of q = ceil(n / 4) symbols (the last
 * lanes may be shorter or empty). The encoder writes one LSB-first bitstream over all n
 * symbols in order, so lane i's bits simply run from end(i-1) to end(i); the decoder
 * walks the 4 lanes at once. Because the lanes are bit-contiguous, the block size
 * depends only on the histogram, which huffmanSizeFromHistogram() exploits.
 *
 * Codes are canonical (by length, then symbol), length-limited to 11 bits by
 * package-merge (optimal for the limit), and stored bit-reversed so that the low bits of
 * the stream index the decode table directly. The decode table gives up to 3 symbols per
 * lookup.
 */
import { MmhError } from "../../common/errors.ts";
import { loadedKernels } from "./kernels.ts";

/** The longest code. The decode table has 2^MAX_BITS entries (8 KiB as Int32). */
export const HUFFMAN_MAX_BITS = 11;
/** The largest symbol count one block may hold (keeps bit offsets below 2^31). */
export const HUFFMAN_MAX_SYMBOLS = 1 << 27;

export const BLOCK_STORED = 0;
export const BLOCK_SINGLE = 1;
export const BLOCK_HUFFMAN = 2;

const MAX_BITS = HUFFMAN_MAX_BITS;
const LANES = 4;

export function corrupt(message: string): never {
  throw new MmhError("E_CORRUPT", `huffman block: ${message}`);
}

/** E_LIMIT when a block would hold more symbols than HUFFMAN_MAX_SYMBOLS. */
export function checkCount(n: number): void {
  if (n > HUFFMAN_MAX_SYMBOLS) {
    throw new MmhError("E_LIMIT", `huffman block: ${n} symbols is over the limit of ${HUFFMAN_MAX_SYMBOLS}`);
  }
}

// ---------------------------------------------------------------------------------------
// Histogram

const subCounts = new Uint32Array(1024);

/**
 * Counts of each byte value (256 entries). Reads aligned 32-bit words and counts each
 * byte lane in its own sub-histogram, which hides store-to-load stalls on repeated values.
 */
export function histogram(symbols: Uint8Array, into?: Uint32Array): Uint32Array {
  // A caller that counts many small streams passes its own 256 counts (zeroed here): a
  // fresh array of 1 KiB each time costs more than counting a small stream.
  const counts = into ? into.fill(0) : new Uint32Array(256);
  const k = loadedKernels();
  if (k?.holds(symbols)) {
    // In the kernels' memory (HIER's streams while it encodes): counted there.
    const mem = k.u8();
    mem.fill(0, k.at.counts, k.at.counts + 1024);
    k.x.histogram(symbols.byteOffset, symbols.length, k.at.counts);
    counts.set(new Uint32Array(mem.buffer, k.at.counts, 256));
    return counts;
  }
  const h = subCounts;
  h.fill(0);
  const n = symbols.length;
  let i = Math.min(n, (4 - (symbols.byteOffset & 3)) & 3);
  for (let k = 0; k < i; k++) counts[symbols[k]]++;
  const words = (n - i) >>> 2;
  if (words > 0) {
    const u = new Int32Array(symbols.buffer, symbols.byteOffset + i, words);
    for (let j = 0; j < words; j++) {
      const w = u[j];
      h[w & 255]++;
      h[256 + ((w >>> 8) & 255)]++;
      h[512 + ((w >>> 16) & 255)]++;
      h[768 + (w >>> 24)]++;
    }
    i += words * 4;
  }
  for (; i < n; i++) counts[symbols[i]]++;
  for (let s = 0; s < 256; s++) counts[s] += h[s] + h[256 + s] + h[512 + s] + h[768 + s];
  return counts;
}

// ---------------------------------------------------------------------------------------
// Code lengths: package-merge

const pmSorted = new Uint16Array(256);
const pmWeights = new Float64Array(257);
const pmListA = new Float64Array(512);
const pmListB = new Float64Array(512);
/** Items per level in pmLeaves: a list holds at most 2 * 256 - 1 items, plus the count before any. */
const PM_STRIDE = 512;
/** For each level, the number of leaves among its first k items, at level * PM_STRIDE + k. */
const pmLeaves = new Uint16Array(MAX_BITS * PM_STRIDE);
/** How many levels chose exactly k leaves. */
const pmChosen = new Uint8Array(257);

const pmOther = new Uint16Array(256);
const pmBuckets = new Uint32Array(256);

/**
 * Sorts the used symbols pmSorted[0..m) (in ascending order) by (count, symbol): a stable
 * radix sort of their counts a byte at a time, skipping the bytes in which all counts
 * agree (most are, on a chunk's streams: the high ones). It gives the order a sort of the
 * keys count * 256 + symbol gives, in a fraction of Float64Array#sort's time.
 */
function sortByCount(hist: ArrayLike<number>, m: number): void {
  let any = 0;
  let all = -1;
  for (let i = 0; i < m; i++) {
    const c = hist[pmSorted[i]];
    any |= c;
    all &= c;
  }
  const differ = any ^ all;
  let from = pmSorted;
  let to = pmOther;
  for (let shift = 0; shift < 32; shift += 8) {
    if (((differ >>> shift) & 255) === 0) continue;
    pmBuckets.fill(0);
    for (let i = 0; i < m; i++) pmBuckets[(hist[from[i]] >>> shift) & 255]++;
    let at = 0;
    for (let d = 0; d < 256; d++) {
      const count = pmBuckets[d];
      pmBuckets[d] = at;
      at += count;
    }
    for (let i = 0; i < m; i++) {
      const s = from[i];
      to[pmBuckets[(hist[s] >>> shift) & 255]++] = s;
    }
    const t = from;
    from = to;
    to = t;
  }
  if (from !== pmSorted) pmSorted.set(from.subarray(0, m));
}

/**
 * Optimal code lengths limited to 11 bits (package-merge) for the symbols with a nonzero
 * count, written to `lengths` (256 entries, 0 for unused symbols). Returns the number of
 * used symbols. With one used symbol its length is set to 1 (callers treat that case
 * apart). Ties are broken by symbol value, so the result is deterministic.
 *
 * Package-merge: level 1 is the leaves sorted by weight; each further level merges the
 * leaves with the pairs ("packages") of the level below. The first 2m - 2 items of the
 * top level are the chosen ones; walking back down, each chosen leaf adds one to its
 * symbol's length and each chosen package selects two items of the level below. Since
 * leaves keep their order in every list, only a leaf count per level is needed: each
 * level keeps the count of leaves among its first k items for every k, and the i-th
 * lightest symbol's length is the number of levels whose chosen items hold more than i
 * leaves.
 */
export function codeLengths(hist: ArrayLike<number>, lengths: Uint8Array): number {
  const maxBits = MAX_BITS;
  lengths.fill(0);
  let m = 0;
  for (let s = 0; s < 256; s++) if (hist[s] > 0) pmSorted[m++] = s;
  if (m === 0) return 0;
  if (m <= 2) {
    for (let i = 0; i < m; i++) lengths[pmSorted[i]] = 1;
    return m;
  }
  sortByCount(hist, m);
  for (let i = 0; i < m; i++) pmWeights[i] = hist[pmSorted[i]];
  // Level 1 (deepest) is the leaves alone.
  let prev = pmListA;
  let cur = pmListB;
  for (let i = 0; i < m; i++) {
    prev[i] = pmWeights[i];
    pmLeaves[i] = i;
  }
  pmLeaves[m] = m;
  let prevLength = m;
  for (let level = 1; level < maxBits; level++) {
    const packages = prevLength >> 1;
    const base = level * PM_STRIDE;
    // Infinite weights past the leaves and the packages make the merge branch-free: the
    // smaller weight is taken, a leaf on a tie. (An odd last item of the level below is
    // in no package, and is overwritten by the sentinel.)
    pmWeights[m] = Number.POSITIVE_INFINITY;
    prev[2 * packages] = Number.POSITIVE_INFINITY;
    prev[2 * packages + 1] = Number.POSITIVE_INFINITY;
    let li = 0;
    let pi = 0;
    const items = m + packages;
    pmLeaves[base] = 0;
    for (let k = 0; k < items; k++) {
      const leaf = pmWeights[li];
      const pair = prev[2 * pi] + prev[2 * pi + 1];
      const isLeaf = leaf <= pair ? 1 : 0;
      cur[k] = Math.min(leaf, pair);
      li += isLeaf;
      pi += 1 - isLeaf;
      pmLeaves[base + k + 1] = li;
    }
    prevLength = items;
    const t = prev;
    prev = cur;
    cur = t;
  }
  // Walk back from the top level: the first 2m - 2 items are the chosen ones.
  pmChosen.fill(0, 0, m + 1);
  let take = 2 * m - 2;
  for (let level = maxBits - 1; level >= 0; level--) {
    const leaves = pmLeaves[level * PM_STRIDE + take];
    pmChosen[leaves]++;
    take = 2 * (take - leaves);
  }
  // The i-th lightest symbol is chosen at every level that chose more than i leaves.
  let atMost = 0;
  for (let i = 0; i < m; i++) {
    atMost += pmChosen[i];
    lengths[pmSorted[i]] = maxBits - atMost;
  }
  return m;
}

/** Canonical codes, bit-reversed for an LSB-first stream, from code lengths. */
export function canonicalCodes(lengths: Uint8Array, codes: Uint16Array): void {
  const count = new Uint16Array(MAX_BITS + 2);
  for (let s = 0; s < 256; s++) count[lengths[s]]++;
  count[0] = 0;
  const next = new Uint16Array(MAX_BITS + 2);
  let code = 0;
  for (let len = 1; len <= MAX_BITS; len++) {
    code = (code + count[len - 1]) << 1;
    next[len] = code;
  }
  for (let s = 0; s < 256; s++) {
    const len = lengths[s];
    if (len === 0) {
      codes[s] = 0;
      continue;
    }
    const c = next[len]++;
    let r = 0;
    for (let b = 0; b < len; b++) r |= ((c >>> b) & 1) << (len - 1 - b);
    codes[s] = r;
  }
}

// ---------------------------------------------------------------------------------------
// Sizes

export function varintLength(value: number): number {
  let length = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    length++;
  }
  return length;
}

/** Bytes in each lane-end field: enough for n * 11 bits. */
export function fieldWidth(n: number): number {
  const maxBits = n * MAX_BITS;
  return maxBits < 0x100 ? 1 : maxBits < 0x10000 ? 2 : maxBits < 0x1000000 ? 3 : 4;
}

/** A zero run this long or longer is written as an escape (3 nibbles). */
const RUN_MIN = 4;
const RUN_ESCAPE = 15;

/** Nibbles that code the lengths of symbols lo..hi. */
function codebookNibbles(lengths: Uint8Array, lo: number, hi: number): number {
  let nibbles = 0;
  for (let s = lo; s <= hi; ) {
    if (lengths[s] !== 0) {
      nibbles++;
      s++;
      continue;
    }
    let run = 0;
    while (s + run <= hi && lengths[s + run] === 0 && run < 256) run++;
    nibbles += run >= RUN_MIN ? 3 : run;
    s += run;
  }
  return nibbles;
}

/** Bytes of the codebook for symbols lo..hi. */
export function codebookSize(lengths: Uint8Array, lo: number, hi: number): number {
  return 2 + ((codebookNibbles(lengths, lo, hi) + 1) >> 1);
}

/** Writes the codebook at out[pos..]; returns the position after it. */
export function writeCodebook(
  out: Uint8Array,
  pos: number,
  lengths: Uint8Array,
  lo: number,
  hi: number,
): number {
  out[pos++] = lo;
  out[pos++] = hi;
  let k = 0;
  const put = (nibble: number) => {
    if ((k & 1) === 0) out[pos + (k >> 1)] = nibble;
    else out[pos + (k >> 1)] |= nibble << 4;
    k++;
  };
  for (let s = lo; s <= hi; ) {
    if (lengths[s] !== 0) {
      put(lengths[s]);
      s++;
      continue;
    }
    let run = 0;
    while (s + run <= hi && lengths[s + run] === 0 && run < 256) run++;
    if (run >= RUN_MIN) {
      put(RUN_ESCAPE);
      put((run - 1) & 15);
      put((run - 1) >> 4);
    } else {
      for (let i = 0; i < run; i++) put(0);
    }
    s += run;
  }
  return pos + ((k + 1) >> 1);
}

interface Plan {
  type: number;
  size: number;
  n: number;
  lo: number;
  hi: number;
  totalBits: number;
}

const planLengths = new Uint8Array(256);
/**
 * Recent histograms and their plans (code lengths included). HIER asks for a stream's
 * size and then codes it with the same counts, and `auto` codes the same stream under
 * several candidates (a float layout's mantissa bytes are byte planes of the groupings):
 * the code lengths (package-merge, about 74 us for 256 symbols) are then computed once.
 */
const PLANS = 8;
const planHists = Array.from({ length: PLANS }, () => new Uint32Array(256));
const planLengthsOf = Array.from({ length: PLANS }, () => new Uint8Array(256));
const plans: (Plan | undefined)[] = new Array(PLANS).fill(undefined);
let nextPlan = 0;

function sameCounts(a: Uint32Array, b: Uint32Array): boolean {
  for (let s = 0; s < 256; s++) if (a[s] !== b[s]) return false;
  return true;
}

/** Decides the block type and its exact size; leaves the code lengths in planLengths. */
function plan(hist: Uint32Array, n: number): Plan {
  for (let k = 0; k < PLANS; k++) {
    const known = plans[k];
    if (known !== undefined && known.n === n && sameCounts(hist, planHists[k])) {
      planLengths.set(planLengthsOf[k]);
      return known;
    }
  }
  const p = planAfresh(hist, n);
  const k = nextPlan;
  nextPlan = (nextPlan + 1) % PLANS;
  planHists[k].set(hist);
  planLengthsOf[k].set(planLengths);
  plans[k] = p;
  return p;
}

/**
 * Whether a Huffman block of these counts cannot be smaller than `storedSize`, from a
 * lower bound on its size, without building its code: no prefix code spends fewer bits
 * than the counts' entropy (Kraft's inequality), and the codebook takes its two bytes
 * and a nibble per used symbol. Near-random streams (mantissa bytes, a float's low
 * byte plane) are stored anyway, and package-merge over their 256 symbols was most of
 * the cost of finding that out. With fewer than two symbols the block is never stored.
 */
function storedByEntropy(hist: Uint32Array, n: number, storedSize: number): boolean {
  let used = 0;
  let sum = 0;
  for (let s = 0; s < 256; s++) {
    const c = hist[s];
    if (c > 0) {
      used++;
      sum += c * Math.log2(c);
    }
  }
  if (used < 2) return false;
  // n log2 n - sum(c log2 c), less a margin far above the rounding of these sums.
  const entropy = n * Math.log2(n) - sum;
  const bits = entropy - 1e-9 * n * Math.log2(n) - 1;
  const floor = 1 + varintLength(n) + 2 + ((used + 1) >> 1) + LANES * fieldWidth(n) + bits / 8;
  return floor >= storedSize;
}

function planAfresh(hist: Uint32Array, n: number): Plan {
  const head = 1 + varintLength(n);
  const stored: Plan = { type: BLOCK_STORED, size: head + n, n, lo: 0, hi: 0, totalBits: 0 };
  if (n === 0) return stored;
  if (storedByEntropy(hist, n, stored.size)) {
    planLengths.fill(0);
    return stored;
  }
  const used = codeLengths(hist, planLengths);
  if (used === 1) {
    let s = 0;
    while (hist[s] === 0) s++;
    return { type: BLOCK_SINGLE, size: head + 1, n, lo: s, hi: s, totalBits: 0 };
  }
  let lo = 0;
  while (planLengths[lo] === 0) lo++;
  let hi = 255;
  while (planLengths[hi] === 0) hi--;
  let totalBits = 0;
  for (let s = lo; s <= hi; s++) totalBits += hist[s] * planLengths[s];
  const size = head + codebookSize(planLengths, lo, hi) + LANES * fieldWidth(n) + Math.ceil(totalBits / 8);
  if (size >= stored.size) return stored;
  return { type: BLOCK_HUFFMAN, size, n, lo, hi, totalBits };
}

function checkHistogram(hist: Uint32Array): number {
  if (hist.length !== 256) throw new MmhError("E_BAD_OPTION", "huffman: a histogram has 256 counts");
  let n = 0;
  for (let s = 0; s < 256; s++) n += hist[s];
  checkCount(n);
  return n;
}

/** Exact size in bytes of the block huffmanEncode() makes for data with this histogram. */
export function huffmanSizeFromHistogram(hist: Uint32Array): number {
  return plan(hist, checkHistogram(hist)).size;
}

// ---------------------------------------------------------------------------------------
// Encoding

function writeVarint(out: Uint8Array, pos: number, value: number): number {
  while (value >= 0x80) {
    out[pos++] = (value & 0x7f) | 0x80;
    value = Math.floor(value / 128);
  }
  out[pos++] = value;
  return pos;
}

const encCodes = new Uint16Array(256);
/** Codes and their lengths for a pair of symbols (first | second << 8). */
const pairCodes = new Int32Array(65536);
const pairLengths = new Uint8Array(65536);
const usedSymbols = new Uint8Array(256);
const laneEnds = new Float64Array(LANES);

/** Lane i holds symbols [i * q, min((i + 1) * q, n)), q = ceil(n / 4). */
export function laneSize(n: number): number {
  return Math.ceil(n / LANES);
}

/**
 * The bit writer's state between encodeRange() calls: pending bits (fewer than 32), their
 * count, and the index of the word they go to. In a typed array, not module variables: V8
 * tracks a module variable's value kind and de-optimises every function that reads it
 * when that changes.
 */
const encState = new Int32Array(3);
/** The bitstream as 32-bit words (little-endian, as HIER requires), grown as needed. */
const encScratch = { words: new Int32Array(1 << 12) };

/**
 * Appends the LSB-first codes of symbols[from..to) to the bitstream in `words`, from the
 * state in encState. With pairs, the symbols up to a 4-byte boundary are coded one at a
 * time, then each aligned 32-bit word of symbols as two pairs.
 *
 * Plain typed-array reads and writes only, no DataView calls: V8 marks a call site whose
 * inlined builtin once de-optimised as not to be speculated on again, and then calls the
 * builtin on every access. Maglev de-optimised this loop's DataView.setInt32 ("out of
 * bounds") on the warm-up's small blocks, and the optimised encoder then ran at a
 * quarter of its speed for the rest of the process (docs/ENGINE.md).
 *
 * Each step ORs a code of `len` (<= 22) bits into `acc` above its `nb` (< 32) pending
 * bits and stores acc at words[wi]; when 32 bits are full it moves to the next word, whose
 * first bits are the code's bits that did not fit: `(code >>> 1) >>> (31 - nb)`, which is
 * 0 when none spilled (then code < 2^len <= 2^(31 - nb)). No branch, one aligned store.
 */
function encodeRange(
  symbols: Uint8Array,
  from: number,
  to: number,
  words: Int32Array,
  usePairs: boolean,
): void {
  let acc = encState[0];
  let nb = encState[1];
  let wi = encState[2];
  const codes = encCodes;
  const lengths = planLengths;
  let i = from;
  if (usePairs && to - from >= 16) {
    for (; ((symbols.byteOffset + i) & 3) !== 0; i++) {
      const s = symbols[i];
      const code = codes[s];
      const spill = (code >>> 1) >>> (31 - nb);
      acc |= code << nb;
      nb += lengths[s];
      words[wi] = acc;
      const full = nb >>> 5;
      wi += full;
      acc = spill | (acc & (full - 1));
      nb &= 31;
    }
    const count = (to - i) >>> 2;
    const quads = new Int32Array(symbols.buffer, symbols.byteOffset + i, count);
    const pc = pairCodes;
    const pl = pairLengths;
    for (let j = 0; j < count; j++) {
      const w = quads[j];
      let pair = w & 0xffff;
      let code = pc[pair];
      let spill = (code >>> 1) >>> (31 - nb);
      acc |= code << nb;
      nb += pl[pair];
      words[wi] = acc;
      let full = nb >>> 5;
      wi += full;
      acc = spill | (acc & (full - 1));
      nb &= 31;
      pair = w >>> 16;
      code = pc[pair];
      spill = (code >>> 1) >>> (31 - nb);
      acc |= code << nb;
      nb += pl[pair];
      words[wi] = acc;
      full = nb >>> 5;
      wi += full;
      acc = spill | (acc & (full - 1));
      nb &= 31;
    }
    i += count * 4;
  }
  for (; i < to; i++) {
    const s = symbols[i];
    const code = codes[s];
    const spill = (code >>> 1) >>> (31 - nb);
    acc |= code << nb;
    nb += lengths[s];
    words[wi] = acc;
    const full = nb >>> 5;
    wi += full;
    acc = spill | (acc & (full - 1));
    nb &= 31;
  }
  words[wi] = acc;
  encState[0] = acc;
  encState[1] = nb;
  encState[2] = wi;
}

/**
 * Encodes a byte stream into a self-describing block: a compact codebook (code lengths),
 * the end offsets of 4 interleaved lanes, then the bitstream. Falls back to a stored or
 * single-symbol block when that is smaller. `knownHistogram`, when given, must be
 * histogram(symbols): it saves counting twice.
 */
export function huffmanEncode(symbols: Uint8Array, knownHistogram?: Uint32Array): Uint8Array {
  checkCount(symbols.length);
  // A caller that already counted the symbols passes the counts (they must be exact).
  const hist = knownHistogram ?? histogram(symbols);
  const p = plan(hist, symbols.length);
  const out = new Uint8Array(p.size);
  writeBlock(symbols, p, out);
  return out;
}

/**
 * huffmanEncode's block written into `out`, which must be exactly its length
 * (huffmanSizeFromHistogram(hist)): every byte of it is written, so it may be memory
 * reused from earlier blocks. `hist` must be histogram(symbols). For a caller that knows
 * where the block goes (HIER's payload), which saves a block of fresh memory and a copy.
 */
export function huffmanEncodeInto(symbols: Uint8Array, hist: Uint32Array, out: Uint8Array): void {
  checkCount(symbols.length);
  const p = plan(hist, symbols.length);
  if (out.length !== p.size)
    throw new MmhError("E_INTERNAL", `huffman: ${out.length} bytes given for a block of ${p.size}`);
  writeBlock(symbols, p, out);
}

/**
 * Mean code length (bits per symbol) up to which encodeLanes takes eight symbols a step
 * (with the pair table): on exponent streams of 2.5-5.5 bits it was 1.11-1.16x as fast
 * as four a step; on sign|mantissa bytes of 7.8 bits, where eight codes often pass the
 * 56 bits of one add, 0.89-0.94x (docs/ENGINE.md).
 */
const EIGHT_A_STEP_BITS = 6;

function writeBlock(symbols: Uint8Array, p: Plan, out: Uint8Array): void {
  const n = symbols.length;
  out[0] = p.type;
  let pos = writeVarint(out, 1, n);
  if (p.type === BLOCK_STORED) {
    out.set(symbols, pos);
    return;
  }
  if (p.type === BLOCK_SINGLE) {
    out[pos] = p.lo;
    return;
  }
  pos = writeCodebook(out, pos, planLengths, p.lo, p.hi);
  const w = fieldWidth(n);
  const fieldsAt = pos;
  const dataStart = pos + LANES * w;
  canonicalCodes(planLengths, encCodes);
  let used = 0;
  for (let s = 0; s < 256; s++) if (planLengths[s] !== 0) usedSymbols[used++] = s;
  // The pair table costs used^2 entries to build: worth it only for long enough input.
  const usePairs = used * used <= n;
  const k = loadedKernels();
  const bytesOut = out.length - dataStart;
  const wasmOut = k?.holds(symbols) ? k.alloc(bytesOut + 16) : -1;
  if (k && wasmOut >= 0) {
    // The symbols are in the kernels' memory (HIER's streams while it encodes): coded there.
    const mem = k.u8();
    const at = k.at;
    mem.set(planLengths, at.lengths);
    new Uint16Array(mem.buffer, at.codes, 256).set(encCodes);
    if (usePairs) {
      // The used symbols' list, then buildPairs' 1 KiB of scratch, in the histogram scratch.
      mem.set(usedSymbols.subarray(0, used), at.sub);
      k.x.buildPairs(
        at.codes,
        at.lengths,
        at.sub,
        used,
        p.lo,
        p.hi,
        at.pairCodes,
        at.pairLengths,
        at.sub + 1024,
      );
    }
    k.x.encodeLanes(
      symbols.byteOffset,
      n,
      wasmOut,
      at.codes,
      at.lengths,
      at.pairCodes,
      at.pairLengths,
      usePairs ? (p.totalBits <= EIGHT_A_STEP_BITS * n ? 2 : 1) : 0,
      at.lanes,
    );
    out.set(mem.subarray(wasmOut, wasmOut + bytesOut), dataStart);
    const ends = new Uint32Array(mem.buffer, at.lanes, LANES);
    for (let lane = 0; lane < LANES; lane++) laneEnds[lane] = ends[lane];
    k.release(wasmOut);
  } else {
    if (usePairs) buildPairs(pairCodes, pairLengths, used);
    encodeLanesTs(symbols, n, out, dataStart, p.totalBits, usePairs);
  }
  for (let lane = 0; lane < LANES; lane++) {
    let v = laneEnds[lane];
    for (let b = 0; b < w; b++) {
      out[fieldsAt + lane * w + b] = v & 0xff;
      v = Math.floor(v / 256);
    }
  }
  if (laneEnds[LANES - 1] !== p.totalBits) throw new MmhError("E_INTERNAL", "huffman: size mismatch");
}

/** The code, length and symbol of each used symbol, in usedSymbols' order (buildPairs). */
const usedCodes = new Int32Array(256);
const usedLengths = new Uint8Array(256);
const usedAt = new Int32Array(256);

/**
 * Codes and lengths of every pair of the first `used` symbols of usedSymbols. Row by row
 * of the second symbol, so the tables (320 KiB) are written in order, from the used
 * symbols' codes and lengths gathered first.
 */
function buildPairs(codes: Int32Array, lengths: Uint8Array, used: number): void {
  for (let a = 0; a < used; a++) {
    const s = usedSymbols[a];
    usedAt[a] = s;
    usedCodes[a] = encCodes[s];
    usedLengths[a] = planLengths[s];
  }
  for (let b = 0; b < used; b++) {
    const row = usedAt[b] << 8;
    const cb = usedCodes[b];
    const lb = usedLengths[b];
    for (let a = 0; a < used; a++) {
      const la = usedLengths[a];
      codes[row | usedAt[a]] = usedCodes[a] | (cb << la);
      lengths[row | usedAt[a]] = la + lb;
    }
  }
}

/** The bitstream of symbols as 4 lanes, written into out from dataStart; lane ends into laneEnds. */
function encodeLanesTs(
  symbols: Uint8Array,
  n: number,
  out: Uint8Array,
  dataStart: number,
  totalBits: number,
  usePairs: boolean,
): void {
  // The words hold the bitstream from its first bit: one more word than it fills.
  const need = (totalBits >>> 5) + 1;
  if (encScratch.words.length < need)
    encScratch.words = new Int32Array(Math.max(need, encScratch.words.length * 2));
  const words = encScratch.words;
  const q = laneSize(n);
  encState.fill(0);
  for (let lane = 0; lane < LANES; lane++) {
    const from = Math.min(n, lane * q);
    encodeRange(symbols, from, Math.min(n, from + q), words, usePairs);
    laneEnds[lane] = encState[2] * 32 + encState[1];
  }
  out.set(new Uint8Array(words.buffer, 0, out.length - dataStart), dataStart);
}

// ---------------------------------------------------------------------------------------
// Decoding

/** Single-symbol table: symbol | length << 8. */
const singleTable = new Uint16Array(1 << MAX_BITS);
/**
 * Multi-symbol table: s1 | s2 << 8 | s3 << 16 | count << 24 | bits << 26, where count
 * (1..3) symbols whose codes total `bits` (<= tableBits) fit in the lookup window.
 */
const multiTable = new Int32Array(1 << MAX_BITS);
const decLengths = new Uint8Array(256);
const decCodes = new Uint16Array(256);

/**
 * Checks the block type byte exists and the symbol count matches n; returns the position
 * after the count.
 */
export function readHeader(block: Uint8Array, n: number): number {
  if (block.length < 2) corrupt("truncated header");
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 4; i++) {
    const at = 1 + i;
    if (at >= block.length) corrupt("truncated header");
    const b = block[at];
    value += (b & 0x7f) * scale;
    scale *= 128;
    if ((b & 0x80) === 0) {
      if (i > 0 && b === 0) corrupt("non-minimal symbol count");
      if (value !== n) corrupt(`holds ${value} symbols, expected ${n}`);
      return at + 1;
    }
  }
  corrupt("symbol count over the limit");
}

export interface Codebook {
  /** Position after the codebook. */
  end: number;
  /** The longest code length. */
  maxLen: number;
  /** With allowSingle, the one symbol of a zero-length code, else -1. */
  single: number;
}

/**
 * Reads the code lengths at block[pos..] into `lengths` (256 entries) and validates
 * them: lengths at most 11, the range tight, the code complete (Kraft sum exactly 1),
 * at least two codes. With allowSingle, lo == hi with length nibble 0 stands for one
 * symbol coded in zero bits (lengths then all 0).
 */
export function readCodebook(
  block: Uint8Array,
  pos: number,
  lengths: Uint8Array,
  allowSingle = false,
): Codebook {
  if (pos + 2 > block.length) corrupt("truncated codebook");
  const lo = block[pos];
  const hi = block[pos + 1];
  if (hi < lo) corrupt("bad symbol range");
  pos += 2;
  lengths.fill(0);
  if (allowSingle && lo === hi) {
    if (pos >= block.length) corrupt("truncated codebook");
    if (block[pos] === 0) return { end: pos + 1, maxLen: 0, single: lo };
  }
  let k = 0;
  const end = block.length * 2;
  const nibble = (): number => {
    const at = pos * 2 + k++;
    if (at >= end) corrupt("truncated codebook");
    return (block[at >> 1] >> ((at & 1) * 4)) & 15;
  };
  let kraft = 0;
  let used = 0;
  let maxLen = 0;
  for (let s = lo; s <= hi; ) {
    const len = nibble();
    if (len === RUN_ESCAPE) {
      const run = (nibble() | (nibble() << 4)) + 1;
      if (run < RUN_MIN || s + run > hi + 1) corrupt("bad run in codebook");
      s += run;
      continue;
    }
    if (len > MAX_BITS) corrupt("code length over the limit");
    if (len > 0) {
      used++;
      kraft += 1 << (MAX_BITS - len);
      if (len > maxLen) maxLen = len;
    }
    lengths[s++] = len;
  }
  // An odd nibble count leaves a padding nibble, which must be zero.
  if ((k & 1) === 1 && block[pos + (k >> 1)] >> 4 !== 0) corrupt("nonzero codebook padding");
  const bytes = (k + 1) >> 1;
  if (lengths[lo] === 0 || lengths[hi] === 0) corrupt("symbol range not tight");
  if (used < 2) corrupt("fewer than two codes");
  if (kraft !== 1 << MAX_BITS) corrupt(kraft > 1 << MAX_BITS ? "over-subscribed code" : "incomplete code");
  return { end: pos + bytes, maxLen, single: -1 };
}

/**
 * Fills singleTable and multiTable for codes read into `lengths`, indexing tableBits bits
 * (the one-symbol table alone without `multi`: the kernels build theirs from it).
 */
export function buildDecodeTables(
  lengths: Uint8Array,
  tableBits: number,
  single: Uint16Array,
  multi: Int32Array | undefined,
  singleOffset = 0,
  multiOffset = 0,
): void {
  canonicalCodes(lengths, decCodes);
  const size = 1 << tableBits;
  for (let s = 0; s < 256; s++) {
    const len = lengths[s];
    if (len === 0) continue;
    const entry = s | (len << 8);
    for (let idx = decCodes[s]; idx < size; idx += 1 << len) single[singleOffset + idx] = entry;
  }
  if (!multi) return;
  for (let idx = 0; idx < size; idx++) {
    const e1 = single[singleOffset + idx];
    let bits = e1 >>> 8;
    let entry = e1 & 0xff;
    let count = 1;
    const e2 = single[singleOffset + (idx >>> bits)];
    const l2 = e2 >>> 8;
    if (bits + l2 <= tableBits) {
      entry |= (e2 & 0xff) << 8;
      count = 2;
      const e3 = single[singleOffset + (idx >>> (bits + l2))];
      bits += l2;
      const l3 = e3 >>> 8;
      if (bits + l3 <= tableBits) {
        entry |= (e3 & 0xff) << 16;
        count = 3;
        bits += l3;
      }
    }
    multi[multiOffset + idx] = entry | (count << 24) | (bits << 26);
  }
}

/** 32 bits from block at byte `at`, little-endian, zeros past the end. */
export function peekSafe(block: Uint8Array, at: number): number {
  const len = block.length;
  return (
    (at < len ? block[at] : 0) |
    (at + 1 < len ? block[at + 1] << 8 : 0) |
    (at + 2 < len ? block[at + 2] << 16 : 0) |
    (at + 3 < len ? block[at + 3] << 24 : 0)
  );
}

/**
 * Decodes lane symbols one at a time from bit `p` (relative to the block) into
 * out[o..oe). Returns the bit position after the last symbol.
 */
function decodeTail(
  block: Uint8Array,
  p: number,
  out: Uint8Array,
  o: number,
  oe: number,
  single: Uint16Array,
  mask: number,
): number {
  while (o < oe) {
    const e = single[(peekSafe(block, p >>> 3) >>> (p & 7)) & mask];
    out[o++] = e;
    p += e >>> 8;
  }
  return p;
}

const laneBit = new Int32Array(LANES + 1);

/**
 * Reads the 4 lane-end fields at block[pos..] and checks that they rise, fit the symbol
 * count and that the bitstream after them fills the block exactly with zero padding.
 * Leaves the absolute bit positions of the lane starts and the end in bits[0..4].
 */
export function readLaneEnds(block: Uint8Array, pos: number, n: number, bits: Int32Array): void {
  const w = fieldWidth(n);
  if (pos + LANES * w > block.length) corrupt("truncated lane table");
  const base = (pos + LANES * w) * 8;
  bits[0] = base;
  for (let lane = 0; lane < LANES; lane++) {
    let v = 0;
    for (let b = w - 1; b >= 0; b--) v = v * 256 + block[pos + lane * w + b];
    // v <= n * 11 < 2^31 - base, so the sum fits an Int32Array.
    if (v > n * MAX_BITS || base + v < bits[lane]) corrupt("bad lane offsets");
    bits[lane + 1] = base + v;
  }
  const endBit = bits[LANES];
  if (Math.ceil(endBit / 8) !== block.length) corrupt("bitstream size does not match the block");
  if ((endBit & 7) !== 0 && block[block.length - 1] >>> (endBit & 7) !== 0) corrupt("nonzero padding");
}

/**
 * Decodes a block into exactly out.length symbols. Throws MmhError E_CORRUPT on any
 * malformed block; never reads or writes out of bounds.
 */
export function huffmanDecode(block: Uint8Array, out: Uint8Array): void {
  const n = out.length;
  checkCount(n);
  const pos = readHeader(block, n);
  const type = block[0];
  if (type === BLOCK_STORED) {
    if (block.length !== pos + n) corrupt("stored block has the wrong size");
    out.set(block.subarray(pos));
    return;
  }
  if (type === BLOCK_SINGLE) {
    if (n === 0 || block.length !== pos + 1) corrupt("bad single-symbol block");
    out.fill(block[pos]);
    return;
  }
  if (type !== BLOCK_HUFFMAN) corrupt(`unknown block type ${type}`);
  decodeLanes(block, out, prepareLanes(block, pos, n));
}

/**
 * Reads a Huffman block's codebook and lane table from `pos` (after its header), checks
 * them, and builds the decode tables; returns the table's index width in bits.
 */
function prepareLanes(block: Uint8Array, pos: number, n: number): number {
  const book = readCodebook(block, pos, decLengths);
  readLaneEnds(block, book.end, n, laneBit);
  // Small blocks use a table just wide enough for the longest code (cheaper to build).
  const tableBits = n >= 2048 ? MAX_BITS : book.maxLen;
  buildDecodeTables(decLengths, tableBits, singleTable, multiTable);
  return tableBits;
}

/**
 * Checks a Huffman block (header included) of n symbols as huffmanDecode does, reads its
 * code lengths into `lengths` (256 entries) and leaves the lane start bits and the end
 * bit in bits[0..4]. Returns the decode table's index width in bits. For the kernels,
 * which build the tables themselves (buildSingle, buildQuad).
 */
export function checkHuffmanBlock(
  block: Uint8Array,
  n: number,
  lengths: Uint8Array,
  bits: Int32Array | Uint32Array,
): number {
  checkCount(n);
  const pos = readHeader(block, n);
  if (block[0] !== BLOCK_HUFFMAN) corrupt(`block type ${block[0]} where a Huffman block is needed`);
  const book = readCodebook(block, pos, lengths);
  readLaneEnds(block, book.end, n, laneBit);
  for (let i = 0; i <= LANES; i++) bits[i] = laneBit[i];
  // Small blocks use a table just wide enough for the longest code, as prepareLanes does.
  return n >= 2048 ? MAX_BITS : book.maxLen;
}

/** The kernels' wide table: 12 bits, 4 lookups a read (assembly/decode.ts). */
export const WIDE_TABLE_BITS = 12;
/**
 * Where the wide table pays: streams of WIDE_MIN_SYMBOLS or more, of at least
 * WIDE_MIN_BITS and less than WIDE_MAX_BITS bits a symbol on average; and, decoded with
 * up to 2 symbols a lookup (twoSymbolLookups), from TWO_WIDE_MIN_SYMBOLS of at least
 * TWO_MIN_BITS.
 */
const WIDE_MIN_SYMBOLS = 131_072;
const WIDE_MIN_BITS = 4;
const WIDE_MAX_BITS = 7;
const TWO_WIDE_MIN_SYMBOLS = 32_768;
/** From this many bits a symbol on average, the kernels' 12-bit lookups take 2 symbols at most. */
const TWO_MIN_BITS = 5;

/**
 * The table width the kernels decode a checked block with: checkHuffmanBlock's, or the
 * wide table's for a long stream of middling bits a symbol (`bits`: checkHuffmanBlock's
 * lane bits), where a 12-bit lookup often holds two codes that an 11-bit one does not,
 * enough to pay for a table twice the size. Below that (a lookup holds 3 or 4 symbols
 * either way, 4 at most) and above it (two codes seldom fit in 12 bits) the 11-bit table
 * is faster (docs/ENGINE.md). Streams of TWO_MIN_BITS or more, decoded with up to 2
 * symbols a lookup at this width (twoSymbolLookups: a table half the size, quicker to
 * build), take it from TWO_WIDE_MIN_SYMBOLS on. The bytes are the same either way.
 */
export function kernelTableBits(tableBits: number, n: number, bits: Int32Array | Uint32Array): number {
  if (tableBits !== MAX_BITS || n < TWO_WIDE_MIN_SYMBOLS) return tableBits;
  const total = bits[LANES] - bits[0];
  const least = n < WIDE_MIN_SYMBOLS ? TWO_MIN_BITS : WIDE_MIN_BITS;
  return total >= least * n && total < WIDE_MAX_BITS * n ? WIDE_TABLE_BITS : tableBits;
}

/**
 * Whether the kernels decode a checked block of n symbols (`bits`: checkHuffmanBlock's
 * lane bits) at the wide width `tableBits` (kernelTableBits') with decodeLanesTwo, up to 2
 * symbols a lookup from buildTwo's table, instead of buildQuad's: from TWO_MIN_BITS bits
 * a symbol on average a 12-bit lookup seldom holds a third code, and the 2-symbol table
 * is half the size and quicker to build (docs/ENGINE.md). The bytes are the same either way.
 */
export function twoSymbolLookups(n: number, bits: Int32Array | Uint32Array, tableBits: number): boolean {
  return tableBits === WIDE_TABLE_BITS && bits[LANES] - bits[0] >= TWO_MIN_BITS * n;
}

/** From this many bits a symbol on average, the kernels decode one symbol a lookup. */
const ONE_SYMBOL_MIN_BITS = 7;

/**
 * Whether the kernels decode a checked block of n symbols (`bits`: checkHuffmanBlock's
 * lane bits) with decodeLanesSingle, one symbol a lookup from the one-symbol table and
 * no 4-symbol table built: from ONE_SYMBOL_MIN_BITS bits a symbol on average, where a
 * lookup of buildQuad's table seldom holds a second code, a lookup that writes one
 * symbol at a fixed place is faster (docs/ENGINE.md); and from TWO_MIN_BITS for blocks
 * too short for the 2-symbol 12-bit decode (under TWO_WIDE_MIN_SYMBOLS), where the
 * one-symbol loop beats buildQuad's 11-bit table too. The bytes are the same either way.
 */
export function oneSymbolLookups(n: number, bits: Int32Array | Uint32Array): boolean {
  const total = bits[LANES] - bits[0];
  return total >= ONE_SYMBOL_MIN_BITS * n || (n < TWO_WIDE_MIN_SYMBOLS && total >= TWO_MIN_BITS * n);
}

/**
 * Whether the kernels decode a block of n symbols one symbol a lookup (decodeLanesSingle)
 * instead of with buildQuad's table: below 4 symbols an entry of the tableBits table,
 * building the multi-symbol table takes longer than its lookups save (docs/ENGINE.md).
 */
export function oneSymbolTable(n: number, tableBits: number): boolean {
  return n < 4 << tableBits;
}

/**
 * checkHuffmanBlock, then the decode tables built into `single` and `multi` (`single`
 * alone without `multi`). Returns the table's index width in bits.
 */
export function prepareHuffmanBlock(
  block: Uint8Array,
  n: number,
  single: Uint16Array,
  multi: Int32Array | undefined,
  bits: Int32Array | Uint32Array,
): number {
  const tableBits = checkHuffmanBlock(block, n, decLengths, bits);
  buildDecodeTables(decLengths, tableBits, single, multi);
  return tableBits;
}

/** BF16 bits of a sign|mantissa byte (sign at bit 7, mantissa bits 0..6): the sign to bit 15. */
const SIGN_MANTISSA = new Uint16Array(256);
for (let s = 0; s < 256; s++) SIGN_MANTISSA[s] = ((s & 0x80) << 8) | (s & 0x7f);

/**
 * Decodes a Huffman block of exponent bytes straight into BF16 words, each merged with
 * its sign|mantissa byte: out[i] = sign << 15 | exponent << 7 | mantissa, where byte i of
 * `signMantissa` holds the sign at bit 7 and the mantissa in bits 0..6 (HIER's bf16
 * layout). One pass instead of decoding the exponents and then merging the two streams.
 * Checks the block exactly as huffmanDecode does; `signMantissa` and `out` hold n values.
 */
export function huffmanDecodeBf16(block: Uint8Array, signMantissa: Uint8Array, out: Uint16Array): void {
  const n = out.length;
  if (signMantissa.length !== n) throw new MmhError("E_INTERNAL", "huffman: stream lengths differ");
  checkCount(n);
  const pos = readHeader(block, n);
  if (block[0] !== BLOCK_HUFFMAN) corrupt(`block type ${block[0]} where a Huffman block is needed`);
  decodeLanesBf16(block, signMantissa, out, prepareLanes(block, pos, n));
}

/**
 * How many steps of a 4-lane loop keep every lane's reads inside the block and its writes
 * inside the lane, given each lane's room (symbols left before its end) and the bits
 * left before the last safe read: a step consumes at most tableBits bits and writes 3
 * symbols per lane. Integer division truncating toward zero: a negative margin gives <= 0.
 */
export function safeSteps(
  room0: number,
  room1: number,
  room2: number,
  room3: number,
  bits: number,
  tableBits: number,
): number {
  return Math.min(
    ((room0 - 1) / 3) | 0,
    ((room1 - 1) / 3) | 0,
    ((room2 - 1) / 3) | 0,
    ((room3 - 1) / 3) | 0,
    (bits / tableBits) | 0,
  );
}

/** E_CORRUPT unless each lane's bits ended where the next lane's start (bits[1..4], see readLaneEnds). */
export function checkLanesEnded(bits: Int32Array, p0: number, p1: number, p2: number, p3: number): void {
  if (p0 !== bits[1] || p1 !== bits[2] || p2 !== bits[3] || p3 !== bits[4]) {
    corrupt("a lane's bitstream does not end where the block says");
  }
}

function decodeLanes(block: Uint8Array, out: Uint8Array, tableBits: number): void {
  const n = out.length;
  const q = laneSize(n);
  const mask = (1 << tableBits) - 1;
  const multi = multiTable;
  const single = singleTable;
  const dv = new DataView(block.buffer, block.byteOffset, block.byteLength);
  const ov = new DataView(out.buffer, out.byteOffset, out.byteLength);
  let p0 = laneBit[0];
  let p1 = laneBit[1];
  let p2 = laneBit[2];
  let p3 = laneBit[3];
  let o0 = 0;
  let o1 = Math.min(n, q);
  let o2 = Math.min(n, 2 * q);
  let o3 = Math.min(n, 3 * q);
  const e0 = o1;
  const e1 = o2;
  const e2 = o3;
  const e3 = n;
  // A read at bit p touches bytes (p >>> 3) .. + 3, so p <= readLimit keeps it inside.
  const readLimit = (block.length - 4) * 8;
  for (;;) {
    let k = safeSteps(e0 - o0, e1 - o1, e2 - o2, e3 - o3, readLimit - Math.max(p0, p1, p2, p3), tableBits);
    if (k < 4) break;
    for (; k > 0; k--) {
      const a = multi[(dv.getUint32(p0 >>> 3, true) >>> (p0 & 7)) & mask];
      const b = multi[(dv.getUint32(p1 >>> 3, true) >>> (p1 & 7)) & mask];
      const c = multi[(dv.getUint32(p2 >>> 3, true) >>> (p2 & 7)) & mask];
      const d = multi[(dv.getUint32(p3 >>> 3, true) >>> (p3 & 7)) & mask];
      ov.setInt32(o0, a, true);
      ov.setInt32(o1, b, true);
      ov.setInt32(o2, c, true);
      ov.setInt32(o3, d, true);
      o0 += (a >>> 24) & 3;
      o1 += (b >>> 24) & 3;
      o2 += (c >>> 24) & 3;
      o3 += (d >>> 24) & 3;
      p0 += a >>> 26;
      p1 += b >>> 26;
      p2 += c >>> 26;
      p3 += d >>> 26;
    }
  }
  p0 = decodeTail(block, p0, out, o0, e0, single, mask);
  p1 = decodeTail(block, p1, out, o1, e1, single, mask);
  p2 = decodeTail(block, p2, out, o2, e2, single, mask);
  p3 = decodeTail(block, p3, out, o3, e3, single, mask);
  checkLanesEnded(laneBit, p0, p1, p2, p3);
}

/**
 * decodeLanes, each symbol written as the BF16 word it makes with its sign|mantissa byte
 * (see huffmanDecodeBf16). A lookup gives up to 3 symbols; all 3 words are written, and
 * those past the lookup's count are written again by the next one, as in decodeLanes.
 */
function decodeLanesBf16(block: Uint8Array, sm: Uint8Array, out: Uint16Array, tableBits: number): void {
  const n = out.length;
  const q = laneSize(n);
  const mask = (1 << tableBits) - 1;
  const multi = multiTable;
  const low = SIGN_MANTISSA;
  const dv = new DataView(block.buffer, block.byteOffset, block.byteLength);
  let p0 = laneBit[0];
  let p1 = laneBit[1];
  let p2 = laneBit[2];
  let p3 = laneBit[3];
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
    let k = safeSteps(e0 - o0, e1 - o1, e2 - o2, e3 - o3, readLimit - Math.max(p0, p1, p2, p3), tableBits);
    if (k < 4) break;
    for (; k > 0; k--) {
      const a = multi[(dv.getUint32(p0 >>> 3, true) >>> (p0 & 7)) & mask];
      const b = multi[(dv.getUint32(p1 >>> 3, true) >>> (p1 & 7)) & mask];
      const c = multi[(dv.getUint32(p2 >>> 3, true) >>> (p2 & 7)) & mask];
      const d = multi[(dv.getUint32(p3 >>> 3, true) >>> (p3 & 7)) & mask];
      // Symbol j of an entry sits at bits 8j..8j+7; shifted to bits 7..14 it is the exponent.
      out[o0] = low[sm[o0]] | ((a << 7) & 0x7f80);
      out[o0 + 1] = low[sm[o0 + 1]] | ((a >>> 1) & 0x7f80);
      out[o0 + 2] = low[sm[o0 + 2]] | ((a >>> 9) & 0x7f80);
      out[o1] = low[sm[o1]] | ((b << 7) & 0x7f80);
      out[o1 + 1] = low[sm[o1 + 1]] | ((b >>> 1) & 0x7f80);
      out[o1 + 2] = low[sm[o1 + 2]] | ((b >>> 9) & 0x7f80);
      out[o2] = low[sm[o2]] | ((c << 7) & 0x7f80);
      out[o2 + 1] = low[sm[o2 + 1]] | ((c >>> 1) & 0x7f80);
      out[o2 + 2] = low[sm[o2 + 2]] | ((c >>> 9) & 0x7f80);
      out[o3] = low[sm[o3]] | ((d << 7) & 0x7f80);
      out[o3 + 1] = low[sm[o3 + 1]] | ((d >>> 1) & 0x7f80);
      out[o3 + 2] = low[sm[o3 + 2]] | ((d >>> 9) & 0x7f80);
      o0 += (a >>> 24) & 3;
      o1 += (b >>> 24) & 3;
      o2 += (c >>> 24) & 3;
      o3 += (d >>> 24) & 3;
      p0 += a >>> 26;
      p1 += b >>> 26;
      p2 += c >>> 26;
      p3 += d >>> 26;
    }
  }
  p0 = decodeTailBf16(block, p0, sm, out, o0, e0, mask);
  p1 = decodeTailBf16(block, p1, sm, out, o1, e1, mask);
  p2 = decodeTailBf16(block, p2, sm, out, o2, e2, mask);
  p3 = decodeTailBf16(block, p3, sm, out, o3, e3, mask);
  checkLanesEnded(laneBit, p0, p1, p2, p3);
}

/** decodeTail for huffmanDecodeBf16: one symbol at a time, merged into out[o..oe). */
function decodeTailBf16(
  block: Uint8Array,
  p: number,
  sm: Uint8Array,
  out: Uint16Array,
  o: number,
  oe: number,
  mask: number,
): number {
  const single = singleTable;
  while (o < oe) {
    const e = single[(peekSafe(block, p >>> 3) >>> (p & 7)) & mask];
    out[o] = SIGN_MANTISSA[sm[o]] | ((e & 0xff) << 7);
    o++;
    p += e >>> 8;
  }
  return p;
}
