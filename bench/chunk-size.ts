/**
 * How the chunk size affects compression ratio, compress and decompress speed and the cost
 * of a random 4 KiB read, for zstd level 3 and lz4, through the public API.
 *
 *   npx node bench/chunk-size.ts            (full run, writes bench/results/chunk-size.md)
 *   npx node bench/chunk-size.ts --quick    (smaller data, fewer runs, writes nothing)
 *
 * Options: --runs N (timed runs per cell, default 9), --reads N (random reads per cell,
 * default 200), --out FILE (results file).
 */
import "./lib/help.ts";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { codecByName } from "../src/codecs/registry.ts";
import { CHUNK_HEADER_SIZE, INDEX_ENTRY_SIZE } from "../src/container/format.ts";
import { DEFAULT_CHUNK_SIZE } from "../src/engine/options.ts";
import { MmhReader } from "../src/engine/reader.ts";
import { compress, compressFile, decompress, open as openMmh } from "../src/index.ts";
import { bf16Weights, jsonLog, mulberry32 } from "./lib/data.ts";
import {
  argValue,
  contentionNote,
  cpuWaitMicros,
  fmt,
  KiB,
  MiB,
  machineLines,
  mbps,
  median,
  sizeLabel,
  spread,
  table,
  timeAsync,
  timeSync,
} from "./lib/report.ts";

const here = dirname(fileURLToPath(import.meta.url));
const self = fileURLToPath(import.meta.url);
const root = join(here, "..");
const quick = process.argv.includes("--quick");
const runs = Number(argValue("--runs") ?? (quick ? 3 : 9));
const reads = Number(argValue("--reads") ?? (quick ? 40 : 200));
const outFile = argValue("--out") ?? (quick ? undefined : join(here, "results", "chunk-size.md"));
const workDir = join(root, ".bench-data");

const CHUNK_SIZES = [64 * KiB, 256 * KiB, 512 * KiB, MiB, 2 * MiB, 4 * MiB, 8 * MiB, 16 * MiB];
const BASELINE = MiB;
const READ_LENGTH = 4 * KiB;
const CODECS = [
  { name: "zstd", level: 3, label: "zstd level 3" },
  { name: "lz4", level: undefined, label: "lz4 (frame)" },
] as const;

/** Each timed sample processes at least this many bytes (small inputs are repeated). */
const EMPTY = new Uint8Array(0);
const MIN_SAMPLE_BYTES = 32 * MiB;

interface Dataset {
  key: string;
  label: string;
  bytes: Buffer;
}

interface Cell {
  chunkSize: number;
  stored: number;
  compressMs: number[];
  decompressMs: number[];
  aloneCompressMs: number[];
  aloneDecompressMs: number[];
  readApiMs: number[];
  readOpenMs: number[];
  /** Largest resident set of the process that measured this cell. */
  peakRssKiB: number;
}

function datasets(): Dataset[] {
  const list: Dataset[] = [];
  const bf16Size = quick ? 16 * MiB : 64 * MiB;
  list.push({
    key: "bf16",
    label: `${sizeLabel(bf16Size)} of generated BF16 weights, N(0, 0.02) with a per-row scale`,
    bytes: bf16Weights(bf16Size, 1),
  });
  const dataDir = join(root, "..", "shared", "data");
  if (existsSync(dataDir)) {
    const files = readdirSync(dataDir)
      .filter((f) => f.endsWith(".safetensors"))
      .sort();
    if (files.length > 0) {
      const bytes = Buffer.concat(files.map((f) => readFileSync(join(dataDir, f))));
      list.push({
        key: "f32",
        label: `the ${files.length} real F32 safetensors files in ../shared/data, concatenated (${(bytes.length / MiB).toFixed(2)} MiB: ${files.join(", ")})`,
        bytes,
      });
    }
  } else {
    console.log(`(${dataDir} not found: skipping the real F32 files)`);
  }
  const textSize = quick ? 8 * MiB : 32 * MiB;
  list.push({
    key: "text",
    label: `${sizeLabel(textSize)} of generated JSON-lines training-log text`,
    bytes: jsonLog(textSize, 2),
  });
  return list;
}

