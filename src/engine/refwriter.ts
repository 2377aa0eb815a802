/**
 * The writer's side of DUPE and DLTA records (docs/FORMAT.md §6.3, §6.4): finding chunks
 * that repeat earlier ones, and coding tensors as differences from a base model.
 */
import { crc32 } from "node:zlib";
import { findPeriod } from "../codecs/p251.ts";
import { type DTypeName, dtypeByName } from "../common/dtype.ts";
import { fileSource } from "../common/source.ts";
import { CHUNK_HEADER_SIZE, encodeChunkHeader, MAX_CHUNK_SIZE, MAX_PARAMS } from "../container/format.ts";
import type { StoredTensor } from "../container/metadata.ts";
import { type AutoStats, type Choice, chooseCodecs, encodeChoices, type Goal } from "./auto.ts";
import type { EncodedChunk } from "./chunk.ts";
import { describeSource } from "./describe.ts";
import { encodeGroups, groupedModeFor, groupedWidth, planGroups, splitGroups } from "./grouped.ts";
import { encodeBlocks, fitLowRank, lowRankModeFor, lowRankWidth, type Piece } from "./lowrank.ts";
import {
  BaseSet,
  baseFiles,
  DELTA_CODEC,
  DELTA_XOR,
  DELTA_ZIGZAG16,
  DELTA_ZIGZAG32,
  DUPE_CODEC,
  DUPE_PARAMS,
  encodeDeltaParams,
  encodeDupeParams,
  makeDelta,
  sha256OfFile,
} from "./refs.ts";

/** Reads `length` bytes of the content from `offset` again (a file, a folder, bytes in memory). */
export type Reread = (offset: number, length: number) => Promise<Uint8Array>;

/** Earlier chunks compared against one new chunk at most: a bound on the work a CRC collision can cause. */
const MAX_CANDIDATES = 4;

/** Finds chunks whose bytes equal an earlier chunk's. */
export class Deduper {
  readonly #reread: Reread;
  /** Raw length and CRC-32 -> earlier chunks (number and content offset) with them. */
  readonly #seen = new Map<string, { chunk: number; rawOffset: number }[]>();
  /** Chunks compared byte for byte, and references made. */
  compared = 0;
  found = 0;

  constructor(reread: Reread) {
    this.#reread = reread;
  }

  /**
   * The DUPE record for chunk `self` (at content offset `rawOffset`) when an earlier chunk
   * has the same bytes; otherwise undefined, and the chunk becomes a candidate itself.
   * Candidates are found by length and CRC-32 (computed for every chunk anyway), and every
   * byte of both is read again and compared: no checksum is trusted alone.
   */
  async reference(chunk: EncodedChunk, self: number, rawOffset: number): Promise<EncodedChunk | undefined> {
    if (chunk.codec === DUPE_CODEC) return undefined;
    if (chunk.rawLength > MAX_CHUNK_SIZE) return undefined;
    // Only where a reference is smaller than the record it replaces.
    if (chunk.header.length - CHUNK_HEADER_SIZE + chunk.payload.length <= DUPE_PARAMS) return undefined;
    const key = `${chunk.rawLength}:${chunk.rawCrc}`;
    const earlier = this.#seen.get(key);
    if (earlier) {
      let mine: Uint8Array | undefined;
      for (const candidate of earlier) {
        this.compared++;
        mine ??= await this.#reread(rawOffset, chunk.rawLength);
        // The source may have changed since it was read: then no reference.
        if (crc32(mine) !== chunk.rawCrc) return undefined;
        const theirs = await this.#reread(candidate.rawOffset, chunk.rawLength);
        if (Buffer.from(theirs.buffer, theirs.byteOffset, theirs.length).equals(mine)) {
          this.found++;
          return dupeRecord(candidate.chunk, chunk);
        }
      }
      if (earlier.length < MAX_CANDIDATES) earlier.push({ chunk: self, rawOffset });
      return undefined;
    }
    this.#seen.set(key, [{ chunk: self, rawOffset }]);
    return undefined;
  }
}

