// A tiny ONNX Runtime session's outputs go straight into topk and
// sparseAttention and their results straight into a second session, equal
// to the { data, shape } path bit for bit; the graph's own TopK (int64
// indices) feeds sparseAttention as well.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { onnxAttr, onnxModel, onnxNode, onnxTensor, onnxValueInfo, OnnxType } from '../../bench/onnx-model.js';
import { topk as topkPlain } from '../../src/topk/topk.js';
import { sparseAttention as sparseAttentionPlain } from '../../src/attention/sparse.js';
import { sparseAttention, topk } from '../../src/interop/index.js';
import { createPool } from '../../src/pool/index.js';
import { assertSameBits, floats } from './runtimes.js';

const [t, s, d, e, k] = [5, 40, 8, 6, 7];

/** x [t, d], keys [s, d] -> scores [1, t, s] = x keys^T, q [t, 1, d], kv [s, 1, d], and the graph's own TopK indices [t, 1, k] (int64). */
function indexerGraph(): Uint8Array {
  const axis0 = onnxTensor(OnnxType.INT64, [1], BigInt64Array.of(0n), 'axis0');
  const axis1 = onnxTensor(OnnxType.INT64, [1], BigInt64Array.of(1n), 'axis1');
  const kk = onnxTensor(OnnxType.INT64, [1], BigInt64Array.of(BigInt(k)), 'k');
  return onnxModel({
    name: 'indexer',
    initializers: [axis0, axis1, kk],
    nodes: [
      onnxNode('Transpose', ['keys'], ['keysT'], [onnxAttr.ints('perm', [1, 0])]),
      onnxNode('MatMul', ['x', 'keysT'], ['scores2']),
      onnxNode('Unsqueeze', ['scores2', 'axis0'], ['scores']),
      onnxNode('Unsqueeze', ['x', 'axis1'], ['q']),
      onnxNode('Unsqueeze', ['keys', 'axis1'], ['kv']),
      onnxNode('TopK', ['scores2', 'k'], ['topValues', 'topIndices2'], [onnxAttr.int('axis', 1)]),
      onnxNode('Unsqueeze', ['topIndices2', 'axis1'], ['topIndices']),
    ],
    inputs: [onnxValueInfo('x', OnnxType.FLOAT, [t, d]), onnxValueInfo('keys', OnnxType.FLOAT, [s, d])],
    outputs: [
      onnxValueInfo('scores', OnnxType.FLOAT, [1, t, s]),
      onnxValueInfo('q', OnnxType.FLOAT, [t, 1, d]),
      onnxValueInfo('kv', OnnxType.FLOAT, [s, 1, d]),
      onnxValueInfo('topIndices', OnnxType.INT64, [t, 1, k]),
    ],
  });
}

/** attention out [t, 1, d] -> y [t, 1, e] = out W (the layer after attention). */
function projectionGraph(): Uint8Array {
  const w = floats([d, e], 99);
  return onnxModel({
    name: 'projection',
    initializers: [onnxTensor(OnnxType.FLOAT, [d, e], w.data, 'w')],
    nodes: [onnxNode('MatMul', ['out', 'w'], ['y'])],
    inputs: [onnxValueInfo('out', OnnxType.FLOAT, [t, 1, d])],
    outputs: [onnxValueInfo('y', OnnxType.FLOAT, [t, 1, e])],
  });
}

const indexer = await ort.InferenceSession.create(indexerGraph());
const projection = await ort.InferenceSession.create(projectionGraph());
const x = floats([t, d], 1), keys = floats([s, d], 2);
const first = await indexer.run({ x: new ort.Tensor('float32', x.data, x.shape), keys: new ort.Tensor('float32', keys.data, keys.shape) });

/** The plain path: the session's outputs copied into { data, shape }, the plain functions, then the second session. */
async function plainPath() {
  const copy = (o: ort.Tensor) => ({ data: Float32Array.from(o.data as Float32Array), shape: Array.from(o.dims) });
  const top = topkPlain(copy(first.scores), k);
  const indices = { data: top.indices.data, shape: [t, 1, k] };
  const attention = sparseAttentionPlain(copy(first.q), copy(first.kv), indices);
  const { y } = await projection.run({ out: new ort.Tensor('float32', attention.out.data, attention.out.shape) });
  return { top, attention, y };
}

test(`session outputs -> topk -> sparseAttention -> session, t=${t} s=${s} d=${d} k=${k}: equal to the plain path`, async () => {
  const want = await plainPath();
  const top = topk(first.scores, k, { output: ort });
  assert.ok(top.indices instanceof ort.Tensor && top.indices.type === 'int32');
  assertSameBits(top, want.top, 'topk');
  // [1, t, k] -> [t, 1, k]: a new ort.Tensor over the same Int32Array, no copy.
  const indices = new ort.Tensor('int32', top.indices.data, [t, 1, k]);
  const attention = sparseAttention(first.q, first.kv, indices, { output: ort });
  assertSameBits(attention, want.attention, 'sparseAttention');
  const { y } = await projection.run({ out: attention.out });
  assertSameBits(y, want.y, 'the second session\'s output');
});

test('the graph\'s own TopK (int64 indices, distinct scores) selects what topk does and feeds sparseAttention', async () => {
  const want = await plainPath();
  const graphIndices = first.topIndices;
  assert.equal(graphIndices.type, 'int64');
  assert.deepEqual(Array.from(graphIndices.data as BigInt64Array, Number), Array.from(want.top.indices.data));
  assertSameBits(sparseAttention(first.q, first.kv, graphIndices), want.attention);
});

test('pool results (shared memory) go into a session as ort tensors', async () => {
  const want = await plainPath();
  const pool = createPool({ threads: 2 });
  try {
    const top = await pool.topk(first.scores, k, { output: ort });
    // Over the pool's shared result itself, except on Node 20, whose onnxruntime-node binding refuses shared memory (a copy there).
    const node20 = Number(process.versions.node.split('.')[0]) < 22;
    assert.equal((top.values.data as Float32Array).buffer instanceof SharedArrayBuffer, !node20, `shared result on Node ${process.versions.node}`);
    const attention = await pool.sparseAttention(first.q, first.kv, new ort.Tensor('int32', top.indices.data, [t, 1, k]), { output: ort });
    assertSameBits(attention, want.attention, 'pool sparseAttention');
    const { y } = await projection.run({ out: attention.out });
    assertSameBits(y, want.y, 'the session over shared memory');
  } finally {
    await pool.close();
  }
});
