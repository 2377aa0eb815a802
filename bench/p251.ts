/**
 * P251, the pattern codec: speed of period detection, encode and decode, against memcpy
 * (Buffer.copy of the same size) and zstd level 3 (node:zlib, in process), in the same run.
 *
 * Two inputs of --size bytes (default 256 MiB):
 * - periodic: one 251-byte random block repeated (the case P251 exists for),
 * - random: seeded random bytes (detection must reject them at once).
 *
 * Each is processed two ways: as one call over the whole buffer (what a record standing
 * for a long run will need) and in 1 MiB chunks (how the container cuts content today).
 * Also periodicFill and continuesPeriod over the whole buffer.
 *
 * Options: --size SIZE (default 256M), --runs N (default 7), --out FILE. A results file is
 * written only at the default size (or with --out).
 */

import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { continuesPeriod, findPeriod, p251Codec, periodicFill } from "../src/codecs/p251.ts";
import type { EncodedPayload } from "../src/codecs/types.ts";
import { zstdCodec } from "../src/codecs/zstd.ts";
import { randomBytesSeeded } from "./lib/data.ts";
import {
  argValue,
  fmt,
  MiB,
  machineLines,
  mbps,
  median,
  parseSizeArg,
  sizeLabel,
  table,
  timeSync,
} from "./lib/report.ts";

const here = dirname(fileURLToPath(import.meta.url));
const size = parseSizeArg(argValue("--size") ?? "256M");
const runs = Number(argValue("--runs") ?? 7);
const defaultSize = size === 256 * MiB;
const outFile = argValue("--out") ?? (defaultSize ? join(here, "results", "p251.md") : undefined);
const CHUNK = MiB;
const EMPTY = new Uint8Array(0);
const started = performance.now();

// A full garbage collection before each timed call, so that no call pays for the
// buffers the previous ones dropped (the decoders each return a new --size buffer).
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

interface Op {
  what: string;
  work: () => void;
}

/**
 * Median milliseconds of each operation over `runs` rounds after one warm-up round. The
 * operations take turns within each round, so that load from other processes on this
 * shared machine falls on all of them alike rather than on whichever ran at a bad moment.
 */
function measureAll(ops: readonly Op[]): number[] {
  for (const op of ops) op.work();
  const times = ops.map((): number[] => []);
  for (let run = 0; run < runs; run++) {
    ops.forEach((op, i) => {
      gc();
      times[i].push(timeSync(op.work));
    });
  }
  return times.map(median);
}

/** Milliseconds with enough digits to show sub-millisecond times. */
function ms(value: number): string {
  return fmt(value, value < 1 ? 3 : 1);
}

function chunksOf(data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < data.length; at += CHUNK)
    out.push(data.subarray(at, Math.min(data.length, at + CHUNK)));
  return out;
}

/** Params plus payload: what a record holds besides its 36-byte header. */
function encodedSize(encoded: EncodedPayload): number {
  return encoded.payload.length + (encoded.params?.length ?? 0);
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);
}

interface Row {
  what: string;
  ms: number;
  /** The zstd row this one is compared with: "compress, whole buffer" etc. */
  vs?: string;
  /** Output size for encoders, when meaningful. */
  outBytes?: number;
  note?: string;
}

function periodicInput(bytes: number): Buffer {
  const block = randomBytesSeeded(251, 251);
  const out = Buffer.allocUnsafe(bytes);
  periodicFill(block, 0, out);
  return out;
}

