// Every public function family with ort and tf tensors in and, with
// `output`, out: equal to the { data, shape } path bit for bit (property
// tests over random shapes), no copy where promised, dtype errors named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { generateMask, maskFromThreshold, combineMasks, causalMask, windowMask } from '../../src/mask/masks.js';
import { verifyMask } from '../../src/mask/verify.js';
import { denseAttention } from '../../src/attention/dense.js';
import { sparseAttention } from '../../src/attention/sparse.js';
import { dsaForward, dsaForwardDense } from '../../src/attention/forward.js';
import { topk } from '../../src/topk/topk.js';
import { indexerScores } from '../../src/indexer/scores.js';
import { lightningIndexer, shareWeights } from '../../src/indexer/module.js';
import { quantizeKeys, quantizeKeysFp8 } from '../../src/indexer/quantized-keys.js';
import { decodeStep, prefill } from '../../src/cache/step.js';
import { pagedSlots } from '../../src/cache/slots.js';
import { createDsaCache, DsaCache } from '../../src/cache/cache.js';
import { encodeNpy } from '../../src/io/npy.js';
import { linear } from '../../src/weights/linear.js';
import { quantizeWeightFp8, shareWeight } from '../../src/weights/weight.js';
import { compareSelections } from '../../src/compare/selections.js';
import * as eco from '../../src/interop/index.js';
import type { Tensor } from '../../src/tensor.js';
import type { IndexerWeights } from '../../src/indexer/module.js';
import type { DsaCacheOptions } from '../../src/cache/cache.js';
import { asOrt, asOrtInt64, asTf, assertSameBits, floats, ort, plainOf, tensorsOf, tf, type F } from './runtimes.js';

/** The functions as their areas export them: the reference every ecosystem call is compared with. */
const plain = {
  generateMask, maskFromThreshold, combineMasks, causalMask, windowMask, verifyMask, denseAttention, sparseAttention, dsaForward, dsaForwardDense,
  topk, indexerScores, lightningIndexer, shareWeights, quantizeKeys, quantizeKeysFp8, decodeStep, prefill, pagedSlots, createDsaCache, DsaCache, encodeNpy,
  linear, shareWeight, quantizeWeightFp8, compareSelections,
};

const ints = (values: number[], shape: number[]): Tensor<Int32Array> => ({ data: Int32Array.from(values), shape });

/** Random top-k style indices [b, t, k] in [-1, s) (-1: an empty slot). */
function indicesOf(b: number, t: number, k: number, s: number, seed: number): Tensor<Int32Array> {
  const { data } = floats([b, t, k], seed);
  return { data: Int32Array.from(data, (u) => Math.floor(((u + 1) / 2) * (s + 1)) - 1), shape: [b, t, k] };
}

function kinds(x: unknown): string[] {
  return tensorsOf(x).map((e) => `${e.path}:${e.kind}:${e.dtype}`);
}

test('masks: generateMask, maskFromThreshold, combineMasks from ort and tf tensors equal the plain path, in every form', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 4, max: 40 }), fc.integer({ min: 1, max: 5 }), fc.integer(), fc.constantFrom('additive', 'bool', 'bits'), (b, t, s, k, seed, form) => {
      const idx = indicesOf(b, t, k, s, seed);
      const opts = { form, outOfRange: 'skip', seqLens: Int32Array.from({ length: b }, () => s) } as const;
      const want = plain.generateMask(idx, s, opts);
      assertSameBits(eco.generateMask(asOrt(idx), s, { ...opts, seqLens: asOrt({ data: opts.seqLens, shape: [b] }) }), want, 'ort int32');
      assertSameBits(eco.generateMask(asOrtInt64(idx), s, opts), want, 'ort int64');
      assertSameBits(eco.generateMask(asTf(idx), s, opts), want, 'tf int32');
      const scores = floats([b, t, s], seed + 1);
      const top = plain.topk(scores, Math.min(k, s));
      const wantThreshold = plain.maskFromThreshold(scores, top.values, { form });
      assertSameBits(eco.maskFromThreshold(asTf(scores), asOrt(top.values), { form }), wantThreshold, 'maskFromThreshold');
      assertSameBits(eco.combineMasks(asOrt(want as Tensor, form === 'bool' ? 'bool' : undefined), asOrt(wantThreshold as Tensor)), plain.combineMasks(want, wantThreshold), 'combineMasks');
    }),
    { numRuns: 60 },
  );
});

