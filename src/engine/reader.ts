import { periodicFill } from "../codecs/p251.ts";
import { check, toMmhError } from "../common/errors.ts";
import type { RandomAccessSource } from "../common/source.ts";
import {
  CHUNK_HEADER_SIZE,
  checkChunkHeader,
  HEADER_FIXED_SIZE,
  type Header,
  INDEX_FIXED_SIZE,
  type Index,
  type IndexEntry,
  MAX_CHUNK_SIZE,
  parseChunkHeader,
  parseHeader,
  parseHeaderFixed,
  parseIndex,
  parseTrailer,
  TRAILER_SIZE,
  type Trailer,
} from "../container/format.ts";
import { type Footer, parseFooter } from "../container/metadata.ts";
import { decodeChunk, runPatternOf } from "./chunk.ts";
import { LONG_CODEC, type LongSource, RecentContent, resolveLong } from "./long.ts";
import { BaseSet, DELTA_CODEC, DUPE_CODEC, decodeDelta, dupeTarget, isSpecial } from "./refs.ts";

/** Bytes per piece when a long run is read in pieces. */
const RUN_PIECE = 16 << 20;
/** Record bytes asked of a source's readMany at a time: what a read holds before decoding. */
const READ_WINDOW = 32 << 20;

/** A chunk record, checked against its index entry. */
interface ParsedRecord {
  where: string;
  codec: string;
  params: Uint8Array;
  payload: Uint8Array;
  rawLength: number;
  rawCrc: number;
  /** A DUPE or DLTA record's content, resolved (its target's, or from the base). */
  resolved?: Uint8Array;
}

export interface ChunkInfo extends IndexEntry {
  /** Bytes the whole record takes in the file: header, params and payload. */
  recordLength: number;
}

/**
 * Random access to an .mmh file through its index: the header, trailer and index are
 * read and validated on open; chunks are read and decoded only when asked for.
 */
export class MmhReader {
  readonly source: RandomAccessSource;
  readonly header: Header;
  readonly trailer: Trailer;
  readonly index: Index;
  /** The footer metadata, checked (FORMAT.md §4). */
  readonly footer: Footer;
  readonly chunks: ChunkInfo[];
  /** The base DLTA records are decoded against (FORMAT.md §6.4). */
  readonly bases: BaseSet;
  /** Recently decoded chunks, for LONG records (FORMAT.md §6.5), so reading on is linear. */
  readonly #long: LongSource;

