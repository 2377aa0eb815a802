/**
 * `--codec auto`: per chunk, try the candidate codecs on samples and keep the best for
 * the goal. The cost of choosing is measured and reported (CompressSummary.choiceMs).
 */

import { brotliCodec } from "../codecs/brotli.ts";
import { cint2Codec, cintCodec, lengthsVary, looksCompact } from "../codecs/cint.ts";
import {
  detectLayout,
  estimateLayout,
  type HierDraft,
  hierCodec,
  hierDraft,
  hierEncodedLength,
} from "../codecs/hier/hier.ts";
import { isRecordsKey, LAYOUTS, layoutForDType, planesKey } from "../codecs/hier/layouts.ts";
import { lz4Codec } from "../codecs/lz4.ts";
import { noneCodec } from "../codecs/none.ts";
import { findPeriod, type PeriodInfo, p251Codec } from "../codecs/p251.ts";
import { codecById } from "../codecs/registry.ts";
import type { Codec } from "../codecs/types.ts";
import { zstdCodec } from "../codecs/zstd.ts";
import { nowMs } from "../common/clock.ts";
import { crc32 } from "../common/crc.ts";
import { cutUnit, type DTypeName } from "../common/dtype.ts";
import { MmhError } from "../common/errors.ts";
import { repeatShare } from "../common/repeats.ts";
import { CHUNK_HEADER_SIZE } from "../container/format.ts";
import { type EncodedChunk, encodeChunk } from "./chunk.ts";
import { recordWidth } from "./records.ts";

export type Goal = "ratio" | "balanced" | "speed";
export const GOALS: readonly Goal[] = ["ratio", "balanced", "speed"];

interface Candidate {
  codec: Codec;
  level: number | undefined;
  /** HIER split with this layout, every stream also tried with zstd (CodecOptions.layout). */
  layout?: number;
}

/** HIER layouts 4 and 5 (FORMAT.md §6.2): 2- and 4-byte planes, byte grouping. */
const PLANES2 = 4;
const PLANES4 = 5;

/**
 * The candidates for a goal. Beside HIER's field coding and the general codec, the
 * default and ratio goals have byte grouping + zstd (HIER with 2- or 4-byte planes, each
 * plane coded with zstd at the goal's level, or Huffman where smaller): the floor that
 * `auto` never goes below by more than the sample's error.
 */
function candidates(goal: Goal, level: number | undefined): Candidate[] {
  switch (goal) {
    case "speed":
      return [
        { codec: hierCodec, level: -1 },
        { codec: lz4Codec, level: undefined },
      ];
    case "ratio":
      return [
        { codec: hierCodec, level: level ?? 19 },
        { codec: zstdCodec, level: level ?? 19 },
        { codec: hierCodec, level: level ?? 19, layout: PLANES2 },
        { codec: hierCodec, level: level ?? 19, layout: PLANES4 },
      ];
    default:
      return [
        { codec: hierCodec, level: level ?? 3 },
        { codec: zstdCodec, level: level ?? 3 },
        { codec: hierCodec, level: level ?? 3, layout: PLANES2 },
        { codec: hierCodec, level: level ?? 3, layout: PLANES4 },
      ];
  }
}

const SAMPLE = 16 << 10;
/** Below this many bytes a chunk is coded whole by every candidate: sampling would save little. */
const WHOLE = 96 << 10;
/**
 * Small chunks that LZ codes best (zstd beat HIER's fields and the byte groupings) are also
 * tried with brotli, whose context modelling finds more in small structured data than
 * zstd's matches: quality 5 for the default goal, 9 for ratio. Tried on no other chunk, so
 * weights that HIER codes best pay nothing for it.
 */
const SMALL_BROTLI: Partial<Record<Goal, number>> = { balanced: 5, ratio: 9 };
/**
 * Larger chunks that zstd codes whole are tried with brotli too, kept when smaller. The
 * default goal: quality 4 (its hasher finds more than 5-9 in quantised weights, for about
 * 2.7 zstd -3 encodes) when zstd was the smallest so far. `ratio`: quality 4 on every
 * such chunk (even where HIER wins, it costs a few percent of a zstd -19 encode), then 9
 * when an LZ record is the smallest. Measured in docs/ENGINE.md ("auto's choice per chunk").
 */
const LARGE_BROTLI: Partial<Record<Goal, readonly { quality: number; ifBest?: readonly string[] }[]>> = {
  balanced: [{ quality: 4, ifBest: [zstdCodec.id] }],
  ratio: [{ quality: 4 }, { quality: 9, ifBest: [zstdCodec.id, brotliCodec.id] }],
};
/** When the runner-up's sample is within this share of the best, both are coded whole... */
const CLOSE = 0.03;
/**
 * ...unless they are within this share: a tie, where HIER has found nothing to split and
 * coded its one stream with zstd itself. Then the general codec (zstd, or lz4 for speed)
 * is taken, as simpler to decode.
 */
