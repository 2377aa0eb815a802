/**
 * Where a whole `mmh -T 1 -c` / `mmh -d -T 1 -c` run spends its time, against the same work
 * in a process that is already up: each input is coded in a fresh child process by the
 * calls the command makes (compressFileStream with `reuse`; decompressFileStream with
 * `reuse` and `exclusive`), each piece written to /dev/null with writeSync as the command
 * writes standard output, `--runs` times in a row. Per child: the import of the built
 * library (dist/index.js), the first call (cold: V8 compiles and tiers up as the command's
 * one call does) and the median of the later calls (warm), in wall clock and CPU time of
 * the whole process (process.cpuUsage: every thread). Children run one after another,
 * `--rounds` times, medians over rounds. bench/cli-ab.ts measures the whole command on
 * the same inputs; the difference between its figures and the cold call is the process's
 * own cost (Node's start, the command's modules, exit).
 *
 *   npx node bench/cli-gap.ts --inputs F1,F2,...   writes results/cli-gap.md
 *   options: --runs N (calls per child, default 4), --rounds N (default 5), --out FILE
 */
import "./lib/help.ts";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { basename, join } from "node:path";
import { codeLine, root, run, writeReport } from "./lib/commands.ts";
import { argValue, contentionNote, cpuWaitMicros, fmt, machineLines, median, table } from "./lib/report.ts";

const runs = Number(argValue("--runs") ?? 4);
const rounds = Number(argValue("--rounds") ?? 5);
const outFile = argValue("--out") ?? join(root, "bench", "results", "cli-gap.md");
const inputs = (argValue("--inputs") ?? "").split(",").filter(Boolean);
if (inputs.length === 0) {
  console.error("cli-gap: --inputs F1,F2,... (safetensors files) is required");
  process.exit(2);
}
const work = join(root, ".bench-data", "cli-gap");
mkdirSync(work, { recursive: true });
const library = join(root, "dist", "index.js");
if (!existsSync(library)) {
  console.error("cli-gap: dist/index.js not found (run npm run build)");
  process.exit(2);
}

/** The child: imports the library, then codes `file` `runs` times; prints JSON. */
const CHILD = `
const [entry, op, file, runs] = process.argv.slice(1);
const { closeSync, openSync, writeSync } = await import("node:fs");
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const now = () => Number(process.hrtime.bigint()) / 1e6;
let t = now(), c = cpu();
const lib = await import(entry);
const out = { import: [now() - t, cpu() - c], calls: [] };
const fd = openSync("/dev/null", "w");
for (let i = 0; i < Number(runs); i++) {
  t = now(); c = cpu();
  const pieces = op === "c"
    ? lib.compressFileStream(file, { threads: 1, reuse: true })
    : lib.decompressFileStream(file, { threads: 1, reuse: true, exclusive: true });
  for await (const piece of pieces) for (let at = 0; at < piece.length; ) at += writeSync(fd, piece, at);
  out.calls.push([now() - t, cpu() - c]);
}
closeSync(fd);
console.log(JSON.stringify(out));
`;

interface Row {
  import: [number, number][];
  cold: [number, number][];
  warm: [number, number][];
}
const rows = new Map<string, Row>();
const jobs: { key: string; op: "c" | "d"; file: string }[] = [];
for (const input of inputs) {
  const mmh = join(work, `${basename(input)}.mmh`);
  run(process.execPath, [join(root, "bin", "mmh.js"), "-q", "-f", "-T", "1", input, "-o", mmh]);
  jobs.push({ key: `-T 1 -c ${basename(input)}`, op: "c", file: input });
  jobs.push({ key: `-d -T 1 -c ${basename(input)}.mmh`, op: "d", file: mmh });
}
const startWait = cpuWaitMicros();
const started = Date.now();
for (let round = 0; round < rounds; round++) {
  process.stderr.write(`round ${round + 1}/${rounds}\r`);
  for (const job of round % 2 === 0 ? jobs : [...jobs].reverse()) {
    const r = spawnSync(
      process.execPath,
      ["--input-type=module", "-e", CHILD, library, job.op, job.file, String(runs)],
      {
        encoding: "utf8",
      },
    );
    if (r.status !== 0) {
      console.error(`cli-gap: ${job.key} failed:\n${r.stderr}`);
      process.exit(1);
    }
    const got = JSON.parse(r.stdout) as { import: [number, number]; calls: [number, number][] };
    const row = rows.get(job.key) ?? { import: [], cold: [], warm: [] };
    row.import.push(got.import);
    row.cold.push(got.calls[0]!);
    const later = got.calls.slice(1);
    row.warm.push([median(later.map((x) => x[0])), median(later.map((x) => x[1]))]);
    rows.set(job.key, row);
  }
}
const m = (pairs: [number, number][], i: 0 | 1) => fmt(median(pairs.map((p) => p[i])), 1);
const reproduce = `npx node bench/cli-gap.ts --inputs ${inputs.join(",")}${argValue("--runs") ? ` --runs ${runs}` : ""}${argValue("--rounds") ? ` --rounds ${rounds}` : ""}`;
writeReport(outFile, [
  "# The command's own cost: the same work in a process already up",
  "",
  ...machineLines(reproduce),
  codeLine(),
  `- ${rounds} rounds, each a fresh child per command (one after another, the order reversed every other round), ${runs} calls per child; medians over rounds. ${contentionNote(startWait, Date.now() - started)}`,
  "",
  "Milliseconds, wall clock / CPU time of the whole child process (all threads). import: `await import(dist/index.js)`; cold: the first call in the child (what the command's one call pays: compiling, tiering up, first-touch memory); warm: the median of the later calls. Output to /dev/null with writeSync, as the command writes standard output.",
  "",
  table(
    ["call (as the command)", "import wall", "import CPU", "cold wall", "cold CPU", "warm wall", "warm CPU"],
    [...rows].map(([key, r]) => [
      `\`${key}\``,
      m(r.import, 0),
      m(r.import, 1),
      m(r.cold, 0),
      m(r.cold, 1),
      m(r.warm, 0),
      m(r.warm, 1),
    ]),
  ),
  "",
]);
