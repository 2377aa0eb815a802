/**
 * The decoding half of the library (index.ts exports it): decompress, decompressStream,
 * decompressFile, decompressFileStream, verify and inspectLegacy, with the stream and
 * summary types they share with the encoding half. A module of its own so that the
 * command's decoding (`mmh -d`) loads the decoder without the encoder, the format
 * readers and the tools (docs/ENGINE.md, Start-up).
 */
import { constants } from "node:buffer";
import { closeSync, ftruncateSync, openSync } from "node:fs";
import { asBuffer } from "./common/bytes.ts";
import { nowMs } from "./common/clock.ts";
import { type CodedStream, coded, type FileOptions, once, type StreamOutputOptions } from "./common/coded.ts";
import { expectCrcBytes } from "./common/crc.ts";
import { guard, MmhError } from "./common/errors.ts";
import { readFilePieces, readFileStream, writeFileAtomic, writeFileAtomicBy } from "./common/files.ts";
import { stat } from "./common/fsp.ts";
import { bufferSource, fileSource } from "./common/source.ts";
import {
  HEADER_FIXED_SIZE,
  INDEX_FIXED_SIZE,
  MAX_CHUNK_SIZE,
  parseTrailer,
  TRAILER_SIZE,
} from "./container/format.ts";
import { type DecompressOptions, resolveMaxOutput } from "./engine/decodeoptions.ts";
import { type Borrowing, type DecodeSummary, decodeContainer } from "./engine/decoder.ts";
import { decodesApart, FileWorkers } from "./engine/filedecode.ts";
import { KernelBatches } from "./engine/kernelbatches.ts";
import { type ProgressOptions, ProgressReporter } from "./engine/progress.ts";
import { MmhReader } from "./engine/reader.ts";
import { SlotMemory } from "./engine/slots.ts";
import { defaultThreadsFor, resolveThreads } from "./engine/threads.ts";
import { type LegacyInspection, probeLegacy } from "./legacy/mmhrs.ts";

export {
  type CodedStream,
  coded,
  type FileOptions,
  once,
  type StreamOutputOptions,
} from "./common/coded.ts";

/** What decompressing (or verifying) did. */
export interface DecompressSummary {
  rawBytes: number;
  storedBytes: number;
  chunks: number;
  /** Chunks per codec FourCC. */
  codecs: Record<string, number>;
  /** The content's SHA-256 recorded in the trailer (checked with `checkSha256`, and always by verify). */
  sha256: string;
  /** Wall time of the whole operation in milliseconds. */
  ms: number;
}

/** Output options of the decompressing streams. */
export interface DecompressStreamOptions extends StreamOutputOptions {
  /**
   * With `reuse`: nothing else compresses or decompresses on this thread until the stream
   * ends (as in the mmh command), so a piece may also lie in memory a codec reuses from
   * call to call (see Borrowing). Default false.
   */
  exclusive?: boolean;
}

function borrowingOf(options: DecompressStreamOptions): Borrowing {
  if (!options.reuse) return false;
  return options.exclusive === true ? "exclusive" : true;
}

export async function collect(parts: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const pieces: Uint8Array[] = [];
  for await (const part of parts) pieces.push(part);
  return Buffer.concat(pieces);
}

/**
 * The pieces written into `output` at their offsets (a piece already in its place is
 * not copied): the content, when they fill it exactly.
 */
async function collectInto(parts: AsyncIterable<Uint8Array>, output: Buffer): Promise<Uint8Array> {
  let at = 0;
  for await (const part of parts) {
    if (at + part.length > output.length)
      throw new MmhError("E_CORRUPT", `content runs past the ${output.length} bytes the index gives`);
    if (part.buffer !== output.buffer || part.byteOffset !== output.byteOffset + at) output.set(part, at);
    at += part.length;
  }
  if (at !== output.length)
    throw new MmhError("E_CORRUPT", `content holds ${at} bytes, the index gives ${output.length}`);
  return output;
}

