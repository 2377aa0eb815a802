/**
 * HIER layout 19 (docs/FORMAT.md §6.2): records of W bytes split into W byte planes. The
 * layout round-trips at every width and head, and hostile headers are refused with their
 * codes.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { crc32 } from "node:zlib";
import { hierCodec, hierDecode, hierEncode } from "../src/codecs/hier/hier.ts";
import {
  isRecordsKey,
  layoutByKey,
  planesKey,
  RECORDS,
  recordsLayout,
  recordWidthAllowed,
} from "../src/codecs/hier/layouts.ts";
import { MmhError } from "../src/common/errors.ts";
import { rng } from "../src/tools/gen.ts";
import { noiseBytes } from "./support.ts";

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
