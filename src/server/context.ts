/**
 * What the service gives the modules that register its routes: the config a request
 * started on, and the counters the route feeds. app.ts implements it; gateway.ts and the
 * other route modules take it, so none of them reaches into the others.
 */
import type { FastifyRequest } from "fastify";

export interface RouteContext {
  /** The store root of the config `request` started on; undefined when none is configured. */
  storeRoot(request: FastifyRequest): string | undefined;
  /** Counts content bytes decoded to answer a gateway request (mmh_gateway_bytes_decoded_total). */
  countDecoded(bytes: number): void;
}
