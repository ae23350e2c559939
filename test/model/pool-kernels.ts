// The pool's kernel registry with the layer's kernels (src/weights, src/model)
// beside the library's, for test/model/mla-pool.test.ts.
import { kernels as library, setup } from '../../src/kernels.js';
import { weightKernels } from '../../src/weights/kernels.js';
import { modelKernels } from '../../src/model/kernels.js';

export const kernels = { ...library, ...weightKernels, ...modelKernels };
export { setup };
