import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPool } from '../../src/pool/index.js';
import { sparseAttention } from '../../src/attention/sparse.js';
import { denseAttention } from '../../src/attention/dense.js';
import { dsaForward, dsaForwardDense } from '../../src/attention/forward.js';
import { allocShared } from '../../src/tensor.js';
import { maskOfIndices, randomFloats, randomIndices } from './fixtures.js';

test('pool: sparse and dense attention are bit-identical to the single-threaded calls, rows included', async () => {
  const pool = createPool({ threads: 2 });
  try {
    const q = randomFloats([9, 4, 24], 1);
    const kv = randomFloats([120, 2, 24], 2);
    // kv in shared memory is used in place; q is copied in by the pool.
    const kvShared = { data: allocShared(Float32Array, kv.data.length), shape: kv.shape };
    kvShared.data.set(kv.data);
    const indices = randomIndices(9, 2, 40, 120, 3, 0.2, 0.2);
    for (const rows of [undefined, [2, 7] as [number, number]]) {
      const want = sparseAttention(q, kv, indices, { dV: 16, rows });
      const got = await pool.sparseAttention(q, kvShared, indices, { dV: 16, rows });
      assert.deepEqual(got.out.data, want.out.data);
      assert.deepEqual(got.lse.data, want.lse.data);
      assert.deepEqual(got.maxLogits.data, want.maxLogits.data);
      const mask = maskOfIndices(indices, 120, 'bits');
      const wantDense = denseAttention(q, kv, mask, { dV: 16, rows });
      const gotDense = await pool.denseAttention(q, kv, mask, { dV: 16, rows });
      assert.deepEqual(gotDense.out.data, wantDense.out.data);
      assert.deepEqual(gotDense.lse.data, wantDense.lse.data);
    }
    // A validation error rejects the promise.
    await assert.rejects(pool.sparseAttention(q, kv, indices, { dV: 99 }), /dV: expected at most dqk = 24, got 99/);
  } finally {
    await pool.close();
  }
});

test('pool: dsaForward and dsaForwardDense are bit-identical to the single-threaded calls', async () => {
  const pool = createPool({ threads: 2 });
  try {
    const dim = 32, qRank = 24, h = 4, d = 16, t = 5, sPast = 30;
    const weights = {
      wqB: randomFloats([h * d, qRank], 1, 0.3),
      wk: randomFloats([d, dim], 2, 0.3),
      kNormWeight: randomFloats([d], 3),
      kNormBias: randomFloats([d], 4, 0.1),
      weightsProj: randomFloats([h, dim], 5),
    };
    const inputs = { x: randomFloats([1, t, dim], 6), qr: randomFloats([1, t, qRank], 7), kCache: randomFloats([1, sPast, d], 8) };
    const attention = { q: randomFloats([t, 4, 16], 9), kv: randomFloats([sPast + t, 2, 16], 10) };
    const opts = { indexer: { topK: 8, ropeDim: 8 }, dV: 12 };
    const sparse = dsaForward(weights, inputs, attention, opts);
    const gotSparse = await pool.dsaForward(weights, inputs, attention, opts);
    assert.deepEqual(gotSparse.out.data, sparse.out.data);
    assert.deepEqual(gotSparse.lse.data, sparse.lse.data);
    assert.deepEqual(gotSparse.indexer.indices.data, sparse.indexer.indices.data);
    const dense = dsaForwardDense(weights, inputs, attention, opts);
    const gotDense = await pool.dsaForwardDense(weights, inputs, attention, opts);
    assert.deepEqual(gotDense.out.data, dense.out.data);
    assert.deepEqual(gotDense.mask.data, dense.mask.data);
  } finally {
    await pool.close();
  }
});
