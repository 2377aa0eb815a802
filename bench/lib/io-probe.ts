/**
 * Preloaded into a child process with `node --import ./bench/lib/io-probe.ts`: when the
 * process exits, appends its /proc/self/io counters (rchar: bytes it read through read
 * system calls, page cache hits included; whole process, all threads) to the file named
 * by $MMH_IO_PROBE. bench/scale.ts uses it to count the bytes `mmh extract` reads.
 */
import { appendFileSync, readFileSync } from "node:fs";

const out = process.env.MMH_IO_PROBE;
if (out) {
  process.on("exit", () => {
    try {
      appendFileSync(out, `${readFileSync("/proc/self/io", "utf8")}---\n`);
    } catch {
      // not Linux, or the file went away: the caller sees no counters and says so
    }
  });
}

/** The counters of the last process that wrote to a probe file, as numbers. */
export function lastProbe(text: string): Record<string, number> | undefined {
  const blocks = text.split("---\n").filter((b) => b.trim() !== "");
  const last = blocks.at(-1);
  if (last === undefined) return undefined;
  const counters: Record<string, number> = {};
  for (const line of last.split("\n")) {
    const match = /^(\w+):\s*(\d+)$/.exec(line.trim());
    if (match) counters[match[1]] = Number(match[2]);
  }
  return counters;
}
