/**
 * `mmh bench`: MMH against the compressors people already use, on the same bytes in the
 * same run. Each input is held in memory (as `zstd -b` does); every method is timed in
 * rounds that interleave the methods, so a machine's changing load falls on all of them;
 * every output is decoded and compared by sha256. Each input is classified with the
 * signals `mmh analyze` uses, and headline figures come from real weights only.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import { histogram } from "../codecs/hier/huffman.ts";
import { layoutForDType, streamLength } from "../codecs/hier/layouts.ts";
import type { DTypeName } from "../common/dtype.ts";
import { MmhError } from "../common/errors.ts";
import { bufferSource } from "../common/source.ts";
import type { Goal } from "../engine/auto.ts";
import { analyzeSource } from "./analyze.ts";
import type { ChildChunk, ChildMethod, ChildResult, ChildSpec } from "./bench-child.ts";
import { type Load, load, type Machine, machine, toolVersion } from "./machine.ts";

export type InputClass = "real weights" | "synthetic" | "periodic" | "constant" | "random" | "text" | "other";

export interface BenchInput {
  /** Shown in tables. */
  name: string;
  /** The bytes, as a file the measured processes read into memory. */
  path: string;
  /** The `--gen` spec that made it, for generated inputs. */
  generated?: string;
}

export interface BenchOptions {
  inputs: BenchInput[];
  /** Timed rounds per cell (default 3); each round times every method once, interleaved. */
  runs?: number;
  /** The thread count for MMH's multi-threaded rows (default: the cores available). */
  threads?: number;
  /** A cell that has taken this long stops after the round it is in (default 60 s). */
  maxCellSeconds?: number;
  /** Each timed call repeats until this many milliseconds pass, and its mean is the run's time (default 100). */
  minCallMs?: number;
  /** Measure the command-line peers (default true). */
  peers?: boolean;
  /** The command line that started the run, recorded in the report. */
  command: string;
  onProgress?: (done: number, total: number, label: string) => void;
  signal?: AbortSignal;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
}

export type MethodGroup = "mmh" | "peer" | "baseline";

export interface MethodInfo {
  id: string;
  group: MethodGroup;
  /** What runs: a command line, or the library call. */
  command: string;
}

export interface Cell {
  input: string;
  method: string;
  group: MethodGroup;
  runs: number;
  storedBytes: number;
  /** Original over stored. */
  ratio: number;
  /** Decimal MB of original bytes per second. */
  compressMBps: Spread;
  decompressMBps: Spread;
  /** Peak resident memory: a CLI's own (GNU time), or what an in-process method added to its process. */
  peakMemoryBytes: number | null;
  roundTrip: "sha256 ok" | "FAILED";
}

export interface InputReport {
  name: string;
  path: string;
  generated?: string;
  bytes: number;
  sha256: string;
  format: string;
  class: InputClass;
  /** Why it was classified so: the analyze signals seen. */
  signals: string[];
}

export interface TensorRow {
  input: string;
  name: string;
  dtype: string;
  bytes: number;
  /** Stored bytes under MMH's default (balanced, one thread), chunk records included. */
  storedBytes: number;
  savedBytes: number;
  /** The codecs auto chose for its chunks. */
  codecs: string[];
}

export interface EntropyRow {
  input: string;
  dtype: string;
  bytes: number;
  /** The order-0 entropy of each field stream, in bits per byte of the stream. */
  fields: { field: string; bits: number }[];
  /** The bytes the order-0 entropy of the fields allows. */
  limitBytes: number;
  /** MMH default's stored bytes for the same tensors. */
  mmhBytes: number;
}

export interface Headline {
  /** Inputs the headline is computed from (real weights only). */
  inputs: string[];
  bytes: number;
  /** Ratio of every method over the real inputs together (original / stored). */
  ratios: Record<string, number>;
}

