/**
 * The gateway of `mmh serve`: compressed models served as the plain files they hold.
 * `GET /models/{path}` answers with the content of `{path}.mmh` under the store root, or
 * with the file `{file}` of a folder archive `{archive}.mmh` for `/models/{archive}/{file}`,
 * with ranges, ETags and conditional requests, so that any HTTP client that reads model
 * files by ranges (huggingface_hub, the GGUF readers, curl -r) reads them unchanged.
 *
 * It is a client of the public API only: each request opens the .mmh file, decodes the
 * chunks its range needs, one at a time, and closes the file when the response ends or
 * the client goes away.
 */

import { createHash, type Hash } from "node:crypto";
import { realpath, stat } from "node:fs/promises";
import { join, sep } from "node:path";
import { Readable } from "node:stream";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { type FileEntry, MmhError, type MmhFile, open } from "../index.ts";
import type { RouteContext } from "./context.ts";

/** The status each library error code answers with. */
const STATUS_OF_CODE: Record<string, number> = {
  E_NOT_FOUND: 404,
  E_CORRUPT: 422,
  E_CHECKSUM: 422,
  E_TRUNCATED: 422,
  E_UNSUPPORTED: 422,
  E_UNSAFE_PATH: 403,
  E_LIMIT: 422,
};

/**
 * A chunk longer than this (the format's largest chunk: longer is a run of one pattern,
 * docs/FORMAT.md) is decoded in pieces of RUN_PIECE bytes, as the reader's own streams do.
 */
const WHOLE_CHUNK_LIMIT = 64 << 20;
const RUN_PIECE = 16 << 20;

/** A refusal the gateway answers with, as `{error: {code, message}}`. */
class GatewayError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** What a request resolved to: an open file and the content range that is the served file. */
interface Target {
  file: MmhFile;
  /** Where the served file's bytes start in the content, and how many there are. */
  base: number;
  size: number;
  sha256: string;
  mtime: Date;
  /** The .mmh file's real path, kept out of messages sent to clients. */
  realPath: string;
  /** The request's path, as messages name it. */
  name: string;
}

/**
 * The request path after `/models/`, percent-decoded exactly once and checked: relative,
 * `/`-separated, no empty, `.` or `..` segment, no NUL, no backslash. Anything else is a
 * 403 (E_UNSAFE_PATH) before the file system is touched.
 */
export function modelPath(rawPath: string): string[] {
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    throw new GatewayError(400, "E_BAD_REQUEST", "the path is not valid percent-encoded UTF-8");
  }
  const unsafe = (why: string) => new GatewayError(403, "E_UNSAFE_PATH", `path refused: ${why}`);
  if (decoded.length === 0) throw new GatewayError(404, "E_NOT_FOUND", "no model path given");
  if (decoded.includes("\0")) throw unsafe("it holds a NUL");
  if (decoded.includes("\\")) throw unsafe("it holds a backslash");
  if (decoded.startsWith("/")) throw unsafe("it is absolute");
  const segments = decoded.split("/");
  for (const segment of segments) {
    if (segment === "" || segment === "." || segment === "..")
      throw unsafe("it holds an empty, '.' or '..' segment");
  }
  return segments;
}

/** The raw (still percent-encoded) part of the request's path that the `*` of the route matched. */
function rawWildcard(request: FastifyRequest): string {
  const url = request.url;
  const query = url.indexOf("?");
  const path = query === -1 ? url : url.slice(0, query);
  const prefix = request.routeOptions.url?.replace(/\*$/, "") ?? "/models/";
  if (!path.startsWith(prefix)) throw new GatewayError(404, "E_NOT_FOUND", "not a model path");
  return path.slice(prefix.length);
}

function isInside(root: string, path: string): boolean {
  return path.startsWith(root.endsWith(sep) ? root : root + sep);
}

/**
 * The real path of `candidate` when it is a regular file whose real path is under
 * `root` (itself real), undefined when there is no such file. A file that resolves
 * outside the root (a link out of it) is refused.
 */
