/**
 * Decoding an .mmh file into a regular file on several threads, none of them waiting for
 * another: each thread (the calling one and its workers) takes the next record from a
 * counter in shared memory, reads it from the .mmh file at its offset, checks and decodes
 * it, and writes its content at its own offset in the output file. No decoded byte
 * crosses threads and no message goes by per record; the calling thread only hands out
 * the job, reports progress and gathers errors. For a file whose index says every
 * record decodes on its own or from one earlier record (DUPE; no DLTA or LONG record:
 * those need the base or the content before them), when no content hash is asked for
 * (it takes the content in order). docs/ENGINE.md, Threads, has the arrangement and its
 * figures.
 */
import { readSync, writeSync } from "node:fs";
import { setImmediate as nextTurn } from "node:timers/promises";
import type { Worker } from "node:worker_threads";
import { codecById } from "../codecs/registry.ts";
import { copyBytes, dispose } from "../common/bytes.ts";
import { check, type ErrorCode, MmhError, toMmhError } from "../common/errors.ts";
import {
  CHUNK_HEADER_SIZE,
  checkChunkHeader,
  MAX_CHUNK_SIZE,
  parseChunkHeader,
} from "../container/format.ts";
import { decodeChunk, decodeChunkLent, decodeChunkPieces } from "./chunk.ts";
import type { DecodeSummary } from "./decoder.ts";
import { KernelBatches } from "./kernelbatches.ts";
import { LONG_CODEC } from "./long.ts";
import { startWorker, type Thread } from "./pool.ts";
import type { ProgressReporter } from "./progress.ts";
import type { ChunkInfo, MmhReader } from "./reader.ts";
import { DELTA_CODEC, DUPE_CODEC, dupeTarget, type RecordParts, type TargetFacts } from "./refs.ts";

/** HIER's codec in the shared table (fourccNumber). */
const HIER_CODEC = fourccNumber("HIER");

/** A record's fields in the shared table: offset and length in the file, in the content, CRC, codec. */
const FIELDS = 6;
/**
 * Slots of the shared control words: the next record to take, the first record that
 * failed, the records decoded and written, and (writing in order) the next record to write
 * and the first hold slot not yet given to a thread.
 */
const NEXT = 0;
const FAILED = 1;
const DONE = 2;
const TURN = 3;
const SLOTS_GIVEN = 4;
/** The control words' size in bytes. */
const CONTROL_BYTES = 20;
/** How long a thread waiting for its turn sleeps before it looks at the control words again (ms). */
const TURN_WAIT_MS = 100;
/** Content bytes the calling thread decodes between turns of its event loop (abort, progress, replies). */
const TURN_BYTES = 1 << 20;

/**
 * The work the threads share, all in shared memory: the record table, the control words
 * and the bytes done (content, then stored), and the file descriptors of the .mmh file
 * and the output, open in this process for every thread.
 */
export interface FileShare {
  table: Float64Array;
  control: Int32Array;
  done: BigInt64Array;
  input: number;
  output: number;
  /**
   * Whether the output takes the content in order (a pipe, standard output): each thread
   * writes its record at the descriptor's position once every earlier record is written
   * (the TURN word), instead of at the record's offset.
   */
  ordered: boolean;
  /**
   * Writing in order: the records decoded before their turn, held in shared memory so
   * that whichever thread passes the turn to one writes it (decodeShareOrdered). `state`
   * has a word per record: 0 while not held, the hold slot's number plus one once held,
   * -1 once a thread has taken it to write. `slots` holds `perThread` slots of `slotBytes`
   * for each thread (HELD_RECORDS, fewer where they would take more than HELD_BYTES); no
   * holds where every record is over HOLD_SLOT_MAX.
   */
  holds?: { state: Int32Array; slots: SharedArrayBuffer; slotBytes: number; perThread: number };
}

