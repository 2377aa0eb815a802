/**
 * One conformance suite, run against every registered codec: a codec added to the
 * registry later is covered without touching this file.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { brotliCompressSync, constants, crc32 } from "node:zlib";
import fc from "fast-check";
import { codecById, codecByName, listCodecs, resolveLevel } from "../src/codecs/registry.ts";
import type { Codec } from "../src/codecs/types.ts";
import { bufferSource } from "../src/common/source.ts";
import { CHUNK_HEADER_SIZE, parseChunkHeader } from "../src/container/format.ts";
import { decodeChunk, encodeChunk } from "../src/engine/chunk.ts";
import { MmhReader } from "../src/engine/reader.ts";
import { compress, decompress } from "../src/index.ts";
import { noiseBytes, rejectsWith, sha256, textBytes, throwsWith } from "./support.ts";

const EMPTY = new Uint8Array(0);
const CHUNK = 4096;
const ODD_SIZES = [1, 7, 192, 1792, 65537];

/** Content generators by kind: the same bytes for the same (size, seed). */
const KINDS: Record<string, (size: number, seed: number) => Buffer> = {
  text: (size, seed) => textBytes(size, seed),
  random: (size, seed) => noiseBytes(size, seed),
  constant: (size) => Buffer.alloc(size, 0x41),
  zeros: (size) => Buffer.alloc(size),
  repeats: (size, seed) => {
    const unit = noiseBytes(13 + (seed % 50), seed);
    const out = Buffer.alloc(size);
    for (let i = 0; i < size; i++) out[i] = unit[i % unit.length];
    return out;
  },
};

/** A few valid levels for the codec: the edges, the default and an inner one (undefined if none). */
function sampleLevels(codec: Codec): (number | undefined)[] {
  const range = codec.levels;
  if (!range) return [undefined];
  const out = new Set<number>([range.min, range.max, range.default, Math.ceil((range.min + range.max) / 2)]);
  for (const bad of range.excluded ?? []) out.delete(bad);
  return [undefined, ...out];
}

/** fast-check arbitrary over valid levels, kept to cheap ones plus the extremes. */
function levelArb(codec: Codec): fc.Arbitrary<number | undefined> {
  const range = codec.levels;
  if (!range) return fc.constant(undefined);
  const excluded = new Set(range.excluded ?? []);
  const near = fc
    .integer({ min: Math.max(range.min, -20), max: Math.min(range.max, 9) })
    .filter((level) => !excluded.has(level));
  return fc.oneof(fc.constant(undefined), near, fc.constantFrom(range.min, range.max));
}

/** Bytes with long repeats: a short random unit repeated, with a few random edits. */
const compressibleArb = fc
  .tuple(
    fc.uint8Array({ minLength: 1, maxLength: 40 }),
    fc.integer({ min: 1, max: 6000 }),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
  )
  .map(([unit, length, edits]) => {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) out[i] = unit[i % unit.length];
    for (const [at, value] of edits) out[at % length] = value;
    return out;
  });

function paramsOf(header: Buffer): Buffer {
  return header.subarray(CHUNK_HEADER_SIZE);
}

function roundTripCodec(codec: Codec, raw: Uint8Array, level: number | undefined): void {
  const encoded = codec.encode(raw, { level });
  const decoded = codec.decode(encoded.payload, encoded.params ?? EMPTY, raw.length);
  assert.equal(decoded.length, raw.length);
  assert.ok(Buffer.from(decoded).equals(Buffer.from(raw)), `${codec.name}: decoded bytes differ`);
}

