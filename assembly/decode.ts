/**
 * HIER's Huffman decoding with up to 4 symbols a lookup (exported through kernels.ts).
 * The block layout and lane table are huffman.ts's; so is the one-symbol table `single`
 * (u16 entries s | len << 8, 2^tableBits of them). Its twin is huffmanDecode in
 * src/codecs/hier/huffman.ts, which gives the same bytes (test/kernels.test.ts).
 */

/**
 * The 4-symbol table, u64[2^tableBits] for tableBits <= 12 (HUFFMAN_MAX_BITS 11, or the
 * wide table of decodeLanesQuad), at address 0: a lookup's address is then its scaled
 * index alone, with no base or offset added, which measured faster than the table
 * elsewhere (docs/ENGINE.md). The build (scripts/build.ts) starts the module's own data
 * above it with --memoryBase.
 */
const QUAD: usize = 0;
const QUAD_BYTES = 8 << 12;
// @ts-expect-error: AssemblyScript's compile-time constant and error
if (ASC_MEMORY_BASE < QUAD_BYTES) ERROR("decode.ts: build with --memoryBase 32768 (QUAD_BYTES)");

/**
 * Builds the one-symbol table `single` (u16[2^tableBits], entries s | len << 8) from the
 * code lengths lengths[0..256) (u8, 0 for no code) of a complete canonical code of at
 * most tableBits bits (codes by length, then symbol, stored bit-reversed): the twin of
 * buildDecodeTables' first half in huffman.ts.
 */
export function buildSingle(lengths: usize, tableBits: u32, single: usize): void {
  // At most 12 bits (WIDE_BITS): the table and QUAD hold 2^12 entries.
  if (tableBits > WIDE_BITS) unreachable();
  // count[len] then next[len], the next code of each length: u32 scratch.
  const count = memory.data(4 * 16);
  const next = memory.data(4 * 16);
  memory.fill(count, 0, 4 * 16);
  for (let s: usize = 0; s < 256; s++) {
    const at = count + ((<usize>load<u8>(lengths + s)) << 2);
    store<u32>(at, load<u32>(at) + 1);
  }
  let code: u32 = 0;
  for (let len: usize = 1; len < 16; len++) {
    code = (code + (len > 1 ? load<u32>(count + ((len - 1) << 2)) : 0)) << 1;
    store<u32>(next + (len << 2), code);
  }
  const size: u32 = 1 << tableBits;
  for (let s: usize = 0; s < 256; s++) {
    const len = <u32>load<u8>(lengths + s);
    if (len === 0) continue;
    const at = next + ((<usize>len) << 2);
    const c = load<u32>(at);
    store<u32>(at, c + 1);
    let r: u32 = 0;
    for (let b: u32 = 0; b < len; b++) r |= ((c >>> b) & 1) << (len - 1 - b);
    const entry = <u16>(<u32>s | (len << 8));
    const step: u32 = 1 << len;
    for (let idx = r; idx < size; idx += step) store<u16>(single + ((<usize>idx) << 1), entry);
  }
}

/**
 * Builds the 4-symbol table QUAD from `single`: entry idx holds the symbols that the
 * low tableBits bits idx decode to, as many as fit (1 to 4), as
 * bits | s1 << 8 | s2 << 16 | s3 << 24 | s4 << 32 | count << 40: a shift by the entry
 * (taken mod 64) is then a shift by its bits, entry >>> 8 its symbols and entry >>> 40
 * its count.
 */
export function buildQuad(single: usize, tableBits: u32): void {
  if (tableBits > WIDE_BITS) unreachable();
  const size: u32 = 1 << tableBits;
  for (let idx: u32 = 0; idx < size; idx++) {
    const e = <u32>load<u16>(single + ((<usize>idx) << 1));
    let bits = e >>> 8;
    let symbols: u64 = <u64>(e & 0xff);
    let count: u64 = 1;
    for (let j: u64 = 1; j < 4; j++) {
      const next = <u32>load<u16>(single + ((<usize>(idx >>> bits)) << 1));
      const length = next >>> 8;
      if (bits + length > tableBits) break;
      symbols |= (<u64>(next & 0xff)) << (j << 3);
      count++;
      bits += length;
    }
    store<u64>((<usize>idx) << 3, <u64>bits | (symbols << 8) | (count << 40), QUAD);
  }
}

