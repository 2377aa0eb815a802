/**
 * PyTorch checkpoints written by torch.save.
 *
 * The zip format (torch ≥ 1.6): `<prefix>/data.pkl` (the pickled object), one stored
 * member `<prefix>/data/<key>` per storage, `<prefix>/version`, maybe `byteorder`. The
 * legacy format (torch.save(..., _use_new_zipfile_serialization=False)): five pickles (magic
 * number, protocol version, sys_info, the object, the storage keys) followed by each
 * storage as a u64 element count and its bytes.
 *
 * The pickle is interpreted symbolically (./pickle.ts): nothing is imported or called.
 * Persistent ids ('storage', torch.FloatStorage, key, location, numel) give each storage
 * its dtype; torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...) calls
 * give the named tensors, their key path in the object is their name.
 */
import { inflateRawSync } from "node:zlib";
import type { DTypeName, Region } from "../common/dtype.ts";
import { check, MmhError } from "../common/errors.ts";
import type { RandomAccessSource } from "../common/source.ts";
import {
  globalName,
  isObject,
  type PyCall,
  type PyPid,
  type PyTuple,
  type PyValue,
  runPickle,
} from "./pickle.ts";
import { maxHeaderBytes, rawRegion, readAt, tensorRegion, tileRegions } from "./regions.ts";
import type { Recognised, RecogniseOptions, TensorEntry } from "./types.ts";
import type { ZipMember } from "./zip.ts";

export { looksLikeLegacyTorch } from "./magic.ts";

/** data.pkl (or the legacy pickles) larger than this is E_LIMIT. */
export const TORCH_MAX_PICKLE = 64 * 1024 * 1024;
const MAX_WALK_DEPTH = 256;

/** Storage type name → [element bytes, DTypeName when the bytes are plain values]. */
const STORAGE_TYPES: Record<string, [number, DTypeName | null]> = {
  DoubleStorage: [8, "F64"],
  FloatStorage: [4, "F32"],
  HalfStorage: [2, "F16"],
  BFloat16Storage: [2, "BF16"],
  LongStorage: [8, "I64"],
  IntStorage: [4, "I32"],
  ShortStorage: [2, "I16"],
  CharStorage: [1, "I8"],
  ByteStorage: [1, "U8"],
  BoolStorage: [1, "BOOL"],
  ComplexFloatStorage: [8, "C64"],
  ComplexDoubleStorage: [16, null],
  UInt16Storage: [2, "U16"],
  UInt32Storage: [4, "U32"],
  UInt64Storage: [8, "U64"],
  Float8_e4m3fnStorage: [1, "F8_E4M3"],
  Float8_e5m2Storage: [1, "F8_E5M2"],
  Float8_e8m0fnuStorage: [1, "F8_E8M0"],
  Float8_e4m3fnuzStorage: [1, null],
  Float8_e5m2fnuzStorage: [1, null],
  QInt8Storage: [1, null],
  QUInt8Storage: [1, null],
  QInt32Storage: [4, null],
  QUInt4x2Storage: [1, null],
  QUInt2x4Storage: [1, null],
  UntypedStorage: [1, null],
};

/** The archive prefix ("archive/") if these members are a torch.save zip. */
export function torchPrefix(members: readonly ZipMember[]): string | undefined {
  const names = new Set(members.map((m) => m.name));
  for (const m of members) {
    const match = /^([^/]*\/)?data\.pkl$/.exec(m.name);
    if (!match) continue;
    const prefix = match[1] ?? "";
    if (names.has(`${prefix}version`) || members.some((o) => o.name.startsWith(`${prefix}data/`)))
      return prefix;
  }
  return undefined;
}

interface Storage {
  key: string;
  typeName: string;
  elementSize: number | undefined;
  dtype: DTypeName | null;
  numel: number;
}

interface TensorRef {
  name: string;
  key: string;
  /** In elements, from the storage's start (legacy views included). */
  storageOffset: number;
  size: number[];
  stride: number[];
}

function nonNegativeInt(v: PyValue, what: string): number {
  check(
    typeof v === "number" && Number.isSafeInteger(v) && v >= 0,
    "E_CORRUPT",
    `torch: ${what} is not a non-negative integer`,
  );
  return v as number;
}

