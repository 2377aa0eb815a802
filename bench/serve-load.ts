/**
 * `mmh serve` under load and under faults (issue 12): the service started as a child
 * process on 127.0.0.1, driven by autocannon with a mix of compress, decompress and gateway
 * range reads, while clients of our own check the bytes of every response they get.
 *
 *   npx node bench/serve-load.ts            full run: 200 connections, 60 s a phase (writes results/serve-load.md)
 *   npx node bench/serve-load.ts --quick    50 connections, 10 s a phase, writes nothing
 *
 * Options: --workers N (mmh serve --workers, default 1; RSS and open files are summed over
 * the server's processes), --connections N, --seconds N (per phase), --verifiers N (checking clients, on top
 * of the connections, default 4), --settle N (idle seconds before each RSS reading, default
 * 15; 5 with --quick), --data DIR (real safetensors files, default ../shared/data), --out FILE.
 *
 * The server: `node bin/mmh.js serve --host 127.0.0.1 --port 0 --config CONFIG --store STORE --workers N`,
 * STORE holding each input's .mmh (made by the library's `compress`, default options), and
 * CONFIG with the default `limits.concurrency` (8) and `limits.queue` 1024, above the connections,
 * so that every request is served (in arrival order) rather than refused.
 *
 * Phases, one after another against the same server process:
 *   1. warm-up (10 s; 5 s --quick): the load mix, unmeasured; then idle, then the baseline RSS;
 *   2. load: the mix for --seconds on --connections connections;
 *   3. faults: the same, with 10% of the decompress bodies damaged, 10% of the connections
 *      replaced by clients that send half a body and go away, and the config file rewritten
 *      every second, every other rewrite invalid.
 * After phases 2 and 3 the server is left idle for --settle seconds and its RSS read again.
 * A /healthz probe runs every second throughout; the server's resident memory is read
 * from /proc/PID/status every 200 ms.
 */
import "./lib/help.ts";
import { fork, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Agent, request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { compress, decompress, decompressStream } from "../src/index.ts";
import type { CannonJob, CannonReport, CannonResult, Kind } from "./lib/cannon-child.ts";
import { KINDS } from "./lib/cannon-child.ts";
import { codeLine, root, writeReport } from "./lib/commands.ts";
import { mulberry32 } from "./lib/data.ts";
import { argValue, contentionNote, cpuWaitMicros, fmt, KiB, MiB, machineLines, table } from "./lib/report.ts";

const quick = process.argv.includes("--quick");
const connections = Number(argValue("--connections") ?? (quick ? 50 : 200));
const seconds = Number(argValue("--seconds") ?? (quick ? 10 : 60));
const verifiers = Number(argValue("--verifiers") ?? 4);
const workers = Number(argValue("--workers") ?? 1);
const settleSeconds = Number(argValue("--settle") ?? (quick ? 5 : 15));
const warmupSeconds = quick ? 5 : 10;
const dataDir = argValue("--data") ?? join(root, "..", "shared", "data");
const outFile = argValue("--out") ?? (quick ? undefined : join(root, "bench", "results", "serve-load.md"));
/** Autocannon's per-request timeout: a request slower than this counts as an error. */
const TIMEOUT_SECONDS = 30;
/** Share of the load's connections per kind of request. */
const MIX: Record<Kind, number> = { compress: 0.1, decompress: 0.2, range: 0.7 };
const FAULT_SHARE = 0.1;

// ---------------------------------------------------------------------------------------
// Inputs and the store.

interface Input {
  name: string;
  raw: Buffer;
  sha256: string;
  mmh: Buffer;
  /** Damage the decoder finds before the first byte of content: answered 422. */
  earlyCorrupt: Buffer;
  /** Damage in a later chunk: the answer starts and is then cut. */
  lateCorrupt: Buffer;
  /** Where raw, mmh and earlyCorrupt are on disk, for the load generator's process. */
  files: { raw: string; mmh: string; earlyCorrupt: string };
}

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

function flipped(bytes: Buffer, at: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[at] ^= 0x5a;
  return copy;
}

/** Pieces of content `decompressStream` yields before it fails on `bytes` (-1: it does not fail). */
async function piecesBeforeFailure(bytes: Buffer): Promise<number> {
  let pieces = 0;
  try {
    for await (const _ of decompressStream(
      (async function* () {
        yield bytes;
      })(),
      { threads: 1 },
    ))
      pieces++;
    return -1;
  } catch {
    return pieces;
  }
}

async function prepareInputs(store: string, bodies: string): Promise<Input[]> {
  const inputs: Input[] = [];
  for (const name of readdirSync(dataDir).sort()) {
    if (!name.endsWith(".safetensors")) continue;
    const raw = readFileSync(join(dataDir, name));
    const mmh = Buffer.from(await compress(raw));
    writeFileSync(join(store, `${name}.mmh`), mmh);
    let earlyCorrupt: Buffer | undefined;
    for (const at of [200, 400, 1000, 2000, 4000, 8000]) {
      const candidate = flipped(mmh, at);
      if ((await piecesBeforeFailure(candidate)) === 0) {
        earlyCorrupt = candidate;
        break;
      }
    }
    let lateCorrupt: Buffer | undefined;
    for (const back of [4000, 8000, 16000, 32000]) {
      const candidate = flipped(mmh, mmh.length - back);
      if ((await piecesBeforeFailure(candidate)) > 0) {
        lateCorrupt = candidate;
        break;
      }
    }
    if (!earlyCorrupt || !lateCorrupt)
      throw new Error(`${name}: found no early and late damage to test with`);
    const files = {
      raw: join(bodies, `${name}.raw`),
      mmh: join(bodies, `${name}.mmh`),
      earlyCorrupt: join(bodies, `${name}.early`),
    };
    writeFileSync(files.raw, raw);
    writeFileSync(files.mmh, mmh);
    writeFileSync(files.earlyCorrupt, earlyCorrupt);
    inputs.push({ name, raw, sha256: sha256(raw), mmh, earlyCorrupt, lateCorrupt, files });
  }
  if (inputs.length === 0) throw new Error(`no .safetensors files in ${dataDir}`);
  return inputs;
}

// ---------------------------------------------------------------------------------------
// The server process and what is read from it.

interface Server {
  pid: number;
  url: string;
  port: number;
  /** Log lines on standard error; those at level error (50) or above, but for failed reloads. */
  logLines: number;
  errorCount: number;
  errorLines: string[];
  reloadErrorLines: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exitedEarly: boolean;
  /** The last 30 lines of its log. */
  logTail: string[];
  /** Each request's log line: its route, status and the server's own duration (ms). */
  requests: { route: string; status: number; ms: number }[];
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
}

async function startServer(configFile: string, store: string): Promise<Server> {
  const child = spawn(
    process.execPath,
    [
      join(root, "bin", "mmh.js"),
      "serve",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--config",
      configFile,
      "--store",
      store,
      "--workers",
      String(workers),
    ],
    { cwd: root, stdio: ["ignore", "pipe", "pipe"] },
  );
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const server: Partial<Server> &
    Pick<Server, "logLines" | "errorCount" | "errorLines" | "reloadErrorLines" | "exitedEarly" | "requests"> =
    {
      requests: [],
      logLines: 0,
      errorCount: 0,
      errorLines: [],
      reloadErrorLines: 0,
      exitedEarly: false,
    };
  let pending = "";
  const tail: string[] = [];
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (text: string) => {
    pending += text;
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) {
      server.logLines++;
      tail.push(line);
      if (tail.length > 30) tail.shift();
      if (line.includes('"msg":"request"')) {
        try {
          const record = JSON.parse(line) as { route: string; status: number; durationMs: number };
          server.requests?.push({ route: record.route, status: record.status, ms: record.durationMs });
        } catch {}
      }
      const level = /"level":(\d+)/.exec(line);
      if (!level || Number(level[1]) < 50) continue;
      // A rewrite of the config that is invalid is logged at level error, as expected here.
      if (line.includes("config reload failed")) server.reloadErrorLines++;
      else {
        server.errorCount++;
        if (server.errorLines.length < 20) server.errorLines.push(line);
      }
    }
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (text: string) => {
      out += text;
      const match = /mmh: listening on (http:\/\/\S+)/.exec(out);
      if (match) resolve(match[1]);
    });
    void exited.then(({ code }) =>
      reject(new Error(`mmh serve exited (${code}) before listening: ${pending}`)),
    );
  });
  let stopping = false;
  void exited.then(() => {
    if (!stopping) server.exitedEarly = true;
  });
  return Object.assign(server, {
    pid: child.pid ?? 0,
    url,
    port: Number(new URL(url).port),
    exited,
    logTail: tail,
    async stop() {
      stopping = true;
      const started = performance.now();
      child.kill("SIGTERM");
      const result = await exited;
      return { ...result, ms: performance.now() - started };
    },
  }) as Server;
}

