/**
 * The scatter strategy: fill a row with "dropped", then write "kept" at its
 * k indices while the row is still in cache. O(b*t*s + b*t*k) and, for the
 * float form, the same memory traffic as a plain fill of the mask: the fill
 * is the floor and the k scattered stores land in the row just written.
 *
 * (Fills go through fill.ts: on the pool's shared memory, 8 bytes a store.)
 * Args: indices [rows, k] Int32, out [rows - rowBase.., width], t, s, k,
 * rowBase (the first row of `out`), offset (causal offset; Infinity = none),
 * lo, hi (per-row key ranges, src/window.ts, or null: [0, causal limit)),
 * firstBad (see check.ts). Indices >= s are rejected by the check step; here
 * any j outside the row's range keeps nothing, which is both the padding
 * rule (-1) and `outOfRange: 'skip'`.
 */
import { DEFAULT_MASK_VALUE } from '../tensor.js';
import type { KernelArgs } from '../plan.js';
import { keyRange } from './form.js';
import { flagged } from './check.js';
import { fillRange, widePattern, wideView } from './fill.js';

const DROPPED = widePattern(Float32Array, DEFAULT_MASK_VALUE);

export function scatterAdditive(args: KernelArgs, rowStart: number, rowEnd: number): void {
  const indices = args.indices as Int32Array;
  const out = args.out as Float32Array;
  const t = args.t as number, s = args.s as number, k = args.k as number;
  const rowBase = args.rowBase as number, offset = args.offset as number;
  if (flagged(args)) return;
  const wide = wideView(out);
  for (let r = rowStart; r < rowEnd; r++) {
    const o = (r - rowBase) * s;
    const [first, limit] = keyRange(args, r, t, s, offset);
    fillRange(out, wide, o, o + s, DEFAULT_MASK_VALUE, DROPPED);
    for (let i = r * k, end = i + k; i < end; i++) {
      const j = indices[i];
      if (j < limit && j >= first) out[o + j] = 0;
    }
  }
}

export function scatterBool(args: KernelArgs, rowStart: number, rowEnd: number): void {
  const indices = args.indices as Int32Array;
  const out = args.out as Uint8Array;
  const t = args.t as number, s = args.s as number, k = args.k as number;
  const rowBase = args.rowBase as number, offset = args.offset as number;
  if (flagged(args)) return;
  const wide = wideView(out);
  for (let r = rowStart; r < rowEnd; r++) {
    const o = (r - rowBase) * s;
    const [first, limit] = keyRange(args, r, t, s, offset);
    fillRange(out, wide, o, o + s, 0, 0);
    for (let i = r * k, end = i + k; i < end; i++) {
      const j = indices[i];
      if (j < limit && j >= first) out[o + j] = 1;
    }
  }
}

export function scatterBits(args: KernelArgs, rowStart: number, rowEnd: number): void {
  const indices = args.indices as Int32Array;
  const out = args.out as Uint32Array;
  const t = args.t as number, s = args.s as number, k = args.k as number;
  const rowBase = args.rowBase as number, offset = args.offset as number;
  if (flagged(args)) return;
  const words = (s + 31) >>> 5;
  const wide = wideView(out);
  for (let r = rowStart; r < rowEnd; r++) {
    const o = (r - rowBase) * words;
    const [first, limit] = keyRange(args, r, t, s, offset);
    fillRange(out, wide, o, o + words, 0, 0);
    for (let i = r * k, end = i + k; i < end; i++) {
      const j = indices[i];
      if (j < limit && j >= first) out[o + (j >>> 5)] |= 1 << (j & 31);
    }
  }
}
