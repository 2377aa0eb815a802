import { codecById } from "../codecs/registry.ts";
import { ByteQueue, copyBytes, dispose } from "../common/bytes.ts";
import { check, MmhError } from "../common/errors.ts";
import type { RandomAccessSource } from "../common/source.ts";
import {
  CHUNK_HEADER_SIZE,
  CHUNK_TAG,
  checkChunkHeader,
  HEADER_FIXED_SIZE,
  type Header,
  INDEX_ENTRY_SIZE,
  INDEX_FIXED_SIZE,
  INDEX_TAG,
  type IndexEntry,
  MAX_CHUNK_SIZE,
  MAX_FOOTER_METADATA,
  parseChunkHeader,
  parseHeader,
  parseHeaderFixed,
  parseIndex,
  parseIndexFixed,
  parseTrailer,
  TRAILER_SIZE,
  type Trailer,
} from "../container/format.ts";
import { decodeLegacy, detectLegacy, LEGACY_PROBE_BYTES, mayBeLegacy } from "../legacy/mmhrs.ts";
import { decodeChunk, decodeChunkLent, decodeChunkPieces } from "./chunk.ts";
import { type DecompressOptions, resolveBase, resolveMaxOutput } from "./decodeoptions.ts";
import { ContentHash, hashesApart } from "./hashing.ts";
import { LONG_CODEC, type LongSource, RecentContent, resolveLong } from "./long.ts";
import type { WorkerPool } from "./pool.ts";
import {
  BaseSet,
  DELTA_CODEC,
  decodeDelta,
  dupeTarget,
  isSpecial,
  REF_CACHE_BYTES,
  type RecordParts,
} from "./refs.ts";
import {
  inFlightLimit,
  POOL_AFTER_BYTES,
  POOL_MAX_RECORD,
  Schedule,
  startPool,
  WORKER_BACKLOG,
} from "./schedule.ts";
import type { Slot, SlotMemory } from "./slots.ts";
import { resolveThreads } from "./threads.ts";

/**
 * How yielded pieces may be memory the decoder reuses: false, never (each piece is the
 * consumer's); true, a piece stays valid until the next is asked for; "exclusive", as
 * true, and no other compression or decompression runs on this thread meanwhile (the
 * mmh command), so a piece may also lie in the memory a codec reuses from call to call
 * (Codec.decodeLent).
 */
export type Borrowing = boolean | "exclusive";

export interface DecodeSummary {
  header?: Header;
  trailer?: Trailer;
  footer?: Record<string, unknown>;
  chunks: number;
  rawBytes: number;
  storedBytes: number;
  codecs: Record<string, number>;
}

/**
 * The front-to-back decoder: container bytes in, content out. It needs no index and no
 * seeking, so it decodes from a pipe as the bytes arrive, holding one chunk at a time.
 * Every record is checked before it is used; the index and trailer at the end must agree
 * with what was read, and, with `checkSha256`, the content's sha256 with the trailer.
 * Data is yielded only after its chunk's CRC-32 matched.
 *
 * With `borrowed`, a yielded piece may be memory the decoder reuses: it stays valid only
 * until the next piece is asked for (see encodeContainer, and Borrowing). `memory`, given to the file
 * reader behind `source` too, lets payloads be read straight into the pool's slots.
 */
