import { parseSize } from "../common/bytes.ts";
import { MmhError } from "../common/errors.ts";
import { FORMAT_VERSION, VERSION } from "../version.ts";

// Not `import { parseArgs } from "node:util"`: an ESM import of node:util loads the streams
// and worker_threads with it, which --version and --help do not need (docs/ENGINE.md).
const { parseArgs } = process.getBuiltinModule("node:util");

export type Command =
  | "compress"
  | "decompress"
  | "info"
  | "verify"
  | "extract"
  | "pack"
  | "unpack"
  | "analyze"
  | "gen"
  | "bench"
  | "serve"
  | "help"
  | "version";

export interface CliArgs {
  command: Command;
  files: string[];
  output?: string;
  stdout: boolean;
  force: boolean;
  quiet: boolean;
  /** Show a progress bar on a terminal (off with --no-progress). */
  progress: boolean;
  json: boolean;
  codec?: string;
  level?: number;
  chunkSize?: number;
  maxOutput?: number;
  /** decompress: also check the content's sha256 against the trailer. */
  checkSha256: boolean;
  goal?: string;
  tensor?: string;
  /** extract: the entry path inside a folder archive. */
  file?: string;
  /** extract --range OFF:LEN: content bytes. */
  range?: { offset: number; length: number };
  format?: string;
  kind?: string;
  dtype?: string;
  seed?: number;
  size?: number;
  std?: number;
  period?: number;
  /** Worker threads for chunk coding (-T); undefined means the default (1). */
  threads?: number;
  /** compress, decompress: print the job's record as one JSON line on standard error. */
  stats?: "json";
  /** serve: the config file, and what overrides it. */
  config?: string;
  host?: string;
  port?: number;
  store?: string;
  /** serve: service processes accepting on one port (default 1). */
  workers?: number;
  /** compress, pack: the base model to code deltas against; decoding: the base it needs. */
  base?: string;
  /** compress, pack: store repeated chunks in full (--no-dedup). */
  noDedup: boolean;
  /** compress, pack: long-range matches on (--long) or off (--no-long); undefined: the goal's default. */
  long?: boolean;
  /** bench: generated inputs (KIND[:SIZE]), the HTML report's path, Markdown output, timed rounds. */
  gen?: string[];
  html?: string;
  markdown?: boolean;
  runs?: number;
}

const COMMANDS = new Set<string>([
  "compress",
  "decompress",
  "info",
  "verify",
  "extract",
  "pack",
  "unpack",
  "analyze",
  "gen",
  "bench",
  "serve",
  "help",
  "version",
]);
const VALUE_OPTIONS = new Set([
  "-o",
  "--output",
  "--codec",
  "-L",
  "--level",
  "--chunk-size",
  "--max-output",
  "--goal",
  "--tensor",
  "--file",
  "--range",
  "--format",
  "--kind",
  "--dtype",
  "--seed",
  "--size",
  "--std",
  "--period",
  "-T",
  "--threads",
  "--stats",
  "--config",
  "--host",
  "--port",
  "--store",
  "--workers",
  "--base",
  "--gen",
  "--html",
  "--runs",
]);

