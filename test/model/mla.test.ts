// The DSA attention layer from hidden states (src/model/mla.ts): equal to
// a float32 torch restatement of DeepSeek-V3.2's MLA + Indexer
// (test/golden/mla/make.py) over a prefill in blocks, decode steps of a
// batch of two sequences of different lengths and a speculative step, with
// float32 and FP8 weights (both of DeepSeek's readings); its attention bit for bit the existing decodeStep
// given the same q and kv; a GLM-5 shared layer given the full layer's
// top-k bit for bit the full layer; the errors, with the cache unchanged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { decodeNpy } from '../../src/io/npy.js';
import { runPlan } from '../../src/plan.js';
import { allocLocal, type Tensor, type TypedArray } from '../../src/tensor.js';
import { createDsaCache, type DsaCache, type DsaCacheOptions } from '../../src/cache/cache.js';
import { decodeStep } from '../../src/cache/step.js';
import type { IndexerWeights } from '../../src/indexer/module.js';
import { bf16Bits, bf16Value, dequantizeWeight, type Weight } from '../../src/weights/weight.js';
import type { MlaConfig, MlaLayerWeights } from '../../src/model/types.js';
import { mlaDecodeStep, mlaKernels, mlaPreparedBytes, mlaPrefill, mlaRopeFrequencies, mlaScale, planMlaDecodeStep, type MlaLayer, type MlaStepOptions } from '../../src/model/mla.js';
import { assertClose } from '../helpers/close.js';

function load<T extends TypedArray>(name: string): Tensor<T> {
  const t = decodeNpy(new Uint8Array(readFileSync(new URL(`../golden/mla/${name}.npy`, import.meta.url))), name);
  return { data: t.data as T, shape: t.shape };
}

// make.py's CFG (YaRN on: its max_seq_len 512 exceeds original_seq_len 256).
const config: MlaConfig = {
  dim: 64, nHeads: 4, qLoraRank: 32, kvLoraRank: 16, qkNopeHeadDim: 8, qkRopeHeadDim: 8, vHeadDim: 8,
  indexNHeads: 2, indexHeadDim: 16, indexTopk: 8, normEps: 1e-6, ropeTheta: 10000,
  rope: { factor: 4, originalSeqLen: 256, betaFast: 32, betaSlow: 1, mscale: 1 },
  nLayers: 1,
};
const TOL = { rtol: 1e-5, atol: 1e-6 };

function f32Weight(name: string): Weight {
  const t = load<Float32Array>(`w_${name}`);
  return { format: 'float32', shape: t.shape as [number, number], data: t.data };
}
function fp8Weight(name: string): Weight {
  const t = load<Uint8Array>(`w8_${name}`);
  return { format: 'fp8', shape: t.shape as [number, number], data: t.data, scale: load<Float32Array>(`w8_${name}.scale`).data };
}
function layerWeights(weight: (name: string) => Weight): MlaLayerWeights {
  const vec = (name: string) => load<Float32Array>(`w_${name}`).data;
  return {
    wqA: weight('wq_a'), qNorm: vec('q_norm'), wqB: weight('wq_b'), wkvA: weight('wkv_a'), kvNorm: vec('kv_norm'), wkvB: weight('wkv_b'), wo: weight('wo'),
    indexer: { wqB: weight('indexer.wq_b'), wk: weight('indexer.wk'), kNormWeight: vec('indexer.k_norm.weight'), kNormBias: vec('indexer.k_norm.bias'), weightsProj: weight('indexer.weights_proj') },
  };
}

const kvDim = config.kvLoraRank + config.qkRopeHeadDim;
const cacheOptions = (over: Partial<DsaCacheOptions> = {}): DsaCacheOptions => ({ batch: 2, capacity: 32, indexerDim: config.indexHeadDim, keyForm: 'float32', kvDim, ...over });

/** Each row's valid positions, sorted (the restatement's topk order is torch's, the library's by score then position). */
function sortedSets(indices: Int32Array, k: number): number[][] {
  const rows: number[][] = [];
  for (let r = 0; r < indices.length / k; r++) rows.push(Array.from(indices.subarray(r * k, (r + 1) * k)).filter((p) => p >= 0).sort((a, b) => a - b));
  return rows;
}

