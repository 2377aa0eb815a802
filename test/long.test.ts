/**
 * LONG records (FORMAT.md §6.5): a chunk coded with zstd and the content of the chunks
 * before it as a dictionary. Round trips every way, random access through them, files
 * without repeats unchanged, and hostile records, each refused with a code.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { safetensorsData, tile, toBf16 } from "../bench/lib/derived.ts";
import { codecByName } from "../src/codecs/registry.ts";
import { bufferSource } from "../src/common/source.ts";
import { CHUNK_HEADER_SIZE, type IndexEntry } from "../src/container/format.ts";
import { encodeChunk } from "../src/engine/chunk.ts";
import { encodeLongParams, LONG_REACH } from "../src/engine/long.ts";
import { encodeLong, LongMatcher } from "../src/engine/longwriter.ts";
import { MmhReader } from "../src/engine/reader.ts";
import { encodeDupeParams } from "../src/engine/refs.ts";
import {
  compress,
  compressFile,
  compressStream,
  decompress,
  decompressFile,
  decompressStream,
  verify,
} from "../src/index.ts";
import { rng } from "../src/tools/gen.ts";
import { assertError, mmhIn } from "./cli-support.ts";
import { assemble, type Rec, rejectsWith } from "./support.ts";

const dir = mkdtempSync(join(tmpdir(), "mmh-long-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** `n` F32 weights, about N(0, 0.02): no repeats of their own. */
function weights(n: number, seed: number): Buffer {
  const next = rng(seed);
  const values = Float32Array.from({ length: n }, () => (next() + next() + next() - 1.5) * 0.04);
  return Buffer.from(values.buffer);
}

/** Rows of 1 KiB of weights; after `back` rows, half of them copy a row up to `back` rows before. */
function repeatingRows(rows: number, back: number, seed: number): Buffer {
  const row = 1024;
  const fresh = weights((rows * row) / 4, seed);
  const out = Buffer.alloc(rows * row);
  const next = rng(seed + 1);
  for (let r = 0; r < rows; r++) {
    if (r >= back && next() < 0.5) {
      const from = r - 1 - Math.floor(next() * back);
      out.copy(out, r * row, from * row, from * row + row);
    } else fresh.copy(out, r * row, r * row, r * row + row);
  }
  return out;
}

async function* pipe(bytes: Uint8Array, piece = 65536): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += piece) yield bytes.subarray(i, i + piece);
}

async function streamed(bytes: Uint8Array, options = {}): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const part of decompressStream(pipe(bytes), options)) parts.push(Buffer.from(part));
  return Buffer.concat(parts);
}

const codecsOf = async (file: Uint8Array) => {
  const reader = await MmhReader.open(bufferSource(file));
  const codecs = reader.chunks.map((c) => c.codec);
  await reader.close();
  return codecs;
};

// 3 MiB of rows repeating up to 384 KiB back, in chunks of 128 KiB: the repeats lie in
// earlier chunks, where a chunk's own LZ cannot see them.
const rows = repeatingRows(3072, 384, 1);
const CHUNK = 128 << 10;

/**
 * `bytes` cut into chunks of `size`, each scanned by one LongMatcher, zstd-coded and
 * considered for a LONG record against the chunks before it, as the encoder does: the
 * matcher and what it made of each chunk (undefined: coded on its own).
 */
async function matchChunks(bytes: Buffer, size: number) {
  const matcher = new LongMatcher(async (offset, length) => bytes.subarray(offset, offset + length), 3);
  const entries: IndexEntry[] = [];
  const records = [];
  for (let at = 0; at < bytes.length; at += size) {
    const raw = bytes.subarray(at, at + size);
    matcher.scan(raw, at, at + size >= bytes.length);
    const chunk = encodeChunk(raw, codecByName("zstd"), 3);
    records.push(await matcher.consider(chunk, entries.length, at, entries));
    entries.push({
      recordOffset: 0,
      rawOffset: at,
      rawLength: raw.length,
      codec: chunk.codec,
      rawCrc: chunk.rawCrc,
    });
  }
  return { matcher, records };
}

