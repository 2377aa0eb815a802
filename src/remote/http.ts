/**
 * Random access to a file served over HTTP(S) through range requests: the .mmh reader
 * reads its trailer and index, then only the chunk records a read needs. Never a whole
 * download: a server that does not answer a range with 206 is refused, its body aborted.
 */
import { MmhError } from "../common/errors.ts";
import type { ByteRange, RandomAccessSource } from "../common/source.ts";

/** How an .mmh file is read over HTTP. */
export interface HttpOptions {
  /** The limit of each request, its answer's body included, in milliseconds (default 30 000). */
  timeoutMs?: number;
  /** Requests in flight at once (default 4). */
  concurrency?: number;
  /** Adjacent ranges are merged into requests of at most this many bytes (default 8 MiB). */
  maxRequestBytes?: number;
  /** Redirects followed per request (default 5). */
  maxRedirects?: number;
}

/** Bytes the first request asks for from the end: the trailer and, when small, the index. */
export const TAIL_BYTES = 64 << 10;
/** A read smaller than this fetches this much, so the header and its metadata are one request. */
export const MIN_REQUEST_BYTES = 16 << 10;

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

interface Block {
  offset: number;
  bytes: Buffer;
}

interface Answer {
  offset: number;
  total: number;
  bytes: Buffer;
}

/** Whether `target` names a file over HTTP: a `URL` or a string starting with http:// or https://. */
export function isHttpTarget(target: unknown): boolean {
  if (target instanceof URL) return target.protocol === "http:" || target.protocol === "https:";
  return typeof target === "string" && /^https?:\/\//i.test(target);
}

