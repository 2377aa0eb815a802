/**
 * DUPE records (a chunk that repeats an earlier one, FORMAT.md §6.3) and DLTA records (a
 * chunk coded against a base file, §6.4): round trips, random access through them, and
 * hostile references and bases, each refused with a code.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { crc32 } from "node:zlib";
import { codecByName } from "../src/codecs/registry.ts";
import { bufferSource, fileSource, type RandomAccessSource } from "../src/common/source.ts";
import { encodeChunk } from "../src/engine/chunk.ts";
import { describeSource } from "../src/engine/describe.ts";
import { MmhReader } from "../src/engine/reader.ts";
import { encodeDeltaParams, encodeDupeParams, makeDelta } from "../src/engine/refs.ts";
import { repeatedSmallTensors } from "../src/engine/tied.ts";
import {
  compress,
  compressFile,
  decompress,
  decompressFile,
  decompressStream,
  open,
  pack,
  unpack,
  verify,
} from "../src/index.ts";
import { rng } from "../src/tools/gen.ts";
import { assertError, mmhIn } from "./cli-support.ts";
import { assemble, type Rec, rejectsWith, reusing, safetensorsOf, sha256 } from "./support.ts";

const dir = mkdtempSync(join(tmpdir(), "mmh-refs-"));
after(() => rmSync(dir, { recursive: true, force: true }));

type Tensor = [name: string, dtype: "BF16" | "F32", bytes: Buffer];

function safetensors(tensors: Tensor[]): Buffer {
  return safetensorsOf(
    tensors.map(([name, dtype, bytes]) => [name, dtype, [bytes.length / (dtype === "F32" ? 4 : 2)], bytes]),
  );
}

/** `n` F32 weights, about N(0, 0.02). */
function weights(n: number, seed: number): Float32Array {
  const next = rng(seed);
  return Float32Array.from({ length: n }, () => (next() + next() + next() - 1.5) * 0.04);
}

function bf16(values: Float32Array): Buffer {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = Buffer.alloc(values.length * 2);
  for (let i = 0; i < values.length; i++) out.writeUInt16LE(bits[i] >>> 16, i * 2);
  return out;
}

const f32 = (values: Float32Array) => Buffer.from(values.buffer, values.byteOffset, values.byteLength);

async function* pipe(bytes: Uint8Array, piece = 65536): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += piece) yield bytes.subarray(i, i + piece);
}

async function streamed(bytes: Uint8Array, options = {}, piece = 65536): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const part of decompressStream(pipe(bytes, piece), options)) parts.push(part);
  return Buffer.concat(parts);
}

const codecsOf = (file: Uint8Array) =>
  MmhReader.open(bufferSource(file)).then((r) => r.chunks.map((c) => c.codec));

// A model with tied embeddings: the same 1.4 MB tensor first and last.
const embed = bf16(weights(700_000, 1));
const tied = safetensors([
  ["lm_head.weight", "BF16", embed],
  ["model.layer.weight", "BF16", bf16(weights(300_000, 2))],
  ["model.embed_tokens.weight", "BF16", embed],
]);

