/**
 * A forward cursor over a RandomAccessSource for headers that must be walked field by
 * field (GGUF metadata, pickle streams in a legacy torch file). It reads windows of the
 * file as needed, so a header of any size costs at most one window plus the largest
 * single field in memory. Every read is checked against the end of the file (E_TRUNCATED)
 * and against a header cap (E_LIMIT) before anything is allocated.
 */
import { check } from "../common/errors.ts";
import type { RandomAccessSource } from "../common/source.ts";
import { readAt } from "./regions.ts";

const WINDOW = 1 << 20;

export class Cursor {
  readonly source: RandomAccessSource;
  /** Reads must end at or before this offset (the header cap), else E_LIMIT. */
  readonly limit: number;
  readonly what: string;
  pos: number;
  private buf: Buffer = Buffer.alloc(0);
  private bufStart = 0;

  constructor(source: RandomAccessSource, start: number, limit: number, what: string) {
    this.source = source;
    this.pos = start;
    this.limit = limit;
    this.what = what;
  }

  get remaining(): number {
    return this.source.size - this.pos;
  }

  /** Check that n more bytes exist (and are within the cap) without reading them. */
  ensure(n: number | bigint, field: string): number {
    check(
      BigInt(n) <= BigInt(this.remaining),
      "E_TRUNCATED",
      `${this.what}: ${field} (${n} bytes at offset ${this.pos}) runs past the end of the file (${this.source.size} bytes)`,
    );
    const count = Number(n);
    check(
      this.pos + count <= this.limit,
      "E_LIMIT",
      `${this.what}: header passes the limit of ${this.limit} bytes while reading ${field}`,
    );
    return count;
  }

  async bytes(n: number | bigint, field: string): Promise<Buffer> {
    const count = this.ensure(n, field);
    const end = this.pos + count;
    if (!(this.bufStart <= this.pos && end <= this.bufStart + this.buf.length)) {
      const length = Math.min(
        Math.max(count, WINDOW),
        this.source.size - this.pos,
        Math.max(this.limit - this.pos, count),
      );
      this.buf = await readAt(this.source, this.pos, length, `${this.what} ${field}`);
      this.bufStart = this.pos;
    }
    const out = this.buf.subarray(this.pos - this.bufStart, end - this.bufStart);
    this.pos = end;
    return out;
  }

  skip(n: number | bigint, field: string): void {
    this.pos += this.ensure(n, field);
  }

  async u8(field: string): Promise<number> {
    return (await this.bytes(1, field))[0];
  }

  async u32(field: string): Promise<number> {
    return (await this.bytes(4, field)).readUInt32LE(0);
  }

  async u64(field: string): Promise<bigint> {
    return (await this.bytes(8, field)).readBigUInt64LE(0);
  }
}