const optionSpec = {
  output: { type: "string", short: "o" },
  stdout: { type: "boolean", short: "c" },
  force: { type: "boolean", short: "f" },
  keep: { type: "boolean", short: "k" },
  quiet: { type: "boolean", short: "q" },
  "no-progress": { type: "boolean" },
  decompress: { type: "boolean", short: "d" },
  test: { type: "boolean", short: "t" },
  list: { type: "boolean", short: "l" },
  json: { type: "boolean" },
  codec: { type: "string" },
  level: { type: "string", short: "L" },
  "chunk-size": { type: "string" },
  "max-output": { type: "string" },
  "check-sha256": { type: "boolean" },
  goal: { type: "string" },
  tensor: { type: "string" },
  file: { type: "string" },
  range: { type: "string" },
  format: { type: "string" },
  kind: { type: "string" },
  dtype: { type: "string" },
  seed: { type: "string" },
  size: { type: "string" },
  std: { type: "string" },
  period: { type: "string" },
  threads: { type: "string", short: "T" },
  stats: { type: "string" },
  config: { type: "string" },
  host: { type: "string" },
  port: { type: "string" },
  store: { type: "string" },
  workers: { type: "string" },
  base: { type: "string" },
  "no-dedup": { type: "boolean" },
  long: { type: "boolean" },
  "no-long": { type: "boolean" },
  gen: { type: "string", multiple: true },
  html: { type: "string" },
  markdown: { type: "boolean" },
  runs: { type: "string" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
} as const;

function usage(message: string): MmhError {
  return new MmhError("E_USAGE", message);
}

/**
 * zstd spells levels as `-19` and `--fast=5`; rewrite those (and `--level -5`) into the
 * `--level=N` form before node's parser sees them.
 */
function normalise(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      out.push(...argv.slice(i));
      break;
    }
    if (VALUE_OPTIONS.has(arg) && i + 1 < argv.length) {
      const long = arg.startsWith("--")
        ? arg
        : ({ "-o": "--output", "-L": "--level", "-T": "--threads" } as Record<string, string>)[arg];
      out.push(`${long}=${argv[++i]}`);
      continue;
    }
    const level = /^-(\d+)$/.exec(arg);
    if (level) {
      out.push(`--level=${level[1]}`);
      continue;
    }
    const fast = /^--fast(?:=(\d+))?$/.exec(arg);
    if (fast) {
      out.push(`--level=-${fast[1] ?? "1"}`);
      continue;
    }
    out.push(arg);
  }
  return out;
}

function parseInteger(text: string, what: string): number {
  if (!/^-?\d+$/.test(text.trim()))
    throw new MmhError("E_BAD_OPTION", `${what} must be an integer, got "${text}"`);
  return Number(text);
}

function parseByteSize(text: string, what: string): number {
  const size = parseSize(text);
  if (size === undefined)
    throw new MmhError("E_BAD_OPTION", `${what} must be a size like 65536, 512K or 4M, got "${text}"`);
  return size;
}

/** `OFF:LEN`, each a size (65536, 512K, 4M). */
function parseRange(text: string): { offset: number; length: number } {
  const parts = text.split(":");
  if (parts.length !== 2)
    throw new MmhError("E_BAD_OPTION", `--range must be OFF:LEN (as 1M:4096), got "${text}"`);
  return { offset: parseByteSize(parts[0], "range offset"), length: parseByteSize(parts[1], "range length") };
}

/** What `mmh --version` prints. */
export const VERSION_LINE = `mmh ${VERSION} (container v${FORMAT_VERSION})\n`;

