/**
 * The committed size table, test/regression/sizes.csv: every compressed size of the fixed
 * corpus (test/support-sizes.ts) must be what the table says. A change that moves any size
 * must update the table (npx node scripts/update-sizes.ts) in the same commit, so that
 * every change in ratio is seen, measured and reviewed.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { computeRows, INPUTS, OPTION_SETS, parseRows, SIZES_CSV } from "./support-sizes.ts";

test("compressed sizes of the fixed corpus match test/regression/sizes.csv", async (t) => {
  const table = parseRows(readFileSync(SIZES_CSV, "utf8"));
  const { rows, skipped } = await computeRows();
  for (const input of skipped) t.diagnostic(`skipped ${input}: the file is missing`);
  const committed = new Map(table.map((r) => [`${r.input}\u0000${r.options}`, r.compressed]));
  const problems: string[] = [];
  for (const row of rows) {
    const was = committed.get(`${row.input}\u0000${row.options}`);
    if (was === undefined)
      problems.push(`  ${row.input} [${row.options}]: ${row.compressed}, not in the table`);
    else if (was !== row.compressed)
      problems.push(
        `  ${row.input} [${row.options}]: ${was} in the table, now ${row.compressed} (${(((row.compressed - was) / was) * 100).toFixed(3)}%)`,
      );
  }
  const expected = new Set(INPUTS.flatMap((i) => OPTION_SETS.map((o) => `${i.name}\u0000${o.name}`)));
  for (const row of table)
    if (!expected.has(`${row.input}\u0000${row.options}`))
      problems.push(`  ${row.input} [${row.options}]: in the table but no longer in the corpus`);
  assert.ok(
    problems.length === 0,
    `compressed sizes differ from ${SIZES_CSV}:\n${problems.join("\n")}\n` +
      "If the change is intended, run `npx node scripts/update-sizes.ts` and commit the new table " +
      "in the same commit as the change (say why the sizes moved in its message).",
  );
});
