/**
 * Joining small chunks at the ratio goal (src/engine/join.ts): runs of neighbouring small
 * chunks become fewer chunks only where that codes smaller, never past the chunk size,
 * never across a large chunk or a chunk kept apart for deduplication; and a file so
 * planned still decodes whole and tensor by tensor.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import type { DTypeName } from "../src/common/dtype.ts";
import { bufferSource } from "../src/common/source.ts";
import { describeSource, joinsFor } from "../src/engine/describe.ts";
import { encodeContainer, type SourceLayout } from "../src/engine/encoder.ts";
import { joinSmallChunks, SMALL_CHUNK, storedCost } from "../src/engine/join.ts";
import { resolveCompressOptions } from "../src/engine/options.ts";
import type { ChunkSpec } from "../src/engine/plan.ts";
import { compress, decompress, inspect, pack, unpack } from "../src/index.ts";
import { generate } from "../src/tools/index.ts";
import { readTensor, textBytes } from "./support.ts";

const dir = mkdtempSync(join(tmpdir(), "mmh-join-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const RATIO = { goal: "ratio" as const, level: undefined };

/** `length` bytes of F16 weights, N(0, 0.02) from `mmh gen`. */
function f16Weights(length: number, seed: number): Buffer {
  const file = generate({ kind: "safetensors", dtype: "F16", size: length + 4096, seed });
  const start = 8 + Number(file.readBigUInt64LE(0));
  return file.subarray(start, start + length);
}

/** The format's own bytes between two tensors: zero padding and the next one's u32 length. */
function gap(length: number, next: number): Buffer {
  const out = Buffer.alloc(length);
  out.writeUInt32LE(next, length - 4);
  return out;
}

/**
 * A mobile net's layout: a header of structure, then small F16 tensors each followed by a
 * few bytes of the format's own, then a tail of structure. Returns the bytes and the plan
 * the planner would make of it (one chunk per region).
 */
function mobileNet(tensors: number): { bytes: Buffer; plan: ChunkSpec[] } {
  const parts: Buffer[] = [textBytes(3000, 1)];
  const plan: ChunkSpec[] = [{ length: 3000, dtype: null }];
  for (let i = 0; i < tensors; i++) {
    const length = 2048 + 512 * (i % 7);
    parts.push(f16Weights(length, i + 1), gap(48, length));
    plan.push({ length, dtype: "F16" }, { length: 48, dtype: null });
  }
  parts.push(textBytes(5000, 2));
  plan.push({ length: 5000, dtype: null });
  return { bytes: Buffer.concat(parts), plan };
}

/** What a plan costs coded chunk by chunk, as the encoder codes it at the ratio goal. */
function planCost(bytes: Uint8Array, plan: readonly ChunkSpec[]): number {
  let at = 0;
  let total = 0;
  for (const spec of plan) {
    total += storedCost(bytes.subarray(at, at + spec.length), spec.dtype, RATIO);
    at += spec.length;
  }
  return total;
}

const total = (plan: readonly ChunkSpec[]) => plan.reduce((sum, s) => sum + s.length, 0);

describe("joinSmallChunks", () => {
  const { bytes, plan } = mobileNet(24);

  test("joins a mobile net's small chunks into fewer, and the plan codes smaller", async () => {
    const joined = await joinSmallChunks(bufferSource(bytes), plan, 512 << 10, RATIO);
    assert.equal(total(joined), bytes.length);
    assert.ok(joined.length <= plan.length / 4, `${joined.length} chunks of ${plan.length}`);
    // The bytes after each tensor went with the tensors: the F16 chunk holds them.
    assert.ok(joined.some((s) => s.dtype === "F16" && s.length > 24 * 2048));
    const before = planCost(bytes, plan);
    const after = planCost(bytes, joined);
    assert.ok(after < before * 0.98, `joined ${after} bytes, apart ${before}`);
  });

  test("never joins past the chunk size", async () => {
    const chunkSize = 16 << 10;
    const joined = await joinSmallChunks(bufferSource(bytes), plan, chunkSize, RATIO);
    assert.equal(total(joined), bytes.length);
    assert.ok(joined.length < plan.length);
    for (const s of joined) assert.ok(s.length <= chunkSize, `a chunk of ${s.length} bytes`);
  });

  test("keeps large chunks and chunks kept apart as they are", async () => {
    const large = f16Weights(SMALL_CHUNK, 99);
    const mixed = Buffer.concat([bytes, large, bytes]);
    const twice: ChunkSpec[] = [...plan, { length: large.length, dtype: "F16" }, ...plan];
    const keep = new Set([5, plan.length + 6]);
    const joined = await joinSmallChunks(bufferSource(mixed), twice, 512 << 10, RATIO, keep);
    assert.equal(total(joined), mixed.length);
    // Each kept or large chunk is still a chunk of its own, at the same content offset.
    const starts = new Map<number, ChunkSpec>();
    let at = 0;
    for (const s of joined) {
      starts.set(at, s);
      at += s.length;
    }
    for (const k of [5, plan.length, plan.length + 6]) {
      const offset = total(twice.slice(0, k));
      assert.deepEqual(starts.get(offset), twice[k], `chunk ${k} at ${offset}`);
    }
  });

  test("leaves chunks apart when joining them codes no smaller", async () => {
    // Incompressible bytes of unknown type: stored either way; joined they would save only a
    // record, so mixing them with weights is tried and a plan no larger than apart kept.
    const parts = [f16Weights(8192, 7), Buffer.from(textBytes(6000, 3)), f16Weights(8192, 8)];
    const mixed = Buffer.concat(parts);
    const apart: ChunkSpec[] = [
      { length: 8192, dtype: "F16" },
      { length: 6000, dtype: null },
      { length: 8192, dtype: "F16" },
    ];
    const joined = await joinSmallChunks(bufferSource(mixed), apart, 512 << 10, RATIO);
    assert.ok(planCost(mixed, joined) <= planCost(mixed, apart));
  });

  test("only at the ratio goal with auto and no base", () => {
    assert.deepEqual(joinsFor(resolveCompressOptions({ goal: "ratio" })), RATIO);
    assert.equal(joinsFor(resolveCompressOptions({})), undefined);
    assert.equal(joinsFor(resolveCompressOptions({ goal: "speed" })), undefined);
    assert.equal(joinsFor(resolveCompressOptions({ goal: "ratio", codec: "zstd" })), undefined);
    assert.equal(joinsFor(resolveCompressOptions({ goal: "ratio", base: "/nonexistent" })), undefined);
  });
});

