/**
 * The two record kinds that stand for a chunk by pointing elsewhere (docs/FORMAT.md §6.3,
 * §6.4): `DUPE`, a copy of an earlier chunk of the same file, and `DLTA`, a difference from
 * a range of a base file. Both are resolved here for every reader: the random-access
 * reader, and the front-to-back decoder.
 */

import { join, relative } from "node:path";
import { codecById } from "../codecs/registry.ts";
import { readU64, writeU64 } from "../common/bytes.ts";
import { crc32 } from "../common/crc.ts";
import { check, MmhError, toMmhError } from "../common/errors.ts";
import { readdir, stat } from "../common/fsp.ts";
import { fileSource, type RandomAccessSource } from "../common/source.ts";
import { MAX_CHUNK_SIZE } from "../container/format.ts";
import { decodeGroups, type Group, groupedWidth, isGroupedMode, parseGroups } from "./grouped.ts";
import { isLowRankMode, type LowRankBlock, lowRankWidth, parseBlocks, predict } from "./lowrank.ts";

export const DUPE_CODEC = "DUPE";
export const DELTA_CODEC = "DLTA";
/** Params of a DUPE record: the target's chunk number. */
export const DUPE_PARAMS = 8;
/** Fixed params of a DLTA record, before the inner codec's own. */
export const DELTA_FIXED_PARAMS = 45;
/** What a front-to-back decoder that cannot seek keeps of earlier records for DUPE targets. */
export const REF_CACHE_BYTES = 4 << 20;

/** Delta modes: XOR, or subtraction of 2- or 4-byte little-endian elements. */
export const DELTA_XOR = 0;
export const DELTA_SUB16 = 1;
export const DELTA_SUB32 = 2;
/** Subtraction with the signed difference zigzag-coded (0, -1, 1, -2, ... as 0, 1, 2, 3, ...). */
export const DELTA_ZIGZAG16 = 3;
export const DELTA_ZIGZAG32 = 4;
/**
 * The largest mode: 5 to 7 are zigzag-coded differences from a low-rank prediction
 * (lowrank.ts), 8 to 10 zigzag-coded differences grouped by the base's exponent (grouped.ts).
 */
export const DELTA_MAX_MODE = 10;
const MODE_WIDTH = [1, 2, 4, 2, 4, 4, 2, 2, 4, 2, 2];

/** A chunk record's fields a decoder needs. */
export interface RecordParts {
  where: string;
  codec: string;
  params: Uint8Array;
  payload: Uint8Array;
  rawLength: number;
  rawCrc: number;
}

/** The index facts of an earlier record that a DUPE record is checked against. */
export interface TargetFacts {
  codec: string;
  rawLength: number;
  rawCrc: number;
}

export function isSpecial(codec: string): boolean {
  return codec === DUPE_CODEC || codec === DELTA_CODEC;
}

export function encodeDupeParams(target: number): Uint8Array {
  const out = Buffer.alloc(DUPE_PARAMS);
  writeU64(out, target, 0);
  return out;
}

/**
 * Check a DUPE record (chunk number `self`) and return its target's chunk number.
 * `target(t)` gives the index facts of an earlier chunk, or undefined past the end.
 */
export function dupeTarget(
  record: RecordParts,
  self: number,
  target: (t: number) => TargetFacts | undefined,
): number {
  const { where } = record;
  check(record.params.length === DUPE_PARAMS, "E_CORRUPT", `${where}: DUPE params are not 8 bytes`);
  check(record.payload.length === 0, "E_CORRUPT", `${where}: a DUPE record has a payload`);
  check(record.rawLength <= MAX_CHUNK_SIZE, "E_CORRUPT", `${where}: a DUPE record over 64 MiB`);
  const t = readU64(
    Buffer.from(record.params.buffer, record.params.byteOffset, 8),
    0,
    `${where}: DUPE target`,
  );
  check(t !== self, "E_CORRUPT", `${where}: a DUPE record refers to itself`);
  check(t < self, "E_CORRUPT", `${where}: a DUPE record refers to chunk ${t}, not an earlier one`);
  const facts = target(t);
  check(
    facts !== undefined,
    "E_CORRUPT",
    `${where}: a DUPE record refers to chunk ${t}, which is not in the file`,
  );
  check(
    facts.codec !== DUPE_CODEC,
    "E_CORRUPT",
    `${where}: a DUPE record refers to chunk ${t}, itself a DUPE record (no chains)`,
  );
  check(
    facts.rawLength === record.rawLength && facts.rawCrc === record.rawCrc,
    "E_CORRUPT",
    `${where}: a DUPE record's length or CRC-32 differs from its target, chunk ${t}`,
  );
  return t;
}

