// A fuzz of compareSelections and summarizeComparison: pairs of selections
// built from random scores (exact top-k under different tie-breaks and slot
// orders, a key swapped for a near-tie or a far one, a key dropped to -1,
// duplicates, padding where s < k, -Infinity keys), with scores in float32
// or float64, rank 2 or 3, int32 or int64 indices, recomputed from indexer
// inputs, with abs / rel / bf16 / fp16 tolerances, and wrong options, shapes
// and kinds. Every row's verdict, tau, gap, margin, live counts and first
// differing key must be those of docs/compare.md's definitions, restated
// here with loops; every refused call names its argument.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compareSelections } from '../../src/interop/index.js';
import { VERDICTS, summarizeComparison, type CompareSelectionsResult } from '../../src/compare/selections.js';
import { check, mostly, report, type Expected } from './harness.js';

const U: Record<string, number> = { bf16: 2 ** -8, fp16: 2 ** -11 };
const SUB: Record<string, number> = { bf16: 2 ** -133, fp16: 2 ** -24 };
const LARGEST: Record<string, number> = { bf16: 3.3895313892515355e38, fp16: 65504 };

interface RowWant {
  verdict: string; threshold: number; gap: number; margin: number; keysA: number; keysB: number;
  first: { slot: number; key: number; side: number; score: number; tolerance: number };
}

/** One row by the definitions: sets, tau, live keys, D, margin, gap, the verdict and the first differing key. */
function rowDefinition(a: number[], b: number[], S: ArrayLike<number> | null, tol: { abs: number; rel: number; precision?: string }): RowWant {
  const k = a.length;
  const A = new Set(a.filter((x) => x >= 0)), B = new Set(b.filter((x) => x >= 0));
  const identical = a.every((x, i) => (x < 0 ? -1 : x) === (b[i] < 0 ? -1 : b[i]));
  const D = [...A].filter((x) => !B.has(x)).concat([...B].filter((x) => !A.has(x)));
  // D by slot: a's slot before b's at the same slot.
  const ordered: { slot: number; key: number; side: number }[] = [];
  for (let i = 0; i < k; i++) {
    if (a[i] >= 0 && !B.has(a[i]) && !ordered.some((o) => o.key === a[i] && o.side === 0)) ordered.push({ slot: i, key: a[i], side: 0 });
    if (b[i] >= 0 && !A.has(b[i]) && !ordered.some((o) => o.key === b[i] && o.side === 1)) ordered.push({ slot: i, key: b[i], side: 1 });
  }
  const none = { slot: -1, key: -1, side: 0, score: NaN, tolerance: NaN };
  if (S === null) {
    const verdict = identical ? 'identical' : D.length === 0 ? 'sets' : 'different';
    const f = ordered[0];
    return { verdict, threshold: NaN, gap: NaN, margin: NaN, keysA: A.size, keysB: B.size, first: f ? { ...f, score: NaN, tolerance: NaN } : none };
  }
  const s = S.length;
  const sorted = Array.from(S).sort((x, y) => y - x);
  const tau = s < k ? -Infinity : sorted[k - 1];
  const gap = s <= k ? Infinity : sorted[k] === tau ? 0 : tau - sorted[k];
  const dist = (x: number) => (S[x] === tau ? 0 : Math.abs(S[x] - tau));
  const margin = D.length === 0 ? 0 : Math.max(...D.map(dist));
  const live = (X: Set<number>) => [...X].filter((x) => S[x] > -Infinity).length;
  const keysA = live(A), keysB = live(B);
  const eps = (x: number) => {
    let bound = 0;
    if (tol.precision !== undefined) {
      const m = Math.max(Math.abs(S[x]), Math.abs(tau));
      const u = U[tol.precision];
      bound = m > LARGEST[tol.precision] ? Infinity : Math.max(2 * u * (1 + u) * m, SUB[tol.precision]);
    }
    // rel 0 adds nothing, also when tau is -Infinity.
    return tol.abs + (tol.rel === 0 ? 0 : tol.rel * Math.abs(tau)) + bound;
  };
  const within = (x: number) => dist(x) === 0 || (Number.isFinite(dist(x)) && dist(x) <= eps(x));
  let verdict: string;
  if (identical) verdict = 'identical';
  else if (D.length === 0) verdict = 'sets';
  else if (keysA === keysB && D.every((x) => S[x] === tau)) verdict = 'ties';
  else if (keysA === keysB && D.every(within)) verdict = 'nearTies';
  else verdict = 'different';
  let f = ordered[0];
  if (verdict === 'different') f = ordered.find((o) => !within(o.key)) ?? ordered[0];
  return { verdict, threshold: tau, gap, margin, keysA, keysB, first: f ? { ...f, score: S[f.key], tolerance: eps(f.key) } : none };
}