const TIE = 0.005;
/**
 * A record within this share of the smallest counts as best for `ifBest` (CLOSE's
 * margin: HIER's one zstd stream on text came out 1.4% under zstd -3's record, where
 * brotli 4 was 6.5% under both).
 */
const NEAR_BEST = CLOSE;
/**
 * A chunk whose values repeat this often (repeatShare) may hold repeats its samples do
 * not show: the LZ candidates (zstd and the better byte grouping) are coded whole too.
 */
const REPEATED = 0.1;
/**
 * A byte grouping is coded whole only when its sample is within this share of the best:
 * its zstd planes do a little better on the whole chunk than on the sample, but on
 * i.i.d. weights it loses to HIER's fields by about 1%, and coding it whole costs a zstd
 * pass over the chunk.
 */
const GROUP_CLOSE = 0;
/**
 * Dtypes whose chunks skip the 4-byte grouping's sample: 16-bit floats, whose two bytes'
 * planes (PLANES2) lose nothing to four (measured in docs/ENGINE.md).
 */
const HALF_FLOATS: ReadonlySet<DTypeName | null> = new Set<DTypeName>(["BF16", "F16"]);
/**
 * Dtypes whose decisions are clear of a byte grouping that ranked below the best however
 * close it came (GROUP_CLEAR is not applied): BF16 and F32 weights, where a grouping
 * almost never ranked first on a sample but, mostly within GROUP_CLEAR of HIER's fields,
 * had every decision resampled after REUSE_UNCLEAR chunks (docs/ENGINE.md).
 */
const GROUPS_LOSE: ReadonlySet<DTypeName> = new Set<DTypeName>(["BF16", "F32"]);
/** A decision is clear of a byte grouping when the grouping's sample was at least this much larger. */
const GROUP_CLEAR = 0.01;

export interface AutoStats {
  /** Milliseconds spent choosing: sample encodes and the losing whole encodes. */
  choiceMs: number;
  /**
   * The last decision (the choices coded whole), reused for the next chunks of the same
   * dtype: consecutive chunks of one tensor are alike, so sampling each of them would
   * only repeat the answer.
   */
  reuse?: {
    dtype: DTypeName | null;
    choices: Choice[];
    left: number;
    estimate: number;
    /** The sample ranked HIER's fields first and zstd's record at least CLEAR larger (smallFollows). */
    fieldsClear?: boolean;
    /**
     * A clear decision: the share by which its closest runner-up's sample stayed over the
     * clear line (CLEAR, or GROUP_CLEAR for a grouping), the relative drift of the order-0
     * estimate it tolerates (reuseFits).
     */
    slack?: number;
  };
  /** The same for chunks of one stream (chooseOneStream), with the sample's estimate and repeat share. */
  oneStream?: {
    dtype: DTypeName | null;
    choices: Choice[];
    left: number;
    estimate: number;
    guarded: boolean;
  };
}

/**
 * Chunks of the same dtype that reuse a decision that was not clear (or, below, one that
 * was) before the next sampling: sampling four candidates on every chunk would cost a
 * quarter of coding it.
 */
const REUSE_UNCLEAR = 3;
/** Chunks of the same dtype that reuse a clear decision before the next sampling. */
const REUSE = 15;
/** A decision is clear when the runner-up's sample was at least this much larger. */
const CLEAR = 0.05;

/** Two pieces of the chunk, each starting on an element (cutUnit) and a whole number of them long. */
function sampleOf(raw: Uint8Array, dtype: DTypeName | null): Uint8Array {
  if (raw.length <= 2 * SAMPLE) return raw;
  const unit = cutUnit(dtype);
  const piece = SAMPLE - (SAMPLE % unit);
  const a = Math.floor(raw.length / 4 / unit) * unit;
  const b = Math.floor((raw.length * 3) / 4 / unit) * unit;
  if (b + piece > raw.length) return raw;
  const out = new Uint8Array(2 * piece);
  out.set(raw.subarray(a, a + piece), 0);
  out.set(raw.subarray(b, b + piece), piece);
  return out;
}

function storedSize(chunk: EncodedChunk): number {
  return chunk.header.length + chunk.payload.length;
}

/**
 * The stored size of a sample coded by one candidate. The record is only measured, never
 * written, so its CRC-32 (which does not change its size) is not computed: 0 stands in,
 * and HIER only chooses its streams' methods, which gives the payload's length, without
 * coding them (encodeChunk stores the bytes raw when the payload is not shorter).
 */
