import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { isMmhError } from "../src/common/errors.ts";
import { bufferSource } from "../src/common/source.ts";
import { CHUNK_HEADER_SIZE, parseChunkHeader } from "../src/container/format.ts";
import { decodeContainer, decodeHere, decodeThere } from "../src/engine/decoder.ts";
import { WorkerPool } from "../src/engine/pool.ts";
import { MmhReader } from "../src/engine/reader.ts";
import { POOL_AFTER_BYTES, WORKER_BACKLOG } from "../src/engine/schedule.ts";
import { compress, decompress } from "../src/index.ts";
import { generate } from "../src/tools/gen.ts";

describe("worker threads", () => {
  // Large enough that the pool starts (it waits for POOL_AFTER_BYTES of content).
  const content = Buffer.concat([
    generate({ kind: "safetensors", dtype: "BF16", size: 12 << 20, seed: 5 }),
    generate({ kind: "text", size: 4 << 20, seed: 6 }),
    generate({ kind: "random", size: 2 << 20, seed: 7 }),
  ]);
  assert.ok(content.length > 2 * POOL_AFTER_BYTES);

  test("1, 2 and 4 threads write the same bytes, for auto and a fixed codec", async () => {
    for (const codec of ["auto", "zstd"]) {
      const one = Buffer.from(await compress(content, { codec, threads: 1 }));
      for (const threads of [2, 4]) {
        const many = Buffer.from(await compress(content, { codec, threads }));
        assert.ok(many.equals(one), `${codec}: ${threads} threads differ from 1`);
      }
      for (const threads of [1, 2]) {
        assert.ok(
          Buffer.from(await decompress(one, { threads })).equals(content),
          `${codec}: decode with ${threads}`,
        );
      }
    }
  });

  test("a damaged chunk decoded on a worker is refused with its code, after the chunks before it", async () => {
    const packed = Buffer.from(await compress(content, { codec: "zstd", threads: 1 }));
    const reader = await MmhReader.open(bufferSource(packed));
    const victim = reader.chunks[Math.floor(reader.chunks.length * 0.75)];
    assert.equal(victim.codec, "ZSTD");
    const damaged = Buffer.from(packed);
    damaged[victim.recordOffset + victim.recordLength - 10] ^= 0x55;
    await assert.rejects(decompress(damaged, { threads: 2 }), (error: unknown) => {
      assert.ok(isMmhError(error), String(error));
      assert.match(error.code, /^E_(CHECKSUM|CORRUPT)$/);
      assert.match(error.message, new RegExp(`offset ${victim.recordOffset}\\b`));
      return true;
    });
  });

  test("threads must be 1 to 256", async () => {
    for (const threads of [0, -1, 1.5, 257]) {
      await assert.rejects(compress(content.subarray(0, 100), { threads }), { code: "E_BAD_OPTION" });
    }
  });
});

