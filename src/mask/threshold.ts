/**
 * Masks from a score threshold (MaxText's merged form). The row's threshold
 * is the smallest of its k top-k values.
 *   exact: keep keys with score > threshold, at most k, in increasing key
 *          order; then keys with score == threshold, in increasing key order,
 *          until k are kept.
 *   raw:   keep every key with score >= threshold.
 * A NaN score compares false both ways and is never kept.
 *
 * The fast kernels reduce both modes to two cut positions per row: keep
 * score > thr at keys j < cutGreater and score == thr at keys j < cutEqual.
 * Args: scores [rows, s], values [rows, k], out, s, k, rowBase, exact (bool).
 */
import { DEFAULT_MASK_VALUE } from '../tensor.js';
import type { KernelArgs } from '../plan.js';
import { keepKey, writeKey } from './broadcast.js';

function rowThreshold(values: Float32Array, r: number, k: number): number {
  let thr = values[r * k];
  for (let i = r * k + 1, end = r * k + k; i < end; i++) if (values[i] < thr) thr = values[i];
  return thr;
}

// [cutGreater, cutEqual] of the row being written; one per thread, never shared.
const cuts = new Int32Array(2);

function rowCuts(scores: Float32Array, base: number, s: number, k: number, thr: number, exact: boolean): void {
  cuts[0] = s;
  cuts[1] = s;
  if (!exact) return;
  let greater = 0;
  for (let j = 0; j < s; j++) {
    if (scores[base + j] > thr && ++greater === k) {
      cuts[0] = j + 1;
      cuts[1] = 0;
      return;
    }
  }
  const need = k - greater;
  let equal = 0;
  for (let j = 0; j < s; j++) {
    if (scores[base + j] === thr && ++equal === need) {
      cuts[1] = j + 1;
      return;
    }
  }
}

export function thresholdAdditive(args: KernelArgs, rowStart: number, rowEnd: number): void {
  const scores = args.scores as Float32Array, values = args.values as Float32Array, out = args.out as Float32Array;
  const s = args.s as number, k = args.k as number, rowBase = args.rowBase as number, exact = args.exact as boolean;
  for (let r = rowStart; r < rowEnd; r++) {
    const thr = rowThreshold(values, r, k);
    const base = r * s, o = (r - rowBase) * s;
    rowCuts(scores, base, s, k, thr, exact);
    const cutGreater = cuts[0], cutEqual = cuts[1];
    for (let j = 0; j < s; j++) {
      const v = scores[base + j];
      out[o + j] = (v > thr && j < cutGreater) || (v === thr && j < cutEqual) ? 0 : DEFAULT_MASK_VALUE;
    }
  }
}

export function thresholdBool(args: KernelArgs, rowStart: number, rowEnd: number): void {
  const scores = args.scores as Float32Array, values = args.values as Float32Array, out = args.out as Uint8Array;
  const s = args.s as number, k = args.k as number, rowBase = args.rowBase as number, exact = args.exact as boolean;
  for (let r = rowStart; r < rowEnd; r++) {
    const thr = rowThreshold(values, r, k);
    const base = r * s, o = (r - rowBase) * s;
    rowCuts(scores, base, s, k, thr, exact);
    const cutGreater = cuts[0], cutEqual = cuts[1];
    for (let j = 0; j < s; j++) {
      const v = scores[base + j];
      out[o + j] = (v > thr && j < cutGreater) || (v === thr && j < cutEqual) ? 1 : 0;
    }
  }
}

export function thresholdBits(args: KernelArgs, rowStart: number, rowEnd: number): void {
  const scores = args.scores as Float32Array, values = args.values as Float32Array, out = args.out as Uint32Array;
  const s = args.s as number, k = args.k as number, rowBase = args.rowBase as number, exact = args.exact as boolean;
  const words = (s + 31) >>> 5;
  for (let r = rowStart; r < rowEnd; r++) {
    const thr = rowThreshold(values, r, k);
    const base = r * s, o = (r - rowBase) * words;
    rowCuts(scores, base, s, k, thr, exact);
    const cutGreater = cuts[0], cutEqual = cuts[1];
    for (let w = 0; w < words; w++) {
      let word = 0;
      for (let j = w << 5, end = Math.min(s, j + 32); j < end; j++) {
        const v = scores[base + j];
        if ((v > thr && j < cutGreater) || (v === thr && j < cutEqual)) word |= 1 << (j & 31);
      }
      out[o + w] = word;
    }
  }
}

/** The reference: the two passes of the definition, key by key, any form. */
export function thresholdReference(args: KernelArgs, rowStart: number, rowEnd: number): void {
  const scores = args.scores as Float32Array, values = args.values as Float32Array;
  const out = args.out as Float32Array | Uint8Array | Uint32Array;
  const s = args.s as number, k = args.k as number, rowBase = args.rowBase as number, exact = args.exact as boolean;
  const form = args.form as string;
  for (let r = rowStart; r < rowEnd; r++) {
    const thr = rowThreshold(values, r, k);
    if (!exact) {
      for (let j = 0; j < s; j++) writeKey(out, form, r - rowBase, s, j, scores[r * s + j] >= thr);
      continue;
    }
    let kept = 0;
    for (let j = 0; j < s; j++) {
      const keep = scores[r * s + j] > thr && kept < k;
      if (keep) kept++;
      writeKey(out, form, r - rowBase, s, j, keep);
    }
    for (let j = 0; j < s && kept < k; j++) {
      if (scores[r * s + j] === thr) {
        kept++;
        keepKey(out, form, r - rowBase, s, j);
      }
    }
  }
}
