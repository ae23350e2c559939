// Many layers (src/model/model.ts): every layer's out and indices bit for
// bit the layer stepped alone (mlaPrefill / mlaDecodeStep) through its own
// cache given the same hidden states (the caller's `between` applied to
// the reference's outs) and, for a reusing layer, its source layer's
// indices; one page table for every layer; a failure in any layer (or in
// between) leaves every cache as before, for steps and prefills; random
// layer patterns; the pool bit for bit; the fixture checkpoint's resident
// bytes against its stored bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { rng } from '../../src/cli/demo-data.js';
import { createDsaCache } from '../../src/cache/cache.js';
import { quantizeWeightFp8, type Weight } from '../../src/weights/weight.js';
import type { MlaConfig, MlaLayerWeights } from '../../src/model/types.js';
import { mlaDecodeStep, mlaPrefill, type MlaLayer } from '../../src/model/mla.js';
import { openCheckpoint } from '../../src/model/checkpoint.js';
import { computesTopk, createDsaModel, loadDsaModel, type Between, type DsaModel, type DsaModelCacheOptions, type DsaModelReuse, type DsaModelStepResult } from '../../src/model/model.js';
import { createWorkerPool } from '../../src/pool/pool.js';
import { planRunner } from '../../src/pool/runner.js';
import { createStaging } from '../../src/pool/staging.js';
import { mlaPoolApi } from '../../src/model/pooled.js';
import { kernels } from './pool-kernels.js';
import type { Tensor } from '../../src/tensor.js';

const base: MlaConfig = {
  dim: 32, nHeads: 2, qLoraRank: 16, kvLoraRank: 8, qkNopeHeadDim: 4, qkRopeHeadDim: 4, vHeadDim: 4,
  indexNHeads: 2, indexHeadDim: 8, indexTopk: 3, normEps: 1e-6, ropeTheta: 10000, nLayers: 6,
};

function floats(length: number, seed: number, scale = 1): Float32Array {
  const next = rng(seed);
  return Float32Array.from({ length }, () => (next() * 2 - 1) * scale);
}

function layerWeights(config: MlaConfig, seed: number, fp8: boolean, indexer = true): MlaLayerWeights {
  let s = seed * 100;
  const w = (out: number, inDim: number): Weight => {
    const data = floats(out * inDim, s++, inDim ** -0.5);
    return fp8 ? quantizeWeightFp8({ data, shape: [out, inDim] }) : { format: 'float32', shape: [out, inDim], data };
  };
  const { dim, nHeads: H, qLoraRank: q, kvLoraRank: c, qkNopeHeadDim: nope, qkRopeHeadDim: r, vHeadDim: v, indexNHeads: h, indexHeadDim: d } = config;
  const weights: MlaLayerWeights = {
    wqA: w(q, dim), qNorm: floats(q, s++).map((x) => 1 + 0.2 * x), wqB: w(H * (nope + r), q), wkvA: w(c + r, dim), kvNorm: floats(c, s++).map((x) => 1 + 0.2 * x),
    wkvB: w(H * (nope + v), c), wo: w(dim, H * v),
  };
  if (indexer) weights.indexer = { wqB: w(h * d, q), wk: w(d, dim), kNormWeight: floats(d, s++), kNormBias: floats(d, s++, 0.1), weightsProj: w(h, dim) };
  return weights;
}

/** The caller's part between layers, token by token: x + out, scaled (so block-wise and whole-prompt agree bit for bit). */
const residual: Between = (index, out, { x }) => ({ data: x.data.map((v, i) => 0.75 * (v + out.data[i]) + 0.01 * index), shape: x.shape });

/** One step of the schedule: a prompt of a sequence or a decode step of the batch. */
type Op = { kind: 'prefill'; seq: number; t: number; seed: number; queryBlock: number } | { kind: 'decode'; m: number; t: number; seed: number };

const SCHEDULE: Op[] = [
  { kind: 'prefill', seq: 0, t: 7, seed: 1, queryBlock: 3 },
  { kind: 'prefill', seq: 1, t: 5, seed: 2, queryBlock: 4 },
  { kind: 'decode', m: 2, t: 1, seed: 3 },
  { kind: 'decode', m: 2, t: 1, seed: 4 },
  { kind: 'decode', m: 2, t: 2, seed: 5 },
  { kind: 'decode', m: 2, t: 1, seed: 6 },
];