function intTuple(v: PyValue, what: string): number[] {
  check(isObject<PyTuple>(v, "tuple"), "E_CORRUPT", `torch: ${what} is not a tuple`);
  return (v as PyTuple).items.map((x, i) => nonNegativeInt(x, `${what}[${i}]`));
}

/** Parse ('storage', type, key, location, numel[, view]) into a storage and a view offset. */
function parseStoragePid(pid: PyValue, storages: Map<string, Storage>): { key: string; viewOffset: number } {
  const p = isObject<PyPid>(pid, "pid") ? pid.pid : pid;
  check(
    isObject<PyTuple>(p, "tuple") && p.items[0] === "storage" && p.items.length >= 5,
    "E_UNSUPPORTED",
    "torch: a persistent id that is not a ('storage', ...) tuple",
  );
  const items = (p as PyTuple).items;
  const typeName = globalName(items[1]);
  check(typeName !== undefined, "E_CORRUPT", "torch: storage type is not a global name");
  const short = typeName.slice(typeName.lastIndexOf(".") + 1);
  const keyValue = items[2];
  check(
    typeof keyValue === "string" || typeof keyValue === "number",
    "E_CORRUPT",
    "torch: storage key is not a string",
  );
  const key = String(keyValue);
  const numel = nonNegativeInt(items[4], `storage ${key} size`);
  const known = STORAGE_TYPES[short];
  const storage: Storage = {
    key,
    typeName: short,
    elementSize: known?.[0],
    dtype: known?.[1] ?? null,
    numel,
  };
  const previous = storages.get(key);
  if (previous) {
    check(
      previous.typeName === storage.typeName && previous.numel === storage.numel,
      "E_CORRUPT",
      `torch: storage ${key} is declared twice with different types or sizes`,
    );
  } else {
    storages.set(key, storage);
  }
  // Legacy files may name a view of a root storage: (view_key, offset, view_size).
  let viewOffset = 0;
  const view = items[5];
  if (view !== undefined && view !== null) {
    check(
      isObject<PyTuple>(view, "tuple") && view.items.length === 3,
      "E_CORRUPT",
      "torch: bad storage view",
    );
    viewOffset = nonNegativeInt((view as PyTuple).items[1], "storage view offset");
  }
  return { key, viewOffset };
}

const REBUILD_TENSOR = new Set([
  "torch._utils._rebuild_tensor",
  "torch._utils._rebuild_tensor_v2",
  "torch._utils._rebuild_tensor_v3",
]);
const REBUILD_WRAPPER = new Set([
  "torch._utils._rebuild_parameter",
  "torch._utils._rebuild_parameter_with_state",
]);

/** If `v` rebuilds a tensor, its storage view; undefined if it is something else. */
function asTensor(v: PyCall, storages: Map<string, Storage>, depth = 0): Omit<TensorRef, "name"> | undefined {
  const fn = globalName(v.fn);
  if (fn === undefined || depth > 4) return undefined;
  if (REBUILD_WRAPPER.has(fn)) {
    const inner = v.args[0];
    return isObject<PyCall>(inner, "call") ? asTensor(inner, storages, depth + 1) : undefined;
  }
  if (fn === "torch._tensor._rebuild_from_type_v2") {
    const args = v.args[2];
    if (!isObject<PyTuple>(args, "tuple")) return undefined;
    return asTensor(
      { t: "call", fn: v.args[0], args: args.items, items: [], entries: [] },
      storages,
      depth + 1,
    );
  }
  if (!REBUILD_TENSOR.has(fn)) return undefined;
  check(v.args.length >= 4, "E_CORRUPT", `torch: ${fn} with ${v.args.length} arguments`);
  const { key, viewOffset } = parseStoragePid(v.args[0], storages);
  const size = intTuple(v.args[2], "tensor size");
  const stride = intTuple(v.args[3], "tensor stride");
  check(size.length === stride.length, "E_CORRUPT", "torch: tensor size and stride differ in length");
  return { key, storageOffset: viewOffset + nonNegativeInt(v.args[1], "storage offset"), size, stride };
}

function keyName(k: PyValue): string {
  if (typeof k === "string") return k;
  if (typeof k === "number" || typeof k === "bigint" || typeof k === "boolean") return String(k);
  if (k === null) return "None";
  return "?";
}