function sampleSize(
  sample: Uint8Array,
  codec: Codec,
  level: number | undefined,
  dtype: DTypeName | null,
  layout?: number,
): number {
  if (codec.id === hierCodec.id) {
    const options = layout === undefined ? { level, dtype } : { level, dtype, layout };
    return CHUNK_HEADER_SIZE + Math.min(hierEncodedLength(sample, options), sample.length);
  }
  return storedSize(encodeChunk(sample, codec, level, dtype, undefined, layout, 0));
}

/** A codec and level to encode a chunk with in full: plain data, so it can go to a worker. */
export interface Choice {
  id: string;
  level: number | undefined;
  /** HIER only: the layout to split with (CodecOptions.layout). */
  layout?: number;
  /**
   * Tried only when the smallest result so far is one of these codecs', or one of their
   * records is within NEAR_BEST of it (encodeChoices): HIER on text or other bytes it
   * cannot split codes its one stream with zstd and may come out a hair under the zstd
   * record, which says nothing about whether brotli would do better.
   */
  ifBest?: readonly string[];
  /**
   * Tried only when the record of codec `id` (coded before it) was not under `bytes`, or
   * not coded: a small chunk's byte groupings beside zstd (chooseCore).
   */
  ifOver?: { id: string; bytes: number };
  /** HIER without a layout: detectLayout's answer on this chunk, when choosing ran it (CodecOptions.detected). */
  detected?: { layout: number; head: number };
}

const asChoice = (c: Candidate): Choice =>
  c.layout === undefined
    ? { id: c.codec.id, level: c.level }
    : { id: c.codec.id, level: c.level, layout: c.layout };

const sameChoice = (a: Choice, b: Choice) => a.id === b.id && a.level === b.level && a.layout === b.layout;

/**
 * Decide, from the chunk alone and the decisions before it, which codecs to encode it
 * with in full (the smallest result is kept). Cheap: samples, not whole encodes. The
 * result depends only on the chunks in order, never on timing, so the output is the
 * same whatever the number of workers.
 */
export function chooseCodecs(
  raw: Uint8Array,
  dtype: DTypeName | null,
  goal: Goal,
  level: number | undefined,
  stats: AutoStats,
  period: PeriodInfo | null = findPeriod(raw),
): Choice[] {
  const compact = periodic(raw, period) ? undefined : compactChoice(raw, dtype, goal, level, stats);
  if (compact === undefined) return chooseCodecsBefore(raw, dtype, goal, level, stats, period);
  // Compact integers of varying lengths: CINT, and the general codec at the goal's level
  // beside it (a floor for bytes that only read as such integers). The other candidates
  // are neither sampled nor coded: on dlib's shape predictor CINT was the smallest on
  // every chunk at both goals, by a wide margin, and they cost more than CINT itself
  // (docs/ENGINE.md). Integers of fixed lengths are records a byte grouping of their
  // width splits as well: there every candidate is sampled and CINT coded beside them.
  if (compact.varying) {
    const general = candidates(goal, level)[1];
    return [compact.choice, { id: general.codec.id, level: general.level }];
  }
  return [...chooseCodecsBefore(raw, dtype, goal, level, stats, period), compact.choice];
}

/**
 * CINT (src/codecs/cint.ts), coded whole (chooseCodecs), on a chunk without a dtype that
 * reads as compact integers (dlib's serialisation): where the integers' lengths vary, no
 * byte grouping stays aligned with their fields. Whether they vary is returned too. Not
 * for the speed goal; at the ratio goal CIN2, CINT whose streams may also be ABIN.
 */
function compactChoice(
  raw: Uint8Array,
  dtype: DTypeName | null,
  goal: Goal,
  level: number | undefined,
  stats: AutoStats,
): { choice: Choice; varying: boolean } | undefined {
  if (dtype !== null || goal === "speed" || raw.length <= WHOLE) return undefined;
  const chosen = level ?? (goal === "ratio" ? 19 : 3);
  const range = cintCodec.levels;
  if (range === undefined || chosen < range.min || chosen > range.max) return undefined;
  const started = nowMs();
  try {
    return looksCompact(raw)
      ? {
          choice: { id: (goal === "ratio" ? cint2Codec : cintCodec).id, level: chosen },
          varying: lengthsVary(raw),
        }
      : undefined;
  } finally {
    stats.choiceMs += nowMs() - started;
  }
}

