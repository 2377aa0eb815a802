/**
 * The tensor-codec targets, measured (never asserted): for each one the figure and whether
 * it was met. Writes bench/results/targets.md.
 *
 *   npx node bench/targets.ts            full run (a few minutes; writes bench/results/targets.md)
 *   npx node bench/targets.ts --quick    small inputs, 2 runs, writes nothing: a smoke test
 *
 * Options: --runs N (timed runs after one warm-up, default 5), --out FILE, --data DIR (the
 * real F32 safetensors files, default ../shared/data).
 *
 * Targets:
 *   1. Real F32 weights (each *.safetensors in --data): mmh default (auto, balanced) reaches
 *      original / compressed >= 1.18. Also --goal ratio, --goal speed, the zstd CLI at -19
 *      and -3, and 4 byte planes each compressed by zstd -3 (in process).
 *   2. `mmh gen --size 256M --dtype BF16`: mmh default stores <= 0.665 of the original.
 *      Also zstd -3 and the order-0 limit (order-0 entropies of the sign+mantissa byte and
 *      the exponent byte of every BF16 value, summed, over 16 bits).
 *   3. auto is never more than 0.5% larger than --codec zstd, on a set of inputs.
 *   4. CLI speed on the 256 MiB BF16 file against the zstd CLI, one thread, wall clock with
 *      process start: zstd time / mmh time >= 1.0, compress and decompress, default goal
 *      and --goal speed.
 *   5. auto's cost of choosing: CompressSummary.choiceMs / ms (no threshold; reported).
 *   6. P251: 1 GiB of one repeated 251-byte block stores in a few hundred bytes (counted as
 *      met below 1000 bytes); compress and decompress MB/s against `cp` and memcpy.
 *
 * Inputs are generated with `node bin/mmh.js gen` into .bench-data/ (git-ignored) on every
 * run, so they always come from the current generator; the 1 GiB files are deleted at the end.
 */

import "./lib/help.ts";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  createReadStream,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { loadavg } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { constants, zstdCompressSync } from "node:zlib";
import { type CompressOptions, compressFile, verify } from "../src/index.ts";
import { codeLine, fail, output, run, writeReport } from "./lib/commands.ts";
import { bytePlanes } from "./lib/derived.ts";
import {
  argValue,
  CLEAR_OUTPUT_NOTE,
  clearOutput,
  collectGarbage,
  contentionNote,
  cpuWaitMicros,
  fmt,
  MiB,
  machineLines,
  mbps,
  median,
  table,
  timeSync,
  zstdCliVersion,
} from "./lib/report.ts";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");
const quick = process.argv.includes("--quick");
const runs = Number(argValue("--runs") ?? (quick ? 2 : 5));
const outFile = argValue("--out") ?? (quick ? undefined : join(here, "results", "targets.md"));
const dataDir = argValue("--data") ?? join(root, "..", "shared", "data");
const workDir = join(root, ".bench-data");
const cli = join(root, "bin", "mmh.js");
const node = process.execPath;
const TIME_BIN = "/usr/bin/time";

/** Sizes as `mmh gen --size` spells them, and in bytes. */
const BF16_SIZE = quick ? "16M" : "256M";
const SMALL_SIZE = quick ? "2M" : "16M";
const P251_SIZE = quick ? "64M" : "1G";
const SMALL = (quick ? 2 : 16) * MiB;

const RATIO_TARGET = 1.18;
const BF16_TARGET = 0.665;
const AUTO_SLACK = 1.005;
const P251_TARGET = 1000;

/**
 * `--threads 1` when this build's CLI has a threads option (it codes on one thread then),
 * and the matching in-process option; older builds are single-threaded anyway.
 */
const cliThreads = /--threads\b/.test(
  spawnSync(node, [cli, "--help"], { cwd: root, encoding: "utf8" }).stdout ?? "",
);
const ONE_THREAD_CLI: readonly string[] = cliThreads ? ["--threads", "1"] : [];
/** Whether this build checks the content's sha256 on decompression only when asked. */
const cliChecksSha = /--check-sha256\b/.test(
  spawnSync(node, [cli, "--help"], { cwd: root, encoding: "utf8" }).stdout ?? "",
);
const ONE_THREAD = { threads: 1 } as CompressOptions;
/**
 * zstd's own single-thread modes, as context: `-T1` compresses on a worker thread while the
 * main thread reads and writes, and `-d` writes through a second thread (asynchronous I/O,
 * zstd >= 1.5.3); `--single-thread` and `--no-asyncio` do everything on one thread, as
 * `mmh --threads 1` does.
 */
const zstdHelp = (() => {
  const r = spawnSync("zstd", ["-H"], { encoding: "utf8" });
  return `${r.stdout ?? ""}${r.stderr ?? ""}`;
})();
const ZSTD_SINGLE = zstdHelp.includes("--single-thread");
const ZSTD_NO_ASYNCIO = zstdHelp.includes("asyncio");

const started = performance.now();
const loadAtStart = loadavg();
const waitAtStart = cpuWaitMicros();

// ---------------------------------------------------------------------------------------
// Helpers

function mmh(args: readonly string[]): number {
  return run(node, [cli, ...args]);
}

interface Usage {
  cpuSeconds: number;
  wallSeconds: number;
  rssMiB: number;
}

/** CPU time, wall time and peak RSS of one run, through /usr/bin/time when it exists. */
function usage(command: string, args: readonly string[]): Usage | undefined {
  if (!existsSync(TIME_BIN)) return undefined;
  clearOutput(args);
  const result = spawnSync(TIME_BIN, ["-f", "TIMES %e %U %S %M", command, ...args], {
    cwd: root,
    encoding: "utf8",
    stdio: ["ignore", "ignore", "pipe"],
    timeout: 1_800_000,
  });
  const match = /TIMES ([\d.]+) ([\d.]+) ([\d.]+) (\d+)\s*$/.exec(result.stderr ?? "");
  if (result.status !== 0 || !match) return undefined;
  return {
    wallSeconds: Number(match[1]),
    cpuSeconds: Number(match[2]) + Number(match[3]),
    rssMiB: Number(match[4]) / 1024,
  };
}