const x = (name: string) => load<Float32Array>(`x_${name}`);
const slice = (t: Tensor<Float32Array>, i: number, shape: number[]): Tensor<Float32Array> => {
  const size = shape.reduce((a, b) => a * b, 1);
  return { data: t.data.subarray(i * size, (i + 1) * size), shape };
};

/** make.py's schedule through one cache: prompts (prefill in blocks), 3 decode steps of both sequences, a 2-token step. */
function runSchedule(layer: MlaLayer, cache: DsaCache, opts: MlaStepOptions = {}) {
  const results: { name: string; out: Float32Array; indices: Int32Array }[] = [];
  for (const [seq, queryBlock] of [[0, 5], [1, 4]]) {
    const r = mlaPrefill(cache, layer, seq, { x: x(`prompt${seq}`) }, { ...opts, queryBlock });
    results.push({ name: `prompt${seq}`, out: r.out.data, indices: r.indices.data });
  }
  const decode = x('decode');
  for (let i = 0; i < 3; i++) {
    const r = mlaDecodeStep(cache, layer, { x: slice(decode, i, [2, 1, config.dim]) }, opts);
    results.push({ name: `decode${i}`, out: r.out.data, indices: r.indices.data });
  }
  const r = mlaDecodeStep(cache, layer, { x: x('spec') }, opts);
  results.push({ name: 'spec', out: r.out.data, indices: r.indices.data });
  return results;
}

function expected(prefix: string) {
  const decodeOut = load<Float32Array>(`${prefix}decode_out`), decodeIdx = load<Int32Array>(`${prefix}decode_indices`);
  const k = config.indexTopk;
  return [
    ...[0, 1].map((seq) => ({ name: `prompt${seq}`, out: load<Float32Array>(`${prefix}prompt${seq}_out`).data, indices: load<Int32Array>(`${prefix}prompt${seq}_indices`).data })),
    ...[0, 1, 2].map((i) => ({ name: `decode${i}`, out: slice(decodeOut, i, [2, 1, config.dim]).data, indices: decodeIdx.data.subarray(i * 2 * k, (i + 1) * 2 * k) })),
    { name: 'spec', out: load<Float32Array>(`${prefix}spec_out`).data, indices: load<Int32Array>(`${prefix}spec_indices`).data },
  ];
}

test('YaRN frequencies and the softmax scale: precompute_freqs_cis bit for bit, (nope + rope)^-0.5 * mscale^2', () => {
  assert.deepEqual(Array.from(mlaRopeFrequencies(config)), Array.from(load<Float32Array>('freqs').data));
  const m = 0.1 * Math.log(4) + 1;
  assert.equal(mlaScale(config), 16 ** -0.5 * m * m);
  assert.equal(mlaScale({ ...config, rope: undefined }), 16 ** -0.5);
});

const CASES = [
  ['float32', 'f32_', f32Weight, {}],
  ['FP8 (dequantized to bf16, gemmImpl bf16)', 'fp8_', fp8Weight, {}],
  ['FP8 (act_quant + fp8_gemm, gemmImpl fp8)', 'fp8gemm_', fp8Weight, { gemmImpl: 'fp8' }],
] as const;
for (const [what, prefix, weight, reading] of CASES) {
  for (const simd of [true, false]) {
    test(`torch restatement of MLA + Indexer, ${what} weights, simd ${simd}: x[2 seqs: 13, 9 prompt + 3 decode + 2 spec, dim 64] H 4 kvRank 16 topK 8`, () => {
      const layer: MlaLayer = { config, weights: layerWeights(weight) };
      const cache = createDsaCache(cacheOptions());
      const got = runSchedule(layer, cache, { ...reading, simd });
      const want = expected(prefix);
      for (let i = 0; i < want.length; i++) {
        assert.deepEqual(sortedSets(got[i].indices, config.indexTopk), sortedSets(want[i].indices, config.indexTopk), `${want[i].name}: top-k positions`);
        assertClose(got[i].out, want[i].out, TOL, `${want[i].name}: out`);
      }
      assert.deepEqual(Array.from(cache.lengths), [13 + 3 + 2, 9 + 3 + 2]);
    });
  }
}

