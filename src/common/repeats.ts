/**
 * How often a chunk's values repeat, measured cheaply over the whole chunk: the 4-byte
 * word at every 16th byte is looked up in a table of the words sampled before it. Data
 * with few distinct values, runs of one value, and repeated rows or tensors score high;
 * float weights with a near-random mantissa score low. The two small samples `auto`
 * ranks codecs on cannot show repeats that lie far apart in the chunk, and field coders
 * (HIER) are blind to them, so a high score has `auto` code the LZ candidates in full
 * as well (src/engine/auto.ts).
 */

const HASH_BITS = 16;
/**
 * The last word sampled into each hash slot, or EMPTY where none was this call. A slot
 * holding EMPTY was written with it only where `emptyWritten` says so: data seldom holds
 * that word, so the usual lookup is one read of one table (a second table of "slot used"
 * flags doubled the cache misses, which were most of the cost).
 */
const EMPTY = 0x5bd1e995 | 0;
const table = new Int32Array(1 << HASH_BITS).fill(EMPTY);
const emptyWritten = new Uint8Array(1 << HASH_BITS);
let emptyWrites = 0;
/**
 * The slots the last call set, when they were few: only those are cleared for the next
 * call (clearing all 256 KiB cost more than counting on the small chunks of model files).
 */
const touched = new Uint16Array(1 << 12);
let touchedCount = 0;
const STRIDE_WORDS = 4;

/** The share, 0 to 1, of the sampled words equal to one sampled earlier (as last seen in its hash slot). */
export function repeatShare(raw: Uint8Array): number {
  const words = raw.length >>> 2;
  const samples = Math.floor((words - 1) / STRIDE_WORDS);
  if (samples < 64) return 0;
  if (touchedCount <= touched.length) for (let k = 0; k < touchedCount; k++) table[touched[k]] = EMPTY;
  else table.fill(EMPTY);
  if (emptyWrites > 0) emptyWritten.fill(0);
  emptyWrites = 0;
  touchedCount = samples;
  const few = samples <= touched.length;
  let hits = 0;
  const shift = 32 - HASH_BITS;
  let k = 0;
  if ((raw.byteOffset & 3) === 0) {
    const w = new Int32Array(raw.buffer, raw.byteOffset, words);
    for (let i = STRIDE_WORDS; i < words; i += STRIDE_WORDS) {
      const a = w[i];
      const h = Math.imul(a, 0x9e3779b1) >>> shift;
      if (table[h] === a && (a !== EMPTY || emptyWritten[h] !== 0)) hits++;
      table[h] = a;
      if (a === EMPTY) {
        emptyWritten[h] = 1;
        emptyWrites++;
      }
      if (few) touched[k++] = h;
    }
  } else {
    // Not 4-aligned in its buffer: the same words, read byte by byte (a copy cost more).
    for (let i = STRIDE_WORDS; i < words; i += STRIDE_WORDS) {
      const at = 4 * i;
      const a = raw[at] | (raw[at + 1] << 8) | (raw[at + 2] << 16) | (raw[at + 3] << 24);
      const h = Math.imul(a, 0x9e3779b1) >>> shift;
      if (table[h] === a && (a !== EMPTY || emptyWritten[h] !== 0)) hits++;
      table[h] = a;
      if (a === EMPTY) {
        emptyWritten[h] = 1;
        emptyWrites++;
      }
      if (few) touched[k++] = h;
    }
  }
  return hits / samples;
}