/** One thread's reused memory: the record read, the content decoded (when not lent). */
export interface ShareMemory {
  /** Whether a codec's own reused memory may hold a record's content (Codec.decodeLent). */
  lent: boolean;
  /**
   * With `lent`, where the records are read: the HIER kernels' input area (KernelBatches),
   * so that HIER decodes a payload where it lies instead of copying it into the kernels'
   * memory first; null where the records do not suit it (inputArea). Taken at the thread's
   * first record, given back by endShare.
   */
  area?: KernelBatches | null;
  /** Where a record is read otherwise. */
  read?: Buffer;
  /** A DUPE record's target, read again (otherwise). */
  target?: Buffer;
  spare?: Buffer;
  /**
   * Writing in order: this thread's hold slots (numbers into FileShare.holds), given at
   * its first hold, and the records it holds in them, oldest first, until written.
   */
  slots?: number[];
  held?: { i: number; slot: number }[];
}

/**
 * Writing in order, the records a thread may hold decoded while an earlier record is not
 * yet written, before it waits: a thread whose record's turn has not come copies it out
 * of its codec's memory into a slot of shared memory and goes on to the next instead of
 * idling, and the thread that passes the turn to a held record writes it. So a thread
 * that is slower with one record, or not running (another process has the core), holds
 * up the others only once they hold this many.
 */
const HELD_RECORDS = 8;
/** The most content bytes a thread's hold slots take (fewer slots for larger records). */
const HELD_BYTES = 16 << 20;
/** Records larger than this are never held: their thread waits for their turn. */
const HOLD_SLOT_MAX = 8 << 20;

/** A record's failure, with the record's number: the first in file order is the one reported. */
export class ShareFailure extends Error {
  readonly error: MmhError;
  readonly record: number;
  constructor(error: MmhError, record: number) {
    super(error.message);
    this.error = error;
    this.record = record;
  }
}

function fourcc(n: number): string {
  return String.fromCharCode(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);
}

function fourccNumber(codec: string): number {
  let n = 0;
  for (let i = 0; i < 4; i++) n = n * 256 + (codec.charCodeAt(i) & 255);
  return n;
}

/**
 * Lower the first failed record to `record` unless an earlier one failed first, and wake
 * the threads waiting for their turn to write: those after it take no turn.
 */
function markFailed(control: Int32Array, record: number): void {
  for (;;) {
    const seen = Atomics.load(control, FAILED);
    if (seen <= record) break;
    if (Atomics.compareExchange(control, FAILED, seen, record) === seen) break;
  }
  Atomics.notify(control, TURN);
}

/**
 * Wait until the TURN word is no longer `turn` (or TURN_WAIT_MS went by), with the
 * thread's event loop turning meanwhile (a worker's exit, an abort).
 */
async function turnMoves(control: Int32Array, turn: number): Promise<void> {
  const waited = Atomics.waitAsync(control, TURN, turn, TURN_WAIT_MS);
  if (waited.async) await waited.value;
}

/** Record `i` is written: the next one's thread may write. */
function passTurn(control: Int32Array, i: number): void {
  Atomics.store(control, TURN, i + 1);
  Atomics.notify(control, TURN);
}

/**
 * Take records and decode them into the output until none is left, an earlier record
 * failed, or about `budget` content bytes were decoded: true when records may remain. A
 * record that fails marks itself failed and throws a ShareFailure; the other threads then
 * take no record after it.
 */
export function decodeShare(
  share: FileShare,
  memory: ShareMemory,
  budget = Number.POSITIVE_INFINITY,
): boolean {
  if (share.ordered) throw new MmhError("E_INTERNAL", "an ordered share is decoded by decodeShareOrdered");
  const count = share.table.length / FIELDS;
  let spent = 0;
  while (spent < budget) {
    const i = Atomics.add(share.control, NEXT, 1);
    if (i >= count || Atomics.load(share.control, FAILED) < i) return false;
    let made: Made;
    try {
      made = makeRecord(share, memory, i);
    } catch (error) {
      markFailed(share.control, i);
      throw new ShareFailure(toMmhError(error), i);
    }
    spent += putOrFail(share, i, made);
  }
  return true;
}

