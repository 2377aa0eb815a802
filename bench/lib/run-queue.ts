/**
 * Given to `node --import` by bench/threads-ab.ts: at exit, writes to standard error the
 * main thread's CPU time and its time waiting for a CPU (run-queue wait, from
 * /proc/self/task/PID/schedstat, Linux), and the process's wall time so far, in ms:
 * "RUNQUEUE cpu wait wall". Nothing is written where schedstat cannot be read.
 */
import { readFileSync } from "node:fs";

process.on("exit", () => {
  let fields: number[];
  try {
    fields = readFileSync(`/proc/self/task/${process.pid}/schedstat`, "utf8").trim().split(" ").map(Number);
  } catch {
    return;
  }
  const [cpu, wait] = fields.map((ns) => ns / 1e6);
  process.stderr.write(`RUNQUEUE ${cpu.toFixed(1)} ${wait.toFixed(1)} ${performance.now().toFixed(1)}\n`);
});
