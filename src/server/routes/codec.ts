/**
 * POST /v1/compress and POST /v1/decompress: bodies stream in and out through the
 * library's compressStream and decompressStream, one chunk in memory at a time.
 */
import type { FastifyInstance, FastifyReply } from "fastify";
import { compressStream, decompressStream } from "../../index.ts";
import type { RequestState, ServiceContext } from "../app.ts";
import { ratioOf } from "../log.ts";
import { compressQuery, noQuery, parseQuery } from "./query.ts";

export const MMH_MEDIA_TYPE = "application/vnd.mmh";

/** The summary trailers, filled when the body has been sent. */
function summaryTrailers(reply: FastifyReply, state: RequestState): void {
  const field = (read: (s: NonNullable<RequestState["summary"]>) => string) => async () =>
    state.summary ? read(state.summary) : "";
  reply.trailer(
    "mmh-raw-bytes",
    field((s) => String(s.rawBytes)),
  );
  reply.trailer(
    "mmh-stored-bytes",
    field((s) => String(s.storedBytes)),
  );
  reply.trailer(
    "mmh-ratio",
    field((s) => String(ratioOf(s.rawBytes, s.storedBytes) ?? 0)),
  );
  reply.trailer(
    "mmh-sha256",
    field((s) => s.sha256),
  );
}

export function registerCodecRoutes(app: FastifyInstance, context: ServiceContext): void {
  app.post("/v1/compress", async (request, reply) => {
    const state = context.state(request);
    const query = parseQuery(compressQuery, request.query);
    const defaults = state.config.defaults;
    const codec = query.codec ?? defaults.codec;
    state.codec = codec;
    // A body of a declared length (not chunked): header-first model formats are recognised
    // from its first bytes, so the .mmh has the tensor table a file's would.
    const declared = Number(request.headers["content-length"]);
    const size =
      request.headers["transfer-encoding"] === undefined && Number.isSafeInteger(declared)
        ? declared
        : undefined;
    const encoded = compressStream(context.body(request), {
      size,
      codec,
      goal: query.goal ?? defaults.goal,
      level: query.level ?? defaults.level,
      chunkSize: query.chunkSize ?? defaults.chunkSize,
      threads: defaults.threads,
      signal: state.signal,
    });
    const pieces = (async function* () {
      yield* encoded;
      const summary = encoded.summary!;
      state.summary = {
        rawBytes: summary.rawBytes,
        storedBytes: summary.storedBytes,
        sha256: summary.sha256,
      };
      if (summary.storedBytes > 0) context.metrics.ratio.observe(summary.rawBytes / summary.storedBytes);
    })();
    // The header and the first chunk record: a bad option, or a body over the limit
    // within the first chunk, is still answered with its status.
    const body = await context.stream(request, pieces, 2);
    summaryTrailers(reply, state);
    return reply.type(MMH_MEDIA_TYPE).send(body);
  });

  app.post("/v1/decompress", async (request, reply) => {
    const state = context.state(request);
    parseQuery(noQuery, request.query);
    state.codec = "mmh";
    const decoded = decompressStream(context.body(request), {
      threads: state.config.defaults.threads,
      signal: state.signal,
    });
    const pieces = (async function* () {
      yield* decoded;
      const summary = decoded.summary!;
      state.summary = {
        rawBytes: summary.rawBytes,
        storedBytes: summary.storedBytes,
        sha256: summary.sha256,
      };
    })();
    // The first piece of content means the header and the first chunk checked out.
    const body = await context.stream(request, pieces, 1);
    summaryTrailers(reply, state);
    return reply.type("application/octet-stream").send(body);
  });
}
