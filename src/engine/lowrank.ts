/**
 * Low-rank prediction for DLTA records (docs/FORMAT.md §6.4, modes 5 to 7): a chunk of a
 * float matrix coded as its difference from a prediction, the base plus a product of two
 * small factors, U·V. A LoRA merged into its base differs from it by such a product, so the
 * difference left over is rounding, a few units in the last place.
 *
 * The reader's side (the block table, the prediction, bit for bit as FORMAT.md defines it)
 * and the writer's (a truncated SVD of the difference, and the choice of rank).
 */
import { check } from "../common/errors.ts";

/** DLTA modes with a low-rank prediction: the element type the prediction is rounded to. */
export const DELTA_LOWRANK_F32 = 5;
export const DELTA_LOWRANK_BF16 = 6;
export const DELTA_LOWRANK_F16 = 7;

/** Factor types: how U and V are stored. */
export const FACTOR_F32 = 0;
export const FACTOR_BF16 = 1;
const FACTOR_BYTES = [4, 2];

/** Largest rank a block may have (one byte). */
export const MAX_RANK = 255;
/** Bytes of one block's entry in the table: rows, cols (u32), rank, factor type (u8). */
export const BLOCK_ENTRY = 10;

/** One block of a low-rank DLTA chunk: rows × cols elements, row-major, predicted with `rank` terms. */
export interface LowRankBlock {
  rows: number;
  cols: number;
  rank: number;
  factor: number;
}

/** A binary float format: significant bits p, smallest normal exponent, largest exponent. */
interface FloatFormat {
  bytes: number;
  p: number;
  emin: number;
  emax: number;
  bias: number;
}

const F32: FloatFormat = { bytes: 4, p: 24, emin: -126, emax: 127, bias: 127 };
const BF16: FloatFormat = { bytes: 2, p: 8, emin: -126, emax: 127, bias: 127 };
const F16: FloatFormat = { bytes: 2, p: 11, emin: -14, emax: 15, bias: 15 };

export function isLowRankMode(mode: number): boolean {
  return mode >= DELTA_LOWRANK_F32 && mode <= DELTA_LOWRANK_F16;
}

function formatOf(mode: number): FloatFormat {
  return mode === DELTA_LOWRANK_F32 ? F32 : mode === DELTA_LOWRANK_BF16 ? BF16 : F16;
}

/** Element bytes of a low-rank mode. */
export function lowRankWidth(mode: number): number {
  return formatOf(mode).bytes;
}

/** The low-rank mode for a dtype, if it has one. */
export function lowRankModeFor(dtype: string | null): number | undefined {
  return dtype === "F32"
    ? DELTA_LOWRANK_F32
    : dtype === "BF16"
      ? DELTA_LOWRANK_BF16
      : dtype === "F16"
        ? DELTA_LOWRANK_F16
        : undefined;
}

// ---- exact powers of two, and rounding a double to a format ---------------------------------

const POW2_MIN = -160;
const POW2 = (() => {
  const out = new Float64Array(300);
  let v = 1;
  for (let k = 0; k > POW2_MIN; k--) v /= 2;
  for (let i = 0; i < out.length; i++) {
    out[i] = v;
    v *= 2;
  }
  return out;
})();
const pow2 = (k: number) => POW2[k - POW2_MIN];

const f64 = new Float64Array(1);
const f64hi = new Uint32Array(f64.buffer, 4, 1);

/**
 * The bit pattern of x rounded to the format, once, to nearest with ties to even; a
 * magnitude that rounds to 2^(emax+1) or more is infinity; zero keeps its sign. x finite.
 */
