/**
 * The first bytes of each format the recognisers know: what formats/index.ts reads to
 * choose a recogniser, without loading any of them. Each recogniser's module loads only
 * when a file's first bytes name its format, so a file of none of them (and most of
 * `mmh -c`'s small inputs) loads no recogniser at all (docs/ENGINE.md, Start-up). The
 * format modules re-export their test from here.
 */

export const GGUF_MAGIC = Buffer.from("GGUF", "latin1");

export function looksLikeGguf(head: Uint8Array): boolean {
  return head.length >= 4 && Buffer.from(head.buffer, head.byteOffset, 4).equals(GGUF_MAGIC);
}

export const HDF5_MAGIC = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);

export function looksLikeHdf5(head: Uint8Array): boolean {
  return head.length >= 8 && Buffer.from(head.buffer, head.byteOffset, 8).equals(HDF5_MAGIC);
}

export const MAGIC_GGML = 0x67676d6c;
export const MAGIC_GGMF = 0x67676d66;
export const MAGIC_GGJT = 0x67676a74;

export function looksLikeGgml(head: Uint8Array): boolean {
  if (head.length < 4) return false;
  const magic = Buffer.from(head.buffer, head.byteOffset, 4).readUInt32LE(0);
  return magic === MAGIC_GGML || magic === MAGIC_GGMF || magic === MAGIC_GGJT;
}

export const NPY_MAGIC = Buffer.from("\x93NUMPY", "latin1");

export function looksLikeNpy(head: Uint8Array): boolean {
  return head.length >= 6 && Buffer.from(head.buffer, head.byteOffset, 6).equals(NPY_MAGIC);
}

/** Legacy torch.save's first pickle: the magic number 0x1950a86a20f9469cfc6c as LONG1. */
const LEGACY_TORCH_MAGIC = Buffer.from([
  0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e,
]);

export function looksLikeLegacyTorch(head: Uint8Array): boolean {
  return (
    head.length >= LEGACY_TORCH_MAGIC.length &&
    Buffer.from(head.subarray(0, LEGACY_TORCH_MAGIC.length)).equals(LEGACY_TORCH_MAGIC)
  );
}

export function looksLikeZip(head: Uint8Array): boolean {
  // A local file header, or the end record of an empty archive.
  return (
    head.length >= 4 &&
    head[0] === 0x50 &&
    head[1] === 0x4b &&
    ((head[2] === 3 && head[3] === 4) || (head[2] === 5 && head[3] === 6))
  );
}

/** Does the file start like a safetensors file? (8-byte length, then a JSON object.) */
export function looksLikeSafetensors(head: Uint8Array): boolean {
  if (head.length < 10 || head[8] !== 0x7b) return false;
  // `{` then a key, the end of an empty object, or whitespace.
  return [0x22, 0x7d, 0x20, 0x0a, 0x0d, 0x09].includes(head[9]);
}

export const TFLITE_IDENTIFIER = Buffer.from("TFL3", "latin1");

export function looksLikeTflite(head: Uint8Array): boolean {
  return head.length >= 8 && Buffer.from(head.buffer, head.byteOffset + 4, 4).equals(TFLITE_IDENTIFIER);
}

/** The largest IR version the sniffing accepts (ONNX 1.18 writes 11). */
const MAX_IR_VERSION = 64;
/** ModelProto's ir_version field (onnx.proto). */
export const MODEL_IR_VERSION = 1;
/** ModelProto's length-delimited fields: strings, the graph, opsets, metadata, training info, functions. */
const MODEL_MESSAGE_FIELDS = [2, 3, 4, 6, 7, 8, 14, 20, 25];
/** Protobuf's wire types of a varint and of a length-delimited field (as protobuf.ts). */
const WIRE_VARINT = 0;
const WIRE_LEN = 2;

/**
 * Whether the first bytes are a ModelProto's ir_version field followed by the tag of
 * another ModelProto field. Cheap and strict enough that other files rarely pass it; the
 * full parse decides.
 */
export function looksLikeOnnx(head: Uint8Array): boolean {
  if (head.length < 4 || head[0] !== ((MODEL_IR_VERSION << 3) | WIRE_VARINT)) return false;
  if (head[1] < 1 || head[1] > MAX_IR_VERSION) return false;
  // The next tag (one or two bytes): another ModelProto field, of its wire type.
  const tag = head[2] & 0x80 ? (head[2] & 0x7f) | (head[3] << 7) : head[2];
  const number = tag >> 3;
  if (number === 5) return (tag & 7) === WIRE_VARINT; // model_version
  return MODEL_MESSAGE_FIELDS.includes(number) && (tag & 7) === WIRE_LEN;
}
