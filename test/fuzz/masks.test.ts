// A fuzz of the mask functions test/fuzz/edge.test.ts leaves: maskFromThreshold,
// combineMasks and verifyMask, in every form, with rows, out, memory guards,
// ties, -Infinity and NaN, mismatched shapes and wrong array kinds. Each call
// equals the definition written here with loops (SPEC "Masks") or throws a
// RangeError / TypeError naming a bad argument, within the time bound.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DEFAULT_MASK_VALUE, type MaskData, type MaskForm } from '../../src/tensor.js';
import { causalMask, combineMasks, generateMask, maskFromThreshold, topk, verifyMask, windowMask } from '../../src/interop/index.js';
import { check, mostly, percent, report, type Expected } from './harness.js';
import { ctorOf, encode, sameMask, widthOf } from './definitions.js';

const FORMS = ['additive', 'bool', 'bits'] as const;
const isForm = (f: unknown): f is MaskForm => (FORMS as readonly unknown[]).includes(f);
const formOfData = (d: unknown): MaskForm | null => (d instanceof Float32Array ? 'additive' : d instanceof Uint8Array ? 'bool' : d instanceof Uint32Array ? 'bits' : null);



function rowsRef(rows: unknown, nRows: number): { bad: string[]; start: number; end: number } {
  if (rows === undefined) return { bad: [], start: 0, end: nRows };
  const [start, end] = rows as number[];
  const ok = Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start <= end && end <= nRows;
  return { bad: ok ? [] : ['rows'], start, end };
}

const rowsArb = (nRows: number) =>
  fc.option(
    fc.oneof(
      { weight: 8, arbitrary: fc.tuple(fc.integer({ min: 0, max: nRows }), fc.integer({ min: 0, max: nRows })).map(([x, y]) => [Math.min(x, y), Math.max(x, y)]) },
      { weight: 1, arbitrary: fc.constantFrom<unknown>([1, 0], [0, nRows + 1], [0.5, 1], [-1, 1], [0], 'all') },
    ),
    { nil: undefined },
  );

/** A memory guard: mostly none; one the small results pass, a tiny one, or a bad one. */
const guardArb = fc.oneof({ weight: 8, arbitrary: fc.constant<unknown>(undefined) }, { weight: 2, arbitrary: fc.constantFrom<unknown>(1 << 16, 16) }, { weight: 1, arbitrary: fc.constantFrom<unknown>(0, NaN, -1, '1') });

function guard(bytes: number, maxBytes: unknown): string[] {
  if (maxBytes === undefined) return [];
  return !(typeof maxBytes === 'number' && maxBytes > 0) || bytes > maxBytes ? ['maxBytes'] : [];
}

/** A caller's out: none, the right buffer (filled with 7), one too long, or of the wrong type. */
const outArb = fc.constantFrom<'none' | 'right' | 'long' | 'wrong'>('none', 'none', 'none', 'right', 'right', 'long', 'wrong');
function makeOut(kind: 'none' | 'right' | 'long' | 'wrong', form: MaskForm, length: number): MaskData | undefined {
  if (kind === 'none') return undefined;
  if (kind === 'wrong') return (form === 'bits' ? new Float32Array(length) : new Uint32Array(length)).fill(7) as MaskData;
  return new (ctorOf(form))(length + (kind === 'long' ? 1 : 0)).fill(7);
}
function outBad(out: MaskData | undefined, form: MaskForm, length: number, maxBytes: unknown): string[] {
  if (out !== undefined) return out instanceof ctorOf(form) && out.length === length ? [] : ['out'];
  return guard(length * ctorOf(form).BYTES_PER_ELEMENT, maxBytes);
}

const SCORES = [-1, 0, 1, 2, 2, 3, -Infinity, Infinity];

