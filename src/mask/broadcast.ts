/**
 * The broadcast strategy, the reference: MaxText's
 * `(arange(s) == topk[..., None]).any(-2)` evaluated one key at a time, so
 * it costs O(b*t*k*s) compares but never materialises [b, t, k, s].
 * Key j of row r is kept iff some slot i has indices[r, i] === j (and, with
 * a causal offset, j <= ti + offset; with per-row ranges, lo <= j < hi).
 * Same args as the scatter kernels plus `form`.
 */
import { DEFAULT_MASK_VALUE } from '../tensor.js';
import type { KernelArgs } from '../plan.js';
import { flagged } from './check.js';
import { keyRange } from './form.js';

export function broadcastMask(args: KernelArgs, rowStart: number, rowEnd: number): void {
  const indices = args.indices as Int32Array;
  const t = args.t as number, s = args.s as number, k = args.k as number;
  const rowBase = args.rowBase as number, offset = args.offset as number, form = args.form as string;
  if (flagged(args)) return;
  for (let r = rowStart; r < rowEnd; r++) {
    const [first, limit] = keyRange(args, r, t, s, offset);
    for (let j = 0; j < s; j++) {
      let hit = false;
      for (let i = 0; i < k; i++) hit = hit || indices[r * k + i] === j;
      const kept = hit && j >= first && j < limit;
      writeKey(args.out as Float32Array | Uint8Array | Uint32Array, form, r - rowBase, s, j, kept);
    }
  }
}

/** Writes one key of one output row in any form; bits are written in key order, a word starting at 0. */
export function writeKey(out: Float32Array | Uint8Array | Uint32Array, form: string, row: number, s: number, j: number, kept: boolean): void {
  if (form === 'additive') out[row * s + j] = kept ? 0 : DEFAULT_MASK_VALUE;
  else if (form === 'bool') out[row * s + j] = kept ? 1 : 0;
  else {
    const w = row * ((s + 31) >>> 5) + (j >>> 5);
    if ((j & 31) === 0) out[w] = 0;
    if (kept) out[w] |= 1 << (j & 31);
  }
}

/** Marks one key of an already written row as kept, in any form. */
export function keepKey(out: Float32Array | Uint8Array | Uint32Array, form: string, row: number, s: number, j: number): void {
  if (form === 'additive') out[row * s + j] = 0;
  else if (form === 'bool') out[row * s + j] = 1;
  else out[row * ((s + 31) >>> 5) + (j >>> 5)] |= 1 << (j & 31);
}
