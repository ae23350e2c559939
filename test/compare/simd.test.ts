import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { simdBlocks, simdRows, type SimdRows } from '../../src/compare/simd.js';
import { compareSelections, type CompareSelectionsResult } from '../../src/compare/selections.js';
import { simdModule } from '../../src/simd/index.js';

const haveSimd = simdRows(1, 1, 1) !== null;

/** Scores with ties, both zeros, infinities and (when asked) NaN. */
const score = (nan: boolean) =>
  fc.oneof(
    fc.constantFrom(-0, 0, 1, -1, 0.5, Infinity, -Infinity, ...(nan ? [NaN] : [])),
    fc.integer({ min: -4, max: 4 }),
    fc.float({ noNaN: true }),
  );

/** A row (s scores) and two lists of k slots: keys, repeats, padding (negative). */
const rowCase = (nan: boolean, maxS = 90) =>
  fc.integer({ min: 1, max: maxS }).chain((s) =>
    fc.record({
      s: fc.constant(s),
      x: fc.array(score(nan), { minLength: s, maxLength: s }),
      a: fc.array(fc.integer({ min: -2, max: s - 1 }), { minLength: 1, maxLength: 40 }),
      b: fc.array(fc.integer({ min: -2, max: s - 1 }), { minLength: 1, maxLength: 40 }),
    }).map((r) => {
      const k = Math.min(r.a.length, r.b.length);
      return { ...r, a: r.a.slice(0, k), b: r.b.slice(0, k), k };
    }),
  );

/** Loads a row and its lists into the module's memory, with both lists' bits clear. */
function load(m: SimdRows, x: number[], a: number[], b: number[]): void {
  m.f32.set(Float32Array.from(x), m.scores >> 2);
  m.i32.set(Int32Array.from(a), m.a >> 2);
  m.i32.set(Int32Array.from(b), m.b >> 2);
  m.i32.fill(0, m.bitsA >> 2, (m.bitsA >> 2) + m.words);
  m.i32.fill(0, m.bitsB >> 2, (m.bitsB >> 2) + m.words);
}

const bitSet = (m: SimdRows, bits: number, key: number) => ((m.i32[(bits >> 2) + (key >>> 5)] >>> (key & 31)) & 1) === 1;

test('compareMark: distinct keys, live keys, keys shared with the other list, NaN, the first smallest score and the bits, as a plain loop finds them', { skip: !haveSimd }, () => {
  fc.assert(
    fc.property(rowCase(true), fc.boolean(), ({ s, x, a, b, k }, gatherB) => {
      const m = simdRows(k, s, 1)!;
      load(m, x, a, b);
      const f = Float32Array.from(x);
      const st = m.stats >> 2;
      // b first with no other list (gathering its scores or not), then a against b's bits.
      assert.equal(m.kernels.compareMark(m.b, k, s, m.scores, m.bitsB, 0, gatherB ? 1 : 0, m.valsB, m.stats), -1);
      const keysB = [...new Set(b.filter((j) => j >= 0))];
      assert.equal(m.i32[st], keysB.length);
      assert.equal(m.i32[st + 2], 0);
      if (!gatherB) assert.ok(m.i32[st + 1] === 0 && m.i32[st + 3] === 0 && Number.isNaN(m.f32[st + 4]));
      assert.equal(m.kernels.compareMark(m.a, k, s, m.scores, m.bitsA, m.bitsB, 1, m.valsA, m.stats), -1);
      const keys = [...new Set(a.filter((j) => j >= 0))];
      const inB = new Set(keysB);
      const values = keys.map((j) => f[j]);
      let least = NaN;
      for (const v of values) if (v === v && !(least <= v)) least = v;
      assert.deepEqual(
        [m.i32[st], m.i32[st + 1], m.i32[st + 2], m.i32[st + 3]],
        [keys.length, values.filter((v) => v > -Infinity).length, keys.filter((j) => inB.has(j)).length, values.some((v) => v !== v) ? 1 : 0],
      );
      assert.ok(Object.is(m.f32[st + 4], least), `least ${m.f32[st + 4]} vs ${least}`);
      for (let j = 0; j < s; j++) assert.equal(bitSet(m, m.bitsA, j), keys.includes(j), `bit ${j}`);
      // Unmarking clears exactly a's keys.
      m.kernels.compareUnmark(m.a, k, m.bitsA);
      for (let w = 0; w < m.words; w++) assert.equal(m.i32[(m.bitsA >> 2) + w], 0);
      for (let j = 0; j < s; j++) assert.equal(bitSet(m, m.bitsB, j), inB.has(j));
    }),
    { numRuns: 300 },
  );
});