/**
 * decodeShare for an output that takes the content in order (`share.ordered`), on any
 * thread: a record whose turn has come (every earlier one written) is written from where
 * it was decoded; one whose turn has not is copied into one of the thread's hold slots in
 * shared memory, and the thread goes on with the next. Whichever thread passes the turn
 * to a held record writes it, and the ones held after it whose turn then comes
 * (writeTurns). The thread waits only with every hold slot taken (or for the turn of a
 * record that is not held: a long run, written piece by piece as it is decoded, or one
 * larger than a slot), and once no record is left to take, until its held records are
 * written. Waits let the thread's event loop turn. Returns as decodeShare (held records
 * may stay held across a return of true).
 */
export async function decodeShareOrdered(
  share: FileShare,
  memory: ShareMemory,
  budget = Number.POSITIVE_INFINITY,
): Promise<boolean> {
  const { control } = share;
  const count = share.table.length / FIELDS;
  memory.held ??= [];
  const held = memory.held;
  let spent = 0;
  for (;;) {
    if (!releaseHeld(share, memory)) return false;
    if (spent >= budget) return true;
    const i = Atomics.add(control, NEXT, 1);
    if (i >= count || Atomics.load(control, FAILED) < i) break;
    let made: Made;
    try {
      made = makeRecord(share, memory, i);
    } catch (error) {
      markFailed(control, i);
      // The records held, all before this one, are still written.
      await heldWritten(share, memory);
      throw new ShareFailure(toMmhError(error), i);
    }
    spent += made.rawLength;
    if (Atomics.load(control, TURN) === i) {
      putOrFail(share, i, made);
      writeTurns(share, i + 1);
      continue;
    }
    const slots =
      made.pieces || made.rawLength > (share.holds?.slotBytes ?? 0) ? 0 : holdSlots(share, memory).length;
    if (slots === 0) {
      if (!(await turnCame(share, memory, i))) return false;
      putOrFail(share, i, made);
      writeTurns(share, i + 1);
      continue;
    }
    while (held.length >= slots) if (!(await turnCame(share, memory, held[0].i + 1))) return false;
    if (Atomics.load(control, TURN) === i) {
      putOrFail(share, i, made);
      writeTurns(share, i + 1);
      continue;
    }
    hold(share, memory, i, made);
    // Its turn may have come since: the thread that passed it may have seen it not yet held.
    writeTurns(share, i);
  }
  await heldWritten(share, memory);
  return false;
}

/** The thread's hold slots, given at its first hold (HELD_RECORDS of the share's, or fewer). */
function holdSlots(share: FileShare, memory: ShareMemory): number[] {
  if (memory.slots) return memory.slots;
  const perThread = share.holds?.perThread ?? 0;
  const first = perThread > 0 ? Atomics.add(share.control, SLOTS_GIVEN, perThread) : 0;
  const total = share.holds ? share.holds.slots.byteLength / share.holds.slotBytes : 0;
  memory.slots = [];
  for (let k = first; k < first + perThread && k < total; k++) memory.slots.push(k);
  return memory.slots;
}

/** The content of hold slot `slot`, `length` bytes. */
function slotBytesOf(share: FileShare, slot: number, length: number): Uint8Array {
  const holds = share.holds!;
  return new Uint8Array(holds.slots, slot * holds.slotBytes, length);
}

/**
 * Copy record `i`, made and not yet written, into a free hold slot of the thread (one is:
 * the caller waited for it) and mark it held, for the thread that passes its turn to write.
 */
