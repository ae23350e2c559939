// The floor of bench/mask.ts as a pool kernel registry: Float32Array.fill of
// the rows of the same mask buffer, with nothing else, so the pool's
// scheduling cost is in the floor too.
import { DEFAULT_MASK_VALUE } from '../src/tensor.js';

type Args = Record<string, unknown>;

export function fillRows(args: Args, rowStart: number, rowEnd: number): void {
  const out = args.out as Float32Array;
  const s = args.s as number;
  out.fill(DEFAULT_MASK_VALUE, rowStart * s, rowEnd * s);
}

export const kernels = { 'bench.fill': fillRows };
