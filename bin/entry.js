// Which code the mmh command runs: the JavaScript that `npm run build` compiled into
// dist/ when it was compiled from exactly the sources in src/, else the TypeScript in
// src/ itself. Node strips the types of every .ts module it loads, which cost the
// command about 0.12 s of its start on the development machine; compiled code starts
// without that. A dist/ that is missing, half-built or older than src/ is never used.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { pathToFileURL } from "node:url";

/** The name of the stamp the build writes into dist/, holding sourceDigest of what it compiled. */
export const STAMP = "BUILD.json";

/** The sha256 of every .ts file under `dir`: their paths and contents, in path order. */
export function sourceDigest(dir) {
  const files = [];
  const walk = (at) => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      const path = join(at, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile() && entry.name.endsWith(".ts")) files.push(path);
    }
  };
  walk(dir);
  files.sort();
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
    return typeof stamp.source === "string" && stamp.source === sourceDigest(join(root, "src"));
  } catch {
    return false;
  }
}

/** The URL of the module `name` (a path under src/ without its extension) to import. */
export function entryUrl(root, name) {
  const file = builtIsCurrent(root) ? join(root, "dist", `${name}.js`) : join(root, "src", `${name}.ts`);
  return pathToFileURL(file).href;
}