async function confined(root: string, candidate: string): Promise<{ path: string; mtime: Date } | undefined> {
  let real: string;
  try {
    real = await realpath(candidate);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // No such file; a name longer than the system allows, or a loop of links, cannot be one.
    if (code === "ENOENT" || code === "ENOTDIR" || code === "ENAMETOOLONG" || code === "ELOOP")
      return undefined;
    throw error;
  }
  if (!isInside(root, real))
    throw new GatewayError(403, "E_UNSAFE_PATH", "path refused: it leaves the store");
  const info = await stat(real);
  return info.isFile() ? { path: real, mtime: info.mtime } : undefined;
}

async function openChecked(path: string, name: string): Promise<MmhFile> {
  try {
    return await open(path);
  } catch (error) {
    throw fromLibrary(error, path, name);
  }
}

/** A library error as the gateway answers it; its message never shows the store's real paths. */
function fromLibrary(error: unknown, realPath: string, name: string): unknown {
  if (!(error instanceof MmhError)) return error;
  const status = STATUS_OF_CODE[error.code] ?? 500;
  return new GatewayError(status, error.code, error.message.replaceAll(realPath, `${name}.mmh`));
}

/**
 * Resolve the request to a served file: `{path}.mmh` when there is one, else the file
 * `{rest}` of the archive `{prefix}.mmh`, the longest prefix first.
 */
async function resolveTarget(root: string, segments: string[]): Promise<Target> {
  const name = segments.join("/");
  const whole = await confined(root, join(root, `${name}.mmh`));
  if (whole) {
    const file = await openChecked(whole.path, name);
    if (file.format === "folder") {
      await file.close();
      throw new GatewayError(
        404,
        "E_NOT_FOUND",
        `${name} is a folder archive: its files are served as ${name}/{path}`,
      );
    }
    return {
      file,
      base: 0,
      size: file.size,
      sha256: file.sha256,
      mtime: whole.mtime,
      realPath: whole.path,
      name,
    };
  }
  for (let cut = segments.length - 1; cut >= 1; cut--) {
    const archiveName = segments.slice(0, cut).join("/");
    const archive = await confined(root, join(root, `${archiveName}.mmh`));
    if (!archive) continue;
    const file = await openChecked(archive.path, archiveName);
    const inner = segments.slice(cut).join("/");
    const entry = file.format === "folder" ? file.entries.find((e) => e.path === inner) : undefined;
    if (entry?.type !== "file") {
      await file.close();
      throw new GatewayError(404, "E_NOT_FOUND", `${archiveName} holds no file ${inner}`);
    }
    const fileEntry = entry as FileEntry;
    return {
      file,
      base: fileEntry.offset,
      size: fileEntry.size,
      sha256: fileEntry.sha256,
      mtime: archive.mtime,
      realPath: archive.path,
      name,
    };
  }
  throw new GatewayError(404, "E_NOT_FOUND", `no model ${name}`);
}

/** A byte range of the served file, both ends included. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * The Range header against a file of `size` bytes (RFC 9110 §14.2): undefined when it is
 * to be ignored (absent, another unit, malformed, or an empty file), "unsatisfiable"
 * when no range overlaps the file. Several ranges are answered as the one range that
 * covers them all (RFC 9110 allows coalescing), so the answer is never multipart.
 */
export function parseRange(
  header: string | undefined,
  size: number,
): ByteRange | "unsatisfiable" | undefined {
  if (header === undefined || size === 0) return undefined;
  const match = /^\s*bytes\s*=\s*(.+)$/i.exec(header);
  if (!match) return undefined;
  let covering: ByteRange | undefined;
  for (const spec of match[1].split(",")) {
    const part = /^\s*(\d*)\s*-\s*(\d*)\s*$/.exec(spec);
    if (!part || (part[1] === "" && part[2] === "")) return undefined;
    let range: ByteRange | undefined;
    if (part[1] === "") {
      const suffix = Number(part[2]);
      if (suffix > 0) range = { start: Math.max(0, size - suffix), end: size - 1 };
    } else {
      const start = Number(part[1]);
      const last = part[2] === "" ? Number.POSITIVE_INFINITY : Number(part[2]);
      if (last < start) return undefined;
      if (start < size) range = { start, end: Math.min(last, size - 1) };
    }
    if (range)
      covering = covering
        ? { start: Math.min(covering.start, range.start), end: Math.max(covering.end, range.end) }
        : range;
  }
  return covering ?? "unsatisfiable";
}

