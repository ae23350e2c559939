import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateMask } from '../../src/mask/masks.js';
import { topk } from '../../src/topk/topk.js';
import { indexerScores } from '../../src/indexer/scores.js';
import { sparseAttention } from '../../src/attention/sparse.js';
import { createGpu, GpuTensor } from '../../src/webgpu/index.js';
import { GpuContext, runOnGpu } from '../../src/webgpu/runner.js';
import { programs } from '../../src/webgpu/programs.js';
import type { Plan } from '../../src/plan.js';
import { randomFloats, randomIndices } from '../attention/fixtures.js';
import { bits, gpu } from './device.js';

test('a pipeline on GPU tensors (indexer top-k -> mask and attention) equals the host path, reading back only the results', async () => {
  const [t, h, d, s, k, hq, dqk] = [4, 3, 16, 40, 6, 2, 24];
  const q = randomFloats([1, t, h, d], 1), keys = randomFloats([1, s, d], 2), w = randomFloats([1, t, h], 3);
  const aq = randomFloats([t, hq, dqk], 4), kv = randomFloats([s, 1, dqk], 5);
  const host = await gpu.indexerTopk(q, keys, w, k, { causalOffset: s - t });
  const onGpu = await gpu.indexerTopk(gpu.upload(q), gpu.upload(keys), gpu.upload(w), k, { causalOffset: s - t, resident: true });
  assert.ok(onGpu.indices instanceof GpuTensor && onGpu.values instanceof GpuTensor);
  assert.deepEqual(onGpu.indices.shape, [1, t, k]);
  const read = await gpu.read(onGpu.indices);
  assert.deepEqual(read.data, host.indices.data);
  // The indices feed the mask and the attention without visiting the host.
  const mask = await gpu.generateMask(onGpu.indices, s, { form: 'bits' });
  assert.deepEqual(mask.data, generateMask(host.indices, s, { form: 'bits' }).data);
  const perHead = onGpu.indices.reshape([t, 1, k]);
  const attn = await gpu.sparseAttention(gpu.upload(aq), gpu.upload(kv), perHead, { resident: true });
  const out = await gpu.read(attn.out);
  const want = await gpu.sparseAttention(aq, kv, { data: host.indices.data, shape: [t, 1, k] });
  assert.deepEqual(bits(out.data as Float32Array), bits(want.out.data));
  assert.ok(Math.max(...Array.from(want.out.data, (x, i) => Math.abs(x - sparseAttention(aq, kv, { data: host.indices.data, shape: [t, 1, k] }).out.data[i]))) < 1e-5);
});

test('an edge that reads a GPU tensor gets its values: an index >= s in GPU indices is the CPU RangeError', async () => {
  const idx = randomIndices(3, 1, 4, 10, 7);
  idx.data[9] = 12;
  const cpu = (() => { try { generateMask({ data: idx.data, shape: [1, 3, 4] }, 10); } catch (e) { return e as Error; } })()!;
  const onGpu = gpu.upload({ data: idx.data, shape: [1, 3, 4] });
  await assert.rejects(gpu.generateMask(onGpu, 10), (e: Error) => e instanceof RangeError && e.message === cpu.message);
  await assert.rejects(gpu.generateMask(gpu.upload({ data: new Float32Array(12), shape: [1, 3, 4] }), 10), /indices.data: expected a Int32Array, got Float32Array/);
  // A resident top-k's NaN flag is read back for finish: the CPU error.
  const scores = randomFloats([1, 2, 9], 3);
  scores.data[12] = NaN;
  const cpuNaN = (() => { try { topk(scores, 2); } catch (e) { return e as Error; } })()!;
  await assert.rejects(gpu.topk(gpu.upload(scores), 2, { resident: true }), (e: Error) => e.message === cpuNaN.message);
});

