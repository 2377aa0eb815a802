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

/** Slots for requests in flight; past the limit a request is refused, never queued. */
export class Slots {
  #inUse = 0;

  get inUse(): number {
    return this.#inUse;
  }

  /** Take a slot if fewer than `limit` are in use. */
  tryTake(limit: number): boolean {
    if (this.#inUse >= limit) return false;
    this.#inUse++;
    return true;
  }

  release(): void {
    this.#inUse = Math.max(0, this.#inUse - 1);
  }
}
