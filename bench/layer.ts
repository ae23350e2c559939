// Layer benchmark: one DeepSeek-V3.2 DSA attention layer's decode step from
// hidden states (src/model/mla.ts: MLA projections, RMSNorms, RoPE, the
// indexer, top-k, sparse attention over the latent cache, the absorbed
// wkv_b, wo), b = 1, s past tokens (default s in {8192, 32768, 131072}),
// 1 thread and 2, with FP8 block-scaled weights (quantizeWeightFp8, as the
// checkpoint stores them) and an int8 indexer cache (int7 queries). In the
// same run, round by round, one after another:
//
//   floor            the bytes the step must read (FP8 codes and scales, the
//                    int8 key cache, the topK selected kv rows) streamed once
//                    (bench/layer-floor.ts: memchr over the bytes), 1 thread
//                    and 2 on a pool; a 2-thread contender is held to the
//                    faster of the two (2 threads can always stream as 1 does)
//   dsa full         mlaDecodeStep, FP8 weights read gemmImpl 'bf16' and 'fp8' (--gemm)
//   dsa shared       the same layer as GLM-5's 'shared' kind: no indexer,
//                    the full layer's top-k of the same step given as indices
//   onnxruntime f32  the whole layer as one ONNX graph (bench/layer-onnx.ts),
//                    float32 weights (the FP8 weights' values), float32 cache
//   onnxruntime 8b   the same graph with 8-bit linear weights (MatMulNBits
//                    bits 8 block 128, or --linear8 DynamicQuantizeMatMul) and
//                    the int8 key cache (--ort8-cache float32 for float32 keys)
//
// Each step decodes token s: the new row is written at slot s and the
// cache's page table restored after the step (its snapshot of the filled
// cache: lengths and free pages), so every step of every contender sees the
// same s past tokens, as the onnxruntime graphs (whose cache is an input) do.
//
// Checked once per case before timing: the pool's step bit-identical to one
// thread (full and shared); each onnxruntime graph's top-k the top-k of its
// own scores; onnxruntime float32's top-k against the layer on a float32-key
// cache (recall >= 0.99) and its output against the layer given the same
// top-k (within 1e-4 of max |out|); the 8-bit graph's output against the
// layer given its top-k (within 8e-2 of max |out|: 8-bit weights and
// activations; 3.7e-2 measured at DeepSeek-V3.2's shapes).
// Reports medians, ratios, the recall of each selection against the float32
// selection, resident weight bytes against the checkpoint's, bytes
// allocated per step (the change of this thread's ArrayBuffer bytes across
// the step after a collection: V8 frees earlier buffers concurrently, so a
// median can come out below zero), peak RSS, and where the layer's time
// goes (one step on this thread with each kernel timed).
//
//   npx tsx bench/layer.ts [--smoke] [--reps 7] [--s 8192,32768,131072] [--gemm bf16,fp8]
//                          [--linear8 MatMulNBits|DynamicQuantizeMatMul] [--ort8-cache int8|float32]
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { loadavg } from 'node:os';
import * as ort from 'onnxruntime-node';
import { createDsaCache, type DsaCache } from '../src/cache/cache.js';
import type { QuantizedKeys } from '../src/indexer/quantized-keys.js';
import { mlaDecodeStep, mlaKernels, mlaRopeFrequencies, mlaScale, planMlaDecodeStep, type MlaLayer, type MlaStepOptions, type MlaStepResult } from '../src/model/mla.js';
import { mlaPoolApi, shareMlaWeights } from '../src/model/pooled.js';
import { layerWeightBytes } from '../src/model/checkpoint.js';
import type { MlaConfig, MlaLayerWeights } from '../src/model/types.js';
import { dequantizeWeight, quantizeWeightFp8, weightBytes, type Weight } from '../src/weights/weight.js';
import type { GemmImpl } from '../src/weights/linear.js';
import { createPool } from '../src/pool/index.js';
import { createWorkerPool } from '../src/pool/pool.js';
import { planRunner } from '../src/pool/runner.js';
import { createStaging } from '../src/pool/staging.js';
import { runPlan, type KernelArgs, type KernelTable } from '../src/plan.js';
import { allocLocal, allocShared, type Tensor } from '../src/tensor.js';
import { normals } from '../src/cli/demo-data.js';
import { simdBuild } from '../src/simd/index.js';
import { topk } from '../src/topk/topk.js';
import { kernels as registryKernels, SCAN_ROW, scanRows } from './layer-floor.js';
import { int8WeightBytes, layerModel, type LayerShape, type Linear8 } from './layer-onnx.js';
import { bitIdentical, checkClose, flag, machine, median, option, peakRssMiB, quietly, rng, writeResults } from './common.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const smoke = flag('smoke');
const config: MlaConfig = smoke
  ? {
      dim: 128, nHeads: 4, qLoraRank: 64, kvLoraRank: 32, qkNopeHeadDim: 16, qkRopeHeadDim: 8, vHeadDim: 16,
      indexNHeads: 4, indexHeadDim: 32, indexTopk: 16, normEps: 1e-6, ropeTheta: 10000,
      rope: { factor: 40, originalSeqLen: 64, betaFast: 32, betaSlow: 1, mscale: 1, mscaleAllDim: 1 }, nLayers: 1,
    }
  : {
      // DeepSeek-V3.2's config.json (YaRN on).
      dim: 7168, nHeads: 128, qLoraRank: 1536, kvLoraRank: 512, qkNopeHeadDim: 128, qkRopeHeadDim: 64, vHeadDim: 128,
      indexNHeads: 64, indexHeadDim: 128, indexTopk: 2048, normEps: 1e-6, ropeTheta: 10000,
      rope: { factor: 40, originalSeqLen: 4096, betaFast: 32, betaSlow: 1, mscale: 1, mscaleAllDim: 1 }, nLayers: 1,
    };
