/**
 * Writes the bundled samples in samples/ (deterministic: same bytes on every run).
 * They are synthetic, and labelled so: a small safetensors file with LLM-like names,
 * BF16 and F32 weights drawn N(0, 0.02) with a per-row scale, and a JSON-lines training log.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";

const out = join(import.meta.dirname, "..", "samples");

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function gaussian(next: () => number): () => number {
  return () => {
    const u = Math.max(next(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
  };
}

function weights(rows: number, cols: number, std: number, seed: number): Float32Array {
  const normal = gaussian(rng(seed));
  const w = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const scale = std * Math.exp(0.3 * normal());
    for (let c = 0; c < cols; c++) w[r * cols + c] = normal() * scale;
  }
  return w;
}

function toBf16(w: Float32Array): Buffer {
  const bits = new Uint32Array(w.buffer, w.byteOffset, w.length);
  const outBuf = Buffer.alloc(w.length * 2);
  for (let i = 0; i < w.length; i++) {
    const x = bits[i];
    outBuf.writeUInt16LE(((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff, i * 2); // round to nearest even
  }
  return outBuf;
}

const tensors: [string, string, number[], Buffer][] = [];
let seed = 1;
for (let layer = 0; layer < 2; layer++) {
  for (const [proj, rows, cols] of [
    ["self_attn.q_proj", 256, 256],
    ["self_attn.k_proj", 64, 256],
    ["self_attn.v_proj", 64, 256],
    ["self_attn.o_proj", 256, 256],
    ["mlp.up_proj", 512, 256],
  ] as const) {
    tensors.push([
      `model.layers.${layer}.${proj}.weight`,
      "BF16",
      [rows, cols],
      toBf16(weights(rows, cols, 0.02, seed++)),
    ]);
  }
  const norm = new Float32Array(256).map((_, i) => 1 + 0.01 * Math.sin(i + layer));
  tensors.push([`model.layers.${layer}.input_layernorm.weight`, "F32", [256], Buffer.from(norm.buffer)]);
}
const head = weights(64, 256, 0.02, seed++);
tensors.push([
  "lm_head.weight",
  "F32",
  [64, 256],
  Buffer.from(head.buffer, head.byteOffset, head.byteLength),
]);

const header: Record<string, unknown> = {
  __metadata__: { format: "pt", note: "synthetic sample written by scripts/make-samples.ts" },
};
let offset = 0;
for (const [name, dtype, shape, data] of tensors) {
  header[name] = { dtype, shape, data_offsets: [offset, offset + data.length] };
  offset += data.length;
}
let json = JSON.stringify(header);
json += " ".repeat((8 - (json.length % 8)) % 8);
const len = Buffer.alloc(8);
len.writeBigUInt64LE(BigInt(json.length));
writeFileSync(
  join(out, "tiny-llm.safetensors"),
  Buffer.concat([len, Buffer.from(json), ...tensors.map((t) => t[3])]),
);

const next = rng(99);
const lines: string[] = [];
let loss = 4.2;
for (let step = 1; step <= 2500; step++) {
  loss = Math.max(0.8, loss * 0.999 + (next() - 0.5) * 0.02);
  lines.push(
    JSON.stringify({
      step,
      epoch: Math.floor(step / 500),
      loss: Number(loss.toFixed(4)),
      lr: Number((3e-4 * Math.min(1, step / 200)).toExponential(3)),
      grad_norm: Number((0.5 + next()).toFixed(3)),
      tokens_per_s: Math.round(41000 + next() * 3000),
      split: step % 100 === 0 ? "eval" : "train",
    }),
  );
}
writeFileSync(join(out, "train-log.jsonl"), `${lines.join("\n")}\n`);
console.log(`wrote ${join(out, "tiny-llm.safetensors")} and ${join(out, "train-log.jsonl")}`);
