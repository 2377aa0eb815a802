/**
 * Where the CPU time of a pool goes: why -T 2 is not twice as fast as -T 1.
 *
 * 1. HIER alone in worker threads: each of 1 and 2 workers encodes (then decodes) 512 KiB
 *    chunks of generated BF16 weights, held in its own memory, for a fixed time; MB/s per
 *    worker. This is how well the codec itself scales on this machine.
 * 2. The CLI: `node bin/mmh.js FILE -c -q -T N > /dev/null` (and `-d`) for N = 1 and 2,
 *    with the CPU time of every thread of the process read from /proc/PID/task/TID/stat
 *    every 20 ms (Linux only); the last reading of each thread is reported, by name.
 *
 *   npx node bench/threads.ts              1 GiB generated input, writes results/threads.md
 *   npx node bench/threads.ts --quick      128 MiB, 1 s per codec run, writes nothing
 *   options: --file FILE (a safetensors file to use instead), --seconds N, --out FILE
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { hierDecode, hierEncode } from "../src/codecs/hier/hier.ts";
import { generate } from "../src/tools/gen.ts";
import { argValue, fmt, machineLines, sizeLabel, table } from "./lib/report.ts";

const CHUNK = 512 << 10;

interface CodecJob {
  op: "encode" | "decode";
  seconds: number;
  seed: number;
}

/** In a worker: code chunks of its own data for `seconds`; posts MB/s. */
function codecWorker(job: CodecJob): number {
  const data = generate({ kind: "safetensors", size: 64 << 20, dtype: "BF16", seed: job.seed });
  const chunks: Uint8Array[] = [];
  for (let at = 1 << 20; at + CHUNK <= data.length; at += CHUNK)
    chunks.push(new Uint8Array(data.subarray(at, at + CHUNK)));
  const payloads = chunks.map((c) => hierEncode(c, { dtype: "BF16" }).payload.slice());
  const out = new Uint8Array(CHUNK);
  const run = (k: number) => {
    const i = k % chunks.length;
    if (job.op === "encode") hierEncode(chunks[i], { dtype: "BF16" });
    else hierDecode(payloads[i], CHUNK, out);
  };
  for (let k = 0; k < 100; k++) run(k);
  const started = performance.now();
  let k = 0;
  while (performance.now() - started < job.seconds * 1000) run(k++);
  return (k * CHUNK) / 1e6 / ((performance.now() - started) / 1000);
}

if (!isMainThread) {
  parentPort?.postMessage(codecWorker(workerData as CodecJob));
} else {
  process.exitCode = await main();
}

async function codecScaling(op: CodecJob["op"], workers: number, seconds: number): Promise<number[]> {
  const jobs = Array.from({ length: workers }, (_, i) => {
    const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { op, seconds, seed: 1 + i } });
    return new Promise<number>((resolve, reject) => {
      worker.once("message", resolve);
      worker.once("error", reject);
    }).finally(() => worker.terminate());
  });
  return Promise.all(jobs);
}

