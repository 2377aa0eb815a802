/**
 * The CLI's progress bar: on standard error, only when that is a terminal, and only for
 * runs that last more than a second. It is redrawn about ten times a second from a
 * sampler (counters the command already keeps, or the process's own I/O counters) and
 * is cleared before anything else is printed: the summary line, an error line, or
 * nothing when the run is interrupted.
 */
import { readFileSync } from "node:fs";
import { lstat, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import cliProgress from "cli-progress";
import { formatBytes } from "../index.ts";

/** Bytes so far: `read` counts what the total counts; `written` is the output, when known. */
export interface Counts {
  read: number;
  written?: number;
}

export interface ProgressSpec {
  /** The file being worked on, as the summary line names it. */
  label: string;
  /** "encode" reads raw bytes and writes stored ones; "decode" the other way round. */
  direction: "encode" | "decode";
  /** The input's size in bytes, asked for when the bar starts; undefined when unknown (stdin). */
  total?: () => number | undefined | Promise<number | undefined>;
  /**
   * Where the counts come from: a function reading counters the command keeps, or the
   * whole process's read (and write) byte counters from Linux's /proc/self/io, for work
   * done inside one library call: "process" counts both, "process-reads" only reads
   * (for work that writes nothing, as verify). Without /proc there is no bar then.
   */
  sample: (() => Counts) | "process" | "process-reads";
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
}

const NONE: Progress = { stop() {} };

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

/** The bytes of regular files under `dir` (what `pack` reads). */
export async function folderBytes(dir: string): Promise<number> {
  let sum = 0;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) sum += (await lstat(join(entry.parentPath, entry.name))).size;
  }
  return sum;
}

export async function fileBytes(file: string): Promise<number> {
  return (await stat(file)).size;
}

/** The process's read and write byte counters, or undefined where /proc/self/io is missing. */
function processIo(): { read: number; written: number } | undefined {
  try {
    const text = readFileSync("/proc/self/io", "latin1");
    const read = /^rchar:\s*(\d+)/m.exec(text);
    const written = /^wchar:\s*(\d+)/m.exec(text);
    if (!read || !written) return undefined;
    return { read: Number(read[1]), written: Number(written[1]) };
  } catch {
    return undefined;
  }
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
  /** Bytes the bar itself wrote to the terminal, which the process's write counter includes. */
  let own = 0;
  let sample: () => Counts;
  if (spec.sample === "process" || spec.sample === "process-reads") {
    const base = processIo();
    if (!base) return NONE;
    const writes = spec.sample === "process";
    sample = () => {
      const now = processIo() ?? base;
      const read = now.read - base.read;
      return writes ? { read, written: Math.max(0, now.written - base.written - own) } : { read };
    };
  } else {
    sample = spec.sample;
  }

  let stopped = false;
  let bar: cliProgress.SingleBar | undefined;
  let delay: NodeJS.Timeout | undefined;
  let ticker: NodeJS.Timeout | undefined;
  // Speeds and the ETA are measured over the last few seconds, from the start at first.
  const window = new Window(3000);
  window.add(performance.now(), 0, 0);
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
      total = await spec.total?.();
    } catch {
      total = undefined; // a size that cannot be read is shown as unknown
    }
    if (stopped) return;
    const known = total !== undefined && total > 0;
    const withRatio = sample().written !== undefined;
    const width = Math.max(40, stream.columns || 80);
    const label = spec.label.length > 24 ? `…${spec.label.slice(-23)}` : spec.label;
    const tail = `  {speed}${withRatio ? "  {ratio}" : ""}`;
    // Room for everything but the bar: label, percentage, sizes, speed, ratio and ETA.
    const barsize = Math.max(10, Math.min(40, width - 1 - (label.length + 66)));
    const format = known
      ? `${label} {percentage}% [{bar}] {value} / {total}${tail}  ETA {remaining}`
      : `${label} {value}${tail}`;
    const writer = {
      isTTY: true,
      get columns() {
        return stream.columns;
      },
      write(chunk: string, callback?: () => void) {
        own += Buffer.byteLength(chunk);
        return stream.write(chunk, callback);
      },
    };
    bar = new cliProgress.SingleBar({
      stream: writer as unknown as NodeJS.WritableStream,
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
      const counts = sample();
      const read = known ? Math.min(counts.read, total!) : counts.read;
      const raw = spec.direction === "encode" ? read : (counts.written ?? read);
      const stored = spec.direction === "encode" ? (counts.written ?? 0) : read;
      window.add(performance.now(), read, raw);
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
  return { stop };
}
