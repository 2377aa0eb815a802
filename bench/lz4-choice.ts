/**
 * Which LZ4 library MMH should use. The payload must be the LZ4 frame format, readable by
 * the \`lz4\` CLI. Compares, on 1 MiB blocks (one frame each, as MMH stores a chunk):
 *
 * - MMH's own LZ4 codec as it is in src/codecs/lz4.ts (the one in use),
 * - lz4-napi compressFrameSync / decompressFrameSync and compressFrame / decompressFrame
 *   (its async functions), when installed,
 * - lz4js (pure JavaScript, frame format), when installed.
 *
 * It measures speed and ratio, how much resident memory each keeps per call (in a fresh
 * process each, since a library that leaks would distort the others), whether the lz4 CLI
 * decodes each one's frames, and whether each decodes the others'.
 *
 * lz4-napi and lz4js are not dependencies. To include them, install them for the run only:
 *   npm install --no-save lz4js lz4-napi && npx node bench/lz4-choice.ts
 * Without them the script measures what is installed and says so.
 *
 * Options: --size SIZE per data set (default 32M), --runs N (default 5), --calls N (calls
 * per memory probe, default 1000), --out FILE.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { codecByName } from "../src/codecs/registry.ts";
import { bf16Weights, jsonLog, randomBytesSeeded } from "./lib/data.ts";
import {
  argValue,
  collectGarbage,
  contentionNote,
  cpuWaitMicros,
  fmt,
  lz4CliVersion,
  MiB,
  machineLines,
  mbps,
  median,
  parseSizeArg,
  sizeLabel,
  table,
  timeAsync,
} from "./lib/report.ts";

const here = dirname(fileURLToPath(import.meta.url));
const self = fileURLToPath(import.meta.url);
const size = parseSizeArg(argValue("--size") ?? "32M");
const runs = Number(argValue("--runs") ?? 5);
const calls = Number(argValue("--calls") ?? 1000);
const defaultSize = size === 32 * MiB;
const outFile = argValue("--out") ?? (defaultSize ? join(here, "results", "lz4-choice.md") : undefined);
const BLOCK = MiB;
/** lz4-napi is called without checksums, like MMH's LZ4 codec. */
const FRAME_OPTIONS = { contentChecksum: false, blockChecksums: false };

interface Lib {
  key: string;
  name: string;
  compress(raw: Buffer): Uint8Array | Promise<Uint8Array>;
  decompress(frame: Buffer, rawLength: number): Uint8Array | Promise<Uint8Array>;
}

function packageVersion(name: string): string {
  try {
    const file = join(here, "..", "node_modules", name, "package.json");
    return (JSON.parse(readFileSync(file, "utf8")) as { version: string }).version;
  } catch {
    return "?";
  }
}

const EMPTY = new Uint8Array(0);

/** MMH's LZ4 codec as it is in src/codecs/, by itself (no container). */
function mmhCodec(): Lib {
  const codec = codecByName("lz4");
  return {
    key: "mmh-lz4",
    name: `MMH's LZ4 codec, src/codecs/lz4.ts: "${codec.description}" (in use)`,
    compress: (raw) => {
      const { payload, params } = codec.encode(raw, {});
      if (params && params.length > 0) throw new Error("the LZ4 codec wrote parameters: not a bare frame");
      return payload;
    },
    decompress: (frame, rawLength) => codec.decode(frame, EMPTY, rawLength),
  };
}

interface Lz4Napi {
  compressFrameSync(data: Buffer, options?: typeof FRAME_OPTIONS): Buffer;
  decompressFrameSync(data: Buffer): Buffer;
  compressFrame(data: Uint8Array, options?: typeof FRAME_OPTIONS): Promise<Buffer>;
  decompressFrame(data: Uint8Array): Promise<Buffer>;
}

interface Lz4js {
  compress(src: Uint8Array, maxSize?: number): Uint8Array | number[];
  decompress(src: Uint8Array, maxSize?: number): Uint8Array | number[];
}