describe("the ratio goal on a file of small tensors", () => {
  const fixture = join(import.meta.dirname, "fixtures", "formats", "tflite-mobile.tflite");
  const bytes = readFileSync(fixture);

  async function encoded(layout: SourceLayout): Promise<Buffer> {
    const parts: Uint8Array[] = [];
    async function* source() {
      yield bytes;
    }
    for await (const piece of encodeContainer(source(), { goal: "ratio", threads: 1 }, undefined, layout))
      parts.push(piece);
    return Buffer.concat(parts);
  }

  test("codes fewer chunks, smaller, and every tensor still reads back alone", async () => {
    const apart = await describeSource(bufferSource(bytes), 512 << 10, true, true, true);
    const joined = await describeSource(bufferSource(bytes), 512 << 10, true, true, true, RATIO);
    assert.ok(joined.plan.length < apart.plan.length, `${joined.plan.length} of ${apart.plan.length}`);
    const small = await encoded(apart);
    const smaller = await encoded(joined);
    assert.ok(smaller.length < small.length, `${smaller.length} joined, ${small.length} apart`);
    // compress() plans the same way at the ratio goal.
    const packed = Buffer.from(await compress(bytes, { goal: "ratio" }));
    assert.equal(packed.length, smaller.length);
    assert.ok(Buffer.from(await decompress(packed)).equals(bytes));
    const file = join(dir, "mobile.tflite.mmh");
    writeFileSync(file, packed);
    const info = await inspect(file);
    assert.equal(info.chunks.length, joined.plan.length);
    const tensors = joined.recognised.tensors;
    assert.ok(tensors.length > 0);
    for (const t of tensors) {
      const { data } = await readTensor(file, t.name);
      assert.ok(Buffer.from(data).equals(bytes.subarray(t.offset, t.offset + t.length)), t.name);
    }
  });

  test("a folder packed at the ratio goal joins each file's small chunks, and unpacks", async () => {
    const folder = join(dir, "models");
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, "a.tflite"), bytes);
    writeFileSync(join(folder, "b.tflite"), Buffer.from(bytes).reverse());
    const plain = await pack(folder, join(dir, "plain.mmh"), { overwrite: true, threads: 1 });
    const joined = await pack(folder, join(dir, "joined.mmh"), {
      overwrite: true,
      threads: 1,
      goal: "ratio",
    });
    assert.ok(joined.chunks < plain.chunks, `${joined.chunks} chunks at ratio, ${plain.chunks} by default`);
    const out = join(dir, "unpacked");
    await unpack(join(dir, "joined.mmh"), out);
    assert.ok(readFileSync(join(out, "a.tflite")).equals(bytes));
    assert.ok(readFileSync(join(out, "b.tflite")).equals(Buffer.from(bytes).reverse()));
  });

  test("the default goal plans as before", async () => {
    const opts = resolveCompressOptions({});
    const plain = await describeSource(bufferSource(bytes), opts.chunkSize, true, true, true);
    const asDefault = await describeSource(
      bufferSource(bytes),
      opts.chunkSize,
      true,
      true,
      true,
      joinsFor(opts),
    );
    assert.deepEqual(asDefault.plan, plain.plan);
    const dtypes = new Set<DTypeName | null>(plain.plan.map((s) => s.dtype));
    assert.ok(dtypes.size > 1);
  });
});
