// The page's demo runs here, off the main thread: the pipeline of `dsa demo`
// (src/cli/demo.ts) on seeded inputs, its main run on the browser pool (Web
// Workers over SharedArrayBuffer where the page is cross-origin isolated;
// this thread otherwise) and, on the WebGPU path, the GPU (web/gpu.ts); the
// sweep on this thread. Progress and the result go back to the page.
import { localApi, runDemo, type Api } from '../src/cli/demo.js';
import { gpuApi } from './gpu.js';
import { createPool } from '../src/pool/browser.js';
import { initSimd, simdBuild } from '../src/simd/index.js';
import type { DemoReply, DemoRequest } from './messages.js';

const post = (reply: DemoReply, transfer: Transferable[] = []) => (self as unknown as Worker).postMessage(reply, transfer);

self.onmessage = async (event: MessageEvent<DemoRequest>) => {
  const { config, gpu } = event.data;
  try {
    await initSimd();
    let poolShared: boolean | null = null;
    let adapter: string | null = null;
    let last = 0;
    const result = await runDemo(
      config,
      (stage, done, total) => {
        // A message per stage is plenty; at most one per 50 ms.
        const now = performance.now();
        if (now - last < 50 && done < total) return;
        last = now;
        post({ type: 'progress', stage, done, total });
      },
      async (threads) => {
        let cpu = localApi();
        if (threads > 1) {
          const pool = createPool({ threads });
          poolShared = pool.shared;
          cpu = pool as unknown as Api;
        }
        if (!gpu) return cpu;
        const opened = await gpuApi(cpu);
        adapter = opened.adapter;
        return opened.api;
      },
    );
    post({ type: 'done', result, simd: simdBuild(), poolShared, gpu: adapter }, [result.selected.kept.buffer]);
  } catch (err) {
    post({ type: 'error', message: err instanceof Error ? err.message : String(err) });
  }
};
