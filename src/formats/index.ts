/**
 * Model-file recognition: sniff the magic bytes and hand the file to the recogniser for
 * its format. Anything unrecognised is one raw region. A file that looks like a format but
 * is malformed throws an MmhError (E_CORRUPT, E_TRUNCATED, E_LIMIT, E_UNSUPPORTED); the
 * caller decides whether to fall back to raw.
 */
import { isMmhError, MmhError } from "../common/errors.ts";
import type { RandomAccessSource } from "../common/source.ts";
// The recognisers load only when a file's first bytes name their format (magic.ts).
import {
  looksLikeGgml,
  looksLikeGguf,
  looksLikeHdf5,
  looksLikeLegacyTorch,
  looksLikeNpy,
  looksLikeOnnx,
  looksLikeSafetensors,
  looksLikeTflite,
  looksLikeZip,
} from "./magic.ts";
import { assertTiles, rawRegion, readAt } from "./regions.ts";
import { MAX_METADATA_JSON, type Recognised, type RecogniseOptions } from "./types.ts";

export type { DType, DTypeName, Region } from "../common/dtype.ts";
export { allDTypes, byteLength, dtypeByName } from "../common/dtype.ts";
export { tileRegions } from "./regions.ts";
export type { FormatName, Recognised, RecogniseOptions, TensorEntry } from "./types.ts";

/** The whole file as one raw region. */
export function rawRecognised(size: number): Recognised {
  return { format: "raw", regions: size > 0 ? [rawRegion("raw", 0, size)] : [], tensors: [] };
}

async function dispatch(source: RandomAccessSource, options?: RecogniseOptions): Promise<Recognised> {
  const size = source.size;
  const head = await readAt(source, 0, Math.min(size, 16), "file head");
  if (looksLikeGguf(head)) return (await import("./gguf.ts")).recogniseGguf(source, options);
  if (looksLikeHdf5(head)) return (await import("./hdf5.ts")).recogniseHdf5(source, options);
  if (looksLikeGgml(head)) return (await import("./ggml.ts")).recogniseGgml(source, options);
  if (looksLikeNpy(head)) return (await import("./npy.ts")).recogniseNpy(source, options);
  if (looksLikeLegacyTorch(head)) return (await import("./pytorch.ts")).recogniseTorchLegacy(source, options);
  if (looksLikeZip(head)) {
    const members = await (await import("./zip.ts")).listZip(source);
    const torch = await import("./pytorch.ts");
    const prefix = torch.torchPrefix(members);
    if (prefix !== undefined) return torch.recogniseTorchZip(source, members, prefix, options);
    const npz = await import("./npz.ts");
    if (npz.isNpz(members)) return npz.recogniseNpz(source, members, options);
    return rawRecognised(size);
  }
  if (looksLikeSafetensors(head))
    return (await import("./safetensors.ts")).recogniseSafetensors(source, options);
  if (looksLikeTflite(head)) return (await import("./tflite.ts")).recogniseTflite(source, options);
  if (looksLikeOnnx(head)) return (await import("./onnx.ts")).recogniseOnnx(source, options);
  return rawRecognised(size);
}

/**
 * Recognise a model file. Returns its regions (tiling the file exactly) and tensors, or
 * `format: "raw"` for anything unrecognised. Throws only MmhErrors.
 */
export async function recognise(source: RandomAccessSource, options?: RecogniseOptions): Promise<Recognised> {
  let result: Recognised;
  try {
    result = await dispatch(source, options);
  } catch (error) {
    if (isMmhError(error)) throw error;
    throw new MmhError("E_INTERNAL", `recognise: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
  assertTiles(result.regions, source.size);
  if (result.metadata !== undefined && JSON.stringify(result.metadata).length > MAX_METADATA_JSON) {
    result.metadata = { omitted: "metadata over 64 KiB" };
  }
  return result;
}
