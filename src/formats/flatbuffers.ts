/**
 * A reader for FlatBuffers binaries (flatbuffers.dev, "FlatBuffers internals") over a
 * RandomAccessSource, for recognisers of flatbuffer files (TFLite). Tables, vectors and
 * strings are reached by offsets from where they are referenced, and read through a small
 * window as they are visited, so vectors of data (tensor buffers) are located without
 * being read. The bytes read count against a budget (BudgetedWindow).
 *
 * Every offset is checked before it is followed: whatever it points at must lie inside
 * the file (E_CORRUPT before its start, E_TRUNCATED past its end: the file ends before a
 * structure it points to), a vtable must be at least 4 bytes, even-sized, and name
 * fields inside its table. Offsets to tables, vectors and strings are unsigned and so
 * only point forward, which bounds every walk by the file's size.
 *
 * A walk is a generator (`Walk`) run by `FlatReader.run`: a read the window already holds
 * is answered at once, and only one it does not hold is a request the generator yields,
 * which run() awaits and hands back. The checks, the bytes counted and their order are
 * those of reading each field through a promise, which cost several times the work on
 * files of many small tables (docs/ENGINE.md, Per-file and per-chunk costs of compress).
 */
import { check } from "../common/errors.ts";
import type { RandomAccessSource } from "../common/source.ts";
import { BudgetedWindow } from "./window.ts";

/** A table: where it starts, and where its vtable says each field is. */
export interface FbTable {
  pos: number;
  vtable: number;
  /** Fields the vtable has room for. */
  fields: number;
  /** The table's size in bytes, from the vtable. */
  size: number;
}

/** A read the window does not hold: what a walk yields for FlatReader.run to read. */
export interface FbRead {
  pos: number;
  n: number;
  field: string;
}

/** A walk over a FlatBuffer that returns T (FlatReader.run). */
export type Walk<T> = Generator<FbRead, T, Buffer>;

export class FlatReader {
  readonly source: RandomAccessSource;
  readonly what: string;
  private readonly w: BudgetedWindow;

  constructor(source: RandomAccessSource, budget: number, what: string) {
    this.source = source;
    this.what = what;
    this.w = new BudgetedWindow(source, budget, what);
  }

  /**
   * Checks [pos, pos + n) is inside the file: E_CORRUPT for a position before its start,
   * E_TRUNCATED for one past its end (the file ends before a structure it points to).
   */
  inFile(pos: number, n: number, field: string): void {
    // The messages are built only when a check fails (this runs for every field read).
    if (!(Number.isSafeInteger(pos) && pos >= 0))
      check(false, "E_CORRUPT", `${this.what}: ${field} at ${pos} points before the start of the file`);
    if (!(pos <= this.source.size))
      check(
        false,
        "E_TRUNCATED",
        `${this.what}: ${field} at ${pos} points past the end of the file (${this.source.size} bytes)`,
      );
    if (!(pos + n <= this.source.size))
      check(
        false,
        "E_TRUNCATED",
        `${this.what}: ${field} (${n} bytes at ${pos}) runs past the end of the file (${this.source.size} bytes)`,
      );
  }

  /** Runs a walk: answers the reads it yields from the source, and returns its result. */
  async run<T>(walk: Walk<T>): Promise<T> {
    let step = walk.next();
    while (!step.done) {
      const { pos, n, field } = step.value;
      step = walk.next(await this.w.take(pos, n, field));
    }
    return step.value;
  }

  /** The n bytes at pos, checked to lie in the file and counted against the budget. Valid until the next read. */
  *bytes(pos: number, n: number, field: string): Walk<Buffer> {
    this.inFile(pos, n, field);
    return this.w.heldTake(pos, n) ?? (yield { pos, n, field });
  }

  /**
   * Where the n bytes at pos are in the window's buffer (`held`), checked and counted as
   * bytes() does them; -1, nothing counted, when the window does not hold them. For the
   * scalars, which read them there without a view of their own.
   */
  private heldAt(pos: number, n: number, field: string): number {
    this.inFile(pos, n, field);
    const at = this.w.holds(pos, n);
    if (at >= 0) this.w.spend(n);
    return at;
  }

