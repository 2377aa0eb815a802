/**
 * The floor's measurements, shared by bench/floor.ts and bench/floor-debian.ts: one file
 * through the mmh CLI (default goal and `--goal ratio`, each output decoded again and its
 * sha256 checked), through the zstd CLI at levels 3 and 19, and through byte grouping +
 * zstd (the file cut into 2- or 4-byte planes, each plane compressed on its own), and the
 * per-file and aggregate table rows of the reports.
 */
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { basename, join } from "node:path";
import { compressFile } from "../../src/index.ts";
import { output, root, run } from "./commands.ts";
import { bytePlanes } from "./derived.ts";
import { sha256 } from "./packages.ts";
import { collectGarbage, fmt } from "./report.ts";

/** The target: mmh at most this much larger than the best baseline. */
export const SLACK = 0.005;

const cli = join(root, "bin", "mmh.js");
const node = process.execPath;

export interface Input {
  group: string;
  label: string;
  file: string;
  note: string;
}

export interface Row {
  input: Input;
  bytes: number;
  def: number;
  ratio: number;
  z3: number;
  g2_3: number;
  g4_3: number;
  z19: number;
  g2_19: number;
  g4_19: number;
  choiceMs: number;
  ms: number;
  /** Bytes of the default output outside chunk records. */
  container: number;
}

export function zstdBytes(data: Buffer, level: number): number {
  return output("zstd", [`-${level}`, "-q", "-c", "-"], data, 1 << 30).length;
}

/** Byte grouping: the file cut into `width` planes (byte i goes to plane i mod width), each plane zstd'd. */
export function groupedBytes(data: Buffer, width: number, level: number): number {
  return bytePlanes(data, width).reduce((total, plane) => total + zstdBytes(plane, level), 0);
}

/** Bytes of an .mmh file outside its chunk records: header, index, footer metadata (the tensor table), trailer. */
function containerBytes(mmh: Buffer): number {
  let pos = 20 + mmh.readUInt32LE(12);
  let records = 0;
  while (mmh.toString("latin1", pos, pos + 4) === "CHNK") {
    const size = 36 + mmh.readUInt16LE(pos + 28) + Number(mmh.readBigUInt64LE(pos + 16));
    records += size;
    pos += size;
  }
  return mmh.length - records;
}

function mmhBytes(
  file: string,
  sha: string,
  tag: string,
  extra: readonly string[],
  tmpDir: string,
  keep: boolean,
): { bytes: number; container: number } {
  mkdirSync(tmpDir, { recursive: true });
  const out = join(tmpDir, `${basename(file)}.${tag}.mmh`);
  const back = join(tmpDir, `${basename(file)}.${tag}.restored`);
  run(node, [cli, file, "-o", out, ...extra, "-f", "-q"]);
  run(node, [cli, "-d", out, "-o", back, "-f", "-q"]);
  const got = sha256(readFileSync(back));
  if (got !== sha) throw new Error(`ROUND TRIP FAILED: ${file} through mmh ${extra.join(" ")}`);
  const packed = readFileSync(out);
  if (!keep) rmSync(back, { force: true });
  if (!keep) rmSync(out, { force: true });
  return { bytes: packed.length, container: containerBytes(packed) };
}

export const best3 = (r: Row) => Math.min(r.z3, r.g2_3, r.g4_3);
export const best19 = (r: Row) => Math.min(r.z19, r.g2_19, r.g4_19);
export const share = (stored: number, orig: number) => fmt(stored / orig, 4);
export const met = (mine: number, best: number) => (mine <= best * (1 + SLACK) ? "met" : "NOT MET");
export const over = (mine: number, best: number) => `${fmt((mine / best - 1) * 100, 2)}%`;

