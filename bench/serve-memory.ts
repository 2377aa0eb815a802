/**
 * The resident memory `mmh serve` keeps after bursts of requests, with the fixed glibc mmap
 * threshold it restarts with (src/cli/malloc.ts) and with glibc's own behaviour
 * (MMH_MALLOC_DEFAULTS=1), one server after the other on the same requests.
 *
 *   npx node bench/serve-memory.ts            writes bench/results/serve-memory.md
 *   npx node bench/serve-memory.ts --quick    3 rounds, writes nothing
 *
 * Each round sends 40 requests at once: two thirds are compress uploads of a real
 * safetensors file that the client abandons half-way (5-50 ms after the first half), one
 * third are decompress requests whose body is not a .mmh (answered 422). After each round
 * the server is left idle for 3 s, then its VmRSS (from /proc) and its V8 heap and
 * external memory (from its own /metrics) are read. Linux with glibc only.
 */
import "./lib/help.ts";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { codeLine, root, writeReport } from "./lib/commands.ts";
import { contentionNote, cpuWaitMicros, fmt, machineLines, table } from "./lib/report.ts";
import { startServe } from "./lib/serve.ts";

const quick = process.argv.includes("--quick");
const ROUNDS = quick ? 3 : 8;
const PER_ROUND = 40;
const SETTLE_MS = 3000;
const outFile = quick ? undefined : join(root, "bench", "results", "serve-memory.md");
const INPUT = join(root, "..", "shared", "data", "gpt2-tigrinya-lora_adapter_model.safetensors");

interface Reading {
  rss: number;
  heapUsed: number;
  external: number;
}

interface Served {
  url: string;
  port: number;
  pid: number;
  environ: string;
  stop(): Promise<void>;
}

async function serve(work: string, env: NodeJS.ProcessEnv): Promise<Served> {
  const store = join(work, "store");
  mkdirSync(store, { recursive: true });
  const config = join(work, "config.json");
  writeFileSync(config, JSON.stringify({ limits: { queue: 1024 }, log: { level: "warn" } }));
  const { child, url } = await startServe(config, store, env);
  const pid = child.pid ?? 0;
  const environ = readFileSync(`/proc/${pid}/environ`, "utf8")
    .split("\0")
    .filter((entry) => entry.startsWith("MALLOC_") || entry.startsWith("MMH_MALLOC"))
    .join(" ");
  return {
    url,
    port: Number(new URL(url).port),
    pid,
    environ: environ || "(none)",
    async stop() {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

async function reading(served: Served): Promise<Reading> {
  const status = readFileSync(`/proc/${served.pid}/status`, "utf8");
  const rss = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024;
  const text = await (await fetch(`${served.url}/metrics`)).text();
  const sample = (name: string) =>
    Number(
      text
        .split("\n")
        .find((line) => line.startsWith(`${name} `))
        ?.split(" ")[1] ?? Number.NaN,
    );
  return {
    rss,
    heapUsed: sample("nodejs_heap_size_used_bytes"),
    external: sample("nodejs_external_memory_bytes"),
  };
}

function abandoned(port: number, body: Buffer, waitMs: number): Promise<void> {
  return new Promise((resolve) => {
    const req = request({
      host: "127.0.0.1",
      port,
      method: "POST",
      path: "/v1/compress",
      headers: { "content-length": body.length },
    });
    req.on("error", () => resolve());
    req.write(body.subarray(0, body.length >> 1));
    setTimeout(() => {
      req.destroy();
      resolve();
    }, waitMs);
  });
}

function refused(port: number, body: Buffer): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: "127.0.0.1", port, method: "POST", path: "/v1/decompress" }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
      res.on("error", () => resolve(0));
    });
    req.on("error", () => resolve(0));
    req.end(body);
  });
}

const mib = (bytes: number) => fmt(bytes / (1 << 20), 1);

async function main(): Promise<void> {
  const started = performance.now();
  const waitAtStart = cpuWaitMicros();
  const body = readFileSync(INPUT);
  const settings: { name: string; env: NodeJS.ProcessEnv }[] = [
    { name: "MALLOC_MMAP_THRESHOLD_=131072 (mmh serve's restart)", env: { ...process.env } },
    { name: "glibc's own (MMH_MALLOC_DEFAULTS=1)", env: { ...process.env, MMH_MALLOC_DEFAULTS: "1" } },
  ];
  for (const setting of settings) delete setting.env.MALLOC_MMAP_THRESHOLD_;
  const results: { name: string; environ: string; idle: Reading; rounds: Reading[]; statuses: number[] }[] =
    [];
  for (const setting of settings) {
    const work = mkdtempSync(join(tmpdir(), "mmh-serve-memory-"));
    const served = await serve(work, setting.env);
    try {
      const idle = await reading(served);
      const rounds: Reading[] = [];
      const statuses: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const jobs: Promise<unknown>[] = [];
        for (let i = 0; i < PER_ROUND; i++) {
          if (i % 3 === 2) jobs.push(refused(served.port, body).then((status) => statuses.push(status)));
          else jobs.push(abandoned(served.port, body, 5 + ((i * 7 + round * 13) % 46)));
        }
        await Promise.all(jobs);
        await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
        rounds.push(await reading(served));
        console.log(`${setting.name}: round ${round + 1}: RSS ${mib(rounds.at(-1)!.rss)} MiB`);
      }
      results.push({ name: setting.name, environ: served.environ, idle, rounds, statuses });
    } finally {
      await served.stop();
      rmSync(work, { recursive: true, force: true });
    }
  }
  const elapsed = performance.now() - started;
  const unexpected = results.flatMap((r) => r.statuses).filter((status) => status !== 422).length;
  const lines = [
    "# `mmh serve`: resident memory after bursts of requests",
    "",
    ...machineLines(`npx node bench/serve-memory.ts${quick ? " --quick" : ""}`),
    codeLine(),
    `- Took ${fmt(elapsed / 1000)} s. ${contentionNote(waitAtStart, elapsed)}`,
    "",
    `Two servers, one after the other, each given ${ROUNDS} rounds of ${PER_ROUND} requests at once: two thirds compress uploads of ${INPUT.split("/").pop()} (${body.length} B) abandoned half-way, one third decompress requests whose body is not a .mmh (${unexpected === 0 ? "every one answered 422" : `${unexpected} not answered 422`}). After each round, ${SETTLE_MS / 1000} s idle, then VmRSS (/proc) and the V8 heap and external memory (the server's /metrics). MiB.`,
    "",
    table(
      [
        "malloc setting",
        "environment seen in /proc",
        "idle at start",
        ...results[0].rounds.map((_, i) => `after ${i + 1}`),
      ],
      results.map((r) => [r.name, r.environ, mib(r.idle.rss), ...r.rounds.map((x) => mib(x.rss))]),
    ),
    "",
    "V8 heap used / external memory (ArrayBuffers) after each round, from the same readings: what JavaScript holds, beside the resident memory above:",
    "",
    table(
      ["malloc setting", ...results[0].rounds.map((_, i) => `after ${i + 1}`)],
      results.map((r) => [r.name, ...r.rounds.map((x) => `${mib(x.heapUsed)} / ${mib(x.external)}`)]),
    ),
    "",
  ];
  writeReport(outFile, lines);
}

await main();
