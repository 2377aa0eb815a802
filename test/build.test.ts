/** bin/entry.js: the command runs the built dist/ only while it matches src/; bin/cache.js: its compile cache. */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { pathToFileURL } from "node:url";
import { compileCacheDir, safeCacheDir } from "../bin/cache.js";
import { builtIsCurrent, entryUrl, STAMP, sourceDigest, sourceTree } from "../bin/entry.js";
import {
  KERNEL_STAMP,
  kernelSourceDigest,
  kernelSources,
  kernelStats,
  stampedBuild,
} from "../src/codecs/hier/kernels.ts";

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

  // A stamp of the digest alone (a build before stats were recorded), or of the stats as
  // one string (before directories were recorded), is not trusted.
  writeFileSync(join(dist, STAMP), JSON.stringify({ source: sourceDigest(src) }));
  assert.equal(builtIsCurrent(root), false);
  writeFileSync(join(dist, STAMP), JSON.stringify({ source: sourceDigest(src), stats: "cli/start.ts" }));
  assert.equal(builtIsCurrent(root), false);
  const stamp = () =>
    writeFileSync(join(dist, STAMP), JSON.stringify({ source: sourceDigest(src), tree: sourceTree(src) }));
  stamp();
  assert.equal(builtIsCurrent(root), true);
  assert.equal(entryUrl(root, "cli/start", "cli"), fromDist);

  const before = sourceDigest(src);
  writeFileSync(join(src, "cli", "start.ts"), "export const x: number = 2;\n");
  assert.notEqual(sourceDigest(src), before);
  assert.equal(entryUrl(root, "cli/start", "cli"), fromSrc, "an edited source");
  writeFileSync(join(src, "cli", "start.ts"), "export const x: number = 1;\n");
  assert.equal(sourceDigest(src), before, "the digest depends on content, not on times");
  assert.equal(
    entryUrl(root, "cli/start", "cli"),
    fromSrc,
    "same content, a new time: the sources, until a build",
  );
  stamp();
  assert.equal(entryUrl(root, "cli/start", "cli"), fromDist);
  utimesSync(join(src, "index.ts"), new Date(), new Date(Date.now() + 5000));
  assert.equal(entryUrl(root, "cli/start", "cli"), fromSrc, "a touched file");
  stamp();

  writeFileSync(join(src, "extra.ts"), "export {};\n");
  assert.equal(entryUrl(root, "cli/start", "cli"), fromSrc, "a new source file");
  rmSync(join(src, "extra.ts"));
  writeFileSync(join(src, "notes.md"), "not code\n");
  assert.equal(entryUrl(root, "cli/start", "cli"), fromDist, "only .ts files count");
  mkdirSync(join(src, "docs"));
  writeFileSync(join(src, "docs", "notes.md"), "not code\n");
  assert.equal(entryUrl(root, "cli/start", "cli"), fromSrc, "a new directory (it may hold sources)");
  stamp();
  writeFileSync(join(src, "docs", "more.md"), "not code\n");
  assert.equal(entryUrl(root, "cli/start", "cli"), fromDist, "a non-source file in a directory");
  writeFileSync(join(src, "docs", "late.ts"), "export {};\n");
  assert.equal(
    entryUrl(root, "cli/start", "cli"),
    fromSrc,
    "a source file in a directory seen empty of them",
  );
  rmSync(join(src, "docs"), { recursive: true });
  assert.equal(entryUrl(root, "cli/start", "cli"), fromSrc, "a directory removed");
  stamp();
  rmSync(join(src, "cli", "start.ts"));
  assert.equal(entryUrl(root, "cli/start", "cli"), fromSrc, "a source file removed");
  writeFileSync(join(src, "cli", "start.ts"), "export const x: number = 1;\n");
  stamp();
  rmSync(join(src, "index.ts"));
  writeFileSync(join(src, "index2.ts"), "export {};\n");
  assert.equal(entryUrl(root, "cli/start", "cli"), fromSrc, "a renamed source file");
});

