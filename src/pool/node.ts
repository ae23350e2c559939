/**
 * `createPool` in Node: the public functions on worker_threads (piscina).
 */
import { availableParallelism } from 'node:os';
import { createWorkerPool } from './pool.js';
import { poolApi, type PoolOptions } from '../parallel.js';
import { checkSize } from '../validate.js';
import { simdBuild } from '../simd/index.js';

const fromSources = import.meta.url.endsWith('.ts');
const registry = new URL(fromSources ? '../kernels.ts' : '../kernels.js', import.meta.url);

/**
 * Creates a pool of `threads` workers and returns the async versions of the
 * public functions. Call `close()` when done; workers keep the process alive.
 * Arrays already backed by a SharedArrayBuffer are used in place; others are
 * copied into shared memory the pool keeps until `close()` (and outputs
 * copied back), which costs a pass. Results not written into a caller's
 * `out` are fresh memory on every call.
 * The workers load the SIMD build this thread runs (`initSimd({ relaxed })`
 * before `createPool` picks it).
 */
export function createPool(options: PoolOptions = {}) {
  const threads = checkSize('threads', options.threads ?? availableParallelism());
  return poolApi(createWorkerPool({ threads, registry, setup: simdBuild() }));
}
