import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  closeSync,
  existsSync,
  ftruncateSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { kernels } from "../src/codecs/hier/kernels.ts";
import { isMmhError } from "../src/common/errors.ts";
import { bufferSource } from "../src/common/source.ts";
import { MAX_CHUNK_SIZE } from "../src/container/format.ts";
import { decompressFile, decompressFileToFd } from "../src/decompress.ts";
import type { DecodeSummary } from "../src/engine/decoder.ts";
import {
  decodeShare,
  decodeShareOrdered,
  decodesApart,
  endShare,
  FileWorkers,
  fileShare,
  type ShareMemory,
  writeTurns,
} from "../src/engine/filedecode.ts";
import { KernelBatches } from "../src/engine/kernelbatches.ts";
import { startWorker } from "../src/engine/pool.ts";
import { ProgressReporter } from "../src/engine/progress.ts";
import { MmhReader } from "../src/engine/reader.ts";
import { poolWorthBytes } from "../src/engine/threads.ts";
import { compress } from "../src/index.ts";
import { generate } from "../src/tools/gen.ts";
import { assertError, BIN, mmhIn } from "./cli-support.ts";

const dir = mkdtempSync(join(tmpdir(), "mmh-filedecode-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const mmh = mmhIn(dir);

// Small chunks, so that a few MiB make hundreds of records for the threads to share.
const content = Buffer.concat([
  generate({ kind: "safetensors", dtype: "BF16", size: 3 << 20, seed: 11 }),
  generate({ kind: "text", size: 1 << 20, seed: 12 }),
  generate({ kind: "random", size: 256 << 10, seed: 13 }),
]);
const packed = Buffer.from(await compress(content, { chunkSize: 16 << 10, threads: 1 }));
writeFileSync(join(dir, "good.mmh"), packed);
const reader = await MmhReader.open(bufferSource(packed));
const chunks = reader.chunks;
await reader.close();

/** `packed` with the payload of each of `records` damaged (its CRC-32 then fails). */
function damaged(...records: number[]): Buffer {
  const copy = Buffer.from(packed);
  for (const i of records) copy[chunks[i].recordOffset + chunks[i].recordLength - 3] ^= 0x5a;
  return copy;
}

/** Files in `dir` other than the given ones: none may be left behind (a temporary file). */
function strays(...known: string[]): string[] {
  return readdirSync(dir).filter((f) => !known.includes(f));
}

describe("decoding a file on several threads, each writing its own records", () => {
  test("the records decode apart: hundreds of them, of more than one codec", () => {
    assert.ok(chunks.length > 200, `${chunks.length} records`);
    assert.ok(new Set(chunks.map((c) => c.codec)).size > 1);
    assert.ok(decodesApart({ chunks } as MmhReader));
  });

  test("1, 2 and 3 threads write the same bytes to a file", async () => {
    for (const threads of [1, 2, 3]) {
      const out = join(dir, `out-${threads}`);
      const summary = await decompressFile(join(dir, "good.mmh"), out, { threads });
      assert.ok(readFileSync(out).equals(content), `${threads} threads`);
      assert.equal(summary.rawBytes, content.length);
      assert.equal(summary.chunks, chunks.length);
      assert.equal(summary.storedBytes, packed.length);
      rmSync(out);
    }
  });

  test("the first damaged record in file order is the error, and no output is left", async () => {
    const late = Math.floor(chunks.length * 0.6);
    writeFileSync(join(dir, "bad.mmh"), damaged(late, late + 3, chunks.length - 1));
    for (const threads of [1, 2, 3]) {
      await assert.rejects(decompressFile(join(dir, "bad.mmh"), join(dir, "out"), { threads }), (error) => {
        assert.ok(isMmhError(error), String(error));
        assert.equal(error.code, "E_CHECKSUM");
        assert.match(error.message, new RegExp(`chunk ${late} at offset ${chunks[late].recordOffset}\\b`));
        return true;
      });
      assert.deepEqual(strays("good.mmh", "bad.mmh"), [], `${threads} threads`);
    }
    rmSync(join(dir, "bad.mmh"));
  });

  test("a damaged record taken by a worker comes back with its code and number", async () => {
    const victim = Math.floor(chunks.length / 2);
    writeFileSync(join(dir, "bad.mmh"), damaged(victim));
    const input = openSync(join(dir, "bad.mmh"), "r");
    const output = openSync(join(dir, "worker-out"), "w");
    const thread = startWorker();
    const worker = thread.worker;
    try {
      const share = fileShare(chunks, input, output);
      const reply = await new Promise<{
        ok: boolean;
        error?: { code: string; message: string; record?: number };
      }>((resolve) => {
        worker.on("message", (m: { id?: number; ok: boolean }) => {
          if (m.id === 7) resolve(m);
        });
        worker.postMessage({ id: 7, op: "file", share });
      });
      assert.equal(reply.ok, false);
      assert.equal(reply.error?.code, "E_CHECKSUM");
      assert.equal(reply.error?.record, victim);
      assert.match(
        reply.error?.message ?? "",
        new RegExp(`chunk ${victim} at offset ${chunks[victim].recordOffset}\\b`),
      );
      // The worker took no record after the damaged one, and decoded every one before it.
      assert.equal(share.control[1], victim);
      assert.equal(share.control[2], victim);
      assert.equal(Number(share.done[0]), chunks[victim].rawOffset);
      assert.ok(readFileSync(join(dir, "worker-out")).equals(content.subarray(0, chunks[victim].rawOffset)));
    } finally {
      // It leaves by itself once asked, between jobs.
      assert.equal(await thread.stop(), true);
      closeSync(input);
      closeSync(output);
      rmSync(join(dir, "worker-out"));
      rmSync(join(dir, "bad.mmh"));
    }
  });

  test("a run longer than a chunk is written in pieces at its place; an empty content too", async () => {
    const run = Buffer.concat([
      generate({ kind: "text", size: 100 << 10, seed: 14 }),
      Buffer.alloc(MAX_CHUNK_SIZE + (1 << 20), 7),
      generate({ kind: "text", size: 100 << 10, seed: 15 }),
    ]);
    for (const [name, bytes] of [
      ["run", run],
      ["empty", Buffer.alloc(0)],
    ] as const) {
      const file = join(dir, `${name}.mmh`);
      const packedRun = Buffer.from(await compress(bytes, { threads: 1 }));
      writeFileSync(file, packedRun);
      const r = await MmhReader.open(bufferSource(packedRun));
      if (name === "run") assert.ok(r.chunks.some((c) => c.rawLength > MAX_CHUNK_SIZE));
      await r.close();
      const summary = await decompressFile(file, join(dir, "out"), { threads: 2 });
      assert.equal(summary.rawBytes, bytes.length);
      assert.ok(readFileSync(join(dir, "out")).equals(bytes), name);
      rmSync(join(dir, "out"));
      rmSync(file);
    }
  });

  test("DUPE records: their thread decodes the target again, and a damaged target is the error", async () => {
    // Whole chunks repeated, so that the encoder writes them as DUPE records.
    const block = generate({ kind: "safetensors", dtype: "BF16", size: 256 << 10, seed: 16 }).subarray(
      0,
      256 << 10,
    );
    const other = generate({ kind: "text", size: 256 << 10, seed: 17 });
    const twice = Buffer.concat([block, other, block, other, block]);
    const packedTwice = Buffer.from(await compress(twice, { chunkSize: 16 << 10, threads: 1 }));
    const r = await MmhReader.open(bufferSource(packedTwice));
    const dupes = r.chunks.filter((c) => c.codec === "DUPE").length;
    const first = r.chunks[0];
    assert.ok(decodesApart(r), "no DLTA or LONG record");
    await r.close();
    assert.ok(dupes > 20, `${dupes} DUPE records`);
    const file = join(dir, "twice.mmh");
    writeFileSync(file, packedTwice);
    for (const threads of [2, 3]) {
      await decompressFile(file, join(dir, "out"), { threads });
      assert.ok(readFileSync(join(dir, "out")).equals(twice), `${threads} threads`);
      rmSync(join(dir, "out"));
    }
    // The first record, the target of later DUPE records, damaged: its own error, as the first.
    packedTwice[first.recordOffset + first.recordLength - 3] ^= 0x5a;
    writeFileSync(file, packedTwice);
    await assert.rejects(decompressFile(file, join(dir, "out"), { threads: 2 }), (error) => {
      assert.ok(isMmhError(error), String(error));
      assert.match(error.message, /^chunk 0 at offset /);
      return true;
    });
    assert.deepEqual(strays("good.mmh", "twice.mmh"), []);
    rmSync(file);
  });

  test("an abort stops every thread and leaves no output", async () => {
    const controller = new AbortController();
    let reports = 0;
    const onProgress = () => {
      if (++reports === 2) controller.abort();
    };
    await assert.rejects(
      decompressFile(join(dir, "good.mmh"), join(dir, "out"), {
        threads: 2,
        signal: controller.signal,
        onProgress,
        progressIntervalMs: 0,
      }),
      { code: "E_ABORTED" },
    );
    assert.deepEqual(strays("good.mmh"), []);
  });

  test("the workers leave by themselves, between records, once the job is done, failed or aborted", async () => {
    writeFileSync(join(dir, "bad.mmh"), damaged(Math.floor(chunks.length / 2)));
    for (const [name, ordered, abort] of [
      ["good.mmh", false, false],
      ["good.mmh", true, false],
      ["bad.mmh", false, false],
      ["bad.mmh", true, false],
      ["good.mmh", false, true],
    ] as const) {
      const workers = new FileWorkers(2);
      const file = await MmhReader.open(bufferSource(readFileSync(join(dir, name))));
      const input = openSync(join(dir, name), "r");
      const output = openSync(join(dir, "out"), "w");
      const controller = new AbortController();
      let reports = 0;
      const progress = new ProgressReporter({
        progressIntervalMs: 0,
        onProgress: () => {
          if (abort && ++reports === 2) controller.abort();
        },
      });
      try {
        const done = workers.decode(file, input, output, {} as DecodeSummary, progress, controller.signal, {
          ordered,
        });
        if (name === "good.mmh" && !abort) await done;
        else await assert.rejects(done, { code: abort ? "E_ABORTED" : "E_CHECKSUM" });
        // Stopped by decode() itself; none had to be terminated.
        assert.equal(workers.terminated, 0, `${name}, ordered ${ordered}, abort ${abort}`);
      } finally {
        await workers.close();
        await file.close();
        closeSync(input);
        closeSync(output);
      }
    }
    rmSync(join(dir, "out"));
    rmSync(join(dir, "bad.mmh"));
  });

  test("mmh -d with 1 and 2 threads, to a file and to standard output", () => {
    for (const threads of ["1", "2"]) {
      const r = mmh(["-d", "good.mmh", "-o", "out", "-q", "-T", threads]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(readFileSync(join(dir, "out")).equals(content), `-T ${threads} to a file`);
      rmSync(join(dir, "out"));
      const piped = mmh(["-d", "good.mmh", "-c", "-q", "-T", threads]);
      assert.equal(piped.code, 0, piped.stderr);
      assert.ok(piped.stdout.equals(content), `-T ${threads} to standard output`);
    }
  });

  test("mmh -d of a damaged file: the coded error, and no output file, with 1 and 2 threads", () => {
    const victim = chunks.length - 5;
    writeFileSync(join(dir, "bad.mmh"), damaged(victim));
    for (const threads of ["1", "2"]) {
      const r = mmh(["-d", "bad.mmh", "-o", "out", "-T", threads]);
      assertError(r, "E_CHECKSUM", 1);
      assert.match(r.stderr, new RegExp(`offset ${chunks[victim].recordOffset}\\b`));
      assert.equal(existsSync(join(dir, "out")), false);
      assert.deepEqual(strays("good.mmh", "bad.mmh"), [], `-T ${threads}`);
      const piped = mmh(["-d", "bad.mmh", "-c", "-T", threads]);
      assertError(piped, "E_CHECKSUM", 1);
    }
    rmSync(join(dir, "bad.mmh"));
  });

  test("to a descriptor in order: 2 and 3 threads write the same bytes; 1 thread, or a small file by default, leaves it to the caller", async () => {
    // No threads given: a file this small gets one thread (defaultThreadsFor's "decompressToFile").
    assert.equal(poolWorthBytes("decompressToFile", availableParallelism()) > packed.length, true);
    for (const threads of [1, undefined, 2, 3]) {
      const out = join(dir, `fd-${threads}`);
      const fd = openSync(out, "w");
      let summary: Awaited<ReturnType<typeof decompressFileToFd>>;
      try {
        summary = await decompressFileToFd(join(dir, "good.mmh"), fd, { threads });
      } finally {
        closeSync(fd);
      }
      if (threads === undefined || threads === 1) {
        assert.equal(summary, undefined);
        assert.equal(readFileSync(out).length, 0, "nothing written");
      } else {
        assert.ok(readFileSync(out).equals(content), `${threads} threads`);
        assert.equal(summary?.rawBytes, content.length);
        assert.equal(summary?.chunks, chunks.length);
      }
      rmSync(out);
    }
  });

  test("to a descriptor in order: the first damaged record is the error, and every record before it is written", async () => {
    const late = Math.floor(chunks.length * 0.6);
    writeFileSync(join(dir, "bad.mmh"), damaged(late, late + 3, chunks.length - 1));
    for (const threads of [2, 3]) {
      const out = join(dir, "fd-bad");
      const fd = openSync(out, "w");
      try {
        await assert.rejects(decompressFileToFd(join(dir, "bad.mmh"), fd, { threads }), (error) => {
          assert.ok(isMmhError(error), String(error));
          assert.equal(error.code, "E_CHECKSUM");
          assert.match(error.message, new RegExp(`chunk ${late} at offset ${chunks[late].recordOffset}\\b`));
          return true;
        });
      } finally {
        closeSync(fd);
      }
      assert.ok(readFileSync(out).equals(content.subarray(0, chunks[late].rawOffset)), `${threads} threads`);
      rmSync(out);
    }
    rmSync(join(dir, "bad.mmh"));
  });

  test("to a descriptor in order: a run longer than a chunk, DUPE records, and an abort", async () => {
    const block = generate({ kind: "safetensors", dtype: "BF16", size: 256 << 10, seed: 16 }).subarray(
      0,
      256 << 10,
    );
    const other = generate({ kind: "text", size: 256 << 10, seed: 17 });
    const twice = Buffer.concat([
      block,
      other,
      Buffer.alloc(MAX_CHUNK_SIZE + (1 << 20), 7),
      block,
      other,
      block,
    ]);
    const file = join(dir, "run.mmh");
    const packedRun = Buffer.from(await compress(twice, { chunkSize: 16 << 10, threads: 1 }));
    writeFileSync(file, packedRun);
    const r = await MmhReader.open(bufferSource(packedRun));
    assert.ok(
      r.chunks.some((c) => c.rawLength > MAX_CHUNK_SIZE),
      "a run longer than a chunk",
    );
    assert.ok(
      r.chunks.some((c) => c.codec === "DUPE"),
      "DUPE records",
    );
    assert.ok(decodesApart(r));
    await r.close();
    const out = join(dir, "fd-run");
    let fd = openSync(out, "w");
    try {
      await decompressFileToFd(file, fd, { threads: 2 });
    } finally {
      closeSync(fd);
    }
    assert.ok(readFileSync(out).equals(twice));
    const controller = new AbortController();
    let reports = 0;
    fd = openSync(out, "w");
    try {
      await assert.rejects(
        decompressFileToFd(join(dir, "good.mmh"), fd, {
          threads: 2,
          signal: controller.signal,
          onProgress: () => {
            if (++reports === 2) controller.abort();
          },
          progressIntervalMs: 0,
        }),
        { code: "E_ABORTED" },
      );
    } finally {
      closeSync(fd);
    }
    rmSync(out);
    rmSync(file);
  });

  test("lent: records are read into the kernels' input area and decoded there, DUPE targets too", async () => {
    const block = generate({ kind: "safetensors", dtype: "BF16", size: 256 << 10, seed: 18 }).subarray(
      0,
      256 << 10,
    );
    const other = generate({ kind: "text", size: 256 << 10, seed: 19 });
    const twice = Buffer.concat([block, other, block, other, block]);
    const packedTwice = Buffer.from(await compress(twice, { chunkSize: 16 << 10, threads: 1 }));
    const file = join(dir, "lent.mmh");
    writeFileSync(file, packedTwice);
    const r = await MmhReader.open(bufferSource(packedTwice));
    const records = r.chunks;
    await r.close();
    assert.ok(
      records.some((c) => c.codec === "DUPE"),
      "DUPE records",
    );
    const k = kernels();
    assert.ok(k, "the kernels load here");
    const out = join(dir, "lent-out");
    const input = openSync(file, "r");
    const output = openSync(out, "w");
    const memory: ShareMemory = { lent: true };
    try {
      for (const ordered of [true, false]) {
        const share = fileShare(records, input, output, ordered);
        ftruncateSync(output, 0);
        if (ordered) assert.equal(await decodeShareOrdered(share, memory), false);
        else assert.equal(decodeShare(share, memory), false);
        assert.ok(memory.area instanceof KernelBatches, "an input area was taken");
        assert.ok(k.inputHeld());
        // Nothing was read into a buffer of the thread's own.
        assert.equal(memory.read, undefined);
        assert.equal(memory.target, undefined);
        endShare(memory);
        assert.equal(k.inputHeld(), false, "the area is given back");
        assert.ok(readFileSync(out).equals(twice), ordered ? "in order" : "at offsets");
      }
    } finally {
      endShare(memory);
      closeSync(input);
      closeSync(output);
    }
    rmSync(out);
    rmSync(file);
  });

  test("mmh -dc -T 2 into a reader that goes away stops quietly, as SIGPIPE would", () => {
    const r = spawnSync(
      "bash",
      [
        "-c",
        `"${process.execPath}" "${BIN}" -dc -T 2 good.mmh | head -c 10 > /dev/null; echo "\${PIPESTATUS[0]}"`,
      ],
      { cwd: dir, timeout: 60_000 },
    );
    assert.equal(r.stdout.toString().trim(), "141");
    assert.equal(r.stderr.toString(), "", "no error message");
  });

  test("mmh -dc -T 2 into a non-blocking pipe that fills: the same bytes, in order", {
    skip: !existsSync("/usr/bin/python3") && "no /usr/bin/python3 to make the pipe non-blocking",
  }, () => {
    const python = [
      "import fcntl, os, subprocess, sys",
      "fcntl.fcntl(1, fcntl.F_SETFL, fcntl.fcntl(1, fcntl.F_GETFL) | os.O_NONBLOCK)",
      "sys.exit(subprocess.run(sys.argv[1:]).returncode)",
    ].join("\n");
    const r = spawnSync(
      "bash",
      [
        "-c",
        `/usr/bin/python3 -c "$0" "${process.execPath}" "${BIN}" -q -T 2 -dc good.mmh | (sleep 1; cat) > piped.out; echo "\${PIPESTATUS[0]}"`,
        python,
      ],
      { cwd: dir, timeout: 120_000 },
    );
    assert.equal(r.stdout.toString().trim(), "0", r.stderr.toString());
    assert.ok(readFileSync(join(dir, "piped.out")).equals(content), "the same bytes, in order");
    rmSync(join(dir, "piped.out"));
  });

  test("in order: a thread whose record's turn has not come holds up to 8 in shared memory, and the thread passing the turn writes them", async () => {
    const out = join(dir, "held-out");
    const input = openSync(join(dir, "good.mmh"), "r");
    const output = openSync(out, "w");
    try {
      const share = fileShare(chunks, input, output, true, 2);
      // Record 0 is taken by a thread that has not written it yet.
      share.control[0] = 1;
      const memory: ShareMemory = { lent: false };
      const job = decodeShareOrdered(share, memory);
      await new Promise((wake) => setTimeout(wake, 200));
      // Eight records held, a ninth decoded and waiting for a slot: nothing written.
      assert.deepEqual(
        memory.held?.map((h) => h.i),
        [1, 2, 3, 4, 5, 6, 7, 8],
      );
      assert.equal(share.control[0], 10);
      assert.equal(readFileSync(out).length, 0);
      // Record 0 written by its thread, which then writes the held records whose turn
      // comes, while the thread that holds them still waits.
      writeFileSync(output, content.subarray(0, chunks[0].rawLength));
      Atomics.store(share.control, 3, 1);
      writeTurns(share, 1);
      assert.equal(share.control[3], 9);
      assert.ok(readFileSync(out).equals(content.subarray(0, chunks[9].rawOffset)));
      // The holder goes on from its ninth record.
      assert.equal(await job, false);
      assert.equal(share.control[3], chunks.length);
      assert.equal(memory.held?.length, 0);
    } finally {
      closeSync(input);
      closeSync(output);
    }
    assert.ok(readFileSync(out).equals(content));
    rmSync(out);
  });
});
