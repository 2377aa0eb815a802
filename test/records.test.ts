/**
 * HIER layout 19 (docs/FORMAT.md §6.2): records of W bytes split into W byte planes. The
 * layout round-trips at every width and head, hostile headers are refused with their
 * codes, the record detector (src/engine/records.ts) finds W in record data and nothing in
 * data without records, and `auto` codes record data with it, the same way on any number
 * of threads.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { crc32 } from "node:zlib";
import { detectLayout, hierCodec, hierDecode, hierEncode } from "../src/codecs/hier/hier.ts";
import {
  isRecordsKey,
  layoutByKey,
  planesKey,
  RECORDS,
  recordsLayout,
  recordWidthAllowed,
} from "../src/codecs/hier/layouts.ts";
import { MmhError } from "../src/common/errors.ts";
import { chooseCodecs } from "../src/engine/auto.ts";
import { recordWidth } from "../src/engine/records.ts";
import { compress, decompress } from "../src/index.ts";
import { fillWeights, rng } from "../src/tools/gen.ts";
import { noiseBytes, structureOf } from "./support.ts";

/** n floats serialised as dlib does: control byte, 3 mantissa bytes, exponent control, exponent. */
function serialisedFloats(n: number, seed: number): Buffer {
  const next = rng(seed);
  const out = Buffer.alloc(6 * n);
  for (let i = 0; i < n; i++) {
    const at = 6 * i;
    out[at] = next() < 0.5 ? 0x03 : 0x83;
    out[at + 1] = Math.floor(next() * 256);
    out[at + 2] = Math.floor(next() * 256);
    out[at + 3] = 0x80 + Math.floor(next() * 128);
    out[at + 4] = 0x81;
    out[at + 5] = 0x20 + Math.floor(next() * next() * 6);
  }
  return out;
}

/** Rows of a table, W bytes each: a counter, a small category, float32 columns, 1-byte flags. */
function tableRows(n: number, width: number, seed: number): Buffer {
  const next = rng(seed);
  const out = Buffer.alloc(width * n);
  for (let i = 0; i < n; i++) {
    const at = width * i;
    out.writeUInt16LE((1000 + i) & 0xffff, at);
    out[at + 2] = Math.floor(next() * 5);
    let c = 3;
    for (; c + 4 <= width; c += 4) out.writeFloatLE((next() - 0.5) * 10 ** (c % 3), at + c);
    for (; c < width; c++) out[at + c] = next() < 0.9 ? 1 : 0;
  }
  return out;
}

/** A smooth RGB image: three interleaved channels of 1-byte samples (W = 3). */
function rgb(pixels: number, seed: number): Buffer {
  const next = rng(seed);
  const out = Buffer.alloc(3 * pixels);
  let r = 128;
  let g = 64;
  let b = 200;
  for (let i = 0; i < pixels; i++) {
    r = (r + Math.round((next() - 0.5) * 6) + 256) & 255;
    g = (g + Math.round((next() - 0.5) * 4) + 256) & 255;
    b = (b + Math.round((next() - 0.5) * 2) + 256) & 255;
    out[3 * i] = r;
    out[3 * i + 1] = g;
    out[3 * i + 2] = b;
  }
  return out;
}

const f32Weights = (n: number, seed: number) => fillWeights(n / 1000, 1000, 0.02, rng(seed), "F32");
const bf16Weights = (n: number, seed: number) => fillWeights(n / 1000, 1000, 0.02, rng(seed), "BF16");

function codeOf(work: () => unknown): string {
  try {
    work();
    return "no error";
  } catch (error) {
    return error instanceof MmhError ? error.code : String(error);
  }
}

