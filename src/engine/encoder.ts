import { findPeriod } from "../codecs/p251.ts";
import { dispose } from "../common/bytes.ts";
import type { DTypeName } from "../common/dtype.ts";
import { MmhError } from "../common/errors.ts";
import {
  encodeHeader,
  encodeIndex,
  encodeTrailer,
  type IndexEntry,
  type Metadata,
  packFooterSoon,
} from "../container/format.ts";
import type { StoredTensor } from "../container/metadata.ts";
import { VERSION } from "../version.ts";
import { type AutoStats, type Choice, chooseCodecs, encodeChoices } from "./auto.ts";
import type { EncodedChunk } from "./chunk.ts";
import { encodeAgainstBase } from "./deltacode.ts";
import { ContentHash, hashesApart } from "./hashing.ts";
import { LongMatcher } from "./longwriter.ts";
import { type CompressOptions, resolveCompressOptions } from "./options.ts";
import { type ChunkSpec, plannedChunks } from "./plan.ts";
import type { EncodedInSlot, WorkerPool } from "./pool.ts";
import { Deduper, DeltaPlan, type Reread } from "./refwriter.ts";
import { extendRun, finishRun, type Run, startRun } from "./runs.ts";
import { POOL_AFTER_BYTES, Schedule, startPool } from "./schedule.ts";
import type { SlotMemory } from "./slots.ts";

/** What the encoder knows of the source before it starts: from a format recogniser, or nothing. */
export interface SourceLayout {
  format: string;
  plan: readonly ChunkSpec[];
  /** Written into the index block's footer metadata (the tensor table). */
  footer: Metadata;
  /**
   * The footer is complete before the first chunk (a recogniser's tensor table), so it is
   * packed while the chunks are coded (packFooterSoon). Without it, it is packed after the
   * last chunk, and the source may fill it in as it goes (pack's sha256 of every file).
   */
  footerReady?: boolean;
  /**
   * Reads content bytes again, for deduplication (FORMAT.md §6.3): a source that has it
   * (a file, a folder, bytes in memory) has its repeated chunks stored as references.
   */
  reread?: Reread;
  /** The content's length, when known before coding (a file, bytes in memory): see hashesApart. */
  size?: number;
  /**
   * The content is the caller's memory (compress(bytes)), not read into a pool's slots: a
   * hashing thread could read it only from a copy of every chunk (see hashesApart).
   */
  inMemory?: boolean;
}

export interface CompressSummary {
  rawBytes: number;
  storedBytes: number;
  chunks: number;
  /** Chunks per codec FourCC that was actually stored. */
  codecs: Record<string, number>;
  sha256: string;
  /** Milliseconds `auto` spent choosing codecs (0 with a fixed codec). */
  choiceMs: number;
}

export function emptySummary(): CompressSummary {
  return { rawBytes: 0, storedBytes: 0, chunks: 0, codecs: {}, sha256: "", choiceMs: 0 };
}

/**
 * The .mmh encoder: bytes in, container bytes out, front to back. Nothing is sought
 * back to, so the output can go straight to a pipe. `summary` is filled in as it goes
 * and is complete when the iteration ends.
 *
 * With `borrowed`, a yielded piece may be memory the encoder reuses: it stays valid only
 * until the next piece is asked for. Consumers that write each piece before asking for
 * the next (the file writer) pass it and save a copy per chunk.
 *
 * `memory`, given to the file reader behind `source` too, lets the reader read into the
 * slots of the pool this encoder starts (see SlotMemory).
 */
