import type { PlanRunner } from '../pool/runner.js';
import { allocShared, type MaskData, type MaskForm, type Tensor } from '../tensor.js';
import {
  planCausalMask,
  planCombineMasks,
  planGenerateMask,
  planMaskFromThreshold,
  planWindowMask,
  type GenerateMaskOptions,
  type MaskBlockOptions,
  type ThresholdMaskOptions,
} from './masks.js';
import type { KeyWindowOptions } from '../window.js';

/**
 * The async versions of this area's public functions, for `createPool`:
 * validated here exactly as the synchronous calls (errors reject), run as
 * the same kernels over row ranges on the workers, so bit-identical.
 * Results are backed by SharedArrayBuffers.
 */
export function maskPoolApi(run: PlanRunner) {
  return {
    async generateMask(indices: Tensor<Int32Array>, s: number, opts: GenerateMaskOptions = {}): Promise<Tensor<MaskData>> {
      return run(planGenerateMask(indices, s, opts, allocShared));
    },
    async maskFromThreshold(scores: Tensor<Float32Array>, topkValues: Tensor<Float32Array>, opts: ThresholdMaskOptions = {}): Promise<Tensor<MaskData>> {
      return run(planMaskFromThreshold(scores, topkValues, opts, allocShared));
    },
    async combineMasks(a: Tensor<MaskData>, b: Tensor<MaskData>, opts: MaskBlockOptions = {}): Promise<Tensor<MaskData>> {
      return run(planCombineMasks(a, b, opts, allocShared));
    },
    async causalMask(b: number, t: number, s: number, offset: number, form: MaskForm = 'additive', opts: MaskBlockOptions = {}): Promise<Tensor<MaskData>> {
      return run(planCausalMask(b, t, s, offset, form, opts, allocShared));
    },
    async windowMask(b: number, t: number, s: number, keys: KeyWindowOptions, form: MaskForm = 'additive', opts: MaskBlockOptions = {}): Promise<Tensor<MaskData>> {
      return run(planWindowMask(b, t, s, keys, form, opts, allocShared));
    },
  };
}
