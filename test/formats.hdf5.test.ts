/**
 * HDF5: files written by h5py (Debian's python3-h5py) in the three layouts the library
 * writes (libver earliest: superblock 0, v1 object headers, symbol-table groups, v1
 * B-tree chunks; v108: superblock 2; latest: superblock 3, v2 object headers, link
 * messages, dense groups, fixed-array and extensible-array chunk indexes), read back and
 * compared with numpy's bytes; then the same files damaged in every way we could think of.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import { MmhError } from "../src/common/errors.ts";
import { bufferSource } from "../src/common/source.ts";
import { recogniseHdf5 } from "../src/formats/hdf5.ts";
import { recognise } from "../src/formats/index.ts";
import { compressFile, decompress } from "../src/index.ts";
import {
  assertTiling,
  decode,
  quickly,
  recogniseBytes,
  refuseWith,
  regionNamed,
  sha256,
} from "./formats-support.ts";
import { readTensor } from "./support.ts";

const PYTHON = "/usr/bin/python3";
const WRITER = new URL("./hdf5-writer.py", import.meta.url).pathname;

function hasH5py(): boolean {
  try {
    execFileSync(PYTHON, ["-c", "import h5py, numpy"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

const skip = !hasH5py() && "no h5py: install Debian's python3-h5py to run the HDF5 tests";

interface Expected {
  dtype: string;
  shape: number[];
  sha256: string;
  chunks: number[] | null;
  compression: string | null;
}

/** numpy's dtype string as the recogniser names it. */
const DTYPES: Record<string, string> = {
  "<f4": "F32",
  "<f2": "F16",
  "<f8": "F64",
  "<i4": "I32",
  "|u1": "U8",
  ">f4": ">f4",
};

/** Datasets the recogniser leaves to the raw regions, by file. */
const NOT_LISTED: Record<string, string[]> = {
  "keras-earliest.h5": ["/other/tiles", "/other/gzip", "/other/cols"],
  "keras-v108.h5": ["/other/tiles", "/other/gzip", "/other/cols"],
  "keras-latest.h5": ["/other/tiles", "/other/gzip", "/other/cols"],
};

const DATA_CODES = ["E_CORRUPT", "E_TRUNCATED", "E_LIMIT", "E_UNSUPPORTED"];

/** recognise() gives a valid tiling or a coded data error, quickly. */
async function wellBehaved(bytes: Uint8Array, what: string): Promise<void> {
  const start = performance.now();
  try {
    const result = await recognise(bufferSource(bytes));
    assertTiling(result, bytes.length);
    for (const t of result.tensors)
      assert.ok(t.offset + t.length <= bytes.length, `${what}: ${t.name} out of range`);
  } catch (error) {
    if (!(error instanceof MmhError)) throw error;
    assert.ok(DATA_CODES.includes(error.code), `${what}: ${error.code}: ${error.message}`);
  }
  assert.ok(performance.now() - start < 1000, `${what}: took over a second`);
}

