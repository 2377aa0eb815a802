/** The tool version written into every file's metadata; kept equal to package.json. */
export const VERSION = "0.2.0";
/**
 * The .mmh container version this build writes and reads (docs/FORMAT.md). Defined here,
 * not in container/format.ts, so that `mmh --version` prints it without loading the
 * container code (and node:zlib with it).
 */
export const FORMAT_VERSION = 1;