/**
 * Builds the 2-symbol table at QUAD (u32[2^12]) from `single` built for the 12-bit width
 * (WIDE_BITS): entry idx holds the one or two symbols that the low 12 bits idx decode to,
 * as bits | s1 << 8 | s2 << 16 | count << 24 (a shift by the entry, taken mod 64, is a
 * shift by its bits). Half the 4-symbol table's bytes, and at most one step an entry.
 */
export function buildTwo(single: usize): void {
  const size: u32 = 1 << WIDE_BITS;
  for (let idx: u32 = 0; idx < size; idx++) {
    const e = <u32>load<u16>(single + ((<usize>idx) << 1));
    const bits = e >>> 8;
    const next = <u32>load<u16>(single + ((<usize>(idx >>> bits)) << 1));
    const both = bits + (next >>> 8);
    const entry =
      both <= WIDE_BITS
        ? both | ((e & 0xff) << 8) | ((next & 0xff) << 16) | (2 << 24)
        : bits | ((e & 0xff) << 8) | (1 << 24);
    store<u32>((<usize>idx) << 2, entry, QUAD);
  }
}

/** Symbols one at a time into memory [o, oe) from bit p; returns the bit after them. */
function tail(block: usize, blockLen: u32, p: u32, o: usize, oe: usize, single: usize, mask: u32): u32 {
  while (o < oe) {
    const at = p >>> 3;
    const bits = at < blockLen ? load<u32>(block + at) >>> (p & 7) : 0;
    const e = <u32>load<u16>(single + ((<usize>(bits & mask)) << 1));
    store<u8>(o, e);
    o++;
    p += e >>> 8;
  }
  return p;
}

/** Where Bulk.lanes4 leaves each lane's bit (relative to the block) and output address. */
const state = memory.data(32);

/** The wide table's index width: a 4-symbol table of 12 bits, 4 lookups a read. */
const WIDE_BITS: u32 = 12;

/**
 * One lookup of Bulk.lanes4 in each lane: the entries at the windows' low bits (kept
 * scaled by the entry's size), their symbols written whole (4 bytes of a u64 QUAD entry,
 * 2 of a u32 buildTwo entry; those past the count written again by the next lookup) and
 * the outputs moved on by their counts. E, the entry's type, is known when the kernel is
 * compiled, so each table gets its own code without a branch.
 */
// biome-ignore lint/complexity/noStaticOnlyClass: AssemblyScript inlines a function only as a static method with @inline.
class Step {
  @inline
  static write<E>(o: usize, a: u64): usize {
    if (sizeof<E>() === 8) {
      store<u32>(o, <u32>(a >>> 8));
      return o + <usize>(a >>> 40);
    }
    store<u16>(o, <u16>(a >>> 8));
    return o + <usize>(a >>> 24);
  }

  /** The entry of E (QUAD's u64 or buildTwo's u32) at the scaled index's low bits. */
  @inline
  static entry<E>(w: u64, mask: u32): u64 {
    return <u64>load<E>(<usize>(<u32>w & mask), QUAD);
  }
}

/**
 * The 4 lanes' bulk, with QUAD built for tableBits (E = u64: buildQuad's table, up to 4
 * symbols a lookup; E = u32: buildTwo's 12-bit table, up to 2): each step reads 64 bits
 * per lane (at least 57 of them the lane's) and makes `lookups` lookups from them (3, at
 * most 33 bits of an 11-bit table, or 4 of the 12-bit one, at most 48 bits), each
 * lookup's symbols written whole (those past its count written again by the next).
 * Stops while every lane has room for 2 steps and bits for their reads; leaves the
 * lanes' positions in `state` for tail(). Bit positions are absolute (block * 8 + bit,
 * as u64), so a read's address needs no base added; the index is kept scaled by the
 * entry's size (w << 3 or w << 2), so a lookup's address is w & mask. (Other shapes measured slower:
 * docs/ENGINE.md.)
 */
