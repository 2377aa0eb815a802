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
 * Bytes of input per core below which a pool does not pay. Each worker loads the codec
 * modules and compiles the hot loops again, and with one thread the content is already
 * hashed on a second core (hashesApart). On 2 cores, of the sizes timed, -T 2 was faster
 * than -T 1 only for 1 GiB (see docs/ENGINE.md, Measurements behind engine choices: When
 * a pool pays). With more cores the start-up runs on cores that would otherwise idle, so
 * the threshold is divided by the core count (an estimate: only 2 cores were measured).
 */
export const POOL_WORTH_BYTES_PER_CORE = 1 << 30;
const POOL_WORTH_MIN = 32 << 20;

/**
 * The thread count used when none is given for an input of `size` bytes: the number of
 * cores, or 1 for a known size too small for a pool to pay (see POOL_WORTH_BYTES_PER_CORE).
 */
export function defaultThreadsFor(size?: number): number {
  const cores = defaultThreads();
  if (size === undefined || cores === 1) return cores;
  return size >= Math.max(POOL_WORTH_MIN, POOL_WORTH_BYTES_PER_CORE / cores) ? cores : 1;
}

/** Resolve the threads option: an integer from 1 to 256, default the number of cores. */
export function resolveThreads(threads: number | undefined): number {
  const n = threads ?? defaultThreads();
  if (!Number.isSafeInteger(n) || n < 1 || n > 256) {
    throw new MmhError("E_BAD_OPTION", `threads must be an integer from 1 to 256, got ${threads}`);
  }
  return n;
}
