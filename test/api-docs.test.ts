/**
 * docs/API.md: every example runs, in order, against the library's sources; every name
 * the package exports (`mmh` and `mmh/tools`) is documented there.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { pathToFileURL } from "node:url";
import { generate } from "../src/tools/index.ts";

const repo = join(import.meta.dirname, "..");
const doc = readFileSync(join(repo, "docs", "API.md"), "utf8");
const examples = [...doc.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);

const work = mkdtempSync(join(tmpdir(), "mmh-api-docs-"));
after(() => rmSync(work, { recursive: true, force: true }));
writeFileSync(
  join(work, "model.safetensors"),
  generate({ kind: "safetensors", dtype: "BF16", size: 1 << 20 }),
);
writeFileSync(join(work, "notes.txt"), `notes\n${"a line of notes, some of them repeated\n".repeat(3000)}`);
mkdirSync(join(work, "model-folder"));
writeFileSync(join(work, "model-folder", "config.json"), '{ "hidden_size": 64 }\n');
writeFileSync(
  join(work, "model-folder", "model.safetensors"),
  generate({ kind: "safetensors", dtype: "F16", size: 256 << 10, seed: 2 }),
);

/** The names a module exports, values and types, read from its source. */
function exportedNames(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const names = new Set<string>();
  for (const [, list] of text.matchAll(/export (?:type )?\{([^}]*)\}/g))
    for (const item of list.split(",")) {
      const name = item
        .replace(/^\s*type\s+/, "")
        .trim()
        .split(/\s+as\s+/)
        .at(-1);
      if (name) names.add(name);
    }
  for (const [, name] of text.matchAll(/export (?:async )?(?:function|interface|class|const|type) (\w+)/g))
    names.add(name);
  return [...names].sort();
}

describe("docs/API.md", () => {
  test("documents every exported name", async () => {
    const index = exportedNames(join(repo, "src", "index.ts"));
    const tools = exportedNames(join(repo, "src", "tools", "index.ts"));
    // The scan reads every name a value export has.
    const values = Object.keys(await import("../src/index.ts"));
    for (const name of values) assert.ok(index.includes(name), `${name} was not found by the scan`);
    for (const name of [...index, ...tools])
      assert.match(
        doc,
        new RegExp(`\`[^\`]*\\b${name}\\b[^\`]*\``),
        `${name} is not documented in docs/API.md`,
      );
  });

  test("has examples, and each one runs", () => {
    assert.ok(examples.length >= 10, `only ${examples.length} examples`);
    const index = pathToFileURL(join(repo, "src", "index.ts")).href;
    const tools = pathToFileURL(join(repo, "src", "tools", "index.ts")).href;
    for (const [i, example] of examples.entries()) {
      const file = join(work, `example-${i + 1}.mjs`);
      writeFileSync(
        file,
        example.replaceAll('from "mmh/tools"', `from "${tools}"`).replaceAll('from "mmh"', `from "${index}"`),
      );
      const run = spawnSync(process.execPath, [file], { cwd: work, encoding: "utf8", timeout: 60_000 });
      assert.equal(run.status, 0, `example ${i + 1} failed:\n${example}\n${run.stderr}`);
    }
  });
});
