import { MmhError } from "../common/errors.ts";
import type { RandomAccessSource } from "../common/source.ts";
import type { StoredTensor } from "../container/metadata.ts";
import { segmentRaw } from "../formats/detect.ts";
import { recognise } from "../formats/index.ts";
import type { Recognised } from "../formats/types.ts";
import type { SourceLayout } from "./encoder.ts";
import { type JoinOptions, joinSmallChunks } from "./join.ts";
import type { ResolvedCompressOptions } from "./options.ts";
import { planChunks } from "./plan.ts";
import { repeatedSmallTensors } from "./tied.ts";

/** Whether the chosen codec uses dtypes, so that segmenting unknown files can pay. */
export function usesDtypes(options: ResolvedCompressOptions): boolean {
  return options.codec === "auto" || options.codec.id === "HIER";
}

/**
 * Whether small neighbouring chunks are tried joined (join.ts): auto at the ratio goal,
 * without a base (whose deltas are planned on the tensors' own chunks).
 */
export function joinsFor(options: ResolvedCompressOptions): JoinOptions | undefined {
  if (options.codec !== "auto" || options.goal !== "ratio" || options.base !== undefined) return undefined;
  return { goal: options.goal, level: options.level };
}

export type { StoredTensor } from "../container/metadata.ts";

/**
 * The most JSON a tensor table may take in the footer (whose limit, MAX_FOOTER_METADATA, is
 * 64 MiB): a file with more tensors than that (millions of tiny ones) is still compressed,
 * with its table left out and counted, rather than refused.
 */
export const MAX_TENSOR_TABLE_JSON = 32 << 20;

/** The footer's `tensors` and, when the table is over MAX_TENSOR_TABLE_JSON, `tensorsOmitted` instead. */
export function tensorTable(tensors: StoredTensor[]): { tensors: StoredTensor[]; tensorsOmitted?: number } {
  let size = 0;
  for (const t of tensors) {
    // An upper bound on each entry's JSON: keys and numbers, and strings at the 6 characters
    // JSON.stringify writes for a control character (\u0000).
    size += 96 + 6 * (t.name.length + t.dtype.length + (t.file?.length ?? 0)) + 21 * t.shape.length;
    if (size > MAX_TENSOR_TABLE_JSON) return { tensors: [], tensorsOmitted: tensors.length };
  }
  return { tensors };
}

/**
 * Recognise the source's format and plan its chunks. A file that looks like a format but
 * does not parse is compressed as raw bytes (compression never depends on a parser), and
 * the reason is kept in the footer so `info` can show it.
 */
export async function describeSource(
  source: RandomAccessSource,
  chunkSize: number,
  enabled = true,
  /** Look for arrays inside unknown files: only worth it for codecs that use the dtype. */
  segment = true,
  /** Give small tensors stored twice chunks of their own, so deduplication finds them. */
  dedup = false,
  /** Join small neighbouring chunks where that codes smaller (joinsFor). */
  join?: JoinOptions,
): Promise<SourceLayout & { recognised: Recognised; problem?: string }> {
  let recognised: Recognised = {
    format: "raw",
    regions:
      source.size > 0 ? [{ name: "raw", offset: 0, length: source.size, dtype: null, kind: "raw" }] : [],
    tensors: [],
  };
  let problem: string | undefined;
  if (enabled) {
    try {
      recognised = await recognise(source);
    } catch (error) {
      if (!(error instanceof MmhError) || error.code === "E_IO" || error.code === "E_ABORTED") throw error;
      problem = `${error.code}: ${error.message}`;
    }
  }
  // Unknown files: find the arrays inside them, so chunks start on element boundaries.
  let regions = recognised.regions;
  if (enabled && segment && recognised.format === "raw") {
    regions = [];
    for (const region of recognised.regions) regions.push(...(await segmentRaw(source, region)));
  }
  const tensors: StoredTensor[] = recognised.tensors.map(({ name, dtype, shape, offset, length }) => ({
    name,
    dtype,
    shape,
    offset,
    length,
  }));
  const footer: Record<string, unknown> = { format: recognised.format, ...tensorTable(tensors) };
  if (recognised.metadata) footer.sourceMetadata = recognised.metadata;
  if (problem) footer.recogniseProblem = problem;
  const singles = new Set<number>();
  let plan = planChunks(
    regions,
    chunkSize,
    dedup ? await repeatedSmallTensors(source, regions, chunkSize) : undefined,
    singles,
  );
  if (join) plan = await joinSmallChunks(source, plan, chunkSize, join, singles);
  return {
    format: recognised.format,
    plan,
    footer,
    // The tensor table is complete: the encoder may pack it before coding the chunks.
    footerReady: true,
    recognised,
    ...(problem ? { problem } : {}),
  };
}
