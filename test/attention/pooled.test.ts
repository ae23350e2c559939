import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPool } from '../../src/pool/index.js';
import { sparseAttention } from '../../src/attention/sparse.js';
import { denseAttention } from '../../src/attention/dense.js';
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
