/**
 * Running commands from a benchmark: timed runs, captured output, the commit measured, and
 * writing the report. Every benchmark that times the CLI shares these, so that each times
 * and checks commands the same way.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { clearOutput, MiB } from "./report.ts";

/** The repository's root (commands run there). */
export const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/**
 * The library entry (src/index.ts) of the checkout in `dir`, for the benches that time one
 * checkout against another in one process; T names the exports a bench uses.
 */
export async function libraryAt<T>(dir: string): Promise<T> {
  return moduleAt<T>(dir, "index.ts");
}

/**
 * The module at `path` under src/ of the checkout in `dir` (as libraryAt, for the benches
 * that time an inner part of two checkouts); T names the exports a bench uses.
 */
export async function moduleAt<T>(dir: string, path: string): Promise<T> {
  return (await import(pathToFileURL(join(dir, "src", path)).href)) as T;
}

/** Throws: `command` failed, with its exit status and standard error. */
export function fail(command: string, args: readonly string[], result: ReturnType<typeof spawnSync>): never {
  throw new Error(
    `${command} ${args.join(" ")} failed (${result.status ?? result.signal}): ${String(result.stderr ?? "")}`,
  );
}

/**
 * Wall-clock milliseconds of one run of a command, including process start. Its output
 * file (after -o) is deleted first (clearOutput); a failing command throws.
 */
export function run(command: string, args: readonly string[]): number {
  clearOutput(args);
  const start = performance.now();
  const result = spawnSync(command, args, {
    stdio: ["ignore", "ignore", "pipe"],
    cwd: root,
    timeout: 1_800_000,
  });
  const ms = performance.now() - start;
  if (result.error) throw result.error;
  if (result.status !== 0) fail(command, args, result);
  return ms;
}

/** A command's standard output (up to `maxBuffer`), optionally fed `input`; a failing command throws. */
export function output(
  command: string,
  args: readonly string[],
  input?: Buffer,
  maxBuffer = 256 * MiB,
): Buffer {
  const result = spawnSync(command, args, { cwd: root, input, maxBuffer, timeout: 1_800_000 });
  if (result.error) throw result.error;
  if (result.status !== 0) fail(command, args, result);
  return result.stdout;
}

/** The commit measured, and whether src/ or bin/ differ from it (read-only git calls). */
export function codeLine(): string {
  const git = (args: string[]) => spawnSync("git", args, { cwd: root, encoding: "utf8" });
  const head = git(["rev-parse", "--short", "HEAD"]);
  if (head.status !== 0) return "- Code: not a git checkout";
  const dirty = git(["status", "--porcelain", "--", "src", "bin"]).stdout.trim();
  return `- Code: commit ${head.stdout.trim()}${dirty ? ", with uncommitted changes in src/ or bin/" : " (src/ and bin/ as committed)"}`;
}

/** Writes the report's lines to `outFile`, or says nothing was written (quick runs). */
export function writeReport(outFile: string | undefined, lines: readonly string[]): void {
  if (outFile) {
    mkdirSync(dirname(outFile), { recursive: true });
    writeFileSync(outFile, lines.join("\n"));
    console.log(`wrote ${relative(root, outFile)}`);
  } else {
    console.log("(--quick: nothing written)");
  }
}
