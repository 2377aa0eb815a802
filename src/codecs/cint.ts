/**
 * CINT, the compact-integer codec (docs/FORMAT.md §6.6): a chunk read as a sequence of
 * compact integers as dlib's serialisation writes them (a control byte, bit 7 the sign and
 * bits 0-3 the length L <= 8, then L bytes little-endian). dlib writes a float as two of
 * them, a mantissa and an exponent; a mantissa whose low bytes are zero is written shorter,
 * so the values are not at a fixed stride and no byte grouping stays aligned with them.
 * Here each integer's control byte goes to one stream and its bytes, counted from the most
 * significant, to others; even and odd integers (a float's mantissa and its exponent) to
 * separate streams. Each of the 18 streams is coded on its own by HIER, zstd, brotli or
 * stored, after a delta to the byte two before where that lowers its order-0 entropy.
 */
import { MmhError } from "../common/errors.ts";
import { bestAbin, decodeAbin } from "./abin.ts";
import { brotliCodec } from "./brotli.ts";
import { hierCodec } from "./hier/hier.ts";
import { noneCodec } from "./none.ts";
import type { Codec } from "./types.ts";
import { zstdCodec } from "./zstd.ts";

/** Streams: 2 of control bytes (even, odd integers), then 8 byte positions for each. */
export const CINT_STREAMS = 18;
const MAX_HEAD = 15;
/** Bytes before the streams: version, head length, token count. */
const FIXED = 6;
const PART_HEADER = 9;
/** A stream part's filter: none, or each byte less the one two before it (mod 256). */
const FILTER_NONE = 0;
const FILTER_DELTA2 = 1;
const VERSION = 0;

/** The integer's byte count for a control byte: 0 for one that is not a compact integer's. */
const lengthOf = (c: number): number => ((c & 0x70) === 0 && (c & 0x0f) <= 8 ? c & 0x0f : 0);

/** lengthOf for each byte value, looked up in the loops over every integer. */
const LENGTH = Uint8Array.from({ length: 256 }, (_, c) => lengthOf(c));

/** ABIN (src/codecs/abin.ts) as a stream part's codec: CIN2's parts only. */
const abinPart: Codec = {
  id: "ABIN",
  name: "abin",
  description: "adaptive binary range coder",
  encode() {
    throw new MmhError("E_INTERNAL", "ABIN codes CIN2's streams only");
  },
  decode(payload, params, rawLength, into) {
    if (params.length !== 0) throw corrupt("an ABIN part has parameters");
    return decodeAbin(payload, rawLength, into);
  },
};

const innerCodecs: readonly Codec[] = [noneCodec, zstdCodec, hierCodec, brotliCodec];
/** CIN2's part codecs: CINT's and ABIN. */
const adaptiveCodecs: readonly Codec[] = [...innerCodecs, abinPart];

function corrupt(message: string): MmhError {
  return new MmhError("E_CORRUPT", `CINT: ${message}`);
}

/** Sum over both parities of n·H(control byte), on the tokens of `raw` from `head` within `span` bytes. */
function controlCost(raw: Uint8Array, head: number, span: number): number {
  const counts = [new Uint32Array(256), new Uint32Array(256)];
  const end = Math.min(raw.length, head + span);
  let pos = head;
  let t = 0;
  while (pos < end) {
    const c = raw[pos];
    counts[t & 1][c]++;
    pos += 1 + lengthOf(c);
    t++;
  }
  let bits = 0;
  for (const h of counts) {
    let n = 0;
    for (let v = 0; v < 256; v++) n += h[v];
    for (let v = 0; v < 256; v++) if (h[v] > 0) bits -= h[v] * Math.log2(h[v] / n);
  }
  return bits;
}

const PROBE = 8 << 10;

/**
 * Whether a chunk reads as compact integers: on PROBE bytes from its middle, at least 90%
 * of the integers have a valid control byte and a length of 1 or more, and they average
 * at least 2 bytes each (a run of zero bytes would read as empty integers).
 */