/** The server's processes: its own and, with --workers, its workers (its children). */
function processesOf(pid: number): number[] {
  let children: number[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {}
  return [pid, ...children];
}

/** kB figures of /proc/PID/status (VmRSS, VmHWM), in bytes, summed over the server's processes. */
function memoryOf(pid: number): { rss: number; hwm: number } {
  let rss = 0;
  let hwm = 0;
  for (const each of processesOf(pid)) {
    try {
      const status = readFileSync(`/proc/${each}/status`, "utf8");
      const field = (name: string) =>
        Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0) * 1024;
      rss += field("VmRSS");
      hwm += field("VmHWM");
    } catch {}
  }
  return { rss, hwm };
}

const openFiles = (pid: number) =>
  processesOf(pid).reduce((sum, each) => {
    try {
      return sum + readdirSync(`/proc/${each}/fd`).length;
    } catch {
      return sum;
    }
  }, 0);

/** Peak VmRSS seen between start() and stop(), sampled every 200 ms. */
class RssSampler {
  peak = 0;
  #timer: NodeJS.Timeout | undefined;
  readonly #pid: number;
  constructor(pid: number) {
    this.#pid = pid;
  }
  start(): void {
    this.peak = 0;
    const sample = () => {
      try {
        this.peak = Math.max(this.peak, memoryOf(this.#pid).rss);
      } catch {
        // the process is gone; the health probe reports that
      }
    };
    sample();
    this.#timer = setInterval(sample, 200);
  }
  stop(): number {
    clearInterval(this.#timer);
    return this.peak;
  }
}

// ---------------------------------------------------------------------------------------
// Our own clients: every response they get is checked.

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  trailers: NodeJS.Dict<string>;
  body: Buffer;
  /** The response (or the connection) ended before a clean end. */
  cut: boolean;
  error?: string;
}

let agent = new Agent({ keepAlive: true, maxSockets: 64 });

/** Close the kept-alive connections (so the server's open files count only its own). */
function resetAgent(): void {
  agent.destroy();
  agent = new Agent({ keepAlive: true, maxSockets: 64 });
}

function call(
  port: number,
  method: string,
  path: string,
  body: Buffer | undefined,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<Answer> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (answer: Answer) => {
      if (settled) return;
      settled = true;
      resolve(answer);
    };
    const req = httpRequest({ host: "127.0.0.1", port, method, path, headers, agent }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (part: Buffer) => parts.push(part));
      const result = (cut: boolean, error?: string) => ({
        status: res.statusCode ?? 0,
        headers: res.headers,
        trailers: res.trailers,
        body: Buffer.concat(parts),
        cut,
        ...(error ? { error } : {}),
      });
      res.on("end", () => done(result(false)));
      res.on("aborted", () => done(result(true, "response aborted")));
      res.on("error", (error) => done(result(true, error.message)));
      res.on("close", () => done(result(!res.complete, res.complete ? undefined : "closed")));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on("error", (error) =>
      done({ status: 0, headers: {}, trailers: {}, body: Buffer.alloc(0), cut: true, error: error.message }),
    );
    req.end(body);
  });
}