test('maskFromThreshold: exact and raw, every form, ties, -Infinity, NaN scores and values, rows, out, guards, mismatched shapes', () => {
  const started = performance.now();
  const arb = fc
    .record({
      b: fc.integer({ min: 1, max: 3 }), t: fc.integer({ min: 1, max: 3 }), s: fc.integer({ min: 1, max: 40 }), k: fc.integer({ min: 1, max: 6 }),
      mode: mostly(fc.constantFrom<unknown>(undefined, 'exact', 'raw'), fc.constantFrom<unknown>('strict', 1, null)),
      form: mostly(fc.constantFrom<unknown>(undefined, 'additive', 'bool', 'bits'), fc.constantFrom<unknown>('dense', 'Bool')),
      nanScores: fc.constantFrom(0, 0, 5),
      nanValues: fc.constantFrom(0, 0, 0, 0, 0, 2),
      // Shapes of b and t in topkValues, mostly those of the scores.
      shift: mostly(fc.constant<number[]>([0, 0]), fc.constantFrom<number[]>([1, 0], [0, 1])),
      kind: mostly(fc.constant('right'), fc.constantFrom('scoresF64', 'valuesI32', 'rank2', 'noTensor')),
      fromTop: fc.boolean(),
      // A misspelled option: a TypeError naming the function.
      stray: percent.map((u) => u < 3),
      out: outArb,
      maxBytes: guardArb,
    })
    .chain((c) =>
      fc.record({
        c: fc.constant(c),
        scores: fc.array(fc.tuple(fc.constantFrom(...SCORES), percent), { minLength: c.b * c.t * c.s, maxLength: c.b * c.t * c.s }).map((xs) => Float32Array.from(xs, ([v, u]) => (u < c.nanScores ? NaN : v))),
        values: fc.array(fc.tuple(fc.constantFrom(...SCORES), percent), { minLength: (c.b + c.shift[0]) * (c.t + c.shift[1]) * c.k, maxLength: (c.b + c.shift[0]) * (c.t + c.shift[1]) * c.k }).map((xs) => Float32Array.from(xs, ([v, u]) => (u < c.nanValues ? NaN : v))),
        rows: rowsArb(c.b * c.t),
      }),
    );
  fc.assert(
    fc.property(arb, ({ c, scores, values, rows }) => {
      const { b, t, s, k, mode, form, shift, kind, maxBytes } = c;
      const [vb, vt] = [b + shift[0], t + shift[1]];
      // Half the time the values are each row's true top k (then exact equals topk's index mask).
      if (c.fromTop && shift[0] === 0 && shift[1] === 0) {
        for (let r = 0; r < b * t; r++) {
          const sorted = Array.from(scores.subarray(r * s, (r + 1) * s)).filter((x) => !Number.isNaN(x)).sort((x, y) => y - x);
          for (let i = 0; i < k; i++) if (!Number.isNaN(values[r * k + i])) values[r * k + i] = i < sorted.length ? sorted[i] : -Infinity;
        }
      }
      const fm = (form ?? 'additive') as MaskForm;
      const r = rowsRef(rows, b * t);
      const length = isForm(fm) && r.bad.length === 0 ? (r.end - r.start) * widthOf(fm, s) : 0;
      const out = isForm(fm) ? makeOut(c.out, fm, length) : undefined;
      const scoresT = kind === 'scoresF64' ? { data: Float64Array.from(scores), shape: [b, t, s] } : kind === 'rank2' ? { data: scores, shape: [b * t, s] } : { data: scores, shape: [b, t, s] };
      const valuesT = kind === 'valuesI32' ? { data: Int32Array.from(values, (x) => x | 0), shape: [vb, vt, k] } : kind === 'noTensor' ? values : { data: values, shape: [vb, vt, k] };
      const what = `maskFromThreshold scores[${b},${t},${s}] values[${vb},${vt},${k}] ${kind} ${String(mode)} ${String(form)} ${JSON.stringify({ rows, maxBytes, out: c.out })}`;
      const bad: string[] = [];
      if (kind === 'scoresF64' || kind === 'rank2') bad.push('scores');
      if (kind === 'valuesI32' || kind === 'noTensor') bad.push('topkValues');
      if (shift[0] !== 0 || shift[1] !== 0 || c.stray) bad.push('maskFromThreshold');
      // null counts as absent, as for every option read with ?? at the edge.
      if (mode != null && mode !== 'exact' && mode !== 'raw') bad.push('mode');
      if (!isForm(fm)) bad.push('form');
      bad.push(...r.bad);
      if (bad.length === 0) {
        bad.push(...outBad(out, fm, length, maxBytes));
        if (values.subarray(r.start * k, r.end * k).some(Number.isNaN)) bad.push('topkValues');
      }
      let expected: Expected<{ data: MaskData; shape: number[] }> = { bad };
      if (bad.length === 0) {
        // The definition: tau = the row's smallest value; exact keeps > tau (at most k, by key), then == tau by key up to k; raw keeps >= tau; NaN never.
        const kept: boolean[][] = [];
        for (let row = r.start; row < r.end; row++) {
          const tau = Math.min(...values.subarray(row * k, (row + 1) * k));
          const x = scores.subarray(row * s, (row + 1) * s);
          const keep = Array.from({ length: s }, () => false);
          if (mode === 'raw') x.forEach((v, j) => (keep[j] = v >= tau));
          else {
            let n = 0;
            x.forEach((v, j) => { if (v > tau && n < k) { keep[j] = true; n++; } });
            x.forEach((v, j) => { if (v === tau && n < k) { keep[j] = true; n++; } });
          }
          kept.push(keep);
        }
        expected = { value: { data: encode(kept, fm, s), shape: rows === undefined ? [b, t, widthOf(fm, s)] : [r.end - r.start, widthOf(fm, s)] } };
      }
      check(what, () => maskFromThreshold(scoresT as never, valuesT as never, { mode, form, rows, out, maxBytes, ...(c.stray ? { modes: 'raw' } : {}) } as never), expected, sameMask(what));
      if ('bad' in expected && out !== undefined) assert.ok(out.every((v) => v === 7), `${what}: out untouched`);
    }),
    { numRuns: 3000 },
  );
  report('maskFromThreshold', started);
});

