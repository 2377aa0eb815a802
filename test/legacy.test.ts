/**
 * Legacy MMH-RS files (docs/FORMAT.md, "Legacy MMH-RS files"): the frozen vectors in
 * test/vectors/legacy/ through every decoding call and the CLI, and what inspect and
 * inspectLegacy say of them.
 */
import assert from "node:assert/strict";
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { zstdCompressSync } from "node:zlib";
import type { ErrorCode } from "../src/common/errors.ts";
import {
  decompress,
  decompressFile,
  decompressFileStream,
  decompressInto,
  decompressStream,
  inspect,
  inspectLegacy,
  type LegacyInspection,
} from "../src/index.ts";
import { assertError, mmhIn } from "./cli-support.ts";
import { rejectsWith, sha256 } from "./support.ts";

const DIR = join(import.meta.dirname, "vectors", "legacy");

interface Vector {
  file: string;
  expect: "decode" | "fail";
  description: string;
  fileSha256: string;
  length?: number;
  sha256?: string;
  legacy?: Omit<LegacyInspection, "fileBytes" | "contentId">;
  code?: ErrorCode;
  maxOutputBytes?: number;
}

const manifest = JSON.parse(readFileSync(join(DIR, "manifest.json"), "utf8")) as {
  README: string;
  vectors: Vector[];
};
const decodes = manifest.vectors.filter((v) => v.expect === "decode");
const fails = manifest.vectors.filter((v) => v.expect === "fail");

const work = mkdtempSync(join(tmpdir(), "mmh-legacy-"));
after(() => rmSync(work, { recursive: true, force: true }));
const mmh = mmhIn(work);

/** `bytes` in pieces of 1 to 17 bytes, as a pipe might deliver them. */
async function* pieces(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  let size = 1;
  for (let at = 0; at < bytes.length; at += size, size = (size * 7 + 3) % 17 || 1)
    yield bytes.subarray(at, at + size);
}

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const piece of stream) parts.push(piece);
  return Buffer.concat(parts);
}

test("the manifest lists every legacy vector, each file unchanged and small", () => {
  assert.match(manifest.README, /FROZEN/);
  const present = readdirSync(DIR)
    .filter((f) => f !== "manifest.json")
    .sort();
  assert.deepEqual(present, manifest.vectors.map((v) => v.file).sort());
  for (const v of manifest.vectors) {
    const bytes = readFileSync(join(DIR, v.file));
    assert.equal(sha256(bytes), v.fileSha256, `${v.file} was modified: the vectors are frozen`);
    assert.ok(bytes.length < 4096, `${v.file} is over 4 KiB`);
  }
  const kinds = new Set(decodes.map((v) => `${v.legacy?.kind} ${v.legacy?.codec}`));
  for (const kind of [
    "v1.2.0 ZSTD",
    "v1.2.5 ZSTD",
    "v1.2.5 LZ4 ",
    "v1.2.5 BROT",
    "v1.2.5 NONE",
    "pattern251 P251",
  ])
    assert.ok(kinds.has(kind), `no vector of ${kind}`);
});

describe("must-decode legacy vectors", () => {
  for (const v of decodes) {
    test(`${v.file}: ${v.description}`, async () => {
      const path = join(DIR, v.file);
      const bytes = readFileSync(path);
      const check = (content: Uint8Array, how: string) => {
        assert.equal(content.length, v.length, `${how}: length`);
        assert.equal(sha256(content), v.sha256, `${how}: content`);
      };
      check(await decompress(bytes), "decompress");
      const into = Buffer.alloc((v.length ?? 0) + 3, 0xa5);
      const written = await decompressInto(bytes, into);
      check(into.subarray(0, written), "decompressInto");
      assert.deepEqual(into.subarray(written), Buffer.alloc(3, 0xa5), "decompressInto: past the content");
      check(await collect(decompressStream(pieces(bytes))), "decompressStream");
      check(await collect(decompressFileStream(path, { threads: 1 })), "decompressFileStream");
      const out = join(work, `${v.file}.out`);
      const summary = await decompressFile(path, out, { overwrite: true });
      check(readFileSync(out), "decompressFile");
      assert.equal(summary.rawBytes, v.length);
      assert.equal(summary.storedBytes, bytes.length);
      const info = await inspectLegacy(path);
      assert.ok(info);
      assert.deepEqual(
        { ...info, contentId: undefined, fileBytes: undefined },
        {
          ...v.legacy,
          contentId: undefined,
          fileBytes: undefined,
        },
      );
      assert.equal(info.fileBytes, bytes.length);
      if (info.kind === "v1.2.0") assert.equal(info.contentId, v.sha256?.slice(0, 16));
      await rejectsWith(inspect(path), "E_UNSUPPORTED");
    });
  }
});

