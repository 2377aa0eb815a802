/**
 * Each WebAssembly kernel of HIER (assembly/kernels.ts) against its TypeScript twin, on
 * the same real-derived data in the same run: the F32 tensor data of ../shared/data
 * (real), rounded to BF16 (real-derived), cut into 512 KiB chunks (MMH's default chunk
 * size). Kernel times include copying data into and out of the kernels' memory where
 * HIER's use of them does (noted per row). Also node:zlib's crc32, the CRC MMH uses.
 *
 *   npx node bench/kernels.ts            (writes bench/results/kernels.md)
 *   npx node bench/kernels.ts --quick    fewer repetitions, writes nothing
 * Options: --runs N, --out FILE, --baseline DIR (another checkout, its dist/ built: adds
 * rows of the merge kernels, the Huffman decode kernel (decodeLanesQuad) and the encode
 * kernels (split with counts, histogram, Huffman encode with its pair table) of DIR's
 * build against this one's, the encode kernels also on a chunk of bench/speed.ts's inputs).
 */
import "./lib/help.ts";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { crc32 } from "node:zlib";
import { kernelDecode, kernelSplit } from "../src/codecs/hier/fused.ts";
import { hierEncode } from "../src/codecs/hier/hier.ts";
import {
  canonicalCodes,
  checkHuffmanBlock,
  codeLengths,
  histogram,
  huffmanDecode,
  huffmanDecodeBf16,
  huffmanEncode,
  kernelTableBits,
  oneSymbolTable,
  prepareHuffmanBlock,
} from "../src/codecs/hier/huffman.ts";
import { kernels, setKernels } from "../src/codecs/hier/kernels.ts";
import { layoutForDType } from "../src/codecs/hier/layouts.ts";
import { codeLine, root, writeReport } from "./lib/commands.ts";
import { safetensorsData, speedF32Parts, tile, toBf16, toF16 } from "./lib/derived.ts";
import { argValue, contentionNote, cpuWaitMicros, fmt, machineLines, median, table } from "./lib/report.ts";

const quick = process.argv.includes("--quick");
const runs = Number(argValue("--runs") ?? (quick ? 5 : 31));
const outFile = argValue("--out") ?? (quick ? undefined : join(root, "bench", "results", "kernels.md"));
const started = performance.now();
const waitAtStart = cpuWaitMicros();
const k = kernels();
if (!k) throw new Error("the WebAssembly kernels are not built: run `node scripts/build.ts --kernels`");
// Grown once here, so no later begin() grows the memory (which would detach the views below).
k.begin(64 << 20);

const CHUNK = 512 << 10;
const dataDir = join(root, "..", "shared", "data");
const f32Parts = readdirSync(dataDir)
  .filter((f) => f.endsWith(".safetensors"))
  .sort()
  .map((f) => safetensorsData(join(dataDir, f)));
const f32 = tile(f32Parts, CHUNK);
const bf16 = tile(f32Parts.map(toBf16), CHUNK);

interface Row {
  kernel: string;
  data: string;
  ts: number;
  wasm: number;
  bytes: number;
  note: string;
}
const rows: Row[] = [];

/** Median ms of `ts` and `wasm`, interleaved run by run. */
function pair(
  kernel: string,
  data: string,
  bytes: number,
  ts: () => void,
  wasm: () => void,
  note = "",
): void {
  const a: number[] = [];
  const b: number[] = [];
  // Warm-up: V8 optimises each side with the feedback of many calls first.
  for (let i = 0; i < 20; i++) {
    ts();
    wasm();
  }
  for (let r = 0; r < runs; r++) {
    let t = performance.now();
    ts();
    a.push(performance.now() - t);
    t = performance.now();
    wasm();
    b.push(performance.now() - t);
  }
  const row = { kernel, data, ts: median(a), wasm: median(b), bytes, note };
  rows.push(row);
  console.log(
    `${kernel} (${data}): TS ${fmt(rate(row.bytes, row.ts))} MB/s, kernel ${fmt(rate(row.bytes, row.wasm))} MB/s`,
  );
}
const rate = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000);