// biome-ignore lint/complexity/noStaticOnlyClass: AssemblyScript inlines a function only as a static method with @inline.
class Bulk {
  @inline
  static lanes4<E>(
    block: usize,
    blockLen: u32,
    out: usize,
    n: u32,
    tableBits: u32,
    lanes: usize,
    lookups: i32,
  ): void {
    const q = (n + 3) >>> 2;
    const scale: u32 = sizeof<E>() === 8 ? 3 : 2;
    const mask: u32 = ((1 << tableBits) - 1) << scale;
    const base: u64 = (<u64>block) << 3;
    let p0 = base + <u64>load<u32>(lanes);
    let p1 = base + <u64>load<u32>(lanes + 4);
    let p2 = base + <u64>load<u32>(lanes + 8);
    let p3 = base + <u64>load<u32>(lanes + 12);
    // Output positions as addresses.
    let o0 = out;
    let o1 = out + <usize>min(n, q);
    let o2 = out + <usize>min(n, 2 * q);
    let o3 = out + <usize>min(n, 3 * q);
    const e0 = o1;
    const e1 = o2;
    const e2 = o3;
    const e3 = out + <usize>n;
    // A 64-bit read at byte p >>> 3 stays inside the block and its 8 zero bytes while
    // p <= (block + blockLen) * 8; a step moves p by at most lookups * tableBits and
    // writes at most 4 * lookups symbols a lane.
    const limit = base + ((<u64>blockLen) << 3);
    const perStep = <i32>(<u32>lookups * tableBits);
    const symbolsPerStep = <i32>(sizeof<E>() >>> 1) * lookups;
    for (;;) {
      const room = <i32>min(min(e0 - o0, e1 - o1), min(e2 - o2, e3 - o3));
      const far = max(max(p0, p1), max(p2, p3));
      let k = min(room / symbolsPerStep, <i32>(limit - far) / perStep);
      if (k < 2) break;
      for (; k > 0; k--) {
        let w0 = (load<u64>(<usize>(p0 >>> 3)) >>> (p0 & 7)) << (<u64>scale);
        let w1 = (load<u64>(<usize>(p1 >>> 3)) >>> (p1 & 7)) << (<u64>scale);
        let w2 = (load<u64>(<usize>(p2 >>> 3)) >>> (p2 & 7)) << (<u64>scale);
        let w3 = (load<u64>(<usize>(p3 >>> 3)) >>> (p3 & 7)) << (<u64>scale);
        const a0_0 = Step.entry<E>(w0, mask);
        const a1_0 = Step.entry<E>(w1, mask);
        const a2_0 = Step.entry<E>(w2, mask);
        const a3_0 = Step.entry<E>(w3, mask);
        o0 = Step.write<E>(o0, a0_0);
        o1 = Step.write<E>(o1, a1_0);
        o2 = Step.write<E>(o2, a2_0);
        o3 = Step.write<E>(o3, a3_0);
        w0 >>>= a0_0;
        w1 >>>= a1_0;
        w2 >>>= a2_0;
        w3 >>>= a3_0;
        const a0_1 = Step.entry<E>(w0, mask);
        const a1_1 = Step.entry<E>(w1, mask);
        const a2_1 = Step.entry<E>(w2, mask);
        const a3_1 = Step.entry<E>(w3, mask);
        o0 = Step.write<E>(o0, a0_1);
        o1 = Step.write<E>(o1, a1_1);
        o2 = Step.write<E>(o2, a2_1);
        o3 = Step.write<E>(o3, a3_1);
        w0 >>>= a0_1;
        w1 >>>= a1_1;
        w2 >>>= a2_1;
        w3 >>>= a3_1;
        const a0_2 = Step.entry<E>(w0, mask);
        const a1_2 = Step.entry<E>(w1, mask);
        const a2_2 = Step.entry<E>(w2, mask);
        const a3_2 = Step.entry<E>(w3, mask);
        o0 = Step.write<E>(o0, a0_2);
        o1 = Step.write<E>(o1, a1_2);
        o2 = Step.write<E>(o2, a2_2);
        o3 = Step.write<E>(o3, a3_2);
        let s0 = a0_0 + a0_1 + a0_2;
        let s1 = a1_0 + a1_1 + a1_2;
        let s2 = a2_0 + a2_1 + a2_2;
        let s3 = a3_0 + a3_1 + a3_2;
        if (lookups === 4) {
          w0 >>>= a0_2;
          w1 >>>= a1_2;
          w2 >>>= a2_2;
          w3 >>>= a3_2;
          const a0_3 = Step.entry<E>(w0, mask);
          const a1_3 = Step.entry<E>(w1, mask);
          const a2_3 = Step.entry<E>(w2, mask);
          const a3_3 = Step.entry<E>(w3, mask);
          o0 = Step.write<E>(o0, a0_3);
          o1 = Step.write<E>(o1, a1_3);
          o2 = Step.write<E>(o2, a2_3);
          o3 = Step.write<E>(o3, a3_3);
          s0 += a0_3;
          s1 += a1_3;
          s2 += a2_3;
          s3 += a3_3;
        }
        // The bits are each entry's low byte: their sum (at most 48) carries no further.
        p0 += s0 & 0xff;
        p1 += s1 & 0xff;
        p2 += s2 & 0xff;
        p3 += s3 & 0xff;
      }
    }
    store<u32>(state, <u32>(p0 - base));
    store<u32>(state + 4, <u32>(p1 - base));
    store<u32>(state + 8, <u32>(p2 - base));
    store<u32>(state + 12, <u32>(p3 - base));
    store<u32>(state + 16, <u32>o0);
    store<u32>(state + 20, <u32>o1);
    store<u32>(state + 24, <u32>o2);
    store<u32>(state + 28, <u32>o3);
  }
}

