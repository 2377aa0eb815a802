/**
 * The stream faces of the encoder and decoder (src/engine/streams.ts): Node Transforms
 * and Web TransformStream-shaped pairs. Round trips with the input in random pieces, the
 * same bytes as compressStream(), front-to-back decoding, coded errors at the right point
 * of the output, and bounded memory with a slow or stopped consumer.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable, type Transform, Writable } from "node:stream";
import { finished, pipeline } from "node:stream/promises";
import { describe, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import fc from "fast-check";
import {
  type CompressOptions,
  compress,
  compressFile,
  compressFileStream,
  compressStream,
  createCompressStream,
  createCompressTransformStream,
  createDecompressStream,
  createDecompressTransformStream,
  decompress,
  decompressFileStream,
  decompressStream,
  MmhError,
} from "../src/index.ts";
import { generate } from "../src/tools/index.ts";
import {
  copyOf,
  layoutOf,
  noiseBytes,
  once,
  prng,
  rejectsWith,
  sha256,
  textBytes,
  throwsWith,
} from "./support.ts";

const CHUNK = 4096;
const MiB = 1 << 20;

// ---- content and plumbing -----------------------------------------------------------------

const KINDS = ["text", "noise", "bf16-safetensors", "periodic", "zeros"] as const;
type Kind = (typeof KINDS)[number];

function contentOf(kind: Kind, size: number, seed: number): Buffer {
  switch (kind) {
    case "text":
      return textBytes(size, seed);
    case "noise":
      return noiseBytes(size, seed);
    case "bf16-safetensors":
      return generate({ kind: "safetensors", size, dtype: "BF16", seed });
    case "periodic":
      return generate({ kind: "periodic", size, seed, period: 1 + (seed % 600) });
    case "zeros":
      return Buffer.alloc(size);
  }
}

/** Cut bytes into pieces whose sizes cycle through `sizes`. */
function cut(bytes: Uint8Array, sizes: readonly number[]): Uint8Array[] {
  const pieces: Uint8Array[] = [];
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const n = sizes[i % sizes.length];
    pieces.push(bytes.subarray(at, at + n));
    at += n;
  }
  return pieces;
}

/** A Writable that keeps what it is given, synchronously (nothing is left buffered on an error). */
function collector(into: Buffer[]): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      into.push(chunk);
      callback();
    },
  });
}

/** Pieces through a Node stream; resolves with all it emitted. */
async function throughNode(stream: Transform, pieces: Uint8Array[]): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(Readable.from(pieces), stream, collector(out));
  return Buffer.concat(out);
}

/** A Web ReadableStream over pieces, one per pull. */
function webSource(pieces: Uint8Array[]): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i < pieces.length) controller.enqueue(pieces[i++]);
      else controller.close();
    },
  });
}

/** Read a Web stream to its end, keeping what arrived before any error. */
async function readWeb(readable: ReadableStream<Uint8Array>, into: Uint8Array[] = []): Promise<Buffer> {
  for await (const part of readable) into.push(part);
  return Buffer.concat(into);
}

function throughWeb(pair: TransformStream<Uint8Array, Uint8Array>, pieces: Uint8Array[]): Promise<Buffer> {
  return readWeb(webSource(pieces).pipeThrough(pair));
}

/** What the async generator API writes for the same content and options. */
async function viaGenerator(content: Uint8Array, options: CompressOptions): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const part of compressStream(once(content), options)) parts.push(part);
  return Buffer.concat(parts);
}

const arbCase = fc
  .record({
    kind: fc.constantFrom(...KINDS),
    size: fc.integer({ min: 0, max: 12 * CHUNK }),
    seed: fc.integer({ min: 1, max: 10_000 }),
    codec: fc.constantFrom("auto", "zstd", "lz4", "none", "p251", "hier"),
    chunkSize: fc.constantFrom(CHUNK, 2 * CHUNK),
  })
  .chain((c) =>
    fc
      .record({
        writeSizes: fc.array(fc.integer({ min: 1, max: 3 * c.chunkSize }), { minLength: 1, maxLength: 12 }),
        readSizes: fc.array(fc.integer({ min: 1, max: 3 * c.chunkSize }), { minLength: 1, maxLength: 12 }),
      })
      .map((sizes) => ({ ...c, ...sizes })),
  );

