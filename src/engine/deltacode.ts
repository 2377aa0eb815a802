/**
 * Coding one chunk against its base bytes (DLTA records, docs/FORMAT.md §6.4): a pure
 * function of the chunk, its base bytes and a few plain parameters, so that it runs on
 * the calling thread or on a pool's worker alike, and its output does not depend on which
 * thread ran it or on the chunks before it (every choice of codec here starts afresh).
 *
 * The modes are XOR and subtraction (each difference coded with auto's choice), the
 * low-rank prediction (modes 5 to 7) and the differences grouped by the base's exponent
 * (modes 8 to 10). Coding every mode in full costs several times coding the chunk alone,
 * so each mode's size is estimated first, cheaply (the entropy of the differences' bit
 * lengths plus the bits below the top one, as lowrank.ts judges its ranks), and only the
 * modes within SCREEN_MARGIN of the smallest estimate are coded in full: a near tie codes
 * both. The low-rank fit is tried only where a quick look at a sample of rows says a
 * low-rank term may pay (probeLowRank).
 */
import { findPeriod } from "../codecs/p251.ts";
import { type DTypeName, dtypeByName } from "../common/dtype.ts";
import { CHUNK_HEADER_SIZE, encodeChunkHeader, MAX_PARAMS } from "../container/format.ts";
import { type AutoStats, type Choice, chooseCodecs, encodeChoices, type Goal } from "./auto.ts";
import type { EncodedChunk } from "./chunk.ts";
import { encodeGroups, groupedModeFor, groupedWidth, planGroups, splitGroups } from "./grouped.ts";
import {
  encodeBlocks,
  fitLowRank,
  lowRankModeFor,
  lowRankWidth,
  type Piece,
  probeLowRank,
} from "./lowrank.ts";
import {
  DELTA_CODEC,
  DELTA_XOR,
  DELTA_ZIGZAG16,
  DELTA_ZIGZAG32,
  encodeDeltaParams,
  makeDelta,
} from "./refs.ts";

/** Everything but the bytes that coding a chunk against its base needs: plain data, so it can go to a worker. */
export interface DeltaJob {
  dtype: DTypeName | null;
  /** The base file and where the chunk's base bytes start in it. */
  baseSha256: string;
  baseOffset: number;
  /** The chunk's tensors as pieces for a low-rank prediction, when they are of one float dtype. */
  pieces: Piece[] | undefined;
  goal: Goal;
  level: number | undefined;
  /** A fixed codec (not auto): every difference is coded with it. */
  fixed: Choice | undefined;
}

/**
 * A mode is coded in full when its estimated size is within this share of the smallest
 * estimate. The estimates order the modes right, but the coders see more than the
 * estimate's order-0 statistics, so a near tie codes both (docs/ENGINE.md, Deltas against
 * a base: choosing the modes).
 */
export const SCREEN_MARGIN = 0.05;

/** A DLTA record of `params` and `payload` for the chunk `plain` codes on its own. */
export function deltaRecord(params: Uint8Array, payload: Uint8Array, plain: EncodedChunk): EncodedChunk {
  return {
    header: encodeChunkHeader(DELTA_CODEC, params, plain.rawLength, plain.rawCrc, payload.length),
    payload,
    codec: DELTA_CODEC,
    rawLength: plain.rawLength,
    rawCrc: plain.rawCrc,
    owned: false,
  };
}

/**
 * Estimated bits to code elements of `width` bytes (differences, zigzag or XOR): the
 * order-0 entropy of their bit lengths, plus the bits below the top one, stored as they are.
 */
export function estimateBits(bytes: Uint8Array, width: number): number {
  const hist = new Float64Array(33);
  let low = 0;
  const n = Math.floor(bytes.length / width);
  for (let e = 0; e < n; e++) {
    const at = e * width;
    const z =
      width === 4
        ? (bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24)) >>> 0
        : width === 2
          ? bytes[at] | (bytes[at + 1] << 8)
          : bytes[at];
    const len = z === 0 ? 0 : 32 - Math.clz32(z);
    hist[len]++;
    if (len > 1) low += len - 1;
  }
  let h = 0;
  for (const c of hist) if (c > 0) h -= c * Math.log2(c / n);
  return h + low;
}

const size = (c: EncodedChunk) => c.header.length + c.payload.length;

/** A candidate mode: its estimate, and how to code it in full. */
interface Trial {
  bits: number;
  code: () => EncodedChunk | undefined;
}

/**
 * The chunk `raw` coded against `base` (its base bytes): the smallest of `plain` (the
 * chunk coded on its own) and the DLTA records of the modes worth coding in full: those
 * within `margin` of the smallest estimate (Infinity codes every mode).
 */
