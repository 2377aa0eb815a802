/**
 * Telemetry: one JSON line per request (or per CLI job) in one shape, so the same
 * queries read both. The Authorization header is redacted wherever it might be logged.
 */
import { pino } from "pino";

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";

/** What one request or CLI job did. */
export interface JobRecord {
  requestId?: string;
  route: string;
  status: number;
  codec?: string;
  bytesIn: number;
  bytesOut: number;
  /** Content bytes over stored bytes, when the job coded something. */
  ratio?: number;
  sha256?: string;
  durationMs: number;
  errorCode?: string;
}

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
      base: { service: "mmh" },
      redact: { paths: REDACT, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    stream,
  );
}

/** Content over stored bytes, rounded for a log line; undefined when nothing was stored. */
export function ratioOf(rawBytes: number, storedBytes: number): number | undefined {
  return storedBytes > 0 ? Math.round((rawBytes / storedBytes) * 1000) / 1000 : undefined;
}

/** A job record as one JSON line (what `--stats json` prints). */
export function jobLine(record: JobRecord): string {
  return `${JSON.stringify({ time: new Date().toISOString(), ...record })}\n`;
}
