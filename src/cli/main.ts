import { fstatSync, statSync, writeSync } from "node:fs";
import { constants as osConstants } from "node:os";
import { basename } from "node:path";
import { formatBytes, groupDigits } from "../common/bytes.ts";
import { nowMs } from "../common/clock.ts";
import { MmhError } from "../common/errors.ts";
import { writeFileAtomic } from "../common/files.ts";
import { chmod } from "../common/fsp.ts";
// Each half of the library loads only for the commands that use it: the decoding half
// (decoding() below) to decompress, verify or inspect, the encoding half to compress, and
// the archive, open() and the tools (library() below) only for a command that uses them
// (docs/ENGINE.md, Start-up). What a command needs alone (a URL test, the npy header, the
// --stats line) is imported where it is used.
import type { verify } from "../decompress.ts";
import { defaultThreadsFor } from "../engine/threads.ts";
import type { CompressSummary, Goal, Inspection, LegacyInspection } from "../index.ts";
import type { GenOptions } from "../tools/gen.ts";
import { type CliArgs, HELP, parseCli, VERSION_LINE } from "./args.ts";
import { fileBytes, type ProgressOptions, startProgress } from "./progress.ts";

interface Io {
  stdin: NodeJS.ReadableStream & AsyncIterable<Uint8Array> & { isTTY?: boolean };
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** True for the process's own standard streams (see processIo): file descriptors 0, 1 and 2. */
  fds?: boolean;
}

/**
 * The process's standard streams, each made only when first used: the first use of
 * process.stdout or process.stderr builds a stream (and loads node:net when it is a pipe),
 * which a command writing its data to a file, or to standard output through
 * writeOut, never needs (docs/ENGINE.md, Start-up). `onStdout` is called with
 * process.stdout when it is first used.
 */
function processIo(onStdout: (stdout: Io["stdout"]) => void): Io {
  let stdout: Io["stdout"] | undefined;
  return {
    fds: true,
    get stdin() {
      return process.stdin as unknown as Io["stdin"];
    },
    get stdout() {
      if (stdout === undefined) {
        stdout = process.stdout;
        onStdout(stdout);
      }
      return stdout;
    },
    get stderr() {
      return process.stderr;
    },
  };
}

/**
 * Whether standard output (1) or standard error (2) is a terminal. For the process's own
 * streams, one that is not a character device is not a terminal, nor is the null device
 * (`mmh -c FILE > /dev/null`), which fstat and stat tell without building the stream.
 */
function isTerminal(io: Io, fd: 1 | 2): boolean {
  if (io.fds) {
    try {
      const stats = fstatSync(fd);
      if (!stats.isCharacterDevice() || isNullDevice(stats.rdev)) return false;
    } catch {
      return false;
    }
  }
  return (fd === 1 ? io.stdout : io.stderr).isTTY === true;
}

/** Whether `rdev` is the device of /dev/null; false where there is none or it cannot be read. */
function isNullDevice(rdev: number): boolean {
  try {
    const stats = statSync("/dev/null", { throwIfNoEntry: false });
    return stats?.isCharacterDevice() === true && stats.rdev === rdev;
  } catch {
    return false;
  }
}

/**
 * Writes all of `bytes` to file descriptor `fd` (1 or 2) directly; what cannot be written
 * so (a non-blocking descriptor that is full) goes through `stream()`, and the promise
 * resolves when that is written. Errors (EPIPE included) are thrown as writeSync throws them.
 */
function writeFd(
  fd: 1 | 2,
  bytes: Uint8Array,
  stream: () => NodeJS.WritableStream,
): Promise<void> | undefined {
  let at = 0;
  try {
    while (at < bytes.length) at += writeSync(fd, bytes, at);
    return undefined;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EAGAIN") throw error;
  }
  return new Promise<void>((resolve, reject) =>
    stream().write(bytes.subarray(at), (error) => (error ? reject(error) : resolve())),
  );
}

/** Write a line of text to standard error: to file descriptor 2 directly for the process's own streams. */
function writeErr(io: Io, text: string): void {
  if (!io.fds) {
    io.stderr.write(text);
    return;
  }
  try {
    void writeFd(2, Buffer.from(text), () => process.stderr)?.catch(() => {});
  } catch {
    // Standard error is gone (closed, a broken pipe): there is nowhere to say anything.
  }
}

const SUFFIX = ".mmh";

/** The whole library, loaded at first use: see the imports above. */
function library() {
  return import("../index.ts");
}

/** The decoding half of the library, loaded at first use: see the imports above. */
function decoding() {
  return import("../decompress.ts");
}

/** node:stream/promises's pipeline, the module loaded at the first call. */
function pipeline(
  source: Iterable<unknown> | AsyncIterable<unknown>,
  destination: NodeJS.WritableStream,
  options: { signal: AbortSignal; end: boolean },
): Promise<void> {
  return process.getBuiltinModule("node:stream/promises").pipeline(source, destination, options);
}

function exitCodeFor(error: MmhError): number {
  if (error.code === "E_USAGE" || error.code === "E_BAD_OPTION") return 2;
  if (error.code === "E_ABORTED") return 130;
  return 1;
}

