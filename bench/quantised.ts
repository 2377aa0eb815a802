import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { hierCodec } from "../src/codecs/hier/hier.ts";
import { layoutForDType } from "../src/codecs/hier/layouts.ts";
import type { BlockDTypeName } from "../src/common/dtype.ts";
import { fileSource } from "../src/common/source.ts";
import { CHUNK_HEADER_SIZE, INDEX_ENTRY_SIZE } from "../src/container/format.ts";
import { planChunks } from "../src/engine/plan.ts";
import { MmhReader } from "../src/engine/reader.ts";
import { gaussian, rng } from "../src/tools/gen.ts";
import { writeGguf } from "../test/support-gguf.ts";
import { codeLine, output, run, writeReport } from "./lib/commands.ts";
import {
  argValue,
  contentionNote,
  cpuWaitMicros,
  fmt,
  machineLines,
  mbps,
  table,
  zstdCliVersion,
} from "./lib/report.ts";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");
const quick = process.argv.includes("--quick");
const keep = process.argv.includes("--keep");
const outFile = argValue("--out") ?? (quick ? undefined : join(here, "results", "quantised.md"));
const ROW = 4096;
const WEIGHTS = Number(argValue("--weights") ?? (quick ? 512 * 1024 : 8 * 1024 * 1024));
if (!Number.isInteger(WEIGHTS) || WEIGHTS <= 0 || WEIGHTS % ROW !== 0)
  throw new Error(`--weights must be a positive multiple of ${ROW}`);
const ROWS = WEIGHTS / ROW;
const SEED = 20250;
const STD = 0.02;
const ROW_SIGMA = 0.3;
const DOF = 5;
const CHUNK = 512 * 1024;
/** A chunk record's header and its index entry: what each chunk costs beyond its payload. */
const PER_CHUNK = CHUNK_HEADER_SIZE + INDEX_ENTRY_SIZE;
const workDir = join(root, ".bench-data", "quantised");
const cli = join(root, "bin", "mmh.js");
const node = process.execPath;

const started = performance.now();
const loadAtStart = loadavg();
const waitAtStart = cpuWaitMicros();

// ---------------------------------------------------------------------------------------
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