// Split and merge of every layout HIER uses for these dtypes, on aligned copies.
for (const [dtype, raw] of [
  ["BF16", bf16],
  ["F32", f32],
  ["I16", bf16],
  ["I32", f32],
  ["F64", f32],
  ["Q8_0", f32],
] as const) {
  const layout = layoutForDType(dtype);
  const n = Math.floor(raw.length / layout.width);
  const src = new Uint8Array(raw.subarray(0, n * layout.width));
  const streams = Array.from(
    { length: layout.streams },
    (_, s) => new Uint8Array(n * (layout.perElement?.[s] ?? 1)),
  );
  const label = `${layout.name}${dtype === "I16" || dtype === "I32" || dtype === "F64" ? ` (${dtype} planes)` : ""}`;
  const counts = new Uint32Array(256);
  pair(
    `split ${label}${layout.splitCounting ? " + exponent counts" : ""}`,
    dtype === "BF16" ? "real-derived BF16" : "real F32",
    src.length,
    () =>
      layout.splitCounting ? layout.splitCounting(src, n, streams, counts) : layout.split(src, n, streams),
    () => kernelSplit(layout, src, 0, n),
    "kernel: input copied in",
  );
  // Decode: the TypeScript merge against the kernel path of a stored-streams payload.
  const out = new Uint8Array(src.length);
  const parts = streams.map((s, i) => ({
    method: 1,
    start: streams.slice(0, i).reduce((a, x) => a + x.length, 0),
    length: s.length,
  }));
  const payload = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  for (const [i, s] of streams.entries()) payload.set(s, parts[i].start);
  const views = parts.map((p) => payload.subarray(p.start, p.start + p.length));
  pair(
    `merge ${label}`,
    dtype === "BF16" ? "real-derived BF16" : "real F32",
    src.length,
    () => layout.merge(views, n, out),
    () => kernelDecode(layout, parts, payload, n, out),
    "kernel: streams copied in, output copied out",
  );
}