// ---- round trips ----------------------------------------------------------------------------

describe("round trips in random pieces", () => {
  test("Node streams: the same bytes as compressStream(), and they decode back", async () => {
    await fc.assert(
      fc.asyncProperty(arbCase, async ({ kind, size, seed, codec, chunkSize, writeSizes, readSizes }) => {
        const content = contentOf(kind, size, seed);
        const options = { codec, chunkSize, threads: 1 };
        const stream = createCompressStream(options);
        let reported: unknown;
        stream.on("summary", (summary) => {
          reported = summary;
        });
        const packed = await throughNode(stream, cut(content, writeSizes));
        assert.ok(packed.equals(await viaGenerator(content, options)), "same bytes as compressStream()");
        assert.equal(reported, stream.summary);
        assert.equal(stream.summary.rawBytes, content.length);
        assert.equal(stream.summary.storedBytes, packed.length);
        assert.equal(stream.summary.sha256, sha256(content));
        assert.ok(Buffer.from(await decompress(packed)).equals(content), "decompress() restores it");

        const decoder = createDecompressStream({ threads: 1 });
        const restored = await throughNode(decoder, cut(packed, readSizes));
        assert.ok(restored.equals(content), "createDecompressStream restores it");
        assert.equal(decoder.summary.rawBytes, content.length);
        assert.equal(decoder.summary.storedBytes, packed.length);
        assert.equal(decoder.summary.trailer?.sha256, sha256(content));
      }),
      { numRuns: 40 },
    );
  });

  test("Node streams decode front to back what compress() wrote, formats recognised", async () => {
    await fc.assert(
      fc.asyncProperty(arbCase, async ({ kind, size, seed, codec, chunkSize, readSizes }) => {
        const content = contentOf(kind, size, seed);
        const packed = await compress(content, { codec, chunkSize, threads: 1 });
        const restored = await throughNode(createDecompressStream({ threads: 1 }), cut(packed, readSizes));
        assert.ok(restored.equals(content));
      }),
      { numRuns: 25 },
    );
  });

  test("Web streams: the same bytes as compressStream(), and they decode back", async () => {
    await fc.assert(
      fc.asyncProperty(arbCase, async ({ kind, size, seed, codec, chunkSize, writeSizes, readSizes }) => {
        const content = contentOf(kind, size, seed);
        const options = { codec, chunkSize, threads: 1 };
        const packed = await throughWeb(createCompressTransformStream(options), cut(content, writeSizes));
        assert.ok(packed.equals(await viaGenerator(content, options)), "same bytes as compressStream()");
        const restored = await throughWeb(
          createDecompressTransformStream({ threads: 1 }),
          cut(packed, readSizes),
        );
        assert.ok(restored.equals(content));
        const chained = await readWeb(
          webSource(cut(content, writeSizes))
            .pipeThrough(createCompressTransformStream(options))
            .pipeThrough(createDecompressTransformStream({ threads: 1 })),
        );
        assert.ok(chained.equals(content), "compress then decompress in one pipe");
      }),
      { numRuns: 25 },
    );
  });

  test("worker threads give the same bytes, through both kinds of stream", async () => {
    const content = Buffer.concat([
      generate({ kind: "safetensors", size: 40 * CHUNK, dtype: "BF16", seed: 7 }),
      textBytes(9 * CHUNK, 8),
      noiseBytes(3 * CHUNK, 9),
    ]);
    const sizes = [1, 5000, 3 * CHUNK, 77];
    const single = await viaGenerator(content, { chunkSize: CHUNK, threads: 1 });
    const options = { chunkSize: CHUNK, threads: 2 };
    assert.ok((await throughNode(createCompressStream(options), cut(content, sizes))).equals(single));
    assert.ok((await throughWeb(createCompressTransformStream(options), cut(content, sizes))).equals(single));
    const node = await throughNode(createDecompressStream({ threads: 2 }), cut(single, sizes));
    assert.ok(node.equals(content));
    const web = await throughWeb(createDecompressTransformStream({ threads: 2 }), cut(single, sizes));
    assert.ok(web.equals(content));
  });

  test("empty writes, strings and plain Uint8Arrays are all bytes", async () => {
    const content = textBytes(3 * CHUNK + 5, 4);
    const packed = await viaGenerator(content, { chunkSize: CHUNK, threads: 1 });
    const stream = createCompressStream({ chunkSize: CHUNK, threads: 1 });
    const out: Buffer[] = [];
    stream.on("data", (part: Buffer) => out.push(part));
    stream.write(new Uint8Array(0));
    stream.write(new Uint8Array(content.subarray(0, 100)));
    stream.write(content.subarray(100, 200).toString("latin1"), "latin1");
    stream.write(Buffer.alloc(0));
    stream.end(content.subarray(200));
    await finished(stream);
    assert.ok(Buffer.concat(out).equals(packed));
    const pieces = [new Uint8Array(0), ...cut(packed, [999]), new Uint8Array(0)];
    assert.ok((await throughWeb(createDecompressTransformStream({ threads: 1 }), pieces)).equals(content));
  });
});

