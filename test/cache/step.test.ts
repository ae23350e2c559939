// decodeStep and prefill through a DSA cache: each step equals dsaForward
// over the keys and kv rows so far (bit for bit, every key form), a batch of
// sequences of different lengths equals each alone, paged equals contiguous,
// prefill in blocks equals one step, the pool equals one thread, and a
// failed step leaves the cache unchanged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDsaCache, type DsaCacheOptions } from '../../src/cache/cache.js';
import { decodeStep, prefill } from '../../src/cache/step.js';
import { dsaForward } from '../../src/attention/forward.js';
import { lightningIndexer, shareWeights, type IndexerWeights } from '../../src/indexer/module.js';
import { createPool } from '../../src/pool/index.js';
import type { Tensor } from '../../src/tensor.js';
import { rng } from '../../src/cli/demo-data.js';
import { initSimd, relaxedSimdSupported } from '../../src/simd/index.js';

type F = Tensor<Float32Array>;

function floats(shape: number[], seed: number, scale = 1): F {
  const next = rng(seed);
  return { data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (next() * 2 - 1) * scale), shape };
}

const dim = 32, qRank = 24, h = 4, d = 16, hq = 4, dqk = 24, dV = 16;
const weights: IndexerWeights = {
  wqB: floats([h * d, qRank], 1, 0.3),
  wk: floats([d, dim], 2, 0.3),
  kNormWeight: floats([d], 3),
  kNormBias: floats([d], 4, 0.1),
  weightsProj: floats([h, dim], 5),
};
const indexerOpts = { ropeDim: 8, topK: 6 };

/** A sequence of T tokens: hidden states, low-rank queries, attention queries and kv rows. */
function sequence(T: number, seed: number) {
  return { x: floats([1, T, dim], seed), qr: floats([1, T, qRank], seed + 1), q: floats([T, hq, dqk], seed + 2, 2), kv: floats([T, 1, dqk], seed + 3, 2) };
}
type Seq = ReturnType<typeof sequence>;

function rows(v: F, from: number, to: number, axis0 = false): F {
  if (axis0) {
    const w = v.data.length / v.shape[0];
    return { data: v.data.slice(from * w, to * w), shape: [to - from, ...v.shape.slice(1)] };
  }
  const w = v.shape[2];
  return { data: v.data.slice(from * w, to * w), shape: [1, to - from, w] };
}

/** dsaForward for tokens [from, to) of a sequence, with the float32 keys of tokens [0, from) as its cache. */
function forward(seq: Seq, from: number, to: number, precision: (typeof FORMS)[number]) {
  const hadamard = precision === 'fp8';
  const kCache = from > 0 ? (lightningIndexer(weights, { x: rows(seq.x, 0, from), qr: rows(seq.qr, 0, from) }, { ...indexerOpts, precision: 'float32' }).keys as F) : undefined;
  return dsaForward(
    weights,
    { x: rows(seq.x, from, to), qr: rows(seq.qr, from, to), ...(kCache ? { kCache } : {}) },
    { q: rows(seq.q, from, to, true), kv: rows(seq.kv, 0, to, true) },
    { indexer: { ...indexerOpts, precision, hadamard }, dV },
  );
}

function stepInputs(seq: Seq, from: number, to: number) {
  return { x: rows(seq.x, from, to), qr: rows(seq.qr, from, to), q: rows(seq.q, from, to, true), kv: rows(seq.kv, from, to, true) };
}

/** The cache's precisions: its key forms, and 'int7' queries over int8 keys. */
const FORMS = ['float32', 'int8', 'int7', 'fp8'] as const;
const cacheOf = (precision: (typeof FORMS)[number], layout: Partial<DsaCacheOptions>) =>
  createDsaCache({ batch: 3, indexerDim: d, kvDim: dqk, keyForm: precision === 'int7' ? 'int8' : precision, precision, ...(layout.pages ? layout : { capacity: 64 }), ...layout } as DsaCacheOptions);

