/** Running the mmh command in tests, as a user does: spawned, with a timeout, never hanging. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";

export const BIN = join(import.meta.dirname, "..", "bin", "mmh.js");

export interface Result {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** A runner of `mmh ARGS` in `dir`, optionally with standard input. */
export function mmhIn(dir: string): (args: string[], input?: Buffer) => Result {
  return (args, input) => {
    const r = spawnSync(process.execPath, [BIN, ...args], {
      cwd: dir,
      input,
      timeout: 60_000,
      maxBuffer: 1 << 28,
    });
    // EPIPE: mmh stopped reading its input early (it had already found an error); not a hang.
    const epipe = (r.error as NodeJS.ErrnoException | undefined)?.code === "EPIPE";
    assert.ok(r.error === undefined || epipe, `mmh ${args.join(" ")} did not finish: ${r.error}`);
    return { code: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
  };
}

/** An error is exactly one line `mmh: CODE: message` (plus the usage hint for E_USAGE). */
export function assertError(r: Result, code: string, exit: number): void {
  assert.equal(r.code, exit, `exit code; stderr: ${r.stderr}`);
  const lines = r.stderr.trimEnd().split("\n");
  assert.match(lines[0], new RegExp(`^mmh: ${code}: \\S`));
  assert.ok(lines.length <= 2, `one line, got: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
}
