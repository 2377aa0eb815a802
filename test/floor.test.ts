/**
 * The floor `auto` keeps: byte grouping + zstd among its candidates, LZ coded whole when a
 * chunk's values repeat far apart, and HIER's streams tried with zstd where they have
 * local structure that order-0 Huffman cannot see. Each case compares sizes the codecs
 * produce on generated data shaped like the real cases (per-channel scales, dead
 * channels, repeated rows), and every result is decoded again.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { safetensorsData, toBf16, toF16 } from "../bench/lib/derived.ts";
import { brotliCodec } from "../src/codecs/brotli.ts";
import { detectLayout, hierCodec } from "../src/codecs/hier/hier.ts";
import { histogram, huffmanSizeFromHistogram } from "../src/codecs/hier/huffman.ts";
import { codecById } from "../src/codecs/registry.ts";
import { zstdCodec } from "../src/codecs/zstd.ts";
import { repeatShare } from "../src/common/repeats.ts";
import { type AutoStats, chooseCodecs, encodeAuto, encodeChoices } from "../src/engine/auto.ts";
import { decodeChunk, type EncodedChunk, encodeChunk } from "../src/engine/chunk.ts";
import { compress, decompress } from "../src/index.ts";
import { gaussian, rng } from "../src/tools/gen.ts";
import { generate } from "../src/tools/index.ts";
import { throwsWith } from "./support.ts";

const size = (c: EncodedChunk) => c.header.length + c.payload.length;

function roundTrips(raw: Uint8Array, chunk: EncodedChunk): void {
  const params = chunk.header.subarray(36);
  const back = decodeChunk(chunk.codec, params, chunk.payload, raw.length, chunk.rawCrc, "test");
  assert.deepEqual(Buffer.from(back), Buffer.from(raw));
}

/**
 * FP16 conv weights with batch norm folded in: each output channel (cin * 9 weights) has
 * its own scale, spread over two octaves either way, and `dead` of the channels a scale
 * near zero (their weights fall to FP16 subnormals), as weight decay leaves them.
 */
function convF16(channels: number, cin: number, dead: number, seed: number): Uint8Array {
  const next = rng(seed);
  const normal = gaussian(next);
  const per = cin * 9;
  const out = new Float16Array(channels * per);
  for (let c = 0; c < channels; c++) {
    const scale = next() < dead ? 1e-4 * 0.05 : 0.05 * 2 ** (4 * next() - 2);
    for (let i = 0; i < per; i++) out[c * per + i] = normal() * scale;
  }
  return new Uint8Array(out.buffer);
}

/** F32 weights whose rows repeat rows up to `reach` bytes back: far beyond a 16 KiB sample. */
function repeatedRowsF32(rows: number, cols: number, reach: number, seed: number): Uint8Array {
  const next = rng(seed);
  const normal = gaussian(next);
  const out = new Float32Array(rows * cols);
  const back = Math.floor(reach / (cols * 4));
  for (let r = 0; r < rows; r++) {
    if (r >= back && next() < 0.6) {
      const from = r - 1 - Math.floor(next() * back);
      out.copyWithin(r * cols, from * cols, from * cols + cols);
    } else for (let c = 0; c < cols; c++) out[r * cols + c] = normal() * 0.02;
  }
  return new Uint8Array(out.buffer);
}

/** Byte grouping + zstd of one chunk: HIER with 2- or 4-byte planes, every plane coded with zstd. */
const grouping = (raw: Uint8Array, width: 2 | 4, level = 3) =>
  encodeChunk(raw, hierCodec, level, null, undefined, width === 2 ? 4 : 5);

describe("byte grouping through HIER's plane layouts", () => {
  test("layouts 4 and 5 forced: every stream zstd or smaller, and decodes", () => {
    const raw = convF16(64, 64, 0.15, 1);
    for (const width of [2, 4] as const) {
      const chunk = grouping(raw, width);
      assert.equal(chunk.codec, "HIER");
      assert.equal(chunk.payload[1], width === 2 ? 4 : 5, "the payload names the planes layout");
      roundTrips(raw, chunk);
    }
  });

  test("an unknown forced layout is E_BAD_OPTION", () => {
    throwsWith(() => hierCodec.encode(new Uint8Array(64), { layout: 200 }), "E_BAD_OPTION");
  });
});

describe("HIER streams with local structure", () => {
  test("FP16 conv weights with per-channel scales: HIER is not larger than byte grouping + zstd", () => {
    for (const dead of [0, 0.15]) {
      const raw = convF16(56, 128, dead, 7 + dead * 100);
      const hier = encodeChunk(raw, hierCodec, 3, "F16");
      roundTrips(raw, hier);
      const best = Math.min(size(grouping(raw, 2)), size(grouping(raw, 4)));
      assert.ok(size(hier) <= best * 1.005, `dead ${dead}: HIER ${size(hier)} against grouping ${best}`);
    }
  });
});

