export const STAMP: string;
export function sourceDigest(dir: string): string;
export function sourceStats(dir: string): string;
export function builtIsCurrent(root: string): boolean;
export function entryUrl(root: string, source: string, built: string): string;
