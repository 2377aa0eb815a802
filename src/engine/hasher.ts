/**
 * The hashing thread: the sha256 of the content, fed in content order from the shared
 * slots of its pool (see WorkerPool.hash and ContentHash). It imports nothing of mmh but
 * its stop protocol (control.ts, which imports nothing), so it starts sooner than a coding
 * worker, which loads the codecs (see docs/ENGINE.md, Measurements behind engine choices:
 * Hashing thread start-up).
 */
import { createHash, type Hash } from "node:crypto";
import { parentPort, workerData } from "node:worker_threads";
import { answerUntilStopped } from "./control.ts";

/** Requests name shared slots by number; a slot's memory comes once, in `register`. */
type Registering = { register?: [number, SharedArrayBuffer][] };

/** What the hashing thread is asked: add `length` bytes of slot `input` from byte `at`, or finish. */
export type HashRequest = Registering &
  ({ id: number; op: "hash"; input: number; at: number; length: number } | { id: number; op: "digest" });

export type HashReply =
  | { id: number; ok: true; op: "hash" }
  | { id: number; ok: true; op: "digest"; digest: string };

const slots = new Map<number, SharedArrayBuffer>();
let hash: Hash | undefined;

/** This thread's control memory (control.ts; pool.ts Thread). */
const control: Int32Array | undefined = (workerData as { control?: Int32Array } | undefined)?.control;

// As a coding worker does (worker.ts): a thread asked to stop leaves between requests.
answerUntilStopped<HashRequest>(parentPort, control, answer);

/** Hash the bytes asked for, or answer with the digest; either way, say so. */
function answer(request: HashRequest): void {
  for (const [number, buffer] of request.register ?? []) slots.set(number, buffer);
  if (request.op === "hash") {
    hash ??= createHash("sha256");
    hash.update(new Uint8Array(slots.get(request.input)!, request.at, request.length));
    parentPort?.postMessage({ id: request.id, ok: true, op: "hash" } satisfies HashReply);
  } else {
    const digest = (hash ?? createHash("sha256")).digest("hex");
    hash = undefined;
    parentPort?.postMessage({ id: request.id, ok: true, op: "digest", digest } satisfies HashReply);
  }
}