/** Element values of each form: kept and dropped ones, and the odd ones a mask made elsewhere may hold. */
const CELLS: Record<MaskForm, number[]> = {
  additive: [0, DEFAULT_MASK_VALUE, 0, DEFAULT_MASK_VALUE, -0, -Infinity, NaN, 1, -1e30],
  bool: [0, 1, 0, 1, 2, 255],
  bits: [0, 0xffffffff, 0x1, 0x80000000, 0x5555aaaa, 0],
};
const keptIn = (form: MaskForm, v: number) => (form === 'additive' ? v === 0 : v !== 0);

test('combineMasks: every form, rank 2 and 3, odd cell values, rows, out, guards, mismatched forms and shapes', () => {
  const started = performance.now();
  const arb = fc
    .record({
      form: fc.constantFrom(...FORMS),
      rank: fc.constantFrom(2, 3),
      b: fc.integer({ min: 1, max: 3 }), t: fc.integer({ min: 1, max: 3 }), w: fc.integer({ min: 1, max: 20 }),
      kind: mostly(fc.constant('right'), fc.constantFrom('otherForm', 'otherShape', 'otherRank', 'float64', 'rank1', 'noTensor', 'shortData', 'strayOption')),
      out: outArb,
      maxBytes: guardArb,
    })
    .chain((c) =>
      fc.record({
        c: fc.constant(c),
        a: fc.array(fc.constantFrom(...CELLS[c.form]), { minLength: c.b * c.t * c.w, maxLength: c.b * c.t * c.w }),
        bb: fc.array(fc.constantFrom(...CELLS[c.form]), { minLength: c.b * c.t * c.w, maxLength: c.b * c.t * c.w }),
        rows: rowsArb(c.b * c.t),
      }),
    );
  fc.assert(
    fc.property(arb, ({ c, a, bb, rows }) => {
      const { form, rank, b, t, w, kind, maxBytes } = c;
      const Ctor = ctorOf(form);
      const shape = rank === 3 ? [b, t, w] : [b * t, w];
      const A = { data: Ctor.from(a), shape };
      let B: unknown = { data: Ctor.from(bb), shape: shape.slice() };
      const bad: string[] = [];
      if (kind === 'otherForm') { B = { data: form === 'bool' ? Float32Array.from(bb, (x) => (x ? 1 : 0)) : Uint8Array.from(bb, (x) => (x ? 1 : 0)), shape }; bad.push('b'); }
      if (kind === 'otherShape') { B = { data: Ctor.from([...bb, ...bb]), shape: rank === 3 ? [b, t, 2 * w] : [b * t, 2 * w] }; bad.push('b'); }
      if (kind === 'otherRank') { B = { data: Ctor.from(bb), shape: rank === 3 ? [b * t, w] : [1, b * t, w] }; bad.push('b'); }
      if (kind === 'float64') { B = { data: Float64Array.from(bb), shape }; bad.push('b'); }
      if (kind === 'rank1') { B = { data: Ctor.from(bb), shape: [b * t * w] }; bad.push('b'); }
      if (kind === 'noTensor') { B = Ctor.from(bb); bad.push('b'); }
      if (kind === 'shortData') { B = { data: Ctor.from(bb.slice(1)), shape }; bad.push('b'); }
      const nRows = b * t;
      if (kind === 'strayOption') bad.push('combineMasks');
      const r = rowsRef(rows, nRows);
      bad.push(...r.bad);
      const length = r.bad.length === 0 ? (r.end - r.start) * w : 0;
      const out = makeOut(c.out, form, length);
      if (bad.length === 0) bad.push(...outBad(out, form, length, maxBytes));
      const what = `combineMasks ${form} [${shape.join(',')}] ${kind} ${JSON.stringify({ rows, maxBytes, out: c.out })}`;
      let expected: Expected<{ data: MaskData; shape: number[] }> = { bad };
      if (bad.length === 0) {
        const data = new Ctor(length);
        for (let i = 0; i < length; i++) {
          const x = a[r.start * w + i], y = bb[r.start * w + i];
          data[i] = form === 'bits' ? (x & y) >>> 0 : keptIn(form, x) && keptIn(form, y) ? (form === 'additive' ? 0 : 1) : form === 'additive' ? DEFAULT_MASK_VALUE : 0;
        }
        expected = { value: { data, shape: rows === undefined ? shape : [r.end - r.start, w] } };
      }
      check(what, () => combineMasks(A, B as never, { rows, out, maxBytes, ...(kind === 'strayOption' ? { row: [0, 1] } : {}) } as never), expected, sameMask(what));
      if ('bad' in expected && out !== undefined) assert.ok(out.every((v) => v === 7), `${what}: out untouched`);
    }),
    { numRuns: 3000 },
  );
  report('combineMasks', started);
});

