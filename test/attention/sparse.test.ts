import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { sparseAttention } from '../../src/attention/sparse.js';
import { sparseAttentionReference } from '../../src/attention/sparse-kernels.js';
import { denseAttention } from '../../src/attention/dense.js';
import { generateMask } from '../../src/mask/masks.js';
import type { Tensor } from '../../src/tensor.js';
import { assertClose } from '../helpers/close.js';
import { simdSupported } from '../../src/simd/index.js';
import { maskOfIndices, randomFloats, randomIndices } from './fixtures.js';

const TOL = { rtol: 1e-5, atol: 1e-6 };
/** Both paths where this engine has WebAssembly SIMD: the f32x4 kernels and the TypeScript fallback. */
const PATHS = simdSupported() ? [true, false] : [false];

/** The float64 reference over all rows. */
function reference(q: Tensor<Float32Array>, kv: Tensor<Float32Array>, indices: Tensor<Int32Array>, dV: number, smScale = 1 / Math.sqrt(q.shape[2])) {
  const [t, hq, dqk] = q.shape;
  const [s, hkv] = kv.shape;
  const k = indices.shape[2];
  const out = new Float64Array(t * hq * dV);
  const lse = new Float64Array(t * hq);
  const maxLogits = new Float64Array(t * hq);
  sparseAttentionReference({ q: q.data, kv: kv.data, indices: indices.data, out, lse, maxLogits, s, hq, hkv, dqk, dV, k, smScale, rowOffset: 0 }, 0, t);
  return { out, lse, maxLogits };
}

interface Case { t: number; hq: number; hkv: number; dqk: number; dV: number; s: number; k: number; invalid?: number; repeat?: number }
const name = (c: Case) =>
  `q[${c.t},${c.hq},${c.dqk}] kv[${c.s},${c.hkv},${c.dqk}] idx[${c.t},${c.hkv},${c.k}] dV=${c.dV}` +
  (c.invalid ? ` invalid=${c.invalid}` : '') + (c.repeat ? ` repeat=${c.repeat}` : '');

const grid: Case[] = [
  { t: 3, hq: 1, hkv: 1, dqk: 8, dV: 8, s: 16, k: 4 },
  { t: 5, hq: 4, hkv: 1, dqk: 19, dV: 7, s: 50, k: 33, invalid: 0.2, repeat: 0.2 },
  { t: 4, hq: 6, hkv: 2, dqk: 16, dV: 16, s: 97, k: 70, invalid: 0.1, repeat: 0.3 },
  { t: 2, hq: 8, hkv: 4, dqk: 5, dV: 3, s: 10, k: 40, repeat: 0.5 },
  { t: 2, hq: 4, hkv: 1, dqk: 576, dV: 512, s: 300, k: 64, invalid: 0.05, repeat: 0.05 },
];

for (const c of grid) for (const simd of PATHS) {
  test(`sparse equals dense with the mask of the same indices, float64 reference: ${name(c)} simd=${simd}`, () => {
    const q = randomFloats([c.t, c.hq, c.dqk], 1, 2);
    const kv = randomFloats([c.s, c.hkv, c.dqk], 2, 2);
    const indices = randomIndices(c.t, c.hkv, c.k, c.s, 3, c.invalid, c.repeat);
    const ref = reference(q, kv, indices, c.dV);
    const sparse = sparseAttention(q, kv, indices, { dV: c.dV, simd });
    assert.deepEqual(sparse.out.shape, [c.t, c.hq, c.dV]);
    assert.deepEqual(sparse.lse.shape, [c.t, c.hq]);
    assertClose(sparse.out.data, ref.out, TOL, 'sparse out');
    assertClose(sparse.lse.data, ref.lse, TOL, 'sparse lse');
    assertClose(sparse.maxLogits.data, ref.maxLogits, TOL, 'sparse maxLogits');
    for (const form of ['additive', 'bool', 'bits'] as const) {
      const dense = denseAttention(q, kv, maskOfIndices(indices, c.s, form), { dV: c.dV, simd });
      assertClose(dense.out.data, ref.out, TOL, `dense ${form} out`);
      assertClose(dense.lse.data, ref.lse, TOL, `dense ${form} lse`);
    }
  });
}