function roundBits(x: number, f: FloatFormat): number {
  const sign = x < 0 || Object.is(x, -0) ? 1 : 0;
  const signBit = sign ? (f.bytes === 4 ? 0x80000000 : 0x8000) : 0;
  const a = Math.abs(x);
  if (a === 0) return signBit >>> 0;
  f64[0] = a;
  const biased = (f64hi[0] >>> 20) & 0x7ff;
  let e = Math.max(biased - 1023, f.emin);
  const q = pow2(e - f.p + 1);
  const y = a / q;
  const fl = Math.floor(y);
  const d = y - fl;
  let n = d > 0.5 ? fl + 1 : d < 0.5 ? fl : fl % 2 === 0 ? fl : fl + 1;
  const top = pow2(f.p - 1);
  if (n === top * 2) {
    n = top;
    e++;
  }
  const expBits = f.bytes === 4 ? 8 : f === F16 ? 5 : 8;
  if (e > f.emax) return (signBit | (((1 << expBits) - 1) * top)) >>> 0;
  // Below the smallest normal the exponent field is 0 (n < top then).
  if (n < top) return (signBit | n) >>> 0;
  return (signBit + (e + f.bias) * top + (n - top)) >>> 0;
}

/** The value of every 16-bit pattern of a format, as a double (NaN for NaNs). */
const table16 = new Map<FloatFormat, Float64Array>();
function values16(f: FloatFormat): Float64Array {
  let t = table16.get(f);
  if (!t) {
    t = new Float64Array(65536);
    const f32 = new Float32Array(1);
    const u32 = new Uint32Array(f32.buffer);
    for (let b = 0; b < 65536; b++) {
      if (f === BF16) {
        u32[0] = b << 16;
        t[b] = f32[0];
      } else {
        const s = b & 0x8000 ? -1 : 1;
        const ex = (b >>> 10) & 0x1f;
        const m = b & 0x3ff;
        t[b] =
          ex === 0x1f
            ? m
              ? Number.NaN
              : s * Infinity
            : ex === 0
              ? s * m * 2 ** -24
              : s * (1024 + m) * 2 ** (ex - 25);
      }
    }
    table16.set(f, t);
  }
  return t;
}

/** Element values of little-endian bytes in a format, as doubles. */
export function elementValues(bytes: Uint8Array, mode: number): Float64Array {
  const f = formatOf(mode);
  const n = bytes.length / f.bytes;
  const out = new Float64Array(n);
  if (f.bytes === 4) {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true);
  } else {
    const t = values16(f);
    for (let i = 0; i < n; i++) out[i] = t[bytes[2 * i] | (bytes[2 * i + 1] << 8)];
  }
  return out;
}

function factorValue(bytes: Uint8Array, at: number, type: number): number {
  if (type === FACTOR_F32) {
    f32buf[0] = (bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24)) >>> 0;
    return f32view[0];
  }
  f32buf[0] = ((bytes[at] | (bytes[at + 1] << 8)) << 16) >>> 0;
  return f32view[0];
}
const f32buf = new Uint32Array(1);
const f32view = new Float32Array(f32buf.buffer);

// ---- the block table ----------------------------------------------------------------------------

/** The table's bytes: block count (u16), then each block's rows, cols (u32), rank, factor type (u8). */
export function encodeBlocks(blocks: readonly LowRankBlock[]): Buffer {
  const out = Buffer.alloc(2 + BLOCK_ENTRY * blocks.length);
  out.writeUInt16LE(blocks.length, 0);
  blocks.forEach((b, i) => {
    const at = 2 + BLOCK_ENTRY * i;
    out.writeUInt32LE(b.rows, at);
    out.writeUInt32LE(b.cols, at + 4);
    out[at + 8] = b.rank;
    out[at + 9] = b.factor;
  });
  return out;
}

/** Bytes of the factors of the blocks. */
export function factorBytes(blocks: readonly LowRankBlock[]): number {
  let total = 0;
  for (const b of blocks) total += b.rank * (b.rows + b.cols) * FACTOR_BYTES[b.factor];
  return total;
}

/**
 * Parse and check the table at the start of `bytes` (the DLTA params after the fixed 45):
 * the blocks, and the table's length. `rawLength` and `stored` are R and S.
 */
