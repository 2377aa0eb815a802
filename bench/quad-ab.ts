/**
 * The Huffman decode kernel (decodeLanesQuad, assembly/decode.ts) of other kernel builds
 * against this checkout's, on the same blocks in the same run: the exponent stream
 * (FP16: the f16 layout's first stream, bits 7-14, and each byte plane of the planes2
 * layout, which HIER picks for these FP16 sets) of 16 chunks of 512 KiB of each float
 * type, cut from bench/speed.ts's real F32 weights (../shared/data and the PaddleOCR ONNX
 * files) tiled, and their BF16 and FP16 roundings (real-derived), Huffman-coded; each
 * block decoded with the table width HIER picks, tables built (buildSingle, buildQuad)
 * included. Each build runs in its own instance; rounds alternate which build goes first,
 * and each round times all 16 blocks in CPU time. Every build's output is compared with
 * the stream it was coded from.
 *
 *   npx node bench/quad-ab.ts OTHER.wasm [OTHER2.wasm ...]   (writes bench/results/quad-ab.md)
 * With --widths instead of builds: this build's lookups with the 11-bit table against the
 * 12-bit one, on every set's blocks whose codes an 11-bit table takes (whatever width
 * kernelTableBits picks for them); writes bench/results/quad-widths.md. With --single,
 * decodeLanesQuad against decodeLanesSingle (bench/results/quad-single.md); with --two,
 * decodeLanesQuad against decodeLanesTwo on the blocks HIER decodes with the latter
 * (bench/results/quad-two.md), the latter at the width HIER took for such blocks before
 * (12 bits from 131072 symbols, else 11). --chunk SIZE cuts the sets into chunks of SIZE
 * (512K) before taking their streams.
 * Options: --runs N (61), --out FILE, --quick (11 runs, writes nothing). An OTHER.wasm is
 * any build of assembly/kernels.ts (`npx asc assembly/kernels.ts --outFile OTHER.wasm -O3
 * --runtime stub --memoryBase 32768 --noAssert --enable simd`, as scripts/build.ts builds it)
 * whose decodeLanesQuad, buildSingle and buildQuad take this build's arguments.
 */
import "./lib/help.ts";
import { readFileSync } from "node:fs";
import { basename, join } from "node:path";
import {
  checkHuffmanBlock,
  histogram,
  huffmanEncode,
  kernelTableBits,
  twoSymbolLookups,
} from "../src/codecs/hier/huffman.ts";
import type { KernelExports } from "../src/codecs/hier/kernels.ts";
import { layoutForDType } from "../src/codecs/hier/layouts.ts";
import type { DTypeName } from "../src/common/dtype.ts";
import { codeLine, root, writeReport } from "./lib/commands.ts";
import { speedF32Parts, tile, toBf16, toF16 } from "./lib/derived.ts";
import {
  argValue,
  contentionNote,
  cpuWaitMicros,
  fmt,
  machineLines,
  median,
  parseSizeArg,
  table,
} from "./lib/report.ts";

const quick = process.argv.includes("--quick");
const runs = Number(argValue("--runs") ?? (quick ? 11 : 61));
const widths = process.argv.includes("--widths");
const singles = process.argv.includes("--single");
const twos = process.argv.includes("--two");
const outFile =
  argValue("--out") ??
  (quick
    ? undefined
    : join(
        root,
        "bench",
        "results",
        widths ? "quad-widths.md" : singles ? "quad-single.md" : twos ? "quad-two.md" : "quad-ab.md",
      ));
const others = process.argv
  .slice(2)
  .filter((arg, i, all) => arg.endsWith(".wasm") && all[i - 1] !== "--out" && all[i - 1] !== "--runs");
if (others.length === 0 && !widths && !singles && !twos) {
  console.error(
    "quad-ab: give one or more kernel builds (FILE.wasm) to compare with this checkout's, or --widths",
  );
  process.exit(2);
}
const started = performance.now();
const waitAtStart = cpuWaitMicros();

