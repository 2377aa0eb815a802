// Which code the mmh command runs. An installed package has no src/: it runs the
// JavaScript bundle in dist/. In a checkout it runs dist/ when `npm run build` built it from
// exactly the sources in src/, else the TypeScript in src/ itself, so an edit never runs
// stale code (built code starts faster: docs/ENGINE.md, "Start-up and V8's tiers").
// Built-ins through process.getBuiltinModule, not `import`: an ESM import of node:fs builds
// its module facade, which loads fs/promises, readline and the streams (docs/ENGINE.md).
const { existsSync, readdirSync, readFileSync, statSync } = process.getBuiltinModule("node:fs");
const { join } = process.getBuiltinModule("node:path");
const { pathToFileURL } = process.getBuiltinModule("node:url");

/** The name of the stamp the build writes into dist/, holding sourceDigest of what it compiled. */
export const STAMP = "BUILD.json";

/**
 * What the build saw of `dir`: the modification time of every directory under it (itself
 * included), and the size and modification time of every .ts file, by path relative to
 * `dir`.
 */
export function sourceTree(dir) {
  const dirs = {};
  const files = {};
  const walk = (rel) => {
    const at = join(dir, rel);
    dirs[rel] = statSync(at).mtimeMs;
    for (const entry of readdirSync(at, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile() && entry.name.endsWith(".ts")) {
        const { size, mtimeMs } = statSync(join(dir, path));
        files[path] = [size, mtimeMs];
      }
    }
  };
  walk("");
  return { dirs, files };
}

/**
 * Whether `dir` holds exactly the .ts files of `tree` (sourceTree), each of the size and
 * modification time the build saw, as make judges: a stat per file and per directory, and
 * no directory listed unless it changed. Adding, removing or renaming an entry sets its
 * directory's time, so a directory whose time is unchanged holds the same names; one
 * whose time changed is listed again, and must hold no .ts file or directory the build
 * did not see (other files do not count).
 */
export function treeIsCurrent(dir, tree) {
  if (!tree || typeof tree.dirs !== "object" || typeof tree.files !== "object") return false;
  // Each path put together by hand: path.join normalises every path it joins, which cost
  // as much as the stats themselves (docs/ENGINE.md, "Checking a checkout without
  // reading it"). The stamp's relative paths use "/" on every platform, as sourceTree
  // writes them, and every platform's file calls accept it.
  const under = `${dir}/`;
  for (const [rel, [size, mtimeMs]] of Object.entries(tree.files)) {
    const stat = statSync(under + rel, { throwIfNoEntry: false });
    if (!stat?.isFile() || stat.size !== size || stat.mtimeMs !== mtimeMs) return false;
  }
  for (const [rel, mtimeMs] of Object.entries(tree.dirs)) {
    const at = under + rel;
    const stat = statSync(at, { throwIfNoEntry: false });
    if (!stat?.isDirectory()) return false;
    if (stat.mtimeMs === mtimeMs) continue;
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      if (
        entry.isDirectory()
          ? !Object.hasOwn(tree.dirs, path)
          : isSource(entry) && !Object.hasOwn(tree.files, path)
      )
        return false;
    }
  }
  return true;
}

const isSource = (entry) => entry.isFile() && entry.name.endsWith(".ts");

/** The sha256 of every .ts file under `dir`: their paths and contents, in path order. */
export function sourceDigest(dir) {
  const files = Object.keys(sourceTree(dir).files).sort();
  // Loaded here, not at the top: no command needs it (node:crypto takes several
  // milliseconds to load).
  const { createHash } = process.getBuiltinModule("node:crypto");
  const hash = createHash("sha256");
  for (const path of files) {
    hash.update(`${path}\0`);
    hash.update(readFileSync(join(dir, path)));
    hash.update("\0");
  }
  return hash.digest("hex");
}

/** Whether `root`/dist holds a build of exactly the sources in `root`/src. */
export function builtIsCurrent(root) {
  try {
    const stamp = JSON.parse(readFileSync(join(root, "dist", STAMP), "utf8"));
    // The files exactly as the build saw them (names, sizes, modification times), as make
    // judges. A file touched, checked out or copied since runs the sources until the next
    // build: slower to start, never stale. No start reads or hashes the sources, nor lists
    // a directory that did not change (listing all of src/ took longer than the stats).
    return treeIsCurrent(join(root, "src"), stamp.tree);
  } catch {
    return false;
  }
}

/**
 * The URL of the module to import: `built`.js in dist/ (a bundle's entry, scripts/build.ts),
 * or `source`.ts under src/ (a path without its extension).
 */
export function entryUrl(root, source, built) {
  const file =
    !existsSync(join(root, "src")) || builtIsCurrent(root)
      ? join(root, "dist", `${built}.js`)
      : join(root, "src", `${source}.ts`);
  return pathToFileURL(file).href;
}

/**
 * Resolves the command's entry `url` (entryUrl) and the imports between the files of
 * dist/ (`./NAME.js`, the chunks scripts/build.ts writes) without Node's resolver, for a
 * command run from dist/. Node's resolver handles each import of each file on its own: it
 * parses URLs, stats and realpaths the file and reads package.json for the file's format
 * (docs/ENGINE.md, "Resolving the bundle's imports"). A chunk's import names a file beside
 * it, in the real directory of its importer (Node realpaths bin/mmh.js, whose URL gives
 * the entry's), and an ES module, as package.json's "type" makes every .js file. Anything
 * else (a package, a file of src/) goes to Node's resolver. Returns whether the hook is on.
 */
export function resolveBundle(url) {
  const dist = new URL(".", url).href;
  if (!url.endsWith(".js") || !dist.endsWith("/dist/")) return false;
  const { registerHooks } = process.getBuiltinModule("node:module");
  if (typeof registerHooks !== "function") return false;
  const own = /^\.\/[\w-]+\.js$/;
  registerHooks({
    resolve(specifier, context, next) {
      if (specifier === url) return { url, format: "module", shortCircuit: true };
      const parent = context.parentURL;
      if (
        own.test(specifier) &&
        parent?.startsWith(dist) &&
        parent.indexOf("/", dist.length) === -1 &&
        !context.importAttributes?.type
      )
        return { url: dist + specifier.slice(2), format: "module", shortCircuit: true };
      return next(specifier, context);
    },
  });
  return true;
}
