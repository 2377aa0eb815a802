import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ErrorCode } from "../src/common/errors.ts";
import { bufferSource } from "../src/common/source.ts";
import { MAX_TENSOR_TABLE_JSON, tensorTable } from "../src/engine/describe.ts";
import { looksLikeOnnx, ONNX_MAX_DEPTH, ONNX_MIN_REGION, recogniseOnnx } from "../src/formats/onnx.ts";
import { ProtoReader } from "../src/formats/protobuf.ts";
import {
  assertTiling,
  checkTensorsRoundTrip,
  expectations,
  fixture,
  recogniseBytes,
  refuseWith,
  sha256,
} from "./formats-support.ts";

/** What scripts/make-onnx-fixtures.py recorded: each tensor's dtype, shape and the sha256 of its bytes. */
const expected = { files: expectations("onnx-expected.json") };

// ---- a protobuf writer, for hand-made (and hostile) models ----------------------------------

function varint(value: number | bigint): Buffer {
  let v = BigInt(value);
  if (v < 0n) v += 1n << 64n;
  const out: number[] = [];
  do {
    const b = Number(v & 0x7fn);
    v >>= 7n;
    out.push(v > 0n ? b | 0x80 : b);
  } while (v > 0n);
  return Buffer.from(out);
}

const tag = (field: number, wire: number) => varint(field * 8 + wire);
/** A varint field. */
const num = (field: number, value: number | bigint) => Buffer.concat([tag(field, 0), varint(value)]);
/** A length-delimited field holding `parts`. */
const len = (field: number, ...parts: (Buffer | string)[]) => {
  const body = Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p, "utf8") : p)));
  return Buffer.concat([tag(field, 2), varint(body.length), body]);
};

/** A TensorProto: dims (packed), data_type, name, raw_data. */
function tensor(name: string, type: number, dims: number[], raw: Buffer): Buffer {
  return Buffer.concat([
    len(1, Buffer.concat(dims.map((d) => varint(d)))),
    num(2, type),
    len(8, name),
    len(9, raw),
  ]);
}

/** A ModelProto: ir_version 8, producer, one graph with the given fields, an opset. */
function model(...graphFields: Buffer[]): Buffer {
  return Buffer.concat([
    num(1, 8),
    len(2, "test"),
    len(7, ...graphFields, len(2, "g")),
    len(8, len(1, ""), num(2, 17)),
  ]);
}

function floats(count: number, seed: number): Buffer {
  const out = Buffer.alloc(count * 4);
  let x = seed;
  for (let i = 0; i < count; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out.writeFloatLE(((x >>> 8) / 2 ** 24 - 0.5) * 0.1, i * 4);
  }
  return out;
}

function refuse(bytes: Buffer, code: ErrorCode | ErrorCode[], message?: RegExp, maxHeaderBytes?: number) {
  return refuseWith(recogniseOnnx, bytes, code, message, maxHeaderBytes);
}

// ---- tests ----------------------------------------------------------------------------------

describe("onnx: models written by the onnx package", () => {
  for (const [name, tensors] of Object.entries(expected.files)) {
    test(`${name}: every tensor's name, dtype, shape and bytes`, async () => {
      const bytes = fixture(name);
      assert.ok(looksLikeOnnx(bytes.subarray(0, 16)));
      const result = await recogniseBytes(bytes);
      assert.equal(result.format, "onnx");
      assertTiling(result, bytes.length);
      assert.deepEqual(
        result.tensors.map((t) => t.name).sort(),
        Object.keys(tensors).sort(),
        "the listed tensors are those with their values in the file",
      );
      for (const t of result.tensors) {
        const want = tensors[t.name];
        assert.equal(t.dtype, want.dtype, t.name);
        assert.deepEqual(t.shape, want.shape, t.name);
        assert.equal(sha256(bytes.subarray(t.offset, t.offset + t.length)), want.sha256, `${t.name}: bytes`);
        // Large tensors are regions of their dtype; small ones are left to the raw regions.
        const region = result.regions.find((r) => r.offset === t.offset && r.length === t.length);
        if (t.length >= ONNX_MIN_REGION) {
          assert.ok(region, `${t.name} is a region`);
          assert.equal(region.kind, "tensor");
          // float_data and raw_data alike are typed by the tensor's element type.
          assert.equal(region.dtype, want.dtype === "F64" ? "F64" : want.dtype);
        } else assert.equal(region, undefined, `${t.name} is small and has no region of its own`);
      }
      for (const r of result.regions) if (r.kind === "raw") assert.equal(r.name, "protobuf");
      assert.equal(result.metadata?.producer, "mmh-fixtures");
      assert.deepEqual(result.metadata?.opsets, { "ai.onnx": 13 });
    });
  }

  test("a tensor stored in another file is counted, not listed", async () => {
    const result = await recogniseBytes(fixture("onnx-external.onnx"));
    assert.equal(result.metadata?.externalTensors, 1);
    assert.ok(!result.tensors.some((t) => t.name === "big.weight"));
  });

  test("values written as varints (int32_data) are not listed", async () => {
    const result = await recogniseBytes(fixture("onnx-mlp.onnx"));
    assert.ok(!result.tensors.some((t) => t.name === "ids"));
  });

  test("compressFile and readTensor: each tensor's bytes come back", async () => {
    await checkTensorsRoundTrip(expected.files);
  });
});