export async function* decodeContainer(
  source: AsyncIterable<Uint8Array>,
  options: DecompressOptions = {},
  summary?: DecodeSummary,
  borrowed: Borrowing = false,
  memory?: SlotMemory,
  /**
   * The same container, read at offsets: DUPE targets are read again from it (FORMAT.md
   * §6.3). Without it (a pipe), the last REF_CACHE_BYTES of records are kept instead.
   */
  again?: () => Promise<RandomAccessSource>,
  /**
   * Memory for the whole content (its length from the index): each chunk is decoded
   * straight into its place where its codec can write there, and every piece yielded is
   * a view of it at the piece's offset (what lies elsewhere is copied in), so a caller
   * that wants the content in one buffer copies nothing. Content past its end is yielded
   * as it would be without it.
   */
  output?: Uint8Array,
  /** The content's length when known before decoding (from the index): see hashesApart. */
  contentSize = output?.length,
): AsyncGenerator<Uint8Array> {
  const maxOutput = resolveMaxOutput(options);
  const bases = new BaseSet(resolveBase(options));
  const refs = new References(again, borrowed !== false);
  const stats: DecodeSummary = summary ?? { chunks: 0, rawBytes: 0, storedBytes: 0, codecs: {} };
  Object.assign(stats, { chunks: 0, rawBytes: 0, storedBytes: 0, codecs: {} });
  // Borrowed decoding keeps no piece of the source past the next: the queue copies what
  // it holds before it asks for more, so a file reader may recycle its buffers.
  const input = new ByteQueue(source, borrowed !== false);
  const threads = resolveThreads(options.threads);
  let pool: WorkerPool | undefined;
  // Records decoded on the pool's workers or by this thread in their turn: their results
  // are released in file order, each after its CRC-32 matched (see Schedule). This thread
  // counts as one of the coders in flight.
  const inflight = new Schedule<Decoded>((decoded) => decoded.slot?.release(), {
    jobs: (workers) => inFlightLimit(workers + 1),
  });
  try {
    // A legacy MMH-RS file is told apart by its first bytes, and decoded on its own.
    const legacy = mayBeLegacy(await input.peek(8))
      ? detectLegacy(await input.peek(LEGACY_PROBE_BYTES))
      : undefined;
    if (legacy) {
      stats.chunks = 1;
      stats.codecs[legacy.codec] = 1;
      yield* decodeLegacy(input, legacy, maxOutput, stats, borrowed !== false, options.signal);
      return;
    }
    const fixed = await input.read(HEADER_FIXED_SIZE, "the header");
    const { metadataLength } = parseHeaderFixed(fixed);
    const header = parseHeader(fixed, await input.read(metadataLength, "the header metadata"));
    stats.header = header;
    // With one thread, records are decoded here. With more, they are decoded on a pool's
    // workers once POOL_AFTER_BYTES have gone by. A content hash asked for is computed on
    // the pool's hashing thread when there is a core for it (hashesApart, ContentHash).
    const content =
      options.checkSha256 === true ? new ContentHash(hashesApart(threads, contentSize)) : undefined;
    /** One output buffer reused from chunk to chunk decoded here, for a borrowing consumer. */
    let spare: Uint8Array | undefined;
    const seen: IndexEntry[] = [];
    /** Content bytes released so far, and declared by the records read so far. */
    let rawOffset = 0;
    let declared = 0;
    async function* release(raw: Uint8Array, slot?: Slot): AsyncGenerator<Uint8Array> {
      if (content) {
        content.update(raw, slot);
        await content.room();
      }
      // Once a LONG record has been met, the last chunks' content is kept (FORMAT.md §6.5).
      refs.recent?.put(rawOffset, Buffer.from(raw));
      const at = rawOffset;
      rawOffset += raw.length;
      stats.rawBytes = rawOffset;
      if (output && rawOffset <= output.length) {
        yield inPlace(raw, output, at);
        return;
      }
      yield borrowed !== false || !slot ? raw : copyOf(raw);
    }
    async function* settled({ raw, slot }: Decoded): AsyncGenerator<Uint8Array> {
      yield* release(raw, slot);
      slot?.release();
    }
    async function* drain(): AsyncGenerator<Uint8Array> {
      for await (const decoded of inflight.drain()) yield* settled(decoded);
    }
    for (;;) {
      if (options.signal?.aborted) throw new MmhError("E_ABORTED", "decompression aborted");
      const recordOffset = input.position;
      const tagBytes = await input.read(4, "a record tag");
      const tag = tagBytes.readUInt32LE(0);
      if (tag === INDEX_WORD) {
        yield* drain();
        const trailer = await readEnd(input, recordOffset, seen, header.size, stats);
        check(
          trailer.rawLength === rawOffset,
          "E_CORRUPT",
          `trailer says ${trailer.rawLength} content bytes, chunks hold ${rawOffset}`,
        );
        if (content) {
          const digest = await content.digest();
          check(
            digest === trailer.sha256,
            "E_CHECKSUM",
            `content sha256 mismatch: trailer says ${trailer.sha256}, content is ${digest}`,
          );
        }
        check(
          await input.atEnd(),
          "E_CORRUPT",
          `unexpected bytes after the trailer at offset ${input.position}`,
        );
        stats.storedBytes = input.position;
        return;
      }
      const where = `chunk ${seen.length} at offset ${recordOffset}`;
      if (tag !== CHUNK_WORD)
        throw new MmhError(
          "E_CORRUPT",
          `${where}: unknown record tag ${JSON.stringify(tagBytes.toString("latin1"))}`,
        );
      const rest = await input.read(CHUNK_HEADER_SIZE - 4, `the header of ${where}`);
      // The tag and the rest lie side by side in one piece of the source as a rule: a view
      // of both, when that piece stays as it is through the reads to come (the header's
      // CRC-32 is checked after its parameters are read). Otherwise a copy, as the tag's
      // own bytes may have been handed back to the source.
      const fixedRecord =
        input.lastReadStays && rest.buffer === tagBytes.buffer && rest.byteOffset === tagBytes.byteOffset + 4
          ? Buffer.from(rest.buffer, tagBytes.byteOffset, CHUNK_HEADER_SIZE)
          : Buffer.concat([Buffer.from(CHUNK_TAG, "latin1"), rest]);
      const record = parseChunkHeader(fixedRecord, where);
      // A copy: the payload read next may take the reader past the batch that held them.
      const params =
        record.paramsLength === 0
          ? NO_PARAMS
          : Buffer.from(await input.read(record.paramsLength, `the parameters of ${where}`));
      checkChunkHeader(fixedRecord, params, record, where);
      if (declared + record.rawLength > maxOutput) {
        throw new MmhError("E_LIMIT", `${where}: output would exceed the limit of ${maxOutput} bytes`);
      }
      // A LONG record is kept after it is resolved: its reach is then still in the copies.
      const long = record.codec === LONG_CODEC;
      const payloadWhat = `the payload of ${where}`;
      const { payload, ringAt } = long
        ? { payload: await input.read(record.storedLength, payloadWhat), ringAt: undefined }
        : await refs.readPayload(input, params.length, record.storedLength, payloadWhat);
      const stays = input.lastReadStays;
      if (!long) refs.keep(seen.length, params, payload, stays, ringAt);
      seen.push({
        recordOffset,
        rawOffset: declared,
        rawLength: record.rawLength,
        codec: record.codec,
        rawCrc: record.rawCrc,
      });
      declared += record.rawLength;
      stats.chunks = seen.length;
      stats.storedBytes = input.position;
      stats.codecs[record.codec] = (stats.codecs[record.codec] ?? 0) + 1;
      // References and deltas are resolved here, in order, from the records or base they name.
      if (isSpecial(record.codec) || long) {
        yield* drain();
        const parts: RecordParts = { ...record, where, params, payload };
        if (long) {
          const self = seen.length - 1;
          const raw = await resolveLong(refs.longSource(seen), self, parts);
          refs.keep(self, params, payload, stays);
          yield* release(raw);
          continue;
        }
        yield* release(await refs.resolve(parts, seen, bases));
        continue;
      }
      if (!pool && declared >= POOL_AFTER_BYTES && record.rawLength <= POOL_MAX_RECORD) {
        // One worker fewer than threads: this thread decodes records too (see WORKER_BACKLOG).
        pool = startPool(threads, content, memory, threads - 1);
      }
      // Until a worker has started, records are decoded here rather than waited for.
      if (record.rawLength <= POOL_MAX_RECORD && inflight.offloads(pool)) {
        // Room first: at most inFlightLimit records and IN_FLIGHT_BYTES of content in flight.
        const { rawLength } = record;
        for await (const decoded of inflight.room(pool, rawLength)) yield* settled(decoded);
        // A record goes to a worker unless every worker has WORKER_BACKLOG in hand; then
        // this thread decodes it, straight into its place in `output` when there is one.
        const decoded =
          pool.backlog < WORKER_BACKLOG
            ? decodeThere(pool, record, params, payload, where)
            : decodeHere(pool, record, params, payload, where, placeOf(output, declared, rawLength));
        inflight.push(decoded, rawLength);
        continue;
      }
      // (A generator's round trip per record, even with nothing in flight, cost as much as
      // a 4 KiB record's CRC-32: only when something is.)
      if (inflight.length > 0) yield* drain();
      // With a borrowing consumer, chunks decoded here while no pool's result is in flight
      // (one thread, or before a worker is up) go into one reused buffer: fresh memory for
      // each would cost page faults and collections.
      let into = placeOf(output, declared, record.rawLength);
      if (!into && borrowed !== false && record.rawLength <= MAX_CHUNK_SIZE) {
        // The only coder on this thread, and every earlier piece written: a chunk its codec
        // can leave in memory of its own (HIER's kernels) is written out from there, with no
        // copy into `spare`.
        const lent =
          borrowed === "exclusive"
            ? decodeChunkLent(record.codec, params, payload, record.rawLength, record.rawCrc, where)
            : undefined;
        if (lent) {
          yield* release(lent);
          continue;
        }
        if (!spare || spare.length < record.rawLength) spare = Buffer.allocUnsafeSlow(record.rawLength);
        into = spare.subarray(0, record.rawLength);
      }
      for (const raw of decodeChunkPieces(
        record.codec,
        params,
        payload,
        record.rawLength,
        record.rawCrc,
        where,
        into,
      )) {
        yield* release(raw);
        // Written (or copied into `output`) by now: a codec's own output memory goes back
        // at once (not a run's pieces, which are one buffer written out again and again).
        const single = record.rawLength <= MAX_CHUNK_SIZE;
        const done = borrowed !== false || output !== undefined;
        if (done && single && raw.buffer !== into?.buffer && codecById(record.codec).decodesToOwn)
          dispose(raw, true);
      }
    }
  } finally {
    inflight.close();
    if (memory) memory.pool = undefined;
    await pool?.close();
    await input.return();
    await bases.close();
    await refs.close();
  }
}

