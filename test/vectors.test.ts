/**
 * The frozen golden vectors in test/vectors/: every later MMH version must decode the
 * must-decode files to the listed content and refuse the must-fail files with exactly
 * the listed code. This test only reads the committed files; it never regenerates them.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import type { ErrorCode } from "../src/common/errors.ts";
import { bufferSource, MmhReader } from "../src/engine/reader.ts";
import { decompress, decompressStream, ErrorCodes, inspect, verify } from "../src/index.ts";
import { rejectsWith, settle, sha256 } from "./support.ts";

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
}

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
  for (const id of ["NONE", "ZSTD", "LZ4 ", "BROT"]) assert.ok(codecs.has(id), `no vector uses ${id}`);
});

describe("must-decode vectors", () => {
  for (const vector of manifest.vectors.filter((v) => v.expect === "decode")) {
    test(`${vector.file}: ${vector.description}`, async () => {
      const path = join(DIR, vector.file);
      const bytes = readFileSync(path);
      assert.equal(typeof vector.sha256, "string");
      assert.equal(typeof vector.length, "number");

      const content = Buffer.from(await decompress(bytes));
      assert.equal(content.length, vector.length);
      assert.equal(sha256(content), vector.sha256);

      const summary = await verify(path);
      assert.equal(summary.rawBytes, vector.length);
      assert.equal(summary.sha256, vector.sha256);
      assert.equal(summary.storedBytes, bytes.length);
      assert.deepEqual(summary.codecs, vector.codecs);

      const info = await inspect(path);
      assert.deepEqual(info.codecs, vector.codecs);
      assert.equal(info.trailer.rawLength, vector.length);
      assert.equal(info.trailer.sha256, vector.sha256);

      // Random access: the whole range, then chunk by chunk.
      const reader = await MmhReader.open(bufferSource(bytes));
      try {
        assert.equal(sha256(await reader.readRange(0, reader.rawLength)), vector.sha256);
        for (const [i, chunk] of reader.chunks.entries()) {
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
      for await (const part of decompressStream(bytewise())) parts.push(part);
      assert.equal(sha256(Buffer.concat(parts)), vector.sha256);
    });
  }
});

describe("must-fail vectors", () => {
  for (const vector of manifest.vectors.filter((v) => v.expect === "fail")) {
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
