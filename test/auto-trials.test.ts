/**
 * `auto`'s whole-chunk trials left out on what its samples already measured
 * (src/engine/auto.ts): the choices that remain code the chunk as small as the full set
 * did, and the output round-trips.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { repeatShare } from "../src/common/repeats.ts";
import { type Choice, chooseCodecs, encodeChoices } from "../src/engine/auto.ts";
import { compress, decompress } from "../src/index.ts";
import { rng } from "../src/tools/gen.ts";
import { generate } from "../src/tools/index.ts";

/** Bytes of a two-sided geometric spread around 128 (as quantised weights): no matches, a skewed order-0. */
function skewedBytes(n: number, scale: number, seed: number): Uint8Array {
  const next = rng(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const u = next() - 0.5;
    const v = 128 - scale * Math.sign(u) * Math.log(1 - 2 * Math.abs(u));
    out[i] = Math.max(0, Math.min(255, Math.round(v)));
  }
  return out;
}

const has = (choices: readonly Choice[], id: string, level: number) =>
  choices.some((c) => c.id === id && c.level === level && c.layout === undefined);

test("a one-stream chunk whose brotli sample beats zstd 3's codes zstd at level 1 only, losing nothing", async () => {
  const raw = skewedBytes(512 << 10, 6, 11);
  const choices = chooseCodecs(raw, null, "balanced", undefined, { choiceMs: 0 });
  assert.ok(has(choices, "BROT", 4), JSON.stringify(choices));
  assert.ok(has(choices, "ZSTD", 1), JSON.stringify(choices));
  assert.ok(!has(choices, "ZSTD", 3), JSON.stringify(choices));
  const size = (set: readonly Choice[]) => {
    const { chunk } = encodeChoices(raw, null, set);
    return chunk.header.length + chunk.payload.length;
  };
  // Level 3 coded too would not have been kept.
  assert.equal(size(choices), size([...choices, { id: "ZSTD", level: 3 }]));
  const packed = await compress(raw, { threads: 1 });
  assert.deepEqual(new Uint8Array(await decompress(packed)), raw);
});

test("a small chunk with repeats codes its byte groupings only where zstd's record is not LZ data's", () => {
  const record = (raw: Uint8Array, choice: Choice) => {
    const { chunk } = encodeChoices(raw, null, [choice]);
    return { codec: chunk.codec, size: chunk.header.length + chunk.payload.length };
  };
  const groupings = (choices: readonly Choice[]) => choices.filter((c) => c.layout !== undefined);
  // Text: zstd's matches make its record far under the order-0 estimate; planes break them.
  const text = generate({ kind: "text", size: 40000 }).subarray(0, 40000);
  assert.ok(repeatShare(text) >= 0.1);
  const choices = chooseCodecs(text, null, "balanced", undefined, { choiceMs: 0 });
  assert.equal(groupings(choices).length, 2, JSON.stringify(choices));
  const zstd = record(text, { id: "ZSTD", level: 3 });
  const kept = encodeChoices(text, null, choices).chunk;
  for (const g of groupings(choices)) {
    assert.ok(g.ifOver !== undefined && zstd.size < g.ifOver.bytes, JSON.stringify(g));
    // Left out, and it would not have been kept.
    assert.ok(record(text, g).size > kept.header.length + kept.payload.length);
  }
  const without = choices.filter((c) => c.layout === undefined);
  assert.deepEqual(kept.payload, encodeChoices(text, null, without).chunk.payload);
  // Words that repeat between bytes zstd cannot shrink: the groupings are coded.
  const next = rng(9);
  const words = Array.from({ length: 8 }, () => Math.floor(next() * 2 ** 32));
  const mixed = new Uint8Array(48000);
  const view = new DataView(mixed.buffer);
  for (let at = 0; at < mixed.length; at += 4)
    view.setUint32(at, at % 16 === 0 ? words[Math.floor(next() * 8)] : Math.floor(next() * 2 ** 32));
  assert.ok(repeatShare(mixed) >= 0.1);
  const coded = groupings(chooseCodecs(mixed, null, "balanced", undefined, { choiceMs: 0 }));
  assert.equal(coded.length, 2);
  const mixedZstd = record(mixed, { id: "ZSTD", level: 3 });
  assert.equal(mixedZstd.codec, "ZSTD");
  for (const g of coded) assert.ok(g.ifOver !== undefined && mixedZstd.size >= g.ifOver.bytes);
  // The ratio goal codes them whole as before.
  assert.ok(groupings(chooseCodecs(text, null, "ratio", undefined, { choiceMs: 0 })).every((c) => !c.ifOver));
});
