/**
 * Small tensors stored twice (tied embeddings, repeated initialisers) that the planner
 * would pack together with their neighbours, where a DUPE record (FORMAT.md §6.3), which
 * stands for a whole chunk, cannot catch them. Found by length and CRC-32 before the
 * plan is made, so that each copy gets a chunk of its own and the later ones become
 * references.
 */
import { crc32 } from "../common/crc.ts";
import type { Region } from "../common/dtype.ts";
import type { RandomAccessSource } from "../common/source.ts";

/** Smaller tensors stay packed: a chunk of their own costs more than a reference saves. */
export const MIN_ALONE = 4 << 10;

/** Bytes read from each end of a tensor for its first, cheap fingerprint. */
const EDGE = 64;
/** The fingerprint's starting value (any will do; not zero, so zero bytes mix in). */
const EDGE_SEED = 0x2f6b_1d35;

/**
 * Byte ranges to read that lie at most this far apart are read as one: so one tensor's
 * last bytes and the next one's first, and tensors side by side read whole, take one read
 * (from a file, each read goes through libuv's thread pool), while the bytes read stay
 * about those asked for: reading through gaps of 128 KiB (3 MB read, in 1 MiB buffers, for
 * the 18 KB of ends of one adapter) doubled the collector's time in compressFile()
 * (docs/ENGINE.md, References and deltas).
 */
const READ_THROUGH = 4 << 10;
/** The longest read made of several ranges. */
const MAX_READ = 1 << 20;

/**
 * The indices of tensor regions shorter than a chunk whose length, dtype and CRC-32 equal
 * another's. Cheap for files without such repeats: tensors whose length and dtype repeat
 * are first told apart by a hash of their first and last 64 bytes, and only those that
 * still match another are read whole for their CRC-32. Equal CRCs are enough here, since
 * the deduplicator compares every byte before it writes a reference; tensors equal at
 * both ends always share the first fingerprint, so no copy is missed for it.
 */
export async function repeatedSmallTensors(
  source: RandomAccessSource,
  regions: readonly Region[],
  chunkSize: number,
): Promise<Set<number>> {
  // By length first (a number, no key to build per tensor), then by dtype within a length.
  const byLength = new Map<number, number[]>();
  for (const [i, r] of regions.entries()) {
    if (r.kind !== "tensor" || r.length < MIN_ALONE || r.length >= chunkSize) continue;
    const list = byLength.get(r.length);
    if (list) list.push(i);
    else byLength.set(r.length, [i]);
  }
  const shapes: number[][] = [];
  for (const list of byLength.values())
    if (list.length > 1) shapes.push(...groupsOf(list, (i) => regions[i].dtype));
  const alone = new Set<number>();
  if (shapes.length === 0) return alone;
  // Every candidate's two ends, read together (a tensor's head lies before its tail, so
  // its head's hash is known when its tail comes), hashed where they lie in the read.
  const candidates = shapes.flat();
  const ends: Range[] = [];
  for (const i of candidates) {
    const r = regions[i];
    ends.push({ offset: r.offset, length: EDGE }, { offset: r.offset + r.length - EDGE, length: EDGE });
  }
  const heads = new Int32Array(candidates.length);
  const fingerprints = new Map<number, number>();
  await eachRange(source, ends, (k, bytes, at) => {
    if ((k & 1) === 0) heads[k >> 1] = edgeHash(bytes, at, EDGE_SEED);
    else fingerprints.set(candidates[k >> 1], edgeHash(bytes, at, heads[k >> 1]));
  });
  const alike = shapes.flatMap((shape) => groupsOf(shape, (i) => fingerprints.get(i)));
  if (alike.length === 0) return alone;
  // Those whose ends match another's, read whole: each CRC-32 is taken as its bytes come,
  // so no more than one read (MAX_READ, or one tensor) is held however many there are.
  const suspects = alike.flat();
  const crcs = new Map<number, number>();
  await eachRange(
    source,
    suspects.map((i) => ({ offset: regions[i].offset, length: regions[i].length })),
    (k, bytes, at) => {
      crcs.set(suspects[k], crc32(bytes.subarray(at, at + regions[suspects[k]].length)));
    },
  );
  for (const group of alike)
    for (const same of groupsOf(group, (i) => crcs.get(i))) for (const i of same) alone.add(i);
  return alone;
}

interface Range {
  offset: number;
  length: number;
}

/**
 * `visit(k, bytes, at)` for each range k, in the order of their offsets, its bytes lying
 * in `bytes` from `at` on: ranges that lie within READ_THROUGH of each other are read as
 * one (at most MAX_READ long, or one range however long), so a file source makes one read
 * where it would make many. The bytes are valid during the call only.
 */
async function eachRange(
  source: RandomAccessSource,
  ranges: readonly Range[],
  visit: (k: number, bytes: Uint8Array, at: number) => void,
): Promise<void> {
  const order = ranges.map((_, k) => k).sort((a, b) => ranges[a].offset - ranges[b].offset);
  for (let k = 0; k < order.length; ) {
    const start = ranges[order[k]].offset;
    let end = start + ranges[order[k]].length;
    let next = k + 1;
    for (; next < order.length; next++) {
      const r = ranges[order[next]];
      const to = Math.max(end, r.offset + r.length);
      if (r.offset - end > READ_THROUGH || to - start > MAX_READ) break;
      end = to;
    }
    const bytes = await source.read(start, end - start);
    for (let j = k; j < next; j++) visit(order[j], bytes, ranges[order[j]].offset - start);
    k = next;
  }
}

/** The groups of two or more indices of `list` with equal keys, in the order of their first index. */
function groupsOf<K>(list: readonly number[], key: (i: number) => K): number[][] {
  const groups = new Map<K, number[]>();
  for (const i of list) {
    const k = key(i);
    const same = groups.get(k);
    if (same) same.push(i);
    else groups.set(k, [i]);
  }
  return [...groups.values()].filter((g) => g.length > 1);
}

/**
 * A 32-bit hash of the EDGE bytes of `bytes` from `at` on, continuing from `h`: the first
 * fingerprint of a tensor's ends. Computed here over the read in place: a CRC-32 of each
 * end through node:zlib took a view and a native call per end, most of the planner's time
 * on a file of many small tensors in memory (docs/ENGINE.md, References and deltas). Equal
 * ends always hash alike; unequal ends that collide only cost a tensor read whole.
 */
function edgeHash(bytes: Uint8Array, at: number, h: number): number {
  for (let i = at; i < at + EDGE; i += 4) {
    const w = bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
    h = Math.imul(h ^ w, 0x9e3779b1);
    h ^= h >>> 15;
  }
  return h;
}
