import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { indexerScores } from '../../src/indexer/scores.js';
import { createPool } from '../../src/pool/index.js';
import type { Tensor } from '../../src/tensor.js';
import { assertScores, reference } from '../helpers/indexer-reference.js';

type F = Tensor<Float32Array>;

function rand(n: number, seed: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  let x = (seed >>> 0) || 7;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    a[i] = (((x >>> 0) / 2 ** 32) * 2 - 1) * scale;
  }
  return a;
}

function inputs(b: number, t: number, h: number, d: number, s: number, seed: number): { q: F; k: F; w: F } {
  return {
    q: { data: rand(b * t * h * d, seed), shape: [b, t, h, d] },
    k: { data: rand(b * s * d, seed + 1), shape: [b, s, d] },
    w: { data: rand(b * t * h, seed + 2), shape: [b, t, h] },
  };
}


// Shapes cover odd h, d not a multiple of 4/8/16, d over one 128-block,
// s over several 512-key tiles and not a multiple of 4.
const grid: [number, number, number, number, number][] = [
  [1, 3, 4, 8, 5],
  [2, 5, 3, 20, 37],
  [1, 4, 64, 128, 1030],
  [2, 3, 2, 130, 600],
  [1, 1, 1, 1, 1],
];

for (const [b, t, h, d, s] of grid) {
  for (const simd of [true, false]) {
    test(`q[${b},${t},${h},${d}] s=${s} ${simd ? 'simd' : 'fallback'}: float64 reference, causal, rows`, () => {
      const { q, k, w } = inputs(b, t, h, d, s, b * 1000 + t * 100 + s);
      const full = indexerScores(q, k, w, { simd, weightScale: 0.25 });
      assert.deepEqual(full.shape, [b, t, s]);
      assertScores(full.data, reference(q, k, w, 0.25), 'full');
      const offset = s - t - 1;
      const causal = indexerScores(q, k, w, { simd, causalOffset: offset });
      assertScores(causal.data, reference(q, k, w, 1, offset), 'causal');
      const r0 = Math.min(1, b * t - 1), r1 = b * t;
      const part = indexerScores(q, k, w, { simd, weightScale: 0.25, rows: [r0, r1] });
      assert.deepEqual(part.shape, [r1 - r0, s]);
      assert.deepEqual(part.data, full.data.subarray(r0 * s, r1 * s));
    });
  }
}

test('fast-check: SIMD and fallback both match the float64 reference', () => {
  fc.assert(
    fc.property(
      fc.record({
        b: fc.integer({ min: 1, max: 2 }), t: fc.integer({ min: 1, max: 4 }), h: fc.integer({ min: 1, max: 9 }),
        d: fc.integer({ min: 1, max: 40 }), s: fc.integer({ min: 1, max: 40 }), seed: fc.integer(),
        offset: fc.option(fc.integer({ min: -3, max: 40 })),
      }),
      ({ b, t, h, d, s, seed, offset }) => {
        const { q, k, w } = inputs(b, t, h, d, s, seed);
        const opts = offset === null ? {} : { causalOffset: offset };
        const ref = reference(q, k, w, 1, offset ?? undefined);
        assertScores(indexerScores(q, k, w, { ...opts, simd: true }).data, ref, 'simd');
        assertScores(indexerScores(q, k, w, { ...opts, simd: false }).data, ref, 'fallback');
      },
    ),
    { numRuns: 80 },
  );
});

test('NaN in a query row gives NaN scores in that row only (ReLU keeps NaN), SIMD and fallback', () => {
  for (const [d, simd] of [[128, true], [20, true], [20, false]] as const) {
    const { q, k, w } = inputs(1, 2, 3, d, 9, 5);
    q.data[d + 1] = NaN; // row 0, head 1
    for (const r of [indexerScores(q, k, w, { simd }).data]) {
      assert.ok(r.subarray(0, 9).every(Number.isNaN), `d=${d} simd=${simd}: row 0 all NaN`);
      assert.ok(r.subarray(9).every(Number.isFinite), `d=${d} simd=${simd}: row 1 finite`);
    }
  }
});

