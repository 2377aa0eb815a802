/**
 * Joining small chunks at the ratio goal. A model of many small tensors (a mobile conv
 * net: biases, depthwise kernels, the format's own bytes between them) is planned as
 * dozens of chunks of a few KiB, and each pays a record header, an index entry and its
 * codec's own tables and frame: together several percent of the output, where one zstd
 * frame over the whole file pays them once. Here runs of neighbouring small chunks are
 * coded both ways, apart and joined into one chunk (labelled with the dtype that holds
 * most of their bytes), and the smaller plan is kept. Random access is unchanged: the
 * tensor table still gives each tensor's content range, and a reader decodes the chunk
 * that holds it, which is never longer than the chunk size.
 */
import type { DTypeName } from "../common/dtype.ts";
import type { RandomAccessSource } from "../common/source.ts";
import { INDEX_ENTRY_SIZE } from "../container/format.ts";
import { type AutoStats, chooseCodecs, encodeChoices, type Goal } from "./auto.ts";
import type { ChunkSpec } from "./plan.ts";

/** Chunks shorter than this may be joined with their neighbours. */
export const SMALL_CHUNK = 64 << 10;

/** What joining needs to know of the options: the goal's codec choice. */
export interface JoinOptions {
  goal: Goal;
  level: number | undefined;
}

/** Bytes a chunk costs in the container as auto codes it: its record and its index entry. */
export function storedCost(raw: Uint8Array, dtype: DTypeName | null, options: JoinOptions): number {
  // A fresh AutoStats: the ratio goal decides every chunk on its own bytes (no reuse).
  const stats: AutoStats = { choiceMs: 0 };
  const { chunk } = encodeChoices(raw, dtype, chooseCodecs(raw, dtype, options.goal, options.level, stats));
  return chunk.header.length + chunk.payload.length + INDEX_ENTRY_SIZE;
}

/** The dtype of most of the bytes of `specs` (null when unknown bytes are most). */
function mainDType(specs: readonly ChunkSpec[]): DTypeName | null {
  const bytes = new Map<DTypeName | null, number>();
  for (const s of specs) bytes.set(s.dtype, (bytes.get(s.dtype) ?? 0) + s.length);
  let best: DTypeName | null = null;
  let most = -1;
  for (const [dtype, n] of bytes)
    if (n > most) {
      best = dtype;
      most = n;
    }
  return best;
}

/**
 * The plan with runs of neighbouring small chunks joined where that codes smaller. A run
 * is cut where a chunk is not small, is in `keep` (by plan index: chunks kept apart so
 * deduplication can find them), or would take the run past `chunkSize`. Each run is
 * coded joined; when that is not smaller than its chunks coded apart, its two halves are
 * tried in the same way, down to single chunks. The result never codes larger than the
 * plan it was given (chunk by chunk, as auto codes them).
 */
export async function joinSmallChunks(
  source: RandomAccessSource,
  plan: readonly ChunkSpec[],
  chunkSize: number,
  options: JoinOptions,
  keep: ReadonlySet<number> = new Set(),
): Promise<ChunkSpec[]> {
  const out: ChunkSpec[] = [];
  let offset = 0;
  let i = 0;
  while (i < plan.length) {
    const small = (k: number) => plan[k].length < SMALL_CHUNK && !keep.has(k);
    if (!small(i)) {
      out.push(plan[i]);
      offset += plan[i].length;
      i++;
      continue;
    }
    let j = i;
    let length = 0;
    while (j < plan.length && small(j) && length + plan[j].length <= chunkSize) length += plan[j++].length;
    const run = plan.slice(i, j);
    if (run.length === 1) out.push(run[0]);
    else out.push(...joinRun(await source.read(offset, length), run, options));
    offset += length;
    i = j;
  }
  return out;
}

/**
 * The goal whose coding screens a join before it is tried at the ratio goal: coding at the
 * ratio goal costs many times more, and a joined chunk more than its chunks apart (it is
 * past auto's small-chunk path), so a join that the fast coding does not make smaller is
 * not tried (docs/ENGINE.md, Chunk size and planning).
 */
const SCREEN: JoinOptions = { goal: "speed", level: undefined };

/**
 * The plan kept for one run of small chunks whose bytes are `bytes` (see joinSmallChunks).
 * The run is cut into segments of one dtype, a chunk of unknown bytes shorter than the
 * tensor chunk before it (the format's own bytes between two tensors) counting as that
 * chunk's. Each segment is joined when that codes smaller than its chunks apart; the
 * whole run is joined when it has several segments (small tensors of several dtypes) and
 * that codes smaller than the segments. Each join is screened first (SCREEN) and tried
 * at the ratio goal only when the screen's coding makes it no larger.
 */
function joinRun(bytes: Uint8Array, run: readonly ChunkSpec[], options: JoinOptions): ChunkSpec[] {
  const starts: number[] = [];
  let at = 0;
  for (const s of run) {
    starts.push(at);
    at += s.length;
  }
  starts.push(at);
  const cost = (from: number, to: number, dtype: DTypeName | null, how: JoinOptions) =>
    storedCost(bytes.subarray(starts[from], starts[to]), dtype, how);
  const screened = run.map((s, k) => cost(k, k + 1, s.dtype, SCREEN));
  // The ratio goal's cost of each chunk apart, coded when first needed.
  const alone: number[] = [];
  const aloneCost = (k: number) => {
    alone[k] ??= cost(k, k + 1, run[k].dtype, options);
    return alone[k];
  };
  const sum = (from: number, to: number, each: (k: number) => number) => {
    let total = 0;
    for (let k = from; k < to; k++) total += each(k);
    return total;
  };
  // Unknown bytes after a tensor's chunk (padding, the next buffer's length) count as that
  // tensor's when they are fewer than its bytes: at the chunk's end they shift no element.
  const label = run.map((s, k) => {
    const before = run[k - 1];
    return s.dtype === null && before !== undefined && before.dtype !== null && s.length < before.length
      ? before.dtype
      : s.dtype;
  });
  interface Part {
    from: number;
    to: number;
    /** Set when the part is one joined chunk, with its cost at each goal. */
    joined?: { dtype: DTypeName | null; screened: number; cost: number };
  }
  const parts: Part[] = [];
  for (let from = 0; from < run.length; ) {
    let to = from + 1;
    while (to < run.length && label[to] === label[from]) to++;
    const part: Part = { from, to };
    if (to - from > 1) {
      const dtype = mainDType(run.slice(from, to));
      const screen = cost(from, to, dtype, SCREEN);
      if (screen <= sum(from, to, (k) => screened[k])) {
        const joined = cost(from, to, dtype, options);
        if (joined < sum(from, to, aloneCost)) part.joined = { dtype, screened: screen, cost: joined };
      }
    }
    parts.push(part);
    from = to;
  }
  const partCost = (part: Part, how: "screened" | "cost") =>
    part.joined
      ? part.joined[how]
      : sum(part.from, part.to, how === "screened" ? (k) => screened[k] : aloneCost);
  if (parts.length > 1) {
    const dtype = mainDType(run);
    const screen = cost(0, run.length, dtype, SCREEN);
    if (screen <= parts.reduce((total, p) => total + partCost(p, "screened"), 0)) {
      const joined = cost(0, run.length, dtype, options);
      if (joined < parts.reduce((total, p) => total + partCost(p, "cost"), 0))
        return [{ length: bytes.length, dtype }];
    }
  }
  return parts.flatMap((p) =>
    p.joined ? [{ length: starts[p.to] - starts[p.from], dtype: p.joined.dtype }] : run.slice(p.from, p.to),
  );
}
