/**
 * `mmh analyze`: what each tensor or region is made of and what each codec does with it.
 * Every ratio here comes from really encoding a sample of the region with that codec.
 */
import { detectLayout } from "../codecs/hier/hier.ts";
import { histogram } from "../codecs/hier/huffman.ts";
import { type Layout, layoutForDType, streamLength } from "../codecs/hier/layouts.ts";
import { findPeriod } from "../codecs/p251.ts";
import { codecByName } from "../codecs/registry.ts";
import { type DTypeName, dtypeByName } from "../common/dtype.ts";
import { MmhError } from "../common/errors.ts";
import type { RandomAccessSource } from "../common/source.ts";
import { encodeAuto, type Goal } from "../engine/auto.ts";
import { encodeChunk } from "../engine/chunk.ts";
import { resolveCompressOptions } from "../engine/options.ts";
import { segmentRaw } from "../formats/detect.ts";
import { recognise } from "../formats/index.ts";
import type { Recognised } from "../formats/types.ts";

export interface FieldEntropy {
  field: string;
  /** Order-0 entropy in bits per symbol (a symbol is one byte of the field stream). */
  bits: number;
}

export interface CandidateResult {
  codec: string;
  /** Stored bytes over raw bytes on the sample (record header included). */
  ratio: number;
}

export interface RegionReport {
  name: string;
  offset: number;
  length: number;
  shape?: number[];
  dtype: string | null;
  /** "given" by the file format, "detected" from the bytes, or "none" for bytes HIER treats as plain bytes. */
  dtypeSource: "given" | "detected" | "none";
  /** Element alignment found by detection (bytes before the first whole element). */
  head?: number;
  sampleBytes: number;
  fields: FieldEntropy[];
  candidates: CandidateResult[];
  auto: string;
  warnings: string[];
}

export interface AnalyzeReport {
  format: string;
  size: number;
  recogniseProblem?: string;
  regions: RegionReport[];
  warnings: string[];
}

export interface AnalyzeOptions {
  goal?: Goal;
  level?: number;
  /** Bytes sampled per region (default 256 KiB). */
  sampleBytes?: number;
  /** Regions reported at most (default 200): the largest ones. */
  maxRegions?: number;
}

const FIELD_NAMES: Record<string, string[]> = {
  bytes: ["bytes"],
  bf16: ["exponent", "sign+mantissa"],
  "bf16 for F16": ["exponent+mantissa top 3", "sign+mantissa low 7"],
  f16: ["exponent", "mantissa low", "sign+mantissa high"],
  f32: ["exponent", "mantissa byte 0", "mantissa byte 1", "sign+mantissa high"],
};

const LAYOUT_DTYPE: Record<string, DTypeName | null> = {
  bytes: null,
  bf16: "BF16",
  f16: "F16",
  f32: "F32",
  planes2: "I16",
  planes4: "I32",
  planes8: "I64",
};

function entropy(stream: Uint8Array): number {
  const hist = histogram(stream);
  let bits = 0;
  for (const c of hist) if (c > 0) bits -= c * Math.log2(c / stream.length);
  return stream.length ? bits / stream.length : 0;
}

function splitFields(sample: Uint8Array, layout: Layout, head: number, dtype: string | null): FieldEntropy[] {
  const n = Math.floor((sample.length - head) / layout.width);
  if (n < 1) return [];
  const data = new Uint8Array(n * layout.width);
  data.set(sample.subarray(head, head + n * layout.width));
  const streams = Array.from(
    { length: layout.streams },
    (_, k) => new Uint8Array(streamLength(layout, k, n)),
  );
  layout.split(data, n, streams);
  const key = layout.name === "bf16" && dtype === "F16" ? "bf16 for F16" : layout.name;
  const names = FIELD_NAMES[key] ?? layout.fieldNames ?? streams.map((_, i) => `byte plane ${i}`);
  return streams.map((s, i) => ({ field: names[i], bits: Number(entropy(s).toFixed(3)) }));
}