/**
 * BF16 weights of tensors with other scales in one chunk: Gaussian values, a part of the
 * chunk per scale. Within a part the exponent bytes are i.i.d. (no matches for zstd); their
 * statistics change from part to part.
 */
function scaledBf16(scales: readonly number[], n: number, seed: number): Uint8Array {
  const normal = gaussian(rng(seed));
  const f32 = new Float32Array(n);
  const per = n / scales.length;
  for (let i = 0; i < n; i++) f32[i] = normal() * scales[Math.floor(i / per)];
  const bits = new Uint32Array(f32.buffer);
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) out[i] = (bits[i] + 0x7fff + ((bits[i] >>> 16) & 1)) >>> 16;
  return new Uint8Array(out.buffer);
}

describe("HIER streams whose statistics change along them", () => {
  test("tensors of other scales in one chunk: the exponent stream is coded with zstd", () => {
    // One scale per 128 KiB of exponents (zstd's block): 2 and 4 blocks.
    for (const scales of [
      [0.02, 0.02 / 32],
      [1, 1 / 64, 1 / 4, 1 / 1024],
    ]) {
      const raw = scaledBf16(scales, scales.length << 17, scales.length);
      const payload = hierCodec.encode(raw, { dtype: "BF16", level: 3 }).payload;
      // FORMAT.md §6.2: 8 fixed bytes, then per stream its method (u8) and coded length (u32).
      const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
      const method = payload[8];
      const exponents = view.getUint32(9, true);
      // Huffman with one table for the stream, as HIER codes it otherwise.
      const split = new Uint8Array(raw.length / 2);
      for (let i = 0; i < split.length; i++) split[i] = ((raw[2 * i + 1] << 1) | (raw[2 * i] >>> 7)) & 0xff;
      assert.equal(method, 3, `scales ${scales}: exponent stream method ${method} (3 is zstd)`);
      assert.ok(
        exponents < huffmanSizeFromHistogram(histogram(split)),
        `scales ${scales}: ${exponents} bytes`,
      );
      const chunk = encodeChunk(raw, hierCodec, 3, "BF16");
      roundTrips(raw, chunk);
    }
  });
});

