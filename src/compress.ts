/**
 * The encoding half of the library (index.ts exports it): compress, compressStream,
 * compressFile and compressFileStream. A module of its own so that the command's
 * compression (`mmh -c`) loads the encoder and the format readers without the archive,
 * open() and the tools (docs/ENGINE.md, Start-up).
 */
import { basename } from "node:path";
import { nowMs } from "./common/clock.ts";
import { type CodedStream, coded, type FileOptions, once, type StreamOutputOptions } from "./common/coded.ts";
import { expectCrcBytes } from "./common/crc.ts";
import { guard, MmhError } from "./common/errors.ts";
import { readFilePieces, writeFileAtomic } from "./common/files.ts";
import { bufferSource, fileSource } from "./common/source.ts";
import { describeSource, joinsFor, usesDtypes } from "./engine/describe.ts";
import {
  type CompressSummary as EncodeSummary,
  emptySummary,
  encodeContainer,
  type SourceLayout,
} from "./engine/encoder.ts";
import { type CompressOptions, resolveCompressOptions } from "./engine/options.ts";
import { describeStream } from "./engine/prefix.ts";
import { type ProgressOptions, ProgressReporter } from "./engine/progress.ts";
import { bytesReread, closing, fileReread } from "./engine/refwriter.ts";
import { SlotMemory } from "./engine/slots.ts";
import { defaultThreadsFor } from "./engine/threads.ts";

/** What compressing did. */
export interface CompressSummary extends EncodeSummary {
  /** Wall time of the whole operation in milliseconds. */
  ms: number;
}

/** Options of compressStream() for what it knows of its input. */
export interface StreamSizeOptions {
  /**
   * The stream's exact length in bytes, when it is known beforehand (as zstd's
   * --stream-size). Formats whose header comes first (safetensors, npy, GGUF; any format
   * when the whole stream fits in the bytes held back for it) are then recognised from the
   * first bytes, so the container gets the tensor table and tensor-aligned chunks a file
   * gets. A stream of another length fails with E_BAD_OPTION at its end.
   */
  size?: number;
}

/**
 * Compress bytes into an .mmh container (model formats are recognised, as for files).
 * Without a `threads` option, the default for a file of their size (defaultThreadsFor).
 */
export function compress(bytes: Uint8Array, given: CompressOptions = {}): Promise<Uint8Array> {
  return guard(async () => {
    const options = { ...given, threads: given.threads ?? defaultThreadsFor(bytes.length, "compress") };
    const opts = resolveCompressOptions(options);
    const layout = await describeSource(
      bufferSource(bytes),
      opts.chunkSize,
      options.recognise ?? true,
      usesDtypes(opts),
      opts.dedup,
      joinsFor(opts),
    );
    // Pieces are borrowed (each copied into the output before the next is asked for), so
    // codecs write into memory reused from chunk to chunk, and the output is written once.
    const pieces = encodeContainer(
      once(bytes),
      options,
      undefined,
      { ...layout, reread: bytesReread(bytes), size: bytes.length, inMemory: true },
      true,
    );
    return gather(pieces, containerBound(bytes.length, layout.plan.length, opts.chunkSize));
  });
}

/**
 * Bytes a container of `size` content bytes in about `planned` + size / chunkSize chunks
 * usually fits in: no record is longer than its raw bytes and its header, and the header,
 * index and trailer take a few hundred bytes and some per chunk. gather() grows past it
 * when the footer's metadata is larger.
 */
export function containerBound(size: number, planned: number, chunkSize: number): number {
  const chunks = planned + Math.ceil(size / chunkSize) + 1;
  return size + 4096 + chunks * 256;
}

/**
 * The pieces written one after another into memory of `capacity` bytes, grown if they
 * run past it. Only the pages written are touched, so an output much shorter than its
 * capacity costs no memory for the rest; one under half of it is copied to its own memory
 * so that it does not keep the rest reserved.
 */
export async function gather(parts: AsyncIterable<Uint8Array>, capacity: number): Promise<Uint8Array> {
  let output = Buffer.allocUnsafeSlow(capacity);
  let at = 0;
  for await (const part of parts) {
    if (at + part.length > output.length) {
      const larger = Buffer.allocUnsafeSlow(Math.max(2 * output.length, at + part.length));
      larger.set(output.subarray(0, at));
      output = larger;
    }
    output.set(part, at);
    at += part.length;
  }
  return at < output.length / 2 ? Buffer.from(output.subarray(0, at)) : output.subarray(0, at);
}

/**
 * Compress a byte stream; yields container bytes as they are produced. `onProgress`
 * counts the bytes taken from `source` and yielded (no total: a stream's size is unknown).
 */