test('ineligible keys hold -Infinity; a row with none eligible is all -Infinity', () => {
  const { q, k, w } = inputs(1, 3, 2, 4, 6, 3);
  const r = indexerScores(q, k, w, { causalOffset: -1 });
  assert.deepEqual(Array.from(r.data.subarray(0, 6)), Array(6).fill(-Infinity));
  assert.ok(Number.isFinite(r.data[6]) && r.data[7] === -Infinity);
});

test('validation: types, shapes, options and out are checked before anything is written', () => {
  const { q, k, w } = inputs(1, 2, 3, 4, 5, 9);
  assert.throws(() => indexerScores({ data: new Float64Array(24), shape: [1, 2, 3, 4] } as never, k, w), { name: 'TypeError', message: /q\.data: expected a Float32Array, got Float64Array/ });
  assert.throws(() => indexerScores(q, { data: new Float32Array(15), shape: [1, 5, 3] }, w), { name: 'RangeError', message: /k\.shape\[2\] \(d\) = 3 must equal q\.shape\[3\] \(d\) = 4/ });
  assert.throws(() => indexerScores(q, k, { data: new Float32Array(4), shape: [1, 2, 2] }), { name: 'RangeError', message: /w\.shape\[2\] \(h\) = 2 must equal q\.shape\[2\] \(h\) = 3/ });
  assert.throws(() => indexerScores(q, k, w, { precision: 'fp16' as never }), { name: 'RangeError', message: /precision: expected one of 'float32', 'int8', 'int7', 'fp8', got string "fp16"/ });
  assert.throws(() => indexerScores(q, k, w, { causalOffset: 1.5 }), { name: 'RangeError', message: /causalOffset/ });
  assert.throws(() => indexerScores(q, k, w, { rows: [1, 3] }), { name: 'RangeError', message: /rows: expected \[start, end\) with 0 <= start <= end <= 2, got \[1, 3\]/ });
  const out = new Float32Array(9).fill(7);
  assert.throws(() => indexerScores(q, k, w, { out }), { name: 'RangeError', message: /out: expected a Float32Array of length 10, got length 9/ });
  assert.ok(out.every((v) => v === 7));
  assert.throws(() => indexerScores(q, k, w, { maxBytes: 16 }), { name: 'RangeError', message: /indexerScores output \[2, 5\] float32 needs 40 B.*rows/ });
  const good = new Float32Array(5);
  assert.equal(indexerScores(q, k, w, { out: good, rows: [1, 2] }).data, good);
});

test('pool: bit-identical to one thread (float32 and int8, rows, decode t=1 split over key blocks); errors reject', async () => {
  const pool = createPool({ threads: 2 });
  try {
    for (const [b, t, h, d, s] of [[2, 3, 5, 24, 1100], [1, 1, 4, 128, 5000]] as const) {
      const { q, k, w } = inputs(b, t, h, d, s, s);
      for (const opts of [{}, { precision: 'int8' as const }, { causalOffset: s - t - 600, rows: [1, b * t] as [number, number] }, { simd: false, rows: [0, 1] as [number, number] }]) {
        const one = indexerScores(q, k, w, opts);
        const many = await pool.indexerScores(q, k, w, opts);
        assert.deepEqual(many.shape, one.shape);
        assert.deepEqual(many.data, one.data, `q[${b},${t},${h},${d}] s=${s} ${JSON.stringify(opts)}`);
      }
    }
    await assert.rejects(pool.indexerScores(inputs(1, 1, 1, 1, 1, 1).q, inputs(1, 1, 1, 2, 1, 1).k, inputs(1, 1, 1, 1, 1, 1).w), RangeError);
  } finally {
    await pool.close();
  }
});
