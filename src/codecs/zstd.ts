import { constants, createZstdDecompress, zstdCompressSync, zstdDecompressSync } from "node:zlib";
import { MmhError } from "../common/errors.ts";
import { decodeInto, type Probe, probeContent, ReusedDecoder } from "./reused.ts";
import type { Codec } from "./types.ts";

/** zstd's own lower bound (ZSTD_minCLevel): the fastest of the negative "fast" levels. */
export const ZSTD_MIN_LEVEL = -131072;

const ZSTD_MAGIC = 0xfd2fb528;

/**
 * The length of the one zstd frame a payload must hold (RFC 8878, section 3.1.1), found
 * by walking its block headers; -1 when the structure is malformed. The zlib decoder
 * would otherwise ignore, or skip as further frames, bytes after the frame depending
 * only on how its output happens to be buffered.
 */
export function zstdFrameLength(frame: Uint8Array): number {
  if (frame.length < 6) return -1;
  if ((frame[0] | (frame[1] << 8) | (frame[2] << 16) | (frame[3] << 24)) >>> 0 !== ZSTD_MAGIC) return -1;
  const descriptor = frame[4];
  const singleSegment = (descriptor >> 5) & 1;
  const contentSizeBytes = [singleSegment, 2, 4, 8][descriptor >> 6];
  const dictionaryIdBytes = [0, 1, 2, 4][descriptor & 3];
  let pos = 5 + (singleSegment ? 0 : 1) + dictionaryIdBytes + contentSizeBytes;
  for (;;) {
    if (pos + 3 > frame.length) return -1;
    const block = frame[pos] | (frame[pos + 1] << 8) | (frame[pos + 2] << 16);
    pos += 3;
    const type = (block >> 1) & 3;
    if (type === 3) return -1; // reserved block type
    pos += type === 1 ? 1 : block >>> 3; // an RLE block stores one byte
    if (block & 1) break; // last block
  }
  return pos + ((descriptor >> 2) & 1 ? 4 : 0);
}

/**
 * node:zlib's output piece size for a one-shot decode of `rawLength` bytes: one byte more
 * than the output. node:zlib allocates a fresh piece whenever the last one is exactly
 * full, before it learns that the stream has ended; with the piece as long as the output,
 * every decode left a second piece of its size behind as garbage, and that memory (tens
 * of MiB a second) set off full collections. Pieces stay at most 1 MiB.
 */
export function decodePieceSize(rawLength: number): number {
  return Math.min(1 << 20, Math.max(64, rawLength + 1));
}

export function windowLogFor(rawLength: number): number {
  // A frame made with pledgedSrcSize never needs a window larger than its content, so
  // the decoder refuses frames that ask for more (a hostile frame cannot make it allocate).
  return Math.min(31, Math.max(10, Math.ceil(Math.log2(Math.max(1, rawLength)))));
}

export const zstdCodec: Codec = {
  id: "ZSTD",
  name: "zstd",
  description: "Zstandard (node:zlib), one frame per chunk",
  levels: { min: ZSTD_MIN_LEVEL, max: 22, default: 3, excluded: [0] },
  decodesToOwn: true,
  encode(raw, options) {
    const level = options.level ?? 3;
    const payload = zstdCompressSync(raw, {
      // One output buffer that holds the whole frame (zstd's bound), never more than 1 MiB:
      // a 32 KiB sample (auto's choice) then costs 33 KiB of memory, not 1 MiB.
      chunkSize: Math.min(1 << 20, raw.length + (raw.length >> 8) + 1024),
      pledgedSrcSize: raw.length,
      params: {
        [constants.ZSTD_c_compressionLevel]: level,
        [constants.ZSTD_c_checksumFlag]: 0,
        [constants.ZSTD_c_contentSizeFlag]: 1,
      },
    });
    return { payload, owned: true }; // a view into node:zlib's own output buffer
  },
  decode(payload, params, rawLength, into) {
    if (params.length !== 0) throw new MmhError("E_CORRUPT", "ZSTD chunk has parameters");
    // Into the caller's memory when a reused decoder takes the frame: no piece of node:zlib's own.
    if (into !== undefined && into.length === rawLength && windowLogFor(rawLength) <= REUSED_WINDOW_LOG_MAX) {
      zstdDecodeInto(payload, into);
      return into;
    }
    const frameLength = zstdFrameLength(payload);
    if (frameLength < 0) throw new MmhError("E_CORRUPT", "zstd payload is not a well-formed frame");
    if (frameLength !== payload.length) {
      throw new MmhError(
        "E_CORRUPT",
        frameLength > payload.length ? "zstd frame is truncated" : "zstd payload has bytes after its frame",
      );
    }
    let out: Buffer;
    try {
      out = zstdDecompressSync(payload, {
        chunkSize: decodePieceSize(rawLength),
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

/** Decoders kept for reuse, by their window limit (log2); null where none can be reused. */
const decoders = new Map<number, ReusedDecoder | null>();

/** Windows up to this (log2) are kept for reuse: a decoder keeps a buffer of about its window. */
const REUSED_WINDOW_LOG_MAX = 20;

/**
 * Set once a reused decoder refused a frame the one-shot decoder accepts (node:zlib's
 * internals behaved otherwise than expected): from then on every frame is decoded one-shot.
 */
let reuseBroken = false;

let probe: Probe | undefined;

function reusedDecoder(windowLog: number): ReusedDecoder | undefined {
  let decoder = decoders.get(windowLog);
  if (decoder === undefined) {
    if (!probe) {
      const content = probeContent();
      probe = { content, encoded: zstdCompressSync(content, { pledgedSrcSize: content.length }) };
    }
    const made = createZstdDecompress({ params: { [constants.ZSTD_d_windowLogMax]: windowLog } });
    // No reset between frames (src/codecs/reused.ts).
    decoder = ReusedDecoder.from(made, constants.ZSTD_e_end, false, probe);
    decoders.set(windowLog, decoder);
  }
  return decoder ?? undefined;
}

/**
 * Decode the one zstd frame `frame` into `out`, which it must fill exactly (its length is
 * the content's), checked as zstdCodec.decode checks it. For the many small frames of
 * HIER's zstd-coded streams: one decoder per window size is kept from frame to frame
 * (each frame checked whole before the next) and writes straight into `out` (the
 * kernels' memory, say). A new decoder per call, as zstdDecompressSync makes, cost a
 * quarter of the decoding of a 256 KiB stream (docs/ENGINE.md). Where node:zlib's decoder
 * cannot be reused (src/codecs/reused.ts), zstdCodec.decode decodes and the bytes are
 * copied; a frame the reused decoder refuses is decoded again that way, so what is
 * accepted and the error given are the one-shot decoder's.
 */
export function zstdDecodeInto(frame: Uint8Array, out: Uint8Array): void {
  const windowLog = windowLogFor(out.length);
  // Exactly one frame: the reused decoder would go on into a second one.
  const decoder =
    windowLog <= REUSED_WINDOW_LOG_MAX && !reuseBroken && zstdFrameLength(frame) === frame.length
      ? reusedDecoder(windowLog)
      : undefined;
  const oneShot = () => zstdCodec.decode(frame, EMPTY, out.length);
  if (decodeInto(decoder, frame, out, oneShot, () => decoders.delete(windowLog))) reuseBroken = true;
}

const EMPTY = new Uint8Array(0);
