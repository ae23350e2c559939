import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compareSelections, VERDICTS, type CompareOptions, type Verdict } from '../../src/compare/selections.js';
import { kthLargest } from '../../src/compare/kernels.js';

const t32 = (data: number[], shape: number[]) => ({ data: Int32Array.from(data), shape });
const f32 = (data: number[], shape: number[]) => ({ data: Float32Array.from(data), shape });

/**
 * The rule by hand, with Sets and a full sort: the tiny reference every
 * property below is checked against (eps: the near-tie distance allowed).
 */
function reference(a: Int32Array, b: Int32Array, rows: number, k: number, S: ArrayLike<number> | null, s: number, eps: (tau: number) => number): { verdict: Verdict[]; tau: number[]; gap: number[]; margin: number[] } {
  const out = { verdict: [] as Verdict[], tau: [] as number[], gap: [] as number[], margin: [] as number[] };
  for (let r = 0; r < rows; r++) {
    const listA = [...a.subarray(r * k, r * k + k)].map((x) => (x < 0 ? -1 : x));
    const listB = [...b.subarray(r * k, r * k + k)].map((x) => (x < 0 ? -1 : x));
    const setA = new Set(listA.filter((x) => x >= 0));
    const setB = new Set(listB.filter((x) => x >= 0));
    const onlyA = [...setA].filter((x) => !setB.has(x));
    const onlyB = [...setB].filter((x) => !setA.has(x));
    const sameSet = onlyA.length === 0 && onlyB.length === 0;
    let verdict: Verdict = listA.every((x, i) => x === listB[i]) ? 'identical' : sameSet ? 'sets' : 'different';
    if (S === null) {
      out.verdict.push(verdict);
      continue;
    }
    const row = Array.from({ length: s }, (_, j) => S[r * s + j]).sort((x, y) => y - x);
    const tau = s < k ? -Infinity : row[k - 1];
    const next = s <= k ? -Infinity : row[k];
    out.tau.push(tau);
    out.gap.push(s <= k ? Infinity : next === tau ? 0 : next === -Infinity ? Infinity : tau - next); // no (k+1)-th key, or none below tau: nothing can enter
    const dev = (x: number) => (S[r * s + x] === tau ? 0 : Math.abs(S[r * s + x] - tau));
    const D = [...onlyA, ...onlyB];
    out.margin.push(Math.max(0, ...D.map(dev)));
    if (!sameSet) {
      const live = (set: Set<number>) => [...set].filter((x) => S[r * s + x] > -Infinity).length;
      const sameCount = live(setA) === live(setB);
      verdict = sameCount && D.every((x) => dev(x) === 0) ? 'ties' : sameCount && D.every((x) => dev(x) === 0 || (dev(x) < Infinity && dev(x) <= eps(tau))) ? 'nearTies' : 'different';
    }
    out.verdict.push(verdict);
  }
  return out;
}

/** An exact top-k of one row: descending score, ties broken by `order` (a permutation of 0..s-1, earlier first). */
function topkBy(S: ArrayLike<number>, at: number, s: number, k: number, order: number[]): number[] {
  const rank = new Int32Array(s);
  order.forEach((j, i) => (rank[j] = i));
  const keys = Array.from({ length: s }, (_, j) => j).sort((x, y) => S[at + y] - S[at + x] || rank[x] - rank[y]);
  return Array.from({ length: k }, (_, i) => (i < s ? keys[i] : -1));
}

function rng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) % n);
}

