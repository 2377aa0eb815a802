/**
 * The mmh CLI against the zstd CLI on one file of generated BF16 weights, timed in the
 * same run: wall clock including process start, median of several runs after a warm-up.
 * Then, for context, the API in memory against node:zlib zstd on the whole buffer.
 *
 *   npx node bench/vs-zstd.ts                 (256 MiB, writes bench/results/vs-zstd.md)
 *   npx node bench/vs-zstd.ts --size 32M      (a quick check; writes nothing unless --out)
 *
 * Options: --size SIZE (default 256M), --runs N (default 5), --out FILE, --keep (keep the
 * compressed and decompressed files in .bench-data/).
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, existsSync, mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { constants, zstdCompressSync, zstdDecompressSync } from "node:zlib";
import { DEFAULT_CHUNK_SIZE } from "../src/engine/options.ts";
import { compress, decompress } from "../src/index.ts";
import { bf16Weights } from "./lib/data.ts";
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
  parseSizeArg,
  sizeLabel,
  table,
  timeAsync,
  timeSync,
  zstdCliVersion,
} from "./lib/report.ts";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");
const size = parseSizeArg(argValue("--size") ?? "256M");
const runs = Number(argValue("--runs") ?? 5);
const keep = process.argv.includes("--keep");
const defaultSize = size === 256 * MiB;
const outFile = argValue("--out") ?? (defaultSize ? join(here, "results", "vs-zstd.md") : undefined);
const workDir = join(root, ".bench-data");
const cli = join(root, "bin", "mmh.js");
const TIME_BIN = "/usr/bin/time";

interface Timing {
  label: string;
  ms: number[];
}

function run(command: string, args: string[]): number {
  clearOutput(args);
  const start = performance.now();
  const result = spawnSync(command, args, {
    stdio: ["ignore", "ignore", "pipe"],
    cwd: root,
    timeout: 600_000,
  });
  const ms = performance.now() - start;
  if (result.error) throw result.error;
  if (result.status !== 0) {
    throw new Error(
      `${command} ${args.join(" ")} failed (${result.status ?? result.signal}): ${result.stderr}`,
    );
  }
  return ms;
}

interface Usage {
  /** Peak resident set, KiB. */
  rssKiB: number;
  /** User plus system CPU time, seconds. */
  cpuSeconds: number;
  wallSeconds: number;
}

/** Peak memory and CPU time of one run, through /usr/bin/time -v when it exists. */
function usage(command: string, args: string[]): Usage | undefined {
  if (!existsSync(TIME_BIN)) return undefined;
  clearOutput(args);
  const result = spawnSync(TIME_BIN, ["-v", command, ...args], {
    cwd: root,
    encoding: "utf8",
    timeout: 600_000,
  });
  if (result.status !== 0) return undefined;
  const num = (re: RegExp) => Number(re.exec(result.stderr)?.[1] ?? Number.NaN);
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(
    result.stderr,
  );
  return {
    rssKiB: num(/Maximum resident set size \(kbytes\): (\d+)/),
    cpuSeconds: num(/User time \(seconds\): ([\d.]+)/) + num(/System time \(seconds\): ([\d.]+)/),
    wallSeconds: wall ? Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]) : Number.NaN,
  };
}

function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash("sha256");
    createReadStream(path, { highWaterMark: 1 << 20 })
      .on("data", (piece) => hash.update(piece))
      .on("end", () => resolve(hash.digest("hex")))
      .on("error", reject);
  });
}

async function inProcess(data: Buffer): Promise<string[]> {
  const reps = Math.max(3, Math.min(5, runs));
  const api = { c: [] as number[], d: [] as number[] };
  const zlib = { c: [] as number[], d: [] as number[] };
  let packed = await compress(data, { codec: "zstd" });
  let frame = zstdCompressSync(data, {
    chunkSize: 1 << 20,
    pledgedSrcSize: data.length,
    params: { [constants.ZSTD_c_compressionLevel]: 3 },
  });
  const back = await decompress(packed);
  const backZ = zstdDecompressSync(frame, { chunkSize: 1 << 20 });
  if (!Buffer.from(back).equals(data) || !backZ.equals(data))
    throw new Error("in-process round trip differs");
  for (let r = -1; r < reps; r++) {
    collectGarbage();
    const c1 = await timeAsync(async () => {
      packed = await compress(data, { codec: "zstd" });
    });
    collectGarbage();
    const c2 = timeSync(() => {
      frame = zstdCompressSync(data, {
        chunkSize: 1 << 20,
        pledgedSrcSize: data.length,
        params: { [constants.ZSTD_c_compressionLevel]: 3 },
      });
    });
    collectGarbage();
    const d1 = await timeAsync(() => decompress(packed));
    collectGarbage();
    const d2 = timeSync(() => zstdDecompressSync(frame, { chunkSize: 1 << 20 }));
    if (r >= 0) {
      api.c.push(c1);
      zlib.c.push(c2);
      api.d.push(d1);
      zlib.d.push(d2);
    }
  }
  const n = data.length;
  const row = (label: string, ms: number[], base: number[], stored: number) => [
    label,
    fmt(median(ms), 0),
    fmt(mbps(n, median(ms))),
    fmt(median(ms) / median(base), 2),
    String(stored),
    fmt(stored / n, 4),
  ];
  const head = [
    "operation",
    "median ms",
    "MB/s",
    "time / node:zlib time",
    "stored bytes",
    "ratio (comp/orig)",
  ];
  return [
    table(head, [
      row("node:zlib zstdCompressSync, level 3, whole buffer", zlib.c, zlib.c, frame.length),
      row(
        `mmh compress() (zstd-3, default ${sizeLabel(DEFAULT_CHUNK_SIZE)} chunks)`,
        api.c,
        zlib.c,
        packed.length,
      ),
      row("node:zlib zstdDecompressSync, whole buffer", zlib.d, zlib.d, frame.length),
      row("mmh decompress()", api.d, zlib.d, packed.length),
    ]),
    "",
    `${reps} timed runs each after one warm-up, alternating the two, median shown.`,
  ];
}