export function parseBlocks(
  bytes: Uint8Array,
  mode: number,
  rawLength: number,
  stored: number,
  where: string,
): { blocks: LowRankBlock[]; length: number; factors: number } {
  check(bytes.length >= 2, "E_CORRUPT", `${where}: DLTA mode ${mode} params have no block table`);
  const count = bytes[0] | (bytes[1] << 8);
  check(count >= 1, "E_CORRUPT", `${where}: DLTA block table is empty`);
  const length = 2 + BLOCK_ENTRY * count;
  check(bytes.length >= length, "E_CORRUPT", `${where}: DLTA block table runs past the params`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, length);
  const width = formatOf(mode).bytes;
  const blocks: LowRankBlock[] = [];
  let elements = 0;
  let factors = 0;
  for (let i = 0; i < count; i++) {
    const at = 2 + BLOCK_ENTRY * i;
    const rows = dv.getUint32(at, true);
    const cols = dv.getUint32(at + 4, true);
    const rank = bytes[at + 8];
    const factor = bytes[at + 9];
    check(rows >= 1 && cols >= 1, "E_CORRUPT", `${where}: DLTA block ${i} has no rows or columns`);
    check(
      factor <= FACTOR_BF16,
      "E_CORRUPT",
      `${where}: DLTA block ${i} factor type ${factor} is not 0 or 1`,
    );
    check(
      rank > 0 || factor === 0,
      "E_CORRUPT",
      `${where}: DLTA block ${i} of rank 0 has factor type ${factor}`,
    );
    check(
      rank <= Math.min(rows, cols),
      "E_CORRUPT",
      `${where}: DLTA block ${i} rank ${rank} over its ${rows} x ${cols}`,
    );
    // Each step stays below 2^53: rows, cols < 2^32, and the running sums stop at R.
    check(
      rows * cols <= rawLength / width - elements,
      "E_CORRUPT",
      `${where}: DLTA blocks hold more than the record's ${rawLength} bytes`,
    );
    elements += rows * cols;
    factors += rank * (rows + cols) * FACTOR_BYTES[factor];
    check(factors <= stored, "E_CORRUPT", `${where}: DLTA factors run past the payload`);
    blocks.push({ rows, cols, rank, factor });
  }
  check(
    elements * width === rawLength,
    "E_CORRUPT",
    `${where}: DLTA blocks hold ${elements * width} bytes, not the record's ${rawLength}`,
  );
  return { blocks, length, factors };
}

/**
 * The prediction P (FORMAT.md §6.4): for each element, its base value b plus the sum over k
 * of U[i,k]·V[k,j] in doubles, k from 0, rounded once to the format; a base element that is
 * NaN or infinite, and every element of a rank-0 block, is predicted as itself. Returned as
 * little-endian bytes. A factor that is not finite is E_CORRUPT.
 */
export function predict(
  base: Uint8Array,
  blocks: readonly LowRankBlock[],
  factorData: Uint8Array,
  mode: number,
  where: string,
): Buffer {
  const f = formatOf(mode);
  const out = Buffer.from(base);
  const values = elementValues(base, mode);
  let element = 0;
  let at = 0;
  for (const b of blocks) {
    const count = b.rows * b.cols;
    if (b.rank === 0) {
      element += count;
      continue;
    }
    const fb = FACTOR_BYTES[b.factor];
    const u = new Float64Array(b.rows * b.rank);
    const v = new Float64Array(b.rank * b.cols);
    for (let i = 0; i < u.length; i++, at += fb) u[i] = factorValue(factorData, at, b.factor);
    for (let i = 0; i < v.length; i++, at += fb) v[i] = factorValue(factorData, at, b.factor);
    for (const x of u) check(Number.isFinite(x), "E_CORRUPT", `${where}: a DLTA factor is not finite`);
    for (const x of v) check(Number.isFinite(x), "E_CORRUPT", `${where}: a DLTA factor is not finite`);
    writePrediction(out, values, element, b, u, v, f);
    element += count;
  }
  return out;
}

