/**
 * The stop protocol of MMH's worker threads (pool.ts Thread; worker.ts, hasher.ts): a few
 * words of memory shared with the thread that started one, and the message that asks it
 * to leave. It imports nothing, so the hashing thread, which imports nothing of mmh
 * otherwise, stays small.
 */

/** Requests done: a coding worker raises it as it finishes each one (pool.ts Lane). */
export const DONE_WORD = 0;
/** Requests running: raised as one starts, lowered once it is done. */
export const RUNNING_WORD = 1;
/** Set by the starting thread to stop the thread. */
export const STOP_WORD = 2;
/** Bytes of control memory a thread is given. */
export const CONTROL_BYTES = 12;

/** The message that asks a thread to leave (after its STOP word is set). */
export const CLOSE_MESSAGE = { op: "close" } as const;

/**
 * Run `answer` on each message that comes to this thread, until it is asked to stop: the
 * RUNNING word is raised first, then the stop word and the message are looked at, so a
 * thread asked to stop leaves here (process.exit), between requests, never inside one,
 * and the requests still waiting are dropped; one that the starting thread sees as not
 * running runs none. RUNNING is lowered when the answer is done (settled, when it is a
 * promise).
 */
export function answerUntilStopped<R>(
  port: { on(event: "message", listener: (message: R | typeof CLOSE_MESSAGE) => void): unknown } | null,
  control: Int32Array | undefined,
  answer: (request: R) => unknown,
): void {
  port?.on("message", (message) => {
    if (control) Atomics.add(control, RUNNING_WORD, 1);
    const closing = (message as { op?: unknown }).op === CLOSE_MESSAGE.op;
    if (closing || (control && Atomics.load(control, STOP_WORD) !== 0)) process.exit(0);
    const lower = () => {
      if (control) Atomics.sub(control, RUNNING_WORD, 1);
    };
    let result: unknown;
    try {
      result = answer(message as R);
    } catch (error) {
      lower();
      throw error;
    }
    if (result instanceof Promise) result.finally(lower).catch(() => {});
    else lower();
  });
}
