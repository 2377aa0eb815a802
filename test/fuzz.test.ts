/**
 * Exhaustive small-file fuzzing: every single-byte flip and every truncation of a small
 * multi-chunk file must either be refused with a coded MmhError or decode to exactly the
 * original. Nothing may decode silently to different bytes, and nothing may throw
 * anything but an MmhError. Checked through the streaming decoder (decompress) and the
 * random-access reader (MmhReader.readRange over the whole content).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { bufferSource } from "../src/common/source.ts";
import { HEADER_FIXED_SIZE, TRAILER_SIZE } from "../src/container/format.ts";
import { MmhReader } from "../src/engine/reader.ts";
import { compress, decompress } from "../src/index.ts";
import {
  fixHeaderCrc,
  fixIndexCrc,
  fixRecordCrc,
  fixTrailerCrc,
  type Layout,
  layoutOf,
  rejectsWith,
  settle,
  textBytes,
} from "./support.ts";

const CHUNK = 4096;
const DATA_ERRORS: readonly string[] = ["E_CORRUPT", "E_CHECKSUM", "E_TRUNCATED", "E_UNSUPPORTED"];
/** About 9000 bytes of compressible text: three chunks, about a kilobyte compressed. */
const original = textBytes(9000, 2025);

async function viaReader(bytes: Uint8Array): Promise<Uint8Array> {
  const reader = await MmhReader.open(bufferSource(bytes));
  try {
    return await reader.readRange(0, reader.rawLength);
  } finally {
    await reader.close();
  }
}

interface Tally {
  rejected: number;
  identical: number;
  codes: Record<string, number>;
}

/** Decode through both readers: each must refuse with a code or give back the original. */
async function mustNotLie(bytes: Uint8Array, what: string, tally: Tally): Promise<void> {
  for (const [name, decode] of [
    ["decompress", decompress],
    ["reader", viaReader],
  ] as const) {
    const result = await settle(() => decode(bytes));
    if (result.ok) {
      assert.ok(
        Buffer.from(result.value).equals(original),
        `${what}: ${name} decoded silently to different bytes`,
      );
      tally.identical++;
    } else {
      // Bad data is one of these; E_INTERNAL would be a bug wrapped by the API's guard.
      assert.ok(
        DATA_ERRORS.includes(result.error.code),
        `${what}: ${name} gave ${result.error.code}: ${result.error.message}`,
      );
      tally.rejected++;
      tally.codes[result.error.code] = (tally.codes[result.error.code] ?? 0) + 1;
    }
  }
}

/** Recompute every header, record, index and trailer CRC at the original file's positions. */
function fixAllCrcs(buf: Buffer, layout: Layout): void {
  const metadataLength = buf.readUInt32LE(12);
  if (metadataLength === layout.metadataLength) fixHeaderCrc(buf);
  for (const record of layout.records) {
    if (buf.readUInt16LE(record.offset + 28) === record.paramsLength) fixRecordCrc(buf, record);
  }
  fixIndexCrc(buf, layout);
  fixTrailerCrc(buf);
}