/** CPU seconds of each thread of a process, summed by thread name, at its last reading. */
async function threadCpu(
  command: string,
  args: string[],
): Promise<{ wall: number; byName: Map<string, number[]> }> {
  const tick = 100; // USER_HZ on Linux
  const started = performance.now();
  const child = spawn(command, args, { stdio: ["ignore", "ignore", "inherit"] });
  const last = new Map<string, { name: string; ticks: number }>();
  const sample = () => {
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${child.pid}/task`);
    } catch {
      return;
    }
    for (const tid of tids) {
      try {
        const stat = readFileSync(`/proc/${child.pid}/task/${tid}/stat`, "utf8");
        const name = readFileSync(`/proc/${child.pid}/task/${tid}/comm`, "utf8").trim();
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        last.set(tid, { name, ticks: Number(fields[11]) + Number(fields[12]) });
      } catch {
        // the thread ended between the listing and the reading
      }
    }
  };
  const timer = setInterval(sample, 20);
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  clearInterval(timer);
  if (code !== 0) throw new Error(`${command} ${args.join(" ")} exited with ${code}`);
  const byName = new Map<string, number[]>();
  for (const { name, ticks } of last.values()) {
    if (ticks === 0) continue;
    byName.set(name, [...(byName.get(name) ?? []), ticks / tick]);
  }
  return { wall: (performance.now() - started) / 1000, byName };
}

async function main(): Promise<number> {
  if (!existsSync("/proc/self/task")) {
    console.error("bench/threads.ts reads /proc/PID/task: Linux only");
    return 1;
  }
  const quick = process.argv.includes("--quick");
  const seconds = Number(argValue("--seconds") ?? (quick ? 1 : 4));
  const here = dirname(fileURLToPath(import.meta.url));
  const root = join(here, "..");
  const cli = join(root, "bin", "mmh.js");
  const outFile = argValue("--out") ?? (quick ? undefined : join(here, "results", "threads.md"));
  const work = join(root, ".bench-data");
  mkdirSync(work, { recursive: true });
  let input = argValue("--file");
  let made: string | undefined;
  if (!input) {
    const size = quick ? 128 << 20 : 1 << 30;
    input = join(work, `threads-bf16-${size}.safetensors`);
    if (!existsSync(input)) {
      console.log(`generating ${relative(root, input)} ...`);
      writeFileSync(input, generate({ kind: "safetensors", size, dtype: "BF16", seed: 1 }));
    }
    made = input;
  }
  const packed = join(work, "threads-input.mmh");
  const packing = spawnSync(process.execPath, [cli, input, "-o", packed, "-f", "-q"], { stdio: "inherit" });
  if (packing.status !== 0) {
    console.error(`bench/threads.ts: compressing ${relative(root, input)} failed`);
    return 1;
  }

  console.log(`1. HIER alone in 1 and 2 workers (${seconds} s each) ...`);
  const codecRows: string[][] = [];
  for (const op of ["encode", "decode"] as const) {
    const one = await codecScaling(op, 1, seconds);
    const two = await codecScaling(op, 2, seconds);
    const each = two.map((v) => fmt(v / one[0], 2)).join(", ");
    codecRows.push([
      op,
      fmt(one[0], 0),
      two.map((v) => fmt(v, 0)).join(", "),
      each,
      fmt((two[0] + two[1]) / one[0], 2),
    ]);
    console.log(
      `  ${op}: 1 worker ${fmt(one[0], 0)} MB/s; 2 workers ${two.map((v) => fmt(v, 0)).join(" + ")} MB/s`,
    );
  }

  console.log("2. CPU time per thread of the CLI ...");
  const cliRows: string[][] = [];
  const runs: { label: string; wall: number; total: number }[] = [];
  for (const [label, args] of [
    ["compress", [cli, input, "-c", "-q"]],
    ["decompress", [cli, "-d", packed, "-c", "-q"]],
  ] as const) {
    for (const threads of ["1", "2"]) {
      const { wall, byName } = await threadCpu(process.execPath, [...args, "-T", threads]);
      let total = 0;
      for (const [name, values] of [...byName].sort(
        (a, b) => b[1].reduce((x, y) => x + y) - a[1].reduce((x, y) => x + y),
      )) {
        const sum = values.reduce((x, y) => x + y, 0);
        total += sum;
        cliRows.push([
          `${label} -T ${threads}`,
          name,
          String(values.length),
          values.map((v) => fmt(v, 2)).join(" + "),
        ]);
      }
      runs.push({ label: `${label} -T ${threads}`, wall, total });
      console.log(`  ${label} -T ${threads}: ${fmt(wall, 2)} s wall, ${fmt(total, 2)} CPU s`);
    }
  }
  rmSync(packed, { force: true });

  const lines = [
    "# Where a pool's CPU time goes",
    "",
    ...machineLines(`npx node bench/threads.ts${quick ? " --quick" : ""}`),
    `- Input: ${relative(root, input)} (${sizeLabel(statSync(input).size)})${made ? ", generated BF16 weights (seed 1)" : ""}`,
    "",
    "## 1. HIER alone in worker threads",
    "",
    `Each worker generates 64 MiB of BF16 weights of its own and codes them in 512 KiB chunks (HIER, dtype BF16) for ${seconds} s, after 100 chunks of warm-up; MB/s of raw bytes. With 2 workers both run at once.`,
    "",
    table(
      ["operation", "1 worker MB/s", "2 workers, MB/s each", "each / 1 worker", "sum / 1 worker"],
      codecRows,
    ),
    "",
    "## 2. CPU time of each thread of the CLI",
    "",
    "`node bin/mmh.js FILE -c -q -T N > /dev/null` and `node bin/mmh.js -d FILE.mmh -c -q -T N > /dev/null` (the output discarded, so no disk writes), one run each. Each thread's user + system time from /proc/PID/task/TID/stat, read every 20 ms; the last reading counts (a thread's last 20 ms may be missed). Threads are named by the kernel: MainThread is the calling thread, WorkerThread the coding workers and the hashing thread, libuv-worker Node's file-system threads, V8Worker V8's compiler and collector helpers.",
    "",
    table(["command", "thread", "threads", "CPU s each"], cliRows),
    "",
    table(
      ["command", "wall s", "CPU s, all threads"],
      runs.map((r) => [r.label, fmt(r.wall, 2), fmt(r.total, 2)]),
    ),
    "",
  ];
  if (outFile) {
    mkdirSync(dirname(outFile), { recursive: true });
    writeFileSync(outFile, lines.join("\n"));
    console.log(`wrote ${relative(root, outFile)}`);
  } else console.log("(--quick: nothing written)");
  return 0;
}
