/**
 * `mmh bench`'s outputs: the terminal tables, a Markdown table for the README, and a
 * self-contained HTML report whose charts are SVG written here (no script, no network
 * load), each followed by a table of the same numbers. Colours are the Okabe-Ito palette,
 * which survives the common colour-blindnesses, and every series also differs in shape.
 */
import { formatBytes } from "../common/bytes.ts";
import { type BenchReport, type Cell, DEFAULT_METHOD, type InputReport } from "./bench.ts";
import { loadLine } from "./machine.ts";

const f = (v: number, digits: number) => (Number.isFinite(v) ? v.toFixed(digits) : "n/a");
const speed = (v: number) => (v >= 100 ? f(v, 0) : v >= 10 ? f(v, 1) : f(v, 2));
const mem = (b: number | null) => (b === null ? "n/a" : formatBytes(b));

/** "name" for real weights, "name [synthetic]" (or its class) for any other input. */
export function labelOf(input: InputReport): string {
  return input.class === "real weights" ? input.name : `${input.name} [${input.class}]`;
}

function machineRows(r: BenchReport): [string, string][] {
  const m = r.machine;
  return [
    ["cpu", m.cpu],
    ["cores", `${m.cores} available (${m.logicalCpus} logical CPUs)`],
    ["memory", formatBytes(m.memoryBytes)],
    ["os", m.os],
    ["node", m.node],
    ["zstd", `node:zlib ${m.nodeZstd}; CLI ${m.zstdCli}`],
    ["mmh", m.mmh],
    ["load start", loadLine(r.loadStart)],
    ["load end", loadLine(r.loadEnd)],
    [
      "settings",
      `${r.settings.runs} runs, -T${r.settings.threads} for the threaded rows, ${r.settings.minCallMs} ms min per timed call, cells stop after ${r.settings.maxCellSeconds} s`,
    ],
  ];
}

function table(head: string[], rows: string[][], right: (i: number) => boolean): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (row: string[]) =>
    `  ${row.map((c, i) => (right(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join("  ")}`.trimEnd();
  return [line(head), `  ${widths.map((w) => "-".repeat(w)).join("  ")}`, ...rows.map(line)].join("\n");
}

const spreadText = (s: Cell["compressMBps"]) => `${speed(s.median)} (${speed(s.min)}-${speed(s.max)})`;