function hold(share: FileShare, memory: ShareMemory, i: number, made: Made): void {
  const free = holdSlots(share, memory).find((k) => !memory.held!.some((h) => h.slot === k))!;
  const raw = made.raw!;
  copyBytes(slotBytesOf(share, free, raw.length), raw);
  if (made.own) dispose(raw, true);
  memory.held!.push({ i, slot: free });
  Atomics.store(share.holds!.state, i, free + 1);
}

/**
 * Write, from `from` on, each record whose turn has come and that a thread holds, as long
 * as there is one: the turn passes from thread to thread without waiting for the holder.
 * A record is written by one thread only (the one whose compareExchange took it).
 */
export function writeTurns(share: FileShare, from: number): void {
  const { control, holds } = share;
  if (!holds) return;
  for (let j = from; ; j++) {
    if (Atomics.load(control, TURN) !== j || Atomics.load(control, FAILED) <= j) return;
    const state = Atomics.load(holds.state, j);
    if (state <= 0 || Atomics.compareExchange(holds.state, j, state, -1) !== state) return;
    const rawLength = share.table[j * FIELDS + 3];
    putOrFail(share, j, { raw: slotBytesOf(share, state - 1, rawLength), own: false, rawLength });
  }
}

/**
 * Free the hold slots of the thread's records that were written: false when a record
 * before the oldest held failed (the held ones are then dropped, never to be written).
 */
function releaseHeld(share: FileShare, memory: ShareMemory): boolean {
  const held = memory.held!;
  const { control } = share;
  const turn = Atomics.load(control, TURN);
  while (held.length > 0 && held[0].i < turn) held.shift();
  // A record from the first failed one on is never written, whichever thread met the failure.
  if (held.length > 0 && Atomics.load(control, FAILED) <= held[0].i) {
    held.length = 0;
    return false;
  }
  return true;
}

/**
 * Wait until record `until` may be written (every record before it is), freeing the hold
 * slots of the thread's records written meanwhile: false when a record before it failed.
 */
async function turnCame(share: FileShare, memory: ShareMemory, until: number): Promise<boolean> {
  const { control } = share;
  for (;;) {
    const turn = Atomics.load(control, TURN);
    if (!releaseHeld(share, memory)) return false;
    if (turn >= until) return true;
    // Those held before the failed record are still written (by the thread passing their
    // turn), and waited for; the others never are (releaseHeld dropped them).
    if (Atomics.load(control, FAILED) < until && memory.held!.length === 0) return false;
    await turnMoves(control, turn);
  }
}

/** Wait until every held record is written (unless a record before it failed). */
async function heldWritten(share: FileShare, memory: ShareMemory): Promise<void> {
  const held = memory.held!;
  while (held.length > 0) if (!(await turnCame(share, memory, held[held.length - 1].i + 1))) return;
}

function readAt(fd: number, into: Buffer, position: number, where: string): void {
  for (let at = 0; at < into.length; ) {
    const n = readSync(fd, into, at, into.length - at, position + at);
    check(n > 0, "E_TRUNCATED", `${where}: the file ends inside the record`);
    at += n;
  }
}

function writeAt(fd: number, bytes: Uint8Array, position: number): void {
  for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, bytes.length - at, position + at);
}

/** A word to sleep on while a full non-blocking output drains. */
const pause = new Int32Array(new SharedArrayBuffer(4));

/** The first and the longest sleep while a full non-blocking output drains (ms). */
const DRAIN_FIRST_MS = 0.05;
const DRAIN_MAX_MS = 2;

/**
 * Write all of `bytes` at `fd`'s position. A non-blocking descriptor that is full (one
 * made so by another process sharing it) is waited for, in sleeps that double from
 * DRAIN_FIRST_MS to DRAIN_MAX_MS until a write goes through.
 */
function writeOn(fd: number, bytes: Uint8Array): void {
  let sleep = DRAIN_FIRST_MS;
  for (let at = 0; at < bytes.length; ) {
    try {
      at += writeSync(fd, bytes, at, bytes.length - at);
      sleep = DRAIN_FIRST_MS;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EAGAIN") throw error;
      Atomics.wait(pause, 0, 0, sleep);
      sleep = Math.min(2 * sleep, DRAIN_MAX_MS);
    }
  }
}

