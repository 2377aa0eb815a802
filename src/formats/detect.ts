/**
 * Arrays inside files no recogniser knows (ONNX, TFLite, tfjs shards, raw dumps): the
 * bytes are looked at in windows, each window's element layout and alignment detected on
 * a sample, and neighbouring windows that agree joined into regions whose starts fall on
 * element boundaries. Chunks are then cut at those boundaries, as for named tensors, so
 * a chunk of floats that start at an odd offset is coded as floats from its first byte.
 */
import { type Detection, detectLayout, estimateLayout } from "../codecs/hier/hier.ts";
import { LAYOUTS, type Layout } from "../codecs/hier/layouts.ts";
import type { DTypeName, Region } from "../common/dtype.ts";
import type { RandomAccessSource } from "../common/source.ts";
import { recordWidth } from "../engine/records.ts";

/** Bytes per detection window, and bytes sampled from the middle of each. */
export const WINDOW = 256 << 10;
const SAMPLE = 4 << 10;
/** A window joins the current region unless its own best layout codes at least this much (bits per bit) better. */
const SWITCH_MARGIN = 0.002;
/** ... and to switch to another layout, at least this much. */
const LAYOUT_MARGIN = 0.02;
/** Raw regions smaller than this are left as they are. */
export const MIN_SEGMENTED = 1 << 20;

/** The dtype whose HIER layout is the detected one (null: let HIER decide per chunk). */
const DTYPE_OF_LAYOUT: Record<string, DTypeName | null> = {
  bytes: null,
  bf16: "BF16",
  f16: null,
  f32: "F32",
  planes2: "I16",
  planes4: "I32",
  planes8: "I64",
};

/** A sample detected as layout 0, bytes. */
function asBytes(sample: Uint8Array): Detection {
  return { layout: LAYOUTS[0], head: 0, estimate: estimateLayout(sample, LAYOUTS[0], 0) };
}

interface Segment {
  start: number;
  layout: Layout;
  /** Element phase: elements start at offsets = phase (mod width). */
  phase: number;
}

/**
 * Split a raw region into detected regions. Reads one 4 KiB sample per 256 KiB window
 * (under 2% of the bytes), so it stays cheap on files larger than memory.
 */
export async function segmentRaw(source: RandomAccessSource, region: Region): Promise<Region[]> {
  if (region.length < MIN_SEGMENTED) return [region];
  const end = region.offset + region.length;
  const segments: Segment[] = [];
  for (let at = region.offset; at < end; at += WINDOW) {
    const windowEnd = Math.min(end, at + WINDOW);
    // Samples start at a multiple of 8 in the file, so a detected head is an absolute phase.
    let sampleStart = at + Math.max(0, Math.floor((windowEnd - at - SAMPLE) / 2));
    sampleStart -= sampleStart % 8;
    if (sampleStart < at) sampleStart += 8;
    const length = Math.min(SAMPLE, windowEnd - sampleStart);
    if (length < 256) continue;
    const sample = await source.read(sampleStart, length);
    // Records of W bytes (src/engine/records.ts) are no dtype's elements: left as bytes,
    // for auto to split them by W.
    const found = recordWidth(sample) === undefined ? detectLayout(sample, SAMPLE) : asBytes(sample);
    const current = segments.at(-1);
    if (current) {
      const head = current.phase % current.layout.width;
      // A new alignment of the same layout is taken on a small gain (a misaligned float
      // array costs under 1%); a different layout needs a clear one, or noise would cut
      // text into many small regions.
      const margin = current.layout === found.layout ? SWITCH_MARGIN : LAYOUT_MARGIN;
      if (estimateLayout(sample, current.layout, head) <= found.estimate + margin) continue;
      if (current.layout === found.layout && head === found.head) continue;
    }
    segments.push({ start: at, layout: found.layout, phase: found.head });
  }
  if (segments.length <= 1 && (segments[0]?.layout.width ?? 1) === 1) return [region];
  const regions: Region[] = [];
  let cursor = region.offset;
  for (const [i, segment] of segments.entries()) {
    const w = segment.layout.width;
    // The first whole element at or after the segment's start.
    const first = Math.min(end, segment.start + ((((segment.phase - segment.start) % w) + w) % w));
    const next = segments[i + 1];
    const stop = next
      ? Math.min(
          end,
          next.start +
            ((((next.phase - next.start) % next.layout.width) + next.layout.width) % next.layout.width),
        )
      : end;
    if (first > cursor) {
      // The few bytes before the first whole element end the previous region (HIER codes
      // them as its tail) rather than forming a chunk of their own.
      const previous = regions.at(-1);
      if (previous) previous.length += first - cursor;
      else
        regions.push({
          name: `${region.name} @${cursor}`,
          offset: cursor,
          length: first - cursor,
          dtype: null,
          kind: "raw",
        });
    }
    if (stop > first) {
      const dtype = DTYPE_OF_LAYOUT[segment.layout.name] ?? null;
      regions.push({
        name: `${region.name} @${first}`,
        offset: first,
        length: stop - first,
        dtype,
        kind: "raw",
        note: `detected ${segment.layout.name}`,
      });
    }
    cursor = Math.max(cursor, stop);
  }
  if (cursor < end)
    regions.push({
      name: `${region.name} @${cursor}`,
      offset: cursor,
      length: end - cursor,
      dtype: null,
      kind: "raw",
    });
  return regions;
}
