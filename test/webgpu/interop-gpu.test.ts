// The GPU hand-over in Node (Dawn, SwiftShader): GPUBuffers made outside the
// backend (a plain buffer with its shape and dtype, an onnxruntime-web
// tensor on 'gpu-buffer', a tfjs dataToGPU() result) go into the GPU ops
// as they are (no copy, no read-back: counted) and equal the CPU functions;
// resident results come out as onnxruntime-web GPU tensors over the
// result's own buffer, whose dispose() frees it; borrowed buffers are never
// destroyed; a buffer of another device, missing usage flags, a short or
// mapped buffer, int64 or tfjs bool on the GPU, onnxruntime-node's GPU
// tensors and a device short of the limits are errors that say so.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as ortWeb from 'onnxruntime-web';
import * as ortNode from 'onnxruntime-node';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { gpu, bits } from './device.js';
import { createGpu, GpuTensor, type GpuDtype } from '../../src/webgpu/index.js';
import { bufferBytes } from '../../src/webgpu/resident.js';
import { NEEDED_LIMITS, checkDevice } from '../../src/webgpu/handover.js';
import { topk } from '../../src/topk/topk.js';
import { sparseAttention } from '../../src/attention/sparse.js';
import { generateMask } from '../../src/mask/masks.js';
import { indexerScores } from '../../src/indexer/scores.js';
import { quantizeKeys, quantizeKeysFp8 } from '../../src/indexer/quantized-keys.js';
import type { Tensor } from '../../src/tensor.js';
import { assertClose } from '../helpers/close.js';
import { randomFloats } from '../attention/fixtures.js';

await tf.setBackend('cpu');

const USAGE = { MAP_READ: 0x1, MAP_WRITE: 0x2, COPY_SRC: 0x4, COPY_DST: 0x8, STORAGE: 0x80 };
const device = gpu.device;

/** A buffer of `device` holding `data`, `extra` bytes larger than it needs (ONNX Runtime's pooled buffers are larger too). */
function bufferOf(data: Float32Array | Int32Array | Uint8Array | Uint32Array, usage = USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST, on: GPUDevice = device, extra = 12): GPUBuffer {
  const size = Math.ceil((data.byteLength + extra) / 4) * 4;
  const buffer = on.createBuffer({ size, usage });
  if (usage & USAGE.COPY_DST) {
    const padded = new Uint8Array(size);
    padded.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    on.queue.writeBuffer(buffer, 0, padded);
  }
  return buffer;
}

/**
 * Counts GPU-to-CPU read-backs: every mapAsync on a buffer of this process,
 * by its size. A resident topk reads back one thing, its NaN flags (one
 * int32 a row, src/topk/topk.ts's finish), never scores, values or indices.
 */
const probe = device.createBuffer({ size: 4, usage: USAGE.MAP_READ | USAGE.COPY_DST });
const proto = Object.getPrototypeOf(probe) as { mapAsync: (...a: unknown[]) => Promise<void>; destroy: () => void };
probe.destroy();
const reads: number[] = [];
const destroyed = new WeakSet<object>();
const { mapAsync, destroy } = proto;
proto.mapAsync = function (this: GPUBuffer, ...a: unknown[]) {
  reads.push(this.size);
  return mapAsync.apply(this, a);
};
proto.destroy = function (this: GPUBuffer) {
  destroyed.add(this);
  return destroy.apply(this);
};
after(() => {
  proto.mapAsync = mapAsync;
  proto.destroy = destroy;
});

const [t, s, hq, d, k] = [4, 96, 2, 16, 8];
/** What a resident topk of t rows reads back: its NaN flags, t int32. */
const FLAGS = t * 4;
const readsSince = (from: number) => reads.slice(from);

