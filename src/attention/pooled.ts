import type { PlanRunner } from '../pool/runner.js';
import type { MaskData, Tensor } from '../tensor.js';
import { allocShared } from '../tensor.js';
import type { AttentionOptions, AttentionResult } from './inputs.js';
import { planDenseAttention } from './dense.js';
import { type SparseAttentionOptions, type SparseAttentionResult, planSparseAttention } from './sparse.js';
import { type DsaAttentionInputs, type DsaForwardOptions, type DsaForwardResult, checkForwardInputs, perKvHead } from './forward.js';
import type { IndexerInputs, IndexerWeights, KeyCache } from '../indexer/module.js';
import { indexerPoolApi } from '../indexer/pooled.js';
import { wordsPerRow } from '../tensor.js';

/**
 * The async versions of this area's public functions, for `createPool`.
 * Validation errors reject the returned promise, like worker errors.
 */
export function attentionPoolApi(run: PlanRunner) {
  const { lightningIndexer } = indexerPoolApi(run);
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
    /** `dsaForward` on the pool: the indexer's scores, top-k and the sparse attention split across workers; bit-identical. */
    dsaForward: async (weights: IndexerWeights, inputs: IndexerInputs<KeyCache>, attention: DsaAttentionInputs, opts: DsaForwardOptions = {}): Promise<DsaForwardResult> => {
      const { t, hkv } = checkForwardInputs(inputs, attention);
      const indexer = await lightningIndexer(weights, inputs, { ...opts.indexer });
      const k = indexer.indices.shape[2];
      const indices = { data: perKvHead(indexer.indices.data, t, hkv, k), shape: [t, hkv, k] };
      const attn = { dV: opts.dV, smScale: opts.smScale, simd: opts.simd, assumeUnique: true };
      const { out, lse } = await run(planSparseAttention(attention.q, attention.kv, indices, attn, allocShared));
      return { out, lse, indexer };
    },
    /** `dsaForwardDense` on the pool; bit-identical. */
    dsaForwardDense: async (weights: IndexerWeights, inputs: IndexerInputs<KeyCache>, attention: DsaAttentionInputs, opts: DsaForwardOptions = {}) => {
      const { t, s, hkv } = checkForwardInputs(inputs, attention);
      const indexer = await lightningIndexer(weights, inputs, { ...opts.indexer, maskForm: 'bits' });
      const words = wordsPerRow(s);
      const mask = { data: perKvHead(indexer.mask!.data, t, hkv, words), shape: [t, hkv, words] };
      const attn = { dV: opts.dV, smScale: opts.smScale, simd: opts.simd };
      const { out, lse } = await run(planDenseAttention(attention.q, attention.kv, mask, attn, allocShared));
      return { out, lse, indexer, mask };
    },
  };
}
