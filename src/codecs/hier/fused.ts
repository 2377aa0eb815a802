/**
 * HIER's fast paths through the WebAssembly kernels (kernels.ts): a chunk's elements
 * are split into streams in the kernels' memory (and the exponents counted in the same
 * pass), where histogram() and huffmanEncode() then code them without a copy; decoding
 * decodes every stream there and merges them with a SIMD kernel into the output words.
 * (Kernels that decode the exponents straight into BF16 or F32 words, decodeLanesBf16
 * and decodeLanesF32, measured slower than decoding and then merging with SIMD:
 * bench/results/kernels.md.) Each returns undefined/false where the kernels are not
 * available, the chunk is too small to gain, or a stream is coded in a way they do not
 * handle, and HIER runs its TypeScript path, which gives the same bytes.
 */
import { copyBytes } from "../../common/bytes.ts";
import { MmhError } from "../../common/errors.ts";
import { zstdDecodeInto } from "../zstd.ts";
import {
  BLOCK_HUFFMAN,
  BLOCK_SINGLE,
  BLOCK_STORED,
  checkHuffmanBlock,
  checkLanesEnded,
  huffmanDecode,
  kernelTableBits,
  oneSymbolLookups,
  oneSymbolTable,
  twoSymbolLookups,
} from "./huffman.ts";
import { BLOCK_CONTEXT, huffmanDecodeContext } from "./huffman-context.ts";
import { ARENA_LIMIT, type Kernels, kernels, loadedKernels } from "./kernels.ts";
import { type Layout, streamLength } from "./layouts.ts";

/** Below this many bytes a chunk stays in TypeScript: copying it in costs more than the kernels save. */
export const KERNEL_MIN_BYTES = 4096;

/**
 * Below this many bytes a chunk decodes in TypeScript; from here to KERNEL_MIN_BYTES, in
 * the kernels once a larger chunk has loaded them. Their decode wins at every size
 * measured (docs/ENGINE.md, HIER's WebAssembly kernels: Decoding), and a short mmh -d
 * then seldom compiles the TypeScript decoder for a file's small tensors.
 */
export const KERNEL_DECODE_MIN_BYTES = 64;

const METHOD_CONSTANT = 0;
const METHOD_STORED = 1;
const METHOD_HUFFMAN = 2;
const METHOD_ZSTD = 3;
const METHOD_CONTEXT = 4;

export interface Split {
  streams: Uint8Array[];
  /** Counts of stream 0 (the exponents), for the layouts whose TypeScript split counts them. */
  counts?: Uint32Array;
}

/** The byte offset of each field in a block layout's element (fields tile it in order). */
function fieldTable(k: Kernels, layout: Layout): number {
  const per = layout.perElement ?? [];
  const table = new Uint32Array(k.u8().buffer, k.at.fields, 2 * per.length);
  let start = 0;
  for (let f = 0; f < per.length; f++) {
    table[2 * f] = start;
    table[2 * f + 1] = per[f];
    start += per[f];
  }
  return per.length;
}

/**
 * Splits n elements of `layout` at raw[head..] into streams in the kernels' memory, and
 * reserves room there for coding them; the streams stay valid until the next HIER call.
 */
