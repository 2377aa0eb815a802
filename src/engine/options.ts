import { codecByName, resolveLevel } from "../codecs/registry.ts";
import type { Codec } from "../codecs/types.ts";
import { MmhError } from "../common/errors.ts";
import { MAX_CHUNK_SIZE } from "../container/format.ts";

/**
 * Default chunk size. Chosen by bench/chunk-size.ts (results in docs/FORMAT.md): past
 * 1 MiB, zstd -3 gains under 0.5% in ratio on model weights and text, while memory per
 * chunk in flight and the cost of a random read keep growing.
 */
export const DEFAULT_CHUNK_SIZE = 1 << 20;
export const MIN_CHUNK_SIZE = 4 << 10;
export const DEFAULT_CODEC = "zstd";

export interface CompressOptions {
  /** Codec name or FourCC: zstd (default), lz4, brotli, none. */
  codec?: string;
  /** Codec level; the codec's default when absent. */
  level?: number;
  /** Raw bytes per chunk, 4 KiB to 64 MiB; default 1 MiB. */
  chunkSize?: number;
  /** Name recorded in the metadata (a file's base name). */
  sourceName?: string;
  signal?: AbortSignal;
}

export interface DecompressOptions {
  /** Refuse to produce more than this many bytes (E_LIMIT). */
  maxOutputBytes?: number;
  signal?: AbortSignal;
}

export interface ResolvedCompressOptions {
  codec: Codec;
  level: number | undefined;
  chunkSize: number;
  sourceName: string | undefined;
  signal: AbortSignal | undefined;
}

export function resolveCompressOptions(options: CompressOptions = {}): ResolvedCompressOptions {
  const codec = codecByName(options.codec ?? DEFAULT_CODEC);
  const level = resolveLevel(codec, options.level);
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (!Number.isSafeInteger(chunkSize) || chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE) {
    throw new MmhError(
      "E_BAD_OPTION",
      `chunk size ${chunkSize} is out of range (${MIN_CHUNK_SIZE} to ${MAX_CHUNK_SIZE} bytes)`,
    );
  }
  return { codec, level, chunkSize, sourceName: options.sourceName, signal: options.signal };
}

export function resolveMaxOutput(options: DecompressOptions = {}): number {
  const max = options.maxOutputBytes ?? Number.MAX_SAFE_INTEGER;
  if (!Number.isSafeInteger(max) || max < 0) {
    throw new MmhError("E_BAD_OPTION", `maxOutputBytes must be a non-negative integer, got ${max}`);
  }
  return max;
}