// ---- deltas ---------------------------------------------------------------------------------

export interface DeltaParams {
  mode: number;
  baseSha256: string;
  baseOffset: number;
  inner: string;
  innerParams: Uint8Array;
  /** Modes 5 to 7: the blocks of the low-rank prediction, and the bytes of their factors. */
  blocks?: LowRankBlock[];
  factors?: number;
  /** Modes 8 to 10: the exponent → group map, and the groups. */
  groups?: { map: Uint8Array; groups: Group[] };
}

/** The params; for modes 5 to 7, `table` is the block table (lowrank.ts encodeBlocks), before the inner params. */
export function encodeDeltaParams(p: DeltaParams, table: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = Buffer.alloc(DELTA_FIXED_PARAMS + table.length + p.innerParams.length);
  out[0] = p.mode;
  Buffer.from(p.baseSha256, "hex").copy(out, 1);
  writeU64(out, p.baseOffset, 33);
  out.write(p.inner, 41, "latin1");
  out.set(table, DELTA_FIXED_PARAMS);
  out.set(p.innerParams, DELTA_FIXED_PARAMS + table.length);
  return out;
}

export function parseDeltaParams(record: RecordParts): DeltaParams {
  const { where, params } = record;
  check(params.length >= DELTA_FIXED_PARAMS, "E_CORRUPT", `${where}: DLTA params under 45 bytes`);
  const buf = Buffer.from(params.buffer, params.byteOffset, params.length);
  const mode = buf[0];
  check(mode <= DELTA_MAX_MODE, "E_CORRUPT", `${where}: DLTA mode ${mode} is not 0 to ${DELTA_MAX_MODE}`);
  check(
    record.rawLength % MODE_WIDTH[mode] === 0,
    "E_CORRUPT",
    `${where}: DLTA mode ${mode} on ${record.rawLength} bytes, not whole elements`,
  );
  const inner = buf.toString("latin1", 41, 45);
  check(!isSpecial(inner), "E_CORRUPT", `${where}: DLTA inner codec ${inner} is not a codec`);
  const out: DeltaParams = {
    mode,
    baseSha256: buf.toString("hex", 1, 33),
    baseOffset: readU64(buf, 33, `${where}: DLTA base offset`),
    inner,
    innerParams: buf.subarray(DELTA_FIXED_PARAMS),
  };
  if (isLowRankMode(mode)) {
    const table = parseBlocks(
      buf.subarray(DELTA_FIXED_PARAMS),
      mode,
      record.rawLength,
      record.payload.length,
      where,
    );
    out.blocks = table.blocks;
    out.factors = table.factors;
    out.innerParams = buf.subarray(DELTA_FIXED_PARAMS + table.length);
  }
  if (isGroupedMode(mode)) {
    check(inner === "NONE", "E_CORRUPT", `${where}: DLTA mode ${mode} with inner codec ${inner}, not NONE`);
    const table = parseGroups(buf.subarray(DELTA_FIXED_PARAMS), mode, record.payload.length, where);
    check(
      table.length === params.length - DELTA_FIXED_PARAMS,
      "E_CORRUPT",
      `${where}: DLTA params go on past the group table`,
    );
    out.groups = { map: table.map, groups: table.groups };
    out.innerParams = new Uint8Array(0);
  }
  return out;
}