/**
 * What Bulk.lanes4 left of one lane, up to its end `e`: the same steps (one 64-bit read,
 * `lookups` lookups of up to 4 symbols) in that lane alone, from the bit and output
 * address in `state` at `at` and `at + 16`, while the lane has room for a step and bits
 * for its read; leaves them there for tail(). The lanes rarely end together (their
 * symbols a lookup differ with their data): 2.2-3.5% of the symbols of bench/speed.ts's
 * 64 MiB sets were left after the 4 lanes' bulk, for tail()'s one symbol a lookup.
 */
// biome-ignore lint/complexity/noStaticOnlyClass: AssemblyScript inlines a function only as a static method with @inline.
class Rest {
  @inline
  static lane<E>(block: usize, blockLen: u32, at: usize, e: usize, tableBits: u32, lookups: i32): void {
    const scale: u32 = sizeof<E>() === 8 ? 3 : 2;
    const mask: u32 = ((1 << tableBits) - 1) << scale;
    const base: u64 = (<u64>block) << 3;
    let p = base + <u64>load<u32>(state + at);
    let o = <usize>load<u32>(state + at + 16);
    const limit = base + ((<u64>blockLen) << 3);
    const perStep = <i32>(<u32>lookups * tableBits);
    const symbolsPerStep = <i32>(sizeof<E>() >>> 1) * lookups;
    for (;;) {
      let k = min(<i32>(e - o) / symbolsPerStep, <i32>(limit - p) / perStep);
      if (k < 1) break;
      for (; k > 0; k--) {
        let w = (load<u64>(<usize>(p >>> 3)) >>> (p & 7)) << (<u64>scale);
        const a0 = Step.entry<E>(w, mask);
        o = Step.write<E>(o, a0);
        w >>>= a0;
        const a1 = Step.entry<E>(w, mask);
        o = Step.write<E>(o, a1);
        w >>>= a1;
        const a2 = Step.entry<E>(w, mask);
        o = Step.write<E>(o, a2);
        let s = a0 + a1 + a2;
        if (lookups === 4) {
          w >>>= a2;
          const a3 = Step.entry<E>(w, mask);
          o = Step.write<E>(o, a3);
          s += a3;
        }
        p += s & 0xff;
      }
    }
    store<u32>(state + at, <u32>(p - base));
    store<u32>(state + at + 16, <u32>o);
  }

