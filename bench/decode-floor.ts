/**
 * Where in-process decompress() time goes, 1 thread: the whole call against its parts,
 * measured in one run, interleaved.
 *
 * Inputs (in memory only): the F32 tensor data of the real files in ../shared/data,
 * tiled into one F32 safetensors tensor of each --sizes (default 64M), and the same
 * values rounded to BF16 and F16 (real-derived), compressed with threads: 1 and without
 * long-range matches (the tiles repeat; every record then decodes on its own).
 *
 * Per round, one after another, each timed in CPU time (process.cpuUsage):
 *   - decompress(packed, { threads: 1 }): what a library user gets (fresh output memory);
 *   - fresh memory: a Buffer of the output's size allocated and one byte written per
 *     4 KiB page, the page faults any fresh output pays;
 *   - records decoded into written memory: every record through decodeChunk (codec and
 *     CRC-32 check) into one buffer reused from round to round, no container parsing;
 *   - crc32 alone over the output in 512 KiB pieces (the library's crc32, part of the above);
 *   - copies and crc32: what a record costs a decoder whose decode kernels run in
 *     WebAssembly's own memory, with the kernels themselves left out: each record's payload
 *     copied into one reused buffer, then a chunk of its content's length copied from
 *     another reused buffer into its place in one reused target and checked by crc32
 *     there (the copies in and out and the check every kernel decode makes);
 *   - zstd: node:zlib's zstdDecompressSync of the same input compressed at level 3.
 *
 *   npx node bench/decode-floor.ts [--sizes 64M] [--runs 9]
 * Writes bench/results/decode-floor.md.
 */
import "./lib/help.ts";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { zstdCompressSync, zstdDecompressSync } from "node:zlib";
import { crc32 } from "../src/common/crc.ts";
import {
  CHUNK_HEADER_SIZE,
  CHUNK_TAG,
  HEADER_FIXED_SIZE,
  parseChunkHeader,
  parseHeaderFixed,
} from "../src/container/format.ts";
import { decodeChunk } from "../src/engine/chunk.ts";
import { compress, decompress } from "../src/index.ts";
import { codeLine, root, writeReport } from "./lib/commands.ts";
import { safetensors, safetensorsData, tile, toBf16, toF16 } from "./lib/derived.ts";
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

const sizes = (argValue("--sizes") ?? "64M").split(",").map(parseSizeArg);
const runs = Number(argValue("--runs") ?? 9);
const started = performance.now();
/** This process's CPU time so far in milliseconds (all its threads): steadier than wall time on a shared machine. */
const cpuNow = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};
const waitAtStart = cpuWaitMicros();

const dataDir = join(root, "..", "shared", "data");
const f32Parts = readdirSync(dataDir)
  .filter((f) => f.endsWith(".safetensors"))
  .sort()
  .map((f) => safetensorsData(join(dataDir, f)));

interface Record {
  codec: string;
  params: Uint8Array;
  payload: Uint8Array;
  rawLength: number;
  rawCrc: number;
}

/** The chunk records of a container, in order (the index and trailer after them are not read). */
function records(file: Buffer): Record[] {
  const { metadataLength } = parseHeaderFixed(file.subarray(0, HEADER_FIXED_SIZE));
  const out: Record[] = [];
  let at = HEADER_FIXED_SIZE + metadataLength;
  while (file.toString("latin1", at, at + 4) === CHUNK_TAG) {
    const header = parseChunkHeader(file.subarray(at, at + CHUNK_HEADER_SIZE), `record at ${at}`);
    const params = file.subarray(at + CHUNK_HEADER_SIZE, at + CHUNK_HEADER_SIZE + header.paramsLength);
    const start = at + CHUNK_HEADER_SIZE + header.paramsLength;
    out.push({
      codec: header.codec,
      params,
      payload: file.subarray(start, start + header.storedLength),
      rawLength: header.rawLength,
      rawCrc: header.rawCrc,
    });
    at = start + header.storedLength;
  }
  return out;
}

