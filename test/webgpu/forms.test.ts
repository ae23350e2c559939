// The serving-engine forms (SPEC "Serving-engine forms", "Attention
// conventions") on the GPU: key windows, seqLens and ragged batches as the
// plans' per-row ranges, the indexer's ragged batches and paged caches,
// topkLength, attnSink and paged kv in sparse attention.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateMask } from '../../src/mask/masks.js';
import { topk } from '../../src/topk/topk.js';
import { indexerScores } from '../../src/indexer/scores.js';
import { sparseAttention } from '../../src/attention/sparse.js';
import type { Tensor } from '../../src/tensor.js';
import { assertClose } from '../helpers/close.js';
import { randomFloats, randomIndices, rng } from '../attention/fixtures.js';
import { bits, gpu } from './device.js';

const TOL = { rtol: 1e-5, atol: 1e-6 };

/** A window [start, end) per row, some empty, some whole. */
function windows(rows: number, s: number, seed: number) {
  const next = rng(seed);
  const start = new Int32Array(rows), end = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    const a = Math.floor(next() * s), b = Math.floor(next() * (s + 1));
    [start[r], end[r]] = r === 0 ? [0, s] : r === 1 ? [a, a] : [Math.min(a, b), Math.max(a, b)];
  }
  return { start, end };
}

test('masks and top-k with key windows, seqLens and ragged batches are bit-identical to the CPU', async () => {
  const [b, t, s, k] = [2, 4, 70, 9];
  const idx = randomIndices(b * t, 1, k, s, 5, 0.1, 0.2);
  const indices = { data: idx.data, shape: [b, t, k] };
  const scores = randomFloats([b, t, s], 6);
  const window = windows(b * t, s, 7);
  const seqLens = Int32Array.from([s - 3, t + 2]);
  for (const keys of [{ window }, { window, causalOffset: s - t - 5 }, { seqLens }]) {
    for (const form of ['additive', 'bool', 'bits'] as const) {
      const o = { ...keys, form, outOfRange: 'skip' as const };
      const got = await gpu.generateMask(indices, s, o), want = generateMask(indices, s, o);
      assert.ok(Buffer.from(got.data.buffer).equals(Buffer.from(want.data.buffer)), `mask ${form} ${Object.keys(keys)}`);
    }
    for (const topK of [3, s + 2]) {
      const got = await gpu.topk(scores, topK, keys), want = topk(scores, topK, keys);
      assert.deepEqual(got.indices, want.indices, `topk ${topK} ${Object.keys(keys)}`);
      assert.deepEqual(bits(got.values.data), bits(want.values.data));
    }
  }
  // Ragged: positions within each sequence of a packed batch.
  const ragged = { cuSeqlensQ: Int32Array.from([0, 3, 3, 8]), cuSeqlensK: Int32Array.from([0, 30, 35, 70]) };
  const packed = randomFloats([1, 8, 35], 8);
  const got = await gpu.topk(packed, 4, { ragged }), want = topk(packed, 4, { ragged });
  assert.deepEqual(got.indices, want.indices, 'topk ragged');
  const pIdx = { data: randomIndices(8, 1, 6, 35, 9).data, shape: [1, 8, 6] };
  const m = await gpu.generateMask(pIdx, 35, { ragged, form: 'bits' });
  assert.deepEqual(m.data, generateMask(pIdx, 35, { ragged, form: 'bits' }).data, 'mask ragged');
});

test('indexer scores and the fused top-k with key windows and seqLens', async () => {
  const [b, t, h, d, s] = [2, 3, 4, 16, 90];
  const q = randomFloats([b, t, h, d], 1), k = randomFloats([b, s, d], 2), w = randomFloats([b, t, h], 3);
  const window = windows(b * t, s, 4);
  for (const keys of [{ window }, { seqLens: Int32Array.from([s, t + 10]) }, { window, causalOffset: s - t }]) {
    const got = await gpu.indexerScores(q, k, w, keys);
    const want = indexerScores(q, k, w, keys);
    assertClose(got.data, want.data, { rtol: 1e-4, atol: 1e-5 }, `scores ${Object.keys(keys)}`);
    const fused = await gpu.indexerTopk(q, k, w, 5, keys);
    const of = await gpu.topk(got, 5, keys);
    assert.deepEqual(fused.indices, of.indices, `fused ${Object.keys(keys)}`);
    assert.deepEqual(bits(fused.values.data), bits(of.values.data));
  }
});