/** Every tensor reachable from `root`, named by its key path ("model.layer.weight"). */
function findTensors(root: PyValue, storages: Map<string, Storage>): TensorRef[] {
  const out: TensorRef[] = [];
  const seen = new Set<object>();
  const todo: [PyValue, string, number][] = [[root, "", 0]];
  const join = (path: string, k: string) => (path ? `${path}.${k}` : k);
  while (todo.length > 0) {
    const [v, path, depth] = todo.pop()!;
    if (typeof v !== "object" || v === null) continue;
    if (isObject<PyCall>(v, "call")) {
      const tensor = asTensor(v, storages);
      if (tensor) {
        out.push({ name: path || "tensor", ...tensor });
        continue;
      }
    }
    if (isObject<PyPid>(v, "pid")) {
      // A bare storage (torch.save of a storage, or a storage inside an object).
      parseStoragePid(v, storages);
      continue;
    }
    if (seen.has(v) || depth >= MAX_WALK_DEPTH) continue;
    seen.add(v);
    const children: [PyValue, string][] = [];
    switch (v.t) {
      case "dict":
        for (const [k, val] of v.entries) children.push([val, join(path, keyName(k))]);
        break;
      case "list":
      case "tuple":
      case "set":
        for (const [i, item] of v.items.entries()) children.push([item, join(path, String(i))]);
        break;
      case "call":
        for (const [i, item] of v.args.entries()) children.push([item, join(path, String(i))]);
        for (const [k, val] of v.entries) children.push([val, join(path, keyName(k))]);
        for (const [i, item] of v.items.entries()) children.push([item, join(path, String(i))]);
        if (v.state !== undefined) children.push([v.state, path]);
        break;
      default:
        break;
    }
    for (let i = children.length - 1; i >= 0; i--) todo.push([children[i][0], children[i][1], depth + 1]);
  }
  return out;
}

/** Elements a strided view touches: 1 + Σ (size − 1) × stride, or 0 if it is empty. */
function viewSpan(size: number[], stride: number[]): number | undefined {
  if (size.some((s) => s === 0)) return 0;
  let span = 1;
  for (let i = 0; i < size.length; i++) {
    span += (size[i] - 1) * stride[i];
    if (!Number.isSafeInteger(span)) return undefined;
  }
  return span;
}

interface Resolved {
  tensors: TensorEntry[];
  /** Tensor names per storage key. */
  users: Map<string, TensorRef[]>;
}

/** Check each tensor against its storage and place it in the file. */
function resolveTensors(
  refs: TensorRef[],
  storages: Map<string, Storage>,
  dataOffset: Map<string, number>,
): Resolved {
  const tensors: TensorEntry[] = [];
  const users = new Map<string, TensorRef[]>();
  for (const ref of refs) {
    const storage = storages.get(ref.key)!;
    const span = viewSpan(ref.size, ref.stride);
    check(
      span !== undefined && (span === 0 || ref.storageOffset + span <= storage.numel),
      "E_CORRUPT",
      `torch: tensor ${ref.name} reaches past the end of storage ${ref.key} (${storage.numel} elements)`,
    );
    const list = users.get(ref.key) ?? [];
    list.push(ref);
    users.set(ref.key, list);
    const at = dataOffset.get(ref.key);
    if (at === undefined || storage.elementSize === undefined) continue;
    tensors.push({
      name: ref.name,
      dtype: storage.dtype ?? storage.typeName,
      shape: ref.size,
      offset: at + ref.storageOffset * storage.elementSize,
      length: span * storage.elementSize,
    });
  }
  return { tensors, users };
}

/** The region for one storage's bytes. */
function storageRegion(
  storage: Storage,
  offset: number,
  length: number,
  users: TensorRef[] | undefined,
  note: string | undefined,
): Region {
  const name = users?.[0]?.name ?? `storage ${storage.key}`;
  const notes: string[] = [];
  if (note) notes.push(note);
  if (users && users.length > 1) {
    const others = users.slice(1, 6).map((u) => u.name);
    notes.push(`storage ${storage.key}, shared with ${others.join(", ")}${users.length > 6 ? ", ..." : ""}`);
  }
  if (storage.dtype === null || note !== undefined) {
    return rawRegion(name, offset, length, notes.length ? notes.join("; ") : storage.typeName);
  }
  // One tensor viewing the whole storage contiguously: the region has its shape.
  const only = users?.length === 1 ? users[0] : undefined;
  const whole =
    only !== undefined &&
    only.storageOffset === 0 &&
    only.size.reduce((a, b) => a * b, 1) === storage.numel &&
    isContiguous(only.size, only.stride);
  return tensorRegion(
    name,
    offset,
    length,
    storage.dtype,
    whole ? only.size : [storage.numel],
    notes.length ? notes.join("; ") : undefined,
  );
}