/**
 * Measure one chunk size for one input and codec, in a child process of its own, so that
 * no cell inherits another's heap, JIT state or leaked memory (lz4-napi's sync functions,
 * which MMH's LZ4 codec once used, kept memory after every call: one process measuring
 * everything ran out of memory).
 */
async function childMeasure(dataFile: string, codecName: string, chunkSize: number): Promise<void> {
  const codec = CODECS.find((c) => c.name === codecName)!;
  // The codec by itself (what the container calls per chunk), without CRC-32 or sha256.
  const alone = codecByName(codec.name);
  const bytes = readFileSync(dataFile);
  const childRuns = Number(argValue("--child-runs"));
  const childReads = Number(argValue("--child-reads"));
  const reps = Math.max(1, Math.ceil(MIN_SAMPLE_BYTES / bytes.length));
  const options = { codec: codec.name, level: codec.level, chunkSize };
  const pieces: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += chunkSize) pieces.push(bytes.subarray(at, at + chunkSize));
  const frames = pieces.map((raw) => alone.encode(raw, { level: codec.level }));
  const packed = await compress(bytes, options);
  const back = await decompress(packed);
  if (!Buffer.from(back.buffer, back.byteOffset, back.byteLength).equals(bytes)) {
    throw new Error(`${dataFile} ${codec.name} ${chunkSize}: round trip differs`);
  }
  const cell: Cell = {
    chunkSize,
    stored: packed.length,
    compressMs: [],
    decompressMs: [],
    aloneCompressMs: [],
    aloneDecompressMs: [],
    readApiMs: [],
    readOpenMs: [],
    peakRssKiB: 0,
  };
  // One warm-up, then the timed runs.
  for (let run = -1; run < childRuns; run++) {
    const c = await timeAsync(async () => {
      for (let r = 0; r < reps; r++) await compress(bytes, options);
    });
    const d = await timeAsync(async () => {
      for (let r = 0; r < reps; r++) await decompress(packed);
    });
    const ac = timeSync(() => {
      for (let r = 0; r < reps; r++) for (const raw of pieces) alone.encode(raw, { level: codec.level });
    });
    const ad = timeSync(() => {
      for (let r = 0; r < reps; r++) {
        for (let j = 0; j < frames.length; j++) {
          alone.decode(frames[j].payload, frames[j].params ?? EMPTY, pieces[j].length);
        }
      }
    });
    if (run >= 0) {
      cell.compressMs.push(c / reps);
      cell.decompressMs.push(d / reps);
      cell.aloneCompressMs.push(ac / reps);
      cell.aloneDecompressMs.push(ad / reps);
    }
  }
  if (childReads > 0) {
    // Random 4 KiB reads from a file on disk (in the page cache after writing it).
    const file = `${dataFile}.${codec.name}-${chunkSize}.mmh`;
    await compressFile(dataFile, file, { ...options, overwrite: true });
    const rand = mulberry32(chunkSize ^ 0x5eed);
    const span = bytes.length - READ_LENGTH;
    const offsets = Array.from({ length: childReads + 5 }, () => Math.floor(rand() * (span + 1)));
    try {
      // readRange(): what one call of the API costs, opening the file and its index each time.
      for (let i = 0; i < offsets.length; i++) {
        const at = offsets[i];
        let got: Uint8Array | undefined;
        const ms = await timeAsync(async () => {
          await using opened = await openMmh(file);
          got = await opened.readRange(at, READ_LENGTH);
        });
        if (i === 0 && !Buffer.from(got!).equals(bytes.subarray(at, at + READ_LENGTH))) {
          throw new Error(`readRange returned wrong bytes at ${at}`);
        }
        if (i >= 5) cell.readApiMs.push(ms);
      }
      // MmhReader opened once: the cost of the read itself (read, check, decode one chunk).
      const reader = await MmhReader.open(await fileSourceFor(file));
      try {
        for (let i = 0; i < offsets.length; i++) {
          const ms = await timeAsync(() => reader.readRange(offsets[i], READ_LENGTH));
          if (i >= 5) cell.readOpenMs.push(ms);
        }
      } finally {
        await reader.close();
      }
    } finally {
      rmSync(file, { force: true });
    }
  }
  cell.peakRssKiB = process.resourceUsage().maxRSS;
  process.stdout.write(`${JSON.stringify(cell)}\n`);
}

