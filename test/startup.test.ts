/**
 * What the mmh command loads: --help and --version answer without the library, the codecs
 * or the service; coding a file loads the codecs but not the service, nor modules only
 * some calls need (docs/ENGINE.md, Start-up). The modules are seen through a module hook;
 * in the bundle, esbuild's "// src/..." comments say which sources a file holds.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { groupDigits } from "../src/common/bytes.ts";

const BIN = join(import.meta.dirname, "..", "bin", "mmh.js");
const dir = mkdtempSync(join(tmpdir(), "mmh-startup-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const hook = join(dir, "hook.mjs");
writeFileSync(
  hook,
  `import { registerHooks } from "node:module";
registerHooks({ load(url, context, next) { process.stderr.write("LOADED " + url + "\\n"); return next(url, context); } });
`,
);

const builtinsHook = join(dir, "builtins.cjs");
writeFileSync(
  builtinsHook,
  `const { writeSync } = require("node:fs");
process.on("exit", () => writeSync(2, "BUILTINS " + process.moduleLoadList.join(",") + "\\n"));
`,
);

/** The Node built-in modules (NativeModule names) loaded by the end of `mmh ARGS`. */
function builtinsLoaded(args: string[]): Set<string> {
  const r = spawnSync(process.execPath, ["-r", builtinsHook, BIN, ...args], { cwd: dir, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const line = r.stderr.split("\n").find((l) => l.startsWith("BUILTINS "));
  assert.ok(line, r.stderr);
  const names = line
    .slice(9)
    .split(",")
    .filter((m) => m.startsWith("NativeModule "))
    .map((m) => m.slice(13));
  return new Set(names);
}

/** The sources and packages `mmh ARGS` loads, and its result. */
function loads(args: string[]): { sources: string[]; status: number | null; stdout: string } {
  const r = spawnSync(process.execPath, ["--import", hook, BIN, ...args], { cwd: dir, encoding: "utf8" });
  const sources: string[] = [];
  for (const line of r.stderr.split("\n")) {
    const url = /^LOADED (file:\S+)/.exec(line)?.[1];
    if (!url) continue;
    const path = fileURLToPath(url);
    sources.push(path);
    if (/\/dist\/[^/]+\.js$/.test(path))
      for (const m of readFileSync(path, "utf8").matchAll(/^\/\/ (src\/\S+\.ts)$/gm)) sources.push(m[1]);
  }
  return { sources, status: r.status, stdout: r.stdout };
}

const library = /(^|\/)src\/(index|codecs\/|engine\/|formats\/|server\/|cli\/main)/;
const service = /node_modules\/(fastify|pino|prom-client)\//;
const onDemand = /node_modules\/(lz4-wasm-nodejs|synckit|yauzl|cli-progress)\//;
/** Sources only `mmh gen` needs (the generator and the quantisers behind it). */
const genOnly = /src\/tools\/(gen|gen-gguf|quant)\.ts$/;

describe("what the command loads", () => {
  test("--version and --help: the argument parser, not the library, the codecs or the service", () => {
    for (const args of [["--version"], ["--help"], ["-V"]]) {
      const r = loads(args);
      assert.equal(r.status, 0);
      assert.ok(
        r.sources.some((s) => /cli\/(start|args)|dist\/cli\.js/.test(s)),
        r.sources.join("\n"),
      );
      for (const s of r.sources) {
        assert.doesNotMatch(s, library, `${args}: ${s}`);
        assert.doesNotMatch(s, service, `${args}: ${s}`);
        assert.doesNotMatch(s, onDemand, `${args}: ${s}`);
      }
    }
  });

  test("--version and --help: no zlib, crypto, streams, fs/promises or worker_threads", () => {
    for (const args of [["--version"], ["--help"]]) {
      const loaded = builtinsLoaded(args);
      assert.ok(loaded.has("internal/util/parse_args/parse_args"), [...loaded].join(" "));
      for (const name of ["zlib", "crypto", "stream", "fs/promises", "worker_threads", "net"])
        assert.ok(!loaded.has(name), `${args}: ${name} loaded`);
    }
  });

  test("coding a small file: no worker_threads (no pool, the hash inline), no perf_hooks", () => {
    const input = join(dir, "small.txt");
    writeFileSync(input, "some words to compress\n".repeat(40));
    for (const args of [
      ["-c", "-q", input],
      ["-q", "-k", "-f", input],
    ]) {
      const loaded = builtinsLoaded(args);
      assert.ok(loaded.has("zlib"), [...loaded].join(" "));
      for (const name of ["worker_threads", "perf_hooks"])
        assert.ok(!loaded.has(name), `${args}: ${name} loaded`);
    }
    for (const args of [
      ["-d", "-c", "-q", `${input}.mmh`],
      ["verify", "-q", `${input}.mmh`],
      ["info", `${input}.mmh`],
    ]) {
      const loaded = builtinsLoaded(args);
      for (const name of ["worker_threads", "perf_hooks"])
        assert.ok(!loaded.has(name), `${args}: ${name} loaded`);
    }
  });

  test("coding to a pipe: no stream for standard output or error, and no fs/promises from the build", () => {
    const input = join(dir, "piped.txt");
    writeFileSync(input, "a line to code through a pipe\n".repeat(60));
    assert.equal(spawnSync(process.execPath, [BIN, "-q", "-k", "-f", input]).status, 0);
    // The build takes built-ins through process.getBuiltinModule; run from src/, Node's
    // facade of node:fs loads fs/promises whatever the code uses.
    const built = loads(["--version"]).sources.some((s) => /\/dist\//.test(s));
    for (const args of [
      ["-c", "-q", input],
      ["-d", "-c", "-q", `${input}.mmh`],
      ["-d", "-c", `${input}.mmh`],
      ["-c", input],
    ]) {
      // Standard output and standard error are pipes here: their streams would load net.
      const loaded = builtinsLoaded(args);
      assert.ok(!loaded.has("net"), `${args}: net loaded`);
      if (built)
        for (const name of ["fs/promises", "internal/readline/interface"])
          assert.ok(!loaded.has(name), `${args}: ${name} loaded`);
    }
  });

  test("compressing to /dev/null: standard output's stream is not built to ask whether it is a terminal", () => {
    const input = join(dir, "to-null.txt");
    writeFileSync(input, "a line to code into the null device\n".repeat(40));
    const out = openSync("/dev/null", "w");
    try {
      const r = spawnSync(process.execPath, ["-r", builtinsHook, BIN, "-c", "-q", input], {
        cwd: dir,
        encoding: "utf8",
        stdio: ["ignore", out, "pipe"],
      });
      assert.equal(r.status, 0, r.stderr);
      const line = r.stderr.split("\n").find((l) => l.startsWith("BUILTINS "));
      assert.ok(line, r.stderr);
      assert.ok(line.includes("NativeModule zlib"), line);
      assert.ok(!line.includes("NativeModule internal/fs/sync_write_stream"), "process.stdout built");
    } finally {
      closeSync(out);
    }
  });

  test("decompressing a small file: the codecs, but not the service or what only some calls need", () => {
    const input = join(dir, "notes.txt");
    writeFileSync(input, "a line of text to compress\n".repeat(100));
    assert.equal(spawnSync(process.execPath, [BIN, "-q", "--codec", "zstd", input]).status, 0);
    const r = loads(["-d", "-c", "-q", `${input}.mmh`]);
    assert.equal(r.status, 0);
    assert.equal(r.stdout, readFileSync(input, "utf8"));
    assert.ok(
      r.sources.some((s) => /src\/codecs\//.test(s)),
      "the codecs are loaded",
    );
    for (const s of r.sources) {
      assert.doesNotMatch(s, service, s);
      assert.doesNotMatch(s, onDemand, s);
      assert.doesNotMatch(s, genOnly, s);
    }
  });
  test("each half of the codec loads alone: -d no encoder, format readers or crypto; -c no archive or tools", () => {
    const input = join(dir, "halves.txt");
    writeFileSync(input, "the decoder and the encoder load apart\n".repeat(100));
    assert.equal(spawnSync(process.execPath, [BIN, "-q", "-k", "-f", input]).status, 0);
    const decoding = loads(["-d", "-c", "-q", `${input}.mmh`]);
    assert.equal(decoding.status, 0);
    assert.equal(decoding.stdout, readFileSync(input, "utf8"));
    assert.ok(
      decoding.sources.some((s) => /src\/engine\/decoder\.ts$/.test(s)),
      decoding.sources.join("\n"),
    );
    const encoderSide =
      /src\/(compress|engine\/encoder|engine\/describe|formats\/|archive\/|tools\/analyze|open\.ts|sync\.ts)/;
    for (const s of decoding.sources) assert.doesNotMatch(s, encoderSide, `-d: ${s}`);
    // The content hash is checked only with --check-sha256: node:crypto is not loaded.
    const decodingBuiltins = builtinsLoaded(["-d", "-c", "-q", `${input}.mmh`]);
    assert.ok(decodingBuiltins.has("zlib"), [...decodingBuiltins].join(" "));
    for (const name of ["crypto", "worker_threads"])
      assert.ok(!decodingBuiltins.has(name), `-d: ${name} loaded`);
    const encoding = loads(["-c", "-q", input]);
    assert.equal(encoding.status, 0);
    assert.ok(
      encoding.sources.some((s) => /src\/engine\/encoder\.ts$/.test(s)),
      encoding.sources.join("\n"),
    );
    for (const s of encoding.sources)
      assert.doesNotMatch(s, /src\/(archive\/|tools\/analyze|open\.ts|sync\.ts)/, `-c: ${s}`);
  });

  test("a small compress hashes its content without node:crypto, and records the right sha256", () => {
    const input = join(dir, "hashed.bin");
    const bytes = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7919) & 0xff));
    writeFileSync(input, bytes);
    const loaded = builtinsLoaded(["-q", "-k", "-f", input]);
    assert.ok(!loaded.has("crypto"), "node:crypto loaded");
    const info = spawnSync(process.execPath, [BIN, "info", "--json", `${input}.mmh`], { encoding: "utf8" });
    assert.equal(info.status, 0, info.stderr);
    assert.equal(JSON.parse(info.stdout).sha256, createHash("sha256").update(bytes).digest("hex"));
    const verified = spawnSync(process.execPath, [BIN, "-d", "-c", "-q", "--check-sha256", `${input}.mmh`]);
    assert.equal(verified.status, 0, String(verified.stderr));
    assert.ok(Buffer.from(verified.stdout).equals(bytes));
  });

  test("-c loads no decoder: no decompress.ts, decoder, reader, legacy reader or HTTP source", () => {
    const decoderSide =
      /src\/(decompress\.ts|engine\/decoder\.ts|engine\/reader\.ts|legacy\/|remote\/http\.ts)/;
    const input = join(dir, "encoder-only.txt");
    writeFileSync(input, "compressing needs the encoder alone\n".repeat(50));
    for (const args of [
      ["-c", "-q", input],
      ["-q", "-k", "-f", input],
    ]) {
      const r = loads(args);
      assert.equal(r.status, 0);
      assert.ok(
        r.sources.some((s) => /src\/engine\/encoder\.ts$/.test(s)),
        r.sources.join("\n"),
      );
      for (const s of r.sources) assert.doesNotMatch(s, decoderSide, `${args}: ${s}`);
    }
  });

  test("-c loads only the recogniser that the file's first bytes name", () => {
    // The recognisers: every module of src/formats/ but the dispatch, the magic numbers,
    // the shared helpers and the raw-file segmenter.
    const recogniser = /src\/formats\/(?!(index|magic|regions|types|detect)\.ts$)[^/]+\.ts$/;
    const text = join(dir, "plain.txt");
    writeFileSync(text, "no model file's magic number starts this\n".repeat(50));
    const plain = loads(["-c", "-q", text]);
    assert.equal(plain.status, 0);
    assert.ok(
      plain.sources.some((s) => /src\/formats\/magic\.ts$/.test(s)),
      plain.sources.join("\n"),
    );
    for (const s of plain.sources) assert.doesNotMatch(s, recogniser, `-c of text: ${s}`);
    const header = Buffer.from(JSON.stringify({ w: { dtype: "F32", shape: [64], data_offsets: [0, 256] } }));
    const size = Buffer.alloc(8);
    size.writeBigUInt64LE(BigInt(header.length));
    const weights = join(dir, "tiny.safetensors");
    writeFileSync(weights, Buffer.concat([size, header, Buffer.alloc(256, 7)]));
    const model = loads(["-c", "-q", weights]);
    assert.equal(model.status, 0);
    const formats = model.sources.filter((s) => recogniser.test(s)).map((s) => /[^/]+\.ts$/.exec(s)?.[0]);
    assert.deepEqual([...new Set(formats)], ["safetensors.ts"]);
  });
});

describe("HIER's WebAssembly kernels at start", () => {
  test("a checkout finds its kernels build through the build's stamp, without hashing the source", () => {
    // The run compiles the kernels (a preload counts WebAssembly.Module calls) and loads
    // no node:crypto: the stamp in .cache/ names the build (hashing assembly/ to find it
    // loaded node:crypto into every process that decoded a HIER chunk).
    const input = join(dir, "weights.safetensors");
    const gen = spawnSync(process.execPath, [BIN, "gen", "--size", "256K", "--dtype", "BF16", "-o", input]);
    assert.equal(gen.status, 0, String(gen.stderr));
    assert.equal(spawnSync(process.execPath, [BIN, "-q", "-k", "-f", "-T", "1", input]).status, 0);
    const probe = join(dir, "wasm.cjs");
    writeFileSync(
      probe,
      `const { writeSync } = require("node:fs");
let compiled = 0;
const Module = WebAssembly.Module;
WebAssembly.Module = function (bytes) { compiled++; return new Module(bytes); };
process.on("exit", () => writeSync(2, "WASM " + compiled + " BUILTINS " + process.moduleLoadList.join(",") + "\\n"));
`,
    );
    const r = spawnSync(process.execPath, ["-r", probe, BIN, "-d", "-c", "-q", "-T", "1", `${input}.mmh`], {
      cwd: dir,
      maxBuffer: 1 << 22,
    });
    assert.equal(r.status, 0, String(r.stderr));
    assert.ok(Buffer.from(r.stdout).equals(readFileSync(input)), "the round trip");
    const line = String(r.stderr)
      .split("\n")
      .find((l) => l.startsWith("WASM "));
    assert.ok(line, String(r.stderr));
    assert.ok(Number(line.split(" ")[1]) >= 1, `the kernels were not compiled: ${line.slice(0, 40)}`);
    assert.ok(
      !line.includes("NativeModule crypto,") && !line.endsWith("NativeModule crypto"),
      "node:crypto loaded",
    );
  });
});

describe("groupDigits (mmh info's byte counts, without ICU's number formatting)", () => {
  test("writes integers as toLocaleString('en-US') does", () => {
    const values = [0, 1, 12, 999, 1000, 1001, 65536, 999999, 1000000, 1234567890, -1, -1234, -999999];
    for (let v = 1; v < Number.MAX_SAFE_INTEGER / 7; v = v * 7 + 3) values.push(v, -v);
    values.push(Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 1.5, 2 ** 60);
    for (const v of values) assert.equal(groupDigits(v), v.toLocaleString("en-US"), String(v));
  });
});
