/**
 * Every kernel a plan (and so a pool worker) can run, by name. Each area
 * registers its own; the pool only ever sees names, typed arrays and rows.
 */
import type { Kernel } from './plan.js';
import { maskKernels } from './mask/kernels.js';
import { topkKernels } from './topk/kernels.js';
import { indexerKernels } from './indexer/kernels.js';
import { attentionKernels } from './attention/kernels.js';

export const kernels: Record<string, Kernel> = {
  ...maskKernels,
  ...topkKernels,
  ...indexerKernels,
  ...attentionKernels,
};
