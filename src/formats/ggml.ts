/**
 * The model files ggml programs wrote before GGUF: llama.cpp's `ggml` (unversioned),
 * `ggmf` v1 and `ggjt` v1 to v3, whisper.cpp's and the ggml examples' (gpt-2, gpt-j,
 * gpt-neox) `ggml`, and rwkv.cpp's `ggmf` v100 and v101. All are little-endian: a u32
 * magic, a version for `ggmf` and `ggjt`, a hyperparameter header that depends on the
 * model family, often a vocabulary, then tensor records up to the end of the file:
 *
 *     i32 n_dims, i32 name length, i32 type, i32 ne[n_dims], name,
 *     (ggjt only: zeros up to a multiple of 32 in the file), the tensor's data.
 *
 * The magic does not say which family wrote a `ggml` file, so each family's header is
 * tried in turn and a reading is kept only when its tensor records then run exactly to
 * the end of the file (with sane dimensions, names and types); when none does, the file
 * is refused with the error of the reading that got furthest, and the compressor codes
 * it as raw bytes. The types are ggml's (rwkv.cpp numbers its own and is mapped), with
 * the block layouts of the time: files from before ggml's May 2023 change (ggjt v1 and
 * v2, ggmf v1, rwkv.cpp v100, ggml files whose ftype carries a quantisation version
 * below 2) have Q4_0, Q4_1 and Q8_0 blocks with f32 scales, which HIER has no layout for
 * (raw regions), and the removed Q4_2 and Q4_3.
 */

import type { Region } from "../common/dtype.ts";
import { check, MmhError } from "../common/errors.ts";
import type { RandomAccessSource } from "../common/source.ts";
import { GGML_TYPES, type GgmlType } from "./gguf.ts";
import { MAGIC_GGJT, MAGIC_GGMF, MAGIC_GGML } from "./magic.ts";
import {
  checkedProduct,
  decodeUtf8,
  maxHeaderBytes,
  rawRegion,
  tensorRegion,
  tileRegions,
} from "./regions.ts";
import type { Recognised, RecogniseOptions, TensorEntry } from "./types.ts";
import { BudgetedWindow } from "./window.ts";

export { looksLikeGgml } from "./magic.ts";

/** ggml tensors have at most 4 dimensions. */
export const GGML_MAX_DIMS = 4;
export const GGML_MAX_NAME = 1024;
/** Longest vocabulary entry accepted. */
const MAX_TOKEN = 1 << 16;
/** Largest vocabulary walked (real ones hold 32,000 to 260,000 tokens). */
export const GGML_MAX_VOCAB = 1 << 20;
/** Most tensor records walked. */
export const GGML_MAX_TENSORS = 1 << 20;

/** Blocks of the layouts ggml used before its May 2023 change (no HIER layout: raw). */
const OLD_BLOCKS: ReadonlyMap<number, GgmlType> = new Map([
  [2, { name: "Q4_0 (f32 scale)", blockSize: 32, typeSize: 20 }],
  [3, { name: "Q4_1 (f32 scale)", blockSize: 32, typeSize: 24 }],
  [4, { name: "Q4_2", blockSize: 16, typeSize: 10 }],
  [5, { name: "Q4_3", blockSize: 16, typeSize: 12 }],
  [8, { name: "Q8_0 (f32 scale)", blockSize: 32, typeSize: 36 }],
  [9, { name: "Q8_1 (f32 scales)", blockSize: 32, typeSize: 40 }],
]);

