/**
 * Dense masked attention, the reference the sparse path must equal:
 * softmax(q.k * smScale + additive mask) . v over all s keys, computed with an
 * online softmax over key blocks so nothing of size [t, s] per head is kept.
 * Its cost is O(t * hq * s * (dqk + dV)): what sparse attention avoids.
 */
import type { KernelArgs, Plan } from '../plan.js';
import { runPlan } from '../plan.js';
import type { Alloc, MaskData, MaskForm, Tensor } from '../tensor.js';
import { allocLocal, wordsPerRow } from '../tensor.js';
import { checkTensor } from '../validate.js';
import { type AttentionOptions, type AttentionResult, checkAttentionInputs, checkAttnSink, useSimd } from './inputs.js';
import { attentionKernels } from './kernels.js';
import { checkKnownOptions } from '../options.js';

const formOf = (mask: MaskData): MaskForm => (mask instanceof Float32Array ? 'additive' : mask instanceof Uint8Array ? 'bool' : 'bits');

export function planDenseAttention(
  q: Tensor<Float32Array>,
  kv: Tensor<Float32Array>,
  mask: Tensor<MaskData>,
  opts: AttentionOptions = {},
  alloc: Alloc = allocLocal,
): Plan<AttentionResult> {
  const { t, hq, hkv, dqk, dV, s, smScale, rowStart, rowEnd } = checkAttentionInputs('denseAttention', q, kv, opts);
  const [mt, mh, width] = checkTensor<MaskData>('mask', mask, [Float32Array, Uint8Array, Uint32Array], ['t', 'hkv', 's']);
  const form = formOf(mask.data);
  const maskStride = form === 'bits' ? wordsPerRow(s) : s;
  if (mt !== t || mh !== hkv || width !== maskStride) {
    const last = form === 'bits' ? `ceil(s/32) = ${maskStride}` : `s = ${s}`;
    throw new RangeError(`mask.shape: expected [${t}, ${hkv}, ${maskStride}] (t of q, hkv of kv, ${last} for a ${form} mask), got [${mask.shape.join(', ')}]`);
  }
  const rows = rowEnd - rowStart;
  const out = alloc(Float32Array, rows * hq * dV);
  const lse = alloc(Float32Array, rows * hq);
  const attnSink = checkAttnSink(opts.attnSink, hq);
  const args: KernelArgs = { q: q.data, kv: kv.data, mask: mask.data, out, lse, form, maskStride, s, hq, hkv, dqk, dV, smScale, rowOffset: rowStart, simd: useSimd(opts.simd), attnSink };
  return {
    steps: [{ kernel: 'attention.dense', args, rows: [rowStart, rowEnd], writes: ['out', 'lse'] }],
    finish: () => ({ out: { data: out, shape: [rows, hq, dV] }, lse: { data: lse, shape: [rows, hq] } }),
  };
}

/**
 * Dense masked attention, the reference.
 *
 * - `q` [t, hq, dqk] Float32Array; `kv` [s, hkv, dqk] Float32Array (v is the
 *   first `dV` dims of each row); query head h uses kv head `floor(h / (hq / hkv))`;
 * - `mask` [t, hkv, s] in any form: additive Float32Array (its values are
 *   added to the scaled logits; DEFAULT_MASK_VALUE or lower, -Infinity
 *   included, drops the key), bool Uint8Array (1 kept), or bits Uint32Array
 *   [t, hkv, ceil(s/32)].
 *
 * Returns `out` [rows, hq, dV] and `lse` [rows, hq] (natural log). A row whose
 * mask keeps no key outputs 0 with lse = +Infinity, FlashMLA's convention (a
 * plain softmax would average every key instead). `attnSink` as in
 * `sparseAttention`.
 */
export function denseAttention(
  q: Tensor<Float32Array>,
  kv: Tensor<Float32Array>,
  mask: Tensor<MaskData>,
  opts: AttentionOptions = {},
): AttentionResult {
  checkKnownOptions('denseAttention', opts, ['dV', 'smScale', 'rows', 'maxBytes', 'simd', 'attnSink']);
  return runPlan(planDenseAttention(q, kv, mask, opts, allocLocal), attentionKernels);
}