// Histogram and Huffman coding of the BF16 exponent and sign|mantissa streams.
{
  const layout = layoutForDType("BF16");
  const n = bf16.length / 2;
  const streams = [new Uint8Array(n), new Uint8Array(n)];
  layout.split(bf16, n, streams);
  for (const [s, name] of [
    [0, "exponents"],
    [1, "sign/mantissa"],
  ] as const) {
    const plain = streams[s];
    const split = kernelSplit(layout, bf16, 0, n);
    if (!split) throw new Error("no kernel split");
    const resident = split.streams[s];
    pair(
      `histogram`,
      `BF16 ${name}`,
      n,
      () => histogram(plain),
      () => histogram(resident),
      "kernel: data already in its memory",
    );
    const hist = histogram(plain);
    const block = huffmanEncode(plain, hist);
    pair(
      `Huffman encode`,
      `BF16 ${name}`,
      n,
      () => huffmanEncode(plain, hist),
      () => huffmanEncode(resident, hist),
      block[0] === 2
        ? "both: plan, codebook and pair table included"
        : "the block is stored (Huffman would not be smaller): a copy on both sides",
    );
    if (block[0] !== 2) continue;
    const out = new Uint8Array(n);
    const single = new Uint16Array(k.u8().buffer, k.at.single, 2048);
    const multi = new Int32Array(k.u8().buffer, k.at.multi, 2048);
    const lanes = new Int32Array(k.u8().buffer, k.at.lanes, 16);
    k.begin(2 * n + block.length + 64 + 256 + 32);
    const blockAt = k.alloc(block.length + 8);
    const outAt = k.alloc(n);
    const lengthsAt = k.alloc(256);
    k.u8().set(block, blockAt);
    k.u8().fill(0, blockAt + block.length, blockAt + block.length + 8);
    pair(
      `Huffman decode (4 lanes, up to 3 symbols a lookup)`,
      `BF16 ${name}`,
      n,
      () => huffmanDecode(block, out),
      () => {
        const bits = prepareHuffmanBlock(block, n, single, multi, lanes);
        k.x.decodeLanes(blockAt, block.length, outAt, n, k.at.multi, k.at.single, bits, k.at.lanes);
      },
      "both: codebook read and tables built; kernel: block already in its memory",
    );
    pair(
      `Huffman decode kernel, up to 4 symbols a lookup (decodeLanesQuad) vs up to 3 (decodeLanes)`,
      `BF16 ${name}`,
      n,
      () => {
        const bits = prepareHuffmanBlock(block, n, single, multi, lanes);
        k.x.decodeLanes(blockAt, block.length, outAt, n, k.at.multi, k.at.single, bits, k.at.lanes);
      },
      () => {
        const bits = kernelTableBits(
          checkHuffmanBlock(block, n, k.u8().subarray(lengthsAt, lengthsAt + 256), lanes),
          n,
          lanes,
        );
        k.x.buildSingle(lengthsAt, bits, k.at.single);
        k.x.buildQuad(k.at.single, bits);
        k.x.decodeLanesQuad(blockAt, block.length, outAt, n, k.at.single, bits, k.at.lanes);
      },
      "here the TS column is decodeLanes (3 a lookup, tables built in TypeScript), the kernel column what HIER uses: decodeLanesQuad, its tables built by buildSingle and buildQuad",
    );
    // Short blocks (a small tensor's chunk): buildQuad's table and decodeLanesQuad against
    // decodeLanesSingle (one symbol a lookup from the one-symbol table alone), which HIER
    // takes below oneSymbolTable's threshold; 16 blocks a run.
    for (const short of s === 0 ? [2048, 4096, 8190] : []) {
      const symbols = plain.subarray(0, short);
      const shortBlock = huffmanEncode(symbols, histogram(symbols));
      if (shortBlock[0] !== 2) continue;
      k.u8().set(shortBlock, blockAt);
      k.u8().fill(0, blockAt + shortBlock.length, blockAt + shortBlock.length + 8);
      const bits = checkHuffmanBlock(shortBlock, short, k.u8().subarray(lengthsAt, lengthsAt + 256), lanes);
      const run = (single: boolean) => () => {
        for (let i = 0; i < 16; i++) {
          k.x.buildSingle(lengthsAt, bits, k.at.single);
          if (single) {
            k.x.decodeLanesSingle(blockAt, shortBlock.length, outAt, short, k.at.single, bits, k.at.lanes);
          } else {
            k.x.buildQuad(k.at.single, bits);
            k.x.decodeLanesQuad(blockAt, shortBlock.length, outAt, short, k.at.single, bits, k.at.lanes);
          }
        }
      };
      for (const single of [false, true]) {
        k.u8().fill(0, outAt, outAt + short);
        run(single)();
        if (!Buffer.from(k.u8().subarray(outAt, outAt + short)).equals(symbols))
          throw new Error(`short block of ${short}: other bytes`);
      }
      pair(
        `Huffman decode kernel, short block: one symbol a lookup (decodeLanesSingle) vs up to 4 (buildQuad)`,
        `BF16 ${name}, ${short} symbols (${oneSymbolTable(short, bits) ? "HIER: decodeLanesSingle" : "HIER: buildQuad"})`,
        16 * short,
        run(false),
        run(true),
        "here the TS column is decodeLanesQuad with buildQuad's table, the kernel column decodeLanesSingle; both: tables built, 16 blocks a run",
      );
    }
  }
}