for (const keyForm of FORMS) for (const layout of [{ capacity: 64 }, { pages: 20, pageSize: 4 }]) {
  const name = `${keyForm}, ${'capacity' in layout ? 'contiguous' : 'paged'}`;
  test(`${name}: a prefill then decode steps equal dsaForward over the tokens so far, bit for bit`, () => {
    const seq = sequence(14, 10);
    const cache = cacheOf(keyForm, layout);
    const first = prefill(weights, cache, 1, stepInputs(seq, 0, 9), { ...indexerOpts, dV, queryBlock: 4 });
    const want = forward(seq, 0, 9, keyForm);
    assert.deepEqual(first.out.data, want.out.data, 'prefill out');
    assert.deepEqual(first.lse.data, want.lse.data, 'prefill lse');
    for (let p = 9; p < 14; p++) {
      const step = decodeStep(weights, cache, { ...stepInputs(seq, p, p + 1), seqs: Int32Array.of(1) }, { ...indexerOpts, dV });
      const ref = forward(seq, p, p + 1, keyForm);
      assert.deepEqual(step.indices.data, ref.indexer.indices.data, `position ${p}: indices`);
      assert.deepEqual(step.out.data, ref.out.data, `position ${p}: out`);
      assert.deepEqual(step.lse.data, ref.lse.data, `position ${p}: lse`);
    }
    assert.equal(cache.length(1), 14);
    assert.equal(cache.length(0), 0);
  });
}

test('a batch of sequences of different lengths in one step equals each sequence alone; paged equals contiguous', () => {
  const lengths = [3, 11, 7];
  const seqs = lengths.map((T, i) => sequence(T + 1, 40 + 10 * i));
  for (const keyForm of FORMS) {
    const outs: Float32Array[] = [];
    for (const layout of [{ capacity: 16 }, { pages: 12, pageSize: 4 }]) {
      const cache = cacheOf(keyForm, layout);
      lengths.forEach((T, i) => prefill(weights, cache, i, stepInputs(seqs[i], 0, T), { ...indexerOpts, dV }));
      // One new token for each of the three sequences, given in the order 2, 0, 1.
      const order = [2, 0, 1];
      const cat = (pick: (s: Seq, i: number) => F, axis0: boolean) => {
        const parts = order.map((i) => pick(seqs[i], i));
        const data = new Float32Array(parts.reduce((n, p) => n + p.data.length, 0));
        let at = 0;
        for (const p of parts) (data.set(p.data, at), (at += p.data.length));
        return { data, shape: axis0 ? [order.length, ...parts[0].shape.slice(1)] : [order.length, 1, parts[0].shape[2]] };
      };
      const step = decodeStep(weights, cache, {
        x: cat((s, i) => rows(s.x, lengths[i], lengths[i] + 1), false),
        qr: cat((s, i) => rows(s.qr, lengths[i], lengths[i] + 1), false),
        q: cat((s, i) => rows(s.q, lengths[i], lengths[i] + 1, true), true),
        kv: cat((s, i) => rows(s.kv, lengths[i], lengths[i] + 1, true), true),
        seqs: Int32Array.from(order),
      }, { ...indexerOpts, dV });
      order.forEach((i, row) => {
        const ref = forward(seqs[i], lengths[i], lengths[i] + 1, keyForm);
        assert.deepEqual(step.out.data.subarray(row * hq * dV, (row + 1) * hq * dV), ref.out.data, `${keyForm}: sequence ${i} out`);
        // The step always returns topK slots; dsaForward returns min(topK, s), the rest being -1 here.
        const k = ref.indexer.indices.data.length;
        assert.deepEqual(step.indices.data.subarray(row * 6, row * 6 + k), ref.indexer.indices.data, `${keyForm}: sequence ${i} indices`);
        assert.ok(step.indices.data.subarray(row * 6 + k, (row + 1) * 6).every((j) => j === -1), `${keyForm}: sequence ${i} padding`);
      });
      outs.push(step.out.data);
    }
    assert.deepEqual(outs[1], outs[0], `${keyForm}: paged = contiguous`);
  }
});

test('prefill in blocks equals one step of all its tokens; progress is reported', () => {
  const seq = sequence(21, 70);
  const whole = cacheOf('fp8', { capacity: 32 }), blocks = cacheOf('fp8', { capacity: 32 });
  const one = decodeStep(weights, whole, { ...stepInputs(seq, 0, 21), seqs: Int32Array.of(0) }, { ...indexerOpts, dV });
  const seen: number[] = [];
  const many = prefill(weights, blocks, 0, stepInputs(seq, 0, 21), { ...indexerOpts, dV, queryBlock: 5, onProgress: (done) => seen.push(done) });
  assert.deepEqual(many.out.data, one.out.data);
  assert.deepEqual(many.lse.data, one.lse.data);
  assert.deepEqual(seen, [5, 10, 15, 20, 21]);
});