function chooseCodecsBefore(
  raw: Uint8Array,
  dtype: DTypeName | null,
  goal: Goal,
  level: number | undefined,
  stats: AutoStats,
  period: PeriodInfo | null,
): Choice[] {
  if (goal === "balanced" && level === undefined && raw.length > WHOLE && !periodic(raw, period)) {
    const one = chooseOneStream(raw, dtype, stats);
    if (one) return one;
  }
  const sampled: Sampled = {};
  const chosen = chooseCore(raw, dtype, goal, level, stats, period, sampled);
  const qualities = LARGE_BROTLI[goal];
  if (raw.length <= WHOLE || qualities === undefined || level !== undefined) return chosen;
  if (!chosen.some((c) => c.id === zstdCodec.id)) return chosen;
  const brotli: Choice[] = qualities.map(({ quality, ifBest }) =>
    ifBest === undefined
      ? { id: brotliCodec.id, level: quality }
      : { id: brotliCodec.id, level: quality, ifBest },
  );
  if (goal === "ratio" && topBrotliPays(sampled, dtype, stats))
    brotli.push({ id: brotliCodec.id, level: TOP_BROTLI, ifBest: [zstdCodec.id, brotliCodec.id] });
  return [...chosen, ...brotli];
}

/**
 * Brotli's top quality, tried whole at the ratio goal on a chunk (over WHOLE bytes) that
 * LZ codes best, when its sample codes smaller than zstd -19's: its iterated optimal
 * parse and context modelling find in text what zstd's parser does not (8-10x the time of
 * zstd -19 there), but where zstd already codes the bytes as well it only costs that time.
 */
const TOP_BROTLI = 11;

/** What chooseCore sampled: the sample, zstd's stored size on it, and the smallest candidate's. */
interface Sampled {
  sample?: Uint8Array;
  general?: number;
  best?: number;
}

/**
 * Whether brotli's top quality is worth coding the chunk whole with: zstd's sample was
 * within NEAR_BEST of the best candidate's (so an LZ record may win), and brotli's top
 * quality codes the sample smaller than zstd did.
 */
function topBrotliPays(sampled: Sampled, dtype: DTypeName | null, stats: AutoStats): boolean {
  const { sample, general, best } = sampled;
  if (sample === undefined || general === undefined || best === undefined) return false;
  if (general > best * (1 + NEAR_BEST)) return false;
  const started = nowMs();
  try {
    return sampleSize(sample, brotliCodec, TOP_BROTLI, dtype) < general;
  } finally {
    stats.choiceMs += nowMs() - started;
  }
}

const periodic = (raw: Uint8Array, period: PeriodInfo | null) =>
  period !== null && period.periodicLength >= raw.length * 0.9;

/**
 * Levels of zstd on one-stream chunks: a level is left out when the other's sample is
 * smaller by this share (chooseOneStream).
 */
const LEVEL_CLEAR = 0.03;
/** Brotli is left out of a one-stream chunk when its sample is larger than zstd's by this share. */
const BROTLI_LOSES = 0.05;
/**
 * The byte groupings are sampled on a one-stream chunk only when zstd's sample is at least
 * this share of the order-0 estimate: LZ data (text) whose matches splitting into planes
 * would break up loses nothing by not trying them.
 */
const GROUP_WORTH = 0.75;
/**
 * A one-stream decision is reused for the next REUSE_UNCLEAR chunks of the same dtype, as
 * chooseCore's are; one that left out a zstd level or brotli only while their sample's
 * order-0 estimate (bits per bit) stays within this of the sampled chunk's.
 */
const REUSE_ESTIMATE = 0.03;

/** The default goal's brotli on a one-stream chunk (LARGE_BROTLI), tried beside a zstd record near the best. */
const LARGE_BROTLI4: Choice = { id: brotliCodec.id, level: 4, ifBest: [zstdCodec.id] };

/** Layout 19's key for a raw chunk of records of W bytes (records.ts), as a list of none or one. */
const recordsLayouts = (raw: Uint8Array, dtype: DTypeName | null): number[] => {
  const width = dtype === null ? recordWidth(raw) : undefined;
  return width === undefined ? [] : [planesKey(width)];
};

/** HIER's layout 0: the bytes as one stream. */
const BYTES = LAYOUTS[0];

/**
 * The default goal's choice for a chunk HIER cannot split: no dtype and a layout of one
 * stream detected (text, JSON, archives, the raw bytes of model files), or a dtype whose
 * layout has one stream. HIER would code its one stream with Huffman or zstd, and zstd
 * would code the same bytes again as a record of its own: here the candidates are HIER
 * without zstd (Huffman), zstd records at level 1 and 3 (a record's level is not stored),
 * brotli at quality 4 and the byte groupings, and only those the sample leaves in are
 * coded whole. Undefined for other chunks (chooseCore decides).
 */
