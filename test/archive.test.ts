import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { after, describe, test } from "node:test";
import fc from "fast-check";
import { restoreEntries } from "../src/archive/unpack.ts";
import { fileSource } from "../src/common/source.ts";
import { linkTargetProblem, parseFooter, pathProblem } from "../src/container/metadata.ts";
import { encodeContainer } from "../src/engine/encoder.ts";
import { MmhReader } from "../src/engine/reader.ts";
import { compressFile, inspect, pack, unpack } from "../src/index.ts";
import { generate } from "../src/tools/index.ts";
import { readEntry, readTensor } from "./support.ts";

const root = mkdtempSync(join(tmpdir(), "mmh-archive-"));
after(() => rmSync(root, { recursive: true, force: true }));

const sha = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** Every entry under dir: path → type, mode and bytes or link target (what unpack must restore). */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const visit = (rel: string) => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const abs = join(dir, path);
      const st = lstatSync(abs);
      const mode = (st.mode & 0o777).toString(8);
      if (st.isSymbolicLink()) out.set(path, `link ${readlinkSync(abs)}`);
      else if (st.isDirectory()) {
        out.set(path, `dir ${mode}`);
        visit(path);
      } else out.set(path, `file ${mode} ${sha(readFileSync(abs))}`);
    }
  };
  visit("");
  return out;
}

/** A model-like folder: a safetensors shard pair, config, an empty file and folders, modes, a link. */
function modelFolder(name: string): string {
  const dir = join(root, name);
  mkdirSync(join(dir, "tokenizer", "extra"), { recursive: true });
  mkdirSync(join(dir, "empty-dir"));
  mkdirSync(join(dir, "locked"));
  writeFileSync(
    join(dir, "model-00001-of-00002.safetensors"),
    generate({ kind: "safetensors", size: 600_000, seed: 1 }),
  );
  writeFileSync(
    join(dir, "model-00002-of-00002.safetensors"),
    generate({ kind: "safetensors", size: 300_000, seed: 2 }),
  );
  writeFileSync(join(dir, "config.json"), JSON.stringify({ hidden_size: 256, layers: 2 }));
  writeFileSync(join(dir, "tokenizer", "vocab.txt"), generate({ kind: "text", size: 70_000, seed: 3 }));
  writeFileSync(join(dir, "tokenizer", "extra", "empty.bin"), "");
  writeFileSync(join(dir, "run.sh"), "#!/bin/sh\necho hi\n");
  chmodSync(join(dir, "run.sh"), 0o755);
  writeFileSync(join(dir, "secret.key"), "k");
  chmodSync(join(dir, "secret.key"), 0o600);
  writeFileSync(join(dir, "locked", "readonly.txt"), "ro");
  chmodSync(join(dir, "locked", "readonly.txt"), 0o444);
  chmodSync(join(dir, "locked"), 0o555);
  symlinkSync("model-00001-of-00002.safetensors", join(dir, "model.safetensors"));
  symlinkSync("../config.json", join(dir, "tokenizer", "config.json"));
  return dir;
}

async function collect(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const part of source) parts.push(part);
  return Buffer.concat(parts);
}

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/** An archive written by the real encoder around a hand-made footer (for hostile tables). */
async function craft(name: string, content: Buffer, entries: unknown[]): Promise<string> {
  const footer = { format: "folder", entries, tensors: [] };
  const bytes = await collect(
    encodeContainer(once(content), { codec: "zstd", threads: 1 }, undefined, {
      format: "folder",
      plan: [],
      footer,
    }),
  );
  const file = join(root, name);
  writeFileSync(file, bytes);
  return file;
}

const file = (path: string, bytes: Buffer, offset: number, extra: Record<string, unknown> = {}) => ({
  path,
  type: "file",
  size: bytes.length,
  mode: 0o644,
  offset,
  format: "raw",
  sha256: sha(bytes),
  ...extra,
});
const dir = (path: string) => ({ path, type: "dir", mode: 0o755 });

async function rejects(work: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(work, (error: Error & { code?: string }) => {
    assert.equal(error.code, code, `${error.code}: ${error.message}`);
    if (message) assert.match(error.message, message);
    return true;
  });
}