function dupeRecord(target: number, chunk: EncodedChunk): EncodedChunk {
  const params = encodeDupeParams(target);
  return {
    header: encodeChunkHeader(DUPE_CODEC, params, chunk.rawLength, chunk.rawCrc, 0),
    payload: new Uint8Array(0),
    codec: DUPE_CODEC,
    rawLength: chunk.rawLength,
    rawCrc: chunk.rawCrc,
    owned: false,
  };
}

/** A DLTA record of `params` and `payload` for the chunk `plain` codes on its own. */
function deltaRecord(params: Uint8Array, payload: Uint8Array, plain: EncodedChunk): EncodedChunk {
  return {
    header: encodeChunkHeader(DELTA_CODEC, params, plain.rawLength, plain.rawCrc, payload.length),
    payload,
    codec: DELTA_CODEC,
    rawLength: plain.rawLength,
    rawCrc: plain.rawCrc,
    owned: false,
  };
}

// ---- deltas -----------------------------------------------------------------------------------

/** A run of content bytes that maps onto a base file's bytes at a fixed shift. */
interface Segment {
  start: number;
  end: number;
  /** Base offset minus content offset. */
  shift: number;
  sha256: string;
  dtype: string;
  /** Bytes of one row (the first dimension's step) of a tensor of two or more dimensions; 0 otherwise. */
  rowBytes: number;
}

/** The base tensors a source's tensors are coded against, and how to code a chunk as a delta. */
export class DeltaPlan {
  readonly bases: BaseSet;
  /** For the header metadata: the base files used. */
  readonly used: { name: string; sha256: string }[];
  readonly #segments: Segment[];
  readonly #stats: AutoStats[] = Array.from({ length: 11 }, () => ({ choiceMs: 0 }));
  /** Chunks coded as deltas, and content bytes they hold. */
  chunks = 0;
  bytes = 0;

  private constructor(bases: BaseSet, segments: Segment[], used: { name: string; sha256: string }[]) {
    this.bases = bases;
    this.#segments = segments;
    this.used = used;
  }

  /**
   * Match the source's tensors (content offsets) with the base's by name, dtype, shape
   * and length. The base is a file or a folder; every file of it is recognised.
   */
  static async build(base: string, tensors: readonly StoredTensor[], chunkSize: number): Promise<DeltaPlan> {
    const bases = new BaseSet(base);
    const byName = new Map<string, StoredTensor & { sha256: string }>();
    const files = await bases.files();
    const names = new Map<string, string>();
    for (const [sha256, file] of files) {
      names.set(sha256, file.name);
      const source = await fileSource(file.path);
      try {
        const layout = await describeSource(source, chunkSize, true, false);
        for (const t of (layout.footer.tensors ?? []) as StoredTensor[])
          if (!byName.has(t.name)) byName.set(t.name, { ...t, sha256 });
      } finally {
        await source.close();
      }
    }
    const segments: Segment[] = [];
    const used = new Set<string>();
    for (const t of tensors) {
      const m = byName.get(t.name);
      if (!m || t.length === 0 || m.dtype !== t.dtype || m.length !== t.length) continue;
      if (m.shape.length !== t.shape.length || m.shape.some((d, i) => d !== t.shape[i])) continue;
      const rows = t.shape[0] ?? 0;
      segments.push({
        start: t.offset,
        end: t.offset + t.length,
        shift: m.offset - t.offset,
        sha256: m.sha256,
        dtype: t.dtype,
        rowBytes: t.shape.length >= 2 && rows > 0 && t.length % rows === 0 ? t.length / rows : 0,
      });
      used.add(m.sha256);
    }
    segments.sort((a, b) => a.start - b.start);
    return new DeltaPlan(
      bases,
      segments,
      [...used].sort().map((sha256) => ({ name: names.get(sha256)!, sha256 })),
    );
  }

