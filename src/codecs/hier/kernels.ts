/**
 * HIER's WebAssembly SIMD kernels (assembly/kernels.ts): loading them and laying out
 * their memory. `npm run build` compiles them into .cache/, keyed by the digest of their
 * source, with a stamp of the files it saw (`node scripts/build.ts --kernels` does only
 * that), and copies them into dist/kernels.wasm for the package; a checkout loads the
 * cache entry of its current source, so a stale build is never used. Where WebAssembly SIMD
 * is missing (compiling the module fails) or no build is found, HIER runs
 * its TypeScript twins, which give the same bytes (test/kernels.test.ts).
 *
 * Memory: a fixed area (decode tables, code tables, histogram scratch, lane positions)
 * above the module's own data, then an arena that one HIER call reserves with begin()
 * and hands out with alloc(). Data lives in the kernels' memory only between a begin()
 * and the end of that call: growing the memory detaches every view of it, so it grows
 * in begin() alone, never while such views are in use.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

/**
 * A 4-lane Huffman decode of one block into out[0..n) (assembly/decode.ts: the 4-symbol,
 * 2-symbol and 1-symbol kernels take the same arguments).
 */
type DecodeLanes = (
  block: number,
  blockLen: number,
  out: number,
  n: number,
  single: number,
  tableBits: number,
  lanes: number,
) => void;

export interface KernelExports {
  heapBase(): number;
  histogram(src: number, n: number, counts: number): void;
  splitBf16(src: number, n: number, e: number, sm: number, counts: number): void;
  mergeBf16(e: number, sm: number, n: number, out: number): void;
  splitF32(src: number, n: number, e: number, m0: number, m1: number, m2: number, counts: number): void;
  mergeF32(e: number, m0: number, m1: number, m2: number, n: number, out: number): void;
  splitF16(src: number, n: number, e: number, lo: number, hi: number): void;
  mergeF16(e: number, lo: number, hi: number, n: number, out: number): void;
  splitPlanes(src: number, n: number, width: number, streams: number): void;
  mergePlanes(streams: number, n: number, width: number, out: number): void;
  splitBlocks(src: number, n: number, width: number, fields: number, nf: number, streams: number): void;
  mergeBlocks(streams: number, n: number, width: number, fields: number, nf: number, out: number): void;
  repeatsWorthAProbe(src: number, n: number, enough: number, table: number): number;
  equalNeighbours(src: number, windows: number, length: number, step: number): number;
  countStrided(src: number, n: number, step: number, counts: number): void;
  encodeLanes(
    symbols: number,
    n: number,
    out: number,
    codes: number,
    lengths: number,
    pairCodes: number,
    pairLengths: number,
    usePairs: number,
    laneEnds: number,
  ): void;
  buildPairs(
    codes: number,
    lengths: number,
    list: number,
    used: number,
    lo: number,
    hi: number,
    pairCodes: number,
    pairLengths: number,
    scratch: number,
  ): void;
  decodeLanes(
    block: number,
    blockLen: number,
    out: number,
    n: number,
    multi: number,
    single: number,
    tableBits: number,
    lanes: number,
  ): void;
  decodeLanesBf16(
    block: number,
    blockLen: number,
    other: number,
    out: number,
    n: number,
    multi: number,
    single: number,
    tableBits: number,
    lanes: number,
    which: number,
  ): void;
  decodeLanesF32(
    block: number,
    blockLen: number,
    m0: number,
    m1: number,
    m2: number,
    out: number,
    n: number,
    multi: number,
    single: number,
    tableBits: number,
    lanes: number,
  ): void;
  buildSingle(lengths: number, tableBits: number, single: number): void;
  buildQuad(single: number, tableBits: number): void;
  decodeLanesQuad: DecodeLanes;
  decodeLanesSingle: DecodeLanes;
  buildTwo(single: number): void;
  decodeLanesTwo: DecodeLanes;
  memory: WasmMemory;
}

/** The parts of the WebAssembly API used here (the project's TypeScript lib has no DOM types). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: object };
}

/** Addresses of the fixed area (see assembly/kernels.ts for what each holds). */
export interface Fixed {
  multi: number;
  single: number;
  counts: number;
  /** Scratch (4 KiB): the used symbols and buildPairs' scratch while a block is coded. */
  sub: number;
  lanes: number;
  codes: number;
  lengths: number;
  pairCodes: number;
  pairLengths: number;
  fields: number;
  /** repeatsWorthAProbe's hash table (u32[2048]). */
  repeats: number;
}