describe("pack and unpack", () => {
  const src = modelFolder("model");
  const archive = join(root, "model.mmh");

  test("round trip: contents, nested and empty folders, empty files, modes and links", async () => {
    const summary = await pack(src, archive, { threads: 1 });
    assert.equal(summary.files, 8);
    assert.equal(summary.dirs, 4);
    assert.equal(summary.symlinks, 2);
    const out = join(root, "model-out");
    const restored = await unpack(archive, out, { threads: 1 });
    assert.equal(restored.files, 8);
    assert.deepEqual(snapshot(out), snapshot(src));
    assert.equal(spawnSync("diff", ["-r", "--no-dereference", src, out]).status, 0);
    // The restored root gets an ordinary folder's mode, not the private one used while unpacking.
    assert.equal(lstatSync(out).mode & 0o777, lstatSync(src).mode & 0o777);
  });

  test("long-range matches whose dictionary spans two files pack and unpack", async () => {
    // b.bin repeats a.bin's first 300 KB after 700 KB of its own: the LONG record for
    // that chunk takes the content before it, across the end of a.bin, as dictionary.
    const dir = join(root, "long-across");
    mkdirSync(dir);
    const noise = (n: number, seed: number) => generate({ kind: "random", size: n, seed }).subarray(0, n);
    const shared = noise(300_000, 1);
    writeFileSync(join(dir, "a.bin"), Buffer.concat([shared, noise(200_000, 2)]));
    writeFileSync(join(dir, "b.bin"), Buffer.concat([noise(700_000, 3), shared, noise(10_000, 4)]));
    const packed = join(root, "long-across.mmh");
    await pack(dir, packed, { threads: 1, long: true });
    const info = await inspect(packed);
    assert.ok(
      info.chunks.some((c) => c.codec === "LONG"),
      "no LONG record: the case is not exercised",
    );
    const out = join(root, "long-across-out");
    await unpack(packed, out, { threads: 1 });
    assert.deepEqual(snapshot(out), snapshot(dir));
  });

  test("the archive: folder format, sorted entries tiling the content, per-file sha256", async () => {
    const info = await inspect(archive);
    assert.deepEqual((info.header.metadata as { source: unknown }).source, {
      name: "model",
      format: "folder",
    });
    assert.equal(info.footer.format, "folder");
    const entries = info.footer.entries;
    const paths = entries.map((e) => e.path);
    assert.deepEqual(
      paths,
      [...paths].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))),
    );
    assert.ok(paths.includes("empty-dir") && paths.includes("tokenizer/extra/empty.bin"));
    let offset = 0;
    for (const e of entries) {
      if (e.type !== "file") continue;
      assert.equal(e.offset, offset);
      offset += e.size;
      assert.equal(e.sha256, sha(readFileSync(join(src, e.path))), e.path);
    }
    assert.equal(offset, info.trailer.rawLength);
    const shard = entries.find((e) => e.path === "model-00001-of-00002.safetensors");
    assert.ok(shard?.type === "file" && shard.format === "safetensors");
    const link = entries.find((e) => e.path === "tokenizer/config.json");
    assert.deepEqual(link, { type: "symlink", path: "tokenizer/config.json", target: "../config.json" });
  });

  test("each file is planned on its own: no chunk spans two files, and a shard's chunks are those of compressing it alone", async () => {
    const info = await inspect(archive);
    const files = info.footer.entries.filter((e) => e.type === "file");
    for (const chunk of info.chunks) {
      const end = chunk.rawOffset + chunk.rawLength;
      assert.ok(
        files.some((f) => f.type === "file" && chunk.rawOffset >= f.offset && end <= f.offset + f.size),
        `chunk at ${chunk.rawOffset} spans files`,
      );
    }
    const shard = files.find((e) => e.path === "model-00002-of-00002.safetensors")!;
    assert.ok(shard.type === "file");
    const alone = join(root, "shard2.mmh");
    await compressFile(join(src, shard.path), alone, { threads: 1 });
    const single = (await inspect(alone)).chunks.map((c) => c.rawLength);
    const inArchive = info.chunks
      .filter((c) => c.rawOffset >= shard.offset && c.rawOffset < shard.offset + shard.size)
      .map((c) => c.rawLength);
    assert.deepEqual(inArchive, single);
  });

  test("the tensor table names each tensor's file, in content coordinates", async () => {
    const info = await inspect(archive);
    const tensors = info.footer.tensors as { name: string; file: string; offset: number; length: number }[];
    const entries = info.footer.entries;
    const files = new Set(tensors.map((t) => t.file));
    assert.deepEqual([...files].sort(), [
      "model-00001-of-00002.safetensors",
      "model-00002-of-00002.safetensors",
    ]);
    const t = tensors.find((x) => x.file === "model-00002-of-00002.safetensors")!;
    const entry = entries.find((e) => e.path === t.file)!;
    assert.ok(entry.type === "file");
    const original = readFileSync(join(src, t.file)).subarray(
      t.offset - entry.offset,
      t.offset - entry.offset + t.length,
    );
    const { data } = await readTensor(archive, t.name, { entry: t.file });
    assert.ok(Buffer.from(data).equals(original));
  });

  test("a tensor name in two shards: E_USAGE listing both, unless the file is named", async () => {
    const name = "model.layers.0.self_attn.q_proj.weight";
    await rejects(
      readTensor(archive, name),
      "E_USAGE",
      /model-00001-of-00002\.safetensors, model-00002-of-00002\.safetensors/,
    );
    const one = await readTensor(archive, name, { entry: "model-00001-of-00002.safetensors" });
    assert.equal(one.tensor.file, "model-00001-of-00002.safetensors");
    await rejects(readTensor(archive, name, { entry: "config.json" }), "E_NOT_FOUND");
    await rejects(readTensor(archive, name, { entry: "nope" }), "E_NOT_FOUND");
    await rejects(readTensor(archive, "nope"), "E_NOT_FOUND");
  });

  test("readEntry returns one file, checked, and reads only its own chunks", async () => {
    for (const path of ["config.json", "tokenizer/vocab.txt", "tokenizer/extra/empty.bin"]) {
      const { entry, data } = await readEntry(archive, path);
      assert.equal(entry?.path, path);
      assert.ok(Buffer.from(data).equals(readFileSync(join(src, path))), path);
    }
    await rejects(readEntry(archive, "missing"), "E_NOT_FOUND");
    await rejects(readEntry(archive, "tokenizer"), "E_NOT_FOUND", /is a dir/);
    await rejects(readEntry(archive, "config.json", { maxOutputBytes: 3 }), "E_LIMIT");
    // Damage a chunk of the first shard: the other files still read, the shard does not.
    const damaged = Buffer.from(readFileSync(archive));
    const reader = await MmhReader.open(await fileSource(archive));
    const entries = reader.footer.entries;
    const shard = entries.find((e) => e.path === "model-00001-of-00002.safetensors")!;
    assert.ok(shard.type === "file");
    const chunk = reader.chunks[reader.chunkAt(shard.offset + 1000)];
    await reader.close();
    damaged[chunk.recordOffset + chunk.recordLength - 10] ^= 0xff;
    const copy = join(root, "damaged.mmh");
    writeFileSync(copy, damaged);
    const vocab = await readEntry(copy, "tokenizer/vocab.txt");
    assert.ok(Buffer.from(vocab.data).equals(readFileSync(join(src, "tokenizer/vocab.txt"))));
    await assert.rejects(readEntry(copy, shard.path), (e: Error & { code?: string }) =>
      ["E_CHECKSUM", "E_CORRUPT"].includes(e.code ?? ""),
    );
    // Unpacking the damaged archive fails and leaves nothing behind.
    const out = join(root, "damaged-out");
    await assert.rejects(unpack(copy, out, { threads: 1 }));
    assert.ok(!existsSync(out));
    assert.deepEqual(
      readdirSync(root).filter((n) => n.endsWith(".tmp")),
      [],
    );
  });

  test("listEntries of a single-file .mmh is empty; unpack and readEntry refuse it", async () => {
    const single = join(root, "single.mmh");
    writeFileSync(join(root, "single.bin"), "hello");
    await compressFile(join(root, "single.bin"), single, { threads: 1 });
    assert.deepEqual((await inspect(single)).footer.entries, []);
    await rejects(unpack(single, join(root, "single-out")), "E_BAD_OPTION", /not a folder archive/);
    await rejects(readEntry(single, "x"), "E_BAD_OPTION");
    assert.ok(!existsSync(join(root, "single-out")));
  });

  test("the target: an empty folder is used, a non-empty one refused without overwrite and replaced with it", async () => {
    const empty = join(root, "empty-target");
    mkdirSync(empty);
    await unpack(archive, empty, { threads: 1 });
    assert.deepEqual(snapshot(empty), snapshot(src));

    const full = join(root, "full-target");
    mkdirSync(full);
    writeFileSync(join(full, "keep.txt"), "mine");
    await rejects(unpack(archive, full), "E_EXISTS");
    assert.deepEqual(readdirSync(full), ["keep.txt"]);
    const aFile = join(root, "a-file");
    writeFileSync(aFile, "x");
    await rejects(unpack(archive, aFile), "E_EXISTS");

    await unpack(archive, full, { overwrite: true, threads: 1 });
    assert.deepEqual(snapshot(full), snapshot(src), "replaced, not merged");
    assert.deepEqual(
      readdirSync(root).filter((n) => n.endsWith(".tmp") || n.endsWith(".old")),
      [],
    );
  });

  test("a symlink planted in the target is never followed", async () => {
    const outside = join(root, "planted-outside");
    mkdirSync(outside);
    writeFileSync(join(outside, "sentinel"), "untouched");
    const target = join(root, "planted");
    mkdirSync(target);
    symlinkSync(outside, join(target, "tokenizer")); // the archive has tokenizer/vocab.txt
    await rejects(unpack(archive, target), "E_EXISTS");
    await unpack(archive, target, { overwrite: true, threads: 1 });
    assert.ok(lstatSync(join(target, "tokenizer")).isDirectory());
    assert.deepEqual(readdirSync(outside), ["sentinel"]);
    assert.equal(readFileSync(join(outside, "sentinel"), "utf8"), "untouched");
  });

  test("-f will not replace a folder holding the archive", async () => {
    const holder = join(root, "holder");
    mkdirSync(holder);
    const inside = join(holder, "m.mmh");
    writeFileSync(inside, readFileSync(archive));
    await rejects(unpack(inside, holder, { overwrite: true }), "E_BAD_OPTION", /inside it/);
    assert.ok(existsSync(inside));
  });

  test("pack refuses links that leave the folder, special files, and an archive inside the folder", async () => {
    const out = join(root, "refused.mmh");
    const escaping = join(root, "escaping");
    mkdirSync(escaping);
    writeFileSync(join(escaping, "a"), "a");
    symlinkSync("../model/config.json", join(escaping, "up"));
    await rejects(pack(escaping, out), "E_UNSAFE_PATH", /leaves the folder/);
    rmSync(join(escaping, "up"));
    symlinkSync("/etc/passwd", join(escaping, "abs"));
    await rejects(pack(escaping, out), "E_UNSAFE_PATH", /is absolute/);
    rmSync(join(escaping, "abs"));
    if (spawnSync("mkfifo", [join(escaping, "fifo")]).status === 0) {
      await rejects(pack(escaping, out), "E_UNSUPPORTED", /FIFO/);
      rmSync(join(escaping, "fifo"));
    }
    await rejects(pack(escaping, join(escaping, "self.mmh")), "E_BAD_OPTION", /inside the folder/);
    await rejects(pack(join(escaping, "a"), out), "E_BAD_OPTION", /not a folder/);
    assert.ok(!existsSync(out));
    await pack(escaping, out, { threads: 1 });
    writeFileSync(join(escaping, "b"), "b");
    await rejects(pack(escaping, out), "E_EXISTS");
  });

  test("packing the same folder twice gives the same bytes", async () => {
    const again = join(root, "model-again.mmh");
    await pack(src, again, { threads: 1 });
    assert.ok(readFileSync(again).equals(readFileSync(archive)));
  });
});

