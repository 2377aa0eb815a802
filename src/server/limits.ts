/** The service's guards: bearer tokens, the body size limit, and the concurrency slots. */
import { createHash, timingSafeEqual } from "node:crypto";
import { ServiceError } from "./errors.ts";

/**
 * Whether an Authorization header carries `token`. Both sides are hashed first, so the
 * comparison takes the same time whatever the lengths and wherever they differ.
 */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const match = /^Bearer[ \t]+(\S+)\s*$/i.exec(header ?? "");
  const given = createHash("sha256")
    .update(match?.[1] ?? "")
    .digest();
  const expected = createHash("sha256").update(token).digest();
  return timingSafeEqual(given, expected) && match !== null;
}

export function tooLarge(limit: number): ServiceError {
  return new ServiceError(413, "E_LIMIT", `request body over the limit of ${limit} bytes`);
}

/**
 * The request body, counted as it arrives: past `limit` bytes it fails with 413, whatever
 * Content-Length said. `onBytes` sees every piece's size (the bytes-in counter).
 */
export async function* limitBody(
  body: AsyncIterable<Uint8Array>,
  limit: number,
  onBytes: (bytes: number) => void,
): AsyncGenerator<Uint8Array> {
  let total = 0;
  for await (const piece of body) {
    total += piece.length;
    onBytes(piece.length);
    if (total > limit) throw tooLarge(limit);
    yield piece;
  }
}

/**
 * Slots for requests in flight. Past the limit a request waits, in arrival order, for a
 * slot to be released, as long as fewer than `queue` are waiting; past that it is refused.
 * Admitting requests in order keeps the latency of each near the mean: without a queue
 * (or with a concurrency limit as high as the clients), every request's coding shares the
 * event loop with all the others, and a request that needs many turns of it (a large
 * compress) waits behind all of them at each turn.
 */
export class Slots {
  #inUse = 0;
  readonly #waiting: { grant: () => void }[] = [];

  get inUse(): number {
    return this.#inUse;
  }

  get waiting(): number {
    return this.#waiting.length;
  }

  /** Take a slot if fewer than `limit` are in use and nobody is waiting for one. */
  tryTake(limit: number): boolean {
    if (this.#inUse >= limit || this.#waiting.length > 0) return false;
    this.#inUse++;
    return true;
  }

  /**
   * Take a slot now, or wait for one in order. Resolves true once the slot is held; false
   * at once when `queue` requests are waiting already, and false when `signal` aborts
   * first (the client went away while it waited; no slot is held then).
   */
  async take(limit: number, queue: number, signal: AbortSignal): Promise<boolean> {
    if (this.tryTake(limit)) return true;
    if (this.#waiting.length >= queue || signal.aborted) return false;
    const { promise, resolve } = Promise.withResolvers<boolean>();
    const entry = {
      grant: () => {
        signal.removeEventListener("abort", onAbort);
        this.#inUse++;
        resolve(true);
      },
    };
    const onAbort = () => {
      const at = this.#waiting.indexOf(entry);
      if (at >= 0) this.#waiting.splice(at, 1);
      resolve(false);
      this.#admit(limit);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    this.#waiting.push(entry);
    return promise;
  }

  /** Give a slot back; the first request waiting, if any, takes it. */
  release(limit = Number.POSITIVE_INFINITY): void {
    this.#inUse = Math.max(0, this.#inUse - 1);
    this.#admit(limit);
  }

  #admit(limit: number): void {
    while (this.#inUse < limit && this.#waiting.length > 0) this.#waiting.shift()?.grant();
  }
}
