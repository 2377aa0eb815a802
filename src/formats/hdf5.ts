/**
 * HDF5 files (`.h5`, `.hdf5`; Keras and h5py write them), read from the HDF5 File Format
 * Specification 3.0: the superblock (versions 0 to 3) at offset 0, object headers (v1 and
 * v2 "OHDR", with continuation blocks), groups held as symbol tables (a v1 B-tree of
 * symbol-table nodes over a local heap of names), as link messages in the group's own
 * header, or densely (link messages in a fractal heap), and datasets whose data is
 * contiguous, compact or chunked (a v1 B-tree of chunks; or, in layout v4, a single
 * chunk, an implicit index, an unpaged fixed array or an unpaged extensible array).
 *
 * Every address, size and count comes from the file, so each is checked against the
 * file before it is used: addresses past the end are E_TRUNCATED, impossible sizes and
 * counts E_CORRUPT, nesting past our bounds E_LIMIT, and the bytes of structure read count
 * against the header cap (E_LIMIT). Each object header, B-tree node, heap, array block and
 * continuation block is visited once, so cycles (a group holding itself, a B-tree pointing
 * back up) end the walk rather than loop. Checksums are not verified: a recogniser only
 * cuts the file into regions, and the bytes are stored losslessly whatever it decides.
 *
 * Not followed (the datasets are left to the raw regions, counted in the metadata): dense
 * groups whose heap has deleted links or indirect children, v2 B-tree chunk indexes, paged
 * fixed and extensible arrays, virtual and external storage, shared (committed) datatypes
 * and shared dataspaces.
 */

import type { DTypeName, Region } from "../common/dtype.ts";
import { check, type ErrorCode, MmhError } from "../common/errors.ts";
import type { RandomAccessSource } from "../common/source.ts";
import { HDF5_MAGIC } from "./magic.ts";
import {
  checkedProduct,
  decodeUtf8,
  maxHeaderBytes,
  rawRegion,
  tensorRegion,
  tileRegions,
} from "./regions.ts";
import type { Recognised, RecogniseOptions, TensorEntry } from "./types.ts";
import { BudgetedWindow } from "./window.ts";

export { HDF5_MAGIC, looksLikeHdf5 } from "./magic.ts";

/** Groups nest at most this deep (E_LIMIT past it). */
export const HDF5_MAX_DEPTH = 64;
/** B-trees are at most this many levels high. */
const MAX_BTREE_LEVEL = 32;
/** Dataspaces have at most 32 dimensions (the library's H5S_MAX_RANK). */
const MAX_RANK = 32;
/** Longest link name kept. */
const MAX_NAME = 4096;
/** Datasets below this many bytes stay in the raw regions (as for ONNX and TFLite). */
export const HDF5_MIN_REGION = 4096;
/** At most this many chunks per dataset are walked (E_LIMIT past it). */
const MAX_CHUNKS = 1 << 20;

// Object header message types.
const MSG_DATASPACE = 0x01;
const MSG_LINK_INFO = 0x02;
const MSG_DATATYPE = 0x03;
const MSG_LINK = 0x06;
const MSG_EXTERNAL = 0x07;
const MSG_LAYOUT = 0x08;
const MSG_FILTERS = 0x0b;
const MSG_CONTINUATION = 0x10;
const MSG_SYMBOL_TABLE = 0x11;
/** Message flag: the message is shared (its data is a reference elsewhere). */
const FLAG_SHARED = 0x02;

interface Message {
  type: number;
  flags: number;
  data: Buffer;
  /** File offset of the message's data. */
  at: number;
}

