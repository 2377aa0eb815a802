/**
 * The load of bench/serve-load.ts, in a process of its own: one autocannon instance per
 * kind of request (compress, decompress, gateway range), so that the load generator's work
 * (building and parsing megabyte bodies) does not share an event loop with the clients
 * that check answers, the health probe and the reading of the server's log.
 *
 * Started with `fork()`; it gets one `CannonJob` message, answers with one `CannonReport`
 * and exits. Bodies are read from the files the job names.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { mulberry32 } from "./data.ts";

export type Kind = "compress" | "decompress" | "range";
export const KINDS: Kind[] = ["compress", "decompress", "range"];

export interface CannonJob {
  url: string;
  duration: number;
  timeoutSeconds: number;
  connections: Record<Kind, number>;
  seed: number;
  /** Share of decompress bodies replaced by a damaged one (0: none). */
  corruptShare: number;
  inputs: { name: string; size: number; raw: string; mmh: string; earlyCorrupt: string }[];
}

export interface CannonResult {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  resets: number;
  statusCodeStats: Record<string, { count: number }>;
  latency: { p50: number; p99: number; max: number; totalCount: number };
  requests: { total: number; sent: number };
}

export interface CannonReport {
  results: Record<Kind, CannonResult>;
  corruptSent: number;
  /** This process's CPU time over the phase, in seconds, and its event-loop delay (ms). */
  cpuSeconds: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
}

interface CannonRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: Buffer;
}
const require = createRequire(import.meta.url);

// autocannon keeps each response's body as a string (for its verifyBody/expectBody
// options), `body += chunk` per chunk: a UTF-8 decode of every byte received. On this
// benchmark's megabyte binary answers that was two thirds of the load generator's CPU
// time (a CPU profile of a --quick run: 9.2 of 13.6 s in Buffer.toString), enough to make
// it, not the server, the slowest part. Neither option is used here, so the bodies are
// counted (autocannon's byte count is kept apart) and not kept.
const Queue = require("autocannon/lib/pipelinedRequestsQueue.js") as { prototype: { addBody?: unknown } };
if (typeof Queue.prototype.addBody !== "function")
  throw new Error("autocannon's PipelinedRequestsQueue has no addBody: check this patch against its version");
Queue.prototype.addBody = () => {};

// autocannon has no types of its own; this is the part of its API used here.
const autocannon = require("autocannon") as (options: {
  url: string;
  connections: number;
  duration: number;
  timeout: number;
  pipelining: number;
  requests: { setupRequest: (request: CannonRequest) => CannonRequest }[];
}) => Promise<CannonResult>;

const KiB = 1024;

async function run(job: CannonJob): Promise<CannonReport> {
  const inputs = job.inputs.map((input) => ({
    name: input.name,
    size: input.size,
    raw: readFileSync(input.raw),
    mmh: readFileSync(input.mmh),
    earlyCorrupt: readFileSync(input.earlyCorrupt),
  }));
  const random = mulberry32(job.seed);
  const pickInput = () => inputs[Math.floor(random() * inputs.length)];
  let corruptSent = 0;
  const setup =
    (kind: Kind) =>
    (request: CannonRequest): CannonRequest => {
      const input = pickInput();
      if (kind === "range") {
        const length = 4 * KiB + Math.floor(random() * 60 * KiB);
        const start = Math.floor(random() * Math.max(1, input.size - length));
        const end = Math.min(input.size, start + length) - 1;
        return {
          ...request,
          method: "GET",
          path: `/models/${input.name}`,
          headers: { range: `bytes=${start}-${end}` },
        };
      }
      let body = kind === "compress" ? input.raw : input.mmh;
      if (kind === "decompress" && job.corruptShare > 0 && random() < job.corruptShare) {
        body = input.earlyCorrupt;
        corruptSent++;
      }
      return {
        ...request,
        method: "POST",
        path: `/v1/${kind}`,
        headers: { "content-type": "application/octet-stream" },
        body,
      };
    };
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const cpuBefore = process.cpuUsage();
  const results = await Promise.all(
    KINDS.map((kind) =>
      autocannon({
        url: job.url,
        connections: job.connections[kind],
        duration: job.duration,
        timeout: job.timeoutSeconds,
        pipelining: 1,
        requests: [{ setupRequest: setup(kind) }],
      }),
    ),
  );
  const cpu = process.cpuUsage(cpuBefore);
  delay.disable();
  return {
    results: Object.fromEntries(KINDS.map((kind, i) => [kind, results[i]])) as Record<Kind, CannonResult>,
    corruptSent,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    loopDelayP99Ms: delay.percentile(99) / 1e6,
    loopDelayMaxMs: delay.max / 1e6,
  };
}

process.once("message", (job: CannonJob) => {
  run(job).then(
    (report) => process.send?.(report, () => process.exit(0)),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
});
