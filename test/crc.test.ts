import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { before, test } from "node:test";
import { crc32 as zlibCrc32 } from "node:zlib";
import { crc32, NATIVE_CRC_AFTER_BYTES, NATIVE_CRC_MIN_BYTES, nativeCrc } from "../src/common/crc.ts";

type WasmMemory = new (descriptor: { initial: number }) => { buffer: ArrayBuffer };

const native = process.platform === "linux" && process.arch === "x64";
// Loaded up front, so the comparisons below run the native path (where it loads).
before(() => nativeCrc());

const around = [
  0,
  1,
  7,
  4096,
  NATIVE_CRC_MIN_BYTES - 1,
  NATIVE_CRC_MIN_BYTES,
  NATIVE_CRC_MIN_BYTES + 13,
  3 << 20,
];

test("crc32 equals zlib's on every size, offset and initial value", () => {
  const bytes = randomBytes((3 << 20) + 64);
  for (const length of around)
    for (const offset of [0, 3])
      for (const initial of [0, 1, 0xdeadbeef, 0xffffffff]) {
        const view = new Uint8Array(bytes.buffer, bytes.byteOffset + offset, length);
        assert.equal(
          crc32(view, initial),
          zlibCrc32(view, initial),
          `${length} bytes at +${offset} from ${initial}`,
        );
      }
});

test("crc32 chains: the CRC of two pieces continued is the CRC of the whole", () => {
  const bytes = randomBytes(NATIVE_CRC_MIN_BYTES * 3);
  const cut = NATIVE_CRC_MIN_BYTES + 5;
  assert.equal(crc32(bytes.subarray(cut), crc32(bytes.subarray(0, cut))), zlibCrc32(bytes));
});

test("crc32 reads shared and WebAssembly memory as any bytes", () => {
  const data = randomBytes(NATIVE_CRC_MIN_BYTES + 100);
  const shared = new Uint8Array(new SharedArrayBuffer(data.length + 8));
  shared.set(data, 8);
  // (WebAssembly is not in the project's type library; Node has it.)
  const { Memory } = (globalThis as unknown as { WebAssembly: { Memory: WasmMemory } }).WebAssembly;
  const memory = new Uint8Array(new Memory({ initial: 8 }).buffer);
  memory.set(data, 1);
  const want = zlibCrc32(data);
  assert.equal(crc32(shared.subarray(8)), want);
  assert.equal(crc32(memory.subarray(1, 1 + data.length)), want);
});

test("the native CRC loads where @node-rs/crc32 ships a binary, and MMH_NATIVE_CRC=0 turns it off", () => {
  if (native) assert.equal(nativeCrc(), true);
  const b = new Uint8Array(NATIVE_CRC_MIN_BYTES * 2).map((_, i) => i * 31);
  assert.deepEqual(JSON.parse(child("console.log(JSON.stringify([nativeCrc(), crc32(b)]));", "0")), [
    false,
    zlibCrc32(b),
  ]);
});

test("a process loads the native CRC only after checking NATIVE_CRC_AFTER_BYTES with zlib's", () => {
  const piece = NATIVE_CRC_MIN_BYTES * 4;
  const pieces = NATIVE_CRC_AFTER_BYTES / piece;
  // Small pieces never count; large ones do, up to the threshold.
  const script = `const small = b.subarray(0, ${NATIVE_CRC_MIN_BYTES - 1});
    for (let i = 0; i < 4096; i++) crc32(small);
    const seen = [nativeCrcLoaded()];
    let c = 0;
    for (let i = 0; i < ${pieces - 1}; i++) c = crc32(b, c);
    seen.push(nativeCrcLoaded());
    c = crc32(b, c);
    seen.push(nativeCrcLoaded());
    c = crc32(b, c);
    console.log(JSON.stringify([...seen, c]));`;
  const b = new Uint8Array(piece).map((_, i) => i * 31);
  let want = 0;
  for (let i = 0; i < pieces + 1; i++) want = zlibCrc32(b, want);
  assert.deepEqual(JSON.parse(child(script, undefined, piece)), [false, false, native, want]);
});

/** Runs `body` in a fresh process with crc.ts imported and `b` (bytes) defined; its output. */
function child(body: string, env?: string, length = NATIVE_CRC_MIN_BYTES * 2): string {
  const url = new URL("../src/common/crc.ts", import.meta.url).href;
  const script = `import { crc32, nativeCrc, nativeCrcLoaded } from ${JSON.stringify(url)};
    const b = new Uint8Array(${length}).map((_, i) => i * 31);
    ${body}`;
  const childEnv = { ...process.env };
  if (env === undefined) delete childEnv.MMH_NATIVE_CRC;
  else childEnv.MMH_NATIVE_CRC = env;
  return execFileSync(process.execPath, ["--input-type=module", "-e", script], {
    env: childEnv,
    encoding: "utf8",
  });
}

test("expectCrcBytes loads the native CRC at once for NATIVE_CRC_AFTER_BYTES ahead, not for less", () => {
  const script = `const { expectCrcBytes } = await import(${JSON.stringify(new URL("../src/common/crc.ts", import.meta.url).href)});
    expectCrcBytes(${NATIVE_CRC_AFTER_BYTES - 1});
    const seen = [nativeCrcLoaded()];
    expectCrcBytes(${NATIVE_CRC_AFTER_BYTES});
    seen.push(nativeCrcLoaded());
    console.log(JSON.stringify([...seen, crc32(b)]));`;
  const b = new Uint8Array(NATIVE_CRC_MIN_BYTES * 2).map((_, i) => i * 31);
  assert.deepEqual(JSON.parse(child(script)), [false, native, zlibCrc32(b)]);
  // Turned off, it stays off.
  assert.deepEqual(JSON.parse(child(script, "0")), [false, false, zlibCrc32(b)]);
});