export interface BenchReport {
  tool: string;
  /** Present when no real weights were given: the report's first line says so. */
  warning?: string;
  machine: Machine;
  loadStart: Load;
  loadEnd: Load;
  /** The command that started the run, then every command and call measured. */
  commands: string[];
  settings: { runs: number; threads: number; maxCellSeconds: number; minCallMs: number };
  notes: string[];
  inputs: InputReport[];
  methods: MethodInfo[];
  cells: Cell[];
  tensors: TensorRow[];
  entropy: EntropyRow[];
  headline: Headline | null;
  seconds: number;
}

/** The row MMH's per-tensor and entropy figures use: what `mmh FILE` does, one thread. */
export const DEFAULT_METHOD = "mmh balanced -T1";

interface ChildRunner {
  kind: "child";
  info: MethodInfo;
  method: ChildMethod;
}
interface CliRunner {
  kind: "cli";
  info: MethodInfo;
  tool: string;
  compress: string[];
  decompress: string[];
}
type Runner = ChildRunner | CliRunner;

function methods(threads: number, peers: boolean, notes: string[]): Runner[] {
  const out: Runner[] = [];
  const mmh = (id: string, m: Extract<ChildMethod, { kind: "mmh" }>, call: string) =>
    out.push({ kind: "child", info: { id, group: "mmh", command: call }, method: m });
  const threadCounts = threads > 1 ? [1, threads] : [1];
  for (const t of threadCounts) {
    for (const goal of ["balanced", "speed", "ratio"] as Goal[]) {
      mmh(
        `mmh ${goal} -T${t}`,
        { kind: "mmh", goal, threads: t },
        `compress(bytes, { goal: "${goal}", threads: ${t} })`,
      );
    }
  }
  for (const [codec, level] of [
    ["zstd", 3],
    ["lz4", undefined],
    ["brotli", 9],
    ["hier", 3],
  ] as const) {
    const lv = level === undefined ? "" : ` -${level}`;
    mmh(
      `mmh --codec ${codec}${lv} -T1`,
      { kind: "mmh", codec, level, threads: 1 },
      `compress(bytes, { codec: "${codec}"${level === undefined ? "" : `, level: ${level}`}, threads: 1 })`,
    );
  }
  out.push({
    kind: "child",
    info: {
      id: "byte grouping + zstd -3",
      group: "baseline",
      command: "each tensor's bytes split by position in the element, each plane zstd level 3 (node:zlib)",
    },
    method: { kind: "bytegroup", level: 3 },
  });
  if (!peers) return out;
  const cli = (id: string, tool: string, compress: string[], decompress: string[]) => {
    if (toolVersion(tool, ["--version"]) === "not found") {
      notes.push(`${id}: skipped, \`${tool}\` is not installed`);
      return;
    }
    out.push({
      kind: "cli",
      info: {
        id,
        group: "peer",
        command: `${[tool, ...compress].join(" ")} < IN ; ${[tool, ...decompress].join(" ")}`,
      },
      tool,
      compress,
      decompress,
    });
  };
  cli("zstd -1", "zstd", ["-1", "-c", "-q"], ["-d", "-c", "-q"]);
  cli("zstd -3", "zstd", ["-3", "-c", "-q"], ["-d", "-c", "-q"]);
  cli("zstd -19", "zstd", ["-19", "-c", "-q"], ["-d", "-c", "-q"]);
  cli("lz4", "lz4", ["-1", "-c", "-q"], ["-d", "-c", "-q"]);
  cli("brotli -9", "brotli", ["-q", "9", "-c"], ["-d", "-c"]);
  cli("xz -6", "xz", ["-6", "-T1", "-c"], ["-d", "-c"]);
  cli("gzip -6", "gzip", ["-6", "-c"], ["-d", "-c"]);
  return out;
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

interface ProcessResult {
  status: number | null;
  stdout: Buffer;
  stderr: string;
  ms: number;
}

function runProcess(
  command: string,
  args: readonly string[],
  input: Uint8Array | undefined,
  signal?: AbortSignal,
): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"], signal });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", reject);
    child.stdin.on("error", () => {}); // a tool that exits early; its status says why
    child.on("close", (status) =>
      resolve({
        status,
        stdout: Buffer.concat(out),
        stderr: Buffer.concat(err).toString("utf8"),
        ms: performance.now() - started,
      }),
    );
    if (input) child.stdin.end(input);
    else child.stdin.end();
  });
}

