/** Timing, statistics, machine facts and small helpers shared by the benchmarks. */
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { cpus } from "node:os";
import { resolve } from "node:path";

export const KiB = 1024;
export const MiB = 1024 * 1024;

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Milliseconds taken by `work`. */
export function timeSync(work: () => void): number {
  const start = performance.now();
  work();
  return performance.now() - start;
}

export async function timeAsync(work: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await work();
  return performance.now() - start;
}

/** Decimal megabytes per second (10^6 bytes), as zstd and MEASUREMENTS.md report them. */
export function mbps(bytes: number, ms: number): number {
  return bytes / 1e6 / (ms / 1000);
}

export function fmt(value: number, digits = 0): string {
  return Number.isFinite(value) ? value.toFixed(digits) : "n/a";
}

/** "64 KiB", "1 MiB", "2.5 MiB". */
export function sizeLabel(bytes: number): string {
  if (bytes >= MiB && bytes % (MiB / 4) === 0) return `${bytes / MiB} MiB`;
  if (bytes >= KiB && bytes % KiB === 0) return `${bytes / KiB} KiB`;
  return `${bytes} B`;
}

/** Parse "256M", "64MiB", "1G", "512K" or a plain byte count (binary units). */
export function parseSizeArg(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([kmg]?)(i?b)?$/i.exec(text.trim());
  if (!match) throw new Error(`cannot read size "${text}" (try 256M, 64MiB, 1G)`);
  const unit = match[2].toLowerCase();
  const scale = unit === "k" ? KiB : unit === "m" ? MiB : unit === "g" ? 1024 * MiB : 1;
  return Math.floor(Number(match[1]) * scale);
}

/** The value after `--name` (or `--name=value`) on the command line. */
export function argValue(name: string, args: readonly string[] = process.argv.slice(2)): string | undefined {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === name) return args[i + 1];
    if (args[i].startsWith(`${name}=`)) return args[i].slice(name.length + 1);
  }
  return undefined;
}

/**
 * The checkout an A/B bench compares against (`--baseline DIR`, required): the path as
 * given, for the report, and resolved. Without it the bench prints what it needs and exits 2.
 */
export function baselineArg(bench: string, what = "another checkout"): { given: string; dir: string } {
  const given = argValue("--baseline");
  if (!given) {
    console.error(`${bench}: --baseline DIR (${what}) is required`);
    process.exit(2);
  }
  return { given, dir: resolve(given) };
}

export function cpuModel(): string {
  try {
    const info = readFileSync("/proc/cpuinfo", "utf8");
    const model = /^model name\s*:\s*(.+)$/m.exec(info);
    if (model) return model[1].trim();
  } catch {
    // not Linux
  }
  return cpus()[0]?.model ?? "unknown";
}

function toolVersion(command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: "utf8" });
  if (result.error || result.status !== 0) return "not found";
  return (result.stdout || result.stderr).trim().split("\n")[0];
}

export function zstdCliVersion(): string {
  return toolVersion("zstd", ["--version"]);
}

export function lz4CliVersion(): string {
  return toolVersion("lz4", ["--version"]);
}

/** Markdown lines describing when and where a result was measured. */
export function machineLines(command: string): string[] {
  return [
    `- Date: ${new Date().toISOString()}`,
    `- Node: ${process.version} (zstd ${process.versions.zstd ?? "?"} in node:zlib)`,
    `- CPU: ${cpuModel()}, ${cpus().length} logical cores`,
    `- Reproduce: \`${command}\``,
  ];
}

