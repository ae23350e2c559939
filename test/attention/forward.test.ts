import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dsaForward, dsaForwardDense } from '../../src/attention/forward.js';
import { sparseAttention } from '../../src/attention/sparse.js';
import { sparseAttentionReference } from '../../src/attention/sparse-kernels.js';
import { lightningIndexer, type IndexerWeights } from '../../src/indexer/module.js';
import { assertClose } from '../helpers/close.js';
import { randomFloats } from './fixtures.js';

const TOL = { rtol: 1e-5, atol: 1e-6 };

function layer(t: number, sPast: number, hq: number, hkv: number, dqk: number) {
  const dim = 32, qRank = 24, h = 4, d = 16;
  const weights: IndexerWeights = {
    wqB: randomFloats([h * d, qRank], 1, 0.3),
    wk: randomFloats([d, dim], 2, 0.3),
    kNormWeight: randomFloats([d], 3),
    kNormBias: randomFloats([d], 4, 0.1),
    weightsProj: randomFloats([h, dim], 5),
  };
  const inputs = {
    x: randomFloats([1, t, dim], 6),
    qr: randomFloats([1, t, qRank], 7),
    ...(sPast > 0 ? { kCache: randomFloats([1, sPast, d], 8) } : {}),
  };
  const attention = { q: randomFloats([t, hq, dqk], 9, 2), kv: randomFloats([sPast + t, hkv, dqk], 10, 2) };
  return { weights, inputs, attention };
}

const cases = [
  { t: 6, sPast: 40, hq: 4, hkv: 1, dqk: 24, dV: 16, topK: 8 },
  { t: 5, sPast: 3, hq: 6, hkv: 2, dqk: 20, dV: 20, topK: 6 },
  { t: 4, sPast: 0, hq: 2, hkv: 1, dqk: 576, dV: 512, topK: 16 },
];

for (const c of cases) {
  test(`dsaForward and dsaForwardDense agree: t=${c.t} sPast=${c.sPast} q[${c.t},${c.hq},${c.dqk}] kv[${c.sPast + c.t},${c.hkv},${c.dqk}] topK=${c.topK} dV=${c.dV}`, () => {
    const { weights, inputs, attention } = layer(c.t, c.sPast, c.hq, c.hkv, c.dqk);
    const opts = { indexer: { topK: c.topK, ropeDim: 8 }, dV: c.dV };
    const sparse = dsaForward(weights, inputs, attention, opts);
    const dense = dsaForwardDense(weights, inputs, attention, opts);
    assert.deepEqual(sparse.out.shape, [c.t, c.hq, c.dV]);
    assertClose(dense.out.data, sparse.out.data, TOL, 'out');
    assertClose(dense.lse.data, sparse.lse.data, TOL, 'lse');

    // The sparse forward is exactly the indexer's indices through sparseAttention...
    const { indices } = lightningIndexer(weights, inputs, { topK: c.topK, ropeDim: 8 });
    const k = indices.shape[2];
    const perHead = new Int32Array(c.t * c.hkv * k);
    for (let r = 0; r < c.t; r++) for (let g = 0; g < c.hkv; g++) perHead.set(indices.data.subarray(r * k, (r + 1) * k), (r * c.hkv + g) * k);
    const idx = { data: perHead, shape: [c.t, c.hkv, k] };
    assert.deepEqual(sparse.out.data, sparseAttention(attention.q, attention.kv, idx, { dV: c.dV }).out.data);
    // ...and both match the float64 reference on those indices.
    const s = c.sPast + c.t;
    const ref = { out: new Float64Array(c.t * c.hq * c.dV), lse: new Float64Array(c.t * c.hq), maxLogits: new Float64Array(c.t * c.hq) };
    sparseAttentionReference(
      { q: attention.q.data, kv: attention.kv.data, indices: perHead, ...ref, s, hq: c.hq, hkv: c.hkv, dqk: c.dqk, dV: c.dV, k, smScale: 1 / Math.sqrt(c.dqk), rowOffset: 0 },
      0,
      c.t,
    );
    assertClose(sparse.out.data, ref.out, TOL, 'sparse vs float64');
    assertClose(dense.out.data, ref.out, TOL, 'dense vs float64');
  });
}

test('causal: early queries see fewer than topK keys (-1 slots), and the forwards still agree', () => {
  const { weights, inputs, attention } = layer(6, 0, 2, 1, 8);
  const r = dsaForward(weights, inputs, attention, { indexer: { topK: 4, ropeDim: 8 } });
  const d = dsaForwardDense(weights, inputs, attention, { indexer: { topK: 4, ropeDim: 8 } });
  assert.deepEqual([...r.indexer.indices.data.subarray(0, 4)], [0, -1, -1, -1]);
  // Query 0 sees only key 0: its output is key 0's value row, for both heads.
  assert.deepEqual([...r.out.data.subarray(0, 8)], [...attention.kv.data.subarray(0, 8)]);
  assertClose(d.out.data, r.out.data, TOL, 'out');
});

test('errors: one sequence (b = 1), kv holding s = sPast + t keys, q holding t rows', () => {
  const { weights, inputs, attention } = layer(4, 10, 2, 1, 8);
  assert.throws(() => dsaForward(weights, inputs, { ...attention, kv: randomFloats([13, 1, 8], 1) }), /attention\.kv: expected s = sPast \+ t = 14 keys, got 13/);
  assert.throws(() => dsaForward(weights, inputs, { ...attention, q: randomFloats([3, 2, 8], 1) }), /attention\.q: expected t = 4 rows/);
  const two = { x: randomFloats([2, 4, 32], 1), qr: randomFloats([2, 4, 24], 2) };
  assert.throws(() => dsaForwardDense(weights, two, attention), /expected b = 1, got b = 2/);
});

test('dsaForward and the pool\'s dsaForward accept int8 (int8 or int7 queries) and FP8 key caches (quantizeKeys, quantizeKeysFp8): same output as the float32 cache at that precision', async () => {
  const { quantizeKeys, quantizeKeysFp8 } = await import('../../src/indexer/quantized-keys.js');
  const { createPool } = await import('../../src/pool/index.js');
  const { weights, inputs, attention } = layer(3, 20, 4, 1, 24);
  const kCache = inputs.kCache!;
  const pool = createPool({ threads: 2 });
  try {
    for (const [precision, cache] of [['int8', quantizeKeys(kCache)], ['int7', quantizeKeys(kCache)], ['fp8', quantizeKeysFp8(kCache)]] as const) {
      const opts = { indexer: { topK: 8, ropeDim: 8, precision }, dV: 16 };
      const float = dsaForward(weights, inputs, attention, opts);
      const quant = dsaForward(weights, { ...inputs, kCache: cache }, attention, opts);
      assert.deepEqual(quant.indexer.indices.data, float.indexer.indices.data, `${precision} indices`);
      assert.deepEqual(quant.out.data, float.out.data, `${precision} out`);
      const pooled = await pool.dsaForward(weights, { ...inputs, kCache: cache }, attention, opts);
      assert.deepEqual(pooled.out.data, quant.out.data, `${precision} pool out`);
      assert.deepEqual(pooled.lse.data, quant.lse.data, `${precision} pool lse`);
    }
  } finally {
    await pool.close();
  }
});
