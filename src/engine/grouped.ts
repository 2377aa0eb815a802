/**
 * DLTA modes 8 to 10 (docs/FORMAT.md §6.4): zigzag-coded differences from the base, split
 * into groups by the base element's exponent, each group coded on its own. A training step
 * changes weights by similar amounts in value, which is a count of units in the last place
 * that halves with each step up in exponent: an order-0 coder of all the differences mixes
 * those scales, one per exponent does not.
 */
import { codecById } from "../codecs/registry.ts";
import { check, MmhError } from "../common/errors.ts";

export const DELTA_GROUPED_F32 = 8;
export const DELTA_GROUPED_BF16 = 9;
export const DELTA_GROUPED_F16 = 10;

/** Element bytes, and where the exponent field lies in an element's bits. */
interface Layout {
  width: number;
  shift: number;
  keyBits: number;
}

const LAYOUTS: Record<number, Layout> = {
  [DELTA_GROUPED_F32]: { width: 4, shift: 23, keyBits: 8 },
  [DELTA_GROUPED_BF16]: { width: 2, shift: 7, keyBits: 8 },
  [DELTA_GROUPED_F16]: { width: 2, shift: 10, keyBits: 5 },
};

export function isGroupedMode(mode: number): boolean {
  return mode >= DELTA_GROUPED_F32 && mode <= DELTA_GROUPED_F16;
}

export function groupedWidth(mode: number): number {
  return LAYOUTS[mode].width;
}

export function groupedModeFor(dtype: string | null): number | undefined {
  return dtype === "F32"
    ? DELTA_GROUPED_F32
    : dtype === "BF16"
      ? DELTA_GROUPED_BF16
      : dtype === "F16"
        ? DELTA_GROUPED_F16
        : undefined;
}

/** One group: its codec, that codec's params, and the length of its part of the payload. */
export interface Group {
  codec: string;
  params: Uint8Array;
  length: number;
}

/** Bytes of one group's entry before its params: codec, params length (u16), payload length (u32). */
const GROUP_ENTRY = 10;

/** The group table: count (u16), the exponent → group map, then each group's entry and params. */
export function encodeGroups(mode: number, map: Uint8Array, groups: readonly Group[]): Buffer {
  const { keyBits } = LAYOUTS[mode];
  const parts: Buffer[] = [];
  const head = Buffer.alloc(2 + (1 << keyBits));
  head.writeUInt16LE(groups.length, 0);
  head.set(map.subarray(0, 1 << keyBits), 2);
  parts.push(head);
  for (const g of groups) {
    const entry = Buffer.alloc(GROUP_ENTRY);
    entry.write(g.codec, 0, "latin1");
    entry.writeUInt16LE(g.params.length, 4);
    entry.writeUInt32LE(g.length, 6);
    parts.push(entry, Buffer.from(g.params));
  }
  return Buffer.concat(parts);
}

/** Parse and check the group table (the DLTA params after the fixed 45 bytes); S is the payload's length. */
export function parseGroups(
  bytes: Uint8Array,
  mode: number,
  stored: number,
  where: string,
): { map: Uint8Array; groups: Group[]; length: number } {
  const { keyBits } = LAYOUTS[mode];
  const keys = 1 << keyBits;
  check(bytes.length >= 2 + keys, "E_CORRUPT", `${where}: DLTA mode ${mode} params have no group table`);
  const count = bytes[0] | (bytes[1] << 8);
  check(count >= 1 && count <= keys, "E_CORRUPT", `${where}: DLTA group count ${count} is not 1 to ${keys}`);
  const map = bytes.subarray(2, 2 + keys);
  for (let k = 0; k < keys; k++)
    check(map[k] < count, "E_CORRUPT", `${where}: DLTA exponent ${k} maps to group ${map[k]} of ${count}`);
  const groups: Group[] = [];
  let at = 2 + keys;
  let total = 0;
  for (let g = 0; g < count; g++) {
    check(at + GROUP_ENTRY <= bytes.length, "E_CORRUPT", `${where}: DLTA group table runs past the params`);
    const dv = new DataView(bytes.buffer, bytes.byteOffset + at, GROUP_ENTRY);
    const codec = Buffer.from(bytes.buffer, bytes.byteOffset + at, 4).toString("latin1");
    const paramsLength = dv.getUint16(4, true);
    const length = dv.getUint32(6, true);
    at += GROUP_ENTRY;
    check(at + paramsLength <= bytes.length, "E_CORRUPT", `${where}: DLTA group table runs past the params`);
    check(
      codec !== "DUPE" && codec !== "DLTA",
      "E_CORRUPT",
      `${where}: DLTA group ${g} codec ${codec} is not a codec`,
    );
    total += length;
    check(total <= stored, "E_CORRUPT", `${where}: DLTA groups run past the payload`);
    groups.push({ codec, params: bytes.subarray(at, at + paramsLength), length });
    at += paramsLength;
  }
  check(total === stored, "E_CORRUPT", `${where}: DLTA groups hold ${total} payload bytes, not ${stored}`);
  return { map, groups, length: at };
}

