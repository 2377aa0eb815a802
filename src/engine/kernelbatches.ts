/**
 * Batch memory for readFilePieces in the HIER kernels' own memory (kernels.ts, holdInput):
 * the one-thread decoder of the mmh command reads a file's records there, and HIER decodes
 * their payloads where they lie instead of copying each Huffman block and stored stream in
 * first (fused.ts). docs/ENGINE.md, Reading into the kernels' memory, has the figures.
 */
import { KERNEL_MIN_BYTES } from "../codecs/hier/fused.ts";
import { kernels } from "../codecs/hier/kernels.ts";
import type { BatchMemory } from "../common/files.ts";

/**
 * Bytes per read: whole records from here on (readFilePieces' batches). The area is fresh
 * memory and only what the batches fill is touched: with 2 MiB batches, three slots of
 * 4 MiB (docs/ENGINE.md, Reading in 1 MiB batches).
 */
const BATCH = 1 << 20;
/** A slot holds a batch of up to BATCH bytes and one record more, that long at most. */
const SLOT = 2 * BATCH;
/** Bytes kept free after each batch: a Huffman block at its end is decoded with 8 bytes after it. */
const SLACK = 64;
/** Batches in turn: the one read ahead, the one consumed and the one before it (see BatchMemory.done). */
const SLOTS = 3;
/** Records larger than this make no input area: its arena would take too much memory. */
const LARGEST_RECORD = 8 << 20;

export class KernelBatches implements BatchMemory {
  readonly batchBytes = BATCH;
  readonly #area: Uint8Array;
  /** Bytes a slot holds: SLOT, or the whole file when it is smaller. */
  readonly #slot: number;
  #turn = 0;
  #closed = false;

  private constructor(area: Uint8Array, slot: number) {
    this.#area = area;
    this.#slot = slot;
  }

  /**
   * Holds the kernels' input area, their memory grown for an arena that decodes a record
   * of `largestRaw` content bytes (the file's largest, from its index) without growing it
   * again; undefined where the kernels do not run, an area is held already, or the records
   * are too large, or no HIER record would load the kernels anyway (`largestHier`, the
   * largest HIER record's content bytes, is under KERNEL_MIN_BYTES). `fileBytes`, the
   * file's size, bounds the slots of a small file.
   */
  static open(largestRaw: number, largestHier: number, fileBytes: number): KernelBatches | undefined {
    if (largestRaw > LARGEST_RECORD || largestHier < KERNEL_MIN_BYTES) return undefined;
    const k = kernels();
    const slot = Math.min(SLOT, fileBytes);
    // HIER's decodeInArena asks at most 3 bytes per content byte, and some hundreds more.
    const area = k?.holdInput(SLOTS * (slot + SLACK), 3 * largestRaw + (64 << 10));
    return area ? new KernelBatches(area, slot) : undefined;
  }

  take(size: number): Uint8Array | undefined {
    if (this.#closed || size > this.#slot) return undefined;
    const at = this.#turn * (this.#slot + SLACK);
    this.#turn = (this.#turn + 1) % SLOTS;
    return this.#area.subarray(at, at + size);
  }

  done(): void {
    // Slots are taken in turn, three apart: a batch's is read into again only after the
    // consumer has asked for a piece of the batch after next, as BatchMemory allows.
  }

  /** Gives the input area back; call once no batch is being read or decoded. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    kernels()?.dropInput();
  }
}
