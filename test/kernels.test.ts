/**
 * HIER's WebAssembly kernels against their TypeScript twins: the same inputs coded with
 * the kernels on and off must give identical payloads, and both decoders identical bytes
 * (the original), for every layout, on real, real-derived and generated data at edge
 * sizes. The kernels come from the build cache (`node scripts/build.ts --kernels`),
 * which this test fills first when it is missing.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { safetensorsData, toBf16, toF16 } from "../bench/lib/derived.ts";
import {
  blockTableShare,
  equalNeighbours,
  hierDecode,
  hierDecodeLent,
  hierEncode,
  neighbourShare,
  repeatsWorthAProbe,
} from "../src/codecs/hier/hier.ts";
import { histogram } from "../src/codecs/hier/huffman.ts";
import {
  type KernelExports,
  type Kernels,
  kernels,
  kernelsAvailable,
  setKernels,
} from "../src/codecs/hier/kernels.ts";
import { LAYOUTS } from "../src/codecs/hier/layouts.ts";
import type { CodecOptions } from "../src/codecs/types.ts";
import type { DTypeName } from "../src/common/dtype.ts";
import { generate, rng } from "../src/tools/gen.ts";
import { repeatedWords } from "./support.ts";

const root = join(import.meta.dirname, "..");
const data = join(root, "..", "shared", "data");

before(() => {
  execFileSync(process.execPath, [join(root, "scripts", "build.ts"), "--kernels"], { stdio: "inherit" });
});

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** Encodes with the kernels off and on, decodes each payload both ways; all must agree. */
function agree(raw: Uint8Array, options: CodecOptions, label: string): void {
  setKernels(false);
  const plain = Buffer.from(hierEncode(raw, options).payload);
  setKernels(true);
  const fast = Buffer.from(hierEncode(raw, options).payload);
  assert.equal(sha(fast), sha(plain), `${label}: the kernels' payload differs`);
  setKernels(false);
  const back = hierDecode(plain, raw.length);
  setKernels(true);
  const backFast = hierDecode(plain, raw.length);
  assert.ok(Buffer.from(back).equals(Buffer.from(raw)), `${label}: TypeScript decode differs from the input`);
  assert.ok(Buffer.from(backFast).equals(Buffer.from(raw)), `${label}: kernel decode differs from the input`);
  // Left in the kernels' memory (mmh -d): the same bytes, where the kernels take the chunk.
  const lent = hierDecodeLent(plain, raw.length);
  if (lent) assert.ok(Buffer.from(lent).equals(Buffer.from(raw)), `${label}: lent decode differs`);
  inInputArea(plain, raw, label);
  // Into the caller's memory at an odd place (a tensor's chunk inside a content buffer).
  for (const on of [false, true]) {
    setKernels(on);
    const into = shifted(new Uint8Array(raw.length), 3);
    const got = hierDecode(plain, raw.length, into);
    assert.ok(
      Buffer.from(got).equals(Buffer.from(raw)),
      `${label}: decode into odd memory differs (kernels ${on})`,
    );
  }
  setKernels(true);
}

/**
 * The payload read into the kernels' input area (KernelBatches, mmh -d -T 1), at an even
 * and an odd place with other bytes after it: decoded where it lies, the same bytes, and
 * the area as it was (a block's 8 bytes after it are zeroed for the decode, then put back).
 */
function inInputArea(payload: Uint8Array, raw: Uint8Array, label: string): void {
  const k = kernels();
  if (!k) return;
  const area = k.holdInput(payload.length + 80, 3 * raw.length + (64 << 10));
  assert.ok(area, "the input area is free between decodes");
  try {
    for (const at of [0, 3]) {
      area.fill(0xa5);
      area.set(payload, at);
      const before = Buffer.from(area);
      const placed = area.subarray(at, at + payload.length);
      assert.ok(k.inInput(placed));
      const got = hierDecodeLent(placed, raw.length) ?? hierDecode(placed, raw.length);
      assert.ok(
        Buffer.from(got).equals(Buffer.from(raw)),
        `${label}: decode in the input area differs (at ${at})`,
      );
      assert.ok(Buffer.from(area).equals(before), `${label}: decoding changed the input area (at ${at})`);
    }
  } finally {
    k.dropInput();
  }
}

/** An odd-offset copy, so neither path can count on alignment. */
function shifted(raw: Uint8Array, by: number): Uint8Array {
  const buffer = new Uint8Array(raw.length + by);
  buffer.set(raw, by);
  return buffer.subarray(by);
}

/** The kernels' Huffman lookups: up to 4 symbols, one, or up to 2 (the 12-bit width only). */
type Lookups = "quad" | "single" | "two";

/** The lookup table `lookups` needs beyond buildSingle's, built for `width`. */
function buildFor(k: Kernels, lookups: Lookups, width: number): void {
  if (lookups === "quad") k.x.buildQuad(k.at.single, width);
  else if (lookups === "two") k.x.buildTwo(k.at.single);
}

function decoderOf(k: Kernels, lookups: Lookups): KernelExports["decodeLanesQuad"] {
  return lookups === "quad"
    ? k.x.decodeLanesQuad
    : lookups === "two"
      ? k.x.decodeLanesTwo
      : k.x.decodeLanesSingle;
}

