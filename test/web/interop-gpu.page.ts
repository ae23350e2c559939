// The page test/web/interop-gpu.test.ts drives (bundled by esbuild there):
// onnxruntime-web on its WebGPU and wasm execution providers, tfjs on its
// webgpu backend, and dsa-ts's GPU backend on their devices. Each check runs
// a hand-over and the CPU path of the same inputs and returns both (float
// bits as uint32, so the test compares them exactly where it should), with
// every GPU-to-CPU read-back during the hand-over (mapAsync, by buffer size).
import * as ort from 'onnxruntime-web/webgpu';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-webgpu';
import { createGpu } from '../../src/webgpu/index.js';
import { topk } from '../../src/topk/topk.js';
import { sparseAttention } from '../../src/attention/sparse.js';
import { indexerScores } from '../../src/indexer/scores.js';
import { rng, normals } from '../../src/cli/demo-data.js';
import { onnxAttr, onnxModel, onnxNode, onnxTensor, onnxValueInfo, OnnxType } from '../../bench/onnx-model.js';

export const SHAPE = { t: 6, s: 80, d: 16, e: 5, k: 8 } as const;
const { t, s, d, e, k } = SHAPE;

ort.env.wasm.wasmPaths = new URL('/ort/', location.href).href;
ort.env.wasm.numThreads = 1;

/** Every mapAsync of the page (ours, ONNX Runtime's, tfjs's): the size of each buffer mapped. */
const reads: number[] = [];
const GPUBufferClass = (globalThis as { GPUBuffer?: { prototype: { mapAsync: (...a: unknown[]) => Promise<void> } } }).GPUBuffer;
if (GPUBufferClass) {
  const mapAsync = GPUBufferClass.prototype.mapAsync;
  GPUBufferClass.prototype.mapAsync = function (this: GPUBuffer, ...a: unknown[]) {
    reads.push(this.size);
    return mapAsync.apply(this, a);
  };
}

const u32 = (a: ArrayLike<number> | Float32Array | Int32Array): number[] =>
  a instanceof Float32Array ? Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length)) : Array.from(a as ArrayLike<number>);

/**
 * x [t, d], keys [s, d], g [t, 1] -> scores [1, t, s] = x keys^T, q = x as
 * [t, 1, d], kv = keys as [s, 1, d] (attention's), and the indexer's
 * inputs: qi = x as [1, t, 1, d], ki = keys as [1, s, d], wi = 2 g as [1, t, 1].
 */
function indexerGraph(): Uint8Array {
  const axis0 = onnxTensor(OnnxType.INT64, [1], BigInt64Array.of(0n), 'axis0');
  const axis1 = onnxTensor(OnnxType.INT64, [1], BigInt64Array.of(1n), 'axis1');
  const axes02 = onnxTensor(OnnxType.INT64, [2], BigInt64Array.of(0n, 2n), 'axes02');
  const two = onnxTensor(OnnxType.FLOAT, [1], Float32Array.of(2), 'two');
  return onnxModel({
    name: 'indexer',
    initializers: [axis0, axis1, axes02, two],
    nodes: [
      onnxNode('Transpose', ['keys'], ['keysT'], [onnxAttr.ints('perm', [1, 0])]),
      onnxNode('MatMul', ['x', 'keysT'], ['scores2']),
      onnxNode('Unsqueeze', ['scores2', 'axis0'], ['scores']),
      onnxNode('Unsqueeze', ['x', 'axis1'], ['q']),
      onnxNode('Unsqueeze', ['keys', 'axis1'], ['kv']),
      onnxNode('Unsqueeze', ['x', 'axes02'], ['qi']),
      onnxNode('Unsqueeze', ['keys', 'axis0'], ['ki']),
      onnxNode('Mul', ['g', 'two'], ['g2']),
      onnxNode('Unsqueeze', ['g2', 'axis0'], ['wi']),
    ],
    inputs: [onnxValueInfo('x', OnnxType.FLOAT, [t, d]), onnxValueInfo('keys', OnnxType.FLOAT, [s, d]), onnxValueInfo('g', OnnxType.FLOAT, [t, 1])],
    outputs: [
      onnxValueInfo('scores', OnnxType.FLOAT, [1, t, s]), onnxValueInfo('q', OnnxType.FLOAT, [t, 1, d]), onnxValueInfo('kv', OnnxType.FLOAT, [s, 1, d]),
      onnxValueInfo('qi', OnnxType.FLOAT, [1, t, 1, d]), onnxValueInfo('ki', OnnxType.FLOAT, [1, s, d]), onnxValueInfo('wi', OnnxType.FLOAT, [1, t, 1]),
    ],
  });
}

