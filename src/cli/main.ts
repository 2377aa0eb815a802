import { basename } from "node:path";
import { pipeline } from "node:stream/promises";
import { formatBytes } from "../common/bytes.ts";
import { readFileStream, writeFileAtomic } from "../common/files.ts";
import {
  type CompressSummary,
  compressFile,
  compressStream,
  decompressFile,
  decompressStream,
  FORMAT_VERSION,
  type Inspection,
  inspect,
  MmhError,
  VERSION,
  verify,
} from "../index.ts";
import { type CliArgs, HELP, parseCli } from "./args.ts";

interface Io {
  stdin: NodeJS.ReadableStream & AsyncIterable<Uint8Array> & { isTTY?: boolean };
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream;
}

const SUFFIX = ".mmh";

function exitCodeFor(error: MmhError): number {
  if (error.code === "E_USAGE" || error.code === "E_BAD_OPTION") return 2;
  if (error.code === "E_ABORTED") return 130;
  return 1;
}

function toError(error: unknown): MmhError {
  if (error instanceof MmhError) return error;
  return new MmhError("E_INTERNAL", error instanceof Error ? error.message : String(error), { cause: error });
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

function isStdio(file: string | undefined): boolean {
  return file === undefined || file === "-";
}

/** Run the mmh command line; resolves with the exit code and never throws. */
export async function run(argv: readonly string[], io: Io = process as unknown as Io): Promise<number> {
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    controller.abort(new MmhError("E_ABORTED", `interrupted by ${signal}`));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    const args = parseCli(argv);
    switch (args.command) {
      case "help":
        io.stdout.write(HELP);
        return 0;
      case "version":
        io.stdout.write(`mmh ${VERSION} (container v${FORMAT_VERSION})\n`);
        return 0;
      case "info":
        return await runInfo(args, io);
      case "verify":
        return await runVerify(args, io);
      default:
        return await runCodec(args, io, controller.signal);
    }
  } catch (error) {
    const mmh = toError(controller.signal.aborted ? (controller.signal.reason ?? error) : error);
    io.stderr.write(`mmh: ${mmh.code}: ${mmh.message}\n`);
    if (mmh.code === "E_USAGE") io.stderr.write(`Try 'mmh --help' for more information.\n`);
    return exitCodeFor(mmh);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

function defaultOutput(args: CliArgs, file: string): string {
  if (args.command === "compress") return file + SUFFIX;
  if (!file.endsWith(SUFFIX) || file.length === SUFFIX.length) {
    throw new MmhError("E_USAGE", `${file}: unknown suffix (expected ${SUFFIX}); name the output with -o`);
  }
  return file.slice(0, -SUFFIX.length);
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
    if (toStdout && args.command === "compress" && io.stdout.isTTY && !args.force) {
      throw new MmhError("E_USAGE", "standard output is a terminal; use -o FILE, redirect, or -f");
    }
    const output = toStdout ? undefined : (args.output ?? defaultOutput(args, file));
    if (args.command === "compress") await compressOne(args, io, file, output, signal);
    else await decompressOne(args, io, file, output, signal);
  }
  return 0;
}

async function compressOne(
  args: CliArgs,
  io: Io,
  file: string,
  output: string | undefined,
  signal: AbortSignal,
) {
  const options = {
    codec: args.codec,
    level: args.level,
    chunkSize: args.chunkSize,
    overwrite: args.force,
    signal,
  };
  const label = isStdio(file) ? "stdin" : file;
  let summary: CompressSummary & { ms: number };
  if (isStdio(file) || output === undefined) {
    const started = performance.now();
    const stats: CompressSummary = { rawBytes: 0, storedBytes: 0, chunks: 0, codecs: {}, sha256: "" };
    const source = isStdio(file) ? io.stdin : readFileStream(file, args.chunkSize ?? 1 << 20, signal);
    const sourceName = isStdio(file) ? undefined : basename(file);
    const encoded = compressStream(source, { ...options, sourceName }, stats);
    if (output === undefined) await pipeline(encoded, io.stdout, { signal, end: false });
    else await writeFileAtomic(output, encoded, { overwrite: args.force, signal, input: file });
    summary = { ...stats, ms: performance.now() - started };
  } else {
    summary = await compressFile(file, output, options);
  }
  if (!args.quiet) {
    const pct = summary.rawBytes > 0 ? ((summary.storedBytes / summary.rawBytes) * 100).toFixed(2) : "-";
    io.stderr.write(
      `${label} : ${pct}% (${formatBytes(summary.rawBytes)} => ${formatBytes(summary.storedBytes)}, ${output ?? "stdout"}) ` +
        `${summary.chunks} chunks [${codecList(summary.codecs)}] ${rate(summary.rawBytes, summary.ms)}\n`,
    );
  }
}

async function decompressOne(
  args: CliArgs,
  io: Io,
  file: string,
  output: string | undefined,
  signal: AbortSignal,
) {
  const options = { maxOutputBytes: args.maxOutput, overwrite: args.force, signal };
  const label = isStdio(file) ? "stdin" : file;
  const started = performance.now();
  let rawBytes: number;
  let chunks: number;
  if (isStdio(file) || output === undefined) {
    const stats = { chunks: 0, rawBytes: 0, storedBytes: 0, codecs: {} };
    const source = isStdio(file) ? io.stdin : readFileStream(file, 1 << 20, signal);
    const decoded = decompressStream(source, options, stats);
    if (output === undefined) await pipeline(decoded, io.stdout, { signal, end: false });
    else await writeFileAtomic(output, decoded, { overwrite: args.force, signal, input: file });
    ({ rawBytes, chunks } = stats);
  } else {
    ({ rawBytes, chunks } = await decompressFile(file, output, options));
  }
  if (!args.quiet) {
    io.stderr.write(
      `${label} : ${formatBytes(rawBytes)} in ${chunks} chunks => ${output ?? "stdout"} ${rate(rawBytes, performance.now() - started)}\n`,
    );
  }
}

function infoRecord(file: string, info: Inspection) {
  const meta = info.header.metadata as {
    tool?: string;
    source?: { name?: string | null; format?: string };
    encoder?: unknown;
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
    codecs: Object.fromEntries(Object.entries(info.codecs).map(([id, n]) => [id.trim(), n])),
    sha256: info.trailer.sha256,
  };
}

async function runInfo(args: CliArgs, io: Io): Promise<number> {
  const records = [];
  for (const file of args.files) records.push(infoRecord(file, await inspect(file)));
  if (args.json) {
    io.stdout.write(`${JSON.stringify(args.files.length === 1 ? records[0] : records, null, 2)}\n`);
    return 0;
  }
  for (const r of records) {
    const rows: [string, string][] = [
      ["file", r.file],
      ["format", `.mmh v${r.formatVersion}${r.tool ? `, written by ${r.tool}` : ""}`],
      ["source", `${r.source?.name ?? "(stream)"} (${r.source?.format ?? "raw"})`],
      ["content", `${r.rawBytes.toLocaleString("en-US")} bytes (${formatBytes(r.rawBytes)})`],
      ["stored", `${r.storedBytes.toLocaleString("en-US")} bytes (${formatBytes(r.storedBytes)})`],
      [
        "ratio",
        `${r.ratio.toFixed(3)}x (${r.rawBytes > 0 ? ((r.storedBytes / r.rawBytes) * 100).toFixed(2) : "-"}% of original)`,
      ],
      ["chunks", String(r.chunks)],
      ["codecs", Object.keys(r.codecs).length ? codecList(r.codecs) : "(none)"],
      ["sha256", r.sha256],
    ];
    io.stdout.write(`${rows.map(([k, v]) => `${k.padEnd(8)} ${v}`).join("\n")}\n`);
    if (records.length > 1) io.stdout.write("\n");
  }
  return 0;
}

async function runVerify(args: CliArgs, io: Io): Promise<number> {
  const results = [];
  for (const file of args.files) {
    const summary = await verify(file, { maxOutputBytes: args.maxOutput });
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
