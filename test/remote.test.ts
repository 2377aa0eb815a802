/**
 * Reading .mmh files over HTTP range requests (open(url), inspect(url), `mmh info URL`,
 * `mmh extract URL`), against a local server that counts what it serves.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { pathToFileURL } from "node:url";
import { compress, compressFile, inspect, open } from "../src/index.ts";
import { httpSource } from "../src/remote/http.ts";
import { generate } from "../src/tools/index.ts";
import { BIN, type Result } from "./cli-support.ts";
import { startServer, type TestServer } from "./http-support.ts";
import { rejectsWith } from "./support.ts";

const dir = await mkdtemp(join(tmpdir(), "mmh-remote-"));
const modelPath = join(dir, "m.safetensors");
const mmhPath = join(dir, "m.mmh");
const model = generate({ kind: "safetensors", dtype: "F16", size: 4 << 20, seed: 3 });
await writeFile(modelPath, model);
await compressFile(modelPath, mmhPath, { chunkSize: 64 << 10 });
const packed = await readFile(mmhPath);

let server: TestServer;
before(async () => {
  server = await startServer();
  server.files.set("m.mmh", { bytes: packed, etag: '"v1"' });
});
after(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

/** `mmh ARGS` spawned without blocking this process, whose server must keep answering. */
function mmh(args: string[]): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: dir, timeout: 60_000 });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (piece: Buffer) => out.push(piece));
    child.stderr.on("data", (piece: Buffer) => err.push(piece));
    child.on("error", reject);
    child.on("close", (code) =>
      resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() }),
    );
  });
}

/** The record bytes of the chunks holding content [offset, offset + length). */
function recordBytes(
  chunks: readonly { rawOffset: number; rawLength: number; recordLength: number }[],
  offset: number,
  length: number,
): { bytes: number; chunks: number } {
  const held = chunks.filter((c) => c.rawOffset < offset + length && c.rawOffset + c.rawLength > offset);
  return { bytes: held.reduce((sum, c) => sum + c.recordLength, 0), chunks: held.length };
}

