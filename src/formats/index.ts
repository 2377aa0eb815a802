/**
 * Model-file recognition: sniff the magic bytes and hand the file to the recogniser for
 * its format. Anything unrecognised is one raw region. A file that looks like a format but
 * is malformed throws an MmhError (E_CORRUPT, E_TRUNCATED, E_LIMIT, E_UNSUPPORTED); the
 * caller decides whether to fall back to raw.
 */
import { isMmhError, MmhError } from "../common/errors.ts";
import type { RandomAccessSource } from "../common/source.ts";
import { looksLikeGgml, recogniseGgml } from "./ggml.ts";
import { looksLikeGguf, recogniseGguf } from "./gguf.ts";
import { looksLikeHdf5, recogniseHdf5 } from "./hdf5.ts";
import { looksLikeNpy, recogniseNpy } from "./npy.ts";
import { isNpz, recogniseNpz } from "./npz.ts";
import { looksLikeOnnx, recogniseOnnx } from "./onnx.ts";
import { looksLikeLegacyTorch, recogniseTorchLegacy, recogniseTorchZip, torchPrefix } from "./pytorch.ts";
import { assertTiles, rawRegion, readAt } from "./regions.ts";
import { looksLikeSafetensors, recogniseSafetensors } from "./safetensors.ts";
import { looksLikeTflite, recogniseTflite } from "./tflite.ts";
import { MAX_METADATA_JSON, type Recognised, type RecogniseOptions } from "./types.ts";
import { listZip, looksLikeZip } from "./zip.ts";

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
  if (looksLikeGguf(head)) return recogniseGguf(source, options);
  if (looksLikeHdf5(head)) return recogniseHdf5(source, options);
  if (looksLikeGgml(head)) return recogniseGgml(source, options);
  if (looksLikeNpy(head)) return recogniseNpy(source, options);
  if (looksLikeLegacyTorch(head)) return recogniseTorchLegacy(source, options);
  if (looksLikeZip(head)) {
    const members = await listZip(source);
    const prefix = torchPrefix(members);
    if (prefix !== undefined) return recogniseTorchZip(source, members, prefix, options);
    if (isNpz(members)) return recogniseNpz(source, members, options);
    return rawRecognised(size);
  }
  if (looksLikeSafetensors(head)) return recogniseSafetensors(source, options);
  if (looksLikeTflite(head)) return recogniseTflite(source, options);
  if (looksLikeOnnx(head)) return recogniseOnnx(source, options);
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
