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
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { codecByName } from "../src/codecs/registry.ts";
import { MmhError } from "../src/common/errors.ts";
import {
  encodeHeader,
  encodeIndex,
  encodeTrailer,
  INDEX_ENTRY_SIZE,
  INDEX_FIXED_SIZE,
  type IndexEntry,
} from "../src/container/format.ts";
import { encodeChunk } from "../src/engine/chunk.ts";
import { compress, decompress } from "../src/index.ts";
import { VERSION } from "../src/version.ts";
import { fixHeaderCrc, fixIndexCrc, fixRecordCrc, fixTrailerCrc, layoutOf } from "../test/support.ts";

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
  const parts: Uint8Array[] = [header];
  let offset = header.length;
  let rawOffset = 0;
  const entries: IndexEntry[] = [];
  const hash = createHash("sha256");
  for (const { raw, codec } of pieces) {
    const chunk = encodeChunk(raw, codecByName(codec), undefined);
    if (chunk.codec !== codecByName(codec).id) throw new Error(`${codec} chunk was stored as ${chunk.codec}`);
    entries.push({
      recordOffset: offset,
      rawOffset,
      rawLength: raw.length,
      codec: chunk.codec,
      rawCrc: chunk.rawCrc,
    });
    parts.push(chunk.header, chunk.payload);
    offset += chunk.header.length + chunk.payload.length;
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
    await decompress(bytes);
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

// ---- write -----------------------------------------------------------------------------------

for (const [file, bytes] of files) {
  if (bytes.length >= MAX_FILE) throw new Error(`${file} is ${bytes.length} bytes, over ${MAX_FILE}`);
}

const manifest = {
  README:
    "FROZEN golden vectors of the .mmh container, version 1 (docs/FORMAT.md). Never edit or regenerate them: every later MMH version must decode each 'decode' file to content with the listed length and sha256, and refuse each 'fail' file with exactly the listed error code. Made once by scripts/make-vectors.ts; checked by test/vectors.test.ts.",
  formatVersion: 1,
  madeBy: `mmh ${VERSION}`,
  vectors,
};
const manifestText = `${JSON.stringify(manifest, null, 2)}\n`;
const outputs = new Map<string, Buffer>([...files, ["manifest.json", Buffer.from(manifestText)]]);

mkdirSync(DIR, { recursive: true });
const changed: string[] = [];
let written = 0;
for (const [file, bytes] of outputs) {
  const path = join(DIR, file);
  const exists = existsSync(path);
  if (exists && readFileSync(path).equals(bytes)) continue;
  if (exists && !force) {
    changed.push(file);
    continue;
  }
  if (!checkOnly) {
    writeFileSync(path, bytes);
    written++;
  } else {
    changed.push(file);
  }
}
if (changed.length > 0) {
  process.stderr.write(
    `make-vectors: these frozen files would change: ${changed.join(", ")}\n` +
      "The committed vectors are the reference; do not regenerate them (use --force only for a new format version).\n",
  );
  process.exitCode = 1;
} else {
  process.stdout.write(`make-vectors: ${outputs.size} files in ${DIR} (${written} written)\n`);
}