interface Tally {
  /** Responses whose bytes were checked and were right. */
  verified: number;
  /** Expected failures: 422 or a cut answer to a damaged body. */
  expected: number;
  /** Wrong bytes, a wrong status, a cut answer where none was due, a timeout. */
  unexpected: number;
}

const newTallies = (): Record<Kind | "corrupt", Tally> => ({
  compress: { verified: 0, expected: 0, unexpected: 0 },
  decompress: { verified: 0, expected: 0, unexpected: 0 },
  range: { verified: 0, expected: 0, unexpected: 0 },
  corrupt: { verified: 0, expected: 0, unexpected: 0 },
});

/**
 * A client in a loop until `stop`: a random request of the mix (and, with `faults`, a
 * damaged decompress body one time in ten), each response checked in full.
 */
async function verifierLoop(
  port: number,
  inputs: Input[],
  seed: number,
  faults: boolean,
  stop: () => boolean,
  tallies: Record<Kind | "corrupt", Tally>,
  problems: string[],
): Promise<void> {
  const random = mulberry32(seed);
  let n = 0;
  while (!stop()) {
    const input = inputs[Math.floor(random() * inputs.length)];
    const pick = random();
    const chosen: Kind =
      pick < MIX.compress ? "compress" : pick < MIX.compress + MIX.decompress ? "decompress" : "range";
    const kind = faults && chosen === "decompress" && random() < FAULT_SHARE ? "corrupt" : chosen;
    const id = `verify-${seed}-${n++}`;
    const headers = { "x-request-id": id, "content-type": "application/octet-stream" };
    const tally = tallies[kind];
    const problem = (what: string) => {
      tally.unexpected++;
      if (problems.length < 20) problems.push(`${kind} ${input.name} (${id}): ${what}`);
    };
    const timeout = TIMEOUT_SECONDS * 1000;
    if (kind === "compress") {
      const answer = await call(port, "POST", "/v1/compress", input.raw, headers, timeout);
      if (answer.status !== 200 || answer.cut) problem(`status ${answer.status} ${answer.error ?? ""}`);
      else if (answer.headers["x-request-id"] !== id)
        problem(`x-request-id ${answer.headers["x-request-id"]}`);
      else {
        let restored: Uint8Array | undefined;
        try {
          restored = await decompress(answer.body, { threads: 1 });
        } catch (error) {
          problem(`its .mmh does not decompress: ${(error as Error).message}`);
        }
        if (restored) {
          if (sha256(restored) !== input.sha256) problem("decompressed output differs from the input");
          else if (answer.trailers["mmh-sha256"] !== input.sha256) problem("mmh-sha256 trailer differs");
          else tally.verified++;
        }
      }
    } else if (kind === "decompress") {
      const answer = await call(port, "POST", "/v1/decompress", input.mmh, headers, timeout);
      if (answer.status !== 200 || answer.cut) problem(`status ${answer.status} ${answer.error ?? ""}`);
      else if (answer.headers["x-request-id"] !== id)
        problem(`x-request-id ${answer.headers["x-request-id"]}`);
      else if (sha256(answer.body) !== input.sha256) problem("content differs from the original");
      else tally.verified++;
    } else if (kind === "corrupt") {
      // Damage in a late chunk: the answer has started, so it must be cut, never end cleanly.
      const answer = await call(port, "POST", "/v1/decompress", input.lateCorrupt, headers, timeout);
      if (answer.status === 422 || (answer.status === 200 && answer.cut)) {
        // What did arrive must still be the original's first bytes.
        if (!input.raw.subarray(0, answer.body.length).equals(answer.body) && answer.status === 200)
          problem("the bytes before the cut differ from the original");
        else tally.expected++;
      } else problem(`status ${answer.status}, ${answer.cut ? "cut" : "a clean end"} ${answer.error ?? ""}`);
    } else {
      const length = 4 * KiB + Math.floor(random() * 60 * KiB);
      const start = Math.floor(random() * Math.max(1, input.raw.length - length));
      const end = Math.min(input.raw.length, start + length) - 1;
      const answer = await call(
        port,
        "GET",
        `/models/${input.name}`,
        undefined,
        { "x-request-id": id, range: `bytes=${start}-${end}` },
        timeout,
      );
      if (answer.status !== 206 || answer.cut) problem(`status ${answer.status} ${answer.error ?? ""}`);
      else if (answer.headers["content-range"] !== `bytes ${start}-${end}/${input.raw.length}`)
        problem(`content-range ${answer.headers["content-range"]}`);
      else if (answer.headers["x-request-id"] !== id)
        problem(`x-request-id ${answer.headers["x-request-id"]}`);
      else if (!answer.body.equals(input.raw.subarray(start, end + 1))) problem("range bytes differ");
      else tally.verified++;
    }
  }
}

