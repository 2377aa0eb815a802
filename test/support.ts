/**
 * Shared helpers for the test suite and scripts/make-vectors.ts: deterministic content,
 * coded-error assertions, and a small walker over a valid .mmh file's layout so tests
 * can edit one field and recompute the checksum that covers it.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { crc32 } from "node:zlib";
import { type ErrorCode, MmhError } from "../src/common/errors.ts";
import {
  CHUNK_HEADER_SIZE,
  CHUNK_TAG,
  encodeChunkHeader,
  encodeHeader,
  encodeIndex,
  encodeTrailer,
  HEADER_FIXED_SIZE,
  INDEX_ENTRY_SIZE,
  INDEX_FIXED_SIZE,
  INDEX_TAG,
  type IndexEntry,
  TRAILER_SIZE,
} from "../src/container/format.ts";
import type { ArchiveEntry, StoredTensor } from "../src/container/metadata.ts";
import { open } from "../src/index.ts";

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** mulberry32, seeded, so "random" test content is the same on every run (src/tools/gen.ts). */
import { rng as prng } from "../src/tools/gen.ts";

export { prng };

/** Incompressible-looking bytes, the same for the same seed. */
export function noiseBytes(length: number, seed: number): Buffer {
  const next = prng(seed);
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = Math.floor(next() * 256);
  return out;
}

const WORDS = [
  "tensor",
  "weight",
  "bias",
  "layer",
  "gradient",
  "float32",
  "shape",
  "dtype",
  "attention",
  "embedding",
  "checkpoint",
  "optimizer",
  "lossless",
  "chunk",
];

/**
 * `copies` 8-byte words, each repeated right after its first occurrence, in 2 KiB of random
 * bytes from `next` (every 40 bytes from offset 10). The bytes around each pair differ, so
 * no word overlapping them repeats: exactly `copies` repeated words, for tests at the
 * repeat share worth a probe (41 of 2041 positions).
 */
export function repeatedWords(copies: number, next: () => number): Uint8Array {
  const s = Uint8Array.from({ length: 2048 }, () => Math.floor(next() * 256));
  for (let c = 0; c < copies; c++) {
    const at = 10 + 40 * c;
    s[at - 1] = s[at + 7] ^ 1;
    s.copyWithin(at + 8, at, at + 8);
    s[at + 16] = s[at] ^ 1;
  }
  return s;
}

/** Compressible text-like bytes made from a fixed word list, the same for the same seed. */
export function textBytes(length: number, seed: number): Buffer {
  const next = prng(seed);
  const parts: string[] = [];
  let total = 0;
  while (total < length) {
    const word = `${WORDS[Math.floor(next() * WORDS.length)]}${next() < 0.15 ? "\n" : " "}`;
    parts.push(word);
    total += word.length;
  }
  return Buffer.from(parts.join(""), "latin1").subarray(0, length);
}

function codeMatches(error: unknown, codes: readonly ErrorCode[]): boolean {
  return error instanceof MmhError && codes.includes(error.code);
}

function describeError(error: unknown): string {
  if (error instanceof MmhError) return `MmhError ${error.code}: ${error.message}`;
  if (error instanceof Error) return `${error.constructor.name} (not an MmhError): ${error.message}`;
  return `non-error thrown: ${String(error)}`;
}

/** Await `work`; it must reject with an MmhError whose code is one of `codes`. Returns the error. */
export async function rejectsWith(
  work: Promise<unknown> | (() => Promise<unknown>),
  codes: ErrorCode | readonly ErrorCode[],
  context = "",
): Promise<MmhError> {
  const wanted = typeof codes === "string" ? [codes] : codes;
  try {
    await (typeof work === "function" ? work() : work);
  } catch (error) {
    assert.ok(
      codeMatches(error, wanted),
      `${context}expected MmhError ${wanted.join(" or ")}, got ${describeError(error)}`,
    );
    return error as MmhError;
  }
  assert.fail(`${context}expected MmhError ${wanted.join(" or ")}, but it resolved`);
}

