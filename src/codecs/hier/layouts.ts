/**
 * How HIER splits elements into byte streams. Each layout turns n elements of w bytes
 * into `streams` byte arrays of n symbols each, and back. Floats are split into fields
 * (the whole exponent in one stream; sign and mantissa in the others), integers into
 * byte planes. The fast paths work on aligned typed-array views; callers pass buffers
 * whose element data starts at a multiple of w (see alignedCopy).
 */
import type { DTypeName } from "../../common/dtype.ts";

export interface Layout {
  readonly id: number;
  readonly name: string;
  /** Bytes per element (for a block layout, per block). */
  readonly width: number;
  /** Byte streams per element. */
  readonly streams: number;
  /**
   * Bytes each element puts into each stream: stream k of n elements holds n * perElement[k]
   * bytes. Absent: one byte each (every stream holds n bytes).
   */
  readonly perElement?: readonly number[];
  /** What each stream holds, for reports (block layouts: the block struct's field). */
  readonly fieldNames?: readonly string[];
  /** Used only when the dtype says so (quantised blocks), never chosen by detection. */
  readonly declaredOnly?: boolean;
  split(data: Uint8Array, n: number, out: Uint8Array[]): void;
  /**
   * split, also counting the values of stream 0 (the exponents) into `counts` (256
   * entries, added to): the histogram the coder needs, without reading the stream again.
   */
  splitCounting?(data: Uint8Array, n: number, out: Uint8Array[], counts: Uint32Array): void;
  merge(streams: Uint8Array[], n: number, out: Uint8Array): void;
}

/** Four sub-histograms, one per byte of a word: no store-to-load stall on repeated values. */
const subCounts = new Uint32Array(1024);

function u16(b: Uint8Array, n: number): Uint16Array {
  return new Uint16Array(b.buffer, b.byteOffset, n);
}
function u32(b: Uint8Array, n: number): Uint32Array {
  return new Uint32Array(b.buffer, b.byteOffset, n);
}

const bytes: Layout = {
  id: 0,
  name: "bytes",
  width: 1,
  streams: 1,
  split(data, n, out) {
    out[0].set(data.subarray(0, n));
  },
  merge(streams, n, out) {
    out.set(streams[0].subarray(0, n));
  },
};

/**
 * BF16 split (see bf16 below), counting the exponents into `counts` when given. The two
 * quad loops differ only in the counting, kept out of the loop that does not need it.
 */
function bf16Split(
  data: Uint8Array,
  n: number,
  [e, sm]: Uint8Array[],
  counts: Uint32Array | undefined,
): void {
  let i = 0;
  // Four elements per step: two 32-bit loads, one 32-bit store to each stream.
  if (((e.byteOffset | sm.byteOffset | data.byteOffset) & 3) === 0 && n >= 4) {
    const quads = n >>> 2;
    const d32 = new Int32Array(data.buffer, data.byteOffset, quads * 2);
    const e32 = new Int32Array(e.buffer, e.byteOffset, quads);
    const s32 = new Int32Array(sm.buffer, sm.byteOffset, quads);
    if (counts) {
      const h = subCounts;
      h.fill(0);
      for (let q = 0; q < quads; q++) {
        const a = d32[2 * q];
        const b = d32[2 * q + 1];
        const x =
          ((a >>> 7) & 0xff) | ((a >>> 15) & 0xff00) | ((b << 9) & 0xff0000) | ((b << 1) & 0xff000000);
        e32[q] = x;
        s32[q] = bf16SignMantissa(a, b);
        h[x & 255]++;
        h[256 + ((x >>> 8) & 255)]++;
        h[512 + ((x >>> 16) & 255)]++;
        h[768 + (x >>> 24)]++;
      }
      for (let v = 0; v < 256; v++) counts[v] += h[v] + h[256 + v] + h[512 + v] + h[768 + v];
    } else {
      for (let q = 0; q < quads; q++) {
        const a = d32[2 * q];
        const b = d32[2 * q + 1];
        e32[q] = ((a >>> 7) & 0xff) | ((a >>> 15) & 0xff00) | ((b << 9) & 0xff0000) | ((b << 1) & 0xff000000);
        s32[q] = bf16SignMantissa(a, b);
      }
    }
    i = quads * 4;
  }
  for (; i < n; i++) {
    const x = data[2 * i] | (data[2 * i + 1] << 8);
    const exponent = (x >>> 7) & 0xff;
    e[i] = exponent;
    sm[i] = ((x >>> 8) & 0x80) | (x & 0x7f);
    if (counts) counts[exponent]++;
  }
}