describe("LONG: LZ across chunks", () => {
  test("repeats in earlier chunks: smaller, and every reader restores them", async () => {
    const plain = await compress(rows, { long: false, chunkSize: CHUNK, threads: 1 });
    const long = await compress(rows, { chunkSize: CHUNK, threads: 1 });
    const codecs = await codecsOf(long);
    assert.ok(codecs.filter((c) => c === "LONG").length >= 10, codecs.join(" "));
    assert.ok(!(await codecsOf(plain)).includes("LONG"));
    assert.ok(long.length < plain.length * 0.75, `${long.length} vs ${plain.length}`);

    assert.ok(Buffer.from(await decompress(long)).equals(rows), "bytes in memory");
    assert.ok(Buffer.from(await decompress(long, { threads: 2 })).equals(rows), "two threads");
    assert.ok((await streamed(long)).equals(rows), "a pipe");
    const path = join(dir, "rows.mmh");
    writeFileSync(path, long);
    await verify(path);
    const out = join(dir, "rows.out");
    await decompressFile(path, out, { overwrite: true });
    assert.ok(readFileSync(out).equals(rows), "a file");

    // Random access: any range, any LONG chunk alone, in any order.
    const reader = await MmhReader.open(bufferSource(long));
    try {
      for (const [offset, length] of [
        [rows.length - 5000, 5000],
        [0, 100],
        [1_500_000, 300_000],
        [CHUNK * 7 + 3, CHUNK],
      ]) {
        const got = await reader.readRange(offset, length);
        assert.ok(Buffer.from(got).equals(rows.subarray(offset, offset + length)), `range at ${offset}`);
      }
      const last = reader.chunks.findLastIndex((c) => c.codec === "LONG");
      const chunk = reader.chunks[last];
      const got = await reader.readChunk(last);
      assert.ok(Buffer.from(got).equals(rows.subarray(chunk.rawOffset, chunk.rawOffset + chunk.rawLength)));
    } finally {
      await reader.close();
    }
  });

  test("compressFile and the ratio goal write LONG records; a stream and the speed goal none", async () => {
    const src = join(dir, "rows.bin");
    writeFileSync(src, rows);
    const dst = join(dir, "rows-ratio.mmh");
    const summary = await compressFile(src, dst, {
      goal: "ratio",
      chunkSize: CHUNK,
      overwrite: true,
      threads: 1,
    });
    assert.ok((summary.codecs.LONG ?? 0) > 0, JSON.stringify(summary.codecs));
    assert.ok(Buffer.from(await decompress(readFileSync(dst))).equals(rows));
    assert.ok(!(await codecsOf(await compress(rows, { goal: "speed", chunkSize: CHUNK }))).includes("LONG"));
    const parts: Uint8Array[] = [];
    for await (const part of compressStream(pipe(rows), { chunkSize: CHUNK })) parts.push(Buffer.from(part));
    assert.ok(!(await codecsOf(Buffer.concat(parts))).includes("LONG"), "a stream cannot be read again");
  });

  test("text across chunks: the ratio goal codes LZ chunks with the content before them", async () => {
    // ASCII words (never the anchor byte 0xd5, so the anchor scan finds nothing) drawn from
    // one vocabulary all through: each chunk's own zstd learns the words again, a LONG
    // record finds them in the chunks before.
    const next = rng(11);
    const letters = "abcdefghijklmnopqrstuvwxyz";
    const vocabulary = Array.from({ length: 4000 }, () =>
      Array.from({ length: 3 + Math.floor(next() * 8) }, () => letters[Math.floor(next() * 26)]).join(""),
    );
    let text = "";
    while (text.length < 4 * CHUNK)
      text += `${vocabulary[Math.floor(next() * vocabulary.length)]} ${Math.floor(next() * 100)}\n`;
    const bytes = Buffer.from(text.slice(0, 4 * CHUNK), "latin1");
    const options = { goal: "ratio", chunkSize: CHUNK, threads: 1 } as const;
    const plain = await compress(bytes, { ...options, long: false });
    const long = await compress(bytes, options);
    const codecs = await codecsOf(long);
    // Each chunk on its own: one LZ stream (brotli's top quality codes this text smaller than zstd -19).
    const own = await codecsOf(plain);
    assert.deepEqual(own, ["BROT", "BROT", "BROT", "BROT"]);
    assert.deepEqual(codecs, [own[0], "LONG", "LONG", "LONG"]);
    assert.ok(long.length < plain.length * 0.97, `${long.length} vs ${plain.length}`);
    assert.ok(Buffer.from(await decompress(long)).equals(bytes));
    // The default goal keeps its chunks as they were.
    assert.ok(!(await codecsOf(await compress(bytes, { chunkSize: CHUNK, threads: 1 }))).includes("LONG"));
    const reader = await MmhReader.open(bufferSource(long));
    try {
      const got = await reader.readRange(3 * CHUNK - 10, 1000);
      assert.ok(Buffer.from(got).equals(bytes.subarray(3 * CHUNK - 10, 3 * CHUNK + 990)));
    } finally {
      await reader.close();
    }
  });

  test("data without repeats: the same bytes with and without long-range matching", async () => {
    const plainWeights = weights(1 << 20, 9);
    const a = await compress(plainWeights, { long: false, chunkSize: CHUNK, threads: 1 });
    const b = await compress(plainWeights, { chunkSize: CHUNK, threads: 1 });
    assert.ok(Buffer.from(a).equals(Buffer.from(b)));
  });

  test("real weights repeating 3.3 MB back: LONG records, and the repeated chunks shrink", async () => {
    // The real files' tensors rounded to BF16, then their first MiB again: each repeated
    // chunk's copy lies at the far end of a 3.3 MB dictionary, beyond what zstd's level-3
    // hash table keeps of it, so the tables are sized to the dictionary.
    const shared = join(import.meta.dirname, "..", "..", "shared", "data");
    const parts = readdirSync(shared)
      .filter((name) => name.endsWith(".safetensors"))
      .sort()
      .map((name) => toBf16(safetensorsData(join(shared, name))));
    const period = parts.reduce((n, part) => n + part.length, 0);
    assert.ok(period > 3 << 20 && period < LONG_REACH - (512 << 10), `${period} bytes of real tensors`);
    const bytes = tile(parts, period + (1 << 20));
    const plain = await compress(bytes, { long: false, threads: 1 });
    const long = await compress(bytes, { threads: 1 });
    assert.ok((await codecsOf(long)).includes("LONG"));
    assert.ok(long.length < plain.length - (1 << 19), `${long.length} vs ${plain.length}`);
    assert.ok(Buffer.from(await decompress(long)).equals(bytes));
  });

  test("repeats that gain nothing cost no trial: near-constant bytes at every anchor", async () => {
    // Noise without the anchor byte (0xd5), and every 1 KiB an anchor followed by zeros but
    // for one byte of 64 values: every anchor's key repeats in the chunk before, but
    // near-constant bytes are no repeat worth a LONG record.
    const next = rng(5);
    const bytes = Buffer.alloc(2 << 20);
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(next() * 255);
    for (let i = 0; i < bytes.length; i++) if (bytes[i] === 0xd5) bytes[i] = 0xd4;
    for (let i = 0; i < bytes.length; i += 1024) {
      bytes.fill(0, i, i + 16);
      bytes[i] = 0xd5;
      bytes[i + 4] = (i >> 10) % 64;
    }
    const { matcher, records } = await matchChunks(bytes, CHUNK);
    for (const record of records) assert.equal(record, undefined);
    assert.equal(matcher.scanned, bytes.length / CHUNK);
    assert.equal(matcher.tried, 0);
  });

  test("chunks of 2 MiB: repeats past their first 512 KiB still hit", async () => {
    // Two chunks of 2 MiB (about 800 anchors each) of noise; the second half of the second
    // repeats the second half of the first, so every hit lies past the first 512 KiB.
    const size = 2 << 20;
    const next = rng(7);
    const bytes = Buffer.alloc(2 * size);
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(next() * 256);
    bytes.copy(bytes, size + size / 2, size / 2, size);
    const { records } = await matchChunks(bytes, size);
    assert.equal(records[0], undefined);
    assert.equal(records[1]?.codec, "LONG");
    assert.ok(records[1].payload.length < size * 0.6, `${records[1].payload.length} bytes`);
  });

  test("the last chunk is looked up; a content of one chunk is not searched", async () => {
    // Two chunks, the second a copy of the first: its anchors hit though no chunk follows it.
    const half = rows.subarray(0, CHUNK);
    const twice = Buffer.concat([half, half]);
    const { matcher, records } = await matchChunks(twice, CHUNK);
    assert.equal(matcher.searched, 2);
    assert.ok(matcher.hits >= 8, `${matcher.hits} hits`);
    assert.equal(records[1]?.codec, "LONG");
    // One chunk, first and last: nothing before it to hit, nothing after it to be hit by.
    const alone = await matchChunks(half, CHUNK);
    assert.equal(alone.matcher.scanned, 1);
    assert.equal(alone.matcher.searched, 0);
    assert.equal(alone.records[0], undefined);
    // A last chunk after one without anchors (ASCII text holds no 0xd5): not searched either.
    const header = Buffer.from('{"w":{"dtype":"F32"}}'.padEnd(CHUNK, " "));
    const headed = await matchChunks(Buffer.concat([header, half]), CHUNK);
    assert.equal(headed.matcher.scanned, 2);
    assert.equal(headed.matcher.searched, 1);
  });

  test("an anchor table another matcher released is reused with nothing of it left", async () => {
    // Noise, in which no 12 bytes repeat: scanned by one matcher from content offset 0,
    // which then releases its table, and by the next from 1 MiB on. Had the table kept
    // the first one's anchors, each of the second's from its second chunk on would hit the
    // same key 1 MiB back; none may.
    const next = rng(11);
    const noise = Buffer.alloc(6 * CHUNK);
    for (let i = 0; i < noise.length; i++) noise[i] = Math.floor(next() * 256);
    const scanAll = (from: number) => {
      const matcher = new LongMatcher(async () => new Uint8Array(0), 3);
      for (let at = 0; at < noise.length; at += CHUNK)
        matcher.scan(noise.subarray(at, at + CHUNK), from + at);
      matcher.release();
      return matcher;
    };
    assert.equal(scanAll(0).hits, 0);
    const second = scanAll(1 << 20);
    assert.equal(second.scanned, 6);
    assert.equal(second.hits, 0);
    assert.throws(() => second.scan(noise.subarray(0, CHUNK), 0), { code: "E_INTERNAL" });
    // A table reused: the same records as a fresh one made (the first matcher here had one).
    const first = await matchChunks(rows, CHUNK);
    first.matcher.release();
    const again = await matchChunks(rows, CHUNK);
    again.matcher.release();
    assert.ok(first.matcher.hits > 0);
    assert.equal(again.matcher.hits, first.matcher.hits);
    assert.equal(again.matcher.tried, first.matcher.tried);
    again.records.forEach((r, i) => {
      const f = first.records[i];
      assert.equal(r === undefined, f === undefined, `chunk ${i}`);
      if (r && f)
        assert.ok(Buffer.concat([r.header, r.payload]).equals(Buffer.concat([f.header, f.payload])));
    });
  });

  test("long must be a boolean", async () => {
    await rejectsWith(compress(rows, { long: "yes" as unknown as boolean }), "E_BAD_OPTION");
  });
});

