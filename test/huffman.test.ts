import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  BLOCK_HUFFMAN,
  BLOCK_SINGLE,
  BLOCK_STORED,
  codebookSize,
  codeLengths,
  fieldWidth,
  HUFFMAN_MAX_BITS,
  histogram,
  huffmanDecode,
  huffmanDecodeBf16,
  huffmanEncode,
  huffmanSizeFromHistogram,
  kernelTableBits,
  oneSymbolLookups,
  twoSymbolLookups,
  varintLength,
  WIDE_TABLE_BITS,
} from "../src/codecs/hier/huffman.ts";
import {
  BLOCK_CONTEXT,
  huffmanDecodeContext,
  huffmanEncodeContext,
} from "../src/codecs/hier/huffman-context.ts";
import { MmhError } from "../src/common/errors.ts";

/** xorshift32: deterministic pseudo-random source for generated inputs. */
function rng(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

/** Exponent-like bytes: a peaked distribution over a few dozen values. */
function peaked(n: number, seed: number, centre = 120): Uint8Array {
  const next = rng(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const r = next();
    out[i] = centre - Math.clz32(r | 1) + ((r & 3) === 0 ? 1 : 0);
  }
  return out;
}

function uniform(n: number, seed: number, alphabet = 256): Uint8Array {
  const next = rng(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = next() % alphabet;
  return out;
}

/** Encodes, checks the size function, decodes into a guarded, unaligned buffer. */
function roundTrip(input: Uint8Array): Uint8Array {
  const block = huffmanEncode(input);
  assert.equal(huffmanSizeFromHistogram(histogram(input)), block.length, "size from histogram");
  const guard = new Uint8Array(input.length + 16).fill(0xa5);
  const out = guard.subarray(7, 7 + input.length);
  huffmanDecode(block, out);
  assert.deepEqual(out, input);
  for (let i = 0; i < 7; i++) assert.equal(guard[i], 0xa5);
  for (let i = 7 + input.length; i < guard.length; i++) assert.equal(guard[i], 0xa5);
  return block;
}

function expectCorrupt(block: Uint8Array, n: number): void {
  assert.throws(
    () => huffmanDecode(block, new Uint8Array(n)),
    (e: unknown) => e instanceof MmhError && e.code === "E_CORRUPT",
  );
}

/** Decoding must either succeed or throw E_CORRUPT, and never write outside `out`. */
function decodeOrCorrupt(block: Uint8Array, n: number): void {
  const guard = new Uint8Array(n + 8).fill(0x5a);
  const out = guard.subarray(4, 4 + n);
  try {
    huffmanDecode(block, out);
  } catch (e) {
    if (!(e instanceof MmhError) || e.code !== "E_CORRUPT") throw e;
  }
  for (let i = 0; i < 4; i++) assert.equal(guard[i], 0x5a);
  for (let i = 4 + n; i < guard.length; i++) assert.equal(guard[i], 0x5a);
}

/** Entropy in bits of a histogram's distribution, times the count. */
function entropyBits(hist: Uint32Array): number {
  let n = 0;
  for (const c of hist) n += c;
  let bits = 0;
  for (const c of hist) if (c > 0) bits -= c * Math.log2(c / n);
  return bits;
}

/**
 * Package-merge as the textbook writes it (branches, a leaf flag per item, leaves counted
 * again on the way back), with huffman.ts's tie-breaking: leaves sorted by (count,
 * symbol), a leaf before a package of the same weight. codeLengths must give the same
 * lengths, not only lengths as good: they decide the bytes written.
 */
function packageMergeLengths(hist: Uint32Array, maxBits: number): Uint8Array {
  const lengths = new Uint8Array(256);
  const symbols: number[] = [];
  for (let s = 0; s < 256; s++) if (hist[s] > 0) symbols.push(s);
  const m = symbols.length;
  if (m <= 2) {
    for (const s of symbols) lengths[s] = 1;
    return lengths;
  }
  symbols.sort((a, b) => hist[a] - hist[b] || a - b);
  const weights = symbols.map((s) => hist[s]);
  const leafFlags: number[][] = [weights.map(() => 1)];
  let prev = [...weights];
  for (let level = 1; level < maxBits; level++) {
    const packages = prev.length >> 1;
    const cur: number[] = [];
    const flags: number[] = [];
    let li = 0;
    let pi = 0;
    while (li < m || pi < packages) {
      if (pi >= packages || (li < m && weights[li] <= prev[2 * pi] + prev[2 * pi + 1])) {
        cur.push(weights[li++]);
        flags.push(1);
      } else {
        cur.push(prev[2 * pi] + prev[2 * pi + 1]);
        flags.push(0);
        pi++;
      }
    }
    leafFlags.push(flags);
    prev = cur;
  }
  let take = 2 * m - 2;
  for (let level = maxBits - 1; level >= 0; level--) {
    let leaves = 0;
    for (let k = 0; k < take; k++) leaves += leafFlags[level][k];
    for (let i = 0; i < leaves; i++) lengths[symbols[i]]++;
    take = 2 * (take - leaves);
  }
  return lengths;
}

/** Plain (unlimited) Huffman code lengths, for reference. */
function referenceLengths(hist: Uint32Array): number[] {
  type Node = { w: number; leaves: number[] };
  let nodes: Node[] = [];
  for (let s = 0; s < 256; s++) if (hist[s] > 0) nodes.push({ w: hist[s], leaves: [s] });
  const lengths = new Array<number>(256).fill(0);
  if (nodes.length === 1) lengths[nodes[0].leaves[0]] = 1;
  while (nodes.length > 1) {
    nodes.sort((a, b) => a.w - b.w);
    const [a, b] = nodes;
    for (const s of [...a.leaves, ...b.leaves]) lengths[s]++;
    nodes = [{ w: a.w + b.w, leaves: [...a.leaves, ...b.leaves] }, ...nodes.slice(2)];
  }
  return lengths;
}

describe("huffman: edge cases", () => {
  it("empty input", () => {
    const block = roundTrip(new Uint8Array(0));
    assert.equal(block[0], BLOCK_STORED);
    assert.equal(block.length, 2);
  });

  it("one symbol, and one distinct symbol repeated", () => {
    for (const n of [1, 2, 3, 4, 5, 1000, 100_003]) {
      const block = roundTrip(new Uint8Array(n).fill(201));
      assert.equal(block[0], BLOCK_SINGLE, `n=${n}`);
      assert.ok(block.length <= 6);
    }
    assert.equal(huffmanEncode(Uint8Array.of(9)).length, 3);
  });

  it("two symbols", () => {
    const input = uniform(10_001, 5, 2).map((x) => (x ? 250 : 3));
    const block = roundTrip(input);
    assert.equal(block[0], BLOCK_HUFFMAN);
    assert.ok(block.length <= Math.ceil(10_001 / 8) + 3 + 5 + 12); // header, codebook, lane ends
  });

  it("all 256 symbols: uniform is stored, skewed is coded", () => {
    assert.equal(roundTrip(uniform(50_000, 7))[0], BLOCK_STORED);
    const skewed = peaked(60_000, 8);
    for (let s = 0; s < 256; s++) skewed[s * 7] = s;
    assert.equal(histogram(skewed).filter((c) => c > 0).length, 256);
    assert.equal(roundTrip(skewed)[0], BLOCK_HUFFMAN);
  });

  it("highly skewed input hits the length limit and stays near optimal", () => {
    // Symbol s appears 2^s times: unlimited Huffman would give lengths up to 17.
    const input = new Uint8Array((1 << 17) - 1);
    let at = 0;
    for (let s = 0; s < 17; s++) for (let k = 0; k < 1 << s; k++) input[at++] = s;
    const next = rng(9);
    for (let i = input.length - 1; i > 0; i--) {
      const j = next() % (i + 1);
      [input[i], input[j]] = [input[j], input[i]];
    }
    assert.equal(Math.max(...referenceLengths(histogram(input))), 16);
    const block = roundTrip(input);
    assert.equal(block[0], BLOCK_HUFFMAN);
    const lengths = new Uint8Array(256);
    codeLengths(histogram(input), lengths);
    assert.equal(Math.max(...lengths), HUFFMAN_MAX_BITS);
  });

  it("lengths around the lane split and the fast-loop margins", () => {
    for (let n = 0; n <= 80; n++) roundTrip(peaked(n, n + 1));
    for (const n of [2047, 2048, 2049, 4095, 4096, 4097, 65_535, 65_536, 65_537]) roundTrip(peaked(n, n));
  });

  it("unaligned input and block buffers", () => {
    const backing = new Uint8Array(30_011);
    backing.set(peaked(30_011, 3));
    for (const offset of [0, 1, 2, 3]) {
      const input = backing.subarray(offset, offset + 30_000 - offset);
      const block = huffmanEncode(input);
      const shifted = new Uint8Array(block.length + 3);
      shifted.set(block, 3);
      const out = new Uint8Array(input.length + 1).subarray(1);
      huffmanDecode(shifted.subarray(3), out);
      assert.deepEqual(out, input);
    }
  });

  it("is deterministic", () => {
    const input = peaked(77_777, 11);
    assert.deepEqual(huffmanEncode(input), huffmanEncode(input.slice()));
    assert.deepEqual(huffmanEncode(uniform(999, 3, 9)), huffmanEncode(uniform(999, 3, 9)));
  });

  it("a plan reused for equal counts gives the block a fresh plan gives", () => {
    // The last histogram's plan is reused: sizes and blocks must not depend on what came before.
    const a = peaked(50_000, 5);
    const b = peaked(50_000, 9);
    const fresh = huffmanEncode(b);
    const sizeA = huffmanSizeFromHistogram(histogram(a));
    assert.equal(huffmanEncode(a, histogram(a)).length, sizeA);
    const counts = histogram(b);
    assert.equal(huffmanSizeFromHistogram(counts), fresh.length);
    assert.deepEqual(huffmanEncode(b, counts), fresh);
    const back = new Uint8Array(b.length);
    huffmanDecode(fresh, back);
    assert.deepEqual(back, b);
    // Plans of other counts in between (more than the plans kept): a's block is the same.
    const first = huffmanEncode(a);
    for (let seed = 20; seed < 32; seed++) huffmanSizeFromHistogram(histogram(peaked(50_000, seed)));
    const again = huffmanEncode(a, histogram(a));
    assert.deepEqual(again, first);
    const backA = new Uint8Array(a.length);
    huffmanDecode(again, backA);
    assert.deepEqual(backA, a);
  });
});

describe("huffman: code lengths", () => {
  it("package-merge is complete, limited to 11 bits, and optimal when no limit binds", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 1_000_000 }), { minLength: 256, maxLength: 256 }),
        fc.integer({ min: 0, max: 255 }),
        (counts, zeroFrom) => {
          const hist = Uint32Array.from(counts, (c, i) => (i >= zeroFrom && c % 3 === 0 ? 0 : c));
          const lengths = new Uint8Array(256);
          const used = codeLengths(hist, lengths);
          if (used < 2) return;
          let kraft = 0;
          for (let s = 0; s < 256; s++) {
            assert.ok(lengths[s] <= HUFFMAN_MAX_BITS);
            assert.equal(lengths[s] > 0, hist[s] > 0);
            if (lengths[s] > 0) kraft += 2 ** -lengths[s];
          }
          assert.equal(kraft, 1);
          const ref = referenceLengths(hist);
          const cost = (ls: ArrayLike<number>) => {
            let bits = 0;
            for (let s = 0; s < 256; s++) bits += hist[s] * ls[s];
            return bits;
          };
          if (Math.max(...ref) <= HUFFMAN_MAX_BITS) assert.equal(cost(lengths), cost(ref));
          else assert.ok(cost(lengths) >= cost(ref));
        },
      ),
      { numRuns: 200 },
    );
  });

  it("gives the textbook package-merge's lengths, ties and the 11-bit limit included", () => {
    const cases = fc.oneof(
      fc.array(fc.integer({ min: 0, max: 12 }), { minLength: 256, maxLength: 256 }),
      fc.array(fc.integer({ min: 0, max: 2 ** 32 - 1 }), { minLength: 256, maxLength: 256 }),
      // Fibonacci-like and power-law counts: the limit binds.
      fc
        .integer({ min: 3, max: 256 })
        .map((m) => Array.from({ length: 256 }, (_, i) => (i < m ? 2 ** Math.min(31, i) : 0))),
      fc
        .array(fc.integer({ min: 0, max: 30 }), { minLength: 256, maxLength: 256 })
        .map((es) => es.map((e) => Math.floor(1.9 ** e))),
    );
    fc.assert(
      fc.property(cases, (counts) => {
        const hist = Uint32Array.from(counts);
        const lengths = new Uint8Array(256);
        codeLengths(hist, lengths);
        assert.deepEqual(lengths, packageMergeLengths(hist, HUFFMAN_MAX_BITS));
      }),
      { numRuns: 400 },
    );
  });

  it("exponent-like data codes within 2.5% of its entropy (a 1 MiB block)", () => {
    const input = peaked(1 << 20, 21);
    const block = roundTrip(input);
    const entropyBytes = entropyBits(histogram(input)) / 8;
    assert.ok(block.length < entropyBytes * 1.025, `${block.length} vs ${entropyBytes}`);
  });
});

