/**
 * Records of W bytes: a real file of fixed-size records no dtype describes, dlib's 68-point
 * face landmark shape predictor (a serialised model of regression trees whose split
 * thresholds and leaf vectors are floats written as a control byte, mantissa bytes and an
 * exponent: 6-byte records), against zstd and byte grouping + zstd at levels 3 and 19, with
 * the planes of 2 and 4 bytes and of the record width the detector finds
 * (src/engine/records.ts). Sizes, and compress and decompress times against zstd in the
 * same run. Writes bench/results/records.md.
 *
 *   npx node bench/records.ts [--baseline DIR] [--runs N]
 *
 * Level 3 (the default goal against zstd -3): timed runs one after another, interleaved
 * (each run times every tool once), medians of --runs N (default 3). Level 19 (`--goal
 * ratio` against zstd -19): each tool once, the tools and the byte groupings all at the
 * same time, as concurrent processes, beside the level-3 runs: a zstd -19 pass over
 * 100 MB takes minutes, and one after another they took over an hour on the shared
 * machine. Their times are then only comparable with each other (they shared the CPUs
 * alike), which the report says.
 *
 * --baseline DIR: another checkout (e.g. the commit before) whose bin/mmh.js is measured
 * the same way, for before/after sizes and times. --bytes N (e.g. 16M): measure the
 * file's first N bytes instead of all of it, for a shorter run. --out FILE.
 *
 * Input, in .bench-data/records/ (git-ignored, never committed): Debian's libdlib-data
 * 19.24+dfsg-1 (`apt-get download`, the .deb's sha256 checked), unpacked with dpkg-deb,
 * usr/share/dlib/shape_predictor_68_face_landmarks.dat (99,693,937 bytes, sha256 checked).
 * Needs apt-get (the first time), dpkg-deb and zstd.
 */

import "./lib/help.ts";
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { recordWidth } from "../src/engine/records.ts";
import { codeLine, root, writeReport } from "./lib/commands.ts";
import { bytePlanes } from "./lib/derived.ts";
import {
  argValue,
  contentionNote,
  cpuWaitMicros,
  fmt,
  machineLines,
  median,
  parseSizeArg,
  table,
  zstdCliVersion,
} from "./lib/report.ts";

const PACKAGE = "libdlib-data";
const VERSION = "19.24+dfsg-1";
const DEB = `${PACKAGE}_${VERSION}_all.deb`;
const DEB_SHA256 = "12dda15b1323ca7772bd9cae31f2b839485b36f51b1fe51707a272b94b71c106";
const FILE = "usr/share/dlib/shape_predictor_68_face_landmarks.dat";
const FILE_SHA256 = "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f";

const baselineDir = argValue("--baseline");
const runs = Number(argValue("--runs") ?? 3);
const prefixArg = argValue("--bytes");
const prefix = prefixArg === undefined ? undefined : parseSizeArg(prefixArg);
const outFile = argValue("--out") ?? join(root, "bench", "results", "records.md");
const workDir = join(root, ".bench-data", "records");
const tmpDir = join(workDir, "out");
const node = process.execPath;

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

function fetchInput(): { path: string; how: string } {
  mkdirSync(workDir, { recursive: true });
  const deb = join(workDir, DEB);
  let how = "reused from .bench-data/records/";
  if (!existsSync(deb)) {
    const got = spawnSync("apt-get", ["download", `${PACKAGE}=${VERSION}`], {
      cwd: workDir,
      encoding: "utf8",
    });
    if (got.status !== 0) throw new Error(`apt-get download ${PACKAGE}=${VERSION} failed: ${got.stderr}`);
    how = `apt-get download ${PACKAGE}=${VERSION}`;
  }
  const debSha = sha256(readFileSync(deb));
  if (debSha !== DEB_SHA256) throw new Error(`${DEB}: sha256 ${debSha}, expected ${DEB_SHA256}`);
  const unpacked = join(workDir, "x");
  const path = join(unpacked, FILE);
  if (!existsSync(path)) {
    const got = spawnSync("dpkg-deb", ["-x", deb, unpacked], { encoding: "utf8" });
    if (got.status !== 0) throw new Error(`dpkg-deb -x ${DEB} failed: ${got.stderr}`);
  }
  const fileSha = sha256(readFileSync(path));
  if (fileSha !== FILE_SHA256) throw new Error(`${FILE}: sha256 ${fileSha}, expected ${FILE_SHA256}`);
  return { path, how };
}

