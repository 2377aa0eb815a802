/**
 * Files of the older MMH-RS tool, read only (docs/FORMAT.md, "Legacy MMH-RS files"):
 * v1.2.0 `.mmh` files (a text header and one zstd frame), v1.2.5 codec blobs (a tag, a
 * u32 size and a payload) and Pattern251 blobs. Each is told apart by its exact first
 * bytes, none of which a real .mmh file (START_MAGIC) or a bare zstd frame starts with.
 */
import { constants, createBrotliDecompress, createZstdDecompress } from "node:zlib";
import { lz4Blocks } from "../codecs/lz4.ts";
import { type ByteQueue, formatBytes } from "../common/bytes.ts";
import { check, MmhError } from "../common/errors.ts";
import type { RandomAccessSource } from "../common/source.ts";

/** The v1.2.0 header: three lines, the longest of them bounded (an extension of 255 bytes). */
const V120_FIRST_LINE = "MMH-RS V1.2.0";
const MAX_EXTENSION = 255;
/** Bytes enough to tell every legacy form apart: the v1.2.0 header, or a Pattern251 blob and one more byte. */
export const LEGACY_PROBE_BYTES = 512;

const PATTERN_TAG = 0xaa;
const PATTERN_BLOCK = 251;
const PATTERN_FILE = 1 + 4 + PATTERN_BLOCK;

/** The v1.2.5 tags; the size that follows is the only check these blobs carry. */
const BLOB_TAGS = ["ZSTD", "LZ4 ", "BROT", "NONE"] as const;
type BlobTag = (typeof BLOB_TAGS)[number];

/**
 * The most content a payload of n bytes can hold, by codec: anything more is refused
 * (E_LIMIT) before a byte is decoded. zstd: a block of at most 128 KiB costs at least 4
 * bytes (an RLE block), so 32768:1. LZ4: each byte of a length adds at most 255. Brotli
 * has no bound as simple; 2^22:1 is over six times the 637,614:1 it reaches on 256 MiB
 * of zeros at quality 11.
 */
const MAX_RATIO: Record<Exclude<BlobTag, "NONE">, number> = {
  ZSTD: 32768,
  "LZ4 ": 255,
  BROT: 1 << 22,
};
/** An LZ4 block is decoded whole, in memory: larger blobs are refused (E_LIMIT). */
const MAX_LZ4_CONTENT = 1 << 30;
/** Pattern251 content is written out in pieces of this many blocks (about 1 MiB). */
const PATTERN_PIECE_BLOCKS = 4096;

/** What a legacy MMH-RS file is, from its first bytes. */
export interface LegacyInspection {
  /** `"v1.2.0"` (header and zstd frame), `"v1.2.5"` (codec blob) or `"pattern251"`. */
  kind: "v1.2.0" | "v1.2.5" | "pattern251";
  /** The MMH-RS version that wrote it, when the format says (`"1.2.0"`, `"1.2.5"`); null for Pattern251. */
  version: string | null;
  /** The payload's coding: `ZSTD`, `LZ4 ` (a raw LZ4 block), `BROT`, `NONE`, or `P251` for Pattern251. */
  codec: string;
  /** The content's length as the file declares it; null for v1.2.0, which does not record it. */
  rawBytes: number | null;
  /** The file's own length. */
  fileBytes: number;
  /** v1.2.0: the original file's extension, as stored (unchecked text: sanitise it before naming a file). */
  extension?: string;
  /** v1.2.0: the 16 hex digits of its DETERMINISTIC_ID, the first 8 bytes of the content's SHA-256. */
  contentId?: string;
}

/** Where a legacy file's payload starts, beside what inspection reports. */
interface LegacyLayout extends Omit<LegacyInspection, "fileBytes"> {
  headerBytes: number;
}

function startsWith(head: Uint8Array, text: string): boolean {
  if (head.length < text.length) return false;
  for (let i = 0; i < text.length; i++) if (head[i] !== text.charCodeAt(i)) return false;
  return true;
}

/**
 * Whether the input's first 8 bytes (fewer when it is shorter) may begin a legacy file:
 * only then are LEGACY_PROBE_BYTES read ahead, so a stream that is not one is refused
 * as soon as its own header shows it.
 */
export function mayBeLegacy(start: Buffer): boolean {
  return (
    start[0] === PATTERN_TAG || ["MMH-RS V", "HPC1", ...BLOB_TAGS].some((prefix) => startsWith(start, prefix))
  );
}

/**
 * The legacy form `head` starts with, or undefined when it is none (an .mmh file, or
 * something that is not ours). `head` is the input's first LEGACY_PROBE_BYTES, fewer only
 * when the input is that short. Throws for a legacy form that cannot be read.
 */
