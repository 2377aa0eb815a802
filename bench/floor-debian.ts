/**
 * The floor on files the project was not built on: model files from pinned Debian bookworm
 * packages (speech recognition, OCR, backgammon, text-to-speech, Haar cascades),
 * measured as bench/floor.ts measures its corpus (bench/lib/floor.ts): the mmh CLI at the
 * default goal against the best of zstd -3 and byte grouping + zstd -3, and at `--goal
 * ratio` against level 19; the target is mmh at most 0.5% larger. Every mmh output is
 * decoded again and its sha256 checked. With `--baseline DIR` (a built checkout, e.g. of
 * main), that CLI's default output size too, to show what a change did.
 *
 *   npx node bench/floor-debian.ts [--baseline DIR]   full run (writes bench/results/floor-debian.md)
 *   npx node bench/floor-debian.ts --quick            files under 2 MiB, writes nothing
 *
 * Options: --out FILE, --keep (keep outputs in .bench-data/floor-debian/out/).
 * Inputs: the packages of bench/lib/debian.ts, fetched with `apt-get download` of the
 * pinned version into .bench-data/floor-debian/deb/ (git-ignored, never committed), each
 * .deb checked against its pinned sha256 and unpacked with `dpkg-deb -x`. Needs apt-get
 * with Debian bookworm's package lists, dpkg-deb and zstd. Not run by `npm test` or CI.
 */

import "./lib/help.ts";
import { spawnSync } from "node:child_process";
import { mkdirSync, rmSync, statSync } from "node:fs";
import { loadavg } from "node:os";
import { basename, join } from "node:path";
import { codeLine, root, run, writeReport } from "./lib/commands.ts";
import { DEBIAN_PACKAGES, fetchDebian } from "./lib/debian.ts";
import {
  AGGREGATE_HEAD,
  aggregate,
  best3,
  FILE_HEAD,
  fileRow,
  type Input,
  measure,
  met,
  over,
  type Row,
  share,
  verdicts,
} from "./lib/floor.ts";
import {
  argValue,
  contentionNote,
  cpuWaitMicros,
  fmt,
  machineLines,
  table,
  zstdCliVersion,
} from "./lib/report.ts";

const quick = process.argv.includes("--quick");
const keep = process.argv.includes("--keep");
const outFile = argValue("--out") ?? (quick ? undefined : join(root, "bench", "results", "floor-debian.md"));
const baselineDir = argValue("--baseline");
const workDir = join(root, ".bench-data", "floor-debian");
const tmpDir = join(workDir, "out");

const started = performance.now();
const codeAtStart = codeLine();
const loadAtStart = loadavg();
const waitAtStart = cpuWaitMicros();

const inputs: Input[] = [];
const packages: string[] = [];
for (const spec of DEBIAN_PACKAGES) {
  const files = spec.files.filter((f) => !quick || f.path.endsWith("means") || f.path.endsWith(".bd"));
  if (files.length === 0) continue;
  const pkg = fetchDebian(spec, join(workDir, "deb"));
  packages.push(
    `\`${spec.name}\` ${spec.version} (${spec.arch}): .deb sha256 \`${spec.sha256}\` (${pkg.how}); ${files.map((f) => `\`/${f.path}\``).join(", ")}`,
  );
  for (const f of files)
    inputs.push({ group: spec.name, label: basename(f.path), file: join(pkg.dir, f.path), note: f.what });
}

const rows: Row[] = [];
const baseline = new Map<Input, number>();
for (const input of inputs) {
  rows.push(await measure(input, tmpDir, keep));
  if (baselineDir) {
    mkdirSync(tmpDir, { recursive: true });
    const out = join(tmpDir, "baseline.mmh");
    run(process.execPath, [join(baselineDir, "bin", "mmh.js"), input.file, "-o", out, "-f", "-q"]);
    baseline.set(input, statSync(out).size);
    rmSync(out, { force: true });
  }
}

const lines = [
  "# The floor on Debian packages' model files: mmh against zstd and byte grouping + zstd",
  "",
  ...machineLines(`npx node bench/floor-debian.ts${baselineDir ? ` --baseline ${baselineDir}` : ""}`),
  codeAtStart,
  `- zstd CLI: ${zstdCliVersion()}`,
  `- Load average (1, 5, 15 min) at start: ${loadAtStart.map((x) => fmt(x, 2)).join(", ")}; at end: ${loadavg()
    .map((x) => fmt(x, 2))
    .join(", ")}`,
  `- Took ${fmt((performance.now() - started) / 1000, 0)} s. ${contentionNote(waitAtStart, performance.now() - started)}`,
  "",
  "Files from pinned Debian bookworm packages that the project's choices were not tuned on. Stored / original (smaller is better), measured as in bench/results/floor.md: byte grouping (bg2, bg4) cuts the whole file into 2 or 4 byte planes, each compressed by the zstd CLI at the same level. The target: mmh default at most 0.5% larger than the best of `zstd -3`, bg2 + zstd -3 and bg4 + zstd -3 on each file; `--goal ratio` the same against level 19. Every mmh output was decoded and its sha256 checked.",
  "",
  "## Per file",
  "",
  table(FILE_HEAD, rows.map(fileRow)),
  "",
  "## Aggregates",
  "",
  table(AGGREGATE_HEAD, [aggregate("all", rows)]),
  "",
  ...verdicts(rows),
  "",
];
if (baselineDir) {
  lines.push(
    "## Against the baseline",
    "",
    `The default output of the CLI in ${baselineDir} (commit ${spawnSync("git", ["rev-parse", "--short", "HEAD"], { cwd: baselineDir, encoding: "utf8" }).stdout.trim()}) and of this one.`,
    "",
    table(
      ["file", "bytes", "baseline default", "this default", "baseline over best -3", "this over best -3"],
      rows.map((r) => {
        const old = baseline.get(r.input) ?? Number.NaN;
        return [
          r.input.label,
          String(r.bytes),
          share(old, r.bytes),
          share(r.def, r.bytes),
          `${over(old, best3(r))} ${met(old, best3(r))}`,
          `${over(r.def, best3(r))} ${met(r.def, best3(r))}`,
        ];
      }),
    ),
    "",
  );
}
lines.push(
  "## Inputs",
  "",
  ...packages.map((p) => `- ${p}`),
  ...rows.map((r) => `- ${r.input.label}: ${r.input.note}.`),
  "",
);
writeReport(outFile, lines);