  /** Rest.lane for each of the 4 lanes, their ends e0..e3. */
  @inline
  static lanes<E>(
    block: usize,
    blockLen: u32,
    e0: usize,
    e1: usize,
    e2: usize,
    e3: usize,
    tableBits: u32,
    lookups: i32,
  ): void {
    Rest.lane<E>(block, blockLen, 0, e0, tableBits, lookups);
    Rest.lane<E>(block, blockLen, 4, e1, tableBits, lookups);
    Rest.lane<E>(block, blockLen, 8, e2, tableBits, lookups);
    Rest.lane<E>(block, blockLen, 12, e3, tableBits, lookups);
  }
}

/**
 * The last symbols of each of the 4 lanes one at a time (tail()), from the bit and output
 * positions the bulk left in `state`; each lane's final bit position into lanes[5..8].
 */
function tails(
  block: usize,
  blockLen: u32,
  out: usize,
  n: u32,
  single: usize,
  tableBits: u32,
  lanes: usize,
): void {
  const q = (n + 3) >>> 2;
  const mask: u32 = (1 << tableBits) - 1;
  for (let i: u32 = 0; i < 4; i++) {
    const e = out + <usize>min(n, (i + 1) * q);
    const at = <usize>(i << 2);
    store<u32>(
      lanes + 20 + at,
      tail(block, blockLen, load<u32>(state + at), load<u32>(state + 16 + at), e, single, mask),
    );
  }
}

/** Bulk.lanes4 for a table of any width (blocks of fewer than 2048 symbols). */
function lanes4Any(block: usize, blockLen: u32, out: usize, n: u32, tableBits: u32, lanes: usize): void {
  Bulk.lanes4<u64>(block, blockLen, out, n, tableBits, lanes, 3);
}

/**
 * The 4 lanes of a Huffman block (huffman.ts) into out[0..n), with QUAD built by
 * buildQuad for tableBits. The block lies at `block` with 8 zero bytes after its
 * blockLen bytes; lanes holds u32 lane start bits [0..3] and the end bit [4] (relative to
 * the block) and gets each lane's final bit position in [5..8]. The bulk runs in Bulk.lanes4
 * (its own copy for HIER's 11-bit tables, where the mask is a constant, and one for the
 * 12-bit wide table, 4 lookups a read, which the caller picks for long streams:
 * kernelTableBits in huffman.ts), then, for those two widths, what each lane has left
 * in Rest.lane, and the last symbols of each lane one at a time.
 */
export function decodeLanesQuad(
  block: usize,
  blockLen: u32,
  out: usize,
  n: u32,
  single: usize,
  tableBits: u32,
  lanes: usize,
): void {
  const q = (n + 3) >>> 2;
  const e0 = out + <usize>min(n, q);
  const e1 = out + <usize>min(n, 2 * q);
  const e2 = out + <usize>min(n, 3 * q);
  const e3 = out + <usize>n;
  if (tableBits === 11) {
    Bulk.lanes4<u64>(block, blockLen, out, n, 11, lanes, 3);
    Rest.lanes<u64>(block, blockLen, e0, e1, e2, e3, 11, 3);
  } else if (tableBits === WIDE_BITS) {
    Bulk.lanes4<u64>(block, blockLen, out, n, WIDE_BITS, lanes, 4);
    Rest.lanes<u64>(block, blockLen, e0, e1, e2, e3, WIDE_BITS, 4);
  } else lanes4Any(block, blockLen, out, n, tableBits, lanes);
  tails(block, blockLen, out, n, single, tableBits, lanes);
}