export function looksCompact(raw: Uint8Array): boolean {
  if (raw.length < 4 * PROBE) return false;
  let pos = (raw.length - PROBE) >> 1;
  const end = pos + PROBE;
  let tokens = 0;
  let valid = 0;
  const start = pos;
  while (pos < end) {
    const c = raw[pos];
    const length = lengthOf(c);
    if (length > 0) valid++;
    tokens++;
    pos += 1 + length;
  }
  return valid >= tokens * 0.9 && pos - start >= 2 * tokens;
}

/** Integers at the start of the probe left out by lengthsVary, while the parse finds the integers' starts. */
const SETTLE = 16;

/**
 * Whether the integers of a chunk that reads as compact (looksCompact) vary in length:
 * on the same PROBE bytes, after the first SETTLE integers, the even or the odd ones
 * have more than one length. Where they do not, the chunk is records of a fixed width,
 * which a byte grouping of that width splits as well.
 */
export function lengthsVary(raw: Uint8Array): boolean {
  if (raw.length < 4 * PROBE) return false;
  let pos = (raw.length - PROBE) >> 1;
  const end = pos + PROBE;
  const seen = [-1, -1];
  for (let t = 0; pos < end; t++) {
    const length = LENGTH[raw[pos]];
    pos += 1 + length;
    if (t < SETTLE) continue;
    const parity = t & 1;
    if (seen[parity] === -1) seen[parity] = length;
    else if (seen[parity] !== length) return true;
  }
  return false;
}

export interface Split {
  head: number;
  tokens: number;
  /** Bytes the tokens cover, after the head. */
  covered: number;
  streams: Uint8Array[];
}

/**
 * Moves `tokens` integers of `raw` from `head` into their streams in `all`, at the cursors
 * `at` (18 of them: split), which it advances: an even integer's at cursors 0 and 2-9, an
 * odd one's at 1 and 10-17.
 */
function scatter(raw: Uint8Array, head: number, tokens: number, all: Uint8Array, at: Int32Array): void {
  let pos = head;
  let even = at[0];
  let odd = at[1];
  for (let t = 0; t < tokens; t++) {
    const c = raw[pos];
    const length = LENGTH[c];
    const last = pos + length;
    let base: number;
    if ((t & 1) === 0) {
      all[even++] = c;
      base = 2;
    } else {
      all[odd++] = c;
      base = 10;
    }
    // Byte j counted from the most significant: the integer's byte length - 1 - j.
    for (let j = 0; j < length; j++) all[at[base + j]++] = raw[last - j];
    pos = last + 1;
  }
  at[0] = even;
  at[1] = odd;
}

/** The head, the integers' count and bytes, and the 18 streams of `raw` (§6.6). */
export function split(raw: Uint8Array): Split {
  let head = 0;
  let bestCost = Number.POSITIVE_INFINITY;
  for (let h = 0; h <= Math.min(11, raw.length); h++) {
    const cost = controlCost(raw, h, PROBE);
    if (cost < bestCost) {
      bestCost = cost;
      head = h;
    }
  }
  // First pass: the token count, and how many integers of each parity have each length.
  const byLength = new Int32Array(18);
  const n = raw.length;
  let pos = head;
  let tokens = 0;
  while (pos < n) {
    const length = LENGTH[raw[pos]];
    if (pos + length >= n) break;
    byLength[(tokens & 1) * 9 + length]++;
    pos += 1 + length;
    tokens++;
  }
  const covered = pos - head;
  const lengths = new Int32Array(CINT_STREAMS);
  for (let parity = 0; parity < 2; parity++)
    for (let length = 0; length <= 8; length++) {
      const count = byLength[parity * 9 + length];
      lengths[parity] += count;
      for (let j = 0; j < length; j++) lengths[2 + parity * 8 + j] += count;
    }
  // The streams are consecutive pieces of one buffer, each filled through a cursor: the
  // control bytes of each parity at cursors 0 and 1, byte j (counted from the most
  // significant) of the integers of each parity at 2 + 8·parity + j.
  const all = new Uint8Array(covered);
  const at = new Int32Array(CINT_STREAMS);
  for (let k = 1; k < CINT_STREAMS; k++) at[k] = at[k - 1] + lengths[k - 1];
  const streams = Array.from(lengths, (count, k) => all.subarray(at[k], at[k] + count));
  scatter(raw, head, tokens, all, at);
  return { head, tokens, covered, streams };
}

