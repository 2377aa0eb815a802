/**
 * ABIN, the adaptive binary range coder (FORMAT.md §6.7), and CIN2, CINT whose streams may
 * be ABIN (§6.6): round trips over models and alphabets, where it beats CINT, and hostile
 * payloads (truncated, lying fields, random damage), each refused with a coded error.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { type AbinModel, bestAbin, decodeAbin, encodeAbin } from "../src/codecs/abin.ts";
import { cint2Codec, cintCodec, cintParts } from "../src/codecs/cint.ts";
import { MmhError } from "../src/common/errors.ts";
import { chooseCodecs } from "../src/engine/auto.ts";
import { compactFloats, gaussian, rng } from "../src/tools/gen.ts";
import { throwsWith } from "./support.ts";

const EMPTY = new Uint8Array(0);

/** `n` bytes of `size` values, skewed towards the first ones, each after the one two before half the time. */
function skewed(n: number, size: number, seed: number): Uint8Array {
  const next = rng(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++)
    out[i] = i >= 2 && next() < 0.5 ? out[i - 2] : Math.floor(size * next() ** 3) & 0xff;
  return out;
}

const MODELS: AbinModel[] = [
  { rate: 1, lags: [], quant: 1 },
  { rate: 5, lags: [1], quant: 256 },
  { rate: 6, lags: [2], quant: 3 },
  { rate: 15, lags: [1, 2], quant: 16 },
  { rate: 4, lags: [3, 8], quant: 2 },
];

test("ABIN round-trips every model on alphabets of 1 to 256 values and lengths from 1", () => {
  let seed = 1;
  for (const size of [1, 2, 3, 17, 128, 256])
    for (const n of [1, 2, 3, 100, 5000])
      for (const model of MODELS) {
        const stream = skewed(n, size, seed++);
        const payload = encodeAbin(stream, model);
        if (payload === undefined) {
          // Only a model over 2^20 slots is refused: two lags on a large alphabet.
          assert.equal(model.lags.length, 2, JSON.stringify(model));
          continue;
        }
        const back = decodeAbin(payload, n);
        assert.deepEqual(back, stream, `${size} values, ${n} bytes, ${JSON.stringify(model)}`);
      }
});

test("ABIN codes a predictable binary stream under one bit a byte, which Huffman cannot", () => {
  const next = rng(3);
  // Signs: 0x03 or 0x83, the same as two before 90% of the time.
  const stream = new Uint8Array(50_000);
  for (let i = 0; i < stream.length; i++)
    stream[i] = i >= 2 && next() < 0.9 ? stream[i - 2] : next() < 0.5 ? 0x03 : 0x83;
  const payload = bestAbin(stream);
  assert.ok(payload !== undefined);
  // H(0.05) ~ 0.29 bits: the context of two before finds it.
  assert.ok(payload.length * 8 < stream.length * 0.4, `${payload.length} bytes`);
  assert.equal(payload[1], 1, "one lag");
  assert.deepEqual(decodeAbin(payload, stream.length), stream);
});

