import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import {
  createReadStream,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

const BIN = join(import.meta.dirname, "..", "bin", "mmh.js");
const dir = mkdtempSync(join(tmpdir(), "mmh-signals-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Slow enough that an interrupt lands mid-way: one thread, brotli (about 120 MB/s to encode, 200 to decode). */
const SLOW = ["-T", "1", "--codec", "brotli", "-L", "5"];

function mmhSync(args: string[]): void {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: dir, timeout: 120_000 });
  assert.equal(r.status, 0, `mmh ${args.join(" ")}: ${r.error ?? r.stderr}`);
}

/** Run mmh in the background. */
function mmhAsync(args: string[]): Promise<void> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const killer = setTimeout(() => child.kill("SIGKILL"), 120_000);
  return once(child, "close").then(([code]) => {
    clearTimeout(killer);
    assert.equal(code, 0, `mmh ${args.join(" ")}: ${stderr}`);
  });
}

async function sha256(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const piece of createReadStream(file)) hash.update(piece);
  return hash.digest("hex");
}

/** Bytes a process has read so far (Linux). */
function readBytes(pid: number): number {
  try {
    return Number(/^rchar:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/io`, "latin1"))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

const temps = () => readdirSync(dir).filter((name) => name.endsWith(".tmp"));

/**
 * Start mmh, wait until its temporary output appears (so the work is under way), send
 * `signal`, and collect how it ended.
 */
async function interrupted(args: string[], signal: NodeJS.Signals) {
  assert.deepEqual(temps(), [], "no temporary file before the run");
  const child = spawn(process.execPath, [BIN, ...args], { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const closed = once(child, "close") as Promise<[number | null, NodeJS.Signals | null]>;
  const killer = setTimeout(() => child.kill("SIGKILL"), 60_000); // a hang fails, it does not stall
  try {
    const deadline = Date.now() + 20_000;
    while (temps().length === 0) {
      assert.equal(child.exitCode, null, `mmh ${args.join(" ")} ended before its output appeared: ${stderr}`);
      assert.ok(Date.now() < deadline, `no temporary file appeared in 20 s: ${stderr}`);
      await sleep(5);
    }
    child.kill(signal);
    const [code, bySignal] = await closed;
    return { code, bySignal, stderr };
  } finally {
    clearTimeout(killer);
    child.kill("SIGKILL"); // nothing, if it has ended
  }
}

function assertAborted(
  r: { code: number | null; bySignal: NodeJS.Signals | null; stderr: string },
  signal: NodeJS.Signals,
) {
  assert.equal(r.bySignal, null, "mmh exits by itself, not killed by the signal");
  assert.equal(r.code, signal === "SIGINT" ? 130 : 143, `exit code; stderr: ${r.stderr}`);
  assert.equal(r.stderr, `mmh: E_ABORTED: interrupted by ${signal}\n`, "one error line");
  assert.deepEqual(temps(), [], "the temporary output is removed");
}

describe("interrupts and failures leave no partial output", () => {
  const inputs: Record<string, { size: number; sha256: string }> = {};

  before(async () => {
    mmhSync(["gen", "--size", "300M", "-o", "big.st"]);
    mkdirSync(join(dir, "folder"));
    linkSync(join(dir, "big.st"), join(dir, "folder", "model.safetensors")); // the same bytes, no copy
    await Promise.all([
      mmhAsync(["compress", "big.st", "-o", "big.mmh", ...SLOW, "-q"]),
      mmhAsync(["pack", "folder", "-o", "folder.mmh", ...SLOW, "-q"]),
    ]);
    for (const name of ["big.st", "big.mmh", "folder.mmh"])
      inputs[name] = { size: statSync(join(dir, name)).size, sha256: await sha256(join(dir, name)) };
  });

  after(async () => {
    // Every input is exactly as it was (checked once, at the end: hashing is the slow part).
    for (const [name, { size, sha256: hash }] of Object.entries(inputs)) {
      assert.equal(statSync(join(dir, name)).size, size, name);
      assert.equal(await sha256(join(dir, name)), hash, name);
    }
  });

  const unchanged = (name: string) => assert.equal(statSync(join(dir, name)).size, inputs[name].size, name);

  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    test(`compress FILE -o OUT, ${signal}`, async () => {
      assertAborted(await interrupted(["compress", "big.st", "-o", "out.mmh", ...SLOW], signal), signal);
      assert.ok(!existsSync(join(dir, "out.mmh")), "no output file");
      unchanged("big.st");
    });

    test(`decompress FILE.mmh -o OUT, ${signal}`, async () => {
      assertAborted(await interrupted(["-d", "big.mmh", "-o", "out", "-T", "1"], signal), signal);
      assert.ok(!existsSync(join(dir, "out")), "no output file");
      unchanged("big.mmh");
    });
  }

  test("pack FOLDER -o OUT, SIGTERM", async () => {
    assertAborted(await interrupted(["pack", "folder", "-o", "packed.mmh", ...SLOW], "SIGTERM"), "SIGTERM");
    assert.ok(!existsSync(join(dir, "packed.mmh")), "no archive");
    assert.deepEqual(readdirSync(join(dir, "folder")), ["model.safetensors"]);
  });

  test("unpack FILE.mmh -o FOLDER, SIGINT: no partial folder", async () => {
    assertAborted(
      await interrupted(["unpack", "folder.mmh", "-o", "restored", "-T", "1"], "SIGINT"),
      "SIGINT",
    );
    assert.ok(!existsSync(join(dir, "restored")), "no folder");
    unchanged("folder.mmh");
  });

  test("verify stops on SIGTERM too", {
    skip: !existsSync("/proc/self/io") && "no /proc/PID/io to see verify under way",
  }, async () => {
    const child = spawn(process.execPath, [BIN, "verify", "big.mmh", "-T", "1"], {
      cwd: dir,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    const closed = once(child, "close");
    const killer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    // verify writes nothing to watch for: wait until it has read a good part of the file.
    const deadline = Date.now() + 20_000;
    while (readBytes(child.pid!) < inputs["big.mmh"].size / 4) {
      assert.equal(child.exitCode, null, `verify ended early: ${stderr}`);
      assert.ok(Date.now() < deadline, "verify did not get under way in 20 s");
      await sleep(5);
    }
    child.kill("SIGTERM");
    const [code] = await closed;
    clearTimeout(killer);
    assert.equal(code, 143, stderr);
    assert.equal(stderr, "mmh: E_ABORTED: interrupted by SIGTERM\n");
  });

  test("a failure mid-way (a damaged chunk) leaves no output either", () => {
    mmhSync(["gen", "--kind", "text", "--size", "4M", "-o", "small.txt"]);
    mmhSync(["compress", "small.txt", "-o", "small.mmh", "--codec", "zstd", "--chunk-size", "64K"]);
    const damaged = spawnSync(
      process.execPath,
      [
        "-e",
        `const fs = require("node:fs"); const b = fs.readFileSync("small.mmh"); b[b.length >> 1] ^= 0x55; fs.writeFileSync("small.mmh", b);`,
      ],
      { cwd: dir, timeout: 30_000 },
    );
    assert.equal(damaged.status, 0);
    const r = spawnSync(process.execPath, [BIN, "-d", "small.mmh", "-o", "small.out"], {
      cwd: dir,
      timeout: 60_000,
    });
    assert.equal(r.status, 1, r.stderr.toString());
    assert.match(r.stderr.toString(), /^mmh: E_(CORRUPT|CHECKSUM): [^\n]+\n$/);
    assert.ok(!existsSync(join(dir, "small.out")), "no output file");
    assert.deepEqual(temps(), []);
  });
});
