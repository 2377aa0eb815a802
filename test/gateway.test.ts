/**
 * The gateway of `mmh serve`, read through a real listening Fastify app by real clients:
 * curl's range requests, @huggingface/gguf's range reader, Python's urllib with numpy,
 * and Node's http for what the others cannot send (raw `..` paths, conditionals, aborts).
 */
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { gguf } from "@huggingface/gguf";
import Fastify, { type FastifyInstance } from "fastify";
import { compressFile, open, pack } from "../src/index.ts";
import { gatewayOpenApi, parseRange, registerGateway } from "../src/server/gateway.ts";
import { sha256, textBytes } from "./support.ts";
import { GGML, writeGguf } from "./support-gguf.ts";

const dir = mkdtempSync(join(tmpdir(), "mmh-gateway-"));
const store = join(dir, "store");
const outside = join(dir, "outside");
const CHUNK = 64 << 10;

/** What the test server's context counted. */
const counted = { decoded: 0 };

let app: FastifyInstance;
let base = "";

/** The original bytes of each served file, by request path. */
const originals = new Map<string, Buffer>();

function safetensors(
  tensors: { name: string; dtype: "F32" | "F16"; shape: number[]; data: Buffer }[],
): Buffer {
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.length] };
    offset += t.data.length;
  }
  let json = Buffer.from(JSON.stringify(header));
  json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, json, ...tensors.map((t) => t.data)]);
}

function floats(count: number, seed: number): Buffer {
  const out = Buffer.alloc(count * 4);
  for (let i = 0; i < count; i++) out.writeFloatLE(Math.sin(i * 0.37 + seed) * (1 + (i % 7)), i * 4);
  return out;
}

const ggufFile = writeGguf({
  version: 3,
  kv: [
    ["general.architecture", { t: "string", v: "llama" }],
    ["general.name", { t: "string", v: "gateway test model" }],
    ["llama.context_length", { t: "u32", v: 2048 }],
    [
      "tokenizer.ggml.tokens",
      { t: "array", of: "string", items: ["<s>", "</s>", "hello"].map((v) => ({ t: "string", v })) },
    ],
  ],
  tensors: [
    { name: "token_embd.weight", dims: [64, 16], type: GGML.F32 },
    { name: "blk.0.attn_q.weight", dims: [64, 4], type: GGML.Q4_0 },
    { name: "output.weight", dims: [16, 8], type: GGML.F16 },
  ],
});

async function put(
  name: string,
  bytes: Buffer,
  options: Parameters<typeof compressFile>[2] = {},
): Promise<void> {
  const src = join(dir, "src", name);
  mkdirSync(join(src, ".."), { recursive: true });
  writeFileSync(src, bytes);
  mkdirSync(join(store, name, ".."), { recursive: true });
  await compressFile(src, join(store, `${name}.mmh`), options);
  originals.set(name, bytes);
}

/** A copy of `name`.mmh as `copy`.mmh with one byte of chunk `chunk`'s payload flipped. */
async function corrupt(name: string, copy: string, chunk: number): Promise<void> {
  const path = join(store, `${name}.mmh`);
  const file = await open(path);
  const info = file.chunks[chunk];
  await file.close();
  const bytes = readFileSync(path);
  bytes[info.recordOffset + info.recordLength - 9] ^= 0x5a;
  writeFileSync(join(store, `${copy}.mmh`), bytes);
}