const TIME = "/usr/bin/time";
const RSS_MARK = "MMHBENCH_MAXRSS_KB";

/** One timed call of a CLI; repeated until minMs pass. */
async function cliCall(
  tool: string,
  args: string[],
  input: Uint8Array,
  minMs: number,
  signal?: AbortSignal,
): Promise<{ ms: number; output: Buffer; rss: number | null }> {
  const timed = existsSync(TIME);
  let total = 0;
  let calls = 0;
  let rss: number | null = null;
  let output: Buffer = Buffer.alloc(0);
  do {
    const r = timed
      ? await runProcess(TIME, ["-f", `${RSS_MARK} %M`, tool, ...args], input, signal)
      : await runProcess(tool, args, input, signal);
    if (r.status !== 0)
      throw new MmhError("E_INTERNAL", `${tool} ${args.join(" ")} failed: ${r.stderr.trim().split("\n")[0]}`);
    const mark = new RegExp(`${RSS_MARK} (\\d+)`).exec(r.stderr);
    if (mark) rss = Math.max(rss ?? 0, Number(mark[1]) * 1024);
    total += r.ms;
    calls++;
    output = r.stdout;
  } while (total < minMs);
  return { ms: total / calls, output, rss };
}

function childScript(): string {
  const self = fileURLToPath(import.meta.url);
  return fileURLToPath(new URL(`./bench-child${extname(self)}`, import.meta.url));
}

async function childCall(spec: ChildSpec, signal?: AbortSignal): Promise<ChildResult> {
  const r = await runProcess(process.execPath, [childScript(), JSON.stringify(spec)], undefined, signal);
  if (r.status !== 0)
    throw new MmhError("E_INTERNAL", `bench cell failed: ${r.stderr.trim().split("\n").pop() ?? r.status}`);
  return JSON.parse(r.stdout.toString("utf8")) as ChildResult;
}

function spread(values: number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1] };
}

const mbps = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1e3);

// ---------------------------------------------------------------------------------------
// Classification and the entropy limit

function printableShare(sample: Uint8Array): number {
  let n = 0;
  for (const b of sample) if (b === 9 || b === 10 || b === 13 || (b >= 32 && b < 127) || b >= 0xc2) n++;
  return sample.length ? n / sample.length : 0;
}

/**
 * Real weights, synthetic, periodic, constant, random or text, from the signals `mmh
 * analyze` reports: the format and its tensors, the metadata's synthetic flag, constant and
 * periodic regions, and how much each codec gains on samples; plus the share of printable
 * bytes for text. Row-structure (i.i.d.-looking) warnings are reported as signals but do not
 * decide: real LoRA and small MLP weights show them too.
 */
