import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lightningIndexer, type IndexerWeights } from '../../src/indexer/module.js';
import type { Tensor } from '../../src/tensor.js';
import { DEFAULT_MASK_VALUE } from '../../src/tensor.js';

type F = Tensor<Float32Array>;
/** The weights these tests build: every projection a float32 tensor. */
type FloatWeights = IndexerWeights & { wqB: F; wk: F; weightsProj: F };

function rand(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let x = (seed >>> 0) || 7;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    a[i] = ((x >>> 0) / 2 ** 32) * 2 - 1;
  }
  return a;
}
const tensor = (shape: number[], seed: number): F => ({ data: rand(shape.reduce((a, b) => a * b, 1), seed), shape });

/** Sylvester-order Hadamard matrix of size n (a power of 2), as nested arrays. */
function hadamardMatrix(n: number): number[][] {
  let m = [[1]];
  while (m.length < n) m = [...m.map((r) => [...r, ...r]), ...m.map((r) => [...r, ...r.map((v) => -v)])];
  return m;
}

/** The module step by step in float64, written as plainly as possible. */
function naive(W: FloatWeights, x: F, qr: F, kCache: F | undefined, topK: number, ropeDim: number, hadamard: boolean) {
  const [b, t, dim] = x.shape, qRank = qr.shape[2], h = W.weightsProj.shape[0], d = W.wk.shape[0];
  const sPast = kCache ? kCache.shape[1] : 0, s = sPast + t, half = ropeDim / 2;
  const linear = (v: ArrayLike<number>, at: number, n: number, Wt: Float32Array, o: number) => {
    let acc = 0;
    for (let e = 0; e < n; e++) acc += v[at + e] * Wt[o * n + e];
    return acc;
  };
  const ropeAndRotate = (v: number[], pos: number) => {
    const out = v.slice();
    for (let i = 0; i < half; i++) {
      const ang = pos * 10000 ** (-(2 * i) / ropeDim);
      out[i] = v[i] * Math.cos(ang) - v[i + half] * Math.sin(ang);
      out[i + half] = v[i] * Math.sin(ang) + v[i + half] * Math.cos(ang);
    }
    if (!hadamard) return out;
    const H = hadamardMatrix(d);
    return H.map((row) => row.reduce((acc, hv, e) => acc + hv * out[e], 0) / Math.sqrt(d));
  };
  const q: number[][][][] = [], keys: number[][][] = [], w: number[][][] = [];
  for (let bi = 0; bi < b; bi++) {
    q.push([]); w.push([]); keys.push([]);
    for (let j = 0; j < sPast; j++) keys[bi].push(Array.from(kCache!.data.subarray((bi * sPast + j) * d, (bi * sPast + j + 1) * d)));
    for (let ti = 0; ti < t; ti++) {
      const row = bi * t + ti;
      q[bi].push(Array.from({ length: h }, (_, hh) => ropeAndRotate(Array.from({ length: d }, (_, e) => linear(qr.data, row * qRank, qRank, W.wqB.data, hh * d + e)), sPast + ti)));
      const kRaw = Array.from({ length: d }, (_, e) => linear(x.data, row * dim, dim, W.wk.data, e));
      const mean = kRaw.reduce((a, v) => a + v, 0) / d;
      const variance = kRaw.reduce((a, v) => a + (v - mean) ** 2, 0) / d;
      const kNorm = kRaw.map((v, e) => ((v - mean) / Math.sqrt(variance + 1e-6)) * W.kNormWeight.data[e] + W.kNormBias.data[e]);
      keys[bi].push(ropeAndRotate(kNorm, sPast + ti));
      w[bi].push(Array.from({ length: h }, (_, hh) => linear(x.data, row * dim, dim, W.weightsProj.data, hh) * h ** -0.5 * d ** -0.5));
    }
  }
  const scores = new Float64Array(b * t * s);
  const k = Math.min(topK, s);
  const indices = new Int32Array(b * t * k).fill(-1);
  for (let bi = 0; bi < b; bi++)
    for (let ti = 0; ti < t; ti++) {
      const row = bi * t + ti;
      for (let j = 0; j < s; j++) {
        let score = 0;
        for (let hh = 0; hh < h; hh++) score += w[bi][ti][hh] * Math.max(0, q[bi][ti][hh].reduce((a, v, e) => a + v * keys[bi][j][e], 0));
        scores[row * s + j] = j <= sPast + ti ? score : -Infinity;
      }
      const eligible = Array.from({ length: sPast + ti + 1 }, (_, j) => j);
      eligible.sort((a, c) => scores[row * s + c] - scores[row * s + a] || a - c);
      eligible.slice(0, k).forEach((j, i) => (indices[row * k + i] = j));
    }
  return { scores, indices, keys: keys.flat(2), k };
}

