// seqLens shorter than t (shortSequences: 'empty'): vLLM's paged logits take
// context_len < next_n, query i of a sequence sitting at position
// context_len - next_n + i; a negative one matches no key. Checked against the
// golden logits of test/golden/make_vllm.py (vLLM's _ref_fp8_paged_mqa_logits
// restated in float32 PyTorch) and against a plain restatement of the same
// reference below, through scores (paged and contiguous, every precision's
// -Infinity pattern), top-k (all -1 / -Infinity), masks (every key dropped)
// and sparse attention over the selection (out 0, lse +Infinity, FlashMLA's
// convention). The default still refuses such seqLens by name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { indexerScores } from '../../src/indexer/scores.js';
import { topk } from '../../src/topk/topk.js';
import { generateMask, windowMask } from '../../src/mask/masks.js';
import { sparseAttention } from '../../src/attention/sparse.js';
import { createPool } from '../../src/pool/index.js';
import { decodeNpy } from '../../src/io/npy.js';
import type { Tensor, TypedArray } from '../../src/tensor.js';
import { rng } from '../../src/cli/demo-data.js';
import { assertClose } from '../helpers/close.js';

function load<T extends TypedArray>(name: string): Tensor<T> {
  const t = decodeNpy(new Uint8Array(readFileSync(new URL(`../golden/fixtures/${name}.npy`, import.meta.url))), name);
  return { data: t.data as T, shape: t.shape };
}

function floats(shape: number[], seed: number): Tensor<Float32Array> {
  const next = rng(seed);
  return { data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => next() * 2 - 1), shape };
}

/**
 * vLLM's _ref_fp8_paged_mqa_logits in plain loops (float64): q [b, nextN, h, d],
 * pages [numBlocks, P, d], weights [b * nextN, h]; row i * nextN + n sees
 * key positions kp < ctx with kp <= ctx - nextN + n; everything else -Infinity.
 */
function vllmPagedLogits(q: Float32Array, pages: Float32Array, weights: Float32Array, contextLens: Int32Array, blockTable: Int32Array, maxBlocks: number, b: number, nextN: number, h: number, d: number, P: number, maxModelLen: number): Float64Array {
  const logits = new Float64Array(b * nextN * maxModelLen).fill(-Infinity);
  for (let i = 0; i < b; i++) {
    const ctx = contextLens[i];
    for (let blk = 0; blk < Math.ceil(ctx / P); blk++) {
      const page = blockTable[i * maxBlocks + blk];
      for (let n = 0; n < nextN; n++) {
        const qPos = ctx - nextN + n; // negative before the sequence's first token
        for (let o = 0; o < P; o++) {
          const kPos = blk * P + o;
          if (!(kPos < ctx && kPos <= qPos) || kPos >= maxModelLen) continue;
          let s = 0;
          for (let hh = 0; hh < h; hh++) {
            let dot = 0;
            for (let e = 0; e < d; e++) dot += q[((i * nextN + n) * h + hh) * d + e] * pages[(page * P + o) * d + e];
            s += Math.max(dot, 0) * weights[(i * nextN + n) * h + hh];
          }
          logits[(i * nextN + n) * maxModelLen + kPos] = s;
        }
      }
    }
  }
  return logits;
}