// The Huffman decode kernel of another checkout's build (--baseline DIR) against this
// one's, on the exponent block of one chunk of each float type, tables built included:
// each build in its own instance, fed the same block.
const baselineDir = argValue("--baseline");
if (baselineDir) {
  interface QuadExports {
    heapBase(): number;
    buildSingle(lengths: number, tableBits: number, single: number): void;
    buildQuad(...args: number[]): void;
    decodeLanesQuad(...args: number[]): void;
    mergeBf16(e: number, sm: number, n: number, out: number): void;
    mergeF32(e: number, m0: number, m1: number, m2: number, n: number, out: number): void;
    // `sub`: the scratch of builds before the fixed sub-histograms (later ones ignore it).
    splitBf16(src: number, n: number, e: number, sm: number, counts: number, sub?: number): void;
    splitF32(...args: number[]): void;
    histogram(src: number, n: number, counts: number, sub?: number): void;
    encodeLanes(...args: number[]): void;
    buildPairs?: (...args: number[]) => void;
    memory: { buffer: ArrayBuffer; grow(pages: number): number };
  }
  const api = (
    globalThis as unknown as {
      WebAssembly: {
        Module: new (b: Uint8Array) => object;
        Instance: new (m: object) => { exports: object };
      };
    }
  ).WebAssembly;
  const instance = (path: string) =>
    new api.Instance(new api.Module(readFileSync(path))).exports as QuadExports;
  const stamp = JSON.parse(readFileSync(join(root, ".cache", "kernels.json"), "utf8")) as { wasm: string };
  const builds = [
    instance(join(resolve(baselineDir), "dist", "kernels.wasm")),
    instance(join(root, ".cache", stamp.wasm)),
  ];
  const f16 = tile(f32Parts.map(toF16), CHUNK);
  const baselineCommit = execFileSync("git", ["-C", resolve(baselineDir), "rev-parse", "--short", "HEAD"], {
    encoding: "utf8",
  }).trim();
  // The encode kernels also on a BF16 chunk of bench/speed.ts's inputs (the ONNX weights
  // among them) whose sign|mantissa stream Huffman-codes, as it often does on real weights
  // and never on ../shared/data's: the first such 512 KiB chunk of its first 64 MiB.
  {
    const layout = layoutForDType("BF16");
    const speed = toBf16(tile(await speedF32Parts(), 128 << 20));
    const n = CHUNK / 2;
    for (let at = 0; at + CHUNK <= speed.length; at += CHUNK) {
      const raw = speed.subarray(at, at + CHUNK);
      const streams = [new Uint8Array(n), new Uint8Array(n)];
      layout.split(raw, n, streams);
      if (huffmanEncode(streams[1], histogram(streams[1]))[0] !== 2) continue;
      encodeRows(
        builds,
        layout,
        raw,
        streams,
        `real-derived BF16 (bench/speed.ts, at ${at >> 20} MiB)`,
        baselineCommit,
      );
      break;
    }
  }
  for (const [dtype, raw, data] of [
    ["BF16", bf16, "real-derived BF16"],
    ["F16", f16, "real-derived FP16"],
    ["F32", f32, "real F32"],
  ] as const) {
    const layout = layoutForDType(dtype);
    const n = raw.length / layout.width;
    const streams = Array.from(
      { length: layout.streams },
      (_, s) => new Uint8Array(n * (layout.perElement?.[s] ?? 1)),
    );
    layout.split(raw, n, streams);
    // The merge kernel: the streams one after another, the words after them.
    const merges = builds.map((x) => {
      if (x.memory.buffer.byteLength < 4 << 20) x.memory.grow(64);
      const at = ((x.heapBase() + 65535) & ~65535) + (1 << 20);
      const mem = new Uint8Array(x.memory.buffer);
      const s = streams.map((_, i) => at + i * n);
      for (const [i, stream] of streams.entries()) mem.set(stream, s[i]);
      const out = at + streams.length * n;
      const run =
        layout.name === "bf16"
          ? () => x.mergeBf16(s[0], s[1], n, out)
          : () => x.mergeF32(s[0], s[1], s[2], s[3], n, out);
      run();
      if (!Buffer.from(mem.buffer, out, raw.length).equals(raw))
        throw new Error(`${dtype}: a merge gave other bytes`);
      return run;
    });
    pair(
      `merge kernel ${layout.name}, baseline build vs this one`,
      data,
      raw.length,
      merges[0],
      merges[1],
      `here the TS column is the build of the checkout at commit ${baselineCommit}, the kernel column this one's; streams already in memory`,
    );
    encodeRows(builds, layout, raw, streams, data, baselineCommit);
    const exponents = streams[0];
    const block = huffmanEncode(exponents, histogram(exponents));
    if (block[0] !== 2) continue;
    const lanes = new Int32Array(16);
    // Each build's memory: the lanes, the one-symbol table, the lengths, the 4-symbol table
    // (where the build takes it as an argument), the block and the output.
    const runs = builds.map((x) => {
      if (x.memory.buffer.byteLength < 4 << 20) x.memory.grow(64);
      const at = (x.heapBase() + 65535) & ~65535;
      const [lanesAt, single, lengthsAt, quad, blockAt, out] = [
        at,
        at + 1024,
        at + 10240,
        at + 12288,
        at + 32768,
        at + 32768 + block.length + 64,
      ];
      const mem = new Uint8Array(x.memory.buffer);
      mem.set(block, blockAt);
      mem.fill(0, blockAt + block.length, blockAt + block.length + 8);
      const checked = checkHuffmanBlock(block, n, mem.subarray(lengthsAt, lengthsAt + 256), lanes);
      // This build decodes with the table width HIER picks; the baseline's, 11 bits at most.
      const bits = x === builds[1] ? kernelTableBits(checked, n, lanes) : checked;
      new Int32Array(x.memory.buffer, lanesAt, 16).set(lanes);
      // Builds before this one took the 4-symbol table's address as an argument.
      const withTable = x.decodeLanesQuad.length === 8;
      const run = () => {
        x.buildSingle(lengthsAt, bits, single);
        if (withTable) {
          x.buildQuad(single, bits, quad);
          x.decodeLanesQuad(blockAt, block.length, out, n, quad, single, bits, lanesAt);
        } else {
          x.buildQuad(single, bits);
          x.decodeLanesQuad(blockAt, block.length, out, n, single, bits, lanesAt);
        }
      };
      run();
      if (!Buffer.from(mem.buffer, out, n).equals(exponents))
        throw new Error(`${dtype}: a build decoded other bytes`);
      return run;
    });
    pair(
      `Huffman decode kernel decodeLanesQuad, baseline build vs this one`,
      dtype === "F16" ? `${data} bits 7-14 (HIER's first stream)` : `${data} exponents`,
      n,
      runs[0],
      runs[1],
      `here the TS column is the build of the checkout at commit ${baselineCommit}, the kernel column this one's; both: tables built`,
    );
  }
}

