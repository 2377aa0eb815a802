/**
 * Real-derived model files of any size: the F32 tensors of the real safetensors files in
 * ../shared/data, concatenated in file and offset order and tiled to the size asked, as F32
 * or rounded to BF16 (round to nearest, ties to even). Never i.i.d. noise: every value is
 * a real weight. Written as safetensors, one tensor per tile, so MMH reads the dtype.
 */
import { createHash } from "node:crypto";
import {
  closeSync,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";

export type TiledDType = "F32" | "BF16";

/** The F32 values of every tensor of the safetensors files in `dataDir`, in file and offset order. */
export function realF32(dataDir: string): Float32Array {
  const parts: Buffer[] = [];
  for (const name of readdirSync(dataDir).sort()) {
    if (!name.endsWith(".safetensors")) continue;
    const file = readFileSync(join(dataDir, name));
    const headerLength = Number(file.readBigUInt64LE(0));
    const header = JSON.parse(file.subarray(8, 8 + headerLength).toString("utf8")) as Record<
      string,
      { dtype: string; data_offsets: [number, number] }
    >;
    const tensors = Object.entries(header)
      .filter(([key, t]) => key !== "__metadata__" && t.dtype === "F32")
      .map(([, t]) => t.data_offsets)
      .sort((a, b) => a[0] - b[0]);
    for (const [from, to] of tensors)
      parts.push(file.subarray(8 + headerLength + from, 8 + headerLength + to));
  }
  const bytes = Buffer.concat(parts);
  if (bytes.length === 0) throw new Error(`no F32 tensors in ${dataDir}`);
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
}

/** F32 values rounded to BF16 (nearest, ties to even; NaN kept a quiet NaN). */
export function toBf16(values: Float32Array): Uint16Array {
  const words = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    if ((w & 0x7f800000) === 0x7f800000 && (w & 0x7fffff) !== 0) out[i] = (w >>> 16) | 0x40;
    else out[i] = (w + 0x7fff + ((w >>> 16) & 1)) >>> 16;
  }
  return out;
}

/**
 * Write a safetensors file of about `size` bytes (its tensor data exactly `size` minus the
 * header, rounded down to whole elements): the real values as `dtype`, one tensor per
 * tile. Kept in `dir` and reused while its sidecar sha256 matches.
 */
export function tiledFile(dataDir: string, dir: string, dtype: TiledDType, size: number): string {
  const path = join(dir, `tiled-${dtype.toLowerCase()}-${size}.safetensors`);
  const sidecar = `${path}.sha256`;
  if (existsSync(path) && existsSync(sidecar) && readFileSync(sidecar, "utf8") === sha256File(path))
    return path;
  const f32 = realF32(dataDir);
  const unit = dtype === "F32" ? Buffer.from(f32.buffer, f32.byteOffset, f32.byteLength) : bf16Bytes(f32);
  const width = dtype === "F32" ? 4 : 2;
  // Tensor lengths first (the header's size depends on them), then the header, then data.
  const lengths: number[] = [];
  let budget = size - 4096; // room for the header
  while (budget >= width) {
    const n = Math.min(unit.length, budget - (budget % width));
    lengths.push(n);
    budget -= n;
  }
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [i, n] of lengths.entries()) {
    header[`tile.${i}.weight`] = { dtype, shape: [n / width], data_offsets: [offset, offset + n] };
    offset += n;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  const temp = `${path}.tmp`;
  const fd = openSync(temp, "w");
  try {
    writeSync(fd, prefix);
    writeSync(fd, Buffer.from(json));
    for (const n of lengths) writeSync(fd, unit, 0, n);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, path);
  writeFileSync(sidecar, sha256File(path));
  return path;
}

function bf16Bytes(values: Float32Array): Buffer {
  const words = toBf16(values);
  return Buffer.from(words.buffer, words.byteOffset, words.byteLength);
}

/** The sha256 of a file, read 16 MiB at a time. */
export function sha256File(path: string): string {
  const hash = createHash("sha256");
  const fd = openSync(path, "r");
  const buffer = Buffer.alloc(16 << 20);
  try {
    for (;;) {
      const n = readSync(fd, buffer, 0, buffer.length, null);
      if (n === 0) break;
      hash.update(buffer.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest("hex");
}
