/** `unpack`: a folder archive restored, every file checked, never a partial folder (FORMAT.md §10.4). */
import type { Hash } from "node:crypto";
import { constants } from "node:fs";
import {
  chmod,
  type FileHandle,
  lstat,
  mkdir,
  open,
  readdir,
  realpath,
  rename,
  rm,
  symlink,
} from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { nowMs } from "../common/clock.ts";
import { check, guard, MmhError, toMmhError } from "../common/errors.ts";
import { readFileStream } from "../common/files.ts";
import { fileSource } from "../common/source.ts";
import type { ArchiveEntry, FileEntry } from "../container/metadata.ts";
import { type DecodeSummary, decodeContainer } from "../engine/decoder.ts";
import { type DecompressOptions, resolveMaxOutput } from "../engine/options.ts";
import { type ProgressOptions, ProgressReporter } from "../engine/progress.ts";
import { isInside, realTarget, unsafe } from "./paths.ts";
import { openArchive } from "./read.ts";

export interface UnpackOptions extends DecompressOptions, ProgressOptions {
  /** Replace an existing non-empty target folder (the whole folder, not a merge). */
  overwrite?: boolean;
}

export interface UnpackSummary {
  files: number;
  dirs: number;
  symlinks: number;
  rawBytes: number;
  chunks: number;
  sha256: string;
  ms: number;
}

function fsError(error: unknown, path: string): MmhError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "ELOOP") return unsafe(`${path}: would be written through a symbolic link`);
  if (code === "EEXIST")
    return unsafe(
      `${path}: already exists (another entry that differs only in case, on a case-insensitive file system?)`,
    );
  if (code === "ENOTDIR") return unsafe(`${path}: a folder on its path is not a folder`);
  return toMmhError(error, `cannot unpack ${path}`);
}

/** Remove a tree we made, even where its folders were made read-only. */
async function removeTree(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true });
    return;
  } catch {
    // a folder without write permission: open them up, then try again
  }
  const openUp = async (p: string): Promise<void> => {
    const st = await lstat(p).catch(() => undefined);
    if (!st?.isDirectory()) return;
    await chmod(p, 0o700).catch(() => {});
    for (const name of await readdir(p).catch(() => [])) await openUp(join(p, name));
  };
  await openUp(path);
  await rm(path, { recursive: true, force: true });
}

async function isEmptyDir(path: string): Promise<boolean> {
  return (await readdir(path)).length === 0;
}

/**
 * Restore the folder archive `file` into `dir`. Nothing is written outside `dir`: the
 * folder is built in a fresh temporary folder beside it and renamed into place only when
 * every file and its sha256 have been checked (and, with `checkSha256`, the content's
 * sha256; the files cover the whole content, so theirs check every byte); on failure it is
 * removed. An existing non-empty `dir` is refused without `overwrite`, and replaced (not
 * merged into) with it.
 */