const { dim, nHeads: H, qLoraRank: qRank, kvLoraRank: kvRank, qkNopeHeadDim: nope, qkRopeHeadDim: rope, vHeadDim: vDim, indexNHeads: h, indexHeadDim: d, indexTopk: topK } = config;
const dqk = kvRank + rope;
const lengths = (option('s') ?? (smoke ? '64,256' : '8192,32768,131072')).split(',').map(Number);
const reps = Number(option('reps') ?? (smoke ? 2 : 7));
const warmup = smoke ? 1 : 2;
const gemms = (option('gemm') ?? 'bf16,fp8').split(',') as GemmImpl[];
let linear8 = (option('linear8') ?? 'MatMulNBits') as Linear8;
const ort8Cache = (option('ort8-cache') ?? 'int8') as 'int8' | 'float32';
/** onnxruntime's intra-op spinning ('1' its default; '0' its workers sleep between ops). */
const ortSpin = option('ort-spin') ?? '1';
for (const s of lengths) if (!Number.isInteger(s) || s < topK) throw new RangeError(`--s: expected lengths of at least topK = ${topK}, got ${s}`);
for (const g of gemms) if (g !== 'bf16' && g !== 'fp8') throw new RangeError(`--gemm: expected bf16 and/or fp8, got ${g}`);
if (linear8 !== 'MatMulNBits' && linear8 !== 'DynamicQuantizeMatMul') throw new RangeError(`--linear8: expected MatMulNBits or DynamicQuantizeMatMul, got ${linear8}`);
if (ort8Cache !== 'int8' && ort8Cache !== 'float32') throw new RangeError(`--ort8-cache: expected int8 or float32, got ${ort8Cache}`);
const load0 = loadavg()[0];

// ---- the layer's weights, once, seeded: FP8 as a checkpoint stores them ----
let seed = 1;
const fp8 = (out: number, inDim: number): Weight => quantizeWeightFp8({ data: normals(rng(seed++), out * inDim, inDim ** -0.5), shape: [out, inDim] });
const vector = (n: number, center: number, spread: number) => normals(rng(seed++), n, spread).map((x) => center + x);

gc();
const buffersBefore = process.memoryUsage().arrayBuffers;
const built = performance.now();
const weights: MlaLayerWeights = shareMlaWeights({
  wqA: fp8(qRank, dim), qNorm: vector(qRank, 1, 0.1), wqB: fp8(H * (nope + rope), qRank), wkvA: fp8(dqk, dim), kvNorm: vector(kvRank, 1, 0.1),
  wkvB: fp8(H * (nope + vDim), kvRank), wo: fp8(dim, H * vDim),
  indexer: { wqB: fp8(h * d, qRank), wk: fp8(d, dim), kNormWeight: vector(d, 1, 0.1), kNormBias: vector(d, 0, 0.1), weightsProj: fp8(h, dim) },
});
const layer: MlaLayer = { config, weights };
/** The same weights as a GLM-5 'shared' layer: no indexer, top-k given. */
const sharedLayer: MlaLayer = { config, weights: { ...weights, indexer: undefined } };
const buildMs = performance.now() - built;
const checkpointBytes = layerWeightBytes(weights);
const linearWeights = (w: MlaLayerWeights): Weight[] => [w.wqA, w.wqB, w.wkvA, w.wkvB, w.wo, w.indexer!.wqB, w.indexer!.wk, w.indexer!.weightsProj];
const fp8Bytes = linearWeights(weights).reduce((a, w) => a + weightBytes(w), 0);
const f32Bytes = linearWeights(weights).reduce((a, w) => a + w.shape[0] * w.shape[1] * 4, 0);

/** Seeded normals in shared memory (the pool reads them in place). */
function sharedNormals(n: number, s: number): Float32Array {
  const a = allocShared(Float32Array, n);
  a.set(normals(rng(s), n));
  return a;
}

