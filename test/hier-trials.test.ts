/**
 * HIER's zstd trials per stream: where the chunk's level is tried after level 1
 * (levelPays), and byte grouping's planes (a forced layout), where every plane is tried
 * with zstd. Each prediction is checked against zstd's real sizes on the same stream, so
 * a predictor that goes wrong fails here.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { constants, zstdCompressSync } from "node:zlib";
import { safetensorsData, toBf16, toF16 } from "../bench/lib/derived.ts";
import {
  exponentTrial,
  hierCodec,
  hierEncodedLength,
  levelPays,
  locallyStructured,
  neighbourShare,
  repeatsWorthAProbe,
  zstd,
} from "../src/codecs/hier/hier.ts";
import { histogram, huffmanSizeFromHistogram } from "../src/codecs/hier/huffman.ts";
import { keptCompressors, zstdFrame, zstdFrameLength } from "../src/codecs/hier/zstdframe.ts";
import { gaussian, rng } from "../src/tools/gen.ts";
import { repeatedWords } from "./support.ts";

const zstdSize = (bytes: Uint8Array, level: number) =>
  zstdCompressSync(bytes, {
    params: { [constants.ZSTD_c_compressionLevel]: level, [constants.ZSTD_c_checksumFlag]: 0 },
    pledgedSrcSize: bytes.length,
  }).length;

const N = 256 << 10;

/** The exponent bytes of Gaussian F32 weights (std 0.02): BF16's first stream. */
function exponents(seed: number): Uint8Array {
  const normal = gaussian(rng(seed));
  const bits = new Uint32Array(new Float32Array(N).map(() => normal() * 0.02).buffer);
  return Uint8Array.from(bits, (b) => (b >>> 23) & 0xff);
}

/** Words of 3-8 bytes drawn from a dictionary: repeats that zstd's longer searches find. */
function words(count: number, seed: number, n = N): Uint8Array {
  const next = rng(seed);
  const dict = Array.from({ length: count }, () =>
    Uint8Array.from({ length: 3 + Math.floor(next() * 6) }, () => Math.floor(next() * 40)),
  );
  const out = new Uint8Array(n);
  for (let at = 0; at < n; ) {
    const word = dict[Math.floor(next() ** 2 * count)];
    out.set(word.subarray(0, n - at), at);
    at += word.length;
  }
  return out;
}

/** FORMAT.md §6.2: per stream, its method (u8) and coded length (u32) from byte 8. */
function descriptors(payload: Uint8Array): { method: number; length: number }[] {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  return Array.from({ length: payload[3] }, (_, k) => ({
    method: payload[8 + 5 * k],
    length: view.getUint32(9 + 5 * k, true),
  }));
}