/** rwkv.cpp's type numbers, as ggml type ids (-1: unused). */
const RWKV_TYPES = [0, 1, 2, 3, -1, -1, -1, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

interface Layout {
  family: string;
  magic: string;
  version?: number;
  hparams: Record<string, number>;
  vocab?: number;
  /** Where the first tensor record starts. */
  tensorsAt: number;
  /** ggjt: tensor data starts at a multiple of 32. */
  aligned: boolean;
  /** Block layouts of May 2023 and later. */
  current: boolean;
  rwkv: boolean;
}

/** Reads little-endian fields at a position, through a budgeted window, every one checked against the file. */
class Reader {
  readonly w: BudgetedWindow;
  readonly size: number;
  pos: number;
  constructor(w: BudgetedWindow, size: number, pos: number) {
    this.w = w;
    this.size = size;
    this.pos = pos;
  }
  ensure(n: number, what: string): void {
    check(
      Number.isSafeInteger(n) && n >= 0 && this.pos + n <= this.size,
      "E_TRUNCATED",
      `ggml: ${what} (${n} bytes at ${this.pos}) runs past the end of the file (${this.size} bytes)`,
    );
  }
  async bytes(n: number, what: string): Promise<Buffer> {
    this.ensure(n, what);
    const out = await this.w.take(this.pos, n, what);
    this.pos += n;
    return out;
  }
  async i32(what: string): Promise<number> {
    return (await this.bytes(4, what)).readInt32LE(0);
  }
  async i32s(n: number, what: string): Promise<number[]> {
    const b = await this.bytes(4 * n, what);
    return Array.from({ length: n }, (_, i) => b.readInt32LE(4 * i));
  }
  skip(n: number, what: string): void {
    this.ensure(n, what);
    this.w.spend(Math.min(n, 16));
    this.pos += n;
  }
}

function named(names: string[], values: number[]): Record<string, number> {
  return Object.fromEntries(names.map((n, i) => [n, values[i]]));
}

/** Skip `count` vocabulary entries: u32 length, bytes, and an f32 score when `scores`. */
async function skipVocab(r: Reader, count: number, scores: boolean): Promise<void> {
  check(count >= 0, "E_CORRUPT", `ggml: vocabulary of ${count} entries`);
  check(
    count <= GGML_MAX_VOCAB,
    "E_LIMIT",
    `ggml: vocabulary of ${count} entries (at most ${GGML_MAX_VOCAB})`,
  );
  r.ensure(count * (scores ? 8 : 4), `vocabulary of ${count} entries`);
  for (let i = 0; i < count; i++) {
    const length = (await r.bytes(4, `token ${i} length`)).readUInt32LE(0);
    check(length <= MAX_TOKEN, "E_CORRUPT", `ggml: token ${i} is ${length} bytes long`);
    r.skip(length + (scores ? 4 : 0), `token ${i}`);
  }
}

const LLAMA = ["n_vocab", "n_embd", "n_mult", "n_head", "n_layer", "n_rot", "ftype"];
const WHISPER = [
  "n_vocab",
  "n_audio_ctx",
  "n_audio_state",
  "n_audio_head",
  "n_audio_layer",
  "n_text_ctx",
  "n_text_state",
  "n_text_head",
  "n_text_layer",
  "n_mels",
  "ftype",
];
const GPT2 = ["n_vocab", "n_ctx", "n_embd", "n_head", "n_layer", "ftype"];
const GPTJ = ["n_vocab", "n_ctx", "n_embd", "n_head", "n_layer", "n_rot", "ftype"];
const GPTNEOX = ["n_vocab", "n_ctx", "n_embd", "n_head", "n_layer", "n_rot", "par_res", "ftype"];

/** ggml example files carry ftype + 1000 × the quantisation version (2 since May 2023). */
function quantVersion(ftype: number): number {
  return ftype >= 0 ? Math.floor(ftype / 1000) : 0;
}

/** The ggml examples' loaders read a vocabulary size that must equal n_vocab. */
async function counted(r: Reader, nVocab: number): Promise<number> {
  const count = await r.i32("vocabulary size");
  check(count === nVocab, "E_CORRUPT", `ggml: vocabulary of ${count} entries for n_vocab ${nVocab}`);
  return count;
}

type Family = (r: Reader) => Promise<Omit<Layout, "tensorsAt">>;

const UNVERSIONED: [string, Family][] = [
  [
    "whisper",
    async (r) => {
      const h = await r.i32s(11, "whisper hyperparameters");
      const nMel = await r.i32("mel filter count");
      const nFft = await r.i32("mel filter length");
      check(
        nMel === h[9] && nMel > 0 && nMel <= 1024 && nFft > 0 && nFft <= 65536,
        "E_CORRUPT",
        `ggml: whisper mel filters ${nMel} × ${nFft} for n_mels ${h[9]}`,
      );
      r.skip(nMel * nFft * 4, "mel filters");
      await skipVocab(r, await r.i32("vocabulary size"), false);
      return {
        family: "whisper",
        magic: "ggml",
        hparams: named(WHISPER, h),
        current: quantVersion(h[10]) >= 2,
        aligned: false,
        rwkv: false,
      };
    },
  ],
  [
    "gpt-2",
    async (r) => {
      const h = await r.i32s(6, "gpt-2 hyperparameters");
      await skipVocab(r, await counted(r, h[0]), false);
      return {
        family: "gpt-2",
        magic: "ggml",
        hparams: named(GPT2, h),
        current: quantVersion(h[5]) >= 2,
        aligned: false,
        rwkv: false,
      };
    },
  ],
  [
    "gpt-j",
    async (r) => {
      const h = await r.i32s(7, "gpt-j hyperparameters");
      await skipVocab(r, await counted(r, h[0]), false);
      return {
        family: "gpt-j",
        magic: "ggml",
        hparams: named(GPTJ, h),
        current: quantVersion(h[6]) >= 2,
        aligned: false,
        rwkv: false,
      };
    },
  ],
  [
    "llama",
    async (r) => {
      const h = await r.i32s(7, "llama hyperparameters");
      await skipVocab(r, h[0], false);
      return {
        family: "llama",
        magic: "ggml",
        hparams: named(LLAMA, h),
        current: false,
        aligned: false,
        rwkv: false,
      };
    },
  ],
  [
    "gpt-neox",
    async (r) => {
      const h = await r.i32s(8, "gpt-neox hyperparameters");
      await skipVocab(r, h[0], false);
      return {
        family: "gpt-neox",
        magic: "ggml",
        hparams: named(GPTNEOX, h),
        current: quantVersion(h[7]) >= 2,
        aligned: false,
        rwkv: false,
      };
    },
  ],
];

interface Record_ {
  name: string;
  type: GgmlType;
  typeId: number;
  dims: number[];
  offset: number;
  length: number;
}

function typeOf(id: number, layout: Layout): GgmlType | undefined {
  let ggml = id;
  if (layout.rwkv) ggml = id >= 0 && id < RWKV_TYPES.length ? RWKV_TYPES[id] : -1;
  if (ggml < 0) return undefined;
  if (!layout.current && OLD_BLOCKS.has(ggml)) return OLD_BLOCKS.get(ggml);
  if (ggml === 4 || ggml === 5) return undefined;
  return GGML_TYPES.get(ggml);
}

/** The tensor records from `layout.tensorsAt` to the end of the file. */
async function tensorRecords(r: Reader, layout: Layout): Promise<Record_[]> {
  const records: Record_[] = [];
  const names = new Set<string>();
  r.pos = layout.tensorsAt;
  while (r.pos < r.size) {
    const i = records.length;
    check(i < GGML_MAX_TENSORS, "E_LIMIT", `ggml: more than ${GGML_MAX_TENSORS} tensors`);
    const [nDims, nameLength, typeId] = await r.i32s(3, `tensor ${i} header`);
    check(nDims >= 1 && nDims <= GGML_MAX_DIMS, "E_CORRUPT", `ggml: tensor ${i} has ${nDims} dimensions`);
    check(
      nameLength >= 1 && nameLength <= GGML_MAX_NAME,
      "E_CORRUPT",
      `ggml: tensor ${i} has a name of ${nameLength} bytes`,
    );
    const dims = await r.i32s(nDims, `tensor ${i} dimensions`);
    check(
      dims.every((d) => d >= 1),
      "E_CORRUPT",
      `ggml: tensor ${i} has dimensions ${dims.join(" × ")}`,
    );
    const name = decodeUtf8(await r.bytes(nameLength, `tensor ${i} name`));
    check(
      name !== undefined && !name.includes("\0"),
      "E_CORRUPT",
      `ggml: tensor ${i} name is not valid UTF-8`,
    );
    check(!names.has(name), "E_CORRUPT", `ggml: duplicate tensor name ${JSON.stringify(name)}`);
    names.add(name);
    const type = typeOf(typeId, layout);
    check(type !== undefined, "E_UNSUPPORTED", `ggml: tensor ${name} has unknown type ${typeId}`);
    check(
      dims[0] % type.blockSize === 0,
      "E_CORRUPT",
      `ggml: tensor ${name} of ${type.name} has a row of ${dims[0]}, not a multiple of ${type.blockSize}`,
    );
    if (layout.aligned) {
      const pad = (32 - (r.pos % 32)) % 32;
      r.skip(pad, `tensor ${name} padding`);
    }
    const elements = checkedProduct(dims);
    const length =
      elements === undefined ? undefined : checkedProduct([elements / type.blockSize], type.typeSize);
    check(length !== undefined, "E_CORRUPT", `ggml: tensor ${name} size overflows`);
    const offset = r.pos;
    r.skip(length, `tensor ${name} data`);
    records.push({ name, type, typeId, dims, offset, length });
  }
  return records;
}

async function readLayout(r: Reader): Promise<Layout> {
  const magic = (await r.bytes(4, "magic")).readUInt32LE(0);
  if (magic === MAGIC_GGJT) {
    const version = await r.i32("version");
    check(version >= 1 && version <= 3, "E_UNSUPPORTED", `ggml: ggjt version ${version} (1 to 3 are read)`);
    const h = await r.i32s(7, "llama hyperparameters");
    await skipVocab(r, h[0], true);
    return {
      family: "llama",
      magic: "ggjt",
      version,
      hparams: named(LLAMA, h),
      vocab: h[0],
      tensorsAt: r.pos,
      aligned: true,
      current: version >= 3,
      rwkv: false,
    };
  }
  if (magic === MAGIC_GGMF) {
    const version = await r.i32("version");
    if (version === 100 || version === 101) {
      const h = await r.i32s(4, "rwkv hyperparameters");
      return {
        family: "rwkv",
        magic: "ggmf",
        version,
        hparams: named(["n_vocab", "n_embed", "n_layer", "data_type"], h),
        tensorsAt: r.pos,
        aligned: false,
        current: version === 101,
        rwkv: true,
      };
    }
    check(version === 1, "E_UNSUPPORTED", `ggml: ggmf version ${version} (1, 100 and 101 are read)`);
    const h = await r.i32s(7, "llama hyperparameters");
    await skipVocab(r, h[0], true);
    return {
      family: "llama",
      magic: "ggmf",
      version,
      hparams: named(LLAMA, h),
      vocab: h[0],
      tensorsAt: r.pos,
      aligned: false,
      current: false,
      rwkv: false,
    };
  }
  throw new MmhError("E_INTERNAL", "ggml: readLayout called on an unversioned file");
}

export async function recogniseGgml(
  source: RandomAccessSource,
  options?: RecogniseOptions,
): Promise<Recognised> {
  const budget = maxHeaderBytes(options);
  const size = source.size;
  const head = new Reader(new BudgetedWindow(source, budget, "ggml"), size, 0);
  const magic = (await head.bytes(4, "magic")).readUInt32LE(0);
  let layout: Layout | undefined;
  let records: Record_[] | undefined;
  if (magic === MAGIC_GGML) {
    // Try each family's header; keep the first whose tensor records run to the end.
    let best: { error: unknown; pos: number } | undefined;
    for (const [, family] of UNVERSIONED) {
      const r = new Reader(new BudgetedWindow(source, budget, "ggml"), size, 4);
      try {
        const found = await family(r);
        const candidate = { ...found, tensorsAt: r.pos };
        const found2 = await tensorRecords(r, candidate);
        check(found2.length > 0, "E_CORRUPT", `ggml: no tensor records after a ${candidate.family} header`);
        records = found2;
        layout = candidate;
        break;
      } catch (error) {
        if (!(error instanceof MmhError) || error.code === "E_IO" || error.code === "E_ABORTED") throw error;
        if (!best || r.pos > best.pos) best = { error, pos: r.pos };
      }
    }
    if (!layout || !records) {
      const reason = best?.error instanceof MmhError ? best.error : undefined;
      throw new MmhError(
        reason?.code ?? "E_UNSUPPORTED",
        `ggml: no known header (whisper, gpt-2, gpt-j, llama, gpt-neox) fits; the closest: ${reason?.message ?? "none"}`,
      );
    }
  } else {
    const r = new Reader(new BudgetedWindow(source, budget, "ggml"), size, 0);
    layout = await readLayout(r);
    records = await tensorRecords(r, layout);
  }

  const regions: Region[] = [rawRegion("ggml header", 0, layout.tensorsAt)];
  const tensors: TensorEntry[] = [];
  for (const t of records) {
    const shape = [...t.dims].reverse();
    if (t.type.dtype !== undefined)
      regions.push(tensorRegion(t.name, t.offset, t.length, t.type.dtype, shape));
    else regions.push(rawRegion(t.name, t.offset, t.length, t.type.name));
    tensors.push({
      name: t.name,
      dtype: t.type.dtype ?? t.type.name,
      shape,
      offset: t.offset,
      length: t.length,
    });
  }
  const metadata: Record<string, unknown> = {
    family: layout.family,
    magic: layout.magic,
    hparams: layout.hparams,
    tensorCount: tensors.length,
    blockLayout: layout.current ? "ggml 2023-05 and later" : "ggml before 2023-05",
  };
  if (layout.version !== undefined) metadata.version = layout.version;
  if (layout.vocab !== undefined) metadata.vocab = layout.vocab;
  return { format: "ggml", regions: tileRegions(regions, size, "tensor records"), tensors, metadata };
}