function runDataset(name: string, data: Buffer): { rows: Row[]; memcpyMs: number } {
  const chunks = chunksOf(data);
  const found = findPeriod(data);
  // Encode everything once, outside the timings: the decoders' inputs, sizes and checks.
  const p251 = p251Codec.encode(data, {});
  const zstd = zstdCodec.encode(data, { level: 3 }).payload;
  const p251Chunks = chunks.map((chunk) => p251Codec.encode(chunk, {}));
  const zstdChunks = chunks.map((chunk) => zstdCodec.encode(chunk, { level: 3 }).payload);
  const decodeP251 = () => p251Codec.decode(p251.payload, p251.params ?? EMPTY, data.length);
  const decodeZstd = () => zstdCodec.decode(zstd, EMPTY, data.length);
  const out = Buffer.allocUnsafe(data.length);
  const decodeChunks = (decode: (i: number) => Uint8Array) => () => {
    let at = 0;
    for (let i = 0; i < chunks.length; i++) {
      const part = decode(i);
      out.set(part, at);
      at += part.length;
    }
  };
  const decodeP251Chunks = decodeChunks((i) =>
    p251Codec.decode(p251Chunks[i].payload, p251Chunks[i].params ?? EMPTY, chunks[i].length),
  );
  const decodeZstdChunks = decodeChunks((i) => zstdCodec.decode(zstdChunks[i], EMPTY, chunks[i].length));
  if (!same(decodeP251(), data)) throw new Error(`${name}: P251 whole-buffer round trip differs`);
  if (!same(decodeZstd(), data)) throw new Error(`${name}: zstd round trip differs`);
  decodeP251Chunks();
  if (!out.equals(data)) throw new Error(`${name}: P251 chunked round trip differs`);
  out.fill(0);
  decodeZstdChunks();
  if (!out.equals(data)) throw new Error(`${name}: zstd chunked round trip differs`);

  const copy = Buffer.allocUnsafe(data.length);
  const sumChunks = (encoded: readonly EncodedPayload[]) =>
    encoded.reduce((sum, one) => sum + encodedSize(one), 0);
  const ops: (Omit<Row, "ms"> & { work: () => void })[] = [
    { what: "memcpy (Buffer.copy)", work: () => data.copy(copy) },
    {
      what: "allocate + copy (Buffer.from)",
      work: () => Buffer.from(data),
      note: "what any decoder returning a new buffer pays",
    },
    {
      what: "findPeriod, whole buffer",
      work: () => findPeriod(data),
      vs: "compress, whole buffer",
      note: found ? `period ${found.period}, periodic length ${found.periodicLength}` : "null (not periodic)",
    },
    {
      what: "P251 encode, whole buffer",
      work: () => p251Codec.encode(data, {}),
      vs: "compress, whole buffer",
      outBytes: encodedSize(p251),
    },
    {
      what: "P251 decode, whole buffer",
      work: decodeP251,
      vs: "decompress, whole buffer",
      note: found ? undefined : "stored tail: returns a view of the payload",
    },
    {
      what: "zstd -3 compress, whole buffer",
      work: () => zstdCodec.encode(data, { level: 3 }),
      outBytes: zstd.length,
    },
    { what: "zstd -3 decompress, whole buffer", work: decodeZstd },
    {
      what: "findPeriod, 1 MiB chunks",
      work: () => {
        for (const chunk of chunks) findPeriod(chunk);
      },
      vs: "compress, 1 MiB chunks",
    },
    {
      what: "P251 encode, 1 MiB chunks",
      work: () => {
        for (const chunk of chunks) p251Codec.encode(chunk, {});
      },
      vs: "compress, 1 MiB chunks",
      outBytes: sumChunks(p251Chunks),
    },
    {
      what: "P251 decode, 1 MiB chunks (+ copy into place)",
      work: decodeP251Chunks,
      vs: "decompress, 1 MiB chunks",
    },
    {
      what: "zstd -3 compress, 1 MiB chunks",
      work: () => {
        for (const chunk of chunks) zstdCodec.encode(chunk, { level: 3 });
      },
      outBytes: sumChunks(zstdChunks.map((payload) => ({ payload }))),
    },
    { what: "zstd -3 decompress, 1 MiB chunks (+ copy into place)", work: decodeZstdChunks },
  ];
  const times = measureAll(ops);
  return { rows: ops.map((op, i) => ({ ...op, ms: times[i] })), memcpyMs: times[0] };
}

function render(
  name: string,
  description: string,
  data: Buffer,
  result: { rows: Row[]; memcpyMs: number },
): string {
  const zstdMs = new Map<string, number>();
  for (const row of result.rows) {
    const match = /^zstd -3 (compress|decompress), (whole buffer|1 MiB chunks)/.exec(row.what);
    if (match) zstdMs.set(`${match[1]}, ${match[2]}`, row.ms);
  }
  const rows = result.rows.map((row) => {
    const vsZstd = row.vs === undefined ? undefined : zstdMs.get(row.vs);
    return [
      row.what,
      ms(row.ms),
      fmt(mbps(data.length, row.ms)),
      fmt(result.memcpyMs / row.ms, 2),
      vsZstd === undefined ? "" : fmt(vsZstd / row.ms, 1),
      row.outBytes === undefined ? "" : `${row.outBytes} (${fmt((row.outBytes / data.length) * 100, 4)}%)`,
      row.note ?? "",
    ];
  });
  return [
    `## ${name}`,
    "",
    description,
    "",
    table(
      ["operation", "ms (median)", "MB/s", "speed × memcpy", "speed × zstd -3", "output bytes", "note"],
      rows,
    ),
  ].join("\n");
}

