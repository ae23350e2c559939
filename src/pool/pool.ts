/**
 * A generic pool of worker threads that runs named kernels over row ranges
 * of SharedArrayBuffer-backed typed arrays. Workers start once, at
 * `createWorkerPool`, and wait blocked (not spinning) between tasks.
 */
import { Piscina } from 'piscina';
import type { Task } from './worker.js';

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
  });
  let closed = false;

  return {
    threads,
    async runRows(kernel, args, rowStart, rowEnd, split = true) {
      if (closed) throw new Error('pool: closed');
      for (const [name, value] of Object.entries(args)) {
        if (ArrayBuffer.isView(value) && !(value.buffer instanceof SharedArrayBuffer)) {
          throw new TypeError(`pool: kernel argument '${name}' must be backed by a SharedArrayBuffer`);
        }
      }
      const n = rowEnd - rowStart;
      if (n <= 0) return;
      const chunks = split ? Math.min(n, threads * chunksPerThread) : 1;
      const tasks: Promise<unknown>[] = [];
      for (let c = 0; c < chunks; c++) {
        const task: Task = {
          registry: registry.href,
          kernel,
          args,
          rowStart: rowStart + Math.floor((n * c) / chunks),
          rowEnd: rowStart + Math.floor((n * (c + 1)) / chunks),
        };
        tasks.push(piscina.run(task));
      }
      // Wait for every chunk before reporting, so no worker is still writing
      // into the caller's buffers when the promise settles.
      const settled = await Promise.allSettled(tasks);
      const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    },
    async close() {
      if (closed) return;
      closed = true;
      await piscina.destroy();
    },
  };
}
