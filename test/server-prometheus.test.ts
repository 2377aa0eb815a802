/** A real Prometheus server scrapes the service (Debian's `prometheus` package; .ci/run installs it). */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { getJson, send, startServer, until } from "./server-support.ts";

const found = spawnSync("prometheus", ["--version"], { stdio: "ignore" });
const missing = found.error !== undefined || found.status !== 0;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.on("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

test("Prometheus scrapes /metrics and sums mmh_bytes_in_total to the bytes sent", {
  skip: missing ? "the prometheus binary was not found (apt-get install prometheus)" : false,
  timeout: 90_000,
}, async () => {
  const server = await startServer();
  const dir = mkdtempSync(join(tmpdir(), "mmh-prometheus-"));
  const port = await freePort();
  writeFileSync(
    join(dir, "prometheus.yml"),
    [
      "global:",
      "  scrape_interval: 1s",
      "scrape_configs:",
      "  - job_name: mmh",
      "    static_configs:",
      `      - targets: ["127.0.0.1:${server.port}"]`,
      "",
    ].join("\n"),
  );
  const prometheus = spawn(
    "prometheus",
    [
      `--config.file=${join(dir, "prometheus.yml")}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { stdio: "ignore" },
  );
  try {
    const sizes = [100_000, 12_345, 1];
    for (const size of sizes) {
      const answer = await send(server.port, "POST", "/v1/compress", Buffer.alloc(size, 7));
      assert.equal(answer.status, 200);
    }
    const sent = sizes.reduce((a, b) => a + b, 0);
    const query = async (expr: string): Promise<number | undefined> => {
      try {
        const answer = await getJson(
          `http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(expr)}`,
        );
        const value = answer?.data?.result?.[0]?.value?.[1];
        return value === undefined ? undefined : Number(value);
      } catch {
        return undefined; // not up yet
      }
    };
    await until(async () => (await query('up{job="mmh"}')) === 1, 30_000, "up{job=mmh} == 1");
    await until(
      async () => (await query("sum(mmh_bytes_in_total)")) === sent,
      30_000,
      `sum(mmh_bytes_in_total) == ${sent}`,
    );
  } finally {
    if (prometheus.exitCode === null && prometheus.signalCode === null) {
      const exited = new Promise((resolve) => prometheus.once("exit", resolve));
      prometheus.kill("SIGTERM");
      await exited;
    }
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
