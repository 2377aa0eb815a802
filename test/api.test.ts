/**
 * The public API (src/index.ts) on real files in a temporary directory.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { crc32 } from "../src/common/crc.ts";
import { gather } from "../src/compress.ts";
import { TRAILER_SIZE } from "../src/container/format.ts";
import {
  compress,
  compressFile,
  decompress,
  decompressFile,
  decompressInto,
  inspect,
  listCodecs,
  verify,
} from "../src/index.ts";
import { generate } from "../src/tools/index.ts";
import { layoutOf, noiseBytes, prng, readRange, rejectsWith, sha256, textBytes } from "./support.ts";

const CHUNK = 4096;
const MNIST = resolve(import.meta.dirname, "../../shared/data/mnist-tinygrad_model.safetensors");
const MNIST_SHA256 = "d8b0a00d4d2f36bedae34eda7afd0f061d9f102f0e978e98d34901c32d8aa6c6";

/** About 10 chunks: text, then noise (stored as NONE), then text again. */
const content = Buffer.concat([
  textBytes(5 * CHUNK + 123, 1),
  noiseBytes(2 * CHUNK, 2),
  textBytes(3 * CHUNK - 7, 3),
]);

let dir = "";
let counter = 0;
const path = (name: string) => join(dir, name);
const fresh = (stem: string) => path(`${stem}-${++counter}`);

