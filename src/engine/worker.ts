/**
 * A pool thread: encodes or decodes one chunk per message with the same code the calling
 * thread would run. Chunk bytes are read from and written to shared slots (see slots.ts);
 * messages carry only slot numbers, offsets and sizes. Errors go back as {code, message},
 * so they keep their code.
 */
import { parentPort, workerData } from "node:worker_threads";
import { codecById } from "../codecs/registry.ts";
import { copyBytes, dispose } from "../common/bytes.ts";
import { expectCrcBytes } from "../common/crc.ts";
import type { DTypeName } from "../common/dtype.ts";
import { MmhError } from "../common/errors.ts";
import { type Choice, encodeChoices } from "./auto.ts";
import { decodeChunk, type EncodedChunk } from "./chunk.ts";
import { answerUntilStopped, DONE_WORD } from "./control.ts";
import { type DeltaJob, encodeAgainstBase } from "./deltacode.ts";
import {
  decodeShare,
  decodeShareOrdered,
  endShare,
  type FileShare,
  ShareFailure,
  type ShareMemory,
  shareContentBytes,
} from "./filedecode.ts";

/** Requests name shared slots by number; a slot's memory comes once, in `register`. */
type Registering = { register?: [number, SharedArrayBuffer][] };

export type WorkerRequest = Registering &
  (
    | {
        id: number;
        op: "encode";
        input: number;
        /** Where the chunk starts in the input slot. */
        at: number;
        length: number;
        output: number;
        dtype: DTypeName | null;
        choices: Choice[];
      }
    | {
        id: number;
        /** A chunk of a tensor the base holds: coded on its own (choices) and against the base (job). */
        op: "delta";
        input: number;
        at: number;
        length: number;
        /** The slot holding the chunk's base bytes, from 0. */
        base: number;
        output: number;
        dtype: DTypeName | null;
        choices: Choice[];
        job: DeltaJob;
      }
    | {
        id: number;
        op: "decode";
        codec: string;
        params: Uint8Array;
        input: number;
        /** Where the payload starts in the input slot. */
        at: number;
        length: number;
        output: number;
        rawLength: number;
        rawCrc: number;
        where: string;
      }
    | {
        id: number;
        /** Take records of an .mmh file and decode them into the output file (filedecode.ts). */
        op: "file";
        share: FileShare;
      }
  );

export type WorkerReply =
  | {
      id: number;
      ok: true;
      op: "encode" | "delta";
      /** Where the record header starts in the output slot; the payload follows it. */
      headerAt: number;
      headerLength: number;
      payloadLength: number;
      codec: string;
      rawCrc: number;
      extraMs: number;
    }
  | { id: number; ok: true; op: "decode" | "file" }
  | {
      id: number;
      ok: false;
      /** `system`: the system error's code behind it (EPIPE for a reader gone), if one was. */
      error: { code: string; message: string; record?: number; system?: string };
    };

/**
 * Where a payload goes in an encode's output slot: after room for the largest record
 * header (36 bytes and up to 65535 of parameters).
 */
export const PAYLOAD_AT = 64 << 10;

const slots = new Map<number, SharedArrayBuffer>();

function slot(id: number): SharedArrayBuffer {
  const buffer = slots.get(id);
  if (!buffer) throw new MmhError("E_INTERNAL", `worker: unknown slot ${id}`);
  return buffer;
}

/**
 * Put a coded chunk into its output slot: the record header just before PAYLOAD_AT where
 * the codec wrote the payload there, otherwise both copied in from the start.
 */
function written(
  chunk: EncodedChunk,
  out: Uint8Array,
): { headerAt: number; headerLength: number; payloadLength: number; codec: string; rawCrc: number } {
  const headerLength = chunk.header.length;
  const payloadLength = chunk.payload.length;
  let headerAt = 0;
  if (chunk.payload.buffer === out.buffer && chunk.payload.byteOffset === PAYLOAD_AT) {
    headerAt = PAYLOAD_AT - headerLength;
    if (headerAt < 0) throw new MmhError("E_INTERNAL", "a record header does not fit its slot");
    out.set(chunk.header, headerAt);
  } else {
    if (headerLength + payloadLength > out.length)
      throw new MmhError("E_INTERNAL", "an encoded chunk does not fit its output slot");
    out.set(chunk.header, 0);
    out.set(chunk.payload, headerLength);
    if (chunk.owned) dispose(chunk.payload, true); // a codec's own output, copied now
  }
  return { headerAt, headerLength, payloadLength, codec: chunk.codec, rawCrc: chunk.rawCrc };
}