/** One file measured: mmh's two goals (outputs in `tmpDir`, kept when `keep`), zstd and the groupings. */
export async function measure(input: Input, tmpDir: string, keep: boolean): Promise<Row> {
  const data = readFileSync(input.file);
  const sha = sha256(data);
  const defRun = mmhBytes(input.file, sha, "default", [], tmpDir, keep);
  const def = defRun.bytes;
  const ratio = mmhBytes(input.file, sha, "ratio", ["--goal", "ratio"], tmpDir, keep).bytes;
  collectGarbage();
  const dst = join(tmpDir, "choice.mmh");
  const summary = await compressFile(input.file, dst, { threads: 1, overwrite: true });
  rmSync(dst, { force: true });
  const row: Row = {
    input,
    bytes: data.length,
    def,
    ratio,
    z3: zstdBytes(data, 3),
    g2_3: groupedBytes(data, 2, 3),
    g4_3: groupedBytes(data, 4, 3),
    z19: zstdBytes(data, 19),
    g2_19: groupedBytes(data, 2, 19),
    g4_19: groupedBytes(data, 4, 19),
    choiceMs: summary.choiceMs,
    ms: summary.ms,
    container: defRun.container,
  };
  console.log(
    `${input.label}: default ${fmt(def / data.length, 4)} (best -3 ${fmt(best3(row) / data.length, 4)}), ratio ${fmt(ratio / data.length, 4)} (best -19 ${fmt(best19(row) / data.length, 4)})`,
  );
  return row;
}

export const FILE_HEAD = [
  "file",
  "bytes",
  "mmh default",
  "zstd -3",
  "bg2 + zstd -3",
  "bg4 + zstd -3",
  "default over best",
  "container bytes (share of default)",
  "mmh --goal ratio",
  "zstd -19",
  "bg2 + zstd -19",
  "bg4 + zstd -19",
  "ratio over best",
];

export const fileRow = (r: Row) => [
  r.input.label,
  String(r.bytes),
  share(r.def, r.bytes),
  share(r.z3, r.bytes),
  share(r.g2_3, r.bytes),
  share(r.g4_3, r.bytes),
  `${over(r.def, best3(r))} ${met(r.def, best3(r))}`,
  `${r.container} (${fmt((r.container / r.def) * 100, 2)}%)`,
  share(r.ratio, r.bytes),
  share(r.z19, r.bytes),
  share(r.g2_19, r.bytes),
  share(r.g4_19, r.bytes),
  `${over(r.ratio, best19(r))} ${met(r.ratio, best19(r))}`,
];

export const AGGREGATE_HEAD = [
  "set",
  "bytes",
  "mmh default",
  "zstd -3",
  "bg2 + zstd -3",
  "bg4 + zstd -3",
  "best -3",
  "container bytes",
  "mmh --goal ratio",
  "zstd -19",
  "bg2 + zstd -19",
  "bg4 + zstd -19",
  "best -19",
];

const sum = (list: Row[], key: keyof Omit<Row, "input">) => list.reduce((a, r) => a + (r[key] as number), 0);

export const aggregate = (label: string, list: Row[]) => {
  const bytes = sum(list, "bytes");
  const b3 = list.reduce((a, r) => a + best3(r), 0);
  const b19 = list.reduce((a, r) => a + best19(r), 0);
  return [
    `**${label}**`,
    String(bytes),
    share(sum(list, "def"), bytes),
    share(sum(list, "z3"), bytes),
    share(sum(list, "g2_3"), bytes),
    share(sum(list, "g4_3"), bytes),
    `best per file ${share(b3, bytes)}`,
    `${sum(list, "container")}`,
    share(sum(list, "ratio"), bytes),
    share(sum(list, "z19"), bytes),
    share(sum(list, "g2_19"), bytes),
    share(sum(list, "g4_19"), bytes),
    `best per file ${share(b19, bytes)}`,
  ];
};

/** The two verdict lines of a report: which files miss the target at each goal. */
export function verdicts(rows: readonly Row[]): string[] {
  const missed3 = rows.filter((r) => r.def > best3(r) * (1 + SLACK));
  const missed19 = rows.filter((r) => r.ratio > best19(r) * (1 + SLACK));
  return [
    `- Default never more than 0.5% larger than the best of zstd -3 and byte grouping + zstd -3: ${missed3.length === 0 ? "**met** on all" : `**not met** on ${missed3.length} of`} ${rows.length} files${missed3.length ? ` (${missed3.map((r) => `${r.input.label}: ${over(r.def, best3(r))}`).join("; ")})` : ""}.`,
    `- \`--goal ratio\` never more than 0.5% larger than the best of zstd -19 and byte grouping + zstd -19: ${missed19.length === 0 ? "**met** on all" : `**not met** on ${missed19.length} of`} ${rows.length} files${missed19.length ? ` (${missed19.map((r) => `${r.input.label}: ${over(r.ratio, best19(r))}`).join("; ")})` : ""}.`,
  ];
}