describe("DUPE: repeated chunks stored as references", () => {
  test("tied embeddings: the second copy costs a few bytes per chunk and round trips every way", async () => {
    const plain = await compress(tied, { dedup: false, long: false, threads: 1 });
    const deduped = await compress(tied, { threads: 1 });
    const codecs = await codecsOf(deduped);
    const refs = codecs.filter((c) => c === "DUPE").length;
    assert.equal(refs, 3, `three chunks of the second copy are references: ${codecs}`);
    assert.ok(!(await codecsOf(plain)).includes("DUPE"));
    // Each reference record is 44 bytes (36 + 8 params) against a chunk of hundreds of KiB.
    const saved = plain.length - deduped.length;
    assert.ok(saved > 0.3 * plain.length, `saved ${saved} of ${plain.length}`);
    assert.ok(Buffer.from(await decompress(deduped)).equals(tied));
    assert.ok((await streamed(deduped)).equals(tied), "a pipe (no seeking) resolves from its kept records");
    // Random access through the reference: its chunks only, and ranges across it.
    const file = await open(deduped);
    try {
      assert.ok(Buffer.from(await file.readTensor("model.embed_tokens.weight")).equals(embed));
      const t = file.tensor("model.embed_tokens.weight");
      const part = await file.readRange(t.offset + 1000, 600_000);
      assert.ok(Buffer.from(part).equals(tied.subarray(t.offset + 1000, t.offset + 601_000)));
      const pieces: Uint8Array[] = [];
      for await (const piece of file.tensorStream("model.embed_tokens.weight")) pieces.push(piece);
      assert.ok(Buffer.concat(pieces).equals(embed));
    } finally {
      await file.close();
    }
    const reader = await MmhReader.open(bufferSource(deduped));
    for (const [i, chunk] of reader.chunks.entries()) {
      const raw = await reader.readChunk(i);
      assert.ok(Buffer.from(raw).equals(tied.subarray(chunk.rawOffset, chunk.rawOffset + chunk.rawLength)));
    }
  });

  test("small tensors stored twice are found alike in memory and in a file, read a few ranges at a time", async () => {
    // Copies side by side and 600 KB apart, tensors alike at both ends but not between,
    // and others of the same shape: only the true copies are planned alone.
    const a = bf16(weights(20_000, 21));
    const b = bf16(weights(20_000, 22));
    const ends = bf16(weights(20_000, 23));
    const middle = Buffer.from(ends);
    middle[20_000] ^= 1;
    const model = safetensors([
      ["a", "BF16", a],
      ["b1", "BF16", b],
      ["b2", "BF16", b],
      ["ends1", "BF16", ends],
      ["ends2", "BF16", middle],
      ["other1", "BF16", bf16(weights(20_000, 24))],
      ["big", "BF16", bf16(weights(300_000, 25))],
      ["other2", "BF16", bf16(weights(20_000, 26))],
      ["a again", "BF16", a],
    ]);
    const path = join(dir, "small-copies.safetensors");
    writeFileSync(path, model);
    const found = async (source: RandomAccessSource) => {
      let reads = 0;
      const counted: RandomAccessSource = {
        size: source.size,
        read: (offset, length) => {
          reads++;
          return source.read(offset, length);
        },
        close: () => source.close(),
      };
      const { recognised } = await describeSource(source, 512 << 10, true, true, false);
      const alone = await repeatedSmallTensors(counted, recognised.regions, 512 << 10);
      return { names: [...alone].map((i) => recognised.regions[i].name).sort(), reads };
    };
    const file = await fileSource(path);
    try {
      const inMemory = await found(bufferSource(model));
      const fromFile = await found(file);
      assert.deepEqual(inMemory.names, ["a", "a again", "b1", "b2"]);
      assert.deepEqual(fromFile.names, inMemory.names);
      // 8 tensors of one shape, two ends each, 6 then read whole: 22 ranges. Ends that meet
      // (one tensor's last bytes, the next one's first) and the 5 side by side are read
      // together: 12 reads.
      assert.ok(fromFile.reads <= 12, `${fromFile.reads} reads`);
    } finally {
      await file.close();
    }
  });

  test("small tensors stored twice get chunks of their own, so the second copy is a reference", async () => {
    // Tensors smaller than a chunk are packed together; a repeated one is planned alone.
    const small = bf16(weights(20_000, 5));
    const model = safetensors([
      ["a.bias", "BF16", bf16(weights(3_000, 6))],
      ["a.weight", "BF16", small],
      ["b.weight", "BF16", bf16(weights(30_000, 7))],
      ["c.bias", "BF16", bf16(weights(3_000, 8))],
      ["c.weight", "BF16", small],
      ["d.weight", "BF16", bf16(weights(30_000, 9))],
    ]);
    const plain = await compress(model, { dedup: false, long: false, threads: 1 });
    const deduped = await compress(model, { long: false, threads: 1 });
    const codecs = await codecsOf(deduped);
    assert.equal(codecs.filter((c) => c === "DUPE").length, 1, codecs.join(" "));
    assert.ok(plain.length - deduped.length > small.length * 0.4, `${plain.length} -> ${deduped.length}`);
    assert.ok(Buffer.from(await decompress(deduped)).equals(model));
    const file = await open(deduped);
    try {
      assert.ok(Buffer.from(await file.readTensor("c.weight")).equals(small));
      assert.ok(Buffer.from(await file.readTensor("d.weight")).equals(model.subarray(-60_000)));
    } finally {
      await file.close();
    }
    // Without deduplication the plan packs them as before.
    assert.ok((await codecsOf(plain)).length < codecs.length);
  });

  test("a file compressed to disk dedups, decodes with threads, verifies, and files without repeats are unchanged", async () => {
    const src = join(dir, "tied.safetensors");
    writeFileSync(src, tied);
    const out = join(dir, "tied.mmh");
    const summary = await compressFile(src, out, { overwrite: true, threads: 2 });
    assert.equal(summary.codecs.DUPE, 3);
    const back = join(dir, "tied.out");
    await decompressFile(out, back, { overwrite: true, threads: 2, checkSha256: true });
    assert.ok(readFileSync(back).equals(tied));
    assert.equal((await verify(out)).sha256, sha256(tied));
    // No repeats: deduplication changes nothing, byte for byte.
    const single = safetensors([["w", "BF16", embed]]);
    assert.ok(
      Buffer.from(await compress(single, { threads: 1 })).equals(
        Buffer.from(await compress(single, { threads: 1, dedup: false })),
      ),
    );
  });

  test("pack: shards that repeat tensors refer across files; unpack and extract restore them", async () => {
    const model = join(dir, "model");
    mkdirSync(model, { recursive: true });
    // Two whole chunks: a tensor's last piece may share a chunk with the tensor after it.
    const shared = bf16(weights(524_288, 7));
    const a = safetensors([
      ["shared", "BF16", shared],
      ["a.own", "BF16", bf16(weights(100_000, 8))],
    ]);
    const b = safetensors([
      ["b.own", "BF16", bf16(weights(100_000, 9))],
      ["shared", "BF16", shared],
    ]);
    writeFileSync(join(model, "a.safetensors"), a);
    writeFileSync(join(model, "b.safetensors"), b);
    const archive = join(dir, "model.mmh");
    const summary = await pack(model, archive, { overwrite: true, threads: 1 });
    assert.equal(summary.codecs.DUPE, 2, JSON.stringify(summary.codecs));
    const restored = join(dir, "restored");
    await unpack(archive, restored, { overwrite: true });
    assert.ok(readFileSync(join(restored, "b.safetensors")).equals(b));
    const file = await open(archive);
    try {
      assert.ok(Buffer.from(await file.readEntry("b.safetensors")).equals(b));
      assert.ok(Buffer.from(await file.readTensor("shared", { file: "b.safetensors" })).equals(shared));
    } finally {
      await file.close();
    }
  });
});

