/**
 * The writer's side of DUPE and DLTA records (docs/FORMAT.md §6.3, §6.4): finding chunks
 * that repeat earlier ones, and coding tensors as differences from a base model.
 */
import { crc32 } from "../common/crc.ts";
import type { DTypeName } from "../common/dtype.ts";
import { fileSource } from "../common/source.ts";
import { CHUNK_HEADER_SIZE, encodeChunkHeader, MAX_CHUNK_SIZE } from "../container/format.ts";
import type { StoredTensor } from "../container/metadata.ts";
import type { Choice, Goal } from "./auto.ts";
import type { EncodedChunk } from "./chunk.ts";
import type { DeltaJob } from "./deltacode.ts";
import { describeSource } from "./describe.ts";
import { lowRankModeFor, lowRankWidth, type Piece } from "./lowrank.ts";
import { BaseSet, baseFiles, DUPE_CODEC, DUPE_PARAMS, encodeDupeParams, sha256OfFile } from "./refs.ts";

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

  /** Everything but the bytes that coding the chunk [where.start, + length) against its base needs. */
  job(
    where: { sha256: string; offset: number; start: number },
    length: number,
    dtype: DTypeName | null,
    goal: Goal,
    level: number | undefined,
    fixed: Choice | undefined,
  ): DeltaJob {
    const mode = lowRankModeFor(dtype);
    const pieces =
      mode === undefined || dtype === null
        ? undefined
        : this.pieces(where.start, length, dtype, lowRankWidth(mode));
    return { dtype, baseSha256: where.sha256, baseOffset: where.offset, pieces, goal, level, fixed };
  }

  /** The base bytes a chunk of `length` bytes at `where` is coded against. */
  base(where: { sha256: string; offset: number }, length: number): Promise<Uint8Array> {
    return this.bases.read(where.sha256, where.offset, length, "the base");
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