/** Write record `i`'s `bytes`, the piece from content byte `at`, to the share's output. */
function put(share: FileShare, bytes: Uint8Array, at: number): void {
  if (share.ordered) writeOn(share.output, bytes);
  else writeAt(share.output, bytes, at);
}

/**
 * Record `i` read and checked against its index entry: into the thread's slot of the
 * kernels' input area when it holds one and the record fits (`memory.area`), else into
 * `memory[own]`, grown as needed. Returns the record's parts, views of where it was read.
 */
function readRecord(share: FileShare, i: number, memory: ShareMemory, own: "read" | "target"): RecordParts {
  const t = share.table;
  const f = i * FIELDS;
  const recordOffset = t[f];
  const length = t[f + 1];
  const rawLength = t[f + 3];
  const rawCrc = t[f + 4];
  const codec = fourcc(t[f + 5]);
  const where = `chunk ${i} at offset ${recordOffset}`;
  check(length >= CHUNK_HEADER_SIZE, "E_CORRUPT", `${where}: record overlaps the next one`);
  const slot = memory.area?.take(length);
  let bytes: Buffer;
  if (slot) bytes = Buffer.from(slot.buffer, slot.byteOffset, length);
  else {
    const buffer = memory[own];
    memory[own] = buffer && buffer.length >= length ? buffer : Buffer.allocUnsafeSlow(length);
    bytes = memory[own].subarray(0, length);
  }
  readAt(share.input, bytes, recordOffset, where);
  const fixed = bytes.subarray(0, CHUNK_HEADER_SIZE);
  const header = parseChunkHeader(fixed, where);
  check(
    CHUNK_HEADER_SIZE + header.paramsLength + header.storedLength === length,
    "E_CORRUPT",
    `${where}: record length differs from the index`,
  );
  const params = bytes.subarray(CHUNK_HEADER_SIZE, CHUNK_HEADER_SIZE + header.paramsLength);
  checkChunkHeader(fixed, params, header, where);
  check(
    header.codec === codec && header.rawLength === rawLength && header.rawCrc === rawCrc,
    "E_CORRUPT",
    `index entry ${i} does not match ${where}`,
  );
  const payload = bytes.subarray(CHUNK_HEADER_SIZE + header.paramsLength);
  return { where, codec, params, payload, rawLength, rawCrc };
}

/**
 * A record decoded and not yet written: its content, or for a long run its pieces (each
 * decoded as it is asked for), and whether `raw` is a codec's own memory to give back.
 */
interface Made {
  raw?: Uint8Array;
  pieces?: Iterable<Uint8Array>;
  own: boolean;
  rawLength: number;
}

/**
 * Record `i`: read, checked and decoded (a long run's pieces as they are written). A DUPE
 * record's target (an earlier record of a plain codec: decodesApart) is read and decoded
 * again in its stead.
 */
function makeRecord(share: FileShare, memory: ShareMemory, i: number): Made {
  if (memory.lent && memory.area === undefined) memory.area = inputArea(share.table) ?? null;
  let record = readRecord(share, i, memory, "read");
  if (record.codec === DUPE_CODEC) {
    const target = dupeTarget(record, i, (k) => (k < i ? factsOf(share.table, k) : undefined));
    // In the input area, the target goes to the slot after the DUPE record's.
    record = readRecord(share, target, memory, "target");
  }
  const { codec, params, payload, rawLength, rawCrc, where } = record;
  if (rawLength > MAX_CHUNK_SIZE) {
    // A long run: its pattern repeated, written a few MiB at a time once its CRC matched.
    return {
      pieces: decodeChunkPieces(codec, params, payload, rawLength, rawCrc, where),
      own: false,
      rawLength,
    };
  }
  const lent = memory.lent ? decodeChunkLent(codec, params, payload, rawLength, rawCrc, where) : undefined;
  if (lent) return { raw: lent, own: false, rawLength };
  if (!memory.spare || memory.spare.length < rawLength) memory.spare = Buffer.allocUnsafeSlow(rawLength);
  const into = memory.spare.subarray(0, rawLength);
  const raw = decodeChunk(codec, params, payload, rawLength, rawCrc, where, into);
  return { raw, own: raw.buffer !== into.buffer && codecById(codec).decodesToOwn === true, rawLength };
}

