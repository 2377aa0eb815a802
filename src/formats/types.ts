/**
 * What a model-file recogniser tells the compressor: the file cut into regions (so chunks
 * can end at tensor boundaries and each chunk is coded knowing its dtype) and the named
 * tensors it found.
 */
import type { DTypeName, Region } from "../common/dtype.ts";

export type FormatName =
  | "safetensors"
  | "npy"
  | "npz"
  | "gguf"
  | "pytorch"
  | "onnx"
  | "tflite"
  | "hdf5"
  | "ggml"
  | "raw";

/** One named tensor, in file coordinates. */
export interface TensorEntry {
  name: string;
  /**
   * A DTypeName when the element type maps onto one; otherwise the format's own name for
   * it: a GGUF quantisation HIER has no layout for ("IQ2_XS", "ggml type 99"), a numpy descr (">f4", "|O"), a torch
   * storage type ("QInt8Storage").
   */
  dtype: DTypeName | string;
  shape: number[];
  /** First byte of the tensor's data in the file. */
  offset: number;
  /** Bytes from `offset` that the tensor's elements span (0 for an empty tensor). */
  length: number;
}

export interface Recognised {
  format: FormatName;
  /** Sorted by offset, tiling [0, size) exactly: no gaps, no overlaps, no empty regions. */
  regions: Region[];
  tensors: TensorEntry[];
  /** Small, JSON-safe facts about the file (kept under 64 KiB). */
  metadata?: Record<string, unknown>;
}

export interface RecogniseOptions {
  /**
   * Largest header a recogniser reads and parses, in bytes (safetensors JSON, GGUF
   * metadata and tensor infos, npy header dict, torch data.pkl). Default 100 MB, the
   * safetensors reference's limit; npy and data.pkl have their own smaller caps too.
   */
  maxHeaderBytes?: number;
}

export const DEFAULT_MAX_HEADER_BYTES = 100_000_000;

/** Upper bound on the JSON size of `Recognised.metadata`. */
export const MAX_METADATA_JSON = 64 * 1024;
