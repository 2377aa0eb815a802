/**
 * P251, the pattern codec: period detection, periodicFill / continuesPeriod, round trips
 * and hostile payloads. Speed is measured in bench/targets.ts (target 6), not here.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  continuesPeriod,
  findPeriod,
  mismatch,
  P251_MAX_PERIOD,
  P251_PARAMS_SIZE,
  p251Codec,
  periodicFill,
} from "../src/codecs/p251.ts";
import { zstdCodec } from "../src/codecs/zstd.ts";
import { noiseBytes, textBytes, throwsWith } from "./support.ts";

const EMPTY = new Uint8Array(0);

/** `length` bytes of `pattern` repeated from its start. */
function repeat(pattern: Uint8Array, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = pattern[i % pattern.length];
  return out;
}

/** A random pattern of `period` bytes with no smaller period (checked by brute force for short ones). */
function patternOf(period: number, seed: number): Buffer {
  return noiseBytes(period, seed);
}

/** The periodic length for period p, by definition. */
function periodicLengthOf(data: Uint8Array, p: number): number {
  let i = p;
  while (i < data.length && data[i] === data[i - p]) i++;
  return Math.min(i, data.length);
}

/** findPeriod's specification, by brute force over every period. */
function oracle(
  data: Uint8Array,
  maxPeriod = P251_MAX_PERIOD,
): { period: number; periodicLength: number } | null {
  let best: { period: number; periodicLength: number } | null = null;
  for (let p = 1; p <= Math.min(maxPeriod, data.length); p++) {
    const length = periodicLengthOf(data, p);
    if (length < 2 * p || length < 64) continue;
    if (!best || length - p > best.periodicLength - best.period) best = { period: p, periodicLength: length };
  }
  return best;
}

interface Encoded {
  payload: Uint8Array;
  params: Uint8Array;
}

function roundTrip(raw: Uint8Array): { payload: Buffer; params: Buffer } {
  const { payload, params } = p251Codec.encode(raw, {});
  assert.ok(params, "P251 always writes params");
  assert.equal(params.length, P251_PARAMS_SIZE);
  const back = p251Codec.decode(payload, params, raw.length);
  assert.equal(back.length, raw.length);
  assert.ok(Buffer.from(back).equals(Buffer.from(raw)), "decoded bytes differ");
  return { payload: Buffer.from(payload), params: Buffer.from(params) };
}

interface Fields {
  flags?: number;
  period: number;
  periodicLength: number | bigint;
  patternStored?: number;
  pattern?: Uint8Array;
  tail?: Uint8Array;
}

/** Params and payload with the given fields (patternStored defaults to the pattern part's length). */
function encodedOf(fields: Fields): Encoded {
  const pattern = fields.pattern ?? EMPTY;
  const tail = fields.tail ?? EMPTY;
  const params = Buffer.alloc(P251_PARAMS_SIZE);
  params[0] = fields.flags ?? 0;
  params.writeUInt32LE(fields.period, 1);
  params.writeBigUInt64LE(BigInt(fields.periodicLength), 5);
  params.writeUInt32LE(fields.patternStored ?? pattern.length, 13);
  return { params, payload: Buffer.concat([pattern, tail]) };
}

function zstd(bytes: Uint8Array): Uint8Array {
  return zstdCodec.encode(bytes, { level: 3 }).payload;
}