// ---- hand-assembled containers ------------------------------------------------------------

const text = (n: number, seed: number) =>
  Buffer.from(Array.from({ length: n }, (_, i) => `line ${seed}:${i} of the text\n`).join(""));

function zstdRec(raw: Buffer): Rec {
  return { raw, codec: "ZSTD", payload: encodeChunk(raw, codecByName("zstd"), 3).payload };
}

function longRec(
  raw: Buffer,
  dictionary: Buffer,
  width: number,
  first: number,
  edit: Partial<Rec> = {},
): Rec {
  const record = encodeLong(raw, dictionary, width, first, 3);
  assert.ok(record, "a LONG record is smaller");
  return {
    raw,
    codec: "LONG",
    params: record.header.subarray(CHUNK_HEADER_SIZE),
    payload: record.payload,
    ...edit,
  };
}

const a = text(300, 1);
const b = Buffer.concat([a.subarray(1000, 6000), text(20, 2), a.subarray(200, 3000)]);
const c = Buffer.concat([b.subarray(500, 4000), a.subarray(7000, 9000)]);

async function refusedEverywhere(file: Buffer, code: "E_CORRUPT" | "E_CHECKSUM", what: string) {
  await rejectsWith(decompress(file), code, `${what}: decompress: `);
  await rejectsWith(streamed(file), code, `${what}: pipe: `);
  const path = join(dir, "hostile.mmh");
  writeFileSync(path, file);
  await rejectsWith(verify(path), code, `${what}: verify: `);
  const reader = await MmhReader.open(bufferSource(file));
  try {
    await rejectsWith(reader.readRange(0, reader.rawLength), code, `${what}: readRange: `);
  } finally {
    await reader.close();
  }
}