/** Call `fn`; it must throw an MmhError whose code is one of `codes`. Returns the error. */
export function throwsWith(
  fn: () => unknown,
  codes: ErrorCode | readonly ErrorCode[],
  context = "",
): MmhError {
  const wanted = typeof codes === "string" ? [codes] : codes;
  try {
    fn();
  } catch (error) {
    assert.ok(
      codeMatches(error, wanted),
      `${context}expected MmhError ${wanted.join(" or ")}, got ${describeError(error)}`,
    );
    return error as MmhError;
  }
  assert.fail(`${context}expected MmhError ${wanted.join(" or ")}, but it returned`);
}

/** Run `work`: it must either resolve or reject with an MmhError (any code). */
export async function settle<T>(
  work: () => Promise<T>,
): Promise<{ ok: true; value: T } | { ok: false; error: MmhError }> {
  try {
    return { ok: true, value: await work() };
  } catch (error) {
    assert.ok(error instanceof MmhError, `expected an MmhError, got ${describeError(error)}`);
    assert.ok(
      typeof error.code === "string" && error.code.startsWith("E_"),
      `error has no code: ${error.code}`,
    );
    return { ok: false, error };
  }
}

// ---- layout of a valid file ------------------------------------------------------------

export interface RecordLayout {
  /** Offset of the CHNK tag. */
  offset: number;
  codec: string;
  rawLength: number;
  storedLength: number;
  paramsLength: number;
  /** Offset of the payload's first byte. */
  payloadOffset: number;
  /** Offset just past the payload. */
  end: number;
}

export interface Layout {
  headerSize: number;
  metadataLength: number;
  records: RecordLayout[];
  indexOffset: number;
  indexLength: number;
  entryCount: number;
  trailerOffset: number;
  size: number;
}

/** Walk a well-formed file front to back. Only for files the tests made themselves. */
export function layoutOf(file: Uint8Array): Layout {
  const buf = Buffer.from(file.buffer, file.byteOffset, file.byteLength);
  const metadataLength = buf.readUInt32LE(12);
  const headerSize = HEADER_FIXED_SIZE + metadataLength;
  const records: RecordLayout[] = [];
  let pos = headerSize;
  while (buf.toString("latin1", pos, pos + 4) === CHUNK_TAG) {
    const paramsLength = buf.readUInt16LE(pos + 28);
    const storedLength = Number(buf.readBigUInt64LE(pos + 16));
    const payloadOffset = pos + CHUNK_HEADER_SIZE + paramsLength;
    records.push({
      offset: pos,
      codec: buf.toString("latin1", pos + 4, pos + 8),
      rawLength: Number(buf.readBigUInt64LE(pos + 8)),
      storedLength,
      paramsLength,
      payloadOffset,
      end: payloadOffset + storedLength,
    });
    pos = payloadOffset + storedLength;
  }
  assert.equal(buf.toString("latin1", pos, pos + 4), INDEX_TAG, "layoutOf: no index where expected");
  const entryCount = Number(buf.readBigUInt64LE(pos + 8));
  const footerLength = buf.readUInt32LE(pos + 16);
  const indexLength = INDEX_FIXED_SIZE + entryCount * INDEX_ENTRY_SIZE + footerLength;
  const trailerOffset = pos + indexLength;
  assert.equal(trailerOffset + TRAILER_SIZE, buf.length, "layoutOf: trailer is not at the end");
  return {
    headerSize,
    metadataLength,
    records,
    indexOffset: pos,
    indexLength,
    entryCount,
    trailerOffset,
    size: buf.length,
  };
}

// ---- editing with checksums recomputed ---------------------------------------------------

/** A writable copy. */
export function copyOf(file: Uint8Array): Buffer {
  return Buffer.from(file);
}

export function fixHeaderCrc(buf: Buffer): void {
  const metadataLength = buf.readUInt32LE(12);
  const meta = buf.subarray(HEADER_FIXED_SIZE, HEADER_FIXED_SIZE + metadataLength);
  buf.writeUInt32LE(crc32(meta, crc32(buf.subarray(0, 16))), 16);
}

export function fixRecordCrc(buf: Buffer, record: Pick<RecordLayout, "offset" | "paramsLength">): void {
  const at = record.offset;
  const params = buf.subarray(at + CHUNK_HEADER_SIZE, at + CHUNK_HEADER_SIZE + record.paramsLength);
  buf.writeUInt32LE(crc32(params, crc32(buf.subarray(at, at + 32))), at + 32);
}

