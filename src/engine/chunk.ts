import { noneCodec } from "../codecs/none.ts";
import { periodicFill, runPattern } from "../codecs/p251.ts";
import { codecById } from "../codecs/registry.ts";
import type { Codec, CodecOptions } from "../codecs/types.ts";
import { crc32 } from "../common/crc.ts";
import type { DTypeName } from "../common/dtype.ts";
import { MmhError } from "../common/errors.ts";
import { encodeChunkHeader, MAX_CHUNK_SIZE, RUN_CODEC } from "../container/format.ts";

const EMPTY = new Uint8Array(0);

export interface EncodedChunk {
  /** Record header (with params) followed by the payload: write both, in order. */
  header: Buffer;
  payload: Uint8Array;
  codec: string;
  rawLength: number;
  rawCrc: number;
  /** The payload's memory is the codec's fresh output, private to this chunk (see dispose). */
  owned: boolean;
}

/**
 * Encode one chunk. The codec's output is kept only when it is smaller than the raw
 * bytes; otherwise the chunk is stored as NONE, so no record ever holds more than the
 * raw bytes plus its 36-byte header.
 */
export function encodeChunk(
  raw: Uint8Array,
  codec: Codec,
  level: number | undefined,
  dtype: DTypeName | null = null,
  output?: (size: number) => Uint8Array,
  /** HIER only: the layout to split with (CodecOptions.layout). */
  layout?: number,
  /** crc32(raw), when the caller has it (one chunk coded by several candidates). */
  knownCrc?: number,
  /** HIER only: detectLayout's answer on this chunk, when the caller has it (CodecOptions.detected). */
  detected?: CodecOptions["detected"],
): EncodedChunk {
  const rawCrc = knownCrc ?? crc32(raw);
  let chosen = codec;
  let payload: Uint8Array = raw;
  let params: Uint8Array = EMPTY;
  let owned = false;
  if (codec.id !== noneCodec.id) {
    const encoded = codec.encode(
      raw,
      layout !== undefined
        ? { level, dtype, output, layout }
        : detected !== undefined
          ? { level, dtype, output, detected }
          : { level, dtype, output },
    );
    const encodedParams = encoded.params ?? EMPTY;
    if (encoded.payload.length + encodedParams.length < raw.length) {
      chosen = codec;
      payload = encoded.payload;
      params = encodedParams;
      owned = encoded.owned === true;
    } else {
      chosen = noneCodec;
    }
  }
  const header = encodeChunkHeader(chosen.id, params, raw.length, rawCrc, payload.length);
  return { header, payload, codec: chosen.id, rawLength: raw.length, rawCrc, owned };
}

/**
 * Decode a record's payload and check it against the record's CRC-32. The result may be
 * `into` (rawLength bytes the caller owns), when the codec can write there.
 */
export function decodeChunk(
  codecId: string,
  params: Uint8Array,
  payload: Uint8Array,
  rawLength: number,
  rawCrc: number,
  where: string,
  into?: Uint8Array,
): Uint8Array {
  const codec = codecById(codecId);
  return checked(
    decoding(() => codec.decode(payload, params, rawLength, into), where),
    rawLength,
    rawCrc,
    where,
  );
}

/**
 * A record decoded into memory its codec reuses (Codec.decodeLent), checked as
 * decodeChunk checks it: valid only until the next call into the codec on this thread.
 * Undefined when the codec does not decode this record so.
 */
export function decodeChunkLent(
  codecId: string,
  params: Uint8Array,
  payload: Uint8Array,
  rawLength: number,
  rawCrc: number,
  where: string,
): Uint8Array | undefined {
  const codec = codecById(codecId);
  if (!codec.decodeLent || rawLength > MAX_CHUNK_SIZE) return undefined;
  const raw = decoding(() => codec.decodeLent?.(payload, params, rawLength), where);
  return raw && checked(raw, rawLength, rawCrc, where);
}

/** `decode()`, its errors named after the record `where`. */
function decoding<T>(decode: () => T, where: string): T {
  try {
    return decode();
  } catch (error) {
    if (error instanceof MmhError)
      throw new MmhError(error.code, `${where}: ${error.message}`, { cause: error });
    throw new MmhError("E_CORRUPT", `${where}: payload does not decode`, { cause: error });
  }
}

/** `raw`, once its length and CRC-32 are the record's. */
function checked(raw: Uint8Array, rawLength: number, rawCrc: number, where: string): Uint8Array {
  if (raw.length !== rawLength)
    throw new MmhError("E_CORRUPT", `${where}: decoded length differs from the record`);
  if (crc32(raw) !== rawCrc) throw new MmhError("E_CHECKSUM", `${where}: checksum mismatch`);
  return raw;
}

/** Bytes per piece when a run is written out: a whole number of periods near 4 MiB. */
const RUN_PIECE = 4 << 20;

function runPieceOf(pattern: Uint8Array): Buffer {
  const piece = Buffer.allocUnsafe(Math.max(1, Math.floor(RUN_PIECE / pattern.length)) * pattern.length);
  periodicFill(pattern, 0, piece);
  return piece;
}

/** The checked pattern of a run record (a P251 record with no tail). */
export function runPatternOf(
  params: Uint8Array,
  payload: Uint8Array,
  rawLength: number,
  where: string,
): Uint8Array {
  let pattern: Uint8Array | undefined;
  try {
    pattern = runPattern(payload, params, rawLength);
  } catch (error) {
    if (error instanceof MmhError)
      throw new MmhError(error.code, `${where}: ${error.message}`, { cause: error });
    throw error;
  }
  if (!pattern)
    throw new MmhError("E_CORRUPT", `${where}: a record over ${MAX_CHUNK_SIZE} bytes must be a P251 run`);
  return pattern;
}

/**
 * Decode a record as a sequence of pieces. An ordinary chunk is one piece. A P251 run
 * longer than MAX_CHUNK_SIZE is its pattern repeated, written out a few MiB at a time:
 * its CRC-32 is checked over the whole run before the first piece is released, so no
 * unchecked byte ever leaves, and memory stays at one piece whatever the run's length.
 */
export function* decodeChunkPieces(
  codecId: string,
  params: Uint8Array,
  payload: Uint8Array,
  rawLength: number,
  rawCrc: number,
  where: string,
  into?: Uint8Array,
): Generator<Uint8Array> {
  if (rawLength <= MAX_CHUNK_SIZE) {
    yield decodeChunk(codecId, params, payload, rawLength, rawCrc, where, into);
    return;
  }
  if (codecId !== RUN_CODEC)
    throw new MmhError("E_CORRUPT", `${where}: a ${codecId} record cannot exceed ${MAX_CHUNK_SIZE} bytes`);
  const piece = runPieceOf(runPatternOf(params, payload, rawLength, where));
  let crc = 0;
  let left = rawLength;
  for (; left >= piece.length; left -= piece.length) crc = crc32(piece, crc);
  if (left > 0) crc = crc32(piece.subarray(0, left), crc);
  if (crc !== rawCrc) throw new MmhError("E_CHECKSUM", `${where}: checksum mismatch`);
  for (left = rawLength; left > 0; left -= Math.min(piece.length, left))
    yield piece.subarray(0, Math.min(piece.length, left));
}
