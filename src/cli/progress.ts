/**
 * The CLI's progress bar: on standard error, only when that is a terminal, and only for
 * runs that last more than a second. It is redrawn about ten times a second from the
 * latest counts the library call reported (its `onProgress` option) and is cleared
 * before anything else is printed: the summary line, an error line, or nothing when the
 * run is interrupted.
 */

import type { SingleBar } from "cli-progress";
import { formatBytes } from "../common/bytes.ts";
import { nowMs } from "../common/clock.ts";
import { stat } from "../common/fsp.ts";
import type { ProgressEvent } from "../index.ts";

export interface ProgressSpec {
  /** The file being worked on, as the summary line names it. */
  label: string;
  /** "encode" reads raw bytes and writes stored ones; "decode" the other way round. */
  direction: "encode" | "decode";
  /**
   * The input's size in bytes when the reports (see Progress.report) do not give it;
   * undefined when unknown (stdin). The bar waits for the first report, then asks.
   */
  total?: () => number | undefined | Promise<number | undefined>;
  /** False for work that writes nothing (verify): no ratio is shown. Default true. */
  ratio?: boolean;
}

export interface ProgressOptions {
  /** False: no bar at all (-q, --no-progress, standard error not a terminal). */
  enabled: boolean;
  stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Stops the bar at once when the run is interrupted. */
  signal?: AbortSignal;
  /** Milliseconds before the bar first shows (default 1000). */
  delayMs?: number;
  /** Milliseconds between samples (default 100). */
  intervalMs?: number;
}

export interface Progress {
  /** Clear the bar and stop its timers; safe to call more than once. */
  stop(): void;
  /** Take a library call's progress report: pass it as the call's `onProgress`. */
  report(progress: ProgressEvent): void;
}

const NONE: Progress = { stop() {}, report() {} };

/** Seconds as "7s", "2m05s" or "1h20m"; "--" when unknown. */
export function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--";
  const s = Math.ceil(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  if (s < 100 * 3600)
    return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return "--";
}

/** Bytes per second as the summary lines print it (decimal MB/s, GB/s). */
export function formatSpeed(bytesPerSecond: number): string {
  const mbps = Math.max(0, bytesPerSecond) / 1e6;
  return mbps >= 1000 ? `${(mbps / 1000).toFixed(2)} GB/s` : `${mbps.toFixed(1)} MB/s`;
}

/** Raw over stored, as `info` prints it; "-" before both are known. */
export function formatRatio(raw: number, stored: number): string {
  return raw > 0 && stored > 0 ? `${(raw / stored).toFixed(2)}x` : "-";
}

export async function fileBytes(file: string): Promise<number> {
  return (await stat(file)).size;
}

/** Rates over the last few seconds of samples. */
class Window {
  private readonly samples: { t: number; read: number; raw: number }[] = [];
  private readonly spanMs: number;
  constructor(spanMs: number) {
    this.spanMs = spanMs;
  }

  add(t: number, read: number, raw: number): void {
    this.samples.push({ t, read, raw });
    while (this.samples.length > 2 && t - this.samples[1].t >= this.spanMs) this.samples.shift();
  }

  /** Bytes per second of `read` and of raw bytes; 0 before two samples. */
  rates(): { read: number; raw: number } {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    const seconds = (last.t - first.t) / 1000;
    if (seconds <= 0) return { read: 0, raw: 0 };
    return { read: (last.read - first.read) / seconds, raw: (last.raw - first.raw) / seconds };
  }
}

/**
 * Start the bar for one piece of work; call `stop()` in a finally block before printing
 * anything. It shows after `delayMs` (so short runs never show it), and no timer of it
 * keeps the process alive.
 */
export function startProgress(spec: ProgressSpec, options: ProgressOptions): Progress {
  if (!options.enabled || options.stream.isTTY !== true) return NONE;
  const stream = options.stream;
  const withRatio = spec.ratio ?? true;
  // The latest report is the count, and the first one carries the total.
  let latest: ProgressEvent | undefined;
  let firstReport: (progress: ProgressEvent) => void = () => {};
  const reported = new Promise<ProgressEvent>((resolve) => {
    firstReport = resolve;
  });
  const report = (progress: ProgressEvent) => {
    latest = progress;
    firstReport(progress);
  };
  const inputSize = async () => (await reported).totalBytes ?? spec.total?.();

  let stopped = false;
  let bar: SingleBar | undefined;
  let delay: NodeJS.Timeout | undefined;
  let ticker: NodeJS.Timeout | undefined;
  // Speeds and the ETA are measured over the last few seconds, from the start at first.
  const window = new Window(3000);
  window.add(nowMs(), 0, 0);
  const stop = () => {
    if (stopped) return;
    stopped = true;
    clearTimeout(delay);
    clearInterval(ticker);
    options.signal?.removeEventListener("abort", stop);
    bar?.stop();
  };
  options.signal?.addEventListener("abort", stop, { once: true });

  const begin = async () => {
    let total: number | undefined;
    try {
      total = await inputSize();
    } catch {
      total = undefined; // a size that cannot be read is shown as unknown
    }
    // Loaded only when a bar shows: it took about 13 ms of every start.
    const { default: cliProgress } = await import("cli-progress");
    if (stopped) return;
    const known = total !== undefined && total > 0;
    const width = Math.max(40, stream.columns || 80);
    const label = spec.label.length > 24 ? `…${spec.label.slice(-23)}` : spec.label;
    const tail = `  {speed}${withRatio ? "  {ratio}" : ""}`;
    // Room for everything but the bar: label, percentage, sizes, speed, ratio and ETA.
    const barsize = Math.max(10, Math.min(40, width - 1 - (label.length + 66)));
    const format = known
      ? `${label} {percentage}% [{bar}] {value} / {total}${tail}  ETA {remaining}`
      : `${label} {value}${tail}`;
    bar = new cliProgress.SingleBar({
      stream,
      format,
      barsize,
      barCompleteChar: "\u2588",
      barIncompleteChar: "\u2591",
      clearOnComplete: true,
      hideCursor: false,
      linewrap: true,
      gracefulExit: false,
      fps: 10,
      formatValue: (value, _options, type) => {
        if (type === "value" || type === "total") return formatBytes(Number(value));
        if (type === "percentage") return String(value).padStart(3);
        return String(value);
      },
    });
    const payload = () => {
      const written = latest?.writtenBytes ?? 0;
      const read = known ? Math.min(latest?.readBytes ?? 0, total!) : (latest?.readBytes ?? 0);
      const raw = spec.direction === "encode" ? read : withRatio ? written : read;
      const stored = spec.direction === "encode" ? written : read;
      window.add(nowMs(), read, raw);
      const rates = window.rates();
      const eta = known && rates.read > 0 ? (total! - read) / rates.read : Number.NaN;
      return {
        read,
        fields: { speed: formatSpeed(rates.raw), ratio: formatRatio(raw, stored), remaining: formatEta(eta) },
      };
    };
    const first = payload();
    bar.start(known ? total! : 0, first.read, first.fields);
    ticker = setInterval(() => {
      const next = payload();
      bar?.update(next.read, next.fields);
    }, options.intervalMs ?? 100);
    ticker.unref();
  };
  delay = setTimeout(() => {
    begin().catch(() => stop());
  }, options.delayMs ?? 1000);
  delay.unref();
  return { stop, report };
}
