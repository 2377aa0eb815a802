/**
 * scripts/eager.ts: which of a bundle's top-level functions become parenthesised function
 * expressions (compiled with their module), and that the rewritten files run as before:
 * a function that evaluating the files may read before its line stays a declaration.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { pathToFileURL } from "node:url";
import { eagerFunctions } from "../scripts/eager.ts";

const dir = mkdtempSync(join(tmpdir(), "mmh-eager-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The names of the functions rewritten in each file. */
function rewritten(files: Record<string, string>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [file, { text }] of eagerFunctions(new Map(Object.entries(files))))
    out[file] = [...text.matchAll(/var (\w+) = \((?:async )?function/g)].map((m) => m[1]).sort();
  return out;
}

/** Writes `files` into a directory of their own, imports `entry` and returns its `result`. */
async function run(name: string, files: Map<string, string>, entry: string): Promise<unknown> {
  const at = join(dir, name);
  mkdirSync(at);
  for (const [file, text] of files) writeFileSync(join(at, file), text);
  return (await import(pathToFileURL(join(at, entry)).href)).result;
}

test("a function only called from other functions, or after its line, is rewritten", () => {
  const files = {
    "a.js": `function helper(x) { return x + 1; }
function used(x) { return helper(x) * 2; }
const early = later(1);
function later(x) { return deep(x); }
function deep(x) { return x; }
const table = [used];
async function* stream() { yield 1; }
export { used, stream, early, table };
`,
  };
  // later() runs before its line, and deep() through it: both stay declarations.
  assert.deepEqual(rewritten(files), { "a.js": ["helper", "stream", "used"] });
});

test("a class's static members and heritage run as it is declared; its methods do not", () => {
  const files = {
    "a.js": `class A extends base() { static x = init(); method() { return inMethod(); } }
function base() { return Object; }
function init() { return 1; }
function inMethod() { return 2; }
class B { static { fromBlock(); } }
function fromBlock() {}
export { A, B };
`,
  };
  assert.deepEqual(rewritten(files), { "a.js": ["inMethod"] });
});

test("imports: a file outside the cycle has run before; one in a cycle keeps what it reaches", () => {
  const files = {
    "lib.js": `function f() { return g(); }
function g() { return 3; }
export { f };
`,
    "main.js": `import { f as imported } from "./lib.js";
const value = imported();
export { value };
`,
    "x.js": `import { fromY } from "./y.js";
function fromX() { return 1; }
const early = fromY();
export { fromX, early };
`,
    "y.js": `import { fromX } from "./x.js";
function fromY() { return fromX(); }
function unused() {}
export { fromY };
`,
  };
  // lib.js runs in full before main.js; x.js and y.js import each other, so what x.js's
  // top level reaches through y.js stays declared in both.
  assert.deepEqual(rewritten(files), {
    "lib.js": ["f", "g"],
    "main.js": [],
    "x.js": [],
    "y.js": ["unused"],
  });
});

test("the rewritten files run as the originals do", async () => {
  const files = new Map([
    [
      "a.js",
      `import { twice } from "./b.js";
function add(x, y) { return x + y; }
const early = byName("add")(2, 3);
function byName(name) { return { add, twice }[name]; }
function* counter() { yield add(1, 1); }
export const result = [early, twice(4), [...counter()][0], add.name, typeof byName];
`,
    ],
    ["b.js", "function twice(x) { return x * 2; }\nexport { twice };\n"],
  ]);
  const expected = await run("original", files, "a.js");
  const eager = new Map([...eagerFunctions(files)].map(([file, { text }]) => [file, text]));
  assert.match(eager.get("a.js") as string, /var counter = \(function\* counter/);
  assert.match(eager.get("a.js") as string, /var add = \(function add/);
  assert.match(eager.get("a.js") as string, /^function byName/m);
  assert.deepEqual(await run("eager", eager, "a.js"), expected);
  assert.deepEqual(expected, [5, 8, 2, "add", "function"]);
});

test("the build rewrites the command's functions, and keeps those its modules call as they load", () => {
  const dist = join(import.meta.dirname, "..", "dist");
  let rewrittenCount = 0;
  let declared = 0;
  for (const file of readdirSync(dist).filter((f) => /^cli(-\w+)?\.js$/.test(f))) {
    const text = readFileSync(join(dist, file), "utf8");
    rewrittenCount += text.match(/^var \w+ = \((?:async )?function/gm)?.length ?? 0;
    declared += text.match(/^(?:async )?function/gm)?.length ?? 0;
  }
  assert.ok(rewrittenCount > 100, `${rewrittenCount} functions rewritten`);
  assert.ok(declared > 0, "no declaration kept");
});