function inputOf(op: Op, dim: number): Tensor<Float32Array> {
  const m = op.kind === 'prefill' ? 1 : op.m;
  return { data: floats(m * op.t * dim, 1000 + op.seed), shape: [m, op.t, dim] };
}

/**
 * The reference: each layer stepped alone through its own cache, the
 * hidden states passed on by `residual`, a reusing layer given its source's
 * indices (the same rule as the model's, restated).
 */
function reference(config: MlaConfig, weights: MlaLayerWeights[], first: number, cache: DsaModelCacheOptions, reuse: DsaModelReuse, ops: Op[]) {
  const caches = weights.map(() => createDsaCache({ ...cache, indexerDim: config.indexHeadDim, kvDim: config.kvLoraRank + config.qkRopeHeadDim }));
  const results: { out: Float32Array[]; indices: Int32Array[]; x: Float32Array }[] = [];
  for (const op of ops) {
    let x = inputOf(op, config.dim);
    const out: Float32Array[] = [], indices: Int32Array[] = [];
    const byIndex = new Map<number, Tensor<Int32Array>>();
    let source = -1;
    weights.forEach((w, j) => {
      const index = first + j;
      const computes = computesTopk(config, index, reuse);
      const layer: MlaLayer = { config, weights: w };
      const opts = computes ? {} : { indices: byIndex.get(source)! };
      const r = op.kind === 'prefill'
        ? mlaPrefill(caches[j], layer, op.seq, { x }, { ...opts, queryBlock: op.queryBlock })
        : mlaDecodeStep(caches[j], layer, { x }, opts);
      if (computes) {
        byIndex.set(index, r.indices);
        source = index;
      }
      out.push(r.out.data);
      indices.push(r.indices.data);
      x = residual(index, r.out, { x, indices: r.indices, seqs: new Int32Array(0), from: 0 }) as Tensor<Float32Array>;
    });
    results.push({ out, indices, x: x.data });
  }
  return { results, caches };
}

function runModel(model: ReturnType<typeof createDsaModel>, ops: Op[]): DsaModelStepResult[] {
  return ops.map((op) => op.kind === 'prefill'
    ? model.prefill(op.seq, { x: inputOf(op, model.config.dim) }, { queryBlock: op.queryBlock, between: residual })
    : model.decodeStep({ x: inputOf(op, model.config.dim) }, { between: residual }));
}

function assertSameAsReference(model: DsaModel, got: DsaModelStepResult[], ref: ReturnType<typeof reference>, label: string) {
  got.forEach((step, s) => {
    step.layers.forEach((l, j) => {
      assert.deepEqual(l.out.data, ref.results[s].out[j], `${label} step ${s} layer ${l.index}: out`);
      assert.deepEqual(l.indices.data, ref.results[s].indices[j], `${label} step ${s} layer ${l.index}: indices`);
      const reuses = model.layers[j].reuses;
      if (reuses !== null) {
        const src = step.layers.find((r) => r.index === reuses)!;
        assert.deepEqual(l.indices, src.indices, `${label} step ${s} layer ${l.index}: the indices of layer ${reuses}, unchanged`);
      }
    });
    assert.deepEqual(step.x.data, ref.results[s].x, `${label} step ${s}: the final hidden states`);
  });
  // One page table: every cache reads the same arrays, holding what a lone cache of the same schedule holds.
  for (const layer of model.layers) {
    assert.equal(layer.cache.blockTable, model.pageTable.blockTable, `layer ${layer.index}: the model's block table`);
    assert.equal(layer.cache.lengths, model.pageTable.lengths, `layer ${layer.index}: the model's lengths`);
  }
  const lone = ref.caches[0];
  assert.deepEqual(model.pageTable.lengths, lone.lengths, `${label}: lengths`);
  assert.equal(model.freePages(), lone.freePages(), `${label}: free pages, taken once for all layers`);
  for (let seq = 0; seq < lone.batch; seq++) {
    const blocks = Math.ceil(lone.lengths[seq] / lone.pageSize);
    const row = (c: { blockTable: Tensor<Int32Array>; maxBlocks: number }) => Array.from(c.blockTable.data.subarray(seq * c.maxBlocks, seq * c.maxBlocks + blocks));
    assert.deepEqual(row(model.pageTable), row(lone), `${label}: sequence ${seq}'s blocks`);
  }
}