export function kernelSplit(
  layout: Layout,
  raw: Uint8Array,
  head: number,
  n: number,
  /** Count the exponents too (layouts with splitCounting): not when only the streams are wanted. */
  count = true,
): Split | undefined {
  const bytes = n * layout.width;
  if (bytes < KERNEL_MIN_BYTES) return undefined;
  const k = kernels();
  if (!k) return undefined;
  const lengths: number[] = [];
  let sum = 0;
  let longest = 0;
  for (let s = 0; s < layout.streams; s++) {
    const length = streamLength(layout, s, n);
    lengths.push(length);
    sum += length;
    longest = Math.max(longest, length);
  }
  const total = bytes + 64 + sum + 64 + longest + 1024;
  if (total > ARENA_LIMIT) return undefined;
  k.begin(total);
  const src = k.alloc(bytes);
  const base = k.alloc(sum);
  const mem = k.u8();
  mem.set(raw.subarray(head, head + bytes), src);
  const streams: Uint8Array[] = [];
  const at: number[] = [];
  let p = base;
  for (const length of lengths) {
    at.push(p);
    streams.push(mem.subarray(p, p + length));
    p += length;
  }
  const x = k.x;
  const counting = count && layout.splitCounting !== undefined;
  if (counting) mem.fill(0, k.at.counts, k.at.counts + 1024);
  const counts = counting ? k.at.counts : 0;
  switch (layout.name) {
    case "bytes":
      streams[0] = mem.subarray(src, src + bytes);
      break;
    case "bf16":
      x.splitBf16(src, n, at[0], at[1], counts);
      break;
    case "f16":
      x.splitF16(src, n, at[0], at[1], at[2]);
      break;
    case "f32":
      x.splitF32(src, n, at[0], at[1], at[2], at[3], counts);
      break;
    case "planes2":
    case "planes4":
    case "planes8":
      x.splitPlanes(src, n, layout.width, base);
      break;
    default:
      if (!layout.perElement) return undefined;
      x.splitBlocks(src, n, layout.width, k.at.fields, fieldTable(k, layout), base);
  }
  return {
    streams,
    counts: counting ? new Uint32Array(mem.buffer, k.at.counts, 256).slice() : undefined,
  };
}

/**
 * Decodes stream k, coded by zstd (METHOD_ZSTD) or context Huffman (METHOD_CONTEXT), into
 * `out` (its decoded length): the decoders HIER's TypeScript path runs, which the kernels
 * do not replace.
 */
function decodeOtherStream(k: number, part: Part, payload: Uint8Array, out: Uint8Array): void {
  const bytes = payload.subarray(part.start, part.start + part.length);
  if (part.method === METHOD_CONTEXT) {
    if (bytes[0] !== BLOCK_CONTEXT) throw corrupt(`stream ${k}: context method without a context block`);
    huffmanDecodeContext(bytes, out);
    return;
  }
  // Exactly one frame, window bounded by the size, that many bytes out, written in place.
  zstdDecodeInto(bytes, out);
}

/** A view of the kernels' lane positions, made again only when their memory grew. */
let lanesView: Int32Array | undefined;

/** The input-area bytes after a block decoded in place, while they are zeroed. */
const kept = new Uint8Array(8);

function lanesOf(k: Kernels): Int32Array {
  const buffer = k.u8().buffer;
  if (lanesView?.buffer !== buffer) lanesView = new Int32Array(buffer, k.at.lanes, 16);
  return lanesView;
}

export interface Part {
  method: number;
  start: number;
  length: number;
}

function corrupt(message: string): MmhError {
  return new MmhError("E_CORRUPT", `HIER: ${message}`);
}

/**
 * The offset in its 4 KiB page taken for byte 0 of a large buffer: glibc's malloc, which
 * Node's ArrayBuffer memory comes from, serves a large block from a mapping of its own,
 * 16 bytes (its chunk header) past a page boundary. The words of a chunk are merged at
 * an address of the same page offset as their place in `out`, so that the copy out
 * reads and writes at equal offsets in their pages: a source 16 bytes below its target's
 * offset made the copy's loads wait on its stores (bench/results/decode-into-ab-align.md),
 * and elsewhere the offset, when the guess is wrong, is as arbitrary as before.
 */
const LARGE_BUFFER_PAGE_OFFSET = 16;

/**
 * Decodes the streams of n elements of `layout` (`parts` of `payload`, their lengths
 * checked against the payload) into `out` (n * width bytes). False, having written
 * nothing, when the kernels are not available, the chunk is small, or a stream is coded
 * in a way they do not handle (zstd, context Huffman): HIER's TypeScript path then runs.
 */
export function kernelDecode(
  layout: Layout,
  parts: readonly Part[],
  payload: Uint8Array,
  n: number,
  out: Uint8Array,
): boolean {
  const decoded = decodeInArena(layout, parts, payload, n, 0, 0, out.byteOffset + LARGE_BUFFER_PAGE_OFFSET);
  if (!decoded) return false;
  const { mem, from, bytes } = decoded;
  copyBytes(out, mem.subarray(from, from + bytes));
  return true;
}