test('the pool: decodeStep and prefill are bit-identical to one thread and use the shared cache in place', async () => {
  const pool = createPool({ threads: 2 });
  try {
    const shared = shareWeights(weights);
    const seq = sequence(12, 80);
    for (const keyForm of FORMS) {
      const a = cacheOf(keyForm, { pages: 10, pageSize: 4 }), b = cacheOf(keyForm, { pages: 10, pageSize: 4 });
      const p1 = prefill(weights, a, 0, stepInputs(seq, 0, 10), { ...indexerOpts, dV, queryBlock: 3 });
      const p2 = await pool.prefill(shared, b, 0, stepInputs(seq, 0, 10), { ...indexerOpts, dV, queryBlock: 3 });
      assert.deepEqual(p2.out.data, p1.out.data, `${keyForm}: prefill`);
      for (let p = 10; p < 12; p++) {
        const s1 = decodeStep(weights, a, stepInputs(seq, p, p + 1), { ...indexerOpts, dV });
        const s2 = await pool.decodeStep(shared, b, stepInputs(seq, p, p + 1), { ...indexerOpts, dV });
        assert.deepEqual(s2.out.data, s1.out.data, `${keyForm}: step ${p} out`);
        assert.deepEqual(s2.indices.data, s1.indices.data, `${keyForm}: step ${p} indices`);
      }
      assert.deepEqual(b.kv.data, a.kv.data, `${keyForm}: the pool wrote the same kv pages`);
      assert.deepEqual([...b.lengths], [...a.lengths]);
    }
    const local = createDsaCache({ batch: 1, capacity: 8, indexerDim: d, kvDim: dqk, shared: false });
    await assert.rejects(pool.decodeStep(shared, local, stepInputs(seq, 0, 1)), /needs it in shared memory; create it with shared: true/);
  } finally {
    await pool.close();
  }
});

test('a failed step leaves the cache unchanged: NaN hidden states (fp8 keys), a full cache, bad shapes, two steps at once', async () => {
  const seq = sequence(6, 90);
  const cache = cacheOf('fp8', { capacity: 6 });
  prefill(weights, cache, 0, stepInputs(seq, 0, 4), { ...indexerOpts, dV });
  const snapshot = () => ({ lengths: [...cache.lengths], kv: cache.kv.data.slice(), keys: (cache.keys as { data: Uint8Array }).data.slice() });
  const before = snapshot();
  const nan = stepInputs(seq, 4, 5);
  nan.x.data[3] = NaN;
  assert.throws(() => decodeStep(weights, cache, nan, { ...indexerOpts, dV }), /keys: token 0, dim 0 is NaN; an fp8 cache quantizes keys/);
  assert.deepEqual(snapshot().lengths, before.lengths, 'lengths unchanged');
  assert.throws(() => decodeStep(weights, cache, stepInputs(seq, 4, 7 > 6 ? 6 : 7), { ...indexerOpts, dV, topK: 0 }), /topK: expected a positive integer/);
  assert.throws(() => prefill(weights, cache, 0, stepInputs(seq, 0, 3), { ...indexerOpts, dV }), /sequence 0 holds 4 of 6 tokens; 3 more do not fit/);
  assert.throws(() => decodeStep(weights, cache, { ...stepInputs(seq, 4, 5), kv: floats([1, 1, dqk + 1], 1) }, indexerOpts), /inputs\.kv dqk = 25 must equal the cache kvDim = 24/);
  assert.throws(() => decodeStep(weights, cache, { ...stepInputs(seq, 4, 5), seqs: Int32Array.of(5) }, indexerOpts), /seqs\[0\]: expected a sequence in \[0, 3\), got number 5/);
  assert.deepEqual(snapshot().lengths, before.lengths, 'lengths still unchanged');
  // Two pool steps at once on one cache: the second is refused, the first completes.
  const pool = createPool({ threads: 2 });
  try {
    const shared = shareWeights(weights);
    const first = pool.decodeStep(shared, cache, stepInputs(seq, 4, 5), { ...indexerOpts, dV });
    await assert.rejects(pool.decodeStep(shared, cache, stepInputs(seq, 5, 6), { ...indexerOpts, dV }), /a step is already running on this cache/);
    await first;
    assert.equal(cache.length(0), 5);
  } finally {
    await pool.close();
  }
});