/**
 * Resident weight bytes: the ArrayBuffer bytes alive after the weights were
 * built and a first step ran (the layer's per-weights copies included),
 * after a collection, the probe cache's own buffers taken out; `extra` is
 * what that holds beyond the weights' own bytes.
 */
function residentWeights(): { resident: number; extra: number } {
  const probe = createDsaCache({ batch: 1, capacity: topK + 1, keyForm: 'int8', precision: 'int7', indexerDim: d, kvDim: dqk });
  for (let p = 0; p < topK; p += 1024) {
    const n = Math.min(1024, topK - p);
    probe.append(0, { keys: { data: normals(rng(7 + p), n * d), shape: [n, d] }, kv: { data: normals(rng(8 + p), n * dqk), shape: [n, 1, dqk] } });
  }
  const keys = probe.keys as QuantizedKeys;
  const probeBytes = probe.kv.data.byteLength + keys.values.data.byteLength + keys.scales.data.byteLength + probe.lengths.byteLength + probe.blockTable.data.byteLength;
  const filled = probe.pageTable.snapshot();
  for (const gemmImpl of gemms) {
    mlaDecodeStep(probe, layer, { x: { data: sharedNormals(dim, 9), shape: [1, 1, dim] } }, { gemmImpl });
    probe.pageTable.restore(filled);
  }
  gc();
  gc();
  const resident = process.memoryUsage().arrayBuffers - buffersBefore - probeBytes;
  return { resident, extra: resident - checkpointBytes };
}
const { resident: residentBytes, extra: residentExtra } = residentWeights();

// ---- the pools: the layer on 2 workers, and the read floor ----
const libraryPool = createPool({ threads: 2 }) as ReturnType<typeof createPool> & Partial<ReturnType<typeof mlaPoolApi>>;
const registryPool = createWorkerPool({ threads: 2, registry: new URL('./layer-floor.ts', import.meta.url), setup: simdBuild() });
const poolPath = typeof libraryPool.mlaDecodeStep === 'function' ? 'createPool({ threads: 2 }).mlaDecodeStep' : 'mlaPoolApi (src/model/pooled.ts) on a 2-worker pool of the library\'s kernels and src/model\'s';
const poolStep: (cache: DsaCache, layer: MlaLayer, inputs: { x: Tensor<Float32Array> }, opts: MlaStepOptions) => Promise<MlaStepResult> =
  typeof libraryPool.mlaDecodeStep === 'function'
    ? libraryPool.mlaDecodeStep
    : mlaPoolApi(planRunner(registryPool, registryKernels as unknown as KernelTable, createStaging())).mlaDecodeStep;

// ---- onnxruntime-node: the float32 graph and the 8-bit one, 1 and 2 intra-op threads ----
const shape: LayerShape = { dim, qRank, kvRank, heads: H, nope, rope, v: vDim, h, d, topK, smScale: mlaScale(config), eps: config.normEps };
const vectors = { qNorm: weights.qNorm.slice(), kvNorm: weights.kvNorm.slice(), kNormWeight: weights.indexer!.kNormWeight.slice(), kNormBias: weights.indexer!.kNormBias.slice() };
/** The float32 values linear reads an FP8 weight as (gemmImpl 'bf16'): f32(e4m3 * scale) rounded to bf16. */
function valuesOf(w: Weight): Float32Array {
  const v = dequantizeWeight(w);
  const u = new Uint32Array(v.buffer);
  for (let i = 0; i < u.length; i++) u[i] = ((u[i] + 0x7fff + ((u[i] >>> 16) & 1)) & 0xffff0000) >>> 0;
  return v;
}
const byName = { wqA: weights.wqA, wqB: weights.wqB, wkvA: weights.wkvA, wkvB: weights.wkvB, wo: weights.wo, ixWqB: weights.indexer!.wqB, ixWk: weights.indexer!.wk, ixWp: weights.indexer!.weightsProj };
const sessionOptions = (threads: number): ort.InferenceSession.SessionOptions => ({
  intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
  extra: { session: { intra_op: { allow_spinning: ortSpin } } },
});
async function sessions(form: 'float32' | 'int8', cache: 'float32' | 'int8'): Promise<ort.InferenceSession[]> {
  const bytes = layerModel(shape, (name) => valuesOf(byName[name]), vectors, { weights: form, cache, linear8 });
  const out = [];
  for (const threads of [1, 2]) out.push(await quietly(() => ort.InferenceSession.create(bytes, sessionOptions(threads))));
  return out;
}
const rssNow = () => Math.round(process.memoryUsage().rss / 2 ** 20);
const rssBeforeOrt = rssNow();
const ortF32 = await sessions('float32', 'float32');
const rssOrtF32 = rssNow();
let ort8: ort.InferenceSession[];
try {
  ort8 = await sessions('int8', ort8Cache);
} catch (e) {
  if (linear8 !== 'MatMulNBits') throw e;
  console.warn(`MatMulNBits refused (${(e as Error).message.split('\n')[0]}); DynamicQuantizeMatMul instead`);
  linear8 = 'DynamicQuantizeMatMul';
  ort8 = await sessions('int8', ort8Cache);
}
const rssOrt8 = rssNow();
const ort8Bytes = linearWeights(weights).reduce((a, w) => a + int8WeightBytes(w.shape[0], w.shape[1], linear8), 0);

