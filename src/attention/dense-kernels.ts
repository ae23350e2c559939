/**
 * The dense attention row kernel and its reference (the plan and the public
 * edge are in dense.ts): softmax(q.k * smScale + additive mask) . v over all
 * s keys, by an online softmax over key blocks.
 */
import type { KernelArgs } from '../plan.js';
import type { MaskData } from '../tensor.js';
import { DEFAULT_MASK_VALUE } from '../tensor.js';
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
  const sink = (args.attnSink ?? null) as Float32Array | null;
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
      finishGroup(ws, group, dV, kept, out, lse, null, (r - rowOffset) * hq + g * group, buf ? buf.acc : ws.acc, sink, g * group);
    }
  }
}

/**
 * The plain reference: same args, a two-pass softmax per (row, head) over the
 * kept keys, float64 throughout (out and lse may be Float64Array); the sink
 * joins the denominator of out only; a row keeping no key gets out 0 and
 * lse +Infinity.
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
  const sink = (args.attnSink ?? null) as Float32Array | null;
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
      const denominator = sink ? sum + Math.exp(sink[h] - m) : sum;
      const o = ((r - rowOffset) * hq + h) * dV;
      for (let d = 0; d < dV; d++) {
        out[o + d] = keys.length ? keys.reduce((a, j, i) => a + p[i] * kv[(j * hkv + g) * dqk + d], 0) / denominator : 0;
      }
      lse[(r - rowOffset) * hq + h] = keys.length ? m + Math.log(sum) : Infinity;
    }
  }
}
