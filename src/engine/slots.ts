/**
 * Shared memory for chunk bytes: a Slot is a SharedArrayBuffer of a WorkerPool that holds
 * one chunk or one read batch at a time, and SlotMemory lets a file reader read straight
 * into the slots of a running pool. docs/ENGINE.md, Shared slots, has the arrangement.
 */
import type { BatchMemory } from "../common/files.ts";
import type { WorkerPool } from "./pool.ts";

/** Bytes per read into the pool's slots (see SlotMemory). */
const SLOT_BATCH = 2 << 20;

/**
 * A piece of shared memory that holds one chunk, or one read batch of several chunks, at
 * a time; reused once every holder let go.
 */
export class Slot {
  /** The slot's number in its pool: requests name slots by number (see Lane.known). */
  readonly id: number;
  readonly buffer: SharedArrayBuffer;
  readonly bytes: Uint8Array;
  /** Holders: the caller, a worker coding it, the hasher reading it, a consumer writing it. */
  refs = 0;
  private readonly home: Slot[];

  constructor(id: number, capacity: number, home: Slot[]) {
    this.id = id;
    this.buffer = new SharedArrayBuffer(capacity);
    this.bytes = new Uint8Array(this.buffer);
    this.home = home;
  }

  hold(): this {
    this.refs++;
    return this;
  }

  release(): void {
    if (this.refs <= 0) return;
    if (--this.refs === 0) this.home.push(this);
  }
}

/**
 * Batch memory for readFilePieces from the slots of the pool a coder starts (the coder
 * sets `pool`): the file is read straight into shared memory, and its chunks are coded
 * and hashed from there instead of being copied into slots. Before a pool starts, and
 * after it closes, the reader uses its own memory.
 */
export class SlotMemory implements BatchMemory {
  pool: WorkerPool | undefined;

  /**
   * Reads of SLOT_BATCH once a pool runs: a slot is held until its last chunk is coded
   * and hashed, so its size adds to the memory in flight.
   */
  get batchBytes(): number | undefined {
    return this.pool ? SLOT_BATCH : undefined;
  }

  take(size: number): Uint8Array | undefined {
    return this.pool?.batch(size);
  }

  done(batch: Uint8Array): void {
    this.pool?.holderOf(batch)?.release();
  }
}
