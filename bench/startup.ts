/**
 * How long the mmh command takes to start: `mmh --version`, a 1 KiB round trip (`mmh -c`
 * of 1 KiB of a real weight file to standard output, then `mmh -d -c` of that back), and
 * `mmh -T 1 -c` / `mmh -d -T 1 -c` of 1 MiB of real-derived BF16 (bench/lib/tiled.ts, the
 * size of bench/results/speed.md's smallest CLI rows), against `node -e 0` and `zstd`
 * doing the same, every command once per round, interleaved, so a busy spell of the shared
 * machine falls on all of them alike. Whole process, wall clock; medians over rounds, each
 * command's median excess over `node -e 0`, and its median ratio to zstd's same operation.
 *
 * mmh runs as installed: bin/, dist/ and package.json copied into .bench-data/startup/
 * (no src/, so no source check), with Node's compile cache in a directory of its own,
 * filled by a first run; also with the cache off (NODE_DISABLE_COMPILE_CACHE=1), and from
 * the checkout (bin/mmh.js, which checks dist/ against src/ first). `--before DIR` adds
 * the same commands run from DIR (an installed copy of another build, for comparison), and
 * `--before-checkout DIR` from DIR/bin/mmh.js where DIR is a checkout of another commit with
 * its build (what a developer runs: it checks dist/ and the kernels against their sources).
 *
 * Then whether the compile cache slows the coding loops (as docs/ENGINE.md recorded it
 * once did): 256 MiB of real-derived BF16 (bench/lib/tiled.ts) compressed with -T 1 and
 * -T 2 and decompressed with -T 1, output discarded, with the cache off and with two
 * caches: one written by the 1 KiB runs above, one by a first 256 MiB compress.
 *
 * Then, with `--before DIR`, the fixed cost of coding 64 MiB of real-derived BF16 with one
 * thread (`mmh -T 1 -c` and `mmh -d -T 1 -c`, output to /dev/null), from this build and
 * DIR interleaved: the time from the process's start to its first byte of output (start-up,
 * and the first chunk coded) and from its last byte of output to the process's end, in
 * wall clock and in CPU time (process.cpuUsage of the whole process, read by a preloaded
 * script at the first and last write to standard output and at the exit event).
 *
 * Then, with `--before DIR`, CPU time (user + system, all threads, from /usr/bin/time) of
 * whole commands on 1 KiB and 1 MiB of the same real file and on 10 MiB of the data
 * directory's real files one after another: `--version`, `-c`, `-d -c`,
 * `verify` and `info`, run from the installed copy and from DIR, each with a compile cache
 * of its own, interleaved. On a loaded machine CPU time is the steadier figure: the wall
 * clock mostly measures the wait for a CPU.
 *
 *   npx node bench/startup.ts            needs `npm run build`; writes results/startup.md
 *   npx node bench/startup.ts --quick    5 rounds, no large files, writes nothing
 *   options: --rounds N (default 41), --hot-rounds N (default 7; 0 skips the large
 *   files, and keeps that section of an earlier report, marked as such), --cpu-rounds N
 *   (default 15; with --before), --fixed-rounds N (default 9; with --before), --before DIR,
 *   --before-checkout DIR, --data DIR, --out FILE
 */
