// indexerScores in the serving forms (SPEC "Serving-engine forms"): a key
// window, seqLens, a ragged batch and a paged cache each equal the
// contiguous call they stand for, bit for bit, in float32, int8 and int7, on one
// thread and on the pool; bad block tables and bounds are named errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { indexerScores } from '../../src/indexer/scores.js';
import { quantizeKeys } from '../../src/indexer/quantized-keys.js';
import { createPool } from '../../src/pool/index.js';
import { simdSupported } from '../../src/simd/index.js';
import type { Tensor } from '../../src/tensor.js';
import { rng } from '../../src/cli/demo-data.js';

type F = Tensor<Float32Array>;
const PATHS = simdSupported() ? [true, false] : [false];

function floats(shape: number[], seed: number): F {
  const next = rng(seed);
  return { data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => next() * 2 - 1), shape };
}

/** Rows [from, from + n) of a tensor along its first axis (rank kept). */
function rows(x: F, from: number, n: number): F {
  const width = x.data.length / x.shape[0];
  return { data: x.data.slice(from * width, (from + n) * width), shape: [n, ...x.shape.slice(1)] };
}

/** Scatters k [b, s, d] into shuffled pages of P tokens; returns the pages [numPages, P, d] and the block table [b, blocks]. */
function page(k: F, P: number, extraPages: number, seed: number) {
  const [b, s, d] = k.shape;
  const blocks = Math.ceil(s / P), numPages = b * blocks + extraPages;
  const next = rng(seed);
  const order = Array.from({ length: numPages }, (_, i) => i);
  for (let i = numPages - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const data = new Float32Array(numPages * P * d).fill(NaN); // unused slots are garbage that must never be read
  const table = new Int32Array(b * blocks).fill(-7);
  for (let bi = 0; bi < b; bi++) for (let blk = 0; blk < blocks; blk++) {
    const p = order[bi * blocks + blk];
    table[bi * blocks + blk] = p;
    for (let o = 0; o < P && blk * P + o < s; o++) data.set(k.data.subarray((bi * s + blk * P + o) * d, (bi * s + blk * P + o + 1) * d), (p * P + o) * d);
  }
  return { pages: { data, shape: [numPages, P, d] }, table: { data: table, shape: [b, blocks] } };
}

for (const precision of ['float32', 'int8', 'int7'] as const) for (const simd of PATHS) {
  test(`property: paged keys with a block table equal the contiguous cache with seqLens, ${precision}, simd=${simd}`, () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 3, max: 1200 }), fc.constantFrom(1, 16, 64, 100), fc.integer({ min: 0, max: 1e6 }),
        (b, t, h, d, s, P, seed) => {
          fc.pre(s >= t);
          const q = floats([b, t, h, d], seed), k = floats([b, s, d], seed + 1), w = floats([b, t, h], seed + 2);
          const next = rng(seed + 3);
          const seqLens = Int32Array.from({ length: b }, () => t + Math.floor(next() * (s - t + 1)));
          const { pages, table } = page(k, P, 2, seed + 4);
          const keys = precision !== 'float32' ? quantizeKeys(pages) : pages;
          const want = indexerScores(q, precision !== 'float32' ? quantizeKeys(k) : k, w, { precision, seqLens, simd });
          const got = indexerScores(q, keys, w, { precision, seqLens, blockTable: table, maxLen: s, simd });
          assert.deepEqual(got.shape, [b, t, s]);
          assert.deepEqual(got.data, want.data);
          // seqLens: row (bi, ti) sees positions <= seqLens[bi] - t + ti, -Infinity past them.
          for (let r = 0; r < b * t; r++) {
            const limit = seqLens[Math.floor(r / t)] - t + (r % t);
            for (let j = 0; j < s; j++) assert.equal(Number.isFinite(want.data[r * s + j]), j <= limit, `row ${r} key ${j}`);
          }
        },
      ),
      { numRuns: 40, seed: 5 },
    );
  });

  test(`a ragged batch equals each sequence alone, positions within the sequence, ${precision}, simd=${simd}`, () => {
    const qLens = [2, 1, 3, 0], kLens = [600, 1, 40, 9];
    const cuSeqlensQ = Int32Array.from([0, 2, 3, 6, 6]), cuSeqlensK = Int32Array.from([0, 600, 601, 641, 650]);
    const h = 5, d = 24;
    const q = floats([1, 6, h, d], 1), k = floats([1, 650, d], 2), w = floats([1, 6, h], 3);
    const keys = precision !== 'float32' ? quantizeKeys(k) : k;
    const got = indexerScores(q, keys, w, { precision, ragged: { cuSeqlensQ, cuSeqlensK }, simd });
    assert.deepEqual(got.shape, [1, 6, 600], 'width = the longest sequence');
    for (let i = 0; i < 4; i++) {
      if (qLens[i] === 0) continue;
      const qi = { data: q.data.slice(cuSeqlensQ[i] * h * d, cuSeqlensQ[i + 1] * h * d), shape: [1, qLens[i], h, d] };
      const wi = { data: w.data.slice(cuSeqlensQ[i] * h, cuSeqlensQ[i + 1] * h), shape: [1, qLens[i], h] };
      const ki = { data: k.data.slice(cuSeqlensK[i] * d, cuSeqlensK[i + 1] * d), shape: [1, kLens[i], d] };
      const alone = indexerScores(qi, precision !== 'float32' ? quantizeKeys(ki) : ki, wi, { precision, causalOffset: kLens[i] - qLens[i], simd });
      for (let p = 0; p < qLens[i]; p++) {
        const row = got.data.subarray((cuSeqlensQ[i] + p) * 600, (cuSeqlensQ[i] + p + 1) * 600);
        assert.deepEqual(row.subarray(0, kLens[i]), alone.data.subarray(p * kLens[i], (p + 1) * kLens[i]), `sequence ${i} query ${p}`);
        assert.ok(row.subarray(kLens[i]).every((x) => x === -Infinity), `sequence ${i} query ${p}: -Infinity past the sequence`);
      }
    }
  });

  test(`property: a key window equals the contiguous scores inside it and -Infinity outside, with a causal offset, ${precision}, simd=${simd}`, () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 1500 }), fc.integer({ min: 0, max: 1e6 }), (b, t, s, seed) => {
        const h = 3, d = 16;
        const q = floats([b, t, h, d], seed), k = floats([b, s, d], seed + 1), w = floats([b, t, h], seed + 2);
        const next = rng(seed + 3);
        const start = new Int32Array(b * t), end = new Int32Array(b * t);
        for (let r = 0; r < b * t; r++) {
          const x = Math.floor(next() * (s + 1)), y = Math.floor(next() * (s + 1));
          start[r] = Math.min(x, y);
          end[r] = Math.max(x, y);
        }
        const offset = Math.floor(next() * s) - 2;
        const full = indexerScores(q, k, w, { precision, simd });
        const got = indexerScores(q, k, w, { precision, window: { start, end }, causalOffset: offset, simd });
        for (let r = 0; r < b * t; r++) for (let j = 0; j < s; j++) {
          const seen = j >= start[r] && j < end[r] && j <= (r % t) + offset;
          assert.equal(got.data[r * s + j], seen ? full.data[r * s + j] : -Infinity, `row ${r} key ${j}`);
        }
        // rows: [start, end) gives those rows of the full result.
        if (b * t > 1) {
          const part = indexerScores(q, k, w, { precision, window: { start, end }, causalOffset: offset, simd, rows: [1, b * t] });
          assert.deepEqual(part.data, got.data.subarray(s));
        }
      }),
      { numRuns: 30, seed: 6 },
    );
  });
}