// ---- the floor's bytes: the largest case's, filled (untouched pages would read as one zero page) ----
const floorBytesOf = (s: number) => fp8Bytes + s * (d + 4) + topK * dqk * 4;
const scanLength = floorBytesOf(Math.max(...lengths));
const scanBytes = allocShared(Uint8Array, scanLength).fill(2);
const scanFound = allocShared(Int32Array, Math.ceil(scanLength / SCAN_ROW));

interface Row {
  s: number; contender: string; threads: number; medianMs: number; minMs: number; timesMs: number[];
  /** Median bytes of ArrayBuffers a step allocated, and of JS heap garbage; this thread only. */
  allocatedBytes?: number; heapBytes?: number;
  /** |top-k ∩ the float32 selection| / topK, the float32 selection being the layer's on a float32-key cache. */
  recall?: number;
  /** Bytes the contender's step must read (its weights in their form, its keys, the selected rows), and those at the floor's bandwidth. */
  bytes?: number; floorMs?: number;
}
const rows: Row[] = [];
const checks: Record<string, unknown>[] = [];
const breakdowns: Record<string, unknown>[] = [];
let sink = 0;

/** Fills a cache's one sequence with `s` seeded tokens (indexer keys as after LayerNorm: unit normals; latent rows). */
function fill(cache: DsaCache, s: number): void {
  const chunk = 4096;
  for (let p = 0; p < s; p += chunk) {
    const n = Math.min(chunk, s - p);
    cache.append(0, { keys: { data: normals(rng(50_000 + p / chunk), n * d), shape: [n, d] }, kv: { data: normals(rng(90_000 + p / chunk), n * dqk), shape: [n, 1, dqk] } });
  }
}

/** Max |a - b| over max |b| (a report, not a check: the selections differ). */
function relErr(a: Float32Array, b: Float32Array): number {
  let err = 0, scale = 0;
  for (let i = 0; i < b.length; i++) (err = Math.max(err, Math.abs(a[i] - b[i]))), (scale = Math.max(scale, Math.abs(b[i])));
  return err / scale;
}

const recallOf = (got: ArrayLike<number | bigint>, want: ArrayLike<number | bigint>): number => {
  const set = new Set(Array.from(want, Number).filter((j) => j >= 0));
  return Array.from(got, Number).filter((j) => j >= 0 && set.has(j)).length / set.size;
};

const freqs = mlaRopeFrequencies(config);
/** cos and sin of each RoPE pair at `position`, as the library rounds them: f32(position * freq), then cos and sin in float32. */
function rotation(position: number): { cos: Float32Array; sin: Float32Array } {
  const cos = new Float32Array(rope / 2), sin = new Float32Array(rope / 2);
  for (let i = 0; i < rope / 2; i++) {
    const a = Math.fround(position * freqs[i]);
    cos[i] = Math.cos(a);
    sin[i] = Math.sin(a);
  }
  return { cos, sin };
}