/** The terminal report: machine first, then every table. */
export function benchText(r: BenchReport): string {
  const out: string[] = [];
  if (r.warning) out.push(`WARNING: ${r.warning}`);
  out.push("machine");
  for (const [k, v] of machineRows(r)) out.push(`  ${k.padEnd(10)} ${v}`);
  out.push(`  command    ${r.commands[0]}`, "");
  out.push("inputs");
  out.push(
    table(
      ["input", "class", "format", "size", "signals"],
      r.inputs.map((i) => [i.name, i.class, i.format, formatBytes(i.bytes), i.signals.join("; ")]),
      (i) => i === 3,
    ),
    "",
  );
  for (const input of r.inputs) {
    out.push(`${labelOf(input)}: ${formatBytes(input.bytes)}`);
    const rows = r.cells
      .filter((c) => c.input === input.name)
      .map((c) => [
        c.method,
        f(c.ratio, 3),
        spreadText(c.compressMBps),
        spreadText(c.decompressMBps),
        mem(c.peakMemoryBytes),
        String(c.runs),
        c.roundTrip,
      ]);
    out.push(
      table(
        ["method", "ratio", "compress MB/s", "decompress MB/s", "peak mem", "runs", "check"],
        rows,
        (i) => i > 0 && i < 6,
      ),
      "",
    );
  }
  if (r.headline) {
    out.push(
      `headline: real weights only (${r.headline.inputs.join(", ")}, ${formatBytes(r.headline.bytes)})`,
    );
    out.push(
      table(
        ["method", "ratio"],
        Object.entries(r.headline.ratios)
          .sort((a, b) => b[1] - a[1])
          .map(([m, v]) => [m, f(v, 3)]),
        (i) => i === 1,
      ),
      "",
    );
  }
  if (r.entropy.length) {
    out.push(`distance to the order-0 entropy limit of the float fields (${DEFAULT_METHOD})`);
    out.push(
      table(
        ["input", "dtype", "size", "limit", "mmh", "mmh / limit", "field bits/byte"],
        r.entropy.map((e) => [
          labelOf(r.inputs.find((i) => i.name === e.input)!),
          e.dtype,
          formatBytes(e.bytes),
          formatBytes(e.limitBytes),
          formatBytes(e.mmhBytes),
          f(e.mmhBytes / e.limitBytes, 4),
          e.fields.map((x) => `${x.field} ${f(x.bits, 2)}`).join(", "),
        ]),
        (i) => i >= 2 && i <= 5,
      ),
      "",
    );
  }
  if (r.tensors.length) {
    const shown = [...r.tensors].sort((a, b) => b.bytes - a.bytes).slice(0, 20);
    out.push(
      `per tensor (${DEFAULT_METHOD}; the ${shown.length} largest of ${r.tensors.length}, all in --json and --html)`,
    );
    out.push(
      table(
        ["input", "tensor", "dtype", "size", "saved", "codec"],
        shown.map((t) => [
          labelOf(r.inputs.find((i) => i.name === t.input)!),
          t.name.length > 48 ? `…${t.name.slice(-47)}` : t.name,
          t.dtype,
          formatBytes(t.bytes),
          `${f((t.savedBytes / t.bytes) * 100, 1)}%`,
          t.codecs.join("+"),
        ]),
        (i) => i === 3 || i === 4,
      ),
      "",
    );
  }
  out.push("notes");
  for (const n of r.notes) out.push(`  - ${n}`);
  out.push("commands");
  for (const c of r.commands) out.push(`  ${c}`);
  return `${out.join("\n")}\n`;
}

/**
 * A Markdown summary (the README's performance table): the machine, then one table each
 * for the ratio, compress speed and decompress speed, a row per method and a column per
 * input (non-real inputs labelled), with a column for the real weights together.
 */
export function benchMarkdown(r: BenchReport): string {
  const out: string[] = [];
  if (r.warning) out.push(`**${r.warning}**`, "");
  out.push("| machine | |", "|---|---|");
  for (const [k, v] of machineRows(r)) out.push(`| ${k} | ${v.replaceAll("|", "\\|")} |`);
  out.push(`| command | \`${r.commands[0]}\` |`, "");
  const base = (name: string) => name.split("/").pop() ?? name;
  const heads = r.inputs.map((i) =>
    i.class === "real weights" ? base(i.name) : `${base(i.name)} [${i.class}]`,
  );
  const cell = (input: string, method: string) =>
    r.cells.find((c) => c.input === input && c.method === method);
  const grid = (title: string, value: (c: Cell) => string, together?: (method: string) => string) => {
    out.push(title, "");
    const extra = together && r.headline ? ["real weights together"] : [];
    out.push(`| method | ${[...heads, ...extra].join(" | ")} |`);
    out.push(`|---|${[...heads, ...extra].map(() => "--:").join("|")}|`);
    for (const m of r.methods) {
      const row = r.inputs.map((i) => {
        const c = cell(i.name, m.id);
        return c ? value(c) : "";
      });
      if (extra.length) row.push(together!(m.id));
      out.push(`| ${m.id} | ${row.join(" | ")} |`);
    }
    out.push("");
  };
  grid(
    "Ratio (original / stored, higher is better):",
    (c) => f(c.ratio, 3),
    (m) => f(r.headline?.ratios[m] ?? 0, 3),
  );
  grid("Compress MB/s (median of the runs; min and max in `--json` and `--html`):", (c) =>
    speed(c.compressMBps.median),
  );
  grid("Decompress MB/s (median of the runs):", (c) => speed(c.decompressMBps.median));
  const failed = r.cells.filter((c) => c.roundTrip !== "sha256 ok").length;
  out.push(
    failed
      ? `**${failed} round trips FAILED.**`
      : `Every output (${r.cells.length} cells) was decoded and matched the input's sha256.`,
    "",
  );
  for (const n of r.notes) out.push(`- ${n}`);
  return `${out.join("\n")}\n`;
}

