// The two runtimes as a test sees them: plain tensors turned into ort and tf
// tensors over the same arrays, results turned back to plain, and a
// comparison of two results byte for byte (so -0, NaN payloads and int
// widths count).
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { rng } from '../../src/cli/demo-data.js';
import type { Tensor, TypedArray } from '../../src/tensor.js';
import { isOrtTensor, isTfTensor } from '../../src/interop/ecosystem.js';

await tf.setBackend('cpu');

export { ort, tf };

export type F = Tensor<Float32Array>;

export function floats(shape: number[], seed: number, scale = 1): F {
  const next = rng(seed);
  return { data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (next() * 2 - 1) * scale), shape };
}

const ORT_TYPE: Record<string, ort.Tensor.Type> = {
  Float32Array: 'float32', Int32Array: 'int32', Int8Array: 'int8', Uint8Array: 'uint8', Uint32Array: 'uint32', BigInt64Array: 'int64',
};

/** An ort.Tensor over the tensor's own array (Uint8Array: 'bool' unless told). */
export function asOrt(t: Tensor, type?: ort.Tensor.Type): ort.Tensor {
  return new ort.Tensor(type ?? ORT_TYPE[t.data.constructor.name], t.data as Float32Array, t.shape);
}

/** A tf.Tensor over the tensor's own array (cpu backend: no copy). */
export function asTf(t: Tensor, dtype?: 'float32' | 'int32' | 'bool'): tf.Tensor {
  return tf.tensor(t.data as Float32Array, t.shape, dtype ?? (t.data instanceof Int32Array ? 'int32' : t.data instanceof Uint8Array ? 'bool' : 'float32'));
}

/** int64 indices as ONNX graphs give them (TopK, ArgMax, Gather indices). */
export function asOrtInt64(t: Tensor<Int32Array>): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.from(t.data, (v) => BigInt(v)), t.shape);
}

/** A result with every ort/tf tensor as { data, shape }, to compare with the plain path's. */
export function plainOf(x: unknown): unknown {
  if (isOrtTensor(x)) return { data: x.data, shape: Array.from(x.dims) };
  if (isTfTensor(x)) return { data: x.dataSync(), shape: x.shape.slice() };
  if (ArrayBuffer.isView(x) || typeof x !== 'object' || x === null) return x;
  if (Array.isArray(x)) return x.map(plainOf);
  return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, plainOf(v)]));
}

function bytesOf(x: unknown): unknown {
  if (ArrayBuffer.isView(x)) return { type: x.constructor.name, bytes: Array.from(new Uint8Array(x.buffer, x.byteOffset, x.byteLength)) };
  if (typeof x !== 'object' || x === null) return x;
  if (Array.isArray(x)) return x.map(bytesOf);
  return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, bytesOf(v)]));
}

/** Two results equal bit for bit (ecosystem tensors read as their data), every field, typed-array types included. */
export function assertSameBits(actual: unknown, expected: unknown, label = ''): void {
  assert.deepStrictEqual(bytesOf(plainOf(actual)), bytesOf(plainOf(expected)), label);
}

/** Whether every tensor of a result is of the runtime asked for (and none left plain), listing the paths that are not. */
export function tensorsOf(x: unknown, path = ''): { path: string; kind: 'ort' | 'tf' | 'plain'; dtype: string }[] {
  if (isOrtTensor(x)) return [{ path, kind: 'ort', dtype: x.type }];
  if (isTfTensor(x)) return [{ path, kind: 'tf', dtype: x.dtype }];
  if (typeof x !== 'object' || x === null || ArrayBuffer.isView(x)) return [];
  const o = x as Record<string, unknown>;
  if (ArrayBuffer.isView(o.data) && Array.isArray(o.shape)) return [{ path, kind: 'plain', dtype: (o.data as TypedArray).constructor.name }];
  return Object.entries(o).flatMap(([k, v]) => tensorsOf(v, path ? `${path}.${k}` : k));
}
