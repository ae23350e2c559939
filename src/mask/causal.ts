/**
 * Causal masks: row ti of a query block may see key j iff j <= ti + offset
 * (offset = s - t for a block at the end of the cache). Each row is a kept
 * prefix and a dropped suffix, so it is two fills.
 * Args: out, t, s, rowBase, offset.
 */
import { DEFAULT_MASK_VALUE } from '../tensor.js';
import type { KernelArgs } from '../plan.js';
import { causalLimit } from './form.js';

export function causalAdditive(args: KernelArgs, rowStart: number, rowEnd: number): void {
  const out = args.out as Float32Array;
  const t = args.t as number, s = args.s as number, rowBase = args.rowBase as number, offset = args.offset as number;
  for (let r = rowStart; r < rowEnd; r++) {
    const o = (r - rowBase) * s, limit = causalLimit(r % t, s, offset);
    out.fill(0, o, o + limit);
    out.fill(DEFAULT_MASK_VALUE, o + limit, o + s);
  }
}

export function causalBool(args: KernelArgs, rowStart: number, rowEnd: number): void {
  const out = args.out as Uint8Array;
  const t = args.t as number, s = args.s as number, rowBase = args.rowBase as number, offset = args.offset as number;
  for (let r = rowStart; r < rowEnd; r++) {
    const o = (r - rowBase) * s, limit = causalLimit(r % t, s, offset);
    out.fill(1, o, o + limit);
    out.fill(0, o + limit, o + s);
  }
}

export function causalBits(args: KernelArgs, rowStart: number, rowEnd: number): void {
  const out = args.out as Uint32Array;
  const t = args.t as number, s = args.s as number, rowBase = args.rowBase as number, offset = args.offset as number;
  const words = (s + 31) >>> 5;
  for (let r = rowStart; r < rowEnd; r++) {
    const o = (r - rowBase) * words, limit = causalLimit(r % t, s, offset);
    const full = limit >>> 5, rest = limit & 31;
    out.fill(0xffffffff, o, o + full);
    out.fill(0, o + full, o + words);
    if (rest !== 0) out[o + full] = (1 << rest) - 1;
  }
}
