/** Path helpers shared by pack and unpack. */
import { realpath } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { MmhError } from "../common/errors.ts";

export function unsafe(message: string): MmhError {
  return new MmhError("E_UNSAFE_PATH", message);
}

/** Paths compared as UTF-8 byte strings, the order of FORMAT.md §10.1. */
export function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

export function isInside(folder: string, path: string): boolean {
  const rel = relative(folder, path);
  return rel === "" || (!rel.startsWith(`..${sep}`) && rel !== ".." && !isAbsolute(rel));
}

/** Where `path` (which may not exist yet) is, with its folder's symbolic links resolved. */
export async function realTarget(path: string): Promise<string> {
  const abs = resolve(path);
  try {
    return join(await realpath(dirname(abs)), basename(abs));
  } catch {
    return abs;
  }
}
