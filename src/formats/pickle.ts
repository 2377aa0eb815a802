/**
 * A symbolic pickle interpreter: it runs the opcodes torch.save emits (protocols 2 to 5)
 * on a small stack machine without importing or calling anything. GLOBAL names stay
 * names, REDUCE/NEWOBJ build {call, args} records, BINPERSID builds {pid} records, and
 * SETITEM/APPEND/BUILD on such a record attach to it. Unknown opcodes are E_UNSUPPORTED.
 *
 * Bounded work: one pass over the bytes (opcodes ≤ bytes), the memo and the stack grow by
 * at most one entry per opcode, and the stack is capped at MAX_STACK.
 */
import { MmhError } from "../common/errors.ts";

export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | PyBytes
  | PyTuple
  | PyList
  | PyDict
  | PySet
  | PyGlobal
  | PyCall
  | PyPid;

export interface PyBytes {
  t: "bytes";
  length: number;
}
export interface PyTuple {
  t: "tuple";
  items: PyValue[];
}
export interface PyList {
  t: "list";
  items: PyValue[];
}
export interface PyDict {
  t: "dict";
  entries: [PyValue, PyValue][];
}
export interface PySet {
  t: "set";
  items: PyValue[];
}
export interface PyGlobal {
  t: "global";
  module: string;
  name: string;
}
/** The result of calling `fn(*args)` (REDUCE, NEWOBJ), with whatever was added to it later. */
export interface PyCall {
  t: "call";
  fn: PyValue;
  args: PyValue[];
  items: PyValue[];
  entries: [PyValue, PyValue][];
  state?: PyValue;
}
export interface PyPid {
  t: "pid";
  pid: PyValue;
}

export const MAX_STACK = 1_000_000;
const MAX_LINE = 4096;

export function isObject<T extends { t: string }>(v: PyValue, t: T["t"]): v is PyValue & T {
  return typeof v === "object" && v !== null && (v as { t: string }).t === t;
}

export function globalName(v: PyValue): string | undefined {
  return isObject<PyGlobal>(v, "global") ? `${v.module}.${v.name}` : undefined;
}

export interface PickleResult {
  value: PyValue;
  /** Offset just past the STOP opcode. */
  end: number;
  /** Every persistent id loaded, in order. */
  pids: PyValue[];
}

const MARK: unique symbol = Symbol("mark");
type Slot = PyValue | typeof MARK;

/**
 * Run the pickle in `data` from `start` up to its STOP. `what` names it in errors.
 */
