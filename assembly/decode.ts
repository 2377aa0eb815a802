/**
 * HIER's Huffman decoding with up to 4 symbols a lookup (exported through kernels.ts).
 * The block layout and lane table are huffman.ts's; so is the one-symbol table `single`
 * (u16 entries s | len << 8, 2^tableBits of them), which the TypeScript side builds while
 * it checks the codebook. Its twin is huffmanDecode in src/codecs/hier/huffman.ts, which
 * gives the same bytes (test/kernels.test.ts).
 */

/**
 * Builds the one-symbol table `single` (u16[2^tableBits], entries s | len << 8) from the
 * code lengths lengths[0..256) (u8, 0 for no code) of a complete canonical code of at
 * most tableBits bits (codes by length, then symbol, stored bit-reversed): the twin of
 * buildDecodeTables' first half in huffman.ts.
 */
export function buildSingle(lengths: usize, tableBits: u32, single: usize): void {
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
 * Builds `quad` (u64[2^tableBits]) from `single`: entry idx holds the symbols that the
 * low tableBits bits idx decode to, as many as fit (1 to 4), as
 * s1 | s2 << 8 | s3 << 16 | s4 << 24 | bits << 32 | count << 40: a shift by entry >>> 32
 * (taken mod 64) is then a shift by its bits, and entry >>> 40 its count.
 */
export function buildQuad(single: usize, tableBits: u32, quad: usize): void {
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
    store<u64>(quad + ((<usize>idx) << 3), symbols | ((<u64>bits) << 32) | (count << 40));
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

/**
 * The 4 lanes of a Huffman block (huffman.ts) into out[0..n). The block lies at `block`
 * with 8 zero bytes after its blockLen bytes; lanes holds u32 lane start bits [0..3] and
 * the end bit [4] (relative to the block) and gets each lane's final bit position in
 * [5..8]; quad is buildQuad's table. Each step reads 64 bits per lane and makes 2
 * lookups from them (at most 22 bits of the 57 a read holds), up to 8 symbols a lane,
 * each lookup's 4 bytes written whole (those past its count written again by the next).
 * (3 lookups a read measured slower: a longer chain of dependent loads per lane.)
 */
export function decodeLanesQuad(
  block: usize,
  blockLen: u32,
  out: usize,
  n: u32,
  quad: usize,
  single: usize,
  tableBits: u32,
  lanes: usize,
): void {
  const q = (n + 3) >>> 2;
  const mask: u64 = (1 << tableBits) - 1;
  let p0 = load<u32>(lanes);
  let p1 = load<u32>(lanes + 4);
  let p2 = load<u32>(lanes + 8);
  let p3 = load<u32>(lanes + 12);
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
  // p <= blockLen * 8; a step moves p by at most 2 * tableBits.
  const limit = <i32>blockLen * 8;
  const perStep = <i32>(2 * tableBits);
  for (;;) {
    const room = <i32>min(min(e0 - o0, e1 - o1), min(e2 - o2, e3 - o3));
    const far = <i32>max(max(p0, p1), max(p2, p3));
    let k = min(room / 8, (limit - far) / perStep);
    if (k < 2) break;
    for (; k > 0; k--) {
      let w0 = load<u64>(block + (p0 >>> 3)) >>> (p0 & 7);
      let w1 = load<u64>(block + (p1 >>> 3)) >>> (p1 & 7);
      let w2 = load<u64>(block + (p2 >>> 3)) >>> (p2 & 7);
      let w3 = load<u64>(block + (p3 >>> 3)) >>> (p3 & 7);
      let a = load<u64>(quad + ((<usize>(w0 & mask)) << 3));
      let b = load<u64>(quad + ((<usize>(w1 & mask)) << 3));
      let c = load<u64>(quad + ((<usize>(w2 & mask)) << 3));
      let d = load<u64>(quad + ((<usize>(w3 & mask)) << 3));
      store<u32>(o0, <u32>a);
      store<u32>(o1, <u32>b);
      store<u32>(o2, <u32>c);
      store<u32>(o3, <u32>d);
      o0 += <usize>(a >>> 40);
      o1 += <usize>(b >>> 40);
      o2 += <usize>(c >>> 40);
      o3 += <usize>(d >>> 40);
      const s0 = <u32>(a >>> 32);
      const s1 = <u32>(b >>> 32);
      const s2 = <u32>(c >>> 32);
      const s3 = <u32>(d >>> 32);
      w0 >>>= a >>> 32;
      w1 >>>= b >>> 32;
      w2 >>>= c >>> 32;
      w3 >>>= d >>> 32;
      a = load<u64>(quad + ((<usize>(w0 & mask)) << 3));
      b = load<u64>(quad + ((<usize>(w1 & mask)) << 3));
      c = load<u64>(quad + ((<usize>(w2 & mask)) << 3));
      d = load<u64>(quad + ((<usize>(w3 & mask)) << 3));
      store<u32>(o0, <u32>a);
      store<u32>(o1, <u32>b);
      store<u32>(o2, <u32>c);
      store<u32>(o3, <u32>d);
      o0 += <usize>(a >>> 40);
      o1 += <usize>(b >>> 40);
      o2 += <usize>(c >>> 40);
      o3 += <usize>(d >>> 40);
      p0 += (s0 + <u32>(a >>> 32)) & 0xff;
      p1 += (s1 + <u32>(b >>> 32)) & 0xff;
      p2 += (s2 + <u32>(c >>> 32)) & 0xff;
      p3 += (s3 + <u32>(d >>> 32)) & 0xff;
    }
  }
  store<u32>(lanes + 20, tail(block, blockLen, p0, o0, e0, single, <u32>mask));
  store<u32>(lanes + 24, tail(block, blockLen, p1, o1, e1, single, <u32>mask));
  store<u32>(lanes + 28, tail(block, blockLen, p2, o2, e2, single, <u32>mask));
  store<u32>(lanes + 32, tail(block, blockLen, p3, o3, e3, single, <u32>mask));
}
