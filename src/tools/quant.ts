/**
 * Reference ggml quantisers: float32 weights into the block types of ggml-common.h (Q4_0,
 * Q4_1, Q5_0, Q5_1, Q8_0, Q8_1 as ggml's `quantize_row_*_ref` do; Q2_K-Q6_K in ggml's byte
 * layout with a simplified scale search), their dequantisers, and a check that a block
 * dequantises to its weights. `mmh gen --dtype Q4_K` and the benchmarks build real
 * quantised blocks from here.
 */
import type { BlockDTypeName } from "../common/dtype.ts";
import { gaussian, rng } from "./gen.ts";

// float32 and f16

const F = Math.fround;
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Round half to even, on a double holding an exact value. */
function roundHalfEven(v: number): number {
  const r = Math.floor(v);
  const diff = v - r;
  if (diff > 0.5) return r + 1;
  if (diff < 0.5) return r;
  return r % 2 === 0 ? r : r + 1;
}

/** float32 -> IEEE half, round to nearest even (as F16C's _cvtss_sh and ggml's scalar code). */
export function toHalf(x: number): number {
  f32[0] = x;
  const bits = u32[0];
  const sign = (bits >>> 16) & 0x8000;
  const abs = bits & 0x7fffffff;
  if (abs >= 0x7f800000) return sign | (abs > 0x7f800000 ? 0x7e00 : 0x7c00);
  if (abs >= 0x477ff000) return sign | 0x7c00; // 65520 and up round to infinity
  if (abs < 0x38800000) {
    // below 2^-14: a subnormal half, q * 2^-24 (q = 0x400 is the smallest normal, correctly)
    f32[0] = x;
    return sign | roundHalfEven(Math.abs(f32[0]) * 2 ** 24);
  }
  const mant = abs & 0x7fffff;
  let h = ((((abs >>> 23) - 112) << 10) | (mant >>> 13)) >>> 0;
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h++;
  return sign | h;
}

export function fromHalf(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/**
 * Every finite half survives half -> float -> half, exact midpoints go to the even half, and
 * the floats just below and above a midpoint to the half on their side.
 */
export function checkHalf(): void {
  for (let h = 0; h < 0x10000; h++) {
    if ((h & 0x7c00) === 0x7c00) continue;
    const v = fromHalf(h);
    if (toHalf(v) !== h && !(v === 0 && h === 0x8000 && toHalf(-0) === 0x8000))
      throw new Error(`f16 conversion: ${h.toString(16)} -> ${v} -> ${toHalf(v).toString(16)}`);
    const next = h + 1;
    if ((h & 0x8000) === 0 && (next & 0x7c00) !== 0x7c00) {
      const mid = (v + fromHalf(next)) / 2;
      if (F(mid) !== mid) continue; // not a float32
      const want = h % 2 === 0 ? h : next;
      if (toHalf(mid) !== want) throw new Error(`f16 rounding of ${mid}: ${toHalf(mid)} not ${want}`);
      f32[0] = mid;
      const bits = u32[0];
      u32[0] = bits - 1;
      const below = f32[0];
      u32[0] = bits + 1;
      const above = f32[0];
      if (toHalf(below) !== h || toHalf(above) !== next)
        throw new Error(`f16 rounding next to ${mid}: ${toHalf(below)}, ${toHalf(above)} not ${h}, ${next}`);
    }
  }
}

/** ggml's nearest_int: float32 round to nearest even, by adding 1.5 * 2^23. */
const nearestInt = (v: number): number => F(v + 12582912) - 12582912;
/** C's (int8_t) of a float in range: truncation toward zero, then 8 bits. */
const toInt8 = (v: number): number => (Math.trunc(v) << 24) >> 24;
/** C's roundf: half away from zero (exact in double for a float32 argument). */
const roundf = (v: number): number => (v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5));
const clamp = (v: number, lo: number, hi: number): number => Math.max(lo, Math.min(hi, v));
const GROUP_MAX_EPS = 1e-15;

// ---------------------------------------------------------------------------------------
// Weights

export interface StudentWeights {
  /** Weights per row (default 4096). */
  row?: number;
  /** Standard deviation (default 0.02). */
  std?: number;
  /** Spread of the row scales: each row is scaled by exp(N(0, rowSigma)) (default 0.3). */
  rowSigma?: number;
  /** Degrees of freedom of the Student-t draws (default 5). */
  dof?: number;
}