function shuffled(n: number, next: (n: number) => number): number[] {
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = next(i + 1);
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

const names = (v: Uint8Array) => [...v].map((c) => VERDICTS[c]);

test('random rows (padding, duplicates, -inf scores, s < k, k = s, many ties): verdicts, tau, gap and margin equal the reference', () => {
  fc.assert(
    fc.property(
      fc.record({
        rows: fc.integer({ min: 1, max: 5 }), s: fc.integer({ min: 1, max: 24 }), k: fc.integer({ min: 1, max: 10 }),
        levels: fc.integer({ min: 1, max: 6 }), seed: fc.integer(), kind: fc.constantFrom('random', 'topk', 'nearTopk'),
        abs: fc.constantFrom(0, 0.5, 1.5), inf: fc.boolean(), f64: fc.boolean(),
      }),
      ({ rows, s, k, levels, seed, kind, abs, inf, f64 }) => {
        const next = rng(seed);
        const values = Array.from({ length: rows * s }, () => (inf && next(5) === 0 ? -Infinity : next(levels)));
        const S = f64 ? Float64Array.from(values) : Float32Array.from(values);
        const a = new Int32Array(rows * k), b = new Int32Array(rows * k);
        for (let r = 0; r < rows; r++) {
          const ta = topkBy(S, r * s, s, k, shuffled(s, next));
          const tb = topkBy(S, r * s, s, k, shuffled(s, next));
          for (let i = 0; i < k; i++) {
            // random: any key, padding or a repeat; topk: two tie-breaks; nearTopk: one slot replaced now and then.
            a[r * k + i] = kind === 'random' ? next(s + 1) - 1 : ta[i];
            b[r * k + i] = kind === 'random' ? next(s + 1) - 1 : kind === 'nearTopk' && next(3) === 0 ? next(s + 2) - 2 : tb[i];
          }
        }
        const result = compareSelections({ data: a, shape: [rows, k] }, { data: b, shape: [rows, k] }, { scores: { data: S, shape: [rows, s] }, tolerance: { abs } });
        const ref = reference(a, b, rows, k, S, s, () => abs);
        // The TypeScript pass gives what the SIMD pass gives (float32 scores; float64 always run in TypeScript).
        const plain = compareSelections({ data: a, shape: [rows, k] }, { data: b, shape: [rows, k] }, { scores: { data: S, shape: [rows, s] }, tolerance: { abs }, simd: false });
        for (const name of ['verdict', 'threshold', 'gap', 'margin', 'keysA', 'keysB'] as const) assert.deepEqual(plain[name], result[name], name);
        assert.deepEqual(plain.first, result.first);
        assert.deepEqual(names(result.verdict), ref.verdict);
        assert.deepEqual([...result.threshold], ref.tau);
        assert.deepEqual([...result.gap], ref.gap);
        assert.deepEqual([...result.margin], ref.margin);
        if (kind === 'topk') assert.ok(ref.verdict.every((v) => v !== 'different' && v !== 'nearTies'), 'two exact top-k differ only among ties');
        const counts = Object.fromEntries(VERDICTS.map((v) => [v, ref.verdict.filter((x) => x === v).length]));
        assert.deepEqual(result.summary.counts, counts);
        assert.equal(result.summary.equal, counts.different === 0);
        assert.equal(result.summary.firstDifferent, ref.verdict.indexOf('different'));
      },
    ),
    { numRuns: 400 },
  );
});

test('without scores: identical, sets and different only, said in the result; the first missing key by slot', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 12 }), fc.integer(), (rows, k, s, seed) => {
      const next = rng(seed);
      const a = Int32Array.from({ length: rows * k }, () => next(s + 1) - 1);
      const b = a.map((x) => (next(4) === 0 ? next(s + 1) - 1 : x));
      // With s given the sets are compared by marks per key, without it by sorted lists: the same verdicts.
      const result = compareSelections({ data: a, shape: [rows, k] }, { data: b, shape: [rows, k] }, next(2) === 0 ? { s } : {});
      assert.equal(result.scored, false);
      assert.deepEqual(result.decidable, ['identical', 'sets', 'different']);
      assert.deepEqual(names(result.verdict), reference(a, b, rows, k, null, s, () => 0).verdict);
      for (let r = 0; r < rows; r++) {
        const A = new Set(a.subarray(r * k, r * k + k)), B = new Set(b.subarray(r * k, r * k + k));
        let slot = -1;
        for (let i = 0; i < k && slot < 0; i++) if ((a[r * k + i] >= 0 && !B.has(a[r * k + i])) || (b[r * k + i] >= 0 && !A.has(b[r * k + i]))) slot = i;
        assert.equal(result.first.slot[r], slot);
        assert.ok(Number.isNaN(result.threshold[r]) && Number.isNaN(result.first.score[r]));
      }
    }),
    { numRuns: 200 },
  );
});

