/**
 * `npm run build` (also run by `npm ci` and `npm install`, as `prepare`): compiles src/
 * into dist/ and stamps it with the digest of the sources compiled, so that bin/mmh.js
 * runs dist/ only while it matches src/ (bin/entry.js); compiles HIER's WebAssembly
 * kernels (assembly/) into dist/ and into the cache a checkout running src/ reads.
 *
 * `node scripts/build.ts --kernels` compiles the kernels into the cache alone (what
 * `npm run test:unit` does first, so tests run from src/ use them).
 */
import { execFileSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { STAMP, sourceDigest } from "../bin/entry.js";
import { kernelSourceDigest } from "../src/codecs/hier/kernels.ts";

const root = join(import.meta.dirname, "..");
const src = join(root, "src");
const dist = join(root, "dist");

// ---------------------------------------------------------------------------------------
// HIER's WebAssembly kernels: assembly/kernels.ts -> .cache/kernels-<digest>.wasm (what
// src/codecs/hier/kernels.ts loads in a checkout) and, in a full build, a copy in dist/.

/** Compiles the kernels with AssemblyScript unless the cache holds this source's build; returns its path. */
function buildKernels(): string {
  const source = join(root, "assembly", "kernels.ts");
  const cache = join(root, ".cache");
  const target = join(cache, `kernels-${kernelSourceDigest(readFileSync(source))}.wasm`);
  if (existsSync(target)) return target;
  mkdirSync(cache, { recursive: true });
  const asc = createRequire(import.meta.url).resolve("assemblyscript/bin/asc.js");
  const temporary = `${target}.${process.pid}.tmp`;
  execFileSync(
    process.execPath,
    [asc, source, "--outFile", temporary, "-O3", "--runtime", "stub", "--noAssert", "--enable", "simd"],
    { stdio: "inherit" },
  );
  renameSync(temporary, target);
  return target;
}

if (process.argv.includes("--kernels")) {
  buildKernels();
  process.exit(0);
}
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
copyFileSync(buildKernels(), join(dist, "codecs", "hier", "kernels.wasm"));
