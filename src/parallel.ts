/**
 * The pool's public functions over any transport. Each call validates on
 * this thread exactly as the single-threaded function does, then runs the
 * same kernels over row ranges in the workers, so results are bit-identical.
 * `createPool` builds them on a transport: worker_threads in Node
 * (src/pool/node.ts), Web Workers in browsers (src/pool/browser.ts).
 */
import type { WorkerPool } from './pool/pool.js';
import { planRunner } from './pool/runner.js';
import { createStaging } from './pool/staging.js';
import { maskPoolApi } from './mask/pooled.js';
import { topkPoolApi } from './topk/pooled.js';
import { indexerPoolApi } from './indexer/pooled.js';
import { attentionPoolApi } from './attention/pooled.js';
import { cachePoolApi } from './cache/pooled.js';
import { weightsPoolApi } from './weights/pooled.js';
import { mlaPoolApi } from './model/pooled.js';
import { kernels } from './kernels.js';
import { withInteropOps } from './interop/wrap.js';
import { POOL_SIGNATURES } from './interop/signatures.js';

export interface PoolOptions {
  /** Worker threads (default: the machine's available parallelism). */
  threads?: number;
}

/**
 * The async versions of the public functions, running their plans on
 * `pool`. Arrays already backed by a SharedArrayBuffer are used in place;
 * others are copied into shared memory the pool keeps for its calls (and
 * outputs copied back), which costs a pass. Results not written into a
 * caller's `out` are fresh shared memory on every call. Every op also takes
 * ONNX Runtime and tfjs tensors and the `output` option (docs/interop.md).
 */
export function poolApi(pool: WorkerPool) {
  const threads = pool.threads;
  const staging = createStaging();
  const run = planRunner(pool, kernels, staging);
  return withInteropOps({
    threads,
    ...maskPoolApi(run),
    ...topkPoolApi(run),
    ...indexerPoolApi(run),
    ...attentionPoolApi(run),
    ...cachePoolApi(run),
    ...weightsPoolApi(run),
    ...mlaPoolApi(run),
    /** Stops the workers and drops the pool's staging memory. Calls after close reject. */
    close: async () => {
      staging.close();
      await pool.close();
    },
  }, POOL_SIGNATURES);
}

export type DsaPool = ReturnType<typeof poolApi>;
