import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ErrorCode } from "../src/common/errors.ts";
import { bufferSource } from "../src/common/source.ts";
import { recogniseSafetensors } from "../src/formats/safetensors.ts";
import {
  assertTiling,
  decode,
  expected,
  fixture,
  quickly,
  recogniseBytes,
  regionNamed,
  tensorNamed,
} from "./formats-support.ts";
import { rejectsWith } from "./support.ts";

/** 8-byte length, header (object → JSON, string or bytes as given), then data. */
function file(header: unknown, data: Uint8Array = Buffer.alloc(0), declared?: bigint): Buffer {
  const text =
    header instanceof Uint8Array
      ? Buffer.from(header)
      : Buffer.from(typeof header === "string" ? header : JSON.stringify(header), "utf8");
  const n = Buffer.alloc(8);
  n.writeBigUInt64LE(declared ?? BigInt(text.length));
  return Buffer.concat([n, text, data]);
}

function st(entries: Record<string, unknown>, data = 0): Buffer {
  return file(entries, Buffer.alloc(data));
}

async function refuse(bytes: Buffer, code: ErrorCode, message: RegExp): Promise<void> {
  const error = await quickly(() => rejectsWith(recogniseSafetensors(bufferSource(bytes)), code));
  assert.match(error.message, message);
}

describe("safetensors: the fixture", () => {
  const bytes = fixture("model.safetensors");
  const want = expected.files["model.safetensors"];

  test("names, dtypes, shapes and offsets", async () => {
    const result = await recogniseBytes(bytes);
    assert.equal(result.format, "safetensors");
    assertTiling(result, bytes.length);
    assert.deepEqual(result.tensors.map((t) => t.name).sort(), Object.keys(want).sort());
    for (const [name, info] of Object.entries(want) as [string, { dtype: string; shape: number[] }][]) {
      const t = tensorNamed(result, name);
      assert.equal(t.dtype, info.dtype, name);
      assert.deepEqual(t.shape, info.shape, name);
    }
    const n = Number(bytes.readBigUInt64LE(0));
    assert.deepEqual(result.regions[0], {
      name: "safetensors header",
      offset: 0,
      length: 8 + n,
      dtype: null,
      kind: "raw",
    });
    assert.deepEqual(result.metadata, {
      headerLength: n,
      tensorCount: 8,
      metadata: { format: "pt", note: "mmh fixture" },
    });
    // The empty tensor has an entry but no region.
    assert.equal(tensorNamed(result, "empty").length, 0);
    assert.ok(!result.regions.some((r) => r.name === "empty"));
  });

  test("tensor regions hold the values that were written", async () => {
    const result = await recogniseBytes(bytes);
    const at = (name: string) => {
      const r = regionNamed(result, name);
      return bytes.subarray(r.offset, r.offset + r.length);
    };
    assert.deepEqual(
      decode(at("embed.weight"), "F32", 12),
      Array.from({ length: 12 }, (_, i) => (i - 6) / 4),
    );
    assert.deepEqual(decode(at("norm.weight"), "F16", 5), [0, 0.5, 1, 1.5, 2]);
    assert.deepEqual(decode(at("lm_head.weight"), "BF16", 4), [1, -2, 0.5, 3]);
    assert.deepEqual(decode(at("position_ids"), "I64", 3), [0, 1, 2]);
    assert.deepEqual(decode(at("mask"), "BOOL", 3), [true, false, true]);
    assert.deepEqual([...at("scales")], [0x38, 0x40, 0xb8, 0x00]);
    assert.deepEqual(regionNamed(result, "packed").shape, [2, 3]);
    assert.equal(regionNamed(result, "packed").length, 3);
  });

  test("every truncation is E_TRUNCATED (or raw when too short to sniff)", async () => {
    for (let cut = 0; cut < bytes.length; cut++) {
      const part = bytes.subarray(0, cut);
      await rejectsWith(recogniseSafetensors(bufferSource(part)), "E_TRUNCATED", `cut ${cut}: `);
      if (cut < 10) assert.equal((await recogniseBytes(part)).format, "raw");
      else await rejectsWith(recogniseBytes(part), "E_TRUNCATED", `cut ${cut}: `);
    }
  });
});

