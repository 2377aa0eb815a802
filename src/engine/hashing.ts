/**
 * The content's sha256, computed in content order on the calling thread or on a pool's
 * hashing thread (WorkerPool.hash), and the choice between the two.
 */
import { MmhError } from "../common/errors.ts";
import { Sha256 } from "../common/sha256.ts";
import type { WorkerPool } from "./pool.ts";
import { POOL_AFTER_BYTES, POOL_MAX_RECORD } from "./schedule.ts";
import type { Slot } from "./slots.ts";
import { defaultThreads } from "./threads.ts";

/**
 * Content bytes held back while it is not yet known whether a pool with a hashing thread
 * will start: the pool takes them over if it starts before this much has gone by.
 */
const HOLD_LIMIT = POOL_AFTER_BYTES + POOL_MAX_RECORD;

/**
 * Content known to be shorter than this is hashed on the calling thread: a hashing thread
 * costs more to start (its isolate, the bundle, node:crypto) than hashing so little here
 * (docs/ENGINE.md, Measurements behind engine choices: The hash on a thread of its own).
 */
export const HASH_APART_MIN = 32 << 20;

/**
 * Content known to be shorter than this, encoded with one coding thread, is hashed on the
 * calling thread: there the hashing thread saves at most the inline hash's time (about a
 * millisecond per MiB) and costs its start-up, the copies into shared slots it reads from
 * and their fresh pages; up to this length inline hashing was as fast in wall time and
 * cheaper in CPU time (docs/ENGINE.md, Measurements behind engine choices: The hash on a
 * thread of its own). Decoding with `checkSha256` keeps HASH_APART_MIN: its hash is a
 * larger share of its work.
 */
export const HASH_APART_ONE_CODER_MIN = 128 << 20;

/**
 * Whether the content's sha256 goes to a thread of its own (a pool's hashing thread) when
 * coding with `threads` threads: whenever there is a core for it, unless the content's
 * length `size` is known and under HASH_APART_MIN (HASH_APART_ONE_CODER_MIN when `encoding`
 * with one thread), or the content is the caller's memory
 * (`inMemory`, compress(bytes)) coded on one thread. A file is read straight into the
 * pool's shared slots, so with one coding thread the pool has only the hashing thread, as
 * zstd -T1 moves its I/O to a second thread, and one thread compressed faster so (see
 * docs/ENGINE.md, Measurements behind engine choices: The hash on a thread of its own).
 * Bytes in memory would have to be copied into slots for the hashing thread, and on one
 * coding thread that copy costs the calling thread more than the hash does (same section,
 * Bytes in memory). With coding workers the chunks go into slots for them anyway.
 */
export function hashesApart(threads: number, size?: number, inMemory = false, encoding = false): boolean {
  if (size !== undefined && size < HASH_APART_MIN) return false;
  if (encoding && threads <= 1 && size !== undefined && size < HASH_APART_ONE_CODER_MIN) return false;
  if (inMemory && threads <= 1) return false;
  return threads > 1 || defaultThreads() > 1;
}

/**
 * The sha256 of the content, computed on this thread or on a pool's hashing thread.
 * Unless `apart`, it is computed here from the start. Else the first bytes are held (at
 * most HOLD_LIMIT, which is when a pool starts) so that a pool can take the hashing over;
 * if none has started by then, it stays on this thread. Held bytes are copied.
 */
export class ContentHash {
  /**
   * The hash on this thread: in JavaScript for a short content, else node:crypto's,
   * loaded only then (common/sha256.ts); a process whose hash runs on the hashing thread
   * never loads it here (docs/ENGINE.md, Start-up).
   */
  private local: Sha256 | undefined;
  private held: Uint8Array[] | undefined;
  private heldBytes = 0;
  private pool: WorkerPool | undefined;
  /**
   * Bytes of one slot not yet sent to the hashing thread: consecutive chunks of one read
   * batch go as one request (a 2 MiB batch of 512 KiB chunks: one message instead of 4).
   */
  private run: { slot: Slot; at: number; length: number } | undefined;

  constructor(apart: boolean) {
    if (apart) this.held = [];
    else this.local = new Sha256();
  }

  /** True while a pool starting now could take the hashing over. */
  get open(): boolean {
    return this.held !== undefined;
  }

  /** Hand the hashing to `pool` (made with a hashing thread), held bytes first. */
  adopt(pool: WorkerPool): void {
    if (!this.held || !pool.hashes) throw new MmhError("E_INTERNAL", "the content hash cannot move");
    this.pool = pool;
    for (const kept of this.held) this.update(kept);
    this.held = undefined;
  }

  /** Add the next content bytes; `slot`, when given, holds them already, from byte `at`. */
  update(bytes: Uint8Array, slot?: Slot, at = 0): void {
    const pool = this.pool;
    if (pool) {
      const run = this.run;
      if (slot && run?.slot === slot && run.at + run.length === at) {
        run.length += bytes.length;
        return;
      }
      this.flush();
      if (slot) this.run = { slot: slot.hold(), at, length: bytes.length };
      else {
        const from = pool.copyIn(bytes);
        pool.hash(from, 0, bytes.length);
        from.release();
      }
      return;
    }
    if (this.held) {
      // A copy: the caller's memory may be reused (borrowed pieces, recycled reads).
      this.held.push(Uint8Array.from(bytes));
      this.heldBytes += bytes.length;
      if (this.heldBytes <= HOLD_LIMIT) return;
      this.local = new Sha256();
      for (const kept of this.held) this.local.update(kept);
      this.held = undefined;
      return;
    }
    this.local?.update(bytes);
  }

  /** Sends the bytes held back for one request to the hashing thread. */
  private flush(): void {
    const run = this.run;
    if (!run) return;
    this.run = undefined;
    this.pool!.hash(run.slot, run.at, run.length);
    run.slot.release();
  }

  /** Waits while the hashing thread is far behind. */
  async room(): Promise<void> {
    await this.pool?.hashRoom();
  }

  async digest(): Promise<string> {
    this.flush();
    if (this.pool) return this.pool.digest();
    if (this.held) {
      this.local = new Sha256();
      for (const kept of this.held) this.local.update(kept);
      this.held = undefined;
    }
    return await this.local!.digest();
  }
}