test("the MLA half alone: the absorbed queries [13, 4, 24] and kv rows [13, 1, 24] of a prompt equal the restatement's (float32, FP8 both readings)", () => {
  for (const [prefix, weight, reading] of [['f32_', f32Weight, {}], ['fp8_', fp8Weight, {}], ['fp8gemm_', fp8Weight, { gemmImpl: 'fp8' as const }]] as const) {
    const layer: MlaLayer = { config, weights: layerWeights(weight) };
    const plan = planMlaDecodeStep(createDsaCache(cacheOptions()), layer, { x: x('prompt0') }, reading, allocLocal);
    runPlan(plan, mlaKernels);
    const args = (kernel: string) => plan.steps.find((s) => s.kernel === kernel)!.args;
    assertClose(args('attention.sparse').q as Float32Array, load<Float32Array>(`${prefix}prompt0_q`).data, TOL, `${prefix}q`);
    assertClose(args('cache.write').kvIn as Float32Array, load<Float32Array>(`${prefix}prompt0_kv`).data, TOL, `${prefix}kv`);
  }
});

test("GLM-5's indexer RoPE on interleaved pairs (indexerRopeInterleaved): the torch restatement with Transformers' GlmMoeDsaIndexer rotation, simd and not", () => {
  const glm: MlaConfig = { ...config, indexerRopeInterleaved: true };
  for (const simd of [true, false]) {
    const got = runSchedule({ config: glm, weights: layerWeights(f32Weight) }, createDsaCache(cacheOptions()), { simd });
    const want = expected('glm_');
    for (let i = 0; i < want.length; i++) {
      assert.deepEqual(sortedSets(got[i].indices, config.indexTopk), sortedSets(want[i].indices, config.indexTopk), `${want[i].name}: top-k positions`);
      assertClose(got[i].out, want[i].out, TOL, `${want[i].name}: out`);
    }
  }
  // The DeepSeek rotation gives other results on the same weights (the flag is read).
  const other = runSchedule({ config, weights: layerWeights(f32Weight) }, createDsaCache(cacheOptions()));
  assert.ok(other.some((r, i) => r.indices.some((p, j) => p !== expected('glm_')[i].indices[j])) || other.some((r, i) => r.out.some((v, j) => Math.abs(v - expected('glm_')[i].out[j]) > 1e-4)));
  // FP8 weights, their rows permuted with their block scales: bit for bit float32 weights of the values they are read as.
  const asFloat = (name: string): Weight => {
    const w = fp8Weight(name);
    return { format: 'float32', shape: w.shape, data: valuesOf(w) };
  };
  const a = runSchedule({ config: glm, weights: layerWeights(fp8Weight) }, createDsaCache(cacheOptions()));
  const b = runSchedule({ config: glm, weights: layerWeights(asFloat) }, createDsaCache(cacheOptions()));
  for (let i = 0; i < a.length; i++) {
    assert.deepEqual(a[i].out, b[i].out, `${a[i].name}: fp8 = its values as float32`);
    assert.deepEqual(a[i].indices, b[i].indices, `${a[i].name}: indices`);
  }
});

/** An FP8 weight's values as linear reads them with gemmImpl 'bf16' (bf16(f32(e4m3 * scale))). */
function valuesOf(w: Weight): Float32Array {
  const v = dequantizeWeight(w);
  for (let i = 0; i < v.length; i++) v[i] = bf16Value(bf16Bits(v[i]));
  return v;
}

