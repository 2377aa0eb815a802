/**
 * DLTA modes 5 to 7 (docs/FORMAT.md §6.4): a difference from a low-rank prediction. The
 * rounding the prediction is defined by, against an independent implementation; merged
 * LoRAs coded against their base, every reader; and hostile block tables.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { codecByName } from "../src/codecs/registry.ts";
import { bufferSource } from "../src/common/source.ts";
import { encodeChunk } from "../src/engine/chunk.ts";
import {
  encodeBlocks,
  FACTOR_BF16,
  FACTOR_F32,
  type LowRankBlock,
  predict,
  roundToFormat,
} from "../src/engine/lowrank.ts";
import { MmhReader } from "../src/engine/reader.ts";
import { encodeDeltaParams, makeDelta } from "../src/engine/refs.ts";
import { compress, decompress, decompressStream, open, verify } from "../src/index.ts";
import { rng } from "../src/tools/gen.ts";
import { assemble, layoutOf, type Rec, rejectsWith, safetensorsOf, sha256 } from "./support.ts";

const dir = mkdtempSync(join(tmpdir(), "mmh-lowrank-"));
after(() => rmSync(dir, { recursive: true, force: true }));

// ---- rounding, against an independent implementation -----------------------------------------

const f64 = new Float64Array(1);
const u64 = new BigUint64Array(f64.buffer);

/**
 * x rounded to p significant bits (exponents from emin to emax), by truncating the double's
 * bits and comparing the two neighbours: another way to the same rounding than lowrank.ts's.
 * Returns the value (±Infinity on overflow).
 */
function reference(x: number, p: number, emin: number, emax: number): number {
  if (x === 0) return x;
  const a = Math.abs(x);
  f64[0] = a;
  const e = Math.max(Number((u64[0] >> 52n) & 0x7ffn) - 1023, emin);
  const quantum = 2 ** (e - p + 1);
  // Truncate: clear the bits of a below the quantum (exact), then the neighbour above.
  const lo = Math.trunc(a / quantum) * quantum;
  const hi = lo + quantum;
  const below = a - lo;
  const above = hi - a;
  let r = below < above ? lo : above < below ? hi : (lo / quantum) % 2 === 0 ? lo : hi;
  if (r >= 2 ** (emax + 1)) r = Number.POSITIVE_INFINITY;
  return x < 0 ? -r : r;
}

function bitsOf(value: number, mode: number): number {
  const f32 = new Float32Array([value]);
  const bits = new Uint32Array(f32.buffer)[0];
  if (mode === 5) return bits;
  if (mode === 6) return bits >>> 16;
  // F16 from a value that F16 holds exactly.
  const sign = value < 0 || Object.is(value, -0) ? 0x8000 : 0;
  const a = Math.abs(value);
  if (a === Number.POSITIVE_INFINITY) return sign | 0x7c00;
  if (a < 2 ** -14) return sign | (a / 2 ** -24);
  const e = Math.floor(Math.log2(a));
  const ee = a >= 2 ** (e + 1) ? e + 1 : a < 2 ** e ? e - 1 : e;
  return sign | ((ee + 15) << 10) | (a / 2 ** (ee - 10) - 1024);
}

