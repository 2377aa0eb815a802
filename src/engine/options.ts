import { codecByName, resolveLevel } from "../codecs/registry.ts";
import type { Codec } from "../codecs/types.ts";
import { zstdCodec } from "../codecs/zstd.ts";
import { MmhError } from "../common/errors.ts";
import { MAX_CHUNK_SIZE } from "../container/format.ts";
import { GOALS, type Goal } from "./auto.ts";
import { resolveThreads } from "./threads.ts";

export { type DecompressOptions, resolveBase, resolveMaxOutput } from "./decodeoptions.ts";

/**
 * Default chunk size, chosen by bench/chunk-size.ts (bench/results/chunk-size.md): from
 * 512 KiB up, zstd -3 on weights gains nothing measurable in ratio and no speed, while
 * the memory per chunk in flight and the cost of a random read double with each step.
 */
export const DEFAULT_CHUNK_SIZE = 512 << 10;
export const MIN_CHUNK_SIZE = 4 << 10;
export const DEFAULT_CODEC = "auto";

export interface CompressOptions {
  /** "auto" (default: the best codec per chunk), or a codec name or FourCC: hier, zstd, lz4, brotli, p251, none. */
  codec?: string;
  /** What "auto" optimises for: "ratio", "balanced" (default) or "speed". */
  goal?: Goal;
  /** Codec level; the codec's default when absent. */
  level?: number;
  /** Raw bytes per chunk, 4 KiB to 64 MiB; default 512 KiB. */
  chunkSize?: number;
  /** Recognise model formats (safetensors, npy, npz, GGUF, PyTorch) to cut chunks at tensors; default true. */
  recognise?: boolean;
  /** Name recorded in the metadata (a file's base name). */
  sourceName?: string;
  signal?: AbortSignal;
  /**
   * Threads that code chunks (default: the number of cores). 1 codes on the calling
   * thread; more start a worker pool once 8 MiB have gone by (docs/ENGINE.md).
   */
  threads?: number;
  /**
   * Store a chunk whose bytes equal an earlier chunk's as a reference to it (FORMAT.md
   * §6.3); default true. Needs a source that can be read again (a file, a folder, bytes):
   * a stream is never deduplicated.
   */
  dedup?: boolean;
  /**
   * Long-range matches (FORMAT.md §6.5): with `auto`, a chunk that repeats content of the
   * chunks before it (up to 4 MiB back) is coded with that content as a zstd dictionary,
   * when that is smaller. Default: on for the ratio and balanced goals, off for speed. As
   * with dedup, only a source that can be read again (a file, bytes in memory) has them.
   */
  long?: boolean;
  /**
   * A base model (a file, or a folder of them): each tensor whose name, dtype and shape
   * match one of the base's is stored as its difference from it (FORMAT.md §6.4). Decoding
   * then needs the same base.
   */
  base?: string;
}

export interface ResolvedCompressOptions {
  /** The one codec for every chunk, or "auto". */
  codec: Codec | "auto";
  goal: Goal;
  level: number | undefined;
  chunkSize: number;
  sourceName: string | undefined;
  signal: AbortSignal | undefined;
  threads: number;
  dedup: boolean;
  long: boolean;
  base: string | undefined;
}

export function resolveCompressOptions(options: CompressOptions = {}): ResolvedCompressOptions {
  const name = options.codec ?? DEFAULT_CODEC;
  const goal = options.goal ?? "balanced";
  if (!GOALS.includes(goal))
    throw new MmhError("E_BAD_OPTION", `unknown goal "${goal}" (ratio, balanced or speed)`);
  const codec = name.trim().toLowerCase() === "auto" ? "auto" : codecByName(name);
  // With auto, a level is zstd's level (it is passed to the zstd and HIER candidates).
  const level =
    codec === "auto"
      ? options.level === undefined
        ? undefined
        : resolveLevel(zstdCodec, options.level)
      : resolveLevel(codec, options.level);
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (!Number.isSafeInteger(chunkSize) || chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE) {
    throw new MmhError(
      "E_BAD_OPTION",
      `chunk size ${chunkSize} is out of range (${MIN_CHUNK_SIZE} to ${MAX_CHUNK_SIZE} bytes)`,
    );
  }
  const threads = resolveThreads(options.threads);
  const dedup = options.dedup ?? true;
  if (typeof dedup !== "boolean") throw new MmhError("E_BAD_OPTION", "dedup must be true or false");
  const long = options.long ?? goal !== "speed";
  if (typeof long !== "boolean") throw new MmhError("E_BAD_OPTION", "long must be true or false");
  const base = options.base;
  if (base !== undefined && (typeof base !== "string" || base === ""))
    throw new MmhError("E_BAD_OPTION", "base must be the path of a file or folder");
  return {
    codec,
    goal,
    level,
    chunkSize,
    sourceName: options.sourceName,
    signal: options.signal,
    threads,
    dedup,
    long,
    base,
  };
}
