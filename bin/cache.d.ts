export function compileCacheDir(env?: NodeJS.ProcessEnv): string | undefined;
export function safeCacheDir(dir: string): boolean;
export function enableCompileCache(env?: NodeJS.ProcessEnv): boolean;