describe("auto's floor", () => {
  test("repeatShare tells repeated values from i.i.d. weights", () => {
    // Half the rows may repeat, 60% of those do: about 0.3 of the words.
    assert.ok(repeatShare(repeatedRowsF32(512, 256, 256 << 10, 3)) > 0.2);
    const next = rng(4);
    const normal = gaussian(next);
    const iid = new Float32Array(128 << 10);
    for (let i = 0; i < iid.length; i++) iid[i] = normal() * 0.02;
    assert.ok(repeatShare(new Uint8Array(iid.buffer)) < 0.02);
  });

  test("repeatShare is the same at any alignment and after calls of any size", () => {
    // A reference: the words at every 16th byte against the last word in their hash slot.
    const reference = (raw: Uint8Array) => {
      const words = raw.length >>> 2;
      const samples = Math.floor((words - 1) / 4);
      if (samples < 64) return 0;
      const slots = new Map<number, number>();
      let hits = 0;
      for (let i = 4; i < words; i += 4) {
        const a = Buffer.from(raw.buffer, raw.byteOffset + 4 * i, 4).readInt32LE(0);
        const h = Math.imul(a, 0x9e3779b1) >>> 16;
        if (slots.get(h) === a) hits++;
        slots.set(h, a);
      }
      return hits / samples;
    };
    const rows = repeatedRowsF32(512, 256, 256 << 10, 6);
    const big = new Uint8Array(rows.length + 3);
    big.set(rows, 3);
    // Large then small (a table cleared in full), small then small (only what was set).
    for (const at of [0, 1, 2, 3])
      for (const length of [rows.length, 1100, 300, 70000, 2000, 257]) {
        const raw = big.subarray(at, at + length);
        assert.equal(repeatShare(raw), reference(raw), `${length} bytes at +${at}`);
      }
    // The word repeatShare's table marks its empty slots with: sampled first (no repeat),
    // again (a repeat), after a word of the same slot and before one (no repeat), in large
    // and small calls, and in the calls after those.
    const empty = 0x5bd1e995 | 0;
    const slot = (a: number) => Math.imul(a, 0x9e3779b1) >>> 16;
    let twin = 1;
    while (slot(twin) !== slot(empty)) twin++;
    const pattern = [empty, 7, empty, twin, empty, twin, twin, empty, empty, 9, 11, empty];
    for (const words of [4 * 300, 4 * 20000]) {
      const marked = new Int32Array(words);
      for (let i = 0; i < words; i++) marked[i] = i % 4 === 0 ? pattern[(i >> 2) % pattern.length] : i;
      const bytes = new Uint8Array(marked.buffer);
      for (const raw of [
        bytes,
        rows.subarray(0, 4000),
        bytes.subarray(4),
        rows,
        big.subarray(1, 1 + bytes.length),
      ])
        assert.equal(repeatShare(raw), reference(raw), `${raw.length} bytes after marked words`);
    }
  });

  test("rows repeated far apart in a chunk: auto codes LZ, not only the field coder", () => {
    const raw = repeatedRowsF32(512, 256, 256 << 10, 5); // 512 KiB, repeats up to 256 KiB back
    const stats: AutoStats = { choiceMs: 0 };
    const chunk = encodeAuto(raw, "F32", "balanced", undefined, stats);
    roundTrips(raw, chunk);
    const zstd = size(encodeChunk(raw, zstdCodec, 3, "F32"));
    const hier = size(encodeChunk(raw, hierCodec, 3, "F32"));
    assert.ok(zstd < hier * 0.8, "the case: zstd is far smaller than HIER here");
    assert.ok(size(chunk) <= zstd * 1.005, `auto ${size(chunk)} against zstd ${zstd}`);
    assert.ok(stats.choiceMs > 0);
  });

  test("auto is never larger than byte grouping + zstd by more than 0.5%, default and ratio", () => {
    const cases: [string, Uint8Array, "F16" | "F32"][] = [
      ["conv F16, dead channels", convF16(56, 128, 0.15, 11), "F16"],
      ["conv F16", convF16(56, 128, 0, 12), "F16"],
      ["repeated F32 rows", repeatedRowsF32(512, 256, 256 << 10, 13), "F32"],
    ];
    for (const [name, raw, dtype] of cases) {
      for (const [goal, level] of [
        ["balanced", 3],
        ["ratio", 19],
      ] as const) {
        if (goal === "ratio" && raw.length > 300 << 10 && dtype === "F32") continue; // zstd -19 is slow
        const chunk = encodeAuto(raw, dtype, goal, undefined, { choiceMs: 0 });
        roundTrips(raw, chunk);
        const floor = Math.min(
          size(grouping(raw, 2, level)),
          size(grouping(raw, 4, level)),
          size(encodeChunk(raw, zstdCodec, level)),
        );
        assert.ok(size(chunk) <= floor * 1.005, `${name}, ${goal}: auto ${size(chunk)} against ${floor}`);
      }
    }
  });

  test("a decision is not reused on the next chunk of one dtype when its bytes change kind", () => {
    // A file's index of 8-byte records (a growing offset and small counts), then its table
    // of 16-bit values: one raw region detected as 8-byte planes, so both chunks are I64.
    const next = rng(7);
    const records = (seed: number) => {
      const r = rng(seed);
      const out = new Uint8Array(512 << 10);
      const view = new DataView(out.buffer);
      for (let i = 0, at = 0; i < out.length; i += 8) {
        const n = 1 + Math.floor(r() * 6);
        view.setUint32(i, at, true);
        out.set([n, 1, 1 + Math.floor(r() * 2), 0], i + 4);
        at += n;
      }
      return out;
    };
    const index = records(1);
    const curves = Array.from({ length: 300 }, () => {
      const top = 20000 + next() * 40000;
      const k = 0.05 + next() * 0.3;
      return Array.from({ length: 32 }, (_, j) => Math.round(top * Math.exp(-k * j) * (0.9 + 0.2 * next())));
    });
    const values = new Uint8Array(512 << 10);
    const view = new DataView(values.buffer);
    for (let i = 0; i < values.length; i += 64) {
      const curve = curves[Math.floor(next() * curves.length)];
      for (let j = 0; j < 32; j++) view.setUint16(i + 2 * j, curve[j], true);
    }
    const alone = (raw: Uint8Array) => chooseCodecs(raw, "I64", "balanced", undefined, { choiceMs: 0 });
    assert.notDeepEqual(alone(index), alone(values), "the case: each chunk alone gets its own choice");
    const stats: AutoStats = { choiceMs: 0 };
    const first = chooseCodecs(index, "I64", "balanced", undefined, stats);
    assert.deepEqual(chooseCodecs(values, "I64", "balanced", undefined, stats), alone(values));
    const after = encodeAuto(values, "I64", "balanced", undefined, { choiceMs: 0 });
    assert.ok(size(after) < size(encodeChoices(values, "I64", first).chunk) * 0.95);
    roundTrips(values, after);
    // More index after the index: the decision is reused, as before.
    const again: AutoStats = { choiceMs: 0 };
    chooseCodecs(index, "I64", "balanced", undefined, again);
    const left = again.reuse?.left;
    assert.deepEqual(chooseCodecs(records(2), "I64", "balanced", undefined, again), first);
    assert.equal(again.reuse?.left, (left ?? 0) - 1);
  });

  test("a clear decision is reused across a drift its margin covers, not across a change of kind", () => {
    // BF16 weights, Gaussian and then heavier-tailed (a scale mixture): the order-0
    // estimate moves by more than REUSE_ESTIMATE, by less than the clear decision's slack.
    const weights = (seed: number, tails: number) => {
      const normal = gaussian(rng(seed));
      const f = Float32Array.from({ length: 256 << 10 }, () => normal() * 0.02 * Math.exp(tails * normal()));
      return toBf16(new Uint8Array(f.buffer));
    };
    const alone = (raw: Uint8Array) => chooseCodecs(raw, "BF16", "balanced", undefined, { choiceMs: 0 });
    const stats: AutoStats = { choiceMs: 0 };
    const first = chooseCodecs(weights(1, 0), "BF16", "balanced", undefined, stats);
    const slack = stats.reuse?.slack;
    assert.ok(slack !== undefined && slack > 0.05, `a clear decision with its slack (${slack})`);
    const left = stats.reuse?.left ?? 0;
    const heavier = weights(2, 1.5);
    assert.deepEqual(chooseCodecs(heavier, "BF16", "balanced", undefined, stats), first);
    assert.equal(stats.reuse?.left, left - 1, "reused, not sampled again");
    assert.deepEqual(alone(heavier), first, "sampling it would have kept the decision");
    // Bytes of no structure under the same dtype: far outside the slack, sampled again.
    const next = rng(9);
    const noise = Uint8Array.from({ length: 512 << 10 }, () => Math.floor(next() * 256));
    assert.deepEqual(chooseCodecs(noise, "BF16", "balanced", undefined, stats), alone(noise));
    assert.notEqual(stats.reuse?.left, left - 2);
  });

  test("a chosen grouping travels as plain data and decodes through the container", async () => {
    const raw = convF16(56, 128, 0.15, 21);
    const choices = chooseCodecs(raw, "F16", "balanced", undefined, { choiceMs: 0 });
    assert.deepEqual(JSON.parse(JSON.stringify(choices)), choices, "choices survive postMessage-like copies");
    const { chunk } = encodeChoices(raw, "F16", [{ id: "HIER", level: 3, layout: 5 }]);
    assert.equal(chunk.payload[1], 5);
    roundTrips(raw, chunk);
    const packed = await compress(raw, { chunkSize: 128 << 10 });
    assert.deepEqual(Buffer.from(await decompress(packed)), Buffer.from(raw));
  });
});

