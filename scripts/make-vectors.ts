/**
 * Writes the golden vectors in test/vectors/ and their manifest. Run once; the files are
 * FROZEN: every later MMH version must decode the must-decode files to the listed content
 * and refuse the must-fail files with the listed code. test/vectors.test.ts reads only the
 * committed files and never calls this script.
 *
 *   npx node scripts/make-vectors.ts          write missing files; refuse to change any
 *   npx node scripts/make-vectors.ts --check  only compare what would be written
 *   npx node scripts/make-vectors.ts --force  rewrite everything (breaks the freeze!)
 *
 * Content is made by formulas, not random numbers, and every must-fail file is a small
 * edit of a must-decode one, with the checksums in front of the tested check recomputed.
 */
import { createHash } from "node:crypto";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32, constants as zlibConstants, zstdCompressSync, zstdDecompressSync } from "node:zlib";
import { encodeAbin } from "../src/codecs/abin.ts";
import { assemble as assembleCint, cintParts, split as cintSplit, type Part } from "../src/codecs/cint.ts";
import { hierCodec } from "../src/codecs/hier/hier.ts";
import {
  fieldWidth,
  huffmanEncode,
  readCodebook,
  readHeader,
  varintLength,
} from "../src/codecs/hier/huffman.ts";
import { huffmanEncodeContext } from "../src/codecs/hier/huffman-context.ts";
import { layoutById, layoutByKey, streamLength } from "../src/codecs/hier/layouts.ts";
import { encodeRun, p251Codec } from "../src/codecs/p251.ts";
import { codecByName } from "../src/codecs/registry.ts";
import { MmhError } from "../src/common/errors.ts";
import {
  CHUNK_HEADER_SIZE,
  encodeChunkHeader,
  encodeHeader,
  encodeIndex,
  encodeTrailer,
  INDEX_ENTRY_SIZE,
  INDEX_FIXED_SIZE,
  type IndexEntry,
  parseIndex,
} from "../src/container/format.ts";
import { encodeChunk } from "../src/engine/chunk.ts";
import { encodeGroups, splitGroups } from "../src/engine/grouped.ts";
import { encodeLong } from "../src/engine/longwriter.ts";
import { encodeBlocks, type LowRankBlock, predict } from "../src/engine/lowrank.ts";
import { encodeDeltaParams, encodeDupeParams, makeDelta } from "../src/engine/refs.ts";
import { type ArchiveEntry, compress, decompress, inspect, pack, unpack } from "../src/index.ts";
import { compactFloats, fillWeights, gaussian, rng } from "../src/tools/gen.ts";
import { VERSION } from "../src/version.ts";
import {
  codebookEnd,
  fixHeaderCrc,
  fixIndexCrc,
  fixRecordCrc,
  fixTrailerCrc,
  layoutOf,
  structureOf,
} from "../test/support.ts";

const DIR = join(import.meta.dirname, "..", "test", "vectors");
const MAX_FILE = 4096;
const force = process.argv.includes("--force");
const checkOnly = process.argv.includes("--check");

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

// ---- content, by formula ---------------------------------------------------------------

const PANGRAMS = [
  "The quick brown fox jumps over the lazy dog.",
  "Pack my box with five dozen liquor jugs.",
  "Sphinx of black quartz, judge my vow.",
  "How vexingly quick daft zebras jump!",
];

/** Numbered lines of pangrams: compressible, and every line different. */
function lines(count: number, first = 0): Buffer {
  const out: string[] = [];
  for (let i = first; i < first + count; i++) {
    out.push(
      `line ${String(i).padStart(5, "0")}: ${PANGRAMS[i % PANGRAMS.length]} weight[${(i * 37) % 1000}]\n`,
    );
  }
  return Buffer.from(out.join(""), "utf8");
}

/** Bytes with no repeats worth compressing (an affine walk modulo a prime). */
function scrambled(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let x = seed % 251;
  for (let i = 0; i < length; i++) {
    x = (x * 167 + 89) % 251;
    out[i] = (x * 7 + (i >> 3)) & 0xff;
  }
  return out;
}

const smallText = Buffer.from(
  `${"MMH golden vector. The content of this file never changes: a reader that decodes it to anything else is wrong.\n".repeat(6)}éèê ✓ ${"tensor ".repeat(20)}\n`,
  "utf8",
);

// ---- building files ----------------------------------------------------------------------

function codecCounts(file: Uint8Array): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const record of layoutOf(file).records) counts[record.codec] = (counts[record.codec] ?? 0) + 1;
  return counts;
}

/** A container assembled from format.ts primitives: any codec and size per chunk. */
function assemble(pieces: { raw: Buffer; codec: string }[], footer: Record<string, unknown>): Buffer {
  const header = encodeHeader({
    tool: `mmh ${VERSION} scripts/make-vectors.ts`,
    source: { name: null, format: "raw" },
    note: "hand-assembled: one codec and one size per chunk; readers ignore unknown keys",
  });
  const records = pieces.map(({ raw, codec }) => {
    const chunk = encodeChunk(raw, codecByName(codec), undefined);
    if (chunk.codec !== codecByName(codec).id) throw new Error(`${codec} chunk was stored as ${chunk.codec}`);
    return { raw, codec: chunk.codec, rawCrc: chunk.rawCrc, head: chunk.header, payload: chunk.payload };
  });
  return container(header, records, footer);
}

/** Header, records laid back to back, the index of them and the trailer. */
function container(
  header: Uint8Array,
  records: { raw: Uint8Array; codec: string; rawCrc: number; head: Uint8Array; payload: Uint8Array }[],
  footer: Record<string, unknown>,
): Buffer {
  const parts: Uint8Array[] = [header];
  let offset = header.length;
  let rawOffset = 0;
  const entries: IndexEntry[] = [];
  const hash = createHash("sha256");
  for (const { raw, codec, rawCrc, head, payload } of records) {
    entries.push({ recordOffset: offset, rawOffset, rawLength: raw.length, codec, rawCrc });
    parts.push(head, payload);
    offset += head.length + payload.length;
    rawOffset += raw.length;
    hash.update(raw);
  }
  const index = encodeIndex(entries, footer);
  parts.push(
    index,
    encodeTrailer({
      indexOffset: offset,
      indexLength: index.length,
      rawLength: rawOffset,
      chunkCount: entries.length,
      sha256: hash.digest("hex"),
    }),
  );
  return Buffer.concat(parts);
}

interface DecodeVector {
  file: string;
  expect: "decode";
  description: string;
  length: number;
  sha256: string;
  /** Chunks per codec FourCC, as the index lists them. */
  codecs: Record<string, number>;
  fileSha256: string;
}

interface FailVector {
  file: string;
  expect: "fail";
  description: string;
  code: string;
  fileSha256: string;
}

const vectors: (DecodeVector | FailVector)[] = [];
const files = new Map<string, Buffer>();

async function mustDecode(
  file: string,
  description: string,
  bytes: Buffer,
  content: Buffer,
): Promise<Buffer> {
  const decoded = Buffer.from(await decompress(bytes));
  if (!decoded.equals(content)) throw new Error(`${file}: does not decode to its content`);
  files.set(file, bytes);
  vectors.push({
    file,
    expect: "decode",
    description,
    length: content.length,
    sha256: sha256(content),
    codecs: codecCounts(bytes),
    fileSha256: sha256(bytes),
  });
  return bytes;
}

/** Record a must-fail file. `codes`: what it must give; the first one found is frozen. */
async function mustFail(file: string, description: string, bytes: Buffer, codes: string[]): Promise<void> {
  let code = "";
  try {
    await decompress(bytes, { checkSha256: true });
  } catch (error) {
    if (!(error instanceof MmhError)) throw new Error(`${file}: not an MmhError: ${error}`);
    code = error.code;
  }
  if (!codes.includes(code))
    throw new Error(`${file}: gives ${code || "no error"}, expected ${codes.join("|")}`);
  files.set(file, bytes);
  vectors.push({ file, expect: "fail", description, code, fileSha256: sha256(bytes) });
}

const copy = (bytes: Buffer) => Buffer.from(bytes);

// ---- must decode ---------------------------------------------------------------------------

await mustDecode(
  "empty.mmh",
  "empty content: header, an index with no entries, trailer",
  Buffer.from(await compress(Buffer.alloc(0), { codec: "zstd" })),
  Buffer.alloc(0),
);

for (const [name, codec] of [
  ["zstd", "ZSTD"],
  ["lz4", "LZ4 "],
  ["brotli", "BROT"],
  ["none", "NONE"],
] as const) {
  const bytes = Buffer.from(await compress(smallText, { codec: name }));
  const counts = codecCounts(bytes);
  if (counts[codec] !== 1 || Object.keys(counts).length !== 1)
    throw new Error(`${name}: expected one ${codec} chunk, got ${JSON.stringify(counts)}`);
  await mustDecode(
    `small-${name}.mmh`,
    `${smallText.length} bytes of UTF-8 text in one ${codec.trim()} chunk`,
    bytes,
    smallText,
  );
}

const multiContent = Buffer.concat([lines(250).subarray(0, 3 * 4096), scrambled(64, 1)]);
const multi = await mustDecode(
  "multi-chunk-zstd.mmh",
  "chunk size 4096: three ZSTD chunks of text and a short last chunk of scrambled bytes stored as NONE",
  Buffer.from(await compress(multiContent, { codec: "zstd", chunkSize: 4096 })),
  multiContent,
);
{
  const counts = codecCounts(multi);
  if (counts.ZSTD !== 3 || counts.NONE !== 1) throw new Error(`multi-chunk: ${JSON.stringify(counts)}`);
}

const mixedPieces = [
  { raw: lines(40, 1000), codec: "zstd" },
  { raw: lines(25, 2000), codec: "lz4" },
  { raw: Buffer.from("!"), codec: "none" },
  { raw: lines(60, 3000), codec: "brotli" },
  { raw: scrambled(100, 7), codec: "none" },
  { raw: Buffer.alloc(5000, 0x20), codec: "zstd" },
];
const mixedContent = Buffer.concat(mixedPieces.map((piece) => piece.raw));
await mustDecode(
  "mixed-codecs.mmh",
  "hand-assembled: chunks of different sizes (1 to 5000 bytes) and codecs (ZSTD, LZ4, NONE, BROT), unknown header keys, a non-empty footer",
  assemble(mixedPieces, { note: "footer metadata; readers ignore unknown keys", tensors: [] }),
  mixedContent,
);

// ---- must fail -----------------------------------------------------------------------------

const small = files.get("small-zstd.mmh")!;
const layout = layoutOf(multi);
const [first, second] = layout.records;
const noneRecord = layout.records[3];
const trailerAt = layout.trailerOffset;

await mustFail(
  "fail-bad-magic.mmh",
  "start magic byte 1 is 'X' instead of 'M'",
  ((b) => {
    b[1] = 0x58;
    return b;
  })(copy(small)),
  ["E_CORRUPT"],
);

await mustFail(
  "fail-version-2.mmh",
  "header version 2 (header CRC recomputed)",
  ((b) => {
    b.writeUInt16LE(2, 8);
    fixHeaderCrc(b);
    return b;
  })(copy(small)),
  ["E_UNSUPPORTED"],
);

await mustFail(
  "fail-reserved-header-flag.mmh",
  "header flags 0x0001 (header CRC recomputed)",
  ((b) => {
    b.writeUInt16LE(1, 10);
    fixHeaderCrc(b);
    return b;
  })(copy(small)),
  ["E_UNSUPPORTED"],
);