describe("LONG: hand-made records", () => {
  test("sound records decode every way: planes of 1, 2 and 4, a LONG record in the reach, a DUPE of a LONG record", async () => {
    const ab = Buffer.concat([a, b]);
    const file = assemble([
      zstdRec(a),
      longRec(b, a, 1, 0),
      longRec(c, ab, 2, 0),
      longRec(b, Buffer.concat([ab, c]), 4, 0),
      { raw: c, codec: "DUPE", params: encodeDupeParams(2), payload: new Uint8Array(0) },
    ]);
    const content = Buffer.concat([a, b, c, b, c]);
    assert.ok(Buffer.from(await decompress(file)).equals(content));
    assert.ok((await streamed(file)).equals(content));
    const path = join(dir, "hand.mmh");
    writeFileSync(path, file);
    await verify(path);
    const reader = await MmhReader.open(bufferSource(file));
    try {
      for (const i of [4, 3, 2, 1, 0]) {
        const entry = reader.chunks[i];
        const want = content.subarray(entry.rawOffset, entry.rawOffset + entry.rawLength);
        assert.ok(Buffer.from(await reader.readChunk(i)).equals(want), `chunk ${i}`);
      }
    } finally {
      await reader.close();
    }
  });

  const big = Buffer.alloc(LONG_REACH + 1, 7);
  const bigRec: Rec = { raw: big, codec: "NONE", payload: big };
  const none = (n: number, fill: number): Rec => {
    const raw = Buffer.alloc(n, fill);
    return { raw, codec: "NONE", payload: raw };
  };
  const three = none(3 << 20, 5);
  const half = none(3 << 19, 6);
  const corrupt = (r: Rec, at: number): Rec => {
    const payload = Buffer.from(r.payload);
    payload[at] ^= 0xff;
    return { ...r, payload };
  };
  const params = (r: Rec, edit: (p: Buffer) => Buffer): Rec => ({
    ...r,
    params: edit(Buffer.from(r.params!)),
  });
  const first = (n: number) => (p: Buffer) => {
    p.writeBigUInt64LE(BigInt(n), 0);
    return p;
  };
  const cases: [string, Rec[], "E_CORRUPT" | "E_CHECKSUM"][] = [
    ["a dictionary from itself", [zstdRec(a), params(longRec(b, a, 1, 0), first(1))], "E_CORRUPT"],
    [
      "a dictionary from a later chunk",
      [zstdRec(a), params(longRec(b, a, 1, 0), first(2)), zstdRec(c)],
      "E_CORRUPT",
    ],
    ["a dictionary from chunk 2^60", [zstdRec(a), params(longRec(b, a, 1, 0), first(2 ** 60))], "E_CORRUPT"],
    ["a reach over 4 MiB", [bigRec, zstdRec(a), longRec(b, Buffer.concat([big, a]), 1, 0)], "E_CORRUPT"],
    [
      // Chunk 2 reaches 3 MiB back to chunk 0; chunk 4's dictionary starts at chunk 2, so its
      // reach does too: more than 4 MiB before it.
      "a reach over 4 MiB through a LONG record in it",
      [
        three,
        zstdRec(a),
        longRec(b, Buffer.concat([three.raw, a]), 1, 0),
        half,
        longRec(c, Buffer.concat([b, half.raw]), 1, 2),
      ],
      "E_CORRUPT",
    ],
    [
      "a DUPE record in the reach",
      [
        zstdRec(a),
        { raw: a, codec: "DUPE", params: encodeDupeParams(0), payload: new Uint8Array(0) },
        longRec(b, a, 1, 1),
      ],
      "E_CORRUPT",
    ],
    [
      "plane width 3",
      [
        zstdRec(a),
        params(longRec(b, a, 1, 0), (p) => {
          p[8] = 3;
          return p;
        }),
      ],
      "E_CORRUPT",
    ],
    ["params cut short", [zstdRec(a), params(longRec(b, a, 2, 0), (p) => p.subarray(0, 13))], "E_CORRUPT"],
    [
      "frame lengths that do not add up",
      [
        zstdRec(a),
        params(longRec(b, a, 2, 0), (p) => {
          p.writeUInt32LE(p.readUInt32LE(9) + 1, 9);
          return p;
        }),
      ],
      "E_CORRUPT",
    ],
    ["a frame that does not decode", [zstdRec(a), corrupt(longRec(b, a, 1, 0), 0)], "E_CORRUPT"],
    ["a frame with bytes after it", [zstdRec(a), grow(longRec(b, a, 1, 0))], "E_CORRUPT"],
    // The same payload against other content: decodes to other bytes, caught by the CRC.
    ["another dictionary than it was coded with", [zstdRec(b), longRec(b, a, 1, 0)], "E_CHECKSUM"],
    [
      "a dictionary plane that starts with zstd's dictionary magic",
      [
        {
          raw: Buffer.from([0x37, 0xa4, 0x30, 0xec, ...a]),
          codec: "NONE",
          payload: Buffer.from([0x37, 0xa4, 0x30, 0xec, ...a]),
        },
        longRec(b, a, 1, 0),
      ],
      "E_CORRUPT",
    ],
  ];
  for (const [what, records, code] of cases) {
    test(`${what} is ${code}`, async () => {
      await refusedEverywhere(assemble(records), code, what);
    });
  }
});