export function parseCli(argv: readonly string[]): CliArgs {
  let parsed: ReturnType<
    typeof parseArgs<{ options: typeof optionSpec; allowPositionals: true; strict: true }>
  >;
  try {
    parsed = parseArgs({ args: normalise(argv), options: optionSpec, allowPositionals: true, strict: true });
  } catch (error) {
    throw usage((error as Error).message.split("\n")[0].replace(/\. To specify a positional.*$/, ""));
  }
  const { values, positionals } = parsed;
  let command: Command = "compress";
  const files = [...positionals];
  if (files.length > 0 && COMMANDS.has(files[0])) command = files.shift() as Command;
  const modes = [values.decompress && "decompress", values.test && "verify", values.list && "info"].filter(
    Boolean,
  );
  if (modes.length > 1) throw usage(`choose one of -d, -t and -l`);
  if (modes.length === 1) {
    if (command !== "compress" && command !== modes[0])
      throw usage(`-${String(modes[0])[0]} conflicts with "${command}"`);
    command = modes[0] as Command;
  }
  if (values.help) command = "help";
  if (values.version) command = "version";

  const args: CliArgs = {
    command,
    files,
    stdout: values.stdout ?? false,
    force: values.force ?? false,
    quiet: values.quiet ?? false,
    progress: !(values["no-progress"] ?? false),
    json: values.json ?? false,
    checkSha256: values["check-sha256"] ?? false,
    noDedup: values["no-dedup"] ?? false,
  };
  if (values.output !== undefined) args.output = values.output;
  if (values.codec !== undefined) args.codec = values.codec;
  if (values.level !== undefined) args.level = parseInteger(values.level, "level");
  if (values["chunk-size"] !== undefined) args.chunkSize = parseByteSize(values["chunk-size"], "chunk size");
  if (values["max-output"] !== undefined) args.maxOutput = parseByteSize(values["max-output"], "max output");

  if (values.goal !== undefined) args.goal = values.goal;
  if (values.tensor !== undefined) args.tensor = values.tensor;
  if (values.file !== undefined) args.file = values.file;
  if (values.range !== undefined) args.range = parseRange(values.range);
  if (values.format !== undefined) args.format = values.format;
  if (values.kind !== undefined) args.kind = values.kind;
  if (values.dtype !== undefined) args.dtype = values.dtype.toUpperCase();
  if (values.seed !== undefined) args.seed = parseInteger(values.seed, "seed");
  if (values.size !== undefined) args.size = parseByteSize(values.size, "size");
  if (values.period !== undefined) args.period = parseInteger(values.period, "period");
  if (values.threads !== undefined) {
    args.threads = parseInteger(values.threads, "threads");
    if (args.threads < 1 || args.threads > 256)
      throw new MmhError("E_BAD_OPTION", `threads must be 1 to 256, got ${args.threads}`);
  }
  if (values.stats !== undefined) {
    if (values.stats !== "json")
      throw new MmhError("E_BAD_OPTION", `--stats takes json, got "${values.stats}"`);
    if (command !== "compress" && command !== "decompress")
      throw usage(`--stats applies to compress and decompress`);
    args.stats = "json";
  }
  if (values.base !== undefined) {
    if (values.base === "") throw new MmhError("E_BAD_OPTION", "--base needs a file or folder");
    args.base = values.base;
  }
  if (args.base !== undefined && ["info", "analyze", "gen", "serve"].includes(command))
    throw usage(`--base applies to compress, pack, decompress, unpack, verify and extract`);
  if (args.noDedup && command !== "compress" && command !== "pack")
    throw usage(`--no-dedup applies to compress and pack`);
  if (values.long && values["no-long"]) throw usage(`--long and --no-long cannot be given together`);
  if (values.long || values["no-long"]) {
    if (command !== "compress" && command !== "pack")
      throw usage(`--long and --no-long apply to compress and pack`);
    args.long = values.long === true;
  }
  if (values.config !== undefined) args.config = values.config;
  if (values.host !== undefined) args.host = values.host;
  if (values.store !== undefined) args.store = values.store;
  if (values.port !== undefined) {
    args.port = parseInteger(values.port, "port");
    if (args.port < 0 || args.port > 65535)
      throw new MmhError("E_BAD_OPTION", `port must be 0 to 65535, got ${args.port}`);
  }
  if (values.workers !== undefined) {
    args.workers = parseInteger(values.workers, "workers");
    if (args.workers < 1 || args.workers > 256)
      throw new MmhError("E_BAD_OPTION", `workers must be 1 to 256, got ${args.workers}`);
  }
  const serveOnly = [args.config, args.host, args.port, args.store, args.workers].some(
    (v) => v !== undefined,
  );
  // bench: its own options, checked here so that a bad one stops the run before it starts.
  if (values.gen !== undefined) args.gen = values.gen;
  if (values.html !== undefined) args.html = values.html;
  if (values.markdown) args.markdown = true;
  if (values.runs !== undefined) {
    args.runs = parseInteger(values.runs, "runs");
    if (args.runs < 1 || args.runs > 100)
      throw new MmhError("E_BAD_OPTION", `runs must be 1 to 100, got ${args.runs}`);
  }
  const benchOnly = [args.gen, args.html, args.markdown, args.runs].some((v) => v !== undefined);
  if (benchOnly && command !== "bench")
    throw usage(`--gen, --html, --markdown and --runs apply to bench only`);
  if (command === "bench") {
    if (files.length === 0 && args.gen === undefined)
      throw usage(`bench needs FILES, a FOLDER or --gen KIND[:SIZE]`);
    if (args.output !== undefined || args.stdout)
      throw usage(`bench writes no output file (use --html FILE)`);
    if (args.json && args.markdown) throw usage(`choose one of --json and --markdown`);
  }
  if (serveOnly && command !== "serve")
    throw usage(`--config, --host, --port, --store and --workers apply to serve only`);
  if (command === "serve" && files.length > 0) throw usage(`serve takes no file`);
  if (values.std !== undefined) {
    args.std = Number(values.std);
    if (!Number.isFinite(args.std) || args.std <= 0) {
      throw new MmhError("E_BAD_OPTION", `std must be a positive number, got "${values.std}"`);
    }
  }

  const encoding =
    args.codec !== undefined ||
    args.level !== undefined ||
    args.chunkSize !== undefined ||
    args.goal !== undefined;
  if (encoding && command !== "compress" && command !== "pack" && command !== "analyze") {
    throw usage(`--codec, --level, --goal and --chunk-size apply to compress, pack and analyze only`);
  }
  const genOnly = [args.kind, args.dtype, args.seed, args.size, args.std, args.period].some(
    (v) => v !== undefined,
  );
  if (genOnly && command !== "gen")
    throw usage(`--kind, --dtype, --seed, --size, --std and --period apply to gen only`);
  if (
    (args.tensor !== undefined ||
      args.format !== undefined ||
      args.file !== undefined ||
      args.range !== undefined) &&
    command !== "extract"
  ) {
    throw usage(`--tensor, --file, --range and --format apply to extract only`);
  }
  if (
    command === "extract" &&
    (files.length !== 1 || (args.tensor === undefined && args.file === undefined && args.range === undefined))
  ) {
    throw usage(`extract needs one FILE.mmh and --tensor NAME, --file PATH or --range OFF:LEN`);
  }
  if (args.range !== undefined && (args.tensor !== undefined || args.file !== undefined))
    throw usage(`--range reads content bytes; it does not go with --tensor or --file`);
  if (command === "extract" && args.format !== undefined && args.tensor === undefined)
    throw usage(`--format applies to --tensor`);
  if (command === "pack" && files.length !== 1) throw usage(`pack needs one FOLDER (and -o FILE.mmh)`);
  if (command === "unpack" && files.length !== 1) throw usage(`unpack needs one FILE.mmh (and -o FOLDER)`);
  if ((command === "pack" || command === "unpack") && (args.stdout || args.output === "-"))
    throw usage(`${command} writes ${command === "pack" ? "a file" : "a folder"}, not standard output`);
  if (command === "analyze" && files.length === 0) throw usage(`analyze needs a file`);
  // `mmh gen text --size 1M`: the kind may be given as the one operand.
  if (command === "gen" && files.length === 1 && args.kind === undefined) args.kind = files.splice(0, 1)[0];
  if (command === "gen" && files.length > 0) throw usage(`gen takes one KIND, not ${files.join(" ")}`);
  if (command === "gen" && args.size === undefined) throw usage(`gen needs --size SIZE (and -o FILE or -c)`);
  if (args.checkSha256 && command !== "decompress" && command !== "unpack")
    throw usage(`--check-sha256 applies to decompress and unpack (verify always checks it)`);
  if (args.maxOutput !== undefined && (command === "compress" || command === "pack"))
    throw usage(`--max-output applies to decompress, unpack, extract and verify`);
  if (args.output !== undefined && args.stdout) throw usage(`-o and -c cannot be used together`);
  if (args.output !== undefined && files.length > 1)
    throw usage(`-o takes one input file, got ${files.length}`);
  if ((command === "info" || command === "verify") && files.length === 0)
    throw usage(`${command} needs a file`);
  if (
    (command === "info" || command === "verify" || command === "analyze") &&
    (args.output !== undefined || args.stdout)
  ) {
    throw usage(`${command} writes no output file`);
  }
  return args;
}