test("the kernels' stamp names their build only while assembly/ is as the build saw it", () => {
  const checkout = join(root, "kernels");
  const assembly = join(checkout, "assembly");
  mkdirSync(assembly, { recursive: true });
  mkdirSync(join(checkout, ".cache"));
  writeFileSync(join(assembly, "kernels.ts"), "export function f(): i32 { return 1; }\n");
  writeFileSync(join(assembly, "decode.ts"), "export function g(): i32 { return 2; }\n");
  const wasm = `kernels-${kernelSourceDigest(kernelSources(checkout))}.wasm`;
  const stamp = (stats = kernelStats(checkout), name = wasm) =>
    writeFileSync(join(checkout, ".cache", KERNEL_STAMP), JSON.stringify({ stats, wasm: name }));
  assert.equal(stampedBuild(checkout), undefined, "no stamp");
  stamp();
  assert.equal(stampedBuild(checkout), join(checkout, ".cache", wasm));
  stamp(kernelStats(checkout), "../../elsewhere.wasm");
  assert.equal(stampedBuild(checkout), undefined, "a stamp naming a file outside the cache");
  stamp();
  writeFileSync(join(assembly, "decode.ts"), "export function g(): i32 { return 3; }\n");
  assert.equal(stampedBuild(checkout), undefined, "an edited source");
  stamp();
  utimesSync(join(assembly, "kernels.ts"), new Date(), new Date(Date.now() + 5000));
  assert.equal(stampedBuild(checkout), undefined, "a touched source");
  stamp();
  writeFileSync(join(assembly, "extra.ts"), "export {};\n");
  assert.equal(stampedBuild(checkout), undefined, "a new source file");
  stamp();
  rmSync(join(assembly, "extra.ts"));
  assert.equal(stampedBuild(checkout), undefined, "a source file removed");
  stamp();
  writeFileSync(join(root, "kernels", ".cache", KERNEL_STAMP), "{ not json");
  assert.equal(stampedBuild(checkout), undefined, "a damaged stamp");

  // The checkout's own stamp, as `node scripts/build.ts --kernels` writes it (instantly when
  // the build is cached), names the build of its current source.
  const repo = join(import.meta.dirname, "..");
  execFileSync(process.execPath, [join(repo, "scripts", "build.ts"), "--kernels"], { stdio: "inherit" });
  assert.equal(
    stampedBuild(repo),
    join(repo, ".cache", `kernels-${kernelSourceDigest(kernelSources(repo))}.wasm`),
  );
});

describe("the compile cache (bin/cache.js)", () => {
  const home = join(root, "home");
  mkdirSync(home);

  test("lives in the user's cache directory, or a per-user one in the temporary directory", () => {
    assert.equal(compileCacheDir({ XDG_CACHE_HOME: "/x/cache" }), join("/x/cache", "mmh", "compile-cache"));
    const fallback = compileCacheDir({ XDG_CACHE_HOME: "relative/dir" });
    assert.ok(fallback?.endsWith(join("mmh", "compile-cache")) || fallback?.includes("mmh-compile-cache-"));
  });

  test("only a real directory of this user's that no one else may write is used", () => {
    const good = join(root, "good");
    mkdirSync(good, { mode: 0o700 });
    assert.equal(safeCacheDir(good), true);
    const open = join(root, "open");
    mkdirSync(open);
    chmodSync(open, 0o777);
    assert.equal(safeCacheDir(open), false, "writable by others");
    const link = join(root, "link");
    symlinkSync(good, link);
    assert.equal(safeCacheDir(link), false, "a symbolic link");
    writeFileSync(join(root, "file"), "");
    assert.equal(safeCacheDir(join(root, "file")), false, "a file");
    assert.equal(safeCacheDir(join(root, "missing")), false);
  });

  const mmhEnv = () => {
    const base: NodeJS.ProcessEnv = { ...process.env, HOME: home };
    delete base.NODE_DISABLE_COMPILE_CACHE;
    delete base.NODE_COMPILE_CACHE;
    return base;
  };
  const mmh = (env: NodeJS.ProcessEnv) =>
    spawnSync(process.execPath, [join(import.meta.dirname, "..", "bin", "mmh.js"), "--version"], {
      env: { ...mmhEnv(), ...env },
      encoding: "utf8",
    });

  test("the command fills it, and runs the same when it cannot be used", () => {
    const cache = join(root, "xdg");
    const r = mmh({ XDG_CACHE_HOME: cache });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^mmh \d+\.\d+\.\d+/);
    const dir = join(cache, "mmh", "compile-cache");
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.ok(readdirSync(dir, { recursive: true }).length > 0, "cache entries were written");

    // A cache directory others may write is not used; a path that cannot be a directory neither.
    const shared = join(root, "shared-cache");
    mkdirSync(join(shared, "mmh", "compile-cache"), { recursive: true });
    chmodSync(join(shared, "mmh", "compile-cache"), 0o777);
    const unsafe = mmh({ XDG_CACHE_HOME: shared });
    assert.equal(unsafe.status, 0, unsafe.stderr);
    assert.equal(unsafe.stdout, r.stdout);
    assert.deepEqual(readdirSync(join(shared, "mmh", "compile-cache")), []);
    writeFileSync(join(root, "not-a-dir"), "");
    const blocked = mmh({ XDG_CACHE_HOME: join(root, "not-a-dir") });
    assert.equal(blocked.status, 0, blocked.stderr);
    assert.equal(blocked.stdout, r.stdout);
    assert.equal(blocked.stderr, "");

    // Worker threads get it through their environment.
    const probe = spawnSync(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `const { enableCompileCache } = await import(${JSON.stringify(pathToFileURL(join(import.meta.dirname, "..", "bin", "cache.js")).href)});
const on = enableCompileCache();
const { Worker } = await import("node:worker_threads");
const inWorker = await new Promise((resolve) => new Worker("process.getBuiltinModule('node:worker_threads').parentPort.postMessage(process.getBuiltinModule('node:module').getCompileCacheDir() ?? null)", { eval: true }).once("message", resolve));
console.log(JSON.stringify({ on, env: process.env.NODE_COMPILE_CACHE, inWorker }));`,
      ],
      { env: { ...mmhEnv(), XDG_CACHE_HOME: cache }, encoding: "utf8" },
    );
    assert.equal(probe.status, 0, probe.stderr);
    const seen = JSON.parse(probe.stdout);
    assert.equal(seen.on, true);
    assert.equal(seen.env, dir);
    assert.ok(String(seen.inWorker).startsWith(dir), `the worker's cache: ${seen.inWorker}`);

    // NODE_DISABLE_COMPILE_CACHE turns it off.
    const off = join(root, "off");
    const disabled = mmh({ XDG_CACHE_HOME: off, NODE_DISABLE_COMPILE_CACHE: "1" });
    assert.equal(disabled.status, 0, disabled.stderr);
    assert.equal(existsSync(join(off, "mmh", "compile-cache")), false);
  });
});

