/**
 * Reader rules of docs/FORMAT.md that are stricter than "it decodes": one test per rule,
 * each with the exact error code the spec gives.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { crc32, zstdCompressSync } from "node:zlib";
import { hierCodec } from "../src/codecs/hier/hier.ts";
import { huffmanDecode, huffmanEncode } from "../src/codecs/hier/huffman.ts";
import { BLOCK_CONTEXT, huffmanEncodeContext } from "../src/codecs/hier/huffman-context.ts";
import { decodeLz4Frame, encodeLz4Frame } from "../src/codecs/lz4.ts";
import { noneCodec } from "../src/codecs/none.ts";
import { zstdCodec } from "../src/codecs/zstd.ts";
import { bufferSource } from "../src/common/source.ts";
import { encodeIndex, INDEX_FIXED_SIZE, parseIndex, TRAILER_SIZE } from "../src/container/format.ts";
import { MmhReader } from "../src/engine/reader.ts";
import { compress, decompress } from "../src/index.ts";
import {
  copyOf,
  entryOffset,
  fixIndexCrc,
  fixTrailerCrc,
  layoutOf,
  rejectsWith,
  textBytes,
  throwsWith,
} from "./support.ts";

const NO_PARAMS = new Uint8Array(0);

/** A HIER payload of layout 0 (bytes, W = 1), head 0, one stream coded by `method`. */
function hierPayload(method: number, stream: Uint8Array): Uint8Array {
  const out = Buffer.alloc(8 + 5 + stream.length);
  out[0] = 1; // version
  out[1] = 0; // layout: bytes
  out[2] = 0; // head
  out[3] = 1; // streams
  out[8] = method;
  out.writeUInt32LE(stream.length, 9);
  out.writeUInt32LE(crc32(out.subarray(8, 13), crc32(out.subarray(0, 4))), 4);
  out.set(stream, 13);
  return out;
}

/** Bytes where each value mostly follows from the one before: context Huffman pays. */
function markov(n: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = 12345;
  for (let i = 1; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = (out[i - 1] < 8 ? out[i - 1] + 8 : out[i - 1] - 8) + ((x >>> 16) % 3);
  }
  return out;
}

