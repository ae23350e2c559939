import type { PlanRunner } from '../pool/runner.js';
import { allocShared, type Tensor } from '../tensor.js';
import { planLinear, type LinearOptions } from './linear.js';
import type { Weight } from './weight.js';

/** The async versions of this area's public functions, for `createPool`. */
export function weightsPoolApi(run: PlanRunner) {
  return {
    /**
     * `linear` on the pool: the output features split across workers (x's
     * act_quant, for one row, on this thread); bit-identical to the
     * synchronous call. A weight not backed by SharedArrayBuffer is copied
     * into the pool's staging on every call: `shareWeight` it once.
     */
    linear: async (x: Tensor<Float32Array>, w: Weight, opts: LinearOptions = {}): Promise<Tensor<Float32Array>> =>
      run(planLinear(x, w, opts, allocShared)),
  };
}
