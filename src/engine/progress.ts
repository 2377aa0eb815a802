/**
 * Progress reports for long library calls: `onProgress` is called at the start, at most
 * every `progressIntervalMs` while the work runs, and once at the end. Counting is done by
 * wrapping the input and output iterables, so the coders themselves know nothing of it.
 */
import { nowMs } from "../common/clock.ts";
import { MmhError } from "../common/errors.ts";

/** What `onProgress` is called with. */
export interface ProgressEvent {
  /**
   * Bytes read from the input so far: the source file (or a folder's files) for
   * compression, the .mmh file for decompression, verify and unpack.
   */
  readBytes: number;
  /**
   * Bytes produced so far: container bytes for compression, content bytes for
   * decompression and unpack; always 0 for verify.
   */
  writtenBytes: number;
  /** The input's size, where `readBytes` ends, when it is known (not for a stream). */
  totalBytes?: number;
  /** pack and unpack: the path, inside the folder, of the file being read or written. */
  entry?: string;
  /** True on the last call only, made when all the work has succeeded. */
  done: boolean;
}

/** The progress option of the long-running calls (compressFile, decompressFile, verify, pack, unpack, and the stream functions). */
export interface ProgressOptions {
  /**
   * Called once when the work starts, then at most every `progressIntervalMs` while it
   * goes on, and once at the end (`done: true`), before the output is put in place. The
   * counts never decrease. A callback that throws stops the work: the call rejects with
   * E_BAD_OPTION (the thrown value as its `cause`) and leaves no output.
   */
  onProgress?: (progress: ProgressEvent) => void;
  /** Least milliseconds between two calls of `onProgress` in the middle of the work; default 100. */
  progressIntervalMs?: number;
}

/**
 * Counts the bytes of an operation and reports them to an `onProgress` callback, throttled
 * by time. It works only on the iterables around the coder (the input it reads and the
 * output it yields), so the coder itself knows nothing of it.
 */
export class ProgressReporter {
  readBytes = 0;
  writtenBytes = 0;
  totalBytes: number | undefined;
  entry: string | undefined;
  private readonly callback: ((progress: ProgressEvent) => void) | undefined;
  private readonly intervalMs: number;
  private last = Number.NEGATIVE_INFINITY;
  private finished = false;

  /** Checks the options (E_BAD_OPTION); without a callback every method costs next to nothing. */
  constructor(options: ProgressOptions, totalBytes?: number) {
    const { onProgress, progressIntervalMs = 100 } = options;
    if (onProgress !== undefined && typeof onProgress !== "function")
      throw new MmhError("E_BAD_OPTION", "onProgress must be a function");
    if (!Number.isFinite(progressIntervalMs) || progressIntervalMs < 0)
      throw new MmhError(
        "E_BAD_OPTION",
        `progressIntervalMs must be a non-negative number, got ${progressIntervalMs}`,
      );
    this.callback = onProgress;
    this.intervalMs = progressIntervalMs;
    this.totalBytes = totalBytes;
  }

  /** Report now; `done` marks the last report, after which nothing more is reported. */
  report(done = false): void {
    if (!this.callback || this.finished) return;
    this.finished = done;
    this.last = nowMs();
    const progress: ProgressEvent = {
      readBytes: this.readBytes,
      writtenBytes: this.writtenBytes,
      ...(this.totalBytes === undefined ? {} : { totalBytes: this.totalBytes }),
      ...(this.entry === undefined ? {} : { entry: this.entry }),
      done,
    };
    try {
      this.callback(progress);
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      throw new MmhError("E_BAD_OPTION", `the onProgress callback threw: ${why}`, { cause: error });
    }
  }

  /** Report if the interval has passed since the last report. */
  tick(): void {
    if (this.callback && nowMs() - this.last >= this.intervalMs) this.report();
  }

  /** `source`, its pieces counted into `readBytes` as they are taken. */
  async *reading(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    for await (const piece of source) {
      this.readBytes += piece.byteLength;
      this.tick();
      yield piece;
    }
  }

  /**
   * `output`, its pieces counted into `writtenBytes` once the consumer has taken them;
   * with `last`, the final report is made when it ends (so before an atomic write renames
   * its file into place, and a throwing callback still leaves nothing behind).
   */
  async *writing(output: AsyncIterable<Uint8Array>, last = true): AsyncGenerator<Uint8Array> {
    for await (const piece of output) {
      yield piece;
      this.writtenBytes += piece.byteLength;
      this.tick();
    }
    if (last) this.report(true);
  }
}
