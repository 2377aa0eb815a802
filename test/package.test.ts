/**
 * The package as users get it: `npm pack` (which builds), then installed into an empty
 * project with no network, then used from JavaScript, from type-checked TypeScript and
 * through the installed `mmh` command.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";

const repo = join(import.meta.dirname, "..");
const work = mkdtempSync(join(tmpdir(), "mmh-package-"));
after(() => rmSync(work, { recursive: true, force: true }));

/** npm and the installed command find this Node (24) first, as `npm test` has them do. */
const env = { ...process.env, PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ""}` };

function npm(args: string[], cwd: string): string {
  const result = spawnSync("npm", args, { cwd, env, encoding: "utf8" });
  assert.equal(result.status, 0, `npm ${args.join(" ")} failed:\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

let tarball = "";
let files: string[] = [];
const project = join(work, "project");

before(() => {
  // Pack a copy of the checkout, so the build that `npm pack` runs never touches the
  // dist/ that other tests are running.
  const copy = join(work, "checkout");
  mkdirSync(copy);
  for (const name of ["package.json", "README.md", "LICENSE", "tsconfig.json", "tsconfig.build.json"])
    cpSync(join(repo, name), join(copy, name));
  for (const name of ["assembly", "bin", "docs", "src"])
    cpSync(join(repo, name), join(copy, name), { recursive: true });
  for (const name of ["build.ts", "eager.ts"])
    cpSync(join(repo, "scripts", name), join(copy, "scripts", name));
  symlinkSync(join(repo, "node_modules"), join(copy, "node_modules"), "dir");
  const [packed] = JSON.parse(npm(["pack", "--json", "--pack-destination", work], copy)) as {
    filename: string;
    files: { path: string }[];
  }[];
  tarball = join(work, packed.filename);
  files = packed.files.map((f) => f.path).sort();

  // An empty project whose lockfile pins the package's dependencies to the versions the
  // checkout's lockfile holds, so `npm ci --offline` installs them from npm's cache.
  mkdirSync(project);
  const lock = JSON.parse(readFileSync(join(repo, "package-lock.json"), "utf8")) as {
    packages: Record<string, { version: string; dev?: boolean; resolved?: string }>;
  };
  const manifest = JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as {
    version: string;
    dependencies: Record<string, string>;
    bin: Record<string, string>;
  };
  const spec = `file:${tarball}`;
  const packages: Record<string, unknown> = {
    "": { name: "project", dependencies: { mmh: spec } },
    "node_modules/mmh": {
      version: manifest.version,
      resolved: spec,
      dependencies: manifest.dependencies,
      bin: manifest.bin,
    },
  };
  // With each tarball's address as well as its integrity, npm takes it from its cache
  // instead of asking the registry for the package's versions.
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === "" || entry.dev) continue;
    const name = path.slice(path.lastIndexOf("node_modules/") + "node_modules/".length);
    const file = `${name.slice(name.lastIndexOf("/") + 1)}-${entry.version}.tgz`;
    packages[path] = { resolved: `https://registry.npmjs.org/${name}/-/${file}`, ...entry };
  }
  writeFileSync(
    join(project, "package.json"),
    JSON.stringify({ name: "project", private: true, type: "module", dependencies: { mmh: spec } }),
  );
  writeFileSync(
    join(project, "package-lock.json"),
    JSON.stringify({ name: "project", lockfileVersion: 3, requires: true, packages }),
  );
  npm(["ci", "--offline", "--no-audit", "--no-fund"], project);
});

