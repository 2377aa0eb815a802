/**
 * A pool of worker threads that code chunks, and one more that hashes the content.
 *
 * Chunk bytes travel through shared memory: a file is read straight into a slot (a
 * SharedArrayBuffer reused from batch to batch, see SlotMemory), other input is copied
 * into one, a worker codes it into another slot, and only small messages cross threads. No chunk is copied by postMessage, and the pool
 * allocates no memory per chunk once its slots exist, so the calling thread is left with
 * reading, writing and keeping order, and the work spreads over the cores.
 *
 * Requests are posted at once to the least busy worker that has started, and wait in its
 * queue; each result comes back as a promise, and the callers keep results in input
 * order, so the output never depends on which worker finished first (see Schedule). The
 * content's sha256 is computed on the hashing thread, fed in content order (see
 * ContentHash). docs/ENGINE.md has the whole arrangement.
 */
import type { Worker, WorkerOptions } from "node:worker_threads";
import { copyBytes } from "../common/bytes.ts";
import type { DTypeName } from "../common/dtype.ts";
import { type ErrorCode, MmhError } from "../common/errors.ts";
import type { Choice } from "./auto.ts";
import { CLOSE_MESSAGE, CONTROL_BYTES, DONE_WORD, RUNNING_WORD, STOP_WORD } from "./control.ts";
import type { DeltaJob } from "./deltacode.ts";
import type { HashReply, HashRequest } from "./hasher.ts";
import { Slot } from "./slots.ts";
import type { WorkerReply, WorkerRequest } from "./worker.ts";

/**
 * Content bytes waiting for the hashing thread, beyond which the caller waits. The thread
 * keeps up with one coding thread, but it answers first some time after its pool starts,
 * which hands it up to HOLD_LIMIT held bytes while the caller codes on: until that first
 * answer 32 MiB may wait, so that the caller does not idle at every pool start; after it,
 * 4 MiB, since a larger backlog costs resident memory once workers compete for the cores
 * (see docs/ENGINE.md, Measurements behind engine choices: Hashing thread backlog).
 */
export const HASH_BACKLOG = 4 << 20;
export const HASH_BACKLOG_AT_START = 32 << 20;

/**
 * A worker's young generation: chunk bytes live in shared slots, outside the heap, so a
 * small one is enough, and it keeps resident memory down (see docs/ENGINE.md,
 * Measurements behind engine choices: Worker young generation).
 */
const LIMITS = { maxYoungGenerationSizeMb: 4 };

/**
 * Room past a chunk's raw length in an encode's output slot: the record header and its
 * parameters go before the payload (worker.ts PAYLOAD_AT), and a payload may be a little
 * larger than the raw bytes before the encoder falls back to storing them.
 */
const RECORD_ROOM = (64 << 10) + (4 << 10);

type Reply = WorkerReply | HashReply;

type Pending = { resolve: (reply: Reply) => void; reject: (error: MmhError) => void };
type Request = WorkerRequest | HashRequest extends infer R
  ? R extends { id: number }
    ? Omit<R, "id" | "register">
    : never
  : never;

/**
 * How long a thread asked to stop and running no request may take to leave before it is
 * terminated (ms). One that runs none leaves within milliseconds of its message; this
 * covers a machine so loaded that the thread is not scheduled for a while.
 */
export const STOP_IDLE_MS = 2000;
/**
 * How long a thread still running a request when asked to stop is waited for at most (ms):
 * it leaves once the request is done (a chunk, or a file share's record). Past it, it is
 * terminated all the same, so that a thread stuck for good cannot hold its caller.
 */
export const STOP_BUSY_MS = 30_000;

/**
 * A worker thread of this directory (worker.ts or hasher.ts) with its control memory, and
 * how it is stopped. Stopping never terminates a thread that may be inside a request,
 * except past STOP_BUSY_MS: node:zlib's handle teardown aborts the whole process when a
 * thread is terminated between making a zstd or brotli handle and initialising it
 * (docs/ENGINE.md, Threads: Stopping threads).
 */