/**
 * Between-row against within-row spread of the exponent, for a 2-D float tensor. Trained
 * weights have rows (channels) of different scales; i.i.d. draws do not. Returns the
 * ratio of the variance of row means to what sampling noise alone would give (about 1
 * for i.i.d. data, far above 1 for real channels), or undefined when it cannot tell.
 */
export function rowStructure(sample: Uint8Array, dtype: DTypeName, cols: number): number | undefined {
  const layout = layoutForDType(dtype);
  if (!["bf16", "f16", "f32"].includes(layout.name) || cols < 32) return undefined;
  const n = Math.floor(sample.length / layout.width);
  const rows = Math.floor(n / cols);
  if (rows < 8) return undefined;
  const data = new Uint8Array(rows * cols * layout.width);
  data.set(sample.subarray(0, data.length));
  const streams = Array.from({ length: layout.streams }, () => new Uint8Array(rows * cols));
  layout.split(data, rows * cols, streams);
  const e = streams[0];
  let within = 0;
  const means: number[] = [];
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    let sq = 0;
    for (let c = 0; c < cols; c++) {
      const v = e[r * cols + c];
      sum += v;
      sq += v * v;
    }
    const mean = sum / cols;
    means.push(mean);
    within += sq / cols - mean * mean;
  }
  within /= rows;
  const grand = means.reduce((a, b) => a + b, 0) / rows;
  const between = means.reduce((a, m) => a + (m - grand) ** 2, 0) / (rows - 1);
  if (within === 0) return undefined;
  return between / (within / cols);
}

const CANDIDATES = ["hier", "zstd", "lz4", "brotli", "p251", "none"];

async function sampleOf(
  source: RandomAccessSource,
  offset: number,
  length: number,
  size: number,
  align: number,
) {
  if (length <= size) return source.read(offset, length);
  let start = offset + Math.floor((length - size) / 2);
  start -= (start - offset) % align;
  return source.read(start, size);
}