// ---- hand-assembled containers ------------------------------------------------------------

function zstdRecord(raw: Buffer): Rec {
  const chunk = encodeChunk(raw, codecByName("zstd"), 3);
  return { raw, codec: chunk.codec, payload: chunk.payload };
}

const text = (n: number, seed: number) =>
  Buffer.from(Array.from({ length: n }, (_, i) => `line ${seed}:${i} of the text\n`).join(""));

const a = text(200, 1);
const b = text(200, 2);
const dupe = (raw: Buffer, target: number, extra: Partial<Rec> = {}): Rec => ({
  raw,
  codec: "DUPE",
  params: encodeDupeParams(target),
  payload: new Uint8Array(0),
  ...extra,
});

/** Every reader must refuse `file` with `code`: bytes in memory, a pipe, a file, random access. */
async function refusedEverywhere(file: Buffer, code: "E_CORRUPT" | "E_CHECKSUM", what: string) {
  await rejectsWith(decompress(file), code, `${what}: decompress: `);
  await rejectsWith(streamed(file), code, `${what}: pipe: `);
  const path = join(dir, "hostile.mmh");
  writeFileSync(path, file);
  await rejectsWith(verify(path), code, `${what}: verify: `);
  const reader = await MmhReader.open(bufferSource(file));
  await rejectsWith(reader.readRange(0, reader.rawLength), code, `${what}: readRange: `);
}

