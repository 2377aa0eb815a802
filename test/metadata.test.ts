/**
 * The footer's one parser (src/container/metadata.ts): every check, in its order, with
 * its code; and that files written by MMH parse back to the table they were given.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseFooter } from "../src/container/metadata.ts";
import { compress, open } from "../src/index.ts";
import { generate } from "../src/tools/index.ts";

const tensor = { name: "w", dtype: "F32", shape: [2, 2], offset: 0, length: 16 };
const sha = "0".repeat(64);
const folder = (entries: unknown[], tensors: unknown[] = []) => ({ format: "folder", entries, tensors });
const file = (path: string, offset: number, size: number) => ({
  path,
  type: "file",
  size,
  offset,
  mode: 0o644,
  format: "raw",
  sha256: sha,
});

describe("parseFooter", () => {
  test("a minimal footer: format raw, no tensors, no entries; unknown keys are dropped", () => {
    assert.deepEqual(parseFooter({ future: 1 }, 0), { format: "raw", tensors: [], entries: [] });
    assert.deepEqual(parseFooter({ format: "safetensors", tensors: [tensor] }, 16), {
      format: "safetensors",
      tensors: [tensor],
      entries: [],
    });
  });

  const cases: [string, Record<string, unknown>, number, string, RegExp][] = [
    ["format not a string", { format: 3 }, 0, "E_CORRUPT", /format is not a string/],
    ["tensors not an array", { tensors: {} }, 0, "E_CORRUPT", /tensors is not an array/],
    ["a tensor not an object", { tensors: [3] }, 0, "E_CORRUPT", /tensor 0 is not an object/],
    ["a name not a string", { tensors: [{ ...tensor, name: 1 }] }, 16, "E_CORRUPT", /name is not a string/],
    ["a dtype not a string", { tensors: [{ ...tensor, dtype: null }] }, 16, "E_CORRUPT", /dtype/],
    ["a shape of fractions", { tensors: [{ ...tensor, shape: [1.5] }] }, 16, "E_CORRUPT", /shape/],
    ["a negative dimension", { tensors: [{ ...tensor, shape: [-1] }] }, 16, "E_CORRUPT", /shape/],
    ["an offset not an integer", { tensors: [{ ...tensor, offset: "0" }] }, 16, "E_CORRUPT", /offset/],
    ["a negative length", { tensors: [{ ...tensor, length: -1 }] }, 16, "E_CORRUPT", /length/],
    ["a tensor past the content", { tensors: [tensor] }, 15, "E_CORRUPT", /outside the content/],
    ["an unsafe offset", { tensors: [{ ...tensor, offset: 2 ** 53 }] }, 16, "E_CORRUPT", /offset/],
    ["a file not a string", { tensors: [{ ...tensor, file: 1 }] }, 16, "E_CORRUPT", /file is not a string/],
    ["tensorsOmitted negative", { tensorsOmitted: -1 }, 0, "E_CORRUPT", /tensorsOmitted/],
    ["tensorsOmitted with a table", { tensors: [tensor], tensorsOmitted: 1 }, 16, "E_CORRUPT", /not empty/],
    ["sourceMetadata an array", { sourceMetadata: [] }, 0, "E_CORRUPT", /sourceMetadata/],
    ["recogniseProblem a number", { recogniseProblem: 1 }, 0, "E_CORRUPT", /recogniseProblem/],
    ["a folder without entries", { format: "folder" }, 0, "E_CORRUPT", /no entries table/],
    ["entries not an array", { entries: {} }, 0, "E_CORRUPT", /entries is not an array/],
    ["an entry not an object", folder([1]), 0, "E_CORRUPT", /entry 0 is not an object/],
    ["an absolute path", folder([{ ...file("/a", 0, 0) }]), 0, "E_UNSAFE_PATH", /is absolute/],
    ["a .. segment", folder([{ ...file("a/../b", 0, 0) }]), 0, "E_UNSAFE_PATH", /"\.\." segment/],
    ["a duplicate", folder([file("a", 0, 0), file("a", 0, 0)]), 0, "E_UNSAFE_PATH", /duplicate/],
    ["entries out of order", folder([file("b", 0, 0), file("a", 0, 0)]), 0, "E_CORRUPT", /not sorted/],
    [
      "a path through a file",
      folder([file("a", 0, 0), file("a/b", 0, 0)]),
      0,
      "E_UNSAFE_PATH",
      /through the file/,
    ],
    ["a folder not listed", folder([file("a/b", 0, 0)]), 0, "E_CORRUPT", /is not in the archive/],
    ["a mode over 0o777", folder([{ ...file("a", 0, 0), mode: 0o4755 }]), 0, "E_CORRUPT", /mode/],
    ["a bad sha256", folder([{ ...file("a", 0, 0), sha256: "AB" }]), 0, "E_CORRUPT", /sha256/],
    ["a file past the content", folder([file("a", 0, 9)]), 8, "E_CORRUPT", /outside the content/],
    ["overlapping files", folder([file("a", 0, 4), file("b", 2, 2)]), 6, "E_CORRUPT", /overlaps/],
    ["a gap between files", folder([file("a", 0, 4), file("b", 5, 1)]), 6, "E_CORRUPT", /gap/],
    ["files short of the content", folder([file("a", 0, 4)]), 6, "E_CORRUPT", /hold 4 bytes/],
    [
      "a link out of the folder",
      folder([{ path: "l", type: "symlink", target: "../x" }]),
      0,
      "E_UNSAFE_PATH",
      /leaves the folder/,
    ],
    [
      "an unknown entry type",
      folder([{ path: "p", type: "fifo" }]),
      0,
      "E_UNSUPPORTED",
      /unknown entry type/,
    ],
    [
      "an archive tensor with no file",
      folder([file("a", 0, 16)], [tensor]),
      16,
      "E_CORRUPT",
      /names no file/,
    ],
    [
      "an archive tensor in no file",
      folder([file("a", 0, 16)], [{ ...tensor, file: "b" }]),
      16,
      "E_CORRUPT",
      /no file entry "b"/,
    ],
    [
      "an archive tensor outside its file",
      folder([file("a", 0, 8), file("b", 8, 8)], [{ ...tensor, file: "a" }]),
      16,
      "E_CORRUPT",
      /outside its file/,
    ],
  ];
  for (const [what, footer, length, code, message] of cases) {
    test(`${what}: ${code}`, () => {
      assert.throws(
        () => parseFooter(footer, length),
        (error: Error & { code?: string }) => error.code === code && message.test(error.message),
      );
    });
  }

  test("checks run in a fixed order: the first broken key in §4's order is the one reported", () => {
    const broken = { recogniseProblem: 1, sourceMetadata: [], tensors: 1, format: 2 };
    assert.throws(() => parseFooter(broken, 0), /format is not a string/);
    assert.throws(() => parseFooter({ ...broken, format: "raw" }, 0), /tensors is not an array/);
    assert.throws(() => parseFooter({ ...broken, format: "raw", tensors: [] }, 0), /sourceMetadata/);
  });

  test("a file MMH wrote parses to the tensor table it recognised", async () => {
    const model = generate({ kind: "safetensors", dtype: "BF16", size: 64 << 10, seed: 5 });
    await using mmh = await open(await compress(model));
    assert.equal(mmh.format, "safetensors");
    assert.ok(mmh.tensors.length > 1);
    for (const t of mmh.tensors) assert.ok(t.offset + t.length <= mmh.size);
  });
});
