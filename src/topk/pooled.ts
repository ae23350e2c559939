import type { PlanRunner } from '../pool/runner.js';
import { allocShared, type Tensor } from '../tensor.js';
import { planTopk, type TopkOptions, type TopkResult } from './topk.js';

/**
 * The async versions of this area's public functions, for `createPool`:
 * validated here exactly as the synchronous call (errors reject), the same
 * kernel over row ranges on the workers, so bit-identical. Results are
 * backed by SharedArrayBuffers.
 */
export function topkPoolApi(run: PlanRunner) {
  return {
    async topk(scores: Tensor<Float32Array>, k: number, opts: TopkOptions = {}): Promise<TopkResult> {
      return run(planTopk(scores, k, opts, allocShared));
    },
  };
}
