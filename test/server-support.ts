/** A real server on a free port for the service's tests, and an HTTP client that sees trailers. */

import { mkdtempSync, writeFileSync } from "node:fs";
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { buildServer, type RouteModule, type Service } from "../src/server/app.ts";
import { type ConfigFile, ConfigStore } from "../src/server/config.ts";
import type { IdleCollector } from "../src/server/idle.ts";

export interface TestServer {
  service: Service;
  port: number;
  url: string;
  dir: string;
  configFile: string;
  /** Every log line written, parsed. */
  logs: Record<string, unknown>[];
  logText(): string;
  writeConfig(config: ConfigFile | string): void;
  close(): Promise<void>;
}

export async function startServer(
  config: ConfigFile = {},
  routes: RouteModule[] = [],
  collector?: IdleCollector,
): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), "mmh-serve-test-"));
  const configFile = join(dir, "config.json");
  const writeConfig = (value: ConfigFile | string) =>
    writeFileSync(configFile, typeof value === "string" ? value : JSON.stringify(value));
  writeConfig(config);
  const raw: string[] = [];
  const logger = pino(
    { level: "info", redact: { paths: ["req.headers.authorization"], censor: "[redacted]" } },
    { write: (line: string) => void raw.push(line) },
  );
  const store = await ConfigStore.open(configFile);
  const service = await buildServer({ config: store, logger, routes, collector });
  store.watch(50);
  await service.app.listen({ host: "127.0.0.1", port: 0 });
  const address = service.app.server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    service,
    port,
    url: `http://127.0.0.1:${port}`,
    dir,
    configFile,
    get logs() {
      return raw.map((line) => JSON.parse(line) as Record<string, unknown>);
    },
    logText: () => raw.join(""),
    writeConfig,
    close: () => service.close(),
  };
}

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  trailers: Record<string, string | undefined>;
  body: Buffer;
}

/** A request with node:http; `body` pieces are written one by one (chunked, no Content-Length). */
export function send(
  port: number,
  method: string,
  path: string,
  body?: Buffer | Buffer[],
  headers: Record<string, string> = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port, method, path, headers }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (part: Buffer) => parts.push(part));
      res.on("error", reject);
      res.on("aborted", () => reject(new Error("response aborted")));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          trailers: res.trailers,
          body: Buffer.concat(parts),
        }),
      );
    });
    req.on("error", reject);
    if (Array.isArray(body)) {
      for (const piece of body) req.write(piece);
      req.end();
    } else req.end(body);
  });
}

/** The value of one sample in the server's /metrics text (0 when absent). */
export async function metric(url: string, name: string, labels = ""): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ""} `));
  return line === undefined ? 0 : Number(line.split(" ").at(-1));
}

/** Wait until `check` is true, polling every 50 ms for at most `ms`. */
export async function until(
  check: () => Promise<boolean> | boolean,
  ms = 10_000,
  what: string | (() => string) = "condition",
) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${typeof what === "string" ? what : what()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** GET `url` and parse its JSON body. */
// biome-ignore lint/suspicious/noExplicitAny: test answers are checked field by field
export async function getJson(url: string): Promise<any> {
  return (await fetch(url)).json();
}
