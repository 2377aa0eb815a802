/**
 * HIER's layouts for ggml quantisation blocks (FORMAT.md §6.2, layouts 7-17): each field
 * of a block is a stream of its own, GGUF tensors of those types are typed regions, and
 * their chunks are cut on whole blocks.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { crc32 } from "node:zlib";
import { hierCodec } from "../src/codecs/hier/hier.ts";
import { layoutForDType } from "../src/codecs/hier/layouts.ts";
import { type BlockDTypeName, cutUnit, dtypeByName } from "../src/common/dtype.ts";
import { fileSource } from "../src/common/source.ts";
import { CHUNK_HEADER_SIZE } from "../src/container/format.ts";
import { planChunks } from "../src/engine/plan.ts";
import { MmhReader } from "../src/engine/reader.ts";
import { compressFile, decompress } from "../src/index.ts";
import { gaussian, rng } from "../src/tools/gen.ts";
import { readTensor } from "./support.ts";
import { writeGguf } from "./support-gguf.ts";

const BLOCKS: { dtype: BlockDTypeName; ggml: number; weights: number; bytes: number; layout: number }[] = [
  { dtype: "Q4_0", ggml: 2, weights: 32, bytes: 18, layout: 7 },
  { dtype: "Q4_1", ggml: 3, weights: 32, bytes: 20, layout: 8 },
  { dtype: "Q5_0", ggml: 6, weights: 32, bytes: 22, layout: 9 },
  { dtype: "Q5_1", ggml: 7, weights: 32, bytes: 24, layout: 10 },
  { dtype: "Q8_0", ggml: 8, weights: 32, bytes: 34, layout: 11 },
  { dtype: "Q8_1", ggml: 9, weights: 32, bytes: 36, layout: 12 },
  { dtype: "Q2_K", ggml: 10, weights: 256, bytes: 84, layout: 13 },
  { dtype: "Q3_K", ggml: 11, weights: 256, bytes: 110, layout: 14 },
  { dtype: "Q4_K", ggml: 12, weights: 256, bytes: 144, layout: 15 },
  { dtype: "Q5_K", ggml: 13, weights: 256, bytes: 176, layout: 16 },
  { dtype: "Q6_K", ggml: 14, weights: 256, bytes: 210, layout: 17 },
  { dtype: "IQ4_NL", ggml: 20, weights: 32, bytes: 18, layout: 7 },
];

/**
 * Blocks shaped like ggml's: each f16 slot (HALVES) holds a positive f16 near 0.01 (its
 * high byte takes a few values); every other field holds bytes from a peaked distribution
 * of its own (scales and quants differ), so that coding the fields apart pays and a layout
 * whose fields were misplaced would not.
 */
function quantBlocks(count: number, dtype: BlockDTypeName, seed: number): Buffer {
  const layout = layoutForDType(dtype);
  const normal = gaussian(rng(seed));
  const bytes = layout.width;
  const halves = new Set(HALVES[dtype]);
  const centre = new Uint8Array(bytes);
  let at = 0;
  for (const [k, length] of (layout.perElement ?? []).entries()) {
    centre.fill(40 + ((k * 67) % 180), at, at + length);
    at += length;
  }
  const out = Buffer.alloc(count * bytes);
  for (let b = 0; b < count; b++) {
    for (let i = 0; i < bytes; i++) {
      const pos = b * bytes + i;
      if (halves.has(i)) {
        // An f16 of magnitude 2^-7 .. 2^-6: exponent bits 0x20..0x24 in the high byte.
        out.writeUInt16LE(
          (0x2000 + Math.floor(Math.abs(normal()) * 0x600) + ((b * 7919) & 0xff)) & 0x7fff,
          pos,
        );
        i++;
      } else out[pos] = Math.max(0, Math.min(255, Math.round(centre[i] + 12 * normal())));
    }
  }
  return out;
}

/** The f16 fields of each block type (offsets of their low bytes). */
const HALVES: Record<string, number[]> = {
  Q4_0: [0],
  Q4_1: [0, 2],
  Q5_0: [0],
  Q5_1: [0, 2],
  Q8_0: [0],
  Q8_1: [0, 2],
  Q2_K: [80, 82],
  Q3_K: [108],
  Q4_K: [0, 2],
  Q5_K: [0, 2],
  Q6_K: [208],
  IQ4_NL: [0],
};

