import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { generate } from "../src/tools/index.ts";
import { assertError, BIN, mmhIn } from "./cli-support.ts";

const dir = mkdtempSync(join(tmpdir(), "mmh-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const mmh = mmhIn(dir);

function sample(n: number): Buffer {
  const text = Buffer.from("step=1 loss=0.25 lr=3e-4 tokens=4096\n".repeat(Math.ceil(n / 74)));
  return Buffer.concat([text.subarray(0, n >> 1), randomBytes(n - (n >> 1))]);
}

function noTempFiles(): void {
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.endsWith(".tmp")),
    [],
    "no temporary file left behind",
  );
}

describe("mmh CLI", () => {
  const data = sample(300_000);
  writeFileSync(join(dir, "data.bin"), data);

  test("compress and decompress a file, default names, input untouched", () => {
    let r = mmh(["data.bin", "--chunk-size", "64K", "--codec", "zstd"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /data\.bin : [\d.]+% .*data\.bin\.mmh\) 5 chunks/);
    assert.ok(readFileSync(join(dir, "data.bin")).equals(data), "input unchanged");
    rmSync(join(dir, "data.bin"));
    r = mmh(["-d", "data.bin.mmh"]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(readFileSync(join(dir, "data.bin")).equals(data));
    assert.ok(existsSync(join(dir, "data.bin.mmh")), "-k is the default");
  });

  test("explicit commands and -o", () => {
    assert.equal(mmh(["compress", "data.bin", "-o", "named.mmh", "--codec", "lz4", "-q"]).code, 0);
    const r = mmh(["decompress", "named.mmh", "-o", "named.out", "-q"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "", "-q prints nothing");
    assert.ok(readFileSync(join(dir, "named.out")).equals(data));
  });

  test("stdin to stdout round trip, and -c", () => {
    const packed = mmh(["-q", "--codec", "brotli", "-5"], data);
    assert.equal(packed.code, 0, packed.stderr);
    assert.ok(packed.stdout.length < data.length);
    const unpacked = mmh(["-d", "-q"], packed.stdout);
    assert.equal(unpacked.code, 0, unpacked.stderr);
    assert.ok(unpacked.stdout.equals(data));
    const viaDash = mmh(["-d", "-", "-q"], packed.stdout);
    assert.ok(viaDash.stdout.equals(data));
    const c = mmh(["-dc", "data.bin.mmh"]);
    assert.equal(c.code, 0, c.stderr);
    assert.ok(c.stdout.equals(data));
  });

  test("zstd-style levels: -#, --level, --fast", () => {
    for (const args of [["-1"], ["-19"], ["--level", "7"], ["--level=-3"], ["--fast=4"], ["-L", "2"]]) {
      const r = mmh(["-q", ...args], data);
      assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
      assert.ok(mmh(["-d", "-q"], r.stdout).stdout.equals(data), args.join(" "));
    }
  });

  test("refuses to overwrite without -f, and leaves the target alone", () => {
    writeFileSync(join(dir, "keep.mmh"), "precious");
    const r = mmh(["data.bin", "-o", "keep.mmh"]);
    assertError(r, "E_EXISTS", 1);
    assert.equal(readFileSync(join(dir, "keep.mmh"), "utf8"), "precious");
    const forced = mmh(["data.bin", "-o", "keep.mmh", "-f", "-q"]);
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(mmh(["verify", "keep.mmh", "-q"]).code, 0);
    noTempFiles();
  });

  test("refuses to write over its own input", () => {
    writeFileSync(join(dir, "self.mmh"), readFileSync(join(dir, "data.bin.mmh")));
    const r = mmh(["-d", "self.mmh", "-o", "self.mmh", "-f"]);
    assertError(r, "E_BAD_OPTION", 2);
    assert.ok(readFileSync(join(dir, "self.mmh")).equals(readFileSync(join(dir, "data.bin.mmh"))));
  });

  test("usage errors exit 2 with a coded line", () => {
    assertError(mmh(["--bogus"]), "E_USAGE", 2);
    assertError(mmh(["data.bin", "--level", "99"]), "E_BAD_OPTION", 2);
    assertError(mmh(["data.bin", "--level", "0"]), "E_BAD_OPTION", 2);
    assertError(mmh(["data.bin", "--codec", "gzip"]), "E_BAD_OPTION", 2);
    assertError(mmh(["data.bin", "--chunk-size", "1"]), "E_BAD_OPTION", 2);
    assertError(mmh(["data.bin", "--chunk-size", "lots"]), "E_BAD_OPTION", 2);
    assertError(mmh(["data.bin", "--codec", "lz4", "--level", "3"]), "E_BAD_OPTION", 2);
    assertError(mmh(["-d", "data.bin"]), "E_USAGE", 2);
    assertError(mmh(["info"]), "E_USAGE", 2);
    assertError(mmh(["a", "b", "-o", "c"]), "E_USAGE", 2);
    assertError(mmh(["-d", "-t", "x.mmh"]), "E_USAGE", 2);
  });

  test("a missing input is an I/O error", () => {
    assertError(mmh(["nope.bin"]), "E_IO", 1);
    assertError(mmh(["-d", "nope.mmh"]), "E_IO", 1);
    assertError(mmh(["info", "nope.mmh"]), "E_IO", 1);
    assert.ok(!existsSync(join(dir, "nope.bin.mmh")));
    assert.ok(!existsSync(join(dir, "nope")));
  });

  test("info prints a table and --json the same facts", () => {
    const table = mmh(["info", "data.bin.mmh"]);
    assert.equal(table.code, 0, table.stderr);
    const json = mmh(["info", "--json", "data.bin.mmh"]);
    const info = JSON.parse(json.stdout.toString());
    assert.equal(info.rawBytes, data.length);
    assert.equal(info.storedBytes, readFileSync(join(dir, "data.bin.mmh")).length);
    assert.equal(info.chunks, 5);
    assert.equal(
      Object.values(info.codecs as Record<string, number>).reduce((a, b) => a + b, 0),
      5,
    );
    assert.match(info.sha256, /^[0-9a-f]{64}$/);
    const out = table.stdout.toString();
    for (const fact of [
      String(info.chunks),
      info.sha256,
      data.length.toLocaleString("en-US"),
      info.ratio.toFixed(3),
    ]) {
      assert.ok(out.includes(fact), `table shows ${fact}:\n${out}`);
    }
    for (const [codec, n] of Object.entries(info.codecs)) assert.ok(out.includes(`${codec} ${n}`));
  });

  test("verify passes a good file and fails a corrupt one", () => {
    const ok = mmh(["verify", "data.bin.mmh"]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout.toString(), /OK \(5 chunks/);
    const bytes = readFileSync(join(dir, "data.bin.mmh"));
    const bad = Buffer.from(bytes);
    bad[Math.floor(bytes.length / 2)] ^= 0x40;
    writeFileSync(join(dir, "bad.mmh"), bad);
    const r = mmh(["verify", "bad.mmh"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^mmh: E_(CHECKSUM|CORRUPT): chunk \d+ at offset \d+: /);
    assertError(mmh(["-t", "bad.mmh"]), r.stderr.split(":")[1].trim(), 1);
  });

  test("a damaged content sha256: -d decodes (CRC-32s hold), --check-sha256 and verify refuse", () => {
    const vectors = join(import.meta.dirname, "vectors");
    writeFileSync(join(dir, "sha.mmh"), readFileSync(join(vectors, "fail-trailer-sha256.mmh")));
    const good = mmh(["-d", join(vectors, "multi-chunk-zstd.mmh"), "-c", "-q"]);
    assert.equal(good.code, 0, good.stderr);
    const plain = mmh(["-d", "sha.mmh", "-o", "sha.out", "-q"]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.ok(readFileSync(join(dir, "sha.out")).equals(good.stdout));
    const checked = mmh(["-d", "sha.mmh", "-o", "sha.checked", "--check-sha256"]);
    assertError(checked, "E_CHECKSUM", 1);
    assert.match(checked.stderr, /content sha256 mismatch/);
    assert.equal(existsSync(join(dir, "sha.checked")), false, "no output file");
    noTempFiles();
    const piped = mmh(["-d", "--check-sha256"], readFileSync(join(dir, "sha.mmh")));
    assertError(piped, "E_CHECKSUM", 1);
    assertError(mmh(["verify", "sha.mmh"]), "E_CHECKSUM", 1);
    assertError(mmh(["verify", "sha.mmh", "--check-sha256"]), "E_USAGE", 2);
    assertError(mmh(["data.bin", "-c", "--check-sha256"]), "E_USAGE", 2);
  });

  test("corrupt and truncated inputs give coded errors and no output file", () => {
    const bytes = readFileSync(join(dir, "data.bin.mmh"));
    const cases: [string, Buffer][] = [
      ["truncated", bytes.subarray(0, bytes.length - 100)],
      ["cut-header", bytes.subarray(0, 10)],
      ["empty", Buffer.alloc(0)],
      ["not-mmh", Buffer.from("hello world, this is not an mmh file at all")],
    ];
    for (let i = 0; i < 12; i++) {
      const flipped = Buffer.from(bytes);
      flipped[Math.floor((i * bytes.length) / 12) + 3] ^= 0xff;
      cases.push([`flip${i}`, flipped]);
    }
    for (const [name, content] of cases) {
      writeFileSync(join(dir, `${name}.mmh`), content);
      const r = mmh(["-d", `${name}.mmh`]);
      assert.notEqual(r.code, 0, `${name} must fail`);
      assertError(r, "E_[A-Z_]+", 1);
      assert.ok(!existsSync(join(dir, name)), `${name}: no partial output`);
      assert.ok(readFileSync(join(dir, `${name}.mmh`)).equals(content), "input untouched");
      const piped = mmh(["-d", "-q"], content);
      assert.equal(piped.code, 1, `${name} from a pipe`);
    }
    noTempFiles();
  });

  test("-d -T 1 (and a small file without -T) of BF16 weights, written from the kernels' memory: same bytes; damage is coded", () => {
    const weights = generate({ kind: "safetensors", dtype: "BF16", size: 3 << 20, seed: 3 });
    writeFileSync(join(dir, "w.safetensors"), weights);
    assert.equal(mmh(["-q", "-T", "1", "w.safetensors"]).code, 0);
    const piped = mmh(["-d", "-q", "-T", "1", "-c", "w.safetensors.mmh"]);
    assert.equal(piped.code, 0, piped.stderr);
    assert.ok(piped.stdout.equals(weights), "-c output differs");
    assert.equal(mmh(["-d", "-q", "-T", "1", "w.safetensors.mmh", "-o", "w.out"]).code, 0);
    assert.ok(readFileSync(join(dir, "w.out")).equals(weights), "-o output differs");
    // Without -T, a file this small takes the same one-thread way.
    assert.equal(mmh(["-d", "-q", "w.safetensors.mmh", "-o", "w.out2"]).code, 0);
    assert.ok(readFileSync(join(dir, "w.out2")).equals(weights), "-o without -T differs");
    const packed = readFileSync(join(dir, "w.safetensors.mmh"));
    for (const at of [0.3, 0.5, 0.7]) {
      const bad = Buffer.from(packed);
      bad[Math.floor(packed.length * at)] ^= 0x10;
      writeFileSync(join(dir, "w.bad.mmh"), bad);
      const r = mmh(["-d", "-T", "1", "w.bad.mmh", "-o", "w.bad.out"]);
      assert.equal(r.code, 1, `damage at ${at}: ${r.stderr}`);
      assert.match(r.stderr, /^mmh: E_(CHECKSUM|CORRUPT): chunk \d+ at offset \d+: /);
      assert.equal(existsSync(join(dir, "w.bad.out")), false, "no output file");
      assertError(mmh(["-d", "-T", "1", "-c", "w.bad.mmh"]), r.stderr.split(":")[1].trim(), 1);
      const plain = mmh(["-d", "w.bad.mmh", "-o", "w.bad.out"]);
      assert.equal(plain.stderr, r.stderr, "without -T: the same error");
      assert.equal(existsSync(join(dir, "w.bad.out")), false, "no output file without -T");
    }
    noTempFiles();
  });

  test("an lz4 chunk's payload is a standard LZ4 frame", {
    skip: spawnSync("lz4", ["--version"]).error !== undefined,
  }, () => {
    const text = Buffer.from("the quick brown fox jumps over the lazy dog\n".repeat(200));
    const r = mmh(["--codec", "lz4", "-q"], text);
    const file = r.stdout;
    const metaLength = file.readUInt32LE(12);
    const record = 20 + metaLength;
    assert.equal(file.toString("latin1", record, record + 8), "CHNKLZ4 ");
    const stored = Number(file.readBigUInt64LE(record + 16));
    const payload = file.subarray(record + 36, record + 36 + stored);
    const lz4 = spawnSync("lz4", ["-d", "-c"], { input: payload });
    assert.equal(lz4.status, 0, lz4.stderr.toString());
    assert.ok(lz4.stdout.equals(text));
  });

  test("a reader that goes away stops mmh quietly, as SIGPIPE would", () => {
    const r = spawnSync(
      "bash",
      [
        "-c",
        `"${process.execPath}" "${BIN}" -dc data.bin.mmh | head -c 10 > /dev/null; echo "\${PIPESTATUS[0]}"`,
      ],
      { cwd: dir, timeout: 60_000 },
    );
    assert.equal(r.stdout.toString().trim(), "141");
    assert.equal(r.stderr.toString(), "", "no error message");
  });

  test("standard output a non-blocking pipe that fills: the rest goes through the stream, in order", {
    skip: !existsSync("/usr/bin/python3") && "no /usr/bin/python3 to make the pipe non-blocking",
  }, () => {
    const big = sample(3_000_000);
    writeFileSync(join(dir, "big.bin"), big);
    assert.equal(mmh(["-q", "-f", "-k", "big.bin"]).code, 0);
    // mmh writes to descriptor 1 with writeSync; a full non-blocking pipe makes that
    // fail with EAGAIN, and a reader that waits first lets the pipe fill.
    const python = [
      "import fcntl, os, subprocess, sys",
      "fcntl.fcntl(1, fcntl.F_SETFL, fcntl.fcntl(1, fcntl.F_GETFL) | os.O_NONBLOCK)",
      "sys.exit(subprocess.run(sys.argv[1:]).returncode)",
    ].join("\n");
    const r = spawnSync(
      "bash",
      [
        "-c",
        `/usr/bin/python3 -c "$0" "${process.execPath}" "${BIN}" -q -dc big.bin.mmh | (sleep 1; cat) > big.out; echo "\${PIPESTATUS[0]}"`,
        python,
      ],
      { cwd: dir, timeout: 120_000 },
    );
    assert.equal(r.stdout.toString().trim(), "0", r.stderr.toString());
    assert.ok(readFileSync(join(dir, "big.out")).equals(big), "the same bytes, in order");
  });

  test("--help and --version", () => {
    const help = mmh(["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout.toString(), /^Usage: mmh/);
    assert.match(mmh(["-V"]).stdout.toString(), /^mmh \d+\.\d+\.\d+ \(container v1\)/);
  });
});
