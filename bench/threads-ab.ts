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
 *
 * With `--to OUT`, each run writes the content to the file OUT (`-o OUT -f`, deleted
 * before each run) instead of discarding it.
 *
 * DIR is another checkout with dist/ built (`npm run build`), as is this one; the report
 * goes to standard output, and to FILE when given. Linux only (schedstat).
 */

import "./lib/help.ts";
import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
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

type Side = "baseline" | "this";
type Run = { side: Side; threads: 1 | 2; wall: number[]; lessWait: number[]; mainCpu: number[] };
const runs: Run[] = [];
for (const side of ["baseline", "this"] as const)
  for (const threads of [1, 2] as const) runs.push({ side, threads, wall: [], lessWait: [], mainCpu: [] });

function once(run: Run): void {
  const bin = join(run.side === "this" ? root : baseline, "bin", "mmh.js");
  const to = toFile ? ["-o", resolve(toFile), "-f"] : ["-c"];
  const args = ["--import", preload, bin, "-d", "-q", "-T", String(run.threads), ...to, resolve(file!)];
  if (toFile) rmSync(resolve(toFile), { force: true });
  const result = spawnSync(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"], cwd: root });
  if (result.error) throw result.error;
  if (result.status !== 0) fail(process.execPath, args, result);
  const match = /RUNQUEUE (\S+) (\S+) (\S+)/.exec(String(result.stderr));
  if (!match)
    throw new Error("threads-ab: no run-queue figures (is /proc/self/task/PID/schedstat readable?)");
  const [cpu, wait, wall] = match.slice(1).map(Number);
  run.wall.push(wall);
  run.lessWait.push(wall - wait);
  run.mainCpu.push(cpu);
}

const started = performance.now();
const waitStart = cpuWaitMicros();
for (let round = 0; round < rounds; round++) {
  const order = runs.map((_, i) => i);
  for (let k = 0; k < round % order.length; k++) order.push(order.shift()!);
  if (round % 2) order.reverse();
  for (const i of order) once(runs[i]);
  console.log(`round ${round + 1}/${rounds} done (${fmt((performance.now() - started) / 1000, 0)} s)`);
}
const elapsed = performance.now() - started;
if (toFile) rmSync(resolve(toFile), { force: true });

const find = (side: Side, threads: 1 | 2) => runs.find((r) => r.side === side && r.threads === threads)!;
const ratio = (a: number[], b: number[]) => a.map((x, i) => x / b[i]);
const range = (values: number[]) => `${fmt(Math.min(...values), 2)}-${fmt(Math.max(...values), 2)}`;
const rows: string[][] = [];
for (const side of ["baseline", "this"] as const) {
  const one = find(side, 1);
  const two = find(side, 2);
  for (const [what, key] of [
    ["wall", "wall"],
    ["wall less the main thread's wait for a CPU", "lessWait"],
  ] as const) {
    const r = ratio(two[key], one[key]);
    rows.push([side, what, fmt(median(one[key])), fmt(median(two[key])), fmt(median(r), 3), range(r)]);
  }
}
const againstBaseline = ratio(find("this", 2).lessWait, find("baseline", 2).lessWait);
const lines = [
  "# Two threads against one when decoding, this checkout against a baseline",
  "",
  ...machineLines(
    `npx node bench/threads-ab.ts --baseline ${given} --file ${file} --rounds ${rounds}${outFile ? ` --out ${outFile}` : ""}${toFile ? ` --to ${toFile}` : ""}`,
  ),
  codeLine(),
  `- ${contentionNote(waitStart, elapsed)}`,
  `- ${rounds} rounds; ${fmt(elapsed / 1000, 0)} s in all`,
  "",
  toFile
    ? `\`mmh -d -q -T N -o ${toFile} -f ${file}\` (the output file deleted before each run), medians over rounds; ratios per round, then their median.`
    : `\`mmh -d -q -T N -c ${file} > /dev/null\`, medians over rounds; ratios per round, then their median.`,
  "",
  table(["checkout", "time", "-T 1 ms", "-T 2 ms", "T2/T1", "range"], rows),
  "",
  `-T 2, wall less the main thread's wait, this checkout over the baseline: median ${fmt(median(againstBaseline), 3)} (${range(againstBaseline)}; ${againstBaseline.filter((x) => x < 1).length} of ${rounds} rounds below 1).`,
  `Main thread CPU ms, -T 1 / -T 2: baseline ${fmt(median(find("baseline", 1).mainCpu))} / ${fmt(median(find("baseline", 2).mainCpu))}, this ${fmt(median(find("this", 1).mainCpu))} / ${fmt(median(find("this", 2).mainCpu))}.`,
  "",
];
console.log(lines.join("\n"));
if (outFile) writeReport(outFile, lines);