/** The difference of raw from base in `mode` (FORMAT.md §6.4), into a new buffer. */
export function makeDelta(raw: Uint8Array, base: Uint8Array, mode: number): Buffer {
  const n = raw.length;
  const out = Buffer.allocUnsafe(n);
  if (mode === DELTA_XOR) {
    // Word at a time where alignment allows.
    let i = 0;
    if (raw.byteOffset % 4 === 0 && base.byteOffset % 4 === 0 && out.byteOffset % 4 === 0) {
      const words = n >>> 2;
      const a = new Uint32Array(raw.buffer, raw.byteOffset, words);
      const b = new Uint32Array(base.buffer, base.byteOffset, words);
      const o = new Uint32Array(out.buffer, out.byteOffset, words);
      for (let w = 0; w < words; w++) o[w] = a[w] ^ b[w];
      i = words * 4;
    }
    for (; i < n; i++) out[i] = raw[i] ^ base[i];
  } else if (mode === DELTA_SUB16 || mode === DELTA_ZIGZAG16) {
    const zigzag = mode === DELTA_ZIGZAG16;
    for (let i = 0; i < n; i += 2) {
      let d = ((raw[i] | (raw[i + 1] << 8)) - (base[i] | (base[i + 1] << 8))) & 0xffff;
      if (zigzag) d = ((d << 1) ^ -(d >>> 15)) & 0xffff;
      out[i] = d & 0xff;
      out[i + 1] = d >>> 8;
    }
  } else {
    const zigzag = mode === DELTA_ZIGZAG32;
    for (let i = 0; i < n; i += 4) {
      const r = (raw[i] | (raw[i + 1] << 8) | (raw[i + 2] << 16) | (raw[i + 3] << 24)) >>> 0;
      const b = (base[i] | (base[i + 1] << 8) | (base[i + 2] << 16) | (base[i + 3] << 24)) >>> 0;
      let d = (r - b) >>> 0;
      if (zigzag) d = ((d << 1) ^ (d >> 31)) >>> 0;
      out[i] = d & 0xff;
      out[i + 1] = (d >>> 8) & 0xff;
      out[i + 2] = (d >>> 16) & 0xff;
      out[i + 3] = d >>> 24;
    }
  }
  return out;
}

/** Undo makeDelta: the content from the base and the difference, written over `delta`. */
export function applyDelta(delta: Uint8Array, base: Uint8Array, mode: number): Uint8Array {
  const n = delta.length;
  if (mode === DELTA_XOR) {
    for (let i = 0; i < n; i++) delta[i] ^= base[i];
  } else if (mode === DELTA_SUB16 || mode === DELTA_ZIGZAG16) {
    const zigzag = mode === DELTA_ZIGZAG16;
    for (let i = 0; i < n; i += 2) {
      let d = delta[i] | (delta[i + 1] << 8);
      if (zigzag) d = (d >>> 1) ^ -(d & 1);
      const v = (d + (base[i] | (base[i + 1] << 8))) & 0xffff;
      delta[i] = v & 0xff;
      delta[i + 1] = v >>> 8;
    }
  } else {
    const zigzag = mode === DELTA_ZIGZAG32;
    for (let i = 0; i < n; i += 4) {
      let d = (delta[i] | (delta[i + 1] << 8) | (delta[i + 2] << 16) | (delta[i + 3] << 24)) >>> 0;
      if (zigzag) d = ((d >>> 1) ^ -(d & 1)) >>> 0;
      const b = (base[i] | (base[i + 1] << 8) | (base[i + 2] << 16) | (base[i + 3] << 24)) >>> 0;
      const v = (d + b) >>> 0;
      delta[i] = v & 0xff;
      delta[i + 1] = (v >>> 8) & 0xff;
      delta[i + 2] = (v >>> 16) & 0xff;
      delta[i + 3] = v >>> 24;
    }
  }
  return delta;
}

/** The files given as a base (a file, or every regular file of a folder), found by their SHA-256. */
export class BaseSet {
  readonly #path: string | undefined;
  #bySha: Promise<Map<string, { path: string; name: string }>> | undefined;
  readonly #open = new Map<string, Promise<RandomAccessSource>>();

  constructor(path: string | undefined) {
    this.#path = path;
  }

  get given(): boolean {
    return this.#path !== undefined;
  }

