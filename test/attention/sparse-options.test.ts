// sparseAttention's serving-engine options, each checked against the plain
// call it stands for: topkLength (slots past it as -1), key windows (indices
// outside as -1), ragged batches (each sequence alone), paged kv (the flat
// view of its slots), the attention sink (FlashMLA's formula), and the
// head-chunk tiling of few-row calls (bit-identical to whole rows).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { sparseAttention } from '../../src/attention/sparse.js';
import { sparseAttentionReference } from '../../src/attention/sparse-kernels.js';
import { denseAttention } from '../../src/attention/dense.js';
import type { Tensor } from '../../src/tensor.js';
import { assertClose } from '../helpers/close.js';
import { simdSupported } from '../../src/simd/index.js';
import { maskOfIndices, randomFloats, randomIndices, rng } from './fixtures.js';

const TOL = { rtol: 1e-5, atol: 1e-6 };
const PATHS = simdSupported() ? [true, false] : [false];

/** indices with every slot failing `keep(row, slot, j)` set to -1. */
function dropSlots(indices: Tensor<Int32Array>, keep: (row: number, slot: number, j: number) => boolean): Tensor<Int32Array> {
  const [t, hkv, k] = indices.shape;
  const data = indices.data.slice();
  for (let r = 0; r < t; r++) for (let g = 0; g < hkv; g++) for (let i = 0; i < k; i++) {
    const at = (r * hkv + g) * k + i;
    if (!keep(r, i, data[at])) data[at] = -1;
  }
  return { data, shape: [t, hkv, k] };
}

function sameResult(a: ReturnType<typeof sparseAttention>, b: ReturnType<typeof sparseAttention>, what: string): void {
  assert.deepEqual(a.out.data, b.out.data, `${what}: out`);
  assert.deepEqual(a.lse.data, b.lse.data, `${what}: lse`);
  assert.deepEqual(a.maxLogits.data, b.maxLogits.data, `${what}: maxLogits`);
}

for (const simd of PATHS) test(`property: topkLength equals slots past it set to -1, bit for bit, simd=${simd}`, () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 1e6 }), (t, k, seed) => {
      const s = 30;
      const q = randomFloats([t, 4, 8], seed, 2);
      const kv = randomFloats([s, 2, 8], seed + 1, 2);
      const indices = randomIndices(t, 2, k, s, seed + 2, 0.1, 0.2);
      const next = rng(seed + 3);
      const topkLength = Int32Array.from({ length: t }, () => Math.floor(next() * (k + 1)));
      const a = sparseAttention(q, kv, indices, { topkLength, simd });
      const b = sparseAttention(q, kv, dropSlots(indices, (r, i) => i < topkLength[r]), { simd });
      sameResult(a, b, 'topkLength');
    }),
    { numRuns: 40, seed: 7 },
  );
});

for (const simd of PATHS) test(`property: a key window equals the indices outside it set to -1, bit for bit, simd=${simd}`, () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 60 }), fc.integer({ min: 0, max: 1e6 }), (t, s, seed) => {
      const q = randomFloats([t, 2, 12], seed, 2);
      const kv = randomFloats([s, 1, 12], seed + 1, 2);
      const indices = randomIndices(t, 1, 24, s, seed + 2, 0.1, 0.2);
      const next = rng(seed + 3);
      const start = new Int32Array(t), end = new Int32Array(t);
      for (let r = 0; r < t; r++) {
        const a = Math.floor(next() * (s + 1)), b = Math.floor(next() * (s + 1));
        start[r] = Math.min(a, b);
        end[r] = Math.max(a, b);
      }
      const a = sparseAttention(q, kv, indices, { window: { start, end }, simd });
      const b = sparseAttention(q, kv, dropSlots(indices, (r, _i, j) => j >= start[r] && j < end[r]), { simd });
      sameResult(a, b, 'window');
    }),
    { numRuns: 40, seed: 8 },
  );
});

