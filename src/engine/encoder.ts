import { createHash } from "node:crypto";
import { asBuffer } from "../common/bytes.ts";
import { MmhError } from "../common/errors.ts";
import {
  encodeHeader,
  encodeIndex,
  encodeTrailer,
  type IndexEntry,
  type Metadata,
} from "../container/format.ts";
import { VERSION } from "../version.ts";
import { encodeChunk } from "./chunk.ts";
import { type CompressOptions, resolveCompressOptions } from "./options.ts";

export interface CompressSummary {
  rawBytes: number;
  storedBytes: number;
  chunks: number;
  /** Chunks per codec FourCC that was actually stored. */
  codecs: Record<string, number>;
  sha256: string;
}

/** Cut a byte source into pieces of exactly `size` bytes (the last may be shorter). */
export async function* fixedChunks(
  source: AsyncIterable<Uint8Array>,
  size: number,
): AsyncGenerator<Uint8Array> {
  let pending: Buffer | undefined;
  let filled = 0;
  for await (const piece of source) {
    let bytes = asBuffer(piece);
    while (bytes.length > 0) {
      if (filled === 0 && bytes.length >= size) {
        yield bytes.subarray(0, size);
        bytes = bytes.subarray(size);
        continue;
      }
      pending ??= Buffer.allocUnsafe(size);
      const take = Math.min(size - filled, bytes.length);
      bytes.copy(pending, filled, 0, take);
      filled += take;
      bytes = bytes.subarray(take);
      if (filled === size) {
        yield pending;
        pending = undefined;
        filled = 0;
      }
    }
  }
  if (pending && filled > 0) yield pending.subarray(0, filled);
}

/**
 * The .mmh encoder: bytes in, container bytes out, front to back. Nothing is sought
 * back to, so the output can go straight to a pipe. `summary` is filled in as it goes
 * and is complete when the iteration ends.
 */
export async function* encodeContainer(
  source: AsyncIterable<Uint8Array>,
  options: CompressOptions = {},
  summary?: CompressSummary,
): AsyncGenerator<Uint8Array> {
  const opts = resolveCompressOptions(options);
  const stats: CompressSummary = summary ?? {
    rawBytes: 0,
    storedBytes: 0,
    chunks: 0,
    codecs: {},
    sha256: "",
  };
  Object.assign(stats, { rawBytes: 0, storedBytes: 0, chunks: 0, codecs: {}, sha256: "" });
  const metadata: Metadata = {
    tool: `mmh ${VERSION}`,
    source: { name: opts.sourceName ?? null, format: "raw" },
    encoder: { codec: opts.codec.name, level: opts.level ?? null, chunkSize: opts.chunkSize },
  };
  const header = encodeHeader(metadata);
  let offset = 0;
  const emit = (bytes: Uint8Array): Uint8Array => {
    offset += bytes.length;
    stats.storedBytes = offset;
    return bytes;
  };
  yield emit(header);
  const hash = createHash("sha256");
  const entries: IndexEntry[] = [];
  let rawOffset = 0;
  for await (const raw of fixedChunks(source, opts.chunkSize)) {
    if (opts.signal?.aborted) throw new MmhError("E_ABORTED", "compression aborted");
    hash.update(raw);
    const chunk = encodeChunk(raw, opts.codec, opts.level);
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
  const indexOffset = offset;
  const index = encodeIndex(entries, {});
  yield emit(index);
  stats.sha256 = hash.digest("hex");
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
