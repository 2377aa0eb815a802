/**
 * The information in a checkpoint's difference from the checkpoint before, for
 * bench/deltas.ts: empirical entropies of the integer differences of the bit patterns
 * (what DLTA modes 3 and 4 code), on their own and conditioned on what a reader of the
 * base could know (the base element's exponent; the change of the step before).
 */

export interface Tensor {
  name: string;
  dtype: string;
  bytes: Buffer;
}

/**
 * Bits per element, over all the elements of the files' common F32 and BF16 tensors. A
 * difference is zigzag-coded (z, as DLTA modes 3 and 4 do) and split into its bit length L
 * and top 4 bits (the _class_, at most 33 x 16 values, so its empirical entropy over a file
 * is a sound estimate) and the L − 4 bits below them, counted as stored raw. The bits below
 * are measured to be noise (`belowTop`), so the class's entropy plus them estimates the
 * information in the differences; the empirical order-0 entropy of the whole 32-bit
 * differences (`order0`) is not, as most values occur once or twice in a file.
 */
export interface Bound {
  elements: number;
  /** Empirical order-0 entropy of d (sound for 16-bit, far too low for 32-bit differences). */
  order0: number;
  /** The class of d, order 0, plus the bits below. */
  classes: number;
  /** The class given the base element's exponent field, plus the bits below. */
  givenExponent: number;
  /** Entropy of the 4 bits right below the class, per bit (1 for noise), where L ≥ 12. */
  belowTop: number;
  /** The median bit length L of the zigzag-coded differences. */
  medianLength: number;
  /** With the checkpoint before the base: the class of d given the previous change's bit length and sign. */
  givenPrevious?: number;
  /** The class of d − d' (the previous change taken as the prediction), plus the bits below. */
  minusPrevious?: number;
}

function entropy(counts: Map<number, number>, total: number): number {
  let h = 0;
  for (const c of counts.values()) h -= c * Math.log2(c / total);
  return h;
}

/** Entropy of values given their keys, in bits (a total, not per element). */
function conditional(pairs: Map<number, Map<number, number>>): number {
  let h = 0;
  for (const counts of pairs.values()) {
    let total = 0;
    for (const c of counts.values()) total += c;
    h += entropy(counts, total);
  }
  return h;
}

function add(map: Map<number, number>, key: number): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

function addPair(map: Map<number, Map<number, number>>, key: number, value: number): void {
  let inner = map.get(key);
  if (!inner) {
    inner = new Map();
    map.set(key, inner);
  }
  add(inner, value);
}

/** Signed differences of the elements' bit patterns, and the exponent field of each base element. */
function differences(next: Buffer, base: Buffer, wide: boolean): { d: Int32Array; exponent: Int32Array } {
  const n = next.length / (wide ? 4 : 2);
  const d = new Int32Array(n);
  const exponent = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    if (wide) {
      const b = base.readUInt32LE(i * 4);
      d[i] = (next.readUInt32LE(i * 4) - b) | 0;
      exponent[i] = (b >>> 23) & 0xff;
    } else {
      const b = base.readUInt16LE(i * 2);
      d[i] = ((next.readUInt16LE(i * 2) - b) << 16) >> 16;
      exponent[i] = (b >>> 7) & 0xff;
    }
  }
  return { d, exponent };
}

/** The median of values 0, 1, 2, ... given their counts. */
function medianOf(counts: readonly number[], total: number): number {
  let seen = 0;
  for (let v = 0; v < counts.length; v++) {
    seen += counts[v];
    if (seen * 2 >= total) return v;
  }
  return counts.length - 1;
}

const zigzag = (x: number) => ((x << 1) ^ (x >> 31)) >>> 0;
const bitLength = (z: number) => (z === 0 ? 0 : 32 - Math.clz32(z));
/** The class of a difference (bit length and top 4 bits), and how many bits lie below it. */
function classOf(x: number): { key: number; below: number } {
  const z = zigzag(x);
  const len = bitLength(z);
  const below = Math.max(len - 4, 0);
  return { key: len * 16 + ((z >>> below) & 15), below };
}

/**
 * The bound for `next` against `base` (tensors matched by name, F32 or BF16 only); with
 * `before`, the checkpoint before `base`, also the change of the step before as a predictor.
 */
export function differenceBound(next: Tensor[], base: Tensor[], before?: Tensor[]): Bound {
  const byName = (ts: Tensor[] | undefined) => new Map((ts ?? []).map((t) => [t.name, t]));
  const bases = byName(base);
  const befores = byName(before);
  const all = new Map<number, number>();
  const classes = new Map<number, number>();
  const givenExponent = new Map<number, Map<number, number>>();
  const givenPrevious = new Map<number, Map<number, number>>();
  const minusPrevious = new Map<number, number>();
  const nextBits = new Map<number, number>();
  let nextCount = 0;
  const lengthCounts = new Array<number>(34).fill(0);
  let below = 0;
  let belowMinus = 0;
  let elements = 0;
  for (const t of next) {
    const b = bases.get(t.name);
    if (!b || b.dtype !== t.dtype || b.bytes.length !== t.bytes.length) continue;
    if (t.dtype !== "F32" && t.dtype !== "BF16") continue;
    const wide = t.dtype === "F32";
    const { d, exponent } = differences(t.bytes, b.bytes, wide);
    const p = befores.get(t.name);
    const previous =
      p && p.bytes.length === t.bytes.length ? differences(b.bytes, p.bytes, wide).d : undefined;
    for (let i = 0; i < d.length; i++) {
      add(all, d[i]);
      const c = classOf(d[i]);
      lengthCounts[c.key >> 4]++;
      add(classes, c.key);
      addPair(givenExponent, exponent[i], c.key);
      below += c.below;
      if (c.below >= 8) {
        add(nextBits, (zigzag(d[i]) >>> (c.below - 4)) & 15);
        nextCount++;
      }
      if (previous) {
        const z = zigzag(previous[i]);
        addPair(givenPrevious, bitLength(z) * 2 + (z & 1), c.key);
        const m = classOf((d[i] - previous[i]) | 0);
        add(minusPrevious, m.key);
        belowMinus += m.below;
      }
    }
    elements += d.length;
  }
  const per = (bits: number) => bits / elements;
  return {
    elements,
    order0: per(entropy(all, elements)),
    classes: per(entropy(classes, elements) + below),
    givenExponent: per(conditional(givenExponent) + below),
    belowTop: nextCount > 0 ? entropy(nextBits, nextCount) / nextCount / 4 : 1,
    medianLength: medianOf(lengthCounts, elements),
    ...(before
      ? {
          givenPrevious: per(conditional(givenPrevious) + below),
          minusPrevious: per(entropy(minusPrevious, elements) + belowMinus),
        }
      : {}),
  };
}
