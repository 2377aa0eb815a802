/**
 * readFilePieces' batch size: a file read in 512 KiB pieces (as the encoder's chunk plan
 * cuts a tensor) through readFilePieces with `recycle` (a ring of three buffers, what the
 * one-thread encoder reads into), each piece's bytes touched once by the consumer, with
 * batches of each size below (given through BatchMemory.batchBytes, no memory of its
 * own); and, as a floor, readSync into one reused buffer of 512 KiB on the calling thread.
 * Each run is a fresh child process (fresh memory is part of the cost), every variant
 * once per round, the order reversed every other round; CPU time of the child (user +
 * system, all threads: the reads run on Node's thread pool), wall clock and minor page
 * faults, all three of the read loop alone (process.cpuUsage, resourceUsage), medians
 * over rounds.
 *
 *   npx node bench/read-batch.ts --inputs F1,F2,...   writes results/read-batch.md
 *   options: --rounds N (default 15), --batches 1M,4M (default 512K,1M,2M,4M), --out FILE
 */
import "./lib/help.ts";
import { spawnSync } from "node:child_process";
import { closeSync, openSync, readSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { codeLine, root, writeReport } from "./lib/commands.ts";
import {
  argValue,
  contentionNote,
  cpuWaitMicros,
  fmt,
  machineLines,
  median,
  parseSizeArg,
  table,
} from "./lib/report.ts";

const PIECE = 512 << 10;

// The child: `read-batch.ts --child FILE BATCH` (BATCH 0: readSync into one buffer).
if (process.argv[2] === "--child") {
  const [file, batchText] = process.argv.slice(3);
  const batch = Number(batchText);
  const { readFilePieces } = await import("../src/common/files.ts");
  const faults0 = process.resourceUsage().minorPageFault;
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  let sum = 0;
  let bytes = 0;
  if (batch > 0) {
    const sizes = function* () {
      for (;;) yield PIECE;
    };
    const memory = { batchBytes: batch, take: () => undefined, done() {} };
    for await (const piece of readFilePieces(file, sizes(), undefined, true, memory)) {
      for (let i = 0; i < piece.length; i += 4096) sum += piece[i];
      bytes += piece.length;
    }
  } else {
    const fd = openSync(file, "r");
    const buffer = Buffer.allocUnsafeSlow(PIECE);
    for (;;) {
      const n = readSync(fd, buffer, 0, PIECE, null);
      if (n === 0) break;
      for (let i = 0; i < n; i += 4096) sum += buffer[i];
      bytes += n;
    }
    closeSync(fd);
  }
  const wall = performance.now() - started;
  const used = process.cpuUsage(cpu0);
  const cpu = (used.user + used.system) / 1000;
  const faults = process.resourceUsage().minorPageFault - faults0;
  process.stdout.write(`${JSON.stringify({ cpu, wall, faults, bytes, sum })}\n`);
  process.exit(0);
}

const rounds = Number(argValue("--rounds") ?? 15);
const outFile = argValue("--out") ?? join(root, "bench", "results", "read-batch.md");
const inputs = (argValue("--inputs") ?? "").split(",").filter(Boolean);
if (inputs.length === 0) {
  console.error("read-batch: --inputs F1,F2,... is required");
  process.exit(2);
}
const batches = (argValue("--batches") ?? "512K,1M,2M,4M").split(",").map(parseSizeArg);
const self = join(root, "bench", "read-batch.ts");

interface Measure {
  cpu: number;
  wall: number;
  faults: number;
}
function measure(file: string, batch: number): Measure {
  const r = spawnSync(process.execPath, [self, "--child", file, String(batch)], { encoding: "utf8" });
  if (r.status !== 0) {
    console.error(`read-batch: child failed:\n${r.stdout}\n${r.stderr}`);
    process.exit(1);
  }
  const report = JSON.parse(r.stdout) as Measure & { bytes: number };
  if (report.bytes !== statSync(file).size)
    throw new Error(`read-batch: ${file}: read ${report.bytes} bytes`);
  return { cpu: report.cpu, wall: report.wall, faults: report.faults };
}

const variants = [...batches, 0];
const label = (batch: number) =>
  batch === 0 ? "readSync, one 512 KiB buffer" : `readFilePieces, ${fmt(batch / 2 ** 20, 2)} MiB batches`;
const results = new Map<string, Measure[]>();
const startWait = cpuWaitMicros();
const started = Date.now();
for (const file of inputs) measure(file, variants[0]);
for (let round = 0; round < rounds; round++) {
  process.stderr.write(`round ${round + 1}/${rounds}\r`);
  const order = inputs.flatMap((file) => variants.map((batch) => [file, batch] as const));
  for (const [file, batch] of round % 2 === 0 ? order : order.reverse()) {
    const key = `${file}\0${batch}`;
    if (!results.has(key)) results.set(key, []);
    results.get(key)!.push(measure(file, batch));
  }
}
const rows = inputs.flatMap((file) =>
  variants.map((batch) => {
    const runs = results.get(`${file}\0${batch}`)!;
    return [
      `${basename(file)} (${fmt(statSync(file).size / 2 ** 20, 0)} MiB)`,
      label(batch),
      fmt(median(runs.map((r) => r.cpu)), 1),
      fmt(median(runs.map((r) => r.wall)), 1),
      fmt(median(runs.map((r) => r.faults)), 0),
    ];
  }),
);
const reproduce = `npx node bench/read-batch.ts --inputs ${inputs.join(",")}${argValue("--rounds") ? ` --rounds ${rounds}` : ""}${argValue("--batches") ? ` --batches ${argValue("--batches")}` : ""}`;
writeReport(outFile, [
  "# Reading a file in batches: readFilePieces' batch size",
  "",
  ...machineLines(reproduce),
  codeLine(),
  `- ${rounds} rounds, each variant once per round in a fresh process, the order reversed every other round; medians. ${contentionNote(startWait, Date.now() - started)}`,
  "",
  "The file read in 512 KiB pieces, one byte of every 4 KiB of each piece read by the consumer. readFilePieces with `recycle` reads each batch into one of three buffers in turn (an eighth larger than the batch), one batch ahead, on Node's thread pool; the last row reads synchronously on the calling thread into one reused buffer. CPU: user + system time of all the child's threads (process.cpuUsage), wall clock and minor page faults, each of the read loop alone.",
  "",
  table(["input", "reading", "CPU ms", "wall ms", "faults"], rows),
  "",
]);
