/**
 * `npm run build` (also run by `npm ci` and `npm install`, as `prepare`): builds dist/ from
 * src/ in steps, then stamps it with the digest of the sources built and the stats of
 * their files and directories, so that bin/mmh.js runs dist/ only while it matches src/
 * (bin/entry.js). A step that adds to dist/ (a WebAssembly module, say) is one more
 * entry in STEPS.
 *
 * - declarations: tsc writes the .d.ts files (the package's types), and no JavaScript;
 * - bundle: esbuild bundles the JavaScript: one file per entry in ENTRIES, and the modules
 *   they share in chunks, all in dist/ itself; the command (COMMAND) in a second build of
 *   its own, with chunks of its own. Every output file sits in dist/, so a module's
 *   `new URL("./worker.js", import.meta.url)` finds a thread's entry from any chunk
 *   (engine/pool.ts, sync.ts). Code reached only through `import()` (the commands behind
 *   src/cli/start.ts, the service) is loaded only when it runs. Dependencies stay in
 *   node_modules (not bundled), but for those in BUNDLED. The command's top-level
 *   functions are then rewritten so that V8 compiles them with their module
 *   (scripts/eager.ts), and Node's compile cache keeps them.
 * - kernels: HIER's WebAssembly kernels (assembly/) compiled with AssemblyScript into
 *   .cache/kernels-<digest>.wasm, with .cache/kernels.json naming it beside the stats of
 *   the files it came from (what a checkout loads: src/codecs/hier/kernels.ts), and
 *   copied to dist/kernels.wasm.
 *
 * `node scripts/build.ts --kernels` compiles the kernels into the cache alone (what
 * `npm run test:unit` does first, so tests run from src/ use them).
 */
import { execFileSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, join, relative } from "node:path";
import { build, type Plugin, transform } from "esbuild";
import { STAMP, sourceDigest, sourceTree } from "../bin/entry.js";
import { KERNEL_STAMP, kernelSourceDigest, kernelSources, kernelStats } from "../src/codecs/hier/kernels.ts";
import { eagerFunctions } from "./eager.ts";

const root = join(import.meta.dirname, "..");
const src = join(root, "src");
const dist = join(root, "dist");

// ---------------------------------------------------------------------------------------
// HIER's WebAssembly kernels: assembly/kernels.ts (and the files it imports from
// assembly/) -> .cache/kernels-<digest>.wasm (what
// src/codecs/hier/kernels.ts loads in a checkout) and, in a full build, a copy in dist/.

/**
 * Compiles the kernels with AssemblyScript unless the cache holds this source's build, and
 * stamps it (KERNEL_STAMP: the stats of the files it came from, so that a process finds it
 * without hashing the source); returns its path.
 */
function buildKernels(): string {
  const source = join(root, "assembly", "kernels.ts");
  const cache = join(root, ".cache");
  const stats = kernelStats(root);
  const target = join(cache, `kernels-${kernelSourceDigest(kernelSources(root))}.wasm`);
  mkdirSync(cache, { recursive: true });
  if (!existsSync(target)) {
    const asc = createRequire(import.meta.url).resolve("assemblyscript/bin/asc.js");
    const temporary = `${target}.${process.pid}.tmp`;
    // --memoryBase: the module's own data starts at 48 KiB, above the Huffman decoder's
    // 4-symbol table at address 0 and the histogram's sub-histograms at 32 KiB
    // (assembly/decode.ts and kernels.ts refuse to compile without it).
    execFileSync(
      process.execPath,
      [
        asc,
        source,
        "--outFile",
        temporary,
        "-O3",
        "--runtime",
        "stub",
        "--memoryBase",
        "49152",
        "--noAssert",
        "--enable",
        "simd",
      ],
      { stdio: "inherit" },
    );
    renameSync(temporary, target);
  }
  // Stamped only when the files are still as they were before the digest was taken: one
  // edited meanwhile leaves the stamp stale, and processes hash the source again.
  const stamp = join(cache, KERNEL_STAMP);
  const temporary = `${stamp}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify({ stats, wasm: basename(target) })}\n`);
  if (kernelStats(root) === stats) renameSync(temporary, stamp);
  else rmSync(temporary);
  return target;
}

if (process.argv.includes("--kernels")) {
  buildKernels();
  process.exit(0);
}

/**
 * The library bundle's entries, by output name (dist/NAME.js): the package's exports
 * (package.json), the three threads' modules and `mmh bench`'s child process (one per
 * measured cell), which the code that starts them finds beside itself. The command
 * (bin/entry.js) is COMMAND, below.
 */
const ENTRIES: Record<string, string> = {
  index: "src/index.ts",
  tools: "src/tools/index.ts",
  worker: "src/engine/worker.ts",
  hasher: "src/engine/hasher.ts",
  "sync-worker": "src/sync-worker.ts",
  "bench-child": "src/tools/bench-child.ts",
};

function declarations(): void {
  const manifest = createRequire(import.meta.url).resolve("typescript/package.json");
  const tsc = join(dirname(manifest), "bin", "tsc");
  execFileSync(process.execPath, [tsc, "-p", join(root, "tsconfig.build.json")], { stdio: "inherit" });
}

/**
 * Node's built-in modules, taken with process.getBuiltinModule() instead of `import`. An
 * ESM import of a built-in builds its module facade, which reads every export and so runs
 * the lazy getters behind them: `import { readFileSync } from "node:fs"` loads fs/promises,
 * readline and the streams, `import { parseArgs } from "node:util"` the streams and
 * worker_threads, whether or not anything uses them (docs/ENGINE.md, "Start-up and V8's
 * tiers"). Each built-in becomes a module of its own here that reads only the names the
 * sources import, each on first use of the module. A source that imports a built-in as a
 * whole (a default or namespace import) keeps the plain import for that built-in.
 */
