import type { KernelTable } from '../plan.js';
import { ropeRows } from './rope.js';
import { rmsNormRows } from './norm.js';
import { absorbQueryRows, valueUpRows } from './absorb.js';

/** The kernels of the MLA half of the layer (src/model/mla.ts). */
export const modelKernels: KernelTable = {
  'model.rope': ropeRows,
  'model.rmsNorm': rmsNormRows,
  'model.absorbQuery': absorbQueryRows,
  'model.valueUp': valueUpRows,
};