async function listing(): Promise<string[]> {
  return (await readdir(dir)).sort();
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "mmh-api-test-"));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("compressFile / decompressFile", () => {
  test("round trip for every codec, with summaries that match the data", async () => {
    const input = fresh("input.bin");
    await writeFile(input, content);
    for (const codec of listCodecs()) {
      const packed = fresh(`${codec.name}.mmh`);
      const unpacked = fresh(`${codec.name}.out`);
      const summary = await compressFile(input, packed, { codec: codec.name, chunkSize: CHUNK });
      assert.equal(summary.rawBytes, content.length);
      assert.equal(summary.storedBytes, (await stat(packed)).size);
      assert.equal(summary.chunks, Math.ceil(content.length / CHUNK));
      assert.equal(summary.sha256, sha256(content));
      assert.equal(
        Object.values(summary.codecs).reduce((a, b) => a + b, 0),
        summary.chunks,
      );
      assert.ok(summary.ms >= 0);
      const back = await decompressFile(packed, unpacked);
      assert.equal(back.rawBytes, content.length);
      assert.equal(back.chunks, summary.chunks);
      assert.deepEqual(back.codecs, summary.codecs);
      assert.equal(back.sha256, sha256(content));
      assert.ok((await readFile(unpacked)).equals(content), `${codec.name}: content differs`);
      // The file is what compress() makes from the same bytes, apart from the source name.
      const inMemory = await compress(content, {
        codec: codec.name,
        chunkSize: CHUNK,
        sourceName: basename(input),
      });
      assert.ok(
        (await readFile(packed)).equals(Buffer.from(inMemory)),
        `${codec.name}: differs from compress()`,
      );
    }
  });

  test("an empty file round trips", async () => {
    const input = fresh("empty");
    await writeFile(input, "");
    const packed = fresh("empty.mmh");
    const out = fresh("empty.out");
    const summary = await compressFile(input, packed);
    assert.equal(summary.chunks, 0);
    assert.equal(summary.sha256, sha256(Buffer.alloc(0)));
    await decompressFile(packed, out);
    assert.equal((await readFile(out)).length, 0);
    const info = await inspect(packed);
    assert.equal(info.chunks.length, 0);
    assert.equal(info.trailer.rawLength, 0);
    assert.equal((await verify(packed)).rawBytes, 0);
  });

  test("a real safetensors file round trips (zstd, default options)", async (t) => {
    if (!existsSync(MNIST)) {
      t.skip(`${MNIST} is not present`);
      return;
    }
    const packed = fresh("mnist.mmh");
    const out = fresh("mnist.out");
    const summary = await compressFile(MNIST, packed);
    assert.equal(summary.sha256, MNIST_SHA256);
    assert.ok(summary.storedBytes < summary.rawBytes, "zstd should shrink float weights a little");
    await decompressFile(packed, out);
    const bytes = await readFile(out);
    assert.equal(createHash("sha256").update(bytes).digest("hex"), MNIST_SHA256);
    assert.equal((await verify(packed)).sha256, MNIST_SHA256);
    const info = await inspect(packed);
    assert.equal(info.trailer.sha256, MNIST_SHA256);
    assert.equal((info.header.metadata.source as { name: string }).name, "mnist-tinygrad_model.safetensors");
  });

  test("refuses to overwrite (E_EXISTS) and leaves the existing file untouched", async () => {
    const input = fresh("input.bin");
    await writeFile(input, content);
    const existing = Buffer.from("precious data, do not touch");
    const target = fresh("target");
    await writeFile(target, existing);
    const before = await listing();
    await rejectsWith(compressFile(input, target), "E_EXISTS");
    assert.ok((await readFile(target)).equals(existing));
    const packed = fresh("packed.mmh");
    await compressFile(input, packed, { chunkSize: CHUNK });
    const beforeDecompress = [...before, basename(packed)].sort();
    await rejectsWith(decompressFile(packed, target), "E_EXISTS");
    assert.ok((await readFile(target)).equals(existing));
    assert.deepEqual(await listing(), beforeDecompress, "no temporary file is left behind");
  });

  test("overwrite: true replaces the file", async () => {
    const input = fresh("input.bin");
    await writeFile(input, content);
    const target = fresh("target");
    await writeFile(target, "old");
    await compressFile(input, target, { overwrite: true, chunkSize: CHUNK });
    assert.equal((await verify(target)).sha256, sha256(content));
    const out = fresh("out");
    await writeFile(out, "old output that is longer than nothing");
    await decompressFile(target, out, { overwrite: true });
    assert.ok((await readFile(out)).equals(content));
  });

  test("a file cannot be compressed onto itself", async () => {
    const input = fresh("self");
    await writeFile(input, content);
    await rejectsWith(compressFile(input, input, { overwrite: true }), ["E_BAD_OPTION", "E_EXISTS"]);
    assert.ok((await readFile(input)).equals(content));
  });

  test("maxOutputBytes: E_LIMIT, and no output or temporary file is left", async () => {
    const packed = fresh("limit.mmh");
    await writeFile(packed, await compress(content, { chunkSize: CHUNK }));
    const before = await listing();
    const out = fresh("limit.out");
    await rejectsWith(decompressFile(packed, out, { maxOutputBytes: content.length - 1 }), "E_LIMIT");
    assert.deepEqual(await listing(), before);
    await rejectsWith(verify(packed, { maxOutputBytes: CHUNK }), "E_LIMIT");
    await rejectsWith(decompress(await readFile(packed), { maxOutputBytes: 0 }), "E_LIMIT");
    await rejectsWith(readRange(packed, 0, 100, { maxOutputBytes: 99 }), "E_LIMIT");
    // Exactly the content length is allowed.
    await decompressFile(packed, out, { maxOutputBytes: content.length });
    assert.ok((await readFile(out)).equals(content));
    await rejectsWith(decompress(await readFile(packed), { maxOutputBytes: -1 }), "E_BAD_OPTION");
    await rejectsWith(decompressFile(packed, fresh("x"), { maxOutputBytes: 1.5 }), "E_BAD_OPTION");
  });

  test("a failed decompressFile leaves no output file and no temporary file", async () => {
    const good = Buffer.from(await compress(content, { chunkSize: CHUNK }));
    const layout = layoutOf(good);
    const damaged: [string, Buffer, string][] = [
      ["truncated", good.subarray(0, good.length - 1), "E_TRUNCATED"],
      ["bad magic", Buffer.concat([Buffer.from("XXXX"), good.subarray(4)]), "E_CORRUPT"],
      [
        "last chunk damaged",
        (() => {
          const b = Buffer.from(good);
          b[layout.records.at(-1)!.end - 2] ^= 0x01;
          return b;
        })(),
        "",
      ],
    ];
    for (const [name, bytes, code] of damaged) {
      const packed = fresh(`${name}.mmh`);
      await writeFile(packed, bytes);
      const before = await listing();
      const out = fresh(`${name}.out`);
      const error = await rejectsWith(
        decompressFile(packed, out),
        code ? (code as "E_CORRUPT") : ["E_CORRUPT", "E_CHECKSUM"],
        `${name}: `,
      );
      assert.ok(error.code.startsWith("E_"));
      assert.deepEqual(await listing(), before, `${name}: directory changed`);
      await rejectsWith(verify(packed), error.code, `${name} verify: `);
    }
  });

  test("an aborted signal is E_ABORTED and leaves no file", async () => {
    const input = fresh("abort.bin");
    await writeFile(input, content);
    const packed = fresh("abort.mmh");
    await writeFile(packed, await compress(content, { chunkSize: CHUNK }));
    const before = await listing();
    const signal = AbortSignal.abort();
    await rejectsWith(compress(content, { signal }), "E_ABORTED");
    await rejectsWith(decompress(await readFile(packed), { signal }), "E_ABORTED");
    await rejectsWith(compressFile(input, fresh("aborted.mmh"), { signal }), "E_ABORTED");
    await rejectsWith(decompressFile(packed, fresh("aborted.out"), { signal }), "E_ABORTED");
    assert.deepEqual(await listing(), before);
  });

  test("a missing input is E_IO and creates nothing", async () => {
    const before = await listing();
    await rejectsWith(compressFile(path("does-not-exist"), fresh("x.mmh")), "E_IO");
    await rejectsWith(decompressFile(path("does-not-exist.mmh"), fresh("x.out")), "E_IO");
    await rejectsWith(verify(path("does-not-exist.mmh")), "E_IO");
    await rejectsWith(inspect(path("does-not-exist.mmh")), "E_IO");
    await rejectsWith(readRange(path("does-not-exist.mmh"), 0, 1), "E_IO");
    assert.deepEqual(await listing(), before);
  });

  test("an unwritable output is E_IO and leaves no temporary file", async () => {
    const input = fresh("io.bin");
    await writeFile(input, content);
    await rejectsWith(compressFile(input, path("no-such-dir/x.mmh")), "E_IO");
    const target = fresh("a-directory");
    await mkdir(target);
    const before = await listing();
    await rejectsWith(compressFile(input, target), "E_EXISTS");
    await rejectsWith(compressFile(input, target, { overwrite: true, chunkSize: CHUNK }), "E_IO");
    assert.deepEqual(await listing(), before);
    assert.ok((await stat(target)).isDirectory());
  });

  test("a directory as input is E_IO", async () => {
    await rejectsWith(inspect(dir), "E_IO");
    await rejectsWith(verify(dir), "E_IO");
  });

  test("bytes where a path belongs are E_BAD_OPTION, with a one-line message", async () => {
    const bytes = Buffer.from(await compress(Buffer.from("x".repeat(100))));
    await rejectsWith(inspect(bytes as unknown as string), "E_BAD_OPTION");
    await inspect(bytes as unknown as string).catch((error: Error) =>
      assert.ok(!error.message.includes("\n") && error.message.length < 100, error.message),
    );
  });

  test("bad options are E_BAD_OPTION, before anything is written", async () => {
    const input = fresh("input.bin");
    await writeFile(input, content);
    const before = await listing();
    const bad = [
      { chunkSize: 0 },
      { chunkSize: CHUNK - 1 },
      { chunkSize: (64 << 20) + 1 },
      { chunkSize: 5000.5 },
      { codec: "gzip" },
      { codec: "" },
      { codec: "zstd", level: 0 },
      { codec: "zstd", level: 23 },
      { codec: "brotli", level: 12 },
      { codec: "lz4", level: 1 },
    ];
    for (const options of bad) {
      const label = `${JSON.stringify(options)}: `;
      await rejectsWith(compressFile(input, fresh("bad.mmh"), options), "E_BAD_OPTION", label);
      await rejectsWith(compress(content, options), "E_BAD_OPTION", label);
    }
    assert.deepEqual(await listing(), before);
    // Names are case-insensitive and FourCCs and aliases work.
    for (const codec of ["ZSTD", "zst", "Brotli", "br", "LZ4", "stored", "NONE"]) {
      assert.ok((await compress(Buffer.from("x"), { codec })).length > 0, codec);
    }
  });
});

