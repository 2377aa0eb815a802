/**
 * The fixed corpus and option sets of the committed size table, test/regression/sizes.csv
 * (as zstd's tests/regression/results.csv): written by scripts/update-sizes.ts, checked by
 * test/regression.test.ts. Compression is deterministic (and the same for any thread
 * count), so any change to a compressed size is a change to the encoder.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type CompressOptions, compress } from "../src/index.ts";
import { GEN_DTYPES, GEN_KINDS, generate } from "../src/tools/index.ts";

const ROOT = join(import.meta.dirname, "..");
export const SIZES_CSV = join(ROOT, "test", "regression", "sizes.csv");
export const SIZES_HEADER = "input,options,compressed";

/** Bytes of each generated input. */
const GEN_SIZE = 256 << 10;

export interface Input {
  name: string;
  /** Undefined when the file is missing (its rows are skipped, not failed). */
  load: () => Buffer | undefined;
}

const file = (name: string, path: string): Input => ({
  name,
  load: () => (existsSync(path) ? readFileSync(path) : undefined),
});

export const INPUTS: Input[] = [
  file("samples/tiny-llm-bf16.safetensors", join(ROOT, "samples", "tiny-llm-bf16.safetensors")),
  file("samples/train-log.jsonl", join(ROOT, "samples", "train-log.jsonl")),
  ...["gpt2-tigrinya-lora_adapter_model", "lora-imdb-distilbert_adapter_model", "mnist-tinygrad_model"].map(
    (base) =>
      file(`shared/data/${base}.safetensors`, join(ROOT, "..", "shared", "data", `${base}.safetensors`)),
  ),
  // Element dtypes make safetensors files, the ggml block dtypes GGUF files.
  ...GEN_DTYPES.map((dtype) => {
    const kind = dtype.startsWith("Q") ? "gguf" : "safetensors";
    return {
      name: `gen ${kind} --dtype ${dtype} --size 256KiB`,
      load: () => generate({ kind, dtype, size: GEN_SIZE }),
    };
  }),
  // gen gguf's default dtype (Q4_K) is a row above.
  ...GEN_KINDS.filter((kind) => kind !== "safetensors" && kind !== "gguf").map((kind) => ({
    name: `gen ${kind} --size 256KiB`,
    load: () => generate({ kind, size: GEN_SIZE }),
  })),
];

export const OPTION_SETS: { name: string; options: CompressOptions }[] = [
  { name: "default", options: {} },
  { name: "--codec zstd", options: { codec: "zstd" } },
  { name: "--goal speed", options: { goal: "speed" } },
  { name: "--goal ratio", options: { goal: "ratio" } },
];

export interface Row {
  input: string;
  options: string;
  compressed: number;
}

/** Every row of the table, computed now; `skipped` names the inputs whose file is missing. */
export async function computeRows(): Promise<{ rows: Row[]; skipped: string[] }> {
  const rows: Row[] = [];
  const skipped: string[] = [];
  for (const input of INPUTS) {
    const bytes = input.load();
    if (!bytes) {
      skipped.push(input.name);
      continue;
    }
    for (const set of OPTION_SETS) {
      const out = await compress(bytes, { ...set.options, threads: 1 });
      rows.push({ input: input.name, options: set.name, compressed: out.length });
    }
  }
  return { rows, skipped };
}

export function formatRows(rows: Row[]): string {
  return `${[SIZES_HEADER, ...rows.map((r) => `${r.input},${r.options},${r.compressed}`)].join("\n")}\n`;
}

export function parseRows(text: string): Row[] {
  const lines = text.trim().split("\n");
  if (lines[0] !== SIZES_HEADER) throw new Error(`${SIZES_CSV}: the first line is not ${SIZES_HEADER}`);
  return lines.slice(1).map((line) => {
    const [input, options, compressed] = line.split(",");
    return { input, options, compressed: Number(compressed) };
  });
}
