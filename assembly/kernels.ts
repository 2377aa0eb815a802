/**
 * HIER's hot loops as WebAssembly (AssemblyScript, SIMD through v128), built by
 * `npm run build` (scripts/kernels.ts) into dist/kernels.wasm. Every function
 * works on raw addresses in this module's memory, which src/codecs/hier/kernels.ts lays
 * out and grows; each has a TypeScript twin in src/codecs/hier/ that gives the same bytes
 * (test/kernels.test.ts). Nothing here allocates.
 */

/** The first address free for the caller: everything below belongs to this module. */
export function heapBase(): usize {
  return __heap_base;
}

// ---------------------------------------------------------------------------------------
// Histogram

/** Adds the counts of bytes src[0..n) to counts (u32[256]). */
export function histogram(src: usize, n: u32, counts: usize): void {
  memory.fill(SUBS, 0, SUBS_BYTES);
  countBytes(src, n);
  foldCounts(counts);
}

// ---------------------------------------------------------------------------------------
// Repeats (hier.ts, repeatsWorthAProbe)

/**
 * Whether at least `enough` of the positions 0..n-8 of src start 8 bytes equal to those
 * at the position last hashed to the same of 2048 slots (table: u32[2048] scratch, each
 * slot 1 + that position, or 0). Without a branch per position: an empty slot compares
 * position 0 and counts nothing.
 */
export function repeatsWorthAProbe(src: usize, n: u32, enough: u32, table: usize): bool {
  if (n < 8) return false;
  memory.fill(table, 0, 8192);
  let hits: u32 = 0;
  const last = n - 8;
  for (let i: u32 = 0; i <= last; i++) {
    const w = load<u64>(src + i);
    const a = <u32>w;
    const b = <u32>(w >>> 32);
    const h = ((a * 0x9e3779b1) ^ ((b ^ (a >>> 15)) * 0x85ebca77)) >>> 21;
    const slot = table + ((<usize>h) << 2);
    const taken = load<u32>(slot);
    const j = select<u32>(taken - 1, 0, taken !== 0);
    hits += <u32>(load<u64>(src + j) === w) & <u32>(taken !== 0);
    if (hits >= enough) return true;
    store<u32>(slot, i + 1);
  }
  return false;
}

// ---------------------------------------------------------------------------------------
// Stream statistics (hier.ts: neighbourShare, blockTableShare)

/**
 * How many positions i of `windows` windows of `length` bytes (the w-th from src + w *
 * step) have the byte before them in the window equal to theirs: 16 neighbours a step,
 * the matches counted in byte lanes and added up every 255 steps at most.
 */
export function equalNeighbours(src: usize, windows: u32, length: u32, step: u32): u32 {
  let equal: u32 = 0;
  for (let w: u32 = 0; w < windows; w++) {
    const start = src + <usize>(w * step);
    const end = start + <usize>length;
    let p = start + 1;
    while (p + 16 <= end) {
      let lanes = i8x16.splat(0);
      for (let steps = 0; steps < 255 && p + 16 <= end; steps++, p += 16)
        lanes = i8x16.sub(lanes, i8x16.eq(v128.load(p), v128.load(p - 1)));
      const sums = i32x4.extadd_pairwise_i16x8_u(i16x8.extadd_pairwise_i8x16_u(lanes));
      equal +=
        <u32>i32x4.extract_lane(sums, 0) +
        <u32>i32x4.extract_lane(sums, 1) +
        <u32>i32x4.extract_lane(sums, 2) +
        <u32>i32x4.extract_lane(sums, 3);
    }
    for (; p < end; p++) equal += <u32>(load<u8>(p) === load<u8>(p - 1));
  }
  return equal;
}

/**
 * Adds the counts of the bytes src[0], src[step], src[2 * step] ... below src + n to
 * counts (u32[256]), eight a step into eight of the sub-histograms, so that a run of one
 * value does not wait on one counter.
 */
export function countStrided(src: usize, n: u32, step: u32, counts: usize): void {
  memory.fill(SUBS, 0, 8192);
  const s = <usize>step;
  const end = src + <usize>n;
  let p = src;
  for (; p + 7 * s < end; p += 8 * s) {
    const a0 = (<usize>load<u8>(p)) << 2;
    const a1 = (<usize>load<u8>(p + s)) << 2;
    const a2 = (<usize>load<u8>(p + 2 * s)) << 2;
    const a3 = (<usize>load<u8>(p + 3 * s)) << 2;
    const a4 = (<usize>load<u8>(p + 4 * s)) << 2;
    const a5 = (<usize>load<u8>(p + 5 * s)) << 2;
    const a6 = (<usize>load<u8>(p + 6 * s)) << 2;
    const a7 = (<usize>load<u8>(p + 7 * s)) << 2;
    store<u32>(a0, load<u32>(a0, SUBS) + 1, SUBS);
    store<u32>(a1, load<u32>(a1, SUBS + 1024) + 1, SUBS + 1024);
    store<u32>(a2, load<u32>(a2, SUBS + 2048) + 1, SUBS + 2048);
    store<u32>(a3, load<u32>(a3, SUBS + 3072) + 1, SUBS + 3072);
    store<u32>(a4, load<u32>(a4, SUBS + 4096) + 1, SUBS + 4096);
    store<u32>(a5, load<u32>(a5, SUBS + 5120) + 1, SUBS + 5120);
    store<u32>(a6, load<u32>(a6, SUBS + 6144) + 1, SUBS + 6144);
    store<u32>(a7, load<u32>(a7, SUBS + 7168) + 1, SUBS + 7168);
  }
  for (; p < end; p += s) {
    const a = (<usize>load<u8>(p)) << 2;
    store<u32>(a, load<u32>(a, SUBS) + 1, SUBS);
  }
  for (let v: usize = 0; v < 1024; v += 16) {
    let sum = v128.load(counts + v);
    for (let k: usize = 0; k < 8192; k += 1024) sum = i32x4.add(sum, v128.load(SUBS + k + v));
    v128.store(counts + v, sum);
  }
}

/** Elements a fused split writes before it counts their exponents (in the cache still). */
const COUNT_BLOCK: u32 = 4096;

/**
 * Sixteen sub-histograms (u32[256] each) at a fixed address below the module's own data
 * (scripts/build.ts starts that at 48 KiB, above them and decode.ts's table): an update's
 * address is then the scaled byte with the table's address as the access's constant
 * offset, with no add. Byte k of each 16 is counted into the k-th, so that a run of one
 * value updates sixteen counters in turn, not one (an update waits for the last to its
 * address).
 */
