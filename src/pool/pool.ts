/**
 * A generic pool of worker threads that runs named kernels over row ranges
 * of SharedArrayBuffer-backed typed arrays. Workers start once, at
 * `createWorkerPool`, and wait blocked (not spinning) between tasks.
 */
import { Piscina } from 'piscina';
import type { Task } from './worker.js';
import { runInChunks } from './chunks.js';

export interface WorkerPool {
  readonly threads: number;
  /**
   * Runs `kernel` over rows `[rowStart, rowEnd)` split into contiguous
   * chunks across the workers. Every typed array in `args` must be backed by
   * a SharedArrayBuffer. Rejects with the first worker error.
   */
  runRows(kernel: string, args: Record<string, unknown>, rowStart: number, rowEnd: number, split?: boolean): Promise<void>;
  close(): Promise<void>;
}

export interface WorkerPoolOptions {
  threads: number;
  /** URL of the module whose `kernels` export maps names to kernels. */
  registry: URL;
  /** Chunks per thread, for balance when rows cost unequal time (default 2). */
  chunksPerThread?: number;
  /** Passed to the registry's `setup` export (if any), awaited in each worker before its first task. */
  setup?: unknown;
}

const fromSources = import.meta.url.endsWith('.ts');
const workerFile = new URL(fromSources ? './worker-tsx.mjs' : './worker.js', import.meta.url);

export function createWorkerPool(options: WorkerPoolOptions): WorkerPool {
  const { threads, registry } = options;
  const chunksPerThread = options.chunksPerThread ?? 2;
  const piscina = new Piscina({
    filename: workerFile.href,
    minThreads: threads,
    maxThreads: threads,
    idleTimeout: Number.POSITIVE_INFINITY,
    concurrentTasksPerWorker: 1,
    workerData: { setup: options.setup ?? null },
  });
  let closed = false;

  return {
    threads,
    async runRows(kernel, args, rowStart, rowEnd, split = true) {
      if (closed) throw new Error('pool: closed');
      await runInChunks(args, rowStart, rowEnd, threads * chunksPerThread, split, (chunkStart, chunkEnd) => {
        const task: Task = { registry: registry.href, kernel, args, rowStart: chunkStart, rowEnd: chunkEnd };
        return piscina.run(task);
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      await piscina.destroy();
    },
  };
}