describe("the prediction's rounding (FORMAT.md §6.4, modes 5 to 7)", () => {
  const formats: [mode: number, p: number, emin: number, emax: number][] = [
    [5, 24, -126, 127],
    [6, 8, -126, 127],
    [7, 11, -14, 15],
  ];

  test("random doubles of every magnitude round as the reference does, once", () => {
    const next = rng(41);
    for (const [mode, p, emin, emax] of formats)
      for (let i = 0; i < 60_000; i++) {
        const span = mode === 7 ? 40 : 300;
        const x = (next() - 0.5) * 2 ** Math.floor((next() - 0.5) * span);
        const want = bitsOf(reference(x, p, emin, emax), mode);
        assert.equal(roundToFormat(x, mode), want >>> 0, `mode ${mode}, x = ${x}`);
      }
    // F32 is Math.fround.
    for (let i = 0; i < 20_000; i++) {
      const x = (next() - 0.5) * 2 ** Math.floor((next() - 0.5) * 300);
      assert.equal(roundToFormat(x, 5), new Uint32Array(new Float32Array([x]).buffer)[0]);
    }
  });

  test("ties to even, overflow, subnormals and signed zeros", () => {
    // BF16: 1 + 2^-8 lies half-way between 1 and 1 + 2^-7: ties to 1 (even).
    assert.equal(roundToFormat(1 + 2 ** -8, 6), 0x3f80);
    assert.equal(roundToFormat(1 + 3 * 2 ** -8, 6), 0x3f82);
    // Once, not F32 then BF16: just above the tie rounds up, though F32 would round it to the tie.
    assert.equal(roundToFormat(1 + 2 ** -8 + 2 ** -40, 6), 0x3f81);
    // F16: 65504 is the largest; 65520 is the tie with 2^16 and rounds to it: infinity.
    assert.equal(roundToFormat(65504, 7), 0x7bff);
    assert.equal(roundToFormat(65519.99, 7), 0x7bff);
    assert.equal(roundToFormat(65520, 7), 0x7c00);
    assert.equal(roundToFormat(-1e300, 7), 0xfc00);
    assert.equal(roundToFormat(1e300, 6), 0x7f80);
    // Subnormals: 2^-24 is F16's smallest; half of it ties to 0, 1.5 times rounds to 2^-23.
    assert.equal(roundToFormat(2 ** -24, 7), 0x0001);
    assert.equal(roundToFormat(2 ** -25, 7), 0x0000);
    assert.equal(roundToFormat(-(2 ** -25), 7), 0x8000);
    assert.equal(roundToFormat(1.5 * 2 ** -24, 7), 0x0002);
    assert.equal(roundToFormat(2 ** -133, 6), 0x0001);
    assert.equal(roundToFormat(-0, 5), 0x80000000);
    assert.equal(roundToFormat(0, 6), 0);
  });

  test("the prediction adds the terms in k order in doubles, then rounds once", () => {
    // One element, base 1 (F32), rank 3: (1 + 2^-30) + (-2^-30) ... the sum of the products first.
    const base = Buffer.from(new Float32Array([1]).buffer);
    const u = [1, 1, 1];
    const v = [2 ** -25, 2 ** -25, -(2 ** -60)];
    const factors = Buffer.from(new Float32Array([...u, ...v]).buffer);
    const p = predict(base, [{ rows: 1, cols: 1, rank: 3, factor: FACTOR_F32 }], factors, 5, "t");
    // s = 2^-24 - 2^-60 (exact in a double); 1 + s rounds to 1 in F32 (below the tie 1 + 2^-24).
    assert.equal(p.readFloatLE(0), 1);
    // A NaN or infinite base element is predicted as itself; rank 0 too.
    const odd = Buffer.from(new Float32Array([Number.NaN, Number.NEGATIVE_INFINITY, -0]).buffer);
    const q = predict(
      odd,
      [
        { rows: 1, cols: 2, rank: 1, factor: FACTOR_F32 },
        { rows: 1, cols: 1, rank: 0, factor: 0 },
      ],
      Buffer.from(new Float32Array([1, 5, 5]).buffer),
      5,
      "t",
    );
    assert.ok(q.equals(odd));
  });
});

// ---- merged LoRAs, coded against their base ---------------------------------------------------

type Tensor = [name: string, dtype: string, shape: number[], bytes: Buffer];

function encode(values: Float32Array, dtype: string): Buffer {
  if (dtype === "F32") return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  const out = Buffer.alloc(values.length * 2);
  values.forEach((x, i) => {
    out.writeUInt16LE(roundToFormat(x, dtype === "BF16" ? 6 : 7), i * 2);
  });
  return out;
}

/**
 * A base of a few small layers (matrices and biases, several to a chunk, and one large
 * matrix over several chunks) and the same with a rank-8 LoRA merged into every matrix, in
 * float32 arithmetic as torch does, then cast to the dtype.
 */
function loraPair(dtype: string, seed: number): { base: Buffer; merged: Buffer } {
  const next = rng(seed);
  const normal = () => (next() + next() + next() - 1.5) * 2;
  const base: Tensor[] = [];
  const merged: Tensor[] = [];
  const shapes: [number, number][] = [
    [96, 96],
    [384, 96],
    [96, 384],
    [1024, 512],
  ];
  shapes.forEach(([m, n], l) => {
    const w = Float32Array.from({ length: m * n }, () => normal() * 0.05);
    const a = Float32Array.from({ length: 8 * n }, () => normal() * 0.1);
    const b = Float32Array.from({ length: m * 8 }, () => normal() * 0.02);
    const out = new Float32Array(m * n);
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let k = 0; k < 8; k++) s = Math.fround(s + Math.fround(b[i * 8 + k] * a[k * n + j]));
        out[i * n + j] = Math.fround(w[i * n + j] + Math.fround(s * 2));
      }
    const bias = Float32Array.from({ length: m }, () => normal() * 0.01);
    base.push(
      [`layer${l}.weight`, dtype, [m, n], encode(w, dtype)],
      [`layer${l}.bias`, dtype, [m], encode(bias, dtype)],
    );
    merged.push(
      [`layer${l}.weight`, dtype, [m, n], encode(out, dtype)],
      [`layer${l}.bias`, dtype, [m], encode(bias, dtype)],
    );
  });
  return { base: safetensorsOf(base), merged: safetensorsOf(merged) };
}