function isContiguous(size: number[], stride: number[]): boolean {
  let expected = 1;
  for (let i = size.length - 1; i >= 0; i--) {
    if (size[i] !== 1 && stride[i] !== expected) return false;
    expected *= size[i];
  }
  return true;
}

async function readMember(source: RandomAccessSource, m: ZipMember, cap: number): Promise<Buffer> {
  check(m.uncompressedSize <= cap, "E_LIMIT", `torch: ${m.name} is ${m.uncompressedSize} bytes, over ${cap}`);
  check(!m.encrypted, "E_UNSUPPORTED", `torch: ${m.name} is encrypted`);
  const bytes = await readAt(source, m.dataOffset, m.compressedSize, `torch ${m.name}`);
  if (m.method === 0) return bytes;
  check(m.method === 8, "E_UNSUPPORTED", `torch: ${m.name} uses zip method ${m.method}`);
  try {
    return inflateRawSync(bytes, { maxOutputLength: Math.max(1, cap) });
  } catch (error) {
    if (error instanceof RangeError || (error as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") {
      throw new MmhError("E_LIMIT", `torch: ${m.name} inflates past ${cap} bytes`, { cause: error });
    }
    throw new MmhError("E_CORRUPT", `torch: ${m.name} does not inflate`, { cause: error });
  }
}

export async function recogniseTorchZip(
  source: RandomAccessSource,
  members: readonly ZipMember[],
  prefix: string,
  options?: RecogniseOptions,
): Promise<Recognised> {
  const cap = Math.min(TORCH_MAX_PICKLE, maxHeaderBytes(options));
  const byName = new Map(members.map((m) => [m.name, m]));
  const pkl = byName.get(`${prefix}data.pkl`)!;
  const pickle = await readMember(source, pkl, cap);
  let littleEndian = true;
  const byteorder = byName.get(`${prefix}byteorder`) ?? byName.get(`${prefix}.data/byteorder`);
  if (byteorder) {
    const text = (await readMember(source, byteorder, 64)).toString("latin1").trim();
    check(text === "little" || text === "big", "E_CORRUPT", `torch: byteorder is ${JSON.stringify(text)}`);
    littleEndian = text === "little";
  }
  const { value, pids } = runPickle(pickle, 0, `torch ${pkl.name}`);
  const storages = new Map<string, Storage>();
  for (const pid of pids) parseStoragePid(pid, storages);
  const refs = findTensors(value, storages);

  const dataOffset = new Map<string, number>();
  const storageMembers = new Map<string, ZipMember>();
  for (const storage of storages.values()) {
    const m = byName.get(`${prefix}data/${storage.key}`);
    check(
      m !== undefined,
      "E_CORRUPT",
      `torch: storage ${storage.key} has no ${prefix}data/${storage.key} member`,
    );
    if (storage.elementSize !== undefined) {
      check(
        m.uncompressedSize === storage.numel * storage.elementSize,
        "E_CORRUPT",
        `torch: storage ${storage.key} is ${m.uncompressedSize} bytes, but ${storage.numel} × ${storage.typeName} needs ${storage.numel * storage.elementSize}`,
      );
    }
    storageMembers.set(storage.key, m);
    if (m.method === 0 && !m.encrypted) dataOffset.set(storage.key, m.dataOffset);
  }
  const { tensors, users } = resolveTensors(refs, storages, dataOffset);

  const regions: Region[] = [];
  const claimed = new Set<string>();
  for (const [key, m] of storageMembers) {
    claimed.add(m.name);
    const storage = storages.get(key)!;
    const note =
      m.method !== 0 || m.encrypted
        ? m.encrypted
          ? "encrypted"
          : m.method === 8
            ? "deflated"
            : `zip method ${m.method}`
        : littleEndian
          ? undefined
          : "big-endian";
    regions.push(storageRegion(storage, m.dataOffset, m.compressedSize, users.get(key), note));
  }
  for (const m of members) {
    if (claimed.has(m.name) || m.name.endsWith("/")) continue;
    const note = m.name.startsWith(`${prefix}data/`) ? "unreferenced storage" : undefined;
    regions.push(rawRegion(m.name, m.dataOffset, m.compressedSize, note));
  }
  return {
    format: "pytorch",
    regions: tileRegions(regions, source.size, "zip structure"),
    tensors,
    metadata: {
      layout: "zip",
      prefix,
      storages: storages.size,
      byteorder: littleEndian ? "little" : "big",
      members: members.length,
    },
  };
}

export async function recogniseTorchLegacy(
  source: RandomAccessSource,
  options?: RecogniseOptions,
): Promise<Recognised> {
  const cap = Math.min(TORCH_MAX_PICKLE, maxHeaderBytes(options));
  const size = source.size;
  const head = await readAt(source, 0, Math.min(size, cap), "torch legacy pickles");
  const run = (start: number, what: string) => {
    try {
      return runPickle(head, start, `torch legacy ${what}`);
    } catch (error) {
      if (error instanceof MmhError && error.code === "E_TRUNCATED" && head.length < size) {
        throw new MmhError("E_LIMIT", `torch legacy: pickles are larger than ${cap} bytes`, { cause: error });
      }
      throw error;
    }
  };
  const magic = run(0, "magic number");
  const protocol = run(magic.end, "protocol version");
  check(
    protocol.value === 1001,
    "E_UNSUPPORTED",
    `torch legacy: protocol version ${String(protocol.value)} (1001 is supported)`,
  );
  const sysInfo = run(protocol.end, "sys_info");
  let littleEndian = true;
  if (isObject(sysInfo.value, "dict")) {
    for (const [k, v] of (sysInfo.value as { entries: [PyValue, PyValue][] }).entries) {
      if (k === "little_endian") littleEndian = v !== false;
    }
  }
  const object = run(sysInfo.end, "object");
  const keysPickle = run(object.end, "storage keys");
  check(isObject(keysPickle.value, "list"), "E_CORRUPT", "torch legacy: storage keys are not a list");
  const storages = new Map<string, Storage>();
  for (const pid of object.pids) parseStoragePid(pid, storages);
  const refs = findTensors(object.value, storages);

  const regions: Region[] = [rawRegion("torch legacy pickles", 0, keysPickle.end)];
  const dataOffset = new Map<string, number>();
  const spans: [Storage, number, number][] = [];
  let pos = keysPickle.end;
  for (const keyValue of (keysPickle.value as { items: PyValue[] }).items) {
    check(typeof keyValue === "string", "E_CORRUPT", "torch legacy: a storage key is not a string");
    const storage = storages.get(keyValue);
    check(storage !== undefined, "E_CORRUPT", `torch legacy: storage ${keyValue} is not used by the object`);
    check(!dataOffset.has(keyValue), "E_CORRUPT", `torch legacy: storage ${keyValue} is listed twice`);
    check(
      storage.elementSize !== undefined,
      "E_UNSUPPORTED",
      `torch legacy: storage type ${storage.typeName} has an unknown element size`,
    );
    const numel64 = (await readAt(source, pos, 8, `torch legacy storage ${keyValue} size`)).readBigInt64LE(0);
    check(
      numel64 === BigInt(storage.numel),
      "E_CORRUPT",
      `torch legacy: storage ${keyValue} has ${numel64} elements, the object says ${storage.numel}`,
    );
    regions.push(rawRegion(`storage ${keyValue} size`, pos, 8));
    pos += 8;
    const length = storage.numel * storage.elementSize;
    check(
      pos + length <= size,
      "E_TRUNCATED",
      `torch legacy: storage ${keyValue} (${length} bytes at ${pos}) runs past the end of the file`,
    );
    dataOffset.set(keyValue, pos);
    spans.push([storage, pos, length]);
    pos += length;
  }
  for (const storage of storages.values()) {
    check(dataOffset.has(storage.key), "E_CORRUPT", `torch legacy: storage ${storage.key} has no data`);
  }
  const { tensors, users } = resolveTensors(refs, storages, dataOffset);
  for (const [storage, offset, length] of spans) {
    regions.push(
      storageRegion(storage, offset, length, users.get(storage.key), littleEndian ? undefined : "big-endian"),
    );
  }
  return {
    format: "pytorch",
    regions: tileRegions(regions, size, "trailing bytes"),
    tensors,
    metadata: { layout: "legacy", storages: storages.size, byteorder: littleEndian ? "little" : "big" },
  };
}
