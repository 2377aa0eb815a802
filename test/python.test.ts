/**
 * The Python package's own unittest suite (python/tests), run against this checkout's
 * command and package: MMH_BIN is this Node and bin/mmh.js, PYTHONPATH is python/, so
 * nothing needs installing. The interpreter is MMH_PYTHON if set, otherwise the first
 * python3 (on PATH, then /usr/bin/python3) that can import torch, so the torch tests run
 * wherever a system python3-torch is installed; otherwise the first that runs.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { BIN } from "./cli-support.ts";

const ROOT = join(import.meta.dirname, "..");

function pickPython(): string | undefined {
  if (process.env.MMH_PYTHON) return process.env.MMH_PYTHON;
  const runs = ["python3", "/usr/bin/python3"].filter(
    (python) => spawnSync(python, ["-c", "pass"], { timeout: 30_000 }).status === 0,
  );
  return (
    runs.find((python) => spawnSync(python, ["-c", "import torch"], { timeout: 60_000 }).status === 0) ??
    runs[0]
  );
}

const python = pickPython();

test("python: unittest suite", {
  skip: python === undefined && "no python3",
  timeout: 600_000,
}, async (t) => {
  const child = spawn(python!, ["-m", "unittest", "discover", "-s", "python/tests", "-v"], {
    cwd: ROOT,
    env: { ...process.env, MMH_BIN: `${process.execPath} ${BIN}`, PYTHONPATH: join(ROOT, "python") },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (d: Buffer) => {
    output += d.toString();
  });
  child.stderr.on("data", (d: Buffer) => {
    output += d.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  assert.equal(code, 0, `${python} -m unittest failed:\n${output}`);
  // unittest's summary, and which tests it skipped (torch missing shows here).
  const skipped = output.split("\n").filter((line) => / \.\.\. skipped /.test(line));
  const summary = output.trimEnd().split("\n").slice(-3).join(" ");
  t.diagnostic(`${python}: ${summary}`);
  for (const line of skipped) t.diagnostic(line.trim());
});
