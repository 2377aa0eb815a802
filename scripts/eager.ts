/**
 * The command's functions compiled with their module, so that Node's compile cache holds
 * them (scripts/build.ts; docs/ENGINE.md, "Start-up and V8's tiers").
 *
 * V8 compiles a function when it is first called, and Node's compile cache keeps a
 * module's code as it was compiled before the module ran: a process loads the top-level
 * code from the cache and compiles again every function it calls. V8 compiles a function
 * expression in parentheses with the code around it (its heuristic for a function called
 * at once), so `var f = (function f() {...});` reaches the cache where `function f()
 * {...}` does not. eagerFunctions rewrites a bundle's top-level function declarations so.
 *
 * A declaration's value is set before its module runs, a `var`'s only when its line has
 * run. So a function stays a declaration when evaluating the files may read it before
 * its line: when a top-level statement (a variable's initialiser, an expression, a
 * class's `extends` and static members) before it names it, directly or through the
 * bodies of the functions and classes it names, in the same file; or through an import
 * from a file in an import cycle with it (which may run before or after it). A file's
 * imports from outside its cycle have run in full before it runs. Any identifier of the
 * same name counts (a property, a local variable), which keeps more declarations than
 * needed, never fewer.
 */
import { parse } from "acorn";

interface Parsed {
  /** Top-level function and class declarations by name: the identifiers in each. */
  units: Map<string, Set<string>>;
  /** Top-level function declarations by name: where each is. */
  functions: Map<string, { start: number; end: number }>;
  /** Top-level code, in order: where it starts and the identifiers in it. */
  code: { start: number; names: Set<string> }[];
  /** Imported bindings: local name -> [file, exported name] ("*": the whole module). */
  imports: Map<string, [string, string]>;
  /** Exported names -> local names, or [file, name] for a re-export. */
  exports: Map<string, string | [string, string]>;
  /** Files whose exports this one re-exports (`export * from`). */
  exportAll: string[];
  /** The files this one imports. */
  deps: Set<string>;
}

/** Every identifier under `node` (JavaScript AST), names of properties included. */
function identifiers(node: unknown, into = new Set<string>()): Set<string> {
  if (Array.isArray(node)) {
    for (const item of node) identifiers(item, into);
  } else if (node !== null && typeof node === "object") {
    const n = node as { type?: unknown; name?: unknown };
    if (n.type === "Identifier" && typeof n.name === "string") into.add(n.name);
    for (const value of Object.values(node))
      if (value !== null && typeof value === "object") identifiers(value, into);
  }
  return into;
}

/** An identifier's name, or a string literal's value (`export { x as "y" }`). */
function nameOf(node: unknown): string | undefined {
  const n = node as { type?: string; name?: unknown; value?: unknown } | null | undefined;
  if (n?.type === "Identifier" && typeof n.name === "string") return n.name;
  if (n?.type === "Literal" && typeof n.value === "string") return n.value;
  return undefined;
}

/** The file that a relative import in `from` names, among `files` (a bundle's own files). */
function target(from: string, specifier: unknown, files: Map<string, string>): string | undefined {
  if (typeof specifier !== "string" || !specifier.startsWith("./")) return undefined;
  const dir = from.includes("/") ? from.slice(0, from.lastIndexOf("/") + 1) : "";
  const file = dir + specifier.slice(2);
  return files.has(file) ? file : undefined;
}

function analyse(file: string, text: string, files: Map<string, string>): Parsed {
  const program = parse(text, { ecmaVersion: "latest", sourceType: "module" });
  const parsed: Parsed = {
    units: new Map(),
    functions: new Map(),
    code: [],
    imports: new Map(),
    exports: new Map(),
    exportAll: [],
    deps: new Set(),
  };
  const code = (start: number, node: unknown) => parsed.code.push({ start, names: identifiers(node) });
  for (const statement of program.body) {
    switch (statement.type) {
      case "FunctionDeclaration": {
        const name = nameOf(statement.id);
        if (name === undefined) throw new Error(`eager: ${file}: a function declaration without a name`);
        parsed.units.set(name, identifiers(statement));
        parsed.functions.set(name, { start: statement.start, end: statement.end });
        break;
      }
      case "ClassDeclaration": {
        const name = nameOf(statement.id);
        if (name !== undefined) parsed.units.set(name, identifiers(statement));
        // Run as the class is declared: what it extends, its static members and computed keys.
        code(statement.start, statement.superClass);
        for (const member of statement.body.body) {
          if (member.type === "StaticBlock" || ("static" in member && member.static))
            code(statement.start, member);
          else if ("computed" in member && member.computed) code(statement.start, member.key);
        }
        break;
      }
      case "ImportDeclaration": {
        const from = target(file, statement.source.value, files);
        if (from === undefined) break;
        parsed.deps.add(from);
        for (const specifier of statement.specifiers) {
          const imported =
            specifier.type === "ImportSpecifier"
              ? nameOf(specifier.imported)
              : specifier.type === "ImportDefaultSpecifier"
                ? "default"
                : "*";
          if (imported === undefined) throw new Error(`eager: ${file}: an import it cannot read`);
          parsed.imports.set(specifier.local.name, [from, imported]);
        }
        break;
      }
      case "ExportNamedDeclaration": {
        if (statement.declaration) {
          // `export function f` or `export const x = ...`: left as written, run as top-level code.
          code(statement.start, statement.declaration);
          break;
        }
        const from = statement.source ? target(file, statement.source.value, files) : undefined;
        if (from !== undefined) parsed.deps.add(from);
        for (const specifier of statement.specifiers) {
          const local = nameOf(specifier.local);
          const exported = nameOf(specifier.exported);
          if (local === undefined || exported === undefined)
            throw new Error(`eager: ${file}: an export it cannot read`);
          if (!statement.source) parsed.exports.set(exported, local);
          else if (from !== undefined) parsed.exports.set(exported, [from, local]);
        }
        break;
      }
      case "ExportAllDeclaration": {
        const from = target(file, statement.source.value, files);
        if (from === undefined) break;
        if (statement.exported) throw new Error(`eager: ${file}: \`export * as\` is not handled`);
        parsed.deps.add(from);
        parsed.exportAll.push(from);
        break;
      }
      default:
        code(statement.start, statement);
    }
  }
  return parsed;
}