/** The kernels a build must export for this bench (the decoder's table builds and lookups). */
type QuadExports = Pick<
  KernelExports,
  "heapBase" | "buildSingle" | "buildQuad" | "decodeLanesQuad" | "memory"
> &
  Partial<Pick<KernelExports, "decodeLanesSingle" | "buildTwo" | "decodeLanesTwo">>;
const api = (
  globalThis as unknown as {
    WebAssembly: { Module: new (b: Uint8Array) => object; Instance: new (m: object) => { exports: object } };
  }
).WebAssembly;
const instance = (path: string) =>
  new api.Instance(new api.Module(readFileSync(path))).exports as QuadExports;
const stamp = JSON.parse(readFileSync(join(root, ".cache", "kernels.json"), "utf8")) as { wasm: string };
const mine = instance(join(root, ".cache", stamp.wasm));

const chunkArg = argValue("--chunk");
const CHUNK = chunkArg ? parseSizeArg(chunkArg) : 512 << 10;
const CHUNKS = 16;
const parts = await speedF32Parts();
/** The stream of one chunk a set decodes: a layout's stream s, or a byte plane of 2-byte elements. */
const layoutStream = (dtype: DTypeName, s: number) => (raw: Uint8Array) => {
  const layout = layoutForDType(dtype);
  const n = raw.length / layout.width;
  const streams = Array.from(
    { length: layout.streams },
    (_, s) => new Uint8Array(n * (layout.perElement?.[s] ?? 1)),
  );
  layout.split(raw, n, streams);
  return streams[s];
};
const plane = (p: number) => (raw: Uint8Array) => raw.filter((_, i) => (i & 1) === p);
const sets = [
  ["real-derived BF16 exponents", toBf16, layoutStream("BF16", 0)],
  ["real-derived BF16 sign and mantissa", toBf16, layoutStream("BF16", 1)],
  ["real-derived FP16 bits 7-14", toF16, layoutStream("F16", 0)],
  ["real-derived FP16 high bytes", toF16, plane(1)],
  ["real-derived FP16 low bytes", toF16, plane(0)],
  ["real F32 exponents", (x: Uint8Array) => x, layoutStream("F32", 0)],
  ["real F32 sign and mantissa top", (x: Uint8Array) => x, layoutStream("F32", 3)],
] as const;

interface Block {
  block: Uint8Array;
  n: number;
  stream: Uint8Array;
}

/**
 * All blocks decoded by build x (with a table of `width` bits where the codes fit in 11,
 * when given): `run` builds each block's tables and decodes it,
 * `tables` only builds them, `lookups` only decodes (with the last tables built, so
 * after `run` and only for one block); checks each output once.
 */
