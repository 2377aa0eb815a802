/**
 * The container layer against hostile input: src/container/format.ts on its own, then
 * whole files edited field by field (checksums recomputed where needed, so each edit
 * reaches the check behind the checksum) through both readers: the streaming decoder
 * (public decompress) and the random-access reader (MmhReader over a buffer).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { crc32 } from "node:zlib";
import type { ErrorCode } from "../src/common/errors.ts";
import { bufferSource } from "../src/common/source.ts";
import {
  CHUNK_HEADER_SIZE,
  checkChunkHeader,
  END_MAGIC,
  encodeChunkHeader,
  encodeHeader,
  encodeIndex,
  encodeTrailer,
  FORMAT_VERSION,
  HEADER_FIXED_SIZE,
  INDEX_ENTRY_SIZE,
  INDEX_FIXED_SIZE,
  type IndexEntry,
  MAX_CHUNK_SIZE,
  MAX_FOOTER_METADATA,
  MAX_HEADER_METADATA,
  packFooterSoon,
  parseChunkHeader,
  parseHeader,
  parseHeaderFixed,
  parseIndex,
  parseIndexFixed,
  parseTrailer,
  START_MAGIC,
  TRAILER_SIZE,
} from "../src/container/format.ts";
import { MmhReader } from "../src/engine/reader.ts";
import { compress, decompress, decompressStream } from "../src/index.ts";
import {
  copyOf,
  entryOffset,
  fixHeaderCrc,
  fixIndexCrc,
  fixRecordCrc,
  fixTrailerCrc,
  layoutOf,
  noiseBytes,
  rejectsWith,
  sha256,
  textBytes,
  throwsWith,
} from "./support.ts";

const CHUNK = 4096;
/** Two compressible chunks and a short incompressible one: ZSTD, ZSTD, NONE. */
const content = Buffer.concat([textBytes(2 * CHUNK, 11), noiseBytes(500, 12)]);
const sample = Buffer.from(await compress(content, { codec: "zstd", chunkSize: CHUNK }));
const layout = layoutOf(sample);
const zstdRecord = layout.records[0];
const noneRecord = layout.records[2];
const trailerAt = layout.trailerOffset;

async function readWhole(bytes: Uint8Array): Promise<Uint8Array> {
  const reader = await MmhReader.open(bufferSource(bytes));
  try {
    return await reader.readRange(0, reader.rawLength);
  } finally {
    await reader.close();
  }
}

/**
 * The file must be refused by the streaming decoder with one of `decoderCodes` and by
 * the random-access reader (open + read everything) with one of `readerCodes`, each
 * quickly: a hostile length must never be allocated or waited for.
 */
async function refused(
  bytes: Uint8Array,
  decoderCodes: ErrorCode | readonly ErrorCode[],
  readerCodes: ErrorCode | readonly ErrorCode[] = decoderCodes,
): Promise<void> {
  const started = performance.now();
  await rejectsWith(decompress(bytes), decoderCodes, "decompress: ");
  await rejectsWith(() => readWhole(bytes), readerCodes, "MmhReader: ");
  const ms = performance.now() - started;
  assert.ok(ms < 2000, `refusing took ${ms.toFixed(0)} ms`);
}

function edit(change: (buf: Buffer) => void): Buffer {
  const buf = copyOf(sample);
  change(buf);
  return buf;
}

test("the sample file has the expected shape and decodes through both readers", async () => {
  assert.deepEqual(
    layout.records.map((record) => record.codec),
    ["ZSTD", "ZSTD", "NONE"],
  );
  assert.equal(layout.entryCount, 3);
  assert.ok(Buffer.from(await decompress(sample)).equals(content));
  assert.ok(Buffer.from(await readWhole(sample)).equals(content));
});