describe("layout 19, records", () => {
  test("widths: 3 to 32 but 4 and 8; keys name them and nothing else", () => {
    const allowed = Array.from({ length: 40 }, (_, w) => w).filter(recordWidthAllowed);
    assert.deepEqual(allowed, [3, 5, 6, 7, ...Array.from({ length: 24 }, (_, k) => 9 + k)]);
    assert.equal(planesKey(2), 4);
    assert.equal(planesKey(4), 5);
    assert.equal(planesKey(8), 6);
    assert.equal(planesKey(6), RECORDS + 256 * 6);
    assert.ok(isRecordsKey(planesKey(6)) && !isRecordsKey(planesKey(4)) && !isRecordsKey(undefined));
    assert.equal(layoutByKey(planesKey(12))?.width, 12);
    for (const key of [RECORDS, RECORDS + 256 * 4, RECORDS + 256 * 33, 5 + 256 * 6, -1, 18, 1.5])
      assert.equal(layoutByKey(key), undefined, `key ${key}`);
    assert.throws(() => planesKey(33));
    assert.equal(
      codeOf(() => hierEncode(Buffer.alloc(100), { layout: RECORDS })),
      "E_BAD_OPTION",
    );
  });

  test("round-trips at every width and head, small (TypeScript) and large (kernels)", () => {
    for (const length of [0, 1, 5, 100, 4099, 300_001]) {
      const raw = Buffer.concat([
        serialisedFloats(Math.ceil(length / 6), length),
        noiseBytes(7, length),
      ]).subarray(0, length);
      for (let w = 3; w <= 32; w++) {
        if (!recordWidthAllowed(w) || (length > 5000 && w % 5 !== 1 && w !== 3)) continue;
        const { payload } = hierEncode(raw, { layout: planesKey(w), level: 1 });
        if (length >= w) {
          assert.equal(payload[1], RECORDS);
          assert.equal(payload[3], w);
        }
        assert.ok(Buffer.from(hierDecode(payload, raw.length)).equals(raw), `length ${length} width ${w}`);
      }
    }
  });

  test("every head H < W decodes (the writer may start the records anywhere)", () => {
    const raw = serialisedFloats(500, 3);
    const layout = recordsLayout(6);
    for (let head = 0; head < 6; head++) {
      const n = Math.floor((raw.length - head) / 6);
      const tail = raw.length - head - 6 * n;
      const streams = Array.from({ length: 6 }, () => new Uint8Array(n));
      layout.split(raw.subarray(head, head + 6 * n), n, streams);
      const header = Buffer.alloc(8 + 5 * 6);
      header[0] = 1;
      header[1] = RECORDS;
      header[2] = head;
      header[3] = 6;
      for (let k = 0; k < 6; k++) {
        header[8 + 5 * k] = 1; // stored
        header.writeUInt32LE(n, 8 + 5 * k + 1);
      }
      header.writeUInt32LE(crc32(header.subarray(8), crc32(header.subarray(0, 4))), 4);
      const payload = Buffer.concat([
        header,
        raw.subarray(0, head),
        ...streams,
        raw.subarray(raw.length - tail),
      ]);
      assert.ok(
        Buffer.from(hierCodec.decode(payload, new Uint8Array(0), raw.length)).equals(raw),
        `head ${head}`,
      );
    }
  });

  test("hostile headers: W out of range, lengths that do not add up, a head not below W", () => {
    const raw = serialisedFloats(400, 5);
    const good = Buffer.from(hierEncode(raw, { layout: planesKey(6), level: 1 }).payload);
    const edited = (edit: (b: Buffer) => void) => {
      const b = Buffer.from(good);
      edit(b);
      const count = b[3];
      if (b.length >= 8 + 5 * count)
        b.writeUInt32LE(crc32(b.subarray(8, 8 + 5 * count), crc32(b.subarray(0, 4))), 4);
      return codeOf(() => hierDecode(b, raw.length));
    };
    for (const K of [0, 1, 2, 4, 8, 33, 255])
      assert.equal(
        edited((b) => (b[3] = K)),
        "E_CORRUPT",
        `K = ${K}`,
      );
    assert.equal(
      edited((b) => (b[3] = 7)),
      "E_CORRUPT",
    );
    assert.equal(
      edited((b) => b.writeUInt32LE(b.readUInt32LE(9) + 1, 9)),
      "E_CORRUPT",
    );
    assert.equal(
      edited((b) => (b[2] = 6)),
      "E_CORRUPT",
    );
    // A damaged header is a checksum error, not a guess at the layout.
    const damaged = Buffer.from(good);
    damaged[3] = 4;
    assert.equal(
      codeOf(() => hierDecode(damaged, raw.length)),
      "E_CHECKSUM",
    );
  });
});

