/**
 * compressSync and decompressSync. The recognisers and the coder are asynchronous (they
 * read through positioned, awaited reads and may start worker threads), so the sync calls
 * run the Promise calls on one helper thread (synckit) and block until it answers: the
 * output is the same bytes, at the cost of copying the input and the output across
 * threads and, on the first call, of starting that thread.
 */
import { createRequire } from "node:module";
import { MmhError } from "./common/errors.ts";
import type { CompressOptions, DecompressOptions } from "./engine/options.ts";
import type { SyncAnswer, SyncCall } from "./sync-worker.ts";

/** The helper thread's module: beside this one, or in the build beside every bundle file (scripts/build.ts). */
const WORKER_FILE = import.meta.url.endsWith(".ts") ? "./sync-worker.ts" : "./sync-worker.js";

let call: ((request: SyncCall) => SyncAnswer) | undefined;

/**
 * The call into the helper thread. synckit is loaded here, on first use: importing the
 * library should not load it (and the modules it needs) for programs that never call the
 * sync functions (docs/ENGINE.md, Start-up).
 */
function helperThread(): (request: SyncCall) => SyncAnswer {
  const { createSyncFn } = createRequire(import.meta.url)("synckit") as typeof import("synckit");
  return createSyncFn<(request: SyncCall) => Promise<SyncAnswer>>(new URL(WORKER_FILE, import.meta.url));
}

function run(request: SyncCall): Uint8Array {
  if (!(request.bytes instanceof Uint8Array))
    throw new MmhError("E_BAD_OPTION", `${request.op}Sync takes a Uint8Array`);
  const options = request.options as Record<string, unknown>;
  if (options === null || typeof options !== "object")
    throw new MmhError("E_BAD_OPTION", `${request.op}Sync takes an options object`);
  if (options.signal !== undefined)
    throw new MmhError("E_BAD_OPTION", `${request.op}Sync takes no signal: it cannot be interrupted`);
  // The options cross to the helper thread by structured clone, which a function cannot.
  for (const [key, value] of Object.entries(options))
    if (typeof value === "function")
      throw new MmhError(
        "E_BAD_OPTION",
        `${request.op}Sync takes no callbacks (${key}): use ${request.op}()`,
      );
  call ??= helperThread();
  const answer = call(request);
  if (!answer.ok) throw MmhError.fromJSON(answer.error);
  const bytes = answer.bytes;
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Compress bytes into an .mmh container, blocking until done: the same bytes as compress(). */
export function compressSync(bytes: Uint8Array, options: Omit<CompressOptions, "signal"> = {}): Uint8Array {
  return run({ op: "compress", bytes, options });
}

/** Decompress a whole .mmh container, blocking until done: the same bytes as decompress(). */
export function decompressSync(
  bytes: Uint8Array,
  options: Omit<DecompressOptions, "signal"> = {},
): Uint8Array {
  return run({ op: "decompress", bytes, options });
}
