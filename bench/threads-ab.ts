/**
 * `mmh -d -q -T 1 -c` and `-T 2` of one .mmh file, this checkout against a baseline
 * checkout, interleaved (the four runs of a round in a rotating order), output discarded.
 * On a shared machine a second thread finds no idle core and the wall clock mostly
 * measures the load, so each run also reports its main thread's time waiting for a CPU
 * (run-queue wait, /proc/self/task/PID/schedstat, read at exit by bench/lib/run-queue.ts
 * given to `--import`), and the report gives wall time less that wait beside the wall
 * time: what the run would take if its main thread had never waited for a core. The
 * worker's own waits still count where the main thread waits for its results, so this
 * understates what a second thread gains on a quiet machine.
 *
 *   npx node bench/threads-ab.ts --baseline DIR --file F.mmh [--rounds 8] [--out FILE] [--to OUT]
 *     [--threads 1,2,default] [--zstd F.zst]
 *
 * `--threads` lists the thread counts timed (`default`: no -T, the command's own choice);
 * -T 1 and -T 2 by default. With `--zstd F.zst` (the same content, from `zstd -3`), each
 * round also times `zstd -d -q -c F.zst > /dev/null`, and the report gives zstd's time
 * over each of mmh's (above 1: mmh is faster), per round, then their median. Every run's
 * CPU time (user + system of the whole process) is reported too.
 *
 * With `--to OUT`, each run writes the content to the file OUT (`-o OUT -f`, deleted
 * before each run) instead of discarding it.
 *
 * DIR is another checkout with dist/ built (`npm run build`), as is this one; the report
 * goes to standard output, and to FILE when given. Linux only (schedstat).
 */

import "./lib/help.ts";
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { codeLine, fail, root, writeReport } from "./lib/commands.ts";
import {
  argValue,
  baselineArg,
  contentionNote,
  cpuWaitMicros,
  fmt,
  machineLines,
  median,
  table,
} from "./lib/report.ts";

const { given, dir: baseline } = baselineArg("threads-ab", "a checkout with dist/ built");
const file = argValue("--file");
if (!file) {
  console.error("threads-ab: --file F.mmh is required");
  process.exit(2);
}
const rounds = Number(argValue("--rounds") ?? 8);
const outFile = argValue("--out");
const toFile = argValue("--to");
const preload = join(root, "bench", "lib", "run-queue.ts");
const zstdFile = argValue("--zstd");
type Threads = "1" | "2" | "default";
const THREADS = (argValue("--threads") ?? "1,2")
  .split(",")
  .filter((t): t is Threads => t === "1" || t === "2" || t === "default");

type Side = "baseline" | "this";
type Run = {
  side: Side;
  threads: Threads;
  wall: number[];
  lessWait: number[];
  mainCpu: number[];
  cpu: number[];
};
const runs: Run[] = [];
for (const side of ["baseline", "this"] as const)
  for (const threads of THREADS) runs.push({ side, threads, wall: [], lessWait: [], mainCpu: [], cpu: [] });
const zstd = { wall: [] as number[], cpu: [] as number[] };

