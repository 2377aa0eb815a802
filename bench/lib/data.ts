/**
 * Deterministic test data for the benchmarks: a seeded PRNG (mulberry32), normal draws
 * (Box-Muller), BF16 "weights" and JSON-lines training-log text. The same seed always
 * gives the same bytes, on any machine.
 */

// The project's own seeded PRNG and normal draws (src/tools/gen.ts), under the names the
// benchmarks use: mulberry32, and Box-Muller with both values used.
import { rng as mulberry32, gaussian as normals } from "../../src/tools/gen.ts";

export { mulberry32, normals };

export const BF16_ROW = 4096;

/**
 * BF16 weights: rows of BF16_ROW values drawn from N(0, 0.02), each row multiplied by its
 * own scale exp(N(0, 0.25)) (as rows of real weight matrices differ in magnitude), then
 * rounded from float32 to bfloat16 (round to nearest even). Little-endian, 2 bytes each.
 * `bytes` is rounded down to an even count.
 */
export function bf16Weights(bytes: number, seed = 1): Buffer {
  const count = Math.floor(bytes / 2);
  const out = Buffer.allocUnsafe(count * 2);
  const u16 = new Uint16Array(out.buffer, out.byteOffset, count);
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  const gauss = normals(mulberry32(seed));
  let scale = 0.02;
  for (let i = 0; i < count; i++) {
    if (i % BF16_ROW === 0) scale = 0.02 * Math.exp(0.25 * gauss());
    f32[0] = gauss() * scale;
    const bits = u32[0];
    u16[i] = (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
  }
  return out;
}

const PHASES = ["train", "train", "train", "train", "eval"] as const;

/**
 * JSON-lines text like a training run's log: one object per step with step, epoch, loss,
 * learning rate, gradient norm, throughput, a timestamp and now and then an eval record.
 * The loss decays with noise, so numbers change from line to line as in a real log.
 * Exactly `bytes` long (the last line is cut).
 */
export function jsonLog(bytes: number, seed = 2): Buffer {
  const rand = mulberry32(seed);
  const gauss = normals(rand);
  const parts: string[] = [];
  let length = 0;
  let step = 0;
  let time = Date.UTC(2026, 0, 1, 0, 0, 0);
  const stepsPerEpoch = 5000;
  const warmup = 2000;
  while (length < bytes) {
    step++;
    time += Math.round(450 + 60 * gauss());
    const progress = step / 200000;
    const lr =
      step < warmup ? (3e-4 * step) / warmup : 3e-4 * 0.5 * (1 + Math.cos(Math.PI * Math.min(1, progress)));
    const loss = 2.1 + 8.3 * Math.exp(-step / 3000) + 0.08 * gauss();
    const record: Record<string, unknown> = {
      step,
      epoch: Math.floor(step / stepsPerEpoch),
      split: "train",
      loss: Number(loss.toFixed(4)),
      lr: Number(lr.toPrecision(6)),
      grad_norm: Number((0.9 + 0.3 * Math.abs(gauss())).toFixed(4)),
      tokens_per_sec: Math.round(41000 + 1500 * gauss()),
      gpu_mem_gb: Number((38.2 + 0.4 * rand()).toFixed(2)),
      time: new Date(time).toISOString(),
    };
    if (step % 500 === 0) {
      const phase = PHASES[Math.floor(rand() * PHASES.length)];
      record.split = phase === "eval" ? "eval" : "train";
      record.eval_loss = Number((loss + 0.05 + 0.03 * gauss()).toFixed(4));
      record.eval_accuracy = Number((0.41 + 0.3 * (1 - Math.exp(-step / 20000)) + 0.01 * gauss()).toFixed(4));
    }
    const line = `${JSON.stringify(record)}\n`;
    parts.push(line);
    length += line.length;
  }
  return Buffer.from(parts.join(""), "latin1").subarray(0, bytes);
}

/** Uniformly random bytes from the seeded PRNG (incompressible). */
export function randomBytesSeeded(bytes: number, seed = 3): Buffer {
  const out = Buffer.allocUnsafe(bytes);
  const rand = mulberry32(seed);
  let i = 0;
  for (; i + 4 <= bytes; i += 4) out.writeUInt32LE(Math.floor(rand() * 4294967296), i);
  for (; i < bytes; i++) out[i] = Math.floor(rand() * 256);
  return out;
}