  /** Every file of the base with its name (relative to the folder, or its own) and SHA-256. */
  files(): Promise<Map<string, { path: string; name: string }>> {
    this.#bySha ??= (async () => {
      const root = this.#path!;
      const map = new Map<string, { path: string; name: string }>();
      for (const path of await baseFiles(root)) {
        const sha = await sha256OfFile(path);
        if (!map.has(sha))
          map.set(sha, { path, name: path === root ? baseName(root) : relative(root, path) });
      }
      return map;
    })();
    return this.#bySha;
  }

  /** The base file whose SHA-256 is `sha`: E_NOT_FOUND without a base, E_BASE_MISMATCH when none has it. */
  source(sha: string, where: string): Promise<RandomAccessSource> {
    if (!this.#path)
      return Promise.reject(
        new MmhError(
          "E_NOT_FOUND",
          `${where}: coded against a base file (sha256 ${sha}) that was not given (--base, option base)`,
        ),
      );
    let opened = this.#open.get(sha);
    if (!opened) {
      opened = this.files().then((files) => {
        const file = files.get(sha);
        if (!file)
          throw new MmhError(
            "E_BASE_MISMATCH",
            `${where}: coded against a base with sha256 ${sha}; no file of ${this.#path} has it`,
          );
        return fileSource(file.path);
      });
      this.#open.set(sha, opened);
    }
    return opened;
  }

  /** R bytes of the base `sha` from `offset`, checked to lie inside it (E_BASE_MISMATCH). */
  async read(sha: string, offset: number, length: number, where: string): Promise<Buffer> {
    const source = await this.source(sha, where);
    check(
      offset + length <= source.size,
      "E_BASE_MISMATCH",
      `${where}: the base (sha256 ${sha}) is shorter than the ${offset + length} bytes the record needs`,
    );
    return source.read(offset, length);
  }

  async close(): Promise<void> {
    for (const opened of this.#open.values()) {
      await opened.then(
        (source) => source.close(),
        () => undefined,
      );
    }
    this.#open.clear();
  }
}

function baseName(path: string): string {
  return path.split("/").filter(Boolean).at(-1) ?? path;
}

/** The regular files under `root` (or root itself when it is a file), sorted. */
export async function baseFiles(root: string): Promise<string[]> {
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(root);
  } catch (error) {
    throw toMmhError(error, `cannot read the base ${root}`);
  }
  if (st.isFile()) return [root];
  check(st.isDirectory(), "E_BAD_OPTION", `the base ${root} is not a file or a folder`);
  const out: string[] = [];
  const visit = async (dir: string): Promise<void> => {
    const names = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const entry of names) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await visit(path);
      else if (entry.isFile()) out.push(path);
    }
  };
  await visit(root);
  return out;
}

export async function sha256OfFile(path: string): Promise<string> {
  const source = await fileSource(path);
  try {
    const hash = process.getBuiltinModule("node:crypto").createHash("sha256"); // loaded at first use (engine/hashing.ts)
    for (let at = 0; at < source.size; at += 16 << 20)
      hash.update(await source.read(at, Math.min(16 << 20, source.size - at)));
    return hash.digest("hex");
  } finally {
    await source.close();
  }
}

/**
 * Decode a special record's content, given the record (DUPE: its target's record, already
 * fetched and checked) and, for DLTA, the base. The result is checked against the record's
 * raw CRC.
 */
export async function decodeDelta(
  record: RecordParts,
  bases: BaseSet,
  into?: Uint8Array,
): Promise<Uint8Array> {
  const p = parseDeltaParams(record);
  const base = await bases.read(p.baseSha256, p.baseOffset, record.rawLength, record.where);
  // Modes 5 to 7: the payload starts with the factors; the prediction stands for the base.
  const factors = p.factors ?? 0;
  const payload = record.payload.subarray(factors);
  const against = p.blocks
    ? predict(base, p.blocks, record.payload.subarray(0, factors), p.mode, record.where)
    : base;
  const width = p.blocks ? lowRankWidth(p.mode) : p.groups ? groupedWidth(p.mode) : 0;
  const mode = width === 0 ? p.mode : width === 4 ? DELTA_ZIGZAG32 : DELTA_ZIGZAG16;
  if (p.groups) {
    const diff = decodeGroups(record.payload, base, p.mode, p.groups.map, p.groups.groups, record.where);
    const raw = applyDelta(diff, base, mode);
    check(crc32(raw) === record.rawCrc, "E_CHECKSUM", `${record.where}: checksum mismatch`);
    return raw;
  }
  let diff: Uint8Array;
  try {
    diff = codecById(p.inner).decode(payload, p.innerParams, record.rawLength, into);
  } catch (error) {
    if (error instanceof MmhError)
      throw new MmhError(error.code, `${record.where}: ${error.message}`, { cause: error });
    throw new MmhError("E_CORRUPT", `${record.where}: payload does not decode`, { cause: error });
  }
  check(
    diff.length === record.rawLength,
    "E_CORRUPT",
    `${record.where}: decoded length differs from the record`,
  );
  // The codec's output may be its own memory it shares with nothing: written over in place.
  const shared = diff.buffer === record.payload.buffer;
  const raw = applyDelta(shared ? Buffer.from(diff) : diff, against, mode);
  check(crc32(raw) === record.rawCrc, "E_CHECKSUM", `${record.where}: checksum mismatch`);
  return raw;
}
