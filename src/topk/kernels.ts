import type { Kernel } from '../plan.js';

export const topkKernels: Record<string, Kernel> = {};