describe("huffman: round trips (fast-check)", () => {
  const lengthArb = fc.oneof(
    fc.integer({ min: 0, max: 64 }),
    fc.integer({ min: 0, max: 5000 }),
    fc.integer({ min: 0, max: 100_000 }),
  );

  it("random bytes", () => {
    fc.assert(
      fc.property(lengthArb, fc.integer(), fc.integer({ min: 1, max: 256 }), (n, seed, alphabet) => {
        roundTrip(uniform(n, seed, alphabet));
      }),
      { numRuns: 60 },
    );
  });

  it("skewed distributions", () => {
    fc.assert(
      fc.property(lengthArb, fc.integer(), fc.integer({ min: 0, max: 255 }), (n, seed, centre) => {
        roundTrip(peaked(n, seed, Math.max(centre, 40)));
      }),
      { numRuns: 60 },
    );
  });

  it("few symbols with arbitrary weights", () => {
    fc.assert(
      fc.property(
        lengthArb,
        fc.integer(),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 1, max: 1000 })), {
          minLength: 1,
          maxLength: 6,
        }),
        (n, seed, weights) => {
          const total = weights.reduce((a, [, w]) => a + w, 0);
          const next = rng(seed);
          const input = new Uint8Array(n);
          for (let i = 0; i < n; i++) {
            let r = next() % total;
            let k = 0;
            while (r >= weights[k][1]) r -= weights[k++][1];
            input[i] = weights[k][0];
          }
          roundTrip(input);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("arbitrary small arrays", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (input) => {
        roundTrip(input);
      }),
      { numRuns: 200 },
    );
  });
});

