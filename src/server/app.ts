/**
 * The HTTP service: a Fastify app whose hooks give every request its config snapshot,
 * request id, auth check, concurrency slot, metrics and one log line. Routes are modules
 * that take a RouteContext (context.ts); the service's own are in routes/.
 */
import { randomUUID } from "node:crypto";
import type { Socket } from "node:net";
import { Readable } from "node:stream";
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from "fastify";
import type { pino } from "pino";
import type { ConfigStore, ServerConfig } from "./config.ts";
import type { RouteContext } from "./context.ts";
import { errorBody, ServiceError, toServiceError } from "./errors.ts";
import { bearerMatches, limitBody, Slots, tooLarge } from "./limits.ts";
import { createLogger, type JobRecord, ratioOf } from "./log.ts";
import { Metrics } from "./metrics.ts";
import { buildOpenApi, type OpenApiPaths } from "./openapi.ts";
import { registerAnalyze } from "./routes/analyze.ts";
import { registerCodecRoutes } from "./routes/codec.ts";
import { registerProbes } from "./routes/probes.ts";

/** A module of routes: what registers them, and their OpenAPI paths for /openapi.json. */
export interface RouteModule {
  register(app: FastifyInstance, context: RouteContext): void;
  openApi?: OpenApiPaths;
}

export interface ServerOptions {
  config: ConfigStore;
  /** The logger; by default JSON lines on standard error at the config's log.level. */
  logger?: pino.Logger;
  /** Route modules beside the service's own (the gateway's goes here). */
  routes?: RouteModule[];
  /**
   * The text /metrics answers with; by default this server's registry. A worker of
   * `mmh serve --workers N` answers with the whole service's, from its primary.
   */
  metricsText?: () => Promise<string>;
}

/** Routes that answer without a token and without a concurrency slot (probes and scrapes). */
export const PUBLIC_ROUTES = new Set(["/healthz", "/readyz", "/metrics"]);
const UNLIMITED_ROUTES = new Set([...PUBLIC_ROUTES, "/openapi.json", "unmatched"]);

/** What the service knows of one request, from onRequest to the response's close. */
export interface RequestState {
  readonly id: string;
  /** The config the request started on; a reload meanwhile does not change it. */
  readonly config: ServerConfig;
  readonly route: string;
  readonly started: number;
  /** Aborted when the client goes away: the coder stops and frees its memory. */
  readonly signal: AbortSignal;
  codec: string | undefined;
  bytesIn: number;
  bytesOut: number;
  summary: { rawBytes: number; storedBytes: number; sha256: string } | undefined;
  error: ServiceError | undefined;
}

/** What the service's own routes get: the RouteContext and the request plumbing. */
export interface ServiceContext extends RouteContext {
  readonly metrics: Metrics;
  readonly store: ConfigStore;
  readonly logger: pino.Logger;
  /** What /metrics answers with. */
  metricsText(): Promise<string>;
  state(request: FastifyRequest): RequestState;
  /** The request body, counted (bytes in) and bounded by limits.bodyBytes. */
  body(request: FastifyRequest): AsyncGenerator<Uint8Array>;
  /**
   * Start a streamed response from `pieces`: the first `peek` pieces are taken before
   * anything is sent, so a failure there is answered with its status and JSON; a failure
   * after that destroys the connection, so a client never sees a clean end.
   */
  stream(request: FastifyRequest, pieces: AsyncGenerator<Uint8Array>, peek: number): Promise<Readable>;
}

export interface Service {
  readonly app: FastifyInstance;
  readonly metrics: Metrics;
  readonly config: ConfigStore;
  readonly logger: pino.Logger;
  /** The routes registered (method and URL pattern), as Fastify's onRoute saw them. */
  readonly routes: { method: string; url: string }[];
  /** Stop accepting, let requests in flight finish, stop watching the config. */
  close(): Promise<void>;
}

const REQUEST_ID = /^[\w.:@-]{1,128}$/;

function requestIdOf(request: { headers: Record<string, string | string[] | undefined> }): string {
  const given = request.headers["x-request-id"];
  return typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
}

