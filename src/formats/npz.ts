/**
 * NumPy .npz: a zip of .npy members. np.savez stores them (method 0), so each member's
 * npy header and array data sit at known file offsets; np.savez_compressed deflates them,
 * and a deflated member is one raw region with note "deflated". Zip structures (local
 * headers, central directory) are raw.
 */

import type { Region } from "../common/dtype.ts";
import { check } from "../common/errors.ts";
import type { RandomAccessSource } from "../common/source.ts";
import { npyRegions, readNpyLayout } from "./npy.ts";
import { maxHeaderBytes, rawRegion, tileRegions } from "./regions.ts";
import type { Recognised, RecogniseOptions, TensorEntry } from "./types.ts";
import type { ZipMember } from "./zip.ts";

/** Is this member list an npz? (At least one member, every file member a .npy.) */
export function isNpz(members: readonly ZipMember[]): boolean {
  const files = members.filter((m) => !m.name.endsWith("/"));
  return files.length > 0 && files.every((m) => m.name.endsWith(".npy"));
}

export async function recogniseNpz(
  source: RandomAccessSource,
  members: readonly ZipMember[],
  options?: RecogniseOptions,
): Promise<Recognised> {
  const cap = maxHeaderBytes(options);
  const regions: Region[] = [];
  const tensors: TensorEntry[] = [];
  let stored = 0;
  let deflated = 0;
  for (const m of members) {
    if (m.name.endsWith("/")) continue;
    const name = m.name.slice(0, -".npy".length);
    // The local header, name and extra field are zip structure; they are left as gaps.
    const end = m.dataOffset + m.compressedSize;
    if (m.method === 0 && !m.encrypted) {
      check(
        m.compressedSize === m.uncompressedSize,
        "E_CORRUPT",
        `npz: stored member ${m.name} has different compressed and uncompressed sizes`,
      );
      const layout = await readNpyLayout(source, m.dataOffset, m.compressedSize, cap, `npz member ${m.name}`);
      const placed = npyRegions(layout, m.dataOffset, end, name);
      regions.push(...placed.regions);
      tensors.push(placed.tensor);
      const dataEnd = placed.tensor.offset + placed.tensor.length;
      if (dataEnd < end) regions.push(rawRegion(`${name} trailing bytes`, dataEnd, end - dataEnd));
      stored++;
    } else {
      const note = m.encrypted ? "encrypted" : m.method === 8 ? "deflated" : `zip method ${m.method}`;
      regions.push(rawRegion(m.name, m.dataOffset, m.compressedSize, note));
      deflated++;
    }
  }
  return {
    format: "npz",
    regions: tileRegions(regions, source.size, "zip structure"),
    tensors,
    metadata: { members: members.length, stored, compressed: deflated },
  };
}
