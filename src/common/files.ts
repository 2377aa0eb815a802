import { writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { dispose } from "./bytes.ts";
import { MmhError, toMmhError } from "./errors.ts";
import { link, open, realpath, rename, stat, unlink } from "./fsp.ts";

export interface WriteOptions {
  /** Replace an existing target. */
  overwrite?: boolean;
  signal?: AbortSignal;
  /** The input file, which must never be the target. */
  input?: string;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw toMmhError(error, `cannot check ${path}`);
  }
}

/** Refuse to write over an existing file unless allowed, and never over the input. */
export async function checkTarget(target: string, options: WriteOptions): Promise<void> {
  const input = options.input;
  if (input !== undefined && input !== "-" && (await exists(target)) && (await sameFile(input, target))) {
    throw new MmhError("E_BAD_OPTION", `output ${target} is the input file`);
  }
  if (!options.overwrite && (await exists(target))) {
    throw new MmhError("E_EXISTS", `${target} already exists (use -f to overwrite)`);
  }
}

async function sameFile(a: string, b: string): Promise<boolean> {
  try {
    return (await realpath(a)) === (await realpath(b));
  } catch {
    return false;
  }
}

/**
 * Write a byte stream to `target` through a temporary file beside it, renamed into place
 * only when the whole stream was written. On any failure the temporary file is removed
 * and the target is left as it was. Each piece is written before the next is asked for,
 * so a source may reuse a piece's memory once it has yielded the next one.
 */
export function writeFileAtomic(
  target: string,
  data: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: WriteOptions = {},
): Promise<void> {
  return writeFileAtomicBy(
    target,
    async (fd) => {
      // Synchronous writes to the regular temporary file: copying a piece into the page
      // cache costs less than a round trip through the thread pool (docs/ENGINE.md,
      // "Start-up and V8's tiers", Writing output).
      for await (const piece of data) {
        if (options.signal?.aborted) throw new MmhError("E_ABORTED", `writing ${target} was aborted`);
        for (let done = 0; done < piece.length; ) done += writeSync(fd, piece, done, piece.length - done);
      }
    },
    options,
  );
}

/**
 * Write `target` as writeFileAtomic does, with `fill` writing the temporary file through
 * its file descriptor `fd` (at any positions, from any thread of the process): renamed
 * into place once `fill` resolves, removed when it rejects. The descriptor is closed
 * after `fill` settles, so nothing may write to it later.
 */
export async function writeFileAtomicBy(
  target: string,
  fill: (fd: number) => Promise<void>,
  options: WriteOptions = {},
): Promise<void> {
  await checkTarget(target, options);
  // The temporary file is created exclusively ("wx": never through a link or over another
  // file), so its name need only be unlikely to be taken: the process id and a random part
  // from Math.random, not node:crypto, which would cost every `mmh FILE` its load
  // (docs/ENGINE.md, Start-up); a name taken meanwhile is drawn again.
  let temp = "";
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  for (let attempt = 0; handle === undefined; attempt++) {
    const random = Math.floor(Math.random() * 2 ** 48).toString(36);
    temp = join(dirname(target), `.${basename(target)}.${process.pid.toString(36)}-${random}.tmp`);
    try {
      handle = await open(temp, "wx", 0o644);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EEXIST" && attempt < 8) continue;
      throw toMmhError(error, `cannot create ${target}`);
    }
  }
  try {
    await fill(handle.fd);
    await handle.close();
    if (options.overwrite) {
      await rename(temp, target);
    } else {
      try {
        // link() fails if the target appeared meanwhile, so a concurrent file is never replaced.
        await link(temp, target);
        await unlink(temp);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "EEXIST")
          throw new MmhError("E_EXISTS", `${target} already exists (use -f to overwrite)`);
        if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EXDEV") throw error;
        await rename(temp, target); // a file system without hard links
      }
    }
  } catch (error) {
    await handle.close().catch(() => {});
    await unlink(temp).catch(() => {});
    throw toMmhError(error, `cannot write ${target}`);
  }
}

/**
 * A file's bytes as a stream of pieces of `pieceSize` bytes (the last may be shorter).
 * `recycle`: see readFilePieces.
 */
export function readFileStream(
  path: string,
  pieceSize = 1 << 20,
  signal?: AbortSignal,
  recycle = false,
  memory?: BatchMemory,
): AsyncIterable<Uint8Array> {
  const sizes = function* () {
    for (;;) yield pieceSize;
  };
  return readFilePieces(path, sizes(), signal, recycle, memory);
}

/** Memory for readFilePieces' batches from elsewhere (a worker pool's shared slots). */
export interface BatchMemory {
  /** Bytes to read at once into memory from here, when it would give some (else READ_BATCH). */
  readonly batchBytes?: number;
  /** Memory for a batch of `size` bytes, or undefined for the reader's own. */
  take(size: number): Uint8Array | undefined;
  /**
   * The reader is done with a batch from take(): the consumer has asked for the piece
   * after its last one. Its memory is not read into again until the consumer has asked
   * for a piece of the batch after next.
   */
  done(batch: Uint8Array): void;
}

