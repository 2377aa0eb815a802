/**
 * Legacy ggml model files (before GGUF), built in memory following the reference loaders:
 * llama.cpp's ggml / ggmf / ggjt (hyperparameters, a vocabulary with or without scores,
 * tensor records, 32-byte aligned data in ggjt), whisper.cpp's (hyperparameters, mel
 * filters, a counted vocabulary), the ggml examples' gpt-2 and rwkv.cpp's ggmf v100/v101
 * (its own type numbers). Then the same files cut short and damaged.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import fc from "fast-check";
import { MmhError } from "../src/common/errors.ts";
import { bufferSource } from "../src/common/source.ts";
import { recogniseGgml } from "../src/formats/ggml.ts";
import { recognise } from "../src/formats/index.ts";
import { compressFile, decompress } from "../src/index.ts";
import { assertTiling, quickly, recogniseBytes, refuseWith, regionNamed, sha256 } from "./formats-support.ts";
import { readTensor } from "./support.ts";
import { ByteWriter } from "./support-gguf.ts";

/** Elements per block and bytes per block of the type ids written here (ggml's numbering). */
const BLOCKS: Record<number, [number, number]> = {
  0: [1, 4],
  1: [1, 2],
  2: [32, 18],
  3: [32, 20],
  6: [32, 22],
  7: [32, 24],
  8: [32, 34],
  12: [256, 144],
};
/** ggml before May 2023: Q4_0, Q4_1 and Q8_0 with f32 scales. */
const OLD_BLOCKS: Record<number, [number, number]> = { ...BLOCKS, 2: [32, 20], 3: [32, 24], 8: [32, 36] };
/** rwkv.cpp's type numbers to ggml's. */
const RWKV_TO_GGML: Record<number, number> = { 0: 0, 1: 1, 2: 2, 3: 3, 7: 6, 8: 7, 9: 8 };

interface TensorSpec {
  name: string;
  /** ggml order: dims[0] varies fastest. */
  dims: number[];
  type: number;
}

interface Spec {
  magic: "ggml" | "ggmf" | "ggjt";
  version?: number;
  hparams: number[];
  /** whisper: mel filters n_mel × n_fft after the hyperparameters. */
  mel?: [number, number];
  vocab?: { tokens: string[]; counted: boolean; scores: boolean };
  aligned?: boolean;
  oldBlocks?: boolean;
  rwkv?: boolean;
  tensors: TensorSpec[];
}

interface Built {
  bytes: Buffer;
  /** Where the first tensor record starts. */
  headerEnd: number;
  tensors: { name: string; offset: number; length: number; end: number }[];
}

const MAGICS = { ggml: 0x67676d6c, ggmf: 0x67676d66, ggjt: 0x67676a74 };

function build(spec: Spec): Built {
  const w = new ByteWriter().u32(MAGICS[spec.magic]);
  if (spec.version !== undefined) w.u32(spec.version);
  for (const h of spec.hparams) w.u32(h);
  if (spec.mel) {
    w.u32(spec.mel[0]).u32(spec.mel[1]);
    const mel = Buffer.alloc(spec.mel[0] * spec.mel[1] * 4);
    for (let i = 0; i < mel.length / 4; i++) mel.writeFloatLE(i / 100, i * 4);
    w.raw(mel);
  }
  if (spec.vocab) {
    if (spec.vocab.counted) w.u32(spec.vocab.tokens.length);
    for (const [i, token] of spec.vocab.tokens.entries()) {
      const b = Buffer.from(token, "utf8");
      w.u32(b.length).raw(b);
      if (spec.vocab.scores) {
        const s = Buffer.alloc(4);
        s.writeFloatLE(-i);
        w.raw(s);
      }
    }
  }
  const tensors: Built["tensors"] = [];
  const headerEnd = w.length;
  for (const [k, t] of spec.tensors.entries()) {
    const name = Buffer.from(t.name, "utf8");
    w.u32(t.dims.length).u32(name.length).u32(t.type);
    for (const d of t.dims) w.u32(d);
    w.raw(name);
    if (spec.aligned) w.pad(32);
    const ggmlType = spec.rwkv ? RWKV_TO_GGML[t.type] : t.type;
    const [block, size] = (spec.oldBlocks ? OLD_BLOCKS : BLOCKS)[ggmlType];
    const length = (t.dims.reduce((a, b) => a * b, 1) / block) * size;
    const data = Buffer.alloc(length);
    if (ggmlType === 0) for (let i = 0; i < length / 4; i++) data.writeFloatLE(Math.sin(i + k) * 0.1, i * 4);
    else for (let i = 0; i < length; i++) data[i] = (i * 31 + k * 7 + (i >> 5)) & 0xff;
    const offset = w.length;
    w.raw(data);
    tensors.push({ name: t.name, offset, length, end: w.length });
  }
  return { bytes: w.bytes(), headerEnd, tensors };
}