// ---------------------------------------------------------------------------------------
// HTML

const esc = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

/** Okabe-Ito: distinguishable with deuteranopia, protanopia and tritanopia. */
const GROUP_STYLE = {
  mmh: { color: "#0072B2", shape: "circle", name: "MMH" },
  peer: { color: "#D55E00", shape: "square", name: "command-line peers" },
  baseline: { color: "#009E73", shape: "diamond", name: "byte grouping + zstd" },
} as const;

function marker(shape: string, x: number, y: number, color: string): string {
  if (shape === "square") return `<rect x="${x - 4}" y="${y - 4}" width="8" height="8" fill="${color}"/>`;
  if (shape === "diamond")
    return `<path d="M${x} ${y - 5.5}L${x + 5.5} ${y}L${x} ${y + 5.5}L${x - 5.5} ${y}Z" fill="${color}"/>`;
  return `<circle cx="${x}" cy="${y}" r="4.5" fill="${color}"/>`;
}

function niceTicksLog(lo: number, hi: number): number[] {
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= lo * 0.999 && v <= hi * 1.001) ticks.push(v);
    }
  }
  return ticks;
}

function niceTicks(lo: number, hi: number, n = 5): number[] {
  const span = hi - lo || 1;
  const raw = span / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => span / s <= n) ?? 10 * mag;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step)
    ticks.push(Number(v.toFixed(10)));
  return ticks;
}

const tickText = (v: number) => (v >= 1000 ? `${v / 1000}k` : String(Number(v.toPrecision(3))));

/** Ratio against compress speed (log scale), one point per method. */
function scatter(cells: Cell[], title: string): string {
  const W = 560;
  const H = Math.max(380, cells.length * 13 + 90);
  const L = 52;
  const R = 170;
  const T = 16;
  const B = 44;
  const xs = cells.map((c) => Math.max(c.compressMBps.median, 1e-3));
  const ys = cells.map((c) => c.ratio);
  const x0 = Math.min(...xs) / 1.5;
  const x1 = Math.max(...xs) * 1.5;
  const yr = niceTicks(Math.min(...ys, 1) * 0.98, Math.max(...ys) * 1.02);
  const y0 = Math.min(yr[0], Math.min(...ys));
  const y1 = Math.max(yr[yr.length - 1], Math.max(...ys));
  const px = (v: number) => L + ((Math.log(v) - Math.log(x0)) / (Math.log(x1) - Math.log(x0))) * (W - L - R);
  const py = (v: number) => H - B - ((v - y0) / (y1 - y0 || 1)) * (H - T - B);
  const parts: string[] = [];
  for (const t of niceTicksLog(x0, x1))
    parts.push(
      `<line x1="${px(t)}" x2="${px(t)}" y1="${T}" y2="${H - B}" class="grid"/><text x="${px(t)}" y="${H - B + 16}" text-anchor="middle">${tickText(t)}</text>`,
    );
  for (const t of yr)
    parts.push(
      `<line x1="${L}" x2="${W - R}" y1="${py(t)}" y2="${py(t)}" class="grid"/><text x="${L - 6}" y="${py(t) + 4}" text-anchor="end">${f(t, 2)}</text>`,
    );
  parts.push(
    `<text x="${(L + W - R) / 2}" y="${H - 6}" text-anchor="middle">compress MB/s (log scale)</text>`,
    `<text transform="translate(14 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">ratio (original / stored)</text>`,
  );
  const placed: number[] = [];
  cells
    .map((c, i) => ({ c, x: px(xs[i]), y: py(ys[i]) }))
    .sort((a, b) => a.y - b.y)
    .forEach(({ c, x, y }) => {
      const s = GROUP_STYLE[c.group];
      parts.push(`<g class="point" data-method="${esc(c.method)}">${marker(s.shape, x, y, s.color)}</g>`);
      let ly = y + 4;
      while (placed.some((p) => Math.abs(p - ly) < 13)) ly += 13;
      placed.push(ly);
      parts.push(`<text x="${W - R + 8}" y="${ly}" class="lab">${esc(c.method)}</text>`);
      parts.push(`<line x1="${x + 5}" y1="${y}" x2="${W - R + 6}" y2="${ly - 4}" class="leader"/>`);
    });
  return svg(W, H, title, parts.join(""));
}

