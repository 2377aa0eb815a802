/**
 * `npm run build` (also run by `npm ci` and `npm install`, as `prepare`): compiles src/
 * into dist/ and stamps it with the digest of the sources compiled, so that bin/mmh.js
 * runs dist/ only while it matches src/ (bin/entry.js).
 */
import { execFileSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { STAMP, sourceDigest } from "../bin/entry.js";

const root = join(import.meta.dirname, "..");
const src = join(root, "src");
const dist = join(root, "dist");
const before = sourceDigest(src);
rmSync(dist, { recursive: true, force: true });
const manifest = createRequire(import.meta.url).resolve("typescript/package.json");
const tsc = join(dirname(manifest), "bin", "tsc");
execFileSync(process.execPath, [tsc, "-p", join(root, "tsconfig.build.json")], { stdio: "inherit" });
if (sourceDigest(src) !== before) {
  console.error("build: src/ changed while it was compiled; run the build again");
  process.exit(1);
}
writeFileSync(join(dist, STAMP), `${JSON.stringify({ source: before }, null, 2)}\n`);
