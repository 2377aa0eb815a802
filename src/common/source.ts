/**
 * Positioned reads over a file or a buffer: what the format recognisers, the reader of
 * .mmh files and pack read through.
 */

import { readSync } from "node:fs";
import { check, MmhError, toMmhError } from "./errors.ts";
import { type FileHandle, open } from "./fsp.ts";

/**
 * Reads up to this long are made on the calling thread. From the page cache such a read
 * takes a few microseconds there, where a read on libuv's thread pool costs a round trip
 * of tens of microseconds of CPU; the recognisers, the tied-tensor planner and the .mmh
 * reader's index make many of them (docs/ENGINE.md, "Small reads").
 */
export const SYNC_READ = 64 << 10;

/** A byte range of a source. */
export interface ByteRange {
  offset: number;
  length: number;
}

/** Positioned reads over a file, a buffer or a URL. */
export interface RandomAccessSource {
  readonly size: number;
  read(offset: number, length: number): Promise<Buffer>;
  /**
   * Several ranges at once, the buffers in the same order. A source where each read is
   * a round trip (HTTP) has it, to merge adjacent ranges into one request and run a
   * bounded number of requests at a time; callers read range by range without it.
   */
  readMany?(ranges: readonly ByteRange[]): Promise<Buffer[]>;
  close(): Promise<void>;
}

export function bufferSource(bytes: Uint8Array): RandomAccessSource {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    size: buf.length,
    async read(offset, length) {
      // (The message is built only when the check fails: recognisers read here field by field.)
      if (!(offset + length <= buf.length))
        check(false, "E_TRUNCATED", `read past the end of the data at offset ${offset}`);
      return buf.subarray(offset, offset + length);
    },
    async close() {},
  };
}

/** Positioned reads over an open handle of a known size; `label` names it in errors. */
export function handleSource(handle: FileHandle, size: number, label: string): RandomAccessSource {
  return {
    size,
    async read(offset, length) {
      check(offset + length <= size, "E_TRUNCATED", `read past the end of ${label} at offset ${offset}`);
      const out = Buffer.allocUnsafe(length);
      let done = 0;
      while (done < length) {
        let bytesRead: number;
        try {
          bytesRead =
            length <= SYNC_READ
              ? readSync(handle.fd, out, done, length - done, offset + done)
              : (await handle.read(out, done, length - done, offset + done)).bytesRead;
        } catch (error) {
          throw toMmhError(error, `cannot read ${label}`);
        }
        if (bytesRead === 0)
          throw new MmhError("E_TRUNCATED", `${label} ended early (changed while reading?)`);
        done += bytesRead;
      }
      return out;
    },
    close: () => handle.close(),
  };
}

/** The regular file `path`, opened for positioned reads. */
export async function fileSource(path: string): Promise<RandomAccessSource> {
  let handle: FileHandle;
  try {
    handle = await open(path, "r");
  } catch (error) {
    throw toMmhError(error, `cannot open ${path}`);
  }
  let size: number;
  try {
    const stat = await handle.stat();
    check(stat.isFile(), "E_IO", `${path} is not a regular file`);
    size = stat.size;
  } catch (error) {
    await handle.close();
    throw toMmhError(error, `cannot read ${path}`);
  }
  return handleSource(handle, size, path);
}
