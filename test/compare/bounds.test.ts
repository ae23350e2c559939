import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { indexerScores } from '../../src/indexer/scores.js';
import { roundHalfEven } from '../../src/indexer/quantize.js';
import { inputBound, prepareRow, PRECISION_CODE, type Precision } from '../../src/compare/bounds.js';
import { compareSelections, VERDICTS } from '../../src/compare/selections.js';
import { topk } from '../../src/topk/topk.js';

/** x rounded to nearest-even with p significand bits and exponents >= emin (subnormals below), as float32. */
function roundTo(x: number, p: number, emin: number): number {
  if (x === 0 || !Number.isFinite(x)) return x;
  let e = Math.floor(Math.log2(Math.abs(x)));
  if (2 ** e > Math.abs(x)) e--;
  if (2 ** (e + 1) <= Math.abs(x)) e++;
  const quantum = 2 ** (Math.max(e, emin) - p + 1);
  return Math.fround(roundHalfEven(x / quantum) * quantum);
}
const toBf16 = (v: Float32Array) => v.map((x) => roundTo(x, 8, -126));
const toFp16 = (v: Float32Array) => v.map((x) => roundTo(x, 11, -14));

function inputs(seed: number, b: number, t: number, s: number, h: number, d: number, spread: number) {
  let x = seed >>> 0 || 1;
  const next = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32 - 0.5) * 2;
  // Values over a few orders of magnitude, so blocks have small and large elements.
  const value = () => Math.fround(next() * 10 ** Math.floor(next() * spread));
  return {
    q: { data: Float32Array.from({ length: b * t * h * d }, value), shape: [b, t, h, d] },
    k: { data: Float32Array.from({ length: b * s * d }, value), shape: [b, s, d] },
    w: { data: Float32Array.from({ length: b * t * h }, value), shape: [b, t, h] },
  };
}

/** The scores each precision's arithmetic gives: the library's int8 and fp8 indexers, float32 scores of bf16 / fp16 inputs. */
function quantizedScores(precision: Precision, x: ReturnType<typeof inputs>, weightScale: number): Float32Array {
  if (precision === 'int8' || precision === 'fp8') return indexerScores(x.q, x.k, x.w, { precision, weightScale }).data;
  const round = precision === 'bf16' ? toBf16 : toFp16;
  return indexerScores({ data: round(x.q.data), shape: x.q.shape }, { data: round(x.k.data), shape: x.k.shape }, { data: round(x.w.data), shape: x.w.shape }, { weightScale }).data;
}

test('the input bound E holds: |score in the precision - float32 score| <= E for every key, int8 and fp8 as the library computes them, bf16 and fp16 inputs', () => {
  fc.assert(
    fc.property(
      fc.constantFrom<Precision>('bf16', 'fp16', 'fp8', 'int8'), fc.integer(), fc.constantFrom(4, 16, 64, 128), fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 0, max: 3 }), fc.constantFrom(1, 0.125, -2),
      (precision, seed, d, h, spread, weightScale) => {
        const [b, t, s] = [2, 2, 12];
        const x = inputs(seed, b, t, s, h, d, spread);
        const exact = indexerScores(x.q, x.k, x.w, { weightScale }).data;
        const got = quantizedScores(precision, x, weightScale);
        const args = {
          q: x.q.data, keys: x.k.data, w: x.w.data, t, s, h, d, weightScale, code: PRECISION_CODE[precision], hadamard: precision === 'fp8',
          qAbs: new Float64Array(h * d), qErr: new Float64Array(h * d), wAbs: new Float64Array(h), wErr: new Float64Array(h),
          kAbs: new Float64Array(d), kErr: new Float64Array(d), rotate: new Float32Array(d),
        };
        for (let row = 0; row < b * t; row++) {
          prepareRow(args, row);
          for (let j = 0; j < s; j++) {
            const e = inputBound(args, row, j);
            const err = Math.abs(got[row * s + j] - exact[row * s + j]);
            assert.ok(err <= e, `${precision} d=${d} h=${h} row ${row} key ${j}: error ${err} > bound ${e}`);
          }
        }
      },
    ),
    { numRuns: 120 },
  );
});