export function detectLegacy(head: Buffer): LegacyLayout | undefined {
  const whole = head.length < LEGACY_PROBE_BYTES;
  if (startsWith(head, "MMH-RS V")) return parseV120(head, whole);
  if (startsWith(head, "HPC1")) {
    throw new MmhError(
      "E_UNSUPPORTED",
      "an MMH-RS HPC1 hierarchical blob: that format never worked in MMH-RS, and cannot be read",
    );
  }
  const tag = BLOB_TAGS.find((t) => startsWith(head, t));
  if (tag !== undefined) {
    check(
      head.length >= 8,
      "E_TRUNCATED",
      `an MMH-RS v1.2.5 ${tag.trim()} blob cut short in its 8-byte header`,
    );
    return { kind: "v1.2.5", version: "1.2.5", codec: tag, rawBytes: head.readUInt32LE(4), headerBytes: 8 };
  }
  if (head[0] === PATTERN_TAG) {
    check(
      head.length === PATTERN_FILE,
      "E_CORRUPT",
      `not an .mmh file (bad magic), nor a Pattern251 blob: those are exactly ${PATTERN_FILE} bytes, this is ${whole ? head.length : `over ${PATTERN_FILE}`}`,
    );
    const count = head.readUInt32LE(1);
    check(
      count > 0,
      "E_CORRUPT",
      "Pattern251 blob repeats its block 0 times (a writer repeats it at least once)",
    );
    return {
      kind: "pattern251",
      version: null,
      codec: "P251",
      rawBytes: count * PATTERN_BLOCK,
      headerBytes: 5,
    };
  }
  return undefined;
}

function parseV120(head: Buffer, whole: boolean): LegacyLayout {
  const lines: string[] = [];
  let pos = 0;
  for (let i = 0; i < 3; i++) {
    const end = head.indexOf(0x0a, pos);
    if (end < 0) {
      check(!whole, "E_TRUNCATED", `MMH-RS header ends in its line ${i + 1}`);
      throw new MmhError("E_CORRUPT", `MMH-RS header line ${i + 1} is longer than a header allows`);
    }
    lines.push(head.toString("latin1", pos, end));
    pos = end + 1;
  }
  const version = /^MMH-RS V(\d+\.\d+\.\d+)$/.exec(lines[0]);
  check(version, "E_CORRUPT", "MMH-RS header: its first line is not a version");
  check(
    lines[0] === V120_FIRST_LINE,
    "E_UNSUPPORTED",
    `an MMH-RS V${version[1]} file: only V1.2.0 headers are read`,
  );
  const id = /^DETERMINISTIC_ID: file_([0-9a-fA-F]{16})$/.exec(lines[1]);
  check(id, "E_CORRUPT", "MMH-RS header: line 2 is not DETERMINISTIC_ID: file_ and 16 hex digits");
  const extension = /^FILE_EXTENSION: ([\x20-\x7e]*)$/.exec(lines[2]);
  check(
    extension && extension[1].length <= MAX_EXTENSION,
    "E_CORRUPT",
    `MMH-RS header: line 3 is not FILE_EXTENSION: and at most ${MAX_EXTENSION} printable ASCII characters`,
  );
  return {
    kind: "v1.2.0",
    version: "1.2.0",
    codec: "ZSTD",
    rawBytes: null,
    extension: extension[1],
    contentId: id[1].toLowerCase(),
    headerBytes: pos,
  };
}

/**
 * Describe the legacy file behind `source` from its first bytes, or resolve undefined
 * when it is not one (an .mmh file, or anything else).
 */
export async function probeLegacy(source: RandomAccessSource): Promise<LegacyInspection | undefined> {
  const head = await source.read(0, Math.min(source.size, LEGACY_PROBE_BYTES));
  const layout = detectLegacy(head);
  if (!layout) return undefined;
  const { headerBytes: _, ...described } = layout;
  return { ...described, fileBytes: source.size };
}

/** A short name for messages: "MMH-RS v1.2.5 ZSTD blob". */
export function legacyName(layout: Pick<LegacyInspection, "kind" | "codec">): string {
  if (layout.kind === "v1.2.0") return "MMH-RS v1.2.0 file";
  if (layout.kind === "pattern251") return "MMH-RS Pattern251 blob";
  return `MMH-RS v1.2.5 ${layout.codec.trim()} blob`;
}

export interface LegacyStats {
  rawBytes: number;
  storedBytes: number;
}

/**
 * Decode the legacy file whose first bytes gave `layout`, from `input` positioned at its
 * start. Output sizes are checked against `maxOutput` and the format's own bounds before
 * anything is produced; the declared size (v1.2.5), the repeat count (Pattern251) and the
 * content hash prefix (v1.2.0) are checked as the file ends.
 */
