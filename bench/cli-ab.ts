/**
 * Whole-process time of the mmh command, this checkout against another (`--baseline DIR`,
 * a built checkout), with zstd in the same run: what a shell user gets, start-up included.
 *
 * Commands, each run from this checkout's bin/mmh.js and from DIR/bin/mmh.js (what
 * bench/speed.ts times: a checkout's command, which checks dist/ against src/ first),
 * output to /dev/null, standard error to a pipe, as bench/speed.ts runs them:
 *   - `mmh --version`, against `node -e 0`;
 *   - `mmh -c` and `mmh -d -c` of 1 KiB (the first KiB of the first input);
 *   - for each input: `mmh -T 1 -c FILE` against `zstd -3 --single-thread -c FILE`, and
 *     `mmh -d -T 1 -c FILE.mmh` against `zstd -d -c FILE.zst`.
 * Every command once per round, the order reversed every other round, so a busy spell of
 * the shared machine falls on all of them alike. Per command: median wall clock, median
 * CPU time (user + system of all its threads, from wait4), median minor page faults, and
 * for the 64 MiB rows each checkout's median ratio of zstd's time to its own (1.0x: as
 * fast as zstd). Both checkouts use the same Node and the same compile cache directory
 * (each file has its own entry), warmed by a first run of every command.
 *
 * Inputs: --inputs F1,F2,... (safetensors files), default the 64 MiB BF16, F16 and F32
 * sets bench/speed.ts makes in .bench-data/speed/ (run `npx node bench/speed.ts --sizes
 * 64M` once), else 64 MiB of real-derived BF16 made here (bench/lib/tiled.ts).
 *
 *   npx node bench/cli-ab.ts --baseline DIR           writes results/cli-ab.md
 *   npx node bench/cli-ab.ts --baseline DIR --quick   5 rounds, writes nothing
 *   options: --rounds N (default 21), --inputs LIST, --data DIR, --out FILE
 */
