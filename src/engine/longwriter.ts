/**
 * The writer's side of LONG records (docs/FORMAT.md §6.5): finding chunks that repeat
 * content of the chunks before them, and coding those with that content as a zstd
 * dictionary. Finding them is cheap, so a file without such repeats pays little: every
 * chunk's _anchors_ (the places where one given byte value occurs, found with memchr) are
 * hashed over the 12 bytes that follow and looked up in a table of the anchors of the
 * chunks before. A chunk with enough hits has them checked against the earlier content
 * and extended into the repeats they belong to; only when those cover a good share of the
 * chunk is it coded again (once, at one plane width), and the smaller record kept.
 */
import { constants, zstdCompressSync } from "node:zlib";
import { zstdCodec } from "../codecs/zstd.ts";
import { crc32 } from "../common/crc.ts";
import { MmhError } from "../common/errors.ts";
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
/** A chunk's hits are checked when at least this many anchors, and this share of them, hit earlier chunks. */
const MIN_HITS = 8;
const MIN_SHARE = 1 / 32;
/**
 * An anchor whose KEY bytes hold fewer distinct values than this is no hit (checked only
 * for anchors found in the table, so the scan of a file without repeats pays nothing for
 * it): runs and near-constant content (zero-filled tensors, padding) repeat everywhere,
 * and the chunk's own codec already codes them in a few bytes, so such hits gain nothing.
 */
const MIN_DISTINCT = 5;
/**
 * A chunk is coded again only when its hits, checked against the dictionary's content,
 * hold: at least MIN_HITS of them, and MIN_SHARE of its anchors, lie in repeats of at least
 * MIN_REPEAT bytes, or the repeats cover this share of the chunk. Hits that fail the check
 * (hash collisions, copies the dictionary cannot reach) cost no trial.
 */
const MIN_COVER = 1 / 8;
/** A checked hit counts only when its repeat is at least this long. */
const MIN_REPEAT = 64;
/**
 * When the repeats cover at least this share of a chunk, it is coded again as bytes
 * (width 1) and at a level of at most FAST_LEVEL: the repeats carry the record, a plane
 * split only cuts them into more pieces, and a higher level codes only the bytes between
 * them a little better while loading a dictionary of a few MiB at level 19 takes about
 * half a second.
 */
const MOSTLY_COVERED = 1 / 2;
const FAST_LEVEL = 3;
/**
 * brotli.ts's codec id, written out: importing that module here changed how the command
 * is bundled, and a small compress loaded worker_threads and net (test/startup.test.ts).
 */
const BROTLI_ID = "BROT";

interface Found {
  /** The anchors that hit: position in the chunk, and content offset of the earlier anchor. */
  hits: number[];
  /** The anchors looked up. */
  anchors: number;
}

/**
 * Anchor tables of matchers that have released theirs, reused by the next: a table is
 * 128 KiB, which a fresh allocation maps, faults in page by page and hands back to the
 * system at a collection, every compression. A few at most are kept, for compressions that
 * run at the same time in one process.
 */
const spareTables: Float64Array[] = [];
const SPARE_TABLES = 4;

function takeTable(): Float64Array {
  const table = spareTables.pop();
  if (!table) return new Float64Array(2 << TABLE_BITS);
  table.fill(0);
  return table;
}

/*
 * The scan's loops are functions of their own, of typed arrays and numbers: optimised code
 * of a method would check the matcher's map, which dies with the last matcher at a
 * collection between compressions, and the code with it, so each compression after one
 * scanned unoptimised (docs/ENGINE.md, Long-range matches).
 */

/**
 * The chunk's anchors into `found` as (position, hash) pairs, and how many: `found` must
 * hold one pair per GAP bytes of the chunk and one more.
 */
function findAnchors(bytes: Buffer, found: Int32Array): number {
  const end = bytes.length - KEY;
  let anchors = 0;
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
    found[2 * anchors] = p;
    found[2 * anchors + 1] = h;
    anchors++;
  }
  return anchors;
}

