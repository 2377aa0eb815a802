/** The tool version written into every file's metadata; kept equal to package.json. */
export const VERSION = "0.2.0";