describe("FORMAT.md §6.2: HIER stream methods", () => {
  test("method 2 holds a Huffman, stored or single-symbol block, never a context block", () => {
    const data = Uint8Array.from({ length: 64 }, (_, i) => (i * 7) % 5);
    const huffman = huffmanEncode(data);
    assert.equal(huffman[0], 2);
    assert.deepEqual(
      Buffer.from(hierCodec.decode(hierPayload(2, huffman), NO_PARAMS, data.length)),
      Buffer.from(data),
    );
    // Type 0 (stored: N, then N bytes) and type 1 (single symbol: N, then the byte).
    const stored = Uint8Array.from([0, data.length, ...data]);
    assert.deepEqual(
      Buffer.from(hierCodec.decode(hierPayload(2, stored), NO_PARAMS, data.length)),
      Buffer.from(data),
    );
    const single = Uint8Array.of(1, 10, 42);
    assert.deepEqual(
      Buffer.from(hierCodec.decode(hierPayload(2, single), NO_PARAMS, 10)),
      Buffer.alloc(10, 42),
    );
    throwsWith(() => hierCodec.decode(hierPayload(2, Uint8Array.of(1, 11, 42)), NO_PARAMS, 10), "E_CORRUPT");
    throwsWith(() => hierCodec.decode(hierPayload(2, Uint8Array.of(9, 10, 42)), NO_PARAMS, 10), "E_CORRUPT");
    const input = markov(20_000);
    const context = huffmanEncodeContext(input);
    assert.equal(context[0], BLOCK_CONTEXT);
    assert.deepEqual(
      Buffer.from(hierCodec.decode(hierPayload(4, context), NO_PARAMS, input.length)),
      Buffer.from(input),
    );
    throwsWith(() => hierCodec.decode(hierPayload(2, context), NO_PARAMS, input.length), "E_CORRUPT");
  });

  test("method 4 holds a type 3 block only", () => {
    const data = Uint8Array.from({ length: 64 }, (_, i) => (i * 7) % 5);
    throwsWith(() => hierCodec.decode(hierPayload(4, huffmanEncode(data)), NO_PARAMS, 64), "E_CORRUPT");
  });

  test("a zstd stream is one frame, even for an empty stream", () => {
    // An 8-byte chunk of W = 8 planes with head 0 has N = 1; a 7-byte chunk N = 0, T = 7.
    const frame = zstdCodec.encode(new Uint8Array(0), {}).payload;
    const raw = Uint8Array.of(1, 2, 3, 4, 5, 6, 7);
    const build = (stream: Uint8Array) => {
      const out = Buffer.alloc(8 + 5 * 8 + stream.length + raw.length);
      out.set([1, 6, 0, 8]); // version 1, layout planes8, head 0, 8 streams
      for (let k = 0; k < 8; k++) {
        out[8 + 5 * k] = k === 0 ? 3 : 0; // stream 0 zstd, the rest constant (0 bytes: N = 0)
        out.writeUInt32LE(k === 0 ? stream.length : 0, 9 + 5 * k);
      }
      out.writeUInt32LE(crc32(out.subarray(8, 48), crc32(out.subarray(0, 4))), 4);
      out.set(stream, 48);
      out.set(raw, 48 + stream.length);
      return out;
    };
    assert.deepEqual(Buffer.from(hierCodec.decode(build(frame), NO_PARAMS, 7)), Buffer.from(raw));
    throwsWith(() => hierCodec.decode(build(new Uint8Array(0)), NO_PARAMS, 7), "E_CORRUPT");
  });

  test("the zstd window of a stream is at most the smallest power of two >= its length (min 1 KiB)", () => {
    // 5000 bytes: the window may be up to 8 KiB. A frame that asks for 16 KiB is refused.
    const data = textBytes(5000, 3);
    assert.deepEqual(
      Buffer.from(hierCodec.decode(hierPayload(3, rawZstdFrame(data, 13)), NO_PARAMS, data.length)),
      data,
    );
    throwsWith(
      () => hierCodec.decode(hierPayload(3, rawZstdFrame(data, 14)), NO_PARAMS, data.length),
      "E_CORRUPT",
    );
  });

  test("non-empty params are E_CORRUPT for NONE and HIER", () => {
    const data = Uint8Array.of(1, 2, 3);
    throwsWith(() => noneCodec.decode(data, Uint8Array.of(0), 3), "E_CORRUPT");
    const payload = hierCodec.encode(data, {}).payload;
    assert.deepEqual(Buffer.from(hierCodec.decode(payload, NO_PARAMS, 3)), Buffer.from(data));
    throwsWith(() => hierCodec.decode(payload, Uint8Array.of(0), 3), "E_CORRUPT");
  });
});

/**
 * A zstd frame (RFC 8878) of one raw block holding `data`, with no content size and a
 * window descriptor asking for 2^windowLog bytes.
 */
function rawZstdFrame(data: Uint8Array, windowLog: number): Buffer {
  const header = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, (windowLog - 10) << 3]);
  const block = Buffer.alloc(3);
  block.writeUIntLE((data.length << 3) | 1, 0, 3); // last block, raw, its size
  return Buffer.concat([header, block, data]);
}

