/**
 * V8's tiers against the command's one call: `mmh -T 1 -c FILE` and `mmh -d -T 1 -c
 * FILE.mmh` of this checkout run under node with each set of V8 flags below, and a run
 * where a small file is coded first in the same process is left to bench/cli-gap.ts
 * (`--pre-mib`). Each flag set asks whether the first call's excess over later ones
 * (bench/results/cli-gap.md) is V8 running baseline code for too long:
 *   - WebAssembly: TurboFan only (`--no-liftoff`), every function tiered up eagerly
 *     (`--no-wasm-dynamic-tiering`), or after less work (`--wasm-tiering-budget`);
 *   - JavaScript: Maglev and TurboFan sooner, OSR sooner, Sparkplug at once, feedback
 *     vectors at the first call;
 *   - a young generation that need not grow (`--min-semi-space-size`).
 * Each set of flags has a compile cache directory of its own (Node already keeps apart the
 * entries made under other V8 flags, in a subdirectory per hash of the flags), its entries
 * written by a first run of every command before the timed rounds. Every
 * command once per round, the order reversed every other round; CPU time is user +
 * system of all the child's threads (wait4), medians and the median per-round ratio to
 * the run without flags.
 *
 *   npx node bench/cli-flags.ts --inputs F1,F2,...   writes results/cli-flags.md
 *   options: --rounds N (default 21), --out FILE
 */
import "./lib/help.ts";
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { basename, join } from "node:path";
import { codeLine, root, run, writeReport } from "./lib/commands.ts";
import { argValue, contentionNote, cpuWaitMicros, fmt, machineLines, median, table } from "./lib/report.ts";

const rounds = Number(argValue("--rounds") ?? 21);
const outFile = argValue("--out") ?? join(root, "bench", "results", "cli-flags.md");
const inputs = (argValue("--inputs") ?? "").split(",").filter(Boolean);
if (inputs.length === 0) {
  console.error("cli-flags: --inputs F1,F2,... (safetensors files) is required");
  process.exit(2);
}
const work = join(root, ".bench-data", "cli-flags");
mkdirSync(work, { recursive: true });
const node = process.execPath;
const mmh = join(root, "bin", "mmh.js");

const FLAGS: [string, string[]][] = [
  ["none", []],
  ["--no-liftoff", ["--no-liftoff"]],
  ["--no-wasm-dynamic-tiering", ["--no-wasm-dynamic-tiering"]],
  ["--wasm-tiering-budget=1000000", ["--wasm-tiering-budget=1000000"]],
  [
    "Maglev at 100 calls, TurboFan at 1000",
    ["--invocation-count-for-maglev=100", "--invocation-count-for-turbofan=1000"],
  ],
  [
    "OSR sooner (Maglev 20, TurboFan 100)",
    ["--invocation-count-for-maglev-osr=20", "--invocation-count-for-osr=100"],
  ],
  ["--always-sparkplug", ["--always-sparkplug"]],
  ["--no-lazy-feedback-allocation", ["--no-lazy-feedback-allocation"]],
  ["--min-semi-space-size=16", ["--min-semi-space-size=16"]],
];

/** Runs `argv` with standard output to /dev/null; wait4's CPU time of the child alone. */
const WAIT4 = [
  "import os, sys",
  "null = os.open('/dev/null', os.O_WRONLY)",
  "pid = os.fork()",
  "if pid == 0:",
  "    os.dup2(null, 1)",
  "    os.execv(sys.argv[1], sys.argv[1:])",
  "_, status, ru = os.wait4(pid, 0)",
  "print(f'MEASURE {status} {(ru.ru_utime + ru.ru_stime) * 1000:.3f}', file=sys.stderr)",
].join("\n");

function cpuOf(argv: readonly string[], cache: string): number {
  const r = spawnSync("python3", ["-c", WAIT4, ...argv], {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, XDG_CACHE_HOME: cache },
  });
  const m = /MEASURE (\d+) ([\d.]+)\s*$/.exec(r.stderr ?? "");
  if (r.status !== 0 || !m || m[1] !== "0") {
    console.error(`cli-flags: ${argv.join(" ")} failed:\n${r.stderr}`);
    process.exit(1);
  }
  return Number(m[2]);
}

interface Job {
  command: string;
  flags: string;
  argv: string[];
  /** The compile cache's home for these flags (XDG_CACHE_HOME, see bin/cache.js). */
  cache: string;
}
const jobs: Job[] = [];
for (const input of inputs) {
  const coded = join(work, `${basename(input)}.mmh`);
  run(node, [mmh, "-q", "-f", "-T", "1", input, "-o", coded]);
  for (const [command, tail] of [
    [`-T 1 -c ${basename(input)}`, ["-T", "1", "-c", input]],
    [`-d -T 1 -c ${basename(input)}.mmh`, ["-d", "-T", "1", "-c", coded]],
  ] as const) {
    FLAGS.forEach(([name, flags], i) => {
      const cache = join(work, `cache-${i}`);
      jobs.push({ command, flags: name, argv: [node, ...flags, mmh, "-q", ...tail], cache });
    });
  }
}
// A first run of every command writes the compile cache's entries, one cache per set of flags.
for (const job of jobs) cpuOf(job.argv, job.cache);
const cpu = new Map<Job, number[]>(jobs.map((job) => [job, []]));
const startWait = cpuWaitMicros();
const started = Date.now();
for (let round = 0; round < rounds; round++) {
  process.stderr.write(`round ${round + 1}/${rounds}\r`);
  for (const job of round % 2 === 0 ? jobs : [...jobs].reverse())
    cpu.get(job)!.push(cpuOf(job.argv, job.cache));
}
const rows = jobs.map((job) => {
  const base = jobs.find((j) => j.command === job.command && j.flags === "none")!;
  const mine = cpu.get(job)!;
  const theirs = cpu.get(base)!;
  return [
    `\`${job.command}\``,
    job.flags,
    fmt(median(mine), 1),
    `${fmt(median(mine.map((c, i) => c / theirs[i]!)), 3)}x`,
  ];
});
const reproduce = `npx node bench/cli-flags.ts --inputs ${inputs.join(",")}${argValue("--rounds") ? ` --rounds ${rounds}` : ""}`;
writeReport(outFile, [
  "# V8's tiers against the command's one call",
  "",
  ...machineLines(reproduce),
  codeLine(),
  `- ${rounds} rounds, every command once per round under each set of V8 flags (given on node's command line, each set with a compile cache of its own), the order reversed every other round. ${contentionNote(startWait, Date.now() - started)}`,
  "",
  "CPU time of the whole process (user + system, all threads, from wait4), milliseconds, median over rounds; ratio: the median per-round ratio to the same command without flags (below 1: the flags save CPU).",
  "",
  table(["command", "V8 flags", "CPU ms", "ratio"], rows),
  "",
]);