test('masks: output gives each form in the runtime\'s dtype (tfjs has no uint32: bit masks stay { data, shape })', () => {
  const idx = ints([0, 2, 1, 1], [1, 2, 2]);
  assert.deepEqual(kinds(eco.generateMask(idx, 3, { output: ort })), [':ort:float32']);
  assert.deepEqual(kinds(eco.generateMask(idx, 3, { form: 'bool', output: ort })), [':ort:bool']);
  assert.deepEqual(kinds(eco.generateMask(idx, 3, { form: 'bits', output: ort })), [':ort:uint32']);
  const boolTf = eco.generateMask(idx, 3, { form: 'bool', output: tf }) as tf.Tensor;
  assert.deepEqual(kinds(boolTf), [':tf:bool']);
  assert.deepEqual(Array.from(boolTf.dataSync()), [1, 0, 1, 0, 1, 0]);
  assert.deepEqual(kinds(eco.generateMask(idx, 3, { form: 'bits', output: tf })), [':plain:Uint32Array']);
  // causalMask and windowMask take no tensor but give one.
  assertSameBits(eco.causalMask(1, 2, 4, 1, 'bool', { output: ort }), plain.causalMask(1, 2, 4, 1, 'bool'));
  const window = { start: Int32Array.of(0, 1), end: Int32Array.of(2, 4) };
  const w = <tf.Tensor>eco.windowMask(1, 2, 4, { window: { start: asOrt({ data: window.start, shape: [2] }), end: asTf({ data: window.end, shape: [2] }) } }, 'additive', { output: tf });
  assert.deepEqual(kinds(w), [':tf:float32']);
  assertSameBits(w, plain.windowMask(1, 2, 4, { window }, 'additive'));
  tf.dispose([boolTf, w]);
});

test('verifyMask takes ort/tf masks and int64 indices; it returns no tensor, so output is refused by name', () => {
  const idx = ints([0, 2, 1, 1], [1, 2, 2]);
  const mask = plain.generateMask(idx, 3, { form: 'bool' });
  assert.equal(eco.verifyMask(asOrt(mask, 'bool'), asOrtInt64(idx), 3), null);
  assert.equal(eco.verifyMask(asTf(mask), asTf(idx), 3), null);
  const wrong = { data: Uint8Array.of(1, 1, 1, 0, 1, 0), shape: [1, 2, 3] };
  assert.deepEqual(eco.verifyMask(asOrt(wrong, 'bool'), asOrtInt64(idx), 3), plain.verifyMask(wrong, idx, 3));
  assert.throws(() => eco.verifyMask(asOrt(mask, 'bool'), idx, 3, { output: ort } as never), (e: Error) => e instanceof TypeError && /^output: verifyMask returns no tensors/.test(e.message));
});

test('topk: ort and tf scores (and masks) equal the plain path bit for bit; output: ort and tf', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 20 }), fc.integer(), fc.boolean(), (b, t, s, k, seed, masked) => {
      const scores = floats([b, t, s], seed);
      // Ties: round half the rows to a few levels.
      if (seed % 2 === 0) for (let i = 0; i < scores.data.length; i++) scores.data[i] = Math.round(scores.data[i] * 2);
      const mask = plain.causalMask(b, t, s, s - t, 'bool') as Tensor<Uint8Array>;
      const opts = masked ? { mask } : {};
      const want = plain.topk(scores, k, opts);
      const fromOrt = eco.topk(asOrt(scores), k, masked ? { mask: asOrt(mask, 'bool'), output: ort } : { output: ort });
      assert.deepEqual(kinds(fromOrt), ['values:ort:float32', 'indices:ort:int32']);
      assertSameBits(fromOrt, want, 'ort');
      const fromTf = eco.topk(asTf(scores), k, masked ? { mask: asTf(mask), output: tf } : { output: tf });
      assert.deepEqual(kinds(fromTf), ['values:tf:float32', 'indices:tf:int32']);
      assertSameBits(fromTf, want, 'tf');
      tf.dispose([fromTf.values, fromTf.indices]);
    }),
    { numRuns: 80 },
  );
});

test('results wrap the arrays the function made (no copy out): ort and tfjs cpu', () => {
  const scores = floats([1, 2, 16], 3);
  const out = { values: new Float32Array(8), indices: new Int32Array(8) };
  const r = eco.topk(asOrt(scores), 4, { out, output: ort });
  assert.equal(r.values.data, out.values, 'the ort tensor is over the caller\'s out');
  assert.equal(r.indices.data, out.indices);
  const t = eco.topk(asTf(scores), 4, { out, output: tf });
  assert.equal(t.values.dataSync(), out.values, 'the tf tensor adopts the array (cpu backend)');
  tf.dispose([t.values, t.indices]);
});

