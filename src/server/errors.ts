/**
 * Errors as the service answers them: a status and a JSON body `{ error: { code, message } }`.
 * The library's codes are kept; the service adds its own for what only HTTP has.
 */
import { MmhError } from "../index.ts";

/** The service's own codes, beside the library's ErrorCodes. */
export type ServiceCode =
  | "E_UNAUTHORIZED"
  | "E_BUSY"
  | "E_NOT_FOUND"
  | "E_BAD_OPTION"
  | "E_LIMIT"
  | "E_TIMEOUT";

export class ServiceError extends Error {
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string>;

  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = "ServiceError";
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

/** The status for a library error code. */
const STATUS: Record<string, number> = {
  E_BAD_OPTION: 400,
  E_USAGE: 400,
  E_CORRUPT: 422,
  E_CHECKSUM: 422,
  E_TRUNCATED: 422,
  E_UNSUPPORTED: 422,
  E_LIMIT: 413,
  E_NOT_FOUND: 404,
  E_UNSAFE_PATH: 400,
  E_ABORTED: 499,
  E_IO: 500,
  E_INTERNAL: 500,
};

/** Any thrown value as a ServiceError with a status and a stable code. */
export function toServiceError(error: unknown): ServiceError {
  if (error instanceof ServiceError) return error;
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    if (e instanceof ServiceError) return e;
  }
  if (error instanceof MmhError)
    return new ServiceError(STATUS[error.code] ?? 500, error.code, error.message);
  const fastify = error as { statusCode?: number; code?: string; message?: string };
  if (typeof fastify?.statusCode === "number" && fastify.statusCode >= 400 && fastify.statusCode < 500) {
    const code =
      fastify.statusCode === 413 ? "E_LIMIT" : fastify.statusCode === 404 ? "E_NOT_FOUND" : "E_BAD_OPTION";
    return new ServiceError(fastify.statusCode, code, fastify.message ?? "bad request");
  }
  return new ServiceError(500, "E_INTERNAL", error instanceof Error ? error.message : String(error));
}

export function errorBody(error: ServiceError): { error: { code: string; message: string } } {
  return { error: { code: error.code, message: error.message } };
}
