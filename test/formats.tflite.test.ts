import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ErrorCode } from "../src/common/errors.ts";
import { bufferSource } from "../src/common/source.ts";
import { FlatReader } from "../src/formats/flatbuffers.ts";
import { looksLikeTflite, recogniseTflite, TFLITE_MIN_REGION } from "../src/formats/tflite.ts";
import {
  assertTiling,
  checkTensorsRoundTrip,
  expectations,
  fixture,
  quickly,
  recogniseBytes,
  refuseWith,
  sha256,
} from "./formats-support.ts";

/** What scripts/make-tflite-fixtures.py recorded: each tensor's dtype, shape and the sha256 of its bytes. */
const expected = { files: expectations("tflite-expected.json") };

function refuse(bytes: Buffer, code: ErrorCode | ErrorCode[], message?: RegExp, maxHeaderBytes?: number) {
  return refuseWith(recogniseTflite, bytes, code, message, maxHeaderBytes);
}

/** The fixture with the u32 at `at` replaced. */
function patched(bytes: Buffer, at: number, value: number, width: 2 | 4 = 4): Buffer {
  const copy = Buffer.from(bytes);
  if (width === 4) copy.writeUInt32LE(value >>> 0, at);
  else copy.writeUInt16LE(value, at);
  return copy;
}

describe("tflite: models built with the flatbuffers package", () => {
  for (const [name, tensors] of Object.entries(expected.files)) {
    test(`${name}: every constant tensor's name, dtype, shape and bytes`, async () => {
      const bytes = fixture(name);
      assert.ok(looksLikeTflite(bytes.subarray(0, 16)));
      const result = await recogniseBytes(bytes);
      assert.equal(result.format, "tflite");
      assertTiling(result, bytes.length);
      assert.deepEqual(result.tensors.map((t) => t.name).sort(), Object.keys(tensors).sort());
      for (const t of result.tensors) {
        const want = tensors[t.name];
        assert.equal(t.dtype, want.dtype, t.name);
        assert.deepEqual(t.shape, want.shape, t.name);
        assert.equal(sha256(bytes.subarray(t.offset, t.offset + t.length)), want.sha256, `${t.name}: bytes`);
        const region = result.regions.find((r) => r.offset === t.offset && r.length === t.length);
        if (t.length >= TFLITE_MIN_REGION)
          assert.equal(region?.dtype, want.dtype, `${t.name} is a typed region`);
        else assert.equal(region, undefined, `${t.name} is small and has no region of its own`);
      }
      assert.equal(result.metadata?.version, 3);
    });
  }

  test("activations (buffer 0) are not listed", async () => {
    const result = await recogniseBytes(fixture("tflite-mobile.tflite"));
    assert.ok(!result.tensors.some((t) => t.name === "input" || t.name === "output"));
    assert.equal(result.metadata?.description, "mmh fixture");
  });

  test("compressFile and readTensor: each tensor's bytes come back", async () => {
    await checkTensorsRoundTrip(expected.files);
  });

  test("other files are not taken for TFLite", () => {
    assert.equal(looksLikeTflite(Buffer.from("\x1c\0\0\0TFL2....", "latin1")), false);
    assert.equal(looksLikeTflite(Buffer.from("GGUF\x03\0\0\0", "latin1")), false);
    assert.equal(looksLikeTflite(Buffer.from("\x1c\0\0\0TFL3", "latin1")), true);
  });
});