export async function* encodeContainer(
  source: AsyncIterable<Uint8Array>,
  options: CompressOptions = {},
  summary?: CompressSummary,
  layout: SourceLayout = { format: "raw", plan: [], footer: {} },
  borrowed = false,
  memory?: SlotMemory,
): AsyncGenerator<Uint8Array> {
  const opts = resolveCompressOptions(options);
  const stats = Object.assign(summary ?? emptySummary(), emptySummary());
  // Deltas against a base (FORMAT.md §6.4): the source's tensors matched with the base's.
  const deltas =
    opts.base === undefined
      ? undefined
      : await DeltaPlan.build(opts.base, (layout.footer.tensors ?? []) as StoredTensor[], opts.chunkSize);
  const dedupe = opts.dedup && layout.reread ? new Deduper(layout.reread) : undefined;
  // Long-range matches (FORMAT.md §6.5): with auto, a chunk that repeats content of the
  // chunks before it may be coded with that content as a zstd dictionary.
  const longer =
    opts.long && opts.codec === "auto" && layout.reread
      ? new LongMatcher(layout.reread, opts.level ?? (opts.goal === "ratio" ? 19 : 3), opts.goal === "ratio")
      : undefined;
  const metadata: Metadata = {
    tool: `mmh ${VERSION}`,
    source: { name: opts.sourceName ?? null, format: layout.format },
    encoder: {
      codec: opts.codec === "auto" ? "auto" : opts.codec.name,
      ...(opts.codec === "auto" ? { goal: opts.goal } : {}),
      level: opts.level ?? null,
      chunkSize: opts.chunkSize,
    },
    ...(deltas && deltas.used.length > 0 ? { base: deltas.used } : {}),
  };
  // A footer known now is packed on node:zlib's thread pool while the chunks are coded.
  const footer = layout.footerReady ? packFooterSoon(layout.footer) : undefined;
  // Awaited at the end; until then a rejection (E_LIMIT) must not count as unhandled.
  let footerPending = footer !== undefined;
  footer?.then(
    () => (footerPending = false),
    () => (footerPending = false),
  );
  // node:zlib's pool gets the job going only as the event loop turns. A file's reads turn
  // it; bytes in memory are coded on microtasks alone, so the loop is let turn once per
  // chunk until the footer is packed (docs/ENGINE.md, Per-file and per-chunk costs).
  const turnLoop = layout.inMemory === true;
  const header = encodeHeader(metadata);
  let offset = 0;
  const emit = (bytes: Uint8Array): Uint8Array => {
    offset += bytes.length;
    stats.storedBytes = offset;
    return bytes;
  };
  yield emit(header);
  const entries: IndexEntry[] = [];
  let rawOffset = 0;
  async function* write(
    coded: Omit<EncodedChunk, "header" | "owned"> & { header: Uint8Array },
  ): AsyncGenerator<Uint8Array> {
    const chunk =
      (dedupe && (await dedupe.reference(coded as EncodedChunk, entries.length, rawOffset))) ||
      (longer && (await longer.consider(coded as EncodedChunk, entries.length, rawOffset, entries))) ||
      coded;
    entries.push({
      recordOffset: offset,
      rawOffset,
      rawLength: chunk.rawLength,
      codec: chunk.codec,
      rawCrc: chunk.rawCrc,
    });
    rawOffset += chunk.rawLength;
    stats.rawBytes = rawOffset;
    stats.chunks = entries.length;
    stats.codecs[chunk.codec] = (stats.codecs[chunk.codec] ?? 0) + 1;
    yield emit(chunk.header);
    if (chunk.payload.length > 0) yield emit(chunk.payload);
  }
  // Periodic data that goes on past one chunk becomes one P251 run record however long
  // it is, so a file of one repeated block costs a few hundred bytes (auto and p251 only).
  const runs = opts.codec === "auto" || opts.codec.id === "P251";
  let run: Run | undefined;
  const auto: AutoStats = { choiceMs: 0 };
  // With one thread, chunks are coded here. With more, they are coded on a pool's workers
  // once POOL_AFTER_BYTES have gone by. Either way the content is hashed on the pool's
  // hashing thread when there is a core for it (hashesApart, ContentHash). The choice of
  // codec is always made here, in order, so the output is the same for any thread count.
  const content = new ContentHash(hashesApart(opts.threads, layout.size, layout.inMemory, true));
  // Results of chunks coded on the pool's workers, taken back in order (see Schedule).
  const inflight = new Schedule<EncodedInSlot>((result) => result.slot.release());
  let pool: WorkerPool | undefined;
  let seenBytes = 0;
  let deltaBytes = 0;
  // Content whose length is known to be worth a hashing thread (hashesApart) starts the
  // pool at its first chunk: the file reader then reads into its slots from the start,
  // instead of the first POOL_AFTER_BYTES being held in copies and copied again into slots
  // (docs/ENGINE.md, Measurements behind engine choices: Bytes in memory).
  const poolAfter = content.open && layout.size !== undefined ? 0 : POOL_AFTER_BYTES;
  // Payload memory reused from chunk to chunk on this thread, when pieces are borrowed.
  let reused = new Uint8Array(0);
  const scratch = (size: number): Uint8Array => {
    if (reused.length < size) reused = new Uint8Array(Math.max(size, reused.length * 2));
    return reused.subarray(0, size);
  };
  async function* settled(result: EncodedInSlot): AsyncGenerator<Uint8Array> {
    auto.choiceMs += result.extraMs;
    if (borrowed) yield* write(result);
    else
      yield* write({ ...result, header: Buffer.from(result.header), payload: Buffer.from(result.payload) });
    result.slot.release();
  }
  async function* drain(): AsyncGenerator<Uint8Array> {
    for await (const result of inflight.drain()) yield* settled(result);
  }
  let sha256: string;
  try {
    for await (const { data: raw, dtype } of plannedChunks(source, layout.plan, opts.chunkSize)) {
      if (opts.signal?.aborted) throw new MmhError("E_ABORTED", "compression aborted");
      if (turnLoop && footerPending) await new Promise((resolve) => setImmediate(resolve));
      seenBytes += raw.length;
      // A chunk of a tensor the base also holds costs several times a plain one to code
      // against the base, so it brings the pool's start nearer by DELTA_POOL_WEIGHT times
      // its bytes (a small file against its base stays on this thread, which a worker's
      // start would only slow down).
      const against = deltas?.target(seenBytes - raw.length, raw.length);
      if (against) deltaBytes += raw.length;
      if (!pool && seenBytes + (DELTA_POOL_WEIGHT - 1) * deltaBytes >= poolAfter)
        pool = startPool(opts.threads, content, memory);
      // The chunk's slot when a pool runs: hashed from there, and coded from there. A chunk
      // read straight into a slot (SlotMemory) stays where it is; others are copied in.
      const home = pool?.holderOf(raw);
      const slot = home ? home.hold() : pool?.copyIn(raw);
      const at = home ? raw.byteOffset : 0;
      try {
        content.update(raw, slot, at);
        await content.room();
        if (run) {
          if (extendRun(run, raw)) continue;
          yield* drain();
          yield* write(finishRun(run));
          run = undefined;
        }
        // One search for a period serves both the run check and auto's choice.
        const period = runs ? findPeriod(raw) : null;
        run = runs ? startRun(raw, period) : undefined;
        if (run) continue;
        longer?.scan(raw, seenBytes - raw.length, seenBytes === layout.size);
        const choices: Choice[] =
          opts.codec === "auto"
            ? chooseCodecs(raw, dtype, opts.goal, opts.level, auto, period)
            : [{ id: opts.codec.id, level: opts.level }];
        // A chunk of a tensor the base also holds is coded against the base's bytes too
        // (encodeAgainstBase): on a worker like any other chunk, or here.
        if (deltas && against) {
          const fixed = opts.codec === "auto" ? undefined : choices[0];
          const job = deltas.job(against, raw.length, dtype, opts.goal, opts.level, fixed);
          const base = await deltas.base(against, raw.length);
          if (!inflight.offloads(pool) || !slot) {
            const plain = settledInline(raw, dtype, choices, auto);
            yield* write(encodeAgainstBase(raw, base, job, plain));
            continue;
          }
          for await (const result of inflight.room(pool, raw.length)) yield* settled(result);
          const baseSlot = pool.copyIn(base);
          try {
            inflight.push(pool.encodeDelta(slot, at, raw.length, baseSlot, dtype, choices, job), raw.length);
          } finally {
            baseSlot.release();
          }
          continue;
        }
        // Until a worker has started, chunks are coded here rather than waited for.
        if (!inflight.offloads(pool) || !slot) {
          const chunk = settledInline(raw, dtype, choices, auto, borrowed ? scratch : undefined);
          yield* write(chunk);
          // Written by now: a codec's own output memory goes back at once.
          if (borrowed && chunk.owned) dispose(chunk.payload, true);
          continue;
        }
        // Room first: at most inFlightLimit chunks and IN_FLIGHT_BYTES of content in flight.
        for await (const result of inflight.room(pool, raw.length)) yield* settled(result);
        inflight.push(pool.encode(slot, at, raw.length, dtype, choices), raw.length);
      } finally {
        slot?.release();
      }
    }
    yield* drain();
    if (run) yield* write(finishRun(run));
    sha256 = await content.digest();
  } finally {
    longer?.release();
    inflight.close();
    if (memory) memory.pool = undefined;
    await pool?.close();
    await deltas?.bases.close();
  }
  stats.choiceMs = auto.choiceMs;
  const indexOffset = offset;
  const index = encodeIndex(entries, layout.footer, footer && (await footer));
  yield emit(index);
  stats.sha256 = sha256;
  yield emit(
    encodeTrailer({
      indexOffset,
      indexLength: index.length,
      rawLength: rawOffset,
      chunkCount: entries.length,
      sha256: stats.sha256,
    }),
  );
}

/**
 * How many times its bytes a chunk coded against a base counts towards POOL_AFTER_BYTES:
 * 4 starts the pool after 2 MiB of such chunks. Coding one costs 12 to 28 times coding it
 * alone on one thread (bench/results/deltas.md), but a worker's start took longer than the
 * three chunks of a 1.5 MB file on a loaded machine (bench/results/base-speed.md).
 */
const DELTA_POOL_WEIGHT = 4;

/** Encode a chunk on this thread; the time spent on losing choices counts as choosing. */
function settledInline(
  raw: Uint8Array,
  dtype: DTypeName | null,
  choices: readonly Choice[],
  auto: AutoStats,
  output?: (size: number) => Uint8Array,
): EncodedChunk {
  const { chunk, extraMs } = encodeChoices(raw, dtype, choices, output);
  auto.choiceMs += extraMs;
  return chunk;
}