test('the pool gives bit-identical paged and ragged scores, a decode batch of unequal lengths balanced over key blocks', async () => {
  const b = 5, t = 1, h = 16, d = 32, s = 3000;
  const q = floats([b, t, h, d], 7), k = floats([b, s, d], 8), w = floats([b, t, h], 9);
  const seqLens = Int32Array.from([3000, 17, 1024, 1, 2999]);
  const { pages, table } = page(k, 64, 1, 10);
  const pool = createPool({ threads: 2 });
  try {
    for (const precision of ['float32', 'int8', 'int7'] as const) {
      const keys = precision !== 'float32' ? quantizeKeys(pages, { shared: true }) : pages;
      const one = indexerScores(q, keys, w, { precision, seqLens, blockTable: table });
      const two = await pool.indexerScores(q, keys, w, { precision, seqLens, blockTable: table });
      assert.deepEqual(two.data, one.data, precision);
      assert.deepEqual(one.shape, [b, t, 3000]);
    }
  } finally {
    await pool.close();
  }
});

test('errors: block table entries, sequence lengths and paged options are named before anything is written', () => {
  const q = floats([2, 1, 2, 8], 1), w = floats([2, 1, 2], 2);
  const pages = floats([4, 16, 8], 3);
  const table = (data: number[], shape = [2, 2]) => ({ data: Int32Array.from(data), shape });
  const seqLens = Int32Array.from([20, 5]);
  const out = new Float32Array(2 * 20).fill(7);
  assert.throws(() => indexerScores(q, pages, w, { seqLens, blockTable: table([0, 4, 2, 3]), out }), /blockTable: sequence 0, block 1 is 4; expected a page in \[0, 4\)/);
  assert.throws(() => indexerScores(q, pages, w, { seqLens, blockTable: table([0, 1, -1, 3]), out }), /blockTable: sequence 1, block 0 is -1/);
  assert.ok(out.every((x) => x === 7), 'out untouched');
  // Unused entries (past a sequence's blocks) may hold anything.
  assert.deepEqual(indexerScores(q, pages, w, { seqLens, blockTable: table([0, 1, 2, 99]) }).shape, [2, 1, 20]);
  assert.throws(() => indexerScores(q, pages, w, { seqLens: Int32Array.from([40, 5]), blockTable: table([0, 1, 2, 3]) }), /sequence 0 has length 40, which needs 3 blocks of 16, but the table has 2/);
  assert.throws(() => indexerScores(q, pages, w, { blockTable: table([0, 1, 2, 3]) }), /a paged call needs seqLens/);
  assert.throws(() => indexerScores(q, pages, w, { seqLens: new Int32Array(3), blockTable: table([0, 1, 2, 3]) }), /seqLens: expected an Int32Array of length 2/);
  assert.throws(() => indexerScores(q, pages, w, { seqLens, blockTable: table([0, 1, 2, 3], [1, 4]) }), /blockTable: blockTable b = 1 must equal the batch b = 2/);
  assert.throws(() => indexerScores(q, pages, w, { seqLens, blockTable: table([0, 1, 2, 3]), maxLen: 10 }), /seqLens: sequence 0 has length 20; expected 1 <= length <= 10/);
  assert.throws(() => indexerScores(q, floats([2, 16, 8], 4), w, { maxLen: 10 }), /maxLen: only a paged call/);
  const k = floats([1, 30, 8], 5);
  assert.throws(() => indexerScores(floats([1, 3, 2, 8], 6), k, floats([1, 3, 2], 7), { ragged: { cuSeqlensQ: Int32Array.from([0, 1, 3]), cuSeqlensK: Int32Array.from([0, 10, 29]) } }), /cuSeqlensK: the last entry must be the packed key count 30, got 29/);
  assert.throws(() => indexerScores(q, floats([2, 30, 8], 8), w, { ragged: { cuSeqlensQ: Int32Array.from([0, 2]), cuSeqlensK: Int32Array.from([0, 30]) } }), /ragged: .*batch dimension must be 1|packs the keys as \[1, totalK, d\]/);
});
