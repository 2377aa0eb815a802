/** `mmh serve`: the HTTP service (src/server/), listening until SIGTERM or SIGINT. */
import cluster from "node:cluster";
import { buildServer, type RouteModule } from "../server/app.ts";
import { clusterMetricsText, joinCluster, runPrimary } from "../server/cluster.ts";
import { ConfigStore } from "../server/config.ts";
import { gatewayOpenApi, registerGateway } from "../server/gateway.ts";
import type { CliArgs } from "./args.ts";

/** Route modules served beside the service's own routes: the gateway (`/models/*`). */
export const ROUTE_MODULES: RouteModule[] = [{ register: registerGateway, openApi: gatewayOpenApi }];

export const DEFAULT_HOST = "127.0.0.1";
export const DEFAULT_PORT = 8633;

interface Out {
  write(text: string): unknown;
}

/**
 * Serve until `signal` aborts (the command's SIGTERM and SIGINT), then stop accepting,
 * let the requests in flight finish, and resolve with 0. SIGHUP reloads the config.
 */
export async function runServe(args: CliArgs, stdout: Out, signal: AbortSignal): Promise<number> {
  const inCluster = cluster.isWorker;
  if (!inCluster && (args.workers ?? 1) > 1) {
    // Check the config before forking, so a bad one fails once, with its error.
    await ConfigStore.open(args.config, args.store === undefined ? {} : { storeRoot: args.store }).then((c) =>
      c.close(),
    );
    return await runPrimary(args.workers ?? 1, stdout, signal);
  }
  const config = await ConfigStore.open(
    args.config,
    args.store === undefined ? {} : { storeRoot: args.store },
  );
  const service = await buildServer({
    config,
    routes: ROUTE_MODULES,
    ...(inCluster ? { metricsText: clusterMetricsText } : {}),
  });
  const onHangUp = () => void config.reload();
  process.on("SIGHUP", onHangUp);
  try {
    const host = args.host ?? DEFAULT_HOST;
    await service.app.listen({ host, port: args.port ?? DEFAULT_PORT });
    config.watch();
    const address = service.app.server.address();
    const port = typeof address === "object" && address !== null ? address.port : (args.port ?? DEFAULT_PORT);
    const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
    if (inCluster) joinCluster(service.metrics.registry, url);
    else stdout.write(`mmh: listening on ${url}\n`);
    if (!signal.aborted) {
      await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
    }
    service.logger.info("draining requests in flight");
    await service.close();
    service.logger.info("stopped");
    return 0;
  } catch (error) {
    await service.close().catch(() => {});
    throw error;
  } finally {
    process.off("SIGHUP", onHangUp);
    // A worker's channel to its primary would keep it alive.
    if (inCluster) cluster.worker?.disconnect();
  }
}
