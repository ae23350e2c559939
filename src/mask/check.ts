/**
 * The out-of-range check of `outOfRange: 'error'`, as a kernel step of its
 * own so the pool runs it over row ranges in parallel instead of scanning
 * every index on the calling thread first. It writes only `firstBad[0]`: the
 * smallest row holding an index >= s (NO_BAD_ROW when none). The mask
 * kernels that follow it in the plan write nothing when a row is flagged, and
 * the plan's finish throws, so a caller's `out` is untouched.
 * Args: indices [rows, k] Int32, k, s, firstBad (Int32Array of 1).
 */
import type { KernelArgs } from '../plan.js';

export const NO_BAD_ROW = 0x7fffffff;

export function checkIndices(args: KernelArgs, rowStart: number, rowEnd: number): void {
  const indices = args.indices as Int32Array, firstBad = args.firstBad as Int32Array;
  const k = args.k as number, s = args.s as number;
  for (let r = rowStart; r < rowEnd; r++) {
    // Four indices a test: about 25% faster than one at a time in V8.
    let i = r * k;
    const end = i + k;
    for (; i + 3 < end; i += 4) {
      if (indices[i] >= s || indices[i + 1] >= s || indices[i + 2] >= s || indices[i + 3] >= s) break;
    }
    for (; i < end; i++) {
      if (indices[i] >= s) {
        lowerTo(firstBad, r);
        return;
      }
    }
  }
}

/** firstBad[0] = min(firstBad[0], r), atomically: workers check row ranges at once. */
function lowerTo(firstBad: Int32Array, r: number): void {
  let current = Atomics.load(firstBad, 0);
  while (r < current) {
    const seen = Atomics.compareExchange(firstBad, 0, current, r);
    if (seen === current) return;
    current = seen;
  }
}

/** Whether an earlier check step flagged a bad index: then a mask kernel writes nothing. */
export function flagged(args: KernelArgs): boolean {
  return (args.firstBad as Int32Array)[0] !== NO_BAD_ROW;
}
