import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ErrorCode } from "../src/common/errors.ts";
import { GGML_TYPES } from "../src/formats/gguf.ts";
import {
  assertTiling,
  decode,
  quickly,
  recogniseBytes,
  regionNamed,
  tensorNamed,
} from "./formats-support.ts";
import { rejectsWith } from "./support.ts";
import { ByteWriter, GGML, type GgufValue, sampleGguf, writeGguf } from "./support-gguf.ts";

async function refuse(bytes: Buffer, code: ErrorCode, message: RegExp): Promise<void> {
  const error = await quickly(() => rejectsWith(recogniseBytes(bytes), code));
  assert.match(error.message, message);
}

/** The fixed header: magic, version, tensor count, kv count. */
function head(version: number, tensors: number | bigint, kvs: number | bigint): ByteWriter {
  return new ByteWriter().raw(Buffer.from("GGUF", "latin1")).u32(version).u64(tensors).u64(kvs);
}

/** A file with one KV pair of the given raw value bytes, and no tensors. */
function oneKv(key: string, type: number, value: (w: ByteWriter) => void, tail = 64): Buffer {
  const w = head(3, 0, 1).str(key).u32(type);
  value(w);
  return w.raw(Buffer.alloc(tail)).bytes();
}

describe("gguf: files from the test writer", () => {
  for (const version of [2, 3]) {
    test(`v${version}: tensors, dtypes, shapes, offsets and values`, async () => {
      const file = sampleGguf(version);
      const result = await recogniseBytes(file.bytes);
      assert.equal(result.format, "gguf");
      assertTiling(result, file.bytes.length);
      assert.deepEqual(
        result.tensors.map((t) => [t.name, t.dtype, t.shape, t.offset, t.length]),
        [
          ["token_embd.weight", "F32", [4, 8], file.tensors[0].offset, 128],
          ["blk.0.attn_norm.weight", "F16", [8], file.tensors[1].offset, 16],
          ["blk.0.attn_q.weight", "Q4_0", [2, 64], file.tensors[2].offset, 72],
          ["blk.0.ffn_down.weight", "Q8_0", [3, 32], file.tensors[3].offset, 102],
          ["output.weight", "BF16", [2, 8], file.tensors[4].offset, 32],
        ],
      );
      for (const t of file.tensors) assert.equal(tensorNamed(result, t.name).length, t.length);
      const embd = regionNamed(result, "token_embd.weight");
      assert.equal(embd.dtype, "F32");
      assert.deepEqual(embd.shape, [4, 8]);
      assert.deepEqual(
        decode(file.bytes.subarray(embd.offset, embd.offset + 16), "F32", 4),
        [0, 0.5, 1, 1.5],
      );
      // Quantisation blocks HIER has a layout for are DTypes whose element is one block.
      const q4 = regionNamed(result, "blk.0.attn_q.weight");
      assert.equal(q4.kind, "tensor");
      assert.equal(q4.dtype, "Q4_0");
      assert.deepEqual(q4.shape, [2, 64]);
      assert.equal(regionNamed(result, "blk.0.ffn_down.weight").dtype, "Q8_0");
      assert.deepEqual(result.regions[0], {
        name: "gguf header",
        offset: 0,
        length: file.dataOffset,
        dtype: null,
        kind: "raw",
      });
      assert.equal(file.dataOffset % 32, 0);
      const md = result.metadata as Record<string, unknown>;
      assert.equal(md.version, version);
      assert.equal(md.tensorCount, 5);
      assert.equal(md.kvCount, 8);
      assert.equal(md.alignment, 32);
      assert.equal(md.architecture, "llama");
      assert.equal(md.name, "tiny test model");
      const kv = md.kv as Record<string, unknown>;
      assert.equal(kv["llama.context_length"], 2048);
      assert.equal(kv["llama.use_parallel_residual"], true);
      assert.ok(Math.abs((kv["llama.attention.layer_norm_rms_epsilon"] as number) - 1e-5) < 1e-9);
      assert.deepEqual(kv["tokenizer.ggml.tokens"], { array: "string", length: 4 });
      // The padding between tensors is raw.
      assert.ok(result.regions.some((r) => r.name === "padding"));
    });
  }

  test("general.alignment moves the data section and the tensor offsets", async () => {
    const file = sampleGguf(3, 256);
    const result = await recogniseBytes(file.bytes);
    assertTiling(result, file.bytes.length);
    assert.equal(result.metadata?.alignment, 256);
    assert.equal(file.dataOffset % 256, 0);
    for (const t of result.tensors) assert.equal((t.offset - file.dataOffset) % 256, 0);
  });

  test("every ggml type in the table gets elements / block × bytes", async () => {
    for (const [id, type] of GGML_TYPES) {
      const spec = { id, block: type.blockSize, size: type.typeSize };
      const file = writeGguf({ tensors: [{ name: "t", dims: [type.blockSize * 2, 3], type: spec }] });
      const result = await recogniseBytes(file.bytes);
      assertTiling(result, file.bytes.length);
      const t = tensorNamed(result, "t");
      assert.equal(t.length, 6 * type.typeSize, type.name);
      assert.equal(t.dtype, type.dtype ?? type.name);
      const region = regionNamed(result, "t");
      assert.equal(region.dtype, type.dtype ?? null);
      if (!type.dtype) assert.equal(region.note, type.name);
    }
  });

  test("a file with no tensors needs no padding", async () => {
    const w = head(3, 0, 1).str("general.architecture").u32(8).str("x");
    const result = await recogniseBytes(w.bytes());
    assert.equal(result.format, "gguf");
    assert.deepEqual(result.tensors, []);
    assertTiling(result, w.length);
  });

  test("a large vocabulary is walked quickly and not copied", async () => {
    const tokens: GgufValue[] = Array.from({ length: 50_000 }, (_, i) => ({ t: "string", v: `tok${i}` }));
    const kv: [string, GgufValue][] = [
      ["tokenizer.ggml.tokens", { t: "array", of: "string", items: tokens }],
    ];
    for (let i = 0; i < 2000; i++) kv.push([`custom.key${i}`, { t: "string", v: "v".repeat(200) }]);
    const file = writeGguf({ kv, tensors: [{ name: "w", dims: [4], type: GGML.F32 }] });
    const result = await quickly(() => recogniseBytes(file.bytes));
    assert.ok(JSON.stringify(result.metadata).length < 64 * 1024);
    const kept = result.metadata?.kv as Record<string, unknown>;
    assert.deepEqual(kept["tokenizer.ggml.tokens"], {
      array: "string",
      length: 50_000,
    });
  });

  test("every truncation is E_TRUNCATED (raw below the magic)", async () => {
    const { bytes } = sampleGguf(3);
    for (let cut = 0; cut < bytes.length; cut++) {
      const part = bytes.subarray(0, cut);
      if (cut < 4) assert.equal((await recogniseBytes(part)).format, "raw");
      else await rejectsWith(recogniseBytes(part), "E_TRUNCATED", `cut ${cut}: `);
    }
  });
});