function fromHalf(h: number): number {
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
function checkHalf(): void {
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

/** Student-t-like weights, std STD, each row of ROW scaled by exp(N(0, ROW_SIGMA)); float32. */
function weights(count: number, seed: number): Float32Array {
  const normal = gaussian(rng(seed));
  const out = new Float32Array(count);
  const unit = Math.sqrt((DOF - 2) / DOF); // t_5 has variance 5/3
  for (let r = 0; r < count / ROW; r++) {
    const scale = STD * unit * Math.exp(ROW_SIGMA * normal());
    for (let c = 0; c < ROW; c++) {
      let chi = 0;
      for (let k = 0; k < DOF; k++) {
        const z = normal();
        chi += z * z;
      }
      out[r * ROW + c] = scale * (normal() / Math.sqrt(chi / DOF));
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
type Dequantise = (b: Buffer, o: number, y: Float64Array, scale: Float64Array, zero: Float64Array) => void;

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

function minMax(x: Float32Array, i: number, n: number): { min: number; max: number } {
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

const q4_1: Quantise = (x, i, out, o) => {
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

const q5_0: Quantise = (x, i, out, o) => {
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

const q8_0: Quantise = (x, i, out, o) => {
  const { amax } = absMax(x, i, 32);
  const d = F(amax / 127);
  const id = d ? F(1 / d) : 0;
  out.writeUInt16LE(toHalf(d), o);
  for (let j = 0; j < 32; j++) out.writeInt8(roundf(F(x[i + j] * id)), o + 2 + j);
};

const q8_1: Quantise = (x, i, out, o) => {
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
const q2_k: Quantise = (x, i, out, o) => {
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
const q3_k: Quantise = (x, i, out, o) => {
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
const q6_k: Quantise = (x, i, out, o) => {
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

interface BlockType {
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

const TYPES: BlockType[] = [
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
const LEVEL_RANGE: Record<string, [number, number]> = {
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

function quantise(t: BlockType, x: Float32Array): Buffer {
  const blocks = x.length / t.weights;
  const out = Buffer.alloc(blocks * t.bytes);
  for (let b = 0; b < blocks; b++) t.quantise(x, b * t.weights, out, b * t.bytes);
  return out;
}

interface Check {
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
function checkQuantiser(t: BlockType, x: Float32Array, q: Buffer): Check {
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
// Measuring

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** Compress with the CLI, decode with the CLI, require the input's sha256; the .mmh size. */
function mmhRoundTrip(file: string, sha: string, out: string, options: readonly string[]): number {
  run(node, [cli, file, "-o", out, "-f", "-q", ...options]);
  const restored = `${out}.out`;
  run(node, [cli, "-d", out, "-o", restored, "-f", "-q"]);
  const got = sha256(readFileSync(restored));
  rmSync(restored, { force: true });
  if (got !== sha)
    throw new Error(
      `ROUND TRIP FAILED: ${file} through mmh ${options.join(" ") || "(default)"} decodes to sha256 ${got}, not ${sha}`,
    );
  return statSync(out).size;
}

function entropyBytes(counts: Float64Array, total: number): number {
  let bits = 0;
  for (const c of counts) if (c > 0) bits -= c * Math.log2(c / total);
  return bits / 8;
}

interface Field {
  name: string;
  bytes: number;
  /** Order-0 entropy of the field's bytes, in bytes. */
  order0: number;
  /** HIER's coded bytes for the field (its streams summed over the chunks). */
  coded: number;
  methods: Map<number, number>;
}

const METHOD_NAMES = ["constant", "stored", "Huffman", "zstd", "context Huffman"];

/**
 * The tensor in chunks as the engine plans them (whole blocks, <= 512 KiB), each coded by
 * HIER with the type's block layout at level 3, in process: each field's coded size and
 * method, from the payload's stream descriptors (FORMAT.md §6.2).
 */
function fieldsOf(t: BlockType, data: Buffer): { fields: Field[]; chunks: number; payload: number } {
  const layout = layoutForDType(t.dtype);
  if (layout.perElement?.length !== t.fields.length)
    throw new Error(`${t.dtype}: field names do not fit the layout`);
  const fields: Field[] = t.fields.map((name) => ({
    name,
    bytes: 0,
    order0: 0,
    coded: 0,
    methods: new Map(),
  }));
  // order-0 of each field over the whole tensor
  let start = 0;
  for (const [k, length] of (layout.perElement ?? []).entries()) {
    const counts = new Float64Array(256);
    for (let b = 0; b < data.length; b += t.bytes)
      for (let i = 0; i < length; i++) counts[data[b + start + i]]++;
    fields[k].bytes = (data.length / t.bytes) * length;
    fields[k].order0 = entropyBytes(counts, fields[k].bytes);
    start += length;
  }
  const plan = planChunks(
    [{ name: "w", offset: 0, length: data.length, dtype: t.dtype, kind: "tensor" }],
    CHUNK,
  );
  let at = 0;
  let payload = 0;
  for (const c of plan) {
    const p = hierCodec.encode(data.subarray(at, at + c.length), { dtype: t.dtype, level: 3 }).payload;
    if (p[1] !== layout.id || p[3] !== fields.length)
      throw new Error(`${t.dtype}: HIER did not use layout ${layout.id}`);
    for (let k = 0; k < fields.length; k++) {
      const method = p[8 + 5 * k];
      fields[k].coded += p[9 + 5 * k] | (p[10 + 5 * k] << 8) | (p[11 + 5 * k] << 16) | (p[12 + 5 * k] << 24);
      fields[k].methods.set(method, (fields[k].methods.get(method) ?? 0) + 1);
    }
    payload += p.length;
    at += c.length;
  }
  return { fields, chunks: plan.length, payload };
}

/** HIER on 512 KiB pieces as one byte stream (dtype U8: layout 0), each decoded again. */
function oneStream(data: Buffer): { bytes: number; chunks: number } {
  let bytes = 0;
  let chunks = 0;
  for (let at = 0; at < data.length; at += CHUNK) {
    const piece = data.subarray(at, Math.min(at + CHUNK, data.length));
    const payload = Buffer.from(hierCodec.encode(piece, { dtype: "U8", level: 3 }).payload);
    if (payload[1] !== 0) throw new Error("HIER with dtype U8 did not use the bytes layout");
    if (!Buffer.from(hierCodec.decode(payload, new Uint8Array(0), piece.length)).equals(piece))
      throw new Error("ROUND TRIP FAILED: HIER one byte stream");
    bytes += payload.length + PER_CHUNK;
    chunks++;
  }
  return { bytes, chunks };
}

/** The tensor's chunk records in an .mmh file: their bytes with index entries, and codecs. */
async function tensorChunks(
  mmhFile: string,
  offset: number,
  length: number,
): Promise<{ bytes: number; count: number; codecs: Map<string, number> }> {
  const reader = await MmhReader.open(await fileSource(mmhFile));
  try {
    let bytes = 0;
    let count = 0;
    const codecs = new Map<string, number>();
    for (const c of reader.chunks) {
      if (c.rawOffset < offset || c.rawOffset >= offset + length) continue;
      if (c.rawOffset + c.rawLength > offset + length)
        throw new Error(`${mmhFile}: a chunk runs past the tensor`);
      bytes += c.recordLength + INDEX_ENTRY_SIZE;
      count++;
      const codec = c.codec.trim();
      codecs.set(codec, (codecs.get(codec) ?? 0) + 1);
    }
    return { bytes, count, codecs };
  } finally {
    await reader.close();
  }
}

const r4 = (stored: number, original: number) => fmt(stored / original, 4);
const pct = (v: number) => `${fmt(v * 100, 1)}%`;
const mix = (m: Map<string | number, number>, names?: string[]) =>
  [...m.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${names ? names[k as number] : k} ${n}`)
    .join(", ");

interface Result {
  t: BlockType;
  fileBytes: number;
  tensorBytes: number;
  check: Check;
  mmh: number;
  ratio: number;
  one: number;
  oneChunks: number;
  mmhZstd: number;
  mmhHier: number;
  zstd3: number;
  zstd19: number;
  order0Fields: number;
  order0One: number;
  /** Bytes of the .mmh file outside the tensor's chunks: header, header region, index, trailer. */
  overhead: number;
  codecs: Map<string, number>;
  fields: Field[];
  blockChunks: number;
  blockPayload: number;
  times: { mmhC: number; mmhD: number; zstdC: number; zstdD: number };
}

// ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  mkdirSync(workDir, { recursive: true });
  checkHalf();
  console.log(`load average at start: ${loadAtStart.map((l) => fmt(l, 2)).join(", ")}`);
  console.log(`drawing ${WEIGHTS} weights (${ROWS} rows of ${ROW}), seed ${SEED} ...`);
  const x = weights(WEIGHTS, SEED);
  let s2 = 0;
  let s4 = 0;
  for (const v of x) {
    s2 += v * v;
    s4 += v ** 4;
  }
  const std = Math.sqrt(s2 / x.length);
  const kurtosis = s4 / x.length / (s2 / x.length) ** 2;
  console.log(`  std ${fmt(std, 5)}, kurtosis ${fmt(kurtosis, 2)}`);

  const startup = (() => {
    run(node, [cli, "--version"]);
    return run(node, [cli, "--version"]);
  })();

  const results: Result[] = [];
  for (const t of TYPES) {
    const q = quantise(t, x);
    const check = checkQuantiser(t, x, q);
    const gguf = writeGguf({
      kv: [
        ["general.architecture", { t: "string", v: "synthetic" }],
        ["general.name", { t: "string", v: `synthetic Student-t weights, ${t.dtype} (not a real model)` }],
      ],
      tensors: [
        {
          name: "blk.0.ffn_down.weight",
          dims: [ROW, ROWS],
          type: { id: t.ggml, block: t.weights, size: t.bytes },
          data: q,
        },
      ],
    });
    const tensor = gguf.tensors[0];
    if (tensor.length !== q.length) throw new Error("GGUF tensor size");
    const file = join(workDir, `synthetic-${t.dtype.toLowerCase()}.gguf`);
    writeFileSync(file, gguf.bytes);
    const sha = sha256(gguf.bytes);
    const base = file;
    console.log(
      `${t.dtype}: ${gguf.bytes.length} bytes; quantiser check on ${check.blocks} blocks: max error ${fmt(check.maxErrorSteps, 3)} steps`,
    );

    const mmh = mmhRoundTrip(file, sha, `${base}.mmh`, []);
    const ratio = mmhRoundTrip(file, sha, `${base}.ratio.mmh`, ["--goal", "ratio"]);
    const mmhZstd = mmhRoundTrip(file, sha, `${base}.zstd.mmh`, ["--codec", "zstd"]);
    const mmhHier = mmhRoundTrip(file, sha, `${base}.hier.mmh`, ["--codec", "hier"]);
    const chunks = await tensorChunks(`${base}.mmh`, tensor.offset, tensor.length);
    const overhead = mmh - chunks.bytes;
    const one = oneStream(q);
    const zstd3 = output("zstd", ["-3", "-q", "-c", file]).length;
    const zstd19 = output("zstd", ["-19", "-q", "-c", file]).length;
    const { fields, chunks: blockChunks, payload: blockPayload } = fieldsOf(t, q);
    const allCounts = new Float64Array(256);
    for (const v of q) allCounts[v]++;

    // one timed run of each after a warm-up (the runs above warmed the page cache and node)
    const zst = `${base}.zst`;
    const zstOut = `${base}.zst.out`;
    const mmhOut = `${base}.mmh.out`;
    const timed = (command: string, args: string[]) => {
      run(command, args);
      return run(command, args);
    };
    const times = {
      mmhC: timed(node, [cli, file, "-o", `${base}.mmh`, "-f", "-q"]),
      mmhD: timed(node, [cli, "-d", `${base}.mmh`, "-o", mmhOut, "-f", "-q"]),
      zstdC: timed("zstd", ["-3", "-q", "-f", file, "-o", zst]),
      zstdD: timed("zstd", ["-d", "-q", "-f", zst, "-o", zstOut]),
    };
    if (sha256(readFileSync(mmhOut)) !== sha || sha256(readFileSync(zstOut)) !== sha)
      throw new Error(`ROUND TRIP FAILED: ${t.dtype} in the timed runs`);
    rmSync(mmhOut, { force: true });
    rmSync(zstOut, { force: true });

    const r: Result = {
      t,
      fileBytes: gguf.bytes.length,
      tensorBytes: q.length,
      check,
      mmh,
      ratio,
      one: overhead + one.bytes,
      oneChunks: one.chunks,
      mmhZstd,
      mmhHier,
      zstd3,
      zstd19,
      order0Fields: fields.reduce((s, f) => s + f.order0, 0),
      order0One: entropyBytes(allCounts, q.length),
      overhead,
      codecs: chunks.codecs,
      fields,
      blockChunks,
      blockPayload,
      times,
    };
    results.push(r);
    console.log(
      `  mmh ${r4(mmh, r.fileBytes)}, ratio ${r4(ratio, r.fileBytes)}, hier ${r4(mmhHier, r.fileBytes)}, one stream ${r4(r.one, r.fileBytes)}, mmh zstd ${r4(mmhZstd, r.fileBytes)}, zstd -3 ${r4(zstd3, r.fileBytes)}, zstd -19 ${r4(zstd19, r.fileBytes)}, order-0 fields ${r4(r.order0Fields, r.tensorBytes)}`,
    );
    if (!keep)
      for (const f of [file, `${base}.mmh`, `${base}.ratio.mmh`, `${base}.zstd.mmh`, `${base}.hier.mmh`, zst])
        rmSync(f, { force: true });
  }

  // ----- report
  const loadAtEnd = loadavg();
  const elapsed = performance.now() - started;
  const label = (t: BlockType) => (t.exact ? t.dtype : `${t.dtype}*`);
  const bpw = (t: BlockType) => fmt((t.bytes * 8) / t.weights, 4);

  const summaryRows = results.map((r) => [
    label(r.t),
    bpw(r.t),
    String(r.fileBytes),
    r4(r.mmh, r.fileBytes),
    r4(r.one, r.fileBytes),
    pct(1 - r.mmh / r.one),
    r4(r.zstd19, r.fileBytes),
    pct(1 - r.mmh / r.zstd19),
  ]);
  const summaryTable = table(
    [
      "type",
      "bits / weight",
      "GGUF bytes",
      "mmh default",
      "HIER, one byte stream (before block layouts)",
      "block layouts save",
      "zstd -19",
      "mmh smaller than zstd -19 by",
    ],
    summaryRows,
  );
  const summaryLines = results.map((r) => {
    const vsOne = 1 - r.mmh / r.one;
    const vs19 = 1 - r.mmh / r.zstd19;
    return `- ${r.t.dtype}${r.t.exact ? "" : " (K-quant-shaped, simplified quantiser)"}: mmh default stores ${r4(r.mmh, r.fileBytes)} of the file (${r.mmh} bytes), ${vsOne >= 0 ? `${pct(vsOne)} less` : `${pct(-vsOne)} more`} than the same chunks coded as one byte stream (${r4(r.one, r.fileBytes)}), and ${vs19 >= 0 ? `${pct(vs19)} less` : `${pct(-vs19)} more`} than zstd -19 (${r4(r.zstd19, r.fileBytes)}); --goal ratio ${r4(r.ratio, r.fileBytes)}, order-0 bound of the fields ${r4(r.order0Fields + r.overhead, r.fileBytes)}.`;
  });
  const surprises: string[] = [];
  for (const r of results) {
    if (r.mmh >= r.zstd19)
      surprises.push(
        `- ${r.t.dtype}: mmh default (${r.mmh} bytes) is not smaller than zstd -19 (${r.zstd19} bytes).`,
      );
    if (r.ratio >= r.zstd19 && r.mmh < r.zstd19) {
      // cannot happen unless --goal ratio is worse than default; reported if it does
      surprises.push(
        `- ${r.t.dtype}: mmh --goal ratio (${r.ratio}) is not smaller than zstd -19 (${r.zstd19}).`,
      );
    }
    if (r.mmh >= r.one)
      surprises.push(
        `- ${r.t.dtype}: the block layout (${r.mmh} bytes) does not beat one byte stream (${r.one} bytes).`,
      );
    const notHier = [...r.codecs.entries()].filter(([c]) => c !== "HIER");
    // (a tensor's last, short chunk is often stored as NONE by any codec: only a real loss counts)
    if (notHier.length > 0 && r.mmhHier < r.mmh * 0.999) {
      const total = [...r.codecs.values()].reduce((a, b) => a + b, 0);
      surprises.push(
        `- ${r.t.dtype}: mmh default (auto, balanced) coded ${notHier.map(([c, n]) => `${n} of the tensor's ${total} chunks as ${c}`).join(" and ")} rather than with HIER: it stores ${r4(r.mmh, r.fileBytes)}, where \`--codec hier\` stores ${r4(r.mmhHier, r.fileBytes)} (${pct(1 - r.mmhHier / r.mmh)} less) and \`--goal ratio\` ${r4(r.ratio, r.fileBytes)}.`,
      );
    }
    if (r.ratio > r.mmh)
      surprises.push(`- ${r.t.dtype}: --goal ratio (${r.ratio}) is larger than the default (${r.mmh}).`);
    for (const f of r.fields)
      if (f.coded > f.bytes)
        surprises.push(
          `- ${r.t.dtype}: field ${f.name} codes to ${f.coded} bytes, more than its ${f.bytes} raw bytes.`,
        );
  }

  const sizeTable = table(
    [
      "type",
      "GGUF bytes",
      "mmh default",
      "mmh --goal ratio",
      "HIER, one byte stream (before block layouts)",
      "mmh --codec hier",
      "mmh --codec zstd",
      "zstd -3",
      "zstd -19",
      "order-0 bound, fields",
      "order-0 bound, one stream",
      "mmh chunks (codecs)",
    ],
    results.map((r) => [
      label(r.t),
      String(r.fileBytes),
      r4(r.mmh, r.fileBytes),
      r4(r.ratio, r.fileBytes),
      r4(r.one, r.fileBytes),
      r4(r.mmhHier, r.fileBytes),
      r4(r.mmhZstd, r.fileBytes),
      r4(r.zstd3, r.fileBytes),
      r4(r.zstd19, r.fileBytes),
      r4(r.order0Fields + r.overhead, r.fileBytes),
      r4(r.order0One + r.overhead, r.fileBytes),
      mix(r.codecs),
    ]),
  );
  const byteTable = table(
    [
      "type",
      "GGUF",
      "mmh default",
      "mmh --goal ratio",
      "one byte stream",
      "mmh --codec hier",
      "mmh --codec zstd",
      "zstd -3",
      "zstd -19",
    ],
    results.map((r) => [
      label(r.t),
      String(r.fileBytes),
      String(r.mmh),
      String(r.ratio),
      String(r.one),
      String(r.mmhHier),
      String(r.mmhZstd),
      String(r.zstd3),
      String(r.zstd19),
    ]),
  );
  const fieldRows: string[][] = [];
  for (const r of results) {
    for (const f of r.fields)
      fieldRows.push([
        `${label(r.t)} ${f.name}`,
        String(f.bytes),
        fmt((f.order0 * 8) / f.bytes, 3),
        String(f.coded),
        fmt((f.coded * 8) / f.bytes, 3),
        mix(f.methods, METHOD_NAMES),
      ]);
  }
  const fieldTable = table(
    [
      "type, field",
      "raw bytes",
      "order-0 bits / byte",
      "HIER coded bytes",
      "coded bits / byte",
      "methods (chunks)",
    ],
    fieldRows,
  );
  const checkTable = table(
    [
      "type",
      "quantiser",
      "blocks checked",
      "max error (steps)",
      "weights > 1.5 steps off (clamped at a range end)",
      "RMS error / RMS weight",
    ],
    results.map((r) => [
      r.t.dtype,
      r.t.exact
        ? `as ggml's quantize_row_${r.t.dtype.toLowerCase()}_ref`
        : "K-quant-shaped (simplified quantiser)",
      String(r.check.blocks),
      fmt(r.check.maxErrorSteps, 3),
      String(r.check.clamped),
      fmt(r.check.relativeRms, 4),
    ]),
  );
  const secs = (ms: number) => fmt(ms / 1000, 3);
  const speedTable = table(
    [
      "type",
      "MB",
      "mmh compress s",
      "zstd -3 s",
      "mmh -d s",
      "zstd -d s",
      "mmh compress MB/s",
      "mmh -d MB/s",
    ],
    results.map((r) => [
      label(r.t),
      fmt(r.fileBytes / 1e6, 2),
      secs(r.times.mmhC),
      secs(r.times.zstdC),
      secs(r.times.mmhD),
      secs(r.times.zstdD),
      fmt(mbps(r.fileBytes, r.times.mmhC), 1),
      fmt(mbps(r.fileBytes, r.times.mmhD), 1),
    ]),
  );
  const notes = results.filter((r) => r.t.note).map((r) => `- ${r.t.dtype}: ${r.t.note}.`);

  console.log(`\n${summaryTable}\n`);
  console.log(summaryLines.join("\n"));
  console.log(surprises.length > 0 ? `\nSurprises:\n${surprises.join("\n")}` : "\nNo surprises.");
  console.log(
    `\nload average at end: ${loadAtEnd.map((l) => fmt(l, 2)).join(", ")}; took ${fmt(elapsed / 1000, 0)} s`,
  );

  const lines = [
    "# ggml-quantised weights: HIER block layouts",
    "",
    ...machineLines(`npx node bench/quantised.ts${quick ? " --quick" : ""}`),
    codeLine(),
    `- zstd CLI: ${zstdCliVersion()}`,
    `- Load average (1, 5, 15 min) at start: ${loadAtStart.map((l) => fmt(l, 2)).join(", ")}; at end: ${loadAtEnd.map((l) => fmt(l, 2)).join(", ")}`,
    `- Took ${fmt(elapsed / 1000, 0)} s. ${contentionNote(waitAtStart, elapsed)}`,
    "",
    "**The data is synthetic.** No real GGUF file was available on this machine, so these are not figures for a real model: the weights are drawn by this script and quantised by it. Real quantised weights may compress differently (trained layers have structure, outlier channels and per-layer scale patterns these draws lack, and ggml's K-quant search picks different scales than the simplified quantisers below).",
    "",
    `- Weights: ${WEIGHTS} per type (${ROWS} rows of ${ROW}), the same draws for every type: a normal over the square root of a chi-square with ${DOF} degrees of freedom (Student-t, scaled to unit variance), times ${STD}, each row times exp(N(0, ${ROW_SIGMA})); src/tools/gen.ts's rng and gaussian, seed ${SEED}. Measured: std ${fmt(std, 5)}, kurtosis ${fmt(kurtosis, 2)} (a normal has 3).`,
    "- Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1: quantised as ggml's quantize_row_*_ref (ggml-quants.c) do, in float32 arithmetic, the f16 scales rounded to nearest even.",
    "- Types marked * (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K) are **K-quant-shaped (simplified quantiser)**: blocks with the exact byte layout of ggml's block_q*_K (scales and mins packed as ggml packs them), made by ggml's quantize_row_q*_K_ref with its per-sub-block search (make_qkx2_quants, make_q3_quants' refinement, make_qx_quants' search) replaced by plain min/max (Q2_K, Q4_K, Q5_K) or absolute-max (Q3_K, Q6_K) scaling of each sub-block.",
    ...notes,
    `- Each GGUF file (v3, alignment 32, written by test/support-gguf.ts) holds one tensor \`blk.0.ffn_down.weight\`, dims [${ROW}, ${ROWS}], of that type; mmh sees it as one typed region, coded in chunks of whole blocks of at most 512 KiB.`,
    "- Sizes are exact, as stored / original (the whole GGUF file). `mmh default`, `--goal ratio`, `--codec hier` and `--codec zstd`: `node bin/mmh.js FILE -o OUT -f -q [OPTIONS]`, each output decoded again with `node bin/mmh.js -d` and its sha256 checked against the input's. zstd: `zstd -3 -c FILE`, `zstd -19 -c FILE`.",
    `- **HIER, one byte stream (before block layouts)**: the tensor data cut into 512 KiB pieces, each coded in process by \`hierCodec.encode(piece, { dtype: "U8", level: 3 })\` (HIER's bytes layout, one stream; each decoded again), summing payloads + ${PER_CHUNK} bytes per chunk (${CHUNK_HEADER_SIZE}-byte record header, ${INDEX_ENTRY_SIZE}-byte index entry), plus the bytes of the default .mmh file outside the tensor's chunks (header, the GGUF header region, index, trailer: ${results.map((r) => `${r.t.dtype} ${r.overhead}`).join(", ")} bytes), so it is the whole file as mmh would store it with the tensor's chunks coded as one byte stream.`,
    "- Order-0 bound, fields: the sum over the block fields (the streams of the type's block layout, FORMAT.md §6.2) of the order-0 entropy of each field's bytes over the whole tensor, plus the same non-tensor bytes; one stream: the order-0 entropy of the tensor's bytes as one stream. Context, not a limit: HIER codes each chunk with its own tables, and context Huffman (`--goal ratio`) codes below order 0.",
    "",
    "## Summary",
    "",
    summaryTable,
    "",
    "Block layouts save = 1 − (mmh default / one byte stream); mmh smaller than zstd -19 by = 1 − (mmh default / zstd -19); negative means larger.",
    "",
    ...summaryLines,
    "",
    surprises.length > 0
      ? "Surprising results:"
      : "Nothing surprising: on every type mmh default is smaller than zstd -19 and than one byte stream, every field codes to at most its raw size, and `--codec hier` was nowhere 0.1% or more smaller than the default.",
    ...(surprises.length > 0 ? ["", ...surprises] : []),
    "",
    "## Sizes (stored / original)",
    "",
    sizeTable,
    "",
    "Exact bytes:",
    "",
    byteTable,
    "",
    "## Per field",
    "",
    `Each field of the block layout as HIER codes it, in process (\`hierCodec.encode(chunk, { dtype: TYPE, level: 3 })\` on the chunks the engine plans, ${results.map((r) => `${r.t.dtype} ${r.blockChunks}`).join(", ")} chunks), from the payload's stream descriptors. The HIER payloads total ${results.map((r) => `${r.t.dtype} ${r.blockPayload}`).join(", ")} bytes. An f16 scale is two fields, its low byte (.lo) and its high byte (.hi, sign and exponent).`,
    "",
    fieldTable,
    "",
    "## Quantiser check",
    "",
    "Blocks dequantised by code written from ggml's dequantize_row_* (the first 64 and every 97th after); every weight had to dequantise to a whole level in the type's range, with the step read from the block no larger than 2.1 times the sub-block's range over the type's levels, and lie within 1.5 quantisation steps of its float value, or else beyond the values its sub-block can represent and dequantised to the nearest of them, within 4 steps (the clamping a K-quant's rounded sub-block scale causes, in ggml's quantisers too; counted below). A wrong bit layout fails this and stops the run.",
    "",
    checkTable,
    "",
    "## Speed (context)",
    "",
    `One timed run of each command after a warm-up run, wall clock including process start, files in the page cache; mmh with its default threads (one, for files this size), zstd with its defaults. \`node bin/mmh.js --version\` alone took ${secs(startup)} s. Every timed output was decoded and checked. Single runs vary: compare within this run only.`,
    "",
    speedTable,
    "",
  ];
  writeReport(outFile, lines);
}

// Run when started as a script; other benchmarks import the quantisers above.
if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