test('verifyMask: masks of indices with cells flipped, bits past s, -0 and NaN cells, droppedValue, causalOffset, outOfRange, bad shapes', () => {
  const started = performance.now();
  const arb = fc
    .record({
      form: fc.constantFrom(...FORMS),
      b: fc.integer({ min: 1, max: 3 }), t: fc.integer({ min: 1, max: 4 }), k: fc.integer({ min: 1, max: 5 }), s: fc.integer({ min: 1, max: 70 }),
      causalOffset: fc.option(mostly(fc.integer({ min: -3, max: 70 }), fc.constantFrom<unknown>(0.5, 2 ** 60, NaN, '1')), { nil: undefined }),
      outOfRange: mostly(fc.constantFrom<unknown>(undefined, 'error', 'skip'), fc.constantFrom<unknown>('wrap', 0)),
      droppedValue: fc.option(mostly(fc.constantFrom<unknown>(-Infinity, DEFAULT_MASK_VALUE, -1, -1e300), fc.constantFrom<unknown>(0, -0, NaN, '1')), { nil: undefined, freq: 2 }),
      flips: fc.array(fc.tuple(fc.nat(), fc.nat(), fc.nat()), { maxLength: 3 }),
      kind: mostly(fc.constant('right'), fc.constantFrom('shape', 'float64', 'indicesF32', 's', 'strayOption')),
      sArg: mostly(fc.constant<unknown>(null), fc.constantFrom<unknown>(0, -1, 1.5, 2 ** 31, 2 ** 53, NaN), 12),
    })
    .chain((c) => fc.record({ c: fc.constant(c), indices: fc.array(mostly(fc.integer({ min: -1, max: c.s - 1 }), fc.integer({ min: -3, max: c.s + 2 }), 20), { minLength: c.b * c.t * c.k, maxLength: c.b * c.t * c.k }) }));
  fc.assert(
    fc.property(arb, ({ c, indices }) => {
      const { form, b, t, k, s, causalOffset, outOfRange, droppedValue, flips, kind, sArg } = c;
      const width = widthOf(form, s);
      const offsetOk = causalOffset === undefined || (typeof causalOffset === 'number' && Number.isSafeInteger(causalOffset));
      const offset = offsetOk && causalOffset !== undefined ? (causalOffset as number) : Infinity;
      const droppedOk = droppedValue === undefined || (typeof droppedValue === 'number' && !Number.isNaN(droppedValue) && droppedValue !== 0);
      const dropped = Math.fround(droppedOk && droppedValue !== undefined ? (droppedValue as number) : DEFAULT_MASK_VALUE);
      // The definition: key j of row r kept iff some slot holds j (< s) and j <= ti + offset.
      const keptRows = Array.from({ length: b * t }, (_, r) => Array.from({ length: s }, (_, j) => indices.slice(r * k, (r + 1) * k).includes(j) && j <= (r % t) + offset));
      const data = encode(keptRows, form, s);
      if (form === 'additive') for (let i = 0; i < data.length; i++) if (data[i] !== 0) data[i] = dropped;
      // Flips: a cell set to another value of its form (a bit of a word, also past s).
      for (const [at, v, bit] of flips) {
        const i = at % data.length;
        if (form === 'bits') data[i] = (data[i] ^ (2 ** (bit % 32))) >>> 0;
        else data[i] = CELLS[form][v % CELLS[form].length];
      }
      const mask = kind === 'shape' ? { data, shape: [b, t + 1, width] } : kind === 'float64' ? { data: Float64Array.from(data), shape: [b, t, width] } : { data, shape: [b, t, width] };
      const idx = kind === 'indicesF32' ? { data: Float32Array.from(indices), shape: [b, t, k] } : { data: Int32Array.from(indices), shape: [b, t, k] };
      const sGiven = kind === 's' ? s + 32 : sArg !== null ? sArg : s;
      const what = `verifyMask ${form} idx[${b},${t},${k}] s=${String(sGiven)} ${kind} ${JSON.stringify({ causalOffset: String(causalOffset), outOfRange, droppedValue: String(droppedValue), flips, indices })}`;
      const bad: string[] = [];
      if (kind === 'float64') bad.push('mask');
      if (kind === 'indicesF32') bad.push('indices');
      if (sArg !== null) bad.push('s');
      if (kind === 'shape' || (kind === 's' && widthOf(form, s + 32) !== width)) bad.push('mask');
      if (!offsetOk) bad.push('causalOffset');
      if (outOfRange !== undefined && outOfRange !== 'error' && outOfRange !== 'skip') bad.push('outOfRange');
      if (!droppedOk) bad.push('droppedValue');
      if (kind === 'strayOption') bad.push('verifyMask');
      let expected: Expected<unknown> = { bad };
      if (bad.length === 0) {
        const sOf = sGiven as number;
        const strict = (outOfRange ?? 'error') === 'error';
        const want = encode(Array.from({ length: b * t }, (_, r) => Array.from({ length: sOf }, (_, j) => indices.slice(r * k, (r + 1) * k).includes(j) && j <= (r % t) + offset)), form, sOf);
        if (form === 'additive') for (let i = 0; i < want.length; i++) if (want[i] !== 0) want[i] = dropped;
        let result: unknown = null;
        for (let r = 0; r < b * t && result === null; r++) {
          if (strict && indices.slice(r * k, (r + 1) * k).some((j) => j >= sOf)) { result = 'indices'; break; }
          for (let e = 0; e < width && result === null; e++) {
            const gv = data[r * width + e], wv = want[r * width + e];
            const differs = form === 'additive' ? new Uint32Array(new Float32Array([gv]).buffer)[0] !== new Uint32Array(new Float32Array([wv]).buffer)[0] : gv !== wv;
            if (!differs) continue;
            if (form === 'bits') {
              const diff = (gv ^ wv) >>> 0, bit = 31 - Math.clz32(diff & -diff);
              result = { batch: Math.floor(r / t), query: r % t, key: e * 32 + bit, kept: ((wv >>> bit) & 1) === 1, got: (gv >>> bit) & 1 };
            } else result = { batch: Math.floor(r / t), query: r % t, key: e, kept: form === 'additive' ? Object.is(wv, 0) : wv === 1, got: gv };
          }
        }
        expected = result === 'indices' ? { bad: ['indices'] } : { value: result };
      }
      check(what, () => verifyMask(mask as never, idx as never, sGiven as number, { causalOffset, outOfRange, droppedValue, ...(kind === 'strayOption' ? { dropped: -1 } : {}) } as never), expected, (got, want) => assert.deepEqual(got, want, what));
    }),
    { numRuns: 3000 },
  );
  report('verifyMask', started);
});

