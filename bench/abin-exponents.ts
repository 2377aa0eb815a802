/**
 * Whether ABIN (the adaptive binary range coder, FORMAT.md §6.7) would pay on the exponent
 * field of real float weights, where HIER codes it with order-0 Huffman (and context
 * Huffman at `--goal ratio`). Each file is planned into chunks as mmh does; every chunk of
 * a float dtype is split with its dtype's HIER layout and its first stream (the exponent
 * field) coded by order-0 Huffman, context Huffman and ABIN's models: no context, the
 * exponent before (the previous element in the row), the one two before, and both. Each
 * size is capped at the stream's length (stored). Sizes are real coded bytes, and the
 * chunk's other fields are counted at their order-0 Huffman size for the share of the whole.
 * Writes bench/results/abin-exponents.md.
 *
 *   npx node bench/abin-exponents.ts [FILE ...] [--out FILE]
 *
 * With no FILE: the real F32 safetensors of ../shared/data.
 */
import "./lib/help.ts";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { type AbinModel, encodeAbin } from "../src/codecs/abin.ts";
import { huffmanEncode } from "../src/codecs/hier/huffman.ts";
import { huffmanEncodeContext } from "../src/codecs/hier/huffman-context.ts";
import { bufferSource } from "../src/common/source.ts";
import { describeSource } from "../src/engine/describe.ts";
import { codeLine, root, writeReport } from "./lib/commands.ts";
import { floatChunkStreams } from "./lib/fields.ts";
import { argValue, contentionNote, cpuWaitMicros, fmt, machineLines, table } from "./lib/report.ts";

const outFile = argValue("--out") ?? join(root, "bench", "results", "abin-exponents.md");
const args = process.argv.slice(2).filter((a, i, all) => !a.startsWith("--") && all[i - 1] !== "--out");
const SHARED = join(root, "..", "shared", "data");
const inputs =
  args.length > 0
    ? args
    : existsSync(SHARED)
      ? readdirSync(SHARED)
          .filter((f) => f.endsWith(".safetensors"))
          .sort()
          .map((f) => join(SHARED, f))
      : [];

const MODELS: [string, Omit<AbinModel, "rate">][] = [
  ["ABIN, no context", { lags: [], quant: 1 }],
  ["ABIN, the one before", { lags: [1], quant: 256 }],
  ["ABIN, two before", { lags: [2], quant: 256 }],
  ["ABIN, both (16 ranks)", { lags: [1, 2], quant: 16 }],
];
const RATES = [5, 6, 7];

interface Row {
  file: string;
  dtype: string;
  symbols: number;
  /** The chunks' other fields at order-0 Huffman. */
  rest: number;
  order0: number;
  context: number;
  models: number[];
  best: number;
  ms: number;
}
const rows: Row[] = [];
const started = performance.now();
const waitStart = cpuWaitMicros();

for (const file of inputs) {
  const data = readFileSync(file);
  const layout = await describeSource(bufferSource(data), 512 << 10);
  const byDtype = new Map<string, Row>();
  for (const { dtype, streams } of floatChunkStreams(data, layout.plan)) {
    const row = byDtype.get(dtype) ?? {
      file: basename(file),
      dtype: dtype,
      symbols: 0,
      rest: 0,
      order0: 0,
      context: 0,
      models: MODELS.map(() => 0),
      best: 0,
      ms: 0,
    };
    const e = streams[0];
    const cap = (size: number) => Math.min(size, e.length);
    for (const s of streams.slice(1)) row.rest += Math.min(huffmanEncode(s).length, s.length);
    const order0 = cap(huffmanEncode(e).length);
    const context = Math.min(order0, cap(huffmanEncodeContext(e).length));
    let best = context;
    for (const [m, [, model]] of MODELS.entries()) {
      let size = e.length;
      for (const rate of RATES) {
        const started = performance.now();
        const coded = encodeAbin(e, { ...model, rate });
        row.ms += performance.now() - started;
        if (coded !== undefined) size = Math.min(size, coded.length);
      }
      row.models[m] += size;
      best = Math.min(best, size);
    }
    row.symbols += e.length;
    row.order0 += order0;
    row.context += context;
    row.best += best;
    byDtype.set(dtype, row);
  }
  rows.push(...byDtype.values());
  console.log(file);
}

const pct = (a: number, b: number) => `${fmt((1 - a / b) * 100, 2)}%`;
const total = (f: (r: Row) => number) => rows.reduce((sum, r) => sum + f(r), 0);
writeReport(outFile, [
  "# ABIN on the exponents of real float weights",
  "",
  ...machineLines(`npx node bench/abin-exponents.ts ${args.join(" ")}`.trim()),
  codeLine(),
  `- ${contentionNote(waitStart, performance.now() - started)}`,
  "",
  "Every chunk of a float dtype (mmh's plan, 512 KiB) split by its dtype's HIER layout; its first stream, the exponent field (F32 bits 23-30, BF16 bits 7-14, F16 bits 7-14), coded by order-0 Huffman, context Huffman (`--goal ratio`'s HIER method 4) and ABIN with each context at rates 5, 6 and 7 (the smallest kept), each capped at the stream's length. Sizes in bytes; 'best' is the smallest of context Huffman and every ABIN model, per chunk. 'whole' is the saving of 'best' over context Huffman on the chunks' HIER streams, the other fields counted at order-0 Huffman.",
  "",
  table(
    [
      "file",
      "dtype",
      "symbols",
      "order-0 Huffman",
      "context Huffman",
      ...MODELS.map(([name]) => name),
      "best",
      "best vs context",
      "whole",
    ],
    [
      ...rows.map((r) => [
        r.file,
        r.dtype,
        String(r.symbols),
        String(r.order0),
        String(r.context),
        ...r.models.map(String),
        String(r.best),
        pct(r.best, r.context),
        pct(r.best + r.rest, r.context + r.rest),
      ]),
      [
        "all",
        "",
        String(total((r) => r.symbols)),
        String(total((r) => r.order0)),
        String(total((r) => r.context)),
        ...MODELS.map((_, m) => String(total((r) => r.models[m]))),
        String(total((r) => r.best)),
        pct(
          total((r) => r.best),
          total((r) => r.context),
        ),
        pct(
          total((r) => r.best + r.rest),
          total((r) => r.context + r.rest),
        ),
      ],
    ],
  ),
  "",
  `ABIN's encode over these streams: ${fmt(total((r) => r.symbols * MODELS.length * RATES.length) / total((r) => r.ms) / 1000, 1)} MB/s of exponents (wall clock of every model and rate, one thread, under the contention above).`,
  "",
]);