const TOKENS = ["<unk>", "<s>", "</s>", "hello", "wörld", " the"];

const llamaHparams = [TOKENS.length, 64, 256, 2, 1, 32, 2];
const llamaTensors: TensorSpec[] = [
  { name: "tok_embeddings.weight", dims: [64, 6], type: 1 },
  { name: "norm.weight", dims: [64], type: 0 },
  { name: "layers.0.attention.wq.weight", dims: [64, 64], type: 2 },
  { name: "layers.0.attention.wk.weight", dims: [64, 64], type: 7 },
  { name: "layers.0.feed_forward.w1.weight", dims: [256, 2], type: 12 },
  { name: "output.weight", dims: [64, 6], type: 8 },
];

const SAMPLES: Record<string, Spec> = {
  "ggjt v3 (llama)": {
    magic: "ggjt",
    version: 3,
    hparams: llamaHparams,
    vocab: { tokens: TOKENS, counted: false, scores: true },
    aligned: true,
    tensors: llamaTensors,
  },
  "ggjt v1 (llama, f32-scale blocks)": {
    magic: "ggjt",
    version: 1,
    hparams: llamaHparams,
    vocab: { tokens: TOKENS, counted: false, scores: true },
    aligned: true,
    oldBlocks: true,
    tensors: llamaTensors.filter((t) => t.type !== 12),
  },
  "ggmf v1 (llama)": {
    magic: "ggmf",
    version: 1,
    hparams: llamaHparams,
    vocab: { tokens: TOKENS, counted: false, scores: true },
    oldBlocks: true,
    tensors: llamaTensors.filter((t) => t.type !== 12),
  },
  "ggml (llama, unversioned)": {
    magic: "ggml",
    hparams: llamaHparams,
    vocab: { tokens: TOKENS, counted: false, scores: false },
    oldBlocks: true,
    tensors: llamaTensors.filter((t) => t.type !== 12),
  },
  "ggml (whisper)": {
    magic: "ggml",
    // n_vocab, audio ctx/state/head/layer, text ctx/state/head/layer, n_mels, ftype (Q5_0 + 1000 × qnt version 2).
    hparams: [TOKENS.length, 16, 32, 2, 1, 8, 32, 2, 1, 4, 2008],
    mel: [4, 5],
    vocab: { tokens: TOKENS, counted: true, scores: false },
    tensors: [
      { name: "encoder.conv1.weight", dims: [3, 4, 32], type: 1 },
      { name: "encoder.positional_embedding", dims: [32, 16], type: 0 },
      { name: "decoder.token_embedding.weight", dims: [32, 6], type: 6 },
      { name: "decoder.blocks.0.attn.query.weight", dims: [32, 32], type: 2 },
    ],
  },
  "ggml (gpt-2)": {
    magic: "ggml",
    // ftype Q4_0 + 1000 × quantisation version 1: Q4_0 blocks still had f32 scales.
    hparams: [TOKENS.length, 16, 32, 2, 1, 1002],
    vocab: { tokens: TOKENS, counted: true, scores: false },
    oldBlocks: true,
    tensors: [
      { name: "model/wte", dims: [32, 6], type: 1 },
      { name: "model/h0/attn/c_attn/w", dims: [32, 96], type: 2 },
    ],
  },
  "ggmf v101 (rwkv.cpp)": {
    magic: "ggmf",
    version: 101,
    hparams: [TOKENS.length, 64, 1, 8],
    rwkv: true,
    tensors: [
      { name: "emb.weight", dims: [64, 6], type: 1 },
      { name: "blocks.0.ln1.weight", dims: [64], type: 0 },
      { name: "blocks.0.att.key.weight", dims: [64, 64], type: 8 },
      { name: "blocks.0.att.value.weight", dims: [64, 64], type: 7 },
      { name: "blocks.0.ffn.key.weight", dims: [64, 64], type: 9 },
      { name: "head.weight", dims: [64, 6], type: 2 },
    ],
  },
  "ggmf v100 (rwkv.cpp, f32-scale blocks)": {
    magic: "ggmf",
    version: 100,
    hparams: [TOKENS.length, 64, 1, 2],
    rwkv: true,
    oldBlocks: true,
    tensors: [
      { name: "emb.weight", dims: [64, 6], type: 0 },
      { name: "blocks.0.att.key.weight", dims: [64, 64], type: 2 },
      { name: "blocks.0.att.value.weight", dims: [64, 64], type: 8 },
      { name: "blocks.0.ffn.value.weight", dims: [64, 64], type: 9 },
    ],
  },
};

