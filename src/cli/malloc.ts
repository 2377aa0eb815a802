/**
 * Memory of a long-running `mmh serve` on Linux with glibc. Its malloc raises the size
 * from which it maps large blocks on their own (the mmap threshold) each time such a
 * block is freed, up to 32 MiB; the chunk buffers of later requests then come from the
 * heap arenas, which keep their freed pages, so resident memory stays at its peak after
 * a burst of requests. A fixed threshold (MALLOC_MMAP_THRESHOLD_, glibc's own setting)
 * keeps large buffers mapped on their own and returned to the system when freed.
 * bench/serve-load.ts measures the difference (docs/ENGINE.md).
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
 * Restart this process in place (same PID, same open files, same arguments) with
 * MALLOC_MMAP_THRESHOLD_ set, when it is not set already (an operator's own value, or
 * this restart, is kept) and MMH_MALLOC_DEFAULTS is not 1, the C library is glibc and Node can replace its process image
 * (`process.execve`, Node 23.11 and later). Otherwise it returns and the service runs as
 * it is.
 */
export function restartWithMallocSettings(): void {
  // MMH_MALLOC_DEFAULTS=1 keeps glibc's own behaviour (to measure the difference).
  if (process.env.MALLOC_MMAP_THRESHOLD_ !== undefined || process.env.MMH_MALLOC_DEFAULTS === "1") return;
  const execve = (process as { execve?: (file: string, args: string[], env: NodeJS.ProcessEnv) => never })
    .execve;
  if (typeof execve !== "function" || !usesGlibc()) return;
  const env = { ...process.env, MALLOC_MMAP_THRESHOLD_: SERVE_MMAP_THRESHOLD };
  try {
    execve.call(
      process,
      process.execPath,
      [process.execPath, ...process.execArgv, ...process.argv.slice(1)],
      env,
    );
  } catch {
    // Not allowed here (a worker thread, a sandbox): serve without it.
  }
}
