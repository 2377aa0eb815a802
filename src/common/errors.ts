/**
 * One error class for the whole of MMH. Callers match on `code`, never on the message:
 * codes are stable across releases and survive crossing a worker boundary.
 */
export const ErrorCodes = {
  /** The data is not a valid .mmh stream (bad magic, bad record, impossible field). */
  E_CORRUPT: "E_CORRUPT",
  /** A checksum or the content hash did not match. */
  E_CHECKSUM: "E_CHECKSUM",
  /** The data ended before the structure it declares. */
  E_TRUNCATED: "E_TRUNCATED",
  /** A version, flag or codec this build does not know. */
  E_UNSUPPORTED: "E_UNSUPPORTED",
  /** An option passed by the caller is invalid. */
  E_BAD_OPTION: "E_BAD_OPTION",
  /** A declared or produced size is over a limit (the caller's or the format's). */
  E_LIMIT: "E_LIMIT",
  /** Reading or writing a file or stream failed. */
  E_IO: "E_IO",
  /** The output exists and overwriting was not allowed. */
  E_EXISTS: "E_EXISTS",
  /** A folder archive's entry path or link target could write outside the target folder. */
  E_UNSAFE_PATH: "E_UNSAFE_PATH",
  /** A range or name asked for is not in the data (or a base file a delta needs was not given). */
  E_NOT_FOUND: "E_NOT_FOUND",
  /** The base file given is not the one a delta record was coded against (FORMAT.md §6.4). */
  E_BASE_MISMATCH: "E_BASE_MISMATCH",
  /** The command line is wrong. */
  E_USAGE: "E_USAGE",
  /** The operation was interrupted (signal or abort). */
  E_ABORTED: "E_ABORTED",
  /** A bug in MMH: an invariant did not hold. */
  E_INTERNAL: "E_INTERNAL",
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export class MmhError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "MmhError";
    this.code = code;
  }

  /** A plain object that survives structured clone (worker messages). */
  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }

  static fromJSON(value: { code: ErrorCode; message: string }): MmhError {
    return new MmhError(value.code in ErrorCodes ? value.code : "E_INTERNAL", value.message);
  }
}

export function isMmhError(value: unknown): value is MmhError {
  return value instanceof MmhError;
}

/** Runs `work`, turning whatever it throws into an MmhError (the API's calls all do). */
export async function guard<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw toMmhError(error);
  }
}

/** The one guard every structural check goes through. */
export function check(condition: unknown, code: ErrorCode, message: string): asserts condition {
  if (!condition) throw new MmhError(code, message);
}

const ioCodes = new Set([
  "ENOENT",
  "EACCES",
  "EPERM",
  "EISDIR",
  "ENOTDIR",
  "EEXIST",
  "ENOSPC",
  "EROFS",
  "EBADF",
  "EPIPE",
  "EMFILE",
  "EIO",
]);

/** Wrap an error from fs or a stream into an MmhError, keeping it as the cause. */
export function toMmhError(error: unknown, context?: string): MmhError {
  if (error instanceof MmhError) return error;
  const prefix = context ? `${context}: ` : "";
  if (error instanceof Error) {
    const sysCode = (error as NodeJS.ErrnoException).code;
    if (sysCode === "ABORT_ERR") return new MmhError("E_ABORTED", `${prefix}aborted`, { cause: error });
    if (sysCode === "ERR_OUT_OF_RANGE" || error instanceof RangeError) {
      return new MmhError("E_LIMIT", `${prefix}${error.message}`, { cause: error });
    }
    if (sysCode && (ioCodes.has(sysCode) || /^E[A-Z0-9]+$/.test(sysCode))) {
      return new MmhError("E_IO", `${prefix}${describeSystemError(error as NodeJS.ErrnoException)}`, {
        cause: error,
      });
    }
    return new MmhError("E_INTERNAL", `${prefix}${error.message}`, { cause: error });
  }
  return new MmhError("E_INTERNAL", `${prefix}${String(error)}`, { cause: error });
}

function describeSystemError(error: NodeJS.ErrnoException): string {
  const what: Record<string, string> = {
    ENOENT: "no such file or directory",
    EACCES: "permission denied",
    EPERM: "operation not permitted",
    EISDIR: "is a directory",
    ENOTDIR: "not a directory",
    ENOSPC: "no space left on device",
    EROFS: "read-only file system",
    EPIPE: "broken pipe",
  };
  const code = error.code ?? "";
  const path = error.path ? ` ${error.path}` : "";
  return `${what[code] ?? error.message}${path ? `:${path}` : ""} (${code})`;
}