describe("DUPE: hostile references", () => {
  test("a sound hand-made reference decodes", async () => {
    const good = assemble([zstdRecord(a), zstdRecord(b), dupe(a, 0)]);
    const content = Buffer.concat([a, b, a]);
    assert.ok(Buffer.from(await decompress(good)).equals(content));
    assert.ok((await streamed(good)).equals(content));
  });

  const cases: [string, Rec[], "E_CORRUPT" | "E_CHECKSUM"][] = [
    ["self", [zstdRecord(a), dupe(a, 1)], "E_CORRUPT"],
    ["forward", [zstdRecord(a), dupe(b, 2), zstdRecord(b)], "E_CORRUPT"],
    ["out of range", [zstdRecord(a), dupe(a, 99)], "E_CORRUPT"],
    ["huge chunk number", [zstdRecord(a), dupe(a, 2 ** 60)], "E_CORRUPT"],
    // 1 -> 0 is sound, 2 -> 1 is a chain (and 1 -> 2 would be forward): no cycle can form.
    ["a chain (to a DUPE record)", [zstdRecord(a), dupe(a, 0), dupe(a, 1)], "E_CORRUPT"],
    ["cyclic", [zstdRecord(b), dupe(a, 2), dupe(a, 1)], "E_CORRUPT"],
    ["another length than its target", [zstdRecord(a), dupe(b.subarray(0, 100), 0)], "E_CORRUPT"],
    ["another CRC than its target", [zstdRecord(a), dupe(a, 0, { crc: crc32(a) ^ 1 })], "E_CORRUPT"],
    ["a payload", [zstdRecord(a), dupe(a, 0, { payload: new Uint8Array(1) })], "E_CORRUPT"],
    ["params of 4 bytes", [zstdRecord(a), dupe(a, 0, { params: new Uint8Array(4) })], "E_CORRUPT"],
  ];
  for (const [what, records, code] of cases) {
    test(`a reference ${what} is ${code}`, async () => {
      await refusedEverywhere(assemble(records), code, what);
    });
  }

  test("a pipe resolves references from kept records whether or not its source reuses its pieces", async () => {
    // The tied model after 5 MiB of other weights: the first 4 MiB of records a pipe keeps
    // are copied in any case, the later ones only where the source may reuse their memory.
    const content = safetensors([
      ["other.weight", "F32", f32(weights(5 << 18, 3))],
      ["lm_head.weight", "BF16", embed],
      ["model.layer.weight", "BF16", bf16(weights(300_000, 2))],
      ["model.embed_tokens.weight", "BF16", embed],
    ]);
    const deduped = await compress(content, { threads: 1 });
    assert.ok((await codecsOf(deduped)).includes("DUPE"));
    // Pieces larger than a record, so that a kept payload can be a view of a piece: kept as
    // it is when the source keeps its pieces, copied when the source writes every piece
    // into the same memory (decoding with `reuse`, whose queue detaches from the source).
    for (const piece of [1 << 20, 65536, 1000]) {
      assert.ok((await streamed(deduped, {}, piece)).equals(content), `pieces of ${piece}`);
      const parts: Buffer[] = [];
      for await (const part of decompressStream(reusing(deduped, piece), { reuse: true, threads: 1 }))
        parts.push(Buffer.from(part));
      assert.ok(Buffer.concat(parts).equals(content), `a source reusing pieces of ${piece}`);
    }
  });

  test("a pipe keeps 4 MiB of records: a reference further back is E_LIMIT there, and reads from a file", async () => {
    const big = (seed: number) => Buffer.alloc(3 << 20, seed);
    // NONE records of 3 MiB: after two, the first record is no longer kept by a pipe.
    const file = assemble([
      zstdRecord(a),
      { raw: big(1), codec: "NONE", payload: big(1) },
      { raw: big(2), codec: "NONE", payload: big(2) },
      dupe(a, 0),
    ]);
    await rejectsWith(streamed(file), "E_LIMIT", "pipe: ");
    const path = join(dir, "far.mmh");
    writeFileSync(path, file);
    const back = join(dir, "far.out");
    await decompressFile(path, back, { overwrite: true });
    assert.equal(readFileSync(back).subarray(-a.length).toString(), a.toString());
    rmSync(back);
  });
});