for (const simd of PATHS) test(`ragged: each sequence of the packed call equals that sequence alone, causally by position, simd=${simd}`, () => {
  const qLens = [3, 1, 0, 5], kLens = [10, 1, 4, 5];
  const cuQ = Int32Array.from([0, ...qLens.map((_, i) => qLens.slice(0, i + 1).reduce((a, b) => a + b, 0))]);
  const cuK = Int32Array.from([0, ...kLens.map((_, i) => kLens.slice(0, i + 1).reduce((a, b) => a + b, 0))]);
  const totalQ = cuQ[4], totalK = cuK[4], hq = 4, hkv = 2, dqk = 8, k = 12;
  const q = randomFloats([totalQ, hq, dqk], 1, 2);
  const kv = randomFloats([totalK, hkv, dqk], 2, 2);
  // Local positions, some past the causal limit and some past the sequence.
  const indices = randomIndices(totalQ, hkv, k, 11, 3, 0.1, 0.1);
  const packed = sparseAttention(q, kv, indices, { ragged: { cuSeqlensQ: cuQ, cuSeqlensK: cuK }, dV: 6, simd });
  for (let i = 0; i < 4; i++) {
    if (qLens[i] === 0) continue;
    const rows = (x: Tensor<Float32Array>, from: number, n: number, width: number) => ({ data: x.data.slice(from * width, (from + n) * width), shape: [n, ...x.shape.slice(1)] });
    const qi = rows(q, cuQ[i], qLens[i], hq * dqk);
    const kvi = rows(kv, cuK[i], kLens[i], hkv * dqk);
    const idx = { data: indices.data.slice(cuQ[i] * hkv * k, cuQ[i + 1] * hkv * k), shape: [qLens[i], hkv, k] };
    const causal = dropSlots(idx, (r, _slot, j) => j <= kLens[i] - qLens[i] + r);
    const alone = sparseAttention(qi, kvi, causal, { dV: 6, simd });
    assert.deepEqual(packed.out.data.subarray(cuQ[i] * hq * 6, cuQ[i + 1] * hq * 6), alone.out.data, `sequence ${i} out`);
    assert.deepEqual(packed.lse.data.subarray(cuQ[i] * hq, cuQ[i + 1] * hq), alone.lse.data, `sequence ${i} lse`);
  }
});

for (const simd of PATHS) test(`a paged kv cache [numPages, pageSize, hkv, dqk] is indexed by physical slot: same bits as its flat view, simd=${simd}`, () => {
  const q = randomFloats([3, 4, 16], 4, 2);
  const flat = randomFloats([6 * 8, 1, 16], 5, 2);
  const paged = { data: flat.data, shape: [6, 8, 1, 16] };
  const indices = randomIndices(3, 1, 20, 48, 6, 0.2, 0.1);
  sameResult(sparseAttention(q, paged, indices, { simd }), sparseAttention(q, flat, indices, { simd }), 'paged');
});

for (const simd of PATHS) test(`attnSink: out shrinks by 1 / (1 + exp(sink - lse)), lse and maxLogits stay the keys', -Infinity is no sink, simd=${simd}`, () => {
  const t = 4, hq = 6;
  const q = randomFloats([t, hq, 16], 7, 2);
  const kv = randomFloats([40, 2, 16], 8, 2);
  const indices = dropSlots(randomIndices(t, 2, 10, 40, 9, 0.1, 0.1), (r) => r !== 2); // row 2 attends to nothing
  const attnSink = Float32Array.from({ length: hq }, (_, h) => [-2, 0, 1.5, 3, -Infinity, 0.25][h]);
  const plain = sparseAttention(q, kv, indices, { simd });
  const sunk = sparseAttention(q, kv, indices, { attnSink, simd });
  assert.deepEqual(sunk.lse.data, plain.lse.data, 'lse unchanged');
  assert.deepEqual(sunk.maxLogits.data, plain.maxLogits.data, 'maxLogits unchanged');
  // FlashMLA's decode reference: out *= 1 / (1 + exp(sink - lse)); an empty row stays 0 with lse = +Infinity.
  const expected = new Float64Array(plain.out.data.length);
  for (let r = 0; r < t; r++) for (let h = 0; h < hq; h++) {
    const lse = plain.lse.data[r * hq + h];
    const factor = lse === Infinity ? 0 : 1 / (1 + Math.exp(attnSink[h] - lse));
    for (let d = 0; d < 16; d++) expected[(r * hq + h) * 16 + d] = plain.out.data[(r * hq + h) * 16 + d] * factor;
  }
  assertClose(sunk.out.data, expected, TOL, 'out with sink');
  assert.ok(sunk.lse.data.subarray(2 * hq, 3 * hq).every((x) => x === Infinity), 'empty row: lse +Infinity');
  assert.ok(sunk.out.data.subarray(2 * hq * 16, 3 * hq * 16).every((x) => x === 0), 'empty row: out 0');
  const none = sparseAttention(q, kv, indices, { attnSink: new Float32Array(hq).fill(-Infinity), simd });
  sameResult(none, plain, 'sink -Infinity');
  // The float64 reference and dense attention agree.
  const ref = { out: new Float64Array(t * hq * 16), lse: new Float64Array(t * hq), maxLogits: new Float64Array(t * hq) };
  sparseAttentionReference(
    { q: q.data, kv: kv.data, indices: indices.data, ...ref, s: 40, hq, hkv: 2, dqk: 16, dV: 16, k: 10, smScale: 0.25, rowOffset: 0, attnSink },
    0,
    t,
  );
  assertClose(sunk.out.data, ref.out, TOL, 'out vs reference');
  const dense = denseAttention(q, kv, maskOfIndices(indices, 40, 'bits'), { attnSink, simd });
  assertClose(dense.out.data, ref.out, TOL, 'dense out with sink');
  assert.deepEqual(dense.lse.data.subarray(2 * hq, 3 * hq), sunk.lse.data.subarray(2 * hq, 3 * hq), 'dense empty row lse');
});

