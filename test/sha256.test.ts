/**
 * The content hash without node:crypto for a short content (src/common/sha256.ts): the
 * same digest as node:crypto's at every length around the switch, whole or in pieces.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import { JS_HASH_MAX, Sha256, sha256Counts } from "../src/common/sha256.ts";

const reference = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

describe("Sha256", () => {
  test("matches node:crypto in JavaScript and past the switch, in one piece or many", async () => {
    const limit = 4096;
    for (const length of [0, 1, 55, 56, 63, 64, 65, 1000, limit - 1, limit, limit + 1, 3 * limit + 17]) {
      const bytes = randomBytes(length);
      const before = { ...sha256Counts };
      const whole = new Sha256(limit, false);
      whole.update(bytes);
      assert.equal(await whole.digest(), reference(bytes), `${length} bytes whole`);
      const native = length > limit ? 1 : 0;
      assert.equal(sha256Counts.native - before.native, native, `${length} bytes: node:crypto`);
      assert.equal(sha256Counts.js - before.js, 1 - native, `${length} bytes: JavaScript`);
      const pieces = new Sha256(limit, false);
      for (let at = 0; at < length; at += 333) pieces.update(bytes.subarray(at, at + 333));
      assert.equal(await pieces.digest(), reference(bytes), `${length} bytes in pieces`);
    }
  });

  test("holds a copy: memory the caller reuses after update does not change the digest", async () => {
    const bytes = randomBytes(2000);
    const expected = reference(bytes);
    const hash = new Sha256(JS_HASH_MAX, false);
    const reused = Buffer.from(bytes);
    hash.update(reused);
    reused.fill(0);
    assert.equal(await hash.digest(), expected);
  });

  test("the default switch is JS_HASH_MAX", async () => {
    const bytes = randomBytes(JS_HASH_MAX + 1);
    const before = { ...sha256Counts };
    const hash = new Sha256(JS_HASH_MAX, false);
    hash.update(bytes.subarray(0, JS_HASH_MAX));
    hash.update(bytes.subarray(JS_HASH_MAX));
    assert.equal(await hash.digest(), reference(bytes));
    assert.equal(sha256Counts.native - before.native, 1);
  });

  test("once this thread has hashed in node:crypto, a short content is hashed there too", async () => {
    new Sha256(16).update(randomBytes(17)); // past its limit: loads node:crypto
    const bytes = randomBytes(1000);
    const before = { ...sha256Counts };
    const hash = new Sha256();
    hash.update(bytes);
    assert.equal(await hash.digest(), reference(bytes));
    assert.deepEqual(
      { js: sha256Counts.js - before.js, native: sha256Counts.native - before.native },
      { js: 0, native: 1 },
    );
  });
});
