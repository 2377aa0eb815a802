/**
 * A static HTTP server for the remote-reading tests, on 127.0.0.1 only: it serves files
 * with single byte ranges (and If-Range), and counts the requests and bytes it serves
 * and how many requests it had in flight at once. Some paths misbehave on purpose.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface ServedFile {
  bytes: Uint8Array;
  etag: string;
}

export interface Stats {
  requests: number;
  /** Body bytes written to the sockets, over all requests. */
  bytes: number;
  inFlight: number;
  maxInFlight: number;
  /** Each request's path and Range header, in order. */
  log: { path: string; range: string | undefined; status: number }[];
}

export interface TestServer {
  /** The URL of `path` on this server. */
  url(path: string): string;
  files: Map<string, ServedFile>;
  stats: Stats;
  /** Milliseconds each answer waits before its headers go out. */
  delayMs: number;
  reset(): void;
  close(): Promise<void>;
}

/**
 * Paths: `/f/NAME` a file with ranges; `/plain/NAME` the same file, always 200 and the
 * whole body (no ranges), written in 64 KiB pieces as the client takes them;
 * `/redirect/N/NAME` redirects N times and then to `/f/NAME`; `/loop` redirects to itself.
 */
export async function startServer(): Promise<TestServer> {
  const files = new Map<string, ServedFile>();
  const stats: Stats = { requests: 0, bytes: 0, inFlight: 0, maxInFlight: 0, log: [] };
  const server = createServer((req, res) => {
    stats.requests++;
    stats.inFlight++;
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
    // Counted out when the answer is written (finish) or dropped (close), whichever is first.
    let done = false;
    const out = (): void => {
      if (!done) stats.inFlight--;
      done = true;
    };
    res.once("finish", out);
    res.once("close", out);
    setTimeout(() => handle(req, res), state.delayMs);
  });
  const state = {
    delayMs: 0,
  };

  function send(res: ServerResponse, req: IncomingMessage, status: number, headers: Record<string, string>) {
    stats.log.push({ path: req.url ?? "", range: req.headers.range, status });
    res.writeHead(status, headers);
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    const redirect = /^\/redirect\/(\d+)\/(.+)$/.exec(path);
    if (path === "/loop") {
      send(res, req, 302, { location: "/loop" });
      res.end();
      return;
    }
    if (redirect) {
      const left = Number(redirect[1]);
      send(res, req, 301, {
        location: left > 1 ? `/redirect/${left - 1}/${redirect[2]}` : `/f/${redirect[2]}`,
      });
      res.end();
      return;
    }
    const match = /^\/(f|plain)\/(.+)$/.exec(path);
    const file = match ? files.get(match[2]) : undefined;
    if (!match || !file) {
      send(res, req, 404, { "content-type": "text/plain" });
      res.end("not found\n");
      return;
    }
    const size = file.bytes.length;
    if (match[1] === "plain") {
      send(res, req, 200, { "content-length": String(size), etag: file.etag });
      writePaced(res, file.bytes);
      return;
    }
    const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? "");
    const ifRange = req.headers["if-range"];
    if (!range || (ifRange !== undefined && ifRange !== file.etag)) {
      send(res, req, 200, { "content-length": String(size), etag: file.etag, "accept-ranges": "bytes" });
      writePaced(res, file.bytes);
      return;
    }
    let start: number;
    let end: number;
    if (range[1] === "") {
      start = Math.max(0, size - Number(range[2]));
      end = size - 1;
    } else {
      start = Number(range[1]);
      end = range[2] === "" ? size - 1 : Math.min(size - 1, Number(range[2]));
    }
    if (start >= size || start > end) {
      send(res, req, 416, { "content-range": `bytes */${size}` });
      res.end();
      return;
    }
    send(res, req, 206, {
      "content-length": String(end - start + 1),
      "content-range": `bytes ${start}-${end}/${size}`,
      "accept-ranges": "bytes",
      etag: file.etag,
    });
    writePaced(res, file.bytes.subarray(start, end + 1));
  }

  /** Write in pieces, each when the socket has taken the last, counting what went out. */
  function writePaced(res: ServerResponse, bytes: Uint8Array): void {
    let at = 0;
    const next = (): void => {
      while (at < bytes.length && !res.destroyed) {
        const piece = bytes.subarray(at, at + (64 << 10));
        at += piece.length;
        stats.bytes += piece.length;
        if (!res.write(piece)) {
          res.once("drain", next);
          return;
        }
      }
      if (!res.destroyed) res.end();
    };
    next();
  }

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    files,
    stats,
    get delayMs() {
      return state.delayMs;
    },
    set delayMs(ms: number) {
      state.delayMs = ms;
    },
    reset() {
      stats.requests = 0;
      stats.bytes = 0;
      stats.maxInFlight = stats.inFlight;
      stats.log = [];
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