/** The mode of every DLTA record (the first byte of its params). */
function modesOf(file: Uint8Array): number[] {
  return layoutOf(file)
    .records.filter((r) => r.codec === "DLTA")
    .map((r) => file[r.offset + 36]);
}

async function* pipe(bytes: Uint8Array, piece = 65536): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += piece) yield bytes.subarray(i, i + piece);
}

async function streamed(bytes: Uint8Array, options = {}): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const part of decompressStream(pipe(bytes), options)) parts.push(part);
  return Buffer.concat(parts);
}

describe("DLTA modes 5 to 7: merged LoRAs against their base", () => {
  for (const [dtype, mode] of [
    ["F32", 5],
    ["BF16", 6],
    ["F16", 7],
  ] as const)
    test(`${dtype}: low-rank records, well under half the standalone size, every reader`, async () => {
      const { base, merged } = loraPair(dtype, 70 + mode);
      const basePath = join(dir, `base-${dtype}.safetensors`);
      writeFileSync(basePath, base);
      const alone = await compress(merged);
      const coded = await compress(merged, { base: basePath });
      const modes = modesOf(coded);
      assert.ok(modes.includes(mode), `modes ${modes}`);
      assert.ok(coded.length < 0.5 * alone.length, `${coded.length} vs ${alone.length}`);
      assert.ok(Buffer.from(await decompress(coded, { base: basePath })).equals(merged));
      assert.ok((await streamed(coded, { base: basePath })).equals(merged));
      const path = join(dir, `merged-${dtype}.mmh`);
      writeFileSync(path, coded);
      assert.equal((await verify(path, { base: basePath })).sha256, sha256(merged));
      // Random access: the large matrix spans several chunks, each decoded from its own record.
      const file = await open(path, { base: basePath });
      try {
        const big = merged.subarray(merged.length - (1024 * 512 + 1024) * (dtype === "F32" ? 4 : 2));
        const weight = Buffer.from(await file.readTensor("layer3.weight"));
        assert.ok(weight.equals(big.subarray(0, 1024 * 512 * (dtype === "F32" ? 4 : 2))));
        assert.ok(Buffer.from(await file.readTensor("layer1.weight")).length > 0);
      } finally {
        await file.close();
      }
      // No base, the wrong base.
      await rejectsWith(decompress(coded), "E_NOT_FOUND", "no base: ");
      await rejectsWith(decompress(coded, { base: path }), "E_BASE_MISMATCH", "wrong base: ");
      await rejectsWith(streamed(coded), "E_NOT_FOUND", "no base, pipe: ");
    });
});

// ---- hand-made records, sound and hostile ------------------------------------------------------

