/**
 * What the service's stack (Fastify, pino, prom-client, the per-request config, auth and
 * limit hooks, HTTP on loopback) costs over calling the library directly, one request at
 * a time: the same work through `mmh serve` and in process, interleaved in every round.
 *
 *   npx node bench/serve-overhead.ts            writes bench/results/serve-overhead.md
 *   npx node bench/serve-overhead.ts --quick    fewer rounds, writes nothing
 *
 * - compress: POST /v1/compress of a file's bytes, against compressStream() over the same
 *   bytes with their size (what the route runs for a body of a declared length, so a
 *   header-first model format is recognised); the two outputs must be the same bytes.
 * - decompress: POST /v1/decompress of that .mmh, against decompressStream() (what the
 *   route runs); same content.
 * - range: GET /models/NAME with a 64 KiB Range at a seeded offset, against open() on the
 *   .mmh, readRange(), close(): what the gateway does per request; same bytes.
 * The server runs with `defaults.threads` 1, as the library calls here do.
 */
import "./lib/help.ts";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compressStream, decompressStream, open } from "../src/index.ts";
import { generate } from "../src/tools/index.ts";
import { codeLine, root, writeReport } from "./lib/commands.ts";
import { mulberry32 } from "./lib/data.ts";
import { contentionNote, cpuWaitMicros, fmt, machineLines, table } from "./lib/report.ts";
import { startServe } from "./lib/serve.ts";

const quick = process.argv.includes("--quick");
const ROUNDS = quick ? 3 : 9;
const RANGE = 64 << 10;
const sha = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1];
};

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

async function collect(pieces: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const piece of pieces) parts.push(piece);
  return Buffer.concat(parts);
}

async function timed<T>(work: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const started = performance.now();
  const value = await work();
  return { ms: performance.now() - started, value };
}