await mustFail(
  "fail-header-checksum.mmh",
  "one bit of the header metadata flipped",
  ((b) => {
    b[30] ^= 0x01;
    return b;
  })(copy(small)),
  ["E_CHECKSUM"],
);

await mustFail(
  "fail-truncated-mid-chunk.mmh",
  "cut in the middle of chunk 1's payload",
  copy(multi.subarray(0, second.payloadOffset + Math.floor(second.storedLength / 2))),
  ["E_TRUNCATED"],
);

await mustFail(
  "fail-truncated-trailer.mmh",
  "the last 40 bytes of the trailer missing",
  copy(multi.subarray(0, multi.length - 40)),
  ["E_TRUNCATED"],
);

await mustFail(
  "fail-payload-bit-flip-zstd.mmh",
  "one bit flipped in the middle of chunk 0's ZSTD payload",
  ((b) => {
    b[first.payloadOffset + Math.floor(first.storedLength / 2)] ^= 0x10;
    return b;
  })(copy(multi)),
  ["E_CHECKSUM", "E_CORRUPT"],
);

await mustFail(
  "fail-payload-bit-flip-none.mmh",
  "one bit flipped in the NONE chunk's payload (only the chunk CRC-32 sees it)",
  ((b) => {
    b[noneRecord.payloadOffset + 5] ^= 0x01;
    return b;
  })(copy(multi)),
  ["E_CHECKSUM"],
);

await mustFail(
  "fail-record-checksum.mmh",
  "one bit of chunk 1's raw CRC field flipped, record CRC not recomputed",
  ((b) => {
    b[second.offset + 24] ^= 0x01;
    return b;
  })(copy(multi)),
  ["E_CHECKSUM"],
);

await mustFail(
  "fail-unknown-codec.mmh",
  "chunk 0's codec FourCC is 'ZZZZ' (record CRC recomputed)",
  ((b) => {
    b.write("ZZZZ", first.offset + 4, "latin1");
    fixRecordCrc(b, first);
    return b;
  })(copy(multi)),
  ["E_UNSUPPORTED"],
);

await mustFail(
  "fail-reserved-chunk-flag.mmh",
  "chunk 0's flags 0x0001 (record CRC recomputed)",
  ((b) => {
    b.writeUInt16LE(1, first.offset + 30);
    fixRecordCrc(b, first);
    return b;
  })(copy(multi)),
  ["E_UNSUPPORTED"],
);

await mustFail(
  "fail-chunk-over-64mib.mmh",
  "chunk 0 declares a raw length of 64 MiB + 1 (record CRC recomputed)",
  ((b) => {
    b.writeBigUInt64LE(BigInt((64 << 20) + 1), first.offset + 8);
    fixRecordCrc(b, first);
    return b;
  })(copy(multi)),
  ["E_CORRUPT"],
);

await mustFail(
  "fail-stored-over-raw.mmh",
  "the NONE chunk declares a stored length one more than its raw length (record CRC recomputed)",
  ((b) => {
    b.writeBigUInt64LE(BigInt(noneRecord.rawLength + 1), noneRecord.offset + 16);
    fixRecordCrc(b, noneRecord);
    return b;
  })(copy(multi)),
  ["E_CORRUPT"],
);

await mustFail(
  "fail-index-entry-mismatch.mmh",
  "index entry 1's raw CRC differs from chunk 1's (index CRC recomputed)",
  ((b) => {
    const at = layout.indexOffset + INDEX_FIXED_SIZE + INDEX_ENTRY_SIZE + 28;
    b.writeUInt32LE((b.readUInt32LE(at) ^ 0x00010000) >>> 0, at);
    fixIndexCrc(b, layout);
    return b;
  })(copy(multi)),
  ["E_CORRUPT"],
);

await mustFail(
  "fail-index-huge-count.mmh",
  "index entry count 2^53 - 1 (index CRC recomputed)",
  ((b) => {
    b.writeBigUInt64LE(2n ** 53n - 1n, layout.indexOffset + 8);
    fixIndexCrc(b, layout);
    return b;
  })(copy(multi)),
  ["E_CORRUPT"],
);

await mustFail(
  "fail-trailing-garbage.mmh",
  "a newline after the end magic",
  Buffer.concat([multi, Buffer.from("\n")]),
  ["E_CORRUPT"],
);

await mustFail(
  "fail-trailer-sha256.mmh",
  "one bit of the content SHA-256 flipped (trailer CRC recomputed)",
  ((b) => {
    b[trailerAt + 32] ^= 0x01;
    fixTrailerCrc(b);
    return b;
  })(copy(multi)),
  ["E_CHECKSUM"],
);

await mustFail(
  "fail-trailer-chunk-count.mmh",
  "trailer chunk count 5 for 4 chunks (trailer CRC recomputed)",
  ((b) => {
    b.writeBigUInt64LE(5n, trailerAt + 24);
    fixTrailerCrc(b);
    return b;
  })(copy(multi)),
  ["E_CORRUPT"],
);

// ===========================================================================================
// Codecs and archives (added in mmh 0.2): every HIER layout and stream method, context
// Huffman with K = 2, 3, 4 and a zero-bit codebook, P251 with and without a tail, a run
// over 64 MiB, and a folder archive. Each file is hand-assembled from the codecs' own
// encoder functions (so that every method appears whatever the writer would pick on
// small data), and what each record holds is asserted before it is written.
// ===========================================================================================

const TOOL = `mmh ${VERSION} scripts/make-vectors.ts`;

interface RawRecord {
  raw: Uint8Array;
  codec: string;
  params?: Uint8Array;
  payload: Uint8Array;
}

/** A container of records whose payloads are given (any codec, any method inside). */
function assembleRecords(records: RawRecord[], footer: Record<string, unknown> = {}): Buffer {
  const header = encodeHeader({ tool: TOOL, source: { name: null, format: "raw" } });
  return container(
    header,
    records.map(({ raw, codec, params = new Uint8Array(0), payload }) => {
      if (codec !== "NONE" && payload.length + params.length >= raw.length)
        throw new Error(`a ${codec} record of ${raw.length} bytes would not be smaller than its content`);
      const rawCrc = crc32(raw);
      return {
        raw,
        codec,
        rawCrc,
        head: encodeChunkHeader(codec, params, raw.length, rawCrc, payload.length),
        payload,
      };
    }),
    footer,
  );
}

const zstdFrame = (bytes: Uint8Array, level = 19) =>
  zstdCompressSync(bytes, {
    params: { [zlibConstants.ZSTD_c_compressionLevel]: level, [zlibConstants.ZSTD_c_checksumFlag]: 0 },
    pledgedSrcSize: bytes.length,
  });

// ---- HIER payloads with chosen stream methods ----------------------------------------------

interface Coded {
  method: number;
  bytes: Uint8Array;
}
type Coder = (stream: Uint8Array) => Coded;

const asConstant: Coder = (s) => {
  if (s.some((v) => v !== s[0])) throw new Error("constant coder on a stream of several values");
  return { method: 0, bytes: s.subarray(0, Math.min(1, s.length)) };
};
const asStored: Coder = (s) => ({ method: 1, bytes: s });
/** Method 2; `block` is the Huffman block type it must hold (0 stored, 1 single symbol, 2 Huffman). */
const asHuffman =
  (block = 2): Coder =>
  (s) => {
    const bytes = huffmanEncode(s);
    if (bytes[0] !== block) throw new Error(`Huffman block type ${bytes[0]}, wanted ${block}`);
    return { method: 2, bytes };
  };
const asZstd: Coder = (s) => ({ method: 3, bytes: zstdFrame(s) });
const asContext =
  (K: number): Coder =>
  (s) => {
    const bytes = huffmanEncodeContext(s, K);
    if (bytes[0] !== 3) throw new Error(`context coder fell back to a type ${bytes[0]} block`);
    return { method: 4, bytes };
  };
/** What the writer would pick among constant, Huffman and stored. */
const natural: Coder = (s) => {
  if (s.every((v) => v === s[0])) return asConstant(s);
  const h = huffmanEncode(s);
  return h[0] === 2 && h.length < s.length ? { method: 2, bytes: h } : asStored(s);
};

/**
 * A HIER payload (FORMAT.md §6.2) of `raw` in layout `id` with head `head`, stream k coded
 * by coders[k]. Layout 19 (records of W bytes) is given as 19 + 256·W (planesKey).
 */
function hierPayload(raw: Uint8Array, id: number, head: number, coders: Coder[] | Coder): Buffer {
  const layout = id < 256 ? layoutById(id) : layoutByKey(id);
  if (!layout) throw new Error(`no layout ${id}`);
  const w = layout.width;
  const n = Math.floor((raw.length - head) / w);
  const tail = raw.length - head - n * w;
  const src = new Uint8Array(n * w); // fresh, so aligned for the layouts' word-wise paths
  src.set(raw.subarray(head, head + n * w));
  const streams = Array.from(
    { length: layout.streams },
    (_, k) => new Uint8Array(streamLength(layout, k, n)),
  );
  layout.split(src, n, streams);
  const coded = streams.map((s, k) => (Array.isArray(coders) ? coders[k] : coders)(s));
  const header = Buffer.alloc(8 + 5 * coded.length);
  header[0] = 1;
  header[1] = layout.id;
  header[2] = head;
  header[3] = coded.length;
  coded.forEach((c, k) => {
    header[8 + 5 * k] = c.method;
    header.writeUInt32LE(c.bytes.length, 8 + 5 * k + 1);
  });
  header.writeUInt32LE(crc32(header.subarray(8), crc32(header.subarray(0, 4))), 4);
  const payload = Buffer.concat([
    header,
    raw.subarray(0, head),
    ...coded.map((c) => c.bytes),
    raw.subarray(raw.length - tail),
  ]);
  // The codec itself must read it back.
  const back = hierCodec.decode(payload, new Uint8Array(0), raw.length);
  if (!Buffer.from(back).equals(Buffer.from(raw)))
    throw new Error(`layout ${id}: payload does not round-trip`);
  return payload;
}

const hierFile = (raw: Uint8Array, id: number, head: number, coders: Coder[] | Coder) =>
  assembleRecords([{ raw, codec: "HIER", payload: hierPayload(raw, id, head, coders) }]);

/** A must-decode file whose records must hold exactly `structure` (structureOf in test/support.ts). */
async function mustDecodeStructured(
  file: string,
  description: string,
  bytes: Buffer,
  content: Buffer,
  structure: string[],
  extra: Record<string, unknown> = {},
): Promise<Buffer> {
  const found = structureOf(bytes);
  if (JSON.stringify(found) !== JSON.stringify(structure))
    throw new Error(`${file}: holds\n  ${found.join("\n  ")}\nnot\n  ${structure.join("\n  ")}`);
  await mustDecode(file, description, bytes, content);
  Object.assign(vectors[vectors.length - 1], { structure, madeBy: `mmh ${VERSION}`, ...extra });
  return bytes;
}

/**
 * A must-fail archive: its content decodes (the container is sound), but a reader that
 * lists or restores its entries must refuse them (FORMAT.md §10.4) with `code`.
 */
