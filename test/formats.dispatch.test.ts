/**
 * The dispatcher, tileRegions, and property tests: random bytes and randomly damaged
 * fixtures fed to recognise() either come back as a valid tiling or are refused with a
 * coded MmhError, quickly.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { MmhError } from "../src/common/errors.ts";
import { bufferSource, fileSource, type RandomAccessSource } from "../src/common/source.ts";
import { type Region, recognise, tileRegions } from "../src/formats/index.ts";
import { assertTiling, fixture, recogniseBytes } from "./formats-support.ts";
import { throwsWith } from "./support.ts";
import { sampleGguf } from "./support-gguf.ts";

const raw = (name: string, offset: number, length: number): Region => ({
  name,
  offset,
  length,
  dtype: null,
  kind: "raw",
});

describe("tileRegions", () => {
  test("sorts, fills gaps with raw regions and drops empty ones", () => {
    const t: Region = { name: "t", offset: 10, length: 4, dtype: "F32", shape: [1], kind: "tensor" };
    const tiled = tileRegions([t, raw("h", 2, 3), raw("empty", 7, 0)], 20, "gap");
    assert.deepEqual(
      tiled.map((r) => [r.name, r.offset, r.length]),
      [
        ["gap", 0, 2],
        ["h", 2, 3],
        ["gap", 5, 5],
        ["t", 10, 4],
        ["gap", 14, 6],
      ],
    );
    assert.deepEqual(tileRegions([], 0), []);
    assert.deepEqual(tileRegions([], 3), [raw("raw", 0, 3)]);
  });

  test("refuses overlaps and regions outside the file", () => {
    throwsWith(() => tileRegions([raw("a", 0, 5), raw("b", 4, 2)], 10), "E_CORRUPT");
    throwsWith(() => tileRegions([raw("a", 0, 5), raw("b", 0, 5)], 10), "E_CORRUPT");
    throwsWith(() => tileRegions([raw("a", 8, 5)], 10), "E_TRUNCATED");
    throwsWith(() => tileRegions([raw("a", -1, 5)], 10), "E_CORRUPT");
    throwsWith(() => tileRegions([raw("a", 0.5, 5)], 10), "E_CORRUPT");
    throwsWith(() => tileRegions([raw("a", 0, Number.NaN)], 10), "E_CORRUPT");
  });
});

describe("recognise: dispatch", () => {
  test("unknown content is one raw region; an empty file has none", async () => {
    for (const bytes of [Buffer.from("hello, world"), Buffer.alloc(5000, 1), Buffer.from("PK")]) {
      const result = await recogniseBytes(bytes);
      assert.deepEqual(result, {
        format: "raw",
        regions: [{ name: "raw", offset: 0, length: bytes.length, dtype: null, kind: "raw" }],
        tensors: [],
      });
    }
    assert.deepEqual(await recogniseBytes(Buffer.alloc(0)), { format: "raw", regions: [], tensors: [] });
  });

  test("each fixture goes to its recogniser", async () => {
    const formats: Record<string, string> = {
      "model.safetensors": "safetensors",
      "npy-f4.npy": "npy",
      "npz-stored.npz": "npz",
      "npz-deflated.npz": "npz",
      "torch-state.pt": "pytorch",
      "torch-legacy.pt": "pytorch",
      "zip-other.zip": "raw",
    };
    for (const [name, format] of Object.entries(formats)) {
      const bytes = fixture(name);
      const result = await recogniseBytes(bytes);
      assert.equal(result.format, format, name);
      assertTiling(result, bytes.length);
    }
    assert.equal((await recogniseBytes(sampleGguf().bytes)).format, "gguf");
  });

  test("a fileSource gives the same answer as a bufferSource", async () => {
    for (const name of ["model.safetensors", "npz-zip64.npz", "torch-state.pt", "npy-v3.npy"]) {
      const source = await fileSource(new URL(`./fixtures/formats/${name}`, import.meta.url).pathname);
      try {
        assert.deepEqual(await recognise(source), await recogniseBytes(fixture(name)), name);
      } finally {
        await source.close();
      }
    }
  });

  test("an empty zip (just the end record) is raw", async () => {
    const end = Buffer.alloc(22);
    end.writeUInt32LE(0x06054b50, 0);
    assert.equal((await recogniseBytes(end)).format, "raw");
  });

  test("a bad option is E_BAD_OPTION", async () => {
    await assert.rejects(recogniseBytes(fixture("npy-f4.npy"), { maxHeaderBytes: -1 }), {
      code: "E_BAD_OPTION",
    });
  });

  test("read errors from the source pass through as MmhErrors", async () => {
    const bytes = fixture("torch-state.pt");
    const failing: RandomAccessSource = {
      size: bytes.length,
      async read(offset, length) {
        if (offset > 100) throw new MmhError("E_IO", "disk on fire");
        return bytes.subarray(offset, offset + length);
      },
      async close() {},
    };
    await assert.rejects(recognise(failing), { code: "E_IO" });
  });
});

const DATA_CODES = new Set(["E_CORRUPT", "E_TRUNCATED", "E_LIMIT", "E_UNSUPPORTED"]);

/** recognise() must give a valid tiling or a coded data error, within a time bound. */
async function wellBehaved(bytes: Uint8Array): Promise<void> {
  const start = performance.now();
  try {
    const result = await recognise(bufferSource(bytes));
    assertTiling(result, bytes.length);
    for (const t of result.tensors) {
      assert.ok(
        t.offset >= 0 && t.length >= 0 && t.offset + t.length <= bytes.length,
        `tensor ${t.name} out of range`,
      );
    }
  } catch (error) {
    if (!(error instanceof MmhError)) throw error;
    assert.ok(DATA_CODES.has(error.code), `unexpected ${error.code}: ${error.message}`);
  }
  assert.ok(performance.now() - start < 1000, "took over a second");
}