const CASES: { name: string; config: MlaConfig; first: number; n: number; reuse: DsaModelReuse; fp8: boolean; cache: DsaModelCacheOptions }[] = [
  { name: 'DeepSeek-style: 3 full layers, fp8 cache, paged', config: base, first: 0, n: 3, reuse: {}, fp8: false, cache: { batch: 2, pages: 12, pageSize: 4 } },
  {
    name: 'GLM-5 pattern F S F S S (indexerTypes), FP8 weights, int8 cache',
    config: { ...base, indexerTypes: ['full', 'shared', 'full', 'shared', 'shared', 'full'] }, first: 0, n: 5, reuse: {}, fp8: true,
    cache: { batch: 2, pages: 12, pageSize: 4, keyForm: 'int8' },
  },
  { name: 'indexTopkFreq 2 (offset 2), layers 1-4, float32 cache, contiguous', config: base, first: 1, n: 4, reuse: { indexTopkFreq: 2 }, fp8: false, cache: { batch: 2, capacity: 16, keyForm: 'float32' } },
  { name: 'indexTopkFreq 3 (offset 2: layers 0, 1 compute), 5 layers', config: base, first: 0, n: 5, reuse: { indexTopkFreq: 3 }, fp8: false, cache: { batch: 2, pages: 10, pageSize: 4 } },
];

function weightsFor(config: MlaConfig, first: number, n: number, reuse: DsaModelReuse, fp8: boolean): MlaLayerWeights[] {
  return Array.from({ length: n }, (_, j) => layerWeights(config, first + j + 1, fp8, computesTopk(config, first + j, reuse)));
}

for (const c of CASES) {
  test(`${c.name}: each layer's out and indices bit for bit the layer alone; reusing layers get their source's indices; one page table`, () => {
    const weights = weightsFor(c.config, c.first, c.n, c.reuse, c.fp8);
    const model = createDsaModel({ config: c.config, layers: weights.map((w, j) => ({ index: c.first + j, weights: w })), cache: c.cache, ...c.reuse });
    const got = runModel(model, SCHEDULE);
    const ref = reference(c.config, weights, c.first, c.cache, c.reuse, SCHEDULE);
    assertSameAsReference(model, got, ref, c.name);
    assert.ok(model.layers.some((l) => l.reuses !== null) === (c.name.startsWith('DeepSeek') ? false : true), 'the pattern has reusing layers where it should');
  });
}

test('computesTopk: Transformers\' GlmMoeDsaConfig rule (freq 4, offset 2: F F S S S F S S S F), indexerTypes otherwise', () => {
  const pattern = Array.from({ length: 10 }, (_, i) => (computesTopk(base, i, { indexTopkFreq: 4 }) ? 'F' : 'S')).join('');
  assert.equal(pattern, 'FFSSSFSSSF');
  assert.equal(Array.from({ length: 4 }, (_, i) => (computesTopk(base, i, { indexTopkFreq: 2, indexSkipTopkOffset: 0 }) ? 'F' : 'S')).join(''), 'SFSF');
  assert.equal(computesTopk({ ...base, indexerTypes: ['full', 'shared'] }, 1), false);
  assert.equal(computesTopk({ ...base, indexerTypes: ['full', 'shared'] }, 1, { indexTopkFreq: 1 }), true);
});

