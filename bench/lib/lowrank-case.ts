/**
 * A larger delta case from real weights: matrices of real F32 values (the tensors of
 * ../shared/data, concatenated and tiled, each matrix starting at another offset so no two
 * repeat) as a base, and two derived models of the same names, dtypes and shapes:
 * - `merged`: the base plus a rank-16 product U·V, as a LoRA merged into it (U and V drawn
 *   from a seeded normal generator, scaled so the update is 5% of the weights' mean size);
 * - `stepped`: the base after one optimizer-like step, each weight moved by 1e-4 in a
 *   seeded random direction (Adam's steps are about lr in size whatever the gradient).
 * Written as safetensors in F32 and in BF16 (rounded to nearest, ties to even), and kept
 * in `dir` while the sidecar's sha256 matches.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { normals } from "../../src/engine/lowrank.ts";
import { realF32, sha256File, toBf16 } from "./tiled.ts";

export interface LowRankCase {
  base: string;
  merged: string;
  stepped: string;
}

function safetensorsOf(dtype: "F32" | "BF16", tensors: [string, number, number, Float32Array][]): Buffer {
  const width = dtype === "F32" ? 4 : 2;
  const header: Record<string, unknown> = {};
  let offset = 0;
  const parts: Buffer[] = [];
  for (const [name, rows, cols, values] of tensors) {
    const bytes =
      dtype === "F32"
        ? Buffer.from(values.buffer, values.byteOffset, values.byteLength)
        : (() => {
            const w = toBf16(values);
            return Buffer.from(w.buffer, w.byteOffset, w.byteLength);
          })();
    header[name] = { dtype, shape: [rows, cols], data_offsets: [offset, offset + rows * cols * width] };
    offset += bytes.length;
    parts.push(bytes);
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([prefix, Buffer.from(json), ...parts]);
}

/** `count` matrices of rows × cols, written in `dtype`; about count · rows · cols · width bytes each file. */
export function lowRankCase(
  dataDir: string,
  dir: string,
  dtype: "F32" | "BF16",
  count = 4,
  rows = 1536,
  cols = 1024,
): LowRankCase {
  mkdirSync(dir, { recursive: true });
  const tag = `${dtype.toLowerCase()}-${count}x${rows}x${cols}`;
  const out: LowRankCase = {
    base: join(dir, `base-${tag}.safetensors`),
    merged: join(dir, `merged-${tag}.safetensors`),
    stepped: join(dir, `stepped-${tag}.safetensors`),
  };
  const sidecar = join(dir, `${tag}.sha256`);
  const paths = [out.base, out.merged, out.stepped];
  const stamp = () => paths.map(sha256File).join("\n");
  if (paths.every(existsSync) && existsSync(sidecar) && readFileSync(sidecar, "utf8") === stamp()) return out;
  const real = realF32(dataDir);
  const next = normals(0x5eed);
  const base: [string, number, number, Float32Array][] = [];
  const merged: typeof base = [];
  const stepped: typeof base = [];
  const rank = 16;
  for (let t = 0; t < count; t++) {
    const n = rows * cols;
    const b = new Float32Array(n);
    // Each matrix starts at another offset in the real values (a prime stride apart).
    const start = (t * 1_000_003) % real.length;
    for (let i = 0; i < n; i++) b[i] = real[(start + i) % real.length];
    let mean = 0;
    for (const x of b) mean += Math.abs(x);
    mean /= n;
    const u = Float64Array.from({ length: rows * rank }, next);
    const v = Float64Array.from({ length: rank * cols }, next);
    // Each term of the product has variance `rank`: scale the sum to 5% of the mean size.
    const scale = (0.05 * mean) / Math.sqrt(rank);
    const m = new Float32Array(n);
    const s = new Float32Array(n);
    for (let i = 0; i < rows; i++)
      for (let j = 0; j < cols; j++) {
        let sum = 0;
        for (let k = 0; k < rank; k++) sum += u[i * rank + k] * v[k * cols + j];
        m[i * cols + j] = b[i * cols + j] + scale * sum;
        s[i * cols + j] = b[i * cols + j] + (next() < 0 ? -1e-4 : 1e-4);
      }
    const name = `layers.${t}.weight`;
    base.push([name, rows, cols, b]);
    merged.push([name, rows, cols, m]);
    stepped.push([name, rows, cols, s]);
  }
  writeFileSync(out.base, safetensorsOf(dtype, base));
  writeFileSync(out.merged, safetensorsOf(dtype, merged));
  writeFileSync(out.stepped, safetensorsOf(dtype, stepped));
  writeFileSync(sidecar, stamp());
  return out;
}