  *u8(pos: number, field: string): Walk<number> {
    const at = this.heldAt(pos, 1, field);
    return at >= 0 ? this.w.held[at] : (yield { pos, n: 1, field })[0];
  }

  *u16(pos: number, field: string): Walk<number> {
    const at = this.heldAt(pos, 2, field);
    return at >= 0 ? this.w.held.readUInt16LE(at) : (yield { pos, n: 2, field }).readUInt16LE(0);
  }

  *u32(pos: number, field: string): Walk<number> {
    const at = this.heldAt(pos, 4, field);
    return at >= 0 ? this.w.held.readUInt32LE(at) : (yield { pos, n: 4, field }).readUInt32LE(0);
  }

  *i32(pos: number, field: string): Walk<number> {
    const at = this.heldAt(pos, 4, field);
    return at >= 0 ? this.w.held.readInt32LE(at) : (yield { pos, n: 4, field }).readInt32LE(0);
  }

  /** A u64, E_CORRUPT above 2^53. */
  *u64(pos: number, field: string): Walk<number> {
    const v = (yield* this.bytes(pos, 8, field)).readBigUInt64LE(0);
    check(v <= BigInt(Number.MAX_SAFE_INTEGER), "E_CORRUPT", `${this.what}: ${field} ${v} is too large`);
    return Number(v);
  }

  /** The table that the uoffset at `pos` points to. */
  *tableAt(pos: number, field: string): Walk<FbTable> {
    const target = pos + (yield* this.u32(pos, field));
    return yield* this.table(target, field);
  }

  /** The table at `pos`: its vtable read and checked. */
  *table(pos: number, field: string): Walk<FbTable> {
    const vtable = pos - (yield* this.i32(pos, `${field} vtable offset`));
    this.inFile(vtable, 4, `${field} vtable`);
    const vtableSize = yield* this.u16(vtable, `${field} vtable size`);
    const size = yield* this.u16(vtable + 2, `${field} table size`);
    if (!(vtableSize >= 4 && vtableSize % 2 === 0))
      check(false, "E_CORRUPT", `${this.what}: ${field} has a vtable of ${vtableSize} bytes`);
    this.inFile(vtable, vtableSize, `${field} vtable`);
    if (!(size >= 4)) check(false, "E_CORRUPT", `${this.what}: ${field} has a table of ${size} bytes`);
    this.inFile(pos, size, field);
    return { pos, vtable, fields: (vtableSize - 4) / 2, size };
  }

  /** Where field `index` of a table is, or undefined when absent (its default applies). */
  *field(t: FbTable, index: number, width: number, name: string): Walk<number | undefined> {
    if (index >= t.fields) return undefined;
    const offset = yield* this.u16(t.vtable + 4 + 2 * index, `${name} slot`);
    if (offset === 0) return undefined;
    if (!(offset + width <= t.size))
      check(false, "E_CORRUPT", `${this.what}: ${name} (field ${index}) lies outside its table`);
    return t.pos + offset;
  }

  /** A vector field: the position of its first element and its length (undefined when absent). */
  *vector(
    t: FbTable,
    index: number,
    elementSize: number,
    name: string,
  ): Walk<{ start: number; length: number } | undefined> {
    const at = yield* this.field(t, index, 4, name);
    if (at === undefined) return undefined;
    const pos = at + (yield* this.u32(at, name));
    const length = yield* this.u32(pos, `${name} length`);
    this.inFile(pos + 4, length * elementSize, name);
    return { start: pos + 4, length };
  }

  /** A string field as UTF-8 bytes, cut to `max` bytes (undefined when absent). */
  *string(t: FbTable, index: number, name: string, max: number): Walk<Buffer | undefined> {
    const v = yield* this.vector(t, index, 1, name);
    if (v === undefined) return undefined;
    return Buffer.from(yield* this.bytes(v.start, Math.min(v.length, max), name));
  }
}