describe("huffman: malformed blocks", () => {
  const samples: Uint8Array[] = [
    new Uint8Array(0),
    new Uint8Array(50).fill(3),
    uniform(200, 1),
    peaked(37, 2),
    peaked(3001, 3),
    uniform(2500, 4, 2),
  ];

  it("every truncation, and any extra byte, is E_CORRUPT", () => {
    for (const input of samples) {
      const block = huffmanEncode(input);
      for (let cut = 0; cut < block.length; cut++) expectCorrupt(block.subarray(0, cut), input.length);
      const longer = new Uint8Array(block.length + 1);
      longer.set(block);
      expectCorrupt(longer, input.length);
    }
  });

  it("a wrong symbol count is E_CORRUPT", () => {
    for (const input of samples) {
      const block = huffmanEncode(input);
      for (const n of [input.length + 1, input.length + 4, Math.max(0, input.length - 1)]) {
        if (n !== input.length) expectCorrupt(block, n);
      }
    }
  });

  it("unknown block types and non-minimal counts are E_CORRUPT", () => {
    expectCorrupt(Uint8Array.of(7, 0), 0);
    expectCorrupt(Uint8Array.of(BLOCK_STORED, 0x80, 0x00), 0);
    expectCorrupt(Uint8Array.of(BLOCK_STORED, 0xff, 0xff, 0xff, 0xff, 0x0f), 0);
    expectCorrupt(Uint8Array.of(BLOCK_SINGLE, 0, 5), 0);
  });

  /** A Huffman block for 8 symbols a..b..: header, codebook, lane fields, data. */
  function handMade(nibbles: number[], lo: number, laneEnds: number[], data: number[], n = 8): Uint8Array {
    const book: number[] = [];
    for (let i = 0; i < nibbles.length; i += 2) book.push(nibbles[i] | ((nibbles[i + 1] ?? 0) << 4));
    return Uint8Array.from([BLOCK_HUFFMAN, n, lo, lo + nibbles.length - 1, ...book, ...laneEnds, ...data]);
  }

  it("bad codebooks are E_CORRUPT", () => {
    // Baseline: symbols 10, 11 with 1-bit codes; 8 symbols in 4 lanes of 2 bits each.
    const good = handMade([1, 1], 10, [2, 4, 6, 8], [0b10011001]);
    const out = new Uint8Array(8);
    huffmanDecode(good, out);
    assert.deepEqual(out, Uint8Array.of(11, 10, 10, 11, 11, 10, 10, 11));
    expectCorrupt(handMade([1, 1, 1], 10, [2, 4, 6, 8], [0]), 8); // over-subscribed
    expectCorrupt(handMade([1, 2], 10, [2, 4, 6, 8], [0]), 8); // incomplete
    expectCorrupt(handMade([1, 0], 10, [2, 4, 6, 8], [0]), 8); // one code, range not tight
    expectCorrupt(handMade([1], 10, [2, 4, 6, 8], [0]), 8); // one code
    expectCorrupt(handMade([12, 1, 2, 3], 10, [2, 4, 6, 8], [0]), 8); // length over 11
    expectCorrupt(handMade([0, 1, 1], 10, [2, 4, 6, 8], [0]), 8); // range not tight
    expectCorrupt(Uint8Array.from([BLOCK_HUFFMAN, 8, 11, 10, 0x11, 2, 4, 6, 8, 0]), 8); // lo > hi
    const valid = handMade([1, 2, 2], 10, [2, 4, 6, 8], [0]);
    huffmanDecode(valid, out);
    assert.deepEqual(out, new Uint8Array(8).fill(10));
    valid[5] |= 0x50; // a nonzero padding nibble after an odd number of lengths
    expectCorrupt(valid, 8);
  });

  it("lane ends that do not match the streams are E_CORRUPT", () => {
    expectCorrupt(handMade([1, 1], 10, [3, 4, 6, 8], [0b10011001]), 8); // lane 0 ends late
    expectCorrupt(handMade([1, 1], 10, [1, 4, 6, 8], [0b10011001]), 8); // lane 0 ends early
    expectCorrupt(handMade([1, 1], 10, [4, 2, 6, 8], [0b10011001]), 8); // not rising
    expectCorrupt(handMade([1, 1], 10, [2, 4, 6, 7], [0b10011001]), 8); // leftover bit
    expectCorrupt(handMade([1, 1], 10, [2, 4, 6, 9], [0b10011001, 0]), 8); // ends past the data
    expectCorrupt(handMade([1, 1], 10, [2, 4, 6, 8], [0b10011001, 0]), 8); // extra byte
    expectCorrupt(handMade([1, 1], 10, [2, 4, 5, 7], [0b10011001]), 8); // padding bit set
    expectCorrupt(handMade([1, 1], 10, [2, 4, 6, 8], [0b10011001], 9), 9); // too few bits
  });

  it("random byte flips decode or throw E_CORRUPT, never write outside the output", () => {
    const inputs = [peaked(5000, 31), peaked(70_001, 32), uniform(3000, 33, 5), peaked(129, 34)];
    const blocks = inputs.map((x) => huffmanEncode(x));
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: inputs.length - 1 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        (which, flips, early) => {
          const block = blocks[which].slice();
          // Early flips hit the header, codebook and lane ends; the others anywhere.
          for (const [at, x] of flips) block[at % (early ? Math.min(40, block.length) : block.length)] ^= x;
          decodeOrCorrupt(block, inputs[which].length);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("random bytes after a valid header decode or throw E_CORRUPT", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 400 }), fc.nat(2000), (tail, n) => {
        const count = [];
        let v = n;
        while (v >= 0x80) {
          count.push((v & 0x7f) | 0x80);
          v >>>= 7;
        }
        count.push(v);
        decodeOrCorrupt(Uint8Array.from([BLOCK_HUFFMAN, ...count, ...tail]), n);
      }),
      { numRuns: 400 },
    );
  });
});