function roundTripChunk(codec: Codec, raw: Uint8Array, level: number | undefined): void {
  const chunk = encodeChunk(raw, codec, level);
  assert.equal(chunk.rawLength, raw.length);
  assert.equal(chunk.rawCrc, crc32(raw));
  assert.ok(chunk.codec === codec.id || chunk.codec === "NONE", `unexpected stored codec ${chunk.codec}`);
  // No record ever holds more than the raw bytes plus its header.
  assert.ok(chunk.payload.length <= raw.length, "payload larger than the raw bytes");
  const fields = parseChunkHeader(chunk.header.subarray(0, CHUNK_HEADER_SIZE), "test");
  assert.equal(fields.codec, chunk.codec);
  assert.equal(fields.rawLength, raw.length);
  assert.equal(fields.storedLength, chunk.payload.length);
  assert.equal(fields.paramsLength, chunk.header.length - CHUNK_HEADER_SIZE);
  const decoded = decodeChunk(
    chunk.codec,
    paramsOf(chunk.header),
    chunk.payload,
    chunk.rawLength,
    chunk.rawCrc,
    "test",
  );
  assert.ok(Buffer.from(decoded).equals(Buffer.from(raw)), `${codec.name}: chunk decoded bytes differ`);
}

/** Decoding a damaged payload must throw a coded error or give back exactly the original. */
function decodeDamaged(
  codecId: string,
  params: Uint8Array,
  payload: Uint8Array,
  raw: Uint8Array,
  rawCrc: number,
): "rejected" | "same" {
  try {
    const out = decodeChunk(codecId, params, payload, raw.length, rawCrc, "test");
    assert.ok(Buffer.from(out).equals(Buffer.from(raw)), "a damaged payload decoded to different bytes");
    return "same";
  } catch (error) {
    if (error instanceof assert.AssertionError) throw error;
    throwsWith(() => {
      throw error;
    }, ["E_CORRUPT", "E_CHECKSUM"]);
    return "rejected";
  }
}

test("the registry lists the built-in codecs, each findable by id and by name", () => {
  const ids = listCodecs().map((codec) => codec.id);
  for (const id of ["NONE", "ZSTD", "LZ4 ", "BROT"]) assert.ok(ids.includes(id), `${id} is not registered`);
  assert.equal(new Set(ids).size, ids.length, "codec ids are unique");
  for (const codec of listCodecs()) {
    assert.match(codec.id, /^[\x20-\x7e]{4}$/);
    assert.equal(codecById(codec.id), codec);
    assert.equal(codecByName(codec.name), codec);
    assert.equal(codecByName(codec.name.toUpperCase()), codec);
  }
  throwsWith(() => codecById("XXXX"), "E_UNSUPPORTED");
  throwsWith(() => codecByName("gzip"), "E_BAD_OPTION");
});

test("decodeChunk refuses an unknown codec id with E_UNSUPPORTED", () => {
  const raw = Buffer.from("hello");
  throwsWith(() => decodeChunk("QQQQ", EMPTY, raw, raw.length, crc32(raw), "test"), "E_UNSUPPORTED");
});

