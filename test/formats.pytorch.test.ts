import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { type ErrorCode, MmhError } from "../src/common/errors.ts";
import { runPickle } from "../src/formats/pickle.ts";
import {
  assertTiling,
  decode,
  expected,
  type FakeTensor,
  fixture,
  op,
  pkl,
  quickly,
  recogniseBytes,
  regionNamed,
  stateDictPickle,
  tensorNamed,
  torchZip,
} from "./formats-support.ts";
import { rejectsWith, throwsWith } from "./support.ts";

const TORCH_DTYPE: Record<string, [string, number]> = {
  float32: ["F32", 4],
  float16: ["F16", 2],
  bfloat16: ["BF16", 2],
  int64: ["I64", 8],
  int32: ["I32", 4],
  float64: ["F64", 8],
  bool: ["BOOL", 1],
};

async function refuse(bytes: Buffer, code: ErrorCode, message: RegExp): Promise<void> {
  const error = await quickly(() => rejectsWith(recogniseBytes(bytes), code));
  assert.match(error.message, message);
}

const f32 = (values: number[]) => {
  const b = Buffer.alloc(values.length * 4);
  for (const [i, v] of values.entries()) b.writeFloatLE(v, i * 4);
  return b;
};

const oneTensor = (overrides: Partial<FakeTensor> = {}): FakeTensor => ({
  name: "w",
  storageType: "FloatStorage",
  key: "0",
  numel: 4,
  size: [2, 2],
  stride: [2, 1],
  ...overrides,
});

describe("pytorch: torch.save zip files", () => {
  test("a state dict: names, dtypes, shapes, views and values", async () => {
    const bytes = fixture("torch-state.pt");
    const want = expected.files["torch-state.pt"];
    const result = await recogniseBytes(bytes);
    assert.equal(result.format, "pytorch");
    assertTiling(result, bytes.length);
    assert.deepEqual(result.tensors.map((t) => t.name).sort(), Object.keys(want).sort());
    // In the order the state dict has them.
    assert.deepEqual(
      result.tensors.slice(0, 3).map((t) => t.name),
      ["linear.weight", "linear.weight_t", "linear.row1"],
    );
    for (const [name, info] of Object.entries(want) as [
      string,
      { dtype: string; shape: number[]; storage_offset: number; stride: number[]; first: number[] },
    ][]) {
      const t = tensorNamed(result, name);
      const [dtype, size] = TORCH_DTYPE[info.dtype];
      assert.equal(t.dtype, dtype, name);
      assert.deepEqual(t.shape, info.shape, name);
      const contiguous = name !== "linear.weight_t";
      if (contiguous && info.first.length > 0) {
        const values = decode(bytes.subarray(t.offset, t.offset + t.length), dtype, info.first.length);
        assert.deepEqual(
          values.map((v) => (typeof v === "boolean" ? Number(v) : v)),
          info.first,
          name,
        );
      }
      assert.equal(
        t.length,
        Math.max(
          1,
          info.shape.reduce((a, b) => a * b, 1),
        ) * size,
        name,
      );
    }
    // Views share linear.weight's storage: same start, an offset for the row.
    const weight = tensorNamed(result, "linear.weight");
    assert.equal(tensorNamed(result, "linear.weight_t").offset, weight.offset);
    assert.equal(tensorNamed(result, "linear.row1").offset, weight.offset + 4 * 4);
    const region = regionNamed(result, "linear.weight");
    assert.equal(region.dtype, "F32");
    assert.deepEqual(region.shape, [12]);
    assert.match(region.note ?? "", /shared with linear.weight_t, linear.row1/);
    assert.deepEqual(regionNamed(result, "half").shape, [6]);
    assert.equal(regionNamed(result, "archive/data.pkl").kind, "raw");
    assert.equal(regionNamed(result, "archive/version").kind, "raw");
    assert.deepEqual(result.metadata, {
      layout: "zip",
      prefix: "archive/",
      storages: 6,
      byteorder: "little",
      members: 8,
    });
  });

  test("a nested checkpoint with a Parameter, a tuple and plain values", async () => {
    const bytes = fixture("torch-checkpoint.pt");
    const result = await recogniseBytes(bytes);
    assertTiling(result, bytes.length);
    const want = expected.files["torch-checkpoint.pt"];
    assert.deepEqual(result.tensors.map((t) => t.name).sort(), Object.keys(want).sort());
    assert.deepEqual(decode(bytes.subarray(tensorNamed(result, "model.w").offset), "F32", 4), [1, 1, 1, 1]);
    assert.deepEqual(decode(bytes.subarray(tensorNamed(result, "extra.0").offset), "I32", 3), [0, 1, 2]);
    assert.equal(tensorNamed(result, "extra.0").dtype, "I32");
  });

  test("every truncation is refused with a code", async () => {
    const bytes = fixture("torch-checkpoint.pt");
    for (let cut = 4; cut < bytes.length; cut++) {
      await rejectsWith(recogniseBytes(bytes.subarray(0, cut)), ["E_TRUNCATED", "E_CORRUPT"], `cut ${cut}: `);
    }
  });

  test("a hand-made zip: storage regions, unreferenced members, bare storages", async () => {
    const bytes = torchZip(stateDictPickle([oneTensor()]), { "0": f32([1, 2, 3, 4]), "9": Buffer.alloc(3) });
    const result = await recogniseBytes(bytes);
    assertTiling(result, bytes.length);
    const w = regionNamed(result, "w");
    assert.equal(w.dtype, "F32");
    assert.deepEqual(w.shape, [2, 2]);
    assert.deepEqual(decode(bytes.subarray(w.offset), "F32", 4), [1, 2, 3, 4]);
    assert.equal(regionNamed(result, "archive/data/9").note, "unreferenced storage");
  });

  test("storage types without a DType, and a big-endian byteorder, are raw", async () => {
    const q = torchZip(stateDictPickle([oneTensor({ storageType: "QInt8Storage" })]), {
      "0": Buffer.alloc(4),
    });
    const result = await recogniseBytes(q);
    assert.equal(regionNamed(result, "w").kind, "raw");
    assert.equal(regionNamed(result, "w").note, "QInt8Storage");
    assert.equal(tensorNamed(result, "w").dtype, "QInt8Storage");
    const big = torchZip(stateDictPickle([oneTensor()]), {
      "0": f32([1, 2, 3, 4]),
      "../byteorder": Buffer.alloc(0),
    });
    // ("archive/data/../byteorder" is refused by the zip reader as a relative path.)
    await rejectsWith(recogniseBytes(big), "E_CORRUPT");
  });
});

