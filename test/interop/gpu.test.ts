// createGpu()'s ops with ort and tf CPU tensors in and out: equal to the CPU
// functions bit for bit where the GPU is (top-k, masks, slots), the
// resident results left alone, and output refused with resident: true.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gpu } from '../webgpu/device.js';
import { GpuTensor } from '../../src/webgpu/index.js';
import { topk } from '../../src/topk/topk.js';
import { generateMask } from '../../src/mask/masks.js';
import { GPU_SIGNATURES } from '../../src/interop/signatures.js';
import { asOrt, asOrtInt64, asTf, assertSameBits, floats, ort, tensorsOf, tf } from './runtimes.js';

test('gpu.topk and gpu.generateMask: ort/tf inputs and output equal the CPU functions bit for bit', async () => {
  for (const [b, t, s, k] of [[1, 1, 5, 2], [2, 3, 300, 17]]) {
    const scores = floats([b, t, s], b * 100 + s);
    const want = topk(scores, k);
    const got = await gpu.topk(asOrt(scores), k, { output: ort });
    assert.deepEqual(tensorsOf(got).map((x) => `${x.kind}:${x.dtype}`), ['ort:float32', 'ort:int32']);
    assertSameBits(got, want, `topk [${b}, ${t}, ${s}] k=${k}`);
    const fromTf = await gpu.topk(asTf(scores), k, { output: tf });
    assertSameBits(fromTf, want, 'tf');
    tf.dispose([fromTf.values, fromTf.indices]);
    const mask = await gpu.generateMask(asOrtInt64(want.indices), s, { form: 'bool', output: ort });
    assert.equal((mask as ort.Tensor).type, 'bool');
    assertSameBits(mask, generateMask(want.indices, s, { form: 'bool' }), 'mask');
  }
});

test('gpu: resident results stay GpuTensors (ort input uploaded); output with resident: true rejects by name', async () => {
  const scores = floats([1, 2, 64], 5);
  const resident = await gpu.topk(asOrt(scores), 4, { resident: true });
  assert.ok(resident.indices instanceof GpuTensor);
  assertSameBits(await gpu.read(resident.indices), topk(scores, 4).indices);
  // A GpuTensor goes through the wrapper untouched, as does a GpuTensor mask among ort tensors.
  const up = gpu.upload(asOrt(scores));
  assert.ok(up instanceof GpuTensor);
  assert.deepEqual(up.shape, [1, 2, 64]);
  assertSameBits(await gpu.topk(up, 4, { output: ort }), topk(scores, 4));
  await assert.rejects(gpu.topk(asOrt(scores), 4, { resident: true, output: ort }), (e: Error) => e instanceof TypeError && /^output: with resident: true topk's results stay on the GPU as GpuTensors/.test(e.message));
  await assert.rejects(gpu.topk(asOrt({ data: new Int32Array(4), shape: [1, 1, 4] }), 2), /^TypeError: scores: expected dtype float32, got an ort\.Tensor of type 'int32'$/);
  assert.throws(() => gpu.upload(new ort.Tensor('float16', new Uint16Array(2), [2])), /^TypeError: tensor: expected dtype a numeric dtype other than float16, got an ort\.Tensor of type 'float16'/);
});

test('every createGpu() op that takes or gives a host tensor has a signature (read, wrap and destroy take none)', () => {
  const ops = Object.entries(gpu).filter(([, v]) => typeof v === 'function').map(([n]) => n).filter((n) => n !== 'read' && n !== 'wrap' && n !== 'destroy').sort();
  assert.deepEqual(ops, Object.keys(GPU_SIGNATURES).sort(), 'every GPU op needs a line in GPU_SIGNATURES (src/interop/signatures.ts)');
});
