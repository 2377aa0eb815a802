import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ErrorCode } from "../src/common/errors.ts";
import { bufferSource } from "../src/common/source.ts";
import { recogniseNpy } from "../src/formats/npy.ts";
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

/** An .npy with the given header dict text (padded as numpy pads it) and data. */
function npy(
  header: string,
  data: Uint8Array = Buffer.alloc(0),
  version = 1,
  declaredLength?: number,
): Buffer {
  const pre = version === 1 ? 10 : 12;
  const pad = (64 - ((pre + Buffer.byteLength(header) + 1) % 64)) % 64;
  const text = Buffer.from(`${header}${" ".repeat(pad)}\n`, version === 3 ? "utf8" : "latin1");
  const head = Buffer.alloc(pre);
  head.write("\x93NUMPY", 0, "latin1");
  head[6] = version;
  if (version === 1) head.writeUInt16LE(declaredLength ?? text.length, 8);
  else head.writeUInt32LE(declaredLength ?? text.length, 8);
  return Buffer.concat([head, text, data]);
}

const dict = (descr: string, shape: string, fortran = "False") =>
  `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }`;

async function refuse(bytes: Buffer, code: ErrorCode, message: RegExp): Promise<void> {
  const error = await quickly(() => rejectsWith(recogniseNpy(bufferSource(bytes)), code));
  assert.match(error.message, message);
}

const DTYPE_OF: Record<string, string> = {
  "<f4": "F32",
  "<f2": "F16",
  "<f8": "F64",
  "<i8": "I64",
  "|u1": "U8",
  "|b1": "BOOL",
  "<c8": "C64",
};

describe("npy: fixtures written by numpy", () => {
  for (const [name, want] of Object.entries(expected.files).filter(([n]) => n.endsWith(".npy"))) {
    test(name, async () => {
      const bytes = fixture(name);
      const result = await recogniseBytes(bytes);
      assert.equal(result.format, "npy");
      assertTiling(result, bytes.length);
      assert.equal(result.tensors.length, 1);
      const t = tensorNamed(result, "array");
      assert.deepEqual(t.shape, want.shape);
      assert.equal(
        result.metadata?.descr,
        want.descr === "|V12" || Array.isArray(want.descr) ? "structured" : want.descr,
      );
      assert.equal(result.metadata?.fortranOrder, want.fortran);
      assert.equal(t.offset + t.length, bytes.length, "data runs to the end of the file");
      assert.equal(result.regions[0].name, "array npy header");
      assert.equal(result.regions[0].offset, 0);
      const dtype = DTYPE_OF[want.descr];
      if (t.length === 0) {
        assert.equal(result.regions.length, 1);
        return;
      }
      const region = regionNamed(result, "array");
      const data = bytes.subarray(region.offset, region.offset + region.length);
      if (dtype !== undefined) {
        assert.equal(t.dtype, dtype);
        assert.equal(region.dtype, dtype);
        if (dtype !== "C64") assert.deepEqual(decode(data, dtype, want.first.length), want.first);
        else assert.deepEqual([data.readFloatLE(0), data.readFloatLE(4)], want.first[0]);
        assert.deepEqual(region.shape, want.fortran ? [...want.shape].reverse() : want.shape);
      } else {
        assert.equal(region.kind, "raw");
        assert.equal(region.dtype, null);
      }
    });
  }

  test("big-endian f4 is a raw region noted big-endian, with its values intact", async () => {
    const bytes = fixture("npy-f4be.npy");
    const result = await recogniseBytes(bytes);
    const region = regionNamed(result, "array");
    assert.equal(region.kind, "raw");
    assert.equal(region.note, "big-endian f4");
    assert.equal(tensorNamed(result, "array").dtype, ">f4");
    assert.deepEqual(
      [0, 1, 2, 3].map((i) => bytes.readFloatBE(region.offset + i * 4)),
      expected.files["npy-f4be.npy"].first,
    );
  });

  test("fortran order keeps the dtype and reverses the region's shape", async () => {
    const result = await recogniseBytes(fixture("npy-fortran.npy"));
    const region = regionNamed(result, "array");
    assert.equal(region.dtype, "F32");
    assert.deepEqual(region.shape, [3, 2]);
    assert.match(region.note ?? "", /fortran order/);
    assert.deepEqual(tensorNamed(result, "array").shape, [2, 3]);
  });

  test("structured dtype: raw with a note", async () => {
    const result = await recogniseBytes(fixture("npy-structured.npy"));
    assert.equal(regionNamed(result, "array").note, "structured dtype");
    assert.equal(tensorNamed(result, "array").dtype, "structured");
  });

  test("versions 2.0 and 3.0", async () => {
    assert.equal((await recogniseBytes(fixture("npy-v2.npy"))).metadata?.version, "2.0");
    assert.equal((await recogniseBytes(fixture("npy-v3.npy"))).metadata?.version, "3.0");
    const utf8 = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'é': 1}", Buffer.alloc(4), 3);
    await refuse(utf8, "E_CORRUPT", /keys are not exactly/);
  });

  test("every truncation is E_TRUNCATED (raw below the 6-byte magic)", async () => {
    for (const name of ["npy-f4.npy", "npy-v2.npy", "npy-scalar.npy"]) {
      const bytes = fixture(name);
      for (let cut = 0; cut < bytes.length; cut++) {
        const part = bytes.subarray(0, cut);
        if (cut < 6) assert.equal((await recogniseBytes(part)).format, "raw");
        else await rejectsWith(recogniseBytes(part), "E_TRUNCATED", `${name} cut ${cut}: `);
      }
    }
  });
});