describe("safetensors: every dtype of the spec", () => {
  const dtypes: [string, number][] = [
    ["F64", 64],
    ["F32", 32],
    ["F16", 16],
    ["BF16", 16],
    ["I64", 64],
    ["I32", 32],
    ["I16", 16],
    ["I8", 8],
    ["U64", 64],
    ["U32", 32],
    ["U16", 16],
    ["U8", 8],
    ["BOOL", 8],
    ["F8_E4M3", 8],
    ["F8_E5M2", 8],
    ["F8_E8M0", 8],
    ["F6_E2M3", 6],
    ["F6_E3M2", 6],
    ["F4", 4],
    ["C64", 64],
  ];

  test("each is accepted with its bit width (4 elements × bits / 8 bytes)", async () => {
    for (const [dtype, bits] of dtypes) {
      const length = (4 * bits) / 8;
      const bytes = st({ t: { dtype, shape: [2, 2], data_offsets: [0, length] } }, length);
      const result = await recogniseBytes(bytes);
      assertTiling(result, bytes.length);
      assert.equal(result.regions[1].dtype, dtype);
      assert.equal(result.regions[1].length, length);
    }
  });

  test("names outside the spec are E_UNSUPPORTED (I4 and U4 are not in it)", async () => {
    for (const dtype of ["I4", "U4", "F128", "f32", "Q4_0", ""]) {
      await refuse(
        st({ t: { dtype, shape: [2], data_offsets: [0, 1] } }, 1),
        "E_UNSUPPORTED",
        /unknown dtype/,
      );
    }
  });
});