/** A markdown table; the first column is left-aligned, the others right-aligned. */
export function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(" | ")} |`;
  return [line(head), line(head.map((_, i) => (i === 0 ? "---" : "---:"))), ...rows.map(line)].join("\n");
}

/**
 * Make sure this benchmark runs with the collector exposed: if node lacks --expose-gc, run
 * the same script again with it (same arguments, output inherited) and exit with its status.
 * Call before any work, so that each sample can start from a collected heap.
 */
export function restartWithGc(): void {
  if ((globalThis as { gc?: unknown }).gc) return;
  const again = spawnSync(process.execPath, ["--expose-gc", ...process.execArgv, ...process.argv.slice(1)], {
    stdio: "inherit",
  });
  process.exit(again.status ?? 1);
}

/** Give the garbage collector a chance, when node runs with --expose-gc. */
export function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) gc();
}

/** Interquartile range over median: how much the runs of one measurement disagree. */
export function spread(values: readonly number[]): number {
  if (values.length < 2) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => {
    const pos = (sorted.length - 1) * q;
    const lo = Math.floor(pos);
    return sorted[lo] + (sorted[Math.ceil(pos)] - sorted[lo]) * (pos - lo);
  };
  return (at(0.75) - at(0.25)) / median(sorted);
}

/** Microseconds some task spent waiting for a CPU since boot (Linux PSI), if available. */
export function cpuWaitMicros(): number | undefined {
  try {
    const match = /^some .*total=(\d+)/m.exec(readFileSync("/proc/pressure/cpu", "utf8"));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A note on how busy the machine was: the share of wall time during which some task was
 * waiting for a CPU (other work competing with the benchmark), from Linux PSI.
 */
export function contentionNote(startMicros: number | undefined, elapsedMs: number): string {
  const end = cpuWaitMicros();
  if (startMicros === undefined || end === undefined)
    return "CPU contention: not measurable here (no /proc/pressure/cpu).";
  const share = (end - startMicros) / 1000 / elapsedMs;
  return `CPU contention during the run: some task was waiting for a CPU ${fmt(share * 100, 0)}% of the time (Linux PSI; near 0% means the benchmark had the machine to itself).`;
}

/**
 * Delete the file a command line writes with `-o FILE`, so that every timed run writes a
 * new file. Replacing an existing file costs the tools differently and is not their
 * speed: mmh renames a finished temporary file over the target, which makes ext4 flush
 * the new data first (about 0.3 s per GiB here), where zstd truncates the target up front.
 */
export function clearOutput(args: readonly string[]): void {
  const at = args.indexOf("-o");
  const target = at >= 0 ? args[at + 1] : undefined;
  if (target && target !== "-" && target !== "/dev/null") rmSync(target, { force: true });
}

export const CLEAR_OUTPUT_NOTE =
  "Every timed command writes a new file: its output is deleted before each run, since replacing a file costs the tools differently (mmh renames a finished temporary file over the target, which makes ext4 flush the new data first, about 0.3 s per GiB here; zstd truncates the target up front).";

/**
 * CPU milliseconds (user + system, every thread of this process) that `work` takes per call,
 * over `times` calls, with the wall milliseconds beside. CPU time counts only the time the
 * process ran, so waiting for a CPU that other work holds is left out; what the other work
 * does to shared caches and memory bandwidth still shows. The heap is collected first when
 * node runs with --expose-gc, so that each sample starts from the same heap.
 */
export async function cpuAndWall(work: () => unknown, times = 1): Promise<{ cpu: number; wall: number }> {
  collectGarbage();
  const before = process.cpuUsage();
  const start = performance.now();
  for (let i = 0; i < times; i++) await work();
  const wall = performance.now() - start;
  const used = process.cpuUsage(before);
  return { cpu: (used.user + used.system) / 1000 / times, wall: wall / times };
}

/** A small seeded generator (xorshift32): the same resamples, so the same interval, on every run of one data set. */
function xorshift(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

/**
 * A percentile bootstrap confidence interval for the median of `values`: the values
 * resampled with replacement `resamples` times, and the (1 - level) / 2 and (1 + level) / 2
 * quantiles of the resamples' medians.
 */
export function bootstrapMedian(
  values: readonly number[],
  level = 0.95,
  resamples = 10_000,
  seed = 0x5eed,
): { median: number; lo: number; hi: number } {
  const n = values.length;
  if (n === 0) return { median: Number.NaN, lo: Number.NaN, hi: Number.NaN };
  const random = xorshift(seed);
  const medians = new Float64Array(resamples);
  const sample = new Float64Array(n);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < n; i++) sample[i] = values[Math.floor(random() * n)];
    sample.sort();
    const mid = n >> 1;
    medians[r] = n % 2 ? sample[mid] : (sample[mid - 1] + sample[mid]) / 2;
  }
  medians.sort();
  const at = (q: number) => medians[Math.min(resamples - 1, Math.max(0, Math.floor(q * resamples)))];
  return { median: median(values), lo: at((1 - level) / 2), hi: at((1 + level) / 2) };
}

/**
 * The verdict on "the ratio stays below `limit`" from a confidence interval on it: met when
 * the whole interval lies below the limit, not met when it lies wholly at or above it, and
 * inconclusive when the limit falls inside it.
 */
export function intervalVerdict(
  interval: { lo: number; hi: number },
  limit: number,
): "met" | "not met" | "inconclusive" {
  if (interval.hi < limit) return "met";
  if (interval.lo >= limit) return "not met";
  return "inconclusive";
}