describe("hdf5: files written by h5py", { skip }, () => {
  let dir = "";
  let files: Record<string, Record<string, Expected>> = {};
  const bytesOf = (name: string) => readFileSync(join(dir, name));

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "mmh-hdf5-"));
    files = JSON.parse(execFileSync(PYTHON, [WRITER, dir], { encoding: "utf8" }));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("every dataset is listed with h5py's path, dtype, shape and bytes", async () => {
    for (const [name, datasets] of Object.entries(files)) {
      const bytes = bytesOf(name);
      const result = await recogniseBytes(bytes);
      assert.equal(result.format, "hdf5", name);
      assertTiling(result, bytes.length);
      const listed = new Map(result.tensors.map((t) => [t.name, t]));
      for (const [path, want] of Object.entries(datasets)) {
        const t = listed.get(path);
        if (NOT_LISTED[name].includes(path) || path === "/other/loop" || path.startsWith("/other/loop/")) {
          assert.equal(t, undefined, `${name}: ${path} should not be listed`);
          continue;
        }
        assert.ok(t, `${name}: ${path} is not listed`);
        assert.equal(t.dtype, DTYPES[want.dtype], `${name}: ${path} dtype`);
        assert.deepEqual(t.shape, want.shape, `${name}: ${path} shape`);
        assert.equal(
          sha256(bytes.subarray(t.offset, t.offset + t.length)),
          want.sha256,
          `${name}: ${path} bytes`,
        );
      }
      assert.equal(listed.size, Object.keys(datasets).length - NOT_LISTED[name].length, `${name}: listed`);
      // Big arrays are typed regions; the small ones stay in the raw structure.
      const kernel = regionNamed(result, "/model_weights/dense/dense/kernel:0");
      assert.equal(kernel.dtype, "F32");
      assert.deepEqual(kernel.shape, [64, 48]);
      assert.equal(regionNamed(result, "/other/big_endian").note, "big-endian f4");
      assert.equal(regionNamed(result, "/other/rows").dtype, "F32");
      assert.ok(result.regions.some((r) => r.note === "filtered chunk"));
      // /other/cols holds value 30 × row + column; each run of chunks starts at its first chunk's corner.
      const cols = result.regions.filter((r) => r.name.startsWith("/other/cols chunk"));
      assert.ok(cols.length > 0, `${name}: /other/cols has no chunk regions`);
      for (const r of cols) {
        const [row, col] = r.name.split(" ")[2].split(",").map(Number);
        assert.equal(bytes.readFloatLE(r.offset), 30 * row + col, `${name}: ${r.name}`);
      }
      const md = result.metadata as Record<string, unknown>;
      assert.equal(md.superblock, { "keras-earliest.h5": 0, "keras-v108.h5": 2, "keras-latest.h5": 3 }[name]);
    }
  });

  test("compress, decompress, and read each tensor back alone", async () => {
    for (const [name, datasets] of Object.entries(files)) {
      const source = join(dir, name);
      const bytes = bytesOf(name);
      await compressFile(source, `${source}.mmh`);
      assert.ok(
        Buffer.from(await decompress(readFileSync(`${source}.mmh`))).equals(bytes),
        `${name}: round trip`,
      );
      for (const [path, want] of Object.entries(datasets)) {
        if (NOT_LISTED[name].includes(path) || path.startsWith("/other/loop")) continue;
        const { tensor, data } = await readTensor(`${source}.mmh`, path);
        assert.equal(sha256(data), want.sha256, `${name}: ${path}`);
        assert.deepEqual(tensor.shape, want.shape);
      }
    }
  });

  test("wide groups and many small chunks", async () => {
    for (const name of ["wide-earliest.h5", "wide-latest.h5"]) {
      const bytes = bytesOf(name);
      const result = await recogniseBytes(bytes);
      assertTiling(result, bytes.length);
      const wide = result.tensors.filter((t) => t.name.startsWith("/wide/"));
      assert.equal(wide.length, 300, name);
      for (const t of wide) {
        const i = Number(t.name.slice("/wide/w".length));
        assert.deepEqual(
          decode(bytes.subarray(t.offset, t.offset + 32), "F32", 8),
          new Array(8).fill(i),
          t.name,
        );
      }
      // Chunks of 160 and 400 bytes, too small for regions of their own, make typed runs;
      // each run starts at its first chunk's corner (the values are row × width + column).
      for (const [dataset, width] of [
        ["/rows", 40],
        ["/rows_ea", 40],
        ["/grid", 200],
      ] as const) {
        const runs = result.regions.filter((r) => r.name.startsWith(`${dataset} chunk`));
        const typed = runs.filter((r) => r.dtype === "F32").reduce((a, r) => a + r.length, 0);
        assert.ok(typed > 0.6 * runs.reduce((a, r) => a + r.length, 0), `${name}: ${dataset} typed ${typed}`);
        for (const r of runs) {
          const [row, col] = r.name.split(" ")[2].split(",").map(Number);
          assert.equal(bytes.readFloatLE(r.offset), width * row + col, `${name}: ${r.name}`);
        }
      }
      const rows = result.regions.find((r) => r.name.startsWith("/rows chunks") && r.dtype === "F32");
      assert.ok(
        rows?.shape && rows.shape[1] === 40 && rows.shape[0] * 160 === rows.length,
        `${name}: ${rows?.name}`,
      );
    }
  });

  test("a dense group with deleted links is left to the raw regions, the rest read", async () => {
    const bytes = bytesOf("holes-latest.h5");
    const result = await recogniseBytes(bytes);
    assertTiling(result, bytes.length);
    assert.deepEqual(
      result.tensors.map((t) => t.name),
      ["/kept"],
    );
    assert.deepEqual((result.metadata as Record<string, unknown>).notRead, { "dense link storage": 1 });
    const kept = result.tensors[0];
    assert.deepEqual(decode(bytes.subarray(kept.offset, kept.offset + 12), "F32", 3), [0, 1, 2]);
  });

  test("groups nested deeper than 64 are E_LIMIT", async () => {
    await refuseWith(recogniseHdf5, bytesOf("deep.h5"), "E_LIMIT", /deeper than 64/);
  });

  test("the caller's header cap is E_LIMIT", async () => {
    await refuseWith(recogniseHdf5, bytesOf("keras-earliest.h5"), "E_LIMIT", /header limit/, 2000);
  });

  test("truncations: a coded error or a valid tiling, at every structure boundary", async () => {
    for (const name of Object.keys(files)) {
      const bytes = bytesOf(name);
      const result = await recogniseBytes(bytes);
      const cuts = new Set<number>();
      for (let i = 0; i < 512; i++) cuts.add(i);
      for (let i = 0; i < bytes.length; i += 251) cuts.add(i);
      for (const r of result.regions) for (const d of [-1, 0, 1]) cuts.add(r.offset + d);
      for (const cut of cuts) {
        if (cut < 0 || cut >= bytes.length) continue;
        const part = bytes.subarray(0, cut);
        if (cut < 8) assert.equal((await recogniseBytes(part)).format, "raw");
        else await wellBehaved(part, `${name} cut at ${cut}`);
      }
      // Cut inside the superblock or the first object header: always refused.
      await refuseWith(recogniseHdf5, bytes.subarray(0, 40), "E_TRUNCATED");
      await refuseWith(recogniseHdf5, bytes.subarray(0, 100), "E_TRUNCATED");
    }
  });

  test("random bytes overwritten, and bytes inserted", async () => {
    const originals = Object.keys(files).map(bytesOf);
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: originals.length - 1 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
        async (which, edits) => {
          const bytes = Buffer.from(originals[which]);
          // Structure lives in the first few KiB and around each dataset: aim there often.
          for (const [at, value] of edits) bytes[at % (at & 1 ? 4096 : bytes.length)] = value;
          await wellBehaved(bytes, `edits ${JSON.stringify(edits)}`);
        },
      ),
      { numRuns: 600 },
    );
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: originals.length - 1 }),
        fc.nat(),
        fc.uint8Array({ minLength: 1, maxLength: 16 }),
        async (which, at, inserted) => {
          const original = originals[which];
          const cut = at % original.length;
          await wellBehaved(
            Buffer.concat([original.subarray(0, cut), inserted, original.subarray(cut)]),
            "insert",
          );
        },
      ),
      { numRuns: 200 },
    );
  });

  test("hostile superblocks", async () => {
    const good = bytesOf("keras-earliest.h5");
    const edit = (at: number, ...values: number[]) => {
      const bytes = Buffer.from(good);
      bytes.set(values, at);
      return bytes;
    };
    await refuseWith(recogniseHdf5, edit(8, 4), "E_UNSUPPORTED", /superblock version 4/);
    await refuseWith(recogniseHdf5, edit(13, 3), "E_CORRUPT", /sizes of offsets 3/);
    await refuseWith(recogniseHdf5, edit(14, 4), "E_UNSUPPORTED", /sizes of lengths 4/);
    // Root object header address (superblock 0: at 64) past the end of the file.
    await refuseWith(recogniseHdf5, edit(64, 0, 0, 0, 0, 0, 0, 0x10, 0), "E_TRUNCATED", /root group/);
    await refuseWith(
      recogniseHdf5,
      edit(64, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
      "E_CORRUPT",
      /undefined/,
    );
    // Base address past the end.
    await refuseWith(recogniseHdf5, edit(24, 0, 0, 0, 0, 0, 1, 0, 0), "E_CORRUPT", /base address/);
  });

  test("cycles: a B-tree node or a continuation block pointing back is E_CORRUPT, quickly", async () => {
    const good = bytesOf("keras-earliest.h5");
    // A group B-tree whose first child is the node itself.
    const tree = good.indexOf("TREE");
    const selfTree = Buffer.from(good);
    selfTree[tree + 5] = 1; // level 1: its children are nodes
    selfTree.writeBigUInt64LE(BigInt(tree), tree + 8 + 16 + 8);
    await refuseWith(recogniseHdf5, selfTree, "E_CORRUPT", /reached twice/);
    // The root object header's continuation message pointing at its own block.
    const root = Number(good.readBigUInt64LE(64));
    const loop = Buffer.from(good);
    assert.equal(loop.readUInt16LE(root + 16), 0x10, "the root header starts with a continuation");
    loop.writeBigUInt64LE(BigInt(root + 16), root + 24);
    await refuseWith(recogniseHdf5, loop, ["E_CORRUPT", "E_TRUNCATED"]);
    const twice = Buffer.from(good);
    const target = Number(good.readBigUInt64LE(root + 24));
    const length = Number(good.readBigUInt64LE(root + 32));
    // Point the continuation at a block that continues to itself.
    const contAt = good.indexOf(Buffer.from([0x10, 0, 0x10, 0]), target);
    if (contAt >= 0 && contAt < target + length) {
      twice.writeBigUInt64LE(BigInt(target), contAt + 8);
      await refuseWith(recogniseHdf5, twice, "E_CORRUPT", /used twice/);
    }
    // Hard links back up the tree (other/loop -> other) are walked once: no error, no hang.
    const result = await quickly(() => recogniseBytes(good));
    assert.ok(!result.tensors.some((t) => t.name.startsWith("/other/loop")));
  });

  test("huge dimensions, counts and sizes", async () => {
    const good = bytesOf("keras-earliest.h5");
    // The dataspace of the dense kernel: rank 2, dims 64 and 48 as u64.
    const dims = Buffer.alloc(16);
    dims.writeBigUInt64LE(64n, 0);
    dims.writeBigUInt64LE(48n, 8);
    const at = good.indexOf(dims);
    assert.ok(at > 0);
    for (const [first, code] of [
      [2n ** 62n, "E_LIMIT"],
      [2n ** 52n, "E_CORRUPT"],
      [2n ** 40n, "E_CORRUPT"],
      [2n ** 64n - 1n, "E_LIMIT"],
    ] as const) {
      const bytes = Buffer.from(good);
      bytes.writeBigUInt64LE(first, at);
      await refuseWith(recogniseHdf5, bytes, code as "E_CORRUPT" | "E_LIMIT");
    }
    // A symbol table node claiming 65535 entries.
    const snod = good.indexOf("SNOD");
    const many = Buffer.from(good);
    many.writeUInt16LE(0xffff, snod + 6);
    await refuseWith(recogniseHdf5, many, ["E_CORRUPT", "E_TRUNCATED"]);
    // A B-tree node claiming 65535 children.
    const tree = good.indexOf("TREE");
    const wide = Buffer.from(good);
    wide.writeUInt16LE(0xffff, tree + 6);
    await refuseWith(recogniseHdf5, wide, ["E_CORRUPT", "E_TRUNCATED"]);
    // A local heap larger than the file.
    const heap = good.indexOf("HEAP");
    const big = Buffer.from(good);
    big.writeBigUInt64LE(2n ** 50n, heap + 8);
    await refuseWith(recogniseHdf5, big, "E_TRUNCATED");
    // An object header whose messages run past the end of the file.
    const root = Number(good.readBigUInt64LE(64));
    const longHeader = Buffer.from(good);
    longHeader.writeUInt32LE(0x7fffffff, root + 8);
    await refuseWith(recogniseHdf5, longHeader, "E_TRUNCATED");
  });

  test("a file that fails is compressed as raw, losslessly", async () => {
    const bytes = Buffer.from(bytesOf("keras-earliest.h5"));
    bytes[8] = 9; // superblock version 9
    const path = join(dir, "bad.h5");
    writeFileSync(path, bytes);
    await compressFile(path, `${path}.mmh`);
    assert.ok(Buffer.from(await decompress(readFileSync(`${path}.mmh`))).equals(bytes));
  });
});

describe("hdf5: random bytes behind the signature", () => {
  test("a coded error or a valid tiling, quickly", async () => {
    const magic = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(0, 1, 2, 3),
        fc.uint8Array({ maxLength: 600 }),
        async (version, rest) => {
          const bytes = Buffer.concat([magic, Buffer.from([version, 8, 8, 0]), rest]);
          await wellBehaved(bytes, "random");
        },
      ),
      { numRuns: 500 },
    );
  });
});
