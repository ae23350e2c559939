// Detection by shape, conversion in (no copy where promised, int64 checked,
// dtypes named) and out, with the real onnxruntime-node and tfjs-core.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { ACCEPTED, fromEcosystem, isOrtTensor, isTfTensor, resolveOutput, toEcosystem, type Need } from '../../src/interop/ecosystem.js';
import { decodeNpy, encodeNpy } from '../../src/io/npy.js';

await tf.setBackend('cpu');

test('isOrtTensor / isTfTensor tell the runtimes and plain tensors apart', () => {
  const data = new Float32Array(6);
  const o = new ort.Tensor('float32', data, [2, 3]);
  const t = tf.tensor(data, [2, 3]);
  assert.equal(isOrtTensor(o), true);
  assert.equal(isTfTensor(o), false);
  assert.equal(isTfTensor(t), true);
  assert.equal(isOrtTensor(t), false);
  // A plain tensor, an .npy result (it has a dtype but no dataSync) and lookalikes are neither.
  const npy = decodeNpy(encodeNpy({ data: new Int32Array(2), shape: [2] }));
  for (const x of [{ data, shape: [2, 3] }, npy, { dtype: 'float32', shape: [1] }, { type: 'float32', dims: [1] }, null, 3, 'x']) {
    assert.equal(isOrtTensor(x), false, JSON.stringify(x));
    assert.equal(isTfTensor(x), false, JSON.stringify(x));
  }
  t.dispose();
});

test('fromEcosystem: ort CPU tensors and tfjs cpu-backend tensors are used without a copy', () => {
  const data = new Float32Array([1, 2, 3, 4, 5, 6]);
  const o = fromEcosystem(new ort.Tensor('float32', data, [2, 3]), 'x', 'float32');
  assert.equal(o.data, data);
  assert.deepEqual(o.shape, [2, 3]);
  const base = tf.tensor(data, [2, 3]);
  const t = fromEcosystem(base, 'x', 'float32');
  assert.equal(t.data, data, 'the cpu backend adopts the array tf.tensor was given and dataSync returns it');
  // A reshape shares the data; a slice is a view into it (no copy either).
  const r = tf.reshape(base, [3, 2]);
  assert.equal(fromEcosystem(r, 'x', 'float32').data, data);
  const sl = tf.slice(base, [1, 0], [1, 3]);
  const view = fromEcosystem(sl, 'x', 'float32');
  assert.equal(view.data.buffer, data.buffer);
  assert.deepEqual(Array.from(view.data as Float32Array), [4, 5, 6]);
  assert.deepEqual(view.shape, [1, 3]);
  tf.dispose([base, r, sl]);
});

test('fromEcosystem: int64 indices become Int32Array, every element range-checked', () => {
  const got = fromEcosystem(new ort.Tensor('int64', new BigInt64Array([0n, 5n, -1n]), [1, 3]), 'indices', 'int32');
  assert.ok(got.data instanceof Int32Array);
  assert.deepEqual(Array.from(got.data as Int32Array), [0, 5, -1]);
  assert.throws(
    () => fromEcosystem(new ort.Tensor('int64', new BigInt64Array([1n, 2n ** 31n]), [2]), 'indices', 'int32'),
    (e: Error) => e instanceof RangeError && /indices: element 1 is 2147483648, outside int32/.test(e.message),
  );
  // Where no int32 is needed, int64 is refused by name.
  assert.throws(
    () => fromEcosystem(new ort.Tensor('int64', new BigInt64Array([1n]), [1]), 'scores', 'float32'),
    (e: Error) => e instanceof TypeError && /scores: expected dtype float32, got an ort\.Tensor of type 'int64'/.test(e.message),
  );
});