/** The first `count` anchors of `found`, of the chunk at content offset `rawOffset`, into the table. */
function addAnchors(table: Float64Array, found: Int32Array, count: number, rawOffset: number): void {
  for (let i = 0; i < count; i++) {
    const h = found[2 * i + 1];
    const slot = h >>> (32 - TABLE_BITS);
    table[2 * slot] = h;
    table[2 * slot + 1] = rawOffset + found[2 * i] + 1;
  }
}

/**
 * Look the chunk's `count` anchors up in the table and put them in: the hits (position in
 * the chunk, content offset of the earlier anchor), or undefined when none hit. First the
 * anchors and their hashes (findAnchors), then the table: the table's lines are mostly
 * out of cache by the next chunk (its codec's own tables push them out), and lookups made
 * one after another, apart from the search, are loads the processor overlaps.
 */
function lookUp(
  table: Float64Array,
  found: Int32Array,
  count: number,
  bytes: Buffer,
  rawOffset: number,
): number[] | undefined {
  const oldest = rawOffset - LONG_REACH;
  // Made at the first hit: most chunks of a file without repeats have none.
  let hits: number[] | undefined;
  for (let i = 0; i < count; i++) {
    const p = found[2 * i];
    const h = found[2 * i + 1];
    const slot = h >>> (32 - TABLE_BITS);
    const at = table[2 * slot + 1] - 1;
    if (table[2 * slot] === h && at >= oldest && at < rawOffset && distinct(bytes, p) >= MIN_DISTINCT) {
      hits ??= [];
      hits.push(p, at);
    }
    table[2 * slot] = h;
    table[2 * slot + 1] = rawOffset + p + 1;
  }
  return hits;
}

export class LongMatcher {
  readonly #reread: Reread;
  readonly #level: number;
  /** Whether every chunk coded by plain zstd is also tried against the content before it (whole). */
  readonly #whole: boolean;
  /**
   * The anchor table, two numbers per slot: the hash that filled it, and the content
   * offset of its anchor plus one (0 for an empty slot), side by side so that a lookup
   * touches one cache line. Taken at the second chunk scanned (from the spare tables, or
   * made): the first has no earlier chunk to look anything up in, so a file of one chunk
   * never needs one. Given back by release().
   */
  #table: Float64Array | undefined;
  /**
   * The first chunk's anchors wait in #anchors (position, hash) until the second chunk,
   * which puts them into the table: this many of them, and the chunk's content offset.
   */
  #pendingCount = -1;
  #pendingOffset = 0;
  /** Anchors found in the chunks scanned so far: while none, nothing can hit. */
  #anchorsBefore = 0;
  #released = false;
  /** The current chunk's anchors (position, hash), reused from chunk to chunk. */
  #anchors = new Int32Array(2 * 257);
  /** Chunks (by content offset) whose anchors hit earlier chunks. */
  readonly #found = new Map<number, Found>();
  /** LONG chunks written: chunk number -> first chunk of the dictionary, and of the reach. */
  readonly #first = new Map<number, number>();
  readonly #reach = new Map<number, number>();
  /** Chunks scanned, anchors that hit an earlier chunk's, chunks coded again, LONG records kept. */
  scanned = 0;
  /** Chunks whose anchors were searched for (not a last chunk with no anchors before it). */
  searched = 0;
  hits = 0;
  tried = 0;
  kept = 0;
  /** Chunks tried, and LONG records kept, by the whole-content trial (`whole`). */
  wholeTried = 0;
  wholeKept = 0;

  /**
   * `whole` (the ratio goal): a chunk its own codec coded as one LZ stream (ZSTD or
   * BROT) and that no anchored repeat made a LONG record is also coded, at `level`, with all the
   * content before it that a LONG record may reach as its dictionary, and that record
   * kept when smaller. Text-like content (dictionaries, markup, executables) repeats
   * words and phrases across chunks that the anchors, 2 KiB apart, do not sample.
   */
  constructor(reread: Reread, level: number, whole = false) {
    this.#reread = reread;
    this.#level = level;
    this.#whole = whole;
  }

