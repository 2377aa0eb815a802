export const STAMP: string;
export interface SourceTree {
  dirs: Record<string, number>;
  files: Record<string, [number, number]>;
}
export function sourceTree(dir: string): SourceTree;
export function treeIsCurrent(dir: string, tree: unknown): boolean;
export function sourceDigest(dir: string): string;
export function builtIsCurrent(root: string): boolean;
export function entryUrl(root: string, source: string, built: string): string;
export function resolveBundle(url: string): boolean;