describe("a pipe reading payloads into its ring of kept records", () => {
  const mib = 1 << 20;
  const random = (n: number, seed: number) => {
    const next = rng(seed);
    return Buffer.from(Uint8Array.from({ length: n }, () => Math.floor(next() * 256)));
  };
  // NONE records of 1.5 MiB of distinct bytes: the third lies across the end of the 4 MiB
  // ring, the fourth over the start of the second, which is then no longer kept.
  const raws = [0, 1, 2, 3].map((seed) => random(1.5 * mib, 40 + seed));
  const records: Rec[] = raws.map((raw) => ({ raw, codec: "NONE", payload: raw }));
  const file = assemble([...records, dupe(raws[2], 2), zstdRecord(a), dupe(raws[3], 3), dupe(a, 5)]);
  const content = Buffer.concat([...raws, raws[2], a, raws[3], a]);

  async function reused(bytes: Uint8Array, piece: number, threads = 1): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const part of decompressStream(reusing(bytes, piece), { reuse: true, threads }))
      parts.push(Buffer.from(part));
    return Buffer.concat(parts);
  }
  const message = (work: Promise<unknown>) =>
    work.then(
      () => assert.fail("expected an error"),
      (error: { code?: string; message: string }) => `${error.code}: ${error.message}`,
    );

  test("targets across the ring's wrap resolve, pieces reused by the source right after", async () => {
    for (const piece of [1000, 65536, mib + 7]) {
      for (const threads of [1, 2]) {
        assert.ok(
          (await reused(file, piece, threads)).equals(content),
          `pieces of ${piece}, ${threads} threads`,
        );
      }
      assert.ok((await streamed(file, {}, piece)).equals(content), `pieces of ${piece}, kept by the source`);
    }
  });

  test("a target the ring has been written over is E_LIMIT, never other bytes", async () => {
    const far = assemble([...records, dupe(raws[1], 1)]);
    await rejectsWith(reused(far, 65536), "E_LIMIT", "reuse: ");
    await rejectsWith(streamed(far), "E_LIMIT", "no reuse: ");
  });

  test("input cut short in a payload, within or across the ring's end, is E_TRUNCATED as without reuse", async () => {
    // Cuts inside the first, second and third records' payloads (the third's before the
    // ring's end and past it), and inside the zstd record.
    for (const cut of [mib, 2 * mib, 3.5 * mib, 4 * mib + 200_000, 6 * mib + 60]) {
      const short = file.subarray(0, cut);
      const plain = await message(streamed(short));
      assert.match(plain, /^E_TRUNCATED: unexpected end of data at offset \d+ while reading/);
      assert.ok(plain.includes(`at offset ${cut} while reading`), plain);
      for (const piece of [1000, 65536])
        assert.equal(await message(reused(short, piece)), plain, `cut at ${cut}`);
    }
  });
});

// ---- deltas --------------------------------------------------------------------------------