// ---- errors -------------------------------------------------------------------------------

describe("compressFileStream and reused pieces", () => {
  /** Copy each piece when it arrives, as a writer does, before asking for the next. */
  async function written(pieces: AsyncIterable<Uint8Array>): Promise<Buffer> {
    const out: Buffer[] = [];
    for await (const piece of pieces) out.push(Buffer.from(piece));
    return Buffer.concat(out);
  }

  test("compressFileStream yields compressFile's bytes and decompressFileStream the content, with and without reuse, on 1 and 2 threads", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mmh-file-stream-"));
    try {
      const model = generate({ kind: "safetensors", size: 24 * MiB, dtype: "BF16", seed: 5 });
      const src = join(dir, "m.safetensors");
      writeFileSync(src, model);
      for (const threads of [1, 2]) {
        await compressFile(src, join(dir, `m${threads}.mmh`), { threads });
        const expected = readFileSync(join(dir, `m${threads}.mmh`));
        const kept: Uint8Array[] = [];
        for await (const piece of compressFileStream(src, { threads })) kept.push(piece);
        assert.ok(Buffer.concat(kept).equals(expected), `threads ${threads}: pieces kept`);
        const reused = await written(compressFileStream(src, { threads, reuse: true }));
        assert.ok(reused.equals(expected), `threads ${threads}: pieces reused`);
        const back = await written(decompressStream(once(expected), { threads, reuse: true }));
        assert.equal(sha256(back), sha256(model), `threads ${threads}: decoded with reuse`);
        for (const reuse of [false, true]) {
          const fromFile = await written(
            decompressFileStream(join(dir, `m${threads}.mmh`), { threads, reuse }),
          );
          assert.equal(
            sha256(fromFile),
            sha256(model),
            `threads ${threads}: decompressFileStream, reuse ${reuse}`,
          );
        }
      }
      await rejectsWith(written(compressFileStream(join(dir, "missing"))), "E_IO");
      await rejectsWith(written(decompressFileStream(join(dir, "missing.mmh"))), "E_IO");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("reused pieces: compressStream's bytes are the same as without reuse", async () => {
    const content = contentOf("bf16-safetensors", 12 * MiB, 3);
    for (const threads of [1, 2]) {
      const plain = await written(compressStream(once(content), { threads }));
      const reused = await written(compressStream(once(content), { threads, reuse: true }));
      assert.ok(reused.equals(plain), `threads ${threads}`);
      assert.ok(Buffer.from(await decompress(plain)).equals(content));
    }
  });
});

describe("errors are coded MmhErrors on the stream", () => {
  /** Ten chunks: text, noise (stored as NONE under auto), text. */
  const content = Buffer.concat([
    textBytes(5 * CHUNK + 123, 1),
    noiseBytes(2 * CHUNK, 2),
    textBytes(3 * CHUNK - 123, 3),
  ]);

  /** Decode `bytes` through a Node stream: what was delivered, and the error. */
  async function nodeFailure(bytes: Uint8Array, sizes: number[], threads: number) {
    const out: Buffer[] = [];
    const error = await rejectsWith(
      pipeline(Readable.from(cut(bytes, sizes)), createDecompressStream({ threads }), collector(out)),
      ["E_CHECKSUM", "E_CORRUPT", "E_TRUNCATED"],
    );
    return { error, delivered: Buffer.concat(out) };
  }

  async function webFailure(bytes: Uint8Array, sizes: number[], threads: number) {
    const out: Uint8Array[] = [];
    const readable = webSource(cut(bytes, sizes)).pipeThrough(createDecompressTransformStream({ threads }));
    const error = await rejectsWith(readWeb(readable, out), ["E_CHECKSUM", "E_CORRUPT", "E_TRUNCATED"]);
    return { error, delivered: Buffer.concat(out) };
  }

  test("a corrupt chunk in the middle: the chunks before it are delivered, nothing after", async () => {
    for (const codec of ["zstd", "none", "auto"]) {
      for (const threads of [1, 2]) {
        const packed = await compress(content, { codec, chunkSize: CHUNK, threads: 1 });
        const { records } = layoutOf(packed);
        assert.equal(records.length, 10);
        const bad = records[6];
        const corrupt = copyOf(packed);
        corrupt[bad.payloadOffset + (bad.storedLength >> 1)] ^= 0x55;
        const before = content.subarray(
          0,
          records.slice(0, 6).reduce((n, r) => n + r.rawLength, 0),
        );
        for (const sizes of [[7], [1000, 13], [3 * CHUNK]]) {
          const what = `${codec}, threads ${threads}, pieces ${sizes}`;
          for (const run of [nodeFailure, webFailure]) {
            const { error, delivered } = await run(corrupt, sizes, threads);
            assert.ok(["E_CHECKSUM", "E_CORRUPT"].includes(error.code), `${what}: ${error.code}`);
            assert.match(error.message, /chunk 6 /, what);
            assert.ok(delivered.equals(before), `${what}: ${delivered.length} bytes delivered`);
          }
        }
      }
    }
  });

  test("a damaged record header in the middle: E_CORRUPT or E_CHECKSUM after the chunks before it", async () => {
    const packed = await compress(content, { codec: "zstd", chunkSize: CHUNK, threads: 1 });
    const { records } = layoutOf(packed);
    const corrupt = copyOf(packed);
    corrupt[records[4].offset + 9] ^= 0x01; // raw length: the header CRC no longer matches
    const before = content.subarray(
      0,
      records.slice(0, 4).reduce((n, r) => n + r.rawLength, 0),
    );
    for (const threads of [1, 2]) {
      for (const run of [nodeFailure, webFailure]) {
        const { error, delivered } = await run(corrupt, [301], threads);
        assert.ok(["E_CHECKSUM", "E_CORRUPT"].includes(error.code), error.code);
        assert.ok(delivered.equals(before), `threads ${threads}: ${delivered.length} bytes delivered`);
      }
    }
  });

  test("a truncated stream is E_TRUNCATED, after a prefix of the content", async () => {
    const packed = await compress(content, { codec: "zstd", chunkSize: CHUNK, threads: 1 });
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: packed.length - 1 }),
        fc.array(fc.integer({ min: 1, max: 3 * CHUNK }), { minLength: 1, maxLength: 6 }),
        fc.boolean(),
        async (end, sizes, web) => {
          const { error, delivered } = await (web ? webFailure : nodeFailure)(
            packed.subarray(0, end),
            sizes,
            1,
          );
          assert.equal(error.code, "E_TRUNCATED");
          assert.ok(delivered.equals(content.subarray(0, delivered.length)), "a prefix");
        },
      ),
      { numRuns: 60 },
    );
  });

  test("bytes after the trailer, and input that is not .mmh at all, are E_CORRUPT", async () => {
    const packed = await compress(content, { codec: "zstd", chunkSize: CHUNK, threads: 1 });
    for (const run of [nodeFailure, webFailure]) {
      const extra = await run(Buffer.concat([packed, Buffer.from([0])]), [4096], 1);
      assert.equal(extra.error.code, "E_CORRUPT");
      assert.ok(extra.delivered.equals(content), "the content itself was whole");
      const garbage = await run(textBytes(5000, 9), [100], 1);
      assert.equal(garbage.error.code, "E_CORRUPT");
      assert.equal(garbage.delivered.length, 0);
    }
  });

  test("the 'error' event carries the MmhError and the stream is destroyed", async () => {
    const stream = createDecompressStream({ threads: 1 });
    const failed = new Promise<unknown>((resolve) => stream.once("error", resolve));
    stream.resume();
    stream.write(Buffer.from("definitely not an mmh file, not even close"));
    const error = await failed;
    assert.ok(error instanceof MmhError);
    assert.equal(error.code, "E_CORRUPT");
    assert.ok(stream.destroyed);
  });

  test("a limit on the output is E_LIMIT, options are checked when the stream is made", async () => {
    const packed = await compress(content, { codec: "zstd", chunkSize: CHUNK, threads: 1 });
    const out: Buffer[] = [];
    await rejectsWith(
      pipeline(
        Readable.from([packed]),
        createDecompressStream({ maxOutputBytes: 3 * CHUNK, threads: 1 }),
        collector(out),
      ),
      "E_LIMIT",
    );
    assert.equal(Buffer.concat(out).length, 3 * CHUNK);
    throwsWith(() => createCompressStream({ chunkSize: 1 }), "E_BAD_OPTION");
    throwsWith(() => createCompressStream({ codec: "nope" }), "E_BAD_OPTION");
    throwsWith(() => createCompressTransformStream({ threads: 0 }), "E_BAD_OPTION");
    throwsWith(() => createDecompressStream({ maxOutputBytes: -1 }), "E_BAD_OPTION");
    throwsWith(() => createDecompressTransformStream({ maxOutputBytes: 0.5 }), "E_BAD_OPTION");
  });

  test("an abort signal destroys the stream with E_ABORTED", async () => {
    const controller = new AbortController();
    const stream = createCompressStream({ signal: controller.signal, threads: 1 });
    const failed = new Promise<unknown>((resolve) => stream.once("error", resolve));
    stream.write(textBytes(1000, 1));
    controller.abort();
    const error = await failed;
    assert.ok(error instanceof MmhError && error.code === "E_ABORTED");
    const early = createDecompressStream({ signal: AbortSignal.abort() });
    const earlyError = await new Promise((resolve) => early.once("error", resolve));
    assert.ok(earlyError instanceof MmhError && earlyError.code === "E_ABORTED");
  });

  test("destroying or cancelling half way stops the coder and its threads", async () => {
    const content = textBytes(64 * CHUNK, 6);
    const stream = createCompressStream({ chunkSize: CHUNK, threads: 2 });
    let errored = false;
    stream.on("error", () => {
      errored = true;
    });
    const closed = new Promise((resolve) => stream.once("close", resolve));
    stream.write(content);
    await new Promise((resolve) => stream.once("data", resolve));
    stream.destroy();
    await closed;
    assert.equal(errored, false, "destroy() without an error emits none");

    const pair = createDecompressTransformStream({ threads: 2 });
    const packed = await viaGenerator(content, { chunkSize: CHUNK, threads: 1 });
    const writer = pair.writable.getWriter();
    const reader = pair.readable.getReader();
    const writing = writer.write(packed);
    assert.equal((await reader.read()).done, false);
    await reader.cancel();
    await assert.rejects(writing.then(() => writer.write(packed)));
  });

  test("Web: a source that fails errors the output with its reason; non-bytes are E_BAD_OPTION", async () => {
    const reason = new Error("the source broke");
    let sent = false;
    const broken = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (!sent) {
          controller.enqueue(textBytes(10 * CHUNK, 2));
          sent = true;
        } else controller.error(reason);
      },
    });
    await assert.rejects(readWeb(broken.pipeThrough(createCompressTransformStream({ threads: 1 }))), reason);
    const pair = createCompressTransformStream({ threads: 1 });
    const writer = pair.writable.getWriter();
    const reading = readWeb(pair.readable);
    await rejectsWith(writer.write("text" as unknown as Uint8Array), "E_BAD_OPTION");
    await rejectsWith(reading, "E_BAD_OPTION");
  });
});