/**
 * A client that sends half a body, waits a little and goes away, in a loop until `stop`.
 * Between attempts it waits 1-3 s, about as long as the other clients wait for an answer
 * (their median latency in these runs), so that aborting clients make about their share
 * of the requests: unpaced, 20 of them sent 13,000 aborted uploads in a minute, 80% of
 * all requests, far from "10% of clients abort".
 */
async function abortLoop(
  port: number,
  inputs: Input[],
  seed: number,
  stop: () => boolean,
  counts: { sent: number; answered: number },
): Promise<void> {
  const random = mulberry32(seed);
  while (!stop()) {
    const input = inputs[Math.floor(random() * inputs.length)];
    const compressing = random() < 0.5;
    const body = compressing ? input.raw : input.mmh;
    await new Promise<void>((resolve) => {
      // A connection of its own: destroying the request destroys the socket.
      const req = httpRequest(
        {
          host: "127.0.0.1",
          port,
          method: "POST",
          path: compressing ? "/v1/compress" : "/v1/decompress",
          headers: { "content-length": String(body.length), "content-type": "application/octet-stream" },
          agent: false,
        },
        () => {
          counts.answered++;
          req.destroy();
        },
      );
      req.on("error", () => {});
      req.on("close", resolve);
      req.write(body.subarray(0, body.length >> 1), () => {
        setTimeout(() => req.destroy(), 5 + Math.floor(random() * 45));
      });
      counts.sent++;
    });
    await sleep(1000 + Math.floor(random() * 2000));
  }
}

/** GET /healthz every second until `stop`. */
async function healthLoop(
  port: number,
  stop: () => boolean,
  health: { ok: number; failed: number; maxMs: number },
): Promise<void> {
  while (!stop()) {
    const started = performance.now();
    const answer = await call(port, "GET", "/healthz", undefined, {}, 5000);
    const ms = performance.now() - started;
    health.maxMs = Math.max(health.maxMs, ms);
    if (answer.status === 200 && !answer.cut) health.ok++;
    else health.failed++;
    await sleep(Math.max(0, 1000 - ms));
  }
}

// ---------------------------------------------------------------------------------------
// The config file and what the server says of it.

const GOOD_CONFIG = (goal: string) =>
  JSON.stringify({ defaults: { goal }, limits: { queue: 1024 }, log: { level: "info" } });
const BAD_CONFIGS = ['{"defaults": {"goal": "balanced"', JSON.stringify({ limits: { concurrency: 0 } })];

async function rewriteLoop(configFile: string, stop: () => boolean, counts: { good: number; bad: number }) {
  let i = 0;
  while (!stop()) {
    if (i % 2 === 0) {
      writeFileSync(configFile, GOOD_CONFIG(i % 4 === 0 ? "speed" : "balanced"));
      counts.good++;
    } else {
      writeFileSync(configFile, BAD_CONFIGS[(i >> 1) % 2]);
      counts.bad++;
    }
    i++;
    await sleep(1000);
  }
  // Leave it valid, as the service's last good config.
  writeFileSync(configFile, GOOD_CONFIG("balanced"));
}

interface ServerView {
  reloads: { success: number; failure: number };
  /** From prom-client's process metrics, summed over the workers with --workers: bytes. */
  memory: { rss: number; heapTotal: number; heapUsed: number; external: number };
  generation: number;
  inFlight: number;
  /** mmh_idle_collections_total (NaN where the service does not export it). */
  idleCollections: number;
  errors: Record<string, number>;
}

async function serverView(port: number): Promise<ServerView> {
  const metrics = (await call(port, "GET", "/metrics", undefined, {}, 10_000)).body.toString();
  const value = (pattern: RegExp) => Number(pattern.exec(metrics)?.[1] ?? Number.NaN);
  const errors: Record<string, number> = {};
  for (const match of metrics.matchAll(/^mmh_errors_total\{code="(\w+)"\} (\d+)/gm))
    errors[match[1]] = Number(match[2]);
  const ready = JSON.parse((await call(port, "GET", "/readyz", undefined, {}, 10_000)).body.toString()) as {
    config: { generation: number };
  };
  return {
    reloads: {
      success: value(/^mmh_config_reloads_total\{result="success"\} (\d+)/m),
      failure: value(/^mmh_config_reloads_total\{result="failure"\} (\d+)/m),
    },
    generation: ready.config.generation,
    memory: {
      rss: value(/^process_resident_memory_bytes (\d+)/m),
      heapTotal: value(/^nodejs_heap_size_total_bytes (\d+)/m),
      heapUsed: value(/^nodejs_heap_size_used_bytes (\d+)/m),
      external: value(/^nodejs_external_memory_bytes (\d+)/m),
    },
    inFlight: value(/^mmh_requests_in_flight (\d+)/m),
    idleCollections: value(/^mmh_idle_collections_total (\d+)/m),
    errors,
  };
}

// ---------------------------------------------------------------------------------------
// A phase: autocannon per kind, our verifiers, the health probe, and with faults the rest.

