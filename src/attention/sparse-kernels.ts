/**
 * The sparse attention row kernel and its reference (the plan and the
 * public edge are in sparse.ts): each query row attends to the distinct
 * valid keys its indices name, by an online softmax over blocks of them.
 */
import type { KernelArgs } from '../plan.js';
import { BLOCK, dot, finishGroup, foldBlock, foldBlockSimd, getWorkspace, resetGroup, rowArgs } from './online.js';

/**
 * Kernel args: q [t,hq,dqk], kv [s,hkv,dqk], indices [t,hkv,k] (read);
 * out [rows,hq,dV], lse [rows,hq], maxLogits [rows,hq] (written, row r at
 * r - rowOffset); sizes s, hq, hkv, dqk, dV, k, smScale, assumeUnique, rowOffset;
 * simd: use the WebAssembly SIMD module where this thread has it.
 */
export function sparseAttentionRows(args: KernelArgs, rowStart: number, rowEnd: number): void {
  const { q, kv, out, lse, s, hq, hkv, dqk, dV, smScale, rowOffset, group, kvStride, buf } = rowArgs(args);
  const indices = args.indices as Int32Array;
  const maxLogits = args.maxLogits as Float32Array;
  const topK = args.k as number;
  const assumeUnique = args.assumeUnique as boolean;
  const ws = getWorkspace(group, dV, topK, assumeUnique ? 0 : s);
  const { keys, seen } = ws;
  for (let r = rowStart; r < rowEnd; r++) {
    for (let g = 0; g < hkv; g++) {
      // Gather the valid, distinct keys once for all heads of the group.
      const base = (r * hkv + g) * topK;
      let n = 0;
      if (assumeUnique) {
        for (let i = 0; i < topK; i++) {
          const j = indices[base + i];
          if (j >= 0 && j < s) keys[n++] = j;
        }
      } else {
        for (let i = 0; i < topK; i++) {
          const j = indices[base + i];
          if (j < 0 || j >= s) continue;
          const bit = 1 << (j & 31);
          if ((seen[j >>> 5] & bit) === 0) {
            seen[j >>> 5] |= bit;
            keys[n++] = j;
          }
        }
        // Every bit set in these words belongs to a listed key: zero them whole.
        for (let i = 0; i < n; i++) seen[keys[i] >>> 5] = 0;
      }
      resetGroup(ws, group, dV);
      const qBase = (r * hq + g * group) * dqk;
      if (buf) {
        buf.q.set(q.subarray(qBase, qBase + group * dqk));
        buf.acc.fill(0);
        for (let first = 0; first < n; first += BLOCK) {
          foldBlockSimd(ws, buf, group, dqk, kv, kvStride, g * dqk, first, Math.min(BLOCK, n - first), dV, smScale, false, false);
        }
        finishGroup(ws, group, dV, n > 0, out, lse, maxLogits, (r - rowOffset) * hq + g * group, buf.acc);
        continue;
      }
      for (let first = 0; first < n; first += BLOCK) {
        foldBlock(ws, q, qBase, group, dqk, kv, kvStride, g * dqk, first, Math.min(BLOCK, n - first), dV, smScale, false);
      }
      finishGroup(ws, group, dV, n > 0, out, lse, maxLogits, (r - rowOffset) * hq + g * group);
    }
  }
}

/**
 * The plain reference: same args, a two-pass softmax per (row, head) over the
 * distinct valid keys, float64 throughout (out/lse/maxLogits may be Float64Array).
 */
export function sparseAttentionReference(args: KernelArgs, rowStart: number, rowEnd: number): void {
  const q = args.q as Float32Array;
  const kv = args.kv as Float32Array;
  const indices = args.indices as Int32Array;
  const [out, lse, maxLogits] = [args.out, args.lse, args.maxLogits] as (Float32Array | Float64Array)[];
  const [s, hq, hkv, dqk, dV, topK, smScale, rowOffset] = ['s', 'hq', 'hkv', 'dqk', 'dV', 'k', 'smScale', 'rowOffset'].map((n) => args[n] as number);
  for (let r = rowStart; r < rowEnd; r++) {
    for (let h = 0; h < hq; h++) {
      const g = Math.floor(h / (hq / hkv));
      const slots = Array.from(indices.subarray((r * hkv + g) * topK, (r * hkv + g + 1) * topK));
      const keys = [...new Set(slots.filter((j) => j >= 0 && j < s))]; // [n]
      const logits = keys.map((j) => dot(q, (r * hq + h) * dqk, kv, (j * hkv + g) * dqk, dqk) * smScale); // [n]
      const m = Math.max(...logits);
      const p = logits.map((l) => Math.exp(l - m)); // [n]
      const sum = p.reduce((a, b) => a + b, 0);
      const o = ((r - rowOffset) * hq + h) * dV;
      for (let d = 0; d < dV; d++) {
        out[o + d] = keys.length ? keys.reduce((a, j, i) => a + p[i] * kv[(j * hkv + g) * dqk + d], 0) / sum : 0;
      }
      lse[(r - rowOffset) * hq + h] = keys.length ? m + Math.log(sum) : -Infinity;
      maxLogits[(r - rowOffset) * hq + h] = keys.length ? m : -Infinity;
    }
  }
}