/** The sign|mantissa bytes of the four BF16 values in words a and b, as one word. */
function bf16SignMantissa(a: number, b: number): number {
  return (
    ((a >>> 8) & 0x80) |
    (a & 0x7f) |
    ((a >>> 16) & 0x8000) |
    ((a >>> 8) & 0x7f00) |
    ((b << 8) & 0x800000) |
    ((b << 16) & 0x7f0000) |
    (b & 0x80000000) |
    ((b << 8) & 0x7f000000)
  );
}

/**
 * BF16: s eeeeeeee mmmmmmm -> [exponent byte, sign|mantissa byte]. Two elements are
 * read or written per 32-bit word (half the memory operations of one at a time); the
 * element data must be 4-byte aligned, which HIER's buffers are.
 */
const bf16: Layout = {
  id: 1,
  name: "bf16",
  width: 2,
  streams: 2,
  split(data, n, out) {
    bf16Split(data, n, out, undefined);
  },
  splitCounting(data, n, out, counts) {
    bf16Split(data, n, out, counts);
  },
  merge([e, sm], n, out) {
    let i = 0;
    // Four elements per step: one 32-bit load from each stream, two 32-bit stores.
    if (((e.byteOffset | sm.byteOffset | out.byteOffset) & 3) === 0 && n >= 4) {
      const quads = n >>> 2;
      const e32 = new Int32Array(e.buffer, e.byteOffset, quads);
      const s32 = new Int32Array(sm.buffer, sm.byteOffset, quads);
      const o32 = new Int32Array(out.buffer, out.byteOffset, quads * 2);
      for (let q = 0; q < quads; q++) {
        const ee = e32[q];
        const ss = s32[q];
        // element k: sign = bit 7 of its sm byte -> bit 15; exponent -> bits 7..14; mantissa bits 0..6.
        o32[2 * q] =
          ((ss & 0x80) << 8) |
          ((ee & 0xff) << 7) |
          (ss & 0x7f) |
          ((ss & 0x8000) << 16) |
          ((ee & 0xff00) << 15) |
          ((ss & 0x7f00) << 8);
        o32[2 * q + 1] =
          ((ss >>> 8) & 0x8000) |
          ((ee >>> 9) & 0x7f80) |
          ((ss >>> 16) & 0x7f) |
          (ss & 0x80000000) |
          ((ee >>> 1) & 0x7f800000) |
          ((ss >>> 8) & 0x7f0000);
      }
      i = quads * 4;
    }
    for (; i < n; i++) {
      const s = sm[i];
      const x = ((s & 0x80) << 8) | (e[i] << 7) | (s & 0x7f);
      out[2 * i] = x & 0xff;
      out[2 * i + 1] = x >>> 8;
    }
  },
};

/** F16: s eeeee mmmmmmmmmm -> [exponent (5 bits), mantissa low byte, sign|mantissa high 2 bits]. */
const f16: Layout = {
  id: 2,
  name: "f16",
  width: 2,
  streams: 3,
  split(data, n, [e, lo, hi]) {
    const v = u16(data, n);
    for (let i = 0; i < n; i++) {
      const x = v[i];
      e[i] = (x >>> 10) & 0x1f;
      lo[i] = x & 0xff;
      hi[i] = ((x >>> 13) & 0x04) | ((x >>> 8) & 0x03);
    }
  },
  merge([e, lo, hi], n, out) {
    const v = u16(out, n);
    for (let i = 0; i < n; i++) {
      const h = hi[i];
      v[i] = ((h & 0x04) << 13) | (e[i] << 10) | ((h & 0x03) << 8) | lo[i];
    }
  },
};

/** F32: s e8 m23 -> [exponent, mantissa byte 0, mantissa byte 1, sign|mantissa top 7 bits]. */
const f32: Layout = {
  id: 3,
  name: "f32",
  width: 4,
  streams: 4,
  split(data, n, [e, m0, m1, m2]) {
    const v = u32(data, n);
    for (let i = 0; i < n; i++) {
      const x = v[i];
      e[i] = (x >>> 23) & 0xff;
      m0[i] = x & 0xff;
      m1[i] = (x >>> 8) & 0xff;
      m2[i] = ((x >>> 16) & 0x7f) | ((x >>> 24) & 0x80);
    }
  },
  merge([e, m0, m1, m2], n, out) {
    const v = u32(out, n);
    for (let i = 0; i < n; i++) {
      const t = m2[i];
      v[i] = (((t & 0x80) << 24) | (e[i] << 23) | ((t & 0x7f) << 16) | (m1[i] << 8) | m0[i]) >>> 0;
    }
  },
};

