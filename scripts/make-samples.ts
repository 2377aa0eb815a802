/**
 * Writes the bundled samples in samples/ with `mmh gen`'s generator (deterministic: the
 * same bytes on every run). They are synthetic and labelled so in their metadata.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { generate } from "../src/tools/index.ts";

const out = join(import.meta.dirname, "..", "samples");
const files: [string, Buffer][] = [
  ["tiny-llm-bf16.safetensors", generate({ kind: "safetensors", dtype: "BF16", size: 1 << 20, seed: 1 })],
  ["train-log.jsonl", generate({ kind: "text", size: 256 << 10, seed: 2 })],
];
for (const [name, data] of files) {
  writeFileSync(join(out, name), data);
  console.log(`wrote samples/${name} (${data.length} bytes)`);
}