  /** Where the content bytes [start, start + length) lie in one base file, if they all map onto it alike. */
  target(start: number, length: number): { sha256: string; offset: number; start: number } | undefined {
    const segs = this.#segments;
    let lo = 0;
    let hi = segs.length - 1;
    let at = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (segs[mid].start <= start) {
        at = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (at < 0 || segs[at].end <= start) return undefined;
    const first = segs[at];
    let end = first.end;
    for (let k = at + 1; end < start + length; k++) {
      const next = segs[k];
      if (!next || next.start !== end || next.shift !== first.shift || next.sha256 !== first.sha256)
        return undefined;
      end = next.end;
    }
    return { sha256: first.sha256, offset: start + first.shift, start };
  }

  /**
   * The chunk [start, start + length) as pieces for a low-rank prediction: each tensor's
   * part, a matrix of whole rows where it is one; undefined unless every tensor in it has
   * the dtype and whole elements of `width` bytes.
   */
  pieces(start: number, length: number, dtype: string, width: number): Piece[] | undefined {
    const out: Piece[] = [];
    const segs = this.#segments;
    // The first segment that ends after `start` (segments are sorted and do not overlap).
    let lo = 0;
    let hi = segs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (segs[mid].end <= start) lo = mid + 1;
      else hi = mid;
    }
    // The pieces must tile the chunk exactly, one after another.
    let covered = start;
    for (let k = lo; k < segs.length && segs[k].start < start + length; k++) {
      const seg = segs[k];
      if (seg.dtype !== dtype) return undefined;
      const a = Math.max(seg.start, start);
      const b = Math.min(seg.end, start + length);
      if (a !== covered || (b - a) % width !== 0) return undefined;
      covered = b;
      const first = (a - start) / width;
      const whole = seg.rowBytes > 0 && (a - seg.start) % seg.rowBytes === 0 && (b - a) % seg.rowBytes === 0;
      if (whole && seg.rowBytes % width === 0)
        out.push({ first, rows: (b - a) / seg.rowBytes, cols: seg.rowBytes / width, matrix: true });
      else out.push({ first, rows: 1, cols: (b - a) / width, matrix: false });
    }
    return covered === start + length ? out : undefined;
  }

  /**
   * The chunk coded against its base bytes: XOR and, for 2- and 4-byte elements,
   * subtraction, each difference coded with the normal choice of codec, and the chunk
   * coded on its own; the smallest is kept.
   */
  async encode(
    raw: Uint8Array,
    dtype: DTypeName | null,
    where: { sha256: string; offset: number; start: number },
    plain: EncodedChunk,
    goal: Goal,
    level: number | undefined,
    fixed: Choice | undefined,
  ): Promise<EncodedChunk> {
    const base = await this.bases.read(where.sha256, where.offset, raw.length, "the base");
    const bits = dtype ? dtypeByName(dtype)?.bits : undefined;
    const modes = [DELTA_XOR];
    if (bits === 16 && raw.length % 2 === 0) modes.push(DELTA_ZIGZAG16);
    if (bits === 32 && raw.length % 4 === 0) modes.push(DELTA_ZIGZAG32);
    // Differences of 2- and 4-byte elements are integers, best split into byte planes.
    const inner: DTypeName | null = bits === 16 ? "U16" : bits === 32 ? "U32" : dtype;
    let best = plain;
    const size = (c: EncodedChunk) => c.header.length + c.payload.length;
    for (const mode of modes) {
      const diff = makeDelta(raw, base, mode);
      const choices = fixed
        ? [fixed]
        : chooseCodecs(diff, inner, goal, level, this.#stats[mode], findPeriod(diff));
      const { chunk: coded } = encodeChoices(diff, inner, choices);
      const params = encodeDeltaParams({
        mode,
        baseSha256: where.sha256,
        baseOffset: where.offset,
        inner: coded.codec,
        innerParams: coded.header.subarray(CHUNK_HEADER_SIZE),
      });
      if (params.length + coded.payload.length >= raw.length) continue;
      const record = deltaRecord(params, Buffer.from(coded.payload), plain);
      if (size(record) < size(best)) best = record;
    }
    const lowRank = this.#lowRank(raw, base, dtype, where, plain, goal, level, fixed);
    if (lowRank && size(lowRank) < size(best)) best = lowRank;
    const grouped = this.#grouped(raw, base, dtype, where, plain, goal, level, fixed);
    if (grouped && size(grouped) < size(best)) best = grouped;
    if (best !== plain) {
      this.chunks++;
      this.bytes += raw.length;
    }
    return best;
  }

  /** The chunk's zigzag differences grouped by the base's exponent (modes 8 to 10), each group coded on its own. */
  #grouped(
    raw: Uint8Array,
    base: Uint8Array,
    dtype: DTypeName | null,
    where: { sha256: string; offset: number },
    plain: EncodedChunk,
    goal: Goal,
    level: number | undefined,
    fixed: Choice | undefined,
  ): EncodedChunk | undefined {
    const mode = groupedModeFor(dtype);
    if (mode === undefined) return undefined;
    const width = groupedWidth(mode);
    if (raw.length % width !== 0) return undefined;
    const { map, count } = planGroups(base, mode);
    if (count < 2) return undefined;
    const diff = makeDelta(raw, base, width === 4 ? DELTA_ZIGZAG32 : DELTA_ZIGZAG16);
    const inner: DTypeName = width === 4 ? "U32" : "U16";
    const groups = [];
    const payloads: Uint8Array[] = [];
    for (const part of splitGroups(diff, base, mode, map, count)) {
      if (part.length === 0) {
        groups.push({ codec: "NONE", params: new Uint8Array(0), length: 0 });
        continue;
      }
      const choices = fixed
        ? [fixed]
        : chooseCodecs(part, inner, goal, level, this.#stats[mode], findPeriod(part));
      const { chunk: coded } = encodeChoices(part, inner, choices);
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
        baseSha256: where.sha256,
        baseOffset: where.offset,
        inner: "NONE",
        innerParams: new Uint8Array(0),
      },
      encodeGroups(mode, map, groups),
    );
    const payload = Buffer.concat(payloads);
    if (params.length > MAX_PARAMS || params.length + payload.length >= raw.length) return undefined;
    return deltaRecord(params, payload, plain);
  }

