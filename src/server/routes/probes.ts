/** GET /healthz, /readyz and /metrics: open to probes and scrapers, without a token or a slot. */
import type { FastifyInstance } from "fastify";
import { VERSION } from "../../index.ts";
import type { ServiceContext } from "../app.ts";

export function registerProbes(app: FastifyInstance, context: ServiceContext): void {
  app.get("/healthz", async () => ({ status: "ok" }));

  app.get("/readyz", async () => {
    const config = context.store.current;
    return {
      status: "ready",
      version: VERSION,
      config: {
        file: context.store.file ?? null,
        generation: config.generation,
        loadedAt: config.loadedAt.toISOString(),
      },
    };
  });

  app.get("/metrics", async (_request, reply) => {
    const text = await context.metricsText();
    return reply.type(context.metrics.registry.contentType).send(text);
  });
}