/**
 * The encode kernels of the baseline build (builds[0]) against this one's (builds[1]) on
 * one chunk: the split with the exponents counted, the histogram of each stream, and the
 * Huffman encode of each stream whose code is shorter than the stream, its pair table
 * built included (in TypeScript for a build without buildPairs, as HIER did then). Each
 * build in its own memory, fed the same bytes; their outputs must agree.
 */
function encodeRows(
  builds: {
    heapBase(): number;
    memory: { buffer: ArrayBuffer; grow(pages: number): number };
    // `sub`: the scratch of builds before the fixed sub-histograms (later ones ignore it).
    splitBf16(src: number, n: number, e: number, sm: number, counts: number, sub?: number): void;
    splitF32(...args: number[]): void;
    histogram(src: number, n: number, counts: number, sub?: number): void;
    encodeLanes(...args: number[]): void;
    buildPairs?: (...args: number[]) => void;
  }[],
  layout: ReturnType<typeof layoutForDType>,
  raw: Uint8Array,
  streams: Uint8Array[],
  data: string,
  commit: string,
): void {
  const n = raw.length / layout.width;
  const note = `here the TS column is the build of the checkout at commit ${commit}, the kernel column this one's`;
  // Per build: fixed tables at `at`, then the input, the streams and the output.
  const layoutOf = (x: (typeof builds)[number]) => {
    const need = 16 * raw.length + (4 << 20);
    if (x.memory.buffer.byteLength < need) x.memory.grow(Math.ceil(need / 65536));
    const at = (x.heapBase() + 65535) & ~65535;
    return {
      counts: at,
      sub: at + 1024,
      codes: at + 16384,
      lengths: at + 16384 + 512,
      list: at + 16384 + 1024,
      scratch: at + 16384 + 2048,
      lanes: at + 16384 + 4096,
      pairCodes: at + 65536,
      pairLengths: at + 65536 + 262144,
      src: at + (1 << 20),
      streams: at + (1 << 20) + raw.length + 64,
      out: at + (1 << 20) + 3 * raw.length + 128,
    };
  };
  const places = builds.map(layoutOf);
  for (const [i, x] of builds.entries()) new Uint8Array(x.memory.buffer).set(raw, places[i].src);
  if (layout.name === "bf16" || layout.name === "f32") {
    const split = builds.map((x, i) => {
      const a = places[i];
      const s = streams.map((_, j) => a.streams + j * n);
      return () => {
        new Uint8Array(x.memory.buffer).fill(0, a.counts, a.counts + 1024);
        if (layout.name === "bf16") x.splitBf16(a.src, n, s[0], s[1], a.counts, a.sub);
        else x.splitF32(a.src, n, s[0], s[1], s[2], s[3], a.counts, a.sub);
      };
    });
    for (const run of split) run();
    const counts = builds.map((x, i) => Buffer.from(x.memory.buffer, places[i].counts, 1024));
    if (!counts[0].equals(counts[1]) || !counts[1].equals(Buffer.from(histogram(streams[0]).buffer)))
      throw new Error(`${data}: the builds' split counts differ`);
    pair(
      `split ${layout.name} + exponent counts, baseline build vs this one`,
      data,
      raw.length,
      split[0],
      split[1],
      note,
    );
  }
  for (const [j, stream] of streams.entries()) {
    for (const [i, x] of builds.entries()) new Uint8Array(x.memory.buffer).set(stream, places[i].streams);
    const hist = histogram(stream);
    const count = builds.map((x, i) => () => {
      const a = places[i];
      new Uint8Array(x.memory.buffer).fill(0, a.counts, a.counts + 1024);
      x.histogram(a.streams, stream.length, a.counts, a.sub);
    });
    for (const [i, run] of count.entries()) {
      run();
      if (!Buffer.from(builds[i].memory.buffer, places[i].counts, 1024).equals(Buffer.from(hist.buffer)))
        throw new Error(`${data} stream ${j}: a build's histogram differs`);
    }
    pair(
      `histogram, baseline build vs this one`,
      `${data} stream ${j}`,
      stream.length,
      count[0],
      count[1],
      note,
    );
    const block = huffmanEncode(stream, hist);
    if (block[0] !== 2) continue;
    const lengths = new Uint8Array(256);
    codeLengths(hist, lengths);
    const codes = new Uint16Array(256);
    canonicalCodes(lengths, codes);
    const used = [...lengths.keys()].filter((s) => lengths[s] > 0);
    const usePairs = used.length * used.length <= stream.length;
    const encode = builds.map((x, i) => {
      const a = places[i];
      const mem = new Uint8Array(x.memory.buffer);
      mem.set(lengths, a.lengths);
      new Uint16Array(x.memory.buffer, a.codes, 256).set(codes);
      mem.set(used, a.list);
      const pairCodes = new Int32Array(x.memory.buffer, a.pairCodes, 65536);
      const pairLengths = mem.subarray(a.pairLengths, a.pairLengths + 65536);
      const pairs = () => {
        if (!usePairs) return;
        if (x.buildPairs)
          x.buildPairs(
            a.codes,
            a.lengths,
            a.list,
            used.length,
            used[0],
            used[used.length - 1],
            a.pairCodes,
            a.pairLengths,
            a.scratch,
          );
        else
          for (const second of used)
            for (const first of used) {
              pairCodes[(second << 8) | first] = codes[first] | (codes[second] << lengths[first]);
              pairLengths[(second << 8) | first] = lengths[first] + lengths[second];
            }
      };
      return () => {
        pairs();
        x.encodeLanes(
          a.streams,
          stream.length,
          a.out,
          a.codes,
          a.lengths,
          a.pairCodes,
          a.pairLengths,
          usePairs ? 1 : 0,
          a.lanes,
        );
      };
    });
    for (const run of encode) run();
    const bytes = Math.ceil(new Uint32Array(builds[1].memory.buffer, places[1].lanes, 4)[3] / 8);
    const outs = builds.map((x, i) => Buffer.from(x.memory.buffer, places[i].out, bytes));
    if (!outs[0].equals(outs[1])) throw new Error(`${data} stream ${j}: the builds' bitstreams differ`);
    pair(
      `Huffman encode kernel encodeLanes${usePairs ? " + pair table" : ""}, baseline build vs this one`,
      `${data} stream ${j}`,
      stream.length,
      encode[0],
      encode[1],
      `${note}; code tables given`,
    );
  }
}

