/**
 * The writer's side of LONG records (docs/FORMAT.md §6.5): finding chunks that repeat
 * content of the chunks before them, and coding those with that content as a zstd
 * dictionary. Finding them is cheap, so a file without such repeats pays little: every
 * chunk's _anchors_ (the places where one given byte value occurs, found with memchr) are
 * hashed over the 12 bytes that follow and looked up in a table of the anchors of the
 * chunks before; only a chunk with enough hits is coded again, and the smaller record kept.
 */
import { constants, crc32, zstdCompressSync } from "node:zlib";
import { encodeChunkHeader, type IndexEntry } from "../container/format.ts";
import type { EncodedChunk } from "./chunk.ts";
import {
  chunkPlane,
  dictionaryPlane,
  encodeLongParams,
  LONG_CODEC,
  LONG_REACH,
  looksLikeZstdDictionary,
  planeLength,
} from "./long.ts";
import { DELTA_CODEC, DUPE_CODEC } from "./refs.ts";
import type { Reread } from "./refwriter.ts";

/**
 * The byte value anchors start at: as common as any in mantissas, rare as a float16,
 * bfloat16 or float32 high byte (a magnitude over 2^6), as a small integer and in UTF-8 text.
 */
const ANCHOR = 0xd5;
/** Bytes hashed at each anchor: a repeat this long is worth a match. */
const KEY = 12;
/**
 * After an anchor, the search goes on this many bytes later: so memchr skips most of the
 * data, and a chunk has at most chunk size / GAP anchors. Two copies of a repeat fall into
 * step at their first common anchor, so a repeat of a few KiB still shows.
 */
const GAP = 2048;
/** Slots of the anchor table: four for each anchor the last LONG_REACH bytes can hold. */
const TABLE_BITS = 13;
/** A chunk is coded again when at least this many anchors, and this share of them, hit earlier chunks. */
const MIN_HITS = 8;
const MIN_SHARE = 1 / 32;

interface Found {
  /** The earliest content offset of an anchor that a hit found. */
  earliest: number;
}

export class LongMatcher {
  readonly #reread: Reread;
  readonly #level: number;
  readonly #offsets = new Float64Array(1 << TABLE_BITS).fill(-1);
  readonly #checks = new Int32Array(1 << TABLE_BITS);
  /** Chunks (by content offset) whose anchors hit earlier chunks. */
  readonly #found = new Map<number, Found>();
  /** LONG chunks written: chunk number -> first chunk of the dictionary, and of the reach. */
  readonly #first = new Map<number, number>();
  readonly #reach = new Map<number, number>();
  /** Chunks scanned, chunks coded again, LONG records kept. */
  scanned = 0;
  tried = 0;
  kept = 0;

  constructor(reread: Reread, level: number) {
    this.#reread = reread;
    this.#level = level;
  }

  /** Look the chunk's anchors up among the earlier chunks', then add them. Call for every chunk, in order. */
  scan(raw: Uint8Array, rawOffset: number): void {
    this.scanned++;
    const bytes = Buffer.from(raw.buffer, raw.byteOffset, raw.length);
    const offsets = this.#offsets;
    const checks = this.#checks;
    const end = bytes.length - KEY;
    const oldest = rawOffset - LONG_REACH;
    let anchors = 0;
    let hits = 0;
    let earliest = rawOffset;
    for (let p = bytes.indexOf(ANCHOR); p >= 0 && p <= end; p = bytes.indexOf(ANCHOR, p + GAP)) {
      // The KEY = 12 bytes from the anchor on, as three little-endian words, mixed.
      const a = bytes[p] | (bytes[p + 1] << 8) | (bytes[p + 2] << 16) | (bytes[p + 3] << 24);
      const b = bytes[p + 4] | (bytes[p + 5] << 8) | (bytes[p + 6] << 16) | (bytes[p + 7] << 24);
      const c = bytes[p + 8] | (bytes[p + 9] << 8) | (bytes[p + 10] << 16) | (bytes[p + 11] << 24);
      let h =
        Math.imul(a, 0x9e3779b1) ^
        Math.imul(b ^ (b >>> 15), 0x85ebca6b) ^
        Math.imul(c ^ (c >>> 13), 0xc2b2ae35);
      h ^= h >>> 16;
      h = Math.imul(h, 0x2c1b3c6d);
      h ^= h >>> 12;
      const slot = h >>> (32 - TABLE_BITS);
      const at = offsets[slot];
      anchors++;
      if (checks[slot] === h && at >= oldest && at < rawOffset) {
        hits++;
        if (at < earliest) earliest = at;
      }
      checks[slot] = h;
      offsets[slot] = rawOffset + p;
    }
    if (hits >= MIN_HITS && hits >= anchors * MIN_SHARE) this.#found.set(rawOffset, { earliest });
  }

