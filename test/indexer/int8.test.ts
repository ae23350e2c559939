import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { indexerScores } from '../../src/indexer/scores.js';
import type { Tensor } from '../../src/tensor.js';

type F = Tensor<Float32Array>;
const f = Math.fround;

function rand(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let x = (seed >>> 0) || 7;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    a[i] = ((x >>> 0) / 2 ** 32) * 2 - 1;
  }
  return a;
}

function inputs(b: number, t: number, h: number, d: number, s: number, seed: number): { q: F; k: F; w: F } {
  return {
    q: { data: rand(b * t * h * d, seed), shape: [b, t, h, d] },
    k: { data: rand(b * s * d, seed + 1), shape: [b, s, d] },
    w: { data: rand(b * t * h, seed + 2), shape: [b, t, h] },
  };
}

/** Block-128 quantization of one vector of d values to [-levels, levels], written out plainly: [values, scales]. */
function quantize(x: Float32Array, at: number, d: number, levels = 127): [number[], number[]] {
  const values: number[] = [], scales: number[] = [];
  for (let e0 = 0; e0 < d; e0 += 128) {
    const block = Array.from(x.subarray(at + e0, at + Math.min(e0 + 128, d)));
    const amax = Math.max(0, ...block.map(Math.abs));
    const inv = amax > 0 ? f(levels / amax) : 0;
    scales.push(f(amax / levels));
    for (const v of block) {
      const y = f(v * inv), lo = Math.floor(y);
      values.push(y - lo < 0.5 ? lo : y - lo > 0.5 ? lo + 1 : lo % 2 === 0 ? lo : lo + 1); // half to even
    }
  }
  return [values, scales];
}

/**
 * The quantized arithmetic, float32 step by step: the exact result int8
 * must give (int7: the queries at 63 levels, the keys as int8).
 */
function int8Reference(q: F, k: F, w: F, weightScale: number, queryLevels = 127): Float32Array {
  const [b, t, h, d] = q.shape;
  const s = k.shape[1];
  const out = new Float32Array(b * t * s);
  for (let bi = 0; bi < b; bi++)
    for (let ti = 0; ti < t; ti++) {
      const row = bi * t + ti;
      const qh = Array.from({ length: h }, (_, hh) => quantize(q.data, (row * h + hh) * d, d, queryLevels));
      for (let j = 0; j < s; j++) {
        const [kv, ks] = quantize(k.data, (bi * s + j) * d, d);
        let score = 0;
        for (let hh = 0; hh < h; hh++) {
          const [qv, qs] = qh[hh];
          let dot = 0;
          for (let blk = 0; blk < ks.length; blk++) {
            let idot = 0;
            for (let e = blk * 128; e < Math.min(blk * 128 + 128, d); e++) idot += qv[e] * kv[e];
            dot = f(dot + f(f(qs[blk] * ks[blk]) * idot));
          }
          score = f(score + f(f(w.data[row * h + hh] * weightScale) * Math.max(dot, 0)));
        }
        out[row * s + j] = score;
      }
    }
  return out;
}

const grid: [number, number, number, number, number][] = [
  [1, 2, 4, 128, 9],
  [2, 3, 3, 20, 37],
  [1, 2, 2, 300, 17],
  [1, 2, 64, 128, 1030],
];

const LEVELS = { int8: 127, int7: 63 } as const;

for (const precision of ['int8', 'int7'] as const) {
  for (const [b, t, h, d, s] of grid) {
    test(`${precision} q[${b},${t},${h},${d}] s=${s}: SIMD and fallback equal the quantized reference exactly`, () => {
      const { q, k, w } = inputs(b, t, h, d, s, s + d);
      const expected = int8Reference(q, k, w, 0.5, LEVELS[precision]);
      assert.deepEqual(indexerScores(q, k, w, { precision, weightScale: 0.5 }).data, expected, 'simd');
      assert.deepEqual(indexerScores(q, k, w, { precision, weightScale: 0.5, simd: false }).data, expected, 'fallback');
    });
  }

  test(`fast-check: ${precision} exact on random shapes, zero blocks and rounding ties`, () => {
    const ties = 2 * LEVELS[precision];
    fc.assert(
      fc.property(
        fc.record({ h: fc.integer({ min: 1, max: 5 }), d: fc.integer({ min: 1, max: 140 }), s: fc.integer({ min: 1, max: 12 }), seed: fc.integer(), zeros: fc.boolean() }),
        ({ h, d, s, seed, zeros }) => {
          const { q, k, w } = inputs(1, 2, h, d, s, seed);
          if (zeros) k.data.fill(0, 0, d); // a zero key: scale 0
          // Values at exact multiples of amax/(2 * levels) land on rounding ties.
          for (let i = 0; i < q.data.length; i += 3) q.data[i] = f(Math.round(q.data[i] * ties) / ties);
          const expected = int8Reference(q, k, w, 1, LEVELS[precision]);
          assert.deepEqual(indexerScores(q, k, w, { precision }).data, expected, 'simd');
          assert.deepEqual(indexerScores(q, k, w, { precision, simd: false }).data, expected, 'fallback');
        },
      ),
      { numRuns: 60 },
    );
  });
}

test('int7 differs from int8 (the queries have half the levels), with about twice its error against float32', () => {
  const { q, k, w } = inputs(1, 4, 8, 128, 256, 5);
  const exact = indexerScores(q, k, w).data;
  const meanError = (precision: 'int8' | 'int7') => {
    const got = indexerScores(q, k, w, { precision }).data;
    let err = 0, size = 0;
    for (let i = 0; i < exact.length; i++) { err += Math.abs(got[i] - exact[i]); size += Math.abs(exact[i]); }
    return err / size;
  };
  const [e8, e7] = [meanError('int8'), meanError('int7')];
  assert.ok(e8 > 0 && e7 > 1.5 * e8 && e7 < 3 * e8 && e7 < 0.02, `mean relative error int8 ${e8}, int7 ${e7}`);
});

