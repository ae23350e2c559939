/**
 * The browser pool's worker (a module Web Worker): loads the SIMD build it
 * is told, then runs named kernels from src/kernels.ts over row ranges of
 * shared buffers, one task at a time, and answers each with its id (and
 * the error, if the kernel threw). It knows nothing of what the kernels
 * compute.
 */
import { kernels } from '../kernels.js';
import { initSimd, type SimdBuild } from '../simd/index.js';
import type { KernelArgs } from '../plan.js';

export type WorkerRequest =
  | { init: true; build: SimdBuild | null; id?: undefined }
  | { init?: undefined; id: number; kernel: string; args: Record<string, unknown>; rowStart: number; rowEnd: number };

export interface WorkerReply {
  id: number;
  error?: { name: string; message: string };
}

interface WorkerScope {
  postMessage(message: WorkerReply): void;
  onmessage: ((event: MessageEvent<WorkerRequest>) => void) | null;
}

const scope = globalThis as unknown as WorkerScope;
let ready: Promise<unknown> = Promise.resolve();

scope.onmessage = (event) => {
  const request = event.data;
  if (request.init) {
    ready = initSimd(request.build === null ? {} : { relaxed: request.build === 'relaxed' });
    return;
  }
  // Tasks wait for the module; messages are handled in order, so a task
  // never runs before its worker's init.
  ready.then(
    () => {
      const kernel = kernels[request.kernel];
      if (!kernel) throw new Error(`unknown kernel '${request.kernel}'`);
      kernel(request.args as KernelArgs, request.rowStart, request.rowEnd);
    },
  ).then(
    () => scope.postMessage({ id: request.id }),
    (err: unknown) => {
      const e = err instanceof Error ? err : new Error(String(err));
      scope.postMessage({ id: request.id, error: { name: e.name, message: e.message } });
    },
  );
};
