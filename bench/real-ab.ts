/**
 * compress() of real model files as shipped, this checkout against a baseline checkout, in
 * one process, one thread, CPU time (process.cpuUsage), rounds interleaved (the baseline
 * first in every other round): every file of bench/floor.ts's real corpus (../shared/data
 * and the pinned npm packages of FLOOR_PACKAGES: PaddleOCR and Silero ONNX, face-api tfjs
 * shards, MediaPipe TFLite), each file on its own. Per file: the stored size from both
 * sides (this checkout must never store more), the fastest round's CPU time from both and
 * the speed-up (baseline / this), and the median's; per package and over all files, the
 * sums. Every output of this checkout is decoded again and compared.
 *
 *   npx node bench/real-ab.ts --baseline DIR [--runs 9] [--decode] [--out FILE]
 *
 * With --decode, decompress() is timed instead: both sides decode the same containers
 * (this checkout's compress() output), and the stored sizes are given as without it.
 *
 * DIR is another checkout with node_modules (its kernels built). Packages are fetched as
 * bench/floor.ts fetches them (.bench-data/floor/, git-ignored). The report goes to
 * bench/results/real-ab.md unless --out says otherwise.
 */
import "./lib/help.ts";
import { readdirSync, readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { basename, join } from "node:path";
import { codeLine, libraryAt, root, writeReport } from "./lib/commands.ts";
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

const { given: baselineGiven, dir: baseline } = baselineArg("real-ab");
const runs = Number(argValue("--runs") ?? 9);
const decode = process.argv.includes("--decode");
const outFile =
  argValue("--out") ?? join(root, "bench", "results", decode ? "real-ab-decode.md" : "real-ab.md");
const work = join(root, ".bench-data", "floor");

const started = performance.now();
const waitAtStart = cpuWaitMicros();
const loadAtStart = loadavg();

interface Library {
  compress(bytes: Uint8Array, options?: object): Promise<Uint8Array>;
  decompress(bytes: Uint8Array, options?: object): Promise<Uint8Array>;
}
const sides = [await libraryAt<Library>(baseline), await libraryAt<Library>(root)];

// ---------------------------------------------------------------------------------------
// Inputs

interface Input {
  group: string;
  name: string;
  bytes: Buffer;
}
const inputs: Input[] = [];
const sharedDir = join(root, "..", "shared", "data");
for (const f of readdirSync(sharedDir)
  .filter((f) => f.endsWith(".safetensors"))
  .sort())
  inputs.push({ group: "../shared/data", name: f, bytes: readFileSync(join(sharedDir, f)) });
for (const spec of FLOOR_PACKAGES) {
  const pkg = fetchPackage(spec, work);
  for (const f of packageFiles(pkg, MODEL_EXTENSION[spec.kind]))
    inputs.push({ group: `${spec.name}@${spec.version}`, name: basename(f), bytes: readFileSync(f) });
}

// ---------------------------------------------------------------------------------------
// Measurements

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

const stored: number[][] = inputs.map(() => [0, 0]);
/** This checkout's container of each input: what both sides decode with --decode. */
const packedThis: Uint8Array[] = [];
for (const [i, input] of inputs.entries()) {
  for (const [s, side] of sides.entries())
    stored[i][s] = (await side.compress(input.bytes, { threads: 1 })).length;
  const packed = await sides[1].compress(input.bytes, { threads: 1 });
  packedThis.push(packed);
  for (const side of decode ? sides : [sides[1]]) {
    const back = await side.decompress(packed, { threads: 1 });
    if (!Buffer.from(back).equals(input.bytes)) throw new Error(`${input.name}: the round trip differs`);
  }
}
/** times[file][side]: CPU ms per round. */
const times: number[][][] = inputs.map(() => [[], []]);
for (let r = -2; r < runs; r++) {
  for (const s of r % 2 === 0 ? [0, 1] : [1, 0]) {
    for (const [i, input] of inputs.entries()) {
      const at = cpuMs();
      if (decode) await sides[s].decompress(packedThis[i], { threads: 1 });
      else await sides[s].compress(input.bytes, { threads: 1 });
      if (r >= 0) times[i][s].push(cpuMs() - at);
    }
  }
  console.log(`round ${r + 1} of ${runs}`);
}

// ---------------------------------------------------------------------------------------
// Report

const fastest = (x: number[]) => Math.min(...x);
const rowOf = (label: string, bytes: number, sizes: number[], t: number[][]) => {
  const [fb, ft] = t.map(fastest);
  const [mb, mt] = t.map(median);
  return [
    label,
    fmt(bytes / 1e6, 2),
    `${sizes[0]} / ${sizes[1]}`,
    `${fmt(fb, 1)} / ${fmt(ft, 1)}`,
    `${fmt(fb / ft, 2)}x`,
    `${fmt(mb, 1)} / ${fmt(mt, 1)}`,
    `${fmt(mb / mt, 2)}x`,
  ];
};
/** Per-round sums over a set of files, so the fastest and median rounds are of the whole set. */
const summed = (members: number[]) =>
  [0, 1].map((s) =>
    Array.from({ length: runs }, (_, r) => members.reduce((sum, i) => sum + times[i][s][r], 0)),
  );
const sizesOf = (members: number[]) => [0, 1].map((s) => members.reduce((sum, i) => sum + stored[i][s], 0));
const bytesOf = (members: number[]) => members.reduce((sum, i) => sum + inputs[i].bytes.length, 0);

const fileRows = inputs.map((input, i) => rowOf(input.name, input.bytes.length, stored[i], times[i]));
const groups = [...new Set(inputs.map((x) => x.group))];
const groupRows = groups.map((g) => {
  const members = inputs.flatMap((x, i) => (x.group === g ? [i] : []));
  return rowOf(`${g} (${members.length} files)`, bytesOf(members), sizesOf(members), summed(members));
});
const all = inputs.map((_, i) => i);
groupRows.push(rowOf(`all ${all.length} files`, bytesOf(all), sizesOf(all), summed(all)));
const larger = inputs.filter((_, i) => stored[i][1] > stored[i][0]).map((x) => x.name);

const elapsed = performance.now() - started;
const head = ["input", "MB", "stored: baseline / this", "fastest ms", "speed-up", "median ms", "speed-up"];
writeReport(outFile, [
  `# ${decode ? "decompress()" : "compress()"} of real model files as shipped: this checkout against a baseline, same run`,
  "",
  ...machineLines(`npx node bench/real-ab.ts --baseline DIR --runs ${runs}${decode ? " --decode" : ""}`),
  codeLine(),
  `- Baseline: ${baselineGiven}`,
  `- Load average (1, 5, 15 min) at start: ${loadAtStart.map((v) => fmt(v, 2)).join(", ")}; at end: ${loadavg()
    .map((v) => fmt(v, 2))
    .join(", ")}`,
  `- Took ${fmt(elapsed / 1000, 0)} s. ${contentionNote(waitAtStart, elapsed)}`,
  "",
  decode
    ? `decompress() of each file's container alone (this checkout's compress() output, one thread, the default goal; both sides decode the same bytes, and both outputs were compared with the input), one thread; CPU time (process.cpuUsage) per call, ${runs} rounds after 2 untimed ones, baseline and this checkout interleaved. The fastest round is the least disturbed by other work on the machine; the median is shown for its spread. Speed-up: baseline / this (above 1: this checkout is faster).`
    : `compress() of each file alone, one thread, the default goal; CPU time (process.cpuUsage) per call, ${runs} rounds after 2 untimed ones, baseline and this checkout interleaved. The fastest round is the least disturbed by other work on the machine; the median is shown for its spread. Speed-up: baseline / this (above 1: this checkout is faster). Every output of this checkout was decoded and compared.`,
  "",
  larger.length === 0
    ? "No file is stored larger than by the baseline."
    : `Stored larger than by the baseline: ${larger.join(", ")}.`,
  "",
  "## Sums",
  "",
  table(head, groupRows),
  "",
  "## Per file",
  "",
  table(head, fileRows),
  "",
]);
