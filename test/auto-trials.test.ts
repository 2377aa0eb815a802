/**
 * `auto`'s whole-chunk trials left out on what its samples already measured
 * (src/engine/auto.ts): the choices that remain code the chunk as small as the full set
 * did, and the output round-trips.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { type Choice, chooseCodecs, encodeChoices } from "../src/engine/auto.ts";
import { compress, decompress } from "../src/index.ts";
import { rng } from "../src/tools/gen.ts";

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