export async function classify(
  data: Uint8Array,
): Promise<{ format: string; class: InputClass; signals: string[] }> {
  const report = await analyzeSource(bufferSource(data), { sampleBytes: 64 << 10, maxRegions: 64 });
  const signals: string[] = [];
  const total = report.regions.reduce((a, r) => a + r.length, 0) || 1;
  const share = (pick: (r: (typeof report.regions)[number]) => boolean) =>
    report.regions.filter(pick).reduce((a, r) => a + r.length, 0) / total;
  const constant = share((r) => r.warnings.some((w) => w.startsWith("constant")));
  const periodic = share((r) => r.warnings.some((w) => w.startsWith("periodic")));
  const iid = share((r) => r.warnings.some((w) => w.startsWith("i.i.d.")));
  const floats = share((r) => r.dtype !== null && /^(BF16|F16|F32|F64|F8|I8|Q|IQ|U8|I16|I32)/.test(r.dtype));
  const incompressible = share((r) => r.candidates.every((c) => c.codec === "none" || c.ratio >= 0.98));
  const synthetic = report.warnings.some((w) => w.includes("synthetic=true"));
  signals.push(`format ${report.format}`);
  if (synthetic) signals.push("metadata synthetic=true");
  if (constant > 0) signals.push(`constant regions ${(constant * 100).toFixed(0)}%`);
  if (periodic > 0) signals.push(`periodic regions ${(periodic * 100).toFixed(0)}%`);
  if (iid > 0) signals.push(`i.i.d.-looking rows ${(iid * 100).toFixed(0)}% (not decisive)`);
  if (incompressible > 0) signals.push(`incompressible regions ${(incompressible * 100).toFixed(0)}%`);
  if (floats > 0) signals.push(`typed (tensor) regions ${(floats * 100).toFixed(0)}%`);
  const text = printableShare(data.subarray(0, 1 << 20));
  let cls: InputClass;
  if (synthetic) cls = "synthetic";
  else if (constant >= 0.5) cls = "constant";
  else if (periodic >= 0.5) cls = "periodic";
  else if (incompressible >= 0.9) cls = "random";
  else if (text >= 0.97 && report.format === "raw") {
    signals.push(`printable bytes ${(text * 100).toFixed(1)}%`);
    cls = "text";
  } else if (floats >= 0.5) cls = "real weights";
  else cls = "other";
  return { format: report.format, class: cls, signals };
}

const FIELD_NAMES: Record<string, string[]> = {
  BF16: ["exponent", "sign+mantissa"],
  F16: ["exponent+mantissa top 3", "sign+mantissa low 7"],
  F32: ["exponent", "mantissa byte 0", "mantissa byte 1", "sign+mantissa high"],
};

/** Order-0 entropy of each field of the float tensors, summed per dtype. */
function entropyRows(
  input: string,
  data: Uint8Array,
  tensors: { dtype: string; offset: number; length: number }[],
  chunks: ChildChunk[],
): EntropyRow[] {
  const by = new Map<string, { bytes: number; hists: Float64Array[]; lens: number[]; mmh: number }>();
  for (const t of tensors) {
    if (!(t.dtype in FIELD_NAMES)) continue;
    const layout = layoutForDType(t.dtype as DTypeName);
    const n = Math.floor(t.length / layout.width);
    if (n < 1) continue;
    const streams = Array.from(
      { length: layout.streams },
      (_, k) => new Uint8Array(streamLength(layout, k, n)),
    );
    layout.split(data.subarray(t.offset, t.offset + n * layout.width), n, streams);
    let row = by.get(t.dtype);
    if (!row) {
      row = { bytes: 0, hists: streams.map(() => new Float64Array(256)), lens: streams.map(() => 0), mmh: 0 };
      by.set(t.dtype, row);
    }
    row.bytes += t.length;
    streams.forEach((s, k) => {
      const h = histogram(s);
      for (let v = 0; v < 256; v++) row.hists[k][v] += h[v];
      row.lens[k] += s.length;
    });
    row.mmh += storedFor(t.offset, t.length, chunks);
  }
  const out: EntropyRow[] = [];
  for (const [dtype, row] of by) {
    let limit = 0;
    const fields = row.hists.map((h, k) => {
      let bits = 0;
      for (const c of h) if (c > 0) bits -= c * Math.log2(c / row.lens[k]);
      limit += bits / 8;
      return { field: FIELD_NAMES[dtype][k] ?? `plane ${k}`, bits: row.lens[k] ? bits / row.lens[k] : 0 };
    });
    out.push({
      input,
      dtype,
      bytes: row.bytes,
      fields,
      limitBytes: Math.ceil(limit),
      mmhBytes: Math.round(row.mmh),
    });
  }
  return out;
}

/** Stored bytes of the chunks over [offset, offset+length), each shared in proportion to its overlap. */
function storedFor(offset: number, length: number, chunks: ChildChunk[]): number {
  let stored = 0;
  for (const c of chunks) {
    const lo = Math.max(offset, c.rawOffset);
    const hi = Math.min(offset + length, c.rawOffset + c.rawLength);
    if (hi > lo) stored += (c.recordLength * (hi - lo)) / c.rawLength;
  }
  return stored;
}

