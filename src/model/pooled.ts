import type { PlanRunner } from '../pool/runner.js';
import { allocShared } from '../tensor.js';
import type { DsaCache } from '../cache/cache.js';
import type { Weight } from '../weights/weight.js';
import type { MlaLayerWeights } from './types.js';
import { planMlaDecodeStep, planMlaPrefill, type MlaLayer, type MlaPrefillOptions, type MlaPrefillResult, type MlaStepInputs, type MlaStepOptions, type MlaStepResult } from './mla.js';
import type { Tensor } from '../tensor.js';

function checkShared(cache: DsaCache): void {
  if (!cache.shared) {
    throw new TypeError('cache: a pool step uses the cache in place and needs it in shared memory; create it with shared: true (the default where SharedArrayBuffer exists)');
  }
}

function share<T extends Float32Array | Uint16Array | Uint8Array>(a: T): T {
  if (typeof SharedArrayBuffer === 'undefined' || a.buffer instanceof SharedArrayBuffer) return a;
  const ctor = a.constructor as new (buffer: SharedArrayBuffer) => T;
  const copy = new ctor(new SharedArrayBuffer(a.byteLength));
  copy.set(a as never);
  return copy;
}

function shareWeight(w: Weight): Weight {
  if (w.format === 'fp8') return { format: 'fp8', shape: w.shape, data: share(w.data), scale: share(w.scale) };
  if (w.format === 'bf16') return { format: 'bf16', shape: w.shape, data: share(w.data) };
  return { format: 'float32', shape: w.shape, data: share(w.data) };
}

/**
 * The layer's weights with every array backed by SharedArrayBuffer, in
 * their stored form (copied once; arrays already shared are kept), so pool
 * steps read them in place instead of staging them on every call.
 */
export function shareMlaWeights(weights: MlaLayerWeights): MlaLayerWeights {
  const ix = weights.indexer;
  return {
    wqA: shareWeight(weights.wqA), qNorm: share(weights.qNorm), wqB: shareWeight(weights.wqB), wkvA: shareWeight(weights.wkvA),
    kvNorm: share(weights.kvNorm), wkvB: shareWeight(weights.wkvB), wo: shareWeight(weights.wo),
    ...(ix === undefined ? {} : {
      indexer: { wqB: shareWeight(ix.wqB), wk: shareWeight(ix.wk), kNormWeight: share(ix.kNormWeight), kNormBias: share(ix.kNormBias), weightsProj: shareWeight(ix.weightsProj) },
    }),
  };
}

/** The async versions of the layer's functions, for `createPool`. */
export function mlaPoolApi(run: PlanRunner) {
  const mlaDecodeStep = async (cache: DsaCache, layer: MlaLayer, inputs: MlaStepInputs, opts: MlaStepOptions = {}): Promise<MlaStepResult> => {
    checkShared(cache);
    cache.acquire();
    try {
      return await run(planMlaDecodeStep(cache, layer, inputs, opts, allocShared));
    } finally {
      cache.release();
    }
  };
  return {
    /** `mlaDecodeStep` on the pool: projections over output features, heads, tokens and the decode step's tiles across workers; bit-identical. */
    mlaDecodeStep,
    /** `mlaPrefill` on the pool, block by block; bit-identical. */
    async mlaPrefill(cache: DsaCache, layer: MlaLayer, seq: number, inputs: { x: Tensor<Float32Array> }, opts: MlaPrefillOptions = {}): Promise<MlaPrefillResult> {
      const prompt = planMlaPrefill(cache, layer, seq, inputs, opts, allocShared);
      for (const block of prompt.blocks) {
        prompt.add(block.from, await mlaDecodeStep(cache, layer, block.inputs, block.opts));
        opts.onProgress?.(block.to, prompt.t);
      }
      return prompt.result();
    },
  };
}
