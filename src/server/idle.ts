/**
 * One full garbage collection once the service has been idle for a while after work. An
 * idle process allocates nothing, so V8 runs no collection, and the Buffers that the
 * garbage of finished requests still holds (bodies, chunks, outputs) stay resident until
 * the next burst (measured in bench/results/serve-load.md). The collection runs only where Node exposes it
 * (`--expose-gc`, which `mmh serve` sets when it restarts itself, src/cli/malloc.ts), never
 * while a request holds or waits for a slot, and once per idle period.
 */

/** Idle time, after the last request that held a slot, before the collection. */
export const IDLE_COLLECT_MS = 5000;

type Collect = (options?: { type?: "major" | "minor"; execution?: "sync" | "async" }) => unknown;

export class IdleCollector {
  #timer: NodeJS.Timeout | undefined;
  readonly #collect: Collect | undefined;
  readonly #delayMs: number;
  /** Collections run so far (for tests and metrics). */
  runs = 0;

  /** Called after each collection is started. */
  onCollect: (() => void) | undefined;

  constructor(delayMs = IDLE_COLLECT_MS, collect = (globalThis as { gc?: Collect }).gc) {
    this.#delayMs = delayMs;
    this.#collect = collect;
  }

  /** Whether this process can collect on demand at all. */
  get available(): boolean {
    return typeof this.#collect === "function";
  }

  /** Work started: no collection until the service is idle again. */
  busy(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** The last request holding or waiting for a slot is done: collect after the delay. */
  idle(): void {
    if (!this.available) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.runs++;
      this.#collect?.({ type: "major", execution: "async" });
      this.onCollect?.();
    }, this.#delayMs);
    this.#timer.unref();
  }

  stop(): void {
    this.busy();
  }
}
