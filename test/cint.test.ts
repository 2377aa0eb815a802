/**
 * CINT (FORMAT.md §6.6): compact integers as dlib serialises floats, split into streams.
 * Round trips on such data and on bytes that are not, auto's choice of it, and hostile
 * payloads, each refused with a coded error.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { cintCodec, lengthsVary, looksCompact } from "../src/codecs/cint.ts";
import { MmhError } from "../src/common/errors.ts";
import { bufferSource } from "../src/common/source.ts";
import { chooseCodecs } from "../src/engine/auto.ts";
import { MmhReader } from "../src/engine/reader.ts";
import { compress, decompress } from "../src/index.ts";
import { compactFloats, gaussian, rng } from "../src/tools/gen.ts";
import { noiseBytes, textBytes, throwsWith } from "./support.ts";

const EMPTY = new Uint8Array(0);

/** dlib-style floats of a normal distribution, with a zero and short mantissas among them. */
function floats(count: number, seed: number): Buffer {
  const next = gaussian(rng(seed));
  const values = Array.from({ length: count }, (_, i) =>
    i % 1001 === 7 ? 0 : i % 501 === 3 ? 0.25 * (1 + (i % 3)) : Math.fround(next() * 2 ** -10),
  );
  return compactFloats(values);
}

const roundTrip = (raw: Uint8Array, level = 3) => {
  const { payload } = cintCodec.encode(raw, { level });
  const back = cintCodec.decode(payload, EMPTY, raw.length);
  assert.ok(Buffer.from(back).equals(Buffer.from(raw)), `round trip of ${raw.length} bytes`);
  return payload;
};

test("CINT round-trips compact floats, other bytes and every length from 0 to 40", () => {
  const data = floats(40_000, 1);
  const payload = roundTrip(data);
  // The integers' fields in streams of their own: far smaller than the bytes.
  assert.ok(payload.length < data.length * 0.7, `${payload.length} of ${data.length}`);
  for (let offset = 0; offset < 14; offset++) roundTrip(data.subarray(offset, offset + 20_000));
  roundTrip(noiseBytes(50_000, 2));
  roundTrip(textBytes(50_000, 3));
  roundTrip(new Uint8Array(30_000));
  roundTrip(new Uint8Array(30_000).fill(0x08));
  for (let n = 0; n <= 40; n++) roundTrip(data.subarray(100, 100 + n));
});

test("looksCompact finds compact floats and not text, noise or zeros", () => {
  assert.equal(looksCompact(floats(20_000, 4)), true);
  assert.equal(looksCompact(textBytes(200_000, 5)), false);
  assert.equal(looksCompact(noiseBytes(200_000, 6)), false);
  assert.equal(looksCompact(new Uint8Array(200_000)), false);
});

test("auto codes compact floats with CINT (CIN2 at the ratio goal), smaller than zstd", async () => {
  const data = floats(300_000, 7);
  for (const goal of ["balanced", "ratio"] as const) {
    const packed = await compress(data, { goal, chunkSize: 1 << 20 });
    const reader = await MmhReader.open(bufferSource(packed));
    const codecs = reader.chunks.map((c) => c.codec);
    const id = goal === "ratio" ? "CIN2" : "CINT";
    assert.ok(codecs.length > 0 && codecs.every((c) => c === id), `${goal}: ${codecs}`);
    assert.ok(Buffer.from(await decompress(packed)).equals(data));
    const zstd = await compress(data, {
      codec: "zstd",
      level: goal === "ratio" ? 19 : 3,
      chunkSize: 1 << 20,
    });
    assert.ok(packed.length < zstd.length * 0.95, `${goal}: ${packed.length} against zstd's ${zstd.length}`);
  }
});

test("CINT refuses hostile payloads with E_CORRUPT", () => {
  const data = floats(5000, 8);
  const payload = Buffer.from(cintCodec.encode(data, { level: 3 }).payload);
  const edit = (f: (b: Buffer) => void) => {
    const b = Buffer.from(payload);
    f(b);
    return b;
  };
  const bad: Buffer[] = [
    payload.subarray(0, 5),
    payload.subarray(0, payload.length - 1),
    Buffer.concat([payload, Buffer.from([0])]),
    edit((b) => {
      b[0] = 1;
    }),
    edit((b) => {
      b[1] = 16;
    }),
    edit((b) => {
      b.writeUInt32LE(data.length, 2);
    }),
    edit((b) => {
      b.writeUInt32LE(b.readUInt32LE(2) + 1, 2);
    }),
    edit((b) => {
      b.write("LONG", 6 + b[1], "latin1");
    }),
    edit((b) => {
      b[6 + b[1] + 4] = 7;
    }),
    edit((b) => {
      b.writeUInt32LE(0xffffffff, 6 + b[1] + 5);
    }),
  ];
  for (const b of bad) throwsWith(() => cintCodec.decode(b, EMPTY, data.length), "E_CORRUPT");
  throwsWith(() => cintCodec.decode(payload, Buffer.from([1]), data.length), "E_CORRUPT");
  throwsWith(() => cintCodec.decode(payload, EMPTY, data.length + 1), "E_CORRUPT");
  // Random damage: a coded error or the right length, never anything else.
  const next = rng(9);
  for (let i = 0; i < 300; i++) {
    const b = Buffer.from(payload);
    for (let k = 0; k < 3; k++) b[Math.floor(next() * b.length)] = Math.floor(next() * 256);
    try {
      const out = cintCodec.decode(b, EMPTY, data.length);
      assert.equal(out.length, data.length);
    } catch (error) {
      assert.ok(error instanceof MmhError, String(error));
    }
  }
});

/** Records of 6 bytes as dlib writes floats whose mantissas all have 3 bytes: no length varies. */
function fixedRecords(count: number, seed: number): Buffer {
  const next = rng(seed);
  const out = Buffer.alloc(6 * count);
  for (let i = 0; i < count; i++) {
    out[6 * i] = next() < 0.5 ? 0x03 : 0x83;
    for (let k = 1; k < 4; k++) out[6 * i + k] = Math.floor(next() * 256);
    out[6 * i + 4] = 0x81;
    out[6 * i + 5] = 0x20 + Math.floor(next() * 4);
  }
  return out;
}

test("auto codes compact integers of varying lengths with CINT and the general codec only", () => {
  const data = floats(120_000, 10).subarray(0, 512 << 10);
  assert.ok(looksCompact(data) && lengthsVary(data));
  for (const [goal, level] of [
    ["balanced", 3],
    ["ratio", 19],
  ] as const) {
    const choices = chooseCodecs(data, null, goal, undefined, { choiceMs: 0 });
    assert.deepEqual(
      choices.map((c) => [c.id, c.level]),
      [
        [goal === "ratio" ? "CIN2" : "CINT", level],
        ["ZSTD", level],
      ],
      goal,
    );
  }
});

test("compact integers of fixed lengths: every candidate is sampled, CINT beside them", () => {
  const data = fixedRecords(90_000, 11);
  assert.ok(looksCompact(data) && !lengthsVary(data));
  const choices = chooseCodecs(data, null, "balanced", undefined, { choiceMs: 0 });
  assert.equal(choices.at(-1)?.id, "CINT");
  assert.ok(
    choices.some((c) => c.id === "HIER"),
    JSON.stringify(choices),
  );
});