before(async () => {
  mkdirSync(store, { recursive: true });
  mkdirSync(outside, { recursive: true });
  await put("multi.bin", textBytes(1 << 20, 7), { codec: "zstd", chunkSize: CHUNK });
  await put("big.bin", textBytes(8 << 20, 8), { codec: "zstd", chunkSize: CHUNK });
  await put("llm/tiny.gguf", ggufFile.bytes);
  await put(
    "st/model.safetensors",
    safetensors([
      { name: "embed.weight", dtype: "F32", shape: [32, 16], data: floats(512, 1) },
      { name: "norm.weight", dtype: "F16", shape: [16], data: Buffer.alloc(32, 0x3c) },
      { name: "head.weight", dtype: "F32", shape: [8, 24], data: floats(192, 2) },
    ]),
  );
  await put("empty.bin", Buffer.alloc(0));
  const pattern = Buffer.from("0123456789abcdef-pattern!");
  const run = Buffer.alloc(80 << 20);
  for (let i = 0; i < run.length; i += pattern.length) pattern.copy(run, i);
  await put("run.bin", run);
  await corrupt("multi.bin", "bad-first.bin", 0);
  await corrupt("multi.bin", "bad-late.bin", 10);

  const folder = join(dir, "folder");
  mkdirSync(join(folder, "sub"), { recursive: true });
  writeFileSync(join(folder, "config.json"), '{"model_type":"test"}\n');
  writeFileSync(join(folder, "sub", "weights.bin"), textBytes(300_000, 9));
  await pack(folder, join(store, "folder.mmh"), { chunkSize: CHUNK, codec: "zstd" });
  originals.set("folder/config.json", readFileSync(join(folder, "config.json")));
  originals.set("folder/sub/weights.bin", readFileSync(join(folder, "sub", "weights.bin")));

  writeFileSync(join(outside, "secret"), "the secret outside the store\n");
  await compressFile(join(outside, "secret"), join(outside, "secret.mmh"));
  symlinkSync(join(outside, "secret.mmh"), join(store, "escape.mmh"));
  symlinkSync(outside, join(store, "outdir"));
  symlinkSync("multi.bin.mmh", join(store, "alias.bin.mmh"));

  app = Fastify();
  registerGateway(app, {
    storeRoot: (request) => (request.headers["x-test-no-store"] ? undefined : store),
    countDecoded: (bytes) => {
      counted.decoded += bytes;
    },
  });
  await app.listen({ host: "127.0.0.1", port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});

after(async () => {
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** False when the response was cut before its end. */
  complete: boolean;
}

/** A request whose path goes out exactly as written (fetch would normalise `..` and `%2e`). */
function request(path: string, headers: Record<string, string> = {}, method = "GET"): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}/`, { method, path, headers, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (part: Buffer) => parts.push(part));
      const done = () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(parts),
          complete: res.complete,
        });
      res.on("end", done);
      res.on("error", done);
    });
    req.on("error", reject);
    req.end();
  });
}

function errorCode(answer: Answer): string {
  return JSON.parse(answer.body.toString()).error.code;
}

function run(command: string, args: string[]): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { encoding: "buffer", maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      const code = error ? Number((error as { code?: number }).code ?? 1) : 0;
      resolve({ code, stdout, stderr: stderr.toString() });
    });
  });
}

const hasCurl = spawnSync("curl", ["--version"]).status === 0;
const hasNumpy = spawnSync("python3", ["-c", "import numpy"]).status === 0;

describe("curl -r", { skip: !hasCurl && "curl is not installed" }, () => {
  const original = () => originals.get("multi.bin")!;
  const curl = (range: string) => run("curl", ["-sS", "-r", range, `${base}/models/multi.bin`]);

  test("a single range", async () => {
    const out = await curl("70000-200000");
    assert.equal(out.code, 0, out.stderr);
    assert.deepEqual(out.stdout, original().subarray(70000, 200001));
  });

  test("a suffix range", async () => {
    const out = await curl("-5000");
    assert.equal(out.code, 0, out.stderr);
    assert.deepEqual(out.stdout, original().subarray(original().length - 5000));
  });

  test("an open range", async () => {
    const out = await curl("1000000-");
    assert.equal(out.code, 0, out.stderr);
    assert.deepEqual(out.stdout, original().subarray(1000000));
  });

  test("the whole file, and a file of an archive", async () => {
    const whole = await run("curl", ["-sS", `${base}/models/multi.bin`]);
    assert.equal(whole.code, 0, whole.stderr);
    assert.deepEqual(whole.stdout, original());
    const entry = await run("curl", ["-sS", "-r", "1000-1999", `${base}/models/folder/sub/weights.bin`]);
    assert.deepEqual(entry.stdout, originals.get("folder/sub/weights.bin")!.subarray(1000, 2000));
  });

  test("a range past the end is 416", async () => {
    const out = await run("curl", [
      "-sS",
      "-r",
      `${1 << 20}-`,
      "-o",
      "/dev/null",
      "-w",
      "%{http_code} %header{content-range}",
      `${base}/models/multi.bin`,
    ]);
    assert.equal(out.stdout.toString(), `416 bytes */${1 << 20}`);
  });
});

test("@huggingface/gguf reads metadata and tensor infos by ranges", async () => {
  const url = `${base}/models/llm/tiny.gguf`;
  const parsed = await gguf(url);
  const metadata = parsed.metadata as unknown as Record<string, unknown>;
  assert.equal(metadata.version, 3);
  assert.equal(metadata["general.architecture"], "llama");
  assert.equal(metadata["general.name"], "gateway test model");
  assert.equal(metadata["llama.context_length"], 2048);
  assert.deepEqual(metadata["tokenizer.ggml.tokens"], ["<s>", "</s>", "hello"]);
  assert.deepEqual(
    parsed.tensorInfos.map((t) => ({ name: t.name, shape: t.shape.map(Number), dtype: t.dtype })),
    [
      { name: "token_embd.weight", shape: [64, 16], dtype: GGML.F32.id },
      { name: "blk.0.attn_q.weight", shape: [64, 4], dtype: GGML.Q4_0.id },
      { name: "output.weight", shape: [16, 8], dtype: GGML.F16.id },
    ],
  );
  assert.deepEqual(
    parsed.tensorInfos.map((t) => Number(t.offset) + Number(parsed.tensorDataOffset)),
    ggufFile.tensors.map((t) => t.offset),
  );
});

test("Python reads a safetensors header and one tensor by ranges", {
  skip: !hasNumpy && "no numpy",
}, async () => {
  const script = `
import json, struct, sys, urllib.request
import numpy as np
url, original, name = sys.argv[1:4]
def get(first, last):
    request = urllib.request.Request(url, headers={"Range": f"bytes={first}-{last}"})
    with urllib.request.urlopen(request) as response:
        assert response.status == 206, response.status
        return response.read()
n = struct.unpack("<Q", get(0, 7))[0]
header = json.loads(get(8, 8 + n - 1))
info = header[name]
start, end = info["data_offsets"]
dtype = {"F32": np.float32, "F16": np.float16}[info["dtype"]]
got = np.frombuffer(get(8 + n + start, 8 + n + end - 1), dtype=dtype).reshape(info["shape"])
with open(original, "rb") as f:
    f.seek(8 + n + start)
    want = np.frombuffer(f.read(end - start), dtype=dtype).reshape(info["shape"])
assert np.array_equal(got, want)
print(json.dumps({"shape": list(got.shape), "first": float(got.flat[0]), "last": float(got.flat[-1])}))
`;
  const out = await run("python3", [
    "-c",
    script,
    `${base}/models/st/model.safetensors`,
    join(dir, "src", "st", "model.safetensors"),
    "head.weight",
  ]);
  assert.equal(out.code, 0, out.stderr);
  const result = JSON.parse(out.stdout.toString());
  const head = floats(192, 2);
  assert.deepEqual(result, { shape: [8, 24], first: head.readFloatLE(0), last: head.readFloatLE(191 * 4) });
});

describe("headers and conditional requests", () => {
  test("HEAD has the whole file's headers and no body", async () => {
    const file = await open(join(store, "multi.bin.mmh"));
    const sha = file.sha256;
    await file.close();
    const answer = await request("/models/multi.bin", { range: "bytes=0-9" }, "HEAD");
    assert.equal(answer.status, 200);
    assert.equal(answer.headers["content-length"], String(1 << 20));
    assert.equal(answer.headers.etag, `"${sha}"`);
    assert.equal(sha, sha256(originals.get("multi.bin")!));
    assert.equal(answer.headers["accept-ranges"], "bytes");
    assert.equal(answer.headers["content-type"], "application/octet-stream");
    assert.ok(answer.headers["last-modified"]);
    assert.equal(answer.body.length, 0);
  });

  test("If-None-Match with the ETag is 304; another tag is 200", async () => {
    const first = await request("/models/st/model.safetensors", {}, "HEAD");
    const etag = first.headers.etag!;
    const cached = await request("/models/st/model.safetensors", { "if-none-match": etag });
    assert.equal(cached.status, 304);
    assert.equal(cached.body.length, 0);
    assert.equal(cached.headers.etag, etag);
    const weak = await request("/models/st/model.safetensors", { "if-none-match": `"other", W/${etag}` });
    assert.equal(weak.status, 304);
    const changed = await request("/models/st/model.safetensors", { "if-none-match": '"other"' });
    assert.equal(changed.status, 200);
    assert.deepEqual(changed.body, originals.get("st/model.safetensors"));
  });

  test("If-Range: the range while the ETag or date matches, the whole file otherwise", async () => {
    const { headers } = await request("/models/multi.bin", {}, "HEAD");
    const ranged = await request("/models/multi.bin", { range: "bytes=10-19", "if-range": headers.etag! });
    assert.equal(ranged.status, 206);
    assert.equal(ranged.headers["content-range"], `bytes 10-19/${1 << 20}`);
    const byDate = await request("/models/multi.bin", {
      range: "bytes=10-19",
      "if-range": headers["last-modified"]!,
    });
    assert.equal(byDate.status, 206);
    const stale = await request("/models/multi.bin", { range: "bytes=10-19", "if-range": '"stale"' });
    assert.equal(stale.status, 200);
    assert.equal(stale.body.length, 1 << 20);
  });

  test("If-Match that fails is 412", async () => {
    const answer = await request("/models/multi.bin", { "if-match": '"nope"' });
    assert.equal(answer.status, 412);
  });

  test("416 carries Content-Range: bytes */SIZE", async () => {
    const answer = await request("/models/st/model.safetensors", { range: "bytes=999999-" });
    assert.equal(answer.status, 416);
    assert.equal(answer.headers["content-range"], `bytes */${originals.get("st/model.safetensors")!.length}`);
    assert.equal(errorCode(answer), "E_RANGE");
  });

  test("several ranges are answered as the one range that covers them", async () => {
    const answer = await request("/models/multi.bin", { range: "bytes=100-199, 50-59, 400-409" });
    assert.equal(answer.status, 206);
    assert.equal(answer.headers["content-range"], `bytes 50-409/${1 << 20}`);
    assert.deepEqual(answer.body, originals.get("multi.bin")!.subarray(50, 410));
  });

  test("an empty file is 200 with no bytes, whatever the range", async () => {
    const answer = await request("/models/empty.bin", { range: "bytes=0-10" });
    assert.equal(answer.status, 200);
    assert.equal(answer.headers["content-length"], "0");
    assert.equal(answer.body.length, 0);
  });
});

describe("folder archives", () => {
  test("each file is served with its own size and ETag", async () => {
    const config = await request("/models/folder/config.json");
    assert.equal(config.status, 200);
    assert.deepEqual(config.body, originals.get("folder/config.json"));
    assert.equal(config.headers.etag, `"${sha256(originals.get("folder/config.json")!)}"`);
    assert.equal(config.headers["content-type"], "application/json");
    const weights = originals.get("folder/sub/weights.bin")!;
    const head = await request("/models/folder/sub/weights.bin", {}, "HEAD");
    assert.equal(head.headers["content-length"], String(weights.length));
    const tail = await request("/models/folder/sub/weights.bin", { range: "bytes=-100" });
    assert.equal(tail.status, 206);
    assert.equal(
      tail.headers["content-range"],
      `bytes ${weights.length - 100}-${weights.length - 1}/${weights.length}`,
    );
    assert.deepEqual(tail.body, weights.subarray(weights.length - 100));
  });

  test("a missing member, a folder and the archive itself are 404", async () => {
    for (const path of ["/models/folder/nope.json", "/models/folder/sub", "/models/folder"]) {
      const answer = await request(path);
      assert.equal(answer.status, 404, path);
      assert.equal(errorCode(answer), "E_NOT_FOUND");
    }
  });
});

describe("paths stay in the store", () => {
  const secret = "the secret outside the store";

  // What each attempt is answered with: 403 E_UNSAFE_PATH for a path that could leave the
  // store, 404 for a name that is merely absent; never the file's bytes.
  for (const [path, status, code] of [
    ["/models/../outside/secret", 403, "E_UNSAFE_PATH"],
    ["/models/st/../../outside/secret", 403, "E_UNSAFE_PATH"],
    ["/models/%2e%2e/outside/secret", 403, "E_UNSAFE_PATH"],
    ["/models/%2E%2E%2Foutside%2Fsecret", 403, "E_UNSAFE_PATH"],
    ["/models//etc/passwd", 403, "E_UNSAFE_PATH"],
    ["/models/%2Fetc%2Fpasswd", 403, "E_UNSAFE_PATH"],
    ["/models/st%5C..%5C..%5Coutside%5Csecret", 403, "E_UNSAFE_PATH"],
    ["/models/multi.bin%00", 403, "E_UNSAFE_PATH"],
    ["/models/./multi.bin", 403, "E_UNSAFE_PATH"],
    ["/models/escape", 403, "E_UNSAFE_PATH"],
    ["/models/outdir/secret", 403, "E_UNSAFE_PATH"],
    // Decoded once: a literal name "%2e%2e", which is not there.
    ["/models/%252e%252e/outside/secret", 404, "E_NOT_FOUND"],
    // A name longer than the system allows cannot be a file there.
    [`/models/${"a".repeat(5000)}`, 404, "E_NOT_FOUND"],
    [`/models/${"a/".repeat(3000)}b`, 404, "E_NOT_FOUND"],
    // Refused by the router before the gateway sees it.
    ["/models/%zz", 400, undefined],
  ] as const) {
    test(`${path.length > 80 ? `${path.slice(0, 40)}... (${path.length} characters)` : path} is ${status}`, async () => {
      const answer = await request(path);
      assert.equal(answer.status, status);
      const text = answer.body.toString();
      assert.ok(!text.includes(secret));
      assert.ok(!text.includes(dir), "the store's real path is not shown");
      if (code) assert.equal(errorCode(answer), code);
    });
  }

  test("a link inside the store is followed", async () => {
    const answer = await request("/models/alias.bin", { range: "bytes=0-99" });
    assert.equal(answer.status, 206);
    assert.deepEqual(answer.body, originals.get("multi.bin")!.subarray(0, 100));
  });

  test("a missing file is 404 JSON; no store configured is 404 saying so", async () => {
    const missing = await request("/models/nothing/here");
    assert.equal(missing.status, 404);
    assert.equal(errorCode(missing), "E_NOT_FOUND");
    const none = await request("/models/multi.bin", { "x-test-no-store": "1" });
    assert.equal(none.status, 404);
    assert.match(JSON.parse(none.body.toString()).error.message, /no model store is configured/);
  });
});

describe("decoding", () => {
  test("a 4 KiB range decodes under two chunks' worth; the whole file decodes once", async () => {
    const file = await open(join(store, "multi.bin.mmh"));
    const largest = Math.max(...file.chunks.map((chunk) => chunk.rawLength));
    const chunks = file.chunks.length;
    await file.close();
    assert.ok(chunks >= 8, `${chunks} chunks`);
    counted.decoded = 0;
    const answer = await request("/models/multi.bin", { range: "bytes=500000-504095" });
    assert.equal(answer.status, 206);
    assert.deepEqual(answer.body, originals.get("multi.bin")!.subarray(500000, 504096));
    assert.ok(counted.decoded > 0 && counted.decoded < 2 * largest, `decoded ${counted.decoded}`);
    counted.decoded = 0;
    await request("/models/multi.bin");
    assert.equal(counted.decoded, 1 << 20);
  });

  test("a run longer than 64 MiB is read in pieces, decoding only what is asked", async () => {
    const file = await open(join(store, "run.bin.mmh"));
    const chunks = file.chunks.map((chunk) => chunk.rawLength);
    await file.close();
    assert.deepEqual(chunks, [80 << 20], "one run");
    const original = originals.get("run.bin")!;
    counted.decoded = 0;
    const small = await request("/models/run.bin", { range: "bytes=52428800-52432895" });
    assert.deepEqual(small.body, original.subarray(52428800, 52432896));
    assert.equal(counted.decoded, 4096);
    counted.decoded = 0;
    const tail = await request("/models/run.bin", { range: `bytes=${(40 << 20) + 3}-` });
    assert.equal(tail.status, 206);
    assert.ok(tail.body.equals(original.subarray((40 << 20) + 3)));
    assert.equal(counted.decoded, original.length - (40 << 20) - 3);
  });

  test("a client that goes away stops the decoding", async () => {
    counted.decoded = 0;
    await new Promise<void>((resolve, reject) => {
      const req = http.get(`${base}/models/big.bin`, { agent: false }, (res) => {
        res.once("data", () => {
          req.destroy();
          resolve();
        });
      });
      req.on("error", (error) => (req.destroyed ? undefined : reject(error)));
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const after = counted.decoded;
    assert.ok(after < 4 << 20, `decoded ${after} of ${8 << 20} bytes`);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(counted.decoded, after, "no decoding after the abort");
  });

  test("a corrupt first chunk is 422 with its code", async () => {
    const answer = await request("/models/bad-first.bin");
    assert.equal(answer.status, 422);
    assert.match(errorCode(answer), /^E_(CORRUPT|CHECKSUM)$/);
    assert.ok(!answer.body.toString().includes(dir), "the store's real path is not shown");
  });

  test("a corrupt later chunk cuts the response before its end", async () => {
    const answer = await request("/models/bad-late.bin");
    assert.equal(answer.status, 200);
    assert.equal(answer.complete, false);
    assert.ok(answer.body.length < 1 << 20);
    const before = await request("/models/bad-late.bin", { range: "bytes=0-999" });
    assert.deepEqual(before.body, originals.get("multi.bin")!.subarray(0, 1000));
  });
});

test("parseRange", () => {
  assert.deepEqual(parseRange("bytes=0-9", 100), { start: 0, end: 9 });
  assert.deepEqual(parseRange("bytes=90-", 100), { start: 90, end: 99 });
  assert.deepEqual(parseRange("bytes=-10", 100), { start: 90, end: 99 });
  assert.deepEqual(parseRange("bytes=-1000", 100), { start: 0, end: 99 });
  assert.deepEqual(parseRange("bytes=50-1000", 100), { start: 50, end: 99 });
  assert.equal(parseRange("bytes=100-", 100), "unsatisfiable");
  assert.equal(parseRange("bytes=-0", 100), "unsatisfiable");
  assert.equal(parseRange("bytes=9-0", 100), undefined);
  assert.equal(parseRange("items=0-9", 100), undefined);
  assert.equal(parseRange("bytes=a-b", 100), undefined);
  assert.equal(parseRange("bytes=0-9", 0), undefined);
  assert.equal(parseRange(undefined, 100), undefined);
});

test("gatewayOpenApi describes GET and HEAD with their responses", () => {
  const path = gatewayOpenApi["/models/{path}"];
  assert.deepEqual(Object.keys(path.get.responses).sort(), [
    "200",
    "206",
    "304",
    "400",
    "403",
    "404",
    "412",
    "416",
    "422",
  ]);
  assert.ok("Content-Range" in (path.get.responses["206"]?.headers ?? {}));
  assert.ok(!("206" in path.head.responses));
});
