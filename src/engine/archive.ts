/**
 * Folder archives: a whole model folder (shards, config, tokenizer) in one .mmh file.
 *
 * The content is the folder's regular files concatenated in sorted path order; the footer
 * metadata lists every entry (`entries`) and the tensors of every file (`tensors`, each
 * with its `file`). Each file is recognised on its own, so chunks are cut at its tensors
 * and never span two files. docs/FORMAT.md §10 is the specification.
 */
import { createHash, randomBytes } from "node:crypto";
import { constants } from "node:fs";
import {
  chmod,
  type FileHandle,
  lstat,
  mkdir,
  open,
  readdir,
  readlink,
  realpath,
  rename,
  rm,
  stat,
  symlink,
} from "node:fs/promises";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { check, MmhError, toMmhError } from "../common/errors.ts";
import { readFileStream, writeFileAtomic } from "../common/files.ts";
import {
  type ArchiveEntry,
  type FileEntry,
  FOLDER_FORMAT,
  type Footer,
  isArchive,
  linkTargetProblem,
  pathProblem,
  type StoredTensor,
} from "../container/metadata.ts";
import { type DecodeSummary, decodeContainer } from "./decoder.ts";
import { describeSource, tensorTable, usesDtypes } from "./describe.ts";
import { type CompressSummary, emptySummary, encodeContainer, type SourceLayout } from "./encoder.ts";
import {
  type CompressOptions,
  type DecompressOptions,
  resolveCompressOptions,
  resolveMaxOutput,
} from "./options.ts";
import type { ChunkSpec } from "./plan.ts";
import { type ProgressOptions, ProgressReporter } from "./progress.ts";
import { fileSource, MmhReader, type RandomAccessSource } from "./reader.ts";

export type { ArchiveEntry, DirEntry, FileEntry, SymlinkEntry } from "../container/metadata.ts";

export interface PackOptions extends CompressOptions, ProgressOptions {
  /** Replace an existing archive file. */
  overwrite?: boolean;
}

export interface PackSummary extends CompressSummary {
  files: number;
  dirs: number;
  symlinks: number;
  ms: number;
}

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

const EMPTY_SHA256 = createHash("sha256").digest("hex");

async function guard<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw toMmhError(error);
  }
}

function unsafe(message: string): MmhError {
  return new MmhError("E_UNSAFE_PATH", message);
}

function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

// ---------------------------------------------------------------------------------------
// pack

