/**
 * ABIN, an adaptive binary range coder for one byte stream of known length (docs/FORMAT.md
 * §6.7): each byte is the rank of its value in an alphabet the payload lists, coded as the
 * rank's bits, most significant first, down a binary tree; each node's probability is kept
 * apart for each context (the quantised ranks of the bytes 1 or 2 places before, or of
 * both) and adapts after every bit by a shift. Order-0 Huffman spends at least one bit on a
 * byte; this coder goes below that where the bytes are predictable (dlib's control bytes,
 * whose sign follows the one two floats before) and uses the bytes before as a context.
 */
import { MmhError } from "../common/errors.ts";

/** Fixed bytes before the alphabet: rate, lag count, quantiser, alphabet size - 1. */
const HEADER = 4;
/** Probability slots at most (contexts times tree nodes): 2^20, 2 MiB of state. */
const MAX_SLOTS = 1 << 20;
const MAX_LAG = 8;
const MAX_RATE = 15;
const HALF = 32768;

export interface AbinModel {
  /** Adaptation shift once a slot has seen `rate` bits (1-15). */
  readonly rate: number;
  /** Lags of the context bytes: none, one, or two increasing (each 1-8). */
  readonly lags: readonly number[];
  /** Context ranks at or above quant - 1 count as quant - 1 (1-256). */
  readonly quant: number;
}

function corrupt(message: string): MmhError {
  return new MmhError("E_CORRUPT", `ABIN: ${message}`);
}

/** Bits of a rank: the least d with 2^d >= alphabet size. */
function depthOf(size: number): number {
  let d = 0;
  while (1 << d < size) d++;
  return d;
}

/** Slots for a model on an alphabet of `size` (quant capped at the size). */
function slotsOf(model: AbinModel, size: number): number {
  return Math.min(model.quant, size) ** model.lags.length * (1 << depthOf(size));
}

/** The alphabet in rank order: by count, most frequent first, ties by value. */
function alphabetOf(stream: Uint8Array): number[] {
  const counts = new Uint32Array(256);
  for (let i = 0; i < stream.length; i++) counts[stream[i]]++;
  const values: number[] = [];
  for (let v = 0; v < 256; v++) if (counts[v] > 0) values.push(v);
  return values.sort((a, b) => counts[b] - counts[a] || a - b);
}

/**
 * Codes `stream` (at least one byte) with `model`; undefined when the model needs more
 * than MAX_SLOTS slots on this stream's alphabet.
 */
export function encodeAbin(stream: Uint8Array, model: AbinModel): Uint8Array | undefined {
  const alphabet = alphabetOf(stream);
  const size = alphabet.length;
  if (size === 0 || slotsOf(model, size) > MAX_SLOTS) return undefined;
  const quant = Math.min(model.quant, size);
  const depth = depthOf(size);
  const rank = new Uint8Array(256);
  alphabet.forEach((v, i) => {
    rank[v] = i;
  });
  const n = stream.length;
  const ranks = new Uint8Array(n);
  for (let i = 0; i < n; i++) ranks[i] = rank[stream[i]];
  // Room for 4 bits of output a coded bit, grown when a stream needs more.
  let out = new Uint8Array(HEADER + size + 64 + ((n * depth) >> 1));
  out[0] = model.rate;
  out[1] = model.lags.length;
  let at = 2;
  for (const lag of model.lags) out[at++] = lag;
  out[at++] = quant - 1;
  out[at++] = size - 1;
  out.set(alphabet, at);
  at += size;
  const slots = slotsOf(model, size);
  const prob = new Uint16Array(slots).fill(HALF);
  const seen = new Uint8Array(slots);
  const rate = model.rate;
  const lag1 = model.lags[0] ?? 0;
  const lag2 = model.lags[1] ?? 0;
  const k = model.lags.length;
  const top = quant - 1;
  let x1 = 0;
  let x2 = 0xffffffff;
  for (let i = 0; i < n; i++) {
    let context = 0;
    if (k > 0) {
      context = Math.min(i >= lag1 ? ranks[i - lag1] : 0, top);
      if (k > 1) context = context * quant + Math.min(i >= lag2 ? ranks[i - lag2] : 0, top);
    }
    const base = context << depth;
    const v = ranks[i];
    let node = 1;
    for (let j = depth - 1; j >= 0; j--) {
      const bit = (v >> j) & 1;
      const slot = base + node;
      const p = prob[slot];
      const range = x2 - x1;
      const mid = x1 + (range >>> 16) * p + (((range & 0xffff) * p) >>> 16);
      if (bit === 1) x2 = mid;
      else x1 = mid + 1;
      const s = seen[slot];
      const shift = s < rate ? s + 1 : rate;
      if (s < rate) seen[slot] = s + 1;
      prob[slot] = bit === 1 ? p + ((65536 - p) >> shift) : p - (p >> shift);
      while (((x1 ^ x2) & 0xff000000) === 0) {
        if (at === out.length) {
          const grown = new Uint8Array(out.length * 2);
          grown.set(out);
          out = grown;
        }
        out[at++] = x2 >>> 24;
        x1 = (x1 << 8) >>> 0;
        x2 = ((x2 << 8) | 0xff) >>> 0;
      }
      node = 2 * node + bit;
    }
  }
  if (at + 4 > out.length) {
    const grown = new Uint8Array(at + 4);
    grown.set(out);
    out = grown;
  }
  out[at] = x1 >>> 24;
  out[at + 1] = (x1 >>> 16) & 0xff;
  out[at + 2] = (x1 >>> 8) & 0xff;
  out[at + 3] = x1 & 0xff;
  return out.subarray(0, at + 4);
}