describe("inspect / verify", () => {
  let packed = "";
  let input = "";

  before(async () => {
    input = fresh("inspect.bin");
    await writeFile(input, content);
    packed = fresh("inspect.mmh");
    await compressFile(input, packed, { codec: "zstd", level: 5, chunkSize: CHUNK });
  });

  test("inspect() reports the header, trailer, chunk table and codec counts", async () => {
    const info = await inspect(packed);
    const file = await readFile(packed);
    assert.equal(info.fileBytes, file.length);
    assert.equal(info.header.version, 1);
    assert.equal(info.header.flags, 0);
    const metadata = info.header.metadata as {
      encoder: Record<string, unknown>;
      source: Record<string, unknown>;
    };
    assert.deepEqual(metadata.encoder, { codec: "zstd", level: 5, chunkSize: CHUNK });
    assert.equal(metadata.source.name, basename(input));
    assert.equal(info.trailer.sha256, createHash("sha256").update(content).digest("hex"));
    assert.equal(info.trailer.rawLength, content.length);
    assert.equal(info.trailer.chunkCount, Math.ceil(content.length / CHUNK));
    assert.equal(info.chunks.length, info.trailer.chunkCount);
    // Codec counts agree with the chunk table and with the records in the file.
    const fromTable: Record<string, number> = {};
    for (const chunk of info.chunks) fromTable[chunk.codec] = (fromTable[chunk.codec] ?? 0) + 1;
    assert.deepEqual(info.codecs, fromTable);
    const fromFile: Record<string, number> = {};
    for (const record of layoutOf(file).records) fromFile[record.codec] = (fromFile[record.codec] ?? 0) + 1;
    assert.deepEqual(info.codecs, fromFile);
    assert.equal(info.codecs.NONE, 2, "the two noise chunks are stored as NONE");
    assert.equal(info.codecs.ZSTD, info.chunks.length - 2);
    // The chunk table tiles the content and the file.
    let rawOffset = 0;
    for (const [i, chunk] of info.chunks.entries()) {
      assert.equal(chunk.rawOffset, rawOffset);
      assert.equal(chunk.recordOffset, layoutOf(file).records[i].offset);
      rawOffset += chunk.rawLength;
    }
    assert.equal(rawOffset, content.length);
  });

  test("verify() passes on a good file", async () => {
    const summary = await verify(packed);
    assert.equal(summary.rawBytes, content.length);
    assert.equal(summary.storedBytes, (await stat(packed)).size);
    assert.equal(summary.sha256, sha256(content));
    assert.equal(summary.chunks, Math.ceil(content.length / CHUNK));
  });

  test("verify() rejects corrupted files with the right code", async () => {
    const good = await readFile(packed);
    const layout = layoutOf(good);
    const noneRecord = layout.records.find((record) => record.codec === "NONE")!;
    const cases: [string, (b: Buffer) => Buffer, string][] = [
      [
        "NONE payload bit",
        (b) => {
          b[noneRecord.payloadOffset + 100] ^= 0x04;
          return b;
        },
        "E_CHECKSUM",
      ],
      [
        "header metadata byte",
        (b) => {
          b[25] ^= 0x01;
          return b;
        },
        "E_CHECKSUM",
      ],
      ["truncated", (b) => b.subarray(0, b.length - 10), "E_TRUNCATED"],
      ["trailing byte", (b) => Buffer.concat([b, Buffer.from([0])]), "E_CORRUPT"],
      [
        "version 9",
        (b) => {
          b.writeUInt16LE(9, 8);
          return b;
        },
        "E_UNSUPPORTED",
      ],
    ];
    for (const [name, damage, code] of cases) {
      const bad = fresh(`${name}.mmh`);
      await writeFile(bad, damage(Buffer.from(good)));
      await rejectsWith(verify(bad), code as "E_CHECKSUM", `${name}: `);
      await rejectsWith(decompress(await readFile(bad)), code as "E_CHECKSUM", `${name} (decompress): `);
    }
  });
});