describe("small chunks that LZ codes best are tried with brotli", () => {
  /** Small structured bytes: a JSON table, as in a model's header or a tfjs manifest. */
  const json = Buffer.from(
    JSON.stringify(
      Array.from({ length: 700 }, (_, i) => ({
        name: `layer.${i % 37}.weight`,
        shape: [i % 13, 64],
        offset: i * 4096,
      })),
    ),
  );

  test("the default and ratio goals keep brotli's record when it is smaller; speed never tries it", () => {
    assert.ok(json.length < 96 << 10);
    for (const goal of ["balanced", "ratio"] as const) {
      const choices = chooseCodecs(json, null, goal, undefined, { choiceMs: 0 });
      assert.ok(
        choices.some((c) => c.id === "BROT" && c.ifBest?.includes("ZSTD") === true),
        goal,
      );
      const { chunk } = encodeChoices(json, null, choices);
      const zstdOnly = encodeChunk(json, zstdCodec, goal === "ratio" ? 19 : 3);
      const brotliOnly = encodeChunk(json, brotliCodec, goal === "ratio" ? 9 : 5);
      // The smaller of the two LZ records is kept (HIER finds no fields in text).
      assert.equal(size(chunk), Math.min(size(zstdOnly), size(brotliOnly)), goal);
      if (goal === "balanced") assert.equal(chunk.codec, "BROT");
      roundTrips(json, chunk);
    }
    assert.ok(!chooseCodecs(json, null, "speed", undefined, { choiceMs: 0 }).some((c) => c.id === "BROT"));
    // A level asked for is the general codec's: no brotli beside it.
    assert.ok(!chooseCodecs(json, null, "balanced", 5, { choiceMs: 0 }).some((c) => c.id === "BROT"));
  });

  test("brotli is not tried where zstd did not win", () => {
    const { chunk } = encodeChoices(json, null, [
      { id: "NONE", level: undefined },
      { id: "BROT", level: 5, ifBest: ["ZSTD"] },
    ]);
    assert.equal(chunk.codec, "NONE");
  });
});