test('a failure in a later layer (a non-finite kv row from between, a bad between) leaves every layer\'s cache as before; the next steps equal a model that never saw it', () => {
  const config: MlaConfig = { ...base, indexerTypes: ['full', 'shared', 'full', 'full', 'full', 'full'] };
  const weights = weightsFor(config, 0, 3, {}, false);
  const make = () => createDsaModel({ config, layers: weights.map((w, j) => ({ index: j, weights: w })), cache: { batch: 2, pages: 8, pageSize: 4 } });
  const model = make(), twin = make();
  // Both sequences at 4 tokens: the next token takes a new page in every layer.
  for (const m of [model, twin]) for (const seq of [0, 1]) m.prefill(seq, { x: { data: floats(4 * 32, 50 + seq), shape: [1, 4, 32] } }, { between: residual });
  const before = { lengths: model.pageTable.lengths.slice(), free: model.freePages(), kv: model.layers.map((l) => l.cache.kv.data.slice()), table: model.pageTable.blockTable.data.slice() };
  const x = { data: floats(2 * 32, 60), shape: [2, 1, 32] };
  const poison: Between = (index, out, info) => (index === 1 ? { data: out.data.map(() => NaN), shape: out.shape } : residual(index, out, info));
  assert.throws(() => model.decodeStep({ x }, { between: poison }), /keys: token 0, dim 0 is NaN/);
  const wrong: Between = (index, out, info) => (index === 1 ? { data: new Float32Array(3), shape: [1, 1, 3] } : residual(index, out, info));
  assert.throws(() => model.decodeStep({ x }, { between: wrong }), /between: after layer 1, expected hidden states/);
  assert.throws(() => model.decodeStep({ x }, { between: (i) => { if (i === 2) throw new Error('moe failed'); return x; } }), /moe failed/);
  assert.deepEqual(model.pageTable.lengths, before.lengths, 'lengths');
  assert.equal(model.freePages(), before.free, 'free pages');
  const len = 4;
  model.layers.forEach((l, j) => {
    for (let seq = 0; seq < 2; seq++) {
      const page = before.table[seq * l.cache.maxBlocks];
      const rows = (kv: Float32Array) => kv.subarray(page * 4 * l.cache.dqk, (page * 4 + len) * l.cache.dqk);
      assert.deepEqual(rows(l.cache.kv.data), rows(before.kv[j]), `layer ${j} sequence ${seq}: the committed kv rows`);
    }
  });
  for (let s = 0; s < 3; s++) {
    const step = { data: floats(2 * 32, 70 + s), shape: [2, 1, 32] };
    assert.deepEqual(model.decodeStep({ x: step }, { between: residual }), twin.decodeStep({ x: step }, { between: residual }), `step ${s} after the failures`);
  }
  assert.equal(model.freePages(), twin.freePages());
});

test('a prefill that fails in a later block of a later layer restores every layer\'s cache as before the prompt', () => {
  const weights = weightsFor(base, 0, 3, {}, false);
  const make = () => createDsaModel({ config: base, layers: weights.map((w, j) => ({ index: j, weights: w })), cache: { batch: 2, pages: 8, pageSize: 4 } });
  const model = make(), twin = make();
  const prompt = { data: floats(9 * 32, 80), shape: [1, 9, 32] };
  for (const m of [model, twin]) m.prefill(1, { x: { data: floats(3 * 32, 81), shape: [1, 3, 32] } }, { between: residual });
  const free = model.freePages();
  const poison: Between = (index, out, info) => (index === 1 && info.from === 6 ? { data: out.data.map(() => Infinity), shape: out.shape } : residual(index, out, info));
  assert.throws(() => model.prefill(0, { x: prompt }, { queryBlock: 3, between: poison }), /keys: token 0, dim 0 is NaN/);
  assert.equal(model.length(0), 0);
  assert.equal(model.length(1), 3);
  assert.equal(model.freePages(), free, 'the pages of the first blocks are back');
  assert.throws(() => model.prefill(0, { x: { data: floats(40 * 32, 1), shape: [1, 40, 32] } }), /a prompt of 40 does not fit \(nothing was appended\)/);
  const a = model.prefill(0, { x: prompt }, { queryBlock: 3, between: residual });
  const b = twin.prefill(0, { x: prompt }, { queryBlock: 3, between: residual });
  assert.deepEqual(a, b, 'the prompt again: as a model that never saw the failure');
  const x = { data: floats(2 * 32, 82), shape: [2, 1, 32] };
  assert.deepEqual(model.decodeStep({ x }, { between: residual }), twin.decodeStep({ x }, { between: residual }));
});

