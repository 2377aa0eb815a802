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
    check(
      Number.isSafeInteger(pos) && pos >= 0,
      "E_CORRUPT",
      `${this.what}: ${field} at ${pos} points before the start of the file`,
    );
    check(
      pos <= this.source.size,
      "E_TRUNCATED",
      `${this.what}: ${field} at ${pos} points past the end of the file (${this.source.size} bytes)`,
    );
    check(
      pos + n <= this.source.size,
      "E_TRUNCATED",
      `${this.what}: ${field} (${n} bytes at ${pos}) runs past the end of the file (${this.source.size} bytes)`,
    );
  }

  /** The n bytes at pos, checked to lie in the file and counted against the budget. Valid until the next read. */
  async bytes(pos: number, n: number, field: string): Promise<Buffer> {
    this.inFile(pos, n, field);
    return this.w.take(pos, n, field);
  }

  async u8(pos: number, field: string): Promise<number> {
    return (await this.bytes(pos, 1, field))[0];
  }

  async u16(pos: number, field: string): Promise<number> {
    return (await this.bytes(pos, 2, field)).readUInt16LE(0);
  }

  async u32(pos: number, field: string): Promise<number> {
    return (await this.bytes(pos, 4, field)).readUInt32LE(0);
  }

  async i32(pos: number, field: string): Promise<number> {
    return (await this.bytes(pos, 4, field)).readInt32LE(0);
  }

  /** A u64, E_CORRUPT above 2^53. */
  async u64(pos: number, field: string): Promise<number> {
    const v = (await this.bytes(pos, 8, field)).readBigUInt64LE(0);
    check(v <= BigInt(Number.MAX_SAFE_INTEGER), "E_CORRUPT", `${this.what}: ${field} ${v} is too large`);
    return Number(v);
  }

  /** The table that the uoffset at `pos` points to. */
  async tableAt(pos: number, field: string): Promise<FbTable> {
    const target = pos + (await this.u32(pos, field));
    return this.table(target, field);
  }

  /** The table at `pos`: its vtable read and checked. */
  async table(pos: number, field: string): Promise<FbTable> {
    const vtable = pos - (await this.i32(pos, `${field} vtable offset`));
    this.inFile(vtable, 4, `${field} vtable`);
    const vtableSize = await this.u16(vtable, `${field} vtable size`);
    const size = await this.u16(vtable + 2, `${field} table size`);
    check(
      vtableSize >= 4 && vtableSize % 2 === 0,
      "E_CORRUPT",
      `${this.what}: ${field} has a vtable of ${vtableSize} bytes`,
    );
    this.inFile(vtable, vtableSize, `${field} vtable`);
    check(size >= 4, "E_CORRUPT", `${this.what}: ${field} has a table of ${size} bytes`);
    this.inFile(pos, size, field);
    return { pos, vtable, fields: (vtableSize - 4) / 2, size };
  }

  /** Where field `index` of a table is, or undefined when absent (its default applies). */
  async field(t: FbTable, index: number, width: number, name: string): Promise<number | undefined> {
    if (index >= t.fields) return undefined;
    const offset = await this.u16(t.vtable + 4 + 2 * index, `${name} slot`);
    if (offset === 0) return undefined;
    check(
      offset + width <= t.size,
      "E_CORRUPT",
      `${this.what}: ${name} (field ${index}) lies outside its table`,
    );
    return t.pos + offset;
  }

  /** A vector field: the position of its first element and its length (undefined when absent). */
  async vector(
    t: FbTable,
    index: number,
    elementSize: number,
    name: string,
  ): Promise<{ start: number; length: number } | undefined> {
    const at = await this.field(t, index, 4, name);
    if (at === undefined) return undefined;
    const pos = at + (await this.u32(at, name));
    const length = await this.u32(pos, `${name} length`);
    this.inFile(pos + 4, length * elementSize, name);
    return { start: pos + 4, length };
  }

  /** A string field as UTF-8 bytes, cut to `max` bytes (undefined when absent). */
  async string(t: FbTable, index: number, name: string, max: number): Promise<Buffer | undefined> {
    const v = await this.vector(t, index, 1, name);
    if (v === undefined) return undefined;
    return Buffer.from(await this.bytes(v.start, Math.min(v.length, max), name));
  }
}
