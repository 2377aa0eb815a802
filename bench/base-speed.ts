/**
 * What coding against a base costs in time (`--base`), before and after a change of the
 * code, in one run: the source tree of an earlier commit (`--before`, extracted with
 * `git archive` into .bench-data/base-speed/) and this one, each compressing every input
 * on its own and against its base, in memory, the four interleaved (their order rotating
 * from round to round), with one thread and with two. Reported: median milliseconds, the
 * median over rounds of the ratio with a base to on its own, each version's stored bytes
 * (the current code must never store more), and whether the current code writes the same
 * bytes with one thread and with two.
 *
 * Inputs: the merged LoRA and checkpoint of bench/deltas.ts (a real training run; run that
 * benchmark first to make them), and a larger case from the real weights of ../shared/data
 * (bench/lib/lowrank-case.ts: four 1536 x 1024 matrices, a rank-16 update merged in, and
 * one step of 1e-4 per weight).
 *
 * usage: npx node bench/base-speed.ts [--before COMMIT] [--runs N] [--quick] [--out FILE]
 */
import "./lib/help.ts";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { codeLine, root, writeReport } from "./lib/commands.ts";
import { lowRankCase } from "./lib/lowrank-case.ts";
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

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const before = argValue("--before") ?? "01f2fa9";
const runs = Number(argValue("--runs") ?? (quick ? 1 : 3));
const outFile = argValue("--out") ?? (quick ? undefined : join(root, "bench", "results", "base-speed.md"));
const started = performance.now();
const waitStart = cpuWaitMicros();
const work = join(root, ".bench-data", "base-speed");
mkdirSync(work, { recursive: true });

type Compress = (bytes: Uint8Array, options: { threads: number; base?: string }) => Promise<Uint8Array>;

// ---- the two versions of the code -----------------------------------------------------------

const commit = spawnSync("git", ["rev-parse", "--short", before], {
  cwd: root,
  encoding: "utf8",
}).stdout.trim();
if (!commit) throw new Error(`--before ${before}: not a commit`);
const beforeDir = join(work, `before-${commit}`);
if (!existsSync(join(beforeDir, "src", "index.ts"))) {
  mkdirSync(beforeDir, { recursive: true });
  const r = spawnSync("sh", ["-c", `git archive ${commit} src | tar -x -C '${beforeDir}'`], { cwd: root });
  if (r.status !== 0) throw new Error(`git archive ${commit} failed: ${r.stderr}`);
}
const versions: [string, Compress][] = [
  [`before (${commit})`, (await import(join(beforeDir, "src", "index.ts"))).compress],
  ["after (this code)", (await import(join(root, "src", "index.ts"))).compress],
];

// ---- inputs ------------------------------------------------------------------------------------

const deltasDir = join(root, ".bench-data", "deltas", "k1-10");
const inputs: [string, string, string][] = [];
if (existsSync(join(deltasDir, "base.f32.safetensors"))) {
  for (const dtype of ["f32", "bf16"])
    inputs.push(
      [
        `${dtype.toUpperCase()} merged LoRA against the base (training run)`,
        join(deltasDir, `lora-merged.${dtype}.safetensors`),
        join(deltasDir, `base.${dtype}.safetensors`),
      ],
      [
        `${dtype.toUpperCase()} K=10 checkpoint 2 against checkpoint 1 (training run)`,
        join(deltasDir, `k10-ckpt2.${dtype}.safetensors`),
        join(deltasDir, `k10-ckpt1.${dtype}.safetensors`),
      ],
    );
} else console.log(`no ${deltasDir}: run bench/deltas.ts --k 1,10 first for the training-run rows`);
for (const dtype of ["F32", "BF16"] as const) {
  const c = lowRankCase(join(root, "..", "shared", "data"), join(work, "case"), dtype);
  inputs.push(
    [`${dtype} 4 x 1536 x 1024, rank-16 update merged (real weights)`, c.merged, c.base],
    [`${dtype} 4 x 1536 x 1024, one step of 1e-4 (real weights)`, c.stepped, c.base],
  );
}