describe("FORMAT.md §6.2: Huffman codebook", () => {
  /** A type 2 block of n symbols from code-length nibbles for symbols lo.. and the bitstream. */
  function block(n: number, lo: number, hi: number, nibbles: number[], ends: number[], data: number[]) {
    const book: number[] = [];
    for (let i = 0; i < nibbles.length; i += 2) book.push(nibbles[i] | ((nibbles[i + 1] ?? 0) << 4));
    return Uint8Array.from([2, n, lo, hi, ...book, ...ends, ...data]);
  }

  test("codes are DEFLATE's canonical codes, written from their most significant bit", () => {
    // Symbols 0 (length 1, code 0), 1 (length 2, code 10), 2 (length 2, code 11).
    // Lanes of 1 symbol: 1, 2, 0, 1 -> bits 1,0 | 1,1 | 0 | 1,0 in stream order.
    const out = new Uint8Array(4);
    // Stream bits, LSB first: 1 0 1 1 0 1 0 -> byte 0b0101101 = 0x2d. Lane ends 2, 4, 5, 7.
    huffmanDecode(block(4, 0, 2, [1, 2, 2], [2, 4, 5, 7], [0x2d]), out);
    assert.deepEqual(out, Uint8Array.of(1, 2, 0, 1));
  });

  test("the escape's first nibble is the low half of r; r >= 3 (runs of 4..256); r < 3 is E_CORRUPT", () => {
    // Symbols 10 and 10 + r + 2 have 1-bit codes; the r + 1 between them have none.
    const escaped = (r: number) =>
      block(4, 10, 10 + r + 2, [1, 15, r & 15, r >> 4, 1], [1, 2, 3, 4], [0b1010]);
    const out = new Uint8Array(4);
    for (const r of [3, 17, 200]) {
      huffmanDecode(escaped(r), out);
      assert.deepEqual(out, Uint8Array.of(10, 10 + r + 2, 10, 10 + r + 2), `r = ${r}`);
    }
    for (const r of [0, 1, 2]) throwsWith(() => huffmanDecode(escaped(r), out), "E_CORRUPT", `r = ${r}: `);
    // Runs of fewer than 4 are written as zero nibbles instead.
    huffmanDecode(block(4, 10, 13, [1, 0, 0, 1], [1, 2, 3, 4], [0b1010]), out);
    assert.deepEqual(out, Uint8Array.of(10, 13, 10, 13));
  });

  test("a non-zero padding nibble after the codebook is E_CORRUPT", () => {
    const good = block(4, 10, 12, [1, 2, 2], [1, 2, 3, 4], [0]);
    const out = new Uint8Array(4);
    huffmanDecode(good, out);
    assert.deepEqual(out, Uint8Array.of(10, 10, 10, 10));
    const bad = Uint8Array.from(good);
    bad[5] |= 0x10; // the high half of the codebook's last byte
    throwsWith(() => huffmanDecode(bad, out), "E_CORRUPT");
  });

  test("non-zero padding bits after the bitstream are E_CORRUPT", () => {
    const out = new Uint8Array(4);
    huffmanDecode(block(4, 0, 1, [1, 1], [1, 2, 3, 4], [0b0101]), out);
    throwsWith(() => huffmanDecode(block(4, 0, 1, [1, 1], [1, 2, 3, 4], [0b10101]), out), "E_CORRUPT");
  });

  test("lane ends are bit offsets from the first bit after the lane table; a lane ending early is E_CORRUPT", () => {
    const out = new Uint8Array(8);
    // 8 symbols, lanes of 2: lane ends 2, 4, 6, 8 bits after the 4 one-byte fields.
    huffmanDecode(block(8, 0, 1, [1, 1], [2, 4, 6, 8], [0b01100110]), out);
    assert.deepEqual(out, Uint8Array.of(0, 1, 1, 0, 0, 1, 1, 0));
    // Lane 1 says it ends at bit 5: its 2 symbols end at bit 4, early.
    throwsWith(() => huffmanDecode(block(8, 0, 1, [1, 1], [2, 5, 6, 8], [0b01100110]), out), "E_CORRUPT");
  });
});