describe("small chunks HIER codes as one stream of bytes", () => {
  /** Small chunks of no dtype: text (LZ wins), skewed bytes (Huffman wins), JSON, random bytes. */
  const next = rng(7);
  const skewed = Uint8Array.from({ length: 20_000 }, () => Math.floor(next() ** 3 * 40));
  const cases: [string, Uint8Array][] = [
    ["text", generate({ kind: "text", size: 30_000 })],
    ["skewed", skewed],
    [
      "json",
      Buffer.from(JSON.stringify(Array.from({ length: 200 }, (_, i) => ({ name: `w.${i}`, at: i * 64 })))),
    ],
    ["random", generate({ kind: "random", size: 5000 })],
    ["tiny", Buffer.from("a protobuf field or two")],
  ];

  test("HIER is tried without its zstd pass where the bytes layout is detected, and the record is the same", () => {
    let bytesLayouts = 0;
    for (const [name, raw] of cases) {
      const choices = chooseCodecs(raw, null, "balanced", undefined, { choiceMs: 0 });
      const hier = choices.find((c) => c.id === "HIER" && c.layout === undefined);
      assert.ok(hier, name);
      const found = detectLayout(raw);
      assert.deepEqual(hier.detected, { layout: found.layout.id, head: found.head }, name);
      assert.equal(hier.level, found.layout.id === 0 ? -1 : 3, name);
      if (found.layout.id === 0) bytesLayouts++;
      // The choices as they were (HIER with its zstd pass, detecting for itself) give the same record.
      const before = choices.map((c) => (c === hier ? { id: "HIER", level: 3 } : c));
      const now = encodeChoices(raw, null, choices).chunk;
      const then = encodeChoices(raw, null, before).chunk;
      assert.equal(now.codec, then.codec, name);
      assert.deepEqual(
        Buffer.concat([now.header, now.payload]),
        Buffer.concat([then.header, then.payload]),
        name,
      );
      roundTrips(raw, now);
    }
    assert.ok(bytesLayouts >= 3, `${bytesLayouts} of the cases detected as bytes`);
    // Other goals and a level asked for keep HIER's own zstd pass.
    for (const [goal, level] of [
      ["ratio", undefined],
      ["balanced", 5],
    ] as const) {
      const hier = chooseCodecs(cases[0][1], null, goal, level, { choiceMs: 0 }).find((c) => c.id === "HIER");
      assert.notEqual(hier?.level, -1, `${goal} ${level}`);
    }
  });
});

describe("larger chunks that LZ codes best are tried with brotli", () => {
  /** A structured text table over 96 KiB: sampled, not coded whole by every candidate. */
  const json = Buffer.from(
    JSON.stringify(
      Array.from({ length: 6000 }, (_, i) => ({
        name: `block.${i % 53}.attn.${["q", "k", "v", "o"][i % 4]}_proj.weight`,
        shape: [(i * 7) % 97, 128],
        offset: i * 8192,
      })),
    ),
  );

  test("the default tries quality 4 when zstd won, ratio 4 always, 9 and 11 after an LZ win", () => {
    assert.ok(json.length > 96 << 10);
    const balanced = chooseCodecs(json, null, "balanced", undefined, { choiceMs: 0 });
    assert.deepEqual(
      balanced.filter((c) => c.id === "BROT"),
      [{ id: "BROT", level: 4, ifBest: ["ZSTD"] }],
    );
    const ratio = chooseCodecs(json, null, "ratio", undefined, { choiceMs: 0 });
    assert.deepEqual(
      ratio.filter((c) => c.id === "BROT"),
      [
        { id: "BROT", level: 4 },
        { id: "BROT", level: 9, ifBest: ["ZSTD", "BROT"] },
        // Quality 11 codes the sample smaller than zstd -19 does.
        { id: "BROT", level: 11, ifBest: ["ZSTD", "BROT"] },
      ],
    );
    for (const [goal, choices, levels] of [
      ["balanced", balanced, [4]],
      ["ratio", ratio, [4, 9, 11]],
    ] as const) {
      const { chunk } = encodeChoices(json, null, choices);
      const candidates = [
        encodeChunk(json, zstdCodec, goal === "ratio" ? 19 : 3),
        ...levels.map((l) => encodeChunk(json, brotliCodec, l)),
      ];
      assert.equal(size(chunk), Math.min(...candidates.map(size)), goal);
      roundTrips(json, chunk);
    }
    assert.ok(!chooseCodecs(json, null, "speed", undefined, { choiceMs: 0 }).some((c) => c.id === "BROT"));
    assert.ok(!chooseCodecs(json, null, "balanced", 3, { choiceMs: 0 }).some((c) => c.id === "BROT"));
  });

  test("brotli is tried when zstd's record is within 3% of a HIER record that won", () => {
    // HIER codes text as one zstd stream, a hair under zstd's own record.
    const text = generate({ kind: "text", size: 256 << 10 });
    const hier = encodeChunk(text, hierCodec, 3, null);
    const zstd = encodeChunk(text, zstdCodec, 3, null);
    assert.ok(size(hier) <= size(zstd) && size(zstd) <= size(hier) * 1.03, `${size(hier)} ${size(zstd)}`);
    const { chunk } = encodeChoices(text, null, [
      { id: "HIER", level: 3 },
      { id: "ZSTD", level: 3 },
      { id: "BROT", level: 4, ifBest: ["ZSTD"] },
    ]);
    assert.equal(chunk.codec, "BROT");
    roundTrips(text, chunk);
  });

  test("weights that HIER codes clearly best are not given to brotli by default", () => {
    const next = rng(11);
    const normal = gaussian(next);
    const values = new Float32Array(64 << 10);
    for (let i = 0; i < values.length; i++) values[i] = normal() * 0.02;
    const raw = new Uint8Array(values.buffer);
    const choices = chooseCodecs(raw, "F32", "balanced", undefined, { choiceMs: 0 });
    const { chunk } = encodeChoices(raw, "F32", choices);
    assert.equal(chunk.codec, "HIER");
    assert.ok(!choices.some((c) => c.id === "BROT" && c.ifBest === undefined));
    // Nor, at the ratio goal, to brotli's top quality: zstd's sample was far from HIER's.
    const ratio = chooseCodecs(raw, "F32", "ratio", undefined, { choiceMs: 0 });
    assert.ok(!ratio.some((c) => c.id === "BROT" && c.level === 11));
  });

  test("ratio: brotli's top quality is left out where its sample is not smaller than zstd -19's", () => {
    // Random bytes: neither codes them, and brotli's stream is not smaller than zstd's frame.
    const next = rng(5);
    const raw = new Uint8Array(256 << 10).map(() => Math.floor(next() * 256));
    const ratio = chooseCodecs(raw, null, "ratio", undefined, { choiceMs: 0 });
    assert.ok(ratio.some((c) => c.id === "ZSTD"));
    assert.ok(!ratio.some((c) => c.id === "BROT" && c.level === 11));
  });
});