test('top-k of int8 / fp8 / bf16 scores against top-k of float32 scores: never different with the precision as tolerance, recomputed from the inputs', () => {
  let near = 0;
  for (const precision of ['int8', 'fp8', 'bf16', 'fp16'] as Precision[]) {
    for (let seed = 1; seed <= 6; seed++) {
      const [b, t, s, h, d, k] = [1, 8, 300, 4, 64, 40];
      const x = inputs(seed * 7919, b, t, s, h, d, 1);
      const exact = topk(indexerScores(x.q, x.k, x.w), k).indices;
      const other = topk({ data: quantizedScores(precision, x, 1), shape: [b, t, s] }, k).indices;
      const r = compareSelections(exact, other, { inputs: x, tolerance: { precision } });
      assert.equal(r.summary.counts.different, 0, `${precision} seed ${seed}: ${JSON.stringify(r.summary)}`);
      near += r.summary.counts.nearTies;
      // With no tolerance the same rows that moved are different.
      const strict = compareSelections(exact, other, { inputs: x });
      assert.equal(strict.summary.counts.different, r.summary.counts.nearTies + r.summary.counts.ties - strict.summary.counts.ties);
    }
  }
  assert.ok(near > 0, 'some rows did move under quantization, so the rule was exercised');
});

test('inputs: scores recomputed by indexerScores (causal offset, weight scale) equal passing those scores; shapes and options checked', () => {
  const x = inputs(3, 1, 4, 10, 2, 8, 1);
  const scores = indexerScores(x.q, x.k, x.w, { causalOffset: 3, weightScale: 0.5 });
  const a = topk(scores, 5).indices;
  const b = topk(scores, 5, { causalOffset: 3 }).indices; // pads with -1 where DeepSeek's top-k picks -inf keys
  const viaInputs = compareSelections(a, b, { inputs: { ...x, causalOffset: 3, weightScale: 0.5 } });
  const viaScores = compareSelections(a, b, { scores });
  assert.deepEqual([...viaInputs.verdict], [...viaScores.verdict]);
  assert.deepEqual([...viaInputs.threshold], [...viaScores.threshold]);
  assert.ok([...viaInputs.verdict].every((v) => VERDICTS[v] !== 'different'), 'padding against -inf keys is a tie');
  assert.equal(VERDICTS[viaInputs.verdict[0]], 'ties'); // row 0 sees 4 keys: a fills its 5th slot with a -inf key, b with -1
  assert.throws(() => compareSelections(a, b, { inputs: { ...x, window: 1 } as never }), /^TypeError: inputs: unknown option 'window'/);
  assert.throws(() => compareSelections(a, b, { inputs: { ...x, q: { data: x.q.data.subarray(0, 32), shape: [1, 2, 2, 8] } } }), /^RangeError: inputs\.q: b \* t = 1 \* 2 = 2 must equal the rows of a and b, 4/);
  assert.throws(() => compareSelections(a, b, { inputs: { ...x, hadamard: true }, tolerance: { precision: 'int8' } }), /^RangeError: inputs\.hadamard: only tolerance\.precision 'fp8' takes it/);
  assert.throws(() => compareSelections(a, b, { inputs: { ...x, w: { data: new Float32Array(12), shape: [1, 4, 3] } } }), /^RangeError: inputs\.w\.shape: expected \[1, 4, 2\] \(q's b, t, h\), got \[1, 4, 3\]/);
  assert.throws(() => compareSelections(a, b, { inputs: { ...x, k: { data: new Float32Array(40), shape: [1, 10, 4] } } }), /^RangeError: inputs\.k\.shape: d = 4 must equal inputs\.q's d = 8/);
  assert.throws(() => compareSelections(a, b, { inputs: { ...x, hadamard: 1 as never } }), /^TypeError: inputs\.hadamard: expected a boolean, got number 1/);
  const odd = inputs(5, 1, 4, 10, 2, 6, 1); // d = 6: no Hadamard rotation
  assert.throws(() => compareSelections(a, b, { inputs: odd, tolerance: { precision: 'fp8' } }), /^RangeError: inputs\.hadamard: needs d a power of 2, got d = 6; pass hadamard: false/);
  assert.equal(compareSelections(a, a, { inputs: { ...odd, hadamard: false }, tolerance: { precision: 'fp8' } }).summary.counts.identical, 4);
  assert.throws(() => compareSelections(a, b, { inputs: x, scores: { data: new Float32Array(44), shape: [1, 4, 11] } }), /^RangeError: scores\.shape: s = 11 must equal inputs\.k's s = 10/);
  assert.throws(() => compareSelections(a, b, { scores: { data: new Float32Array(40), shape: [4, 10] } }), /^RangeError: scores\.shape: expected \[1, 4, s\]/);
});