function chooseOneStream(raw: Uint8Array, dtype: DTypeName | null, stats: AutoStats): Choice[] | undefined {
  if (dtype !== null && layoutForDType(dtype).streams !== 1) return undefined;
  const started = nowMs();
  try {
    const sample = sampleOf(raw, dtype);
    const estimate = estimateLayout(sample, BYTES, 0);
    const last = stats.oneStream;
    if (
      last &&
      last.dtype === dtype &&
      last.left > 0 &&
      (!last.guarded || Math.abs(last.estimate - estimate) <= REUSE_ESTIMATE)
    ) {
      last.left--;
      return last.choices;
    }
    stats.oneStream = undefined;
    const found = dtype === null ? detectLayout(raw) : undefined;
    if (found && found.layout.streams !== 1) return undefined;
    // HIER codes this chunk with the layout just found, not found again; the choices kept
    // for the next chunks (which detect their own) do not carry it.
    const detected = found && { layout: found.layout.id, head: found.head };
    const remember = (choices: Choice[], guarded = false) => {
      stats.oneStream = { dtype, choices, left: REUSE_UNCLEAR, estimate, guarded };
      const plain = (c: Choice) => c.id === hierCodec.id && c.layout === undefined;
      return detected === undefined || !choices.some(plain)
        ? choices
        : choices.map((c) => (plain(c) ? { ...c, detected } : c));
    };
    const size = (codec: Codec, level: number, layout?: number) =>
      sampleSize(sample, codec, level, dtype, layout);
    const z1 = size(zstdCodec, 1);
    // Bytes zstd cannot shrink on the sample (compressed media, archives): zstd at the
    // goal's level and brotli after it, as before, which cost little there.
    if (z1 > sample.length) return remember([{ id: zstdCodec.id, level: 3 }, LARGE_BROTLI4]);
    const z3 = size(zstdCodec, 3);
    const lz = Math.min(z1, z3);
    // Huffman's size from the order-0 estimate (a little under what it codes).
    const huffman = Math.ceil(estimate * sample.length);
    const groupings =
      lz >= huffman * GROUP_WORTH
        ? [PLANES2, PLANES4, ...recordsLayouts(raw, dtype)].map((layout) => ({
            layout,
            size: size(hierCodec, 3, layout),
          }))
        : [];
    // Brotli is weighed against zstd alone below: it is tried only beside a zstd record.
    const best = Math.min(huffman, lz, ...groupings.map((g) => g.size));
    const repeated = repeatShare(raw) >= REPEATED;
    const chosen: Choice[] = [];
    // Without zstd records beside it, HIER keeps its own zstd pass, as before.
    const zstdWhole = repeated || lz <= best * (1 + CLOSE);
    // Brotli's sample, where it may be coded whole (beside a zstd record).
    const brotli = zstdWhole ? size(brotliCodec, 4) : Number.POSITIVE_INFINITY;
    const withBrotli = brotli < lz * (1 + BROTLI_LOSES);
    // HIER without zstd codes the bytes with Huffman alone: where brotli's sample is smaller
    // than Huffman's estimate (itself a little under what Huffman codes), it is not coded.
    if (huffman <= best * (1 + CLOSE) && !(withBrotli && brotli < huffman))
      chosen.push({ id: hierCodec.id, level: zstdWhole ? -1 : 3 });
    if (zstdWhole) {
      const one = z1 <= z3 * (1 + LEVEL_CLEAR);
      if (one) chosen.push({ id: zstdCodec.id, level: 1 });
      // Level 3 beside level 1 and brotli, where brotli's sample is no larger than its own:
      // left out (level 1 stays, the record brotli is weighed against).
      if (z3 <= z1 * (1 + LEVEL_CLEAR) && !(one && withBrotli && brotli <= z3))
        chosen.push({ id: zstdCodec.id, level: 3 });
    }
    // Far repeats (which zstd's record sees) do not favour planes over the bytes: the
    // groupings are coded whole on their sample's word alone.
    for (const g of groupings)
      if (g.size <= best * (1 + GROUP_CLOSE)) chosen.push({ id: hierCodec.id, level: 3, layout: g.layout });
    if (withBrotli) chosen.push(LARGE_BROTLI4);
    const coded = (c: Choice) => chosen.some((d) => sameChoice(c, d));
    const complete =
      coded({ id: zstdCodec.id, level: 1 }) && coded({ id: zstdCodec.id, level: 3 }) && coded(LARGE_BROTLI4);
    return remember(chosen, zstdWhole && !complete);
  } finally {
    stats.choiceMs += nowMs() - started;
  }
}

/**
 * HIER for a small chunk of the default goal that it codes as one stream of bytes (no
 * dtype and that layout detected, or a dtype whose layout is the bytes), beside the zstd
 * record at level 3: without HIER's own zstd pass (level -1), as chooseOneStream codes
 * larger such chunks. The result is the same: where HIER would keep its zstd frame (on a
 * stream under 128 KiB, zstd at level 3, the frame of the ZSTD record), its payload is that
 * frame plus HIER's 13 bytes of framing, so the ZSTD record is smaller either way; where it
 * would keep Huffman (or the bytes stored), level -1 keeps the same. Undefined for other
 * chunks. The layout detected is handed to HIER, which would otherwise detect it again.
 */
