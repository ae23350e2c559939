// A registry that has nothing to do with attention, to show the pool is generic.
type Args = Record<string, unknown>;

export const kernels = {
  /** out[row * width + j] = row * 1000 + j */
  fillRows(args: Args, rowStart: number, rowEnd: number) {
    const out = args.out as Float32Array;
    const width = args.width as number;
    for (let r = rowStart; r < rowEnd; r++) for (let j = 0; j < width; j++) out[r * width + j] = r * 1000 + j;
  },
  /** Throws when its range contains row `badRow`. */
  failAt(args: Args, rowStart: number, rowEnd: number) {
    const bad = args.badRow as number;
    if (bad >= rowStart && bad < rowEnd) throw new RangeError(`row ${bad} is bad`);
  },
  /** out[row * width + j] = a[row * width + j] + b[row * width + j] */
  addRows(args: Args, rowStart: number, rowEnd: number) {
    const a = args.a as Float32Array, b = args.b as Float32Array, out = args.out as Float32Array;
    const width = args.width as number;
    for (let i = rowStart * width; i < rowEnd * width; i++) out[i] = a[i] + b[i];
  },
  /** Waits (at most 10 s) until gate[0] is not 0, then copies its rows of `input` to `out`. */
  copyWhenOpen(args: Args, rowStart: number, rowEnd: number) {
    const gate = args.gate as Int32Array, input = args.input as Float32Array, out = args.out as Float32Array;
    const width = args.width as number;
    Atomics.wait(gate, 0, 0, 10_000);
    for (let i = rowStart * width; i < rowEnd * width; i++) out[i] = input[i];
  },
  /** Kills its worker thread outright. */
  exit() {
    process.exit(3);
  },
};