/** The record tags as little-endian words, compared without a string per record. */
const CHUNK_WORD = Buffer.from(CHUNK_TAG, "latin1").readUInt32LE(0);
const INDEX_WORD = Buffer.from(INDEX_TAG, "latin1").readUInt32LE(0);

/** The parameters of a record that has none (most): never written to. */
const NO_PARAMS = Buffer.alloc(0);

/** Where the record of `rawLength` bytes that ends at content byte `end` goes in `output`, if there. */
function placeOf(output: Uint8Array | undefined, end: number, rawLength: number): Uint8Array | undefined {
  return output && end <= output.length ? output.subarray(end - rawLength, end) : undefined;
}

/** `raw` at byte `at` of `output`: copied there, unless it was decoded there. */
function inPlace(raw: Uint8Array, output: Uint8Array, at: number): Uint8Array {
  const place = output.subarray(at, at + raw.length);
  if (raw.buffer !== output.buffer || raw.byteOffset !== place.byteOffset) copyBytes(place, raw);
  return place;
}

/** A copy of `bytes` (a slot's, in shared memory) in memory of its own. */
function copyOf(bytes: Uint8Array): Buffer {
  const copy = Buffer.allocUnsafe(bytes.length);
  copyBytes(copy, bytes);
  return copy;
}

