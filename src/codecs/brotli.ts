import { brotliCompressSync, brotliDecompressSync, constants, createBrotliDecompress } from "node:zlib";
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

/**
 * The parts of a node:zlib brotli decompressor that decode one call's input into memory
 * the caller gives (as zstd.ts uses its zstd decompressor's).
 */
interface ReusedDecoder {
  _handle?: {
    writeSync(
      flush: number,
      input: Uint8Array,
      inOffset: number,
      inLength: number,
      out: Uint8Array,
      outOffset: number,
      outLength: number,
    ): void;
    reset(): void;
  };
  /** After each writeSync: the output room and the input bytes left. */
  _writeState?: Uint32Array;
  readonly destroyed: boolean;
  destroy(): void;
}

/** The decoder kept for reuse; null where node:zlib's has not the parts used here. */
let reused: ReusedDecoder | null | undefined;

/**
 * Set once the reused path and the one-shot decoder disagreed on a stream (node:zlib's
 * internals behaved otherwise than expected): from then on every stream is decoded one-shot.
 */
let reuseBroken = false;

function reusedDecoder(): ReusedDecoder | undefined {
  if (reused === undefined) {
    const made = createBrotliDecompress();
    // A failed decode destroys the stream and then emits its error: seen through `destroyed`.
    made.on("error", () => {});
    const parts = made as unknown as ReusedDecoder;
    let decoder: ReusedDecoder | null =
      typeof parts._handle?.writeSync === "function" &&
      typeof parts._handle.reset === "function" &&
      parts._writeState instanceof Uint32Array &&
      parts._writeState.length >= 2
        ? parts
        : null;
    // The parts are node:zlib's own, not its documented API: the decoder is kept only once
    // it has decoded a known stream to the byte, twice (so its reset works too).
    if (decoder) {
      const content = new Uint8Array(300);
      for (let i = 0; i < content.length; i++) content[i] = (i * 7) & 15;
      const stream = brotliCompressSync(content);
      try {
        for (let i = 0; i < 2 && decoder; i++) {
          const out = new Uint8Array(content.length);
          decodeWith(decoder, stream, out);
          if (!Buffer.from(out).equals(content)) decoder = null;
        }
      } catch {
        decoder = null;
      }
    }
    if (!decoder) made.destroy();
    reused = decoder;
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
  const decoder = reusedDecoder();
  if (decoder) {
    try {
      decodeWith(decoder, payload, out);
      return;
    } catch (error) {
      reused = undefined;
      if (!decoder.destroyed) decoder.destroy();
      if (!(error instanceof MmhError)) throw error;
    }
  }
  const decoded = decodeOneShot(payload, out.length);
  // Reached after a refusal only if the one-shot decoder accepts what the reused one did not.
  if (decoder) reuseBroken = true;
  out.set(decoded);
}

/** One stream through the reused decoder into `out`; E_CORRUPT unless it fills `out` exactly. */
function decodeWith(decoder: ReusedDecoder, payload: Uint8Array, out: Uint8Array): void {
  const handle = decoder._handle!;
  const state = decoder._writeState!;
  handle.writeSync(constants.BROTLI_OPERATION_FINISH, payload, 0, payload.length, out, 0, out.length);
  let written = out.length - state[0];
  if (!decoder.destroyed && written === out.length) {
    // `out` is full: whatever the stream holds beyond it goes into one spare byte.
    const rest = state[1];
    handle.writeSync(constants.BROTLI_OPERATION_FINISH, payload, payload.length - rest, rest, oneByte, 0, 1);
    written += 1 - state[0];
  }
  if (decoder.destroyed) throw new MmhError("E_CORRUPT", "brotli payload does not decode");
  // Input left (bytes after the stream's end), or a content of another length.
  if (state[1] !== 0 || written !== out.length) {
    throw new MmhError(
      "E_CORRUPT",
      state[1] !== 0
        ? `brotli payload has ${state[1]} bytes after its stream`
        : `brotli payload decodes to ${written} bytes, record says ${out.length}`,
    );
  }
  // Ready for the next stream: a brotli decoder that finished one takes no more input.
  handle.reset();
}

/** The spare output byte of decodeWith. */
const oneByte = new Uint8Array(1);
