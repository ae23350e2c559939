// Key windows, seqLens and ragged batches in top-k and the masks: each form
// equals the masked or per-sequence call it stands for (SPEC "Serving-engine
// forms"), and bad bounds are named errors thrown before anything is written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { topk } from '../src/topk/topk.js';
import { combineMasks, generateMask, windowMask } from '../src/mask/masks.js';
import { createPool } from '../src/pool/index.js';
import { DEFAULT_MASK_VALUE, type Tensor } from '../src/tensor.js';
import { rng } from '../src/cli/demo-data.js';
import { resolveRowKeys } from '../src/window.js';
import { allocLocal } from '../src/tensor.js';
import { decode } from './mask/definition.js';

function tiedScores(b: number, t: number, s: number, seed: number): Tensor<Float32Array> {
  const next = rng(seed);
  const data = Float32Array.from({ length: b * t * s }, () => {
    const u = next();
    return u < 0.03 ? -Infinity : Math.floor(next() * 6) - 3;
  });
  return { data, shape: [b, t, s] };
}

function randomWindow(rows: number, s: number, seed: number) {
  const next = rng(seed);
  const start = new Int32Array(rows), end = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    const a = Math.floor(next() * (s + 1)), z = Math.floor(next() * (s + 1));
    start[r] = Math.min(a, z);
    end[r] = Math.max(a, z);
  }
  return { start, end };
}

/** The bool mask [b, t, s] keeping key j of row r iff start[r] <= j < end[r] (and j <= ti + offset). */
function windowAsMask(b: number, t: number, s: number, start: Int32Array, end: Int32Array, offset?: number): Tensor<Uint8Array> {
  const data = new Uint8Array(b * t * s);
  for (let r = 0; r < b * t; r++) for (let j = start[r]; j < end[r]; j++) if (offset === undefined || j <= (r % t) + offset) data[r * s + j] = 1;
  return { data, shape: [b, t, s] };
}

test('property: top-k with a key window equals top-k with the window as a mask, bit for bit, both kernels, with and without a causal offset', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 90 }), fc.integer({ min: 1, max: 40 }),
      fc.option(fc.integer({ min: -5, max: 60 }), { nil: undefined }), fc.integer({ min: 0, max: 1e6 }),
      (b, t, s, k, causalOffset, seed) => {
        const scores = tiedScores(b, t, s, seed);
        const window = randomWindow(b * t, s, seed + 1);
        const mask = windowAsMask(b, t, s, window.start, window.end, causalOffset);
        const want = topk(scores, k, { mask, kernel: 'sort' });
        for (const simd of [true, false]) {
          const got = topk(scores, k, { window, causalOffset, simd });
          assert.deepEqual(got.indices, want.indices, `simd=${simd} indices`);
          assert.deepEqual(got.values, want.values, `simd=${simd} values`);
        }
        const sorted = topk(scores, k, { window, causalOffset, kernel: 'sort' });
        assert.deepEqual(sorted.indices, want.indices, 'sort reference with a window');
        // A window and a mask intersect.
        const other = windowAsMask(b, t, s, randomWindow(b * t, s, seed + 2).start, new Int32Array(b * t).fill(s));
        const both = topk(scores, k, { window, causalOffset, mask: other });
        const inter = { data: mask.data.map((x, i) => x & other.data[i]), shape: mask.shape };
        assert.deepEqual(both.indices, topk(scores, k, { mask: inter }).indices, 'window and mask intersect');
      },
    ),
    { numRuns: 150, seed: 11 },
  );
});