/** Decodes an ABIN payload to exactly `length` bytes (at least one), into `into` when given. */
export function decodeAbin(payload: Uint8Array, length: number, into?: Uint8Array): Uint8Array {
  if (length < 1) throw corrupt("an empty stream");
  if (payload.length < 2) throw corrupt("payload shorter than its header");
  const rate = payload[0];
  const k = payload[1];
  if (rate < 1 || rate > MAX_RATE) throw corrupt(`rate ${rate}`);
  if (k > 2) throw corrupt(`${k} context lags`);
  if (payload.length < HEADER + k) throw corrupt("payload shorter than its header");
  const lags: number[] = [];
  for (let j = 0; j < k; j++) {
    const lag = payload[2 + j];
    if (lag < 1 || lag > MAX_LAG || (j > 0 && lag <= lags[j - 1])) throw corrupt(`context lag ${lag}`);
    lags.push(lag);
  }
  const quant = payload[2 + k] + 1;
  const size = payload[3 + k] + 1;
  let at = HEADER + k;
  if (quant > size || (k === 0 && quant !== 1))
    throw corrupt(`quantiser ${quant} with ${k} lags, ${size} values`);
  if (at + size > payload.length) throw corrupt("the alphabet runs past the payload");
  const alphabet = payload.subarray(at, at + size);
  const listed = new Uint8Array(256);
  for (let i = 0; i < size; i++) {
    if (listed[alphabet[i]] === 1) throw corrupt(`value ${alphabet[i]} listed twice`);
    listed[alphabet[i]] = 1;
  }
  at += size;
  const model: AbinModel = { rate, lags, quant };
  const slots = slotsOf(model, size);
  if (slots > MAX_SLOTS) throw corrupt(`${slots} probability slots`);
  if (at + 4 > payload.length) throw corrupt("the coded bits run past the payload");
  const depth = depthOf(size);
  const prob = new Uint16Array(slots).fill(HALF);
  const seen = new Uint8Array(slots);
  const ranks = new Uint8Array(length);
  const out = into && into.length === length ? into : new Uint8Array(length);
  const lag1 = lags[0] ?? 0;
  const lag2 = lags[1] ?? 0;
  const top = quant - 1;
  const end = payload.length;
  let x = ((payload[at] << 24) | (payload[at + 1] << 16) | (payload[at + 2] << 8) | payload[at + 3]) >>> 0;
  at += 4;
  let x1 = 0;
  let x2 = 0xffffffff;
  for (let i = 0; i < length; i++) {
    let context = 0;
    if (k > 0) {
      context = Math.min(i >= lag1 ? ranks[i - lag1] : 0, top);
      if (k > 1) context = context * quant + Math.min(i >= lag2 ? ranks[i - lag2] : 0, top);
    }
    const base = context << depth;
    let node = 1;
    for (let j = 0; j < depth; j++) {
      const slot = base + node;
      const p = prob[slot];
      const range = x2 - x1;
      const mid = x1 + (range >>> 16) * p + (((range & 0xffff) * p) >>> 16);
      const bit = x <= mid ? 1 : 0;
      if (bit === 1) x2 = mid;
      else x1 = mid + 1;
      const s = seen[slot];
      const shift = s < rate ? s + 1 : rate;
      if (s < rate) seen[slot] = s + 1;
      prob[slot] = bit === 1 ? p + ((65536 - p) >> shift) : p - (p >> shift);
      while (((x1 ^ x2) & 0xff000000) === 0) {
        if (at === end) throw corrupt("the coded bits end early");
        x1 = (x1 << 8) >>> 0;
        x2 = ((x2 << 8) | 0xff) >>> 0;
        x = ((x << 8) | payload[at++]) >>> 0;
      }
      node = 2 * node + bit;
    }
    const v = node - (1 << depth);
    if (v >= size) throw corrupt(`rank ${v} outside the alphabet's ${size} values`);
    ranks[i] = v;
    out[i] = alphabet[v];
  }
  if (at !== end) throw corrupt(`${end - at} bytes after the coded bits`);
  if (x !== x1) throw corrupt("the coded bits do not end where the coder does");
  return out;
}

/** Models tried by bestAbin: each context at rate 6, then the best one's context at 5 and 7. */
const CONTEXTS: readonly Omit<AbinModel, "rate">[] = [
  { lags: [], quant: 1 },
  { lags: [1], quant: 256 },
  { lags: [2], quant: 256 },
  { lags: [1, 2], quant: 16 },
];

/** The smallest ABIN payload for `stream` over a few models, or undefined when none fits. */
export function bestAbin(stream: Uint8Array): Uint8Array | undefined {
  let best: Uint8Array | undefined;
  let bestContext: Omit<AbinModel, "rate"> | undefined;
  for (const context of CONTEXTS) {
    const coded = encodeAbin(stream, { ...context, rate: 6 });
    if (coded !== undefined && (best === undefined || coded.length < best.length)) {
      best = coded;
      bestContext = context;
    }
  }
  if (bestContext === undefined) return undefined;
  for (const rate of [5, 7]) {
    const coded = encodeAbin(stream, { ...bestContext, rate });
    if (coded !== undefined && best !== undefined && coded.length < best.length) best = coded;
  }
  return best;
}
