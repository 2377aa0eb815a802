/**
 * Writes the legacy MMH-RS vectors in test/vectors/legacy/ and their manifest, built from
 * the format descriptions in docs/FORMAT.md ("Legacy MMH-RS files"). Run once; the files
 * are FROZEN: every later MMH version must decode the must-decode files to the listed
 * content and refuse the must-fail files with the listed code. test/legacy.test.ts reads
 * only the committed files and never calls this script.
 *
 *   npx node scripts/make-legacy-vectors.ts          write missing files; refuse to change any
 *   npx node scripts/make-legacy-vectors.ts --check  only compare what would be written
 *
 * A committed file that would now be made differently (another zstd or Brotli build codes
 * the same content in other bytes) is kept, and only checked against its manifest entry.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { brotliCompressSync, constants, zstdCompressSync } from "node:zlib";
import { compress as lz4Block } from "lz4-wasm-nodejs";
import { MmhError } from "../src/common/errors.ts";
import { decompress } from "../src/index.ts";

const DIR = join(import.meta.dirname, "..", "test", "vectors", "legacy");
const MAX_FILE = 4096;
const checkOnly = process.argv.includes("--check");

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

// ---- content, by formula ---------------------------------------------------------------

/** Numbered lines of text: compressible, every line different. */
function lines(count: number, first = 0): Buffer {
  const out: string[] = [];
  for (let i = first; i < first + count; i++)
    out.push(`MMH-RS legacy vector line ${String(i).padStart(4, "0")}: weight[${(i * 37) % 1000}]\n`);
  return Buffer.from(out.join(""), "utf8");
}

const text = lines(40);
const zstd = (raw: Uint8Array) =>
  zstdCompressSync(raw, { params: { [constants.ZSTD_c_compressionLevel]: 3 } });
const brotli = (raw: Uint8Array) =>
  brotliCompressSync(raw, { params: { [constants.BROTLI_PARAM_QUALITY]: 9 } });
/** A raw LZ4 block: lz4-wasm-nodejs puts the block's decoded size in front of it. */
const lz4 = (raw: Uint8Array) => Buffer.from(lz4Block(raw).subarray(4));

function v120(
  content: Uint8Array,
  extension: string,
  id = sha256(content).slice(0, 16),
  version = "1.2.0",
): Buffer {
  const header = `MMH-RS V${version}\nDETERMINISTIC_ID: file_${id}\nFILE_EXTENSION: ${extension}\n`;
  return Buffer.concat([Buffer.from(header, "latin1"), zstd(content)]);
}

function blob(tag: string, size: number, payload: Uint8Array): Buffer {
  const header = Buffer.alloc(8);
  header.write(tag, 0, "latin1");
  header.writeUInt32LE(size, 4);
  return Buffer.concat([header, payload]);
}

function pattern(count: number, block: Uint8Array): Buffer {
  const header = Buffer.alloc(5);
  header[0] = 0xaa;
  header.writeUInt32LE(count, 1);
  return Buffer.concat([header, block]);
}

const block251 = Buffer.from(Array.from({ length: 251 }, (_, i) => (i * 7 + 3) & 0xff));

// ---- the vectors -------------------------------------------------------------------------

interface Legacy {
  kind: string;
  version: string | null;
  codec: string;
  rawBytes: number | null;
  extension?: string;
}

interface Vector {
  file: string;
  expect: "decode" | "fail";
  description: string;
  fileSha256: string;
  length?: number;
  sha256?: string;
  /** What inspectLegacy must say (must-decode files). */
  legacy?: Legacy;
  code?: string;
  /** The maxOutputBytes to decode with (default: none). */
  maxOutputBytes?: number;
}

const vectors: Vector[] = [];
const files = new Map<string, Buffer>();

async function mustDecode(file: string, description: string, bytes: Buffer, content: Buffer, legacy: Legacy) {
  const decoded = Buffer.from(await decompress(bytes));
  if (!decoded.equals(content)) throw new Error(`${file}: does not decode to its content`);
  files.set(file, bytes);
  vectors.push({
    file,
    expect: "decode",
    description,
    length: content.length,
    sha256: sha256(content),
    legacy,
    fileSha256: sha256(bytes),
  });
}

