import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { crc32 } from "node:zlib";
import { readFilePieces } from "../src/common/files.ts";
import { decodeContainer } from "../src/engine/decoder.ts";
import { emptySummary as emptyCompressSummary, encodeContainer } from "../src/engine/encoder.ts";
import { ContentHash, HASH_APART_MIN, HASH_APART_ONE_CODER_MIN, hashesApart } from "../src/engine/hashing.ts";
import { HASH_BACKLOG_AT_START, Thread, WorkerPool } from "../src/engine/pool.ts";
import { POOL_AFTER_BYTES, POOL_MAX_RECORD } from "../src/engine/schedule.ts";
import {
  defaultThreads,
  defaultThreadsFor,
  POOL_WORTH_BYTES_PER_CORE,
  poolWorthBytes,
} from "../src/engine/threads.ts";
import { compress, compressFile, decompress, decompressFile, verify } from "../src/index.ts";
import { generate } from "../src/tools/gen.ts";

const sha256 = (...parts: Uint8Array[]) => {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part);
  return hash.digest("hex");
};

async function* pieces(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

describe("ContentHash", () => {
  const data = generate({ kind: "random", size: 3 * POOL_AFTER_BYTES, seed: 3 });
  const parts = Array.from({ length: 24 }, (_, i) =>
    data.subarray(i * (data.length / 24), (i + 1) * (data.length / 24)),
  );

  test("one thread hashes here; held bytes hash here when no pool comes", async () => {
    for (const threads of [1, 2]) {
      const content = new ContentHash(threads > 1);
      for (const part of parts) content.update(part);
      assert.equal(await content.digest(), sha256(data), `threads ${threads}`);
    }
    const short = new ContentHash(true);
    short.update(parts[0]);
    assert.equal(short.open, true);
    assert.equal(await short.digest(), sha256(parts[0]));
  });

  test("a pool takes over held bytes, in order, and hashes from slots", async () => {
    const pool = new WorkerPool(1, true);
    try {
      const content = new ContentHash(true);
      content.update(parts[0]);
      content.update(parts[1]);
      content.adopt(pool);
      assert.equal(content.open, false);
      for (const part of parts.slice(2, 12)) content.update(part);
      for (const part of parts.slice(12)) {
        const slot = pool.copyIn(part);
        content.update(part, slot);
        slot.release();
        await content.room();
      }
      assert.equal(await content.digest(), sha256(data));
    } finally {
      await pool.close();
    }
  });

  test("held bytes go on being hashed here once they pass the limit, and no pool can take them", async () => {
    const content = new ContentHash(true);
    for (const part of parts) content.update(part);
    assert.equal(content.open, false);
    const pool = new WorkerPool(1, true);
    try {
      assert.throws(() => content.adopt(pool), { code: "E_INTERNAL" });
    } finally {
      await pool.close();
    }
    assert.equal(await content.digest(), sha256(data));
  });
});

describe("WorkerPool", () => {
  test("slots are reused: a long run of chunks needs only the slots in flight", async () => {
    const pool = new WorkerPool(2, true);
    const chunk = generate({ kind: "text", size: 1 << 20, seed: 4 });
    // Inputs wait in their slots for the hasher, up to HASH_BACKLOG_AT_START bytes until it
    // first answers (later than usual on a loaded machine): a run longer than that shows
    // whether slots come back, whatever the hasher's pace.
    const rounds = HASH_BACKLOG_AT_START / chunk.length + 48;
    try {
      const seen = new Set<unknown>();
      for (let round = 0; round < rounds; round++) {
        const input = pool.copyIn(chunk);
        pool.hash(input, 0, chunk.length);
        const result = await pool.encode(input, 0, chunk.length, null, [{ id: "ZSTD", level: 1 }]);
        input.release();
        seen.add(input.buffer);
        seen.add(result.slot.buffer);
        const back = await pool.decode(
          result.codec,
          new Uint8Array(0),
          result.payload,
          chunk.length,
          result.rawCrc,
          "test",
        );
        seen.add(back.buffer);
        assert.ok(Buffer.from(back.bytes.subarray(0, chunk.length)).equals(chunk));
        result.slot.release();
        back.release();
        await pool.hashRoom();
      }
      // Without reuse: three slots a round. With it: the inputs the hasher may hold, and
      // the three a round has in hand.
      const bound = HASH_BACKLOG_AT_START / chunk.length + 3;
      assert.ok(seen.size <= bound, `${seen.size} distinct slots for ${rounds} rounds (at most ${bound})`);
      assert.equal(await pool.digest(), sha256(...Array.from({ length: rounds }, () => chunk)));
    } finally {
      await pool.close();
    }
  });

  test("read batches have slots of their own, reused for batches only", async () => {
    const pool = new WorkerPool(1);
    try {
      const batch = pool.batch(4 << 20);
      assert.ok(batch && batch.length === 4 << 20);
      const home = pool.holderOf(batch);
      assert.ok(home && home.bytes.buffer === batch.buffer, "a batch lies in a slot");
      home.release();
      const chunk = pool.slot(512 << 10);
      assert.notEqual(chunk.buffer, batch.buffer, "a chunk-sized slot does not take a batch's memory");
      assert.equal(pool.holderOf(new Uint8Array(16)), undefined);
      const again = pool.batch(4 << 20);
      assert.equal(again?.buffer, batch.buffer, "the batch slot is reused for the next batch");
      chunk.release();
      pool.holderOf(again!)?.release();
    } finally {
      await pool.close();
    }
    assert.equal(pool.batch(1 << 20), undefined, "a closed pool gives no batch memory");
  });

  test("a worker's error keeps its code and frees the pool for the next request", async () => {
    const pool = new WorkerPool(1);
    try {
      await assert.rejects(
        pool.decode("ZSTD", new Uint8Array(0), new Uint8Array([1, 2, 3]), 100, 0, "chunk 7"),
        (error: Error & { code?: string }) => error.code === "E_CORRUPT" && /chunk 7/.test(error.message),
      );
      const ok = pool.copyIn(new Uint8Array(4096).fill(7));
      const result = await pool.encode(ok, 0, 4096, null, [{ id: "ZSTD", level: 1 }]);
      assert.equal(result.codec, "ZSTD");
      ok.release();
      result.slot.release();
    } finally {
      await pool.close();
    }
  });
});

describe("stopping threads", () => {
  const fixtures = new URL("./fixtures/threads/", import.meta.url);
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  test("pools closed while their workers are inside node:zlib: no abort, every worker leaves by itself", () => {
    // The child holds its workers between making a zstd handle and initialising it (the
    // preloaded module): a worker terminated there aborts the whole process, which with
    // terminate() at every close happened within its first 3 pools.
    const run = spawnSync(
      process.execPath,
      [
        "--import",
        new URL("slow-zlib-init.ts", fixtures).pathname,
        new URL("close-busy-pool.ts", fixtures).pathname,
        "20",
      ],
      { encoding: "utf8", timeout: 60_000 },
    );
    assert.equal(run.signal, null, run.stderr);
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout, "closed 20 pools, 0 workers terminated\n");
  });

  test("a thread inside a request when asked to stop finishes it, then leaves by itself", async () => {
    const thread = new Thread(new URL("stubborn.ts", fixtures));
    await once(thread.worker, "message");
    const replies: unknown[] = [];
    thread.worker.on("message", (reply) => replies.push(reply));
    thread.worker.postMessage({ op: "spin", ms: 300 });
    thread.worker.postMessage({ op: "spin", ms: 300 });
    while (!thread.running) await sleep(2);
    assert.equal(await thread.stop(), true);
    assert.ok(thread.exited);
    // The request it was running is answered; the one waiting behind it is dropped.
    assert.deepEqual(replies, ["spun"]);
    assert.equal(await thread.stop(), true, "a second stop resolves at once");
  });

  test("a thread that does not leave is terminated: idle after the idle wait, inside a request after the busy one", async () => {
    const idle = new Thread(new URL("stubborn.ts", fixtures));
    await once(idle.worker, "message");
    idle.worker.postMessage({ op: "stubborn" });
    await once(idle.worker, "message");
    let asked = performance.now();
    assert.equal(await idle.stop(false, 200, 60_000), false);
    assert.ok(performance.now() - asked >= 190, "waited for it first");
    assert.ok(idle.exited);

    const stuck = new Thread(new URL("stubborn.ts", fixtures));
    await once(stuck.worker, "message");
    stuck.worker.postMessage({ op: "stubborn" });
    await once(stuck.worker, "message");
    stuck.worker.postMessage({ op: "spin", ms: Number.POSITIVE_INFINITY });
    while (!stuck.running) await sleep(2);
    asked = performance.now();
    assert.equal(await stuck.stop(false, 100, 800), false);
    assert.ok(performance.now() - asked >= 790, "a thread inside a request is waited for longer");
    assert.ok(stuck.exited);
  });

  test("a pool's threads leave by themselves, busy or not; a worker not yet up is not waited for", async () => {
    const fresh = new WorkerPool(2, true);
    assert.equal(await fresh.close(), 0);
    const pool = new WorkerPool(2, true);
    while (!pool.ready) await sleep(2);
    const data = generate({ kind: "random", size: 8 << 20, seed: 5 });
    const input = pool.copyIn(data);
    for (let at = 0; at < data.length; at += 1 << 20) {
      pool.hash(input, at, 1 << 20);
      pool.encode(input, at, 1 << 20, null, [{ id: "BROT", level: 5 }]).then(
        (result) => result.slot.release(),
        () => {},
      );
    }
    await sleep(20);
    assert.equal(await pool.close(), 0);
    assert.equal(await pool.close(), 0, "a second close resolves at once");
  });
});