export function unpack(file: string, dir: string, options: UnpackOptions = {}): Promise<UnpackSummary> {
  return guard(async () => {
    const started = nowMs();
    const max = resolveMaxOutput(options);
    const progress = new ProgressReporter(options);
    const target = resolve(dir);
    const existing = await lstat(target).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return undefined;
      throw toMmhError(error, `cannot check ${dir}`);
    });
    const replace = existing !== undefined && !(existing.isDirectory() && (await isEmptyDir(target)));
    if (replace) {
      if (!options.overwrite)
        throw new MmhError(
          "E_EXISTS",
          `${dir} already exists and is not an empty folder (use -f to replace it)`,
        );
      const real = await realTarget(target);
      check(dirname(real) !== real, "E_BAD_OPTION", `will not replace ${dir}`);
      check(
        !isInside(real, await realpath(process.cwd())),
        "E_BAD_OPTION",
        `will not replace ${dir}: the current folder is inside it`,
      );
      check(
        !isInside(real, await realTarget(file)),
        "E_BAD_OPTION",
        `will not replace ${dir}: the archive ${file} is inside it`,
      );
    }
    const reader = await openArchive(file);
    const entries = reader.footer.entries;
    let trailerSha: string;
    try {
      check(
        reader.rawLength <= max,
        "E_LIMIT",
        `${file} holds ${reader.rawLength} bytes, over the limit of ${max}`,
      );
      trailerSha = reader.trailer.sha256;
      progress.totalBytes = reader.source.size;
    } finally {
      await reader.close();
    }

    const parent = dirname(target);
    const temp = join(
      parent,
      `.${basename(target)}.${process.getBuiltinModule("node:crypto").randomBytes(6).toString("hex")}.tmp`,
    );
    try {
      await mkdir(temp);
    } catch (error) {
      throw toMmhError(error, `cannot create a folder in ${parent}`);
    }
    const summary: DecodeSummary = { chunks: 0, rawBytes: 0, storedBytes: 0, codecs: {} };
    try {
      const rootMode = (await lstat(temp)).mode & 0o777;
      await chmod(temp, 0o700); // private while it is being filled
      progress.report();
      await restoreEntries(temp, entries, file, { ...options, maxOutputBytes: max }, summary, progress);
      check(
        summary.trailer?.sha256 === trailerSha,
        "E_CORRUPT",
        `${file} changed while it was being unpacked`,
      );
      await chmod(temp, rootMode);
      progress.report(true); // before the rename: a callback that throws leaves nothing
      await install(temp, target, replace);
    } catch (error) {
      await removeTree(temp).catch(() => {});
      throw error;
    }
    return {
      files: entries.filter((e) => e.type === "file").length,
      dirs: entries.filter((e) => e.type === "dir").length,
      symlinks: entries.filter((e) => e.type === "symlink").length,
      rawBytes: summary.rawBytes,
      chunks: summary.chunks,
      sha256: summary.trailer?.sha256 ?? "",
      ms: nowMs() - started,
    };
  });
}

/** Check with lstat that `path`'s folder, inside `root`, is a real folder all the way. */
async function checkParents(root: string, path: string, verified: Set<string>): Promise<void> {
  const segments = path.split("/");
  let rel = "";
  for (const segment of segments.slice(0, -1)) {
    rel = rel === "" ? segment : `${rel}/${segment}`;
    if (verified.has(rel)) continue;
    const st = await lstat(join(root, rel)).catch((error) => {
      throw fsError(error, path);
    });
    if (st.isSymbolicLink()) throw unsafe(`${path}: passes through the symbolic link ${rel}`);
    if (!st.isDirectory()) throw unsafe(`${path}: ${rel} is not a folder`);
    verified.add(rel);
  }
}

/**
 * Write checked entries into `root`, a fresh folder, decoding the archive `file` front to
 * back, and count the bytes read and written into `progress` (the caller makes its last
 * report). Exported for tests of its own defences (lstat of every ancestor, O_EXCL |
 * O_NOFOLLOW); `unpack` is the API.
 */