test('permuted ties are equal: two top-k of the same scores under different tie-breaks are identical, sets or ties', () => {
  fc.assert(
    fc.property(fc.integer({ min: 2, max: 64 }), fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 4 }), fc.integer(), (s, k, levels, seed) => {
      const next = rng(seed);
      const S = Float32Array.from({ length: s }, () => next(levels) * 0.25);
      const a = topkBy(S, 0, s, k, shuffled(s, next));
      const other = topkBy(S, 0, s, k, shuffled(s, next));
      const b = shuffled(k, next).map((i) => other[i]); // another tie-break, slots shuffled too
      const r = compareSelections(t32(a, [1, k]), t32(b, [1, k]), { scores: { data: S, shape: [1, s] } });
      assert.ok(['identical', 'sets', 'ties'].includes(VERDICTS[r.verdict[0]]), VERDICTS[r.verdict[0]]);
      assert.equal(r.margin[0], 0);
    }),
    { numRuns: 300 },
  );
});

test('a perturbation within the tolerance is a near-tie: top-k of S + noise (|noise| <= e) against top-k of S is never different at abs = 2e', () => {
  fc.assert(
    fc.property(fc.integer({ min: 8, max: 200 }), fc.integer({ min: 1, max: 32 }), fc.double({ min: 1e-6, max: 0.5, noNaN: true }), fc.integer(), (s, k, e, seed) => {
      const next = rng(seed);
      const S = Float64Array.from({ length: s }, () => next(1000) / 100);
      const noisy = S.map((x) => x + ((next(2001) - 1000) / 1000) * e);
      const order = shuffled(s, next);
      const a = topkBy(S, 0, s, k, order), b = topkBy(noisy, 0, s, k, order);
      const r = compareSelections(t32(a, [1, k]), t32(b, [1, k]), { scores: { data: S, shape: [1, s] }, tolerance: { abs: 2 * e } });
      assert.notEqual(VERDICTS[r.verdict[0]], 'different', `margin ${r.margin[0]}, 2e ${2 * e}`);
      assert.ok(r.margin[0] <= 2 * e);
      // The same pair with no tolerance: ties or better exactly when the margin is 0.
      const strict = compareSelections(t32(a, [1, k]), t32(b, [1, k]), { scores: { data: S, shape: [1, s] } });
      assert.equal(VERDICTS[strict.verdict[0]] === 'different', r.margin[0] > 0);
    }),
    { numRuns: 300 },
  );
});

test('a swapped far key is a difference, named by slot, key and score with its margin', () => {
  fc.assert(
    fc.property(fc.integer({ min: 4, max: 100 }), fc.integer(), (s, seed) => {
      const next = rng(seed);
      const k = 1 + next(s - 2); // at least 2 keys left out
      const S = Float32Array.from(shuffled(s, next), (x) => x * 10); // distinct, 10 apart
      const a = topkBy(S, 0, s, k, shuffled(s, next));
      const outside = [...Array(s).keys()].filter((j) => !a.includes(j));
      const far = outside.reduce((m, j) => (S[j] < S[m] ? j : m)); // the lowest score
      const slot = next(k);
      const b = a.slice();
      b[slot] = far;
      const tau = Math.min(...a.map((j) => S[j]));
      const r = compareSelections(t32(a, [1, k]), t32(b, [1, k]), { scores: { data: S, shape: [1, s] }, tolerance: { abs: 1 } });
      assert.equal(VERDICTS[r.verdict[0]], 'different');
      assert.equal(r.first.slot[0], slot);
      // The dropped key scores tau or above; the far key at least 10 below tau: whichever is first and breaks the rule.
      const key = r.first.key[0];
      assert.ok(key === a[slot] || key === far);
      assert.equal(r.first.side[0], key === far ? 1 : 0);
      assert.equal(r.first.score[0], S[key]);
      assert.ok(Math.abs(S[key] - tau) > 1);
      assert.equal(r.threshold[0], tau);
      assert.equal(r.margin[0], Math.max(Math.abs(S[far] - tau), Math.abs(S[a[slot]] - tau)));
      assert.equal(r.summary.firstDifferent, 0);
    }),
    { numRuns: 200 },
  );
});