describe("open(url)", () => {
  test("the same file as open(path): header, tensors, chunks, every tensor's bytes", async () => {
    await using local = await open(mmhPath);
    await using remote = await open(server.url("/f/m.mmh"));
    assert.deepEqual(remote.header, local.header);
    assert.deepEqual(remote.trailer, local.trailer);
    assert.deepEqual(remote.tensors, local.tensors);
    assert.deepEqual(remote.chunks, local.chunks);
    assert.equal(remote.fileBytes, packed.length);
    assert.ok(local.chunks.length > 40, `${local.chunks.length} chunks`);
    for (const t of local.tensors)
      assert.deepEqual(
        Buffer.from(await remote.readTensor(t.name)),
        Buffer.from(await local.readTensor(t.name)),
      );
    assert.deepEqual(Buffer.from(await remote.readRange(0, remote.size)), Buffer.from(model));
    const pieces: Uint8Array[] = [];
    for await (const piece of remote.rangeStream(1000, 300_000)) pieces.push(piece);
    assert.deepEqual(Buffer.concat(pieces), Buffer.from(model.subarray(1000, 301_000)));
  });

  test("a URL object, inspect(url) and a file: URL", async () => {
    await using remote = await open(new URL(server.url("/f/m.mmh")));
    const info = await inspect(server.url("/f/m.mmh"));
    const local = await inspect(mmhPath);
    assert.deepEqual(info, local);
    await using fromFileUrl = await open(pathToFileURL(mmhPath));
    assert.deepEqual(fromFileUrl.tensors, remote.tensors);
  });

  test("opening takes two requests; one tensor fetches only its chunks' records, in one request", async () => {
    server.reset();
    await using remote = await open(server.url("/f/m.mmh"));
    assert.equal(server.stats.requests, 2, JSON.stringify(server.stats.log));
    const openBytes = server.stats.bytes;
    assert.ok(openBytes <= (64 << 10) + (16 << 10), `${openBytes} bytes to open`);
    // A tensor in the middle, over several chunks, none of them in the tail fetched on open.
    const tensor = remote.tensors.find((t) => t.name === "model.layers.1.mlp.gate_proj.weight")!;
    const held = recordBytes(remote.chunks, tensor.offset, tensor.length);
    assert.ok(held.chunks > 2, `${held.chunks} chunks`);
    server.reset();
    const bytes = await remote.readTensor(tensor.name);
    assert.deepEqual(
      Buffer.from(bytes),
      Buffer.from(model.subarray(tensor.offset, tensor.offset + tensor.length)),
    );
    assert.equal(server.stats.requests, 1, "adjacent records are one request");
    assert.equal(server.stats.bytes, held.bytes);
    assert.ok(
      openBytes + server.stats.bytes < packed.length * 0.15,
      `${openBytes + server.stats.bytes} of ${packed.length} bytes`,
    );
  });

  test("the whole content is one request; a smaller request size splits it", async () => {
    await using remote = await open(server.url("/f/m.mmh"));
    server.reset();
    await remote.readRange(0, remote.size);
    assert.equal(server.stats.requests, 1);
    await using small = await open(server.url("/f/m.mmh"), { maxRequestBytes: 256 << 10 });
    server.reset();
    assert.deepEqual(Buffer.from(await small.readRange(0, small.size)), Buffer.from(model));
    const records = small.chunks.reduce((sum, c) => sum + c.recordLength, 0);
    assert.ok(server.stats.requests >= Math.ceil(records / (256 << 10)), `${server.stats.requests} requests`);
    assert.ok(server.stats.requests < small.chunks.length / 2, `${server.stats.requests} requests`);
  });

  test("requests in flight stay within the bound", async () => {
    server.delayMs = 20;
    try {
      await using remote = await open(server.url("/f/m.mmh"));
      server.reset();
      await Promise.all(remote.tensors.map((t) => remote.readTensor(t.name)));
      assert.ok(server.stats.requests >= remote.tensors.length - 2, `${server.stats.requests} requests`);
      assert.equal(server.stats.maxInFlight, 4);
      await using two = await open(server.url("/f/m.mmh"), { concurrency: 2, maxRequestBytes: 64 << 10 });
      server.reset();
      await two.readRange(0, two.size);
      assert.ok(server.stats.requests > 10, `${server.stats.requests} requests`);
      assert.equal(server.stats.maxInFlight, 2);
    } finally {
      server.delayMs = 0;
    }
  });

  test("a server without ranges is E_UNSUPPORTED, and the file is not downloaded", async () => {
    const big = new Uint8Array(32 << 20);
    server.files.set("big.mmh", { bytes: big, etag: '"big"' });
    server.reset();
    await rejectsWith(open(server.url("/plain/big.mmh")), "E_UNSUPPORTED");
    await rejectsWith(open(server.url("/plain/m.mmh")), "E_UNSUPPORTED");
    // The server stops writing when the client goes away; socket buffers hold a few MiB at most.
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.ok(server.stats.bytes < big.length / 4, `${server.stats.bytes} bytes served`);
    server.files.delete("big.mmh");
  });

  test("redirects are followed, up to five; a loop is E_IO", async () => {
    await using remote = await open(server.url("/redirect/3/m.mmh"));
    const t = remote.tensors[2];
    assert.deepEqual(
      Buffer.from(await remote.readTensor(t.name)),
      Buffer.from(model.subarray(t.offset, t.offset + t.length)),
    );
    await using five = await open(server.url("/redirect/5/m.mmh"));
    assert.equal(five.size, model.length);
    await rejectsWith(open(server.url("/redirect/6/m.mmh")), "E_IO");
    await rejectsWith(open(server.url("/loop")), "E_IO");
    await rejectsWith(open(server.url("/redirect/2/m.mmh"), { maxRedirects: 1 }), "E_IO");
  });

  test("404 is E_NOT_FOUND; a refused connection and a timeout are E_IO", async () => {
    await rejectsWith(open(server.url("/f/missing.mmh")), "E_NOT_FOUND");
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    await rejectsWith(open(`http://127.0.0.1:${port}/m.mmh`), "E_IO");
    server.delayMs = 2000;
    try {
      const started = performance.now();
      await rejectsWith(open(server.url("/f/m.mmh"), { timeoutMs: 100 }), "E_IO");
      assert.ok(performance.now() - started < 1500);
    } finally {
      server.delayMs = 0;
    }
  });

  test("a file changed on the server after open is E_CORRUPT", async () => {
    server.files.set("moving.mmh", { bytes: packed, etag: '"one"' });
    await using remote = await open(server.url("/f/moving.mmh"));
    server.files.set("moving.mmh", {
      bytes: await compress(model, { chunkSize: 32 << 10 }),
      etag: '"two"',
    });
    await rejectsWith(remote.readTensor(remote.tensors[4].name), "E_CORRUPT");
    server.files.delete("moving.mmh");
  });

  test("a small file is read whole by the first request; reads past the end are refused", async () => {
    const tiny = await compress(Buffer.from("hello, ranges\n".repeat(100)));
    server.files.set("tiny.mmh", { bytes: tiny, etag: '"tiny"' });
    server.reset();
    await using remote = await open(server.url("/f/tiny.mmh"));
    assert.equal(
      Buffer.from(await remote.readRange(0, remote.size)).toString(),
      "hello, ranges\n".repeat(100),
    );
    assert.equal(server.stats.requests, 1);
    const source = await httpSource(server.url("/f/tiny.mmh"));
    await rejectsWith(source.read(tiny.length - 4, 8), "E_TRUNCATED");
    await source.close();
    await rejectsWith(source.read(0, 4), "E_IO");
    server.files.delete("tiny.mmh");
  });

  test("options are checked", async () => {
    await rejectsWith(open(server.url("/f/m.mmh"), { concurrency: 0 }), "E_BAD_OPTION");
    await rejectsWith(open(new URL("ftp://127.0.0.1/m.mmh")), "E_BAD_OPTION");
  });
});