function planes(id: number, width: number): Layout {
  return {
    id,
    name: `planes${width}`,
    width,
    streams: width,
    split(data, n, out) {
      for (let p = 0; p < width; p++) {
        const plane = out[p];
        for (let i = 0, j = p; i < n; i++, j += width) plane[i] = data[j];
      }
    },
    merge(streams, n, out) {
      for (let p = 0; p < width; p++) {
        const plane = streams[p];
        for (let i = 0, j = p; i < n; i++, j += width) out[j] = plane[i];
      }
    },
  };
}

const planes2 = planes(4, 2);
const planes4 = planes(5, 4);
const planes8 = planes(6, 8);

/**
 * A ggml quantisation block of `width` bytes (ggml-common.h), cut into fields: each field,
 * a run of bytes at the same place in every block, becomes one stream of those bytes
 * block after block. A 2-byte f16 scale is two fields (its low byte is near random, its
 * high byte holds the exponent); the packed quants of a block are one field.
 */
function blocks(
  id: number,
  name: string,
  width: number,
  fields: readonly (readonly [number, number, string])[],
): Layout {
  let covered = 0;
  for (const [start, length] of fields) {
    if (start !== covered || length < 1) throw new Error(`layout ${name}: fields must tile the block`);
    covered += length;
  }
  if (covered !== width) throw new Error(`layout ${name}: fields cover ${covered} of ${width} bytes`);
  return {
    id,
    name,
    width,
    streams: fields.length,
    perElement: fields.map(([, length]) => length),
    fieldNames: fields.map(([, , field]) => field),
    declaredOnly: true,
    split(data, n, out) {
      for (let f = 0; f < fields.length; f++) {
        const [start, length] = fields[f];
        const stream = out[f];
        if (length === 1) {
          for (let b = 0, j = start; b < n; b++, j += width) stream[b] = data[j];
          continue;
        }
        let o = 0;
        for (let b = 0, j = start; b < n; b++, j += width) {
          for (let k = 0; k < length; k++) stream[o++] = data[j + k];
        }
      }
    },
    merge(streams, n, out) {
      for (let f = 0; f < fields.length; f++) {
        const [start, length] = fields[f];
        const stream = streams[f];
        if (length === 1) {
          for (let b = 0, j = start; b < n; b++, j += width) out[j] = stream[b];
          continue;
        }
        let o = 0;
        for (let b = 0, j = start; b < n; b++, j += width) {
          for (let k = 0; k < length; k++) out[j + k] = stream[o++];
        }
      }
    },
  };
}

/** An f16 scale at `at`: its low and its high byte, two fields. */
const half = (at: number, field: string): [number, number, string][] => [
  [at, 1, `${field}.lo`],
  [at + 1, 1, `${field}.hi`],
];

// Block layouts, by ggml type (field order is the struct's).
const q4_0 = blocks(7, "q4_0", 18, [...half(0, "d"), [2, 16, "qs"]]);
const q4_1 = blocks(8, "q4_1", 20, [...half(0, "d"), ...half(2, "m"), [4, 16, "qs"]]);
const q5_0 = blocks(9, "q5_0", 22, [...half(0, "d"), [2, 4, "qh"], [6, 16, "qs"]]);
const q5_1 = blocks(10, "q5_1", 24, [...half(0, "d"), ...half(2, "m"), [4, 4, "qh"], [8, 16, "qs"]]);
const q8_0 = blocks(11, "q8_0", 34, [...half(0, "d"), [2, 32, "qs"]]);
const q8_1 = blocks(12, "q8_1", 36, [...half(0, "d"), ...half(2, "s"), [4, 32, "qs"]]);
const q2_k = blocks(13, "q2_k", 84, [
  [0, 16, "scales"],
  [16, 64, "qs"],
  ...half(80, "d"),
  ...half(82, "dmin"),
]);
const q3_k = blocks(14, "q3_k", 110, [
  [0, 32, "hmask"],
  [32, 64, "qs"],
  [96, 12, "scales"],
  ...half(108, "d"),
]);
const q4_k = blocks(15, "q4_k", 144, [
  ...half(0, "d"),
  ...half(2, "dmin"),
  [4, 12, "scales"],
  [16, 128, "qs"],
]);
const q5_k = blocks(16, "q5_k", 176, [
  ...half(0, "d"),
  ...half(2, "dmin"),
  [4, 12, "scales"],
  [16, 32, "qh"],
  [48, 128, "qs"],
]);
const q6_k = blocks(17, "q6_k", 210, [
  [0, 128, "ql"],
  [128, 64, "qh"],
  [192, 16, "scales"],
  ...half(208, "d"),
]);