describe("the trials' cheap tests give their plain definitions' answers", () => {
  // The definitions, written plainly: repeats of 8 bytes against the position last seen
  // in their hash slot, and equal neighbours counted in 32 windows of 256 bytes.
  const probeReference = (stream: Uint8Array): boolean => {
    const n = Math.min(stream.length, 2048);
    if (n < 64) return true;
    const word = (i: number) =>
      (stream[i] | (stream[i + 1] << 8) | (stream[i + 2] << 16) | (stream[i + 3] << 24)) >>> 0;
    const slots = new Map<number, number>();
    const enough = Math.ceil((n - 7) * 0.02);
    let hits = 0;
    for (let i = 0; i <= n - 8; i++) {
      const a = word(i);
      const b = word(i + 4);
      const h = (Math.imul(a, 0x9e3779b1) ^ Math.imul(b ^ (a >>> 15), 0x85ebca77)) >>> 21;
      const j = slots.get(h);
      if (j !== undefined && word(j) === a && word(j + 4) === b && ++hits >= enough) return true;
      slots.set(h, i);
    }
    return false;
  };
  const structuredReference = (stream: Uint8Array, hist: Uint32Array): boolean => {
    const n = stream.length;
    if (n < 256) return false;
    let expected = 0;
    for (const c of hist) if (c > 0) expected += (c / n) * (c / n);
    const windows = n >= 32 * 256 * 2 ? 32 : 1;
    const length = windows === 1 ? n : 256;
    const step = Math.floor(n / windows);
    let equal = 0;
    for (let w = 0; w < windows; w++)
      for (let i = w * step + 1; i < w * step + length; i++) if (stream[i] === stream[i - 1]) equal++;
    const mean = expected * (length - 1) * windows;
    return equal > mean * 1.2 + 4 * Math.sqrt(mean) + 8;
  };

  test("repeatsWorthAProbe and locallyStructured on random, structured and repeating streams", () => {
    const next = rng(21);
    const streams: Uint8Array[] = [exponents(5), words(30, 6, 40_000), words(2000, 7, 5000)];
    for (const n of [63, 64, 300, 2048, 20_000, 70_000]) {
      // From random bytes to few symbols in runs, with rows copied now and then.
      for (const symbols of [256, 16, 3]) {
        const s = new Uint8Array(n);
        for (let i = 0; i < n; i++) s[i] = next() < 0.3 && i > 0 ? s[i - 1] : Math.floor(next() * symbols);
        for (let copies = 0; copies < (symbols === 16 ? 40 : 0); copies++) {
          const from = Math.floor(next() * (n - 16));
          const to = Math.floor(next() * (n - 16));
          s.copyWithin(to, from, from + 16);
        }
        streams.push(s);
      }
    }
    // Exactly 40 and 41 repeated 8-byte words in 2 KiB of random bytes: just under and at
    // the share that is worth a probe.
    for (const copies of [40, 41]) {
      const s = repeatedWords(copies, next);
      assert.equal(probeReference(s), copies === 41, `${copies} repeated words`);
      assert.equal(repeatsWorthAProbe(s), copies === 41, `${copies} repeated words`);
      streams.push(s);
    }
    const answers = new Set<string>();
    for (const [k, s] of streams.entries()) {
      for (const at of [0, 1, 3]) {
        const stream = s.subarray(at);
        const hist = histogram(stream);
        const probe = repeatsWorthAProbe(stream);
        const structured = locallyStructured(stream, hist);
        assert.equal(probe, probeReference(stream), `stream ${k} at +${at}: repeatsWorthAProbe`);
        assert.equal(neighbourShare(stream, hist) > 0, structured, `stream ${k} at +${at}: neighbourShare`);
        assert.equal(
          structured,
          structuredReference(stream, hist),
          `stream ${k} at +${at}: locallyStructured`,
        );
        answers.add(`${probe} ${structured}`);
      }
    }
    // Both answers of each test were met.
    assert.equal(answers.size, 4, [...answers].join(", "));
  });
});

describe("levelPays: the chunk's level after level 1", () => {
  test("exponent streams, where level 3's short matches cost more: not tried, and level 3 is larger", () => {
    for (const seed of [1, 2, 3]) {
      const stream = exponents(seed);
      assert.equal(levelPays(stream, 3), false, `seed ${seed}`);
      assert.ok(zstdSize(stream, 3) > zstdSize(stream, 1), `seed ${seed}: level 3 is the larger`);
    }
  });

  test("streams with repeats that level 3 finds: tried, and level 3 is smaller", () => {
    for (const count of [64, 512, 4096]) {
      const stream = words(count, count);
      assert.equal(levelPays(stream, 3), true, `${count} words`);
      assert.ok(zstdSize(stream, 3) < zstdSize(stream, 1), `${count} words: level 3 is the smaller`);
    }
  });
});