function oneStreamHier(raw: Uint8Array, dtype: DTypeName | null): Choice | undefined {
  if (dtype !== null) return layoutForDType(dtype) === BYTES ? { id: hierCodec.id, level: -1 } : undefined;
  const found = detectLayout(raw);
  const detected = { layout: found.layout.id, head: found.head };
  return { id: hierCodec.id, level: found.layout === BYTES ? -1 : 3, detected };
}

/** Bytes from the middle of a chunk whose order-0 estimate tells whether a decision still fits it (chooseCore). */
const KIND_BYTES = 4 << 10;

const kindEstimate = (raw: Uint8Array): number => {
  const at = Math.max(0, (raw.length - KIND_BYTES) >> 1);
  return estimateLayout(raw.subarray(at, at + KIND_BYTES), BYTES, 0);
};

/**
 * Whether a small chunk (at most WHOLE bytes, values without repeats) of a dtype whose
 * fields HIER splits is coded by HIER alone, without zstd's record (and the brotli tried
 * beside it): HIER codes each field's stream with zstd where that pays, so zstd on the
 * whole chunk can only gain by matches across fields, which is to say repeats, and those
 * the caller has ruled out (repeatShare). On the real model files and the regression
 * corpus zstd's record was never the smaller on such a chunk (bench/results/auto-trials.md;
 * docs/ENGINE.md, auto's choice per chunk). Both are still coded when the last chunk of
 * the same dtype that was sampled (a larger one) did not rank HIER's fields first with
 * zstd's record CLEAR or more behind, and the chunk's order-0 estimate stays near that
 * chunk's: evidence from the file itself that its tensors of this dtype are of another
 * kind. Only the chunks before it decide (never
 * an encode's result), so the choice is the same on any number of workers.
 */
function smallFollows(raw: Uint8Array, dtype: DTypeName | null, stats: AutoStats): boolean {
  if (dtype === null || layoutForDType(dtype).streams === 1) return false;
  const reuse = stats.reuse;
  if (reuse === undefined || reuse.dtype !== dtype || reuse.fieldsClear === true) return true;
  return Math.abs(reuse.estimate - kindEstimate(raw)) > REUSE_ESTIMATE;
}

/**
 * Whether a chunk may reuse the last decision of its dtype (chooseCore): its order-0
 * estimate within REUSE_ESTIMATE of the sampled chunk's, or, for a clear decision, moved
 * by no larger a share of that chunk's than the decision's slack. Every candidate's size
 * follows the bytes' entropy, so a drift of that share would have to fall wholly on the
 * best candidate (and none on its runner-up) to bring the runner-up within the clear line;
 * a change of kind (an index, then a table of values) moves the estimate far more.
 */
function reuseFits(reuse: NonNullable<AutoStats["reuse"]>, estimate: number): boolean {
  const drift = Math.abs(reuse.estimate - estimate);
  if (drift <= REUSE_ESTIMATE) return true;
  return reuse.slack !== undefined && reuse.estimate > 0 && drift <= reuse.slack * reuse.estimate;
}

