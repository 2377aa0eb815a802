/**
 * The thread behind compressSync and decompressSync (src/sync.ts): it runs the Promise
 * calls while the calling thread waits, so both give exactly the bytes the async calls give.
 */
import { runAsWorker } from "synckit";
import { type ErrorCode, toMmhError } from "./common/errors.ts";
import type { CompressOptions, DecompressOptions } from "./engine/options.ts";
import { compress, decompress } from "./index.ts";

export type SyncCall =
  | { op: "compress"; bytes: Uint8Array; options: CompressOptions }
  | { op: "decompress"; bytes: Uint8Array; options: DecompressOptions };

/** What the worker answers: the output, or the error's code and message (an Error's class does not cross threads). */
export type SyncAnswer =
  | { ok: true; bytes: Uint8Array }
  | { ok: false; error: { code: ErrorCode; message: string } };

runAsWorker(async (call: SyncCall): Promise<SyncAnswer> => {
  try {
    const bytes =
      call.op === "compress"
        ? await compress(call.bytes, call.options)
        : await decompress(call.bytes, call.options);
    return { ok: true, bytes };
  } catch (error) {
    return { ok: false, error: toMmhError(error).toJSON() };
  }
});
