import type { DTypeName } from "../common/dtype.ts";

/**
 * A codec turns the raw bytes of one chunk into a payload and back. It is identified by a
 * permanent FourCC: a codec whose output format changes gets a new id, and old ids keep
 * decoding forever.
 */
export interface LevelRange {
  readonly min: number;
  readonly max: number;
  readonly default: number;
  /** Levels inside [min, max] that are not valid (zstd has no level 0). */
  readonly excluded?: readonly number[];
}

export interface CodecOptions {
  /** Codec-specific level; undefined means the codec's default. */
  readonly level?: number;
  /** The element type of the chunk, when the source format says it (tensor codecs use it). */
  readonly dtype?: DTypeName | null;
  /**
   * Memory for the payload, from the caller: a codec that knows its payload's size before
   * writing it may ask for `size` bytes here (the result may also be fresh memory).
   */
  readonly output?: (size: number) => Uint8Array;
  /**
   * HIER only: split with this layout id (FORMAT.md §6.2) instead of the dtype's or the
   * detected one, and code every stream with zstd too (kept when smaller), with no probe
   * first. Layouts 4 and 5 (byte planes) make this byte grouping + zstd, the floor `auto`
   * compares against (src/engine/auto.ts). Layout 19 (records of W bytes) is given as
   * 19 + 256·W (planesKey in src/codecs/hier/layouts.ts).
   */
  readonly layout?: number;
  /**
   * HIER only, with neither layout nor dtype: what detectLayout found on this very chunk,
   * when the caller has run it already (auto does, on chunks of one stream), so that it is
   * not run twice. The chunk is coded exactly as if it had been detected here.
   */
  readonly detected?: { readonly layout: number; readonly head: number };
}

export interface EncodedPayload {
  readonly payload: Uint8Array;
  /**
   * True when the payload's whole ArrayBuffer belongs to this result alone (fresh memory,
   * perhaps larger than the payload): a caller done with it may give it back at once.
   */
  readonly owned?: boolean;
  /** Parameters the decoder needs, stored in the chunk record (at most 65535 bytes). */
  readonly params?: Uint8Array;
}

export interface Codec {
  /** Four ASCII characters, stored in every chunk record. */
  readonly id: string;
  /** The name used on the command line and in reports. */
  readonly name: string;
  readonly description: string;
  /** Levels the codec accepts; undefined when it has none. */
  readonly levels?: LevelRange;
  encode(raw: Uint8Array, options: CodecOptions): EncodedPayload;
  /**
   * True when decode's result, unless it is `into`, lies in memory of its own (perhaps a
   * view into a larger buffer nothing else uses), never in the payload's.
   */
  readonly decodesToOwn?: boolean;
  /**
   * Decode a payload to exactly rawLength bytes. Must throw an MmhError (E_CORRUPT) on
   * any malformed payload, must never allocate much more than rawLength, and must never
   * return a different length. A codec may write the result into `into` (rawLength bytes
   * the caller owns) and return it, or ignore it and return memory of its own.
   */
  decode(payload: Uint8Array, params: Uint8Array, rawLength: number, into?: Uint8Array): Uint8Array;
  /**
   * As decode, into memory the codec reuses (HIER: its WebAssembly kernels' memory): the
   * result stays valid only until the next call into the codec on this thread, and is
   * never the caller's to keep or give back. Undefined when the codec cannot decode this
   * payload so (decode then runs). For a caller that is the only coder on its thread and
   * is done with each chunk before it decodes the next (mmh -d writing its output).
   */
  decodeLent?(payload: Uint8Array, params: Uint8Array, rawLength: number): Uint8Array | undefined;
}