async function waitForCli(): Promise<boolean> {
  const minutes = Number(argValue("--wait") ?? 0);
  for (let i = 0; i < minutes && !existsSync(cli); i++) {
    console.log(`waiting for ${relative(root, cli)} (${i + 1}/${minutes}) ...`);
    await new Promise((resolve) => setTimeout(resolve, 60_000));
  }
  return existsSync(cli);
}

async function main(): Promise<void> {
  const started = performance.now();
  const waitAtStart = cpuWaitMicros();
  mkdirSync(workDir, { recursive: true });
  const file = join(workDir, `bf16-${size}.bin`);
  // The data is generated in memory every time (it is deterministic); the file is
  // written only when it is missing or differs.
  let data = bf16Weights(size, 1);
  const inputSha = createHash("sha256").update(data).digest("hex");
  if (existsSync(file) && statSync(file).size === size && (await sha256File(file)) === inputSha) {
    console.log(`reusing ${relative(root, file)}`);
  } else {
    writeFileSync(file, data);
    console.log(`wrote ${relative(root, file)} (${sizeLabel(size)} of BF16 weights)`);
  }

  console.log("in-process API vs node:zlib ...");
  const inProcessLines = await inProcess(data);
  console.log(inProcessLines.join("\n"));
  data = Buffer.alloc(0);
  collectGarbage();

  const lines: string[] = [
    "# mmh CLI vs zstd CLI",
    "",
    ...machineLines(`npx node bench/vs-zstd.ts${defaultSize ? "" : ` --size ${argValue("--size")}`}`),
    `- zstd CLI: ${zstdCliVersion()}`,
    `- Input: ${sizeLabel(size)} of generated BF16 weights, N(0, 0.02) with a per-row scale (seed 1), in .bench-data/ and in the page cache.`,
    "",
  ];

  if (!(await waitForCli())) {
    console.log(`\n${relative(root, cli)} does not exist yet: skipped the CLI comparison.`);
    lines.push(`${relative(root, cli)} did not exist when this ran: no CLI figures.`, "");
  } else {
    const zst = `${file}.zst`;
    const mmh = `${file}.mmh`;
    const outZ = `${file}.zst.out`;
    const outM = `${file}.mmh.out`;
    const node = process.execPath;
    const ops = {
      zstdC: ["zstd", ["-3", "-q", "-f", "-T1", file, "-o", zst]],
      mmhC: [node, [cli, "compress", file, "-o", mmh, "-f", "-q", "--codec", "zstd"]],
      zstdD: ["zstd", ["-d", "-q", "-f", zst, "-o", outZ]],
      mmhD: [node, [cli, "decompress", mmh, "-o", outM, "-f", "-q"]],
    } as const satisfies Record<string, readonly [string, readonly string[]]>;
    const timings: Record<keyof typeof ops, Timing> = {
      zstdC: { label: "zstd -3 -T1", ms: [] },
      mmhC: { label: "mmh compress --codec zstd", ms: [] },
      zstdD: { label: "zstd -d", ms: [] },
      mmhD: { label: "mmh decompress", ms: [] },
    };
    const go = (key: keyof typeof ops) => run(ops[key][0], [...ops[key][1]]);
    try {
      console.log(`\nCLI: one warm-up, then ${runs} runs of each, alternating ...`);
      for (const phase of [
        ["zstdC", "mmhC"],
        ["zstdD", "mmhD"],
      ] as const) {
        for (let r = -1; r < runs; r++) {
          for (const key of r % 2 === 0 ? phase : [...phase].reverse()) {
            const ms = go(key);
            if (r >= 0) timings[key].ms.push(ms);
          }
        }
      }
      const [shaZ, shaM] = [await sha256File(outZ), await sha256File(outM)];
      const okZ = shaZ === inputSha;
      const okM = shaM === inputSha;
      if (!okZ || !okM)
        throw new Error(`round trip failed: zstd ${okZ ? "ok" : "differs"}, mmh ${okM ? "ok" : "differs"}`);
      const sizeZ = statSync(zst).size;
      const sizeM = statSync(mmh).size;
      const used: Partial<Record<keyof typeof ops, Usage>> = {};
      for (const key of Object.keys(ops) as (keyof typeof ops)[]) {
        const u = usage(ops[key][0], [...ops[key][1]]);
        if (u !== undefined) used[key] = u;
      }

      const cell = (key: keyof typeof ops) => {
        const ms = median(timings[key].ms);
        return [fmt(ms / 1000, 3), fmt(mbps(size, ms))];
      };
      const rssCell = (key: keyof typeof ops) => (used[key] ? fmt(used[key].rssKiB / 1024, 0) : "n/a");
      const cpuCell = (key: keyof typeof ops) =>
        used[key] ? `${fmt(used[key].cpuSeconds, 2)} / ${fmt(used[key].wallSeconds, 2)}` : "n/a";
      const ratio = (a: keyof typeof ops, b: keyof typeof ops) =>
        fmt(median(timings[a].ms) / median(timings[b].ms), 2);
      const speedTable = table(
        [
          "operation",
          "zstd CLI s",
          "zstd MB/s",
          "mmh CLI s",
          "mmh MB/s",
          "mmh time / zstd time",
          "zstd peak RSS MiB",
          "mmh peak RSS MiB",
          "zstd CPU s / wall s",
          "mmh CPU s / wall s",
        ],
        [
          [
            "compress",
            ...cell("zstdC"),
            ...cell("mmhC"),
            ratio("mmhC", "zstdC"),
            rssCell("zstdC"),
            rssCell("mmhC"),
            cpuCell("zstdC"),
            cpuCell("mmhC"),
          ],
          [
            "decompress",
            ...cell("zstdD"),
            ...cell("mmhD"),
            ratio("mmhD", "zstdD"),
            rssCell("zstdD"),
            rssCell("mmhD"),
            cpuCell("zstdD"),
            cpuCell("mmhD"),
          ],
        ],
      );
      const sizeTable = table(
        ["file", "bytes", "ratio (comp/orig)", "orig/comp"],
        [
          ["input", String(size), "1.0000", "1.000"],
          [".zst (zstd -3)", String(sizeZ), fmt(sizeZ / size, 4), fmt(size / sizeZ, 3)],
          [".mmh (--codec zstd)", String(sizeM), fmt(sizeM / size, 4), fmt(size / sizeM, 3)],
        ],
      );
      const all = (key: keyof typeof ops) => timings[key].ms.map((ms) => fmt(ms / 1000, 3)).join(", ");
      lines.push(
        "## CLI, wall clock including process start",
        "",
        "Commands (FILE is the input in .bench-data/):",
        "",
        "- `zstd -3 -q -f -T1 FILE -o FILE.zst` against `node bin/mmh.js compress FILE -o FILE.mmh -f -q --codec zstd`",
        "- `zstd -d -q -f FILE.zst -o OUT` against `node bin/mmh.js decompress FILE.mmh -o OUT -f -q`",
        "",
        `mmh runs with its default chunk size (the library's DEFAULT_CHUNK_SIZE is ${sizeLabel(DEFAULT_CHUNK_SIZE)}).`,
        "",
        `Node is spawned from \`process.execPath\` (${process.version}). One warm-up, then ${runs} runs of each, the two tools alternating; median shown. MB/s is input bytes (10^6) per second. "mmh time / zstd time" < 1 means mmh is faster. Both decompressed outputs have the input's sha256 (${inputSha.slice(0, 16)}...). Peak RSS and CPU time (user + system; more CPU than wall time means more than one thread at work) are from one more run of each under \`${TIME_BIN} -v\`${existsSync(TIME_BIN) ? "" : " (not installed here)"}. ${CLEAR_OUTPUT_NOTE}`,
        "",
        speedTable,
        "",
        sizeTable,
        "",
        "All runs (seconds):",
        "",
        `- zstd compress: ${all("zstdC")}`,
        `- mmh compress: ${all("mmhC")}`,
        `- zstd decompress: ${all("zstdD")}`,
        `- mmh decompress: ${all("mmhD")}`,
        "",
      );
      console.log(`\n${speedTable}\n\n${sizeTable}`);
    } finally {
      if (!keep) for (const f of [zst, mmh, outZ, outM]) rmSync(f, { force: true });
    }
  }

  lines.push(
    "## In process, for context: the API against node:zlib on the whole buffer",
    "",
    "The same data held in memory; `compress()` / `decompress()` from src/index.ts against one `zstdCompressSync` / `zstdDecompressSync` call over the whole buffer (level 3, `chunkSize: 1 << 20`, `pledgedSrcSize`). mmh's figures include its per-chunk CRC-32 and the content sha256.",
    "",
    ...inProcessLines,
    "",
    `Total time of this run: ${fmt((performance.now() - started) / 1000, 0)} s. ${contentionNote(waitAtStart, performance.now() - started)}`,
    "",
  );
  if (outFile) {
    mkdirSync(dirname(outFile), { recursive: true });
    writeFileSync(outFile, lines.join("\n"));
    console.log(`\nwrote ${outFile}`);
  }
}

await main();