test('between is told each layer\'s input, indices, sequences and block; keepLayers false returns only the final hidden states', () => {
  const config: MlaConfig = { ...base, indexerTypes: ['full', 'shared', 'full', 'full', 'full', 'full'] };
  const weights = weightsFor(config, 0, 3, {}, false);
  const make = () => createDsaModel({ config, layers: weights.map((w, j) => ({ index: j, weights: w })), cache: { batch: 3, pages: 12, pageSize: 4 } });
  const model = make(), twin = make();
  const prompt = { data: floats(7 * 32, 90), shape: [1, 7, 32] };
  const seen: string[] = [];
  const full = model.prefill(2, { x: prompt }, {
    queryBlock: 4,
    between: (index, out, info) => {
      seen.push(`${index}@${info.from}:${Array.from(info.seqs).join(',')}:${info.indices.shape.join('x')}`);
      return residual(index, out, info);
    },
  });
  assert.deepEqual(seen, ['0@0:2:1x4x3', '1@0:2:1x4x3', '2@0:2:1x4x3', '0@4:2:1x3x3', '1@4:2:1x3x3', '2@4:2:1x3x3']);
  const lean = twin.prefill(2, { x: prompt }, { queryBlock: 4, between: residual, keepLayers: false });
  assert.deepEqual(lean.layers, []);
  assert.deepEqual(lean.x, full.x);
  const step = model.decodeStep({ x: { data: floats(2 * 32, 91), shape: [2, 1, 32] }, seqs: Int32Array.of(2, 0) }, {
    between: (index, out, info) => {
      assert.deepEqual(info.seqs, Int32Array.of(2, 0));
      assert.equal(info.from, 0);
      return residual(index, out, info);
    },
  });
  assert.deepEqual(step.layers[1].indices, step.layers[0].indices, 'the shared layer: layer 0\'s top-k');
  assert.equal(model.length(2), 8);
  assert.equal(model.length(0), 1);
  assert.throws(() => model.prefill(1, { x: prompt }, { keepLayers: 'no' } as never), /keepLayers: expected a boolean/);
});

test('random layer patterns, ranges and reuse rules: bit for bit the layers alone', () => {
  fc.assert(
    fc.property(
      fc.array(fc.boolean(), { minLength: 1, maxLength: 4 }),
      fc.option(fc.record({ indexTopkFreq: fc.integer({ min: 1, max: 3 }), indexSkipTopkOffset: fc.integer({ min: 0, max: 3 }) }), { nil: undefined }),
      fc.integer({ min: 0, max: 2 }),
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 1, max: 1000 }),
      (shared, freq, first, n, seed) => {
        const types = shared.map((s, i) => (s && i > 0 ? 'shared' : 'full') as 'full' | 'shared');
        const config: MlaConfig = { ...base, nLayers: 7, indexerTypes: [...types, ...Array(7 - types.length).fill('full')] };
        const reuse: DsaModelReuse = freq ?? {};
        if (!computesTopk(config, first, reuse)) return; // a range must start at a layer that computes
        const weights = weightsFor(config, first, n, reuse, false);
        const cache: DsaModelCacheOptions = { batch: 2, pages: 10, pageSize: 4, keyForm: seed % 2 === 0 ? 'fp8' : 'int8' };
        const model = createDsaModel({ config, layers: weights.map((w, j) => ({ index: first + j, weights: w })), cache, ...reuse });
        const ops: Op[] = [
          { kind: 'prefill', seq: 0, t: 1 + (seed % 6), seed, queryBlock: 1 + (seed % 3) },
          { kind: 'prefill', seq: 1, t: 2, seed: seed + 1, queryBlock: 4 },
          { kind: 'decode', m: 2, t: 1 + (seed % 2), seed: seed + 2 },
          { kind: 'decode', m: 2, t: 1, seed: seed + 3 },
        ];
        assertSameAsReference(model, runModel(model, ops), reference(config, weights, first, cache, reuse, ops), `pattern ${types.join(',')} freq ${JSON.stringify(freq)} layers ${first}..${first + n - 1}`);
      },
    ),
    { numRuns: 12, seed: 16 },
  );
});

