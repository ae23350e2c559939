import { DEFAULT_MASK_VALUE } from '../tensor.js';
import type { KernelArgs } from '../plan.js';

/**
 * Keeps a key iff both masks keep it. Additive: kept iff both values are 0,
 * written as exactly 0 or DEFAULT_MASK_VALUE (never a sum, which would
 * overflow to -Infinity). Bool: kept iff both are nonzero. Bits: AND.
 * Args: a, b, out (same form), width (elements per row), rowBase.
 */
export function combineAdditive(args: KernelArgs, rowStart: number, rowEnd: number): void {
  const a = args.a as Float32Array, b = args.b as Float32Array, out = args.out as Float32Array;
  const width = args.width as number, rowBase = args.rowBase as number;
  for (let i = rowStart * width, o = (rowStart - rowBase) * width, end = rowEnd * width; i < end; i++, o++) {
    out[o] = a[i] === 0 && b[i] === 0 ? 0 : DEFAULT_MASK_VALUE;
  }
}

export function combineBool(args: KernelArgs, rowStart: number, rowEnd: number): void {
  const a = args.a as Uint8Array, b = args.b as Uint8Array, out = args.out as Uint8Array;
  const width = args.width as number, rowBase = args.rowBase as number;
  for (let i = rowStart * width, o = (rowStart - rowBase) * width, end = rowEnd * width; i < end; i++, o++) {
    out[o] = a[i] !== 0 && b[i] !== 0 ? 1 : 0;
  }
}

export function combineBits(args: KernelArgs, rowStart: number, rowEnd: number): void {
  const a = args.a as Uint32Array, b = args.b as Uint32Array, out = args.out as Uint32Array;
  const width = args.width as number, rowBase = args.rowBase as number;
  for (let i = rowStart * width, o = (rowStart - rowBase) * width, end = rowEnd * width; i < end; i++, o++) {
    out[o] = a[i] & b[i];
  }
}