describe("the npm package", () => {
  test("holds compiled code, declarations, docs and the command, and no tests, benchmarks or sources", () => {
    for (const needed of [
      "LICENSE",
      "README.md",
      "package.json",
      "bin/mmh.js",
      "bin/entry.js",
      "bin/cache.js",
      "dist/index.js",
      "dist/index.d.ts",
      "dist/tools.js",
      "dist/tools/index.d.ts",
      "dist/cli.js",
      "dist/worker.js",
      "dist/hasher.js",
      "dist/sync-worker.js",
      "dist/bench-child.js",
      "dist/kernels.wasm",
      "docs/API.md",
      "docs/FORMAT.md",
    ])
      assert.ok(files.includes(needed), `${needed} is missing from the tarball`);
    const shipped = new Set(files);
    for (const path of files) {
      assert.doesNotMatch(path, /^(test|bench|scripts|samples|src)\//, `${path} should not be shipped`);
      assert.doesNotMatch(path, /\.tsbuildinfo$|\.mmh$|\.safetensors$/, `${path} should not be shipped`);
      if (path.endsWith(".ts")) assert.ok(path.endsWith(".d.ts"), `${path} is a source, not a declaration`);
    }
    // Every export's code and types are shipped; the code is the bundle (scripts/build.ts).
    const { exports } = JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as {
      exports: Record<string, string | { types: string; default: string }>;
    };
    for (const target of Object.values(exports))
      for (const path of typeof target === "string" ? [target] : [target.types, target.default])
        assert.ok(shipped.has(path.replace(/^\.\//, "")), `${path} is missing from the tarball`);
  });

  test("imports from an .mjs file, compresses and reads back through the library", () => {
    writeFileSync(
      join(project, "use.mjs"),
      `import { writeFileSync } from "node:fs";
import { compress, compressFile, compressSync, decompress, decompressFile, decompressSync, MmhError, open, VERSION } from "mmh";
import { generate } from "mmh/tools";
const model = generate({ kind: "safetensors", dtype: "BF16", size: 1 << 20, seed: 3 });
const packed = await compress(model);
const back = await decompress(packed);
const sync = decompressSync(compressSync(model));
// Large enough for a pool: coding worker threads and (over 32 MiB) the hashing thread start from the bundle.
const large = generate({ kind: "safetensors", dtype: "BF16", size: 40 << 20, seed: 4 });
const threaded = Buffer.from(await decompress(await compress(large, { threads: 2 }), { threads: 2, checkSha256: true })).equals(large);
writeFileSync("model.safetensors", model);
const summary = await compressFile("model.safetensors", "model.safetensors.mmh");
await decompressFile("model.safetensors.mmh", "restored.safetensors");
const file = await open("model.safetensors.mmh");
const first = file.tensors[0];
const tensor = await file.readTensor(first.name);
const slice = model.subarray(first.offset, first.offset + first.length);
await file.close();
let code = "";
try { await decompress(new Uint8Array(64)); } catch (error) { code = error instanceof MmhError ? error.code : "?"; }
console.log(JSON.stringify({
  version: VERSION,
  same: Buffer.from(back).equals(model) && Buffer.from(sync).equals(model),
  threaded,
  smaller: packed.length < model.length,
  stored: summary.storedBytes,
  tensor: Buffer.from(tensor).equals(slice),
  format: file.format,
  code,
}));
`,
    );
    const out = JSON.parse(
      execFileSync(process.execPath, ["use.mjs"], { cwd: project, env, encoding: "utf8" }),
    );
    const { version } = JSON.parse(readFileSync(join(repo, "package.json"), "utf8"));
    assert.equal(out.version, version);
    assert.equal(out.same, true);
    assert.equal(out.threaded, true);
    assert.equal(out.smaller, true);
    assert.ok(out.stored > 0);
    assert.equal(out.tensor, true);
    assert.equal(out.format, "safetensors");
    assert.equal(out.code, "E_CORRUPT");
    assert.ok(
      readFileSync(join(project, "restored.safetensors")).equals(
        readFileSync(join(project, "model.safetensors")),
      ),
    );
  });

  test("a TypeScript file type-checks against the shipped declarations, and misuse does not", () => {
    writeFileSync(
      join(project, "use.ts"),
      `import { compress, type CompressOptions, type CompressSummary, type MmhFile, open, type StoredTensor } from "mmh";
import { generate, type GenOptions } from "mmh/tools";
const options: CompressOptions = { codec: "hier", goal: "ratio", chunkSize: 1 << 20 };
const gen: GenOptions = { kind: "safetensors", dtype: "F16", size: 4096 };
const packed: Uint8Array = await compress(generate(gen), options);
const file: MmhFile = await open(packed);
const tensors: readonly StoredTensor[] = file.tensors;
const bytes: Uint8Array = await file.readTensor(tensors[0].name);
const summary: CompressSummary | undefined = undefined;
// @ts-expect-error: goal is one of ratio, balanced, speed
await compress(bytes, { goal: "fastest" });
// @ts-expect-error: readTensor takes a name
await file.readTensor(3);
export { summary };
`,
    );
    writeFileSync(
      join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "es2024",
          lib: ["es2024", "esnext.disposable"],
          module: "nodenext",
          moduleResolution: "nodenext",
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          types: ["node"],
          typeRoots: [join(repo, "node_modules", "@types")],
        },
        files: ["use.ts"],
      }),
    );
    const tsc = join(repo, "node_modules", "typescript", "bin", "tsc");
    const good = spawnSync(process.execPath, [tsc, "-p", "."], { cwd: project, env, encoding: "utf8" });
    assert.equal(good.status, 0, `tsc failed:\n${good.stdout}${good.stderr}`);
    // A wrong type is caught: the declarations are real, not `any`.
    writeFileSync(
      join(project, "use.ts"),
      `import { compress } from "mmh";\nconst n: number = await compress(new Uint8Array(1));\nexport { n };\n`,
    );
    const bad = spawnSync(process.execPath, [tsc, "-p", "."], { cwd: project, env, encoding: "utf8" });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stdout, /TS2322/);
  });

  test("the installed mmh command compresses and restores a file", () => {
    const mmh = join(project, "node_modules", ".bin", "mmh");
    const input = join(project, "notes.txt");
    writeFileSync(input, "an installed command compresses this line\n".repeat(2000));
    const run = (args: string[]) => {
      const result = spawnSync(mmh, args, { cwd: project, env, encoding: "utf8" });
      assert.equal(result.status, 0, `mmh ${args.join(" ")} failed:\n${result.stderr}`);
      return result;
    };
    assert.match(run(["--version"]).stdout, /\d+\.\d+\.\d+/);
    run(["-q", input, "-o", join(project, "notes.mmh")]);
    run(["-q", "-d", join(project, "notes.mmh"), "-o", join(project, "notes.out")]);
    assert.ok(readFileSync(join(project, "notes.out")).equals(readFileSync(input)));
    const bad = spawnSync(mmh, ["-d", input, "-o", join(project, "x")], {
      cwd: project,
      env,
      encoding: "utf8",
    });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /^mmh: E_CORRUPT/m);
  });
});
