/**
 * `npm run build` (also run by `npm ci` and `npm install`, as `prepare`): builds dist/ from
 * src/ in steps, then stamps it with the digest of the sources built, so that bin/mmh.js
 * runs dist/ only while it matches src/ (bin/entry.js). A step that adds to dist/ (a
 * WebAssembly module, say) is one more entry in STEPS.
 *
 * - declarations: tsc writes the .d.ts files (the package's types), and no JavaScript;
 * - bundle: esbuild bundles the JavaScript: one file per entry in ENTRIES, and the modules
 *   they share in chunks, all in dist/ itself. Every output file sits in dist/, so a
 *   module's `new URL("./worker.js", import.meta.url)` finds a thread's entry from any
 *   chunk (engine/pool.ts, sync.ts). Code reached only through `import()` (the commands
 *   behind src/cli/start.ts, the service) is loaded only when it runs. Dependencies stay
 *   in node_modules (not bundled).
 */
import { execFileSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { build } from "esbuild";
import { STAMP, sourceDigest } from "../bin/entry.js";

const root = join(import.meta.dirname, "..");
const src = join(root, "src");
const dist = join(root, "dist");

/**
 * The bundle's entries, by output name (dist/NAME.js): the package's exports (package.json),
 * the command (bin/entry.js) and the three threads' modules, which the code that starts
 * them finds beside itself.
 */
const ENTRIES: Record<string, string> = {
  index: "src/index.ts",
  tools: "src/tools/index.ts",
  cli: "src/cli/start.ts",
  worker: "src/engine/worker.ts",
  hasher: "src/engine/hasher.ts",
  "sync-worker": "src/sync-worker.ts",
};

function declarations(): void {
  const manifest = createRequire(import.meta.url).resolve("typescript/package.json");
  const tsc = join(dirname(manifest), "bin", "tsc");
  execFileSync(process.execPath, [tsc, "-p", join(root, "tsconfig.build.json")], { stdio: "inherit" });
}

async function bundle(): Promise<void> {
  await build({
    absWorkingDir: root,
    entryPoints: ENTRIES,
    outdir: dist,
    entryNames: "[name]",
    chunkNames: "chunk-[hash]",
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node22",
    packages: "external",
    logLevel: "warning",
  });
}

const STEPS: { name: string; run: () => void | Promise<void> }[] = [
  { name: "declarations", run: declarations },
  { name: "bundle", run: bundle },
];

const before = sourceDigest(src);
rmSync(dist, { recursive: true, force: true });
for (const step of STEPS) {
  try {
    await step.run();
  } catch (error) {
    console.error(`build: ${step.name} failed: ${(error as Error).message}`);
    process.exit(1);
  }
}
if (sourceDigest(src) !== before) {
  console.error("build: src/ changed while it was built; run the build again");
  process.exit(1);
}
writeFileSync(join(dist, STAMP), `${JSON.stringify({ source: before }, null, 2)}\n`);
