/**
 * DLTA modes 8 to 10 (docs/FORMAT.md §6.4): zigzag differences grouped by the base's
 * exponent. Checkpoint-like files against their base, every reader; hand-made records,
 * sound and hostile.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { codecByName } from "../src/codecs/registry.ts";
import { bufferSource } from "../src/common/source.ts";
import { encodeChunk } from "../src/engine/chunk.ts";
import { encodeGroups, type Group, planGroups, splitGroups } from "../src/engine/grouped.ts";
import { roundToFormat } from "../src/engine/lowrank.ts";
import { MmhReader } from "../src/engine/reader.ts";
import { encodeDeltaParams, makeDelta } from "../src/engine/refs.ts";
import { compress, decompress, decompressStream, open } from "../src/index.ts";
import { rng } from "../src/tools/gen.ts";
import { assemble, layoutOf, type Rec, rejectsWith, safetensorsOf, sha256 } from "./support.ts";

const dir = mkdtempSync(join(tmpdir(), "mmh-grouped-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function encode(values: Float64Array, dtype: string): Buffer {
  const mode = dtype === "F32" ? 5 : dtype === "BF16" ? 6 : 7;
  const width = dtype === "F32" ? 4 : 2;
  const out = Buffer.alloc(values.length * width);
  values.forEach((x, i) => {
    if (width === 4) out.writeUInt32LE(roundToFormat(x, mode), i * 4);
    else out.writeUInt16LE(roundToFormat(x, mode), i * 2);
  });
  return out;
}

/** Weights of many magnitudes, and the same after one step that moves each by about 1e-3 of 0.05, in value. */
function checkpointPair(dtype: string, seed: number): { base: Buffer; next: Buffer } {
  const next = rng(seed);
  const normal = () => (next() + next() + next() - 1.5) * 2;
  const n = 200_000;
  const w = Float64Array.from({ length: n }, () => normal() * 0.05);
  const stepped = w.map((x) => x + (next() < 0.5 ? -1 : 1) * 5e-5 * (0.5 + next()));
  return {
    base: safetensorsOf([["w", dtype, [n / 100, 100], encode(w, dtype)]]),
    next: safetensorsOf([["w", dtype, [n / 100, 100], encode(stepped, dtype)]]),
  };
}

const modesOf = (file: Uint8Array) =>
  layoutOf(file)
    .records.filter((r) => r.codec === "DLTA")
    .map((r) => file[r.offset + 36]);

async function streamed(bytes: Uint8Array, options = {}): Promise<Buffer> {
  async function* pipe() {
    for (let i = 0; i < bytes.length; i += 65536) yield bytes.subarray(i, i + 65536);
  }
  const parts: Uint8Array[] = [];
  for await (const part of decompressStream(pipe(), options)) parts.push(part);
  return Buffer.concat(parts);
}

describe("DLTA modes 8 to 10: a step of training against the checkpoint before", () => {
  for (const [dtype, mode] of [
    ["F32", 8],
    ["BF16", 9],
    ["F16", 10],
  ] as const)
    test(`${dtype}: grouped records, smaller than the plain zigzag difference, every reader`, async () => {
      const { base, next } = checkpointPair(dtype, 30 + mode);
      const basePath = join(dir, `base-${dtype}.safetensors`);
      writeFileSync(basePath, base);
      const coded = await compress(next, { base: basePath });
      assert.ok(modesOf(coded).includes(mode), `modes ${modesOf(coded)}`);
      assert.ok(Buffer.from(await decompress(coded, { base: basePath })).equals(next));
      assert.ok((await streamed(coded, { base: basePath })).equals(next));
      const path = join(dir, `next-${dtype}.mmh`);
      writeFileSync(path, coded);
      const file = await open(path, { base: basePath });
      try {
        const w = Buffer.from(await file.readTensor("w"));
        assert.ok(next.subarray(next.length - w.length).equals(w));
      } finally {
        await file.close();
      }
      await rejectsWith(decompress(coded), "E_NOT_FOUND", "no base: ");
      await rejectsWith(decompress(coded, { base: path }), "E_BASE_MISMATCH", "wrong base: ");
    });
});