describe("FORMAT.md §6: LZ4 frames", () => {
  test("a frame with linked blocks is E_CORRUPT", () => {
    const data = textBytes(3000, 1);
    const frame = Buffer.from(encodeLz4Frame(data));
    assert.deepEqual(Buffer.from(decodeLz4Frame(frame, data.length)), data);
    const linked = Buffer.from(frame);
    linked[4] &= ~0x20; // FLG bit 5, block independence, cleared
    throwsWith(() => decodeLz4Frame(linked, data.length), "E_CORRUPT");
  });

  test("a stored block shorter than the block maximum before the last is E_CORRUPT", () => {
    const data = textBytes(10, 2);
    const stored = (parts: number[]) => {
      const chunks: Buffer[] = [Buffer.from([0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x00])]; // 64 KiB blocks
      let at = 0;
      for (const size of parts) {
        const word = Buffer.alloc(4);
        word.writeUInt32LE((0x80000000 | size) >>> 0);
        chunks.push(word, data.subarray(at, at + size));
        at += size;
      }
      chunks.push(Buffer.alloc(4));
      return Buffer.concat(chunks);
    };
    assert.deepEqual(Buffer.from(decodeLz4Frame(stored([10]), 10)), data);
    throwsWith(() => decodeLz4Frame(stored([4, 6]), 10), "E_CORRUPT");
  });
});

/** `file` with `extra` bytes inserted at `at` (before the index), offsets and checksums fixed. */
function withGap(file: Uint8Array, at: number, extra: number): Buffer {
  const layout = layoutOf(file);
  const out = Buffer.concat([copyOf(file).subarray(0, at), Buffer.alloc(extra), copyOf(file).subarray(at)]);
  const moved = { ...layout, indexOffset: layout.indexOffset + extra };
  for (let i = 0; i < layout.entryCount; i++) {
    const pos = entryOffset(moved, i);
    const offset = Number(out.readBigUInt64LE(pos));
    if (offset >= at) out.writeBigUInt64LE(BigInt(offset + extra), pos);
  }
  fixIndexCrc(out, moved);
  out.writeBigUInt64LE(BigInt(moved.indexOffset), out.length - TRAILER_SIZE);
  fixTrailerCrc(out);
  return out;
}

describe("FORMAT.md §3: records are back to back", () => {
  const content = textBytes(3 * 4096, 5);

  test("a gap before the first record is E_CORRUPT for both readers", async () => {
    const file = await compress(content, { codec: "zstd", chunkSize: 4096 });
    const bad = withGap(file, layoutOf(file).headerSize, 16);
    await rejectsWith(decompress(bad), "E_CORRUPT");
    await rejectsWith(MmhReader.open(bufferSource(bad)), "E_CORRUPT");
  });

  test("a gap between records is E_CORRUPT for both readers", async () => {
    const file = await compress(content, { codec: "zstd", chunkSize: 4096 });
    const layout = layoutOf(file);
    const bad = withGap(file, layout.records[1].offset, 16);
    await rejectsWith(decompress(bad), "E_CORRUPT");
    const reader = await MmhReader.open(bufferSource(bad));
    try {
      // The record before the gap no longer fills the space up to the next one.
      await rejectsWith(reader.readRange(0, 10), "E_CORRUPT");
      await rejectsWith(reader.readRange(0, content.length), "E_CORRUPT");
      // The first chunk read whole still checks.
      assert.deepEqual(Buffer.from(await reader.readRange(4096, 4096)), content.subarray(4096, 8192));
    } finally {
      await reader.close();
    }
  });

  test("a file with no chunks whose index does not follow the header is E_CORRUPT", async () => {
    const file = await compress(new Uint8Array(0));
    const bad = withGap(file, layoutOf(file).headerSize, 8);
    await rejectsWith(decompress(bad), "E_CORRUPT");
    await rejectsWith(MmhReader.open(bufferSource(bad)), "E_CORRUPT");
  });
});

