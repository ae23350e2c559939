// The floor of bench/topk.ts as a pool kernel registry: one streaming read of
// the rows of the same scores, reduced to a sum per row (four accumulators,
// so the add latency does not bound it), with nothing else. Going through
// the pool, its scheduling cost is in the floor too.
type Args = Record<string, unknown>;

export function readReduce(args: Args, rowStart: number, rowEnd: number): void {
  const scores = args.scores as Float32Array;
  const sums = args.sums as Float64Array;
  const s = args.s as number;
  for (let row = rowStart; row < rowEnd; row++) {
    const base = row * s;
    let a = 0, b = 0, c = 0, d = 0;
    let j = 0;
    for (; j + 4 <= s; j += 4) {
      a += scores[base + j];
      b += scores[base + j + 1];
      c += scores[base + j + 2];
      d += scores[base + j + 3];
    }
    for (; j < s; j++) a += scores[base + j];
    sums[row] = a + b + c + d;
  }
}

export const kernels = { 'bench.readReduce': readReduce };
