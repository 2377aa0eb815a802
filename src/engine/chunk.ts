import { crc32 } from "node:zlib";
import { noneCodec } from "../codecs/none.ts";
import { codecById } from "../codecs/registry.ts";
import type { Codec } from "../codecs/types.ts";
import { MmhError } from "../common/errors.ts";
import { CHUNK_HEADER_SIZE, encodeChunkHeader } from "../container/format.ts";

const EMPTY = new Uint8Array(0);

export interface EncodedChunk {
  /** Record header (with params) followed by the payload: write both, in order. */
  header: Buffer;
  payload: Uint8Array;
  codec: string;
  rawLength: number;
  rawCrc: number;
}

/**
 * Encode one chunk. The codec's output is kept only when it is smaller than the raw
 * bytes; otherwise the chunk is stored as NONE, so no record ever holds more than the
 * raw bytes plus its 36-byte header.
 */
export function encodeChunk(raw: Uint8Array, codec: Codec, level: number | undefined): EncodedChunk {
  const rawCrc = crc32(raw);
  let chosen = codec;
  let payload: Uint8Array = raw;
  let params: Uint8Array = EMPTY;
  if (codec.id !== noneCodec.id) {
    const encoded = codec.encode(raw, { level });
    const encodedParams = encoded.params ?? EMPTY;
    if (encoded.payload.length + encodedParams.length < raw.length) {
      chosen = codec;
      payload = encoded.payload;
      params = encodedParams;
    } else {
      chosen = noneCodec;
    }
  }
  const header = encodeChunkHeader(chosen.id, params, raw.length, rawCrc, payload.length);
  return { header, payload, codec: chosen.id, rawLength: raw.length, rawCrc };
}

/** Decode a record's payload and check it against the record's CRC-32. */
export function decodeChunk(
  codecId: string,
  params: Uint8Array,
  payload: Uint8Array,
  rawLength: number,
  rawCrc: number,
  where: string,
): Uint8Array {
  let raw: Uint8Array;
  try {
    raw = codecById(codecId).decode(payload, params, rawLength);
  } catch (error) {
    if (error instanceof MmhError)
      throw new MmhError(error.code, `${where}: ${error.message}`, { cause: error });
    throw new MmhError("E_CORRUPT", `${where}: payload does not decode`, { cause: error });
  }
  if (raw.length !== rawLength)
    throw new MmhError("E_CORRUPT", `${where}: decoded length differs from the record`);
  if (crc32(raw) !== rawCrc) throw new MmhError("E_CHECKSUM", `${where}: checksum mismatch`);
  return raw;
}

export function recordSize(paramsLength: number, storedLength: number): number {
  return CHUNK_HEADER_SIZE + paramsLength + storedLength;
}
