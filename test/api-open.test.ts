/**
 * The public API's reader (open), its sync calls, and the summaries streaming calls
 * return.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import {
  compress,
  compressFile,
  compressFileStream,
  compressStream,
  compressSync,
  decompress,
  decompressFileStream,
  decompressStream,
  decompressSync,
  open,
  pack,
} from "../src/index.ts";
import { generate } from "../src/tools/index.ts";
import { rejectsWith, sha256, textBytes } from "./support.ts";

const dir = await mkdtemp(join(tmpdir(), "mmh-api-open-"));
after(() => rm(dir, { recursive: true, force: true }));

const model = generate({ kind: "safetensors", dtype: "BF16", size: 256 << 10, seed: 11 });

async function* pieces(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

async function drain(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const part of stream) parts.push(part);
  return Buffer.concat(parts);
}

describe("open", () => {
  test("a path and bytes give the same header, footer and tensors, and tensors read alone", async () => {
    const source = join(dir, "m.safetensors");
    await writeFile(source, model);
    await compressFile(source, `${source}.mmh`, { chunkSize: 16 << 10 });
    const packed = await compress(model, { chunkSize: 16 << 10 });
    await using fromPath = await open(`${source}.mmh`);
    await using fromBytes = await open(packed);
    assert.deepEqual(fromBytes.tensors, fromPath.tensors);
    assert.equal(fromPath.size, model.length);
    assert.equal(fromPath.sha256, sha256(model));
    assert.equal(fromPath.format, "safetensors");
    assert.equal(fromPath.header.metadata.tool !== undefined, true);
    assert.ok(fromPath.chunks.length > 4);
    for (const t of fromPath.tensors) {
      const expected = model.subarray(t.offset, t.offset + t.length);
      assert.ok(Buffer.from(await fromPath.readTensor(t.name)).equals(expected), t.name);
      assert.ok(Buffer.from(await fromBytes.readRange(t.offset, t.length)).equals(expected), t.name);
      assert.ok((await drain(fromPath.tensorStream(t.name))).equals(expected), t.name);
    }
    await rejectsWith(fromPath.readTensor("nope"), "E_NOT_FOUND");
    assert.throws(() => fromPath.tensor("nope"), { code: "E_NOT_FOUND" });
    await rejectsWith(fromPath.readTensor(fromPath.tensors[0].name, { maxOutputBytes: 1 }), "E_LIMIT");
    await rejectsWith(fromPath.readEntry("x"), "E_BAD_OPTION");
  });

  test("a folder archive's files read alone, their sha256 checked", async () => {
    const folder = join(dir, "folder");
    await rm(folder, { recursive: true, force: true });
    await import("node:fs/promises").then((fs) => fs.mkdir(join(folder, "sub"), { recursive: true }));
    await writeFile(join(folder, "a.txt"), textBytes(5000, 1));
    await writeFile(join(folder, "sub", "m.safetensors"), model);
    await pack(folder, `${folder}.mmh`);
    await using archive = await open(`${folder}.mmh`);
    assert.equal(archive.format, "folder");
    assert.deepEqual(
      archive.entries.map((e) => `${e.type} ${e.path}`),
      ["file a.txt", "dir sub", "file sub/m.safetensors"],
    );
    assert.ok(Buffer.from(await archive.readEntry("a.txt")).equals(textBytes(5000, 1)));
    assert.ok((await drain(archive.entryStream("sub/m.safetensors"))).equals(model));
    const t = archive.tensors[0];
    assert.equal(t.file, "sub/m.safetensors");
    assert.ok(Buffer.from(await archive.readTensor(t.name, { file: t.file })).length === t.length);
    await rejectsWith(archive.readEntry("sub"), "E_NOT_FOUND");
  });

  test("what is not a container is refused with a code, a path or bytes alike", async () => {
    await rejectsWith(open(join(dir, "missing.mmh")), "E_IO");
    await rejectsWith(open(new Uint8Array(3)), "E_TRUNCATED");
    await rejectsWith(open(new Uint8Array(200)), "E_CORRUPT");
    // @ts-expect-error: a number is neither a path nor bytes
    await rejectsWith(open(42), "E_BAD_OPTION");
  });
});

describe("compressSync / decompressSync", () => {
  test("the same bytes as compress and decompress, on a model and on text", async () => {
    for (const [bytes, options] of [
      [model, {}],
      [textBytes(100_000, 2), { codec: "zstd", level: 9 }],
    ] as const) {
      const packed = compressSync(bytes, options);
      assert.ok(Buffer.from(packed).equals(Buffer.from(await compress(bytes, options))));
      assert.ok(Buffer.from(decompressSync(packed)).equals(Buffer.from(bytes)));
    }
  });

  test("errors keep their codes across the thread", () => {
    assert.throws(() => decompressSync(new Uint8Array(200)), { name: "MmhError", code: "E_CORRUPT" });
    assert.throws(() => compressSync(new Uint8Array(10), { codec: "nope" }), { code: "E_BAD_OPTION" });
    const packed = compressSync(textBytes(10_000, 3));
    assert.throws(() => decompressSync(packed, { maxOutputBytes: 10 }), { code: "E_LIMIT" });
    // @ts-expect-error: a string is not bytes
    assert.throws(() => compressSync("text"), { code: "E_BAD_OPTION" });
    // A callback cannot cross to the helper thread: a coded refusal, not a DataCloneError.
    const withCallback = { onProgress: () => {} } as Record<string, unknown>;
    assert.throws(() => compressSync(new Uint8Array(10), withCallback), { code: "E_BAD_OPTION" });
  });
});

describe("streaming calls return their summaries", () => {
  test("compressStream and decompressStream: summary after the last piece, and as the return value", async () => {
    const encoded = compressStream(pieces(model, 10_000), { chunkSize: 32 << 10 });
    assert.equal(encoded.summary, undefined);
    const packed = await drain(encoded);
    const s = encoded.summary!;
    assert.equal(s.rawBytes, model.length);
    assert.equal(s.storedBytes, packed.length);
    assert.equal(s.sha256, sha256(model));
    assert.ok(s.ms >= 0);
    const decoded = decompressStream(pieces(packed, 7_000));
    let step = await decoded.next();
    const parts: Uint8Array[] = [];
    while (!step.done) {
      parts.push(step.value);
      step = await decoded.next();
    }
    assert.ok(Buffer.concat(parts).equals(model));
    assert.deepEqual(step.value, decoded.summary);
    assert.equal(step.value.rawBytes, model.length);
    assert.equal(step.value.sha256, sha256(model));
    assert.ok(Buffer.from(await decompress(packed)).equals(model));
  });

  test("a stream's ms counts from its first piece, not from the call", async () => {
    const encoded = compressStream(pieces(textBytes(4096, 5), 1024), { codec: "zstd" });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await drain(encoded);
    assert.ok(encoded.summary!.ms < 1500, `ms ${encoded.summary!.ms} includes the wait before iterating`);
  });

  test("compressFileStream and decompressFileStream too", async () => {
    const source = join(dir, "s.safetensors");
    await writeFile(source, model);
    const encoded = compressFileStream(source);
    const packed = await drain(encoded);
    assert.equal(encoded.summary?.storedBytes, packed.length);
    await writeFile(`${source}.mmh`, packed);
    const decoded = decompressFileStream(`${source}.mmh`);
    assert.ok((await drain(decoded)).equals(model));
    assert.equal(decoded.summary?.chunks, encoded.summary?.chunks);
  });
});