for (const codec of listCodecs()) {
  describe(`codec ${codec.name} (${JSON.stringify(codec.id)})`, () => {
    test("codec level: 0 bytes, 1 byte and odd sizes round trip for every content kind", () => {
      for (const level of sampleLevels(codec)) roundTripCodec(codec, EMPTY, level);
      for (const [kind, make] of Object.entries(KINDS)) {
        for (const size of ODD_SIZES) {
          const raw = make(size, size);
          try {
            roundTripCodec(codec, raw, undefined);
          } catch (error) {
            assert.fail(`${kind} ${size}: ${(error as Error).message}`);
          }
        }
      }
    });

    test("codec level: large inputs (several internal blocks) round trip", () => {
      // Over 128 KiB: zstd, lz4 and brotli all split such input into several blocks.
      for (const raw of [textBytes(300_001, 8), noiseBytes(300_001, 8), Buffer.alloc(1 << 20, 9)]) {
        roundTripCodec(codec, raw, undefined);
        roundTripChunk(codec, raw, undefined);
      }
    });

    test("codec level: every sampled level round trips", () => {
      for (const level of sampleLevels(codec)) {
        roundTripCodec(codec, textBytes(1792, 3), level);
        roundTripCodec(codec, noiseBytes(192, 4), level);
      }
    });

    test("codec level: property round trip (arbitrary bytes, arbitrary valid level)", () => {
      fc.assert(
        fc.property(fc.uint8Array({ minLength: 0, maxLength: 2048 }), levelArb(codec), (raw, level) => {
          roundTripCodec(codec, raw, level);
        }),
        { numRuns: 60 },
      );
    });

    test("codec level: property round trip (highly compressible bytes)", () => {
      fc.assert(
        fc.property(compressibleArb, levelArb(codec), (raw, level) => {
          roundTripCodec(codec, raw, level);
        }),
        { numRuns: 40 },
      );
    });

    test("chunk level: 1 byte and odd sizes round trip for every content kind", () => {
      for (const [kind, make] of Object.entries(KINDS)) {
        for (const size of ODD_SIZES) {
          try {
            roundTripChunk(codec, make(size, size + 1), undefined);
          } catch (error) {
            assert.fail(`${kind} ${size}: ${(error as Error).message}`);
          }
        }
      }
    });

    test("chunk level: property round trip through encodeChunk/decodeChunk", () => {
      fc.assert(
        fc.property(
          fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 2048 }), compressibleArb),
          levelArb(codec),
          (raw, level) => {
            roundTripChunk(codec, raw, level);
          },
        ),
        { numRuns: 60 },
      );
    });

    test("deterministic: the same input and options give the same bytes", async () => {
      for (const level of sampleLevels(codec)) {
        for (const raw of [textBytes(5000, 9), noiseBytes(700, 9), Buffer.alloc(3000, 7)]) {
          const a = codec.encode(raw, { level });
          const b = codec.encode(raw, { level });
          assert.ok(Buffer.from(a.payload).equals(Buffer.from(b.payload)), "payloads differ");
          assert.ok(Buffer.from(a.params ?? EMPTY).equals(Buffer.from(b.params ?? EMPTY)), "params differ");
          const c = encodeChunk(raw, codec, level);
          const d = encodeChunk(raw, codec, level);
          assert.ok(c.header.equals(d.header));
          assert.ok(Buffer.from(c.payload).equals(Buffer.from(d.payload)));
        }
      }
      const content = Buffer.concat([textBytes(9000, 1), noiseBytes(3000, 2)]);
      const first = await compress(content, { codec: codec.name, chunkSize: CHUNK });
      const second = await compress(content, { codec: codec.name, chunkSize: CHUNK });
      assert.ok(Buffer.from(first).equals(Buffer.from(second)), "compress() is not deterministic");
    });

    test("container: sizes around the chunk boundary round trip via compress()", async () => {
      const sizes = [1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK - 1, 2 * CHUNK, 2 * CHUNK + 1];
      for (const kind of ["text", "random", "constant"]) {
        for (const size of sizes) {
          const content = KINDS[kind](size, size);
          // Dedup off: equal chunks (constant content) would be DUPE references to the first.
          const packed = await compress(content, { codec: codec.name, chunkSize: CHUNK, dedup: false });
          const unpacked = await decompress(packed);
          assert.equal(sha256(unpacked), sha256(content), `${kind} ${size}: content differs`);
          const reader = await MmhReader.open(bufferSource(packed));
          if (codec.id === "P251" && kind !== "random") {
            // Periodic chunks that continue each other become one run record.
            assert.ok(reader.chunks.length >= 1 && reader.chunks.length <= Math.ceil(size / CHUNK));
          } else {
            assert.equal(reader.chunks.length, Math.ceil(size / CHUNK), `${kind} ${size}: chunk count`);
          }
          assert.equal(reader.rawLength, size);
          for (const chunk of reader.chunks) {
            assert.ok(chunk.codec === codec.id || chunk.codec === "NONE");
            assert.ok(chunk.recordLength <= CHUNK_HEADER_SIZE + chunk.rawLength, "record larger than raw");
          }
          const whole = await reader.readRange(0, size);
          assert.ok(Buffer.from(whole).equals(content), `${kind} ${size}: readRange differs`);
        }
      }
    });

    test("container: empty content round trips via compress()", async () => {
      const packed = await compress(EMPTY, { codec: codec.name, chunkSize: CHUNK });
      assert.equal((await decompress(packed)).length, 0);
      const reader = await MmhReader.open(bufferSource(packed));
      assert.equal(reader.chunks.length, 0);
      assert.equal(reader.trailer.sha256, sha256(EMPTY));
    });

    test("incompressible data is stored as NONE, never larger than raw", () => {
      for (const size of [1, 7, 192, 1792, CHUNK]) {
        const raw = noiseBytes(size, 100 + size);
        const chunk = encodeChunk(raw, codec, undefined);
        assert.equal(chunk.codec, "NONE", `random ${size} bytes were not stored as NONE`);
        assert.equal(chunk.header.length, CHUNK_HEADER_SIZE);
        assert.ok(Buffer.from(chunk.payload).equals(raw));
      }
    });

    if (codec.id !== "NONE") {
      test("highly compressible data is stored with the codec and is smaller", () => {
        for (const raw of [Buffer.alloc(CHUNK), Buffer.alloc(1792, 0x5a), textBytes(CHUNK, 5)]) {
          const chunk = encodeChunk(raw, codec, undefined);
          assert.equal(chunk.codec, codec.id);
          assert.ok(chunk.payload.length < raw.length);
        }
      });
    }

    test("corruption: damaged payloads give E_CORRUPT/E_CHECKSUM or the original, never other data", () => {
      const raw = textBytes(3000, 77);
      const chunk = encodeChunk(raw, codec, undefined);
      if (codec.id !== "NONE") assert.equal(chunk.codec, codec.id, "the sample must use the codec");
      const params = paramsOf(chunk.header);
      const payload = Buffer.from(chunk.payload);
      let rejected = 0;
      // Every single-byte flip of the first 64 and last 64 payload bytes...
      const positions = new Set<number>();
      for (let i = 0; i < Math.min(64, payload.length); i++) positions.add(i);
      for (let i = Math.max(0, payload.length - 64); i < payload.length; i++) positions.add(i);
      for (const at of positions) {
        for (const mask of [0x01, 0x80, 0xff]) {
          const bad = Buffer.from(payload);
          bad[at] ^= mask;
          if (decodeDamaged(chunk.codec, params, bad, raw, chunk.rawCrc) === "rejected") rejected++;
        }
      }
      // ...every truncation and an extra trailing byte.
      for (let length = 0; length < payload.length; length++) {
        if (decodeDamaged(chunk.codec, params, payload.subarray(0, length), raw, chunk.rawCrc) === "rejected")
          rejected++;
      }
      const longer = Buffer.concat([payload, Buffer.from([0])]);
      assert.equal(decodeDamaged(chunk.codec, params, longer, raw, chunk.rawCrc), "rejected");
      assert.ok(rejected > payload.length, "most damage must be detected");
    });

    test("corruption: bytes after a valid payload are refused, whatever the content size", () => {
      const skippableFrame = Buffer.from([0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0]);
      for (const size of [1, 10, 63, 64, 100, 1792, 65537]) {
        for (const raw of [textBytes(size, size), Buffer.alloc(size, 3)]) {
          const encoded = codec.encode(raw, {});
          const payload = Buffer.from(encoded.payload);
          const params = encoded.params ?? EMPTY;
          for (const extra of [Buffer.from([0]), Buffer.from("junk!"), skippableFrame, payload]) {
            throwsWith(
              () => codec.decode(Buffer.concat([payload, extra]), params, raw.length),
              "E_CORRUPT",
              `${size} bytes + ${extra.length} extra: `,
            );
          }
        }
      }
    });

    test("corruption: property over random flips anywhere in the payload", () => {
      fc.assert(
        fc.property(
          compressibleArb.filter((raw) => raw.length >= 64),
          fc.nat(),
          fc.integer({ min: 1, max: 255 }),
          (raw, position, mask) => {
            const chunk = encodeChunk(raw, codec, undefined);
            if (chunk.payload.length === 0) return;
            const bad = Buffer.from(chunk.payload);
            bad[position % bad.length] ^= mask;
            decodeDamaged(chunk.codec, paramsOf(chunk.header), bad, raw, chunk.rawCrc);
          },
        ),
        { numRuns: 100 },
      );
    });

    test("corruption: wrong declared length, wrong CRC and unexpected params are coded errors", () => {
      const raw = textBytes(2000, 12);
      const chunk = encodeChunk(raw, codec, undefined);
      const params = paramsOf(chunk.header);
      throwsWith(
        () => decodeChunk(chunk.codec, params, chunk.payload, raw.length, (chunk.rawCrc ^ 1) >>> 0, "t"),
        "E_CHECKSUM",
      );
      for (const length of [1, raw.length - 1, raw.length + 1, raw.length * 2]) {
        throwsWith(
          () => decodeChunk(chunk.codec, params, chunk.payload, length, chunk.rawCrc, "t"),
          ["E_CORRUPT", "E_CHECKSUM"],
          `declared ${length}: `,
        );
      }
      const target = codecById(chunk.codec);
      const encoded = target.encode(raw, {});
      if ((encoded.params ?? EMPTY).length === 0) {
        throwsWith(
          () => decodeChunk(chunk.codec, Buffer.from([1]), chunk.payload, raw.length, chunk.rawCrc, "t"),
          "E_CORRUPT",
        );
      }
    });

    test("corruption: arbitrary payload bytes decode to a coded error or to bytes with the given CRC", () => {
      fc.assert(
        fc.property(
          fc.uint8Array({ minLength: 0, maxLength: 300 }),
          fc.integer({ min: 1, max: 5000 }),
          (junk, rawLength) => {
            try {
              const out = codec.decode(junk, EMPTY, rawLength);
              // A codec may accept junk only if it really decodes to the declared length.
              assert.equal(out.length, rawLength);
            } catch (error) {
              if (error instanceof assert.AssertionError) throw error;
              // A layout header whose CRC does not match is E_CHECKSUM (FORMAT.md §6.2).
              throwsWith(() => {
                throw error;
              }, ["E_CORRUPT", "E_CHECKSUM"]);
            }
          },
        ),
        { numRuns: 150 },
      );
    });

    test("levels: valid levels resolve, invalid ones are E_BAD_OPTION", async () => {
      const range = codec.levels;
      if (!range) {
        assert.equal(resolveLevel(codec, undefined), undefined);
        for (const level of [0, 1, 3, -1]) throwsWith(() => resolveLevel(codec, level), "E_BAD_OPTION");
        await rejectsWith(compress(Buffer.from("x"), { codec: codec.name, level: 1 }), "E_BAD_OPTION");
        return;
      }
      assert.equal(resolveLevel(codec, undefined), range.default);
      for (const level of sampleLevels(codec)) {
        if (level !== undefined) assert.equal(resolveLevel(codec, level), level);
      }
      const invalid = [range.min - 1, range.max + 1, 1.5, Number.NaN, Number.POSITIVE_INFINITY];
      for (const level of [...invalid, ...(range.excluded ?? [])]) {
        throwsWith(() => resolveLevel(codec, level), "E_BAD_OPTION", `level ${level}: `);
        await rejectsWith(
          compress(Buffer.from("x"), { codec: codec.name, level, chunkSize: CHUNK }),
          "E_BAD_OPTION",
          `compress level ${level}: `,
        );
      }
    });
  });
}

