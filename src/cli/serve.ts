/** `mmh serve`: the HTTP service (src/server/), listening until SIGTERM or SIGINT. */
import { buildServer, type RouteModule } from "../server/app.ts";
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
  const config = await ConfigStore.open(
    args.config,
    args.store === undefined ? {} : { storeRoot: args.store },
  );
  const service = await buildServer({ config, routes: ROUTE_MODULES });
  const onHangUp = () => void config.reload();
  process.on("SIGHUP", onHangUp);
  try {
    const host = args.host ?? DEFAULT_HOST;
    await service.app.listen({ host, port: args.port ?? DEFAULT_PORT });
    config.watch();
    const address = service.app.server.address();
    const port = typeof address === "object" && address !== null ? address.port : (args.port ?? DEFAULT_PORT);
    stdout.write(`mmh: listening on http://${host.includes(":") ? `[${host}]` : host}:${port}\n`);
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
  }
}
