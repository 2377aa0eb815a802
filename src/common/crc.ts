/**
 * CRC-32 (ISO-HDLC, as zlib's) of the container's checks. node:zlib's crc32 runs a table
 * loop; @node-rs/crc32 (crc32fast, carry-less multiply where the CPU has it) is about
 * twice as fast on large buffers (bench/results/crc.md), but opening it costs a few ms.
 * So it is loaded only once a process has checked NATIVE_CRC_AFTER_BYTES with zlib's,
 * where the rest of a large file repays the load, and node:zlib's stays the path of small
 * files and wherever no prebuilt binary loads. Both give the same value for any bytes and
 * any initial value (test/crc.test.ts).
 */
import { createRequire } from "node:module";
import { crc32 as zlibCrc32 } from "node:zlib";

type Native = (input: Uint8Array, initial?: number) => number;

/** From this many bytes on (MMH's smallest chunk), a CRC goes to the native module once it is loaded. */
export const NATIVE_CRC_MIN_BYTES = 4096;

/** The bytes a process checks with zlib's (in pieces of NATIVE_CRC_MIN_BYTES or more) before loading the native module. */
export const NATIVE_CRC_AFTER_BYTES = 32 * 1024 * 1024;

let native: Native | null | undefined;
let zlibBytes = 0;

/** The platform packages @node-rs/crc32 ships, in the order to try for this process. */
function candidates(): string[] {
  const base = `@node-rs/crc32-${process.platform}-${process.arch}`;
  if (process.platform === "linux") return [`${base}-gnu`, `${base}-musl`, `${base}-gnueabihf`];
  if (process.platform === "win32") return [`${base}-msvc`];
  return [base];
}

/**
 * The native CRC, loaded once; null where none loads (or MMH_NATIVE_CRC=0). The platform
 * package is required directly: the package's own loader asks process.report whether libc
 * is musl, which costs more than the module's whole load.
 */
function loadNative(): Native | null {
  if (native !== undefined) return native;
  native = null;
  if (process.env.MMH_NATIVE_CRC === "0") return native;
  const require = createRequire(import.meta.url);
  for (const name of candidates()) {
    try {
      const mod = require(name) as { crc32?: unknown };
      if (typeof mod.crc32 === "function") {
        native = mod.crc32 as Native;
        break;
      }
    } catch {
      // Not installed for this platform, or the binary does not load here (musl, old libc).
    }
  }
  return native;
}

/** CRC-32 of `data`, continuing from `initial` (the CRC of the bytes before it), as zlib.crc32. */
export function crc32(data: Uint8Array, initial = 0): number {
  if (data.length >= NATIVE_CRC_MIN_BYTES) {
    if (native === undefined) {
      zlibBytes += data.length;
      if (zlibBytes >= NATIVE_CRC_AFTER_BYTES) loadNative();
    }
    if (native) return native(data, initial) >>> 0;
  }
  return zlibCrc32(data, initial);
}

/**
 * The caller is about to check `bytes` more in large pieces (a decoder that read the
 * content's length from the index): when they reach NATIVE_CRC_AFTER_BYTES, the native
 * module is loaded now, not after zlib's has checked the first NATIVE_CRC_AFTER_BYTES of
 * them, as its load would then be repaid anyway.
 */
export function expectCrcBytes(bytes: number): void {
  if (native === undefined && zlibBytes + bytes >= NATIVE_CRC_AFTER_BYTES) loadNative();
}

/** Whether large buffers can go to the native module (loading it now if not yet tried). */
export function nativeCrc(): boolean {
  return loadNative() !== null;
}

/** Whether the native module is loaded (without loading it). */
export function nativeCrcLoaded(): boolean {
  return typeof native === "function";
}