test('compareMark: the first slot holding a key >= s, gathering or not', { skip: !haveSimd }, () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 50 }), fc.array(fc.integer({ min: -3, max: 60 }), { minLength: 1, maxLength: 30 }), fc.boolean(), (s, list, gather) => {
      const m = simdRows(list.length, s, 1)!;
      load(m, Array(s).fill(0), list, list);
      const got = m.kernels.compareMark(m.a, list.length, s, m.scores, m.bitsA, 0, gather ? 1 : 0, m.valsA, m.stats);
      assert.equal(got, list.findIndex((j) => j >= s));
    }),
    { numRuns: 200 },
  );
});

test('compareMark\'s gather and compareMaxOutside: the largest score outside the list (-inf when none, NaN for a NaN outside it), the row restored bit for bit (repeated keys too)', { skip: !haveSimd }, () => {
  fc.assert(
    fc.property(rowCase(true), ({ s, x, a, b, k }) => {
      const m = simdRows(k, s, 1)!;
      load(m, x, a, b);
      const f = Float32Array.from(x);
      const before = Uint32Array.from(m.i32.subarray(m.scores >> 2, (m.scores >> 2) + s));
      assert.equal(m.kernels.compareMark(m.a, k, s, m.scores, m.bitsA, 0, 1, m.valsA, m.stats), -1);
      a.forEach((j, i) => j >= 0 && assert.ok(Object.is(m.i32[(m.valsA >> 2) + i], before[j] | 0), `gathered slot ${i}`));
      const got = m.kernels.compareMaxOutside(m.scores, s, m.a, k, m.valsA);
      const outside = [...f].filter((_, j) => !a.includes(j));
      const want = outside.some((v) => v !== v) ? NaN : outside.reduce((p, v) => (v > p ? v : p), -Infinity);
      // Either zero where the largest is a zero (the caller only compares it and subtracts it from a larger tau).
      assert.ok(got === want || (got !== got && want !== want), `${got} vs ${want}`);
      assert.deepEqual(Uint32Array.from(m.i32.subarray(m.scores >> 2, (m.scores >> 2) + s)), before);
    }),
    { numRuns: 400 },
  );
});

test('compareCount: keys above and at the candidate, the largest score below it, whether a NaN is there', { skip: !haveSimd }, () => {
  fc.assert(
    fc.property(rowCase(true), fc.nat(), fc.constantFrom('key', 'inf', '-inf', 'any'), ({ s, x, k, a, b }, pick, kind) => {
      const m = simdRows(k, s, 1)!;
      load(m, x, a, b);
      const f = Float32Array.from(x);
      const c = kind === 'inf' ? Infinity : kind === '-inf' ? -Infinity : kind === 'key' || f[pick % s] !== f[pick % s] ? f[pick % s] : Math.fround((pick % 9) - 4);
      if (c !== c) return;
      m.kernels.compareCount(m.scores, s, c, m.stats);
      const st = m.stats >> 2;
      const below = [...f].filter((v) => v < c).reduce((p, v) => (v > p ? v : p), -Infinity);
      assert.deepEqual(
        [m.i32[st], m.i32[st + 1], m.i32[st + 3]],
        [[...f].filter((v) => v > c).length, [...f].filter((v) => v === c).length, [...f].some((v) => v !== v) ? 1 : 0],
      );
      // Either zero where the largest below is a zero: tau - below is the same number.
      assert.ok(m.f32[st + 2] === below, `below ${m.f32[st + 2]} vs ${below}`);
      assert.equal(m.kernels.compareFirstNaN(m.scores, s), [...f].findIndex((v) => v !== v));
    }),
    { numRuns: 400 },
  );
});

test('compareIdentical and compareDiff: equal slot by slot (negatives as -1); the keys of one list only, each once, in slot order, a before b', { skip: !haveSimd }, () => {
  fc.assert(
    fc.property(rowCase(false), fc.boolean(), ({ s, x, a, b, k }, same) => {
      if (same) b = a.map((j) => (j < 0 ? -1 - (j & 1) : j));
      const m = simdRows(k, s, 1)!;
      load(m, x, a, b);
      assert.equal(m.kernels.compareIdentical(m.a, m.b, k), a.every((j, i) => Math.max(j, -1) === Math.max(b[i], -1)) ? 1 : 0);
      m.kernels.compareMark(m.a, k, s, m.scores, m.bitsA, 0, 1, m.valsA, m.stats);
      m.kernels.compareMark(m.b, k, s, m.scores, m.bitsB, m.bitsA, 0, m.valsB, m.stats);
      const A = new Set(a.filter((j) => j >= 0)), B = new Set(b.filter((j) => j >= 0));
      const want: number[][] = [];
      const seen = new Set<number>();
      for (let i = 0; i < k; i++) {
        for (const [side, j, other] of [[0, a[i], B], [1, b[i], A]] as const) {
          if (j < 0 || other.has(j) || seen.has(j)) continue;
          seen.add(j);
          want.push([i, j, side]);
        }
      }
      const n = m.kernels.compareDiff(m.a, m.b, k, m.bitsA, m.bitsB, m.dSlot, m.dKey, m.dSide);
      const got = Array.from({ length: n }, (_, i) => [m.i32[(m.dSlot >> 2) + i], m.i32[(m.dKey >> 2) + i], m.i32[(m.dSide >> 2) + i]]);
      assert.deepEqual(got, want);
    }),
    { numRuns: 300 },
  );
});

