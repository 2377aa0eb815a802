import { MmhError } from "./errors.ts";

/** 2^32, and the high word above which a u64 is past Number.MAX_SAFE_INTEGER (2^53 - 1). */
const TWO_32 = 2 ** 32;
const SAFE_HIGH = 2 ** 21 - 1;

/**
 * Read a little-endian u64 as a safe integer; anything larger cannot be a real size here.
 * As two 32-bit words: a BigInt per field cost more than the rest of a record's header.
 * `what` names the field in the error, and may be a function that names it only then.
 */
export function readU64(buf: Buffer, offset: number, what: string | (() => string)): number {
  const high = buf.readUInt32LE(offset + 4);
  if (high > SAFE_HIGH) {
    const name = typeof what === "string" ? what : what();
    throw new MmhError(
      "E_CORRUPT",
      `${name} is ${buf.readBigUInt64LE(offset)}, larger than any supported size`,
    );
  }
  return high * TWO_32 + buf.readUInt32LE(offset);
}

export function writeU64(buf: Buffer, value: number, offset: number): void {
  // Anything but a safe non-negative integer is refused as writeBigUInt64LE refuses it.
  if (!Number.isSafeInteger(value) || value < 0) {
    buf.writeBigUInt64LE(BigInt(value), offset);
    return;
  }
  buf.writeUInt32LE(value % TWO_32, offset);
  buf.writeUInt32LE(Math.floor(value / TWO_32), offset + 4);
}

/**
 * `target.set(source, offset)`, as one memcpy where memory is shared. V8 copies to or from
 * a SharedArrayBuffer (the pool's slots) element by element with relaxed atomic accesses:
 * 64 MiB took 10-27 ms here against 2.4-2.7 ms between ordinary buffers. Buffer#fill with
 * a value exactly as long as the range it fills copies it with memcpy (3.0 ms).
 */
export function copyBytes(target: Uint8Array, source: Uint8Array, offset = 0): void {
  const length = source.length;
  if (
    length >= SHARED_COPY_MIN &&
    source.buffer !== target.buffer &&
    offset >= 0 &&
    offset + length <= target.length &&
    (target.buffer instanceof SharedArrayBuffer || source.buffer instanceof SharedArrayBuffer)
  ) {
    Buffer.from(target.buffer, target.byteOffset + offset, length).fill(source);
    return;
  }
  target.set(source, offset);
}

/** Below this many bytes copyBytes is TypedArray#set: Buffer.from and fill cost more than they save. */
const SHARED_COPY_MIN = 4096;

export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Parse "65536", "64K", "4MiB", "1.5M", "2G" into a byte count. */
export function parseSize(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?$/i.exec(text.trim());
  if (!match) return undefined;
  const scale = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[match[2].toLowerCase()] ?? 1;
  const value = Number(match[1]) * scale;
  return Number.isSafeInteger(value) ? value : Number.isFinite(value) ? Math.floor(value) : undefined;
}

/**
 * An integer with commas between groups of three digits, as `toLocaleString("en-US")`
 * writes it, without that call's first-use cost (loading ICU's number formatting: about
 * 15 ms, which was a fifth of `mmh info`). Other numbers go to toLocaleString.
 */
