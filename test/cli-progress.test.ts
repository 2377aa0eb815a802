import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { formatEta, formatRatio, formatSpeed, startProgress } from "../src/cli/progress.ts";

const BIN = join(import.meta.dirname, "..", "bin", "mmh.js");

/** A writable stand-in for a terminal (or not) that records what is written to it. */
function fakeStream(isTTY: boolean) {
  const stream = {
    isTTY,
    columns: 100,
    text: "",
    write(chunk: string | Uint8Array, callback?: () => void) {
      stream.text += chunk.toString();
      callback?.();
      return true;
    },
  };
  return stream;
}

type Fake = ReturnType<typeof fakeStream>;
const asStream = (s: Fake) => s as unknown as NodeJS.WritableStream & { isTTY?: boolean };
const ESC = "\x1b";
/** The frames a terminal showed, one a line: "go to column 1" and carriage returns become new lines. */
const visible = (text: string) =>
  text
    .replaceAll(`${ESC}[1G`, "\n")
    .replace(new RegExp(`${ESC}(\\[[0-9;?]*[A-Za-z]|[78])`, "g"), "")
    .replace(/\r/g, "\n");

describe("progress bar (in process)", () => {
  test("formatting helpers", () => {
    assert.equal(formatEta(0.2), "1s");
    assert.equal(formatEta(59), "59s");
    assert.equal(formatEta(125), "2m05s");
    assert.equal(formatEta(3 * 3600 + 7 * 60), "3h07m");
    assert.equal(formatEta(Number.NaN), "--");
    assert.equal(formatEta(Number.POSITIVE_INFINITY), "--");
    assert.equal(formatSpeed(123_456_789), "123.5 MB/s");
    assert.equal(formatSpeed(2_500_000_000), "2.50 GB/s");
    assert.equal(formatRatio(300, 200), "1.50x");
    assert.equal(formatRatio(300, 0), "-");
  });

  test("draws bytes, percentage, speed, ratio and ETA on a terminal, and clears them on stop", async () => {
    const stream = fakeStream(true);
    let read = 0;
    const progress = startProgress(
      { label: "model.safetensors", direction: "encode" },
      { enabled: true, stream: asStream(stream), delayMs: 0, intervalMs: 10 },
    );
    for (let i = 0; i < 20; i++) {
      read += 2 << 20;
      progress.report({ readBytes: read, writtenBytes: read >> 1, totalBytes: 100 << 20, done: false });
      await sleep(10);
    }
    progress.stop();
    progress.stop(); // a second stop is harmless
    const shown = visible(stream.text);
    assert.match(
      shown,
      /model\.safetensors +\d+% \[[█░]+\] [\d.]+ MiB \/ 100\.0 MiB +[\d.]+ MB\/s +2\.00x +ETA \d/,
    );
    // Stopping clears the line: it ends with "back to column 1, erase the line".
    assert.ok(stream.text.endsWith(`${ESC}[1G${ESC}[2K`), JSON.stringify(stream.text.slice(-40)));
    const length = stream.text.length;
    await sleep(50);
    assert.equal(stream.text.length, length, "nothing is drawn after stop");
  });

  test("without a total (stdin): bytes and speed, no percentage or ETA", async () => {
    const stream = fakeStream(true);
    let read = 0;
    const progress = startProgress(
      { label: "stdin", direction: "decode" },
      { enabled: true, stream: asStream(stream), delayMs: 0, intervalMs: 10 },
    );
    for (let i = 0; i < 10; i++) {
      read += 1 << 20;
      progress.report({ readBytes: read, writtenBytes: read * 3, done: false });
      await sleep(10);
    }
    progress.stop();
    const shown = visible(stream.text);
    assert.match(shown, /stdin [\d.]+ MiB +[\d.]+ MB\/s +3\.00x/);
    assert.doesNotMatch(shown, /%|ETA/);
  });

  test("nothing is drawn when disabled, off a terminal, before the delay, or after an abort", async () => {
    const spec = { label: "x", direction: "encode" as const };
    const cases: [string, Fake, Parameters<typeof startProgress>[1]][] = [];
    let s = fakeStream(true);
    cases.push(["disabled", s, { enabled: false, stream: asStream(s), delayMs: 0 }]);
    s = fakeStream(false);
    cases.push(["not a terminal", s, { enabled: true, stream: asStream(s), delayMs: 0 }]);
    s = fakeStream(true);
    cases.push(["stopped before the delay", s, { enabled: true, stream: asStream(s), delayMs: 40 }]);
    const controller = new AbortController();
    s = fakeStream(true);
    cases.push([
      "aborted",
      s,
      { enabled: true, stream: asStream(s), delayMs: 40, signal: controller.signal },
    ]);
    const bars = cases.map(([, , options]) => startProgress(spec, options));
    // A report for each, so that only the case itself can keep its bar from being drawn.
    for (const bar of bars) bar.report({ readBytes: 1, writtenBytes: 1, totalBytes: 100, done: false });
    controller.abort();
    bars[2].stop();
    await sleep(80);
    for (const [name, stream] of cases) assert.equal(stream.text, "", name);
    for (const bar of bars) bar.stop();
  });
});

