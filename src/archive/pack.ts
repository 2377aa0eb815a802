/**
 * `pack`: a whole model folder (shards, config, tokenizer) in one .mmh file.
 *
 * The content is the folder's regular files concatenated in sorted path order; the footer
 * metadata lists every entry (`entries`) and the tensors of every file (`tensors`, each
 * with its `file`). Each file is recognised on its own, so chunks are cut at its tensors
 * and never span two files. docs/FORMAT.md §10 is the specification.
 */
import { constants } from "node:fs";
import { type FileHandle, lstat, open, readdir, readlink, realpath, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { nowMs } from "../common/clock.ts";
import { check, guard, MmhError, toMmhError } from "../common/errors.ts";
import { writeFileAtomic } from "../common/files.ts";
import { handleSource } from "../common/source.ts";
import {
  type ArchiveEntry,
  FOLDER_FORMAT,
  linkTargetProblem,
  pathProblem,
  type StoredTensor,
} from "../container/metadata.ts";
import { describeSource, joinsFor, tensorTable, usesDtypes } from "../engine/describe.ts";
import { type CompressSummary, emptySummary, encodeContainer, type SourceLayout } from "../engine/encoder.ts";
import { type CompressOptions, resolveCompressOptions } from "../engine/options.ts";
import type { ChunkSpec } from "../engine/plan.ts";
import { type ProgressOptions, ProgressReporter } from "../engine/progress.ts";
import { compareBytes, isInside, realTarget, unsafe } from "./paths.ts";

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

/** The sha256 of no bytes. */
const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

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
      const hash = process.getBuiltinModule("node:crypto").createHash("sha256"); // loaded at first use (engine/hashing.ts)
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

/**
 * Content bytes read again from the files that hold them, for deduplication (a shard's
 * chunks compared with another's; a chunk never spans two files) and for long-range
 * matching (whose dictionary, the content before a chunk, may span several).
 */
async function rereadFolder(files: readonly Walked[], at: number, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let filled = 0;
  for (const { entry, abs } of files) {
    if (filled === length) break;
    if (entry.type !== "file" || entry.size === 0) continue;
    const want = at + filled;
    if (want < entry.offset || want >= entry.offset + entry.size) continue;
    const take = Math.min(length - filled, entry.offset + entry.size - want);
    const source = handleSource(await openNoFollow(abs), entry.size, abs);
    try {
      out.set(await source.read(want - entry.offset, take), filled);
    } finally {
      await source.close();
    }
    filled += take;
  }
  if (filled !== length)
    throw new MmhError("E_INTERNAL", `no files hold content bytes ${at + filled}+${length - filled}`);
  return out;
}

/**
 * Pack every regular file, folder and (inward) symbolic link under `dir` into the archive
 * `dst`, written atomically. Each file is recognised as a model format on its own.
 */
export function pack(dir: string, dst: string, options: PackOptions = {}): Promise<PackSummary> {
  return guard(async () => {
    const started = nowMs();
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
          layout = await describeSource(
            source,
            opts.chunkSize,
            options.recognise ?? true,
            usesDtypes(opts),
            opts.dedup,
            joinsFor(opts),
          );
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
      reread: (at, length) => rereadFolder(walked, at, length),
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
      ms: nowMs() - started,
    };
  });
}
