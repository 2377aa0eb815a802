/** The HTTP service against a real server on a free port: routes, config reloads, guards, metrics. */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Agent, request as httpRequest } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ROUTE_MODULES } from "../src/cli/serve.ts";
import { decompress, inspect } from "../src/index.ts";
import { generate } from "../src/tools/index.ts";
import { getJson, metric, send, startServer, type TestServer, until } from "./server-support.ts";

const REAL = join(import.meta.dirname, "..", "..", "shared", "data", "mnist-tinygrad_model.safetensors");
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

describe("serve: routes", () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ defaults: { codec: "none" }, limits: { concurrency: 4 } }, ROUTE_MODULES);
  });
  after(() => server.close());

  const inputs: [string, () => Buffer][] = [
    [
      "generated weights",
      () => Buffer.from(generate({ kind: "safetensors", dtype: "BF16", size: 1 << 20, seed: 3 })),
    ],
    ["text", () => Buffer.from("a line of text for the service\n".repeat(40_000))],
    ["empty", () => Buffer.alloc(0)],
  ];
  if (existsSync(REAL)) inputs.unshift(["a real model file", () => readFileSync(REAL)]);

  for (const [name, make] of inputs) {
    test(`compress then decompress gives ${name} back, with the summary in trailers`, async () => {
      const input = make();
      const packed = await send(server.port, "POST", "/v1/compress?codec=auto&goal=speed", input);
      assert.equal(packed.status, 200, packed.body.toString());
      assert.equal(packed.headers["content-type"], "application/vnd.mmh");
      assert.equal(packed.trailers["mmh-raw-bytes"], String(input.length));
      assert.equal(packed.trailers["mmh-stored-bytes"], String(packed.body.length));
      assert.equal(packed.trailers["mmh-sha256"], sha256(input));
      const restored = await send(server.port, "POST", "/v1/decompress", packed.body);
      assert.equal(restored.status, 200, restored.body.toString());
      assert.ok(restored.body.equals(input));
      assert.equal(restored.trailers["mmh-sha256"], sha256(input));
    });
  }

  test("a body sent in pieces without Content-Length streams through", async () => {
    const input = Buffer.from(generate({ kind: "text", size: 3 << 20, seed: 5 }));
    const pieces = Array.from({ length: 48 }, (_, i) => input.subarray(i * 65536, (i + 1) * 65536));
    const packed = await send(server.port, "POST", "/v1/compress?codec=zstd&level=1&chunkSize=64K", pieces);
    assert.equal(packed.status, 200);
    assert.equal(packed.headers["transfer-encoding"], "chunked");
    const restored = await send(server.port, "POST", "/v1/decompress", packed.body);
    assert.ok(restored.body.equals(input));
  });

  test("analyze spools the body to a temporary file, answers JSON, and removes the file", async () => {
    // A temporary folder of this test's own, so that other suites' spools in the shared
    // one cannot change the count.
    const saved = process.env.TMPDIR;
    const own = mkdtempSync(join(tmpdir(), "mmh-analyze-test-"));
    process.env.TMPDIR = own;
    try {
      const input = Buffer.from(generate({ kind: "safetensors", dtype: "F16", size: 256 << 10, seed: 1 }));
      const answer = await send(server.port, "POST", "/v1/analyze?goal=ratio", input);
      assert.equal(answer.status, 200, answer.body.toString());
      const report = JSON.parse(answer.body.toString());
      assert.equal(report.format, "safetensors");
      assert.equal(report.size, input.length);
      assert.ok(report.regions.length > 0);
      assert.deepEqual(readdirSync(own), []);
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
      rmSync(own, { recursive: true, force: true });
    }
  });

  test("bad query values are 400 E_BAD_OPTION; unknown routes 404; a malformed URL 400", async () => {
    for (const path of [
      "/v1/compress?codec=nope",
      "/v1/compress?level=x",
      "/v1/compress?chunkSize=1",
      "/v1/compress?what=1",
    ]) {
      const answer = await send(server.port, "POST", path, Buffer.from("data"));
      assert.equal(answer.status, 400, path);
      assert.equal(JSON.parse(answer.body.toString()).error.code, "E_BAD_OPTION", path);
    }
    const missing = await send(server.port, "GET", "/v2/nothing");
    assert.equal(missing.status, 404);
    assert.equal(JSON.parse(missing.body.toString()).error.code, "E_NOT_FOUND");
    const malformed = await send(server.port, "GET", "/v1/%zz");
    assert.equal(malformed.status, 400);
    assert.equal(JSON.parse(malformed.body.toString()).error.code, "E_BAD_OPTION");
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200, "still serving");
  });

  test("requests the HTTP parser refuses get the service's JSON error and a closed connection", async () => {
    const raw = async (text: string) => {
      const socket = connect(server.port, "127.0.0.1");
      await once(socket, "connect");
      socket.write(text);
      const parts: Buffer[] = [];
      socket.on("data", (part: Buffer) => parts.push(part));
      await once(socket, "close");
      return Buffer.concat(parts).toString("latin1");
    };
    for (const [request, status, code] of [
      ["GARBAGE\r\n\r\n", 400, "E_BAD_OPTION"],
      ["POST /v1/compress HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", 400, "E_BAD_OPTION"],
      [
        "POST /v1/compress HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        400,
        "E_BAD_OPTION",
      ],
      [
        "POST /v1/compress HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nabc\r\n0\r\n\r\n",
        400,
        "E_BAD_OPTION",
      ],
      [`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(40_000)}\r\n\r\n`, 431, "E_LIMIT"],
    ] as const) {
      const answer = await raw(request);
      assert.match(answer, new RegExp(`^HTTP/1.1 ${status} `), request.slice(0, 60));
      const body = answer.slice(answer.indexOf("\r\n\r\n") + 4);
      assert.equal(JSON.parse(body).error.code, code, request.slice(0, 60));
    }
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200, "still serving");
  });

  test("a client that resets mid-headers is counted as gone, not as a malformed request", async () => {
    const count = (code: string) => metric(server.url, "mmh_errors_total", `code="${code}"`);
    const [badBefore, goneBefore] = [await count("E_BAD_OPTION"), await count("E_ABORTED")];
    for (let i = 0; i < 3; i++) {
      const socket = connect(server.port, "127.0.0.1");
      await once(socket, "connect");
      socket.write("POST /v1/compress HTTP/1.1\r\nHost: x\r\nContent-Le");
      await new Promise((resolve) => setTimeout(resolve, 50));
      socket.resetAndDestroy();
      await once(socket, "close");
    }
    await until(async () => (await count("E_ABORTED")) >= goneBefore + 3, 5000, "three aborts counted");
    assert.equal(await count("E_BAD_OPTION"), badBefore);
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200, "still serving");
  });

  test("corrupt input before the first byte is a 422 with its code", async () => {
    const garbage = await send(server.port, "POST", "/v1/decompress", Buffer.alloc(200, 7));
    assert.equal(garbage.status, 422);
    assert.equal(JSON.parse(garbage.body.toString()).error.code, "E_CORRUPT");
    const packed = await send(server.port, "POST", "/v1/compress", Buffer.from("x".repeat(5000)));
    const truncated = await send(server.port, "POST", "/v1/decompress", packed.body.subarray(0, 40));
    assert.equal(truncated.status, 422);
    assert.match(JSON.parse(truncated.body.toString()).error.code, /^E_(TRUNCATED|CORRUPT)$/);
  });

  test("damage in a late chunk aborts the response: the client never sees a clean end", async () => {
    const input = Buffer.from(generate({ kind: "text", size: 2 << 20, seed: 9 }));
    const packed = await send(server.port, "POST", "/v1/compress?codec=zstd&chunkSize=64K", input);
    const damaged = Buffer.from(packed.body);
    const at = Math.floor(damaged.length * 0.8);
    damaged[at] ^= 0xff;
    const seen = { status: 0, bytes: 0 };
    await assert.rejects(
      new Promise((resolve, reject) => {
        const req = httpRequest(
          { host: "127.0.0.1", port: server.port, method: "POST", path: "/v1/decompress" },
          (res) => {
            seen.status = res.statusCode ?? 0;
            res.on("data", (part: Buffer) => {
              seen.bytes += part.length;
            });
            res.on("error", reject);
            res.on("aborted", () => reject(new Error("aborted")));
            res.on("end", resolve);
          },
        );
        req.on("error", reject);
        req.end(damaged);
      }),
    );
    // The reset may reach the client before the headers do; what it must never see is an end.
    assert.ok(seen.status === 0 || seen.status === 200, `status ${seen.status}`);
    assert.ok(seen.bytes < input.length, `${seen.bytes} bytes before the abort`);
    await until(
      () =>
        server.logs.some(
          (l) =>
            l.route === "/v1/decompress" &&
            l.status === 200 &&
            /^E_(CHECKSUM|CORRUPT)$/.test(String(l.errorCode)),
        ),
      10_000,
      () => `the failure's log line in ${server.logText()}`,
    );
  });

  test("X-Request-Id is echoed and logged; one log line per request with its figures", async () => {
    const answer = await send(
      server.port,
      "POST",
      "/v1/compress?codec=zstd",
      Buffer.from("hello ".repeat(999)),
      {
        "x-request-id": "test-id-42",
      },
    );
    assert.equal(answer.headers["x-request-id"], "test-id-42");
    await until(() => server.logs.some((l) => l.requestId === "test-id-42"));
    const line = server.logs.filter((l) => l.requestId === "test-id-42");
    assert.equal(line.length, 1);
    assert.equal(line[0].route, "/v1/compress");
    assert.equal(line[0].status, 200);
    assert.equal(line[0].codec, "zstd");
    assert.equal(line[0].bytesIn, 5994);
    assert.equal(line[0].bytesOut, answer.body.length);
    assert.ok((line[0].ratio as number) > 1);
    assert.equal(typeof line[0].durationMs, "number");
    const generated = await send(server.port, "GET", "/healthz");
    assert.match(String(generated.headers["x-request-id"]), /^[0-9a-f-]{36}$/);
  });

  test("metrics count requests by route pattern, bytes by route and codec", async () => {
    const body = Buffer.from("count me ".repeat(1000));
    const before = await metric(server.url, "mmh_bytes_in_total", 'route="/v1/compress",codec="lz4"');
    await send(server.port, "POST", "/v1/compress?codec=lz4", body);
    const text = await (await fetch(`${server.url}/metrics`)).text();
    assert.equal(
      await metric(server.url, "mmh_bytes_in_total", 'route="/v1/compress",codec="lz4"'),
      before + body.length,
    );
    assert.match(text, /mmh_http_requests_total\{route="\/v1\/compress",status="200"\} \d+/);
    assert.match(text, /mmh_http_request_duration_seconds_bucket\{le="[^"]+",route="\/v1\/compress"\}/);
    assert.match(text, /mmh_compression_ratio_count \d+/);
    assert.match(text, /mmh_requests_in_flight 0/);
    assert.match(text, /mmh_errors_total\{code="E_BAD_OPTION"\} \d+/);
    assert.match(text, /mmh_gateway_bytes_decoded_total 0/);
    assert.match(text, /mmh_config_reloads_total\{result="success"\} \d+/);
    assert.match(text, /process_cpu_user_seconds_total/);
    assert.doesNotMatch(text, /route="\/v2\/nothing"/, "raw URLs are not labels");
  });

  test("/openapi.json lists exactly the routes that exist", async () => {
    const spec = await getJson(`${server.url}/openapi.json`);
    assert.equal(spec.openapi, "3.1.0");
    const normalise = (path: string) => path.replace(/\{[^}]+\}|:[^/]+|\*/g, "{}");
    const inSpec = new Set<string>();
    for (const [path, operations] of Object.entries(spec.paths as Record<string, object>)) {
      for (const method of Object.keys(operations)) inSpec.add(`${method.toUpperCase()} ${normalise(path)}`);
    }
    const registered = new Set(server.service.routes.map((r) => `${r.method} ${normalise(r.url)}`));
    assert.deepEqual(
      [...registered].filter((r) => !inSpec.has(r)),
      [],
      "registered but not in the spec",
    );
    assert.deepEqual(
      [...inSpec].filter((r) => !registered.has(r)),
      [],
      "in the spec but not registered",
    );
  });
});