function decoder(
  x: QuadExports,
  blocks: readonly Block[],
  width?: number,
  oneSymbol = false,
  twoSymbols = false,
): { run: () => void; tables: () => void; lookups: () => void } {
  const need = (blocks.length + 1) << 20;
  if (x.memory.buffer.byteLength < need)
    x.memory.grow(Math.ceil((need - x.memory.buffer.byteLength) / 65536) + 16);
  const at = (x.heapBase() + 65535) & ~65535;
  const lanes = new Int32Array(16);
  const calls = blocks.map(({ block, n, stream }, i) => {
    const base = at + i * (1 << 20);
    const [lanesAt, single, lengthsAt, blockAt] = [base, base + 1024, base + 10240, base + 32768];
    const out = blockAt + block.length + 64;
    const mem = new Uint8Array(x.memory.buffer);
    mem.set(block, blockAt);
    mem.fill(0, blockAt + block.length, blockAt + block.length + 8);
    const checked = checkHuffmanBlock(block, n, mem.subarray(lengthsAt, lengthsAt + 256), lanes);
    const bits = width !== undefined && checked === 11 ? width : kernelTableBits(checked, n, lanes);
    new Int32Array(x.memory.buffer, lanesAt, 16).set(lanes);
    const decodeSingle = x.decodeLanesSingle;
    if (oneSymbol && decodeSingle === undefined) throw new Error("this build has no decodeLanesSingle");
    const { buildTwo, decodeLanesTwo } = x;
    if (twoSymbols && (buildTwo === undefined || decodeLanesTwo === undefined))
      throw new Error("this build has no decodeLanesTwo");
    const tables = oneSymbol
      ? () => x.buildSingle(lengthsAt, bits, single)
      : twoSymbols && buildTwo !== undefined
        ? () => {
            x.buildSingle(lengthsAt, bits, single);
            buildTwo(single);
          }
        : () => {
            x.buildSingle(lengthsAt, bits, single);
            x.buildQuad(single, bits);
          };
    const lookups =
      oneSymbol && decodeSingle !== undefined
        ? () => decodeSingle(blockAt, block.length, out, n, single, bits, lanesAt)
        : twoSymbols && decodeLanesTwo !== undefined
          ? () => decodeLanesTwo(blockAt, block.length, out, n, single, bits, lanesAt)
          : () => x.decodeLanesQuad(blockAt, block.length, out, n, single, bits, lanesAt);
    tables();
    lookups();
    if (!Buffer.from(x.memory.buffer, out, n).equals(stream)) throw new Error("a build decoded other bytes");
    return { tables, lookups };
  });
  return {
    run: () => {
      for (const call of calls) {
        call.tables();
        call.lookups();
      }
    },
    tables: () => {
      for (const call of calls) call.tables();
    },
    lookups: () => calls[calls.length - 1].lookups(),
  };
}

/** Median CPU microseconds of `runs` calls of work. */
function cpuMicros(work: () => void): number {
  const took: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = process.cpuUsage();
    work();
    const d = process.cpuUsage(t0);
    took.push(d.user + d.system);
  }
  return median(took);
}

/**
 * The width HIER decoded a block of n symbols (5 to 7 bits a symbol) at with buildQuad's
 * table before decodeLanesTwo: the 12-bit one from 131072 symbols, else the 11-bit one.
 */
const quadWidth = (n: number) => (n >= 131_072 ? 12 : 11);

/** Whether HIER decodes `block` (n symbols) with decodeLanesTwo: the width and bits it picks by. */
function picksTwo(block: Uint8Array, n: number): boolean {
  const lanes = new Int32Array(16);
  const checked = checkHuffmanBlock(block, n, new Uint8Array(256), lanes);
  return twoSymbolLookups(n, lanes, kernelTableBits(checked, n, lanes));
}

const shares: string[][] = [];