export async function* decodeLegacy(
  input: ByteQueue,
  layout: LegacyLayout,
  maxOutput: number,
  stats: LegacyStats,
  borrowed: boolean,
  signal?: AbortSignal,
): AsyncGenerator<Uint8Array> {
  const name = legacyName(layout);
  const header = await input.read(layout.headerBytes, `the header of an ${name}`);
  const counted = async function* (pieces: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    for await (const piece of pieces) {
      if (signal?.aborted) throw new MmhError("E_ABORTED", "decompression aborted");
      stats.rawBytes += piece.length;
      stats.storedBytes = input.position;
      yield piece;
    }
    stats.storedBytes = input.position;
  };
  if (layout.kind === "v1.2.0") {
    yield* counted(decodeV120(input, layout, maxOutput));
    return;
  }
  const declared = layout.rawBytes ?? 0;
  check(
    declared <= maxOutput,
    "E_LIMIT",
    `${name} declares ${declared} bytes (${formatBytes(declared)}), over the limit of ${maxOutput}`,
  );
  if (layout.kind === "pattern251") {
    const block = (await input.read(PATTERN_BLOCK, "the Pattern251 block")).subarray(0);
    check(await input.atEnd(), "E_INTERNAL", "Pattern251 blob longer than its length check allowed");
    stats.storedBytes = input.position;
    yield* counted(repeatBlock(Buffer.from(block), header.readUInt32LE(1), borrowed));
    return;
  }
  const tag = layout.codec as BlobTag;
  const exact = (pieces: AsyncIterable<Uint8Array>) => exactly(pieces, declared, name);
  if (tag === "NONE") {
    yield* counted(exact(input.rest()));
    return;
  }
  // The payload must be long enough for the size it declares, at the codec's best ratio.
  const need = Math.ceil(declared / MAX_RATIO[tag]);
  const seen = (await input.peek(need)).length;
  check(
    seen >= need,
    "E_LIMIT",
    `${name} declares ${declared} bytes from a payload of ${seen}: more than ${tag.trim()} can hold (${MAX_RATIO[tag]}:1)`,
  );
  if (tag === "LZ4 ") {
    yield* counted(exact(decodeLz4Block(input, declared, name)));
    return;
  }
  const engine = tag === "ZSTD" ? "zstd" : "brotli";
  const over = () =>
    new MmhError("E_CORRUPT", `${name} decodes to more than the ${declared} bytes its header declares`);
  yield* counted(exact(inflate(engine, input, declared, over, name, windowLogFor(declared))));
}

/** Pass `pieces` on, refusing them as soon as they go past `declared` bytes, or end short of it. */
async function* exactly(
  pieces: AsyncIterable<Uint8Array>,
  declared: number,
  name: string,
): AsyncGenerator<Uint8Array> {
  let produced = 0;
  for await (const piece of pieces) {
    produced += piece.length;
    check(
      produced <= declared,
      "E_CORRUPT",
      `${name} holds more than the ${declared} bytes its header declares`,
    );
    yield piece;
  }
  check(
    produced === declared,
    "E_CORRUPT",
    `${name} holds ${produced} bytes, its header declares ${declared}`,
  );
}

async function* decodeV120(
  input: ByteQueue,
  layout: LegacyLayout,
  maxOutput: number,
): AsyncGenerator<Uint8Array> {
  const hash = process.getBuiltinModule("node:crypto").createHash("sha256"); // loaded at first use (engine/hashing.ts)
  const over = () => new MmhError("E_LIMIT", `MMH-RS v1.2.0 content exceeds the limit of ${maxOutput} bytes`);
  // No size is recorded: zstd's own default bound on the window (128 MiB, as `zstd -d`).
  for await (const piece of inflate("zstd", input, maxOutput, over, "MMH-RS v1.2.0 file", 27)) {
    hash.update(piece);
    yield piece;
  }
  const digest = hash.digest("hex");
  check(
    digest.slice(0, 16) === layout.contentId,
    "E_CHECKSUM",
    `MMH-RS v1.2.0 content hash mismatch: DETERMINISTIC_ID says file_${layout.contentId}, content is file_${digest.slice(0, 16)}`,
  );
}

function windowLogFor(rawLength: number): number {
  // As the ZSTD codec does: a frame of n bytes never needs a window larger than n.
  return Math.min(31, Math.max(10, Math.ceil(Math.log2(Math.max(1, rawLength)))));
}

/**
 * One zstd frame or Brotli stream from the rest of `input`, decoded front to back: no
 * more than `limit` bytes (`over()` is thrown past it), and no byte of the input after
 * the frame.
 */