function writePrediction(
  out: Buffer,
  values: Float64Array,
  first: number,
  b: LowRankBlock,
  u: Float64Array,
  v: Float64Array,
  f: FloatFormat,
): void {
  const { rows, cols, rank } = b;
  // Row by row, the sums of all columns at once, each still s = 0 + t_0 + t_1 + ... in k order.
  const sums = new Float64Array(cols);
  for (let i = 0; i < rows; i++) {
    const row = first + i * cols;
    sums.fill(0);
    for (let k = 0; k < rank; k++) {
      const uik = u[i * rank + k];
      const vk = k * cols;
      for (let j = 0; j < cols; j++) sums[j] += uik * v[vk + j];
    }
    for (let j = 0; j < cols; j++) {
      const x = values[row + j];
      if (!Number.isFinite(x)) continue;
      const bits = roundBits(x + sums[j], f);
      const at = (row + j) * f.bytes;
      if (f.bytes === 4) out.writeUInt32LE(bits, at);
      else out.writeUInt16LE(bits, at);
    }
  }
}

// ---- the writer's side: a truncated SVD, and the choice of rank -------------------------------

/** A deterministic generator of normal deviates, so that the writer's output does not vary. */
export function normals(seed: number): () => number {
  let s = seed >>> 0 || 1;
  const uniform = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return (s + 0.5) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** Orthonormalise the k columns of Y (m × k, row-major) in place, twice over; returns the columns kept. */
function orthonormalise(y: Float64Array, m: number, k: number): void {
  for (let pass = 0; pass < 2; pass++)
    for (let c = 0; c < k; c++) {
      for (let p = 0; p < c; p++) {
        let dot = 0;
        for (let i = 0; i < m; i++) dot += y[i * k + c] * y[i * k + p];
        for (let i = 0; i < m; i++) y[i * k + c] -= dot * y[i * k + p];
      }
      let norm = 0;
      for (let i = 0; i < m; i++) norm += y[i * k + c] ** 2;
      norm = Math.sqrt(norm);
      for (let i = 0; i < m; i++) y[i * k + c] = norm > 1e-300 ? y[i * k + c] / norm : 0;
    }
}

/** Eigen-decomposition of a symmetric k × k matrix by cyclic Jacobi: values, and vectors as columns. */
function symmetricEigen(a: Float64Array, k: number): { values: Float64Array; vectors: Float64Array } {
  const w = new Float64Array(k * k);
  for (let i = 0; i < k; i++) w[i * k + i] = 1;
  for (let sweep = 0; sweep < 60; sweep++) {
    let off = 0;
    for (let p = 0; p < k; p++) for (let q = p + 1; q < k; q++) off += a[p * k + q] ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < k; p++)
      for (let q = p + 1; q < k; q++) {
        const apq = a[p * k + q];
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (a[q * k + q] - a[p * k + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let r = 0; r < k; r++) {
          const arp = a[r * k + p];
          const arq = a[r * k + q];
          a[r * k + p] = c * arp - s * arq;
          a[r * k + q] = s * arp + c * arq;
        }
        for (let r = 0; r < k; r++) {
          const apr = a[p * k + r];
          const aqr = a[q * k + r];
          a[p * k + r] = c * apr - s * aqr;
          a[q * k + r] = s * apr + c * aqr;
        }
        for (let r = 0; r < k; r++) {
          const wrp = w[r * k + p];
          const wrq = w[r * k + q];
          w[r * k + p] = c * wrp - s * wrq;
          w[r * k + q] = s * wrp + c * wrq;
        }
      }
  }
  const values = new Float64Array(k);
  for (let i = 0; i < k; i++) values[i] = a[i * k + i];
  return { values, vectors: w };
}

/**
 * The leading k singular triplets of D (m × n, row-major) by randomized subspace iteration:
 * U (m × k, columns of unit length), σ, and V (k × n, each row σ_i times the right vector).
 */
export function truncatedSvd(
  d: Float64Array,
  m: number,
  n: number,
  k: number,
  iterations = 3,
): { u: Float64Array; sigma: Float64Array; v: Float64Array } {
  const next = normals(0x9e3779b9 ^ (m * 31 + n));
  // Y = D Ω, Ω n × k.
  const omega = Float64Array.from({ length: n * k }, next);
  let y = multiply(d, m, n, omega, k);
  orthonormalise(y, m, k);
  for (let it = 0; it < iterations; it++) {
    const z = multiplyTransposed(d, m, n, y, k);
    orthonormalise(z, n, k);
    y = multiply(d, m, n, z, k);
    orthonormalise(y, m, k);
  }
  // B = Qᵀ D (k × n); G = B Bᵀ = W Λ Wᵀ.
  const b = multiplyTransposed(d, m, n, y, k); // n × k: Bᵀ
  const g = new Float64Array(k * k);
  for (let p = 0; p < k; p++)
    for (let q = p; q < k; q++) {
      let s = 0;
      for (let j = 0; j < n; j++) s += b[j * k + p] * b[j * k + q];
      g[p * k + q] = s;
      g[q * k + p] = s;
    }
  const { values, vectors } = symmetricEigen(g, k);
  const order = [...values.keys()].sort((i, j) => values[j] - values[i]);
  const u = new Float64Array(m * k);
  const v = new Float64Array(k * n);
  const sigma = new Float64Array(k);
  order.forEach((e, c) => {
    sigma[c] = Math.sqrt(Math.max(values[e], 0));
    for (let i = 0; i < m; i++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += y[i * k + p] * vectors[p * k + e];
      u[i * k + c] = s;
    }
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += b[j * k + p] * vectors[p * k + e];
      v[c * n + j] = s;
    }
  });
  return { u, sigma, v };
}