describe("block layouts", () => {
  test("every block DType has its layout, with fields that tile the block", () => {
    for (const b of BLOCKS) {
      const dtype = dtypeByName(b.dtype);
      assert.equal(dtype?.kind, "block");
      assert.equal(dtype?.bits, b.bytes * 8);
      assert.equal(dtype?.blockElements, b.weights);
      const layout = layoutForDType(b.dtype);
      assert.equal(layout.id, b.layout, b.dtype);
      assert.equal(layout.width, b.bytes);
      assert.equal(
        layout.perElement?.reduce((x, y) => x + y, 0),
        b.bytes,
      );
      assert.equal(layout.declaredOnly, true);
    }
  });

  test("cutUnit: 8 for plain types, lcm(8, block bytes) for blocks", () => {
    assert.equal(cutUnit(null), 8);
    assert.equal(cutUnit("BF16"), 8);
    assert.equal(cutUnit("F64"), 8);
    assert.equal(cutUnit("Q4_0"), 72);
    assert.equal(cutUnit("Q8_0"), 136);
    assert.equal(cutUnit("Q4_K"), 144);
    assert.equal(cutUnit("Q6_K"), 840);
  });

  test("planChunks cuts a block tensor on whole blocks", () => {
    const plan = planChunks(
      [
        { name: "a", offset: 0, length: 210 * 1000, dtype: "Q6_K", kind: "tensor" },
        { name: "b", offset: 210 * 1000, length: 144 * 77, dtype: "Q4_K", kind: "tensor" },
      ],
      65536,
    );
    for (const c of plan.slice(0, -1)) {
      const width = c.dtype === "Q6_K" ? 210 : 144;
      assert.equal(c.length % width, 0, `${c.dtype} chunk of ${c.length} bytes`);
      assert.ok(c.length <= 65536);
    }
    assert.equal(
      plan.reduce((s, c) => s + c.length, 0),
      210 * 1000 + 144 * 77,
    );
  });

  for (const b of BLOCKS) {
    test(`${b.dtype}: HIER codes each field apart, round trip, smaller than one byte stream`, () => {
      for (const tail of [0, 5]) {
        const data = Buffer.concat([quantBlocks(1500, b.dtype, b.ggml), Buffer.alloc(tail, 7)]);
        const encoded = hierCodec.encode(data, { dtype: b.dtype, level: 3 });
        const payload = encoded.payload;
        assert.equal(payload[1], b.layout, "layout id");
        assert.equal(payload[2], 0, "no head");
        assert.equal(payload[3], layoutForDType(b.dtype).streams, "stream count");
        const decoded = hierCodec.decode(payload, new Uint8Array(0), data.length);
        assert.ok(Buffer.from(decoded).equals(data), "round trip");
        // The same bytes as one stream (the bytes layout an 8-bit type gets).
        const flat = hierCodec.encode(data, { dtype: "U8", level: 3 }).payload;
        assert.ok(
          payload.length < flat.length * 0.97,
          `${b.dtype}: ${payload.length} bytes against ${flat.length} as one stream`,
        );
      }
    });
  }

  test("a damaged block stream length is refused", () => {
    const data = quantBlocks(200, "Q4_K", 3);
    const payload = Buffer.from(hierCodec.encode(data, { dtype: "Q4_K" }).payload);
    // Decoded as if the chunk held one block fewer: every stream is then too long.
    assert.throws(
      () => hierCodec.decode(payload, new Uint8Array(0), data.length - 144),
      (error: { code?: string }) => error.code === "E_CORRUPT",
    );
  });

  test("an unknown layout id in an intact header is E_UNSUPPORTED; a damaged one E_CHECKSUM", () => {
    const data = quantBlocks(20, "Q4_K", 5);
    const payload = Buffer.from(hierCodec.encode(data, { dtype: "Q4_K" }).payload);
    const decode = (bytes: Uint8Array) => () => hierCodec.decode(bytes, new Uint8Array(0), data.length);
    const damaged = Buffer.from(payload);
    damaged[1] = 18; // the first id no reader knows yet
    assert.throws(decode(damaged), (error: { code?: string }) => error.code === "E_CHECKSUM");
    const count = damaged[3];
    damaged.writeUInt32LE(crc32(damaged.subarray(8, 8 + 5 * count), crc32(damaged.subarray(0, 4))), 4);
    assert.throws(decode(damaged), (error: { code?: string }) => error.code === "E_UNSUPPORTED");
  });
});

describe("GGUF block tensors through the public API", () => {
  const dir = mkdtempSync(join(tmpdir(), "mmh-blocks-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("typed regions, chunks on whole blocks, HIER block layouts, readTensor", async () => {
    const q4k = quantBlocks(40 * 16, "Q4_K", 21); // 40 rows of 4096 weights
    const q6k = quantBlocks(24 * 16, "Q6_K", 22);
    const q8 = quantBlocks(64 * 8, "Q8_0", 23); // 64 rows of 256 weights
    const file = writeGguf({
      tensors: [
        { name: "blk.0.ffn_up.weight", dims: [4096, 40], type: { id: 12, block: 256, size: 144 }, data: q4k },
        { name: "output.weight", dims: [4096, 24], type: { id: 14, block: 256, size: 210 }, data: q6k },
        { name: "blk.0.attn_k.weight", dims: [256, 64], type: { id: 8, block: 32, size: 34 }, data: q8 },
      ],
    });
    const source = join(dir, "model.gguf");
    writeFileSync(source, file.bytes);
    await compressFile(source, `${source}.mmh`, { chunkSize: 16384 });
    assert.ok(Buffer.from(await decompress(readFileSync(`${source}.mmh`))).equals(file.bytes));
    const reader = await MmhReader.open(await fileSource(`${source}.mmh`));
    try {
      const mmh = readFileSync(`${source}.mmh`);
      const widths: [number, number, number, number][] = file.tensors.map((t, i) => [
        t.offset,
        t.length,
        [144, 210, 34][i],
        [15, 17, 11][i],
      ]);
      let hier = 0;
      for (const c of reader.chunks) {
        const holder = widths.find(
          ([offset, length]) => c.rawOffset >= offset && c.rawOffset < offset + length,
        );
        if (!holder) continue;
        const [offset, length, width, layout] = holder;
        assert.equal((c.rawOffset - offset) % width, 0, "a chunk starts on a block");
        assert.ok(c.rawOffset + c.rawLength <= offset + length, "a chunk stays in its tensor");
        if (c.codec === "HIER") {
          assert.equal(mmh[c.recordOffset + CHUNK_HEADER_SIZE + 1], layout, "the block layout");
          hier++;
        }
      }
      assert.ok(hier >= 3, `${hier} HIER chunks`);
    } finally {
      await reader.close();
    }
    const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
    for (const t of file.tensors) {
      const { tensor, data } = await readTensor(`${source}.mmh`, t.name);
      assert.equal(sha(data), sha(file.bytes.subarray(t.offset, t.offset + t.length)), t.name);
      assert.ok(["Q4_K", "Q6_K", "Q8_0"].includes(tensor.dtype));
    }
  });
});