/**
 * All chunk sizes for one input and codec. Two rounds, sizes ascending then descending,
 * so that drift in the machine's speed does not favour one end; each round runs half the
 * timed runs, and the first also does the random reads.
 */
function measure(dataFile: string, codec: (typeof CODECS)[number]): Cell[] {
  const cells = new Map<number, Cell>();
  for (const round of [0, 1]) {
    const order = round === 0 ? CHUNK_SIZES : [...CHUNK_SIZES].reverse();
    const roundRuns = round === 0 ? Math.ceil(runs / 2) : Math.floor(runs / 2);
    if (roundRuns === 0) continue;
    for (const chunkSize of order) {
      const args = [
        self,
        "--child",
        dataFile,
        codec.name,
        String(chunkSize),
        "--child-runs",
        String(roundRuns),
        "--child-reads",
        String(round === 0 ? reads : 0),
      ];
      const result = spawnSync(process.execPath, args, { encoding: "utf8", maxBuffer: 1 << 24 });
      if (result.status !== 0) {
        throw new Error(
          `measuring ${codec.name} ${chunkSize} failed (${result.status ?? result.signal}): ${result.stderr}`,
        );
      }
      const cell = JSON.parse(result.stdout.trim().split("\n").at(-1)!) as Cell;
      const prev = cells.get(chunkSize);
      if (!prev) {
        cells.set(chunkSize, cell);
      } else {
        prev.compressMs.push(...cell.compressMs);
        prev.decompressMs.push(...cell.decompressMs);
        prev.aloneCompressMs.push(...cell.aloneCompressMs);
        prev.aloneDecompressMs.push(...cell.aloneDecompressMs);
        prev.readApiMs.push(...cell.readApiMs);
        prev.readOpenMs.push(...cell.readOpenMs);
        prev.peakRssKiB = Math.max(prev.peakRssKiB, cell.peakRssKiB);
      }
    }
  }
  return CHUNK_SIZES.map((size) => cells.get(size)!);
}

/** A positioned-read source over a file, built on the public MmhReader's contract. */
async function fileSourceFor(path: string) {
  const handle = await open(path, "r");
  const size = (await handle.stat()).size;
  return {
    size,
    async read(offset: number, length: number): Promise<Buffer> {
      const out = Buffer.allocUnsafe(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(out, done, length - done, offset + done);
        if (bytesRead === 0) throw new Error(`${path} ended early`);
        done += bytesRead;
      }
      return out;
    },
    close: () => handle.close(),
  };
}

interface Summary {
  data: Dataset;
  codec: (typeof CODECS)[number];
  cells: Cell[];
}

function ratioOf(data: Dataset, cell: Cell): number {
  return cell.stored / data.bytes.length;
}

/** Relative size reduction (%) of `cell` against the next smaller chunk size. */
function gainOf(s: Summary, i: number): number {
  if (i === 0) return Number.NaN;
  const prev = s.cells[i - 1].stored;
  return ((prev - s.cells[i].stored) / prev) * 100;
}

function renderTable(s: Summary): string {
  const base = s.cells.find((c) => c.chunkSize === BASELINE)!;
  const baseC = median(base.compressMs);
  const baseD = median(base.decompressMs);
  const baseR = median(base.readOpenMs);
  const rows = s.cells.map((cell, i) => {
    const n = s.data.bytes.length;
    const c = median(cell.compressMs);
    const d = median(cell.decompressMs);
    const ratio = ratioOf(s.data, cell);
    const chunkBytes = Math.min(cell.chunkSize, n);
    return [
      sizeLabel(cell.chunkSize),
      fmt(ratio, 4),
      fmt(n / cell.stored, 3),
      i === 0 ? "" : `${gainOf(s, i) >= 0 ? "+" : ""}${fmt(gainOf(s, i), 2)}%`,
      fmt(mbps(n, c)),
      fmt(baseC / c, 2),
      fmt(mbps(n, d)),
      fmt(baseD / d, 2),
      `${fmt(mbps(n, median(cell.aloneCompressMs)))} / ${fmt(mbps(n, median(cell.aloneDecompressMs)))}`,
      fmt(median(cell.readApiMs), 2),
      fmt(median(cell.readOpenMs), 2),
      fmt(median(cell.readOpenMs) / baseR, 2),
      fmt((chunkBytes * (1 + ratio)) / MiB, 2),
    ];
  });
  return table(
    [
      "chunk",
      "ratio (comp/orig)",
      "orig/comp",
      "smaller than next size down",
      "compress MB/s",
      "compress speed × 1 MiB",
      "decompress MB/s",
      "decompress speed × 1 MiB",
      "codec alone, comp / decomp MB/s",
      "4 KiB readRange() ms",
      "4 KiB read, reader open, ms",
      "read time × 1 MiB",
      "MiB per chunk in flight",
    ],
    rows,
  );
}

