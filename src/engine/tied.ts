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

/**
 * The indices of tensor regions shorter than a chunk whose length, dtype and CRC-32 equal
 * another's. Cheap for files without such repeats: tensors whose length and dtype repeat
 * are first told apart by the CRC-32 of their first and last 64 bytes, and only those that
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
  const alone = new Set<number>();
  for (const list of byLength.values()) {
    if (list.length < 2) continue;
    for (const shape of groupsOf(list, (i) => regions[i].dtype)) {
      const ends = await keysOf(shape, (i) => edges(source, regions[i]));
      for (const candidates of groupsOf(shape, ends)) {
        const crcs = await keysOf(candidates, (i) => whole(source, regions[i]));
        for (const same of groupsOf(candidates, crcs)) for (const i of same) alone.add(i);
      }
    }
  }
  return alone;
}

/** The CRC-32 of a region's first EDGE bytes, continued over its last EDGE bytes. */
async function edges(source: RandomAccessSource, r: Region): Promise<number> {
  const head = crc32(await source.read(r.offset, EDGE));
  return crc32(await source.read(r.offset + r.length - EDGE, EDGE), head);
}

async function whole(source: RandomAccessSource, r: Region): Promise<number> {
  return crc32(await source.read(r.offset, r.length));
}

/** Each index's key, read one after another (a file source reads each range in turn). */
async function keysOf(list: readonly number[], key: (i: number) => Promise<number>) {
  const keys = new Map<number, number>();
  for (const i of list) keys.set(i, await key(i));
  return (i: number) => keys.get(i);
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
