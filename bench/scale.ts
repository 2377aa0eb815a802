/**
 * Files larger than memory: the mmh CLI on an 8 GiB safetensors file. Peak resident memory
 * (which must not grow with the file), the speed-up of two worker threads over one, and
 * random access (readRange, extract --tensor) reading only the chunks it needs. Writes
 * bench/results/scale.md.
 *
 *   npx node bench/scale.ts            full run: 8 GiB input, about 25 GiB of free disk
 *                                      (30 GiB checked), 10 to 20 minutes
 *   npx node bench/scale.ts --quick    512 MiB input, one run, no waiting, writes nothing
 *
 * Options: --size 8G (a multiple of 128 MiB), --runs N (timed runs of each command,
 * default 3), --wait MINUTES (wait at most this long for a 1-minute load average below 1
 * before timing, default 10), --out FILE, --delete-input.
 *
 * The input, .bench-data/scale-bf16-SIZE-v1.safetensors, holds 8 BF16 tensors of SIZE/8
 * each (LLM-like names, shapes [rows, cols]), written 64 MiB at a time with fillWeights()
 * from src/tools/gen.ts (std 0.02, per-row scale, one seeded rng): never whole in memory,
 * and the same bytes on every machine. Its sha256 goes into a sidecar (FILE.sha256, in
 * sha256sum's format); a later run reuses the file when its size is right, the sidecar
 * exists and the file still hashes to it. The input is kept at the end (unless
 * --delete-input, or free disk is then too short for another run); the .mmh, .zst,
 * restored and extracted files are deleted.
 *
 * Needs GNU time at /usr/bin/time (Debian package `time`) for peak RSS; the zstd CLI for
 * the context rows (skipped without it).
 */
import "./lib/help.ts";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  closeSync,
  createReadStream,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { fileSource, type RandomAccessSource } from "../src/common/source.ts";
import { MmhReader } from "../src/engine/reader.ts";
import { type ChunkInfo, open } from "../src/index.ts";
import { fillWeights, rng } from "../src/tools/gen.ts";
import { writeReport } from "./lib/commands.ts";
import { lastProbe } from "./lib/io-probe.ts";
import {
  argValue,
  sizeLabel as baseSizeLabel,
  CLEAR_OUTPUT_NOTE,
  clearOutput,
  contentionNote,
  cpuWaitMicros,
  fmt,
  KiB,
  MiB,
  machineLines,
  mbps,
  median,
  parseSizeArg,
  table,
  zstdCliVersion,
} from "./lib/report.ts";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");
const quick = process.argv.includes("--quick");
const GiB = 1024 * MiB;
const size = parseSizeArg(argValue("--size") ?? (quick ? "512M" : "8G"));
const runs = Number(argValue("--runs") ?? (quick ? 1 : 3));
const waitMinutes = Number(argValue("--wait") ?? (quick ? 0 : 10));
const outFile = argValue("--out") ?? (quick ? undefined : join(here, "results", "scale.md"));
const deleteInput = process.argv.includes("--delete-input");
const workDir = join(root, ".bench-data");
const cli = join(root, "bin", "mmh.js");
const probe = join(here, "lib", "io-probe.ts");
const node = process.execPath;
const TIME_BIN = "/usr/bin/time";

/** "8 GiB", "512 MiB", "64 MiB". */
const sizeLabel = (bytes: number) =>
  bytes >= GiB && bytes % GiB === 0 ? `${bytes / GiB} GiB` : baseSizeLabel(bytes);

const TENSORS = 8;
const HIDDEN = 8192;
const PIECE = 64 * MiB;
const SEED = 1;
const STD = 0.02;
/** Free disk needed, input included: input + .mmh (~0.7) + restored copy + .zst (~0.75), rounded up. */
const DISK_FACTOR = 3.75;
const RSS_TARGET_MIB = 256;
const SPEEDUP_TARGET = 1.8;
const RANGE_READS = 20;
const RANGE_BYTES = 4 * KiB;

const tensorBytes = size / TENSORS;
if (!Number.isSafeInteger(tensorBytes) || tensorBytes % (2 * HIDDEN * 8) !== 0 || size < 128 * MiB) {
  throw new Error(`--size must be a multiple of 128 MiB, got ${size}`);
}
const label = size % GiB === 0 ? `${size / GiB}G` : `${size / MiB}M`;
const input = join(workDir, `scale-bf16-${label}-v1.safetensors`);
const sidecar = `${input}.sha256`;
const packed = join(workDir, `scale-bf16-${label}.mmh`);
const zst = join(workDir, `scale-bf16-${label}.zst`);
const restored = join(workDir, `scale-bf16-${label}.restored`);
const extracted = join(workDir, `scale-bf16-${label}.tensor.bin`);
const probeFile = join(workDir, "scale-io-probe.txt");

// ---------------------------------------------------------------------------------------
// The input

interface TensorSpec {
  name: string;
  rows: number;
  cols: number;
}

/** Eight BF16 matrices of tensorBytes each: embeddings, two layers' MLP, the LM head. */
function tensorSpecs(): TensorSpec[] {
  const long = tensorBytes / 2 / HIDDEN; // 65536 for 1 GiB tensors
  const mlp = (layer: number): TensorSpec[] => [
    { name: `model.layers.${layer}.mlp.gate_proj.weight`, rows: long, cols: HIDDEN },
    { name: `model.layers.${layer}.mlp.up_proj.weight`, rows: long, cols: HIDDEN },
    { name: `model.layers.${layer}.mlp.down_proj.weight`, rows: HIDDEN, cols: long },
  ];
  return [
    { name: "model.embed_tokens.weight", rows: long, cols: HIDDEN },
    ...mlp(0),
    ...mlp(1),
    { name: "lm_head.weight", rows: long, cols: HIDDEN },
  ];
}

