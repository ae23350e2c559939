// The indexer's projections (wqB, wk, weightsProj) in every stored weight
// form and reading, through lightningIndexer, decodeStep and prefill, on
// one thread and the pool: a weight read 'bf16' equals the float32 tensor
// of the values it is read as (bit for bit), a weight read 'fp8' gives the
// projections `linear` gives, and the pool equals one thread.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lightningIndexer, planProjections, shareWeights, type IndexerWeights, type ProjectionReading } from '../../src/indexer/module.js';
import { indexerKernels } from '../../src/indexer/kernels.js';
import { weightKernels } from '../../src/weights/kernels.js';
import { runKernel } from '../../src/plan.js';
import { createDsaCache } from '../../src/cache/cache.js';
import { decodeStep, prefill } from '../../src/cache/step.js';
import { createPool } from '../../src/pool/index.js';
import { linear } from '../../src/weights/linear.js';
import { bf16Bits, bf16Value, dequantizeWeight, quantizeWeightFp8, toBf16, type Weight } from '../../src/weights/weight.js';
import { rng, normals } from '../../src/cli/demo-data.js';
import type { Tensor } from '../../src/tensor.js';

type F = Tensor<Float32Array>;
const dim = 160, qRank = 136, h = 4, d = 32, hq = 2, dqk = 24;
const floats = (shape: number[], seed: number, scale = 1): F => ({ data: normals(rng(seed), shape.reduce((a, b) => a * b, 1), scale), shape });

const base = { wqB: floats([h * d, qRank], 1, 0.1), wk: floats([d, dim], 2, 0.1), weightsProj: floats([h, dim], 3, 0.1) };
const norms = { kNormWeight: floats([d], 4), kNormBias: floats([d], 5, 0.1) };

function inForm(format: Weight['format'], w: F): Weight {
  const shape: [number, number] = [w.shape[0], w.shape[1]];
  if (format === 'float32') return { format, shape, data: w.data };
  if (format === 'bf16') return { format, shape, data: toBf16(w.data) };
  return quantizeWeightFp8(w);
}

/** The float32 tensor of a weight's values as the float GEMM reads them (bf16 reading). */
function asRead(w: Weight): F {
  const values = dequantizeWeight(w);
  return { data: w.format === 'fp8' ? values.map((v) => bf16Value(bf16Bits(v))) : values, shape: w.shape.slice() };
}

function stored(format: Weight['format']): IndexerWeights {
  return { wqB: inForm(format, base.wqB), wk: inForm(format, base.wk), weightsProj: inForm(format, base.weightsProj), ...norms };
}

function sameBits(a: ArrayLike<number>, b: ArrayLike<number>, label: string): void {
  assert.equal(a.length, b.length, label);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) assert.fail(`${label}: element ${i} is ${a[i]}, expected ${b[i]}`);
}

const x = floats([2, 3, dim], 6), qr = floats([2, 3, qRank], 7);
const opts = { ropeDim: 8, topK: 4 };

test('lightningIndexer: weights read bf16 equal float32 tensors of the values read, every form (wqB[128, 136], wk[32, 160], weightsProj[4, 160])', () => {
  for (const format of ['float32', 'bf16', 'fp8'] as const) {
    const w = stored(format);
    const tensors: IndexerWeights = { wqB: asRead(w.wqB as Weight), wk: asRead(w.wk as Weight), weightsProj: asRead(w.weightsProj as Weight), ...norms };
    for (const precision of ['float32', 'fp8'] as const) {
      const a = lightningIndexer(w, { x, qr }, { ...opts, precision });
      const b = lightningIndexer(tensors, { x, qr }, { ...opts, precision });
      sameBits(a.scores.data, b.scores.data, `${format} ${precision} scores`);
      sameBits(a.indices.data, b.indices.data, `${format} ${precision} indices`);
    }
  }
});

test('the projections of an FP8 weight read fp8 are linear with gemmImpl fp8 (both scale formats), and differ from the bf16 reading', () => {
  const w = stored('fp8');
  const n = 6;
  for (const reading of [{ gemmImpl: 'fp8' }, { gemmImpl: 'fp8', scaleFormat: 'ue8m0' }, { gemmImpl: 'bf16' }] as const) {
    for (const simd of [true, false]) {
      const p = planProjections(w, qr.data, x.data, n, { h, d, dim, qRank }, { scaleFormat: 'float32', ...reading }, simd, (C, len) => new C(len));
      for (const step of p.steps) runKernel(step, { ...indexerKernels, ...weightKernels });
      const lin = { ...reading, simd };
      sameBits(p.q, linear({ data: qr.data, shape: [n, qRank] }, w.wqB as Weight, lin).data, `q ${JSON.stringify(lin)}`);
      sameBits(p.k, linear({ data: x.data, shape: [n, dim] }, w.wk as Weight, lin).data, `k ${JSON.stringify(lin)}`);
      sameBits(p.w, linear({ data: x.data, shape: [n, dim] }, w.weightsProj as Weight, lin).data, `w ${JSON.stringify(lin)}`);
    }
  }
  const fp8 = lightningIndexer(w, { x, qr }, { ...opts, linear: { gemmImpl: 'fp8' } }).scores.data;
  const bf16 = lightningIndexer(w, { x, qr }, opts).scores.data;
  assert.ok(fp8.some((v, i) => v !== bf16[i]), 'the reading reaches the projections');
});

