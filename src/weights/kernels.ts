import type { KernelTable } from '../plan.js';
import { actQuantKernel, linearRows } from './linear-kernels.js';

export const weightKernels: KernelTable = {
  'weights.actQuant': actQuantKernel,
  'weights.linear': linearRows,
};
