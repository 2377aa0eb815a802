import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { generate } from "../src/tools/index.ts";
import { assertError, mmhIn } from "./cli-support.ts";

const dir = mkdtempSync(join(tmpdir(), "mmh-cli-archive-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const mmh = mmhIn(dir);

function diff(a: string, b: string): void {
  const r = spawnSync("diff", ["-r", "--no-dereference", a, b], { timeout: 60_000 });
  assert.equal(r.status, 0, `diff -r ${a} ${b}:\n${r.stdout}${r.stderr}`);
}

const modes = (root: string, paths: string[]) =>
  paths.map((p) => (lstatSync(join(root, p)).mode & 0o777).toString(8));

describe("mmh pack, unpack and extract --file", () => {
  const model = join(dir, "model");
  mkdirSync(join(model, "tokenizer"), { recursive: true });
  mkdirSync(join(model, "empty"));
  writeFileSync(
    join(model, "model-00001-of-00002.safetensors"),
    generate({ kind: "safetensors", size: 400_000, seed: 7 }),
  );
  writeFileSync(
    join(model, "model-00002-of-00002.safetensors"),
    generate({ kind: "safetensors", size: 200_000, seed: 8 }),
  );
  writeFileSync(join(model, "config.json"), '{"layers": 2}\n');
  writeFileSync(join(model, "tokenizer", "merges.txt"), generate({ kind: "text", size: 50_000, seed: 9 }));
  writeFileSync(join(model, "tokenizer", "special.json"), "");
  writeFileSync(join(model, "convert.py"), "print('hi')\n");
  chmodSync(join(model, "convert.py"), 0o750);
  symlinkSync("model-00001-of-00002.safetensors", join(model, "model.safetensors"));
  const checked = ["convert.py", "config.json", "tokenizer", "empty"];

  test("pack then unpack restores the folder (diff -r, modes)", () => {
    let r = mmh(["pack", "model", "-o", "model.mmh", "-T", "1"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /model : 6 files, 2 folders, 1 link: [\d.]+% .*model\.mmh\)/);
    r = mmh(["unpack", "model.mmh", "-o", "restored"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /6 files, 2 folders, 1 link, .* => restored/);
    diff(model, join(dir, "restored"));
    assert.deepEqual(modes(join(dir, "restored"), checked), modes(model, checked));
  });

  test("default names: FOLDER.mmh, and FILE.mmh unpacks to FILE", () => {
    rmSync(join(dir, "model.mmh"));
    assert.equal(mmh(["pack", "model/", "-q"]).code, 0);
    assert.ok(existsSync(join(dir, "model.mmh")));
    assertError(mmh(["pack", "model"]), "E_EXISTS", 1);
    mkdirSync(join(dir, "again"));
    assert.equal(mmh(["pack", "model", "-o", "again/copy.mmh", "-q"]).code, 0);
    const r = mmh(["unpack", "again/copy.mmh", "-q"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    diff(model, join(dir, "again", "copy"));
  });

  test("unpack refuses a non-empty target without -f and replaces it with -f", () => {
    const target = join(dir, "occupied");
    mkdirSync(target);
    writeFileSync(join(target, "mine.txt"), "keep me");
    const r = mmh(["unpack", "model.mmh", "-o", "occupied"]);
    assertError(r, "E_EXISTS", 1);
    assert.match(r.stderr, /use -f/);
    assert.deepEqual(readdirSync(target), ["mine.txt"]);
    assert.equal(mmh(["unpack", "model.mmh", "-o", "occupied", "-f", "-q"]).code, 0);
    diff(model, target);
    assert.deepEqual(
      readdirSync(dir).filter((n) => n.endsWith(".tmp") || n.endsWith(".old")),
      [],
      "no temporary folder left",
    );
  });

  test("extract --file writes one file, to -o or standard output", () => {
    let r = mmh(["extract", "model.mmh", "--file", "tokenizer/merges.txt", "-o", "merges.out"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /tokenizer\/merges\.txt: .* => merges\.out/);
    assert.ok(
      readFileSync(join(dir, "merges.out")).equals(readFileSync(join(model, "tokenizer", "merges.txt"))),
    );
    r = mmh(["extract", "model.mmh", "--file", "convert.py"]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(readFileSync(join(dir, "convert.py")).equals(readFileSync(join(model, "convert.py"))));
    assert.equal(lstatSync(join(dir, "convert.py")).mode & 0o777, 0o750, "the entry's mode");
    r = mmh(["extract", "model.mmh", "--file", "model-00002-of-00002.safetensors", "-c"]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.equals(readFileSync(join(model, "model-00002-of-00002.safetensors"))));
    assertError(mmh(["extract", "model.mmh", "--file", "nope"]), "E_NOT_FOUND", 1);
    assertError(mmh(["extract", "model.mmh", "--file", "tokenizer"]), "E_NOT_FOUND", 1);
  });

  test("extract --tensor: a name in two shards needs --file", () => {
    const name = "model.layers.0.self_attn.q_proj.weight";
    let r = mmh(["extract", "model.mmh", "--tensor", name, "-o", "t.bin"]);
    assertError(r, "E_USAGE", 2);
    assert.match(r.stderr, /model-00001-of-00002\.safetensors, model-00002-of-00002\.safetensors/);
    r = mmh([
      "extract",
      "model.mmh",
      "--file",
      "model-00002-of-00002.safetensors",
      "--tensor",
      name,
      "-o",
      "t.bin",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /BF16 \[/);
    const norm = "model.layers.0.input_layernorm.weight";
    r = mmh([
      "extract",
      "model.mmh",
      "--tensor",
      norm,
      "--file",
      "model-00001-of-00002.safetensors",
      "-o",
      "n.npy",
      "--format",
      "npy",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(join(dir, "n.npy")).subarray(1, 6).toString(), "NUMPY");
  });

  test("info lists the entries, in the table and in --json", () => {
    let r = mmh(["info", "model.mmh"]);
    assert.equal(r.code, 0, r.stderr);
    const text = r.stdout.toString();
    assert.match(text, /source\s+model \(folder\)/);
    assert.match(text, /entries\s+9 \(6 files\)/);
    assert.match(text, /model-00001-of-00002\.safetensors\s+[\d.]+ KiB\s+safetensors\s+\d+/);
    assert.match(text, /model\.safetensors -> model-00001-of-00002\.safetensors/);
    assert.match(text, /empty\/\s+-\s+folder/);
    r = mmh(["info", "--json", "model.mmh"]);
    assert.equal(r.code, 0, r.stderr);
    const info = JSON.parse(r.stdout.toString());
    assert.equal(info.format, "folder");
    const shard = info.entries.find((e: { path: string }) => e.path === "model-00002-of-00002.safetensors");
    assert.equal(shard.format, "safetensors");
    assert.ok(shard.tensors > 0);
    assert.match(shard.sha256, /^[0-9a-f]{64}$/);
    assert.ok(info.tensors.every((t: { file?: string }) => typeof t.file === "string"));
    // A single file has no entries.
    writeFileSync(join(dir, "plain.txt"), "plain");
    assert.equal(mmh(["plain.txt", "-q"]).code, 0);
    assert.equal(JSON.parse(mmh(["info", "--json", "plain.txt.mmh"]).stdout.toString()).entries, undefined);
    assertError(mmh(["unpack", "plain.txt.mmh", "-o", "plain-out"]), "E_BAD_OPTION", 2);
    assert.ok(!existsSync(join(dir, "plain-out")));
  });

  test("pack refuses a link that leaves the folder", () => {
    const leaky = join(dir, "leaky");
    mkdirSync(leaky);
    symlinkSync("/etc/hostname", join(leaky, "host"));
    const r = mmh(["pack", "leaky", "-o", "leaky.mmh"]);
    assertError(r, "E_UNSAFE_PATH", 1);
    assert.match(r.stderr, /cp -rL/);
    assert.ok(!existsSync(join(dir, "leaky.mmh")));
  });

  test("usage errors", () => {
    assertError(mmh(["pack"]), "E_USAGE", 2);
    assertError(mmh(["pack", "model", "-c"]), "E_USAGE", 2);
    assertError(mmh(["unpack", "model.mmh", "-o", "-"]), "E_USAGE", 2);
    assertError(mmh(["unpack", "model.mmh", "other.mmh"]), "E_USAGE", 2);
    assertError(mmh(["unpack", "model"]), "E_USAGE", 2);
    assertError(mmh(["extract", "model.mmh"]), "E_USAGE", 2);
    assertError(mmh(["extract", "model.mmh", "--file", "config.json", "--format", "npy"]), "E_USAGE", 2);
    assertError(mmh(["unpack", "model.mmh", "--codec", "zstd"]), "E_USAGE", 2);
    assertError(mmh(["pack", "model", "--max-output", "1K"]), "E_USAGE", 2);
    assertError(mmh(["info", "model.mmh", "--file", "x"]), "E_USAGE", 2);
    assertError(mmh(["pack", "no-such-folder"]), "E_IO", 1);
  });

  test("--codec and --chunk-size apply to pack, and verify and -d work on an archive", () => {
    let r = mmh(["pack", "model", "-o", "small.mmh", "--codec", "zstd", "--chunk-size", "64K", "-q"]);
    assert.equal(r.code, 0, r.stderr);
    r = mmh(["verify", "small.mmh"]);
    assert.equal(r.code, 0, r.stderr);
    r = mmh(["-d", "small.mmh", "-c"]);
    assert.equal(r.code, 0, r.stderr);
    const files = [
      "config.json",
      "convert.py",
      "model-00001-of-00002.safetensors",
      "model-00002-of-00002.safetensors",
      "tokenizer/merges.txt",
      "tokenizer/special.json",
    ];
    assert.ok(
      r.stdout.equals(Buffer.concat(files.map((f) => readFileSync(join(model, f))))),
      "the files, concatenated",
    );
    assert.equal(mmh(["unpack", "small.mmh", "-o", "small", "-q"]).code, 0);
    diff(model, join(dir, "small"));
  });
});
