/**
 * `auto`'s whole-chunk trials, counted: every real model file of bench/real-ab.ts and the
 * inputs of test/regression/sizes.csv, chunked as compress() chunks them (default goal, one
 * thread, no references or long matches), each chunk's choices (chooseCodecs) coded one by
 * one. Per kind of chunk (dtype, size class) and choice: how often it was chosen, how
 * often coded whole (a choice with `ifBest` or `ifOver` only when encodeChoices would try it), how
 * often it was the smallest, the bytes it saved over the next smallest coded, and its CPU
 * time. With --baseline DIR the same is counted for that checkout's chooser, so a trial
 * left out can be shown never to have won there.
 *
 *   npx node bench/auto-trials.ts [--baseline DIR] [--out FILE]
 *
 * Times are of single encodes on a shared machine: read them as shares, not speeds.
 */
import "./lib/help.ts";
import { readdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { codeLine, root, writeReport } from "./lib/commands.ts";
import { FLOOR_PACKAGES, fetchPackage, MODEL_EXTENSION, packageFiles } from "./lib/packages.ts";
import { argValue, fmt, machineLines, table } from "./lib/report.ts";

const baseline = argValue("--baseline");
const outFile = argValue("--out") ?? join(root, "bench", "results", "auto-trials.md");

interface Inputs {
  name: string;
  bytes: Uint8Array;
}
const inputs: Inputs[] = [];
const sharedDir = join(root, "..", "shared", "data");
for (const f of readdirSync(sharedDir)
  .filter((f) => f.endsWith(".safetensors"))
  .sort())
  inputs.push({ name: f, bytes: readFileSync(join(sharedDir, f)) });
for (const spec of FLOOR_PACKAGES) {
  const pkg = fetchPackage(spec, join(root, ".bench-data", "floor"));
  for (const f of packageFiles(pkg, MODEL_EXTENSION[spec.kind]))
    inputs.push({ name: basename(f), bytes: readFileSync(f) });
}
const { INPUTS } = await import(join(root, "test", "support-sizes.ts"));
for (const input of INPUTS as { name: string; load: () => Buffer | undefined }[]) {
  const bytes = input.load();
  if (bytes && !inputs.some((x) => x.name === basename(input.name))) inputs.push({ name: input.name, bytes });
}

interface Choice {
  id: string;
  level?: number;
  layout?: number;
  ifBest?: readonly string[];
  ifOver?: { id: string; bytes: number };
}
interface Row {
  chosen: number;
  coded: number;
  wins: number;
  saved: number;
  ms: number;
}

/** The trial counts of the checkout at `dir`. */
async function count(dir: string): Promise<Map<string, Row>> {
  const at = (path: string) => import(join(dir, "src", path));
  const { describeSource } = await at("engine/describe.ts");
  const { resolveCompressOptions } = await at("engine/options.ts");
  const { plannedChunks } = await at("engine/plan.ts");
  const { bufferSource } = await at("common/source.ts");
  const { chooseCodecs, encodeChoices } = await at("engine/auto.ts");
  const { findPeriod } = await at("codecs/p251.ts");
  const { startRun, extendRun } = await at("engine/runs.ts");
  const rows = new Map<string, Row>();
  const opts = resolveCompressOptions({ threads: 1 });
  for (const input of inputs) {
    const layout = await describeSource(
      bufferSource(input.bytes),
      opts.chunkSize,
      true,
      true,
      false,
      undefined,
    );
    const stats = { choiceMs: 0 };
    let run: unknown;
    async function* once() {
      yield input.bytes;
    }
    for await (const { data: raw, dtype } of plannedChunks(once(), layout.plan, opts.chunkSize)) {
      if (run && extendRun(run, raw)) continue;
      const period = findPeriod(raw);
      run = startRun(raw, period);
      if (run) continue;
      const choices: Choice[] = chooseCodecs(raw, dtype, opts.goal, opts.level, stats, period);
      const coded = choices.map((c) => {
        const { ifBest: _, ifOver: __, ...plain } = c;
        const started = performance.now();
        const { chunk } = encodeChoices(raw, dtype, [plain]);
        return {
          size: chunk.header.length + chunk.payload.length,
          codec: chunk.codec as string,
          ms: performance.now() - started,
        };
      });
      // encodeChoices' order and rules: ifBest tried only beside a record of those codecs
      // within 3% of the smallest so far, ifOver only where that codec's record was not under its bytes.
      const smallest = new Map<string, number>();
      let best = Number.POSITIVE_INFINITY;
      let bestAt = -1;
      const tried = choices.map((c, i) => {
        if (c.ifBest && !c.ifBest.some((id) => (smallest.get(id) ?? Number.POSITIVE_INFINITY) <= best * 1.03))
          return false;
        if (c.ifOver && (smallest.get(c.ifOver.id) ?? Number.POSITIVE_INFINITY) < c.ifOver.bytes)
          return false;
        smallest.set(
          coded[i].codec,
          Math.min(smallest.get(coded[i].codec) ?? Number.POSITIVE_INFINITY, coded[i].size),
        );
        if (coded[i].size < best) {
          best = coded[i].size;
          bestAt = i;
        }
        return true;
      });
      const kind = `${dtype ?? "raw"} ${raw.length > 96 << 10 ? "over 96 KiB" : "up to 96 KiB"}`;
      for (const [i, c] of choices.entries()) {
        const key = `${kind}|${c.id} ${c.level ?? ""}${c.layout === undefined ? "" : ` layout ${c.layout}`}${c.ifBest ? " (ifBest)" : ""}`;
        const row = rows.get(key) ?? { chosen: 0, coded: 0, wins: 0, saved: 0, ms: 0 };
        row.chosen++;
        if (tried[i]) {
          row.coded++;
          row.ms += coded[i].ms;
        }
        if (i === bestAt) {
          row.wins++;
          const others = coded.filter((_, j) => j !== i && tried[j]).map((x) => x.size);
          row.saved += (others.length > 0 ? Math.min(...others) : raw.length + 1) - coded[i].size;
        }
        rows.set(key, row);
      }
    }
  }
  return rows;
}

const sides = baseline ? [await count(baseline), await count(root)] : [await count(root)];
const keys = [...new Set(sides.flatMap((s) => [...s.keys()]))].sort();
const cell = (row: Row | undefined) =>
  row ? `${row.chosen} / ${row.coded} / ${row.wins} / ${row.saved} / ${fmt(row.ms, 1)}` : "-";
const head = ["chunks", "choice", ...(baseline ? ["baseline", "this"] : ["this"])];
writeReport(outFile, [
  "# auto's whole-chunk trials: chosen, coded, won",
  "",
  ...machineLines(`npx node bench/auto-trials.ts${baseline ? " --baseline DIR" : ""}`),
  codeLine(),
  ...(baseline ? [`- Baseline: ${baseline}`] : []),
  "",
  `${inputs.length} inputs: the real model files of bench/real-ab.ts and the inputs of test/regression/sizes.csv, default goal, one thread, chunked as compress() chunks them (no references or long matches). Per kind of chunk and choice, each cell is: chosen / coded whole / smallest / bytes saved over the next smallest coded / ms of its whole encodes (single runs on a shared machine: read as shares).`,
  "",
  table(
    head,
    keys.map((k) => {
      const [kind, choice] = k.split("|");
      return [kind, choice, ...sides.map((s) => cell(s.get(k)))];
    }),
  ),
  "",
]);
