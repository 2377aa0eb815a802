/** bin/entry.js: the command runs the built dist/ only while it matches src/. */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { pathToFileURL } from "node:url";
import { builtIsCurrent, entryUrl, STAMP, sourceDigest } from "../bin/entry.js";

const root = mkdtempSync(join(tmpdir(), "mmh-build-"));
after(() => rmSync(root, { recursive: true, force: true }));

const src = join(root, "src");
const dist = join(root, "dist");
mkdirSync(join(src, "cli"), { recursive: true });
mkdirSync(dist, { recursive: true });
writeFileSync(join(src, "cli", "start.ts"), "export const x: number = 1;\n");
writeFileSync(join(src, "index.ts"), "export {};\n");
writeFileSync(join(dist, "cli.js"), "export const x = 1;\n");
const fromSrc = pathToFileURL(join(src, "cli", "start.ts")).href;
const fromDist = pathToFileURL(join(dist, "cli.js")).href;

test("no stamp, a foreign stamp, a current one, then a source edited, added or renamed", () => {
  assert.equal(builtIsCurrent(root), false);
  assert.equal(entryUrl(root, "cli/start", "cli"), fromSrc);
  writeFileSync(join(dist, STAMP), "{ not json");
  assert.equal(entryUrl(root, "cli/start", "cli"), fromSrc);
  writeFileSync(join(dist, STAMP), JSON.stringify({ source: "0".repeat(64) }));
  assert.equal(entryUrl(root, "cli/start", "cli"), fromSrc);

  writeFileSync(join(dist, STAMP), JSON.stringify({ source: sourceDigest(src) }));
  assert.equal(builtIsCurrent(root), true);
  assert.equal(entryUrl(root, "cli/start", "cli"), fromDist);

  const before = sourceDigest(src);
  writeFileSync(join(src, "cli", "start.ts"), "export const x: number = 2;\n");
  assert.notEqual(sourceDigest(src), before);
  assert.equal(entryUrl(root, "cli/start", "cli"), fromSrc);
  writeFileSync(join(src, "cli", "start.ts"), "export const x: number = 1;\n");
  assert.equal(sourceDigest(src), before, "the digest depends on content, not on times");
  assert.equal(entryUrl(root, "cli/start", "cli"), fromDist);

  writeFileSync(join(src, "extra.ts"), "export {};\n");
  assert.equal(entryUrl(root, "cli/start", "cli"), fromSrc, "a new source file");
  rmSync(join(src, "extra.ts"));
  writeFileSync(join(src, "notes.md"), "not code\n");
  assert.equal(entryUrl(root, "cli/start", "cli"), fromDist, "only .ts files count");
  rmSync(join(src, "index.ts"));
  writeFileSync(join(src, "index2.ts"), "export {};\n");
  assert.equal(entryUrl(root, "cli/start", "cli"), fromSrc, "a renamed source file");
});
