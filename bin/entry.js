// Which code the mmh command runs. An installed package has no src/: it runs the
// JavaScript bundle in dist/. In a checkout it runs dist/ when `npm run build` built it from
// exactly the sources in src/, else the TypeScript in src/ itself, so an edit never runs
// stale code (built code starts faster: docs/ENGINE.md, "Start-up and V8's tiers").
// Built-ins through process.getBuiltinModule, not `import`: an ESM import of node:fs builds
// its module facade, which loads fs/promises, readline and the streams (docs/ENGINE.md).
const { existsSync, readdirSync, readFileSync, statSync } = process.getBuiltinModule("node:fs");
const { join, relative } = process.getBuiltinModule("node:path");
const { pathToFileURL } = process.getBuiltinModule("node:url");

/** The name of the stamp the build writes into dist/, holding sourceDigest of what it compiled. */
export const STAMP = "BUILD.json";

/** Every .ts file under `dir`, in path order. */
function sources(dir) {
  const files = [];
  const walk = (at) => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      const path = join(at, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile() && entry.name.endsWith(".ts")) files.push(path);
    }
  };
  walk(dir);
  return files.sort();
}

/**
 * The size and modification time of every .ts file under `dir`, as one string: what the
 * build saw. Equal stats mean no file changed, as make judges it, for the cost of a stat
 * per file instead of reading and hashing them all at every start.
 */
export function sourceStats(dir) {
  return sources(dir)
    .map((path) => {
      const { size, mtimeMs } = statSync(path);
      return `${relative(dir, path)}\0${size}\0${mtimeMs}`;
    })
    .join("\n");
}

/** The sha256 of every .ts file under `dir`: their paths and contents, in path order. */
export function sourceDigest(dir) {
  const files = sources(dir);
  // Loaded here, not at the top: an installed package never needs it (node:crypto takes
  // several milliseconds to load).
  const { createHash } = process.getBuiltinModule("node:crypto");
  const hash = createHash("sha256");
  for (const path of files) {
    hash.update(`${relative(dir, path)}\0`);
    hash.update(readFileSync(path));
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
    // build: slower to start, never stale. No start reads or hashes the sources (hashing
    // them loaded node:crypto into every command, --version included).
    return typeof stamp.stats === "string" && stamp.stats === sourceStats(join(root, "src"));
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