describe("format.ts: header", () => {
  test("encodeHeader/parseHeader round trip", () => {
    const metadata = { tool: "test", nested: { a: [1, 2, 3] }, text: "é✓" };
    const bytes = encodeHeader(metadata);
    assert.ok(bytes.subarray(0, 8).equals(START_MAGIC));
    const fixed = parseHeaderFixed(bytes.subarray(0, HEADER_FIXED_SIZE));
    assert.equal(fixed.version, FORMAT_VERSION);
    assert.equal(fixed.flags, 0);
    assert.equal(fixed.metadataLength, bytes.length - HEADER_FIXED_SIZE);
    const header = parseHeader(bytes.subarray(0, HEADER_FIXED_SIZE), bytes.subarray(HEADER_FIXED_SIZE));
    assert.deepEqual(header.metadata, metadata);
    assert.equal(header.size, bytes.length);
  });

  test("hostile fixed fields", () => {
    const good = encodeHeader({ a: 1 });
    const fixed = (change: (buf: Buffer) => void): Buffer => {
      const buf = Buffer.from(good.subarray(0, HEADER_FIXED_SIZE));
      change(buf);
      return buf;
    };
    throwsWith(() => parseHeaderFixed(good.subarray(0, HEADER_FIXED_SIZE - 1)), "E_TRUNCATED");
    throwsWith(() => parseHeaderFixed(Buffer.alloc(0)), "E_TRUNCATED");
    for (let i = 0; i < 8; i++) throwsWith(() => parseHeaderFixed(fixed((b) => (b[i] ^= 0x20))), "E_CORRUPT");
    for (const version of [0, 2, 0xffff])
      throwsWith(() => parseHeaderFixed(fixed((b) => b.writeUInt16LE(version, 8))), "E_UNSUPPORTED");
    for (const flags of [1, 2, 0x8000, 0xffff])
      throwsWith(() => parseHeaderFixed(fixed((b) => b.writeUInt16LE(flags, 10))), "E_UNSUPPORTED");
    for (const length of [MAX_HEADER_METADATA + 1, 0xffffffff])
      throwsWith(() => parseHeaderFixed(fixed((b) => b.writeUInt32LE(length, 12))), "E_CORRUPT");
    assert.equal(
      parseHeaderFixed(fixed((b) => b.writeUInt32LE(MAX_HEADER_METADATA, 12))).metadataLength,
      MAX_HEADER_METADATA,
    );
  });

  test("metadata: length, checksum, JSON and object checks", () => {
    const good = encodeHeader({ a: 1 });
    const fixedPart = good.subarray(0, HEADER_FIXED_SIZE);
    const meta = good.subarray(HEADER_FIXED_SIZE);
    throwsWith(() => parseHeader(fixedPart, meta.subarray(0, meta.length - 1)), "E_TRUNCATED");
    const flipped = Buffer.from(meta);
    flipped[2] ^= 1;
    throwsWith(() => parseHeader(fixedPart, flipped), "E_CHECKSUM");
    const badCrc = Buffer.from(fixedPart);
    badCrc[16] ^= 1;
    throwsWith(() => parseHeader(badCrc, meta), "E_CHECKSUM");
    // Checksums recomputed: the JSON checks behind them.
    for (const text of ["[1,2]", "null", "42", '"s"', "{", "{}x", "\ufeff{}", ""]) {
      const bytes = Buffer.from(text);
      const buf = Buffer.concat([Buffer.from(fixedPart), bytes]);
      buf.writeUInt32LE(bytes.length, 12);
      fixHeaderCrc(buf);
      throwsWith(
        () => parseHeader(buf.subarray(0, HEADER_FIXED_SIZE), buf.subarray(HEADER_FIXED_SIZE)),
        "E_CORRUPT",
        `${text}: `,
      );
    }
    const invalidUtf8 = Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]); // {"\xff":1}
    const buf = Buffer.concat([Buffer.from(fixedPart), invalidUtf8]);
    buf.writeUInt32LE(invalidUtf8.length, 12);
    fixHeaderCrc(buf);
    throwsWith(
      () => parseHeader(buf.subarray(0, HEADER_FIXED_SIZE), buf.subarray(HEADER_FIXED_SIZE)),
      "E_CORRUPT",
    );
  });

  test("encodeHeader refuses metadata over the limit with E_LIMIT", () => {
    throwsWith(() => encodeHeader({ big: "x".repeat(MAX_HEADER_METADATA) }), "E_LIMIT");
  });
});

