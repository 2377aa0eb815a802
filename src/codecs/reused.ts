/**
 * A node:zlib decompressor kept from call to call that decodes each call's input straight
 * into memory the caller gives (zstd.ts for HIER's zstd-coded streams and ZSTD records,
 * brotli.ts for BROT records): no decoder, context or output piece of node:zlib's own to
 * make, copy and collect per call. It goes through two parts of node:zlib's streams that
 * are not their documented API (`_handle.writeSync` and `_writeState`), so a decoder is
 * kept only once it has decoded a known input to the byte, and a caller decodes whatever
 * it refuses again with node:zlib's one-shot call (decodeInto), whose bytes or error are
 * the answer.
 */
import { MmhError } from "../common/errors.ts";

/**
 * The parts of a node:zlib stream (a decompressor here, a compressor in
 * hier/zstdframe.ts) that the kept coders use: not node:zlib's documented API, so each
 * user checks them with a probe before it keeps a stream.
 */
export interface ZlibParts {
  _handle?: {
    writeSync(
      flush: number,
      input: Uint8Array,
      inOffset: number,
      inLength: number,
      out: Uint8Array,
      outOffset: number,
      outLength: number,
    ): void;
    reset?(): void;
  };
  /** After each writeSync: the output room and the input bytes left. */
  _writeState?: Uint32Array;
  readonly destroyed: boolean;
  destroy(): void;
  on(event: "error", listener: () => void): unknown;
}

/** A known content and its encoding, which a decoder must decode to the byte to be kept. */
export interface Probe {
  content: Uint8Array;
  encoded: Uint8Array;
}

/** The probe's content: a short pattern every codec here compresses. */
export function probeContent(): Uint8Array {
  const content = new Uint8Array(300);
  for (let i = 0; i < content.length; i++) content[i] = (i * 7) & 15;
  return content;
}

/** The spare output byte: where input beyond a full output shows itself. */
const oneByte = new Uint8Array(1);

export class ReusedDecoder {
  private readonly parts: ZlibParts;
  private readonly flush: number;
  private readonly resets: boolean;

  private constructor(parts: ZlibParts, flush: number, resets: boolean) {
    this.parts = parts;
    this.flush = flush;
    this.resets = resets;
  }

  /**
   * `stream` (a node:zlib decompressor just made) as a reused decoder, or null where it
   * has not the parts used here or fails to decode `probe` exactly, twice. `flush` is the
   * codec's finishing directive; `resets`: the decoder is reset after each input (a
   * brotli decoder that finished a stream takes no more; a zstd one starts the next frame
   * as it is, and its reset would drop the window limit it was made with).
   */
  static from(stream: object, flush: number, resets: boolean, probe: Probe): ReusedDecoder | null {
    const parts = stream as ZlibParts;
    // A failed decode destroys the stream and then emits its error: seen through `destroyed`.
    parts.on("error", () => {});
    const usable =
      typeof parts._handle?.writeSync === "function" &&
      (!resets || typeof parts._handle.reset === "function") &&
      parts._writeState instanceof Uint32Array &&
      parts._writeState.length >= 2;
    let decoder: ReusedDecoder | null = usable ? new ReusedDecoder(parts, flush, resets) : null;
    try {
      for (let i = 0; i < 2 && decoder; i++) {
        const out = new Uint8Array(probe.content.length);
        decoder.decode(probe.encoded, out);
        if (!Buffer.from(out).equals(probe.content)) decoder = null;
      }
    } catch {
      decoder = null;
    }
    if (!decoder && !parts.destroyed) parts.destroy();
    return decoder;
  }

  /** Decode `input`, one whole stream, into `out`; E_CORRUPT unless it fills `out` exactly. */
  decode(input: Uint8Array, out: Uint8Array): void {
    const parts = this.parts;
    const handle = parts._handle!;
    const state = parts._writeState!;
    handle.writeSync(this.flush, input, 0, input.length, out, 0, out.length);
    let written = out.length - state[0];
    if (!parts.destroyed && written === out.length) {
      // `out` is full: whatever the input holds beyond it goes into one spare byte.
      const rest = state[1];
      handle.writeSync(this.flush, input, input.length - rest, rest, oneByte, 0, 1);
      written += 1 - state[0];
    }
    if (parts.destroyed) throw new MmhError("E_CORRUPT", "payload does not decode");
    // Input left, or a content of another length: the decoder may have stopped inside
    // the stream, so the caller does not use it again.
    if (state[1] !== 0 || written !== out.length)
      throw new MmhError("E_CORRUPT", "payload does not fill its record exactly");
    if (this.resets) handle.reset!();
  }

  destroy(): void {
    if (!this.parts.destroyed) this.parts.destroy();
  }
}

/**
 * `input` decoded into `out` by `decoder` when there is one and it accepts the input, else
 * by `oneShot` (node:zlib's one-shot decode, checked), whose bytes are copied into `out`
 * or whose error is thrown. A decoder that refused is destroyed and `drop` is called (the
 * caller forgets it). Returns true when the decoder refused what `oneShot` accepted: the
 * internals then behaved otherwise than expected, and the caller stops reusing decoders.
 */
export function decodeInto(
  decoder: ReusedDecoder | undefined,
  input: Uint8Array,
  out: Uint8Array,
  oneShot: () => Uint8Array,
  drop: () => void,
): boolean {
  if (decoder) {
    try {
      decoder.decode(input, out);
      return false;
    } catch (error) {
      decoder.destroy();
      drop();
      if (!(error instanceof MmhError)) throw error;
    }
  }
  out.set(oneShot());
  return decoder !== undefined;
}
