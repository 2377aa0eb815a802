/** `mmh serve` as a process: its listening line, SIGHUP reloads, SIGTERM drains; `--stats json`. */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { test } from "node:test";
import { usesGlibc } from "../src/cli/malloc.ts";
import { assertError, BIN, mmhIn } from "./cli-support.ts";
import { getJson, metric, until } from "./server-support.ts";

interface Served {
  child: ChildProcess;
  url: string;
  port: number;
  stdout: string[];
  exited: Promise<number | null>;
}

async function serve(args: string[], env: NodeJS.ProcessEnv = process.env, logs?: string[]): Promise<Served> {
  const child = spawn(process.execPath, [BIN, "serve", "--port", "0", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env,
  });
  if (logs) createInterface({ input: child.stderr! }).on("line", (line) => logs.push(line));
  else child.stderr!.resume();
  const stdout: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const lines = createInterface({ input: child.stdout! });
  const first = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no listening line in 30 s")), 30_000);
    lines.on("line", (line) => {
      stdout.push(line);
      clearTimeout(timer);
      resolve(line);
    });
    child.on("exit", () => reject(new Error("mmh serve exited before listening")));
  });
  const match = /^mmh: listening on (http:\/\/127\.0\.0\.1:(\d+))$/.exec(first);
  assert.ok(match, `listening line: ${first}`);
  return { child, url: match[1], port: Number(match[2]), stdout, exited };
}

test("mmh serve: one listening line, SIGHUP reloads the config, SIGTERM drains and exits 0", async () => {
  const dir = mkdtempSync(join(tmpdir(), "mmh-serve-cli-"));
  const config = join(dir, "config.json");
  writeFileSync(config, JSON.stringify({ defaults: { codec: "zstd" }, log: { level: "warn" } }));
  const served = await serve(["--config", config]);
  try {
    assert.equal((await getJson(`${served.url}/readyz`)).config.generation, 1);
    served.child.kill("SIGHUP");
    await until(
      async () => (await getJson(`${served.url}/readyz`)).config.generation === 2,
      10_000,
      "SIGHUP reload",
    );

    // A request in flight when SIGTERM arrives is finished before the process exits.
    const body = Buffer.from("drain me ".repeat(50_000));
    const answer = new Promise<{ status: number; bytes: number }>((resolve, reject) => {
      const req = httpRequest({
        host: "127.0.0.1",
        port: served.port,
        method: "POST",
        path: "/v1/decompress",
      });
      req.on("response", (res) => {
        let bytes = 0;
        res.on("data", (part: Buffer) => {
          bytes += part.length;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, bytes }));
        res.on("error", reject);
      });
      req.on("error", reject);
      void (async () => {
        const packed = Buffer.from(
          await (await fetch(`${served.url}/v1/compress`, { method: "POST", body })).arrayBuffer(),
        );
        req.write(packed.subarray(0, 100));
        await until(
          async () => (await metric(served.url, "mmh_requests_in_flight")) === 1,
          10_000,
          "in flight",
        );
        served.child.kill("SIGTERM");
        await new Promise((resolve) => setTimeout(resolve, 300));
        req.end(packed.subarray(100));
      })();
    });
    const drained = await answer;
    assert.equal(drained.status, 200);
    assert.equal(drained.bytes, body.length);
    assert.equal(await served.exited, 0);
    assert.deepEqual(served.stdout, [served.stdout[0]], "exactly one line on stdout");
  } finally {
    served.child.kill("SIGKILL");
  }
});