test('generateMask of the indices viewed as [t, hkv, k] is the dense mask: q[6,8,64] kv[200,2,64] idx[6,2,48] dV=32', () => {
  const q = randomFloats([6, 8, 64], 21, 2);
  const kv = randomFloats([200, 2, 64], 22, 2);
  const indices = randomIndices(6, 2, 48, 200, 23, 0.2, 0.2);
  const ref = reference(q, kv, indices, 32);
  const sparse = sparseAttention(q, kv, indices, { dV: 32 });
  for (const form of ['additive', 'bool', 'bits'] as const) {
    const mask = generateMask(indices, 200, { form, outOfRange: 'skip' });
    const dense = denseAttention(q, kv, mask, { dV: 32 });
    assertClose(dense.out.data, ref.out, TOL, `dense ${form} out`);
    assertClose(dense.lse.data, ref.lse, TOL, `dense ${form} lse`);
    assertClose(dense.out.data, sparse.out.data, TOL, `dense ${form} vs sparse out`);
  }
});

for (const simd of PATHS) test(`gathered keys that only look consecutive (first + count - 1 = last) are gathered one by one, simd=${simd}`, () => {
  const q = randomFloats([2, 4, 8], 31);
  const kv = randomFloats([12, 1, 8], 32);
  const indices = { data: Int32Array.from([5, 0, 9, 8, 3, 11, 4, 6]), shape: [2, 1, 4] };
  const ref = reference(q, kv, indices, 8);
  const r = sparseAttention(q, kv, indices, { simd });
  assertClose(r.out.data, ref.out, TOL, 'out');
  assertClose(r.lse.data, ref.lse, TOL, 'lse');
});

test('duplicates count once; assumeUnique on unique indices gives the same bits', () => {
  const q = randomFloats([2, 2, 8], 4);
  const kv = randomFloats([20, 1, 8], 5);
  const unique = { data: Int32Array.from([3, 7, 11, 0, 1, 2]), shape: [2, 1, 3] };
  const doubled = { data: Int32Array.from([3, 7, 3, 11, 7, 3, 0, 0, 1, 2, 2, 1]), shape: [2, 1, 6] };
  const a = sparseAttention(q, kv, unique);
  const b = sparseAttention(q, kv, doubled);
  const c = sparseAttention(q, kv, unique, { assumeUnique: true });
  assert.deepEqual(b.out.data, a.out.data);
  assert.deepEqual(b.lse.data, a.lse.data);
  assert.deepEqual(c.out.data, a.out.data);
});

test('-1 and indices >= s are skipped; a row with no valid key outputs 0, lse = +Infinity, maxLogits = -Infinity (FlashMLA)', () => {
  const q = randomFloats([3, 2, 4], 6);
  const kv = randomFloats([5, 1, 4], 7);
  const indices = { data: Int32Array.from([-1, 5, 99, -7, 2, -1, 5, 4, 2, 2, -1, 4]), shape: [3, 1, 4] };
  const r = sparseAttention(q, kv, indices);
  assert.deepEqual([...r.out.data.subarray(0, 8)], new Array(8).fill(0));
  assert.deepEqual([...r.lse.data.subarray(0, 2)], [Infinity, Infinity]);
  assert.deepEqual([...r.maxLogits.data.subarray(0, 2)], [-Infinity, -Infinity]);
  const same = sparseAttention(q, kv, { data: Int32Array.from([0, 0, 0, 0, 2, 4, 4, 4, 2, 4, 4, 4]), shape: [3, 1, 4] }, { rows: [1, 3] });
  assert.deepEqual(r.out.data.subarray(8), same.out.data);
  assert.deepEqual(r.lse.data.subarray(2), same.lse.data);
});

test('a single valid key: out is its value row, lse = maxLogits = its scaled logit', () => {
  const q = { data: Float32Array.from([1, 2, 3]), shape: [1, 1, 3] };
  const kv = { data: Float32Array.from([9, 9, 9, 0.5, -1, 2]), shape: [2, 1, 3] };
  const r = sparseAttention(q, kv, { data: Int32Array.from([1, -1]), shape: [1, 1, 2] }, { dV: 2, smScale: 0.5 });
  assert.deepEqual([...r.out.data], [0.5, -1]);
  assert.equal(r.lse.data[0], Math.fround((0.5 - 2 + 6) * 0.5));
  assert.equal(r.maxLogits.data[0], r.lse.data[0]);
});