/**
 * Write record `i` (made by makeRecord) at its place, or, writing in order, at the
 * output's position and then pass the turn; count it done. Returns its content length.
 */
function putRecord(share: FileShare, i: number, made: Made): number {
  let at = share.table[i * FIELDS + 2];
  if (made.raw) {
    put(share, made.raw, at);
    if (made.own) dispose(made.raw, true);
  } else {
    for (const piece of made.pieces!) {
      put(share, piece, at);
      at += piece.length;
    }
  }
  if (share.ordered) passTurn(share.control, i);
  Atomics.add(share.done, 0, BigInt(made.rawLength));
  Atomics.add(share.done, 1, BigInt(share.table[i * FIELDS + 1]));
  Atomics.add(share.control, DONE, 1);
  return made.rawLength;
}

/** putRecord; a failure marks record `i` failed and is its ShareFailure. */
function putOrFail(share: FileShare, i: number, made: Made): number {
  try {
    return putRecord(share, i, made);
  } catch (error) {
    markFailed(share.control, i);
    throw new ShareFailure(toMmhError(error), i);
  }
}

/**
 * The HIER kernels' input area for a thread's records of `table` (KernelBatches.open, as
 * the one-thread decoder of the mmh command takes it): slots as long as the longest
 * record (4 MiB at most; a longer one is read elsewhere), and the kernels' memory grown for
 * the largest record decoded whole. Undefined where KernelBatches.open gives none.
 */
function inputArea(table: Float64Array): KernelBatches | undefined {
  let longest = 0;
  let largestRaw = 0;
  let largestHier = 0;
  for (let f = 0; f < table.length; f += FIELDS) {
    longest = Math.max(longest, table[f + 1]);
    const rawLength = table[f + 3];
    if (rawLength > MAX_CHUNK_SIZE) continue;
    largestRaw = Math.max(largestRaw, rawLength);
    if (table[f + 5] === HIER_CODEC) largestHier = Math.max(largestHier, rawLength);
  }
  return KernelBatches.open(largestRaw, largestHier, longest);
}

/**
 * A thread's job is over: the kernels' input area its records were read into is given
 * back (a next job, another file, takes its own). Call once no record of it is held.
 */
export function endShare(memory: ShareMemory): void {
  memory.area?.close();
  memory.area = undefined;
  memory.slots = undefined;
  memory.held = undefined;
}

/** The content bytes of a share's records (the large ones are checked with the native CRC-32). */
export function shareContentBytes(share: FileShare): number {
  const t = share.table;
  return t.length === 0 ? 0 : t[t.length - FIELDS + 2] + t[t.length - FIELDS + 3];
}

/** The index facts of record `k` in the table. */
function factsOf(table: Float64Array, k: number): TargetFacts | undefined {
  const f = k * FIELDS;
  if (f >= table.length) return undefined;
  return { rawLength: table[f + 3], rawCrc: table[f + 4], codec: fourcc(table[f + 5]) };
}

/**
 * Whether every record of `reader`'s file decodes on its own or from one earlier record
 * (DUPE, whose target is then of a plain codec), so threads may share them out: no DLTA
 * record (it needs the base) and no LONG record (it needs the content before it).
 */
export function decodesApart(reader: MmhReader): boolean {
  return reader.chunks.every((c) => c.codec !== DELTA_CODEC && c.codec !== LONG_CODEC);
}