/** POST /v1/compress on a connection of its own (workers share connections in turn); its status. */
function postOnNewConnection(port: number, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: "127.0.0.1", port, method: "POST", path: "/v1/compress", agent: false },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** The environment of a running process (Linux), or undefined where /proc has none. */
function environOf(pid: number): Map<string, string> | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/environ`, "utf8");
    return new Map(
      text
        .split("\0")
        .filter(Boolean)
        .map((entry) => [entry.slice(0, entry.indexOf("=")), entry.slice(entry.indexOf("=") + 1)]),
    );
  } catch {
    return undefined;
  }
}

const GLIBC = usesGlibc();

test("mmh serve on glibc restarts in place with MALLOC_MMAP_THRESHOLD_, keeping an operator's value", {
  skip: GLIBC ? false : "not Linux with glibc: mmh serve runs without the malloc setting there",
}, async () => {
  const env = { ...process.env };
  delete env.MALLOC_MMAP_THRESHOLD_;
  const tuned = await serve([], env);
  try {
    // The same process (its PID), answering, with the setting in its environment.
    assert.equal(environOf(tuned.child.pid!)?.get("MALLOC_MMAP_THRESHOLD_"), "131072");
    assert.equal((await fetch(`${tuned.url}/healthz`)).status, 200);
    tuned.child.kill("SIGTERM");
    assert.equal(await tuned.exited, 0);
  } finally {
    tuned.child.kill("SIGKILL");
  }
  const own = await serve([], { ...env, MALLOC_MMAP_THRESHOLD_: "65536" });
  try {
    assert.equal(environOf(own.child.pid!)?.get("MALLOC_MMAP_THRESHOLD_"), "65536");
  } finally {
    own.child.kill("SIGKILL");
  }
});

/**
 * The environment a restarted `mmh serve` got, as its own process.env shows it: glibc
 * before 2.39 rewrites a GLIBC_TUNABLES of several entries in the memory /proc/PID/environ
 * reads, so a module loaded first (NODE_OPTIONS=--require, which the restart keeps) writes
 * the variables to a file.
 */
async function restartedEnv(env: NodeJS.ProcessEnv): Promise<{ tunables?: string; threshold?: string }> {
  const dir = mkdtempSync(join(tmpdir(), "mmh-serve-env-"));
  const log = join(dir, "env.jsonl");
  const preload = join(dir, "env.cjs");
  writeFileSync(
    preload,
    `require("node:fs").appendFileSync(${JSON.stringify(log)}, JSON.stringify({ restarted: process.env.MMH_SERVE_RESTARTED, tunables: process.env.GLIBC_TUNABLES, threshold: process.env.MALLOC_MMAP_THRESHOLD_ }) + "\\n");`,
  );
  const served = await serve([], { ...env, NODE_OPTIONS: `--require ${preload}` });
  try {
    assert.equal((await fetch(`${served.url}/healthz`)).status, 200);
    const lines = readFileSync(log, "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    // The first process, then the one the restart started (the same PID).
    assert.equal(lines.length, 2, "one restart");
    assert.equal(lines[1].restarted, "1");
    return { tunables: lines[1].tunables, threshold: lines[1].threshold };
  } finally {
    served.child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}

test("mmh serve's restart keeps an operator's GLIBC_TUNABLES (huge pages are theirs to ask for)", {
  skip:
    GLIBC && typeof (process as { execve?: unknown }).execve === "function"
      ? false
      : "not Linux with glibc, or no process.execve: mmh serve does not restart with malloc settings there",
}, async () => {
  const env = { ...process.env };
  delete env.MALLOC_MMAP_THRESHOLD_;
  delete env.MMH_MALLOC_DEFAULTS;
  delete env.GLIBC_TUNABLES;
  // Not added by the restart (bench/results/serve-hugepages.md: resident memory grows).
  assert.deepEqual(await restartedEnv(env), { tunables: undefined, threshold: "131072" });
  for (const given of ["glibc.malloc.hugetlb=1", "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"]) {
    assert.deepEqual(await restartedEnv({ ...env, GLIBC_TUNABLES: given }), {
      tunables: given,
      threshold: "131072",
    });
  }
});

/** The arguments of a running process (Linux), or undefined where /proc has none. */
function cmdlineOf(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  } catch {
    return undefined;
  }
}

test("mmh serve restarts with a bounded young generation, keeping an operator's value", {
  skip:
    typeof (process as { execve?: unknown }).execve === "function" && existsSync("/proc/self/cmdline")
      ? false
      : "no process.execve or no /proc here: mmh serve runs with V8's own young generation",
}, async () => {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const tuned = await serve([], env);
  try {
    // The same process (its PID), answering, with the flag among Node's own arguments.
    const args = cmdlineOf(tuned.child.pid!) ?? [];
    assert.ok(args.includes("--max-semi-space-size=16"), args.join(" "));
    assert.ok(
      args.indexOf("--max-semi-space-size=16") < args.indexOf("serve"),
      "a Node flag, before the script",
    );
    assert.ok(args.includes("--expose-gc"), "for the collection after a burst (src/server/idle.ts)");
    assert.equal((await fetch(`${tuned.url}/healthz`)).status, 200);
  } finally {
    tuned.child.kill("SIGKILL");
  }
  const own = await serve([], { ...env, NODE_OPTIONS: "--max-semi-space-size=32" });
  try {
    assert.ok(!(cmdlineOf(own.child.pid!) ?? []).some((arg) => arg.startsWith("--max-semi-space-size")));
    assert.equal((await fetch(`${own.url}/healthz`)).status, 200);
  } finally {
    own.child.kill("SIGKILL");
  }
  // A process the restart started never restarts again (no loop, whatever it finds).
  const again = await serve([], { ...env, MMH_SERVE_RESTARTED: "1" });
  try {
    assert.ok(!(cmdlineOf(again.child.pid!) ?? []).includes("--expose-gc"));
    assert.equal((await fetch(`${again.url}/healthz`)).status, 200);
  } finally {
    again.child.kill("SIGKILL");
  }
});

test("mmh serve --workers 2: one line, both processes answer, metrics of the whole service", async () => {
  const dir = mkdtempSync(join(tmpdir(), "mmh-serve-workers-"));
  const config = join(dir, "config.json");
  writeFileSync(config, JSON.stringify({ defaults: { codec: "zstd" }, log: { level: "info" } }));
  const logs: string[] = [];
  const served = await serve(["--config", config, "--workers", "2"], process.env, logs);
  try {
    const body = Buffer.from("two processes ".repeat(10_000));
    const sent = 12;
    for (let i = 0; i < sent; i++) assert.equal(await postOnNewConnection(served.port, body), 200);
    // Every request counted once, whichever process answered it.
    assert.equal(
      await metric(served.url, "mmh_http_requests_total", 'route="/v1/compress",status="200"'),
      sent,
    );
    assert.equal(
      await metric(served.url, "mmh_bytes_in_total", 'route="/v1/compress",codec="zstd"'),
      sent * body.length,
    );
    const answeredBy = new Set(
      logs.filter((l) => l.includes('"route":"/v1/compress"')).map((l) => JSON.parse(l).pid as number),
    );
    assert.equal(answeredBy.size, 2, "both workers answered");
    // A worker that dies is replaced; the service keeps answering meanwhile.
    process.kill([...answeredBy][0], "SIGKILL");
    await until(
      () => logs.some((l) => l.includes("worker exited; starting another")),
      20_000,
      "the death logged",
    );
    for (let i = 0; i < 4; i++) assert.equal((await fetch(`${served.url}/healthz`)).status, 200);
    await until(
      async () => {
        const pids = new Set<number>();
        for (let i = 0; i < 8; i++) assert.equal(await postOnNewConnection(served.port, body), 200);
        for (const l of logs.slice(-40))
          if (l.includes('"route":"/v1/compress"')) pids.add(JSON.parse(l).pid);
        return pids.size === 2 && !pids.has([...answeredBy][0]);
      },
      30_000,
      "a new worker answering",
    );
    // SIGHUP to the primary reaches every worker.
    served.child.kill("SIGHUP");
    await until(
      async () => {
        const generations = await Promise.all(
          Array.from({ length: 6 }, async () => (await getJson(`${served.url}/readyz`)).config.generation),
        );
        return generations.every((g) => g === 2);
      },
      20_000,
      "both workers reloaded",
    );
    served.child.kill("SIGTERM");
    assert.equal(await served.exited, 0);
    assert.deepEqual(served.stdout, [served.stdout[0]], "exactly one line on stdout");
  } finally {
    served.child.kill("SIGKILL");
  }
});

test("--workers must be 1 to 256 and applies to serve only", () => {
  for (const [args, code] of [
    [["serve", "--workers", "0"], "E_BAD_OPTION"],
    [["serve", "--workers", "x"], "E_BAD_OPTION"],
    [["info", "--workers", "2", "x.mmh"], "E_USAGE"],
  ] as const) {
    assertError(mmhIn(tmpdir())([...args]), code, 2);
  }
});

test("mmh serve --host and --port are flags of serve only", () => {
  const r = mmhIn(tmpdir())(["compress", "--port", "1"]);
  assert.equal(r.code, 2);
});

test("--stats json prints the job's record as one JSON line on stderr", () => {
  const dir = mkdtempSync(join(tmpdir(), "mmh-stats-"));
  const input = Buffer.from("stats ".repeat(10_000));
  const mmh = mmhIn(dir);
  const packed = mmh(["-q", "--stats", "json", "--codec", "zstd", "-c"], input);
  assert.equal(packed.code, 0, packed.stderr);
  const record = JSON.parse(packed.stderr.trim());
  assert.equal(record.route, "cli compress");
  assert.equal(record.status, 0);
  assert.equal(record.codec, "zstd");
  assert.equal(record.bytesIn, input.length);
  assert.equal(record.bytesOut, packed.stdout.length);
  assert.ok(record.ratio > 1);
  assert.equal(typeof record.durationMs, "number");
  const restored = mmh(["-d", "-q", "--stats", "json", "-c"], packed.stdout);
  assert.equal(JSON.parse(restored.stderr.trim()).bytesOut, input.length);
  const failed = mmh(["-d", "-q", "--stats", "json", "-c"], Buffer.alloc(100, 1));
  assert.equal(failed.code, 1);
  assert.equal(JSON.parse(failed.stderr.split("\n")[0]).errorCode, "E_CORRUPT");
});
