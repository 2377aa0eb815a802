/**
 * The `onProgress` option of the long-running calls: counts that never go back, a last
 * report with the full sizes, throttling by time, and a callback that throws.
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  compressFile,
  compressStream,
  decompressFile,
  decompressStream,
  type ProgressEvent,
  pack,
  unpack,
  verify,
} from "../src/index.ts";
import { noiseBytes, rejectsWith, textBytes } from "./support.ts";

/** 4 MiB in 64 KiB chunks: text, then noise. lz4 keeps the whole file fast. */
const content = Buffer.concat([textBytes(3 << 20, 1), noiseBytes(1 << 20, 2)]);
const CODING = { codec: "lz4", chunkSize: 64 << 10 } as const;

let dir = "";
let counter = 0;
const fresh = (stem: string) => join(dir, `${stem}-${++counter}`);
let input = "";
let packed = "";
let folder = "";
let archive = "";
let folderBytes = 0;

/** A callback that records every report, with every report, in order. */
function recorder() {
  const events: ProgressEvent[] = [];
  return { events, onProgress: (progress: ProgressEvent) => void events.push(progress) };
}

/** Counts never go back; only the last report is `done`, and it holds the expected totals. */
function checkEvents(
  events: readonly ProgressEvent[],
  expected: { readBytes: number; writtenBytes: number; totalBytes?: number },
) {
  assert.ok(events.length >= 2, `at least a first and a last report, got ${events.length}`);
  for (let i = 1; i < events.length; i++) {
    assert.ok(events[i].readBytes >= events[i - 1].readBytes, `readBytes went back at report ${i}`);
    assert.ok(events[i].writtenBytes >= events[i - 1].writtenBytes, `writtenBytes went back at report ${i}`);
  }
  assert.deepEqual(
    events.map((e) => e.done),
    events.map((_, i) => i === events.length - 1),
    "only the last report is done",
  );
  const last = events[events.length - 1];
  assert.equal(last.readBytes, expected.readBytes, "readBytes ends at the input's size");
  assert.equal(last.writtenBytes, expected.writtenBytes, "writtenBytes ends at the output's size");
  assert.equal(last.totalBytes, expected.totalBytes);
  for (const e of events)
    assert.equal(e.totalBytes, expected.totalBytes, "the total is known from the start");
}

/** How many reports came between the first and the last. */
const middle = (events: readonly ProgressEvent[]) => events.length - 2;

const size = async (file: string) => (await stat(file)).size;

