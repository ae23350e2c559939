import type { Kernel } from '../plan.js';

export const indexerKernels: Record<string, Kernel> = {};