describe("serve: route modules", () => {
  test("a module's routes are served with the RouteContext and its paths merged into the spec", async () => {
    const server = await startServer({ store: { root: "/srv/models" } }, [
      {
        register(app, context) {
          app.get("/models/*", async (request) => {
            context.countDecoded(5);
            return { root: context.storeRoot(request) };
          });
        },
        openApi: {
          "/models/{path}": { get: { summary: "a model file", responses: { "200": { description: "ok" } } } },
        },
      },
    ]);
    try {
      const answer = await getJson(`${server.url}/models/a/b`);
      assert.equal(answer.root, "/srv/models");
      assert.equal(await metric(server.url, "mmh_gateway_bytes_decoded_total"), 5);
      const spec = await getJson(`${server.url}/openapi.json`);
      assert.ok(spec.paths["/models/{path}"].get);
      assert.ok(spec.paths["/models/{path}"].head);
      assert.ok(spec.paths["/v1/compress"].post);
    } finally {
      await server.close();
    }
  });
});

describe("serve: config reloads", () => {
  test("an edited config's new default applies to the next request; an invalid one keeps the last good", async () => {
    const server = await startServer({ defaults: { codec: "none" } });
    const codecsOf = async () => {
      const packed = await send(server.port, "POST", "/v1/compress", Buffer.from("reload ".repeat(20_000)));
      const file = join(server.dir, "out.mmh");
      writeFileSync(file, packed.body);
      return Object.keys((await inspect(file)).codecs).map((c) => c.trim());
    };
    const generation = async () => (await getJson(`${server.url}/readyz`)).config.generation;
    try {
      assert.deepEqual(await codecsOf(), ["NONE"]);
      const first = await getJson(`${server.url}/readyz`);
      assert.equal(first.config.generation, 1);
      server.writeConfig({ defaults: { codec: "zstd" } });
      await until(async () => (await generation()) === 2, 10_000, "the edited config to load");
      assert.deepEqual(await codecsOf(), ["ZSTD"]);
      const ready = await getJson(`${server.url}/readyz`);
      assert.ok(Date.parse(ready.config.loadedAt) >= Date.parse(first.config.loadedAt));

      server.writeConfig({ defaults: { codec: "no-such-codec" } });
      await until(
        async () => (await metric(server.url, "mmh_config_reloads_total", 'result="failure"')) >= 1,
        10_000,
        "the failed reload to be counted",
      );
      assert.equal(await generation(), 2);
      assert.deepEqual(await codecsOf(), ["ZSTD"], "the last good config stays");
      assert.ok(server.logs.some((l) => l.msg?.toString().includes("config reload failed")));
    } finally {
      await server.close();
    }
  });
});