export async function buildServer(options: ServerOptions): Promise<Service> {
  const store = options.config;
  const logger = options.logger ?? createLogger(store.current.log.level);
  const slots = new Slots();
  const metrics = new Metrics(() => slots.waiting);
  const states = new WeakMap<FastifyRequest, RequestState & { slot: boolean }>();
  const routes: { method: string; url: string }[] = [];

  store.onReload((result) => {
    metrics.configReloads.inc({ result: result.ok ? "success" : "failure" });
    if (result.ok) {
      logger.level = result.config.log.level;
      // New connections take the new limit; open ones keep the one they started with.
      app.server.timeout = result.config.limits.idleSeconds * 1000;
      logger.info({ generation: result.config.generation, file: store.file }, "config reloaded");
    } else {
      logger.error(
        { errorCode: result.error.code, generation: store.current.generation, file: store.file },
        `config reload failed, keeping generation ${store.current.generation}: ${result.error.message}`,
      );
    }
  });

  const app = Fastify({
    loggerInstance: logger,
    // The service writes its own line per request (finish, below).
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: false,
    genReqId: requestIdOf,
    // Uploads and downloads of models take as long as they take; no request timeout. A
    // connection on which nothing moves for limits.idleSeconds is closed instead (below).
    requestTimeout: 0,
    connectionTimeout: store.current.limits.idleSeconds * 1000,
    return503OnClosing: true,
    // A request Node's HTTP parser refuses (headers over its limit, a malformed line or
    // length) never reaches a route: answer it in the service's own JSON, then close.
    clientErrorHandler: (error: Error & { code?: string }, socket: Socket) => {
      // A client that resets or leaves between requests sent nothing malformed: it went away.
      if (!error.code?.startsWith("HPE_") || !socket.writable) {
        metrics.errors.inc({ code: "E_ABORTED" });
        socket.destroy();
        return;
      }
      metrics.errors.inc({ code: error.code === "HPE_HEADER_OVERFLOW" ? "E_LIMIT" : "E_BAD_OPTION" });
      const [status, text, failure] =
        error.code === "HPE_HEADER_OVERFLOW"
          ? [
              431,
              "Request Header Fields Too Large",
              new ServiceError(431, "E_LIMIT", "request headers over the limit"),
            ]
          : [
              400,
              "Bad Request",
              new ServiceError(
                400,
                "E_BAD_OPTION",
                `malformed HTTP request (${error.code ?? "parse error"})`,
              ),
            ];
      const body = JSON.stringify(errorBody(failure));
      socket.end(
        `HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    },
    frameworkErrors: (error, request, reply) => {
      const failure = new ServiceError(400, "E_BAD_OPTION", error.message);
      begin(request as FastifyRequest, reply as FastifyReply).error ??= failure;
      void (reply as FastifyReply).code(400).send(errorBody(failure));
    },
  }) as unknown as FastifyInstance;

  // A connection idle for limits.idleSeconds (a client that stalls part-way through its
  // body, or stops reading the answer, or waits for a slot that long) is closed: the
  // request's log line says E_TIMEOUT, and its slot and memory are freed.
  const requestOnSocket = new WeakMap<object, RequestState>();
  app.server.on("timeout", (socket: Socket) => {
    const state = requestOnSocket.get(socket);
    if (state)
      state.error ??= new ServiceError(
        408,
        "E_TIMEOUT",
        `nothing was sent or read for ${state.config.limits.idleSeconds} s`,
      );
    socket.destroy();
  });

  app.addHook("onRoute", (route) => {
    for (const method of [route.method].flat()) routes.push({ method, url: route.url });
  });

  // Bodies are streams the routes read themselves: nothing parses or buffers them.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", (_request, _payload, done) => done(null, undefined));

  function begin(request: FastifyRequest, reply: FastifyReply): RequestState & { slot: boolean } {
    const existing = states.get(request);
    if (existing) return existing;
    const controller = new AbortController();
    const state: RequestState & { slot: boolean } = {
      id: request.id,
      config: store.current,
      route: request.routeOptions.url ?? "unmatched",
      started: performance.now(),
      signal: controller.signal,
      codec: undefined,
      bytesIn: 0,
      bytesOut: 0,
      summary: undefined,
      error: undefined,
      slot: false,
    };
    states.set(request, state);
    reply.raw.setHeader("x-request-id", request.id);
    const res = reply.raw;
    requestOnSocket.set(request.raw.socket, state);
    res.once("close", () => {
      if (!res.writableFinished) {
        controller.abort(new ServiceError(499, "E_ABORTED", "the client closed the connection"));
        state.error ??= new ServiceError(499, "E_ABORTED", "the client closed the connection");
      }
      if (state.slot) {
        state.slot = false;
        slots.release(store.current.limits.concurrency);
        metrics.inFlight.dec();
      }
      // The status the client saw: a response cut short after its headers logs their status.
      finish(state, res.headersSent ? res.statusCode : (state.error?.status ?? 499));
    });
    return state;
  }

  function finish(state: RequestState, status: number): void {
    const seconds = (performance.now() - state.started) / 1000;
    metrics.requests.inc({ route: state.route, status: String(status) });
    metrics.duration.observe({ route: state.route }, seconds);
    if (state.error) metrics.errors.inc({ code: state.error.code });
    const record: JobRecord = {
      requestId: state.id,
      route: state.route,
      status,
      ...(state.codec !== undefined ? { codec: state.codec } : {}),
      bytesIn: state.bytesIn,
      bytesOut: state.bytesOut,
      ...(state.summary
        ? { ratio: ratioOf(state.summary.rawBytes, state.summary.storedBytes), sha256: state.summary.sha256 }
        : {}),
      durationMs: Math.round(seconds * 1e6) / 1e3,
      ...(state.error ? { errorCode: state.error.code } : {}),
    };
    if (status >= 500) logger.error(record, "request");
    else logger.info(record, "request");
  }

  function stateOf(request: FastifyRequest): RequestState {
    const state = states.get(request);
    if (!state) throw new ServiceError(500, "E_INTERNAL", "request without state");
    return state;
  }

  app.addHook("onRequest", async (request, reply) => {
    const state = begin(request, reply);
    const token = state.config.token;
    if (token !== undefined && !PUBLIC_ROUTES.has(state.route)) {
      if (!bearerMatches(request.headers.authorization, token)) {
        throw new ServiceError(401, "E_UNAUTHORIZED", "a valid bearer token is needed", {
          "www-authenticate": 'Bearer realm="mmh"',
        });
      }
    }
    if (!UNLIMITED_ROUTES.has(state.route)) {
      const { concurrency, queue } = state.config.limits;
      if (!(await slots.take(concurrency, queue, state.signal))) {
        if (state.signal.aborted) throw state.signal.reason;
        throw new ServiceError(
          503,
          "E_BUSY",
          `${concurrency} requests are in flight and ${queue} waiting already; retry later`,
          { "retry-after": "1" },
        );
      }
      if (state.signal.aborted) {
        // The client went away as its slot was granted: give it straight back.
        slots.release(store.current.limits.concurrency);
        throw state.signal.reason;
      }
      state.slot = true;
      metrics.inFlight.inc();
    }
    const declared = Number(request.headers["content-length"] ?? 0);
    if (declared > state.config.limits.bodyBytes) throw tooLarge(state.config.limits.bodyBytes);
  });

  app.setErrorHandler((error, request, reply) => {
    const state = begin(request, reply);
    const failure = toServiceError(error);
    state.error ??= failure;
    if (reply.raw.headersSent || reply.raw.destroyed) {
      reply.raw.destroy();
      return;
    }
    // A body left unread, refused or failed part-way (corrupt input in its first chunk), is
    // never drained: Node does not drain a body once it has been read from, so the next
    // request on a kept-alive connection would wait behind it forever, and the connection
    // would hold its socket and stop the server's close. Close the connection instead.
    if (failure.status === 401 || failure.status === 413 || failure.status === 503 || !request.raw.complete) {
      reply.header("connection", "close");
    }
    void reply.code(failure.status).headers(failure.headers).send(errorBody(failure));
  });

  app.setNotFoundHandler((request, reply) => {
    const failure = new ServiceError(404, "E_NOT_FOUND", `no route ${request.method} ${request.url}`);
    begin(request, reply).error ??= failure;
    void reply.code(404).send(errorBody(failure));
  });

  const context: ServiceContext = {
    metrics,
    store,
    logger,
    metricsText: options.metricsText ?? (() => metrics.registry.metrics()),
    state: stateOf,
    storeRoot: (request) => stateOf(request).config.store.root,
    countDecoded: (bytes) => metrics.gatewayDecoded.inc(bytes),
    body(request) {
      const state = stateOf(request);
      const labels = { route: state.route, codec: state.codec ?? "" };
      return limitBody(request.raw, state.config.limits.bodyBytes, (bytes) => {
        state.bytesIn += bytes;
        metrics.bytesIn.inc(labels, bytes);
      });
    },
    async stream(request, pieces, peek) {
      const state = stateOf(request);
      const labels = { route: state.route, codec: state.codec ?? "" };
      const head: Uint8Array[] = [];
      let ended = false;
      while (head.length < peek) {
        const next = await pieces.next();
        if (next.done) {
          ended = true;
          break;
        }
        head.push(next.value);
      }
      const counted = async function* () {
        try {
          const rest = ended ? [] : { [Symbol.asyncIterator]: () => pieces };
          for (const piece of head) yield count(piece);
          for await (const piece of rest) yield count(piece);
        } catch (error) {
          state.error ??= toServiceError(error);
          throw error;
        }
      };
      const count = (piece: Uint8Array) => {
        state.bytesOut += piece.length;
        metrics.bytesOut.inc(labels, piece.length);
        return piece;
      };
      return Readable.from(counted(), { objectMode: false, highWaterMark: 1 << 16 });
    },
  };

  const modules: RouteModule[] = [
    { register: (instance) => registerProbes(instance, context), openApi: undefined },
    { register: (instance) => registerCodecRoutes(instance, context) },
    { register: (instance) => registerAnalyze(instance, context) },
    ...(options.routes ?? []),
  ];
  for (const module of modules) module.register(app, context);
  const spec = buildOpenApi(options.routes ?? []);
  app.get("/openapi.json", async (_request, reply) => reply.type("application/json").send(spec));
  await app.ready();

  return {
    app,
    metrics,
    config: store,
    logger,
    routes,
    async close() {
      store.close();
      await app.close();
    },
  };
}
