/**
 * A tiny parser for the Python literals an .npy header holds: dicts, lists, tuples,
 * strings, integers, floats, True/False/None. It never evaluates anything; nesting depth
 * and length are bounded by the caller's input size and MAX_DEPTH.
 */
import { check, MmhError } from "../common/errors.ts";

export type PyLiteral =
  | null
  | boolean
  | number
  | { float: number }
  | string
  | PyLiteral[]
  | { tuple: PyLiteral[] }
  | { dict: [PyLiteral, PyLiteral][] };

const MAX_DEPTH = 32;

export function isTuple(v: PyLiteral): v is { tuple: PyLiteral[] } {
  return typeof v === "object" && v !== null && !Array.isArray(v) && "tuple" in v;
}

export function isDict(v: PyLiteral): v is { dict: [PyLiteral, PyLiteral][] } {
  return typeof v === "object" && v !== null && !Array.isArray(v) && "dict" in v;
}

export function parsePyLiteral(text: string, what: string): PyLiteral {
  let pos = 0;
  const fail = (message: string): never => {
    throw new MmhError("E_CORRUPT", `${what}: ${message} at character ${pos}`);
  };
  const skipSpace = () => {
    while (pos < text.length && " \t\r\n".includes(text[pos])) pos++;
  };
  const parseString = (): string => {
    const quote = text[pos++];
    let out = "";
    while (true) {
      if (pos >= text.length) fail("unterminated string");
      const c = text[pos++];
      if (c === quote) return out;
      if (c === "\n") fail("newline in string");
      if (c !== "\\") {
        out += c;
        continue;
      }
      if (pos >= text.length) fail("unterminated escape");
      const e = text[pos++];
      const simple: Record<string, string> = {
        "\\": "\\",
        "'": "'",
        '"': '"',
        n: "\n",
        t: "\t",
        r: "\r",
        "0": "\0",
        a: "\x07",
        b: "\b",
        f: "\f",
        v: "\v",
      };
      if (e in simple) {
        out += simple[e];
      } else if (e === "x" || e === "u" || e === "U") {
        const digits = e === "x" ? 2 : e === "u" ? 4 : 8;
        const hex = text.slice(pos, pos + digits);
        if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== digits) fail("bad escape");
        const code = Number.parseInt(hex, 16);
        if (code > 0x10ffff) fail("bad escape");
        out += String.fromCodePoint(code);
        pos += digits;
      } else {
        fail("unknown escape");
      }
    }
  };
  const parseSequence = (close: string, depth: number): { items: PyLiteral[]; trailingComma: boolean } => {
    const items: PyLiteral[] = [];
    let trailingComma = false;
    while (true) {
      skipSpace();
      if (text[pos] === close) {
        pos++;
        return { items, trailingComma };
      }
      items.push(parseValue(depth + 1));
      skipSpace();
      if (text[pos] === ",") {
        pos++;
        trailingComma = true;
      } else if (text[pos] === close) {
        trailingComma = false;
      } else {
        fail(`expected "," or "${close}"`);
      }
    }
  };
  const parseValue = (depth: number): PyLiteral => {
    if (depth > MAX_DEPTH) throw new MmhError("E_LIMIT", `${what}: literal nested deeper than ${MAX_DEPTH}`);
    skipSpace();
    const c = text[pos];
    if (c === undefined) fail("unexpected end");
    if (c === "'" || c === '"') return parseString();
    if (c === "{") {
      pos++;
      const entries: [PyLiteral, PyLiteral][] = [];
      while (true) {
        skipSpace();
        if (text[pos] === "}") {
          pos++;
          return { dict: entries };
        }
        const key = parseValue(depth + 1);
        skipSpace();
        if (text[pos] !== ":") fail('expected ":"');
        pos++;
        entries.push([key, parseValue(depth + 1)]);
        skipSpace();
        if (text[pos] === ",") pos++;
        else if (text[pos] !== "}") fail('expected "," or "}"');
      }
    }
    if (c === "[") {
      pos++;
      return parseSequence("]", depth).items;
    }
    if (c === "(") {
      pos++;
      const { items, trailingComma } = parseSequence(")", depth);
      // (x) is just x; (x,) and () are tuples.
      if (items.length === 1 && !trailingComma) return items[0];
      return { tuple: items };
    }
    const word = /^(True|False|None)\b/.exec(text.slice(pos, pos + 6));
    if (word) {
      pos += word[1].length;
      return word[1] === "True" ? true : word[1] === "False" ? false : null;
    }
    const num = /^[-+]?(\d+(\.\d*)?([eE][-+]?\d+)?|\.\d+([eE][-+]?\d+)?)L?/.exec(text.slice(pos, pos + 64));
    if (num && num[0].length > 0 && /\d/.test(num[0])) {
      pos += num[0].length;
      const value = Number(num[0].replace(/L$/, ""));
      check(Number.isFinite(value), "E_CORRUPT", `${what}: number out of range`);
      // Integers are plain numbers (unsafe ones stay unsafe, for the caller to refuse).
      return /^[-+]?\d+L?$/.test(num[0]) ? value : { float: value };
    }
    return fail("unexpected character");
  };
  const value = parseValue(0);
  skipSpace();
  if (pos !== text.length) fail("trailing characters");
  return value;
}