/** The safetensors header (length prefix included), padded so the data starts 8-aligned. */
function safetensorsHeader(specs: readonly TensorSpec[]): Buffer {
  const header: Record<string, unknown> = {
    __metadata__: {
      format: "pt",
      generator: `bench/scale.ts (fillWeights, std ${STD}, seed ${SEED})`,
      synthetic: "true",
    },
  };
  let offset = 0;
  for (const t of specs) {
    const bytes = t.rows * t.cols * 2;
    header[t.name] = { dtype: "BF16", shape: [t.rows, t.cols], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - ((json.length + 8) % 8)) % 8);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([length, Buffer.from(json)]);
}

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, bytes.length - done);
}

/** Write the input piece by piece (never whole in memory), hashing as it goes. */
function generateInput(specs: readonly TensorSpec[]): string {
  const temp = `${input}.partial`;
  const hash = createHash("sha256");
  const fd = openSync(temp, "w");
  const started = performance.now();
  try {
    const header = safetensorsHeader(specs);
    writeAll(fd, header);
    hash.update(header);
    const next = rng(SEED);
    let written = 0;
    for (const t of specs) {
      const rowsPerPiece = Math.max(1, Math.floor(PIECE / (t.cols * 2)));
      for (let row = 0; row < t.rows; row += rowsPerPiece) {
        const piece = fillWeights(Math.min(rowsPerPiece, t.rows - row), t.cols, STD, next, "BF16");
        writeAll(fd, piece);
        hash.update(piece);
        written += piece.length;
        if (written % GiB === 0 || written === size) {
          const s = (performance.now() - started) / 1000;
          console.log(`  ${sizeLabel(written)} of ${sizeLabel(size)} (${fmt(s, 0)} s)`);
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  renameSync(temp, input);
  const sha = hash.digest("hex");
  writeFileSync(sidecar, `${sha}  ${relative(dirname(sidecar), input)}\n`);
  return sha;
}

function sha256File(path: string, start = 0, end?: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash("sha256");
    const range = end === undefined ? { start } : { start, end: end - 1 };
    createReadStream(path, { highWaterMark: 4 * MiB, ...range })
      .on("data", (piece) => hash.update(piece))
      .on("end", () => resolve(hash.digest("hex")))
      .on("error", reject);
  });
}

/** The input's sha256: reused when size, sidecar and a fresh hash agree, else generated. */
async function ensureInput(specs: readonly TensorSpec[]): Promise<{ sha: string; how: string }> {
  const expected = safetensorsHeader(specs).length + size;
  if (existsSync(input) && statSync(input).size === expected && existsSync(sidecar)) {
    const stored = /^([0-9a-f]{64})\b/.exec(readFileSync(sidecar, "utf8"))?.[1];
    console.log(`checking ${relative(root, input)} against its sidecar ...`);
    const start = performance.now();
    const sha = await sha256File(input);
    if (sha === stored) {
      const s = (performance.now() - start) / 1000;
      return { sha, how: `reused (its sha256 matched the sidecar; hashing it took ${fmt(s, 1)} s)` };
    }
    console.log("  it does not match the sidecar: generating it again");
  }
  rmSync(sidecar, { force: true });
  console.log(`generating ${relative(root, input)} (${sizeLabel(size)}), 64 MiB at a time ...`);
  const start = performance.now();
  const sha = generateInput(specs);
  const s = (performance.now() - start) / 1000;
  return { sha, how: `generated in this run (${fmt(s, 0)} s, ${fmt(mbps(size, s * 1000), 0)} MB/s)` };
}

// ---------------------------------------------------------------------------------------
// Commands, timed

/** Free bytes on the file system holding `dir`, from `df -Pk`. */
function freeBytes(dir: string): number {
  const result = spawnSync("df", ["-Pk", dir], { encoding: "utf8" });
  const line = result.stdout?.trim().split("\n").at(-1) ?? "";
  const avail = Number(line.split(/\s+/)[3]);
  if (result.status !== 0 || !Number.isFinite(avail))
    throw new Error(`df -Pk ${dir} failed: ${result.stderr}`);
  return avail * KiB;
}

function hasCommand(command: string, args: string[]): boolean {
  const result = spawnSync(command, args, { stdio: "ignore" });
  return !result.error && result.status === 0;
}

interface Measured {
  ms: number;
  rssKiB: number;
  cpuSeconds: number;
}

/** One run of a command under `/usr/bin/time -v`: wall clock (ours), peak RSS, CPU time. */
/** The kernel's vm.dirty_ratio, or "?" where it cannot be read. */
function dirtyRatio(): string {
  try {
    return readFileSync("/proc/sys/vm/dirty_ratio", "utf8").trim();
  } catch {
    return "?";
  }
}

function timed(command: string, args: readonly string[], env?: NodeJS.ProcessEnv): Measured {
  clearOutput(args);
  const start = performance.now();
  const result = spawnSync(TIME_BIN, ["-v", command, ...args], {
    cwd: root,
    encoding: "utf8",
    stdio: ["ignore", "ignore", "pipe"],
    timeout: 3_600_000,
    env: env ?? process.env,
  });
  const ms = performance.now() - start;
  if (result.error) throw result.error;
  const stderr = result.stderr ?? "";
  if (result.status !== 0)
    throw new Error(`${command} ${args.join(" ")} failed (${result.status ?? result.signal}): ${stderr}`);
  const num = (re: RegExp) => {
    const match = re.exec(stderr);
    if (!match) throw new Error(`no "${re.source}" in the output of ${TIME_BIN} -v:\n${stderr}`);
    return Number(match[1]);
  };
  return {
    ms,
    rssKiB: num(/Maximum resident set size \(kbytes\): (\d+)/),
    cpuSeconds: num(/User time \(seconds\): ([\d.]+)/) + num(/System time \(seconds\): ([\d.]+)/),
  };
}

const rotate = <T>(items: readonly T[], by: number): T[] => {
  const k = ((by % items.length) + items.length) % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
};
const yesNo = (met: boolean) => (met ? "**met**" : "**not met**");
const mib = (kib: number) => kib / 1024;
const seconds = (ms: number) => fmt(ms / 1000, 2);

async function waitForQuiet(): Promise<string> {
  const start = performance.now();
  const deadline = start + waitMinutes * 60_000;
  let load = loadavg()[0];
  while (load >= 1 && performance.now() < deadline) {
    console.log(`  load average ${fmt(load, 2)} >= 1: waiting (at most ${waitMinutes} min in all) ...`);
    await new Promise((resolve) => setTimeout(resolve, 15_000));
    load = loadavg()[0];
  }
  const waited = (performance.now() - start) / 1000;
  if (load < 1)
    return `1-minute load average ${fmt(load, 2)} when timing began (waited ${fmt(waited, 0)} s for it)`;
  return `1-minute load average still ${fmt(load, 2)} after waiting ${fmt(waited, 0)} s: timed anyway, so the figures may be slowed by other work`;
}

// ---------------------------------------------------------------------------------------
// Random access, with the bytes read counted

interface ReadLog {
  offset: number;
  length: number;
}

function counting(inner: RandomAccessSource, log: ReadLog[]): RandomAccessSource {
  return {
    size: inner.size,
    read(offset, length) {
      log.push({ offset, length });
      return inner.read(offset, length);
    },
    close: () => inner.close(),
  };
}

interface ReadBreakdown {
  /** Chunk records read (indexes), in order. */
  chunksRead: number[];
  chunkBytes: number;
  /** Header, metadata, trailer and index reads. */
  otherBytes: number;
  otherReads: number;
}

function breakdown(log: readonly ReadLog[], chunks: readonly ChunkInfo[]): ReadBreakdown {
  const byOffset = new Map(chunks.map((c, i) => [c.recordOffset, i]));
  const out: ReadBreakdown = { chunksRead: [], chunkBytes: 0, otherBytes: 0, otherReads: 0 };
  for (const r of log) {
    const i = byOffset.get(r.offset);
    if (i !== undefined && chunks[i].recordLength === r.length) {
      out.chunksRead.push(i);
      out.chunkBytes += r.length;
    } else {
      out.otherBytes += r.length;
      out.otherReads++;
    }
  }
  return out;
}

/** Chunk indexes whose raw range overlaps [offset, offset + length). */
function neededChunks(reader: MmhReader, offset: number, length: number): number[] {
  const out: number[] = [];
  for (let i = reader.chunkAt(offset); i < reader.chunks.length; i++) {
    if (reader.chunks[i].rawOffset >= offset + length) break;
    out.push(i);
  }
  return out;
}

const sameList = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((v, i) => v === b[i]);

/** Open through a counting source, run `work`, close: the API's readRange/readTensor path. */
async function counted<T>(work: (reader: MmhReader) => Promise<T>): Promise<{ value: T; log: ReadLog[] }> {
  const log: ReadLog[] = [];
  const reader = await MmhReader.open(counting(await fileSource(packed), log));
  try {
    return { value: await work(reader), log };
  } finally {
    await reader.close();
  }
}

function readInput(offset: number, length: number): Buffer {
  const fd = openSync(input, "r");
  try {
    const out = Buffer.alloc(length);
    for (let done = 0; done < length; ) done += readSync(fd, out, done, length - done, offset + done);
    return out;
  } finally {
    closeSync(fd);
  }
}

// ---------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const started = performance.now();
  const loadAtStart = loadavg();
  mkdirSync(workDir, { recursive: true });

  if (!existsSync(TIME_BIN)) {
    console.error(
      `bench/scale.ts needs GNU time at ${TIME_BIN} for peak RSS, and it is not installed. ` +
        "On Debian or Ubuntu: apt-get install time",
    );
    return 1;
  }
  if (!existsSync(cli)) {
    console.error(`bench/scale.ts needs the CLI, ${relative(root, cli)}, and it does not exist.`);
    return 1;
  }
  const haveZstd = hasCommand("zstd", ["--version"]);

  const specs = tensorSpecs();
  const inputBytesNow = existsSync(input) ? statSync(input).size : 0;
  const needed = Math.ceil(DISK_FACTOR * size);
  const free = freeBytes(workDir);
  if (free + inputBytesNow < needed) {
    console.error(
      `bench/scale.ts needs about ${fmt(needed / GiB, 1)} GiB of free disk in ${relative(root, workDir)}/ ` +
        `(the ${sizeLabel(size)} input, its .mmh and .zst, and the restored copy), counting an input already ` +
        `there; df says ${fmt(free / GiB, 1)} GiB are free${inputBytesNow ? ` and the input takes ${fmt(inputBytesNow / GiB, 1)} GiB` : ""}. ` +
        "Free some space or pass a smaller --size.",
    );
    return 1;
  }
  console.log(
    `free disk: ${fmt(free / GiB, 1)} GiB (needed ${fmt(needed / GiB, 1)} GiB); load average ${loadAtStart.map((l) => fmt(l, 2)).join(", ")}`,
  );

  // ----- input
  const { sha: inputSha, how } = await ensureInput(specs);
  const inputBytes = statSync(input).size;
  console.log(
    `input: ${relative(root, input)}, ${inputBytes} bytes, sha256 ${inputSha.slice(0, 16)}...; ${how}`,
  );

  console.log(`waiting for a quiet machine (at most ${waitMinutes} min) ...`);
  const quietNote =
    waitMinutes > 0 ? await waitForQuiet() : `no waiting (--wait 0); load average ${fmt(loadavg()[0], 2)}`;
  console.log(`  ${quietNote}`);
  const loadAtTiming = loadavg();
  const waitAtTiming = cpuWaitMicros();
  const timingStarted = performance.now();

  // ----- compress and decompress, N = 1 and N = 2, and zstd for context
  /** output: the file written, or null for a command writing to standard output (discarded). */
  type Op = { label: string; command: string; args: string[]; output: string | null };
  const compressOps: Record<string, Op> = {
    mmhC1: {
      label: "mmh compress -T 1",
      command: node,
      args: [cli, input, "-o", packed, "-f", "-q", "-T", "1"],
      output: packed,
    },
    mmhC2: {
      label: "mmh compress -T 2",
      command: node,
      args: [cli, input, "-o", packed, "-f", "-q", "-T", "2"],
      output: packed,
    },
  };
  if (haveZstd) {
    compressOps.zstd1 = {
      label: "zstd -3 -T1",
      command: "zstd",
      args: ["-3", "-T1", "-q", "-f", input, "-o", zst],
      output: zst,
    };
    compressOps.zstd2 = {
      label: "zstd -3 -T2",
      command: "zstd",
      args: ["-3", "-T2", "-q", "-f", input, "-o", zst],
      output: zst,
    };
  }
  const decompressOps: Record<string, Op> = {
    mmhD1: {
      label: "mmh -d -T 1",
      command: node,
      args: [cli, "-d", packed, "-o", restored, "-f", "-q", "-T", "1"],
      output: restored,
    },
    mmhD2: {
      label: "mmh -d -T 2",
      command: node,
      args: [cli, "-d", packed, "-o", restored, "-f", "-q", "-T", "2"],
      output: restored,
    },
  };
  if (haveZstd) {
    decompressOps.zstdD = {
      label: "zstd -d",
      command: "zstd",
      args: ["-d", "-q", "-f", zst, "-o", restored],
      output: restored,
    };
  }
  // The same work with the output written to standard output, which is discarded (/dev/null):
  // what the codecs and threads cost without the disk. Writing 8 GiB goes past the
  // kernel's dirty-page limit (a share of memory), after which writers wait for the disk
  // and the kernel's flusher threads take CPU time from the 2 cores.
  const discardOps: Record<string, Op> = {
    mmhC1c: {
      label: "mmh compress -T 1 -c",
      command: node,
      args: [cli, input, "-c", "-q", "-T", "1"],
      output: null,
    },
    mmhC2c: {
      label: "mmh compress -T 2 -c",
      command: node,
      args: [cli, input, "-c", "-q", "-T", "2"],
      output: null,
    },
    mmhD1c: {
      label: "mmh -d -T 1 -c",
      command: node,
      args: [cli, "-d", packed, "-c", "-q", "-T", "1"],
      output: null,
    },
    mmhD2c: {
      label: "mmh -d -T 2 -c",
      command: node,
      args: [cli, "-d", packed, "-c", "-q", "-T", "2"],
      output: null,
    },
  };
  if (haveZstd) {
    discardOps.zstd1c = {
      label: "zstd -3 -T1 -c",
      command: "zstd",
      args: ["-3", "-T1", "-q", "-c", input],
      output: null,
    };
    discardOps.zstdDc = { label: "zstd -d -c", command: "zstd", args: ["-d", "-q", "-c", zst], output: null };
  }
  const startup = timed(node, [cli, "--version"]);
  console.log(`process start alone (mmh --version): peak RSS ${fmt(mib(startup.rssKiB), 0)} MiB`);
  const results: Record<string, Measured[]> = {};
  const outputBytes: Record<string, number[]> = {};
  const runPhase = (ops: Record<string, Op>, what: string) => {
    const keys = Object.keys(ops);
    for (let r = 0; r < runs; r++) {
      for (const key of rotate(keys, r)) {
        const op = ops[key];
        process.stdout.write(`  ${what} run ${r + 1}/${runs}: ${op.label} ... `);
        const m = timed(op.command, op.args);
        results[key] = [...(results[key] ?? []), m];
        if (op.output !== null) outputBytes[key] = [...(outputBytes[key] ?? []), statSync(op.output).size];
        console.log(
          `${seconds(m.ms)} s, ${fmt(mbps(inputBytes, m.ms), 0)} MB/s, peak RSS ${fmt(mib(m.rssKiB), 0)} MiB, CPU ${fmt(m.cpuSeconds, 1)} s`,
        );
      }
    }
  };
  let restoredOk = false;
  let extractSection: string[] = [];
  let rangeSection: string[] = [];
  let rangeMet = false;
  let extractMet = false;
  let rangeMeasured = "";
  let extractMeasured = "";
  let diskNote = "";
  try {
    console.log(`\ncompress (${runs} run${runs === 1 ? "" : "s"} of each, order rotating) ...`);
    runPhase(compressOps, "compress");
    console.log(`\ndecompress (${runs} run${runs === 1 ? "" : "s"} of each, order rotating) ...`);
    runPhase(decompressOps, "decompress");
    console.log(
      `\nto standard output, discarded (${runs} run${runs === 1 ? "" : "s"} of each, order rotating) ...`,
    );
    runPhase(discardOps, "discarded");
    rmSync(zst, { force: true });
    console.log("checking the restored file's sha256 ...");
    restoredOk = (await sha256File(restored)) === inputSha;
    console.log(`  ${restoredOk ? "equal to the input's" : "DIFFERENT from the input's"}`);
    rmSync(restored, { force: true });
    if (!restoredOk) throw new Error("the restored file differs from the input");

    // ----- readRange: 20 random 4 KiB reads
    console.log(`\nreadRange: ${RANGE_READS} reads of ${RANGE_BYTES} bytes at random offsets ...`);
    const pick = rng(7);
    const rangeRows: string[][] = [];
    const rangeMs: number[] = [];
    let rangeAllExact = true;
    let rangeAllEqual = true;
    let chunkBytesTotal = 0;
    let otherBytesPerOpen = 0;
    let chunkCount = 0;
    let rangeChunkSizes: number[] = [];
    for (let k = 0; k < RANGE_READS; k++) {
      const offset = Math.floor(pick() * (inputBytes - RANGE_BYTES));
      const t0 = performance.now();
      const viaApi = await (async () => {
        await using opened = await open(packed);
        return await opened.readRange(offset, RANGE_BYTES);
      })();
      const ms = performance.now() - t0;
      rangeMs.push(ms);
      const { value, log } = await counted(async (reader) => ({
        bytes: await reader.readRange(offset, RANGE_BYTES),
        needed: neededChunks(reader, offset, RANGE_BYTES),
        chunks: reader.chunks,
      }));
      const b = breakdown(log, value.chunks);
      const exact = sameList(b.chunksRead, value.needed);
      const equal =
        Buffer.from(viaApi).equals(readInput(offset, RANGE_BYTES)) && Buffer.from(value.bytes).equals(viaApi);
      rangeAllExact &&= exact;
      rangeAllEqual &&= equal;
      chunkBytesTotal += b.chunkBytes;
      chunkCount += b.chunksRead.length;
      otherBytesPerOpen = Math.max(otherBytesPerOpen, b.otherBytes);
      rangeChunkSizes = [...rangeChunkSizes, ...b.chunksRead.map((i) => value.chunks[i].recordLength)];
      rangeRows.push([
        String(offset),
        value.needed.join(", "),
        b.chunksRead.join(", "),
        String(b.chunkBytes),
        String(b.otherBytes),
        fmt(ms, 2),
        exact && equal ? "yes" : "NO",
      ]);
    }
    const info = await counted(async (reader) => ({
      chunks: reader.chunks.length,
      headerSize: reader.header.size,
      indexLength: reader.trailer.indexLength,
      fileBytes: reader.source.size,
    }));
    const mmhBytes = info.value.fileBytes;
    rangeMet = rangeAllExact && rangeAllEqual;
    rangeMeasured = `${chunkCount} chunk records for ${RANGE_READS} reads, ${fmt(chunkBytesTotal / RANGE_READS / KiB, 0)} KiB of them per read; none other`;
    console.log(
      `  median ${fmt(median(rangeMs), 2)} ms; chunk records read: ${chunkCount} (${chunkBytesTotal} bytes), ` +
        `plus ${otherBytesPerOpen} bytes of header/index/trailer per open; only needed chunks: ${rangeAllExact}; bytes equal: ${rangeAllEqual}`,
    );
    rangeSection = [
      `## readRange: ${RANGE_READS} reads of 4 KiB at random offsets`,
      "",
      `\`readRange(FILE.mmh, offset, 4096)\` from src/index.ts at ${RANGE_READS} offsets drawn uniformly (mulberry32, seed 7) over the content; each call opens the file, reads what it needs and closes it. Time is of that API call. The bytes read are counted by running the same calls (\`MmhReader.open(fileSource(FILE.mmh))\`, \`reader.readRange\`, \`close\`) through a source that logs every positioned read, each read classed as a whole chunk record (its offset and length are a record's in the index) or as container metadata. Every result was compared with the same 4 KiB of the input.`,
      "",
      `The .mmh file: ${mmhBytes} bytes, ${info.value.chunks} chunk records, header ${info.value.headerSize} bytes, index block ${info.value.indexLength} bytes (32 bytes per chunk plus the footer with the tensor table), trailer 80 bytes.`,
      "",
      `- Time per call: median ${fmt(median(rangeMs), 2)} ms, fastest ${fmt(Math.min(...rangeMs), 2)} ms, slowest ${fmt(Math.max(...rangeMs), 2)} ms (page cache warm: the .mmh file was just written).`,
      `- Chunk records read: ${chunkCount} for ${RANGE_READS} reads (${RANGE_READS} needed at least one each; a 4 KiB read spanning a chunk boundary needs two), ${chunkBytesTotal} bytes in all, median record ${fmt(median(rangeChunkSizes) / KiB, 0)} KiB; ${fmt((chunkBytesTotal / mmhBytes) * 100, 4)}% of the file.`,
      `- Besides the chunks, every open reads the header, trailer and whole index: ${otherBytesPerOpen} bytes per call (${fmt(otherBytesPerOpen / KiB, 0)} KiB). For a file this size that is ${otherBytesPerOpen > chunkBytesTotal / RANGE_READS ? "more" : "less"} than the chunk bytes a 4 KiB read needs; a caller doing many reads should keep one \`MmhReader\` open.`,
      `- Only the needed chunks were read, each once, in every call: ${rangeAllExact ? "yes" : "NO"}. Bytes equal to the input's: ${rangeAllEqual ? "yes" : "NO"}.`,
      "",
      table(
        ["offset", "chunks needed", "chunk records read", "chunk bytes read", "other bytes read", "ms", "ok"],
        rangeRows,
      ),
      "",
    ];

    // ----- extract --tensor: one whole tensor
    const target = specs[4];
    console.log(`\nextract --tensor ${target.name} ...`);
    const rangeOfTensor = await counted(async (reader) => {
      const t = reader.footer.tensors.find((x) => x.name === target.name);
      if (!t) throw new Error(`no tensor ${target.name} in the .mmh footer`);
      return {
        tensor: t,
        needed: neededChunks(reader, t.offset, t.length),
        chunks: reader.chunks,
      };
    });
    const tensor = rangeOfTensor.value.tensor;
    const needed = rangeOfTensor.value.needed;
    const neededBytes = needed.reduce((s, i) => s + rangeOfTensor.value.chunks[i].recordLength, 0);
    const tensorSha = await sha256File(input, tensor.offset, tensor.offset + tensor.length);
    // in process, counted: what readTensor() does
    const t0 = performance.now();
    const inProc = await counted(async (reader) => {
      const data = await reader.readRange(tensor.offset, tensor.length);
      return createHash("sha256").update(data).digest("hex");
    });
    const inProcMs = performance.now() - t0;
    const inProcB = breakdown(inProc.log, rangeOfTensor.value.chunks);
    const inProcExact = sameList(inProcB.chunksRead, needed);
    const inProcEqual = inProc.value === tensorSha;
    // the CLI, timed, with its read system calls counted
    const extractArgs = [
      "--import",
      probe,
      cli,
      "extract",
      packed,
      "--tensor",
      tensor.name,
      "-o",
      extracted,
      "-f",
      "-q",
    ];
    const env = { ...process.env, MMH_IO_PROBE: probeFile };
    const cliRuns: Measured[] = [];
    const rchar: number[] = [];
    const baseline: number[] = [];
    for (let r = 0; r < runs; r++) {
      rmSync(probeFile, { force: true });
      timed(node, ["--import", probe, cli, "--version"], env);
      baseline.push(lastProbe(readFileSync(probeFile, "utf8"))?.rchar ?? Number.NaN);
      rmSync(probeFile, { force: true });
      const m = timed(node, extractArgs, env);
      cliRuns.push(m);
      rchar.push(
        lastProbe(existsSync(probeFile) ? readFileSync(probeFile, "utf8") : "")?.rchar ?? Number.NaN,
      );
      console.log(
        `  CLI run ${r + 1}/${runs}: ${seconds(m.ms)} s, peak RSS ${fmt(mib(m.rssKiB), 0)} MiB, rchar ${rchar.at(-1)} (--version: ${baseline.at(-1)})`,
      );
    }
    rmSync(probeFile, { force: true });
    const cliEqual = (await sha256File(extracted)) === tensorSha;
    rmSync(extracted, { force: true });
    const cliExtra = median(rchar) - median(baseline);
    const expectedCli = neededBytes + inProcB.otherBytes;
    const cliClose = Math.abs(cliExtra - expectedCli) <= 0.01 * expectedCli;
    extractMet = inProcExact && inProcEqual && cliEqual && cliClose;
    extractMeasured = `${inProcB.chunksRead.length} of ${needed.length} needed chunk records (${inProcB.chunkBytes} of ${neededBytes} bytes); CLI rchar beyond start-up ${fmt(cliExtra / MiB, 1)} MiB`;
    console.log(
      `  chunks needed ${needed.length} (${neededBytes} bytes); read in process ${inProcB.chunksRead.length} (${inProcB.chunkBytes} bytes); CLI rchar beyond --version ${cliExtra}; equal: ${inProcEqual && cliEqual}`,
    );
    const firstNeeded = rangeOfTensor.value.chunks[needed[0]];
    const lastNeeded = rangeOfTensor.value.chunks[needed.at(-1)!];
    extractSection = [
      `## extract --tensor: one ${sizeLabel(tensor.length)} tensor`,
      "",
      `\`node bin/mmh.js extract FILE.mmh --tensor ${tensor.name} -o OUT -f -q\`: ${tensor.dtype} [${tensor.shape.join(", ")}], ${tensor.length} bytes at content offset ${tensor.offset} (${fmt((tensor.length / inputBytes) * 100, 1)}% of the content). Its bytes are held by chunks ${needed[0]} to ${needed.at(-1)} (${needed.length} records, ${neededBytes} bytes in the .mmh from offset ${firstNeeded.recordOffset} to ${lastNeeded.recordOffset + lastNeeded.recordLength}); the first starts at the tensor's first byte and the last ends at its last (chunks are cut at tensor boundaries): ${firstNeeded.rawOffset === tensor.offset && lastNeeded.rawOffset + lastNeeded.rawLength === tensor.offset + tensor.length ? "yes" : "no"}.`,
      "",
      table(
        ["measure", "value"],
        [
          [
            "CLI wall time (median)",
            `${seconds(median(cliRuns.map((m) => m.ms)))} s (${runs} run${runs === 1 ? "" : "s"}: ${cliRuns.map((m) => seconds(m.ms)).join(", ")})`,
          ],
          [
            "CLI speed",
            `${fmt(mbps(tensor.length, median(cliRuns.map((m) => m.ms))), 0)} MB/s of tensor bytes`,
          ],
          ["CLI peak RSS", `${fmt(mib(Math.max(...cliRuns.map((m) => m.rssKiB))), 0)} MiB (max over runs)`],
          [
            "CLI bytes read (rchar of the process, minus that of `mmh --version`)",
            `${fmt(cliExtra, 0)} (median rchar ${fmt(median(rchar), 0)} − ${fmt(median(baseline), 0)}); expected ${expectedCli} (the tensor's chunk records plus header, index and trailer): ${cliClose ? "within 1%" : "NOT within 1%"}`,
          ],
          [
            "In process, counted (same calls as `readTensor()`)",
            `${inProcB.chunksRead.length} chunk records, ${inProcB.chunkBytes} bytes, plus ${inProcB.otherBytes} bytes of header, index and trailer in ${inProcB.otherReads} reads; ${fmt(inProcMs / 1000, 2)} s`,
          ],
          ["Only the tensor's chunks, each once, in order", inProcExact ? "yes" : "NO"],
          [
            "Output equal to the input's tensor bytes (sha256)",
            inProcEqual && cliEqual ? "yes (CLI and in process)" : "NO",
          ],
        ],
      ),
      "",
      `rchar counts every byte the process read through read system calls (page cache hits included), whole process; the CLI is run with \`node --import bench/lib/io-probe.ts\`, which records /proc/self/io at exit. \`mmh --version\` under the same preload gives what start-up alone reads (Node and the TypeScript sources).`,
      "",
      `Peak RSS of extract holds the whole tensor: \`readTensor()\` returns it as one buffer before the CLI writes it out, so this command's memory grows with the tensor's size (not the file's).`,
      "",
    ];
  } finally {
    for (const f of [zst, restored, extracted, probeFile, packed]) rmSync(f, { force: true });
    const freeAfter = freeBytes(workDir);
    if (deleteInput || freeAfter < needed - inputBytes) {
      rmSync(input, { force: true });
      rmSync(sidecar, { force: true });
      diskNote = `The input was deleted at the end (${deleteInput ? "--delete-input" : `free disk ${fmt(freeAfter / GiB, 1)} GiB, too short for another run`}).`;
    } else {
      diskNote = `The input was kept for the next run (${fmt(freeAfter / GiB, 1)} GiB free afterwards); the .mmh, .zst, restored and extracted files were deleted.`;
    }
    console.log(diskNote);
  }
  const timingMs = performance.now() - timingStarted;

  // ----- report
  const med = (key: string) => median(results[key].map((m) => m.ms));
  const peak = (key: string) => mib(Math.max(...results[key].map((m) => m.rssKiB)));
  const rows: string[][] = [];
  const summary: string[][] = [];
  const allOps = { ...compressOps, ...decompressOps, ...discardOps };
  for (const [key, op] of Object.entries(allOps)) {
    const ms = results[key].map((m) => m.ms);
    const sizes = op.output === null ? ["(discarded)"] : [...new Set(outputBytes[key])];
    rows.push([
      op.label,
      seconds(median(ms)),
      fmt(mbps(inputBytes, median(ms)), 0),
      fmt(median(results[key].map((m) => m.cpuSeconds)), 1),
      fmt(peak(key), 0),
      sizes.join(" / "),
      ms.map(seconds).join(", "),
    ]);
  }
  for (const key of ["mmhC1", "mmhC2", "mmhD1", "mmhD2"]) {
    const p = peak(key);
    summary.push([
      `Peak RSS, ${allOps[key].label}`,
      `<= ${RSS_TARGET_MIB} MiB`,
      `${fmt(p, 0)} MiB`,
      yesNo(p <= RSS_TARGET_MIB),
    ]);
  }
  const cores = cpus().length;
  const cpuMed = (key: string) => median(results[key].map((m) => m.cpuSeconds));
  const busy = (key: string) => cpuMed(key) / (med(key) / 1000);
  const ceiling = (key: string) => med(key) / 1000 / (cpuMed(key) / cores);
  const speedC = med("mmhC1") / med("mmhC2");
  const speedD = med("mmhD1") / med("mmhD2");
  const speedCc = med("mmhC1c") / med("mmhC2c");
  const speedDc = med("mmhD1c") / med("mmhD2c");
  summary.push(
    [
      "Compress speed-up, -T 2 against -T 1",
      `>= ${SPEEDUP_TARGET}x`,
      `${fmt(speedC, 2)}x`,
      yesNo(speedC >= SPEEDUP_TARGET),
    ],
    [
      "Decompress speed-up, -T 2 against -T 1",
      `>= ${SPEEDUP_TARGET}x`,
      `${fmt(speedD, 2)}x`,
      yesNo(speedD >= SPEEDUP_TARGET),
    ],
    [
      "Compress speed-up, output discarded (-c > /dev/null)",
      `>= ${SPEEDUP_TARGET}x`,
      `${fmt(speedCc, 2)}x`,
      yesNo(speedCc >= SPEEDUP_TARGET),
    ],
    [
      "Decompress speed-up, output discarded (-c > /dev/null)",
      `>= ${SPEEDUP_TARGET}x`,
      `${fmt(speedDc, 2)}x`,
      yesNo(speedDc >= SPEEDUP_TARGET),
    ],
    ["readRange reads only the chunks it needs", "only those chunk records", rangeMeasured, yesNo(rangeMet)],
    [
      "extract --tensor reads only the tensor's chunks",
      "only those chunk records",
      extractMeasured,
      yesNo(extractMet),
    ],
  );
  const mmhBytes = outputBytes.mmhC1[0];
  const zstBytes = outputBytes.zstd1?.[0];
  const loadAtEnd = loadavg();
  const elapsed = performance.now() - started;
  const summaryTable = table(["target", "goal", "measured", "verdict"], summary);
  console.log(`\n${summaryTable}`);
  console.log(
    `\nload average at end: ${loadAtEnd.map((l) => fmt(l, 2)).join(", ")}; took ${fmt(elapsed / 1000, 0)} s`,
  );

  const command = `npx node bench/scale.ts${quick ? " --quick" : ""}${argValue("--size") ? ` --size ${argValue("--size")}` : ""}${argValue("--runs") ? ` --runs ${runs}` : ""}`;
  const lines = [
    "# Files larger than memory",
    "",
    ...machineLines(command),
    `- Memory: ${fmt(totalmem() / GiB, 1)} GiB; free disk at start ${fmt(free / GiB, 1)} GiB`,
    `- zstd CLI: ${zstdCliVersion()}`,
    `- Load average (1, 5, 15 min) at start: ${loadAtStart.map((l) => fmt(l, 2)).join(", ")}; when timing began: ${loadAtTiming.map((l) => fmt(l, 2)).join(", ")}; at end: ${loadAtEnd.map((l) => fmt(l, 2)).join(", ")}. ${quietNote}.`,
    `- Took ${fmt(elapsed / 1000, 0)} s in all, ${fmt(timingMs / 1000, 0)} s of it timed work. ${contentionNote(waitAtTiming, timingMs)} On ${cpus().length} cores the share also counts this benchmark's own threads: mmh -T 2 (main thread and two workers) and zstd -T2 keep more threads runnable than there are cores.`,
    "",
    "## Summary",
    "",
    summaryTable,
    "",
    "## Input",
    "",
    `\`${relative(root, input)}\`: ${inputBytes} bytes, a valid safetensors file of ${TENSORS} BF16 tensors of ${sizeLabel(tensorBytes)} (${specs.map((t) => `${t.name} [${t.rows}, ${t.cols}]`).join(", ")}). The data was written ${sizeLabel(PIECE)} at a time with \`fillWeights()\` from src/tools/gen.ts (N(0, ${STD}) with a per-row log-normal scale, mulberry32 seed ${SEED}, one stream across the file), so it was never held in memory and is the same on every machine; sha256 ${inputSha}. It was ${how}.`,
    "",
    `This machine has ${fmt(totalmem() / GiB, 0)} GiB of memory, so the ${sizeLabel(size)} file is not larger than its memory: it sits in the page cache while the commands run. What the figures below show is the part that matters for larger files: the resident memory of each process (which must stay bounded whatever the file's size) and the cost of each operation; the input's pages belong to the kernel's cache, not to the process.`,
    "",
    "## Compress and decompress",
    "",
    `Each command ran ${runs} time${runs === 1 ? "" : "s"} under \`${TIME_BIN} -v\`; within a round the commands take turns, the first one rotating from round to round, no warm-up run (each run handles ${sizeLabel(size)}). Wall time is measured around the command, including process start; MB/s is the original size (10^6 bytes) over the median wall time; CPU is user + system seconds (median; more than the wall time means more than one thread busy); peak RSS is \`Maximum resident set size\`, the largest over the runs. ${CLEAR_OUTPUT_NOTE}`,
    "",
    `- \`node bin/mmh.js FILE -o FILE.mmh -f -q -T N\` and \`node bin/mmh.js -d FILE.mmh -o RESTORED -f -q -T N\`, N = 1 and 2 (default options otherwise: auto codec, balanced goal, 512 KiB chunks)`,
    haveZstd
      ? "- `zstd -3 -T1 -q -f FILE -o FILE.zst`, `zstd -3 -T2 ...` and `zstd -d -q -f FILE.zst -o RESTORED` for context"
      : "- zstd is not on the PATH: no zstd rows.",
    `- the \`-c\` rows write to standard output, which goes to /dev/null: \`node bin/mmh.js FILE -c -q -T N\`, \`node bin/mmh.js -d FILE.mmh -c -q -T N\`${haveZstd ? ", `zstd -3 -T1 -q -c FILE`, `zstd -d -q -c FILE.zst`" : ""}. They time the same work without the disk: writing ${sizeLabel(size)} goes past the kernel's dirty-page limit (vm.dirty_ratio ${dirtyRatio()}% of memory), after which a writer waits for the disk and the kernel's flusher threads take CPU time from the cores.`,
    "",
    table(
      ["command", "wall s (median)", "MB/s", "CPU s", "peak RSS MiB", "output bytes", "each run, s"],
      rows,
    ),
    "",
    `Speed-up with 2 workers: compress ${fmt(speedC, 2)}x, decompress ${fmt(speedD, 2)}x (median wall time with -T 1 over that with -T 2; target ${SPEEDUP_TARGET}x).${haveZstd ? ` zstd's own, for comparison: ${fmt(med("zstd1") / med("zstd2"), 2)}x.` : ""} With the output discarded: compress ${fmt(speedCc, 2)}x, decompress ${fmt(speedDc, 2)}x.`,
    "",
    ...(haveZstd
      ? [
          `One thread against the zstd CLI in the same run (zstd time / mmh time; >= 1 means mmh is at least as fast): compress, mmh -T 1 against zstd -3 -T1, ${fmt(med("zstd1") / med("mmhC1"), 2)}; decompress, mmh -d -T 1 against zstd -d, ${fmt(med("zstdD") / med("mmhD1"), 2)}. With the output discarded: ${fmt(med("zstd1c") / med("mmhC1c"), 2)} and ${fmt(med("zstdDc") / med("mmhD1c"), 2)}. With -T 1 mmh codes on one thread; compressing, it hashes the content (its sha256, for the trailer) on a second thread, as zstd -T1 compresses on a worker while its main thread reads and writes. Decompressing, it checks every chunk's CRC-32, as zstd -d checks its XXH64, and the content's sha256 only when asked (\`--check-sha256\`).`,
          "",
        ]
      : []),
    `What ${cores} core${cores === 1 ? "" : "s"} allow: with -T 1, mmh already keeps ${fmt(busy("mmhC1"), 2)} cores busy compressing and ${fmt(busy("mmhD1"), 2)} decompressing (CPU over wall: the main thread coding, reading and writing, the hashing thread when compressing, libuv's file system threads, the garbage collector), so even if -T 2 cost no CPU more than -T 1, it could not beat the -T 1 CPU time over ${cores} cores: a ceiling of ${fmt(ceiling("mmhC1"), 2)}x for compress and ${fmt(ceiling("mmhD1"), 2)}x for decompress on this machine. -T 2 in fact spent ${fmt(cpuMed("mmhC2"), 1)} CPU s compressing (against ${fmt(cpuMed("mmhC1"), 1)}) and ${fmt(cpuMed("mmhD2"), 1)} decompressing (against ${fmt(cpuMed("mmhD1"), 1)}).`,
    "",
    `Process start alone (\`node bin/mmh.js --version\` under \`${TIME_BIN} -v\`): peak RSS ${fmt(mib(startup.rssKiB), 0)} MiB, which every mmh figure above includes.`,
    "",
    `Sizes: .mmh ${mmhBytes} bytes (${fmt(mmhBytes / inputBytes, 4)} of the input; the same for -T 1 and -T 2: ${new Set([...outputBytes.mmhC1, ...outputBytes.mmhC2]).size === 1 ? "yes" : "NO"})${zstBytes ? `, .zst ${zstBytes} bytes (${fmt(zstBytes / inputBytes, 4)})` : ""}. The restored file's sha256 (checked once, after the last decompress run, streaming) equals the input's: ${restoredOk ? "yes" : "NO"}.`,
    "",
    ...rangeSection,
    ...extractSection,
    diskNote,
    "",
  ];
  writeReport(outFile, lines);
  return 0;
}

process.exitCode = await main();
