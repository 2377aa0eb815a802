/**
 * `open(pathOrBytes)`: random access to one .mmh file, in the shape of safetensors'
 * `safe_open`. The header, index, trailer and footer are read and checked once, on open;
 * each read after that decodes only the chunks it needs.
 */

import { entryPieces, findFile, findTensor } from "./archive/read.ts";
import { check, guard, MmhError, toMmhError } from "./common/errors.ts";
import { bufferSource } from "./common/source.ts";
import type { Header, Trailer } from "./container/format.ts";
import {
  type ArchiveEntry,
  type FileEntry,
  type Footer,
  isArchive,
  type StoredTensor,
} from "./container/metadata.ts";
import { resolveBase, resolveMaxOutput } from "./engine/decodeoptions.ts";
import { type ChunkInfo, MmhReader } from "./engine/reader.ts";
import type { HttpOptions } from "./remote/http.ts";
import { targetSource } from "./remote/target.ts";

export type { ChunkInfo } from "./engine/reader.ts";

/** Options of the reads of an open file. */
export interface ReadOptions {
  /** Refuse to return more than this many bytes (E_LIMIT). */
  maxOutputBytes?: number;
}

/** How open() reads a file over HTTP (the HTTP options are ignored for a path or bytes). */
export interface OpenOptions extends HttpOptions {
  /** The base file or folder a file compressed with `base` needs (FORMAT.md §6.4). */
  base?: string;
}

/** Options of the tensor reads of an open file. */
export interface TensorReadOptions extends ReadOptions {
  /** In a folder archive: the path of the file whose tensor to read, when several hold one of that name. */
  file?: string;
}

/** An open .mmh file. Close it when done (or use `await using`). */
export class MmhFile {
  readonly #reader: MmhReader;
  readonly #label: string;

  /** @internal Use open(). */
  constructor(reader: MmhReader, label: string) {
    this.#reader = reader;
    this.#label = label;
  }

  /** The container's header, with its metadata (the writer, the source's name and format, the options). */
  get header(): Header {
    return this.#reader.header;
  }

  /** The trailer: the content's length, its SHA-256 and the chunk count. */
  get trailer(): Trailer {
    return this.#reader.trailer;
  }

  /** The footer metadata, checked on open (docs/FORMAT.md §4). */
  get footer(): Footer {
    return this.#reader.footer;
  }

  /** Every chunk: where its record is, its content range, its codec. */
  get chunks(): readonly ChunkInfo[] {
    return this.#reader.chunks;
  }

  /** Bytes of the .mmh file itself. */
  get fileBytes(): number {
    return this.#reader.source.size;
  }

  /** Bytes of the content, the original file (or, for a folder archive, its files end to end). */
  get size(): number {
    return this.#reader.rawLength;
  }

  /** The content's SHA-256, as `sha256sum` prints it. */
  get sha256(): string {
    return this.#reader.trailer.sha256;
  }

  /** The recognised source format (`safetensors`, `gguf`, ..., `raw`), or `folder`. */
  get format(): string {
    return this.#reader.footer.format;
  }

  /** The tensor table: each tensor's name, dtype, shape and byte range in the content. */
  get tensors(): readonly StoredTensor[] {
    return this.#reader.footer.tensors;
  }

  /** A folder archive's files, folders and links (empty for any other file). */
  get entries(): readonly ArchiveEntry[] {
    return this.#reader.footer.entries;
  }

