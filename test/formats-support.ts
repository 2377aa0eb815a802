/** Shared helpers for test/formats.*.test.ts. */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import type { ErrorCode } from "../src/common/errors.ts";
import { bufferSource, type RandomAccessSource } from "../src/common/source.ts";
import { type Recognised, type RecogniseOptions, recognise } from "../src/formats/index.ts";
import { compressFile, decompress } from "../src/index.ts";
import { readTensor, rejectsWith } from "./support.ts";

const FIXTURES = new URL("./fixtures/formats/", import.meta.url);

export function fixture(name: string): Buffer {
  return readFileSync(new URL(name, FIXTURES));
}

/** What scripts/make-format-fixtures.py recorded about each fixture. */
// biome-ignore lint/suspicious/noExplicitAny: free-form JSON written by the fixture script
export const expected: { files: Record<string, any> } = JSON.parse(
  readFileSync(new URL("expected.json", FIXTURES), "utf8"),
);

export function recogniseBytes(bytes: Uint8Array, options?: RecogniseOptions): Promise<Recognised> {
  return recognise(bufferSource(bytes), options);
}

/** Check the tiling invariant independently of the implementation's own check. */
export function assertTiling(result: Recognised, size: number): void {
  let pos = 0;
  for (const r of result.regions) {
    assert.equal(r.offset, pos, `region "${r.name}" starts at ${r.offset}, expected ${pos}`);
    assert.ok(r.length > 0, `region "${r.name}" is empty`);
    assert.equal(r.kind === "tensor", r.dtype !== null, `region "${r.name}" kind/dtype mismatch`);
    pos += r.length;
  }
  assert.equal(pos, size, "regions do not reach the end of the file");
  assert.ok(JSON.stringify(result.metadata ?? {}).length < 64 * 1024, "metadata over 64 KiB");
}

export function regionNamed(result: Recognised, name: string) {
  const region = result.regions.find((r) => r.name === name);
  assert.ok(region, `no region named ${name}`);
  return region;
}

export function tensorNamed(result: Recognised, name: string) {
  const tensor = result.tensors.find((t) => t.name === name);
  assert.ok(tensor, `no tensor named ${name}`);
  return tensor;
}

export function f16ToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 31) return frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

export function bf16ToNumber(h: number): number {
  const b = Buffer.alloc(4);
  b.writeUInt32LE((h << 16) >>> 0);
  return b.readFloatLE(0);
}

/** Decode the first `n` elements of a little-endian buffer of `dtype`. */
export function decode(bytes: Buffer, dtype: string, n: number): (number | boolean | bigint)[] {
  const out: (number | boolean | bigint)[] = [];
  for (let i = 0; i < n; i++) {
    switch (dtype) {
      case "F32":
        out.push(bytes.readFloatLE(i * 4));
        break;
      case "F64":
        out.push(bytes.readDoubleLE(i * 8));
        break;
      case "F16":
        out.push(f16ToNumber(bytes.readUInt16LE(i * 2)));
        break;
      case "BF16":
        out.push(bf16ToNumber(bytes.readUInt16LE(i * 2)));
        break;
      case "I64":
        out.push(Number(bytes.readBigInt64LE(i * 8)));
        break;
      case "I32":
        out.push(bytes.readInt32LE(i * 4));
        break;
      case "U8":
        out.push(bytes[i]);
        break;
      case "BOOL":
        out.push(bytes[i] !== 0);
        break;
      default:
        throw new Error(`decode: no decoder for ${dtype}`);
    }
  }
  return out;
}

export const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** What a fixture script recorded of each file's tensors: dtype, shape and the sha256 of the bytes. */
export type TensorExpectations = Record<
  string,
  Record<string, { dtype: string; shape: number[]; sha256: string }>
>;

/** The `files` of a fixture script's expectations (test/fixtures/formats/NAME). */
export function expectations(name: string): TensorExpectations {
  return JSON.parse(readFileSync(new URL(name, FIXTURES), "utf8")).files;
}

/** `recogniser` on `bytes` must reject quickly with `code`, and a message matching `message`. */
export async function refuseWith(
  recogniser: (source: RandomAccessSource, options?: RecogniseOptions) => Promise<Recognised>,
  bytes: Uint8Array,
  code: ErrorCode | ErrorCode[],
  message?: RegExp,
  maxHeaderBytes?: number,
): Promise<void> {
  const error = await quickly(() =>
    rejectsWith(recogniser(bufferSource(bytes), maxHeaderBytes ? { maxHeaderBytes } : undefined), code),
  );
  if (message) assert.match(error.message, message);
}

/**
 * Each fixture through the public API: compressFile, a decompress round trip, and
 * readTensor of every expected tensor, whose bytes must have the recorded sha256.
 */