test('identical lists are identical, scored or not, whatever the scores', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 1, max: 10 }), fc.integer(), (s, k, seed) => {
      const next = rng(seed);
      const a = Int32Array.from({ length: 3 * k }, () => next(s + 1) - 1);
      const S = Float32Array.from({ length: 3 * s }, () => next(7) - 3);
      const b = a.map((x) => (x < 0 ? -1 - next(5) : x)); // any negative is none
      for (const opts of [{}, { scores: { data: S, shape: [3, s] } }] as CompareOptions[]) {
        const r = compareSelections({ data: a, shape: [3, k] }, { data: b, shape: [3, k] }, opts);
        assert.deepEqual(names(r.verdict), ['identical', 'identical', 'identical']);
        assert.deepEqual([...r.first.slot], [-1, -1, -1]);
      }
    }),
    { numRuns: 100 },
  );
});

test('edge rows: -1 padding against -inf keys (select-then-mask), all-ties rows, k = s, s < k, duplicates', () => {
  // Row 0: fewer than k keys score above -inf; A pads with -1 (vLLM), B selects -inf keys (DeepSeek's topk before the mask).
  // Row 1: every score equal: any two sets of k keys are ties.
  // Row 2: k = s: every key is selected; padding one of them is a difference.
  const S = f32([5, 4, -Infinity, -Infinity, 2, 2, 2, 2, 1, 2, 3, 4], [3, 4]);
  const a = t32([0, 1, -1, -1, 0, 1, 2, 3, 0, 1, 2, 3], [3, 4]);
  const b = t32([1, 0, 2, 3, 3, 2, 1, 0, 3, 2, 1, -1], [3, 4]);
  const r = compareSelections(a, b, { scores: S });
  assert.deepEqual(names(r.verdict), ['ties', 'sets', 'different']);
  assert.deepEqual([...r.threshold], [-Infinity, 2, 1]);
  assert.deepEqual([...r.gap], [Infinity, Infinity, Infinity]);
  assert.deepEqual([...r.keysA], [2, 4, 4]);
  assert.deepEqual([...r.keysB], [2, 4, 3]);
  // Row 2: B misses key 0 (score 1 = tau): at tau, but B holds 3 keys against A's 4.
  assert.deepEqual([r.first.slot[2], r.first.key[2], r.first.side[2], r.first.score[2]], [0, 0, 0, 1]);
  assert.equal(r.summary.firstDifferent, 2);
  // s < k: tau is -inf, both pad; duplicates count once.
  const small = compareSelections(t32([2, 2, 0, 1, -1], [1, 5]), t32([0, 1, 2, -1, -1], [1, 5]), { scores: f32([1, 2, 3], [1, 3]) });
  assert.deepEqual([names(small.verdict)[0], small.threshold[0], small.gap[0]], ['sets', -Infinity, Infinity]);
  // All ties at k < s with a key outside the tie: a real difference.
  const ties = compareSelections(t32([0, 1], [1, 2]), t32([2, 3], [1, 2]), { scores: f32([1, 1, 1, 0], [1, 4]) });
  assert.deepEqual([names(ties.verdict)[0], ties.gap[0], ties.first.key[0], ties.first.side[0]], ['different', 0, 3, 1]);
  // [b, t, k] and int64 indices, [b, t, s] scores.
  const wide = compareSelections({ data: BigInt64Array.from([0n, 1n, 0n, 2n]), shape: [2, 1, 2] }, t32([1, 0, 0, 1], [2, 1, 2]), { scores: f32([1, 1, 0, 0, 2, 1, 1, 0], [2, 1, 4]) });
  assert.deepEqual(names(wide.verdict), ['sets', 'ties']);
});

test('the k-th score by quickselect equals the k-th of a sort (the fallback when neither set is a top-k)', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.integer({ min: -3, max: 3 }), fc.double({ noNaN: true })), { minLength: 1, maxLength: 300 }), fc.nat(), (values, kSeed) => {
      const k = 1 + (kSeed % values.length);
      const x = Float64Array.from(values);
      const expected = Float64Array.from(values).sort().reverse()[k - 1];
      assert.ok(kthLargest(x, x.length, k) === expected); // -0 === 0: the k-th value, either zero
      const zeroed = (v: ArrayLike<number>) => Array.from(v, (y) => (y === 0 ? 0 : y)).sort((p, q) => p - q);
      assert.deepEqual(zeroed(x), zeroed(values), 'a reordering, nothing lost');
    }),
    { numRuns: 500 },
  );
});