describe("format.ts: chunk record header", () => {
  const params = Buffer.from([1, 2, 3]);
  const make = () => encodeChunkHeader("ZSTD", params, 1000, 0xdeadbeef, 600);

  function check(buf: Buffer): void {
    const fixed = buf.subarray(0, CHUNK_HEADER_SIZE);
    const header = parseChunkHeader(fixed, "t");
    checkChunkHeader(
      fixed,
      buf.subarray(CHUNK_HEADER_SIZE, CHUNK_HEADER_SIZE + header.paramsLength),
      header,
      "t",
    );
  }

  function withCrc(change: (buf: Buffer) => void): Buffer {
    const buf = make();
    change(buf);
    fixRecordCrc(buf, { offset: 0, paramsLength: buf.readUInt16LE(28) });
    return buf;
  }

  test("round trip", () => {
    const buf = make();
    assert.equal(buf.length, CHUNK_HEADER_SIZE + params.length);
    const header = parseChunkHeader(buf.subarray(0, CHUNK_HEADER_SIZE), "t");
    assert.deepEqual(header, {
      codec: "ZSTD",
      rawLength: 1000,
      storedLength: 600,
      rawCrc: 0xdeadbeef,
      flags: 0,
      paramsLength: 3,
    });
    check(buf);
  });

  test("every fixed byte and every params byte is covered by the checksum", () => {
    const length = make().length;
    for (let i = 0; i < length; i++) {
      const bad = make();
      bad[i] ^= 0x01;
      // Flipping the tag makes it no record at all, and the top bit of a u64 length
      // makes an impossible size (both E_CORRUPT, seen before the checksum); anything
      // else is a checksum mismatch (a changed params length checksums other bytes).
      const corrupt = i < 4 || i === 15 || i === 23;
      throwsWith(() => check(bad), corrupt ? "E_CORRUPT" : "E_CHECKSUM", `byte ${i}: `);
    }
  });

  test("fields behind the checksum", () => {
    throwsWith(() => check(withCrc((b) => b.writeUInt16LE(1, 30))), "E_UNSUPPORTED");
    throwsWith(() => check(withCrc((b) => b.writeUInt16LE(0x8000, 30))), "E_UNSUPPORTED");
    throwsWith(() => check(withCrc((b) => b.writeBigUInt64LE(0n, 8))), "E_CORRUPT");
    throwsWith(() => check(withCrc((b) => b.writeBigUInt64LE(BigInt(MAX_CHUNK_SIZE + 1), 8))), "E_CORRUPT");
    throwsWith(() => check(withCrc((b) => b.writeBigUInt64LE(2n ** 64n - 1n, 8))), "E_CORRUPT");
    throwsWith(() => check(withCrc((b) => b.writeBigUInt64LE(1001n, 16))), "E_CORRUPT");
    throwsWith(() => check(withCrc((b) => b.writeBigUInt64LE(2n ** 40n, 16))), "E_CORRUPT");
    // At the limits: raw = 64 MiB and stored = raw are fine.
    check(
      withCrc((b) => {
        b.writeBigUInt64LE(BigInt(MAX_CHUNK_SIZE), 8);
        b.writeBigUInt64LE(BigInt(MAX_CHUNK_SIZE), 16);
      }),
    );
  });
});