describe("serve: guards", () => {
  test("with auth.tokenFile, routes need the bearer token (probes do not), and it is never logged", async () => {
    const server = await startServer();
    try {
      const token = "s3cret-token-value";
      writeFileSync(join(server.dir, "token"), `${token}\n`);
      server.writeConfig({ auth: { tokenFile: "token" } });
      await server.service.config.reload();
      const body = Buffer.from("secret data");
      const none = await send(server.port, "POST", "/v1/compress", body);
      assert.equal(none.status, 401);
      assert.equal(JSON.parse(none.body.toString()).error.code, "E_UNAUTHORIZED");
      const wrong = await send(server.port, "POST", "/v1/compress", body, { authorization: "Bearer nope" });
      assert.equal(wrong.status, 401);
      const right = await send(server.port, "POST", "/v1/compress", body, {
        authorization: `Bearer ${token}`,
      });
      assert.equal(right.status, 200);
      assert.equal((await send(server.port, "GET", "/openapi.json")).status, 401);
      for (const path of ["/healthz", "/readyz", "/metrics"]) {
        assert.equal((await send(server.port, "GET", path)).status, 200, path);
      }
      assert.ok(!server.logText().includes(token), "the token is not in the log");
    } finally {
      await server.close();
    }
  });

  test("a 422 before the body's end closes the connection: the next request on it is served", async () => {
    const server = await startServer();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const input = Buffer.from(generate({ kind: "safetensors", dtype: "BF16", size: 4 << 20, seed: 5 }));
      const packed = await send(server.port, "POST", "/v1/compress?codec=none&chunkSize=64K", input);
      assert.equal(packed.status, 200);
      const damaged = Buffer.from(packed.body);
      damaged[200] ^= 0x5a; // in the first chunk: found before anything is sent
      const post = (body: Buffer) =>
        new Promise<{ status: number; connection: string | undefined; body: Buffer }>((resolve, reject) => {
          const req = httpRequest(
            { host: "127.0.0.1", port: server.port, method: "POST", path: "/v1/decompress", agent },
            (res) => {
              const parts: Buffer[] = [];
              res.on("data", (part: Buffer) => parts.push(part));
              res.on("end", () =>
                resolve({
                  status: res.statusCode ?? 0,
                  connection: res.headers.connection,
                  body: Buffer.concat(parts),
                }),
              );
            },
          );
          req.setTimeout(20_000, () => req.destroy(new Error("no answer in 20 s")));
          req.on("error", reject);
          req.end(body);
        });
      const refused = await post(damaged);
      assert.equal(refused.status, 422);
      assert.equal(refused.connection, "close");
      // Before, the connection stayed open with the rest of the body unread, and this waited forever.
      const next = await post(packed.body);
      assert.equal(next.status, 200);
      assert.ok(next.body.equals(input));
    } finally {
      agent.destroy();
      await server.close();
    }
  });

  test("a chunked body over limits.bodyBytes is a 413, counted as it arrives", async () => {
    const server = await startServer({ limits: { bodyBytes: 65536 } });
    try {
      const answer = await new Promise<{ status: number; body: string; length: unknown }>(
        (resolve, reject) => {
          const req = httpRequest({
            host: "127.0.0.1",
            port: server.port,
            method: "POST",
            path: "/v1/compress",
          });
          req.on("response", (res) => {
            let body = "";
            res.on("data", (part) => {
              body += part;
            });
            res.on("end", () =>
              resolve({ status: res.statusCode ?? 0, body, length: req.getHeader("content-length") }),
            );
          });
          req.on("error", reject);
          // 80 KiB in 8 KiB pieces, and the request left open: only counting can refuse it.
          for (let i = 0; i < 10; i++) req.write(Buffer.alloc(8192, i));
        },
      );
      assert.equal(answer.length, undefined, "no Content-Length was sent");
      assert.equal(answer.status, 413);
      assert.equal(JSON.parse(answer.body).error.code, "E_LIMIT");
      const declared = await send(server.port, "POST", "/v1/compress", Buffer.alloc(70_000));
      assert.equal(declared.status, 413);
    } finally {
      await server.close();
    }
  });

  test("past limits.concurrency and limits.queue a request gets 503 with Retry-After; a disconnect frees its slot", async () => {
    const server = await startServer({ limits: { concurrency: 1, queue: 0 } });
    try {
      const slow = httpRequest({
        host: "127.0.0.1",
        port: server.port,
        method: "POST",
        path: "/v1/compress",
      });
      slow.on("error", () => {});
      slow.write(Buffer.alloc(100_000, 1));
      await until(
        async () => (await metric(server.url, "mmh_requests_in_flight")) === 1,
        10_000,
        "in flight",
      );
      const refused = await send(server.port, "POST", "/v1/compress", Buffer.from("more"));
      assert.equal(refused.status, 503);
      assert.equal(refused.headers["retry-after"], "1");
      assert.equal(JSON.parse(refused.body.toString()).error.code, "E_BUSY");
      slow.destroy();
      await until(
        async () => (await metric(server.url, "mmh_requests_in_flight")) === 0,
        10_000,
        "slot freed",
      );
      assert.equal((await send(server.port, "POST", "/v1/compress", Buffer.from("now"))).status, 200);
      await until(() => server.logs.some((l) => l.errorCode === "E_ABORTED"), 10_000, "the abort's log line");
    } finally {
      await server.close();
    }
  });

  test("a connection idle for limits.idleSeconds is closed, its slot freed, E_TIMEOUT logged", async () => {
    const server = await startServer({ limits: { idleSeconds: 1 } });
    try {
      const socket = connect(server.port, "127.0.0.1");
      await once(socket, "connect");
      // Headers and part of the body, then nothing.
      socket.write("POST /v1/compress HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n");
      socket.write(Buffer.alloc(1000, 7));
      socket.resume();
      const started = Date.now();
      await until(
        async () => (await metric(server.url, "mmh_requests_in_flight")) === 1,
        10_000,
        "in flight",
      );
      await once(socket, "close");
      assert.ok(Date.now() - started < 15_000);
      await until(
        async () => (await metric(server.url, "mmh_requests_in_flight")) === 0,
        10_000,
        "slot freed",
      );
      await until(
        () => server.logs.some((l) => l.errorCode === "E_TIMEOUT" && l.status === 408),
        10_000,
        "the timeout's log line",
      );
      assert.equal(await metric(server.url, "mmh_errors_total", 'code="E_TIMEOUT"'), 1);
      // A request that keeps moving is not cut, however long it takes in all.
      const slowButMoving = await new Promise<number>((resolve, reject) => {
        const req = httpRequest(
          { host: "127.0.0.1", port: server.port, method: "POST", path: "/v1/compress" },
          (res) => {
            res.resume();
            res.on("end", () => resolve(res.statusCode ?? 0));
          },
        );
        req.on("error", reject);
        let sent = 0;
        const timer = setInterval(() => {
          req.write(Buffer.alloc(1000, sent));
          if (++sent === 6) {
            clearInterval(timer);
            req.end();
          }
        }, 400);
      });
      assert.equal(slowButMoving, 200);
    } finally {
      await server.close();
    }
  });

  test("past limits.concurrency requests wait in order for a slot, up to limits.queue", async () => {
    const server = await startServer({ limits: { concurrency: 1, queue: 2 } });
    try {
      const slow = httpRequest({
        host: "127.0.0.1",
        port: server.port,
        method: "POST",
        path: "/v1/compress",
      });
      const slowAnswer = new Promise<number>((resolve, reject) => {
        slow.on("response", (response) => {
          response.resume();
          response.on("end", () => resolve(response.statusCode ?? 0));
        });
        slow.on("error", reject);
      });
      slow.write(Buffer.alloc(100_000, 1));
      await until(
        async () => (await metric(server.url, "mmh_requests_in_flight")) === 1,
        10_000,
        "in flight",
      );
      // Two wait; one of them goes away while it waits, and gives its place up.
      const waiting = send(server.port, "POST", "/v1/compress", Buffer.from("second"));
      const leaving = httpRequest({
        host: "127.0.0.1",
        port: server.port,
        method: "POST",
        path: "/v1/compress",
      });
      leaving.on("error", () => {});
      leaving.write("third");
      await until(async () => (await metric(server.url, "mmh_requests_queued")) === 2, 10_000, "two queued");
      // The queue is full: the next is refused at once.
      const refused = await send(server.port, "POST", "/v1/compress", Buffer.from("fourth"));
      assert.equal(refused.status, 503);
      assert.equal(refused.headers["retry-after"], "1");
      leaving.destroy();
      await until(
        async () => (await metric(server.url, "mmh_requests_queued")) === 1,
        10_000,
        "one left the queue",
      );
      slow.end();
      assert.equal(await slowAnswer, 200);
      const second = await waiting;
      assert.equal(second.status, 200);
      assert.deepEqual(Buffer.from(await decompress(new Uint8Array(second.body))), Buffer.from("second"));
      await until(async () => (await metric(server.url, "mmh_requests_in_flight")) === 0, 10_000, "all done");
      assert.equal(await metric(server.url, "mmh_requests_queued"), 0);
    } finally {
      await server.close();
    }
  });
});
