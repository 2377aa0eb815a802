/**
 * Reading a file's structure piece by piece, for recognisers that follow offsets or walk
 * fields across a whole file (protobuf, FlatBuffers): bytes come through a window of the
 * file re-read as needed, and every byte taken counts against a budget (the header limit,
 * E_LIMIT past it), so a hostile file cannot make a recogniser read or hold more than
 * the caller allowed, whatever its size.
 *
 * The last few windows read are kept: a FlatBuffer's walk goes back and forth between a
 * vector of offsets and the tables they point to (a TFLite model's buffers and tensors),
 * each a window apart, and re-read one at every step with a single window. Which windows
 * are read changes nothing else: the bytes counted are those taken, as before.
 */
import { check } from "../common/errors.ts";
import type { RandomAccessSource } from "../common/source.ts";
import { readAt } from "./regions.ts";

/** Bytes read from the source at a time. */
const WINDOW = 64 << 10;
/** Windows kept, the one used last first. */
const WINDOWS = 4;
/** Bytes a window starts before the position that needs it (a FlatBuffer's vtables precede their tables). */
const BEFORE = 2 << 10;

export class BudgetedWindow {
  readonly source: RandomAccessSource;
  /** Prefix of every error message: the format's name. */
  readonly what: string;
  private budget: number;
  private readonly limit: number;
  /** The window used last (what `held` gives). */
  private buf: Buffer = Buffer.alloc(0);
  private bufStart = 0;
  /** The other windows kept, the one used last first. */
  private readonly older: { buf: Buffer; start: number }[] = [];

  constructor(source: RandomAccessSource, budget: number, what: string) {
    this.source = source;
    this.budget = budget;
    this.limit = budget;
    this.what = what;
  }

  /** Counts `n` bytes against the budget. */
  spend(n: number): void {
    this.budget -= n;
    // Each check's message is built only when it fails: spend() and the readers' checks
    // run for every field of a file, and the messages' numbers cost more than the checks.
    if (!(this.budget >= 0))
      check(
        false,
        "E_LIMIT",
        `${this.what}: more than ${this.limit} bytes of structure to read (the header limit)`,
      );
  }

  /**
   * The window holding [pos, pos + n), which the caller has checked lies inside the
   * file: the buffer and where pos is in it. Valid until the next call; not counted.
   */
  async window(pos: number, n: number, field: string): Promise<{ buf: Buffer; at: number }> {
    if (this.holds(pos, n) < 0) {
      const start = Math.max(0, pos - BEFORE);
      const length = Math.min(Math.max(WINDOW, pos - start + n), this.source.size - start);
      const buf = await readAt(this.source, start, length, `${this.what} ${field}`);
      this.use(buf, start);
      if (this.older.length > WINDOWS - 1) this.older.pop();
    }
    return { buf: this.buf, at: pos - this.bufStart };
  }

  /** Makes `buf` at `start` the window used last, the one it was before first of the older ones. */
  private use(buf: Buffer, start: number): void {
    if (this.buf.length > 0) this.older.unshift({ buf: this.buf, start: this.bufStart });
    this.buf = buf;
    this.bufStart = start;
  }

  /**
   * Where pos is in the buffer `held` when the window read last holds [pos, pos + n), else
   * -1: window() without its promise, for readers that take many small fields (protobuf's
   * varints), where awaiting each one cost more than decoding it. Not counted.
   */
  holds(pos: number, n: number): number {
    if (pos >= this.bufStart && pos + n <= this.bufStart + this.buf.length) return pos - this.bufStart;
    for (let i = 0; i < this.older.length; i++) {
      const w = this.older[i];
      if (pos >= w.start && pos + n <= w.start + w.buf.length) {
        this.older.splice(i, 1);
        this.use(w.buf, w.start);
        return pos - w.start;
      }
    }
    return -1;
  }

  /** The window read last (see holds). */
  get held(): Buffer {
    return this.buf;
  }

  /** take() without a promise when the window holds the bytes; undefined otherwise, nothing counted. */
  heldTake(pos: number, n: number): Buffer | undefined {
    const at = n > WINDOW ? -1 : this.holds(pos, n);
    if (at < 0) return undefined;
    this.spend(n);
    return this.buf.subarray(at, at + n);
  }

  /** The n bytes at pos, counted against the budget. Valid until the next call. */
  async take(pos: number, n: number, field: string): Promise<Buffer> {
    this.spend(n);
    if (n > WINDOW) return readAt(this.source, pos, n, `${this.what} ${field}`);
    const { buf, at } = await this.window(pos, n, field);
    return buf.subarray(at, at + n);
  }
}