/** What each sample's tensors must be listed as. */
const EXPECTED_DTYPES: Record<string, string[]> = {
  "ggjt v3 (llama)": ["F16", "F32", "Q4_0", "Q5_1", "Q4_K", "Q8_0"],
  "ggjt v1 (llama, f32-scale blocks)": ["F16", "F32", "Q4_0 (f32 scale)", "Q5_1", "Q8_0 (f32 scale)"],
  "ggmf v1 (llama)": ["F16", "F32", "Q4_0 (f32 scale)", "Q5_1", "Q8_0 (f32 scale)"],
  "ggml (llama, unversioned)": ["F16", "F32", "Q4_0 (f32 scale)", "Q5_1", "Q8_0 (f32 scale)"],
  "ggml (whisper)": ["F16", "F32", "Q5_0", "Q4_0"],
  "ggml (gpt-2)": ["F16", "Q4_0 (f32 scale)"],
  "ggmf v101 (rwkv.cpp)": ["F16", "F32", "Q5_1", "Q5_0", "Q8_0", "Q4_0"],
  "ggmf v100 (rwkv.cpp, f32-scale blocks)": ["F32", "Q4_0 (f32 scale)", "Q5_1", "Q8_0 (f32 scale)"],
};

const FAMILIES: Record<string, string> = {
  "ggjt v3 (llama)": "llama",
  "ggjt v1 (llama, f32-scale blocks)": "llama",
  "ggmf v1 (llama)": "llama",
  "ggml (llama, unversioned)": "llama",
  "ggml (whisper)": "whisper",
  "ggml (gpt-2)": "gpt-2",
  "ggmf v101 (rwkv.cpp)": "rwkv",
  "ggmf v100 (rwkv.cpp, f32-scale blocks)": "rwkv",
};

const DATA_CODES = ["E_CORRUPT", "E_TRUNCATED", "E_LIMIT", "E_UNSUPPORTED"];

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