describe("npy: descrs", () => {
  const cases: [string, number, string | null, string | undefined][] = [
    ["<f4", 4, "F32", undefined],
    ["<f2", 2, "F16", undefined],
    ["<f8", 8, "F64", undefined],
    ["|i1", 1, "I8", undefined],
    ["<i2", 2, "I16", undefined],
    ["<i4", 4, "I32", undefined],
    ["<i8", 8, "I64", undefined],
    ["|u1", 1, "U8", undefined],
    ["<u2", 2, "U16", undefined],
    ["<u4", 4, "U32", undefined],
    ["<u8", 8, "U64", undefined],
    ["|b1", 1, "BOOL", undefined],
    ["<c8", 8, "C64", undefined],
    ["=f4", 4, "F32", "native byte order"],
    [">f4", 4, null, "big-endian f4"],
    [">i8", 8, null, "big-endian i8"],
    [">u1", 1, "U8", undefined],
    ["<c16", 16, null, "numpy <c16"],
    ["<f16", 16, null, "numpy <f16"],
    ["<U3", 12, null, "numpy <U3"],
    ["|S5", 5, null, "numpy |S5"],
    ["|V2", 2, null, "numpy |V2"],
    ["<M8[ns]", 8, null, "numpy <M8[ns]"],
  ];
  for (const [descr, itemsize, dtype, note] of cases) {
    test(`${descr} → ${dtype ?? "raw"}`, async () => {
      const bytes = npy(dict(descr, "(2, 3)"), Buffer.alloc(6 * itemsize, 7));
      const result = await recogniseBytes(bytes);
      assertTiling(result, bytes.length);
      const region = regionNamed(result, "array");
      assert.equal(region.length, 6 * itemsize);
      assert.equal(region.dtype, dtype);
      assert.equal(region.note, note);
    });
  }

  test("object arrays and unknown descrs are raw to the end of the file", async () => {
    for (const [descr, note] of [
      ["|O", "object array (pickled)"],
      ["<x4", "unknown descr <x4"],
      ["float32", "unknown descr float32"],
    ]) {
      const bytes = npy(dict(descr, "(3,)"), Buffer.from("pickled stuff"));
      const result = await recogniseBytes(bytes);
      const region = regionNamed(result, "array");
      assert.equal(region.note, note);
      assert.equal(region.offset + region.length, bytes.length);
    }
  });

  test("trailing bytes after the data are a raw region", async () => {
    const bytes = npy(dict("<f4", "(2,)"), Buffer.alloc(8 + 5));
    const result = await recogniseBytes(bytes);
    assert.deepEqual(
      result.regions.map((r) => [r.name, r.length]),
      [
        ["array npy header", 128],
        ["array", 8],
        ["trailing bytes", 5],
      ],
    );
  });
});

