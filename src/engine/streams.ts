/**
 * Node and Web stream faces of the streaming encoder and decoder. Both are thin drivers
 * of the async generators (encodeContainer, decodeContainer): the generator's input is a
 * Feed that holds at most one written piece, and its output is pulled only when the
 * reading side wants more, so memory stays bounded by the pieces in flight (one written
 * piece, the coder's own window of chunks, one output piece) whatever the input size,
 * and a slow reader stops the writer. Streams do no format recognition: the container is
 * what compressStream() writes for the same options.
 */
import { Transform, type TransformCallback } from "node:stream";
import { MmhError, toMmhError } from "../common/errors.ts";
import { type DecodeSummary, decodeContainer } from "./decoder.ts";
import { type CompressSummary, emptySummary, encodeContainer } from "./encoder.ts";
import {
  type CompressOptions,
  type DecompressOptions,
  resolveCompressOptions,
  resolveMaxOutput,
} from "./options.ts";

type Coder = (source: AsyncIterable<Uint8Array>) => AsyncGenerator<Uint8Array>;
/** Called once when the coder has taken a piece (no argument) or never will (the failure). */
type Taken = (error?: unknown) => void;

/**
 * The coder's input: pieces handed over one at a time. A piece is "taken" when the coder
 * asks for it, which is when the write that gave it completes: that is the backpressure
 * on the writing side.
 */
class Feed implements AsyncIterableIterator<Uint8Array> {
  private held: { bytes: Uint8Array; taken: Taken } | undefined;
  private waiter:
    | { resolve: (r: IteratorResult<Uint8Array>) => void; reject: (e: unknown) => void }
    | undefined;
  private ended = false;
  /** Set once: the error every pending and later request settles with. */
  failure: unknown;
  private failed = false;

  [Symbol.asyncIterator](): this {
    return this;
  }

  give(bytes: Uint8Array, taken: Taken): void {
    if (this.failed) {
      taken(this.failure);
      return;
    }
    if (this.ended || this.held) {
      taken(new MmhError("E_INTERNAL", "stream input arrived out of turn"));
      return;
    }
    const waiter = this.waiter;
    if (!waiter) {
      this.held = { bytes, taken };
      return;
    }
    this.waiter = undefined;
    waiter.resolve({ done: false, value: bytes });
    taken();
  }

  end(): void {
    this.ended = true;
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.resolve({ done: true, value: undefined });
  }

  fail(error: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.failure = error;
    const { held, waiter } = this;
    this.held = undefined;
    this.waiter = undefined;
    held?.taken(error);
    waiter?.reject(error);
  }

  next(): Promise<IteratorResult<Uint8Array>> {
    if (this.failed) return Promise.reject(this.failure);
    const held = this.held;
    if (held) {
      this.held = undefined;
      held.taken();
      return Promise.resolve({ done: false, value: held.bytes });
    }
    if (this.ended) return Promise.resolve({ done: true, value: undefined });
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** The coder stopped reading (it finished or failed); its own error reaches the caller. */
  return(): Promise<IteratorResult<Uint8Array>> {
    return Promise.resolve({ done: true, value: undefined });
  }
}

function aborted(what: string): MmhError {
  return new MmhError("E_ABORTED", `${what} aborted`);
}

/**
 * A Node Transform over one coder. Writes complete as the coder takes them; the coder
 * runs only while the readable side asks for data (`_read`) and pauses when `push`
 * reports a full buffer. A failure destroys the stream with an MmhError, so 'error'
 * carries its code. `summary` fills in as the stream runs and is complete at 'end'; a
 * 'summary' event, just before the readable side ends, carries it too.
 */
export class MmhTransform<S extends object> extends Transform {
  /** Counts and codecs so far; complete once the stream has ended. */
  readonly summary: S;
  private readonly feed = new Feed();
  private readonly output: AsyncGenerator<Uint8Array>;
  private readonly what: string;
  private readonly signal: AbortSignal | undefined;
  private readonly onAbort = (): void => {
    this.destroy(aborted(this.what));
  };
  private wanted = false;
  private pumping = false;
  private flushed: TransformCallback | undefined;

  constructor(what: string, coder: Coder, summary: S, signal: AbortSignal | undefined) {
    super();
    this.what = what;
    this.summary = summary;
    this.output = coder(this.feed);
    this.signal = signal;
    if (signal?.aborted) process.nextTick(this.onAbort);
    else signal?.addEventListener("abort", this.onAbort, { once: true });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.feed.give(chunk, (error) => callback(error as Error | null | undefined));
  }

  override _flush(callback: TransformCallback): void {
    this.flushed = callback;
    this.feed.end();
  }