describe("must-fail legacy vectors", () => {
  for (const v of fails) {
    test(`${v.file}: ${v.code}: ${v.description}`, async () => {
      const path = join(DIR, v.file);
      const bytes = readFileSync(path);
      const options = { maxOutputBytes: v.maxOutputBytes };
      await rejectsWith(decompress(bytes, options), v.code!);
      await rejectsWith(collect(decompressStream(pieces(bytes), options)), v.code!);
      const out = join(work, `${v.file}.out`);
      await rejectsWith(decompressFile(path, out, options), v.code!);
      assert.ok(!existsSync(out), "no output file is left");
    });
  }
});

describe("legacy files, beyond the vectors", () => {
  test("inspectLegacy says undefined for an .mmh file, and E_UNSUPPORTED for HPC1", async () => {
    const file = join(work, "real.mmh");
    writeFileSync(file, await import("../src/index.ts").then((m) => m.compress(Buffer.from("real"))));
    assert.equal(await inspectLegacy(file), undefined);
    await rejectsWith(inspectLegacy(join(DIR, "fail-hpc1.bin")), "E_UNSUPPORTED");
  });

  test("a long Pattern251 blob streams out in pieces of about 1 MiB", async () => {
    const bytes = Buffer.from(readFileSync(join(DIR, "pattern251.bin")));
    const count = 20_000;
    bytes.writeUInt32LE(count, 1);
    let total = 0;
    let largest = 0;
    for await (const piece of decompressStream(pieces(bytes))) {
      total += piece.length;
      largest = Math.max(largest, piece.length);
      assert.equal(piece[0], bytes[5]);
    }
    assert.equal(total, count * 251);
    assert.ok(largest <= 4096 * 251, `a piece of ${largest} bytes`);
    await rejectsWith(decompress(bytes, { maxOutputBytes: count * 251 - 1 }), "E_LIMIT");
  });
});

describe("mmh with legacy files", () => {
  const text = readFileSync(join(DIR, "v120-text.mmh"));
  const content = decompress(text);

  test("-d names the output with the stored extension, and info names the version", async () => {
    copyFileSync(join(DIR, "v120-text.mmh"), join(work, "notes.mmh"));
    const r = mmh(["-d", "-q", "notes.mmh"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readFileSync(join(work, "notes.txt")), Buffer.from(await content));
    const info = mmh(["info", "notes.mmh"]);
    assert.equal(info.code, 0, info.stderr);
    assert.match(info.stdout.toString(), /legacy MMH-RS v1\.2\.0 file/);
    const json = JSON.parse(mmh(["info", "--json", "notes.mmh"]).stdout.toString());
    assert.equal(json.version, "1.2.0");
    assert.equal(json.extension, "txt");
    const blob = JSON.parse(mmh(["info", "--json", join(DIR, "v125-brot.bin")]).stdout.toString());
    assert.deepEqual([blob.kind, blob.version, blob.codec, blob.rawBytes], ["v1.2.5", "1.2.5", "BROT", 1754]);
  });

  test("an unsafe stored extension is not used to name the output", () => {
    const raw = Buffer.from("escape attempt\n");
    const id = sha256(raw).slice(0, 16);
    const header = `MMH-RS V1.2.0\nDETERMINISTIC_ID: file_${id}\nFILE_EXTENSION: /../../evil\n`;
    writeFileSync(join(work, "odd.mmh"), Buffer.concat([Buffer.from(header), zstdCompressSync(raw)]));
    const r = mmh(["-d", "-q", "odd.mmh"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readFileSync(join(work, "odd")), raw);
  });

  test("standard input and -c decode legacy files", async () => {
    const r = mmh(["-d", "-c", join(DIR, "v125-lz4.bin")]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout, Buffer.from(await content));
    const piped = mmh(["-d"], readFileSync(join(DIR, "pattern251.bin")));
    assert.equal(piped.code, 0, piped.stderr);
    assert.equal(piped.stdout.length, 5 * 251);
  });

  test("failures: one coded line, exit 1, no output file", () => {
    for (const [file, code, extra] of [
      ["fail-v120-wrong-id.mmh", "E_CHECKSUM", []],
      ["fail-v125-zstd-huge-size.bin", "E_LIMIT", []],
      ["fail-pattern251-huge-count.bin", "E_LIMIT", ["--max-output", "1M"]],
      ["fail-hpc1.bin", "E_UNSUPPORTED", []],
      ["fail-plain-zstd-frame.bin", "E_CORRUPT", []],
      ["fail-pattern251-too-long.bin", "E_CORRUPT", []],
    ] as const) {
      const out = join(work, `${file}.restored`);
      const r = mmh(["-d", join(DIR, file), "-o", out, ...extra]);
      assertError(r, code, 1);
      assert.ok(!existsSync(out), `${file}: no output file`);
    }
    assertError(mmh(["info", join(DIR, "fail-hpc1.bin")]), "E_UNSUPPORTED", 1);
    assert.deepEqual(
      readdirSync(work).filter((f) => f.includes(".tmp")),
      [],
    );
  });
});
