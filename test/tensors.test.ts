/**
 * Tensor intelligence through the public API: recognised formats round-trip and keep their
 * tensor table, chunks follow tensor boundaries and never mix dtypes, readTensor decodes
 * only the tensor's chunks, HIER round-trips every dtype at any alignment and detects
 * floats at odd offsets, P251 runs cover any length, auto never loses to zstd, and
 * generate() / analyze() do what they say.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { crc32 } from "node:zlib";
import fc from "fast-check";
import { detectLayout, hierCodec } from "../src/codecs/hier/hier.ts";
import { findPeriod } from "../src/codecs/p251.ts";
import { zstdCodec } from "../src/codecs/zstd.ts";
import { bufferSource, fileSource, type RandomAccessSource } from "../src/common/source.ts";
import { decodeChunk, encodeChunk } from "../src/engine/chunk.ts";
import { planChunks } from "../src/engine/plan.ts";
import { MmhReader } from "../src/engine/reader.ts";
import { allDTypes, type DTypeName, type Recognised, recognise } from "../src/formats/index.ts";
import {
  analyze,
  type ChunkInfo,
  compress,
  compressFile,
  decompress,
  inspect,
  verify,
} from "../src/index.ts";
import { gaussian, rng } from "../src/tools/gen.ts";
import { GEN_DTYPES, GEN_KINDS, type GenOptions, generate, npyHeader } from "../src/tools/index.ts";
import {
  copyOf,
  fixIndexCrc,
  fixRecordCrc,
  layoutOf,
  noiseBytes,
  prng,
  readRange,
  readTensor,
  rejectsWith,
  textBytes,
  throwsWith,
} from "./support.ts";
import { GGML, sampleGguf, writeGguf } from "./support-gguf.ts";

const dir = mkdtempSync(join(tmpdir(), "mmh-tensors-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const CHUNK = 4096;
const FIXTURES = join(import.meta.dirname, "fixtures", "formats");
const REAL = join(import.meta.dirname, "..", "..", "shared", "data");
const REAL_FILES = [
  "gpt2-tigrinya-lora_adapter_model.safetensors",
  "lora-imdb-distilbert_adapter_model.safetensors",
  "mnist-tinygrad_model.safetensors",
];

/** N(0, std) float32 values, as little-endian bytes. */
function f32Weights(count: number, std: number, seed: number): Buffer {
  const normal = gaussian(rng(seed));
  const values = new Float32Array(count);
  for (let i = 0; i < count; i++) values[i] = normal() * std;
  return Buffer.from(values.buffer);
}

// ---- the sources --------------------------------------------------------------------------

interface Source {
  name: string;
  bytes: Buffer;
  format: string;
}

/** A GGUF with tensors of several KiB each: float ones, quantised ones, and zeros (a P251 run). */
function bigGguf(): Buffer {
  return writeGguf({
    alignment: 64,
    kv: [["general.architecture", { t: "string", v: "llama" }]],
    tensors: [
      { name: "token_embd.weight", dims: [80, 64], type: GGML.F32, data: f32Weights(80 * 64, 0.02, 11) },
      { name: "blk.0.attn_norm.weight", dims: [4100], type: GGML.F16, data: noiseBytes(8200, 12) },
      { name: "blk.0.attn_q.weight", dims: [256, 40], type: GGML.Q4_0, data: noiseBytes(5760, 13) },
      { name: "blk.0.ffn_zero.weight", dims: [6000], type: GGML.F32, data: Buffer.alloc(24000) },
      { name: "blk.0.ffn_down.weight", dims: [32, 100], type: GGML.Q8_0, data: noiseBytes(3400, 14) },
      { name: "output.weight", dims: [3001], type: GGML.BF16, data: noiseBytes(6002, 15) },
    ],
  }).bytes;
}

function bigNpy(): Buffer {
  return Buffer.concat([npyHeader("F32", [100, 151]), f32Weights(100 * 151, 0.02, 21)]);
}

const sources: Source[] = [
  {
    name: "generated.safetensors",
    bytes: generate({ kind: "safetensors", size: 1 << 20, dtype: "BF16", seed: 3 }),
    format: "safetensors",
  },
  {
    name: "model.safetensors",
    bytes: readFileSync(join(FIXTURES, "model.safetensors")),
    format: "safetensors",
  },
  ...[
    "npy-bool",
    "npy-c8",
    "npy-empty",
    "npy-f2",
    "npy-f4",
    "npy-f4be",
    "npy-f8",
    "npy-fortran",
    "npy-i8",
    "npy-scalar",
    "npy-structured",
    "npy-u1",
    "npy-v2",
    "npy-v3",
  ].map((stem) => ({
    name: `${stem}.npy`,
    bytes: readFileSync(join(FIXTURES, `${stem}.npy`)),
    format: "npy",
  })),
  { name: "big.npy", bytes: bigNpy(), format: "npy" },
  ...["npz-stored", "npz-zip64", "npz-deflated"].map((stem) => ({
    name: `${stem}.npz`,
    bytes: readFileSync(join(FIXTURES, `${stem}.npz`)),
    format: "npz",
  })),
  ...["torch-checkpoint", "torch-legacy", "torch-state"].map((stem) => ({
    name: `${stem}.pt`,
    bytes: readFileSync(join(FIXTURES, `${stem}.pt`)),
    format: "pytorch",
  })),
  { name: "sample.gguf", bytes: sampleGguf().bytes, format: "gguf" },
  { name: "big.gguf", bytes: bigGguf(), format: "gguf" },
  ...["tflite-mobile", "tflite-external"].map((stem) => ({
    name: `${stem}.tflite`,
    bytes: readFileSync(join(FIXTURES, `${stem}.tflite`)),
    format: "tflite",
  })),
  ...["onnx-mlp", "onnx-nested", "onnx-external"].map((stem) => ({
    name: `${stem}.onnx`,
    bytes: readFileSync(join(FIXTURES, `${stem}.onnx`)),
    format: "onnx",
  })),
];