function toError(error: unknown): MmhError {
  if (error instanceof MmhError) return error;
  return new MmhError("E_INTERNAL", error instanceof Error ? error.message : String(error), { cause: error });
}

/**
 * Whether pieces given to writeOut may be memory the coder reuses (as they may for
 * writeFileAtomic, which writes each piece before it asks for the next): process.stdout hands
 * each write to the kernel before it calls back, while another stream (a caller's own Io)
 * may keep the pieces it is given.
 */
function reusesOut(io: Io): boolean {
  return io.fds === true || io.stdout === (process.stdout as unknown);
}

/**
 * Write each piece to standard output, and wait until it is written before taking the
 * next: for the process's own streams with writeSync on file descriptor 1 (as the stream
 * does for a file; no stream is built), through the stream only once a non-blocking pipe is
 * full, and from then on through it, to keep the order.
 */
async function writeOut(pieces: AsyncIterable<Uint8Array>, io: Io, signal: AbortSignal): Promise<void> {
  let direct = io.fds === true;
  for await (const piece of pieces) {
    signal.throwIfAborted();
    if (direct) {
      const rest = writeFd(1, piece, () => io.stdout);
      if (rest === undefined) continue;
      direct = false;
      await rest;
      continue;
    }
    await new Promise<void>((resolve, reject) =>
      io.stdout.write(piece, (error) => (error ? reject(error) : resolve())),
    );
  }
}

function rate(bytes: number, ms: number): string {
  if (ms <= 0) return "";
  const mbps = bytes / 1e6 / (ms / 1e3);
  return mbps >= 1000 ? `${(mbps / 1000).toFixed(2)} GB/s` : `${mbps.toFixed(1)} MB/s`;
}

function codecList(codecs: Record<string, number>): string {
  return Object.entries(codecs)
    .map(([id, n]) => `${id.trim()} ${n}`)
    .join(", ");
}

/**
 * The size of standard input when it is a regular file (`mmh -c < model.safetensors`):
 * then its length is known beforehand, and header-first formats are recognised as for a
 * file named on the command line. A pipe, a terminal or a socket has none.
 */
function regularFileSize(stdin: unknown): number | undefined {
  const fd = (stdin as { fd?: unknown }).fd;
  if (typeof fd !== "number") return undefined;
  try {
    const stats = fstatSync(fd);
    return stats.isFile() ? stats.size : undefined;
  } catch {
    return undefined;
  }
}

function isStdio(file: string | undefined): boolean {
  return file === undefined || file === "-";
}

/** The progress bar's settings: on a terminal, unless -q or --no-progress, or data goes to that terminal. */
function progressOptions(args: CliArgs, io: Io, signal: AbortSignal, toStdout = false): ProgressOptions {
  // Standard error first: when it is not a terminal, standard output's stream is never built.
  const enabled = args.progress && !args.quiet && isTerminal(io, 2) && !(toStdout && isTerminal(io, 1));
  return {
    enabled,
    get stream() {
      return io.stderr;
    },
    signal,
  };
}

/**
 * Run the mmh command line; resolves with the exit code and never throws. `parsed`:
 * parseCli(argv), when the caller has it (start.ts), so that it is not parsed twice.
 */