describe("the bundle's imports resolved by bin/entry.js (resolveBundle)", () => {
  const repo = join(import.meta.dirname, "..");
  const entry = pathToFileURL(join(repo, "bin", "entry.js")).href;
  const cli = pathToFileURL(join(repo, "dist", "cli.js")).href;

  test("only for a command run from dist/", async () => {
    const { resolveBundle } = await import("../bin/entry.js");
    assert.equal(resolveBundle(pathToFileURL(join(repo, "src", "cli", "start.ts")).href), false);
  });

  const unbuilt = builtIsCurrent(repo) ? false : "dist/ is not a build of src/ (npm run build)";
  test("resolves what Node would: the same files load, and no chunk's import reaches Node", {
    skip: unbuilt,
  }, () => {
    // A child process, as the hooks are the process's: a recording hook registered first
    // (so it runs after resolveBundle's, on what that passes on), a load hook listing the
    // files loaded, then `mmh -d -c` of a small file run from dist/.
    const input = join(root, "resolved.txt");
    writeFileSync(input, "a line the bundle's resolver reads back\n".repeat(50));
    const bin = join(repo, "bin", "mmh.js");
    assert.equal(spawnSync(process.execPath, [bin, "-q", "-k", "-f", input]).status, 0);
    const child = (own: boolean) => {
      const script = `
const { registerHooks } = await import("node:module");
const passed = [];
const loaded = [];
registerHooks({
  resolve(s, c, next) { passed.push(s); return next(s, c); },
  load(u, c, next) { loaded.push(u); return next(u, c); },
});
if (${own}) {
  const { resolveBundle } = await import(${JSON.stringify(entry)});
  if (!resolveBundle(${JSON.stringify(cli)})) throw new Error("not registered");
}
const { run } = await import(${JSON.stringify(cli)});
const code = await run(["-d", "-c", "-q", ${JSON.stringify(`${input}.mmh`)}]);
process.stderr.write("\\nRESULT " + JSON.stringify({ code, passed, loaded }) + "\\n");
`;
      const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      const line = r.stderr.split("\n").find((l) => l.startsWith("RESULT "));
      assert.ok(line, r.stderr);
      return { ...JSON.parse(line.slice(7)), stdout: r.stdout } as {
        code: number;
        passed: string[];
        loaded: string[];
        stdout: string;
      };
    };
    const node = child(false);
    const own = child(true);
    assert.equal(own.code, 0);
    assert.equal(own.stdout, node.stdout);
    assert.ok(node.passed.some((s) => /^\.\/cli-\w+\.js$/.test(s)));
    assert.deepEqual(
      own.passed.filter((s) => s.startsWith("./")),
      [],
    );
    const bundle = (urls: string[]) => urls.filter((u) => u.includes("/dist/")).sort();
    assert.deepEqual(bundle(own.loaded), bundle(node.loaded));
    assert.ok(bundle(own.loaded).length > 5);
  });
});