test('generateMask, causalMask, windowMask and topk: a misspelled option is a TypeError naming the function, in every form', () => {
  const started = performance.now();
  const idx = { data: Int32Array.from([0, 2, -1, 1]), shape: [1, 2, 2] };
  const scores = { data: Float32Array.from([1, 2, 3, 4]), shape: [1, 2, 2] };
  fc.assert(
    fc.property(fc.constantFrom('rowz', 'Form', 'causal_offset', 'maxbytes', 'seqlens', 'outofrange'), fc.constantFrom(...FORMS), (name, form) => {
      const stray = { [name]: 1 };
      check(`generateMask ${name}`, () => generateMask(idx, 3, { form, ...stray } as never), { bad: ['generateMask'] }, () => {});
      check(`causalMask ${name}`, () => causalMask(1, 2, 3, 0, form, stray as never), { bad: ['causalMask'] }, () => {});
      check(`windowMask keys ${name}`, () => windowMask(1, 2, 3, stray as never, form), { bad: ['windowMask keys'] }, () => {});
      check(`windowMask ${name}`, () => windowMask(1, 2, 3, {}, form, stray as never), { bad: ['windowMask'] }, () => {});
      check(`topk ${name}`, () => topk(scores, 1, stray as never), { bad: ['topk'] }, () => {});
      // Set to undefined, an option counts as absent (callers spread optional fields).
      check(`generateMask ${name}: undefined`, () => generateMask(idx, 3, { form, [name]: undefined } as never), { value: null }, () => {});
    }),
    { numRuns: 200 },
  );
  report('generateMask', started);
});
