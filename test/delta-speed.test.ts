/**
 * Coding against a base, fast (docs/ENGINE.md, Deltas against a base): the modes screened
 * by their estimated sizes code as small as coding every mode; the quick look at a
 * matrix's rows tells a low-rank update from noise; a chunk coded against its base on a
 * pool's worker is the same record as on the calling thread; and compress() with a base
 * writes the same bytes with any number of threads.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import type { DTypeName } from "../src/common/dtype.ts";
import { chooseCodecs, encodeChoices } from "../src/engine/auto.ts";
import type { EncodedChunk } from "../src/engine/chunk.ts";
import { type DeltaJob, encodeAgainstBase, estimateBits } from "../src/engine/deltacode.ts";
import { lowRankModeFor, probeLowRank, roundToFormat } from "../src/engine/lowrank.ts";
import { WorkerPool } from "../src/engine/pool.ts";
import { makeDelta } from "../src/engine/refs.ts";
import { compress, decompress } from "../src/index.ts";
import { rng } from "../src/tools/gen.ts";
import { safetensorsOf, sha256 } from "./support.ts";

const dir = mkdtempSync(join(tmpdir(), "mmh-delta-speed-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const next = rng(4242);
const normal = () => (next() + next() + next() - 1.5) * 2;

function bytesOf(values: Float32Array, dtype: DTypeName): Buffer {
  if (dtype === "F32") return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  const out = Buffer.alloc(values.length * 2);
  values.forEach((x, i) => {
    out.writeUInt16LE(roundToFormat(x, lowRankModeFor(dtype)!), i * 2);
  });
  return out;
}

/** A rows x cols base matrix, the same with a rank-8 update merged in, and after one step of `step` per weight. */
function matrices(
  rows: number,
  cols: number,
): { base: Float32Array; merged: Float32Array; stepped: Float32Array } {
  const base = Float32Array.from({ length: rows * cols }, () => normal() * 0.05);
  const u = Float32Array.from({ length: rows * 8 }, () => normal() * 0.02);
  const v = Float32Array.from({ length: 8 * cols }, () => normal() * 0.1);
  const merged = new Float32Array(rows * cols);
  const stepped = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++)
    for (let j = 0; j < cols; j++) {
      let s = 0;
      for (let k = 0; k < 8; k++) s += u[i * 8 + k] * v[k * cols + j];
      merged[i * cols + j] = base[i * cols + j] + s;
      stepped[i * cols + j] = base[i * cols + j] + (next() < 0.5 ? -1e-4 : 1e-4);
    }
  return { base, merged, stepped };
}

const size = (c: EncodedChunk) => c.header.length + c.payload.length;

function jobFor(dtype: DTypeName, rows: number, cols: number): DeltaJob {
  return {
    dtype,
    baseSha256: "ab".repeat(32),
    baseOffset: 0,
    pieces: [{ first: 0, rows, cols, matrix: true }],
    goal: "balanced",
    level: undefined,
    fixed: undefined,
  };
}

function plainOf(raw: Uint8Array, dtype: DTypeName): EncodedChunk {
  return encodeChoices(raw, dtype, chooseCodecs(raw, dtype, "balanced", undefined, { choiceMs: 0 })).chunk;
}