/** D (m × n) times X (n × k). */
function multiply(d: Float64Array, m: number, n: number, x: Float64Array, k: number): Float64Array {
  const out = new Float64Array(m * k);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      const a = d[i * n + j];
      if (a === 0) continue;
      for (let c = 0; c < k; c++) out[i * k + c] += a * x[j * k + c];
    }
  return out;
}

/** Dᵀ (n × m) times Y (m × k). */
function multiplyTransposed(d: Float64Array, m: number, n: number, y: Float64Array, k: number): Float64Array {
  const out = new Float64Array(n * k);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      const a = d[i * n + j];
      if (a === 0) continue;
      for (let c = 0; c < k; c++) out[j * k + c] += a * y[i * k + c];
    }
  return out;
}

/** A factor value as stored (F32 or BF16, rounded to nearest, ties to even), as a double. */
function storedFactor(x: number, type: number): number {
  if (type === FACTOR_F32) return Math.fround(x);
  f32buf[0] = roundBits(x, BF16) << 16;
  return f32view[0];
}

function writeFactor(out: Buffer, at: number, x: number, type: number): void {
  if (type === FACTOR_F32) out.writeFloatLE(x, at);
  else out.writeUInt16LE(roundBits(x, BF16), at);
}

/** Estimated bits to code zigzag residuals: the entropy of their bit lengths, plus the bits below the top one. */
function residualBits(
  raw: Uint8Array,
  pred: Uint8Array,
  first: number,
  count: number,
  bytes: number,
): number {
  const hist = new Float64Array(34);
  let low = 0;
  for (let e = first; e < first + count; e++) {
    const at = e * bytes;
    let z: number;
    if (bytes === 4) {
      const d =
        ((raw[at] | (raw[at + 1] << 8) | (raw[at + 2] << 16) | (raw[at + 3] << 24)) -
          (pred[at] | (pred[at + 1] << 8) | (pred[at + 2] << 16) | (pred[at + 3] << 24))) |
        0;
      z = ((d << 1) ^ (d >> 31)) >>> 0;
    } else {
      const d = (((raw[at] | (raw[at + 1] << 8)) - (pred[at] | (pred[at + 1] << 8))) << 16) >> 16;
      z = ((d << 1) ^ (d >> 31)) & 0xffff;
    }
    const len = z === 0 ? 0 : 32 - Math.clz32(z);
    hist[len]++;
    if (len > 1) low += len - 1;
  }
  let h = 0;
  for (const c of hist) if (c > 0) h -= c * Math.log2(c / count);
  return h + low;
}