describe("record detection", () => {
  test("finds W in record data", () => {
    assert.equal(recordWidth(serialisedFloats(100_000, 1)), 6);
    assert.equal(recordWidth(rgb(200_000, 2)), 3);
    for (const w of [5, 7, 12, 24])
      assert.equal(recordWidth(tableRows(Math.floor(400_000 / w), w, w)), w, `W = ${w}`);
  });

  test("finds nothing in noise, prose, float weights or 2-, 4- and 8-byte integers", () => {
    assert.equal(recordWidth(noiseBytes(600_000, 4)), undefined);
    const prose = Buffer.concat(
      ["README.md", "docs/FORMAT.md", "docs/ENGINE.md"].map((f) =>
        readFileSync(join(import.meta.dirname, "..", f)),
      ),
    );
    assert.ok(prose.length > 64 << 10);
    assert.equal(recordWidth(prose), undefined);
    assert.equal(recordWidth(f32Weights(150_000, 6)), undefined);
    assert.equal(recordWidth(bf16Weights(300_000, 6)), undefined);
    assert.equal(recordWidth(tableRows(75_000, 8, 7)), undefined);
    const ints = Buffer.alloc(600_000);
    for (let i = 0; i < 150_000; i++) ints.writeUInt32LE((i * 7919) % 100_000, 4 * i);
    assert.equal(recordWidth(ints), undefined);
    assert.equal(recordWidth(serialisedFloats(10, 1)), undefined, "too small to say");
  });
});

describe("auto with records", () => {
  test("a raw chunk of records gets the records candidate, coded whole when it wins", () => {
    const raw = serialisedFloats(90_000, 8);
    for (const goal of ["balanced", "ratio"] as const) {
      const choices = chooseCodecs(raw, null, goal, undefined, { choiceMs: 0 });
      assert.ok(
        choices.some((c) => c.layout === planesKey(6)),
        `${goal}: ${JSON.stringify(choices)}`,
      );
    }
    // Interleaved RGB, whose bytes HIER's own detection takes as one stream (the default
    // goal's one-stream choice), gets it too.
    const image = rgb(200_000, 12);
    assert.equal(detectLayout(image).layout.streams, 1);
    assert.ok(
      chooseCodecs(image, null, "balanced", undefined, { choiceMs: 0 }).some(
        (c) => c.layout === planesKey(3),
      ),
    );
    // Not for a declared dtype, nor for the speed goal.
    assert.ok(
      !chooseCodecs(raw, "BF16", "balanced", undefined, { choiceMs: 0 }).some((c) => isRecordsKey(c.layout)),
    );
    assert.ok(
      !chooseCodecs(raw, null, "speed", undefined, { choiceMs: 0 }).some((c) => isRecordsKey(c.layout)),
    );
  });

  test("a raw file of records: smaller than the byte groupings, and the same on any number of threads", async () => {
    // 3 MiB: past the size from which raw regions are segmented (src/formats/detect.ts).
    const raw = Buffer.concat([serialisedFloats(450_000, 9), rgb(150_000, 10)]);
    const one = await compress(raw, { threads: 1 });
    const two = await compress(raw, { threads: 2 });
    assert.ok(Buffer.from(one).equals(Buffer.from(two)));
    assert.ok(Buffer.from(await decompress(one)).equals(raw));
    const structure = structureOf(one);
    assert.ok(structure.some((line) => line.startsWith("HIER layout 19 (records)")));
    const grouping = (layout: number) =>
      hierEncode(raw, { layout, level: 3 }).payload.length + structure.length * 40;
    assert.ok(one.length < Math.min(grouping(4), grouping(5)), `${one.length}`);
  });
});