interface Prepared extends Source {
  recognised: Recognised;
  /** The source compressed with CHUNK-byte chunks. */
  mmh: string;
}

const prepared = new Map<string, Prepared>();

async function prepare(source: Source): Promise<Prepared> {
  const known = prepared.get(source.name);
  if (known) return known;
  const original = join(dir, source.name);
  writeFileSync(original, source.bytes);
  const mmh = `${original}.mmh`;
  await compressFile(original, mmh, { chunkSize: CHUNK, overwrite: true });
  const result = { ...source, recognised: await recognise(bufferSource(source.bytes)), mmh };
  prepared.set(source.name, result);
  return result;
}

function expectedTensors(recognised: Recognised) {
  return recognised.tensors.map(({ name, dtype, shape, offset, length }) => ({
    name,
    dtype,
    shape,
    offset,
    length,
  }));
}

function overlapping(chunks: readonly ChunkInfo[], offset: number, length: number): ChunkInfo[] {
  return chunks.filter((c) => c.rawOffset < offset + length && c.rawOffset + c.rawLength > offset);
}

/**
 * The chunk table must be the plan of the recognised regions, except where consecutive
 * planned chunks merged into one P251 run; and, checked against the regions themselves,
 * no other chunk spans two dtypes, and a region larger than a chunk starts a chunk.
 */
function checkChunking(chunks: readonly ChunkInfo[], recognised: Recognised, size: number, label: string) {
  const plan = planChunks(recognised.regions, CHUNK);
  let p = 0;
  let planEnd = 0;
  for (const [i, chunk] of chunks.entries()) {
    const end = chunk.rawOffset + chunk.rawLength;
    let merged = 0;
    while (planEnd < end) {
      assert.ok(p < plan.length, `${label}: chunk ${i} runs past the plan`);
      planEnd += plan[p++].length;
      merged++;
    }
    assert.equal(planEnd, end, `${label}: chunk ${i} ends at ${end}, not at a planned boundary`);
    const run = chunk.codec === "P251" && merged > 1;
    if (merged > 1) assert.ok(run, `${label}: chunk ${i} (${chunk.codec}) merges ${merged} planned chunks`);
    assert.ok(chunk.rawLength <= CHUNK || run, `${label}: chunk ${i} of ${chunk.rawLength} bytes`);
    if (!run) {
      const dtypes = new Set(
        recognised.regions
          .filter((r) => r.offset < end && r.offset + r.length > chunk.rawOffset)
          .map((r) => r.dtype),
      );
      assert.equal(dtypes.size, 1, `${label}: chunk ${i} mixes dtypes ${[...dtypes].join(", ")}`);
    }
  }
  assert.equal(p, plan.length, `${label}: chunks cover only ${p} of ${plan.length} planned chunks`);
  assert.equal(planEnd, size, `${label}: chunks cover ${planEnd} of ${size} bytes`);
  const starts = new Set(chunks.map((c) => c.rawOffset));
  for (const region of recognised.regions) {
    if (region.length <= CHUNK) continue;
    const holder = chunks[chunks.findLastIndex((c) => c.rawOffset <= region.offset)];
    assert.ok(
      starts.has(region.offset) || holder.codec === "P251",
      `${label}: region ${region.name} at ${region.offset} (${region.length} bytes) does not start a chunk`,
    );
  }
}

/** A source that records every read made through it. */
function spied(source: RandomAccessSource): { source: RandomAccessSource; reads: number[] } {
  const reads: number[] = [];
  return {
    reads,
    source: {
      size: source.size,
      read(offset, length) {
        reads.push(offset);
        return source.read(offset, length);
      },
      close: () => source.close(),
    },
  };
}