test('a plain GPUBuffer (wrap, or { buffer, shape, dtype }) into topk and sparseAttention: no copy, no read-back until read, equal to the CPU; the buffers stay the caller\'s', async () => {
  const scores = randomFloats([1, t, s], 1, 3);
  const q = randomFloats([t, hq, d], 2), kv = randomFloats([s, 1, d], 3);
  const sb = bufferOf(scores.data), qb = bufferOf(q.data), kvb = bufferOf(kv.data);
  const scoresT = gpu.wrap(sb, [1, t, s], 'float32');
  assert.ok(scoresT instanceof GpuTensor && scoresT.borrowed && scoresT.buffer === sb, 'wrap is the buffer itself');
  const before = reads.length;
  const top = await gpu.topk(scoresT, k, { resident: true });
  const indices = top.indices.reshape([t, 1, k]);
  // (The ecosystem overload types the result as the host one; resident: true makes it GpuTensors.)
  const att = (await gpu.sparseAttention({ buffer: qb, shape: [t, hq, d], dtype: 'float32' }, { buffer: kvb, shape: [s, 1, d], dtype: 'float32' }, indices, { resident: true })) as unknown as Record<'out' | 'lse', GpuTensor>;
  assert.deepEqual(readsSince(before), [FLAGS], 'no read-back of scores, values, indices or attention: only topk\'s NaN flags');
  const want = topk(scores, k);
  assert.deepEqual(bits((await gpu.read(top.values)).data as Float32Array), bits(want.values.data));
  assert.deepEqual(Array.from((await gpu.read(top.indices)).data as Int32Array), Array.from(want.indices.data));
  const cpu = sparseAttention(q, kv, { data: want.indices.data, shape: [t, 1, k] });
  assertClose((await gpu.read(att.out)).data as Float32Array, cpu.out.data, { rtol: 1e-5, atol: 1e-6 }, 'out');
  assertClose((await gpu.read(att.lse)).data as Float32Array, cpu.lse.data, { rtol: 1e-5, atol: 1e-6 }, 'lse');
  // A borrowed tensor's destroy() leaves the buffer alone; the call's own results are ours to free.
  scoresT.destroy();
  scoresT.reshape([t, s]).destroy();
  assert.ok(!destroyed.has(sb) && !destroyed.has(qb) && !destroyed.has(kvb), 'no borrowed buffer destroyed');
  assertSameTopk(await gpu.topk(scoresT, k), want, 'the buffer still holds the scores');
  top.values.destroy();
  assert.ok(destroyed.has(top.values.buffer));
  for (const b of [sb, qb, kvb]) b.destroy();
});

function assertSameTopk(got: { values: Tensor; indices: Tensor }, want: { values: Tensor<Float32Array>; indices: Tensor<Int32Array> }, label: string) {
  assert.deepEqual(bits(got.values.data as Float32Array), bits(want.values.data), `${label}: values`);
  assert.deepEqual(Array.from(got.indices.data as Int32Array), Array.from(want.indices.data), `${label}: indices`);
}

test('onnxruntime-web tensors on gpu-buffer in and out: fromGpuBuffer over our buffers, getData() reads them, dispose() frees them, a bool mask is a bool-form mask', async () => {
  const scores = randomFloats([1, t, s], 4, 3);
  const sb = bufferOf(scores.data);
  const ortScores = ortWeb.Tensor.fromGpuBuffer(sb, { dataType: 'float32', dims: [1, t, s] });
  const maskHost = generateMask(topk(randomFloats([1, t, s], 5), 20).indices, s, { form: 'bool' }) as Tensor<Uint8Array>;
  const ortMask = ortWeb.Tensor.fromGpuBuffer(bufferOf(maskHost.data), { dataType: 'bool', dims: [1, t, s] });
  const before = reads.length;
  const top = await gpu.topk(ortScores, k, { mask: ortMask, output: ortWeb, resident: true });
  assert.deepEqual(readsSince(before), [FLAGS], 'no read-back but the NaN flags');
  assert.equal(top.values.location, 'gpu-buffer');
  assert.equal(top.indices.type, 'int32');
  assert.deepEqual(top.indices.dims, [1, t, k]);
  const want = topk(scores, k, { mask: maskHost });
  assertSameTopk({ values: { data: await top.values.getData() as Float32Array, shape: [] }, indices: { data: await top.indices.getData() as Int32Array, shape: [] } }, want, 'ort gpu');
  // The result's ort tensor is over the result's buffer: into the next op as it is, and dispose() destroys it.
  const reshaped = ortWeb.Tensor.fromGpuBuffer(top.indices.gpuBuffer, { dataType: 'int32', dims: [t, 1, k] });
  const q = randomFloats([t, hq, d], 6), kv = randomFloats([s, 1, d], 7);
  const att = await gpu.sparseAttention(q, kv, reshaped, { output: ortWeb });
  assertClose(att.out.data as Float32Array, sparseAttention(q, kv, { data: want.indices.data, shape: [t, 1, k] }).out.data, { rtol: 1e-5, atol: 1e-6 });
  const buffer = top.indices.gpuBuffer;
  assert.ok(!destroyed.has(buffer));
  top.indices.dispose();
  assert.ok(destroyed.has(buffer), "the ort tensor's dispose() destroys the result's buffer");
  assert.ok(!destroyed.has(sb), 'the input buffer is the caller\'s');
  // A mask result: bool on ort's side.
  const m = await gpu.generateMask(gpu.upload(want.indices), s, { form: 'bool', output: ortWeb, resident: true });
  assert.equal(m.type, 'bool');
  assert.deepEqual(Array.from(await m.getData() as Uint8Array), Array.from(generateMask(want.indices, s, { form: 'bool' }).data));
  m.dispose();
  top.values.dispose();
  sb.destroy();
});

