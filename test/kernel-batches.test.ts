/**
 * The one-thread decode of the mmh command (decompressFileStream with `exclusive`, one
 * thread) reads records into the HIER kernels' memory and decodes them where they lie
 * (src/engine/kernelbatches.ts): the same bytes as every other decode, over more batches
 * than the input area has slots, and coded errors on damaged files, the area given back.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { safetensors, safetensorsData, tile, toBf16, toF16 } from "../bench/lib/derived.ts";
import { kernels } from "../src/codecs/hier/kernels.ts";
import { compress, decompress, decompressFileStream, inspect } from "../src/index.ts";
import { rejectsWith } from "./support.ts";

const DATA = resolve(import.meta.dirname, "../../shared/data");
const weights = safetensorsData(join(DATA, "lora-imdb-distilbert_adapter_model.safetensors"));

let dir = "";
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "mmh-kernel-batches-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Whether the kernels' input area is held now (holdInput refuses a second one). */
function areaHeld(): boolean {
  const k = kernels();
  if (!k) return false;
  const area = k.holdInput(64, 0);
  if (area) k.dropInput();
  return area === undefined;
}

/** The file's content through the command's decode, each piece copied (pieces are lent). */
async function decodeLikeTheCommand(file: string): Promise<{ bytes: Buffer; held: boolean }> {
  const pieces: Buffer[] = [];
  let held = false;
  for await (const piece of decompressFileStream(file, { threads: 1, reuse: true, exclusive: true })) {
    held ||= areaHeld();
    pieces.push(Buffer.from(piece));
  }
  return { bytes: Buffer.concat(pieces), held };
}

const inputs = {
  BF16: () => safetensors("BF16", tile([toBf16(weights)], 7 << 20)),
  F16: () => safetensors("F16", tile([toF16(weights)], 7 << 20)),
  F32: () => safetensors("F32", tile([weights], 9 << 20)),
};

describe("one-thread decode from the kernels' memory", () => {
  for (const [dtype, make] of Object.entries(inputs)) {
    test(`${dtype}: the same bytes as decompress(), the area held while decoding and given back`, async () => {
      const raw = make();
      const packed = await compress(raw, { threads: 1 });
      const file = join(dir, `${dtype}.mmh`);
      await writeFile(file, packed);
      const info = await inspect(file);
      assert.ok(info.chunks.length > 8, "several batches of records");
      const { bytes, held } = await decodeLikeTheCommand(file);
      assert.ok(bytes.equals(raw), "decoded bytes differ from the input");
      assert.ok(bytes.equals(Buffer.from(await decompress(packed, { threads: 1 }))));
      if (kernels()) assert.ok(held, "the records were read into the kernels' memory");
      assert.equal(areaHeld(), false, "the input area is given back");
    });
  }

  test("a damaged record: a coded error, and the area given back", async () => {
    const raw = inputs.BF16();
    const packed = Buffer.from(await compress(raw, { threads: 1 }));
    const file = join(dir, "packed.mmh");
    await writeFile(file, packed);
    const info = await inspect(file);
    for (const chunk of [info.chunks[1], info.chunks[info.chunks.length - 2]]) {
      const damaged = Buffer.from(packed);
      // A payload byte well inside the record: its Huffman data or a stored stream.
      damaged[chunk.recordOffset + Math.floor(chunk.recordLength / 2)] ^= 0x5a;
      const bad = join(dir, `damaged-${chunk.recordOffset}.mmh`);
      await writeFile(bad, damaged);
      await rejectsWith(decodeLikeTheCommand(bad), ["E_CHECKSUM", "E_CORRUPT"]);
      assert.equal(areaHeld(), false, "the input area is given back after an error");
    }
  });
});