export async function checkTensorsRoundTrip(files: TensorExpectations): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "mmh-formats-"));
  try {
    for (const [name, tensors] of Object.entries(files)) {
      const bytes = fixture(name);
      const source = join(dir, name);
      writeFileSync(source, bytes);
      await compressFile(source, `${source}.mmh`);
      assert.ok(
        Buffer.from(await decompress(readFileSync(`${source}.mmh`))).equals(bytes),
        `${name}: round trip`,
      );
      for (const [tensorName, want] of Object.entries(tensors)) {
        const { data } = await readTensor(`${source}.mmh`, tensorName);
        assert.equal(sha256(data), want.sha256, `${name}: ${tensorName}`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Time a piece of work; hostile inputs must be refused quickly. */
export async function quickly<T>(work: () => Promise<T>, ms = 2000): Promise<T> {
  // CPU time, not wall time: a loop that runs away (a hostile count walked for ever, a
  // quadratic copy) spends CPU, while a busy machine only stretches the wall clock. A
  // wait that never ends spends none, and is caught by the wall limit, 15 times larger.
  const cpu = process.cpuUsage();
  const start = performance.now();
  try {
    return await work();
  } finally {
    const used = process.cpuUsage(cpu);
    const cpuMs = (used.user + used.system) / 1000;
    const wallMs = performance.now() - start;
    assert.ok(cpuMs < ms, `took ${cpuMs.toFixed(0)} ms of CPU`);
    assert.ok(wallMs < ms * 15, `took ${wallMs.toFixed(0)} ms`);
  }
}

// ---- a stored-only zip writer and a tiny pickle assembler, for hand-made torch files -------

/** A zip of stored members (method 0), written from APPNOTE's layout. */
export function storedZip(members: [string, Uint8Array][]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const [name, data] of members) {
    const nameBytes = Buffer.from(name, "utf8");
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(nameBytes.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, nameBytes, Buffer.from(data));
    centrals.push(central, nameBytes);
    offset += 30 + nameBytes.length + data.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(members.length, 8);
  end.writeUInt16LE(members.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

type Piece = number | number[] | Uint8Array;

/** Concatenate opcodes (numbers) and their arguments (byte arrays). */
export function pkl(...pieces: Piece[]): Buffer {
  return Buffer.concat(
    pieces.map((p) => (typeof p === "number" ? Buffer.from([p]) : Buffer.from(p as number[] | Uint8Array))),
  );
}

export const op = {
  proto: (n: number) => pkl(0x80, n),
  global: (module: string, name: string) => Buffer.from(`c${module}\n${name}\n`, "utf8"),
  str: (s: string) => {
    const b = Buffer.from(s, "utf8");
    const n = Buffer.alloc(4);
    n.writeUInt32LE(b.length);
    return pkl(0x58, n, b);
  },
  int: (v: number) => {
    if (v >= 0 && v < 256) return pkl(0x4b, v);
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    return pkl(0x4a, b);
  },
  ints: (values: number[]) => pkl(0x28, ...values.map((v) => op.int(v)), 0x74),
  MARK: 0x28,
  TUPLE: 0x74,
  EMPTY_TUPLE: 0x29,
  EMPTY_LIST: 0x5d,
  EMPTY_DICT: 0x7d,
  APPEND: 0x61,
  SETITEM: 0x73,
  SETITEMS: 0x75,
  REDUCE: 0x52,
  BINPERSID: 0x51,
  NEWFALSE: 0x89,
  STOP: 0x2e,
  put: (i: number) => pkl(0x71, i),
  get: (i: number) => pkl(0x68, i),
};

export interface FakeTensor {
  name: string;
  storageType: string;
  key: string;
  numel: number;
  offset?: number;
  size: number[];
  stride: number[];
}

/** A pickled OrderedDict of _rebuild_tensor_v2 calls, the way torch.save writes a state dict. */
export function stateDictPickle(tensors: FakeTensor[]): Buffer {
  const parts: Piece[] = [
    op.proto(2),
    op.global("collections", "OrderedDict"),
    op.EMPTY_TUPLE,
    op.REDUCE,
    op.MARK,
  ];
  for (const t of tensors) {
    parts.push(
      op.str(t.name),
      op.global("torch._utils", "_rebuild_tensor_v2"),
      op.MARK,
      op.MARK,
      op.str("storage"),
      op.global("torch", t.storageType),
      op.str(t.key),
      op.str("cpu"),
      op.int(t.numel),
      op.TUPLE,
      op.BINPERSID,
      op.int(t.offset ?? 0),
      op.ints(t.size),
      op.ints(t.stride),
      op.NEWFALSE,
      op.global("collections", "OrderedDict"),
      op.EMPTY_TUPLE,
      op.REDUCE,
      op.TUPLE,
      op.REDUCE,
    );
  }
  parts.push(op.SETITEMS, op.STOP);
  return pkl(...parts);
}

/** A torch.save-shaped zip: archive/data.pkl, archive/data/<key>, archive/version. */
export function torchZip(
  pickle: Uint8Array,
  storages: Record<string, Uint8Array>,
  prefix = "archive/",
): Buffer {
  return storedZip([
    [`${prefix}data.pkl`, pickle],
    ...Object.entries(storages).map(([key, data]): [string, Uint8Array] => [`${prefix}data/${key}`, data]),
    [`${prefix}version`, Buffer.from("3\n")],
  ]);
}
