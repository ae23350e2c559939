// tfjs on its wasm backend: dataSync() copies out of the WebAssembly heap
// (so an input costs one copy there), and results given to tf.tensor are
// copied into the heap; the values are the cpu path's, bit for bit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { fromEcosystem } from '../../src/interop/ecosystem.js';
import { topk } from '../../src/interop/index.js';
import { topk as topkPlain } from '../../src/topk/topk.js';
import { assertSameBits, floats } from './runtimes.js';

await tf.setBackend('wasm');

test('tfjs wasm backend: each dataSync is a fresh copy; topk in and out equals the plain path', () => {
  assert.equal(tf.getBackend(), 'wasm');
  const scores = floats([2, 3, 50], 1);
  const t = tf.tensor(scores.data, scores.shape);
  const a = fromEcosystem(t, 'scores', 'float32');
  assert.notEqual(a.data, scores.data, 'the wasm backend keeps its own copy');
  assert.notEqual(a.data, fromEcosystem(t, 'scores', 'float32').data, 'and dataSync copies on every call');
  assert.deepEqual(a.data, scores.data);
  const got = topk(t, 5, { output: tf });
  assert.equal(got.indices.dtype, 'int32');
  assertSameBits(got, topkPlain(scores, 5));
  tf.dispose([t, got.values, got.indices]);
});
