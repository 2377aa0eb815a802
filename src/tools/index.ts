/**
 * `mmh/tools`: what the `mmh` command's own tools are built on, for scripts and tests
 * that need the same data: deterministic synthetic weights (`mmh gen`), the header of a
 * .npy file (`mmh extract --format npy`), and the size and byte-count formats the command
 * reads and prints, and `mmh bench` with its reports.
 */
export { formatBytes, parseSize } from "../common/bytes.ts";
export { type BenchOptions, type BenchReport, bench, classify } from "./bench.ts";
export { benchHtml, benchMarkdown, benchText } from "./bench-report.ts";
export { GEN_DTYPES, GEN_KINDS, type GenOptions, generate } from "./gen.ts";
export { type Machine, machine } from "./machine.ts";
export { npyHeader } from "./npy.ts";