describe("onnx: hand-made models", () => {
  test("initializers, a Constant node and a subgraph, each typed", async () => {
    const w = floats(2048, 1);
    const c = floats(1500, 2);
    const s = floats(1100, 3);
    const subgraph = len(
      6,
      len(1, len(2, "inner_out"), len(3, "k"), len(5, len(1, "value"), len(5, tensor("", 1, [1100], s)))),
    );
    const bytes = model(
      len(5, tensor("w", 1, [32, 64], w)),
      len(
        1,
        len(2, "c_out"),
        len(3, "const"),
        len(4, "Constant"),
        len(5, len(1, "value"), len(5, tensor("", 1, [1500], c))),
      ),
      len(1, len(3, "loop"), len(4, "Loop"), len(5, len(1, "body"), subgraph)),
    );
    const result = await recogniseBytes(bytes);
    assert.equal(result.format, "onnx");
    assertTiling(result, bytes.length);
    assert.deepEqual(
      result.tensors.map((t) => [t.name, t.dtype, t.shape, t.length]),
      [
        ["w", "F32", [32, 64], 8192],
        ["c_out", "F32", [1500], 6000],
        ["loop/body/inner_out", "F32", [1100], 4400],
      ],
    );
    for (const t of result.tensors) {
      const region = result.regions.find((r) => r.offset === t.offset);
      assert.equal(region?.dtype, "F32");
    }
  });

  test("nodes across the read window's edge: the same tensors, in order", async () => {
    // Hundreds of nodes of many sizes, some Constant (a tensor each) and some with a
    // subgraph, over several 64 KiB windows: some are held whole and walked without a
    // promise, some straddle a window's edge and are read.
    const nodes: Buffer[] = [];
    const expected: string[] = [];
    for (let i = 0; nodes.length < 900; i++) {
      const pad = "x".repeat((i * 53) % 700);
      const attrs = [len(5, len(1, `alpha${pad}`), num(3, i)), len(5, len(1, "mode"), len(4, pad))];
      if (i % 7 === 3) {
        attrs.splice(1, 0, len(5, len(1, "value"), len(5, tensor("", 1, [1024], floats(1024, i)))));
        expected.push(`out${i}`);
      }
      if (i % 29 === 5) {
        const inner = len(
          1,
          len(2, `in${i}`),
          len(5, len(1, "value"), len(5, tensor("", 1, [1024], floats(1024, i)))),
        );
        attrs.push(len(5, len(1, "body"), len(6, inner)));
        expected.push(`n${i}/body/in${i}`);
      }
      nodes.push(
        len(1, len(2, `out${i}`), len(3, `n${i}`), len(4, i % 7 === 3 ? "Constant" : "Relu"), ...attrs),
      );
    }
    const bytes = model(...nodes);
    assert.ok(bytes.length > 4 * (64 << 10));
    const result = await recogniseBytes(bytes);
    assertTiling(result, bytes.length);
    assert.deepEqual(
      result.tensors.map((t) => t.name),
      expected,
    );
  });

  test("duplicate names are kept apart", async () => {
    const bytes = model(len(5, tensor("w", 1, [4], floats(4, 1))), len(5, tensor("w", 1, [4], floats(4, 2))));
    const result = await recogniseBytes(bytes);
    assert.deepEqual(
      result.tensors.map((t) => t.name),
      ["w", "w#2"],
    );
  });

  test("other files are not taken for ONNX", () => {
    assert.equal(looksLikeOnnx(Buffer.from("GGUF\x03\0\0\0", "latin1")), false);
    assert.equal(looksLikeOnnx(Buffer.from("hello world, this is text")), false);
    assert.equal(looksLikeOnnx(Buffer.from([0x08, 0x00, 0x12, 0x00])), false, "ir_version 0");
    assert.equal(looksLikeOnnx(Buffer.from([0x08, 0x08, 0x10, 0x00])), false, "field 2 as a varint");
    assert.equal(looksLikeOnnx(Buffer.from([0x08, 0x08, 0x3a, 0x00])), true, "a graph next");
    assert.equal(looksLikeOnnx(Buffer.from([0x08, 0x08, 0xca, 0x01])), true, "functions (field 25) next");
  });
});

