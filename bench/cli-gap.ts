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
 *   options: --runs N (calls per child, default 4), --rounds N (default 5), --out FILE,
 *   --pre-mib N (rows beside the others, interleaved with them, whose child first codes the
 *   first N MiB of its input, as a safetensors file of its own, before the timed calls:
 *   what of the cold call's excess such a small call takes out, and what it costs; "pre"
 *   columns)
 */
import "./lib/help.ts";
import { spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { codeLine, root, run, writeReport } from "./lib/commands.ts";
import { argValue, contentionNote, cpuWaitMicros, fmt, machineLines, median, table } from "./lib/report.ts";

const runs = Number(argValue("--runs") ?? 4);
const rounds = Number(argValue("--rounds") ?? 5);
const outFile = argValue("--out") ?? join(root, "bench", "results", "cli-gap.md");
const preMib = Number(argValue("--pre-mib") ?? 0);
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
const [entry, op, file, runs, pre] = process.argv.slice(1);
const { closeSync, openSync, writeSync } = await import("node:fs");
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const now = () => Number(process.hrtime.bigint()) / 1e6;
let t = now(), c = cpu();
const lib = await import(entry);
const out = { import: [now() - t, cpu() - c], calls: [] };
const fd = openSync("/dev/null", "w");
const files = pre ? [pre] : [];
for (let i = 0; i < Number(runs); i++) files.push(file);
for (const f of files) {
  t = now(); c = cpu();
  const pieces = op === "c"
    ? lib.compressFileStream(f, { threads: 1, reuse: true })
    : lib.decompressFileStream(f, { threads: 1, reuse: true, exclusive: true });
  for await (const piece of pieces) for (let at = 0; at < piece.length; ) at += writeSync(fd, piece, at);
  out.calls.push([now() - t, cpu() - c]);
}
closeSync(fd);
console.log(JSON.stringify(out));
`;

interface Row {
  import: [number, number][];
  pre: [number, number][];
  cold: [number, number][];
  warm: [number, number][];
}
const rows = new Map<string, Row>();
/** The first `mib` MiB of a one-tensor safetensors file `input`, as a file of its own. */
function prefixOf(input: string, mib: number): string {
  const fd = openSync(input, "r");
  const head = Buffer.alloc(8);
  readSync(fd, head, 0, 8, 0);
  const json = Buffer.alloc(Number(head.readBigUInt64LE(0)));
  readSync(fd, json, 0, json.length, 8);
  const tensors = JSON.parse(json.toString("utf8")) as Record<string, { dtype: string }>;
  const dtype = Object.entries(tensors).find(([name]) => name !== "__metadata__")![1].dtype;
  const bytes = mib << 20;
  const width = dtype === "F32" ? 4 : 2;
  const body = Buffer.alloc(bytes);
  readSync(fd, body, 0, bytes, 8 + json.length);
  closeSync(fd);
  let header = JSON.stringify({ weights: { dtype, shape: [bytes / width], data_offsets: [0, bytes] } });
  header += " ".repeat((8 - (header.length % 8)) % 8);
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(header.length));
  const out = join(work, `${basename(input, ".safetensors")}-${mib}m.safetensors`);
  writeFileSync(out, Buffer.concat([size, Buffer.from(header), body]));
  return out;
}

const jobs: { key: string; op: "c" | "d"; file: string; pre: string }[] = [];
for (const input of inputs) {
  const mmh = join(work, `${basename(input)}.mmh`);
  run(process.execPath, [join(root, "bin", "mmh.js"), "-q", "-f", "-T", "1", input, "-o", mmh]);
  let preC = "";
  let preD = "";
  if (preMib > 0) {
    preC = prefixOf(input, preMib);
    preD = `${preC}.mmh`;
    run(process.execPath, [join(root, "bin", "mmh.js"), "-q", "-f", "-T", "1", preC, "-o", preD]);
  }
  jobs.push({ key: `-T 1 -c ${basename(input)}`, op: "c", file: input, pre: "" });
  jobs.push({ key: `-d -T 1 -c ${basename(input)}.mmh`, op: "d", file: mmh, pre: "" });
  if (preMib > 0) {
    const after = ` (after ${preMib} MiB)`;
    jobs.push({ key: `-T 1 -c ${basename(input)}${after}`, op: "c", file: input, pre: preC });
    jobs.push({ key: `-d -T 1 -c ${basename(input)}.mmh${after}`, op: "d", file: mmh, pre: preD });
  }
}
const startWait = cpuWaitMicros();
const started = Date.now();
for (let round = 0; round < rounds; round++) {
  process.stderr.write(`round ${round + 1}/${rounds}\r`);
  for (const job of round % 2 === 0 ? jobs : [...jobs].reverse()) {
    const r = spawnSync(
      process.execPath,
      ["--input-type=module", "-e", CHILD, library, job.op, job.file, String(runs), job.pre],
      {
        encoding: "utf8",
      },
    );
    if (r.status !== 0) {
      console.error(`cli-gap: ${job.key} failed:\n${r.stderr}`);
      process.exit(1);
    }
    const got = JSON.parse(r.stdout) as { import: [number, number]; calls: [number, number][] };
    const row = rows.get(job.key) ?? { import: [], pre: [], cold: [], warm: [] };
    row.import.push(got.import);
    const calls = job.pre ? got.calls.slice(1) : got.calls;
    if (job.pre) row.pre.push(got.calls[0]!);
    row.cold.push(calls[0]!);
    const later = calls.slice(1);
    row.warm.push([median(later.map((x) => x[0])), median(later.map((x) => x[1]))]);
    rows.set(job.key, row);
  }
}
const m = (pairs: [number, number][], i: 0 | 1) => fmt(median(pairs.map((p) => p[i])), 1);
const reproduce = `npx node bench/cli-gap.ts --inputs ${inputs.join(",")}${preMib ? ` --pre-mib ${preMib}` : ""}${argValue("--runs") ? ` --runs ${runs}` : ""}${argValue("--rounds") ? ` --rounds ${rounds}` : ""}`;
writeReport(outFile, [
  "# The command's own cost: the same work in a process already up",
  "",
  ...machineLines(reproduce),
  codeLine(),
  `- ${rounds} rounds, each a fresh child per command (one after another, the order reversed every other round), ${runs} calls per child; medians over rounds. ${contentionNote(startWait, Date.now() - started)}`,
  "",
  `Milliseconds, wall clock / CPU time of the whole child process (all threads). import: \`await import(dist/index.js)\`; cold: the first call in the child (what the command's one call pays: compiling, tiering up, first-touch memory)${preMib ? `, or in the rows "after ${preMib} MiB" the first call on the whole input after a call on its first ${preMib} MiB (its own safetensors file, or that coded), made first in the same child and timed apart (pre)` : ""}; warm: the median of the later calls. Output to /dev/null with writeSync, as the command writes standard output.`,
  "",
  table(
    [
      "call (as the command)",
      "import wall",
      "import CPU",
      ...(preMib ? ["pre wall", "pre CPU"] : []),
      "cold wall",
      "cold CPU",
      "warm wall",
      "warm CPU",
    ],
    [...rows].map(([key, r]) => [
      `\`${key}\``,
      m(r.import, 0),
      m(r.import, 1),
      ...(preMib ? (r.pre.length ? [m(r.pre, 0), m(r.pre, 1)] : ["", ""]) : []),
      m(r.cold, 0),
      m(r.cold, 1),
      m(r.warm, 0),
      m(r.warm, 1),
    ]),
  ),
  "",
]);