describe("recognised formats through the public API", () => {
  test("every source is recognised as the format it is", async () => {
    for (const source of sources) {
      const { recognised } = await prepare(source);
      assert.equal(recognised.format, source.format, source.name);
    }
    assert.ok(
      (await prepare(sources[0])).recognised.tensors.length >= 20,
      "the generated model has many tensors",
    );
  });

  for (const source of sources) {
    test(`${source.name}: round trip, metadata, tensor table and chunk plan`, async () => {
      const { bytes, recognised, mmh } = await prepare(source);
      const packed = await compress(bytes);
      assert.ok(Buffer.from(await decompress(packed)).equals(bytes), "default compress() round trip");
      const small = readFileSync(mmh);
      assert.ok(Buffer.from(await decompress(small)).equals(bytes), "4 KiB chunks round trip");

      const info = await inspect(mmh);
      const meta = info.header.metadata as { source: { format: string; name: string } };
      assert.equal(meta.source.format, source.format);
      assert.equal(meta.source.name, source.name);
      assert.equal(info.footer.format, source.format);
      const tensors = expectedTensors(recognised);
      assert.deepEqual(info.footer.tensors, tensors, "footer tensors are what recognise() found");
      assert.deepEqual(info.footer.tensors, tensors);
      assert.equal(info.trailer.rawLength, bytes.length);
      checkChunking(info.chunks, recognised, bytes.length, source.name);
      if (source.name === "big.gguf") {
        // Its 24000 zero bytes are six planned chunks that became one P251 run.
        const zero = recognised.tensors.find((t) => t.name === "blk.0.ffn_zero.weight")!;
        assert.ok(
          info.chunks.some((c) => c.codec === "P251" && c.rawOffset === zero.offset && c.rawLength === 24000),
          "the zero tensor is one run",
        );
      }
    });
  }

  test("a zip that is not npz or torch is raw, with no tensors", async () => {
    const file = join(dir, "zip-other.zip");
    writeFileSync(file, readFileSync(join(FIXTURES, "zip-other.zip")));
    await compressFile(file, `${file}.mmh`);
    const info = await inspect(`${file}.mmh`);
    assert.equal((info.header.metadata as { source: { format: string } }).source.format, "raw");
    assert.deepEqual(info.footer.tensors, []);
    await rejectsWith(readTensor(`${file}.mmh`, "anything"), "E_NOT_FOUND");
  });

  test("recognise: false stores a model as raw bytes with no tensor table", async () => {
    const { bytes, name } = sources[0];
    const file = join(dir, `norecognise-${name}`);
    writeFileSync(file, bytes);
    await compressFile(file, `${file}.mmh`, { recognise: false, chunkSize: CHUNK });
    const info = await inspect(`${file}.mmh`);
    assert.equal((info.header.metadata as { source: { format: string } }).source.format, "raw");
    assert.deepEqual(info.footer.tensors, []);
    // Raw bytes are cut at every chunk size, ignoring the tensors.
    for (const [i, c] of info.chunks.entries()) assert.equal(c.rawOffset, i * CHUNK);
    await rejectsWith(readTensor(`${file}.mmh`, "model.layers.0.self_attn.q_proj.weight"), "E_NOT_FOUND");
  });
});

describe("readTensor", () => {
  for (const source of sources) {
    test(`${source.name}: every tensor, exactly, touching only its own chunks`, async () => {
      const { bytes, recognised, mmh } = await prepare(source);
      assert.ok(recognised.tensors.length > 0 || source.name === "npz-deflated.npz", "has tensors");
      for (const t of recognised.tensors) {
        const { tensor, data } = await readTensor(mmh, t.name);
        assert.deepEqual(tensor, {
          name: t.name,
          dtype: t.dtype,
          shape: t.shape,
          offset: t.offset,
          length: t.length,
        });
        assert.ok(Buffer.from(data).equals(bytes.subarray(t.offset, t.offset + t.length)), `${t.name} bytes`);
      }
      const spy = spied(await fileSource(mmh));
      const reader = await MmhReader.open(spy.source);
      try {
        for (const t of recognised.tensors) {
          spy.reads.length = 0;
          const data = await reader.readRange(t.offset, t.length);
          assert.ok(Buffer.from(data).equals(bytes.subarray(t.offset, t.offset + t.length)));
          const wanted = overlapping(reader.chunks, t.offset, t.length).map((c) => c.recordOffset);
          assert.deepEqual(
            [...new Set(spy.reads)].sort((a, b) => a - b),
            wanted,
            `${t.name}: chunks read`,
          );
          // A tensor larger than a chunk has chunks of its own: the first starts at its first byte.
          const first = reader.chunks[reader.chunkAt(t.offset)];
          if (t.length > CHUNK && first.codec !== "P251") assert.equal(first.rawOffset, t.offset, t.name);
        }
      } finally {
        await reader.close();
      }
      await rejectsWith(readTensor(mmh, "no.such.tensor"), "E_NOT_FOUND");
      await rejectsWith(readTensor(mmh, ""), "E_NOT_FOUND");
    });
  }

  test("a tensor reads correctly when every other chunk is damaged", async () => {
    const { bytes, recognised, mmh } = await prepare(sources[0]);
    const target = recognised.tensors.find((t) => t.length > 4 * CHUNK && t.offset > 0)!;
    const other = recognised.tensors.find((t) => t.offset > target.offset + target.length)!;
    const reader = await MmhReader.open(await fileSource(mmh));
    const chunks = reader.chunks;
    await reader.close();
    const keep = new Set(overlapping(chunks, target.offset, target.length).map((c) => c.recordOffset));
    assert.ok(keep.size >= 4 && keep.size < chunks.length / 4);
    const damaged = copyOf(readFileSync(mmh));
    for (const record of layoutOf(damaged).records) {
      if (keep.has(record.offset) || record.storedLength === 0) continue;
      damaged[record.payloadOffset + (record.storedLength >> 1)] ^= 0x5a;
    }
    const file = join(dir, "damaged.mmh");
    writeFileSync(file, damaged);
    const { data } = await readTensor(file, target.name);
    assert.ok(Buffer.from(data).equals(bytes.subarray(target.offset, target.offset + target.length)));
    await rejectsWith(readTensor(file, other.name), ["E_CHECKSUM", "E_CORRUPT"]);
    await rejectsWith(verify(file), ["E_CHECKSUM", "E_CORRUPT"]);
  });
});