describe("gguf: hostile headers", () => {
  test("versions", async () => {
    await refuse(head(1, 0, 0).bytes(), "E_UNSUPPORTED", /version 1 is not supported/);
    await refuse(head(4, 0, 0).bytes(), "E_UNSUPPORTED", /version 4 is not supported/);
    await refuse(head(0x03000000, 0, 0).bytes(), "E_UNSUPPORTED", /big-endian/);
  });

  test("huge tensor and kv counts", async () => {
    await refuse(head(3, 2n ** 40n, 0).bytes(), "E_TRUNCATED", /tensor infos/);
    await refuse(head(3, 0, 2n ** 64n - 1n).bytes(), "E_TRUNCATED", /metadata pairs/);
    await refuse(head(3, 2n ** 64n - 1n, 2n ** 64n - 1n).bytes(), "E_TRUNCATED", /runs past the end/);
  });

  test("huge string lengths", async () => {
    await refuse(
      head(3, 0, 1)
        .u64(2n ** 63n)
        .raw(Buffer.alloc(64))
        .bytes(),
      "E_TRUNCATED",
      /metadata key 0/,
    );
    await refuse(
      oneKv("k", 8, (w) => w.u64(2n ** 64n - 1n)),
      "E_TRUNCATED",
      /runs past the end/,
    );
    await refuse(
      oneKv("k", 8, (w) => w.u64(1000)),
      "E_TRUNCATED",
      /runs past the end/,
    );
    const name = head(3, 1, 0)
      .u64(2n ** 50n)
      .raw(Buffer.alloc(64))
      .bytes();
    await refuse(name, "E_TRUNCATED", /tensor 0 name/);
  });

  test("huge arrays are checked before they are walked", async () => {
    await refuse(
      oneKv("a", 9, (w) => w.u32(10).u64(2n ** 62n)),
      "E_TRUNCATED",
      /array of/,
    );
    await refuse(
      oneKv("a", 9, (w) => w.u32(8).u64(2n ** 60n)),
      "E_TRUNCATED",
      /strings/,
    );
    await refuse(
      oneKv("a", 9, (w) => w.u32(9).u64(2n ** 60n)),
      "E_TRUNCATED",
      /arrays/,
    );
  });

  test("nested arrays: 8 levels are fine, 9 are E_LIMIT", async () => {
    const nest = (depth: number): GgufValue =>
      depth === 1
        ? { t: "array", of: "u8", items: [{ t: "u8", v: 1 }] }
        : { t: "array", of: "array", items: [nest(depth - 1)] };
    const ok = writeGguf({ kv: [["n", nest(8)]], tensors: [] });
    assert.equal((await recogniseBytes(ok.bytes)).format, "gguf");
    await refuse(writeGguf({ kv: [["n", nest(9)]], tensors: [] }).bytes, "E_LIMIT", /deeper than 8/);
    // Deep nesting of empty arrays with a huge claimed depth is stopped just the same.
    const w = head(3, 0, 1).str("n").u32(9);
    for (let i = 0; i < 1000; i++) w.u32(9).u64(1);
    await refuse(w.bytes(), "E_LIMIT", /deeper than 8/);
  });

  test("value types, bools, duplicate keys, bad keys", async () => {
    await refuse(
      oneKv("k", 13, () => {}),
      "E_CORRUPT",
      /unknown value type 13/,
    );
    await refuse(
      oneKv("k", 9, (w) => w.u32(77).u64(1)),
      "E_CORRUPT",
      /array of unknown value type 77/,
    );
    await refuse(
      oneKv("k", 7, (w) => w.u8(2)),
      "E_CORRUPT",
      /bool of value 2/,
    );
    const dup = head(3, 0, 2).str("a").u32(0).u8(1).str("a").u32(0).u8(2).bytes();
    await refuse(dup, "E_CORRUPT", /duplicate metadata key/);
    const badKey = head(3, 0, 1)
      .str(Buffer.from([0xc3, 0x28]))
      .u32(0)
      .u8(1)
      .bytes();
    await refuse(badKey, "E_CORRUPT", /not valid UTF-8/);
    await refuse(
      oneKv("s", 8, (w) => w.str(Buffer.from([0xff]))),
      "E_CORRUPT",
      /not valid UTF-8/,
    );
  });

  test("general.alignment", async () => {
    await refuse(
      oneKv("general.alignment", 10, (w) => w.u64(32)),
      "E_CORRUPT",
      /not a u32/,
    );
    await refuse(
      oneKv("general.alignment", 4, (w) => w.u32(0)),
      "E_CORRUPT",
      /not a power of two/,
    );
    await refuse(
      oneKv("general.alignment", 4, (w) => w.u32(48)),
      "E_CORRUPT",
      /not a power of two/,
    );
  });

  test("tensor infos", async () => {
    const t = (name: string | Buffer, dims: (number | bigint)[], type: number, offset: number | bigint) => {
      const w = head(3, 1, 0).str(name).u32(dims.length);
      for (const d of dims) w.u64(d);
      return w.u32(type).u64(offset).pad(32).raw(Buffer.alloc(256)).bytes();
    };
    await refuse(t("x", [1, 1, 1, 1, 1, 1, 1, 1, 1], 0, 0), "E_CORRUPT", /9 dimensions/);
    await refuse(t("x", [2n ** 60n], 0, 0), "E_CORRUPT", /dimension .* overflows/);
    await refuse(t("x", [2n ** 40n, 2n ** 40n], 0, 0), "E_CORRUPT", /element count overflows/);
    await refuse(t("x", [4], 0, 2n ** 60n), "E_CORRUPT", /offset overflows/);
    await refuse(t("x", [4], 0, 8), "E_CORRUPT", /not a multiple of the alignment/);
    await refuse(t("x", [4], 0, 1024), "E_TRUNCATED", /past the end of the file/);
    await refuse(t("x", [33], 2, 0), "E_CORRUPT", /not a multiple of 32/);
    await refuse(t("x", [1000], 0, 0), "E_TRUNCATED", /runs past the end of the file/);
    await refuse(t(Buffer.from([0xfe]), [4], 0, 0), "E_CORRUPT", /not valid UTF-8/);
    await refuse(t("x".repeat(2000), [4], 0, 0), "E_CORRUPT", /over 1024/);
  });

  test("overlapping and duplicate tensors", async () => {
    const overlap = writeGguf({
      tensors: [
        { name: "a", dims: [16], type: GGML.F32 },
        { name: "b", dims: [16], type: GGML.F32, offset: 32 },
      ],
    });
    await refuse(overlap.bytes, "E_CORRUPT", /overlaps/);
    const dup = writeGguf({
      tensors: [
        { name: "a", dims: [4], type: GGML.F32 },
        { name: "a", dims: [4], type: GGML.F32 },
      ],
    });
    await refuse(dup.bytes, "E_CORRUPT", /duplicate tensor name/);
  });

  test("unknown ggml types are bounded by the next tensor, or the end of the file", async () => {
    const unknown = { id: 99, block: 1, size: 3 };
    const file = writeGguf({
      tensors: [
        { name: "odd", dims: [10], type: unknown },
        { name: "w", dims: [8], type: GGML.F32 },
        { name: "last", dims: [5], type: { id: 1234, block: 1, size: 1 } },
      ],
    });
    const result = await recogniseBytes(file.bytes);
    assertTiling(result, file.bytes.length);
    const odd = regionNamed(result, "odd");
    assert.equal(odd.note, "ggml type 99");
    assert.equal(odd.offset, file.tensors[0].offset);
    assert.equal(odd.length, file.tensors[1].offset - file.tensors[0].offset);
    assert.equal(tensorNamed(result, "odd").dtype, "ggml type 99");
    const last = regionNamed(result, "last");
    assert.equal(last.note, "ggml type 1234");
    assert.equal(last.offset + last.length, file.bytes.length);
    // Two tensors at one offset, the first of unknown size: it cannot be bounded.
    const same = writeGguf({
      tensors: [
        { name: "odd", dims: [10], type: unknown },
        { name: "w", dims: [8], type: GGML.F32, offset: 0 },
      ],
    });
    await refuse(same.bytes, "E_CORRUPT", /cannot be bounded/);
  });

  test("the caller's header cap", async () => {
    const { bytes } = sampleGguf(3);
    const error = await rejectsWith(recogniseBytes(bytes, { maxHeaderBytes: 100 }), "E_LIMIT");
    assert.match(error.message, /limit of 100 bytes/);
  });
});