/** A bounded reader over one buffer: reading past its end is E_CORRUPT. */
class Bytes {
  readonly buf: Buffer;
  readonly what: string;
  /** The code for reading past the end: E_TRUNCATED when the buffer was cut by the end of the file. */
  readonly short: ErrorCode;
  pos = 0;
  constructor(buf: Buffer, what: string, short: ErrorCode = "E_CORRUPT") {
    this.buf = buf;
    this.what = what;
    this.short = short;
  }
  need(n: number): void {
    check(this.pos + n <= this.buf.length, this.short, `hdf5: ${this.what} ends early`);
  }
  u8(): number {
    this.need(1);
    return this.buf[this.pos++];
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  /** An unsigned integer of `size` bytes (1 to 8); undefined for all ones, HDF5's "undefined address". */
  uint(size: number): number | undefined {
    this.need(size);
    let v = 0n;
    let ones = true;
    for (let i = size - 1; i >= 0; i--) {
      const b = this.buf[this.pos + i];
      if (b !== 0xff) ones = false;
      v = (v << 8n) | BigInt(b);
    }
    this.pos += size;
    if (ones) return undefined;
    check(v <= BigInt(Number.MAX_SAFE_INTEGER), "E_LIMIT", `hdf5: ${this.what} has a value over 2^53`);
    return Number(v);
  }
  /** A size or count: all ones is not "undefined" but a huge value. */
  length(size: number): number {
    const v = this.uint(size);
    check(v !== undefined, "E_LIMIT", `hdf5: ${this.what} has a value over 2^53`);
    return v;
  }
  skip(n: number): void {
    this.need(n);
    this.pos += n;
  }
  take(n: number): Buffer {
    this.need(n);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}

interface Datatype {
  /** A DTypeName when the values are plain little-endian ones MMH has a layout for. */
  dtype?: DTypeName;
  /** numpy-style name (`<f4`, `>i2`, `<f(e5m10)`) or `hdf5 class N`. */
  name: string;
  size: number;
  /** Why the data stays raw, when it does. */
  note?: string;
}

interface Chunk {
  /** Absolute file offset. */
  addr: number;
  size: number;
  /** The chunk's first element, per dimension. */
  offsets: number[];
  filtered: boolean;
}

type Storage =
  | { kind: "contiguous"; addr: number | undefined; size: number }
  | { kind: "compact"; at: number; size: number }
  | { kind: "chunked"; dims: number[]; chunks: Chunk[] }
  | { kind: "skip"; reason: string };

/** Parse a datatype message. */
export function parseDatatype(data: Buffer): Datatype {
  const b = new Bytes(data, "datatype message");
  const head = b.u8();
  const cls = head & 0x0f;
  const version = head >> 4;
  check(version >= 1 && version <= 5, "E_CORRUPT", `hdf5: datatype version ${version}`);
  const bits = b.u8() | (b.u8() << 8) | (b.u8() << 16);
  const size = b.u32();
  check(size > 0, "E_CORRUPT", "hdf5: a datatype of size 0");
  if (cls === 0 || cls === 1) {
    const bigEndian = (bits & 1) === 1;
    const order = bigEndian ? ">" : "<";
    const offset = b.u16();
    const precision = b.u16();
    if (cls === 0) {
      const signed = (bits & 0x08) !== 0;
      const name = `${order}${signed ? "i" : "u"}${size}`;
      const plain = offset === 0 && precision === size * 8;
      const dtype = (
        {
          1: signed ? "I8" : "U8",
          2: signed ? "I16" : "U16",
          4: signed ? "I32" : "U32",
          8: signed ? "I64" : "U64",
        } as Record<number, DTypeName> | undefined
      )?.[size];
      if (!plain) return { name: `${name}(${precision} bits at ${offset})`, size, note: "padded integers" };
      if (bigEndian && size > 1) return { name, size, note: `big-endian ${name.slice(1)}` };
      return dtype ? { dtype, name, size } : { name, size, note: `integers of ${size} bytes` };
    }
    // Floating point: bit 6 with bit 0 is VAX order.
    const vax = (bits & 0x40) !== 0;
    const expLocation = b.u8();
    const expSize = b.u8();
    const mantLocation = b.u8();
    const mantSize = b.u8();
    const bias = b.u32();
    const sign = (bits >> 8) & 0xff;
    const ieee =
      !vax &&
      offset === 0 &&
      precision === size * 8 &&
      mantLocation === 0 &&
      expLocation === mantSize &&
      sign === mantSize + expSize &&
      precision === 1 + expSize + mantSize &&
      bias === 2 ** (expSize - 1) - 1;
    const exact: Record<string, DTypeName> = {
      "2/5/10": "F16",
      "2/8/7": "BF16",
      "4/8/23": "F32",
      "8/11/52": "F64",
    };
    const dtype = exact[`${size}/${expSize}/${mantSize}`];
    const name = dtype ? `${order}f${size}` : `${order}f(e${expSize}m${mantSize})`;
    if (vax) return { name: `vax f${size}`, size, note: "VAX byte order" };
    if (!ieee || dtype === undefined) return { name, size, note: `float e${expSize}m${mantSize}` };
    if (bigEndian) return { name, size, note: `big-endian f${size}` };
    if (dtype === "BF16") return { dtype, name: "bf16", size };
    return { dtype, name, size };
  }
  const classes = ["fixed", "float", "time", "string", "bitfield", "opaque", "compound", "reference"];
  const extra = ["enum", "vlen", "array", "complex"];
  const name = `hdf5 ${classes[cls] ?? extra[cls - 8] ?? `class ${cls}`}`;
  return { name, size, note: name };
}

/** Parse a dataspace message: the shape, or undefined for a null dataspace. */
export function parseDataspace(data: Buffer): number[] | undefined {
  return parseDataspaceMax(data)?.shape;
}

/** The shape and, when the message has them, the maximum dims (undefined: unlimited). */
function parseDataspaceMax(data: Buffer): { shape: number[]; max?: (number | undefined)[] } | undefined {
  const b = new Bytes(data, "dataspace message");
  const version = b.u8();
  check(version === 1 || version === 2, "E_CORRUPT", `hdf5: dataspace version ${version}`);
  const rank = b.u8();
  check(rank <= MAX_RANK, "E_CORRUPT", `hdf5: dataspace of rank ${rank} (at most ${MAX_RANK})`);
  const flags = b.u8();
  let type = rank === 0 ? 0 : 1;
  if (version === 1) b.skip(5);
  else {
    type = b.u8();
    check(type <= 2, "E_CORRUPT", `hdf5: dataspace type ${type}`);
  }
  if (type === 2) return undefined;
  // Sizes of lengths are 8 in every file we accept (checked at the superblock).
  const shape: number[] = [];
  for (let i = 0; i < rank; i++) shape.push(b.length(8));
  if (!(flags & 1)) return { shape };
  const max: (number | undefined)[] = [];
  for (let i = 0; i < rank; i++) max.push(b.uint(8));
  return { shape, max };
}

class Hdf5Walker {
  readonly w: BudgetedWindow;
  readonly size: number;
  base = 0;
  so = 8;
  sl = 8;
  private readonly seenHeaders = new Set<number>();
  private readonly seenBlocks = new Set<number>();
  readonly tensors: TensorEntry[] = [];
  readonly regions: Region[] = [];
  readonly skipped: Record<string, number> = {};
  groups = 0;
  datasets = 0;

  constructor(source: RandomAccessSource, budget: number) {
    this.w = new BudgetedWindow(source, budget, "hdf5");
    this.size = source.size;
  }

  /** Absolute offset of a file address (relative to the base address). */
  abs(addr: number | undefined, what: string): number {
    check(addr !== undefined, "E_CORRUPT", `hdf5: ${what} has an undefined address`);
    const at = this.base + addr;
    check(
      at < this.size,
      "E_TRUNCATED",
      `hdf5: ${what} at ${at} is past the end of the file (${this.size} bytes)`,
    );
    return at;
  }

  async read(at: number, n: number, what: string): Promise<Buffer> {
    check(
      Number.isSafeInteger(n) && n >= 0 && at + n <= this.size,
      "E_TRUNCATED",
      `hdf5: ${what} (${n} bytes at ${at}) runs past the end of the file (${this.size} bytes)`,
    );
    return Buffer.from(await this.w.take(at, n, what));
  }

  skip(reason: string): void {
    this.skipped[reason] = (this.skipped[reason] ?? 0) + 1;
  }

  /** The superblock; returns the root group's object header address. */
  async superblock(): Promise<{ version: number; root: number }> {
    const head = new Bytes(
      await this.read(0, Math.min(this.size, 100), "superblock"),
      "superblock",
      this.size < 100 ? "E_TRUNCATED" : "E_CORRUPT",
    );
    check(head.take(8).equals(HDF5_MAGIC), "E_CORRUPT", "hdf5: bad signature");
    const version = head.u8();
    check(version <= 3, "E_UNSUPPORTED", `hdf5: superblock version ${version} is not supported (0 to 3 are)`);
    let root: number | undefined;
    if (version <= 1) {
      head.skip(4); // free-space, root group symbol table entry and shared header versions, reserved
      this.so = head.u8();
      this.sl = head.u8();
      head.skip(1);
      head.skip(4); // group leaf and internal node K
      head.skip(4); // consistency flags
      if (version === 1) head.skip(4);
      this.checkSizes();
      this.base = head.uint(this.so) ?? 0;
      head.skip(this.so * 3); // free-space info, end of file, driver info
      // Root group symbol table entry: link name offset, object header address, ...
      head.skip(this.so);
      root = head.uint(this.so);
    } else {
      this.so = head.u8();
      this.sl = head.u8();
      head.skip(1);
      this.checkSizes();
      this.base = head.uint(this.so) ?? 0;
      head.skip(this.so * 2); // superblock extension, end of file
      root = head.uint(this.so);
    }
    check(this.base < this.size, "E_CORRUPT", `hdf5: base address ${this.base} is past the end of the file`);
    return { version, root: this.abs(root, "root group") };
  }

  private checkSizes(): void {
    check(
      [2, 4, 8].includes(this.so) && [2, 4, 8].includes(this.sl),
      "E_CORRUPT",
      `hdf5: sizes of offsets ${this.so} and lengths ${this.sl} (2, 4 or 8)`,
    );
    check(
      this.sl === 8,
      "E_UNSUPPORTED",
      `hdf5: sizes of lengths ${this.sl} (only 8, what the library writes, is read)`,
    );
  }

  /** Claim a block of structure: visiting one twice means a cycle or shared structure. */
  private once(at: number): boolean {
    if (this.seenBlocks.has(at)) return false;
    this.seenBlocks.add(at);
    return true;
  }

  /** All messages of the object header at `at`, continuations followed. */
  async objectHeader(at: number): Promise<Message[]> {
    const messages: Message[] = [];
    const first = await this.read(at, 16, "object header");
    const pending: { at: number; length: number; v2: boolean; first: boolean }[] = [];
    let v2 = false;
    let crtOrder = false;
    if (first.subarray(0, 4).toString("latin1") === "OHDR") {
      v2 = true;
      const version = first[4];
      check(version === 2, "E_CORRUPT", `hdf5: object header version ${version}`);
      const flags = first[5];
      crtOrder = (flags & 0x04) !== 0;
      const prefix = 6 + (flags & 0x20 ? 16 : 0) + (flags & 0x10 ? 4 : 0);
      const b = new Bytes(await this.read(at, prefix + (1 << (flags & 3)), "object header"), "OHDR");
      b.skip(prefix);
      const chunk0 = b.length(1 << (flags & 3));
      // The checksum follows chunk #0 and is not counted in its size.
      pending.push({ at: at + b.pos, length: chunk0 + 4, v2, first: true });
    } else {
      const b = new Bytes(first, "object header");
      const version = b.u8();
      check(version === 1, "E_CORRUPT", `hdf5: object header at ${at} has version ${version}`);
      b.skip(1);
      b.u16(); // message count (continuations may hold the rest; the bytes bound the walk)
      b.u32(); // reference count
      const length = b.u32();
      pending.push({ at: at + 16, length, v2, first: true });
    }
    for (let i = 0; i < pending.length; i++) {
      const block = pending[i];
      const bytes = await this.read(block.at, block.length, "object header messages");
      const b = new Bytes(bytes, `object header at ${at}`);
      if (block.v2) {
        if (!block.first) {
          check(
            b.take(4).toString("latin1") === "OCHK",
            "E_CORRUPT",
            "hdf5: continuation block without OCHK",
          );
        }
        check(bytes.length >= b.pos + 4, "E_CORRUPT", "hdf5: object header block too short for its checksum");
      }
      const end = block.v2 ? bytes.length - 4 : bytes.length;
      const headerSize = block.v2 ? 4 + (crtOrder ? 2 : 0) : 8;
      while (end - b.pos >= headerSize) {
        const type = block.v2 ? b.u8() : b.u16();
        const size = b.u16();
        const flags = b.u8();
        if (block.v2) {
          if (crtOrder) b.skip(2);
        } else b.skip(3);
        check(b.pos + size <= end, "E_CORRUPT", `hdf5: message of type ${type} runs past its object header`);
        const data = b.take(size);
        const dataAt = block.at + b.pos - size;
        if (type === MSG_CONTINUATION) {
          const c = new Bytes(data, "continuation message");
          const addr = this.abs(c.uint(this.so), "continuation block");
          const length = c.length(this.sl);
          check(this.once(addr), "E_CORRUPT", `hdf5: continuation block at ${addr} is used twice`);
          pending.push({ at: addr, length, v2: block.v2, first: false });
        } else if (type !== 0) messages.push({ type, flags, data, at: dataAt });
      }
    }
    return messages;
  }

  /** Visit the object at `at`, named `path`: a group's members, or a dataset. */
  async visit(at: number, path: string, depth: number): Promise<void> {
    check(
      depth <= HDF5_MAX_DEPTH,
      "E_LIMIT",
      `hdf5: groups nest deeper than ${HDF5_MAX_DEPTH} at ${path.slice(0, 120)}...`,
    );
    // Hard links may name one object twice, or a group inside itself: each object once.
    if (this.seenHeaders.has(at)) return;
    this.seenHeaders.add(at);
    const messages = await this.objectHeader(at);
    const find = (type: number) => messages.find((m) => m.type === type);
    const symbols = find(MSG_SYMBOL_TABLE);
    const links = messages.filter((m) => m.type === MSG_LINK);
    const linkInfo = find(MSG_LINK_INFO);
    if (symbols || links.length > 0 || linkInfo) {
      this.groups++;
      const children: [string, number][] = [];
      if (symbols) await this.symbolTable(symbols.data, children);
      for (const link of links) {
        const child = this.link(link.data);
        if (child) children.push(child);
      }
      const heap = linkInfo ? this.denseHeap(linkInfo.data) : undefined;
      if (heap !== undefined) {
        try {
          await this.denseLinks(heap, children);
        } catch (error) {
          // A group whose heap cannot be read leaves its members to the raw regions.
          if (!(error instanceof MmhError) || !["E_UNSUPPORTED", "E_CORRUPT"].includes(error.code))
            throw error;
          this.skip("dense link storage");
        }
      }
      for (const [name, child] of children) {
        await this.visit(child, path === "/" ? `/${name}` : `${path}/${name}`, depth + 1);
      }
      return;
    }
    const layout = find(MSG_LAYOUT);
    const type = find(MSG_DATATYPE);
    const space = find(MSG_DATASPACE);
    if (layout && type && space) await this.dataset(path, messages, layout, type, space);
  }

  /** Members of a symbol-table group: a v1 B-tree of symbol-table nodes, names in a local heap. */
  private async symbolTable(data: Buffer, children: [string, number][]): Promise<void> {
    const b = new Bytes(data, "symbol table message");
    const tree = this.abs(b.uint(this.so), "group B-tree");
    const heapAt = this.abs(b.uint(this.so), "group local heap");
    const heap = new Bytes(await this.read(heapAt, 8 + 2 * this.sl + this.so, "local heap"), "local heap");
    check(heap.take(4).toString("latin1") === "HEAP", "E_CORRUPT", `hdf5: no local heap at ${heapAt}`);
    heap.skip(4);
    const heapSize = heap.length(this.sl);
    heap.skip(this.sl);
    const heapData = this.abs(heap.uint(this.so), "local heap data");
    check(
      heapData + heapSize <= this.size,
      "E_TRUNCATED",
      "hdf5: local heap data runs past the end of the file",
    );
    const names = await this.read(heapData, heapSize, "local heap data");
    const nodes: number[] = [];
    await this.btreeV1(tree, 0, -1, 0, (_key, child) => {
      nodes.push(child);
    });
    for (const node of nodes) {
      const entry = 2 * this.so + 24;
      const headBytes = new Bytes(await this.read(node, 8, "symbol table node"), "symbol table node");
      check(
        headBytes.take(4).toString("latin1") === "SNOD",
        "E_CORRUPT",
        `hdf5: no symbol table node at ${node}`,
      );
      headBytes.skip(2);
      const count = headBytes.u16();
      const b2 = new Bytes(
        await this.read(node + 8, count * entry, "symbol table entries"),
        "symbol table node",
      );
      for (let i = 0; i < count; i++) {
        const nameAt = b2.length(this.so);
        const address = b2.uint(this.so);
        const cache = b2.u32();
        b2.skip(20);
        // Cache type 2 is a soft link: a path in the local heap, no object header.
        if (cache === 2) continue;
        const header = this.abs(address, `symbol table entry ${i} in node ${node}`);
        check(
          nameAt < names.length,
          "E_CORRUPT",
          `hdf5: link name offset ${nameAt} is outside the local heap`,
        );
        const stop = names.indexOf(0, nameAt);
        check(stop >= 0, "E_CORRUPT", "hdf5: link name is not terminated in the local heap");
        children.push([this.name(names.subarray(nameAt, stop)), header]);
      }
    }
  }

  private name(bytes: Buffer): string {
    check(bytes.length > 0, "E_CORRUPT", "hdf5: an empty link name");
    const text = decodeUtf8(bytes.subarray(0, MAX_NAME));
    check(
      text !== undefined && !text.includes("/"),
      "E_CORRUPT",
      "hdf5: a link name is not valid UTF-8 or holds a /",
    );
    return text;
  }

  /**
   * Walk a v1 B-tree from the node at `at`, calling `leaf` with each key before a child of
   * a level-0 node and the child's address. `type` is 0 for groups, 1 for chunks.
   */
  private async btreeV1(
    at: number,
    type: number,
    expectLevel: number,
    dims: number,
    leaf: (key: Buffer, child: number) => void,
  ): Promise<void> {
    check(this.once(at), "E_CORRUPT", `hdf5: B-tree node at ${at} is reached twice`);
    const b = new Bytes(await this.read(at, 8 + 2 * this.so, "B-tree node"), "B-tree node");
    check(b.take(4).toString("latin1") === "TREE", "E_CORRUPT", `hdf5: no B-tree node at ${at}`);
    check(b.u8() === type, "E_CORRUPT", `hdf5: B-tree node at ${at} is not of type ${type}`);
    const level = b.u8();
    check(
      level <= MAX_BTREE_LEVEL && (expectLevel < 0 || level === expectLevel),
      "E_CORRUPT",
      `hdf5: B-tree node at ${at} has level ${level}`,
    );
    const entries = b.u16();
    const keySize = type === 0 ? this.sl : 8 + 8 * dims;
    const body = new Bytes(
      await this.read(at + 8 + 2 * this.so, entries * (keySize + this.so) + keySize, "B-tree entries"),
      "B-tree node",
    );
    const children: [Buffer, number][] = [];
    for (let i = 0; i < entries; i++) {
      const key = body.take(keySize);
      children.push([key, this.abs(body.uint(this.so), "B-tree child")]);
    }
    for (const [key, child] of children) {
      if (level === 0) leaf(key, child);
      else await this.btreeV1(child, type, level - 1, dims, leaf);
    }
  }

  /** A link message: [name, object header] for a hard link, undefined for soft and external ones. */
  private link(data: Buffer | Bytes): [string, number] | undefined {
    const b = data instanceof Bytes ? data : new Bytes(data, "link message");
    const version = b.u8();
    check(version === 1, "E_CORRUPT", `hdf5: link message version ${version}`);
    const flags = b.u8();
    const type = flags & 0x08 ? b.u8() : 0;
    if (flags & 0x04) b.skip(8);
    if (flags & 0x10) b.skip(1);
    const length = b.length(1 << (flags & 3));
    const name = this.name(b.take(length));
    if (type !== 0) {
      // Soft, external and user-defined links: a u16 length and the link's value.
      b.skip(b.u16());
      return undefined;
    }
    return [name, this.abs(b.uint(this.so), `link ${name}`)];
  }

  /** The fractal heap a link info message puts the links in (dense storage), if any. */
  private denseHeap(data: Buffer): number | undefined {
    const b = new Bytes(data, "link info message");
    check(b.u8() === 0, "E_CORRUPT", "hdf5: link info message version");
    const flags = b.u8();
    if (flags & 1) b.skip(8);
    const heap = b.uint(this.so);
    return heap === undefined ? undefined : this.abs(heap, "link fractal heap");
  }

  /**
   * The links of a group in dense storage: the link messages that are the managed objects
   * of its fractal heap, read in order from the heap's direct blocks (the root block, or
   * the direct blocks of a root indirect block) until the heap's object count is reached.
   * A heap with deleted objects (holes) or deeper indirect blocks is E_UNSUPPORTED.
   */
  private async denseLinks(at: number, children: [string, number][]): Promise<void> {
    check(this.once(at), "E_CORRUPT", `hdf5: fractal heap at ${at} is reached twice`);
    const sl = this.sl;
    const so = this.so;
    const h = new Bytes(
      await this.read(at, 22 + so * 3 + sl * 12 + 8, "fractal heap header"),
      "fractal heap header",
    );
    check(h.take(4).toString("latin1") === "FRHP", "E_CORRUPT", `hdf5: no fractal heap at ${at}`);
    check(h.u8() === 0, "E_CORRUPT", "hdf5: fractal heap version");
    h.u16(); // heap ID length
    const filters = h.u16();
    const flags = h.u8();
    h.u32(); // maximum size of managed objects
    h.skip(sl + so + sl + so + sl + sl + sl);
    const objects = h.length(sl);
    h.skip(sl);
    const huge = h.length(sl);
    h.skip(sl);
    const tiny = h.length(sl);
    const width = h.u16();
    const startSize = h.length(sl);
    const maxDirect = h.length(sl);
    const maxHeapBits = h.u16();
    h.u16(); // starting rows
    const root = h.uint(so);
    const rows = h.u16();
    check(filters === 0, "E_UNSUPPORTED", "hdf5: a filtered fractal heap");
    check(huge === 0 && tiny === 0, "E_UNSUPPORTED", "hdf5: links stored as huge or tiny heap objects");
    check(
      width >= 1 &&
        width <= 65536 &&
        startSize >= 16 &&
        maxDirect >= startSize &&
        maxHeapBits >= 8 &&
        maxHeapBits <= 64,
      "E_CORRUPT",
      "hdf5: fractal heap geometry",
    );
    if (root === undefined || objects === 0) return;
    const offsetBytes = Math.ceil(maxHeapBits / 8);
    const blockHeader = 5 + so + offsetBytes + (flags & 2 ? 4 : 0);
    const blocks: { at: number; size: number }[] = [];
    if (rows === 0) blocks.push({ at: this.abs(root, "fractal heap root block"), size: startSize });
    else {
      const rootAt = this.abs(root, "fractal heap indirect block");
      check(this.once(rootAt), "E_CORRUPT", `hdf5: fractal heap block at ${rootAt} is reached twice`);
      const sizeOf = (row: number) => startSize * 2 ** Math.max(0, row - 1);
      let directRows = 0;
      while (directRows < rows && sizeOf(directRows) <= maxDirect) directRows++;
      check(directRows === rows, "E_UNSUPPORTED", "hdf5: a fractal heap with indirect children");
      const ib = new Bytes(
        await this.read(rootAt, 5 + so + offsetBytes + rows * width * so, "fractal heap indirect block"),
        "fractal heap indirect block",
      );
      check(ib.take(4).toString("latin1") === "FHIB", "E_CORRUPT", `hdf5: no indirect block at ${rootAt}`);
      ib.skip(1 + so + offsetBytes);
      for (let row = 0; row < rows; row++) {
        for (let col = 0; col < width; col++) {
          const child = ib.uint(so);
          if (child !== undefined)
            blocks.push({ at: this.abs(child, "fractal heap direct block"), size: sizeOf(row) });
        }
      }
    }
    let left = objects;
    const found: [string, number][] = [];
    for (const block of blocks) {
      if (block !== blocks[0] || rows > 0)
        check(this.once(block.at), "E_CORRUPT", "hdf5: a heap block is reached twice");
      const bytes = await this.read(block.at, block.size, "fractal heap direct block");
      check(
        bytes.subarray(0, 4).toString("latin1") === "FHDB",
        "E_CORRUPT",
        `hdf5: no direct block at ${block.at}`,
      );
      let pos = blockHeader;
      while (left > 0 && pos < bytes.length && bytes[pos] === 1) {
        const b = new Bytes(bytes.subarray(pos), "link message in a fractal heap");
        const child = this.link(b);
        if (child) found.push(child);
        pos += b.pos;
        left--;
      }
      // The rest of a block the library filled in order is zeros. Anything else is the
      // space of a deleted link (a stale message, or live ones after it): not read.
      check(
        bytes.subarray(pos).every((x) => x === 0),
        "E_UNSUPPORTED",
        "hdf5: a fractal heap with deleted links",
      );
    }
    check(
      left === 0,
      "E_UNSUPPORTED",
      `hdf5: ${left} of ${objects} links not found in order in the fractal heap`,
    );
    children.push(...found);
  }

  private async dataset(
    path: string,
    messages: Message[],
    layout: Message,
    typeMessage: Message,
    spaceMessage: Message,
  ): Promise<void> {
    this.datasets++;
    if (typeMessage.flags & FLAG_SHARED) return this.skip("shared datatype");
    if (spaceMessage.flags & FLAG_SHARED) return this.skip("shared dataspace");
    const type = parseDatatype(typeMessage.data);
    const space = parseDataspaceMax(spaceMessage.data);
    if (space === undefined) return this.skip("null dataspace");
    const shape = space.shape;
    const elements = checkedProduct(shape);
    check(elements !== undefined, "E_CORRUPT", `hdf5: ${path} has an element count over 2^53`);
    const bytes = checkedProduct([elements], type.size);
    check(bytes !== undefined, "E_CORRUPT", `hdf5: ${path} has a size over 2^53`);
    if (messages.some((m) => m.type === MSG_EXTERNAL)) return this.skip("external storage");
    const filtered = messages.some((m) => m.type === MSG_FILTERS);
    const storage = await this.layout(layout, path, space, type.size, filtered);
    const dtype = type.dtype ?? type.name;
    if (storage.kind === "skip") return this.skip(storage.reason);
    if (storage.kind === "contiguous" || storage.kind === "compact") {
      if (storage.kind === "contiguous" && storage.addr === undefined) return this.skip("no data written");
      const at = storage.kind === "compact" ? storage.at : (storage.addr as number);
      check(
        storage.size === bytes || (storage.kind === "contiguous" && storage.size > bytes),
        "E_CORRUPT",
        `hdf5: ${path} stores ${storage.size} bytes for ${bytes}`,
      );
      check(at + bytes <= this.size, "E_TRUNCATED", `hdf5: ${path} runs past the end of the file`);
      this.tensors.push({ name: path, dtype, shape, offset: at, length: bytes });
      if (storage.kind === "contiguous" && bytes >= HDF5_MIN_REGION)
        this.region(path, at, bytes, type, shape);
      return;
    }
    // Chunked: each chunk a region; the dataset is a tensor when its chunks lie in the
    // file exactly as the contiguous array would.
    const chunkBytes = checkedProduct(storage.dims, type.size);
    check(chunkBytes !== undefined, "E_CORRUPT", `hdf5: ${path} has chunks over 2^53 bytes`);
    const sorted = [...storage.chunks].sort((a, b) => a.addr - b.addr);
    for (const c of sorted) {
      check(
        c.addr + c.size <= this.size,
        "E_TRUNCATED",
        `hdf5: a chunk of ${path} runs past the end of the file`,
      );
      for (const [i, o] of c.offsets.entries()) {
        check(
          o % storage.dims[i] === 0 && o < Math.max(shape[i], 1),
          "E_CORRUPT",
          `hdf5: ${path} has a chunk at offset ${o} in dimension ${i}`,
        );
      }
      check(
        c.filtered || c.size === chunkBytes,
        "E_CORRUPT",
        `hdf5: an unfiltered chunk of ${path} is ${c.size} bytes`,
      );
    }
    const inner = storage.dims.slice(1).every((d, i) => d === shape[i + 1]);
    const whole =
      !filtered &&
      sorted.length === Math.ceil(shape[0] / storage.dims[0]) &&
      (shape[0] ?? 1) % (storage.dims[0] ?? 1) === 0 &&
      inner &&
      sorted.every(
        (c, k) => c.addr === sorted[0].addr + k * chunkBytes && c.offsets[0] === k * storage.dims[0],
      );
    if (whole && sorted.length > 0) {
      this.tensors.push({ name: path, dtype, shape, offset: sorted[0].addr, length: bytes });
      if (bytes >= HDF5_MIN_REGION) this.region(path, sorted[0].addr, bytes, type, shape);
      return;
    }
    if (filtered) {
      this.skip("filtered chunks");
      for (const c of sorted) {
        if (c.size > 0)
          this.regions.push(
            rawRegion(`${path} chunk ${c.offsets.join(",")}`, c.addr, c.size, "filtered chunk"),
          );
      }
      return;
    }
    this.skip("chunks out of array order");
    // Chunks that follow one another in the file make one region of the dataset's type:
    // its shape is the rows they hold when they are whole rows in order, else flat.
    let run: Chunk[] = [];
    const flush = () => {
      if (run.length === 0) return;
      const first = run[0];
      const last = run[run.length - 1];
      const length = run.length * chunkBytes;
      const name =
        run.length === 1
          ? `${path} chunk ${first.offsets.join(",")}`
          : `${path} chunks ${first.offsets.join(",")} to ${last.offsets.join(",")}`;
      const rows = inner && run.every((c, k) => c.offsets[0] === first.offsets[0] + k * storage.dims[0]);
      const runShape = rows ? [run.length * storage.dims[0], ...storage.dims.slice(1)] : [length / type.size];
      if (length >= HDF5_MIN_REGION) this.region(name, first.addr, length, type, runShape);
      else this.regions.push(rawRegion(name, first.addr, length));
      run = [];
    };
    for (const c of sorted) {
      const previous = run[run.length - 1];
      if (previous && c.addr !== previous.addr + chunkBytes) flush();
      run.push(c);
    }
    flush();
  }

  private region(name: string, at: number, length: number, type: Datatype, shape: number[]): void {
    if (type.dtype !== undefined) this.regions.push(tensorRegion(name, at, length, type.dtype, shape));
    else this.regions.push(rawRegion(name, at, length, type.note ?? type.name));
  }

  /** The data layout message: where the dataset's bytes are. */
  private async layout(
    message: Message,
    path: string,
    space: { shape: number[]; max?: (number | undefined)[] },
    elementSize: number,
    filtered: boolean,
  ): Promise<Storage> {
    const shape = space.shape;
    const b = new Bytes(message.data, "data layout message");
    const version = b.u8();
    check(version >= 1 && version <= 4, "E_CORRUPT", `hdf5: data layout version ${version}`);
    if (version <= 2) {
      const rank = b.u8();
      const cls = b.u8();
      b.skip(5);
      if (cls !== 1) return { kind: "skip", reason: `layout v${version} class ${cls}` };
      const addr = b.uint(this.so);
      const dims: number[] = [];
      for (let i = 0; i < rank; i++) dims.push(b.u32());
      const size = checkedProduct(dims, elementSize);
      check(size !== undefined, "E_CORRUPT", `hdf5: ${path} layout size overflows`);
      return { kind: "contiguous", addr: addr === undefined ? undefined : this.abs(addr, path), size };
    }
    const cls = b.u8();
    if (cls === 0) {
      const size = b.u16();
      b.take(size);
      return { kind: "compact", at: message.at + b.pos - size, size };
    }
    if (cls === 1) {
      const addr = b.uint(this.so);
      const size = b.length(this.sl);
      return { kind: "contiguous", addr: addr === undefined ? undefined : this.abs(addr, path), size };
    }
    if (cls !== 2) return { kind: "skip", reason: `layout class ${cls}` };
    let flags = 0;
    if (version === 4) flags = b.u8();
    const rank = b.u8();
    check(
      rank === shape.length + 1,
      "E_CORRUPT",
      `hdf5: ${path} has chunks of ${rank - 1} dimensions for a rank ${shape.length} dataspace`,
    );
    let dims: number[] = [];
    if (version === 3) {
      const tree = b.uint(this.so);
      for (let i = 0; i < rank; i++) dims.push(b.u32());
      if (tree === undefined) return { kind: "chunked", dims: dims.slice(0, -1), chunks: [] };
      check(dims.at(-1) === elementSize, "E_CORRUPT", `hdf5: ${path} chunk element size ${dims.at(-1)}`);
      dims = dims.slice(0, -1);
      this.checkChunkDims(dims, path);
      const chunks: Chunk[] = [];
      await this.btreeV1(this.abs(tree, `${path} chunk B-tree`), 1, -1, rank, (key, child) => {
        check(chunks.length < MAX_CHUNKS, "E_LIMIT", `hdf5: ${path} has over ${MAX_CHUNKS} chunks`);
        const k = new Bytes(key, "chunk key");
        const size = k.u32();
        const mask = k.u32();
        const offsets: number[] = [];
        for (let i = 0; i < rank - 1; i++) offsets.push(k.length(8));
        chunks.push({ addr: child, size, offsets, filtered: filtered && mask !== 0xffffffff });
      });
      return { kind: "chunked", dims, chunks };
    }
    const width = b.u8();
    check(width >= 1 && width <= 8, "E_CORRUPT", `hdf5: ${path} chunk dimension width ${width}`);
    for (let i = 0; i < rank; i++) dims.push(b.length(width));
    check(dims.at(-1) === elementSize, "E_CORRUPT", `hdf5: ${path} chunk element size ${dims.at(-1)}`);
    dims = dims.slice(0, -1);
    this.checkChunkDims(dims, path);
    const index = b.u8();
    const chunkBytes = checkedProduct(dims, elementSize);
    check(chunkBytes !== undefined, "E_CORRUPT", `hdf5: ${path} chunk size overflows`);
    const grid = shape.map((d, i) => Math.ceil(d / dims[i]));
    const count = checkedProduct(grid);
    check(count !== undefined, "E_CORRUPT", `hdf5: ${path} chunk count overflows`);
    const offsetsOf = (k: number): number[] => {
      const out = new Array<number>(grid.length);
      for (let i = grid.length - 1; i >= 0; i--) {
        out[i] = (k % grid[i]) * dims[i];
        k = Math.floor(k / grid[i]);
      }
      return out;
    };
    if (index === 1) {
      let size = chunkBytes;
      let chunkFiltered = false;
      if (flags & 0x02) {
        size = b.length(this.sl);
        chunkFiltered = b.u32() !== 0xffffffff;
      }
      const addr = b.uint(this.so);
      if (addr === undefined) return { kind: "chunked", dims, chunks: [] };
      const at = this.abs(addr, `${path} chunk`);
      return {
        kind: "chunked",
        dims,
        chunks: [{ addr: at, size, offsets: shape.map(() => 0), filtered: chunkFiltered }],
      };
    }
    if (index === 2) {
      const addr = b.uint(this.so);
      if (addr === undefined) return { kind: "chunked", dims, chunks: [] };
      const at = this.abs(addr, `${path} chunks`);
      const total = checkedProduct([count], chunkBytes);
      check(
        total !== undefined && at + total <= this.size,
        "E_TRUNCATED",
        `hdf5: ${path} chunks run past the end of the file`,
      );
      check(count <= MAX_CHUNKS, "E_LIMIT", `hdf5: ${path} has over ${MAX_CHUNKS} chunks`);
      const chunks: Chunk[] = [];
      for (let k = 0; k < count; k++) {
        chunks.push({ addr: at + k * chunkBytes, size: chunkBytes, offsets: offsetsOf(k), filtered: false });
      }
      return { kind: "chunked", dims, chunks };
    }
    if (index === 3) {
      b.u8(); // page bits
      const addr = b.uint(this.so);
      if (addr === undefined) return { kind: "chunked", dims, chunks: [] };
      return this.fixedArray(this.abs(addr, `${path} fixed array`), path, dims, chunkBytes, count, offsetsOf);
    }
    if (index === 4) {
      b.skip(5); // the creation parameters, which the array's header repeats
      const addr = b.uint(this.so);
      if (addr === undefined) return { kind: "chunked", dims, chunks: [] };
      return this.extensibleArray(this.abs(addr, `${path} extensible array`), path, dims, chunkBytes, space);
    }
    return { kind: "skip", reason: `chunk index type ${index}` };
  }

  private checkChunkDims(dims: number[], path: string): void {
    check(
      dims.every((d) => d > 0),
      "E_CORRUPT",
      `hdf5: ${path} has a chunk dimension of 0`,
    );
  }

  /**
   * An extensible-array chunk index (layout v4, index type 4: one unlimited dimension):
   * the header, the index block's elements, then the data blocks of each super block in
   * turn (the first ones' addresses in the index block, the others' in super blocks),
   * up to the highest index set. Paged data blocks are not read. Element k is the chunk
   * at position k of the chunk grid with the unlimited dimension moved first.
   */
  private async extensibleArray(
    at: number,
    path: string,
    dims: number[],
    chunkBytes: number,
    space: { shape: number[]; max?: (number | undefined)[] },
  ): Promise<Storage> {
    check(this.once(at), "E_CORRUPT", `hdf5: extensible array at ${at} is reached twice`);
    const so = this.so;
    const sl = this.sl;
    const h = new Bytes(
      await this.read(at, 12 + 6 * sl + so, "extensible array header"),
      "extensible array header",
    );
    check(h.take(4).toString("latin1") === "EAHD", "E_CORRUPT", `hdf5: no extensible array header at ${at}`);
    check(h.u8() === 0, "E_CORRUPT", "hdf5: extensible array version");
    const client = h.u8();
    const elementSize = h.u8();
    const maxBits = h.u8();
    const indexElements = h.u8();
    const blockMin = h.u8();
    const superMinPointers = h.u8();
    const pageBits = h.u8();
    h.skip(4 * sl);
    const count = h.length(sl);
    h.skip(sl);
    const indexBlock = h.uint(so);
    const log2 = (v: number) => (v > 0 && (v & (v - 1)) === 0 ? Math.log2(v) : -1);
    check(
      client <= 1 &&
        (client === 0 ? elementSize === so : elementSize >= so + 5 && elementSize <= so + 12) &&
        maxBits >= 1 &&
        maxBits <= 64 &&
        log2(blockMin) >= 0 &&
        log2(blockMin) <= maxBits &&
        log2(superMinPointers) >= 1,
      "E_CORRUPT",
      `hdf5: ${path} extensible array parameters`,
    );
    check(count <= MAX_CHUNKS, "E_LIMIT", `hdf5: ${path} has over ${MAX_CHUNKS} chunks`);
    if (indexBlock === undefined || count === 0) return { kind: "chunked", dims, chunks: [] };
    const superBlocks = 1 + maxBits - log2(blockMin);
    const inIndex = 2 * log2(superMinPointers);
    const blockAddresses = 2 * (superMinPointers - 1);
    const superAddresses = Math.max(0, superBlocks - inIndex);
    const offsetBytes = Math.ceil(maxBits / 8);
    const ibAt = this.abs(indexBlock, `${path} extensible array index block`);
    const ib = new Bytes(
      await this.read(
        ibAt,
        6 + so + indexElements * elementSize + (blockAddresses + superAddresses) * so,
        "extensible array index block",
      ),
      "extensible array index block",
    );
    check(ib.take(4).toString("latin1") === "EAIB", "E_CORRUPT", `hdf5: no index block at ${ibAt}`);
    ib.skip(2 + so);
    const entries: Buffer[] = [];
    for (let i = 0; i < indexElements; i++) entries.push(ib.take(elementSize));
    const blocks: (number | undefined)[] = [];
    for (let i = 0; i < blockAddresses; i++) blocks.push(ib.uint(so));
    const supers: (number | undefined)[] = [];
    for (let i = 0; i < superAddresses; i++) supers.push(ib.uint(so));
    const unset = Buffer.alloc(elementSize, 0xff);
    let dblk = 0;
    for (let u = 0; u < superBlocks && entries.length < count; u++) {
      const perBlock = 2 ** Math.floor((u + 1) / 2) * blockMin;
      const nBlocks = 2 ** Math.floor(u / 2);
      if (perBlock > 2 ** pageBits) return { kind: "skip", reason: "paged extensible array" };
      let addresses: (number | undefined)[];
      if (u < inIndex) addresses = blocks.slice(dblk, dblk + nBlocks);
      else {
        const sb = supers[u - inIndex];
        if (sb === undefined) addresses = new Array<undefined>(nBlocks).fill(undefined);
        else {
          const sbAt = this.abs(sb, `${path} extensible array super block`);
          check(this.once(sbAt), "E_CORRUPT", `hdf5: super block at ${sbAt} is reached twice`);
          const sbb = new Bytes(
            await this.read(sbAt, 6 + so + offsetBytes + nBlocks * so, "extensible array super block"),
            "extensible array super block",
          );
          check(sbb.take(4).toString("latin1") === "EASB", "E_CORRUPT", `hdf5: no super block at ${sbAt}`);
          sbb.skip(2 + so + offsetBytes);
          addresses = [];
          for (let i = 0; i < nBlocks; i++) addresses.push(sbb.uint(so));
        }
      }
      dblk += nBlocks;
      for (const address of addresses) {
        if (entries.length >= count) break;
        if (address === undefined) {
          for (let i = 0; i < perBlock; i++) entries.push(unset);
          continue;
        }
        const blockAt = this.abs(address, `${path} extensible array data block`);
        check(this.once(blockAt), "E_CORRUPT", `hdf5: data block at ${blockAt} is reached twice`);
        const db = new Bytes(
          await this.read(
            blockAt,
            6 + so + offsetBytes + perBlock * elementSize,
            "extensible array data block",
          ),
          "extensible array data block",
        );
        check(db.take(4).toString("latin1") === "EADB", "E_CORRUPT", `hdf5: no data block at ${blockAt}`);
        db.skip(2 + so + offsetBytes);
        for (let i = 0; i < perBlock; i++) entries.push(db.take(elementSize));
      }
    }
    // Element k's chunk: the grid in C order with the unlimited dimension first.
    const shape = space.shape;
    const unlimited = space.max?.indexOf(undefined) ?? -1;
    const order =
      unlimited < 0
        ? shape.map((_, i) => i)
        : [unlimited, ...shape.map((_, i) => i).filter((i) => i !== unlimited)];
    const grid = order.map((i) => Math.ceil(Math.max(space.max?.[i] ?? shape[i], shape[i]) / dims[i]));
    const chunks: Chunk[] = [];
    for (let k = 0; k < Math.min(count, entries.length); k++) {
      const e = new Bytes(entries[k], "extensible array element");
      const addr = e.uint(so);
      if (addr === undefined) continue;
      let size = chunkBytes;
      let chunkFiltered = false;
      if (client === 1) {
        size = e.length(elementSize - so - 4);
        chunkFiltered = e.u32() !== 0xffffffff;
      }
      const offsets = new Array<number>(shape.length).fill(0);
      let rest = k;
      for (let j = order.length - 1; j >= 1; j--) {
        offsets[order[j]] = (rest % grid[j]) * dims[order[j]];
        rest = Math.floor(rest / grid[j]);
      }
      if (order.length > 0) offsets[order[0]] = rest * dims[order[0]];
      chunks.push({ addr: this.abs(addr, `${path} chunk`), size, offsets, filtered: chunkFiltered });
    }
    return { kind: "chunked", dims, chunks };
  }

  /** A fixed-array chunk index (layout v4, index type 3), unpaged. */
  private async fixedArray(
    at: number,
    path: string,
    dims: number[],
    chunkBytes: number,
    count: number,
    offsetsOf: (k: number) => number[],
  ): Promise<Storage> {
    check(this.once(at), "E_CORRUPT", `hdf5: fixed array at ${at} is reached twice`);
    const h = new Bytes(
      await this.read(at, 8 + this.sl + this.so + 4, "fixed array header"),
      "fixed array header",
    );
    check(h.take(4).toString("latin1") === "FAHD", "E_CORRUPT", `hdf5: no fixed array header at ${at}`);
    check(h.u8() === 0, "E_CORRUPT", "hdf5: fixed array version");
    const client = h.u8();
    const entrySize = h.u8();
    const pageBits = h.u8();
    const entries = h.length(this.sl);
    const block = h.uint(this.so);
    check(client <= 1, "E_CORRUPT", `hdf5: fixed array client ${client}`);
    check(entries === count, "E_CORRUPT", `hdf5: ${path} fixed array holds ${entries} chunks, not ${count}`);
    if (pageBits < 32 && entries > 2 ** pageBits) return { kind: "skip", reason: "paged fixed array" };
    if (block === undefined) return { kind: "chunked", dims, chunks: [] };
    const filtered = client === 1;
    const minEntry = filtered ? this.so + 1 + 4 : this.so;
    check(
      entrySize === (filtered ? entrySize : this.so) && entrySize >= minEntry && entrySize <= this.so + 8 + 4,
      "E_CORRUPT",
      `hdf5: fixed array entry size ${entrySize}`,
    );
    check(count <= MAX_CHUNKS, "E_LIMIT", `hdf5: ${path} has over ${MAX_CHUNKS} chunks`);
    const blockAt = this.abs(block, `${path} fixed array data block`);
    const total = 6 + this.so + count * entrySize;
    const d = new Bytes(await this.read(blockAt, total, "fixed array data block"), "fixed array data block");
    check(
      d.take(4).toString("latin1") === "FADB",
      "E_CORRUPT",
      `hdf5: no fixed array data block at ${blockAt}`,
    );
    d.skip(2 + this.so);
    const chunks: Chunk[] = [];
    for (let k = 0; k < count; k++) {
      const addr = d.uint(this.so);
      let size = chunkBytes;
      let chunkFiltered = false;
      if (filtered) {
        size = d.length(entrySize - this.so - 4);
        chunkFiltered = d.u32() !== 0xffffffff;
      }
      if (addr !== undefined) {
        chunks.push({
          addr: this.abs(addr, `${path} chunk`),
          size,
          offsets: offsetsOf(k),
          filtered: chunkFiltered,
        });
      }
    }
    return { kind: "chunked", dims, chunks };
  }
}

export async function recogniseHdf5(
  source: RandomAccessSource,
  options?: RecogniseOptions,
): Promise<Recognised> {
  const walker = new Hdf5Walker(source, maxHeaderBytes(options));
  const { version, root } = await walker.superblock();
  try {
    await walker.visit(root, "/", 0);
  } catch (error) {
    if (error instanceof RangeError) {
      throw new MmhError("E_LIMIT", `hdf5: structure too large to walk (${error.message})`);
    }
    throw error;
  }
  const regions = tileRegions(walker.regions, source.size, "hdf5 structure");
  const metadata: Record<string, unknown> = {
    superblock: version,
    offsetSize: walker.so,
    groups: walker.groups,
    datasets: walker.datasets,
    tensorCount: walker.tensors.length,
  };
  if (Object.keys(walker.skipped).length > 0) metadata.notRead = walker.skipped;
  const tensors = walker.tensors.sort((a, b) => a.offset - b.offset);
  return { format: "hdf5", regions, tensors, metadata };
}
