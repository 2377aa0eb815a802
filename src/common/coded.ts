/**
 * What the two halves of the library share without loading each other (decompress.ts,
 * compress.ts): the output streams of the coding calls and their options. The encoding
 * half imports this module, not decompress.ts, so that compressing never loads the
 * decoder (docs/ENGINE.md, Start-up).
 */
import { nowMs } from "./clock.ts";

export interface FileOptions {
  /** Replace an existing output file. */
  overwrite?: boolean;
}

/** Options of the APIs that yield their output as a stream of pieces. */
export interface StreamOutputOptions {
  /**
   * The consumer writes each yielded piece before it asks for the next (as the CLI's
   * writer does): a piece may then be memory the coder reuses, valid only until the next
   * piece is asked for. This saves a copy of every chunk. Default false: every piece is
   * the consumer's to keep.
   */
  reuse?: boolean;
}

/**
 * The output of a streaming call: iterate it for the pieces. When the iteration ends,
 * `summary` holds what the call did (it is also the generator's return value).
 */
export interface CodedStream<S> extends AsyncGenerator<Uint8Array, S, undefined> {
  /** Undefined until the last piece has been taken. */
  readonly summary: S | undefined;
}

export async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/**
 * A stream that runs `pieces` and then sets its summary from `finish`, given the
 * milliseconds from the first piece asked for to the last (not from the call, which may
 * come long before the consumer starts).
 */
export function coded<S>(
  pieces: () => AsyncGenerator<Uint8Array>,
  finish: (ms: number) => S,
): CodedStream<S> {
  const state: { summary: S | undefined } = { summary: undefined };
  const stream = (async function* () {
    const started = nowMs();
    yield* pieces();
    state.summary = finish(nowMs() - started);
    return state.summary;
  })();
  return Object.defineProperty(stream, "summary", {
    get: () => state.summary,
    enumerable: true,
  }) as CodedStream<S>;
}