describe("DLTA modes 5 to 7: hand-made records", () => {
  const rows = 16;
  const cols = 24;
  const next = rng(90);
  const baseValues = Float32Array.from({ length: rows * cols }, () => (next() - 0.5) * 0.1);
  const u = Float32Array.from({ length: rows * 2 }, () => next() - 0.5);
  const v = Float32Array.from({ length: 2 * cols }, () => (next() - 0.5) * 0.01);
  const tuned = baseValues.map((x, idx) => {
    const i = Math.floor(idx / cols);
    const j = idx % cols;
    return x + u[i * 2] * v[j] + u[i * 2 + 1] * v[cols + j] + (next() - 0.5) * 1e-6;
  });
  const baseBytes = Buffer.from(baseValues.buffer);
  const raw = Buffer.from(tuned.buffer);
  const basePath = join(dir, "hand-base.bin");
  writeFileSync(basePath, baseBytes);
  const factors = Buffer.from(new Float32Array([...u, ...v]).buffer);

  function record(
    blocks: LowRankBlock[] = [{ rows, cols, rank: 2, factor: FACTOR_F32 }],
    options: { factorBytes?: Buffer; table?: Buffer; mode?: number } = {},
  ): Rec {
    const mode = options.mode ?? 5;
    const facts = options.factorBytes ?? factors;
    const p = predict(baseBytes, [{ rows, cols, rank: 2, factor: FACTOR_F32 }], factors, 5, "t");
    const diff = makeDelta(raw, p, 4);
    const inner = encodeChunk(diff, codecByName("zstd"), 3);
    return {
      raw,
      codec: "DLTA",
      params: encodeDeltaParams(
        {
          mode,
          baseSha256: sha256(baseBytes),
          baseOffset: 0,
          inner: inner.codec,
          innerParams: new Uint8Array(0),
        },
        options.table ?? encodeBlocks(blocks),
      ),
      payload: Buffer.concat([facts, inner.payload]),
    };
  }

  test("a sound record decodes, front to back and by random access", async () => {
    const file = assemble([record()]);
    assert.ok(Buffer.from(await decompress(file, { base: basePath })).equals(raw));
    const reader = await MmhReader.open(bufferSource(file), basePath);
    try {
      assert.ok(Buffer.from(await reader.readRange(100, 200)).equals(raw.subarray(100, 300)));
    } finally {
      await reader.close();
    }
  });

  test("hostile block tables and factors are E_CORRUPT", async () => {
    const nan = Buffer.from(factors);
    nan.writeFloatLE(Number.NaN, 8);
    const inf = Buffer.from(factors);
    inf.writeFloatLE(Number.POSITIVE_INFINITY, factors.length - 4);
    const hugeRows = encodeBlocks([{ rows: 0xffffffff, cols: 0xffffffff, rank: 2, factor: FACTOR_F32 }]);
    const bad: [string, Rec, RegExp][] = [
      ["no block table", record(undefined, { table: Buffer.alloc(0) }), /no block table/],
      ["an empty block table", record(undefined, { table: Buffer.from([0, 0]) }), /table is empty/],
      [
        "a table longer than the params",
        record(undefined, { table: encodeBlocks([{ rows, cols, rank: 2, factor: 0 }]).subarray(0, 8) }),
        /runs past the params/,
      ],
      ["rows x cols over 2^53", record(undefined, { table: hugeRows }), /more than the record/],
      [
        "blocks short of R",
        record([{ rows: rows - 1, cols, rank: 2, factor: FACTOR_F32 }]),
        /not the record/,
      ],
      [
        "blocks past R",
        record([
          { rows, cols, rank: 2, factor: FACTOR_F32 },
          { rows: 1, cols: 1, rank: 0, factor: 0 },
        ]),
        /more than the record/,
      ],
      ["a block of no rows", record([{ rows: 0, cols, rank: 0, factor: 0 }]), /no rows or columns/],
      [
        "a rank over the block",
        record([{ rows: 1, cols: rows * cols, rank: 2, factor: FACTOR_F32 }]),
        /rank 2 over/,
      ],
      ["factor type 2", record([{ rows, cols, rank: 2, factor: 2 }]), /factor type 2/],
      [
        "a rank-0 block with a factor type",
        record([{ rows, cols, rank: 0, factor: FACTOR_BF16 }]),
        /of rank 0 has factor type/,
      ],
      [
        "factors past the payload",
        record([{ rows, cols, rank: 16, factor: FACTOR_F32 }], { factorBytes: Buffer.alloc(0) }),
        /factors run past the payload/,
      ],
      ["a NaN factor", record(undefined, { factorBytes: nan }), /not finite/],
      ["an infinite factor", record(undefined, { factorBytes: inf }), /not finite/],
      ["mode 6 on F32 blocks (too few elements)", record(undefined, { mode: 6 }), /not the record/],
      ["mode 11", record(undefined, { mode: 11 }), /mode 11 is not 0 to 10/],
    ];
    for (const [what, rec, message] of bad) {
      const file = assemble([rec]);
      const error = await rejectsWith(decompress(file, { base: basePath }), "E_CORRUPT", `${what}: `);
      assert.match(error.message, message, what);
      const reader = await MmhReader.open(bufferSource(file), basePath);
      try {
        await rejectsWith(reader.readRange(0, raw.length), "E_CORRUPT", `${what}, random access: `);
      } finally {
        await reader.close();
      }
    }
  });

  test("wrong factors decode to other bytes: the raw CRC-32 catches them", async () => {
    const other = Buffer.from(factors);
    other.writeFloatLE(0.25, 0);
    await rejectsWith(
      decompress(assemble([record(undefined, { factorBytes: other })]), { base: basePath }),
      "E_CHECKSUM",
    );
  });
});
