/**
 * `mmh serve` with transparent huge pages for malloc's blocks (an operator's
 * GLIBC_TUNABLES=glibc.malloc.hugetlb=1, which the service's restart keeps beside its fixed
 * mmap threshold, src/cli/malloc.ts) and without: two servers at once,
 * each sent in turn (alternating which goes first) one POST /v1/compress of a 64 MiB
 * safetensors file and one POST /v1/decompress of its .mmh per round, one request at a
 * time. Per request: the elapsed time at the client and the server's CPU time
 * (/proc/PID/stat, user + system, 10 ms ticks); after each round the server's VmRSS, and
 * at the end its VmHWM (peak) and, 8 s idle later, its VmRSS again. The answers of the two servers must be identical.
 * Medians over the rounds. Linux with glibc 2.35 or later.
 *
 *   npx node bench/serve-hugepages.ts            (writes bench/results/serve-hugepages.md)
 *   npx node bench/serve-hugepages.ts --quick    3 rounds, writes nothing
 * Options: --runs N (rounds, 8), --input FILE (default /tmp/prof/BF16.safetensors, as
 * bench/speed.ts makes it), --out FILE
 */
import "./lib/help.ts";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { codeLine, root, writeReport } from "./lib/commands.ts";
import {
  argValue,
  contentionNote,
  cpuWaitMicros,
  fmt,
  machineLines,
  mbps,
  median,
  table,
} from "./lib/report.ts";
import { startServe } from "./lib/serve.ts";

const quick = process.argv.includes("--quick");
const runs = Number(argValue("--runs") ?? (quick ? 3 : 8));
const input = argValue("--input") ?? "/tmp/prof/BF16.safetensors";
const outFile =
  argValue("--out") ?? (quick ? undefined : join(root, "bench", "results", "serve-hugepages.md"));

interface Server {
  name: string;
  url: string;
  pid: number;
  environ: string;
  stop(): Promise<void>;
}

