/**
 * Format recognition for a stream of known length. Files are recognised by reading them
 * where the recogniser asks; a stream cannot be read again, but the formats whose header
 * comes first and says where every tensor lies (safetensors, npy, GGUF) can be
 * recognised from the stream's first bytes, held back until the plan is made. So a model
 * sent to `POST /v1/compress` or piped to `mmh -c` gets the tensor table and the
 * tensor-aligned chunks a file would, when its length is known beforehand
 * (Content-Length, a regular file on standard input, or compressStream's `size`).
 *
 * The recogniser reads through a source that holds only the first bytes: a read past
 * them fails, and the first bytes grow (x4, up to MAX_PREFIX) until the recogniser
 * succeeds, fails for another reason (the stream is compressed as raw bytes, as a file
 * the recogniser refuses would be), or the limit is reached. Formats whose tensors are
 * found at the end (zip-based npz and PyTorch) or all over the file (ONNX, TFLite, HDF5)
 * stay raw, as streams always were.
 */
import { MmhError } from "../common/errors.ts";
import type { RandomAccessSource } from "../common/source.ts";
import { describeSource } from "./describe.ts";
import type { SourceLayout } from "./encoder.ts";

/** The most bytes held back for recognition. */
export const MAX_PREFIX = 16 << 20;
const FIRST_PREFIX = 64 << 10;

/** A read past the bytes held back: recognition needs more of the stream. */
class BeyondPrefix extends MmhError {
  constructor() {
    // E_IO: describeSource passes I/O errors on rather than recording them as the file's problem.
    super("E_IO", "read past the bytes held back for recognition");
  }
}

function prefixSource(prefix: Buffer, size: number): RandomAccessSource {
  return {
    size,
    async read(offset, length) {
      if (offset + length > prefix.length) throw new BeyondPrefix();
      return prefix.subarray(offset, offset + length);
    },
    async close() {},
  };
}

/**
 * The layout of a stream of `size` bytes and the stream itself again (the bytes held back
 * first, then the rest). When the stream does not hold exactly `size` bytes, the returned
 * stream fails with E_BAD_OPTION at its end, and no layout drawn from a wrong size is
 * ever completed into a file.
 */
export async function describeStream(
  source: AsyncIterable<Uint8Array>,
  size: number,
  chunkSize: number,
  recognise = true,
): Promise<{ layout: SourceLayout | undefined; source: AsyncIterable<Uint8Array> }> {
  const iterator = source[Symbol.asyncIterator]();
  const held: Uint8Array[] = [];
  let heldBytes = 0;
  let ended = false;
  const holdUntil = async (want: number) => {
    while (!ended && heldBytes < want) {
      const next = await iterator.next();
      if (next.done) ended = true;
      else {
        held.push(next.value);
        heldBytes += next.value.length;
      }
    }
  };
  let layout: SourceLayout | undefined;
  for (let want = FIRST_PREFIX; recognise; want *= 4) {
    await holdUntil(Math.min(want, size, MAX_PREFIX));
    try {
      const found = await describeSource(prefixSource(Buffer.concat(held), size), chunkSize, true, false);
      // A format that does not parse is compressed as raw bytes, as a stream always was.
      if (found.format !== "raw" && found.problem === undefined) layout = found;
      break;
    } catch (error) {
      if (!(error instanceof BeyondPrefix) || ended || heldBytes >= size || want >= MAX_PREFIX) break;
    }
  }
  async function* replay(): AsyncGenerator<Uint8Array> {
    let total = 0;
    try {
      for (const piece of held.splice(0)) {
        total += piece.length;
        if (total > size) break;
        yield piece;
      }
      while (!ended && total <= size) {
        const next = await iterator.next();
        if (next.done) break;
        total += next.value.length;
        if (total > size) break;
        yield next.value;
      }
    } finally {
      // Stopped early (the coder failed, or the stream is longer than it said): let the source go.
      if (!ended) await iterator.return?.();
    }
    if (total !== size)
      throw new MmhError(
        "E_BAD_OPTION",
        `the stream held ${total > size ? "more than" : total} bytes, not the ${size} its size said`,
      );
  }
  return { layout, source: replay() };
}
