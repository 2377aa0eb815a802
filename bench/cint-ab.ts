/**
 * CINT's speed, this checkout against a baseline checkout, in process and in the same
 * run: compress() (the default goal, or --goal) and decompress() with threads: 1 from
 * both, on the first --bytes (16M) of dlib's shape predictor, run after run, interleaved
 * (the order alternating each round), after one round of warm-up. Reports the CPU time
 * of each (process.cpuUsage: the calls run on this thread), medians and minimums, the
 * stored sizes (the outputs must be the same bytes) and the CPU contention.
 *
 *   npx node bench/cint-ab.ts --baseline DIR [--runs 10] [--bytes 16M] [--goal ratio] [--out FILE]
 *
 * The input is the one bench/records.ts fetches into .bench-data/records/ (run it once
 * first). DIR is another checkout (e.g. `git worktree add DIR main`, with node_modules);
 * the report goes to bench/results/cint-ab.md unless --out says otherwise.
 */

import "./lib/help.ts";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { codeLine, libraryAt, root, writeReport } from "./lib/commands.ts";
import {
  argValue,
  baselineArg,
  contentionNote,
  cpuWaitMicros,
  machineLines,
  median,
  parseSizeArg,
  table,
} from "./lib/report.ts";

interface Library {
  compress(bytes: Uint8Array, options: { threads: number; goal?: string }): Promise<Uint8Array>;
  decompress(bytes: Uint8Array, options: { threads: number }): Promise<Uint8Array>;
}

const baseline = baselineArg("cint-ab");
const runs = Number(argValue("--runs") ?? 10);
const bytes = parseSizeArg(argValue("--bytes") ?? "16M");
const goal = argValue("--goal") ?? "balanced";
const outFile = argValue("--out") ?? join(root, "bench", "results", "cint-ab.md");
const input = join(
  root,
  ".bench-data",
  "records",
  "x",
  "usr",
  "share",
  "dlib",
  "shape_predictor_68_face_landmarks.dat",
);
if (!existsSync(input)) {
  console.error(`cint-ab: ${input} is missing: run \`npx node bench/records.ts\` once first`);
  process.exit(2);
}
const raw = readFileSync(input).subarray(0, bytes);

const libraries: Record<string, Library> = {
  this: await libraryAt<Library>(root),
  baseline: await libraryAt<Library>(baseline.dir),
};
const cpuMs = (since: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
};

const times: Record<string, number[]> = {
  "this compress": [],
  "this decompress": [],
  "baseline compress": [],
  "baseline decompress": [],
};
const outputs: Record<string, Uint8Array> = {};
const started = performance.now();
const waitStart = cpuWaitMicros();
for (let round = 0; round <= runs; round++)
  for (const name of round % 2 === 0 ? ["baseline", "this"] : ["this", "baseline"]) {
    const library = libraries[name];
    let since = process.cpuUsage();
    const packed = await library.compress(raw, { threads: 1, goal });
    const compressMs = cpuMs(since);
    since = process.cpuUsage();
    const back = await library.decompress(packed, { threads: 1 });
    const decompressMs = cpuMs(since);
    if (!Buffer.from(back).equals(raw)) throw new Error(`${name}: the round trip differs`);
    outputs[name] = packed;
    if (round === 0) continue;
    times[`${name} compress`].push(compressMs);
    times[`${name} decompress`].push(decompressMs);
    console.log(
      `round ${round} ${name}: compress ${compressMs.toFixed(0)} ms, decompress ${decompressMs.toFixed(0)} ms`,
    );
  }
const same = Buffer.from(outputs.this).equals(Buffer.from(outputs.baseline));
const row = (what: string) => {
  const cpu = (name: string) => times[`${name} ${what}`];
  const ours = median(cpu("this"));
  const theirs = median(cpu("baseline"));
  return [
    what,
    `${ours.toFixed(0)} (min ${Math.min(...cpu("this")).toFixed(0)})`,
    `${theirs.toFixed(0)} (min ${Math.min(...cpu("baseline")).toFixed(0)})`,
    (ours / theirs).toFixed(2),
  ];
};
writeReport(outFile, [
  "# CINT's speed: compress() and decompress() against a baseline",
  "",
  ...machineLines(`npx node bench/cint-ab.ts --baseline DIR --runs ${runs} --bytes ${bytes} --goal ${goal}`),
  codeLine(),
  `- Baseline: ${baseline.given}, ${spawnSync("git", ["-C", baseline.dir, "log", "-1", "--format=commit %h (%s)"], { encoding: "utf8" }).stdout.trim()}`,
  `- Input: the first ${bytes} bytes of dlib's shape_predictor_68_face_landmarks.dat (bench/records.ts)`,
  `- Goal: ${goal}; threads: 1; ${runs} interleaved rounds after one of warm-up`,
  `- Stored bytes: ${outputs.this.length} (this), ${outputs.baseline.length} (baseline): ${same ? "the same bytes" : "DIFFERENT"}`,
  `- ${contentionNote(waitStart, performance.now() - started)}`,
  "",
  "CPU time of one call, ms (median, and the minimum):",
  "",
  table(["call", "this", "baseline", "this / baseline"], [row("compress"), row("decompress")]),
  "",
]);
if (!same) process.exitCode = 1;