const SCORES = [-Infinity, -1, 0, 0.5, 1, 1, 1, 2, 3, 1 + 2 ** -9, 1 - 2 ** -9, 1 + 2 ** -3];

test('compareSelections: tie-broken, permuted, swapped, dropped and padded selections over random scores, with tolerances, inputs, int64 and bad arguments', () => {
  const started = performance.now();
  const arb = fc
    .record({
      b: fc.integer({ min: 1, max: 2 }), t: fc.integer({ min: 1, max: 3 }), s: fc.integer({ min: 1, max: 12 }), k: fc.integer({ min: 1, max: 6 }),
      rank: fc.constantFrom(2, 3),
      scored: fc.constantFrom('f32', 'f32', 'f64', 'none', 'inputs'),
      int64: fc.boolean(),
      tolerance: fc.option(fc.record({ abs: fc.option(fc.constantFrom(0, 2 ** -8, 0.1, 1), { nil: undefined }), rel: fc.option(fc.constantFrom(0, 2 ** -10, 0.01), { nil: undefined }), precision: fc.option(fc.constantFrom('bf16', 'fp16'), { nil: undefined }) }, { requiredKeys: [] }), { nil: undefined }),
      sOption: mostly(fc.constant<unknown>(undefined), fc.constantFrom<unknown>('same', 'same', 'other', 0, 1.5, NaN), 3),
      simd: mostly(fc.constantFrom<unknown>(undefined, true, false), fc.constant<unknown>('no'), 20),
      fault: mostly(fc.constant('none'), fc.constantFrom('unknownOption', 'unknownTolerance', 'negativeAbs', 'nanRel', 'fp8Scores', 'precisionOfInputs', 'badPrecision', 'bShape', 'aF32', 'scoresShape', 'scoresNaN', 'int64Huge', 'indexPastS', 'toleranceNoScores', 'inputsUnknown', 'inputsW', 'maxBytes')),
    })
    .chain((c) => {
      const rows = c.b * c.t;
      return fc.record({
        c: fc.constant(c),
        scores: fc.array(fc.constantFrom(...SCORES), { minLength: rows * c.s, maxLength: rows * c.s }),
        q: fc.array(fc.constantFrom(-1, 0, 0.5, 1, 2), { minLength: rows * 2 * 2, maxLength: rows * 2 * 2 }),
        kk: fc.array(fc.constantFrom(-1, 0, 0.5, 1, 2), { minLength: c.b * c.s * 2, maxLength: c.b * c.s * 2 }),
        w: fc.array(fc.constantFrom(-1, 0.5, 1), { minLength: rows * 2, maxLength: rows * 2 }),
        causalOffset: fc.option(fc.integer({ min: -1, max: c.s }), { nil: undefined }),
        edits: fc.array(fc.record({ row: fc.nat(), how: fc.constantFrom('same', 'permute', 'retie', 'swap', 'drop', 'dup', 'pad'), pick: fc.nat(), seed: fc.nat() }), { maxLength: rows }),
        tiebreak: fc.array(fc.nat(), { minLength: c.s, maxLength: c.s }),
      });
    });
  fc.assert(
    fc.property(arb, ({ c, scores: S0, q, kk, w, causalOffset, edits, tiebreak }) => {
      const { b, t, s, k, rank, scored, int64, tolerance, sOption, simd, fault } = c;
      const rows = b * t;
      // Scores: given, or the indexer's over q [b, t, 2, 2], k [b, s, 2], w [b, t, 2] (exact sums of halves).
      let S = S0.slice();
      if (scored === 'inputs') {
        S = [];
        for (let r = 0; r < rows; r++) {
          const bi = Math.floor(r / t), ti = r % t;
          for (let j = 0; j < s; j++) {
            if (causalOffset !== undefined && j > ti + causalOffset) { S.push(-Infinity); continue; }
            let v = 0;
            for (let hh = 0; hh < 2; hh++) v += w[r * 2 + hh] * Math.max(0, q[(r * 2 + hh) * 2] * kk[(bi * s + j) * 2] + q[(r * 2 + hh) * 2 + 1] * kk[(bi * s + j) * 2 + 1]);
            S.push(v);
          }
        }
      }
      // a: an exact top-k of each row under one tie-break; b: another tie-break, then an edit.
      const topk = (r: number, order: number[]) => {
        const keys = Array.from({ length: s }, (_, j) => j).sort((x, y) => S[r * s + y] - S[r * s + x] || order[x] - order[y] || x - y);
        return Array.from({ length: k }, (_, i) => (i < s ? keys[i] : -1));
      };
      const A: number[][] = [], B: number[][] = [];
      for (let r = 0; r < rows; r++) {
        A.push(topk(r, tiebreak));
        B.push(topk(r, tiebreak.map((x, j) => (x * 7 + j * 13 + r) % 17)));
      }
      for (const e of edits) {
        const row = B[e.row % rows], i = e.pick % k;
        if (e.how === 'same') B[e.row % rows] = A[e.row % rows].slice();
        if (e.how === 'permute') row.push(...row.splice(0, i + 1));
        if (e.how === 'retie') row.reverse();
        if (e.how === 'swap') row[i] = e.seed % s;
        if (e.how === 'drop') row[i] = -1;
        if (e.how === 'dup') row[i] = row[(i + 1) % k];
        if (e.how === 'pad') row[i] = -1 - (e.seed % 5);
      }
      const bad: string[] = [];
      const shape = rank === 3 ? [b, t, k] : [rows, k];
      const idx = (X: number[][]) => (int64 ? BigInt64Array.from(X.flat(), BigInt) : Int32Array.from(X.flat()));
      let aT: unknown = { data: idx(A), shape }, bT: unknown = { data: idx(B), shape };
      const opts: Record<string, unknown> = {};
      const scoreShape = rank === 3 ? [b, t, s] : [rows, s];
      if (scored === 'f32' || scored === 'f64') opts.scores = { data: (scored === 'f32' ? Float32Array : Float64Array).from(S), shape: scoreShape };
      if (scored === 'inputs') opts.inputs = { q: { data: Float32Array.from(q), shape: [b, t, 2, 2] }, k: { data: Float32Array.from(kk), shape: [b, s, 2] }, w: { data: Float32Array.from(w), shape: [b, t, 2] }, causalOffset };
      const hasScores = scored !== 'none';
      if (tolerance !== undefined) opts.tolerance = tolerance;
      if (simd !== undefined) opts.simd = simd;
      if (simd !== undefined && typeof simd !== 'boolean') bad.push('simd');
      if (sOption !== undefined) {
        opts.s = sOption === 'same' ? s : sOption === 'other' ? s + 1 : sOption;
        if (sOption === 'other' && hasScores) bad.push('s');
        if (typeof opts.s !== 'number' || !Number.isInteger(opts.s) || (opts.s as number) <= 0) bad.push('s');
      }
      // The keys per row the indices are checked against.
      const sKnown = hasScores ? s : typeof opts.s === 'number' && Number.isInteger(opts.s) && (opts.s as number) > 0 ? (opts.s as number) : null;
      if (tolerance !== undefined && !hasScores) bad.push('tolerance');
      if (tolerance?.precision !== undefined && scored === 'inputs') {
        // With inputs the precision bounds the inputs (their own definition); this test reads it on scores only.
        (tolerance as Record<string, unknown>).precisionOf = 'scores';
      }
      switch (fault) {
        case 'unknownOption': opts.scoreS = 1; bad.push('compareSelections options'); break;
        case 'unknownTolerance': opts.tolerance = { ...tolerance, absolute: 1 }; bad.push(hasScores ? 'tolerance' : 'tolerance'); break;
        case 'negativeAbs': opts.tolerance = { ...tolerance, abs: -1 }; bad.push('tolerance.abs', 'tolerance'); break;
        case 'nanRel': opts.tolerance = { ...tolerance, rel: NaN }; bad.push('tolerance.rel', 'tolerance'); break;
        case 'fp8Scores': opts.tolerance = { precision: 'fp8', precisionOf: 'scores' }; bad.push('tolerance.precision', 'tolerance'); break;
        case 'precisionOfInputs': if (scored !== 'inputs') { opts.tolerance = { precision: 'bf16', precisionOf: 'inputs' }; bad.push('tolerance.precisionOf', 'tolerance'); } break;
        case 'badPrecision': opts.tolerance = { precision: 'bf8' }; bad.push('tolerance.precision', 'tolerance'); break;
        case 'bShape': bT = { data: idx(B.map((row) => [...row, -1])), shape: [rows, k + 1] }; bad.push('b'); break;
        case 'aF32': aT = { data: Float32Array.from(A.flat()), shape }; bad.push('a'); break;
        case 'scoresShape': if (hasScores && scored !== 'inputs') { opts.scores = { data: new Float32Array(S.length + s), shape: rank === 3 ? [b, t + 1, s] : [rows + 1, s] }; bad.push('scores'); } break;
        case 'scoresNaN': if (scored === 'f32' || scored === 'f64') { (opts.scores as { data: Float32Array }).data[S.length - 1] = NaN; bad.push('scores'); } break;
        case 'int64Huge': aT = { data: BigInt64Array.from([...A.flat().slice(0, -1).map(BigInt), 2n ** 40n]), shape }; bad.push('a'); break;
        case 'indexPastS': if (sKnown !== null) { B[rows - 1][k - 1] = sKnown; bT = { data: idx(B), shape }; bad.push('b'); } break;
        case 'toleranceNoScores': if (!hasScores) { opts.tolerance = { abs: 1 }; bad.push('tolerance'); } break;
        case 'inputsUnknown': if (scored === 'inputs') { opts.inputs = { ...(opts.inputs as object), scale: 2 }; bad.push('inputs'); } break;
        case 'inputsW': if (scored === 'inputs') { (opts.inputs as Record<string, unknown>).w = { data: new Float32Array(rows * 3), shape: [b, t, 3] }; bad.push('inputs.w'); } break;
        case 'maxBytes': opts.maxBytes = 8; bad.push('maxBytes'); break;
      }
      const what = `compareSelections [${shape}] s=${s} ${scored} ${int64 ? 'int64' : 'int32'} ${fault} ${JSON.stringify({ ...opts, scores: undefined, inputs: undefined, S, A, B, causalOffset })}`;
      let expected: Expected<RowWant[]> = { bad };
      if (bad.length === 0) {
        const tol = { abs: tolerance?.abs ?? 0, rel: tolerance?.rel ?? 0, precision: tolerance?.precision };
        expected = { value: Array.from({ length: rows }, (_, r) => rowDefinition(A[r], B[r], hasScores ? (scored === 'f32' ? Float32Array.from(S.slice(r * s, (r + 1) * s)) : S.slice(r * s, (r + 1) * s)) : null, tol)) };
      }
      check(what, () => compareSelections(aT as never, bT as never, opts as never), expected, (got, want) => {
        assert.equal(got.rows, rows, what);
        assert.equal(got.k, k, what);
        assert.equal(got.s, sKnown, what);
        assert.equal(got.scored, hasScores, what);
        want.forEach((w0, r) => {
          const at = `${what}: row ${r}`;
          assert.equal(VERDICTS[got.verdict[r]], w0.verdict, `${at}: verdict`);
          const same = (x: number, y: number, name: string) => assert.ok(Object.is(x, y) || (Number.isNaN(x) && Number.isNaN(y)) || Math.abs(x - y) <= 1e-12 * Math.abs(y), `${at}: ${name} ${x}, expected ${y}`);
          same(got.threshold[r], w0.threshold, 'threshold');
          same(got.gap[r], w0.gap, 'gap');
          same(got.margin[r], w0.margin, 'margin');
          assert.deepEqual([got.keysA[r], got.keysB[r]], [w0.keysA, w0.keysB], `${at}: keys`);
          assert.equal(got.first.slot[r], w0.first.slot, `${at}: first slot`);
          if (w0.first.slot >= 0) {
            assert.deepEqual([got.first.key[r], got.first.side[r]], [w0.first.key, w0.first.side], `${at}: first key and side`);
            same(got.first.score[r], w0.first.score, 'first score');
            same(got.first.tolerance[r], w0.first.tolerance, 'first tolerance');
          }
        });
        // The summary, by its definition, of the rows just checked.
        const counts = Object.fromEntries(VERDICTS.map((v) => [v, want.filter((x) => x.verdict === v).length]));
        const differing = want.map((x, r) => ({ ...x, r })).filter((x) => x.first.slot >= 0 && !Number.isNaN(x.margin));
        const worst = differing.reduce((best, x) => (best.row < 0 || x.margin > best.margin ? { row: x.r, margin: x.margin } : best), { row: -1, margin: 0 });
        const gaps = want.map((x, r) => ({ g: x.gap, r })).filter((x) => !Number.isNaN(x.g));
        const smallest = gaps.reduce((best, x) => (best.row < 0 || x.g < best.gap ? { row: x.r, gap: x.g } : best), { row: -1, gap: Infinity });
        const summary = { counts, equal: counts.different === 0, firstDifferent: want.findIndex((x) => x.verdict === 'different'), worstMargin: worst, smallestGap: smallest };
        assert.deepEqual(got.summary, summary, `${what}: summary`);
        assert.deepEqual(summarizeComparison(got as CompareSelectionsResult), summary, `${what}: summarizeComparison`);
      });
    }),
    { numRuns: 3000 },
  );
  report('compareSelections', started);
});