// ---- HIER ---------------------------------------------------------------------------------

const DTYPES = allDTypes().map((d) => d.name);

/** `data` copied into a larger buffer at byte offset `at`, so its byteOffset is odd. */
function placed(data: Uint8Array, at: number): Uint8Array {
  const big = new Uint8Array(data.length + at + 7).fill(0xcc);
  big.set(data, at);
  return big.subarray(at, at + data.length);
}

/** Encode with HIER through encodeChunk, decode the record, and check every byte. */
function hierRoundTrip(raw: Uint8Array, dtype: DTypeName | null, level: number, label: string): void {
  const before = Buffer.from(raw);
  const chunk = encodeChunk(raw, hierCodec, level, dtype);
  assert.ok(Buffer.from(raw).equals(before), `${label}: input changed`);
  assert.equal(chunk.rawCrc, crc32(raw));
  const params = chunk.header.subarray(36);
  for (const at of [0, 3]) {
    const payload = placed(chunk.payload, at);
    const out = decodeChunk(chunk.codec, params, payload, raw.length, chunk.rawCrc, label);
    assert.ok(Buffer.from(out).equals(before), `${label}: ${chunk.codec} record decodes to other bytes`);
  }
  // The codec itself, even where the record falls back to NONE.
  const encoded = hierCodec.encode(raw, { level, dtype });
  const decoded = hierCodec.decode(
    placed(encoded.payload, 5),
    encoded.params ?? new Uint8Array(0),
    raw.length,
  );
  assert.ok(Buffer.from(decoded).equals(before), `${label}: HIER payload decodes to other bytes`);
}

/** Byte content of several kinds: random, few distinct values, float weights, constant. */
const contentArb = fc.oneof(
  fc.uint8Array({ maxLength: 3000 }),
  fc
    .tuple(fc.uint8Array({ minLength: 1, maxLength: 5 }), fc.array(fc.nat(4), { maxLength: 3000 }))
    .map(([alphabet, picks]) => Uint8Array.from(picks, (k) => alphabet[k % alphabet.length])),
  fc
    .tuple(fc.integer({ min: 0, max: 800 }), fc.integer({ min: 1, max: 1e6 }), fc.integer({ min: 0, max: 3 }))
    .map(([n, seed, cut]) => {
      const bytes = f32Weights(n, 0.02, seed);
      return bytes.subarray(0, Math.max(0, bytes.length - cut));
    }),
  fc.tuple(fc.integer({ min: 0, max: 2000 }), fc.nat(255)).map(([n, v]) => new Uint8Array(n).fill(v)),
);

