/**
 * The WorkerPool of browsers: dedicated Web Workers (src/pool/web-worker.ts)
 * that run named kernels over row ranges of SharedArrayBuffer-backed typed
 * arrays, as the Node pool does on worker_threads. Needs a cross-origin
 * isolated page (SharedArrayBuffer). Workers start once, here, and wait in
 * their event loop (not spinning) between tasks.
 */
import type { WorkerPool } from './pool.js';
import type { SimdBuild } from '../simd/index.js';
import type { WorkerReply, WorkerRequest } from './web-worker.js';
import { runInChunks } from './chunks.js';

export interface WebWorkerPoolOptions {
  threads: number;
  /** The SIMD build the workers load (default: what each worker picks, see initSimd). */
  build?: SimdBuild | null;
  /** Chunks per thread, for balance when rows cost unequal time (default 2). */
  chunksPerThread?: number;
}

interface Pending {
  request: WorkerRequest;
  resolve(): void;
  reject(err: Error): void;
}

interface Slot {
  worker: Worker;
  /** The task it runs, or null when idle. */
  task: Pending | null;
}

function errorOf(reply: NonNullable<WorkerReply['error']>): Error {
  const ctor = reply.name === 'RangeError' ? RangeError : reply.name === 'TypeError' ? TypeError : Error;
  return new ctor(reply.message);
}

export function createWebWorkerPool(options: WebWorkerPoolOptions): WorkerPool {
  const { threads } = options;
  const chunksPerThread = options.chunksPerThread ?? 2;
  const queue: Pending[] = [];
  let nextId = 0;
  let closed = false;

  const start = (): Slot => {
    const slot: Slot = { worker: new Worker(new URL('./web-worker.js', import.meta.url), { type: 'module', name: 'dsa-ts pool' }), task: null };
    slot.worker.postMessage({ init: true, build: options.build ?? null } satisfies WorkerRequest);
    slot.worker.onmessage = (event: MessageEvent<WorkerReply>) => {
      const task = slot.task;
      slot.task = null;
      if (task) {
        if (event.data.error) task.reject(errorOf(event.data.error));
        else task.resolve();
      }
      dispatch();
    };
    // A worker that dies (a failed module load, an uncaught error outside a
    // task) rejects its task and is replaced, so no call waits forever.
    const fail = (message: string) => {
      const task = slot.task;
      slot.task = null;
      slot.worker.terminate();
      const index = slots.indexOf(slot);
      if (!closed && index >= 0) slots[index] = start();
      task?.reject(new Error(`pool: worker failed: ${message}`));
      dispatch();
    };
    slot.worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      fail(event.message || 'error event');
    };
    slot.worker.onmessageerror = () => fail('a message could not be read');
    return slot;
  };

  const slots: Slot[] = Array.from({ length: threads }, start);

  function dispatch(): void {
    for (const slot of slots) {
      while (slot.task === null && queue.length > 0) {
        const task = queue.shift()!;
        try {
          slot.worker.postMessage(task.request);
          slot.task = task;
        } catch (err) {
          // An argument that cannot be posted (DataCloneError): that task fails, the worker stays idle.
          task.reject(err instanceof Error ? err : new Error(String(err)));
        }
      }
    }
  }

  return {
    threads,
    async runRows(kernel, args, rowStart, rowEnd, split = true) {
      if (closed) throw new Error('pool: closed');
      await runInChunks(args, rowStart, rowEnd, threads * chunksPerThread, split, (chunkStart, chunkEnd) => {
        const request: WorkerRequest = { id: nextId++, kernel, args, rowStart: chunkStart, rowEnd: chunkEnd };
        const done = new Promise<void>((resolve, reject) => queue.push({ request, resolve, reject }));
        dispatch();
        return done;
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const task of queue.splice(0)) task.reject(new Error('pool: closed'));
      for (const slot of slots) {
        slot.task?.reject(new Error('pool: closed'));
        slot.worker.terminate();
      }
    },
  };
}