const rows: string[][] = [];
for (const [data, convert, streamOf] of sets) {
  const all = tile(parts.map(convert), CHUNKS * CHUNK);
  const blocks: Block[] = [];
  for (let c = 0; c < CHUNKS; c++) {
    const stream = streamOf(all.subarray(c * CHUNK, (c + 1) * CHUNK));
    const block = huffmanEncode(stream, histogram(stream));
    // Type 2: a Huffman block (not stored or a single symbol); with --two, those HIER
    // decodes with decodeLanesTwo.
    if (block[0] === 2 && (!twos || picksTwo(block, stream.length)))
      blocks.push({ block, n: stream.length, stream });
  }
  // A set whose streams all came out stored or single-symbol here has nothing to decode.
  if (blocks.length === 0) continue;
  const symbols = blocks.reduce((sum, b) => sum + b.n, 0);
  {
    // This build's table builds against its lookups, per block.
    const own = decoder(mine, blocks);
    own.run();
    const tables = cpuMicros(own.tables) / blocks.length;
    own.run();
    const lookups = cpuMicros(own.lookups);
    shares.push([data, fmt(tables, 1), fmt(lookups, 1), `${fmt((100 * tables) / (tables + lookups), 1)}%`]);
  }
  // With --widths, "this build" is the 11-bit table and "other" the 12-bit one.
  const modes = widths
    ? ["12-bit table"]
    : singles
      ? ["one symbol a lookup"]
      : twos
        ? ["up to 2 symbols a lookup"]
        : others;
  for (const other of modes) {
    const pair = widths
      ? [decoder(mine, blocks, 11).run, decoder(mine, blocks, 12).run]
      : singles
        ? [decoder(mine, blocks).run, decoder(mine, blocks, undefined, true).run]
        : twos
          ? [
              decoder(mine, blocks, quadWidth(blocks[0].n)).run,
              decoder(mine, blocks, undefined, false, true).run,
            ]
          : [decoder(mine, blocks).run, decoder(instance(other), blocks).run];
    for (let i = 0; i < 10; i++) for (const run of pair) run();
    const times: number[][] = [[], []];
    const ratios: number[] = [];
    for (let r = 0; r < runs; r++) {
      const took = [0, 0];
      for (const j of r % 2 ? [1, 0] : [0, 1]) {
        const t0 = process.cpuUsage();
        pair[j]();
        const d = process.cpuUsage(t0);
        took[j] = d.user + d.system;
      }
      times[0].push(took[0]);
      times[1].push(took[1]);
      ratios.push(took[0] / took[1]);
    }
    const row = [
      basename(other),
      `${data} (${blocks.length} blocks, ${fmt((8 * blocks.reduce((sum, b) => sum + b.block.length, 0)) / symbols, 2)} bits a symbol)`,
      fmt(symbols / median(times[0])),
      fmt(symbols / median(times[1])),
      `${fmt(median(ratios), 3)}x`,
    ];
    console.log(row.join("  "));
    rows.push(row);
  }
}

const elapsed = performance.now() - started;
writeReport(outFile, [
  widths
    ? "# Huffman decode kernel: the 12-bit table against the 11-bit one"
    : singles
      ? "# Huffman decode kernel: one symbol a lookup against buildQuad's table"
      : twos
        ? "# Huffman decode kernel: up to 2 symbols a lookup against buildQuad's table"
        : "# Huffman decode kernel: other builds against this one",
  "",
  ...machineLines(
    `npx node bench/quad-ab.ts ${widths ? "--widths" : singles ? "--single" : twos ? "--two" : others.map((o) => basename(o)).join(" ")} --runs ${runs}${chunkArg ? ` --chunk ${chunkArg}` : ""}`,
  ),
  codeLine(),
  `- ${contentionNote(waitAtStart, elapsed)}`,
  `- Median of ${runs} alternating rounds, CPU time of decoding all blocks (tables built); Msym/s = million symbols a second; the last column is this build's time over the other's (above 1: the other is faster).${widths ? ' Here both are this build: "this build" with the 11-bit table (3 lookups a read), "other" with the 12-bit one (4 lookups a read), for every block (all of them take 11-bit codes).' : ""}${singles ? ' Here both are this build: "this build" with buildQuad\'s table and decodeLanesQuad, "other" with decodeLanesSingle (one symbol a lookup from buildSingle\'s table alone), each at the width kernelTableBits picks.' : ""}${twos ? ' Here both are this build, on the blocks HIER decodes with decodeLanesTwo (the 12-bit width, from 5 bits a symbol): "this build" with buildQuad\'s table and decodeLanesQuad at the width HIER took for them before (12 bits from 131072 symbols, else 11), "other" with buildTwo\'s table and decodeLanesTwo.' : ""} Blocks: ${CHUNKS} chunks of ${CHUNK >> 10} KiB a set.`,
  "",
  table(["other build", "data", "this build Msym/s", "other Msym/s", "other's speed-up"], rows),
  "",
  "This build's table builds (buildSingle and buildQuad) against its lookups (decodeLanesQuad) for one block, median CPU time of the same runs count (the lookups of the set's last block):",
  "",
  table(["data", "tables µs a block", "lookups µs a block", "tables' share"], shares),
  "",
]);