test('top-k with seqLens: row (bi, ti) sees positions <= seqLens[bi] - t + ti, as the per-sequence causal call', () => {
  const b = 3, t = 2, s = 50, k = 8;
  const scores = tiedScores(b, t, s, 5);
  const seqLens = Int32Array.from([2, 50, 17]);
  const got = topk(scores, k, { seqLens });
  for (let bi = 0; bi < b; bi++) {
    const rows = { data: scores.data.slice(bi * t * s, (bi + 1) * t * s), shape: [1, t, s] };
    const alone = topk(rows, k, { causalOffset: seqLens[bi] - t });
    assert.deepEqual(got.indices.data.subarray(bi * t * k, (bi + 1) * t * k), alone.indices.data, `sequence ${bi}`);
  }
});

test('top-k over a ragged batch equals each sequence alone, causally by position within it', () => {
  const qLens = [1, 4, 2, 0], kLens = [30, 9, 2, 5];
  const cuSeqlensQ = Int32Array.from([0, 1, 5, 7, 7]), cuSeqlensK = Int32Array.from([0, 30, 39, 41, 46]);
  const width = 30, k = 6;
  const scores = tiedScores(1, 7, width, 6);
  const got = topk(scores, k, { ragged: { cuSeqlensQ, cuSeqlensK } });
  for (let i = 0; i < 4; i++) {
    if (qLens[i] === 0) continue;
    const rows = { data: scores.data.slice(cuSeqlensQ[i] * width, (cuSeqlensQ[i] + qLens[i]) * width), shape: [1, qLens[i], width] };
    // Alone: only the sequence's own kLens[i] positions, its queries being its last ones.
    const seqLens = Int32Array.from([kLens[i]]);
    const alone = topk(rows, k, { seqLens });
    assert.deepEqual(got.indices.data.subarray(cuSeqlensQ[i] * k, (cuSeqlensQ[i] + qLens[i]) * k), alone.indices.data, `sequence ${i}`);
    for (const j of alone.indices.data) assert.ok(j < kLens[i], `sequence ${i}: position ${j} inside the sequence`);
  }
});

test('property: windowMask keeps exactly [start, end) per row in every form; generateMask with a window equals combining with it', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 140 }), fc.integer({ min: 1, max: 20 }),
      fc.integer({ min: 0, max: 1e6 }),
      (b, t, s, k, seed) => {
        const window = randomWindow(b * t, s, seed);
        const expected = decode(windowAsMask(b, t, s, window.start, window.end).data, s);
        const next = rng(seed + 1);
        const indices = { data: Int32Array.from({ length: b * t * k }, () => Math.floor(next() * (s + 2)) - 2), shape: [b, t, k] };
        for (const form of ['additive', 'bool', 'bits'] as const) {
          const w = windowMask(b, t, s, { window }, form);
          assert.deepEqual(decode(w.data, s), expected, `${form} window mask`);
          const direct = generateMask(indices, s, { window, form });
          const combined = combineMasks(generateMask(indices, s, { form }), w);
          assert.deepEqual(direct.data, combined.data, `${form} generateMask with window`);
          const broadcast = generateMask(indices, s, { window, form, strategy: 'broadcast' });
          assert.deepEqual(broadcast.data, direct.data, `${form} broadcast with window`);
        }
      },
    ),
    { numRuns: 80, seed: 12 },
  );
});

test('windowMask with a causal offset is causalMask; with seqLens it is the per-sequence causal mask', () => {
  const none = windowMask(2, 3, 40, { causalOffset: 5 }, 'bits');
  const causal = generateMask({ data: Int32Array.from({ length: 6 * 40 }, (_, i) => i % 40), shape: [2, 3, 40] }, 40, { causalOffset: 5, form: 'bits' });
  assert.deepEqual(none.data, causal.data);
  const seq = windowMask(2, 3, 40, { seqLens: Int32Array.from([3, 33]) }, 'bool');
  const rows = decode(seq.data, 40);
  for (let r = 0; r < 6; r++) {
    const limit = [3, 33][Math.floor(r / 3)] - 3 + (r % 3) + 1;
    assert.deepEqual(rows[r], Array.from({ length: 40 }, (_, j) => j < limit), `row ${r}`);
  }
  const empty = windowMask(1, 1, 70, { window: { start: Int32Array.from([33]), end: Int32Array.from([33]) } }, 'additive');
  assert.ok(empty.data.every((x) => x === DEFAULT_MASK_VALUE), 'an empty window drops every key');
});