test('the attention part is decodeStep bit for bit, given the q, kv and qr the layer computed (a paged cache, 2 sequences)', () => {
  const layer: MlaLayer = { config, weights: layerWeights(f32Weight) };
  const a = createDsaCache(cacheOptions({ capacity: undefined, pages: 8, pageSize: 4 }));
  const b = createDsaCache(cacheOptions({ capacity: undefined, pages: 8, pageSize: 4 }));
  const ix = layer.weights.indexer!;
  const tensor = (w: Weight) => ({ data: (w as { data: Float32Array }).data, shape: w.shape });
  const indexer: IndexerWeights = {
    wqB: tensor(ix.wqB), wk: tensor(ix.wk), kNormWeight: { data: ix.kNormWeight, shape: [16] }, kNormBias: { data: ix.kNormBias, shape: [16] }, weightsProj: tensor(ix.weightsProj),
  };
  const prompt = x('prompt0'), decode = x('decode');
  const inputs = [{ x: { data: prompt.data.subarray(0, 9 * 64), shape: [1, 9, 64] } }, { x: slice(decode, 0, [2, 1, 64]) }, { x: x('spec') }];
  inputs[0] = { ...inputs[0], seqs: Int32Array.of(1) } as typeof inputs[0];
  for (const [i, input] of inputs.entries()) {
    const plan = planMlaDecodeStep(a, layer, input, {}, allocLocal);
    const args = (kernel: string) => plan.steps.find((s) => s.kernel === kernel)!.args;
    const mine = runPlan(plan, mlaKernels);
    const [m, t] = input.x.shape;
    const q = { data: args('attention.sparse').q as Float32Array, shape: [m * t, 4, kvDim] };
    const kv = { data: args('cache.write').kvIn as Float32Array, shape: [m * t, 1, kvDim] };
    const qr = { data: args('indexer.projections').qr as Float32Array, shape: [m, t, 32] };
    const seqs = (input as { seqs?: Int32Array }).seqs;
    const theirs = decodeStep(indexer, b, { x: input.x, qr, q, kv, ...(seqs ? { seqs } : {}) }, {
      topK: 8, dV: 16, smScale: mlaScale(config), ropeDim: 8, ropeFreqs: mlaRopeFrequencies(config), eps: 1e-6,
    });
    assert.deepEqual(mine.latent.data, theirs.out.data, `step ${i}: attention out`);
    assert.deepEqual(mine.lse.data, theirs.lse.data, `step ${i}: lse`);
    assert.deepEqual(mine.indices.data, theirs.indices.data, `step ${i}: indices`);
    assert.deepEqual(a.kv.data, b.kv.data, `step ${i}: the caches' kv rows`);
    assert.deepEqual(a.keys, b.keys, `step ${i}: the caches' indexer keys`);
  }
});

test("a GLM-5 shared layer given the full layer's top-k is the full layer bit for bit (prefill in blocks, batch decode)", () => {
  const full: MlaLayer = { config, weights: layerWeights(f32Weight) };
  const { indexer: _, ...rest } = full.weights;
  const shared: MlaLayer = { config, weights: rest };
  const a = createDsaCache(cacheOptions());
  const b = createDsaCache(cacheOptions({ indexerDim: 1 })); // a shared layer's cache holds no real indexer keys
  for (const seq of [0, 1]) {
    const p = mlaPrefill(a, full, seq, { x: x(`prompt${seq}`) }, { queryBlock: 5 });
    const s = mlaPrefill(b, shared, seq, { x: x(`prompt${seq}`) }, { queryBlock: 3, indices: p.indices });
    assert.deepEqual(s.out.data, p.out.data, `prompt ${seq}: out`);
    assert.deepEqual(s.indices.data, p.indices.data, `prompt ${seq}: indices`);
  }
  const decode = x('decode');
  for (let i = 0; i < 3; i++) {
    const p = mlaDecodeStep(a, full, { x: slice(decode, i, [2, 1, 64]) });
    const s = mlaDecodeStep(b, shared, { x: slice(decode, i, [2, 1, 64]) }, { indices: p.indices });
    assert.deepEqual(s.out.data, p.out.data, `decode ${i}: out`);
    assert.deepEqual(s.latent.data, p.latent.data, `decode ${i}: latent`);
  }
  assert.deepEqual(a.kv.data, b.kv.data, "the shared layer's cache holds the same latent rows");
  // A repeated position counts once: [0, 0, 3, -1] attends as [0, 3].
  const once = mlaDecodeStep(createTwin(a), shared, { x: slice(decode, 0, [2, 1, 64]) }, { indices: { data: Int32Array.of(0, 0, 3, -1, 5, -1, -1, -1), shape: [2, 1, 4] } });
  const unique = mlaDecodeStep(createTwin(a), shared, { x: slice(decode, 0, [2, 1, 64]) }, { indices: { data: Int32Array.of(0, 3, -1, -1, 5, -1, -1, -1), shape: [2, 1, 4] } });
  assert.deepEqual(once.out.data, unique.out.data);
});

