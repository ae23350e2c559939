// Which compute path the page's demo takes, and the GPU half of it.
//
// WebGPU (dsa-ts/webgpu) runs where the browser has a hardware adapter:
// the indexer scores, top-k, every mask (scatter, broadcast, bits, the
// threshold form, causal and combined) and sparse attention go to the GPU,
// with the backend's own guarantees (masks and top-k bit-identical to the
// CPU; scores and attention within the CPU's tolerance, checked by the
// demo); the rest (dense attention, the indexer's reference) stays on the
// CPU pool. A software adapter
// (SwiftShader, `isFallbackAdapter`) is slower than the CPU path, so it is
// used only when asked (?gpu=1); ?gpu=0 keeps everything on the CPU.
import type { Api } from '../src/cli/demo.js';

export type GpuChoice = 'auto' | 'on' | 'off';

export interface ComputePath {
  path: 'webgpu' | 'cpu';
  /** What the page says about the GPU. */
  gpu: string;
}

interface AdapterInfoLike {
  vendor?: string;
  architecture?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}

export async function computePath(choice: GpuChoice = 'auto'): Promise<ComputePath> {
  const gpu = (navigator as Navigator & { gpu?: { requestAdapter(): Promise<{ info?: AdapterInfoLike } | null> } }).gpu;
  if (choice === 'off') return { path: 'cpu', gpu: 'WebGPU off (?gpu=0): everything runs on the CPU' };
  let adapter: { info?: AdapterInfoLike } | null = null;
  try {
    adapter = gpu ? await gpu.requestAdapter() : null;
  } catch {
    adapter = null;
  }
  if (!adapter) return { path: 'cpu', gpu: gpu ? 'WebGPU is present but gave no adapter: everything runs on the CPU' : 'this browser has no WebGPU: everything runs on the CPU' };
  const info = adapter.info ?? {};
  const name = [info.vendor, info.architecture, info.description].filter(Boolean).join(' ') || 'an adapter';
  const software = info.isFallbackAdapter === true || info.architecture === 'swiftshader';
  if (software && choice !== 'on') {
    return { path: 'cpu', gpu: `only a software WebGPU adapter (${name}), slower than the CPU path: everything runs on the CPU (?gpu=1 uses it anyway)` };
  }
  return { path: 'webgpu', gpu: `WebGPU on ${name}${software ? ' (software, as asked)' : ''}: indexer scores, top-k, masks and sparse attention; dense attention on the CPU` };
}

/** The stages the GPU runs when the page takes the WebGPU path (the others stay on `cpu`). */
export const GPU_STAGES = ['indexer scores', 'top-k', 'masks: broadcast, scatter, bits, threshold, causal, combined', 'sparse attention'];

/**
 * The demo's calls with the GPU's functions in place of the CPU's where the
 * WebGPU backend has them; `cpu` (the pool or this thread) does the rest.
 */
export async function gpuApi(cpu: Api): Promise<{ api: Api; adapter: string }> {
  const { createGpu } = await import('../src/webgpu/index.js');
  const gpu = await createGpu();
  const a = gpu.adapter;
  return {
    adapter: [a.vendor, a.architecture, a.description].filter(Boolean).join(' ') || 'unnamed adapter',
    api: {
      ...cpu,
      indexerScores: (q, k, w, opts) => gpu.indexerScores(q, k as never, w, opts),
      topk: (scores, k, opts) => gpu.topk(scores, k, opts as never),
      generateMask: (indices, s, opts) => gpu.generateMask(indices, s, opts),
      maskFromThreshold: (scores, values, opts) => gpu.maskFromThreshold(scores, values, opts),
      causalMask: (b, t, s, offset, form, opts) => gpu.causalMask(b, t, s, offset, form, opts),
      combineMasks: (a, b, opts) => gpu.combineMasks(a, b, opts),
      sparseAttention: (q, kv, indices, opts) => gpu.sparseAttention(q, kv, indices, opts),
      close: async () => {
        gpu.destroy();
        await cpu.close();
      },
    },
  };
}