interface Walked {
  entry: ArchiveEntry;
  /** Absolute path on disk. */
  abs: string;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

async function walk(root: string): Promise<Walked[]> {
  const out: Walked[] = [];
  const visit = async (rel: string): Promise<void> => {
    const dir = rel === "" ? root : join(root, rel);
    const names = await readdir(dir, { encoding: "buffer" });
    for (const raw of names) {
      let name: string;
      try {
        name = utf8.decode(raw);
      } catch {
        throw new MmhError("E_UNSUPPORTED", `${join(dir, raw.toString("latin1"))}: the name is not UTF-8`);
      }
      const path = rel === "" ? name : `${rel}/${name}`;
      const abs = join(dir, name);
      const problem = pathProblem(path);
      if (problem) throw new MmhError("E_UNSUPPORTED", `${abs}: cannot be stored: its path ${problem}`);
      const st = await lstat(abs);
      if (st.isDirectory()) {
        out.push({ entry: { path, type: "dir", mode: st.mode & 0o777 }, abs });
        await visit(path);
      } else if (st.isFile()) {
        out.push({
          entry: {
            path,
            type: "file",
            size: st.size,
            mode: st.mode & 0o777,
            offset: 0,
            format: "raw",
            sha256: EMPTY_SHA256,
          },
          abs,
        });
      } else if (st.isSymbolicLink()) {
        const target = await readlink(abs);
        const why = linkTargetProblem(path, target);
        if (why)
          throw unsafe(
            `${abs} is a symbolic link to ${target}, which ${why}; mmh pack stores only relative links ` +
              `that stay inside the folder (copy it with cp -rL to store what it points to)`,
          );
        out.push({ entry: { path, type: "symlink", target }, abs });
      } else {
        throw new MmhError(
          "E_UNSUPPORTED",
          `${abs} is not a regular file, folder or symbolic link (device, socket or FIFO)`,
        );
      }
    }
  };
  await visit("");
  return out.sort((a, b) => compareBytes(a.entry.path, b.entry.path));
}

async function openNoFollow(path: string): Promise<FileHandle> {
  try {
    return await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ELOOP")
      throw new MmhError("E_IO", `${path} became a symbolic link while it was being packed`);
    throw toMmhError(error, `cannot open ${path}`);
  }
}

/** Positioned reads over an open handle of a known size. */
function handleSource(handle: FileHandle, size: number, label: string): RandomAccessSource {
  return {
    size,
    async read(offset, length) {
      check(offset + length <= size, "E_TRUNCATED", `read past the end of ${label} at offset ${offset}`);
      const out = Buffer.allocUnsafe(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(out, done, length - done, offset + done);
        if (bytesRead === 0)
          throw new MmhError("E_TRUNCATED", `${label} ended early (changed while packing?)`);
        done += bytesRead;
      }
      return out;
    },
    close: () => handle.close(),
  };
}

/**
 * The content: every file's bytes in order, each hashed into its entry as it goes, and
 * counted into `progress` as read.
 */
async function* folderContent(
  files: readonly Walked[],
  pieceSize: number,
  progress: ProgressReporter,
  signal?: AbortSignal,
): AsyncGenerator<Uint8Array> {
  for (const { entry, abs } of files) {
    if (entry.type !== "file") continue;
    if (signal?.aborted) throw new MmhError("E_ABORTED", "packing aborted");
    progress.entry = entry.path;
    const handle = await openNoFollow(abs);
    try {
      const st = await handle.stat();
      check(
        st.isFile() && st.size === entry.size,
        "E_IO",
        `${abs} changed while it was being packed (it had ${entry.size} bytes)`,
      );
      const hash = createHash("sha256");
      for (let pos = 0; pos < entry.size; ) {
        // A fresh buffer each time: the encoder may keep a view of it.
        const piece = Buffer.allocUnsafe(Math.min(pieceSize, entry.size - pos));
        let filled = 0;
        while (filled < piece.length) {
          const { bytesRead } = await handle.read(piece, filled, piece.length - filled, pos + filled);
          if (bytesRead === 0)
            throw new MmhError("E_TRUNCATED", `${abs} ended early (changed while packing?)`);
          filled += bytesRead;
        }
        hash.update(piece);
        pos += piece.length;
        progress.readBytes += piece.length;
        progress.tick();
        yield piece;
      }
      entry.sha256 = hash.digest("hex");
    } catch (error) {
      throw toMmhError(error, `cannot read ${abs}`);
    } finally {
      await handle.close();
    }
  }
}

function isInside(folder: string, path: string): boolean {
  const rel = relative(folder, path);
  return rel === "" || (!rel.startsWith(`..${sep}`) && rel !== ".." && !isAbsolute(rel));
}

/** Where `path` (which may not exist yet) is, with its folder's symbolic links resolved. */
async function realTarget(path: string): Promise<string> {
  const abs = resolve(path);
  try {
    return join(await realpath(dirname(abs)), basename(abs));
  } catch {
    return abs;
  }
}

/**
 * Pack every regular file, folder and (inward) symbolic link under `dir` into the archive
 * `dst`, written atomically. Each file is recognised as a model format on its own.
 */
export function pack(dir: string, dst: string, options: PackOptions = {}): Promise<PackSummary> {
  return guard(async () => {
    const started = performance.now();
    const opts = resolveCompressOptions(options);
    const progress = new ProgressReporter(options);
    let root: string;
    try {
      root = await realpath(dir);
      check((await stat(root)).isDirectory(), "E_BAD_OPTION", `${dir} is not a folder`);
    } catch (error) {
      throw toMmhError(error, `cannot pack ${dir}`);
    }
    if (isInside(root, await realTarget(dst)))
      throw new MmhError("E_BAD_OPTION", `the archive ${dst} would be inside the folder it packs`);
    const walked = await walk(root);
    progress.totalBytes = walked.reduce((sum, w) => sum + (w.entry.type === "file" ? w.entry.size : 0), 0);
    progress.report();
    // Recognise each file and plan its chunks; the plans are laid end to end, so no chunk
    // spans two files.
    const plan: ChunkSpec[] = [];
    const tensors: (StoredTensor & { file: string })[] = [];
    let offset = 0;
    for (const { entry, abs } of walked) {
      if (entry.type !== "file") continue;
      entry.offset = offset;
      if (entry.size > 0) {
        const handle = await openNoFollow(abs);
        const source = handleSource(handle, entry.size, abs);
        let layout: Awaited<ReturnType<typeof describeSource>>;
        try {
          layout = await describeSource(source, opts.chunkSize, options.recognise ?? true, usesDtypes(opts));
        } finally {
          await source.close();
        }
        const planned = layout.plan.reduce((sum, spec) => sum + spec.length, 0);
        check(
          planned === entry.size,
          "E_INTERNAL",
          `the plan for ${abs} covers ${planned} of ${entry.size} bytes`,
        );
        plan.push(...layout.plan);
        entry.format = layout.format;
        if (layout.footer.sourceMetadata)
          entry.sourceMetadata = layout.footer.sourceMetadata as Record<string, unknown>;
        if (layout.problem) entry.recogniseProblem = layout.problem;
        for (const t of (layout.footer.tensors ?? []) as StoredTensor[]) {
          tensors.push({
            name: t.name,
            file: entry.path,
            dtype: t.dtype,
            shape: t.shape,
            offset: t.offset + offset,
            length: t.length,
          });
        }
      }
      offset += entry.size;
    }
    const entries = walked.map((w) => w.entry);
    // The encoder writes the footer after the last chunk, by which time folderContent has
    // filled in every file's sha256.
    const layout: SourceLayout = {
      format: FOLDER_FORMAT,
      plan,
      footer: { format: FOLDER_FORMAT, entries, ...tensorTable(tensors) },
    };
    const summary = emptySummary();
    await writeFileAtomic(
      dst,
      progress.writing(
        encodeContainer(
          folderContent(walked, Math.max(1 << 20, opts.chunkSize), progress, options.signal),
          { ...options, sourceName: options.sourceName ?? basename(root) },
          summary,
          layout,
          true, // writeFileAtomic writes each piece before it asks for the next
        ),
      ),
      { overwrite: options.overwrite, signal: options.signal },
    );
    return {
      ...summary,
      files: entries.filter((e) => e.type === "file").length,
      dirs: entries.filter((e) => e.type === "dir").length,
      symlinks: entries.filter((e) => e.type === "symlink").length,
      ms: performance.now() - started,
    };
  });
}

// ---------------------------------------------------------------------------------------
// reading entries

/** The reader of `file` when it is a folder archive; E_BAD_OPTION (and closed) otherwise. */
async function openArchive(file: string): Promise<MmhReader> {
  const reader = await MmhReader.open(await fileSource(file));
  if (!isArchive(reader.footer)) {
    await reader.close();
    throw new MmhError(
      "E_BAD_OPTION",
      `${file} is not a folder archive (it holds one ${reader.footer.format} file; restore it with mmh -d)`,
    );
  }
  return reader;
}

/** The file entry `path` of an archive's entries: E_NOT_FOUND when there is none. */
export function findFile(entries: readonly ArchiveEntry[], path: string, file: string): FileEntry {
  const entry = entries.find((e) => e.path === path);
  if (!entry) throw new MmhError("E_NOT_FOUND", `no entry ${JSON.stringify(path)} in ${file}`);
  if (entry.type !== "file")
    throw new MmhError("E_NOT_FOUND", `${JSON.stringify(path)} in ${file} is a ${entry.type}, not a file`);
  return entry;
}

/**
 * One file's bytes, in pieces, decoding only the chunks that hold it; its sha256 is
 * checked after the last piece (E_CHECKSUM), each chunk's CRC-32 before its piece.
 */
export async function* entryPieces(reader: MmhReader, entry: FileEntry): AsyncGenerator<Uint8Array> {
  const hash = createHash("sha256");
  for await (const piece of reader.rangePieces(entry.offset, entry.size)) {
    hash.update(piece);
    yield piece;
  }
  if (hash.digest("hex") !== entry.sha256)
    throw new MmhError("E_CHECKSUM", `${entry.path}: sha256 does not match the archive's entry`);
}

/**
 * The tensor `name` in a footer's tensor table. In an archive, `entry` picks the file;
 * without it, a name found in several files is E_USAGE (the message lists them).
 */
export function findTensor(footer: Footer, name: string, entry?: string, file = "the file"): StoredTensor {
  if (entry !== undefined) {
    check(isArchive(footer), "E_BAD_OPTION", `${file} is not a folder archive, so it has no file to pick`);
    const found = footer.entries.find((e) => e.path === entry);
    if (found?.type !== "file")
      throw new MmhError("E_NOT_FOUND", `no file ${JSON.stringify(entry)} in ${file}`);
  }
  const matches = footer.tensors.filter((t) => t.name === name && (entry === undefined || t.file === entry));
  const where = entry === undefined ? file : `${entry} in ${file}`;
  if (matches.length === 0)
    throw new MmhError("E_NOT_FOUND", `no tensor named ${JSON.stringify(name)} in ${where}`);
  if (matches.length > 1) {
    const files = [...new Set(matches.map((t) => t.file ?? "?"))];
    throw new MmhError(
      "E_USAGE",
      `tensor ${JSON.stringify(name)} is in ${files.length} files of ${file}: ${files.join(", ")}; ` +
        `pick one with --file PATH`,
    );
  }
  return matches[0];
}

// ---------------------------------------------------------------------------------------
// unpack

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
    const started = performance.now();
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
    const temp = join(parent, `.${basename(target)}.${randomBytes(6).toString("hex")}.tmp`);
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
      ms: performance.now() - started,
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
  let current:
    | { entry: FileEntry; handle: FileHandle; left: number; hash: ReturnType<typeof createHash> }
    | undefined;
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
      current = { entry, handle, left: entry.size, hash: createHash("sha256") };
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
  const old = join(dirname(target), `.${basename(target)}.${randomBytes(6).toString("hex")}.old`);
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