test('indexerScores and quantizeKeys: ort/tf q, k, w; quantized keys given back as ort tensors; paged with an int64 block table', () => {
  const [b, t, s, h, d] = [2, 3, 8, 2, 16];
  const q = floats([b, t, h, d], 1), k = floats([b, s, d], 2), w = floats([b, t, h], 3);
  const opts = { causalOffset: s - t };
  assertSameBits(eco.indexerScores(asOrt(q), asOrt(k), asTf(w), opts), plain.indexerScores(q, k, w, opts), 'float32');
  const qk = eco.quantizeKeys(asOrt(k), { output: ort });
  assert.deepEqual(kinds(qk), ['values:ort:int8', 'scales:ort:float32']);
  assertSameBits(qk, plain.quantizeKeys(k));
  const int8 = { ...opts, precision: 'int8' as const };
  assertSameBits(eco.indexerScores(asOrt(q), qk, asOrt(w), { ...int8, output: ort }), plain.indexerScores(q, plain.quantizeKeys(k), w, int8), 'int8 keys from ort');
  // tfjs has no int8: quantized keys stay { data, shape }, the scales become a tf tensor.
  assert.deepEqual(kinds(eco.quantizeKeys(asTf(k), { output: tf })), ['values:plain:Int8Array', 'scales:tf:float32']);
  const fp8 = eco.quantizeKeysFp8(asOrt(k));
  assertSameBits(fp8, plain.quantizeKeysFp8(k));
  assertSameBits(eco.indexerScores(asOrt(q), { ...fp8, data: asOrt({ data: fp8.data, shape: [fp8.data.length] }) }, asOrt(w), { ...opts, precision: 'fp8' }), plain.indexerScores(q, fp8, w, { ...opts, precision: 'fp8' }), 'fp8 bytes from ort');
  assert.throws(() => eco.quantizeKeysFp8(asOrt(k), { output: ort } as never), /^TypeError: output: quantizeKeysFp8 returns no tensors/);
  // Paged: 4 pages of 4 tokens, each sequence's pages listed in an int64 table (as an ONNX graph gives it).
  const pages = floats([4, 4, d], 7);
  const blockTable = ints([2, 0, 3, 1], [2, 2]);
  const paged = { seqLens: Int32Array.of(8, 5), blockTable };
  const q1 = floats([2, 1, h, d], 8), w1 = floats([2, 1, h], 9);
  assertSameBits(
    eco.indexerScores(asOrt(q1), asOrt(pages), asOrt(w1), { seqLens: asOrtInt64({ data: paged.seqLens, shape: [2] }), blockTable: asOrtInt64(blockTable), output: tf }),
    plain.indexerScores(q1, pages, w1, paged),
    'paged',
  );
});

const [dim, qRank, h, d, hq, dqk, dV] = [32, 24, 4, 16, 4, 24, 16];
const weights: IndexerWeights = {
  wqB: floats([h * d, qRank], 11, 0.3), wk: floats([d, dim], 12, 0.3), kNormWeight: floats([d], 13), kNormBias: floats([d], 14, 0.1), weightsProj: floats([h, dim], 15),
};
const ortWeights = Object.fromEntries(Object.entries(weights).map(([k, v]) => [k, asOrt(v)])) as Record<keyof IndexerWeights, ort.Tensor>;

test('lightningIndexer: ort weights and inputs; keys returned as ort go back in as the next call\'s kCache', () => {
  const opts = { ropeDim: 8, topK: 4, maskForm: 'bool' as const };
  const x = floats([1, 6, dim], 20), qr = floats([1, 6, qRank], 21);
  const want = plain.lightningIndexer(weights, { x, qr }, opts);
  const got = eco.lightningIndexer(ortWeights, { x: asOrt(x), qr: asTf(qr) }, { ...opts, output: ort });
  assert.deepEqual(kinds(got), ['scores:ort:float32', 'values:ort:float32', 'indices:ort:int32', 'keys:ort:float32', 'mask:ort:bool']);
  assertSameBits(got, want);
  const x2 = floats([1, 2, dim], 22), qr2 = floats([1, 2, qRank], 23);
  assertSameBits(
    eco.lightningIndexer(ortWeights, { x: asOrt(x2), qr: asOrt(qr2), kCache: got.keys }, opts),
    plain.lightningIndexer(weights, { x: x2, qr: qr2, kCache: want.keys }, opts),
    'second call over the ort keys',
  );
  // A wrong dtype deep inside the inputs is named by its path.
  assert.throws(() => eco.lightningIndexer(ortWeights, { x: asOrt(x), qr: asOrt({ data: new Int32Array(qr.data.length), shape: qr.shape }) }, opts), (e: Error) => e instanceof TypeError && /^inputs\.qr: expected dtype float32, got an ort\.Tensor of type 'int32'$/.test(e.message));
  assert.throws(() => eco.lightningIndexer({ ...ortWeights, wk: asTf({ data: new Int32Array(d * dim), shape: [d, dim] }) }, { x, qr }, opts), /^TypeError: weights\.wk: expected dtype float32, got a tf\.Tensor of dtype 'int32'$/);
});