export function groupDigits(n: number): string {
  if (!Number.isSafeInteger(n)) return n.toLocaleString("en-US");
  const digits = String(Math.abs(n));
  let out = "";
  for (let end = digits.length; end > 0; end -= 3) {
    const start = Math.max(0, end - 3);
    out = out ? `${digits.slice(start, end)},${out}` : digits.slice(start, end);
  }
  return n < 0 ? `-${out}` : out;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

/**
 * Pulls exact-size reads out of an async byte source, holding at most what one read
 * asks for plus one source piece.
 */
export class ByteQueue {
  private readonly iterator: AsyncIterator<Uint8Array>;
  private pieces: Buffer[] = [];
  /** Memory of the queue's own, holding copies of pieces (with `detach`). */
  private readonly owned = new WeakSet<ArrayBufferLike>();
  private buffered = 0;
  private done = false;
  private readonly detach: boolean;
  /** Bytes handed out so far: the stream offset of the next read. */
  position = 0;
  /**
   * Whether the bytes of the last read stay as they are after later reads: always without
   * `detach` (the source keeps its pieces); with it, only when they are the queue's own
   * memory (a copy), not a view of a piece the source may reuse.
   */
  lastReadStays = true;

  /**
   * With `detach`, the queue never keeps a source piece once it asks for the next one:
   * what it still holds is copied first. A source may then reuse a piece's memory as soon
   * as it has handed out a later one (readFilePieces with `recycle`).
   */
  constructor(source: AsyncIterable<Uint8Array>, detach = false) {
    this.iterator = source[Symbol.asyncIterator]();
    this.detach = detach;
  }

  private async fill(n: number): Promise<boolean> {
    while (this.buffered < n && !this.done) {
      if (this.detach) {
        this.pieces = this.pieces.map((piece) => {
          if (this.owned.has(piece.buffer)) return piece;
          const copy = Buffer.allocUnsafeSlow(piece.length);
          copy.set(piece);
          this.owned.add(copy.buffer);
          return copy;
        });
      }
      const next = await this.iterator.next();
      if (next.done) {
        this.done = true;
        break;
      }
      const piece = asBuffer(next.value);
      if (piece.length === 0) continue;
      this.pieces.push(piece);
      this.buffered += piece.length;
    }
    return this.buffered >= n;
  }

  /**
   * Read exactly n bytes, or throw E_TRUNCATED naming what was being read. Bytes that lie
   * in one source piece are a view of it; others are copied once, piece by piece, into
   * memory of their own (readInto), so the queue never holds, or copies, a piece for them.
   */
  async read(n: number, what: string): Promise<Buffer> {
    // With nothing held, the next piece is asked for first: the bytes may all lie in it.
    if (this.buffered === 0 && n > 0) await this.fill(1);
    const first = this.pieces[0];
    if (n === 0 || (first !== undefined && first.length >= n)) return this.take(n);
    // Memory for a read is made before its bytes are there only up to a bound: a hostile
    // length must not allocate more than the source holds.
    if (n > READ_INTO_FRESH_MAX) {
      if (!(await this.fill(n))) {
        throw new MmhError(
          "E_TRUNCATED",
          `unexpected end of data at offset ${this.position + this.buffered} while reading ${what} (needed ${n} bytes at offset ${this.position})`,
        );
      }
      return this.take(n);
    }
    const out = Buffer.allocUnsafe(n);
    await this.readInto(out, what);
    return out;
  }

  /**
   * Read exactly as many bytes as `targets` hold, into them in turn, or throw E_TRUNCATED
   * as read does. Each byte is copied once, straight from the source's piece: a piece is
   * held (and with `detach` copied) only for what is left of it after the last target.
   * After an error the queue's position is undefined.
   */
  async readInto(targets: Uint8Array | readonly Uint8Array[], what: string): Promise<void> {
    const list = targets instanceof Uint8Array ? [targets] : targets;
    let n = 0;
    for (const target of list) n += target.length;
    const start = this.position;
    let done = 0;
    for (const target of list) {
      let filled = 0;
      while (filled < target.length) {
        // Nothing is held here once a piece has been used up, so fill copies nothing.
        if (this.pieces.length === 0 && !(await this.fill(1))) {
          throw new MmhError(
            "E_TRUNCATED",
            `unexpected end of data at offset ${start + done + filled} while reading ${what} (needed ${n} bytes at offset ${start})`,
          );
        }
        const piece = this.pieces[0];
        const want = target.length - filled;
        if (piece.length <= want) {
          piece.copy(target, filled);
          filled += piece.length;
          this.buffered -= piece.length;
          this.pieces.shift();
        } else {
          piece.copy(target, filled, 0, want);
          this.pieces[0] = piece.subarray(want);
          this.buffered -= want;
          filled += want;
        }
      }
      done += filled;
    }
    this.position = start + n;
    // The bytes are in the caller's memory: no later read of the queue touches them.
    this.lastReadStays = true;
  }

  /**
   * Up to n bytes from the read position, without consuming them (fewer only when the
   * source ends first). The bytes are a copy.
   */
  async peek(n: number): Promise<Buffer> {
    await this.fill(n);
    const out = Buffer.allocUnsafe(Math.min(n, this.buffered));
    let filled = 0;
    for (const piece of this.pieces) {
      if (filled === out.length) break;
      filled += piece.copy(out, filled, 0, Math.min(piece.length, out.length - filled));
    }
    return out;
  }

  /**
   * Everything left in the source, a piece at a time. With `detach`, a piece may be
   * recycled by the source once the next one is asked for, as for any read.
   */
  async *rest(): AsyncGenerator<Buffer> {
    while (await this.fill(1)) yield this.take(this.pieces[0].length);
  }

  /** True when the source has no more bytes. */
  async atEnd(): Promise<boolean> {
    return !(await this.fill(1));
  }

  private take(n: number): Buffer {
    this.position += n;
    this.buffered -= n;
    const first = this.pieces[0];
    if (first !== undefined && first.length >= n) {
      this.lastReadStays = !this.detach || this.owned.has(first.buffer);
      if (first.length === n) this.pieces.shift();
      else this.pieces[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    this.lastReadStays = true;
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const piece = this.pieces[0];
      const want = n - filled;
      if (piece.length <= want) {
        piece.copy(out, filled);
        filled += piece.length;
        this.pieces.shift();
      } else {
        piece.copy(out, filled, 0, want);
        this.pieces[0] = piece.subarray(want);
        filled += want;
      }
    }
    return out;
  }

  async return(): Promise<void> {
    await this.iterator.return?.();
  }
}

/** The largest read ByteQueue.read makes memory for before the source has shown its bytes. */
const READ_INTO_FRESH_MAX = 16 << 20;

/**
 * Only memory this large is given back early: smaller buffers may share Node's pool,
 * whose slabs (Buffer.poolSize, 64 KiB in Node 24) cannot be detached: trying threw and
 * caught an exception, about 25 us, for every small zstd frame given back.
 */
const DISPOSE_FROM = 64 << 10;

/**
 * Give a large temporary buffer's memory back now, instead of when the collector next
 * runs: V8 collects ArrayBuffers only once tens of MiB of them have piled up, per thread.
 * Only for memory nothing else uses (a codec's fresh output, already copied or written):
 * a view of a whole ArrayBuffer, or with `whole`, any view of a buffer the caller knows
 * to be private to it (node:zlib returns views into buffers of its own). Shared memory
 * and small buffers (which may share Node's pool) are left alone. The view is empty
 * afterwards.
 */
export function dispose(view: Uint8Array, whole = false): void {
  const buffer = view.buffer;
  if (
    buffer instanceof ArrayBuffer &&
    (whole || (view.byteOffset === 0 && view.byteLength === buffer.byteLength)) &&
    buffer.byteLength >= DISPOSE_FROM &&
    buffer.byteLength > Buffer.poolSize &&
    !buffer.detached
  ) {
    try {
      buffer.transfer(0);
    } catch {
      // Node marks some buffers it shares with native code as not detachable: left to the collector.
    }
  }
}
