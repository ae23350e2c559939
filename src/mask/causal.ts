/**
 * Causal masks: row ti of a query block may see key j iff j <= ti + offset
 * (offset = s - t for a block at the end of the cache); window masks: row r
 * sees keys [lo[r], hi[r]) (src/window.ts). Each row is a dropped prefix, a
 * kept range and a dropped suffix, so it is three fills.
 * Args: out, t, s, rowBase, offset, lo, hi (null: [0, causal limit)).
 */
import { DEFAULT_MASK_VALUE } from '../tensor.js';
import type { KernelArgs } from '../plan.js';
import { keyRange } from './form.js';
import { fillRange, widePattern, wideView } from './fill.js';

const DROPPED = widePattern(Float32Array, DEFAULT_MASK_VALUE);
const ONES = widePattern(Uint8Array, 1);
const ALL_BITS = widePattern(Uint32Array, 0xffffffff);

export function causalAdditive(args: KernelArgs, rowStart: number, rowEnd: number): void {
  const out = args.out as Float32Array;
  const t = args.t as number, s = args.s as number, rowBase = args.rowBase as number, offset = args.offset as number;
  const wide = wideView(out);
  for (let r = rowStart; r < rowEnd; r++) {
    const o = (r - rowBase) * s, [first, limit] = keyRange(args, r, t, s, offset);
    fillRange(out, wide, o, o + first, DEFAULT_MASK_VALUE, DROPPED);
    fillRange(out, wide, o + first, o + limit, 0, 0);
    fillRange(out, wide, o + limit, o + s, DEFAULT_MASK_VALUE, DROPPED);
  }
}

export function causalBool(args: KernelArgs, rowStart: number, rowEnd: number): void {
  const out = args.out as Uint8Array;
  const t = args.t as number, s = args.s as number, rowBase = args.rowBase as number, offset = args.offset as number;
  const wide = wideView(out);
  for (let r = rowStart; r < rowEnd; r++) {
    const o = (r - rowBase) * s, [first, limit] = keyRange(args, r, t, s, offset);
    fillRange(out, wide, o, o + first, 0, 0);
    fillRange(out, wide, o + first, o + limit, 1, ONES);
    fillRange(out, wide, o + limit, o + s, 0, 0);
  }
}

export function causalBits(args: KernelArgs, rowStart: number, rowEnd: number): void {
  const out = args.out as Uint32Array;
  const t = args.t as number, s = args.s as number, rowBase = args.rowBase as number, offset = args.offset as number;
  const words = (s + 31) >>> 5;
  const wide = wideView(out);
  for (let r = rowStart; r < rowEnd; r++) {
    const o = (r - rowBase) * words, [first, limit] = keyRange(args, r, t, s, offset);
    if (first >= limit) {
      fillRange(out, wide, o, o + words, 0, 0);
      continue;
    }
    // Zero words, whole kept words between the partial words at either end, zero words.
    const low = first >>> 5, high = (limit - 1) >>> 5;
    const fromBit = ~0 << (first & 31), toBit = (limit & 31) === 0 ? ~0 : (1 << (limit & 31)) - 1;
    fillRange(out, wide, o, o + low, 0, 0);
    fillRange(out, wide, o + low + 1, o + high, 0xffffffff, ALL_BITS);
    fillRange(out, wide, o + high + 1, o + words, 0, 0);
    if (low === high) out[o + low] = fromBit & toBit;
    else {
      out[o + low] = fromBit;
      out[o + high] = toBit;
    }
  }
}
