// The layer from a checkpoint (src/model/checkpoint.ts's tiny DeepSeek-V3.2
// fixture, test/golden/checkpoint: FP8 weights with partial 128 x 128
// blocks, bf16 and float32 ones, YaRN): each layer's prefill and decode
// steps through an FP8 cache bit for bit the same layer with float32
// weights of the values the stored ones are read as, and both FP8 readings
// run to finite outputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { openCheckpoint } from '../../src/model/checkpoint.js';
import { createDsaCache } from '../../src/cache/cache.js';
import { rng } from '../../src/cli/demo-data.js';
import { bf16Bits, bf16Value, dequantizeWeight, type Weight } from '../../src/weights/weight.js';
import type { MlaLayerWeights } from '../../src/model/types.js';
import { mlaDecodeStep, mlaPrefill, type MlaLayer, type MlaStepOptions } from '../../src/model/mla.js';

/** A float32 weight of the values `linear` reads from w with gemmImpl 'bf16'. */
function asFloat32(w: Weight): Weight {
  const v = dequantizeWeight(w);
  if (w.format === 'fp8') for (let i = 0; i < v.length; i++) v[i] = bf16Value(bf16Bits(v[i]));
  return { format: 'float32', shape: w.shape, data: v };
}

function floatLayer(w: MlaLayerWeights): MlaLayerWeights {
  const ix = w.indexer;
  return {
    ...w, wqA: asFloat32(w.wqA), wqB: asFloat32(w.wqB), wkvA: asFloat32(w.wkvA), wkvB: asFloat32(w.wkvB), wo: asFloat32(w.wo),
    ...(ix === undefined ? {} : { indexer: { ...ix, wqB: asFloat32(ix.wqB), wk: asFloat32(ix.wk), weightsProj: asFloat32(ix.weightsProj) } }),
  };
}

function run(layer: MlaLayer, opts: MlaStepOptions = {}) {
  const { dim, kvLoraRank, qkRopeHeadDim, indexHeadDim } = layer.config;
  const cache = createDsaCache({ batch: 2, pages: 8, pageSize: 4, indexerDim: indexHeadDim, kvDim: kvLoraRank + qkRopeHeadDim });
  const next = rng(11);
  const floats = (n: number) => Float32Array.from({ length: n }, () => next() * 2 - 1);
  const outs: Float32Array[] = [], indices: Int32Array[] = [];
  for (const seq of [0, 1]) {
    const r = mlaPrefill(cache, layer, seq, { x: { data: floats((6 + seq) * dim), shape: [1, 6 + seq, dim] } }, { ...opts, queryBlock: 4 });
    outs.push(r.out.data);
    indices.push(r.indices.data);
  }
  for (let i = 0; i < 2; i++) {
    const r = mlaDecodeStep(cache, layer, { x: { data: floats(2 * dim), shape: [2, 1, dim] } }, opts);
    outs.push(r.out.data);
    indices.push(r.indices.data);
  }
  return { outs, indices };
}

test('a checkpoint layer (FP8, partial blocks, YaRN) through prefill and batch decode: bit for bit its float32 values, both FP8 readings finite', async () => {
  const ckpt = await openCheckpoint(fileURLToPath(new URL('../golden/checkpoint/model', import.meta.url)));
  try {
    for (let i = 0; i < ckpt.layerCount; i++) {
      const weights = await ckpt.loadLayer(i);
      assert.equal(weights.wqA.format, 'fp8', `layer ${i}: the fixture stores FP8 projections`);
      const stored = run({ config: ckpt.config, weights });
      const float = run({ config: ckpt.config, weights: floatLayer(weights) });
      for (let s = 0; s < stored.outs.length; s++) {
        assert.deepEqual(stored.outs[s], float.outs[s], `layer ${i} step ${s}: out`);
        assert.deepEqual(stored.indices[s], float.indices[s], `layer ${i} step ${s}: indices`);
        assert.ok(stored.outs[s].every(Number.isFinite) && stored.outs[s].some((v) => v !== 0), `layer ${i} step ${s}: finite, not all zero`);
      }
      const scaleFormat = ckpt.fp8?.scaleFormat ?? 'float32';
      const gemm = run({ config: ckpt.config, weights }, { gemmImpl: 'fp8', scaleFormat });
      assert.ok(gemm.outs.every((o) => o.every(Number.isFinite)), `layer ${i}: gemmImpl fp8 finite`);
    }
  } finally {
    await ckpt.close();
  }
});