async function mustFail(
  file: string,
  description: string,
  bytes: Buffer,
  code: string,
  maxOutputBytes?: number,
) {
  const found = await decompress(bytes, { maxOutputBytes }).then(
    () => "no error",
    (error: unknown) => (error instanceof MmhError ? error.code : String(error)),
  );
  if (found !== code) throw new Error(`${file}: gives ${found}, expected ${code}`);
  files.set(file, bytes);
  vectors.push({
    file,
    expect: "fail",
    description,
    code,
    ...(maxOutputBytes !== undefined ? { maxOutputBytes } : {}),
    fileSha256: sha256(bytes),
  });
}

// v1.2.0
const good120 = v120(text, "txt");
await mustDecode("v120-text.mmh", `v1.2.0: ${text.length} bytes of text, extension "txt"`, good120, text, {
  kind: "v1.2.0",
  version: "1.2.0",
  codec: "ZSTD",
  rawBytes: null,
  extension: "txt",
});
const tensorish = Buffer.from(Array.from({ length: 1500 }, (_, i) => (i % 50) * 3));
await mustDecode(
  "v120-no-extension.mmh",
  "v1.2.0: 1500 bytes of periodic data, an empty FILE_EXTENSION",
  v120(tensorish, ""),
  tensorish,
  { kind: "v1.2.0", version: "1.2.0", codec: "ZSTD", rawBytes: null, extension: "" },
);
await mustDecode(
  "v120-empty.mmh",
  'v1.2.0: empty content (a zstd frame of nothing), extension "bin"',
  v120(Buffer.alloc(0), "bin"),
  Buffer.alloc(0),
  { kind: "v1.2.0", version: "1.2.0", codec: "ZSTD", rawBytes: null, extension: "bin" },
);
await mustFail(
  "fail-v120-wrong-id.mmh",
  "v120-text.mmh with a DETERMINISTIC_ID that is not the content's SHA-256 prefix (last digit changed)",
  v120(text, "txt", `${sha256(text).slice(0, 15)}${sha256(text)[15] === "0" ? "1" : "0"}`),
  "E_CHECKSUM",
);
await mustFail(
  "fail-v120-truncated.mmh",
  "v120-text.mmh cut 5 bytes before the end of its zstd frame",
  good120.subarray(0, good120.length - 5),
  "E_TRUNCATED",
);
await mustFail(
  "fail-v120-header-cut.mmh",
  "v120-text.mmh cut in its second header line",
  good120.subarray(0, 30),
  "E_TRUNCATED",
);
await mustFail(
  "fail-v120-trailing-bytes.mmh",
  "v120-text.mmh with a newline after its zstd frame",
  Buffer.concat([good120, Buffer.from("\n")]),
  "E_CORRUPT",
);
await mustFail(
  "fail-v120-two-frames.mmh",
  "v120-text.mmh with a second zstd frame of the same content after the first (one frame only)",
  Buffer.concat([good120, zstd(text)]),
  "E_CORRUPT",
);
await mustFail(
  "fail-v120-version-1.3.0.mmh",
  "v120-text.mmh with the first line MMH-RS V1.3.0",
  v120(text, "txt", undefined, "1.3.0"),
  "E_UNSUPPORTED",
);
await mustFail(
  "fail-v120-bad-id-line.mmh",
  "v1.2.0 header whose DETERMINISTIC_ID has 15 hex digits",
  v120(text, "txt", sha256(text).slice(0, 15)),
  "E_CORRUPT",
);
await mustFail(
  "fail-v120-over-limit.mmh",
  `v120-text.mmh decoded with maxOutputBytes 1000, under its ${text.length} bytes`,
  good120,
  "E_LIMIT",
  1000,
);

