/**
 * The library against the CLI: compressFile() / decompressFile() called from a plain
 * `node` process (no V8 flags) against the `mmh` command, on the same inputs, one thread.
 * MMH must not depend on V8 flags for its speed: bin/mmh.js used to turn V8's Maglev tier
 * off, which a program embedding the library does not do (docs/ENGINE.md).
 *
 *   npx node bench/library-vs-cli.ts            full run (about 3 minutes; writes results/library-vs-cli.md)
 *   npx node bench/library-vs-cli.ts --quick    small inputs, 2 runs, writes nothing
 *
 * Options: --runs N (timed runs after one warm-up round, default 5), --out FILE, --data DIR
 * (real safetensors files, default ../shared/data).
 *
 * Each input is coded by four commands, one after another in every round (interleaved, so
 * that a busy spell of the machine falls on all of them alike), wall clock with process
 * start:
 *   - cli: `node bin/mmh.js SRC -o DST -T 1 -q` (`-d` to decompress);
 *   - library: `node CHILD dist/index.js ...`, where CHILD is a three-line script calling
 *     compressFile(src, dst, { threads: 1 }) or decompressFile: the compiled code the CLI
 *     runs, imported by a program of its own;
 *   - library, src: the same importing src/index.ts, the TypeScript sources (the package's
 *     entry, "exports", is dist/),
 *     whose types node strips as it loads each module;
 *   - library, --no-maglev: the library row with V8's Maglev tier off, the flag the CLI
 *     used to set.
 * Every output is checked: each command's .mmh has the CLI's sha256, and each restored
 * file the input's.
 */
import "./lib/help.ts";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { basename, join } from "node:path";
import { codeLine, root, run, writeReport } from "./lib/commands.ts";
import {
  argValue,
  contentionNote,
  cpuWaitMicros,
  fmt,
  machineLines,
  median,
  spread,
  table,
} from "./lib/report.ts";

const quick = process.argv.includes("--quick");
const runs = Number(argValue("--runs") ?? (quick ? 2 : 5));
const outFile =
  argValue("--out") ?? (quick ? undefined : join(root, "bench", "results", "library-vs-cli.md"));
const dataDir = argValue("--data") ?? join(root, "..", "shared", "data");
const workDir = join(root, ".bench-data");
const node = process.execPath;
const cli = join(root, "bin", "mmh.js");
const child = join(workDir, "library-vs-cli-child.mjs");

/** The library caller: a plain script, run by a plain `node`. */
const CHILD_SOURCE = `const [entry, op, src, dst] = process.argv.slice(2);
const { compressFile, decompressFile } = await import(entry);
await (op === "compress" ? compressFile : decompressFile)(src, dst, { threads: 1 });
`;

interface Variant {
  name: string;
  /** The command line for an operation on src, writing dst. */
  args(op: Op, src: string, dst: string): string[];
}
type Op = "compress" | "decompress";

const distEntry = join(root, "dist", "index.js");
const srcEntry = join(root, "src", "index.ts");
const library = (entry: string, flags: string[]) => (op: Op, src: string, dst: string) => [
  ...flags,
  child,
  entry,
  op,
  src,
  dst,
];
const VARIANTS: Variant[] = [
  {
    name: "cli",
    args: (op, src, dst) => [cli, ...(op === "decompress" ? ["-d"] : []), src, "-o", dst, "-T", "1", "-q"],
  },
  { name: "library", args: library(distEntry, []) },
  { name: "library, src", args: library(srcEntry, []) },
  { name: "library, --no-maglev", args: library(distEntry, ["--no-maglev"]) },
];