// The exponents decoded straight into BF16 words, against decoding then merging.
{
  const layout = layoutForDType("BF16");
  const n = bf16.length / 2;
  const payload = hierEncode(bf16, { dtype: "BF16" }).payload;
  const view = new DataView(payload.buffer, payload.byteOffset);
  const l0 = view.getUint32(9, true);
  const l1 = view.getUint32(14, true);
  const block = payload.subarray(18, 18 + l0);
  const sm = payload.subarray(18 + l0, 18 + l0 + l1);
  if (block[0] === 2 && payload[13] === 1) {
    const words = new Uint16Array(n);
    const single = new Uint16Array(k.u8().buffer, k.at.single, 2048);
    const multi = new Int32Array(k.u8().buffer, k.at.multi, 2048);
    const lanes = new Int32Array(k.u8().buffer, k.at.lanes, 16);
    k.begin(4 * n + block.length + 64);
    const blockAt = k.alloc(block.length + 8);
    const smAt = k.alloc(n);
    const eAt = k.alloc(n);
    const outAt = k.alloc(2 * n);
    k.u8().set(block, blockAt);
    k.u8().fill(0, blockAt + block.length, blockAt + block.length + 8);
    k.u8().set(sm, smAt);
    pair(
      "fused kernel decodeLanesBf16 vs decodeLanes + mergeBf16",
      "real-derived BF16",
      2 * n,
      () => {
        const bits = prepareHuffmanBlock(block, n, single, multi, lanes);
        k.x.decodeLanes(blockAt, block.length, eAt, n, k.at.multi, k.at.single, bits, k.at.lanes);
        k.x.mergeBf16(eAt, smAt, n, outAt);
      },
      () => {
        const bits = prepareHuffmanBlock(block, n, single, multi, lanes);
        k.x.decodeLanesBf16(
          blockAt,
          block.length,
          smAt,
          outAt,
          n,
          k.at.multi,
          k.at.single,
          bits,
          k.at.lanes,
          0,
        );
      },
      "here the TS column is the two kernels in turn (what HIER uses), the kernel column the fused one",
    );
    pair(
      "TS fused huffmanDecodeBf16 vs kernels decodeLanes + mergeBf16",
      "real-derived BF16",
      2 * n,
      () => huffmanDecodeBf16(block, sm, words),
      () =>
        kernelDecode(
          layout,
          [
            { method: 2, start: 18, length: l0 },
            { method: 1, start: 18 + l0, length: l1 },
          ],
          payload,
          n,
          new Uint8Array(words.buffer),
        ),
      "kernel: HIER's kernel path, copies in and out included",
    );
  }
}