export function encodeAgainstBase(
  raw: Uint8Array,
  base: Uint8Array,
  job: DeltaJob,
  plain: EncodedChunk,
  margin = SCREEN_MARGIN,
): EncodedChunk {
  const { dtype } = job;
  const bits = dtype ? dtypeByName(dtype)?.bits : undefined;
  const width = bits === 16 && raw.length % 2 === 0 ? 2 : bits === 32 && raw.length % 4 === 0 ? 4 : 1;
  // Differences of 2- and 4-byte elements are integers, best split into byte planes.
  const inner: DTypeName | null = bits === 16 ? "U16" : bits === 32 ? "U32" : dtype;
  // Each mode has its choices of codec to itself (the groups of mode 8 to 10 share theirs).
  const coder = () => {
    const stats: AutoStats = { choiceMs: 0 };
    return (diff: Uint8Array, innerType: DTypeName | null) =>
      encodeChoices(
        diff,
        innerType,
        job.fixed ? [job.fixed] : chooseCodecs(diff, innerType, job.goal, job.level, stats, findPeriod(diff)),
      ).chunk;
  };
  const trials: Trial[] = [];
  const modes = [DELTA_XOR];
  if (width === 2) modes.push(DELTA_ZIGZAG16);
  if (width === 4) modes.push(DELTA_ZIGZAG32);
  for (const mode of modes) {
    const diff = makeDelta(raw, base, mode);
    trials.push({
      bits: estimateBits(diff, width),
      code: () => {
        const coded = coder()(diff, inner);
        const params = encodeDeltaParams({
          mode,
          baseSha256: job.baseSha256,
          baseOffset: job.baseOffset,
          inner: coded.codec,
          innerParams: coded.header.subarray(CHUNK_HEADER_SIZE),
        });
        if (params.length + coded.payload.length >= raw.length) return undefined;
        return deltaRecord(params, Buffer.from(coded.payload), plain);
      },
    });
  }
  const grouped = groupedTrial(raw, base, job, plain, coder());
  let least = Number.POSITIVE_INFINITY;
  for (const t of [...trials, grouped]) if (t) least = Math.min(least, t.bits);
  // The low-rank fit only where it may come within the margin: its residual is the
  // subtraction's less what the low-rank term captures, which the quick look bounds.
  const lowRank = lowRankTrial(raw, base, job, plain, coder(), (gain) => {
    const subtraction = trials[1]?.bits ?? Number.POSITIVE_INFINITY;
    return subtraction - gain <= least * (1 + margin);
  });
  if (lowRank) {
    trials.push(lowRank);
    least = Math.min(least, lowRank.bits);
  }
  if (grouped) trials.push(grouped);
  // Every mode within the margin of the smallest estimate is coded, in the order XOR,
  // subtraction, low rank, grouped (a later one replaces an earlier only when smaller).
  let best = plain;
  for (const t of trials) {
    if (t.bits > least * (1 + margin)) continue;
    const record = t.code();
    if (record && size(record) < size(best)) best = record;
  }
  return best;
}

/** The low-rank prediction (modes 5 to 7) as a trial, when the chunk holds a matrix and a quick look says it may pay. */
function lowRankTrial(
  raw: Uint8Array,
  base: Uint8Array,
  job: DeltaJob,
  plain: EncodedChunk,
  code: (diff: Uint8Array, inner: DTypeName | null) => EncodedChunk,
  mayPay: (gain: number) => boolean,
): Trial | undefined {
  const mode = lowRankModeFor(job.dtype);
  const pieces = job.pieces;
  if (mode === undefined || !pieces?.some((p) => p.matrix)) return undefined;
  const gain = probeLowRank(raw, base, mode, pieces);
  if (gain <= 0 || !mayPay(gain)) return undefined;
  const fit = fitLowRank(raw, base, mode, pieces);
  if (!fit) return undefined;
  const width = lowRankWidth(mode);
  const diff = makeDelta(raw, fit.prediction, width === 4 ? DELTA_ZIGZAG32 : DELTA_ZIGZAG16);
  return {
    // The residual as it is, and the factors.
    bits: estimateBits(diff, width) + fit.factors.length * 8,
    code: () => {
      const coded = code(diff, width === 4 ? "U32" : "U16");
      const params = encodeDeltaParams(
        {
          mode,
          baseSha256: job.baseSha256,
          baseOffset: job.baseOffset,
          inner: coded.codec,
          innerParams: coded.header.subarray(CHUNK_HEADER_SIZE),
        },
        encodeBlocks(fit.blocks),
      );
      const payload = Buffer.concat([fit.factors, coded.payload]);
      if (params.length > MAX_PARAMS || params.length + payload.length >= raw.length) return undefined;
      return deltaRecord(params, payload, plain);
    },
  };
}

/** The zigzag differences grouped by the base's exponent (modes 8 to 10) as a trial, each group coded on its own. */
function groupedTrial(
  raw: Uint8Array,
  base: Uint8Array,
  job: DeltaJob,
  plain: EncodedChunk,
  code: (diff: Uint8Array, inner: DTypeName | null) => EncodedChunk,
): Trial | undefined {
  const mode = groupedModeFor(job.dtype);
  if (mode === undefined) return undefined;
  const width = groupedWidth(mode);
  if (raw.length % width !== 0) return undefined;
  const { map, count } = planGroups(base, mode);
  if (count < 2) return undefined;
  const diff = makeDelta(raw, base, width === 4 ? DELTA_ZIGZAG32 : DELTA_ZIGZAG16);
  const inner: DTypeName = width === 4 ? "U32" : "U16";
  const parts = splitGroups(diff, base, mode, map, count);
  let bits = 0;
  for (const part of parts) bits += estimateBits(part, width);
  return {
    bits,
    code: () => {
      const groups = [];
      const payloads: Uint8Array[] = [];
      for (const part of parts) {
        if (part.length === 0) {
          groups.push({ codec: "NONE", params: new Uint8Array(0), length: 0 });
          continue;
        }
        const coded = code(part, inner);
        groups.push({
          codec: coded.codec,
          params: coded.header.subarray(CHUNK_HEADER_SIZE),
          length: coded.payload.length,
        });
        payloads.push(Buffer.from(coded.payload));
      }
      const params = encodeDeltaParams(
        {
          mode,
          baseSha256: job.baseSha256,
          baseOffset: job.baseOffset,
          inner: "NONE",
          innerParams: new Uint8Array(0),
        },
        encodeGroups(mode, map, groups),
      );
      const payload = Buffer.concat(payloads);
      if (params.length > MAX_PARAMS || params.length + payload.length >= raw.length) return undefined;
      return deltaRecord(params, payload, plain);
    },
  };
}
