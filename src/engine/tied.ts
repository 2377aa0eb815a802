/**
 * Small tensors stored twice (tied embeddings, repeated initialisers) that the planner
 * would pack together with their neighbours, where a DUPE record (FORMAT.md §6.3), which
 * stands for a whole chunk, cannot catch them. Found by length and CRC-32 before the
 * plan is made, so that each copy gets a chunk of its own and the later ones become
 * references.
 */
import { crc32 } from "node:zlib";
import type { Region } from "../common/dtype.ts";
import type { RandomAccessSource } from "../common/source.ts";

/** Smaller tensors stay packed: a chunk of their own costs more than a reference saves. */
export const MIN_ALONE = 4 << 10;

/**
 * The indices of tensor regions shorter than a chunk whose length, dtype and CRC-32 equal
 * another's. Only tensors whose length and dtype repeat are read, once each; equal CRCs
 * are enough here, since the deduplicator compares every byte before it writes a reference.
 */
export async function repeatedSmallTensors(
  source: RandomAccessSource,
  regions: readonly Region[],
  chunkSize: number,
): Promise<Set<number>> {
  const byShape = new Map<string, number[]>();
  for (const [i, r] of regions.entries()) {
    if (r.kind !== "tensor" || r.length < MIN_ALONE || r.length >= chunkSize) continue;
    const key = `${r.length}:${r.dtype}`;
    const list = byShape.get(key);
    if (list) list.push(i);
    else byShape.set(key, [i]);
  }
  const alone = new Set<number>();
  for (const list of byShape.values()) {
    if (list.length < 2) continue;
    const byCrc = new Map<number, number[]>();
    for (const i of list) {
      const r = regions[i];
      const crc = crc32(await source.read(r.offset, r.length));
      const same = byCrc.get(crc);
      if (same) same.push(i);
      else byCrc.set(crc, [i]);
    }
    for (const same of byCrc.values()) if (same.length > 1) for (const i of same) alone.add(i);
  }
  return alone;
}