describe("byte grouping (forced planes): zstd where it wins, never where it cannot", () => {
  /** 2-byte elements: a random low byte and a high byte of dictionary words. */
  function chunk(count: number, seed: number): { raw: Uint8Array; high: Uint8Array; low: Uint8Array } {
    const high = words(count, seed);
    const next = rng(seed + 1);
    const low = Uint8Array.from({ length: N }, () => Math.floor(next() * 256));
    const raw = new Uint8Array(2 * N);
    for (let i = 0; i < N; i++) {
      raw[2 * i] = low[i];
      raw[2 * i + 1] = high[i];
    }
    return { raw, high, low };
  }

  test("a plane with repeats gets zstd at the chunk's level; a random plane never gets a zstd frame", () => {
    for (const count of [64, 4096]) {
      const { raw, high } = chunk(count, count);
      const { payload } = hierCodec.encode(raw, { layout: 4, level: 3 });
      const [low, top] = descriptors(payload);
      assert.equal(low.method, 1, `${count} words: the random plane is stored`);
      assert.equal(low.length, N);
      assert.equal(top.method, 3, `${count} words: the plane of words is zstd`);
      assert.ok(top.length <= zstdSize(high, 3), `${count} words: ${top.length} bytes, level 3 alone`);
      assert.ok(top.length < huffmanSizeFromHistogram(histogram(high)));
      assert.deepEqual(
        Buffer.from(hierCodec.decode(payload, new Uint8Array(0), raw.length)),
        Buffer.from(raw),
      );
    }
  });

  test("a stored plane is tried with zstd where its words repeat, at the default and the ratio goal's level", () => {
    // Random low bytes whose second half repeats the first: no Huffman code shrinks the
    // plane, zstd's matches halve it (the repeat-share gate must let the pass run).
    const next = rng(7);
    const low = Uint8Array.from({ length: N }, () => Math.floor(next() * 256));
    low.copyWithin(N / 2, 0, N / 2);
    const high = exponents(5);
    const raw = new Uint8Array(2 * N);
    for (let i = 0; i < N; i++) {
      raw[2 * i] = low[i];
      raw[2 * i + 1] = high[i];
    }
    for (const level of [3, 19]) {
      const [plane] = descriptors(hierCodec.encode(raw, { layout: 4, level }).payload);
      assert.equal(plane.method, 3, `level ${level}: the repeating plane is zstd`);
      assert.ok(plane.length < 0.6 * N, `level ${level}: ${plane.length} bytes`);
    }
  });

  test("a stored plane without repeats, which zstd cannot shrink, is stored", () => {
    const { raw, low } = chunk(64, 9);
    assert.ok(zstdSize(low, 3) > N, "zstd stores the random plane as raw blocks");
    for (const level of [3, 19]) {
      const [plane] = descriptors(hierCodec.encode(raw, { layout: 4, level }).payload);
      assert.equal(plane.method, 1, `level ${level}`);
      assert.equal(plane.length, N);
    }
  });

  test("float weights' plane of exponents whose scale changes: level 1, where level 3 is larger; bytes of no dtype: level 3", () => {
    // Two tensors' exponents, 0.02 and 0.00002 in scale, one per zstd block: zstd's
    // per-block tables beat Huffman's one table, and level 3's short matches cost more
    // than they find (as on the high byte plane of FP16 weights).
    const high = exponents(6);
    const small = exponents(7);
    for (let i = N / 2; i < N; i++) high[i] = small[i] - 10;
    const raw = new Uint8Array(2 * N);
    for (let i = 0; i < N; i++) raw[2 * i + 1] = high[i];
    assert.ok(zstdSize(high, 1) < zstdSize(high, 3), "level 3 is the larger on this plane");
    const [, float] = descriptors(hierCodec.encode(raw, { layout: 4, level: 3, dtype: "F16" }).payload);
    assert.equal(float.method, 3, "the exponent plane is zstd");
    assert.equal(float.length, zstdSize(high, 1), "F16: level 1's frame");
    // Without a float dtype the chunk's level alone, as on packed assets where it won.
    const [, bytes] = descriptors(hierCodec.encode(raw, { layout: 4, level: 3 }).payload);
    assert.equal(bytes.method, 3);
    assert.equal(bytes.length, zstdSize(high, 3), "no dtype: level 3's frame");
  });

  test("a plane where zstd does not beat Huffman stays Huffman", () => {
    // Exponent bytes of i.i.d. weights: order-0 statistics only, which Huffman codes best.
    const high = exponents(4);
    const raw = new Uint8Array(2 * N);
    for (let i = 0; i < N; i++) raw[2 * i + 1] = high[i];
    const { payload } = hierCodec.encode(raw, { layout: 4, level: 3 });
    const [low, top] = descriptors(payload);
    assert.equal(low.method, 0, "the zero plane is a constant");
    assert.equal(top.method, 2, "the exponent plane is Huffman");
    assert.ok(top.length < zstdSize(high, 1) && top.length < zstdSize(high, 3));
  });
});

describe("dense structured streams: the whole zstd pass without windows", () => {
  test("a stream of 6-bit symbols in runs, built of repeated words: zstd kept, no larger than level 1 whole", () => {
    // 256 words of 8 pairs of equal symbols (0-63), drawn at random: order-0 entropy about
    // 6 bits (dense), equal neighbours far above chance (locally structured), and repeats
    // of 16 bytes that zstd finds.
    const next = rng(11);
    const dict = Array.from({ length: 256 }, () => {
      const word = new Uint8Array(16);
      for (let j = 0; j < 16; j += 2) word[j] = word[j + 1] = Math.floor(next() * 64);
      return word;
    });
    const stream = new Uint8Array(2 * N);
    for (let at = 0; at < stream.length; at += 16) stream.set(dict[Math.floor(next() * 256)], at);
    const huffman = huffmanSizeFromHistogram(histogram(stream));
    assert.ok(huffman * 8 >= 5 * stream.length, `dense: ${huffman} bytes with Huffman`);
    const [only] = descriptors(hierCodec.encode(stream, { dtype: "U8", level: 3 }).payload);
    assert.equal(only.method, 3, "zstd");
    assert.ok(
      only.length <= zstdSize(stream, 1),
      `${only.length} bytes against level 1's ${zstdSize(stream, 1)}`,
    );
  });
});