/**
 * The 4 lanes of a Huffman block into out[0..n) as decodeLanesQuad, with the 2-symbol
 * table buildTwo built at the 12-bit width (WIDE_BITS, the only one): Bulk.lanes4<u32> (4
 * lookups a 64-bit read, each writing 2 bytes whole and moving the output by its count),
 * what each lane has left in Rest.lane<u32>, then the last symbols of each lane one at a
 * time. For streams of about 5 to 7 bits a symbol, where a 12-bit lookup seldom holds a
 * third code (huffman.ts picks, twoSymbolLookups). Arguments and results as
 * decodeLanesQuad's.
 */
export function decodeLanesTwo(
  block: usize,
  blockLen: u32,
  out: usize,
  n: u32,
  single: usize,
  tableBits: u32,
  lanes: usize,
): void {
  if (tableBits !== WIDE_BITS) unreachable();
  const q = (n + 3) >>> 2;
  Bulk.lanes4<u32>(block, blockLen, out, n, WIDE_BITS, lanes, 4);
  Rest.lanes<u32>(
    block,
    blockLen,
    out + <usize>min(n, q),
    out + <usize>min(n, 2 * q),
    out + <usize>min(n, 3 * q),
    out + <usize>n,
    WIDE_BITS,
    4,
  );
  tails(block, blockLen, out, n, single, WIDE_BITS, lanes);
}

/**
 * The 4 lanes' bulk with one symbol a lookup from the one-symbol table `single` (copied
 * to address 0, where a lookup's address is its scaled index alone): each step reads 64
 * bits per lane (at least 57 of them the lane's) and makes `lookups` lookups from them (5
 * of at most 11 bits, or 4 of 12), each writing its one symbol at a fixed place, so the
 * output moves by a constant and a lookup waits on no count. For streams of long codes,
 * where a lookup of buildQuad's table seldom holds a second symbol (huffman.ts picks,
 * singleSymbolLookups), this does less work a symbol and needs no 4-symbol table. Leaves
 * the lanes' positions in `state` for tail().
 */