/**
 * As kernelDecode, but the chunk is left in the kernels' memory, its words between the
 * chunk's first bytes `head` and its last bytes `tail`: the whole chunk, as a view that
 * stays valid only until the next call into HIER on this thread (see kernels.ts,
 * Memory). Undefined where kernelDecode would return false.
 */
export function kernelDecodeLent(
  layout: Layout,
  parts: readonly Part[],
  payload: Uint8Array,
  n: number,
  head: Uint8Array,
  tail: Uint8Array,
): Uint8Array | undefined {
  const decoded = decodeInArena(layout, parts, payload, n, head.length, tail.length);
  if (!decoded) return undefined;
  const { mem, from, outAt, bytes } = decoded;
  // A one-stream layout stored as is: its words lie where the stream was copied.
  if (from !== outAt) mem.copyWithin(outAt, from, from + bytes);
  mem.set(head, outAt - head.length);
  mem.set(tail, outAt + bytes);
  return mem.subarray(outAt - head.length, outAt + bytes + tail.length);
}

/**
 * The decode of kernelDecode, in the arena: the words end up at `from` (bytes long), in
 * an area at `outAt` with `before` bytes free before it and `after` bytes after it, and
 * with `outAt` at the page offset `pageOffset` (mod 4096) when that is given.
 * Undefined, having written nothing, where kernelDecode returns false.
 */