describe("format.ts: index", () => {
  const entries: IndexEntry[] = [
    { recordOffset: 100, rawOffset: 0, rawLength: 4096, codec: "ZSTD", rawCrc: 1 },
    { recordOffset: 300, rawOffset: 4096, rawLength: 4096, codec: "NONE", rawCrc: 2 },
    { recordOffset: 4432, rawOffset: 8192, rawLength: 10, codec: "LZ4 ", rawCrc: 3 },
  ];
  const indexOffset = 4500;
  const parse = (buf: Buffer) =>
    parseIndex(buf.subarray(0, INDEX_FIXED_SIZE), buf.subarray(INDEX_FIXED_SIZE), 100, indexOffset);
  const withCrc = (list: IndexEntry[], footer: Record<string, unknown> = {}) => encodeIndex(list, footer);

  test("round trip", () => {
    const buf = encodeIndex(entries, { note: "footer" });
    assert.equal(
      buf.length,
      INDEX_FIXED_SIZE + 3 * INDEX_ENTRY_SIZE + Buffer.byteLength('{"note":"footer"}'),
    );
    const index = parse(buf);
    assert.deepEqual(index.entries, entries);
    assert.deepEqual(index.footer, { note: "footer" });
    const empty = encodeIndex([], {});
    const parseEmpty = (at: number) =>
      parseIndex(empty.subarray(0, INDEX_FIXED_SIZE), empty.subarray(INDEX_FIXED_SIZE), 100, at);
    assert.deepEqual(parseEmpty(100).entries, []);
    // Records are back to back: with no chunks the index follows the header.
    throwsWith(() => parseEmpty(indexOffset), "E_CORRUPT");
  });

  test("a footer packed ahead on the thread pool gives the index encodeIndex makes alone", async () => {
    const table = (n: number) => ({
      format: "onnx",
      tensors: Array.from({ length: n }, (_, i) => ({
        name: `layer.${i}.conv.weight`,
        dtype: "F32",
        shape: [64, 32, 3, 3],
        offset: 1000 + i * 73728,
        length: 73728,
      })),
    });
    // Under FOOTER_ZSTD_MIN, under FOOTER_SOON_MIN (packed at once), zstd -19 on the pool,
    // and past 4 MiB of JSON (zstd -3 on the pool).
    for (const footer of [{ note: "x" }, table(10), table(300), table(40000)]) {
      const packed = await packFooterSoon(footer);
      const label = `${JSON.stringify(footer).length} bytes of JSON`;
      assert.ok(encodeIndex(entries, footer, packed).equals(encodeIndex(entries, footer)), label);
      assert.deepEqual(parse(encodeIndex(entries, footer, packed)).footer, footer, label);
    }
    await rejectsWith(packFooterSoon({ big: "x".repeat(MAX_FOOTER_METADATA) }), "E_LIMIT");
  });

  test("hostile counts and lengths are refused before allocating", () => {
    const buf = encodeIndex(entries, {});
    const fixed = (change: (b: Buffer) => void) => {
      const b = Buffer.from(buf.subarray(0, INDEX_FIXED_SIZE));
      change(b);
      return b;
    };
    const available = buf.length - INDEX_FIXED_SIZE;
    throwsWith(
      () =>
        parseIndexFixed(
          fixed((b) => b.write("INDY", 0, "latin1")),
          available,
        ),
      "E_CORRUPT",
    );
    throwsWith(
      () =>
        parseIndexFixed(
          fixed((b) => b.writeUInt32LE(2, 4)),
          available,
        ),
      "E_UNSUPPORTED",
    );
    for (const count of [4n, 1000000n, 2n ** 53n - 1n, 2n ** 64n - 1n]) {
      throwsWith(
        () =>
          parseIndexFixed(
            fixed((b) => b.writeBigUInt64LE(count, 8)),
            available,
          ),
        "E_CORRUPT",
      );
    }
    for (const footer of [MAX_FOOTER_METADATA + 1, 0xffffffff, 1000]) {
      throwsWith(
        () =>
          parseIndexFixed(
            fixed((b) => b.writeUInt32LE(footer, 16)),
            available,
          ),
        "E_CORRUPT",
      );
    }
    assert.deepEqual(parseIndexFixed(buf.subarray(0, INDEX_FIXED_SIZE), available), {
      count: 3,
      footerLength: 2,
      flags: 0,
      bodyLength: available,
    });
  });

  test("checksum covers the whole block", () => {
    const buf = encodeIndex(entries, { a: 1 });
    for (let i = INDEX_FIXED_SIZE; i < buf.length; i++) {
      const bad = Buffer.from(buf);
      bad[i] ^= 0x01;
      throwsWith(() => parse(bad), "E_CHECKSUM", `byte ${i}: `);
    }
    const bad = Buffer.from(buf);
    bad[20] ^= 0x80;
    throwsWith(() => parse(bad), "E_CHECKSUM");
    throwsWith(() => parse(Buffer.concat([buf, Buffer.from([0])])), ["E_TRUNCATED", "E_CORRUPT"]);
    throwsWith(() => parse(buf.subarray(0, buf.length - 1)), ["E_TRUNCATED", "E_CORRUPT"]);
  });

  test("the same bytes in the same place parsed again give the same index; others are checked anew", () => {
    const buf = encodeIndex(entries, { note: "again" });
    const first = parse(buf);
    assert.equal(parse(Buffer.from(buf)), first);
    const bad = Buffer.from(buf);
    bad[INDEX_FIXED_SIZE + 3] ^= 0x01;
    throwsWith(() => parse(bad), "E_CHECKSUM");
    assert.equal(parse(buf), first);
    const at = (firstRecord: number, offset: number) =>
      parseIndex(buf.subarray(0, INDEX_FIXED_SIZE), buf.subarray(INDEX_FIXED_SIZE), firstRecord, offset);
    throwsWith(() => at(101, indexOffset), "E_CORRUPT", "another first record: ");
    throwsWith(() => at(100, 4460), "E_CORRUPT", "another index offset: ");
    assert.deepEqual(parse(buf).footer, { note: "again" });
  });

  test("entries are checked against each other and the file", () => {
    const variants: [string, IndexEntry[]][] = [
      [
        "raw offset gap",
        [entries[0], { ...entries[1], rawOffset: 4097 }, { ...entries[2], rawOffset: 8193 }],
      ],
      ["first raw offset not 0", [{ ...entries[0], rawOffset: 1 }]],
      ["empty chunk", [{ ...entries[0], rawLength: 0 }]],
      ["chunk over the limit", [{ ...entries[0], rawLength: MAX_CHUNK_SIZE + 1 }]],
      ["record before the first record", [{ ...entries[0], recordOffset: 99 }]],
      ["records out of order", [entries[1], { ...entries[0], rawOffset: 4096 }]],
      ["records overlapping", [entries[0], { ...entries[1], recordOffset: 100 + CHUNK_HEADER_SIZE - 1 }]],
      ["record past the index", [{ ...entries[0], recordOffset: indexOffset - CHUNK_HEADER_SIZE + 1 }]],
    ];
    for (const [name, list] of variants) throwsWith(() => parse(withCrc(list)), "E_CORRUPT", `${name}: `);
    const huge = withCrc([entries[0]]);
    huge.writeBigUInt64LE(2n ** 63n, INDEX_FIXED_SIZE + 16);
    fixIndexCrc(huge, { indexOffset: 0, indexLength: huge.length });
    throwsWith(() => parse(huge), "E_CORRUPT");
    const array = withCrc([entries[0]]);
    const arrayFooter = Buffer.concat([array.subarray(0, array.length - 2), Buffer.from("[]")]);
    fixIndexCrc(arrayFooter, { indexOffset: 0, indexLength: arrayFooter.length });
    throwsWith(() => parse(arrayFooter), "E_CORRUPT");
  });
});

