import type { KernelTable } from '../plan.js';
import { topkRadix, topkSortReference } from './radix.js';

export const topkKernels: KernelTable = {
  topkRadix,
  topkSortReference,
};