/** Student-t-like weights, each row scaled by exp(N(0, rowSigma)); float32. `count` is a multiple of the row. */
export function studentWeights(count: number, seed: number, options: StudentWeights = {}): Float32Array {
  const { row = 4096, std = 0.02, rowSigma = 0.3, dof = 5 } = options;
  const normal = gaussian(rng(seed));
  const out = new Float32Array(count);
  const unit = Math.sqrt((dof - 2) / dof); // t_dof has variance dof / (dof - 2)
  for (let r = 0; r < count / row; r++) {
    const scale = std * unit * Math.exp(rowSigma * normal());
    for (let c = 0; c < row && r * row + c < count; c++) {
      let chi = 0;
      for (let k = 0; k < dof; k++) {
        const z = normal();
        chi += z * z;
      }
      out[r * row + c] = scale * (normal() / Math.sqrt(chi / dof));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Quantisers: one block of x from x[i] into out[o]. Names and offsets are ggml-common.h's.

export type Quantise = (x: Float32Array, i: number, out: Buffer, o: number) => void;
/**
 * Dequantise one block into y, with each weight's scale and zero: y = scale * level + zero,
 * the level in the type's LEVEL_RANGE.
 */
export type Dequantise = (
  b: Buffer,
  o: number,
  y: Float64Array,
  scale: Float64Array,
  zero: Float64Array,
) => void;

function absMax(x: Float32Array, i: number, n: number): { amax: number; max: number } {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < n; j++) {
    const v = x[i + j];
    if (amax < Math.abs(v)) {
      amax = Math.abs(v);
      max = v;
    }
  }
  return { amax, max };
}

export function minMax(x: Float32Array, i: number, n: number): { min: number; max: number } {
  let min = 3.4028234663852886e38;
  let max = -3.4028234663852886e38;
  for (let j = 0; j < n; j++) {
    const v = x[i + j];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { min, max };
}

/** quantize_row_q4_0_ref: d = max / -8, q = min(15, (int8)(x / d + 8.5)), j low, j + 16 high. */
export const q4_0: Quantise = (x, i, out, o) => {
  const { max } = absMax(x, i, 32);
  const d = F(max / -8);
  const id = d ? F(1 / d) : 0;
  out.writeUInt16LE(toHalf(d), o);
  for (let j = 0; j < 16; j++) {
    const x0 = F(x[i + j] * id);
    const x1 = F(x[i + 16 + j] * id);
    const xi0 = Math.min(15, toInt8(F(x0 + 8.5))) & 0xff;
    const xi1 = Math.min(15, toInt8(F(x1 + 8.5))) & 0xff;
    out[o + 2 + j] = (xi0 | (xi1 << 4)) & 0xff;
  }
};

export const q4_1: Quantise = (x, i, out, o) => {
  const { min, max } = minMax(x, i, 32);
  const d = F(F(max - min) / 15);
  const id = d ? F(1 / d) : 0;
  out.writeUInt16LE(toHalf(d), o);
  out.writeUInt16LE(toHalf(min), o + 2);
  for (let j = 0; j < 16; j++) {
    const x0 = F(F(x[i + j] - min) * id);
    const x1 = F(F(x[i + 16 + j] - min) * id);
    const xi0 = Math.min(15, toInt8(F(x0 + 0.5))) & 0xff;
    const xi1 = Math.min(15, toInt8(F(x1 + 0.5))) & 0xff;
    out[o + 4 + j] = (xi0 | (xi1 << 4)) & 0xff;
  }
};

export const q5_0: Quantise = (x, i, out, o) => {
  const { max } = absMax(x, i, 32);
  const d = F(max / -16);
  const id = d ? F(1 / d) : 0;
  out.writeUInt16LE(toHalf(d), o);
  let qh = 0;
  for (let j = 0; j < 16; j++) {
    const x0 = F(x[i + j] * id);
    const x1 = F(x[i + 16 + j] * id);
    const xi0 = Math.min(31, toInt8(F(x0 + 16.5))) & 0xff;
    const xi1 = Math.min(31, toInt8(F(x1 + 16.5))) & 0xff;
    out[o + 6 + j] = (xi0 & 0x0f) | ((xi1 & 0x0f) << 4);
    qh = (qh | (((xi0 & 0x10) >>> 4) << j) | (((xi1 & 0x10) >>> 4) << (j + 16))) >>> 0;
  }
  out.writeUInt32LE(qh, o + 2);
};

export const q5_1: Quantise = (x, i, out, o) => {
  const { min, max } = minMax(x, i, 32);
  const d = F(F(max - min) / 31);
  const id = d ? F(1 / d) : 0;
  out.writeUInt16LE(toHalf(d), o);
  out.writeUInt16LE(toHalf(min), o + 2);
  let qh = 0;
  for (let j = 0; j < 16; j++) {
    const x0 = F(F(x[i + j] - min) * id);
    const x1 = F(F(x[i + 16 + j] - min) * id);
    const xi0 = Math.trunc(F(x0 + 0.5)) & 0xff;
    const xi1 = Math.trunc(F(x1 + 0.5)) & 0xff;
    out[o + 8 + j] = (xi0 & 0x0f) | ((xi1 & 0x0f) << 4);
    qh = (qh | (((xi0 & 0x10) >>> 4) << j) | (((xi1 & 0x10) >>> 4) << (j + 16))) >>> 0;
  }
  out.writeUInt32LE(qh, o + 4);
};

export const q8_0: Quantise = (x, i, out, o) => {
  const { amax } = absMax(x, i, 32);
  const d = F(amax / 127);
  const id = d ? F(1 / d) : 0;
  out.writeUInt16LE(toHalf(d), o);
  for (let j = 0; j < 32; j++) out.writeInt8(roundf(F(x[i + j] * id)), o + 2 + j);
};

export const q8_1: Quantise = (x, i, out, o) => {
  const { amax } = absMax(x, i, 32);
  const d = F(amax / 127);
  const id = d ? F(1 / d) : 0;
  out.writeUInt16LE(toHalf(d), o);
  let sum = 0;
  for (let j = 0; j < 32; j++) {
    const q = roundf(F(x[i + j] * id));
    out.writeInt8(q, o + 4 + j);
    sum += q;
  }
  out.writeUInt16LE(toHalf(F(sum * d)), o + 2);
};

/**
 * The first step of make_qkx2_quants (no search): min = min(0, min x), scale = (max - min) /
 * nmax, L = nearest_int((x - min) / scale) in 0..nmax. Returns the scale; the min (>= 0) into mins.
 */
function minMaxLevels(
  x: Float32Array,
  i: number,
  n: number,
  nmax: number,
  L: Uint8Array,
  at: number,
  mins: Float32Array,
  j: number,
): number {
  let { min, max } = minMax(x, i, n);
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0, at, at + n);
    mins[j] = -min;
    return 0;
  }
  const iscale = F(nmax / F(max - min));
  for (let k = 0; k < n; k++) L[at + k] = clamp(nearestInt(F(iscale * F(x[i + k] - min))), 0, nmax);
  mins[j] = -min;
  return F(1 / iscale);
}

/** ggml's get_scale_min_k4: the 6-bit scale and min of sub-block j from the 12 packed bytes. */
function scaleMinK4(j: number, q: Buffer, at: number): [number, number] {
  if (j < 4) return [q[at + j] & 63, q[at + j + 4] & 63];
  return [
    (q[at + j + 4] & 0xf) | ((q[at + j - 4] >> 6) << 4),
    (q[at + j + 4] >> 4) | ((q[at + j] >> 6) << 4),
  ];
}

const levels = new Uint8Array(256);
const subScales = new Float32Array(16);
const subMins = new Float32Array(16);

/** Q4_K (nmax 15) and Q5_K (nmax 31): quantize_row_q4_K_ref / q5_K_ref without the search. */
function q45k(nmax: 15 | 31): Quantise {
  return (x, i, out, o) => {
    const L = levels;
    const sc = o + 4; // scales[12]
    let maxScale = 0;
    let maxMin = 0;
    for (let j = 0; j < 8; j++) {
      subScales[j] = minMaxLevels(x, i + 32 * j, 32, nmax, L, 32 * j, subMins, j);
      if (subScales[j] > maxScale) maxScale = subScales[j];
      if (subMins[j] > maxMin) maxMin = subMins[j];
    }
    const invScale = maxScale > 0 ? F(63 / maxScale) : 0;
    const invMin = maxMin > 0 ? F(63 / maxMin) : 0;
    out.fill(0, sc, sc + 12);
    for (let j = 0; j < 8; j++) {
      const ls = Math.min(63, nearestInt(F(invScale * subScales[j])) & 0xff);
      const lm = Math.min(63, nearestInt(F(invMin * subMins[j])) & 0xff);
      if (j < 4) {
        out[sc + j] = ls;
        out[sc + j + 4] = lm;
      } else {
        out[sc + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
        out[sc + j - 4] |= (ls >> 4) << 6;
        out[sc + j] |= (lm >> 4) << 6;
      }
    }
    out.writeUInt16LE(toHalf(F(maxScale / 63)), o);
    out.writeUInt16LE(toHalf(F(maxMin / 63)), o + 2);
    const d0 = fromHalf(out.readUInt16LE(o));
    const m0 = fromHalf(out.readUInt16LE(o + 2));
    for (let j = 0; j < 8; j++) {
      const [s, m] = scaleMinK4(j, out, sc);
      const d = F(d0 * s);
      if (!d) continue;
      const dm = F(m0 * m);
      for (let k = 0; k < 32; k++)
        L[32 * j + k] = clamp(nearestInt(F(F(x[i + 32 * j + k] + dm) / d)), 0, nmax);
    }
    if (nmax === 15) {
      let q = o + 16;
      for (let j = 0; j < 256; j += 64) {
        for (let l = 0; l < 32; l++) out[q + l] = L[j + l] | (L[j + l + 32] << 4);
        q += 32;
      }
      return;
    }
    const qh = o + 16;
    let ql = o + 48;
    out.fill(0, qh, qh + 32);
    let m1 = 1;
    let m2 = 2;
    for (let n = 0; n < 256; n += 64) {
      for (let j = 0; j < 32; j++) {
        let l1 = L[n + j];
        if (l1 > 15) {
          l1 -= 16;
          out[qh + j] |= m1;
        }
        let l2 = L[n + j + 32];
        if (l2 > 15) {
          l2 -= 16;
          out[qh + j] |= m2;
        }
        out[ql + j] = l1 | (l2 << 4);
      }
      m1 <<= 2;
      m2 <<= 2;
      ql += 32;
    }
  };
}

/** Four 2-bit levels per byte: qs[j/4 + l] holds L[j + l + 32k] at bits 2k (Q2_K, Q3_K). */
function pack2(L: Uint8Array, out: Buffer, qs: number): void {
  for (let j = 0; j < 256; j += 128) {
    for (let l = 0; l < 32; l++)
      out[qs + j / 4 + l] = L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6);
  }
}

/** quantize_row_q2_K_ref without make_qkx2_quants' search. */
export const q2_k: Quantise = (x, i, out, o) => {
  const L = levels;
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 16; j++) {
    subScales[j] = minMaxLevels(x, i + 16 * j, 16, 3, L, 16 * j, subMins, j);
    if (subScales[j] > maxScale) maxScale = subScales[j];
    if (subMins[j] > maxMin) maxMin = subMins[j];
  }
  if (maxScale > 0) {
    const iscale = F(15 / maxScale);
    for (let j = 0; j < 16; j++) out[o + j] = nearestInt(F(iscale * subScales[j])) & 0xff;
    out.writeUInt16LE(toHalf(F(maxScale / 15)), o + 80);
  } else {
    out.fill(0, o, o + 16);
    out.writeUInt16LE(toHalf(0), o + 80);
  }
  if (maxMin > 0) {
    const iscale = F(15 / maxMin);
    for (let j = 0; j < 16; j++) out[o + j] |= (nearestInt(F(iscale * subMins[j])) << 4) & 0xff;
    out.writeUInt16LE(toHalf(F(maxMin / 15)), o + 82);
  } else {
    out.writeUInt16LE(toHalf(0), o + 82);
  }
  const d0 = fromHalf(out.readUInt16LE(o + 80));
  const m0 = fromHalf(out.readUInt16LE(o + 82));
  for (let j = 0; j < 16; j++) {
    const d = F(d0 * (out[o + j] & 0xf));
    if (!d) continue;
    const dm = F(m0 * (out[o + j] >> 4));
    for (let k = 0; k < 16; k++) L[16 * j + k] = clamp(nearestInt(F(F(x[i + 16 * j + k] + dm) / d)), 0, 3);
  }
  pack2(L, out, o + 16);
};