export async function analyzeSource(
  source: RandomAccessSource,
  options: AnalyzeOptions = {},
): Promise<AnalyzeReport> {
  const sampleBytes = options.sampleBytes ?? 256 << 10;
  const maxRegions = options.maxRegions ?? 200;
  for (const [what, value] of [
    ["sampleBytes", sampleBytes],
    ["maxRegions", maxRegions],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < 1)
      throw new MmhError("E_BAD_OPTION", `${what} must be a positive integer, got ${value}`);
  }
  // The goal and level as compress checks them (the level is zstd's, as with auto).
  const { goal, level } = resolveCompressOptions({ goal: options.goal, level: options.level });
  let recognised: Recognised;
  let recogniseProblem: string | undefined;
  try {
    recognised = await recognise(source);
  } catch (error) {
    if (!(error instanceof MmhError) || error.code === "E_IO") throw error;
    recogniseProblem = `${error.code}: ${error.message}`;
    recognised = {
      format: "raw",
      regions: [{ name: "raw", offset: 0, length: source.size, dtype: null, kind: "raw" }],
      tensors: [],
    };
  }
  const shapes = new Map(recognised.tensors.map((t) => [t.offset, t]));
  // Raw bytes are segmented as the compressor does, so arrays inside an unknown file show up.
  const windows: {
    name: string;
    offset: number;
    length: number;
    dtype: DTypeName | null;
    shape?: number[];
    detected?: boolean;
  }[] = [];
  for (const region of recognised.regions) {
    const parts =
      region.dtype === null && region.kind === "raw" ? await segmentRaw(source, region) : [region];
    for (const part of parts) {
      windows.push({
        name: part.name,
        offset: part.offset,
        length: part.length,
        dtype: part.dtype,
        shape: part.shape ?? shapes.get(part.offset)?.shape,
        detected: part.note?.startsWith("detected") ?? false,
      });
    }
  }
  const chosen = windows
    .filter((w) => w.length > 0)
    .sort((a, b) => b.length - a.length)
    .slice(0, maxRegions)
    .sort((a, b) => a.offset - b.offset);
  const reports: RegionReport[] = [];
  for (const w of chosen) {
    const known = w.dtype ? dtypeByName(w.dtype) : undefined;
    const width = known ? Math.max(1, known.bits / 8) : 8;
    const sample = await sampleOf(
      source,
      w.offset,
      w.length,
      sampleBytes,
      Number.isInteger(width) ? width : 1,
    );
    const warnings: string[] = [];
    let layout: Layout;
    let head = 0;
    let dtype: string | null = w.dtype;
    let dtypeSource: RegionReport["dtypeSource"] = w.detected ? "detected" : "given";
    if (known) layout = layoutForDType(known.name);
    else {
      const found = detectLayout(sample);
      layout = found.layout;
      head = found.head;
      dtype = LAYOUT_DTYPE[layout.name] ?? null;
      dtypeSource = dtype === null ? "none" : "detected";
    }
    const fields = splitFields(sample, layout, head, dtype);
    const candidates: CandidateResult[] = [];
    for (const name of CANDIDATES) {
      const codec = codecByName(name);
      const codecLevel = codec.levels
        ? name === "zstd" || name === "hier"
          ? (level ?? codec.levels.default)
          : codec.levels.default
        : undefined;
      const chunk = encodeChunk(sample, codec, codecLevel, known ? known.name : null);
      candidates.push({
        codec: name,
        ratio: Number(((chunk.header.length + chunk.payload.length) / sample.length).toFixed(4)),
      });
    }
    const auto = encodeAuto(sample, known ? known.name : null, goal, level, { choiceMs: 0 });
    const period = findPeriod(sample);
    const hist = histogram(sample);
    const distinct = hist.reduce((a, c) => a + (c > 0 ? 1 : 0), 0);
    if (distinct === 1) warnings.push("constant: every byte has the same value");
    else if (period && period.periodicLength >= sample.length * 0.9) {
      warnings.push(`periodic: repeats every ${period.period} bytes`);
    }
    if (known && w.shape && w.shape.length === 2) {
      const f = rowStructure(sample, known.name, w.shape[1]);
      if (f !== undefined && f < 2) {
        warnings.push(
          `i.i.d.-looking: rows show no per-channel scale structure (F=${f.toFixed(2)}), like random draws or untrained weights`,
        );
      }
    }
    reports.push({
      name: w.name,
      offset: w.offset,
      length: w.length,
      ...(w.shape ? { shape: w.shape } : {}),
      dtype,
      dtypeSource,
      ...(dtypeSource === "detected" ? { head } : {}),
      sampleBytes: sample.length,
      fields,
      candidates,
      auto: auto.codec.trim().toLowerCase(),
      warnings,
    });
  }
  const warnings: string[] = [];
  const meta = recognised.metadata as Record<string, unknown> | undefined;
  const stMeta = (meta?.__metadata__ ?? meta?.metadata) as Record<string, unknown> | undefined;
  const ggufKv = meta?.kv as Record<string, unknown> | undefined;
  if ((stMeta && String(stMeta.synthetic) === "true") || String(ggufKv?.["mmh.synthetic"]) === "true")
    warnings.push("the file says it is synthetic (metadata synthetic=true)");
  const flagged = reports.filter((r) => r.warnings.length > 0).length;
  if (flagged > 0) {
    warnings.push(
      `${flagged} of ${reports.length} regions look synthetic or untrained (periodic, constant or i.i.d.): their ratios are a poor guide to trained weights`,
    );
  }
  if (windows.length > chosen.length)
    warnings.push(`${windows.length - chosen.length} smaller regions not shown (limit ${maxRegions})`);
  return {
    format: recognised.format,
    size: source.size,
    ...(recogniseProblem ? { recogniseProblem } : {}),
    regions: reports,
    warnings,
  };
}
