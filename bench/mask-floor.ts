// The floors of bench/mask.ts as a pool kernel registry: Float32Array.fill of
// the rows of the same mask buffer, and the 8-byte fill the kernels use on
// shared memory, with nothing else, so the pool's scheduling cost is in the
// floor too.
import { DEFAULT_MASK_VALUE } from '../src/tensor.js';
import { fillRange, widePattern, wideView } from '../src/mask/fill.js';

const DROPPED = widePattern(Float32Array, DEFAULT_MASK_VALUE);

type Args = Record<string, unknown>;

export function fillRows(args: Args, rowStart: number, rowEnd: number): void {
  const out = args.out as Float32Array;
  const s = args.s as number;
  out.fill(DEFAULT_MASK_VALUE, rowStart * s, rowEnd * s);
}

/** The fill the mask kernels use on shared memory (8-byte stores), alone. */
export function wideFillRows(args: Args, rowStart: number, rowEnd: number): void {
  const out = args.out as Float32Array;
  const s = args.s as number;
  fillRange(out, wideView(out), rowStart * s, rowEnd * s, DEFAULT_MASK_VALUE, DROPPED);
}

export const kernels = { 'bench.fill': fillRows, 'bench.fill.wide': wideFillRows };