/** quantize_row_q3_K_ref with make_q3_quants' plain path (scale = max / -4, no refinement). */
export const q3_k: Quantise = (x, i, out, o) => {
  const L = levels;
  const sc = o + 96;
  let maxScale = 0;
  let amax = 0;
  for (let j = 0; j < 16; j++) {
    const { amax: a, max } = absMax(x, i + 16 * j, 16);
    if (a < GROUP_MAX_EPS) {
      L.fill(0, 16 * j, 16 * j + 16);
      subScales[j] = 0;
    } else {
      const iscale = F(-4 / max);
      for (let k = 0; k < 16; k++)
        L[16 * j + k] = clamp(nearestInt(F(iscale * x[i + 16 * j + k])), -4, 3) + 4;
      subScales[j] = F(1 / iscale);
    }
    if (Math.abs(subScales[j]) > amax) {
      amax = Math.abs(subScales[j]);
      maxScale = subScales[j];
    }
  }
  out.fill(0, sc, sc + 12);
  if (maxScale) {
    const iscale = F(-32 / maxScale);
    for (let j = 0; j < 16; j++) {
      let l = clamp(toInt8(nearestInt(F(iscale * subScales[j]))), -32, 31) + 32;
      if (j < 8) out[sc + j] = l & 0xf;
      else out[sc + j - 8] |= (l & 0xf) << 4;
      l >>= 4;
      out[sc + (j % 4) + 8] |= l << (2 * Math.floor(j / 4));
    }
    out.writeUInt16LE(toHalf(F(1 / iscale)), o + 108);
  } else {
    out.writeUInt16LE(toHalf(0), o + 108);
  }
  const d0 = fromHalf(out.readUInt16LE(o + 108));
  for (let j = 0; j < 16; j++) {
    let s = j < 8 ? out[sc + j] & 0xf : out[sc + j - 8] >> 4;
    s = (s | (((out[sc + 8 + (j % 4)] >> (2 * Math.floor(j / 4))) & 3) << 4)) - 32;
    const d = F(d0 * s);
    if (!d) continue;
    for (let k = 0; k < 16; k++) L[16 * j + k] = clamp(nearestInt(F(x[i + 16 * j + k] / d)), -4, 3) + 4;
  }
  out.fill(0, o, o + 32); // hmask: the high bit of level j is bit j / 32 of hmask[j % 32]
  let m = 0;
  let hm = 1;
  for (let j = 0; j < 256; j++) {
    if (L[j] > 3) {
      out[o + m] |= hm;
      L[j] -= 4;
    }
    if (++m === 32) {
      m = 0;
      hm <<= 1;
    }
  }
  pack2(L, out, o + 32);
};