describe("readRange", () => {
  let packed = "";

  before(async () => {
    packed = fresh("range.mmh");
    await writeFile(packed, await compress(content, { codec: "lz4", chunkSize: CHUNK }));
  });

  test("equals the slice for many random ranges, across chunk boundaries", async () => {
    const next = prng(2024);
    const ranges: [number, number][] = [
      [0, content.length],
      [0, 1],
      [content.length - 1, 1],
      [CHUNK - 1, 2],
      [CHUNK, CHUNK],
      [CHUNK - 5, CHUNK + 10],
      [2 * CHUNK - 1, 3 * CHUNK + 2],
    ];
    for (let i = 0; i < 60; i++) {
      const offset = Math.floor(next() * content.length);
      const length = Math.floor(next() * Math.min(content.length - offset, next() < 0.5 ? 64 : 3 * CHUNK));
      ranges.push([offset, length]);
    }
    for (const [offset, length] of ranges) {
      const got = await readRange(packed, offset, length);
      assert.equal(got.length, length);
      assert.ok(
        Buffer.from(got).equals(content.subarray(offset, offset + length)),
        `range ${offset}+${length} differs`,
      );
    }
  });

  test("zero length anywhere, including at the very end", async () => {
    for (const offset of [0, 1, CHUNK, content.length - 1, content.length]) {
      assert.equal((await readRange(packed, offset, 0)).length, 0);
    }
  });

  test("past the end is E_NOT_FOUND; bad numbers are E_BAD_OPTION", async () => {
    await rejectsWith(readRange(packed, content.length, 1), "E_NOT_FOUND");
    await rejectsWith(readRange(packed, content.length + 1, 0), "E_NOT_FOUND");
    await rejectsWith(readRange(packed, 0, content.length + 1), "E_NOT_FOUND");
    await rejectsWith(readRange(packed, content.length - 10, 11), "E_NOT_FOUND");
    await rejectsWith(readRange(packed, Number.MAX_SAFE_INTEGER, 1), "E_NOT_FOUND");
    await rejectsWith(readRange(packed, -1, 1), "E_BAD_OPTION");
    await rejectsWith(readRange(packed, 0, -1), "E_BAD_OPTION");
    await rejectsWith(readRange(packed, 0.5, 1), "E_BAD_OPTION");
    await rejectsWith(readRange(packed, Number.NaN, 1), "E_BAD_OPTION");
  });

  test("a damaged chunk fails only the ranges that touch it", async () => {
    const good = await readFile(packed);
    const layout = layoutOf(good);
    const bad = Buffer.from(good);
    const victim = 3;
    bad[layout.records[victim].end - 1] ^= 0x01;
    const damaged = fresh("range-damaged.mmh");
    await writeFile(damaged, bad);
    const chunkStart = victim * CHUNK;
    assert.ok(Buffer.from(await readRange(damaged, 0, chunkStart)).equals(content.subarray(0, chunkStart)));
    await rejectsWith(readRange(damaged, chunkStart, 1), ["E_CORRUPT", "E_CHECKSUM"]);
    await rejectsWith(readRange(damaged, chunkStart - 1, 2), ["E_CORRUPT", "E_CHECKSUM"]);
  });
});