  private constructor(
    source: RandomAccessSource,
    header: Header,
    trailer: Trailer,
    index: Index,
    base: string | undefined,
  ) {
    this.source = source;
    this.bases = new BaseSet(base);
    this.header = header;
    this.trailer = trailer;
    this.index = index;
    this.footer = parseFooter(index.footer, trailer.rawLength);
    this.chunks = index.entries.map((entry, i) => ({
      ...entry,
      recordLength: (index.entries[i + 1]?.recordOffset ?? trailer.indexOffset) - entry.recordOffset,
    }));
    this.#long = {
      entry: (j) => this.chunks[j],
      record: async (j) => {
        const entry = this.recordEntry(j);
        return this.parseRecord(j, await this.source.read(entry.recordOffset, entry.recordLength));
      },
      decode: decodeRecord,
      recent: new RecentContent(),
    };
  }

  static async open(source: RandomAccessSource, base?: string): Promise<MmhReader> {
    try {
      const size = source.size;
      check(size >= HEADER_FIXED_SIZE, "E_TRUNCATED", "file is shorter than an .mmh header");
      const fixed = await source.read(0, HEADER_FIXED_SIZE);
      const { metadataLength } = parseHeaderFixed(fixed);
      check(
        HEADER_FIXED_SIZE + metadataLength + INDEX_FIXED_SIZE + TRAILER_SIZE <= size,
        "E_TRUNCATED",
        "file is too short for its header, index and trailer",
      );
      const header = parseHeader(fixed, await source.read(HEADER_FIXED_SIZE, metadataLength));
      const trailer = parseTrailer(await source.read(size - TRAILER_SIZE, TRAILER_SIZE));
      check(
        trailer.indexOffset >= header.size &&
          trailer.indexLength >= INDEX_FIXED_SIZE &&
          trailer.indexOffset + trailer.indexLength === size - TRAILER_SIZE,
        "E_CORRUPT",
        "trailer's index position does not fit the file",
      );
      const block = await source.read(trailer.indexOffset, trailer.indexLength);
      const index = parseIndex(
        block.subarray(0, INDEX_FIXED_SIZE),
        block.subarray(INDEX_FIXED_SIZE),
        header.size,
        trailer.indexOffset,
      );
      check(
        index.entries.length === trailer.chunkCount,
        "E_CORRUPT",
        "trailer chunk count differs from the index",
      );
      const last = index.entries.at(-1);
      check(
        (last ? last.rawOffset + last.rawLength : 0) === trailer.rawLength,
        "E_CORRUPT",
        "trailer content length differs from the index",
      );
      return new MmhReader(source, header, trailer, index, base);
    } catch (error) {
      await source.close();
      throw toMmhError(error);
    }
  }

  get rawLength(): number {
    return this.trailer.rawLength;
  }

  /** Read, check and decode chunk i. */
  async readChunk(i: number): Promise<Uint8Array> {
    const record = await this.readRecord(i);
    check(
      record.rawLength <= MAX_CHUNK_SIZE,
      "E_LIMIT",
      `${record.where}: a run of ${record.rawLength} bytes is read with readRange, not whole`,
    );
    return decodeRecord(record);
  }

  /** Read chunk i's record and check it against its index entry; a DUPE or DLTA record is resolved. */
  private async readRecord(i: number): Promise<ParsedRecord> {
    const entry = this.recordEntry(i);
    return this.resolve(
      i,
      this.parseRecord(i, await this.source.read(entry.recordOffset, entry.recordLength)),
    );
  }

  /**
   * A DUPE record's content is its target's, read through the index (one more record,
   * never a chain: FORMAT.md §6.3); a DLTA record's is decoded against the base.
   */
  private async resolve(i: number, record: ParsedRecord): Promise<ParsedRecord> {
    if (record.codec === LONG_CODEC) return { ...record, resolved: await resolveLong(this.#long, i, record) };
    if (!isSpecial(record.codec)) return record;
    if (record.codec === DELTA_CODEC) return { ...record, resolved: await decodeDelta(record, this.bases) };
    const t = dupeTarget(record, i, (k) => this.chunks[k]);
    const target = await this.readRecord(t);
    check(target.codec !== DUPE_CODEC, "E_CORRUPT", `${record.where}: target is a DUPE record`);
    return { ...record, resolved: target.resolved ?? decodeRecord(target) };
  }

  /** Chunk i's index entry, checked to hold at least a record header. */
  private recordEntry(i: number): ChunkInfo {
    const entry = this.chunks[i];
    check(entry !== undefined, "E_NOT_FOUND", `no chunk ${i}`);
    check(
      entry.recordLength >= CHUNK_HEADER_SIZE,
      "E_CORRUPT",
      `chunk ${i} at offset ${entry.recordOffset}: record overlaps the next one`,
    );
    return entry;
  }

  /** Chunk i's record bytes, checked against its index entry. */
  private parseRecord(i: number, record: Buffer): ParsedRecord {
    const entry = this.chunks[i];
    const where = `chunk ${i} at offset ${entry.recordOffset}`;
    const fixed = record.subarray(0, CHUNK_HEADER_SIZE);
    const header = parseChunkHeader(fixed, where);
    check(
      CHUNK_HEADER_SIZE + header.paramsLength + header.storedLength === entry.recordLength,
      "E_CORRUPT",
      `${where}: record length differs from the index`,
    );
    const params = record.subarray(CHUNK_HEADER_SIZE, CHUNK_HEADER_SIZE + header.paramsLength);
    checkChunkHeader(fixed, params, header, where);
    check(
      header.rawLength === entry.rawLength && header.codec === entry.codec && header.rawCrc === entry.rawCrc,
      "E_CORRUPT",
      `${where}: record differs from its index entry`,
    );
    const payload = record.subarray(CHUNK_HEADER_SIZE + header.paramsLength);
    return {
      where,
      codec: header.codec,
      params,
      payload,
      rawLength: header.rawLength,
      rawCrc: header.rawCrc,
    };
  }

  /**
   * The checked records of chunks first..last, in order. A source with readMany (HTTP)
   * is asked for up to READ_WINDOW bytes of records at a time, so adjacent records are
   * one request; any other source is read record by record, as before.
   */
  private async *records(first: number, last: number): AsyncGenerator<[number, ParsedRecord]> {
    const readMany = this.source.readMany?.bind(this.source);
    for (let i = first; i <= last; ) {
      if (!readMany) {
        yield [i, await this.readRecord(i)];
        i++;
        continue;
      }
      const ranges = [];
      let bytes = 0;
      for (let j = i; j <= last; j++) {
        const entry = this.recordEntry(j);
        if (ranges.length > 0 && bytes + entry.recordLength > READ_WINDOW) break;
        ranges.push({ offset: entry.recordOffset, length: entry.recordLength });
        bytes += entry.recordLength;
      }
      const buffers = await readMany(ranges);
      for (const buffer of buffers) {
        yield [i, await this.resolve(i, this.parseRecord(i, buffer))];
        i++;
      }
    }
  }

  /** Bytes [start, start + out.length) of chunk i, from its checked record, into out. */
  private decodeInto(i: number, record: ParsedRecord, start: number, out: Uint8Array): void {
    if (this.chunks[i].rawLength <= MAX_CHUNK_SIZE) {
      const raw = decodeRecord(record);
      out.set(raw.subarray(start, start + out.length));
      return;
    }
    // A run longer than a chunk is written from its pattern without producing the rest
    // of it; its structure is checked, but its CRC-32 (which covers the whole run) only
    // by a full decode or verify.
    const pattern = runPatternOf(record.params, record.payload, record.rawLength, record.where);
    periodicFill(pattern, start % pattern.length, out);
  }

  /** The first chunk whose raw range contains `offset` (binary search over the index). */
  chunkAt(offset: number): number {
    let lo = 0;
    let hi = this.chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.chunks[mid].rawOffset <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Decode `length` bytes from content offset `offset`, touching only the chunks that hold them. */
  async readRange(
    offset: number,
    length: number,
    maxOutputBytes = Number.MAX_SAFE_INTEGER,
  ): Promise<Uint8Array> {
    check(
      Number.isSafeInteger(offset) && offset >= 0,
      "E_BAD_OPTION",
      `offset must be a non-negative integer, got ${offset}`,
    );
    check(
      Number.isSafeInteger(length) && length >= 0,
      "E_BAD_OPTION",
      `length must be a non-negative integer, got ${length}`,
    );
    check(
      offset + length <= this.rawLength,
      "E_NOT_FOUND",
      `range ${offset}+${length} is past the end of the content (${this.rawLength} bytes)`,
    );
    check(
      length <= maxOutputBytes,
      "E_LIMIT",
      `range of ${length} bytes is over the limit of ${maxOutputBytes}`,
    );
    const out = Buffer.allocUnsafe(length);
    if (length === 0) return out;
    let filled = 0;
    for await (const [i, record] of this.records(this.chunkAt(offset), this.chunkAt(offset + length - 1))) {
      const chunk = this.chunks[i];
      const start = offset + filled - chunk.rawOffset;
      const take = Math.min(chunk.rawLength - start, length - filled);
      this.decodeInto(i, record, start, out.subarray(filled, filled + take));
      filled += take;
    }
    return out;
  }

  /**
   * The bytes [offset, offset + length) as pieces of at most one chunk (runs in 16 MiB
   * pieces), decoding each chunk once: memory stays at one chunk however long the range.
   */
  async *rangePieces(offset: number, length: number): AsyncGenerator<Uint8Array> {
    check(
      offset + length <= this.rawLength,
      "E_NOT_FOUND",
      `range ${offset}+${length} is past the end of the content`,
    );
    if (length === 0) return;
    const end = offset + length;
    for await (const [i, record] of this.records(this.chunkAt(offset), this.chunkAt(end - 1))) {
      const chunk = this.chunks[i];
      const chunkEnd = chunk.rawOffset + chunk.rawLength;
      for (let pos = Math.max(offset, chunk.rawOffset); pos < Math.min(end, chunkEnd); ) {
        const stop = Math.min(end, chunkEnd, chunk.rawLength > MAX_CHUNK_SIZE ? pos + RUN_PIECE : chunkEnd);
        const piece = Buffer.allocUnsafe(stop - pos);
        this.decodeInto(i, record, pos - chunk.rawOffset, piece);
        yield piece;
        pos = stop;
      }
    }
  }

  async close(): Promise<void> {
    this.#long.recent.clear();
    await this.bases.close();
    return this.source.close();
  }
}

/** A checked record's content: decoded, its CRC-32 checked. */
function decodeRecord(record: ParsedRecord): Uint8Array {
  if (record.resolved) return record.resolved;
  return decodeChunk(
    record.codec,
    record.params,
    record.payload,
    record.rawLength,
    record.rawCrc,
    record.where,
  );
}
