/**
 * The footer metadata (FORMAT.md §4 and §10): one typed schema and one parser. The parser
 * checks in a fixed order, as safetensors checks its header, so a hostile footer fails on
 * the same check whatever else is wrong with it; every check has a coded error.
 */
import { check, MmhError } from "../common/errors.ts";
import type { Metadata } from "./format.ts";

/** One tensor of the footer's table: its byte range in the content, as it was in the source. */
export interface StoredTensor {
  name: string;
  /** In a folder archive, the path of the file that holds the tensor. */
  file?: string;
  /** A safetensors dtype name, or the source format's own name (e.g. `Q4_K`). */
  dtype: string;
  shape: number[];
  /** Where the tensor's bytes start in the content. */
  offset: number;
  length: number;
}

export interface FileEntry {
  type: "file";
  /** Relative POSIX path inside the folder. */
  path: string;
  size: number;
  /** Permission bits, 0 to 0o777. */
  mode: number;
  /** Where the file's bytes start in the content. */
  offset: number;
  /** The format the file was recognised as (`raw` when none). */
  format: string;
  /** SHA-256 of the file's bytes, lowercase hex. */
  sha256: string;
  sourceMetadata?: Record<string, unknown>;
  recogniseProblem?: string;
}

export interface DirEntry {
  type: "dir";
  path: string;
  mode: number;
}

export interface SymlinkEntry {
  type: "symlink";
  path: string;
  /** A relative target that stays inside the folder (FORMAT.md §10.3). */
  target: string;
}

/** One entry of a folder archive. */
export type ArchiveEntry = FileEntry | DirEntry | SymlinkEntry;

/** The footer metadata, checked. Keys a reader does not know are dropped. */
export interface Footer {
  /** The recognised source format (`raw` when none), or `folder` for a folder archive. */
  format: string;
  /** The tensor table, in the order the source held the tensors. */
  tensors: StoredTensor[];
  /** When the table was left out for its size: how many tensors the source had. */
  tensorsOmitted?: number;
  /** Small facts the recogniser reported (safetensors `__metadata__`, GGUF counts, ...). */
  sourceMetadata?: Record<string, unknown>;
  /** Why a file that looked like a model format was compressed as raw bytes. */
  recogniseProblem?: string;
  /** A folder archive's files, folders and links; empty for any other file. */
  entries: ArchiveEntry[];
}

/** `source.format` in the header and `format` in the footer of a folder archive. */
export const FOLDER_FORMAT = "folder";

const MAX_PATH_BYTES = 4095;
const MAX_NAME_BYTES = 255;
const SHA256_HEX = /^[0-9a-f]{64}$/;

function corrupt(condition: unknown, message: string): asserts condition {
  check(condition, "E_CORRUPT", `footer: ${message}`);
}