/** Order-0 entropy, in bits, of `length` bytes whose value counts are `counts`. */
function entropyBits(counts: Uint32Array, length: number): number {
  let bits = 0;
  for (let v = 0; v < 256; v++) if (counts[v] > 0) bits -= counts[v] * Math.log2(counts[v] / length);
  return bits;
}

/**
 * Whether the delta to the byte two before (delta2) lowers the order-0 entropy of
 * `sample` under DELTA_GAIN of its own: both counted in one pass, without the delta's bytes.
 */
function deltaPays(sample: Uint8Array): boolean {
  const plain = new Uint32Array(256);
  const delta = new Uint32Array(256);
  const n = sample.length;
  for (let i = 0; i < n && i < 2; i++) {
    plain[sample[i]]++;
    delta[sample[i]]++;
  }
  for (let i = 2; i < n; i++) {
    const b = sample[i];
    plain[b]++;
    delta[(b - sample[i - 2]) & 0xff]++;
  }
  return entropyBits(delta, n) < entropyBits(plain, n) * DELTA_GAIN;
}

/** Each byte less the one two before it, mod 256 (the first two kept). */
function delta2(stream: Uint8Array): Uint8Array {
  const out = new Uint8Array(stream.length);
  for (let i = 0; i < stream.length; i++) out[i] = i < 2 ? stream[i] : (stream[i] - stream[i - 2]) & 0xff;
  return out;
}

function undelta2(stream: Uint8Array): void {
  for (let i = 2; i < stream.length; i++) stream[i] = (stream[i] + stream[i - 2]) & 0xff;
}

export interface Part {
  filter: number;
  id: string;
  payload: Uint8Array;
}

/** The delta filter is taken when it brings the order-0 entropy under this share. */
const DELTA_GAIN = 0.98;
/** From this level up (the ratio goal) each stream is also tried with brotli 11. */
const BROTLI_FROM = 10;

/**
 * A stream's filter and codec: the delta to the byte two before when it lowers the order-0
 * entropy of the stream's first FILTER_SAMPLE bytes by 2% (in dlib's leaf vectors a float's exponent and sign are nearer those of
 * the same coordinate of the point before), then the smallest of HIER, zstd and stored.
 */
function codeStream(stream: Uint8Array, level: number, adaptive: boolean): Part {
  const sample = stream.subarray(0, FILTER_SAMPLE);
  const delta = stream.length > 2 && deltaPays(sample);
  const part: Part = delta
    ? { filter: FILTER_DELTA2, ...codeBytes(delta2(stream), level) }
    : { filter: FILTER_NONE, ...codeBytes(stream, level) };
  return adaptive ? adaptivePart(stream, part) : part;
}

/** ABIN is tried on a stream whose best part is under this share of its length. */
const ABIN_UNDER = 0.85;

/**
 * `part`, or ABIN's payload (with either filter) for `stream` where that is smaller: on
 * streams the other codecs bring under ABIN_UNDER of their length, where a byte costs
 * under a bit of Huffman's or depends on the bytes before (docs/ENGINE.md).
 */