/** A piece of a chunk: `count` elements from element `first`, a matrix of rows × cols when it is one. */
export interface Piece {
  first: number;
  rows: number;
  cols: number;
  matrix: boolean;
}

/** The largest rank tried; the ranks of the first look, and the SVD's extra columns. */
const MAX_TRIED_RANK = 64;
const PROBE_RANK = 16;
/** Elements of a block each rank is judged on, at least (whole rows, 8 of them at least). */
const SAMPLE_ELEMENTS = 16384;
const OVERSAMPLE = 4;

/**
 * The blocks and factors that predict `raw` from `base` (a chunk in the mode's format) best,
 * by the estimated size of the residual and the factors; undefined when no block of rank
 * above 0 pays. Pieces cover the chunk in order.
 */
export function fitLowRank(
  raw: Uint8Array,
  base: Uint8Array,
  mode: number,
  pieces: readonly Piece[],
): { blocks: LowRankBlock[]; factors: Buffer; prediction: Buffer } | undefined {
  const f = formatOf(mode);
  const rawValues = elementValues(raw, mode);
  const baseValues = elementValues(base, mode);
  const prediction = Buffer.from(base);
  const blocks: LowRankBlock[] = [];
  const factorParts: Buffer[] = [];
  const factorTypes = f.bytes === 4 ? [FACTOR_F32] : [FACTOR_BF16, FACTOR_F32];
  let any = false;
  for (const piece of pieces) {
    const { rows, cols, first } = piece;
    const count = rows * cols;
    const plainBits = residualBits(raw, base, first, count, f.bytes);
    // The largest rank whose factors (in the smaller type) are smaller than the piece's residual as it is.
    const limit = Math.min(
      MAX_TRIED_RANK,
      rows,
      cols,
      Math.floor(plainBits / 8 / ((rows + cols) * FACTOR_BYTES[factorTypes[0]])),
    );
    if (!piece.matrix || limit < 1 || rows < 4 || cols < 4) {
      blocks.push({ rows, cols, rank: 0, factor: 0 });
      continue;
    }
    const d = new Float64Array(count);
    for (let e = 0; e < count; e++) {
      const diff = rawValues[first + e] - baseValues[first + e];
      d[e] = Number.isFinite(diff) ? diff : 0;
    }
    // A first look at up to 16 terms; more only when the 16th still carries weight.
    let energy = 0;
    for (const x of d) energy += x * x;
    const fbMin = FACTOR_BYTES[factorTypes[0]];
    const gain = (r: number, sigma: Float64Array) => {
      let captured = 0;
      for (let i = 0; i < r; i++) captured += sigma[i] ** 2;
      const left = Math.max(energy - captured, energy * 1e-12);
      return count * 0.5 * Math.log2(energy / left) - r * (rows + cols) * fbMin * 8;
    };
    // Ranks up to 16 first; then up to 32, and 64, only while the next singular value
    // past the last rank looked at still holds 1% of the first's energy and the ranks
    // looked at promise to pay.
    let look = Math.min(limit, PROBE_RANK);
    let k = Math.min(look + OVERSAMPLE, rows, cols);
    let svd = truncatedSvd(d, rows, cols, k, 1);
    while (
      look < limit &&
      k > look &&
      svd.sigma[look] ** 2 > 0.01 * svd.sigma[0] ** 2 &&
      gain(look, svd.sigma) > 0
    ) {
      look = Math.min(limit, look * 2);
      k = Math.min(look + OVERSAMPLE, rows, cols);
      svd = truncatedSvd(d, rows, cols, k, 2);
    }
    const { u, sigma, v } = svd;
    // The ranks worth an exact look: those the captured energy says may pay, the best three.
    const tries = candidateRanks(sigma, Math.min(limit, Math.max(k - OVERSAMPLE, 1)))
      .map((r) => ({ r, g: gain(r, sigma) }))
      .filter((c) => c.g > 0)
      .sort((a, b) => b.g - a.g)
      .slice(0, 3)
      .map((c) => c.r);
    // Each rank is judged on a sample of evenly spaced rows (16 Ki elements), scaled up;
    // only the rank kept gets its prediction over all the rows.
    const step = Math.max(1, Math.floor(rows / Math.max(8, Math.ceil(SAMPLE_ELEMENTS / cols))));
    const sampled: number[] = [];
    for (let i = 0; i < rows; i += step) sampled.push(i);
    const sub = sampled.length;
    const scale = rows / sub;
    const rawSample = Buffer.alloc(sub * cols * f.bytes);
    const baseSample = Buffer.alloc(sub * cols * f.bytes);
    const baseSampleValues = new Float64Array(sub * cols);
    sampled.forEach((i, s) => {
      const from = (first + i * cols) * f.bytes;
      rawSample.set(raw.subarray(from, from + cols * f.bytes), s * cols * f.bytes);
      baseSample.set(base.subarray(from, from + cols * f.bytes), s * cols * f.bytes);
      baseSampleValues.set(baseValues.subarray(first + i * cols, first + (i + 1) * cols), s * cols);
    });
    const predSample = Buffer.alloc(sub * cols * f.bytes);
    const quantised = (rank: number, factor: number) => {
      const uq = new Float64Array(rows * rank);
      const vq = new Float64Array(rank * cols);
      for (let i = 0; i < rows; i++)
        for (let c = 0; c < rank; c++) uq[i * rank + c] = storedFactor(u[i * k + c], factor);
      for (let c = 0; c < rank; c++)
        for (let j = 0; j < cols; j++) vq[c * cols + j] = storedFactor(v[c * cols + j], factor);
      return { uq, vq };
    };
    const estimate = (rank: number, factor: number, uq: Float64Array, vq: Float64Array) => {
      const uSub = new Float64Array(sub * rank);
      sampled.forEach((i, s) => {
        uSub.set(uq.subarray(i * rank, (i + 1) * rank), s * rank);
      });
      predSample.set(baseSample);
      writePrediction(predSample, baseSampleValues, 0, { rows: sub, cols, rank, factor }, uSub, vq, f);
      return (
        residualBits(rawSample, predSample, 0, sub * cols, f.bytes) * scale +
        rank * (rows + cols) * FACTOR_BYTES[factor] * 8
      );
    };
    const none = new Float64Array(0);
    let best = {
      bits: residualBits(rawSample, baseSample, 0, sub * cols, f.bytes) * scale,
      rank: 0,
      factor: FACTOR_F32,
      u: none,
      v: none,
    };
    for (const rank of tries) {
      const { uq, vq } = quantised(rank, factorTypes[0]);
      const bits = estimate(rank, factorTypes[0], uq, vq);
      if (bits < best.bits) best = { bits, rank, factor: factorTypes[0], u: uq, v: vq };
    }
    // 16-bit data: F32 factors, at the rank kept, in case BF16 ones lose too much.
    if (best.rank > 0 && factorTypes.length > 1) {
      const { uq, vq } = quantised(best.rank, factorTypes[1]);
      const bits = estimate(best.rank, factorTypes[1], uq, vq);
      if (bits < best.bits) best = { bits, rank: best.rank, factor: factorTypes[1], u: uq, v: vq };
    }
    blocks.push({ rows, cols, rank: best.rank, factor: best.factor });
    if (best.rank === 0) continue;
    any = true;
    const fb = FACTOR_BYTES[best.factor];
    const part = Buffer.alloc(best.rank * (rows + cols) * fb);
    let at = 0;
    for (const x of best.u) {
      writeFactor(part, at, x, best.factor);
      at += fb;
    }
    for (const x of best.v) {
      writeFactor(part, at, x, best.factor);
      at += fb;
    }
    factorParts.push(part);
    writePrediction(prediction, baseValues, first, blocks[blocks.length - 1], best.u, best.v, f);
  }
  if (!any) return undefined;
  // Neighbouring blocks of rank 0 become one row.
  const merged: LowRankBlock[] = [];
  for (const b of blocks) {
    const last = merged[merged.length - 1];
    if (b.rank === 0 && last && last.rank === 0)
      merged[merged.length - 1] = { ...last, rows: 1, cols: last.rows * last.cols + b.rows * b.cols };
    else merged.push(b.rank === 0 ? { rows: 1, cols: b.rows * b.cols, rank: 0, factor: 0 } : b);
  }
  return { blocks: merged, factors: Buffer.concat(factorParts), prediction };
}