export function compressStream(
  source: AsyncIterable<Uint8Array>,
  options: CompressOptions & ProgressOptions & StreamOutputOptions & StreamSizeOptions = {},
): CodedStream<CompressSummary> {
  const summary = emptySummary();
  const size = options.size;
  if (size !== undefined && !(Number.isSafeInteger(size) && size >= 0))
    throw new MmhError("E_BAD_OPTION", `size must be a whole number of bytes, not ${size}`);
  return coded(
    async function* () {
      const progress = new ProgressReporter(options);
      progress.report();
      let input: AsyncIterable<Uint8Array> = progress.reading(source);
      let layout: SourceLayout | undefined;
      if (size !== undefined) {
        const chunkSize = resolveCompressOptions(options).chunkSize;
        // With recognition off, describeStream still checks the length.
        ({ layout, source: input } = await describeStream(input, size, chunkSize, options.recognise ?? true));
      }
      yield* progress.writing(encodeContainer(input, options, summary, layout, options.reuse));
    },
    (ms) => ({ ...summary, ms }),
  );
}

/**
 * Compress the file `src`; yields the container's bytes, the same bytes compressFile
 * writes: the file's format is read first (safetensors, npy, GGUF, ...), so chunks follow
 * its tensors. `onProgress` reports the bytes of `src` read, of `totalBytes` (its size).
 */
export function compressFileStream(
  src: string,
  options: CompressOptions & ProgressOptions & StreamOutputOptions = {},
): CodedStream<CompressSummary> {
  const summary = emptySummary();
  return coded(
    async function* () {
      const progress = new ProgressReporter(options);
      const described = await describeFile(src, options, progress);
      yield* encodeFile(src, described.layout, described.options, summary, progress, options.reuse ?? false);
    },
    (ms) => ({ ...summary, ms }),
  );
}

/**
 * The file's format and chunk plan, read before anything is written, and the options to
 * code it with: without a `threads` option, the default for the file's size.
 */
async function describeFile<T extends CompressOptions>(
  src: string,
  options: T,
  progress: ProgressReporter,
): Promise<{ layout: SourceLayout; options: T }> {
  const opts = resolveCompressOptions(options);
  const probe = await fileSource(src);
  try {
    progress.totalBytes = probe.size;
    progress.report();
    const layout = await describeSource(
      probe,
      opts.chunkSize,
      options.recognise ?? true,
      usesDtypes(opts),
      opts.dedup,
      joinsFor(opts),
    );
    return {
      layout: { ...layout, size: probe.size },
      options: { ...options, threads: options.threads ?? defaultThreadsFor(probe.size, "compress") },
    };
  } finally {
    await probe.close();
  }
}

function encodeFile(
  src: string,
  layout: SourceLayout,
  options: CompressOptions,
  summary: EncodeSummary,
  progress: ProgressReporter,
  borrowed: boolean,
): AsyncGenerator<Uint8Array> {
  const chunkSize = resolveCompressOptions(options).chunkSize;
  // A large content is checked with the native CRC-32 from its first chunk on, as a
  // decoder that read the content's length does (common/crc.ts).
  if (layout.size !== undefined) expectCrcBytes(layout.size);
  // Pieces cut as the plan cuts chunks, so that none is copied to be cut again.
  const sizes = function* () {
    for (const spec of layout.plan) yield spec.length;
    for (;;) yield chunkSize;
  };
  // The encoder keeps no piece past its chunk (pieces are whole chunks, and what it holds
  // it copies), so read buffers can be recycled; once a pool runs, the file is read into
  // its slots.
  const memory = new SlotMemory();
  const source = progress.reading(readFilePieces(src, sizes(), options.signal, true, memory));
  // Chunks that repeat earlier ones are read again from the file to be compared.
  const reread = fileReread(src);
  return progress.writing(
    closing(
      encodeContainer(
        source,
        { ...options, sourceName: options.sourceName ?? basename(src) },
        summary,
        { ...layout, reread: reread.read },
        borrowed,
        memory,
      ),
      reread.close,
    ),
  );
}

/**
 * Compress `src` into `dst` (written atomically; an existing dst needs `overwrite`).
 * `onProgress` reports the bytes of `src` read (of `totalBytes`, its size) and the
 * container bytes written.
 */
export function compressFile(
  src: string,
  dst: string,
  options: CompressOptions & FileOptions & ProgressOptions = {},
): Promise<CompressSummary> {
  return guard(async () => {
    const started = nowMs();
    const summary = emptySummary();
    const progress = new ProgressReporter(options);
    const described = await describeFile(src, options, progress);
    // writeFileAtomic writes each piece before it asks for the next: pieces may be reused.
    const encoded = encodeFile(src, described.layout, described.options, summary, progress, true);
    await writeFileAtomic(dst, encoded, { ...options, input: src });
    return { ...summary, ms: nowMs() - started };
  });
}