/** Bytes of `data` through `zstd -level`, in a process of its own (concurrent with others). */
function zstdBytesAsync(data: Buffer, level: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn("zstd", [`-${level}`, "-T0", "-q", "-c", "-"], {
      stdio: ["pipe", "pipe", "inherit"],
    });
    let bytes = 0;
    child.stdout.on("data", (piece: Buffer) => {
      bytes += piece.length;
    });
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve(bytes) : reject(new Error(`zstd -${level} exited ${code}`)),
    );
    child.stdin.end(data);
  });
}

/** Byte grouping: byte i to plane i mod width, each plane compressed by the zstd CLI, sizes added. */
async function groupedBytes(data: Buffer, width: number, level: number): Promise<number> {
  const sizes = await Promise.all(bytePlanes(data, width).map((plane) => zstdBytesAsync(plane, level)));
  return sizes.reduce((a, b) => a + b, 0);
}

/** Wall-clock milliseconds of a command in a process of its own, concurrent with others. */
function runAsync(command: string, args: readonly string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(command, args, { stdio: ["ignore", "ignore", "inherit"], cwd: root });
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0
        ? resolve(performance.now() - start)
        : reject(new Error(`${command} ${args.join(" ")}: ${code}`)),
    );
  });
}

interface Tool {
  label: string;
  /** Compress `input` into `out`. */
  compress: (input: string, out: string) => string[];
  decompress: (out: string, back: string) => string[];
  command: string;
  /** Level 19 rows run once. */
  slow: boolean;
}

const mmh = (dir: string, label: string, goal: string[]): Tool => ({
  label,
  command: node,
  compress: (input, out) => [join(dir, "bin", "mmh.js"), input, "-o", out, ...goal, "-f", "-q"],
  decompress: (out, back) => [join(dir, "bin", "mmh.js"), "-d", out, "-o", back, "-f", "-q"],
  slow: goal.length > 0,
});
const zstd = (level: number): Tool => ({
  label: `zstd -${level}`,
  command: "zstd",
  compress: (input, out) => [`-${level}`, "-T0", "-q", "-f", input, "-o", out],
  decompress: (out, back) => ["-d", "-q", "-f", out, "-o", back],
  slow: level > 9,
});

const started = performance.now();
const waitAtStart = cpuWaitMicros();
const loadAtStart = loadavg();
const codeAtStart = codeLine();
const fetched = fetchInput();
const how = fetched.how;
let path = fetched.path;
let data = readFileSync(path);
const fileSha256 = prefix === undefined ? FILE_SHA256 : sha256(data.subarray(0, prefix));
if (prefix !== undefined) {
  data = data.subarray(0, prefix);
  path = join(workDir, `prefix-${prefix}.dat`);
  writeFileSync(path, data);
}
const width = recordWidth(data.subarray(data.length >> 1, (data.length >> 1) + (512 << 10)));
const widths = [2, 4, ...(width === undefined ? [] : [width])];

const tools: Tool[] = [
  zstd(3),
  mmh(root, "mmh default", []),
  ...(baselineDir ? [mmh(baselineDir, "mmh default (baseline)", [])] : []),
  zstd(19),
  mmh(root, "mmh --goal ratio", ["--goal", "ratio"]),
  ...(baselineDir ? [mmh(baselineDir, "mmh --goal ratio (baseline)", ["--goal", "ratio"])] : []),
];

interface Measured {
  bytes: number;
  compressMs: number[];
  decompressMs: number[];
}
const measured = new Map<Tool, Measured>(
  tools.map((t) => [t, { bytes: 0, compressMs: [], decompressMs: [] }]),
);
mkdirSync(tmpDir, { recursive: true });
const outOf = (tool: Tool) => join(tmpDir, `out.${tools.indexOf(tool)}`);
const backOf = (tool: Tool) => join(tmpDir, `back.${tools.indexOf(tool)}`);
function check(tool: Tool): void {
  const m = measured.get(tool)!;
  m.bytes = statSync(outOf(tool)).size;
  if (sha256(readFileSync(backOf(tool))) !== fileSha256) throw new Error(`ROUND TRIP FAILED: ${tool.label}`);
  rmSync(backOf(tool), { force: true });
  rmSync(outOf(tool), { force: true });
  console.log(`${tool.label}: ${m.bytes} bytes, ${fmt(m.compressMs.at(-1)!, 0)} ms`);
}