/** An index block with no entries and this footer text. */
function indexWithFooter(text: string): Buffer {
  const body = Buffer.from(text, "utf8");
  const fixed = Buffer.alloc(INDEX_FIXED_SIZE);
  fixed.write("INDX", 0, "latin1");
  fixed.writeUInt32LE(body.length, 16);
  fixed.writeUInt32LE(crc32(body, crc32(fixed.subarray(0, 20))), 20);
  return Buffer.concat([fixed, body]);
}

const parseFooter = (text: string) => {
  const block = indexWithFooter(text);
  return parseIndex(block.subarray(0, INDEX_FIXED_SIZE), block.subarray(INDEX_FIXED_SIZE), 100, 100).footer;
};

/** `file` with its footer metadata replaced by `text`, lengths and checksums fixed. */
function withFooter(file: Uint8Array, text: string): Buffer {
  const layout = layoutOf(file);
  const old = copyOf(file);
  const footerAt = layout.indexOffset + INDEX_FIXED_SIZE + 32 * layout.entryCount;
  const body = Buffer.from(text, "utf8");
  const out = Buffer.concat([old.subarray(0, footerAt), body, old.subarray(layout.trailerOffset)]);
  out.writeUInt32LE(body.length, layout.indexOffset + 16);
  out.writeUInt32LE(0, layout.indexOffset + 4); // stored as it is, not zstd-compressed
  const indexLength = footerAt + body.length - layout.indexOffset;
  fixIndexCrc(out, { indexOffset: layout.indexOffset, indexLength });
  out.writeBigUInt64LE(BigInt(indexLength), out.length - TRAILER_SIZE + 8);
  fixTrailerCrc(out);
  return out;
}

describe("FORMAT.md §1: integers in the footer JSON are written as integers", () => {
  const entry = (size: string) =>
    `{"format":"folder","entries":[{"path":"a","type":"file","size":${size},"offset":0,"mode":420}]}`;

  test("a folder entry's size, offset or mode written with a fraction or an exponent is E_CORRUPT", () => {
    assert.equal((parseFooter(entry("0")).entries as { size: number }[])[0].size, 0);
    throwsWith(() => parseFooter(entry("0.0")), "E_CORRUPT");
    throwsWith(() => parseFooter(entry("0e0")), "E_CORRUPT");
    throwsWith(() => parseFooter(entry("0").replace('"mode":420', '"mode":420.0')), "E_CORRUPT");
    throwsWith(() => parseFooter(entry("0").replace('"offset":0', '"offset":0E1')), "E_CORRUPT");
  });

  test("the tensor table's offset, length and shape, and tensorsOmitted, too", () => {
    const tensor = (shape: string, offset = "0", length = "8") =>
      `{"tensors":[{"name":"w","dtype":"F32","shape":${shape},"offset":${offset},"length":${length}}]}`;
    assert.deepEqual(parseFooter(tensor("[2,1]")).tensors, [
      { name: "w", dtype: "F32", shape: [2, 1], offset: 0, length: 8 },
    ]);
    throwsWith(() => parseFooter(tensor("[2,1.0]")), "E_CORRUPT");
    throwsWith(() => parseFooter(tensor("[2,1]", "0.0")), "E_CORRUPT");
    throwsWith(() => parseFooter(tensor("[2,1]", "0", "8e0")), "E_CORRUPT");
    throwsWith(() => parseFooter('{"tensors":[],"tensorsOmitted":3.0}'), "E_CORRUPT");
  });

  test("numbers elsewhere (sourceMetadata, unknown keys) may have a fraction or an exponent", () => {
    const footer = parseFooter('{"sourceMetadata":{"size":2.0,"rope":1e6},"other":{"offset":1.5}}');
    assert.deepEqual(footer.sourceMetadata, { size: 2, rope: 1e6 });
  });

  test("both readers refuse such a footer in a whole file", async () => {
    const file = await compress(textBytes(1000, 9), { codec: "zstd" });
    const good = withFooter(file, '{"format":"raw","tensors":[],"tensorsOmitted":3}');
    assert.equal((await decompress(good)).length, 1000);
    const bad = withFooter(file, '{"format":"raw","tensors":[],"tensorsOmitted":3.0}');
    await rejectsWith(decompress(bad), "E_CORRUPT");
    await rejectsWith(MmhReader.open(bufferSource(bad)), "E_CORRUPT");
  });
});

