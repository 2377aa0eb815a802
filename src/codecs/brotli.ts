import { brotliCompressSync, brotliDecompressSync, constants } from "node:zlib";
import { MmhError } from "../common/errors.ts";
import type { Codec } from "./types.ts";
import { decodePieceSize } from "./zstd.ts";

export const brotliCodec: Codec = {
  id: "BROT",
  name: "brotli",
  // Quality 11 is about ten times slower than 9 for a few percent on typical chunks,
  // so MMH's default is 9; pass --level 11 for the last bit.
  description: "Brotli (node:zlib), one stream per chunk",
  levels: { min: 0, max: 11, default: 9 },
  decodesToOwn: true,
  encode(raw, options) {
    const payload = brotliCompressSync(raw, {
      // One output buffer about the chunk's size, never more than 1 MiB (as zstd.ts): a
      // buffer of 1 MiB for every small chunk cost more than coding it (docs/ENGINE.md,
      // Per-file and per-chunk costs of compress).
      // Only memory changes with it, never the stream (node:zlib grows past it if needed).
      chunkSize: Math.min(1 << 20, raw.length + (raw.length >> 8) + 1024),
      params: {
        [constants.BROTLI_PARAM_QUALITY]: options.level ?? 9,
        [constants.BROTLI_PARAM_SIZE_HINT]: raw.length,
        [constants.BROTLI_PARAM_LGWIN]: Math.min(
          24,
          Math.max(10, Math.ceil(Math.log2(Math.max(2, raw.length)))),
        ),
      },
    });
    return { payload, owned: true }; // a view into node:zlib's own output buffer
  },
  decode(payload, params, rawLength) {
    if (params.length !== 0) throw new MmhError("E_CORRUPT", "BROT chunk has parameters");
    let out: Buffer;
    let consumed: number;
    try {
      // info: true exposes how much input the decoder consumed: the brotli decoder stops
      // at the end of its stream and would otherwise ignore any bytes after it.
      const result = brotliDecompressSync(payload, {
        chunkSize: decodePieceSize(rawLength),
        maxOutputLength: Math.max(1, rawLength),
        info: true,
      }) as unknown as { buffer: Buffer; engine: { bytesWritten: number } };
      out = result.buffer;
      consumed = result.engine.bytesWritten;
    } catch (error) {
      throw new MmhError("E_CORRUPT", `brotli payload does not decode: ${(error as Error).message}`, {
        cause: error,
      });
    }
    if (consumed !== payload.length) {
      throw new MmhError(
        "E_CORRUPT",
        `brotli payload has ${payload.length - consumed} bytes after its stream`,
      );
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