  override _read(size: number): void {
    super._read(size); // Transform's own: release a write held back by a full read buffer
    this.wanted = true;
    this.pump();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.signal?.removeEventListener("abort", this.onAbort);
    this.feed.fail(error ?? aborted(this.what));
    // Stop the coder so its worker threads close; a next() still pending settles first.
    const done = (): void => callback(error);
    this.output.return(undefined).then(done, done);
  }

  private pump(): void {
    if (this.pumping || this.destroyed) return;
    this.pumping = true;
    void this.run();
  }

  private async run(): Promise<void> {
    try {
      while (this.wanted && !this.destroyed) {
        this.wanted = false;
        const next = await this.output.next();
        if (this.destroyed) return;
        if (next.done) {
          this.finish();
          return;
        }
        // push() can call _read itself; `wanted` then stays set even when it returns false.
        if (this.push(next.value)) this.wanted = true;
      }
    } catch (error) {
      this.destroy(error === this.feed.failure ? (error as Error) : toMmhError(error));
    } finally {
      this.pumping = false;
    }
  }

  private finish(): void {
    const flushed = this.flushed;
    if (!flushed) {
      this.destroy(new MmhError("E_INTERNAL", `${this.what} finished before its input ended`));
      return;
    }
    this.signal?.removeEventListener("abort", this.onAbort);
    this.emit("summary", this.summary);
    flushed(); // Transform ends the readable side
  }
}

/**
 * A Node Transform that compresses the bytes written to it into an .mmh container, the
 * same bytes compressStream() yields for the same options. Options are checked here
 * (E_BAD_OPTION is thrown, not emitted).
 */
export function createCompressStream(options: CompressOptions = {}): MmhTransform<CompressSummary> {
  resolveCompressOptions(options);
  const summary = emptySummary();
  return new MmhTransform(
    "compression",
    (source) => encodeContainer(source, options, summary),
    summary,
    options.signal,
  );
}

/** A Node Transform that decodes an .mmh container front to back (no index needed). */
export function createDecompressStream(options: DecompressOptions = {}): MmhTransform<DecodeSummary> {
  resolveMaxOutput(options);
  const summary: DecodeSummary = { chunks: 0, rawBytes: 0, storedBytes: 0, codecs: {} };
  return new MmhTransform(
    "decompression",
    (source) => decodeContainer(source, options, summary),
    summary,
    options.signal,
  );
}

function bytesOf(chunk: unknown): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk;
  if (ArrayBuffer.isView(chunk)) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk);
  throw new MmhError("E_BAD_OPTION", `stream chunks must be bytes (Uint8Array), got ${typeof chunk}`);
}

/**
 * A readable/writable pair over one coder, shaped as a TransformStream (it goes wherever
 * one does: pipeThrough, or a writer and a reader) though not an instance of the class.
 * The readable side pulls the coder one piece at a time; a write resolves when the coder
 * has taken its piece. A failure errors both sides with the MmhError.
 */
function webPair(coder: Coder): TransformStream<Uint8Array, Uint8Array> {
  const feed = new Feed();
  const output = coder(feed);
  let input: WritableStreamDefaultController | undefined;
  const fail = (error: unknown): void => {
    feed.fail(error);
    input?.error(error);
  };
  const readable = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await output.next();
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      } catch (error) {
        const failure = error === feed.failure ? error : toMmhError(error);
        fail(failure);
        controller.error(failure);
      }
    },
    async cancel(reason) {
      fail(reason ?? new MmhError("E_ABORTED", "the output was cancelled"));
      await output.return(undefined);
    },
  });
  const writable = new WritableStream<Uint8Array>({
    start(controller) {
      input = controller;
    },
    write(chunk) {
      return new Promise<void>((resolve, reject) => {
        let bytes: Uint8Array;
        try {
          bytes = bytesOf(chunk);
        } catch (error) {
          feed.fail(error); // the reading side fails with it too
          throw error;
        }
        feed.give(bytes, (error) => (error === undefined ? resolve() : reject(error)));
      });
    },
    close() {
      feed.end();
    },
    abort(reason) {
      feed.fail(reason ?? new MmhError("E_ABORTED", "the input was aborted"));
    },
  });
  return { readable, writable };
}

/** A Web TransformStream-shaped pair that compresses (see createCompressStream). */
export function createCompressTransformStream(
  options: CompressOptions = {},
): TransformStream<Uint8Array, Uint8Array> {
  resolveCompressOptions(options);
  return webPair((source) => encodeContainer(source, options));
}

/** A Web TransformStream-shaped pair that decompresses (see createDecompressStream). */
export function createDecompressTransformStream(
  options: DecompressOptions = {},
): TransformStream<Uint8Array, Uint8Array> {
  resolveMaxOutput(options);
  return webPair((source) => decodeContainer(source, options));
}