/** Horizontal bars: one per label, with the value written at its end. */
function bars(
  items: { label: string; value: number; color: string; text: string }[],
  title: string,
  axis: string,
): string {
  const W = 560;
  const rowH = 22;
  const L = 220;
  const R = 64;
  const T = 8;
  const B = 38;
  const H = T + B + rowH * items.length;
  const lo = Math.min(0, ...items.map((i) => i.value));
  const hi = Math.max(0, ...items.map((i) => i.value)) || 1;
  const ticks = niceTicks(lo, hi);
  const a = Math.min(lo, ticks[0]);
  const b = Math.max(hi, ticks[ticks.length - 1]);
  const px = (v: number) => L + ((v - a) / (b - a || 1)) * (W - L - R);
  const parts: string[] = [];
  for (const t of ticks)
    parts.push(
      `<line x1="${px(t)}" x2="${px(t)}" y1="${T}" y2="${H - B}" class="grid"/><text x="${px(t)}" y="${H - B + 16}" text-anchor="middle">${tickText(t)}</text>`,
    );
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 4}" text-anchor="middle">${esc(axis)}</text>`);
  items.forEach((it, k) => {
    const y = T + k * rowH;
    const x = Math.min(px(0), px(it.value));
    const w = Math.max(1, Math.abs(px(it.value) - px(0)));
    const label = it.label.length > 30 ? `…${it.label.slice(-29)}` : it.label;
    parts.push(
      `<text x="${L - 6}" y="${y + 14}" text-anchor="end">${esc(label)}</text><rect class="bar" x="${x}" y="${y + 3}" width="${w}" height="${rowH - 6}" fill="${it.color}"/><text x="${Math.max(px(it.value), px(0)) + 4}" y="${y + 14}">${esc(it.text)}</text>`,
    );
  });
  return svg(W, H, title, parts.join(""));
}

function svg(w: number, h: number, title: string, body: string): string {
  return `<svg viewBox="0 0 ${w} ${h}" role="img" aria-label="${esc(title)}" xmlns="http://www.w3.org/2000/svg"><title>${esc(title)}</title>${body}</svg>`;
}

function htmlTable(
  head: string[],
  rows: { attrs: string; cells: { text: string; key?: string; num?: boolean }[] }[],
  name: string,
): string {
  return `<div class="scroll"><table data-table="${name}"><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join("")}</tr></thead><tbody>${rows
    .map(
      (r) =>
        `<tr ${r.attrs}>${r.cells.map((c) => `<td${c.key ? ` data-k="${c.key}"` : ""}${c.num ? ' class="n"' : ""}>${esc(c.text)}</td>`).join("")}</tr>`,
    )
    .join("")}</tbody></table></div>`;
}

const legend = () =>
  `<p class="legend">${Object.values(GROUP_STYLE)
    .map(
      (s) =>
        `<span><svg viewBox="-6 -6 12 12" width="12" height="12">${marker(s.shape, 0, 0, s.color)}</svg> ${s.name}</span>`,
    )
    .join(" ")}</p>`;