describe("the default thread count", () => {
  const MiB = 1 << 20;

  test("all cores for an unknown size or a large input; one thread below the size a pool pays for", () => {
    const cores = defaultThreads();
    assert.equal(cores, Math.max(1, Math.min(256, availableParallelism())));
    for (const work of ["compress", "decompress", "decompressToFile"] as const) {
      assert.equal(defaultThreadsFor(undefined, work), cores);
      assert.equal(defaultThreadsFor(Number.MAX_SAFE_INTEGER, work), cores);
      assert.equal(defaultThreadsFor(POOL_WORTH_BYTES_PER_CORE[work], work), cores);
      assert.equal(defaultThreadsFor(0, work), 1);
      assert.equal(defaultThreadsFor(32 * MiB - 1, work), 1);
    }
  });

  test("decompress() of bytes takes a file's default: no pool below the size where one pays", async () => {
    // Past the 8 MiB after which a pool starts, far below the size where one pays.
    const content = Buffer.alloc(12 * MiB);
    for (let i = 0; i < content.length; i += 4) content.writeUInt32LE((i * 2654435761) >>> 0, i);
    const packed = await compress(content, { codec: "zstd", threads: 1 });
    let started = 0;
    const count = () => started++;
    process.on("worker", count);
    try {
      assert.ok(Buffer.from(await decompress(packed)).equals(content));
      assert.equal(started, 0, "decompress() without threads started a worker");
      if (defaultThreads() > 1) {
        assert.ok(Buffer.from(await decompress(packed, { threads: 2 })).equals(content));
        assert.ok(started > 0, "threads: 2 started no worker");
      }
    } finally {
      process.off("worker", count);
    }
  });

  test("compress() of bytes takes a file's default: no pool below the size where one pays", async () => {
    // Past the 8 MiB after which a pool starts, far below the size where one pays.
    const content = Buffer.alloc(12 * MiB);
    for (let i = 0; i < content.length; i += 4) content.writeUInt32LE((i * 2654435761) >>> 0, i);
    let started = 0;
    const count = () => started++;
    process.on("worker", count);
    try {
      const packed = await compress(content, { codec: "zstd" });
      assert.equal(started, 0, "compress() without threads started a worker");
      assert.ok(Buffer.from(await decompress(packed, { threads: 1 })).equals(content));
      if (defaultThreads() > 1) {
        assert.ok(Buffer.from(await compress(content, { codec: "zstd", threads: 2 })).equals(packed));
        assert.ok(started > 0, "threads: 2 started no worker");
      }
    } finally {
      process.off("worker", count);
    }
  });

  test("on 2 cores: two threads from 512 MiB of content compressing, from 320 MiB of .mmh decompressing", () => {
    assert.equal(poolWorthBytes("compress", 2), 512 * MiB);
    assert.equal(poolWorthBytes("decompress", 2), 320 * MiB);
    assert.equal(defaultThreadsFor(512 * MiB - 1, "compress", 2), 1);
    assert.equal(defaultThreadsFor(512 * MiB, "compress", 2), 2);
    assert.equal(defaultThreadsFor(320 * MiB - 1, "decompress", 2), 1);
    assert.equal(defaultThreadsFor(320 * MiB, "decompress", 2), 2);
    // A 400 MiB file: past the decompress threshold, not the compress one.
    assert.equal(defaultThreadsFor(400 * MiB, "compress", 2), 1);
    assert.equal(defaultThreadsFor(400 * MiB, "decompress", 2), 2);
    // Into a file, each thread writing its own records: from 64 MiB of .mmh.
    assert.equal(poolWorthBytes("decompressToFile", 2), 64 * MiB);
    assert.equal(defaultThreadsFor(64 * MiB - 1, "decompressToFile", 2), 1);
    assert.equal(defaultThreadsFor(64 * MiB, "decompressToFile", 2), 2);
  });

  test("the threshold falls with the core count, down to 32 MiB; one core always gets one thread", () => {
    for (const work of ["compress", "decompress"] as const) {
      assert.equal(defaultThreadsFor(Number.MAX_SAFE_INTEGER, work, 1), 1);
      assert.equal(defaultThreadsFor(undefined, work, 1), 1);
      assert.equal(poolWorthBytes(work, 4), POOL_WORTH_BYTES_PER_CORE[work] / 4);
      assert.equal(defaultThreadsFor(poolWorthBytes(work, 4) - 1, work, 4), 1);
      assert.equal(defaultThreadsFor(poolWorthBytes(work, 4), work, 4), 4);
      assert.equal(poolWorthBytes(work, 256), 32 * MiB);
      assert.equal(defaultThreadsFor(32 * MiB, work, 256), 256);
      assert.equal(defaultThreadsFor(undefined, work, 8), 8, "a stream gets every core");
    }
  });
});

