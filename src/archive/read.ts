/** Reading one file, or one tensor, of a folder archive through its index. */
import { check, MmhError } from "../common/errors.ts";
import { fileSource } from "../common/source.ts";
import {
  type ArchiveEntry,
  type FileEntry,
  type Footer,
  isArchive,
  type StoredTensor,
} from "../container/metadata.ts";
import { MmhReader } from "../engine/reader.ts";

/** The reader of `file` when it is a folder archive; E_BAD_OPTION (and closed) otherwise. */
export async function openArchive(file: string): Promise<MmhReader> {
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
  const hash = process.getBuiltinModule("node:crypto").createHash("sha256"); // loaded at first use (engine/hashing.ts)
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
