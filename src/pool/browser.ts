/**
 * `createPool` in browsers: the same public functions as the Node pool,
 * running the same plans and kernels on Web Workers over SharedArrayBuffer,
 * so results are bit-identical to one thread. SharedArrayBuffer exists only
 * on cross-origin isolated pages (served with `Cross-Origin-Opener-Policy:
 * same-origin` and `Cross-Origin-Embedder-Policy: require-corp`); elsewhere
 * the pool runs every call on the calling thread, with `threads` 1 and
 * `shared` false, so the page can say so.
 */
import { poolApi, type PoolOptions } from '../parallel.js';
import type { WorkerPool } from './pool.js';
import { createWebWorkerPool } from './web-pool.js';
import { kernels } from '../kernels.js';
import { runKernel } from '../plan.js';
import { checkSize } from '../validate.js';
import { simdBuild } from '../simd/index.js';

/** Whether this context can run the Web Worker pool: shared memory and workers. */
export function poolSupported(): boolean {
  return typeof SharedArrayBuffer === 'function' && typeof Worker === 'function' && globalThis.crossOriginIsolated === true;
}

/** Runs every task on the calling thread, in order: the pool of a page without shared memory. */
function callingThreadPool(): WorkerPool {
  let closed = false;
  return {
    threads: 1,
    async runRows(kernel, args, rowStart, rowEnd) {
      if (closed) throw new Error('pool: closed');
      runKernel({ kernel, args: args as never, rows: [rowStart, rowEnd], writes: [] }, kernels);
    },
    async close() {
      closed = true;
    },
  };
}

/**
 * Creates a pool of `threads` Web Workers (default: navigator.hardwareConcurrency)
 * and returns the async versions of the public functions, plus `shared`:
 * whether it really runs on workers. The workers load the SIMD build this
 * thread runs (call `initSimd()` first on a main thread). Call `close()`
 * when done.
 */
export function createPool(options: PoolOptions = {}) {
  if (!poolSupported()) {
    if (options.threads !== undefined) checkSize('threads', options.threads);
    return { ...poolApi(callingThreadPool()), shared: false };
  }
  const threads = checkSize('threads', options.threads ?? (globalThis.navigator?.hardwareConcurrency || 1));
  return { ...poolApi(createWebWorkerPool({ threads, build: simdBuild() })), shared: true };
}

export type { DsaPool, PoolOptions } from '../parallel.js';