// Level 19 and the groupings: all at once, in the background.
const slow = Promise.all([
  ...tools
    .filter((tool) => tool.slow)
    .map(async (tool) => {
      const m = measured.get(tool)!;
      m.compressMs.push(await runAsync(tool.command, tool.compress(path, outOf(tool))));
      m.decompressMs.push(await runAsync(tool.command, tool.decompress(outOf(tool), backOf(tool))));
      check(tool);
    }),
  ...[3, 19].flatMap((level) =>
    widths.map(async (w) => ({
      label: `bg${w} + zstd -${level}`,
      bytes: await groupedBytes(data, w, level),
    })),
  ),
]);
// Level 3, timed: interleaved, each run times every tool once, so a change of load touches them alike.
for (let r = 0; r < runs; r++) {
  for (const tool of tools.filter((t) => !t.slow)) {
    const m = measured.get(tool)!;
    // Asynchronously, so that the concurrent jobs are fed and their ends seen on time.
    m.compressMs.push(await runAsync(tool.command, tool.compress(path, outOf(tool))));
    m.decompressMs.push(await runAsync(tool.command, tool.decompress(outOf(tool), backOf(tool))));
    check(tool);
  }
}
const grouped = (await slow).filter((g): g is { label: string; bytes: number } => g !== undefined);

const z3 = measured.get(tools[0])!;
const z19 = measured.get(tools.find((t) => t.label === "zstd -19")!)!;
const ratioOf = (bytes: number) => `${fmt(data.length / bytes, 3)}x`;
const rows = [
  ...tools.map((tool) => {
    const m = measured.get(tool)!;
    const c = median(m.compressMs);
    const d = median(m.decompressMs);
    const against = tool.slow ? z19 : z3;
    return [
      tool.label,
      String(m.bytes),
      ratioOf(m.bytes),
      fmt(c / 1000, 1),
      fmt(d / 1000, 2),
      fmt(c / median(against.compressMs), 2),
      fmt(d / median(against.decompressMs), 2),
      tool.slow ? "1, concurrent" : String(m.compressMs.length),
    ];
  }),
  ...grouped.map((g) => [g.label, String(g.bytes), ratioOf(g.bytes), "", "", "", "", ""]),
];

const lines = [
  "# Records of W bytes: dlib's shape predictor against zstd and byte grouping + zstd",
  "",
  ...machineLines(
    `npx node bench/records.ts${baselineDir ? " --baseline DIR" : ""} --runs ${runs}${prefixArg ? ` --bytes ${prefixArg}` : ""}`,
  ),
  codeAtStart,
  ...(baselineDir
    ? [
        `- Baseline: ${baselineDir}, ${spawnSync("git", ["-C", baselineDir, "log", "-1", "--format=commit %h (%s)"], { encoding: "utf8" }).stdout.trim()}`,
      ]
    : []),
  `- zstd CLI: ${zstdCliVersion()}`,
  `- Input: ${FILE} from Debian's ${PACKAGE} ${VERSION} (${how}; sha256 ${FILE_SHA256.slice(0, 16)}…), ${prefix === undefined ? `${data.length} bytes` : `its first ${data.length} bytes (--bytes ${prefixArg})`}`,
  `- Record width the detector finds on the file's middle 512 KiB: ${width ?? "none"}`,
  `- Load average (1, 5, 15 min) at start: ${loadAtStart.map((x) => fmt(x, 2)).join(", ")}; at end: ${loadavg()
    .map((x) => fmt(x, 2))
    .join(", ")}`,
  `- Took ${fmt((performance.now() - started) / 1000, 0)} s. ${contentionNote(waitAtStart, performance.now() - started)}`,
  "",
  "Ratio: original / stored (larger is better). bgW + zstd -L: the whole file cut into W byte planes (byte i to plane i mod W), each plane compressed by the zstd CLI at level L, sizes added (sizes only). zstd runs with -T0 (all cores), mmh with its default threads. Times: wall clock including process start. Level-3 rows (zstd -3, mmh default): medians of the interleaved runs, and the times over zstd -3's. Level-19 rows (zstd -19, mmh --goal ratio): one run each, all of them and the byte groupings as concurrent processes (beside the level-3 runs), so their times compare only with each other: the ratio columns give them over zstd -19's. Every output was decoded and its sha256 checked.",
  "",
  table(
    [
      "tool",
      "stored bytes",
      "ratio",
      "compress s",
      "decompress s",
      "compress / zstd (same level)",
      "decompress / zstd (same level)",
      "runs",
    ],
    rows,
  ),
  "",
];
writeReport(outFile, lines);