import "./lib/help.ts";
import { spawnSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { codeLine, root, run, writeReport } from "./lib/commands.ts";
import {
  argValue,
  contentionNote,
  cpuWaitMicros,
  fmt,
  machineLines,
  median,
  spread,
  table,
  zstdCliVersion,
} from "./lib/report.ts";
import { tiledFile } from "./lib/tiled.ts";

const quick = process.argv.includes("--quick");
const rounds = Number(argValue("--rounds") ?? (quick ? 5 : 41));
const outFile = argValue("--out") ?? (quick ? undefined : join(root, "bench", "results", "startup.md"));
const dataDir = argValue("--data") ?? join(root, "..", "shared", "data");
const before = argValue("--before");
const beforeCheckout = argValue("--before-checkout");
const hotRounds = Number(argValue("--hot-rounds") ?? (quick ? 0 : 7));
const cpuRounds = Number(argValue("--cpu-rounds") ?? (quick ? 3 : 15));
const fixedRounds = Number(argValue("--fixed-rounds") ?? (quick ? 0 : 9));
const work = join(root, ".bench-data", "startup");
const HOT_TITLE = "## The compile cache and the coding loops";
const node = process.execPath;

if (!existsSync(join(root, "dist", "BUILD.json"))) {
  console.error("startup: run `npm run build` first");
  process.exit(1);
}

// The package as installed: no src/, so bin/entry.js runs dist/ without checking it.
rmSync(work, { recursive: true, force: true });
const installed = join(work, "mmh");
mkdirSync(installed, { recursive: true });
for (const name of ["bin", "dist", "package.json"])
  cpSync(join(root, name), join(installed, name), { recursive: true });
symlinkSync(join(root, "node_modules"), join(installed, "node_modules"), "dir");
const cacheHome = join(work, "cache");
mkdirSync(cacheHome, { mode: 0o700 });

// 1 KiB from the middle of a real weight file.
const real = readdirSync(dataDir)
  .filter((n) => n.endsWith(".safetensors"))
  .sort()[0];
const bytes = readFileSync(join(dataDir, real));
const input = join(work, "1k.bin");
writeFileSync(input, bytes.subarray(bytes.length >> 1, (bytes.length >> 1) + 1024));
// 1 MiB from the middle of it.
const inputMiB = join(work, "1m.bin");
const mib = Math.min(1 << 20, bytes.length);
const mibAt = ((bytes.length - mib) >> 1) & ~7;
writeFileSync(inputMiB, bytes.subarray(mibAt, mibAt + mib));
// 10 MiB: the real weight files of the data directory one after another, repeated as
// needed (whole files, so every part is a real file's bytes).
const input10 = join(work, "10m.bin");
{
  const files = readdirSync(dataDir)
    .filter((n) => n.endsWith(".safetensors"))
    .sort()
    .map((n) => readFileSync(join(dataDir, n)));
  const parts: Buffer[] = [];
  for (let total = 0, i = 0; total < 10 << 20; i++) {
    parts.push(files[i % files.length]);
    total += files[i % files.length].length;
  }
  writeFileSync(input10, Buffer.concat(parts).subarray(0, 10 << 20));
}

// 1 MiB of real-derived BF16 (a safetensors file, as bench/speed.ts's smallest rows).
const bf16MiB = tiledFile(dataDir, work, "BF16", 1 << 20);
const bf16Original = readFileSync(bf16MiB);

interface Command {
  name: string;
  /** Runs once; returns its wall-clock milliseconds and, for a node process, its CPU milliseconds. */
  run(): Run;
}

interface Run {
  ms: number;
  cpu?: number;
}

// A script preloaded into every node process of the rounds: the process's CPU time (user +
// system, all threads, process.cpuUsage) at its exit event, written to file descriptor 3.
const cpuProbe = join(work, "cpu-probe.cjs");
writeFileSync(
  cpuProbe,
  `const { writeSync } = require("node:fs");
process.on("exit", () => { const u = process.cpuUsage(); try { writeSync(3, "CPU " + (u.user + u.system) / 1000 + "\\n"); } catch {} });
`,
);

/** Runs `args` once (node with cpuProbe preloaded); `check` sees its standard output. */
function timed(args: string[], env: NodeJS.ProcessEnv, check?: (out: Buffer) => void): Run {
  const probed = args[0] === node;
  const argv = probed ? ["-r", cpuProbe, ...args.slice(1)] : args.slice(1);
  const started = performance.now();
  const r = spawnSync(args[0], argv, { env, maxBuffer: 1 << 24, stdio: ["ignore", "pipe", "pipe", "pipe"] });
  const ms = performance.now() - started;
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${args.join(" ")} failed (${r.status}): ${r.stderr}`);
  check?.(r.stdout);
  const cpu = probed ? /CPU ([\d.]+)/.exec(String(r.output[3]))?.[1] : undefined;
  if (probed && cpu === undefined) throw new Error(`${args.join(" ")}: no CPU time reported`);
  return { ms, cpu: cpu === undefined ? undefined : Number(cpu) };
}

const withCache: NodeJS.ProcessEnv = { ...process.env, XDG_CACHE_HOME: cacheHome };
delete withCache.NODE_DISABLE_COMPILE_CACHE;
delete withCache.NODE_COMPILE_CACHE;
const noCache = { ...withCache, NODE_DISABLE_COMPILE_CACHE: "1" };
const original = readFileSync(input);

/** mmh --version, the 1 KiB round trip's two halves and 1 MiB each way, for one way of running mmh. */
function mmhCommands(label: string, bin: string, env: NodeJS.ProcessEnv): Command[] {
  const packed = join(work, `1k-${label.replace(/\W+/g, "-")}.mmh`);
  const packedMiB = join(work, `1m-${label.replace(/\W+/g, "-")}.mmh`);
  return [
    {
      name: `mmh --version (${label})`,
      run: () => timed([node, bin, "--version"], env, (out) => assertMatch(out, /^mmh \d/)),
    },
    {
      name: `mmh -c 1 KiB (${label})`,
      run: () => timed([node, bin, "-c", "-q", input], env, (out) => writeFileSync(packed, out)),
    },
    {
      name: `mmh -d -c 1 KiB (${label})`,
      run: () => timed([node, bin, "-d", "-c", "-q", packed], env, assertSame),
    },
    {
      name: `mmh -T 1 -c 1 MiB (${label})`,
      run: () =>
        timed([node, bin, "-T", "1", "-c", "-q", bf16MiB], env, (out) => writeFileSync(packedMiB, out)),
    },
    {
      name: `mmh -d -T 1 -c 1 MiB (${label})`,
      run: () =>
        timed([node, bin, "-d", "-T", "1", "-c", "-q", packedMiB], env, (out) => {
          if (!out.equals(bf16Original)) throw new Error("the 1 MiB round trip did not restore the input");
        }),
    },
  ];
}

function assertMatch(out: Buffer, pattern: RegExp): void {
  if (!pattern.test(out.toString())) throw new Error(`unexpected output: ${out}`);
}
function assertSame(out: Buffer): void {
  if (!out.equals(original)) throw new Error("the round trip did not restore the input");
}

const zstdPacked = join(work, "1k.zst");
const zstdPackedMiB = join(work, "1m.zst");
const commands: Command[] = [
  { name: "node -e 0", run: () => timed([node, "-e", "0"], withCache) },
  ...mmhCommands("installed", join(installed, "bin", "mmh.js"), withCache),
  ...mmhCommands("installed, no compile cache", join(installed, "bin", "mmh.js"), noCache),
  ...mmhCommands("checkout", join(root, "bin", "mmh.js"), withCache),
  ...(before
    ? mmhCommands("before", join(before, "bin", "mmh.js"), {
        ...withCache,
        XDG_CACHE_HOME: join(work, "cache-before-main"),
      })
    : []),
  ...(beforeCheckout
    ? mmhCommands("checkout before", join(beforeCheckout, "bin", "mmh.js"), {
        ...withCache,
        XDG_CACHE_HOME: join(work, "cache-checkout-before"),
      })
    : []),
  {
    name: "zstd -c 1 KiB",
    run: () => timed(["zstd", "-c", "-q", input], withCache, (out) => writeFileSync(zstdPacked, out)),
  },
  {
    name: "zstd -d -c 1 KiB",
    run: () => timed(["zstd", "-d", "-c", "-q", zstdPacked], withCache, assertSame),
  },
  {
    name: "zstd -3 --single-thread -c 1 MiB",
    run: () =>
      timed(["zstd", "-3", "--single-thread", "-c", "-q", bf16MiB], withCache, (out) =>
        writeFileSync(zstdPackedMiB, out),
      ),
  },
  {
    name: "zstd -d -c 1 MiB",
    run: () =>
      timed(["zstd", "-d", "-c", "-q", zstdPackedMiB], withCache, (out) => {
        if (!out.equals(bf16Original)) throw new Error("zstd's 1 MiB round trip did not restore the input");
      }),
  },
];

// A first round fills the compile cache and the page cache; it is not counted.
for (const c of commands) c.run();
const times = new Map<string, number[]>(commands.map((c) => [c.name, []]));
const cpus = new Map<string, number[]>(commands.map((c) => [c.name, []]));
const loads: number[] = [];
const waitStart = cpuWaitMicros();
const started = performance.now();
for (let round = 0; round < rounds; round++) {
  if (round % 10 === 0) loads.push(loadavg()[0]);
  const order = round % 2 === 0 ? commands : [...commands].reverse();
  for (const c of order) {
    const r = c.run();
    times.get(c.name)!.push(r.ms);
    if (r.cpu !== undefined) cpus.get(c.name)!.push(r.cpu);
  }
}
const elapsed = performance.now() - started;

const baseline = times.get("node -e 0")!;
const excess = (name: string) => median(times.get(name)!.map((ms, i) => ms - baseline[i]));
/** The zstd command doing what `name` does, for the "x zstd" column. */
const zstdOf = (name: string): string | undefined =>
  name.startsWith("zstd")
    ? undefined
    : name.includes("-d -c 1 KiB")
      ? "zstd -d -c 1 KiB"
      : name.includes("-c 1 KiB")
        ? "zstd -c 1 KiB"
        : name.includes("-d -T 1 -c 1 MiB")
          ? "zstd -d -c 1 MiB"
          : name.includes("-T 1 -c 1 MiB")
            ? "zstd -3 --single-thread -c 1 MiB"
            : undefined;
const ratioTo = (name: string, other: string, of = times) =>
  median(of.get(name)!.map((ms, i) => ms / of.get(other)![i]));
const baselineCpu = cpus.get("node -e 0")!;
const cpuExcess = (name: string) => median(cpus.get(name)!.map((ms, i) => ms - baselineCpu[i]));
const rows = commands.map((c) => {
  const t = times.get(c.name)!;
  const cpu = cpus.get(c.name)!;
  const z = zstdOf(c.name);
  return [
    c.name,
    fmt(median(t), 1),
    `${fmt(spread(t) * 100, 0)}%`,
    c.name === "node -e 0" ? "" : fmt(excess(c.name), 1),
    fmt(median(t.map((ms, i) => ms / baseline[i])), 2),
    z ? fmt(1 / ratioTo(c.name, z), 2) : "",
    cpu.length > 0 ? fmt(median(cpu), 1) : "",
    cpu.length > 0 && c.name !== "node -e 0" ? fmt(cpuExcess(c.name), 1) : "",
  ];
});
/** This build against the build before, command by command: median per-round ratios. */
const pairs: [string, string][] = [
  ...(before ? ([["installed", "before"]] as [string, string][]) : []),
  ...(beforeCheckout ? ([["checkout", "checkout before"]] as [string, string][]) : []),
];
const ops = ["mmh --version", "mmh -c 1 KiB", "mmh -d -c 1 KiB", "mmh -T 1 -c 1 MiB", "mmh -d -T 1 -c 1 MiB"];
const beforeRows = pairs.flatMap(([now, was]) =>
  ops.map((op) => {
    const a = `${op} (${now})`;
    const b = `${op} (${was})`;
    return [
      `${op}, ${now}`,
      fmt(median(times.get(b)!), 1),
      fmt(median(times.get(a)!), 1),
      fmt(ratioTo(a, b), 2),
      fmt(cpuExcess(b), 1),
      fmt(cpuExcess(a), 1),
      fmt(ratioTo(a, b, cpus), 2),
    ];
  }),
);
const trip = (label: string) =>
  median(
    times.get(`mmh -c 1 KiB (${label})`)!.map((ms, i) => ms + times.get(`mmh -d -c 1 KiB (${label})`)![i]),
  );
const zstdTrip = median(times.get("zstd -c 1 KiB")!.map((ms, i) => ms + times.get("zstd -d -c 1 KiB")![i]));
const nodeMs = median(baseline);
const versionMs = median(times.get("mmh --version (installed)")!);
const labels = [
  "installed",
  "installed, no compile cache",
  "checkout",
  ...(before ? ["before"] : []),
  ...(beforeCheckout ? ["checkout before"] : []),
];

const lines = [
  "# Start-up: `mmh --version`, a 1 KiB round trip and 1 MiB each way",
  "",
  // The options as given, DIR for the --before copy's path.
  ...machineLines(
    [
      "npx node bench/startup.ts",
      ...process.argv.slice(2).map((a) => (a === before ? "DIR" : a === beforeCheckout ? "CHECKOUT" : a)),
    ].join(" "),
  ),
  codeLine(),
  `- zstd CLI: ${zstdCliVersion()}`,
  `- Load average (1 min) every 10 rounds: ${loads.map((l) => fmt(l, 1)).join(", ")}`,
  `- ${contentionNote(waitStart, elapsed)}`,
  `- ${rounds} rounds after one uncounted round; every command once per round, the order reversed every other round.`,
  "",
  `Inputs: 1 KiB from the middle of ${real} (../shared/data); 1 MiB of real-derived BF16 (the F32 tensors of ../shared/data rounded to BF16 and tiled, one safetensors file). Wall-clock ms per process, median over rounds, and the interquartile range over the median; "over node" is the median of each round's difference from \`node -e 0\`, "x node" the median ratio, and "x zstd" zstd's time over mmh's for the same operation and input (above 1: mmh faster), median of per-round ratios. "CPU" is a node process's CPU time (user + system, all threads) at its exit event, from process.cpuUsage() in a script preloaded into every node process (\`node -e 0\` included), median over rounds, and its median excess over \`node -e 0\`'s in the same round: on a loaded machine the steadier figure. Standard output is a pipe to this script.${before || beforeCheckout ? " Every mmh variant with a compile cache has one of its own." : ""}`,
  "",
  table(
    ["command", "median ms", "IQR", "over node ms", "x node", "x zstd", "CPU ms", "CPU over node ms"],
    rows,
  ),
  "",
  ...(beforeRows.length > 0
    ? [
        "Against the build before (`before`: an installed copy of it; `checkout before`: a checkout of it with its build, run from its bin/mmh.js), same rounds. Ratios are median per-round ratios of this build's time to the one before's (below 1: faster), the CPU ratio of whole processes; the CPU columns are a process's CPU time beyond `node -e 0`'s in the same round (medians):",
        "",
        table(
          [
            "command",
            "before ms",
            "this build ms",
            "wall ratio",
            "before CPU over node ms",
            "this build CPU over node ms",
            "CPU ratio",
          ],
          beforeRows,
        ),
        "",
      ]
    : []),
  "Round trip (`mmh -c` then `mmh -d -c`, two processes; median of the per-round sums):",
  "",
  table(
    ["mmh", "round trip ms", "x zstd round trip", "x two `node -e 0`"],
    [
      ...labels.map((label) => [
        label,
        fmt(trip(label), 1),
        fmt(trip(label) / zstdTrip, 2),
        fmt(trip(label) / (2 * nodeMs), 2),
      ]),
      ["zstd", fmt(zstdTrip, 1), "1.00", ""],
    ],
  ),
  "",
  `Target: \`mmh --version\` <= 70 ms where \`node -e 0\` takes about 32 ms. Here, installed: ${fmt(versionMs, 1)} ms against ${fmt(nodeMs, 1)} ms for \`node -e 0\` (${fmt(excess("mmh --version (installed)"), 1)} ms more); scaled to a 32 ms node: ${fmt((versionMs / nodeMs) * 32, 0)} ms.`,
  "",
];
if (before && cpuRounds > 0) lines.push(...cpuTimes());
if (before && fixedRounds > 0) lines.push(...fixedCosts());
if (hotRounds > 0) lines.push(...hotLoops());
else if (outFile && existsSync(outFile)) {
  // Keep the large-file section of the report this run did not measure again, marked so.
  const earlier = readFileSync(outFile, "utf8");
  const at = earlier.indexOf(HOT_TITLE);
  if (at >= 0) {
    const section = earlier.slice(at + HOT_TITLE.length).replace(/^ \(from an earlier run[^\n]*\)/, "");
    lines.push(`${HOT_TITLE} (from an earlier run, not measured again by this one)${section}`.trimEnd(), "");
  }
}
console.log(lines.join("\n"));
writeReport(outFile, lines);

/**
 * CPU time of whole commands from the installed copy and from the `--before` copy, each
 * with a compile cache of its own (filled by an uncounted first run), interleaved.
 */
function cpuTimes(): string[] {
  const beforeCache = join(work, "cache-before");
  mkdirSync(beforeCache, { mode: 0o700 });
  const variants: [string, string, NodeJS.ProcessEnv][] = [
    ["this build", join(installed, "bin", "mmh.js"), withCache],
    ["before", join(before!, "bin", "mmh.js"), { ...withCache, XDG_CACHE_HOME: beforeCache }],
  ];
  const packed = (file: string) => `${file}.mmh`;
  for (const file of [input, inputMiB, input10]) run(node, [variants[0][1], "-q", "-k", "-f", file]);
  const ops: [string, string[]][] = [["--version", ["--version"]]];
  for (const [size, file] of [
    ["1 KiB", input],
    ["1 MiB", inputMiB],
    ["10 MiB", input10],
  ] as const) {
    ops.push(
      [`-c ${size}`, ["-c", "-q", file]],
      [`-d -c ${size}`, ["-d", "-c", "-q", packed(file)]],
      [`verify ${size}`, ["verify", "-q", packed(file)]],
      [`info ${size}`, ["info", packed(file)]],
    );
  }
  const cpuOf = (args: string[], env: NodeJS.ProcessEnv): number => {
    const r = spawnSync(
      "/usr/bin/time",
      ["-f", "TIME %U %S", "sh", "-c", `exec "$0" "$@" > /dev/null`, ...args],
      {
        env,
        encoding: "utf8",
      },
    );
    const t = /TIME ([\d.]+) ([\d.]+)/.exec(r.stderr);
    if (r.status !== 0 || !t) throw new Error(`${args.join(" ")} failed: ${r.stderr}`);
    return (Number(t[1]) + Number(t[2])) * 1000;
  };
  for (const [, args] of ops) for (const [, bin, env] of variants) cpuOf([node, bin, ...args], env);
  const cpu = new Map<string, number[]>();
  const nodeCpu: number[] = [];
  const waitAt = cpuWaitMicros();
  const startedAt = performance.now();
  for (let round = 0; round < cpuRounds; round++) {
    nodeCpu.push(cpuOf([node, "-e", "0"], withCache));
    for (const [op, args] of ops) {
      const order = round % 2 === 0 ? variants : [...variants].reverse();
      for (const [label, bin, env] of order) {
        const key = `${op}|${label}`;
        cpu.set(key, [...(cpu.get(key) ?? []), cpuOf([node, bin, ...args], env)]);
      }
    }
  }
  const elapsed = performance.now() - startedAt;
  const mean = (v: readonly number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  const rows = ops.map(([op]) => {
    const now = cpu.get(`${op}|this build`)!;
    const was = cpu.get(`${op}|before`)!;
    return [`mmh ${op}`, fmt(mean(was), 1), fmt(mean(now), 1), fmt(mean(now) / mean(was), 3)];
  });
  return [
    "## CPU time of whole commands, against the build before",
    "",
    `Input: 1 KiB and 1 MiB from the middle of ${real}, and 10 MiB of the .safetensors files of ../shared/data one after another (repeated as needed). CPU ms (user + system, all threads, /usr/bin/time, 10 ms resolution) per process, mean of ${cpuRounds} rounds, both builds installed with a compile cache each, interleaved (order reversed every other round); output discarded. \`node -e 0\` took ${fmt(mean(nodeCpu), 1)} ms of CPU in the same rounds.`,
    `- ${contentionNote(waitAt, elapsed)}`,
    "",
    table(["command", "before CPU ms", "this build CPU ms", "ratio"], rows),
    "",
  ];
}

/** The large-file section: the coding loops' speed with and without the compile cache. */
function hotLoops(): string[] {
  const dataDirHot = join(root, ".bench-data", "threads-default");
  mkdirSync(dataDirHot, { recursive: true });
  const file = tiledFile(dataDir, dataDirHot, "BF16", 256 << 20);
  const bin = join(installed, "bin", "mmh.js");
  const packedBig = join(work, "big.mmh");
  run(node, [bin, file, "-o", packedBig, "-q", "-T", "1"]);
  // A cache written by a large compress first (the 1 KiB rounds wrote the other one).
  const bigCache = join(work, "cache-big");
  mkdirSync(bigCache, { mode: 0o700 });
  const envs: [string, NodeJS.ProcessEnv][] = [
    ["no cache", noCache],
    ["cache written by 1 KiB runs", withCache],
    ["cache written by a 256 MiB run", { ...withCache, XDG_CACHE_HOME: bigCache }],
    ...(before ? ([["before (no cache)", noCache]] as [string, NodeJS.ProcessEnv][]) : []),
  ];
  const binOf = (label: string) => (label.startsWith("before") ? join(before!, "bin", "mmh.js") : bin);
  spawnSync("sh", ["-c", `exec "$0" "$@" > /dev/null`, node, bin, file, "-c", "-q", "-T", "1"], {
    env: envs[2][1],
  });
  const ops: [string, string[]][] = [
    ["compress -T 1", [file, "-c", "-q", "-T", "1"]],
    ["compress -T 2", [file, "-c", "-q", "-T", "2"]],
    ["decompress -T 1", ["-d", packedBig, "-c", "-q", "-T", "1"]],
  ];
  const hot = new Map<string, number[]>();
  const cpu = new Map<string, number[]>();
  const waitAt = cpuWaitMicros();
  const startedAt = performance.now();
  for (let round = 0; round < hotRounds; round++)
    for (const [op, args] of ops) {
      const order = round % 2 === 0 ? envs : [...envs].reverse();
      for (const [label, env] of order) {
        const r = spawnSync(
          "/usr/bin/time",
          ["-f", "TIME %e %U %S", "sh", "-c", `exec "$0" "$@" > /dev/null`, node, binOf(label), ...args],
          { env, encoding: "utf8" },
        );
        const times = /TIME ([\d.]+) ([\d.]+) ([\d.]+)/.exec(r.stderr);
        if (r.status !== 0 || !times) throw new Error(`mmh ${args.join(" ")} failed: ${r.stderr}`);
        const key = `${op}|${label}`;
        hot.set(key, [...(hot.get(key) ?? []), Number(times[1]) * 1000]);
        cpu.set(key, [...(cpu.get(key) ?? []), (Number(times[2]) + Number(times[3])) * 1000]);
      }
    }
  const hotElapsed = performance.now() - startedAt;
  const rowsOf = (times: Map<string, number[]>, what: string) =>
    ops.map(([op]) => {
      const base = times.get(`${op}|no cache`)!;
      return [
        `${op}, ${what}`,
        ...envs.map(([label]) => {
          const t = times.get(`${op}|${label}`)!;
          const ratio = median(t.map((ms, i) => ms / base[i]));
          return label === "no cache" ? fmt(median(t), 0) : `${fmt(median(t), 0)} (${fmt(ratio, 3)})`;
        }),
      ];
    });
  const rowsHot = [...rowsOf(hot, "wall ms"), ...rowsOf(cpu, "CPU ms")];
  return [
    HOT_TITLE,
    "",
    `256 MiB of real-derived BF16 (the F32 tensors of ../shared/data rounded to BF16 and tiled), output discarded (\`mmh FILE -c -q -T N > /dev/null\`, \`mmh -d FILE.mmh -c -q -T 1 > /dev/null\`), installed copy. ${hotRounds} rounds, all variants of an operation back to back in every round, order reversed every other round; wall-clock ms and CPU ms (user + system, all threads, from /usr/bin/time), medians, and in brackets the median per-round ratio to the run without the cache (above 1: slower). On a loaded machine the wall clock mostly measures the wait for a CPU; CPU time is the steadier figure of the code's own speed.`,
    `- ${contentionNote(waitAt, hotElapsed)}`,
    "",
    table(["operation", ...envs.map(([label]) => label)], rowsHot),
    "",
  ];
}

/**
 * The fixed cost of coding 64 MiB with one thread, this build against `--before`, read by a
 * script preloaded with -r that notes the clock and process.cpuUsage() at the first and
 * the last write to file descriptor 1 (standard output is /dev/null, which Node writes with
 * fs.writeSync) and at the exit event; the wall clock around the whole process comes from
 * here. `node` writing one byte gives Node's own start and exit in the same rounds.
 */
function fixedCosts(): string[] {
  const dir = join(root, ".bench-data", "threads-default");
  mkdirSync(dir, { recursive: true });
  const file = tiledFile(dataDir, dir, "BF16", 64 << 20);
  const packed = join(work, "fixed-64m.mmh");
  run(node, [join(installed, "bin", "mmh.js"), file, "-o", packed, "-q", "-f", "-T", "1"]);
  const marks = join(work, "marks.cjs");
  writeFileSync(
    marks,
    `const fs = require("node:fs");
const write = fs.writeSync;
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
let first, last, firstCpu, lastCpu;
fs.writeSync = function (fd, ...rest) {
  if (fd === 1) { last = performance.now(); lastCpu = cpu(); if (first === undefined) { first = last; firstCpu = lastCpu; } }
  return write.call(this, fd, ...rest);
};
process.on("exit", () => write(2, \`MARKS \${first} \${last} \${firstCpu} \${lastCpu} \${cpu()}\\n\`));
`,
  );
  const oneByte = join(work, "one-byte.js");
  writeFileSync(oneByte, 'process.stdout.write("x");\n');
  const beforeCache = join(work, "cache-before");
  mkdirSync(beforeCache, { recursive: true, mode: 0o700 });
  const variants: [string, string[], NodeJS.ProcessEnv][] = [
    ["this build", [join(installed, "bin", "mmh.js")], withCache],
    ["before", [join(before!, "bin", "mmh.js")], { ...withCache, XDG_CACHE_HOME: beforeCache }],
  ];
  const ops: [string, string[]][] = [
    ["mmh -T 1 -c, 64 MiB", [file, "-c", "-q", "-T", "1"]],
    ["mmh -d -T 1 -c, 64 MiB", ["-d", packed, "-c", "-q", "-T", "1"]],
  ];
  type Marks = { first: number; after: number; firstCpu: number; afterCpu: number; wall: number };
  const once = (args: string[], env: NodeJS.ProcessEnv): Marks => {
    const started = performance.now();
    const r = spawnSync("sh", ["-c", `exec "$0" "$@" > /dev/null`, node, "-r", marks, ...args], {
      env,
      encoding: "utf8",
    });
    const wall = performance.now() - started;
    const m = /MARKS ([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+)/.exec(r.stderr);
    if (r.status !== 0 || !m) throw new Error(`${args.join(" ")} failed: ${r.stderr}`);
    const [first, last, firstCpu, lastCpu, exitCpu] = m.slice(1).map(Number);
    return { first, after: wall - last, firstCpu, afterCpu: exitCpu - lastCpu, wall };
  };
  for (const [, args] of ops) for (const [, bin, env] of variants) once([...bin, ...args], env);
  const got = new Map<string, Marks[]>();
  const nodeMarks: Marks[] = [];
  const waitAt = cpuWaitMicros();
  const startedAt = performance.now();
  for (let round = 0; round < fixedRounds; round++) {
    nodeMarks.push(once([oneByte], withCache));
    for (const [op, args] of ops) {
      const order = round % 2 === 0 ? variants : [...variants].reverse();
      for (const [label, bin, env] of order) {
        const key = `${op}|${label}`;
        got.set(key, [...(got.get(key) ?? []), once([...bin, ...args], env)]);
      }
    }
  }
  const elapsed = performance.now() - startedAt;
  const keys: [keyof Marks, string][] = [
    ["first", "wall ms to first output"],
    ["after", "wall ms after last output"],
    ["firstCpu", "CPU ms to first output"],
    ["afterCpu", "CPU ms from last output to exit event"],
    ["wall", "wall ms, whole process"],
  ];
  const rows: string[][] = [];
  for (const [op] of ops) {
    const now = got.get(`${op}|this build`)!;
    const was = got.get(`${op}|before`)!;
    for (const [k, name] of keys)
      rows.push([
        op,
        name,
        fmt(median(was.map((m) => m[k])), 1),
        fmt(median(now.map((m) => m[k])), 1),
        fmt(median(now.map((m, i) => m[k] / was[i][k])), 2),
      ]);
  }
  return [
    "## Fixed cost of coding 64 MiB with one thread, against the build before",
    "",
    `Input: 64 MiB of real-derived BF16 (the F32 tensors of ../shared/data rounded to BF16 and tiled); output to /dev/null. Times from the process's start (performance.timeOrigin) to its first write to standard output (start-up and the first chunk coded, and for -c the container's header), and from its last write to the process's end (the wall clock here) or to its exit event (CPU). CPU: process.cpuUsage(), all threads. Medians of ${fixedRounds} rounds, both builds installed with a compile cache each, interleaved (order reversed every other round); "ratio" is the median per-round ratio. Node alone (\`node\` writing one byte) in the same rounds: ${fmt(median(nodeMarks.map((m) => m.first)), 1)} ms to its write, ${fmt(median(nodeMarks.map((m) => m.after)), 1)} ms after it, ${fmt(median(nodeMarks.map((m) => m.firstCpu)), 1)} ms of CPU to it.`,
    `- ${contentionNote(waitAt, elapsed)}`,
    "",
    table(["command", "measure", "before", "this build", "ratio"], rows),
    "",
  ];
}
