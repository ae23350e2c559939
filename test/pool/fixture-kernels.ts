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
  /** Kills its worker thread outright. */
  exit() {
    process.exit(3);
  },
};