describe("mmh with a URL", () => {
  test("info URL --json is the local file's, but for its name", async () => {
    const remote = await mmh(["info", server.url("/f/m.mmh"), "--json"]);
    const local = await mmh(["info", mmhPath, "--json"]);
    assert.equal(remote.code, 0, remote.stderr);
    const a = JSON.parse(remote.stdout.toString());
    const b = JSON.parse(local.stdout.toString());
    assert.equal(a.file, server.url("/f/m.mmh"));
    assert.deepEqual({ ...a, file: "" }, { ...b, file: "" });
  });

  test("extract URL --tensor and --range are byte-exact", async () => {
    const tensor = (await inspect(mmhPath)).footer.tensors[5];
    const out = join(dir, "tensor.bin");
    const r = await mmh(["extract", server.url("/f/m.mmh"), "--tensor", tensor.name, "-o", out]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      await readFile(out),
      Buffer.from(model.subarray(tensor.offset, tensor.offset + tensor.length)),
    );

    const range = await mmh(["extract", server.url("/f/m.mmh"), "--range", "100000:250000", "-c"]);
    assert.equal(range.code, 0, range.stderr);
    assert.deepEqual(range.stdout, Buffer.from(model.subarray(100_000, 350_000)));
    const local = await mmh(["extract", mmhPath, "--range", "1K:4K", "-o", join(dir, "r.bin")]);
    assert.equal(local.code, 0, local.stderr);
    assert.deepEqual(await readFile(join(dir, "r.bin")), Buffer.from(model.subarray(1024, 5120)));
  });

  test("errors: a missing URL, a range past the end, a bad --range", async () => {
    const missing = await mmh(["info", server.url("/f/nothing.mmh")]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^mmh: E_NOT_FOUND: /);
    const past = await mmh(["extract", mmhPath, "--range", `${model.length - 10}:20`, "-c"]);
    assert.equal(past.code, 1);
    assert.match(past.stderr, /^mmh: E_NOT_FOUND: /);
    const bad = await mmh(["extract", mmhPath, "--range", "12", "-c"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^mmh: E_BAD_OPTION: /);
    const both = await mmh(["extract", mmhPath, "--range", "0:1", "--tensor", "x", "-c"]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /^mmh: E_USAGE: /);
  });
});