/**
 * The content length the trailer of the container `bytes` gives, or undefined when it
 * cannot be read. The trailer alone (checked by its CRC-32): the index and its footer (a
 * tensor table of hundreds of entries, parsed and checked) are read by the decoder at
 * the end anyway, and it checks this length against the chunks, as collectInto does.
 */
function indexedLength(bytes: Uint8Array): number | undefined {
  if (bytes.length < HEADER_FIXED_SIZE + INDEX_FIXED_SIZE + TRAILER_SIZE) return undefined;
  try {
    const trailer = parseTrailer(asBuffer(bytes.subarray(bytes.length - TRAILER_SIZE)));
    return trailer.indexOffset + trailer.indexLength === bytes.length - TRAILER_SIZE
      ? trailer.rawLength
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Memory for the content of the container `bytes`, sized from its index, or undefined
 * when that cannot be known (not an .mmh container, damage: the decoder then says why)
 * or is more than `maxOutput`.
 */
async function contentMemory(bytes: Uint8Array, maxOutput: number): Promise<Buffer | undefined> {
  const rawLength = indexedLength(bytes);
  if (rawLength === undefined || rawLength > maxOutput || rawLength > constants.MAX_LENGTH) return undefined;
  try {
    return Buffer.allocUnsafeSlow(rawLength);
  } catch {
    return undefined;
  }
}

/**
 * The content of the container `bytes`, into `output` (sized from the index) when given.
 * Without a threads option, as for a file: one thread below the size where a pool pays.
 */
function decodeHeld(bytes: Uint8Array, options: DecompressOptions, output?: Buffer): Promise<Uint8Array> {
  const opts = { ...options, threads: options.threads ?? defaultThreadsFor(bytes.length, "decompress") };
  const decoded = decodeContainer(
    once(bytes),
    opts,
    undefined,
    false,
    undefined,
    async () => bufferSource(bytes),
    output,
  );
  return output ? collectInto(decoded, output) : collect(decoded);
}

function emptyDecodeSummary(): DecodeSummary {
  return { chunks: 0, rawBytes: 0, storedBytes: 0, codecs: {} };
}

function decompressSummary(summary: DecodeSummary, ms: number): DecompressSummary {
  return {
    rawBytes: summary.rawBytes,
    storedBytes: summary.storedBytes,
    chunks: summary.chunks,
    codecs: summary.codecs,
    sha256: summary.trailer?.sha256 ?? "",
    ms,
  };
}

/**
 * Decompress a whole .mmh container held in memory. Without a `threads` option, the
 * default for a file of its size (defaultThreadsFor).
 */
export function decompress(bytes: Uint8Array, options: DecompressOptions = {}): Promise<Uint8Array> {
  return guard(async () => {
    // The content is decoded into one buffer sized from the index, each chunk in its place.
    return decodeHeld(bytes, options, await contentMemory(bytes, resolveMaxOutput(options)));
  });
}

/**
 * Decompress a whole .mmh container held in memory into `target`, from its start, and
 * resolve to the content's length: for callers that reuse their memory (a loader filling
 * a tensor buffer it allocated once), as zstd's ZSTD_decompress writes into its caller's
 * `dst`. Nothing is written when the content does not fit (E_LIMIT); a damaged chunk
 * found while decoding stops it with its error, and `target` then holds the chunks before
 * it. A container whose index cannot be read (a legacy file) is decoded as decompress()
 * decodes it, then copied. Options as for decompress().
 */
export function decompressInto(
  bytes: Uint8Array,
  target: Uint8Array,
  options: DecompressOptions = {},
): Promise<number> {
  return guard(async () => {
    const maxOutput = resolveMaxOutput(options);
    const rawLength = indexedLength(bytes);
    if (rawLength === undefined) {
      // No index to size the content from (a legacy MMH-RS file, damage): decoded as
      // decompress() decodes it, which says what is wrong, then copied.
      const content = await decodeHeld(bytes, {
        ...options,
        maxOutputBytes: Math.min(maxOutput, target.length),
      });
      target.set(content);
      return content.length;
    }
    if (rawLength > maxOutput)
      throw new MmhError("E_LIMIT", `the content is ${rawLength} bytes, over maxOutputBytes`);
    if (rawLength > target.length)
      throw new MmhError("E_LIMIT", `the content is ${rawLength} bytes; the target holds ${target.length}`);
    const output = Buffer.from(target.buffer, target.byteOffset, rawLength);
    await decodeHeld(bytes, options, output);
    return rawLength;
  });
}

/**
 * Decompress a container stream front to back (no index needed); yields content.
 * `onProgress` counts the container bytes taken from `source` and the content yielded.
 */
export function decompressStream(
  source: AsyncIterable<Uint8Array>,
  options: DecompressOptions & ProgressOptions & DecompressStreamOptions = {},
): CodedStream<DecompressSummary> {
  const summary = emptyDecodeSummary();
  return coded(
    async function* () {
      const progress = new ProgressReporter(options);
      progress.report();
      yield* progress.writing(
        decodeContainer(progress.reading(source), options, summary, borrowingOf(options)),
      );
    },
    (ms) => decompressSummary(summary, ms),
  );
}

/** The size of `file`, or undefined when it cannot be read (the read that follows says why). */
function sizeOf(file: string): Promise<number | undefined> {
  return stat(file).then(
    (st) => (st.isFile() ? st.size : undefined),
    () => undefined,
  );
}

/**
 * Decompress `src` (.mmh) into `dst`, checking every chunk (and, with `checkSha256`, the
 * content hash).
 * `onProgress` reports the bytes of `src` read (of `totalBytes`, its size) and the
 * content bytes written. With `exclusive`, nothing else compresses or decompresses on this
 * thread until it resolves (the mmh command), so the calling thread's records, when it
 * decodes some beside the workers, are written from a codec's own memory.
 */
export function decompressFile(
  src: string,
  dst: string,
  options: DecompressOptions &
    FileOptions &
    ProgressOptions &
    Pick<DecompressStreamOptions, "exclusive"> = {},
): Promise<DecompressSummary> {
  return guard(async () => {
    const maxOutput = resolveMaxOutput(options);
    const progress = new ProgressReporter(options);
    const started = nowMs();
    const summary = emptyDecodeSummary();
    const apart = await decodingApart(src, options, maxOutput);
    if (apart) {
      const { reader, workers } = apart;
      progress.totalBytes = reader.source.size;
      progress.report();
      try {
        await writeFileAtomicBy(
          dst,
          async (output) => {
            ftruncateSync(output, reader.rawLength);
            const input = openSync(src, "r");
            try {
              await workers.decode(reader, input, output, summary, progress, options.signal, {
                lent: options.exclusive === true,
              });
            } finally {
              closeSync(input);
            }
            progress.report(true);
          },
          { ...options, input: src },
        );
      } finally {
        await workers.close();
        await reader.close();
      }
      return decompressSummary(summary, nowMs() - started);
    }
    // writeFileAtomic writes each piece before it asks for the next, so pieces may be borrowed.
    const decoded = progress.writing(decodeFile(src, options, summary, progress, true));
    await writeFileAtomic(dst, decoded, { ...options, input: src });
    return decompressSummary(summary, nowMs() - started);
  });
}

/**
 * Decompress the .mmh file `src` onto the open descriptor `fd` (standard output, a pipe),
 * in order from its position, on several threads that each write their own records in
 * turn (filedecode.ts), so that no decoded byte crosses threads: when its records may be
 * shared out and more than one thread decodes (`threads`; by default as for decoding into
 * a file, defaultThreadsFor's "decompressToFile"); otherwise it resolves to undefined
 * having written nothing, and the caller decodes front to back. The records before a
 * damaged one are written, as the front-to-back decoder yields them. With `exclusive`,
 * nothing else codes on this thread meanwhile.
 */
export function decompressFileToFd(
  src: string,
  fd: number,
  options: DecompressOptions & ProgressOptions & { exclusive?: boolean } = {},
): Promise<DecompressSummary | undefined> {
  return guard(async () => {
    const maxOutput = resolveMaxOutput(options);
    const started = nowMs();
    const apart = await decodingApart(src, options, maxOutput);
    if (!apart) return undefined;
    const { reader, workers } = apart;
    const progress = new ProgressReporter(options);
    const summary = emptyDecodeSummary();
    progress.totalBytes = reader.source.size;
    progress.report();
    expectCrcBytes(reader.rawLength);
    const input = openSync(src, "r");
    try {
      await workers.decode(reader, input, fd, summary, progress, options.signal, {
        ordered: true,
        lent: options.exclusive === true,
      });
      progress.report(true);
    } finally {
      closeSync(input);
      await workers.close();
      await reader.close();
    }
    return decompressSummary(summary, nowMs() - started);
  });
}

/**
 * For a file decoded on more than one thread (by default from the size at which
 * defaultThreadsFor gives "decompressToFile" every core): its index, and the
 * workers, started first so that their start-up overlaps reading the index, when its
 * records may be shared out (filedecode.ts); otherwise undefined, and the file is decoded
 * front to back. Not with `checkSha256`: the hash takes the content in order.
 */
async function decodingApart(
  src: string,
  options: DecompressOptions,
  maxOutput: number,
): Promise<{ reader: MmhReader; workers: FileWorkers } | undefined> {
  if (options.checkSha256 === true || options.signal?.aborted) return undefined;
  const threads = options.threads ?? defaultThreadsFor(await sizeOf(src), "decompressToFile");
  if (threads < 2) return undefined;
  const workers = new FileWorkers(threads - 1);
  let reader: MmhReader | undefined;
  try {
    reader = await MmhReader.open(await fileSource(src), options.base);
  } catch {
    // Damage, a legacy file: the front-to-back decoder says what is wrong.
  }
  if (reader && decodesApart(reader) && reader.rawLength <= maxOutput) return { reader, workers };
  await workers.close();
  await reader?.close();
  return undefined;
}

/**
 * Decompress the .mmh file `src`; yields its content, checked as decompressFile checks
 * it. `onProgress` reports the bytes of `src` read (of `totalBytes`, its size) and the
 * content bytes yielded.
 */
export function decompressFileStream(
  src: string,
  options: DecompressOptions & ProgressOptions & DecompressStreamOptions = {},
): CodedStream<DecompressSummary> {
  const summary = emptyDecodeSummary();
  return coded(
    async function* () {
      const progress = new ProgressReporter(options);
      yield* progress.writing(decodeFile(src, options, summary, progress, borrowingOf(options)));
    },
    (ms) => decompressSummary(summary, ms),
  );
}

/**
 * A file's content, decoded front to back; without a `threads` option, the default for
 * the file's size. A borrowing decoder copies what it keeps of a piece, so then the read
 * buffers are recycled and, once a pool runs, the file is read into its slots.
 */
async function* decodeFile(
  src: string,
  options: DecompressOptions,
  summary: DecodeSummary,
  progress: ProgressReporter,
  borrowed: Borrowing,
): AsyncGenerator<Uint8Array> {
  progress.totalBytes = await sizeOf(src);
  progress.report();
  const memory = borrowed !== false ? new SlotMemory() : undefined;
  // Pieces cut where the records are, so that none is copied to be cut again.
  const parts = await recordCuts(src);
  const opts = {
    ...options,
    threads: options.threads ?? defaultThreadsFor(progress.totalBytes, "decompress"),
  };
  // A large content is checked with the native CRC-32 from its first chunk on.
  if (parts) expectCrcBytes(parts.contentLength);
  // One thread and nothing else coding on it (the mmh command): records are read into
  // the HIER kernels' memory and decoded where they lie (KernelBatches).
  const lent =
    parts && borrowed === "exclusive" && resolveThreads(opts.threads) === 1
      ? KernelBatches.open(
          parts.largestRaw,
          parts.largestHier,
          progress.totalBytes ?? Number.MAX_SAFE_INTEGER,
        )
      : undefined;
  try {
    const source = progress.reading(
      parts
        ? readFilePieces(src, parts.cuts, options.signal, borrowed !== false, lent ?? memory)
        : readFileStream(src, 4 << 20, options.signal, borrowed !== false, memory),
    );
    yield* decodeContainer(
      source,
      opts,
      summary,
      borrowed,
      lent ? undefined : memory,
      () => fileSource(src),
      undefined,
      parts?.contentLength,
    );
  } finally {
    lent?.close();
  }
}

/** Bytes per piece past the container's end (a decoder reading them reports them as extra bytes). */
const PIECE_PAST_END = 4 << 20;

/**
 * The sizes of the parts of the .mmh file `src` in file order, from its index: the
 * header, each record, the index, the trailer (then pieces of PIECE_PAST_END), and the
 * content's length as the index gives it; or undefined when the index cannot be read
 * first (damage, a legacy file: the decoder then reads the file in even pieces and says
 * what is wrong).
 */
async function recordCuts(
  src: string,
): Promise<
  { cuts: Iterable<number>; contentLength: number; largestRaw: number; largestHier: number } | undefined
> {
  let reader: MmhReader;
  try {
    reader = await MmhReader.open(await fileSource(src));
  } catch {
    return undefined;
  }
  const size = reader.source.size;
  const { indexOffset } = reader.trailer;
  const starts = [0, ...reader.chunks.map((chunk) => chunk.recordOffset), indexOffset, size - TRAILER_SIZE];
  const contentLength = reader.rawLength;
  // The largest record a chunk's codec decodes whole (longer runs are written in pieces).
  let largestRaw = 0;
  let largestHier = 0;
  for (const { rawLength, codec } of reader.chunks) {
    if (rawLength > MAX_CHUNK_SIZE) continue;
    largestRaw = Math.max(largestRaw, rawLength);
    if (codec === "HIER") largestHier = Math.max(largestHier, rawLength);
  }
  await reader.close();
  const cuts = (function* () {
    for (let i = 1; i < starts.length; i++) if (starts[i] > starts[i - 1]) yield starts[i] - starts[i - 1];
    yield TRAILER_SIZE;
    for (;;) yield PIECE_PAST_END;
  })();
  return { cuts, contentLength, largestRaw, largestHier };
}

/**
 * What the legacy MMH-RS file `file` is (version, coding, declared size, stored
 * extension), from its first bytes; undefined when it is not one. An HPC1 blob, which
 * MMH-RS never wrote correctly, is E_UNSUPPORTED. decompress and the other decoding calls
 * read these files as they read .mmh files.
 */
export function inspectLegacy(file: string): Promise<LegacyInspection | undefined> {
  return guard(async () => {
    const source = await fileSource(file);
    try {
      return await probeLegacy(source);
    } finally {
      await source.close();
    }
  });
}

/**
 * Check every record, every chunk checksum, the index and the content sha256, decoding
 * the whole file without writing anything. Resolves with a summary when all hold;
 * rejects with the first failure's coded error otherwise. `onProgress` reports the bytes
 * of `file` read (of `totalBytes`, its size); `writtenBytes` stays 0.
 */
export function verify(
  file: string,
  options: DecompressOptions & ProgressOptions = {},
): Promise<DecompressSummary> {
  return guard(async () => {
    const progress = new ProgressReporter(options);
    const started = nowMs();
    const summary = emptyDecodeSummary();
    for await (const _ of decodeFile(file, { ...options, checkSha256: true }, summary, progress, true)) {
      // decoding checks everything; the content itself is not needed
    }
    progress.report(true);
    return decompressSummary(summary, nowMs() - started);
  });
}