/** A package that is not a dependency, when it is installed; else undefined. */
async function optional<T>(name: string): Promise<T | undefined> {
  try {
    // A variable specifier, so the type checker does not need the package.
    const imported = (await import(name)) as { default?: T } & T;
    return imported.default ?? imported;
  } catch {
    return undefined;
  }
}

async function libraries(): Promise<Lib[]> {
  const libs = [mmhCodec()];
  const napi = await optional<Lz4Napi>("lz4-napi");
  if (napi) {
    const version = packageVersion("lz4-napi");
    libs.push(
      {
        key: "napi-sync",
        name: `lz4-napi ${version} compressFrameSync / decompressFrameSync`,
        compress: (raw) => napi.compressFrameSync(raw, FRAME_OPTIONS),
        decompress: (frame) => napi.decompressFrameSync(frame),
      },
      {
        key: "napi-async",
        name: `lz4-napi ${version} compressFrame / decompressFrame (async)`,
        compress: (raw) => napi.compressFrame(raw, FRAME_OPTIONS),
        decompress: (frame) => napi.decompressFrame(frame),
      },
    );
  }
  const js = await optional<Lz4js>("lz4js");
  if (js) {
    const bytes = (out: Uint8Array | number[]) => (out instanceof Uint8Array ? out : Uint8Array.from(out));
    libs.push({
      key: "lz4js",
      name: `lz4js ${packageVersion("lz4js")} compress / decompress (pure JS)`,
      compress: (raw) => bytes(js.compress(raw)),
      decompress: (frame, rawLength) => bytes(js.decompress(frame, rawLength)),
    });
  }
  return libs;
}

function dataSets(): { key: string; label: string; bytes: Buffer }[] {
  return [
    { key: "bf16", label: "BF16 weights, N(0, 0.02), per-row scale", bytes: bf16Weights(size, 1) },
    { key: "json", label: "JSON-lines training log", bytes: jsonLog(size, 2) },
    { key: "random", label: "uniform random bytes", bytes: randomBytesSeeded(size, 3) },
  ];
}

function blocks(data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < data.length; at += BLOCK)
    out.push(data.subarray(at, Math.min(data.length, at + BLOCK)));
  return out;
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return asBuffer(a).equals(asBuffer(b));
}

// ---------------------------------------------------------------------------------------
// Child modes: each library is timed, and its memory probed, in a process of its own.

interface TimingResult {
  data: string;
  stored: number;
  c: number[];
  d: number[];
}

async function childTime(key: string): Promise<void> {
  const lib = (await libraries()).find((l) => l.key === key)!;
  const results: TimingResult[] = [];
  for (const set of dataSets()) {
    const parts = blocks(set.bytes);
    const frames: Buffer[] = [];
    for (const raw of parts) frames.push(asBuffer(await lib.compress(raw)));
    const result: TimingResult = {
      data: set.key,
      stored: frames.reduce((n, f) => n + f.length, 0),
      c: [],
      d: [],
    };
    for (let run = -1; run < runs; run++) {
      const c = await timeAsync(async () => {
        for (const raw of parts) await lib.compress(raw);
      });
      const d = await timeAsync(async () => {
        for (let i = 0; i < frames.length; i++) await lib.decompress(frames[i], parts[i].length);
      });
      if (run >= 0) {
        result.c.push(c);
        result.d.push(d);
      }
    }
    results.push(result);
  }
  process.stdout.write(`${JSON.stringify(results)}\n`);
}

interface ProbeResult {
  op: string;
  rssBefore: number;
  rssHalf: number;
  rssAfter: number;
}