describe("HIER on every dtype and alignment", () => {
  test("property: round trip for every dtype, odd lengths and odd offsets, every level", () => {
    fc.assert(
      fc.property(
        contentArb,
        fc.constantFrom(...DTYPES, null),
        fc.constantFrom(0, 1, 3, 5),
        fc.constantFrom(-1, 1, 3, 19),
        (data, dtype, at, level) => {
          hierRoundTrip(
            placed(data, at),
            dtype,
            level,
            `${dtype} at +${at}, level ${level}, ${data.length} B`,
          );
        },
      ),
      { numRuns: 400 },
    );
  });

  test("large chunks (sampled stream coding) of every dtype at byte offsets 1, 3, 5", () => {
    const weights = f32Weights((300 << 10) / 4, 0.02, 7);
    const text = textBytes(300 << 10, 8);
    for (const dtype of [...DTYPES, null]) {
      for (const [at, cut] of [
        [1, 1],
        [3, 0],
        [5, 3],
      ]) {
        for (const [kind, content] of [
          ["weights", weights],
          ["text", text],
        ] as const) {
          const raw = placed(content.subarray(0, content.length - cut), at);
          hierRoundTrip(raw, dtype, 3, `${dtype} ${kind} at +${at}, ${raw.length} B`);
        }
      }
    }
  });

  test("without a dtype, F32 weights at offsets 1, 2, 3 (mod 4) are found as f32 with that head", () => {
    const floats = f32Weights(32768, 0.02, 5); // 128 KiB
    for (const filler of ["random", "text"] as const) {
      for (const k of [1, 2, 3, 5, 6, 7]) {
        const fill = (n: number, seed: number) =>
          filler === "random" ? noiseBytes(n, seed) : textBytes(n, seed);
        // The floats sit at byte k of the chunk, between other bytes; the chunk itself is at an odd offset.
        const raw = placed(Buffer.concat([fill(k, k), floats, fill(1001, 9)]), 3);
        assert.ok(raw.length >= 64 << 10);
        const label = `F32 at +${k} in ${filler} bytes`;
        const found = detectLayout(raw);
        assert.equal(found.layout.name, "f32", label);
        assert.equal(found.head, k % 4, label);
        const hier = encodeChunk(raw, hierCodec, 3, null);
        assert.equal(hier.codec, "HIER", label);
        assert.equal(hier.payload[1], 3, `${label}: layout id in the payload is f32`);
        assert.equal(hier.payload[2], k % 4, `${label}: head in the payload`);
        const zstd = encodeChunk(raw, zstdCodec, 3, null);
        const hierSize = hier.header.length + hier.payload.length;
        const zstdSize = zstd.header.length + zstd.payload.length;
        assert.ok(hierSize < zstdSize * 0.95, `${label}: HIER ${hierSize} B vs zstd ${zstdSize} B`);
        const out = decodeChunk("HIER", new Uint8Array(0), hier.payload, raw.length, hier.rawCrc, label);
        assert.ok(Buffer.from(out).equals(Buffer.from(raw)), label);
      }
    }
  });

  test("detectLayout gives the same answer in any order of calls, and its estimate is the order-0 entropy", () => {
    // It reuses working memory from call to call: nothing of one call may reach the next.
    const floats = f32Weights(8192, 0.02, 11);
    const inputs = [
      placed(Buffer.concat([textBytes(3, 1), floats]), 1),
      placed(floats.subarray(0, 1108), 0),
      textBytes(70000, 2),
      noiseBytes(79, 3),
      placed(Buffer.concat([noiseBytes(2, 4), floats.subarray(0, 9000)]), 5),
      Buffer.alloc(5000, 7),
    ];
    const answer = (raw: Uint8Array) => {
      const d = detectLayout(raw);
      return [d.layout.name, d.head, d.estimate];
    };
    const forward = inputs.map(answer);
    const backward = [...inputs].reverse().map(answer).reverse();
    assert.deepEqual(backward, forward);
    for (let i = 0; i < inputs.length; i++) assert.deepEqual(answer(inputs[i]), forward[i]);
    // Text is one stream of bytes: its estimate is the order-0 entropy of the sample taken.
    const text = inputs[2];
    const start = ((text.length - (16 << 10)) >> 1) & ~7;
    const sample = text.subarray(start, start + (16 << 10));
    const counts = new Map<number, number>();
    for (const b of sample) counts.set(b, (counts.get(b) ?? 0) + 1);
    let bits = 0;
    for (const c of counts.values()) bits -= c * Math.log2(c / sample.length);
    const expected = Math.min(sample.length * 8, bits + 256) / (sample.length * 8);
    assert.equal(forward[2][0], "bytes");
    assert.ok(Math.abs((forward[2][2] as number) - expected) < 1e-9, `${forward[2][2]} vs ${expected}`);
  });

  test("a Float32Array copied at byte offset 1 of a buffer", () => {
    const values = new Float32Array(20000);
    const normal = gaussian(rng(99));
    for (let i = 0; i < values.length; i++) values[i] = normal() * 0.02;
    const buffer = noiseBytes(1 + values.byteLength + 3, 100);
    buffer.set(new Uint8Array(values.buffer), 1);
    const found = detectLayout(buffer);
    assert.deepEqual([found.layout.name, found.head], ["f32", 1]);
    const chunk = encodeChunk(buffer, hierCodec, 3, null);
    assert.deepEqual([chunk.payload[1], chunk.payload[2]], [3, 1]);
    const zstd = encodeChunk(buffer, zstdCodec, 3, null);
    assert.ok(
      chunk.payload.length < zstd.payload.length * 0.95,
      `${chunk.payload.length} vs ${zstd.payload.length}`,
    );
  });
});

// ---- P251 runs ----------------------------------------------------------------------------

