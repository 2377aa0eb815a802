/**
 * compressStream's `size` (src/engine/prefix.ts): a stream of known length whose format
 * puts its header first is recognised from its first bytes, so the container is the one
 * a buffer of the same bytes gives (dedup aside: a stream cannot be read again); the CLI
 * passes the size of a regular file on standard input, the service its Content-Length.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { compress, compressStream, inspect, MmhError } from "../src/index.ts";
import { generate, npyHeader } from "../src/tools/index.ts";
import { BIN } from "./cli-support.ts";
import { startServer } from "./server-support.ts";
import { prng } from "./support.ts";

const dir = mkdtempSync(join(tmpdir(), "mmh-stream-size-"));

async function* pieces(bytes: Uint8Array, size = 65_536): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const piece of stream) out.push(Buffer.from(piece));
  return Buffer.concat(out);
}

async function footerOf(container: Uint8Array): Promise<{ format?: string; tensors?: { name: string }[] }> {
  const path = join(dir, `f-${Math.random().toString(36).slice(2)}.mmh`);
  writeFileSync(path, container);
  return (await inspect(path)).footer as { format?: string; tensors?: { name: string }[] };
}

/** A safetensors file of `count` small F32 tensors: a header of `count` entries. */
function manyTensors(count: number): Buffer {
  const random = prng(7);
  const header: Record<string, unknown> = {};
  const parts: Buffer[] = [];
  let offset = 0;
  for (let i = 0; i < count; i++) {
    const values = Float32Array.from({ length: 32 }, () => (random() - 0.5) * 0.04);
    header[`model.layers.${i}.weight`] = {
      dtype: "F32",
      shape: [4, 8],
      data_offsets: [offset, offset + 128],
    };
    parts.push(Buffer.from(values.buffer));
    offset += 128;
  }
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, json, ...parts]);
}

const shared = readFileSync(
  join(import.meta.dirname, "..", "..", "shared", "data", "mnist-tinygrad_model.safetensors"),
);

test("a header-first model streamed with its size gives the container its bytes give", async () => {
  const values = Float32Array.from({ length: 50_000 }, (_, i) => Math.sin(i) * 0.02);
  const npy = Buffer.concat([npyHeader("F32", [values.length]), Buffer.from(values.buffer)]);
  const inputs: [string, Buffer, string][] = [
    ["safetensors (real weights)", shared, "safetensors"],
    ["safetensors with a 210 KB header (past the first bytes held back)", manyTensors(3000), "safetensors"],
    ["GGUF", Buffer.from(generate({ kind: "gguf", size: 300_000, seed: 3 })), "gguf"],
    ["npy", npy, "npy"],
  ];
  for (const [what, bytes, format] of inputs) {
    const expected = Buffer.from(await compress(bytes, { dedup: false }));
    const streamed = await collect(compressStream(pieces(bytes), { size: bytes.length }));
    assert.ok(streamed.equals(expected), `${what}: the same container as compress()`);
    const footer = await footerOf(streamed);
    assert.equal(footer.format, format, what);
    assert.ok((footer.tensors?.length ?? 0) > 0, `${what}: a tensor table`);
    // Without the size, or with recognition off, a stream stays raw bytes, as before.
    const plain = await collect(compressStream(pieces(bytes)));
    assert.equal((await footerOf(plain)).tensors?.length ?? 0, 0, what);
    const off = await collect(compressStream(pieces(bytes), { size: bytes.length, recognise: false }));
    assert.ok(off.equals(plain), `${what}: recognise false`);
  }
});

test("formats that need the whole file stay raw unless the whole stream fits in what is held back", async () => {
  const random = Buffer.from(generate({ kind: "random", size: 300_000, seed: 5 }));
  const sized = await collect(compressStream(pieces(random), { size: random.length }));
  assert.ok(sized.equals(await collect(compressStream(pieces(random)))));
});

test("a stream of another length than its size fails at its end with E_BAD_OPTION", async () => {
  for (const size of [shared.length + 1, shared.length - 1, 10, 0]) {
    await assert.rejects(
      collect(compressStream(pieces(shared), { size })),
      (error: unknown) => error instanceof MmhError && error.code === "E_BAD_OPTION",
      `size ${size}`,
    );
  }
  for (const size of [-1, 1.5, Number.NaN, 2 ** 60]) {
    assert.throws(
      () => compressStream(pieces(shared), { size }),
      (error: unknown) => error instanceof MmhError && error.code === "E_BAD_OPTION",
    );
  }
});

test("mmh -c < model.safetensors recognises it; a pipe does not", () => {
  const file = join(dir, "model.safetensors");
  writeFileSync(file, shared);
  const fromFile = spawnSync(process.execPath, [BIN, "-c"], { stdio: [openSync(file, "r"), "pipe", "pipe"] });
  assert.equal(fromFile.status, 0, fromFile.stderr.toString());
  const piped = spawnSync(process.execPath, [BIN, "-c"], { input: shared });
  assert.equal(piped.status, 0, piped.stderr.toString());
  return Promise.all([footerOf(fromFile.stdout), footerOf(piped.stdout)]).then(([a, b]) => {
    assert.equal(a.format, "safetensors");
    assert.ok((a.tensors?.length ?? 0) > 0);
    assert.equal(b.tensors?.length ?? 0, 0);
  });
});

test("POST /v1/compress with a Content-Length recognises the body's format", async () => {
  const server = await startServer();
  try {
    const answer = await fetch(`${server.url}/v1/compress`, { method: "POST", body: shared });
    assert.equal(answer.status, 200);
    const container = Buffer.from(await answer.arrayBuffer());
    const footer = await footerOf(container);
    assert.equal(footer.format, "safetensors");
    assert.deepEqual(
      footer.tensors?.map((t) => t.name),
      ((await footerOf(await compress(shared))).tensors ?? []).map((t) => t.name),
    );
  } finally {
    await server.close();
  }
});
