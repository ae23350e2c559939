/**
 * Every CPU kernel by name: the table the pool's workers load (by URL). Each
 * area keeps its own table; nothing in src/ but the pool imports this one.
 */
import type { KernelTable } from './plan.js';
import { maskKernels } from './mask/kernels.js';
import { topkKernels } from './topk/kernels.js';
import { indexerKernels } from './indexer/kernels.js';
import { attentionKernels } from './attention/kernels.js';
import { cacheKernels } from './cache/kernels.js';
import { weightKernels } from './weights/kernels.js';
import { modelKernels } from './model/kernels.js';
import { initSimd, type SimdBuild } from './simd/index.js';

export const kernels: KernelTable = {
  ...maskKernels,
  ...topkKernels,
  ...indexerKernels,
  ...attentionKernels,
  ...cacheKernels,
  ...weightKernels,
  ...modelKernels,
};

/** A worker's set-up: the SIMD build of the thread that made the pool (null: this thread's own choice). */
export async function setup(build: SimdBuild | null): Promise<void> {
  await initSimd(build === null ? {} : { relaxed: build === 'relaxed' });
}