export const LAYOUTS: readonly Layout[] = [
  bytes,
  bf16,
  f16,
  f32,
  planes2,
  planes4,
  planes8,
  q4_0,
  q4_1,
  q5_0,
  q5_1,
  q8_0,
  q8_1,
  q2_k,
  q3_k,
  q4_k,
  q5_k,
  q6_k,
];

/**
 * Layout 19, records: elements of W bytes for a W the writer picks (FORMAT.md §6.2), one
 * byte plane per byte of the element, as planes2/4/8 do for W = 2, 4, 8. Serialised values
 * of fixed size (structs, interleaved channels, tabular rows, a float written as a
 * mantissa and an exponent with their control bytes) are such records. W is the header's
 * stream count K, so the payload needs no field of its own for it.
 */
export const RECORDS = 19;
export const RECORDS_MIN = 3;
export const RECORDS_MAX = 32;

/** Whether layout 19 may have records of `width` bytes: 3..32 but 4 and 8 (layouts 5 and 6). */
export function recordWidthAllowed(width: number): boolean {
  return (
    Number.isInteger(width) && width >= RECORDS_MIN && width <= RECORDS_MAX && width !== 4 && width !== 8
  );
}

const recordLayouts = new Map<number, Layout>();

/** Layout 19 with records of `width` bytes (recordWidthAllowed), made once per width. */
export function recordsLayout(width: number): Layout {
  if (!recordWidthAllowed(width)) throw new Error(`records layout: no width ${width}`);
  let layout = recordLayouts.get(width);
  if (layout === undefined) {
    // One byte per stream written as a block of W 1-byte fields, so the WebAssembly
    // kernels' block split and merge (fused.ts) serve it as they do the block layouts.
    const fields = Array.from({ length: width }, (_, p) => [p, 1, `byte${p}`] as const);
    layout = { ...blocks(RECORDS, `records${width}`, width, fields), declaredOnly: false };
    recordLayouts.set(width, layout);
  }
  return layout;
}

/**
 * The byte planes for elements of `width` bytes, as CodecOptions.layout gives it: the
 * layout id (4, 5, 6 for 2, 4, 8 bytes), or for layout 19 the id plus 256 times W.
 */
export function planesKey(width: number): number {
  if (width === 2) return planes2.id;
  if (width === 4) return planes4.id;
  if (width === 8) return planes8.id;
  recordsLayout(width); // checks the width
  return RECORDS + 256 * width;
}

/** Whether a CodecOptions.layout key names layout 19 (planesKey). */
export function isRecordsKey(key: number | undefined): boolean {
  return key !== undefined && key >= 256;
}

/** The layout a CodecOptions.layout key names (planesKey), if any. */
export function layoutByKey(key: number): Layout | undefined {
  if (!Number.isInteger(key) || key < 0) return undefined;
  if (key < 256) return key === RECORDS ? undefined : layoutById(key);
  const width = Math.floor(key / 256);
  return key % 256 === RECORDS && recordWidthAllowed(width) ? recordsLayout(width) : undefined;
}

/** Bytes stream k of a layout holds for n elements. */
export function streamLength(layout: Layout, k: number, n: number): number {
  return n * (layout.perElement?.[k] ?? 1);
}

/**
 * The layout of a HIER header's layout id, for the fixed layouts 0-17; layout 19 is
 * recordsLayout(K) once its stream count K is checked (hierDecode).
 */
export function layoutById(id: number): Layout | undefined {
  return LAYOUTS[id];
}

/** The layout that fits a dtype. */
export function layoutForDType(dtype: DTypeName): Layout {
  switch (dtype) {
    case "BF16":
      return bf16;
    case "F16":
      // Bits 7-14 of an F16 are its 5 exponent bits and the top 3 mantissa bits, whose
      // skew (values are denser at the bottom of each octave) one byte stream captures:
      // on N(0, 0.02) weights this codes 0.6% smaller than the exponent-only split.
      return bf16;
    case "F32":
      return f32;
    case "C64": // two F32 per element
      return f32;
    case "F64":
    case "I64":
    case "U64":
      return planes8;
    case "I32":
    case "U32":
      return planes4;
    case "I16":
    case "U16":
      return planes2;
    case "Q4_0":
    case "IQ4_NL": // the same block: an f16 scale and 16 bytes of 4-bit indices
      return q4_0;
    case "Q4_1":
      return q4_1;
    case "Q5_0":
      return q5_0;
    case "Q5_1":
      return q5_1;
    case "Q8_0":
      return q8_0;
    case "Q8_1":
      return q8_1;
    case "Q2_K":
      return q2_k;
    case "Q3_K":
      return q3_k;
    case "Q4_K":
      return q4_k;
    case "Q5_K":
      return q5_k;
    case "Q6_K":
      return q6_k;
    default:
      return bytes;
  }
}