test("indexerScores paged with shortSequences 'empty' equals vLLM's paged-logits reference (golden: context lens 0, 1, 9, 2 with next_n 3)", () => {
  const q = load<Float32Array>('vllm_short_q'); // [b, nextN, h, d]
  const kvCache = load<Float32Array>('vllm_short_kv_cache'); // [numBlocks, P, 1, d]
  const weights = load<Float32Array>('vllm_short_weights'); // [b * nextN, h]
  const seqLens = load<Int32Array>('vllm_short_context_lens').data;
  const table = load<Int32Array>('vllm_short_block_tables');
  const want = load<Float32Array>('vllm_short_logits'); // [b * nextN, maxModelLen]
  const [b, nextN, h, d] = q.shape, [numBlocks, P] = kvCache.shape, maxLen = want.shape[1];
  const pages = { data: kvCache.data, shape: [numBlocks, P, d] };
  const w = { data: weights.data, shape: [b, nextN, h] };
  for (const simd of [true, false]) {
    const got = indexerScores(q, pages, w, { blockTable: table, seqLens, maxLen, shortSequences: 'empty', simd });
    assert.deepEqual(got.shape, [b, nextN, maxLen]);
    assertClose(got.data, want.data, { rtol: 1e-5, atol: 1e-5 }, `simd=${simd}`);
  }
  // Rows whose query position is negative see nothing: all of sequence 0, the first two of sequence 1, the first of sequence 3.
  const got = indexerScores(q, pages, w, { blockTable: table, seqLens, maxLen, shortSequences: 'empty' }).data;
  for (const r of [0, 1, 2, 3, 4, 9]) assert.ok(got.subarray(r * maxLen, (r + 1) * maxLen).every((v) => v === -Infinity), `row ${r}: -Infinity everywhere`);
  // The default is unchanged: a sequence shorter than t is refused, naming it and the option.
  assert.throws(() => indexerScores(q, pages, w, { blockTable: table, seqLens, maxLen }), {
    name: 'RangeError', message: /^seqLens: sequence 0 has length 0; expected 3 <= length <= 12 \(.*shortSequences: 'empty' lets a shorter one's first queries see no keys\)$/,
  });
});

const caseArb = fc.record({
  b: fc.integer({ min: 1, max: 3 }), nextN: fc.integer({ min: 1, max: 4 }), h: fc.integer({ min: 1, max: 3 }), d: fc.constantFrom(4, 8, 16),
  P: fc.integer({ min: 1, max: 5 }), extra: fc.integer({ min: 0, max: 6 }), seed: fc.integer(),
});

/** A paged case: context lengths 0 .. nextN + extra (often below nextN), a shuffled block table, and the reference logits. */
function pagedCase({ b, nextN, h, d, P, extra, seed }: { b: number; nextN: number; h: number; d: number; P: number; extra: number; seed: number }) {
  const next = rng(seed);
  const maxLen = nextN + extra;
  const seqLens = Int32Array.from({ length: b }, () => Math.floor(next() * (maxLen + 1)));
  const maxBlocks = Math.ceil(maxLen / P), numBlocks = b * maxBlocks + 1;
  const order = Array.from({ length: numBlocks }, (_, i) => i);
  for (let i = numBlocks - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const table = Int32Array.from({ length: b * maxBlocks }, (_, i) => order[i]);
  const q = floats([b, nextN, h, d], seed + 1), pages = floats([numBlocks, P, d], seed + 2), w = floats([b, nextN, h], seed + 3);
  const want = vllmPagedLogits(q.data, pages.data, w.data, seqLens, table, maxBlocks, b, nextN, h, d, P, maxLen);
  return { q, pages, w, seqLens, blockTable: { data: table, shape: [b, maxBlocks] }, maxLen, want };
}

test('property: paged and contiguous indexerScores with short seqLens equal the restated reference; int8 and fp8 see exactly the same keys', () => {
  fc.assert(
    fc.property(caseArb, (c) => {
      const { q, pages, w, seqLens, blockTable, maxLen, want } = pagedCase(c);
      const opts = { seqLens, shortSequences: 'empty' as const };
      const paged = indexerScores(q, pages, w, { ...opts, blockTable, maxLen });
      assertClose(paged.data, want, { rtol: 1e-5, atol: 1e-5 }, 'paged');
      // The contiguous form: each sequence's keys gathered into [b, maxLen, d].
      const { b, d, P } = c, maxBlocks = blockTable.shape[1];
      const flat = new Float32Array(b * maxLen * d);
      for (let bi = 0; bi < b; bi++) for (let p = 0; p < seqLens[bi]; p++) {
        const slot = blockTable.data[bi * maxBlocks + Math.floor(p / P)] * P + (p % P);
        flat.set(pages.data.subarray(slot * d, (slot + 1) * d), (bi * maxLen + p) * d);
      }
      const contiguous = indexerScores(q, { data: flat, shape: [b, maxLen, d] }, w, opts);
      assertClose(contiguous.data, want, { rtol: 1e-5, atol: 1e-5 }, 'contiguous');
      for (const precision of ['int8', 'fp8'] as const) {
        if (precision === 'fp8' && (d & (d - 1)) !== 0) continue;
        const quantized = indexerScores(q, pages, w, { ...opts, blockTable, maxLen, precision }).data;
        for (let i = 0; i < want.length; i++) assert.equal(quantized[i] === -Infinity, want[i] === -Infinity, `${precision}: position ${i} seen alike`);
      }
    }),
    { numRuns: 150 },
  );
});

test("property: topk, generateMask and windowMask with short seqLens: rows before the sequence select nothing (-1 / -Infinity) and drop every key", () => {
  fc.assert(
    fc.property(caseArb, fc.integer({ min: 1, max: 5 }), (c, k) => {
      const { q, pages, w, seqLens, blockTable, maxLen, want } = pagedCase(c);
      const { b, nextN } = c;
      const opts = { seqLens, shortSequences: 'empty' as const };
      const scores = indexerScores(q, pages, w, { ...opts, blockTable, maxLen });
      const sel = topk(scores, k, opts);
      for (let r = 0; r < b * nextN; r++) {
        const bi = Math.floor(r / nextN), qPos = seqLens[bi] - nextN + (r % nextN);
        // The definition: eligible positions 0 .. qPos, by value descending then position ascending, -1 / -Infinity past them.
        const eligible = Array.from({ length: Math.max(0, Math.min(qPos + 1, maxLen)) }, (_, j) => j);
        eligible.sort((x, y) => scores.data[r * maxLen + y] - scores.data[r * maxLen + x] || x - y);
        const idx = Array.from({ length: k }, (_, i) => (i < eligible.length ? eligible[i] : -1));
        assert.deepEqual([...sel.indices.data.subarray(r * k, (r + 1) * k)], idx, `row ${r} (query position ${qPos}): indices`);
        for (let i = 0; i < k; i++) assert.equal(sel.values.data[r * k + i], idx[i] < 0 ? -Infinity : scores.data[r * maxLen + idx[i]]);
        if (qPos < 0) assert.ok(want.subarray(r * maxLen, (r + 1) * maxLen).every((v) => v === -Infinity), 'the reference sees nothing either');
      }
      const range = windowMask(b, nextN, maxLen, opts, 'bool').data;
      const fromIndices = generateMask(sel.indices, maxLen, { ...opts, form: 'bool' }).data;
      for (let r = 0; r < b * nextN; r++) {
        const qPos = seqLens[Math.floor(r / nextN)] - nextN + (r % nextN);
        for (let j = 0; j < maxLen; j++) {
          assert.equal(range[r * maxLen + j], j <= qPos ? 1 : 0, `windowMask row ${r} key ${j}`);
          assert.equal(fromIndices[r * maxLen + j], sel.indices.data.subarray(r * k, (r + 1) * k).includes(j) ? 1 : 0, `generateMask row ${r} key ${j}`);
        }
      }
    }),
    { numRuns: 150 },
  );
});

test('sparse attention over such a selection: a row that selected nothing gives out 0 and lse +Infinity (FlashMLA), the others attend', () => {
  const b = 2, nextN = 3, h = 2, d = 8, P = 4, maxLen = 8, hq = 2, dqk = 8, k = 4;
  const seqLens = Int32Array.of(1, 6);
  const table = { data: Int32Array.of(0, 1, 2, 3), shape: [b, 2] };
  const scores = indexerScores(floats([b, nextN, h, d], 1), floats([4, P, d], 2), floats([b, nextN, h], 3), { blockTable: table, seqLens, maxLen, shortSequences: 'empty' });
  const sel = topk(scores, k, { seqLens, shortSequences: 'empty' });
  // Positions are per sequence; attend over each row's own keys, laid out [b * maxLen, 1, dqk].
  const kv = floats([b * maxLen, 1, dqk], 4);
  const slots = Int32Array.from(sel.indices.data, (p, i) => (p < 0 ? -1 : Math.floor(i / (nextN * k)) * maxLen + p));
  const r = sparseAttention(floats([b * nextN, hq, dqk], 5), kv, { data: slots, shape: [b * nextN, 1, k] });
  for (const row of [0, 1]) {
    assert.ok(sel.indices.data.subarray(row * k, (row + 1) * k).every((x) => x === -1), `row ${row} selected nothing`);
    assert.ok(r.out.data.subarray(row * hq * dqk, (row + 1) * hq * dqk).every((x) => x === 0), `row ${row}: out 0`);
    assert.ok(r.lse.data.subarray(row * hq, (row + 1) * hq).every((x) => x === Infinity), `row ${row}: lse +Infinity`);
    assert.ok(r.maxLogits.data.subarray(row * hq, (row + 1) * hq).every((x) => x === -Infinity), `row ${row}: maxLogits -Infinity`);
  }
  for (let row = 2; row < b * nextN; row++) assert.ok(r.lse.data.subarray(row * hq, (row + 1) * hq).every(Number.isFinite), `row ${row} attends`);
});

test("shortSequences: checked, 'empty' only with seqLens, bounds kept (negative, past s), the pool agrees", async () => {
  const q = floats([2, 3, 2, 4], 1), k = floats([2, 5, 4], 2), w = floats([2, 3, 2], 3);
  assert.throws(() => indexerScores(q, k, w, { seqLens: Int32Array.of(1, 5), shortSequences: 'skip' as never }), { name: 'RangeError', message: `shortSequences: expected one of 'error', 'empty', got string "skip"` });
  assert.throws(() => indexerScores(q, k, w, { shortSequences: 'empty' }), { name: 'RangeError', message: /^shortSequences: 'empty' applies to seqLens/ });
  assert.throws(() => topk(floats([2, 3, 5], 4), 2, { causalOffset: 2, shortSequences: 'empty' }), /^RangeError: shortSequences: 'empty' applies to seqLens/);
  assert.throws(() => indexerScores(q, k, w, { seqLens: Int32Array.of(-1, 5), shortSequences: 'empty' }), /seqLens: sequence 0 has length -1; expected 0 <= length <= 5 \(it holds at most s = 5 positions\)/);
  assert.throws(() => indexerScores(q, k, w, { seqLens: Int32Array.of(2, 6), shortSequences: 'empty' }), /seqLens: sequence 1 has length 6; expected 0 <= length <= 5/);
  // 'error' is the default, spelled out.
  assert.throws(() => topk(floats([2, 3, 5], 4), 2, { seqLens: Int32Array.of(2, 5), shortSequences: 'error' }), /seqLens: sequence 0 has length 2; expected 3 <= length <= 5/);
  const opts = { seqLens: Int32Array.of(1, 4), shortSequences: 'empty' as const };
  const scores = indexerScores(q, k, w, opts);
  const pool = createPool({ threads: 2 });
  try {
    assert.deepEqual((await pool.indexerScores(q, k, w, opts)).data, scores.data, 'scores');
    const [a, z] = [topk(scores, 2, opts), await pool.topk(scores, 2, opts)];
    assert.deepEqual(z.indices.data, a.indices.data, 'top-k indices');
    assert.deepEqual((await pool.windowMask(2, 3, 5, opts, 'bits')).data, windowMask(2, 3, 5, opts, 'bits').data, 'windowMask');
  } finally {
    await pool.close();
  }
});
