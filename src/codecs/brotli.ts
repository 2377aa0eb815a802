import { brotliCompressSync, brotliDecompressSync, constants } from "node:zlib";
import { MmhError } from "../common/errors.ts";
import type { Codec } from "./types.ts";

export const brotliCodec: Codec = {
  id: "BROT",
  name: "brotli",
  // Quality 11 is about ten times slower than 9 for a few percent on typical chunks,
  // so MMH's default is 9; pass --level 11 for the last bit.
  description: "Brotli (node:zlib), one stream per chunk",
  levels: { min: 0, max: 11, default: 9 },
  encode(raw, options) {
    const payload = brotliCompressSync(raw, {
      chunkSize: 1 << 20,
      params: {
        [constants.BROTLI_PARAM_QUALITY]: options.level ?? 9,
        [constants.BROTLI_PARAM_SIZE_HINT]: raw.length,
        [constants.BROTLI_PARAM_LGWIN]: Math.min(
          24,
          Math.max(10, Math.ceil(Math.log2(Math.max(2, raw.length)))),
        ),
      },
    });
    return { payload };
  },
  decode(payload, params, rawLength) {
    if (params.length !== 0) throw new MmhError("E_CORRUPT", "BROT chunk has parameters");
    let out: Buffer;
    try {
      out = brotliDecompressSync(payload, {
        chunkSize: Math.min(1 << 20, Math.max(64, rawLength)),
        maxOutputLength: Math.max(1, rawLength),
      });
    } catch (error) {
      throw new MmhError("E_CORRUPT", `brotli payload does not decode: ${(error as Error).message}`, {
        cause: error,
      });
    }
    if (out.length !== rawLength) {
      throw new MmhError(
        "E_CORRUPT",
        `brotli payload decodes to ${out.length} bytes, record says ${rawLength}`,
      );
    }
    return out;
  },
};