/**
 * The shared memory of one job decoding `chunks` (the reader's index entries) from the .mmh open as `input` into the file open as `output`: the record table,
 * the control words with no record taken and none failed, and no bytes done; writing in
 * order (`ordered`), the hold slots of `threads` threads.
 */
export function fileShare(
  chunks: readonly ChunkInfo[],
  input: number,
  output: number,
  ordered = false,
  threads = 1,
): FileShare {
  const table = new Float64Array(new SharedArrayBuffer(chunks.length * FIELDS * 8));
  chunks.forEach((c, i) => {
    table.set(
      [c.recordOffset, c.recordLength, c.rawOffset, c.rawLength, c.rawCrc, fourccNumber(c.codec)],
      i * FIELDS,
    );
  });
  const control = new Int32Array(new SharedArrayBuffer(CONTROL_BYTES));
  control[FAILED] = chunks.length;
  const share: FileShare = {
    table,
    control,
    done: new BigInt64Array(new SharedArrayBuffer(16)),
    input,
    output,
    ordered,
  };
  // Hold slots as long as the largest record that may be held, HELD_RECORDS per thread
  // (fewer when they would take more than HELD_BYTES). Memory no hold touches is never
  // committed.
  let slotBytes = 0;
  for (const c of chunks) if (c.rawLength <= HOLD_SLOT_MAX) slotBytes = Math.max(slotBytes, c.rawLength);
  if (ordered && slotBytes > 0) {
    const perThread = Math.max(1, Math.min(HELD_RECORDS, Math.floor(HELD_BYTES / slotBytes)));
    share.holds = {
      state: new Int32Array(new SharedArrayBuffer(4 * chunks.length)),
      slots: new SharedArrayBuffer(threads * perThread * slotBytes),
      slotBytes,
      perThread,
    };
  }
  return share;
}

/** A worker of FileWorkers, and whether it has said that its code is loaded. */
interface FileThread {
  thread: Thread;
  ready: boolean;
}

/** Workers started ahead of the job, so that their start-up overlaps reading the index. */
export class FileWorkers {
  readonly #threads: FileThread[] = [];
  /** The job's shared memory, once it is handed out. */
  #share: FileShare | undefined;
  /** Set by close(): the workers' exits are no longer failures of the job. */
  #closing = false;
  /** Workers that close() had to terminate after all (Thread.stop). */
  terminated = 0;

  constructor(count: number) {
    for (let i = 0; i < count; i++) {
      const entry: FileThread = { thread: startWorker(), ready: false };
      entry.thread.worker.on("message", (message: { ready?: boolean }) => {
        if (message.ready) entry.ready = true;
      });
      this.#threads.push(entry);
    }
  }

