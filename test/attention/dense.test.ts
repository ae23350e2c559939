import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { denseAttention } from '../../src/attention/dense.js';
import { denseAttentionReference } from '../../src/attention/dense-kernels.js';
import { DEFAULT_MASK_VALUE, wordsPerRow, type MaskData, type Tensor } from '../../src/tensor.js';
import { assertClose } from '../helpers/close.js';
import { simdSupported } from '../../src/simd/index.js';
import { randomFloats, rng } from './fixtures.js';

const TOL = { rtol: 1e-5, atol: 1e-6 };
const PATHS = simdSupported() ? [true, false] : [false];

function reference(q: Tensor<Float32Array>, kv: Tensor<Float32Array>, mask: Tensor<MaskData>, dV: number, smScale = 1 / Math.sqrt(q.shape[2])) {
  const [t, hq, dqk] = q.shape;
  const [s, hkv] = kv.shape;
  const form = mask.data instanceof Float32Array ? 'additive' : mask.data instanceof Uint8Array ? 'bool' : 'bits';
  const out = new Float64Array(t * hq * dV);
  const lse = new Float64Array(t * hq);
  denseAttentionReference({ q: q.data, kv: kv.data, mask: mask.data, out, lse, form, maskStride: mask.shape[2], s, hq, hkv, dqk, dV, smScale, rowOffset: 0 }, 0, t);
  return { out, lse };
}

/** A random keep pattern [t, hkv, s] (row 0 of each head keeps nothing) in all three forms. */
function randomMasks(t: number, hkv: number, s: number, keep: number, seed: number) {
  const next = rng(seed);
  const bool = new Uint8Array(t * hkv * s);
  for (let row = hkv; row < t * hkv; row++) for (let j = 0; j < s; j++) bool[row * s + j] = next() < keep ? 1 : 0;
  const additive = Float32Array.from(bool, (b) => (b ? 0 : DEFAULT_MASK_VALUE));
  const w = wordsPerRow(s);
  const bits = new Uint32Array(t * hkv * w);
  for (let row = 0; row < t * hkv; row++) for (let j = 0; j < s; j++) if (bool[row * s + j]) bits[row * w + (j >>> 5)] |= 1 << (j & 31);
  return {
    additive: { data: additive, shape: [t, hkv, s] },
    bool: { data: bool, shape: [t, hkv, s] },
    bits: { data: bits, shape: [t, hkv, w] },
  };
}

const grid = [
  { t: 3, hq: 2, hkv: 1, dqk: 8, dV: 8, s: 33, keep: 0.5 },
  { t: 4, hq: 6, hkv: 3, dqk: 13, dV: 5, s: 100, keep: 0.1 },
  { t: 2, hq: 4, hkv: 1, dqk: 576, dV: 512, s: 70, keep: 0.3 },
  { t: 3, hq: 2, hkv: 2, dqk: 4, dV: 4, s: 64, keep: 1 },
];

for (const c of grid) for (const simd of PATHS) {
  test(`dense matches the float64 reference in every mask form: q[${c.t},${c.hq},${c.dqk}] kv[${c.s},${c.hkv},${c.dqk}] dV=${c.dV} keep=${c.keep} simd=${simd}`, () => {
    const q = randomFloats([c.t, c.hq, c.dqk], 11, 2);
    const kv = randomFloats([c.s, c.hkv, c.dqk], 12, 2);
    const masks = randomMasks(c.t, c.hkv, c.s, c.keep, 13);
    const ref = reference(q, kv, masks.bool, c.dV);
    const additive = denseAttention(q, kv, masks.additive, { dV: c.dV, simd });
    assertClose(additive.out.data, ref.out, TOL, 'out');
    assertClose(additive.lse.data, ref.lse, TOL, 'lse');
    // Row 0 keeps nothing: 0 out, +Infinity lse (FlashMLA's empty row).
    assert.ok(additive.out.data.subarray(0, c.hq * c.dV).every((x) => x === 0));
    assert.ok(additive.lse.data.subarray(0, c.hq).every((x) => x === Infinity));
    for (const form of ['bool', 'bits'] as const) {
      const r = denseAttention(q, kv, masks[form], { dV: c.dV, simd });
      assert.deepEqual(r.out.data, additive.out.data, `${form} out bit-identical to additive`);
      assert.deepEqual(r.lse.data, additive.lse.data, `${form} lse bit-identical to additive`);
    }
  });
}