export async function run(argv: readonly string[], given?: Io, parsed?: CliArgs): Promise<number> {
  const controller = new AbortController();
  // An interrupt stops the work (no partial output is left) and exits with 128 + the
  // signal's number, as a process killed by it would: 130 for SIGINT, 143 for SIGTERM.
  let interrupted: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    interrupted ??= signal;
    controller.abort(new MmhError("E_ABORTED", `interrupted by ${signal}`));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  // A reader that goes away (`mmh -dc x.mmh | head`) is not an error of ours: stop
  // quietly with the status a process killed by SIGPIPE has, as other tools do.
  let brokenPipe = false;
  const onStdoutError = (error: NodeJS.ErrnoException) => {
    if (error.code !== "EPIPE") return;
    brokenPipe = true;
    controller.abort(new MmhError("E_IO", "broken pipe"));
  };
  const io = given ?? processIo((stdout) => stdout.on("error", onStdoutError));
  if (given) given.stdout.on("error", onStdoutError);
  try {
    const args = parsed ?? parseCli(argv);
    switch (args.command) {
      case "help":
        io.stdout.write(HELP);
        return 0;
      case "version":
        io.stdout.write(VERSION_LINE);
        return 0;
      case "info":
        return await runInfo(args, io);
      case "verify":
        return await runVerify(args, io, controller.signal);
      case "gen":
        return await runGen(args, io, controller.signal);
      case "analyze":
        return await runAnalyze(args, io);
      case "bench": {
        // Loaded only here, as serve is: its modules are of no use to the other commands.
        const { runBench } = await import("./bench.ts");
        return await runBench(argv, args, io, controller.signal);
      }
      case "extract":
        return await runExtract(args, io, controller.signal);
      case "serve": {
        (await import("./malloc.ts")).restartWithMallocSettings();
        // Loaded only here: the service's dependencies would slow every other command's start.
        const { runServe } = await import("./serve.ts");
        return await runServe(args, io.stdout, controller.signal);
      }
      case "pack":
        return await runPack(args, io, controller.signal);
      case "unpack":
        return await runUnpack(args, io, controller.signal);
      default:
        return await runCodec(args, io, controller.signal);
    }
  } catch (error) {
    if (brokenPipe || isBrokenPipe(error)) return EXIT_BROKEN_PIPE;
    const mmh = toError(controller.signal.aborted ? (controller.signal.reason ?? error) : error);
    writeErr(io, `mmh: ${mmh.code}: ${mmh.message}\n`);
    if (mmh.code === "E_USAGE") writeErr(io, `Try 'mmh --help' for more information.\n`);
    if (interrupted) return 128 + (osConstants.signals[interrupted] ?? 2);
    return exitCodeFor(mmh);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

const EXIT_BROKEN_PIPE = 141;

function isBrokenPipe(error: unknown): boolean {
  for (let e = error; e instanceof Error; e = e.cause) {
    if ((e as NodeJS.ErrnoException).code === "EPIPE") return true;
  }
  return false;
}

/** The encoding options the command line gives, for compress and pack alike. */
function compressOptions(args: CliArgs, signal: AbortSignal) {
  return {
    codec: args.codec,
    goal: args.goal as Goal | undefined,
    threads: args.threads,
    level: args.level,
    chunkSize: args.chunkSize,
    overwrite: args.force,
    signal,
    base: args.base,
    dedup: !args.noDedup,
    ...(args.long === undefined ? {} : { long: args.long }),
  };
}

/** Stored size as a percentage of the content, as zstd prints it. */
function percentOf(summary: { rawBytes: number; storedBytes: number }): string {
  return summary.rawBytes > 0 ? ((summary.storedBytes / summary.rawBytes) * 100).toFixed(2) : "-";
}

function defaultOutput(args: CliArgs, file: string): string {
  if (args.command === "compress") return file + SUFFIX;
  if (!file.endsWith(SUFFIX) || file.length === SUFFIX.length) {
    throw new MmhError("E_USAGE", `${file}: unknown suffix (expected ${SUFFIX}); name the output with -o`);
  }
  return file.slice(0, -SUFFIX.length);
}

/** An extension safe to put in a file name: a few short words of letters, digits, _ and -. */
const SAFE_EXTENSION = /^[A-Za-z0-9_-]{1,16}(\.[A-Za-z0-9_-]{1,16}){0,2}$/;

/**
 * `mmh -d x.mmh` of a legacy MMH-RS v1.2.0 file: x.<the stored extension>, when that
 * extension is safe in a file name (otherwise the usual name, without .mmh).
 */
async function legacyOutput(args: CliArgs, file: string): Promise<string | undefined> {
  if (args.command === "compress" || isStdio(file)) return undefined;
  const { inspectLegacy } = await decoding();
  const legacy = await inspectLegacy(file).catch(() => undefined); // decoding reports any error
  const ext = legacy?.extension;
  if (ext === undefined || ext.length > 40 || !SAFE_EXTENSION.test(ext)) return undefined;
  if (!file.endsWith(SUFFIX) || file.length === SUFFIX.length) return `${file}.${ext}`;
  const base = file.slice(0, -SUFFIX.length);
  return base.endsWith(`.${ext}`) ? base : `${base}.${ext}`;
}

async function runCodec(args: CliArgs, io: Io, signal: AbortSignal): Promise<number> {
  const files = args.files.length > 0 ? args.files : ["-"];
  if (files.filter((f) => f === "-").length > 1)
    throw new MmhError("E_USAGE", "standard input can be read only once");
  for (const file of files) {
    const toStdout = args.stdout || args.output === "-" || (isStdio(file) && args.output === undefined);
    if (isStdio(file) && io.stdin.isTTY && !args.force) {
      throw new MmhError("E_USAGE", "standard input is a terminal; give a file or pipe data in");
    }
    if (toStdout && args.command === "compress" && !args.force && isTerminal(io, 1)) {
      throw new MmhError("E_USAGE", "standard output is a terminal; use -o FILE, redirect, or -f");
    }
    const output = toStdout
      ? undefined
      : (args.output ?? (await legacyOutput(args, file)) ?? defaultOutput(args, file));
    const started = nowMs();
    const stats = async (summary: JobSummary | undefined, error?: unknown) => {
      if (args.stats !== "json") return;
      const { jobLine, ratioOf } = await import("../server/record.ts");
      const compressing = args.command === "compress";
      const code =
        error === undefined ? undefined : toError(signal.aborted ? (signal.reason ?? error) : error).code;
      io.stderr.write(
        jobLine({
          route: `cli ${args.command}`,
          status: code === undefined ? 0 : code === "E_ABORTED" ? 130 : exitCodeFor(toError(error)),
          ...(compressing ? { codec: args.codec ?? "auto" } : {}),
          bytesIn: summary ? (compressing ? summary.rawBytes : summary.storedBytes) : 0,
          bytesOut: summary ? (compressing ? summary.storedBytes : summary.rawBytes) : 0,
          ...(summary
            ? { ratio: ratioOf(summary.rawBytes, summary.storedBytes), sha256: summary.sha256 }
            : {}),
          durationMs: Math.round((nowMs() - started) * 1000) / 1000,
          ...(code !== undefined ? { errorCode: code } : {}),
        }),
      );
    };
    try {
      const summary =
        args.command === "compress"
          ? await compressOne(args, io, file, output, signal)
          : await decompressOne(args, io, file, output, signal);
      await stats(summary);
    } catch (error) {
      await stats(undefined, error);
      throw error;
    }
  }
  return 0;
}

/** What `--stats json` reports of a job. */
interface JobSummary {
  rawBytes: number;
  storedBytes: number;
  sha256: string;
}

async function compressOne(
  args: CliArgs,
  io: Io,
  file: string,
  output: string | undefined,
  signal: AbortSignal,
): Promise<JobSummary> {
  const { compressFile, compressFileStream, compressStream } = await import("../compress.ts");
  const options = compressOptions(args, signal);
  const label = isStdio(file) ? "stdin" : file;
  let summary: CompressSummary;
  const streamed = isStdio(file) || output === undefined;
  // A stream has no size of its own; for a file read as one, the bar asks the file's.
  const progress = startProgress(
    { label, direction: "encode", total: isStdio(file) ? undefined : () => fileBytes(file) },
    progressOptions(args, io, signal, output === undefined),
  );
  try {
    if (streamed) {
      let encoded: ReturnType<typeof compressStream>;
      if (isStdio(file)) {
        // writeFileAtomic, like writeOut to process.stdout, is done with a piece when it asks for the next.
        const reuse = output !== undefined || reusesOut(io);
        encoded = compressStream(io.stdin, {
          ...options,
          onProgress: progress.report,
          reuse,
          size: regularFileSize(io.stdin),
        });
        if (output === undefined) await writeOut(encoded, io, signal);
        else await writeFileAtomic(output, encoded, { overwrite: args.force, signal, input: file });
      } else {
        // A file to standard output: read as a file (its format and tensors), so the bytes
        // are the same as with -o.
        const reuse = reusesOut(io);
        encoded = compressFileStream(file, { ...options, onProgress: progress.report, reuse });
        await writeOut(encoded, io, signal);
      }
      summary = encoded.summary!;
    } else {
      summary = await compressFile(file, output, { ...options, onProgress: progress.report });
    }
  } finally {
    progress.stop();
  }
  if (!args.quiet) {
    const pct = percentOf(summary);
    writeErr(
      io,
      `${label} : ${pct}% (${formatBytes(summary.rawBytes)} => ${formatBytes(summary.storedBytes)}, ${output ?? "stdout"}) ` +
        `${summary.chunks} chunks [${codecList(summary.codecs)}] ${rate(summary.rawBytes, summary.ms)}\n`,
    );
  }
  return summary;
}

/** Whether `mmh -d FILE -o OUT` decodes on one thread: -T 1, or no -T and a file below decompressFile's default. */
async function decodesOnOneThread(args: CliArgs, file: string): Promise<boolean> {
  if (args.threads !== undefined) return args.threads === 1;
  try {
    return defaultThreadsFor(await fileBytes(file), "decompressToFile") < 2;
  } catch {
    // Unreadable: decompressFile reports it with its code.
    return false;
  }
}

async function decompressOne(
  args: CliArgs,
  io: Io,
  file: string,
  output: string | undefined,
  signal: AbortSignal,
): Promise<JobSummary> {
  const { decompressFile, decompressFileStream, decompressFileToFd, decompressStream } = await decoding();
  const label = isStdio(file) ? "stdin" : file;
  const started = nowMs();
  const progress = startProgress(
    { label, direction: "decode", total: isStdio(file) ? undefined : () => fileBytes(file) },
    progressOptions(args, io, signal, output === undefined),
  );
  const options = {
    maxOutputBytes: args.maxOutput,
    checkSha256: args.checkSha256,
    overwrite: args.force,
    signal,
    threads: args.threads,
    onProgress: progress.report,
    base: args.base,
  };
  let summary: (JobSummary & { chunks: number }) | undefined;
  try {
    // A file to standard output, on more than one thread: each thread writes its own
    // records to file descriptor 1 in turn (decompressFileToFd), when the file allows.
    if (!isStdio(file) && output === undefined && io.fds === true)
      summary = await decompressFileToFd(file, 1, { ...options, exclusive: true });
    // With -T 1 a file goes this way too: decoded in the kernels' memory and written from
    // there (decompressFileStream's `exclusive`), where decompressFile copies each chunk out.
    // So does a file without -T too small for threads to pay (decompressFile's default).
    if (summary) {
      // Written.
    } else if (isStdio(file) || output === undefined || (await decodesOnOneThread(args, file))) {
      const reuse = output !== undefined || reusesOut(io);
      // One file at a time, and nothing else codes meanwhile: pieces may lie in the
      // memory HIER's kernels reuse (DecompressStreamOptions.exclusive).
      const decoded = isStdio(file)
        ? decompressStream(io.stdin, { ...options, reuse, exclusive: true })
        : decompressFileStream(file, { ...options, reuse, exclusive: true });
      if (output === undefined) await writeOut(decoded, io, signal);
      else await writeFileAtomic(output, decoded, { overwrite: args.force, signal, input: file });
      summary = decoded.summary!;
    } else {
      // Nothing else codes on this thread meanwhile (see DecompressStreamOptions.exclusive).
      summary = await decompressFile(file, output, { ...options, exclusive: true });
    }
  } finally {
    progress.stop();
  }
  const { rawBytes, chunks } = summary;
  if (!args.quiet) {
    writeErr(
      io,
      `${label} : ${formatBytes(rawBytes)} in ${chunks} chunks => ${output ?? "stdout"} ${rate(rawBytes, nowMs() - started)}\n`,
    );
  }
  return summary;
}

/** For a folder archive, its entries with each file's tensor count (checked as unpack checks them). */
function archiveEntries(info: Inspection) {
  const entries = info.footer.entries;
  if (entries.length === 0 && info.footer.format !== "folder") return {};
  const counts = new Map<string, number>();
  for (const t of info.footer.tensors) if (t.file) counts.set(t.file, (counts.get(t.file) ?? 0) + 1);
  return {
    entries: entries.map((e) =>
      e.type === "file"
        ? {
            path: e.path,
            type: e.type,
            size: e.size,
            mode: e.mode,
            format: e.format,
            tensors: counts.get(e.path) ?? 0,
            sha256: e.sha256,
          }
        : e,
    ),
  };
}

function infoRecord(file: string, info: Inspection) {
  const meta = info.header.metadata as {
    tool?: string;
    source?: { name?: string | null; format?: string };
    encoder?: unknown;
    base?: unknown;
  };
  const raw = info.trailer.rawLength;
  return {
    file,
    formatVersion: info.header.version,
    tool: meta.tool ?? null,
    source: meta.source ?? null,
    encoder: meta.encoder ?? null,
    rawBytes: raw,
    storedBytes: info.fileBytes,
    ratio: info.fileBytes > 0 ? raw / info.fileBytes : 0,
    chunks: info.chunks.length,
    format: info.footer.format,
    tensors: info.footer.tensors,
    ...(info.footer.tensorsOmitted !== undefined ? { tensorsOmitted: info.footer.tensorsOmitted } : {}),
    ...archiveEntries(info),
    codecs: Object.fromEntries(Object.entries(info.codecs).map(([id, n]) => [id.trim(), n])),
    sha256: info.trailer.sha256,
    // The base files DLTA records need (FORMAT.md §6.4), from the header.
    ...(Array.isArray(meta.base) ? { base: meta.base as { name?: unknown; sha256?: unknown }[] } : {}),
  };
}

function legacyName(info: LegacyInspection): string {
  if (info.kind === "v1.2.0") return "MMH-RS v1.2.0 file";
  if (info.kind === "pattern251") return "MMH-RS Pattern251 blob";
  return `MMH-RS v1.2.5 ${info.codec.trim()} blob`;
}

function legacyRecord(file: string, info: LegacyInspection) {
  return { file, legacy: `MMH-RS ${info.kind}`, ...info };
}

function legacyRows(r: ReturnType<typeof legacyRecord>): [string, string][] {
  const declared = r.rawBytes;
  return [
    ["file", r.file],
    [
      "format",
      `legacy ${legacyName(r)}${r.version ? "" : " (no version recorded)"}, read only: mmh -d decodes it`,
    ],
    ["codec", r.codec.trim()],
    [
      "content",
      declared === null
        ? "not recorded"
        : `${groupDigits(declared)} bytes (${formatBytes(declared)}), as declared`,
    ],
    ["stored", `${groupDigits(r.fileBytes)} bytes (${formatBytes(r.fileBytes)})`],
    ...(r.extension !== undefined ? [["ext", JSON.stringify(r.extension)] as [string, string]] : []),
    ...(r.contentId
      ? [["sha256", `${r.contentId}... (first 8 bytes, checked on decoding)`] as [string, string]]
      : []),
  ];
}

async function runInfo(args: CliArgs, io: Io): Promise<number> {
  const records = [];
  for (const file of args.files) {
    // A URL is never probed as a local path; inspect() refuses a legacy file it serves.
    const legacy = (await import("../remote/http.ts")).isHttpTarget(file)
      ? undefined
      : await (await decoding()).inspectLegacy(file);
    records.push(
      legacy ? legacyRecord(file, legacy) : infoRecord(file, await (await library()).inspect(file)),
    );
  }
  if (args.json) {
    io.stdout.write(`${JSON.stringify(args.files.length === 1 ? records[0] : records, null, 2)}\n`);
    return 0;
  }
  for (const r of records) {
    if ("legacy" in r) {
      io.stdout.write(
        `${legacyRows(r)
          .map(([k, v]) => `${k.padEnd(8)} ${v}`)
          .join("\n")}\n`,
      );
      if (records.length > 1) io.stdout.write("\n");
      continue;
    }
    const rows: [string, string][] = [
      ["file", r.file],
      ["format", `.mmh v${r.formatVersion}${r.tool ? `, written by ${r.tool}` : ""}`],
      ["source", `${r.source?.name ?? "(stream)"} (${r.source?.format ?? "raw"})`],
      ["content", `${groupDigits(r.rawBytes)} bytes (${formatBytes(r.rawBytes)})`],
      ["stored", `${groupDigits(r.storedBytes)} bytes (${formatBytes(r.storedBytes)})`],
      [
        "ratio",
        `${r.ratio.toFixed(3)}x (${r.rawBytes > 0 ? ((r.storedBytes / r.rawBytes) * 100).toFixed(2) : "-"}% of original)`,
      ],
      ["chunks", String(r.chunks)],
      [
        "tensors",
        r.tensors.length
          ? `${r.tensors.length} (${r.format}; list them with --json)`
          : r.tensorsOmitted
            ? `${r.tensorsOmitted} (${r.format}; too many to keep their table)`
            : `none (${r.format})`,
      ],
      ["codecs", Object.keys(r.codecs).length ? codecList(r.codecs) : "(none)"],
      ["sha256", r.sha256],
      ...(r.base ?? []).map((b): [string, string] => [
        "base",
        `${String(b?.name)} (sha256 ${String(b?.sha256)}): needed to decode`,
      ]),
    ];
    io.stdout.write(`${rows.map(([k, v]) => `${k.padEnd(8)} ${v}`).join("\n")}\n`);
    if (r.entries) io.stdout.write(entryTable(r.entries));
    if (records.length > 1) io.stdout.write("\n");
  }
  return 0;
}

function entryTable(entries: NonNullable<ReturnType<typeof archiveEntries>["entries"]>): string {
  const rows = [["path", "size", "format", "tensors"]];
  for (const e of entries) {
    if (e.type === "file") rows.push([e.path, formatBytes(e.size), e.format, String(e.tensors)]);
    else if (e.type === "dir") rows.push([`${e.path}/`, "-", "folder", "-"]);
    else if (e.type === "symlink") rows.push([`${e.path} -> ${e.target}`, "-", "link", "-"]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  const line = (row: string[]) =>
    `  ${row.map((cell, j) => (j === 1 || j === 3 ? cell.padStart(widths[j]) : cell.padEnd(widths[j]))).join("  ")}`.trimEnd();
  const files = entries.filter((e) => e.type === "file").length;
  return `entries  ${entries.length} (${files} files)\n${rows.map(line).join("\n")}\n`;
}

async function runVerify(args: CliArgs, io: Io, signal: AbortSignal): Promise<number> {
  const results = [];
  for (const file of args.files) {
    const progress = startProgress(
      { label: file, direction: "decode", ratio: false },
      progressOptions(args, io, signal),
    );
    let summary: Awaited<ReturnType<typeof verify>>;
    try {
      summary = await (await decoding()).verify(file, {
        maxOutputBytes: args.maxOutput,
        threads: args.threads,
        base: args.base,
        signal,
        onProgress: progress.report,
      });
    } finally {
      progress.stop();
    }
    results.push({
      file,
      ok: true,
      rawBytes: summary.rawBytes,
      chunks: summary.chunks,
      sha256: summary.sha256,
    });
    if (!args.json && !args.quiet) {
      io.stdout.write(
        `${file}: OK (${summary.chunks} chunks, ${formatBytes(summary.rawBytes)}, sha256 ${summary.sha256})\n`,
      );
    }
  }
  if (args.json)
    io.stdout.write(`${JSON.stringify(args.files.length === 1 ? results[0] : results, null, 2)}\n`);
  return 0;
}

async function runGen(args: CliArgs, io: Io, signal: AbortSignal): Promise<number> {
  const options = {
    kind: (args.kind ?? "safetensors") as GenOptions["kind"],
    size: args.size ?? 0,
    seed: args.seed,
    dtype: args.dtype as GenOptions["dtype"],
    std: args.std,
    period: args.period,
  };
  // Loaded here: the generator (and the quantisers behind it) only `mmh gen` needs.
  const { generate } = await import("../tools/gen.ts");
  const data = generate(options);
  const toStdout = args.stdout || args.output === "-" || args.output === undefined;
  if (toStdout) {
    if (io.stdout.isTTY && !args.force)
      throw new MmhError("E_USAGE", "standard output is a terminal; use -o FILE, redirect, or -f");
    await pipeline([data], io.stdout, { signal, end: false });
  } else {
    await writeFileAtomic(args.output!, [data], { overwrite: args.force, signal });
  }
  if (!args.quiet) {
    io.stderr.write(
      `gen: ${data.subarray(0, 4).toString("latin1") === "GGUF" ? "gguf" : options.kind} ${formatBytes(data.length)} (seed ${options.seed ?? 1}) => ${toStdout ? "stdout" : args.output}\n`,
    );
  }
  return 0;
}

async function runExtract(args: CliArgs, io: Io, signal: AbortSignal): Promise<number> {
  const file = args.files[0];
  const format = args.format ?? "raw";
  if (format !== "raw" && format !== "npy")
    throw new MmhError("E_BAD_OPTION", `--format must be raw or npy, got "${format}"`);
  if (args.range !== undefined) return await runExtractRange(args, io, signal);
  if (args.tensor === undefined) return await runExtractFile(args, io, signal);
  // The tensor streams out a chunk at a time, so memory does not grow with its size.
  const mmh = await (await library()).open(file, { base: args.base });
  try {
    const tensor = mmh.tensor(args.tensor, { file: args.file });
    const max = args.maxOutput ?? Number.MAX_SAFE_INTEGER;
    if (tensor.length > max)
      throw new MmhError("E_LIMIT", `${args.tensor} has ${tensor.length} bytes, over the limit of ${max}`);
    const pieces = mmh.tensorStream(args.tensor, { file: args.file, maxOutputBytes: args.maxOutput });
    const header =
      format === "npy" ? (await import("../tools/npy.ts")).npyHeader(tensor.dtype, tensor.shape) : undefined;
    const parts = (async function* () {
      if (header) yield header;
      yield* pieces;
    })();
    const toStdout = args.stdout || args.output === "-";
    const output = toStdout
      ? undefined
      : (args.output ?? `${tensor.name.replace(/[^\w.-]+/g, "_")}.${format === "npy" ? "npy" : "bin"}`);
    if (output === undefined) {
      if (io.stdout.isTTY && !args.force)
        throw new MmhError("E_USAGE", "standard output is a terminal; use -o FILE, redirect, or -f");
      await pipeline(parts, io.stdout, { signal, end: false });
    } else {
      await writeFileAtomic(output, parts, { overwrite: args.force, signal, input: file });
    }
    if (!args.quiet) {
      io.stderr.write(
        `${tensor.name}: ${tensor.dtype} [${tensor.shape.join(", ")}] ${formatBytes(tensor.length)} => ${output ?? "stdout"}\n`,
      );
    }
  } finally {
    await mmh.close();
  }
  return 0;
}

/** `extract --range OFF:LEN`: content bytes, decoding only the chunks that hold them. */
async function runExtractRange(args: CliArgs, io: Io, signal: AbortSignal): Promise<number> {
  const file = args.files[0];
  const { offset, length } = args.range!;
  const toStdout = args.stdout || args.output === "-";
  if (toStdout && io.stdout.isTTY && !args.force)
    throw new MmhError("E_USAGE", "standard output is a terminal; use -o FILE, redirect, or -f");
  const mmh = await (await library()).open(file, { base: args.base });
  try {
    if (offset + length > mmh.size)
      throw new MmhError(
        "E_NOT_FOUND",
        `range ${offset}+${length} is past the end of the content (${mmh.size} bytes)`,
      );
    const pieces = mmh.rangeStream(offset, length, { maxOutputBytes: args.maxOutput });
    const output = toStdout ? undefined : (args.output ?? `range-${offset}-${length}.bin`);
    if (output === undefined) await pipeline(pieces, io.stdout, { signal, end: false });
    else await writeFileAtomic(output, pieces, { overwrite: args.force, signal, input: file });
    if (!args.quiet)
      io.stderr.write(`${offset}+${length}: ${formatBytes(length)} => ${output ?? "stdout"}\n`);
  } finally {
    await mmh.close();
  }
  return 0;
}

/** `extract --file PATH`: one file of a folder archive, decoding only its chunks. */
async function runExtractFile(args: CliArgs, io: Io, signal: AbortSignal): Promise<number> {
  const file = args.files[0];
  const toStdout = args.stdout || args.output === "-";
  if (toStdout && io.stdout.isTTY && !args.force)
    throw new MmhError("E_USAGE", "standard output is a terminal; use -o FILE, redirect, or -f");
  const mmh = await (await library()).open(file, { base: args.base });
  try {
    const path = args.file!;
    const pieces = mmh.entryStream(path, { maxOutputBytes: args.maxOutput });
    // The first piece checks that the archive holds the file, within the limit, before any output.
    const first = await pieces.next();
    const entry = mmh.entries.find((e) => e.path === path);
    if (entry?.type !== "file") throw new MmhError("E_INTERNAL", `${path}: read without a file entry`);
    const parts = (async function* () {
      if (!first.done) yield first.value;
      yield* pieces;
    })();
    const output = toStdout ? undefined : (args.output ?? basename(entry.path));
    if (output === undefined) {
      await pipeline(parts, io.stdout, { signal, end: false });
    } else {
      await writeFileAtomic(output, parts, { overwrite: args.force, signal, input: file });
      await chmod(output, entry.mode).catch(() => {});
    }
    if (!args.quiet) io.stderr.write(`${entry.path}: ${formatBytes(entry.size)} => ${output ?? "stdout"}\n`);
  } finally {
    await mmh.close();
  }
  return 0;
}

function withoutSuffix(file: string, what: string): string {
  if (!file.endsWith(SUFFIX) || file.length === SUFFIX.length)
    throw new MmhError("E_USAGE", `${file}: unknown suffix (expected ${SUFFIX}); name the ${what} with -o`);
  return file.slice(0, -SUFFIX.length);
}

function counted(s: { files: number; dirs: number; symlinks: number }): string {
  const n = (count: number, word: string) => `${count} ${word}${count === 1 ? "" : "s"}`;
  return [n(s.files, "file"), n(s.dirs, "folder"), ...(s.symlinks ? [n(s.symlinks, "link")] : [])].join(", ");
}

async function runPack(args: CliArgs, io: Io, signal: AbortSignal): Promise<number> {
  const dir = args.files[0];
  const output = args.output ?? `${dir.replace(/\/+$/, "") || "."}${SUFFIX}`;
  const progress = startProgress({ label: dir, direction: "encode" }, progressOptions(args, io, signal));
  const { pack } = await library();
  let summary: Awaited<ReturnType<typeof pack>>;
  try {
    summary = await pack(dir, output, { ...compressOptions(args, signal), onProgress: progress.report });
  } finally {
    progress.stop();
  }
  if (!args.quiet) {
    const pct = percentOf(summary);
    io.stderr.write(
      `${dir} : ${counted(summary)}: ${pct}% ` +
        `(${formatBytes(summary.rawBytes)} => ${formatBytes(summary.storedBytes)}, ${output}) ` +
        `${summary.chunks} chunks [${codecList(summary.codecs)}] ${rate(summary.rawBytes, summary.ms)}\n`,
    );
  }
  return 0;
}

async function runUnpack(args: CliArgs, io: Io, signal: AbortSignal): Promise<number> {
  const file = args.files[0];
  const output = args.output ?? withoutSuffix(file, "folder");
  const progress = startProgress({ label: file, direction: "decode" }, progressOptions(args, io, signal));
  const { unpack } = await library();
  let summary: Awaited<ReturnType<typeof unpack>>;
  try {
    summary = await unpack(file, output, {
      maxOutputBytes: args.maxOutput,
      checkSha256: args.checkSha256,
      base: args.base,
      threads: args.threads,
      overwrite: args.force,
      signal,
      onProgress: progress.report,
    });
  } finally {
    progress.stop();
  }
  if (!args.quiet) {
    io.stderr.write(
      `${file} : ${counted(summary)}, ` +
        `${formatBytes(summary.rawBytes)} => ${output} ${rate(summary.rawBytes, summary.ms)}\n`,
    );
  }
  return 0;
}

async function runAnalyze(args: CliArgs, io: Io): Promise<number> {
  const reports = [];
  for (const file of args.files) {
    reports.push({
      file,
      ...(await (await library()).analyze(file, { goal: args.goal as Goal | undefined, level: args.level })),
    });
  }
  if (args.json) {
    io.stdout.write(`${JSON.stringify(reports.length === 1 ? reports[0] : reports, null, 2)}\n`);
    return 0;
  }
  for (const report of reports) {
    io.stdout.write(
      `${report.file}: ${report.format}, ${formatBytes(report.size)}, ${report.regions.length} regions\n`,
    );
    if (report.recogniseProblem)
      io.stdout.write(`  not parsed as its format (${report.recogniseProblem}); analysed as raw bytes\n`);
    const codecs = report.regions[0]?.candidates.map((c) => c.codec) ?? [];
    const rows = [["region", "dtype", "bytes", "field entropy (bits/byte)", ...codecs, "auto"]];
    for (const r of report.regions) {
      rows.push([
        r.name.length > 48 ? `…${r.name.slice(-47)}` : r.name,
        `${r.dtype ?? "bytes"}${r.dtypeSource === "detected" ? `*${r.head ? `+${r.head}` : ""}` : ""}`,
        formatBytes(r.length),
        // Float fields by their first 4 letters ("expo", "mant"); block fields ("dmin.hi") whole.
        r.fields
          .map(
            (f) =>
              `${f.field.includes(".") ? f.field : f.field.split(" ")[0].slice(0, 4)} ${f.bits.toFixed(2)}`,
          )
          .join(", "),
        ...r.candidates.map((c) => c.ratio.toFixed(3)),
        r.auto,
      ]);
    }
    const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
    for (const [i, row] of rows.entries()) {
      io.stdout.write(
        `  ${row.map((cell, j) => (j >= 4 && j < row.length - 1 ? cell.padStart(widths[j]) : cell.padEnd(widths[j]))).join("  ")}\n`,
      );
      if (i === 0) io.stdout.write(`  ${widths.map((w) => "-".repeat(w)).join("  ")}\n`);
    }
    io.stdout.write(
      "  codec columns: stored/raw on a sample of each region (lower is better); * = dtype detected (+N: elements start N bytes in)\n",
    );
    for (const r of report.regions)
      for (const w of r.warnings) io.stdout.write(`  warning: ${r.name}: ${w}\n`);
    for (const w of report.warnings) io.stdout.write(`  warning: ${w}\n`);
  }
  return 0;
}