for (const s of lengths) {
  const A = createDsaCache({ batch: 1, capacity: s + 1, keyForm: 'int8', precision: 'int7', indexerDim: d, kvDim: dqk });
  const B = createDsaCache({ batch: 1, capacity: s + 1, keyForm: 'float32', indexerDim: d, kvDim: dqk });
  fill(A, s);
  fill(B, s);
  // After a step the page table is put back as it was filled (its lengths and free pages): the new token's row stays at slot s, unseen, and the next step rewrites it.
  const filled = new Map([A, B].map((c) => [c, c.pageTable.snapshot()]));
  const back = (c: DsaCache) => c.pageTable.restore(filled.get(c)!);
  // onnxruntime's cache: plain (not shared) copies of the same tokens, contiguous by position.
  const kvArray = B.kv.data.slice(0, s * dqk);
  const { cos, sin } = rotation(s);
  const fixed: Record<string, ort.Tensor> = {
    kv: new ort.Tensor('float32', kvArray, [s, dqk]),
    cos: new ort.Tensor('float32', cos, [rope / 2]),
    sin: new ort.Tensor('float32', sin, [rope / 2]),
  };
  const keysF32 = new ort.Tensor('float32', (B.keys as Tensor<Float32Array>).data.slice(0, s * d), [s, d]);
  const q8 = A.keys as QuantizedKeys;
  if (q8.scales.shape[2] !== 1) throw new Error('the int8 cache holds one scale per token at indexerDim <= 128');
  const keysT = new Int8Array(d * s);
  for (let p = 0; p < s; p++) for (let j = 0; j < d; j++) keysT[j * s + p] = q8.values.data[p * d + j];
  const keysI8 = { keysT: new ort.Tensor('int8', keysT, [d, s]), keyScales: new ort.Tensor('float32', q8.scales.data.slice(0, s), [s]) };
  const feedsF32 = (x: Float32Array) => ({ ...fixed, keys: keysF32, x: new ort.Tensor('float32', x.slice(), [1, dim]) });
  const feeds8 = (x: Float32Array) => ({ ...fixed, ...(ort8Cache === 'int8' ? keysI8 : { keys: keysF32 }), x: new ort.Tensor('float32', x.slice(), [1, dim]) });

  const inputs = Array.from({ length: 1 + warmup + reps * 2 }, (_, i) => ({ data: sharedNormals(dim, 1000 + i), shape: [1, 1, dim] }));
  const ours = (gemmImpl: GemmImpl, threads: number, cache: DsaCache, x: Tensor<Float32Array>, indices?: Tensor<Int32Array>) => {
    const opts: MlaStepOptions = indices === undefined ? { gemmImpl } : { gemmImpl, indices };
    const lay = indices === undefined ? layer : sharedLayer;
    return threads === 1 ? Promise.resolve(mlaDecodeStep(cache, lay, { x }, opts)) : poolStep(cache, lay, { x }, opts);
  };

  // ---- checks, on the first input ----
  const x0 = inputs[0];
  const check: Record<string, unknown> = { s, loadAverageAtStart: loadavg()[0] };
  const refStep = await ours('bf16', 1, B, x0);
  back(B);
  const refTop = refStep.indices.data;
  for (const gemmImpl of gemms) {
    const one = await ours(gemmImpl, 1, A, x0);
    back(A);
    const two = await ours(gemmImpl, 2, A, x0);
    back(A);
    bitIdentical(`s=${s} dsa full gemm ${gemmImpl}: the pool's step and one thread's`, two.out.data, one.out.data);
    const shOne = await ours(gemmImpl, 1, B, x0, one.indices);
    back(B);
    const shTwo = await ours(gemmImpl, 2, B, x0, one.indices);
    back(B);
    bitIdentical(`s=${s} dsa shared gemm ${gemmImpl}: the pool's step and one thread's`, shTwo.out.data, shOne.out.data);
    check[`dsa ${gemmImpl} recall`] = recallOf(one.indices.data, refTop);
    check[`dsa ${gemmImpl} out vs float32-key layer (rel)`] = relErr(one.out.data, refStep.out.data);
  }
  const ortChecks = [
    { name: 'onnxruntime f32', session: ortF32[1], feeds: feedsF32, tol: 1e-4, minRecall: 0.99 },
    { name: 'onnxruntime 8b', session: ort8[1], feeds: feeds8, tol: 8e-2, minRecall: 0 },
  ];
  const recalls = new Map<string, number>();
  for (const c of ortChecks) {
    const r = await c.session.run(c.feeds(x0.data));
    const out = r.out.data as Float32Array, top = r.top.data as BigInt64Array, scores = r.scores.data as Float32Array;
    // Its top-k is the top-k of its own scores (the same set, ties aside).
    const own = topk({ data: scores, shape: [1, 1, s + 1] }, topK).indices.data;
    const self = recallOf(top, own);
    if (self < 0.999) throw new Error(`s=${s} ${c.name}: its TopK and topk of its scores share only ${self}`);
    const recall = recallOf(top, refTop);
    if (recall < c.minRecall) throw new Error(`s=${s} ${c.name}: its top-k shares ${recall} with the layer's on float32 keys (expected >= ${c.minRecall})`);
    recalls.set(c.name, recall);
    const given = await ours('bf16', 1, B, x0, { data: Int32Array.from(top, Number), shape: [1, 1, topK] });
    back(B);
    check[`${c.name} recall`] = recall;
    check[`${c.name} out vs dsa given its top-k (rel)`] = checkClose(`s=${s} ${c.name}`, out, given.out.data, dim, c.tol, `out differs from mlaDecodeStep given the same top-k beyond ${c.tol}`, 'out');
  }
  checks.push(check);
  console.log(`s=${s} checks: ${Object.entries(check).filter(([k]) => k !== 's' && k !== 'loadAverageAtStart').map(([k, v]) => `${k} ${(v as number).toPrecision(3)}`).join(', ')}`);

  // ---- timing: every contender each round, the order turning round by round ----
  const floorRows = Math.ceil(floorBytesOf(s) / SCAN_ROW);
  const floorArgs = { bytes: scanBytes, found: scanFound, length: floorBytesOf(s) };
  const times = new Map<string, number[]>();
  const allocated = new Map<string, number[]>();
  const heap = new Map<string, number[]>();
  let lastIndices: Tensor<Int32Array> | null = null;
  type Contender = { key: string; run: (x: Tensor<Float32Array>) => Promise<unknown>; measure: boolean };
  const contenders = (threads: number): Contender[] => [
    { key: `floor ${threads}`, measure: false, run: async () => (threads === 1 ? scanRows(floorArgs, 0, floorRows) : await registryPool.runRows('bench.scan', floorArgs, 0, floorRows)) },
    ...gemms.flatMap((g): Contender[] => [
      {
        key: `full ${g} ${threads}`, measure: true,
        run: async (x) => {
          const r = await ours(g, threads, A, x);
          back(A);
          if (g === gemms[0]) lastIndices = r.indices;
          sink += r.out.data[0];
        },
      },
      {
        key: `shared ${g} ${threads}`, measure: true,
        run: async (x) => {
          const r = await ours(g, threads, B, x, lastIndices!);
          back(B);
          sink += r.out.data[0];
        },
      },
    ]),
    { key: `ort f32 ${threads}`, measure: false, run: async (x) => (sink += ((await ortF32[threads - 1].run(feedsF32(x.data), ['out'])).out.data as Float32Array)[0]) },
    { key: `ort 8b ${threads}`, measure: false, run: async (x) => (sink += ((await ort8[threads - 1].run(feeds8(x.data), ['out'])).out.data as Float32Array)[0]) },
  ];
  const timed = async (c: Contender, x: Tensor<Float32Array>) => {
    if (c.measure) gc();
    const before = process.memoryUsage();
    const t0 = performance.now();
    await c.run(x);
    const ms = performance.now() - t0;
    const after = process.memoryUsage();
    if (!times.has(c.key)) times.set(c.key, []);
    times.get(c.key)!.push(ms);
    if (c.measure) {
      if (!allocated.has(c.key)) (allocated.set(c.key, []), heap.set(c.key, []));
      allocated.get(c.key)!.push(after.arrayBuffers - before.arrayBuffers);
      heap.get(c.key)!.push(after.heapUsed - before.heapUsed);
    }
  };
  for (let i = 0; i < warmup; i++) for (const threads of [1, 2]) for (const c of contenders(threads)) await c.run(inputs[1 + i]);
  for (let round = 0; round < reps; round++) {
    for (const threads of [1, 2]) {
      const x = inputs[1 + warmup + 2 * round + threads - 1];
      const list = contenders(threads);
      // The shared step takes the full step's indices of the same input: the full one runs first; the rest turn.
      const turn = round % list.length;
      const order = [...list.slice(turn), ...list.slice(0, turn)];
      for (const c of order.filter((c) => c.key.startsWith('full'))) await timed(c, x);
      for (const c of order.filter((c) => !c.key.startsWith('full'))) await timed(c, x);
    }
  }

  for (const c of [A, B]) if (c.length(0) !== s) throw new Error(`s=${s}: a cache holds ${c.length(0)} tokens after the rounds, expected ${s} (the page table not restored)`);

  // ---- where the time goes: one full step and one shared step on this thread, each kernel timed ----
  for (const kind of ['full', 'shared'] as const) {
    const spent = new Map<string, number>();
    const table: KernelTable = Object.fromEntries(Object.entries(mlaKernels).map(([name, k]) => [name, (args: KernelArgs, r0: number, r1: number) => {
      const t0 = performance.now();
      k(args, r0, r1);
      spent.set(name, (spent.get(name) ?? 0) + performance.now() - t0);
    }]));
    const cache = kind === 'full' ? A : B;
    const x = inputs[inputs.length - 1];
    const opts: MlaStepOptions = kind === 'full' ? { gemmImpl: gemms[0] } : { gemmImpl: gemms[0], indices: lastIndices! };
    cache.acquire();
    const t0 = performance.now();
    try {
      runPlan(planMlaDecodeStep(cache, kind === 'full' ? layer : sharedLayer, { x }, opts, allocLocal), table);
    } finally {
      cache.release();
    }
    const total = performance.now() - t0;
    back(cache);
    const sum = (names: (n: string) => boolean) => [...spent].filter(([n]) => names(n)).reduce((a, [, t]) => a + t, 0);
    const parts = {
      projections: sum((n) => n.startsWith('weights.')),
      'absorbed wkv_b': sum((n) => n === 'model.absorbQuery' || n === 'model.valueUp'),
      'norms, RoPE, indexer q/k prep': sum((n) => n === 'model.rope' || n === 'model.rmsNorm' || n === 'indexer.projections' || n === 'indexer.prepare'),
      scores: sum((n) => n.startsWith('indexer.scores') || n === 'indexer.fillOutside' || n.startsWith('indexer.fp8')),
      'top-k': sum((n) => n.startsWith('topk')),
      attention: sum((n) => n.startsWith('attention.')),
      'cache append, slots': sum((n) => n.startsWith('cache.')),
    };
    const other = total - Object.values(parts).reduce((a, b) => a + b, 0);
    breakdowns.push({ s, kind, threads: 1, totalMs: total, ms: { ...parts, 'plan, validation, the rest': other }, kernels: Object.fromEntries(spent) });
    console.log(`s=${s} dsa ${kind} 1t, where the time goes: ${Object.entries(parts).filter(([, t]) => t > 0).map(([k, t]) => `${k} ${t.toFixed(2)}`).join(', ')}, the rest ${other.toFixed(2)} (of ${total.toFixed(2)} ms)`);
  }

  const add = (key: string, contender: string, threads: number, extra: Partial<Row> = {}) => {
    const t = times.get(key)!;
    const row: Row = { s, contender, threads, medianMs: median(t), minMs: Math.min(...t), timesMs: t, ...extra };
    if (allocated.has(key)) (row.allocatedBytes = median(allocated.get(key)!), row.heapBytes = median(heap.get(key)!));
    rows.push(row);
  };
  for (const threads of [1, 2]) {
    add(`floor ${threads}`, 'floor (stream the step\'s bytes)', threads, { bytes: floorBytesOf(s) });
    for (const g of gemms) {
      add(`full ${g} ${threads}`, `dsa full (FP8 weights read ${g}, int8 cache)`, threads, { recall: check[`dsa ${g} recall`] as number, bytes: floorBytesOf(s) });
      add(`shared ${g} ${threads}`, `dsa shared (FP8 weights read ${g}, given top-k)`, threads, { bytes: fp8Bytes - weightBytes(weights.indexer!.wqB) - weightBytes(weights.indexer!.wk) - weightBytes(weights.indexer!.weightsProj) + topK * dqk * 4 });
    }
    add(`ort f32 ${threads}`, 'onnxruntime float32', threads, { recall: recalls.get('onnxruntime f32'), bytes: f32Bytes + s * d * 4 + topK * dqk * 4 });
    add(`ort 8b ${threads}`, `onnxruntime 8-bit (${linear8}, ${ort8Cache} keys)`, threads, { recall: recalls.get('onnxruntime 8b'), bytes: ort8Bytes + (ort8Cache === 'int8' ? s * (d + 4) : s * d * 4) + topK * dqk * 4 });
  }
  for (const r of rows.filter((r) => r.s === s)) {
    console.log(`s=${s} ${r.contender} ${r.threads}t: ${r.medianMs.toFixed(2)} ms (min ${r.minMs.toFixed(2)})${r.recall === undefined ? '' : `, recall ${r.recall.toFixed(4)}`}${r.allocatedBytes === undefined ? '' : `, ${(r.allocatedBytes / 1024).toFixed(0)} KiB of buffers and ~${(r.heapBytes! / 1024).toFixed(0)} KiB of JS heap a step`}`);
  }
}
await libraryPool.close();
await registryPool.close();