/** A record's fields the pool's decoding takes. */
export type Job = Pick<RecordParts, "codec" | "rawLength" | "rawCrc">;

/** A record decoded on one of `pool`'s workers, into a slot of the pool. */
export async function decodeThere(
  pool: WorkerPool,
  record: Job,
  params: Uint8Array,
  payload: Uint8Array,
  where: string,
): Promise<Decoded> {
  const { rawLength } = record;
  const slot = await pool.decode(record.codec, params, payload, rawLength, record.rawCrc, where);
  return { raw: slot.bytes.subarray(0, rawLength), slot };
}

/**
 * A record decoded on this thread as a worker decodes it, into a slot of `pool`, or into
 * `place` (its place in the whole content's memory) when given: the calling thread takes
 * its share with the workers instead of waiting for them, so `threads` threads decode
 * with one worker fewer to start. A failure is the result's, so it is met in record order
 * like a worker's.
 */
export function decodeHere(
  pool: WorkerPool,
  record: Job,
  params: Uint8Array,
  payload: Uint8Array,
  where: string,
  place?: Uint8Array,
): Promise<Decoded> {
  const { codec, rawLength } = record;
  const slot = place ? undefined : pool.slot(rawLength);
  try {
    const into = place ?? slot!.bytes.subarray(0, rawLength);
    const raw = decodeChunk(codec, params, payload, rawLength, record.rawCrc, where, into);
    if (raw.buffer !== into.buffer || raw.byteOffset !== into.byteOffset) {
      copyBytes(into, raw);
      if (codecById(codec).decodesToOwn) dispose(raw, true); // a codec's own output, copied now
    }
    return Promise.resolve({ raw: into, slot });
  } catch (error) {
    slot?.release();
    return Promise.reject(error);
  }
}