/** Rows of a matrix that probeLowRank looks at: a matrix of no more rows goes to the fit at once. */
const PROBE_ROWS = 48;

/**
 * What a low-rank term may save on the chunk, in bits, at most: a cheap look before
 * fitLowRank, on evenly spaced rows of each matrix (PROBE_ROWS of them). The share of the
 * differences' energy the leading terms capture on those rows is taken for the whole
 * matrix, in the fit's own measure of gain (`gain` in fitLowRank: half the log2 of the
 * energy ratio per element, less the factors' bits), and each matrix's best rank counts.
 * On fewer rows the leading terms capture more of what is not low-rank, so the look errs
 * towards a larger gain. 0 where no rank the fit would try promises any; infinite where a
 * matrix has too few rows to look at (the fit itself is cheap there).
 */
export function probeLowRank(
  raw: Uint8Array,
  base: Uint8Array,
  mode: number,
  pieces: readonly Piece[],
): number {
  const f = formatOf(mode);
  const fbMin = FACTOR_BYTES[f.bytes === 4 ? FACTOR_F32 : FACTOR_BF16];
  let total = 0;
  for (const piece of pieces) {
    const { rows, cols, first } = piece;
    if (!piece.matrix || rows < 4 || cols < 4) continue;
    const count = rows * cols;
    const plainBits = residualBits(raw, base, first, count, f.bytes);
    const limit = Math.min(MAX_TRIED_RANK, rows, cols, Math.floor(plainBits / 8 / ((rows + cols) * fbMin)));
    if (limit < 1) continue;
    if (rows <= PROBE_ROWS) return Number.POSITIVE_INFINITY;
    const s = PROBE_ROWS;
    const d = new Float64Array(s * cols);
    let energy = 0;
    for (let r = 0; r < s; r++) {
      const from = (first + Math.floor((r * rows) / s) * cols) * f.bytes;
      const to = from + cols * f.bytes;
      const rawValues = elementValues(raw.subarray(from, to), mode);
      const baseValues = elementValues(base.subarray(from, to), mode);
      for (let j = 0; j < cols; j++) {
        const diff = rawValues[j] - baseValues[j];
        const x = Number.isFinite(diff) ? diff : 0;
        d[r * cols + j] = x;
        energy += x * x;
      }
    }
    if (energy === 0) continue;
    const k = Math.min(PROBE_RANK + OVERSAMPLE, s, cols);
    const { sigma } = truncatedSvd(d, s, cols, k, 1);
    let captured = 0;
    let best = 0;
    for (let r = 1; r <= Math.min(limit, k - OVERSAMPLE); r++) {
      captured += sigma[r - 1] ** 2;
      const left = Math.max(energy - captured, energy * 1e-12);
      best = Math.max(best, count * 0.5 * Math.log2(energy / left) - r * (rows + cols) * fbMin * 8);
    }
    total += best;
  }
  return total;
}

/** Ranks to try: where the singular values drop, and powers of two, up to `limit`. */
function candidateRanks(sigma: Float64Array, limit: number): number[] {
  const out = new Set<number>();
  for (let r = 1; r <= limit; r *= 2) out.add(r);
  const drops = [];
  for (let r = 1; r < sigma.length && r <= limit; r++)
    if (sigma[r] > 0) drops.push({ r, ratio: sigma[r - 1] / sigma[r] });
  drops.sort((a, b) => b.ratio - a.ratio);
  for (const { r } of drops.slice(0, 3)) out.add(r);
  return [...out].sort((a, b) => a - b);
}

/** The bit pattern of a finite double rounded once to a mode's format (FORMAT.md §6.4), for tests and tools. */
export function roundToFormat(x: number, mode: number): number {
  return roundBits(x, formatOf(mode));
}