describe("ggml: files following the reference loaders", () => {
  for (const [label, spec] of Object.entries(SAMPLES)) {
    test(`${label}: family, tensors, dtypes, shapes and offsets`, async () => {
      const file = build(spec);
      const result = await recogniseBytes(file.bytes);
      assert.equal(result.format, "ggml");
      assertTiling(result, file.bytes.length);
      const md = result.metadata as Record<string, unknown>;
      assert.equal(md.family, FAMILIES[label]);
      assert.equal(md.magic, spec.magic);
      assert.deepEqual(
        result.tensors.map((t) => [t.name, t.dtype, t.shape, t.offset, t.length]),
        spec.tensors.map((t, i) => [
          t.name,
          EXPECTED_DTYPES[label][i],
          [...t.dims].reverse(),
          file.tensors[i].offset,
          file.tensors[i].length,
        ]),
      );
      for (const [i, t] of result.tensors.entries()) {
        const region = regionNamed(result, t.name);
        const dtype = EXPECTED_DTYPES[label][i];
        if (dtype.includes(" ")) {
          assert.equal(region.kind, "raw");
          assert.equal(region.note, dtype);
        } else assert.equal(region.dtype, dtype);
        if (spec.aligned) assert.equal(t.offset % 32, 0);
      }
      assert.equal(regionNamed(result, "ggml header").offset, 0);
    });
  }

  test("compress, decompress, and read each tensor back alone", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mmh-ggml-"));
    try {
      for (const [label, spec] of Object.entries(SAMPLES)) {
        const file = build(spec);
        const path = join(dir, "model.bin");
        writeFileSync(path, file.bytes);
        await compressFile(path, `${path}.mmh`, { overwrite: true });
        assert.ok(Buffer.from(await decompress(readFileSync(`${path}.mmh`))).equals(file.bytes), label);
        for (const t of file.tensors) {
          const { data } = await readTensor(`${path}.mmh`, t.name);
          assert.equal(
            sha256(data),
            sha256(file.bytes.subarray(t.offset, t.offset + t.length)),
            `${label}: ${t.name}`,
          );
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("truncations: E_TRUNCATED, or the tensors before a record boundary", async () => {
    for (const [label, spec] of Object.entries(SAMPLES)) {
      const file = build(spec);
      // Every cut through the header and the records, some through the data.
      const cuts = new Set<number>();
      for (let i = 0; i < file.bytes.length; i += 13) cuts.add(i);
      for (let i = 0; i < file.headerEnd + 8; i++) cuts.add(i);
      for (const t of file.tensors) for (let d = -80; d <= 2; d++) cuts.add(t.offset + d);
      const ends = new Map(file.tensors.map((t, i) => [t.end, i + 1]));
      // ggmf and ggjt files with no tensors at all are valid; unversioned ones need one to be told apart.
      if (spec.magic !== "ggml") ends.set(file.headerEnd, 0);
      for (const cut of [...cuts].filter((c) => c >= 0 && c < file.bytes.length)) {
        const part = file.bytes.subarray(0, cut);
        if (cut < 4) {
          assert.equal((await recogniseBytes(part)).format, "raw");
          continue;
        }
        const whole = ends.get(cut);
        if (whole !== undefined) {
          // The format has no tensor count: a file cut between records is a smaller model.
          const result = await recogniseBytes(part);
          assert.equal(result.tensors.length, whole, `${label} cut ${cut}`);
          continue;
        }
        const codes = spec.magic === "ggml" ? ["E_TRUNCATED", "E_CORRUPT"] : ["E_TRUNCATED"];
        try {
          await refuseWith(recogniseGgml, part, codes as ("E_TRUNCATED" | "E_CORRUPT")[]);
        } catch (e) {
          throw new Error(`${label} cut ${cut}: ${(e as Error).message}`);
        }
      }
    }
  });
});

/** A ggjt v3 file with one hand-written tensor record after the vocabulary. */
function oneRecord(record: (w: ByteWriter) => void, tail = 256): Buffer {
  const w = new ByteWriter().u32(MAGICS.ggjt).u32(3);
  for (const h of [1, 64, 256, 2, 1, 32, 0]) w.u32(h);
  w.u32(1).raw(Buffer.from("a")).u32(0);
  record(w);
  return w.raw(Buffer.alloc(tail)).bytes();
}

describe("ggml: hostile files", () => {
  test("versions and families", async () => {
    const head = (magic: keyof typeof MAGICS, version: number) =>
      new ByteWriter().u32(MAGICS[magic]).u32(version).raw(Buffer.alloc(64)).bytes();
    await refuseWith(recogniseGgml, head("ggjt", 4), "E_UNSUPPORTED", /ggjt version 4/);
    await refuseWith(recogniseGgml, head("ggjt", 0), "E_UNSUPPORTED", /ggjt version 0/);
    await refuseWith(recogniseGgml, head("ggmf", 2), "E_UNSUPPORTED", /ggmf version 2/);
    // An unversioned file no family's header fits.
    const noise = Buffer.concat([Buffer.from("lmgg", "latin1"), Buffer.alloc(300, 0x41)]);
    await quickly(() => refuseWith(recogniseGgml, noise, ["E_CORRUPT", "E_TRUNCATED"], /no known header/));
  });

  test("bogus tensor records", async () => {
    const record = (nDims: number, nameLength: number, type: number, dims: number[], name: Buffer | string) =>
      oneRecord((w) => {
        w.u32(nDims).u32(nameLength).u32(type);
        for (const d of dims) w.u32(d);
        w.raw(typeof name === "string" ? Buffer.from(name) : name);
      });
    await refuseWith(recogniseGgml, record(0, 1, 0, [], "x"), "E_CORRUPT", /0 dimensions/);
    await refuseWith(recogniseGgml, record(5, 1, 0, [1, 1, 1, 1, 1], "x"), "E_CORRUPT", /5 dimensions/);
    await refuseWith(recogniseGgml, record(-1, 1, 0, [], "x"), "E_CORRUPT", /-1 dimensions/);
    await refuseWith(recogniseGgml, record(1, 0, 0, [4], ""), "E_CORRUPT", /name of 0 bytes/);
    await refuseWith(
      recogniseGgml,
      record(1, 0x7fffffff, 0, [4], "x"),
      "E_CORRUPT",
      /name of 2147483647 bytes/,
    );
    await refuseWith(recogniseGgml, record(1, 1, 0, [-4], "x"), "E_CORRUPT", /dimensions -4/);
    await refuseWith(recogniseGgml, record(1, 1, 0, [0], "x"), "E_CORRUPT", /dimensions 0/);
    await refuseWith(recogniseGgml, record(1, 1, 99, [4], "x"), "E_UNSUPPORTED", /unknown type 99/);
    await refuseWith(recogniseGgml, record(1, 1, 4, [32], "x"), "E_UNSUPPORTED", /unknown type 4/);
    await refuseWith(recogniseGgml, record(1, 1, 2, [33], "x"), "E_CORRUPT", /not a multiple of 32/);
    await refuseWith(recogniseGgml, record(1, 1, 0, [4], Buffer.from([0xff])), "E_CORRUPT", /UTF-8/);
    // Huge dims: the data runs past the end, or its size overflows.
    const huge = 0x7fffffff;
    await refuseWith(recogniseGgml, record(2, 1, 0, [huge, 4], "x"), "E_TRUNCATED", /runs past the end/);
    await refuseWith(recogniseGgml, record(4, 1, 0, [huge, huge, huge, huge], "x"), "E_CORRUPT", /overflows/);
    // Two tensors of one name.
    const dup = oneRecord((w) => {
      for (let i = 0; i < 2; i++) {
        w.u32(1).u32(1).u32(0).u32(4).raw(Buffer.from("x")).pad(32).raw(Buffer.alloc(16));
      }
    }, 0);
    await refuseWith(recogniseGgml, dup, "E_CORRUPT", /duplicate tensor name/);
  });

  test("huge vocabularies and tokens are refused before they are walked", async () => {
    const vocab = (count: number, firstLength: number) => {
      const w = new ByteWriter().u32(MAGICS.ggjt).u32(3);
      for (const h of [count, 64, 256, 2, 1, 32, 0]) w.u32(h);
      return w.u32(firstLength).raw(Buffer.alloc(300)).bytes();
    };
    await quickly(() => refuseWith(recogniseGgml, vocab(0x7fffffff, 1), "E_LIMIT", /vocabulary of/));
    await quickly(() => refuseWith(recogniseGgml, vocab(1 << 19, 1), "E_TRUNCATED", /vocabulary of/));
    await refuseWith(recogniseGgml, vocab(-5, 1), "E_CORRUPT", /vocabulary of -5/);
    await refuseWith(recogniseGgml, vocab(2, 0x7fffffff), "E_CORRUPT", /token 0 is/);
    // whisper: mel filters that do not match n_mels, or that cannot fit.
    const whisper = build(SAMPLES["ggml (whisper)"]).bytes;
    const badMel = Buffer.from(whisper);
    badMel.writeInt32LE(5, 4 + 11 * 4);
    await wellBehaved(badMel, "mel count");
    await refuseWith(recogniseGgml, badMel, ["E_CORRUPT", "E_TRUNCATED"]);
  });

  test("the caller's header cap", async () => {
    const { bytes } = build(SAMPLES["ggjt v3 (llama)"]);
    await refuseWith(recogniseGgml, bytes, "E_LIMIT", /header limit/, 40);
  });

  test("random bytes behind each magic, and random damage to each sample", async () => {
    const magics = Object.values(MAGICS).map((m) => {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(m);
      return b;
    });
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...magics), fc.uint8Array({ maxLength: 400 }), async (magic, rest) =>
        wellBehaved(Buffer.concat([magic, rest]), "random"),
      ),
      { numRuns: 400 },
    );
    const originals = Object.values(SAMPLES).map((s) => build(s).bytes);
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: originals.length - 1 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        async (which, edits) => {
          const bytes = Buffer.from(originals[which]);
          for (const [at, value] of edits) bytes[at % bytes.length] = value;
          await wellBehaved(bytes, `edits ${JSON.stringify(edits)}`);
        },
      ),
      { numRuns: 800 },
    );
  });

  test("a file that fails is compressed as raw, losslessly", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mmh-ggml-"));
    try {
      const bytes = build(SAMPLES["ggjt v3 (llama)"]).bytes;
      bytes.writeUInt32LE(7, 4); // ggjt version 7
      const path = join(dir, "bad.bin");
      writeFileSync(path, bytes);
      await compressFile(path, `${path}.mmh`);
      assert.ok(Buffer.from(await decompress(readFileSync(`${path}.mmh`))).equals(bytes));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