// biome-ignore lint/complexity/noStaticOnlyClass: AssemblyScript inlines a function only as a static method with @inline.
class Singles {
  @inline
  static lanes4(
    block: usize,
    blockLen: u32,
    out: usize,
    n: u32,
    tableBits: u32,
    lanes: usize,
    lookups: i32,
  ): void {
    const q = (n + 3) >>> 2;
    const mask1: u32 = ((1 << tableBits) - 1) << 1;
    const base: u64 = (<u64>block) << 3;
    let p0 = base + <u64>load<u32>(lanes);
    let p1 = base + <u64>load<u32>(lanes + 4);
    let p2 = base + <u64>load<u32>(lanes + 8);
    let p3 = base + <u64>load<u32>(lanes + 12);
    let o0 = out;
    let o1 = out + <usize>min(n, q);
    let o2 = out + <usize>min(n, 2 * q);
    let o3 = out + <usize>min(n, 3 * q);
    const e0 = o1;
    const e1 = o2;
    const e2 = o3;
    const e3 = out + <usize>n;
    // As in Bulk.lanes4: a read at p >>> 3 stays inside the block and its 8 zero bytes
    // while p <= (block + blockLen) * 8; a step moves p by at most lookups * tableBits.
    const limit = base + ((<u64>blockLen) << 3);
    const perStep = <i32>(<u32>lookups * tableBits);
    for (;;) {
      const room = <i32>min(min(e0 - o0, e1 - o1), min(e2 - o2, e3 - o3));
      const far = max(max(p0, p1), max(p2, p3));
      let k = min(room / lookups, <i32>(limit - far) / perStep);
      if (k < 1) break;
      for (; k > 0; k--) {
        let w0 = (load<u64>(<usize>(p0 >>> 3)) >>> (p0 & 7)) << 1;
        let w1 = (load<u64>(<usize>(p1 >>> 3)) >>> (p1 & 7)) << 1;
        let w2 = (load<u64>(<usize>(p2 >>> 3)) >>> (p2 & 7)) << 1;
        let w3 = (load<u64>(<usize>(p3 >>> 3)) >>> (p3 & 7)) << 1;
        const x0_0 = <u32>load<u16>(<usize>(<u32>w0 & mask1), QUAD);
        const x1_0 = <u32>load<u16>(<usize>(<u32>w1 & mask1), QUAD);
        const x2_0 = <u32>load<u16>(<usize>(<u32>w2 & mask1), QUAD);
        const x3_0 = <u32>load<u16>(<usize>(<u32>w3 & mask1), QUAD);
        store<u8>(o0, x0_0, 0);
        store<u8>(o1, x1_0, 0);
        store<u8>(o2, x2_0, 0);
        store<u8>(o3, x3_0, 0);
        const b0_0 = x0_0 >>> 8;
        const b1_0 = x1_0 >>> 8;
        const b2_0 = x2_0 >>> 8;
        const b3_0 = x3_0 >>> 8;
        w0 >>>= <u64>b0_0;
        w1 >>>= <u64>b1_0;
        w2 >>>= <u64>b2_0;
        w3 >>>= <u64>b3_0;
        const x0_1 = <u32>load<u16>(<usize>(<u32>w0 & mask1), QUAD);
        const x1_1 = <u32>load<u16>(<usize>(<u32>w1 & mask1), QUAD);
        const x2_1 = <u32>load<u16>(<usize>(<u32>w2 & mask1), QUAD);
        const x3_1 = <u32>load<u16>(<usize>(<u32>w3 & mask1), QUAD);
        store<u8>(o0, x0_1, 1);
        store<u8>(o1, x1_1, 1);
        store<u8>(o2, x2_1, 1);
        store<u8>(o3, x3_1, 1);
        const b0_1 = x0_1 >>> 8;
        const b1_1 = x1_1 >>> 8;
        const b2_1 = x2_1 >>> 8;
        const b3_1 = x3_1 >>> 8;
        w0 >>>= <u64>b0_1;
        w1 >>>= <u64>b1_1;
        w2 >>>= <u64>b2_1;
        w3 >>>= <u64>b3_1;
        const x0_2 = <u32>load<u16>(<usize>(<u32>w0 & mask1), QUAD);
        const x1_2 = <u32>load<u16>(<usize>(<u32>w1 & mask1), QUAD);
        const x2_2 = <u32>load<u16>(<usize>(<u32>w2 & mask1), QUAD);
        const x3_2 = <u32>load<u16>(<usize>(<u32>w3 & mask1), QUAD);
        store<u8>(o0, x0_2, 2);
        store<u8>(o1, x1_2, 2);
        store<u8>(o2, x2_2, 2);
        store<u8>(o3, x3_2, 2);
        const b0_2 = x0_2 >>> 8;
        const b1_2 = x1_2 >>> 8;
        const b2_2 = x2_2 >>> 8;
        const b3_2 = x3_2 >>> 8;
        w0 >>>= <u64>b0_2;
        w1 >>>= <u64>b1_2;
        w2 >>>= <u64>b2_2;
        w3 >>>= <u64>b3_2;
        const x0_3 = <u32>load<u16>(<usize>(<u32>w0 & mask1), QUAD);
        const x1_3 = <u32>load<u16>(<usize>(<u32>w1 & mask1), QUAD);
        const x2_3 = <u32>load<u16>(<usize>(<u32>w2 & mask1), QUAD);
        const x3_3 = <u32>load<u16>(<usize>(<u32>w3 & mask1), QUAD);
        store<u8>(o0, x0_3, 3);
        store<u8>(o1, x1_3, 3);
        store<u8>(o2, x2_3, 3);
        store<u8>(o3, x3_3, 3);
        const b0_3 = x0_3 >>> 8;
        const b1_3 = x1_3 >>> 8;
        const b2_3 = x2_3 >>> 8;
        const b3_3 = x3_3 >>> 8;
        let s0 = b0_0 + b0_1 + b0_2 + b0_3;
        let s1 = b1_0 + b1_1 + b1_2 + b1_3;
        let s2 = b2_0 + b2_1 + b2_2 + b2_3;
        let s3 = b3_0 + b3_1 + b3_2 + b3_3;
        if (lookups === 5) {
          w0 >>>= <u64>b0_3;
          w1 >>>= <u64>b1_3;
          w2 >>>= <u64>b2_3;
          w3 >>>= <u64>b3_3;
          const x0_4 = <u32>load<u16>(<usize>(<u32>w0 & mask1), QUAD);
          const x1_4 = <u32>load<u16>(<usize>(<u32>w1 & mask1), QUAD);
          const x2_4 = <u32>load<u16>(<usize>(<u32>w2 & mask1), QUAD);
          const x3_4 = <u32>load<u16>(<usize>(<u32>w3 & mask1), QUAD);
          store<u8>(o0, x0_4, 4);
          store<u8>(o1, x1_4, 4);
          store<u8>(o2, x2_4, 4);
          store<u8>(o3, x3_4, 4);
          const b0_4 = x0_4 >>> 8;
          const b1_4 = x1_4 >>> 8;
          const b2_4 = x2_4 >>> 8;
          const b3_4 = x3_4 >>> 8;
          s0 += b0_4;
          s1 += b1_4;
          s2 += b2_4;
          s3 += b3_4;
        }
        p0 += <u64>s0;
        p1 += <u64>s1;
        p2 += <u64>s2;
        p3 += <u64>s3;
        o0 += <usize>lookups;
        o1 += <usize>lookups;
        o2 += <usize>lookups;
        o3 += <usize>lookups;
      }
    }
    store<u32>(state, <u32>(p0 - base));
    store<u32>(state + 4, <u32>(p1 - base));
    store<u32>(state + 8, <u32>(p2 - base));
    store<u32>(state + 12, <u32>(p3 - base));
    store<u32>(state + 16, <u32>o0);
    store<u32>(state + 20, <u32>o1);
    store<u32>(state + 24, <u32>o2);
    store<u32>(state + 28, <u32>o3);
  }
}