describe("P251 runs through compress()", () => {
  const RUN = 80 << 20;
  const periodic = generate({ kind: "periodic", size: RUN, seed: 4 });
  const tail = noiseBytes(5000, 41);

  test("80 MiB of a 251-byte pattern is one record of 80 MiB in under 1 KiB, and decompresses", async () => {
    const packed = await compress(periodic);
    assert.ok(packed.length < 1024, `${packed.length} bytes`);
    const reader = await MmhReader.open(bufferSource(packed));
    assert.equal(reader.chunks.length, 1);
    assert.equal(reader.chunks[0].codec, "P251");
    assert.equal(reader.chunks[0].rawLength, RUN);
    assert.ok(RUN > 64 << 20);
    await reader.close();
    const out = await decompress(packed);
    assert.equal(out.length, RUN);
    assert.ok(Buffer.from(out).equals(periodic));
  });

  const file = join(dir, "run.mmh");
  const content = Buffer.concat([periodic, tail]);

  test("readRange anywhere in the run and across its end; verify passes", async () => {
    writeFileSync(file, await compress(content));
    const info = await inspect(file);
    assert.deepEqual(
      info.chunks.map((c) => [c.codec, c.rawOffset, c.rawLength]),
      [
        ["P251", 0, RUN],
        ["NONE", RUN, 5000],
      ],
    );
    const next = prng(77);
    const ranges: [number, number][] = [
      [0, 1],
      [0, 300_000],
      [RUN - 1, 2],
      [RUN - 4000, 9000],
      [RUN - 1234, 1234],
      [RUN, 5000],
      [content.length - 1, 1],
      [1_234_567, 0],
    ];
    for (let i = 0; i < 40; i++) {
      const length = Math.floor(next() * 70_000);
      ranges.push([Math.floor(next() * (content.length - length)), length]);
    }
    for (let i = 0; i < 10; i++) {
      const start = RUN - Math.floor(next() * 20_000);
      ranges.push([start, Math.min(content.length - start, Math.floor(next() * 25_000))]);
    }
    for (const [offset, length] of ranges) {
      const got = await readRange(file, offset, length);
      assert.ok(Buffer.from(got).equals(content.subarray(offset, offset + length)), `${offset}+${length}`);
    }
    await rejectsWith(readRange(file, content.length - 10, 11), "E_NOT_FOUND");
    const summary = await verify(file);
    assert.equal(summary.rawBytes, content.length);
    assert.deepEqual(summary.codecs, { P251: 1, NONE: 1 });
  });

  test("a flipped pattern byte fails the whole run's CRC: E_CHECKSUM, never other bytes", async () => {
    const packed = readFileSync(file);
    const record = layoutOf(packed).records[0];
    assert.equal(record.codec, "P251");
    assert.equal(record.paramsLength, 17);
    assert.equal(packed[record.offset + 36], 0, "the random pattern is stored, not zstd");
    assert.equal(record.storedLength, 251);
    const bad = copyOf(packed);
    bad[record.payloadOffset + 100] ^= 0x01;
    await rejectsWith(decompress(bad), "E_CHECKSUM");
    const badFile = join(dir, "run-flipped.mmh");
    writeFileSync(badFile, bad);
    await rejectsWith(verify(badFile), "E_CHECKSUM");
  });

  test("a ZSTD record declaring more than 64 MiB is E_CORRUPT, even with its CRCs right", async () => {
    const packed = readFileSync(file);
    const layout = layoutOf(packed);
    const record = layout.records[0];
    const bad = copyOf(packed);
    bad.write("ZSTD", record.offset + 4, "latin1");
    fixRecordCrc(bad, record);
    const error = await rejectsWith(decompress(bad), "E_CORRUPT");
    assert.match(error.message, /chunk limit/);
    // With the index entry changed to match, the random-access reader refuses it too.
    const entry = layout.indexOffset + 24;
    bad.write("ZSTD", entry + 24, "latin1");
    fixIndexCrc(bad, layout);
    const badFile = join(dir, "run-zstd.mmh");
    writeFileSync(badFile, bad);
    await rejectsWith(readRange(badFile, 0, 10), "E_CORRUPT");
    await rejectsWith(verify(badFile), "E_CORRUPT");
    // The unchanged record, with its CRC recomputed, still decodes: the edit is what fails.
    const same = copyOf(packed);
    fixRecordCrc(same, record);
    assert.equal((await decompress(same)).length, content.length);
  });
});

// ---- auto ---------------------------------------------------------------------------------

describe("auto", () => {
  const inputs: [string, Buffer][] = [
    ...GEN_DTYPES.map((dtype): [string, Buffer] => [
      `safetensors ${dtype}`,
      generate({ kind: "safetensors", size: 1 << 20, dtype, seed: 5 }),
    ]),
    ["text", generate({ kind: "text", size: 1 << 20, seed: 6 })],
    ["random", generate({ kind: "random", size: 1 << 20, seed: 7 })],
    ["periodic", generate({ kind: "periodic", size: 1 << 20, seed: 8 })],
    ["small text", textBytes(5000, 9)],
  ];
  const real = REAL_FILES.filter((f) => existsSync(join(REAL, f)));

  test("default options are never more than 0.5% larger than zstd", async () => {
    for (const [name, bytes] of inputs) {
      const auto = await compress(bytes);
      const zstd = await compress(bytes, { codec: "zstd" });
      // The header records the goal too (about 20 bytes): compare the chunks and index alone.
      const body = (file: Uint8Array) => file.length - layoutOf(file).headerSize;
      assert.ok(body(auto) <= body(zstd) * 1.005, `${name}: auto ${body(auto)} B, zstd ${body(zstd)} B`);
      if (bytes.length >= 1 << 20)
        assert.ok(
          auto.length <= zstd.length * 1.005,
          `${name}: auto ${auto.length} B, zstd ${zstd.length} B`,
        );
      assert.ok(Buffer.from(await decompress(auto)).equals(bytes), name);
    }
  });

  test("real safetensors files: never more than 0.5% larger than zstd", {
    skip: real.length === 0,
  }, async () => {
    for (const name of real) {
      const bytes = readFileSync(join(REAL, name));
      const auto = await compress(bytes);
      const zstd = await compress(bytes, { codec: "zstd" });
      assert.ok(auto.length <= zstd.length * 1.005, `${name}: auto ${auto.length} B, zstd ${zstd.length} B`);
      assert.ok(Buffer.from(await decompress(auto)).equals(bytes), name);
    }
  });

  test("compressFile reports the time spent choosing", async () => {
    const file = join(dir, "auto-input.safetensors");
    writeFileSync(file, inputs[0][1]);
    const summary = await compressFile(file, `${file}.mmh`, { overwrite: true });
    assert.equal(typeof summary.choiceMs, "number");
    assert.ok(Number.isFinite(summary.choiceMs) && summary.choiceMs >= 0, String(summary.choiceMs));
    assert.ok(summary.choiceMs <= summary.ms, "choosing is part of the whole");
    const fixed = await compressFile(file, `${file}.zstd.mmh`, { codec: "zstd" });
    assert.equal(fixed.choiceMs, 0, "a fixed codec spends nothing on choosing");
  });

  test('goals "speed" and "ratio" round-trip and are recorded', async () => {
    for (const goal of ["speed", "ratio", "balanced"] as const) {
      for (const [name, bytes] of [inputs[0], inputs[2], inputs[5], inputs[7]]) {
        const packed = await compress(bytes.subarray(0, 300_000), { goal });
        assert.ok(
          Buffer.from(await decompress(packed)).equals(bytes.subarray(0, 300_000)),
          `${goal} ${name}`,
        );
        const reader = await MmhReader.open(bufferSource(packed));
        assert.deepEqual((reader.header.metadata as { encoder: unknown }).encoder, {
          codec: "auto",
          goal,
          level: null,
          chunkSize: 512 << 10,
        });
        await reader.close();
      }
    }
    await rejectsWith(compress(inputs[5][1], { goal: "fast" as never }), "E_BAD_OPTION");
  });
});

