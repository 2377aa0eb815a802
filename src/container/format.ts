/**
 * The .mmh container, version 1. docs/FORMAT.md is the specification; this file is its
 * one implementation of the byte layout. Every length read here is checked before use.
 */
import { constants, crc32, zstdCompress, zstdCompressSync, zstdDecompressSync } from "node:zlib";
import { readU64, writeU64 } from "../common/bytes.ts";
import { check, MmhError } from "../common/errors.ts";
import { FORMAT_VERSION } from "../version.ts";

export { FORMAT_VERSION };
export const START_MAGIC = Buffer.from([0x89, 0x4d, 0x4d, 0x48, 0x0d, 0x0a, 0x1a, 0x0a]); // \x89MMH\r\n\x1a\n
export const END_MAGIC = Buffer.from([0x89, 0x4d, 0x4d, 0x48, 0x45, 0x4e, 0x44, 0x0a]); // \x89MMHEND\n
export const CHUNK_TAG = "CHNK";
export const INDEX_TAG = "INDX";

export const HEADER_FIXED_SIZE = 20;
export const CHUNK_HEADER_SIZE = 36;
export const INDEX_FIXED_SIZE = 24;
export const INDEX_ENTRY_SIZE = 32;
export const TRAILER_SIZE = 80;

/** Format limits: a reader refuses anything larger before allocating for it. */
export const MAX_HEADER_METADATA = 1 << 20;
export const MAX_FOOTER_METADATA = 64 << 20;
export const MAX_CHUNK_SIZE = 64 << 20;
/**
 * The one codec whose records may stand for more than MAX_CHUNK_SIZE bytes: a P251 run
 * (a pattern of at most 64 KiB repeated, no tail), decoded in pieces (FORMAT.md §6.1).
 */
export const RUN_CODEC = "P251";

/** The largest raw length a record of this codec may declare. */
export function maxRawLength(codec: string): number {
  return codec === RUN_CODEC ? Number.MAX_SAFE_INTEGER : MAX_CHUNK_SIZE;
}
export const MAX_PARAMS = 0xffff;

/** Index flag bit 0: the footer metadata is stored zstd-compressed (FORMAT.md §4). */
export const INDEX_FLAG_FOOTER_ZSTD = 1;
/** Footer JSON shorter than this is stored as it is (compressing it would not pay). */
const FOOTER_ZSTD_MIN = 128;

export interface Metadata {
  [key: string]: unknown;
}

export interface Header {
  version: number;
  flags: number;
  metadata: Metadata;
  /** Bytes the header occupies, metadata included: the offset of the first record. */
  size: number;
}

export interface ChunkHeader {
  codec: string;
  rawLength: number;
  storedLength: number;
  rawCrc: number;
  flags: number;
  paramsLength: number;
}

export interface IndexEntry {
  /** File offset of the chunk record's tag. */
  recordOffset: number;
  /** Offset of the chunk's first byte in the decoded content. */
  rawOffset: number;
  rawLength: number;
  codec: string;
  rawCrc: number;
}

export interface Index {
  entries: IndexEntry[];
  footer: Metadata;
}

export interface Trailer {
  indexOffset: number;
  indexLength: number;
  rawLength: number;
  chunkCount: number;
  /** sha256 of the decoded content, lowercase hex. */
  sha256: string;
  flags: number;
}

function encodeJson(value: Metadata, max: number, what: string): Buffer {
  const bytes = Buffer.from(JSON.stringify(value), "utf8");
  if (bytes.length > max)
    throw new MmhError("E_LIMIT", `${what} is ${bytes.length} bytes, over the ${max}-byte limit`);
  return bytes;
}

/**
 * For each object or array JSON.parse made, the keys whose value is a number written with
 * a fraction or an exponent (`420.0`, `4.2e2`): FORMAT.md §1 wants integers written as
 * integers, which JSON.parse alone cannot tell.
 */
const notIntegerLiterals = new WeakMap<object, Set<string>>();

