// The layer on the worker pool (src/model/pooled.ts) equals the layer on
// this thread bit for bit: prefill in blocks, batch decode, a shared layer,
// FP8 and float32 weights, shared and plain weight arrays.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createWorkerPool } from '../../src/pool/pool.js';
import { planRunner } from '../../src/pool/runner.js';
import { createStaging } from '../../src/pool/staging.js';
import { createDsaCache } from '../../src/cache/cache.js';
import { rng } from '../../src/cli/demo-data.js';
import { quantizeWeightFp8, type Weight } from '../../src/weights/weight.js';
import type { MlaConfig, MlaLayerWeights } from '../../src/model/types.js';
import { mlaDecodeStep, mlaPrefill, type MlaLayer } from '../../src/model/mla.js';
import { mlaPoolApi, shareMlaWeights } from '../../src/model/pooled.js';
import { kernels } from './pool-kernels.js';

const config: MlaConfig = {
  dim: 48, nHeads: 4, qLoraRank: 24, kvLoraRank: 16, qkNopeHeadDim: 8, qkRopeHeadDim: 8, vHeadDim: 12,
  indexNHeads: 2, indexHeadDim: 16, indexTopk: 6, normEps: 1e-6, ropeTheta: 10000,
  rope: { factor: 4, originalSeqLen: 64, betaFast: 32, betaSlow: 1, mscale: 1 }, nLayers: 1,
};

function floats(length: number, seed: number, scale: number): Float32Array {
  const next = rng(seed);
  return Float32Array.from({ length }, () => (next() * 2 - 1) * scale);
}

function weights(fp8: boolean): MlaLayerWeights {
  let seed = 1;
  const w = (out: number, inDim: number): Weight => {
    const data = floats(out * inDim, seed++, inDim ** -0.5);
    return fp8 ? quantizeWeightFp8({ data, shape: [out, inDim] }) : { format: 'float32', shape: [out, inDim], data };
  };
  const { dim, nHeads: H, qLoraRank: q, kvLoraRank: c, qkNopeHeadDim: nope, qkRopeHeadDim: r, vHeadDim: v, indexNHeads: h, indexHeadDim: d } = config;
  return {
    wqA: w(q, dim), qNorm: floats(q, 90, 1).map((x) => 1 + 0.2 * x), wqB: w(H * (nope + r), q), wkvA: w(c + r, dim), kvNorm: floats(c, 91, 1).map((x) => 1 + 0.2 * x),
    wkvB: w(H * (nope + v), c), wo: w(dim, H * v),
    indexer: { wqB: w(h * d, q), wk: w(d, dim), kNormWeight: floats(d, 92, 1), kNormBias: floats(d, 93, 0.1), weightsProj: w(h, dim) },
  };
}

test('mlaDecodeStep and mlaPrefill on 2 workers equal one thread bit for bit (float32 and FP8 weights, plain and shared, a shared layer)', async () => {
  const pool = createWorkerPool({ threads: 2, registry: new URL('./pool-kernels.ts', import.meta.url) });
  const api = mlaPoolApi(planRunner(pool, kernels, createStaging()));
  try {
    for (const fp8 of [false, true]) {
      for (const shared of [false, true]) {
        const plain = weights(fp8);
        const layer: MlaLayer = { config, weights: shared ? shareMlaWeights(plain) : plain };
        const options = { batch: 2, pages: 6, pageSize: 4, indexerDim: 16, keyForm: 'int8' as const, kvDim: 24 };
        const here = createDsaCache(options), there = createDsaCache(options);
        const prompt = { data: floats(11 * 48, 7, 1), shape: [1, 11, 48] };
        const a = mlaPrefill(here, layer, 1, { x: prompt }, { queryBlock: 4 });
        const b = await api.mlaPrefill(there, layer, 1, { x: prompt }, { queryBlock: 4 });
        assert.deepEqual(b.out.data, a.out.data, 'prefill out');
        assert.deepEqual(b.indices.data, a.indices.data, 'prefill indices');
        for (let i = 0; i < 3; i++) {
          const x = { data: floats(2 * 48, 20 + i, 1), shape: [2, 1, 48] };
          const p = mlaDecodeStep(here, layer, { x });
          const q = await api.mlaDecodeStep(there, layer, { x });
          assert.deepEqual(q.out.data, p.out.data, `decode ${i} out`);
          assert.deepEqual(q.lse.data, p.lse.data, `decode ${i} lse`);
          const { indexer: _, ...rest } = layer.weights;
          const s = mlaDecodeStep(createDsaCache(options), { config, weights: rest }, { x: { data: x.data.subarray(0, 48), shape: [1, 1, 48] } }, { indices: { data: Int32Array.of(0, -1), shape: [1, 1, 2] } });
          const sp = await api.mlaDecodeStep(createDsaCache(options), { config, weights: rest }, { x: { data: x.data.subarray(0, 48), shape: [1, 1, 48] } }, { indices: { data: Int32Array.of(0, -1), shape: [1, 1, 2] } });
          assert.deepEqual(sp.out.data, s.out.data, `shared decode ${i}`);
        }
        assert.deepEqual(there.kv.data, here.kv.data, 'the caches');
      }
    }
  } finally {
    await pool.close();
  }
});