describe("chunks of one stream: HIER's zstd stream and zstd's record are one candidate", () => {
  const CHUNK = 512 << 10;
  const text = generate({ kind: "text", size: 4 * CHUNK });
  const textChunk = (i: number) => text.subarray(i * CHUNK, (i + 1) * CHUNK);
  const table = Buffer.from(
    JSON.stringify(
      Array.from({ length: 7000 }, (_, i) => ({
        name: `block.${i % 53}.mlp.${["up", "down", "gate"][i % 3]}_proj.weight`,
        shape: [(i * 11) % 89, 256],
        offset: i * 16384,
      })),
    ),
  );
  /** The old default: HIER (its one stream with zstd), zstd and brotli 4, each coded whole. */
  const oldBest = (raw: Uint8Array) =>
    Math.min(
      size(encodeChunk(raw, hierCodec, 3, null)),
      size(encodeChunk(raw, zstdCodec, 3, null)),
      size(encodeChunk(raw, brotliCodec, 4, null)),
    );

  test("text is coded by zstd records (no HIER zstd stream beside them), never larger than before", () => {
    for (const raw of [textChunk(2), table]) {
      assert.ok(raw.length > 96 << 10);
      const choices = chooseCodecs(raw, null, "balanced", undefined, { choiceMs: 0 });
      assert.ok(choices.some((c) => c.id === "ZSTD"));
      assert.ok(!choices.some((c) => c.id === "HIER" && c.layout === undefined && c.level !== -1));
      const { chunk } = encodeChoices(raw, null, choices);
      roundTrips(raw, chunk);
      assert.ok(size(chunk) <= oldBest(raw), `${size(chunk)} against ${oldBest(raw)}`);
    }
  });

  test("a zstd level or brotli that the sample rules out clearly is not coded", () => {
    // Logs whose sample zstd level 1 codes well under level 3 and brotli 4 well over it.
    const choices = chooseCodecs(textChunk(2), null, "balanced", undefined, { choiceMs: 0 });
    assert.deepEqual(choices, [{ id: "ZSTD", level: 1 }]);
    // A JSON table: one zstd level clear of the other, brotli tried after it.
    const json = chooseCodecs(table, null, "balanced", undefined, { choiceMs: 0 });
    assert.equal(json.length, 2);
    assert.equal(json[0].id, "ZSTD");
    assert.deepEqual(json[1], { id: "BROT", level: 4, ifBest: ["ZSTD"] });
    const { chunk } = encodeChoices(table, null, json);
    const zstd = encodeChunk(table, zstdCodec, json[0].level, null);
    assert.equal(size(chunk), Math.min(size(zstd), size(encodeChunk(table, brotliCodec, 4, null))));
  });

  test("bytes zstd cannot shrink: zstd and brotli after it, stored", () => {
    const next = rng(7);
    const raw = new Uint8Array(CHUNK);
    for (let i = 0; i < raw.length; i++) raw[i] = Math.floor(next() * 256);
    const choices = chooseCodecs(raw, null, "balanced", undefined, { choiceMs: 0 });
    assert.deepEqual(choices, [
      { id: "ZSTD", level: 3 },
      { id: "BROT", level: 4, ifBest: ["ZSTD"] },
    ]);
    assert.equal(encodeChoices(raw, null, choices).chunk.codec, "NONE");
  });

  test("bytes HIER splits into fields are not one stream: HIER keeps its own candidate", () => {
    const next = rng(8);
    const normal = gaussian(next);
    const values = new Float32Array(CHUNK / 4);
    for (let i = 0; i < values.length; i++) values[i] = normal() * 0.02;
    const choices = chooseCodecs(new Uint8Array(values.buffer), null, "balanced", undefined, { choiceMs: 0 });
    assert.ok(choices.some((c) => c.id === "HIER" && c.level === 3 && c.layout === undefined));
    assert.ok(!choices.some((c) => c.id === "HIER" && c.level === -1));
  });

  test("a chunk of one stream is detected once: HIER codes it with the layout the choice found", () => {
    // Bytes of one stream HIER's Huffman codes well (quantised weights): HIER is a choice.
    const normal = gaussian(rng(12));
    const raw = new Uint8Array(CHUNK);
    for (let i = 0; i < raw.length; i++) raw[i] = Math.max(0, Math.min(255, Math.round(128 + 12 * normal())));
    const stats: AutoStats = { choiceMs: 0 };
    const choices = chooseCodecs(raw, null, "balanced", undefined, stats);
    const hier = choices.find((c) => c.id === "HIER" && c.layout === undefined);
    const found = detectLayout(raw);
    assert.equal(found.layout.streams, 1);
    assert.deepEqual(hier?.detected, { layout: found.layout.id, head: found.head });
    // The same record as HIER detecting it itself.
    const given = encodeChunk(
      raw,
      hierCodec,
      hier?.level,
      null,
      undefined,
      undefined,
      undefined,
      hier?.detected,
    );
    const itself = encodeChunk(raw, hierCodec, hier?.level, null);
    assert.ok(Buffer.from(given.payload).equals(Buffer.from(itself.payload)));
    // The decision kept for the next chunks does not carry this chunk's detection.
    assert.ok(stats.oneStream?.choices.every((c) => c.detected === undefined));
    const next = chooseCodecs(raw.subarray(1), null, "balanced", undefined, stats);
    assert.ok(next.every((c) => c.detected === undefined));
    throwsWith(() => hierCodec.encode(raw, { detected: { layout: 999, head: 0 } }), "E_BAD_OPTION");
  });

  test("alike chunks reuse a decision; one whose sample differs is sampled again", () => {
    const stats: AutoStats = { choiceMs: 0 };
    const first = chooseCodecs(textChunk(2), null, "balanced", undefined, stats);
    assert.equal(stats.oneStream?.left, 3);
    assert.equal(chooseCodecs(textChunk(3), null, "balanced", undefined, stats), first);
    assert.equal(stats.oneStream?.left, 2);
    // The decision left out zstd level 3 and brotli: text of other statistics is sampled again.
    const json = chooseCodecs(table, null, "balanced", undefined, stats);
    assert.notDeepEqual(json, first);
    assert.equal(stats.oneStream?.left, 3);
    assert.ok(stats.choiceMs > 0);
  });

  test("the choice does not depend on threads: one output for -T 1 and -T 2", async () => {
    const raw = Buffer.concat([text, table, text.subarray(0, CHUNK)]);
    const one = await compress(raw, { threads: 1 });
    const two = await compress(raw, { threads: 2 });
    assert.deepEqual(Buffer.from(two), Buffer.from(one));
    assert.deepEqual(Buffer.from(await decompress(one)), raw);
  });
});