/** The entity-tags of an If-Match / If-None-Match header ("*" as itself). */
function entityTags(header: string): string[] {
  return header.match(/\*|(?:W\/)?"[^"]*"/g) ?? [];
}

/** HTTP dates have whole seconds. */
function seconds(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}

function httpDate(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  const time = Date.parse(header);
  return Number.isNaN(time) ? undefined : Math.floor(time / 1000);
}

type Precondition = "proceed" | "not-modified" | "failed";

/** RFC 9110 §13.2.2: If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since, in that order. */
function preconditions(request: FastifyRequest, etag: string, mtime: Date): Precondition {
  const headers = request.headers;
  const ifMatch = headers["if-match"];
  if (ifMatch !== undefined) {
    const tags = entityTags(ifMatch);
    if (!tags.includes("*") && !tags.includes(etag)) return "failed";
  } else {
    const since = httpDate(headers["if-unmodified-since"]);
    if (since !== undefined && seconds(mtime) > since) return "failed";
  }
  const ifNoneMatch = headers["if-none-match"];
  if (ifNoneMatch !== undefined) {
    // Weak comparison: W/"x" matches "x".
    const tags = entityTags(ifNoneMatch).map((tag) => tag.replace(/^W\//, ""));
    if (tags.includes("*") || tags.includes(etag)) return "not-modified";
  } else {
    const since = httpDate(headers["if-modified-since"]);
    if (since !== undefined && seconds(mtime) <= since) return "not-modified";
  }
  return "proceed";
}

/** If-Range (RFC 9110 §13.1.5): the range applies only while the file is the one the client has. */
function rangeStillValid(header: string | undefined, etag: string, mtime: Date): boolean {
  if (header === undefined) return true;
  const value = header.trim();
  if (value.startsWith('"') || value.startsWith("W/")) return value === etag;
  const date = httpDate(value);
  return date !== undefined && date === seconds(mtime);
}

/**
 * The served file's bytes [start, end] as a stream, decoding one chunk per piece (a run
 * longer than 64 MiB in 16 MiB pieces), so memory stays at one chunk and a range decodes
 * only the chunks that hold it. The first piece is decoded before the stream is made, so
 * a corrupt first chunk is an error response rather than a cut one. With `checkHash`
 * (the whole file is sent), the bytes are checked against the file's SHA-256 before the
 * last piece is sent: a mismatch cuts the response instead of ending it cleanly.
 */
class RangeStream extends Readable {
  readonly #target: Target;
  readonly #end: number;
  readonly #countDecoded: (bytes: number) => void;
  readonly #hash: Hash | undefined;
  #position: number;
  #pending: Promise<Uint8Array | undefined> | undefined;

  constructor(target: Target, range: ByteRange, countDecoded: (bytes: number) => void, checkHash: boolean) {
    super({ highWaterMark: 1 });
    this.#target = target;
    this.#position = target.base + range.start;
    this.#end = target.base + range.end + 1;
    this.#countDecoded = countDecoded;
    this.#hash = checkHash ? createHash("sha256") : undefined;
  }

  /** Decode the next piece; undefined once the range is done. */
  async nextPiece(): Promise<Uint8Array | undefined> {
    if (this.#position >= this.#end) return undefined;
    const { file } = this.#target;
    const chunks = file.chunks;
    let lo = 0;
    let hi = chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (chunks[mid].rawOffset <= this.#position) lo = mid;
      else hi = mid - 1;
    }
    const chunk = chunks[lo];
    const chunkEnd = chunk.rawOffset + chunk.rawLength;
    const whole = chunk.rawLength <= WHOLE_CHUNK_LIMIT;
    const stop = Math.min(this.#end, chunkEnd, whole ? chunkEnd : this.#position + RUN_PIECE);
    if (stop <= this.#position)
      throw new GatewayError(422, "E_CORRUPT", `${this.#target.name}: no chunk holds byte ${this.#position}`);
    let piece: Uint8Array;
    try {
      piece = await file.readRange(this.#position, stop - this.#position);
    } catch (error) {
      throw fromLibrary(error, this.#target.realPath, this.#target.name);
    }
    // readRange decodes the whole chunk to return part of it (a run only what is asked for).
    this.#countDecoded(whole ? chunk.rawLength : piece.length);
    this.#position = stop;
    if (this.#hash) {
      this.#hash.update(piece);
      if (stop === this.#end && this.#hash.digest("hex") !== this.#target.sha256)
        throw new GatewayError(
          422,
          "E_CHECKSUM",
          `${this.#target.name}: the decoded bytes do not match its SHA-256`,
        );
    }
    return piece;
  }

  /** Start with a piece already decoded (the first one). */
  prime(first: Uint8Array | undefined): void {
    this.#pending = Promise.resolve(first);
  }

  override _read(): void {
    const next = this.#pending ?? this.nextPiece();
    this.#pending = undefined;
    next.then(
      (piece) => {
        if (this.destroyed) return;
        this.push(piece ?? null);
      },
      (error: unknown) => this.destroy(error as Error),
    );
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#target.file.close().then(
      () => callback(error),
      () => callback(error),
    );
  }
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(", ") : value;
}

function sendError(reply: FastifyReply, error: GatewayError): FastifyReply {
  return reply
    .code(error.status)
    .header("content-type", "application/json; charset=utf-8")
    .send({ error: { code: error.code, message: error.message } });
}

function contentType(name: string): string {
  const lower = name.toLowerCase();
  if (lower.endsWith(".json")) return "application/json";
  if (lower.endsWith(".txt") || lower.endsWith(".md")) return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

async function serve(
  request: FastifyRequest,
  reply: FastifyReply,
  context: RouteContext,
): Promise<FastifyReply> {
  const root = context.storeRoot(request);
  if (root === undefined)
    throw new GatewayError(
      404,
      "E_NOT_FOUND",
      "no model store is configured (set a store root to serve models)",
    );
  const segments = modelPath(rawWildcard(request));
  let realRoot: string;
  try {
    realRoot = await realpath(root);
  } catch {
    throw new GatewayError(404, "E_NOT_FOUND", "the model store's folder does not exist");
  }
  const target = await resolveTarget(realRoot, segments);
  let handedOver = false;
  try {
    const etag = `"${target.sha256}"`;
    reply
      .header("accept-ranges", "bytes")
      .header("etag", etag)
      .header("last-modified", target.mtime.toUTCString())
      .header("content-type", contentType(target.name))
      .header("x-content-type-options", "nosniff");
    const condition = preconditions(request, etag, target.mtime);
    if (condition === "failed")
      throw new GatewayError(412, "E_PRECONDITION", "the file does not match the request's precondition");
    if (condition === "not-modified") return reply.code(304).send();

    // Range handling is defined for GET only (RFC 9110 §14.2): HEAD describes the whole file.
    const isGet = request.method === "GET";
    const range =
      isGet && rangeStillValid(headerValue(request.headers["if-range"]), etag, target.mtime)
        ? parseRange(request.headers.range, target.size)
        : undefined;
    if (range === "unsatisfiable") {
      reply.header("content-range", `bytes */${target.size}`);
      throw new GatewayError(
        416,
        "E_RANGE",
        `no range of ${request.headers.range} is in the file (${target.size} bytes)`,
      );
    }
    const served = range ?? { start: 0, end: target.size - 1 };
    const length = served.end - served.start + 1;
    reply.header("content-length", String(length));
    if (range) {
      reply.code(206).header("content-range", `bytes ${range.start}-${range.end}/${target.size}`);
    }
    if (!isGet || length === 0) return reply.send();

    const stream = new RangeStream(
      target,
      served,
      (bytes) => context.countDecoded(bytes),
      range === undefined,
    );
    handedOver = true;
    try {
      stream.prime(await stream.nextPiece());
    } catch (error) {
      for (const name of ["content-length", "content-range", "etag", "last-modified", "accept-ranges"])
        reply.removeHeader(name);
      stream.destroy();
      throw error;
    }
    // A client that goes away destroys the response, and with it the stream: decoding stops.
    reply.raw.once("close", () => stream.destroy());
    return reply.send(stream);
  } finally {
    if (!handedOver) await target.file.close();
  }
}

/** Registers `GET /models/*` and `HEAD /models/*` on `app`. */
export function registerGateway(app: FastifyInstance, context: RouteContext): void {
  app.route({
    method: ["GET", "HEAD"],
    url: "/models/*",
    exposeHeadRoute: false,
    handler: async (request, reply) => {
      try {
        return await serve(request, reply, context);
      } catch (error) {
        if (error instanceof GatewayError) return sendError(reply, error);
        throw error;
      }
    },
  });
}

/** The error body every route answers with: the schema openapi.ts declares once. */
const errorBody = {
  description: "`{error: {code, message}}`; `code` is stable, the message is for people.",
  content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
};

const fileHeaders = {
  "Content-Length": {
    description: "Bytes of the body: the original file's size, or the range's length.",
    schema: { type: "integer" },
  },
  ETag: {
    description: 'A strong entity-tag: the SHA-256 of the original file, quoted ("<64 hex digits>").',
    schema: { type: "string" },
  },
  "Last-Modified": { description: "The .mmh file's modification time.", schema: { type: "string" } },
  "Accept-Ranges": { description: "Always `bytes`.", schema: { type: "string", const: "bytes" } },
};

const pathParameter = {
  name: "path",
  in: "path",
  required: true,
  description:
    "The file's path under the store, `/`-separated (it may hold `/`, which OpenAPI's templating " +
    "cannot express): `{path}` serves `{path}.mmh`; `{archive}/{file}` serves the file `{file}` of " +
    "the folder archive `{archive}.mmh`. Percent-decoded once; `..`, `.`, empty segments, absolute " +
    "paths, NUL and backslashes are refused (403), as is a file whose real path leaves the store.",
  schema: { type: "string" },
};

const fileResponses = (withBody: boolean) => ({
  "200": {
    description: "The whole original file.",
    headers: fileHeaders,
    ...(withBody
      ? { content: { "application/octet-stream": { schema: { type: "string", format: "binary" } } } }
      : {}),
  },
  ...(withBody
    ? {
        "206": {
          description:
            "One range of the file (`bytes=a-b`, `bytes=a-`, `bytes=-n`). Several ranges are answered " +
            "as the single range that covers them all, never as multipart/byteranges.",
          headers: {
            ...fileHeaders,
            "Content-Range": { description: "`bytes a-b/SIZE`", schema: { type: "string" } },
          },
          content: { "application/octet-stream": { schema: { type: "string", format: "binary" } } },
        },
      }
    : {}),
  "304": {
    description: "If-None-Match matched the ETag (or If-Modified-Since is not older than Last-Modified).",
    headers: { ETag: fileHeaders.ETag, "Last-Modified": fileHeaders["Last-Modified"] },
  },
  "400": { ...errorBody, description: "E_BAD_REQUEST: the path is not valid percent-encoding." },
  "403": { ...errorBody, description: "E_UNSAFE_PATH: the path could leave the store." },
  "404": {
    ...errorBody,
    description: "E_NOT_FOUND: no such file or archive member, or no store is configured.",
  },
  "412": { ...errorBody, description: "E_PRECONDITION: If-Match or If-Unmodified-Since failed." },
  ...(withBody
    ? {
        "416": {
          ...errorBody,
          description: "E_RANGE: no requested range overlaps the file.",
          headers: { "Content-Range": { description: "`bytes */SIZE`", schema: { type: "string" } } },
        },
      }
    : {}),
  "422": {
    ...errorBody,
    description:
      "E_CORRUPT, E_CHECKSUM, E_TRUNCATED, E_UNSUPPORTED: the .mmh file cannot be read. Found after " +
      "the headers were sent, the response is cut instead (the connection is closed before its end).",
  },
});

/** The OpenAPI 3.1 `paths` of the gateway's routes. */
export const gatewayOpenApi = {
  "/models/{path}": {
    get: {
      operationId: "getModelFile",
      summary: "Read a stored file as the original, whole or by range",
      description:
        "Decodes only the chunks the range needs. Supports Range, If-Range, If-None-Match, " +
        "If-Modified-Since, If-Match and If-Unmodified-Since.",
      parameters: [pathParameter],
      responses: fileResponses(true),
    },
    head: {
      operationId: "headModelFile",
      summary: "The headers a GET of the whole file would have (Range is ignored)",
      parameters: [pathParameter],
      responses: fileResponses(false),
    },
  },
} as const;