function builtins(sources: string[]): Plugin {
  const named = new Map<string, Set<string>>();
  const whole = new Set<string>();
  const pattern = /^import\s+(type\s+)?([^;]*?)\s+from\s+"(node:[a-z_/]+)";/gms;
  for (const file of sources) {
    for (const [, typeOnly, clause, id] of readFileSync(file, "utf8").matchAll(pattern)) {
      if (typeOnly) continue;
      const braces = /^\{([^}]*)\}$/s.exec(clause.trim());
      if (!braces) {
        whole.add(id);
        continue;
      }
      const names = named.get(id) ?? new Set<string>();
      for (const part of braces[1].split(",")) {
        const name = part.trim();
        if (!name || name.startsWith("type ")) continue;
        names.add(name.split(/\s+as\s+/)[0].trim());
      }
      named.set(id, names);
    }
  }
  return {
    name: "builtins",
    setup(b) {
      // One such module per importing source (its path after the "#"), so that it lies in
      // its importer's chunk: one module shared by sources in different chunks would be a
      // chunk of its own, one more file for Node to resolve and load.
      b.onResolve({ filter: /^node:/ }, (args) =>
        named.has(args.path) && !whole.has(args.path)
          ? { path: `${args.path}#${args.importer}`, namespace: "builtin" }
          : undefined,
      );
      b.onLoad({ filter: /.*/, namespace: "builtin" }, (args) => {
        const id = args.path.slice(0, args.path.indexOf("#"));
        const names = [...(named.get(id) ?? [])].sort();
        const lines = [`const m = process.getBuiltinModule(${JSON.stringify(id)});`];
        for (const name of names) lines.push(`export const ${name} = m.${name};`);
        return { contents: lines.join("\n"), loader: "js" };
      });
    },
  };
}

/** Every .ts file under `dir`. */
function tsFiles(dir: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...tsFiles(path));
    else if (entry.name.endsWith(".ts")) files.push(path);
  }
  return files;
}

/**
 * Packages stay in node_modules, loaded from there (`packages: "external"`), except those
 * in BUNDLED, built into dist/: a package of a few small modules that a short command
 * loads, where Node's resolution of each of its files through node_modules costs more
 * than the code (@noble/hashes's SHA-256: common/sha256.ts).
 */
const BUNDLED = ["@noble/hashes/"];

function packagesExternal(): Plugin {
  return {
    name: "packages-external",
    setup(b) {
      b.onResolve({ filter: /^[^./]/ }, (args) =>
        args.path.startsWith("node:") || BUNDLED.some((p) => args.path.startsWith(p))
          ? undefined
          : { path: args.path, external: true },
      );
    },
  };
}

/**
 * The command, bundled apart from the library's entries: its chunks follow its own
 * `import()`s alone (the commands behind start.ts, the encoder, the service), not also
 * those of the library's entries, so a command loads fewer, larger files (`mmh -d`
 * 9 instead of 13, `mmh -c` 12 instead of 17; docs/ENGINE.md, "Start-up and V8's tiers").
 * The command's process never loads the library's build: its threads and `mmh bench`'s
 * children run in isolates or processes of their own.
 */
const COMMAND = { name: "cli", source: "src/cli/start.ts", chunks: "cli-[hash]" };

async function bundle(): Promise<void> {
  const plugins = [builtins(tsFiles(src)), packagesExternal()];
  for (const [entryPoints, chunkNames] of [
    [ENTRIES, "chunk-[hash]"],
    [{ [COMMAND.name]: COMMAND.source }, COMMAND.chunks],
  ] as const) {
    const { metafile } = await build({
      absWorkingDir: root,
      entryPoints,
      outdir: dist,
      entryNames: "[name]",
      chunkNames,
      bundle: true,
      splitting: true,
      format: "esm",
      platform: "node",
      target: "node22",
      plugins,
      logLevel: "warning",
      metafile: true,
    });
    if (chunkNames === COMMAND.chunks) await compiledWithModules(Object.keys(metafile.outputs));
  }
}

/**
 * The command's files with their top-level functions rewritten as parenthesised function
 * expressions where that is safe (scripts/eager.ts), so that V8 compiles them with their
 * module and Node's compile cache holds them: a command then no longer compiles each
 * function it calls on every start (docs/ENGINE.md, "Start-up and V8's tiers"). Each
 * rewritten file is parsed again before it is written.
 */
async function compiledWithModules(outputs: string[]): Promise<void> {
  const files = new Map<string, string>();
  for (const output of outputs)
    if (output.endsWith(".js"))
      files.set(relative(dist, join(root, output)), readFileSync(join(root, output), "utf8"));
  for (const [file, { text }] of eagerFunctions(files)) {
    await transform(text, { loader: "js", format: "esm", logLevel: "silent" });
    writeFileSync(join(dist, file), text);
  }
}

const STEPS: { name: string; run: () => void | Promise<void> }[] = [
  { name: "declarations", run: declarations },
  { name: "bundle", run: bundle },
  { name: "kernels", run: () => copyFileSync(buildKernels(), join(dist, "kernels.wasm")) },
];

const tree = sourceTree(src);
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
if (sourceDigest(src) !== before || JSON.stringify(sourceTree(src)) !== JSON.stringify(tree)) {
  console.error("build: src/ changed while it was built; run the build again");
  process.exit(1);
}
writeFileSync(join(dist, STAMP), `${JSON.stringify({ source: before, tree }, null, 2)}\n`);