describe("decompress() of a buffer", () => {
  test("decodes into one buffer sized from the index: every codec, a pool, a damaged index", async () => {
    const mnist = await readFile(MNIST);
    // Over POOL_AFTER_BYTES (8 MiB) of content, so that with 2 threads a pool decodes some chunks.
    const data = Buffer.concat([mnist, content, noiseBytes(9 << 20, 5), content, textBytes(12345, 6)]);
    const digest = sha256(data);
    for (const codec of ["auto", "hier", "zstd", "lz4", "none"]) {
      for (const threads of [1, 2]) {
        const packed = await compress(data, { codec, chunkSize: 1 << 20, threads });
        const back = await decompress(packed, { threads });
        assert.equal(back.length, data.length, `${codec} -T${threads}: length`);
        assert.equal(sha256(back), digest, `${codec} -T${threads}: content`);
      }
    }
    // A container whose index cannot be read first is decoded front to back all the same,
    // and fails with the front-to-back decoder's own error.
    const packed = Buffer.from(await compress(data, { chunkSize: 1 << 20, threads: 1 }));
    packed[packed.length - 20] ^= 1;
    await rejectsWith(decompress(packed), "E_CHECKSUM");
  });
});

describe("compress() of a buffer", () => {
  test("gather writes the pieces in order, grows past its capacity, and copies out a short output", async () => {
    const pieces = [textBytes(1000, 1), noiseBytes(5000, 2), textBytes(3, 3), noiseBytes(70000, 4)];
    const whole = Buffer.concat(pieces);
    async function* parts() {
      // Each piece is handed out from memory reused for the next, as the encoder's are.
      const reused = new Uint8Array(70000);
      for (const piece of pieces) {
        reused.set(piece);
        yield reused.subarray(0, piece.length);
      }
    }
    for (const capacity of [1, 5000, whole.length, whole.length + 10, 3 * whole.length]) {
      const out = await gather(parts(), capacity);
      assert.ok(Buffer.from(out).equals(whole), `capacity ${capacity}`);
      assert.ok(out.buffer.byteLength <= 2 * whole.length, `capacity ${capacity}: no more than twice kept`);
    }
    assert.equal((await gather((async function* () {})(), 100)).length, 0);
  });

  test("the same container bytes as compressFile(), for 1 and 2 threads", async () => {
    const mnist = await readFile(MNIST);
    const dir = await mkdtemp(join(tmpdir(), "mmh-buffer-"));
    try {
      for (const threads of [1, 2]) {
        for (const goal of ["speed", "balanced"] as const) {
          const options = { goal, threads, chunkSize: 1 << 16, sourceName: basename(MNIST) };
          const packed = await compress(mnist, options);
          const dst = join(dir, `${goal}-${threads}.mmh`);
          await compressFile(MNIST, dst, options);
          assert.ok(Buffer.from(packed).equals(await readFile(dst)), `${goal} -T${threads}`);
          assert.equal(sha256(await decompress(packed)), sha256(mnist));
        }
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("decompressInto", () => {
  // Several chunks of real-like weights and text, so threads and codecs vary.
  const content = Buffer.concat([
    generate({ kind: "safetensors", dtype: "BF16", size: 3 << 19 }),
    textBytes(300_000, 5),
    noiseBytes(70_000, 9),
  ]);
  let packed: Uint8Array;
  before(async () => {
    packed = await compress(content, { chunkSize: 256 << 10 });
  });

  test("decodes into a view at any offset of the caller's memory, and writes nothing past the content", async () => {
    for (const threads of [1, 2]) {
      const memory = new Uint8Array(content.length + 40).fill(7);
      const target = memory.subarray(13);
      const length = await decompressInto(packed, target, { threads });
      assert.equal(length, content.length);
      assert.deepEqual(Buffer.from(target.subarray(0, length)), content, `threads ${threads}`);
      assert.deepEqual(memory.subarray(0, 13), new Uint8Array(13).fill(7));
      assert.deepEqual(target.subarray(length), new Uint8Array(27).fill(7));
    }
  });

  test("a target one byte short, or a content over maxOutputBytes, is E_LIMIT with nothing written", async () => {
    const short = new Uint8Array(content.length - 1).fill(3);
    await rejectsWith(decompressInto(packed, short), "E_LIMIT");
    assert.ok(short.every((b) => b === 3));
    const roomy = new Uint8Array(content.length).fill(3);
    await rejectsWith(decompressInto(packed, roomy, { maxOutputBytes: content.length - 1 }), "E_LIMIT");
    assert.ok(roomy.every((b) => b === 3));
  });

  test("damaged or foreign bytes give coded errors", async () => {
    const target = new Uint8Array(content.length);
    const damaged = Uint8Array.from(packed);
    damaged[Math.floor(damaged.length / 2)] ^= 0x40;
    const error = await decompressInto(damaged, target).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(error instanceof Error && "code" in error && typeof error.code === "string", String(error));
    await rejectsWith(decompressInto(new Uint8Array(64), target), "E_CORRUPT");
    await rejectsWith(decompressInto(packed, target, { threads: 0 }), "E_BAD_OPTION");
  });

  test("a trailer whose content length disagrees with the chunks is E_CORRUPT, nothing written past it", async () => {
    // The content is sized from the trailer alone (its CRC-32 made right here): the chunks
    // must still fill exactly that many bytes.
    for (const delta of [-1, 1]) {
      const lying = Buffer.from(packed);
      const at = lying.length - TRAILER_SIZE;
      lying.writeBigUInt64LE(BigInt(content.length + delta), at + 16);
      lying.writeUInt32LE(crc32(lying.subarray(at, at + 68)), at + 68);
      const target = new Uint8Array(content.length + 8).fill(5);
      await rejectsWith(decompressInto(lying, target), "E_CORRUPT", `delta ${delta}: `);
      assert.ok(
        target.subarray(content.length + delta).every((b) => b === 5),
        `delta ${delta}`,
      );
      await rejectsWith(decompress(lying), "E_CORRUPT", `delta ${delta}: `);
    }
  });
});