export function fixIndexCrc(buf: Buffer, layout: Pick<Layout, "indexOffset" | "indexLength">): void {
  const at = layout.indexOffset;
  const body = buf.subarray(at + INDEX_FIXED_SIZE, at + layout.indexLength);
  buf.writeUInt32LE(crc32(body, crc32(buf.subarray(at, at + 20))), at + 20);
}

export function fixTrailerCrc(buf: Buffer): void {
  const at = buf.length - TRAILER_SIZE;
  buf.writeUInt32LE(crc32(buf.subarray(at, at + 68)), at + 68);
}

/** Offset of index entry i's first byte. */
export function entryOffset(layout: Layout, i: number): number {
  return layout.indexOffset + INDEX_FIXED_SIZE + i * INDEX_ENTRY_SIZE;
}

export async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/**
 * The pieces of `bytes`, `size` bytes each, all written into the same memory: what was
 * handed out before is overwritten as soon as the next piece is asked for (a source that
 * reuses its buffer, as the mmh command's standard input does).
 */
export async function* reusing(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  const shared = new Uint8Array(size);
  for (let at = 0; at < bytes.length; at += size) {
    const piece = bytes.subarray(at, at + size);
    shared.set(piece);
    yield shared.subarray(0, piece.length);
  }
}

/** One tensor read through open(), the file closed after: its table entry and bytes. */
export async function readTensor(
  file: string,
  name: string,
  options: { entry?: string; maxOutputBytes?: number } = {},
): Promise<{ tensor: StoredTensor; data: Uint8Array }> {
  const mmh = await open(file);
  try {
    const pick = { file: options.entry, maxOutputBytes: options.maxOutputBytes };
    return { tensor: mmh.tensor(name, pick), data: await mmh.readTensor(name, pick) };
  } finally {
    await mmh.close();
  }
}

/** One file of a folder archive read through open(), the archive closed after. */
export async function readEntry(
  file: string,
  path: string,
  options: { maxOutputBytes?: number } = {},
): Promise<{ entry: ArchiveEntry | undefined; data: Uint8Array }> {
  const mmh = await open(file);
  try {
    const data = await mmh.readEntry(path, options);
    return { entry: mmh.entries.find((e) => e.path === path), data };
  } finally {
    await mmh.close();
  }
}

/** Content bytes [offset, offset + length) read through open(), the file closed after. */
export async function readRange(
  file: string,
  offset: number,
  length: number,
  options: { maxOutputBytes?: number } = {},
): Promise<Uint8Array> {
  const mmh = await open(file);
  try {
    return await mmh.readRange(offset, length, options);
  } finally {
    await mmh.close();
  }
}

// ---- what a record holds (HIER layouts and stream methods, P251 fields) --------------------

const HIER_LAYOUT_NAMES = [
  "bytes",
  "bf16",
  "f16",
  "f32",
  "planes2",
  "planes4",
  "planes8",
  "q4_0",
  "q4_1",
  "q5_0",
  "q5_1",
  "q8_0",
  "q8_1",
  "q2_k",
  "q3_k",
  "q4_k",
  "q5_k",
  "q6_k",
  undefined, // 18: not assigned
  "records",
];

/** Position after a Huffman block's type byte and symbol-count varint. */
function afterCount(block: Uint8Array): number {
  let at = 1;
  while (block[at] & 0x80) at++;
  return at + 1;
}

/** Position after a codebook at `pos` (FORMAT.md §6.2), walking its nibbles. */
export function codebookEnd(block: Uint8Array, pos: number): number {
  const lo = block[pos];
  const hi = block[pos + 1];
  let k = 0;
  const nibble = () => {
    const at = (pos + 2) * 2 + k++;
    return (block[at >> 1] >> ((at & 1) * 4)) & 15;
  };
  for (let s = lo; s <= hi; ) {
    if (nibble() === 15) s += (nibble() | (nibble() << 4)) + 1;
    else s++;
  }
  return pos + 2 + ((k + 1) >> 1);
}