async function mustFailArchive(
  file: string,
  description: string,
  bytes: Buffer,
  code: string,
): Promise<void> {
  await decompress(bytes, { checkSha256: true });
  const root = mkdtempSync(join(tmpdir(), "mmh-vectors-"));
  const codes: string[] = [];
  try {
    writeFileSync(join(root, "a.mmh"), bytes);
    for (const work of [
      () => inspect(join(root, "a.mmh")),
      () => unpack(join(root, "a.mmh"), join(root, "out")),
    ]) {
      try {
        await work();
        codes.push("no error");
      } catch (error) {
        codes.push(error instanceof MmhError ? error.code : String(error));
      }
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  if (codes.some((c) => c !== code)) throw new Error(`${file}: gives ${codes.join(", ")}, expected ${code}`);
  files.set(file, bytes);
  vectors.push({ file, expect: "fail", description, code, fileSha256: sha256(bytes) });
  Object.assign(vectors[vectors.length - 1], { api: "unpack", madeBy: `mmh ${VERSION}` });
}

async function mustFailNew(file: string, description: string, bytes: Buffer, code: string): Promise<void> {
  await mustFail(file, description, bytes, [code]);
  Object.assign(vectors[vectors.length - 1], { madeBy: `mmh ${VERSION}` });
}

// ---- editing HIER payloads in a file -------------------------------------------------------

interface HierStream {
  method: number;
  /** File offsets of its descriptor and of its first coded byte. */
  descriptor: number;
  start: number;
  length: number;
}

/** The HIER payload of record `r` of a file: where its header and streams are. */
function hierOf(file: Buffer, r = 0): { at: number; streams: HierStream[] } {
  const record = layoutOf(file).records[r];
  if (record.codec !== "HIER") throw new Error(`record ${r} is ${record.codec}`);
  const at = record.payloadOffset;
  const count = file[at + 3];
  let pos = at + 8 + 5 * count + file[at + 2];
  const streams: HierStream[] = [];
  for (let k = 0; k < count; k++) {
    const descriptor = at + 8 + 5 * k;
    const length = file.readUInt32LE(descriptor + 1);
    streams.push({ method: file[descriptor], descriptor, start: pos, length });
    pos += length;
  }
  return { at, streams };
}

function fixHierCrc(file: Buffer, at: number): void {
  const count = file[at + 3];
  file.writeUInt32LE(
    crc32(file.subarray(at + 8, at + 8 + 5 * count), crc32(file.subarray(at, at + 4))),
    at + 4,
  );
}

/** A Huffman block (type 2) inside a file: its codebook's length nibbles and its lane table. */
function huffmanBlockAt(file: Buffer, start: number, n: number) {
  const block = file.subarray(start);
  const bookAt = readHeader(block, n);
  const lengths = new Uint8Array(256);
  const end = readCodebook(file.subarray(start, start + 1e6), bookAt, lengths).end;
  // The code-length nibbles (not run escapes): index k of the nibble and its length.
  const nibbles: { k: number; len: number }[] = [];
  let k = 0;
  const nibble = () => {
    const at = (start + bookAt + 2) * 2 + k++;
    return (file[at >> 1] >> ((at & 1) * 4)) & 15;
  };
  for (let s = file[start + bookAt]; s <= file[start + bookAt + 1]; ) {
    const kk = k;
    const len = nibble();
    if (len === 15) s += (nibble() | (nibble() << 4)) + 1;
    else {
      if (len > 0) nibbles.push({ k: kk, len });
      s++;
    }
  }
  const setNibble = (kk: number, value: number) => {
    const at = start + bookAt + 2 + (kk >> 1);
    file[at] = kk & 1 ? (file[at] & 0x0f) | (value << 4) : (file[at] & 0xf0) | value;
  };
  const w = fieldWidth(n);
  const lanesAt = start + end;
  const laneEnd = (lane: number) => file.readUIntLE(lanesAt + lane * w, w);
  const setLaneEnd = (lane: number, v: number) => file.writeUIntLE(v, lanesAt + lane * w, w);
  return { countAt: start + 1, lo: start + bookAt, nibbles, setNibble, laneEnd, setLaneEnd, w };
}

// ---- content, by formula ---------------------------------------------------------------------

/** Weights N(0, std) in a float dtype, rows of 64 (src/tools/gen.ts's generator). */
const weights = (count: number, dtype: "BF16" | "F16" | "F32", seed: number, std = 0.02) =>
  fillWeights(Math.ceil(count / 64), 64, std, rng(seed), dtype).subarray(
    0,
    count * (dtype === "F32" ? 4 : 2),
  );

/** Small integers, roughly Gaussian around 0 with spread `spread`. */
function smallInts(count: number, seed: number, spread: number): number[] {
  const normal = gaussian(rng(seed));
  return Array.from({ length: count }, () => Math.round(normal() * spread));
}

/** n symbols of a Markov chain over 0..7 whose next symbol depends on the bucket of the last. */
function markov(n: number, seed: number): Buffer {
  const next = rng(seed);
  const out = Buffer.alloc(n);
  let v = 0;
  for (let i = 0; i < n; i++) {
    const r = next();
    // After 6 or 7, always 0 (a context with one symbol: a zero-bit codebook); after 3..5
    // mostly 4..7; after 0..2 mostly 0..3.
    if (v >= 6) v = 0;
    else if (v >= 3) v = r < 0.8 ? 4 + Math.floor(next() * 4) : Math.floor(next() * 4);
    else v = r < 0.85 ? Math.floor(next() * 4) : 4 + Math.floor(next() * 4);
    out[i] = v;
  }
  return out;
}

/** An f16 scale near `mean` (bits), as ggml blocks hold. */
function f16Bits(x: number): number {
  const f = new Float32Array([x]);
  const b = new Uint32Array(f.buffer)[0];
  const e = ((b >>> 23) & 0xff) - 127 + 15;
  if (e <= 0) return (b >>> 16) & 0x8000;
  return ((b >>> 16) & 0x8000) | (Math.min(e, 30) << 10) | ((b >>> 13) & 0x3ff);
}

/** `count` ggml-shaped blocks of block layout `id`: small f16 scales, skewed quants. */
function quantBlocks(id: number, count: number, seed: number): Buffer {
  const layout = layoutById(id)!;
  const next = rng(seed);
  const normal = gaussian(next);
  const out: number[] = [];
  const names = layout.fieldNames!;
  const sizes = layout.perElement!;
  for (let b = 0; b < count; b++) {
    const scale = f16Bits(0.002 * Math.exp(0.3 * normal()));
    for (let f = 0; f < names.length; f++) {
      const name = names[f];
      for (let i = 0; i < sizes[f]; i++) {
        if (name.endsWith(".lo")) out.push(scale & 0xff);
        else if (name.endsWith(".hi")) out.push(scale >>> 8);
        else if (name === "scales") out.push(Math.max(0, Math.min(63, 32 + Math.round(normal() * 6))));
        else {
          const q = () => Math.max(0, Math.min(15, 8 + Math.round(normal() * 2)));
          out.push(q() | (q() << 4));
        }
      }
    }
  }
  return Buffer.from(out);
}

// ---- HIER: every layout -------------------------------------------------------------------

const L = (id: number, name: string, head: number, streams: string[]) =>
  `HIER layout ${id} (${name}) head ${head}: ${streams.join(", ")}`;

{
  // Layout 0, bytes: one Huffman stream.
  const raw = Buffer.from(smallInts(2000, 11, 3).map((v) => v & 0xff));
  const good = await mustDecodeStructured(
    "hier-bytes.mmh",
    "HIER layout 0 (bytes): 2000 small signed bytes, one Huffman stream",
    hierFile(raw, 0, 0, [asHuffman()]),
    raw,
    [L(0, "bytes", 0, ["huffman"])],
  );
  const { streams } = hierOf(good);
  await mustFailNew(
    "fail-hier-huffman-length-over-11.mmh",
    "hier-bytes.mmh with the first code length of its Huffman codebook 12 (the limit is 11)",
    ((b) => {
      const block = huffmanBlockAt(b, streams[0].start, raw.length);
      block.setNibble(block.nibbles[0].k, 12);
      return b;
    })(copy(good)),
    "E_CORRUPT",
  );
  await mustFailNew(
    "fail-hier-unknown-layout.mmh",
    "hier-bytes.mmh with layout id 18, which no reader knows yet (HIER header CRC recomputed): a newer writer's file",
    ((b) => {
      const { at } = hierOf(b);
      b[at + 1] = 18;
      fixHierCrc(b, at);
      return b;
    })(copy(good)),
    "E_UNSUPPORTED",
  );
  await mustFailNew(
    "fail-hier-header-checksum.mmh",
    "hier-bytes.mmh with the layout id changed to 1 and the HIER header CRC not recomputed",
    ((b) => {
      b[hierOf(b).at + 1] = 1;
      return b;
    })(copy(good)),
    "E_CHECKSUM",
  );
}

{
  // Layout 1, bf16: Huffman exponents and stored sign|mantissa bytes (the reader's fast path).
  const raw = weights(1024, "BF16", 21);
  const good = await mustDecodeStructured(
    "hier-bf16.mmh",
    "HIER layout 1 (bf16): 1024 BF16 weights N(0, 0.02), Huffman exponents and stored sign|mantissa",
    hierFile(raw, 1, 0, [asHuffman(), asStored]),
    raw,
    [L(1, "bf16", 0, ["huffman", "stored"])],
  );
  await mustFailNew(
    "fail-hier-lane-ends-early.mmh",
    "hier-bf16.mmh with lane 0 of the exponent stream's Huffman block ending one bit early",
    ((b) => {
      const block = huffmanBlockAt(b, hierOf(b).streams[0].start, 1024);
      block.setLaneEnd(0, block.laneEnd(0) - 1);
      return b;
    })(copy(good)),
    "E_CORRUPT",
  );
}

{
  // Layout 1 with a head and a tail, and Huffman blocks of the single-symbol and stored types.
  const values = weights(600, "BF16", 22, 0.02);
  // Exponents of values in [1, 2) are all 127: one symbol. The mantissas stay near random.
  for (let i = 0; i < 600; i++) values.writeUInt16LE(0x3f80 | (values.readUInt16LE(2 * i) & 0x807f), 2 * i);
  const raw = Buffer.concat([Buffer.from([0x42]), values, Buffer.from([0x17])]);
  const good = await mustDecodeStructured(
    "hier-bf16-head-tail.mmh",
    "HIER layout 1 (bf16) with a 1-byte head and a 1-byte tail: exponents all 127 in a single-symbol Huffman block, sign|mantissa in a stored Huffman block",
    hierFile(raw, 1, 1, [asHuffman(1), asHuffman(0)]),
    raw,
    [L(1, "bf16", 1, ["huffman/single-symbol", "huffman/stored-block"])],
  );
  await mustFailNew(
    "fail-hier-head-not-below-width.mmh",
    "hier-bf16-head-tail.mmh with head 2, not less than the element width 2 (HIER header CRC recomputed)",
    ((b) => {
      const { at } = hierOf(b);
      b[at + 2] = 2;
      fixHierCrc(b, at);
      return b;
    })(copy(good)),
    "E_CORRUPT",
  );
}

{
  // Layout 2, f16: exponent, mantissa low byte, sign|mantissa high bits.
  const raw = weights(1024, "F16", 23, 0.5);
  const good = await mustDecodeStructured(
    "hier-f16.mmh",
    "HIER layout 2 (f16): 1024 F16 weights N(0, 0.5), three streams",
    hierFile(raw, 2, 0, [asHuffman(), asStored, asHuffman()]),
    raw,
    [L(2, "f16", 0, ["huffman", "stored", "huffman"])],
  );
  await mustFailNew(
    "fail-hier-stream-count.mmh",
    "hier-f16.mmh with a stream count of 4 for a layout of 3 streams (HIER header CRC recomputed over 4 descriptors)",
    ((b) => {
      const { at } = hierOf(b);
      b[at + 3] = 4;
      fixHierCrc(b, at);
      return b;
    })(copy(good)),
    "E_CORRUPT",
  );
}

{
  // Layout 3, f32.
  const raw = weights(512, "F32", 24);
  const good = await mustDecodeStructured(
    "hier-f32.mmh",
    "HIER layout 3 (f32): 512 F32 weights N(0, 0.02), Huffman exponents, stored mantissa bytes",
    hierFile(raw, 3, 0, [asHuffman(), asStored, asStored, asStored]),
    raw,
    [L(3, "f32", 0, ["huffman", "stored", "stored", "stored"])],
  );
  await mustFailNew(
    "fail-hier-unknown-method.mmh",
    "hier-f32.mmh with stream 1's method 5, which does not exist (HIER header CRC recomputed)",
    ((b) => {
      const { at, streams } = hierOf(b);
      b[streams[1].descriptor] = 5;
      fixHierCrc(b, at);
      return b;
    })(copy(good)),
    "E_CORRUPT",
  );
}

{
  // Layout 4, planes2: multiples of 256, so the low bytes are one constant.
  const raw = Buffer.alloc(2000);
  for (const [i, v] of smallInts(1000, 25, 20).entries()) raw.writeInt16LE(v * 256, 2 * i);
  const good = await mustDecodeStructured(
    "hier-planes2.mmh",
    "HIER layout 4 (planes2): 1000 int16 multiples of 256, a constant low-byte plane and a Huffman high-byte plane",
    hierFile(raw, 4, 0, [asConstant, asHuffman()]),
    raw,
    [L(4, "planes2", 0, ["constant", "huffman"])],
  );
  await mustFailNew(
    "fail-hier-constant-two-bytes.mmh",
    "hier-planes2.mmh with its constant stream 2 bytes long and the next stream 1 byte shorter (HIER header CRC recomputed)",
    ((b) => {
      const { at, streams } = hierOf(b);
      b.writeUInt32LE(2, streams[0].descriptor + 1);
      b.writeUInt32LE(streams[1].length - 1, streams[1].descriptor + 1);
      fixHierCrc(b, at);
      return b;
    })(copy(good)),
    "E_CORRUPT",
  );
}

{
  // Layout 5, planes4: token ids under 2^16 (bytes 2 and 3 constant).
  const raw = Buffer.alloc(2000);
  const next = rng(26);
  for (let i = 0; i < 500; i++) raw.writeUInt32LE(Math.floor(next() ** 6 * 50000), 4 * i);
  const good = await mustDecodeStructured(
    "hier-planes4.mmh",
    "HIER layout 5 (planes4): 500 uint32 token ids below 50000, stored low byte, Huffman byte 1, constant bytes 2 and 3",
    hierFile(raw, 5, 0, [asStored, asHuffman(), asConstant, asConstant]),
    raw,
    [L(5, "planes4", 0, ["stored", "huffman", "constant", "constant"])],
  );
  await mustFailNew(
    "fail-hier-stored-wrong-length.mmh",
    "hier-planes4.mmh with its stored stream 1 byte longer and the next stream 1 byte shorter (HIER header CRC recomputed)",
    ((b) => {
      const { at, streams } = hierOf(b);
      b.writeUInt32LE(streams[0].length + 1, streams[0].descriptor + 1);
      b.writeUInt32LE(streams[1].length - 1, streams[1].descriptor + 1);
      fixHierCrc(b, at);
      return b;
    })(copy(good)),
    "E_CORRUPT",
  );
}

{
  // Layout 19, records of 6 bytes: floats serialised as a control byte (sign, mantissa
  // length), 3 mantissa bytes, an exponent control byte and the exponent, the chunk starting
  // 2 bytes into a record (head 2) and ending 3 bytes into one (tail).
  const next = rng(41);
  const record = () => [
    next() < 0.5 ? 0x03 : 0x83,
    Math.floor(next() * 256),
    Math.floor(next() * 256),
    Math.floor(next() * 256),
    0x81,
    0x20 + Math.floor(next() * next() * 5),
  ];
  const raw = Buffer.from([
    ...record().slice(4),
    ...Array.from({ length: 300 }, record).flat(),
    ...record().slice(0, 3),
  ]);
  const good = await mustDecodeStructured(
    "hier-records6.mmh",
    "HIER layout 19 (records) with W = K = 6: 300 serialised floats of 6 bytes after a head of 2 bytes, with a 3-byte tail; control and exponent planes Huffman, mantissa planes stored and zstd, the 0x81 plane constant",
    hierFile(raw, 19 + 256 * 6, 2, [asHuffman(), asStored, asZstd, asStored, asConstant, asHuffman()]),
    raw,
    [L(19, "records", 2, ["huffman", "stored", "zstd", "stored", "constant", "huffman"])],
  );
  for (const [K, why] of [
    [4, "4, which is layout 5's width"],
    [8, "8, which is layout 6's width"],
    [2, "2, under the minimum of 3"],
    [33, "33, over the maximum of 32"],
  ] as const)
    await mustFailNew(
      `fail-hier-records-k${K}.mmh`,
      `hier-records6.mmh with its stream count set to ${why} (HIER header CRC recomputed over ${K} descriptors)`,
      ((b) => {
        const { at } = hierOf(b);
        b[at + 3] = K;
        fixHierCrc(b, at);
        return b;
      })(copy(good)),
      "E_CORRUPT",
    );
  await mustFailNew(
    "fail-hier-records-k5.mmh",
    "hier-records6.mmh with its stream count set to 5, a width layout 19 allows, so the 6 streams' lengths do not add up (HIER header CRC recomputed over 5 descriptors)",
    ((b) => {
      const { at } = hierOf(b);
      b[at + 3] = 5;
      fixHierCrc(b, at);
      return b;
    })(copy(good)),
    "E_CORRUPT",
  );
  await mustFailNew(
    "fail-hier-records-lengths.mmh",
    "hier-records6.mmh with its stored stream 1 one byte longer (HIER header CRC recomputed): the lengths no longer add up to the payload",
    ((b) => {
      const { at, streams } = hierOf(b);
      b.writeUInt32LE(streams[1].length + 1, streams[1].descriptor + 1);
      fixHierCrc(b, at);
      return b;
    })(copy(good)),
    "E_CORRUPT",
  );
}

{
  // Layout 6, planes8: int64 offsets that repeat every 16 values (zstd finds the repeats).
  const raw = Buffer.alloc(2048);
  const next = rng(27);
  const row = Array.from({ length: 16 }, () => Math.floor(next() * 40000));
  for (let i = 0; i < 256; i++) raw.writeBigInt64LE(BigInt(row[i % 16] + (i >> 4) * 70000), 8 * i);
  const good = await mustDecodeStructured(
    "hier-planes8.mmh",
    "HIER layout 6 (planes8): 256 int64 values, byte planes 0 and 1 as zstd frames, plane 2 Huffman, planes 3-7 constant",
    hierFile(raw, 6, 0, [
      asZstd,
      asZstd,
      asHuffman(),
      asConstant,
      asConstant,
      asConstant,
      asConstant,
      asConstant,
    ]),
    raw,
    [
      L(6, "planes8", 0, [
        "zstd",
        "zstd",
        "huffman",
        "constant",
        "constant",
        "constant",
        "constant",
        "constant",
      ]),
    ],
  );
  await mustFailNew(
    "fail-hier-zstd-not-a-frame.mmh",
    "hier-planes8.mmh with the first byte of stream 0's zstd frame magic changed",
    ((b) => {
      b[hierOf(b).streams[0].start] ^= 0xff;
      return b;
    })(copy(good)),
    "E_CORRUPT",
  );
}

// ---- HIER: the ggml block layouts 7-17, each with one targeted defect -----------------------

type Edit = (b: Buffer, at: number, streams: HierStream[], n: number) => void;

/** The first stream holding a Huffman block (type 2), and its symbol count. */
function firstHuffman(streams: HierStream[], file: Buffer, pick = 0): { s: HierStream; k: number } {
  const found = streams.map((s, k) => ({ s, k })).filter(({ s }) => s.method === 2 && file[s.start] === 2);
  if (found.length <= pick) throw new Error("no Huffman stream to edit");
  return found[pick];
}

const SLUGS = [
  "version",
  "header-checksum",
  "lengths-overrun",
  "huffman-count",
  "huffman-block-type",
  "huffman-incomplete",
  "huffman-oversubscribed",
  "huffman-range",
  "huffman-padding",
  "huffman-lanes",
  "context-plain-block",
];

const blockCases: { id: number; name: string; defect: string; code: string; edit: Edit }[] = [
  {
    id: 7,
    name: "q4_0",
    defect: "HIER version byte 2",
    code: "E_CORRUPT",
    edit: (b, at) => {
      b[at] = 2;
      fixHierCrc(b, at);
    },
  },
  {
    id: 8,
    name: "q4_1",
    defect: "a stream's coded length changed with the HIER header CRC not recomputed",
    code: "E_CHECKSUM",
    edit: (b, _at, streams) => {
      b[streams[0].descriptor + 1] ^= 0x01;
    },
  },
  {
    id: 9,
    name: "q5_0",
    defect:
      "the last stream's coded length one more, so the lengths overrun the payload (HIER header CRC recomputed)",
    code: "E_CORRUPT",
    edit: (b, at, streams) => {
      const last = streams[streams.length - 1];
      b.writeUInt32LE(last.length + 1, last.descriptor + 1);
      fixHierCrc(b, at);
    },
  },
  {
    id: 10,
    name: "q5_1",
    defect: "a Huffman block declaring one symbol more than its stream holds",
    code: "E_CORRUPT",
    edit: (b, _at, streams, n) => {
      const { s, k } = firstHuffman(streams, b);
      const size = n * (layoutById(10)!.perElement![k] ?? 1);
      if ((b[s.start + 1] & 0x7f) === 0x7f || size < 1) throw new Error("count edit would carry");
      b[s.start + 1] += 1;
    },
  },
  {
    id: 11,
    name: "q8_0",
    defect: "a Huffman block of type 5, which does not exist",
    code: "E_CORRUPT",
    edit: (b, _at, streams) => {
      b[firstHuffman(streams, b).s.start] = 5;
    },
  },
  {
    id: 12,
    name: "q8_1",
    defect: "a Huffman code length one longer, so the code is incomplete (Kraft sum under 1)",
    code: "E_CORRUPT",
    edit: (b, _at, streams, n) => {
      const { s, k } = firstHuffman(streams, b);
      const block = huffmanBlockAt(b, s.start, n * (layoutById(12)!.perElement![k] ?? 1));
      const nib = block.nibbles.find((x) => x.len < 11)!;
      block.setNibble(nib.k, nib.len + 1);
    },
  },
  {
    id: 13,
    name: "q2_k",
    defect: "a Huffman code length one shorter, so the code is over-subscribed (Kraft sum over 1)",
    code: "E_CORRUPT",
    edit: (b, _at, streams, n) => {
      const { s, k } = firstHuffman(streams, b);
      const block = huffmanBlockAt(b, s.start, n * (layoutById(13)!.perElement![k] ?? 1));
      const nib = block.nibbles.find((x) => x.len > 1)!;
      block.setNibble(nib.k, nib.len - 1);
    },
  },
  {
    id: 14,
    name: "q3_k",
    defect: "a Huffman codebook whose last symbol is below its first (the two swapped)",
    code: "E_CORRUPT",
    edit: (b, _at, streams, n) => {
      const { s, k } = firstHuffman(streams, b);
      const block = huffmanBlockAt(b, s.start, n * (layoutById(14)!.perElement![k] ?? 1));
      const lo = b[block.lo];
      b[block.lo] = b[block.lo + 1];
      b[block.lo + 1] = lo;
    },
  },
  {
    id: 15,
    name: "q4_k",
    defect: "a one bit in the zero padding after a Huffman bitstream",
    code: "E_CORRUPT",
    edit: (b, _at, streams, n) => {
      for (const [k, s] of streams.entries()) {
        if (s.method !== 2 || b[s.start] !== 2) continue;
        const block = huffmanBlockAt(b, s.start, n * (layoutById(15)!.perElement![k] ?? 1));
        const endBit = block.laneEnd(3);
        if (endBit % 8 === 0) continue;
        b[s.start + s.length - 1] |= 0x80;
        return;
      }
      throw new Error("no Huffman stream with padding");
    },
  },
  {
    id: 16,
    name: "q5_k",
    defect: "a Huffman lane table whose lane 1 ends before lane 0",
    code: "E_CORRUPT",
    edit: (b, _at, streams, n) => {
      const { s, k } = firstHuffman(streams, b);
      const block = huffmanBlockAt(b, s.start, n * (layoutById(16)!.perElement![k] ?? 1));
      block.setLaneEnd(1, block.laneEnd(0) - 1);
    },
  },
  {
    id: 17,
    name: "q6_k",
    defect:
      "a stream of plain Huffman (block type 2) labelled method 4, context Huffman (HIER header CRC recomputed)",
    code: "E_CORRUPT",
    edit: (b, at, streams) => {
      b[firstHuffman(streams, b).s.descriptor] = 4;
      fixHierCrc(b, at);
    },
  },
];

for (const { id, name, defect, code, edit } of blockCases) {
  const layout = layoutById(id)!;
  const count = Math.ceil(2048 / layout.width);
  const raw = quantBlocks(id, count, 100 + id);
  const payload = hierPayload(raw, id, 0, natural);
  const bytes = assembleRecords([{ raw, codec: "HIER", payload }]);
  const structure = structureOf(bytes);
  if (!structure[0].startsWith(`HIER layout ${id} (${name}) head 0: `)) throw new Error(structure[0]);
  const good = await mustDecodeStructured(
    `hier-${name.replace("_", "")}.mmh`,
    `HIER layout ${id} (${name}, ggml block of ${layout.width} bytes): ${count} blocks, each field (${layout.fieldNames!.join(", ")}) a stream`,
    bytes,
    raw,
    structure,
  );
  await mustFailNew(
    `fail-hier-${name.replace("_", "")}-${SLUGS[id - 7]}.mmh`,
    `hier-${name.replace("_", "")}.mmh with ${defect}`,
    ((b) => {
      const { at, streams } = hierOf(b);
      edit(b, at, streams, count);
      return b;
    })(copy(good)),
    code,
  );
}

// ---- context Huffman, K = 2, 3, 4 -----------------------------------------------------------

/** The structure of a context-coded stream with K codebooks; K = 2 must have a zero-bit one. */
function contextStructure(raw: Buffer, K: number): string[] {
  const found = structureOf(hierFile(raw, 0, 0, [asContext(K)]));
  const want = L(0, "bytes", 0, [`context K=${K}`]);
  if (!found[0].startsWith(want) || (K === 2 && !found[0].includes("zero-bit")))
    throw new Error(`context K=${K}: ${found[0]}`);
  return found;
}

for (const K of [2, 3, 4]) {
  const raw = markov(4096, 30 + K);
  const good = await mustDecodeStructured(
    `hier-context-k${K}.mmh`,
    `HIER layout 0 (bytes), one stream of method 4: context Huffman with K = ${K} codebooks over 4096 symbols of a Markov chain`,
    hierFile(raw, 0, 0, [asContext(K)]),
    raw,
    contextStructure(raw, K),
  );
  const start = hierOf(good).streams[0].start;
  const kAt = start + 1 + varintLength(4096);
  if (K === 2) {
    await mustFailNew(
      "fail-hier-context-k5.mmh",
      "hier-context-k2.mmh with K = 5 codebooks (at most 4)",
      ((b) => {
        b[kAt] = 5;
        return b;
      })(copy(good)),
      "E_CORRUPT",
    );
    // The zero-bit codebook: lo = hi and one zero nibble. A nonzero nibble makes it one code.
    const zeroAt = ((b: Buffer) => {
      let pos = kAt + 1 + (K - 1);
      for (let c = 0; c < K; c++) {
        if (b[pos] === b[pos + 1] && b[pos + 2] === 0) return pos;
        pos = codebookEnd(b, pos);
      }
      throw new Error("hier-context-k2.mmh has no zero-bit codebook");
    })(good);
    await mustFailNew(
      "fail-hier-context-one-code.mmh",
      "hier-context-k2.mmh with its zero-bit codebook's length nibble 1: a codebook of one code",
      ((b) => {
        b[zeroAt + 2] = 0x01;
        return b;
      })(copy(good)),
      "E_CORRUPT",
    );
  } else if (K === 3) {
    await mustFailNew(
      "fail-hier-context-thresholds.mmh",
      "hier-context-k3.mmh with its second bucket threshold equal to its first (they must rise)",
      ((b) => {
        b[kAt + 2] = b[kAt + 1];
        return b;
      })(copy(good)),
      "E_CORRUPT",
    );
  } else {
    await mustFailNew(
      "fail-hier-context-lane-ends-early.mmh",
      "hier-context-k4.mmh with lane 0 of its context Huffman block ending one bit early",
      ((b) => {
        let pos = kAt + 1 + (K - 1);
        for (let c = 0; c < K; c++)
          pos = b[pos] === b[pos + 1] && b[pos + 2] === 0 ? pos + 3 : codebookEnd(b, pos);
        const w = fieldWidth(4096);
        b.writeUIntLE(b.readUIntLE(pos, w) - 1, pos, w);
        return b;
      })(copy(good)),
      "E_CORRUPT",
    );
  }
}

// ---- P251 ----------------------------------------------------------------------------------

/** A P251 record made by the codec itself. */
function p251Record(raw: Buffer): RawRecord {
  const { payload, params } = p251Codec.encode(raw, {});
  return { raw, codec: "P251", params: params!, payload };
}

{
  const periodic = Buffer.from(Array.from({ length: 3000 }, (_, i) => [3, 1, 4, 1, 5, 9, 2][i % 7]));
  const a = Buffer.concat([periodic, lines(8, 500)]);
  const textPattern = lines(12, 700);
  const b = Buffer.concat([textPattern, textPattern, textPattern, Buffer.from("end of the periodic part\n")]);
  const c = lines(30, 900);
  const bytes = assembleRecords([p251Record(a), p251Record(b), p251Record(c)]);
  const good = await mustDecodeStructured(
    "p251-tail.mmh",
    "three P251 chunks: period 7 and a zstd tail of text; a 12-line text pattern as a zstd frame and a short stored tail; nothing periodic (P = 0) and the whole chunk a zstd tail",
    bytes,
    Buffer.concat([a, b, c]),
    [
      `P251 R=${a.length} P=7 L=3000: pattern stored, tail zstd`,
      `P251 R=${b.length} P=${textPattern.length} L=${3 * textPattern.length}: pattern zstd, tail stored`,
      `P251 R=${c.length} P=0 L=0: pattern empty, tail zstd`,
    ],
  );
  const first = layoutOf(good).records[0];
  await mustFailNew(
    "fail-p251-period-over-data.mmh",
    `p251-tail.mmh with chunk 0's period ${a.length + 1}, more than its ${a.length} bytes (record CRC recomputed)`,
    ((f) => {
      f.writeUInt32LE(a.length + 1, first.offset + CHUNK_HEADER_SIZE + 1);
      fixRecordCrc(f, first);
      return f;
    })(copy(good)),
    "E_CORRUPT",
  );
}

{
  const raw = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i % 12) * 17));
  const good = await mustDecodeStructured(
    "p251-no-tail.mmh",
    "one P251 chunk that is wholly periodic: a 12-byte pattern stored, repeated to 3000 bytes, no tail",
    assembleRecords([p251Record(raw)]),
    raw,
    ["P251 R=3000 P=12 L=3000: pattern stored, tail empty"],
  );
  const first = layoutOf(good).records[0];
  await mustFailNew(
    "fail-p251-zstd-empty-tail.mmh",
    "p251-no-tail.mmh with the tail's zstd flag set on its empty tail (record CRC recomputed)",
    ((f) => {
      f[first.offset + CHUNK_HEADER_SIZE] |= 2;
      fixRecordCrc(f, first);
      return f;
    })(copy(good)),
    "E_CORRUPT",
  );
}