test('a step option or kernel the programs lack is refused by name, never ignored', async () => {
  const ctx = new GpuContext(gpu.device, programs);
  const indices = new Int32Array([0, 1]);
  const planWith = (kernel: string, extra: Record<string, unknown>): Plan<null> => ({
    steps: [{ kernel, args: { indices, k: 2, s: 4, firstBad: new Int32Array([0x7fffffff]), ...extra } as never, rows: [0, 1], writes: ['firstBad'] }],
    finish: () => null,
  });
  const run = (plan: Plan<null>) => runOnGpu(ctx, 'generateMask', () => plan, { resident: false, standIns: [] });
  await assert.rejects(run(planWith('mask.indices.check', { keyWindow: new Int32Array([0, 4]) })), /generateMask: option 'keyWindow' \(kernel mask.indices.check\) is not supported by the WebGPU backend yet/);
  await assert.rejects(run(planWith('mask.indices.check', { pageSize: 64 })), /option 'pageSize'.*not supported by the WebGPU backend yet/);
  await assert.rejects(run(planWith('mask.paged', {})), /generateMask: kernel 'mask.paged' is not supported by the WebGPU backend yet/);
  // Options left at null / false (not used) pass.
  assert.equal(await run(planWith('mask.indices.check', { topkLength: null, attnSink: false })), null);
});

test('an array over the device buffer limit is refused before anything is allocated, naming the operation and the bytes', async () => {
  const limit = Math.min(gpu.device.limits.maxStorageBufferBindingSize, gpu.device.limits.maxBufferSize);
  const s = Math.floor(limit / 4) + 1;
  const idx = { data: new Int32Array([0]), shape: [1, 1, 1] };
  await assert.rejects(gpu.generateMask(idx, s, { maxBytes: 2 ** 40 }), (e: Error) =>
    e.constructor === Error && e.message.startsWith('generateMask: ') && e.message.includes(`(${s * 4} bytes)`) && e.message.includes(`(${limit} bytes`));
  // The CPU's own guard still comes first.
  await assert.rejects(gpu.generateMask(idx, s, { maxBytes: 1000 }), (e: Error) => e instanceof RangeError && /over maxBytes/.test(e.message));
});

test('an allocation the device refuses and a lost device reject naming the operation, never hang', async () => {
  // A device whose buffers all fail with out-of-memory, as a full GPU answers.
  let pops = 0; // scopes pop in pairs, validation then out-of-memory
  const refusing = new Proxy(gpu.device, {
    get(target, key) {
      if (key === 'popErrorScope') {
        return () => target.popErrorScope().then((e) => (e ?? (++pops % 2 === 0 ? { message: 'Out of memory' } : null)));
      }
      const v = Reflect.get(target, key);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  const oom = await createGpu({ device: refusing as GPUDevice });
  const idx = randomIndices(2, 1, 3, 8, 1);
  await assert.rejects(oom.generateMask({ data: idx.data, shape: [1, 2, 3] }, 8), /generateMask: the GPU refused to allocate .* \(\d+ bytes\) of buffers: Out of memory; nothing was returned/);

  const own = await createGpu();
  const scores = randomFloats([1, 4, 300], 2);
  const pending = own.topk(scores, 5);
  own.device.destroy(); // lost while the call is in flight
  await assert.rejects(pending, (e: Error) => e instanceof Error && /^topk: the WebGPU device was lost/.test(e.message) && /bytes/.test(e.message));
  await assert.rejects(own.topk(scores, 5), /topk: the WebGPU device was lost/);
  own.destroy();
  await assert.rejects(own.topk(scores, 5), /topk: this WebGPU backend was destroyed/);
});

test('indexerScores results can stay on the GPU and feed top-k', async () => {
  const q = randomFloats([1, 3, 2, 8], 1), k = randomFloats([1, 20, 8], 2), w = randomFloats([1, 3, 2], 3);
  const scores = await gpu.indexerScores(q, k, w, { resident: true });
  assert.ok(scores instanceof GpuTensor);
  const top = await gpu.topk(scores, 4);
  const hostScores = await gpu.indexerScores(q, k, w);
  assert.deepEqual(top.indices, topk(hostScores, 4).indices);
  assert.ok(Math.max(...Array.from(hostScores.data, (x, i) => Math.abs(x - indexerScores(q, k, w).data[i]))) < 1e-4);
});

test('dsa-ts/webgpu bundles for the browser without Node modules', async () => {
  const { build } = await import('esbuild');
  const result = await build({
    entryPoints: [new URL('../../src/webgpu/index.ts', import.meta.url).pathname],
    bundle: true, platform: 'browser', format: 'esm', write: false, logLevel: 'silent',
  });
  const code = result.outputFiles[0].text;
  assert.doesNotMatch(code, /require\(["']node:|from ["']node:/);
  assert.match(code, /navigator/);
});
