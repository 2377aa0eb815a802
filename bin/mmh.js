#!/usr/bin/env node
// The mmh command. MMH needs Node >= 22.18: zstd in node:zlib, and .ts files run directly.
const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(
    `mmh: E_UNSUPPORTED: Node ${process.versions.node} is too old; MMH needs Node 22.18 or later\n`,
  );
  process.exitCode = 1;
} else {
  const { enableCompileCache } = await import("./cache.js");
  enableCompileCache();
  const { fileURLToPath } = process.getBuiltinModule("node:url");
  const { entryUrl, resolveBundle } = await import("./entry.js");
  const root = fileURLToPath(new URL("..", import.meta.url));
  const url = entryUrl(root, "cli/start", "cli");
  resolveBundle(url);
  const { run } = await import(url);
  process.exitCode = await run(process.argv.slice(2));
}