test('relative tolerance and the bf16 / fp16 score-rounding bounds: a key counts as a near-tie exactly within its bound', () => {
  // tau = 100 (key 0); key 1 at 100 - d stands in for it in B.
  const row = (d: number, tolerance: CompareOptions['tolerance']) =>
    VERDICTS[compareSelections(t32([0], [1, 1]), t32([1], [1, 1]), { scores: { data: Float64Array.from([100, 100 - d, 0]), shape: [1, 3] }, tolerance }).verdict[0]];
  assert.equal(row(0.5, { rel: 0.005 }), 'nearTies');
  assert.equal(row(0.51, { rel: 0.005 }), 'different');
  // bf16: 2u(1 + u) max(|x|, |tau|) with u = 2^-8.
  const bf16 = 2 * 2 ** -8 * (1 + 2 ** -8) * 100;
  assert.equal(row(bf16, { precision: 'bf16' }), 'nearTies');
  assert.equal(row(bf16 * 1.01, { precision: 'bf16' }), 'different');
  const fp16 = 2 * 2 ** -11 * (1 + 2 ** -11) * 100;
  assert.equal(row(fp16, { precision: 'fp16', precisionOf: 'scores' }), 'nearTies');
  assert.equal(row(fp16 * 1.01, { precision: 'fp16' }), 'different');
  // The terms add up.
  assert.equal(row(fp16 + 0.25, { precision: 'fp16', abs: 0.25 }), 'nearTies');
  // Any two values that round to the same bf16 value are within the bound.
  fc.assert(
    fc.property(fc.float({ noNaN: true, noDefaultInfinity: true, min: Math.fround(-1e30), max: Math.fround(1e30) }), fc.integer({ min: 0, max: 0xffff }), (x, low) => {
      const bits = new Uint32Array(Float32Array.of(x).buffer)[0];
      const rounded = (bits + 0x7fff + ((bits >>> 16) & 1)) & 0xffff0000;
      // Another float32 with the same bf16 rounding: same upper half, another lower half (kept on the same side of the half-way point).
      const other = new Float32Array(new Uint32Array([((rounded - 0x8000) >>> 0) + (low >>> 1) + 1]).buffer)[0];
      const otherBits = new Uint32Array(Float32Array.of(other).buffer)[0];
      if (((otherBits + 0x7fff + ((otherBits >>> 16) & 1)) & 0xffff0000) !== rounded || !Number.isFinite(other)) return;
      const d = Math.abs(Math.fround(x) - other);
      assert.ok(d <= 2 * 2 ** -8 * (1 + 2 ** -8) * Math.max(Math.abs(x), Math.abs(other)) || d <= 2 ** -133, `${x} ${other}`);
    }),
    { numRuns: 500 },
  );
});