// v1.2.5 codec blobs
const payloads = { ZSTD: zstd(text), "LZ4 ": lz4(text), BROT: brotli(text), NONE: text } as const;
for (const [tag, payload] of Object.entries(payloads)) {
  const name = tag.trim().toLowerCase();
  await mustDecode(
    `v125-${name}.bin`,
    `v1.2.5 ${tag.trim()} blob: ${text.length} bytes of text`,
    blob(tag, text.length, payload),
    text,
    { kind: "v1.2.5", version: "1.2.5", codec: tag, rawBytes: text.length },
  );
  await mustFail(
    `fail-v125-${name}-size-bigger.bin`,
    `v125-${name}.bin declaring one byte more than its payload holds`,
    blob(tag, text.length + 1, payload),
    "E_CORRUPT",
  );
  await mustFail(
    `fail-v125-${name}-size-smaller.bin`,
    `v125-${name}.bin declaring one byte less than its payload holds`,
    blob(tag, text.length - 1, payload),
    "E_CORRUPT",
  );
  await mustFail(
    `fail-v125-${name}-huge-size.bin`,
    `v125-${name}.bin declaring 4 GiB - 1 bytes${tag === "NONE" ? ", decoded with maxOutputBytes 1 MiB" : ": more than its codec can code in that payload"}`,
    blob(tag, 0xffffffff, payload),
    "E_LIMIT",
    tag === "NONE" ? 1 << 20 : undefined,
  );
}
await mustDecode(
  "v125-none-empty.bin",
  "v1.2.5 NONE blob of size 0 and no payload",
  blob("NONE", 0, Buffer.alloc(0)),
  Buffer.alloc(0),
  {
    kind: "v1.2.5",
    version: "1.2.5",
    codec: "NONE",
    rawBytes: 0,
  },
);
await mustDecode(
  "v125-lz4-empty.bin",
  "v1.2.5 LZ4 blob of size 0: the empty LZ4 block (one zero token)",
  blob("LZ4 ", 0, lz4(Buffer.alloc(0))),
  Buffer.alloc(0),
  {
    kind: "v1.2.5",
    version: "1.2.5",
    codec: "LZ4 ",
    rawBytes: 0,
  },
);
const zstdBlob = blob("ZSTD", text.length, payloads.ZSTD);
await mustFail(
  "fail-v125-header-cut.bin",
  "a ZSTD blob cut after 6 bytes, in its size",
  zstdBlob.subarray(0, 6),
  "E_TRUNCATED",
);
await mustFail(
  "fail-v125-zstd-truncated.bin",
  "v125-zstd.bin cut 4 bytes before the end of its frame",
  zstdBlob.subarray(0, zstdBlob.length - 4),
  "E_TRUNCATED",
);
await mustFail(
  "fail-v125-zstd-trailing-bytes.bin",
  "v125-zstd.bin with one byte after its frame",
  Buffer.concat([zstdBlob, Buffer.from([0])]),
  "E_CORRUPT",
);
await mustFail(
  "fail-v125-lz4-bad-block.bin",
  "v125-lz4.bin with its first match offset set to 0xFFFF, before the start of the output",
  ((b) => {
    // The first sequence: a token, literal length bytes, the literals, then the offset.
    const token = b[8];
    let pos = 9;
    let literals = token >> 4;
    if (literals === 15) {
      let byte = 255;
      while (byte === 255) {
        byte = b[pos++];
        literals += byte;
      }
    }
    b.writeUInt16LE(0xffff, pos + literals);
    return b;
  })(blob("LZ4 ", text.length, payloads["LZ4 "])),
  "E_CORRUPT",
);
await mustFail(
  "fail-v125-over-limit.bin",
  `v125-zstd.bin decoded with maxOutputBytes 1000, under its declared ${text.length} bytes`,
  zstdBlob,
  "E_LIMIT",
  1000,
);
await mustFail(
  "fail-unknown-tag.bin",
  'a blob with the tag "ZSTX", which MMH-RS never wrote',
  blob("ZSTX", text.length, payloads.ZSTD),
  "E_CORRUPT",
);
await mustFail(
  "fail-lowercase-tag.bin",
  'a blob with the tag "zstd" (tags are upper case)',
  blob("zstd", text.length, payloads.ZSTD),
  "E_CORRUPT",
);
await mustFail(
  "fail-hpc1.bin",
  "an HPC1 hierarchical blob (tag, a size, zstd bytes): the format never worked in MMH-RS",
  blob("HPC1", text.length, payloads.ZSTD),
  "E_UNSUPPORTED",
);
await mustFail(
  "fail-plain-zstd-frame.bin",
  "a bare zstd frame, no header: not an .mmh file nor a legacy one",
  Buffer.from(payloads.ZSTD),
  "E_CORRUPT",
);

