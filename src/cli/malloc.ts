/**
 * Memory of a long-running `mmh serve` on Linux with glibc. Its malloc raises the size
 * from which it maps large blocks on their own (the mmap threshold) each time such a
 * block is freed, up to 32 MiB; the chunk buffers of later requests then come from the
 * heap arenas, which keep their freed pages, so resident memory stays at its peak after
 * a burst of requests. A fixed threshold (MALLOC_MMAP_THRESHOLD_, glibc's own setting)
 * keeps large buffers mapped on their own and returned to the system when freed.
 * bench/serve-memory.ts measures the difference (docs/ENGINE.md).
 */

/** The threshold set for the service: glibc's initial value, 128 KiB. */
export const SERVE_MMAP_THRESHOLD = "131072";

/** Whether this process runs on Linux with glibc (whose malloc the setting is for). */
export function usesGlibc(): boolean {
  if (process.platform !== "linux") return false;
  try {
    const header = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header;
    return typeof header?.glibcVersionRuntime === "string";
  } catch {
    return false;
  }
}

/**
 * The largest semi-space of V8's young generation for the service, in MiB. Unset, V8 sizes
 * it from the machine's memory, several times this on a server: a burst of requests grows
 * it to that, and an idle service runs no collection that would shrink it again, nor free
 * the Buffers its garbage still holds.
 * 16 MiB keeps the young generation, and the Buffers waiting for it, small
 * (bench/serve-load.ts, docs/ENGINE.md).
 */
export const SERVE_SEMI_SPACE_MIB = 16;

/** Set in the environment of the process the restart starts. */
const RESTARTED = "MMH_SERVE_RESTARTED";

/** Whether the process was started with its own --max-semi-space-size (arguments or NODE_OPTIONS). */
function hasSemiSpaceSetting(): boolean {
  return [...process.execArgv, ...(process.env.NODE_OPTIONS ?? "").split(/\s+/)].some((arg) =>
    /^--max[-_]semi[-_]space[-_]size(=|$)/.test(arg),
  );
}

/**
 * Restart the service's process in place (same PID, same open files, same arguments) with
 * the settings a long-running service needs, when any is missing:
 * - MALLOC_MMAP_THRESHOLD_, on glibc, unless it is set already (an operator's own value,
 *   or this restart) or MMH_MALLOC_DEFAULTS is 1;
 * - `--max-semi-space-size=16`, unless the process has a value of its own;
 * - `--expose-gc`, for the one full collection once the service is idle after work.
 * Node must be able to replace its process image (`process.execve`, Node 23.11 and later,
 * not in a sandbox or a worker thread); otherwise it returns and the service runs as it is.
 * Workers started by `--workers` inherit all three (environment and Node's arguments).
 */
export function restartWithMallocSettings(): void {
  const execve = (process as { execve?: (file: string, args: string[], env: NodeJS.ProcessEnv) => never })
    .execve;
  // Once only: a process this restart started never restarts again, whatever it finds
  // (a Node that ignored a flag would otherwise restart forever).
  if (typeof execve !== "function" || process.env[RESTARTED] === "1") return;
  // MMH_MALLOC_DEFAULTS=1 keeps glibc's own behaviour (to measure the difference).
  const setMalloc =
    process.env.MALLOC_MMAP_THRESHOLD_ === undefined &&
    process.env.MMH_MALLOC_DEFAULTS !== "1" &&
    usesGlibc();
  const setSemiSpace = !hasSemiSpaceSetting();
  // For the one collection after a burst (src/server/idle.ts).
  const exposeGc = typeof (globalThis as { gc?: unknown }).gc !== "function";
  if (!setMalloc && !setSemiSpace && !exposeGc) return;
  const env = {
    ...process.env,
    [RESTARTED]: "1",
    ...(setMalloc ? { MALLOC_MMAP_THRESHOLD_: SERVE_MMAP_THRESHOLD } : {}),
  };
  const flags = [
    ...(setSemiSpace ? [`--max-semi-space-size=${SERVE_SEMI_SPACE_MIB}`] : []),
    ...(exposeGc ? ["--expose-gc"] : []),
  ];
  try {
    execve.call(
      process,
      process.execPath,
      [process.execPath, ...process.execArgv, ...flags, ...process.argv.slice(1)],
      env,
    );
  } catch {
    // Not allowed here (a worker thread, a sandbox): serve without them.
  }
}