/** JSON.parse's reviver, given the token's source text (Node 21+). */
function noteNumberSpelling(
  this: object,
  key: string,
  value: unknown,
  context?: { source?: string },
): unknown {
  if (typeof value === "number" && context?.source !== undefined && /[.eE]/.test(context.source)) {
    const keys = notIntegerLiterals.get(this) ?? new Set<string>();
    notIntegerLiterals.set(this, keys);
    keys.add(key);
  }
  return value;
}

/** The footer's keys whose values (or, for `shape`, elements) are integers. */
const INTEGER_KEYS = new Set(["offset", "length", "size", "mode", "tensorsOmitted"]);

/**
 * Where a number with a fraction or an exponent may start: after `:`, `,` or `[` (the
 * only places a JSON number can follow), digits, then `.`, `e` or `E`. Also matches such
 * text inside strings; those are weeded out below, or only cost the slow parse.
 */
const NOT_INTEGER_NUMBER = /[:,[]\s*-?[0-9]+[.eE]/g;
const ARRAY_NUMBERS = /[-+0-9.eE,\s]/;
const SPACE = /\s/;

/** The key string that ends before the `:` at `colon`, or undefined if it is not plain. */
function keyBefore(text: string, colon: number): string | undefined {
  let end = colon - 1;
  while (end > 0 && SPACE.test(text[end])) end--;
  if (text[end] !== '"') return undefined;
  const start = text.lastIndexOf('"', end - 1);
  if (start < 0) return undefined;
  const key = text.slice(start + 1, end);
  return key.includes("\\") ? undefined : key;
}

/**
 * Whether `text` may spell an integer field with a fraction or an exponent, found by one
 * regular-expression scan. Parsing with a reviver, which sees how each number was spelled,
 * took 3.2-4.2 s against 0.24-0.31 s for JSON.parse alone on a 26 MB tensor table, so it
 * runs only when this is true. Conservative: a match it cannot place counts as a yes.
 */
function mayMisspellIntegers(text: string): boolean {
  NOT_INTEGER_NUMBER.lastIndex = 0;
  for (let m = NOT_INTEGER_NUMBER.exec(text); m !== null; m = NOT_INTEGER_NUMBER.exec(text)) {
    let at = m.index;
    if (text[at] !== ":") {
      // An array element: walk back over the numbers before it to the array's `[`.
      if (text[at] !== "[") {
        while (at > 0 && ARRAY_NUMBERS.test(text[at - 1])) at--;
        at--;
        if (text[at] !== "[") return true;
      }
      at--;
      while (at > 0 && SPACE.test(text[at])) at--;
      if (text[at] !== ":" || keyBefore(text, at) === "shape") return true;
      continue;
    }
    const key = keyBefore(text, at);
    if (key === undefined || INTEGER_KEYS.has(key)) return true;
  }
  return false;
}

function decodeJson(bytes: Buffer, what: string, integers = false): Metadata {
  let value: unknown;
  try {
    // ignoreBOM keeps a byte-order mark in the text, so JSON.parse refuses it (no BOM allowed).
    const text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
    value = integers && mayMisspellIntegers(text) ? JSON.parse(text, noteNumberSpelling) : JSON.parse(text);
  } catch (error) {
    throw new MmhError("E_CORRUPT", `${what} is not valid UTF-8 JSON`, { cause: error });
  }
  check(
    value !== null && typeof value === "object" && !Array.isArray(value),
    "E_CORRUPT",
    `${what} is not a JSON object`,
  );
  return value as Metadata;
}

/** E_CORRUPT when holder[key] is a number not written as an integer literal. */
function checkIntegerSpelling(holder: unknown, key: string | number, where: string): void {
  if (holder === null || typeof holder !== "object") return;
  const value = (holder as Record<string, unknown>)[key];
  check(
    typeof value !== "number" || !notIntegerLiterals.get(holder)?.has(String(key)),
    "E_CORRUPT",
    `footer metadata: ${where} is ${value} written with a fraction or an exponent (integers are written as integers)`,
  );
}

/**
 * The footer's integer fields (FORMAT.md §4 and §10.1: the tensor table, `tensorsOmitted`,
 * the folder entries' `size`, `offset` and `mode`) must be written as JSON integers.
 */
function checkFooterIntegers(footer: Metadata): void {
  checkIntegerSpelling(footer, "tensorsOmitted", "tensorsOmitted");
  const { tensors, entries } = footer;
  if (Array.isArray(tensors)) {
    for (const [i, tensor] of tensors.entries()) {
      for (const key of ["offset", "length"]) checkIntegerSpelling(tensor, key, `tensors[${i}].${key}`);
      const shape = (tensor as { shape?: unknown } | null)?.shape;
      if (Array.isArray(shape)) {
        for (let d = 0; d < shape.length; d++) checkIntegerSpelling(shape, d, `tensors[${i}].shape[${d}]`);
      }
    }
  }
  if (Array.isArray(entries)) {
    for (const [i, entry] of entries.entries()) {
      for (const key of ["size", "offset", "mode"]) checkIntegerSpelling(entry, key, `entries[${i}].${key}`);
    }
  }
}

// ---- header ---------------------------------------------------------------------------

export function encodeHeader(metadata: Metadata): Buffer {
  const meta = encodeJson(metadata, MAX_HEADER_METADATA, "header metadata");
  const out = Buffer.alloc(HEADER_FIXED_SIZE + meta.length);
  START_MAGIC.copy(out, 0);
  out.writeUInt16LE(FORMAT_VERSION, 8);
  out.writeUInt16LE(0, 10);
  out.writeUInt32LE(meta.length, 12);
  meta.copy(out, HEADER_FIXED_SIZE);
  out.writeUInt32LE(crc32(meta, crc32(out.subarray(0, 16))), 16);
  return out;
}

/** Check the fixed part; returns the metadata length still to read. */
export function parseHeaderFixed(fixed: Buffer): { version: number; flags: number; metadataLength: number } {
  check(fixed.length >= HEADER_FIXED_SIZE, "E_TRUNCATED", "file is shorter than an .mmh header");
  check(fixed.subarray(0, 8).equals(START_MAGIC), "E_CORRUPT", "not an .mmh file (bad magic)");
  const version = fixed.readUInt16LE(8);
  check(
    version === FORMAT_VERSION,
    "E_UNSUPPORTED",
    `container version ${version} is not supported (this build reads ${FORMAT_VERSION})`,
  );
  const flags = fixed.readUInt16LE(10);
  check(flags === 0, "E_UNSUPPORTED", `header flags 0x${flags.toString(16)} use reserved bits`);
  const metadataLength = fixed.readUInt32LE(12);
  check(
    metadataLength <= MAX_HEADER_METADATA,
    "E_CORRUPT",
    `header metadata length ${metadataLength} is over the ${MAX_HEADER_METADATA}-byte limit`,
  );
  return { version, flags, metadataLength };
}

export function parseHeader(fixed: Buffer, metaBytes: Buffer): Header {
  const { version, flags, metadataLength } = parseHeaderFixed(fixed);
  check(metaBytes.length === metadataLength, "E_TRUNCATED", "header metadata is truncated");
  const stored = fixed.readUInt32LE(16);
  check(crc32(metaBytes, crc32(fixed.subarray(0, 16))) === stored, "E_CHECKSUM", "header checksum mismatch");
  return {
    version,
    flags,
    metadata: decodeJson(metaBytes, "header metadata"),
    size: HEADER_FIXED_SIZE + metadataLength,
  };
}

// ---- chunk records -----------------------------------------------------------------------

/** The record header for a chunk; the payload follows it directly. */
export function encodeChunkHeader(
  codec: string,
  params: Uint8Array,
  rawLength: number,
  rawCrc: number,
  storedLength: number,
): Buffer {
  if (params.length > MAX_PARAMS) throw new MmhError("E_INTERNAL", "codec parameters over 65535 bytes");
  const out = Buffer.alloc(CHUNK_HEADER_SIZE + params.length);
  out.write(CHUNK_TAG, 0, "latin1");
  out.write(codec, 4, "latin1");
  writeU64(out, rawLength, 8);
  writeU64(out, storedLength, 16);
  out.writeUInt32LE(rawCrc >>> 0, 24);
  out.writeUInt16LE(params.length, 28);
  out.writeUInt16LE(0, 30);
  out.set(params, CHUNK_HEADER_SIZE);
  out.writeUInt32LE(crc32(params, crc32(out.subarray(0, 32))), 32);
  return out;
}

/** Parse the fixed 36 bytes of a record whose tag is CHNK; params are read and checked separately. */
export function parseChunkHeader(fixed: Buffer, where: string): ChunkHeader {
  // (Messages are made only on failure: this runs once per record.)
  if (fixed.toString("latin1", 0, 4) !== CHUNK_TAG)
    throw new MmhError("E_CORRUPT", `${where}: not a chunk record`);
  const codec = fixed.toString("latin1", 4, 8);
  const rawLength = readU64(fixed, 8, () => `${where}: raw length`);
  const storedLength = readU64(fixed, 16, () => `${where}: stored length`);
  const rawCrc = fixed.readUInt32LE(24);
  const paramsLength = fixed.readUInt16LE(28);
  const flags = fixed.readUInt16LE(30);
  return { codec, rawLength, storedLength, rawCrc, flags, paramsLength };
}

/**
 * Verify the record header checksum (over the fixed part and the params), then the
 * fields whose meaning the checksum cannot vouch for. Call before reading the payload.
 */
export function checkChunkHeader(fixed: Buffer, params: Buffer, header: ChunkHeader, where: string): void {
  // (Messages are made only on failure: this runs once per record.)
  const headerCrc =
    params.length === 0 ? crc32(fixed.subarray(0, 32)) : crc32(params, crc32(fixed.subarray(0, 32)));
  if (headerCrc !== fixed.readUInt32LE(32))
    throw new MmhError("E_CHECKSUM", `${where}: record header checksum mismatch`);
  if (header.flags !== 0)
    throw new MmhError(
      "E_UNSUPPORTED",
      `${where}: chunk flags 0x${header.flags.toString(16)} use reserved bits`,
    );
  if (header.rawLength < 1) throw new MmhError("E_CORRUPT", `${where}: empty chunk`);
  if (header.rawLength > maxRawLength(header.codec))
    throw new MmhError(
      "E_CORRUPT",
      `${where}: raw length ${header.rawLength} is over the format's ${MAX_CHUNK_SIZE}-byte chunk limit`,
    );
  if (header.storedLength > header.rawLength)
    throw new MmhError(
      "E_CORRUPT",
      `${where}: stored length ${header.storedLength} exceeds raw length ${header.rawLength}`,
    );
}

// ---- index -----------------------------------------------------------------------------

/**
 * The footer's stored bytes: the JSON, or (flag INDEX_FLAG_FOOTER_ZSTD) its length as a
 * u32 and one zstd frame of it, when that is smaller. Names of thousands of tensors repeat
 * what the chunks already hold, so the table can be several percent of a small model's
 * .mmh. Level 19 up to 4 MiB of JSON, 3 beyond (a fixed rule, so the same footer always
 * gives the same bytes).
 */
function packFooter(json: Buffer): PackedFooter {
  if (json.length < FOOTER_ZSTD_MIN) return { flags: 0, stored: json };
  return packedFrame(json, zstdCompressSync(json, footerZstd(json)));
}

/** The footer's stored bytes as encodeIndex writes them (flags and bytes; see packFooter). */
export interface PackedFooter {
  flags: number;
  stored: Buffer;
}

// With the length pledged, the frame is the same bytes on the pool as here (without it,
// node:zlib's stream codes with other parameters).
const footerZstd = (json: Buffer) => ({
  pledgedSrcSize: json.length,
  params: {
    [constants.ZSTD_c_compressionLevel]: json.length <= 4 << 20 ? 19 : 3,
    [constants.ZSTD_c_checksumFlag]: 0,
    [constants.ZSTD_c_contentSizeFlag]: 1,
  },
});

function packedFrame(json: Buffer, frame: Buffer): PackedFooter {
  if (4 + frame.length >= json.length) return { flags: 0, stored: json };
  const stored = Buffer.alloc(4 + frame.length);
  stored.writeUInt32LE(json.length, 0);
  frame.copy(stored, 4);
  return { flags: INDEX_FLAG_FOOTER_ZSTD, stored };
}

/** Footer JSON below this is packed on the calling thread (packFooterSoon). */
const FOOTER_SOON_MIN = 4096;

/**
 * packFooter on node:zlib's thread pool: the same bytes, coded while the encoder codes the
 * chunks (the footer is known before the first chunk). zstd -19 of an ONNX file's tensor
 * table (20-30 KB of JSON) takes 10-46 ms, about a tenth of compressing such a file. The
 * pool gets the job going only as the event loop turns: a file's reads turn it, and the
 * encoder lets it turn once per chunk of bytes in memory until the footer is packed
 * (docs/ENGINE.md, Per-file and per-chunk costs of compress). The promise rejects as
 * encodeIndex throws (E_LIMIT for a footer over MAX_FOOTER_METADATA).
 */
export function packFooterSoon(footer: Metadata): Promise<PackedFooter> {
  let json: Buffer;
  try {
    json = encodeJson(footer, MAX_FOOTER_METADATA, "footer metadata");
  } catch (error) {
    return Promise.reject(error);
  }
  // Small footers cost less to code here than to hand to another thread.
  if (json.length < FOOTER_SOON_MIN) return Promise.resolve(packFooter(json));
  return new Promise((resolve, reject) =>
    zstdCompress(json, footerZstd(json), (error, frame) =>
      error ? reject(error) : resolve(packedFrame(json, frame)),
    ),
  );
}

/** The footer's JSON bytes from its stored form, every length checked (FORMAT.md §4). */
function unpackFooter(stored: Buffer, flags: number): Buffer {
  if ((flags & INDEX_FLAG_FOOTER_ZSTD) === 0) return stored;
  check(stored.length >= 4, "E_CORRUPT", "compressed footer metadata is shorter than its length field");
  const length = stored.readUInt32LE(0);
  check(
    length <= MAX_FOOTER_METADATA,
    "E_CORRUPT",
    `compressed footer metadata declares ${length} bytes, over the limit`,
  );
  let json: Buffer;
  try {
    json = zstdDecompressSync(stored.subarray(4), { maxOutputLength: Math.max(1, length) });
  } catch (error) {
    throw new MmhError("E_CORRUPT", "compressed footer metadata does not decode", { cause: error });
  }
  check(
    json.length === length,
    "E_CORRUPT",
    `compressed footer metadata decodes to ${json.length} bytes, not the ${length} it declares`,
  );
  return json;
}

/** The index block; `packed` is the footer already packed (packFooterSoon), else it is packed here. */
export function encodeIndex(entries: readonly IndexEntry[], footer: Metadata, packed?: PackedFooter): Buffer {
  const { flags, stored: meta } =
    packed ?? packFooter(encodeJson(footer, MAX_FOOTER_METADATA, "footer metadata"));
  const out = Buffer.alloc(INDEX_FIXED_SIZE + entries.length * INDEX_ENTRY_SIZE + meta.length);
  out.write(INDEX_TAG, 0, "latin1");
  out.writeUInt32LE(flags, 4);
  writeU64(out, entries.length, 8);
  out.writeUInt32LE(meta.length, 16);
  let pos = INDEX_FIXED_SIZE;
  for (const entry of entries) {
    writeU64(out, entry.recordOffset, pos);
    writeU64(out, entry.rawOffset, pos + 8);
    writeU64(out, entry.rawLength, pos + 16);
    out.write(entry.codec, pos + 24, "latin1");
    out.writeUInt32LE(entry.rawCrc >>> 0, pos + 28);
    pos += INDEX_ENTRY_SIZE;
  }
  meta.copy(out, pos);
  out.writeUInt32LE(crc32(out.subarray(INDEX_FIXED_SIZE), crc32(out.subarray(0, 20))), 20);
  return out;
}

/** From the fixed 24 bytes, the length of the rest of the index block, checked against `available`. */
export function parseIndexFixed(
  fixed: Buffer,
  available: number,
): { count: number; footerLength: number; bodyLength: number; flags: number } {
  check(fixed.toString("latin1", 0, 4) === INDEX_TAG, "E_CORRUPT", "index block has a bad tag");
  const flags = fixed.readUInt32LE(4);
  check(
    (flags & ~INDEX_FLAG_FOOTER_ZSTD) === 0,
    "E_UNSUPPORTED",
    `index flags 0x${flags.toString(16)} use reserved bits`,
  );
  const count = readU64(fixed, 8, "index entry count");
  const footerLength = fixed.readUInt32LE(16);
  check(
    footerLength <= MAX_FOOTER_METADATA,
    "E_CORRUPT",
    `footer metadata length ${footerLength} is over the limit`,
  );
  check(
    count <= Math.floor(available / INDEX_ENTRY_SIZE),
    "E_CORRUPT",
    `index declares ${count} entries, more than the file can hold`,
  );
  const bodyLength = count * INDEX_ENTRY_SIZE + footerLength;
  check(bodyLength <= available, "E_CORRUPT", "index is longer than the space before the trailer");
  return { count, footerLength, bodyLength, flags };
}

/**
 * Parse and validate the index: checksum, then every entry against its neighbours:
 * raw offsets contiguous from 0, record offsets strictly increasing inside
 * [firstRecord, indexOffset), the first one at firstRecord (records are back to back, so
 * the first follows the header; each record's own length is checked against the next
 * offset when it is read).
 */
export function parseIndex(fixed: Buffer, body: Buffer, firstRecord: number, indexOffset: number): Index {
  const last = lastIndex;
  if (
    last &&
    last.firstRecord === firstRecord &&
    last.indexOffset === indexOffset &&
    last.fixed.equals(fixed) &&
    last.body.equals(body)
  )
    return last.index;
  const index = parseIndexAnew(fixed, body, firstRecord, indexOffset);
  lastIndex =
    body.length <= INDEX_MEMO_BYTES
      ? { fixed: Buffer.from(fixed), body: Buffer.from(body), firstRecord, indexOffset, index }
      : undefined;
  return index;
}

/**
 * The last index parsed (a copy of its bytes and the result), when it was small: a
 * file's index is read twice, once to size or cut the work (MmhReader.open) and once by
 * the front-to-back decoder, which checks the records against it; the same bytes in the
 * same place give the same result, so the second parse (the footer's JSON and its checks,
 * a few ms for a file of a few hundred tensors) is skipped. The result is shared, so no
 * caller changes an Index.
 */
let lastIndex:
  | { fixed: Buffer; body: Buffer; firstRecord: number; indexOffset: number; index: Index }
  | undefined;

/** The largest index body kept by parseIndex's memo. */
const INDEX_MEMO_BYTES = 1 << 20;

function parseIndexAnew(fixed: Buffer, body: Buffer, firstRecord: number, indexOffset: number): Index {
  const { count, footerLength, flags } = parseIndexFixed(fixed, body.length);
  check(body.length === count * INDEX_ENTRY_SIZE + footerLength, "E_TRUNCATED", "index is truncated");
  check(
    crc32(body, crc32(fixed.subarray(0, 20))) === fixed.readUInt32LE(20),
    "E_CHECKSUM",
    "index checksum mismatch",
  );
  const entries: IndexEntry[] = new Array(count);
  let rawOffset = 0;
  let minRecord = firstRecord;
  for (let i = 0; i < count; i++) {
    const pos = i * INDEX_ENTRY_SIZE;
    const entry: IndexEntry = {
      recordOffset: readU64(body, pos, "index record offset"),
      rawOffset: readU64(body, pos + 8, "index raw offset"),
      rawLength: readU64(body, pos + 16, "index raw length"),
      codec: body.toString("latin1", pos + 24, pos + 28),
      rawCrc: body.readUInt32LE(pos + 28),
    };
    check(
      entry.rawOffset === rawOffset,
      "E_CORRUPT",
      `index entry ${i}: raw offset ${entry.rawOffset}, expected ${rawOffset}`,
    );
    check(
      entry.rawLength >= 1 && entry.rawLength <= maxRawLength(entry.codec),
      "E_CORRUPT",
      `index entry ${i}: bad raw length ${entry.rawLength}`,
    );
    check(
      entry.recordOffset >= minRecord &&
        (i > 0 || entry.recordOffset === firstRecord) &&
        entry.recordOffset + CHUNK_HEADER_SIZE <= indexOffset,
      "E_CORRUPT",
      `index entry ${i}: record offset ${entry.recordOffset} is out of place`,
    );
    check(
      rawOffset + entry.rawLength <= Number.MAX_SAFE_INTEGER,
      "E_CORRUPT",
      "index content length overflows",
    );
    rawOffset += entry.rawLength;
    minRecord = entry.recordOffset + CHUNK_HEADER_SIZE;
    entries[i] = entry;
  }
  // Records are back to back (FORMAT.md §3): with none, the index follows the header.
  check(
    count > 0 || indexOffset === firstRecord,
    "E_CORRUPT",
    `index at offset ${indexOffset} does not follow the header (offset ${firstRecord}) in a file with no chunks`,
  );
  const footer = decodeJson(
    unpackFooter(body.subarray(count * INDEX_ENTRY_SIZE), flags),
    "footer metadata",
    true,
  );
  checkFooterIntegers(footer);
  return { entries, footer };
}

// ---- trailer ---------------------------------------------------------------------------

export function encodeTrailer(trailer: Omit<Trailer, "flags">): Buffer {
  const out = Buffer.alloc(TRAILER_SIZE);
  writeU64(out, trailer.indexOffset, 0);
  writeU64(out, trailer.indexLength, 8);
  writeU64(out, trailer.rawLength, 16);
  writeU64(out, trailer.chunkCount, 24);
  Buffer.from(trailer.sha256, "hex").copy(out, 32);
  out.writeUInt32LE(0, 64);
  out.writeUInt32LE(crc32(out.subarray(0, 68)), 68);
  END_MAGIC.copy(out, 72);
  return out;
}

export function parseTrailer(buf: Buffer): Trailer {
  check(buf.length === TRAILER_SIZE, "E_TRUNCATED", "trailer is truncated");
  check(buf.subarray(72).equals(END_MAGIC), "E_CORRUPT", "bad end magic (truncated or not an .mmh file)");
  check(crc32(buf.subarray(0, 68)) === buf.readUInt32LE(68), "E_CHECKSUM", "trailer checksum mismatch");
  const flags = buf.readUInt32LE(64);
  check(flags === 0, "E_UNSUPPORTED", `trailer flags 0x${flags.toString(16)} use reserved bits`);
  return {
    indexOffset: readU64(buf, 0, "index offset"),
    indexLength: readU64(buf, 8, "index length"),
    rawLength: readU64(buf, 16, "content length"),
    chunkCount: readU64(buf, 24, "chunk count"),
    sha256: buf.toString("hex", 32, 64),
    flags,
  };
}