describe("pytorch: the legacy format", () => {
  test("pickles, then each storage's size and bytes", async () => {
    const bytes = fixture("torch-legacy.pt");
    const result = await recogniseBytes(bytes);
    assert.equal(result.format, "pytorch");
    assertTiling(result, bytes.length);
    assert.equal(result.metadata?.layout, "legacy");
    const w = tensorNamed(result, "w");
    assert.equal(w.dtype, "F32");
    assert.deepEqual(w.shape, [4]);
    assert.equal(w.offset + w.length, bytes.length);
    assert.deepEqual(decode(bytes.subarray(w.offset), "F32", 4), [0, 1, 2, 3]);
    assert.equal(result.regions[0].name, "torch legacy pickles");
  });

  test("every truncation is E_TRUNCATED (raw before the magic number is whole)", async () => {
    const bytes = fixture("torch-legacy.pt");
    for (let cut = 0; cut < bytes.length; cut++) {
      const part = bytes.subarray(0, cut);
      if (cut < 15) assert.equal((await recogniseBytes(part)).format, "raw");
      else await rejectsWith(recogniseBytes(part), "E_TRUNCATED", `cut ${cut}: `);
    }
  });

  test("a data.pkl-sized cap applies to the legacy pickles", async () => {
    const error = await rejectsWith(
      recogniseBytes(fixture("torch-legacy.pt"), { maxHeaderBytes: 100 }),
      "E_LIMIT",
    );
    assert.match(error.message, /larger than 100 bytes/);
  });
});

