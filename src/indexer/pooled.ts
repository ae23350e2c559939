import type { PlanRunner } from '../parallel.js';
import { allocShared, type Tensor } from '../tensor.js';
import { planIndexerScores, type IndexerScoresOptions } from './scores.js';

/** The async versions of this area's public functions, for `createPool`. */
export function indexerPoolApi(run: PlanRunner) {
  return {
    /** `indexerScores` on the pool: key-block x row tiles split across workers; bit-identical. */
    indexerScores: async (q: Tensor<Float32Array>, k: Tensor<Float32Array>, w: Tensor<Float32Array>, opts: IndexerScoresOptions = {}) =>
      run(planIndexerScores(q, k, w, opts, allocShared)),
  };
}
