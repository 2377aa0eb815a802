import { asBuffer } from "../common/bytes.ts";
import { cutUnit, type DTypeName, type Region } from "../common/dtype.ts";
import { MmhError } from "../common/errors.ts";

/** One chunk to be: its length and the dtype of every byte in it (null when unknown). */
export interface ChunkSpec {
  length: number;
  dtype: DTypeName | null;
}

export interface PlannedChunk {
  data: Uint8Array;
  dtype: DTypeName | null;
}

/**
 * Cut regions into chunks: a large tensor is cut at its own boundaries into pieces of
 * the chunk size (a multiple of 8 bytes, or of its quantisation block, so elements of
 * every width stay whole), and
 * small neighbouring regions of one dtype share a chunk, except those in `alone`. No chunk
 * mixes dtypes.
 */
export function planChunks(
  regions: readonly Region[],
  chunkSize: number,
  /** Regions (by index) that get chunks of their own, shared with no other region. */
  alone: ReadonlySet<number> = new Set(),
  /** Filled, when given, with the plan indices of the chunks of `alone` regions. */
  singles?: Set<number>,
): ChunkSpec[] {
  const plan: ChunkSpec[] = [];
  let open: ChunkSpec | undefined;
  for (const [i, region] of regions.entries()) {
    let left = region.length;
    const dtype = region.dtype;
    // A multiple of 8 bytes, or of a quantisation block (and 8), so no element is cut.
    const unit = cutUnit(dtype);
    const piece = Math.max(unit, chunkSize - (chunkSize % unit));
    const single = alone.has(i);
    if (single) open = undefined;
    if (!single && open && open.dtype === dtype && open.length + left <= piece) {
      open.length += left;
      continue;
    }
    while (left > 0) {
      const length = Math.min(piece, left);
      open = { length, dtype };
      if (single) singles?.add(plan.length);
      plan.push(open);
      left -= length;
    }
    if (single) open = undefined;
  }
  return plan;
}

/** Cut a byte stream by a plan; bytes past the plan's end are cut into chunks of `chunkSize` with no dtype. */
export async function* plannedChunks(
  source: AsyncIterable<Uint8Array>,
  plan: readonly ChunkSpec[],
  chunkSize: number,
): AsyncGenerator<PlannedChunk> {
  let index = 0;
  let pending: Buffer | undefined;
  let filled = 0;
  const want = () => plan[index]?.length ?? chunkSize;
  const dtype = () => plan[index]?.dtype ?? null;
  for await (const piece of source) {
    let bytes = asBuffer(piece);
    while (bytes.length > 0) {
      const size = want();
      if (filled === 0 && bytes.length >= size) {
        yield { data: bytes.subarray(0, size), dtype: dtype() };
        index++;
        bytes = bytes.subarray(size);
        continue;
      }
      pending ??= Buffer.allocUnsafe(size);
      const take = Math.min(size - filled, bytes.length);
      bytes.copy(pending, filled, 0, take);
      filled += take;
      bytes = bytes.subarray(take);
      if (filled === size) {
        yield { data: pending, dtype: dtype() };
        index++;
        pending = undefined;
        filled = 0;
      }
    }
  }
  if (pending && filled > 0) {
    if (index < plan.length)
      throw new MmhError(
        "E_TRUNCATED",
        "the input ended before the size it had when it was read (was it changed?)",
      );
    yield { data: pending.subarray(0, filled), dtype: null };
    index++;
  }
  if (index < plan.length)
    throw new MmhError(
      "E_TRUNCATED",
      "the input ended before the size it had when it was read (was it changed?)",
    );
}