/** Everything a cache holds, as bytes: lengths, free pages, the block table of used blocks, keys and kv pages. */
function cacheState(cache: ReturnType<typeof cacheOf>) {
  const keys = cache.keys as { data?: { buffer: ArrayBufferLike; byteOffset: number; byteLength: number }; values?: { data: Int8Array }; scales?: { data: Float32Array } };
  const bytes = (a: { buffer: ArrayBufferLike; byteOffset: number; byteLength: number }) => Array.from(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  const used: number[] = [];
  for (let seq = 0; seq < cache.batch; seq++) for (let blk = 0; blk < Math.ceil(cache.length(seq) / cache.pageSize); blk++) used.push(cache.blockTable.data[seq * cache.maxBlocks + blk]);
  return {
    lengths: [...cache.lengths], free: cache.freePages(), used, kv: bytes(cache.kv.data),
    keys: keys.data ? bytes(keys.data) : [...bytes(keys.values!.data), ...bytes(keys.scales!.data)],
  };
}

// Before: a NaN kv row was accepted and stored (every later step selecting it gave out 0, lse +Infinity),
// a float32 cache stored a NaN key, and a NaN query gave its head out 0, lse +Infinity without a word.
test('a non-finite kv row, key or query is refused by name, the cache unchanged: every key form and layout, decodeStep, prefill, the pool', async () => {
  const pool = createPool({ threads: 2 });
  try {
    const shared = shareWeights(weights);
    for (const keyForm of FORMS) for (const layout of [{ capacity: 16 }, { pages: 8, pageSize: 4 }]) {
      const name = `${keyForm}, ${'capacity' in layout ? 'contiguous' : 'paged'}`;
      const seq = sequence(10, 120);
      const cache = cacheOf(keyForm, layout), twin = cacheOf(keyForm, layout);
      for (const c of [cache, twin]) prefill(weights, c, 0, stepInputs(seq, 0, 4), { ...indexerOpts, dV });
      const before = cacheState(cache);
      const opts = { ...indexerOpts, dV };
      const spoilt = (from: number, to: number, tensor: 'x' | 'q' | 'kv', at: number, value: number) => {
        const inputs = stepInputs(seq, from, to);
        inputs[tensor].data[at] = value;
        return inputs;
      };
      // q [T, hq = 4, dqk = 24], kv [T, 1, 24]: element e of token p is at p * width + e.
      assert.throws(() => decodeStep(weights, cache, spoilt(4, 5, 'kv', 5, NaN), opts), {
        name: 'RangeError',
        message: /^inputs\.kv: token 0, head 0, dim 5 is NaN; the cache stores only finite kv rows, since a non-finite one would poison every later step that selects it \(nothing was appended\)$/,
      });
      assert.throws(() => decodeStep(weights, cache, spoilt(4, 5, 'q', 24 * 3 + 2, -Infinity), opts), {
        name: 'RangeError',
        message: /^inputs\.q: token 0, head 3, dim 2 is -Infinity; a step takes only finite queries \(nothing was appended\)$/,
      });
      const keyWhy = keyForm === 'float32' ? 'the cache stores only finite keys' : `an ${keyForm === 'int7' ? 'int8' : keyForm} cache quantizes keys`;
      assert.throws(() => decodeStep(weights, cache, spoilt(4, 5, 'x', 3, NaN), opts), new RegExp(`^RangeError: keys: token 0, dim 0 is NaN; ${keyWhy}`));
      // Two tokens a step, token 1's kv row and query both bad: the kv row is named (keys, then kv rows, then queries).
      const two = spoilt(4, 6, 'kv', 24 + 7, Infinity);
      two.q.data[96 + 1] = NaN;
      assert.throws(() => decodeStep(weights, cache, two, opts), /^RangeError: inputs\.kv: token 1, head 0, dim 7 is Infinity/);
      // A prefill checks its whole prompt first: a bad token in its last block leaves no block behind.
      assert.throws(() => prefill(weights, cache, 0, spoilt(4, 10, 'kv', 5 * 24 + 1, NaN), { ...opts, queryBlock: 2 }), /^RangeError: inputs\.kv: token 5, head 0, dim 1 is NaN/);
      assert.throws(() => prefill(weights, cache, 0, spoilt(4, 10, 'q', 4 * 96 + 50, Infinity), { ...opts, queryBlock: 2 }), /^RangeError: inputs\.q: token 4, head 2, dim 2 is Infinity/);
      // append: keys [n, d], kv [n, hkv, dqk].
      const keys = floats([2, d], 5), kv = floats([2, 1, dqk], 6);
      kv.data[dqk + 4] = NaN;
      assert.throws(() => cache.append(0, { keys, kv }), /^RangeError: kv: token 1, head 0, dim 4 is NaN; the cache stores only finite kv rows/);
      kv.data[dqk + 4] = 0;
      keys.data[d + 9] = -Infinity;
      assert.throws(() => cache.append(0, { keys, kv }), new RegExp(`^RangeError: keys: token 1, dim 9 is -Infinity; ${keyWhy}`));
      // On the pool (two tokens: the checks run on the workers).
      await assert.rejects(pool.decodeStep(shared, cache, spoilt(4, 6, 'q', 96 + 95, NaN), opts), /^RangeError: inputs\.q: token 1, head 3, dim 23 is NaN/);
      await assert.rejects(pool.decodeStep(shared, cache, spoilt(4, 6, 'kv', 30, NaN), opts), /^RangeError: inputs\.kv: token 1, head 0, dim 6 is NaN/);
      await assert.rejects(pool.prefill(shared, cache, 0, spoilt(4, 10, 'kv', 24 * 5, NaN), { ...opts, queryBlock: 2 }), /^RangeError: inputs\.kv: token 5, head 0, dim 0 is NaN/);
      assert.deepEqual(cacheState(cache), before, `${name}: the cache is unchanged`);
      // Nothing poisoned: the next steps equal those of a cache that never saw the bad calls.
      const a = prefill(weights, cache, 0, stepInputs(seq, 4, 10), { ...opts, queryBlock: 4 });
      const b = prefill(weights, twin, 0, stepInputs(seq, 4, 10), { ...opts, queryBlock: 4 });
      assert.deepEqual(a.out.data, b.out.data, `${name}: out after the refusals`);
      assert.ok(a.out.data.every(Number.isFinite) && a.lse.data.every(Number.isFinite), `${name}: finite out and lse`);
      assert.deepEqual(cacheState(cache), cacheState(twin));
    }
  } finally {
    await pool.close();
  }
});

test('int7 queries over an int8 cache (d = 16 and the d = 128 kernel): the relaxed and the baseline module give the same steps bit for bit, and the TypeScript kernels the same selections; the recall of int8 and int7 against float32 is reported', async () => {
  const builds: ('relaxed' | 'baseline')[] = relaxedSimdSupported() ? ['relaxed', 'baseline'] : ['baseline'];
  try {
    for (const dI of [16, 128]) {
      const hI = 8, T = 70;
      const w: IndexerWeights = { ...weights, wqB: floats([hI * dI, qRank], 11, 0.3), wk: floats([dI, dim], 12, 0.3), kNormWeight: floats([dI], 13), kNormBias: floats([dI], 14, 0.1), weightsProj: floats([hI, dim], 15) };
      const seq = sequence(T, 100 + dI);
      const run = (precision: 'int7' | 'int8' | 'float32', simd: boolean) => {
        const cache = createDsaCache({ batch: 1, capacity: T, indexerDim: dI, kvDim: dqk, keyForm: precision === 'int7' ? 'int8' : precision, precision });
        const opts = { ...indexerOpts, topK: 16, dV, simd };
        const first = prefill(w, cache, 0, stepInputs(seq, 0, T - 2), { ...opts, queryBlock: 32 });
        const steps = [T - 2, T - 1].map((p) => decodeStep(w, cache, stepInputs(seq, p, p + 1), opts));
        return { out: [first, ...steps].map((s) => Array.from(s.out.data)), indices: steps.map((s) => Array.from(s.indices.data)) };
      };
      // The selections equal the TypeScript kernels' (whose attention sums in another order); everything equals between modules.
      const reference = run('int7', false);
      const byBuild = [];
      for (const build of builds) {
        await initSimd({ relaxed: build === 'relaxed' });
        const got = run('int7', true);
        assert.deepEqual(got.indices, reference.indices, `d = ${dI}: int7 selections on the ${build} module`);
        byBuild.push(got);
      }
      for (const got of byBuild.slice(1)) assert.deepEqual(got, byBuild[0], `d = ${dI}: int7 steps, relaxed = baseline module`);
      // Recall@16 of the two decode steps' selections against float32's, int8's beside int7's.
      const exact = run('float32', true).indices, recall = (got: number[][]) => {
        let hit = 0, all = 0;
        got.forEach((row, i) => { const want = new Set(exact[i].filter((j) => j >= 0)); all += want.size; hit += row.filter((j) => want.has(j)).length; });
        return hit / all;
      };
      const r8 = recall(run('int8', true).indices), r7 = recall(reference.indices);
      assert.ok(r7 >= 0.75 && r8 >= 0.75, `d = ${dI}: recall@16 against float32: int8 ${r8}, int7 ${r7}`);
      console.log(`# d = ${dI}: recall@16 against float32: int8 ${r8.toFixed(3)}, int7 ${r7.toFixed(3)}`);
    }
  } finally {
    await initSimd({ relaxed: relaxedSimdSupported() });
  }
});