// ---- backpressure and memory ------------------------------------------------------------

/** A lazily generated random source: pieces of 1 KiB to 256 KiB, made only when read. */
function lazySource(total: number, seed: number) {
  const next = prng(seed);
  const hash = createHash("sha256");
  let produced = 0;
  const stream = new Readable({
    read() {
      if (produced >= total) {
        this.push(null);
        return;
      }
      const n = Math.min(total - produced, 1024 + Math.floor(next() * 255 * 1024));
      const piece = randomBytes(n);
      hash.update(piece);
      produced += n;
      this.push(piece);
    },
  });
  return { stream, produced: () => produced, sha256: () => hash.digest("hex") };
}

let gc: (() => void) | undefined;
try {
  setFlagsFromString("--expose-gc");
  gc = runInNewContext("gc") as () => void;
} catch {
  gc = undefined;
}

/**
 * Peak growth of rss and arrayBuffers over a baseline taken now. Each sample follows a
 * full collection (when the runtime lets us ask for one), so it measures what is held,
 * not garbage waiting to be collected.
 */
function memoryWatch() {
  gc?.();
  const base = process.memoryUsage();
  let rss = 0;
  let arrayBuffers = 0;
  let samples = 0;
  return {
    sample(): void {
      gc?.();
      const now = process.memoryUsage();
      rss = Math.max(rss, now.rss - base.rss);
      arrayBuffers = Math.max(arrayBuffers, now.arrayBuffers - base.arrayBuffers);
      samples++;
    },
    get rss() {
      return rss;
    },
    get arrayBuffers() {
      return arrayBuffers;
    },
    get samples() {
      return samples;
    },
  };
}

