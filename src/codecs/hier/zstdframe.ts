/**
 * zstd frames for HIER's streams (hier.ts) from one node:zlib compressor per level, kept
 * from call to call. node:zlib's one-shot call makes a Transform stream and a zstd
 * context for every frame and frees them after it; HIER's encode makes hundreds of
 * frames a 64 MiB set (the trials' windows, the whole-stream passes). A kept compressor
 * takes each stream with ZSTD_e_end in its first call, which starts a new frame with the
 * stream's length as its pledged size, as the one-shot call's frame has; its output room
 * is offered in pieces of the same size as the one-shot call's, so zstd takes the same
 * path and the frame is the same, byte for byte.
 *
 * It goes through two parts of node:zlib's streams that are not their documented API
 * (`_handle.writeSync` and `_writeState`, as src/codecs/reused.ts does for decoders), so
 * a compressor is kept only once it has made two frames of a probe equal to the one-shot
 * call's, and one that throws is dropped for good: the one-shot call then makes every
 * frame.
 */
import { constants, createZstdCompress, zstdCompressSync } from "node:zlib";
import type { ZlibParts as Parts } from "../reused.ts";

/**
 * Levels whose compressor is kept: the default goal's (HIER tries levels 1 and 3). A
 * context of the ratio goal's levels holds tens of MiB of tables, kept for the life of
 * the thread; those frames are few and slow, and keep the one-shot call.
 */
const KEPT_MAX_LEVEL = 3;

/** A kept compressor per level (null: it failed its probe or a call, never tried again). */
const kept = new Map<number, Parts | null>();
/** Set once a kept compressor has failed: every frame is then made by the one-shot call. */
let failed = false;

/** Output room for frames whose bytes are not kept (zstdFrameLength), reused. */
let scratch = Buffer.allocUnsafeSlow(0);

/** node:zlib's one-shot frame of `bytes` at `level`, collected in pieces of `piece` bytes. */
function oneShot(bytes: Uint8Array, level: number, piece: number): Buffer {
  return zstdCompressSync(bytes, {
    chunkSize: piece,
    params: { [constants.ZSTD_c_compressionLevel]: level, [constants.ZSTD_c_checksumFlag]: 0 },
    pledgedSrcSize: bytes.length,
  });
}

/** The probe's content: a short pattern with repeats and literals. */
function probeContent(): Uint8Array {
  const content = new Uint8Array(3000);
  for (let i = 0; i < content.length; i++) content[i] = ((i * 7) & 31) ^ (i % 13 === 0 ? i & 0xff : 0);
  return content;
}

function compressorFor(level: number): Parts | null {
  let parts = kept.get(level);
  if (parts !== undefined) return parts;
  parts = null;
  try {
    const stream = createZstdCompress({
      params: { [constants.ZSTD_c_compressionLevel]: level, [constants.ZSTD_c_checksumFlag]: 0 },
    }) as unknown as Parts;
    stream.on("error", () => {});
    const usable =
      typeof stream._handle?.writeSync === "function" && stream._writeState instanceof Uint32Array;
    if (usable) {
      const probe = probeContent();
      const expected = oneShot(probe, level, 64);
      parts = stream;
      for (let i = 0; i < 2 && parts; i++) {
        const pieces: Buffer[] = [];
        run(parts, probe, 64, pieces);
        if (!expected.equals(Buffer.concat(pieces))) parts = null;
      }
    }
    if (!parts && !stream.destroyed) stream.destroy();
  } catch {
    parts = null;
  }
  kept.set(level, parts);
  return parts;
}

/**
 * The frame of `bytes` through a kept compressor, its output room offered `piece` bytes
 * at a time as node:zlib's one-shot call offers it (a fresh piece whenever one is full),
 * and its length. With `pieces` the frame's pieces are fresh memory, pushed there; without,
 * one scratch piece takes every piece in turn and only the length is counted.
 */
function run(parts: Parts, bytes: Uint8Array, piece: number, pieces?: Buffer[]): number {
  const handle = parts._handle!;
  const state = parts._writeState!;
  if (!pieces && scratch.length < piece) scratch = Buffer.allocUnsafeSlow(piece);
  const next = () => (pieces ? Buffer.allocUnsafe(piece) : scratch);
  let out = next();
  let offset = 0;
  let inOffset = 0;
  let inLength = bytes.length;
  let room = piece;
  let total = 0;
  for (;;) {
    handle.writeSync(constants.ZSTD_e_end, bytes, inOffset, inLength, out, offset, room);
    if (parts.destroyed) throw new Error("zstd: the kept compressor failed");
    const roomLeft = state[0];
    const inLeft = state[1];
    const have = room - roomLeft;
    if (have > 0) {
      pieces?.push(out.subarray(offset, offset + have));
      offset += have;
      total += have;
    }
    inOffset += inLength - inLeft;
    inLength = inLeft;
    // node:zlib's loop: a full piece is followed by a fresh one and another call; a call
    // that leaves output room has completed the frame.
    if (roomLeft !== 0) return total;
    out = next();
    offset = 0;
    room = piece;
  }
}

function framed(bytes: Uint8Array, level: number, piece: number, keep: boolean): Buffer | number {
  const parts = !failed && level <= KEPT_MAX_LEVEL ? compressorFor(level) : null;
  if (parts) {
    try {
      if (!keep) return run(parts, bytes, piece);
      const pieces: Buffer[] = [];
      const total = run(parts, bytes, piece, pieces);
      return pieces.length === 1 ? pieces[0] : Buffer.concat(pieces, total);
    } catch {
      // The internals behaved otherwise than expected: the one-shot call from now on.
      failed = true;
      for (const p of kept.values()) if (p && !p.destroyed) p.destroy();
      kept.clear();
    }
  }
  const frame = oneShot(bytes, level, piece);
  return keep ? frame : frame.length;
}

/** zstd's frame of `bytes` at `level`, as node:zlib's one-shot call with output pieces of `piece` bytes makes it. */
export function zstdFrame(bytes: Uint8Array, level: number, piece: number): Buffer {
  return framed(bytes, level, piece, true) as Buffer;
}

/** The length of zstdFrame(bytes, level, piece), without keeping its bytes. */
export function zstdFrameLength(bytes: Uint8Array, level: number, piece: number): number {
  return framed(bytes, level, piece, false) as number;
}

/** Whether frames go through kept compressors (for tests): false once one has failed, or where none passes its probe. */
export function keptCompressors(level: number): boolean {
  return !failed && level <= KEPT_MAX_LEVEL && compressorFor(level) !== null;
}
