/** The schedule the encoder and decoder share: when a pool starts, results in order, bounded in flight, clean stops. */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, test } from "node:test";
import { ContentHash } from "../src/engine/hashing.ts";
import { IN_FLIGHT_BYTES, inFlightLimit, Schedule, startPool, type Workers } from "../src/engine/schedule.ts";
import { SlotMemory } from "../src/engine/slots.ts";

/** A result settled from outside, in whatever order a test chooses. */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: Error) => void } {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((yes, no) => {
    resolve = yes;
    reject = no;
  });
  return { promise, resolve, reject };
}

const tick = () => new Promise<void>((done) => setImmediate(done));

async function collect<T>(results: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const result of results) all.push(result);
  return all;
}

describe("Schedule", () => {
  test("chunks go to the pool once a worker is up, or while earlier ones are in flight", () => {
    const schedule = new Schedule<number>(() => {});
    assert.equal(schedule.offloads(undefined), false, "no pool");
    const starting: Workers = { size: 2, ready: false };
    assert.equal(schedule.offloads(starting), false, "no worker up and nothing in flight");
    assert.equal(schedule.offloads({ size: 2, ready: true }), true);
    schedule.push(new Promise<number>(() => {}), 1);
    assert.equal(schedule.offloads(starting), true, "results in flight come first");
    schedule.close();
  });

  test("results come back in the order pushed, whatever order they complete in", async () => {
    const schedule = new Schedule<number>(() => {});
    const jobs = Array.from({ length: 6 }, () => deferred<number>());
    for (const job of jobs) schedule.push(job.promise, 10);
    for (const i of [5, 3, 1, 4, 0, 2]) jobs[i].resolve(i);
    assert.deepEqual(await collect(schedule.drain()), [0, 1, 2, 3, 4, 5]);
    assert.equal(schedule.length, 0);
    assert.equal(schedule.inFlightBytes, 0);
  });

  test("room() keeps at most the job limit and the byte limit in flight, taking back the oldest", async () => {
    const pool: Workers = { size: 2, ready: true };
    const schedule = new Schedule<number>(() => {}, { jobs: (workers) => 2 * workers, bytes: 100 });
    const taken: number[] = [];
    let most = 0;
    let mostBytes = 0;
    const sizes = [30, 30, 30, 5, 5, 5, 5, 5, 100, 150, 1, 1];
    for (const [i, size] of sizes.entries()) {
      for await (const result of schedule.room(pool, size)) taken.push(result);
      assert.ok(
        schedule.length === 0 || schedule.inFlightBytes + size <= 100,
        `chunk ${i} fits the byte limit, or goes alone`,
      );
      schedule.push(Promise.resolve(i), size);
      most = Math.max(most, schedule.length);
      mostBytes = Math.max(mostBytes, schedule.inFlightBytes);
    }
    taken.push(...(await collect(schedule.drain())));
    assert.deepEqual(taken, [...sizes.keys()], "every result once, in order");
    assert.equal(most, 4, "the job limit for 2 workers");
    assert.equal(mostBytes, 150, "a chunk larger than the byte limit goes alone");
  });

  test("room() waits for the oldest result, not for whichever completes first", async () => {
    const schedule = new Schedule<string>(() => {}, { jobs: () => 2 });
    const [a, b] = [deferred<string>(), deferred<string>()];
    schedule.push(a.promise, 1);
    schedule.push(b.promise, 1);
    const taken: string[] = [];
    const making = (async () => {
      for await (const result of schedule.room({ size: 1, ready: true }, 1)) taken.push(result);
    })();
    b.resolve("b");
    await tick();
    assert.deepEqual(taken, [], "b is done, but a comes first");
    a.resolve("a");
    await making;
    assert.deepEqual(taken, ["a"], "one taken back makes room for one");
    assert.equal(schedule.length, 1);
    assert.deepEqual(await collect(schedule.drain()), ["b"]);
  });

  test("the defaults are inFlightLimit and IN_FLIGHT_BYTES", async () => {
    const schedule = new Schedule<number>(() => {});
    const pool: Workers = { size: 3, ready: true };
    for (let i = 0; i < inFlightLimit(pool.size); i++) {
      assert.deepEqual(await collect(schedule.room(pool, 1)), []);
      schedule.push(Promise.resolve(i), 1);
    }
    assert.deepEqual(await collect(schedule.room(pool, 1)), [0], "one past the job limit");
    assert.deepEqual(
      await collect(schedule.room(pool, IN_FLIGHT_BYTES)),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
    );
    assert.equal(inFlightLimit(100), 32, "capped whatever the number of cores");
  });

  test("a failed chunk throws its error in its turn; later failures are not left unhandled", async () => {
    const schedule = new Schedule<number>(() => {});
    const jobs = Array.from({ length: 4 }, () => deferred<number>());
    for (const job of jobs) schedule.push(job.promise, 1);
    // Failures before their turn come: with no handler, node:test would report them.
    jobs[3].reject(new Error("chunk 3"));
    jobs[1].reject(new Error("chunk 1"));
    jobs[0].resolve(0);
    jobs[2].resolve(2);
    await tick();
    const taken: number[] = [];
    await assert.rejects(async () => {
      for await (const result of schedule.drain()) taken.push(result);
    }, /chunk 1/);
    assert.deepEqual(taken, [0], "nothing after the failed chunk is taken back");
    schedule.close();
  });

  test("a consumer that stops early: close() disposes of every result still in flight, once it arrives", async () => {
    const disposed: number[] = [];
    const schedule = new Schedule<number>((result) => disposed.push(result));
    const jobs = Array.from({ length: 5 }, () => deferred<number>());
    for (const job of jobs) schedule.push(job.promise, 1);
    jobs[0].resolve(0);
    jobs[1].resolve(1);
    jobs[3].resolve(3);
    const taken: number[] = [];
    for await (const result of schedule.drain()) {
      taken.push(result);
      break; // the consumer stops after one result
    }
    assert.deepEqual(taken, [0]);
    schedule.close();
    assert.equal(schedule.length, 0);
    assert.equal(schedule.inFlightBytes, 0);
    await tick();
    assert.deepEqual(disposed.sort(), [1, 3], "results already in, not taken back");
    jobs[2].resolve(2);
    jobs[4].reject(new Error("a failure after the stop is ignored"));
    await tick();
    assert.deepEqual(disposed.sort(), [1, 2, 3], "and results that arrive after the stop");
    // A result pushed after close (a request already on its way) is disposed of too.
    schedule.push(Promise.resolve(5), 1);
    await tick();
    assert.deepEqual(disposed.sort(), [1, 2, 3, 5]);
    assert.equal(schedule.length, 0);
  });
});

