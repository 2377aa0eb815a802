/**
 * Milliseconds from an arbitrary origin, for measuring durations: process.hrtime, not
 * performance.now(), whose first use loads node:perf_hooks and the modules behind it
 * (about a millisecond and a half of every command's start, docs/ENGINE.md).
 */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
