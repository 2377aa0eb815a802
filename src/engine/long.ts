/**
 * `LONG` records (docs/FORMAT.md §6.5): a chunk whose zstd frames were coded with the
 * content of the chunks right before it as a raw-content dictionary, so LZ sees repeats
 * beyond one chunk. This is the reader's side, shared by the random-access reader and the
 * front-to-back decoder: the params, the reach a record needs, and the decoding.
 */
import { constants, zstdDecompressSync } from "node:zlib";
import { decodePieceSize, zstdFrameLength } from "../codecs/zstd.ts";
import { readU64, writeU64 } from "../common/bytes.ts";
import { crc32 } from "../common/crc.ts";
import { check, MmhError } from "../common/errors.ts";
import { MAX_CHUNK_SIZE } from "../container/format.ts";
import { DELTA_CODEC, DUPE_CODEC } from "./refs.ts";

export const LONG_CODEC = "LONG";
/**
 * The most content before a LONG record that reading it may need: the record's _reach_
 * (FORMAT.md §6.5). A reader of one chunk decodes at most this many bytes more.
 */
export const LONG_REACH = 4 << 20;
/** The byte-plane widths a LONG record may split its chunk into. */
export const LONG_WIDTHS: readonly number[] = [1, 2, 4];

export interface LongParams {
  /** The first chunk of the dictionary: chunks first..self-1, in order. */
  first: number;
  /** Plane width W: byte k of each W-byte element goes to plane k. */
  width: number;
  /** The coded length of each plane's frame. */
  lengths: number[];
}

export function encodeLongParams(p: LongParams): Uint8Array {
  const out = Buffer.alloc(9 + 4 * p.width);
  writeU64(out, p.first, 0);
  out[8] = p.width;
  p.lengths.forEach((n, k) => {
    out.writeUInt32LE(n, 9 + 4 * k);
  });
  return out;
}

/** The record's params, checked against its own fields (not yet against other chunks). */
export function parseLongParams(
  where: string,
  params: Uint8Array,
  payloadLength: number,
  rawLength: number,
  self: number,
): LongParams {
  const buf = Buffer.from(params.buffer, params.byteOffset, params.length);
  check(buf.length >= 9, "E_CORRUPT", `${where}: LONG params under 9 bytes`);
  const width = buf[8];
  check(LONG_WIDTHS.includes(width), "E_CORRUPT", `${where}: LONG plane width ${width} is not 1, 2 or 4`);
  check(buf.length === 9 + 4 * width, "E_CORRUPT", `${where}: LONG params are not ${9 + 4 * width} bytes`);
  check(rawLength <= MAX_CHUNK_SIZE, "E_CORRUPT", `${where}: a LONG record over 64 MiB`);
  check(rawLength >= width, "E_CORRUPT", `${where}: a LONG record shorter than its plane width`);
  const first = readU64(buf, 0, `${where}: LONG first chunk`);
  check(first !== self, "E_CORRUPT", `${where}: a LONG record's dictionary starts at itself`);
  check(
    first < self,
    "E_CORRUPT",
    `${where}: a LONG record's dictionary starts at chunk ${first}, a later one`,
  );
  const lengths: number[] = [];
  let total = 0;
  for (let k = 0; k < width; k++) {
    const n = buf.readUInt32LE(9 + 4 * k);
    lengths.push(n);
    total += n;
  }
  check(total === payloadLength, "E_CORRUPT", `${where}: LONG frame lengths do not add up to the payload`);
  return { first, width, lengths };
}

/** An earlier chunk's index facts, as the reach check needs them. */
export interface ReachEntry {
  codec: string;
  rawOffset: number;
}

/**
 * The first chunk a LONG record (chunk `self`, dictionary from `first`) needs decoded: the
 * smallest of `first` and the reach of every LONG chunk from `first` on. Checked: no
 * DUPE or DLTA record in the reach, and the reach at most LONG_REACH bytes of content
 * before the record (E_CORRUPT), before any record of it is read. `entry(j)` gives an
 * earlier chunk's index facts; `firstOf(j)` the dictionary start of a LONG chunk j (it
 * may read that record).
 */