describe("pytorch: hostile pickles", () => {
  const zipWith = (pickle: Buffer, storages: Record<string, Uint8Array> = {}) => torchZip(pickle, storages);

  test("unknown opcodes and protocols are E_UNSUPPORTED", async () => {
    await refuse(zipWith(pkl(op.proto(2), 0x69, op.STOP)), "E_UNSUPPORTED", /opcode 0x69/);
    await refuse(zipWith(pkl(op.proto(2), 0x82, 1, op.STOP)), "E_UNSUPPORTED", /opcode 0x82/);
    await refuse(zipWith(pkl(op.proto(6), op.EMPTY_DICT, op.STOP)), "E_UNSUPPORTED", /protocol 6/);
  });

  test("structural errors are E_CORRUPT", async () => {
    await refuse(zipWith(pkl(op.proto(2), op.STOP)), "E_CORRUPT", /stack underflow/);
    await refuse(zipWith(pkl(op.proto(2), op.get(7), op.STOP)), "E_CORRUPT", /memo 7 is not set/);
    await refuse(
      zipWith(pkl(op.proto(2), op.int(1), op.int(2), op.SETITEM, op.STOP)),
      "E_CORRUPT",
      /stack underflow|not a dict/,
    );
    await refuse(
      zipWith(pkl(op.proto(2), op.EMPTY_LIST, op.int(1), op.int(2), op.SETITEM, op.STOP)),
      "E_CORRUPT",
      /not a dict/,
    );
    await refuse(zipWith(pkl(op.proto(2), op.int(1), op.TUPLE, op.STOP)), "E_CORRUPT", /no mark/);
    await refuse(
      zipWith(pkl(op.proto(2), op.int(1), op.EMPTY_DICT, op.REDUCE, op.STOP)),
      "E_CORRUPT",
      /not a tuple/,
    );
    await refuse(
      zipWith(pkl(op.proto(2), 0x63, Buffer.alloc(5000, 0x61), op.STOP)),
      "E_CORRUPT",
      /unterminated text line/,
    );
  });

  test("a pickle without STOP, or with a huge length, is E_TRUNCATED", async () => {
    await refuse(zipWith(pkl(op.proto(2), op.EMPTY_DICT)), "E_TRUNCATED", /runs past the end/);
    await refuse(
      zipWith(pkl(op.proto(2), 0x58, [0xff, 0xff, 0xff, 0x7f], op.STOP)),
      "E_TRUNCATED",
      /runs past/,
    );
    await refuse(
      zipWith(pkl(op.proto(4), 0x8d, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], op.STOP)),
      "E_TRUNCATED",
      /runs past/,
    );
  });

  test("cycles and shared references terminate", async () => {
    // l = []; l.append(l)
    const selfList = pkl(op.proto(2), op.EMPTY_LIST, op.put(0), op.get(0), op.APPEND, op.STOP);
    assert.deepEqual((await quickly(() => recogniseBytes(zipWith(selfList)))).tensors, []);
    // d = {}; d["d"] = d
    const selfDict = pkl(op.proto(2), op.EMPTY_DICT, op.put(0), op.str("d"), op.get(0), op.SETITEM, op.STOP);
    assert.deepEqual((await quickly(() => recogniseBytes(zipWith(selfDict)))).tensors, []);
    // x = (t, t); x = (x, x); ... 60 times: 2^60 paths, visited once each.
    const parts = [op.proto(2), op.EMPTY_LIST, op.put(0)];
    for (let i = 0; i < 60; i++) parts.push(op.get(0), op.get(0), pkl(0x86), op.put(0), pkl(0x30));
    parts.push(op.get(0), op.STOP);
    assert.deepEqual((await quickly(() => recogniseBytes(zipWith(pkl(...parts))))).tensors, []);
  });

  test("deep nesting does not blow the stack", async () => {
    const depth = 100_000;
    const nested = pkl(
      op.proto(2),
      Buffer.alloc(depth, op.EMPTY_LIST),
      Buffer.alloc(depth - 1, op.APPEND),
      op.STOP,
    );
    assert.deepEqual((await quickly(() => recogniseBytes(zipWith(nested)))).tensors, []);
    const marks = pkl(op.proto(2), Buffer.alloc(depth, op.MARK), Buffer.alloc(depth, op.TUPLE), op.STOP);
    assert.deepEqual((await quickly(() => recogniseBytes(zipWith(marks)))).tensors, []);
  });

  test("storages: missing member, wrong size, views past the end, bad ids", async () => {
    await refuse(zipWith(stateDictPickle([oneTensor()])), "E_CORRUPT", /has no archive\/data\/0 member/);
    await refuse(
      zipWith(stateDictPickle([oneTensor()]), { "0": Buffer.alloc(12) }),
      "E_CORRUPT",
      /is 12 bytes, but 4 × FloatStorage needs 16/,
    );
    await refuse(
      zipWith(stateDictPickle([oneTensor({ size: [2, 3], stride: [3, 1] })]), { "0": Buffer.alloc(16) }),
      "E_CORRUPT",
      /reaches past the end of storage 0/,
    );
    await refuse(
      zipWith(stateDictPickle([oneTensor({ offset: 1 })]), { "0": Buffer.alloc(16) }),
      "E_CORRUPT",
      /reaches past the end/,
    );
    await refuse(
      zipWith(stateDictPickle([oneTensor({ size: [2], stride: [1, 1] })]), { "0": Buffer.alloc(16) }),
      "E_CORRUPT",
      /size and stride differ/,
    );
    await refuse(
      zipWith(stateDictPickle([oneTensor(), oneTensor({ name: "v", storageType: "HalfStorage" })]), {
        "0": Buffer.alloc(16),
      }),
      "E_CORRUPT",
      /declared twice/,
    );
    await refuse(
      zipWith(pkl(op.proto(2), op.str("x"), op.BINPERSID, op.STOP)),
      "E_UNSUPPORTED",
      /persistent id/,
    );
  });

  test("the data.pkl cap", async () => {
    const bytes = torchZip(stateDictPickle([oneTensor()]), { "0": Buffer.alloc(16) });
    const error = await rejectsWith(recogniseBytes(bytes, { maxHeaderBytes: 64 }), "E_LIMIT");
    assert.match(error.message, /data.pkl is \d+ bytes, over 64/);
  });

  test("runPickle bounds its own reads", () => {
    throwsWith(() => runPickle(Buffer.from([0x80])), "E_TRUNCATED");
    throwsWith(() => runPickle(Buffer.from([0x4a, 1, 2])), "E_TRUNCATED");
    assert.equal(runPickle(pkl(op.proto(2), 0x8a, 9, Buffer.alloc(9, 0xff), op.STOP)).value, -1);
    assert.equal(runPickle(pkl(op.proto(2), 0x8a, 9, [...Buffer.alloc(8), 1], op.STOP)).value, 2n ** 64n);
    assert.equal(
      runPickle(pkl(op.proto(2), 0x47, [0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18], op.STOP)).value,
      Math.PI,
    );
  });
});