export function runPickle(data: Buffer, start = 0, what = "pickle"): PickleResult {
  let pos = start;
  const stack: Slot[] = [];
  const memo = new Map<number, PyValue>();
  const pids: PyValue[] = [];

  const fail = (code: "E_CORRUPT" | "E_UNSUPPORTED" | "E_TRUNCATED" | "E_LIMIT", message: string): never => {
    throw new MmhError(code, `${what}: ${message} at offset ${pos}`);
  };
  const need = (n: number) => {
    if (n > data.length - pos) fail("E_TRUNCATED", `opcode argument of ${n} bytes runs past the end`);
  };
  const take = (n: number): Buffer => {
    need(n);
    const out = data.subarray(pos, pos + n);
    pos += n;
    return out;
  };
  const line = (): string => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0 && data.length - pos <= MAX_LINE) fail("E_TRUNCATED", "text line runs past the end");
    if (end < 0 || end - pos > MAX_LINE) fail("E_CORRUPT", "unterminated text line");
    const text = data.toString("utf8", pos, end);
    pos = end + 1;
    return text;
  };
  const push = (v: Slot) => {
    if (stack.length >= MAX_STACK) fail("E_LIMIT", `stack deeper than ${MAX_STACK}`);
    stack.push(v);
  };
  const pop = (): PyValue => {
    const v = stack.pop();
    if (v === undefined) fail("E_CORRUPT", "stack underflow");
    if (v === MARK) fail("E_CORRUPT", "unexpected mark");
    return v as PyValue;
  };
  const top = (): PyValue => {
    const v = stack[stack.length - 1];
    if (v === undefined) fail("E_CORRUPT", "stack underflow");
    if (v === MARK) fail("E_CORRUPT", "unexpected mark");
    return v as PyValue;
  };
  /** Pop everything down to the topmost mark, and the mark. */
  const popMark = (): PyValue[] => {
    const at = stack.lastIndexOf(MARK);
    if (at < 0) fail("E_CORRUPT", "no mark on the stack");
    const items = stack.splice(at) as PyValue[];
    items.shift();
    return items;
  };
  const str = (bytes: Buffer): string => bytes.toString("utf8");
  const memoGet = (i: number): PyValue => {
    if (!memo.has(i)) fail("E_CORRUPT", `memo ${i} is not set`);
    return memo.get(i) as PyValue;
  };
  const setItems = (target: PyValue, kv: PyValue[]) => {
    if (kv.length % 2 !== 0) fail("E_CORRUPT", "odd number of items for a dict");
    let entries: [PyValue, PyValue][];
    if (isObject<PyDict>(target, "dict") || isObject<PyCall>(target, "call")) entries = target.entries;
    else return fail("E_CORRUPT", "SETITEM on something that is not a dict");
    for (let i = 0; i < kv.length; i += 2) entries.push([kv[i], kv[i + 1]]);
  };
  const appendItems = (target: PyValue, items: PyValue[]) => {
    if (
      isObject<PyList>(target, "list") ||
      isObject<PyCall>(target, "call") ||
      isObject<PySet>(target, "set")
    ) {
      for (const item of items) target.items.push(item);
    } else {
      fail("E_CORRUPT", "APPEND on something that is not a list");
    }
  };
  const call = (fn: PyValue, args: PyValue): PyCall => {
    if (!isObject<PyTuple>(args, "tuple")) return fail("E_CORRUPT", "call arguments are not a tuple");
    return { t: "call", fn, args: args.items, items: [], entries: [] };
  };
  const long = (bytes: Buffer): number | bigint => {
    if (bytes.length === 0) return 0;
    let value = 0n;
    for (let i = bytes.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[i]);
    if (bytes[bytes.length - 1] & 0x80) value -= 1n << BigInt(bytes.length * 8);
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(value)
      : value;
  };

  while (true) {
    need(1);
    const op = data[pos++];
    switch (op) {
      case 0x80: {
        // PROTO
        const proto = take(1)[0];
        if (proto > 5) fail("E_UNSUPPORTED", `pickle protocol ${proto}`);
        break;
      }
      case 0x95: // FRAME: a length hint only
        take(8);
        break;
      case 0x2e: // STOP
        return { value: pop(), end: pos, pids };
      case 0x28: // MARK
        push(MARK);
        break;
      case 0x30: // POP
        if (stack.length === 0) fail("E_CORRUPT", "stack underflow");
        stack.pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        push(top());
        break;
      // ---- constants
      case 0x4e: // NONE
        push(null);
        break;
      case 0x88: // NEWTRUE
        push(true);
        break;
      case 0x89: // NEWFALSE
        push(false);
        break;
      case 0x4b: // BININT1
        push(take(1)[0]);
        break;
      case 0x4d: // BININT2
        push(take(2).readUInt16LE(0));
        break;
      case 0x4a: // BININT
        push(take(4).readInt32LE(0));
        break;
      case 0x8a: // LONG1
        push(long(take(take(1)[0])));
        break;
      case 0x8b: {
        // LONG4
        const n = take(4).readInt32LE(0);
        if (n < 0) fail("E_CORRUPT", "negative LONG4 length");
        push(long(take(n)));
        break;
      }
      case 0x47: // BINFLOAT (big-endian double)
        push(take(8).readDoubleBE(0));
        break;
      // ---- strings and bytes
      case 0x58: // BINUNICODE
        push(str(take(take(4).readUInt32LE(0))));
        break;
      case 0x8c: // SHORT_BINUNICODE
        push(str(take(take(1)[0])));
        break;
      case 0x8d: {
        // BINUNICODE8
        const n = take(8).readBigUInt64LE(0);
        if (n > BigInt(data.length - pos)) fail("E_TRUNCATED", "string runs past the end");
        push(str(take(Number(n))));
        break;
      }
      case 0x54: // BINSTRING (Python 2 str)
        push(take(take(4).readUInt32LE(0)).toString("latin1"));
        break;
      case 0x55: // SHORT_BINSTRING
        push(take(take(1)[0]).toString("latin1"));
        break;
      case 0x42: // BINBYTES
        push({ t: "bytes", length: take(take(4).readUInt32LE(0)).length });
        break;
      case 0x43: // SHORT_BINBYTES
        push({ t: "bytes", length: take(take(1)[0]).length });
        break;
      case 0x8e: // BINBYTES8
      case 0x96: {
        // BYTEARRAY8
        const n = take(8).readBigUInt64LE(0);
        if (n > BigInt(data.length - pos)) fail("E_TRUNCATED", "bytes run past the end");
        push({ t: "bytes", length: take(Number(n)).length });
        break;
      }
      // ---- containers
      case 0x7d: // EMPTY_DICT
        push({ t: "dict", entries: [] });
        break;
      case 0x5d: // EMPTY_LIST
        push({ t: "list", items: [] });
        break;
      case 0x29: // EMPTY_TUPLE
        push({ t: "tuple", items: [] });
        break;
      case 0x8f: // EMPTY_SET
        push({ t: "set", items: [] });
        break;
      case 0x74: // TUPLE
        push({ t: "tuple", items: popMark() });
        break;
      case 0x85: // TUPLE1
        push({ t: "tuple", items: [pop()] });
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        push({ t: "tuple", items: [pop(), b] });
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        push({ t: "tuple", items: [pop(), b, c] });
        break;
      }
      case 0x6c: // LIST
        push({ t: "list", items: popMark() });
        break;
      case 0x64: {
        // DICT
        const dict: PyDict = { t: "dict", entries: [] };
        setItems(dict, popMark());
        push(dict);
        break;
      }
      case 0x91: // FROZENSET
        push({ t: "set", items: popMark() });
        break;
      case 0x73: {
        // SETITEM
        const value = pop();
        const key = pop();
        setItems(top(), [key, value]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x61: {
        // APPEND
        const item = pop();
        appendItems(top(), [item]);
        break;
      }
      case 0x65: // APPENDS
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        appendItems(top(), items);
        break;
      }
      // ---- memo
      case 0x71: // BINPUT
        memo.set(take(1)[0], top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(take(4).readUInt32LE(0), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
        push(memoGet(take(1)[0]));
        break;
      case 0x6a: // LONG_BINGET
        push(memoGet(take(4).readUInt32LE(0)));
        break;
      // ---- objects, symbolically
      case 0x63: {
        // GLOBAL
        const module = line();
        const name = line();
        push({ t: "global", module, name });
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof name !== "string" || typeof module !== "string")
          fail("E_CORRUPT", "STACK_GLOBAL needs strings");
        push({ t: "global", module: module as string, name: name as string });
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        push(call(pop(), args));
        break;
      }
      case 0x81: {
        // NEWOBJ
        const args = pop();
        push(call(pop(), args));
        break;
      }
      case 0x92: {
        // NEWOBJ_EX
        pop(); // kwargs
        const args = pop();
        push(call(pop(), args));
        break;
      }
      case 0x62: {
        // BUILD
        const state = pop();
        const target = top();
        if (isObject<PyCall>(target, "call")) target.state = state;
        // BUILD on anything else sets attributes we do not model.
        break;
      }
      case 0x51: {
        // BINPERSID
        const pid = pop();
        pids.push(pid);
        push({ t: "pid", pid });
        break;
      }
      case 0x50: {
        // PERSID (text)
        const pid = line();
        pids.push(pid);
        push({ t: "pid", pid });
        break;
      }
      default:
        fail("E_UNSUPPORTED", `unsupported pickle opcode 0x${op.toString(16).padStart(2, "0")}`);
    }
  }
}
