/**
 * How the encoder and the decoder spread chunks over a pool's workers: chunks are coded
 * on the calling thread until a worker is up, then posted to the pool with a bounded
 * number of chunks and content bytes in flight, and their results are taken in input
 * order, so the output never depends on which worker finished first. docs/ENGINE.md has
 * the whole arrangement.
 */
import type { ContentHash } from "./hashing.ts";
import { WorkerPool } from "./pool.ts";
import type { SlotMemory } from "./slots.ts";

/**
 * Workers start only once this much content has gone by: starting one costs tens of
 * milliseconds, more than coding a few MiB on the calling thread.
 */
export const POOL_AFTER_BYTES = 8 << 20;

/**
 * Chunks kept in flight per pool: enough to keep every worker busy while results wait
 * their turn (requests queue at the workers, so 4 per worker are enough: see
 * docs/ENGINE.md, Measurements behind engine choices: Chunks in flight), capped so that
 * memory does not grow with the number of cores.
 */
export function inFlightLimit(workers: number): number {
  return Math.min(4 * workers, 32);
}

/**
 * The decoder decodes a record on the calling thread only while every worker has at
 * least this many records waiting or running; otherwise the record goes to the least busy
 * worker. The calling thread also reads, checks and writes, so it cannot keep a fixed share
 * of the records: a worker given every other record waited for the next whenever the calling
 * thread was busy with its own. Two would keep a worker busy while the calling thread
 * decodes one record of the same size and writes another; the third is for a calling
 * thread that loses its core for a while on a busy machine (see docs/ENGINE.md, Threads,
 * and Measurements behind engine choices: The decoder's own records).
 */
export const WORKER_BACKLOG = 3;

/**
 * Content bytes kept in flight per pool, whatever the chunk size: with larger chunks
 * fewer are in flight. A record that declares more than POOL_MAX_RECORD is decoded on the
 * calling thread, which allocates its output only once the payload proved it decodes.
 */
export const IN_FLIGHT_BYTES = 16 << 20;
export const POOL_MAX_RECORD = 8 << 20;

/**
 * The pool a coder starts once POOL_AFTER_BYTES have gone by, if there is work for one:
 * `workers` coding workers (by default `threads` when more than one thread codes), and
 * the hashing thread when `content` can still move there (ContentHash.open), which then
 * adopts it. With no coding workers, a pool of the hashing thread alone. `memory`, given
 * to the coder's file reader, reads into the pool's slots from now on. (The decoder asks
 * for one worker fewer than its threads: it decodes a share of the records itself.)
 */
export function startPool(
  threads: number,
  content: ContentHash | undefined,
  memory: SlotMemory | undefined,
  workers = threads > 1 ? threads : 0,
): WorkerPool | undefined {
  const hashing = content?.open === true;
  if (workers < 1 && !hashing) return undefined;
  const pool = new WorkerPool(workers, hashing);
  if (hashing) content!.adopt(pool);
  if (memory) memory.pool = pool;
  return pool;
}

/** What a schedule needs to know of a pool. */
export interface Workers {
  /** Coding workers. */
  readonly size: number;
  /** True once a coding worker has loaded its code. */
  readonly ready: boolean;
}

export interface ScheduleLimits {
  /** Results in flight at most, for a pool of `workers` (default inFlightLimit). */
  jobs?: (workers: number) => number;
  /** Content bytes in flight at most (default IN_FLIGHT_BYTES); one job may pass it alone. */
  bytes?: number;
}

/**
 * The chunks a coder has posted to a pool and not yet taken back, oldest first. The coder
 * asks offloads() whether a chunk goes to the pool at all, makes room() for it, push()es
 * its result, and takes results back in order from room() and drain(). close() disposes
 * of whatever is still in flight when the coder stops early.
 */
export class Schedule<R> {
  private readonly queue: { result: Promise<R>; bytes: number }[] = [];
  private bytes = 0;
  private closed = false;
  private readonly dispose: (result: R) => void;
  private readonly maxJobs: (workers: number) => number;
  private readonly maxBytes: number;

  /** `dispose` frees a result that was never taken back (see close). */
  constructor(dispose: (result: R) => void, limits: ScheduleLimits = {}) {
    this.dispose = dispose;
    this.maxJobs = limits.jobs ?? inFlightLimit;
    this.maxBytes = limits.bytes ?? IN_FLIGHT_BYTES;
  }

  /** Results in flight. */
  get length(): number {
    return this.queue.length;
  }

  /** Content bytes in flight. */
  get inFlightBytes(): number {
    return this.bytes;
  }

  /**
   * Whether the next chunk goes to `pool`: once a worker has started (about 0.1 s after
   * the pool), and while earlier chunks are in flight, whose results come first. Until a
   * worker is up, chunks are coded on the calling thread rather than waited for.
   */
  offloads<P extends Workers>(pool: P | undefined): pool is P {
    return pool !== undefined && (pool.ready || this.queue.length > 0);
  }

  /**
   * Takes back the oldest results, in order, until a chunk of `bytes` more fits: at most
   * the job limit for `pool`'s workers and the byte limit in flight.
   */
  async *room(pool: Workers, bytes: number): AsyncGenerator<R> {
    while (
      this.queue.length >= this.maxJobs(pool.size) ||
      (this.queue.length > 0 && this.bytes + bytes > this.maxBytes)
    ) {
      yield await this.next();
    }
  }

  /** Adds the result of a chunk of `bytes` content bytes just posted, after all others. */
  push(result: Promise<R>, bytes: number): void {
    // Awaited in order; an early failure must not go unhandled meanwhile.
    result.catch(() => {});
    if (this.closed) {
      result.then(this.dispose, () => {});
      return;
    }
    this.queue.push({ result, bytes });
    this.bytes += bytes;
  }

  /** Takes back every result in flight, in order. */
  async *drain(): AsyncGenerator<R> {
    while (this.queue.length > 0) yield await this.next();
  }

  /** The oldest result, once it is in; a failed chunk throws its error here. */
  private next(): Promise<R> {
    const { result, bytes } = this.queue.shift()!;
    this.bytes -= bytes;
    return result;
  }

  /**
   * For a coder that stops before taking every result back: each result still in flight
   * is disposed of once it arrives, and failures are ignored.
   */
  close(): void {
    this.closed = true;
    for (const { result } of this.queue.splice(0)) result.then(this.dispose, () => {});
    this.bytes = 0;
  }
}