export async function longReach(
  where: string,
  self: number,
  selfOffset: number,
  first: number,
  entry: (j: number) => ReachEntry,
  firstOf: (j: number) => Promise<number>,
): Promise<number> {
  const within = (lo: number) => {
    const back = selfOffset - entry(lo).rawOffset;
    check(
      back <= LONG_REACH,
      "E_CORRUPT",
      `${where}: a LONG record reaches ${back} bytes back, over the ${LONG_REACH} allowed`,
    );
  };
  let lo = first;
  within(lo);
  for (let j = self - 1; j >= lo; j--) {
    const { codec } = entry(j);
    check(
      codec !== DUPE_CODEC && codec !== DELTA_CODEC,
      "E_CORRUPT",
      `${where}: a LONG record's reach holds chunk ${j}, a ${codec} record`,
    );
    if (codec !== LONG_CODEC) continue;
    const f = await firstOf(j);
    if (f < lo) {
      lo = f;
      within(lo);
    }
  }
  return lo;
}

/** Byte k, k + W, k + 2W, ... of `bytes`, starting at `start`. */
function plane(bytes: Uint8Array, start: number, width: number): Uint8Array {
  if (width === 1) return bytes;
  const n = start < bytes.length ? Math.ceil((bytes.length - start) / width) : 0;
  const out = new Uint8Array(n);
  for (let i = 0, j = start; i < n; i++, j += width) out[i] = bytes[j];
  return out;
}

/** The length of plane k of a chunk of R bytes split W ways. */
export function planeLength(rawLength: number, width: number, k: number): number {
  return k < rawLength ? Math.ceil((rawLength - k) / width) : 0;
}

/**
 * Plane k of a dictionary of L bytes that ends where the chunk begins: the bytes at
 * positions j with j − L ≡ k (mod W), so each dictionary plane lines up with the chunk's.
 */
export function dictionaryPlane(dictionary: Uint8Array, width: number, k: number): Uint8Array {
  return plane(dictionary, (((k + dictionary.length) % width) + width) % width, width);
}

export function chunkPlane(raw: Uint8Array, width: number, k: number): Uint8Array {
  return plane(raw, k, width);
}

/**
 * Whether a dictionary plane starts with zstd's dictionary magic (37 A4 30 EC), which zstd
 * would read as a dictionary header rather than as content: FORMAT.md §6.5 forbids it.
 */
export function looksLikeZstdDictionary(dict: Uint8Array): boolean {
  return dict.length >= 4 && dict[0] === 0x37 && dict[1] === 0xa4 && dict[2] === 0x30 && dict[3] === 0xec;
}

function windowLogFor(length: number): number {
  return Math.min(31, Math.max(10, Math.ceil(Math.log2(Math.max(1, length)))));
}

/**
 * Decode a LONG record's payload with its dictionary (the content of chunks first..self-1)
 * and check it against the record's raw CRC.
 */
export function decodeLong(
  where: string,
  p: LongParams,
  payload: Uint8Array,
  rawLength: number,
  rawCrc: number,
  dictionary: Uint8Array,
): Uint8Array {
  const out = Buffer.allocUnsafe(rawLength);
  let at = 0;
  for (let k = 0; k < p.width; k++) {
    const frame = payload.subarray(at, at + p.lengths[k]);
    at += p.lengths[k];
    const n = planeLength(rawLength, p.width, k);
    const length = zstdFrameLength(frame);
    check(length === frame.length, "E_CORRUPT", `${where}: LONG plane ${k} is not one zstd frame`);
    const dict = dictionaryPlane(dictionary, p.width, k);
    check(
      !looksLikeZstdDictionary(dict),
      "E_CORRUPT",
      `${where}: LONG plane ${k}'s dictionary starts with zstd's dictionary magic`,
    );
    let decoded: Buffer;
    try {
      decoded = zstdDecompressSync(frame, {
        dictionary: dict,
        chunkSize: decodePieceSize(n),
        maxOutputLength: Math.max(1, n),
        params: { [constants.ZSTD_d_windowLogMax]: windowLogFor(n) },
      });
    } catch (error) {
      throw new MmhError("E_CORRUPT", `${where}: LONG plane ${k} does not decode`, { cause: error });
    }
    check(
      decoded.length === n,
      "E_CORRUPT",
      `${where}: LONG plane ${k} decodes to ${decoded.length} bytes, not ${n}`,
    );
    if (p.width === 1) decoded.copy(out);
    else for (let i = 0, j = k; i < n; i++, j += p.width) out[j] = decoded[i];
  }
  check(crc32(out) === rawCrc, "E_CHECKSUM", `${where}: checksum mismatch`);
  return out;
}