describe("format.ts: trailer", () => {
  const fields = {
    indexOffset: 1234,
    indexLength: 88,
    rawLength: 99999,
    chunkCount: 3,
    sha256: sha256(Buffer.from("x")),
  };

  test("round trip", () => {
    const buf = encodeTrailer(fields);
    assert.equal(buf.length, TRAILER_SIZE);
    assert.ok(buf.subarray(72).equals(END_MAGIC));
    assert.deepEqual(parseTrailer(buf), { ...fields, flags: 0 });
  });

  test("hostile trailers", () => {
    const good = encodeTrailer(fields);
    throwsWith(() => parseTrailer(good.subarray(1)), "E_TRUNCATED");
    throwsWith(() => parseTrailer(Buffer.concat([good, Buffer.from([0])])), "E_TRUNCATED");
    for (let i = 72; i < 80; i++) {
      const bad = Buffer.from(good);
      bad[i] ^= 0x01;
      throwsWith(() => parseTrailer(bad), "E_CORRUPT", `byte ${i}: `);
    }
    for (let i = 0; i < 72; i++) {
      const bad = Buffer.from(good);
      bad[i] ^= 0x01;
      throwsWith(() => parseTrailer(bad), "E_CHECKSUM", `byte ${i}: `);
    }
    const flags = Buffer.from(good);
    flags.writeUInt32LE(1, 64);
    fixTrailerCrc(flags);
    throwsWith(() => parseTrailer(flags), "E_UNSUPPORTED");
    for (const at of [0, 8, 16, 24]) {
      const huge = Buffer.from(good);
      huge.writeBigUInt64LE(2n ** 64n - 1n, at);
      fixTrailerCrc(huge);
      throwsWith(() => parseTrailer(huge), "E_CORRUPT", `field at ${at}: `);
    }
  });
});