function chooseCore(
  raw: Uint8Array,
  dtype: DTypeName | null,
  goal: Goal,
  level: number | undefined,
  stats: AutoStats,
  period: PeriodInfo | null,
  /** Filled, when chunk is sampled, with the sample and its sizes (topBrotliPays). */
  sampled: Sampled = {},
): Choice[] {
  const started = nowMs();
  try {
    // Periodic data and constant runs: P251 codes them in a few bytes, at memory speed.
    if (periodic(raw, period)) return [{ id: p251Codec.id, level: undefined }];
    const options = candidates(goal, level);
    // Small chunks: HIER and the general codec coded whole; the byte groupings too only
    // when the chunk's values repeat (their zstd planes are what gains then), since
    // coding two groupings whole on every small tensor doubled the cost of choosing.
    if (raw.length <= WHOLE) {
      const lz = goal !== "speed" && repeatShare(raw) >= REPEATED;
      if (!lz && goal === "balanced" && level === undefined && smallFollows(raw, dtype, stats))
        return [{ id: hierCodec.id, level: 3 }];
      // With repeats, the default goal codes the groupings only where zstd's record (coded
      // before them) is at least GROUP_WORTH of the chunk's order-0 estimate, as on
      // one-stream chunks: LZ data whose matches its planes would break up (ifOver). Not
      // at `ratio`, where zstd -19's record is the smaller and a grouping still won below it.
      const fewer = lz && goal === "balanced" && level === undefined;
      const worth = fewer ? Math.ceil(GROUP_WORTH * estimateLayout(raw, BYTES, 0) * raw.length) : 0;
      const chosen = options
        .filter((c) => lz || c.layout === undefined)
        .map((c) =>
          c.layout === undefined || !fewer
            ? asChoice(c)
            : { ...asChoice(c), ifOver: { id: zstdCodec.id, bytes: worth } },
        );
      if (goal === "balanced" && level === undefined) chosen[0] = oneStreamHier(raw, dtype) ?? chosen[0];
      const quality = SMALL_BROTLI[goal];
      if (quality !== undefined && level === undefined)
        chosen.push({ id: brotliCodec.id, level: quality, ifBest: [zstdCodec.id] });
      return chosen;
    }
    const general = options[1];
    const reuse = stats.reuse;
    // A region's bytes may change kind from chunk to chunk while its dtype stays (a raw
    // region detected as one layout: a file's index, then its table of values): a
    // decision is reused only while the chunk's order-0 estimate stays near the sampled
    // chunk's (reuseFits: nearer for a decision with less margin), as chooseOneStream's are.
    const estimate = kindEstimate(raw);
    if (goal !== "ratio" && reuse && reuse.dtype === dtype && reuse.left > 0 && reuseFits(reuse, estimate)) {
      const chosen = [
        ...options.map(asChoice),
        ...reuse.choices.filter((c) => isRecordsKey(c.layout)),
      ].filter((c) => reuse.choices.some((r) => sameChoice(r, c)));
      if (chosen.length === reuse.choices.length) {
        reuse.left--;
        return chosen;
      }
    }
    // Records of W bytes (records.ts): their byte planes + zstd, one more byte grouping.
    const width = dtype === null && goal !== "speed" ? recordWidth(raw) : undefined;
    if (width !== undefined) options.push({ ...options[2], layout: planesKey(width) });
    const sample = sampleOf(raw, dtype);
    const ranked = options
      .filter((c) => c.layout !== PLANES4 || goal === "ratio" || !HALF_FLOATS.has(dtype))
      .map((c) => ({
        c,
        size: sampleSize(sample, c.codec, c.level, dtype, c.layout),
      }))
      .sort((x, y) => x.size - y.size);
    const best = ranked[0];
    const generalSize = ranked.find((r) => r.c === general)?.size ?? Number.POSITIVE_INFINITY;
    sampled.sample = sample;
    sampled.general = generalSize;
    sampled.best = best.size;
    // A tie means HIER found nothing to split only where its layout has one stream; a
    // dtype whose layout splits fields (quantisation blocks, floats, integer planes) gets
    // both coded whole on a near tie (CLOSE below), and the smaller kept.
    if (
      goal !== "ratio" &&
      best.c !== general &&
      generalSize <= best.size * (1 + TIE) &&
      (dtype === null || layoutForDType(dtype).streams === 1)
    ) {
      stats.reuse = { dtype, choices: [asChoice(general)], left: REUSE, estimate };
      return [asChoice(general)];
    }
    // Repeats far apart in the chunk are invisible to the samples: code the LZ candidates
    // whole as well (zstd, and the better of the byte groupings).
    const repeated = goal !== "speed" && repeatShare(raw) >= REPEATED;
    const whole = new Set<Candidate>([best.c]);
    let clear = true;
    let slack = Number.POSITIVE_INFINITY;
    for (const r of ranked.slice(1)) {
      const grouping = r.c.layout !== undefined;
      if (r.size <= best.size * (1 + (grouping ? GROUP_CLOSE : CLOSE))) whole.add(r.c);
      if (grouping && goal !== "ratio" && dtype !== null && GROUPS_LOSE.has(dtype)) continue;
      const line = grouping ? GROUP_CLEAR : CLEAR;
      if (r.size <= best.size * (1 + line)) clear = false;
      slack = Math.min(slack, r.size / best.size - 1 - line);
    }
    // The ratio goal codes HIER and zstd whole on every chunk; only the groupings are sampled.
    if (goal === "ratio") {
      whole.add(options[0]);
      whole.add(general);
    }
    // (Not when records' planes won clearly: their zstd planes see those repeats too.)
    const records = isRecordsKey(best.c.layout) && generalSize > best.size * (1 + CLEAR);
    if (repeated && !records) {
      whole.add(general);
      const grouping = ranked.find((r) => r.c.layout !== undefined);
      if (grouping) whole.add(grouping.c);
    }
    const chosen = options.filter((c) => whole.has(c)).map(asChoice);
    // Repeats vary from chunk to chunk: a chunk that has them decides for itself alone.
    stats.reuse = repeated
      ? undefined
      : {
          dtype,
          choices: clear ? [asChoice(best.c)] : chosen,
          left: clear ? REUSE : REUSE_UNCLEAR,
          estimate,
          fieldsClear: best.c === options[0] && generalSize >= best.size * (1 + CLEAR),
          ...(clear && Number.isFinite(slack) ? { slack } : {}),
        };
    return chosen;
  } finally {
    stats.choiceMs += nowMs() - started;
  }
}