// The F32 exponents decoded straight into F32 words with the 3 stored mantissa planes,
// against decoding them and then merging the 4 streams.
{
  const n = f32.length / 4;
  const payload = hierEncode(f32, { dtype: "F32" }).payload;
  const view = new DataView(payload.buffer, payload.byteOffset);
  const header = 8 + 5 * 4 + payload[2];
  const lengths = [0, 1, 2, 3].map((s) => view.getUint32(8 + 5 * s + 1, true));
  const starts = [header];
  for (let s = 1; s < 4; s++) starts.push(starts[s - 1] + lengths[s - 1]);
  const block = payload.subarray(starts[0], starts[0] + lengths[0]);
  const stored = [1, 2, 3].every((s) => payload[8 + 5 * s] === 1);
  if (block[0] === 2 && payload[8] === 2 && stored) {
    const single = new Uint16Array(k.u8().buffer, k.at.single, 2048);
    const multi = new Int32Array(k.u8().buffer, k.at.multi, 2048);
    const lanes = new Int32Array(k.u8().buffer, k.at.lanes, 16);
    k.begin(8 * n + block.length + 128);
    const blockAt = k.alloc(block.length + 8);
    const eAt = k.alloc(n);
    const planes = [1, 2, 3].map((s) => {
      const at = k.alloc(n);
      k.u8().set(payload.subarray(starts[s], starts[s] + n), at);
      return at;
    });
    const outAt = k.alloc(4 * n);
    k.u8().set(block, blockAt);
    k.u8().fill(0, blockAt + block.length, blockAt + block.length + 8);
    pair(
      "fused kernel decodeLanesF32 vs decodeLanes + mergeF32",
      "real F32",
      4 * n,
      () => {
        const bits = prepareHuffmanBlock(block, n, single, multi, lanes);
        k.x.decodeLanes(blockAt, block.length, eAt, n, k.at.multi, k.at.single, bits, k.at.lanes);
        k.x.mergeF32(eAt, planes[0], planes[1], planes[2], n, outAt);
      },
      () => {
        const bits = prepareHuffmanBlock(block, n, single, multi, lanes);
        k.x.decodeLanesF32(
          blockAt,
          block.length,
          planes[0],
          planes[1],
          planes[2],
          outAt,
          n,
          k.at.multi,
          k.at.single,
          bits,
          k.at.lanes,
        );
      },
      "here the TS column is the two kernels in turn (what HIER uses), the kernel column the fused one",
    );
  }
}