/**
 * Decoded content of recent chunks, by content offset: what LONG records are decoded
 * against. Holds at most `limit` bytes, dropping the oldest pieces first. Pieces put here
 * are kept as given: the caller passes memory it will not reuse.
 */
export class RecentContent {
  readonly #limit: number;
  readonly #pieces = new Map<number, Uint8Array>();
  #bytes = 0;

  constructor(limit = 2 * LONG_REACH) {
    this.#limit = limit;
  }

  /** The content [offset, offset + length) when one piece held starts there and covers it. */
  get(offset: number, length: number): Uint8Array | undefined {
    const piece = this.#pieces.get(offset);
    return piece && piece.length >= length ? piece.subarray(0, length) : undefined;
  }

  put(offset: number, content: Uint8Array): void {
    if (content.length > LONG_REACH || this.#pieces.has(offset)) return;
    this.#pieces.set(offset, content);
    this.#bytes += content.length;
    for (const [k, bytes] of this.#pieces) {
      if (this.#bytes <= this.#limit) break;
      this.#pieces.delete(k);
      this.#bytes -= bytes.length;
    }
  }

  clear(): void {
    this.#pieces.clear();
    this.#bytes = 0;
  }
}

/** A chunk record's fields, as LONG decoding needs them of the chunks in a reach. */
export interface LongRecord {
  where: string;
  codec: string;
  params: Uint8Array;
  payload: Uint8Array;
  rawLength: number;
  rawCrc: number;
}

/** How a reader gives LONG decoding the chunks before a record. */
export interface LongSource {
  /** An earlier chunk's index facts (and raw length). */
  entry(j: number): ReachEntry & { rawLength: number };
  /** Chunk j's record, checked against its entry, not decoded. */
  record(j: number): Promise<LongRecord>;
  /** Decode an ordinary record (not DUPE, DLTA or LONG), checked against its raw CRC. */
  decode(record: LongRecord): Uint8Array;
  /** Contents already decoded, reused and added to. */
  recent: RecentContent;
}

/**
 * The content of LONG record `self`: the chunks of its reach are decoded in order (or
 * taken from `recent`), each LONG one against the chunks before it, then the record
 * against its dictionary.
 */
export async function resolveLong(src: LongSource, self: number, record: LongRecord): Promise<Uint8Array> {
  const { where } = record;
  const p = parseLongParams(where, record.params, record.payload.length, record.rawLength, self);
  const records = new Map<number, LongRecord>();
  const fetch = async (j: number) => {
    let r = records.get(j);
    if (!r) {
      r = await src.record(j);
      records.set(j, r);
    }
    return r;
  };
  const selfOffset = src.entry(self).rawOffset;
  const firstOf = async (j: number) => {
    const r = await fetch(j);
    return parseLongParams(r.where, r.params, r.payload.length, r.rawLength, j).first;
  };
  const lo = await longReach(where, self, selfOffset, p.first, (j) => src.entry(j), firstOf);
  const contents: Uint8Array[] = [];
  for (let j = lo; j < self; j++) {
    const e = src.entry(j);
    let content = src.recent.get(e.rawOffset, e.rawLength);
    if (!content) {
      const r = await fetch(j);
      if (r.codec === LONG_CODEC) {
        const q = parseLongParams(r.where, r.params, r.payload.length, r.rawLength, j);
        content = decodeLong(
          r.where,
          q,
          r.payload,
          r.rawLength,
          r.rawCrc,
          joinDictionary(contents.slice(q.first - lo)),
        );
      } else content = src.decode(r);
      src.recent.put(e.rawOffset, content);
    }
    contents.push(content);
  }
  return decodeLong(
    where,
    p,
    record.payload,
    record.rawLength,
    record.rawCrc,
    joinDictionary(contents.slice(p.first - lo)),
  );
}

/** The dictionary of a LONG record: the contents of chunks first..self-1, end to end. */
export function joinDictionary(parts: readonly Uint8Array[]): Uint8Array {
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}