describe("findPeriod", () => {
  test("finds periods 1, 2, 3, 7, 251, 4096 and 65536 exactly", () => {
    for (const period of [1, 2, 3, 7, 251, 4096, 65536]) {
      const length = Math.max(3 * period + 17, 1000);
      const data = repeat(patternOf(period, period), length);
      assert.deepEqual(findPeriod(data), { period, periodicLength: length }, `period ${period}`);
    }
  });

  test("runs of one value, zeros included, are period 1", () => {
    for (const value of [0, 0x41, 0xff]) {
      assert.deepEqual(findPeriod(Buffer.alloc(1 << 20, value)), { period: 1, periodicLength: 1 << 20 });
    }
  });

  test("period 65537 is over the limit: null by default, found when maxPeriod allows it", () => {
    const data = repeat(patternOf(65537, 9), 3 * 65537 + 5);
    assert.equal(findPeriod(data), null);
    assert.deepEqual(findPeriod(data, 70000), { period: 65537, periodicLength: data.length });
    // And a smaller maxPeriod hides a period above it.
    assert.equal(findPeriod(repeat(patternOf(251, 1), 5000), 250), null);
  });

  test("a tail after the periodic prefix is left out of it", () => {
    for (const [period, length] of [
      [1, 100],
      [3, 1000],
      [251, 251 * 7 + 100],
      [4096, 3 * 4096],
    ]) {
      const pattern = patternOf(period, period + 1);
      const tail = noiseBytes(777, 5);
      tail[0] = pattern[length % period] ^ 0x80; // the tail's first byte breaks the period
      const data = Buffer.concat([repeat(pattern, length), tail]);
      assert.deepEqual(findPeriod(data), { period, periodicLength: length }, `period ${period}`);
    }
  });

  test("a mismatch in the middle ends the periodic prefix there", () => {
    const data = repeat(patternOf(251, 3), 100_000);
    data[54_321] ^= 1;
    assert.deepEqual(findPeriod(data), { period: 251, periodicLength: 54_321 });
    const zeros = Buffer.alloc(1 << 20);
    zeros[(1 << 19) + 3] = 7;
    assert.deepEqual(findPeriod(zeros), { period: 1, periodicLength: (1 << 19) + 3 });
  });

  test("random data is not periodic", () => {
    assert.equal(findPeriod(noiseBytes(4 << 20, 11)), null);
    assert.equal(findPeriod(noiseBytes(100, 12)), null);
  });

  test("data shorter than two periods, or than 64 bytes, is not reported", () => {
    const pattern = patternOf(251, 4);
    assert.equal(findPeriod(pattern), null); // one period: nothing repeats
    assert.equal(findPeriod(repeat(pattern, 400)), null); // 1.6 periods
    assert.deepEqual(findPeriod(repeat(pattern, 502)), { period: 251, periodicLength: 502 });
    assert.equal(findPeriod(Buffer.alloc(63)), null);
    assert.deepEqual(findPeriod(Buffer.alloc(64)), { period: 1, periodicLength: 64 });
    assert.equal(findPeriod(EMPTY), null);
    // A 10-byte run is not worth a pattern, however the data goes on.
    assert.equal(findPeriod(Buffer.concat([Buffer.alloc(10), noiseBytes(1000, 6)])), null);
  });

  test("a leading run of one value inside a longer pattern does not hide the pattern", () => {
    const pattern = Buffer.concat([Buffer.alloc(100), noiseBytes(151, 7)]);
    const data = repeat(pattern, 251 * 40);
    assert.deepEqual(findPeriod(data), { period: 251, periodicLength: data.length });
  });

  test("the periodic prefix that stands for the most bytes wins over an earlier, shorter one", () => {
    // Period 1 over the first 300 bytes, but period 300 + 200 = 500 over all of it.
    const pattern = Buffer.concat([Buffer.alloc(300), noiseBytes(200, 8)]);
    const data = repeat(pattern, 5000);
    assert.deepEqual(findPeriod(data), { period: 500, periodicLength: 5000 });
    // ... and an earlier one that stands for more wins over a later one.
    const longRun = Buffer.concat([Buffer.alloc(3000), noiseBytes(2000, 9)]);
    assert.deepEqual(findPeriod(repeat(longRun, 6000)), { period: 1, periodicLength: 3000 });
  });

  test("rejects a maxPeriod that is not a positive integer", () => {
    for (const bad of [0, -1, 1.5, Number.NaN])
      throwsWith(() => findPeriod(Buffer.alloc(100), bad), "E_INTERNAL");
  });

  test("property: agrees with the brute-force specification on structured inputs", () => {
    // Low-entropy units repeated with a few edits: many candidate periods and near misses.
    const arb = fc
      .tuple(
        fc.uint8Array({ minLength: 1, maxLength: 90 }).map((u) => u.map((b) => b & 1)),
        fc.integer({ min: 0, max: 1500 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 3 })), { maxLength: 3 }),
        fc.integer({ min: 1, max: 400 }),
      )
      .map(([unit, length, edits, maxPeriod]) => {
        const data = repeat(unit, length);
        if (length > 0) for (const [at, value] of edits) data[at % length] = value;
        return { data, maxPeriod };
      });
    fc.assert(
      fc.property(arb, ({ data, maxPeriod }) => {
        assert.deepEqual(findPeriod(data, maxPeriod), oracle(data, maxPeriod));
      }),
      { numRuns: 300 },
    );
  });

  test("property: a random pattern repeated then a tail is found with its period and length", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5000 }),
        fc.integer({ min: 2, max: 20 }),
        fc.nat({ max: 4999 }),
        fc.uint8Array({ maxLength: 300 }),
        fc.integer({ min: 1, max: 1 << 30 }),
        (period, copies, extra, tail, seed) => {
          const pattern = patternOf(period, seed);
          const length = Math.max(64, period * copies + (extra % period));
          const data = Buffer.concat([repeat(pattern, length), tail]);
          const expected = periodicLengthOf(data, period);
          const found = findPeriod(data);
          assert.ok(found, "not found");
          // Exactly the periodic prefix of what was found, standing for at least as many bytes.
          assert.equal(found.periodicLength, periodicLengthOf(data, found.period));
          assert.ok(found.periodicLength >= 2 * found.period);
          assert.ok(found.periodicLength - found.period >= expected - period);
          if (period > 40) assert.deepEqual(found, { period, periodicLength: expected });
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe("mismatch", () => {
  test("finds the first differing byte at any position, or the shorter length", () => {
    const a = noiseBytes(300_000, 1);
    for (const at of [0, 1, 63, 64, 255, 256, 257, 4095, 100_000, 299_999]) {
      const b = Buffer.from(a);
      b[at] ^= 0x10;
      assert.equal(mismatch(a, b), at);
      assert.equal(mismatch(b, a), at);
    }
    assert.equal(mismatch(a, a.subarray(0, 1234)), 1234);
    assert.equal(mismatch(EMPTY, a), 0);
  });
});

describe("periodicFill and continuesPeriod", () => {
  const naiveFill = (pattern: Uint8Array, phase: number, length: number) => {
    const out = Buffer.alloc(length);
    for (let i = 0; i < length; i++) out[i] = pattern[(phase + i) % pattern.length];
    return out;
  };

  test("periodicFill writes the rotated pattern, across the 256 KiB block size and for any phase", () => {
    for (const period of [1, 2, 3, 251, 4096, 65536, 65537, 300_000]) {
      const pattern = patternOf(period, period);
      for (const phase of [0, 1, period - 1, period + 5, 3 * period]) {
        for (const length of [0, 1, period - 1, period, period + 1, 700_001]) {
          if (length < 0) continue;
          const out = Buffer.alloc(length, 0xee);
          periodicFill(pattern, phase, out);
          assert.ok(
            out.equals(naiveFill(pattern, phase, length)),
            `p ${period} phase ${phase} length ${length}`,
          );
        }
      }
    }
  });

  test("property: periodicFill equals the definition", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 700 }),
        fc.nat({ max: 100_000 }),
        fc.nat({ max: 20_000 }),
        (pattern, phase, length) => {
          const out = new Uint8Array(length);
          periodicFill(pattern, phase, out);
          assert.ok(Buffer.from(out).equals(naiveFill(pattern, phase, length)));
        },
      ),
      { numRuns: 200 },
    );
  });

  test("continuesPeriod counts the bytes that continue the sequence", () => {
    for (const period of [1, 3, 251, 65536]) {
      const pattern = patternOf(period, period + 2);
      for (const phase of [0, 1, period - 1, 5 * period + 2]) {
        const data = naiveFill(pattern, phase, 3 * period + 1000);
        assert.equal(continuesPeriod(pattern, phase, data), data.length);
        for (const at of [0, 1, period - 1, period, period + 1, 2 * period + 7, data.length - 1]) {
          const edited = Buffer.from(data);
          edited[at] ^= 0x01;
          assert.equal(continuesPeriod(pattern, phase, edited), at, `p ${period} phase ${phase} at ${at}`);
        }
        assert.equal(
          continuesPeriod(pattern, phase, data.subarray(0, Math.min(5, period))),
          Math.min(5, period),
        );
        assert.equal(continuesPeriod(pattern, phase, EMPTY), 0);
      }
    }
    // A long run of zeros continued, then broken.
    const zeros = Buffer.alloc(8 << 20);
    zeros[(8 << 20) - 3] = 1;
    assert.equal(continuesPeriod(new Uint8Array(1), 0, zeros), (8 << 20) - 3);
  });

  test("property: continuesPeriod equals the definition", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 300 }),
        fc.nat({ max: 10_000 }),
        fc.nat({ max: 3000 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 2 }),
        (pattern, phase, length, edits) => {
          const data = naiveFill(pattern, phase, length);
          if (length > 0) for (const [at, value] of edits) data[at % length] = value;
          let expected = 0;
          while (expected < length && data[expected] === pattern[(phase + expected) % pattern.length])
            expected++;
          assert.equal(continuesPeriod(pattern, phase, data), expected);
        },
      ),
      { numRuns: 300 },
    );
  });

  test("an empty pattern or a negative phase is refused", () => {
    throwsWith(() => periodicFill(EMPTY, 0, new Uint8Array(4)), "E_INTERNAL");
    throwsWith(() => periodicFill(new Uint8Array(2), -1, new Uint8Array(4)), "E_INTERNAL");
    throwsWith(() => continuesPeriod(EMPTY, 0, new Uint8Array(4)), "E_INTERNAL");
    throwsWith(() => continuesPeriod(new Uint8Array(2), 0.5, new Uint8Array(4)), "E_INTERNAL");
  });
});