describe("onnx: hostile models give coded errors", () => {
  const good = model(len(5, tensor("w", 1, [16], floats(16, 1))));

  test("truncated anywhere", async () => {
    const bytes = fixture("onnx-mlp.onnx");
    for (const cut of [5, 40, 124, 200, 8400, bytes.length - 30, bytes.length - 1]) {
      await refuse(bytes.subarray(0, cut), ["E_TRUNCATED", "E_CORRUPT"]);
    }
  });

  test("a field longer than its message", async () => {
    // The graph holds 20 bytes, of which a tensor field claims 100; the file goes on.
    const graph = Buffer.concat([tag(5, 2), varint(100), Buffer.alloc(18)]);
    const bytes = Buffer.concat([
      num(1, 8),
      tag(7, 2),
      varint(graph.length),
      graph,
      len(6, Buffer.alloc(200)),
    ]);
    await refuse(bytes, "E_CORRUPT", /runs past its message/);
  });

  test("a length far past the end of the file", async () => {
    const bytes = Buffer.concat([num(1, 8), tag(7, 2), varint(2 ** 50)]);
    await refuse(bytes, "E_TRUNCATED", /end of the file/);
  });

  test("a varint of more than 10 bytes", async () => {
    const bytes = Buffer.concat([num(1, 8), tag(5, 0), Buffer.alloc(11, 0xff), Buffer.from([1])]);
    await refuse(bytes, "E_CORRUPT", /varint/);
  });

  test("a group (wire type 3) and wire type 7", async () => {
    await refuse(Buffer.concat([num(1, 8), tag(7, 3), Buffer.alloc(8)]), "E_CORRUPT", /wire type 3/);
    await refuse(Buffer.concat([num(1, 8), tag(7, 7), Buffer.alloc(8)]), "E_CORRUPT", /wire type 7/);
  });

  test("field number 0", async () => {
    await refuse(Buffer.concat([num(1, 8), Buffer.from([0x02, 0x00])]), "E_CORRUPT", /field number 0/);
  });

  test("data that does not match the shape", async () => {
    await refuse(model(len(5, tensor("w", 1, [17], floats(16, 1)))), "E_CORRUPT", /expected 68/);
    await refuse(model(len(5, tensor("w", 10, [16], floats(16, 1)))), "E_CORRUPT", /expected 32/);
  });

  test("dimensions that overflow, or are negative", async () => {
    await refuse(
      model(len(5, tensor("w", 1, [2 ** 40, 2 ** 40], floats(1, 1)))),
      "E_CORRUPT",
      /overflows|too large/,
    );
    await refuse(model(len(5, tensor("w", 1, [-1], floats(1, 1)))), "E_CORRUPT", /negative/);
  });

  test("float_data on a tensor of another type", async () => {
    const t = Buffer.concat([len(1, varint(2)), num(2, 7), len(8, "x"), len(4, floats(2, 1))]);
    await refuse(model(len(5, t)), "E_CORRUPT", /float_data/);
  });

  test("data given twice", async () => {
    const t = Buffer.concat([tensor("w", 1, [2], floats(2, 1)), len(9, floats(2, 2))]);
    await refuse(model(len(5, t)), "E_CORRUPT", /twice/);
  });

  test("graphs nested past the depth bound", async () => {
    let graph = len(2, "leaf");
    for (let i = 0; i < ONNX_MAX_DEPTH + 2; i++)
      graph = len(1, len(3, `n${i}`), len(5, len(1, "body"), len(6, graph)));
    await refuse(Buffer.concat([num(1, 8), len(7, graph)]), "E_LIMIT", /deeper/);
  });

  test("more structure than the header limit", async () => {
    await refuse(good, "E_LIMIT", /header limit/, 8);
    assert.equal((await recogniseOnnx(bufferSource(good), { maxHeaderBytes: 4096 })).tensors.length, 1);
  });

  test("no graph, or two", async () => {
    await refuse(Buffer.concat([num(1, 8), len(2, "only a producer")]), "E_CORRUPT", /one graph/);
    await refuse(
      Buffer.concat([num(1, 8), len(7, len(2, "a")), len(7, len(2, "b"))]),
      "E_CORRUPT",
      /one graph/,
    );
  });

  test("invalid UTF-8 in a name", async () => {
    await refuse(model(len(5, len(8, Buffer.from([0xff, 0xfe])))), "E_CORRUPT", /UTF-8/);
  });

  test("random damage never escapes as anything but a coded error", async () => {
    const bytes = fixture("onnx-nested.onnx");
    let x = 12345;
    for (let round = 0; round < 200; round++) {
      const damaged = Buffer.from(bytes);
      for (let k = 0; k < 3; k++) {
        x = (Math.imul(x, 1103515245) + 12345) >>> 0;
        damaged[x % damaged.length] = x >>> 24;
      }
      try {
        const result = await recogniseOnnx(bufferSource(damaged));
        assertTiling(result, damaged.length);
      } catch (error) {
        assert.ok(
          ["E_CORRUPT", "E_TRUNCATED", "E_LIMIT"].includes((error as { code?: string }).code ?? ""),
          `round ${round}: ${error}`,
        );
      }
    }
  });
});

