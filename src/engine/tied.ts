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
 * are first told apart by their first and last 64 bytes, and only those that still match
 * another are read whole for their CRC-32. Equal CRCs are enough here, since the
 * deduplicator compares every byte before it writes a reference.
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
  const groupBy = async (list: number[], key: (i: number) => Promise<string>) => {
    const groups = new Map<string, number[]>();
    for (const i of list) {
      const k = await key(i);
      const same = groups.get(k);
      if (same) same.push(i);
      else groups.set(k, [i]);
    }
    return [...groups.values()].filter((g) => g.length > 1);
  };
  const edges = async (i: number) => {
    const r = regions[i];
    const head = await source.read(r.offset, EDGE);
    const tail = await source.read(r.offset + r.length - EDGE, EDGE);
    return `${Buffer.from(head).toString("latin1")}${Buffer.from(tail).toString("latin1")}`;
  };
  const whole = async (i: number) => {
    const r = regions[i];
    return String(crc32(await source.read(r.offset, r.length)));
  };
  for (const list of byShape.values()) {
    if (list.length < 2) continue;
    for (const candidates of await groupBy(list, edges))
      for (const same of await groupBy(candidates, whole)) for (const i of same) alone.add(i);
  }
  return alone;
}