describe("P251 codec", () => {
  test("the params and payload of a run of zeros (docs/FORMAT.md §6.1)", () => {
    const { payload, params } = roundTrip(Buffer.alloc(1 << 20));
    assert.equal(params[0], 0); // nothing compressed: a 1-byte pattern and an empty tail
    assert.equal(params.readUInt32LE(1), 1);
    assert.equal(params.readBigUInt64LE(5), BigInt(1 << 20));
    assert.equal(params.readUInt32LE(13), 1);
    assert.deepEqual([...payload], [0]);
  });

  test("a compressible pattern and tail are stored as zstd, flagged", () => {
    const text = Buffer.from("weights weights bias bias layer layer ".repeat(200));
    const pattern = text.subarray(0, 4000);
    const tail = Buffer.from("tail tail tail tail ".repeat(100));
    const { payload, params } = roundTrip(Buffer.concat([repeat(pattern, 50_000), tail]));
    assert.equal(params[0], 3);
    assert.equal(params.readUInt32LE(1), 4000);
    assert.equal(params.readBigUInt64LE(5), 50_000n);
    const patternStored = params.readUInt32LE(13);
    assert.ok(patternStored < 4000);
    assert.ok(Buffer.from(zstdCodec.decode(payload.subarray(0, patternStored), EMPTY, 4000)).equals(pattern));
    assert.ok(
      Buffer.from(zstdCodec.decode(payload.subarray(patternStored), EMPTY, tail.length)).equals(tail),
    );
  });

  test("a random pattern is stored as is; the tail follows it", () => {
    const pattern = patternOf(251, 5);
    const tail = noiseBytes(100, 6);
    tail[0] = pattern[(251 * 10) % 251] ^ 1;
    const { payload, params } = roundTrip(Buffer.concat([repeat(pattern, 251 * 10), tail]));
    assert.equal(params[0], 0);
    assert.equal(params.readUInt32LE(13), 251);
    assert.ok(payload.equals(Buffer.concat([pattern, tail])));
  });

  test("non-periodic data: period 0, everything in the tail", () => {
    for (const raw of [textBytes(5000, 2), noiseBytes(5000, 3), EMPTY, Buffer.from([7])]) {
      const { params } = roundTrip(raw);
      assert.equal(params.readUInt32LE(1), 0);
      assert.equal(params.readBigUInt64LE(5), 0n);
      assert.equal(params.readUInt32LE(13), 0);
    }
    // Random bytes do not shrink: the payload is the raw bytes, not a copy.
    const random = noiseBytes(5000, 4);
    const encoded = p251Codec.encode(random, {});
    assert.equal(encoded.payload.buffer, random.buffer);
    assert.equal(encoded.payload.byteOffset, random.byteOffset);
    assert.equal(encoded.payload.length, random.length);
  });

  test("property: random pattern, period, length and tail round trip", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 70_000 }),
        fc.integer({ min: 0, max: 300_000 }),
        fc.oneof(
          fc.uint8Array({ maxLength: 3000 }),
          fc.integer({ min: 0, max: 5000 }).map((n) => Buffer.alloc(n)),
        ),
        fc.integer({ min: 1, max: 1 << 30 }),
        fc.boolean(),
        (period, length, tail, seed, compressible) => {
          const pattern = compressible ? Buffer.alloc(period, seed & 0xff) : patternOf(period, seed);
          if (compressible && period > 2) pattern[period >> 1] ^= 1;
          roundTrip(Buffer.concat([repeat(pattern, length), tail]));
        },
      ),
      { numRuns: 60 },
    );
  });

  test("odd lengths and arbitrary bytes round trip", () => {
    for (const length of [1, 2, 31, 63, 64, 65, 127, 129, 255, 257, 65_535, 65_537, 131_073]) {
      roundTrip(repeat(patternOf(7, length), length));
      roundTrip(noiseBytes(length, length));
      roundTrip(Buffer.alloc(length, 3));
    }
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4000 }), (raw) => {
        roundTrip(raw);
      }),
      { numRuns: 100 },
    );
  });

  test("a periodic chunk is far smaller than zstd makes it", () => {
    const raw = repeat(patternOf(251, 1), 1 << 20);
    const { payload } = roundTrip(raw);
    assert.ok(payload.length <= 251, `${payload.length}`);
    assert.ok(payload.length + P251_PARAMS_SIZE < zstd(raw).length);
  });
});