function decodeInArena(
  layout: Layout,
  parts: readonly Part[],
  payload: Uint8Array,
  n: number,
  before: number,
  after: number,
  pageOffset = -1,
): { mem: Uint8Array; from: number; outAt: number; bytes: number } | undefined {
  const bytes = n * layout.width;
  // A small chunk does not load the kernels (a small file then never compiles them).
  const k =
    bytes >= KERNEL_MIN_BYTES ? kernels() : bytes >= KERNEL_DECODE_MIN_BYTES ? loadedKernels() : undefined;
  if (!k) return undefined;
  // The output (16 bytes before it for `before`), the code lengths, then the streams and
  // blocks (the 4-symbol decode table, buildQuad's, is the module's own).
  let margin = before > 0 ? 16 : 0;
  let room = margin + bytes + after + 64 + 256 + 32 + (pageOffset >= 0 ? 4096 : 0);
  for (const [s, part] of parts.entries()) {
    if (part.method > METHOD_CONTEXT) return undefined;
    if (part.method === METHOD_HUFFMAN) {
      const type = part.length > 0 ? payload[part.start] : -1;
      if (type !== BLOCK_STORED && type !== BLOCK_SINGLE && type !== BLOCK_HUFFMAN) return undefined;
      room += part.length + 32;
    }
    room += streamLength(layout, s, n) + 32;
  }
  if (before > margin || room > ARENA_LIMIT) return undefined;
  // A payload read into the kernels' input area (KernelBatches) is decoded where it lies:
  // its Huffman blocks, and the stored streams of the layouts merged from separate
  // addresses, are not copied. While the area is held the memory must not grow (the
  // reader's views of it), so a chunk that would need more goes to the TypeScript path
  // (only a damaged record can: the arena was grown for the file's largest one).
  const inPlace = k.inInput(payload);
  if (k.inputHeld() && room > k.arenaRoom()) return undefined;
  k.begin(room);
  // The arena's first address is where the output area starts (alloc(0) reserves nothing).
  if (pageOffset >= 0) margin = (pageOffset - k.alloc(0)) & 4095;
  const outAt = k.alloc(margin + bytes + after) + margin;
  const lengthsAt = k.alloc(256);
  const mem = k.u8();
  const lengths = mem.subarray(lengthsAt, lengthsAt + 256);
  const at = k.at;
  const lanes = lanesOf(k);
  const blockOf = (part: Part) => payload.subarray(part.start, part.start + part.length);
  const isHuffman = (s: number) =>
    parts[s].method === METHOD_HUFFMAN && payload[parts[s].start] === BLOCK_HUFFMAN;
  /**
   * Checks Huffman block s of `count` symbols, copies it into the arena (8 zero bytes
   * after it), builds its tables and decodes it to `to`.
   */
  const decodeBlock = (s: number, count: number, to: number): void => {
    const block = blockOf(parts[s]);
    const tableBits = kernelTableBits(checkHuffmanBlock(block, count, lengths, lanes), count, lanes);
    // In the input area, the 8 bytes after the block (the next stream's, or the slack
    // KernelBatches leaves after each batch) are zeroed for the decode and put back.
    const address = inPlace ? block.byteOffset : k.alloc(block.length + 8);
    const after = address + block.length;
    if (inPlace) kept.set(mem.subarray(after, after + 8));
    else copyBytes(mem, block, address);
    mem.fill(0, after, after + 8);
    k.x.buildSingle(lengthsAt, tableBits, at.single);
    if (oneSymbolLookups(count, lanes) || oneSymbolTable(count, tableBits)) {
      k.x.decodeLanesSingle(address, block.length, to, count, at.single, tableBits, at.lanes);
    } else if (twoSymbolLookups(count, lanes, tableBits)) {
      k.x.buildTwo(at.single);
      k.x.decodeLanesTwo(address, block.length, to, count, at.single, tableBits, at.lanes);
    } else {
      k.x.buildQuad(at.single, tableBits);
      k.x.decodeLanesQuad(address, block.length, to, count, at.single, tableBits, at.lanes);
    }
    if (inPlace) mem.set(kept, after);
    else k.release(address);
    checkLanesEnded(lanes, lanes[5], lanes[6], lanes[7], lanes[8]);
  };
  /** The layouts whose merge takes each stream's address: a stored stream is read where it lies. */
  const apart = inPlace && (layout.name === "bf16" || layout.name === "f16" || layout.name === "f32");
  // A one-stream layout decodes straight into the output.
  const fused = layout.name === "bytes" && isHuffman(0) ? 0 : -1;
  // The streams, decoded or copied into the arena one right after another (the plane
  // and block merges read them so), then merged by a SIMD kernel.
  const streamAt: number[] = [];
  let total = 0;
  for (let s = 0; s < parts.length; s++) {
    streamAt.push(total);
    total += streamLength(layout, s, n);
  }
  const base = k.alloc(total);
  for (const [s, part] of parts.entries()) {
    const size = streamLength(layout, s, n);
    const address = base + streamAt[s];
    streamAt[s] = address;
    if (s === fused) continue;
    const block = blockOf(part);
    switch (part.method) {
      case METHOD_CONSTANT:
        if (part.length !== Math.min(1, size))
          throw corrupt(`stream ${s}: constant stream of ${part.length} bytes`);
        mem.fill(size > 0 ? block[0] : 0, address, address + size);
        break;
      case METHOD_STORED:
        if (part.length !== size) throw corrupt(`stream ${s}: stored ${part.length} bytes for ${size}`);
        if (apart) streamAt[s] = block.byteOffset;
        else copyBytes(mem, block, address);
        break;
      case METHOD_ZSTD:
      case METHOD_CONTEXT:
        decodeOtherStream(s, part, payload, mem.subarray(address, address + size));
        break;
      default:
        if (block[0] !== BLOCK_HUFFMAN) {
          huffmanDecode(block, mem.subarray(address, address + size));
          break;
        }
        decodeBlock(s, size, address);
    }
  }
  const x = k.x;
  /** Where the output words lie in the arena. */
  let from = outAt;
  if (fused >= 0) decodeBlock(fused, n, outAt);
  else {
    switch (layout.name) {
      case "bytes":
        // The one stream is the output.
        from = streamAt[0];
        break;
      case "bf16":
        x.mergeBf16(streamAt[0], streamAt[1], n, outAt);
        break;
      case "f16":
        x.mergeF16(streamAt[0], streamAt[1], streamAt[2], n, outAt);
        break;
      case "f32":
        x.mergeF32(streamAt[0], streamAt[1], streamAt[2], streamAt[3], n, outAt);
        break;
      case "planes2":
      case "planes4":
      case "planes8":
        // The streams lie one after another, n bytes each: plane p at streamAt[0] + p * n.
        x.mergePlanes(streamAt[0], n, layout.width, outAt);
        break;
      default:
        x.mergeBlocks(streamAt[0], n, layout.width, at.fields, fieldTable(k, layout), outAt);
    }
  }
  return { mem, from, outAt, bytes };
}