describe("DLTA modes 8 to 10: hand-made records", () => {
  const next = rng(5);
  const n = 2048;
  const baseValues = Float32Array.from({ length: n }, (_, i) => (next() - 0.5) * 2 ** -(i % 5));
  const tuned = baseValues.map((x) => x + (next() - 0.5) * 1e-4);
  const baseBytes = Buffer.from(baseValues.buffer);
  const raw = Buffer.from(tuned.buffer);
  const basePath = join(dir, "hand-base.bin");
  writeFileSync(basePath, baseBytes);
  const diff = makeDelta(raw, baseBytes, 4);
  const { map, count } = planGroups(baseBytes, 8);
  const parts = splitGroups(diff, baseBytes, 8, map, count);
  const coded = parts.map((p) => encodeChunk(p, codecByName("zstd"), 3));
  const goodGroups: Group[] = coded.map((c) => ({
    codec: c.codec,
    params: new Uint8Array(0),
    length: c.payload.length,
  }));
  const payload = Buffer.concat(coded.map((c) => c.payload));

  function record(
    options: {
      groups?: Group[];
      table?: Buffer;
      inner?: string;
      mode?: number;
      payload?: Buffer;
      tail?: Buffer;
    } = {},
  ): Rec {
    const table = options.table ?? encodeGroups(8, map, options.groups ?? goodGroups);
    return {
      raw,
      codec: "DLTA",
      params: encodeDeltaParams(
        {
          mode: options.mode ?? 8,
          baseSha256: sha256(baseBytes),
          baseOffset: 0,
          inner: options.inner ?? "NONE",
          innerParams: options.tail ?? new Uint8Array(0),
        },
        table,
      ),
      payload: options.payload ?? payload,
    };
  }

  test("the writer's groups: each exponent of 1% or more its own, the rest in group 0", () => {
    assert.ok(count >= 5, `${count} groups`);
    assert.equal(
      parts.reduce((sum, p) => sum + p.length, 0),
      raw.length,
    );
  });

  test("a sound record decodes, front to back and by random access", async () => {
    const file = assemble([record()]);
    assert.ok(Buffer.from(await decompress(file, { base: basePath })).equals(raw));
    const reader = await MmhReader.open(bufferSource(file), basePath);
    try {
      assert.ok(Buffer.from(await reader.readRange(1000, 500)).equals(raw.subarray(1000, 1500)));
    } finally {
      await reader.close();
    }
  });

  test("hostile group tables are refused", async () => {
    const badMap = Buffer.from(encodeGroups(8, map, goodGroups));
    badMap[2 + 5] = count;
    const zeroCount = Buffer.from(encodeGroups(8, map, goodGroups));
    zeroCount.writeUInt16LE(0, 0);
    const bigCount = Buffer.from(encodeGroups(8, map, goodGroups));
    bigCount.writeUInt16LE(257, 0);
    const shortLengths = goodGroups.map((g, i) => (i === 0 ? { ...g, length: g.length - 1 } : g));
    const overLengths = goodGroups.map((g, i) => (i === 0 ? { ...g, length: g.length + 1 } : g));
    const swapped = [...goodGroups].reverse();
    const bad: [string, Rec, string, RegExp][] = [
      ["an inner codec other than NONE", record({ inner: "ZSTD" }), "E_CORRUPT", /not NONE/],
      ["no group table", record({ table: Buffer.alloc(10) }), "E_CORRUPT", /no group table/],
      ["a group count of 0", record({ table: zeroCount }), "E_CORRUPT", /group count 0/],
      ["a group count over 256", record({ table: bigCount }), "E_CORRUPT", /group count 257/],
      ["a map byte not below G", record({ table: badMap }), "E_CORRUPT", /maps to group/],
      [
        "a table cut short",
        record({ table: encodeGroups(8, map, goodGroups).subarray(0, 270) }),
        "E_CORRUPT",
        /runs past/,
      ],
      ["params after the table", record({ tail: Buffer.from([1]) }), "E_CORRUPT", /past the group table/],
      ["lengths short of S", record({ groups: shortLengths }), "E_CORRUPT", /not \d+/],
      ["lengths past S", record({ groups: overLengths }), "E_CORRUPT", /past the payload/],
      [
        "a group codec DUPE",
        record({ groups: goodGroups.map((g) => ({ ...g, codec: "DUPE" })) }),
        "E_CORRUPT",
        /not a codec/,
      ],
      [
        "a group codec unknown",
        record({ groups: goodGroups.map((g) => ({ ...g, codec: "QQQQ" })) }),
        "E_UNSUPPORTED",
        /QQQQ/,
      ],
      ["groups in the wrong order (lengths)", record({ groups: swapped }), "E_CORRUPT", /group/],
      ["mode 11", record({ mode: 11 }), "E_CORRUPT", /mode 11 is not 0 to 10/],
    ];
    for (const [what, rec, code, message] of bad) {
      const file = assemble([rec]);
      const error = await rejectsWith(decompress(file, { base: basePath }), code as "E_CORRUPT", `${what}: `);
      assert.match(error.message, message, what);
      const reader = await MmhReader.open(bufferSource(file), basePath);
      try {
        await rejectsWith(reader.readRange(0, raw.length), code as "E_CORRUPT", `${what}, random access: `);
      } finally {
        await reader.close();
      }
    }
  });

  test("a group with no elements may not carry a payload", async () => {
    // Exponent field 0 (zeros, subnormals) does not occur in this base: a group for it is empty.
    const withEmpty = Uint8Array.from(map, (g) => g + 1);
    const empty: Group = { codec: "NONE", params: new Uint8Array(0), length: 0 };
    const shifted = Uint8Array.from(withEmpty);
    shifted[0] = 0;
    const sound = record({ table: encodeGroups(8, shifted, [empty, ...goodGroups]) });
    // Exponent 0 maps to group 0, which holds nothing: sound, with group 0 empty.
    assert.ok(Buffer.from(await decompress(assemble([sound]), { base: basePath })).equals(raw));
    const bytes = Buffer.from([1, 2, 3]);
    const hostile = record({
      table: encodeGroups(8, shifted, [
        { codec: "NONE", params: new Uint8Array(0), length: 3 },
        ...goodGroups,
      ]),
      payload: Buffer.concat([bytes, payload]),
    });
    const error = await rejectsWith(decompress(assemble([hostile]), { base: basePath }), "E_CORRUPT");
    assert.match(error.message, /no elements but a payload/);
  });
});