for (const simd of PATHS) test(`one decode row is split into head chunks; the bits equal the same row inside a many-row call, simd=${simd}`, () => {
  const t = 9, hq = 128, dqk = 64, s = 300;
  const q = randomFloats([t, hq, dqk], 10, 1);
  const kv = randomFloats([s, 1, dqk], 11, 1);
  const indices = randomIndices(t, 1, 64, s, 12, 0.05, 0.05);
  const all = sparseAttention(q, kv, indices, { dV: 48, simd });
  for (const r of [0, 4, 8]) {
    const one = sparseAttention(q, kv, indices, { dV: 48, rows: [r, r + 1], simd });
    assert.deepEqual(one.out.data, all.out.data.subarray(r * hq * 48, (r + 1) * hq * 48), `row ${r} out`);
    assert.deepEqual(one.lse.data, all.lse.data.subarray(r * hq, (r + 1) * hq), `row ${r} lse`);
  }
});

test('errors: topkLength, attnSink, window and ragged name the argument, the expected and the actual value', () => {
  const q = randomFloats([2, 4, 8], 1);
  const kv = randomFloats([10, 2, 8], 2);
  const indices = randomIndices(2, 2, 3, 10, 3);
  assert.throws(() => sparseAttention(q, kv, indices, { topkLength: new Int32Array(3) }), /topkLength: expected an Int32Array of length t = 2 .*got length 3/);
  assert.throws(() => sparseAttention(q, kv, indices, { topkLength: Int32Array.from([1, 4]) }), /topkLength: row 1 is 4; expected 0 <= topkLength <= k = 3/);
  assert.throws(() => sparseAttention(q, kv, indices, { topkLength: Int32Array.from([-1, 0]) }), /topkLength: row 0 is -1/);
  assert.throws(() => sparseAttention(q, kv, indices, { attnSink: new Float32Array(3) }), /attnSink: expected a Float32Array of length hq = 4 .*got length 3/);
  assert.throws(() => sparseAttention(q, kv, indices, { attnSink: Float32Array.from([0, NaN, 0, 0]) }), /attnSink: head 1 is NaN/);
  const w = (start: number[], end: number[]) => ({ window: { start: Int32Array.from(start), end: Int32Array.from(end) } });
  assert.throws(() => sparseAttention(q, kv, indices, w([0, 5], [4, 3])), /window: row 1 \(batch 0, query 1\) has start 5 and end 3; expected 0 <= start <= end <= s = 10/);
  assert.throws(() => sparseAttention(q, kv, indices, w([0, 0], [11, 3])), /window: row 0 .*end 11/);
  assert.throws(() => sparseAttention(q, kv, indices, w([-1, 0], [1, 3])), /window: row 0 .*start -1/);
  assert.throws(() => sparseAttention(q, kv, indices, { window: { start: new Int32Array(1), end: new Int32Array(2) } }), /window\.start: expected an Int32Array of length 2/);
  const ragged = (cq: number[], ck: number[]) => ({ ragged: { cuSeqlensQ: Int32Array.from(cq), cuSeqlensK: Int32Array.from(ck) } });
  assert.throws(() => sparseAttention(q, kv, indices, ragged([0, 1, 2], [0, 4, 9])), /cuSeqlensK: the last entry must be the packed key count 10, got 9/);
  assert.throws(() => sparseAttention(q, kv, indices, ragged([0, 2], [0, 1])), /sequence 0 has 2 queries but 1 keys/);
  assert.throws(() => sparseAttention(q, kv, indices, ragged([0, 2, 1], [0, 4, 10])), /prefix sums must not decrease/);
  assert.throws(() => sparseAttention(q, kv, indices, ragged([0, 2], [0, 4, 10])), /cuSeqlensK: expected an Int32Array of length 2/);
  // Nothing is computed after a failed check: a later valid call still works.
  assert.equal(sparseAttention(q, kv, indices).out.data.length, 2 * 4 * 8);
});
