/**
 * The CRC-32 MMH computes over every chunk's raw bytes (on compress and on every decode):
 * node:zlib's crc32 against @node-rs/crc32's native one (src/common/crc.ts), interleaved
 * in the same run, on real weights: the F32 tensor data of ../shared/data, tiled, and the
 * same rounded to BF16 (real-derived), in pieces of each size. Also the native module's
 * load time, which src/common/crc.ts pays once a process has checked 32 MiB with zlib's.
 *
 *   npx node bench/crc.ts            (writes bench/results/crc.md)
 *   npx node bench/crc.ts --quick    fewer repetitions, writes nothing
 * Options: --runs N, --out FILE
 */
import "./lib/help.ts";
import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { crc32 as zlibCrc32 } from "node:zlib";
import { crc32, NATIVE_CRC_AFTER_BYTES, NATIVE_CRC_MIN_BYTES, nativeCrc } from "../src/common/crc.ts";
import { codeLine, root, writeReport } from "./lib/commands.ts";
import { safetensorsData, tile, toBf16 } from "./lib/derived.ts";
import {
  argValue,
  contentionNote,
  cpuWaitMicros,
  fmt,
  KiB,
  MiB,
  machineLines,
  median,
  table,
} from "./lib/report.ts";

const quick = process.argv.includes("--quick");
const runs = Number(argValue("--runs") ?? (quick ? 5 : 21));
const outFile = argValue("--out") ?? (quick ? undefined : join(root, "bench", "results", "crc.md"));
const started = performance.now();
const waitAtStart = cpuWaitMicros();
if (!nativeCrc()) throw new Error("@node-rs/crc32 does not load here: nothing to compare");

const TOTAL = 64 * MiB;
const dataDir = join(root, "..", "shared", "data");
const parts = readdirSync(dataDir)
  .filter((f) => f.endsWith(".safetensors"))
  .sort()
  .map((f) => safetensorsData(join(dataDir, f)));
const inputs = [
  { name: "F32 real", bytes: tile(parts, TOTAL) },
  { name: "BF16 real-derived", bytes: tile(parts.map(toBf16), TOTAL) },
];

const rows: string[][] = [];
for (const { name, bytes } of inputs)
  for (const piece of [4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, 512 * KiB, 4 * MiB, 64 * MiB]) {
    // One pass over the input in pieces: its time, and the pieces' CRCs folded together,
    // which must be the same for both (a check that the faster one computes the same).
    const pass = (f: (b: Uint8Array) => number) => {
      let folded = 0;
      const t0 = performance.now();
      for (let at = 0; at < bytes.length; at += piece)
        folded = (folded * 31 + f(bytes.subarray(at, at + piece))) >>> 0;
      return { ms: performance.now() - t0, folded };
    };
    const z: number[] = [];
    const n: number[] = [];
    const ratio: number[] = [];
    // MMH's crc32: the native module's from its threshold on, zlib's below it.
    const want = pass(zlibCrc32).folded;
    if (pass(crc32).folded !== want) throw new Error(`${name}, ${piece} B pieces: the CRCs differ`);
    for (let r = 0; r < runs; r++) {
      const first = r % 2 === 0;
      const a = first ? pass(zlibCrc32).ms : 0;
      const b = pass(crc32).ms;
      const c = first ? a : pass(zlibCrc32).ms;
      z.push(c);
      n.push(b);
      ratio.push(c / b);
    }
    const gbps = (ms: number) => fmt(bytes.length / 1e6 / ms, 2);
    rows.push([
      name,
      piece >= MiB ? `${piece / MiB} MiB` : `${piece / KiB} KiB`,
      gbps(median(z)),
      piece >= NATIVE_CRC_MIN_BYTES ? gbps(median(n)) : `${gbps(median(n))} (zlib's)`,
      `${fmt(median(ratio), 2)}x`,
    ]);
  }

// The load: a fresh process each time (the module is loaded once per process).
const loads: number[] = [];
const url = new URL("../src/common/crc.ts", import.meta.url).href;
for (let r = 0; r < Math.min(runs, 11); r++) {
  const script = `const t = performance.now(); const { nativeCrc } = await import(${JSON.stringify(url)});
    const m = performance.now(); nativeCrc(); console.log(performance.now() - m);`;
  loads.push(
    Number(execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" })),
  );
}

const elapsed = performance.now() - started;
const lines = [
  "# CRC-32: node:zlib against @node-rs/crc32",
  "",
  ...machineLines("npx node bench/crc.ts"),
  codeLine(),
  `- ${contentionNote(waitAtStart, elapsed)}`,
  `- Median of ${runs} runs, the two interleaved (which goes first alternates); ratio = zlib's time / native's per run, median.`,
  "",
  `64 MiB of each input, CRC'd in pieces of each size (GB/s of input). MMH uses the native module for pieces of ${NATIVE_CRC_MIN_BYTES / KiB} KiB or more, once a process has checked ${NATIVE_CRC_AFTER_BYTES / MiB} MiB with zlib's (src/common/crc.ts), so that the load is repaid; MMH's chunks are 512 KiB by default, and every chunk's raw bytes are CRC'd once on compress and once on each decode.`,
  "",
  table(["input", "piece", "node:zlib GB/s", "native GB/s", "native speed-up"], rows),
  "",
  `Loading the native module (once per process): ${fmt(median(loads), 1)} ms median over ${loads.length} fresh processes.`,
  "",
];
console.log(lines.join("\n"));
writeReport(outFile, lines);