describe("P251 hostile payloads are E_CORRUPT", () => {
  const corrupt = (encoded: Encoded, rawLength: number, context: string) =>
    throwsWith(
      () => p251Codec.decode(encoded.payload, encoded.params, rawLength),
      "E_CORRUPT",
      `${context}: `,
    );
  const withPayload = (encoded: Encoded, payload: Uint8Array): Encoded => ({
    params: encoded.params,
    payload,
  });

  test("bad fields", () => {
    const pattern = Buffer.from([1, 2, 3]);
    const ok = encodedOf({ period: 3, periodicLength: 9, pattern, tail: Buffer.from([9]) });
    const decoded = p251Codec.decode(ok.payload, ok.params, 10);
    assert.deepEqual([...decoded], [1, 2, 3, 1, 2, 3, 1, 2, 3, 9]);
    for (const params of [EMPTY, ok.params.subarray(0, 16), Buffer.concat([ok.params, Buffer.from([0])])]) {
      corrupt({ params, payload: ok.payload }, 10, `params of ${params.length} bytes`);
    }
    for (let cut = 0; cut < ok.payload.length; cut++) {
      corrupt(withPayload(ok, ok.payload.subarray(0, cut)), 10, `truncated to ${cut}`);
    }
    corrupt(withPayload(ok, Buffer.concat([ok.payload, Buffer.from([0])])), 10, "a byte too many");
    corrupt(ok, 9, "raw length one short");
    corrupt(ok, 11, "raw length one over");
    for (const flags of [4, 8, 0x80, 0xff]) {
      corrupt(
        encodedOf({ flags, period: 0, periodicLength: 0, tail: Buffer.from([1]) }),
        1,
        `flags ${flags}`,
      );
    }
    const cases: [Fields, number, string][] = [
      [{ period: P251_MAX_PERIOD + 1, periodicLength: 1 << 20 }, 1 << 20, "period over 64 KiB"],
      [{ period: 0xffff_ffff, periodicLength: 1 << 20 }, 1 << 20, "period 2^32 - 1"],
      [{ period: 3, periodicLength: 11, pattern }, 10, "periodic length over the raw length"],
      [{ period: 3, periodicLength: 2n ** 64n - 1n, pattern }, 10, "periodic length 2^64 - 1"],
      [{ period: 3, periodicLength: 2n ** 53n, pattern }, 2 ** 53 - 1, "periodic length 2^53"],
      [{ period: 0, periodicLength: 5, tail: Buffer.alloc(5) }, 10, "period 0 with a periodic length"],
      [{ period: 3, periodicLength: 2, pattern, tail: Buffer.alloc(8) }, 10, "shorter than one period"],
      [{ period: 3, periodicLength: 10, pattern, patternStored: 0xffff_ffff }, 10, "pattern past the end"],
      [{ period: 3, periodicLength: 10, pattern, patternStored: 4 }, 10, "pattern part of 4 for period 3"],
      [{ period: 3, periodicLength: 10, pattern, patternStored: 2 }, 10, "pattern part of 2 for period 3"],
      [{ period: 4, periodicLength: 10, pattern }, 10, "stored pattern shorter than the period"],
      [{ period: 3, periodicLength: 9, pattern, tail: Buffer.alloc(2) }, 10, "tail too long"],
      [{ period: 3, periodicLength: 6, pattern, tail: Buffer.alloc(2) }, 10, "tail truncated"],
      [{ flags: 2, period: 3, periodicLength: 10, pattern }, 10, "empty tail marked zstd"],
      [{ flags: 1, period: 0, periodicLength: 0, tail: Buffer.alloc(4) }, 4, "no pattern, marked zstd"],
    ];
    for (const [fields, rawLength, context] of cases) corrupt(encodedOf(fields), rawLength, context);
  });

  test("zstd parts must be one frame that decodes to exactly the declared size", () => {
    const pattern = Buffer.alloc(1000, 5);
    const good = zstd(pattern);
    const ok = encodedOf({ flags: 1, period: 1000, periodicLength: 5000, pattern: good });
    assert.ok(Buffer.from(p251Codec.decode(ok.payload, ok.params, 5000)).equals(Buffer.alloc(5000, 5)));
    const withPattern = (part: Uint8Array) =>
      encodedOf({ flags: 1, period: 1000, periodicLength: 5000, pattern: part });
    corrupt(withPattern(zstd(Buffer.alloc(999, 5))), 5000, "pattern one byte short");
    corrupt(withPattern(zstd(Buffer.alloc(1001, 5))), 5000, "pattern one byte long");
    for (let cut = 1; cut < good.length; cut++)
      corrupt(withPattern(good.subarray(0, cut)), 5000, `pattern cut to ${cut}`);
    const junk = Buffer.from(good);
    junk[0] ^= 0xff;
    corrupt(withPattern(junk), 5000, "pattern not a frame");
    const tail = zstd(Buffer.alloc(3000, 1));
    const withTail = (part: Uint8Array, flags = 2) =>
      encodedOf({ flags, period: 0, periodicLength: 0, tail: part });
    assert.equal(p251Codec.decode(withTail(tail).payload, withTail(tail).params, 3000).length, 3000);
    corrupt(withTail(Buffer.concat([tail, Buffer.from([0])])), 3000, "bytes after the tail frame");
    corrupt(withTail(tail), 2999, "tail one byte long");
    corrupt(withTail(tail), 3001, "tail one byte short");
    corrupt(withTail(tail, 0), 3000, "zstd tail not flagged");
  });

  test("a small frame that expands far past the declared size is stopped there", () => {
    const bomb = zstd(Buffer.alloc(64 << 20)); // a few KiB that would decode to 64 MiB
    assert.ok(bomb.length < 64 << 10);
    corrupt(encodedOf({ flags: 2, period: 0, periodicLength: 0, tail: bomb }), 1000, "tail bomb");
    corrupt(
      encodedOf({ flags: 1, period: 65536, periodicLength: 65536, pattern: bomb }),
      65536,
      "pattern bomb",
    );
    corrupt(
      encodedOf({
        flags: 3,
        period: 1,
        periodicLength: 1,
        pattern: bomb,
        patternStored: bomb.length,
        tail: bomb,
      }),
      2,
      "both",
    );
  });

  test("property: arbitrary params and payloads decode to the declared length or throw E_CORRUPT", () => {
    const arb = fc.oneof(
      fc.record({
        params: fc.uint8Array({ minLength: 17, maxLength: 17 }),
        payload: fc.uint8Array({ maxLength: 200 }),
      }),
      // Plausible fields with random parts: reaches the deeper checks.
      fc
        .record({
          flags: fc.integer({ min: 0, max: 3 }),
          period: fc.integer({ min: 0, max: 40 }),
          periodicLength: fc.integer({ min: 0, max: 200 }),
          pattern: fc.uint8Array({ maxLength: 40 }),
          tail: fc.uint8Array({ maxLength: 60 }),
        })
        .map((fields) => encodedOf(fields)),
      // A valid encoding with one byte of params or payload changed.
      fc
        .tuple(
          fc.uint8Array({ minLength: 1, maxLength: 600 }),
          fc.nat(),
          fc.integer({ min: 1, max: 255 }),
          fc.boolean(),
        )
        .map(([raw, at, xor, inParams]) => {
          const encoded = p251Codec.encode(Buffer.concat([Buffer.alloc(200, 9), raw]), {});
          const params = Buffer.from(encoded.params ?? EMPTY);
          const payload = Buffer.from(encoded.payload);
          const target = inParams || payload.length === 0 ? params : payload;
          target[at % target.length] ^= xor;
          return { params, payload };
        }),
    );
    fc.assert(
      fc.property(arb, fc.integer({ min: 0, max: 900 }), (encoded, rawLength) => {
        try {
          assert.equal(p251Codec.decode(encoded.payload, encoded.params, rawLength).length, rawLength);
        } catch (error) {
          if (error instanceof assert.AssertionError) throw error;
          throwsWith(() => {
            throw error;
          }, "E_CORRUPT");
        }
      }),
      { numRuns: 600 },
    );
  });
});