export async function restoreEntries(
  root: string,
  entries: readonly ArchiveEntry[],
  file: string,
  options: DecompressOptions,
  summary: DecodeSummary,
  progress = new ProgressReporter({}),
): Promise<void> {
  const verified = new Set<string>();
  for (const entry of entries) {
    if (entry.type !== "dir") continue;
    await checkParents(root, entry.path, verified);
    try {
      await mkdir(join(root, entry.path), 0o700);
    } catch (error) {
      throw fsError(error, entry.path);
    }
    const st = await lstat(join(root, entry.path));
    if (!st.isDirectory() || st.isSymbolicLink()) throw unsafe(`${entry.path}: is not the folder just made`);
    verified.add(entry.path);
  }

  const files = entries.filter((e): e is FileEntry => e.type === "file");
  let next = 0;
  let current: { entry: FileEntry; handle: FileHandle; left: number; hash: Hash } | undefined;
  const finish = async () => {
    const done = current!;
    current = undefined;
    if (done.hash.digest("hex") !== done.entry.sha256)
      throw new MmhError("E_CHECKSUM", `${done.entry.path}: sha256 does not match the archive's entry`);
    await done.handle.chmod(done.entry.mode);
    await done.handle.close();
  };
  /** Open the next file; empty files are created and finished at once. */
  const openNext = async (): Promise<boolean> => {
    while (next < files.length) {
      const entry = files[next++];
      await checkParents(root, entry.path, verified);
      let handle: FileHandle;
      try {
        handle = await open(
          join(root, entry.path),
          constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
          0o600,
        );
      } catch (error) {
        throw fsError(error, entry.path);
      }
      current = {
        entry,
        handle,
        left: entry.size,
        hash: process.getBuiltinModule("node:crypto").createHash("sha256"),
      };
      progress.entry = entry.path;
      if (entry.size > 0) return true;
      await finish();
    }
    return false;
  };
  try {
    const content = decodeContainer(
      progress.reading(readFileStream(file, 1 << 20, options.signal)),
      options,
      summary,
      false,
      undefined,
      () => fileSource(file),
    );
    for await (const piece of content) {
      let bytes = Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
      while (bytes.length > 0) {
        if (!current && !(await openNext()))
          throw new MmhError("E_CORRUPT", `${file}: the content is longer than its files`);
        const c = current!;
        const take = bytes.subarray(0, Math.min(c.left, bytes.length));
        c.hash.update(take);
        for (let done = 0; done < take.length; ) {
          const { bytesWritten } = await c.handle.write(take, done, take.length - done);
          done += bytesWritten;
        }
        c.left -= take.length;
        progress.writtenBytes += take.length;
        progress.tick();
        bytes = bytes.subarray(take.length);
        if (c.left === 0) await finish();
      }
    }
    await openNext(); // the empty files at the end
    check(!current && next === files.length, "E_CORRUPT", `${file}: the content ended before its files`);
  } finally {
    await current?.handle.close().catch(() => {});
  }

  for (const entry of entries) {
    if (entry.type !== "symlink") continue;
    await checkParents(root, entry.path, verified);
    try {
      await symlink(entry.target, join(root, entry.path));
    } catch (error) {
      throw fsError(error, entry.path);
    }
  }
  // Folder modes last, deepest first, so a read-only folder is filled before it is closed.
  for (const entry of [...entries].reverse()) {
    if (entry.type !== "dir") continue;
    const path = join(root, entry.path);
    const st = await lstat(path);
    if (!st.isDirectory()) throw unsafe(`${entry.path}: is no longer a folder`);
    await chmod(path, entry.mode);
  }
}

/** Rename the finished folder into place; an existing target is moved aside first and removed after. */
async function install(temp: string, target: string, replace: boolean): Promise<void> {
  const clash = (error: unknown): MmhError => {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOTEMPTY" || code === "EEXIST" || code === "ENOTDIR" || code === "EISDIR")
      return new MmhError("E_EXISTS", `${target} appeared while unpacking (use -f to replace it)`);
    return toMmhError(error, `cannot rename the unpacked folder to ${target}`);
  };
  if (!replace) {
    try {
      await rename(temp, target);
    } catch (error) {
      throw clash(error);
    }
    return;
  }
  const old = join(
    dirname(target),
    `.${basename(target)}.${process.getBuiltinModule("node:crypto").randomBytes(6).toString("hex")}.old`,
  );
  try {
    await rename(target, old);
  } catch (error) {
    throw toMmhError(error, `cannot move ${target} aside`);
  }
  try {
    await rename(temp, target);
  } catch (error) {
    await rename(old, target).catch(() => {});
    throw clash(error);
  }
  try {
    await removeTree(old);
  } catch (error) {
    throw toMmhError(error, `unpacked into ${target}, but could not remove the old folder, moved to ${old}`);
  }
}