test("ABIN refuses hostile payloads with E_CORRUPT, never a crash or a hang", () => {
  const stream = skewed(4000, 40, 7);
  const payload = Buffer.from(encodeAbin(stream, { rate: 5, lags: [1, 2], quant: 8 })!);
  const at = 4 + 2;
  const bad: Buffer[] = [
    payload.subarray(0, 1),
    payload.subarray(0, at + 2),
    payload.subarray(0, payload.length - 1),
    Buffer.concat([payload, Buffer.from([0])]),
    Buffer.from([0, ...payload.subarray(1)]),
    Buffer.from([16, ...payload.subarray(1)]),
    Buffer.from([5, 3, ...payload.subarray(2)]),
    Buffer.from([5, 2, 0, ...payload.subarray(3)]),
    Buffer.from([5, 2, 1, 9, ...payload.subarray(4)]),
    Buffer.from([5, 0, 1, ...payload.subarray(3)]),
  ];
  for (const b of bad) throwsWith(() => decodeAbin(b, stream.length), "E_CORRUPT", b.subarray(0, 8).join());
  // An alphabet whose size byte claims more values than the payload holds.
  const big = Buffer.from(payload);
  big[at - 1] = 255;
  throwsWith(() => decodeAbin(big, stream.length), "E_CORRUPT");
  throwsWith(() => decodeAbin(payload, 0), "E_CORRUPT");
  // A length the payload does not code: the bits run out, or do not end where the coder does.
  throwsWith(() => decodeAbin(payload, stream.length + 1000), "E_CORRUPT");
  throwsWith(() => decodeAbin(payload, stream.length - 1), "E_CORRUPT");
  // Two lags on 256 values with no quantiser: 2^24 slots, over the limit.
  const wide = Buffer.from([6, 2, 1, 2, 255, 255, ...Array.from({ length: 256 }, (_, v) => v), 0, 0, 0, 0]);
  throwsWith(() => decodeAbin(wide, 10), "E_CORRUPT");
  const next = rng(11);
  for (let i = 0; i < 300; i++) {
    const b = Buffer.from(payload);
    for (let k = 0; k < 2; k++) b[Math.floor(next() * b.length)] = Math.floor(next() * 256);
    try {
      assert.equal(decodeAbin(b, stream.length).length, stream.length);
    } catch (error) {
      assert.ok(error instanceof MmhError && error.code === "E_CORRUPT", String(error));
    }
  }
});

/** dlib-style floats: x and y of points whose signs and exponents follow the point before. */
function points(count: number, seed: number): Buffer {
  const next = gaussian(rng(seed));
  const values: number[] = [];
  for (let i = 0; i < count; i++) {
    const scale = i % 2 === 0 ? 2 ** -12 : 2 ** -4;
    const before = values[i - 2] ?? scale;
    values.push(Math.fround(before * 0.9 + next() * scale * 0.3));
  }
  return compactFloats(values);
}

test("CIN2 round-trips, codes some streams with ABIN and is smaller than CINT", () => {
  const data = points(20_000, 2);
  const cint = cintCodec.encode(data, { level: 19 }).payload;
  const cin2 = cint2Codec.encode(data, { level: 19 }).payload;
  assert.ok(
    cintParts(cin2).some((p) => p.id === "ABIN"),
    "no ABIN part",
  );
  assert.ok(cin2.length < cint.length, `${cin2.length} against CINT's ${cint.length}`);
  assert.deepEqual(cint2Codec.decode(cin2, EMPTY, data.length), new Uint8Array(data));
  // CINT itself never writes ABIN, nor reads it (the FourCC says which).
  assert.ok(cintParts(cint).every((p) => p.id !== "ABIN"));
  throwsWith(() => cintCodec.decode(cin2, EMPTY, data.length), "E_CORRUPT");
});

test("CIN2 refuses damaged payloads with a coded error", () => {
  const data = points(8000, 4);
  const payload = Buffer.from(cint2Codec.encode(data, { level: 19 }).payload);
  const abin = cintParts(payload).find((p) => p.id === "ABIN");
  assert.ok(abin !== undefined);
  const bad = [payload.subarray(0, abin.offset + 3), payload.subarray(0, payload.length - 1)];
  const lying = Buffer.from(payload);
  lying.writeUInt32LE(abin.size - 1, abin.offset - 4);
  bad.push(lying);
  for (const b of bad) throwsWith(() => cint2Codec.decode(b, EMPTY, data.length), "E_CORRUPT");
  const next = rng(5);
  for (let i = 0; i < 200; i++) {
    const b = Buffer.from(payload);
    for (let k = 0; k < 3; k++) b[abin.offset + Math.floor(next() * abin.size)] = Math.floor(next() * 256);
    try {
      assert.equal(cint2Codec.decode(b, EMPTY, data.length).length, data.length);
    } catch (error) {
      assert.ok(error instanceof MmhError && error.code === "E_CORRUPT", String(error));
    }
  }
});

test("auto takes CIN2 at the ratio goal and CINT at the default", () => {
  const data = points(100_000, 6).subarray(0, 512 << 10);
  const ids = (goal: "balanced" | "ratio") =>
    chooseCodecs(data, null, goal, undefined, { choiceMs: 0 }).map((c) => c.id);
  assert.deepEqual(ids("balanced"), ["CINT", "ZSTD"]);
  assert.deepEqual(ids("ratio"), ["CIN2", "ZSTD"]);
});