const MAGICS: Uint8Array[] = [
  Buffer.from("GGUF\x03\x00\x00\x00", "latin1"),
  Buffer.from("GGUF\x02\x00\x00\x00", "latin1"),
  Buffer.from("\x93NUMPY\x01\x00", "latin1"),
  Buffer.from("\x93NUMPY\x02\x00", "latin1"),
  Buffer.from("PK\x03\x04", "latin1"),
  Buffer.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]),
  Buffer.from([40, 0, 0, 0, 0, 0, 0, 0, 0x7b, 0x22]),
  Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0, 0, 8, 8, 0]),
  Buffer.from("lmgg", "latin1"),
  Buffer.from("fmgg\x65\x00\x00\x00", "latin1"),
  Buffer.from("tjgg\x03\x00\x00\x00", "latin1"),
];

describe("recognise: property tests", () => {
  test("random bytes", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 600 }), async (bytes) => wellBehaved(bytes)),
      { numRuns: 300 },
    );
  });

  test("random bytes behind each format's magic", async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...MAGICS), fc.uint8Array({ maxLength: 400 }), async (magic, rest) =>
        wellBehaved(Buffer.concat([magic, rest])),
      ),
      { numRuns: 500 },
    );
  });

  const victims = [
    "model.safetensors",
    "npy-f4.npy",
    "npy-structured.npy",
    "npz-stored.npz",
    "npz-deflated.npz",
    "npz-zip64.npz",
    "torch-state.pt",
    "torch-checkpoint.pt",
    "torch-legacy.pt",
  ];
  const originals = [...victims.map((name) => fixture(name)), sampleGguf(3).bytes, sampleGguf(2, 64).bytes];

  test("fixtures with random bytes overwritten", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: originals.length - 1 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        async (which, edits) => {
          const bytes = Buffer.from(originals[which]);
          for (const [at, value] of edits) bytes[at % bytes.length] = value;
          await wellBehaved(bytes);
        },
      ),
      { numRuns: 1500 },
    );
  });

  test("fixtures cut short and with bytes inserted", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: originals.length - 1 }),
        fc.nat(),
        fc.uint8Array({ maxLength: 16 }),
        async (which, at, inserted) => {
          const original = originals[which];
          const cut = at % original.length;
          await wellBehaved(original.subarray(0, cut));
          await wellBehaved(Buffer.concat([original.subarray(0, cut), inserted, original.subarray(cut)]));
        },
      ),
      { numRuns: 500 },
    );
  });
});