/** Singles.lanes4 for a table of any width up to 11 bits (5 lookups a read). */
function singlesAny(block: usize, blockLen: u32, out: usize, n: u32, tableBits: u32, lanes: usize): void {
  Singles.lanes4(block, blockLen, out, n, tableBits, lanes, 5);
}

/**
 * The 4 lanes of a Huffman block into out[0..n) as decodeLanesQuad, one symbol a lookup
 * from `single` alone (built by buildSingle for tableBits; no buildQuad): Singles.lanes4,
 * then the last symbols of each lane one at a time. Arguments and results as
 * decodeLanesQuad's.
 */
export function decodeLanesSingle(
  block: usize,
  blockLen: u32,
  out: usize,
  n: u32,
  single: usize,
  tableBits: u32,
  lanes: usize,
): void {
  if (tableBits > WIDE_BITS) unreachable();
  memory.copy(QUAD, single, (<usize>2) << tableBits);
  if (tableBits === 11) Singles.lanes4(block, blockLen, out, n, 11, lanes, 5);
  else if (tableBits === WIDE_BITS) Singles.lanes4(block, blockLen, out, n, WIDE_BITS, lanes, 4);
  else singlesAny(block, blockLen, out, n, tableBits, lanes);
  tails(block, blockLen, out, n, single, tableBits, lanes);
}