async function* inflate(
  engine: "zstd" | "brotli",
  input: ByteQueue,
  limit: number,
  over: () => MmhError,
  name: string,
  windowLog: number,
): AsyncGenerator<Uint8Array> {
  const stream =
    engine === "zstd"
      ? createZstdDecompress({ params: { [constants.ZSTD_d_windowLogMax]: windowLog } })
      : createBrotliDecompress();
  // The engine stops at the end of its frame and takes no more input: once its output has
  // ended (or it is destroyed), a write would never be called back.
  const stopped = new Promise<boolean>((resolve) => {
    stream.once("end", () => resolve(true));
    stream.once("close", () => resolve(true));
  });
  let fed = 0;
  let sourceError: unknown;
  // Each piece is written, and the engine done with it, before the next is asked for: a
  // borrowed piece is never kept past its turn.
  const feeding = (async () => {
    try {
      for await (const piece of input.rest()) {
        fed += piece.length;
        const written = new Promise<boolean>((resolve, reject) =>
          stream.write(piece, (error) => (error ? reject(error) : resolve(false))),
        );
        written.catch(() => {}); // a write failing once the stream is gone is not news
        if (await Promise.race([written, stopped])) return;
      }
      stream.end();
    } catch (error) {
      sourceError ??= error;
      stream.destroy(error as Error);
    }
  })();
  let produced = 0;
  try {
    for await (const piece of stream as AsyncIterable<Buffer>) {
      produced += piece.length;
      if (produced > limit) throw over();
      yield piece;
    }
  } catch (error) {
    if (error instanceof MmhError) throw error;
    if (sourceError instanceof MmhError) throw sourceError;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "Z_BUF_ERROR")
      throw new MmhError("E_TRUNCATED", `${name}: its ${engine} stream is cut short`, { cause: error });
    throw new MmhError(
      "E_CORRUPT",
      `${name}: its ${engine} stream does not decode: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  } finally {
    stream.destroy();
    await feeding;
  }
  if (sourceError instanceof MmhError) throw sourceError;
  check(
    stream.bytesWritten === fed && (await input.atEnd()),
    "E_CORRUPT",
    `${name}: bytes after its ${engine} stream`,
  );
}

/** A raw LZ4 block, read whole (at most its worst-case size for `declared` bytes) and decoded. */
async function* decodeLz4Block(input: ByteQueue, declared: number, name: string): AsyncGenerator<Uint8Array> {
  check(
    declared <= MAX_LZ4_CONTENT,
    "E_LIMIT",
    `${name} declares ${declared} bytes; LZ4 blobs are decoded in memory, at most ${MAX_LZ4_CONTENT}`,
  );
  // LZ4_COMPRESSBOUND: a block of n bytes is never coded in more than n + n/255 + 16.
  const bound = declared + Math.floor(declared / 255) + 16;
  const pieces: Buffer[] = [];
  let length = 0;
  for await (const piece of input.rest()) {
    length += piece.length;
    check(length <= bound, "E_CORRUPT", `${name}: payload longer than any LZ4 block of ${declared} bytes`);
    pieces.push(Buffer.from(piece)); // a copy: the source may recycle the piece
  }
  if (declared === 0) {
    // lz4_flex needs content to decode into; the empty block is one zero token.
    check(length === 1 && pieces[0][0] === 0, "E_CORRUPT", `${name}: not the empty LZ4 block`);
    return;
  }
  const block = Buffer.alloc(4 + length);
  block.writeUInt32LE(declared, 0);
  Buffer.concat(pieces, length).copy(block, 4);
  let out: Uint8Array;
  try {
    out = lz4Blocks().decompress(block);
  } catch (error) {
    throw new MmhError(
      "E_CORRUPT",
      `${name}: its LZ4 block does not decode to ${declared} bytes: ${String(error)}`,
      {
        cause: error,
      },
    );
  }
  yield out;
}

/** `block` repeated `count` times, in pieces of about 1 MiB. */
async function* repeatBlock(block: Buffer, count: number, borrowed: boolean): AsyncGenerator<Uint8Array> {
  const piece = Buffer.allocUnsafe(Math.min(count, PATTERN_PIECE_BLOCKS) * PATTERN_BLOCK);
  for (let at = 0; at < piece.length; at += PATTERN_BLOCK) block.copy(piece, at);
  for (let left = count; left > 0; ) {
    const blocks = Math.min(left, PATTERN_PIECE_BLOCKS);
    const out = piece.subarray(0, blocks * PATTERN_BLOCK);
    yield borrowed ? out : Buffer.from(out);
    left -= blocks;
  }
}