describe("protobuf: fields read from the window held, and across its edge", () => {
  // Varints of 1 to 10 bytes back to back over more than two 64 KiB windows: those the
  // window holds are decoded at once, the others after a read; both must agree.
  const values: number[] = [];
  const parts: Buffer[] = [];
  for (let i = 0; values.length < 40000; i++) {
    const value = i % 11 === 10 ? 2 ** 53 - 1 - i : Math.floor(2 ** (7 * (i % 8))) + i;
    values.push(value);
    parts.push(varint((1 << 3) | 0), varint(value));
  }
  const message = Buffer.concat(parts);

  test("every value and position, as one-by-one decoding gives them", async () => {
    assert.ok(message.length > 2 * (64 << 10));
    const reader = new ProtoReader(bufferSource(message), message.length, "test");
    const got: number[] = [];
    let last = 0;
    for await (const field of reader.fields(0, message.length)) {
      assert.equal(field.number, 1);
      assert.ok(field.start > last);
      last = field.start;
      got.push(field.value);
    }
    assert.deepEqual(got, values);
  });

  test("a message cut inside a varint, and a budget run out, give coded errors", async () => {
    const read = async (bytes: Buffer, budget: number) => {
      const reader = new ProtoReader(bufferSource(bytes), budget, "test");
      for await (const _ of reader.fields(0, bytes.length));
    };
    // The last varint of 10 bytes, cut short: its value runs past the end of its message.
    const cut = message.subarray(0, message.lastIndexOf(0xff) + 1);
    await assert.rejects(read(cut, message.length), { code: "E_CORRUPT" });
    await assert.rejects(read(message, message.length - 1), { code: "E_LIMIT" });
    await read(message, message.length);
  });
});

describe("protobuf: length-delimited fields and strings across the window's edge", () => {
  // Strings of 0 to 300 bytes, each field's tag and length near or across a 64 KiB window
  // edge somewhere: the fields and strings read without a promise (held) and after a read
  // must be the same, and count the same bytes against the budget.
  const texts: string[] = [];
  const parts: Buffer[] = [];
  for (let i = 0; parts.length < 2 * 3000; i++) {
    const text = `s${i}`.padEnd((i * 37) % 301, "abcdefghij");
    texts.push(text);
    parts.push(varint((2 << 3) | 2), varint(Buffer.byteLength(text)), Buffer.from(text));
  }
  const message = Buffer.concat(parts);

  test("every field and string, and the bytes counted", async () => {
    assert.ok(message.length > 2 * (64 << 10));
    const walk = async (budget: number) => {
      const reader = new ProtoReader(bufferSource(message), budget, "test");
      const got: string[] = [];
      for await (const field of reader.fields(0, message.length)) {
        assert.equal(field.number, 2);
        const held = reader.heldBytes(field);
        got.push((held ?? (await reader.bytes(field))).toString());
      }
      return got;
    };
    assert.deepEqual(await walk(message.length), texts);
    await assert.rejects(walk(message.length - 1), { code: "E_LIMIT" });
  });

  test("a length past the file gives its code, held or read", async () => {
    // After the first field (its read fills the window), and after the last (not held).
    const second = parts[0].length + parts[1].length + parts[2].length;
    for (const at of [second, message.length]) {
      const bad = Buffer.concat([
        message.subarray(0, at),
        varint((3 << 3) | 2),
        varint(1000),
        Buffer.alloc(3),
      ]);
      const reader = new ProtoReader(bufferSource(bad), bad.length, "test");
      assert.equal((await reader.field(0, bad.length)).next, second);
      if (at === second) assert.throws(() => reader.heldField(at, bad.length), { code: "E_TRUNCATED" });
      else assert.equal(reader.heldField(at, bad.length), undefined);
      await assert.rejects(reader.field(at, bad.length), { code: "E_TRUNCATED" });
    }
  });
});

describe("a tensor table too large for the footer", () => {
  test("is left out and counted, so the file still compresses", () => {
    const entry = (name: string) => ({ name, dtype: "F32", shape: [4], offset: 0, length: 16 });
    const few = Array.from({ length: 1000 }, (_, i) => entry(`t${i}`));
    assert.deepEqual(tensorTable(few), { tensors: few });
    const long = Array.from({ length: 20 }, (_, i) => entry(`${i}`.padEnd(1 << 20, "x")));
    assert.deepEqual(tensorTable(long), { tensors: [], tensorsOmitted: 20 });
    assert.ok(MAX_TENSOR_TABLE_JSON < 64 << 20, "below the footer's own limit");
  });
});