const shaCache = new Map<string, string>();

function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash("sha256");
    createReadStream(path, { highWaterMark: 1 << 20 })
      .on("data", (piece) => hash.update(piece))
      .on("end", () => resolve(hash.digest("hex")))
      .on("error", reject);
  });
}

async function inputSha(path: string): Promise<string> {
  let sha = shaCache.get(path);
  if (sha === undefined) {
    sha = await sha256File(path);
    shaCache.set(path, sha);
  }
  return sha;
}

/** `mmh gen ARGS -o .bench-data/NAME`: generated by the CLI itself on every run. */
function gen(name: string, args: readonly string[]): string {
  const file = join(workDir, name);
  mmh(["gen", ...args, "-o", file, "-f", "-q"]);
  return file;
}

interface Packed {
  bytes: number;
  ms: number;
  choiceMs: number;
  codecs: string;
}

function codecMix(codecs: Record<string, number>): string {
  return Object.entries(codecs)
    .sort((a, b) => b[1] - a[1])
    .map(([id, n]) => `${id.trim()} ${n}`)
    .join(", ");
}

/**
 * compressFile() in process: the call `node bin/mmh.js FILE -o OUT` makes, with the same
 * options, so the bytes are the CLI's. The output is decoded again (verify()) and its
 * content sha256 compared with the input's; then deleted unless `keep` names a path.
 */
async function pack(file: string, options: CompressOptions, keep?: string): Promise<Packed> {
  const dst = keep ?? join(workDir, "targets-tmp.mmh");
  const summary = await compressFile(file, dst, { ...options, overwrite: true });
  const bytes = statSync(dst).size;
  const checked = await verify(dst);
  const sha = await inputSha(file);
  if (checked.sha256 !== sha || summary.sha256 !== sha)
    throw new Error(`${file}: round trip through ${JSON.stringify(options)} differs`);
  if (keep === undefined) rmSync(dst, { force: true });
  return { bytes, ms: summary.ms, choiceMs: summary.choiceMs, codecs: codecMix(summary.codecs) };
}

/** Size of `zstd ARGS -c FILE` (the CLI, run here). */
function zstdCliBytes(file: string, level: string): number {
  return output("zstd", [level, "-q", "-c", file]).length;
}

/** The file cut into 4 byte planes (byte i goes to plane i mod 4), each zstd -3, summed. */
function planesZstd3(file: string): number {
  return bytePlanes(readFileSync(file), 4).reduce(
    (total, plane) =>
      total + zstdCompressSync(plane, { params: { [constants.ZSTD_c_compressionLevel]: 3 } }).length,
    0,
  );
}

interface Tensor {
  name: string;
  dtype: string;
  start: number;
  end: number;
}

/** The tensors of a safetensors file, with absolute byte offsets. */
function safetensorsTensors(data: Buffer): { dataStart: number; tensors: Tensor[] } {
  const headerLength = Number(data.readBigUInt64LE(0));
  const header = JSON.parse(data.subarray(8, 8 + headerLength).toString("utf8")) as Record<
    string,
    { dtype?: string; data_offsets?: [number, number] }
  >;
  const dataStart = 8 + headerLength;
  const tensors: Tensor[] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === "__metadata__" || !info.data_offsets || !info.dtype) continue;
    tensors.push({
      name,
      dtype: info.dtype,
      start: dataStart + info.data_offsets[0],
      end: dataStart + info.data_offsets[1],
    });
  }
  return { dataStart, tensors };
}

function entropyBits(counts: Float64Array, total: number): number {
  let h = 0;
  for (const c of counts) if (c > 0) h -= (c / total) * Math.log2(c / total);
  return h;
}

interface Order0 {
  values: number;
  bf16Bytes: number;
  fileBytes: number;
  signMantissaBits: number;
  exponentBits: number;
  limit: number;
}

/** Order-0 entropies of the sign+mantissa byte and the exponent byte of every BF16 value. */
function bf16Order0(file: string): Order0 {
  const data = readFileSync(file);
  const { tensors } = safetensorsTensors(data);
  const sm = new Float64Array(256);
  const ex = new Float64Array(256);
  let values = 0;
  for (const t of tensors) {
    if (t.dtype !== "BF16") continue;
    for (let i = t.start; i + 1 < t.end; i += 2) {
      const v = data[i] | (data[i + 1] << 8);
      ex[(v >>> 7) & 0xff]++;
      sm[((v >>> 8) & 0x80) | (v & 0x7f)]++;
    }
    values += (t.end - t.start) >>> 1;
  }
  const signMantissaBits = entropyBits(sm, values);
  const exponentBits = entropyBits(ex, values);
  return {
    values,
    bf16Bytes: values * 2,
    fileBytes: data.length,
    signMantissaBits,
    exponentBits,
    limit: (signMantissaBits + exponentBits) / 16,
  };
}

function deterministicTar(out: string, cwd: string, what: string): string {
  const args = [
    "--sort=name",
    "--mtime=@0",
    "--owner=0",
    "--group=0",
    "--numeric-owner",
    "-cf",
    out,
    "-C",
    cwd,
    what,
  ];
  const result = spawnSync("tar", args, { encoding: "utf8" });
  if (result.status !== 0) fail("tar", args, result);
  return out;
}

const yesNo = (met: boolean) => (met ? "**met**" : "**not met**");
const ratioX = (orig: number, stored: number) => `${fmt(orig / stored, 3)}x`;
const rotate = <T>(items: readonly T[], by: number): T[] => {
  const k = ((by % items.length) + items.length) % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
};

interface SummaryRow {
  target: string;
  goal: string;
  measured: string;
  verdict: string;
}
const summary: SummaryRow[] = [];
const sections: string[] = [];

// ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  mkdirSync(workDir, { recursive: true });
  console.log(`load average at start: ${loadAtStart.map((l) => fmt(l, 2)).join(", ")}`);

  // ----- inputs
  console.log("generating inputs with mmh gen ...");
  const bf16 = gen(`targets-bf16-${BF16_SIZE}.safetensors`, ["--size", BF16_SIZE, "--dtype", "BF16"]);
  const genDtypes = ["BF16", "F16", "F32", "I8", "F8_E4M3"] as const;
  const genFiles = genDtypes.map((dtype) => ({
    label: `gen safetensors ${dtype} ${SMALL_SIZE}`,
    file: gen(`targets-${dtype.toLowerCase()}-${SMALL_SIZE}.safetensors`, [
      "--size",
      SMALL_SIZE,
      "--dtype",
      dtype,
    ]),
  }));
  const text = gen(`targets-text-${SMALL_SIZE}.jsonl`, ["--kind", "text", "--size", SMALL_SIZE]);
  const random = gen(`targets-random-${SMALL_SIZE}.bin`, ["--kind", "random", "--size", SMALL_SIZE]);
  const periodic = gen(`targets-periodic-${SMALL_SIZE}.bin`, ["--kind", "periodic", "--size", SMALL_SIZE]);

  // text, then F32 weights starting at an offset = 3 (mod 4), then random bytes
  const f32File = genFiles[2].file;
  const f32Data = readFileSync(f32File);
  const f32Start = safetensorsTensors(f32Data).dataStart;
  const textPart = 4 * Math.floor(SMALL / 12) + 3;
  const f32Part = 4 * Math.floor(SMALL / 12);
  const randomPart = SMALL - textPart - f32Part;
  const mixed = join(workDir, `targets-mixed-${SMALL_SIZE}.bin`);
  writeFileSync(
    mixed,
    Buffer.concat([
      readFileSync(text).subarray(0, textPart),
      f32Data.subarray(f32Start, f32Start + f32Part),
      readFileSync(random).subarray(0, randomPart),
    ]),
  );
  const srcTar = deterministicTar(join(workDir, "targets-src.tar"), root, "src");
  const typesDir = join(root, "node_modules", "@types");
  const typesVersion = existsSync(join(typesDir, "node", "package.json"))
    ? (JSON.parse(readFileSync(join(typesDir, "node", "package.json"), "utf8")) as { version: string })
        .version
    : undefined;
  const typesTar =
    typesVersion !== undefined
      ? deterministicTar(join(workDir, "targets-types-node.tar"), typesDir, "node")
      : undefined;

  const realFiles = existsSync(dataDir)
    ? readdirSync(dataDir)
        .filter((f) => f.endsWith(".safetensors"))
        .sort()
        .map((f) => join(dataDir, f))
    : [];
  const sampleDir = join(root, "samples");
  const samples = existsSync(sampleDir)
    ? readdirSync(sampleDir)
        .filter((f) => statSync(join(sampleDir, f)).isFile())
        .sort()
        .map((f) => join(sampleDir, f))
    : [];

  // ----- 1. real F32 weights
  console.log("\n1. real F32 weights ...");
  const t1Rows: string[][] = [];
  if (realFiles.length === 0) {
    sections.push("## 1. Real F32 weights", "", `No *.safetensors in ${dataDir}: not measured.`, "");
    summary.push({
      target: "1. real F32 weights",
      goal: `>= ${RATIO_TARGET}x`,
      measured: "no files",
      verdict: "not measured",
    });
  }
  for (const file of realFiles) {
    const orig = statSync(file).size;
    const def = await pack(file, {});
    const ratio = await pack(file, { goal: "ratio" });
    const speed = await pack(file, { goal: "speed" });
    const z19 = zstdCliBytes(file, "-19");
    const z3 = zstdCliBytes(file, "-3");
    const planes = planesZstd3(file);
    const met = orig / def.bytes >= RATIO_TARGET;
    const name = basename(file, ".safetensors");
    t1Rows.push([
      name,
      String(orig),
      `${ratioX(orig, def.bytes)} (${def.bytes})`,
      `${ratioX(orig, ratio.bytes)} (${ratio.bytes})`,
      `${ratioX(orig, speed.bytes)} (${speed.bytes})`,
      `${ratioX(orig, z19)} (${z19})`,
      `${ratioX(orig, z3)} (${z3})`,
      `${ratioX(orig, planes)} (${planes})`,
      yesNo(met),
    ]);
    summary.push({
      target: `1. ${name}: mmh default ratio`,
      goal: `>= ${RATIO_TARGET}x`,
      measured: ratioX(orig, def.bytes),
      verdict: yesNo(met),
    });
    console.log(`  ${name}: default ${ratioX(orig, def.bytes)} [${def.codecs}]`);
  }
  if (realFiles.length > 0) {
    sections.push(
      "## 1. Real F32 weights: mmh default >= 1.18x",
      "",
      `Each *.safetensors in \`${dataDir}\`. Ratio = original / compressed, compressed bytes in brackets. mmh columns are \`compressFile()\` in process, the call \`node bin/mmh.js FILE -o OUT\` makes with the same options (so the same bytes), each output decoded again and its sha256 checked. zstd columns are the zstd CLI run here (\`zstd -19 -q -c FILE\`, \`zstd -3 -q -c FILE\`). "4 planes + zstd -3": the whole file cut into 4 byte planes (byte i to plane i mod 4), each compressed by node:zlib zstd level 3, sizes summed.`,
      "",
      table(
        [
          "file",
          "bytes",
          "mmh default",
          "mmh --goal ratio",
          "mmh --goal speed",
          "zstd -19",
          "zstd -3",
          "4 planes + zstd -3",
          ">= 1.18x",
        ],
        t1Rows,
      ),
      "",
    );
  }

  // ----- 2. BF16 256 MiB
  console.log(`\n2. BF16 ${BF16_SIZE} ...`);
  const bf16Bytes = statSync(bf16).size;
  const bf16Mmh = join(workDir, `targets-bf16-${BF16_SIZE}.safetensors.mmh`);
  const bf16Def = await pack(bf16, {}, bf16Mmh);
  const bf16Zst = join(workDir, `targets-bf16-${BF16_SIZE}.safetensors.zst`);
  run("zstd", ["-3", "-q", "-f", "-T1", bf16, "-o", bf16Zst]);
  const bf16Z3 = statSync(bf16Zst).size;
  const order0 = bf16Order0(bf16);
  const share = bf16Def.bytes / bf16Bytes;
  const t2Met = share <= BF16_TARGET;
  summary.push({
    target: `2. gen BF16 ${BF16_SIZE}: mmh default size / original`,
    goal: `<= ${BF16_TARGET}`,
    measured: fmt(share, 4),
    verdict: yesNo(t2Met),
  });
  sections.push(
    `## 2. \`mmh gen --size ${BF16_SIZE} --dtype BF16\`: mmh default <= ${BF16_TARGET} of the original`,
    "",
    `Generated by \`node bin/mmh.js gen --size ${BF16_SIZE} --dtype BF16\` (std 0.02, seed 1): ${bf16Bytes} bytes, of which ${order0.bf16Bytes} (${fmt((order0.bf16Bytes / bf16Bytes) * 100, 2)}%) are BF16 tensor data (${order0.values} values); the rest is the header and small F32 norm tensors.`,
    "",
    table(
      ["method", "bytes", "size / original", "original / size", "chunks by codec"],
      [
        [
          "mmh default (auto, balanced)",
          String(bf16Def.bytes),
          fmt(share, 4),
          fmt(1 / share, 3),
          bf16Def.codecs,
        ],
        ["zstd -3 -T1 (CLI)", String(bf16Z3), fmt(bf16Z3 / bf16Bytes, 4), fmt(bf16Bytes / bf16Z3, 3), ""],
        [
          "order-0 limit (BF16 tensor bytes only)",
          String(Math.round(order0.bf16Bytes * order0.limit)),
          fmt(order0.limit, 4),
          fmt(1 / order0.limit, 3),
          "",
        ],
      ],
    ),
    "",
    `Order-0 limit: over all ${order0.values} BF16 values, the order-0 entropy of the sign+mantissa byte (sign << 7 | 7 mantissa bits) is ${fmt(order0.signMantissaBits, 4)} bits and of the exponent byte ${fmt(order0.exponentBits, 4)} bits; (${fmt(order0.signMantissaBits, 4)} + ${fmt(order0.exponentBits, 4)}) / 16 = ${fmt(order0.limit, 4)}. No model or table cost is counted. mmh's figure is over the whole file; on the BF16 tensor bytes alone it is ${fmt(bf16Def.bytes / order0.bf16Bytes, 4)} if every other byte were free, so it is ${fmt((bf16Def.bytes / order0.bf16Bytes / order0.limit - 1) * 100, 2)}% above the limit at most.`,
    "",
    `Target ${yesNo(t2Met)}: ${fmt(share, 4)} ${t2Met ? "<=" : ">"} ${BF16_TARGET}.`,
    "",
  );
  console.log(
    `  mmh ${fmt(share, 4)}, zstd -3 ${fmt(bf16Z3 / bf16Bytes, 4)}, order-0 limit ${fmt(order0.limit, 4)}`,
  );

  // ----- 3. auto vs --codec zstd
  console.log("\n3. auto vs --codec zstd ...");
  const inputs: { label: string; file: string }[] = [
    ...genFiles,
    { label: `gen text ${SMALL_SIZE}`, file: text },
    { label: `gen random ${SMALL_SIZE}`, file: random },
    { label: `gen periodic ${SMALL_SIZE}`, file: periodic },
    ...realFiles.map((f) => ({ label: `real: ${basename(f)}`, file: f })),
    ...samples.map((f) => ({ label: `samples/${basename(f)}`, file: f })),
    { label: "tar of src/ (text)", file: srcTar },
    ...(typesTar
      ? [{ label: `tar of node_modules/@types/node ${typesVersion} (text, extra)`, file: typesTar }]
      : []),
    { label: `mixed ${SMALL_SIZE}: text + F32 at offset 3 + random`, file: mixed },
  ];
  const t3Rows: string[][] = [];
  let worst = { label: "", ratio: 0 };
  let worstLarge = { label: "", ratio: 0 };
  const small: string[] = [];
  for (const input of inputs) {
    const orig = statSync(input.file).size;
    const auto = await pack(input.file, {});
    const zstd = await pack(input.file, { codec: "zstd" });
    const r = auto.bytes / zstd.bytes;
    if (r > worst.ratio) worst = { label: input.label, ratio: r };
    if (orig >= MiB && r > worstLarge.ratio) worstLarge = { label: input.label, ratio: r };
    if (orig < MiB) small.push(input.label);
    t3Rows.push([
      input.label,
      String(orig),
      String(auto.bytes),
      String(zstd.bytes),
      fmt(r, 4),
      r <= AUTO_SLACK ? "yes" : "**no**",
      auto.codecs,
    ]);
    console.log(`  ${input.label}: auto/zstd ${fmt(r, 4)} [${auto.codecs}]`);
  }
  const t3Met = worst.ratio <= AUTO_SLACK;
  summary.push({
    target: "3. auto size / --codec zstd size, worst input",
    goal: `<= ${AUTO_SLACK}`,
    measured: `${fmt(worst.ratio, 4)} (${worst.label})`,
    verdict: yesNo(t3Met),
  });
  sections.push(
    "## 3. auto is never more than 0.5% larger than `--codec zstd`",
    "",
    'Each input compressed in process by `compressFile()` with default options (auto, balanced) and with `{ codec: "zstd" }` (level 3), both outputs decoded again and checked. auto / zstd < 1 means auto is smaller. The gen inputs come from `node bin/mmh.js gen` (seed 1); the mixed input is the first bytes of the gen text, then raw F32 weight bytes from the gen F32 file\'s tensor data starting at file offset ' +
      `${textPart} (= 3 mod 4, so no value is aligned), then gen random bytes, ${SMALL} bytes in all. Tars are made with \`tar --sort=name --mtime=@0 --owner=0 --group=0\`.`,
    "",
    table(
      ["input", "bytes", "auto bytes", "zstd bytes", "auto / zstd", "<= 1.005", "auto's chunks by codec"],
      t3Rows,
    ),
    "",
    `Worst: ${fmt(worst.ratio, 4)} (${worst.label})${worstLarge.label && worstLarge.label !== worst.label ? `; over the inputs of 1 MiB or more: ${fmt(worstLarge.ratio, 4)} (${worstLarge.label})` : ""}. Target ${yesNo(t3Met)}.`,
    "",
    small.length > 0
      ? `Below 1 MiB (kept because the target's list names them): ${small.join("; ")}.`
      : "Every input is 1 MiB or more.",
    "",
  );

  // ----- 5. cost of choosing (in process; before the CLI runs, while the JIT is warm)
  console.log("\n5. auto's cost of choosing ...");
  const realForChoice = [...realFiles].sort((a, b) => statSync(b).size - statSync(a).size)[0];
  const choiceInputs = [
    { label: `gen BF16 ${BF16_SIZE}`, file: bf16 },
    ...(realForChoice ? [{ label: `real: ${basename(realForChoice)}`, file: realForChoice }] : []),
    { label: `gen text ${SMALL_SIZE}`, file: text },
  ];
  const t5Rows: string[][] = [];
  for (const input of choiceInputs) {
    const per: { ms: number; choiceMs: number }[] = [];
    const dst = join(workDir, "targets-choice.mmh");
    for (let r = -1; r < runs; r++) {
      collectGarbage();
      const s = await compressFile(input.file, dst, { ...ONE_THREAD, overwrite: true });
      if (r >= 0) per.push({ ms: s.ms, choiceMs: s.choiceMs });
    }
    rmSync(dst, { force: true });
    const shareMed = median(per.map((p) => p.choiceMs / p.ms));
    t5Rows.push([
      input.label,
      String(statSync(input.file).size),
      fmt(median(per.map((p) => p.ms)), 1),
      fmt(median(per.map((p) => p.choiceMs)), 1),
      `${fmt(shareMed * 100, 1)}%`,
      per.map((p) => `${fmt((p.choiceMs / p.ms) * 100, 1)}%`).join(", "),
    ]);
    summary.push({
      target: `5. choiceMs / ms, ${input.label}`,
      goal: "(reported)",
      measured: `${fmt(shareMed * 100, 1)}%`,
      verdict: "no threshold",
    });
    console.log(`  ${input.label}: ${fmt(shareMed * 100, 1)}%`);
  }
  const t5Section = [
    "## 5. The cost of auto's choice, as a share of compress time",
    "",
    `\`compressFile(FILE, OUT, { threads: 1 })\` in process (otherwise default options; one thread, so that both figures are times of the same thread); \`choiceMs\` (sample encodes and losing whole encodes) over \`ms\` (the whole call, reading and writing included). One warm-up, then ${runs} runs; medians, and the share of each run.`,
    "",
    table(
      ["input", "bytes", "ms (median)", "choiceMs (median)", "choiceMs / ms (median)", "each run"],
      t5Rows,
    ),
    "",
  ];

  // ----- 4. CLI speed against zstd on the BF16 file
  console.log(`\n4. CLI speed on BF16 ${BF16_SIZE} (one warm-up, ${runs} runs, alternating) ...`);
  const bf16MmhCli = join(workDir, "targets-cli.mmh");
  const bf16MmhSpeed = join(workDir, "targets-cli-speed.mmh");
  const bf16ZstCli = join(workDir, "targets-cli.zst");
  const outs = {
    zstd: join(workDir, "targets-out.zstd"),
    zstdNoAsync: join(workDir, "targets-out.zstd-no-asyncio"),
    mmh: join(workDir, "targets-out.mmh"),
    speed: join(workDir, "targets-out.speed"),
    threads: join(workDir, "targets-out.threads"),
    sha: join(workDir, "targets-out.sha"),
  };
  const bf16MmhThreads = join(workDir, "targets-cli-threads.mmh");
  type Op = readonly [string, readonly string[]];
  const ops = {
    zstdC: ["zstd", ["-3", "-q", "-f", "-T1", bf16, "-o", bf16ZstCli]],
    mmhC: [node, [cli, bf16, "-o", bf16MmhCli, "-f", "-q", ...ONE_THREAD_CLI]],
    mmhCs: [node, [cli, bf16, "-o", bf16MmhSpeed, "-f", "-q", "--goal", "speed", ...ONE_THREAD_CLI]],
    zstdD: ["zstd", ["-d", "-q", "-f", bf16ZstCli, "-o", outs.zstd]],
    zstdCst: ["zstd", ["-3", "-q", "-f", "--single-thread", bf16, "-o", `${bf16ZstCli}.st`]],
    zstdDna: ["zstd", ["-d", "-q", "-f", "--no-asyncio", bf16ZstCli, "-o", outs.zstdNoAsync]],
    mmhD: [node, [cli, "-d", bf16MmhCli, "-o", outs.mmh, "-f", "-q", ...ONE_THREAD_CLI]],
    mmhDs: [node, [cli, "-d", bf16MmhSpeed, "-o", outs.speed, "-f", "-q", ...ONE_THREAD_CLI]],
    // context when the CLI checks the content's sha256 only on request
    mmhDsha: [node, [cli, "-d", bf16MmhCli, "-o", outs.sha, "-f", "-q", "--check-sha256", ...ONE_THREAD_CLI]],
    // context when the CLI has a threads option: its default thread count
    mmhCmt: [node, [cli, bf16, "-o", bf16MmhThreads, "-f", "-q"]],
    mmhDmt: [node, [cli, "-d", bf16MmhThreads, "-o", outs.threads, "-f", "-q"]],
    nodeStart: [node, [cli, "--version"]],
  } as const satisfies Record<string, Op>;
  type Key = keyof typeof ops;
  const times: Record<Key, number[]> = {
    zstdC: [],
    mmhC: [],
    mmhCs: [],
    zstdD: [],
    zstdCst: [],
    zstdDna: [],
    mmhD: [],
    mmhDs: [],
    mmhDsha: [],
    mmhCmt: [],
    mmhDmt: [],
    nodeStart: [],
  };
  const phases: Key[][] = [
    [
      "zstdC",
      "mmhC",
      "mmhCs",
      ...(cliThreads ? (["mmhCmt"] as const) : []),
      ...(ZSTD_SINGLE ? (["zstdCst"] as const) : []),
    ],
    [
      "zstdD",
      "mmhD",
      "mmhDs",
      ...(cliThreads ? (["mmhDmt"] as const) : []),
      ...(cliChecksSha ? (["mmhDsha"] as const) : []),
      ...(ZSTD_NO_ASYNCIO ? (["zstdDna"] as const) : []),
    ],
  ];
  for (const phase of phases) {
    for (let r = -1; r < runs; r++) {
      for (const key of rotate(phase, r)) {
        const ms = run(ops[key][0], ops[key][1]);
        if (r >= 0) times[key].push(ms);
      }
    }
  }
  for (let r = -1; r < runs; r++) {
    const ms = run(ops.nodeStart[0], ops.nodeStart[1]);
    if (r >= 0) times.nodeStart.push(ms);
  }
  const bf16Sha = await inputSha(bf16);
  for (const [what, file] of Object.entries(outs)) {
    if (what === "zstdNoAsync" && !ZSTD_NO_ASYNCIO) continue;
    if (what === "sha" && !cliChecksSha) continue;
    if ((await sha256File(file)) !== bf16Sha) throw new Error(`CLI round trip (${what}) differs`);
  }
  const used: Partial<Record<Key, Usage>> = {};
  for (const key of phases.flat()) {
    const u = usage(ops[key][0], ops[key][1]);
    if (u) used[key] = u;
  }
  const cliMmhBytes = statSync(bf16MmhCli).size;
  const cliSpeedBytes = statSync(bf16MmhSpeed).size;
  const cliZstBytes = statSync(bf16ZstCli).size;
  const med = (key: Key) => median(times[key]);
  const t4Rows: string[][] = [];
  const speedRow = (label: string, z: Key, m: Key, target = true) => {
    const s = med(z) / med(m);
    t4Rows.push([
      label,
      fmt(med(z) / 1000, 3),
      fmt(mbps(bf16Bytes, med(z)), 0),
      fmt(med(m) / 1000, 3),
      fmt(mbps(bf16Bytes, med(m)), 0),
      fmt(s, 3),
      target ? yesNo(s >= 1) : "(context)",
      used[m] ? `${fmt(used[m].cpuSeconds, 2)} / ${fmt(used[m].wallSeconds, 2)}` : "n/a",
      used[m] ? fmt(used[m].rssMiB, 0) : "n/a",
    ]);
    if (!target) return;
    summary.push({
      target: `4. ${label}: zstd time / mmh time`,
      goal: ">= 1.0",
      measured: fmt(s, 3),
      verdict: yesNo(s >= 1),
    });
    console.log(`  ${label}: zstd/mmh ${fmt(s, 3)}`);
  };
  speedRow("compress, default (vs zstd -3 -T1)", "zstdC", "mmhC");
  speedRow("decompress, default (vs zstd -d)", "zstdD", "mmhD");
  speedRow("compress, --goal speed (vs zstd -3 -T1)", "zstdC", "mmhCs");
  speedRow("decompress of --goal speed output (vs zstd -d)", "zstdD", "mmhDs");
  if (cliThreads) {
    speedRow("compress, default threads (context, not the target)", "zstdC", "mmhCmt", false);
    speedRow("decompress, default threads (context, not the target)", "zstdD", "mmhDmt", false);
  }
  if (ZSTD_SINGLE) speedRow("compress, vs zstd -3 --single-thread (context)", "zstdCst", "mmhC", false);
  if (ZSTD_NO_ASYNCIO) speedRow("decompress, vs zstd -d --no-asyncio (context)", "zstdDna", "mmhD", false);
  if (cliChecksSha)
    speedRow("decompress with --check-sha256, vs zstd -d (context)", "zstdD", "mmhDsha", false);
  const zstdLabels = {
    zstdC: "zstd -3 -T1",
    zstdCst: "zstd -3 --single-thread",
    zstdD: "zstd -d",
    zstdDna: "zstd -d --no-asyncio",
  } as const;
  const zstdUse = (Object.keys(zstdLabels) as (keyof typeof zstdLabels)[]).flatMap((key) => {
    const u = used[key];
    return u ? [`\`${zstdLabels[key]}\` ${fmt(u.cpuSeconds, 2)} / ${fmt(u.wallSeconds, 2)}`] : [];
  });
  const oneThreadText = ONE_THREAD_CLI.length > 0 ? ` ${ONE_THREAD_CLI.join(" ")}` : "";
  const all = (key: Key) => times[key].map((ms) => fmt(ms / 1000, 3)).join(", ");
  const t4Section = [
    `## 4. CLI speed on the ${BF16_SIZE} BF16 file against the zstd CLI, one thread`,
    "",
    `Wall clock including process start; node is \`process.execPath\` (${process.version}). One warm-up round, then ${runs} rounds; within a round the commands of a row group take turns, the first one rotating. Median shown. MB/s is original bytes (10^6) per second. Speed = zstd time / mmh time (>= 1.0 means mmh is at least as fast: target met). CPU / wall and peak RSS are from one more run of each mmh command under \`${TIME_BIN} -f\` (CPU above wall means more than one thread busy, e.g. node's GC helpers). ${CLEAR_OUTPUT_NOTE}`,
    "",
    `- \`zstd -3 -q -f -T1 FILE -o FILE.zst\` against \`node bin/mmh.js FILE -o FILE.mmh -f -q${oneThreadText}\` and \`node bin/mmh.js FILE -o FILE.mmh -f -q --goal speed${oneThreadText}\``,
    `- \`zstd -d -q -f FILE.zst -o OUT\` against \`node bin/mmh.js -d FILE.mmh -o OUT -f -q${oneThreadText}\` (for each of the two .mmh files)`,
    cliThreads
      ? "- mmh has a threads option, so the target rows pass `--threads 1`; the two context rows run mmh with its default thread count (all cores), against the same single-threaded zstd."
      : "- This build of mmh has no threads option: it codes on one thread.",
    cliChecksSha
      ? "- `--threads 1` codes every chunk on the calling thread, which also reads and writes; on a machine with more than one core, compression hashes the content (its sha256, for the trailer) on a second thread, as `zstd -3 -T1` compresses on one worker thread while its main thread reads and writes, and `zstd -d` writes through a second thread. Decompression checks every chunk's CRC-32, as `zstd -d` checks its XXH64, and the content's sha256 only with `--check-sha256` (a context row). Two more context rows time zstd with everything on one thread (`--single-thread`, `--no-asyncio`). The verdicts are against the zstd commands the target names."
      : "- `--threads 1` does everything on one thread: reading, hashing, coding and writing. `zstd -3 -T1` compresses on one worker thread while its main thread reads and writes, and `zstd -d` writes through a second thread; the last two context rows time zstd with everything on one thread too (`--single-thread`, `--no-asyncio`). The verdicts are against the zstd commands the target names.",
    ...(zstdUse.length > 0
      ? [`- zstd's CPU s / wall s (one run each under \`${TIME_BIN}\`): ${zstdUse.join("; ")}.`]
      : []),
    "",
    table(
      [
        "operation",
        "zstd s",
        "zstd MB/s",
        "mmh s",
        "mmh MB/s",
        "speed (zstd / mmh)",
        ">= 1.0",
        "mmh CPU s / wall s",
        "mmh peak RSS MiB",
      ],
      t4Rows,
    ),
    "",
    `Sizes: .zst ${cliZstBytes} (${fmt(cliZstBytes / bf16Bytes, 4)}), .mmh default ${cliMmhBytes} (${fmt(cliMmhBytes / bf16Bytes, 4)}; ${cliMmhBytes === bf16Def.bytes ? "the same size as compressFile() in target 2" : `compressFile() in target 2 gave ${bf16Def.bytes}`}), .mmh --goal speed ${cliSpeedBytes} (${fmt(cliSpeedBytes / bf16Bytes, 4)}). Every decompressed output has the input's sha256.`,
    "",
    `Process start alone, \`node bin/mmh.js --version\`: median ${fmt(med("nodeStart") / 1000, 3)} s; that much of each mmh time is not compression.`,
    "",
    "All runs (seconds):",
    "",
    `- zstd -3: ${all("zstdC")}`,
    `- mmh default compress: ${all("mmhC")}`,
    `- mmh --goal speed compress: ${all("mmhCs")}`,
    `- zstd -d: ${all("zstdD")}`,
    ...(ZSTD_SINGLE ? [`- zstd -3 --single-thread: ${all("zstdCst")}`] : []),
    ...(ZSTD_NO_ASYNCIO ? [`- zstd -d --no-asyncio: ${all("zstdDna")}`] : []),
    `- mmh -d (default): ${all("mmhD")}`,
    `- mmh -d (--goal speed): ${all("mmhDs")}`,
    ...(cliChecksSha ? [`- mmh -d --check-sha256: ${all("mmhDsha")}`] : []),
    ...(cliThreads
      ? [`- mmh compress, default threads: ${all("mmhCmt")}`, `- mmh -d, default threads: ${all("mmhDmt")}`]
      : []),
    "",
  ];
  for (const f of [
    bf16MmhCli,
    bf16MmhSpeed,
    bf16MmhThreads,
    bf16ZstCli,
    `${bf16ZstCli}.st`,
    bf16Mmh,
    bf16Zst,
    ...Object.values(outs),
  ])
    rmSync(f, { force: true });

  // ----- 6. P251
  console.log(`\n6. P251 on ${P251_SIZE} of a repeated 251-byte block ...`);
  const p251 = join(workDir, `targets-periodic-${P251_SIZE}.bin`);
  const p251Mmh = `${p251}.mmh`;
  const p251Out = `${p251}.out`;
  const p251Copy = `${p251}.copy`;
  let t6Section: string[];
  try {
    gen(basename(p251), ["--kind", "periodic", "--size", P251_SIZE]);
    const pBytes = statSync(p251).size;
    const pOps = {
      mmhC: [node, [cli, p251, "-o", p251Mmh, "-f", "-q"]],
      cp: ["cp", ["-f", p251, p251Copy]],
      mmhD: [node, [cli, "-d", p251Mmh, "-o", p251Out, "-f", "-q"]],
    } as const satisfies Record<string, Op>;
    type PKey = keyof typeof pOps;
    const pTimes: Record<PKey, number[]> = { mmhC: [], cp: [], mmhD: [] };
    // mmhC must come before mmhD in a round (the first round writes the .mmh file)
    const orders: PKey[][] = [
      ["mmhC", "mmhD", "cp"],
      ["cp", "mmhC", "mmhD"],
      ["mmhC", "cp", "mmhD"],
    ];
    for (let r = -1; r < runs; r++) {
      for (const key of orders[(r + 3) % 3]) {
        const ms = run(pOps[key][0], pOps[key][1]);
        if (r >= 0) pTimes[key].push(ms);
      }
    }
    const pSha = await sha256File(p251);
    const outOk = (await sha256File(p251Out)) === pSha;
    if (!outOk) throw new Error("P251 round trip differs");
    const stored = statSync(p251Mmh).size;
    const info = JSON.parse(output(node, [cli, "info", "--json", p251Mmh]).toString("utf8")) as {
      chunks: number;
      codecs: Record<string, number>;
    };
    rmSync(p251Copy, { force: true });
    rmSync(p251Out, { force: true });
    // memcpy in process: Buffer.copy of the whole file into a buffer allocated and touched once
    const src = readFileSync(p251);
    const dst = Buffer.allocUnsafe(src.length);
    dst.fill(1);
    const memcpy: number[] = [];
    for (let r = -1; r < runs; r++) {
      const ms = timeSync(() => src.copy(dst));
      if (r >= 0) memcpy.push(ms);
    }
    if (!dst.equals(src)) throw new Error("memcpy differs");
    const m = {
      mmhC: median(pTimes.mmhC),
      mmhD: median(pTimes.mmhD),
      cp: median(pTimes.cp),
      memcpy: median(memcpy),
    };
    const t6Met = stored < P251_TARGET;
    summary.push({
      target: `6. P251 ${P251_SIZE}: compressed bytes`,
      goal: `a few hundred (< ${P251_TARGET})`,
      measured: String(stored),
      verdict: yesNo(t6Met),
    });
    summary.push({
      target: `6. P251 ${P251_SIZE}: compress / decompress MB/s (CLI)`,
      goal: "(reported against cp, memcpy)",
      measured: `${fmt(mbps(pBytes, m.mmhC))} / ${fmt(mbps(pBytes, m.mmhD))} (cp ${fmt(mbps(pBytes, m.cp))}, memcpy ${fmt(mbps(pBytes, m.memcpy))})`,
      verdict: "no threshold",
    });
    const pRow = (label: string, ms: number) => [
      label,
      fmt(ms / 1000, 3),
      fmt(mbps(pBytes, ms)),
      fmt(m.cp / ms, 3),
      fmt(m.memcpy / ms, 4),
    ];
    t6Section = [
      `## 6. P251: ${P251_SIZE} of one repeated 251-byte block`,
      "",
      `\`node bin/mmh.js gen --kind periodic --size ${P251_SIZE}\` (${pBytes} bytes, seed 1), compressed with \`node bin/mmh.js FILE -o FILE.mmh -f -q\` (default options) and restored with \`node bin/mmh.js -d FILE.mmh -o OUT -f -q\`; the output has the input's sha256. Against \`cp -f FILE COPY\` (wall clock including process start, like mmh) and memcpy (\`Buffer.copy\` of the whole file, held in memory, into a buffer allocated and touched once; in process, no I/O). One warm-up round, then ${runs} rounds, the three commands taking turns in a rotating order; medians. All files are in the page cache; the input, the .mmh file, the output and the copy are deleted afterwards.`,
      "",
      `Compressed: **${stored} bytes** (${info.chunks} chunk record${info.chunks === 1 ? "" : "s"}: ${codecMix(info.codecs)}), ratio ${fmt(pBytes / stored, 0)}x. Target (a few hundred bytes, counted as < ${P251_TARGET}) ${yesNo(t6Met)}.`,
      "",
      table(
        ["operation", "s (median)", "MB/s", "speed / cp", "speed / memcpy"],
        [
          pRow("mmh compress (CLI)", m.mmhC),
          pRow("mmh decompress (CLI)", m.mmhD),
          pRow("cp -f FILE COPY", m.cp),
          pRow("memcpy (Buffer.copy, in process)", m.memcpy),
        ],
      ),
      "",
      `Process start alone (\`node bin/mmh.js --version\`, from target 4): ${fmt(med("nodeStart") / 1000, 3)} s of each mmh time.`,
      "",
      "All runs (seconds):",
      "",
      `- mmh compress: ${pTimes.mmhC.map((ms) => fmt(ms / 1000, 3)).join(", ")}`,
      `- mmh decompress: ${pTimes.mmhD.map((ms) => fmt(ms / 1000, 3)).join(", ")}`,
      `- cp: ${pTimes.cp.map((ms) => fmt(ms / 1000, 3)).join(", ")}`,
      `- memcpy: ${memcpy.map((ms) => fmt(ms / 1000, 4)).join(", ")}`,
      "",
    ];
    console.log(
      `  ${stored} bytes; compress ${fmt(mbps(pBytes, m.mmhC))} MB/s, decompress ${fmt(mbps(pBytes, m.mmhD))} MB/s, cp ${fmt(mbps(pBytes, m.cp))} MB/s, memcpy ${fmt(mbps(pBytes, m.memcpy))} MB/s`,
    );
  } finally {
    for (const f of [p251, p251Mmh, p251Out, p251Copy]) rmSync(f, { force: true });
  }

  // ----- report
  const loadAtEnd = loadavg();
  const elapsed = performance.now() - started;
  const targetNumber = (row: SummaryRow) => Number.parseInt(row.target, 10);
  const summaryTable = table(
    ["target", "goal", "measured", "verdict"],
    [...summary]
      .sort((a, b) => targetNumber(a) - targetNumber(b))
      .map((s) => [s.target, s.goal, s.measured, s.verdict]),
  );
  console.log(`\n${summaryTable}`);
  console.log(
    `\nload average at end: ${loadAtEnd.map((l) => fmt(l, 2)).join(", ")}; took ${fmt(elapsed / 1000, 0)} s`,
  );
  const lines = [
    "# Tensor-codec targets",
    "",
    ...machineLines(`npx node bench/targets.ts${quick ? " --quick" : ""}`),
    codeLine(),
    `- zstd CLI: ${zstdCliVersion()}`,
    `- Load average (1, 5, 15 min) at start: ${loadAtStart.map((l) => fmt(l, 2)).join(", ")}; at end: ${loadAtEnd.map((l) => fmt(l, 2)).join(", ")}`,
    `- Took ${fmt(elapsed / 1000, 0)} s. ${contentionNote(waitAtStart, elapsed)}`,
    "- Every target is measured, none is asserted by a test. Sizes are exact; times are medians and vary between runs and machines, so compare the ratios measured in the same run.",
    "",
    "## Summary",
    "",
    summaryTable,
    "",
    ...sections,
    ...t4Section,
    ...t5Section,
    ...t6Section,
  ];
  writeReport(outFile, lines);
}

await main();
