/**
 * Every bench script answers `--help` with its own description and exits at once, before
 * it fetches, generates or times anything (bench/lib/help.ts).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

const bench = join(import.meta.dirname, "..", "bench");
/** Modules other benches import, never run on their own. */
const LIBRARIES = new Set(["deltas-bound.ts"]);
const scripts = readdirSync(bench).filter((f) => f.endsWith(".ts") && !LIBRARIES.has(f));

test("every bench script prints its description for --help and -h, and does nothing else", () => {
  assert.ok(scripts.length >= 30, `bench scripts found: ${scripts.length}`);
  for (const [i, name] of scripts.entries()) {
    const file = join(bench, name);
    const doc = /^\/\*\*\n \* (.*)\n/.exec(readFileSync(file, "utf8"));
    assert.ok(doc, `${name}: no leading doc comment`);
    const r = spawnSync(process.execPath, [file, i % 2 === 0 ? "--help" : "-h"], {
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.equal(r.status, 0, `${name}: exit ${r.status} ${r.stderr}`);
    assert.ok(r.stdout.startsWith(doc[1]), `${name}: printed ${r.stdout.slice(0, 80)}`);
    assert.doesNotMatch(r.stdout, /^\s*\*/m, `${name}: comment markers left in`);
    assert.equal(r.stderr, "", `${name}: wrote to stderr`);
  }
});