  /**
   * Give the anchor table back for the next matcher to reuse: call when no more chunks
   * will be scanned (the matcher scans no more after it).
   */
  release(): void {
    const table = this.#table;
    this.#table = undefined;
    this.#released = true;
    if (table && spareTables.length < SPARE_TABLES) spareTables.push(table);
  }

  /**
   * Look the chunk's anchors up among the earlier chunks', then add them. Call for every
   * chunk, in order; `last` when no chunk follows: a last chunk with no anchors before it
   * (the only chunk, or one after a header without any) has nothing to hit and nothing
   * after it to be hit by, so it is not searched at all.
   */
  scan(raw: Uint8Array, rawOffset: number, last = false): void {
    if (this.#released) throw new MmhError("E_INTERNAL", "a long-range matcher scanned after its release");
    this.scanned++;
    if (last && this.#anchorsBefore === 0) return;
    this.searched++;
    const bytes = Buffer.from(raw.buffer, raw.byteOffset, raw.length);
    let table = this.#table;
    let found = this.#anchors;
    if (this.#pendingCount >= 0) {
      // The second chunk: the first one's anchors, still in #anchors, go into the table.
      table = this.#table = takeTable();
      addAnchors(table, found, this.#pendingCount, this.#pendingOffset);
      this.#pendingCount = -1;
    }
    // Room for every anchor the chunk can hold: one per GAP bytes, and one more.
    const most = 2 * (Math.floor(bytes.length / GAP) + 1);
    if (found.length < most) found = this.#anchors = new Int32Array(Math.max(most, 2 * found.length));
    const anchors = findAnchors(bytes, found);
    this.#anchorsBefore += anchors;
    if (!table) {
      // The first chunk: nothing before it to hit. Its anchors wait in #anchors.
      this.#pendingCount = anchors;
      this.#pendingOffset = rawOffset;
      return;
    }
    const hits = lookUp(table, found, anchors, bytes, rawOffset);
    if (!hits) return;
    const hitCount = hits.length >> 1;
    this.hits += hitCount;
    if (hitCount >= MIN_HITS && hitCount >= anchors * MIN_SHARE)
      this.#found.set(rawOffset, { hits, anchors });
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
    // Entries of earlier chunks that never came here (they became DUPE records) go too.
    for (const at of this.#found.keys()) {
      if (at >= rawOffset) break;
      this.#found.delete(at);
    }
    const found = this.#found.get(rawOffset);
    if (found) this.#found.delete(rawOffset);
    if (chunk.codec === DUPE_CODEC || chunk.codec === DELTA_CODEC) return undefined;
    const anchored = found && (await this.#anchored(found, chunk, self, rawOffset, entries));
    if (anchored) return anchored;
    if (this.#whole && (chunk.codec === zstdCodec.id || chunk.codec === BROTLI_ID) && self > 0)
      return this.#wholeTrial(chunk, self, rawOffset, entries);
    return undefined;
  }

  /**
   * The whole-content trial: the chunk coded as one plane at the matcher's level with the
   * content from the earliest chunk a LONG record may reach (no DUPE or DLTA record in its
   * reach, at most LONG_REACH back) as dictionary, when smaller than its own record.
   */
  async #wholeTrial(
    chunk: EncodedChunk,
    self: number,
    rawOffset: number,
    entries: readonly IndexEntry[],
  ): Promise<EncodedChunk | undefined> {
    const first = this.#firstFor(-1, self, rawOffset, entries);
    if (first === undefined) return undefined;
    const from = entries[first].rawOffset;
    const dictionary = await this.#reread(from, rawOffset - from);
    const raw = await this.#reread(rawOffset, chunk.rawLength);
    if (crc32(raw) !== chunk.rawCrc || dictionary.length !== rawOffset - from) return undefined;
    this.wholeTried++;
    const best = encodeLong(raw, dictionary, 1, first, this.#level, chunk.rawCrc);
    if (!best || best.header.length + best.payload.length >= chunk.header.length + chunk.payload.length)
      return undefined;
    this.wholeKept++;
    this.kept++;
    this.#first.set(self, first);
    this.#reach.set(self, this.#reachOf(first, self));
    return best;
  }

  /** The LONG record for a chunk whose anchors hit earlier chunks (`found`), when smaller. */
  async #anchored(
    found: Found,
    chunk: EncodedChunk,
    self: number,
    rawOffset: number,
    entries: readonly IndexEntry[],
  ): Promise<EncodedChunk | undefined> {
    const { hits, anchors } = found;
    let earliest = rawOffset;
    for (let i = 1; i < hits.length; i += 2) earliest = Math.min(earliest, hits[i]);
    const reachable = this.#firstFor(earliest, self, rawOffset, entries);
    if (reachable === undefined) return undefined;
    const from = entries[reachable].rawOffset;
    // No hit the dictionary could reach (the chunks before may be LONG records reaching far
    // back themselves): no trial, and nothing read again.
    let inReach = false;
    for (let i = 1; i < hits.length && !inReach; i += 2) inReach = hits[i] >= from;
    if (!inReach) return undefined;
    const content = await this.#reread(from, rawOffset - from);
    const raw = await this.#reread(rawOffset, chunk.rawLength);
    // The source may have changed since it was read: then no LONG record.
    if (crc32(raw) !== chunk.rawCrc || content.length !== rawOffset - from) return undefined;
    const cover = coverOf(raw, content, from, hits);
    // Anchors are GAP bytes apart or more, so repeats shorter than that are sampled, not
    // covered: the share of anchors in a repeat is a second (low) estimate of their share.
    const share = Math.max(cover.bytes / raw.length, cover.repeats / anchors);
    const sampled = cover.repeats >= MIN_HITS && cover.repeats >= anchors * MIN_SHARE;
    if (!sampled && cover.bytes < raw.length * MIN_COVER) return undefined;
    // The dictionary starts at the chunk holding the earliest repeat checked, not the earliest hit.
    const first = this.#firstFor(cover.earliest, self, rawOffset, entries) ?? reachable;
    const dictionary = content.subarray(entries[first].rawOffset - from);
    this.tried++;
    // One trial, at one plane width.
    const mostly = share >= MOSTLY_COVERED;
    const width = mostly ? 1 : elementWidth(chunk);
    if (raw.length < width) return undefined;
    const level = mostly ? Math.min(this.#level, FAST_LEVEL) : this.#level;
    const best = encodeLong(raw, dictionary, width, first, level, chunk.rawCrc);
    const size = (c: EncodedChunk) => c.header.length + c.payload.length;
    if (!best || size(best) >= size(chunk)) return undefined;
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

/**
 * The plane width the chunk's own codec split its elements by: HIER layouts (FORMAT.md
 * §6.2) bf16, f16 and planes2 split 2-byte elements; f32 and planes4 4-byte; others 1.
 */
function elementWidth(chunk: EncodedChunk): number {
  if (chunk.codec !== "HIER" || chunk.payload.length < 2) return 1;
  const layout = chunk.payload[1];
  if (layout === 1 || layout === 2 || layout === 4) return 2;
  if (layout === 3 || layout === 5) return 4;
  return 1;
}

/** How many distinct byte values the KEY bytes from `p` on hold (stops counting at MIN_DISTINCT). */
function distinct(bytes: Uint8Array, p: number): number {
  let n = 0;
  for (let i = p; i < p + KEY && n < MIN_DISTINCT; i++) {
    let seen = false;
    for (let j = p; j < i; j++)
      if (bytes[j] === bytes[i]) {
        seen = true;
        break;
      }
    if (!seen) n++;
  }
  return n;
}

/** Compared a block at a time before byte by byte. */
const BLOCK = 256;

/** How many bytes from a[i], b[j] on are equal, at most `limit`. */
function forwardMatch(a: Buffer, i: number, b: Buffer, j: number, limit: number): number {
  let n = 0;
  while (n + BLOCK <= limit && a.compare(b, j + n, j + n + BLOCK, i + n, i + n + BLOCK) === 0) n += BLOCK;
  while (n < limit && a[i + n] === b[j + n]) n++;
  return n;
}

/** How many bytes before a[i], b[j] are equal, at most `limit`. */
function backwardMatch(a: Buffer, i: number, b: Buffer, j: number, limit: number): number {
  let n = 0;
  while (n + BLOCK <= limit && a.compare(b, j - n - BLOCK, j - n, i - n - BLOCK, i - n) === 0) n += BLOCK;
  while (n < limit && a[i - n - 1] === b[j - n - 1]) n++;
  return n;
}

/**
 * The chunk's bytes that the hits' repeats cover: each hit (position in the chunk, content
 * offset of the earlier copy) checked against `content` (the content from offset `from`
 * up to the chunk) and extended both ways into a repeat of at least MIN_REPEAT bytes; the
 * hits inside a repeat (one found, or one an earlier hit extended over); and the earliest
 * content offset a repeat starts at. Repeats do not overlap: each starts where the last ended.
 */
function coverOf(
  raw: Uint8Array,
  content: Uint8Array,
  from: number,
  hits: readonly number[],
): { bytes: number; repeats: number; earliest: number } {
  const a = Buffer.from(raw.buffer, raw.byteOffset, raw.length);
  const b = Buffer.from(content.buffer, content.byteOffset, content.length);
  let covered = 0;
  let repeats = 0;
  let end = 0;
  let earliest = from + content.length;
  for (let h = 0; h < hits.length; h += 2) {
    const p = hits[h];
    const q = hits[h + 1] - from;
    if (p < end) {
      repeats++;
      continue;
    }
    if (q < 0) continue;
    const ahead = forwardMatch(a, p, b, q, Math.min(a.length - p, b.length - q));
    if (ahead < KEY) continue;
    const back = backwardMatch(a, p, b, q, Math.min(p - end, q));
    if (back + ahead < MIN_REPEAT) continue;
    covered += back + ahead;
    repeats++;
    end = p + ahead;
    earliest = Math.min(earliest, from + q - back);
  }
  return { bytes: covered, repeats, earliest };
}

function windowLogFor(length: number): number {
  return Math.min(27, Math.max(10, Math.ceil(Math.log2(Math.max(1, length)))));
}

/**
 * zstd's hash log at levels 1 to 4 for inputs over 256 KiB (its default parameter table;
 * level 0 means 3, negative levels use 13); higher levels' tables are already large.
 */
const LEVEL_HASH_LOG = [13, 14, 16, 17, 18];

/**
 * The hash log for a dictionary of `length` bytes: at least one slot for every four of its
 * positions (at most 2^20 slots), so its start is still found at the end. With the level's
 * own table (2^17 slots at level 3) the later positions of a large dictionary overwrite the
 * earlier ones, and a repeat a few MiB back goes unseen.
 */
function hashLogFor(length: number, level: number): number | undefined {
  const own = LEVEL_HASH_LOG[level <= 0 ? (level === 0 ? 3 : 0) : level];
  if (own === undefined) return undefined;
  const need = Math.min(20, Math.ceil(Math.log2(Math.max(1, length))) - 2);
  return need > own ? need : undefined;
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
    const hashLog = hashLogFor(dict.length, level);
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
          ...(hashLog === undefined ? {} : { [constants.ZSTD_c_hashLog]: hashLog }),
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
