/**
 * The statistics the benchmarks decide timing targets with (bench/lib/report.ts): a
 * bootstrap interval on a median, and the verdict it gives against a limit.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { bootstrapMedian, intervalVerdict, median } from "../bench/lib/report.ts";

/** Values around `centre` with a spread of `spread` (a fixed pseudo-random sequence). */
function sample(n: number, centre: number, spread: number, seed: number): number[] {
  let x = seed;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out.push(centre + spread * ((x / 2 ** 32) * 2 - 1));
  }
  return out;
}

describe("bootstrapMedian", () => {
  test("the interval holds the median, and the same values give the same interval", () => {
    const values = sample(41, 1.01, 0.2, 7);
    const a = bootstrapMedian(values);
    assert.equal(a.median, median(values));
    assert.ok(a.lo <= a.median && a.median <= a.hi, `${a.lo} ${a.median} ${a.hi}`);
    assert.deepEqual(bootstrapMedian(values), a);
  });

  test("more pairs narrow the interval, around the centre", () => {
    const few = bootstrapMedian(sample(15, 1, 0.3, 3));
    const many = bootstrapMedian(sample(600, 1, 0.3, 3));
    assert.ok(many.hi - many.lo < (few.hi - few.lo) / 2, `${few.hi - few.lo} then ${many.hi - many.lo}`);
    assert.ok(many.lo < 1 && 1 < many.hi, `${many.lo} ${many.hi}`);
    assert.ok(many.hi - many.lo < 0.1);
  });

  test("values all equal give an interval of that value; none give NaN", () => {
    assert.deepEqual(bootstrapMedian([1.5, 1.5, 1.5]), { median: 1.5, lo: 1.5, hi: 1.5 });
    assert.ok(Number.isNaN(bootstrapMedian([]).median));
  });
});

describe("intervalVerdict", () => {
  test("met below the limit, not met at or above it, inconclusive across it", () => {
    assert.equal(intervalVerdict({ lo: 0.98, hi: 1.029 }, 1.03), "met");
    assert.equal(intervalVerdict({ lo: 1.03, hi: 1.2 }, 1.03), "not met");
    assert.equal(intervalVerdict({ lo: 1.01, hi: 1.05 }, 1.03), "inconclusive");
    assert.equal(intervalVerdict({ lo: 0.9, hi: 1.03 }, 1.03), "inconclusive");
  });
});