test('the pool gives the same windowed top-k and masks', async () => {
  const pool = createPool({ threads: 2 });
  try {
    const scores = tiedScores(2, 8, 300, 9);
    const window = randomWindow(16, 300, 10);
    assert.deepEqual((await pool.topk(scores, 20, { window })).indices, topk(scores, 20, { window }).indices);
    assert.deepEqual((await pool.windowMask(2, 8, 300, { window }, 'bits')).data, windowMask(2, 8, 300, { window }, 'bits').data);
  } finally {
    await pool.close();
  }
});

test('errors: bad windows, seqLens and ragged batches are named, and nothing is written', () => {
  const scores = tiedScores(1, 2, 10, 1);
  const w = (start: number[], end: number[]) => ({ start: Int32Array.from(start), end: Int32Array.from(end) });
  assert.throws(() => topk(scores, 3, { window: w([4, 0], [2, 1]) }), /window: row 0 \(batch 0, query 0\) has start 4 and end 2; expected 0 <= start <= end <= s = 10/);
  assert.throws(() => topk(scores, 3, { window: w([0, 0], [1, 11]) }), /row 1 .*end 11/);
  assert.throws(() => topk(scores, 3, { window: { start: new Int32Array(2), end: new Float32Array(2) } as never }), /window\.end: expected an Int32Array of length 2/);
  assert.throws(() => topk(scores, 3, { window: [0, 1] as never }), /window: expected \{ start, end \}/);
  assert.throws(() => topk(scores, 3, { seqLens: Int32Array.from([1]) }), /seqLens: sequence 0 has length 1; expected 2 <= length <= 10/);
  assert.throws(() => topk(scores, 3, { seqLens: Int32Array.from([11]) }), /sequence 0 has length 11/);
  assert.throws(() => topk(scores, 3, { seqLens: new Int32Array(2) }), /seqLens: expected an Int32Array of length 1/);
  const ragged = { cuSeqlensQ: Int32Array.from([0, 2]), cuSeqlensK: Int32Array.from([0, 12]) };
  assert.throws(() => topk(scores, 3, { ragged }), /ragged: the longest sequence has 12 keys, more than the 10 positions per row/);
  assert.throws(() => topk(scores, 3, { ragged: { cuSeqlensQ: Int32Array.from([0, 1]), cuSeqlensK: Int32Array.from([0, 3]) } }), /cuSeqlensQ: the last entry must be the packed query count 2, got 1/);
  assert.throws(() => topk(scores, 3, { ragged, seqLens: Int32Array.from([2]) }), /ragged and seqLens: pass one of them/);
  assert.throws(() => topk(scores, 3, { ragged, causalOffset: 0 }), /ragged and causalOffset/);
  const out = new Float32Array(20).fill(7);
  assert.throws(() => generateMask({ data: new Int32Array(6), shape: [1, 2, 3] }, 10, { out, window: w([0, 3], [1, 2]) }), /window: row 1/);
  assert.ok(out.every((x) => x === 7), 'out untouched');
  assert.throws(() => windowMask(1, 2, 10, { window: w([0, 0], [1, 12]) }), /window: row 1/);
});

test('resolveRowKeys folds a causal offset into a window and clamps empty ranges', () => {
  const keys = resolveRowKeys({ causalOffset: 1, window: { start: Int32Array.from([0, 3, 5]), end: Int32Array.from([10, 4, 10]) } }, 1, 3, 10, allocLocal)!;
  assert.deepEqual([...keys.lo], [0, 3, 5]);
  assert.deepEqual([...keys.hi], [2, 3, 5]); // row 1 may see j <= 2 but its window starts at 3: empty
});
