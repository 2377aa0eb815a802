/**
 * compress() of bytes in memory, this checkout against a baseline, in process and in the
 * same run: each round runs both (baseline, this; then this, baseline), so the machine's
 * load falls on both alike. Reports the median wall time and CPU time (process.cpuUsage,
 * every thread of the process, so a hashing thread counts) after one warm-up round, and
 * checks that both write the same bytes.
 *
 * With --file, compressFile() of the same inputs written to .bench-data/buffer-ab/ (git-
 * ignored) instead, page cache warm.
 *
 * Inputs (built in memory): the F32 tensor data of the real files in
 * ../shared/data, tiled to --size (64M) as bench/speed.ts tiles them, and the same values
 * rounded to BF16 and FP16 (real-derived), each as one safetensors tensor.
 *
 *   npx node bench/buffer-ab.ts --baseline DIR [--runs 5] [--size 64M]
 *     [--dtypes BF16,F16,F32] [--goals speed,balanced] [--threads 1] [--file] [--out FILE]
 *
 * DIR holds the baseline's src/: another checkout, or a copy of it inside this one so
 * that it finds this checkout's node_modules (`mkdir -p .bench-data/base && git archive
 * COMMIT src | tar -x -C .bench-data/base`). Options are { goal, threads, long: false }.
 * The report goes to bench/results/buffer-ab.md unless --out says otherwise.
 */
import "./lib/help.ts";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { codeLine, libraryAt, root, writeReport } from "./lib/commands.ts";
import { safetensors, safetensorsData, tile, toBf16, toF16 } from "./lib/derived.ts";
import {
  argValue,
  baselineArg,
  contentionNote,
  cpuWaitMicros,
  fmt,
  machineLines,
  median,
  parseSizeArg,
  table,
} from "./lib/report.ts";

const { dir: baseline } = baselineArg("buffer-ab", "the baseline's src/ in DIR/src");
const runs = Number(argValue("--runs") ?? 5);
const size = parseSizeArg(argValue("--size") ?? "64M");
const dtypes = (argValue("--dtypes") ?? "BF16,F16,F32").split(",");
const goals = (argValue("--goals") ?? "speed,balanced").split(",");
const threads = Number(argValue("--threads") ?? 1);
const outFile = argValue("--out") ?? join(root, "bench", "results", "buffer-ab.md");

const file = process.argv.includes("--file");
const work = join(root, ".bench-data", "buffer-ab");
mkdirSync(work, { recursive: true });

type Compress = (bytes: Uint8Array, options: object) => Promise<Uint8Array>;
type CompressFile = (src: string, dst: string, options: object) => Promise<unknown>;
type Library = { compress: Compress; compressFile: CompressFile };
const src = join(work, "input.safetensors");
const dstOf = (name: string) => join(work, `${name}.mmh`);
/**
 * compress(), or with --file compressFile() of the input, written to `src` before the
 * rounds (the output is read back after them).
 */
const load = async (dir: string, name: string): Promise<Compress> => {
  const library = await libraryAt<Library>(dir);
  if (!file) return library.compress;
  return async (_bytes, options) => {
    await library.compressFile(src, dstOf(name), { ...options, overwrite: true });
    return new Uint8Array(0);
  };
};
const sides = [
  { name: "baseline", compress: await load(baseline, "baseline") },
  { name: "this", compress: await load(root, "this") },
];

const sharedDir = join(root, "..", "shared", "data");
const f32Parts = readdirSync(sharedDir)
  .filter((f) => f.endsWith(".safetensors"))
  .sort()
  .map((f) => safetensorsData(join(sharedDir, f)));

const started = performance.now();
const waitAtStart = cpuWaitMicros();
const rows: string[][] = [];
let identical = true;
for (const dtype of dtypes) {
  const parts = dtype === "F32" ? f32Parts : f32Parts.map(dtype === "BF16" ? toBf16 : toF16);
  const width = dtype === "F32" ? 4 : 2;
  const input = safetensors(dtype, tile(parts, Math.floor(size / width) * width));
  if (file) writeFileSync(src, input);
  for (const goal of goals) {
    const options = { goal, threads, long: false };
    const times = sides.map(() => ({ wall: [] as number[], cpu: [] as number[] }));
    const outputs: Uint8Array[] = [];
    for (let round = 0; round <= runs; round++) {
      const order = round % 2 === 0 ? [0, 1] : [1, 0];
      for (const side of order) {
        const cpu = process.cpuUsage();
        const t = performance.now();
        const output = await sides[side].compress(input, options);
        const wall = performance.now() - t;
        const used = process.cpuUsage(cpu);
        outputs[side] ??= output;
        if (round === 0) continue;
        times[side].wall.push(wall);
        times[side].cpu.push((used.user + used.system) / 1000);
      }
    }
    if (file) for (const [i, side] of sides.entries()) outputs[i] = readFileSync(dstOf(side.name));
    const same = Buffer.from(outputs[0]).equals(Buffer.from(outputs[1]));
    identical &&= same;
    const [b, t] = times.map((x) => ({ wall: median(x.wall), cpu: median(x.cpu) }));
    const row = [
      `${dtype} ${goal}`,
      `${fmt(b.wall)} / ${fmt(b.cpu)}`,
      `${fmt(t.wall)} / ${fmt(t.cpu)}`,
      `${fmt(b.wall / t.wall, 2)}x`,
      `${fmt(b.cpu / t.cpu, 2)}x`,
      same ? "yes" : "NO",
    ];
    console.log(row.join(" | "));
    rows.push(row);
  }
}
const lines = [
  `# ${file ? "compressFile()" : "compress() of bytes in memory"}: this checkout against a baseline`,
  "",
  ...machineLines(`npx node bench/buffer-ab.ts ${process.argv.slice(2).join(" ")}`),
  codeLine(),
  `- ${contentionNote(waitAtStart, performance.now() - started)}`,
  "",
  `${fmt(size / (1 << 20))} MiB per input, options { goal, threads: ${threads}, long: false }; median of ${runs} interleaved rounds after one warm-up; CPU is process.cpuUsage of the whole process (every thread).`,
  "",
  table(["input", "baseline: wall / CPU ms", "this: wall / CPU ms", "wall", "CPU", "same bytes"], rows),
  "",
];
writeReport(outFile, lines);
if (!identical) {
  console.error("buffer-ab: the outputs differ");
  process.exitCode = 1;
}