function assertSame(x: CompareSelectionsResult, y: CompareSelectionsResult): void {
  for (const name of ['verdict', 'threshold', 'gap', 'margin', 'keysA', 'keysB'] as const) {
    x[name].forEach((v, i) => assert.ok(Object.is(v, y[name][i]), `${name}[${i}]: ${v} vs ${y[name][i]}`));
  }
  for (const name of ['slot', 'key', 'side', 'score', 'tolerance'] as const) {
    x.first[name].forEach((v, i) => assert.ok(Object.is(v, y.first[name][i]), `first.${name}[${i}]: ${v} vs ${y.first[name][i]}`));
  }
  assert.deepEqual(x.summary, y.summary);
}

test('compareSelections: the SIMD path gives the TypeScript path\'s results bit for bit (both zeros, infinities, ties, sets that are and are not a top-k, s across 16-score blocks)', () => {
  fc.assert(
    fc.property(
      fc.record({ rows: fc.integer({ min: 1, max: 4 }), s: fc.integer({ min: 1, max: 80 }), k: fc.integer({ min: 1, max: 24 }), seed: fc.integer(), kind: fc.constantFrom('topk', 'swapped', 'random', 'reversed'), abs: fc.constantFrom(0, 0.25, 2) }),
      ({ rows, s, k, seed, kind, abs }) => {
        let state = seed >>> 0 || 1;
        const next = (n: number) => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) % n);
        const levels = [-0, 0, 0.25, 0.5, 1, -1, Infinity, -Infinity, 3];
        const S = Float32Array.from({ length: rows * s }, () => (next(3) === 0 ? levels[next(levels.length)] : (next(64) - 32) / 8));
        const a = new Int32Array(rows * k), b = new Int32Array(rows * k);
        for (let r = 0; r < rows; r++) {
          // Descending, ties by a random order: an exact top-k.
          const order = Array.from({ length: s }, (_, j) => j).map((j) => [j, next(1000)]).sort((p, q) => S[r * s + q[0]] - S[r * s + p[0]] || p[1] - q[1]).map((p) => p[0]);
          for (let i = 0; i < k; i++) {
            const top = i < s ? order[i] : -1;
            a[r * k + i] = kind === 'random' ? next(s + 1) - 1 : top;
            b[r * k + i] = kind === 'random' ? next(s + 1) - 1 : kind === 'reversed' ? (k - 1 - i < s ? order[k - 1 - i] : -1) : top;
          }
          // swapped: b a top-k, a one near or far key off (so a's own fast test fails and b's runs).
          if (kind === 'swapped' && s > k) a[r * k + next(k)] = order[k + next(s - k)];
        }
        const opts = { scores: { data: S, shape: [rows, s] }, tolerance: { abs } };
        const fast = compareSelections({ data: a, shape: [rows, k] }, { data: b, shape: [rows, k] }, { ...opts, simd: true });
        const plain = compareSelections({ data: a, shape: [rows, k] }, { data: b, shape: [rows, k] }, { ...opts, simd: false });
        assertSame(fast, plain);
      },
    ),
    { numRuns: 500 },
  );
});

test('inputs in the module\'s blocks are compared in place and left as they were; a view elsewhere in that memory is copied first', { skip: !haveSimd }, () => {
  const [rows, s, k] = [3, 100, 7];
  const S = Float32Array.from({ length: rows * s }, (_, i) => Math.sin(i * 12.9898) * 10);
  const a = new Int32Array(rows * k), b = new Int32Array(rows * k);
  for (let r = 0; r < rows; r++) {
    const order = Array.from({ length: s }, (_, j) => j).sort((p, q) => S[r * s + q] - S[r * s + p]);
    for (let i = 0; i < k; i++) {
      a[r * k + i] = order[i];
      b[r * k + i] = order[r === 1 && i === 0 ? k : k - 1 - i];
    }
  }
  const want = compareSelections({ data: a, shape: [rows, k] }, { data: b, shape: [rows, k] }, { scores: { data: S, shape: [rows, s] }, simd: false });
  const block = simdBlocks(k, s, rows)!;
  block.scores.set(S);
  block.a.set(a);
  block.b.set(b);
  // Scores in place, lists copied; then the lists in place too.
  assertSame(compareSelections({ data: a, shape: [rows, k] }, { data: b, shape: [rows, k] }, { scores: { data: block.scores, shape: [rows, s] } }), want);
  assertSame(compareSelections({ data: block.a, shape: [rows, k] }, { data: block.b, shape: [rows, k] }, { scores: { data: block.scores, shape: [rows, s] } }), want);
  const again = simdBlocks(k, s, rows)!;
  assert.deepEqual([again.scores, again.a, again.b], [S, a, b], 'the blocks hold the inputs as written');
  // Lists in place, scores copied in (into the first row of the score block, which the lists do not share).
  assertSame(compareSelections({ data: block.a, shape: [rows, k] }, { data: block.b, shape: [rows, k] }, { scores: { data: S, shape: [rows, s] } }), want);
  // A view at the start of the memory, where the kernels keep their lists and bits.
  const memory = simdModule()!.exports.memory;
  const low = new Float32Array(memory.buffer, 0, rows * s);
  low.set(S);
  assertSame(compareSelections({ data: a, shape: [rows, k] }, { data: b, shape: [rows, k] }, { scores: { data: low, shape: [rows, s] } }), want);
});