describe("hostile archives", () => {
  const a = Buffer.from("first file\n");
  const b = Buffer.from("second\n");
  const content = Buffer.concat([a, b]);
  const outside = join(root, "outside");
  mkdirSync(outside);
  writeFileSync(join(outside, "sentinel"), "untouched");

  const cases: [string, unknown[], string, RegExp][] = [
    [
      "absolute path",
      [file(join(outside, "evil"), a, 0), file("b", b, a.length)],
      "E_UNSAFE_PATH",
      /absolute/,
    ],
    [
      "dot-dot segment",
      [file("../outside/evil", a, 0), file("b", b, a.length)],
      "E_UNSAFE_PATH",
      /"\.\." segment/,
    ],
    [
      "dot-dot inside",
      [dir("x"), file("x/../../evil", a, 0), file("y", b, a.length)],
      "E_UNSAFE_PATH",
      /"\.\."/,
    ],
    ["empty path", [file("", a, 0), file("b", b, a.length)], "E_UNSAFE_PATH", /is empty/],
    ["NUL in a name", [file("a\0b", a, 0), file("b", b, a.length)], "E_UNSAFE_PATH", /NUL/],
    [
      "empty segment",
      [file("a", a, 0), dir("d"), file("d//b", b, a.length)],
      "E_UNSAFE_PATH",
      /empty segment/,
    ],
    ["backslash", [file("..\\evil", a, 0), file("b", b, a.length)], "E_UNSAFE_PATH", /backslash/],
    ["duplicate path", [file("a", a, 0), file("a", b, a.length)], "E_UNSAFE_PATH", /duplicate/],
    [
      "path through a link entry",
      [{ path: "a", type: "symlink", target: "b" }, file("a/evil", a, 0), file("b", b, a.length)],
      "E_UNSAFE_PATH",
      /through the symbolic link a/,
    ],
    [
      "link out of the folder",
      [file("a", a, 0), file("b", b, a.length), { path: "c", type: "symlink", target: "../outside" }],
      "E_UNSAFE_PATH",
      /leaves the folder/,
    ],
    [
      "absolute link",
      [file("a", a, 0), file("b", b, a.length), { path: "c", type: "symlink", target: outside }],
      "E_UNSAFE_PATH",
      /absolute/,
    ],
    [
      "link that climbs back after a name",
      [
        dir("d"),
        file("d/a", a, 0),
        file("d/b", b, a.length),
        { path: "d/l", type: "symlink", target: "x/../../.." },
      ],
      "E_UNSAFE_PATH",
      /canonical/,
    ],
    [
      "path through a file",
      [file("a", a, 0), file("a/b", b, a.length)],
      "E_UNSAFE_PATH",
      /through the file a/,
    ],
    ["overlapping files", [file("a", a, 0), file("b", b, 3)], "E_CORRUPT", /overlaps/],
    ["file past the content", [file("a", a, 0), file("b", b, 100)], "E_CORRUPT", /outside the content/],
    ["gap between files", [file("a", a, 0), file("b", b.subarray(1), a.length + 1)], "E_CORRUPT", /gap/],
    ["content not covered", [file("a", a, 0)], "E_CORRUPT", /content is/],
    ["unsorted entries", [file("b", a, 0), file("a", b, a.length)], "E_CORRUPT", /not sorted/],
    ["folder not listed", [file("a", a, 0), file("d/b", b, a.length)], "E_CORRUPT", /not in the archive/],
    ["setuid mode", [file("a", a, 0, { mode: 0o4755 }), file("b", b, a.length)], "E_CORRUPT", /mode/],
    [
      "missing sha256",
      [file("a", a, 0, { sha256: undefined }), file("b", b, a.length)],
      "E_CORRUPT",
      /sha256/,
    ],
    [
      "unknown type",
      [file("a", a, 0), file("b", b, a.length), { path: "c", type: "fifo" }],
      "E_UNSUPPORTED",
      /fifo/,
    ],
    ["entries not an array", { length: 1 } as unknown as unknown[], "E_CORRUPT", /not an array/],
    // Valid table, wrong bytes: found only while writing, and nothing is left behind.
    [
      "wrong sha256",
      [file("a", a, 0), file("b", Buffer.from("SECOND\n"), a.length)],
      "E_CHECKSUM",
      /b: sha256/,
    ],
  ];

  for (const [name, entries, code, message] of cases) {
    test(`${name}: ${code}, nothing written`, async () => {
      const archive = await craft(`hostile-${name.replace(/\W+/g, "-")}.mmh`, content, entries);
      const parent = join(root, `target-${name.replace(/\W+/g, "-")}`);
      mkdirSync(parent);
      const target = join(parent, "out");
      await rejects(unpack(archive, target, { threads: 1 }), code, message);
      assert.deepEqual(readdirSync(parent), [], "no target and no temporary folder");
      assert.deepEqual(readdirSync(outside), ["sentinel"]);
      assert.equal(readFileSync(join(outside, "sentinel"), "utf8"), "untouched");
      if (code !== "E_CHECKSUM") await rejects(readEntry(archive, "a"), code);
    });
  }

  test("writing defends itself too: a link planted in the folder being filled is never followed", async () => {
    // These tables pass listEntries; the links are planted where unpack's own fresh
    // folder would have none (another process racing it, say).
    const archive = await craft("plain.mmh", content, [dir("t"), file("t/a", a, 0), file("u", b, a.length)]);
    const entries = (await inspect(archive)).footer.entries;
    const summary = { chunks: 0, rawBytes: 0, storedBytes: 0, codecs: {} };
    const plant = (name: string, link: string) => {
      const at = join(root, `planted-${name}`);
      mkdirSync(at);
      symlinkSync(outside, join(at, link));
      return at;
    };
    // A link where a folder is to be made: mkdir does not follow it.
    await rejects(
      restoreEntries(plant("dir", "t"), entries, archive, { threads: 1 }, summary),
      "E_UNSAFE_PATH",
    );
    // A link on the way to a file whose folder was not made here: lstat finds it.
    const files = entries.filter((e) => e.type === "file");
    await rejects(
      restoreEntries(plant("parent", "t"), files, archive, { threads: 1 }, summary),
      "E_UNSAFE_PATH",
      /through the symbolic link t/,
    );
    // A link where a file is to be written: O_EXCL | O_NOFOLLOW does not open it.
    const dangling = join(root, "planted-file");
    mkdirSync(dangling);
    symlinkSync(join(outside, "created"), join(dangling, "u"));
    await rejects(restoreEntries(dangling, entries, archive, { threads: 1 }, summary), "E_UNSAFE_PATH");
    assert.deepEqual(readdirSync(outside), ["sentinel"]);
  });

  test("format folder with no entries table is E_CORRUPT", async () => {
    assert.throws(() => parseFooter({ format: "folder" }, 0), { code: "E_CORRUPT" });
  });
});

describe("path rules", () => {
  test("an accepted path stays inside the folder", () => {
    const segment = fc.constantFrom("a", "b", ".", "..", "", "c.d", "..e", "\\", "\0");
    fc.assert(
      fc.property(fc.array(segment, { minLength: 1, maxLength: 6 }), fc.boolean(), (segments, lead) => {
        const path = (lead ? "/" : "") + segments.join("/");
        if (pathProblem(path) !== undefined) return;
        assert.equal(posix.normalize(path), path);
        assert.ok(!posix.isAbsolute(path) && !path.split("/").includes(".."));
      }),
    );
  });

  test("an accepted link target resolves inside the folder", () => {
    const segment = fc.constantFrom("a", "b", ".", "..", "", "c");
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom("x", "y"), { minLength: 1, maxLength: 4 }),
        fc.array(segment, { minLength: 1, maxLength: 6 }),
        (at, segments) => {
          const link = at.join("/");
          const target = segments.join("/");
          if (linkTargetProblem(link, target) !== undefined) return;
          const resolved = posix.normalize(posix.join(posix.dirname(link), target));
          assert.ok(
            !resolved.split("/").includes("..") && resolved !== ".",
            `${link} -> ${target} = ${resolved}`,
          );
        },
      ),
    );
  });
});