/** A cache holding a copy of `c`'s sequences (contiguous layout). */
function createTwin(c: DsaCache): DsaCache {
  const twin = createDsaCache(cacheOptions({ indexerDim: 1 }));
  for (let seq = 0; seq < c.batch; seq++) {
    const len = c.lengths[seq];
    const kv = c.kv.data.subarray(seq * 32 * kvDim, (seq * 32 + len) * kvDim);
    twin.append(seq, { keys: { data: new Float32Array(len), shape: [len, 1] }, kv: { data: kv.slice(), shape: [len, 1, kvDim] } });
  }
  return twin;
}

test('errors name the argument and leave the cache unchanged', () => {
  const full: MlaLayer = { config, weights: layerWeights(f32Weight) };
  const cache = createDsaCache(cacheOptions());
  mlaPrefill(cache, full, 0, { x: x('prompt0') });
  const before = { lengths: Array.from(cache.lengths), kv: cache.kv.data.slice() };
  const one = slice(x('decode'), 0, [1, 1, 64]);
  const unchanged = (what: string) => {
    assert.deepEqual(Array.from(cache.lengths), before.lengths, `${what}: lengths`);
    assert.deepEqual(cache.kv.data, before.kv, `${what}: kv rows`);
  };
  const { indexer: _, ...rest } = full.weights;
  assert.throws(() => mlaDecodeStep(cache, { config, weights: rest }, { x: one }), /indices: a layer without indexer weights/);
  assert.throws(
    () => mlaDecodeStep(cache, full, { x: one }, { indices: { data: Int32Array.of(0, 14, -1, -1), shape: [1, 1, 4] } }),
    /indices: row 0 \(sequence row 0, token 0\), slot 1 is 14; expected -1 or a position in \[0, 13\]/,
  );
  assert.throws(() => mlaDecodeStep(cache, full, { x: one }, { topK: 4 } as MlaStepOptions), /mlaDecodeStep: unknown option 'topK'/);
  assert.throws(() => mlaDecodeStep(cache, { config, weights: { ...full.weights, wo: f32Weight('wq_a') } }, { x: one }), /layer\.weights\.wo: expected shape \[dim, nHeads \* vHeadDim\] = \[64, 32\], got \[32, 64\]/);
  assert.throws(() => mlaDecodeStep(cache, { config, weights: { ...full.weights, kvNorm: new Float32Array(3) } }, { x: one }), /layer\.weights\.kvNorm: expected a Float32Array of length kvLoraRank = 16, got length 3/);
  assert.throws(() => mlaDecodeStep(cache, full, { x: { data: new Float32Array(32), shape: [1, 1, 32] } }), /inputs\.x dim/);
  assert.throws(() => mlaDecodeStep(createDsaCache(cacheOptions({ kvDim: 576 })), full, { x: one }), /the cache kvDim/);
  const bad = one.data.slice();
  bad[5] = NaN;
  assert.throws(() => mlaDecodeStep(cache, full, { x: { data: bad, shape: [1, 1, 64] } }), RangeError);
  assert.throws(() => mlaPrefill(cache, full, 0, { x: { data: bad, shape: [1, 1, 64] } }), /inputs\.x: token 0, dim 5 is NaN/);
  unchanged('after every refusal');
});

test('mlaPreparedBytes: the transposed key rows of wkv_b, and the permuted indexer copies of an interleaved one', () => {
  const layer: MlaLayer = { config, weights: layerWeights(fp8Weight) };
  // 4 heads x kvRank 16 x nope 8 FP8 codes, and a scale a head (each head's key rows one segment, in block 0).
  const keys = 4 * 16 * 8 + 4 * 4;
  assert.equal(mlaPreparedBytes(layer), keys);
  const ix = layer.weights.indexer!;
  const glm: MlaLayer = { config: { ...config, indexerRopeInterleaved: true }, weights: layer.weights };
  assert.equal(mlaPreparedBytes(glm), keys + ix.wqB.data.byteLength + 4 + ix.wk.data.byteLength + 4 + 2 * 16 * 4);
});
