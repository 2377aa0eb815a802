/**
 * The mmh command's entry (bin/mmh.js runs this): `--help` and `--version` are answered
 * from the argument parser alone, and every other command loads main.ts (the library, the
 * codecs) only when it runs, and `serve` the service on top (see docs/ENGINE.md, Start-up).
 * main.ts runs the commands and reports every error, usage errors included.
 */
import { HELP, parseCli, VERSION_LINE } from "./args.ts";

interface Out {
  stdout: { write(text: string): unknown };
}

/** Run the mmh command line; resolves with the exit code and never throws (as main.ts's run). */
export async function run(argv: readonly string[], io?: Out): Promise<number> {
  let command: string | undefined;
  try {
    command = parseCli(argv).command;
  } catch {
    // main.ts parses again and reports the error.
  }
  if (command === "help" || command === "version") {
    (io ?? process).stdout.write(command === "help" ? HELP : VERSION_LINE);
    return 0;
  }
  const main = await import("./main.ts");
  return await main.run(argv, io as Parameters<typeof main.run>[1]);
}