interface PhaseResult {
  name: string;
  cannon: Record<Kind, CannonResult>;
  /** Damaged bodies autocannon sent to /v1/decompress (faults). */
  corruptSent: number;
  tallies: Record<Kind | "corrupt", Tally>;
  problems: string[];
  aborts: { sent: number; answered: number };
  health: { ok: number; failed: number; maxMs: number };
  rewrites: { good: number; bad: number };
  peakRss: number;
  seconds: number;
  /**
   * CPU seconds over the phase: the server's processes, the load generator's process, and
   * this one (checking clients, health probe, aborting clients, reading the server's log);
   * with the load generator's event-loop delay (ms).
   */
  cpu: {
    server: number;
    generator: number;
    checkers: number;
    generatorLoopP99: number;
    generatorLoopMax: number;
  };
  /** The server's own durations of the requests it logged during the phase. */
  serverSide: { route: string; status: number; ms: number }[];
}

/** Runs the load in a process of its own (bench/lib/cannon-child.ts). */
function runCannon(job: CannonJob): Promise<CannonReport> {
  const child = fork(join(root, "bench", "lib", "cannon-child.ts"), [], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  return new Promise((resolve, reject) => {
    let report: CannonReport | undefined;
    child.once("message", (message) => {
      report = message as CannonReport;
    });
    child.once("exit", (code) =>
      report ? resolve(report) : reject(new Error(`the load generator exited with ${code} and no report`)),
    );
    child.send(job);
  });
}

/** User + system CPU seconds of the server's processes (utime and stime of /proc/PID/stat). */
function cpuSecondsOf(pid: number): number {
  let ticks = 0;
  for (const each of processesOf(pid)) {
    try {
      const stat = readFileSync(`/proc/${each}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {}
  }
  return ticks / 100;
}

function connectionsFor(total: number): Record<Kind, number> {
  const range = total - Math.round(total * MIX.compress) - Math.round(total * MIX.decompress);
  return {
    compress: Math.round(total * MIX.compress),
    decompress: Math.round(total * MIX.decompress),
    range,
  };
}

async function runPhase(
  name: string,
  server: Server,
  inputs: Input[],
  duration: number,
  faults: boolean,
  configFile: string,
  sampler: RssSampler,
): Promise<PhaseResult> {
  const seed = name.length * 1000;
  const aborters = faults ? Math.round(connections * FAULT_SHARE) : 0;
  const job: CannonJob = {
    url: server.url,
    duration,
    timeoutSeconds: TIMEOUT_SECONDS,
    connections: connectionsFor(connections - aborters),
    seed,
    corruptShare: faults ? FAULT_SHARE : 0,
    inputs: inputs.map((input) => ({ name: input.name, size: input.raw.length, ...input.files })),
  };
  let stopped = false;
  const stop = () => stopped;
  const tallies = newTallies();
  const problems: string[] = [];
  const aborts = { sent: 0, answered: 0 };
  const health = { ok: 0, failed: 0, maxMs: 0 };
  const rewrites = { good: 0, bad: 0 };
  sampler.start();
  const started = performance.now();
  const loggedBefore = server.requests.length;
  const helpers = [
    healthLoop(server.port, stop, health),
    ...Array.from({ length: verifiers }, (_, i) =>
      verifierLoop(server.port, inputs, seed + i + 1, faults, stop, tallies, problems),
    ),
    ...Array.from({ length: aborters }, (_, i) =>
      abortLoop(server.port, inputs, seed + 100 + i, stop, aborts),
    ),
    ...(faults ? [rewriteLoop(configFile, stop, rewrites)] : []),
  ];
  const cpuBefore = process.cpuUsage();
  const serverCpuBefore = cpuSecondsOf(server.pid);
  const report = await runCannon(job);
  const cpu = process.cpuUsage(cpuBefore);
  const serverCpu = cpuSecondsOf(server.pid) - serverCpuBefore;
  stopped = true;
  await Promise.all(helpers);
  resetAgent();
  const elapsed = (performance.now() - started) / 1000;
  return {
    name,
    cannon: report.results,
    corruptSent: report.corruptSent,
    cpu: {
      server: serverCpu,
      generator: report.cpuSeconds,
      checkers: (cpu.user + cpu.system) / 1e6,
      generatorLoopP99: report.loopDelayP99Ms,
      generatorLoopMax: report.loopDelayMaxMs,
    },
    tallies,
    problems,
    aborts,
    health,
    rewrites,
    peakRss: sampler.stop(),
    seconds: elapsed,
    serverSide: server.requests.slice(loggedBefore),
  };
}

/** Idle for `seconds`, then the server's RSS. */
async function settledRss(server: Server): Promise<number> {
  await sleep(settleSeconds * 1000);
  return memoryOf(server.pid).rss;
}

// ---------------------------------------------------------------------------------------

const expectedStatus: Record<Kind, string> = { compress: "200", decompress: "200", range: "206" };

/**
 * Answers autocannon counted as failed that were not expected: non-2xx, socket errors and
 * timeouts. A damaged decompress body (faults) is expected to get a 422 with its connection
 * closed (Connection: close); autocannon does not heed that header and writes its next
 * request on the closed connection, which it counts as a socket error. So on decompress,
 * up to `corruptSent` 422s are expected, and up to one socket error per 422.
 */
function unexpectedOf(kind: Kind, result: CannonResult, corruptSent: number): number {
  let other = 0;
  let refused = 0;
  for (const [status, { count }] of Object.entries(result.statusCodeStats)) {
    if (status === expectedStatus[kind]) continue;
    if (kind === "decompress" && status === "422") refused += count;
    else other += count;
  }
  const socketErrors = result.errors - result.timeouts;
  if (kind !== "decompress" || corruptSent === 0) return other + refused + result.errors;
  return other + result.timeouts + Math.max(0, refused - corruptSent) + Math.max(0, socketErrors - refused);
}

const mib = (bytes: number) => fmt(bytes / MiB, 1);

function phaseTable(phase: PhaseResult): string {
  const rows = KINDS.map((kind) => {
    const r = phase.cannon[kind];
    const statuses = Object.entries(r.statusCodeStats)
      .map(([status, { count }]) => `${status}: ${count}`)
      .join(", ");
    return [
      kind,
      String(r.latency.totalCount),
      fmt(r.latency.totalCount / r.duration, 1),
      fmt(r.latency.p50),
      fmt(r.latency.p99),
      statuses || "none",
      String(r.errors - r.timeouts),
      String(r.timeouts),
      String(unexpectedOf(kind, r, phase.corruptSent)),
    ];
  });
  return table(
    [
      "kind",
      "responses",
      "responses/s",
      "p50 ms",
      "p99 ms",
      "statuses",
      "socket errors",
      "timeouts",
      "unexpected",
    ],
    rows,
  );
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Time inside the server (from its log lines): waiting for a slot, coding, sending. */
function serverSideTable(phase: PhaseResult): string {
  const routes = [...new Set(phase.serverSide.map((r) => r.route))].sort();
  const rows = routes.map((route) => {
    const of = phase.serverSide.filter((r) => r.route === route);
    const ms = of.map((r) => r.ms).sort((a, b) => a - b);
    return [
      route,
      String(of.length),
      String(of.filter((r) => r.status >= 500).length),
      fmt(percentile(ms, 50)),
      fmt(percentile(ms, 99)),
      fmt(ms.at(-1) ?? 0),
    ];
  });
  return table(["route", "requests logged", "5xx", "p50 ms", "p99 ms", "max ms"], rows);
}

function verifiedTable(phase: PhaseResult): string {
  const rows = (["compress", "decompress", "range", "corrupt"] as const)
    .filter((kind) => kind !== "corrupt" || phase.name === "faults")
    .map((kind) => {
      const t = phase.tallies[kind];
      return [kind, String(t.verified), String(t.expected), String(t.unexpected)];
    });
  return table(["kind", "checked and right", "expected failures", "wrong or unexpected"], rows);
}

async function main(): Promise<void> {
  const started = performance.now();
  const loadAtStart = loadavg();
  const waitAtStart = cpuWaitMicros();
  const work = mkdtempSync(join(tmpdir(), "mmh-serve-load-"));
  const store = join(work, "store");
  const configFile = join(work, "config.json");
  writeFileSync(configFile, GOOD_CONFIG("balanced"));
  mkdirSync(store);
  const bodies = join(work, "bodies");
  mkdirSync(bodies);
  const inputs = await prepareInputs(store, bodies);
  console.log(
    `inputs: ${inputs.map((i) => `${i.name} (${i.raw.length} B, .mmh ${i.mmh.length} B)`).join(", ")}`,
  );

  const server = await startServer(configFile, store);
  console.log(`server pid ${server.pid} at ${server.url}`);
  const sampler = new RssSampler(server.pid);
  const rssAtStart = memoryOf(server.pid).rss;
  const filesAtStart = openFiles(server.pid);

  console.log(`warm-up, ${warmupSeconds} s ...`);
  await runPhase("warm-up", server, inputs, warmupSeconds, false, configFile, sampler);
  const baseline = await settledRss(server);
  const filesAtBaseline = openFiles(server.pid);
  const viewBefore = await serverView(server.port);
  resetAgent();
  console.log(`baseline RSS ${mib(baseline)} MiB`);

  console.log(`load, ${connections} connections, ${seconds} s ...`);
  const load = await runPhase("load", server, inputs, seconds, false, configFile, sampler);
  const rssAfterLoad = await settledRss(server);
  const viewAfterLoad = await serverView(server.port);
  resetAgent();
  console.log(`after load: RSS ${mib(rssAfterLoad)} MiB (peak ${mib(load.peakRss)})`);

  console.log(`faults, ${connections} connections, ${seconds} s ...`);
  const faults = await runPhase("faults", server, inputs, seconds, true, configFile, sampler);
  const rssAfterFaults = await settledRss(server);
  const viewAfter = await serverView(server.port);
  resetAgent();
  await sleep(500);
  const filesAtEnd = openFiles(server.pid);
  const hwm = memoryOf(server.pid).hwm;
  console.log(`after faults: RSS ${mib(rssAfterFaults)} MiB (peak ${mib(faults.peakRss)})`);
  const stopped = await server.stop();
  if (stopped.code !== 0)
    console.log(
      `server exit ${stopped.code ?? stopped.signal}; its last log lines:\n${server.logTail.join("\n")}`,
    );
  rmSync(work, { recursive: true, force: true });
  const elapsed = performance.now() - started;

  const within = (rss: number) => Math.abs(rss - baseline) <= baseline * 0.1;
  const phases = [load, faults];
  const cannonUnexpected = (phase: PhaseResult) =>
    KINDS.reduce((sum, kind) => sum + unexpectedOf(kind, phase.cannon[kind], phase.corruptSent), 0);
  const verifyUnexpected = (phase: PhaseResult) =>
    Object.values(phase.tallies).reduce((sum, tally) => sum + tally.unexpected, 0);
  const goals = [
    ...phases.map(
      (p) =>
        `- ${p.name}: ${cannonUnexpected(p)} unexpected errors in autocannon's requests (unexpected non-2xx, socket errors, timeouts; goal 0): **${cannonUnexpected(p) === 0 ? "met" : "not met"}**`,
    ),
    ...phases.map(
      (p) =>
        `- ${p.name}: ${verifyUnexpected(p)} wrong or unexpected answers among the checked ones (goal 0): **${verifyUnexpected(p) === 0 ? "met" : "not met"}**`,
    ),
    ...phases.map(
      (p) =>
        `- ${p.name}: /healthz answered ${p.health.ok} of ${p.health.ok + p.health.failed} probes (slowest ${fmt(p.health.maxMs)} ms): **${p.health.failed === 0 ? "met" : "not met"}**`,
    ),
    `- RSS ${settleSeconds} s after the load phase: ${mib(rssAfterLoad)} MiB, ${fmt(((rssAfterLoad - baseline) / baseline) * 100, 1)}% from the baseline of ${mib(baseline)} MiB (goal within 10%): **${within(rssAfterLoad) ? "met" : "not met"}**`,
    `- RSS ${settleSeconds} s after the fault phase: ${mib(rssAfterFaults)} MiB, ${fmt(((rssAfterFaults - baseline) / baseline) * 100, 1)}% from the baseline (goal within 10%): **${within(rssAfterFaults) ? "met" : "not met"}**`,
    `- Config reloads during the fault phase: success ${viewBefore.reloads.success} -> ${viewAfter.reloads.success}, failure ${viewBefore.reloads.failure} -> ${viewAfter.reloads.failure} (${faults.rewrites.good} valid and ${faults.rewrites.bad} invalid rewrites, then one valid); /readyz generation ${viewBefore.generation} -> ${viewAfter.generation}: **${viewAfter.reloads.success > viewBefore.reloads.success && viewAfter.reloads.failure > viewBefore.reloads.failure && viewAfter.generation > viewBefore.generation ? "met" : "not met"}**`,
    `- The server process stayed up (it exited only when stopped): **${server.exitedEarly ? "not met" : "met"}**; after SIGTERM it exited with ${stopped.code ?? stopped.signal} in ${fmt(stopped.ms)} ms.`,
    `- Full collections once idle after work (mmh_idle_collections_total): ${viewBefore.idleCollections} by the baseline, ${viewAfterLoad.idleCollections} after the load phase, ${viewAfter.idleCollections} at the end.`,
    `- Requests in flight (mmh_requests_in_flight) once idle at the end: ${viewAfter.inFlight}; open file descriptors: ${filesAtStart} at start, ${filesAtBaseline} after warm-up, ${filesAtEnd} at the end.`,
  ];

  const cmd = `npx node bench/serve-load.ts${quick ? " --quick" : ""}${argValue("--connections") ? ` --connections ${connections}` : ""}${argValue("--seconds") ? ` --seconds ${seconds}` : ""}${workers > 1 ? ` --workers ${workers}` : ""}`;
  const problems = phases.flatMap((p) => p.problems.map((line) => `- ${p.name}: ${line}`));
  const lines = [
    "# `mmh serve` under load and faults",
    "",
    ...machineLines(cmd),
    codeLine(),
    `- Memory: ${fmt(totalmem() / 2 ** 30, 1)} GiB. Load average at start: ${loadAtStart.map((l) => fmt(l, 2)).join(", ")}. Took ${fmt(elapsed / 1000)} s. ${contentionNote(waitAtStart, elapsed)}`,
    "- The load generator (autocannon, in a Node process of its own) and the checking clients (this script's process) share the machine's cores with the server, so the rates are those of this machine with its load, not of the server alone; each phase says how much CPU each of the three used.",
    "",
    "## Setup",
    "",
    `- Server: \`node bin/mmh.js serve --host 127.0.0.1 --port 0 --config CONFIG --store STORE --workers ${workers}\`${workers > 1 ? " (RSS and open files below are sums over its processes)" : ""}, CONFIG \`${GOOD_CONFIG("balanced")}\` (\`limits.concurrency\` the default, 8: past it requests wait in arrival order; \`limits.queue\` above the connections, so that no request is refused with 503). Its log (one JSON line per request, on standard error) was read and counted: ${server.logLines} lines, ${server.errorCount} at level error or above besides the ${server.reloadErrorLines} "config reload failed" lines the invalid rewrites cause.`,
    `- Inputs: the real safetensors files in ../shared/data (${inputs.map((i) => `${i.name}, ${i.raw.length} B, .mmh ${i.mmh.length} B`).join("; ")}). STORE holds each one's .mmh, made by the library's \`compress\` with default options.`,
    `- Requests: autocannon ${connections} connections per phase, ${fmt(MIX.compress * 100)}% of them POST /v1/compress (an input as body), ${fmt(MIX.decompress * 100)}% POST /v1/decompress (its .mmh), ${fmt(MIX.range * 100)}% GET /models/NAME with \`Range: bytes=a-b\`, 4 to 64 KiB at a random offset; input and range drawn from a seeded PRNG for every request; ${TIMEOUT_SECONDS} s timeout per request. Beside them ${verifiers} checking clients (node:http, keep-alive) and a /healthz probe every second.`,
    `- Phases: warm-up ${warmupSeconds} s (same mix), then ${settleSeconds} s idle and the baseline RSS; load ${seconds} s; ${settleSeconds} s idle; faults ${seconds} s; ${settleSeconds} s idle. RSS is VmRSS of /proc/PID/status, sampled every 200 ms during a phase; no GC was forced (the server has no way to ask for one), the idle seconds let V8 shrink on its own.`,
    `- Faults: ${fmt(FAULT_SHARE * 100)}% of autocannon's decompress bodies damaged in the first chunk (${faults.corruptSent} sent; expected: a 422 with \`Connection: close\`; autocannon does not heed that header, writes its next request on the closed connection and counts a socket error, so on decompress up to ${faults.corruptSent} 422s and one socket error per 422 are expected, and only what goes beyond is counted unexpected); the checking clients also send, for about 10% of their decompress requests, a .mmh damaged in a late chunk (expected: 422 or an answer that starts and is cut, never a clean end; the bytes before the cut must be the original's); ${Math.round(connections * FAULT_SHARE)} of the ${connections} connections are clients that send half of a body (compress or decompress, Content-Length of the whole) on a connection of their own, wait 5-50 ms and destroy it, then wait 1-3 s (as long as other clients wait for an answer) and start again (${faults.aborts.sent} such requests, ${fmt((faults.aborts.sent / Math.max(1, faults.aborts.sent + KINDS.reduce((sum, kind) => sum + faults.cannon[kind].requests.sent, 0))) * 100, 1)}% of the phase's requests; ${faults.aborts.answered} got an answer first); and CONFIG rewritten in place every second, alternately valid (goal \`speed\` or \`balanced\`) and invalid (not JSON, or \`limits.concurrency\` 0).`,
    "",
    "## What was checked",
    "",
    "- autocannon checks statuses only (it reads bodies as text). Only the checking clients' answers were checked byte for byte, a sample of the whole (their counts are in each phase's second table). Every answer to the checking clients was checked in full: compress, a 200 whose body the library's `decompress` restores to the input (sha256) and whose `mmh-sha256` trailer is the input's sha256; decompress, a 200 whose body has the original's sha256; range, a 206 with the right `Content-Range` and exactly the original's bytes of that slice; every answer's `X-Request-Id` is the one its request sent, so an answer mixed with another request's would show.",
    "",
    "## Goals",
    "",
    ...goals,
    "",
  ];
  for (const phase of phases) {
    lines.push(
      `## ${phase.name === "load" ? "Load" : "Faults"}: ${connections} connections, ${seconds} s`,
      "",
      `Peak RSS during the phase: ${mib(phase.peakRss)} MiB (baseline ${mib(baseline)} MiB). CPU time over its ${fmt(phase.seconds)} s: the server ${fmt(phase.cpu.server)} s (${fmt((phase.cpu.server / phase.seconds) * 100)}% of one core), the load generator ${fmt(phase.cpu.generator)} s (its event loop delayed ${fmt(phase.cpu.generatorLoopP99)} ms at p99, ${fmt(phase.cpu.generatorLoopMax)} ms at most), the checking process ${fmt(phase.cpu.checkers)} s.`,
      "",
      "autocannon (latency to the end of the response):",
      "",
      phaseTable(phase),
      "",
      "The same phase inside the server, from its log line per request (`durationMs`: from the request's headers to the end of its response, waiting for a slot included); the difference from autocannon's latency is time in the kernel's socket buffers and in the load generator's own process:",
      "",
      serverSideTable(phase),
      "",
      `Checking clients (${verifiers}):`,
      "",
      verifiedTable(phase),
      "",
    );
  }
  lines.push(
    "## Memory",
    "",
    table(
      ["moment", "VmRSS MiB"],
      [
        ["server started, idle", mib(rssAtStart)],
        [`baseline: warm-up, then ${settleSeconds} s idle`, mib(baseline)],
        ["peak during load", mib(load.peakRss)],
        [`${settleSeconds} s after load`, mib(rssAfterLoad)],
        ["peak during faults", mib(faults.peakRss)],
        [`${settleSeconds} s after faults`, mib(rssAfterFaults)],
        ["VmHWM (peak of the whole run)", mib(hwm)],
      ],
    ),
    "",
    `What the service's own /metrics said at the same moments (prom-client's process metrics${workers > 1 ? ", summed over the workers; the primary process is not in them" : ""}), MiB:`,
    "",
    table(
      ["moment", "resident", "V8 heap total", "V8 heap used", "external (Buffers, WebAssembly, zstd)"],
      (
        [
          ["baseline", viewBefore],
          ["after load", viewAfterLoad],
          ["after faults", viewAfter],
        ] as const
      ).map(([moment, view]) => [
        moment,
        mib(view.memory.rss),
        mib(view.memory.heapTotal),
        mib(view.memory.heapUsed),
        mib(view.memory.external),
      ]),
    ),
    "",
    `Errors the server counted over the whole run (mmh_errors_total): ${
      Object.entries(viewAfter.errors)
        .map(([code, n]) => `${code} ${n}`)
        .join(", ") || "none"
    }.`,
    "",
  );
  if (problems.length > 0)
    lines.push("## Wrong or unexpected answers (first 20 per phase)", "", ...problems, "");
  if (server.errorLines.length > 0)
    lines.push(
      "## Server log lines at level error (first 20)",
      "",
      "```",
      ...server.errorLines.map((l) => l.slice(0, 400)),
      "```",
      "",
    );
  console.log(lines.join("\n"));
  writeReport(outFile, lines);
  agent.destroy();
}

await main();