/** quantize_row_q6_K_ref with make_qx_quants' plain path (scale = max / -32, no search). */
export const q6_k: Quantise = (x, i, out, o) => {
  const L = levels;
  let maxScale = 0;
  let maxAbs = 0;
  for (let j = 0; j < 16; j++) {
    const { amax, max } = absMax(x, i + 16 * j, 16);
    if (amax < GROUP_MAX_EPS) {
      L.fill(0, 16 * j, 16 * j + 16);
      subScales[j] = 0;
    } else {
      const iscale = F(-32 / max);
      for (let k = 0; k < 16; k++)
        L[16 * j + k] = 32 + clamp(nearestInt(F(iscale * x[i + 16 * j + k])), -32, 31);
      subScales[j] = F(1 / iscale);
    }
    if (Math.abs(subScales[j]) > maxAbs) {
      maxAbs = Math.abs(subScales[j]);
      maxScale = subScales[j];
    }
  }
  if (maxAbs < GROUP_MAX_EPS) {
    out.fill(0, o, o + 210);
    return;
  }
  const iscale = F(-128 / maxScale);
  out.writeUInt16LE(toHalf(F(1 / iscale)), o + 208);
  for (let j = 0; j < 16; j++)
    out.writeInt8(Math.min(127, nearestInt(F(iscale * subScales[j]))), o + 192 + j);
  const d0 = fromHalf(out.readUInt16LE(o + 208));
  for (let j = 0; j < 16; j++) {
    const d = F(d0 * out.readInt8(o + 192 + j));
    if (!d) continue;
    for (let k = 0; k < 16; k++) L[16 * j + k] = clamp(nearestInt(F(x[i + 16 * j + k] / d)), -32, 31) + 32;
  }
  let ql = o;
  let qh = o + 128;
  for (let j = 0; j < 256; j += 128) {
    for (let l = 0; l < 32; l++) {
      const a = L[j + l];
      const b = L[j + l + 32];
      const c = L[j + l + 64];
      const e = L[j + l + 96];
      out[ql + l] = (a & 0xf) | ((c & 0xf) << 4);
      out[ql + l + 32] = (b & 0xf) | ((e & 0xf) << 4);
      out[qh + l] = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6);
    }
    ql += 64;
    qh += 32;
  }
};

