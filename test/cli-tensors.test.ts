/**
 * The tensor commands of the CLI, spawned as a user runs them: gen, compress of a model,
 * info --json's tensor table, extract (raw and npy), analyze, and --goal.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { generate } from "../src/tools/index.ts";
import { assertError, mmhIn, type Result } from "./cli-support.ts";

const dir = mkdtempSync(join(tmpdir(), "mmh-cli-tensors-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const mmh = mmhIn(dir);

function ok(r: Result, what: string): Result {
  assert.equal(r.code, 0, `${what}: ${r.stderr}`);
  return r;
}

const file = (name: string) => join(dir, name);

interface StEntry {
  name: string;
  dtype: string;
  shape: number[];
  offset: number;
  length: number;
}

/** The tensor table of a safetensors file, read here from its JSON header (independently of MMH). */
function safetensorsTable(bytes: Buffer): StEntry[] {
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.toString("utf8", 8, 8 + headerLength)) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  return Object.entries(header)
    .filter(([name]) => name !== "__metadata__")
    .map(([name, t]) => ({
      name,
      dtype: t.dtype,
      shape: t.shape,
      offset: 8 + headerLength + t.data_offsets[0],
      length: t.data_offsets[1] - t.data_offsets[0],
    }))
    .sort((a, b) => a.offset - b.offset);
}

/** Parse a .npy file: magic, version, header dict; returns the dict's fields and the data. */
function parseNpy(bytes: Buffer): { descr: string; fortran: boolean; shape: number[]; data: Buffer } {
  assert.equal(bytes.toString("latin1", 0, 6), "\x93NUMPY", "npy magic");
  assert.deepEqual([bytes[6], bytes[7]], [1, 0], "npy version 1.0");
  const headerLength = bytes.readUInt16LE(8);
  const start = 10 + headerLength;
  assert.equal(start % 64, 0, "data starts at a multiple of 64");
  const dict = bytes.toString("latin1", 10, start);
  assert.ok(dict.endsWith("\n"), "the header ends with a newline");
  const m = /^\{'descr': '([^']+)', 'fortran_order': (True|False), 'shape': \(([^)]*)\), \} *\n$/.exec(dict);
  assert.ok(m, `header dict: ${JSON.stringify(dict)}`);
  const shape = m[3]
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
    .map(Number);
  return { descr: m[1], fortran: m[2] === "True", shape, data: bytes.subarray(start) };
}