test('sparseAttention and denseAttention: ort/tf q, kv, int64 indices, attnSink and topkLength as rank-1 tensors', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 8 }), fc.integer(), (t, s, k, seed) => {
      const q = floats([t, hq, dqk], seed), kv = floats([s, 1, dqk], seed + 1);
      const indices = indicesOf(t, 1, k, s, seed + 2);
      indices.shape = [t, 1, k];
      const attnSink = floats([hq], seed + 3).data;
      const topkLength = Int32Array.from({ length: t }, (_, r) => (r * 3) % (k + 1));
      const opts = { dV, attnSink, topkLength };
      const want = plain.sparseAttention(q, kv, indices, opts);
      const got = eco.sparseAttention(asOrt(q), asTf(kv), asOrtInt64(indices), { dV, attnSink: asOrt({ data: attnSink, shape: [hq] }), topkLength: asOrtInt64({ data: topkLength, shape: [t] }), output: tf });
      assert.deepEqual(kinds(got), ['out:tf:float32', 'lse:tf:float32', 'maxLogits:tf:float32']);
      assertSameBits(got, want);
      tf.dispose([got.out, got.lse, got.maxLogits]);
      const mask = plain.generateMask({ data: indices.data, shape: [1, t, k] }, s, { form: 'bool', outOfRange: 'skip' });
      mask.shape = [t, 1, s];
      assertSameBits(eco.denseAttention(asOrt(q), asOrt(kv), asTf(mask as Tensor), { dV, output: ort }), plain.denseAttention(q, kv, mask, { dV }), 'dense');
    }),
    { numRuns: 40 },
  );
  const q = floats([1, hq, dqk], 1), kv = floats([3, 1, dqk], 2);
  assert.throws(() => eco.sparseAttention(asOrt(q), asOrt(kv), asOrt({ data: new Float32Array(2), shape: [1, 1, 2] })), /^TypeError: indices: expected dtype int32 \(or int64, range-checked\), got an ort\.Tensor of type 'float32'$/);
  assert.throws(() => eco.sparseAttention(asOrt(q), asOrt(kv), ints([0], [1, 1, 1]), { attnSink: asOrt({ data: new Float32Array(hq), shape: [1, hq] }) }), (e: Error) => e instanceof RangeError && /^attnSink: expected a rank-1 tensor \(its data is the array\), got shape \[1, 4\]$/.test(e.message));
});

test('dsaForward and dsaForwardDense: weights, inputs and attention as ort tensors; results nested as ort tensors', () => {
  const x = floats([1, 5, dim], 30), qr = floats([1, 5, qRank], 31), q = floats([5, hq, dqk], 32), kv = floats([5, 1, dqk], 33);
  const opts = { indexer: { ropeDim: 8, topK: 3 }, dV };
  const want = plain.dsaForward(weights, { x, qr }, { q, kv }, opts);
  const got = eco.dsaForward(ortWeights, { x: asOrt(x), qr: asOrt(qr) }, { q: asOrt(q), kv: asTf(kv) }, { ...opts, output: ort });
  assert.deepEqual(kinds(got), ['out:ort:float32', 'lse:ort:float32', 'indexer.scores:ort:float32', 'indexer.values:ort:float32', 'indexer.indices:ort:int32', 'indexer.keys:ort:float32']);
  assertSameBits(got, want);
  const dense = eco.dsaForwardDense(ortWeights, { x: asOrt(x), qr: asOrt(qr) }, { q: asOrt(q), kv: asOrt(kv) }, { ...opts, output: ort });
  assertSameBits(dense, plain.dsaForwardDense(weights, { x, qr }, { q, kv }, opts));
  assert.equal(tensorsOf(dense).find((e) => e.path === 'mask')?.kind, 'ort');
});