const RATIO_LIMIT = 0.5; // %
const SPEED_LIMIT = 0.9; // fraction of the best speed at any chunk size

/**
 * The smallest chunk size from which no larger size makes the output more than
 * RATIO_LIMIT % smaller (so every step up from it gains under the limit, all together).
 */
function ratioKnee(s: Summary): number {
  for (let i = 0; i < s.cells.length; i++) {
    const best = Math.min(...s.cells.slice(i).map((c) => c.stored));
    if (((s.cells[i].stored - best) / s.cells[i].stored) * 100 < RATIO_LIMIT) return s.cells[i].chunkSize;
  }
  return s.cells[s.cells.length - 1].chunkSize;
}

/** Speed at each chunk size over the best speed at any size, for compress and decompress. */
function relativeSpeeds(s: Summary): { c: number[]; d: number[] } {
  const n = s.data.bytes.length;
  const c = s.cells.map((cell) => mbps(n, median(cell.compressMs)));
  const d = s.cells.map((cell) => mbps(n, median(cell.decompressMs)));
  const bestC = Math.max(...c);
  const bestD = Math.max(...d);
  return { c: c.map((v) => v / bestC), d: d.map((v) => v / bestD) };
}

/**
 * The smallest chunk size whose speed score reaches SPEED_LIMIT. The score is the
 * geometric mean, over the inputs and over compress and decompress, of the speed at that
 * size over the best speed of that input and operation: averaging six figures keeps one
 * noisy measurement (the small real set, a busy moment) from deciding alone.
 */
function speedKnee(summaries: Summary[]): { size: number; c: number[]; d: number[]; score: number[] } {
  const rel = summaries.map(relativeSpeeds);
  const geo = (values: number[]) => Math.exp(values.reduce((sum, v) => sum + Math.log(v), 0) / values.length);
  const c = CHUNK_SIZES.map((_, i) => geo(rel.map((r) => r.c[i])));
  const d = CHUNK_SIZES.map((_, i) => geo(rel.map((r) => r.d[i])));
  const score = CHUNK_SIZES.map((_, i) => Math.sqrt(c[i] * d[i]));
  const i = score.findIndex((v) => v >= SPEED_LIMIT);
  return { size: CHUNK_SIZES[i], c, d, score };
}