// ---- timing ------------------------------------------------------------------------------------

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const rows: string[][] = [];
const sizeRows: string[][] = [];
let allSmaller = true;
let allSame = true;
for (const [label, input, base] of inputs) {
  const bytes = readFileSync(input);
  const sizes = new Map<string, number>();
  const outputs = new Map<string, string>();
  for (const threads of [1, 2]) {
    const variants = versions.flatMap(([name, compress]) =>
      (["alone", "base"] as const).map((how) => ({ name, how, compress, times: [] as number[] })),
    );
    for (let r = 0; r <= runs; r++) {
      // Rotate the order, so no variant always runs first or last in a round.
      const order = variants.map((_, i) => variants[(i + r) % variants.length]);
      for (const v of order) {
        const t = performance.now();
        const out = await v.compress(bytes, { threads, ...(v.how === "base" ? { base } : {}) });
        const ms = performance.now() - t;
        if (r > 0) v.times.push(ms);
        if (v.how === "base") {
          sizes.set(v.name, out.length);
          if (v.name.startsWith("after")) outputs.set(`${threads}`, sha(out));
        }
      }
    }
    const beforeBase = variants.find((v) => v.name === versions[0][0] && v.how === "base")!;
    for (const name of versions.map(([n]) => n)) {
      const alone = variants.find((v) => v.name === name && v.how === "alone")!;
      const withBase = variants.find((v) => v.name === name && v.how === "base")!;
      const ratios = withBase.times.map((t, i) => t / alone.times[i]);
      const againstBefore = withBase.times.map((t, i) => t / beforeBase.times[i]);
      rows.push([
        label,
        String(threads),
        name,
        fmt(median(alone.times), 0),
        fmt(median(withBase.times), 0),
        fmt(median(ratios), 1),
        `${fmt(spread(ratios) * 100, 0)}%`,
        fmt(median(againstBefore), 2),
      ]);
      console.log(rows.at(-1)!.join(" | "));
    }
  }
  const [b, a] = versions.map(([n]) => sizes.get(n)!);
  const same = outputs.get("1") === outputs.get("2");
  allSmaller &&= a <= b;
  allSame &&= same;
  sizeRows.push([label, String(bytes.length), String(b), String(a), fmt(a / b, 4), same ? "yes" : "no"]);
  console.log(sizeRows.at(-1)!.join(" | "));
}

// ---- every --base pair of bench/deltas.ts: stored bytes before and after ----------------------

const pairRows: string[][] = [];
if (existsSync(join(deltasDir, "base.f32.safetensors"))) {
  const f = (name: string, dtype: string) => join(deltasDir, `${name}.${dtype}.safetensors`);
  const pairs: [string, string][] = [];
  for (const dtype of ["f32", "bf16"]) {
    pairs.push([f("lora-merged", dtype), f("base", dtype)]);
    for (const k of [1, 10])
      for (let c = 1; c <= 4; c++) {
        pairs.push([f(`k${k}-ckpt${c}`, dtype), c === 1 ? f("base", dtype) : f(`k${k}-ckpt${c - 1}`, dtype)]);
        if (c > 1) pairs.push([f(`k${k}-ckpt${c}`, dtype), f("base", dtype)]);
      }
  }
  for (const [input, base] of pairs) {
    if (!existsSync(input)) continue;
    const bytes = readFileSync(input);
    const [b, a] = await Promise.all(
      versions.map(async ([, c]) => (await c(bytes, { threads: 1, base })).length),
    );
    allSmaller &&= a <= b;
    const name = (p: string) => p.split("/").pop()!.replace(".safetensors", "");
    pairRows.push([
      `${name(input)} against ${name(base)}`,
      String(bytes.length),
      String(b),
      String(a),
      fmt(a / b, 4),
    ]);
    console.log(pairRows.at(-1)!.join(" | "));
  }
}

const lines = [
  "# What coding against a base costs in time, before and after",
  "",
  ...machineLines("npx node bench/base-speed.ts"),
  codeLine(),
  `- Before: commit ${commit} (its src/ as committed)`,
  "",
  `\`compress()\` in memory on each input, on its own and against its base (\`base\`), by the code of commit ${commit} and by this code: the four interleaved, their order rotating from round to round, ${runs} rounds after a warm-up, with one thread and with two. Median milliseconds, the median over rounds of the ratio of the time with a base to the time on its own (a change of load between rounds cancels out in the ratio), and the median over rounds of this version's time with a base to the earlier commit's in the same round. The training-run inputs are those of bench/deltas.ts; the larger case (bench/lib/lowrank-case.ts) is four 1536 x 1024 matrices of real F32 weights from ../shared/data (rounded to BF16 for the BF16 rows), with a rank-16 update merged in, or moved one step of 1e-4 each.`,
  "",
  table(
    [
      "input",
      "threads",
      "code",
      "on its own ms",
      "--base ms",
      "--base / on its own",
      "spread of the ratios (IQR/median)",
      "--base ms / before's, same round (median)",
    ],
    rows,
  ),
  "",
  "Stored bytes with the base, by each version; and whether this code writes the same bytes with one thread and with two.",
  "",
  table(
    ["input", "bytes", "before .mmh", "after .mmh", "after / before", "same bytes, 1 and 2 threads"],
    sizeRows,
  ),
  "",
  ...(pairRows.length > 0
    ? [
        "Every `--base` pair of bench/deltas.ts (its sections 1 and 2: each checkpoint against the one before and against the base, and the merged LoRA against the base), one thread: stored bytes by each version.",
        "",
        table(["input", "bytes", "before .mmh", "after .mmh", "after / before"], pairRows),
        "",
      ]
    : []),
  `- Every input stored in no more bytes than before: **${allSmaller ? "yes" : "no"}**.`,
  `- The same bytes with one thread and with two: **${allSame ? "yes" : "no"}**.`,
  "",
  contentionNote(waitStart, performance.now() - started),
  "",
];
writeReport(outFile, lines);
