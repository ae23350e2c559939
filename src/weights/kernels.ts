import type { KernelTable } from '../plan.js';
import { actQuantKernel, linearRowsTs } from './linear-kernels.js';

export const weightKernels: KernelTable = {
  'weights.actQuant': actQuantKernel,
  'weights.linear': linearRowsTs,
};
