/**
 * `mmh bench --html`: the report opened in a real browser (Debian's chromium, headless,
 * through puppeteer-core). Every chart must have drawn something, the page must log no
 * error and ask for nothing over the network, and its tables must hold the numbers the
 * same run printed with --json.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, describe, test } from "node:test";
import type { BenchReport } from "../src/tools/bench.ts";
import { BIN } from "./cli-support.ts";

const CHROMIUM = "/usr/bin/chromium";
const MNIST = resolve(import.meta.dirname, "../../shared/data/mnist-tinygrad_model.safetensors");
const dir = mkdtempSync(join(tmpdir(), "mmh-bench-report-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const noBrowser = existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} is not installed (Debian package chromium; .ci/run installs it)`;

describe("mmh bench --html in a browser", { skip: noBrowser }, () => {
  test("charts drawn, no errors, no network, tables match --json", async () => {
    const html = join(dir, "report.html");
    const inputs = existsSync(MNIST) ? [MNIST] : [];
    const r = spawnSync(
      process.execPath,
      [
        BIN,
        "bench",
        ...inputs,
        "--gen",
        "BF16:256K",
        "--runs",
        "1",
        "-T",
        "1",
        "--json",
        "--html",
        html,
        "-q",
      ],
      { timeout: 280_000, maxBuffer: 1 << 26 },
    );
    assert.equal(r.status, 0, r.stderr.toString());
    assert.equal(r.stderr.toString(), "", "-q: nothing on standard error");
    const report = JSON.parse(r.stdout.toString()) as BenchReport;
    assert.ok(report.cells.length > 0 && report.cells.every((c) => c.roundTrip === "sha256 ok"));
    const page = readFileSync(html, "utf8");
    assert.doesNotMatch(page, /<script|https?:\/\/(?!www\.w3\.org\/2000\/svg)/, "nothing to load or run");

    const { default: puppeteer } = await import("puppeteer-core");
    const browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--no-first-run"],
    });
    try {
      const tab = await browser.newPage();
      const errors: string[] = [];
      const requests: string[] = [];
      tab.on("console", (m) => {
        if (m.type() === "error") errors.push(m.text());
      });
      tab.on("pageerror", (e) => errors.push(String(e)));
      await tab.setRequestInterception(true);
      tab.on("request", (req) => {
        if (req.url().startsWith("file:")) return void req.continue();
        requests.push(req.url());
        void req.abort();
      });
      await tab.setViewport({ width: 390, height: 844, deviceScaleFactor: 1 }); // a phone
      await tab.goto(`file://${html}`, { waitUntil: "load" });
      assert.deepEqual(errors, [], "no console errors");
      assert.deepEqual(requests, [], "no network requests");

      // The first line: a warning when nothing real was given, else where the headline comes from.
      const first = await tab.$eval("#first", (e) => e.textContent ?? "");
      if (report.warning) assert.equal(first, report.warning);
      else assert.match(first, /real weights only/);

      // Every chart: an SVG with a non-empty box and drawn marks.
      const charts = await tab.$$eval("figure[data-chart]", (figures) =>
        figures.map((f) => {
          const svg = f.querySelector("svg");
          const box = svg?.getBoundingClientRect();
          return {
            kind: f.getAttribute("data-chart"),
            width: box?.width ?? 0,
            height: box?.height ?? 0,
            marks: svg ? svg.querySelectorAll("circle, rect.bar, rect, path").length : 0,
          };
        }),
      );
      const kinds = new Set(charts.map((c) => c.kind));
      for (const kind of ["scatter", "decompress", "tensors", "entropy"])
        assert.ok(kinds.has(kind), `a ${kind} chart`);
      for (const c of charts) {
        assert.ok(c.width > 100 && c.height > 50, `${c.kind} chart has a size: ${c.width}x${c.height}`);
        assert.ok(c.marks > 0, `${c.kind} chart drew marks`);
      }
      const scatterPoints = await tab.$$eval("figure[data-chart=scatter] g.point", (g) => g.length);
      assert.equal(scatterPoints, report.cells.length, "one point per method and input");

      // The tables hold the numbers in --json.
      const rows = await tab.$$eval("table[data-table=cells] tr[data-method]", (trs) =>
        trs.map((tr) => ({
          input: tr.getAttribute("data-input"),
          method: tr.getAttribute("data-method"),
          ratio: tr.querySelector("[data-k=ratio]")?.textContent,
          stored: tr.querySelector("[data-k=stored]")?.textContent,
        })),
      );
      assert.equal(rows.length, report.cells.length);
      for (const c of report.cells) {
        const row = rows.find((x) => x.input === c.input && x.method === c.method);
        assert.ok(row, `${c.method} on ${c.input} in the table`);
        assert.equal(row.ratio, c.ratio.toFixed(3));
        assert.equal(row.stored, String(c.storedBytes));
      }
      const tensorRows = await tab.$$eval("table[data-table=tensors] tr[data-tensor]", (trs) =>
        trs.map((tr) => ({
          input: tr.getAttribute("data-input"),
          name: tr.getAttribute("data-tensor"),
          saved: tr.querySelector("[data-k=saved]")?.textContent,
        })),
      );
      assert.equal(tensorRows.length, report.tensors.length);
      for (const t of report.tensors)
        assert.equal(
          tensorRows.find((x) => x.input === t.input && x.name === t.name)?.saved,
          String(t.savedBytes),
        );
      const entropyRows = await tab.$$eval("table[data-table=entropy] tr[data-dtype]", (trs) =>
        trs.map((tr) => ({
          input: tr.getAttribute("data-input"),
          dtype: tr.getAttribute("data-dtype"),
          limit: tr.querySelector("[data-k=limit]")?.textContent,
          mmh: tr.querySelector("[data-k=mmh]")?.textContent,
        })),
      );
      for (const e of report.entropy) {
        const row = entropyRows.find((x) => x.input === e.input && x.dtype === e.dtype);
        assert.equal(row?.limit, String(e.limitBytes));
        assert.equal(row?.mmh, String(e.mmhBytes));
      }
      const classes = await tab.$$eval("table[data-table=inputs] tr[data-input]", (trs) =>
        trs.map((tr) => tr.querySelector("[data-k=class]")?.textContent),
      );
      assert.deepEqual(
        classes,
        report.inputs.map((i) => i.class),
      );
      assert.ok(classes.includes("synthetic"), "the gen input is labelled synthetic");

      // Nothing wider than a phone's screen but the scrolling table boxes.
      const overflow = await tab.evaluate(() => {
        const g = globalThis as unknown as {
          document: { documentElement: { scrollWidth: number } };
          innerWidth: number;
        };
        return g.document.documentElement.scrollWidth - g.innerWidth;
      });
      assert.ok(overflow <= 1, `page is ${overflow}px wider than the phone`);
      const shot = join(process.env.MMH_BENCH_SCREENSHOT_DIR ?? dir, "report.png");
      await tab.screenshot({ path: shot as `${string}.png`, fullPage: true });
      assert.ok(readFileSync(shot).length > 10_000, "a screenshot was written");
      await tab.emulateMediaType("print");
      const pdf = await tab.pdf({ format: "A4" });
      assert.ok(pdf.length > 10_000, "prints");
    } finally {
      await browser.close();
    }
  });
});
