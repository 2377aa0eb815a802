/**
 * `mmh/tools`: what the `mmh` command's own tools are built on, for scripts and tests
 * that need the same data: deterministic synthetic weights (`mmh gen`), the header of a
 * .npy file (`mmh extract --format npy`), and the size and byte-count formats the command
 * reads and prints.
 */
export { formatBytes, parseSize } from "../common/bytes.ts";
export { GEN_DTYPES, GEN_KINDS, type GenOptions, generate } from "./gen.ts";
export { npyHeader } from "./npy.ts";