test('a tfjs dataToGPU() result is taken by its buffer and tensorRef; bool and a disposed tensorRef are refused by name; tfjs output needs its webgpu backend', async () => {
  const scores = randomFloats([1, t, s], 8, 3);
  const ref = tf.tensor(scores.data, scores.shape, 'float32');
  const sb = bufferOf(scores.data);
  const before = reads.length;
  const top = (await gpu.topk({ buffer: sb, tensorRef: ref }, k, { resident: true })) as unknown as Record<'values' | 'indices', GpuTensor>;
  assert.deepEqual(readsSince(before), [FLAGS]);
  assertSameTopk({ values: await gpu.read(top.values), indices: await gpu.read(top.indices) }, topk(scores, k), 'tf');
  const boolRef = tf.tensor(new Uint8Array(t * s), [1, t, s], 'bool');
  await assert.rejects(gpu.topk(randomFloats([1, t, s], 1), k, { mask: { buffer: sb, tensorRef: boolRef } }), /^TypeError: mask: expected dtype float32 or uint8 or uint32 on the GPU, got a tfjs dataToGPU\(\) result of dtype 'bool' \(tfjs-webgpu stores bool as 4 bytes an element/);
  ref.dispose();
  await assert.rejects(gpu.topk({ buffer: sb, tensorRef: ref }, k), /^TypeError: scores: the tfjs dataToGPU\(\) result's tensorRef was disposed/);
  await assert.rejects(gpu.topk(scores, k, { output: tf, resident: true }), /^TypeError: output: tfjs's backend \('cpu'\) is not webgpu on this backend's device/);
  tf.dispose(boolRef);
  sb.destroy();
});

test('refused by name: usage without STORAGE or COPY_SRC, a short or mapped buffer, a bad dtype or shape, int64 and float16 on the GPU, onnxruntime-node', async () => {
  const data = new Float32Array(t * s);
  const noStorage = bufferOf(data, USAGE.COPY_SRC | USAGE.COPY_DST);
  assert.throws(() => gpu.wrap(noStorage, [1, t, s], 'float32'), /^TypeError: wrap: the GPUBuffer's usage \(12\) lacks GPUBufferUsage\.STORAGE;/);
  const noCopy = bufferOf(data, USAGE.STORAGE | USAGE.COPY_DST);
  await assert.rejects(gpu.topk({ buffer: noCopy, shape: [1, t, s], dtype: 'float32' }, k), /^TypeError: scores: the GPUBuffer's usage \(136\) lacks GPUBufferUsage\.COPY_SRC;/);
  const short = bufferOf(new Float32Array(10), undefined, device, 0);
  assert.throws(() => gpu.wrap(short, [1, t, s], 'float32'), /^RangeError: wrap: a float32 tensor of shape \[1, 4, 96\] needs 1536 bytes, the GPUBuffer has 40$/);
  const mappedBuffer = device.createBuffer({ size: 16, usage: USAGE.STORAGE | USAGE.COPY_SRC, mappedAtCreation: true });
  assert.throws(() => gpu.wrap(mappedBuffer, [4], 'float32'), /^TypeError: wrap: the GPUBuffer is mapped; unmap it first$/);
  mappedBuffer.unmap();
  assert.throws(() => gpu.wrap(mappedBuffer, [4], 'float64' as never), /^TypeError: wrap: dtype: expected one of 'float32', 'int32', 'uint32', 'uint8', 'int8', got string "float64"$/);
  assert.throws(() => gpu.wrap(mappedBuffer, [-1], 'float32'), /^TypeError: wrap: shape: expected an array of non-negative integers/);
  assert.throws(() => gpu.wrap({} as GPUBuffer, [4], 'float32'), /^TypeError: wrap: expected a GPUBuffer, got/);
  const ok = bufferOf(new Int32Array(t * k));
  await assert.rejects(gpu.topk({ buffer: ok, shape: [1, t, k], dtype: 'int32' }, 2), /^TypeError: scores: expected dtype float32 on the GPU, got a \{ buffer, shape, dtype \} of dtype 'int32'$/);
  const int64 = ortWeb.Tensor.fromGpuBuffer(ok, { dataType: 'int64', dims: [t, 1, k / 2] });
  await assert.rejects(gpu.generateMask(int64, s), /^TypeError: indices: expected dtype int32 on the GPU, got an ort\.Tensor on 'gpu-buffer' of dtype 'int64' \(the GPU ops take int32 indices: Cast to int32 in the graph/);
  const half = ortWeb.Tensor.fromGpuBuffer(ok, { dataType: 'float16', dims: [1, t, k] });
  await assert.rejects(gpu.topk(half, 2), /of dtype 'float16' \(dsa-ts computes in float32: Cast to float32 in the graph\)$/);
  // onnxruntime-node: a 'gpu-buffer' tensor whose handle is no GPUBuffer, and no GPU output.
  const native = ortNode.Tensor.fromGpuBuffer({ handle: 1 } as never, { dataType: 'float32', dims: [1, t, s] });
  await assert.rejects(gpu.topk(native, k), /^TypeError: scores: the ort\.Tensor on 'gpu-buffer' holds .*not a WebGPU GPUBuffer \(onnxruntime-node's GPU tensors are native handles/);
  await assert.rejects(gpu.topk(randomFloats([1, t, s], 1), k, { output: ortNode, resident: true }), /^TypeError: output: with resident: true topk's results stay on the GPU as GpuTensors, and onnxruntime-node takes no GPUBuffer/);
  // The CPU functions keep refusing GPU tensors (src/interop/index.ts's topk).
  const { topk: topkInterop } = await import('../../src/interop/index.js');
  assert.throws(() => topkInterop(ortWeb.Tensor.fromGpuBuffer(ok, { dataType: 'float32', dims: [1, t, k] }), 2), /^TypeError: scores: the ort\.Tensor holds its data on 'gpu-buffer', not the CPU/);
  assert.throws(() => topkInterop({ buffer: ok, shape: [1, t, k], dtype: 'float32' } as never, 2), /^TypeError: scores: a GPUBuffer \(a tfjs dataToGPU\(\) result or \{ buffer, shape, dtype \}\) is taken by the GPU ops only/);
  const ref = tf.tensor(new Float32Array(t * k), [1, t, k]);
  assert.throws(() => topkInterop(randomFloats([1, t, k], 1), 2, { mask: { buffer: ok, tensorRef: ref } as never }), /^TypeError: mask: a GPUBuffer .* is taken by the GPU ops only/);
  ref.dispose();
  for (const b of [noStorage, noCopy, short, mappedBuffer, ok]) b.destroy();
});

test('a buffer of another device: the call rejects naming the argument and the device, and nothing is destroyed', async () => {
  const other = await createGpu();
  try {
    const scores = randomFloats([1, t, s], 9);
    const foreign = bufferOf(scores.data, undefined, other.device);
    // Used on its own device first, so an answer about one device is not taken for another's.
    assertSameTopk(await other.topk(other.wrap(foreign, [1, t, s], 'float32'), k), topk(scores, k), 'its own device');
    await assert.rejects(gpu.topk({ buffer: foreign, shape: [1, t, s], dtype: 'float32' }, k), (e: Error) =>
      e instanceof TypeError && /^topk: scores: the GPUBuffer \(a float32 tensor of shape \[1, 4, 96\]\) is not one of this backend's device \(.+\); create the backend on the device that made it/.test(e.message));
    await assert.rejects(gpu.topk(gpu.wrap(foreign, [1, t, s], 'float32'), k), /^TypeError: topk: wrap: the GPUBuffer/);
    assert.ok(!destroyed.has(foreign));
    // This backend still works.
    assertSameTopk(await gpu.topk(scores, k), topk(scores, k), 'this backend after the refusal');
    foreign.destroy();
  } finally {
    other.destroy();
  }
});

test('createGpu({ device }): a second backend on the same device shares GpuTensors; a device short of the limits or not a device is refused by name', async () => {
  const second = await createGpu({ device });
  const scores = randomFloats([1, t, s], 10);
  const up = gpu.upload(scores);
  assertSameTopk(await second.topk(up, k), topk(scores, k), 'shared device');
  second.destroy();
  assert.equal(device.lost instanceof Promise, true);
  up.destroy();
  const limits = { ...Object.fromEntries(Object.keys(NEEDED_LIMITS).map((n) => [n, (device.limits as unknown as Record<string, number>)[n]])), maxStorageBuffersPerShaderStage: 4, maxComputeWorkgroupStorageSize: 8192 };
  const fake = { createBuffer() {}, queue: {}, features: new Set(), limits };
  await assert.rejects(createGpu({ device: fake as never }), /^Error: createGpu: device: maxComputeWorkgroupStorageSize is 8192, the programs need at least 16384; maxStorageBuffersPerShaderStage is 4, the programs need at least 8 /);
  await assert.rejects(createGpu({ device: {} as never }), /^TypeError: createGpu: device: expected a GPUDevice \(await ort\.env\.webgpu\.device, tf\.backend\(\)\.device/);
  assert.equal(checkDevice(device), device);
});

test('the indexer on onnxruntime-web GPU tensors: q, k, w (float32 keys, quantizeKeys codes and scales, FP8 keys\' bytes) into indexerScores and indexerTopk equal the GPU path of uploads and the CPU', async () => {
  const [b, ti, si, h, di, topK] = [1, 3, 40, 2, 16, 5];
  const q = randomFloats([b, ti, h, di], 11), keys = randomFloats([b, si, di], 12), w = randomFloats([b, ti, h], 13);
  const ortOf = (x: Tensor<Float32Array>) => ortWeb.Tensor.fromGpuBuffer(bufferOf(x.data), { dataType: 'float32', dims: x.shape });
  const before = reads.length;
  const scores = await gpu.indexerScores(ortOf(q), ortOf(keys), ortOf(w), { resident: true });
  assert.deepEqual(readsSince(before), [], 'no read-back');
  const want = await gpu.indexerScores(gpu.upload(q), gpu.upload(keys), gpu.upload(w));
  assert.deepEqual(bits((await gpu.read(scores as unknown as GpuTensor)).data as Float32Array), bits(want.data), 'float32 keys: the same bits as uploads');
  const kq = quantizeKeys(keys);
  // onnxruntime-web has no int8 GPU tensors (fromGpuBuffer refuses the type): the codes as { buffer, shape, dtype }.
  const values = { buffer: bufferOf(new Uint8Array(kq.values.data.buffer, kq.values.data.byteOffset, kq.values.data.length)), shape: kq.values.shape, dtype: 'int8' as const };
  const int8 = await gpu.indexerTopk(ortOf(q), { values, scales: ortOf(kq.scales) }, ortOf(w), topK, { precision: 'int8' });
  assertSameTopk(int8, await gpu.indexerTopk(gpu.upload(q), { values: gpu.upload(kq.values), scales: gpu.upload(kq.scales) }, gpu.upload(w), topK, { precision: 'int8' }), 'int8 keys');
  const fp8 = quantizeKeysFp8(keys);
  const fp8Data = ortWeb.Tensor.fromGpuBuffer(bufferOf(fp8.data), { dataType: 'uint8', dims: [fp8.data.length] });
  const got = await gpu.indexerScores(ortOf(q), { ...fp8, data: fp8Data as never }, ortOf(w), { precision: 'fp8' });
  assert.deepEqual(bits(got.data), bits(indexerScores(q, fp8, w, { precision: 'fp8' }).data), 'FP8 keys: bit-identical to the CPU');
});

test("a device with the default limits (as tfjs-webgpu asks for): every op runs but the fused indexerTopk with a mask, refused by name", async () => {
  const { create } = (await import('webgpu')) as unknown as { create(flags: string[]): GPU };
  const instance = create([]); // kept to the end: the Dawn instance must outlive its device
  const adapter = (await instance.requestAdapter())!;
  const plain = await adapter.requestDevice(); // no required limits: 8 storage buffers a stage
  assert.equal(plain.limits.maxStorageBuffersPerShaderStage, 8);
  const g = await createGpu({ device: plain });
  try {
    const [ti, si, h, di, topK] = [2, 30, 2, 8, 4];
    const q = randomFloats([1, ti, h, di], 14), keys = randomFloats([1, si, di], 15), w = randomFloats([1, ti, h], 16);
    const mask = generateMask(topk(randomFloats([1, ti, si], 17), 10).indices, si, { form: 'bool' });
    assertSameTopk(await g.indexerTopk(q, keys, w, topK), await gpu.indexerTopk(q, keys, w, topK), 'without a mask');
    await assert.rejects(g.indexerTopk(q, keys, w, topK, { mask }), /binds \d+ storage buffers, this device allows 8/);
  } finally {
    g.destroy();
    plain.destroy();
    void instance;
  }
});

test('property: any shape, padding and mask form handed over as GPUBuffers gives the CPU\'s top-k bit for bit; a buffer is taken exactly when it holds the tensor', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 200 }), fc.integer({ min: 1, max: 40 }),
      fc.integer({ min: 0, max: 64 }), fc.constantFrom('none', 'bool', 'additive', 'bits'), fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      async (ti, si, kk, extra, form, seed) => {
        const scores = randomFloats([1, ti, si], seed % 1000, 4);
        const maskHost = form === 'none' ? undefined : (generateMask(topk(randomFloats([1, ti, si], seed % 997 + 1), Math.max(1, si >> 1)).indices, si, { form: form as 'bool' }) as Tensor<Uint8Array>);
        const sb = bufferOf(scores.data, undefined, device, extra);
        const mb = maskHost && bufferOf(maskHost.data as Uint8Array, undefined, device, extra);
        const mask = maskHost && { buffer: mb!, shape: maskHost.shape, dtype: (form === 'bool' ? 'uint8' : form === 'bits' ? 'uint32' : 'float32') as 'uint8' };
        try {
          const got = await gpu.topk({ buffer: sb, shape: [1, ti, si], dtype: 'float32' }, kk, mask ? { mask } : {});
          assertSameTopk(got, topk(scores, kk, maskHost ? { mask: maskHost } : {}), `[1, ${ti}, ${si}] k=${kk} ${form}`);
        } finally {
          sb.destroy();
          mb?.destroy();
        }
      },
    ),
    { numRuns: 12 },
  );
  fc.assert(
    fc.property(fc.constantFrom('float32', 'int32', 'uint32', 'uint8', 'int8'), fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 0, maxLength: 3 }), fc.integer({ min: 1, max: 128 }), (dtype, shape, size) => {
      const bytes = bufferBytes(dtype as GpuDtype, shape.reduce((a, b) => a * b, 1));
      const buffer = device.createBuffer({ size: Math.ceil(size / 4) * 4, usage: USAGE.STORAGE | USAGE.COPY_SRC });
      try {
        if (buffer.size >= bytes) assert.equal(gpu.wrap(buffer, shape, dtype as GpuDtype).length, shape.reduce((a, b) => a * b, 1));
        else assert.throws(() => gpu.wrap(buffer, shape, dtype as GpuDtype), new RegExp(`^RangeError: wrap: a ${dtype} tensor of shape \\[${shape.join(', ')}\\] needs ${bytes} bytes, the GPUBuffer has ${buffer.size}$`));
      } finally {
        buffer.destroy();
      }
    }),
    { numRuns: 200 },
  );
});