describe("small tensors of a dtype whose fields HIER splits", () => {
  /** F32 weights N(0, std): HIER's fields code them clearly better than zstd. */
  const weights = (n: number, seed: number, std = 0.02) => {
    const normal = gaussian(rng(seed));
    return new Uint8Array(Float32Array.from({ length: n }, () => normal() * std).buffer);
  };
  /** Bytes with no structure at all: HIER's fields and zstd store them alike. */
  const noise = (n: number, seed: number) => {
    const next = rng(seed);
    return Uint8Array.from({ length: n }, () => Math.floor(next() * 256));
  };
  const ids = (choices: { id: string; level: number | undefined }[]) =>
    choices.map((c) => `${c.id}${c.level}`);

  test("are coded by HIER alone, with or without a decision on a larger one", () => {
    const small = weights(6000, 2);
    const choices = chooseCodecs(small, "F32", "balanced", undefined, { choiceMs: 0 });
    assert.deepEqual(ids(choices), ["HIER3"]);
    // The record is the one the full set keeps: HIER's, smaller than zstd's.
    const alone = encodeChoices(small, "F32", choices).chunk;
    const full = encodeChoices(small, "F32", [
      { id: "HIER", level: 3 },
      { id: "ZSTD", level: 3 },
      { id: "BROT", level: 5, ifBest: ["ZSTD"] },
    ]).chunk;
    assert.equal(size(alone), size(full));
    assert.ok(size(alone) < size(encodeChunk(small, zstdCodec, 3, "F32")) * 0.95);
    roundTrips(small, alone);
    const stats: AutoStats = { choiceMs: 0 };
    chooseCodecs(weights(128 << 10, 1), "F32", "balanced", undefined, stats);
    assert.equal(stats.reuse?.fieldsClear, true);
    const left = stats.reuse?.left;
    assert.deepEqual(ids(chooseCodecs(small, "F32", "balanced", undefined, stats)), ["HIER3"]);
    assert.equal(stats.reuse?.left, left, "the larger chunks' decision is not used up");
    assert.deepEqual(ids(chooseCodecs(small, "BF16", "balanced", undefined, stats)), ["HIER3"]);
    // Not a dtype of one stream, nor the ratio goal.
    assert.ok(chooseCodecs(small, "U8", "balanced", undefined, stats).length > 1);
    assert.ok(chooseCodecs(small, "F32", "ratio", undefined, stats).length > 1);
  });

  test("values that repeat, or bytes like those of a larger one zstd came near, are still coded by zstd too", () => {
    const stats: AutoStats = { choiceMs: 0 };
    chooseCodecs(weights(128 << 10, 1), "F32", "balanced", undefined, stats);
    // A bias of a few distinct values: repeats that zstd's record sees.
    const pick = rng(4);
    const repeated = new Uint8Array(
      Float32Array.from({ length: 6000 }, () => [0, 0.5, 1][Math.floor(pick() * 3)]).buffer,
    );
    assert.ok(repeatShare(repeated) >= 0.1);
    assert.ok(chooseCodecs(repeated, "F32", "balanced", undefined, stats).some((c) => c.id === "ZSTD"));
    // A larger chunk on which zstd's sample came within 5% of the best: small chunks of its
    // order-0 estimate are coded both ways, those of another (weights) by HIER alone.
    const after: AutoStats = { choiceMs: 0 };
    chooseCodecs(noise(128 << 10, 6), "F32", "balanced", undefined, after);
    assert.equal(after.reuse?.fieldsClear, false);
    const like = noise(24000, 7);
    assert.ok(repeatShare(like) < 0.1);
    assert.ok(chooseCodecs(like, "F32", "balanced", undefined, after).some((c) => c.id === "ZSTD"));
    assert.deepEqual(ids(chooseCodecs(weights(6000, 8), "F32", "balanced", undefined, after)), ["HIER3"]);
  });
});