describe("huffman: exponents decoded straight into BF16 words", () => {
  /** What huffmanDecode and the bf16 merge give: sign << 15 | exponent << 7 | mantissa. */
  function expected(exponents: Uint8Array, signMantissa: Uint8Array): Uint16Array {
    return Uint16Array.from(
      exponents,
      (e, i) => ((signMantissa[i] & 0x80) << 8) | (e << 7) | (signMantissa[i] & 0x7f),
    );
  }

  it("equals decoding and merging, for odd sizes, uneven lanes and unaligned inputs", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.integer({ min: 2, max: 40 }), fc.integer({ min: 40, max: 70_000 })),
        fc.integer(),
        fc.integer({ min: 0, max: 7 }),
        (n, seed, shift) => {
          const exponents = peaked(n, seed);
          const block = huffmanEncode(exponents);
          if (block[0] !== BLOCK_HUFFMAN) return; // one symbol: a single-symbol block
          const signMantissa = uniform(n + shift, seed ^ 0x5bd1e995).subarray(shift);
          const guard = new Uint16Array(n + 8).fill(0xa5a5);
          const out = guard.subarray(4, 4 + n);
          huffmanDecodeBf16(block.slice(), signMantissa, out);
          assert.deepEqual(out, expected(exponents, signMantissa));
          for (const i of [0, 1, 2, 3, n + 4, n + 5, n + 6, n + 7]) assert.equal(guard[i], 0xa5a5);
        },
      ),
      { numRuns: 80 },
    );
  });

  it("refuses what huffmanDecode refuses, with E_CORRUPT, and never writes outside its output", () => {
    const exponents = peaked(20_001, 41);
    const signMantissa = uniform(20_001, 42);
    const block = huffmanEncode(exponents);
    for (const cut of [0, 1, 3, 10, block.length >> 1, block.length - 1]) {
      assert.throws(
        () => huffmanDecodeBf16(block.subarray(0, cut), signMantissa, new Uint16Array(20_001)),
        (e: unknown) => e instanceof MmhError && e.code === "E_CORRUPT",
      );
    }
    assert.throws(
      () =>
        huffmanDecodeBf16(
          huffmanEncode(new Uint8Array(100).fill(9)),
          signMantissa.subarray(0, 100),
          new Uint16Array(100),
        ),
      (e: unknown) => e instanceof MmhError && e.code === "E_CORRUPT",
      "a single-symbol block is not a Huffman block",
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }),
        (flips) => {
          const damaged = block.slice();
          for (const [at, x] of flips) damaged[at % damaged.length] ^= x;
          const guard = new Uint16Array(20_001 + 8).fill(0x5a5a);
          let plain: unknown;
          try {
            huffmanDecode(damaged, new Uint8Array(20_001));
          } catch (e) {
            plain = e;
          }
          try {
            huffmanDecodeBf16(damaged, signMantissa, guard.subarray(4, 4 + 20_001));
            assert.equal(plain, undefined, "both decode");
          } catch (e) {
            assert.ok(e instanceof MmhError && e.code === "E_CORRUPT");
            assert.ok(plain instanceof MmhError && plain.code === "E_CORRUPT", "both refuse");
          }
          for (const i of [0, 1, 2, 3, 20_005, 20_006, 20_007, 20_008]) assert.equal(guard[i], 0x5a5a);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("huffman: the kernels' table width", () => {
  /** Lane bits as checkHuffmanBlock leaves them: lanes from bit 0 to `total`. */
  const lanesOf = (total: number) => Int32Array.from([0, total >> 2, total >> 1, (3 * total) >> 2, total]);
  it("takes the 12-bit table for long streams of 4 to 7 bits a symbol only", () => {
    const n = 262_144;
    // About 3 bits (BF16 exponents: up to 4 symbols a lookup either way), about 6 (FP16's
    // bits 7-14: two codes fit in 12 bits), about 8 (a sign and mantissa byte).
    assert.equal(kernelTableBits(HUFFMAN_MAX_BITS, n, lanesOf(3 * n)), HUFFMAN_MAX_BITS);
    assert.equal(kernelTableBits(HUFFMAN_MAX_BITS, n, lanesOf(4 * n)), WIDE_TABLE_BITS);
    assert.equal(kernelTableBits(HUFFMAN_MAX_BITS, n, lanesOf(6 * n)), WIDE_TABLE_BITS);
    assert.equal(kernelTableBits(HUFFMAN_MAX_BITS, n, lanesOf(7 * n - 1)), WIDE_TABLE_BITS);
    assert.equal(kernelTableBits(HUFFMAN_MAX_BITS, n, lanesOf(7 * n)), HUFFMAN_MAX_BITS);
    assert.equal(kernelTableBits(HUFFMAN_MAX_BITS, n, lanesOf(8 * n)), HUFFMAN_MAX_BITS);
    // Shorter streams take it from 5 bits a symbol (up to 2 symbols a lookup) and 32768
    // symbols on; the shortest, and tables narrower than the longest code allows, keep
    // their width.
    assert.equal(kernelTableBits(HUFFMAN_MAX_BITS, 131_071, lanesOf(4.5 * 131_071)), HUFFMAN_MAX_BITS);
    assert.equal(kernelTableBits(HUFFMAN_MAX_BITS, 131_072, lanesOf(4.5 * 131_072)), WIDE_TABLE_BITS);
    assert.equal(kernelTableBits(HUFFMAN_MAX_BITS, 131_071, lanesOf(6 * 131_071)), WIDE_TABLE_BITS);
    assert.equal(kernelTableBits(HUFFMAN_MAX_BITS, 32_768, lanesOf(5 * 32_768)), WIDE_TABLE_BITS);
    assert.equal(kernelTableBits(HUFFMAN_MAX_BITS, 32_768, lanesOf(5 * 32_768 - 1)), HUFFMAN_MAX_BITS);
    assert.equal(kernelTableBits(HUFFMAN_MAX_BITS, 32_768, lanesOf(7 * 32_768)), HUFFMAN_MAX_BITS);
    assert.equal(kernelTableBits(HUFFMAN_MAX_BITS, 32_767, lanesOf(6 * 32_767)), HUFFMAN_MAX_BITS);
    assert.equal(kernelTableBits(9, n, lanesOf(6 * n)), 9);
  });
  it("takes up to 2 symbols a lookup at the 12-bit width from 5 bits a symbol on average", () => {
    for (const n of [32_768, 262_144]) {
      assert.equal(twoSymbolLookups(n, lanesOf(4 * n), WIDE_TABLE_BITS), false);
      assert.equal(twoSymbolLookups(n, lanesOf(5 * n - 1), WIDE_TABLE_BITS), false);
      assert.equal(twoSymbolLookups(n, lanesOf(5 * n), WIDE_TABLE_BITS), true);
      assert.equal(twoSymbolLookups(n, lanesOf(6 * n), WIDE_TABLE_BITS), true);
      // Only at the wide width (decodeLanesTwo takes no other).
      assert.equal(twoSymbolLookups(n, lanesOf(6 * n), HUFFMAN_MAX_BITS), false);
    }
  });
  it("decodes one symbol a lookup from 7 bits a symbol on average, from 5 below 32768 symbols", () => {
    for (const n of [32_768, 262_144]) {
      assert.equal(oneSymbolLookups(n, lanesOf(3 * n)), false);
      assert.equal(oneSymbolLookups(n, lanesOf(5 * n)), false);
      assert.equal(oneSymbolLookups(n, lanesOf(7 * n - 1)), false);
      assert.equal(oneSymbolLookups(n, lanesOf(7 * n)), true);
      assert.equal(oneSymbolLookups(n, lanesOf(8 * n)), true);
    }
    for (const n of [1000, 32_767]) {
      assert.equal(oneSymbolLookups(n, lanesOf(3 * n)), false);
      assert.equal(oneSymbolLookups(n, lanesOf(5 * n - 1)), false);
      assert.equal(oneSymbolLookups(n, lanesOf(5 * n)), true);
      assert.equal(oneSymbolLookups(n, lanesOf(8 * n)), true);
    }
  });
});

describe("huffman: histogram and sizes", () => {
  it("histogram counts every byte, at any alignment", () => {
    const data = uniform(1003, 41, 7);
    for (const offset of [0, 1, 2, 3]) {
      const part = data.subarray(offset);
      const expected = new Uint32Array(256);
      for (const x of part) expected[x]++;
      assert.deepEqual(histogram(part), expected);
    }
  });

  it("huffmanSizeFromHistogram equals the size of the block package-merge's code gives, near the stored size", () => {
    // The size straight from the code lengths, as planAfresh computes it without its
    // entropy bound: the bound may only skip building codes whose block is stored anyway.
    const direct = (hist: Uint32Array, n: number): number => {
      const stored = 1 + varintLength(n) + n;
      const lengths = new Uint8Array(256);
      const used = codeLengths(hist, lengths);
      if (used === 1) return 1 + varintLength(n) + 1;
      let lo = 0;
      while (lengths[lo] === 0) lo++;
      let hi = 255;
      while (lengths[hi] === 0) hi--;
      let bits = 0;
      for (let s = lo; s <= hi; s++) bits += hist[s] * lengths[s];
      const size =
        1 + varintLength(n) + codebookSize(lengths, lo, hi) + 4 * fieldWidth(n) + Math.ceil(bits / 8);
      return Math.min(size, stored);
    };
    const next = rng(11);
    let stored = 0;
    let coded = 0;
    let close = 0;
    for (let round = 0; round < 600; round++) {
      // Counts base + a random share of `spread`: from uniform (stored) to skewed enough
      // that coding just pays, over 2 to 256 symbols; and tiny streams.
      const symbols = round % 2 === 0 ? 256 : 2 + (next() % 255);
      const base = [1, 3, 40, 256, 1024][round % 5];
      const spread = (round % 40) * base * 0.02;
      const hist = new Uint32Array(256);
      let n = 0;
      for (let s = 0; s < symbols; s++) {
        hist[s] = base + Math.floor(((next() % 1000) / 1000) * spread);
        n += hist[s];
      }
      const size = huffmanSizeFromHistogram(hist);
      const expected = direct(hist, n);
      assert.equal(size, expected, `round ${round}: ${symbols} symbols, n ${n}`);
      const storedSize = 1 + varintLength(n) + n;
      if (size === storedSize) stored++;
      else coded++;
      if (size < storedSize && size > storedSize - 8) close++;
    }
    assert.ok(
      stored > 50 && coded > 50 && close > 3,
      `${stored} stored, ${coded} coded, ${close} within 8 bytes`,
    );
  });

  it("huffmanSizeFromHistogram rejects a histogram of the wrong length", () => {
    assert.throws(() => huffmanSizeFromHistogram(new Uint32Array(10)), MmhError);
  });
});

describe("huffman with context (experimental)", () => {
  /** A Markov source: runs within one of `groups` groups of 3 adjacent values. */
  function markov(n: number, seed: number, groups = 4): Uint8Array {
    const next = rng(seed);
    const out = new Uint8Array(n);
    let g = 0;
    for (let i = 0; i < n; i++) {
      const r = next();
      if ((r & 15) === 0) g = (r >>> 4) % groups; // switch group now and then
      out[i] = 100 + g * 3 + ((r >>> 8) % 3);
    }
    return out;
  }

  function roundTripContext(input: Uint8Array, contexts: number): Uint8Array {
    const block = huffmanEncodeContext(input, contexts);
    const guard = new Uint8Array(input.length + 16).fill(0xa5);
    const out = guard.subarray(5, 5 + input.length);
    huffmanDecodeContext(block, out);
    assert.deepEqual(out, input);
    for (let i = 0; i < 5; i++) assert.equal(guard[i], 0xa5);
    for (let i = 5 + input.length; i < guard.length; i++) assert.equal(guard[i], 0xa5);
    // Never larger than the plain coder's block.
    assert.ok(block.length <= huffmanSizeFromHistogram(histogram(input)));
    return block;
  }

  it("codes a Markov source with context and much smaller", () => {
    const input = markov(100_001, 1);
    const plain = huffmanEncode(input).length;
    for (const k of [2, 3, 4]) {
      const block = roundTripContext(input, k);
      assert.equal(block[0], BLOCK_CONTEXT);
      assert.ok(block.length < plain * (k === 4 ? 0.65 : 0.9), `K=${k}: ${block.length} vs ${plain}`);
    }
  });

  it("handles contexts with a single symbol (zero-length codes) and empty contexts", () => {
    // 7 is always followed by 8, 8 by 9, 9 by 7 or 200: buckets with one symbol each.
    const next = rng(3);
    const input = new Uint8Array(50_003);
    for (let i = 0; i < input.length; i += 3) {
      input[i] = next() % 5 === 0 ? 200 : 7;
      if (i + 1 < input.length) input[i + 1] = 8;
      if (i + 2 < input.length) input[i + 2] = 9;
    }
    for (const k of [2, 3, 4]) roundTripContext(input, k);
  });

  it("round trips random, skewed and Markov inputs of any length (fast-check)", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.integer({ min: 0, max: 5000 }), fc.integer({ min: 4000, max: 100_000 })),
        fc.integer(),
        fc.integer({ min: 2, max: 4 }),
        fc.integer({ min: 0, max: 2 }),
        (n, seed, k, kind) => {
          const input =
            kind === 0
              ? markov(n, seed, 1 + (seed & 15))
              : kind === 1
                ? peaked(n, seed)
                : uniform(n, seed, 40);
          roundTripContext(input, k);
        },
      ),
      { numRuns: 40 },
    );
  });

  it("is deterministic and rejects a bad context count", () => {
    const input = markov(30_000, 5);
    assert.deepEqual(huffmanEncodeContext(input, 3), huffmanEncodeContext(input.slice(), 3));
    assert.throws(() => huffmanEncodeContext(input, 1), MmhError);
    assert.throws(() => huffmanEncodeContext(input, 5), MmhError);
  });

  it("truncations are E_CORRUPT; flips decode or throw E_CORRUPT, never write outside", () => {
    const inputs = [markov(9001, 7), markov(60_000, 8, 9)];
    const blocks = inputs.map((x) => huffmanEncodeContext(x, 4));
    for (const [i, block] of blocks.entries()) {
      assert.equal(block[0], BLOCK_CONTEXT);
      for (let cut = 0; cut < Math.min(block.length, 400); cut++) {
        assert.throws(
          () => huffmanDecodeContext(block.subarray(0, cut), new Uint8Array(inputs[i].length)),
          (e: unknown) => e instanceof MmhError && e.code === "E_CORRUPT",
        );
      }
      for (let cut = block.length - 8; cut < block.length; cut++) {
        assert.throws(
          () => huffmanDecodeContext(block.subarray(0, cut), new Uint8Array(inputs[i].length)),
          (e: unknown) => e instanceof MmhError && e.code === "E_CORRUPT",
        );
      }
    }
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 3 }),
        fc.boolean(),
        (which, flips, early) => {
          const block = blocks[which].slice();
          // Early flips hit the thresholds and codebooks, the others anywhere.
          for (const [at, x] of flips) block[at % (early ? 60 : block.length)] ^= x;
          const n = inputs[which].length;
          const guard = new Uint8Array(n + 8).fill(0x5a);
          try {
            huffmanDecodeContext(block, guard.subarray(4, 4 + n));
          } catch (e) {
            if (!(e instanceof MmhError) || e.code !== "E_CORRUPT") throw e;
          }
          for (let i = 0; i < 4; i++) assert.equal(guard[i], 0x5a);
          for (let i = 4 + n; i < guard.length; i++) assert.equal(guard[i], 0x5a);
        },
      ),
      { numRuns: 300 },
    );
  });
});
