/**
 * How many threads code: the default when none is given (every core, or one for an
 * input too small for a pool to pay), and the check of the `threads` option.
 */
import { availableParallelism } from "node:os";
import { MmhError } from "../common/errors.ts";

/** The default thread count: every core the process may use. */
export function defaultThreads(): number {
  return Math.max(1, Math.min(256, availableParallelism()));
}

/**
 * What a default thread count is for: the break-even differs (see POOL_WORTH_BYTES_PER_CORE).
 * decompressToFile: a .mmh file whose threads each write their own records (filedecode.ts):
 * decompressFile, and decompressFileToFd (`mmh -dc FILE`), in turn.
 */
export type Work = "compress" | "decompress" | "decompressToFile";

/**
 * Bytes of input per core below which a pool does not pay, by direction: for compressing,
 * bytes of content; for decompressing, bytes of the .mmh file. Each worker loads the codec
 * modules and compiles the hot loops again, and with one thread the content is already
 * hashed on a second core (hashesApart). The figures are where -T 2 started to beat -T 1
 * on 2 cores, on real-derived BF16 and F32 files (see docs/ENGINE.md, Measurements behind
 * engine choices: When a pool pays). With more cores the start-up runs on cores that would
 * otherwise idle, so the threshold is divided by the core count (an estimate: only 2 cores
 * were measured). Decompressing a file into a file or onto a descriptor (filedecode.ts)
 * moves no decoded byte between threads and starts its workers before reading the index,
 * so a second thread costs little more than its start-up: its threshold is lower
 * (docs/ENGINE.md, When a pool pays).
 */
export const POOL_WORTH_BYTES_PER_CORE: Readonly<Record<Work, number>> = {
  compress: 1 << 30,
  decompress: 640 << 20,
  decompressToFile: 128 << 20,
};
const POOL_WORTH_MIN = 32 << 20;

/**
 * The thread count used when none is given, to `work` on an input of `size` bytes (the
 * content when compressing, the .mmh file when decompressing): the number of cores, or 1
 * for a known size too small for a pool to pay (see POOL_WORTH_BYTES_PER_CORE).
 */
export function defaultThreadsFor(size: number | undefined, work: Work, cores = defaultThreads()): number {
  if (size === undefined || cores <= 1) return Math.max(1, cores);
  return size >= poolWorthBytes(work, cores) ? cores : 1;
}

/** The input size from which `work` gets every core by default (defaultThreadsFor). */
export function poolWorthBytes(work: Work, cores: number): number {
  return Math.max(POOL_WORTH_MIN, Math.ceil(POOL_WORTH_BYTES_PER_CORE[work] / cores));
}

/** Resolve the threads option: an integer from 1 to 256, default the number of cores. */
export function resolveThreads(threads: number | undefined): number {
  const n = threads ?? defaultThreads();
  if (!Number.isSafeInteger(n) || n < 1 || n > 256) {
    throw new MmhError("E_BAD_OPTION", `threads must be an integer from 1 to 256, got ${threads}`);
  }
  return n;
}