test('the SIMD path names the first index >= s of a, then of b, before any NaN, as the edge does', () => {
  const S = new Float32Array(3 * 4);
  S[1] = NaN; // row 0
  const ok = [0, 1, 0, 1, 0, 1];
  const bad = (at: number) => Int32Array.from(ok, (v, i) => (i === at ? 9 : v));
  for (const simd of [true, false]) {
    const run = (a: Int32Array, b: Int32Array) => compareSelections({ data: a, shape: [3, 2] }, { data: b, shape: [3, 2] }, { scores: { data: S, shape: [3, 4] }, simd });
    assert.throws(() => run(bad(5), bad(0)), /^RangeError: a: value 9 at row 2, slot 1 must be < s = 4/);
    assert.throws(() => run(Int32Array.from(ok), bad(3)), /^RangeError: b: value 9 at row 1, slot 1 must be < s = 4/);
    assert.throws(() => run(Int32Array.from(ok), Int32Array.from(ok)), /^RangeError: scores: NaN at row 0, key 1/);
  }
});

test('rows with few keys beside s (the bits cleared key by key, not by a memset): the TypeScript path\'s results', () => {
  let state = 7;
  const next = (n: number) => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) % n);
  for (const [rows, s, k] of [[5, 2000, 3], [3, 1500, 1], [4, 4096, 7]]) {
    const S = Float32Array.from({ length: rows * s }, () => (next(200) - 100) / 16);
    const a = new Int32Array(rows * k), b = new Int32Array(rows * k);
    for (let r = 0; r < rows; r++) {
      const order = Array.from({ length: s }, (_, j) => j).sort((p, q) => S[r * s + q] - S[r * s + p] || p - q);
      for (let i = 0; i < k; i++) {
        a[r * k + i] = order[i];
        b[r * k + i] = r % 2 === 0 ? order[k - 1 - i] : order[i + next(3)];
      }
    }
    const opts = { scores: { data: S, shape: [rows, s] }, tolerance: { abs: 0.1 } };
    // Twice: the bits one call leaves must be clear for the next.
    for (let twice = 0; twice < 2; twice++) {
      assertSame(compareSelections({ data: a, shape: [rows, k] }, { data: b, shape: [rows, k] }, opts), compareSelections({ data: a, shape: [rows, k] }, { data: b, shape: [rows, k] }, { ...opts, simd: false }));
    }
  }
});

test('every NaN bit pattern is a NaN to the passes (either sign, any payload), and no infinity is', { skip: !haveSimd }, () => {
  const nans = [0x7fc00000, 0x7f800001, 0x7fffffff, 0xffc00000, 0xff800001, 0xffffffff, 0x7fa00000];
  const infinities = [0x7f800000, 0xff800000];
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 70 }), fc.nat(), fc.constantFrom(...nans, ...infinities), (s, at, bits) => {
      const m = simdRows(1, s, 1)!;
      const row = new Uint32Array(s).fill(0x3f800000); // 1
      row[at % s] = bits;
      m.i32.set(Int32Array.from(row), m.scores >> 2);
      m.i32[m.a >> 2] = -1; // an empty list: every key is outside it
      const isNaN = nans.includes(bits);
      const top = m.kernels.compareMaxOutside(m.scores, s, m.a, 1, m.valsA);
      assert.equal(Number.isNaN(top), isNaN, `max: ${bits.toString(16)} at ${at % s} of ${s}`);
      m.kernels.compareCount(m.scores, s, 1, m.stats);
      assert.equal(m.i32[(m.stats >> 2) + 3], isNaN ? 1 : 0, `count: ${bits.toString(16)}`);
      assert.equal(m.kernels.compareFirstNaN(m.scores, s), isNaN ? at % s : -1);
    }),
    { numRuns: 300 },
  );
});
