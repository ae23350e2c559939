// The pool's public functions on plain (non-shared) arrays, which it stages
// into shared memory it keeps: calls in flight together, then a larger one
// (its staging grows), then a smaller one, all equal the synchronous calls,
// and no result changes when later calls reuse the staging.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPool } from '../../src/pool/index.js';
import { generateMask, maskFromThreshold, sparseAttention, topk } from '../../src/index.js';
import { randomFloats, randomIndices } from '../attention/fixtures.js';

interface Case {
  t: number;
  s: number;
  k: number;
  seed: number;
}

const name = ({ t, s, k }: Case) => `t=${t} s=${s} k=${k}`;

/** Runs every function of the case on the pool and on this thread; returns the pairs to compare, now and later. */
async function runCase(pool: ReturnType<typeof createPool>, c: Case): Promise<[string, ArrayLike<number>, ArrayLike<number>][]> {
  const { t, s, k, seed } = c;
  const hq = 4, hkv = 2, dqk = 16, dV = 8;
  // [t, 1, k] per query for the masks, [t, hkv, k] for the attention; some -1 padding.
  const maskIndices = randomIndices(t, 1, k, s, seed, 0.1, 0.1);
  const indices = { data: maskIndices.data, shape: [1, t, k] };
  const scores = randomFloats([1, t, s], seed + 1);
  const q = randomFloats([t, hq, dqk], seed + 2), kv = randomFloats([s, hkv, dqk], seed + 3);
  const attnIndices = randomIndices(t, hkv, k, s, seed + 4, 0.1, 0.1);
  const out = new Float32Array(t * s);
  const opts = { outOfRange: 'skip' as const };

  const [intoOut, fresh, bits, top, attn] = await Promise.all([
    pool.generateMask(indices, s, { ...opts, out }),
    pool.generateMask(indices, s, { ...opts, form: 'bool' }),
    pool.generateMask(indices, s, { ...opts, form: 'bits', causalOffset: s - t }),
    pool.topk(scores, k),
    pool.sparseAttention(q, kv, attnIndices, { dV }),
  ]);
  assert.equal(intoOut.data, out, `${name(c)}: the caller's out`);
  const threshold = await pool.maskFromThreshold(scores, { data: Float32Array.from(top.values.data), shape: [1, t, k] }, { form: 'bits' });

  const want = {
    intoOut: generateMask(indices, s, opts),
    fresh: generateMask(indices, s, { ...opts, form: 'bool' }),
    bits: generateMask(indices, s, { ...opts, form: 'bits', causalOffset: s - t }),
    top: topk(scores, k),
    attn: sparseAttention(q, kv, attnIndices, { dV }),
  };
  const thresholdWant = maskFromThreshold(scores, want.top.values, { form: 'bits' });
  return [
    [`${name(c)} generateMask additive into out`, intoOut.data, want.intoOut.data],
    [`${name(c)} generateMask bool`, fresh.data, want.fresh.data],
    [`${name(c)} generateMask bits causal`, bits.data, want.bits.data],
    [`${name(c)} topk values`, top.values.data, want.top.values.data],
    [`${name(c)} topk indices`, top.indices.data, want.top.indices.data],
    [`${name(c)} sparseAttention out`, attn.out.data, want.attn.out.data],
    [`${name(c)} sparseAttention lse`, attn.lse.data, want.attn.lse.data],
    [`${name(c)} maskFromThreshold bits`, threshold.data, thresholdWant.data],
  ];
}

test('pool on plain arrays: concurrent, growing and shrinking calls are bit-identical to the synchronous calls', async () => {
  const pool = createPool({ threads: 2 });
  try {
    const rounds: Case[][] = [
      [{ t: 6, s: 200, k: 16, seed: 1 }, { t: 17, s: 700, k: 40, seed: 2 }],
      [{ t: 40, s: 3000, k: 64, seed: 3 }],
      [{ t: 3, s: 50, k: 8, seed: 4 }, { t: 17, s: 700, k: 40, seed: 5 }, { t: 9, s: 333, k: 33, seed: 6 }],
      [{ t: 6, s: 200, k: 16, seed: 7 }],
    ];
    const earlier: [string, ArrayLike<number>, ArrayLike<number>][] = [];
    for (const round of rounds) {
      const pairs = (await Promise.all(round.map((c) => runCase(pool, c)))).flat();
      for (const [what, got, want] of pairs) assert.deepEqual(got, want, what);
      // Results of earlier rounds are unchanged by the calls that reused their staging.
      for (const [what, got, want] of earlier) assert.deepEqual(got, want, `${what}, after later calls`);
      earlier.push(...pairs);
    }
    const bad = randomIndices(4, 1, 8, 100, 9);
    bad.data[13] = 100;
    const out = new Float32Array(4 * 100).fill(2);
    await assert.rejects(pool.generateMask({ data: bad.data, shape: [1, 4, 8] }, 100, { out }), { name: 'RangeError' });
    assert.ok(out.every((x) => x === 2), 'a rejected call leaves out untouched');
    const [again] = await runCase(pool, { t: 5, s: 100, k: 8, seed: 10 });
    assert.deepEqual(again[1], again[2], again[0]);
  } finally {
    await pool.close();
  }
});
