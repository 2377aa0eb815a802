/**
 * Telemetry: one JSON line per request (or per CLI job) in one shape, so the same
 * queries read both. The Authorization header is redacted wherever it might be logged.
 */
import { pino } from "pino";

export { type JobRecord, jobLine, ratioOf } from "./record.ts";

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";

export const REDACT = [
  "req.headers.authorization",
  "request.headers.authorization",
  "headers.authorization",
  "authorization",
];

/** The service's logger: JSON lines on `destination` (standard error by default). */
export function createLogger(level: LogLevel, destination: pino.DestinationStream | number = 2): pino.Logger {
  const stream =
    typeof destination === "number" ? pino.destination({ fd: destination, sync: true }) : destination;
  return pino(
    {
      level,
      base: { service: "mmh", pid: process.pid },
      redact: { paths: REDACT, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    stream,
  );
}