// ---- generate ------------------------------------------------------------------------------

describe("generate", () => {
  test("deterministic: the same options give the same bytes, another seed other bytes", () => {
    for (const kind of GEN_KINDS) {
      const dtypes = kind === "safetensors" ? GEN_DTYPES : [undefined];
      for (const dtype of dtypes) {
        const options: GenOptions = { kind, size: 50_000, dtype, seed: 12 };
        const a = generate(options);
        assert.ok(a.equals(generate(options)), `${kind} ${dtype}`);
        assert.ok(!a.equals(generate({ ...options, seed: 13 })), `${kind} ${dtype}: seed changes the bytes`);
      }
    }
    assert.ok(
      generate({ kind: "random", size: 1000 }).equals(generate({ kind: "random", size: 1000, seed: 1 })),
    );
  });

  test("text, random and periodic are exactly the size asked", () => {
    for (const kind of ["text", "random", "periodic"] as const) {
      for (const size of [0, 1, 7, 1000, 12_345, 300_001])
        assert.equal(generate({ kind, size }).length, size);
    }
    for (const period of [1, 7, 251, 4096]) {
      const data = generate({ kind: "periodic", size: 100_000, period, seed: 3 });
      assert.deepEqual(findPeriod(data), { period, periodicLength: 100_000 }, `period ${period}`);
    }
    const random = generate({ kind: "random", size: 1 << 16 });
    assert.equal(findPeriod(random), null);
    assert.ok(new Set(random).size === 256);
    assert.match(generate({ kind: "text", size: 2000 }).toString("utf8"), /^\{"step":1,"loss":/);
  });

  test("safetensors: within 3% of the size, recognised, LLM-like names, every dtype", async () => {
    const NAME =
      /^model\.layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj|input_layernorm)\.weight$/;
    // The ggml block dtypes make GGUF files (safetensors has no such dtypes): see gen-quant.test.ts.
    for (const dtype of GEN_DTYPES.filter((d) => !d.startsWith("Q"))) {
      for (const size of [100_000, 1 << 20, 3 << 20]) {
        const bytes = generate({ kind: "safetensors", size, dtype });
        const label = `${dtype} ${size}`;
        assert.ok(Math.abs(bytes.length - size) <= size * 0.03, `${label}: ${bytes.length} bytes`);
        const recognised = await recognise(bufferSource(bytes));
        assert.equal(recognised.format, "safetensors", label);
        const names = recognised.tensors.map((t) => t.name);
        for (const name of names) assert.match(name, NAME, label);
        for (const name of [
          "model.layers.0.self_attn.q_proj.weight",
          "model.layers.0.self_attn.k_proj.weight",
          "model.layers.0.mlp.down_proj.weight",
        ])
          assert.ok(names.includes(name), `${label}: has ${name}`);
        for (const t of recognised.tensors) {
          assert.equal(t.dtype, t.name.endsWith("layernorm.weight") ? "F32" : dtype, `${label}: ${t.name}`);
          assert.equal(t.shape.length, t.name.endsWith("layernorm.weight") ? 1 : 2);
        }
        const meta = recognised.metadata as { metadata?: Record<string, string> } | undefined;
        assert.equal(meta?.metadata?.synthetic, "true", `${label}: labelled synthetic`);
      }
    }
  });

  test("bad options are E_BAD_OPTION", () => {
    const bad: unknown[] = [
      { kind: "nope", size: 10 },
      { kind: "random", size: -1 },
      { kind: "random", size: 1.5 },
      { kind: "random", size: Number.NaN },
      { kind: "random", size: 2 ** 31 + 1 },
      { kind: "safetensors", size: 1000, dtype: "F64" },
      { kind: "safetensors", size: 1000, dtype: "bf16" },
      { kind: "periodic", size: 1000, period: 0 },
      { kind: "periodic", size: 1000, period: 65_537 },
      { kind: "periodic", size: 1000, period: 2.5 },
      { kind: "safetensors", size: 1000, std: Number.NaN },
      { kind: "safetensors", size: 1000, std: 0 },
      { kind: "safetensors", size: 1000, std: -0.02 },
      { kind: "safetensors", size: 1000, std: Number.POSITIVE_INFINITY },
    ];
    for (const options of bad)
      throwsWith(() => generate(options as GenOptions), "E_BAD_OPTION", JSON.stringify(options));
  });
});

// ---- analyze -------------------------------------------------------------------------------