describe("encodeChoices with several HIER candidates", () => {
  const data = join(import.meta.dirname, "..", "..", "shared", "data");
  const files = existsSync(data) ? readdirSync(data).filter((f) => f.endsWith(".safetensors")) : [];

  test("writes the smallest, byte for byte as coded alone, whichever candidate came first", () => {
    assert.ok(files.length > 0, "../shared/data holds no real files");
    const stored = (c: EncodedChunk) => Buffer.concat([c.header, c.payload]);
    let earlierWon = 0;
    for (const file of files) {
      const f32 = safetensorsData(join(data, file));
      for (const [raw, dtype] of [
        [toF16(f32).subarray(0, 512 << 10), "F16"],
        [toBf16(f32).subarray(0, 512 << 10), "BF16"],
        [f32.subarray(0, 512 << 10), "F32"],
      ] as const) {
        const candidates = [
          { id: "HIER", level: 3 },
          { id: "HIER", level: 3, layout: 4 },
          { id: "HIER", level: 3, layout: 5 },
          { id: "ZSTD", level: 3 },
        ];
        const alone = candidates.map((c) =>
          stored(encodeChunk(raw, codecById(c.id), c.level, dtype, undefined, c.layout)),
        );
        const smallest = Math.min(...alone.map((b) => b.length));
        for (const order of [candidates, [...candidates].reverse()]) {
          const memory = new Uint8Array(raw.length + 64);
          const { chunk } = encodeChoices(raw, dtype, order, (size) => memory.subarray(0, size));
          const first = order.findIndex((c) => alone[candidates.indexOf(c)].length === smallest);
          const expected = alone[candidates.indexOf(order[first])];
          assert.ok(
            stored(chunk).equals(expected),
            `${file} ${dtype}: the first smallest candidate, as coded alone`,
          );
          if (first < order.length - 1 && order[first].id === "HIER") earlierWon++;
          const decoded = decodeChunk(
            chunk.codec,
            new Uint8Array(0),
            chunk.payload,
            raw.length,
            chunk.rawCrc,
            file,
          );
          assert.ok(Buffer.from(decoded).equals(raw), `${file} ${dtype}: decodes`);
        }
      }
    }
    // A HIER draft that won before other HIER candidates were split is split again.
    assert.ok(earlierWon > 0, "no earlier HIER candidate won");
  });
});