describe("FORMAT.md §4: a compressed footer", () => {
  /** An index block with no entries whose footer is stored compressed: U, then `frame`. */
  const compressedIndex = (declared: number, frame: Buffer) => {
    const body = Buffer.alloc(4 + frame.length);
    body.writeUInt32LE(declared, 0);
    frame.copy(body, 4);
    const fixed = Buffer.alloc(INDEX_FIXED_SIZE);
    fixed.write("INDX", 0, "latin1");
    fixed.writeUInt32LE(1, 4);
    fixed.writeUInt32LE(body.length, 16);
    fixed.writeUInt32LE(crc32(body, crc32(fixed.subarray(0, 20))), 20);
    return () => parseIndex(fixed, body, 100, 100).footer;
  };
  const table = {
    format: "raw",
    tensors: Array.from({ length: 50 }, (_, i) => ({
      name: `layer.${i}.weight`,
      dtype: "F32",
      shape: [0],
      offset: 0,
      length: 0,
    })),
  };

  test("a large footer is stored compressed, a small one as it is, and both read back", () => {
    const json = Buffer.from(JSON.stringify(table));
    const big = encodeIndex([], table);
    assert.equal(big.readUInt32LE(4), 1, "flag bit 0");
    assert.ok(
      big.length < INDEX_FIXED_SIZE + json.length / 4,
      `${big.length} bytes for ${json.length} of JSON`,
    );
    assert.deepEqual(
      parseIndex(big.subarray(0, INDEX_FIXED_SIZE), big.subarray(INDEX_FIXED_SIZE), 100, 100).footer,
      table,
    );
    const small = encodeIndex([], { format: "raw" });
    assert.equal(small.readUInt32LE(4), 0);
    assert.equal(small.subarray(INDEX_FIXED_SIZE).toString(), '{"format":"raw"}');
  });

  test("hostile lengths and frames are E_CORRUPT, and no more than U bytes are decoded", () => {
    const json = Buffer.from(JSON.stringify(table));
    assert.deepEqual(compressedIndex(json.length, zstdCompressSync(json))(), table);
    throwsWith(compressedIndex(json.length + 1, zstdCompressSync(json)), "E_CORRUPT");
    throwsWith(compressedIndex(json.length - 1, zstdCompressSync(json)), "E_CORRUPT");
    throwsWith(compressedIndex((64 << 20) + 1, zstdCompressSync(json)), "E_CORRUPT");
    throwsWith(compressedIndex(json.length, Buffer.from("not a zstd frame")), "E_CORRUPT");
    throwsWith(compressedIndex(0, Buffer.alloc(0)), "E_CORRUPT");
    // A frame of 128 MiB of spaces declared as 100 bytes: refused without inflating it.
    const bomb = zstdCompressSync(Buffer.alloc(128 << 20, 0x20));
    const before = process.memoryUsage().arrayBuffers;
    throwsWith(compressedIndex(100, bomb), "E_CORRUPT");
    assert.ok(process.memoryUsage().arrayBuffers - before < 16 << 20, "the bomb was not inflated");
  });

  test("index flag bits other than bit 0 are E_UNSUPPORTED", () => {
    const block = encodeIndex([], table);
    block.writeUInt32LE(3, 4);
    block.writeUInt32LE(crc32(block.subarray(INDEX_FIXED_SIZE), crc32(block.subarray(0, 20))), 20);
    throwsWith(
      () => parseIndex(block.subarray(0, INDEX_FIXED_SIZE), block.subarray(INDEX_FIXED_SIZE), 100, 100),
      "E_UNSUPPORTED",
    );
  });
});