describe("one coding thread, the hash on a thread of its own", () => {
  test("hashesApart: with a second core, one thread hashes apart; on one core it cannot", () => {
    assert.equal(hashesApart(2), true);
    assert.equal(hashesApart(1), defaultThreads() > 1);
  });

  test("hashesApart: content known to be under HASH_APART_MIN is hashed on the calling thread", () => {
    assert.equal(hashesApart(2, HASH_APART_MIN - 1), false);
    assert.equal(hashesApart(1, 1024), false);
    assert.equal(hashesApart(2, HASH_APART_MIN), true);
    assert.equal(hashesApart(1, HASH_APART_MIN), defaultThreads() > 1);
  });

  test("hashesApart: one coding thread encoding content under HASH_APART_ONE_CODER_MIN hashes here", () => {
    assert.equal(hashesApart(1, HASH_APART_ONE_CODER_MIN - 1, false, true), false);
    assert.equal(hashesApart(1, HASH_APART_ONE_CODER_MIN, false, true), defaultThreads() > 1);
    assert.equal(hashesApart(1, undefined, false, true), defaultThreads() > 1, "a stream of unknown length");
    assert.equal(hashesApart(2, HASH_APART_MIN, false, true), true, "coding workers keep the hash apart");
    assert.equal(hashesApart(1, HASH_APART_MIN), defaultThreads() > 1, "decoding keeps HASH_APART_MIN");
  });

  test("hashesApart: bytes in memory coded on one thread are hashed on the calling thread", () => {
    assert.equal(hashesApart(1, HASH_APART_MIN, true), false);
    assert.equal(hashesApart(1, undefined, true), false);
    assert.equal(
      hashesApart(2, HASH_APART_MIN, true),
      true,
      "coding workers need the chunks in slots anyway",
    );
  });

  test("compress() of bytes hashed here writes what compressFile() writes with the hash apart", async () => {
    const content = generate({
      kind: "safetensors",
      dtype: "BF16",
      size: HASH_APART_MIN + (1 << 20),
      seed: 13,
    });
    const dir = mkdtempSync(join(tmpdir(), "mmh-inmemory-"));
    try {
      const src = join(dir, "model.safetensors");
      const dst = join(dir, "model.mmh");
      writeFileSync(src, content);
      const options = { goal: "speed", threads: 1, sourceName: "model.safetensors" } as const;
      // Two threads: with one, a file under HASH_APART_ONE_CODER_MIN is hashed here too.
      const summary = await compressFile(src, dst, { ...options, threads: 2 });
      assert.equal(summary.sha256, sha256(content));
      const packed = await compress(content, options);
      assert.ok(Buffer.from(packed).equals(readFileSync(dst)), "the same container bytes");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("compress and checked decompress with threads 1 give the content's sha256; damage is caught", async () => {
    const content = generate({ kind: "safetensors", dtype: "BF16", size: 3 * POOL_AFTER_BYTES, seed: 11 });
    const encode = async (threads: number) => {
      const summary = emptyCompressSummary();
      const packed: Uint8Array[] = [];
      for await (const piece of encodeContainer(pieces(content, 1 << 20), { threads }, summary))
        packed.push(Buffer.from(piece));
      return { bytes: Buffer.concat(packed), summary };
    };
    const { bytes, summary } = await encode(1);
    assert.equal(summary.sha256, sha256(content));
    assert.ok(bytes.equals((await encode(2)).bytes), "the same bytes as with 2 threads");
    const back = Buffer.from(await decompress(bytes, { threads: 1, checkSha256: true }));
    assert.equal(sha256(back), sha256(content));
    // The trailer's sha256 starts 48 bytes from the end; its CRC-32 covers it.
    const damaged = Buffer.from(bytes);
    damaged[damaged.length - 48] ^= 1;
    const crc = crc32(damaged.subarray(damaged.length - 80, damaged.length - 12));
    damaged.writeUInt32LE(crc, damaged.length - 12);
    await assert.rejects(decompress(damaged, { threads: 1, checkSha256: true }), { code: "E_CHECKSUM" });
    assert.ok(
      Buffer.from(await decompress(damaged, { threads: 1 })).equals(content),
      "unchecked, CRC-32s hold",
    );
  });

  test("a pool of no coding workers hashes, and codes nothing", async () => {
    const pool = new WorkerPool(0, true);
    try {
      assert.equal(pool.ready, false);
      const data = generate({ kind: "random", size: 3 << 20, seed: 12 });
      const content = new ContentHash(true);
      content.update(data.subarray(0, 1 << 20));
      content.adopt(pool);
      const slot = pool.copyIn(data.subarray(1 << 20));
      content.update(data.subarray(1 << 20, 2 << 20), slot, 0);
      content.update(data.subarray(2 << 20), slot, 1 << 20);
      slot.release();
      await content.room();
      assert.equal(await content.digest(), sha256(data));
    } finally {
      await pool.close();
    }
  });
});

describe("threads and content that starts with a long run", () => {
  test("a run past POOL_MAX_RECORD first, then ordinary chunks: same bytes and hash with 1 and 2 threads", async () => {
    const run = new Uint8Array(POOL_MAX_RECORD + POOL_AFTER_BYTES).fill(0x5a);
    const rest = generate({ kind: "safetensors", dtype: "BF16", size: 12 << 20, seed: 9 });
    const content = Buffer.concat([run, rest]);
    const one = Buffer.from(await compress(content, { threads: 1 }));
    const two = Buffer.from(await compress(content, { threads: 2 }));
    assert.ok(one.equals(two));
    for (const threads of [1, 2]) {
      const back = Buffer.from(await decompress(one, { threads }));
      assert.equal(sha256(back), sha256(content), `threads ${threads}`);
    }
  });

  test("borrowed pieces are right when each is used before the next is asked for", async () => {
    const content = generate({ kind: "safetensors", dtype: "BF16", size: 20 << 20, seed: 2 });
    for (const threads of [1, 2]) {
      const packed: Uint8Array[] = [];
      for await (const piece of encodeContainer(
        pieces(content, 1 << 20),
        { threads },
        undefined,
        undefined,
        true,
      ))
        packed.push(Buffer.from(piece));
      const hash = createHash("sha256");
      let length = 0;
      for await (const piece of decodeContainer(
        pieces(Buffer.concat(packed), 3 << 20),
        { threads },
        undefined,
        true,
      )) {
        hash.update(piece);
        length += piece.length;
      }
      assert.equal(length, content.length);
      assert.equal(hash.digest("hex"), sha256(content), `threads ${threads}`);
    }
  });
});

describe("readFilePieces", () => {
  const dir = mkdtempSync(join(tmpdir(), "mmh-pieces-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("pieces come in the sizes asked for, the last one short", async () => {
    const file = join(dir, "data");
    const data = generate({ kind: "random", size: 10_000, seed: 1 });
    writeFileSync(file, data);
    const got: number[] = [];
    const sizes = function* () {
      yield 100;
      yield 1;
      for (;;) yield 4096;
    };
    const parts: Uint8Array[] = [];
    for await (const piece of readFilePieces(file, sizes())) {
      got.push(piece.length);
      parts.push(piece);
    }
    assert.deepEqual(got, [100, 1, 4096, 4096, 10_000 - 100 - 1 - 8192]);
    assert.ok(Buffer.concat(parts).equals(data));
  });

  test("recycled reads: each piece is right while in use, and memory is reused", async () => {
    const file = join(dir, "big");
    const data = generate({ kind: "random", size: (20 << 20) + 12_345, seed: 5 });
    writeFileSync(file, data);
    const sizes = function* () {
      for (;;) yield 512 << 10;
    };
    const buffers = new Set<ArrayBufferLike>();
    let at = 0;
    for await (const piece of readFilePieces(file, sizes(), undefined, true)) {
      assert.ok(Buffer.from(piece).equals(data.subarray(at, at + piece.length)), `piece at ${at}`);
      at += piece.length;
      buffers.add(piece.buffer);
    }
    assert.equal(at, data.length);
    assert.ok(buffers.size <= 3, `${buffers.size} buffers for ${data.length} bytes`);
  });

  test("batches from a BatchMemory: read into it, given back once after their pieces, early stops too", async () => {
    const file = join(dir, "batches");
    const data = generate({ kind: "random", size: (18 << 20) + 777, seed: 6 });
    writeFileSync(file, data);
    const sizes = function* () {
      for (;;) yield 512 << 10;
    };
    for (const stopAfter of [Number.POSITIVE_INFINITY, 11]) {
      let takes = 0;
      /** For each batch given: bytes of it consumed, and how often it was given back. */
      const given = new Map<ArrayBufferLike, { batch: Uint8Array; seen: number; done: number }>();
      let at = 0;
      let stopped = false;
      const memory = {
        batchBytes: 1 << 20,
        // Every other batch comes from here; the others are the reader's own.
        take: (size: number) => {
          assert.ok(size <= 1 << 20, `a batch of ${size} bytes, at most batchBytes`);
          if (takes++ % 2 === 1) return undefined;
          const batch = new Uint8Array(size);
          given.set(batch.buffer, { batch, seen: 0, done: 0 });
          return batch;
        },
        done: (batch: Uint8Array) => {
          const entry = given.get(batch.buffer);
          assert.ok(entry, "done() with memory from take()");
          entry.done++;
          // Given back only after all its pieces were consumed (the last batch may be
          // short at the end of the file), unless the consumer stopped early.
          if (!stopped) assert.ok(entry.seen === batch.length || at === data.length, "not before its pieces");
        },
      };
      let consumed = 0;
      for await (const piece of readFilePieces(file, sizes(), undefined, true, memory)) {
        assert.ok(Buffer.from(piece).equals(data.subarray(at, at + piece.length)), `piece at ${at}`);
        const entry = given.get(piece.buffer);
        if (entry) entry.seen += piece.length;
        at += piece.length;
        if (++consumed >= stopAfter) {
          stopped = true;
          break;
        }
      }
      if (!stopped) assert.equal(at, data.length);
      assert.ok(
        [...given.values()].some((e) => e.seen > 0),
        "pieces were read into the given memory",
      );
      for (const entry of given.values()) assert.equal(entry.done, 1, "each batch given is given back once");
    }
  });

  test("once batches come from a BatchMemory, the ring's own buffers are given back", async () => {
    const file = join(dir, "ring");
    const data = generate({ kind: "random", size: 40 << 20, seed: 9 });
    writeFileSync(file, data);
    const sizes = function* () {
      for (;;) yield 1 << 20;
    };
    let batches = 0;
    // The reader's own buffers for the first 3 batches, then memory from here.
    const memory = {
      take: (size: number) => (batches++ < 3 ? undefined : new Uint8Array(size)),
      done: () => {},
    };
    const ring = new Set<ArrayBuffer>();
    const recent: ArrayBufferLike[] = [];
    let at = 0;
    for await (const piece of readFilePieces(file, sizes(), undefined, true, memory)) {
      assert.ok(Buffer.from(piece).equals(data.subarray(at, at + piece.length)), `piece at ${at}`);
      at += piece.length;
      if (batches <= 4 && piece.buffer instanceof ArrayBuffer) ring.add(piece.buffer);
      if (recent.at(-1) !== piece.buffer) recent.push(piece.buffer);
      // A piece of the last two batches is never taken away while it may be in use.
      for (const buffer of recent.slice(-2))
        assert.ok(!(buffer as ArrayBuffer).detached, "a recent batch is intact");
    }
    assert.equal(at, data.length);
    assert.equal(ring.size, 3, "the first three batches were read into the reader's ring");
    for (const buffer of ring)
      assert.ok(buffer.detached, "a ring buffer is given back once batches come from memory");
  });

  test("files coded through a pool read into its slots: the same bytes and content as one thread", async () => {
    const file = join(dir, "model.safetensors");
    const data = generate({ kind: "safetensors", size: 40 << 20, dtype: "BF16", seed: 8 });
    writeFileSync(file, data);
    const outputs: Buffer[] = [];
    for (const threads of [1, 2, 4]) {
      await compressFile(file, join(dir, `m${threads}.mmh`), { threads, overwrite: true });
      outputs.push(readFileSync(join(dir, `m${threads}.mmh`)));
    }
    assert.ok(
      outputs[1].equals(outputs[0]) && outputs[2].equals(outputs[0]),
      "same bytes for 1, 2 and 4 threads",
    );
    for (const threads of [1, 2, 4]) {
      const back = join(dir, `back${threads}`);
      await decompressFile(join(dir, "m1.mmh"), back, { threads, overwrite: true });
      assert.ok(readFileSync(back).equals(data), `decompressFile with ${threads} threads`);
      const checked = await verify(join(dir, "m1.mmh"), { threads });
      assert.equal(checked.rawBytes, data.length);
    }
  });

  test("a missing file is a coded error", async () => {
    await assert.rejects(
      (async () => {
        for await (const _ of readFilePieces(join(dir, "absent"), [1])) {
          // nothing
        }
      })(),
      { code: "E_IO" },
    );
  });
});
