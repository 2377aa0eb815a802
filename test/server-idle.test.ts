/**
 * The service's one full collection after a burst (src/server/idle.ts): it runs once the
 * last request that held or waited for a slot is done and the delay has passed, never
 * while one is in flight, and once per idle period; probes do not count as work.
 */
import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { IdleCollector } from "../src/server/idle.ts";
import { metric, send, startServer, until } from "./server-support.ts";

test("IdleCollector: once per idle period, cancelled by work, absent without gc", async () => {
  const calls: unknown[] = [];
  const collector = new IdleCollector(30, (options) => calls.push(options));
  collector.idle();
  collector.busy();
  await delay(80);
  assert.equal(calls.length, 0, "work before the delay cancels it");
  collector.idle();
  collector.idle();
  await delay(80);
  assert.deepEqual(calls, [{ type: "major", execution: "async" }]);
  await delay(80);
  assert.equal(collector.runs, 1, "once per idle period");
  const none = new IdleCollector(10, undefined);
  assert.equal(none.available, false);
  none.idle();
  await delay(30);
  assert.equal(none.runs, 0);
});

test("the service collects once after its requests end, never while one is in flight", async () => {
  let collected = 0;
  const collector = new IdleCollector(150, () => {
    collected++;
  });
  const server = await startServer({}, [], collector);
  try {
    const body = Buffer.from("idle collection ".repeat(4000));
    assert.equal((await send(server.port, "POST", "/v1/compress", body)).status, 200);
    assert.equal((await send(server.port, "POST", "/v1/compress", body)).status, 200);
    await until(() => collected === 1, 5000, "one collection after the burst");
    assert.equal(await metric(server.url, "mmh_idle_collections_total"), 1);
    // A probe is not work: it neither triggers nor delays a collection.
    assert.equal((await send(server.port, "GET", "/healthz")).status, 200);
    await delay(300);
    assert.equal(collected, 1);
    // An upload that stays open holds its slot: no collection until it ends.
    const req = httpRequest({
      host: "127.0.0.1",
      port: server.port,
      method: "POST",
      path: "/v1/compress",
      headers: { "content-length": String(body.length * 2) },
    });
    req.on("error", () => {});
    req.write(body);
    await delay(500);
    assert.equal(collected, 1, "no collection while a request is in flight");
    req.destroy();
    await until(() => collected === 2, 5000, "a collection once the upload is gone");
  } finally {
    await server.close();
  }
});