/** Call `sample` once per `every` bytes received. */
function every(bytes: number, sample: () => void): (received: number) => void {
  let next = bytes;
  return (received) => {
    if (received < next) return;
    next = received + bytes;
    sample();
  };
}

/** A slow consumer: one setImmediate per write, a small buffer; hashes what it gets. */
function slowSink(onWrite: (bytes: number) => void) {
  const hash = createHash("sha256");
  let received = 0;
  const stream = new Writable({
    highWaterMark: 16 << 10,
    write(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      received += chunk.length;
      onWrite(received);
      setImmediate(callback);
    },
  });
  return { stream, received: () => received, sha256: () => hash.digest("hex") };
}

const fmt = (n: number) => `${(n / MiB).toFixed(1)} MiB`;

describe("backpressure", () => {
  const TOTAL = 64 * MiB;
  /** The memory growth allowed, whatever goes through. */
  const LIMIT = 64 * MiB;

  test("a reader that stops reading stops the writer (Node and Web)", async (t) => {
    for (const web of [false, true]) {
      const source = lazySource(TOTAL, 1);
      const options = { codec: "none", chunkSize: 256 << 10, threads: 1 };
      let received = 0;
      // Read the first 4 MiB, then stop reading, then read to the end.
      let rest: () => Promise<void>;
      if (web) {
        const reader = (Readable.toWeb(source.stream) as ReadableStream<Uint8Array>)
          .pipeThrough(createCompressTransformStream(options))
          .getReader();
        const readUntil = async (limit: number) => {
          for (let r = await reader.read(); ; r = await reader.read()) {
            if (r.done) return;
            received += r.value.length;
            if (received >= limit) return;
          }
        };
        await readUntil(4 * MiB);
        rest = () => readUntil(Number.POSITIVE_INFINITY);
      } else {
        const stream = createCompressStream(options);
        source.stream.pipe(stream);
        let stopped: (() => void) | undefined;
        const stop = new Promise<void>((resolve) => {
          stopped = resolve;
        });
        stream.on("data", (part: Buffer) => {
          received += part.length;
          if (received >= 4 * MiB && stopped) {
            stream.pause();
            stopped();
            stopped = undefined;
          }
        });
        await stop;
        rest = () => {
          stream.resume();
          return finished(stream);
        };
      }
      await delay(150);
      const stalled = source.produced();
      await delay(50);
      assert.equal(source.produced(), stalled, "nothing more is produced while nobody reads");
      const ahead = stalled - received;
      t.diagnostic(
        `${web ? "Web" : "Node"}: reading stopped after ${fmt(received)}, ${fmt(stalled)} produced ` +
          `(${fmt(ahead)} ahead of the reader) of ${fmt(TOTAL)}`,
      );
      assert.ok(ahead < 4 * MiB, `${fmt(ahead)} produced ahead of the reader`);
      await rest();
      assert.equal(source.produced(), TOTAL);
      assert.ok(received > TOTAL);
    }
  });

  test("a decoder whose reader stops holds one output piece, however large the content", async (t) => {
    const content = (async function* () {
      // The period divides the block, so the whole is one period: a single run record.
      const block = generate({ kind: "periodic", size: 4 * MiB, seed: 3, period: 1024 });
      for (let i = 0; i < 64; i++) yield block;
    })();
    const parts: Uint8Array[] = [];
    for await (const part of compressStream(content, { threads: 1 })) parts.push(part);
    const packed = Buffer.concat(parts);
    assert.ok(packed.length < 64 << 10, `${packed.length} bytes`);
    const stream = createDecompressStream({ threads: 1 });
    stream.end(packed);
    await new Promise((resolve) => stream.once("readable", resolve)); // it starts, nobody reads
    await delay(150);
    const buffered = stream.readableLength;
    t.diagnostic(`${packed.length} B container of 256 MiB: ${fmt(buffered)} decoded and buffered, unread`);
    assert.ok(buffered > 0 && buffered <= 5 * MiB, `${fmt(buffered)} buffered`);
    const sink = slowSink(() => {});
    await pipeline(stream, sink.stream);
    assert.equal(sink.received(), 256 * MiB);
  });

  /**
   * `total` lazily made bytes through `connect` into a slow sink. A small warm-up run of
   * the same shape goes first, so that one-off costs (codec set-up) are not counted.
   */
  async function measure(
    total: number,
    seed: number,
    connect: (source: Readable, sink: Writable) => Promise<void>,
  ) {
    await connect(lazySource(2 * MiB, seed + 1000).stream, slowSink(() => {}).stream);
    const source = lazySource(total, seed);
    const memory = memoryWatch();
    let lag = 0;
    const sample = every(4 * MiB, () => memory.sample());
    const sink = slowSink((received) => {
      lag = Math.max(lag, source.produced() - received);
      sample(received);
    });
    const started = performance.now();
    await connect(source.stream, sink.stream);
    const ms = performance.now() - started;
    const report =
      `${fmt(total)} in ${ms.toFixed(0)} ms: peak rss +${fmt(memory.rss)}, arrayBuffers ` +
      `+${fmt(memory.arrayBuffers)} (${memory.samples} samples), produced - consumed ≤ ${fmt(lag)}`;
    return { source, sink, memory, lag, report };
  }

  test("256 MiB through createCompressStream into a slow writer: memory stays bounded", async (t) => {
    let stream = createCompressStream();
    const total = 4 * LIMIT;
    const run = await measure(total, 2, (source, sink) => {
      stream = createCompressStream({ threads: 1 });
      return pipeline(source, stream, sink);
    });
    t.diagnostic(`compress ${run.report}`);
    assert.equal(stream.summary.rawBytes, total);
    assert.equal(stream.summary.sha256, run.source.sha256());
    assert.equal(stream.summary.storedBytes, run.sink.received());
    assert.ok(run.memory.rss < LIMIT, `rss grew ${fmt(run.memory.rss)}`);
    assert.ok(run.memory.arrayBuffers < LIMIT, `arrayBuffers grew ${fmt(run.memory.arrayBuffers)}`);
    assert.ok(run.lag < 8 * MiB, `up to ${fmt(run.lag)} in flight`);
  });

  test("128 MiB through compress and decompress streams into a slow writer: memory stays bounded", async (t) => {
    const total = 2 * LIMIT;
    const run = await measure(total, 3, (source, sink) =>
      pipeline(source, createCompressStream({ threads: 1 }), createDecompressStream({ threads: 1 }), sink),
    );
    t.diagnostic(`compress + decompress ${run.report}`);
    assert.equal(run.sink.received(), total);
    assert.equal(run.sink.sha256(), run.source.sha256());
    assert.ok(run.memory.rss < LIMIT, `rss grew ${fmt(run.memory.rss)}`);
    assert.ok(run.memory.arrayBuffers < LIMIT, `arrayBuffers grew ${fmt(run.memory.arrayBuffers)}`);
    assert.ok(run.lag < 8 * MiB, `up to ${fmt(run.lag)} in flight`);
  });

  test("Web: 128 MiB through both transforms into a slow writer: memory stays bounded", async (t) => {
    const total = 2 * LIMIT;
    const run = await measure(total, 4, (source, sink) =>
      (Readable.toWeb(source) as ReadableStream<Uint8Array>)
        .pipeThrough(createCompressTransformStream({ threads: 1 }))
        .pipeThrough(createDecompressTransformStream({ threads: 1 }))
        .pipeTo(Writable.toWeb(sink)),
    );
    t.diagnostic(`web compress + decompress ${run.report}`);
    assert.equal(run.sink.received(), total);
    assert.equal(run.sink.sha256(), run.source.sha256());
    assert.ok(run.memory.rss < LIMIT, `rss grew ${fmt(run.memory.rss)}`);
    assert.ok(run.memory.arrayBuffers < LIMIT, `arrayBuffers grew ${fmt(run.memory.arrayBuffers)}`);
    assert.ok(run.lag < 8 * MiB, `up to ${fmt(run.lag)} in flight`);
  });

  test("with worker threads, the bytes in flight stay within the coders' windows", async (t) => {
    // Each coder keeps up to 4 chunks per thread in flight (512 KiB each by default), and
    // at most 16 MiB: with 2 threads on each side, 8 MiB between the source and the sink,
    // whatever the size. RSS is reported, not bounded here: every worker is a V8 isolate of its
    // own with the codecs loaded, a fixed cost per stream that dwarfs the data in flight.
    const run = await measure(LIMIT, 5, (source, sink) =>
      pipeline(source, createCompressStream({ threads: 2 }), createDecompressStream({ threads: 2 }), sink),
    );
    t.diagnostic(`threads 2, compress + decompress ${run.report}`);
    assert.equal(run.sink.sha256(), run.source.sha256());
    assert.ok(run.lag < 24 * MiB, `up to ${fmt(run.lag)} in flight`);
    assert.ok(run.memory.arrayBuffers < LIMIT, `arrayBuffers grew ${fmt(run.memory.arrayBuffers)}`);
  });

  test("a small container that decodes to 256 MiB, into a slow writer: memory stays bounded", async (t) => {
    const started = performance.now();
    const block = generate({ kind: "periodic", size: 4 * MiB, seed: 5, period: 4096 });
    const parts: Uint8Array[] = [];
    const content = (async function* () {
      for (let i = 0; i < 64; i++) yield block;
    })();
    for await (const part of compressStream(content, { threads: 1 })) parts.push(part);
    const packed = Buffer.concat(parts);
    const memory = memoryWatch();
    const expected = createHash("sha256");
    for (let i = 0; i < 64; i++) expected.update(block);
    const decoder = createDecompressStream({ threads: 2 });
    let buffered = 0;
    const sample = every(8 * MiB, () => memory.sample());
    const sink = slowSink((received) => {
      buffered = Math.max(buffered, decoder.readableLength);
      sample(received);
    });
    await pipeline(Readable.from(cut(packed, [100])), decoder, sink.stream);
    assert.equal(sink.received(), 256 * MiB);
    assert.equal(sink.sha256(), expected.digest("hex"));
    t.diagnostic(
      `decompress ${packed.length} B to 256 MiB in ${(performance.now() - started).toFixed(0)} ms: ` +
        `peak rss +${fmt(memory.rss)}, arrayBuffers +${fmt(memory.arrayBuffers)} (${memory.samples} samples), ` +
        `read buffer ≤ ${fmt(buffered)}`,
    );
    assert.ok(memory.rss < LIMIT, `rss grew ${fmt(memory.rss)}`);
    assert.ok(memory.arrayBuffers < LIMIT, `arrayBuffers grew ${fmt(memory.arrayBuffers)}`);
    assert.ok(buffered <= 5 * MiB, `${fmt(buffered)} buffered`);
  });
});