/** One HIER stream as a word: its method and, for Huffman methods, the block inside. */
function describeStream(method: number, block: Uint8Array): string {
  switch (method) {
    case 0:
      return "constant";
    case 1:
      return "stored";
    case 3:
      return "zstd";
    case 2:
      return (
        ["huffman/stored-block", "huffman/single-symbol", "huffman", "huffman/context-block?"][block[0]] ??
        "huffman/?"
      );
    case 4: {
      if (block[0] !== 3) return `context/block-type-${block[0]}`;
      let pos = afterCount(block);
      const K = block[pos++];
      pos += K - 1;
      let zeroBit = 0;
      for (let c = 0; c < K; c++) {
        if (block[pos] === block[pos + 1] && block[pos + 2] === 0) {
          zeroBit++;
          pos += 3;
        } else pos = codebookEnd(block, pos);
      }
      return `context K=${K}${zeroBit > 0 ? ` (${zeroBit} zero-bit codebook${zeroBit > 1 ? "s" : ""})` : ""}`;
    }
    default:
      return `method-${method}`;
  }
}

/**
 * What each record of a well-formed file holds, one line each: the codec, and for HIER
 * its layout, head and every stream's method; for P251 its fields. The golden vectors'
 * manifest lists these, so that what a vector pins can be read and checked.
 */
export function structureOf(file: Uint8Array): string[] {
  const buf = Buffer.from(file.buffer, file.byteOffset, file.byteLength);
  return layoutOf(file).records.map((record) => {
    const payload = buf.subarray(record.payloadOffset, record.end);
    if (record.codec === "HIER") {
      const count = payload[3];
      let pos = 8 + 5 * count + payload[2];
      const streams: string[] = [];
      for (let k = 0; k < count; k++) {
        const method = payload[8 + 5 * k];
        const length = payload.readUInt32LE(8 + 5 * k + 1);
        streams.push(describeStream(method, payload.subarray(pos, pos + length)));
        pos += length;
      }
      const name = HIER_LAYOUT_NAMES[payload[1]] ?? "unknown";
      return `HIER layout ${payload[1]} (${name}) head ${payload[2]}: ${streams.join(", ")}`;
    }
    if (record.codec === "P251") {
      const params = buf.subarray(record.offset + CHUNK_HEADER_SIZE, record.payloadOffset);
      const flags = params[0];
      const period = params.readUInt32LE(1);
      const periodic = Number(params.readBigUInt64LE(5));
      const part = (zstd: number, size: number) => (size === 0 ? "empty" : zstd ? "zstd" : "stored");
      return `P251 R=${record.rawLength} P=${period} L=${periodic}: pattern ${part(flags & 1, period)}, tail ${part(flags & 2, record.rawLength - periodic)}`;
    }
    return `${record.codec.trim()} R=${record.rawLength}`;
  });
}

/** A record of a hand-assembled container: any codec, params and payload. */
export interface Rec {
  raw: Uint8Array;
  codec: string;
  params?: Uint8Array;
  payload: Uint8Array;
  /** The raw CRC the record declares (default: of raw). */
  crc?: number;
}

/** A container of exactly these records, with a matching index and trailer and no footer. */
export function assemble(records: Rec[]): Buffer {
  const header = encodeHeader({ tool: "test", source: { name: null, format: "raw" } });
  const parts: Uint8Array[] = [header];
  const entries: IndexEntry[] = [];
  let offset = header.length;
  let rawOffset = 0;
  const hash = createHash("sha256");
  for (const { raw, codec, params = new Uint8Array(0), payload, crc = crc32(raw) } of records) {
    const head = encodeChunkHeader(codec, params, raw.length, crc, payload.length);
    entries.push({ recordOffset: offset, rawOffset, rawLength: raw.length, codec, rawCrc: crc });
    parts.push(head, payload);
    offset += head.length + payload.length;
    rawOffset += raw.length;
    hash.update(raw);
  }
  const index = encodeIndex(entries, {});
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

/** A tensor for safetensorsOf: name, dtype, shape and its bytes. */
export type StTensor = readonly [name: string, dtype: string, shape: readonly number[], bytes: Uint8Array];

/** A safetensors file of `tensors`, back to back in the order given (header padded with spaces). */
export function safetensorsOf(tensors: readonly StTensor[]): Buffer {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, dtype, shape, bytes] of tensors) {
    header[name] = { dtype, shape, data_offsets: [offset, offset + bytes.length] };
    offset += bytes.length;
  }
  let json = Buffer.from(JSON.stringify(header));
  json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, json, ...tensors.map((t) => t[3])]);
}