describe("mmh tensor commands", () => {
  let model: Buffer;
  let table: StEntry[];

  before(() => {
    const r = ok(mmh(["gen", "--size", "2M", "--dtype", "BF16", "-o", "m.safetensors"]), "gen");
    assert.match(r.stderr, /^gen: safetensors .* => m\.safetensors\n$/);
    model = readFileSync(file("m.safetensors"));
    table = safetensorsTable(model);
  });

  test("gen writes the same bytes as generate(), about the size asked", () => {
    assert.ok(model.equals(generate({ kind: "safetensors", size: 2 << 20, dtype: "BF16" })));
    assert.ok(Math.abs(model.length - (2 << 20)) < (2 << 20) * 0.03, `${model.length} bytes`);
    assert.ok(table.some((t) => t.dtype === "BF16") && table.some((t) => t.dtype === "F32"));
    const piped = ok(
      mmh(["gen", "--kind", "periodic", "--size", "10K", "--period", "7", "--seed", "3", "-c"]),
      "gen -c",
    );
    assert.ok(piped.stdout.equals(generate({ kind: "periodic", size: 10 << 10, period: 7, seed: 3 })));
    // The kind may be the one operand, as `mmh gen text --size 10K`.
    const operand = ok(mmh(["gen", "text", "--size", "10K", "-c"]), "gen text");
    assert.ok(operand.stdout.equals(generate({ kind: "text", size: 10 << 10 })));
  });

  test("compress a model, info --json lists its tensors, decompress restores it", () => {
    const r = ok(mmh(["m.safetensors"]), "compress");
    assert.match(r.stderr, /m\.safetensors : [\d.]+% .*m\.safetensors\.mmh\) \d+ chunks \[.*HIER \d+/);
    const info = JSON.parse(ok(mmh(["info", "--json", "m.safetensors.mmh"]), "info").stdout.toString());
    assert.equal(info.format, "safetensors");
    assert.equal(info.source.format, "safetensors");
    assert.equal(info.source.name, "m.safetensors");
    assert.equal(info.rawBytes, model.length);
    assert.ok(info.storedBytes < model.length * 0.8, `BF16 weights compress: ${info.storedBytes}`);
    assert.deepEqual(info.tensors, table);
    const text = ok(mmh(["info", "m.safetensors.mmh"]), "info").stdout.toString();
    assert.match(
      text,
      new RegExp(`^tensors +${table.length} \\(safetensors; list them with --json\\)$`, "m"),
    );
    ok(mmh(["-d", "m.safetensors.mmh", "-o", "m.out"]), "decompress");
    assert.ok(readFileSync(file("m.out")).equals(model));
  });

  test("a file compressed to standard output is read as a model: the same bytes as with -o", () => {
    ok(mmh(["m.safetensors", "-o", "m-o.mmh", "-q"]), "compress -o");
    const written = readFileSync(file("m-o.mmh"));
    for (const threads of ["1", "2"]) {
      const piped = ok(mmh(["-c", "-q", "-T", threads, "m.safetensors"]), `compress -c -T ${threads}`).stdout;
      assert.ok(piped.equals(written), `-c -T ${threads}: the same bytes as -o`);
      const restored = ok(mmh(["-d", "-c", "-q", "-T", threads, "m-o.mmh"]), `-d -c -T ${threads}`).stdout;
      assert.ok(restored.equals(model), `-d -c -T ${threads} restores the model`);
    }
    // From standard input the format is not read (a stream is coded as it comes), but
    // the result still restores the model.
    const streamed = ok(mmh(["-c", "-q"], model), "compress stdin").stdout;
    assert.ok(ok(mmh(["-d", "-q"], streamed), "decompress stdin").stdout.equals(model));
  });

  test("extract writes exactly the tensor's bytes", () => {
    for (const t of [table[0], table[Math.floor(table.length / 2)], table[table.length - 1]]) {
      const out = `t-${t.offset}.bin`;
      const r = ok(mmh(["extract", "m.safetensors.mmh", "--tensor", t.name, "-o", out]), `extract ${t.name}`);
      assert.match(
        r.stderr,
        new RegExp(`^${t.name.replaceAll(".", "\\.")}: ${t.dtype} \\[${t.shape.join(", ")}\\]`),
      );
      assert.ok(readFileSync(file(out)).equals(model.subarray(t.offset, t.offset + t.length)), t.name);
    }
    const t = table[1];
    const piped = ok(mmh(["extract", "m.safetensors.mmh", "--tensor", t.name, "-c", "-q"]), "extract -c");
    assert.ok(piped.stdout.equals(model.subarray(t.offset, t.offset + t.length)));
    assert.equal(piped.stderr, "");
    // Without -o, the output is named after the tensor.
    ok(mmh(["extract", "m.safetensors.mmh", "--tensor", t.name, "-q"]), "extract default name");
    assert.ok(readFileSync(file(`${t.name}.bin`)).equals(model.subarray(t.offset, t.offset + t.length)));
  });

  test("extract --format npy writes a valid .npy for F32, and refuses BF16", () => {
    const norm = table.find((t) => t.dtype === "F32")!;
    ok(
      mmh(["extract", "m.safetensors.mmh", "--tensor", norm.name, "--format", "npy", "-o", "norm.npy"]),
      "npy",
    );
    const npy = parseNpy(readFileSync(file("norm.npy")));
    assert.deepEqual([npy.descr, npy.fortran, npy.shape], ["<f4", false, norm.shape]);
    assert.equal(norm.shape.length, 1);
    assert.ok(npy.data.equals(model.subarray(norm.offset, norm.offset + norm.length)));

    // A 2-D F32 tensor from an F32 model.
    ok(
      mmh(["gen", "--size", "300K", "--dtype", "F32", "--seed", "9", "-o", "f.safetensors", "-q"]),
      "gen F32",
    );
    const f32 = readFileSync(file("f.safetensors"));
    const matrix = safetensorsTable(f32).find((t) => t.shape.length === 2 && t.dtype === "F32")!;
    ok(mmh(["f.safetensors", "-q"]), "compress F32");
    ok(
      mmh(["extract", "f.safetensors.mmh", "--tensor", matrix.name, "--format", "npy", "-o", "m2.npy"]),
      "npy 2-D",
    );
    const m2 = parseNpy(readFileSync(file("m2.npy")));
    assert.deepEqual([m2.descr, m2.fortran, m2.shape], ["<f4", false, matrix.shape]);
    assert.equal(m2.data.length, matrix.shape[0] * matrix.shape[1] * 4);
    assert.ok(m2.data.equals(f32.subarray(matrix.offset, matrix.offset + matrix.length)));

    const bf16 = table.find((t) => t.dtype === "BF16")!;
    const r = mmh([
      "extract",
      "m.safetensors.mmh",
      "--tensor",
      bf16.name,
      "--format",
      "npy",
      "-o",
      "bf16.npy",
    ]);
    assertError(r, "E_UNSUPPORTED", 1);
    assert.ok(!existsSync(file("bf16.npy")), "no output for a refused tensor");
    assertError(
      mmh(["extract", "m.safetensors.mmh", "--tensor", bf16.name, "--format", "csv", "-o", "x.csv"]),
      "E_BAD_OPTION",
      2,
    );
  });

  test("an unknown tensor is E_NOT_FOUND; extract needs --tensor", () => {
    const r = mmh(["extract", "m.safetensors.mmh", "--tensor", "model.layers.99.nope", "-o", "nope.bin"]);
    assertError(r, "E_NOT_FOUND", 1);
    assert.ok(!existsSync(file("nope.bin")));
    assertError(mmh(["extract", "m.safetensors.mmh"]), "E_USAGE", 2);
    assertError(mmh(["info", "m.safetensors.mmh", "--tensor", "x"]), "E_USAGE", 2);
  });

  test("analyze --json reports every region; analyze prints a table", () => {
    const report = JSON.parse(
      ok(mmh(["analyze", "--json", "m.safetensors"]), "analyze --json").stdout.toString(),
    );
    assert.equal(report.file, "m.safetensors");
    assert.equal(report.format, "safetensors");
    assert.equal(report.size, model.length);
    assert.ok(Array.isArray(report.regions));
    assert.equal(report.regions.length, table.length + 1, "the header and every tensor");
    for (const t of table) {
      const r = report.regions.find((x: { name: string }) => x.name === t.name);
      assert.ok(r, t.name);
      assert.deepEqual([r.dtype, r.dtypeSource, r.offset, r.length], [t.dtype, "given", t.offset, t.length]);
      assert.equal(r.candidates.length, 6);
      if (t.dtype === "BF16") assert.equal(r.auto, "hier", t.name);
    }
    const text = ok(mmh(["analyze", "m.safetensors"]), "analyze").stdout.toString();
    const lines = text.split("\n");
    assert.match(
      lines[0],
      new RegExp(`^m\\.safetensors: safetensors, [\\d.]+ MiB, ${table.length + 1} regions$`),
    );
    assert.match(
      lines[1],
      /^ {2}region +dtype +bytes +field entropy \(bits\/byte\) +hier +zstd +lz4 +brotli +p251 +none +auto$/,
    );
    assert.match(lines[2], /^ {2}-+( +-+){10}$/);
    for (const t of table) {
      const row = lines.find((l) => l.startsWith(`  ${t.name} `));
      assert.ok(row, `a row for ${t.name}`);
      assert.match(row, new RegExp(` ${t.dtype} +`));
      assert.match(row, /( +\d\.\d{3}){6} +(hier|zstd|lz4|brotli|p251|none) *$/);
    }
    assert.match(text, /warning: the file says it is synthetic/);
    assertError(mmh(["analyze"]), "E_USAGE", 2);
    assertError(mmh(["analyze", "--goal", "fast", "m.safetensors"]), "E_BAD_OPTION", 2);
    assertError(mmh(["analyze", "--level", "99", "m.safetensors"]), "E_BAD_OPTION", 2);
    assertError(mmh(["analyze", "missing.safetensors"]), "E_IO", 1);
  });

  test("gen usage: --size is required, kind and dtype are checked", () => {
    assertError(mmh(["gen", "-o", "x"]), "E_USAGE", 2);
    assertError(mmh(["gen", "--kind", "nope", "--size", "1K", "-o", "x"]), "E_BAD_OPTION", 2);
    assertError(mmh(["gen", "nope", "--size", "1K", "-o", "x"]), "E_BAD_OPTION", 2);
    assertError(mmh(["gen", "text", "more", "--size", "1K", "-o", "x"]), "E_USAGE", 2);
    assertError(mmh(["gen", "text", "--kind", "text", "--size", "1K", "-o", "x"]), "E_USAGE", 2);
    assertError(mmh(["gen", "--dtype", "F64", "--size", "1K", "-o", "x"]), "E_BAD_OPTION", 2);
    assertError(mmh(["gen", "--size", "lots", "-o", "x"]), "E_BAD_OPTION", 2);
    assertError(mmh(["gen", "--size", "1K", "--std", "0", "-o", "x"]), "E_BAD_OPTION", 2);
    assertError(
      mmh(["gen", "--kind", "periodic", "--period", "0", "--size", "1K", "-o", "x"]),
      "E_BAD_OPTION",
      2,
    );
    assertError(mmh(["m.safetensors", "--size", "1K"]), "E_USAGE", 2);
    assert.ok(!existsSync(file("x")), "no output on an error");
  });

  test("--goal speed, ratio and balanced compress and round-trip; --goal fast is refused", () => {
    const part = model.subarray(0, 600_000);
    for (const goal of ["speed", "ratio", "balanced"]) {
      const packed = ok(mmh(["--goal", goal, "-c", "-q"], part), `--goal ${goal}`).stdout;
      assert.ok(packed.length < part.length, `${goal}: ${packed.length} bytes`);
      const metadata = JSON.parse(packed.toString("utf8", 20, 20 + packed.readUInt32LE(12)));
      assert.equal(metadata.encoder.goal, goal, "the goal is used and recorded");
      assert.ok(ok(mmh(["-d", "-c", "-q"], packed), `decompress ${goal}`).stdout.equals(part));
    }
    ok(mmh(["m.safetensors", "--goal", "ratio", "-o", "ratio.mmh", "-q"]), "--goal ratio file");
    const info = JSON.parse(ok(mmh(["info", "--json", "ratio.mmh"]), "info").stdout.toString());
    assert.equal(info.encoder.goal, "ratio");
    assertError(mmh(["m.safetensors", "--goal", "fast", "-o", "fast.mmh"]), "E_BAD_OPTION", 2);
    assert.ok(!existsSync(file("fast.mmh")));
    assertError(mmh(["verify", "ratio.mmh", "--goal", "speed"]), "E_USAGE", 2);
  });
});
