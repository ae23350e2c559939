import type { KernelTable } from '../plan.js';
import { checkKeys, writeTokens } from './append.js';
import { slotsRows } from './slot-kernels.js';

export const cacheKernels: KernelTable = {
  'cache.checkKeys': checkKeys,
  'cache.write': writeTokens,
  'cache.slots': slotsRows,
};
