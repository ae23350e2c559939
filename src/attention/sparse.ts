/**
 * Sparse (gathered) attention, FlashMLA's `flash_mla_sparse_fwd` interface on
 * the CPU: each query row attends only to the keys its indices name, so the
 * cost is O(t * hq * k * (dqk + dV)) whatever s is, and no mask exists.
 */
import type { Plan } from '../plan.js';
import { runPlan } from '../plan.js';
import type { Alloc, Tensor } from '../tensor.js';
import { allocLocal } from '../tensor.js';
import { checkTensor } from '../validate.js';
import { type AttentionOptions, type AttentionResult, checkAttentionInputs, useSimd } from './inputs.js';
import type { KernelArgs } from '../plan.js';
import { attentionKernels } from './kernels.js';

export interface SparseAttentionOptions extends AttentionOptions {
  /** The caller promises no valid index repeats within a (row, kv head): skips the dedupe pass. */
  assumeUnique?: boolean;
}

export interface SparseAttentionResult extends AttentionResult {
  /** [rows, hq], the max scaled logit (natural units); -Infinity when no key is valid. */
  maxLogits: Tensor<Float32Array>;
}

/**
 * Builds the plan of `sparseAttention`: validates, allocates the outputs with
 * `alloc`, one step over the query rows.
 */
export function planSparseAttention(
  q: Tensor<Float32Array>,
  kv: Tensor<Float32Array>,
  indices: Tensor<Int32Array>,
  opts: SparseAttentionOptions = {},
  alloc: Alloc = allocLocal,
): Plan<SparseAttentionResult> {
  const dims = checkAttentionInputs('sparseAttention', q, kv, opts);
  const { t, hq, hkv, dqk, dV, s, smScale, rowStart, rowEnd } = dims;
  const [ti, hkvIdx, k] = checkTensor('indices', indices, Int32Array, ['t', 'hkv', 'k']);
  if (ti !== t || hkvIdx !== hkv) {
    throw new RangeError(`indices.shape: expected [${t}, ${hkv}, k] (t of q, hkv of kv), got [${indices.shape.join(', ')}]`);
  }
  const rows = rowEnd - rowStart;
  const out = alloc(Float32Array, rows * hq * dV);
  const lse = alloc(Float32Array, rows * hq);
  const maxLogits = alloc(Float32Array, rows * hq);
  const args: KernelArgs = {
    q: q.data, kv: kv.data, indices: indices.data, out, lse, maxLogits,
    s, hq, hkv, dqk, dV, k, smScale, assumeUnique: opts.assumeUnique === true, rowOffset: rowStart, simd: useSimd(opts.simd),
  };
  return {
    steps: [{ kernel: 'attention.sparse', args, rows: [rowStart, rowEnd], writes: ['out', 'lse', 'maxLogits'] }],
    finish: () => ({
      out: { data: out, shape: [rows, hq, dV] },
      lse: { data: lse, shape: [rows, hq] },
      maxLogits: { data: maxLogits, shape: [rows, hq] },
    }),
  };
}

/**
 * Sparse attention over gathered keys (FlashMLA's sparse interface).
 *
 * - `q` [t, hq, dqk] Float32Array; `kv` [s, hkv, dqk] Float32Array, keys and
 *   values in one (v is the first `dV` dims of each row, MLA: dqk = 576, dV = 512);
 * - `indices` [t, hkv, k] Int32Array: the keys each query row attends to per
 *   kv head. -1 (any negative) or >= s is skipped; a key named twice counts
 *   once unless `assumeUnique` (then duplicates would count twice).
 *   Query head h uses kv head `floor(h / (hq / hkv))`.
 *
 * Returns `out` [rows, hq, dV], `lse` [rows, hq] (natural log of the softmax
 * denominator of the scaled logits) and `maxLogits` [rows, hq]. A query with
 * no valid key outputs 0 with lse = maxLogits = -Infinity. Equals
 * `denseAttention` with the mask of the same indices, to float32 rounding.
 */
export function sparseAttention(
  q: Tensor<Float32Array>,
  kv: Tensor<Float32Array>,
  indices: Tensor<Int32Array>,
  opts: SparseAttentionOptions = {},
): SparseAttentionResult {
  return runPlan(planSparseAttention(q, kv, indices, opts, allocLocal), attentionKernels);
}