const SUBS: usize = 32768;
const SUBS_BYTES: usize = 16384;
const SUBS_END = 32768 + 16384;
// @ts-expect-error: AssemblyScript's compile-time constant and error
if (ASC_MEMORY_BASE < SUBS_END) ERROR("kernels.ts: build with --memoryBase 49152 (SUBS)");

/** Counts the bytes p[0..n) into the sub-histograms at SUBS (added to). */
function countBytes(p: usize, n: u32): void {
  const bulk = <usize>(n & ~15);
  for (let j: usize = 0; j < bulk; j += 16) {
    const w0 = load<u64>(p + j);
    const w1 = load<u64>(p + j + 8);
    const a = <usize>(<u32>w0);
    const b = <usize>(<u32>(w0 >>> 32));
    const c = <usize>(<u32>w1);
    const d = <usize>(<u32>(w1 >>> 32));
    // Each byte scaled by 4 (a u32 counter): (x >>> 8k - 2) & 0x3fc, or (x & 255) << 2.
    const a0 = (a & 255) << 2;
    const a1 = (a >>> 6) & 0x3fc;
    const a2 = (a >>> 14) & 0x3fc;
    const a3 = (a >>> 22) & 0x3fc;
    store<u32>(a0, load<u32>(a0, SUBS) + 1, SUBS);
    store<u32>(a1, load<u32>(a1, SUBS + 1024) + 1, SUBS + 1024);
    store<u32>(a2, load<u32>(a2, SUBS + 2048) + 1, SUBS + 2048);
    store<u32>(a3, load<u32>(a3, SUBS + 3072) + 1, SUBS + 3072);
    const b0 = (b & 255) << 2;
    const b1 = (b >>> 6) & 0x3fc;
    const b2 = (b >>> 14) & 0x3fc;
    const b3 = (b >>> 22) & 0x3fc;
    store<u32>(b0, load<u32>(b0, SUBS + 4096) + 1, SUBS + 4096);
    store<u32>(b1, load<u32>(b1, SUBS + 5120) + 1, SUBS + 5120);
    store<u32>(b2, load<u32>(b2, SUBS + 6144) + 1, SUBS + 6144);
    store<u32>(b3, load<u32>(b3, SUBS + 7168) + 1, SUBS + 7168);
    const c0 = (c & 255) << 2;
    const c1 = (c >>> 6) & 0x3fc;
    const c2 = (c >>> 14) & 0x3fc;
    const c3 = (c >>> 22) & 0x3fc;
    store<u32>(c0, load<u32>(c0, SUBS + 8192) + 1, SUBS + 8192);
    store<u32>(c1, load<u32>(c1, SUBS + 9216) + 1, SUBS + 9216);
    store<u32>(c2, load<u32>(c2, SUBS + 10240) + 1, SUBS + 10240);
    store<u32>(c3, load<u32>(c3, SUBS + 11264) + 1, SUBS + 11264);
    const d0 = (d & 255) << 2;
    const d1 = (d >>> 6) & 0x3fc;
    const d2 = (d >>> 14) & 0x3fc;
    const d3 = (d >>> 22) & 0x3fc;
    store<u32>(d0, load<u32>(d0, SUBS + 12288) + 1, SUBS + 12288);
    store<u32>(d1, load<u32>(d1, SUBS + 13312) + 1, SUBS + 13312);
    store<u32>(d2, load<u32>(d2, SUBS + 14336) + 1, SUBS + 14336);
    store<u32>(d3, load<u32>(d3, SUBS + 15360) + 1, SUBS + 15360);
  }
  for (let j = bulk; j < <usize>n; j++) {
    const a = (<usize>load<u8>(p + j)) << 2;
    store<u32>(a, load<u32>(a, SUBS) + 1, SUBS);
  }
}

/** counts[s] += the sixteen sub-histograms' counts of s. */
function foldCounts(counts: usize): void {
  for (let s: usize = 0; s < 1024; s += 16) {
    let v = v128.load(counts + s);
    for (let k: usize = 0; k < SUBS_BYTES; k += 1024) v = i32x4.add(v, v128.load(SUBS + k + s));
    v128.store(counts + s, v);
  }
}

// ---------------------------------------------------------------------------------------
// Field layouts (layouts.ts): split and merge, 16 elements per step

/**
 * BF16 split: x -> exponent (x >> 7) & 0xff and sign|mantissa (x >> 8) & 0x80 | x & 0x7f.
 * With counts != 0 the exponents are also counted into counts (u32[256], added to).
 */
export function splitBf16(src: usize, n: u32, e: usize, sm: usize, counts: usize): void {
  const low7 = i16x8.splat(0x7f);
  const sign = i16x8.splat(0x80);
  const byte = i16x8.splat(0xff);
  if (counts) memory.fill(SUBS, 0, SUBS_BYTES);
  let i: u32 = 0;
  while (i + 16 <= n) {
    // A block split, then its exponents counted while they are in the cache.
    const from = i;
    const end = min(n & ~15, i + COUNT_BLOCK);
    for (; i < end; i += 16) {
      const a = v128.load(src + ((<usize>i) << 1));
      const b = v128.load(src + ((<usize>i) << 1) + 16);
      const ea = v128.and(i16x8.shr_u(a, 7), byte);
      const eb = v128.and(i16x8.shr_u(b, 7), byte);
      const sa = v128.or(v128.and(i16x8.shr_u(a, 8), sign), v128.and(a, low7));
      const sb = v128.or(v128.and(i16x8.shr_u(b, 8), sign), v128.and(b, low7));
      v128.store(e + i, i8x16.narrow_i16x8_u(ea, eb));
      v128.store(sm + i, i8x16.narrow_i16x8_u(sa, sb));
    }
    if (counts) countBytes(e + from, i - from);
  }
  for (; i < n; i++) {
    const x = <u32>load<u16>(src + ((<usize>i) << 1));
    const exponent = (x >>> 7) & 0xff;
    store<u8>(e + i, exponent);
    store<u8>(sm + i, ((x >>> 8) & 0x80) | (x & 0x7f));
    if (counts) {
      const at = (<usize>exponent) << 2;
      store<u32>(at, load<u32>(at, SUBS) + 1, SUBS);
    }
  }
  if (counts) foldCounts(counts);
}