/** Each element's group, from its base element's exponent field. */
function groupsOf(base: Uint8Array, mode: number, map: Uint8Array): Uint8Array {
  const { width, shift, keyBits } = LAYOUTS[mode];
  const n = base.length / width;
  const out = new Uint8Array(n);
  const mask = (1 << keyBits) - 1;
  for (let i = 0; i < n; i++) {
    const at = i * width;
    const bits =
      width === 4
        ? (base[at] | (base[at + 1] << 8) | (base[at + 2] << 16) | (base[at + 3] << 24)) >>> 0
        : base[at] | (base[at + 1] << 8);
    out[i] = map[(bits >>> shift) & mask];
  }
  return out;
}

/**
 * The zigzag differences in element order, from the groups' payloads: group g's payload
 * decodes to its elements' differences, in element order, as many as base elements map to g.
 */
export function decodeGroups(
  payload: Uint8Array,
  base: Uint8Array,
  mode: number,
  map: Uint8Array,
  groups: readonly Group[],
  where: string,
): Uint8Array {
  const { width } = LAYOUTS[mode];
  const member = groupsOf(base, mode, map);
  const counts = new Array<number>(groups.length).fill(0);
  for (const g of member) counts[g]++;
  const streams: Uint8Array[] = [];
  let at = 0;
  groups.forEach((g, i) => {
    const part = payload.subarray(at, at + g.length);
    at += g.length;
    const length = counts[i] * width;
    if (length === 0) {
      check(
        g.length === 0 && g.params.length === 0,
        "E_CORRUPT",
        `${where}: DLTA group ${i} has no elements but a payload or params`,
      );
      streams.push(new Uint8Array(0));
      return;
    }
    let out: Uint8Array;
    try {
      out = codecById(g.codec).decode(part, g.params, length);
    } catch (error) {
      if (error instanceof MmhError)
        throw new MmhError(error.code, `${where}: DLTA group ${i}: ${error.message}`, { cause: error });
      throw new MmhError("E_CORRUPT", `${where}: DLTA group ${i} does not decode`, { cause: error });
    }
    check(
      out.length === length,
      "E_CORRUPT",
      `${where}: DLTA group ${i} decodes to other than ${length} bytes`,
    );
    streams.push(out);
  });
  const diff = new Uint8Array(base.length);
  const next = new Array<number>(groups.length).fill(0);
  for (let i = 0, at = 0; i < member.length; i++, at += width) {
    const g = member[i];
    const stream = streams[g];
    let from = next[g];
    for (let b = 0; b < width; b++) diff[at + b] = stream[from++];
    next[g] = from;
  }
  return diff;
}

/**
 * The writer's groups for zigzag differences `diff` against `base`: each exponent holding at
 * least 1% of the elements (and 256 of them) a group of its own, the rest one group.
 */
export function planGroups(base: Uint8Array, mode: number): { map: Uint8Array; count: number } {
  const { width, keyBits } = LAYOUTS[mode];
  const keys = 1 << keyBits;
  const n = base.length / width;
  const histogram = new Array<number>(keys).fill(0);
  const identity = Uint8Array.from({ length: keys }, (_, k) => k);
  for (const k of groupsOf(base, mode, identity)) histogram[k]++;
  const big = histogram.map((c) => c >= Math.max(n / 100, 256));
  const rest = histogram.some((c, k) => c > 0 && !big[k]);
  // Group 0 is the rest when there is one; exponents absent from the base map to group 0.
  let count = rest ? 1 : 0;
  const map = new Uint8Array(keys);
  for (let k = 0; k < keys; k++) if (big[k]) map[k] = count++;
  return { map, count: Math.max(count, 1) };
}

/** The differences of each group, in element order. */
export function splitGroups(
  diff: Uint8Array,
  base: Uint8Array,
  mode: number,
  map: Uint8Array,
  count: number,
): Buffer[] {
  const { width } = LAYOUTS[mode];
  const member = groupsOf(base, mode, map);
  const counts = new Array<number>(count).fill(0);
  for (const g of member) counts[g]++;
  const out = counts.map((c) => Buffer.alloc(c * width));
  const next = new Array<number>(count).fill(0);
  for (let i = 0, at = 0; i < member.length; i++, at += width) {
    const g = member[i];
    const part = out[g];
    let to = next[g];
    for (let b = 0; b < width; b++) part[to++] = diff[at + b];
    next[g] = to;
  }
  return out;
}