test('mixed forms: an FP8 wqB and wk with a bf16 weightsProj (as DeepSeek stores them), read fp8; the pool equals one thread', async () => {
  const w: IndexerWeights = { wqB: inForm('fp8', base.wqB), wk: inForm('fp8', base.wk), weightsProj: inForm('bf16', base.weightsProj), ...norms };
  const pool = createPool({ threads: 2 });
  try {
    for (const reading of [{}, { gemmImpl: 'fp8' }, { gemmImpl: 'fp8', scaleFormat: 'ue8m0' }] as ProjectionReading[]) {
      const o = { ...opts, precision: 'fp8' as const, linear: reading };
      const one = lightningIndexer(w, { x, qr }, o);
      for (const weights of [w, shareWeights(w)]) {
        const many = await pool.lightningIndexer(weights, { x, qr }, o);
        sameBits(many.scores.data, one.scores.data, `scores ${JSON.stringify(reading)}`);
        sameBits(many.indices.data, one.indices.data, `indices ${JSON.stringify(reading)}`);
      }
    }
  } finally {
    await pool.close();
  }
});

test('decodeStep and prefill with stored weights: bf16 reading equals float32 tensors, fp8 reading pool equals one thread', async () => {
  const T = 5;
  const seq = { x: floats([1, T, dim], 8), qr: floats([1, T, qRank], 9), q: floats([T, hq, dqk], 10), kv: floats([T, 1, dqk], 11) };
  const cacheOf = () => createDsaCache({ batch: 1, capacity: 16, indexerDim: d, kvDim: dqk, keyForm: 'fp8' });
  const pool = createPool({ threads: 2 });
  try {
    for (const format of ['bf16', 'fp8'] as const) {
      const w = stored(format);
      const tensors: IndexerWeights = { wqB: asRead(w.wqB as Weight), wk: asRead(w.wk as Weight), weightsProj: asRead(w.weightsProj as Weight), ...norms };
      const stepOpts = { ropeDim: 8, topK: 4, queryBlock: 2 };
      const a = prefill(w, cacheOf(), 0, seq, stepOpts);
      const b = prefill(tensors, cacheOf(), 0, seq, stepOpts);
      sameBits(a.out.data, b.out.data, `${format} prefill out`);
      const fp8Opts = { ...stepOpts, linear: { gemmImpl: 'fp8' as const } };
      const one = cacheOf(), many = cacheOf();
      const c = prefill(w, one, 0, seq, fp8Opts);
      const p = await pool.prefill(shareWeights(w), many, 0, seq, fp8Opts);
      sameBits(p.out.data, c.out.data, `${format} fp8 reading prefill pool`);
      const next = { x: floats([1, 1, dim], 12), qr: floats([1, 1, qRank], 13), q: floats([1, hq, dqk], 14), kv: floats([1, 1, dqk], 15) };
      const { queryBlock: _block, ...stepOnly } = fp8Opts; // queryBlock is prefill's alone
      const s1 = decodeStep(w, one, next, stepOnly), s2 = await pool.decodeStep(w, many, next, stepOnly);
      sameBits(s2.out.data, s1.out.data, `${format} fp8 reading decodeStep pool`);
      sameBits(s2.indices.data, s1.indices.data, `${format} indices`);
    }
  } finally {
    await pool.close();
  }
});

test('named errors: a bad stored weight, a bad reading', () => {
  const w = stored('fp8');
  const bad = { ...w, wqB: { ...(w.wqB as Weight), scale: new Float32Array(1) } as Weight };
  assert.throws(() => lightningIndexer(bad, { x, qr }, opts), /RangeError: weights.wqB.scale: expected \[ceil\(out\/128\), ceil\(in\/128\)\] = \[1, 2\]/);
  const cache = createDsaCache({ batch: 2, capacity: 8, indexerDim: d, kvDim: dqk });
  const step = { x, qr, q: floats([6, hq, dqk], 1), kv: floats([6, 1, dqk], 2) };
  assert.throws(() => decodeStep(bad, cache, step, opts), /RangeError: weights.wqB.scale/);
  assert.throws(() => lightningIndexer(w, { x, qr }, { ...opts, linear: { gemmImpl: 'int8' as never } }), /RangeError: linear.gemmImpl: expected one of 'bf16', 'fp8'/);
  assert.throws(() => decodeStep(w, cache, step, { ...opts, linear: { scaleFormat: 'e8m0' as never } }), /RangeError: linear.scaleFormat/);
  assert.throws(() => decodeStep(w, cache, step, { ...opts, linear: { gemm: 'fp8' } as never }), /TypeError: linear: unknown option 'gemm'/);
  assert.equal(cache.lengths[0], 0, 'a refused step leaves the cache unchanged');
});