describe("DLTA: deltas against a base", () => {
  const n = 300_000;
  const baseW = weights(n, 11);
  const step = weights(n, 12);
  const tunedW = baseW.map((x, i) => x + step[i] * 0.002);
  const base = safetensors([
    ["layer.weight", "F32", f32(baseW)],
    ["layer.bias", "BF16", bf16(weights(4096, 13))],
  ]);
  const tuned = safetensors([
    ["layer.weight", "F32", f32(tunedW)],
    ["layer.bias", "BF16", bf16(weights(4096, 13))],
    ["extra.weight", "F32", f32(weights(50_000, 14))],
  ]);
  const basePath = join(dir, "base.safetensors");
  const tunedPath = join(dir, "tuned.safetensors");
  writeFileSync(basePath, base);
  writeFileSync(tunedPath, tuned);
  const out = join(dir, "tuned.mmh");

  test("a fine-tune against its base: smaller, and decodes with the base only", async () => {
    const alone = await compressFile(tunedPath, join(dir, "alone.mmh"), { overwrite: true });
    const delta = await compressFile(tunedPath, out, { overwrite: true, base: basePath });
    assert.ok(delta.codecs.DLTA >= 1, JSON.stringify(delta.codecs));
    assert.ok(delta.storedBytes < 0.8 * alone.storedBytes, `${delta.storedBytes} vs ${alone.storedBytes}`);
    const file = await open(out, { base: basePath });
    try {
      assert.deepEqual(file.header.metadata.base, [{ name: "base.safetensors", sha256: sha256(base) }]);
      assert.ok(Buffer.from(await file.readTensor("layer.weight")).equals(f32(tunedW)));
      assert.ok(Buffer.from(await file.readTensor("extra.weight")).equals(tuned.subarray(-200_000)));
    } finally {
      await file.close();
    }
    const back = join(dir, "tuned.out");
    await decompressFile(out, back, { overwrite: true, base: basePath, checkSha256: true });
    assert.ok(readFileSync(back).equals(tuned));
    // A folder holding the base serves too; and a pipe reads the base at offsets.
    assert.ok((await streamed(readFileSync(out), { base: dir })).equals(tuned));
    assert.equal((await verify(out, { base: basePath })).sha256, sha256(tuned));
  });

  test("no base is E_NOT_FOUND; the wrong one E_BASE_MISMATCH; every reader", async () => {
    const bytes = readFileSync(out);
    await rejectsWith(decompress(bytes), "E_NOT_FOUND", "no base: ");
    await rejectsWith(streamed(bytes), "E_NOT_FOUND", "no base, pipe: ");
    await rejectsWith(decompress(bytes, { base: tunedPath }), "E_BASE_MISMATCH", "wrong base: ");
    await rejectsWith(verify(out, { base: tunedPath }), "E_BASE_MISMATCH", "verify: ");
    await rejectsWith(
      decompress(bytes, { base: join(dir, "missing") }),
      "E_IO",
      "a base that is not there: ",
    );
    const file = await open(out);
    try {
      await rejectsWith(file.readTensor("layer.weight"), "E_NOT_FOUND", "open without base: ");
      // A tensor coded on its own still reads without the base.
      assert.ok(Buffer.from(await file.readTensor("extra.weight")).equals(tuned.subarray(-200_000)));
    } finally {
      await file.close();
    }
    const wrong = await open(out, { base: tunedPath });
    await rejectsWith(wrong.readTensor("layer.weight"), "E_BASE_MISMATCH", "open, wrong base: ");
    await wrong.close();
  });

  test("pack --base: a folder against a base folder", async () => {
    const baseDir = join(dir, "base-model");
    const tunedDir = join(dir, "tuned-model");
    mkdirSync(baseDir, { recursive: true });
    mkdirSync(tunedDir, { recursive: true });
    writeFileSync(join(baseDir, "model.safetensors"), base);
    writeFileSync(join(tunedDir, "model.safetensors"), tuned);
    writeFileSync(join(tunedDir, "config.json"), '{"note": "fine-tuned"}\n');
    const archive = join(dir, "tuned-model.mmh");
    const summary = await pack(tunedDir, archive, { overwrite: true, base: baseDir });
    assert.ok(summary.codecs.DLTA >= 1);
    const restored = join(dir, "tuned-restored");
    await rejectsWith(unpack(archive, restored), "E_NOT_FOUND", "unpack without the base: ");
    await unpack(archive, restored, { overwrite: true, base: baseDir });
    assert.ok(readFileSync(join(restored, "model.safetensors")).equals(tuned));
  });

  // Hostile DLTA records, around a sound one.
  const raw = f32(tunedW.subarray(0, 4096));
  const baseBytes = f32(baseW.subarray(0, 4096));
  const basePart = join(dir, "base-part.bin");
  writeFileSync(basePart, baseBytes);
  const delta = (overrides: Partial<Parameters<typeof encodeDeltaParams>[0]> = {}, mode = 0): Rec => {
    const diff = makeDelta(raw, baseBytes, overrides.mode ?? mode);
    const inner = encodeChunk(diff, codecByName("zstd"), 3);
    return {
      raw,
      codec: "DLTA",
      params: encodeDeltaParams({
        mode,
        baseSha256: sha256(baseBytes),
        baseOffset: 0,
        inner: inner.codec,
        innerParams: new Uint8Array(0),
        ...overrides,
      }),
      payload: inner.payload,
    };
  };

  test("XOR and the subtractions decode; hostile params are refused", async () => {
    for (const mode of [0, 2, 3, 4]) {
      const file = assemble([delta({}, mode)]);
      assert.ok(Buffer.from(await decompress(file, { base: basePart })).equals(raw), `mode ${mode}`);
    }
    const half = raw.subarray(0, 2000);
    const sub16 = makeDelta(half, baseBytes.subarray(0, 2000), 1);
    const inner = encodeChunk(sub16, codecByName("zstd"), 3);
    const file16 = assemble([
      {
        raw: half,
        codec: "DLTA",
        params: encodeDeltaParams({
          mode: 1,
          baseSha256: sha256(baseBytes),
          baseOffset: 0,
          inner: inner.codec,
          innerParams: new Uint8Array(0),
        }),
        payload: inner.payload,
      },
    ]);
    assert.ok(Buffer.from(await decompress(file16, { base: basePart })).equals(half));

    const bad: [string, Rec, string][] = [
      ["mode 5 with no block table", delta({ mode: 5 }), "E_CORRUPT"],
      ["mode 11", delta({ mode: 11 }), "E_CORRUPT"],
      ["inner codec DUPE", delta({ inner: "DUPE" }), "E_CORRUPT"],
      ["inner codec unknown", delta({ inner: "QQQQ" }), "E_UNSUPPORTED"],
      ["base offset past the base", delta({ baseOffset: 100 }), "E_BASE_MISMATCH"],
      ["params cut short", { ...delta(), params: delta().params!.subarray(0, 40) }, "E_CORRUPT"],
    ];
    for (const [what, record, code] of bad) {
      const file = assemble([record]);
      await rejectsWith(decompress(file, { base: basePart }), code as "E_CORRUPT", `${what}: `);
      const reader = await MmhReader.open(bufferSource(file), basePart);
      await rejectsWith(
        reader.readRange(0, reader.rawLength),
        code as "E_CORRUPT",
        `${what}, random access: `,
      );
      await reader.close();
    }
    // Another base offset decodes to other bytes: the CRC-32 catches it.
    await rejectsWith(
      decompress(assemble([delta({ baseOffset: 4 })]), { base: join(dir, "base.safetensors") }),
      "E_BASE_MISMATCH",
    );
  });
});