{
  const RUN = (64 << 20) + 4099;
  const before = lines(20, 1200);
  const after = scrambled(100, 3);
  const run = Buffer.alloc(RUN, 0xa5);
  const { payload, params } = encodeRun(Buffer.from([0xa5]), RUN);
  const beforeRecord = encodeChunk(before, codecByName("zstd"), undefined);
  const records: RawRecord[] = [
    { raw: before, codec: "ZSTD", payload: beforeRecord.payload },
    { raw: run, codec: "P251", params, payload },
    { raw: after, codec: "NONE", payload: after },
  ];
  const good = await mustDecodeStructured(
    "run-over-64mib.mmh",
    `a ZSTD chunk, a P251 run of ${RUN} bytes of 0xA5 (64 MiB + 4099: one 54-byte record), a NONE chunk; offsets after it pass 64 MiB`,
    assembleRecords(records),
    Buffer.concat([before, run, after]),
    [
      `ZSTD R=${before.length}`,
      `P251 R=${RUN} P=1 L=${RUN}: pattern stored, tail empty`,
      `NONE R=${after.length}`,
    ],
  );
  const layout = layoutOf(good);
  const rec = layout.records[1];
  await mustFailNew(
    "fail-run-checksum.mmh",
    "run-over-64mib.mmh with the run's raw CRC-32 changed in its record and its index entry (record and index CRCs recomputed): only the CRC over all the run's bytes sees it",
    ((f) => {
      const crc = (f.readUInt32LE(rec.offset + 24) ^ 0x00000100) >>> 0;
      f.writeUInt32LE(crc, rec.offset + 24);
      fixRecordCrc(f, rec);
      f.writeUInt32LE(crc, layout.indexOffset + INDEX_FIXED_SIZE + INDEX_ENTRY_SIZE + 28);
      fixIndexCrc(f, layout);
      return f;
    })(copy(good)),
    "E_CHECKSUM",
  );
  // A P251 record over 64 MiB that has a tail is not a run: the 64 MiB limit applies.
  const withTail = Buffer.from(params);
  withTail.writeBigUInt64LE(BigInt(RUN - 1), 5);
  await mustFailNew(
    "fail-run-with-tail.mmh",
    "as run-over-64mib.mmh, but the P251 record over 64 MiB has a 1-byte tail (periodic length R - 1), so it is not a run",
    assembleRecords([
      records[0],
      { raw: run, codec: "P251", params: withTail, payload: Buffer.concat([payload, Buffer.from([0xa5])]) },
      records[2],
    ]),
    "E_CORRUPT",
  );
}

