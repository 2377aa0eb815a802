/**
 * `--help` (or `-h`) for every bench script: prints the script's leading doc comment (what
 * it measures, on which inputs, its options and where it writes) and exits before the
 * bench fetches, generates or times anything. Each script imports this module first, so
 * it runs before the script's other modules.
 */
import { readFileSync } from "node:fs";

const script = process.argv[1];
const asked = process.argv.slice(2).some((arg) => arg === "--help" || arg === "-h");
if (script && asked) {
  const doc = /^\/\*\*([\s\S]*?)\*\//.exec(readFileSync(script, "utf8"));
  const text = doc
    ? doc[1]
        .split("\n")
        .map((line) => line.replace(/^\s*\* ?/, ""))
        .join("\n")
        .trim()
    : `${script}: see bench/README.md`;
  process.stdout.write(`${text}\n`);
  process.exit(0);
}
