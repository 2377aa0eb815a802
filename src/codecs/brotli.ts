import { brotliCompressSync, brotliDecompressSync, constants, createBrotliDecompress } from "node:zlib";
import { MmhError } from "../common/errors.ts";
import { decodeInto, probeContent, ReusedDecoder } from "./reused.ts";
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
  decode(payload, params, rawLength, into) {
    if (params.length !== 0) throw new MmhError("E_CORRUPT", "BROT chunk has parameters");
    // Into the caller's memory when a reused decoder takes the stream: no piece of node:zlib's own.
    if (into !== undefined && into.length === rawLength && rawLength > 0 && !reuseBroken) {
      brotliDecodeInto(payload, into);
      return into;
    }
    return decodeOneShot(payload, rawLength);
  },
};

/** One brotli stream decoded by node:zlib's one-shot decoder, checked whole. */
function decodeOneShot(payload: Uint8Array, rawLength: number): Buffer {
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
    throw new MmhError("E_CORRUPT", `brotli payload has ${payload.length - consumed} bytes after its stream`);
  }
  if (out.length !== rawLength) {
    throw new MmhError(
      "E_CORRUPT",
      `brotli payload decodes to ${out.length} bytes, record says ${rawLength}`,
    );
  }
  return out;
}

/** The decoder kept for reuse; null where node:zlib's cannot be reused (src/codecs/reused.ts). */
let reused: ReusedDecoder | null | undefined;

/**
 * Set once the reused decoder refused a stream the one-shot decoder accepts (node:zlib's
 * internals behaved otherwise than expected): from then on every stream is decoded one-shot.
 */
let reuseBroken = false;

function reusedDecoder(): ReusedDecoder | undefined {
  if (reused === undefined) {
    const content = probeContent();
    const probe = { content, encoded: brotliCompressSync(content) };
    // Reset after each stream: a brotli decoder that finished one takes no more input.
    reused = ReusedDecoder.from(createBrotliDecompress(), constants.BROTLI_OPERATION_FINISH, true, probe);
  }
  return reused ?? undefined;
}

/**
 * Decode the one brotli stream `payload` into `out`, which it must fill exactly, checked as
 * the one-shot path checks it. One decoder is kept from record to record (reset after
 * each) and writes straight into `out`, with no output piece of node:zlib's to allocate,
 * copy and collect. A stream the reused decoder refuses is decoded again one-shot, so what
 * is accepted and the error given are the one-shot decoder's.
 */
function brotliDecodeInto(payload: Uint8Array, out: Uint8Array): void {
  const oneShot = () => decodeOneShot(payload, out.length);
  const drop = () => {
    reused = undefined;
  };
  if (decodeInto(reusedDecoder(), payload, out, oneShot, drop)) reuseBroken = true;
}