function weights(dim: number, qRank: number, h: number, d: number, seed: number): FloatWeights {
  return {
    wqB: tensor([h * d, qRank], seed),
    wk: tensor([d, dim], seed + 1),
    kNormWeight: tensor([d], seed + 2),
    kNormBias: tensor([d], seed + 3),
    weightsProj: tensor([h, dim], seed + 4),
  };
}

function near(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, label: string): void {
  let scale = 0;
  for (let i = 0; i < expected.length; i++) if (Number.isFinite(expected[i])) scale = Math.max(scale, Math.abs(expected[i]));
  for (let i = 0; i < expected.length; i++) {
    if (!Number.isFinite(expected[i])) assert.equal(actual[i], expected[i], `${label}[${i}]`);
    else assert.ok(Math.abs(actual[i] - expected[i]) <= tol * scale, `${label}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

const cases = [
  { name: 'x[2,5,24] qr[2,5,16] h=4 d=16 rope=8 cache=7 topK=6', b: 2, t: 5, dim: 24, qRank: 16, h: 4, d: 16, rope: 8, sPast: 7, topK: 6, hadamard: false },
  { name: 'x[1,6,20] qr[1,6,12] h=3 d=8 rope=4 no cache topK=64 (s <= topK: dense)', b: 1, t: 6, dim: 20, qRank: 12, h: 3, d: 8, rope: 4, sPast: 0, topK: 64, hadamard: false },
  { name: 'x[1,4,32] qr[1,4,8] h=2 d=32 rope=16 cache=9 topK=5 hadamard', b: 1, t: 4, dim: 32, qRank: 8, h: 2, d: 32, rope: 16, sPast: 9, topK: 5, hadamard: true },
];

for (const c of cases) {
  for (const simd of [true, false]) {
    test(`lightningIndexer ${c.name} ${simd ? 'simd' : 'fallback'}: equals the naive step-by-step module`, () => {
      const W = weights(c.dim, c.qRank, c.h, c.d, 11);
      const x = tensor([c.b, c.t, c.dim], 21), qr = tensor([c.b, c.t, c.qRank], 22);
      const kCache = c.sPast ? tensor([c.b, c.sPast, c.d], 23) : undefined;
      const r = lightningIndexer(W, { x, qr, ...(kCache ? { kCache } : {}) }, { topK: c.topK, ropeDim: c.rope, hadamard: c.hadamard, simd, maskForm: 'additive' });
      const ref = naive(W, x, qr, kCache, c.topK, c.rope, c.hadamard);
      const s = c.sPast + c.t;
      assert.deepEqual(r.scores.shape, [c.b, c.t, s]);
      assert.deepEqual(r.indices.shape, [c.b, c.t, ref.k]);
      near(r.keys.data, ref.keys, 1e-5, 'keys');
      near(r.scores.data, ref.scores, 1e-5, 'scores');
      assert.deepEqual(Array.from(r.indices.data), Array.from(ref.indices), 'indices');
      for (let row = 0; row < c.b * c.t; row++) {
        const kept = new Set(Array.from(ref.indices.subarray(row * ref.k, (row + 1) * ref.k)).filter((j) => j >= 0));
        if (c.topK >= s) assert.equal(kept.size, c.sPast + (row % c.t) + 1, 'dense: every eligible key kept');
        for (let j = 0; j < s; j++) assert.equal(r.mask!.data[row * s + j], kept.has(j) ? 0 : DEFAULT_MASK_VALUE, `mask row ${row} key ${j}`);
      }
    });
  }
}

test('lightningIndexer: keys of one call are the next call\'s cache (prefill then decode equals one prefill)', () => {
  const W = weights(24, 16, 4, 16, 5);
  const x = tensor([1, 6, 24], 31), qr = tensor([1, 6, 16], 32);
  const whole = lightningIndexer(W, { x, qr }, { topK: 3, ropeDim: 8 });
  const first = lightningIndexer(W, { x: { data: x.data.slice(0, 5 * 24), shape: [1, 5, 24] }, qr: { data: qr.data.slice(0, 5 * 16), shape: [1, 5, 16] } }, { topK: 3, ropeDim: 8 });
  const last = lightningIndexer(W, { x: { data: x.data.slice(5 * 24), shape: [1, 1, 24] }, qr: { data: qr.data.slice(5 * 16), shape: [1, 1, 16] }, kCache: first.keys }, { topK: 3, ropeDim: 8 });
  assert.deepEqual(Array.from(last.indices.data), Array.from(whole.indices.data.subarray(5 * 3)));
  assert.deepEqual(last.keys.data, whole.keys.data);
});

test('lightningIndexer: shapes of the weights are checked by name', () => {
  const W = weights(24, 16, 4, 16, 5);
  const x = tensor([1, 2, 24], 1), qr = tensor([1, 2, 16], 2);
  assert.throws(() => lightningIndexer({ ...W, wqB: tensor([4 * 15, 16], 1) }, { x, qr }), { name: 'RangeError', message: /weights\.wqB rows = 60 must equal h\*d = 64/ });
  assert.throws(() => lightningIndexer(W, { x, qr: tensor([1, 2, 15], 1) }), { name: 'RangeError', message: /weights\.wqB qRank = 16 must equal inputs\.qr qRank = 15/ });
  assert.throws(() => lightningIndexer(W, { x, qr }, { ropeDim: 7 }), { name: 'RangeError', message: /ropeDim: expected an even integer/ });
  assert.throws(() => lightningIndexer({ ...W, wk: tensor([12, 24], 1), kNormWeight: tensor([12], 1), kNormBias: tensor([12], 1), wqB: tensor([48, 16], 1) }, { x, qr }, { hadamard: true, ropeDim: 4 }), { name: 'RangeError', message: /hadamard: needs d a power of 2, got d = 12/ });
});

test('pool: lightningIndexer is bit-identical to the synchronous call (x[2,5,24] cache=7 topK=6, bool mask)', async () => {
  const { createPool } = await import('../../src/pool/index.js');
  const pool = createPool({ threads: 2 });
  try {
    const W = weights(24, 16, 4, 16, 11);
    const inputs = { x: tensor([2, 5, 24], 21), qr: tensor([2, 5, 16], 22), kCache: tensor([2, 7, 16], 23) };
    const opts = { topK: 6, ropeDim: 8, maskForm: 'bool' as const };
    const one = lightningIndexer(W, inputs, opts);
    const many = await pool.lightningIndexer(W, inputs, opts);
    for (const key of ['scores', 'values', 'indices', 'keys', 'mask'] as const) {
      assert.deepEqual(many[key]!.shape, one[key]!.shape, key);
      assert.deepEqual(Array.from(many[key]!.data), Array.from(one[key]!.data), key);
    }
    await assert.rejects(pool.lightningIndexer(W, inputs, { ropeDim: 5 }), RangeError);
  } finally {
    await pool.close();
  }
});

test('lightningIndexer int8 and int7 with a quantized key cache equal the same precision with the float32 cache (x[2,3,24] cache=9 topK=4)', async () => {
  const { quantizeKeys } = await import('../../src/indexer/quantized-keys.js');
  const W = weights(24, 16, 4, 16, 7);
  const x = tensor([2, 3, 24], 41), qr = tensor([2, 3, 16], 42), kCache = tensor([2, 9, 16], 43);
  for (const precision of ['int8', 'int7'] as const) {
    const opts = { topK: 4, ropeDim: 8, precision };
    const float = lightningIndexer(W, { x, qr, kCache }, opts);
    const quant = lightningIndexer(W, { x, qr, kCache: quantizeKeys(kCache) }, opts);
    assert.deepEqual(quant.scores.data, float.scores.data, precision);
    assert.deepEqual(quant.indices.data, float.indices.data, precision);
    const expectedKeys = quantizeKeys(float.keys);
    assert.deepEqual(quant.keys.values.data, expectedKeys.values.data, `${precision}: appended keys quantized as scoring does`);
    assert.deepEqual(quant.keys.scales.data, expectedKeys.scales.data, precision);
  }
  assert.throws(() => lightningIndexer(W, { x, qr, kCache: quantizeKeys(kCache) }, { topK: 4, ropeDim: 8 }), {
    name: 'RangeError', message: /inputs\.kCache: quantized keys need precision 'int8' or 'int7', got precision 'float32'/,
  });
});

test('lightningIndexer fp8: an FP8 key cache equals the float32 cache with precision fp8; split calls equal one call; flags must agree', async () => {
  const { quantizeKeysFp8 } = await import('../../src/indexer/quantized-keys.js');
  const W = weights(24, 16, 4, 16, 17);
  const x = tensor([2, 3, 24], 51), qr = tensor([2, 3, 16], 52), kCache = tensor([2, 9, 16], 53);
  const opts = { topK: 4, ropeDim: 8, precision: 'fp8' as const };
  const float = lightningIndexer(W, { x, qr, kCache }, opts);
  const fp8 = lightningIndexer(W, { x, qr, kCache: quantizeKeysFp8(kCache) }, opts);
  assert.deepEqual(fp8.scores.data, float.scores.data, 'scores');
  assert.deepEqual(fp8.indices.data, float.indices.data, 'indices');
  assert.deepEqual(fp8.keys.data, quantizeKeysFp8(float.keys as never).data, 'appended keys quantized as scoring does');
  // Prefill then decode through the FP8 cache equals one prefill.
  const all = tensor([1, 6, 24], 61), allQr = tensor([1, 6, 16], 62);
  const cut = (v: { data: Float32Array; shape: number[] }, from: number, to: number) => ({ data: v.data.slice(from * v.shape[2], to * v.shape[2]), shape: [1, to - from, v.shape[2]] });
  const whole = lightningIndexer(W, { x: all, qr: allQr }, { ...opts, topK: 3 });
  const prefix = lightningIndexer(W, { x: cut(all, 0, 4), qr: cut(allQr, 0, 4) }, { ...opts, topK: 3 });
  const next = lightningIndexer(W, { x: cut(all, 4, 6), qr: cut(allQr, 4, 6), kCache: quantizeKeysFp8(prefix.keys as never) }, { ...opts, topK: 3 });
  assert.deepEqual(Array.from(next.indices.data), Array.from(whole.indices.data.subarray(4 * 3)));
  assert.throws(() => lightningIndexer(W, { x, qr, kCache: quantizeKeysFp8(kCache, { hadamard: false }) }, { ...opts, hadamard: true }), /hadamard: the FP8 kCache was quantized with hadamard false/);
  assert.throws(() => lightningIndexer(W, { x, qr, kCache: quantizeKeysFp8(kCache) }, { topK: 4 }), /inputs\.kCache: FP8 keys need precision 'fp8'/);
});