  /**
   * Decode `reader`'s records into the file open as `output` (already `reader.rawLength`
   * bytes long) on this thread and the workers, then stop the workers. The first damaged
   * record in file order, or the abort, is what rejects; `summary` is filled as the
   * front-to-back decoder fills it. With `ordered`, `output` takes the content in order
   * at its position (standard output, a pipe), each record once every earlier one is
   * written; the records before a damaged one are then written. With `lent`, nothing else
   * codes on this thread meanwhile, so its records may be decoded into a codec's own memory.
   */
  async decode(
    reader: MmhReader,
    input: number,
    output: number,
    summary: DecodeSummary,
    progress: ProgressReporter,
    signal?: AbortSignal,
    { ordered = false, lent = false }: { ordered?: boolean; lent?: boolean } = {},
  ): Promise<void> {
    const chunks = reader.chunks;
    const share = fileShare(chunks, input, output, ordered, this.#threads.length + 1);
    const control = share.control;
    this.#share = share;
    const replies = this.#threads.map((entry, id) => this.#run(entry.thread.worker, id, share));
    const failures: ShareFailure[] = [];
    let aborted = false;
    try {
      const memory: ShareMemory = { lent };
      try {
        while (
          ordered
            ? await decodeShareOrdered(share, memory, TURN_BYTES)
            : decodeShare(share, memory, TURN_BYTES)
        ) {
          progress.readBytes = Number(share.done[1]);
          progress.writtenBytes = Number(share.done[0]);
          progress.tick();
          await nextTurn();
          if (signal?.aborted) {
            aborted = true;
            markFailed(control, -1);
            break;
          }
        }
        // An abort while the last records were decoded still leaves no output.
        aborted ||= signal?.aborted === true;
      } catch (error) {
        if (!(error instanceof ShareFailure)) markFailed(control, -1);
        failures.push(error instanceof ShareFailure ? error : new ShareFailure(toMmhError(error), -1));
      } finally {
        endShare(memory);
      }
      // Once every record is written, a worker still starting has nothing to say: it is
      // stopped rather than waited for (a small file may be decoded here before it is up).
      const written = Atomics.load(control, DONE) === chunks.length;
      if (!written || failures.length > 0 || aborted)
        for (const reply of await Promise.allSettled(replies))
          if (reply.status === "rejected") failures.push(reply.reason as ShareFailure);
    } finally {
      await this.close();
    }
    if (aborted) throw new MmhError("E_ABORTED", "decompression aborted");
    if (failures.length > 0) throw failures.reduce((a, b) => (b.record < a.record ? b : a)).error;
    const codecs: Record<string, number> = {};
    for (const c of chunks) codecs[c.codec] = (codecs[c.codec] ?? 0) + 1;
    Object.assign(summary, {
      header: reader.header,
      trailer: reader.trailer,
      footer: reader.index.footer,
      chunks: chunks.length,
      rawBytes: reader.rawLength,
      storedBytes: reader.source.size,
      codecs,
    });
    progress.readBytes = reader.source.size;
    progress.writtenBytes = reader.rawLength;
  }

  /** Worker `id`'s share of the job: resolves when it has taken its last record. */
  #run(worker: Worker, id: number, share: FileShare): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const failed = (error: MmhError) => {
        markFailed(share.control, -1);
        reject(new ShareFailure(error, -1));
      };
      worker.on(
        "message",
        (reply: {
          id?: number;
          ok?: boolean;
          error?: { code: string; message: string; record?: number; system?: string };
        }) => {
          if (reply.id !== id) return; // the worker's word that it has started
          if (reply.ok) resolve();
          else {
            const { code, message, record, system } = reply.error!;
            // The system error behind it keeps its code (EPIPE: the reader went away).
            const cause = system ? Object.assign(new Error(message), { code: system }) : undefined;
            const error = new MmhError(code as ErrorCode, message, cause ? { cause } : undefined);
            reject(new ShareFailure(error, record ?? -1));
          }
        },
      );
      worker.on("error", (error) =>
        failed(new MmhError("E_INTERNAL", `worker failed: ${error.message}`, { cause: error })),
      );
      worker.on("exit", (code) => {
        if (!this.#closing) failed(new MmhError("E_INTERNAL", `worker exited with code ${code}`));
      });
      worker.postMessage({ id, op: "file", share });
    });
  }

  /**
   * Stop the workers (those never given a job too), each at a record's end (Thread.stop):
   * a job still running takes no further record. A worker that has not loaded its code
   * yet is terminated at once when it can hold no record: it was given no job, or every
   * record is written (a small file may be decoded on this thread before it is up).
   */
  async close(): Promise<void> {
    this.#closing = true;
    const threads = this.#threads.splice(0);
    const share = this.#share;
    if (share) markFailed(share.control, -1);
    const written = share !== undefined && Atomics.load(share.control, DONE) === share.table.length / FIELDS;
    const left = await Promise.all(
      threads.map(({ thread, ready }) => thread.stop(!ready && (!share || written))),
    );
    this.terminated += left.filter((own) => !own).length;
  }
}
