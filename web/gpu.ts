// Which compute path the page runs. Today: the CPU (WebAssembly SIMD, and the
// Web Worker pool). The GPU backend (WebGPU, `dsa-ts/webgpu`) is built on its
// own branch; once it is on main, this is the one place to pick it:
//
//   WEBGPU PATH: import { createGpu } from '../src/webgpu/index.js' (or the
//   package's `dsa-ts/webgpu`), request an adapter here, and return
//   { path: 'webgpu', ... } so demo-worker.ts runs the pipeline on it; the
//   page then says which path ran.

export interface ComputePath {
  path: 'cpu';
  /** What the page says about the GPU. */
  gpu: string;
}

export async function computePath(): Promise<ComputePath> {
  const gpu = (navigator as Navigator & { gpu?: { requestAdapter(): Promise<unknown | null> } }).gpu;
  let adapter: unknown = null;
  try {
    adapter = gpu ? await gpu.requestAdapter() : null;
  } catch {
    adapter = null;
  }
  const has = adapter ? 'this browser has a WebGPU adapter' : gpu ? 'WebGPU is present but gave no adapter' : 'this browser has no WebGPU';
  return { path: 'cpu', gpu: `${has}; the WebGPU backend is not in this build yet, so everything runs on the CPU` };
}