  /** The table entry of the tensor `name`: E_NOT_FOUND when there is none. */
  tensor(name: string, options: { file?: string } = {}): StoredTensor {
    return findTensor(this.#reader.footer, name, options.file, this.#label);
  }

  /** `length` content bytes from `offset`, decoding only the chunks that hold them. */
  readRange(offset: number, length: number, options: ReadOptions = {}): Promise<Uint8Array> {
    return guard(() => this.#reader.readRange(offset, length, resolveMaxOutput(options)));
  }

  /** The same bytes as readRange, as pieces of at most one chunk, for a range too large to hold. */
  rangeStream(offset: number, length: number, options: ReadOptions = {}): AsyncGenerator<Uint8Array> {
    const reader = this.#reader;
    return (async function* () {
      try {
        check(
          Number.isSafeInteger(offset) && offset >= 0 && Number.isSafeInteger(length) && length >= 0,
          "E_BAD_OPTION",
          `offset and length must be non-negative integers, got ${offset} and ${length}`,
        );
        checkLimit(`range ${offset}+${length}`, length, options);
        yield* reader.rangePieces(offset, length);
      } catch (error) {
        throw toMmhError(error);
      }
    })();
  }

  /** The bytes of the tensor `name`, exactly as the source held them; only its chunks are decoded. */
  readTensor(name: string, options: TensorReadOptions = {}): Promise<Uint8Array> {
    return guard(async () => {
      const tensor = this.tensor(name, options);
      return this.#reader.readRange(tensor.offset, tensor.length, resolveMaxOutput(options));
    });
  }

  /** The tensor `name` in pieces of at most one chunk each, for a tensor too large to hold. */
  tensorStream(name: string, options: TensorReadOptions = {}): AsyncGenerator<Uint8Array> {
    const reader = this.#reader;
    const self = this;
    return (async function* () {
      try {
        const tensor = self.tensor(name, options);
        checkLimit(name, tensor.length, options);
        yield* reader.rangePieces(tensor.offset, tensor.length);
      } catch (error) {
        throw toMmhError(error);
      }
    })();
  }

  /** The file `path` of a folder archive, decoding only its chunks; its SHA-256 is checked (E_CHECKSUM). */
  readEntry(path: string, options: ReadOptions = {}): Promise<Uint8Array> {
    return guard(async () => {
      const pieces: Uint8Array[] = [];
      for await (const piece of this.entryStream(path, options)) pieces.push(piece);
      return Buffer.concat(pieces);
    });
  }

  /** The file `path` of a folder archive in pieces; its SHA-256 is checked after the last one. */
  entryStream(path: string, options: ReadOptions = {}): AsyncGenerator<Uint8Array> {
    const reader = this.#reader;
    const label = this.#label;
    return (async function* () {
      try {
        if (!isArchive(reader.footer))
          throw new MmhError(
            "E_BAD_OPTION",
            `${label} is not a folder archive (it holds one ${reader.footer.format} file; restore it with mmh -d)`,
          );
        const entry: FileEntry = findFile(reader.footer.entries, path, label);
        checkLimit(path, entry.size, options);
        yield* entryPieces(reader, entry);
      } catch (error) {
        throw toMmhError(error);
      }
    })();
  }

  /** Close the file. Reads after this fail. */
  close(): Promise<void> {
    return this.#reader.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

function checkLimit(name: string, length: number, options: ReadOptions): void {
  const max = resolveMaxOutput(options);
  check(length <= max, "E_LIMIT", `${name} has ${length} bytes, over the limit of ${max}`);
}

/**
 * Open an .mmh file (a path or a file: URL), one served over HTTP(S) (a `URL` or an
 * `http://` or `https://` string, read through range requests) or container bytes held
 * in memory, reading and checking its header, index, trailer and footer. Nothing is
 * decoded until a read asks for it.
 */
export async function open(
  pathOrBytesOrUrl: string | URL | Uint8Array,
  options: OpenOptions = {},
): Promise<MmhFile> {
  return guard(async () => {
    if (typeof pathOrBytesOrUrl === "string" || pathOrBytesOrUrl instanceof URL) {
      const { source, label } = await targetSource(pathOrBytesOrUrl, options);
      return new MmhFile(await MmhReader.open(source, resolveBase(options)), label);
    }
    if (!(pathOrBytesOrUrl instanceof Uint8Array))
      throw new MmhError("E_BAD_OPTION", "open() takes a path, a URL or a Uint8Array");
    return new MmhFile(
      await MmhReader.open(bufferSource(pathOrBytesOrUrl), resolveBase(options)),
      "the container",
    );
  });
}