export function benchHtml(r: BenchReport): string {
  const sections: string[] = [];
  const inputOf = (name: string) => r.inputs.find((i) => i.name === name)!;
  sections.push(
    `<section><h2>Machine</h2>${htmlTable(
      ["", ""],
      [...machineRows(r), ["command", r.commands[0]]].map(([k, v]) => ({
        attrs: "",
        cells: [{ text: k }, { text: v }],
      })),
      "machine",
    )}</section>`,
  );
  sections.push(
    `<section><h2>Inputs</h2>${htmlTable(
      ["input", "class", "format", "size", "sha256", "signals"],
      r.inputs.map((i) => ({
        attrs: `data-input="${esc(i.name)}"`,
        cells: [
          { text: i.name },
          { text: i.class, key: "class" },
          { text: i.format },
          { text: String(i.bytes), key: "bytes", num: true },
          { text: i.sha256.slice(0, 16) },
          { text: i.signals.join("; ") },
        ],
      })),
      "inputs",
    )}</section>`,
  );
  if (r.headline) {
    sections.push(
      `<section><h2>Headline: real weights only</h2><p>${esc(r.headline.inputs.join(", "))} (${formatBytes(r.headline.bytes)}).</p>${htmlTable(
        ["method", "ratio"],
        Object.entries(r.headline.ratios)
          .sort((a, b) => b[1] - a[1])
          .map(([m, v]) => ({
            attrs: `data-method="${esc(m)}"`,
            cells: [{ text: m }, { text: f(v, 3), key: "ratio", num: true }],
          })),
        "headline",
      )}</section>`,
    );
  }
  for (const input of r.inputs) {
    const cells = r.cells.filter((c) => c.input === input.name);
    const label = labelOf(input);
    sections.push(
      `<section><h2>${esc(label)}</h2><figure data-chart="scatter">${scatter(cells, `${label}: ratio against compress speed`)}<figcaption>${esc(label)}: ratio against compress speed, every method (log scale).</figcaption></figure>${legend()}${htmlTable(
        [
          "method",
          "ratio",
          "stored bytes",
          "compress MB/s",
          "min",
          "max",
          "decompress MB/s",
          "min",
          "max",
          "peak mem",
          "runs",
          "check",
        ],
        cells.map((c) => ({
          attrs: `data-input="${esc(input.name)}" data-method="${esc(c.method)}"`,
          cells: [
            { text: c.method },
            { text: f(c.ratio, 3), key: "ratio", num: true },
            { text: String(c.storedBytes), key: "stored", num: true },
            { text: speed(c.compressMBps.median), key: "cmed", num: true },
            { text: speed(c.compressMBps.min), num: true },
            { text: speed(c.compressMBps.max), num: true },
            { text: speed(c.decompressMBps.median), key: "dmed", num: true },
            { text: speed(c.decompressMBps.min), num: true },
            { text: speed(c.decompressMBps.max), num: true },
            { text: mem(c.peakMemoryBytes), num: true },
            { text: String(c.runs), num: true },
            { text: c.roundTrip },
          ],
        })),
        "cells",
      )}<figure data-chart="decompress">${bars(
        [...cells]
          .sort((a, b) => b.decompressMBps.median - a.decompressMBps.median)
          .map((c) => ({
            label: c.method,
            value: c.decompressMBps.median,
            color: GROUP_STYLE[c.group].color,
            text: speed(c.decompressMBps.median),
          })),
        `${label}: decompress speed`,
        "decompress MB/s (median)",
      )}<figcaption>${esc(label)}: decompress speed, median of the runs; the table above gives min and max.</figcaption></figure></section>`,
    );
  }
  if (r.tensors.length) {
    const shown = [...r.tensors].sort((a, b) => b.bytes - a.bytes).slice(0, 40);
    sections.push(
      `<section><h2>Per tensor (${esc(DEFAULT_METHOD)})</h2><figure data-chart="tensors">${bars(
        shown.map((t) => ({
          label: `${t.name}${inputOf(t.input).class === "real weights" ? "" : ` [${inputOf(t.input).class}]`}`,
          value: (t.savedBytes / t.bytes) * 100,
          color: inputOf(t.input).class === "real weights" ? "#0072B2" : "#999999",
          text: `${f((t.savedBytes / t.bytes) * 100, 1)}%`,
        })),
        "bytes saved per tensor",
        "bytes saved, % of the tensor",
      )}<figcaption>Bytes saved per tensor, the ${shown.length} largest of ${r.tensors.length}; grey bars are not real weights.</figcaption></figure>${htmlTable(
        ["input", "tensor", "dtype", "bytes", "stored", "saved", "codec auto chose"],
        r.tensors.map((t) => ({
          attrs: `data-input="${esc(t.input)}" data-tensor="${esc(t.name)}"`,
          cells: [
            { text: labelOf(inputOf(t.input)) },
            { text: t.name },
            { text: t.dtype },
            { text: String(t.bytes), key: "bytes", num: true },
            { text: String(t.storedBytes), key: "stored", num: true },
            { text: String(t.savedBytes), key: "saved", num: true },
            { text: t.codecs.join("+") },
          ],
        })),
        "tensors",
      )}</section>`,
    );
  }
  if (r.entropy.length) {
    sections.push(
      `<section><h2>Distance to the entropy limit</h2><figure data-chart="entropy">${bars(
        r.entropy.map((e) => ({
          label: `${labelOf(inputOf(e.input))} · ${e.dtype}`,
          value: (e.mmhBytes / e.limitBytes - 1) * 100,
          color: inputOf(e.input).class === "real weights" ? "#0072B2" : "#999999",
          text: `${f((e.mmhBytes / e.limitBytes - 1) * 100, 2)}%`,
        })),
        "MMH above the order-0 limit per dtype",
        "% above the order-0 entropy of the fields",
      )}<figcaption>How far ${esc(DEFAULT_METHOD)} stays above the order-0 entropy of each float field, per dtype (negative: below it, by modelling more than order 0).</figcaption></figure>${htmlTable(
        ["input", "dtype", "bytes", "limit bytes", "mmh bytes", "mmh / limit", "field bits per byte"],
        r.entropy.map((e) => ({
          attrs: `data-input="${esc(e.input)}" data-dtype="${esc(e.dtype)}"`,
          cells: [
            { text: labelOf(inputOf(e.input)) },
            { text: e.dtype },
            { text: String(e.bytes), key: "bytes", num: true },
            { text: String(e.limitBytes), key: "limit", num: true },
            { text: String(e.mmhBytes), key: "mmh", num: true },
            { text: f(e.mmhBytes / e.limitBytes, 4), num: true },
            { text: e.fields.map((x) => `${x.field} ${f(x.bits, 3)}`).join(", ") },
          ],
        })),
        "entropy",
      )}</section>`,
    );
  }
  sections.push(
    `<section><h2>Notes and commands</h2><ul>${r.notes.map((n) => `<li>${esc(n)}</li>`).join("")}</ul><pre>${esc(r.commands.join("\n"))}</pre></section>`,
  );
  const first = r.warning
    ? `<p class="warn" id="first">${esc(r.warning)}</p>`
    : `<p id="first">Headline figures come from the real weights only: ${esc(r.headline!.inputs.join(", "))}.</p>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>mmh bench report</title>
<style>
:root{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;color:#111;background:#fff;line-height:1.4}
body{max-width:960px;margin:0 auto;padding:12px;overflow-wrap:anywhere}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:1.6em;border-bottom:1px solid #ccc}
.warn{background:#fff3cd;border:2px solid #b8860b;padding:8px;font-weight:600}
figure{margin:12px 0}figure svg{width:100%;height:auto;font-size:13px}.legend svg{width:12px;height:12px;vertical-align:middle}
svg text{fill:#222}.grid{stroke:#ddd;stroke-width:1}.leader{stroke:#999;stroke-width:.6}
.lab{font-size:12px}.legend{display:flex;flex-wrap:wrap;gap:.3em 1em}.legend span{white-space:nowrap}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;font-size:.85rem;margin:8px 0}
th,td{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}
pre{white-space:pre-wrap;word-break:break-all;font-size:.8rem}
@media print{body{max-width:none;padding:0}section,figure,table{break-inside:avoid}.scroll{overflow:visible}a{color:#000}}
@media (max-width:600px){table{font-size:.75rem}}
</style></head><body>
${first}
<h1>mmh bench</h1>
${sections.join("\n")}
</body></html>
`;
}
