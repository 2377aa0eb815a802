import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { compressFile, inspect, open } from "../src/index.ts";
import { generate } from "../src/tools/gen.ts";

const dir = await mkdtemp(join(tmpdir(), "mmh-tensor-stream-"));
after(() => rm(dir, { recursive: true, force: true }));

test("tensorStream gives the tensor in pieces of at most one chunk, equal to readTensor", async () => {
  const source = join(dir, "m.safetensors");
  writeFileSync(source, generate({ kind: "safetensors", dtype: "BF16", size: 3 << 20, seed: 9 }));
  const packed = join(dir, "m.mmh");
  await compressFile(source, packed, { chunkSize: 64 << 10 });
  const tensors = (await inspect(packed)).footer.tensors;
  const big = tensors.reduce((a, b) => (b.length > a.length ? b : a));
  assert.ok(big.length > 4 * (64 << 10));
  await using mmh = await open(packed);
  assert.deepEqual(mmh.tensor(big.name), big);
  const parts: Uint8Array[] = [];
  for await (const piece of mmh.tensorStream(big.name)) {
    assert.ok(piece.length <= 64 << 10, `piece of ${piece.length} bytes`);
    parts.push(piece);
  }
  assert.ok(parts.length >= 4);
  assert.ok(Buffer.concat(parts).equals(Buffer.from(await mmh.readTensor(big.name))));
  await assert.rejects(mmh.tensorStream("nope").next(), { code: "E_NOT_FOUND" });
  await assert.rejects(mmh.tensorStream(big.name, { maxOutputBytes: 10 }).next(), { code: "E_LIMIT" });
});
