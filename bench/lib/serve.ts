/** A real `mmh serve` of this checkout for the service benches, on a free port. */
import { type ChildProcessByStdio, spawn } from "node:child_process";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { root } from "./commands.ts";

export interface StartedServe {
  child: ChildProcessByStdio<null, Readable, null>;
  /** The base URL the service printed once it listened. */
  url: string;
}

/**
 * Starts `mmh serve --port 0 --config CONFIG --store STORE` (standard output read for the
 * line naming its URL, standard error dropped) and resolves once it listens; rejects if the
 * process exits first. `env` is the child's environment (this process's when absent).
 */
export async function startServe(
  config: string,
  store: string,
  env?: NodeJS.ProcessEnv,
): Promise<StartedServe> {
  const child = spawn(
    process.execPath,
    [join(root, "bin", "mmh.js"), "serve", "--port", "0", "--config", config, "--store", store],
    { cwd: root, stdio: ["ignore", "pipe", "ignore"], env: env ?? process.env },
  );
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (text: string) => {
      out += text;
      const match = /listening on (http:\S+)/.exec(out);
      if (match) resolve(match[1]);
    });
    child.once("exit", (code) => reject(new Error(`mmh serve exited (${code}) before listening`)));
  });
  return { child, url };
}