test('the decode loop: createDsaCache\'s append, decodeStep and prefill with ort inputs equal the plain path on a twin cache', () => {
  const options = { batch: 2, indexerDim: d, kvDim: dqk, keyForm: 'int8', capacity: 32 } as DsaCacheOptions;
  const mine = eco.createDsaCache(options), twin = plain.createDsaCache(options);
  assert.ok(mine instanceof plain.DsaCache, 'the same class: the plain decodeStep takes it');
  const keys = floats([3, d], 40), rows = floats([3, 1, dqk], 41);
  mine.append(0, { keys: asOrt(keys), kv: asTf(rows) });
  twin.append(0, { keys, kv: rows });
  assertSameBits(mine.kv, twin.kv, 'appended kv rows');
  const T = 4;
  const seq = { x: floats([1, T, dim], 42), qr: floats([1, T, qRank], 43), q: floats([T, hq, dqk], 44), kv: floats([T, 1, dqk], 45) };
  const opts = { ropeDim: 8, topK: 3, dV };
  const ortSeq = { x: asOrt(seq.x), qr: asOrt(seq.qr), q: asOrt(seq.q), kv: asOrt(seq.kv) };
  assertSameBits(eco.prefill(ortWeights, mine, 1, ortSeq, { ...opts, output: ort }), plain.prefill(weights, twin, 1, seq, opts), 'prefill');
  const step = { x: floats([2, 1, dim], 46), qr: floats([2, 1, qRank], 47), q: floats([2, hq, dqk], 48), kv: floats([2, 1, dqk], 49), seqs: Int32Array.of(0, 1) };
  const got = eco.decodeStep(ortWeights, mine, { x: asOrt(step.x), qr: asTf(step.qr), q: asOrt(step.q), kv: asOrt(step.kv), seqs: asOrtInt64({ data: step.seqs, shape: [2] }) }, { ...opts, output: tf });
  assert.deepEqual(kinds(got), ['out:tf:float32', 'lse:tf:float32', 'indices:tf:int32']);
  assertSameBits(got, plain.decodeStep(weights, twin, step, opts), 'decodeStep');
  assertSameBits(mine.kv, twin.kv, 'caches after the step');
  assert.throws(() => mine.append(0, { keys: asOrt({ data: new Int32Array(d), shape: [1, d] }), kv: asOrt(floats([1, 1, dqk], 1)) }), /^TypeError: inputs\.keys: expected dtype float32, got an ort\.Tensor of type 'int32'$/);
});

test('pagedSlots: int64 indices, block table and seqLens equal the plain path; output ort', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 8 }), fc.integer(), (b, t, k, pageSize, seed) => {
      const maxBlocks = 3;
      const seqLens = Int32Array.from({ length: b }, (_, i) => Math.max(t, ((seed >>> i) & 7) % (maxBlocks * pageSize) + 1));
      const idx = indicesOf(b, t, k, 1, seed);
      for (let r = 0; r < b * t; r++) for (let j = 0; j < k; j++) {
        const bi = Math.floor(r / t);
        if (idx.data[r * k + j] >= 0) idx.data[r * k + j] = (seed + r + j) % seqLens[bi];
      }
      const blockTable = ints(Array.from({ length: b * maxBlocks }, (_, i) => (i * 7 + seed) & 15), [b, maxBlocks]);
      const want = plain.pagedSlots(idx, blockTable, pageSize, { seqLens });
      const got = eco.pagedSlots(asOrtInt64(idx), asOrtInt64(blockTable), pageSize, { seqLens: asOrt({ data: seqLens, shape: [b] }), output: ort });
      assert.deepEqual(kinds(got), [':ort:int32']);
      assertSameBits(got, want);
    }),
    { numRuns: 60 },
  );
});

test('encodeNpy and shareWeights take ort tensors', () => {
  const t = floats([2, 3], 1);
  assert.deepEqual(eco.encodeNpy(asOrt(t)), plain.encodeNpy(t));
  const idx = ints([1, -2], [2]);
  assert.deepEqual(eco.encodeNpy(asOrtInt64(idx), 'int64'), plain.encodeNpy({ data: BigInt64Array.of(1n, -2n), shape: [2] }, 'int64'));
  const shared = eco.shareWeights(ortWeights);
  assertSameBits(shared, weights);
});