export interface Kernels {
  readonly x: KernelExports;
  readonly at: Fixed;
  /** The memory as bytes (a new view after it grew). */
  u8(): Uint8Array;
  /** Whether `data` is a view of the kernels' memory (so its byteOffset is its address). */
  holds(data: ArrayBufferView): boolean;
  /** Starts a call's use of the arena, growing the memory to hold `bytes`. */
  begin(bytes: number): void;
  /** `bytes` of the arena reserved by begin(), 16-aligned, or -1 when they do not fit. */
  alloc(bytes: number): number;
  /** Gives back what alloc() handed out from `address` on. */
  release(address: number): void;
  /**
   * An input area of `bytes` below the arena, for a reader to read records into while the
   * kernels decode others (see KernelBatches), with the memory grown at once to hold an
   * arena of `arenaBytes` too: views of the memory stay valid while the area is held, as
   * long as no begin() asks for more than arenaRoom(). Undefined when an area is held
   * already. Call between calls into HIER only (the arena moves up).
   */
  holdInput(bytes: number, arenaBytes: number): Uint8Array | undefined;
  /** Gives back the input area: from then on begin() may grow the memory again. */
  dropInput(): void;
  /** Whether `data` lies in the input area held now. */
  inInput(data: ArrayBufferView): boolean;
  /** Whether an input area is held (holdInput, not yet dropInput). */
  inputHeld(): boolean;
  /** The largest begin() that needs no growing of the memory. */
  arenaRoom(): number;
}

/** The largest arena a call may reserve: wasm32 addresses 4 GiB, kept well below. */
export const ARENA_LIMIT = 1 << 30;

const PAGE = 65536;
const FIXED_BYTES = 8192 + 8192 + 1024 + 4096 + 64 + 512 + 256 + 262144 + 65536 + 1024 + 8192;

/**
 * The build to load: in a checkout (assembly/ present), the build of the current source
 * only, so that neither src/ nor dist/ ever runs kernels older than their source; in an
 * installed package, the copy in dist/. A checkout finds its build through the stamp the
 * build writes beside it (stampedBuild), else by the digest of the source, which reads and
 * hashes assembly/ (loading node:crypto, several milliseconds a process).
 */
function locate(): string | undefined {
  const here = import.meta.dirname;
  // This module runs from src/codecs/hier/ or bundled into dist/.
  for (const root of [join(here, "..", "..", ".."), join(here, "..")]) {
    const source = join(root, "assembly", "kernels.ts");
    // An MMH checkout (not some other project's assembly/ above an installed package).
    if (!existsSync(source) || !existsSync(join(root, "src", "codecs", "hier", "kernels.ts"))) continue;
    const cached =
      stampedBuild(root) ?? join(root, ".cache", `kernels-${kernelSourceDigest(kernelSources(root))}.wasm`);
    return existsSync(cached) ? cached : undefined;
  }
  const beside = join(here, "kernels.wasm");
  return existsSync(beside) ? beside : undefined;
}

/** The stamp `node scripts/build.ts --kernels` writes into .cache/: the build of the files it saw. */
export const KERNEL_STAMP = "kernels.json";

/**
 * The names, sizes and modification times of the .ts files in `root`/assembly, and the
 * directory's own modification time (which a file added, removed or renamed sets), as one
 * string: equal stats mean the same source, as make judges, for a stat per file instead of
 * reading and hashing them.
 */
export function kernelStats(root: string): string {
  const dir = join(root, "assembly");
  const names = readdirSync(dir)
    .filter((name) => name.endsWith(".ts"))
    .sort();
  return [
    String(statSync(dir).mtimeMs),
    ...names.map((name) => {
      const { size, mtimeMs } = statSync(join(dir, name));
      return `${name}\0${size}\0${mtimeMs}`;
    }),
  ].join("\n");
}

/**
 * The path of the build the stamp in `root`/.cache names, while assembly/ is as the build
 * saw it (kernelStats); else undefined (no stamp, or a source touched since: the digest
 * decides).
 */