async function startServer(
  config: string,
  store: string,
): Promise<{ url: string; stop: () => Promise<void> }> {
  const { child, url } = await startServe(config, store);
  return {
    url,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

async function httpBytes(url: string, init: RequestInit): Promise<Buffer> {
  const response = await fetch(url, init);
  const body = Buffer.from(await response.arrayBuffer());
  if (!response.ok) throw new Error(`${init.method ?? "GET"} ${url}: ${response.status} ${body}`);
  return body;
}

interface Row {
  input: string;
  bytes: number;
  op: string;
  library: number[];
  http: number[];
}

async function main(): Promise<void> {
  const started = performance.now();
  const cpuAtStart = cpuWaitMicros();
  const work = mkdtempSync(join(tmpdir(), "mmh-serve-overhead-"));
  const store = join(work, "store");
  const inputs: { name: string; bytes: Buffer }[] = [];
  const shared = join(root, "..", "shared", "data");
  for (const file of [
    "mnist-tinygrad_model.safetensors",
    "lora-imdb-distilbert_adapter_model.safetensors",
    "gpt2-tigrinya-lora_adapter_model.safetensors",
  ]) {
    try {
      inputs.push({ name: file, bytes: readFileSync(join(shared, file)) });
    } catch {
      console.log(`skipped ${file}: not in ../shared/data`);
    }
  }
  inputs.push({
    name: "gen BF16 32 MiB",
    bytes: generate({ kind: "safetensors", dtype: "BF16", size: 32 << 20, seed: 3 }),
  });
  const config = join(work, "config.json");
  writeFileSync(config, JSON.stringify({ defaults: { threads: 1 }, log: { level: "warn" } }));
  mkdirSync(store);
  const packed = new Map<string, Buffer>();
  for (const input of inputs) {
    const mmh = await collect(compressStream(once(input.bytes), { threads: 1, size: input.bytes.length }));
    packed.set(input.name, mmh);
    writeFileSync(join(store, `${input.name.replace(/\W+/g, "_")}.mmh`), mmh);
  }
  const server = await startServer(config, store);
  const rows: Row[] = [];
  try {
    const random = mulberry32(7);
    for (const input of inputs) {
      const name = input.name.replace(/\W+/g, "_");
      const mmh = packed.get(input.name)!;
      const path = join(store, `${name}.mmh`);
      const compressRow: Row = {
        input: input.name,
        bytes: input.bytes.length,
        op: "compress",
        library: [],
        http: [],
      };
      const decompressRow: Row = { ...compressRow, op: "decompress", library: [], http: [] };
      const rangeRow: Row = { ...compressRow, op: `range ${RANGE >> 10} KiB`, library: [], http: [] };
      console.log(`${input.name} ...`);
      for (let round = 0; round <= ROUNDS; round++) {
        const keep = round > 0; // round 0 warms both paths up
        const lib = await timed(() =>
          collect(compressStream(once(input.bytes), { threads: 1, size: input.bytes.length })),
        );
        const web = await timed(() =>
          httpBytes(`${server.url}/v1/compress`, { method: "POST", body: input.bytes }),
        );
        if (sha(lib.value) !== sha(mmh) || sha(web.value) !== sha(mmh))
          throw new Error(`${input.name}: compress outputs differ`);
        const libD = await timed(() => collect(decompressStream(once(mmh), { threads: 1 })));
        const webD = await timed(() =>
          httpBytes(`${server.url}/v1/decompress`, { method: "POST", body: mmh }),
        );
        if (!Buffer.from(libD.value).equals(input.bytes) || !webD.value.equals(input.bytes))
          throw new Error(`${input.name}: decompress outputs differ`);
        const at = Math.floor(random() * Math.max(1, input.bytes.length - RANGE));
        const length = Math.min(RANGE, input.bytes.length - at);
        const libR = await timed(async () => {
          await using file = await open(path);
          return await file.readRange(at, length);
        });
        const webR = await timed(() =>
          httpBytes(`${server.url}/models/${name}`, { headers: { Range: `bytes=${at}-${at + length - 1}` } }),
        );
        const slice = input.bytes.subarray(at, at + length);
        if (!Buffer.from(libR.value).equals(slice) || !webR.value.equals(slice))
          throw new Error(`${input.name}: range bytes differ at ${at}`);
        if (keep) {
          compressRow.library.push(lib.ms);
          compressRow.http.push(web.ms);
          decompressRow.library.push(libD.ms);
          decompressRow.http.push(webD.ms);
          rangeRow.library.push(libR.ms);
          rangeRow.http.push(webR.ms);
        }
      }
      rows.push(compressRow, decompressRow, rangeRow);
    }
  } finally {
    await server.stop();
    rmSync(work, { recursive: true, force: true });
  }
  const elapsed = performance.now() - started;
  const body = rows.map((r) => {
    const lib = median(r.library);
    const web = median(r.http);
    return [r.input, r.op, fmt(lib, 1), fmt(web, 1), fmt(web - lib, 1), fmt(web / lib, 3)];
  });
  const lines = [
    "# The service's overhead over the library",
    "",
    ...machineLines("npx node bench/serve-overhead.ts"),
    codeLine(),
    `- Took ${fmt(elapsed / 1000)} s. ${contentionNote(cpuAtStart, elapsed)}`,
    "",
    `Milliseconds, medians of ${ROUNDS} rounds after a warm-up round; in every round each operation runs in process and then through \`mmh serve\` on 127.0.0.1 (one request at a time, \`defaults.threads\` 1, the client in this process). "http - library" is what Fastify, pino, prom-client, the request hooks and loopback HTTP add to one request; every answer was checked against the library's (the same .mmh bytes, the same content, the same range).`,
    "",
    table(["input", "operation", "library ms", "http ms", "http - library ms", "http / library"], body),
    "",
    "- compress: `compressStream(body, { size })` collected, against `POST /v1/compress` with a Content-Length (the route passes the declared size, so header-first model formats are recognised on both sides).",
    "- decompress: `decompressStream(mmh)` collected (what the route runs), against `POST /v1/decompress`.",
    `- range: \`open(FILE.mmh)\`, \`readRange(offset, ${RANGE})\`, \`close()\`, against \`GET /models/NAME\` with \`Range: bytes=offset-(offset+${RANGE - 1})\` (offsets from mulberry32, seed 7).`,
    `- Inputs: the real files in ../shared/data (${inputs.length - 1} found) and gen BF16 32 MiB from \`generate\`.`,
    "",
  ];
  console.log(lines.join("\n"));
  writeReport(quick ? undefined : join(root, "bench", "results", "serve-overhead.md"), lines);
}

await main();