const rows: string[][] = [];
for (const size of sizes) {
  for (const dtype of ["BF16", "F16", "F32"] as const) {
    const parts = dtype === "F32" ? f32Parts : f32Parts.map(dtype === "BF16" ? toBf16 : toF16);
    const width = dtype === "F32" ? 4 : 2;
    const raw = safetensors(dtype, tile(parts, Math.floor(size / width) * width));
    // Without long-range matches: the tiles repeat, and a LONG record is decoded from the
    // records before it, which decodeChunk alone does not do.
    const packed = await compress(raw, { threads: 1, long: false });
    const z = zstdCompressSync(raw);
    const list = records(Buffer.from(packed.buffer, packed.byteOffset, packed.length));
    const total = list.reduce((a, r) => a + r.rawLength, 0);
    if (total !== raw.length) throw new Error("records do not add up to the input");
    const written = Buffer.alloc(total);
    const decodeRecords = () => {
      let at = 0;
      for (const r of list) {
        const into = written.subarray(at, at + r.rawLength);
        const back = decodeChunk(r.codec, r.params, r.payload, r.rawLength, r.rawCrc, "bench", into);
        if (back.buffer !== written.buffer || back.byteOffset !== into.byteOffset) into.set(back);
        at += r.rawLength;
      }
    };
    decodeRecords();
    if (!written.equals(raw)) throw new Error(`${dtype}: records decode to other bytes`);
    const back = await decompress(packed, { threads: 1 });
    if (!Buffer.from(back.buffer, back.byteOffset, back.length).equals(raw))
      throw new Error(`${dtype}: round trip differs`);
    const t = {
      whole: [] as number[],
      fresh: [] as number[],
      records: [] as number[],
      crc: [] as number[],
      copies: [] as number[],
    };
    const largest = list.reduce((a, r) => Math.max(a, r.payload.length, r.rawLength), 0);
    const arena = Buffer.alloc(largest);
    const stage = Buffer.alloc(largest);
    const target = Buffer.alloc(total);
    const copies = () => {
      let at = 0;
      for (const r of list) {
        arena.set(r.payload);
        target.set(stage.subarray(0, r.rawLength), at);
        crc32(target.subarray(at, at + r.rawLength));
        at += r.rawLength;
      }
    };
    const zt: number[] = [];
    for (let r = 0; r < runs; r++) {
      let s = cpuNow();
      await decompress(packed, { threads: 1 });
      t.whole.push(cpuNow() - s);
      s = cpuNow();
      const fresh = Buffer.allocUnsafeSlow(total);
      for (let i = 0; i < total; i += 4096) fresh[i] = 1;
      t.fresh.push(cpuNow() - s);
      s = cpuNow();
      decodeRecords();
      t.records.push(cpuNow() - s);
      s = cpuNow();
      for (let i = 0; i < total; i += 512 << 10) crc32(written.subarray(i, Math.min(total, i + (512 << 10))));
      t.crc.push(cpuNow() - s);
      s = cpuNow();
      copies();
      t.copies.push(cpuNow() - s);
      s = cpuNow();
      zstdDecompressSync(z);
      zt.push(cpuNow() - s);
    }
    const rate = (ms: number) => fmt(total / 1e6 / (ms / 1000));
    const whole = median(t.whole);
    const fresh = median(t.fresh);
    const recordsMs = median(t.records);
    const crc = median(t.crc);
    const label = `${dtype === "F32" ? "FP32 real" : `${dtype === "F16" ? "FP16" : dtype} real-derived`}, ${size >> 20} MiB`;
    rows.push([
      label,
      rate(whole),
      `${fmt(fresh, 1)} (${rate(fresh)})`,
      rate(recordsMs),
      rate(crc),
      rate(recordsMs - crc),
      rate(median(t.copies)),
      rate(median(zt)),
      `${fmt((100 * fresh) / whole)}% / ${fmt((100 * recordsMs) / whole)}%`,
    ]);
    console.log(rows[rows.length - 1].join("  "));
  }
}

const lines = [
  "# Where in-process decompress() time goes (1 thread)",
  "",
  ...machineLines(`npx node bench/decode-floor.ts --sizes ${argValue("--sizes") ?? "64M"} --runs ${runs}`),
  codeLine(),
  `- ${contentionNote(waitAtStart, performance.now() - started)}`,
  `- Median of ${runs} rounds; in each round the measurements run one after another (interleaved). Compare within a row: the machine is shared. Times are CPU time (process.cpuUsage, all of the process's threads, so the collector's helpers count for decompress()).`,
  "",
  "Inputs: the F32 tensor data of the real files in ../shared/data tiled into one F32 safetensors tensor, and the same values rounded to BF16 and F16 (real-derived), compressed with `threads: 1, long: false` (the tiles repeat; without long-range matches every record decodes on its own). MB/s of output bytes.",
  "",
  "- decompress(): the library call, its output fresh memory.",
  "- fresh memory: allocating a buffer of the output's size and writing one byte per 4 KiB page (the page faults any fresh output pays, whoever writes it).",
  "- records into written memory: every chunk record decoded by its codec and checked against its CRC-32, into one buffer written before (no page faults, no container parsing).",
  "- crc32: the library's crc32 alone over the output in 512 KiB pieces (included in the records figure); records less crc32: the codecs alone.",
  "- copies and crc32: each record's payload copied into one reused buffer, then as many bytes as its content copied from another reused buffer into its place in one reused target and checked by crc32 there: what every record costs a decoder that decodes in WebAssembly's own memory (the copies in and out and the check), with the decoding itself left out.",
  "- zstd: node:zlib's zstdDecompressSync of the same input (level 3), its output fresh memory too.",
  "",
  table(
    [
      "input",
      "decompress() MB/s",
      "fresh memory ms (MB/s)",
      "records into written memory MB/s",
      "crc32 MB/s",
      "records less crc32 MB/s",
      "copies and crc32 MB/s",
      "zstd d MB/s",
      "fresh memory / records, share of decompress()",
    ],
    rows,
  ),
  "",
];
writeReport(join(root, "bench", "results", "decode-floor.md"), lines);