// node:zlib's crc32 (MMH's chunk and header checksums).
{
  let sink = 0;
  const a: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t = performance.now();
    sink ^= crc32(bf16);
    a.push(performance.now() - t);
  }
  rows.push({
    kernel: "crc32 (node:zlib, no kernel)",
    data: "real-derived BF16",
    ts: median(a),
    wasm: Number.NaN,
    bytes: bf16.length,
    note: `checksum ${sink >>> 0}`,
  });
}
setKernels(true);

const elapsed = performance.now() - started;
writeReport(outFile, [
  "# HIER's WebAssembly kernels against their TypeScript twins",
  "",
  ...machineLines(
    `npx node bench/kernels.ts${process.argv.length > 2 ? ` ${process.argv.slice(2).join(" ")}` : ""}`,
  ),
  codeLine(),
  `- ${contentionNote(waitAtStart, elapsed)}`,
  `- Median of ${runs} runs on one 512 KiB chunk, TypeScript and kernel alternating run by run. Data: the F32 tensor data of ../shared/data (real) and its values rounded to BF16 (real-derived; FP16 too for the baseline rows), tiled to 512 KiB.`,
  "",
  table(
    ["kernel", "data", "TypeScript MB/s", "kernel MB/s", "gain", "notes"],
    rows.map((r) => [
      r.kernel,
      r.data,
      fmt(rate(r.bytes, r.ts)),
      Number.isNaN(r.wasm) ? "" : fmt(rate(r.bytes, r.wasm)),
      Number.isNaN(r.wasm) ? "" : `${fmt(r.ts / r.wasm, 2)}x`,
      r.note,
    ]),
  ),
  "",
]);