function adaptivePart(stream: Uint8Array, part: Part): Part {
  if (stream.length === 0 || part.payload.length >= stream.length * ABIN_UNDER) return part;
  let best = part;
  for (const filter of [FILTER_NONE, FILTER_DELTA2]) {
    if (filter === FILTER_DELTA2 && stream.length <= 2) continue;
    const payload = bestAbin(filter === FILTER_DELTA2 ? delta2(stream) : stream);
    if (payload !== undefined && payload.length < best.payload.length)
      best = { filter, id: abinPart.id, payload };
  }
  return best;
}

/** The filter is chosen on a stream's first bytes, at most this many. */
const FILTER_SAMPLE = 64 << 10;

/** The smallest of HIER, zstd, stored and (at the ratio goal's levels) brotli 11 for one stream. */
function codeBytes(stream: Uint8Array, level: number): { id: string; payload: Uint8Array } {
  let best: { id: string; payload: Uint8Array } = { id: noneCodec.id, payload: stream };
  if (stream.length === 0) return best;
  const hier = hierCodec.encode(stream, { level, dtype: null });
  if (hier.payload.length < best.payload.length) best = { id: hierCodec.id, payload: hier.payload.slice() };
  const zstd = zstdCodec.encode(stream, { level });
  if (zstd.payload.length < best.payload.length) best = { id: zstdCodec.id, payload: zstd.payload.slice() };
  if (level >= BROTLI_FROM) {
    const brotli = brotliCodec.encode(stream, { level: 11 });
    if (brotli.payload.length < best.payload.length)
      best = { id: brotliCodec.id, payload: brotli.payload.slice() };
  }
  return best;
}

function encode(raw: Uint8Array, level: number, adaptive: boolean): Uint8Array {
  const streams = split(raw);
  return assemble(
    raw,
    streams,
    streams.streams.map((s) => codeStream(s, level, adaptive)),
  );
}

/** The payload of `raw` split as `streams`, with a part for each stream (§6.6). */
export function assemble(raw: Uint8Array, streams: Split, parts: readonly Part[]): Uint8Array {
  const { head, tokens, covered } = streams;
  const tail = raw.length - head - covered;
  let size = FIXED + head + tail;
  for (const p of parts) size += PART_HEADER + p.payload.length;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out[0] = VERSION;
  out[1] = head;
  view.setUint32(2, tokens, true);
  out.set(raw.subarray(0, head), FIXED);
  let at = FIXED + head;
  for (const p of parts) {
    for (let k = 0; k < 4; k++) out[at + k] = p.id.charCodeAt(k);
    out[at + 4] = p.filter;
    view.setUint32(at + 5, p.payload.length, true);
    out.set(p.payload, at + PART_HEADER);
    at += PART_HEADER + p.payload.length;
  }
  out.set(raw.subarray(head + covered), at);
  return out;
}