/**
 * The ring of the last decoder reading a stream that closed, for the next: its memory is
 * then already mapped, and the next one neither faults it in nor waits for the collector.
 */
let spareRing: Buffer | undefined;

/**
 * What a front-to-back decoder needs to resolve DUPE records: the container read again at
 * an offset, or, when it cannot be, the last REF_CACHE_BYTES of records.
 */
class References {
  readonly #again: (() => Promise<RandomAccessSource>) | undefined;
  #source: Promise<RandomAccessSource> | undefined;
  /**
   * Without `again`: the params and payload of the last records, REF_CACHE_BYTES of them
   * in all. A payload that stays as it is (ByteQueue.lastReadStays: a source that keeps its
   * pieces, or the queue's own copy) is kept as it is, with no copy; one in a piece the
   * source may reuse goes into one ring of REF_CACHE_BYTES (made when first needed, or the
   * spare one: never an allocation per record). With `detached` (a queue that copies what
   * it holds), every payload is read straight into the ring (readPayload), so no record
   * keeps memory of its own alive for the collector to trace. Params are copies of their
   * own already.
   */
  #ring: Buffer | undefined;
  /** Bytes written to the ring so far. */
  #ringWritten = 0;
  /** Bytes of the kept records (params and payload). */
  #keptBytes = 0;
  readonly #kept = new Map<number, { params: Uint8Array; payload: Uint8Array | number; size: number }>();
  readonly #order: number[] = [];

  readonly #detached: boolean;

  constructor(again: (() => Promise<RandomAccessSource>) | undefined, detached: boolean) {
    this.#again = again;
    this.#detached = detached;
  }