const data = join(import.meta.dirname, "..", "..", "shared", "data");
const realFiles = existsSync(data) ? readdirSync(data).filter((f) => f.endsWith(".safetensors")) : [];

/** Byte `k` of every F32 weight of a real file (3: sign and exponent; 2: exponent and mantissa), tiled to n bytes. */
function realPlane(file: string, k: number, n: number): Uint8Array {
  const f32 = safetensorsData(join(data, file));
  const m = f32.length >> 2;
  return Uint8Array.from({ length: n }, (_, i) => f32[4 * (i % m) + k]);
}

describe("HIER's zstd frames in one output piece", () => {
  test("byte for byte the frames of node:zlib's 16 KiB pieces, at every length and level", () => {
    // zstd cuts blocks elsewhere when it may write straight into the output (from the
    // third block on), and frames changed with the piece's size on real planes at 512 KiB
    // when the piece held zstd's bound, and at 1 MiB (over level 1's window) below it.
    assert.ok(realFiles.length > 0, "../shared/data holds no real files");
    const sizes = [1000, 16 << 10, (16 << 10) + 200, 100_000, 128 << 10, (128 << 10) + 1, 256 << 10];
    const long = [(256 << 10) + 1, 400_000, 512 << 10, (512 << 10) + 1, 1 << 20];
    for (const n of [...sizes, ...long])
      for (const stream of [
        ...realFiles.flatMap((file) => [realPlane(file, 3, n), realPlane(file, 2, n)]),
        words(500, n, n),
      ])
        for (const level of n > 256 << 10 ? [1, 3] : [1, 3, 19]) {
          const pieces = zstdCompressSync(stream, {
            params: { [constants.ZSTD_c_compressionLevel]: level, [constants.ZSTD_c_checksumFlag]: 0 },
            pledgedSrcSize: stream.length,
          });
          assert.ok(zstd(stream, level).equals(pieces), `${stream.length} bytes at level ${level}`);
        }
  });
});

describe("hierEncodedLength: the payload's length without coding it", () => {
  test("equals hierEncode's payload on real weights, every dtype, forced planes and level", () => {
    assert.ok(realFiles.length > 0, "../shared/data holds no real files");
    for (const file of realFiles) {
      const f32 = safetensorsData(join(data, file));
      for (const size of [32 << 10, 512 << 10]) {
        const raw = f32.subarray(f32.length > size ? 4096 : 0, Math.min(f32.length, size + 4096));
        for (const [bytes, dtype] of [
          [raw, "F32"],
          [toBf16(raw), "BF16"],
          [toF16(raw), "F16"],
          [raw.subarray(1), null],
        ] as const)
          for (const layout of [undefined, 4, 5])
            for (const level of size > 32 << 10 ? [-1, 3] : [-1, 1, 3, 19]) {
              const options = layout === undefined ? { level, dtype } : { level, dtype, layout };
              const what = `${file} ${size} ${dtype} layout ${layout} level ${level}`;
              const payload = hierCodec.encode(bytes, options).payload;
              assert.equal(hierEncodedLength(bytes, options), payload.length, what);
            }
      }
    }
  });
});

