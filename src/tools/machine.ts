/**
 * The machine a measurement ran on: what `mmh bench` prints before any figure, so that
 * nobody reads a speed without knowing the CPU, the cores, the load and the tools' versions.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg, release, totalmem, type } from "node:os";
import { VERSION } from "../version.ts";

export interface Load {
  /** 1, 5 and 15 minute load averages. */
  loadavg: [number, number, number];
  /** Linux pressure stall information for the CPU: the share of time some task waited, over 10 s (percent). */
  cpuPressure10s?: number;
  at: string;
}

export interface Machine {
  cpu: string;
  /** Logical cores the process may use, and all the system has. */
  cores: number;
  logicalCpus: number;
  memoryBytes: number;
  os: string;
  node: string;
  /** The zstd library inside Node (node:zlib), and the zstd command-line tool ("not found" when missing). */
  nodeZstd: string;
  zstdCli: string;
  mmh: string;
}

export function cpuModel(): string {
  try {
    const model = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    if (model) return model[1].trim();
  } catch {
    // not Linux
  }
  return cpus()[0]?.model ?? "unknown";
}

/** The first line a tool prints for `args` (its version), or "not found". */
export function toolVersion(command: string, args: readonly string[]): string {
  const result = spawnSync(command, args, { encoding: "utf8", timeout: 10_000 });
  if (result.error || result.status !== 0) return "not found";
  return ((result.stdout || result.stderr).trim().split("\n")[0] ?? "").trim() || "unknown";
}

export function machine(): Machine {
  return {
    cpu: cpuModel(),
    cores: availableParallelism(),
    logicalCpus: cpus().length,
    memoryBytes: totalmem(),
    os: `${type()} ${release()}`,
    node: process.version,
    nodeZstd: process.versions.zstd ?? "none",
    zstdCli: toolVersion("zstd", ["--version"]),
    mmh: VERSION,
  };
}

export function load(): Load {
  const [a, b, c] = loadavg();
  const out: Load = { loadavg: [a, b, c], at: new Date().toISOString() };
  try {
    const some = /^some avg10=([\d.]+)/m.exec(readFileSync("/proc/pressure/cpu", "utf8"));
    if (some) out.cpuPressure10s = Number(some[1]);
  } catch {
    // no PSI on this system
  }
  return out;
}

export function loadLine(l: Load): string {
  const psi = l.cpuPressure10s === undefined ? "" : `, CPU pressure ${l.cpuPressure10s.toFixed(1)}% (10 s)`;
  return `${l.loadavg.map((v) => v.toFixed(2)).join(" ")}${psi} at ${l.at}`;
}
