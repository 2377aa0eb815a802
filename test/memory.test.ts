import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ByteQueue, copyBytes, dispose } from "../src/common/bytes.ts";
import { compress, decompress } from "../src/index.ts";
import { generate } from "../src/tools/gen.ts";
import { reusing } from "./support.ts";

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

describe("copyBytes", () => {
  const random = (n: number, seed: number) => {
    const out = new Uint8Array(n);
    let x = seed;
    for (let i = 0; i < n; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      out[i] = x >>> 24;
    }
    return out;
  };
  // The project's TypeScript lib declares no WebAssembly (as src/codecs/hier/kernels.ts).
  const { Memory } = (
    globalThis as unknown as {
      WebAssembly: { Memory: new (descriptor: { initial: number }) => { buffer: ArrayBuffer } };
    }
  ).WebAssembly;
  const kinds = {
    plain: (n: number) => new Uint8Array(n),
    shared: (n: number) => new Uint8Array(new SharedArrayBuffer(n)),
    wasm: (n: number) => new Uint8Array(new Memory({ initial: Math.ceil(n / 65536) + 1 }).buffer),
  };
  test("writes what TypedArray#set writes, to and from shared, wasm and plain memory, at offsets", () => {
    for (const [from, makeFrom] of Object.entries(kinds))
      for (const [to, makeTo] of Object.entries(kinds))
        for (const length of [0, 100, 4095, 4096, 70_001]) {
          const bytes = random(length, length + 1);
          const source = makeFrom(length + 40).subarray(8, 8 + length);
          source.set(bytes);
          for (const offset of [0, 13]) {
            const expected = makeTo(length + 64).subarray(3);
            expected.fill(0xa5);
            const actual = makeTo(length + 64).subarray(3);
            actual.fill(0xa5);
            expected.set(source, offset);
            copyBytes(actual, source, offset);
            assert.deepEqual(actual, expected, `${from} -> ${to}, ${length} bytes at ${offset}`);
          }
        }
  });
  test("never writes past the target view: a copy that does not fit throws as set() does", () => {
    const memory = new Uint8Array(new SharedArrayBuffer(20_000)).fill(7);
    const target = memory.subarray(100, 10_100);
    const source = random(8_000, 5);
    assert.throws(() => copyBytes(target, source, 5_000), RangeError);
    assert.ok(
      memory.every((b) => b === 7),
      "nothing written",
    );
  });
  test("overlapping views of one buffer copy as set() does", () => {
    const shared = new Uint8Array(new SharedArrayBuffer(30_000));
    shared.set(random(30_000, 9));
    const expected = Uint8Array.from(shared);
    expected.set(expected.subarray(0, 20_000), 5_000);
    copyBytes(shared, shared.subarray(0, 20_000), 5_000);
    assert.deepEqual(Uint8Array.from(shared), expected);
  });
});