export function stampedBuild(root: string): string | undefined {
  try {
    const stamp = JSON.parse(readFileSync(join(root, ".cache", KERNEL_STAMP), "utf8")) as {
      stats?: unknown;
      wasm?: unknown;
    };
    if (typeof stamp.wasm !== "string" || !/^kernels-[0-9a-f]{16}\.wasm$/.test(stamp.wasm)) return undefined;
    return stamp.stats === kernelStats(root) ? join(root, ".cache", stamp.wasm) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The kernels' source as one byte string: every .ts file in assembly/ (kernels.ts and the
 * files it imports), in name order, each after its name, so that the digest below changes
 * when any of them does.
 */
export function kernelSources(root: string): Uint8Array {
  const dir = join(root, "assembly");
  const names = readdirSync(dir)
    .filter((name) => name.endsWith(".ts"))
    .sort();
  return Buffer.concat(names.flatMap((name) => [Buffer.from(`${name}\0`), readFileSync(join(dir, name))]));
}

/** The name the build cache gives a kernels build: a digest of the source it came from. */
export function kernelSourceDigest(source: Uint8Array): string {
  return process
    .getBuiltinModule("node:crypto")
    .createHash("sha256")
    .update(source)
    .digest("hex")
    .slice(0, 16);
}

function instantiate(): Kernels | undefined {
  const path = locate();
  if (!path) return undefined;
  const bytes = readFileSync(path);
  // The module uses SIMD: an engine without it refuses the module (compiling it throws),
  // and HIER runs TypeScript. Compiling validates: no separate WebAssembly.validate pass,
  // which took as long again.
  const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  if (!wasm) return undefined;
  let module: object;
  try {
    module = new wasm.Module(bytes);
  } catch {
    return undefined;
  }
  const x = new wasm.Instance(module).exports as KernelExports;
  const memory = x.memory;
  let next = (x.heapBase() + 63) & ~63;
  const take = (bytes: number) => {
    const a = next;
    next += (bytes + 63) & ~63;
    return a;
  };
  const at: Fixed = {
    multi: take(8192),
    single: take(8192),
    counts: take(1024),
    sub: take(4096),
    lanes: take(64),
    codes: take(512),
    lengths: take(256),
    pairCodes: take(262144),
    pairLengths: take(65536),
    fields: take(1024),
    repeats: take(8192),
  };
  const fixedEnd = (next + 63) & ~63;
  if (fixedEnd - x.heapBase() > FIXED_BYTES + 1024) throw new Error("kernels: fixed area overflow");
  /** The arena starts past the input area, when one is held (holdInput), else past the fixed area. */
  let arenaBase = fixedEnd;
  let inputEnd = fixedEnd;
  let view = new Uint8Array(memory.buffer);
  let top = arenaBase;
  let end = arenaBase;
  const u8 = () => {
    if (view.buffer !== memory.buffer) view = new Uint8Array(memory.buffer);
    return view;
  };
  const grow = (bytes: number) => {
    const need = arenaBase + bytes;
    if (need > memory.buffer.byteLength) memory.grow(Math.ceil((need - memory.buffer.byteLength) / PAGE));
  };
  grow(0);
  return {
    x,
    at,
    u8,
    holds: (data) => data.buffer === memory.buffer,
    begin(bytes) {
      grow(bytes);
      top = arenaBase;
      end = arenaBase + bytes;
    },
    alloc(bytes) {
      const a = top;
      const after = a + ((bytes + 15) & ~15);
      if (after > end) return -1;
      top = after;
      return a;
    },
    release(address) {
      if (address >= arenaBase && address < top) top = address;
    },
    holdInput(bytes, arenaBytes) {
      if (inputEnd > fixedEnd) return undefined;
      inputEnd = fixedEnd + ((bytes + 63) & ~63);
      arenaBase = inputEnd;
      top = end = arenaBase;
      grow(arenaBytes);
      return u8().subarray(fixedEnd, inputEnd);
    },
    dropInput() {
      inputEnd = arenaBase = top = end = fixedEnd;
    },
    inInput(data) {
      return (
        data.buffer === memory.buffer &&
        data.byteOffset >= fixedEnd &&
        data.byteOffset + data.byteLength <= inputEnd
      );
    },
    inputHeld: () => inputEnd > fixedEnd,
    arenaRoom: () => memory.buffer.byteLength - arenaBase,
  };
}

let loaded: Kernels | undefined | null = null;
let enabled = true;

/** The kernels, or undefined where they cannot run or are switched off. */
export function kernels(): Kernels | undefined {
  if (!enabled) return undefined;
  if (loaded === null) loaded = instantiate();
  return loaded;
}

/**
 * The kernels if they are loaded already, without loading them: data is in their memory
 * only once they are, so a check for that need not compile them (a small input never does).
 */
export function loadedKernels(): Kernels | undefined {
  return enabled ? (loaded ?? undefined) : undefined;
}

/**
 * Switches the kernels off (HIER then runs its TypeScript twins) or on again; returns
 * whether they were on. For tests and benchmarks comparing the two paths.
 */
export function setKernels(on: boolean): boolean {
  const was = enabled;
  enabled = on;
  return was;
}

/** Whether the kernels were found and run here (the engine supports WebAssembly SIMD). */
export function kernelsAvailable(): boolean {
  if (loaded === null) loaded = instantiate();
  return loaded !== undefined;
}
