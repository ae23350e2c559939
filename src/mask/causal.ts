/**
 * Causal masks: row ti of a query block may see key j iff j <= ti + offset
 * (offset = s - t for a block at the end of the cache). Each row is a kept
 * prefix and a dropped suffix, so it is two fills.
 * Args: out, t, s, rowBase, offset.
 */
import { DEFAULT_MASK_VALUE } from '../tensor.js';
import type { KernelArgs } from '../plan.js';
import { causalLimit } from './form.js';
import { fillRange, widePattern, wideView } from './fill.js';

const DROPPED = widePattern(Float32Array, DEFAULT_MASK_VALUE);
const ONES = widePattern(Uint8Array, 1);
const ALL_BITS = widePattern(Uint32Array, 0xffffffff);

export function causalAdditive(args: KernelArgs, rowStart: number, rowEnd: number): void {
  const out = args.out as Float32Array;
  const t = args.t as number, s = args.s as number, rowBase = args.rowBase as number, offset = args.offset as number;
  const wide = wideView(out);
  for (let r = rowStart; r < rowEnd; r++) {
    const o = (r - rowBase) * s, limit = causalLimit(r % t, s, offset);
    fillRange(out, wide, o, o + limit, 0, 0);
    fillRange(out, wide, o + limit, o + s, DEFAULT_MASK_VALUE, DROPPED);
  }
}

export function causalBool(args: KernelArgs, rowStart: number, rowEnd: number): void {
  const out = args.out as Uint8Array;
  const t = args.t as number, s = args.s as number, rowBase = args.rowBase as number, offset = args.offset as number;
  const wide = wideView(out);
  for (let r = rowStart; r < rowEnd; r++) {
    const o = (r - rowBase) * s, limit = causalLimit(r % t, s, offset);
    fillRange(out, wide, o, o + limit, 1, ONES);
    fillRange(out, wide, o + limit, o + s, 0, 0);
  }
}

export function causalBits(args: KernelArgs, rowStart: number, rowEnd: number): void {
  const out = args.out as Uint32Array;
  const t = args.t as number, s = args.s as number, rowBase = args.rowBase as number, offset = args.offset as number;
  const words = (s + 31) >>> 5;
  const wide = wideView(out);
  for (let r = rowStart; r < rowEnd; r++) {
    const o = (r - rowBase) * words, limit = causalLimit(r % t, s, offset);
    const full = limit >>> 5, rest = limit & 31;
    fillRange(out, wide, o, o + full, 0xffffffff, ALL_BITS);
    fillRange(out, wide, o + full, o + words, 0, 0);
    if (rest !== 0) out[o + full] = (1 << rest) - 1;
  }
}