describe("exponent streams whose zstd windows are skipped (exponentTrial)", () => {
  /** The exponent byte of every F32 word, as the BF16 and F32 layouts split it off. */
  const exponentsOf = (f32: Uint8Array) =>
    Uint8Array.from(new Uint32Array(f32.buffer, f32.byteOffset, f32.length >> 2), (b) => (b >>> 23) & 0xff);

  test("on real weights and their BF16 rounding, zstd level 1 wins on none of the streams skipped", () => {
    assert.ok(realFiles.length > 0, "../shared/data holds no real files");
    let skipped = 0;
    for (const file of realFiles) {
      const f32 = safetensorsData(join(data, file));
      const bf16 = toBf16(f32);
      // The chunks' exponent streams: 128 Ki of F32 elements, 256 Ki of BF16 ones.
      for (const [width, elements] of [
        [4, 128 << 10],
        [2, 256 << 10],
      ])
        for (let at = 0; at + elements * 4 <= f32.length; at += elements * 4) {
          const stream =
            width === 4
              ? exponentsOf(f32.subarray(at, at + elements * 4))
              : Uint8Array.from(
                  new Uint16Array(bf16.buffer, bf16.byteOffset + at / 2, elements),
                  (x) => (x >>> 7) & 0xff,
                );
          const hist = histogram(stream);
          const share = neighbourShare(stream, hist);
          const huffman = huffmanSizeFromHistogram(hist);
          if (share === 0 || huffman * 8 >= 5 * elements) continue;
          if (exponentTrial((huffman * 8) / elements, share) !== "none") continue;
          skipped++;
          const what = `${file} at ${at}, ${width}-byte elements`;
          assert.ok(zstdSize(stream, 1) > huffman, `${what}: zstd level 1 is smaller than Huffman`);
        }
    }
    assert.ok(skipped > 0, "no stream of the real files was skipped");
  });

  test("dead channels (rows of zeros) spread over the stream: the whole pass at few bits, and zstd is kept", () => {
    for (const [row, every] of [
      [16, 64],
      [64, 256],
    ]) {
      const normal = gaussian(rng(11));
      const weights = new Float32Array(N).map(() => normal() * 0.02);
      // After the stream's first 4 KiB, which the probe of its start reads.
      for (let at = 4096; at + row <= N; at += every) weights.fill(0, at, at + row);
      const stream = exponentsOf(new Uint8Array(weights.buffer));
      const hist = histogram(stream);
      const huffman = huffmanSizeFromHistogram(hist);
      const bits = (huffman * 8) / N;
      assert.ok(bits < 3.1, `${bits} bits per exponent: under the sparse bar`);
      assert.equal(exponentTrial(bits, neighbourShare(stream, hist)), "whole");
      const bf16 = Uint16Array.from(new Uint32Array(weights.buffer), (b) => b >>> 16);
      const [exponents] = descriptors(
        hierCodec.encode(new Uint8Array(bf16.buffer), { dtype: "BF16", level: 3 }).payload,
      );
      assert.equal(exponents.method, 3, `rows of ${row} every ${every}: zstd`);
      assert.ok(exponents.length < huffman, `${exponents.length} bytes against Huffman's ${huffman}`);
    }
  });
});

describe("zstd frames from kept compressors (zstdframe.ts)", () => {
  test("are node:zlib's one-shot frames, byte for byte, call after call", () => {
    // At the levels kept and one that is not; sizes around the pieces' edges and the
    // smallest window; streams that compress and random ones (a frame of several pieces).
    for (const level of [1, 3]) assert.ok(keptCompressors(level), `level ${level} is kept`);
    assert.ok(!keptCompressors(19));
    const next = rng(5);
    const random = Uint8Array.from({ length: 700_000 }, () => Math.floor(next() * 256));
    const skewed = exponents(11);
    const sizes = [0, 1, 63, 64, 3000, 16_383, 16_384, 65_536, 262_144, 524_288, 524_289, 700_000];
    for (const level of [1, 3, 1, 19, 3])
      for (const size of sizes)
        for (const source of [random, skewed]) {
          // (Level 19, not kept, on small streams only: its frames are slow to make.)
          if (size > source.length || (level > 3 && size > 16_384)) continue;
          const bytes = source.subarray(source.length - size);
          for (const piece of [64, 16_384, 300_000]) {
            if (piece === 64 && size > 65_536) continue;
            const expected = zstdCompressSync(bytes, {
              chunkSize: piece,
              params: { [constants.ZSTD_c_compressionLevel]: level, [constants.ZSTD_c_checksumFlag]: 0 },
              pledgedSrcSize: bytes.length,
            });
            const where = `level ${level}, ${size} bytes, pieces of ${piece}`;
            assert.ok(zstdFrame(bytes, level, piece).equals(expected), where);
            assert.equal(zstdFrameLength(bytes, level, piece), expected.length, where);
          }
        }
    // HIER's own calls (zstd(), its pieces) went through the kept compressors too.
    assert.equal(zstd(skewed, 1).length, zstdSize(skewed, 1));
    assert.ok(keptCompressors(1));
  });
});