function unsafe(message: string): MmhError {
  return new MmhError("E_UNSAFE_PATH", `footer: ${message}`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function isMode(value: unknown): value is number {
  return isCount(value) && value <= 0o777;
}

/** Why `path` is not a valid entry path, or undefined when it is (FORMAT.md §10.2). */
export function pathProblem(path: unknown): string | undefined {
  if (typeof path !== "string") return "is not a string";
  if (path.length === 0) return "is empty";
  if (path.includes("\0")) return "contains a NUL byte";
  if (path.includes("\\")) return "contains a backslash";
  if (path.startsWith("/")) return "is absolute";
  if (Buffer.byteLength(path) > MAX_PATH_BYTES) return `is longer than ${MAX_PATH_BYTES} bytes`;
  for (const segment of path.split("/")) {
    if (segment === "") return "has an empty segment";
    if (segment === "." || segment === "..") return `has a "${segment}" segment`;
    if (Buffer.byteLength(segment) > MAX_NAME_BYTES) return `has a name longer than ${MAX_NAME_BYTES} bytes`;
  }
  return undefined;
}

/**
 * Why a symlink at `path` may not point to `target`, or undefined when it may: the target
 * is relative, in canonical form (`..` segments only at its start, no `.` or empty
 * segments) and climbs no higher than the folder's root. Resolution then stays inside the
 * folder whatever the other links are, because every link obeys the same rule (§10.3).
 */
export function linkTargetProblem(path: string, target: unknown): string | undefined {
  if (typeof target !== "string") return "is not a string";
  if (target.length === 0) return "is empty";
  if (target.includes("\0")) return "contains a NUL byte";
  if (target.includes("\\")) return "contains a backslash";
  if (target.startsWith("/")) return "is absolute";
  if (Buffer.byteLength(target) > MAX_PATH_BYTES) return `is longer than ${MAX_PATH_BYTES} bytes`;
  const segments = target.split("/");
  let climbs = 0;
  while (segments[climbs] === "..") climbs++;
  if (climbs === segments.length) return "ends in ..";
  for (const segment of segments.slice(climbs)) {
    if (segment === "" || segment === "." || segment === "..")
      return "is not in canonical form (.. only at the start, no . or empty segments)";
  }
  const depth = path.split("/").length - 1;
  if (climbs > depth) return "leaves the folder";
  return undefined;
}

function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function parentOf(path: string): string | undefined {
  const slash = path.lastIndexOf("/");
  return slash < 0 ? undefined : path.slice(0, slash);
}

/** Checks one tensor of the table (§4), in the order its keys are listed there. */
function parseTensor(item: unknown, i: number, contentLength: number): StoredTensor {
  corrupt(isObject(item), `tensor ${i} is not an object`);
  corrupt(typeof item.name === "string", `tensor ${i}: name is not a string`);
  const where = `tensor ${JSON.stringify(item.name)}`;
  corrupt(typeof item.dtype === "string", `${where}: dtype is not a string`);
  corrupt(
    Array.isArray(item.shape) && item.shape.every(isCount),
    `${where}: shape is not an array of non-negative integers`,
  );
  corrupt(isCount(item.offset), `${where}: offset is not a non-negative integer`);
  corrupt(isCount(item.length), `${where}: length is not a non-negative integer`);
  corrupt(
    item.offset + item.length <= contentLength,
    `${where}: bytes ${item.offset}..${item.offset + item.length} are outside the content (${contentLength} bytes)`,
  );
  corrupt(item.file === undefined || typeof item.file === "string", `${where}: file is not a string`);
  const tensor: StoredTensor = {
    name: item.name,
    dtype: item.dtype,
    shape: item.shape as number[],
    offset: item.offset,
    length: item.length,
  };
  if (item.file !== undefined) tensor.file = item.file;
  return tensor;
}

/**
 * A folder archive's entries (§10.1-10.4), checked in table order: E_CORRUPT for a
 * malformed table, E_UNSAFE_PATH for a path or link target that could write outside the
 * folder, E_UNSUPPORTED for an entry type this reader does not know.
 */
function parseEntries(raw: unknown[], contentLength: number): ArchiveEntry[] {
  const entries: ArchiveEntry[] = [];
  const kinds = new Map<string, ArchiveEntry["type"]>();
  let previous: string | undefined;
  let expected = 0;
  for (const [i, e] of raw.entries()) {
    corrupt(isObject(e), `entry ${i} is not an object`);
    const problem = pathProblem(e.path);
    if (problem) throw unsafe(`entry ${i}: path ${JSON.stringify(e.path)} ${problem}`);
    const path = e.path as string;
    const where = `entry ${JSON.stringify(path)}`;
    if (kinds.has(path)) throw unsafe(`${where}: duplicate path`);
    corrupt(
      previous === undefined || compareBytes(previous, path) < 0,
      `${where}: entries are not sorted by path`,
    );
    previous = path;
    const parent = parentOf(path);
    if (parent !== undefined) {
      const kind = kinds.get(parent);
      if (kind === "symlink") throw unsafe(`${where}: passes through the symbolic link ${parent}`);
      if (kind === "file") throw unsafe(`${where}: passes through the file ${parent}`);
      corrupt(kind === "dir", `${where}: its folder ${parent} is not in the archive`);
    }
    let entry: ArchiveEntry;
    if (e.type === "file") {
      corrupt(isCount(e.size), `${where}: size is not a non-negative integer`);
      corrupt(isCount(e.offset), `${where}: offset is not a non-negative integer`);
      corrupt(isMode(e.mode), `${where}: mode is not permission bits (0 to 0o777)`);
      corrupt(typeof e.format === "string", `${where}: format is not a string`);
      corrupt(
        typeof e.sha256 === "string" && SHA256_HEX.test(e.sha256),
        `${where}: sha256 is not 64 lowercase hex digits`,
      );
      const end = e.offset + e.size;
      corrupt(
        end <= contentLength,
        `${where}: bytes ${e.offset}..${end} are outside the content (${contentLength} bytes)`,
      );
      corrupt(e.offset >= expected, `${where}: overlaps the file before it`);
      corrupt(e.offset === expected, `${where}: leaves a gap after the file before it`);
      expected = end;
      entry = {
        type: "file",
        path,
        size: e.size,
        mode: e.mode,
        offset: e.offset,
        format: e.format,
        sha256: e.sha256,
      };
      if (isObject(e.sourceMetadata)) entry.sourceMetadata = e.sourceMetadata;
      if (typeof e.recogniseProblem === "string") entry.recogniseProblem = e.recogniseProblem;
    } else if (e.type === "dir") {
      corrupt(isMode(e.mode), `${where}: mode is not permission bits (0 to 0o777)`);
      entry = { type: "dir", path, mode: e.mode };
    } else if (e.type === "symlink") {
      const why = linkTargetProblem(path, e.target);
      if (why) throw unsafe(`${where}: link target ${JSON.stringify(e.target)} ${why}`);
      entry = { type: "symlink", path, target: e.target as string };
    } else {
      throw new MmhError("E_UNSUPPORTED", `footer: ${where}: unknown entry type ${JSON.stringify(e.type)}`);
    }
    kinds.set(path, entry.type);
    entries.push(entry);
  }
  corrupt(
    expected === contentLength,
    `the archive's files hold ${expected} bytes but the content is ${contentLength} bytes`,
  );
  return entries;
}

/**
 * The footer metadata of a container whose content is `contentLength` bytes, checked in
 * the order of FORMAT.md §4: `format`, `tensors` (each tensor's keys in order, its range
 * inside the content), `tensorsOmitted`, `sourceMetadata`, `recogniseProblem`, then
 * `entries` (§10.4) and, in a folder archive, that each tensor lies inside a file entry it
 * names. Keys it does not know are ignored.
 */
export function parseFooter(raw: Metadata, contentLength: number): Footer {
  corrupt(isObject(raw), "is not a JSON object");
  corrupt(raw.format === undefined || typeof raw.format === "string", "format is not a string");
  const format = (raw.format as string | undefined) ?? "raw";
  corrupt(raw.tensors === undefined || Array.isArray(raw.tensors), "tensors is not an array");
  const tensors = ((raw.tensors as unknown[] | undefined) ?? []).map((t, i) =>
    parseTensor(t, i, contentLength),
  );
  const footer: Footer = { format, tensors, entries: [] };
  if (raw.tensorsOmitted !== undefined) {
    corrupt(isCount(raw.tensorsOmitted), "tensorsOmitted is not a non-negative integer");
    corrupt(tensors.length === 0, "tensorsOmitted is set but the tensor table is not empty");
    footer.tensorsOmitted = raw.tensorsOmitted;
  }
  if (raw.sourceMetadata !== undefined) {
    corrupt(isObject(raw.sourceMetadata), "sourceMetadata is not an object");
    footer.sourceMetadata = raw.sourceMetadata;
  }
  if (raw.recogniseProblem !== undefined) {
    corrupt(typeof raw.recogniseProblem === "string", "recogniseProblem is not a string");
    footer.recogniseProblem = raw.recogniseProblem;
  }
  if (raw.entries === undefined) {
    corrupt(format !== FOLDER_FORMAT, "a folder archive has no entries table");
    return footer;
  }
  corrupt(Array.isArray(raw.entries), "entries is not an array");
  footer.entries = parseEntries(raw.entries, contentLength);
  const files = new Map<string, FileEntry>();
  for (const entry of footer.entries) if (entry.type === "file") files.set(entry.path, entry);
  for (const tensor of tensors) {
    const where = `tensor ${JSON.stringify(tensor.name)}`;
    corrupt(tensor.file !== undefined, `${where} of a folder archive names no file`);
    const file = files.get(tensor.file);
    corrupt(file !== undefined, `${where}: no file entry ${JSON.stringify(tensor.file)}`);
    corrupt(
      tensor.offset >= file.offset && tensor.offset + tensor.length <= file.offset + file.size,
      `${where} lies outside its file ${JSON.stringify(tensor.file)}`,
    );
  }
  return footer;
}

/** Whether a footer is a folder archive's. */
export function isArchive(footer: Footer): boolean {
  return footer.format === FOLDER_FORMAT || footer.entries.length > 0;
}