  /**
   * The LONG record for chunk `self` (content offset `rawOffset`, coded as `chunk`) when
   * its scan found repeats before it and the LONG record is smaller; otherwise undefined.
   * `entries` are the index entries of the chunks before it.
   */
  async consider(
    chunk: EncodedChunk,
    self: number,
    rawOffset: number,
    entries: readonly IndexEntry[],
  ): Promise<EncodedChunk | undefined> {
    const found = this.#found.get(rawOffset);
    if (!found) return undefined;
    this.#found.delete(rawOffset);
    if (chunk.codec === DUPE_CODEC || chunk.codec === DELTA_CODEC) return undefined;
    const first = this.#firstFor(found.earliest, self, rawOffset, entries);
    if (first === undefined) return undefined;
    this.tried++;
    const from = entries[first].rawOffset;
    const dictionary = await this.#reread(from, rawOffset - from);
    const raw = await this.#reread(rawOffset, chunk.rawLength);
    // The source may have changed since it was read: then no LONG record.
    if (crc32(raw) !== chunk.rawCrc || dictionary.length !== rawOffset - from) return undefined;
    let best: EncodedChunk | undefined;
    const size = (c: EncodedChunk) => c.header.length + c.payload.length;
    for (const width of widthsFor(chunk)) {
      if (raw.length < width) continue;
      const record = encodeLong(raw, dictionary, width, first, this.#level, chunk.rawCrc);
      if (!record) continue;
      if (size(record) < (best ? size(best) : size(chunk))) best = record;
    }
    if (!best) return undefined;
    this.kept++;
    this.#first.set(self, first);
    this.#reach.set(self, this.#reachOf(first, self));
    return best;
  }

  /** The reach of a dictionary from `first` for chunk `self`: first, or earlier through LONG chunks. */
  #reachOf(first: number, self: number): number {
    let lo = first;
    for (let j = self - 1; j >= first; j--) {
      const r = this.#reach.get(j);
      if (r !== undefined && r < lo) lo = r;
    }
    return lo;
  }

  /**
   * The first chunk of the dictionary: the one holding `earliest`, or a later one so that
   * the reach holds no DUPE or DLTA record and stays within LONG_REACH. Undefined when no
   * chunk before `self` qualifies.
   */
  #firstFor(
    earliest: number,
    self: number,
    rawOffset: number,
    entries: readonly IndexEntry[],
  ): number | undefined {
    let best: number | undefined;
    let lo = self;
    for (let j = self - 1; j >= 0; j--) {
      const e = entries[j];
      if (e.codec === DUPE_CODEC || e.codec === DELTA_CODEC) break;
      lo = Math.min(lo, j, this.#reach.get(j) ?? j);
      if (rawOffset - entries[lo].rawOffset > LONG_REACH) break;
      best = j;
      if (e.rawOffset <= earliest) break;
    }
    return best;
  }
}

/** Plane widths to try: bytes, and the element width the chunk's own codec split by. */
function widthsFor(chunk: EncodedChunk): number[] {
  if (chunk.codec !== "HIER" || chunk.payload.length < 2) return [1];
  // HIER layouts (FORMAT.md §6.2): bf16, f16 and planes2 split 2-byte elements; f32 and planes4 4-byte.
  const layout = chunk.payload[1];
  if (layout === 1 || layout === 2 || layout === 4) return [1, 2];
  if (layout === 3 || layout === 5) return [1, 4];
  return [1];
}

function windowLogFor(length: number): number {
  return Math.min(27, Math.max(10, Math.ceil(Math.log2(Math.max(1, length)))));
}

/** The chunk as a LONG record split `width` ways, or undefined when it is not smaller than the raw bytes. */
export function encodeLong(
  raw: Uint8Array,
  dictionary: Uint8Array,
  width: number,
  first: number,
  level: number,
  rawCrc = crc32(raw),
): EncodedChunk | undefined {
  const frames: Buffer[] = [];
  for (let k = 0; k < width; k++) {
    const plane = chunkPlane(raw, width, k);
    const dict = dictionaryPlane(dictionary, width, k);
    if (looksLikeZstdDictionary(dict)) return undefined;
    frames.push(
      zstdCompressSync(plane, {
        dictionary: dict,
        pledgedSrcSize: planeLength(raw.length, width, k),
        params: {
          [constants.ZSTD_c_compressionLevel]: level,
          [constants.ZSTD_c_checksumFlag]: 0,
          [constants.ZSTD_c_contentSizeFlag]: 1,
          // Matches as far back as the dictionary's start, not only the level's window.
          [constants.ZSTD_c_windowLog]: windowLogFor(dict.length + plane.length),
        },
      }),
    );
  }
  const params = encodeLongParams({ first, width, lengths: frames.map((f) => f.length) });
  const payload = frames.length === 1 ? frames[0] : Buffer.concat(frames);
  if (params.length + payload.length >= raw.length) return undefined;
  return {
    header: encodeChunkHeader(LONG_CODEC, params, raw.length, rawCrc, payload.length),
    payload,
    codec: LONG_CODEC,
    rawLength: raw.length,
    rawCrc,
    owned: false,
  };
}
