/**
 * Runs: a pattern of up to 64 KiB repeated across many chunks is written as one P251
 * record with no tail, whatever its length (docs/FORMAT.md §6.1). The encoder checks each
 * chunk against the run so far at memory speed and keeps only the pattern, the length
 * and the CRC-32.
 */

import { continuesPeriod, encodeRun, findPeriod, type PeriodInfo } from "../codecs/p251.ts";
import { crc32 } from "../common/crc.ts";
import { encodeChunkHeader } from "../container/format.ts";
import type { EncodedChunk } from "./chunk.ts";

export interface Run {
  pattern: Uint8Array;
  length: number;
  crc: number;
}

/** A run starts with a chunk that is wholly periodic (`found`: findPeriod(raw), when already known). */
export function startRun(raw: Uint8Array, found: PeriodInfo | null = findPeriod(raw)): Run | undefined {
  if (!found || found.periodicLength !== raw.length) return undefined;
  return { pattern: Uint8Array.from(raw.subarray(0, found.period)), length: raw.length, crc: crc32(raw) };
}

/** Add the chunk to the run if all of it continues the pattern. */
export function extendRun(run: Run, raw: Uint8Array): boolean {
  if (run.length + raw.length > Number.MAX_SAFE_INTEGER) return false;
  if (continuesPeriod(run.pattern, run.length % run.pattern.length, raw) !== raw.length) return false;
  run.length += raw.length;
  run.crc = crc32(raw, run.crc);
  return true;
}

export function finishRun(run: Run): EncodedChunk {
  const { payload, params } = encodeRun(run.pattern, run.length);
  return {
    header: encodeChunkHeader("P251", params, run.length, run.crc, payload.length),
    payload,
    codec: "P251",
    rawLength: run.length,
    rawCrc: run.crc,
    owned: false,
  };
}
