/**
 * The service's config file: a JSON object validated with zod, every key optional with a
 * default. A ConfigStore holds the last good config; a reload that fails keeps it.
 */
import { type FSWatcher, watch } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, dirname, resolve } from "node:path";
import { z } from "zod";
import { type Goal, listCodecs, MmhError } from "../index.ts";

export const GOALS = ["ratio", "balanced", "speed"] as const;
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

/** Codec names the service accepts: auto and every codec this build has. */
export function codecNames(): string[] {
  return ["auto", ...listCodecs().map((codec) => codec.name)];
}

const codecName = z.string().refine((name) => codecNames().includes(name), {
  message: `codec must be one of ${codecNames().join(", ")}`,
});

export const configSchema = z.strictObject({
  defaults: z
    .strictObject({
      codec: codecName.default("auto"),
      level: z.int().min(-131072).max(22).optional(),
      goal: z.enum(GOALS).default("balanced"),
      chunkSize: z
        .int()
        .min(4 << 10)
        .max(64 << 20)
        .default(512 << 10),
      threads: z.int().min(1).max(256).default(1),
    })
    .prefault({}),
  limits: z
    .strictObject({
      bodyBytes: z
        .int()
        .min(1)
        .default(1 << 30),
      concurrency: z.int().min(1).default(8),
      queue: z.int().min(0).max(1_000_000).default(64),
      idleSeconds: z.int().min(0).max(86_400).default(60),
    })
    .prefault({}),
  store: z.strictObject({ root: z.string().min(1).optional() }).prefault({}),
  auth: z.strictObject({ tokenFile: z.string().min(1).optional() }).prefault({}),
  log: z.strictObject({ level: z.enum(LOG_LEVELS).default("info") }).prefault({}),
});

export type ConfigFile = z.input<typeof configSchema>;

/** A validated config, as one request sees it from start to end. */
export interface ServerConfig {
  defaults: { codec: string; level: number | undefined; goal: Goal; chunkSize: number; threads: number };
  limits: { bodyBytes: number; concurrency: number; queue: number; idleSeconds: number };
  store: { root: string | undefined };
  auth: { tokenFile: string | undefined };
  log: { level: (typeof LOG_LEVELS)[number] };
  /** The bearer token read from auth.tokenFile; never logged. */
  token: string | undefined;
  /** Counts successful loads, from 1. */
  generation: number;
  loadedAt: Date;
}

/** What the command line overrides, whatever the file says. */
export interface ConfigOverrides {
  storeRoot?: string;
}

function describeIssues(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join(".") || "(root)"}: ${issue.message}`).join("; ");
}

/** Parse and validate config text; throws E_BAD_OPTION saying what is wrong. */
export async function parseConfig(
  text: string,
  base: string,
  overrides: ConfigOverrides,
  generation: number,
): Promise<ServerConfig> {
  let json: unknown;
  try {
    json = text.trim() === "" ? {} : JSON.parse(text);
  } catch (error) {
    throw new MmhError("E_BAD_OPTION", `config is not JSON: ${(error as Error).message}`);
  }
  const parsed = configSchema.safeParse(json);
  if (!parsed.success) throw new MmhError("E_BAD_OPTION", `config: ${describeIssues(parsed.error)}`);
  const value = parsed.data;
  const storeRoot = overrides.storeRoot ?? value.store.root;
  const tokenFile = value.auth.tokenFile === undefined ? undefined : resolve(base, value.auth.tokenFile);
  let token: string | undefined;
  if (tokenFile !== undefined) {
    try {
      token = (await readFile(tokenFile, "utf8")).trim();
    } catch (error) {
      throw new MmhError(
        "E_BAD_OPTION",
        `config: auth.tokenFile cannot be read (${(error as Error).message})`,
      );
    }
    if (token === "") throw new MmhError("E_BAD_OPTION", "config: auth.tokenFile is empty");
  }
  return Object.freeze({
    defaults: Object.freeze({ ...value.defaults, level: value.defaults.level }),
    limits: Object.freeze({ ...value.limits }),
    store: Object.freeze({ root: storeRoot === undefined ? undefined : resolve(base, storeRoot) }),
    auth: Object.freeze({ tokenFile }),
    log: Object.freeze({ ...value.log }),
    token,
    generation,
    loadedAt: new Date(),
  });
}

export type ReloadResult = { ok: true; config: ServerConfig } | { ok: false; error: MmhError };

/**
 * The current config and its reloads. `current` is replaced, never mutated, so a request
 * that took a snapshot keeps it whatever happens to the file.
 */
export class ConfigStore {
  readonly file: string | undefined;
  #current: ServerConfig;
  readonly #overrides: ConfigOverrides;
  readonly #listeners: ((result: ReloadResult) => void)[] = [];
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #reloading: Promise<ReloadResult> | undefined;

  private constructor(file: string | undefined, config: ServerConfig, overrides: ConfigOverrides) {
    this.file = file;
    this.#current = config;
    this.#overrides = overrides;
  }

  /** Load `file` (or the defaults, without one); an invalid file at start is an error. */
  static async open(file: string | undefined, overrides: ConfigOverrides = {}): Promise<ConfigStore> {
    const path = file === undefined ? undefined : resolve(file);
    const text = path === undefined ? "" : await readConfigText(path);
    const config = await parseConfig(text, path === undefined ? process.cwd() : dirname(path), overrides, 1);
    return new ConfigStore(path, config, overrides);
  }

  get current(): ServerConfig {
    return this.#current;
  }

  /** Called after every reload, with its result. */
  onReload(listener: (result: ReloadResult) => void): void {
    this.#listeners.push(listener);
  }

  /** Read the file again; on failure the current config stays. Concurrent calls share one read. */
  reload(): Promise<ReloadResult> {
    this.#reloading ??= this.#reload().finally(() => {
      this.#reloading = undefined;
    });
    return this.#reloading;
  }

  async #reload(): Promise<ReloadResult> {
    let result: ReloadResult;
    try {
      if (this.file === undefined) throw new MmhError("E_BAD_OPTION", "no config file to reload");
      const text = await readConfigText(this.file);
      const config = await parseConfig(
        text,
        dirname(this.file),
        this.#overrides,
        this.#current.generation + 1,
      );
      this.#current = config;
      result = { ok: true, config };
    } catch (error) {
      const mmh = error instanceof MmhError ? error : new MmhError("E_INTERNAL", String(error));
      result = { ok: false, error: mmh };
    }
    for (const listener of this.#listeners) listener(result);
    return result;
  }

  /**
   * Reload when the file changes. The folder is watched, not the file: editors and
   * `mv` replace a file by renaming another over it, which ends a watch on the file.
   * Changes are debounced, since one save is often several events.
   */
  watch(debounceMs = 100): void {
    if (this.file === undefined || this.#watcher) return;
    const name = basename(this.file);
    this.#watcher = watch(dirname(this.file), (_event, changed) => {
      if (changed !== null && changed !== name) return;
      clearTimeout(this.#timer);
      this.#timer = setTimeout(() => void this.reload(), debounceMs);
    });
    this.#watcher.on("error", () => this.#watcher?.close());
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#watcher?.close();
    this.#watcher = undefined;
  }
}

async function readConfigText(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    throw new MmhError("E_BAD_OPTION", `config ${path} cannot be read (${(error as Error).message})`);
  }
}