/** attention out [t, 1, d] -> y [t, 1, e] = out W (the layer after attention). */
function projectionGraph(): Uint8Array {
  const w = normals(rng(99), d * e);
  return onnxModel({
    name: 'projection',
    initializers: [onnxTensor(OnnxType.FLOAT, [d, e], w, 'w')],
    nodes: [onnxNode('MatMul', ['out', 'w'], ['y'])],
    inputs: [onnxValueInfo('out', OnnxType.FLOAT, [t, 1, d])],
    outputs: [onnxValueInfo('y', OnnxType.FLOAT, [t, 1, e])],
  });
}

const x = normals(rng(1), t * d), keys = normals(rng(2), s * d), g = normals(rng(4), t);
const feeds = () => ({ x: new ort.Tensor('float32', x.slice(), [t, d]), keys: new ort.Tensor('float32', keys.slice(), [s, d]), g: new ort.Tensor('float32', g.slice(), [t, 1]) });

/** The CPU path from the first session's outputs (read to the host): topk, sparseAttention, and the projection on the wasm provider. */
async function cpuPath(scores: Float32Array, q: Float32Array, kv: Float32Array) {
  const top = topk({ data: scores, shape: [1, t, s] }, k);
  const att = sparseAttention({ data: q, shape: [t, 1, d] }, { data: kv, shape: [s, 1, d] }, { data: top.indices.data, shape: [t, 1, k] }, { dV: d });
  const projection = await ort.InferenceSession.create(projectionGraph(), { executionProviders: ['wasm'] });
  const y = (await projection.run({ out: new ort.Tensor('float32', att.out.data, [t, 1, d]) })).y.data as Float32Array;
  await projection.release();
  return { values: u32(top.values.data), indices: u32(top.indices.data), out: Array.from(att.out.data), y: Array.from(y) };
}

/**
 * onnxruntime-web on WebGPU -> topk -> sparseAttention -> onnxruntime-web on
 * WebGPU, every intermediate a GPU buffer of ONNX Runtime's device.
 */
async function ortWebgpu() {
  const indexer = await ort.InferenceSession.create(indexerGraph(), { executionProviders: ['webgpu'], preferredOutputLocation: 'gpu-buffer' });
  const projection = await ort.InferenceSession.create(projectionGraph(), { executionProviders: ['webgpu'] });
  const device = (await ort.env.webgpu.device) as GPUDevice;
  const gpu = await createGpu({ device });
  const first = await indexer.run(feeds());
  const locations = Object.values(first).map((x) => x.location);
  const from = reads.length;
  // nan: 'lowest' ranks a NaN last instead of refusing it, so no row's NaN flag is read back.
  const top = await gpu.topk(first.scores, k, { nan: 'lowest', output: ort, resident: true });
  const indices = ort.Tensor.fromGpuBuffer(top.indices.gpuBuffer, { dataType: 'int32', dims: [t, 1, k] });
  const att = await gpu.sparseAttention(first.q, first.kv, indices, { dV: d, output: ort, resident: true });
  const handOver = reads.slice(from);
  const atProjection = reads.length;
  const y = (await projection.run({ out: att.out })).y;
  const projectionReads = reads.slice(atProjection);
  const resultLocations = [top.values.location, top.indices.location, att.out.location, y.location];
  const sameBuffers = top.indices.gpuBuffer === indices.gpuBuffer;
  // The indexer's q, k and weights straight into the fused top-k.
  const atFused = reads.length;
  const fused = await gpu.indexerTopk(first.qi, first.ki, first.wi, k, { nan: 'lowest', output: ort, resident: true });
  const fusedReads = reads.slice(atFused);
  // The default nan: 'error' must know whether a row held a NaN: one int32 flag a row is read back.
  const atChecked = reads.length;
  const checked = await gpu.topk(first.scores, k, { output: ort, resident: true });
  const checkedReads = reads.slice(atChecked);
  checked.values.dispose();
  checked.indices.dispose();
  // A buffer of ONNX Runtime's device on a backend of another device is refused by name.
  const other = await createGpu();
  const foreign = await other.topk(first.scores, k).then(
    () => 'accepted',
    (err: Error) => `${err.name}: ${err.message}`,
  );
  other.destroy();
  // Afterwards, for the comparison: every intermediate read back.
  const [scores, q, kv] = (await Promise.all([first.scores.getData(), first.q.getData(), first.kv.getData()])) as Float32Array[];
  const [qi, ki, wi] = (await Promise.all([first.qi.getData(), first.ki.getData(), first.wi.getData()])) as Float32Array[];
  const fusedCpu = topk(indexerScores({ data: qi, shape: [1, t, 1, d] }, { data: ki, shape: [1, s, d] }, { data: wi, shape: [1, t, 1] }), k);
  const fusedResult = {
    location: fused.indices.location,
    values: Array.from((await fused.values.getData()) as Float32Array),
    indices: u32((await fused.indices.getData()) as Int32Array),
    cpuValues: Array.from(fusedCpu.values.data),
    cpuIndices: u32(fusedCpu.indices.data),
    reads: fusedReads,
  };
  const got = {
    values: u32((await top.values.getData()) as Float32Array),
    indices: u32((await top.indices.getData()) as Int32Array),
    out: Array.from((await att.out.getData()) as Float32Array),
    y: Array.from(y.data as Float32Array),
  };
  const cpu = await cpuPath(scores, q, kv);
  for (const tensor of [top.values, top.indices, att.out, att.lse, att.maxLogits, fused.values, fused.indices, ...Object.values(first)]) tensor.dispose();
  gpu.destroy();
  await indexer.release();
  await projection.release();
  return { locations, resultLocations, sameBuffers, handOver, checkedReads, projectionReads, got, cpu, indexer: fusedResult, foreign, features: gpu.features, adapter: gpu.adapter };
}