function decode(
  payload: Uint8Array,
  params: Uint8Array,
  rawLength: number,
  into: Uint8Array | undefined,
  partCodecs: readonly Codec[],
): Uint8Array {
  if (params.length !== 0) throw corrupt("chunk has parameters");
  if (payload.length < FIXED) throw corrupt("payload shorter than its fixed fields");
  if (payload[0] !== VERSION) throw corrupt(`version ${payload[0]}`);
  const head = payload[1];
  const view = new DataView(payload.buffer, payload.byteOffset, payload.length);
  const tokens = view.getUint32(2, true);
  if (head > MAX_HEAD || head > rawLength) throw corrupt(`head of ${head} bytes`);
  if (tokens > rawLength - head) throw corrupt(`${tokens} integers in ${rawLength - head} bytes`);
  if (FIXED + head > payload.length) throw corrupt("head runs past the payload");
  let at = FIXED + head;
  /** The next stream part, decoded into `all` from `offset`: `length` bytes. */
  const part = (all: Uint8Array, offset: number, length: number): void => {
    if (at + PART_HEADER > payload.length) throw corrupt("a stream's header runs past the payload");
    const id = String.fromCharCode(payload[at], payload[at + 1], payload[at + 2], payload[at + 3]);
    const filter = payload[at + 4];
    const size = view.getUint32(at + 5, true);
    at += PART_HEADER;
    if (filter !== FILTER_NONE && filter !== FILTER_DELTA2) throw corrupt(`stream filter ${filter}`);
    if (size > payload.length - at) throw corrupt("a stream runs past the payload");
    const codec = partCodecs.find((c) => c.id === id);
    if (codec === undefined) throw corrupt(`stream codec ${JSON.stringify(id)}`);
    const bytes = payload.subarray(at, at + size);
    at += size;
    if (length === 0 && (size !== 0 || codec !== noneCodec || filter !== FILTER_NONE))
      throw corrupt("an empty stream that is not stored empty");
    const out = codec.decode(bytes, new Uint8Array(0), length);
    if (out.length !== length) throw corrupt("a stream decodes to the wrong length");
    // Copied at once: HIER may decode into memory it reuses, NONE returns the payload.
    all.set(out, offset);
    if (filter === FILTER_DELTA2) undelta2(all.subarray(offset, offset + length));
  };
  const controls = new Uint8Array(tokens);
  const evens = Math.ceil(tokens / 2);
  part(controls, 0, evens);
  part(controls, evens, tokens - evens);
  const lengths = new Int32Array(16);
  const counts = new Int32Array(18);
  for (let i = 0; i < tokens; i++) counts[(i < evens ? 0 : 9) + LENGTH[controls[i]]]++;
  let covered = tokens;
  for (let parity = 0; parity < 2; parity++)
    for (let length = 1; length <= 8; length++) {
      const count = counts[parity * 9 + length];
      covered += count * length;
      for (let j = 0; j < length; j++) lengths[parity * 8 + j] += count;
    }
  if (covered > rawLength - head) throw corrupt("the integers run past the chunk");
  // The byte streams, consecutive in one buffer; cursor k at stream k's next byte.
  const all = new Uint8Array(covered - tokens);
  const cursor = new Int32Array(16);
  for (let k = 0; k < 16; k++) {
    if (k > 0) cursor[k] = cursor[k - 1] + lengths[k - 1];
    part(all, cursor[k], lengths[k]);
  }
  const tail = payload.length - at;
  if (head + covered + tail !== rawLength) throw corrupt("payload does not add up to the chunk");
  const out = into && into.length === rawLength ? into : new Uint8Array(rawLength);
  out.set(payload.subarray(FIXED, FIXED + head), 0);
  const pos = gather(controls, evens, all, cursor, out, head);
  out.set(payload.subarray(at), pos);
  return out;
}

/**
 * Puts the integers back into `out` from `start`: control bytes alternately from the even
 * integers' (`controls` before `evens`) and the odd ones', each followed by its bytes,
 * least significant first, from the streams in `all` at `cursor` (8 for each parity,
 * byte j counted from the most significant), which it advances. Returns the end.
 */
