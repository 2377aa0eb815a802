/** `mmh bench`: the command-line side of src/tools/bench.ts (inputs, progress bar, outputs). */
import { access, constants, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { parseSize } from "../common/bytes.ts";
import { MmhError, toMmhError } from "../common/errors.ts";
import { checkTarget, writeFileAtomic } from "../common/files.ts";
import { type BenchInput, bench } from "../tools/bench.ts";
import { benchHtml, benchMarkdown, benchText } from "../tools/bench-report.ts";
import { GEN_DTYPES, GEN_KINDS, type GenOptions, generate } from "../tools/gen.ts";
import type { CliArgs } from "./args.ts";

interface Io {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
}

const DEFAULT_GEN_SIZE = 16 << 20;

/** `KIND[:SIZE]`: a gen kind (safetensors, text, ...) or a dtype, which means safetensors of it. */
export function parseGenSpec(spec: string): GenOptions {
  const [what, sizeText, ...rest] = spec.split(":");
  const size = sizeText === undefined ? DEFAULT_GEN_SIZE : parseSize(sizeText);
  if (rest.length > 0 || size === undefined || size < 1)
    throw new MmhError("E_BAD_OPTION", `--gen takes KIND[:SIZE] (as BF16:256M or text:4M), got "${spec}"`);
  const kind = what.toLowerCase();
  if ((GEN_KINDS as readonly string[]).includes(kind)) return { kind: kind as GenOptions["kind"], size };
  const dtype = what.toUpperCase();
  if ((GEN_DTYPES as readonly string[]).includes(dtype))
    return { kind: "safetensors", dtype: dtype as GenOptions["dtype"], size };
  throw new MmhError(
    "E_BAD_OPTION",
    `--gen kind must be one of ${[...GEN_KINDS, ...GEN_DTYPES].join(", ")}, got "${what}"`,
  );
}

/** Every regular file under `path` (sorted), or `path` itself when it is a file. */
async function filesOf(path: string): Promise<string[]> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
    await access(path, constants.R_OK);
  } catch (error) {
    throw toMmhError(error, `cannot read ${path}`);
  }
  if (info.isFile()) return [path];
  if (!info.isDirectory()) throw new MmhError("E_BAD_OPTION", `${path}: not a file or a folder`);
  const entries = await readdir(path, { recursive: true, withFileTypes: true });
  const files = entries
    .filter((e) => e.isFile() && !e.name.startsWith("."))
    .map((e) => join(e.parentPath, e.name))
    .sort();
  if (files.length === 0) throw new MmhError("E_NOT_FOUND", `${path}: no files in this folder`);
  return files;
}

export async function runBench(
  argv: readonly string[],
  args: CliArgs,
  io: Io,
  signal: AbortSignal,
): Promise<number> {
  // Everything that can be refused is checked before the (long) run starts.
  const specs = (args.gen ?? []).map((g) => ({ text: g, options: parseGenSpec(g) }));
  const inputs: BenchInput[] = [];
  for (const path of args.files) {
    const files = await filesOf(path);
    for (const file of files) {
      const info = await stat(file);
      if (info.size === 0)
        throw new MmhError("E_BAD_OPTION", `${file}: empty; bench needs bytes to compress`);
      inputs.push({
        name: files.length === 1 && file === path ? file : join(path, relative(path, file)),
        path: file,
      });
    }
  }
  if (args.html !== undefined) {
    await checkTarget(args.html, { overwrite: args.force });
    try {
      await access(dirname(args.html), constants.W_OK);
    } catch (error) {
      throw toMmhError(error, `cannot write ${args.html}`);
    }
  }
  const work = await mkdtemp(join(tmpdir(), "mmh-bench-"));
  let bar: import("cli-progress").SingleBar | undefined;
  try {
    for (const [i, spec] of specs.entries()) {
      const path = join(work, `gen-${i}.bin`);
      await writeFile(path, generate(spec.options));
      inputs.push({ name: `gen ${spec.text}`, path, generated: spec.text });
    }
    if (args.progress && !args.quiet && io.stderr.isTTY) {
      const { default: cliProgress } = await import("cli-progress");
      bar = new cliProgress.SingleBar({
        stream: io.stderr,
        format: "bench [{bar}] {value}/{total} cells  {label}",
        barsize: 30,
        clearOnComplete: true,
        hideCursor: false,
        gracefulExit: false,
        fps: 5,
      });
      bar.start(1, 0, { label: "classifying inputs" });
    }
    const report = await bench({
      inputs,
      runs: args.runs,
      threads: args.threads,
      command: ["mmh", ...argv].join(" "),
      signal,
      onProgress: (done, total, label) => {
        if (!bar) return;
        bar.setTotal(total);
        bar.update(done, { label: label.length > 50 ? `…${label.slice(-49)}` : label });
      },
    });
    bar?.stop();
    bar = undefined;
    if (args.html !== undefined)
      await writeFileAtomic(args.html, [Buffer.from(benchHtml(report))], { overwrite: args.force, signal });
    if (args.json) io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else if (args.markdown) io.stdout.write(benchMarkdown(report));
    else io.stdout.write(benchText(report));
    if (report.cells.some((c) => c.roundTrip !== "sha256 ok"))
      throw new MmhError(
        "E_INTERNAL",
        "a round trip failed: the decoded bytes differ from the input (see the report)",
      );
    return 0;
  } finally {
    bar?.stop();
    await rm(work, { recursive: true, force: true });
  }
}