/** BF16 merge: out[i] = (sm & 0x80) << 8 | e << 7 | sm & 0x7f, as u16 words. */
export function mergeBf16(e: usize, sm: usize, n: u32, out: usize): void {
  const top = i8x16.splat(-128);
  let i: u32 = 0;
  for (; i + 16 <= n; i += 16) {
    const ev = v128.load(e + i);
    const sv = v128.load(sm + i);
    // Low byte: exponent bit 0 over the mantissa; high byte: the sign over exponent >> 1.
    // Shifts of 16-bit lanes (one x64 instruction; a byte shift is several): the bits
    // they carry into the neighbouring byte are the ones bitselect drops.
    const lo = v128.bitselect(i16x8.shl(ev, 7), sv, top);
    const hi = v128.bitselect(sv, i16x8.shr_u(ev, 1), top);
    const p = out + ((<usize>i) << 1);
    v128.store(p, i8x16.shuffle(lo, hi, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23));
    v128.store(p + 16, i8x16.shuffle(lo, hi, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31));
  }
  for (; i < n; i++) {
    const s = <u32>load<u8>(sm + i);
    store<u16>(out + ((<usize>i) << 1), ((s & 0x80) << 8) | ((<u32>load<u8>(e + i)) << 7) | (s & 0x7f));
  }
}

/**
 * F32 split: x -> exponent (x >>> 23) & 0xff, mantissa bytes 0 and 1, and sign|mantissa
 * top 7 bits (x >>> 16) & 0x7f | (x >>> 24) & 0x80. Exponents counted as in splitBf16.
 */
