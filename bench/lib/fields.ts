/** HIER's field streams of the float chunks of a file, for the benches that weigh field coders. */
import { layoutForDType, streamLength } from "../../src/codecs/hier/layouts.ts";

type FloatDType = "F32" | "BF16" | "F16";

/**
 * For each chunk of `plan` (describeSource's, in order over `data`) whose dtype is F32, BF16
 * or F16 and which holds at least 4096 elements: its dtype and its elements split into
 * HIER's field streams (exponent first), whole elements only.
 */
export function* floatChunkStreams(
  data: Uint8Array,
  plan: readonly { length: number; dtype?: string | null }[],
): Generator<{ dtype: FloatDType; streams: Uint8Array[] }> {
  let at = 0;
  for (const spec of plan) {
    const raw = data.subarray(at, at + spec.length);
    at += spec.length;
    if (spec.dtype !== "F32" && spec.dtype !== "BF16" && spec.dtype !== "F16") continue;
    const l = layoutForDType(spec.dtype);
    const n = Math.floor(raw.length / l.width);
    if (n < 4096) continue;
    const src = new Uint8Array(n * l.width);
    src.set(raw.subarray(0, n * l.width));
    const streams = Array.from({ length: l.streams }, (_, k) => new Uint8Array(streamLength(l, k, n)));
    l.split(src, n, streams);
    yield { dtype: spec.dtype, streams };
  }
}
