/**
 * The README's performance table, produced by `mmh bench`: runs it on the bundled samples
 * and the real weights in ../shared/data (or reads a saved `mmh bench --json` report), then
 * writes bench/results/mmh-bench.md and replaces the README's table between its markers.
 *
 *   npx node bench/readme-table.ts                 run mmh bench (3 runs), update both
 *   npx node bench/readme-table.ts --from R.json   render a saved report instead
 *   npx node bench/readme-table.ts --quick         1 run, print the table, write nothing
 *   options: --data DIR (default ../shared/data), --gen KIND[:SIZE] (passed on)
 */
import "./lib/help.ts";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { BenchReport } from "../src/tools/bench.ts";
import { benchMarkdown } from "../src/tools/bench-report.ts";
import { root } from "./lib/commands.ts";
import { argValue } from "./lib/report.ts";

const quick = process.argv.includes("--quick");
const from = argValue("--from");
const START = "<!-- mmh-bench:start -->";
const END = "<!-- mmh-bench:end -->";

function run(): BenchReport {
  const data = argValue("--data") ?? join(root, "..", "shared", "data");
  const real = readdirSync(data)
    .filter((f) => f.endsWith(".safetensors"))
    .map((f) => join(data, f));
  const gen = argValue("--gen");
  const args = [
    "bench",
    "samples",
    ...real,
    ...(gen ? ["--gen", gen] : []),
    "--runs",
    quick ? "1" : "3",
    "--json",
    "-q",
  ];
  console.error(`node bin/mmh.js ${args.join(" ")}`);
  const r = spawnSync(process.execPath, [join(root, "bin", "mmh.js"), ...args], {
    cwd: root,
    maxBuffer: 1 << 28,
    stdio: ["ignore", "pipe", "inherit"],
  });
  if (r.status !== 0) throw new Error(`mmh bench failed (${r.status ?? r.signal})`);
  return JSON.parse(r.stdout.toString("utf8")) as BenchReport;
}

const report = from ? (JSON.parse(readFileSync(from, "utf8")) as BenchReport) : run();
const table = benchMarkdown(report);
if (quick) {
  process.stdout.write(table);
} else {
  writeFileSync(
    join(root, "bench", "results", "mmh-bench.md"),
    `# mmh bench: the README's performance table\n\nWritten by \`npx node bench/readme-table.ts${from ? " --from REPORT.json" : ""}\` from one \`mmh bench\` run.\n\n${table}`,
  );
  const readmePath = join(root, "README.md");
  const readme = readFileSync(readmePath, "utf8");
  const a = readme.indexOf(START);
  const b = readme.indexOf(END);
  if (a < 0 || b < a) throw new Error(`README.md has no ${START} ... ${END} markers`);
  writeFileSync(readmePath, `${readme.slice(0, a + START.length)}\n${table}${readme.slice(b)}`);
  // The README is formatted by Biome (tables padded), as `npm run lint` checks it.
  spawnSync(
    join(root, "node_modules", "@biomejs", "cli-linux-x64", "biome"),
    ["format", "--write", readmePath],
    {
      stdio: "inherit",
    },
  );
  console.error("wrote bench/results/mmh-bench.md and README.md's table");
}