function conclusion(summaries: Summary[]): string {
  const zstd = summaries.filter((s) => s.codec.name === "zstd");
  const knees = zstd.map((s) => ({ s, ratio: ratioKnee(s) }));
  const speed = speedKnee(zstd);
  const noise = median(
    zstd.flatMap((s) => s.cells.flatMap((c) => [spread(c.compressMs), spread(c.decompressMs)])),
  );
  const pick = Math.max(speed.size, ...knees.map((k) => k.ratio));
  const idx = CHUNK_SIZES.indexOf(pick);
  const next = CHUNK_SIZES[idx + 1];
  const prev = CHUNK_SIZES[idx - 1];
  const n = (s: Summary) => s.data.bytes.length;
  const cellAt = (s: Summary, size: number) => s.cells.find((c) => c.chunkSize === size)!;
  const pct = (v: number) => `${v >= 0 ? "+" : ""}${fmt(v, 2)}%`;
  const parts: string[] = [];
  const rel = (v: number[]) => CHUNK_SIZES.map((size, i) => `${sizeLabel(size)} ${fmt(v[i], 2)}`).join(", ");
  parts.push(
    `On zstd level 3, the smallest chunk size from which no larger size shrinks the output by more than ${RATIO_LIMIT}% is ${knees.map((k) => `${sizeLabel(k.ratio)} for ${k.s.data.key}`).join(", ")}.`,
    `Speed, as each size's speed over the best size's for that input, geometric mean over the inputs: compress ${rel(speed.c)}; decompress ${rel(speed.d)}; both together ${rel(speed.score)}. The smallest size whose combined score reaches ${SPEED_LIMIT} is ${sizeLabel(speed.size)}; run-to-run spread (interquartile range over median) was ${fmt(noise * 100, 0)}% for a typical cell, so speed differences of that order are noise.`,
    `Taking the larger of these, the figures support **${sizeLabel(pick)}** as the default.`,
  );
  const steps = zstd
    .map((s) => {
      const into = idx > 0 ? `${pct(gainOf(s, idx))} from ${sizeLabel(prev)} to ${sizeLabel(pick)}` : "";
      const onward = next ? `${pct(gainOf(s, idx + 1))} from ${sizeLabel(pick)} to ${sizeLabel(next)}` : "";
      return `${s.data.key} ${[into, onward].filter(Boolean).join(", ")}`;
    })
    .join("; ");
  parts.push(`Output size change per step around it (positive = smaller output): ${steps}.`);
  const speeds = zstd
    .map((s) => {
      const here = cellAt(s, pick);
      const c = mbps(n(s), median(here.compressMs));
      const d = mbps(n(s), median(here.decompressMs));
      const bestC = Math.max(...s.cells.map((x) => mbps(n(s), median(x.compressMs))));
      const bestD = Math.max(...s.cells.map((x) => mbps(n(s), median(x.decompressMs))));
      const small = s.cells[0];
      return `${s.data.key} ${fmt(c)} / ${fmt(d)} MB/s (best size ${fmt(bestC)} / ${fmt(bestD)}; 64 KiB ${fmt(mbps(n(s), median(small.compressMs)))} / ${fmt(mbps(n(s), median(small.decompressMs)))})`;
    })
    .join("; ");
  parts.push(`Compress / decompress at ${sizeLabel(pick)}: ${speeds}.`);
  const reads = zstd
    .map((s) => {
      const at = (size: number) => fmt(median(cellAt(s, size).readOpenMs), 2);
      return `${s.data.key} ${at(pick)} ms${next ? ` (${at(next)} ms at ${sizeLabel(next)}` : " ("}, ${at(16 * MiB)} ms at 16 MiB)`;
    })
    .join("; ");
  parts.push(
    `A random 4 KiB read decodes a whole chunk; with the reader open it costs ${reads}, so each step up roughly doubles it while the ratio hardly moves.`,
  );
  const bf = zstd.find((s) => s.data.key === "bf16") ?? zstd[0];
  const alone = (size: number) => mbps(n(bf), median(cellAt(bf, size).aloneCompressMs));
  if (alone(256 * KiB) < SPEED_LIMIT * alone(512 * KiB)) {
    parts.push(
      `Below 512 KiB zstd itself slows down: alone (no container) it compresses ${bf.data.key} at ${fmt(alone(256 * KiB))} MB/s in 256 KiB chunks against ${fmt(alone(512 * KiB))} MB/s in 512 KiB chunks and ${fmt(alone(MiB))} MB/s in 1 MiB chunks (zstd chooses its parameters by input size, with a separate set for inputs of 256 KiB or less).`,
    );
  }
  parts.push(
    `The API runs at ${fmt(mbps(n(bf), median(cellAt(bf, pick).compressMs)) / alone(pick), 2)} of zstd alone's compress speed on ${bf.data.key} at ${sizeLabel(pick)}: every chunk also gets a CRC-32 and the content a sha256.`,
  );
  const r = cellAt(bf, pick).stored / n(bf);
  parts.push(
    `Memory per chunk in flight (raw plus compressed bytes) is about ${fmt((pick * (1 + r)) / MiB, 2)} MiB at ${sizeLabel(pick)} on BF16 and doubles with each step up, times the number of chunks in flight (one per worker plus any queued).`,
  );
  const perChunk = CHUNK_HEADER_SIZE + INDEX_ENTRY_SIZE;
  parts.push(
    `The container's own cost per chunk (a ${CHUNK_HEADER_SIZE}-byte record header and a ${INDEX_ENTRY_SIZE}-byte index entry) is ${fmt((perChunk / pick) * 100, 4)}% of the data at ${sizeLabel(pick)}, an index of ${fmt((((1024 * MiB) / pick) * INDEX_ENTRY_SIZE) / KiB, 0)} KiB per GiB of content, which \`readRange()\` reads on every call.`,
  );
  if (pick !== DEFAULT_CHUNK_SIZE) {
    parts.push(`(The current DEFAULT_CHUNK_SIZE is ${sizeLabel(DEFAULT_CHUNK_SIZE)}.)`);
  } else {
    parts.push("This is the current DEFAULT_CHUNK_SIZE.");
  }
  const f32 = summaries.find((s) => s.data.key === "f32");
  if (f32) {
    parts.push(
      `The real F32 set is only ${(n(f32) / MiB).toFixed(2)} MiB, so sizes of 8 MiB and more hold it in one chunk, and its timings are the noisiest.`,
    );
  }
  return parts.join(" ");
}

async function main(): Promise<void> {
  const started = performance.now();
  const waitAtStart = cpuWaitMicros();
  const sets = datasets();
  const summaries: Summary[] = [];
  mkdirSync(workDir, { recursive: true });
  for (const data of sets) {
    const dataFile = join(workDir, `chunk-size-${data.key}.bin`);
    writeFileSync(dataFile, data.bytes);
    try {
      for (const codec of CODECS) {
        console.log(`measuring ${data.key} with ${codec.label} ...`);
        const s = { data, codec, cells: measure(dataFile, codec) };
        summaries.push(s);
        console.log(renderTable(s));
      }
    } finally {
      rmSync(dataFile, { force: true });
    }
  }
  const peak = (name: string) =>
    Math.max(
      ...summaries.filter((s) => s.codec.name === name).flatMap((s) => s.cells.map((c) => c.peakRssKiB)),
    );
  const command = "npx node bench/chunk-size.ts";
  const lines: string[] = [
    "# Chunk size: ratio, speed and random-read cost",
    "",
    ...machineLines(command),
    `- Runs: ${runs} timed runs per cell, median shown. Each cell is measured in a fresh Node process (one warm-up pass, then its runs), in two rounds, chunk sizes ascending then descending, so drift does not favour one end. Inputs under ${MIN_SAMPLE_BYTES / MiB} MiB are processed several times per sample.`,
    `- Random reads: ${reads} reads of ${READ_LENGTH / KiB} KiB at seeded random offsets, median. "readRange() ms" is one call of the public \`readRange(file, offset, 4096)\`, which opens the file and reads its index each time; "reader open" is \`MmhReader.readRange\` on a reader opened once, the cost of the read itself. Files are in the page cache.`,
    '- Speeds are MB/s of original data (10^6 bytes/s) through `compress()` / `decompress()` in memory, one thread. The "× 1 MiB" columns divide by the 1 MiB row of the same table and run (> 1 means faster than 1 MiB; for reads, > 1 means slower).',
    '- "smaller than next size down": how much smaller the output is than with the next smaller chunk size (positive = better).',
    '- "MiB per chunk in flight": raw chunk plus its compressed payload, the memory one chunk being encoded or decoded holds.',
    `- Largest resident set of a measuring process: zstd ${fmt(peak("zstd") / 1024, 0)} MiB, lz4 ${fmt(peak("lz4") / 1024, 0)} MiB.`,
    `- Total time of this run: ${fmt((performance.now() - started) / 1000, 0)} s. ${contentionNote(waitAtStart, performance.now() - started)}`,
    "",
  ];
  for (const s of summaries) {
    lines.push(`## ${s.data.key}, ${s.codec.label}`, "", `Data: ${s.data.label}.`, "", renderTable(s), "");
  }
  lines.push("## What the figures support", "", conclusion(summaries), "");
  const text = lines.join("\n");
  console.log(`\n${conclusion(summaries)}`);
  if (outFile) {
    mkdirSync(dirname(outFile), { recursive: true });
    writeFileSync(outFile, text);
    console.log(`\nwrote ${outFile}`);
  }
}

const childArgs = process.argv.indexOf("--child");
if (childArgs >= 0) {
  const [dataFile, codecName, chunkSize] = process.argv.slice(childArgs + 1, childArgs + 4);
  await childMeasure(dataFile, codecName, Number(chunkSize));
} else {
  await main();
}