describe("hostile files through both readers", () => {
  test("empty and tiny inputs", async () => {
    await refused(Buffer.alloc(0), "E_TRUNCATED");
    await refused(START_MAGIC, "E_TRUNCATED");
    await refused(sample.subarray(0, layout.headerSize), "E_TRUNCATED");
  });

  test("bad magic is E_CORRUPT", async () => {
    for (let i = 0; i < 8; i++)
      await refused(
        edit((b) => (b[i] ^= 0x40)),
        "E_CORRUPT",
      );
    await refused(
      Buffer.from("PK\x03\x04 this is a zip file, honest, and long enough to hold a header...."),
      "E_CORRUPT",
    );
  });

  test("unknown version and reserved header flags are E_UNSUPPORTED", async () => {
    for (const version of [0, 2, 0xffff]) {
      await refused(
        edit((b) => {
          b.writeUInt16LE(version, 8);
          fixHeaderCrc(b);
        }),
        "E_UNSUPPORTED",
      );
    }
    for (const flags of [1, 0x0100, 0x8000]) {
      await refused(
        edit((b) => {
          b.writeUInt16LE(flags, 10);
          fixHeaderCrc(b);
        }),
        "E_UNSUPPORTED",
      );
    }
  });

  test("huge declared header metadata length", async () => {
    await refused(
      edit((b) => b.writeUInt32LE(0xffffffff, 12)),
      "E_CORRUPT",
    );
    await refused(
      edit((b) => b.writeUInt32LE(MAX_HEADER_METADATA + 1, 12)),
      "E_CORRUPT",
    );
    // Within the format's limit but longer than the file: truncated, read lazily.
    await refused(
      edit((b) => b.writeUInt32LE(MAX_HEADER_METADATA, 12)),
      "E_TRUNCATED",
    );
    // Longer by a little: the metadata swallows the first record, so the checksum fails.
    await refused(
      edit((b) => b.writeUInt32LE(layout.metadataLength + 8, 12)),
      "E_CHECKSUM",
    );
  });

  test("header metadata damage is E_CHECKSUM; bad JSON behind a good checksum is E_CORRUPT", async () => {
    await refused(
      edit((b) => (b[HEADER_FIXED_SIZE + 3] ^= 0x01)),
      "E_CHECKSUM",
    );
    await refused(
      edit((b) => (b[16] ^= 0x01)),
      "E_CHECKSUM",
    );
    await refused(
      edit((b) => {
        b[HEADER_FIXED_SIZE] = 0x5b; // '{' -> '[': no longer a JSON object
        fixHeaderCrc(b);
      }),
      "E_CORRUPT",
    );
  });

  test("huge declared index entry count or footer length", async () => {
    const at = layout.indexOffset;
    for (const count of [4n, 1000000n, 2n ** 53n - 1n, 2n ** 63n, 2n ** 64n - 1n]) {
      await refused(
        edit((b) => {
          b.writeBigUInt64LE(count, at + 8);
          fixIndexCrc(b, layout);
        }),
        "E_CORRUPT",
      );
    }
    for (const footer of [MAX_FOOTER_METADATA, MAX_FOOTER_METADATA + 1, 0xffffffff]) {
      await refused(
        edit((b) => {
          b.writeUInt32LE(footer, at + 16);
          fixIndexCrc(b, layout);
        }),
        // The streaming decoder cannot know the file's size: within the limit it reads
        // what there is and runs out (E_TRUNCATED); the reader knows the size (E_CORRUPT).
        footer <= MAX_FOOTER_METADATA ? ["E_TRUNCATED", "E_CORRUPT"] : "E_CORRUPT",
        "E_CORRUPT",
      );
    }
  });

  test("chunk raw length over 64 MiB, zero, or not a safe integer", async () => {
    for (const rawLength of [BigInt(MAX_CHUNK_SIZE + 1), 2n ** 40n, 2n ** 64n - 1n, 0n]) {
      await refused(
        edit((b) => {
          b.writeBigUInt64LE(rawLength, zstdRecord.offset + 8);
          fixRecordCrc(b, zstdRecord);
        }),
        "E_CORRUPT",
      );
    }
    // The index says so too (its checksum recomputed): refused on open.
    await refused(
      edit((b) => {
        b.writeBigUInt64LE(BigInt(MAX_CHUNK_SIZE + 1), entryOffset(layout, 0) + 16);
        fixIndexCrc(b, layout);
      }),
      "E_CORRUPT",
    );
  });

  test("a large declared raw length within the limit does not allocate it", async () => {
    // A ZSTD record declaring 64 MiB over its real 4 KiB payload, index to match.
    const bytes = edit((b) => {
      b.writeBigUInt64LE(BigInt(MAX_CHUNK_SIZE), zstdRecord.offset + 8);
      fixRecordCrc(b, zstdRecord);
    });
    const before = process.memoryUsage().arrayBuffers;
    await refused(bytes, "E_CORRUPT");
    const grown = process.memoryUsage().arrayBuffers - before;
    assert.ok(grown < 32 << 20, `grew by ${grown} bytes`);
    // A NONE record declaring 64 MiB stored: the decoder reads what there is and stops.
    await refused(
      edit((b) => {
        b.writeBigUInt64LE(BigInt(MAX_CHUNK_SIZE), noneRecord.offset + 8);
        b.writeBigUInt64LE(BigInt(MAX_CHUNK_SIZE), noneRecord.offset + 16);
        fixRecordCrc(b, noneRecord);
      }),
      "E_TRUNCATED",
      "E_CORRUPT",
    );
  });

  test("stored length greater than raw length", async () => {
    for (const record of [zstdRecord, noneRecord]) {
      for (const stored of [BigInt(record.rawLength + 1), 2n ** 40n]) {
        await refused(
          edit((b) => {
            b.writeBigUInt64LE(stored, record.offset + 16);
            fixRecordCrc(b, record);
          }),
          "E_CORRUPT",
        );
      }
    }
  });

  test("truncation at every structural boundary", async () => {
    const boundaries = new Set<number>([0, 1, 7, 8, 10, 12, 16, HEADER_FIXED_SIZE, layout.headerSize - 1]);
    for (const record of layout.records) {
      for (const delta of [0, 1, 4, 8, 16, 24, 28, 32, CHUNK_HEADER_SIZE - 1, CHUNK_HEADER_SIZE]) {
        boundaries.add(record.offset + delta);
      }
      boundaries.add(record.payloadOffset + Math.floor(record.storedLength / 2));
      boundaries.add(record.end - 1);
    }
    for (const delta of [0, 4, 8, 16, 20, INDEX_FIXED_SIZE, INDEX_FIXED_SIZE + INDEX_ENTRY_SIZE]) {
      boundaries.add(layout.indexOffset + delta);
    }
    for (const delta of [0, 8, 32, 64, 68, 72, 79]) boundaries.add(trailerAt + delta);
    for (const length of boundaries) {
      const cut = sample.subarray(0, length);
      await rejectsWith(decompress(cut), "E_TRUNCATED", `decompress, length ${length}: `);
      await rejectsWith(() => readWhole(cut), ["E_TRUNCATED", "E_CORRUPT"], `reader, length ${length}: `);
    }
  });

  test("checksum mismatches are E_CHECKSUM", async () => {
    // Record header checksum field, and a byte it covers.
    await refused(
      edit((b) => (b[zstdRecord.offset + 32] ^= 0x01)),
      "E_CHECKSUM",
    );
    await refused(
      edit((b) => (b[zstdRecord.offset + 24] ^= 0x01)),
      "E_CHECKSUM",
    );
    // A NONE payload byte: only the chunk's CRC-32 can see it.
    await refused(
      edit((b) => (b[noneRecord.payloadOffset + 10] ^= 0x01)),
      "E_CHECKSUM",
    );
    // A compressed payload byte: the codec or the CRC-32 sees it.
    await refused(
      edit((b) => (b[zstdRecord.end - 3] ^= 0x01)),
      ["E_CHECKSUM", "E_CORRUPT"],
    );
    // Index body and checksum field.
    await refused(
      edit((b) => (b[entryOffset(layout, 1) + 28] ^= 0x01)),
      "E_CHECKSUM",
    );
    await refused(
      edit((b) => (b[layout.indexOffset + 20] ^= 0x01)),
      "E_CHECKSUM",
    );
    // Trailer checksum field and a field it covers.
    await refused(
      edit((b) => (b[trailerAt + 68] ^= 0x01)),
      "E_CHECKSUM",
    );
    await refused(
      edit((b) => (b[trailerAt + 40] ^= 0x01)),
      "E_CHECKSUM",
    );
  });

  test("a wrong content sha256 behind a good trailer checksum", async () => {
    const bytes = edit((b) => {
      b[trailerAt + 32] ^= 0x01;
      fixTrailerCrc(b);
    });
    await rejectsWith(decompress(bytes, { checkSha256: true }), "E_CHECKSUM");
    // Unasked, decompression checks every chunk's CRC-32 but not the content's sha256;
    // nor can random access: both must still give the right bytes.
    assert.ok(Buffer.from(await decompress(bytes)).equals(content));
    assert.ok(Buffer.from(await readWhole(bytes)).equals(content));
  });

  test("a wrong chunk CRC-32 in both record and index (checksums recomputed) is E_CHECKSUM", async () => {
    await refused(
      edit((b) => {
        const crc = (b.readUInt32LE(zstdRecord.offset + 24) ^ 0x10) >>> 0;
        b.writeUInt32LE(crc, zstdRecord.offset + 24);
        fixRecordCrc(b, zstdRecord);
        b.writeUInt32LE(crc, entryOffset(layout, 0) + 28);
        fixIndexCrc(b, layout);
      }),
      "E_CHECKSUM",
    );
  });

  test("reserved flags in records, index and trailer are E_UNSUPPORTED", async () => {
    await refused(
      edit((b) => {
        b.writeUInt16LE(1, zstdRecord.offset + 30);
        fixRecordCrc(b, zstdRecord);
      }),
      "E_UNSUPPORTED",
    );
    await refused(
      edit((b) => {
        // Bit 0 says the footer is compressed (FORMAT.md §4); bit 1 is the first reserved one.
        b.writeUInt32LE(2, layout.indexOffset + 4);
        fixIndexCrc(b, layout);
      }),
      "E_UNSUPPORTED",
    );
    await refused(
      edit((b) => {
        b.writeUInt32LE(0x80000000, trailerAt + 64);
        fixTrailerCrc(b);
      }),
      "E_UNSUPPORTED",
    );
  });

  test("an unknown codec FourCC is E_UNSUPPORTED", async () => {
    // In record and index alike: both readers reach the codec lookup.
    await refused(
      edit((b) => {
        b.write("QQQQ", zstdRecord.offset + 4, "latin1");
        fixRecordCrc(b, zstdRecord);
        b.write("QQQQ", entryOffset(layout, 0) + 24, "latin1");
        fixIndexCrc(b, layout);
      }),
      "E_UNSUPPORTED",
    );
    // In the record only: the streaming decoder meets the record first; the reader sees
    // the record disagree with its index entry.
    await refused(
      edit((b) => {
        b.write("QQQQ", zstdRecord.offset + 4, "latin1");
        fixRecordCrc(b, zstdRecord);
      }),
      "E_UNSUPPORTED",
      "E_CORRUPT",
    );
  });

  test("a known codec that is not the one used is refused", async () => {
    await refused(
      edit((b) => {
        b.write("BROT", zstdRecord.offset + 4, "latin1");
        fixRecordCrc(b, zstdRecord);
        b.write("BROT", entryOffset(layout, 0) + 24, "latin1");
        fixIndexCrc(b, layout);
      }),
      ["E_CORRUPT", "E_CHECKSUM"],
    );
  });

  test("unknown record tag", async () => {
    await refused(
      edit((b) => b.write("CHNX", layout.records[1].offset, "latin1")),
      "E_CORRUPT",
    );
  });

  test("index entries that disagree with the records are E_CORRUPT", async () => {
    const variants: [string, (b: Buffer) => void][] = [
      ["raw CRC", (b) => (b[entryOffset(layout, 1) + 28] ^= 0x01)],
      ["codec", (b) => b.write("NONE", entryOffset(layout, 0) + 24, "latin1")],
      [
        "record offset +1",
        (b) => b.writeBigUInt64LE(BigInt(layout.records[1].offset + 1), entryOffset(layout, 1)),
      ],
      [
        "raw lengths shifted",
        (b) => {
          b.writeBigUInt64LE(BigInt(CHUNK - 1), entryOffset(layout, 0) + 16);
          b.writeBigUInt64LE(BigInt(CHUNK - 1), entryOffset(layout, 1) + 8);
          b.writeBigUInt64LE(BigInt(CHUNK + 1), entryOffset(layout, 1) + 16);
        },
      ],
    ];
    for (const [name, change] of variants) {
      const bytes = edit((b) => {
        change(b);
        fixIndexCrc(b, layout);
      });
      await rejectsWith(decompress(bytes), "E_CORRUPT", `${name}, decompress: `);
      await rejectsWith(() => readWhole(bytes), "E_CORRUPT", `${name}, reader: `);
    }
  });

  test("trailer fields that disagree with the index are E_CORRUPT", async () => {
    const fields: [string, number, number][] = [
      ["index offset", 0, layout.indexOffset + 1],
      ["index offset (header)", 0, 0],
      ["index length", 8, layout.indexLength + 1],
      ["content length", 16, content.length + 1],
      ["content length (short)", 16, content.length - 1],
      ["chunk count", 24, layout.entryCount + 1],
      ["chunk count (short)", 24, layout.entryCount - 1],
    ];
    for (const [name, at, value] of fields) {
      const bytes = edit((b) => {
        b.writeBigUInt64LE(BigInt(value), trailerAt + at);
        fixTrailerCrc(b);
      });
      await rejectsWith(decompress(bytes), "E_CORRUPT", `${name}, decompress: `);
      await rejectsWith(() => readWhole(bytes), "E_CORRUPT", `${name}, reader: `);
    }
  });

  test("trailing garbage and concatenated files are E_CORRUPT", async () => {
    await refused(Buffer.concat([sample, Buffer.from([0])]), "E_CORRUPT");
    await refused(Buffer.concat([sample, Buffer.from("garbage after the trailer")]), "E_CORRUPT");
    await refused(Buffer.concat([sample, sample]), "E_CORRUPT");
    await refused(Buffer.concat([sample.subarray(0, trailerAt), sample]), "E_CORRUPT");
  });

  test("records moved around (checksums intact) are refused", async () => {
    // Swap the two ZSTD records: each is internally valid, but content order changes.
    const [a, b] = layout.records;
    const swapped = Buffer.concat([
      sample.subarray(0, a.offset),
      sample.subarray(b.offset, b.end),
      sample.subarray(a.offset, a.end),
      sample.subarray(b.end),
    ]);
    if (a.end - a.offset !== b.end - b.offset) {
      await rejectsWith(decompress(swapped), "E_CORRUPT");
      await rejectsWith(() => readWhole(swapped), "E_CORRUPT");
    } else {
      await rejectsWith(decompress(swapped), "E_CORRUPT");
    }
    // Drop the middle record: the index no longer matches.
    const dropped = Buffer.concat([sample.subarray(0, b.offset), sample.subarray(b.end)]);
    await rejectsWith(decompress(dropped), "E_CORRUPT");
    await rejectsWith(() => readWhole(dropped), "E_CORRUPT");
  });

  test("the streaming decoder gives the same answers for 1-byte and odd-sized pieces", async () => {
    async function* pieces(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
      for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
      yield new Uint8Array(0);
    }
    async function decode(bytes: Uint8Array, size: number): Promise<Buffer> {
      const out: Uint8Array[] = [];
      for await (const part of decompressStream(pieces(bytes, size))) out.push(part);
      return Buffer.concat(out);
    }
    for (const size of [1, 3, 37, 4096]) {
      assert.ok((await decode(sample, size)).equals(content), `pieces of ${size}`);
      await rejectsWith(() => decode(sample.subarray(0, sample.length - 1), size), "E_TRUNCATED");
      await rejectsWith(() => decode(Buffer.concat([sample, Buffer.from([1])]), size), "E_CORRUPT");
    }
  });

  test("reader: bad chunk numbers and ranges", async () => {
    const reader = await MmhReader.open(bufferSource(sample));
    await rejectsWith(reader.readChunk(3), "E_NOT_FOUND");
    await rejectsWith(reader.readChunk(-1), "E_NOT_FOUND");
    await rejectsWith(reader.readRange(-1, 1), "E_BAD_OPTION");
    await rejectsWith(reader.readRange(0, 1.5), "E_BAD_OPTION");
    await rejectsWith(reader.readRange(content.length, 1), "E_NOT_FOUND");
    await rejectsWith(reader.readRange(0, 100, 99), "E_LIMIT");
    assert.equal((await reader.readRange(content.length, 0)).length, 0);
    for (let i = 0; i < 3; i++) {
      const chunk = reader.chunks[i];
      const raw = await reader.readChunk(i);
      assert.ok(
        Buffer.from(raw).equals(content.subarray(chunk.rawOffset, chunk.rawOffset + chunk.rawLength)),
      );
      assert.equal(crc32(raw), chunk.rawCrc);
    }
    await reader.close();
  });
});
