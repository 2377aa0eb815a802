/**
 * The decoder's options, apart from options.ts (which re-exports them): options.ts also
 * resolves the encoder's, with the codec chooser's goals (auto.ts), which a decoder does not
 * load.
 */
import { MmhError } from "../common/errors.ts";

export interface DecompressOptions {
  /** Refuse to produce more than this many bytes (E_LIMIT). */
  maxOutputBytes?: number;
  /** Threads that decode chunks (default: the number of cores); 1 decodes on the calling thread. */
  threads?: number;
  signal?: AbortSignal;
  /**
   * Also compute the SHA-256 of the whole content and check it against the trailer's
   * (E_CHECKSUM). Default false: every chunk's bytes are checked against the CRC-32 of its
   * raw bytes in any case, as `zstd -d` checks its frames' XXH64, and the index and
   * trailer against the records; the SHA-256 costs about as much as decoding the content
   * again (docs/ENGINE.md). verify() always checks it.
   */
  checkSha256?: boolean;
  /** The base file or folder the file was compressed against (`base` of CompressOptions). */
  base?: string;
}

/** The base a decoder was given, checked. */
export function resolveBase(options: { base?: string }): string | undefined {
  const base = options.base;
  if (base !== undefined && (typeof base !== "string" || base === ""))
    throw new MmhError("E_BAD_OPTION", "base must be the path of a file or folder");
  return base;
}

export function resolveMaxOutput(options: DecompressOptions = {}): number {
  const max = options.maxOutputBytes ?? Number.MAX_SAFE_INTEGER;
  if (!Number.isSafeInteger(max) || max < 0) {
    throw new MmhError("E_BAD_OPTION", `maxOutputBytes must be a non-negative integer, got ${max}`);
  }
  return max;
}