const realFiles = existsSync(data) ? readdirSync(data).filter((f) => f.endsWith(".safetensors")) : [];
// Edge sizes around the kernels' 16-element steps, their thresholds (64 bytes to decode,
// 4 KiB to encode) and the lanes.
const SIZES = [0, 1, 7, 63, 64, 65, 1000, 4095, 4096, 4097, 4111, 65536 + 13, 300_017];

describe("WebAssembly kernels", () => {
  test("are found and validated here (Node 24 has WebAssembly SIMD)", () => {
    assert.equal(kernelsAvailable(), true);
  });

  test("real F32 files, and their values rounded to BF16 and F16: same bytes both ways", () => {
    assert.ok(realFiles.length > 0, "../shared/data holds no real files");
    for (const file of realFiles) {
      const f32 = safetensorsData(join(data, file));
      agree(f32, { dtype: "F32" }, `${file} F32`);
      agree(f32, {}, `${file} detected`);
      agree(toBf16(f32), { dtype: "BF16" }, `${file} BF16`);
      agree(toF16(f32), { dtype: "F16" }, `${file} F16`);
      agree(shifted(toBf16(f32), 1), { dtype: "BF16", level: 1 }, `${file} BF16 unaligned`);
      agree(f32.subarray(0, 4096 * 4 + 12), { dtype: "I32" }, `${file} as I32 planes`);
      agree(f32.subarray(0, 4096 * 8), { dtype: "F64" }, `${file} as F64 planes`);
      agree(toBf16(f32), { dtype: "I16" }, `${file} BF16 as I16 planes`);
    }
  });

  test("the kernel path decodes into the caller's memory wherever it lies", () => {
    assert.ok(realFiles.length > 0, "../shared/data holds no real files");
    const f32 = safetensorsData(join(data, realFiles[0])).subarray(0, 1 << 19);
    for (const [raw, dtype] of [
      [f32, "F32"],
      [toBf16(f32), "BF16"],
      [toF16(f32), "F16"],
    ] as const) {
      const { payload } = hierEncode(raw, { dtype });
      for (const offset of [0, 1, 2, 3, 5]) {
        const into = shifted(new Uint8Array(raw.length), offset);
        const got = hierDecode(payload, raw.length, into);
        assert.equal(got, into, `${dtype} at offset ${offset}: decoded into fresh memory`);
        assert.ok(Buffer.from(into).equals(Buffer.from(raw)), `${dtype} at offset ${offset}: bytes differ`);
      }
      // With a head and a tail around the words (a chunk that starts inside an element).
      for (const head of [0, 1, 3]) {
        const cut = raw.subarray(head, raw.length - 1);
        const coded = hierEncode(cut, { dtype }).payload;
        const lent = hierDecodeLent(coded, cut.length);
        assert.ok(lent, `${dtype} head ${head}: the kernels did not take the chunk`);
        assert.ok(Buffer.from(lent).equals(Buffer.from(cut)), `${dtype} head ${head}: lent bytes differ`);
      }
    }
    // One stream stored or zstd-coded as is (layout 0, "bytes"): its words are moved into place.
    for (const raw of [
      generate({ kind: "random", size: 100_003 }),
      generate({ kind: "text", size: 100_003 }),
    ]) {
      const coded = hierEncode(raw, { layout: 0 }).payload;
      const lent = hierDecodeLent(coded, raw.length);
      assert.ok(lent && Buffer.from(lent).equals(Buffer.from(raw)), "layout 0: lent bytes differ");
    }
  });

  test("generated data of every gen dtype at edge sizes", () => {
    for (const dtype of ["BF16", "F16", "F32", "I8", "F8_E4M3"] as const) {
      for (const size of SIZES) {
        const raw = generate({ kind: "safetensors", dtype, size: size + 64, seed: size + 1 }).subarray(64);
        agree(raw, { dtype }, `${dtype} ${size}`);
        agree(raw, {}, `${dtype} ${size} detected`);
      }
    }
    for (const size of [4096, 100_003]) {
      agree(generate({ kind: "text", size }), {}, `text ${size}`);
      agree(generate({ kind: "random", size }), { dtype: "BF16" }, `random ${size}`);
      agree(new Uint8Array(size).fill(7), { dtype: "BF16" }, `constant ${size}`);
    }
  });

  test("every layout, each by a dtype that selects it or as detected", () => {
    const f32 = realFiles.length > 0 ? safetensorsData(join(data, realFiles[0])) : new Uint8Array(0);
    const source = f32.length > 0 ? f32 : generate({ kind: "safetensors", dtype: "F32", size: 1 << 20 });
    const dtypes: DTypeName[] = ["U16", "U32", "U64", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q8_1"];
    dtypes.push("Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "C64");
    for (const dtype of dtypes) {
      for (const size of [4096 * 3 + 5, 210 * 333, 500_000])
        agree(source.subarray(0, size), { dtype }, `${dtype} ${size}`);
    }
  });

  test("chunks with zstd- or context-coded streams decode on the kernel path, same bytes", async () => {
    const { kernelDecode } = await import("../src/codecs/hier/fused.ts");
    const f32 = realFiles.length > 0 ? safetensorsData(join(data, realFiles[0])) : new Uint8Array(0);
    const source = f32.length > 0 ? f32 : generate({ kind: "safetensors", dtype: "F32", size: 1 << 20 });
    // Rows repeated: zstd wins on the streams where order-0 Huffman cannot see the repeats.
    const row = toBf16(source.subarray(0, 4096));
    const repeated = new Uint8Array(256 * 1024);
    for (let at = 0; at < repeated.length; at += row.length)
      repeated.set(row.subarray(0, repeated.length - at), at);
    const seen = new Set<number>();
    for (const [raw, options, label] of [
      [repeated, { dtype: "BF16", level: 3 }, "repeated rows"],
      [toBf16(source.subarray(0, 1 << 20)), { dtype: "BF16", level: 19 }, "level 19"],
      [source.subarray(0, 1 << 19), { dtype: "F32", level: 19 }, "F32 level 19"],
    ] as const) {
      agree(raw, options, label);
      setKernels(true);
      const payload = hierEncode(raw, options).payload;
      const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
      const layout = LAYOUTS.find((l) => l.id === payload[1]);
      assert.ok(layout);
      const count = payload[3];
      const parts = [];
      let start = 8 + 5 * count + payload[2];
      for (let s = 0; s < count; s++) {
        const length = view.getUint32(8 + 5 * s + 1, true);
        parts.push({ method: payload[8 + 5 * s], start, length });
        seen.add(payload[8 + 5 * s]);
        start += length;
      }
      const n = Math.floor((raw.length - payload[2]) / layout.width);
      const out = new Uint8Array(n * layout.width);
      assert.equal(kernelDecode(layout, parts, payload, n, out), true, `${label}: not on the kernel path`);
      assert.ok(
        Buffer.from(out).equals(Buffer.from(raw.subarray(payload[2], payload[2] + out.length))),
        label,
      );
    }
    assert.ok(seen.has(3) && seen.has(4), `zstd and context streams both checked (methods ${[...seen]})`);
  });

  test("repeatsWorthAProbe: the kernel (a stream in its memory) gives the TypeScript answer", () => {
    const k = kernels();
    assert.ok(k);
    const next = rng(31);
    const streams: Uint8Array[] = [];
    for (const n of [64, 100, 2047, 2048, 5000]) {
      for (const symbols of [256, 24, 2]) {
        const s = new Uint8Array(n);
        for (let i = 0; i < n; i++) s[i] = next() < 0.25 && i > 0 ? s[i - 1] : Math.floor(next() * symbols);
        streams.push(s);
      }
    }
    // 40 and 41 repeated 8-byte words in 2 KiB of random bytes, around the threshold
    // (41 of 2041 positions), each right after its first occurrence.
    for (const copies of [40, 41]) streams.push(repeatedWords(copies, next));
    const answers = new Set<boolean>();
    for (const [index, s] of streams.entries()) {
      for (const offset of [0, 1, 5]) {
        k.begin(s.length + 64);
        const at = k.alloc(s.length + 16) + offset;
        const inKernels = k.u8().subarray(at, at + s.length);
        inKernels.set(s);
        const answer = repeatsWorthAProbe(inKernels);
        assert.equal(answer, repeatsWorthAProbe(s.slice()), `stream ${index} at +${offset}`);
        answers.add(answer);
      }
    }
    assert.equal(answers.size, 2);
  });

  test("equalNeighbours and countStrided (neighbourShare, blockTableShare) give the TypeScript counts", () => {
    const k = kernels();
    assert.ok(k);
    const next = rng(47);
    const streams: Uint8Array[] = [];
    // Sizes around the windows' and the vector steps' edges, and streams of three kinds:
    // near random, runs of a value (local structure), and a few skewed values.
    for (const n of [1, 2, 17, 255, 256, 4095, 16_383, 16_384, 16_385, 131_072, 131_073, 300_001]) {
      for (const kind of ["random", "runs", "skewed"]) {
        const s = new Uint8Array(n);
        for (let i = 0; i < n; i++) {
          if (kind === "runs") s[i] = i > 0 && next() < 0.6 ? s[i - 1] : Math.floor(next() * 40);
          else if (kind === "skewed") s[i] = Math.min(Math.floor(next() * 8), Math.floor(next() * 8)) + 120;
          else s[i] = Math.floor(next() * 256);
        }
        streams.push(s);
      }
    }
    const shares = new Set<boolean>();
    for (const [index, s] of streams.entries()) {
      const hist = histogram(s);
      const windows = s.length >= 16_384 ? 32 : 1;
      const length = windows === 1 ? s.length : 256;
      const step = Math.floor(s.length / windows);
      for (const offset of [0, 1, 5]) {
        k.begin(s.length + 64);
        const at = k.alloc(s.length + 16) + offset;
        const inKernels = k.u8().subarray(at, at + s.length);
        inKernels.set(s);
        const where = `stream ${index} (${s.length} bytes) at +${offset}`;
        if (s.length > 1) {
          assert.equal(
            k.x.equalNeighbours(inKernels.byteOffset, windows, length, step),
            equalNeighbours(s, windows, length, step),
            where,
          );
        }
        assert.equal(neighbourShare(inKernels, hist), neighbourShare(s.slice(), hist), where);
        shares.add(neighbourShare(s, hist) > 0);
        assert.equal(blockTableShare(inKernels), blockTableShare(s.slice()), where);
        for (const stride of [1, 3, 16]) {
          const expected = new Uint32Array(256);
          for (let i = 0; i < s.length; i += stride) expected[s[i]]++;
          const mem = k.u8();
          mem.fill(0, k.at.counts, k.at.counts + 1024);
          k.x.countStrided(inKernels.byteOffset, s.length, stride, k.at.counts);
          assert.deepEqual(
            new Uint32Array(mem.buffer, k.at.counts, 256),
            expected,
            `${where}, every ${stride}`,
          );
        }
      }
    }
    // Both answers of neighbourShare's bar came up.
    assert.equal(shares.size, 2);
  });

  test("every layout's split and merge give the TypeScript twins' streams", async () => {
    const { kernelSplit } = await import("../src/codecs/hier/fused.ts");
    const raw = generate({ kind: "safetensors", dtype: "F16", size: 1 << 18, seed: 9 });
    for (const layout of LAYOUTS) {
      // (20,003 elements: several of the fused splits' counting blocks, and a tail.)
      for (const count of [4096 / layout.width + 3, 5000, 20_003]) {
        const n = Math.floor(count);
        if (n * layout.width > raw.length) continue;
        const src = raw.subarray(0, n * layout.width);
        const streams = Array.from(
          { length: layout.streams },
          (_, k) => new Uint8Array(n * (layout.perElement?.[k] ?? 1)),
        );
        layout.split(new Uint8Array(src), n, streams);
        setKernels(true);
        const fast = kernelSplit(layout, src, 0, n);
        assert.ok(fast, `${layout.name}: no kernel split`);
        if (layout.splitCounting) {
          // The exponents counted as they are split: the TypeScript twin's counts.
          const counts = new Uint32Array(256);
          layout.splitCounting(
            new Uint8Array(src),
            n,
            streams.map((s) => new Uint8Array(s.length)),
            counts,
          );
          assert.deepEqual(fast.counts, counts, `${layout.name}: counts`);
        }
        for (let k = 0; k < layout.streams; k++)
          assert.ok(
            Buffer.from(fast.streams[k]).equals(Buffer.from(streams[k])),
            `${layout.name} stream ${k}`,
          );
        const back = new Uint8Array(n * layout.width);
        layout.merge(streams, n, back);
        assert.ok(Buffer.from(back).equals(Buffer.from(src)), `${layout.name}: TypeScript merge`);
      }
    }
  });

  test("every layout's merge kernel gives the TypeScript merge's bytes, on any stream bytes", async () => {
    const { kernelDecode } = await import("../src/codecs/hier/fused.ts");
    const { streamLength } = await import("../src/codecs/hier/layouts.ts");
    for (const layout of LAYOUTS) {
      for (const n of [Math.ceil(4096 / layout.width) + 5, 20_000 + 3]) {
        const lengths = Array.from({ length: layout.streams }, (_, s) => streamLength(layout, s, n));
        const total = lengths.reduce((a, b) => a + b, 0);
        // Stream bytes no split would give (an F16 exponent over 31, say): the twins still agree.
        const payload = generate({ kind: "random", size: total, seed: n + layout.id });
        const parts = [];
        let start = 0;
        for (const length of lengths) {
          parts.push({ method: 1, start, length });
          start += length;
        }
        const streams = parts.map((part) => payload.subarray(part.start, part.start + part.length));
        const expected = new Uint8Array(n * layout.width);
        layout.merge(streams, n, expected);
        const out = new Uint8Array(n * layout.width);
        setKernels(true);
        assert.equal(kernelDecode(layout, parts, payload, n, out), true, `${layout.name}: no kernel merge`);
        assert.ok(Buffer.from(out).equals(Buffer.from(expected)), `${layout.name} ${n}`);
      }
    }
  });

  test("the fused decode kernels (measured in bench/kernels.ts) give decode + merge's words", async () => {
    const { kernels } = await import("../src/codecs/hier/kernels.ts");
    const { huffmanEncode, histogram, prepareHuffmanBlock } = await import("../src/codecs/hier/huffman.ts");
    const k = kernels();
    assert.ok(k);
    const f32 =
      realFiles.length > 0
        ? safetensorsData(join(data, realFiles[0]))
        : generate({ kind: "random", size: 1 << 18 });
    let checked = 0;
    for (const count of [5, 4099, 100_001]) {
      const raw = new Uint8Array(f32.subarray(0, count * 4));
      const n = count;
      const layout = LAYOUTS[3];
      const streams = Array.from({ length: 4 }, () => new Uint8Array(n));
      layout.split(raw, n, streams);
      const block = huffmanEncode(streams[0], histogram(streams[0]));
      if (block[0] !== 2) continue;
      k.begin(16 * n + block.length + 1024);
      const mem = k.u8();
      const single = new Uint16Array(mem.buffer, k.at.single, 2048);
      const multi = new Int32Array(mem.buffer, k.at.multi, 2048);
      const lanes = new Int32Array(mem.buffer, k.at.lanes, 16);
      // Room for any block of n symbols (a Huffman block is smaller than n + 64 bytes).
      const blockAt = k.alloc(n + 1024);
      mem.set(block, blockAt);
      mem.fill(0, blockAt + block.length, blockAt + block.length + 8);
      const at = streams.map((s) => {
        const a = k.alloc(n);
        mem.set(s, a);
        return a;
      });
      const out = k.alloc(4 * n);
      const bits = prepareHuffmanBlock(block, n, single, multi, lanes);
      k.x.decodeLanesF32(
        blockAt,
        block.length,
        at[1],
        at[2],
        at[3],
        out,
        n,
        k.at.multi,
        k.at.single,
        bits,
        k.at.lanes,
      );
      assert.ok(Buffer.from(mem.subarray(out, out + 4 * n)).equals(Buffer.from(raw)), `decodeLanesF32, ${n}`);
      checked++;
      // BF16: the top halves of the same values; exponents decoded (which 0) and sign|mantissa decoded (which 1).
      const half = new Uint8Array(2 * n);
      for (let i = 0; i < n; i++) {
        half[2 * i] = raw[4 * i + 2];
        half[2 * i + 1] = raw[4 * i + 3];
      }
      const bf = [new Uint8Array(n), new Uint8Array(n)];
      LAYOUTS[1].split(half, n, bf);
      for (const which of [0, 1]) {
        const coded = huffmanEncode(bf[which], histogram(bf[which]));
        if (coded[0] !== 2) continue;
        mem.set(coded, blockAt);
        mem.fill(0, blockAt + coded.length, blockAt + coded.length + 8);
        mem.set(bf[1 - which], at[0]);
        const b = prepareHuffmanBlock(coded, n, single, multi, lanes);
        k.x.decodeLanesBf16(
          blockAt,
          coded.length,
          at[0],
          out,
          n,
          k.at.multi,
          k.at.single,
          b,
          k.at.lanes,
          which,
        );
        assert.ok(
          Buffer.from(mem.subarray(out, out + 2 * n)).equals(Buffer.from(half)),
          `decodeLanesBf16 ${which}, ${n}`,
        );
        checked++;
      }
    }
    assert.ok(checked >= 3, `only ${checked} fused decodes checked`);
  });

  test("with the input area held, a chunk that needs a larger arena decodes without growing the memory", () => {
    const k = kernels();
    if (!k) return;
    const raw = toBf16(
      safetensorsData(join(data, "lora-imdb-distilbert_adapter_model.safetensors")),
    ).subarray(0, 512 << 10);
    const { payload } = hierEncode(raw, { dtype: "BF16" });
    // An area that leaves only 4 KiB of arena in the memory as it is (earlier calls grew
    // it): far too little for the chunk, as a damaged record could ask for.
    const probe = k.holdInput(payload.length + 80, 0);
    assert.ok(probe);
    const spare = k.arenaRoom();
    k.dropInput();
    const area = k.holdInput(payload.length + 80 + Math.max(0, spare - 4096), 0);
    assert.ok(area && k.arenaRoom() <= 4096 + 64);
    try {
      const memory = k.u8().buffer;
      area.set(payload);
      const inArea = hierDecodeLent(area.subarray(0, payload.length), raw.length);
      const elsewhere = hierDecode(payload, raw.length);
      assert.ok(inArea === undefined, "the kernels leave it to the TypeScript path");
      assert.ok(Buffer.from(elsewhere).equals(Buffer.from(raw)));
      assert.ok(k.u8().buffer === memory, "the memory did not grow");
    } finally {
      k.dropInput();
    }
  });

  test("buildSingle, buildQuad, buildTwo and the decodeLanes kernels give huffman.ts's bytes", async () => {
    const { kernels } = await import("../src/codecs/hier/kernels.ts");
    const {
      checkHuffmanBlock,
      huffmanDecode,
      huffmanEncode,
      histogram,
      prepareHuffmanBlock,
      WIDE_TABLE_BITS,
    } = await import("../src/codecs/hier/huffman.ts");
    const k = kernels();
    assert.ok(k);
    const f32 =
      realFiles.length > 0
        ? safetensorsData(join(data, realFiles[0]))
        : generate({ kind: "random", size: 1 << 20 });
    const half = toBf16(f32);
    const exponents = new Uint8Array(half.length >> 1);
    const signs = new Uint8Array(half.length >> 1);
    LAYOUTS[1].split(half, exponents.length, [exponents, signs]);
    // Skewed streams: two symbols (1-bit codes, 4 a lookup), a geometric spread (codes up
    // to the 11-bit limit), and real exponents and sign|mantissa bytes.
    let seed = 7;
    const next = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    const two = Uint8Array.from({ length: 70_001 }, () => (next() < 0.9 ? 3 : 200));
    const geometric = Uint8Array.from({ length: 150_003 }, () =>
      Math.min(255, Math.floor(-Math.log2(next()))),
    );
    // Every code length from 1 to the 11-bit limit (a Fibonacci-like spread), and one
    // symbol that all but fills the block (1-bit code: up to 4 symbols a lookup).
    const fibonacci = Uint8Array.from({ length: 40_009 }, () => {
      let s = 0;
      while (s < 15 && next() < 0.5) s++;
      return s;
    });
    // Lanes that end far apart: the first half of 1-bit codes (4 symbols a lookup), the
    // rest of long ones, so the 4 lanes' bulk stops with the last lanes far from done.
    const uneven = Buffer.concat([two.subarray(0, 30_000), fibonacci.subarray(0, 30_001)]);
    const streams: [string, Uint8Array][] = [
      ["two symbols", two],
      ["uneven lanes", uneven],
      ["geometric", geometric],
      ["fibonacci", fibonacci],
      ["BF16 exponents", exponents],
      ["BF16 sign|mantissa", signs],
    ];
    // Lane and tail edges: lanes of 0 to 3 symbols (all decoded one at a time), lanes just
    // too short for the bulk loop (2 steps of 12 symbols) and just long enough, uneven last
    // lanes, the 2047/2048 switch between a table as wide as the longest code and the
    // 11-bit one (a copy of the loop each), and whole streams.
    const sizes = [1, 2, 3, 4, 5, 7, 8, 13, 95, 96, 97, 100, 101, 190, 2047, 2048, 2049, 4099, 65_537];
    let checked = 0;
    let wide = 0;
    let twos = 0;
    // The longest code seen in a block below 2048 symbols (whose table is that wide).
    let longest = 0;
    for (const [name, stream] of streams) {
      for (const n of [...sizes, stream.length]) {
        if (n > stream.length) continue;
        const symbols = stream.subarray(0, n);
        const block = huffmanEncode(symbols, histogram(symbols));
        if (block[0] !== 2) continue;
        const expected = new Uint8Array(n);
        huffmanDecode(block, expected);
        assert.ok(Buffer.from(expected).equals(Buffer.from(symbols)));
        k.begin(2 * n + block.length + (1 << 15));
        const mem: Uint8Array = k.u8();
        const single: Uint16Array = new Uint16Array(mem.buffer, k.at.single, 2048);
        const lanes: Int32Array = new Int32Array(mem.buffer, k.at.lanes, 16);
        const blockAt = k.alloc(block.length + 8);
        const out = k.alloc(n + 16);
        mem.set(block, blockAt);
        mem.fill(0, blockAt + block.length, blockAt + block.length + 8);
        // A guard after the output: the kernel writes n bytes, no more.
        mem.fill(0xa5, out + n, out + n + 16);
        // The one-symbol table built by TypeScript, then by the kernel from the lengths
        // checkHuffmanBlock read into the kernels' memory: the same entries.
        const bits = prepareHuffmanBlock(block, n, single, undefined, lanes);
        if (n < 2048) longest = Math.max(longest, bits);
        const typescript: Uint16Array = single.slice(0, 1 << bits);
        single.fill(0);
        const lengthsAt = k.alloc(256);
        assert.equal(checkHuffmanBlock(block, n, mem.subarray(lengthsAt, lengthsAt + 256), lanes), bits);
        k.x.buildSingle(lengthsAt, bits, k.at.single);
        assert.deepEqual(single.slice(0, 1 << bits), typescript, `${name}, ${n}: one-symbol table`);
        // The table HIER's width picks, and the 12-bit wide one (4 lookups a read) for
        // every block whose codes an 11-bit table takes, whatever its length.
        // And decodeLanesSingle (one symbol a lookup from the one-symbol table alone).
        // And at the wide width decodeLanesTwo (up to 2 symbols a lookup, buildTwo's table).
        const tables: [number, Lookups][] = [
          [bits, "quad"],
          [bits, "single"],
        ];
        if (bits === 11)
          tables.push([WIDE_TABLE_BITS, "quad"], [WIDE_TABLE_BITS, "single"], [WIDE_TABLE_BITS, "two"]);
        const decode = (width: number, lookups: Lookups) =>
          decoderOf(k, lookups)(blockAt, block.length, out, n, k.at.single, width, k.at.lanes);
        for (const [width, lookups] of tables) {
          const label = `${name}, ${n}, ${width} bits, ${lookups}`;
          mem.set(block, blockAt);
          mem.fill(0, out, out + n);
          k.x.buildSingle(lengthsAt, width, k.at.single);
          buildFor(k, lookups, width);
          decode(width, lookups);
          assert.ok(Buffer.from(mem.subarray(out, out + n)).equals(Buffer.from(expected)), label);
          assert.ok(
            mem.subarray(out + n, out + n + 16).every((b) => b === 0xa5),
            `${label}: wrote past n`,
          );
          assert.deepEqual(
            [lanes[5], lanes[6], lanes[7], lanes[8]],
            [lanes[1], lanes[2], lanes[3], lanes[4]],
          );
          checked++;
          if (width === WIDE_TABLE_BITS) wide++;
          if (lookups === "two") twos++;
          // A damaged bitstream: the kernel still writes inside the output alone (HIER then
          // finds the lanes ending elsewhere, or the chunk's CRC-32 differs).
          if (n >= 4099) {
            const damaged = Buffer.from(block);
            for (let i = damaged.length >> 1; i < damaged.length; i += 97) damaged[i] ^= 0x5a;
            mem.set(damaged, blockAt);
            decode(width, lookups);
            assert.ok(
              mem.subarray(out + n, out + n + 16).every((b) => b === 0xa5),
              `${label}: damaged`,
            );
          }
        }
      }
    }
    assert.ok(checked >= 45, `only ${checked} blocks checked`);
    assert.ok(wide >= 20, `only ${wide} blocks checked with the wide table`);
    assert.ok(twos >= 7, `only ${twos} blocks checked with decodeLanesTwo`);
    assert.equal(longest, 11, "no block with the longest codes");
  });

  test("decodeLanesQuad, decodeLanesSingle and decodeLanesTwo on hand-made blocks: longest codes, tiny lanes, lanes that overrun", async () => {
    const { kernels } = await import("../src/codecs/hier/kernels.ts");
    const { canonicalCodes, checkHuffmanBlock, fieldWidth, huffmanDecode, writeCodebook, WIDE_TABLE_BITS } =
      await import("../src/codecs/hier/huffman.ts");
    const k = kernels();
    assert.ok(k);
    // Symbols 0..9 with codes of 1..10 bits, 10 and 11 with 11 bits (the limit): complete.
    const lengths = new Uint8Array(256);
    for (let s = 0; s < 10; s++) lengths[s] = s + 1;
    lengths[10] = 11;
    lengths[11] = 11;
    const codes = new Uint16Array(256);
    canonicalCodes(lengths, codes);
    /**
     * A Huffman block of n symbols whose lanes hold `lanes` (symbol lists, coded LSB
     * first one after another) and whose lane table claims the lane ends `claimed` (bits
     * from the bitstream's start; by default where the lanes really end). The bitstream
     * is cut or zero-padded to the claimed end, so the block passes checkHuffmanBlock.
     */
    const handMade = (n: number, lanes: number[][], claimed?: number[]): Uint8Array => {
      const bits: number[] = [];
      const ends: number[] = [];
      for (const lane of lanes) {
        for (const s of lane) for (let b = 0; b < lengths[s]; b++) bits.push((codes[s] >>> b) & 1);
        ends.push(bits.length);
      }
      const laneEnds = claimed ?? ends;
      const end = laneEnds[3];
      const head = [2];
      for (let v = n; ; v = Math.floor(v / 128)) {
        if (v < 128) {
          head.push(v);
          break;
        }
        head.push((v & 0x7f) | 0x80);
      }
      const book = new Uint8Array(300);
      const bookEnd = writeCodebook(book, 0, lengths, 0, 11);
      const w = fieldWidth(n);
      const fields = laneEnds.flatMap((v) => Array.from({ length: w }, (_, i) => (v >>> (8 * i)) & 0xff));
      const data = new Uint8Array(Math.ceil(end / 8));
      for (let i = 0; i < end; i++) if (i < bits.length && bits[i]) data[i >>> 3] |= 1 << (i & 7);
      return Uint8Array.from([...head, ...book.subarray(0, bookEnd), ...fields, ...data]);
    };
    /**
     * Decodes `block` with the kernel at each table width twice, the memory around the
     * block (past its 8 zero bytes) and around the output first zeros then 0xff: the same
     * bytes and lane ends both times show that it read nothing outside the block and its
     * zero bytes, and the output's surroundings that it wrote nothing outside its n bytes.
     * Returns the output and whether every lane ended where the block says.
     */
    const decode = (
      block: Uint8Array,
      n: number,
      width: number,
      lookups: Lookups = "quad",
    ): { out: Uint8Array; ended: boolean } => {
      k.begin(block.length + n + 4096);
      const mem: Uint8Array = k.u8();
      const lanes: Int32Array = new Int32Array(mem.buffer, k.at.lanes, 16);
      const lengthsAt = k.alloc(256);
      const bits = checkHuffmanBlock(block, n, mem.subarray(lengthsAt, lengthsAt + 256), lanes);
      const tableBits = width === WIDE_TABLE_BITS && bits === 11 ? width : bits;
      const around = 64;
      const blockAt = k.alloc(around + block.length + 8 + around) + around;
      const out = k.alloc(around + n + around) + around;
      const results = [0x00, 0xff].map((fill) => {
        mem.fill(fill, blockAt - around, blockAt + block.length + 8 + around);
        mem.set(block, blockAt);
        mem.fill(0, blockAt + block.length, blockAt + block.length + 8);
        mem.fill(fill, out - around, out + n + around);
        k.x.buildSingle(lengthsAt, tableBits, k.at.single);
        buildFor(k, lookups, tableBits);
        decoderOf(k, lookups)(blockAt, block.length, out, n, k.at.single, tableBits, k.at.lanes);
        assert.ok(
          mem.subarray(out - around, out).every((b) => b === fill),
          "wrote before the output",
        );
        assert.ok(
          mem.subarray(out + n, out + n + around).every((b) => b === fill),
          "wrote past the output",
        );
        return {
          out: mem.slice(out, out + n),
          ends: [...lanes.subarray(5, 9)],
          ended:
            lanes[5] === lanes[1] && lanes[6] === lanes[2] && lanes[7] === lanes[3] && lanes[8] === lanes[4],
        };
      });
      assert.deepEqual(results[1].out, results[0].out, "the output depends on memory outside the block");
      assert.deepEqual(results[1].ends, results[0].ends, "the lane ends depend on memory outside the block");
      return results[0];
    };
    /** n symbols in HIER's 4 lanes, each symbol from `pick`. */
    const lanesOf = (n: number, pick: (i: number) => number): number[][] => {
      const q = Math.ceil(n / 4);
      return [0, 1, 2, 3].map((lane) =>
        Array.from({ length: Math.max(0, Math.min(n, (lane + 1) * q) - lane * q) }, (_, i) =>
          pick(lane * q + i),
        ),
      );
    };
    let checked = 0;
    // Then decodeLanesSingle (one symbol a lookup, no buildQuad), and decodeLanesTwo (up to
    // 2 symbols a lookup, buildTwo's table) at the wide width, the only one it takes.
    for (const [width, lookups] of [
      [11, "quad"],
      [WIDE_TABLE_BITS, "quad"],
      [11, "single"],
      [WIDE_TABLE_BITS, "single"],
      [WIDE_TABLE_BITS, "two"],
    ] as const) {
      // Valid blocks: mostly the longest codes (as many bits a symbol as a block can have),
      // then every code in turn; lanes of 0 to 3 symbols (decoded one at a time), lanes just
      // around the bulk loop's 2 steps, and long lanes (the 12-bit table for n >= 2048).
      for (const n of [1, 2, 3, 4, 5, 7, 11, 12, 13, 15, 95, 96, 97, 129, 2048, 2049, 5003]) {
        for (const pick of [(i: number) => 10 + (i % 2), (i: number) => (i * 7) % 12]) {
          const lanes = lanesOf(n, pick);
          const block = handMade(n, lanes);
          const expected = Uint8Array.from(lanes.flat());
          const ts = new Uint8Array(n);
          huffmanDecode(block, ts);
          assert.deepEqual(ts, expected);
          const { out, ended } = decode(block, n, width, lookups);
          const label = `${n} symbols, ${width} bits, ${lookups}`;
          assert.deepEqual(out, expected, label);
          assert.ok(ended, `${label}: lane ends`);
          checked++;
        }
      }
      // Hostile: lanes whose symbols run past the lane end the block claims (the longest
      // codes throughout, but the lane table says 1 to 4 codes a lane), past the block's
      // end, and a lane table that claims more bits than the lanes' symbols take.
      for (const n of [8, 97, 2049, 40_000]) {
        const lanes = lanesOf(n, () => 11);
        const claims = [
          [11, 22, 33, 44],
          [0, 0, 0, 11],
          [11 * Math.ceil(n / 4) - 1, 11 * Math.ceil(n / 4), 11 * Math.ceil(n / 4) + 3, 11 * n - 5],
        ];
        for (const claimed of claims) {
          const block = handMade(n, lanes, claimed);
          assert.throws(() => huffmanDecode(block, new Uint8Array(n)), { code: "E_CORRUPT" });
          const { ended } = decode(block, n, width, lookups);
          assert.ok(!ended, `${n} symbols, lanes claimed ${claimed}: ended where claimed`);
          checked++;
        }
        const short = lanesOf(n, () => 0);
        const block = handMade(n, short, [n, 2 * n, 3 * n, 11 * n]);
        assert.throws(() => huffmanDecode(block, new Uint8Array(n)), { code: "E_CORRUPT" });
        assert.ok(!decode(block, n, width, lookups).ended);
        checked++;
      }
    }
    assert.ok(checked >= 200, `only ${checked} blocks checked`);
  });

  test("Huffman encode: the kernel gives the TypeScript bitstream at every lane split", async () => {
    const { kernels } = await import("../src/codecs/hier/kernels.ts");
    const { huffmanEncode, huffmanEncodeInto, histogram } = await import("../src/codecs/hier/huffman.ts");
    const k = kernels();
    assert.ok(k);
    let state = 12345;
    const next = () => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state >>> 8;
    };
    // Few symbols (the pair table is used) and many (it is not); skewed so codes differ in
    // length; 256 symbols of counts halving (codes of the longest length, 11 bits); one
    // symbol (a single-symbol block) and near-random bytes (stored).
    const draws: [string, () => number][] = [
      ...[3, 17, 250].map((a): [string, () => number] => [
        `alphabet ${a}`,
        () => Math.min(next() % a, next() % a),
      ]),
      ["halving counts", () => Math.min(255, Math.clz32(next() | 1) * 8 + (next() & 7))],
      ["one symbol", () => 200],
      ["uniform", () => next() & 255],
      // Mostly one symbol, with bursts of 12 of 200 rare ones: short codes on the whole
      // (encodeLanes takes eight a step), but eight of a burst's pass one add's 56 bits.
      [
        "bursts",
        (() => {
          let i = 0;
          return () => (i++ % 64 < 12 ? 1 + (next() % 200) : 0);
        })(),
      ],
    ];
    for (const [label, draw] of draws) {
      for (const n of [...Array.from({ length: 40 }, (_, i) => i), 1001, 4099, 65_537, 262_147]) {
        const symbols = new Uint8Array(n);
        for (let i = 0; i < n; i++) symbols[i] = draw();
        const hist = histogram(symbols);
        const plain = huffmanEncode(symbols, hist);
        // At an aligned and at an odd address in the kernels' memory.
        for (const offset of [0, 3]) {
          k.begin(4 * n + 4096);
          const at = k.alloc(n + offset) + offset;
          k.u8().set(symbols, at);
          const inKernels = k.u8().subarray(at, at + n);
          assert.ok(k.holds(inKernels));
          const fast = huffmanEncode(inKernels, hist);
          assert.equal(sha(fast), sha(plain), `${label}, ${n} symbols at +${offset}`);
          // Into memory holding other bytes (HIER's payload, reused chunk to chunk): the same block.
          for (const source of [symbols, inKernels]) {
            const into = new Uint8Array(plain.length + 2).fill(0xa5);
            huffmanEncodeInto(source, hist, into.subarray(1, 1 + plain.length));
            assert.equal(sha(into.subarray(1, 1 + plain.length)), sha(plain), `${label}, ${n}: into`);
            assert.equal(into[0], 0xa5);
            assert.equal(into[plain.length + 1], 0xa5);
          }
        }
      }
    }
    assert.throws(
      () => huffmanEncodeInto(new Uint8Array(9), histogram(new Uint8Array(9)), new Uint8Array(2)),
      {
        code: "E_INTERNAL",
      },
    );
  });
});
