/**
 * A chunk-coding worker: encodes or decodes one chunk per message, with the same code the
 * calling thread would run. Errors go back as {code, message}, so they keep their code.
 */
import { parentPort } from "node:worker_threads";
import { MmhError } from "../common/errors.ts";
import type { DTypeName } from "../formats/dtype.ts";
import { type Choice, encodeChoices } from "./auto.ts";
import { decodeChunk } from "./chunk.ts";

export type WorkerRequest =
  | { id: number; op: "encode"; raw: Uint8Array; dtype: DTypeName | null; choices: Choice[] }
  | {
      id: number;
      op: "decode";
      codec: string;
      params: Uint8Array;
      payload: Uint8Array;
      rawLength: number;
      rawCrc: number;
      where: string;
    };

export type WorkerReply =
  | {
      id: number;
      ok: true;
      op: "encode";
      header: Uint8Array;
      payload: Uint8Array;
      codec: string;
      rawLength: number;
      rawCrc: number;
      extraMs: number;
    }
  | { id: number; ok: true; op: "decode"; raw: Uint8Array }
  | { id: number; ok: false; error: { code: string; message: string } };

/** The buffers of these views that can be handed over whole (a view of part of a buffer is copied instead). */
export function transferable(...views: Uint8Array[]): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const v of views) {
    if (
      v.buffer instanceof ArrayBuffer &&
      v.byteOffset === 0 &&
      v.byteLength === v.buffer.byteLength &&
      v.byteLength > 0
    ) {
      out.add(v.buffer);
    }
  }
  return [...out];
}

function handle(request: WorkerRequest): { reply: WorkerReply; transfer: ArrayBuffer[] } {
  try {
    if (request.op === "encode") {
      const { chunk, extraMs } = encodeChoices(request.raw, request.dtype, request.choices);
      const reply: WorkerReply = {
        id: request.id,
        ok: true,
        op: "encode",
        header: chunk.header,
        payload: chunk.payload,
        codec: chunk.codec,
        rawLength: chunk.rawLength,
        rawCrc: chunk.rawCrc,
        extraMs,
      };
      return { reply, transfer: transferable(chunk.header, chunk.payload) };
    }
    const raw = decodeChunk(
      request.codec,
      request.params,
      request.payload,
      request.rawLength,
      request.rawCrc,
      request.where,
    );
    return { reply: { id: request.id, ok: true, op: "decode", raw }, transfer: transferable(raw) };
  } catch (error) {
    const e =
      error instanceof MmhError
        ? error
        : new MmhError("E_INTERNAL", String((error as Error)?.message ?? error));
    return {
      reply: { id: request.id, ok: false, error: { code: e.code, message: e.message } },
      transfer: [],
    };
  }
}

parentPort?.on("message", (request: WorkerRequest) => {
  const { reply, transfer } = handle(request);
  parentPort?.postMessage(reply, transfer);
});