describe("CLI: --base and --no-dedup", () => {
  test("compress --base, -d with the right, wrong and no base; --no-dedup", () => {
    const mmh = mmhIn(dir);
    const tiedPath = join(dir, "tied-cli.safetensors");
    writeFileSync(tiedPath, tied);
    let r = mmh(["compress", "tied-cli.safetensors", "-o", "t1.mmh", "-f", "-q"]);
    assert.equal(r.code, 0, r.stderr);
    r = mmh(["compress", "tied-cli.safetensors", "-o", "t2.mmh", "-f", "-q", "--no-dedup"]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(readFileSync(join(dir, "t1.mmh")).length < readFileSync(join(dir, "t2.mmh")).length);
    r = mmh(["-d", "-c", "t1.mmh"]);
    assert.ok(r.stdout.equals(tied));
    r = mmh(["-d", "-c"], readFileSync(join(dir, "t1.mmh")));
    assert.ok(r.stdout.equals(tied), "from standard input");

    r = mmh(["compress", "tuned.safetensors", "--base", "base.safetensors", "-o", "d.mmh", "-f", "-q"]);
    assert.equal(r.code, 0, r.stderr);
    assertError(mmh(["-d", "d.mmh", "-o", "d.out", "-f"]), "E_NOT_FOUND", 1);
    assertError(
      mmh(["-d", "d.mmh", "-o", "d.out", "-f", "--base", "tuned.safetensors"]),
      "E_BASE_MISMATCH",
      1,
    );
    r = mmh(["-d", "-c", "d.mmh", "--base", "base.safetensors"]);
    assert.ok(r.stdout.equals(readFileSync(join(dir, "tuned.safetensors"))));
    r = mmh(["extract", "d.mmh", "--tensor", "layer.weight", "-c", "--base", "base.safetensors"]);
    assert.equal(r.code, 0, r.stderr);
    assertError(mmh(["info", "d.mmh", "--base", "x"]), "E_USAGE", 2);
    assertError(mmh(["-d", "d.mmh", "--no-dedup"]), "E_USAGE", 2);
  });
});
