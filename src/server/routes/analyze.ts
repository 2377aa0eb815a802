/**
 * POST /v1/analyze: analysis reads a file at several places, so the body is spooled to a
 * temporary file first (bounded by limits.bodyBytes) and removed afterwards.
 */
import { createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { FastifyInstance } from "fastify";
import { analyze, type Goal } from "../../index.ts";
import type { ServiceContext } from "../app.ts";
import { analyzeQuery, parseQuery } from "./query.ts";

export function registerAnalyze(app: FastifyInstance, context: ServiceContext): void {
  app.post("/v1/analyze", async (request, reply) => {
    const state = context.state(request);
    const query = parseQuery(analyzeQuery, request.query);
    const folder = await mkdtemp(join(tmpdir(), "mmh-analyze-"));
    let json: string;
    try {
      const file = join(folder, "body");
      await pipeline(Readable.from(context.body(request)), createWriteStream(file), { signal: state.signal });
      state.signal.throwIfAborted();
      const report = await analyze(file, {
        goal: (query.goal ?? state.config.defaults.goal) as Goal,
        level: query.level ?? state.config.defaults.level,
      });
      json = JSON.stringify(report);
    } finally {
      // Removed before the answer goes out, so a client that has it finds no spool left.
      await rm(folder, { recursive: true, force: true });
    }
    state.bytesOut = Buffer.byteLength(json);
    context.metrics.bytesOut.inc({ route: state.route, codec: "" }, state.bytesOut);
    return reply.type("application/json").send(json);
  });
}