describe("npy: hostile headers", () => {
  test("versions", async () => {
    await refuse(npy(dict("<f4", "()"), Buffer.alloc(4), 4), "E_UNSUPPORTED", /version 4.0/);
    const minor = npy(dict("<f4", "()"), Buffer.alloc(4));
    minor[7] = 1;
    await refuse(minor, "E_UNSUPPORTED", /version 1.1/);
  });

  test("huge declared header lengths", async () => {
    await refuse(npy(dict("<f4", "()"), Buffer.alloc(4), 2, 0xffffffff), "E_LIMIT", /over the limit/);
    await refuse(npy(dict("<f4", "()"), Buffer.alloc(4), 1, 0xffff), "E_TRUNCATED", /runs past the end/);
    const error = await rejectsWith(
      recogniseNpy(bufferSource(npy(dict("<f4", "()"), Buffer.alloc(4))), { maxHeaderBytes: 10 }),
      "E_LIMIT",
    );
    assert.match(error.message, /over the limit of 10/);
  });

  test("the dict is parsed, never evaluated", async () => {
    await refuse(npy("__import__('os').system('true')"), "E_CORRUPT", /unexpected character/);
    await refuse(
      npy("{'descr': eval('1'), 'fortran_order': False, 'shape': ()}"),
      "E_CORRUPT",
      /unexpected character/,
    );
    await refuse(npy("[1, 2]"), "E_CORRUPT", /not a dict/);
    await refuse(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (),"), "E_CORRUPT", /expected/);
    await refuse(npy("{'descr': '<f4}"), "E_CORRUPT", /unterminated string|newline in string/);
    await refuse(npy("{1: 2}"), "E_CORRUPT", /key that is not a string/);
    await refuse(npy(`${"[".repeat(100)}${"]".repeat(100)}`), "E_LIMIT", /nested deeper/);
  });

  test("keys, fortran_order and shape", async () => {
    await refuse(npy("{'descr': '<f4', 'shape': ()}"), "E_CORRUPT", /keys are not exactly/);
    await refuse(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (), 'x': 1}"), "E_CORRUPT", /keys/);
    await refuse(npy(dict("<f4", "()", "0")), "E_CORRUPT", /fortran_order is not True or False/);
    await refuse(npy(dict("<f4", "[2]")), "E_CORRUPT", /shape is not a tuple/);
    await refuse(npy(dict("<f4", "(2)")), "E_CORRUPT", /shape is not a tuple/);
    await refuse(npy(dict("<f4", "(-2,)")), "E_CORRUPT", /non-negative integer/);
    await refuse(npy(dict("<f4", "(2.0,)")), "E_CORRUPT", /non-negative integer/);
    await refuse(npy(dict("<f4", "(9007199254740993,)")), "E_LIMIT", /over 2\^53/);
    await refuse(npy("{'descr': 5, 'fortran_order': False, 'shape': ()}"), "E_CORRUPT", /descr is neither/);
  });

  test("data sizes: overflow and past the end", async () => {
    await refuse(npy(dict("<f8", "(4294967296, 4294967296)")), "E_CORRUPT", /overflows/);
    await refuse(npy(dict("<f8", "(1048576, 1048576)")), "E_TRUNCATED", /run past the end/);
    await refuse(npy(dict("<f4", "(3,)"), Buffer.alloc(11)), "E_TRUNCATED", /run past the end/);
  });
});

describe("npz", () => {
  for (const name of ["npz-stored.npz", "npz-zip64.npz"]) {
    test(`${name}: stored members are tensors at their file offsets`, async () => {
      const bytes = fixture(name);
      const result = await recogniseBytes(bytes);
      assert.equal(result.format, "npz");
      assertTiling(result, bytes.length);
      const want = expected.files[name];
      assert.deepEqual(result.tensors.map((t) => t.name).sort(), Object.keys(want).sort());
      for (const [member, info] of Object.entries(want) as [
        string,
        { descr: string; shape: number[]; first: unknown[] },
      ][]) {
        const t = tensorNamed(result, member);
        const dtype = DTYPE_OF[info.descr];
        assert.equal(t.dtype, dtype);
        assert.deepEqual(t.shape, info.shape);
        const region = regionNamed(result, member);
        assert.equal(region.offset, t.offset);
        assert.equal(region.dtype, dtype);
        assert.deepEqual(
          decode(bytes.subarray(t.offset, t.offset + t.length), dtype, info.first.length),
          info.first,
        );
        // The npy header sits just before the data, inside the member.
        const header = regionNamed(result, `${member} npy header`);
        assert.equal(header.offset + header.length, t.offset);
        assert.equal(bytes.toString("latin1", header.offset, header.offset + 6), "\x93NUMPY");
      }
      assert.ok(result.regions.some((r) => r.name === "zip structure"));
    });
  }

  test("deflated members are raw regions noted deflated", async () => {
    const bytes = fixture("npz-deflated.npz");
    const result = await recogniseBytes(bytes);
    assert.equal(result.format, "npz");
    assertTiling(result, bytes.length);
    assert.deepEqual(result.tensors, []);
    for (const member of ["weights.npy", "bias.npy", "ids.npy", "mask.npy"]) {
      assert.equal(regionNamed(result, member).note, "deflated");
    }
    assert.deepEqual(result.metadata, { members: 4, stored: 0, compressed: 4 });
  });

  test("a zip that is not an npz is raw", async () => {
    const result = await recogniseBytes(fixture("zip-other.zip"));
    assert.equal(result.format, "raw");
    assert.equal(result.regions.length, 1);
  });

  test("every truncation is refused with a code", async () => {
    const bytes = fixture("npz-stored.npz");
    for (let cut = 4; cut < bytes.length; cut++) {
      await rejectsWith(recogniseBytes(bytes.subarray(0, cut)), ["E_TRUNCATED", "E_CORRUPT"], `cut ${cut}: `);
    }
  });

  test("two members claiming the same bytes are E_CORRUPT", async () => {
    const bytes = Buffer.from(fixture("npz-stored.npz"));
    // Point the second central directory record at the first member's local header.
    const first = bytes.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    const second = bytes.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]), first + 4);
    bytes.writeUInt32LE(bytes.readUInt32LE(first + 42), second + 42);
    bytes.copy(bytes, second + 16, first + 16, first + 28); // crc and sizes too
    const error = await rejectsWith(recogniseBytes(bytes), "E_CORRUPT");
    assert.match(error.message, /overlaps/);
  });

  test("a member whose npy header is broken is refused", async () => {
    const bytes = Buffer.from(fixture("npz-stored.npz"));
    const at = bytes.indexOf("{'descr'");
    bytes.write("!", at + 1, "latin1");
    await rejectsWith(recogniseBytes(bytes), "E_CORRUPT");
  });

  test("a central directory claiming more members than fit", async () => {
    const bytes = Buffer.from(fixture("npz-stored.npz"));
    const eocd = bytes.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
    bytes.writeUInt16LE(0xffff, eocd + 8);
    bytes.writeUInt16LE(0xffff, eocd + 10);
    const error = await quickly(() => rejectsWith(recogniseBytes(bytes), "E_CORRUPT"));
    assert.match(error.message, /cannot fit/);
  });
});
