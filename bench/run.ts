/**
 * Runs every benchmark in turn (`npm run bench`), each in its own Node process so that
 * one's memory and JIT state cannot affect the next. Each writes its results file in
 * bench/results/.
 *
 *   npm run bench             full runs (about 10 minutes; needs about 3 GiB of memory and,
 *                             for targets.ts, about 4 GiB of free disk in .bench-data/)
 *   npm run bench -- --quick  small inputs, nothing written: a check that all of them work
 *   npm run bench -- --scale  also scale.ts, the 8 GiB "files larger than memory" run (about
 *                             25 GiB of free disk and 10 to 20 minutes more; with --quick, its
 *                             512 MiB smoke test). Skipped without --scale.
 */
import "./lib/help.ts";
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes("--quick");
const scale = process.argv.includes("--scale");

const benchmarks: [string, string[]][] = [
  ["chunk-size.ts", quick ? ["--quick"] : []],
  ["targets.ts", quick ? ["--quick"] : []],
  ["real-models.ts", quick ? ["--quick"] : []],
  ["quantised.ts", quick ? ["--quick"] : []],
  ["formats-raw.ts", quick ? ["--quick"] : []],
  ["floor.ts", quick ? ["--quick"] : []],
  ["context.ts", quick ? ["--quick"] : []],
  ["library-vs-cli.ts", quick ? ["--quick"] : []],
  ["serve-load.ts", quick ? ["--quick"] : []],
  ["serve-overhead.ts", quick ? ["--quick"] : []],
  ["kernels.ts", quick ? ["--quick"] : []],
  ["speed.ts", quick ? ["--quick"] : []],
  ["serve-memory.ts", quick ? ["--quick"] : []],
  ["startup.ts", quick ? ["--quick"] : []],
  ["threads-default.ts", quick ? ["--quick"] : []],
  ["deltas.ts", quick ? ["--quick"] : []],
  ["refs-cost.ts", quick ? ["--quick"] : []],
  ["readme-table.ts", quick ? ["--quick"] : []],
];
if (scale) benchmarks.push(["scale.ts", quick ? ["--quick"] : []]);
else console.log("(bench/scale.ts skipped: it needs about 25 GiB of free disk; run it with --scale)");

let failed = 0;
for (const [script, args] of benchmarks) {
  console.log(`\n=== bench/${script} ${args.join(" ")}`);
  const started = performance.now();
  const result = spawnSync(process.execPath, [join(here, script), ...args], { stdio: "inherit" });
  const seconds = ((performance.now() - started) / 1000).toFixed(0);
  if (result.status !== 0) {
    failed++;
    console.error(`bench/${script} failed (${result.status ?? result.signal}) after ${seconds} s`);
  } else {
    console.log(`=== bench/${script} done in ${seconds} s`);
  }
}
process.exitCode = failed > 0 ? 1 : 0;