describe("pytorch: pickle property test", () => {
  const OPCODES = [
    0x80, 0x95, 0x2e, 0x28, 0x30, 0x31, 0x32, 0x4e, 0x88, 0x89, 0x4b, 0x4d, 0x4a, 0x8a, 0x58, 0x8c, 0x42,
    0x43, 0x7d, 0x5d, 0x29, 0x8f, 0x74, 0x85, 0x86, 0x87, 0x6c, 0x64, 0x91, 0x73, 0x75, 0x61, 0x65, 0x90,
    0x71, 0x72, 0x94, 0x68, 0x6a, 0x63, 0x93, 0x52, 0x81, 0x92, 0x62, 0x51, 0x50,
  ];
  test("random opcode streams only ever raise coded errors", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(fc.constantFrom(...OPCODES), fc.integer({ min: 0, max: 255 })), { maxLength: 80 }),
        async (ops) => {
          const pickle = Buffer.from([0x80, 2, ...ops, 0x2e]);
          for (const work of [
            async () => runPickle(pickle),
            () => recogniseBytes(torchZip(pickle, { "0": Buffer.alloc(16) })),
          ]) {
            try {
              await work();
            } catch (error) {
              assert.ok(error instanceof MmhError && error.code !== "E_INTERNAL", String(error));
            }
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});
