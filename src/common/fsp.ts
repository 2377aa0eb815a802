/**
 * Promise forms of the file calls the commands make, built on node:fs's callback functions.
 * node:fs/promises loads readline, the REPL's history and the file watchers when first
 * imported (about 3 ms of CPU, docs/ENGINE.md, "Start-up and V8's tiers"), which the codec
 * commands' start-up need not pay: node:fs and node:util are loaded with Node itself.
 */
import type { Stats } from "node:fs";
import {
  chmod as chmodCallback,
  close as closeCallback,
  fstat as fstatCallback,
  link as linkCallback,
  open as openCallback,
  read as readCallback,
  readdir as readdirCallback,
  realpath as realpathCallback,
  rename as renameCallback,
  stat as statCallback,
  unlink as unlinkCallback,
} from "node:fs";
import { promisify } from "node:util";

export const chmod = promisify(chmodCallback);
export const link = promisify(linkCallback);
export const readdir = promisify(readdirCallback);
export const realpath = promisify(realpathCallback);
export const rename = promisify(renameCallback);
export const stat = promisify(statCallback);
export const unlink = promisify(unlinkCallback);

const openFd = promisify(openCallback);
const closeFd = promisify(closeCallback);
const fstatFd = promisify(fstatCallback);
const readFd = promisify(readCallback);

/** An open file: the part of node:fs/promises' FileHandle that MMH uses. */
export interface FileHandle {
  readonly fd: number;
  read(
    buffer: Uint8Array,
    offset: number,
    length: number,
    position: number | null,
  ): Promise<{ bytesRead: number }>;
  stat(): Promise<Stats>;
  /** Closes the file once; later calls resolve at once (the descriptor's number may be reused). */
  close(): Promise<void>;
}

export async function open(path: string, flags: string, mode?: number): Promise<FileHandle> {
  const fd = await openFd(path, flags, mode);
  let closing: Promise<void> | undefined;
  return {
    fd,
    read: (buffer, offset, length, position) => readFd(fd, buffer, offset, length, position),
    stat: () => fstatFd(fd),
    close: () => {
      closing ??= closeFd(fd);
      return closing;
    },
  };
}
