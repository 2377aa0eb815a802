import { compressFrameSync, decompressFrameSync } from "lz4-napi";
import { asBuffer } from "../common/bytes.ts";
import { MmhError } from "../common/errors.ts";
import type { Codec } from "./types.ts";

const LZ4_FRAME_MAGIC = 0x184d2204;
const BLOCK_MAX = [0, 0, 0, 0, 64 << 10, 256 << 10, 1 << 20, 4 << 20];

function corrupt(message: string): MmhError {
  return new MmhError("E_CORRUPT", `lz4 frame: ${message}`);
}

/**
 * Walk the frame's structure before handing it to the decoder, so that a hostile frame
 * can neither make the decoder produce more than the record declares nor hide trailing
 * bytes. A frame encoder fills every block but the last, so a frame holding n bytes has
 * exactly ceil(n / blockMax) blocks; more blocks than that are refused.
 */
export function checkLz4Frame(frame: Buffer, rawLength: number): void {
  if (frame.length < 7) throw corrupt("shorter than a frame header");
  if (frame.readUInt32LE(0) !== LZ4_FRAME_MAGIC) throw corrupt("bad magic");
  const flg = frame[4];
  const bd = frame[5];
  if (flg >> 6 !== 1) throw corrupt(`unsupported version ${flg >> 6}`);
  if (flg & 0x02 || bd & 0x8f) throw corrupt("reserved bits are set");
  const blockChecksum = (flg & 0x10) !== 0;
  const contentSizePresent = (flg & 0x08) !== 0;
  const contentChecksum = (flg & 0x04) !== 0;
  const dictId = (flg & 0x01) !== 0;
  const blockMax = BLOCK_MAX[(bd >> 4) & 7];
  if (blockMax === 0) throw corrupt("bad block size code");
  let pos = 6;
  if (contentSizePresent) {
    if (frame.length < pos + 8) throw corrupt("truncated header");
    if (frame.readBigUInt64LE(pos) !== BigInt(rawLength))
      throw corrupt("content size differs from the record");
    pos += 8;
  }
  if (dictId) throw corrupt("dictionaries are not used by MMH");
  pos += 1; // header checksum, checked by the decoder
  const maxBlocks = Math.ceil(rawLength / blockMax);
  let blocks = 0;
  for (;;) {
    if (pos + 4 > frame.length) throw corrupt("truncated block header");
    const word = frame.readUInt32LE(pos);
    pos += 4;
    if (word === 0) break;
    const size = word & 0x7fffffff;
    if (size > blockMax) throw corrupt("block larger than the frame's block size");
    if (++blocks > maxBlocks) throw corrupt("more blocks than the record's length allows");
    pos += size + (blockChecksum ? 4 : 0);
  }
  if (contentChecksum) pos += 4;
  if (pos !== frame.length)
    throw corrupt(pos > frame.length ? "truncated" : "trailing bytes after the frame");
}

export const lz4Codec: Codec = {
  id: "LZ4 ",
  name: "lz4",
  description: "LZ4 frame format (lz4-napi), readable by the lz4 tool",
  encode(raw) {
    return { payload: compressFrameSync(asBuffer(raw), { contentChecksum: false, blockChecksums: false }) };
  },
  decode(payload, params, rawLength) {
    if (params.length !== 0) throw new MmhError("E_CORRUPT", "LZ4 chunk has parameters");
    const frame = asBuffer(payload);
    checkLz4Frame(frame, rawLength);
    let out: Buffer;
    try {
      out = decompressFrameSync(frame);
    } catch (error) {
      throw new MmhError("E_CORRUPT", `lz4 payload does not decode: ${(error as Error).message}`, {
        cause: error,
      });
    }
    if (out.length !== rawLength) {
      throw new MmhError("E_CORRUPT", `lz4 payload decodes to ${out.length} bytes, record says ${rawLength}`);
    }
    return out;
  },
};
