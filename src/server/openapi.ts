/**
 * The OpenAPI 3.1 description served at /openapi.json: the service's own routes, and the
 * paths of every route module registered beside them (the gateway's).
 */
import { VERSION } from "../index.ts";
import { codecNames, GOALS } from "./config.ts";

/** An OpenAPI paths object: path, then method, then operation. */
export type OpenApiPaths = Record<string, Record<string, unknown>>;

const errorResponse = (description: string) => ({
  description,
  content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
});

const failures = {
  "400": errorResponse("A bad query value (E_BAD_OPTION)"),
  "401": errorResponse("No valid bearer token, when auth.tokenFile is configured (E_UNAUTHORIZED)"),
  "413": errorResponse("The body is over limits.bodyBytes (E_LIMIT)"),
  "503": errorResponse(
    "limits.concurrency requests are in flight and limits.queue wait; see Retry-After (E_BUSY)",
  ),
};

const summaryTrailers =
  "Trailers: mmh-raw-bytes, mmh-stored-bytes, mmh-ratio and mmh-sha256 (the content's SHA-256).";

const levelParameter = {
  name: "level",
  in: "query",
  schema: { type: "integer" },
  description: "codec level (defaults.level)",
};
const goalParameter = {
  name: "goal",
  in: "query",
  schema: { type: "string", enum: [...GOALS] },
  description: "what auto optimises (defaults.goal)",
};

function ownPaths(): OpenApiPaths {
  return {
    "/v1/compress": {
      post: {
        summary: "Compress the body into an .mmh stream",
        description: `The body streams in and the container streams out (chunked). ${summaryTrailers}`,
        parameters: [
          {
            name: "codec",
            in: "query",
            schema: { type: "string", enum: codecNames() },
            description: "codec (defaults.codec)",
          },
          levelParameter,
          goalParameter,
          {
            name: "chunkSize",
            in: "query",
            schema: { type: "string" },
            description: "raw bytes per chunk, 4K to 64M (defaults.chunkSize)",
          },
        ],
        requestBody: { required: true, content: { "application/octet-stream": {} } },
        responses: {
          "200": { description: "The .mmh container", content: { "application/vnd.mmh": {} } },
          ...failures,
        },
      },
    },
    "/v1/decompress": {
      post: {
        summary: "Decompress an .mmh stream, checking every chunk's CRC-32",
        description:
          "A failure before the first byte of content is a 422 with its code; a failure later " +
          `aborts the connection, so a client never sees a clean end. ${summaryTrailers}`,
        requestBody: { required: true, content: { "application/vnd.mmh": {} } },
        responses: {
          "200": { description: "The content", content: { "application/octet-stream": {} } },
          "422": errorResponse("Corrupt input (E_CORRUPT, E_CHECKSUM, E_TRUNCATED, E_UNSUPPORTED)"),
          ...failures,
        },
      },
    },
    "/v1/analyze": {
      post: {
        summary: "Analyse the body: per region its dtype, field entropies and each codec's ratio",
        parameters: [levelParameter, goalParameter],
        requestBody: { required: true, content: { "application/octet-stream": {} } },
        responses: {
          "200": { description: "The analysis", content: { "application/json": {} } },
          ...failures,
        },
      },
    },
    "/healthz": { get: { summary: "Liveness", responses: { "200": { description: "Alive" } } } },
    "/readyz": {
      get: {
        summary: "Readiness, and the config generation with when it was loaded",
        responses: { "200": { description: "Ready" }, "503": { description: "Shutting down" } },
      },
    },
    "/metrics": {
      get: {
        summary: "Prometheus metrics",
        responses: { "200": { description: "Metrics", content: { "text/plain": {} } } },
      },
    },
    "/openapi.json": {
      get: {
        summary: "This description",
        responses: { "200": { description: "OpenAPI 3.1", content: { "application/json": {} } } },
      },
    },
  };
}

/** Every GET is also served as HEAD (Fastify's exposeHeadRoutes): say so in the spec. */
function withHead(paths: OpenApiPaths): OpenApiPaths {
  const out: OpenApiPaths = {};
  for (const [path, operations] of Object.entries(paths)) {
    const get = operations.get as { summary?: string; responses?: unknown } | undefined;
    out[path] =
      get && !operations.head
        ? {
            ...operations,
            head: { summary: `${get.summary ?? path} (headers only)`, responses: get.responses },
          }
        : operations;
  }
  return out;
}

export function buildOpenApi(modules: { openApi?: OpenApiPaths }[]): Record<string, unknown> {
  const paths: OpenApiPaths = ownPaths();
  for (const module of modules) {
    for (const [path, operations] of Object.entries(module.openApi ?? {})) {
      paths[path] = { ...paths[path], ...operations };
    }
  }
  return {
    openapi: "3.1.0",
    info: { title: "mmh serve", version: VERSION, description: "Lossless compression for AI/ML data" },
    components: {
      schemas: {
        Error: {
          type: "object",
          required: ["error"],
          properties: {
            error: {
              type: "object",
              required: ["code", "message"],
              properties: { code: { type: "string" }, message: { type: "string" } },
            },
          },
        },
      },
      securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
    },
    paths: withHead(paths),
  };
}