export const HELP = `Usage: mmh [compress|decompress|info|verify|extract|pack|unpack] [OPTIONS] [FILE...]

Lossless compression for AI/ML data into the .mmh container.

Commands:
  compress FILE          compress FILE into FILE.mmh (the default command: mmh FILE)
  decompress FILE.mmh    restore FILE (also: mmh -d FILE.mmh)
  info FILE.mmh          sizes, ratio, codecs, chunks, tensors and content hash (also: -l)
  verify FILE.mmh        check every chunk checksum and the content sha256 (also: -t)
  extract FILE.mmh --tensor NAME [-o OUT] [--format raw|npy]
                         decode one tensor, reading only its chunks
  extract FILE.mmh --range OFF:LEN [-o OUT]
                         decode LEN content bytes from offset OFF (raw)
  pack FOLDER [-o FILE.mmh]
                         pack a whole folder (model shards, config, tokenizer) into one
                         archive; each file is recognised on its own
  unpack FILE.mmh [-o FOLDER]
                         restore a packed folder (contents and permission bits);
                         -f replaces an existing non-empty FOLDER as a whole
  extract FILE.mmh --file PATH [-o OUT]
                         decode one file of a packed folder, reading only its chunks
                         (--file PATH --tensor NAME: a tensor of that file)
  analyze FILE           per tensor or region: dtype, field entropies, each codec's
                         ratio on samples, and what auto chooses
  serve [--config FILE] [--host HOST] [--port PORT] [--store DIR] [--workers N]
                         the HTTP service (README, "Operators"): POST /v1/compress,
                         /v1/decompress, /v1/analyze; GET /metrics, /healthz, /readyz,
                         /openapi.json. Default 127.0.0.1:8633; --port 0 picks a free port.
                         SIGHUP reloads the config; SIGTERM and SIGINT drain, then exit 0
  bench [FILE... | FOLDER] [--gen KIND[:SIZE]]... [--runs N] [-T N] [--json | --markdown]
      [--html REPORT.html]
                         MMH against zstd -1/-3/-19, lz4, brotli -9, xz -6, gzip -6 and
                         byte grouping + zstd on the same bytes, in memory: ratio, speeds
                         (median, min, max of N runs), peak memory, a sha256 round-trip check,
                         per-tensor savings, the entropy limit and the machine. KIND: a gen
                         kind or dtype (BF16, F32, Q4_K, ...); SIZE default 16M
  gen [KIND] --size SIZE [--kind safetensors|gguf|periodic|text|random]
      [--dtype BF16|F16|F32|I8|F8_E4M3|Q4_0|Q4_1|Q5_0|Q5_1|Q8_0|Q8_1|Q2_K|Q3_K|Q4_K|Q5_K|Q6_K]
      [--seed N] [--std X] [--period N] (-o FILE | -c)
                         deterministic synthetic data

With no FILE, or when FILE is -, read standard input and write standard output.
info and extract also read FILE.mmh from an http:// or https:// URL, fetching only the
index and the chunks they need (HTTP range requests).

Options:
  -o, --output FILE      write to FILE (one input only; - is standard output)
  -c, --stdout           write to standard output
  -f, --force            overwrite an existing output file
  -k, --keep             keep the input file (always; for zstd compatibility)
  -q, --quiet            print nothing but errors
  --no-progress          no progress bar (one shows on a terminal when a run takes over a second)
  --codec NAME           auto (default), hier, zstd, lz4, brotli, p251 or none
  --goal GOAL            what auto optimises: ratio, balanced (default) or speed
  -#, -L, --level N      codec level: zstd 1-22 (default 3) or --fast=N; brotli 0-11 (default 9);
                         with auto, the zstd level used by its candidates
  --chunk-size SIZE      raw bytes per chunk, 4K to 64M (default 512K)
  -T, --threads N        threads that code chunks (default: the number of cores; 1 where
                         a pool does not pay: compressing a file under 1 GiB / cores,
                         decompressing an .mmh file under 640 MiB / cores)
  --max-output SIZE      refuse to decompress more than SIZE bytes
  --base PATH            compress, pack: code each tensor the base model (a file, or a
                         folder of them) also holds, by name, dtype and shape, as its
                         difference from it; decompress, unpack, verify, extract: the base
                         such a file needs (identified by its sha256)
  --no-dedup             compress, pack: store a chunk that repeats an earlier one in full
  --long, --no-long      compress, pack: let a chunk's LZ see up to 4 MiB of the content
                         before it (on by default, off with --goal speed)
                         (default: as a reference to it)
  --check-sha256         decompress, unpack: also check the content's sha256 (every chunk's
                         CRC-32 is always checked; verify checks both)
  --json                 machine-readable output for info, verify, analyze and bench
  --stats json           compress, decompress: the job's record (bytes, ratio, duration,
                         error code) as one JSON line on standard error
  --config FILE          serve: the JSON config file (reloaded when it changes)
  --host HOST, --port N  serve: where to listen (default 127.0.0.1, 8633)
  --store DIR            serve: the store root (over the config's store.root)
  --workers N            serve: N service processes on one port, to code on N cores (default 1)
  -h, --help             this help
  -V, --version          the version

Exit status: 0 on success, 1 on a data or I/O error, 2 on a usage error, 130 or 143 when
interrupted (SIGINT, SIGTERM; no partial output is left).
Errors are one line: mmh: CODE: message
`;