import "./lib/help.ts";
import { spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { codeLine, root, writeReport } from "./lib/commands.ts";
import {
  argValue,
  baselineArg,
  contentionNote,
  cpuWaitMicros,
  fmt,
  machineLines,
  median,
  table,
  zstdCliVersion,
} from "./lib/report.ts";
import { tiledFile } from "./lib/tiled.ts";

const quick = process.argv.includes("--quick");
const rounds = Number(argValue("--rounds") ?? (quick ? 5 : 21));
const baseline = baselineArg("cli-ab", "a built checkout of the commit to compare with");
const outFile = argValue("--out") ?? (quick ? undefined : join(root, "bench", "results", "cli-ab.md"));
const dataDir = argValue("--data") ?? join(root, "..", "shared", "data");
const work = join(root, ".bench-data", "cli-ab");
const node = process.execPath;
const here = join(root, "bin", "mmh.js");
const there = join(baseline.dir, "bin", "mmh.js");
if (!existsSync(there)) {
  console.error(`cli-ab: ${there} not found (--baseline names a built checkout)`);
  process.exit(2);
}
mkdirSync(work, { recursive: true });

function defaultInputs(): string[] {
  const speed = join(root, ".bench-data", "speed");
  const made = ["BF16", "F16", "F32"].map((d) => join(speed, `${d}-${64 << 20}.safetensors`));
  if (made.every((f) => existsSync(f))) return made;
  return [tiledFile(dataDir, work, "BF16", 64 << 20)];
}
const inputs = (argValue("--inputs")?.split(",") ?? defaultInputs()).filter(Boolean);

/** One run's measures: wall clock (ms), CPU time of the process and its threads (ms), minor page faults. */
interface Measure {
  wall: number;
  cpu: number;
  faults: number;
}

/**
 * Runs `argv` with standard output to /dev/null and standard error to a pipe (as
 * bench/speed.ts does), through a small Python wrapper that reports wait4's resource usage
 * of the child alone (Node's spawnSync gives none).
 */
const WAIT4 = [
  "import os, sys, time",
  "null = os.open('/dev/null', os.O_WRONLY)",
  "t = time.perf_counter()",
  "pid = os.fork()",
  "if pid == 0:",
  "    os.dup2(null, 1)",
  "    os.execv(sys.argv[1], sys.argv[1:])",
  "_, status, ru = os.wait4(pid, 0)",
  "w = time.perf_counter() - t",
  "print(f'MEASURE {status} {w * 1000:.3f} {(ru.ru_utime + ru.ru_stime) * 1000:.3f} {ru.ru_minflt}', file=sys.stderr)",
].join("\n");

function measure(argv: readonly string[]): Measure {
  const r = spawnSync("python3", ["-c", WAIT4, ...argv], { cwd: root, encoding: "utf8" });
  const m = /MEASURE (\d+) ([\d.]+) ([\d.]+) (\d+)\s*$/.exec(r.stderr ?? "");
  if (r.status !== 0 || !m || m[1] !== "0") {
    console.error(`cli-ab: ${argv.join(" ")} failed:\n${r.stderr}`);
    process.exit(1);
  }
  return { wall: Number(m[2]), cpu: Number(m[3]), faults: Number(m[4]) };
}

// The 1 KiB input and the coded files each side decodes (each checkout its own .mmh, so a
// format change between them is measured as each decodes its own output).
const small = join(work, "1k.bin");
{
  const buf = Buffer.alloc(1024);
  const fd = openSync(inputs[0], "r");
  readSync(fd, buf, 0, 1024, 0);
  closeSync(fd);
  writeFileSync(small, buf);
}
const encodeTo = (bin: string, file: string, out: string): string => {
  const r = spawnSync(node, [bin, "-q", "-T", "1", "-c", file], { maxBuffer: 2 ** 31 });
  if (r.status !== 0) throw new Error(`${bin} -c ${file}: ${r.stderr}`);
  writeFileSync(out, r.stdout);
  return out;
};
const zstdTo = (file: string, out: string): string => {
  const r = spawnSync("zstd", ["-3", "--single-thread", "-q", "-f", file, "-o", out]);
  if (r.status !== 0) throw new Error(`zstd ${file}: ${r.stderr}`);
  return out;
};

interface Row {
  op: string;
  /** For the ratio to zstd: the zstd command's key. */
  zstd?: string;
  argv: Record<"here" | "base", string[]>;
}
const sides = { here, base: there };
const both = (op: string, args: (side: "here" | "base") => string[], zstd?: string): Row => ({
  op,
  zstd,
  argv: {
    here: [node, sides.here, ...args("here")],
    base: [node, sides.base, ...args("base")],
  },
});
const rows: Row[] = [
  both("--version", () => ["--version"]),
  both("-c 1 KiB", () => ["-q", "-c", small]),
  both("-d -c 1 KiB", (side) => [
    "-q",
    "-d",
    "-c",
    encodeTo(sides[side], small, join(work, `1k.${side}.mmh`)),
  ]),
];
const zstdRuns: Record<string, string[]> = { "node -e 0": [node, "-e", "0"] };
for (const file of inputs) {
  const name = basename(file, ".safetensors");
  const zst = zstdTo(file, join(work, `${name}.zst`));
  zstdRuns[`zstd -3 ${name}`] = ["/usr/bin/env", "zstd", "-3", "--single-thread", "-q", "-c", file];
  zstdRuns[`zstd -d ${name}`] = ["/usr/bin/env", "zstd", "-d", "-q", "-c", zst];
  rows.push(both(`-T 1 -c ${name}`, () => ["-q", "-T", "1", "-c", file], `zstd -3 ${name}`));
  rows.push(
    both(
      `-d -T 1 -c ${name}`,
      (side) => ["-q", "-d", "-T", "1", "-c", encodeTo(sides[side], file, join(work, `${name}.${side}.mmh`))],
      `zstd -d ${name}`,
    ),
  );
}

// Every command once first: the compile cache holds both checkouts' code before timing.
for (const row of rows) for (const side of ["here", "base"] as const) measure(row.argv[side]);

const runs = new Map<string, Measure[]>();
const add = (key: string, m: Measure) => runs.set(key, [...(runs.get(key) ?? []), m]);
const jobs: [string, string[]][] = [
  ...Object.entries(zstdRuns),
  ...rows.flatMap((row): [string, string[]][] => [
    [`${row.op}|here`, row.argv.here],
    [`${row.op}|base`, row.argv.base],
  ]),
];
const waitAt = cpuWaitMicros();
const startedAt = performance.now();
for (let round = 0; round < rounds; round++) {
  const order = round % 2 === 0 ? jobs : [...jobs].reverse();
  for (const [key, argv] of order) add(key, measure(argv));
  process.stderr.write(`round ${round + 1}/${rounds}\r`);
}
process.stderr.write("\n");
const contention = contentionNote(waitAt, performance.now() - startedAt);

const med = (key: string, field: keyof Measure) => median((runs.get(key) ?? []).map((m) => m[field]));
/** The median over rounds of zstd's wall time over this command's, in the same round. */
const ratio = (key: string, zstd: string) => {
  const a = runs.get(key) ?? [];
  const z = runs.get(zstd) ?? [];
  return median(a.map((m, i) => z[i].wall / m.wall));
};
const body = rows.map((row) => {
  const h = `${row.op}|here`;
  const b = `${row.op}|base`;
  return [
    `mmh ${row.op}`,
    fmt(med(b, "wall"), 1),
    fmt(med(h, "wall"), 1),
    fmt(med(b, "cpu"), 1),
    fmt(med(h, "cpu"), 1),
    fmt(med(b, "faults")),
    fmt(med(h, "faults")),
    row.zstd ? `${fmt(ratio(b, row.zstd), 2)}x / ${fmt(ratio(h, row.zstd), 2)}x` : "",
  ];
});
const refs = Object.keys(zstdRuns).map((key) => [
  key,
  fmt(med(key, "wall"), 1),
  fmt(med(key, "cpu"), 1),
  fmt(med(key, "faults")),
]);

const command = [
  `npx node bench/cli-ab.ts --baseline ${baseline.given}`,
  ...(argValue("--rounds") ? [`--rounds ${rounds}`] : []),
  ...(argValue("--inputs") ? [`--inputs ${argValue("--inputs")}`] : []),
].join(" ");
const lines = [
  "# Whole-process CLI time, A/B against a baseline checkout",
  "",
  ...machineLines(command),
  codeLine(),
  `- Baseline: ${baseline.given} (its bin/mmh.js)`,
  `- zstd: ${zstdCliVersion()}`,
  `- Inputs: ${inputs.map((f) => `${basename(f)} (${fmt(Number(spawnSync("stat", ["-c", "%s", f], { encoding: "utf8" }).stdout) / 2 ** 20, 1)} MiB)`).join(", ")}; 1 KiB: the first KiB of ${basename(inputs[0])}`,
  `- ${rounds} rounds, every command once per round, order reversed every other round; medians. ${contention}`,
  "",
  "Wall clock and CPU time (user + system, all threads) in ms, minor page faults; output to /dev/null, standard error to a pipe. Ratio: zstd's wall time over mmh's in the same round (median), baseline / this checkout (1.0x: as fast as zstd).",
  "",
  table(
    ["command", "wall base", "wall this", "CPU base", "CPU this", "faults base", "faults this", "vs zstd"],
    body,
  ),
  "",
  "References in the same run:",
  "",
  table(["command", "wall", "CPU", "faults"], refs),
  "",
];
console.log(lines.join("\n"));
writeReport(outFile, lines);
