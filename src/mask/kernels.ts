import type { Kernel } from '../plan.js';

export const maskKernels: Record<string, Kernel> = {};
