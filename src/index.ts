/**
 * MMH's public API (docs/API.md). The CLI, the service and the Python package are
 * clients of this module.
 */
import { listCodecs as registeredCodecs } from "./codecs/registry.ts";
import { guard, MmhError } from "./common/errors.ts";
import { fileSource } from "./common/source.ts";
import type { Header, Trailer } from "./container/format.ts";
import type { Footer } from "./container/metadata.ts";
import type { CompressOptions, DecompressOptions } from "./engine/options.ts";
import { type ChunkInfo, MmhReader } from "./engine/reader.ts";
import { legacyName, probeLegacy } from "./legacy/mmhrs.ts";
import type { OpenOptions } from "./open.ts";
import { targetSource } from "./remote/target.ts";
import { type AnalyzeOptions, type AnalyzeReport, analyzeSource } from "./tools/analyze.ts";

export { type PackOptions, type PackSummary, pack } from "./archive/pack.ts";
export { type UnpackOptions, type UnpackSummary, unpack } from "./archive/unpack.ts";
export type { ErrorCode } from "./common/errors.ts";
export { ErrorCodes, MmhError } from "./common/errors.ts";
export {
  type CompressSummary,
  compress,
  compressFile,
  compressFileStream,
  compressStream,
  type StreamSizeOptions,
} from "./compress.ts";
export type { Header, Trailer } from "./container/format.ts";
export { FORMAT_VERSION } from "./container/format.ts";
export type {
  ArchiveEntry,
  DirEntry,
  FileEntry,
  Footer,
  StoredTensor,
  SymlinkEntry,
} from "./container/metadata.ts";
export {
  type CodedStream,
  type DecompressSummary,
  decompress,
  decompressFile,
  decompressFileStream,
  decompressInto,
  decompressStream,
  type FileOptions,
  inspectLegacy,
  type StreamOutputOptions,
  verify,
} from "./decompress.ts";
export type { Goal } from "./engine/auto.ts";
export type { ProgressEvent, ProgressOptions } from "./engine/progress.ts";
export type { ChunkInfo } from "./engine/reader.ts";
export {
  createCompressStream,
  createCompressTransformStream,
  createDecompressStream,
  createDecompressTransformStream,
  type MmhTransform,
} from "./engine/streams.ts";
export type { LegacyInspection } from "./legacy/mmhrs.ts";
export {
  type MmhFile,
  type OpenOptions,
  open,
  type ReadOptions,
  type TensorReadOptions,
} from "./open.ts";
export { compressSync, decompressSync } from "./sync.ts";
export type { AnalyzeOptions, AnalyzeReport, RegionReport } from "./tools/analyze.ts";
export { VERSION } from "./version.ts";
export type { CompressOptions, DecompressOptions };

/** What inspect() reads of an .mmh file, from its header, index and trailer alone. */
export interface Inspection {
  fileBytes: number;
  header: Header;
  trailer: Trailer;
  footer: Footer;
  chunks: ChunkInfo[];
  /** Chunk count per codec FourCC. */
  codecs: Record<string, number>;
}

/**
 * Header, metadata, trailer and chunk table of an .mmh file (a path, or a URL read as
 * open() reads one), from its index alone. A legacy MMH-RS file has none of these:
 * E_UNSUPPORTED (inspectLegacy describes it).
 */
export function inspect(file: string | URL, options: OpenOptions = {}): Promise<Inspection> {
  return guard(async () => {
    const { source } = await targetSource(file, options);
    const legacy = await probeLegacy(source).catch(async (error: unknown) => {
      await source.close();
      throw error;
    });
    if (legacy) {
      await source.close();
      throw new MmhError(
        "E_UNSUPPORTED",
        `${String(file)}: a legacy ${legacyName(legacy)}, not an .mmh container: inspectLegacy describes it, decompress reads it`,
      );
    }
    const reader = await MmhReader.open(source);
    try {
      const codecs: Record<string, number> = {};
      for (const chunk of reader.chunks) codecs[chunk.codec] = (codecs[chunk.codec] ?? 0) + 1;
      return {
        fileBytes: reader.source.size,
        header: reader.header,
        trailer: reader.trailer,
        footer: reader.footer,
        chunks: reader.chunks,
        codecs,
      };
    } finally {
      await reader.close();
    }
  });
}

/** A codec this build can write and read. */
export interface CodecInfo {
  /** The FourCC stored in each chunk record. */
  id: string;
  name: string;
  description: string;
  levels?: { min: number; max: number; default: number };
}

/** Analyse a file: per tensor or region, its dtype, field entropies and each codec's ratio on a sample. */
export function analyze(file: string, options: AnalyzeOptions = {}): Promise<AnalyzeReport> {
  return guard(async () => {
    const source = await fileSource(file);
    try {
      return await analyzeSource(source, options);
    } finally {
      await source.close();
    }
  });
}

/** The codecs this build can write and read. */
export function listCodecs(): CodecInfo[] {
  return registeredCodecs().map(({ id, name, description, levels }) => ({
    id,
    name,
    description,
    ...(levels ? { levels: { min: levels.min, max: levels.max, default: levels.default } } : {}),
  }));
}
