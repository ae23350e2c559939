import type { PlanRunner } from '../pool/runner.js';
import { allocShared, type Tensor } from '../tensor.js';
import { planIndexerScores, type IndexerKeys, type IndexerScoresOptions } from './scores.js';
import { prepareLightningIndexer, type KeyCache, type IndexerInputs, type IndexerWeights, type LightningIndexerOptions, type LightningIndexerResult } from './module.js';
import { planTopk } from '../topk/topk.js';
import { planGenerateMask } from '../mask/masks.js';

/** The async versions of this area's public functions, for `createPool`. */
export function indexerPoolApi(run: PlanRunner) {
  return {
    /** `indexerScores` on the pool: key-block x row tiles split across workers; bit-identical. */
    indexerScores: async (q: Tensor<Float32Array>, k: IndexerKeys, w: Tensor<Float32Array>, opts: IndexerScoresOptions = {}) =>
      run(planIndexerScores(q, k, w, opts, allocShared)),
    /**
     * `lightningIndexer` with the scores, top-k and mask on the pool (the
     * projections run on this thread); bit-identical to the synchronous call.
     */
    lightningIndexer: async <K extends KeyCache = Tensor<Float32Array>>(
      weights: IndexerWeights,
      inputs: IndexerInputs<K>,
      opts: LightningIndexerOptions = {},
    ): Promise<LightningIndexerResult<K>> => {
      const p = prepareLightningIndexer(weights, inputs, opts, allocShared);
      const scores = await run(planIndexerScores(p.q, p.keys, p.w, p.scoreOpts, allocShared));
      const selected = await run(planTopk(scores, p.k, p.topkOpts, allocShared));
      const result: LightningIndexerResult<K> = { scores, values: selected.values, indices: selected.indices, keys: p.keys as K };
      if (p.maskForm !== undefined) result.mask = await run(planGenerateMask(selected.indices, p.s, { form: p.maskForm, maxBytes: p.maxBytes }, allocShared));
      return result;
    },
  };
}