function handle(request: WorkerRequest): WorkerReply | Promise<WorkerReply> {
  const id = request.id;
  for (const [number, buffer] of request.register ?? []) slots.set(number, buffer);
  switch (request.op) {
    case "encode": {
      // The payload is written at PAYLOAD_AT in the output slot when the codec can write
      // it there, the record header just before it; otherwise both are copied in.
      const raw = new Uint8Array(slot(request.input), request.at, request.length);
      const out = new Uint8Array(slot(request.output));
      const output = (size: number) =>
        PAYLOAD_AT + size <= out.length ? out.subarray(PAYLOAD_AT, PAYLOAD_AT + size) : new Uint8Array(size);
      const { chunk, extraMs } = encodeChoices(raw, request.dtype, request.choices, output);
      return { id, ok: true, op: "encode", ...written(chunk, out), extraMs };
    }
    case "delta": {
      const raw = new Uint8Array(slot(request.input), request.at, request.length);
      const base = new Uint8Array(slot(request.base), 0, request.length);
      const out = new Uint8Array(slot(request.output));
      const { chunk: plain, extraMs } = encodeChoices(raw, request.dtype, request.choices);
      const chunk = encodeAgainstBase(raw, base, request.job, plain);
      return { id, ok: true, op: "delta", ...written(chunk, out), extraMs };
    }
    case "decode": {
      const payload = new Uint8Array(slot(request.input), request.at, request.length);
      const into = new Uint8Array(slot(request.output), 0, request.rawLength);
      const raw = decodeChunk(
        request.codec,
        request.params,
        payload,
        request.rawLength,
        request.rawCrc,
        request.where,
        into,
      );
      if (raw.buffer !== into.buffer || raw.byteOffset !== 0) {
        copyBytes(into, raw);
        if (codecById(request.codec).decodesToOwn) dispose(raw, true); // a codec's own output, copied now
      }
      return { id, ok: true, op: "decode" };
    }
    case "file": {
      // This thread codes nothing else, so a record may be read into the kernels' input area
      // and decoded into its codec's memory.
      fileMemory ??= { lent: true };
      const memory = fileMemory;
      expectCrcBytes(shareContentBytes(request.share));
      const reply = { id, ok: true, op: "file" } as const;
      if (request.share.ordered)
        return decodeShareOrdered(request.share, memory)
          .finally(() => endShare(memory))
          .then(() => reply);
      try {
        decodeShare(request.share, memory);
      } finally {
        endShare(memory);
      }
      return reply;
    }
  }
}

/** The memory a file job reuses from record to record. */
let fileMemory: ShareMemory | undefined;

/**
 * This thread's control memory (pool.ts Thread): requests done, which the pool reads
 * without waiting for replies (pool.ts Lane), requests running, and the word set to stop it.
 */
const control: Int32Array | undefined = (workerData as { control?: Int32Array } | undefined)?.control;

// The pool sends work once this worker has said it is ready (its code is loaded).
parentPort?.postMessage({ ready: true });

// A thread asked to stop leaves between requests, never inside one (control.ts).
answerUntilStopped<WorkerRequest>(parentPort, control, async (request) => {
  parentPort?.postMessage(await answer(request));
});

/** The answer to `request`, its error's code and message when it fails. */
async function answer(request: WorkerRequest): Promise<WorkerReply> {
  let reply: WorkerReply;
  try {
    reply = await handle(request);
  } catch (error) {
    const record = error instanceof ShareFailure ? error.record : undefined;
    const cause = error instanceof ShareFailure ? error.error : error;
    const e =
      cause instanceof MmhError
        ? cause
        : new MmhError("E_INTERNAL", String((cause as Error)?.message ?? cause));
    const system = (e.cause as NodeJS.ErrnoException | undefined)?.code;
    reply = {
      id: request.id,
      ok: false,
      error: {
        code: e.code,
        message: e.message,
        ...(record === undefined ? {} : { record }),
        ...(typeof system === "string" ? { system } : {}),
      },
    };
  }
  if (control) Atomics.add(control, DONE_WORD, 1);
  return reply;
}