test('fromEcosystem: a dtype the argument does not take is a TypeError naming argument, expected and actual', () => {
  const cases: [() => unknown, RegExp][] = [
    [() => fromEcosystem(new ort.Tensor('int32', new Int32Array(2), [2]), 'scores', 'float32'), /^scores: expected dtype float32, got an ort\.Tensor of type 'int32'$/],
    [() => fromEcosystem(new ort.Tensor('float16', new Uint16Array(2), [2]), 'q', 'float32'), /^q: expected dtype float32, got an ort\.Tensor of type 'float16' \(dsa-ts computes in float32/],
    [() => fromEcosystem(new ort.Tensor('float32', new Float32Array(2), [2]), 'indices', 'int32'), /^indices: expected dtype int32 \(or int64, range-checked\), got an ort\.Tensor of type 'float32'$/],
    [() => fromEcosystem(tf.tensor(new Float32Array(2), [2]), 'indices', 'int32'), /^indices: expected dtype int32 .*, got a tf\.Tensor of dtype 'float32'$/],
    [() => fromEcosystem(tf.tensor(new Int32Array(2), [2], 'int32'), 'mask', 'mask'), /^mask: expected dtype float32 \(additive\), bool or uint8 \(bool form\) or uint32 \(bits\), got a tf\.Tensor of dtype 'int32'$/],
    [() => fromEcosystem(tf.tensor(new Float32Array(2), [2]), 'k.values', 'int8'), /^k\.values: expected dtype int8, got a tf\.Tensor of dtype 'float32' \(tfjs has no int8 dtype/],
    [() => fromEcosystem(new ort.Tensor('float16', new Uint16Array(2), [2]), 'tensor', 'any'), /^tensor: expected dtype a numeric dtype other than float16, got an ort\.Tensor of type 'float16'/],
  ];
  for (const [run, message] of cases) assert.throws(run, (e: Error) => e instanceof TypeError && message.test(e.message), String(message));
});

test('fromEcosystem: every dtype a need lists arrives as the typed array the library takes', () => {
  const ctors: Record<string, new (n: number) => ArrayBufferView> = {
    float32: Float32Array, int32: Int32Array, int64: BigInt64Array, int8: Int8Array, uint8: Uint8Array, bool: Uint8Array, uint32: Uint32Array,
    float64: Float64Array, int16: Int16Array, uint16: Uint16Array,
  };
  const library: Record<Need, string[]> = {
    float32: ['Float32Array'], int32: ['Int32Array'], index: ['Int32Array', 'BigInt64Array'], float: ['Float32Array', 'Float64Array'], int8: ['Int8Array'], uint8: ['Uint8Array'],
    mask: ['Float32Array', 'Uint8Array', 'Uint32Array'], any: Object.values(ctors).map((c) => c.name),
  };
  for (const [need, { ort: dtypes }] of Object.entries(ACCEPTED) as [Need, { ort: readonly string[] }][]) {
    for (const dtype of dtypes) {
      const got = fromEcosystem(new ort.Tensor(dtype as 'float32', new ctors[dtype](3) as Float32Array, [3]), 'x', need);
      assert.ok(library[need].includes(got.data.constructor.name), `${need} from ort ${dtype}: ${got.data.constructor.name}`);
    }
  }
  const bool = fromEcosystem(tf.tensor(new Uint8Array([1, 0]), [2], 'bool'), 'mask', 'mask');
  assert.ok(bool.data instanceof Uint8Array);
});

test('fromEcosystem: GPU-located or disposed tensors are TypeErrors naming where the data is', () => {
  const gpuBuffer = { size: 16, mapState: 'unmapped', destroy() {} } as unknown as Parameters<typeof ort.Tensor.fromGpuBuffer>[0];
  const onGpu = ort.Tensor.fromGpuBuffer(gpuBuffer, { dataType: 'float32', dims: [4] });
  assert.equal(onGpu.location, 'gpu-buffer');
  assert.throws(() => fromEcosystem(onGpu, 'q', 'float32'), (e: Error) => e instanceof TypeError && /^q: the ort\.Tensor holds its data on 'gpu-buffer', not the CPU; expected location 'cpu'/.test(e.message));
  const gone = new ort.Tensor('float32', new Float32Array(2), [2]);
  gone.dispose();
  assert.throws(() => fromEcosystem(gone, 'q', 'float32'), /q: the ort\.Tensor was disposed/);
  const t = tf.tensor(new Float32Array(2), [2]);
  t.dispose();
  assert.throws(() => fromEcosystem(t, 'q', 'float32'), (e: Error) => e instanceof TypeError && /^q: the tf\.Tensor was disposed$/.test(e.message));
});

test('toEcosystem: results wrap the same array (ort, tfjs cpu backend)', () => {
  const data = new Float32Array([1, 2, 3]);
  const o = toEcosystem({ data, shape: [1, 3] }, ort) as ort.Tensor;
  assert.equal(o.data, data);
  assert.deepEqual(o.dims, [1, 3]);
  assert.equal(o.type, 'float32');
  const t = toEcosystem({ data, shape: [1, 3] }, tf) as tf.Tensor;
  assert.equal(t.dataSync(), data);
  assert.equal(t.dtype, 'float32');
  const bool = toEcosystem({ data: new Uint8Array([1, 0]), shape: [2] }, ort, 'bool') as ort.Tensor;
  assert.equal(bool.type, 'bool');
  assert.throws(() => toEcosystem({ data: new Uint32Array(1), shape: [1] }, tf), /tfjs has no dtype for 'uint32' \(it has float32, int32 and bool\)/);
  assert.throws(() => toEcosystem({ data: new Float32Array(1), shape: [1] }, ort, 'int32'), /dtype: 'int32' needs a Int32Array, got Float32Array/);
  t.dispose();
});

test('resolveOutput: the modules are told apart; anything else is a TypeError naming output', () => {
  assert.equal(resolveOutput(undefined), null);
  assert.equal(resolveOutput(ort)!.runtime, 'ort');
  assert.equal(resolveOutput(tf)!.runtime, 'tf');
  for (const bad of ['ort', 'tf', null, 1, {}, { Tensor: 1 }, ort.Tensor]) {
    assert.throws(() => resolveOutput(bad), (e: Error) => e instanceof TypeError && /^output: expected the onnxruntime module .* or the tfjs module/.test(e.message), String(bad));
  }
});
