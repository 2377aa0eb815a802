/**
 * zstdDecodeInto, the reused decoder of HIER's zstd-coded streams: the same bytes as
 * the zstd codec's own decode, frame after frame on one decoder, and the same refusals
 * of damaged frames, after which it still decodes good ones.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { constants, zstdCompressSync } from "node:zlib";
import { zstdCodec, zstdDecodeInto } from "../src/codecs/zstd.ts";
import { noiseBytes, textBytes, throwsWith } from "./support.ts";

const EMPTY = new Uint8Array(0);

function frameOf(raw: Uint8Array, contentSize = true): Buffer {
  return zstdCompressSync(raw, {
    pledgedSrcSize: raw.length,
    params: { [constants.ZSTD_c_contentSizeFlag]: contentSize ? 1 : 0 },
  });
}

function messageOf(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    return (error as Error).message;
  }
  return "no error";
}

function skewed(size: number, seed: number): Buffer {
  const noise = noiseBytes(size, seed);
  for (let i = 0; i < size; i++) noise[i] = noise[i] < 200 ? noise[i] & 7 : noise[i];
  return noise;
}

test("decodes frames of every size into the memory given, as the codec decodes them", () => {
  for (const size of [0, 1, 100, 4096, 65536, 262144, 262145, 1 << 20, (1 << 20) + 3, 3 << 20]) {
    for (const raw of [skewed(size, size), textBytes(size, size + 1), noiseBytes(size, size + 2)]) {
      for (const contentSize of [true, false]) {
        const frame = frameOf(raw, contentSize);
        // A view inside a larger buffer, its neighbours marked to show they stay as they are.
        const memory = new Uint8Array(size + 32).fill(0xa5);
        const out = memory.subarray(16, 16 + size);
        zstdDecodeInto(frame, out);
        assert.deepEqual(Buffer.from(out), Buffer.from(zstdCodec.decode(frame, EMPTY, size)));
        assert.deepEqual(Buffer.from(out), raw);
        assert.ok(memory.subarray(0, 16).every((b) => b === 0xa5));
        assert.ok(memory.subarray(16 + size).every((b) => b === 0xa5));
      }
    }
  }
});

test("refuses damaged frames, as the codec does, and decodes the next good one", () => {
  const raw = skewed(200_000, 3);
  const frame = frameOf(raw);
  const noSize = frameOf(raw, false);
  const out = new Uint8Array(raw.length);
  const cases: [string, Uint8Array, number][] = [
    ["truncated", frame.subarray(0, frame.length - 5), raw.length],
    ["bytes after", Buffer.concat([frame, Buffer.from([0])]), raw.length],
    ["two frames", Buffer.concat([frame, frame]), raw.length],
    ["not zstd", noiseBytes(1000, 9), raw.length],
    ["content longer than the record", noSize, raw.length - 1],
    ["content shorter than the record", noSize, raw.length + 1],
    ["declared size differs", frame, raw.length - 1],
  ];
  // A flipped byte inside the compressed blocks.
  const flipped = Buffer.from(frame);
  for (let i = 20; i < flipped.length - 10; i += 97) flipped[i] ^= 0x5a;
  cases.push(["flipped bytes", flipped, raw.length]);
  for (const [what, bad, length] of cases) {
    throwsWith(() => zstdCodec.decode(bad, EMPTY, length), "E_CORRUPT", what);
    throwsWith(() => zstdDecodeInto(bad, new Uint8Array(length)), "E_CORRUPT", what);
    // A frame the reused decoder refuses is decoded again one-shot: the error is the codec's own.
    assert.equal(
      messageOf(() => zstdDecodeInto(bad, new Uint8Array(length))),
      messageOf(() => zstdCodec.decode(bad, EMPTY, length)),
      what,
    );
    zstdDecodeInto(frame, out.fill(0));
    assert.deepEqual(Buffer.from(out), raw, `a good frame after: ${what}`);
  }
});

test("the zstd codec decodes a chunk into the memory given, shared memory too", () => {
  for (const size of [0, 5000, 524288, 1 << 20, (1 << 20) + 1]) {
    const raw = textBytes(size, 7);
    const frame = frameOf(raw);
    for (const memory of [new ArrayBuffer(size + 8), new SharedArrayBuffer(size + 8)]) {
      const into = new Uint8Array(memory, 8, size);
      const got = zstdCodec.decode(frame, EMPTY, size, into);
      assert.deepEqual(Buffer.from(got), raw);
      // Up to 1 MiB (a reused decoder's window) the result is `into` itself.
      if (size <= 1 << 20) assert.equal(got, into);
    }
    throwsWith(() => zstdCodec.decode(frame, EMPTY, size + 1, new Uint8Array(size + 1)), "E_CORRUPT");
  }
});

test("a reused decoder keeps its window limit from frame to frame", () => {
  // A frame of one raw block with no content size, asking for a window of 2^windowLog.
  const rawFrame = (data: Uint8Array, windowLog: number) => {
    const block = Buffer.alloc(3);
    block.writeUIntLE((data.length << 3) | 1, 0, 3);
    return Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, (windowLog - 10) << 3]), block, data]);
  };
  const data = textBytes(5000, 3);
  const out = new Uint8Array(data.length);
  // 5000 bytes: a window of up to 8 KiB. Good frames before and after one that asks for more.
  for (let round = 0; round < 3; round++) {
    zstdDecodeInto(rawFrame(data, 13), out.fill(0));
    assert.deepEqual(Buffer.from(out), data);
    zstdDecodeInto(frameOf(data), out.fill(0));
    assert.deepEqual(Buffer.from(out), data);
    throwsWith(() => zstdDecodeInto(rawFrame(data, 14), out), "E_CORRUPT");
  }
});
