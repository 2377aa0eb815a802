// Node's compile cache for the mmh command: V8's compiled code of the modules it loads,
// kept between runs, so a command compiles its code once instead of on every start
// (docs/ENGINE.md, "Start-up and V8's tiers"). The cache is a directory of this user's
// own, never one another user could write; anything unexpected leaves the cache off and
// the command runs as without it. NODE_DISABLE_COMPILE_CACHE=1 turns it off.
const { mkdirSync, lstatSync } = process.getBuiltinModule("node:fs");
const { homedir, tmpdir } = process.getBuiltinModule("node:os");
const { isAbsolute, join } = process.getBuiltinModule("node:path");

/**
 * The cache's directory: $XDG_CACHE_HOME/mmh/compile-cache, or ~/.cache/mmh/compile-cache,
 * or (no home) mmh-compile-cache-UID in the temporary directory.
 */
export function compileCacheDir(env = process.env) {
  const xdg = env.XDG_CACHE_HOME;
  if (xdg && isAbsolute(xdg)) return join(xdg, "mmh", "compile-cache");
  let home = "";
  try {
    home = homedir();
  } catch {}
  if (home && isAbsolute(home)) return join(home, ".cache", "mmh", "compile-cache");
  const uid = process.getuid?.();
  return uid === undefined ? undefined : join(tmpdir(), `mmh-compile-cache-${uid}`);
}

/**
 * Whether `dir` is safe for this user's compiled code: a real directory (not a link),
 * owned by this user, that no other user may write.
 */
export function safeCacheDir(dir) {
  const stat = lstatSync(dir, { throwIfNoEntry: false });
  if (!stat?.isDirectory()) return false;
  const uid = process.getuid?.();
  if (uid !== undefined && stat.uid !== uid) return false;
  return (stat.mode & 0o022) === 0;
}

/** Turn Node's compile cache on in compileCacheDir(); returns whether it is on. */
export function enableCompileCache(env = process.env) {
  try {
    const { enableCompileCache: enable, constants } = process.getBuiltinModule("node:module");
    if (typeof enable !== "function" || env.NODE_DISABLE_COMPILE_CACHE) return false;
    const dir = compileCacheDir(env);
    if (!dir) return false;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (!safeCacheDir(dir)) return false;
    const { status } = enable(dir);
    const on = status === constants.compileCacheStatus.ENABLED;
    // Worker threads do not inherit a cache turned on by the call, only one named in
    // their environment (they start with a copy of process.env).
    if (on) process.env.NODE_COMPILE_CACHE = dir;
    return on || status === constants.compileCacheStatus.ALREADY_ENABLED;
  } catch {
    return false;
  }
}
