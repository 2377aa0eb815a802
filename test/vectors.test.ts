/**
 * The frozen golden vectors in test/vectors/: every later MMH version must decode the
 * must-decode files to the listed content and refuse the must-fail files with exactly
 * the listed code. This test only reads the committed files; it never regenerates them.
 */
import assert from "node:assert/strict";
import { lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import type { ErrorCode } from "../src/common/errors.ts";
import { bufferSource } from "../src/common/source.ts";
import { MmhReader } from "../src/engine/reader.ts";
import { decompress, decompressStream, ErrorCodes, inspect, open, unpack, verify } from "../src/index.ts";
import { rejectsWith, settle, sha256, structureOf } from "./support.ts";

const DIR = join(import.meta.dirname, "vectors");

interface Vector {
  file: string;
  expect: "decode" | "fail";
  description: string;
  fileSha256: string;
  length?: number;
  sha256?: string;
  codecs?: Record<string, number>;
  code?: ErrorCode;
  /** What each record holds (structureOf in test/support.ts). */
  structure?: string[];
  /** A folder archive's entries, as unpack must restore them. */
  tree?: { path: string; type: string; mode?: number; size?: number; sha256?: string; target?: string }[];
  /** "unpack": the container is sound; listing or restoring its entries must fail. */
  api?: "unpack";
  /** The base file (beside the vectors) a file of DLTA records is decoded against, and its sha256. */
  base?: string;
  baseSha256?: string;
}

const MAX_CHUNK = 64 << 20;

const manifest = JSON.parse(readFileSync(join(DIR, "manifest.json"), "utf8")) as {
  README: string;
  formatVersion: number;
  vectors: Vector[];
};

test("the manifest lists every vector file, and each file is unchanged", () => {
  assert.match(manifest.README, /FROZEN/);
  assert.equal(manifest.formatVersion, 1);
  const listed = manifest.vectors.map((vector) => vector.file).sort();
  const present = readdirSync(DIR)
    .filter((name) => name.endsWith(".mmh"))
    .sort();
  assert.deepEqual(present, listed);
  assert.equal(new Set(listed).size, listed.length, "file names are unique");
  for (const vector of manifest.vectors) {
    const bytes = readFileSync(join(DIR, vector.file));
    assert.equal(sha256(bytes), vector.fileSha256, `${vector.file} was modified: the vectors are frozen`);
    assert.ok(bytes.length < 4096, `${vector.file} is over 4 KiB`);
  }
  // Both kinds are present, and the codecs of the format are all exercised.
  const decodes = manifest.vectors.filter((vector) => vector.expect === "decode");
  const fails = manifest.vectors.filter((vector) => vector.expect === "fail");
  assert.ok(decodes.length >= 6 && fails.length >= 10);
  const codecs = new Set(decodes.flatMap((vector) => Object.keys(vector.codecs ?? {})));
  for (const id of ["NONE", "ZSTD", "LZ4 ", "BROT", "HIER", "P251", "DUPE", "DLTA", "CINT", "CIN2"])
    assert.ok(codecs.has(id), `no vector uses ${id}`);
});

test("the vectors pin every HIER layout and stream method, P251's forms, a long run and an archive", () => {
  const lines = manifest.vectors.flatMap((vector) => vector.structure ?? []);
  for (const id of [...Array(18).keys(), 19])
    assert.ok(
      lines.some((line) => line.startsWith(`HIER layout ${id} `)),
      `no vector holds HIER layout ${id}`,
    );
  const hier = lines.filter((line) => line.startsWith("HIER"));
  const streams = new Set(hier.flatMap((line) => line.slice(line.indexOf(": ") + 2).split(", ")));
  for (const method of [
    "constant",
    "stored",
    "huffman",
    "huffman/single-symbol",
    "huffman/stored-block",
    "zstd",
  ])
    assert.ok(streams.has(method), `no HIER stream is ${method}`);
  for (const K of [2, 3, 4])
    assert.ok(
      [...streams].some((s) => s.startsWith(`context K=${K}`)),
      `no context Huffman stream with K = ${K}`,
    );
  assert.ok(
    [...streams].some((s) => s.includes("zero-bit")),
    "no context codebook of zero bits",
  );
  assert.ok(
    lines.some((line) => /^P251 .*tail (stored|zstd)$/.test(line)),
    "no P251 chunk with a tail",
  );
  assert.ok(
    lines.some((line) => /^P251 .*tail empty$/.test(line)),
    "no P251 chunk without a tail",
  );
  assert.ok(
    lines.some((line) => /^P251 R=(\d+)/.test(line) && Number(/^P251 R=(\d+)/.exec(line)![1]) > MAX_CHUNK),
    "no run over 64 MiB",
  );
  assert.ok(manifest.vectors.some((vector) => vector.tree?.some((e) => e.type === "symlink")));
  assert.ok(
    manifest.vectors.some((vector) => vector.code === "E_UNSUPPORTED" && vector.file.includes("layout")),
  );
});

describe("must-decode vectors", () => {
  for (const vector of manifest.vectors.filter((v) => v.expect === "decode")) {
    test(`${vector.file}: ${vector.description}`, async () => {
      const path = join(DIR, vector.file);
      const bytes = readFileSync(path);
      assert.equal(typeof vector.sha256, "string");
      assert.equal(typeof vector.length, "number");

      if (vector.structure) assert.deepEqual(structureOf(bytes), vector.structure);
      // A file of DLTA records decodes with its base, and refuses to without it.
      const base = vector.base === undefined ? undefined : join(DIR, vector.base);
      if (base) {
        assert.equal(sha256(readFileSync(base)), vector.baseSha256, `${vector.base} was modified`);
        await rejectsWith(decompress(bytes), "E_NOT_FOUND", "without its base: ");
      }
      const content = Buffer.from(await decompress(bytes, { base }));
      assert.equal(content.length, vector.length);
      assert.equal(sha256(content), vector.sha256);

      const summary = await verify(path, { base });
      assert.equal(summary.rawBytes, vector.length);
      assert.equal(summary.sha256, vector.sha256);
      assert.equal(summary.storedBytes, bytes.length);
      assert.deepEqual(summary.codecs, vector.codecs);

      const info = await inspect(path);
      assert.deepEqual(info.codecs, vector.codecs);
      assert.equal(info.trailer.rawLength, vector.length);
      assert.equal(info.trailer.sha256, vector.sha256);

      // Random access: the whole range, then chunk by chunk.
      const reader = await MmhReader.open(bufferSource(bytes), base);
      try {
        assert.equal(sha256(await reader.readRange(0, reader.rawLength)), vector.sha256);
        for (const [i, chunk] of reader.chunks.entries()) {
          if (chunk.rawLength > MAX_CHUNK) {
            // A run is read in ranges: its first, middle and last bytes.
            for (const at of [0, Math.floor(chunk.rawLength / 2), chunk.rawLength - 4096]) {
              const start = chunk.rawOffset + at;
              const part = await reader.readRange(start, 4096);
              assert.ok(Buffer.from(part).equals(content.subarray(start, start + 4096)), `run ${i} at ${at}`);
            }
            continue;
          }
          const raw = await reader.readChunk(i);
          assert.ok(
            Buffer.from(raw).equals(content.subarray(chunk.rawOffset, chunk.rawOffset + chunk.rawLength)),
            `chunk ${i}`,
          );
        }
      } finally {
        await reader.close();
      }

      // Streaming, one byte at a time.
      async function* bytewise(): AsyncGenerator<Uint8Array> {
        for (let i = 0; i < bytes.length; i++) yield bytes.subarray(i, i + 1);
      }
      const parts: Uint8Array[] = [];
      for await (const part of decompressStream(bytewise(), { base })) parts.push(part);
      assert.equal(sha256(Buffer.concat(parts)), vector.sha256);

      // A folder archive restores its tree: modes, the link, every file's bytes.
      if (vector.tree) {
        assert.deepEqual(
          info.footer.entries.map((e) => e.path),
          vector.tree.map((e) => e.path),
        );
        const root = mkdtempSync(join(tmpdir(), "mmh-vectors-"));
        try {
          await unpack(path, join(root, "out"));
          for (const e of vector.tree) {
            const at = join(root, "out", e.path);
            const st = lstatSync(at);
            if (e.type === "symlink") {
              assert.ok(st.isSymbolicLink(), e.path);
              assert.equal(readlinkSync(at), e.target);
              continue;
            }
            assert.equal(st.mode & 0o777, e.mode, `${e.path} mode`);
            if (e.type === "file") assert.equal(sha256(readFileSync(at)), e.sha256, e.path);
            else assert.ok(st.isDirectory(), e.path);
          }
        } finally {
          rmSync(root, { recursive: true, force: true });
        }
      }
    });
  }
});

describe("must-fail vectors", () => {
  for (const vector of manifest.vectors.filter((v) => v.expect === "fail" && v.api === "unpack")) {
    test(`${vector.file}: ${vector.description} -> ${vector.code} (unpack)`, async () => {
      assert.ok(vector.code !== undefined && vector.code in ErrorCodes, `bad code ${vector.code}`);
      const path = join(DIR, vector.file);
      // The container is sound: only a reader of its entries may, and must, refuse it.
      await verify(path);
      await rejectsWith(inspect(path), vector.code, "inspect: ");
      await rejectsWith(open(path), vector.code, "open: ");
      const root = mkdtempSync(join(tmpdir(), "mmh-vectors-"));
      try {
        await rejectsWith(unpack(path, join(root, "out")), vector.code, "unpack: ");
        assert.deepEqual(readdirSync(root), [], "unpack left nothing behind");
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    });
  }
  for (const vector of manifest.vectors.filter((v) => v.expect === "fail" && v.api === undefined)) {
    test(`${vector.file}: ${vector.description} -> ${vector.code}`, async () => {
      assert.ok(vector.code !== undefined && vector.code in ErrorCodes, `bad code ${vector.code}`);
      const path = join(DIR, vector.file);
      const bytes = readFileSync(path);
      // With checkSha256, decompress checks all that verify checks.
      await rejectsWith(decompress(bytes, { checkSha256: true }), vector.code, "decompress: ");
      await rejectsWith(verify(path), vector.code, "verify: ");
      // Without it, every check but the content's sha256 still holds: only the vector that
      // damages that hash alone (its trailer CRC recomputed) decodes, to its true content.
      if (vector.file === "fail-trailer-sha256.mmh") {
        const content = await decompress(bytes);
        const good = manifest.vectors.find((v) => v.file === "multi-chunk-zstd.mmh")!;
        assert.equal(sha256(content), good.sha256);
      } else await rejectsWith(decompress(bytes), vector.code, "decompress without checkSha256: ");
      // Random access need not give the same code (it reads from the end, and cannot
      // check the whole-content sha256), but whatever it refuses, it refuses with a code.
      await settle(async () => {
        const reader = await MmhReader.open(bufferSource(bytes));
        return reader.readRange(0, reader.rawLength);
      });
    });
  }
});
