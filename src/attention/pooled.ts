import type { PlanRunner } from '../parallel.js';
import type { MaskData, Tensor } from '../tensor.js';
import { allocShared } from '../tensor.js';
import type { AttentionOptions, AttentionResult } from './inputs.js';
import { planDenseAttention } from './dense.js';
import { type SparseAttentionOptions, type SparseAttentionResult, planSparseAttention } from './sparse.js';

/**
 * The async versions of this area's public functions, for `createPool`.
 * Validation errors reject the returned promise, like worker errors.
 */
export function attentionPoolApi(run: PlanRunner) {
  return {
    /** `denseAttention` on the pool: query rows split across workers. */
    denseAttention: async (q: Tensor<Float32Array>, kv: Tensor<Float32Array>, mask: Tensor<MaskData>, opts?: AttentionOptions): Promise<AttentionResult> =>
      run(planDenseAttention(q, kv, mask, opts, allocShared)),
    /** `sparseAttention` on the pool: query rows split across workers. */
    sparseAttention: async (
      q: Tensor<Float32Array>,
      kv: Tensor<Float32Array>,
      indices: Tensor<Int32Array>,
      opts?: SparseAttentionOptions,
    ): Promise<SparseAttentionResult> => run(planSparseAttention(q, kv, indices, opts, allocShared)),
  };
}