describe("level ranges of the built-in codecs", () => {
  test("zstd accepts -131072..-1 and 1..22, not 0", () => {
    const zstd = codecByName("zstd");
    for (const level of [-131072, -131071, -5, -1, 1, 3, 19, 22])
      assert.equal(resolveLevel(zstd, level), level);
    for (const level of [-131073, 0, 23, 2.5]) throwsWith(() => resolveLevel(zstd, level), "E_BAD_OPTION");
    assert.equal(resolveLevel(zstd, undefined), 3);
    roundTripChunk(zstd, textBytes(3000, 1), -131072);
    roundTripChunk(zstd, textBytes(3000, 1), 22);
  });

  test("brotli accepts 0..11", () => {
    const brotli = codecByName("brotli");
    for (let level = 0; level <= 11; level++) assert.equal(resolveLevel(brotli, level), level);
    for (const level of [-1, 12, 0.5]) throwsWith(() => resolveLevel(brotli, level), "E_BAD_OPTION");
    roundTripChunk(brotli, textBytes(3000, 2), 0);
    roundTripChunk(brotli, textBytes(3000, 2), 11);
  });

  test("brotli's stream does not depend on the output buffer it is written into", () => {
    // The codec sizes node:zlib's output buffer to the chunk; its bytes must be those of
    // brotli with node's default buffer: small, incompressible, and over the 1 MiB cap.
    const brotli = codecByName("brotli");
    for (const [raw, level] of [
      [textBytes(700, 3), 5],
      [noiseBytes(4096, 4), 4],
      [textBytes(3 << 20, 5), 4],
    ] as const) {
      const lgwin = Math.min(24, Math.max(10, Math.ceil(Math.log2(raw.length))));
      const plain = brotliCompressSync(raw, {
        params: {
          [constants.BROTLI_PARAM_QUALITY]: level,
          [constants.BROTLI_PARAM_SIZE_HINT]: raw.length,
          [constants.BROTLI_PARAM_LGWIN]: lgwin,
        },
      });
      const coded = brotli.encode(raw, { level });
      assert.ok(Buffer.from(coded.payload).equals(plain), `${raw.length} bytes at quality ${level}`);
    }
  });

  test("brotli decodes into the caller's memory as it decodes into its own, errors included", () => {
    const brotli = codecByName("brotli");
    const codes = (f: () => unknown) => {
      try {
        f();
        return "ok";
      } catch (error) {
        return (error as { code?: string }).code ?? "not coded";
      }
    };
    const raws = [textBytes(1, 1), textBytes(700, 3), noiseBytes(4096, 4), textBytes(600_000, 5)];
    for (const [i, raw] of raws.entries()) {
      const payload = brotli.encode(raw, { level: 5 }).payload;
      const damaged = [
        payload,
        payload.subarray(0, payload.length - 1), // truncated
        Buffer.concat([payload, Buffer.from([0])]), // a byte after the stream
        Buffer.from(payload).fill(
          0xff,
          payload.length >> 1,
          Math.min(payload.length, (payload.length >> 1) + 8),
        ),
      ];
      for (const [d, bytes] of damaged.entries()) {
        for (const rawLength of [raw.length, raw.length + 1, raw.length - 1]) {
          if (rawLength < 1) continue;
          const where = `input ${i}, variant ${d}, ${rawLength} bytes`;
          const into = new Uint8Array(rawLength);
          const own = codes(() => brotli.decode(bytes, EMPTY, rawLength));
          const there = codes(() => {
            const out = brotli.decode(bytes, EMPTY, rawLength, into);
            assert.equal(out, into, where);
          });
          assert.equal(there, own, where);
          if (own === "ok")
            assert.ok(Buffer.from(into).equals(brotli.decode(bytes, EMPTY, rawLength)), where);
        }
      }
      // After every refusal above, the next stream still decodes into the caller's memory.
      const into = new Uint8Array(raw.length);
      assert.equal(brotli.decode(payload, EMPTY, raw.length, into), into);
      assert.ok(Buffer.from(into).equals(raw), `input ${i}`);
    }
  });

  test("lz4 and none take no level", () => {
    for (const name of ["lz4", "none"]) {
      const codec = codecByName(name);
      assert.equal(codec.levels, undefined);
      assert.equal(resolveLevel(codec, undefined), undefined);
      throwsWith(() => resolveLevel(codec, 1), "E_BAD_OPTION");
    }
  });

  test("random data compressed with zstd is stored as NONE chunks", async () => {
    const content = noiseBytes(3 * CHUNK + 100, 42);
    const packed = await compress(content, { codec: "zstd", chunkSize: CHUNK });
    const reader = await MmhReader.open(bufferSource(packed));
    assert.equal(reader.chunks.length, 4);
    assert.deepEqual(
      reader.chunks.map((chunk) => chunk.codec),
      ["NONE", "NONE", "NONE", "NONE"],
    );
    assert.ok(Buffer.from(await decompress(packed)).equals(content));
  });
});