describe("startPool", () => {
  test("no pool without work for one; one thread and a movable hash get the hashing thread alone", async () => {
    assert.equal(startPool(1, undefined, undefined), undefined, "one thread, no hash");
    assert.equal(
      startPool(1, new ContentHash(false), undefined),
      undefined,
      "one thread, the hash stays here",
    );
    const content = new ContentHash(true);
    const memory = new SlotMemory();
    const pool = startPool(1, content, memory);
    try {
      assert.ok(pool);
      assert.equal(pool.size, 0, "no coding workers");
      assert.equal(pool.hashes, true);
      assert.equal(content.open, false, "the hash moved to the pool");
      assert.equal(memory.pool, pool, "reads go into the pool's slots");
      assert.equal(await content.digest(), createHash("sha256").digest("hex"));
    } finally {
      await pool?.close();
    }
    const coding = startPool(2, undefined, undefined);
    try {
      assert.equal(coding?.size, 2);
      assert.equal(coding?.hashes, false);
    } finally {
      await coding?.close();
    }
    // The decoder's pool: one worker fewer than its threads (it decodes a share itself).
    assert.equal(startPool(2, undefined, undefined, 0), undefined, "no workers and no hash: no pool");
    const decoding = startPool(2, undefined, undefined, 1);
    try {
      assert.equal(decoding?.size, 1);
    } finally {
      await decoding?.close();
    }
  });
});
