import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { isMmhError } from "../src/common/errors.ts";
import { bufferSource } from "../src/common/source.ts";
import { MmhReader } from "../src/engine/reader.ts";
import { POOL_AFTER_BYTES } from "../src/engine/schedule.ts";
import { compress, decompress } from "../src/index.ts";
import { generate } from "../src/tools/gen.ts";

describe("worker threads", () => {
  // Large enough that the pool starts (it waits for POOL_AFTER_BYTES of content).
  const content = Buffer.concat([
    generate({ kind: "safetensors", dtype: "BF16", size: 12 << 20, seed: 5 }),
    generate({ kind: "text", size: 4 << 20, seed: 6 }),
    generate({ kind: "random", size: 2 << 20, seed: 7 }),
  ]);
  assert.ok(content.length > 2 * POOL_AFTER_BYTES);

  test("1, 2 and 4 threads write the same bytes, for auto and a fixed codec", async () => {
    for (const codec of ["auto", "zstd"]) {
      const one = Buffer.from(await compress(content, { codec, threads: 1 }));
      for (const threads of [2, 4]) {
        const many = Buffer.from(await compress(content, { codec, threads }));
        assert.ok(many.equals(one), `${codec}: ${threads} threads differ from 1`);
      }
      for (const threads of [1, 2]) {
        assert.ok(
          Buffer.from(await decompress(one, { threads })).equals(content),
          `${codec}: decode with ${threads}`,
        );
      }
    }
  });

  test("a damaged chunk decoded on a worker is refused with its code, after the chunks before it", async () => {
    const packed = Buffer.from(await compress(content, { codec: "zstd", threads: 1 }));
    const reader = await MmhReader.open(bufferSource(packed));
    const victim = reader.chunks[Math.floor(reader.chunks.length * 0.75)];
    assert.equal(victim.codec, "ZSTD");
    const damaged = Buffer.from(packed);
    damaged[victim.recordOffset + victim.recordLength - 10] ^= 0x55;
    await assert.rejects(decompress(damaged, { threads: 2 }), (error: unknown) => {
      assert.ok(isMmhError(error), String(error));
      assert.match(error.code, /^E_(CHECKSUM|CORRUPT)$/);
      assert.match(error.message, new RegExp(`offset ${victim.recordOffset}\\b`));
      return true;
    });
  });

  test("threads must be 1 to 256", async () => {
    for (const threads of [0, -1, 1.5, 257]) {
      await assert.rejects(compress(content.subarray(0, 100), { threads }), { code: "E_BAD_OPTION" });
    }
  });
});