function sha256(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/** `mmh gen ARGS -o .bench-data/NAME`, by the CLI itself. */
function gen(name: string, args: readonly string[]): string {
  const file = join(workDir, name);
  run(node, [cli, "gen", ...args, "-o", file, "-f", "-q"]);
  return file;
}

interface Input {
  label: string;
  file: string;
}

function inputs(): Input[] {
  const list: Input[] = [
    { label: `gen BF16 ${quick ? "16" : "256"} MiB`, file: "" },
    { label: `gen F32 ${quick ? "8" : "128"} MiB`, file: "" },
  ];
  list[0].file = gen(`lvc-bf16-${quick ? "16M" : "256M"}.safetensors`, [
    "--size",
    quick ? "16M" : "256M",
    "--dtype",
    "BF16",
  ]);
  list[1].file = gen(`lvc-f32-${quick ? "8M" : "128M"}.safetensors`, [
    "--size",
    quick ? "8M" : "128M",
    "--dtype",
    "F32",
  ]);
  if (existsSync(dataDir)) {
    for (const name of readdirSync(dataDir).sort()) {
      if (name.endsWith(".safetensors")) list.push({ label: name, file: join(dataDir, name) });
    }
  }
  return list;
}

interface Row {
  input: string;
  bytes: number;
  op: Op;
  /** Milliseconds of the timed runs, by variant name. */
  ms: Map<string, number[]>;
}

function measure(input: Input): Row[] {
  const base = join(workDir, `lvc-${basename(input.file)}`);
  const packed = (v: number) => `${base}.${v}.mmh`;
  const restored = (v: number) => `${base}.${v}.out`;
  const rows: Row[] = [];
  for (const op of ["compress", "decompress"] as const) {
    const row: Row = { input: input.label, bytes: statSync(input.file).size, op, ms: new Map() };
    for (const v of VARIANTS) row.ms.set(v.name, []);
    // Round 0 is a warm-up (page cache, first compile of the modules); it is not counted.
    for (let round = 0; round <= runs; round++) {
      VARIANTS.forEach((v, i) => {
        const src = op === "compress" ? input.file : packed(0);
        const dst = op === "compress" ? packed(i) : restored(i);
        rmSync(dst, { force: true });
        const ms = run(node, v.args(op, src, dst));
        if (round > 0) row.ms.get(v.name)?.push(ms);
      });
    }
    rows.push(row);
  }
  const want = sha256(packed(0));
  const content = sha256(input.file);
  VARIANTS.forEach((v, i) => {
    if (sha256(packed(i)) !== want)
      throw new Error(`${v.name}: its .mmh of ${input.label} differs from the CLI's`);
    if (sha256(restored(i)) !== content) throw new Error(`${v.name}: ${input.label} did not round-trip`);
    rmSync(packed(i), { force: true });
    rmSync(restored(i), { force: true });
  });
  return rows;
}

const started = performance.now();
const loadAtStart = loadavg();
const waitAtStart = cpuWaitMicros();
mkdirSync(workDir, { recursive: true });
writeFileSync(child, CHILD_SOURCE);
if (!existsSync(distEntry)) throw new Error("dist/ is missing: run `npm run build` first");

const rows: Row[] = [];
for (const input of inputs()) {
  console.log(`${input.label} ...`);
  rows.push(...measure(input));
}
// The generated inputs are made again on every run, from the current generator.
for (const name of readdirSync(workDir))
  if (name.startsWith("lvc-")) rmSync(join(workDir, name), { force: true });
const elapsed = performance.now() - started;

const others = VARIANTS.slice(1);
const body = rows.map((row) => {
  const cliMs = median(row.ms.get("cli") ?? []);
  return [
    row.input,
    row.op,
    `${fmt(cliMs)} (±${fmt(spread(row.ms.get("cli") ?? []) * 100)}%)`,
    ...others.flatMap((v) => {
      const ms = row.ms.get(v.name) ?? [];
      return [`${fmt(median(ms))} (±${fmt(spread(ms) * 100)}%)`, fmt(median(ms) / cliMs, 3)];
    }),
  ];
});
const head = ["input", "operation", "cli ms", ...others.flatMap((v) => [`${v.name} ms`, `${v.name} / cli`])];

const cmd = `npx node bench/library-vs-cli.ts${quick ? " --quick" : ""}${argValue("--runs") ? ` --runs ${runs}` : ""}`;
const lines = [
  "# The library against the CLI, without V8 flags",
  "",
  ...machineLines(cmd),
  codeLine(),
  `- Load average at start: ${loadAtStart.map((l) => fmt(l, 2)).join(", ")}. Took ${fmt(elapsed / 1000)} s. ${contentionNote(waitAtStart, elapsed)}`,
  "",
  `Wall-clock milliseconds with process start, medians of ${runs} runs after a warm-up round; the four commands run one after another in every round. In brackets: interquartile range over the median. A ratio above 1 is slower than the CLI.`,
  "",
  table(head, body),
  "",
  "Commands (SRC the input, or the CLI's .mmh of it to decompress; DST a new file each run):",
  "",
  "- cli: `node bin/mmh.js SRC -o DST -T 1 -q`, and `node bin/mmh.js -d SRC -o DST -T 1 -q`",
  "- library: `node CHILD dist/index.js compress SRC DST` (or `decompress`)",
  "- library, src: `node CHILD src/index.ts compress SRC DST`: the TypeScript sources (what a checkout's tests import; the package's entry is dist/), types stripped as they load",
  "- library, --no-maglev: `node --no-maglev CHILD dist/index.js compress SRC DST`: the flag bin/mmh.js used to set",
  "",
  "CHILD, a plain script (`node` is Node 24, run without flags but where shown):",
  "",
  "```js",
  CHILD_SOURCE.trimEnd(),
  "```",
  "",
  "Every command's .mmh had the same sha256 as the CLI's, and every restored file the input's.",
  "",
];
console.log(lines.join("\n"));
writeReport(outFile, lines);
