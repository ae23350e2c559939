import type { Kernel } from '../plan.js';
import { topkRadix, topkSortReference } from './radix.js';

export const topkKernels: Record<string, Kernel> = {
  topkRadix,
  topkSortReference,
};