export class Thread {
  readonly worker: Worker;
  readonly control = new Int32Array(new SharedArrayBuffer(CONTROL_BYTES));
  /** Set once the thread has exited, however. */
  exited = false;
  readonly #exit: Promise<void>;

  /** `module`: worker.ts or hasher.ts, or another module that keeps the same protocol. */
  constructor(module: "worker" | "hasher" | URL, options: WorkerOptions = {}) {
    // Loaded here: a process that never starts a thread does not load node:worker_threads.
    const { Worker } = process.getBuiltinModule("node:worker_threads");
    this.worker = new Worker(module instanceof URL ? module : besideThis(module), {
      resourceLimits: LIMITS,
      ...options,
      workerData: { control: this.control },
    });
    this.#exit = new Promise((resolve) =>
      this.worker.once("exit", () => {
        this.exited = true;
        resolve();
      }),
    );
  }

  /** Whether the thread is running a request now. */
  get running(): boolean {
    return Atomics.load(this.control, RUNNING_WORD) > 0;
  }

  /**
   * Ask the thread to leave between requests, and wait until it has exited: false when it
   * had to be terminated after all (STOP_IDLE_MS, STOP_BUSY_MS). With `now`, the caller
   * knows the thread runs no request and will be given none (it has not loaded its code
   * yet and was given nothing to do), so it is terminated at once rather than waited for
   * to start, which counts as true.
   */
  async stop(now = false, idleMs = STOP_IDLE_MS, busyMs = STOP_BUSY_MS): Promise<boolean> {
    if (this.exited) return true;
    Atomics.store(this.control, STOP_WORD, 1);
    if (!now) {
      this.worker.postMessage(CLOSE_MESSAGE);
      const asked = performance.now();
      for (;;) {
        const left = busyMs - (performance.now() - asked);
        if (await this.#exitWithin(Math.min(idleMs, Math.max(0, left)))) return true;
        if (!this.running || performance.now() - asked >= busyMs) break;
      }
    }
    await this.worker.terminate();
    return now;
  }

  /** Whether the thread exits within `ms`. */
  async #exitWithin(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    });
    try {
      return await Promise.race([this.#exit.then(() => true), late]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * One worker and the requests posted to it and not yet answered. Requests are posted at
 * once, to the least busy worker, and wait in its message queue: a worker goes from one
 * chunk to the next without waiting for the calling thread to hand it more.
 */
class Lane {
  readonly thread: Thread;
  outstanding = 0;
  /**
   * For a coding worker: requests posted to it, and its count of requests done, which it
   * raises in shared memory as it finishes each one (DONE_WORD). The calling thread learns
   * of a reply only when it next returns to its event loop, which a thread decoding a
   * record of its own does not do meanwhile; the shared count tells it at once (see backlog).
   */
  posted = 0;
  readonly counts: boolean;
  /** Set when the worker has loaded its code and said so: until then it gets no work. */
  ready = false;
  /**
   * Slots this worker has been sent. Passing a SharedArrayBuffer in a message costs tens
   * of microseconds, so each goes to a worker once and requests name slots by number.
   */
  readonly known = new Set<number>();
  constructor(thread: Thread, counts: boolean) {
    this.thread = thread;
    this.counts = counts;
  }

  get worker(): Worker {
    return this.thread.worker;
  }

  /** Requests posted to this worker and not yet done, as of now. */
  get waiting(): number {
    return this.counts ? this.posted - Atomics.load(this.thread.control, DONE_WORD) : this.outstanding;
  }
}

export interface EncodedInSlot {
  /** The record header (with params), then the payload, both views of `slot`. */
  header: Uint8Array;
  payload: Uint8Array;
  codec: string;
  rawLength: number;
  rawCrc: number;
  extraMs: number;
  /** Holds the views above; release it once they are written. */
  slot: Slot;
}

/**
 * A thread's module beside this one: `name`.ts, or `name`.js in the build, where every
 * file of the bundle sits in dist/ itself (scripts/build.ts): worker.ts, the coding
 * worker, and hasher.ts, the hashing thread.
 */
function besideThis(name: "worker" | "hasher"): URL {
  return new URL(`./${name}${import.meta.url.endsWith(".ts") ? ".ts" : ".js"}`, import.meta.url);
}

/**
 * A coding worker on its own, outside any pool, for a caller that talks to it itself
 * (filedecode.ts): the pool's worker module, with the pool's resource limits. Its standard
 * output and error are not piped to this process's (it writes nothing there): piping them
 * builds process.stdout and process.stderr, which makes descriptors 1 and 2 non-blocking
 * when they are pipes, and a thread writing descriptor 1 with writeSync (an ordered
 * share) would then have to wait in steps whenever the pipe is full instead of in write.
 */
export function startWorker(): Thread {
  return new Thread("worker", { stdout: true, stderr: true });
}

export class WorkerPool {
  readonly size: number;
  private readonly lanes: Lane[] = [];
  private readonly hasher: Lane | undefined;
  private readonly pending = new Map<number, Pending>();
  private readonly free: Slot[] = [];
  private readonly batchFree: Slot[] = [];
  private nextId = 0;
  private slots = 0;
  /** Bytes posted to the hasher and not yet hashed, and who waits for them to drop. */
  private hashing = 0;
  /** Whether the hashing thread has answered yet (see HASH_BACKLOG). */
  private hasherAnswered = false;
  private readonly hashWaiters: (() => void)[] = [];
  private failed: MmhError | undefined;
  private closed = false;
  private readonly byBuffer = new Map<SharedArrayBuffer, Slot>();

  /** `size` coding workers, and a hashing thread when `hashing` is set. */
  constructor(size: number, hashing = false) {
    this.size = size;
    for (let i = 0; i < size; i++) this.lanes.push(this.spawn(new Thread("worker"), true));
    if (hashing) {
      this.hasher = this.spawn(new Thread("hasher"), false);
      this.hasher.ready = true; // its requests wait in its queue while it starts
    }
  }

  /**
   * True once a coding worker has loaded its code (about 0.1 s after the pool starts).
   * Until then callers code chunks themselves instead of waiting.
   */
  get ready(): boolean {
    return this.lanes.some((lane) => lane.ready);
  }

  /**
   * Requests waiting or running at the least busy coding worker that has loaded its code,
   * or Infinity while none has: how much work the pool has in hand before one of its
   * workers runs out (see WORKER_BACKLOG).
   */
  get backlog(): number {
    let least = Number.POSITIVE_INFINITY;
    for (const lane of this.lanes) if (lane.ready) least = Math.min(least, lane.waiting);
    return least;
  }

  private spawn(thread: Thread, counts: boolean): Lane {
    const lane = new Lane(thread, counts);
    const worker = thread.worker;
    worker.on("message", (reply: Reply | { ready: true }) => {
      if ("ready" in reply) lane.ready = true;
      else this.settle(lane, reply);
    });
    worker.on("error", (error) =>
      this.fail(new MmhError("E_INTERNAL", `worker failed: ${error.message}`, { cause: error })),
    );
    worker.on("exit", (code) => {
      if (!this.closed) this.fail(new MmhError("E_INTERNAL", `worker exited with code ${code}`));
    });
    return lane;
  }

  /**
   * A free slot of at least `capacity` bytes, held once by the caller. Read batches (see
   * batch()) have slots of their own, so chunk-sized requests never take their memory.
   */
  slot(capacity: number, forBatch = false): Slot {
    const free = forBatch ? this.batchFree : this.free;
    for (let i = free.length - 1; i >= 0; i--) {
      const slot = free[i];
      if (slot.bytes.length >= capacity) {
        free.splice(i, 1);
        return slot.hold();
      }
    }
    const slot = new Slot(this.slots++, capacity, free);
    this.byBuffer.set(slot.buffer, slot);
    return slot.hold();
  }

  /** The slot whose memory `bytes` lies in, if any. */
  holderOf(bytes: Uint8Array): Slot | undefined {
    return bytes.buffer instanceof SharedArrayBuffer ? this.byBuffer.get(bytes.buffer) : undefined;
  }

  /**
   * Memory for a file reader's next batch (see SlotMemory): a slot held by the reader
   * until it is done with the batch. Chunks read into it are coded and hashed from there,
   * with no copy.
   */
  batch(size: number): Uint8Array | undefined {
    if (this.closed || this.failed) return undefined;
    return this.slot(size, true).bytes.subarray(0, size);
  }

  /** A held slot holding a copy of `bytes`. */
  copyIn(bytes: Uint8Array): Slot {
    const slot = this.slot(bytes.length);
    copyBytes(slot.bytes, bytes);
    return slot;
  }

  private settle(lane: Lane, reply: Reply): void {
    const pending = this.pending.get(reply.id);
    this.pending.delete(reply.id);
    lane.outstanding--;
    if (!pending) return;
    if (reply.ok) pending.resolve(reply);
    else pending.reject(new MmhError(reply.error.code as ErrorCode, reply.error.message));
  }

  private fail(error: MmhError): void {
    this.failed ??= error;
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
    for (const wake of this.hashWaiters.splice(0)) wake();
  }

  private submit(request: Request, slots: Slot[], hashing = false): Promise<Reply> {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.nextId++;
    const promise = new Promise<Reply>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    let lane: Lane;
    if (hashing) {
      if (!this.hasher) throw new MmhError("E_INTERNAL", "this pool has no hashing thread");
      lane = this.hasher;
    } else {
      const ready = this.lanes.filter((other) => other.ready);
      const lanes = ready.length > 0 ? ready : this.lanes;
      lane = lanes[0];
      for (const other of lanes) if (other.waiting < lane.waiting) lane = other;
    }
    const register: [number, SharedArrayBuffer][] = [];
    for (const slot of slots) {
      if (lane.known.has(slot.id)) continue;
      lane.known.add(slot.id);
      register.push([slot.id, slot.buffer]);
    }
    lane.outstanding++;
    lane.posted++;
    lane.worker.postMessage({ ...request, id, ...(register.length > 0 ? { register } : {}) });
    return promise;
  }

  /**
   * Add `length` bytes of `slot` to the content hash, after everything added before.
   * The slot is held until the hasher has read it.
   */
  hash(slot: Slot, at: number, length: number): void {
    if (!this.hasher) throw new MmhError("E_INTERNAL", "this pool has no hashing thread");
    slot.hold();
    this.hashing += length;
    const done = this.submit({ op: "hash", input: slot.id, at, length }, [slot], true);
    done.then(
      () => {
        slot.release();
        this.hashing -= length;
        this.hasherAnswered = true;
        if (this.hashing <= HASH_BACKLOG) for (const wake of this.hashWaiters.splice(0)) wake();
      },
      () => {},
    );
  }

  /** Resolves once at most HASH_BACKLOG bytes wait for the hasher, so memory stays bounded. */
  async hashRoom(): Promise<void> {
    while (this.hashing > (this.hasherAnswered ? HASH_BACKLOG : HASH_BACKLOG_AT_START) && !this.failed) {
      await new Promise<void>((wake) => this.hashWaiters.push(wake));
    }
    if (this.failed) throw this.failed;
  }

  /** Whether this pool hashes the content. */
  get hashes(): boolean {
    return this.hasher !== undefined;
  }

  /** The sha256 of everything hashed, once the hasher has read it all. */
  async digest(): Promise<string> {
    const reply = await this.submit({ op: "digest" }, [], true);
    if (!reply.ok || reply.op !== "digest") throw new MmhError("E_INTERNAL", "hasher replied out of turn");
    return reply.digest;
  }

  /** Encode `length` bytes of `input` from byte `at` on a worker, into a slot of its own. */
  encode(
    input: Slot,
    at: number,
    length: number,
    dtype: DTypeName | null,
    choices: Choice[],
  ): Promise<EncodedInSlot> {
    return this.coded({ op: "encode", at, length, dtype, choices }, input, undefined);
  }

  /**
   * Code `length` bytes of `input` from byte `at` on a worker, on their own (`choices`) and
   * against their base bytes, `base` from 0 (`job`, encodeAgainstBase): the smaller record.
   */
  encodeDelta(
    input: Slot,
    at: number,
    length: number,
    base: Slot,
    dtype: DTypeName | null,
    choices: Choice[],
    job: DeltaJob,
  ): Promise<EncodedInSlot> {
    return this.coded({ op: "delta", at, length, dtype, choices, job }, input, base);
  }

  private async coded(
    request:
      | { op: "encode"; at: number; length: number; dtype: DTypeName | null; choices: Choice[] }
      | {
          op: "delta";
          at: number;
          length: number;
          dtype: DTypeName | null;
          choices: Choice[];
          job: DeltaJob;
        },
    input: Slot,
    base: Slot | undefined,
  ): Promise<EncodedInSlot> {
    const { length } = request;
    input.hold();
    base?.hold();
    const out = this.slot(length + RECORD_ROOM);
    try {
      const reply = await this.submit(
        request.op === "delta"
          ? { ...request, input: input.id, base: base!.id, output: out.id }
          : { ...request, input: input.id, output: out.id },
        base ? [input, base, out] : [input, out],
      );
      if (!reply.ok || reply.op !== request.op)
        throw new MmhError("E_INTERNAL", "worker replied out of turn");
      const payloadAt = reply.headerAt + reply.headerLength;
      return {
        header: out.bytes.subarray(reply.headerAt, payloadAt),
        payload: out.bytes.subarray(payloadAt, payloadAt + reply.payloadLength),
        codec: reply.codec,
        rawLength: length,
        rawCrc: reply.rawCrc,
        extraMs: reply.extraMs,
        slot: out,
      };
    } catch (error) {
      out.release();
      throw error;
    } finally {
      input.release();
      base?.release();
    }
  }

  /** Decode and check a chunk on a worker; the content is `slot.bytes[0, rawLength)`. */
  async decode(
    codec: string,
    params: Uint8Array,
    payload: Uint8Array,
    rawLength: number,
    rawCrc: number,
    where: string,
  ): Promise<Slot> {
    // A payload read into a slot (SlotMemory) is decoded from there; others are copied in.
    const home = this.holderOf(payload);
    const input = home ? home.hold() : this.copyIn(payload);
    const at = home ? payload.byteOffset : 0;
    const out = this.slot(rawLength);
    try {
      const reply = await this.submit(
        {
          op: "decode",
          codec,
          params: new Uint8Array(params),
          input: input.id,
          at,
          length: payload.length,
          output: out.id,
          rawLength,
          rawCrc,
          where,
        },
        [input, out],
      );
      if (!reply.ok || reply.op !== "decode") throw new MmhError("E_INTERNAL", "worker replied out of turn");
      return out;
    } catch (error) {
      out.release();
      throw error;
    } finally {
      input.release();
    }
  }

  /**
   * Stop the threads, each between two requests (Thread.stop): requests still waiting are
   * dropped, and their promises never settle. A worker that has not loaded its code and was
   * given nothing is terminated at once. Resolves, never rejects, once every thread has
   * exited, with the number that had to be terminated after all (Thread.stop); a second
   * call resolves at once.
   */
  async close(): Promise<number> {
    if (this.closed) return 0;
    this.closed = true;
    const all = this.hasher ? [...this.lanes, this.hasher] : this.lanes;
    const left = await Promise.all(all.map((lane) => lane.thread.stop(!lane.ready && lane.posted === 0)));
    return left.filter((own) => !own).length;
  }
}