test('createDsaModel names a bad range, a missing indexer, a shared first layer, options it sets and unknown options; a member cache cannot step alone', () => {
  const config: MlaConfig = { ...base, indexerTypes: ['full', 'shared', 'full', 'full', 'full', 'full'] };
  const w = (i: number, ix = true) => layerWeights(config, i + 1, false, ix);
  const cache = { batch: 1, pages: 4, pageSize: 4 };
  assert.throws(() => createDsaModel({ config, layers: [{ index: 1, weights: w(1, false) }], cache }), /layer 1 reuses the previous layer's top-k, but no layer before it in the range computes one/);
  assert.throws(() => createDsaModel({ config, layers: [{ index: 0, weights: w(0) }, { index: 2, weights: w(2) }], cache }), /layers\[1\]\.index: expected consecutive layer indices/);
  assert.throws(() => createDsaModel({ config, layers: [{ index: 0, weights: w(0, false) }], cache }), /layers\[0\]\.weights\.indexer: layer 0 computes its top-k/);
  assert.throws(() => createDsaModel({ config, layers: [{ index: 0, weights: w(0) }], cache: { ...cache, indexerDim: 8 } as DsaModelCacheOptions }), /cache\.indexerDim: the model sets it/);
  assert.throws(() => createDsaModel({ config, layers: [{ index: 0, weights: w(0) }], cache, topkFreq: 2 } as never), /unknown option 'topkFreq'/);
  assert.throws(() => createDsaModel({ config, layers: [{ index: 0, weights: w(0) }], cache, indexSkipTopkOffset: 1 }), /indexSkipTopkOffset: only with indexTopkFreq/);
  assert.throws(() => createDsaModel({ config, layers: [], cache }), /layers: expected a non-empty array/);
  const model = createDsaModel({ config, layers: [0, 1, 2].map((i) => ({ index: i, weights: w(i) })), cache });
  assert.equal(model.layers[1].weights.indexer, undefined, 'a reusing layer keeps no indexer');
  assert.equal(model.layers[1].cache.d, 1, 'nor full indexer-key pages');
  assert.throws(() => mlaDecodeStep(model.layers[0].cache, model.layers[0], { x: { data: floats(32, 1), shape: [1, 1, 32] } }), /its page table is shared by 3 layer caches/);
  assert.throws(() => model.decodeStep({ x: { data: floats(32, 1), shape: [1, 1, 32] } }, { queryBlock: 2 } as never), /unknown option 'queryBlock'/);
  assert.throws(() => createDsaCache({ pageTable: model.pageTable, batch: 1 }), /batch: a cache on a shared pageTable takes its layout/);
  assert.equal(model.length(0), 0, 'nothing stepped');
  model.decodeStep({ x: { data: floats(32, 1), shape: [1, 1, 32] } });
  assert.equal(model.length(0), 1);
  model.reset(0);
  assert.equal(model.length(0), 0);
  assert.equal(model.freePages(), 4);
});

test('the pool model equals the model on this thread bit for bit (prefill in blocks, batch decode, shared layers, FP8 weights)', async () => {
  const pool = createWorkerPool({ threads: 2, registry: new URL('./pool-kernels.ts', import.meta.url) });
  const api = mlaPoolApi(planRunner(pool, kernels, createStaging()));
  try {
    const config: MlaConfig = { ...base, indexerTypes: ['full', 'shared', 'full', 'shared', 'full', 'full'] };
    const weights = weightsFor(config, 0, 4, {}, true);
    const opts = { config, layers: weights.map((w, j) => ({ index: j, weights: w })), cache: { batch: 2, pages: 10, pageSize: 4, keyForm: 'int8' as const } };
    const here = createDsaModel(opts), there = createDsaModel({ ...opts, pool: api });
    const asyncResidual: Between = async (i, out, info) => residual(i, out, info);
    for (const op of SCHEDULE) {
      const x = inputOf(op, 32);
      const a: DsaModelStepResult = op.kind === 'prefill' ? here.prefill(op.seq, { x }, { queryBlock: op.queryBlock, between: residual }) : here.decodeStep({ x }, { between: residual });
      const b = op.kind === 'prefill' ? await there.prefill(op.seq, { x }, { queryBlock: op.queryBlock, between: asyncResidual }) : await there.decodeStep({ x }, { between: asyncResidual });
      assert.deepEqual(b.layers.map((l) => [l.out.data, l.indices.data, l.lse.data]), a.layers.map((l) => [l.out.data, l.indices.data, l.lse.data]), `${op.kind} ${op.seed}`);
      assert.deepEqual(b.x.data, a.x.data);
    }
    here.layers.forEach((l, j) => assert.deepEqual(there.layers[j].cache.kv.data, l.cache.kv.data, `layer ${j}: the kv pages`));
    // Steps run one at a time; a reset waits for them.
    const running = there.decodeStep({ x: inputOf(SCHEDULE[2], 32) }, { between: asyncResidual });
    assert.throws(() => there.reset(0), /a step is running on this page table/);
    await assert.rejects(there.decodeStep({ x: inputOf(SCHEDULE[2], 32) }), /a step is already running/);
    await running;
    here.decodeStep({ x: inputOf(SCHEDULE[2], 32) }, { between: residual });
    // A failed pool step leaves the caches as before, too.
    const lengths = there.pageTable.lengths.slice();
    await assert.rejects(there.decodeStep({ x: inputOf(SCHEDULE[2], 32) }, { between: async (i, out, info) => (i === 2 ? { data: out.data.map(() => NaN), shape: out.shape } : residual(i, out, info)) }), /kv: token 0/);
    assert.deepEqual(there.pageTable.lengths, lengths);
  } finally {
    await pool.close();
  }
});

test('the fixture checkpoint through loadDsaModel: bit for bit the layers alone; resident weights (as stored, plus what the layer prepares) at most 1.1x the stored bytes per layer', async () => {
  const ckpt = await openCheckpoint(fileURLToPath(new URL('../golden/checkpoint/model', import.meta.url)));
  try {
    const cache: DsaModelCacheOptions = { batch: 2, pages: 8, pageSize: 4 };
    const model = await loadDsaModel(ckpt, { cache });
    assert.equal(model.layers.length, ckpt.layerCount);
    const weights = await Promise.all(model.layers.map((l) => ckpt.loadLayer(l.index)));
    const ops: Op[] = [
      { kind: 'prefill', seq: 0, t: 6, seed: 1, queryBlock: 4 },
      { kind: 'prefill', seq: 1, t: 7, seed: 2, queryBlock: 4 },
      { kind: 'decode', m: 2, t: 1, seed: 3 },
      { kind: 'decode', m: 2, t: 1, seed: 4 },
    ];
    assertSameAsReference(model, runModel(model, ops), reference(ckpt.config, weights, 0, cache, {}, ops), 'fixture');
    for (const b of model.bytes()) {
      const stored = await ckpt.storedLayerBytes(b.index);
      assert.equal(b.stored, stored, `layer ${b.index}: storedBytes`);
      assert.ok(b.weights > 0 && b.prepared > 0, `layer ${b.index}: bytes counted`);
      assert.ok(b.weights + b.prepared <= 1.1 * stored, `layer ${b.index}: resident ${b.weights} + ${b.prepared} bytes against ${stored} stored (${((b.weights + b.prepared) / stored).toFixed(3)}x)`);
    }
    const reused = await loadDsaModel(ckpt, { cache, indexTopkFreq: 2, indexSkipTopkOffset: 1 });
    assert.deepEqual(reused.layers.map((l) => l.reuses), [null, 0], 'freq 2, offset 1: layer 1 reuses layer 0');
    const [full, shared] = reused.bytes();
    assert.equal(shared.stored, await ckpt.storedLayerBytes(1, { indexer: false }), 'a reusing layer reads no indexer');
    assert.ok(shared.weights < full.weights && shared.cache < full.cache, 'a reusing layer keeps fewer weight and cache bytes');
  } finally {
    await ckpt.close();
  }
});