// ---- a folder archive ------------------------------------------------------------------------

/** `file` with its footer stored as plain JSON (index flags 0), lengths and checksums fixed. */
function withPlainFooter(file: Buffer): Buffer {
  const layout = layoutOf(file);
  const at = layout.indexOffset;
  if (file.readUInt32LE(at + 4) === 0) return file;
  const footerAt = at + INDEX_FIXED_SIZE + layout.entryCount * INDEX_ENTRY_SIZE;
  const json = zstdDecompressSync(file.subarray(footerAt + 4, layout.trailerOffset));
  const out = Buffer.concat([file.subarray(0, footerAt), json, file.subarray(layout.trailerOffset)]);
  out.writeUInt32LE(0, at + 4);
  out.writeUInt32LE(json.length, at + 16);
  const indexLength = footerAt + json.length - at;
  fixIndexCrc(out, { indexOffset: at, indexLength });
  out.writeBigUInt64LE(BigInt(indexLength), out.length - 80 + 8);
  fixTrailerCrc(out);
  return out;
}

{
  const root = mkdtempSync(join(tmpdir(), "mmh-vectors-"));
  const dir = join(root, "model");
  try {
    mkdirSync(join(dir, "up"), { recursive: true });
    writeFileSync(join(dir, "config.json"), '{"hidden_size": 64, "note": "golden vector"}\n');
    writeFileSync(join(dir, "run.sh"), "#!/bin/sh\necho golden vector\n");
    writeFileSync(join(dir, "up", "data.bin"), lines(10, 1500));
    writeFileSync(join(dir, "up", "empty"), "");
    symlinkSync("../config.json", join(dir, "up", "config-link"));
    chmodSync(join(dir, "config.json"), 0o644);
    chmodSync(join(dir, "run.sh"), 0o755);
    chmodSync(join(dir, "up", "data.bin"), 0o600);
    chmodSync(join(dir, "up", "empty"), 0o640);
    chmodSync(join(dir, "up"), 0o750);
    const file = join(root, "model.mmh");
    await pack(dir, file, { threads: 1 });
    // Made before footers were stored compressed; its must-fail edits change the footer's text.
    const bytes = withPlainFooter(readFileSync(file));
    const where = layoutOf(bytes);
    const footer = parseIndex(
      bytes.subarray(where.indexOffset, where.indexOffset + INDEX_FIXED_SIZE),
      bytes.subarray(where.indexOffset + INDEX_FIXED_SIZE, where.trailerOffset),
      where.headerSize,
      where.indexOffset,
    ).footer as unknown as { entries: ArchiveEntry[] };
    const tree = footer.entries.map((e) =>
      e.type === "file"
        ? { path: e.path, type: e.type, mode: e.mode, size: e.size, sha256: e.sha256 }
        : e.type === "dir"
          ? { path: e.path, type: e.type, mode: e.mode }
          : { path: e.path, type: e.type, target: e.target },
    );
    const content = Buffer.concat(
      footer.entries.filter((e) => e.type === "file").map((e) => readFileSync(join(dir, e.path))),
    );
    const good = await mustDecodeStructured(
      "archive.mmh",
      "a folder archive (mmh pack): files of modes 0644, 0755, 0600 and 0640 (one empty), a sub-folder of mode 0750, a symbolic link to ../config.json",
      bytes,
      content,
      structureOf(bytes),
      { tree },
    );
    const layout = layoutOf(good);
    const editFooter = (from: string, to: string) => (b: Buffer) => {
      if (from.length !== to.length) throw new Error("footer edits keep the length");
      const at = b.indexOf(from, layout.indexOffset, "utf8");
      if (at < 0 || b.indexOf(from, at + 1, "utf8") >= 0)
        throw new Error(`${from} is not in the footer once`);
      b.write(to, at, "utf8");
      fixIndexCrc(b, layout);
      return b;
    };
    await mustFailArchive(
      "fail-archive-dotdot-path.mmh",
      'archive.mmh with the entry path "up/data.bin" changed to "../data.bin" (index CRC recomputed): unpack must refuse it',
      editFooter('"up/data.bin"', '"../data.bin"')(copy(good)),
      "E_UNSAFE_PATH",
    );
    await mustFailArchive(
      "fail-archive-link-escapes.mmh",
      'archive.mmh with the link up/config-link pointing to "../../config.j", above the folder (index CRC recomputed)',
      editFooter('"../config.json"', '"../../config.j"')(copy(good)),
      "E_UNSAFE_PATH",
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

// ---- DUPE and DLTA records (FORMAT.md §6.3, §6.4) ----------------------------------------------

{
  const a = lines(14, 1700);
  const b = lines(14, 1800);
  const zstdOf = (raw: Buffer): RawRecord => ({
    raw,
    codec: "ZSTD",
    payload: encodeChunk(raw, codecByName("zstd"), 19).payload,
  });
  const dupe = (raw: Buffer, target: number): RawRecord => ({
    raw,
    codec: "DUPE",
    params: encodeDupeParams(target),
    payload: new Uint8Array(0),
  });
  await mustDecode(
    "dupe-reference.mmh",
    `three chunks: ZSTD text A (${a.length} bytes), ZSTD text B, and a DUPE record (8 bytes of params, no payload) that refers to chunk 0, so the content is A B A`,
    assembleRecords([zstdOf(a), zstdOf(b), dupe(a, 0)]),
    Buffer.concat([a, b, a]),
  );
  Object.assign(vectors[vectors.length - 1], { madeBy: `mmh ${VERSION}` });
  await mustFailNew(
    "fail-dupe-forward.mmh",
    "as dupe-reference.mmh, but chunk 1 is a DUPE record that refers to chunk 2, a later one",
    assembleRecords([zstdOf(a), dupe(b, 2), zstdOf(b)]),
    "E_CORRUPT",
  );
  await mustFailNew(
    "fail-dupe-self.mmh",
    "chunk 1 is a DUPE record that refers to itself",
    assembleRecords([zstdOf(a), dupe(a, 1)]),
    "E_CORRUPT",
  );
  await mustFailNew(
    "fail-dupe-chain.mmh",
    "chunk 1 refers to chunk 0 (sound), chunk 2 to chunk 1, itself a DUPE record (chains are not allowed)",
    assembleRecords([zstdOf(a), dupe(a, 0), dupe(a, 1)]),
    "E_CORRUPT",
  );
  await mustFailNew(
    "fail-dupe-out-of-range.mmh",
    "chunk 1 is a DUPE record that refers to chunk 7 of a 2-chunk file",
    assembleRecords([zstdOf(a), dupe(a, 7)]),
    "E_CORRUPT",
  );

  // A delta against a base file (delta-base.bin, committed beside the vectors).
  const next = gaussian(rng(1900));
  const baseValues = Float32Array.from({ length: 256 }, () => next() * 0.02);
  const tuned = baseValues.map((x) => x + next() * 0.0002);
  const base = Buffer.from(baseValues.buffer);
  const raw = Buffer.from(tuned.buffer);
  const deltaRecord = (mode: number): RawRecord => {
    const diff = makeDelta(raw, base, mode);
    return {
      raw,
      codec: "DLTA",
      params: encodeDeltaParams({
        mode,
        baseSha256: sha256(base),
        baseOffset: 0,
        inner: "ZSTD",
        innerParams: new Uint8Array(0),
      }),
      payload: encodeChunk(diff, codecByName("zstd"), 19).payload,
    };
  };
  // The base is frozen with the vectors: written once, then only checked.
  const basePath = join(DIR, "delta-base.bin");
  if (!existsSync(basePath) && !checkOnly) writeFileSync(basePath, base);
  if (!readFileSync(basePath).equals(base)) throw new Error("delta-base.bin was modified: it is frozen");
  const content = Buffer.concat([raw, raw]);
  async function mustDecodeWithBase(file: string, description: string, bytes: Buffer, expected: Buffer) {
    if (!Buffer.from(await decompress(bytes, { base: basePath })).equals(expected))
      throw new Error(`${file} does not decode to its content`);
    files.set(file, bytes);
    vectors.push({
      file,
      expect: "decode",
      description,
      length: expected.length,
      sha256: sha256(expected),
      codecs: codecCounts(bytes),
      fileSha256: sha256(bytes),
    });
    Object.assign(vectors[vectors.length - 1], {
      base: "delta-base.bin",
      baseSha256: sha256(base),
      madeBy: `mmh ${VERSION}`,
    });
  }
  await mustDecodeWithBase(
    "delta-xor-sub32.mmh",
    "two DLTA records against delta-base.bin (256 F32 weights): the same 256 fine-tuned weights as an XOR difference (mode 0) and as 4-byte subtraction (mode 2), each difference one ZSTD frame",
    assembleRecords([deltaRecord(0), deltaRecord(2)]),
    content,
  );
  {
    const zz = assembleRecords([deltaRecord(3), deltaRecord(4)]);
    await mustDecodeWithBase(
      "delta-zigzag.mmh",
      "two DLTA records against delta-base.bin: the 256 fine-tuned weights as zigzag-coded subtraction of 2-byte (mode 3) and of 4-byte (mode 4) elements, each difference one ZSTD frame",
      zz,
      content,
    );
  }
  {
    // Low-rank predictions (modes 5 to 7) against the same base bytes, read as F32, BF16 and
    // F16: factors by formula, and the content the prediction plus small differences of
    // either sign. Read as BF16 and F16, the base holds NaNs and infinities too, which are
    // predicted as themselves.
    const lowRank = (
      mode: number,
      blocks: LowRankBlock[],
      factorValues: number[],
      bf16: boolean,
    ): RawRecord => {
      const factors = Buffer.alloc(factorValues.length * (bf16 ? 2 : 4));
      factorValues.forEach((x, i) => {
        if (bf16) factors.writeUInt16LE(Buffer.from(new Float32Array([x]).buffer).readUInt16LE(2), i * 2);
        else factors.writeFloatLE(x, i * 4);
      });
      const p = predict(base, blocks, factors, mode, "vector");
      const width = mode === 5 ? 4 : 2;
      const content = Buffer.from(p);
      for (let i = 0; i < content.length / width; i++) {
        const d = ((i * 7) % 5) - 2;
        if (width === 4) content.writeUInt32LE((content.readUInt32LE(i * 4) + d) >>> 0, i * 4);
        else content.writeUInt16LE((content.readUInt16LE(i * 2) + d) & 0xffff, i * 2);
      }
      const diff = makeDelta(content, p, width === 4 ? 4 : 3);
      return {
        raw: content,
        codec: "DLTA",
        params: encodeDeltaParams(
          { mode, baseSha256: sha256(base), baseOffset: 0, inner: "ZSTD", innerParams: new Uint8Array(0) },
          encodeBlocks(blocks),
        ),
        payload: Buffer.concat([factors, encodeChunk(diff, codecByName("zstd"), 19).payload]),
      };
    };
    const wave = (n: number, scale: number, phase: number) =>
      Array.from({ length: n }, (_, i) => Math.sin(i * 0.7 + phase) * scale);
    const records = [
      lowRank(
        5,
        [{ rows: 16, cols: 16, rank: 2, factor: 0 }],
        [...wave(32, 0.5, 0), ...wave(32, 0.003, 1)],
        false,
      ),
      lowRank(
        6,
        [
          { rows: 1, cols: 32, rank: 0, factor: 0 },
          { rows: 16, cols: 30, rank: 3, factor: 1 },
        ],
        [...wave(48, 0.25, 2), ...wave(90, 0.01, 3)],
        true,
      ),
      lowRank(
        7,
        [{ rows: 32, cols: 16, rank: 1, factor: 0 }],
        [...wave(32, 1, 4), ...wave(16, 0.05, 5)],
        false,
      ),
    ];
    await mustDecodeWithBase(
      "delta-lowrank.mmh",
      "three DLTA records against delta-base.bin, each a difference from a low-rank prediction: mode 5 (the base as 16 x 16 F32, rank 2, F32 factors), mode 6 (the base as 512 BF16: a rank-0 block of 32, then 16 x 30 of rank 3 with BF16 factors) and mode 7 (the base as 32 x 16 F16, rank 1, F32 factors); each difference one ZSTD frame",
      assembleRecords(records),
      Buffer.concat(records.map((r) => r.raw)),
    );
  }
  {
    // Differences grouped by the base's exponent (modes 8 to 10), the base read as F32, BF16
    // and F16; groups by formula, one stored, one empty, the others one ZSTD frame each.
    const grouped = (mode: number, map: Uint8Array, count: number, stored: number): RawRecord => {
      const width = mode === 8 ? 4 : 2;
      const content = Buffer.from(base);
      for (let i = 0; i < content.length / width; i++) {
        const d = ((i * 5) % 7) - 3;
        if (width === 4) content.writeUInt32LE((content.readUInt32LE(i * 4) + d) >>> 0, i * 4);
        else content.writeUInt16LE((content.readUInt16LE(i * 2) + d) & 0xffff, i * 2);
      }
      const diff = makeDelta(content, base, width === 4 ? 4 : 3);
      const parts = splitGroups(diff, base, mode, map, count);
      const payloads = parts.map((part, g) =>
        part.length === 0
          ? Buffer.alloc(0)
          : g === stored
            ? part
            : encodeChunk(part, codecByName("zstd"), 19).payload,
      );
      const groups = parts.map((part, g) => ({
        codec: part.length === 0 || g === stored ? "NONE" : "ZSTD",
        params: new Uint8Array(0),
        length: payloads[g].length,
      }));
      return {
        raw: content,
        codec: "DLTA",
        params: encodeDeltaParams(
          { mode, baseSha256: sha256(base), baseOffset: 0, inner: "NONE", innerParams: new Uint8Array(0) },
          encodeGroups(mode, map, groups),
        ),
        payload: Buffer.concat(payloads),
      };
    };
    // F32: exponent field 121 and up, 120, the rest, and 255 (no weight of the base) alone.
    const f32Map = Uint8Array.from({ length: 256 }, (_, e) =>
      e === 255 ? 3 : e >= 121 ? 2 : e === 120 ? 1 : 0,
    );
    const bf16Map = Uint8Array.from({ length: 256 }, (_, e) => e % 3);
    const f16Map = Uint8Array.from({ length: 32 }, (_, e) => (e < 16 ? 0 : 1));
    const records = [grouped(8, f32Map, 4, 0), grouped(9, bf16Map, 3, 1), grouped(10, f16Map, 2, 5)];
    await mustDecodeWithBase(
      "delta-grouped.mmh",
      "three DLTA records against delta-base.bin, each zigzag differences grouped by the base's exponent field: mode 8 (the base as 256 F32; four groups: fields below 120 stored, 120 and 121 up one ZSTD frame each, 255 empty), mode 9 (the base as 512 BF16; the field modulo 3, group 1 stored) and mode 10 (the base as 512 F16; fields below 16 and the rest, one ZSTD frame each)",
      assembleRecords(records),
      Buffer.concat(records.map((r) => r.raw)),
    );
  }
  const badMode = deltaRecord(0);
  (badMode.params as Buffer)[0] = 5;
  await mustFailNew(
    "fail-delta-mode-5.mmh",
    "a DLTA record with mode 5 (only 0 to 4 exist)",
    assembleRecords([badMode]),
    "E_CORRUPT",
  );
}

// ---- a zstd-compressed footer (FORMAT.md §4, index flag bit 0) ---------------------------------

{
  const a = lines(12, 2000);
  const tensors = Array.from({ length: 24 }, (_, i) => ({
    name: `model.layers.${i >> 2}.mlp.proj_${i & 3}.weight`,
    dtype: "F32",
    shape: [1, 4],
    offset: i * 16,
    length: 16,
  }));
  const footer = { format: "raw", tensors };
  const record: RawRecord = {
    raw: a,
    codec: "ZSTD",
    payload: encodeChunk(a, codecByName("zstd"), 19).payload,
  };
  const good = assembleRecords([record], footer);
  const at = layoutOf(good).indexOffset;
  if (good.readUInt32LE(at + 4) !== 1)
    throw new Error("footer-zstd.mmh: the footer was not stored compressed");
  await mustDecode(
    "footer-zstd.mmh",
    `one ZSTD chunk of text and a footer of ${JSON.stringify(footer).length} bytes of JSON (a tensor table of 24 tensors) stored zstd-compressed: index flags 1, the footer metadata a u32 length and one zstd frame`,
    good,
    a,
  );
  Object.assign(vectors[vectors.length - 1], { madeBy: `mmh ${VERSION}` });
  const footerAt = at + INDEX_FIXED_SIZE + INDEX_ENTRY_SIZE;
  const edited = (edit: (file: Buffer) => void) => {
    const file = copy(good);
    edit(file);
    fixIndexCrc(file, layoutOf(file));
    return file;
  };
  await mustFailNew(
    "fail-index-flag-2.mmh",
    "as footer-zstd.mmh, with index flags 3: bit 1 is reserved (index CRC recomputed)",
    edited((file) => file.writeUInt32LE(3, at + 4)),
    "E_UNSUPPORTED",
  );
  await mustFailNew(
    "fail-footer-zstd-length.mmh",
    "as footer-zstd.mmh, but the compressed footer declares one byte more than its frame decodes to (index CRC recomputed)",
    edited((file) => file.writeUInt32LE(file.readUInt32LE(footerAt) + 1, footerAt)),
    "E_CORRUPT",
  );
  await mustFailNew(
    "fail-footer-zstd-not-a-frame.mmh",
    "as footer-zstd.mmh, but the zstd frame's magic number is damaged (index CRC recomputed)",
    edited((file) => {
      file[footerAt + 4] ^= 0xff;
    }),
    "E_CORRUPT",
  );
}

// ---- LONG records (FORMAT.md §6.5) -----------------------------------------------------------

{
  const a = lines(14, 2000);
  // B and C repeat most of A's lines, with a few new ones: LZ finds them in the dictionary.
  const b = Buffer.concat([lines(5, 2002), lines(3, 2100), lines(6, 2007)]);
  const c = Buffer.concat([lines(4, 2100), lines(9, 2003)]);
  const zstdOf = (raw: Buffer): RawRecord => ({
    raw,
    codec: "ZSTD",
    payload: encodeChunk(raw, codecByName("zstd"), 19).payload,
  });
  const longOf = (raw: Buffer, dictionary: Buffer, width: number, first: number): RawRecord => {
    const record = encodeLong(raw, dictionary, width, first, 19);
    if (!record) throw new Error("a LONG record is not smaller than its content");
    return {
      raw,
      codec: "LONG",
      params: record.header.subarray(CHUNK_HEADER_SIZE),
      payload: record.payload,
    };
  };
  await mustDecode(
    "long-dictionary.mmh",
    `three chunks: ZSTD text A (${a.length} bytes); text B as a LONG record of one plane (W = 1) with chunk 0 as its dictionary (first chunk 0); text C as a LONG record of two planes (W = 2) with chunks 0 and 1 as its dictionary, so its reach holds a LONG record; the content is A B C`,
    assembleRecords([zstdOf(a), longOf(b, a, 1, 0), longOf(c, Buffer.concat([a, b]), 2, 0)]),
    Buffer.concat([a, b, c]),
  );
  Object.assign(vectors[vectors.length - 1], { madeBy: `mmh ${VERSION}` });
  const withFirst = (r: RawRecord, first: number, width?: number): RawRecord => {
    const params = Buffer.from(r.params!);
    params.writeBigUInt64LE(BigInt(first), 0);
    if (width !== undefined) params[8] = width;
    return { ...r, params };
  };
  await mustFailNew(
    "fail-long-self.mmh",
    "as the first two chunks of long-dictionary.mmh, but chunk 1's dictionary starts at chunk 1, itself",
    assembleRecords([zstdOf(a), withFirst(longOf(b, a, 1, 0), 1)]),
    "E_CORRUPT",
  );
  await mustFailNew(
    "fail-long-forward.mmh",
    "chunk 1 is a LONG record whose dictionary starts at chunk 2, a later one",
    assembleRecords([zstdOf(a), withFirst(longOf(b, a, 1, 0), 2), zstdOf(c)]),
    "E_CORRUPT",
  );
  await mustFailNew(
    "fail-long-width-3.mmh",
    "chunk 1 is a LONG record with plane width 3 (only 1, 2 and 4 exist)",
    assembleRecords([zstdOf(a), withFirst(longOf(b, a, 1, 0), 0, 3)]),
    "E_CORRUPT",
  );
  // 5 MiB of one byte as a P251 record of a few bytes, then a LONG record that reaches back over it.
  const zeros = Buffer.alloc(5 << 20);
  await mustFailNew(
    "fail-long-reach.mmh",
    "chunk 0 is 5 MiB of zero bytes (P251); chunk 1 a LONG record whose dictionary starts at chunk 0, 5 MiB back, over the 4 MiB reach",
    assembleRecords([p251Record(zeros), longOf(b, a, 1, 0)]),
    "E_CORRUPT",
  );
  await mustFailNew(
    "fail-long-dupe-in-reach.mmh",
    "chunks: ZSTD text A, a DUPE record of chunk 0, then a LONG record whose dictionary starts at chunk 1, the DUPE record",
    assembleRecords([
      zstdOf(a),
      { raw: a, codec: "DUPE", params: encodeDupeParams(0), payload: new Uint8Array(0) },
      longOf(b, a, 1, 1),
    ]),
    "E_CORRUPT",
  );
}

// ---- CINT records (FORMAT.md §6.6) --------------------------------------------------------------

{
  const next = gaussian(rng(6606));
  // x and y of points at two scales: the exponents' stream alternates, and its delta to the
  // byte two before (filter 1) codes smaller.
  const values = Array.from({ length: 360 }, (_, i) =>
    i % 97 === 5 ? 0 : Math.fround(next() * 2 ** (i % 2 === 0 ? -12 : -4)),
  );
  // Values whose low mantissa bytes are zero are written shorter (1 or 2 bytes).
  values[40] = 0.375;
  values[41] = -1.5 + 2 ** -15;
  // A head that is no integer's, the integers, then a last integer cut short (the tail).
  const raw = Buffer.concat([
    Buffer.from([0x7f, 0x7f, 0x55]),
    compactFloats(values),
    Buffer.from([0x03, 0x12]),
  ]);
  const payload = encodeChunk(raw, codecByName("cint"), 19).payload;
  const cintOf = (bytes: Uint8Array): RawRecord => ({ raw, codec: "CINT", payload: bytes });
  // Level 3 codes no stream with brotli: its parts are HIER, ZSTD and NONE.
  const payload3 = encodeChunk(raw, codecByName("cint"), 3).payload;
  await mustDecode(
    "cint-floats.mmh",
    `one CINT record: ${raw.length} bytes of 360 floats written as dlib writes them (a mantissa and an exponent, each a compact integer; some mantissas 1 or 2 bytes long), at two scales in turn, after 3 head bytes and before a 2-byte tail; twice, as CINT writes it at level 19 (parts BROT and NONE) and at level 3 (HIER, ZSTD and NONE), each with parts of both filters`,
    assembleRecords([cintOf(payload), cintOf(payload3)]),
    Buffer.concat([raw, raw]),
  );
  Object.assign(vectors[vectors.length - 1], { madeBy: `mmh ${VERSION}` });
  const edited = (edit: (bytes: Buffer) => void) => {
    const bytes = Buffer.from(payload);
    edit(bytes);
    return assembleRecords([cintOf(bytes)]);
  };
  await mustFailNew(
    "fail-cint-version.mmh",
    "as cint-floats.mmh, with the CINT version byte 1",
    edited((bytes) => {
      bytes[0] = 1;
    }),
    "E_CORRUPT",
  );
  await mustFailNew(
    "fail-cint-count.mmh",
    "as cint-floats.mmh, with an integer count larger than the chunk",
    edited((bytes) => {
      bytes.writeUInt32LE(raw.length, 2);
    }),
    "E_CORRUPT",
  );
  await mustFailNew(
    "fail-cint-filter.mmh",
    "as cint-floats.mmh, with the first stream part's filter 2 (only 0 and 1 exist)",
    edited((bytes) => {
      bytes[6 + bytes[1] + 4] = 2;
    }),
    "E_CORRUPT",
  );
  await mustFailNew(
    "fail-cint-part-codec.mmh",
    "as cint-floats.mmh, with the first stream part's codec CINT (only NONE, ZSTD, HIER and BROT may code a part)",
    edited((bytes) => {
      bytes.write("CINT", 6 + bytes[1], "latin1");
    }),
    "E_CORRUPT",
  );
}

// ---- CIN2 records and ABIN stream parts (FORMAT.md §6.6, §6.7) ----------------------------------

{
  const next = gaussian(rng(6607));
  const values = Array.from({ length: 360 }, (_, i) =>
    i % 97 === 5 ? 0 : Math.fround(next() * 2 ** (i % 2 === 0 ? -12 : -4)),
  );
  values[40] = 0.375;
  values[41] = -1.5 + 2 ** -15;
  const raw = Buffer.concat([
    Buffer.from([0x7f, 0x7f, 0x55]),
    compactFloats(values),
    Buffer.from([0x03, 0x12]),
  ]);
  const payload = encodeChunk(raw, codecByName("cint2"), 19).payload;
  const abinOf = (bytes: Uint8Array) =>
    cintParts(bytes)
      .filter((part) => part.id === "ABIN")
      .map((part) => `lags ${bytes[part.offset + 1]}`);
  // As CIN2 writes it: ABIN on the control bytes (no context) and the exponents (one).
  if (abinOf(payload).join() !== "lags 0,lags 0,lags 1") throw new Error(`CIN2 parts: ${abinOf(payload)}`);
  // The same chunk with parts chosen here: the mantissas' control bytes after the delta
  // filter, with the two bytes before as the context (quantised to 4 ranks), and the
  // exponents after the delta with the byte two before (rate 7).
  const streams = cintSplit(raw);
  const delta2 = (s: Uint8Array) => s.map((b, i) => (i < 2 ? b : (b - s[i - 2]) & 0xff));
  const chosen = (s: Uint8Array, k: number): Part => {
    const natural = cintParts(payload)[k];
    const bytes = payload.subarray(natural.offset, natural.offset + natural.size);
    if (k === 0) {
      const coded = encodeAbin(delta2(s), { rate: 4, lags: [1, 2], quant: 4 });
      if (coded) return { filter: 1, id: "ABIN", payload: coded };
    }
    if (k === 10) {
      const coded = encodeAbin(delta2(s), { rate: 7, lags: [2], quant: 256 });
      if (coded) return { filter: 1, id: "ABIN", payload: coded };
    }
    return { filter: natural.filter, id: natural.id, payload: bytes };
  };
  const forced = assembleCint(raw, streams, streams.streams.map(chosen));
  // One float 200 times: each stream one value, ABIN with an alphabet of one value (no bits coded).
  const one = compactFloats(Array.from({ length: 200 }, () => 0.1));
  const oneSplit = cintSplit(one);
  const single = assembleCint(
    one,
    oneSplit,
    oneSplit.streams.map((s) =>
      s.length === 0
        ? { filter: 0, id: "NONE", payload: s }
        : { filter: 0, id: "ABIN", payload: encodeAbin(s, { rate: 1, lags: [], quant: 1 })! },
    ),
  );
  const cin2Of = (r: Uint8Array, bytes: Uint8Array): RawRecord => ({ raw: r, codec: "CIN2", payload: bytes });
  await mustDecode(
    "cin2-floats.mmh",
    `three CIN2 records: the ${raw.length} bytes of cint-floats.mmh's kind (other values) as CIN2 writes them at level 19 (ABIN parts without a context and with the byte before); the same with the mantissas' control bytes as ABIN after the delta filter with the two bytes before as the context (4 ranks, rate 4) and the exponents as ABIN after the delta with the byte two before (rate 7); and one float 200 times, each stream coded by ABIN with an alphabet of one value (no bits)`,
    assembleRecords([cin2Of(raw, payload), cin2Of(raw, forced), cin2Of(one, single)]),
    Buffer.concat([raw, raw, one]),
  );
  Object.assign(vectors[vectors.length - 1], { madeBy: `mmh ${VERSION}` });
  /** `forced` with the ABIN part of stream 0 edited (its payload at `at`). */
  const edited = (edit: (bytes: Buffer, at: number, size: number) => void) => {
    const bytes = Buffer.from(forced);
    const part = cintParts(bytes)[0];
    edit(bytes, part.offset, part.size);
    return assembleRecords([cin2Of(raw, bytes)]);
  };
  await mustFailNew(
    "fail-cin2-abin-rate.mmh",
    "as the second record of cin2-floats.mmh, with its first ABIN part's rate 0 (1 to 15)",
    edited((bytes, at) => {
      bytes[at] = 0;
    }),
    "E_CORRUPT",
  );
  await mustFailNew(
    "fail-cin2-abin-lags.mmh",
    "as the second record of cin2-floats.mmh, with its first ABIN part's lags 2, 1 (they must increase)",
    edited((bytes, at) => {
      bytes[at + 2] = 2;
      bytes[at + 3] = 1;
    }),
    "E_CORRUPT",
  );
  await mustFailNew(
    "fail-cin2-abin-quantiser.mmh",
    "as the second record of cin2-floats.mmh, with its first ABIN part's quantiser over its alphabet's size",
    edited((bytes, at) => {
      bytes[at + 4] = bytes[at + 5] + 1;
    }),
    "E_CORRUPT",
  );
  await mustFailNew(
    "fail-cin2-abin-alphabet.mmh",
    "as the second record of cin2-floats.mmh, with its first ABIN part's alphabet listing a value twice",
    edited((bytes, at) => {
      bytes[at + 7] = bytes[at + 6];
    }),
    "E_CORRUPT",
  );
  await mustFailNew(
    "fail-cin2-abin-end.mmh",
    "as the second record of cin2-floats.mmh, with the last byte of its first ABIN part changed (the coder's final bytes no longer match)",
    edited((bytes, at, size) => {
      bytes[at + size - 1] ^= 0x40;
    }),
    "E_CORRUPT",
  );
  await mustFailNew(
    "fail-cint-abin-part.mmh",
    "the second record of cin2-floats.mmh as a CINT record: CINT's parts may not be ABIN",
    assembleRecords([{ raw, codec: "CINT", payload: forced }]),
    "E_CORRUPT",
  );
}

// ---- write -----------------------------------------------------------------------------------

for (const [file, bytes] of files) {
  if (bytes.length >= MAX_FILE) throw new Error(`${file} is ${bytes.length} bytes, over ${MAX_FILE}`);
}

const README =
  "FROZEN golden vectors of the .mmh container, version 1 (docs/FORMAT.md). Never edit or regenerate them: every later MMH version must decode each 'decode' file to content with the listed length and sha256, and refuse each 'fail' file with exactly the listed error code. Made once by scripts/make-vectors.ts; checked by test/vectors.test.ts.";
const manifestPath = join(DIR, "manifest.json");
const committed = existsSync(manifestPath)
  ? (JSON.parse(readFileSync(manifestPath, "utf8")) as {
      madeBy: string;
      vectors: ((DecodeVector | FailVector) & { madeBy?: string })[];
    })
  : undefined;
const current = `mmh ${VERSION}`;
const committedByFile = new Map((committed?.vectors ?? []).map((v) => [v.file, v]));

/**
 * Vectors made by an older MMH cannot be made again byte for byte (the header records the
 * writer's version): their committed files and manifest entries are kept as they are, and
 * only checked to still meet their entries.
 */
const older = new Set<string>();
for (const [i, vector] of vectors.entries()) {
  const entry = committedByFile.get(vector.file);
  if (!entry || (entry.madeBy ?? committed?.madeBy) === current) continue;
  older.add(vector.file);
  vectors[i] = entry;
  const bytes = readFileSync(join(DIR, entry.file));
  if (sha256(bytes) !== entry.fileSha256)
    throw new Error(`${entry.file} was modified: the vectors are frozen`);
  files.set(entry.file, bytes);
  if (entry.expect === "decode") {
    const content = await decompress(bytes, { checkSha256: true });
    if (content.length !== entry.length || sha256(content) !== entry.sha256)
      throw new Error(`${entry.file} no longer decodes to its content`);
  } else if (!("api" in entry)) {
    const code = await decompress(bytes, { checkSha256: true }).then(
      () => "no error",
      (error: unknown) => (error instanceof MmhError ? error.code : String(error)),
    );
    if (code !== entry.code) throw new Error(`${entry.file} gives ${code}, not ${entry.code}`);
  }
}
for (const file of committedByFile.keys()) {
  if (!vectors.some((v) => v.file === file)) throw new Error(`${file} is committed but no longer made`);
}

const manifest = {
  README,
  formatVersion: 1,
  madeBy: committed?.madeBy ?? current,
  vectors,
};
const manifestText = `${JSON.stringify(manifest, null, 2)}\n`;

mkdirSync(DIR, { recursive: true });
const changed: string[] = [];
const added: string[] = [];
const outputs = new Map<string, Buffer>([...files].filter(([file]) => !older.has(file)));
for (const [file, bytes] of outputs) {
  const path = join(DIR, file);
  const exists = existsSync(path);
  if (exists && readFileSync(path).equals(bytes)) continue;
  if (exists && !force) changed.push(file);
  else added.push(file);
}
// The manifest may gain entries; no committed entry may change.
const manifestChanged = !existsSync(manifestPath) || readFileSync(manifestPath, "utf8") !== manifestText;
if (manifestChanged && committed && !force) {
  for (const entry of committed.vectors) {
    const now = vectors.find((v) => v.file === entry.file);
    if (JSON.stringify(now) !== JSON.stringify(entry)) changed.push(`manifest.json (${entry.file})`);
  }
}
if (changed.length > 0) {
  process.stderr.write(
    `make-vectors: these frozen files would change: ${changed.join(", ")}\n` +
      "The committed vectors are the reference; do not regenerate them (use --force only for a new format version).\n",
  );
  process.exitCode = 1;
} else if (checkOnly) {
  if (added.length > 0 || manifestChanged) {
    process.stderr.write(
      `make-vectors --check: missing: ${[...added, ...(manifestChanged ? ["manifest.json"] : [])].join(", ")}\n`,
    );
    process.exitCode = 1;
  } else process.stdout.write(`make-vectors --check: all ${files.size} vectors and the manifest match\n`);
} else {
  for (const file of added) writeFileSync(join(DIR, file), outputs.get(file)!);
  if (manifestChanged) writeFileSync(manifestPath, manifestText);
  const total = [...files.values()].reduce((sum, bytes) => sum + bytes.length, 0);
  process.stdout.write(
    `make-vectors: ${files.size} vectors (${total} bytes) in ${DIR}; ${added.length} written${manifestChanged ? ", manifest updated" : ""}\n`,
  );
}