/** Each file's import cycle: the files it reaches through imports that also reach it. */
function cycles(parsed: Map<string, Parsed>): Map<string, Set<string>> {
  const reach = new Map<string, Set<string>>();
  for (const file of parsed.keys()) {
    const seen = new Set<string>();
    const stack = [...(parsed.get(file) as Parsed).deps];
    while (stack.length > 0) {
      const next = stack.pop() as string;
      if (seen.has(next)) continue;
      seen.add(next);
      stack.push(...(parsed.get(next) as Parsed).deps);
    }
    reach.set(file, seen);
  }
  const cycle = new Map<string, Set<string>>();
  for (const [file, reached] of reach)
    cycle.set(file, new Set([...reached].filter((other) => reach.get(other)?.has(file))));
  return cycle;
}

/**
 * `files` (name -> text, names relative to one directory) rewritten: each top-level
 * function declaration that evaluating the files cannot read before its line, as a
 * parenthesised function expression in a `var` of the same name. Returns the new texts
 * and how many functions each file had rewritten.
 */
export function eagerFunctions(files: Map<string, string>): Map<string, { text: string; rewritten: number }> {
  const parsed = new Map<string, Parsed>();
  for (const [file, text] of files) parsed.set(file, analyse(file, text, files));
  const cycle = cycles(parsed);
  // Where an exported name is declared: [file, local name], through re-exports.
  const declared = (file: string, exported: string, depth = 0): [string, string][] => {
    const p = parsed.get(file) as Parsed;
    if (depth > files.size) throw new Error(`eager: ${file}: a cycle of re-exports`);
    if (exported === "*") return [...p.exports.keys()].flatMap((name) => declared(file, name, depth + 1));
    const local = p.exports.get(exported);
    if (typeof local === "string") return [[file, local]];
    if (local) return declared(local[0], local[1], depth + 1);
    for (const from of p.exportAll)
      if ((parsed.get(from) as Parsed).exports.has(exported)) return declared(from, exported, depth + 1);
    throw new Error(`eager: ${file} exports no ${exported}`);
  };
  const kept = new Map<string, Set<string>>([...files.keys()].map((f) => [f, new Set<string>()]));
  for (const [file, p] of parsed) {
    for (const { start, names } of p.code) {
      // Everything this statement may read as it runs: [file, name, whether in a file of
      // the cycle, which may run before or after this one].
      const work: [string, string, boolean][] = [...names].map((n) => [file, n, false]);
      const seen = new Set<string>();
      while (work.length > 0) {
        const [at, name, cyclic] = work.pop() as [string, string, boolean];
        const key = `${cyclic ? 1 : 0}\0${at}\0${name}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const q = parsed.get(at) as Parsed;
        const fn = q.functions.get(name);
        if (fn && (cyclic || fn.start > start)) (kept.get(at) as Set<string>).add(name);
        for (const inner of q.units.get(name) ?? []) work.push([at, inner, cyclic]);
        const imported = q.imports.get(name);
        if (!imported) continue;
        // A file outside this one's import cycle has run in full before it runs.
        for (const [from, local] of declared(imported[0], imported[1]))
          if (cycle.get(file)?.has(from)) work.push([from, local, true]);
      }
    }
  }
  const result = new Map<string, { text: string; rewritten: number }>();
  for (const [file, text] of files) {
    const p = parsed.get(file) as Parsed;
    const keep = kept.get(file) as Set<string>;
    const edits = [...p.functions]
      .filter(([name]) => !keep.has(name))
      .sort((a, b) => b[1].start - a[1].start);
    let out = text;
    for (const [name, { start, end }] of edits)
      out = `${out.slice(0, start)}var ${name} = (${out.slice(start, end)});${out.slice(end)}`;
    result.set(file, { text: out, rewritten: edits.length });
  }
  return result;
}
