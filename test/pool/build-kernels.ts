// A registry whose workers report the SIMD build they run, set up as the
// library's own registry sets them up (src/kernels.ts's `setup`).
import { simdBuild } from '../../src/simd/index.js';

export { setup } from '../../src/kernels.js';

const codes = { baseline: 1, relaxed: 2 } as const;

export const kernels = {
  /** out[row] = this worker's build: 0 TypeScript, 1 baseline, 2 relaxed. */
  simdBuild(args: Record<string, unknown>, rowStart: number, rowEnd: number) {
    const out = args.out as Int32Array;
    const build = simdBuild();
    for (let r = rowStart; r < rowEnd; r++) out[r] = build === null ? 0 : codes[build];
  },
};