// ---------------------------------------------------------------------------------------

/** util-linux's script(1) gives the command a pseudo-terminal; other systems' script differs. */
const noPty =
  process.platform !== "linux"
    ? "the pseudo-terminal test uses util-linux script(1), on Linux only"
    : spawnSync("script", ["--version"], { timeout: 10_000 }).error !== undefined
      ? "script(1) from util-linux is not installed: no pseudo-terminal to run mmh under"
      : !existsSync("/proc/self/io")
        ? "/proc/self/io is missing: compress -o has no progress counters here"
        : false;

describe("progress bar under a pseudo-terminal", { skip: noPty }, () => {
  const dir = mkdtempSync(join(tmpdir(), "mmh-progress-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const mmhLine = `${quote(process.execPath)} ${quote(BIN)}`;
  // brotli level 9 on one thread: about 25 MB/s, so 64 MiB takes two to three seconds.
  const slow = "-T 1 --codec brotli -L 9";

  before(() => {
    const r = spawnSync(process.execPath, [BIN, "gen", "--kind", "text", "--size", "64M", "-o", "in.txt"], {
      cwd: dir,
      timeout: 60_000,
    });
    assert.equal(r.status, 0, r.stderr?.toString());
  });

  /** Run a shell command line under a pseudo-terminal; everything it printed, as the terminal got it. */
  function underPty(command: string): { code: number | null; output: string } {
    const r = spawnSync("script", ["-qfec", command, "/dev/null"], { cwd: dir, timeout: 60_000 });
    assert.equal(r.error, undefined, `script did not finish: ${r.error}`);
    return { code: r.status, output: r.stdout.toString() };
  }

  test("compress FILE -o OUT shows percentage, sizes, MB/s, ratio and ETA, then the summary alone", () => {
    const { code, output } = underPty(`${mmhLine} compress in.txt -o a.mmh -f ${slow}`);
    assert.equal(code, 0, output);
    const shown = visible(output);
    assert.match(shown, /in\.txt +\d+% \[[█░]+\] [\d.]+ MiB \/ 64\.0 MiB +[\d.]+ MB\/s +[\d.]+x +ETA \d+s/);
    const lines = shown.split("\n").filter((line) => line.trim() !== "");
    assert.match(lines[lines.length - 1], /^in\.txt : [\d.]+% \(64\.0 MiB => .*a\.mmh\) 128 chunks/);
    // The bar's line is erased before the summary is printed over it.
    const summaryAt = output.indexOf("in.txt : ");
    assert.ok(output.lastIndexOf(`${ESC}[2K`) < summaryAt && output.lastIndexOf(`${ESC}[2K`) > 0);
    assert.ok(!output.slice(summaryAt).includes(ESC), "nothing is drawn after the summary");
  });

  test("standard input: bytes and speed, without a total or ETA", () => {
    const { code, output } = underPty(`${mmhLine} ${slow} < in.txt > b.mmh`);
    assert.equal(code, 0, output);
    const shown = visible(output);
    assert.match(shown, /stdin [\d.]+ MiB +[\d.]+ MB\/s +[\d.]+x/);
    assert.doesNotMatch(shown, /ETA|\d+% \[/);
    assert.match(shown, /stdin : [\d.]+% \(64\.0 MiB => .*stdout\)/);
  });

  test("compressing to standard output on the terminal is refused; to /dev/null it is not", () => {
    let r = underPty(`${mmhLine} -c -q in.txt`);
    assert.equal(r.code, 2, r.output);
    assert.match(r.output, /mmh: E_USAGE: standard output is a terminal/);
    r = underPty(`${mmhLine} -c -q in.txt > /dev/null`);
    assert.equal(r.code, 0, r.output);
    assert.equal(r.output, "");
  });

  test("no bar with -q, with --no-progress, or when standard error is not a terminal", () => {
    let r = underPty(`${mmhLine} compress in.txt -o c.mmh -f -q ${slow}`);
    assert.equal(r.code, 0, r.output);
    assert.equal(r.output, "", "-q prints nothing at all");

    r = underPty(`${mmhLine} compress in.txt -o c.mmh -f --no-progress ${slow}`);
    assert.equal(r.code, 0, r.output);
    assert.match(r.output, /^in\.txt : [\d.]+% \(64\.0 MiB => .*c\.mmh\) [^\r\n]*\r?\n$/);
    assert.ok(!r.output.includes(ESC), "no escape sequences");

    // Standard error redirected to a file (standard output still the terminal).
    r = underPty(`${mmhLine} compress in.txt -o c.mmh -f ${slow} 2> err.txt`);
    assert.equal(r.code, 0, r.output);
    const plain = readFileSync(join(dir, "err.txt"), "utf8");
    assert.match(plain, /^in\.txt : [\d.]+% \(64\.0 MiB => .*c\.mmh\) [^\r\n]*\n$/);
    assert.ok(!plain.includes(ESC), "no escape sequences");
    assert.equal(r.output, "");
  });
});
