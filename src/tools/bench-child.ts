/**
 * One in-memory cell of `mmh bench`, in a process of its own so that its peak memory is
 * its own: read the input into memory, compress it with the library (or byte grouping +
 * zstd), decompress it, check the decoded bytes' sha256, and print the timings as JSON.
 * Run as `node bench-child.(ts|js) JSON`; not a public entry point.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { constants as zlibConstants, zstdCompressSync, zstdDecompressSync } from "node:zlib";
import { dtypeByName } from "../common/dtype.ts";
import { bufferSource } from "../common/source.ts";
import { MmhReader } from "../engine/reader.ts";
import { recognise } from "../formats/index.ts";
import { compress, decompress, type Goal } from "../index.ts";

export type ChildMethod =
  | { kind: "mmh"; goal?: Goal; codec?: string; level?: number; threads: number }
  | { kind: "bytegroup"; level: number };

export interface ChildSpec {
  file: string;
  method: ChildMethod;
  /** Repeat each timed call until this many milliseconds have gone by (at least once). */
  minMs: number;
  /** Report the chunk table of the output (codec and stored bytes per chunk). */
  chunks: boolean;
}

export interface ChildChunk {
  rawOffset: number;
  rawLength: number;
  codec: string;
  recordLength: number;
}

export interface ChildResult {
  storedBytes: number;
  /** Milliseconds per call. */
  compressMs: number;
  decompressMs: number;
  calls: number;
  roundTrip: boolean;
  /** Peak resident memory of this process over its resident memory with the input loaded. */
  peakExtraBytes: number;
  chunks?: ChildChunk[];
  tensors?: { name: string; dtype: string; offset: number; length: number }[];
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** Element width of each region; the bytes grouped by their position in the element. */
async function groupedRegions(data: Buffer): Promise<{ offset: number; length: number; width: number }[]> {
  let regions: { offset: number; length: number; width: number }[];
  try {
    const r = await recognise(bufferSource(data));
    regions = r.regions.map((g) => {
      const d = g.dtype ? dtypeByName(g.dtype) : undefined;
      const width = d && d.bits % 8 === 0 && d.bits <= 64 ? d.bits / 8 : 1;
      return { offset: g.offset, length: g.length, width };
    });
  } catch {
    regions = [{ offset: 0, length: data.length, width: 1 }];
  }
  return regions.filter((g) => g.length > 0);
}

function byteGroup(
  data: Buffer,
  regions: { offset: number; length: number; width: number }[],
  level: number,
): Buffer[] {
  const out: Buffer[] = [];
  const params = { params: { [zlibConstants.ZSTD_c_compressionLevel]: level } };
  for (const g of regions) {
    const n = Math.floor(g.length / g.width);
    const tail = g.length - n * g.width;
    for (let k = 0; k < g.width; k++) {
      const plane = Buffer.allocUnsafe(g.width === 1 ? g.length : n + (k === 0 ? tail : 0));
      if (g.width === 1) data.copy(plane, 0, g.offset, g.offset + g.length);
      else {
        for (let i = 0; i < n; i++) plane[i] = data[g.offset + i * g.width + k];
        if (k === 0 && tail) data.copy(plane, n, g.offset + n * g.width, g.offset + g.length);
      }
      out.push(zstdCompressSync(plane, params));
    }
  }
  return out;
}

function byteUngroup(
  planes: Buffer[],
  regions: { offset: number; length: number; width: number }[],
  total: number,
): Buffer {
  const out = Buffer.allocUnsafe(total);
  let p = 0;
  for (const g of regions) {
    const n = Math.floor(g.length / g.width);
    for (let k = 0; k < g.width; k++) {
      const plane = zstdDecompressSync(planes[p++]);
      if (g.width === 1) plane.copy(out, g.offset);
      else {
        for (let i = 0; i < n; i++) out[g.offset + i * g.width + k] = plane[i];
        if (k === 0 && plane.length > n) plane.copy(out, g.offset + n * g.width, n);
      }
    }
  }
  return out;
}

async function timed<T>(
  minMs: number,
  work: () => Promise<T>,
): Promise<{ ms: number; calls: number; value: T }> {
  const start = performance.now();
  let calls = 0;
  let value: T;
  do {
    value = await work();
    calls++;
  } while (performance.now() - start < minMs);
  return { ms: (performance.now() - start) / calls, calls, value };
}

export async function runChild(spec: ChildSpec): Promise<ChildResult> {
  const data = readFileSync(spec.file);
  const want = sha256(data);
  const base = process.memoryUsage.rss();
  const m = spec.method;
  let result: ChildResult;
  if (m.kind === "mmh") {
    const options = { goal: m.goal, codec: m.codec, level: m.level, threads: m.threads };
    // A warm-up call on small inputs, so the JIT's first pass is not what is timed.
    if (data.length < 16 << 20) await decompress(await compress(data, options), { threads: m.threads });
    const c = await timed(spec.minMs, () => compress(data, options));
    const d = await timed(spec.minMs, () => decompress(c.value, { threads: m.threads }));
    result = {
      storedBytes: c.value.length,
      compressMs: c.ms,
      decompressMs: d.ms,
      calls: Math.min(c.calls, d.calls),
      roundTrip: sha256(d.value) === want,
      peakExtraBytes: 0,
    };
    if (spec.chunks) {
      const reader = await MmhReader.open(bufferSource(c.value));
      result.chunks = reader.chunks.map((k) => ({
        rawOffset: k.rawOffset,
        rawLength: k.rawLength,
        codec: k.codec.trim().toLowerCase(),
        recordLength: k.recordLength,
      }));
      result.tensors = reader.footer.tensors.map((t) => ({
        name: t.name,
        dtype: t.dtype,
        offset: t.offset,
        length: t.length,
      }));
    }
  } else {
    const regions = await groupedRegions(data);
    if (data.length < 16 << 20) byteUngroup(byteGroup(data, regions, m.level), regions, data.length);
    const c = await timed(spec.minMs, async () => byteGroup(data, regions, m.level));
    const d = await timed(spec.minMs, async () => byteUngroup(c.value, regions, data.length));
    result = {
      storedBytes: c.value.reduce((a, b) => a + b.length, 0),
      compressMs: c.ms,
      decompressMs: d.ms,
      calls: Math.min(c.calls, d.calls),
      roundTrip: sha256(d.value) === want,
      peakExtraBytes: 0,
    };
  }
  result.peakExtraBytes = Math.max(0, process.resourceUsage().maxRSS * 1024 - base);
  return result;
}

// Used only by `mmh bench`, which starts this file with the spec as its one argument.
if (process.argv[1] && import.meta.filename === process.argv[1] && process.argv[2]) {
  runChild(JSON.parse(process.argv[2]) as ChildSpec).then(
    (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
}
