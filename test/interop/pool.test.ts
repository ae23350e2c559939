// createPool()'s ops with ort and tf tensors in and out: equal to the CPU
// functions with { data, shape } bit for bit, one op per family; errors reject.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createPool } from '../../src/pool/index.js';
import { generateMask } from '../../src/mask/masks.js';
import { indexerScores } from '../../src/indexer/scores.js';
import { sparseAttention } from '../../src/attention/sparse.js';
import { lightningIndexer, shareWeights, type IndexerWeights } from '../../src/indexer/module.js';
import { createDsaCache, type DsaCacheOptions } from '../../src/cache/cache.js';
import { decodeStep } from '../../src/cache/step.js';
import { pagedSlots } from '../../src/cache/slots.js';
import { asOrt, asOrtInt64, asTf, assertSameBits, floats, ort, tensorsOf, tf } from './runtimes.js';

const pool = createPool({ threads: 2 });
after(() => pool.close());

const ints = (values: number[], shape: number[]) => ({ data: Int32Array.from(values), shape });

test('pool: masks, indexer scores, sparse attention and paged slots from ort/tf tensors equal one thread', async () => {
  const idx = ints([0, 3, 2, -1, 5, 5], [1, 2, 3]);
  const mask = await pool.generateMask(asOrtInt64(idx), 6, { form: 'bool', output: ort });
  assert.deepEqual(tensorsOf(mask).map((e) => `${e.kind}:${e.dtype}`), ['ort:bool']);
  assertSameBits(mask, generateMask(idx, 6, { form: 'bool', outOfRange: 'error' }), 'generateMask');
  const q = floats([1, 4, 2, 16], 1), k = floats([1, 9, 16], 2), w = floats([1, 4, 2], 3);
  const scores = await pool.indexerScores(asTf(q), asOrt(k), asOrt(w), { causalOffset: 5, output: tf });
  assertSameBits(scores, indexerScores(q, k, w, { causalOffset: 5 }), 'indexerScores');
  tf.dispose(scores as tf.Tensor);
  const aq = floats([3, 2, 8], 4), kv = floats([10, 1, 8], 5), ai = ints([0, 4, 9, 1, -1, 3, 7, 7, 2], [3, 1, 3]);
  assertSameBits(await pool.sparseAttention(asOrt(aq), asTf(kv), asOrtInt64(ai), { output: ort }), sparseAttention(aq, kv, ai), 'sparseAttention');
  const table = ints([3, 1, 0, 2], [2, 2]), slotIdx = ints([0, 5, 2, 7], [2, 1, 2]);
  assertSameBits(await pool.pagedSlots(asOrtInt64(slotIdx), asOrtInt64(table), 4, { output: ort }), pagedSlots(slotIdx, table, 4), 'pagedSlots');
});

test('pool: lightningIndexer and decodeStep with ort weights and inputs equal one thread', async () => {
  const [dim, qRank, h, d, hq, dqk] = [32, 24, 4, 16, 4, 24];
  const weights: IndexerWeights = shareWeights({
    wqB: floats([h * d, qRank], 1, 0.3), wk: floats([d, dim], 2, 0.3), kNormWeight: floats([d], 3), kNormBias: floats([d], 4, 0.1), weightsProj: floats([h, dim], 5),
  });
  const ortWeights = Object.fromEntries(Object.entries(weights).map(([n, v]) => [n, asOrt(v)])) as Record<keyof IndexerWeights, ort.Tensor>;
  const x = floats([1, 5, dim], 6), qr = floats([1, 5, qRank], 7);
  const opts = { ropeDim: 8, topK: 3 };
  assertSameBits(await pool.lightningIndexer(ortWeights, { x: asOrt(x), qr: asTf(qr) }, { ...opts, output: ort }), lightningIndexer(weights, { x, qr }, opts), 'lightningIndexer');
  const options = { batch: 1, indexerDim: d, kvDim: dqk, keyForm: 'float32', capacity: 16, shared: true } as DsaCacheOptions;
  const mine = createDsaCache(options), twin = createDsaCache(options);
  const step = { x: floats([1, 1, dim], 8), qr: floats([1, 1, qRank], 9), q: floats([1, hq, dqk], 10), kv: floats([1, 1, dqk], 11) };
  const got = await pool.decodeStep(ortWeights, mine, { x: asOrt(step.x), qr: asOrt(step.qr), q: asTf(step.q), kv: asOrt(step.kv) }, { ...opts, output: ort });
  assertSameBits(got, decodeStep(weights, twin, step, opts), 'decodeStep');
  assertSameBits(mine.kv, twin.kv, 'the caches');
});

test('pool: a wrong dtype or output rejects by name, nothing runs', async () => {
  await assert.rejects(pool.topk(asOrt(ints([1, 2], [1, 1, 2])), 1), /^TypeError: scores: expected dtype float32, got an ort\.Tensor of type 'int32'$/);
  await assert.rejects(pool.topk(asOrt(floats([1, 1, 2], 1)), 1, { output: tf.Tensor } as never), /^TypeError: output: expected the onnxruntime module/);
});