/** onnxruntime-web's wasm provider: its CPU tensors through the GPU ops (uploaded) and back into a second session. */
async function ortWasm() {
  const indexer = await ort.InferenceSession.create(indexerGraph(), { executionProviders: ['wasm'] });
  const projection = await ort.InferenceSession.create(projectionGraph(), { executionProviders: ['wasm'] });
  const gpu = await createGpu();
  const first = await indexer.run(feeds());
  const top = await gpu.topk(first.scores, k, { output: ort });
  const indices = new ort.Tensor('int32', top.indices.data as Int32Array, [t, 1, k]);
  const att = await gpu.sparseAttention(first.q, first.kv, indices, { dV: d, output: ort });
  const y = (await projection.run({ out: att.out })).y;
  const got = { values: u32(top.values.data as Float32Array), indices: u32(top.indices.data as Int32Array), out: Array.from(att.out.data as Float32Array), y: Array.from(y.data as Float32Array) };
  const cpu = await cpuPath(first.scores.data as Float32Array, first.q.data as Float32Array, first.kv.data as Float32Array);
  gpu.destroy();
  await indexer.release();
  await projection.release();
  return { kinds: [top.values.location, att.out.location], got, cpu };
}

/** tfjs on webgpu: dataToGPU() into topk on tfjs's device, results back as tfjs tensors (copied on the GPU), used by tfjs. */
async function tfWebgpu() {
  await tf.setBackend('webgpu');
  await tf.ready();
  // Small ops run on tfjs's CPU by default (WEBGPU_CPU_FORWARD), and dataToGPU() needs the data on the GPU.
  tf.env().set('WEBGPU_CPU_FORWARD', false);
  const device = (tf.backend() as unknown as { device: GPUDevice }).device;
  const gpu = await createGpu({ device });
  const scoresHost = normals(rng(3), t * s);
  const host = tf.tensor(scoresHost, [1, t, s]);
  const scores = tf.mul(host, 1); // computed on the GPU, so its data lives there (x * 1 is exact)
  const onGpu = scores.dataToGPU();
  const from = reads.length;
  const top = await gpu.topk(onGpu as never, k, { output: tf, resident: true });
  const values = top.values as unknown as tf.Tensor, indices = top.indices as unknown as tf.Tensor;
  const doubled = tf.mul(values, 2); // a tfjs op over the result, on tfjs's device
  const handOver = reads.slice(from);
  const got = { values: u32((await values.data()) as Float32Array), indices: u32((await indices.data()) as Int32Array), doubled: Array.from((await doubled.data()) as Float32Array) };
  const want = topk({ data: scoresHost, shape: [1, t, s] }, k);
  // tfjs-webgpu keeps bool as 4 bytes an element: no bool-form mask, refused by name.
  const boolMask = tf.greater(scores, -Infinity); // a bool tensor on the GPU
  const boolOnGpu = boolMask.dataToGPU();
  const bool = await gpu.topk({ data: scoresHost, shape: [1, t, s] }, k, { mask: boolOnGpu as never }).then(() => 'accepted', (err: Error) => `${err.name}: ${err.message}`);
  tf.dispose([boolMask, boolOnGpu.tensorRef]);
  onGpu.tensorRef.dispose();
  tf.dispose([host, scores, values, indices, doubled]);
  gpu.destroy();
  return { backend: tf.getBackend(), handOver, got, cpu: { values: u32(want.values.data), indices: u32(want.indices.data) }, bool };
}

/** Each check's result, or the error it threw (name, message, stack) so the test can say exactly what did not run. */
async function run<T>(f: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: string }> {
  try {
    return { ok: true, value: await f() };
  } catch (err) {
    const x = err as Error;
    return { ok: false, error: `${x?.name}: ${x?.message}` };
  }
}

Object.assign(window, {
  interopGpu: {
    ortWebgpu: () => run(ortWebgpu),
    ortWasm: () => run(ortWasm),
    tfWebgpu: () => run(tfWebgpu),
    shape: SHAPE,
  },
});
document.body.dataset.ready = 'yes';
