import { constants, zstdCompressSync, zstdDecompressSync } from "node:zlib";
import { MmhError } from "../common/errors.ts";
import type { Codec } from "./types.ts";

/** zstd's own lower bound (ZSTD_minCLevel): the fastest of the negative "fast" levels. */
export const ZSTD_MIN_LEVEL = -131072;

function windowLogFor(rawLength: number): number {
  // A frame made with pledgedSrcSize never needs a window larger than its content, so
  // the decoder refuses frames that ask for more (a hostile frame cannot make it allocate).
  return Math.min(31, Math.max(10, Math.ceil(Math.log2(Math.max(1, rawLength)))));
}

export const zstdCodec: Codec = {
  id: "ZSTD",
  name: "zstd",
  description: "Zstandard (node:zlib), one frame per chunk",
  levels: { min: ZSTD_MIN_LEVEL, max: 22, default: 3, excluded: [0] },
  encode(raw, options) {
    const level = options.level ?? 3;
    const payload = zstdCompressSync(raw, {
      chunkSize: 1 << 20,
      pledgedSrcSize: raw.length,
      params: {
        [constants.ZSTD_c_compressionLevel]: level,
        [constants.ZSTD_c_checksumFlag]: 0,
        [constants.ZSTD_c_contentSizeFlag]: 1,
      },
    });
    return { payload };
  },
  decode(payload, params, rawLength) {
    if (params.length !== 0) throw new MmhError("E_CORRUPT", "ZSTD chunk has parameters");
    let out: Buffer;
    try {
      out = zstdDecompressSync(payload, {
        chunkSize: Math.min(1 << 20, Math.max(64, rawLength)),
        maxOutputLength: Math.max(1, rawLength),
        params: { [constants.ZSTD_d_windowLogMax]: windowLogFor(rawLength) },
      });
    } catch (error) {
      throw new MmhError("E_CORRUPT", `zstd payload does not decode: ${(error as Error).message}`, {
        cause: error,
      });
    }
    if (out.length !== rawLength) {
      throw new MmhError(
        "E_CORRUPT",
        `zstd payload decodes to ${out.length} bytes, record says ${rawLength}`,
      );
    }
    return out;
  },
};
