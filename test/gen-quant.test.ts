/**
 * `mmh gen --dtype Q4_K` and the other ggml block types: a GGUF file of real quantised
 * blocks. Each tensor is read back through the GGUF recogniser and dequantised: every
 * weight must come back within its block's quantisation step of the weight drawn.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { bufferSource } from "../src/common/source.ts";
import { recognise } from "../src/formats/index.ts";
import { classify } from "../src/tools/bench.ts";
import { GEN_BLOCK_DTYPES, generate } from "../src/tools/gen.ts";
import { checkQuantiser, fromHalf, QUANT_TYPES, studentWeights } from "../src/tools/quant.ts";
import { assertError, mmhIn } from "./cli-support.ts";

const dir = mkdtempSync(join(tmpdir(), "mmh-gen-quant-"));
after(() => rmSync(dir, { recursive: true, force: true }));

describe("gen: ggml block types", () => {
  for (const dtype of GEN_BLOCK_DTYPES) {
    test(`${dtype}: a GGUF whose blocks dequantise to the weights drawn`, async () => {
      const bytes = generate({ kind: "gguf", dtype, size: 96 << 10, seed: 7 });
      assert.ok(Math.abs(bytes.length - (96 << 10)) < 8 << 10, `about the size asked: ${bytes.length}`);
      const r = await recognise(bufferSource(bytes));
      assert.equal(r.format, "gguf");
      assert.ok(r.tensors.length >= 2);
      const type = QUANT_TYPES.find((t) => t.dtype === dtype)!;
      for (const [k, t] of r.tensors.entries()) {
        assert.equal(t.dtype, dtype);
        const [rows, width] = t.shape;
        assert.equal(t.length, ((rows * width) / type.weights) * type.bytes);
        const x = studentWeights(rows * width, 7 + k, { row: width, std: 0.02 });
        const q = bytes.subarray(t.offset, t.offset + t.length);
        // Throws when a weight does not dequantise to a level within its step.
        const check = checkQuantiser(type, x, Buffer.from(q));
        assert.ok(check.blocks > 0);
        assert.ok(check.relativeRms < 0.6, `${dtype} error ${check.relativeRms}`);
      }
    });
  }

  // ggml rounds x / d with d before its f16 rounding (relative error up to 2^-11), so a
  // level of up to 127 may be off by 127 * 2^-11 steps more than half a step.
  test("Q8_0 by hand: d (f16) times int8 levels, within half a step and d's rounding", () => {
    const bytes = generate({ kind: "gguf", dtype: "Q8_0", size: 34 * 64, seed: 3 });
    return recognise(bufferSource(bytes)).then((r) => {
      const t = r.tensors[0];
      const [rows, width] = t.shape;
      const x = studentWeights(rows * width, 3, { row: width, std: 0.02 });
      for (let b = 0; b < t.length / 34; b++) {
        const at = t.offset + b * 34;
        const d = fromHalf(bytes.readUInt16LE(at));
        for (let i = 0; i < 32; i++) {
          const y = d * bytes.readInt8(at + 2 + i);
          assert.ok(Math.abs(y - x[b * 32 + i]) <= d * (0.5 + 127 / 2048) + 1e-9, `block ${b} weight ${i}`);
        }
      }
    });
  });

  test("labelled synthetic, as analyze and bench read it", async () => {
    const bytes = generate({ kind: "gguf", dtype: "Q4_K", size: 64 << 10 });
    assert.equal((await classify(bytes)).class, "synthetic");
  });

  test("the CLI: --dtype Q4_K writes a GGUF; gguf with a float dtype is refused", () => {
    const mmh = mmhIn(dir);
    const r = mmh(["gen", "--dtype", "q4_k", "--size", "64K", "-o", "q.gguf"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(join(dir, "q.gguf")).subarray(0, 4).toString("latin1"), "GGUF");
    assertError(
      mmh(["gen", "--kind", "gguf", "--dtype", "BF16", "--size", "64K", "-o", "x"]),
      "E_BAD_OPTION",
      2,
    );
  });
});