/** CPU time (user + system, ms) of this process's waited-for children so far (Linux), or NaN. */
function childCpuMs(): number {
  try {
    const stat = readFileSync("/proc/self/stat", "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[13]) + Number(fields[14])) * 10;
  } catch {
    return Number.NaN;
  }
}

function once(run: Run): void {
  const bin = join(run.side === "this" ? root : baseline, "bin", "mmh.js");
  const to = toFile ? ["-o", resolve(toFile), "-f"] : ["-c"];
  const t = run.threads === "default" ? [] : ["-T", run.threads];
  const args = ["--import", preload, bin, "-d", "-q", ...t, ...to, resolve(file!)];
  if (toFile) rmSync(resolve(toFile), { force: true });
  const cpu = childCpuMs();
  const result = spawnSync(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"], cwd: root });
  if (result.error) throw result.error;
  if (result.status !== 0) fail(process.execPath, args, result);
  run.cpu.push(childCpuMs() - cpu);
  const match = /RUNQUEUE (\S+) (\S+) (\S+)/.exec(String(result.stderr));
  if (!match)
    throw new Error("threads-ab: no run-queue figures (is /proc/self/task/PID/schedstat readable?)");
  const [mainCpu, wait, wall] = match.slice(1).map(Number);
  run.wall.push(wall);
  run.lessWait.push(wall - wait);
  run.mainCpu.push(mainCpu);
}

/** `zstd -d -q -c F.zst > /dev/null`, wall clock with process start (ms). */
function zstdOnce(): void {
  const cpu = childCpuMs();
  const start = performance.now();
  const result = spawnSync("zstd", ["-d", "-q", "-c", resolve(zstdFile!)], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  zstd.wall.push(performance.now() - start);
  if (result.error) throw result.error;
  if (result.status !== 0) fail("zstd", ["-d", "-q", "-c", zstdFile!], result);
  zstd.cpu.push(childCpuMs() - cpu);
}

const started = performance.now();
const waitStart = cpuWaitMicros();
for (let round = 0; round < rounds; round++) {
  const order = runs.map((_, i) => i);
  for (let k = 0; k < round % order.length; k++) order.push(order.shift()!);
  if (round % 2) order.reverse();
  if (zstdFile && round % 2) zstdOnce();
  for (const i of order) once(runs[i]);
  if (zstdFile && !(round % 2)) zstdOnce();
  console.log(`round ${round + 1}/${rounds} done (${fmt((performance.now() - started) / 1000, 0)} s)`);
}
const elapsed = performance.now() - started;
if (toFile) rmSync(resolve(toFile), { force: true });

const find = (side: Side, threads: Threads) => runs.find((r) => r.side === side && r.threads === threads);
const ratio = (a: number[], b: number[]) => a.map((x, i) => x / b[i]);
const range = (values: number[]) => `${fmt(Math.min(...values), 2)}-${fmt(Math.max(...values), 2)}`;
const label = (t: Threads) => (t === "default" ? "default" : `-T ${t}`);
const rows: string[][] = [];
for (const run of runs)
  rows.push([
    run.side,
    label(run.threads),
    fmt(median(run.wall)),
    fmt(median(run.lessWait)),
    fmt(median(run.cpu)),
    fmt(median(run.mainCpu)),
    ...(zstdFile ? [fmt(median(ratio(zstd.wall, run.wall)), 2), range(ratio(zstd.wall, run.wall))] : []),
  ]);
if (zstdFile) rows.push(["zstd -d", "", fmt(median(zstd.wall)), "", fmt(median(zstd.cpu)), "", "", ""]);
const pairRows: string[][] = [];
for (const side of ["baseline", "this"] as const) {
  const one = find(side, "1");
  const two = find(side, "2");
  if (!one || !two) continue;
  for (const [what, key] of [
    ["wall", "wall"],
    ["wall less the main thread's wait for a CPU", "lessWait"],
  ] as const) {
    const r = ratio(two[key], one[key]);
    pairRows.push([side, what, fmt(median(one[key])), fmt(median(two[key])), fmt(median(r), 3), range(r)]);
  }
}
const againstLines: string[] = [];
for (const threads of THREADS) {
  const a = find("this", threads)!;
  const b = find("baseline", threads)!;
  for (const [what, key] of [
    ["wall", "wall"],
    ["wall less the main thread's wait", "lessWait"],
  ] as const) {
    const r = ratio(a[key], b[key]);
    againstLines.push(
      `- ${label(threads)}, ${what}, this checkout over the baseline: median ${fmt(median(r), 3)} (${range(r)}; ${r.filter((x) => x < 1).length} of ${rounds} rounds below 1).`,
    );
  }
}
const lines = [
  "# Two threads against one when decoding, this checkout against a baseline",
  "",
  ...machineLines(
    `npx node bench/threads-ab.ts --baseline ${given} --file ${file} --rounds ${rounds}${outFile ? ` --out ${outFile}` : ""}${toFile ? ` --to ${toFile}` : ""}${argValue("--threads") ? ` --threads ${argValue("--threads")}` : ""}${zstdFile ? ` --zstd ${zstdFile}` : ""}`,
  ),
  codeLine(),
  `- ${contentionNote(waitStart, elapsed)}`,
  `- ${rounds} rounds; ${fmt(elapsed / 1000, 0)} s in all`,
  "",
  toFile
    ? `\`mmh -d -q -T N -o ${toFile} -f ${file}\` (the output file deleted before each run), medians over rounds; ratios per round, then their median.`
    : `\`mmh -d -q -T N -c ${file} > /dev/null\`, medians over rounds; ratios per round, then their median.`,
  "CPU ms: user + system time of the whole process; main CPU ms: its main thread's.",
  "",
  table(
    [
      "checkout",
      "threads",
      "wall ms",
      "wall less main's wait ms",
      "CPU ms",
      "main CPU ms",
      ...(zstdFile ? ["zstd -d / mmh", "range"] : []),
    ],
    rows,
  ),
  "",
  ...(pairRows.length > 0
    ? [table(["checkout", "time", "-T 1 ms", "-T 2 ms", "T2/T1", "range"], pairRows), ""]
    : []),
  ...againstLines,
  "",
];
console.log(lines.join("\n"));
if (outFile) writeReport(outFile, lines);
