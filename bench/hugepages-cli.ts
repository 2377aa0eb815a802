/**
 * The `mmh` CLI with and without transparent huge pages for malloc's large blocks: the same
 * command run with glibc's default malloc and with `GLIBC_TUNABLES=glibc.malloc.hugetlb=1`
 * set from outside (no restart: the gain a restart in place would have to beat), each
 * run under `/usr/bin/time` for its minor page faults, user and system CPU time and
 * elapsed time. The two settings alternate (the default first in every other round); the
 * report gives the medians over the rounds, and the cost of a restart: `node -e 0`'s own
 * elapsed and CPU time, measured the same way. Output goes to /dev/null. Linux with glibc
 * 2.35 or later, /usr/bin/time (GNU time).
 *
 *   npx node bench/hugepages-cli.ts              (writes bench/results/hugepages-cli.md)
 *   npx node bench/hugepages-cli.ts --quick      2 rounds, writes nothing
 * Options: --runs N (rounds, 5), --small FILE (a 64 MiB .safetensors, default
 * /tmp/prof/BF16.safetensors, as bench/speed.ts makes it), --big FILE (a 1 GiB .safetensors; its .mmh beside it is
 * made if missing), --out FILE
 */
import "./lib/help.ts";
import { spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { codeLine, root, writeReport } from "./lib/commands.ts";
import { argValue, contentionNote, cpuWaitMicros, fmt, machineLines, median, table } from "./lib/report.ts";

const quick = process.argv.includes("--quick");
const runs = Number(argValue("--runs") ?? (quick ? 2 : 5));
const outFile = argValue("--out") ?? (quick ? undefined : join(root, "bench", "results", "hugepages-cli.md"));
const BIN = join(root, "bin", "mmh.js");
const TUNED = "glibc.malloc.hugetlb=1";

interface Sample {
  faults: number;
  user: number;
  sys: number;
  elapsed: number;
}

/** One run of node with `args` under /usr/bin/time, standard output to /dev/null. */
function timed(args: string[], tunables: string | undefined): Sample {
  const env = { ...process.env };
  delete env.GLIBC_TUNABLES;
  if (tunables !== undefined) env.GLIBC_TUNABLES = tunables;
  const devNull = openSync("/dev/null", "w");
  try {
    const result = spawnSync("/usr/bin/time", ["-f", "TIME %R %U %S %e", process.execPath, ...args], {
      env,
      stdio: ["ignore", devNull, "pipe"],
      maxBuffer: 1 << 24,
    });
    const stderr = result.stderr.toString();
    const match = /TIME (\d+) ([\d.]+) ([\d.]+) ([\d.]+)/.exec(stderr);
    if (result.status !== 0 || !match) throw new Error(`${args.join(" ")} failed: ${stderr}`);
    return {
      faults: Number(match[1]),
      user: Number(match[2]),
      sys: Number(match[3]),
      elapsed: Number(match[4]),
    };
  } finally {
    closeSync(devNull);
  }
}

function main(): void {
  const started = performance.now();
  const waitAtStart = cpuWaitMicros();
  const work = join(tmpdir(), "mmh-hugepages-cli");
  mkdirSync(work, { recursive: true });
  const inputs = [argValue("--small") ?? "/tmp/prof/BF16.safetensors"];
  const big = argValue("--big") ?? "/tmp/thrdec/BF16-1g.safetensors";
  if (existsSync(big)) inputs.push(big);
  const cases: { label: string; args: string[] }[] = [
    { label: "node -e 0 (a restart's start)", args: ["-e", "0"] },
  ];
  for (const input of inputs) {
    const name = input.split("/").pop()!;
    const packed = join(work, `${name}.mmh`);
    if (!existsSync(packed)) {
      const made = spawnSync(process.execPath, [BIN, "-o", packed, input], { stdio: "inherit" });
      if (made.status !== 0) throw new Error(`could not make ${packed}`);
    }
    for (const threads of [["-T", "1"], []]) {
      const t = threads.length ? " -T 1" : "";
      cases.push({ label: `mmh -c${t} ${name}`, args: [BIN, "-c", ...threads, input] });
      cases.push({ label: `mmh -d -c${t} ${name}.mmh`, args: [BIN, "-d", "-c", ...threads, packed] });
    }
  }
  const samples = cases.map(() => ({ plain: [] as Sample[], tuned: [] as Sample[] }));
  for (let round = 0; round < runs; round++) {
    cases.forEach((c, i) => {
      const order = round % 2 === 0 ? [undefined, TUNED] : [TUNED, undefined];
      for (const tunables of order) {
        const sample = timed(c.args, tunables);
        (tunables === undefined ? samples[i].plain : samples[i].tuned).push(sample);
      }
      console.log(`round ${round + 1}: ${c.label}`);
    });
  }
  const med = (list: Sample[], key: keyof Sample) => median(list.map((s) => s[key]));
  const rows = cases.map((c, i) => {
    const { plain, tuned } = samples[i];
    const cpu = (list: Sample[]) => median(list.map((s) => s.user + s.sys));
    return [
      c.label,
      `${fmt(med(plain, "faults"))} / ${fmt(med(tuned, "faults"))}`,
      `${fmt(med(plain, "sys"), 2)} / ${fmt(med(tuned, "sys"), 2)}`,
      `${fmt(cpu(plain), 2)} / ${fmt(cpu(tuned), 2)}`,
      `${fmt(cpu(plain) - cpu(tuned), 2)}`,
      `${fmt(med(plain, "elapsed"), 2)} / ${fmt(med(tuned, "elapsed"), 2)}`,
    ];
  });
  const elapsed = performance.now() - started;
  const report = table(
    ["command", "minor faults", "system CPU s", "CPU s", "CPU saved s", "elapsed s"],
    rows,
  );
  console.log(report);
  writeReport(outFile, [
    "# The `mmh` CLI with transparent huge pages for malloc's blocks (GLIBC_TUNABLES set from outside)",
    "",
    ...machineLines(
      `npx node bench/hugepages-cli.ts${quick ? " --quick" : ""}${argValue("--runs") ? ` --runs ${runs}` : ""}`,
    ),
    codeLine(),
    `- Took ${fmt(elapsed / 1000)} s. ${contentionNote(waitAtStart, elapsed)}`,
    `- Each command ${runs} times with glibc's default malloc and ${runs} times with \`GLIBC_TUNABLES=${TUNED}\`, alternating; medians of /usr/bin/time's minor page faults, system CPU, user + system CPU and elapsed seconds (default / tuned). Output to /dev/null.`,
    "",
    report,
    "",
  ]);
}

main();