// Pattern251
await mustDecode(
  "pattern251.bin",
  "Pattern251: a 251-byte block repeated 5 times",
  pattern(5, block251),
  Buffer.concat(Array(5).fill(block251)),
  {
    kind: "pattern251",
    version: null,
    codec: "P251",
    rawBytes: 5 * 251,
  },
);
await mustFail(
  "fail-pattern251-zero-count.bin",
  "pattern251.bin with a repeat count of 0",
  pattern(0, block251),
  "E_CORRUPT",
);
await mustFail(
  "fail-pattern251-too-long.bin",
  "pattern251.bin with one byte more (257 bytes)",
  Buffer.concat([pattern(5, block251), Buffer.from([0])]),
  "E_CORRUPT",
);
await mustFail(
  "fail-pattern251-too-short.bin",
  "pattern251.bin without its last byte (255 bytes)",
  pattern(5, block251).subarray(0, 255),
  "E_CORRUPT",
);
await mustFail(
  "fail-pattern251-huge-count.bin",
  "pattern251.bin with a repeat count of 2^32 - 1 (about 1 TB), decoded with maxOutputBytes 1 MiB",
  pattern(0xffffffff, block251),
  "E_LIMIT",
  1 << 20,
);

// ---- write -----------------------------------------------------------------------------------

for (const [file, bytes] of files)
  if (bytes.length >= MAX_FILE) throw new Error(`${file} is ${bytes.length} bytes, over ${MAX_FILE}`);

const README =
  "FROZEN vectors of legacy MMH-RS files (docs/FORMAT.md, 'Legacy MMH-RS files'), made from the format descriptions by scripts/make-legacy-vectors.ts and checked by test/legacy.test.ts. Never edit or regenerate them: each 'decode' file must decode to content of the listed length and sha256, and each 'fail' file must be refused with exactly the listed code (decoded with maxOutputBytes when one is listed).";
const manifestPath = join(DIR, "manifest.json");
const committed = existsSync(manifestPath)
  ? (JSON.parse(readFileSync(manifestPath, "utf8")) as { vectors: Vector[] })
  : undefined;
const committedByFile = new Map((committed?.vectors ?? []).map((v) => [v.file, v]));
const changed: string[] = [];
const added: string[] = [];
for (const [i, vector] of vectors.entries()) {
  const path = join(DIR, vector.file);
  if (!existsSync(path)) {
    added.push(vector.file);
    continue;
  }
  const bytes = readFileSync(path);
  if (bytes.equals(files.get(vector.file)!)) continue;
  // Made differently now: the committed file and entry stay, and must still hold.
  const entry = committedByFile.get(vector.file);
  if (!entry || sha256(bytes) !== entry.fileSha256) {
    changed.push(vector.file);
    continue;
  }
  const result = await decompress(bytes, { maxOutputBytes: entry.maxOutputBytes }).then(
    (content) => (content.length === entry.length && sha256(content) === entry.sha256 ? "decode" : "wrong"),
    (error: unknown) => (error instanceof MmhError ? error.code : String(error)),
  );
  if (result !== (entry.expect === "decode" ? "decode" : entry.code)) changed.push(vector.file);
  vectors[i] = entry;
  files.set(vector.file, bytes);
}
const manifestText = `${JSON.stringify({ README, vectors }, null, 2)}\n`;
const manifestChanged = !existsSync(manifestPath) || readFileSync(manifestPath, "utf8") !== manifestText;
for (const entry of committed?.vectors ?? []) {
  const now = vectors.find((v) => v.file === entry.file);
  if (JSON.stringify(now) !== JSON.stringify(entry)) changed.push(`manifest.json (${entry.file})`);
}
if (changed.length > 0) {
  process.stderr.write(`make-legacy-vectors: these frozen files would change: ${changed.join(", ")}\n`);
  process.exitCode = 1;
} else if (checkOnly) {
  if (added.length > 0 || manifestChanged) {
    process.stderr.write(
      `make-legacy-vectors --check: missing: ${[...added, ...(manifestChanged ? ["manifest.json"] : [])].join(", ")}\n`,
    );
    process.exitCode = 1;
  } else
    process.stdout.write(`make-legacy-vectors --check: all ${files.size} vectors and the manifest match\n`);
} else {
  mkdirSync(DIR, { recursive: true });
  for (const file of added) writeFileSync(join(DIR, file), files.get(file)!);
  if (manifestChanged) writeFileSync(manifestPath, manifestText);
  const total = [...files.values()].reduce((sum, bytes) => sum + bytes.length, 0);
  process.stdout.write(
    `make-legacy-vectors: ${files.size} vectors (${total} bytes) in ${DIR}; ${added.length} written${manifestChanged ? ", manifest updated" : ""}\n`,
  );
}