function gather(
  controls: Uint8Array,
  evens: number,
  all: Uint8Array,
  cursor: Int32Array,
  out: Uint8Array,
  start: number,
): number {
  const tokens = controls.length;
  // The 16 cursors in locals: byte j of an integer of length L goes to out[pos + L - j].
  let e0 = cursor[0],
    e1 = cursor[1],
    e2 = cursor[2],
    e3 = cursor[3];
  let e4 = cursor[4],
    e5 = cursor[5],
    e6 = cursor[6],
    e7 = cursor[7];
  let o0 = cursor[8],
    o1 = cursor[9],
    o2 = cursor[10],
    o3 = cursor[11];
  let o4 = cursor[12],
    o5 = cursor[13],
    o6 = cursor[14],
    o7 = cursor[15];
  let pos = start;
  // An even integer then an odd one each time round.
  const pairs = tokens >> 1;
  for (let i = 0; i < pairs; i++) {
    let c = controls[i];
    out[pos] = c;
    let length = LENGTH[c];
    let q = pos + length;
    if (length !== 0) {
      out[q] = all[e0++];
      if (length > 1) {
        out[q - 1] = all[e1++];
        if (length > 2) {
          out[q - 2] = all[e2++];
          if (length > 3) {
            out[q - 3] = all[e3++];
            if (length > 4) {
              out[q - 4] = all[e4++];
              if (length > 5) {
                out[q - 5] = all[e5++];
                if (length > 6) {
                  out[q - 6] = all[e6++];
                  if (length > 7) {
                    out[q - 7] = all[e7++];
                  }
                }
              }
            }
          }
        }
      }
    }
    c = controls[evens + i];
    out[q + 1] = c;
    length = LENGTH[c];
    q += 1 + length;
    if (length !== 0) {
      out[q] = all[o0++];
      if (length > 1) {
        out[q - 1] = all[o1++];
        if (length > 2) {
          out[q - 2] = all[o2++];
          if (length > 3) {
            out[q - 3] = all[o3++];
            if (length > 4) {
              out[q - 4] = all[o4++];
              if (length > 5) {
                out[q - 5] = all[o5++];
                if (length > 6) {
                  out[q - 6] = all[o6++];
                  if (length > 7) {
                    out[q - 7] = all[o7++];
                  }
                }
              }
            }
          }
        }
      }
    }
    pos = q + 1;
  }
  cursor.set([e0, e1, e2, e3, e4, e5, e6, e7, o0, o1, o2, o3, o4, o5, o6, o7]);
  if ((tokens & 1) === 1) {
    // The last integer, an even one.
    const c = controls[pairs];
    out[pos] = c;
    const length = LENGTH[c];
    for (let j = 0; j < length; j++) out[pos + length - j] = all[cursor[j]++];
    pos += 1 + length;
  }
  return pos;
}

export const cintCodec: Codec = {
  id: "CINT",
  name: "cint",
  description: "compact integers (dlib's serialisation) split into streams, each coded on its own",
  levels: { min: 1, max: 22, default: 19, excluded: [] },
  decodesToOwn: true,
  encode(raw, options) {
    return { payload: encode(raw, options.level ?? 19, false), owned: true };
  },
  decode(payload, params, rawLength, into) {
    return decode(payload, params, rawLength, into, innerCodecs);
  },
};

/**
 * CIN2 (FORMAT.md §6.6): CINT's payload whose stream parts may also be ABIN, the adaptive
 * binary range coder (§6.7), where that is smaller. A reader that predates it refuses the
 * record (an unknown FourCC) with E_UNSUPPORTED. auto takes it at the ratio goal.
 */
export const cint2Codec: Codec = {
  id: "CIN2",
  name: "cint2",
  description: "CINT whose streams may also be coded by an adaptive binary range coder",
  levels: cintCodec.levels,
  decodesToOwn: true,
  encode(raw, options) {
    return { payload: encode(raw, options.level ?? 19, true), owned: true };
  },
  decode(payload, params, rawLength, into) {
    return decode(payload, params, rawLength, into, adaptiveCodecs);
  },
};

/** Where each stream part of a CINT or CIN2 payload lies: its codec, filter, and payload offset and size. */
export function cintParts(
  payload: Uint8Array,
): { id: string; filter: number; offset: number; size: number }[] {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.length);
  const parts: { id: string; filter: number; offset: number; size: number }[] = [];
  let at = FIXED + payload[1];
  for (let k = 0; k < CINT_STREAMS && at + PART_HEADER <= payload.length; k++) {
    const size = view.getUint32(at + 5, true);
    parts.push({
      id: String.fromCharCode(payload[at], payload[at + 1], payload[at + 2], payload[at + 3]),
      filter: payload[at + 4],
      offset: at + PART_HEADER,
      size,
    });
    at += PART_HEADER + size;
  }
  return parts;
}
