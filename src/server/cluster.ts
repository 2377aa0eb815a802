/**
 * `mmh serve --workers N`: N service processes (node:cluster) accepting on one port, so
 * requests are coded on N cores. The primary forks them, prints the one listening line
 * once all of them listen, forwards SIGHUP, replaces a worker that dies, drains them all
 * on SIGTERM, and answers the workers' requests for the metrics of the whole service
 * (prom-client's AggregatorRegistry: counters and histograms summed over the workers).
 */
import cluster, { type Worker } from "node:cluster";
import { AggregatorRegistry, type Registry } from "prom-client";
import { createLogger } from "./log.ts";

const METRICS_REQUEST = "mmh:metrics-request";
const METRICS_ANSWER = "mmh:metrics-answer";
const LISTENING = "mmh:listening";

interface Out {
  write(text: string): unknown;
}

/** A worker died this soon after its start: the next one waits before it is forked. */
const QUICK_DEATH_MS = 5000;

/**
 * The primary: fork `workers` processes running this same command, and serve until
 * `signal` aborts. Resolves with 0 when every worker drained and exited with 0.
 */
export async function runPrimary(workers: number, stdout: Out, signal: AbortSignal): Promise<number> {
  const logger = createLogger("info");
  const aggregator = new AggregatorRegistry();
  let stopping = false;

  const onMessage = (worker: Worker, message: { type?: string; id?: number }) => {
    if (message?.type === METRICS_REQUEST) {
      aggregator.clusterMetrics().then(
        (text) => worker.isConnected() && worker.send({ type: METRICS_ANSWER, id: message.id, text }),
        (error: Error) =>
          worker.isConnected() && worker.send({ type: METRICS_ANSWER, id: message.id, error: error.message }),
      );
    }
  };
  cluster.on("message", onMessage);

  const fork = (): Promise<string> => {
    const worker = cluster.fork();
    const started = Date.now();
    const { promise: ready, resolve, reject } = Promise.withResolvers<string>();
    worker.on("message", (message: { type?: string; url?: string }) => {
      if (message?.type === LISTENING && typeof message.url === "string") resolve(message.url);
    });
    worker.once("exit", (code, killedBy) => {
      reject(new Error(`a worker exited (${killedBy ?? code}) before it listened`));
      if (stopping) return;
      logger.error({ worker: worker.process.pid, code, signal: killedBy }, "worker exited; starting another");
      const wait = Date.now() - started < QUICK_DEATH_MS ? 1000 : 0;
      setTimeout(() => {
        if (!stopping) fork().catch(() => {});
      }, wait);
    });
    return ready;
  };

  const onHangUp = () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill("SIGHUP");
  };
  process.on("SIGHUP", onHangUp);
  try {
    const urls = await Promise.all(Array.from({ length: workers }, fork));
    stdout.write(`mmh: listening on ${urls[0]}\n`);
    if (!signal.aborted)
      await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
    stopping = true;
    logger.info({ workers: Object.keys(cluster.workers ?? {}).length }, "draining workers");
    // The workers running now decide the exit status; one replaced earlier has been logged.
    const running = Object.values(cluster.workers ?? {}).filter((worker) => worker !== undefined);
    const drained = running.map(
      (worker) =>
        new Promise<number>((resolve) => {
          if (worker.process.exitCode !== null) resolve(worker.process.exitCode);
          else worker.once("exit", (code) => resolve(code ?? 1));
        }),
    );
    for (const worker of running) worker.process.kill("SIGTERM");
    const codes = await Promise.all(drained);
    return codes.every((code) => code === 0) ? 0 : 1;
  } catch (error) {
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill("SIGKILL");
    throw error;
  } finally {
    process.off("SIGHUP", onHangUp);
    cluster.off("message", onMessage);
  }
}

/** In a worker: its registry joins the primary's aggregate; tell the primary it listens. */
export function joinCluster(registry: Registry, url: string): void {
  AggregatorRegistry.setRegistries([registry]);
  // Listens for the primary's requests for this worker's metrics.
  new AggregatorRegistry();
  process.send?.({ type: LISTENING, url });
}

let nextRequest = 0;
const pending = new Map<number, { resolve: (text: string) => void; reject: (error: Error) => void }>();
let answering = false;

/** In a worker: the whole service's metrics, from the primary. */
export function clusterMetricsText(): Promise<string> {
  if (!answering) {
    answering = true;
    process.on("message", (message: { type?: string; id?: number; text?: string; error?: string }) => {
      if (message?.type !== METRICS_ANSWER || message.id === undefined) return;
      const waiting = pending.get(message.id);
      pending.delete(message.id);
      if (message.error !== undefined) waiting?.reject(new Error(message.error));
      else waiting?.resolve(message.text ?? "");
    });
  }
  const id = nextRequest++;
  const { promise, resolve, reject } = Promise.withResolvers<string>();
  pending.set(id, { resolve, reject });
  const timer = setTimeout(() => {
    pending.delete(id);
    reject(new Error("the primary did not answer for the metrics in 10 s"));
  }, 10_000);
  process.send?.({ type: METRICS_REQUEST, id });
  return promise.finally(() => clearTimeout(timer));
}

export const isClusterWorker = (): boolean => cluster.isWorker;