describe("ByteQueue with detach", () => {
  test("reads stay right when the source reuses a piece's memory after handing out the next", async () => {
    const data = generate({ kind: "random", size: 300_000, seed: 11 });
    const queue = new ByteQueue(reusing(data, 7_000), true);
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

  test("a read said to stay keeps its bytes after later reads; one in a reused piece is said not to", async () => {
    const data = generate({ kind: "random", size: 300_000, seed: 12 });
    for (const detach of [true, false]) {
      const queue = new ByteQueue(
        detach
          ? reusing(data, 7_000)
          : (async function* () {
              yield* [data.subarray(0, 150_000), data.subarray(150_000)];
            })(),
        detach,
      );
      const kept: [Buffer, number][] = [];
      let viewsOfTheSource = 0;
      let at = 0;
      for (const n of [10, 9_000, 1, 20, 20_000, 123, 3_000, 50_000, 5]) {
        const got = await queue.read(n, "test");
        if (queue.lastReadStays) kept.push([got, at]);
        else viewsOfTheSource++;
        at += n;
      }
      // Views of the reused piece are said not to stay (without detach, every read stays).
      assert.equal(
        viewsOfTheSource > 0,
        detach,
        `detach ${detach}: ${viewsOfTheSource} reads said not to stay`,
      );
      assert.ok(kept.length > 0);
      for (const [got, from] of kept)
        assert.ok(got.equals(data.subarray(from, from + got.length)), `detach ${detach}: read at ${from}`);
    }
  });
});

describe("ByteQueue.readInto", () => {
  const error = (work: Promise<unknown>) =>
    work.then(
      () => assert.fail("expected an error"),
      (e: { code?: string; message: string }) => `${e.code}: ${e.message}`,
    );

  test("fills given memory across many reused pieces, between reads, one or more targets", async () => {
    const data = generate({ kind: "random", size: 300_000, seed: 13 });
    for (const detach of [true, false]) {
      const queue = new ByteQueue(reusing(data, 7_000), detach);
      let at = 0;
      const expect = (got: Uint8Array, n: number, what: string) => {
        assert.ok(Buffer.from(got).equals(data.subarray(at, at + n)), `detach ${detach}: ${what} at ${at}`);
        at += n;
      };
      expect(Buffer.from(await queue.read(10, "test")), 10, "read");
      // A target spanning nine pieces, starting in the middle of one.
      const big = new Uint8Array(60_000);
      await queue.readInto(big, "test");
      expect(big, big.length, "readInto");
      assert.equal(queue.position, at);
      // Within what is left of a piece, then a read in the same piece.
      const small = new Uint8Array(100);
      await queue.readInto(small, "test");
      expect(small, small.length, "readInto within a piece");
      expect(Buffer.from(await queue.read(5, "test")), 5, "read");
      // Two targets read as one run of bytes (a ring's end and start), the first ending
      // inside a piece; then a target of nothing.
      const parts = [new Uint8Array(13_001), new Uint8Array(20_000)];
      await queue.readInto(parts, "test");
      expect(Buffer.concat(parts), 33_001, "readInto two targets");
      await queue.readInto(new Uint8Array(0), "test");
      // Bytes read before stay as they are while the source reuses its pieces.
      const kept = Buffer.from(big);
      const rest = new Uint8Array(data.length - at);
      await queue.readInto(rest, "test");
      expect(rest, rest.length, "the rest");
      assert.ok(Buffer.from(big).equals(kept));
      assert.equal(await queue.atEnd(), true);
    }
  });

  test("a read larger than memory is made for ahead spans pieces too", async () => {
    const data = Buffer.alloc(17 << 20);
    for (let i = 0; i < data.length; i += 4) data.writeUInt32LE(i, i);
    for (const detach of [true, false]) {
      // Without detach, the source keeps its pieces.
      const pieces = async function* () {
        for (let at = 0; at < data.length; at += 1 << 20) yield data.subarray(at, at + (1 << 20));
      };
      const queue = new ByteQueue(detach ? reusing(data, 1 << 20) : pieces(), detach);
      assert.ok((await queue.read(5, "test")).equals(data.subarray(0, 5)));
      assert.ok((await queue.read(data.length - 5, "test")).equals(data.subarray(5)), `detach ${detach}`);
    }
  });

  test("input cut short is E_TRUNCATED, with the message read gives", async () => {
    const data = generate({ kind: "random", size: 50_000, seed: 14 });
    for (const detach of [true, false]) {
      const viaRead = new ByteQueue(reusing(data, 7_000), detach);
      const viaInto = new ByteQueue(reusing(data, 7_000), detach);
      await viaRead.read(3, "a header");
      await viaInto.read(3, "a header");
      const readMessage = await error(viaRead.read(60_000, "the payload"));
      assert.equal(
        readMessage,
        "E_TRUNCATED: unexpected end of data at offset 50000 while reading the payload (needed 60000 bytes at offset 3)",
      );
      assert.equal(await error(viaInto.readInto(new Uint8Array(60_000), "the payload")), readMessage);
      const split = new ByteQueue(reusing(data, 7_000), detach);
      await split.read(3, "a header");
      assert.equal(
        await error(split.readInto([new Uint8Array(45_000), new Uint8Array(15_000)], "the payload")),
        readMessage,
        "two targets",
      );
      // A hostile length far beyond the source: the same error, no memory made for it.
      const huge = new ByteQueue(reusing(data, 7_000), detach);
      await huge.read(3, "a header");
      assert.equal(
        await error(huge.read(2 ** 40, "the payload")),
        "E_TRUNCATED: unexpected end of data at offset 50000 while reading the payload (needed 1099511627776 bytes at offset 3)",
      );
      const empty = new ByteQueue(reusing(new Uint8Array(0), 7_000), detach);
      assert.equal(
        await error(empty.readInto(new Uint8Array(1), "a tag")),
        "E_TRUNCATED: unexpected end of data at offset 0 while reading a tag (needed 1 bytes at offset 0)",
      );
    }
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
