/**
 * The service's Prometheus metrics, in a registry of its own (so that two servers in one
 * process, as in the tests, count apart). Labels are route patterns and codec names,
 * never raw URLs, so the number of series stays bounded.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: "mmh_http_requests_total",
    help: "HTTP requests answered, by route pattern and status code.",
    labelNames: ["route", "status"] as const,
    registers: [this.registry],
  });
  readonly duration = new Histogram({
    name: "mmh_http_request_duration_seconds",
    help: "Time from a request's arrival to the end of its response, by route pattern.",
    labelNames: ["route"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });
  readonly bytesIn = new Counter({
    name: "mmh_bytes_in_total",
    help: "Request body bytes received, by route pattern and codec.",
    labelNames: ["route", "codec"] as const,
    registers: [this.registry],
  });
  readonly bytesOut = new Counter({
    name: "mmh_bytes_out_total",
    help: "Response body bytes produced, by route pattern and codec.",
    labelNames: ["route", "codec"] as const,
    registers: [this.registry],
  });
  readonly ratio = new Histogram({
    name: "mmh_compression_ratio",
    help: "Content bytes over stored bytes of each completed compression.",
    buckets: [1, 1.05, 1.1, 1.25, 1.5, 2, 3, 4, 8, 16, 64, 256],
    registers: [this.registry],
  });
  readonly inFlight = new Gauge({
    name: "mmh_requests_in_flight",
    help: "Requests holding one of the limits.concurrency slots.",
    registers: [this.registry],
  });
  readonly queued: Gauge;
  readonly errors = new Counter({
    name: "mmh_errors_total",
    help: "Requests that failed, by error code.",
    labelNames: ["code"] as const,
    registers: [this.registry],
  });
  readonly gatewayDecoded = new Counter({
    name: "mmh_gateway_bytes_decoded_total",
    help: "Content bytes decoded to answer gateway requests.",
    registers: [this.registry],
  });
  readonly idleCollections = new Counter({
    name: "mmh_idle_collections_total",
    help: "Full garbage collections run once the service was idle after work.",
    registers: [this.registry],
  });
  readonly configReloads = new Counter({
    name: "mmh_config_reloads_total",
    help: "Config reloads, by result (success or failure).",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });

  /** `waiting`: how many requests wait for a slot now (read at each scrape). */
  constructor(waiting: () => number = () => 0) {
    this.queued = new Gauge({
      name: "mmh_requests_queued",
      help: "Requests waiting, in arrival order, for one of the limits.concurrency slots (at most limits.queue).",
      registers: [this.registry],
      collect() {
        this.set(waiting());
      },
    });
    collectDefaultMetrics({ register: this.registry });
    // Zero series, so a dashboard sees them before the first event.
    this.configReloads.inc({ result: "success" }, 0);
    this.configReloads.inc({ result: "failure" }, 0);
    this.gatewayDecoded.inc(0);
  }
}
