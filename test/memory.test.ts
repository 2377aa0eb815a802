import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ByteQueue, dispose } from "../src/common/bytes.ts";
import { compress, decompress } from "../src/index.ts";
import { generate } from "../src/tools/gen.ts";

describe("dispose", () => {
  test("gives back a whole, large, fresh buffer, and leaves anything else alone", () => {
    const whole = new Uint8Array(1 << 20);
    dispose(whole);
    assert.equal(whole.byteLength, 0);
    assert.equal((whole.buffer as ArrayBuffer).detached, true);

    const big = new Uint8Array(1 << 20);
    const view = big.subarray(16);
    dispose(view);
    assert.equal(view.byteLength, (1 << 20) - 16, "a view of part of a buffer is left alone");

    const small = new Uint8Array(1024);
    dispose(small);
    assert.equal(small.byteLength, 1024, "small buffers may share Node's pool");

    const shared = new Uint8Array(new SharedArrayBuffer(1 << 20));
    dispose(shared);
    assert.equal(shared.byteLength, 1 << 20, "shared memory is never detached");
  });
});

describe("ByteQueue with detach", () => {
  test("reads stay right when the source reuses a piece's memory after handing out the next", async () => {
    const data = generate({ kind: "random", size: 300_000, seed: 11 });
    // A source that writes every piece into the same buffer: what it handed out before is
    // overwritten as soon as it is asked for more.
    const shared = new Uint8Array(7_000);
    async function* reusing(): AsyncGenerator<Uint8Array> {
      for (let at = 0; at < data.length; at += shared.length) {
        const piece = data.subarray(at, at + shared.length);
        shared.set(piece);
        yield shared.subarray(0, piece.length);
      }
    }
    const queue = new ByteQueue(reusing(), true);
    const parts: Buffer[] = [];
    let at = 0;
    for (const n of [10, 9_000, 1, 20_000, 123, 50_000]) {
      const got = await queue.read(n, "test");
      assert.ok(got.equals(data.subarray(at, at + n)), `read of ${n} at ${at}`);
      parts.push(Buffer.from(got));
      at += n;
    }
    assert.ok(Buffer.concat(parts).equals(data.subarray(0, at)));
  });
});

describe("disposed codec output never reaches the caller", () => {
  test("round trips with every codec, one and two threads", async () => {
    const content = Buffer.concat([
      generate({ kind: "safetensors", dtype: "BF16", size: 10 << 20, seed: 3 }),
      generate({ kind: "text", size: 2 << 20, seed: 4 }),
    ]);
    for (const codec of ["auto", "zstd", "lz4", "hier", "brotli"]) {
      for (const threads of [1, 2]) {
        const packed = await compress(content, {
          codec,
          threads,
          ...(codec === "brotli" ? { level: 1 } : {}),
        });
        const back = Buffer.from(await decompress(packed, { threads }));
        assert.ok(back.equals(content), `${codec}, ${threads} threads`);
      }
    }
  });
});
