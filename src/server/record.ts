/**
 * The record of one request or CLI job, in one shape so that the same queries read both.
 * Free of the service's dependencies: the CLI's --stats json uses it without loading them.
 */

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

/** Content over stored bytes, rounded for a log line; undefined when nothing was stored. */
export function ratioOf(rawBytes: number, storedBytes: number): number | undefined {
  return storedBytes > 0 ? Math.round((rawBytes / storedBytes) * 1000) / 1000 : undefined;
}

/** A job record as one JSON line (what `--stats json` prints). */
export function jobLine(record: JobRecord): string {
  return `${JSON.stringify({ time: new Date().toISOString(), ...record })}\n`;
}