/** The URL as errors name it: without credentials or a query (which may hold a token). */
export function urlLabel(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

/**
 * Open `url` for positioned reads: one suffix range request fetches its last bytes (the
 * trailer and a small index) and tells its size (Content-Range).
 */
export async function httpSource(url: URL | string, options: HttpOptions = {}): Promise<RandomAccessSource> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (error) {
    throw new MmhError("E_BAD_OPTION", `not a URL: ${String(url)}`, { cause: error });
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:")
    throw new MmhError("E_BAD_OPTION", `${urlLabel(parsed)}: only http and https URLs are read`);
  const source = new HttpSource(parsed, options);
  await source.start();
  return source;
}

class HttpSource implements RandomAccessSource {
  size = 0;
  #url: URL;
  readonly #label: string;
  readonly #timeoutMs: number;
  readonly #concurrency: number;
  readonly #maxRequestBytes: number;
  readonly #maxRedirects: number;
  readonly #closed = new AbortController();
  #etag: string | undefined;
  #lastModified: string | undefined;
  /** The tail fetched on open, kept for the reads of the trailer and index. */
  #tail: Block = { offset: 0, bytes: Buffer.alloc(0) };
  /** The last small read's block (read-ahead of MIN_REQUEST_BYTES). */
  #recent: Block | undefined;
  #active = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(url: URL, options: HttpOptions) {
    this.#url = url;
    this.#label = urlLabel(url);
    this.#timeoutMs = positive(options.timeoutMs, 30_000, "timeoutMs");
    this.#concurrency = positive(options.concurrency, 4, "concurrency");
    this.#maxRequestBytes = positive(options.maxRequestBytes, 8 << 20, "maxRequestBytes");
    this.#maxRedirects = options.maxRedirects ?? 5;
    if (!Number.isSafeInteger(this.#maxRedirects) || this.#maxRedirects < 0)
      throw new MmhError("E_BAD_OPTION", `maxRedirects must be a non-negative integer`);
  }

  async start(): Promise<void> {
    const answer = await this.#request(`bytes=-${TAIL_BYTES}`);
    this.size = answer.total;
    const expected = Math.max(0, answer.total - TAIL_BYTES);
    if (answer.offset !== expected || answer.offset + answer.bytes.length !== answer.total)
      throw new MmhError(
        "E_UNSUPPORTED",
        `${this.#label}: the server answered the last ${TAIL_BYTES} bytes with another range`,
      );
    this.#tail = { offset: answer.offset, bytes: answer.bytes };
  }

  async read(offset: number, length: number): Promise<Buffer> {
    this.#checkRange(offset, length);
    const cached = this.#cached(offset, length);
    if (cached) return cached;
    const tail = this.#tail;
    const end = offset + length;
    if (end > tail.offset && offset < tail.offset) {
      // The index runs into the tail already held: fetch only what is before it.
      const head = await this.#fetch(offset, tail.offset - offset);
      return Buffer.concat([head, tail.bytes.subarray(0, end - tail.offset)]);
    }
    if (length < MIN_REQUEST_BYTES) {
      // A read here ends before the tail (one reaching into it was handled above).
      const bytes = await this.#fetch(offset, Math.min(tail.offset, offset + MIN_REQUEST_BYTES) - offset);
      this.#recent = { offset, bytes };
      return bytes.subarray(0, length);
    }
    return this.#fetch(offset, length);
  }

  async readMany(ranges: readonly ByteRange[]): Promise<Buffer[]> {
    const out: Buffer[] = new Array(ranges.length);
    const todo: number[] = [];
    ranges.forEach(({ offset, length }, i) => {
      this.#checkRange(offset, length);
      const cached = this.#cached(offset, length);
      if (cached) out[i] = cached;
      else todo.push(i);
    });
    todo.sort((a, b) => ranges[a].offset - ranges[b].offset);
    // Runs of adjacent ranges, each one request of at most maxRequestBytes (a longer
    // range alone is still one request).
    const groups: number[][] = [];
    let group: number[] = [];
    let groupEnd = -1;
    let groupBytes = 0;
    for (const i of todo) {
      const { offset, length } = ranges[i];
      if (group.length > 0 && (offset !== groupEnd || groupBytes + length > this.#maxRequestBytes)) {
        groups.push(group);
        group = [];
        groupBytes = 0;
      }
      group.push(i);
      groupEnd = offset + length;
      groupBytes += length;
    }
    if (group.length > 0) groups.push(group);
    await Promise.all(
      groups.map(async (members) => {
        const first = ranges[members[0]].offset;
        const last = ranges[members.at(-1)!];
        const bytes = await this.#fetch(first, last.offset + last.length - first);
        for (const i of members)
          out[i] = bytes.subarray(ranges[i].offset - first, ranges[i].offset - first + ranges[i].length);
      }),
    );
    return out;
  }

  async close(): Promise<void> {
    this.#closed.abort();
  }

  #checkRange(offset: number, length: number): void {
    if (this.#closed.signal.aborted) throw new MmhError("E_IO", `${this.#label}: read after close`);
    if (offset + length > this.size)
      throw new MmhError("E_TRUNCATED", `read past the end of ${this.#label} at offset ${offset}`);
  }

  #cached(offset: number, length: number): Buffer | undefined {
    for (const block of [this.#tail, this.#recent]) {
      if (block && offset >= block.offset && offset + length <= block.offset + block.bytes.length)
        return block.bytes.subarray(offset - block.offset, offset - block.offset + length);
    }
    return undefined;
  }

  /** Bytes [offset, offset + length), one request. */
  async #fetch(offset: number, length: number): Promise<Buffer> {
    if (length === 0) return Buffer.alloc(0);
    const answer = await this.#request(`bytes=${offset}-${offset + length - 1}`, length);
    if (answer.total !== this.size)
      throw new MmhError(
        "E_CORRUPT",
        `${this.#label} changed on the server: its size went from ${this.size} to ${answer.total} bytes`,
      );
    if (answer.offset !== offset || answer.bytes.length !== length)
      throw new MmhError(
        "E_IO",
        `${this.#label}: asked for bytes ${offset}+${length}, the server sent ${answer.offset}+${answer.bytes.length}`,
      );
    return answer.bytes;
  }

  /** One range request, redirects followed, within the concurrency bound. */
  async #request(range: string, length?: number): Promise<Answer> {
    while (this.#active >= this.#concurrency)
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    this.#active++;
    try {
      return await this.#exchange(range, length);
    } finally {
      this.#active--;
      this.#waiting.shift()?.();
    }
  }

  async #exchange(range: string, length: number | undefined): Promise<Answer> {
    const first = length === undefined;
    const signal = AbortSignal.any([AbortSignal.timeout(this.#timeoutMs), this.#closed.signal]);
    const headers: Record<string, string> = { range, "accept-encoding": "identity" };
    const strong = this.#etag !== undefined && !this.#etag.startsWith("W/");
    if (strong) headers["if-range"] = this.#etag!;
    let url = this.#url;
    let response: Response;
    for (let redirects = 0; ; redirects++) {
      try {
        response = await fetch(url, { headers, redirect: "manual", signal });
      } catch (error) {
        throw this.#failure(error, signal);
      }
      if (!REDIRECTS.has(response.status)) break;
      await discard(response);
      const location = response.headers.get("location");
      if (location === null)
        throw new MmhError("E_IO", `${urlLabel(url)}: HTTP ${response.status} without a Location`);
      if (redirects >= this.#maxRedirects)
        throw new MmhError("E_IO", `${this.#label}: more than ${this.#maxRedirects} redirects`);
      url = new URL(location, url);
      if (url.protocol !== "http:" && url.protocol !== "https:")
        throw new MmhError("E_UNSUPPORTED", `${this.#label}: redirected to a ${url.protocol} URL`);
    }
    // Later requests go straight to where the redirects led.
    this.#url = url;
    const status = response.status;
    if (status !== 206) {
      await discard(response);
      if (status === 404 || status === 410)
        throw new MmhError("E_NOT_FOUND", `${this.#label}: not found (HTTP ${status})`);
      if (status === 416)
        throw new MmhError("E_TRUNCATED", `${this.#label}: range not satisfiable (HTTP 416; an empty file?)`);
      if (status === 200 && strong)
        throw new MmhError(
          "E_CORRUPT",
          `${this.#label} changed on the server: its ETag no longer matches (If-Range answered with the whole file)`,
        );
      if (status === 200)
        throw new MmhError(
          "E_UNSUPPORTED",
          `${this.#label}: the server does not support range requests (it answered HTTP 200 with the whole file); ` +
            `download it and open the file`,
        );
      throw new MmhError(
        "E_IO",
        `${this.#label}: HTTP ${status}${response.statusText ? ` ${response.statusText}` : ""}`,
      );
    }
    try {
      const contentRange = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(response.headers.get("content-range") ?? "");
      if (!contentRange)
        throw new MmhError(
          "E_UNSUPPORTED",
          `${this.#label}: the server's partial answer has no single byte Content-Range`,
        );
      const encoding = response.headers.get("content-encoding");
      if (encoding !== null && encoding !== "identity")
        throw new MmhError("E_UNSUPPORTED", `${this.#label}: the server encoded a range (${encoding})`);
      const offset = Number(contentRange[1]);
      const total = Number(contentRange[3]);
      const count = Number(contentRange[2]) - offset + 1;
      if (!(count >= 0 && offset + count <= total && Number.isSafeInteger(total)))
        throw new MmhError("E_IO", `${this.#label}: impossible Content-Range ${contentRange[0]}`);
      if (length !== undefined && count !== length)
        throw new MmhError("E_IO", `${this.#label}: asked for ${length} bytes, the server sent ${count}`);
      this.#checkValidators(response, first);
      const bytes = await readBody(response, count, this.#label).catch((error: unknown) => {
        throw this.#failure(error, signal);
      });
      return { offset, total, bytes };
    } catch (error) {
      await discard(response);
      throw error;
    }
  }

  /** The ETag and Last-Modified of the first answer must hold for every later one. */
  #checkValidators(response: Response, first: boolean): void {
    const etag = response.headers.get("etag") ?? undefined;
    const lastModified = response.headers.get("last-modified") ?? undefined;
    if (first) {
      this.#etag = etag;
      this.#lastModified = lastModified;
      return;
    }
    if (this.#etag !== undefined && etag !== undefined && etag !== this.#etag)
      throw new MmhError(
        "E_CORRUPT",
        `${this.#label} changed on the server: ETag ${this.#etag} became ${etag}`,
      );
    if (this.#lastModified !== undefined && lastModified !== undefined && lastModified !== this.#lastModified)
      throw new MmhError(
        "E_CORRUPT",
        `${this.#label} changed on the server: Last-Modified ${this.#lastModified} became ${lastModified}`,
      );
  }

  /** A failed fetch or body read as a coded error. */
  #failure(error: unknown, signal: AbortSignal): MmhError {
    if (error instanceof MmhError) return error;
    if (this.#closed.signal.aborted) return new MmhError("E_IO", `${this.#label}: closed`, { cause: error });
    if (signal.aborted)
      return new MmhError("E_IO", `${this.#label}: no answer within ${this.#timeoutMs} ms`, { cause: error });
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : String(error));
    return new MmhError("E_IO", `cannot read ${this.#label}: ${why}`, { cause: error });
  }
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1)
    throw new MmhError("E_BAD_OPTION", `${name} must be a positive integer, got ${value}`);
  return value;
}

/** Stop an answer's body without reading it. */
async function discard(response: Response): Promise<void> {
  await response.body?.cancel().catch(() => {});
}

/** Exactly `length` bytes of the body; more or fewer is E_IO. */
async function readBody(response: Response, length: number, label: string): Promise<Buffer> {
  const out = Buffer.allocUnsafe(length);
  let filled = 0;
  if (response.body) {
    for await (const piece of response.body) {
      if (filled + piece.length > length) {
        throw new MmhError("E_IO", `${label}: the server sent more than the ${length} bytes of the range`);
      }
      out.set(piece, filled);
      filled += piece.length;
    }
  }
  if (filled !== length)
    throw new MmhError("E_IO", `${label}: the answer ended after ${filled} of ${length} bytes`);
  return out;
}