// ---------------------------------------------------------------------------------------
// Dequantisers, written from ggml's dequantize_row_* (the check of the quantisers above)

const h = (b: Buffer, at: number) => fromHalf(b.readUInt16LE(at));

const dq4_0: Dequantise = (b, o, y, scale, zero) => {
  const d = h(b, o);
  for (let j = 0; j < 16; j++) {
    y[j] = ((b[o + 2 + j] & 0xf) - 8) * d;
    y[j + 16] = ((b[o + 2 + j] >> 4) - 8) * d;
  }
  scale.fill(d, 0, 32);
  zero.fill(0, 0, 32);
};
const dq4_1: Dequantise = (b, o, y, scale, zero) => {
  const d = h(b, o);
  const m = h(b, o + 2);
  for (let j = 0; j < 16; j++) {
    y[j] = (b[o + 4 + j] & 0xf) * d + m;
    y[j + 16] = (b[o + 4 + j] >> 4) * d + m;
  }
  scale.fill(d, 0, 32);
  zero.fill(m, 0, 32);
};
const dq5_0: Dequantise = (b, o, y, scale, zero) => {
  const d = h(b, o);
  const qh = b.readUInt32LE(o + 2);
  for (let j = 0; j < 16; j++) {
    const xh0 = ((qh >>> j) << 4) & 0x10;
    const xh1 = (qh >>> (j + 12)) & 0x10;
    y[j] = (((b[o + 6 + j] & 0xf) | xh0) - 16) * d;
    y[j + 16] = (((b[o + 6 + j] >> 4) | xh1) - 16) * d;
  }
  scale.fill(d, 0, 32);
  zero.fill(0, 0, 32);
};
const dq5_1: Dequantise = (b, o, y, scale, zero) => {
  const d = h(b, o);
  const m = h(b, o + 2);
  const qh = b.readUInt32LE(o + 4);
  for (let j = 0; j < 16; j++) {
    const xh0 = ((qh >>> j) << 4) & 0x10;
    const xh1 = (qh >>> (j + 12)) & 0x10;
    y[j] = ((b[o + 8 + j] & 0xf) | xh0) * d + m;
    y[j + 16] = ((b[o + 8 + j] >> 4) | xh1) * d + m;
  }
  scale.fill(d, 0, 32);
  zero.fill(m, 0, 32);
};
const dq8_0: Dequantise = (b, o, y, scale, zero) => {
  const d = h(b, o);
  for (let j = 0; j < 32; j++) y[j] = b.readInt8(o + 2 + j) * d;
  scale.fill(d, 0, 32);
  zero.fill(0, 0, 32);
};
const dq8_1: Dequantise = (b, o, y, scale, zero) => {
  const d = h(b, o);
  let sum = 0;
  for (let j = 0; j < 32; j++) {
    y[j] = b.readInt8(o + 4 + j) * d;
    sum += b.readInt8(o + 4 + j);
  }
  // s = d * sum(qs), as an f16
  if (Math.abs(h(b, o + 2) - sum * d) > Math.abs(sum * d) * 2 ** -10 + 2 ** -24)
    throw new Error("Q8_1: s is not d * sum(qs)");
  scale.fill(d, 0, 32);
  zero.fill(0, 0, 32);
};
const dq2_k: Dequantise = (b, o, y, scale, zero) => {
  const d = h(b, o + 80);
  const min = h(b, o + 82);
  let q = o + 16;
  let is = 0;
  let at = 0;
  for (let n = 0; n < 256; n += 128) {
    let shift = 0;
    for (let j = 0; j < 4; j++) {
      for (const off of [0, 16]) {
        const sc = b[o + is++];
        const dl = d * (sc & 0xf);
        const ml = min * (sc >> 4);
        for (let l = 0; l < 16; l++) {
          scale[at] = dl;
          zero[at] = -ml;
          y[at++] = dl * ((b[q + l + off] >> shift) & 3) - ml;
        }
      }
      shift += 2;
    }
    q += 32;
  }
};
const dq3_k: Dequantise = (b, o, y, scale, zero) => {
  const d = h(b, o + 108);
  const k1 = 0x03030303;
  const k2 = 0x0f0f0f0f;
  const a0 = b.readUInt32LE(o + 96);
  const a1 = b.readUInt32LE(o + 100);
  const tmp = b.readUInt32LE(o + 104);
  const aux = Buffer.alloc(16);
  aux.writeUInt32LE((((a0 >>> 4) & k2) | (((tmp >>> 4) & k1) << 4)) >>> 0, 8);
  aux.writeUInt32LE((((a1 >>> 4) & k2) | (((tmp >>> 6) & k1) << 4)) >>> 0, 12);
  aux.writeUInt32LE(((a0 & k2) | (((tmp >>> 0) & k1) << 4)) >>> 0, 0);
  aux.writeUInt32LE(((a1 & k2) | (((tmp >>> 2) & k1) << 4)) >>> 0, 4);
  let q = o + 32;
  const hm = o;
  let m = 1;
  let is = 0;
  let at = 0;
  for (let n = 0; n < 256; n += 128) {
    let shift = 0;
    for (let j = 0; j < 4; j++) {
      for (const off of [0, 16]) {
        const dl = d * (aux.readInt8(is++) - 32);
        for (let l = 0; l < 16; l++) {
          scale[at] = dl;
          zero[at] = 0;
          y[at++] = dl * (((b[q + l + off] >> shift) & 3) - (b[hm + l + off] & m ? 0 : 4));
        }
      }
      shift += 2;
      m <<= 1;
    }
    q += 32;
  }
};
function dq45k(five: boolean): Dequantise {
  return (b, o, y, scale, zero) => {
    const d = h(b, o);
    const min = h(b, o + 2);
    let ql = o + (five ? 48 : 16);
    const qh = o + 16;
    let is = 0;
    let u1 = 1;
    let u2 = 2;
    let at = 0;
    for (let j = 0; j < 256; j += 64) {
      const [s1, m1] = scaleMinK4(is, b, o + 4);
      const [s2, m2] = scaleMinK4(is + 1, b, o + 4);
      for (let l = 0; l < 32; l++) {
        scale[at] = d * s1;
        zero[at] = -min * m1;
        y[at++] = d * s1 * ((b[ql + l] & 0xf) + (five && b[qh + l] & u1 ? 16 : 0)) - min * m1;
      }
      for (let l = 0; l < 32; l++) {
        scale[at] = d * s2;
        zero[at] = -min * m2;
        y[at++] = d * s2 * ((b[ql + l] >> 4) + (five && b[qh + l] & u2 ? 16 : 0)) - min * m2;
      }
      ql += 32;
      is += 2;
      u1 <<= 2;
      u2 <<= 2;
    }
  };
}
const dq6_k: Dequantise = (b, o, y, scale, zero) => {
  const d = h(b, o + 208);
  let ql = o;
  let qh = o + 128;
  let sc = o + 192;
  let base = 0;
  for (let n = 0; n < 256; n += 128) {
    for (let l = 0; l < 32; l++) {
      const is = Math.floor(l / 16);
      const q1 = ((b[ql + l] & 0xf) | (((b[qh + l] >> 0) & 3) << 4)) - 32;
      const q2 = ((b[ql + l + 32] & 0xf) | (((b[qh + l] >> 2) & 3) << 4)) - 32;
      const q3 = ((b[ql + l] >> 4) | (((b[qh + l] >> 4) & 3) << 4)) - 32;
      const q4 = ((b[ql + l + 32] >> 4) | (((b[qh + l] >> 6) & 3) << 4)) - 32;
      const qs = [q1, q2, q3, q4];
      for (let k = 0; k < 4; k++) {
        const s = d * b.readInt8(sc + is + 2 * k);
        scale[base + l + 32 * k] = s;
        zero[base + l + 32 * k] = 0;
        y[base + l + 32 * k] = s * qs[k];
      }
    }
    base += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
};

// ---------------------------------------------------------------------------------------
// The types

export interface BlockType {
  dtype: BlockDTypeName;
  ggml: number;
  weights: number;
  bytes: number;
  exact: boolean;
  quantise: Quantise;
  dequantise: Dequantise;
  /** Stream names, in the layout's order (FORMAT.md §6.2). */
  fields: string[];
  /** Said of the type in the report. */
  note?: string;
}

export const QUANT_TYPES: readonly BlockType[] = [
  {
    dtype: "Q4_0",
    ggml: 2,
    weights: 32,
    bytes: 18,
    exact: true,
    quantise: q4_0,
    dequantise: dq4_0,
    fields: ["d.lo", "d.hi", "qs"],
  },
  {
    dtype: "Q4_1",
    ggml: 3,
    weights: 32,
    bytes: 20,
    exact: true,
    quantise: q4_1,
    dequantise: dq4_1,
    fields: ["d.lo", "d.hi", "m.lo", "m.hi", "qs"],
  },
  {
    dtype: "Q5_0",
    ggml: 6,
    weights: 32,
    bytes: 22,
    exact: true,
    quantise: q5_0,
    dequantise: dq5_0,
    fields: ["d.lo", "d.hi", "qh", "qs"],
  },
  {
    dtype: "Q5_1",
    ggml: 7,
    weights: 32,
    bytes: 24,
    exact: true,
    quantise: q5_1,
    dequantise: dq5_1,
    fields: ["d.lo", "d.hi", "m.lo", "m.hi", "qh", "qs"],
  },
  {
    dtype: "Q8_0",
    ggml: 8,
    weights: 32,
    bytes: 34,
    exact: true,
    quantise: q8_0,
    dequantise: dq8_0,
    fields: ["d.lo", "d.hi", "qs"],
  },
  {
    dtype: "Q8_1",
    ggml: 9,
    weights: 32,
    bytes: 36,
    exact: true,
    quantise: q8_1,
    dequantise: dq8_1,
    fields: ["d.lo", "d.hi", "s.lo", "s.hi", "qs"],
    note: "ggml's dot-product companion type (the activations side); model files do not normally hold it",
  },
  {
    dtype: "Q2_K",
    ggml: 10,
    weights: 256,
    bytes: 84,
    exact: false,
    quantise: q2_k,
    dequantise: dq2_k,
    fields: ["scales", "qs", "d.lo", "d.hi", "dmin.lo", "dmin.hi"],
  },
  {
    dtype: "Q3_K",
    ggml: 11,
    weights: 256,
    bytes: 110,
    exact: false,
    quantise: q3_k,
    dequantise: dq3_k,
    fields: ["hmask", "qs", "scales", "d.lo", "d.hi"],
  },
  {
    dtype: "Q4_K",
    ggml: 12,
    weights: 256,
    bytes: 144,
    exact: false,
    quantise: q45k(15),
    dequantise: dq45k(false),
    fields: ["d.lo", "d.hi", "dmin.lo", "dmin.hi", "scales", "qs"],
  },
  {
    dtype: "Q5_K",
    ggml: 13,
    weights: 256,
    bytes: 176,
    exact: false,
    quantise: q45k(31),
    dequantise: dq45k(true),
    fields: ["d.lo", "d.hi", "dmin.lo", "dmin.hi", "scales", "qh", "qs"],
  },
  {
    dtype: "Q6_K",
    ggml: 14,
    weights: 256,
    bytes: 210,
    exact: false,
    quantise: q6_k,
    dequantise: dq6_k,
    fields: ["ql", "qh", "scales", "d.lo", "d.hi"],
  },
];

/** The lowest and highest level of a weight of the type (its dequantised value is scale * level + zero). */
export const LEVEL_RANGE: Record<string, [number, number]> = {
  Q4_0: [-8, 7],
  Q4_1: [0, 15],
  Q5_0: [-16, 15],
  Q5_1: [0, 31],
  Q8_0: [-128, 127],
  Q8_1: [-128, 127],
  Q2_K: [0, 3],
  Q3_K: [-4, 3],
  Q4_K: [0, 15],
  Q5_K: [0, 31],
  Q6_K: [-32, 31],
};

export function quantise(t: BlockType, x: Float32Array): Buffer {
  const blocks = x.length / t.weights;
  const out = Buffer.alloc(blocks * t.bytes);
  for (let b = 0; b < blocks; b++) t.quantise(x, b * t.weights, out, b * t.bytes);
  return out;
}

export interface QuantCheck {
  blocks: number;
  /** Largest |x - dequantised| over the quantisation step of its (sub-)block. */
  maxErrorSteps: number;
  /** Weights more than 1.5 steps off, each clamped at an end of its sub-block's range. */
  clamped: number;
  /** RMS error over RMS weight, over the checked blocks. */
  relativeRms: number;
}

/**
 * Dequantise the first 64 blocks and every 97th after. Every weight must dequantise to a
 * whole level in the type's range, with a step (read from the block) at most 2.1 times the
 * sub-block's range over the levels (so a misplaced scale cannot claim a huge step), and lie
 * within 1.5 steps of its value, or else beyond the values its sub-block can represent and
 * dequantised to the nearest of them, within 4 steps: the clamping the K-quants' rounded
 * sub-block scales cause (ggml's own quantisers too).
 */
export function checkQuantiser(t: BlockType, x: Float32Array, q: Buffer): QuantCheck {
  const y = new Float64Array(t.weights);
  const scale = new Float64Array(t.weights);
  const zero = new Float64Array(t.weights);
  const [lmin, lmax] = LEVEL_RANGE[t.dtype];
  const sub = t.weights === 256 ? (t.dtype === "Q4_K" || t.dtype === "Q5_K" ? 32 : 16) : 32;
  let worst = 0;
  let clamped = 0;
  let err2 = 0;
  let sum2 = 0;
  let checked = 0;
  const blocks = q.length / t.bytes;
  for (let b = 0; b < blocks; b += b < 64 ? 1 : 97) {
    t.dequantise(q, b * t.bytes, y, scale, zero);
    for (let s = 0; s < t.weights; s += sub) {
      const { min, max } = minMax(x, b * t.weights + s, sub);
      const range = Math.max(max, 0) - Math.min(min, 0);
      for (let k = s; k < s + sub; k++) {
        const v = x[b * t.weights + k];
        const e = Math.abs(v - y[k]);
        const step = Math.abs(scale[k]);
        const level = (y[k] - zero[k]) / scale[k];
        const a = scale[k] * lmin + zero[k];
        const c = scale[k] * lmax + zero[k];
        const [lo, hi] = a < c ? [a, c] : [c, a];
        const near = (u: number, w: number) => Math.abs(u - w) <= 1e-9 * step;
        const wrong =
          !(step > 0 && step <= (2.1 * range) / (lmax - lmin)) ||
          !near(level * step, Math.round(level) * step) ||
          Math.round(level) < lmin ||
          Math.round(level) > lmax;
        const inStep = e <= 1.5 * step;
        const atEnd = e <= 4 * step && ((v > hi && near(y[k], hi)) || (v < lo && near(y[k], lo)));
        if (wrong || !(inStep || atEnd))
          throw new Error(
            `${t.dtype} block ${b}, weight ${k}: ${v} dequantised to ${y[k]} (scale ${scale[k]}, zero ${zero[k]}, level ${level}, sub-block range ${range}): the block layout is wrong`,
          );
        if (!inStep) clamped++;
        worst = Math.max(worst, e / step);
        err2 += e * e;
        sum2 += v * v;
      }
    }
    checked++;
  }
  return { blocks: checked, maxErrorSteps: worst, clamped, relativeRms: Math.sqrt(err2 / sum2) };
}

// ---------------------------------------------------------------------------------------