const sections: string[] = [];
console.log(`P251 bench: ${sizeLabel(size)} per input, ${runs} runs per cell`);

{
  const data = periodicInput(size);
  const result = runDataset("periodic", data);
  sections.push(
    render(
      "Periodic: a 251-byte random block repeated",
      `${sizeLabel(size)}: one 251-byte block of seeded random bytes, repeated.`,
      data,
      result,
    ),
  );
  const pattern = data.subarray(0, 251);
  const zero = new Uint8Array(1);
  const zeros = Buffer.alloc(size);
  const target = Buffer.allocUnsafe(size);
  if (continuesPeriod(pattern, 0, data) !== size || continuesPeriod(zero, 0, zeros) !== size) {
    throw new Error("continuesPeriod stopped early");
  }
  const helpers: Op[] = [
    { what: "memcpy (Buffer.copy)", work: () => data.copy(target) },
    { what: "periodicFill, 251-byte pattern, phase 17", work: () => periodicFill(pattern, 17, target) },
    {
      what: "continuesPeriod, 251-byte pattern (all bytes continue)",
      work: () => continuesPeriod(pattern, 0, data),
    },
    { what: "periodicFill, 1-byte pattern (zeros)", work: () => periodicFill(zero, 0, target) },
    { what: "continuesPeriod, 1-byte pattern over zeros", work: () => continuesPeriod(zero, 0, zeros) },
  ];
  const helperMs = measureAll(helpers);
  sections.push(
    [
      "## Long-run helpers, whole buffer",
      "",
      `${sizeLabel(size)}, into (or over) a buffer allocated once: no page faults.`,
      "",
      table(
        ["operation", "ms (median)", "MB/s", "speed × memcpy"],
        helpers.map((op, i) => [
          op.what,
          ms(helperMs[i]),
          fmt(mbps(size, helperMs[i])),
          fmt(helperMs[0] / helperMs[i], 2),
        ]),
      ),
    ].join("\n"),
  );
  for (const line of sections.slice(-2)) console.log(`\n${line}`);
}

{
  const data = randomBytesSeeded(size, 3);
  const result = runDataset("random", data);
  sections.push(
    render(
      "Random bytes",
      `${sizeLabel(size)} of seeded random bytes (incompressible; the container would store these chunks as NONE).`,
      data,
      result,
    ),
  );
  console.log(`\n${sections.at(-1)}`);
}

const seconds = ((performance.now() - started) / 1000).toFixed(0);
const report = [
  "# P251 (pattern codec): detection, encode and decode speed",
  "",
  ...machineLines("npx node bench/p251.ts"),
  `- Runs: ${runs} timed rounds after one warm-up round, median shown; within a round the operations of a table take turns (so load from other processes on this shared 2-core machine falls on all alike), each after a full garbage collection. One thread, in memory.`,
  '- MB/s are 10^6 bytes of original data per second. "speed × memcpy" divides by Buffer.copy of the same buffer in the same run (1.00 = as fast as copying); "speed × zstd -3" divides by the matching zstd level 3 operation (node:zlib) on the same data and the same split (whole buffer or 1 MiB chunks): findPeriod and encode against compress, decode against decompress.',
  "- findPeriod rejects non-periodic data after one Buffer.indexOf over its candidate window (the first 64 KiB + 32 bytes), so on random data its time does not grow with the size: there its MB/s is the size divided by that time, not a throughput.",
  '- Decoders return a new buffer, so they pay for fresh memory (page faults); "allocate + copy (Buffer.from)" is that cost for a plain copy, while "memcpy" copies into a buffer allocated once.',
  '- "whole buffer" is one call over all the data; "1 MiB chunks" is one call per 1 MiB chunk, as the container cuts content today; decoding then copies each chunk into one output buffer.',
  `- Total time of this run: ${seconds} s.`,
  "",
  sections.join("\n\n"),
  "",
].join("\n");

if (outFile) {
  writeFileSync(outFile, report);
  console.log(`\nwrote ${outFile}`);
}