/** What is in `folder`: a failed call must leave nothing there (no temporary files either). */
const leftovers = (folder: string) => readdir(folder);

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "mmh-progress-api-"));
  input = join(dir, "input.bin");
  await writeFile(input, content);
  packed = join(dir, "input.bin.mmh");
  await compressFile(input, packed, CODING);
  folder = join(dir, "model");
  await mkdir(join(folder, "shards"), { recursive: true });
  const files: [string, Buffer][] = [
    ["config.json", Buffer.from('{"layers": 2}\n')],
    ["empty.txt", Buffer.alloc(0)],
    ["shards/a.bin", noiseBytes(3 << 19, 3)],
    ["shards/b.txt", textBytes(2 << 20, 4)],
  ];
  for (const [name, bytes] of files) await writeFile(join(folder, name), bytes);
  folderBytes = files.reduce((sum, [, bytes]) => sum + bytes.length, 0);
  archive = join(dir, "model.mmh");
  await pack(folder, archive, CODING);
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("onProgress", () => {
  test("compressFile: bytes read of the file's size, container bytes written", async () => {
    const { events, onProgress } = recorder();
    const out = fresh("c.mmh");
    await compressFile(input, out, { ...CODING, onProgress, progressIntervalMs: 0 });
    checkEvents(events, {
      readBytes: content.length,
      writtenBytes: await size(out),
      totalBytes: content.length,
    });
    assert.ok(middle(events) > 10, `64 chunks give many reports, got ${middle(events)}`);
    assert.ok(events.some((e) => e.readBytes > 0 && e.readBytes < content.length));
    assert.deepEqual(await readFile(out), await readFile(packed));
  });

  test("decompressFile: container bytes read of its size, content bytes written", async () => {
    const { events, onProgress } = recorder();
    const out = fresh("d.bin");
    await decompressFile(packed, out, { onProgress, progressIntervalMs: 0 });
    const stored = await size(packed);
    checkEvents(events, { readBytes: stored, writtenBytes: content.length, totalBytes: stored });
    assert.ok(middle(events) > 10, `64 chunks give many reports, got ${middle(events)}`);
    assert.deepEqual(await readFile(out), content);
  });

  test("verify: container bytes read, nothing written", async () => {
    const { events, onProgress } = recorder();
    await verify(packed, { onProgress, progressIntervalMs: 0 });
    const stored = await size(packed);
    checkEvents(events, { readBytes: stored, writtenBytes: 0, totalBytes: stored });
    assert.ok(middle(events) >= 1, `a multi-MiB file gives reports before the end, got ${middle(events)}`);
  });

  test("pack: the folder's bytes read, with the file being read", async () => {
    const { events, onProgress } = recorder();
    const out = fresh("p.mmh");
    await pack(folder, out, { ...CODING, onProgress, progressIntervalMs: 0 });
    checkEvents(events, { readBytes: folderBytes, writtenBytes: await size(out), totalBytes: folderBytes });
    assert.ok(middle(events) > 10, `many chunks give many reports, got ${middle(events)}`);
    // In order; an empty file has nothing to read, so no report names it.
    const seen = [...new Set(events.flatMap((e) => (e.entry ? [e.entry] : [])))];
    assert.deepEqual(seen, ["config.json", "shards/a.bin", "shards/b.txt"]);
  });

  test("unpack: the archive's bytes read, content written, with the file being written", async () => {
    const { events, onProgress } = recorder();
    const out = fresh("restored");
    await unpack(archive, out, { onProgress, progressIntervalMs: 0 });
    const stored = await size(archive);
    checkEvents(events, { readBytes: stored, writtenBytes: folderBytes, totalBytes: stored });
    assert.ok(middle(events) > 10, `many chunks give many reports, got ${middle(events)}`);
    const seen = new Set(events.flatMap((e) => (e.entry ? [e.entry] : [])));
    assert.ok(seen.has("shards/a.bin") && seen.has("shards/b.txt"), [...seen].join(", "));
    assert.deepEqual(await readFile(join(out, "shards/b.txt")), await readFile(join(folder, "shards/b.txt")));
  });

  test("compressStream and decompressStream: counts without a total", async () => {
    async function* source(bytes: Uint8Array, piece: number) {
      for (let i = 0; i < bytes.length; i += piece) yield bytes.subarray(i, i + piece);
    }
    const encodes = recorder();
    const parts: Uint8Array[] = [];
    for await (const part of compressStream(source(content, 1 << 20), {
      ...CODING,
      onProgress: encodes.onProgress,
      progressIntervalMs: 0,
    }))
      parts.push(part);
    const container = Buffer.concat(parts);
    checkEvents(encodes.events, { readBytes: content.length, writtenBytes: container.length });

    const decodes = recorder();
    let restored = 0;
    for await (const part of decompressStream(source(container, 1 << 20), {
      onProgress: decodes.onProgress,
      progressIntervalMs: 0,
    }))
      restored += part.length;
    checkEvents(decodes.events, { readBytes: container.length, writtenBytes: content.length });
    assert.equal(restored, content.length);
  });

  test("reports are throttled by time: by default at most one per 100 ms between the first and last", async () => {
    const { events, onProgress } = recorder();
    const started = performance.now();
    await compressFile(input, fresh("t.mmh"), { ...CODING, onProgress });
    const ms = performance.now() - started;
    assert.ok(
      middle(events) <= Math.ceil(ms / 100) + 1,
      `${middle(events)} middle reports in ${ms.toFixed(0)} ms`,
    );

    const slow = recorder();
    await verify(packed, { onProgress: slow.onProgress, progressIntervalMs: 60_000 });
    assert.equal(slow.events.length, 2, "only the first and the last report");
  });

  test("a callback that throws rejects with E_BAD_OPTION and leaves no output", async () => {
    const out = join(dir, "failures");
    await mkdir(out);
    const failure = new Error("the listener broke");
    /** Throws on the nth report (the first is 1), or on the last one when n is "done". */
    const throwing = (n: number | "done") => {
      let calls = 0;
      return (progress: ProgressEvent) => {
        calls++;
        if (n === "done" ? progress.done : calls === n) throw failure;
      };
    };
    for (const when of [1, 3, "done"] as const) {
      const options = () => ({ progressIntervalMs: 0, onProgress: throwing(when) });
      const calls: [string, () => Promise<unknown>][] = [
        ["compressFile", () => compressFile(input, join(out, "x.mmh"), { ...CODING, ...options() })],
        ["decompressFile", () => decompressFile(packed, join(out, "x.bin"), options())],
        ["verify", () => verify(packed, options())],
        ["pack", () => pack(folder, join(out, "x.mmh"), { ...CODING, ...options() })],
        ["unpack", () => unpack(archive, join(out, "x"), options())],
      ];
      for (const [name, call] of calls) {
        const context = `${name}, throwing on report ${when}: `;
        const error = await rejectsWith(call, "E_BAD_OPTION", context);
        assert.equal(error.cause, failure, `${context}the thrown error is the cause`);
        assert.match(error.message, /onProgress.*the listener broke/);
        assert.deepEqual(await leftovers(out), [], `${context}nothing is left behind`);
      }
    }
  });

  test("bad progress options are E_BAD_OPTION", async () => {
    const out = join(dir, "bad-options");
    await mkdir(out);
    await rejectsWith(verify(packed, { progressIntervalMs: -1 }), "E_BAD_OPTION");
    await rejectsWith(verify(packed, { progressIntervalMs: Number.NaN }), "E_BAD_OPTION");
    const notAFunction = { onProgress: 42 } as unknown as { onProgress: () => void };
    await rejectsWith(compressFile(input, join(out, "y.mmh"), notAFunction), "E_BAD_OPTION");
    await rejectsWith(unpack(archive, join(out, "y"), notAFunction), "E_BAD_OPTION");
    assert.deepEqual(await leftovers(out), []);
  });
});
