/** `mmh bench`: its errors, its classification of inputs, and what its report holds. */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, describe, test } from "node:test";
import { parseGenSpec } from "../src/cli/bench.ts";
import { bench, classify } from "../src/tools/bench.ts";
import { benchMarkdown, benchText } from "../src/tools/bench-report.ts";
import { generate } from "../src/tools/gen.ts";
import { assertError, mmhIn } from "./cli-support.ts";

const MNIST = resolve(import.meta.dirname, "../../shared/data/mnist-tinygrad_model.safetensors");
const dir = mkdtempSync(join(tmpdir(), "mmh-bench-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const mmh = mmhIn(dir);

describe("mmh bench: errors are one coded line, before any work", () => {
  writeFileSync(join(dir, "x.bin"), generate({ kind: "text", size: 4096 }));
  writeFileSync(join(dir, "empty.bin"), "");
  mkdirSync(join(dir, "nothing"));
  const cases: [string[], string, number][] = [
    [["bench"], "E_USAGE", 2],
    [["bench", "--gen", "bogus"], "E_BAD_OPTION", 2],
    [["bench", "--gen", "BF16:lots"], "E_BAD_OPTION", 2],
    [["bench", "--gen", "BF16:1M:2"], "E_BAD_OPTION", 2],
    [["bench", "x.bin", "--runs", "0"], "E_BAD_OPTION", 2],
    [["bench", "x.bin", "--runs", "two"], "E_BAD_OPTION", 2],
    [["bench", "x.bin", "--bogus"], "E_USAGE", 2],
    [["bench", "x.bin", "-o", "out"], "E_USAGE", 2],
    [["bench", "x.bin", "--json", "--markdown"], "E_USAGE", 2],
    [["compress", "x.bin", "--gen", "BF16"], "E_USAGE", 2],
    [["info", "x.bin", "--html", "r.html"], "E_USAGE", 2],
    [["bench", "missing.bin"], "E_IO", 1],
    [["bench", "empty.bin"], "E_BAD_OPTION", 2],
    [["bench", "nothing"], "E_NOT_FOUND", 1],
    [["bench", "x.bin", "--html", "no/such/dir/r.html"], "E_IO", 1],
    [["bench", "x.bin", "--html", "x.bin"], "E_EXISTS", 1],
  ];
  for (const [args, code, exit] of cases) {
    test(`mmh ${args.join(" ")}: ${code}`, () => {
      assertError(mmh(args), code, exit);
      assert.ok(!existsSync(join(dir, "r.html")));
    });
  }

  test("--gen KIND[:SIZE]", () => {
    assert.deepEqual(parseGenSpec("BF16:256M"), { kind: "safetensors", dtype: "BF16", size: 256 << 20 });
    assert.deepEqual(parseGenSpec("text:4M"), { kind: "text", size: 4 << 20 });
    assert.deepEqual(parseGenSpec("random"), { kind: "random", size: 16 << 20 });
    assert.deepEqual(parseGenSpec("f32:64K"), { kind: "safetensors", dtype: "F32", size: 64 << 10 });
  });
});

describe("classification, with analyze's signals", () => {
  const cases: [string, Uint8Array, string][] = [
    ["gen safetensors", generate({ kind: "safetensors", size: 256 << 10 }), "synthetic"],
    ["random", generate({ kind: "random", size: 256 << 10 }), "random"],
    ["periodic", generate({ kind: "periodic", size: 256 << 10 }), "periodic"],
    ["text", generate({ kind: "text", size: 256 << 10 }), "text"],
    ["zeros", new Uint8Array(256 << 10), "constant"],
  ];
  for (const [name, data, want] of cases) {
    test(`${name} is ${want}`, async () => {
      assert.equal((await classify(data)).class, want);
    });
  }
  test("real weights", { skip: existsSync(MNIST) ? false : `${MNIST} is missing` }, async () => {
    const { readFileSync } = await import("node:fs");
    assert.equal((await classify(readFileSync(MNIST))).class, "real weights");
  });
});

describe("the report", () => {
  test("synthetic only: first line says so, no headline; every cell round-trips", async () => {
    const path = join(dir, "w.safetensors");
    writeFileSync(path, generate({ kind: "safetensors", size: 128 << 10 }));
    const report = await bench({
      inputs: [{ name: "w", path }],
      runs: 2,
      threads: 1,
      peers: false,
      minCallMs: 0,
      command: "test",
    });
    assert.equal(report.headline, null);
    assert.match(report.warning ?? "", /^No real weights/);
    assert.ok(benchText(report).startsWith(`WARNING: ${report.warning}\n`));
    assert.ok(benchMarkdown(report).startsWith(`**${report.warning}**`));
    const ids = report.cells.map((c) => c.method);
    for (const id of ["mmh balanced -T1", "mmh ratio -T1", "mmh --codec lz4 -T1", "byte grouping + zstd -3"])
      assert.ok(ids.includes(id), id);
    assert.ok(!ids.some((id) => id.endsWith("-T2")), "one thread asked for: no threaded rows");
    for (const c of report.cells) {
      assert.equal(c.roundTrip, "sha256 ok");
      assert.equal(c.runs, 2);
      assert.ok(c.compressMBps.min <= c.compressMBps.median && c.compressMBps.median <= c.compressMBps.max);
      if (!c.method.includes("lz4")) assert.ok(c.ratio > 1.2, `${c.method} compresses BF16 weights`);
    }
    // Per tensor: the tensors of the file, their stored bytes adding up to (nearly) the whole output.
    const balanced = report.cells.find((c) => c.method === "mmh balanced -T1")!;
    const stored = report.tensors.reduce((a, t) => a + t.storedBytes, 0);
    assert.ok(stored < balanced.storedBytes && stored > balanced.storedBytes * 0.9);
    assert.ok(report.tensors.every((t) => t.codecs.length > 0 && t.savedBytes === t.bytes - t.storedBytes));
    // The limit: BF16 fields' entropy is below what MMH stores, but not by much.
    const bf16 = report.entropy.find((e) => e.dtype === "BF16")!;
    assert.ok(bf16.limitBytes < bf16.mmhBytes && bf16.mmhBytes < bf16.limitBytes * 1.1);
    assert.ok(report.machine.cpu.length > 0 && report.machine.cores >= 1);
    assert.equal(report.commands[0], "test");
  });

  test("real weights give the headline, from them only", {
    skip: existsSync(MNIST) ? false : "no data",
  }, async () => {
    const gen = join(dir, "g.bin");
    writeFileSync(gen, generate({ kind: "random", size: 64 << 10 }));
    const report = await bench({
      inputs: [
        { name: "mnist", path: MNIST },
        { name: "noise", path: gen },
      ],
      runs: 1,
      threads: 1,
      minCallMs: 0,
      command: "test",
    });
    assert.equal(report.warning, undefined);
    assert.deepEqual(report.headline?.inputs, ["mnist"]);
    const mnist = report.cells.find((c) => c.input === "mnist" && c.method === "mmh balanced -T1")!;
    assert.equal(report.headline?.ratios["mmh balanced -T1"], mnist.ratio);
    assert.match(benchText(report), /noise \[random\]/);
    assert.ok(report.cells.every((c) => c.roundTrip === "sha256 ok"));
  });
});