/** Indices of the k largest, ties by lower index (a plain sort). */
function topSet(scores: Float32Array, k: number): Set<number> {
  const order = Array.from(scores.keys()).sort((a, b) => scores[b] - scores[a] || a - b);
  return new Set(order.slice(0, k));
}

test('int8 and int7 top-k overlap with float32 top-k >= 0.95 at k=2048 (q[1,2,64,128] s=8192, random)', () => {
  const [t, s, k] = [2, 8192, 2048];
  const { q, k: keys, w } = inputs(1, t, 64, 128, s, 42);
  const scale = 64 ** -0.5 * 128 ** -0.5;
  const exact = indexerScores(q, keys, w, { weightScale: scale });
  for (const precision of ['int8', 'int7'] as const) {
    const quantized = indexerScores(q, keys, w, { weightScale: scale, precision });
    for (let row = 0; row < t; row++) {
      const a = topSet(exact.data.subarray(row * s, (row + 1) * s), k);
      const b = topSet(quantized.data.subarray(row * s, (row + 1) * s), k);
      let common = 0;
      for (const i of b) if (a.has(i)) common++;
      assert.ok(common / k >= 0.95, `${precision} row ${row}: recall ${common / k}`);
    }
  }
});

test('quantizeKeys: keys quantized once give bit-identical int8 scores (SIMD, fallback, pool, causal, rows)', async () => {
  const { quantizeKeys } = await import('../../src/indexer/quantized-keys.js');
  const { createPool } = await import('../../src/pool/index.js');
  for (const [b, t, h, d, s] of [[2, 3, 4, 128, 1100], [1, 2, 3, 200, 37], [1, 1, 2, 20, 9]] as const) {
    const { q, k, w } = inputs(b, t, h, d, s, d + s);
    const kq = quantizeKeys(k);
    assert.deepEqual(kq.values.shape, [b, s, d]);
    assert.deepEqual(kq.scales.shape, [b, s, Math.ceil(d / 128)]);
    for (const opts of [
      { precision: 'int8' as const }, { precision: 'int8' as const, simd: false }, { precision: 'int8' as const, causalOffset: 1, rows: [1, b * t] as [number, number] },
      { precision: 'int7' as const }, { precision: 'int7' as const, simd: false }, { precision: 'int7' as const, causalOffset: 1, rows: [1, b * t] as [number, number] },
    ]) {
      assert.deepEqual(indexerScores(q, kq, w, opts).data, indexerScores(q, k, w, opts).data, `q[${b},${t},${h},${d}] s=${s} ${JSON.stringify(opts)}`);
    }
  }
  const { q, k, w } = inputs(1, 2, 3, 130, 600, 1);
  const kq = quantizeKeys(k);
  const shared = quantizeKeys(k, { shared: true });
  assert.ok(shared.values.data.buffer instanceof SharedArrayBuffer && shared.scales.data.buffer instanceof SharedArrayBuffer);
  assert.deepEqual(Array.from(shared.values.data), Array.from(kq.values.data));
  assert.deepEqual(Array.from(shared.scales.data), Array.from(kq.scales.data));
  const pool = createPool({ threads: 2 });
  try {
    assert.deepEqual((await pool.indexerScores(q, kq, w, { precision: 'int8' })).data, indexerScores(q, k, w, { precision: 'int8' }).data);
    assert.deepEqual((await pool.indexerScores(q, shared, w, { precision: 'int8' })).data, indexerScores(q, k, w, { precision: 'int8' }).data);
    assert.deepEqual((await pool.indexerScores(q, shared, w, { precision: 'int7' })).data, indexerScores(q, k, w, { precision: 'int7' }).data);
  } finally {
    await pool.close();
  }
  assert.throws(() => indexerScores(q, kq, w), { name: 'RangeError', message: /k: int8 keys \(quantizeKeys\) need precision 'int8' or 'int7', got precision 'float32'/ });
  assert.throws(() => indexerScores(q, { values: kq.values, scales: { data: new Float32Array(600), shape: [1, 600, 1] } }, w, { precision: 'int8' }), {
    name: 'RangeError', message: /k\.scales\.shape: expected \[1, 600, 2\] for k\.values \[1, 600, 130\], got \[1, 600, 1\]/,
  });
});

test('int8, int7: NaN or Infinity in a query row or a key gives NaN scores there, like float32 (SIMD and fallback)', () => {
  for (const [simd, precision] of [[true, 'int8'], [false, 'int8'], [true, 'int7'], [false, 'int7']] as const) {
    for (const bad of [NaN, Infinity]) {
      const { q, k, w } = inputs(1, 2, 3, 130, 9, 3);
      q.data[3 * 130 + 5] = bad; // row 1, head 0, block 0
      k.data[4 * 130 + 129] = bad; // key 4, block 1
      const r = indexerScores(q, k, w, { precision, simd }).data;
      for (let j = 0; j < 9; j++) {
        assert.equal(Number.isNaN(r[j]), j === 4, `${precision} simd=${simd} ${bad}: row 0 key ${j}: ${r[j]}`);
        assert.ok(Number.isNaN(r[9 + j]), `${precision} simd=${simd} ${bad}: row 1 key ${j}`);
      }
    }
  }
});