describe("the decoder's own share of a pool's records", () => {
  const content = Buffer.from(generate({ kind: "safetensors", dtype: "BF16", size: 12 << 20, seed: 8 }));

  test("a record decoded here is what a worker decodes; damage is its own error, met in turn", async () => {
    const packed = Buffer.from(await compress(content, { threads: 1 }));
    const reader = await MmhReader.open(bufferSource(packed));
    const pool = new WorkerPool(1);
    try {
      for (const i of [0, 5, reader.chunks.length - 1]) {
        const entry = reader.chunks[i];
        const record = packed.subarray(entry.recordOffset, entry.recordOffset + entry.recordLength);
        const header = parseChunkHeader(record.subarray(0, CHUNK_HEADER_SIZE), `chunk ${i}`);
        const params = record.subarray(CHUNK_HEADER_SIZE, CHUNK_HEADER_SIZE + header.paramsLength);
        const payload = record.subarray(CHUNK_HEADER_SIZE + header.paramsLength);
        const here = await decodeHere(pool, header, params, payload, `chunk ${i}`);
        const there = await decodeThere(pool, header, params, payload, `chunk ${i}`);
        const expected = content.subarray(entry.rawOffset, entry.rawOffset + entry.rawLength);
        assert.ok(Buffer.from(here.raw).equals(expected), `chunk ${i} decoded here`);
        assert.ok(Buffer.from(there.raw).equals(expected), `chunk ${i} on a worker`);
        here.slot?.release();
        there.slot?.release();
        const damaged = Buffer.from(payload);
        damaged[damaged.length >> 1] ^= 0x10;
        const failed = decodeHere(pool, header, params, damaged, `chunk ${i}`);
        await assert.rejects(failed, (error: unknown) => {
          assert.ok(isMmhError(error), String(error));
          assert.match(error.code, /^E_(CHECKSUM|CORRUPT)$/);
          assert.match(error.message, new RegExp(`chunk ${i}\\b`));
          return true;
        });
      }
      // Every slot came back: the next records reuse them rather than adding more.
      const before = pool.slot(1);
      before.release();
      const again = pool.slot(1);
      assert.equal(again, before);
      again.release();
    } finally {
      await pool.close();
      await reader.close();
    }
  });

  test("a worker's backlog falls as it finishes, before the calling thread's event loop turns", async () => {
    const packed = Buffer.from(await compress(content, { threads: 1 }));
    const reader = await MmhReader.open(bufferSource(packed));
    const pool = new WorkerPool(1);
    try {
      assert.equal(pool.backlog, Number.POSITIVE_INFINITY, "no worker has loaded its code yet");
      while (!pool.ready) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.equal(pool.backlog, 0);
      const entry = reader.chunks[3];
      const record = packed.subarray(entry.recordOffset, entry.recordOffset + entry.recordLength);
      const header = parseChunkHeader(record.subarray(0, CHUNK_HEADER_SIZE), "chunk 3");
      const params = record.subarray(CHUNK_HEADER_SIZE, CHUNK_HEADER_SIZE + header.paramsLength);
      const payload = record.subarray(CHUNK_HEADER_SIZE + header.paramsLength);
      let settled = false;
      const there = decodeThere(pool, header, params, payload, "chunk 3").finally(() => {
        settled = true;
      });
      assert.equal(pool.backlog, 1);
      // No await here: the reply cannot be handled, only the worker's shared count can move.
      const until = Date.now() + 60_000;
      while (pool.backlog > 0 && Date.now() < until);
      assert.equal(pool.backlog, 0, "the worker's count of finished requests");
      assert.equal(settled, false, "the reply is not handled yet");
      const decoded = await there;
      const expected = content.subarray(entry.rawOffset, entry.rawOffset + entry.rawLength);
      assert.ok(Buffer.from(decoded.raw).equals(expected));
      decoded.slot?.release();
    } finally {
      await pool.close();
      await reader.close();
    }
  });

  test("two threads fed slowly, so the worker is up: same content, and the first damaged record is the error", async () => {
    const packed = Buffer.from(await compress(content, { codec: "zstd", threads: 1 }));
    const reader = await MmhReader.open(bufferSource(packed));
    const chunks = reader.chunks;
    await reader.close();
    // The pool starts after POOL_AFTER_BYTES; a pause there lets its worker load.
    const pause = chunks.find((c) => c.rawOffset >= POOL_AFTER_BYTES)!.recordOffset;
    async function* slowly(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
      yield bytes.subarray(0, pause);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      for (let at = pause; at < bytes.length; at += 64 << 10) yield bytes.subarray(at, at + (64 << 10));
    }
    const decode = async (bytes: Uint8Array) => {
      const out: Uint8Array[] = [];
      for await (const piece of decodeContainer(slowly(bytes), { threads: 2 })) out.push(Buffer.from(piece));
      return Buffer.concat(out);
    };
    assert.ok((await decode(packed)).equals(content));
    // Two records in a row past the pause: which thread decodes each depends on the
    // worker's backlog at the time; the first damaged one is the error either way.
    const k = chunks.length - 4;
    for (const first of [k, k + 1]) {
      const damaged = Buffer.from(packed);
      for (const i of [first, k + 2]) damaged[chunks[i].recordOffset + chunks[i].recordLength - 10] ^= 0x55;
      await assert.rejects(decode(damaged), (error: unknown) => {
        assert.ok(isMmhError(error), String(error));
        assert.match(error.message, new RegExp(`offset ${chunks[first].recordOffset}\\b`));
        return true;
      });
    }
  });

  test("a damaged record on the worker while this thread decodes the ones after it: its error, after exactly the content before it", async () => {
    const packed = Buffer.from(await compress(content, { threads: 1 }));
    const reader = await MmhReader.open(bufferSource(packed));
    const chunks = reader.chunks;
    await reader.close();
    // After the pause the worker is up with nothing in hand: the first records go to it,
    // and once it has WORKER_BACKLOG, this thread decodes the next ones, ahead of it.
    const p = chunks.findIndex((c) => c.rawOffset >= POOL_AFTER_BYTES);
    assert.ok(p > 0 && p + WORKER_BACKLOG + 4 < chunks.length, `${chunks.length} chunks`);
    async function* slowly(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
      yield bytes.subarray(0, chunks[p].recordOffset);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      yield bytes.subarray(chunks[p].recordOffset);
    }
    for (const victim of [p, p + 1, p + WORKER_BACKLOG, p + WORKER_BACKLOG + 2]) {
      const damaged = Buffer.from(packed);
      damaged[chunks[victim].recordOffset + chunks[victim].recordLength - 10] ^= 0x55;
      const out: Buffer[] = [];
      await assert.rejects(
        (async () => {
          for await (const piece of decodeContainer(slowly(damaged), { threads: 2 }, undefined, true))
            out.push(Buffer.from(piece));
        })(),
        (error: unknown) => {
          assert.ok(isMmhError(error), String(error));
          assert.match(error.code, /^E_(CHECKSUM|CORRUPT)$/);
          assert.match(error.message, new RegExp(`offset ${chunks[victim].recordOffset}\\b`));
          return true;
        },
      );
      const before = Buffer.concat(out);
      assert.ok(
        before.equals(content.subarray(0, chunks[victim].rawOffset)),
        `record ${victim}: output before it`,
      );
    }
  });
});
