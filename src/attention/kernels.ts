import type { Kernel } from '../plan.js';
import { denseAttentionRows } from './dense.js';
import { sparseAttentionRows } from './sparse.js';

export const attentionKernels: Record<string, Kernel> = {
  'attention.dense': denseAttentionRows,
  'attention.sparse': sparseAttentionRows,
};