function tensorRows(
  input: string,
  tensors: { name: string; dtype: string; offset: number; length: number }[],
  chunks: ChildChunk[],
): TensorRow[] {
  return tensors.map((t) => {
    const stored = Math.round(storedFor(t.offset, t.length, chunks));
    const codecs = [
      ...new Set(
        chunks
          .filter((c) => c.rawOffset < t.offset + t.length && c.rawOffset + c.rawLength > t.offset)
          .map((c) => c.codec),
      ),
    ];
    return {
      input,
      name: t.name,
      dtype: t.dtype,
      bytes: t.length,
      storedBytes: stored,
      savedBytes: t.length - stored,
      codecs,
    };
  });
}

// ---------------------------------------------------------------------------------------
// The run

export async function bench(options: BenchOptions): Promise<BenchReport> {
  const runs = options.runs ?? 3;
  const threads = options.threads ?? availableParallelism();
  const maxCellSeconds = options.maxCellSeconds ?? 60;
  const minCallMs = options.minCallMs ?? 100;
  for (const [what, v, lo] of [
    ["runs", runs, 1],
    ["threads", threads, 1],
    ["maxCellSeconds", maxCellSeconds, 0],
    ["minCallMs", minCallMs, 0],
  ] as const) {
    if (!Number.isFinite(v) || v < lo)
      throw new MmhError("E_BAD_OPTION", `${what} must be at least ${lo}, got ${v}`);
  }
  if (options.inputs.length === 0) throw new MmhError("E_USAGE", "bench needs a file, a folder or --gen");
  const started = performance.now();
  const loadStart = load();
  const notes: string[] = [];
  const runners = methods(threads, options.peers ?? true, notes);
  if (!existsSync(TIME))
    notes.push(`peak memory of the CLIs not measured: ${TIME} (GNU time) is not installed`);
  const cells: Cell[] = [];
  const inputs: InputReport[] = [];
  const tensors: TensorRow[] = [];
  const entropy: EntropyRow[] = [];
  const totalSteps = options.inputs.length * runs * runners.length;
  let done = 0;
  const step = (label: string) => options.onProgress?.(++done, totalSteps, label);
  for (const input of options.inputs) {
    options.signal?.throwIfAborted();
    const data = readFileSync(input.path);
    const want = sha256(data);
    const kind = await classify(data);
    inputs.push({
      name: input.name,
      path: input.path,
      ...(input.generated ? { generated: input.generated } : {}),
      bytes: data.length,
      sha256: want,
      format: kind.format,
      class: kind.class,
      signals: kind.signals,
    });
    if (runners.some((r) => r.kind === "cli")) {
      // What a CLI row pays besides coding: process start and the pipes, measured with cat.
      const cat = await cliCall("cat", [], data, minCallMs, options.signal);
      notes.push(
        `${input.name}: process start and pipes cost ${cat.ms.toFixed(1)} ms a call (\`cat\` through the same path), included in the CLI rows' speeds`,
      );
    }
    const times = runners.map(() => ({
      c: [] as number[],
      d: [] as number[],
      spent: 0,
      stored: 0,
      rss: null as number | null,
      ok: true,
    }));
    let chunks: ChildChunk[] | undefined;
    let stored: { name: string; dtype: string; offset: number; length: number }[] = [];
    for (let round = 0; round < runs; round++) {
      for (const [i, r] of runners.entries()) {
        const t = times[i];
        if (round > 0 && t.spent > maxCellSeconds * 1000) {
          step(`${input.name}: ${r.info.id} (done: ${round} runs)`);
          continue;
        }
        options.onProgress?.(done, totalSteps, `${input.name}: ${r.info.id}`);
        const began = performance.now();
        if (r.kind === "child") {
          const wantChunks = round === 0 && r.info.id === DEFAULT_METHOD;
          const res = await childCall(
            { file: input.path, method: r.method, minMs: minCallMs, chunks: wantChunks },
            options.signal,
          );
          t.c.push(mbps(data.length, res.compressMs));
          t.d.push(mbps(data.length, res.decompressMs));
          t.stored = res.storedBytes;
          t.rss = Math.max(t.rss ?? 0, res.peakExtraBytes);
          t.ok &&= res.roundTrip;
          if (wantChunks) {
            chunks = res.chunks;
            stored = res.tensors ?? [];
          }
        } else {
          const c = await cliCall(r.tool, r.compress, data, minCallMs, options.signal);
          const d = await cliCall(r.tool, r.decompress, c.output, minCallMs, options.signal);
          t.c.push(mbps(data.length, c.ms));
          t.d.push(mbps(data.length, d.ms));
          t.stored = c.output.length;
          if (c.rss !== null || d.rss !== null) t.rss = Math.max(t.rss ?? 0, c.rss ?? 0, d.rss ?? 0);
          t.ok &&= sha256(d.output) === want;
        }
        t.spent += performance.now() - began;
        step(`${input.name}: ${r.info.id}`);
      }
    }
    for (const [i, r] of runners.entries()) {
      const t = times[i];
      cells.push({
        input: input.name,
        method: r.info.id,
        group: r.info.group,
        runs: t.c.length,
        storedBytes: t.stored,
        ratio: t.stored > 0 ? data.length / t.stored : 0,
        compressMBps: spread(t.c),
        decompressMBps: spread(t.d),
        peakMemoryBytes: t.rss,
        roundTrip: t.ok ? "sha256 ok" : "FAILED",
      });
    }
    if (chunks) {
      tensors.push(...tensorRows(input.name, stored, chunks));
      entropy.push(...entropyRows(input.name, data, stored, chunks));
    }
  }
  const failed = cells.filter((c) => c.roundTrip !== "sha256 ok");
  if (failed.length > 0)
    notes.push(`ROUND TRIP FAILED: ${failed.map((c) => `${c.method} on ${c.input}`).join(", ")}`);
  const real = inputs.filter((i) => i.class === "real weights");
  let headline: Headline | null = null;
  if (real.length > 0) {
    const names = new Set(real.map((i) => i.name));
    const bytes = real.reduce((a, i) => a + i.bytes, 0);
    const ratios: Record<string, number> = {};
    for (const r of runners) {
      const s = cells
        .filter((c) => c.method === r.info.id && names.has(c.input))
        .reduce((a, c) => a + c.storedBytes, 0);
      ratios[r.info.id] = s > 0 ? bytes / s : 0;
    }
    headline = { inputs: [...names], bytes, ratios };
  }
  const classes = [...new Set(inputs.map((i) => i.class))].join(", ");
  const commands = [options.command, ...runners.map((r) => `${r.info.id}: ${r.info.command}`)];
  return {
    tool: "mmh bench",
    ...(headline
      ? {}
      : {
          warning: `No real weights among the inputs (${classes}): these figures are not evidence about real model files.`,
        }),
    machine: machine(),
    loadStart,
    loadEnd: load(),
    commands,
    settings: { runs, threads, maxCellSeconds, minCallMs },
    notes: [
      "Speeds are decimal MB of original bytes per second, the median of the runs (min-max beside it); compare them within this run, not across machines.",
      "In-process rows (mmh, byte grouping) time the library call on bytes in memory, each method in its own Node process; CLI rows time the whole command with its input on a pipe, process start included.",
      "Peak memory: a CLI's own peak RSS (GNU time); for in-process rows, the peak RSS their process reached over its RSS with the input loaded.",
      "Every output was decoded and its sha256 compared with the input's.",
      ...notes,
    ],
    inputs,
    methods: runners.map((r) => r.info),
    cells,
    tensors,
    entropy,
    headline,
    seconds: (performance.now() - started) / 1000,
  };
}