test('indexer scores over a ragged batch and a paged cache equal the GPU\'s contiguous scores bit for bit, within the CPU tolerance', async () => {
  const [h, d] = [3, 20];
  // Ragged: each sequence's rows equal that sequence scored alone, causally at its end.
  const ragged = { cuSeqlensQ: Int32Array.from([0, 2, 3, 6, 6]), cuSeqlensK: Int32Array.from([0, 70, 71, 111, 120]) };
  const q = randomFloats([1, 6, h, d], 1), k = randomFloats([1, 120, d], 2), w = randomFloats([1, 6, h], 3);
  const got = await gpu.indexerScores(q, k, w, { ragged });
  assert.deepEqual(got.shape, [1, 6, 70]);
  assertClose(got.data, indexerScores(q, k, w, { ragged }).data, { rtol: 1e-4, atol: 1e-5 }, 'ragged against the CPU');
  for (let i = 0; i < 3; i++) {
    const [q0, q1, k0, k1] = [ragged.cuSeqlensQ[i], ragged.cuSeqlensQ[i + 1], ragged.cuSeqlensK[i], ragged.cuSeqlensK[i + 1]];
    const alone = await gpu.indexerScores(
      { data: q.data.slice(q0 * h * d, q1 * h * d), shape: [1, q1 - q0, h, d] },
      { data: k.data.slice(k0 * d, k1 * d), shape: [1, k1 - k0, d] },
      { data: w.data.slice(q0 * h, q1 * h), shape: [1, q1 - q0, h] },
      { causalOffset: k1 - k0 - (q1 - q0) },
    );
    for (let p = 0; p < q1 - q0; p++) {
      const row = got.data.subarray((q0 + p) * 70, (q0 + p + 1) * 70);
      assert.deepEqual(bits(row.subarray(0, k1 - k0)), bits(alone.data.subarray(p * (k1 - k0), (p + 1) * (k1 - k0))), `sequence ${i} query ${p}`);
      assert.ok(row.subarray(k1 - k0).every((x) => x === -Infinity), `sequence ${i} query ${p}: -Infinity past the sequence`);
    }
  }
  // Paged: pages of 8 in shuffled order, garbage (NaN) in unused slots and table entries.
  const [b, t, s] = [2, 3, 45];
  const kc = randomFloats([b, s, d], 4), qc = randomFloats([b, t, h, d], 5), wc = randomFloats([b, t, h], 6);
  const P = 8, blocks = Math.ceil(s / P) + 1, order = [9, 3, 12, 0, 7, 1, 14, 5, 10, 2, 13, 6, 4, 11, 8, 15];
  const pages = new Float32Array(16 * P * d).fill(NaN), table = new Int32Array(b * blocks).fill(99);
  for (let bi = 0; bi < b; bi++) for (let blk = 0; blk * P < s; blk++) {
    const pg = order[bi * 7 + blk];
    table[bi * blocks + blk] = pg;
    for (let o = 0; o < P && blk * P + o < s; o++) pages.set(kc.data.subarray((bi * s + blk * P + o) * d, (bi * s + blk * P + o + 1) * d), (pg * P + o) * d);
  }
  const seqLens = Int32Array.from([s, t + 9]);
  const paged = { blockTable: { data: table, shape: [b, blocks] }, seqLens };
  const pagedKeys = { data: pages, shape: [16, P, d] };
  const pagedScores = await gpu.indexerScores(qc, pagedKeys, wc, paged);
  const contiguous = await gpu.indexerScores(qc, kc, wc, { seqLens });
  assert.deepEqual(bits(pagedScores.data), bits(contiguous.data), 'paged = contiguous with seqLens');
  assertClose(pagedScores.data, indexerScores(qc, kc, wc, { seqLens }).data, { rtol: 1e-4, atol: 1e-5 }, 'paged against the CPU');
  // The fused top-k takes both forms.
  const forms: [Tensor<Float32Array>, Tensor<Float32Array>, Tensor<Float32Array>, object, Tensor<Float32Array>, object][] = [
    [q, k, w, { ragged }, got, { ragged }],
    [qc, pagedKeys, wc, paged, pagedScores, { seqLens }],
  ];
  for (const [qq, kk, ww, o, scores, topOpts] of forms) {
    const fused = await gpu.indexerTopk(qq, kk, ww, 6, o);
    const of = await gpu.topk(scores, 6, topOpts);
    assert.deepEqual(fused.indices, of.indices, `fused ${Object.keys(o)}`);
    assert.deepEqual(bits(fused.values.data), bits(of.values.data));
  }
});

test('sparse attention: windows, ragged batches, topkLength, attnSink and a paged kv cache within the CPU tolerance', async () => {
  const [t, hq, hkv, dqk, s, k] = [4, 4, 2, 16, 40, 10];
  const q = randomFloats([t, hq, dqk], 1), kv = randomFloats([s, hkv, dqk], 2);
  const indices = randomIndices(t, hkv, k, s, 3, 0.1, 0.2);
  const window = windows(t, s, 5);
  const topkLength = Int32Array.from([10, 0, 4, 7]);
  const attnSink = Float32Array.from([-2, 0, 1.5, -Infinity]);
  const cases: object[] = [{ window }, { topkLength }, { attnSink }, { window, topkLength, attnSink, assumeUnique: true }];
  for (const o of cases) {
    const got = await gpu.sparseAttention(q, kv, indices, o), want = sparseAttention(q, kv, indices, o);
    assertClose(got.out.data, want.out.data, TOL, `out ${Object.keys(o)}`);
    assertClose(got.lse.data, want.lse.data, TOL, `lse ${Object.keys(o)}`);
    assertClose(got.maxLogits.data, want.maxLogits.data, TOL, `maxLogits ${Object.keys(o)}`);
  }
  const ragged = { cuSeqlensQ: Int32Array.from([0, 1, 4]), cuSeqlensK: Int32Array.from([0, 12, 40]) };
  const rIdx = randomIndices(t, hkv, k, 28, 6, 0.1, 0.1);
  const got = await gpu.sparseAttention(q, kv, rIdx, { ragged }), want = sparseAttention(q, kv, rIdx, { ragged });
  assertClose(got.out.data, want.out.data, TOL, 'ragged out');
  assertClose(got.lse.data, want.lse.data, TOL, 'ragged lse');
  const paged: Tensor<Float32Array> = { data: kv.data, shape: [5, 8, hkv, dqk] };
  const gp = await gpu.sparseAttention(q, paged, indices), wp = sparseAttention(q, kv, indices);
  assertClose(gp.out.data, wp.out.data, TOL, 'paged out');
});
