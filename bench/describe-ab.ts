/**
 * Recognising the real ONNX and TFLite files of bench/floor.ts's corpus (the pinned npm
 * packages of FLOOR_PACKAGES: PaddleOCR and Silero ONNX, MediaPipe TFLite), this checkout
 * against a baseline checkout, in one process: describeSource (src/engine/describe.ts)
 * of each file from memory, as compress() describes it, CPU time (process.cpuUsage),
 * rounds interleaved (the baseline first in every other round). Per package: the fastest
 * round and the median of each side, and the speed-up (baseline / this). Both sides must
 * give the same description (regions, tensors, metadata) of every file.
 *
 *   npx node bench/describe-ab.ts --baseline DIR [--rounds 30] [--out FILE]
 *
 * DIR is another checkout with node_modules. The report goes to
 * bench/results/describe-ab.md unless --out says otherwise.
 */
import "./lib/help.ts";
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { codeLine, moduleAt, root, writeReport } from "./lib/commands.ts";
import { FLOOR_PACKAGES, fetchPackage, MODEL_EXTENSION, packageFiles } from "./lib/packages.ts";
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

const { given: baselineGiven, dir: baseline } = baselineArg("describe-ab");
const rounds = Number(argValue("--rounds") ?? 30);
const outFile = argValue("--out") ?? join(root, "bench", "results", "describe-ab.md");
const work = join(root, ".bench-data", "floor");

// biome-ignore lint/suspicious/noExplicitAny: modules of two checkouts, loaded by path
type Module = any;
const load = async (dir: string) => {
  const from = (path: string) => moduleAt<Module>(dir, path);
  return { describe: await from("engine/describe.ts"), source: await from("common/source.ts") };
};
const sides = [await load(baseline), await load(root)];

const started = performance.now();
const waitAtStart = cpuWaitMicros();
const loadAtStart = loadavg();

interface Group {
  name: string;
  files: Buffer[];
  cpu: [number[], number[]];
}
const groups: Group[] = [];
for (const spec of FLOOR_PACKAGES) {
  if (spec.kind === "tfjs") continue;
  const pkg = fetchPackage(spec, work);
  const files = packageFiles(pkg, MODEL_EXTENSION[spec.kind]).map((f) => readFileSync(f));
  groups.push({ name: `${spec.name}@${spec.version} (${files.length} files)`, files, cpu: [[], []] });
}

const describeAll = async (side: Module, files: Buffer[]): Promise<string[]> => {
  const out: string[] = [];
  for (const bytes of files)
    out.push(
      JSON.stringify(
        await side.describe.describeSource(side.source.bufferSource(bytes), 512 << 10, true, true, true),
      ),
    );
  return out;
};
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

// One untimed round, which also checks both sides agree.
for (const g of groups) {
  const [a, b] = [await describeAll(sides[0], g.files), await describeAll(sides[1], g.files)];
  a.forEach((d, i) => {
    if (d !== b[i]) throw new Error(`describe-ab: ${g.name}: file ${i} is described differently`);
  });
}
for (let round = 0; round < rounds; round++) {
  const order = round % 2 === 0 ? [0, 1] : [1, 0];
  for (const g of groups)
    for (const s of order) {
      const t = cpuMs();
      await describeAll(sides[s], g.files);
      g.cpu[s].push(cpuMs() - t);
    }
}
const elapsed = performance.now() - started;

const ms = (v: number) => fmt(v, 2);
const row = (name: string, base: number[], mine: number[]) => {
  const [bf, mf, bm, mm] = [Math.min(...base), Math.min(...mine), median(base), median(mine)];
  return [
    name,
    `${ms(bf)} / ${ms(mf)}`,
    `${fmt(bf / mf, 2)}x`,
    `${ms(bm)} / ${ms(mm)}`,
    `${fmt(bm / mm, 2)}x`,
  ];
};
const sum = (s: 0 | 1) =>
  Array.from({ length: rounds }, (_, i) => groups.reduce((t, g) => t + g.cpu[s][i], 0));

writeReport(outFile, [
  "# Recognising real ONNX and TFLite files: this checkout against a baseline, same run",
  "",
  ...machineLines(`npx node bench/describe-ab.ts --baseline DIR --rounds ${rounds}`),
  codeLine(),
  `- Baseline: ${baselineGiven}`,
  `- Load average (1, 5, 15 min) at start: ${loadAtStart.map((v) => fmt(v, 2)).join(", ")}; at end: ${loadavg()
    .map((v) => fmt(v, 2))
    .join(", ")}`,
  `- Took ${fmt(elapsed / 1000, 0)} s. ${contentionNote(waitAtStart, elapsed)}`,
  "",
  `describeSource of each file from memory (as compress() describes it), one untimed round then ${rounds} rounds, baseline and this checkout interleaved; CPU time (process.cpuUsage) per package, all its files. Both sides gave the same description of every file. Speed-up: baseline / this.`,
  "",
  table(
    ["package", "fastest ms: baseline / this", "speed-up", "median ms", "speed-up"],
    [...groups.map((g) => row(g.name, g.cpu[0], g.cpu[1])), row("all", sum(0), sum(1))],
  ),
  "",
]);
