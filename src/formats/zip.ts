/**
 * Zip listing for the npz and PyTorch recognisers. yauzl reads the end-of-central-directory
 * record (ZIP64 included) and the central directory through a RandomAccessReader over our
 * source; we then read each member's local header to find where its data starts.
 */
import { Readable } from "node:stream";
import type yauzl from "yauzl";
import { check, MmhError } from "../common/errors.ts";
import type { RandomAccessSource } from "../common/source.ts";
import { readAt } from "./regions.ts";

export { looksLikeZip } from "./magic.ts";

export const ZIP_LOCAL_MAGIC = 0x04034b50;

export interface ZipMember {
  name: string;
  /** 0 stored, 8 deflated, anything else we do not decode. */
  method: number;
  flags: number;
  compressedSize: number;
  uncompressedSize: number;
  localHeaderOffset: number;
  /** First byte of the member's (possibly compressed) data. */
  dataOffset: number;
  encrypted: boolean;
}

/**
 * yauzl and a RandomAccessReader over our sources, loaded on the first zip: most runs of
 * mmh read none, and loading it is a measurable share of the start (docs/ENGINE.md).
 */
let loaded: Promise<{ zip: typeof yauzl; reader: (source: RandomAccessSource) => yauzl.RandomAccessReader }>;

function loadYauzl(): typeof loaded {
  loaded ??= import("yauzl").then(({ default: zip }) => {
    class SourceReader extends zip.RandomAccessReader {
      readonly source: RandomAccessSource;

      constructor(source: RandomAccessSource) {
        super();
        this.source = source;
      }

      override _readStreamForRange(start: number, end: number): Readable {
        return readRange(this.source, start, end);
      }
    }
    return { zip, reader: (source) => new SourceReader(source) };
  });
  return loaded;
}

/** A stream of the source's bytes start..end, for yauzl. */
function readRange(source: RandomAccessSource, start: number, end: number): Readable {
  const stream = new Readable({ read() {} });
  if (!(Number.isSafeInteger(start) && Number.isSafeInteger(end) && 0 <= start && start <= end)) {
    queueMicrotask(() => stream.destroy(new MmhError("E_CORRUPT", `zip: bad read range ${start}..${end}`)));
    return stream;
  }
  readAt(source, start, end - start, "zip structure").then(
    (bytes) => {
      stream.push(bytes);
      stream.push(null);
    },
    (error: unknown) => stream.destroy(error as Error),
  );
  return stream;
}

function zipError(error: unknown): MmhError {
  if (error instanceof MmhError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (/End of central directory record signature not found/.test(message)) {
    return new MmhError("E_TRUNCATED", "zip: no end of central directory record (truncated?)", {
      cause: error,
    });
  }
  if (/unexpected EOF|past the end/i.test(message)) {
    return new MmhError("E_TRUNCATED", `zip: ${message}`, { cause: error });
  }
  return new MmhError("E_CORRUPT", `zip: ${message}`, { cause: error });
}

async function openZip(source: RandomAccessSource): Promise<yauzl.ZipFile> {
  const { zip, reader } = await loadYauzl();
  return new Promise((resolve, reject) => {
    try {
      zip.fromRandomAccessReader(
        reader(source),
        source.size,
        { lazyEntries: true, autoClose: true, decodeStrings: true, validateEntrySizes: true },
        (error, zipfile) => (error ? reject(zipError(error)) : resolve(zipfile)),
      );
    } catch (error) {
      reject(zipError(error));
    }
  });
}

function readEntries(zipfile: yauzl.ZipFile, maxEntries: number): Promise<yauzl.Entry[]> {
  return new Promise((resolve, reject) => {
    const entries: yauzl.Entry[] = [];
    zipfile.on("entry", (entry: yauzl.Entry) => {
      entries.push(entry);
      if (entries.length > maxEntries) {
        zipfile.close();
        reject(new MmhError("E_LIMIT", `zip: more than ${maxEntries} members`));
        return;
      }
      zipfile.readEntry();
    });
    zipfile.on("end", () => resolve(entries));
    zipfile.on("error", (error: unknown) => reject(zipError(error)));
    zipfile.readEntry();
  });
}

/** List a zip's members with their data offsets. Every error is an MmhError. */
export async function listZip(source: RandomAccessSource, maxEntries = 1_000_000): Promise<ZipMember[]> {
  const size = source.size;
  check(size >= 22, "E_TRUNCATED", "zip: shorter than an end of central directory record");
  const zipfile = await openZip(source);
  // Each central directory record takes at least 46 bytes.
  check(
    zipfile.entryCount <= Math.floor(size / 46),
    "E_CORRUPT",
    `zip: ${zipfile.entryCount} members cannot fit in ${size} bytes`,
  );
  check(zipfile.entryCount <= maxEntries, "E_LIMIT", `zip: ${zipfile.entryCount} members is over the limit`);
  const entries = await readEntries(zipfile, maxEntries);
  const members: ZipMember[] = [];
  for (const entry of entries) {
    const name = String(entry.fileName);
    const at = entry.relativeOffsetOfLocalHeader;
    check(Number.isSafeInteger(at), "E_CORRUPT", `zip: member ${name} has a bad local header offset`);
    const local = await readAt(source, at, 30, `zip local header of ${name}`);
    check(
      local.readUInt32LE(0) === ZIP_LOCAL_MAGIC,
      "E_CORRUPT",
      `zip: member ${name} has a bad local header signature at ${at}`,
    );
    const dataOffset = at + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
    check(
      Number.isSafeInteger(entry.compressedSize) && Number.isSafeInteger(entry.uncompressedSize),
      "E_CORRUPT",
      `zip: member ${name} has a bad size`,
    );
    check(
      dataOffset + entry.compressedSize <= size,
      "E_TRUNCATED",
      `zip: member ${name} (${entry.compressedSize} bytes at ${dataOffset}) runs past the end of the file`,
    );
    members.push({
      name,
      method: entry.compressionMethod,
      flags: entry.generalPurposeBitFlag,
      compressedSize: entry.compressedSize,
      uncompressedSize: entry.uncompressedSize,
      localHeaderOffset: at,
      dataOffset,
      encrypted: (entry.generalPurposeBitFlag & 1) !== 0,
    });
  }
  return members;
}