export function splitF32(src: usize, n: u32, e: usize, m0: usize, m1: usize, m2: usize, counts: usize): void {
  const top = i8x16.splat(-128);
  if (counts) memory.fill(SUBS, 0, SUBS_BYTES);
  let i: u32 = 0;
  while (i + 16 <= n) {
    // A block split, then its exponents counted while they are in the cache (as splitBf16).
    const from = i;
    const end = min(n & ~15, i + COUNT_BLOCK);
    for (; i < end; i += 16) {
      const p = src + ((<usize>i) << 2);
      const v0 = v128.load(p);
      const v1 = v128.load(p + 16);
      const v2 = v128.load(p + 32);
      const v3 = v128.load(p + 48);
      // Bytes 0,1 then 2,3 of words 0..7, then of words 8..15.
      const a = i8x16.shuffle(v0, v1, 0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
      const b = i8x16.shuffle(v0, v1, 2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31);
      const c = i8x16.shuffle(v2, v3, 0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
      const d = i8x16.shuffle(v2, v3, 2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31);
      const b0 = i8x16.shuffle(a, c, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
      const b1 = i8x16.shuffle(a, c, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
      const b2 = i8x16.shuffle(b, d, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
      const b3 = i8x16.shuffle(b, d, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
      const ev = v128.or(i8x16.shl(b3, 1), i8x16.shr_u(b2, 7));
      v128.store(e + i, ev);
      v128.store(m0 + i, b0);
      v128.store(m1 + i, b1);
      v128.store(m2 + i, v128.bitselect(b3, b2, top));
    }
    if (counts) countBytes(e + from, i - from);
  }
  for (; i < n; i++) {
    const x = load<u32>(src + ((<usize>i) << 2));
    const exponent = (x >>> 23) & 0xff;
    store<u8>(e + i, exponent);
    store<u8>(m0 + i, x & 0xff);
    store<u8>(m1 + i, (x >>> 8) & 0xff);
    store<u8>(m2 + i, ((x >>> 16) & 0x7f) | ((x >>> 24) & 0x80));
    if (counts) {
      const at = (<usize>exponent) << 2;
      store<u32>(at, load<u32>(at, SUBS) + 1, SUBS);
    }
  }
  if (counts) foldCounts(counts);
}

/** Interleaves byte planes b0..b3 (16 bytes each) into 16 little-endian words at p. */
function store4(p: usize, b0: v128, b1: v128, b2: v128, b3: v128): void {
  const lo01 = i8x16.shuffle(b0, b1, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const hi01 = i8x16.shuffle(b0, b1, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const lo23 = i8x16.shuffle(b2, b3, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const hi23 = i8x16.shuffle(b2, b3, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  v128.store(p, i8x16.shuffle(lo01, lo23, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23));
  v128.store(p + 16, i8x16.shuffle(lo01, lo23, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31));
  v128.store(p + 32, i8x16.shuffle(hi01, hi23, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23));
  v128.store(p + 48, i8x16.shuffle(hi01, hi23, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31));
}

/** F32 merge: the inverse of splitF32, into u32 words at out. */
export function mergeF32(e: usize, m0: usize, m1: usize, m2: usize, n: u32, out: usize): void {
  const top = i8x16.splat(-128);
  let i: u32 = 0;
  for (; i + 16 <= n; i += 16) {
    const ev = v128.load(e + i);
    const t = v128.load(m2 + i);
    // byte 2: exponent bit 0 at bit 7 over mantissa bits 16..22; byte 3: sign over exponent >> 1.
    // 16-bit lane shifts, as in mergeBf16.
    const b2 = v128.bitselect(i16x8.shl(ev, 7), t, top);
    const b3 = v128.bitselect(t, i16x8.shr_u(ev, 1), top);
    store4(out + ((<usize>i) << 2), v128.load(m0 + i), v128.load(m1 + i), b2, b3);
  }
  for (; i < n; i++) {
    const t = <u32>load<u8>(m2 + i);
    store<u32>(
      out + ((<usize>i) << 2),
      ((t & 0x80) << 24) |
        ((<u32>load<u8>(e + i)) << 23) |
        ((t & 0x7f) << 16) |
        ((<u32>load<u8>(m1 + i)) << 8) |
        load<u8>(m0 + i),
    );
  }
}

/** F16 split (3 streams): exponent (x >>> 10) & 0x1f, low byte, sign|mantissa top 2 bits. */
export function splitF16(src: usize, n: u32, e: usize, lo: usize, hi: usize): void {
  for (let i: u32 = 0; i < n; i++) {
    const x = <u32>load<u16>(src + ((<usize>i) << 1));
    store<u8>(e + i, (x >>> 10) & 0x1f);
    store<u8>(lo + i, x & 0xff);
    store<u8>(hi + i, ((x >>> 13) & 0x04) | ((x >>> 8) & 0x03));
  }
}

export function mergeF16(e: usize, lo: usize, hi: usize, n: u32, out: usize): void {
  const three = i8x16.splat(3);
  const four = i8x16.splat(4);
  const low6 = i8x16.splat(0x3f);
  let i: u32 = 0;
  for (; i + 16 <= n; i += 16) {
    const h = v128.load(hi + i);
    const l = v128.load(lo + i);
    // High byte: the sign (h bit 2) at bit 7, the 5 exponent bits at 2..6, h bits 0..1.
    // 16-bit lane shifts of bytes masked first, so that no bit crosses into the next byte.
    const top = v128.or(
      v128.or(i16x8.shl(v128.and(h, four), 5), i16x8.shl(v128.and(v128.load(e + i), low6), 2)),
      v128.and(h, three),
    );
    const p = out + ((<usize>i) << 1);
    v128.store(p, i8x16.shuffle(l, top, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23));
    v128.store(p + 16, i8x16.shuffle(l, top, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31));
  }
  for (; i < n; i++) {
    const h = <u32>load<u8>(hi + i);
    store<u16>(
      out + ((<usize>i) << 1),
      ((h & 0x04) << 13) | ((<u32>load<u8>(e + i)) << 10) | ((h & 0x03) << 8) | load<u8>(lo + i),
    );
  }
}

/**
 * Byte planes: element i's byte p goes to streams + p * n + i (width 2, 4 or 8; other
 * widths byte by byte).
 */
export function splitPlanes(src: usize, n: u32, width: u32, streams: usize): void {
  let i: u32 = 0;
  const s = <usize>n;
  if (width === 2) {
    for (; i + 16 <= n; i += 16) {
      const a = v128.load(src + ((<usize>i) << 1));
      const b = v128.load(src + ((<usize>i) << 1) + 16);
      v128.store(streams + i, i8x16.shuffle(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30));
      v128.store(
        streams + s + i,
        i8x16.shuffle(a, b, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31),
      );
    }
  } else if (width === 4) {
    for (; i + 16 <= n; i += 16) {
      const p = src + ((<usize>i) << 2);
      const v0 = v128.load(p);
      const v1 = v128.load(p + 16);
      const v2 = v128.load(p + 32);
      const v3 = v128.load(p + 48);
      const a = i8x16.shuffle(v0, v1, 0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
      const b = i8x16.shuffle(v0, v1, 2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31);
      const c = i8x16.shuffle(v2, v3, 0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
      const d = i8x16.shuffle(v2, v3, 2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31);
      v128.store(streams + i, i8x16.shuffle(a, c, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23));
      v128.store(
        streams + s + i,
        i8x16.shuffle(a, c, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31),
      );
      v128.store(
        streams + 2 * s + i,
        i8x16.shuffle(b, d, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23),
      );
      v128.store(
        streams + 3 * s + i,
        i8x16.shuffle(b, d, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31),
      );
    }
  }
  for (; i < n; i++) {
    const at = src + <usize>i * width;
    for (let p: u32 = 0; p < width; p++) store<u8>(streams + <usize>p * s + i, load<u8>(at + p));
  }
}

/**
 * 8 elements of 8 bytes at p from their planes paired into 16-bit units: a01 holds
 * planes 0 and 1 of elements 0..7, a23 planes 2 and 3, and so on.
 */
function store8(p: usize, a01: v128, a23: v128, a45: v128, a67: v128): void {
  // 32-bit units: planes 0..3 and 4..7 of elements 0..3 (lo) and 4..7 (hi).
  const lo03 = i8x16.shuffle(a01, a23, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
  const hi03 = i8x16.shuffle(a01, a23, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
  const lo47 = i8x16.shuffle(a45, a67, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
  const hi47 = i8x16.shuffle(a45, a67, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
  v128.store(p, i8x16.shuffle(lo03, lo47, 0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23));
  v128.store(p + 16, i8x16.shuffle(lo03, lo47, 8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31));
  v128.store(p + 32, i8x16.shuffle(hi03, hi47, 0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23));
  v128.store(p + 48, i8x16.shuffle(hi03, hi47, 8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31));
}

export function mergePlanes(streams: usize, n: u32, width: u32, out: usize): void {
  let i: u32 = 0;
  const s = <usize>n;
  if (width === 2) {
    for (; i + 16 <= n; i += 16) {
      const a = v128.load(streams + i);
      const b = v128.load(streams + s + i);
      v128.store(
        out + ((<usize>i) << 1),
        i8x16.shuffle(a, b, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23),
      );
      v128.store(
        out + ((<usize>i) << 1) + 16,
        i8x16.shuffle(a, b, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31),
      );
    }
  } else if (width === 8) {
    for (; i + 16 <= n; i += 16) {
      const b0 = v128.load(streams + i);
      const b1 = v128.load(streams + s + i);
      const b2 = v128.load(streams + 2 * s + i);
      const b3 = v128.load(streams + 3 * s + i);
      const b4 = v128.load(streams + 4 * s + i);
      const b5 = v128.load(streams + 5 * s + i);
      const b6 = v128.load(streams + 6 * s + i);
      const b7 = v128.load(streams + 7 * s + i);
      const p = out + ((<usize>i) << 3);
      // Planes paired into 16-bit units, elements 0..7 (lo) and 8..15 (hi).
      store8(
        p,
        i8x16.shuffle(b0, b1, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23),
        i8x16.shuffle(b2, b3, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23),
        i8x16.shuffle(b4, b5, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23),
        i8x16.shuffle(b6, b7, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23),
      );
      store8(
        p + 64,
        i8x16.shuffle(b0, b1, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31),
        i8x16.shuffle(b2, b3, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31),
        i8x16.shuffle(b4, b5, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31),
        i8x16.shuffle(b6, b7, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31),
      );
    }
  } else if (width === 4) {
    for (; i + 16 <= n; i += 16) {
      store4(
        out + ((<usize>i) << 2),
        v128.load(streams + i),
        v128.load(streams + s + i),
        v128.load(streams + 2 * s + i),
        v128.load(streams + 3 * s + i),
      );
    }
  }
  for (; i < n; i++) {
    const at = out + <usize>i * width;
    for (let p: u32 = 0; p < width; p++) store<u8>(at + p, load<u8>(streams + <usize>p * s + i));
  }
}

/**
 * Block layouts: fields (nf pairs of u32 start, length at `fields`) of n blocks of
 * `width` bytes; field f's stream (n * length bytes) follows field f-1's at `streams`.
 */
export function splitBlocks(src: usize, n: u32, width: u32, fields: usize, nf: u32, streams: usize): void {
  let at = streams;
  for (let f: u32 = 0; f < nf; f++) {
    const start = <usize>load<u32>(fields + ((<usize>f) << 3));
    const length = <usize>load<u32>(fields + ((<usize>f) << 3) + 4);
    let j = src + start;
    if (length === 1) {
      for (let b: u32 = 0; b < n; b++, j += width) store<u8>(at++, load<u8>(j));
    } else {
      for (let b: u32 = 0; b < n; b++, j += width) {
        memory.copy(at, j, length);
        at += length;
      }
    }
  }
}

export function mergeBlocks(streams: usize, n: u32, width: u32, fields: usize, nf: u32, out: usize): void {
  let at = streams;
  for (let f: u32 = 0; f < nf; f++) {
    const start = <usize>load<u32>(fields + ((<usize>f) << 3));
    const length = <usize>load<u32>(fields + ((<usize>f) << 3) + 4);
    let j = out + start;
    // A field is a few bytes to 128: copied with loads and stores of its size, not
    // memory.copy (a call per block).
    if (length === 1) {
      for (let b: u32 = 0; b < n; b++, j += width) store<u8>(j, load<u8>(at++));
    } else if ((length & 15) === 0) {
      for (let b: u32 = 0; b < n; b++, j += width) {
        for (let c: usize = 0; c < length; c += 16) v128.store(j + c, v128.load(at + c));
        at += length;
      }
    } else if (length === 4) {
      for (let b: u32 = 0; b < n; b++, j += width) {
        store<u32>(j, load<u32>(at));
        at += 4;
      }
    } else {
      for (let b: u32 = 0; b < n; b++, j += width) {
        let c: usize = 0;
        for (; c + 8 <= length; c += 8) store<u64>(j + c, load<u64>(at + c));
        for (; c < length; c++) store<u8>(j + c, load<u8>(at + c));
        at += length;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// Huffman (huffman.ts): encoding

/**
 * Writes the LSB-first codes of symbols[0..n) as 4 lanes of q = ceil(n / 4) symbols into
 * one bitstream at out (zero bits above the last code; out needs 8 bytes of slack), and
 * each lane's end bit as u32 at laneEnds[0..3]. codes: u16[256], lengths: u8[256]; with
 * pairs (1 or 2), pairCodes (i32[65536]) and pairLengths (u8[65536]) for first | second << 8.
 *
 * Four symbols a step: their codes (at most 44 bits) joined first, off the chain that
 * every step waits on (the bit count, the accumulator and the output address), then added
 * to the 64-bit accumulator, which holds under 8 bits after each step's 64-bit store.
 * With pairs = 2 (short codes: the caller's choice), eight a step, in one add where their
 * codes take at most 56 bits (the pending bits and they then fit in 63, so that a step
 * never writes a whole 8 bytes, which its shift by 64 would not take off the
 * accumulator), else the first four and then the other four.
 */
export function encodeLanes(
  symbols: usize,
  n: u32,
  out: usize,
  codes: usize,
  lengths: usize,
  pairCodes: usize,
  pairLengths: usize,
  pairs: u32,
  laneEnds: usize,
): void {
  const usePairs = pairs !== 0;
  const eight = pairs === 2;
  let acc: u64 = 0;
  let nb: u64 = 0;
  let op = out;
  const q = (n + 3) >>> 2;
  for (let lane: u32 = 0; lane < 4; lane++) {
    const from = min(n, lane * q);
    const to = min(n, from + q);
    let i = from;
    if (usePairs) {
      // Eight symbols a step while their codes fit beside the pending bits (56 bits).
      for (; eight && i + 8 <= to; i += 8) {
        const w = load<u64>(symbols + i);
        const a = <usize>(<u32>w & 0xffff);
        const b = <usize>(<u32>w >>> 16);
        const c = <usize>(<u32>(w >>> 32) & 0xffff);
        const d = <usize>(<u32>(w >>> 48));
        const la = <u64>load<u8>(pairLengths + a);
        const lab = la + <u64>load<u8>(pairLengths + b);
        const labc = lab + <u64>load<u8>(pairLengths + c);
        const all = labc + <u64>load<u8>(pairLengths + d);
        const ab = <u64>load<u32>(pairCodes + (a << 2)) | ((<u64>load<u32>(pairCodes + (b << 2))) << la);
        const cd =
          <u64>load<u32>(pairCodes + (c << 2)) | ((<u64>load<u32>(pairCodes + (d << 2))) << (labc - lab));
        if (all > 56) {
          // Too long for one add: the first four symbols' codes first.
          acc |= ab << nb;
          nb += lab;
          store<u64>(op, acc);
          const first = nb >>> 3;
          op += <usize>first;
          acc >>>= first << 3;
          nb &= 7;
          acc |= cd << nb;
          nb += all - lab;
        } else {
          acc |= (ab | (cd << lab)) << nb;
          nb += all;
        }
        store<u64>(op, acc);
        const bytes = nb >>> 3;
        op += <usize>bytes;
        acc >>>= bytes << 3;
        nb &= 7;
      }
      for (; i + 4 <= to; i += 4) {
        const w = load<u32>(symbols + i);
        const a = <usize>(w & 0xffff);
        const b = <usize>(w >>> 16);
        const la = <u64>load<u8>(pairLengths + a);
        const code = <u64>load<u32>(pairCodes + (a << 2)) | ((<u64>load<u32>(pairCodes + (b << 2))) << la);
        acc |= code << nb;
        nb += la + <u64>load<u8>(pairLengths + b);
        store<u64>(op, acc);
        const bytes = nb >>> 3;
        op += <usize>bytes;
        acc >>>= bytes << 3;
        nb &= 7;
      }
    } else {
      for (; i + 4 <= to; i += 4) {
        const w = load<u32>(symbols + i);
        const s0 = <usize>(w & 0xff);
        const s1 = <usize>((w >>> 8) & 0xff);
        const s2 = <usize>((w >>> 16) & 0xff);
        const s3 = <usize>(w >>> 24);
        const l0 = <u64>load<u8>(lengths + s0);
        const l01 = l0 + <u64>load<u8>(lengths + s1);
        const l012 = l01 + <u64>load<u8>(lengths + s2);
        const code =
          <u64>load<u16>(codes + (s0 << 1)) |
          ((<u64>load<u16>(codes + (s1 << 1))) << l0) |
          ((<u64>load<u16>(codes + (s2 << 1))) << l01) |
          ((<u64>load<u16>(codes + (s3 << 1))) << l012);
        acc |= code << nb;
        nb += l012 + <u64>load<u8>(lengths + s3);
        store<u64>(op, acc);
        const bytes = nb >>> 3;
        op += <usize>bytes;
        acc >>>= bytes << 3;
        nb &= 7;
      }
    }
    for (; i < to; i++) {
      const s = <usize>load<u8>(symbols + i);
      acc |= (<u64>load<u16>(codes + (s << 1))) << nb;
      nb += <u64>load<u8>(lengths + s);
      store<u64>(op, acc);
      const bytes = nb >>> 3;
      op += <usize>bytes;
      acc >>>= bytes << 3;
      nb &= 7;
    }
    store<u32>(laneEnds + ((<usize>lane) << 2), <u32>((op - out) << 3) + <u32>nb);
  }
  store<u64>(op, acc);
}

/**
 * The pair tables encodeLanes reads (pairCodes i32[65536], pairLengths u8[65536], entry
 * first | second << 8): code of first, then of second, and the sum of their lengths, for
 * every first in lo..hi and every second among the `used` symbols listed at `list` (u8).
 * A row is written whole from lo rounded down to 16 to hi rounded up, 16 entries a step:
 * the entries of symbols without a code are never read. `scratch` takes 1 KiB.
 */
export function buildPairs(
  codes: usize,
  lengths: usize,
  list: usize,
  used: u32,
  lo: u32,
  hi: u32,
  pairCodes: usize,
  pairLengths: usize,
  scratch: usize,
): void {
  const from = <usize>(lo & ~15);
  const to = <usize>(hi | 15) + 1;
  // 1 << length of each first symbol: the second's code shifted past it is a product.
  for (let a = from; a < to; a++) store<u32>(scratch + (a << 2), (<u32>1) << load<u8>(lengths + a));
  for (let j: u32 = 0; j < used; j++) {
    const b = <usize>load<u8>(list + j);
    const cb = i32x4.splat(<i32>load<u16>(codes + (b << 1)));
    const lb = i8x16.splat(<i8>load<u8>(lengths + b));
    const row = b << 8;
    for (let a = from; a < to; a += 16) {
      v128.store(pairLengths + row + a, i8x16.add(v128.load(lengths + a), lb));
      const c = pairCodes + ((row + a) << 2);
      for (let k: usize = 0; k < 16; k += 4) {
        const first = v128.load16x4_u(codes + ((a + k) << 1));
        const second = i32x4.mul(cb, v128.load(scratch + ((a + k) << 2)));
        v128.store(c + (k << 2), v128.or(first, second));
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// Huffman: decoding. The block lies at `block` with 8 zero bytes after its blockLen bytes
// (a 64-bit read at the last safe bit position ends inside them);
// lanes holds u32 lane start bits [0..3] and the end bit [4] (relative to the block), and
// gets each lane's final bit position in [5..8]. multi: i32[2^tableBits] entries
// s1 | s2 << 8 | s3 << 16 | count << 24 | bits << 26; single: u16 entries s | len << 8.

function steps(r0: i32, r1: i32, r2: i32, r3: i32, bits: i32, tableBits: i32): i32 {
  return min(min(min((r0 - 1) / 3, (r1 - 1) / 3), min((r2 - 1) / 3, (r3 - 1) / 3)), bits / tableBits);
}

function peek(block: usize, blockLen: u32, p: u32): u32 {
  const at = p >>> 3;
  return at < blockLen ? load<u32>(block + at) >>> (p & 7) : 0;
}

/** Symbols one at a time into out[o..oe) from bit p; returns the bit after them. */
function tailBytes(
  block: usize,
  blockLen: u32,
  p: u32,
  out: usize,
  o: u32,
  oe: u32,
  single: usize,
  mask: u32,
): u32 {
  while (o < oe) {
    const e = <u32>load<u16>(single + ((<usize>(peek(block, blockLen, p) & mask)) << 1));
    store<u8>(out + o, e);
    o++;
    p += e >>> 8;
  }
  return p;
}

export function decodeLanes(
  block: usize,
  blockLen: u32,
  out: usize,
  n: u32,
  multi: usize,
  single: usize,
  tableBits: u32,
  lanes: usize,
): void {
  const q = (n + 3) >>> 2;
  const mask = (1 << tableBits) - 1;
  let p0 = load<u32>(lanes);
  let p1 = load<u32>(lanes + 4);
  let p2 = load<u32>(lanes + 8);
  let p3 = load<u32>(lanes + 12);
  let o0: u32 = 0;
  let o1 = min(n, q);
  let o2 = min(n, 2 * q);
  let o3 = min(n, 3 * q);
  const e0 = o1;
  const e1 = o2;
  const e2 = o3;
  const e3 = n;
  const readLimit = (<i32>blockLen - 4) * 8;
  for (;;) {
    let k = steps(
      e0 - o0,
      e1 - o1,
      e2 - o2,
      e3 - o3,
      readLimit - <i32>max(max(p0, p1), max(p2, p3)),
      tableBits,
    );
    if (k < 4) break;
    // Two lookups per lane from one 64-bit read: at least 57 bits lie past the first one.
    for (; k >= 2; k -= 2) {
      const w0 = load<u64>(block + (p0 >>> 3)) >>> (p0 & 7);
      const w1 = load<u64>(block + (p1 >>> 3)) >>> (p1 & 7);
      const w2 = load<u64>(block + (p2 >>> 3)) >>> (p2 & 7);
      const w3 = load<u64>(block + (p3 >>> 3)) >>> (p3 & 7);
      const a = load<u32>(multi + ((<usize>(<u32>w0 & mask)) << 2));
      const b = load<u32>(multi + ((<usize>(<u32>w1 & mask)) << 2));
      const c = load<u32>(multi + ((<usize>(<u32>w2 & mask)) << 2));
      const d = load<u32>(multi + ((<usize>(<u32>w3 & mask)) << 2));
      store<u32>(out + o0, a);
      store<u32>(out + o1, b);
      store<u32>(out + o2, c);
      store<u32>(out + o3, d);
      o0 += (a >>> 24) & 3;
      o1 += (b >>> 24) & 3;
      o2 += (c >>> 24) & 3;
      o3 += (d >>> 24) & 3;
      const a2 = load<u32>(multi + ((<usize>(<u32>(w0 >>> (a >>> 26)) & mask)) << 2));
      const b2 = load<u32>(multi + ((<usize>(<u32>(w1 >>> (b >>> 26)) & mask)) << 2));
      const c2 = load<u32>(multi + ((<usize>(<u32>(w2 >>> (c >>> 26)) & mask)) << 2));
      const d2 = load<u32>(multi + ((<usize>(<u32>(w3 >>> (d >>> 26)) & mask)) << 2));
      store<u32>(out + o0, a2);
      store<u32>(out + o1, b2);
      store<u32>(out + o2, c2);
      store<u32>(out + o3, d2);
      o0 += (a2 >>> 24) & 3;
      o1 += (b2 >>> 24) & 3;
      o2 += (c2 >>> 24) & 3;
      o3 += (d2 >>> 24) & 3;
      p0 += (a >>> 26) + (a2 >>> 26);
      p1 += (b >>> 26) + (b2 >>> 26);
      p2 += (c >>> 26) + (c2 >>> 26);
      p3 += (d >>> 26) + (d2 >>> 26);
    }
    for (; k > 0; k--) {
      const a = load<u32>(multi + ((<usize>((load<u32>(block + (p0 >>> 3)) >>> (p0 & 7)) & mask)) << 2));
      const b = load<u32>(multi + ((<usize>((load<u32>(block + (p1 >>> 3)) >>> (p1 & 7)) & mask)) << 2));
      const c = load<u32>(multi + ((<usize>((load<u32>(block + (p2 >>> 3)) >>> (p2 & 7)) & mask)) << 2));
      const d = load<u32>(multi + ((<usize>((load<u32>(block + (p3 >>> 3)) >>> (p3 & 7)) & mask)) << 2));
      store<u32>(out + o0, a);
      store<u32>(out + o1, b);
      store<u32>(out + o2, c);
      store<u32>(out + o3, d);
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
  store<u32>(lanes + 20, tailBytes(block, blockLen, p0, out, o0, e0, single, mask));
  store<u32>(lanes + 24, tailBytes(block, blockLen, p1, out, o1, e1, single, mask));
  store<u32>(lanes + 28, tailBytes(block, blockLen, p2, out, o2, e2, single, mask));
  store<u32>(lanes + 32, tailBytes(block, blockLen, p3, out, o3, e3, single, mask));
}

/** Bytes 0..3 of x, each moved to the low byte of a 16-bit lane. */
function spread(x: u64): u64 {
  return (x & 0xff) | ((x & 0xff00) << 8) | ((x & 0xff0000) << 16) | ((x & 0xff000000) << 24);
}

/**
 * The BF16 words of 4 elements from their exponent bytes (spread, see spread()) and
 * sign|mantissa bytes (spread): sign to bit 15, exponent to bits 7..14, mantissa 0..6.
 */
function bf16Words(e: u64, s: u64): u64 {
  const signs: u64 = ((<u64>0x0080_0080) << 32) | 0x0080_0080;
  const mantissas: u64 = ((<u64>0x007f_007f) << 32) | 0x007f_007f;
  return ((s & signs) << 8) | (e << 7) | (s & mantissas);
}

/** One symbol's BF16 word from exponent e and sign|mantissa s. */
function bf16Word(e: u32, s: u32): u32 {
  return ((s & 0x80) << 8) | (e << 7) | (s & 0x7f);
}

/**
 * decodeLanes fused with the BF16 merge: the block's symbols are exponents (which = 0,
 * other = the sign|mantissa bytes) or sign|mantissa bytes (which = 1, other = the
 * exponents); out receives n u16 words. Every lookup writes 4 words, those past its
 * count written again by the next.
 */
export function decodeLanesBf16(
  block: usize,
  blockLen: u32,
  other: usize,
  out: usize,
  n: u32,
  multi: usize,
  single: usize,
  tableBits: u32,
  lanes: usize,
  which: u32,
): void {
  const q = (n + 3) >>> 2;
  const mask = (1 << tableBits) - 1;
  let p0 = load<u32>(lanes);
  let p1 = load<u32>(lanes + 4);
  let p2 = load<u32>(lanes + 8);
  let p3 = load<u32>(lanes + 12);
  let o0: u32 = 0;
  let o1 = min(n, q);
  let o2 = min(n, 2 * q);
  let o3 = min(n, 3 * q);
  const e0 = o1;
  const e1 = o2;
  const e2 = o3;
  const e3 = n;
  const readLimit = (<i32>blockLen - 4) * 8;
  for (;;) {
    let k = steps(
      e0 - o0,
      e1 - o1,
      e2 - o2,
      e3 - o3,
      readLimit - <i32>max(max(p0, p1), max(p2, p3)),
      tableBits,
    );
    if (k < 4) break;
    if (which === 0) {
      for (; k > 0; k--) {
        const a = load<u32>(multi + ((<usize>((load<u32>(block + (p0 >>> 3)) >>> (p0 & 7)) & mask)) << 2));
        const b = load<u32>(multi + ((<usize>((load<u32>(block + (p1 >>> 3)) >>> (p1 & 7)) & mask)) << 2));
        const c = load<u32>(multi + ((<usize>((load<u32>(block + (p2 >>> 3)) >>> (p2 & 7)) & mask)) << 2));
        const d = load<u32>(multi + ((<usize>((load<u32>(block + (p3 >>> 3)) >>> (p3 & 7)) & mask)) << 2));
        store<u64>(out + ((<usize>o0) << 1), bf16Words(spread(a & 0xffffff), spread(load<u32>(other + o0))));
        store<u64>(out + ((<usize>o1) << 1), bf16Words(spread(b & 0xffffff), spread(load<u32>(other + o1))));
        store<u64>(out + ((<usize>o2) << 1), bf16Words(spread(c & 0xffffff), spread(load<u32>(other + o2))));
        store<u64>(out + ((<usize>o3) << 1), bf16Words(spread(d & 0xffffff), spread(load<u32>(other + o3))));
        o0 += (a >>> 24) & 3;
        o1 += (b >>> 24) & 3;
        o2 += (c >>> 24) & 3;
        o3 += (d >>> 24) & 3;
        p0 += a >>> 26;
        p1 += b >>> 26;
        p2 += c >>> 26;
        p3 += d >>> 26;
      }
    } else {
      for (; k > 0; k--) {
        const a = load<u32>(multi + ((<usize>((load<u32>(block + (p0 >>> 3)) >>> (p0 & 7)) & mask)) << 2));
        const b = load<u32>(multi + ((<usize>((load<u32>(block + (p1 >>> 3)) >>> (p1 & 7)) & mask)) << 2));
        const c = load<u32>(multi + ((<usize>((load<u32>(block + (p2 >>> 3)) >>> (p2 & 7)) & mask)) << 2));
        const d = load<u32>(multi + ((<usize>((load<u32>(block + (p3 >>> 3)) >>> (p3 & 7)) & mask)) << 2));
        store<u64>(out + ((<usize>o0) << 1), bf16Words(spread(load<u32>(other + o0)), spread(a & 0xffffff)));
        store<u64>(out + ((<usize>o1) << 1), bf16Words(spread(load<u32>(other + o1)), spread(b & 0xffffff)));
        store<u64>(out + ((<usize>o2) << 1), bf16Words(spread(load<u32>(other + o2)), spread(c & 0xffffff)));
        store<u64>(out + ((<usize>o3) << 1), bf16Words(spread(load<u32>(other + o3)), spread(d & 0xffffff)));
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
  }
  store<u32>(lanes + 20, tailBf16(block, blockLen, p0, other, out, o0, e0, single, mask, which));
  store<u32>(lanes + 24, tailBf16(block, blockLen, p1, other, out, o1, e1, single, mask, which));
  store<u32>(lanes + 28, tailBf16(block, blockLen, p2, other, out, o2, e2, single, mask, which));
  store<u32>(lanes + 32, tailBf16(block, blockLen, p3, other, out, o3, e3, single, mask, which));
}

function tailBf16(
  block: usize,
  blockLen: u32,
  p: u32,
  other: usize,
  out: usize,
  o: u32,
  oe: u32,
  single: usize,
  mask: u32,
  which: u32,
): u32 {
  while (o < oe) {
    const e = <u32>load<u16>(single + ((<usize>(peek(block, blockLen, p) & mask)) << 1));
    const x = <u32>load<u8>(other + o);
    const w = which === 0 ? bf16Word(e & 0xff, x) : bf16Word(x, e & 0xff);
    store<u16>(out + ((<usize>o) << 1), w);
    o++;
    p += e >>> 8;
  }
  return p;
}

/**
 * decodeLanes fused with the F32 merge: the block's symbols are the exponents; m0, m1,
 * m2 the other three streams (bytes); out receives n u32 words. Each lookup writes its
 * 3 symbols' words.
 */
export function decodeLanesF32(
  block: usize,
  blockLen: u32,
  m0: usize,
  m1: usize,
  m2: usize,
  out: usize,
  n: u32,
  multi: usize,
  single: usize,
  tableBits: u32,
  lanes: usize,
): void {
  const q = (n + 3) >>> 2;
  const mask = (1 << tableBits) - 1;
  let p0 = load<u32>(lanes);
  let p1 = load<u32>(lanes + 4);
  let p2 = load<u32>(lanes + 8);
  let p3 = load<u32>(lanes + 12);
  let o0: u32 = 0;
  let o1 = min(n, q);
  let o2 = min(n, 2 * q);
  let o3 = min(n, 3 * q);
  const e0 = o1;
  const e1 = o2;
  const e2 = o3;
  const e3 = n;
  const readLimit = (<i32>blockLen - 4) * 8;
  for (;;) {
    let k = steps(
      e0 - o0,
      e1 - o1,
      e2 - o2,
      e3 - o3,
      readLimit - <i32>max(max(p0, p1), max(p2, p3)),
      tableBits,
    );
    if (k < 4) break;
    for (; k > 0; k--) {
      const a = load<u32>(multi + ((<usize>((load<u32>(block + (p0 >>> 3)) >>> (p0 & 7)) & mask)) << 2));
      const b = load<u32>(multi + ((<usize>((load<u32>(block + (p1 >>> 3)) >>> (p1 & 7)) & mask)) << 2));
      const c = load<u32>(multi + ((<usize>((load<u32>(block + (p2 >>> 3)) >>> (p2 & 7)) & mask)) << 2));
      const d = load<u32>(multi + ((<usize>((load<u32>(block + (p3 >>> 3)) >>> (p3 & 7)) & mask)) << 2));
      f32Words(a, o0, m0, m1, m2, out);
      f32Words(b, o1, m0, m1, m2, out);
      f32Words(c, o2, m0, m1, m2, out);
      f32Words(d, o3, m0, m1, m2, out);
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
  store<u32>(lanes + 20, tailF32(block, blockLen, p0, m0, m1, m2, out, o0, e0, single, mask));
  store<u32>(lanes + 24, tailF32(block, blockLen, p1, m0, m1, m2, out, o1, e1, single, mask));
  store<u32>(lanes + 28, tailF32(block, blockLen, p2, m0, m1, m2, out, o2, e2, single, mask));
  store<u32>(lanes + 32, tailF32(block, blockLen, p3, m0, m1, m2, out, o3, e3, single, mask));
}

function f32Word(e: u32, a: u32, b: u32, t: u32): u32 {
  return ((t & 0x80) << 24) | (e << 23) | ((t & 0x7f) << 16) | (b << 8) | a;
}

/** The F32 words of the 3 exponents in entry x at elements o.. (4 bytes read per stream). */
function f32Words(x: u32, o: u32, m0: usize, m1: usize, m2: usize, out: usize): void {
  const a = load<u32>(m0 + o);
  const b = load<u32>(m1 + o);
  const t = load<u32>(m2 + o);
  const p = out + ((<usize>o) << 2);
  store<u32>(p, f32Word(x & 0xff, a & 0xff, b & 0xff, t & 0xff));
  store<u32>(p + 4, f32Word((x >>> 8) & 0xff, (a >>> 8) & 0xff, (b >>> 8) & 0xff, (t >>> 8) & 0xff));
  store<u32>(p + 8, f32Word((x >>> 16) & 0xff, (a >>> 16) & 0xff, (b >>> 16) & 0xff, (t >>> 16) & 0xff));
}

function tailF32(
  block: usize,
  blockLen: u32,
  p: u32,
  m0: usize,
  m1: usize,
  m2: usize,
  out: usize,
  o: u32,
  oe: u32,
  single: usize,
  mask: u32,
): u32 {
  while (o < oe) {
    const e = <u32>load<u16>(single + ((<usize>(peek(block, blockLen, p) & mask)) << 1));
    store<u32>(
      out + ((<usize>o) << 2),
      f32Word(e & 0xff, load<u8>(m0 + o), load<u8>(m1 + o), load<u8>(m2 + o)),
    );
    o++;
    p += e >>> 8;
  }
  return p;
}

// Huffman decoding with up to 4 symbols a lookup: assembly/decode.ts.
export {
  buildQuad,
  buildSingle,
  buildTwo,
  decodeLanesQuad,
  decodeLanesSingle,
  decodeLanesTwo,
} from "./decode";
