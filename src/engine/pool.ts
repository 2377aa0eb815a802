/**
 * A pool of worker threads that code chunks. Requests are queued and handed to idle
 * workers; each result comes back as a promise, and the callers keep results in input
 * order, so the output never depends on which worker finished first.
 */
import { Worker } from "node:worker_threads";
import { type ErrorCode, MmhError } from "../common/errors.ts";
import type { DTypeName } from "../formats/dtype.ts";
import type { Choice } from "./auto.ts";
import type { EncodedChunk } from "./chunk.ts";
import { transferable, type WorkerReply, type WorkerRequest } from "./worker.ts";

/**
 * Workers start only once this much content has gone by: starting one costs tens of
 * milliseconds, more than coding a few MiB on the calling thread.
 */
export const POOL_AFTER_BYTES = 8 << 20;

/**
 * Chunks kept in flight per pool: enough to keep every worker busy while results wait
 * their turn (8 per worker measured 1.25x faster than 2 per worker with 2 workers), capped
 * so that memory does not grow with the number of cores.
 */
export function inFlightLimit(workers: number): number {
  return Math.min(8 * workers, 32);
}

/**
 * The default is one thread (no pool) for now: on the 2-core development machine two
 * workers measured only 1.04-1.13x faster than one on 8 GiB, slower on 256 MiB, and at
 * about 170 MiB more memory each (bench/results/scale.md), because the calling thread's
 * own work (sha256, I/O, copies) is the bottleneck. `-T N` turns workers on.
 */
export function defaultThreads(): number {
  return 1;
}

/** Resolve the threads option: an integer from 1 to 256, default 1. */
export function resolveThreads(threads: number | undefined): number {
  const n = threads ?? defaultThreads();
  if (!Number.isSafeInteger(n) || n < 1 || n > 256) {
    throw new MmhError("E_BAD_OPTION", `threads must be an integer from 1 to 256, got ${threads}`);
  }
  return n;
}

type Pending = { resolve: (reply: WorkerReply) => void; reject: (error: MmhError) => void };
type Request = WorkerRequest extends infer R ? (R extends { id: number } ? Omit<R, "id"> : never) : never;

export class WorkerPool {
  readonly size: number;
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly queue: { request: WorkerRequest; transfer: ArrayBuffer[] }[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private failed: MmhError | undefined;

  constructor(size: number) {
    this.size = size;
    for (let i = 0; i < size; i++) {
      const worker = new Worker(new URL("./worker.ts", import.meta.url));
      worker.on("message", (reply: WorkerReply) => this.settle(worker, reply));
      worker.on("error", (error) =>
        this.fail(new MmhError("E_INTERNAL", `worker failed: ${error.message}`, { cause: error })),
      );
      worker.on("exit", (code) => {
        if (code !== 0 && !this.closed)
          this.fail(new MmhError("E_INTERNAL", `worker exited with code ${code}`));
      });
      this.workers.push(worker);
      this.idle.push(worker);
    }
  }

  private closed = false;

  private settle(worker: Worker, reply: WorkerReply): void {
    const pending = this.pending.get(reply.id);
    this.pending.delete(reply.id);
    this.idle.push(worker);
    this.pump();
    if (!pending) return;
    if (reply.ok) pending.resolve(reply);
    else pending.reject(new MmhError(reply.error.code as ErrorCode, reply.error.message));
  }

  private fail(error: MmhError): void {
    this.failed ??= error;
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
  }

  private pump(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const worker = this.idle.pop()!;
      const { request, transfer } = this.queue.shift()!;
      worker.postMessage(request, transfer);
    }
  }

  private submit(request: Request, transfer: ArrayBuffer[]): Promise<WorkerReply> {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.nextId++;
    const promise = new Promise<WorkerReply>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.queue.push({ request: { ...request, id } as WorkerRequest, transfer });
    this.pump();
    return promise;
  }

  /**
   * Encode a chunk on a worker. The bytes are copied into a buffer of their own that is
   * handed over: the caller's buffer may be shared with the chunks around it.
   */
  async encode(
    raw: Uint8Array,
    dtype: DTypeName | null,
    choices: Choice[],
  ): Promise<{ chunk: EncodedChunk; extraMs: number }> {
    const owned = new Uint8Array(raw); // a copy (Buffer.prototype.slice would be a view)
    const reply = await this.submit({ op: "encode", raw: owned, dtype, choices }, transferable(owned));
    if (!reply.ok || reply.op !== "encode") throw new MmhError("E_INTERNAL", "worker replied out of turn");
    const header = Buffer.from(reply.header.buffer, reply.header.byteOffset, reply.header.byteLength);
    return {
      chunk: {
        header,
        payload: reply.payload,
        codec: reply.codec,
        rawLength: reply.rawLength,
        rawCrc: reply.rawCrc,
      },
      extraMs: reply.extraMs,
    };
  }

  /** Decode and check a chunk on a worker. */
  async decode(
    codec: string,
    params: Uint8Array,
    payload: Uint8Array,
    rawLength: number,
    rawCrc: number,
    where: string,
  ): Promise<Uint8Array> {
    const owned = new Uint8Array(payload);
    const reply = await this.submit(
      { op: "decode", codec, params: new Uint8Array(params), payload: owned, rawLength, rawCrc, where },
      transferable(owned),
    );
    if (!reply.ok || reply.op !== "decode") throw new MmhError("E_INTERNAL", "worker replied out of turn");
    return reply.raw;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