describe("analyze", () => {
  test("generated BF16 safetensors: given dtypes, field entropies, codec candidates, auto = hier", async () => {
    const file = join(dir, "analyze-bf16.safetensors");
    const bytes = generate({ kind: "safetensors", size: 2 << 20, dtype: "BF16", seed: 17 });
    writeFileSync(file, bytes);
    const recognised = await recognise(bufferSource(bytes));
    const report = await analyze(file);
    assert.equal(report.format, "safetensors");
    assert.equal(report.size, bytes.length);
    assert.ok(
      report.warnings.some((w) => /synthetic/.test(w)),
      "says the file is synthetic",
    );
    const tensorRegions = report.regions.filter((r) => r.dtypeSource === "given");
    assert.equal(tensorRegions.length, recognised.tensors.length, "every tensor is reported");
    for (const t of recognised.tensors) {
      const r = report.regions.find((x) => x.name === t.name);
      assert.ok(r, `region for ${t.name}`);
      assert.deepEqual(
        [r.dtype, r.dtypeSource, r.offset, r.length, r.shape],
        [t.dtype, "given", t.offset, t.length, t.shape],
      );
    }
    const bf16 = report.regions.filter((r) => r.dtype === "BF16");
    assert.ok(bf16.length >= 8, `${bf16.length} BF16 regions`);
    for (const r of bf16) {
      assert.equal(r.dtypeSource, "given");
      assert.deepEqual(
        r.fields.map((f) => f.field),
        ["exponent", "sign+mantissa"],
      );
      assert.ok(r.fields[0].bits < 4, `${r.name}: exponent entropy ${r.fields[0].bits}`);
      assert.ok(r.fields[1].bits > 7, `${r.name}: sign+mantissa entropy ${r.fields[1].bits}`);
      assert.deepEqual(
        r.candidates.map((c) => c.codec),
        ["hier", "zstd", "lz4", "brotli", "p251", "none"],
      );
      const ratio = Object.fromEntries(r.candidates.map((c) => [c.codec, c.ratio]));
      assert.ok(ratio.hier < ratio.zstd, `${r.name}: hier ${ratio.hier} vs zstd ${ratio.zstd}`);
      assert.ok(ratio.none > 1 && ratio.none < 1.01, `${r.name}: none ${ratio.none}`);
      assert.equal(r.auto, "hier", r.name);
      assert.ok(r.sampleBytes > 0 && r.sampleBytes <= Math.min(r.length, 256 << 10));
    }
    const header = report.regions[0];
    assert.deepEqual([header.name, header.offset, header.dtype], ["safetensors header", 0, null]);
  });

  test("periodic and constant data are flagged", async () => {
    const periodic = join(dir, "analyze-periodic.bin");
    writeFileSync(periodic, generate({ kind: "periodic", size: 1 << 20, period: 251 }));
    const p = await analyze(periodic);
    assert.equal(p.format, "raw");
    assert.ok(p.regions.length >= 1);
    for (const r of p.regions)
      assert.ok(
        r.warnings.some((w) => /^periodic: repeats every 251 bytes/.test(w)),
        r.name,
      );
    const constant = join(dir, "analyze-zeros.bin");
    writeFileSync(constant, Buffer.alloc(300_000));
    const c = await analyze(constant);
    for (const r of c.regions) {
      assert.ok(
        r.warnings.some((w) => /^constant/.test(w)),
        r.name,
      );
      assert.ok(!r.warnings.some((w) => /^periodic/.test(w)), "constant, not periodic");
    }
    const random = join(dir, "analyze-random.bin");
    writeFileSync(random, generate({ kind: "random", size: 300_000 }));
    for (const r of (await analyze(random)).regions)
      assert.deepEqual(r.warnings, [], "random data has no warning");
  });

  test("a raw file of F32 at offset 1 mod 4 is detected as F32 with head 1", async () => {
    const file = join(dir, "analyze-f32-odd.bin");
    const bytes = Buffer.concat([noiseBytes(5, 31), f32Weights(150_000, 0.02, 32), noiseBytes(3, 33)]);
    writeFileSync(file, bytes);
    const report = await analyze(file);
    assert.equal(report.format, "raw");
    assert.equal(report.regions.length, 1);
    const [r] = report.regions;
    assert.equal(r.dtype, "F32");
    assert.equal(r.dtypeSource, "detected");
    assert.equal(r.head, 1);
    assert.equal(r.fields[0].field, "exponent");
    assert.ok(r.fields[0].bits < 4, `exponent entropy ${r.fields[0].bits}`);
    const ratio = Object.fromEntries(r.candidates.map((c) => [c.codec, c.ratio]));
    assert.ok(ratio.hier < ratio.zstd * 0.95, `hier ${ratio.hier} vs zstd ${ratio.zstd}`);
  });

  test("a missing file is E_IO; bad options are E_BAD_OPTION", async () => {
    await rejectsWith(analyze(join(dir, "missing.bin")), "E_IO");
    const file = join(dir, "analyze-zeros.bin");
    for (const options of [
      { goal: "fast" as never },
      { level: 99 },
      { level: 0 },
      { sampleBytes: 0 },
      { sampleBytes: 1.5 },
      { maxRegions: -1 },
    ])
      await rejectsWith(analyze(file, options), "E_BAD_OPTION", JSON.stringify(options));
    const speed = await analyze(file, { goal: "speed", level: 1, sampleBytes: 1000, maxRegions: 1 });
    assert.equal(speed.regions[0].sampleBytes, 1000);
  });
});