/**
 * Bytes read at once by readFilePieces. Each read is a round trip through the thread pool,
 * but a ring of three 1 MiB buffers is fresh memory a quarter the size of 4 MiB ones, and
 * is still in the cache when the consumer reads it: reading 64 MiB (256 MiB) in 512 KiB
 * pieces took 21.7 (48.5) ms of CPU against 28.9 (76.3) ms with 4 MiB batches, with about
 * 470 page faults instead of 3,300 (bench/results/read-batch.md; docs/ENGINE.md, Reading
 * in 1 MiB batches).
 */
const READ_BATCH = 1 << 20;

/**
 * A file's bytes as pieces of the given sizes, in order (the last piece is short at the
 * end of the file). With sizes that match how the bytes will be cut (a chunk plan), each
 * piece is used as it is, with no copy. Consecutive pieces are read together, about
 * READ_BATCH bytes at a time, and one batch is read ahead while the last is in use.
 *
 * With `recycle`, batches are read into three buffers in turn, so a piece's memory is
 * reused once the consumer has taken the first piece of the batch after next. A consumer
 * that keeps no piece that long (the coders, when pieces are borrowed) saves the garbage
 * of a fresh buffer per batch: up to the collector's slack, tens of MiB of memory.
 *
 * With `memory`, each batch is first asked of it (see BatchMemory), and given back once
 * its pieces have all been consumed.
 */
export function readFilePieces(
  path: string,
  sizes: Iterable<number>,
  signal?: AbortSignal,
  recycle = false,
  memory?: BatchMemory,
): AsyncIterable<Uint8Array> {
  return (async function* () {
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(path, "r");
    } catch (error) {
      throw toMmhError(error, `cannot read ${path}`);
    }
    const next = sizes[Symbol.iterator]();
    let ended = false;
    const ring: (Buffer | undefined)[] = [undefined, undefined, undefined];
    let batches = 0;
    /** The next batch cut into its pieces, and the memory it was taken from `memory`, if so. */
    type Batch = { pieces: Uint8Array[]; taken?: Uint8Array };
    const readBatch = async (): Promise<Batch> => {
      const lengths: number[] = [];
      let total = 0;
      const batchBytes = memory?.batchBytes ?? READ_BATCH;
      while (!ended && (lengths.length === 0 || total < batchBytes)) {
        const { value: size, done } = next.next();
        if (done || size <= 0) {
          ended = true;
          break;
        }
        lengths.push(size);
        total += size;
      }
      if (total === 0) return { pieces: [] };
      const taken = memory?.take(total);
      if (taken) retireRing();
      let buffer: Uint8Array;
      if (taken) buffer = taken;
      else if (recycle) {
        const turn = batches++ % ring.length;
        const held = ring[turn];
        if ((held?.length ?? 0) < total) {
          // Batches differ in size (whole records up to READ_BATCH and over): a buffer
          // grown is given some room, and the one it replaces, which no consumer holds
          // any more (see above), is given back now rather than left to the collector.
          if (held) dispose(held, true);
          ring[turn] = Buffer.allocUnsafeSlow(total + (total >> 3));
        }
        buffer = ring[turn]!.subarray(0, total);
      } else buffer = Buffer.allocUnsafe(total);
      let filled = 0;
      while (filled < total) {
        const { bytesRead } = await handle.read(buffer, filled, total - filled, null);
        if (bytesRead === 0) {
          ended = true;
          break;
        }
        filled += bytesRead;
      }
      const pieces: Uint8Array[] = [];
      for (let at = 0, i = 0; at < filled; at += lengths[i++]) {
        pieces.push(buffer.subarray(at, Math.min(filled, at + lengths[i])));
      }
      return { pieces, taken };
    };
    let ahead: Promise<Batch> | undefined;
    let current: Batch | undefined;
    /** The memory of the batch being consumed and of the one before (see recycle). */
    const recent: (ArrayBufferLike | undefined)[] = [undefined, undefined];
    /**
     * Reading into `memory` now: the ring's buffers are given back as soon as no consumer
     * may hold a piece of them, that is, unless one of the last two batches lies in them.
     */
    function retireRing(): void {
      for (let i = 0; i < ring.length; i++) {
        const buffer = ring[i];
        if (!buffer || recent.includes(buffer.buffer)) continue;
        ring[i] = undefined;
        dispose(buffer, true);
      }
    }
    try {
      ahead = readBatch();
      for (;;) {
        current = await ahead;
        ahead = undefined;
        if (current.pieces.length === 0) return;
        recent.shift();
        recent.push(current.pieces[0].buffer);
        if (signal?.aborted) throw new MmhError("E_ABORTED", `reading ${path} was aborted`);
        ahead = readBatch();
        yield* current.pieces;
        if (current.taken) memory?.done(current.taken);
        current = undefined;
      }
    } catch (error) {
      throw toMmhError(error, `cannot read ${path}`);
    } finally {
      if (current?.taken) memory?.done(current.taken);
      const last = await ahead?.catch(() => undefined);
      if (last?.taken) memory?.done(last.taken);
      await handle.close();
    }
  })();
}
