import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { bufferSource } from "../src/common/source.ts";
import { MIN_SEGMENTED, segmentRaw } from "../src/formats/detect.ts";
import { compress, decompress } from "../src/index.ts";
import { gaussian, generate, rng } from "../src/tools/gen.ts";

/** An ONNX-like file: short text headers of varying length, then F32 tensors at any offset. */
function onnxLike(
  size: number,
  seed: number,
): { data: Buffer; tensors: { offset: number; length: number }[] } {
  const next = rng(seed);
  const normal = gaussian(next);
  const parts: Buffer[] = [];
  const tensors: { offset: number; length: number }[] = [];
  let total = 0;
  while (total < size) {
    const header = Buffer.from(
      `\n\x12layer_${Math.floor(next() * 1e6)}.weight\x1a`.repeat(1 + Math.floor(next() * 3)),
    );
    const n = 30000 + Math.floor(next() * 150000);
    const values = new Float32Array(n);
    const scale = 0.02 * Math.exp(0.3 * normal());
    for (let i = 0; i < n; i++) values[i] = normal() * scale;
    parts.push(header);
    total += header.length;
    tensors.push({ offset: total, length: values.byteLength });
    parts.push(Buffer.from(values.buffer));
    total += values.byteLength;
  }
  return { data: Buffer.concat(parts), tensors };
}

const raw = (length: number) => ({ name: "raw", offset: 0, length, dtype: null, kind: "raw" as const });

describe("arrays inside unknown files", () => {
  const { data, tensors } = onnxLike(8 << 20, 7);

  test("detected regions start on the element boundaries of the arrays they cover", async () => {
    const regions = await segmentRaw(bufferSource(data), raw(data.length));
    assert.ok(regions.length > 4, `found ${regions.length} regions`);
    // Each tensor's middle lies in a region that reads it as F32 in its own alignment.
    let aligned = 0;
    for (const tensor of tensors) {
      const middle = tensor.offset + tensor.length / 2;
      const region = regions.find((r) => middle >= r.offset && middle < r.offset + r.length);
      assert.ok(region, "regions cover every byte");
      if (region.dtype === "F32" && (region.offset - tensor.offset) % 4 === 0) aligned += tensor.length;
    }
    const total = tensors.reduce((a, t) => a + t.length, 0);
    assert.ok(aligned > total * 0.9, `${aligned} of ${total} tensor bytes read in their own alignment`);
    let at = 0;
    for (const region of regions) {
      assert.equal(region.offset, at, "regions tile the input");
      at += region.length;
    }
    assert.equal(at, data.length);
  });

  test("compressing with detection beats per-chunk detection alone, and round-trips", async () => {
    const segmented = await compress(data);
    const perChunk = await compress(data, { recognise: false });
    assert.ok(segmented.length < perChunk.length * 0.99, `${segmented.length} vs ${perChunk.length}`);
    assert.ok(Buffer.from(await decompress(segmented)).equals(data));
  });

  test("text and random bytes give no float regions, and small inputs are left whole", async () => {
    for (const kind of ["text", "random"] as const) {
      const bytes = generate({ kind, size: 4 << 20, seed: 3 });
      const regions = await segmentRaw(bufferSource(bytes), raw(bytes.length));
      assert.deepEqual(
        regions.filter((r) => r.dtype !== null).map((r) => r.dtype),
        [],
        kind,
      );
    }
    const small = generate({ kind: "random", size: MIN_SEGMENTED - 1 });
    assert.equal((await segmentRaw(bufferSource(small), raw(small.length))).length, 1);
  });
});
