import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { link, open, realpath, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { MmhError, toMmhError } from "./errors.ts";

export interface WriteOptions {
  /** Replace an existing target. */
  overwrite?: boolean;
  signal?: AbortSignal;
  /** The input file, which must never be the target. */
  input?: string;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw toMmhError(error, `cannot check ${path}`);
  }
}

/** Refuse to write over an existing file unless allowed, and never over the input. */
export async function checkTarget(target: string, options: WriteOptions): Promise<void> {
  const input = options.input;
  if (input !== undefined && input !== "-" && (await exists(target)) && (await sameFile(input, target))) {
    throw new MmhError("E_BAD_OPTION", `output ${target} is the input file`);
  }
  if (!options.overwrite && (await exists(target))) {
    throw new MmhError("E_EXISTS", `${target} already exists (use -f to overwrite)`);
  }
}

async function sameFile(a: string, b: string): Promise<boolean> {
  try {
    return (await realpath(a)) === (await realpath(b));
  } catch {
    return false;
  }
}

/**
 * Write a byte stream to `target` through a temporary file beside it, renamed into place
 * only when the whole stream was written. On any failure the temporary file is removed
 * and the target is left as it was.
 */
export async function writeFileAtomic(
  target: string,
  data: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: WriteOptions = {},
): Promise<void> {
  await checkTarget(target, options);
  const temp = join(dirname(target), `.${basename(target)}.${randomBytes(6).toString("hex")}.tmp`);
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(temp, "wx", 0o644);
  } catch (error) {
    throw toMmhError(error, `cannot create ${target}`);
  }
  try {
    const out = createWriteStream("", { fd: handle.fd, autoClose: false, highWaterMark: 1 << 20 });
    await pipeline(Readable.from(data, { objectMode: false }), out, { signal: options.signal });
    await handle.close();
    if (options.overwrite) {
      await rename(temp, target);
    } else {
      try {
        // link() fails if the target appeared meanwhile, so a concurrent file is never replaced.
        await link(temp, target);
        await unlink(temp);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "EEXIST")
          throw new MmhError("E_EXISTS", `${target} already exists (use -f to overwrite)`);
        if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EXDEV") throw error;
        await rename(temp, target); // a file system without hard links
      }
    }
  } catch (error) {
    await handle.close().catch(() => {});
    await unlink(temp).catch(() => {});
    throw toMmhError(error, `cannot write ${target}`);
  }
}

/** A file's bytes as a stream of pieces of about `pieceSize` bytes. */
export function readFileStream(
  path: string,
  pieceSize = 1 << 20,
  signal?: AbortSignal,
): AsyncIterable<Uint8Array> {
  return (async function* () {
    const stream = createReadStream(path, { highWaterMark: pieceSize, signal });
    try {
      for await (const piece of stream) yield piece as Buffer;
    } catch (error) {
      throw toMmhError(error, `cannot read ${path}`);
    }
  })();
}
