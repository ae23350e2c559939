import type { Kernel } from '../plan.js';

export const attentionKernels: Record<string, Kernel> = {};