for (const codec of ["zstd", "lz4", "brotli"]) {
  describe(`fuzz: a small ${codec} file`, async () => {
    const packed = Buffer.from(await compress(original, { codec, chunkSize: CHUNK }));
    const layout = layoutOf(packed);

    test("the sample has at least two chunks, compressed with the codec", async () => {
      assert.ok(layout.records.length >= 2);
      assert.ok(packed.length < original.length / 2, `${packed.length} bytes`);
      assert.ok(layout.records.every((record) => record.codec !== "NONE"));
      assert.ok(Buffer.from(await decompress(packed)).equals(original));
      assert.ok(Buffer.from(await viaReader(packed)).equals(original));
    });

    test("every single-byte flip (XOR 0xFF and XOR 0x01) is refused with a code or harmless", async () => {
      const tally: Tally = { rejected: 0, identical: 0, codes: {} };
      for (let i = 0; i < packed.length; i++) {
        for (const mask of [0xff, 0x01]) {
          const bad = Buffer.from(packed);
          bad[i] ^= mask;
          await mustNotLie(bad, `byte ${i} ^ 0x${mask.toString(16)}`, tally);
        }
      }
      assert.equal(tally.rejected + tally.identical, packed.length * 4);
      assert.ok(tally.rejected > packed.length * 4 * 0.9, `most flips are refused: ${JSON.stringify(tally)}`);
    });

    test("every flip outside the payloads is refused by the streaming decoder", async () => {
      // Header, record headers, index and trailer each carry a CRC-32 of their own bytes.
      // (A payload flip may be harmless: an LZ match can point at an equal earlier copy.)
      const inPayload = (i: number) => layout.records.some((r) => i >= r.payloadOffset && i < r.end);
      for (let i = 0; i < packed.length; i++) {
        if (inPayload(i)) continue;
        for (const mask of [0xff, 0x01]) {
          const bad = Buffer.from(packed);
          bad[i] ^= mask;
          await rejectsWith(
            decompress(bad),
            ["E_CORRUPT", "E_CHECKSUM", "E_UNSUPPORTED", "E_TRUNCATED"],
            `byte ${i} ^ 0x${mask.toString(16)}: `,
          );
        }
      }
    });

    test("every single-byte flip with all structure CRCs recomputed is refused or harmless", async () => {
      // With the checksums in front of them recomputed, flips reach the field checks
      // behind them; the chunk CRC-32 and content sha256 remain the last line.
      const tally: Tally = { rejected: 0, identical: 0, codes: {} };
      for (let i = 0; i < packed.length; i++) {
        for (const mask of [0xff, 0x01, 0x80]) {
          const bad = Buffer.from(packed);
          bad[i] ^= mask;
          fixAllCrcs(bad, layout);
          if (bad.equals(packed)) continue; // the flip hit a CRC field and was undone
          await mustNotLie(bad, `byte ${i} ^ 0x${mask.toString(16)} (CRCs recomputed)`, tally);
        }
      }
      assert.ok(tally.rejected > 0, JSON.stringify(tally));
    });

    test("every truncation is refused with a code", async () => {
      for (let length = 0; length < packed.length; length++) {
        const cut = packed.subarray(0, length);
        await rejectsWith(decompress(cut), "E_TRUNCATED", `decompress, length ${length}: `);
        await rejectsWith(() => viaReader(cut), ["E_TRUNCATED", "E_CORRUPT"], `reader, length ${length}: `);
      }
    });

    test("property: random edits (overwrites, insertions, deletions) never decode to other bytes", async () => {
      const edit = fc.oneof(
        fc.record({
          kind: fc.constant("set" as const),
          at: fc.nat(),
          value: fc.integer({ min: 0, max: 255 }),
        }),
        fc.record({
          kind: fc.constant("insert" as const),
          at: fc.nat(),
          value: fc.integer({ min: 0, max: 255 }),
        }),
        fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), value: fc.constant(0) }),
      );
      await fc.assert(
        fc.asyncProperty(
          fc.array(edit, { minLength: 1, maxLength: 6 }),
          fc.boolean(),
          async (edits, fixCrcs) => {
            let bytes = Buffer.from(packed);
            for (const { kind, at, value } of edits) {
              const pos = at % (bytes.length + (kind === "insert" ? 1 : 0));
              if (kind === "set") bytes[pos] = value;
              else if (kind === "insert")
                bytes = Buffer.concat([bytes.subarray(0, pos), Buffer.from([value]), bytes.subarray(pos)]);
              else bytes = Buffer.concat([bytes.subarray(0, pos), bytes.subarray(pos + 1)]);
            }
            if (fixCrcs && bytes.length === packed.length) fixAllCrcs(bytes, layout);
            await mustNotLie(bytes, `edits ${JSON.stringify(edits)}`, {
              rejected: 0,
              identical: 0,
              codes: {},
            });
          },
        ),
        { numRuns: 300 },
      );
    });

    test("the header and trailer sizes frame the file as expected", () => {
      assert.equal(layout.headerSize, HEADER_FIXED_SIZE + layout.metadataLength);
      assert.equal(layout.trailerOffset, packed.length - TRAILER_SIZE);
    });
  });
}