  /**
   * Keep record `i` when the container cannot be read again (the oldest are forgotten):
   * `payloadStays` when the payload's bytes stay as they are after later reads.
   */
  keep(i: number, params: Uint8Array, payload: Uint8Array, payloadStays: boolean, ringAt?: number): void {
    if (this.#again) return;
    const size = params.length + payload.length;
    if (size > REF_CACHE_BYTES) return;
    // The ring's copies are a subset of the kept records, in order, so a copy is forgotten
    // (below) before the ring is written over it.
    const copy =
      ringAt === undefined &&
      (!payloadStays || (this.#detached && this.#ringWritten + payload.length <= REF_CACHE_BYTES));
    const held = ringAt ?? (copy ? this.#put(payload) : payload);
    this.#kept.set(i, { params, payload: held, size });
    this.#order.push(i);
    this.#keptBytes += size;
    while (this.#keptBytes > REF_CACHE_BYTES) {
      const first = this.#order.shift()!;
      this.#keptBytes -= this.#kept.get(first)!.size;
      this.#kept.delete(first);
    }
  }

  /**
   * Read a record's payload (`length` bytes, after `paramsLength` bytes of params) from
   * `input`. A decoder that keeps records and whose queue copies what it holds (`detached`)
   * reads the payload straight into the ring, where keep (given `ringAt`) leaves it: the
   * payload's one copy, where it would otherwise be copied by the queue when it spans
   * pieces and again into the ring. The payload returned is a view of the ring, or, for
   * the one that wraps round the ring's end, a copy of its two parts; the ring is written
   * over only REF_CACHE_BYTES of payloads later, and a payload is used before the next
   * read (a pool copies it in as it is submitted). Other decoders read it as it is.
   */
  async readPayload(
    input: ByteQueue,
    paramsLength: number,
    length: number,
    what: string,
  ): Promise<{ payload: Uint8Array; ringAt: number | undefined }> {
    if (this.#again || !this.#detached || length === 0 || paramsLength + length > REF_CACHE_BYTES) {
      return { payload: await input.read(length, what), ringAt: undefined };
    }
    const ring = this.#theRing();
    const start = this.#ringWritten;
    const pos = start % REF_CACHE_BYTES;
    const tail = REF_CACHE_BYTES - pos;
    if (length <= tail) {
      const view = ring.subarray(pos, pos + length);
      await input.readInto(view, what);
      this.#ringWritten += length;
      return { payload: view, ringAt: start };
    }
    await input.readInto([ring.subarray(pos), ring.subarray(0, length - tail)], what);
    this.#ringWritten += length;
    return { payload: this.#get(start, length), ringAt: start };
  }

  #theRing(): Buffer {
    if (!this.#ring) {
      this.#ring = spareRing ?? Buffer.allocUnsafeSlow(REF_CACHE_BYTES);
      spareRing = undefined;
    }
    return this.#ring;
  }

  /** Copy `bytes` into the ring; returns where they start. */
  #put(bytes: Uint8Array): number {
    const ring = this.#theRing();
    const start = this.#ringWritten;
    let from = 0;
    while (from < bytes.length) {
      const pos = this.#ringWritten % REF_CACHE_BYTES;
      const take = Math.min(bytes.length - from, REF_CACHE_BYTES - pos);
      ring.set(bytes.subarray(from, from + take), pos);
      from += take;
      this.#ringWritten += take;
    }
    return start;
  }

  #get(at: number, length: number): Buffer {
    const out = Buffer.allocUnsafe(length);
    for (let done = 0; done < length; ) {
      const pos = (at + done) % REF_CACHE_BYTES;
      const take = Math.min(length - done, REF_CACHE_BYTES - pos);
      this.#ring!.copy(out, done, pos, pos + take);
      done += take;
    }
    return out;
  }

  /** The content of a DUPE or DLTA record (the last of `seen`), checked against its CRC-32. */
  async resolve(record: RecordParts, seen: readonly IndexEntry[], bases: BaseSet): Promise<Uint8Array> {
    if (record.codec === DELTA_CODEC) return decodeDelta(record, bases);
    const self = seen.length - 1;
    const t = dupeTarget(record, self, (k) => (k < self ? seen[k] : undefined));
    const target = await this.#target(t, seen, record.where);
    if (target.codec === LONG_CODEC) return resolveLong(this.longSource(seen), t, target);
    return target.codec === DELTA_CODEC
      ? decodeDelta(target, bases)
      : decodeChunk(
          target.codec,
          target.params,
          target.payload,
          target.rawLength,
          target.rawCrc,
          target.where,
        );
  }

  /** Content of the last chunks, kept from the first LONG record on. */
  recent: RecentContent | undefined;

  /** The records before a LONG record, as its decoding needs them (FORMAT.md §6.5). */
  longSource(seen: readonly IndexEntry[]): LongSource {
    this.recent ??= new RecentContent();
    const recent = this.recent;
    return {
      entry: (j) => seen[j],
      record: (j) => this.#target(j, seen, `chunk ${seen.length - 1}`),
      decode: (r) => decodeChunk(r.codec, r.params, r.payload, r.rawLength, r.rawCrc, r.where),
      recent,
    };
  }

  async #target(t: number, seen: readonly IndexEntry[], where: string): Promise<RecordParts> {
    const entry = seen[t];
    const at = `chunk ${t} at offset ${entry.recordOffset}`;
    if (!this.#again) {
      const kept = this.#kept.get(t);
      if (!kept)
        throw new MmhError(
          "E_LIMIT",
          `${where}: refers to ${at}, further back than the ${REF_CACHE_BYTES >> 20} MiB of records a decoder reading a stream keeps; decode it from a file`,
        );
      const payloadLength = kept.size - kept.params.length;
      return {
        where: at,
        codec: entry.codec,
        params: kept.params,
        payload: typeof kept.payload === "number" ? this.#get(kept.payload, payloadLength) : kept.payload,
        rawLength: entry.rawLength,
        rawCrc: entry.rawCrc,
      };
    }
    this.#source ??= this.#again();
    const source = await this.#source;
    const length = seen[t + 1].recordOffset - entry.recordOffset;
    check(length >= CHUNK_HEADER_SIZE, "E_CORRUPT", `${at}: record overlaps the next one`);
    const bytes = await source.read(entry.recordOffset, length);
    const fixed = bytes.subarray(0, CHUNK_HEADER_SIZE);
    const header = parseChunkHeader(fixed, at);
    check(
      CHUNK_HEADER_SIZE + header.paramsLength + header.storedLength === length,
      "E_CORRUPT",
      `${at}: record length differs from what was read`,
    );
    const params = bytes.subarray(CHUNK_HEADER_SIZE, CHUNK_HEADER_SIZE + header.paramsLength);
    checkChunkHeader(fixed, params, header, at);
    check(
      header.codec === entry.codec && header.rawLength === entry.rawLength && header.rawCrc === entry.rawCrc,
      "E_CORRUPT",
      `${at}: record read again differs from the one read first`,
    );
    return {
      where: at,
      codec: header.codec,
      params,
      payload: bytes.subarray(CHUNK_HEADER_SIZE + header.paramsLength),
      rawLength: header.rawLength,
      rawCrc: header.rawCrc,
    };
  }

  async close(): Promise<void> {
    this.#kept.clear();
    if (this.#ring) spareRing = this.#ring;
    this.#ring = undefined;
    this.recent?.clear();
    if (this.#source) await (await this.#source.catch(() => undefined))?.close();
  }
}

/** A record decoded in a pool's turn: its content, in `slot` when one holds it. */
export interface Decoded {
  raw: Uint8Array;
  slot?: Slot;
}

/** Read the index and trailer, and check both against the records already read. */
async function readEnd(
  input: ByteQueue,
  indexOffset: number,
  seen: IndexEntry[],
  firstRecord: number,
  stats: DecodeSummary,
): Promise<Trailer> {
  const rest = await input.read(INDEX_FIXED_SIZE - 4, "the index header");
  const fixed = Buffer.concat([Buffer.from(INDEX_TAG, "latin1"), rest]);
  const { count, bodyLength } = parseIndexFixed(fixed, seen.length * INDEX_ENTRY_SIZE + MAX_FOOTER_METADATA);
  check(count === seen.length, "E_CORRUPT", `index lists ${count} chunks, the file holds ${seen.length}`);
  const body = await input.read(bodyLength, "the index");
  const index = parseIndex(fixed, body, firstRecord, indexOffset);
  for (let i = 0; i < count; i++) {
    const a = index.entries[i];
    const b = seen[i];
    check(
      a.recordOffset === b.recordOffset &&
        a.rawLength === b.rawLength &&
        a.codec === b.codec &&
        a.rawCrc === b.rawCrc,
      "E_CORRUPT",
      `index entry ${i} does not match chunk ${i} at offset ${b.recordOffset}`,
    );
  }
  stats.footer = index.footer;
  const trailer = parseTrailer(await input.read(TRAILER_SIZE, "the trailer"));
  check(trailer.indexOffset === indexOffset, "E_CORRUPT", "trailer points to the wrong index offset");
  check(
    trailer.indexLength === INDEX_FIXED_SIZE + bodyLength,
    "E_CORRUPT",
    "trailer gives the wrong index length",
  );
  check(trailer.chunkCount === count, "E_CORRUPT", "trailer chunk count differs from the index");
  stats.trailer = trailer;
  return trailer;
}