describe("tflite: hostile models give coded errors", () => {
  const good = fixture("tflite-mobile.tflite");

  test("truncated anywhere", async () => {
    for (const cut of [4, 8, 40, 600, 5000, 16000, good.length - 100, good.length - 1]) {
      await refuse(good.subarray(0, cut), ["E_TRUNCATED", "E_CORRUPT"]);
    }
  });

  test("a root offset past the end", async () => {
    await refuse(patched(good, 0, good.length + 100), "E_TRUNCATED", /past the end of the file/);
    await refuse(patched(good, 0, 0xfffffff0), "E_TRUNCATED", /past the end of the file/);
  });

  test("a vtable offset pointing anywhere", async () => {
    const root = good.readUInt32LE(0);
    await refuse(patched(good, root, 0x7ffffff0), "E_CORRUPT", /before the start of the file/);
    await refuse(patched(good, root, -0x7ffffff0), "E_TRUNCATED", /past the end of the file/);
  });

  test("a vtable of odd or tiny size", async () => {
    const root = good.readUInt32LE(0);
    const vtable = root - good.readInt32LE(root);
    await refuse(patched(good, vtable, 3, 2), "E_CORRUPT", /vtable of 3 bytes/);
    await refuse(patched(good, vtable, 2, 2), "E_CORRUPT", /vtable of 2 bytes/);
  });

  test("a field outside its table", async () => {
    const root = good.readUInt32LE(0);
    const vtable = root - good.readInt32LE(root);
    const tableSize = good.readUInt16LE(vtable + 2);
    // Field 4 (buffers) said to lie at the table's end.
    await refuse(patched(good, vtable + 4 + 2 * 4, tableSize, 2), "E_CORRUPT", /outside its table/);
  });

  test("a vector length that runs past the end", async () => {
    const root = good.readUInt32LE(0);
    const vtable = root - good.readInt32LE(root);
    const field = root + good.readUInt16LE(vtable + 4 + 2 * 4); // Model.buffers
    const vector = field + good.readUInt32LE(field);
    await refuse(patched(good, vector, 0x3fffffff), "E_TRUNCATED", /runs past the end/);
  });

  test("another schema version", async () => {
    const root = good.readUInt32LE(0);
    const vtable = root - good.readInt32LE(root);
    const field = root + good.readUInt16LE(vtable + 4); // Model.version
    await refuse(patched(good, field, 2), "E_UNSUPPORTED", /schema version 2/);
  });

  test("more structure than the header limit", async () => {
    await refuse(good, "E_LIMIT", /header limit/, 256);
  });

  test("random damage never escapes as anything but a coded error", async () => {
    let x = 777;
    for (let round = 0; round < 300; round++) {
      const damaged = Buffer.from(good);
      for (let k = 0; k < 2; k++) {
        x = (Math.imul(x, 1103515245) + 12345) >>> 0;
        // Mostly the FlatBuffer's structure, where damage matters.
        const at = x % 2 === 0 ? x % 700 : x % damaged.length;
        damaged[at] = x >>> 24;
      }
      try {
        const result = await quickly(() => recogniseTflite(bufferSource(damaged)));
        assertTiling(result, damaged.length);
      } catch (error) {
        const code = (error as { code?: string }).code ?? "";
        assert.ok(
          ["E_CORRUPT", "E_TRUNCATED", "E_LIMIT", "E_UNSUPPORTED"].includes(code),
          `round ${round}: ${error}`,
        );
      }
    }
  });
});

describe("FlatReader: a walk answered from the window, and read where it is not", () => {
  // A root table 100 KB in, its vtable before it: each jump leaves the 64 KiB window.
  const bytes = Buffer.alloc(200_000);
  bytes.writeUInt32LE(100_008, 0); // root: the table at 100008
  bytes.writeUInt16LE(6, 100_000); // vtable: 6 bytes (one field), table of 8 bytes
  bytes.writeUInt16LE(8, 100_002);
  bytes.writeUInt16LE(4, 100_004); // field 0 at table + 4
  bytes.writeInt32LE(8, 100_008); // the table's vtable is 8 bytes before it
  bytes.writeUInt32LE(42, 100_012);
  const walk = (budget: number) => {
    const r = new FlatReader(bufferSource(bytes), budget, "test");
    return r.run(
      (function* () {
        const t = yield* r.tableAt(0, "root");
        const at = yield* r.field(t, 0, 4, "value");
        return at === undefined ? undefined : yield* r.u32(at, "value");
      })(),
    );
  };

  test("reads across windows give the field, each byte counted once", async () => {
    // Counted: the root offset 4, the vtable offset 4, two vtable sizes 2 + 2, the slot 2, the value 4.
    assert.equal(await walk(18), 42);
    await assert.rejects(walk(17), (e: { code?: string }) => e.code === "E_LIMIT");
  });
});
