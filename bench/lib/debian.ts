/**
 * Real model files from pinned Debian packages: `apt-get download NAME:ARCH=VERSION` into a
 * git-ignored folder under .bench-data/, checked against the pinned sha256 of the .deb,
 * and unpacked with `dpkg-deb -x`. A .deb already there is reused when its sha256 matches,
 * and an unpacked folder when the marker written after unpacking names that sha256.
 * Needs apt-get (with the package lists of Debian bookworm, `apt-get update`) and dpkg-deb.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fail } from "./commands.ts";
import { sha256 } from "./packages.ts";

export interface DebianFile {
  /** Path inside the package. */
  path: string;
  what: string;
}

export interface DebianSpec {
  name: string;
  version: string;
  arch: "all" | "amd64";
  /** sha256 of the .deb as Debian bookworm ships it. */
  sha256: string;
  files: readonly DebianFile[];
}

/**
 * The pinned Debian bookworm packages of bench/floor-debian.ts, and the files read from
 * each. Not here: stockfish's binary and dlib's shape predictor, whose record detection
 * docs/ENGINE.md already measured (files the project has looked at).
 */
export const DEBIAN_PACKAGES: readonly DebianSpec[] = [
  {
    name: "pocketsphinx-en-us",
    version: "0.8+5prealpha+1-15",
    arch: "all",
    sha256: "6bf9ef84f7dd96f497ff29a725e2a15500e9b8f73869f6854293aab7310ee28c",
    files: [
      { path: "usr/share/pocketsphinx/model/en-us/en-us/means", what: "acoustic model Gaussian means (F32)" },
      { path: "usr/share/pocketsphinx/model/en-us/en-us/variances", what: "acoustic model variances (F32)" },
      { path: "usr/share/pocketsphinx/model/en-us/en-us/sendump", what: "mixture weights (8-bit)" },
      { path: "usr/share/pocketsphinx/model/en-us/en-us/mdef", what: "model definition (binary)" },
      { path: "usr/share/pocketsphinx/model/en-us/en-us.lm.bin", what: "trigram language model (binary)" },
    ],
  },
  {
    name: "tesseract-ocr-eng",
    version: "1:4.1.0-2",
    arch: "all",
    sha256: "9242d054563262398f8cf41fbd96fcc72f9dde70db16de18539882a6cff74f9d",
    files: [
      { path: "usr/share/tesseract-ocr/5/tessdata/eng.traineddata", what: "Tesseract LSTM + legacy model" },
    ],
  },
  {
    name: "tesseract-ocr-osd",
    version: "1:4.1.0-2",
    arch: "all",
    sha256: "72cc0ba5a04e4d38e5d7901ae2f0319f4941fddaa4a77d1a86110909c036bacb",
    files: [
      { path: "usr/share/tesseract-ocr/5/tessdata/osd.traineddata", what: "Tesseract orientation model" },
    ],
  },
  {
    name: "gnubg-data",
    version: "1.07.001-1",
    arch: "all",
    sha256: "e7ea611b5f0f66da23a83f07dd1f0aa65e9834289801e1527ad833ea6f83cb0e",
    files: [
      {
        path: "usr/share/gnubg/gnubg_os0.bd",
        what: "one-sided bearoff database (index, then 16-bit values)",
      },
    ],
  },
  {
    name: "espeak-ng-data",
    version: "1.51+dfsg-10+deb12u2",
    arch: "amd64",
    sha256: "573f5661c6a5adcf949018baad158c4c773bf5579390ee5235a890f1cd694106",
    files: [
      { path: "usr/lib/x86_64-linux-gnu/espeak-ng-data/ru_dict", what: "compiled pronunciation rules" },
    ],
  },
  {
    name: "opencv-data",
    version: "4.6.0+dfsg-12",
    arch: "all",
    sha256: "0bcbc3f366eb0df45b350ba9974e499e1c4ed491f9ed1865c953097bcad60cd9",
    files: [
      {
        path: "usr/share/opencv4/haarcascades/haarcascade_frontalface_alt_tree.xml",
        what: "Haar cascade classifier (XML)",
      },
    ],
  },
];

export interface FetchedDebian {
  spec: DebianSpec;
  /** How the bytes were obtained in this run. */
  how: string;
  /** The unpacked package's root. */
  dir: string;
}

/** The file name apt-get download gives a package's .deb (the epoch's colon as %3a). */
const debName = (spec: DebianSpec) => `${spec.name}_${spec.version.replace(":", "%3a")}_${spec.arch}.deb`;

/** Fetches (or reuses), checks and unpacks one pinned package into `workDir`. */
export function fetchDebian(spec: DebianSpec, workDir: string): FetchedDebian {
  mkdirSync(workDir, { recursive: true });
  const deb = join(workDir, debName(spec));
  const dir = join(workDir, debName(spec).replace(/\.deb$/, ""));
  const marker = join(dir, ".unpacked-sha256");
  const steps: string[] = [];
  if (existsSync(deb) && sha256(readFileSync(deb)) !== spec.sha256) rmSync(deb);
  if (existsSync(deb)) steps.push(".deb reused");
  else {
    const target =
      spec.arch === "all" ? `${spec.name}=${spec.version}` : `${spec.name}:${spec.arch}=${spec.version}`;
    const args = ["download", target];
    const result = spawnSync("apt-get", args, { cwd: workDir, encoding: "utf8" });
    if (result.error || result.status !== 0)
      throw new Error(
        `apt-get ${args.join(" ")} failed (${result.status ?? result.error?.message}): ${result.stderr ?? ""} (Debian bookworm's package lists are needed: apt-get update)`,
      );
    if (!existsSync(deb))
      throw new Error(
        `apt-get download ${target} did not write ${debName(spec)}: ${readdirSync(workDir).join(", ")}`,
      );
    steps.push("apt-get download");
  }
  const got = sha256(readFileSync(deb));
  if (got !== spec.sha256) throw new Error(`${debName(spec)}: sha256 ${got}, pinned ${spec.sha256}`);
  if (existsSync(marker) && readFileSync(marker, "utf8") === spec.sha256)
    steps.push("unpacked folder reused");
  else {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const result = spawnSync("dpkg-deb", ["-x", deb, dir], { encoding: "utf8" });
    if (result.status !== 0) fail("dpkg-deb", ["-x", deb, dir], result);
    writeFileSync(marker, spec.sha256);
    steps.push("dpkg-deb -x");
  }
  for (const file of spec.files)
    if (!existsSync(join(dir, file.path))) throw new Error(`${debName(spec)} holds no ${file.path}`);
  return { spec, how: steps.join(", "), dir };
}