describe("deltas against a base: choosing the modes", () => {
  const rows = 256;
  const cols = 256;
  const m = matrices(rows, cols);
  for (const dtype of ["F32", "BF16"] as const)
    for (const which of ["merged", "stepped"] as const)
      test(`${dtype} ${which}: the screened modes code as small as every mode`, () => {
        const raw = bytesOf(m[which], dtype);
        const base = bytesOf(m.base, dtype);
        const job = jobFor(dtype, rows, cols);
        const plain = plainOf(raw, dtype);
        const screened = encodeAgainstBase(raw, base, job, plain);
        const every = encodeAgainstBase(raw, base, job, plain, Number.POSITIVE_INFINITY);
        assert.equal(screened.codec, "DLTA");
        assert.equal(size(screened), size(every));
        assert.ok(Buffer.from(screened.payload).equals(Buffer.from(every.payload)));
        // The low-rank mode (5 or 6) wins on the merged update, and is not what codes a step.
        const mode = screened.header[36];
        if (which === "merged") assert.equal(mode, lowRankModeFor(dtype));
        else assert.notEqual(mode, lowRankModeFor(dtype));
      });

  test("the estimate: more bits for wider differences, none for none", () => {
    const zero = new Uint8Array(4096);
    assert.equal(estimateBits(zero, 4), 0);
    const small = Buffer.alloc(4096);
    const wide = Buffer.alloc(4096);
    for (let i = 0; i < 1024; i++) {
      small.writeUInt32LE(Math.floor(next() * 16), i * 4);
      wide.writeUInt32LE(Math.floor(next() * 65536), i * 4);
    }
    assert.ok(estimateBits(small, 4) < estimateBits(wide, 4) / 2);
    // 16 values of 4 bits: at most 4 bits each, and more than 2.
    assert.ok(estimateBits(small, 4) <= 4 * 1024 + 1e-9 && estimateBits(small, 4) > 2 * 1024);
  });

  test("the quick look at a matrix's rows: a low-rank update yes, a step of noise no", () => {
    for (const dtype of ["F32", "BF16"] as const) {
      const mode = lowRankModeFor(dtype)!;
      const base = bytesOf(m.base, dtype);
      const pieces = [{ first: 0, rows, cols, matrix: true }];
      // The rank-8 update saves most of its differences' bits; the step, nothing.
      const merged = bytesOf(m.merged, dtype);
      const gain = probeLowRank(merged, base, mode, pieces);
      assert.ok(
        gain > 0.5 * estimateBits(makeDelta(merged, base, dtype === "F32" ? 4 : 3), dtype === "F32" ? 4 : 2),
        `${dtype} ${gain}`,
      );
      assert.equal(probeLowRank(bytesOf(m.stepped, dtype), base, mode, pieces), 0, dtype);
      // A piece equal to its base, or no matrix, has nothing to look at.
      assert.equal(probeLowRank(base, base, mode, pieces), 0, dtype);
      assert.equal(
        probeLowRank(merged, base, mode, [{ first: 0, rows: 1, cols: rows * cols, matrix: false }]),
        0,
        dtype,
      );
      // A matrix of few rows is left to the fit.
      assert.equal(
        probeLowRank(merged, base, mode, [{ first: 0, rows: 32, cols, matrix: true }]),
        Number.POSITIVE_INFINITY,
      );
    }
  });
});

describe("deltas against a base: on a pool's workers", () => {
  test("a chunk coded on a worker is the record the calling thread codes", async () => {
    const rows = 128;
    const cols = 192;
    const m = matrices(rows, cols);
    const pool = new WorkerPool(1);
    try {
      for (const dtype of ["F32", "BF16"] as const)
        for (const which of ["merged", "stepped"] as const) {
          const raw = bytesOf(m[which], dtype);
          const base = bytesOf(m.base, dtype);
          const job = jobFor(dtype, rows, cols);
          const choices = chooseCodecs(raw, dtype, "balanced", undefined, { choiceMs: 0 });
          const here = encodeAgainstBase(raw, base, job, encodeChoices(raw, dtype, choices).chunk);
          const input = pool.copyIn(raw);
          const baseSlot = pool.copyIn(base);
          try {
            const there = await pool.encodeDelta(input, 0, raw.length, baseSlot, dtype, choices, job);
            assert.equal(there.codec, here.codec);
            assert.ok(Buffer.from(there.header).equals(Buffer.from(here.header)), `${dtype} ${which}`);
            assert.ok(Buffer.from(there.payload).equals(Buffer.from(here.payload)), `${dtype} ${which}`);
            there.slot.release();
          } finally {
            input.release();
            baseSlot.release();
          }
        }
    } finally {
      await pool.close();
    }
  });

  test("compress() with a base: the same bytes with 1, 2 and 3 threads, and they decode", async () => {
    for (const dtype of ["F32", "BF16"] as const) {
      // Each call to matrices() draws afresh: build both files from one draw.
      // Over 2 MiB of chunks the base holds, so a pool starts (DELTA_POOL_WEIGHT) when it may.
      const a = matrices(384, 256);
      const b = matrices(1024, 768);
      const file = (x: Float32Array, y: Float32Array) =>
        safetensorsOf([
          ["a.weight", dtype, [384, 256], bytesOf(x, dtype)],
          ["b.weight", dtype, [1024, 768], bytesOf(y, dtype)],
        ]);
      const base = file(a.base, b.base);
      const tuned = file(a.merged, b.stepped);
      const basePath = join(dir, `base-${dtype}.safetensors`);
      writeFileSync(basePath, base);
      const outs = [];
      for (const threads of [1, 2, 3])
        outs.push(Buffer.from(await compress(tuned, { threads, base: basePath, chunkSize: 128 << 10 })));
      assert.ok(outs[0].length < tuned.length / 2, `${outs[0].length} of ${tuned.length}`);
      assert.equal(sha256(outs[1]), sha256(outs[0]), `${dtype}: 2 threads`);
      assert.equal(sha256(outs[2]), sha256(outs[0]), `${dtype}: 3 threads`);
      assert.ok(Buffer.from(await decompress(outs[0], { base: basePath })).equals(tuned));
    }
  });
});
