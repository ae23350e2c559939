import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { maskFromThreshold, generateMask, type MaskForm } from '../../src/index.js';
import { runKernel } from '../../src/plan.js';
import { maskKernels } from '../../src/mask/kernels.js';
import { encode, decode, sortTopkIndices, assertSameBits } from './definition.js';

const forms: MaskForm[] = ['additive', 'bool', 'bits'];

/** Scores drawn from a few values (many ties) or with -Infinity, and top-k values taken from a sort. */
const thresholdCase = fc
  .record({ b: fc.integer({ min: 1, max: 2 }), t: fc.integer({ min: 1, max: 4 }), s: fc.integer({ min: 1, max: 70 }), k: fc.integer({ min: 1, max: 80 }) })
  .chain(({ b, t, s, k }) =>
    fc.record({
      b: fc.constant(b),
      t: fc.constant(t),
      s: fc.constant(s),
      k: fc.constant(k),
      scores: fc.array(
        fc.oneof(fc.constantFrom(-Infinity, 0, -0, 1, 2, 2.5), fc.float({ noNaN: true, noDefaultInfinity: false })),
        { minLength: b * t * s, maxLength: b * t * s },
      ),
      form: fc.constantFrom(...forms),
      rows: fc.option(fc.tuple(fc.integer({ min: 0, max: b * t }), fc.integer({ min: 0, max: b * t })).map(([x, y]) => [Math.min(x, y), Math.max(x, y)] as [number, number]), { nil: undefined }),
    }),
  );

/** The k values a sorted top-k returns; slots past s hold -Infinity. */
function valuesOf(scores: Float32Array, idx: Int32Array, s: number, k: number): Float32Array {
  return Float32Array.from(idx, (j, i) => (j < 0 ? -Infinity : scores[Math.floor(i / k) * s + j]));
}

test('exact equals the index mask of a sort-based top-k (ties, -Infinity, k > s), every form and rows', () => {
  fc.assert(
    fc.property(thresholdCase, ({ b, t, s, k, scores, form, rows }) => {
      const data = Float32Array.from(scores);
      const idx = sortTopkIndices(data, b * t, s, k);
      const values = { data: valuesOf(data, idx, s, k), shape: [b, t, k] };
      const got = maskFromThreshold({ data, shape: [b, t, s] }, values, { form, rows });
      const want = generateMask({ data: idx, shape: [b, t, k] }, s, { form, rows });
      assert.deepEqual(got.shape, want.shape);
      assertSameBits(got.data, want.data, `scores[${b},${t},${s}] k=${k} ${form}`);
    }),
    { numRuns: 300 },
  );
});

test('raw keeps every score >= threshold; fast kernels equal the reference kernel in both modes', () => {
  fc.assert(
    fc.property(thresholdCase, fc.integer({ min: 1, max: 6 }), ({ b, t, s, scores, form }, k) => {
      const data = Float32Array.from(scores);
      // Arbitrary values (not a true top-k): > threshold may exceed k.
      const values = Float32Array.from({ length: b * t * k }, (_, i) => data[(i * 7) % data.length]);
      const raw = maskFromThreshold({ data, shape: [b, t, s] }, { data: values, shape: [b, t, k] }, { form, mode: 'raw' });
      const kept = Array.from({ length: b * t }, (_, r) => {
        const thr = Math.min(...values.subarray(r * k, r * k + k));
        return Array.from({ length: s }, (_, j) => data[r * s + j] >= thr);
      });
      assertSameBits(raw.data, encode(kept, form, s), 'raw');
      for (const mode of ['exact', 'raw'] as const) {
        const fast = maskFromThreshold({ data, shape: [b, t, s] }, { data: values, shape: [b, t, k] }, { form, mode });
        const ref = new (fast.data.constructor as new (n: number) => typeof fast.data)(fast.data.length);
        runKernel({ kernel: 'mask.threshold.reference', args: { scores: data, values, out: ref, s, k, rowBase: 0, exact: mode === 'exact', form }, rows: [0, b * t], writes: ['out'] }, maskKernels);
        assertSameBits(fast.data, ref, `${mode} ${form} scores[${b},${t},${s}] k=${k}`);
        if (mode === 'exact') for (const row of decode(fast.data, s)) assert.ok(row.filter(Boolean).length <= k);
      }
    }),
    { numRuns: 200 },
  );
});

test('scores[1,1,6] k=3: ties at the threshold are kept by increasing key until k', () => {
  const scores = { data: new Float32Array([1, 5, 1, 1, 7, 1]), shape: [1, 1, 6] };
  const values = { data: new Float32Array([7, 5, 1]), shape: [1, 1, 3] };
  assert.deepEqual([...maskFromThreshold(scores, values, { form: 'bool' }).data], [1, 1, 0, 0, 1, 0]);
  assert.deepEqual([...maskFromThreshold(scores, values, { form: 'bool', mode: 'raw' }).data], [1, 1, 1, 1, 1, 1]);
  // A NaN score is never kept.
  const nan = { data: new Float32Array([NaN, 5, 1, NaN, 7, 1]), shape: [1, 1, 6] };
  assert.deepEqual([...maskFromThreshold(nan, values, { form: 'bool' }).data], [0, 1, 1, 0, 1, 0]);
});

test('bad inputs: NaN top-k values, mismatched b/t, wrong types; out untouched', () => {
  const scores = { data: new Float32Array(12), shape: [1, 2, 6] };
  const out = new Float32Array(12).fill(3);
  assert.throws(() => maskFromThreshold(scores, { data: new Float32Array([1, 2, NaN, 0]), shape: [1, 2, 2] }, { out }), {
    name: 'RangeError',
    message: 'topkValues: expected no NaN, got NaN at batch 0, query 1, slot 0',
  });
  assert.ok(out.every((x) => x === 3));
  assert.throws(() => maskFromThreshold(scores, { data: new Float32Array(6), shape: [1, 3, 2] }), /topkValues t = 3 must equal scores t = 2/);
  assert.throws(() => maskFromThreshold({ data: new Float64Array(12), shape: [1, 2, 6] } as never, { data: new Float32Array(4), shape: [1, 2, 2] }), { name: 'TypeError' });
  assert.throws(() => maskFromThreshold(scores, { data: new Float32Array(4), shape: [1, 2, 2] }, { mode: 'approx' as never }), /mode: expected one of 'exact', 'raw'/);
  assert.throws(() => maskFromThreshold(scores, { data: new Float32Array(4), shape: [1, 2, 2] }, { maxBytes: 10 }), /needs 48 B \(48 bytes\), over maxBytes = 10 B; use form 'bits'/);
});
