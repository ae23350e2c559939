import type { PlanRunner } from '../pool/runner.js';
import { allocShared, type Tensor } from '../tensor.js';
import type { IndexerWeights } from '../indexer/module.js';
import type { DsaCache } from './cache.js';
import { planDecodeStep, planPrefill, type PrefillInputs, type PrefillOptions, type StepInputs, type StepOptions, type StepResult } from './step.js';
import { planPagedSlots, type PagedSlotsOptions } from './slots.js';

function checkShared(cache: DsaCache): void {
  if (!cache.shared) {
    throw new TypeError('cache: a pool step uses the cache in place and needs it in shared memory; create it with shared: true (the default where SharedArrayBuffer exists)');
  }
}

/** The async versions of this area's public functions, for `createPool`. */
export function cachePoolApi(run: PlanRunner) {
  const decodeStep = async (weights: IndexerWeights, cache: DsaCache, inputs: StepInputs, opts: StepOptions = {}): Promise<StepResult> => {
    checkShared(cache);
    cache.acquire();
    try {
      return await run(planDecodeStep(weights, cache, inputs, opts, allocShared));
    } finally {
      cache.release();
    }
  };
  return {
    /**
     * `decodeStep` on the pool: projections, scores, top-k and attention split
     * across workers over the cache's shared buffers in place; bit-identical.
     * Weights not backed by SharedArrayBuffer are copied in on every call
     * (`shareWeights` once avoids it).
     */
    decodeStep,
    /** `prefill` on the pool, block by block; bit-identical. */
    async prefill(weights: IndexerWeights, cache: DsaCache, seq: number, inputs: PrefillInputs, opts: PrefillOptions = {}) {
      const prompt = planPrefill(cache, seq, inputs, opts, allocShared);
      for (const block of prompt.blocks) {
        prompt.add(block.from, await decodeStep(weights, cache, block.inputs, opts));
        opts.onProgress?.(block.to, prompt.t);
      }
      return prompt.result();
    },
    /** `pagedSlots` on the pool. */
    pagedSlots: async (indices: Tensor<Int32Array>, blockTable: Tensor<Int32Array>, pageSize: number, opts: PagedSlotsOptions = {}) =>
      run(planPagedSlots(indices, blockTable, pageSize, opts, allocShared)),
  };
}
