import type { KernelTable } from '../plan.js';
import { denseAttentionRows } from './dense-kernels.js';
import { sparseAttentionRows } from './sparse-kernels.js';

export const attentionKernels: KernelTable = {
  'attention.dense': denseAttentionRows,
  'attention.sparse': sparseAttentionRows,
};
