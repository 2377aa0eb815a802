/**
 * Rewrites test/regression/sizes.csv, the committed table of compressed sizes of a fixed
 * corpus (test/support-sizes.ts), as zstd's tests/regression/results.csv. Run it after a
 * change that alters what the encoder writes, and commit the new table with that change:
 * test/regression.test.ts fails while the table and the encoder disagree.
 *
 *   npx node scripts/update-sizes.ts
 *
 * Rows of inputs that are missing (the real files in ../shared/data/) are kept as they are.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { computeRows, formatRows, parseRows, type Row, SIZES_CSV } from "../test/support-sizes.ts";

const { rows, skipped } = await computeRows();
const old = existsSync(SIZES_CSV) ? parseRows(readFileSync(SIZES_CSV, "utf8")) : [];
// A missing input keeps its committed rows, so a machine without ../shared/data/ does not drop them.
const kept: Row[] = [];
for (const row of old) if (skipped.includes(row.input)) kept.push(row);
const merged = [...rows, ...kept];
const key = (r: Row) => `${r.input}\u0000${r.options}`;
const before = new Map(old.map((r) => [key(r), r.compressed]));
let changed = 0;
for (const row of rows) {
  const was = before.get(key(row));
  if (was === row.compressed) continue;
  changed++;
  const delta =
    was === undefined
      ? "new"
      : `${was} -> ${row.compressed} (${(((row.compressed - was) / was) * 100).toFixed(3)}%)`;
  process.stdout.write(`${row.input} [${row.options}]: ${delta}\n`);
}
mkdirSync(dirname(SIZES_CSV), { recursive: true });
writeFileSync(SIZES_CSV, formatRows(merged));
for (const input of skipped)
  process.stdout.write(`skipped ${input}: file missing, its committed rows kept\n`);
process.stdout.write(`update-sizes: ${merged.length} rows in ${SIZES_CSV}, ${changed} changed\n`);