  /** The chunk as a difference from a low-rank prediction (modes 5 to 7), when one pays. */
  #lowRank(
    raw: Uint8Array,
    base: Uint8Array,
    dtype: DTypeName | null,
    where: { sha256: string; offset: number; start: number },
    plain: EncodedChunk,
    goal: Goal,
    level: number | undefined,
    fixed: Choice | undefined,
  ): EncodedChunk | undefined {
    const mode = lowRankModeFor(dtype);
    if (mode === undefined || dtype === null) return undefined;
    const width = lowRankWidth(mode);
    const pieces = this.pieces(where.start, raw.length, dtype, width);
    if (!pieces?.some((p) => p.matrix)) return undefined;
    const fit = fitLowRank(raw, base, mode, pieces);
    if (!fit) return undefined;
    const diff = makeDelta(raw, fit.prediction, width === 4 ? DELTA_ZIGZAG32 : DELTA_ZIGZAG16);
    const inner: DTypeName = width === 4 ? "U32" : "U16";
    const choices = fixed
      ? [fixed]
      : chooseCodecs(diff, inner, goal, level, this.#stats[mode], findPeriod(diff));
    const { chunk: coded } = encodeChoices(diff, inner, choices);
    const params = encodeDeltaParams(
      {
        mode,
        baseSha256: where.sha256,
        baseOffset: where.offset,
        inner: coded.codec,
        innerParams: coded.header.subarray(CHUNK_HEADER_SIZE),
      },
      encodeBlocks(fit.blocks),
    );
    const payload = Buffer.concat([fit.factors, coded.payload]);
    if (params.length > MAX_PARAMS || params.length + payload.length >= raw.length) return undefined;
    return deltaRecord(params, payload, plain);
  }
}

export { baseFiles, sha256OfFile };

/** Rereads of one file, opened on the first: for a file source's deduplication. */
export function fileReread(path: string): { read: Reread; close: () => Promise<void> } {
  let source: ReturnType<typeof fileSource> | undefined;
  return {
    read: async (offset, length) => {
      source ??= fileSource(path);
      return (await source).read(offset, length);
    },
    close: async () => {
      if (source) await (await source.catch(() => undefined))?.close();
    },
  };
}

/** Rereads of bytes held in memory. */
export function bytesReread(bytes: Uint8Array): Reread {
  return async (offset, length) => bytes.subarray(offset, offset + length);
}

/** `pieces`, then `close` however the iteration ends. */
export async function* closing<T>(pieces: AsyncIterable<T>, close: () => Promise<void>): AsyncGenerator<T> {
  try {
    yield* pieces;
  } finally {
    await close();
  }
}