test('rows: [start, end) gives exactly those rows of the full result', () => {
  const q = randomFloats([7, 4, 12], 8);
  const kv = randomFloats([40, 2, 12], 9);
  const indices = randomIndices(7, 2, 16, 40, 10, 0.1, 0.1);
  const full = sparseAttention(q, kv, indices, { dV: 10 });
  for (const [a, b] of [[0, 7], [2, 5], [6, 7], [3, 3]] as const) {
    const part = sparseAttention(q, kv, indices, { dV: 10, rows: [a, b] });
    assert.deepEqual(part.out.shape, [b - a, 4, 10], `rows [${a}, ${b})`);
    assert.deepEqual(part.out.data, full.out.data.subarray(a * 40, b * 40));
    assert.deepEqual(part.lse.data, full.lse.data.subarray(a * 4, b * 4));
    assert.deepEqual(part.maxLogits.data, full.maxLogits.data.subarray(a * 4, b * 4));
  }
});

for (const simd of PATHS) test(`property: sparse matches the float64 reference on random shapes, invalid and repeated slots, simd=${simd}`, () => {
  fc.assert(
    fc.property(
      fc.record({
        t: fc.integer({ min: 1, max: 4 }),
        hkv: fc.integer({ min: 1, max: 3 }),
        group: fc.integer({ min: 1, max: 4 }),
        dqk: fc.integer({ min: 1, max: 40 }),
        s: fc.integer({ min: 1, max: 80 }),
        k: fc.integer({ min: 1, max: 100 }),
        dVFrac: fc.double({ min: 0, max: 1, noNaN: true }),
        invalid: fc.double({ min: 0, max: 0.5, noNaN: true }),
        repeat: fc.double({ min: 0, max: 0.5, noNaN: true }),
        seed: fc.integer({ min: 0, max: 1e6 }),
        smScale: fc.double({ min: 0.01, max: 2, noNaN: true }),
      }),
      (c) => {
        const hq = c.hkv * c.group;
        const dV = Math.max(1, Math.round(c.dVFrac * c.dqk));
        const q = randomFloats([c.t, hq, c.dqk], c.seed, 3);
        const kv = randomFloats([c.s, c.hkv, c.dqk], c.seed + 1, 3);
        const indices = randomIndices(c.t, c.hkv, c.k, c.s, c.seed + 2, c.invalid, c.repeat);
        const ref = reference(q, kv, indices, dV, c.smScale);
        const r = sparseAttention(q, kv, indices, { dV, smScale: c.smScale, simd });
        assertClose(r.out.data, ref.out, TOL, 'out');
        assertClose(r.lse.data, ref.lse, TOL, 'lse');
        assertClose(r.maxLogits.data, ref.maxLogits, TOL, 'maxLogits');
      },
    ),
    { numRuns: 60, seed: 42 },
  );
});

test('errors name the argument, the expected and the actual value', () => {
  const q = randomFloats([2, 4, 8], 1);
  const kv = randomFloats([10, 2, 8], 2);
  const indices = randomIndices(2, 2, 3, 10, 3);
  assert.throws(() => sparseAttention({ data: new Float64Array(64), shape: [2, 4, 8] } as never, kv, indices), TypeError);
  assert.throws(() => sparseAttention(q, kv, { data: new Float32Array(12), shape: [2, 2, 3] } as never), /indices\.data: expected a Int32Array/);
  assert.throws(() => sparseAttention(q, randomFloats([10, 3, 8], 2), randomIndices(2, 3, 3, 10, 3)), /hq must be a multiple of kv hkv = 3, got hq = 4/);
  assert.throws(() => sparseAttention(q, randomFloats([10, 2, 7], 2), indices), /q dqk = 8 must equal kv dqk = 7/);
  assert.throws(() => sparseAttention(q, kv, randomIndices(3, 2, 3, 10, 3)), /indices\.shape: expected \[2, 2, k\].*got \[3, 2, 3\]/);
  assert.throws(() => sparseAttention(q, kv, indices, { dV: 9 }), /dV: expected at most dqk = 8, got 9/);
  assert.throws(() => sparseAttention(q, kv, indices, { dV: 0 }), RangeError);
  assert.throws(() => sparseAttention(q, kv, indices, { smScale: Number.NaN }), /smScale/);
  assert.throws(() => sparseAttention(q, kv, indices, { rows: [1, 3] }), /rows: expected \[start, end\) with 0 <= start <= end <= 2/);
  assert.throws(() => sparseAttention(q, kv, indices, { maxBytes: 16 }), /sparseAttention outputs .* over maxBytes.*rows/);
  assert.throws(() => sparseAttention(q, kv, indices, { simd: 1 as never }), /simd: expected a boolean, got number/);
});
