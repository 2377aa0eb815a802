/**
 * The mmh command's entry (bin/mmh.js runs this): `--help` and `--version` are answered
 * from the argument parser alone, and every other command loads main.ts (the library, the
 * codecs) only when it runs, and `serve` the service on top (see docs/ENGINE.md, Start-up).
 * main.ts runs the commands and reports every error, usage errors included.
 */
import { type CliArgs, HELP, parseCli, VERSION_LINE } from "./args.ts";

interface Out {
  stdout: { write(text: string): unknown };
}

/**
 * Writes `text` to file descriptor 1 directly: the first use of process.stdout loads
 * Node's streams, about a sixth of what `mmh --version` costs (docs/ENGINE.md, Start-up).
 * What cannot be written so (a full non-blocking pipe, an error) goes to process.stdout,
 * which reports errors as it always does.
 */
function writeOut(text: string): void {
  const bytes = Buffer.from(text);
  let at = 0;
  try {
    const { writeSync } = process.getBuiltinModule("node:fs");
    while (at < bytes.length) at += writeSync(1, bytes, at);
  } catch {
    process.stdout.write(bytes.subarray(at));
  }
}

/** Run the mmh command line; resolves with the exit code and never throws (as main.ts's run). */
export async function run(argv: readonly string[], io?: Out): Promise<number> {
  let parsed: CliArgs | undefined;
  try {
    parsed = parseCli(argv);
  } catch {
    // main.ts parses again and reports the error.
  }
  const command = parsed?.command;
  if (command === "help" || command === "version") {
    const text = command === "help" ? HELP : VERSION_LINE;
    if (io) io.stdout.write(text);
    else writeOut(text);
    return 0;
  }
  // The half of the library the command runs (main.ts imports it when the command starts:
  // the encoder to compress, the decoder to decompress, verify or inspect): started here,
  // its modules load with main.ts's instead of after them.
  const [main] = await Promise.all([
    import("./main.ts"),
    command === "compress"
      ? import("../compress.ts")
      : command === "decompress" || command === "verify" || command === "info"
        ? import("../decompress.ts")
        : undefined,
  ]);
  // The arguments as parsed here: main.ts parses them again only when they were wrong.
  return await main.run(argv, io as Parameters<typeof main.run>[1], parsed);
}