/**
 * Encode a chunk with each choice and keep the smallest. Returns the chunk and the
 * milliseconds spent on the encodes that were not kept (part of the cost of choosing).
 */
export function encodeChoices(
  raw: Uint8Array,
  dtype: DTypeName | null,
  choices: readonly Choice[],
  output?: (size: number) => Uint8Array,
): { chunk: EncodedChunk; extraMs: number } {
  let best: EncodedChunk | undefined;
  /** The best so far when it is a HIER draft (written only at the end), and its stored size. */
  let bestDraft: { draft: HierDraft; choice: Choice; size: number } | undefined;
  let total = 0;
  let bestMs = 0;
  // Several encodes of one chunk share its CRC, computed once.
  const rawCrc = choices.length > 1 ? crc32(raw) : undefined;
  /** The smallest record of each codec so far. */
  const smallest = new Map<string, number>();
  const bestSize = () => (bestDraft ? bestDraft.size : best ? storedSize(best) : Number.POSITIVE_INFINITY);
  // The winner's own codec passes too: its smallest record is the winner.
  const wanted = (ifBest: readonly string[]) => {
    if (best === undefined && bestDraft === undefined) return false;
    const limit = bestSize() * (1 + NEAR_BEST);
    return ifBest.some((id) => (smallest.get(id) ?? Number.POSITIVE_INFINITY) <= limit);
  };
  const record = (codec: string, size: number) =>
    smallest.set(codec, Math.min(smallest.get(codec) ?? Number.POSITIVE_INFINITY, size));
  for (const choice of choices) {
    if (choice.ifBest !== undefined && !wanted(choice.ifBest)) continue;
    if (
      choice.ifOver !== undefined &&
      (smallest.get(choice.ifOver.id) ?? Number.POSITIVE_INFINITY) < choice.ifOver.bytes
    )
      continue;
    const started = nowMs();
    if (choice.id === hierCodec.id && choices.length > 1) {
      // HIER among several: its streams' methods are chosen and the sizes known exactly,
      // but only the smallest candidate is written (below).
      const draft = hierDraft(raw, hierOptions(choice, dtype));
      // encodeChunk's rule: a payload not shorter than the raw bytes is stored as NONE.
      const kept = draft.length < raw.length;
      const size = CHUNK_HEADER_SIZE + (kept ? draft.length : raw.length);
      const ms = nowMs() - started;
      total += ms;
      record(kept ? hierCodec.id : noneCodec.id, size);
      if (size < bestSize()) {
        bestDraft?.draft.drop();
        bestDraft = { draft, choice, size };
        bestMs = ms;
      } else draft.drop();
      continue;
    }
    // Memory from the caller serves one encode only: with several, each needs its own.
    const into = choices.length === 1 && choice.ifBest === undefined ? output : undefined;
    const chunk = encodeChunk(
      raw,
      codecById(choice.id),
      choice.level,
      dtype,
      into,
      choice.layout,
      rawCrc,
      choice.detected,
    );
    const ms = nowMs() - started;
    total += ms;
    record(chunk.codec, storedSize(chunk));
    if (storedSize(chunk) < bestSize()) {
      bestDraft?.draft.drop();
      bestDraft = undefined;
      best = chunk;
      bestMs = ms;
    }
  }
  if (bestDraft) {
    // The one HIER draft kept is written, the only encode to write into the caller's memory.
    const started = nowMs();
    const { draft, choice } = bestDraft;
    const written: Codec = { ...hierCodec, encode: (_, options) => draft.write(options.output) };
    best = encodeChunk(raw, written, choice.level, dtype, output, choice.layout, rawCrc);
    bestMs += nowMs() - started;
    total += nowMs() - started;
    if (storedSize(best) !== bestDraft.size) throw new MmhError("E_INTERNAL", "HIER: a draft's size changed");
  }
  if (!best) throw new MmhError("E_INTERNAL", "no codec to encode with");
  return { chunk: best, extraMs: total - bestMs };
}

/** CodecOptions for HIER as encodeChunk passes them for a choice. */
const hierOptions = (choice: Choice, dtype: DTypeName | null) =>
  choice.layout !== undefined
    ? { level: choice.level, dtype, layout: choice.layout }
    : choice.detected !== undefined
      ? { level: choice.level, dtype, detected: choice.detected }
      : { level: choice.level, dtype };

export function encodeAuto(
  raw: Uint8Array,
  dtype: DTypeName | null,
  goal: Goal,
  level: number | undefined,
  stats: AutoStats,
): EncodedChunk {
  const { chunk, extraMs } = encodeChoices(raw, dtype, chooseCodecs(raw, dtype, goal, level, stats));
  stats.choiceMs += extraMs;
  return chunk;
}
