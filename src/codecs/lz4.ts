import { createRequire } from "node:module";
import { MmhError } from "../common/errors.ts";
import type { Codec } from "./types.ts";

type Lz4Wasm = typeof import("lz4-wasm-nodejs");
let lz4Wasm: Lz4Wasm | undefined;

/**
 * lz4-wasm-nodejs, loaded on first use: it compiles its WebAssembly as it loads, which
 * every process that imports the codecs would otherwise pay (docs/ENGINE.md, Start-up).
 */
export function lz4Blocks(): Lz4Wasm {
  lz4Wasm ??= createRequire(import.meta.url)("lz4-wasm-nodejs") as Lz4Wasm;
  return lz4Wasm;
}

/**
 * LZ4 in the standard frame format, so that the `lz4` tool reads a chunk's payload.
 * The LZ4 block compression itself is lz4-wasm-nodejs (lz4_flex compiled to WASM); this
 * file only writes and walks the frame around its blocks. bench/results/lz4-choice.md
 * has the measurement behind the choice.
 */
const LZ4_FRAME_MAGIC = 0x184d2204;
const BLOCK_MAX = [0, 0, 0, 0, 64 << 10, 256 << 10, 1 << 20, 4 << 20];
/** Magic, FLG 0x60 (version 1, independent blocks, no checksums, no content size), BD 0x70 (4 MiB blocks), header checksum. */
const FRAME_HEADER = Buffer.from([0x04, 0x22, 0x4d, 0x18, 0x60, 0x70, 0x73]);
const WRITE_BLOCK = 4 << 20;
const UNCOMPRESSED = 0x80000000;

function corrupt(message: string): MmhError {
  return new MmhError("E_CORRUPT", `lz4 frame: ${message}`);
}

export function encodeLz4Frame(raw: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [FRAME_HEADER];
  let total = FRAME_HEADER.length + 4;
  for (let offset = 0; offset < raw.length; offset += WRITE_BLOCK) {
    const block = raw.subarray(offset, Math.min(raw.length, offset + WRITE_BLOCK));
    const packed = lz4Blocks().compress(block); // 4-byte size prefix, then the LZ4 block
    const size = Buffer.alloc(4);
    if (packed.length - 4 < block.length) {
      size.writeUInt32LE(packed.length - 4);
      parts.push(size, packed.subarray(4));
      total += 4 + packed.length - 4;
    } else {
      size.writeUInt32LE((UNCOMPRESSED | block.length) >>> 0);
      parts.push(size, block);
      total += 4 + block.length;
    }
  }
  parts.push(Buffer.alloc(4)); // end mark
  return Buffer.concat(parts, total);
}

/**
 * Decode one frame to exactly rawLength bytes. The frame is walked with every size
 * checked before use: no block may be larger than the frame's block maximum or than the
 * bytes still expected, so a hostile frame cannot make the decoder allocate or produce
 * more than the record declares; no bytes may follow the end mark.
 */
export function decodeLz4Frame(frame: Uint8Array, rawLength: number): Uint8Array {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  if (frame.length < 7) throw corrupt("shorter than a frame header");
  if (view.getUint32(0, true) !== LZ4_FRAME_MAGIC) throw corrupt("bad magic");
  const flg = frame[4];
  const bd = frame[5];
  if (flg >> 6 !== 1) throw corrupt(`unsupported version ${flg >> 6}`);
  if (flg & 0x02 || bd & 0x8f) throw corrupt("reserved bits are set");
  // MMH writes independent blocks only, so a frame that says otherwise is damaged.
  if (!(flg & 0x20)) throw corrupt("linked blocks (MMH writes independent blocks only)");
  if (flg & 0x01) throw corrupt("dictionaries are not used by MMH");
  const blockChecksum = (flg & 0x10) !== 0;
  const contentChecksum = (flg & 0x04) !== 0;
  const blockMax = BLOCK_MAX[(bd >> 4) & 7];
  if (blockMax === 0) throw corrupt("bad block size code");
  let pos = 6;
  if (flg & 0x08) {
    if (frame.length < pos + 8) throw corrupt("truncated header");
    if (view.getBigUint64(pos, true) !== BigInt(rawLength))
      throw corrupt("content size differs from the record");
    pos += 8;
  }
  pos += 1; // header checksum: the chunk's CRC-32 of the decoded bytes is the check MMH relies on
  const out = new Uint8Array(rawLength);
  let filled = 0;
  for (;;) {
    if (pos + 4 > frame.length) throw corrupt("truncated block header");
    const word = view.getUint32(pos, true);
    pos += 4;
    if (word === 0) break;
    const size = word & 0x7fffffff;
    if (size > blockMax) throw corrupt("block larger than the frame's block size");
    if (pos + size > frame.length) throw corrupt("truncated block");
    const expected = Math.min(blockMax, rawLength - filled);
    if (expected === 0) throw corrupt("more blocks than the record's length allows");
    const body = frame.subarray(pos, pos + size);
    if (word & UNCOMPRESSED) {
      // As for a compressed block: every block but the last holds exactly blockMax bytes.
      if (size !== expected) throw corrupt(`stored block of ${size} bytes where ${expected} are due`);
      out.set(body, filled);
      filled += size;
    } else {
      // lz4_flex takes the exact decoded size in front of the block and refuses any other.
      // Every block but the last holds blockMax bytes; try that, or what is left.
      const input = new Uint8Array(4 + size);
      new DataView(input.buffer).setUint32(0, expected, true);
      input.set(body, 4);
      let decoded: Uint8Array;
      try {
        decoded = lz4Blocks().decompress(input);
      } catch (error) {
        throw new MmhError("E_CORRUPT", `lz4 block does not decode: ${String(error)}`, { cause: error });
      }
      out.set(decoded, filled);
      filled += decoded.length;
    }
    pos += size + (blockChecksum ? 4 : 0);
  }
  if (contentChecksum) pos += 4;
  if (pos !== frame.length)
    throw corrupt(pos > frame.length ? "truncated" : "trailing bytes after the frame");
  if (filled !== rawLength) throw corrupt(`decodes to ${filled} bytes, record says ${rawLength}`);
  return out;
}

export const lz4Codec: Codec = {
  id: "LZ4 ",
  name: "lz4",
  description: "LZ4 frame format (blocks by lz4-wasm-nodejs), readable by the lz4 tool",
  decodesToOwn: true,
  encode(raw) {
    return { payload: encodeLz4Frame(raw), owned: true };
  },
  decode(payload, params, rawLength) {
    if (params.length !== 0) throw new MmhError("E_CORRUPT", "LZ4 chunk has parameters");
    return decodeLz4Frame(payload, rawLength);
  },
};