for (const simd of PATHS) test(`an additive mask may hold -Infinity for dropped keys and other values as a bias, simd=${simd}`, () => {
  const q = randomFloats([3, 2, 6], 14);
  const kv = randomFloats([9, 1, 6], 15);
  const mask = new Float32Array(3 * 9).fill(-Infinity);
  mask.set([0, 0.5, -1, -Infinity, DEFAULT_MASK_VALUE, 0, 0, 0, 2], 9);
  mask.set([-Infinity, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity, 0], 18);
  const m = { data: mask, shape: [3, 1, 9] };
  const r = denseAttention(q, kv, m, { simd });
  const ref = reference(q, kv, m, 6);
  assertClose(r.out.data, ref.out, TOL, 'out');
  assertClose(r.lse.data, ref.lse, TOL, 'lse');
  assert.deepEqual([...r.lse.data.subarray(0, 2)], [Infinity, Infinity]);
  const v8 = [...kv.data.subarray(8 * 6, 9 * 6)];
  assert.deepEqual([...r.out.data.subarray(4 * 6, 6 * 6)], [...v8, ...v8], 'one kept key: its value row, both heads');
});

test('rows: [start, end) gives exactly those rows of the full result', () => {
  const q = randomFloats([6, 4, 10], 16);
  const kv = randomFloats([50, 2, 10], 17);
  const { bits } = randomMasks(6, 2, 50, 0.4, 18);
  const full = denseAttention(q, kv, bits, { dV: 7 });
  for (const [a, b] of [[0, 6], [1, 4], [5, 6]] as const) {
    const part = denseAttention(q, kv, bits, { dV: 7, rows: [a, b] });
    assert.deepEqual(part.out.shape, [b - a, 4, 7]);
    assert.deepEqual(part.out.data, full.out.data.subarray(a * 28, b * 28));
    assert.deepEqual(part.lse.data, full.lse.data.subarray(a * 4, b * 4));
  }
});

for (const simd of PATHS) test(`property: dense matches the float64 reference on random shapes and masks, simd=${simd}`, () => {
  fc.assert(
    fc.property(
      fc.record({
        t: fc.integer({ min: 1, max: 4 }),
        hkv: fc.integer({ min: 1, max: 3 }),
        group: fc.integer({ min: 1, max: 3 }),
        dqk: fc.integer({ min: 1, max: 24 }),
        s: fc.integer({ min: 1, max: 90 }),
        keep: fc.double({ min: 0, max: 1, noNaN: true }),
        seed: fc.integer({ min: 0, max: 1e6 }),
        form: fc.constantFrom('additive' as const, 'bool' as const, 'bits' as const),
      }),
      (c) => {
        const hq = c.hkv * c.group;
        const q = randomFloats([c.t, hq, c.dqk], c.seed, 3);
        const kv = randomFloats([c.s, c.hkv, c.dqk], c.seed + 1, 3);
        const mask = randomMasks(c.t, c.hkv, c.s, c.keep, c.seed + 2)[c.form];
        const ref = reference(q, kv, mask, c.dqk);
        const r = denseAttention(q, kv, mask, { simd });
        assertClose(r.out.data, ref.out, TOL, 'out');
        assertClose(r.lse.data, ref.lse, TOL, 'lse');
      },
    ),
    { numRuns: 60, seed: 7 },
  );
});

test('errors name the argument, the expected and the actual value', () => {
  const q = randomFloats([2, 2, 8], 1);
  const kv = randomFloats([40, 1, 8], 2);
  const masks = randomMasks(2, 1, 40, 0.5, 3);
  assert.throws(() => denseAttention(q, kv, { data: new Int32Array(80), shape: [2, 1, 40] } as never), /mask\.data: expected a Float32Array or a Uint8Array or a Uint32Array, got Int32Array/);
  assert.throws(() => denseAttention(q, kv, { data: masks.bits.data, shape: [2, 1, 40] }), RangeError);
  assert.throws(() => denseAttention(q, kv, { data: new Uint32Array(2 * 40), shape: [2, 1, 40] }), /mask\.shape: expected \[2, 1, 2\] .*ceil\(s\/32\) = 2 for a bits mask.*got \[2, 1, 40\]/);
  assert.throws(() => denseAttention(q, kv, { data: new Uint8Array(3 * 40), shape: [3, 1, 40] }), /mask\.shape: expected \[2, 1, 40\]/);
  assert.throws(() => denseAttention(q, kv, masks.bool, { rows: [2, 1] }), /rows/);
});