test('the wrapper: output is stripped before the function sees its options; nothing is copied or rebuilt without ecosystem tensors', async () => {
  const { withInterop } = await import('../../src/interop/wrap.js');
  const { SIGNATURES } = await import('../../src/interop/signatures.js');
  let seen: unknown[] = [];
  const spy = (...args: unknown[]) => {
    seen = args;
    return { values: { data: new Float32Array(1), shape: [1] }, indices: { data: new Int32Array(1), shape: [1] } };
  };
  const wrapped = withInterop('topk', spy as never, SIGNATURES.topk) as unknown as (...args: unknown[]) => unknown;
  const scores = floats([1, 1, 2], 1);
  const opts = { sorted: true, mask: undefined };
  wrapped(scores, 1, opts);
  assert.equal(seen[0], scores, 'a plain tensor passes as the same object');
  assert.equal(seen[2], opts, 'options without ecosystem tensors or output pass as the same object');
  wrapped(scores, 1, { sorted: false, output: ort });
  assert.deepEqual(seen[2], { sorted: false }, 'output removed, every other option kept');
  assert.equal(Object.hasOwn(seen[2] as object, 'output'), false);
  wrapped(asOrt(scores), 1, { mask: asTf(plain.causalMask(1, 1, 2, 0, 'bool') as Tensor) });
  assert.equal((seen[0] as Tensor).data, scores.data, 'an ort tensor arrives as { data, shape } over its own array');
  assert.ok((seen[2] as unknown as { mask: Tensor }).mask.data instanceof Uint8Array, 'a tf bool mask arrives as its Uint8Array');
  wrapped(scores, 1, { output: undefined });
  assert.deepEqual(seen[2], {}, 'output: undefined is the plain result, and removed too');
  assert.throws(() => wrapped(scores, 1, { output: 'ort' }), (e: Error) => e instanceof TypeError && /^output: expected the onnxruntime module/.test(e.message));
  // An ecosystem tensor where no tensor belongs goes to the function as it is (its own edge names it).
  assert.throws(() => plainOf(eco.topk(floats([1, 1, 2], 1), asOrt(ints([1], [1])) as never)), /^RangeError: k: expected a positive integer, got Tensor$/);
});

test('linear, shareWeight, quantizeWeightFp8: x as ort/tf, a stored weight\'s data and scale as tensors of any rank', () => {
  const x = floats([2, 3, 16], 60), w = floats([8, 16], 61);
  const f32 = { format: 'float32' as const, shape: [8, 16] as [number, number], data: w.data };
  assertSameBits(eco.linear(asOrt(x), { ...f32, data: asOrt(w) }, { output: ort }), plain.linear(x, f32), 'float32 weight');
  // linear refuses options it does not know: the wrapper's output never reaches it.
  assert.throws(() => plain.linear(x, f32, { output: ort } as never), /unknown option 'output'/);
  const fp8 = plain.quantizeWeightFp8(w);
  assertSameBits(eco.quantizeWeightFp8(asTf(w)), fp8, 'quantizeWeightFp8 from tf');
  const fp8Eco = { ...fp8, data: asOrt({ data: fp8.data, shape: [8, 16] }, 'uint8'), scale: asOrt({ data: fp8.scale, shape: [1, 1] }) };
  assertSameBits(eco.linear(asTf(x), fp8Eco, { output: tf }), plain.linear(x, fp8), 'fp8 weight');
  assertSameBits(eco.shareWeight(fp8Eco), fp8, 'shareWeight');
});

test('compareSelections: int64 and int32 index sets and float scores as ort/tf tensors; it returns no tensor', () => {
  const scores = floats([1, 3, 20], 70);
  const a = plain.topk(scores, 4).indices;
  const b = { data: a.data.slice(), shape: a.shape };
  b.data[1] = b.data[1] === 0 ? 1 : 0;
  const want = plain.compareSelections(a, b, { scores });
  assertSameBits(eco.compareSelections(asOrtInt64(a), asTf(b), { scores: asOrt(scores) }), want);
  assertSameBits(eco.compareSelections(asOrt(a), asOrt(b), { scores: asOrt({ data: Float64Array.from(scores.data), shape: scores.shape }, 'float64') }), plain.compareSelections(a, b, { scores: { data: Float64Array.from(scores.data), shape: scores.shape } }));
  assert.throws(() => eco.compareSelections(asOrt(scores), b), /^TypeError: a: expected dtype int32 or int64, got an ort\.Tensor of type 'float32'$/);
  assert.throws(() => eco.compareSelections(a, b, { output: ort } as never), /^TypeError: output: compareSelections returns no tensors/);
});