describe("safetensors: each validation step, in order", () => {
  test("1. shorter than the length field", async () => {
    await refuse(Buffer.alloc(7), "E_TRUNCATED", /shorter than the 8-byte header length/);
  });

  test("2. header length over 100 MB, or over the caller's cap", async () => {
    await refuse(file("{}", undefined, 100_000_001n), "E_LIMIT", /over the limit of 100000000/);
    await refuse(file("{}", undefined, 0xffff_ffff_ffff_ffffn), "E_LIMIT", /over the limit/);
    const ok = st({});
    const error = await rejectsWith(recogniseSafetensors(bufferSource(ok), { maxHeaderBytes: 1 }), "E_LIMIT");
    assert.match(error.message, /over the limit of 1 bytes/);
    // Through the dispatcher too, and quickly: no allocation from the declared size.
    await quickly(() => rejectsWith(recogniseBytes(file("{}", undefined, 99_999_999n)), "E_TRUNCATED"));
  });

  test("3. header longer than the file", async () => {
    await refuse(file("{}", undefined, 50n), "E_TRUNCATED", /header of 50 bytes runs past the end/);
  });

  test("4. invalid UTF-8", async () => {
    await refuse(file(Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d])), "E_CORRUPT", /not valid UTF-8/);
    // A lone surrogate encoded in UTF-8 (CESU) is invalid too.
    await refuse(file(Buffer.from([0x7b, 0xed, 0xa0, 0x80, 0x7d])), "E_CORRUPT", /not valid UTF-8/);
  });

  test("5. not JSON, or not an object", async () => {
    await refuse(file('{"a": '), "E_CORRUPT", /not valid JSON/);
    await refuse(file("{}}"), "E_CORRUPT", /not valid JSON/);
    await refuse(file("[1, 2]"), "E_CORRUPT", /not a JSON object/);
    await refuse(file("null"), "E_CORRUPT", /not a JSON object/);
    await refuse(file('"x"'), "E_CORRUPT", /not a JSON object/);
  });

  test("6. __metadata__ must map strings to strings", async () => {
    await refuse(file({ __metadata__: [1] }), "E_CORRUPT", /__metadata__ is not an object/);
    await refuse(file({ __metadata__: "x" }), "E_CORRUPT", /__metadata__ is not an object/);
    await refuse(
      file({ __metadata__: { a: 1 } }),
      "E_CORRUPT",
      /__metadata__ has a value that is not a string/,
    );
    await refuse(file({ __metadata__: { a: { b: "c" } } }), "E_CORRUPT", /not a string/);
    const result = await recogniseBytes(file({ __metadata__: { format: "pt" } }));
    assert.deepEqual(result.metadata?.metadata, { format: "pt" });
  });

  test("7. each entry: object, dtype, shape, data_offsets", async () => {
    await refuse(st({ t: 5 }), "E_CORRUPT", /entry "t" is not an object/);
    await refuse(st({ t: [] }), "E_CORRUPT", /entry "t" is not an object/);
    await refuse(st({ t: { shape: [], data_offsets: [0, 0] } }), "E_CORRUPT", /has no dtype string/);
    await refuse(
      st({ t: { dtype: 4, shape: [], data_offsets: [0, 0] } }),
      "E_CORRUPT",
      /has no dtype string/,
    );
    await refuse(st({ t: { dtype: "F32", data_offsets: [0, 0] } }), "E_CORRUPT", /has no shape array/);
    await refuse(
      st({ t: { dtype: "F32", shape: [-1], data_offsets: [0, 0] } }),
      "E_CORRUPT",
      /not a non-negative integer/,
    );
    await refuse(
      st({ t: { dtype: "F32", shape: [1.5], data_offsets: [0, 0] } }),
      "E_CORRUPT",
      /not a non-negative integer/,
    );
    await refuse(
      st({ t: { dtype: "F32", shape: ["2"], data_offsets: [0, 0] } }),
      "E_CORRUPT",
      /not a non-negative integer/,
    );
    await refuse(
      file('{"t":{"dtype":"F32","shape":[9007199254740993],"data_offsets":[0,0]}}'),
      "E_LIMIT",
      /over 2\^53/,
    );
    await refuse(st({ t: { dtype: "F32", shape: [1] } }), "E_CORRUPT", /has no data_offsets pair/);
    await refuse(
      st({ t: { dtype: "F32", shape: [1], data_offsets: [0, 4, 8] } }),
      "E_CORRUPT",
      /has no data_offsets pair/,
    );
    await refuse(
      st({ t: { dtype: "F32", shape: [1], data_offsets: [0, -4] } }),
      "E_CORRUPT",
      /data offset that is not a non-negative integer/,
    );
    await refuse(
      file('{"t":{"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551615]}}'),
      "E_LIMIT",
      /data offset over 2\^53/,
    );
  });

  test("8. offsets: holes, overlaps, reversed", async () => {
    const f32 = (begin: number, end: number, n = (end - begin) / 4) => ({
      dtype: "F32",
      shape: [n],
      data_offsets: [begin, end],
    });
    await refuse(st({ a: f32(4, 8) }, 8), "E_CORRUPT", /invalid offsets \[4, 8\] for tensor "a"/);
    await refuse(
      st({ a: f32(0, 4), b: f32(8, 12) }, 12),
      "E_CORRUPT",
      /invalid offsets \[8, 12\] for tensor "b"/,
    );
    await refuse(
      st({ a: f32(0, 8), b: f32(4, 12) }, 12),
      "E_CORRUPT",
      /invalid offsets \[4, 12\] for tensor "b"/,
    );
    await refuse(
      st({ a: { dtype: "F32", shape: [0], data_offsets: [0, 0] }, b: f32(0, 8), c: f32(0, 8) }, 8),
      "E_CORRUPT",
      /invalid offsets/,
    );
    await refuse(
      st({ a: { dtype: "F32", shape: [1], data_offsets: [8, 4] } }, 8),
      "E_CORRUPT",
      /invalid offsets \[8, 4\]/,
    );
    // Listed out of order in the JSON is fine: entries are sorted by offset first.
    const result = await recogniseBytes(st({ b: f32(4, 8), a: f32(0, 4) }, 8));
    assert.deepEqual(
      result.regions.map((r) => r.name),
      ["safetensors header", "a", "b"],
    );
  });

  test("8. sizes: overflow, sub-byte remainder, mismatch", async () => {
    const big = 2 ** 26;
    await refuse(
      st({ t: { dtype: "F32", shape: [big, big, big], data_offsets: [0, 0] } }),
      "E_CORRUPT",
      /overflows/,
    );
    await refuse(
      st({ t: { dtype: "F64", shape: [2 ** 50, 16], data_offsets: [0, 0] } }),
      "E_CORRUPT",
      /overflows/,
    );
    await refuse(
      st({ t: { dtype: "F4", shape: [3], data_offsets: [0, 1] } }, 1),
      "E_CORRUPT",
      /not a whole number of bytes/,
    );
    await refuse(
      st({ t: { dtype: "F6_E2M3", shape: [2], data_offsets: [0, 1] } }, 1),
      "E_CORRUPT",
      /not a whole number of bytes/,
    );
    await refuse(
      st({ t: { dtype: "F32", shape: [2], data_offsets: [0, 4] } }, 4),
      "E_CORRUPT",
      /has 4 bytes, but F32 \[2\] needs 8/,
    );
  });

  test("9. the data must fill the file exactly", async () => {
    const entry = { t: { dtype: "U8", shape: [4], data_offsets: [0, 4] } };
    await refuse(st(entry, 5), "E_CORRUPT", /incomplete coverage/);
    await refuse(st(entry, 3), "E_TRUNCATED", /past the end of the file/);
    await refuse(st({}, 1), "E_CORRUPT", /incomplete coverage/);
    const result = await recogniseBytes(st(entry, 4));
    assertTiling(result, 8 + JSON.stringify(entry).length + 4);
  });

  test("zero tensors and a zero-length header", async () => {
    const empty = await recogniseBytes(st({}));
    assert.equal(empty.format, "safetensors");
    assert.equal(empty.regions.length, 1);
    await refuse(file(""), "E_CORRUPT", /not valid JSON/);
  });
});