/** A LONG record of one plane with a stray byte after its frame (its length params grown to match). */
function grow(r: Rec): Rec {
  const payload = Buffer.concat([r.payload, Buffer.from([0])]);
  return { ...r, payload, params: encodeLongParams({ first: 0, width: 1, lengths: [payload.length] }) };
}

describe("CLI: --long and --no-long", () => {
  test("--no-long writes no LONG record; both together, or on decompress, are usage errors", async () => {
    const mmh = mmhIn(dir);
    writeFileSync(join(dir, "rows-cli.bin"), rows);
    let r = mmh(["compress", "rows-cli.bin", "-o", "l1.mmh", "-f", "-q", "--chunk-size", "128K"]);
    assert.equal(r.code, 0, r.stderr);
    r = mmh(["compress", "rows-cli.bin", "-o", "l2.mmh", "-f", "-q", "--chunk-size", "128K", "--no-long"]);
    assert.equal(r.code, 0, r.stderr);
    r = mmh([
      "compress",
      "rows-cli.bin",
      "-o",
      "l3.mmh",
      "-f",
      "-q",
      "--chunk-size",
      "128K",
      "--goal",
      "speed",
      "--long",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const l1 = readFileSync(join(dir, "l1.mmh"));
    assert.ok((await codecsOf(l1)).includes("LONG"));
    assert.ok(!(await codecsOf(readFileSync(join(dir, "l2.mmh")))).includes("LONG"));
    assert.ok(
      (await codecsOf(readFileSync(join(dir, "l3.mmh")))).includes("LONG"),
      "--long with --goal speed",
    );
    r = mmh(["-d", "-c", "l1.mmh"]);
    assert.ok(r.stdout.equals(rows));
    r = mmh(["-d", "-c"], l1);
    assert.ok(r.stdout.equals(rows), "from standard input");
    assertError(mmh(["compress", "rows-cli.bin", "--long", "--no-long"]), "E_USAGE", 2);
    assertError(mmh(["-d", "l1.mmh", "--long"]), "E_USAGE", 2);
  });
});