async function start(name: string, work: string, env: NodeJS.ProcessEnv): Promise<Server> {
  const store = join(work, "store");
  mkdirSync(store, { recursive: true });
  const config = join(work, "config.json");
  writeFileSync(config, JSON.stringify({ limits: { bodyBytes: 512 * 1024 * 1024 }, log: { level: "warn" } }));
  const { child, url } = await startServe(config, store, env);
  const pid = child.pid ?? 0;
  const environ = readFileSync(`/proc/${pid}/environ`, "utf8")
    .split("\0")
    .filter((entry) => entry.startsWith("MALLOC_") || entry.startsWith("GLIBC_TUNABLES"))
    .join(" ");
  return {
    name,
    url,
    pid,
    environ,
    async stop() {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/** The process's CPU time so far, seconds (user + system). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function status(pid: number, key: string): number {
  const match = new RegExp(`${key}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(match?.[1] ?? 0) * 1024;
}

async function post(
  server: Server,
  path: string,
  body: Buffer,
): Promise<{ ms: number; cpu: number; digest: string }> {
  const cpuBefore = cpuSeconds(server.pid);
  const t0 = performance.now();
  const res = await fetch(`${server.url}${path}`, { method: "POST", body });
  const bytes = Buffer.from(await res.arrayBuffer());
  const ms = performance.now() - t0;
  if (res.status !== 200)
    throw new Error(`${server.name} ${path}: ${res.status} ${bytes.toString().slice(0, 200)}`);
  return {
    ms,
    cpu: cpuSeconds(server.pid) - cpuBefore,
    digest: createHash("sha256").update(bytes).digest("hex"),
  };
}

const SETTLE_MS = 8000;
const mib = (bytes: number) => fmt(bytes / (1 << 20), 1);

async function main(): Promise<void> {
  const started = performance.now();
  const waitAtStart = cpuWaitMicros();
  const body = readFileSync(input);
  const base = { ...process.env };
  delete base.MALLOC_MMAP_THRESHOLD_;
  delete base.GLIBC_TUNABLES;
  delete base.MMH_MALLOC_DEFAULTS;
  const works = [mkdtempSync(join(tmpdir(), "mmh-serve-hp-")), mkdtempSync(join(tmpdir(), "mmh-serve-hp-"))];
  const servers = [
    await start("huge pages (GLIBC_TUNABLES=glibc.malloc.hugetlb=1)", works[0], {
      ...base,
      GLIBC_TUNABLES: "glibc.malloc.hugetlb=1",
    }),
    await start("glibc's default (no GLIBC_TUNABLES)", works[1], base),
  ];
  try {
    const packed = Buffer.from(
      await (await fetch(`${servers[0].url}/v1/compress`, { method: "POST", body })).arrayBuffer(),
    );
    const results = servers.map(() => ({
      enc: [] as { ms: number; cpu: number }[],
      dec: [] as { ms: number; cpu: number }[],
      rss: [] as number[],
    }));
    for (let round = 0; round < runs; round++) {
      const order = round % 2 === 0 ? [0, 1] : [1, 0];
      const digests: string[][] = [[], []];
      for (const i of order) {
        const enc = await post(servers[i], "/v1/compress", body);
        const dec = await post(servers[i], "/v1/decompress", packed);
        results[i].enc.push(enc);
        results[i].dec.push(dec);
        digests[i] = [enc.digest, dec.digest];
      }
      for (const i of order) results[i].rss.push(status(servers[i].pid, "VmRSS"));
      if (digests[0].join() !== digests[1].join()) throw new Error("the two servers answered differently");
      console.log(
        `round ${round + 1}: ${servers.map((s, i) => `${s.name}: enc ${fmt(results[i].enc.at(-1)!.ms)} ms dec ${fmt(results[i].dec.at(-1)!.ms)} ms`).join("; ")}`,
      );
    }
    const peaks = servers.map((s) => status(s.pid, "VmHWM"));
    // Idle past the service's one collection after work (src/server/idle.ts, 5 s).
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    const settled = servers.map((s) => status(s.pid, "VmRSS"));
    const elapsed = performance.now() - started;
    const rows = servers.map((s, i) => {
      const r = results[i];
      const encMs = median(r.enc.map((x) => x.ms));
      const decMs = median(r.dec.map((x) => x.ms));
      return [
        s.name,
        s.environ,
        fmt(mbps(body.length, encMs)),
        fmt(median(r.enc.map((x) => x.cpu)), 2),
        fmt(mbps(body.length, decMs)),
        fmt(median(r.dec.map((x) => x.cpu)), 2),
        mib(median(r.rss)),
        mib(peaks[i]),
        mib(settled[i]),
      ];
    });
    const report = table(
      [
        "server",
        "environment seen in /proc",
        "compress MB/s",
        "compress CPU s",
        "decompress MB/s",
        "decompress CPU s",
        "RSS after a round MiB",
        "peak RSS MiB",
        `RSS ${SETTLE_MS / 1000} s idle MiB`,
      ],
      rows,
    );
    console.log(report);
    writeReport(outFile, [
      "# `mmh serve` with and without huge pages for malloc's blocks",
      "",
      ...machineLines(
        `npx node bench/serve-hugepages.ts${quick ? " --quick" : ""}${argValue("--runs") ? ` --runs ${runs}` : ""}`,
      ),
      codeLine(),
      `- Took ${fmt(elapsed / 1000)} s. ${contentionNote(waitAtStart, elapsed)}`,
      `- Input: ${input} (${body.length} B), its .mmh ${packed.length} B. ${runs} rounds; in each, each server (alternating which first) gets one compress and one decompress, one at a time; both servers' answers were identical. Medians over the rounds: throughput from the client's elapsed time (MB/s, 10^6 B of the uncompressed side), the server's CPU time for the request (/proc/PID/stat, 10 ms ticks), VmRSS after a round; peak RSS is VmHWM at the end; the last column VmRSS after ${SETTLE_MS / 1000} s idle (past the service's collection once idle after work, 5 s). Per round, VmRSS after the round: ${servers.map((s, i) => `${s.name} ${results[i].rss.map(mib).join(", ")}`).join("; ")}.`,
      "",
      report,
      "",
    ]);
  } finally {
    for (const server of servers) await server.stop();
    for (const work of works) rmSync(work, { recursive: true, force: true });
  }
}

await main();