test('errors name the argument: shapes, out-of-range indices, NaN scores, unknown options, tolerances without scores', () => {
  const a = t32([0, 1], [1, 2]);
  const S = f32([1, 2, 3], [1, 3]);
  assert.throws(() => compareSelections(a, t32([0, 3], [1, 2]), { scores: S }), /^RangeError: b: value 3 at row 0, slot 1 must be < s = 3/);
  assert.throws(() => compareSelections(t32([5, 0], [1, 2]), a, { s: 4 }), /^RangeError: a: value 5 at row 0, slot 0 must be < s = 4/);
  assert.throws(() => compareSelections(a, t32([0, 1, 2], [1, 3])), /^RangeError: b\.shape: expected a's shape \[1, 2\], got \[1, 3\]/);
  assert.throws(() => compareSelections(a, a, { scores: f32([1, NaN, 3], [1, 3]) }), /^RangeError: scores: NaN at row 0, key 1/);
  assert.throws(() => compareSelections(a, a, { scores: f32([1, 2, 3, 4, 5, 6], [2, 3]) }), /^RangeError: scores\.shape: expected \[1, s\]/);
  assert.throws(() => compareSelections(a, a, { scores: S, tolerance: { abs: 1, eps: 2 } as never }), /^TypeError: tolerance: unknown option 'eps'/);
  assert.throws(() => compareSelections(a, a, { score: S } as never), /^TypeError: compareSelections options: unknown option 'score'/);
  assert.throws(() => compareSelections(a, a, { tolerance: { abs: 1 } }), /^RangeError: tolerance: a near-tie needs scores/);
  assert.throws(() => compareSelections(a, a, { scores: S, tolerance: { abs: -1 } }), /^RangeError: tolerance\.abs: expected a finite number >= 0, got -1/);
  assert.throws(() => compareSelections(a, a, { scores: S, tolerance: { precision: 'int8' } }), /^RangeError: tolerance\.precision: 'int8' bounds quantized indexer inputs/);
  assert.throws(() => compareSelections(a, a, { scores: S, tolerance: { precision: 'fp32' as never } }), /^RangeError: tolerance\.precision: expected one of 'bf16', 'fp16', 'fp8', 'int8'/);
  assert.throws(() => compareSelections(a, a, { scores: S, tolerance: { precision: 'bf16', precisionOf: 'inputs' } }), /^RangeError: tolerance\.precisionOf: 'inputs' needs inputs/);
  assert.throws(() => compareSelections({ data: new Float32Array(2), shape: [1, 2] } as never, a), /^TypeError: a\.data: expected a Int32Array or a BigInt64Array/);
  assert.throws(() => compareSelections({ data: BigInt64Array.from([0n, 2n ** 40n]), shape: [1, 2] }, a), /^RangeError: a: element 1 is 1099511627776, outside int32/);
});

test('rows longer than the SIMD pass\'s 32768-score chunks: the same verdicts, tau and gap as the reference and the TypeScript pass; a NaN in a late chunk is named', () => {
  const next = rng(99);
  const [rows, s, k] = [3, 70001, 300];
  const S = Float32Array.from({ length: rows * s }, () => (next(2000) - 1000) / 64); // many equal scores
  const a = new Int32Array(rows * k), b = new Int32Array(rows * k);
  for (let r = 0; r < rows; r++) {
    const ta = topkBy(S, r * s, s, k, shuffled(s, next));
    const tb = topkBy(S, r * s, s, k, shuffled(s, next));
    a.set(ta, r * k);
    b.set(tb, r * k);
  }
  b[2 * k + 7] = 69999; // row 2: a key outside the top-k
  const opts = { scores: { data: S, shape: [rows, s] }, tolerance: { abs: 0.5 } };
  const fast = compareSelections({ data: a, shape: [rows, k] }, { data: b, shape: [rows, k] }, opts);
  const plain = compareSelections({ data: a, shape: [rows, k] }, { data: b, shape: [rows, k] }, { ...opts, simd: false });
  const ref = reference(a, b, rows, k, S, s, () => 0.5);
  assert.deepEqual(names(fast.verdict), ref.verdict);
  assert.deepEqual([...fast.threshold], ref.tau);
  assert.deepEqual([...fast.gap], ref.gap);
  assert.deepEqual([...fast.margin], ref.margin);
  for (const name of ['verdict', 'threshold', 'gap', 'margin'] as const) assert.deepEqual(plain[name], fast[name], name);
  const bad = S.slice();
  bad[s + 65537] = NaN;
  for (const simd of [true, false]) {
    assert.throws(() => compareSelections({ data: a, shape: [rows, k] }, { data: a, shape: [rows, k] }, { scores: { data: bad, shape: [rows, s] }, simd }), /^RangeError: scores: NaN at row 1, key 65537/);
  }
});

test('the gap when every other key scores far below the k-th (the pass widens its guess), or the k keys all score the same', () => {
  const k = 8;
  for (const [top, rest] of [[(i: number) => 100 + i / 100, -50], [() => 3, -2e6], [() => 0, -1e-30], [() => -7, -Infinity]] as [(i: number) => number, number][]) {
    const s = 5000;
    const S = Float32Array.from({ length: s }, (_, j) => (j % 600 === 0 && j / 600 < k ? top(j / 600) : rest));
    const a = Int32Array.from({ length: k }, (_, i) => i * 600);
    const ref = reference(a, a, 1, k, S, s, () => 0);
    for (const simd of [true, false]) {
      const r = compareSelections({ data: a, shape: [1, k] }, { data: a, shape: [1, k] }, { scores: { data: S, shape: [1, s] }, simd });
      assert.deepEqual([r.threshold[0], r.gap[0]], [ref.tau[0], ref.gap[0]], `top ${top(0)}, rest ${rest}, simd ${simd}`);
    }
  }
});