// ---- the table and the targets ----
const find = (s: number, prefix: string, threads: number) => rows.find((r) => r.s === s && r.contender.startsWith(prefix) && r.threads === threads);
/** The floor a contender on `threads` threads is held to: the fastest stream on at most that many (2 threads can always stream as 1 does). */
const floorFor = (s: number, threads: number) => [1, 2].filter((t) => t <= threads).map((t) => find(s, 'floor', t)!).sort((a, b) => a.medianMs - b.medianMs)[0];
const f2 = (x: number | undefined) => (x === undefined ? '' : x.toFixed(2));
const lines = [
  '| s | contender | threads | median ms | min ms | 1t / 2t | / dsa read floor | MiB read | own read floor ms | / own floor | / onnxruntime f32 | / onnxruntime 8-bit | recall vs float32 selection | buffers KiB / step | JS heap KiB / step |',
  '|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
];
for (const r of rows) {
  const one = rows.find((o) => o.s === r.s && o.contender === r.contender && o.threads === 1);
  const floor = floorFor(r.s, r.threads), f32 = find(r.s, 'onnxruntime float32', r.threads), q8 = find(r.s, 'onnxruntime 8-bit', r.threads);
  // The contender's own floor: its bytes at the bandwidth the floor measured (same case, same threads).
  r.floorMs = r.bytes === undefined ? undefined : r.bytes / (floor.bytes! / floor.medianMs);
  lines.push(
    `| ${r.s} | ${r.contender} | ${r.threads} | ${f2(r.medianMs)} | ${f2(r.minMs)} | ${r.threads === 2 && one ? f2(one.medianMs / r.medianMs) : ''} | ${r !== floor ? f2(r.medianMs / floor.medianMs) : ''} | ${r.bytes === undefined ? '' : (r.bytes / 2 ** 20).toFixed(1)} | ${f2(r.floorMs)} | ${r.floorMs === undefined ? '' : f2(r.medianMs / r.floorMs)} | ${f32 && r !== f32 ? f2(r.medianMs / f32.medianMs) : ''} | ${q8 && r !== q8 ? f2(r.medianMs / q8.medianMs) : ''} | ${r.recall?.toFixed(4) ?? ''} | ${r.allocatedBytes === undefined ? '' : (r.allocatedBytes / 1024).toFixed(0)} | ${r.heapBytes === undefined ? '' : (r.heapBytes / 1024).toFixed(0)} |`,
  );
}
const sMax = Math.max(...lengths);
// The targets take the faster of the FP8 readings (its full and its shared step).
const best = gemms.map((g) => ({ g, full: find(sMax, `dsa full (FP8 weights read ${g}`, 2)!, shared: find(sMax, `dsa shared (FP8 weights read ${g}`, 2)! })).sort((a, b) => a.full.medianMs - b.full.medianMs)[0];
const full2 = best.full, shared2 = best.shared, f32x2 = find(sMax, 'onnxruntime float32', 2), q8x2 = find(sMax, 'onnxruntime 8-bit', 2), floor1 = find(sMax, 'floor', 1), floor2 = find(sMax, 'floor', 2), floorOf2 = floorFor(sMax, 2);
const targets = {
  s: sMax,
  reading: best.g,
  'dsa full 2t / onnxruntime float32 2t (target <= 0.8)': full2!.medianMs / f32x2!.medianMs,
  'dsa full 2t / onnxruntime 8-bit 2t (target <= 1.2)': full2!.medianMs / q8x2!.medianMs,
  'dsa shared 2t / dsa full 2t (target <= 0.5)': shared2!.medianMs / full2!.medianMs,
  'resident weight bytes / checkpoint bytes (target <= 1.1)': residentBytes / checkpointBytes,
  'dsa full 2t / read floor (the faster stream on <= 2 threads)': full2!.medianMs / floorOf2.medianMs,
};
const bandwidth = { '1 thread GB/s': floor1!.bytes! / floor1!.medianMs / 1e6, '2 threads GB/s': floor2!.bytes! / floor2!.medianMs / 1e6 };
console.log(`\nlayer benchmark, ${machine()}, reps ${reps}${smoke ? ' (smoke)' : ''}, load average ${load0.toFixed(2)} at start, ${loadavg()[0].toFixed(2)} at end`);
console.log(`DeepSeek-V3.2 layer${smoke ? ' (tiny smoke shapes)' : ''}: dim ${dim}, heads ${H}, qRank ${qRank}, kvRank ${kvRank}, nope ${nope}, rope ${rope}, v ${vDim}; indexer ${h} x ${d}, topK ${topK}; b = 1`);
console.log(`weights: FP8 + scales ${(fp8Bytes / 2 ** 20).toFixed(1)} MiB (checkpoint form with norms: ${(checkpointBytes / 2 ** 20).toFixed(1)} MiB), resident after a step ${(residentBytes / 2 ** 20).toFixed(1)} MiB (${(residentExtra / 2 ** 20).toFixed(1)} MiB beyond the weights' own: per-weights copies a first step made, the process's other buffers), built in ${(buildMs / 1000).toFixed(1)} s; onnxruntime float32 ${(f32Bytes / 2 ** 20).toFixed(1)} MiB, 8-bit (${linear8}) ${(ort8Bytes / 2 ** 20).toFixed(1)} MiB`);
console.log(`pool path: ${poolPath}; read floor bandwidth ${bandwidth['1 thread GB/s'].toFixed(1)} GB/s on 1 thread, ${bandwidth['2 threads GB/s'].toFixed(1)} GB/s on 2`);
console.log(`peak RSS ${peakRssMiB()} MiB; RSS ${rssBeforeOrt} MiB before the onnxruntime sessions, ${rssOrtF32} after its float32 ones, ${rssOrt8} after its 8-bit ones`);
console.log(lines.join('\n'));
console.log(`\ntargets at s = ${sMax}, FP8 weights read ${best.g}: ${Object.entries(targets).filter(([k]) => k !== 's' && k !== 'reading').map(([k, v]) => `${k}: ${(v as number).toFixed(2)}`).join('; ')}`);
if (!smoke) {
  writeResults('layer.json', JSON.stringify({
    date: new Date().toISOString(), machine: machine(), loadAverage: { start: load0, end: loadavg()[0] }, config, reps, warmup, gemms, poolPath,
    onnx: { eightBit: linear8, eightBitKeys: ort8Cache, float32WeightBytes: f32Bytes, eightBitWeightBytes: ort8Bytes, rope: 'in the graph', newTokenKey: 'float32' },
    weights: { fp8Bytes, checkpointBytes, residentBytes, residentExtraBytes: residentExtra }, bandwidth, peakRssMiB: peakRssMiB(), rssMiB: { beforeOnnxSessions: rssBeforeOrt, afterFloat32Sessions: rssOrtF32, afterEightBitSessions: rssOrt8 },
    targets, checks, breakdowns, rows, sink,
  }, null, 2) + '\n');
}