/** Resident memory growth over `calls` calls on one 1 MiB BF16 block, after collecting garbage. */
async function childProbe(key: string, op: string): Promise<void> {
  const lib = (await libraries()).find((l) => l.key === key)!;
  const raw = bf16Weights(BLOCK, 1);
  const frame = asBuffer(await lib.compress(raw));
  for (let i = 0; i < 10; i++) {
    if (op === "compress") await lib.compress(raw);
    else await lib.decompress(frame, raw.length);
  }
  collectGarbage();
  const rssBefore = process.memoryUsage().rss;
  let rssHalf = rssBefore;
  for (let i = 0; i < calls; i++) {
    if (op === "compress") await lib.compress(raw);
    else await lib.decompress(frame, raw.length);
    if (i % 25 === 0) collectGarbage();
    if (i === (calls >> 1) - 1) {
      collectGarbage();
      rssHalf = process.memoryUsage().rss;
    }
  }
  collectGarbage();
  await new Promise((resolve) => setTimeout(resolve, 50));
  collectGarbage();
  const result: ProbeResult = { op, rssBefore, rssHalf, rssAfter: process.memoryUsage().rss };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function child<T>(args: string[]): T {
  const options = ["--size", String(size), "--runs", String(runs), "--calls", String(calls)];
  const result = spawnSync(process.execPath, ["--expose-gc", self, ...args, ...options], {
    encoding: "utf8",
    maxBuffer: 1 << 24,
    timeout: 1_200_000,
  });
  if (result.status !== 0) throw new Error(`child ${args.join(" ")} failed: ${result.stderr}`);
  return JSON.parse(result.stdout.trim().split("\n").at(-1)!) as T;
}

// ---------------------------------------------------------------------------------------

/** Frame header facts: block size, block independence, checksums, content size. */
function describeFrame(frame: Uint8Array): string {
  const flg = frame[4];
  const bd = frame[5];
  const blockMax = ["?", "?", "?", "?", "64 KiB", "256 KiB", "1 MiB", "4 MiB"][(bd >> 4) & 7];
  const flags = [
    flg & 0x20 ? "independent blocks" : "linked blocks",
    flg & 0x10 ? "block checksums" : "no block checksums",
    flg & 0x08 ? "content size" : "no content size",
    flg & 0x04 ? "content checksum" : "no content checksum",
  ];
  return `block max ${blockMax}, ${flags.join(", ")}`;
}

/** Does the lz4 CLI decode `frame` back to `raw`? */
function cliDecodes(frame: Uint8Array, raw: Uint8Array, dir: string, tag: string): string {
  const input = join(dir, `${tag}.lz4`);
  const output = join(dir, `${tag}.out`);
  writeFileSync(input, frame);
  const result = spawnSync("lz4", ["-d", "-q", "-f", input, output], { encoding: "utf8" });
  if (result.error) return `lz4 CLI not runnable (${result.error.message})`;
  if (result.status !== 0) return `no: lz4 exited ${result.status}: ${result.stderr.trim()}`;
  const ok = same(readFileSync(output), raw);
  rmSync(input, { force: true });
  rmSync(output, { force: true });
  return ok ? "yes" : "no: decoded bytes differ";
}

async function main(): Promise<void> {
  const started = performance.now();
  const waitAtStart = cpuWaitMicros();
  const libs = await libraries();
  const packages: [name: string, key: string][] = [
    ["lz4-napi", "napi-sync"],
    ["lz4js", "lz4js"],
  ];
  const missing = packages.filter(([, key]) => !libs.some((l) => l.key === key)).map(([name]) => name);
  if (missing.length > 0) {
    console.log(
      `not installed, so not measured: ${missing.join(", ")} (npm install --no-save ${missing.join(" ")})`,
    );
  }
  const base = libs[0];
  const sets = dataSets();

  // Correctness and compatibility, in this process.
  const checks: string[][] = [];
  const dir = mkdtempSync(join(tmpdir(), "mmh-lz4-choice-"));
  try {
    for (const set of sets) {
      const parts = blocks(set.bytes);
      const first = new Map<Lib, Buffer>();
      for (const lib of libs) {
        for (let i = 0; i < parts.length; i++) {
          const frame = asBuffer(await lib.compress(parts[i]));
          if (i === 0) first.set(lib, frame);
          if (!same(await lib.decompress(frame, parts[i].length), parts[i])) {
            throw new Error(`${lib.key} round trip differs on ${set.key} block ${i}`);
          }
        }
      }
      const napiSync = libs.find((l) => l.key === "napi-sync");
      const napiAsync = libs.find((l) => l.key === "napi-async");
      if (napiSync && napiAsync && !same(first.get(napiSync)!, first.get(napiAsync)!)) {
        throw new Error(`lz4-napi sync and async frames differ on ${set.key}`);
      }
      for (const lib of libs) {
        const frame = first.get(lib)!;
        // Every other implementation (lz4-napi's two APIs share one decoder: one of them is enough).
        const others = libs.filter(
          (l) =>
            l !== lib && l.key !== "napi-async" && !(lib.key.startsWith("napi") && l.key.startsWith("napi")),
        );
        const cross = await Promise.all(
          others.map(async (other) => {
            try {
              return `${other.key}: ${same(await other.decompress(frame, parts[0].length), parts[0]) ? "yes" : "no, bytes differ"}`;
            } catch (error) {
              return `${other.key}: no, ${(error as Error).message}`;
            }
          }),
        );
        checks.push([
          `${lib.key}, ${set.key}`,
          describeFrame(frame),
          cliDecodes(frame, parts[0], dir, `${lib.key}-${set.key}`),
          cross.length ? cross.join("; ") : "n/a",
        ]);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  // Speed: each library in its own process.
  const timings = new Map<Lib, TimingResult[]>();
  for (const lib of libs) {
    console.log(`timing ${lib.key} ...`);
    timings.set(lib, child<TimingResult[]>(["--child-time", lib.key]));
  }
  // Memory: a fresh process per library and operation.
  const probes = new Map<Lib, ProbeResult[]>();
  for (const lib of libs) {
    console.log(`memory probe ${lib.key} ...`);
    probes.set(lib, [
      child<ProbeResult>(["--child-probe", lib.key, "compress"]),
      child<ProbeResult>(["--child-probe", lib.key, "decompress"]),
    ]);
  }

  const speedRows: string[][] = [];
  for (const set of sets) {
    const baseTime = timings.get(base)!.find((t) => t.data === set.key)!;
    for (const lib of libs) {
      const t = timings.get(lib)!.find((x) => x.data === set.key)!;
      speedRows.push([
        lib.key,
        set.key,
        fmt(t.stored / size, 4),
        fmt(mbps(size, median(t.c))),
        fmt(median(t.c) / median(baseTime.c), 2),
        fmt(mbps(size, median(t.d))),
        fmt(median(t.d) / median(baseTime.d), 2),
      ]);
    }
  }
  const speedTable = table(
    [
      "library",
      "data",
      "ratio (comp/orig)",
      "compress MB/s",
      `compress time / ${base.key}`,
      "decompress MB/s",
      `decompress time / ${base.key}`,
    ],
    speedRows,
  );
  const half = calls >> 1;
  const memoryRows = libs.map((lib) => {
    const [c, d] = probes.get(lib)!;
    // Growth over the second half of the calls: a warm-up (allocator pools) shows in the
    // first half only; a leak keeps growing. KiB per call on 1 MiB = MiB per GiB.
    const mib = (bytes: number) => fmt(bytes / MiB, 0);
    const perGiB = (p: ProbeResult) => fmt((p.rssAfter - p.rssHalf) / (calls - half) / 1024, 0);
    return [
      lib.key,
      mib(c.rssHalf - c.rssBefore),
      mib(c.rssAfter - c.rssHalf),
      perGiB(c),
      mib(d.rssHalf - d.rssBefore),
      mib(d.rssAfter - d.rssHalf),
      perGiB(d),
    ];
  });
  const memoryTable = table(
    [
      "library",
      `compress: RSS growth, calls 1-${half}, MiB`,
      `calls ${half + 1}-${calls}, MiB`,
      "MiB kept per GiB compressed (2nd half)",
      `decompress: RSS growth, calls 1-${half}, MiB`,
      `calls ${half + 1}-${calls}, MiB`,
      "MiB kept per GiB decompressed (2nd half)",
    ],
    memoryRows,
  );
  const checkTable = table(
    ["frames from", "frame header", "lz4 CLI decodes it", "the others decode it"],
    checks,
  );
  console.log(`\n${speedTable}\n\n${memoryTable}\n\n${checkTable}`);

  const libLines = libs.map((l) => `  - ${l.key}: ${l.name}`);
  const findings: string[] = [];
  for (const lib of libs) {
    const [c, d] = probes.get(lib)!;
    const kept = (p: ProbeResult) => (p.rssAfter - p.rssHalf) / (calls - half) / 1024; // MiB per GiB
    if (kept(c) > 100 || kept(d) > 100) {
      findings.push(
        `- ${lib.key} keeps memory: over calls ${half + 1}-${calls}, after any warm-up, its resident set still grew by ${fmt(kept(c), 0)} MiB per GiB compressed and ${fmt(kept(d), 0)} MiB per GiB decompressed.`,
      );
    }
  }
  const refused = checks.filter((row) => row[3].includes(": no"));
  if (refused.length > 0) {
    findings.push(
      `- Not every implementation decodes every other's frames: ${refused
        .map(
          (row) =>
            `frames from ${row[0]} (${row[3]
              .split("; ")
              .filter((x) => x.includes(": no"))
              .join("; ")})`,
        )
        .join("; ")}.`,
    );
  }
  const notCli = checks.filter((row) => row[2] !== "yes");
  findings.push(
    notCli.length === 0
      ? "- The lz4 CLI decoded the frames of every implementation."
      : `- The lz4 CLI did not decode: ${notCli.map((row) => `${row[0]} (${row[2]})`).join("; ")}.`,
  );
  const lines = [
    "# LZ4 library choice",
    "",
    ...machineLines(
      `npm install --no-save lz4js lz4-napi && npx node bench/lz4-choice.ts${defaultSize ? "" : ` --size ${argValue("--size")}`}`,
    ),
    `- lz4 CLI: ${lz4CliVersion()}`,
    "- Libraries (all produce the LZ4 frame format):",
    ...libLines,
    `- Data: ${sizeLabel(size)} each of ${sets.map((s) => `${s.key} (${s.label})`).join(", ")}; generated with a seeded PRNG.`,
    `- Each block of ${sizeLabel(BLOCK)} is compressed into its own frame, as MMH does per chunk. lz4-napi is called without checksums, as MMH's codec writes its frames. Async functions are awaited one block at a time, so every figure is one thread's worth of work.`,
    `- Speed: each library in its own Node process, one warm-up then ${runs} timed runs, median shown. MB/s is original bytes (10^6) per second. Time ratios divide by ${base.key} in the same run (< 1 = faster).`,
    `- Memory: a fresh process per library and operation calls it ${calls} times on one 1 MiB BF16 block, collecting garbage every 25 calls, and reports how much its resident set grew over the first and the second half of the calls. Memory that is freed and reused stops growing after a warm-up; memory that leaks keeps growing in proportion to the calls.`,
    missing.length > 0 ? `- **Not installed for this run, so not measured: ${missing.join(", ")}.**` : "",
    "",
    "## Speed and ratio",
    "",
    speedTable,
    "",
    "## Memory kept per call",
    "",
    memoryTable,
    "",
    "## Compatibility",
    "",
    "The first frame of each data set from each library, decoded by `lz4 -d` and by the other implementations, and compared with the original bytes. lz4-napi's sync and async functions were also checked to produce identical frames.",
    "",
    checkTable,
    "",
    "## Findings",
    "",
    ...findings,
    "",
    `Total time of this run: ${fmt((performance.now() - started) / 1000, 0)} s. ${contentionNote(waitAtStart, performance.now() - started)}`,
    "",
  ];
  if (outFile) {
    writeFileSync(outFile, lines.join("\n"));
    console.log(`\nwrote ${outFile}`);
  }
}

const timeKey = argValue("--child-time");
const probeKey = argValue("--child-probe");
if (timeKey) await childTime(timeKey);
else if (probeKey) await childProbe(probeKey, process.argv[process.argv.indexOf("--child-probe") + 2]);
else await main();
