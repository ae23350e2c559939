/**
 * Dense masked attention, the reference the sparse path must equal:
 * softmax(q.k * smScale + additive mask) . v over all s keys, computed with an
 * online softmax over key blocks so nothing of size [t, s] per head is kept.
 * Its cost is O(t * hq * s * (dqk + dV)): what sparse attention avoids.
 */
import type { KernelArgs, Plan } from '../plan.js';
import { runPlan } from '../plan.js';
import type { Alloc, MaskData, MaskForm, Tensor } from '../tensor.js';
import { DEFAULT_MASK_VALUE, allocLocal, wordsPerRow } from '../tensor.js';
import { checkTensor } from '../validate.js';
import { type AttentionOptions, type AttentionResult, checkAttentionInputs, useSimd } from './inputs.js';
import { BLOCK, dot, finishGroup, foldBlock, foldBlockSimd, getWorkspace, resetGroup, rowArgs } from './online.js';

/**
 * The additive bias of key j in a mask row starting at `off`: an additive
 * mask's own value; bool/bits map kept to 0 and dropped to DEFAULT_MASK_VALUE.
 */
function maskBias(mask: MaskData, form: string, off: number, j: number): number {
  if (form === 'additive') return mask[off + j];
  if (form === 'bool') return mask[off + j] !== 0 ? 0 : DEFAULT_MASK_VALUE;
  return (mask[off + (j >>> 5)] >>> (j & 31)) & 1 ? 0 : DEFAULT_MASK_VALUE;
}

/** A key is kept unless its additive value is DEFAULT_MASK_VALUE or lower (-Infinity included). */
function isKept(bias: number): boolean {
  return bias > DEFAULT_MASK_VALUE;
}

/**
 * Kernel args: q [t,hq,dqk], kv [s,hkv,dqk], mask [t,hkv,s] (or [t,hkv,words]
 * for bits) (read); out [rows,hq,dV], lse [rows,hq] (written, row r at
 * r - rowOffset); form, maskStride, s, hq, hkv, dqk, dV, smScale, rowOffset;
 * simd: use the WebAssembly SIMD module where this thread has it.
 */
export function denseAttentionRows(args: KernelArgs, rowStart: number, rowEnd: number): void {
  const { q, kv, out, lse, s, hq, hkv, dqk, dV, smScale, rowOffset, group, kvStride, buf } = rowArgs(args);
  const mask = args.mask as MaskData;
  const form = args.form as string;
  const maskStride = args.maskStride as number;
  const ws = getWorkspace(group, dV, BLOCK, 0);
  const { keys, bias } = ws;
  for (let r = rowStart; r < rowEnd; r++) {
    for (let g = 0; g < hkv; g++) {
      const maskOff = (r * hkv + g) * maskStride;
      let kept = false;
      resetGroup(ws, group, dV);
      const qBase = (r * hq + g * group) * dqk;
      if (buf) {
        buf.q.set(q.subarray(qBase, qBase + group * dqk));
        buf.acc.fill(0);
      }
      for (let first = 0; first < s; first += BLOCK) {
        const count = Math.min(BLOCK, s - first);
        for (let kb = 0; kb < count; kb++) {
          keys[kb] = first + kb;
          bias[kb] = maskBias(mask, form, maskOff, first + kb);
          if (isKept(bias[kb])) kept = true;
        }
        if (buf) foldBlockSimd(ws, buf, group, dqk, kv, kvStride, g * dqk, 0, count, dV, smScale, true, true);
        else foldBlock(ws, q, qBase, group, dqk, kv, kvStride, g * dqk, 0, count, dV, smScale, true);
      }
      finishGroup(ws, group, dV, kept, out, lse, null, (r - rowOffset) * hq + g * group, buf ? buf.acc : ws.acc);
    }
  }
}

/**
 * The plain reference: same args, a two-pass softmax per (row, head) over the
 * kept keys, float64 throughout (out and lse may be Float64Array).
 */
export function denseAttentionReference(args: KernelArgs, rowStart: number, rowEnd: number): void {
  const q = args.q as Float32Array;
  const kv = args.kv as Float32Array;
  const [out, lse] = [args.out, args.lse] as (Float32Array | Float64Array)[];
  const mask = args.mask as MaskData;
  const form = args.form as string;
  const [maskStride, s, hq, hkv, dqk, dV, smScale, rowOffset] = ['maskStride', 's', 'hq', 'hkv', 'dqk', 'dV', 'smScale', 'rowOffset'].map(
    (n) => args[n] as number,
  );
  for (let r = rowStart; r < rowEnd; r++) {
    for (let h = 0; h < hq; h++) {
      const g = Math.floor(h / (hq / hkv));
      const keys = [...Array(s).keys()].filter((j) => isKept(maskBias(mask, form, (r * hkv + g) * maskStride, j))); // [n]
      const logits = keys.map(
        (j) => dot(q, (r * hq + h) * dqk, kv, (j * hkv + g) * dqk, dqk) * smScale + maskBias(mask, form, (r * hkv + g) * maskStride, j),
      ); // [n]
      const m = logits.reduce((a, b) => Math.max(a, b), -Infinity);
      const p = logits.map((l) => Math.exp(l - m)); // [n]
      const sum = p.reduce((a, b) => a + b, 0);
      const o = ((r - rowOffset) * hq + h) * dV;
      for (let d = 0; d < dV; d++) {
        out[o + d] = keys.length ? keys.reduce((a, j, i) => a + p[i] * kv[(j * hkv + g) * dqk + d], 0) / sum : 0;
      }
      lse[(r - rowOffset) * hq + h] = keys.length ? m + Math.log(sum) : -Infinity;
    }
  }
}

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
  const args: KernelArgs = { q: q.data, kv: kv.data, mask: mask.data, out, lse, form, maskStride, s, hq, hkv, dqk, dV, smScale, rowOffset: rowStart, simd: useSimd(opts.simd) };
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
 * mask keeps no key outputs 0 with lse = -Infinity (a plain softmax would
 * average every key instead).
 */
export function denseAttention(
  q: Tensor<Float32Array>,
  kv: Tensor<Float32Array>,
  mask: Tensor<MaskData>,
  opts: AttentionOptions = {},
): AttentionResult {
  return runPlan(planDenseAttention(q, kv, mask, opts, allocLocal));
}
