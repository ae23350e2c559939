// A fuzz of the public edge in its serving forms. Each random call either
// equals a definition written below with plain loops, or throws a RangeError
// or TypeError whose message names one of the arguments the definition says
// are bad; and no call takes longer than BOUND_MS: sizes are small, except
// the huge s, k, b * t and pageSize values (2^31, 2^32, 2^53, 1e300, ...),
// which must be refused (or meet the memory guard) before any work.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  DEFAULT_MASK_VALUE,
  causalMask,
  createDsaCache,
  generateMask,
  pagedSlots,
  quantizeKeys,
  quantizeKeysFp8,
  topk,
  windowMask,
  type MaskData,
  type MaskForm,
} from '../../src/index.js';
import { ctorOf, encode, sameMask, widthOf } from './definitions.js';

const BOUND_MS = 250;
const INT32_MAX = 2 ** 31 - 1;

/** The definition's verdict: the result, or every argument that makes the call invalid (the call may name any one). */
type Expected<T> = { bad: string[] } | { value: T };

/** Whether `message` names `arg`: it starts with it (`s:`, `window.start:`, `b * t:`), or it is the memory guard's. */
function names(message: string, arg: string): boolean {
  if (arg === 'maxBytes') return /over maxBytes = |^maxBytes: /.test(message);
  return message.startsWith(arg) && /^[:.\s[]/.test(message.slice(arg.length));
}

/** Calls made, and how many of them were refused, per function (printed with the results). */
const tally = new Map<string, { calls: number; refused: number }>();

function report(fn: string, started: number): void {
  const { calls, refused } = tally.get(fn) ?? { calls: 0, refused: 0 };
  console.log(`${fn}: ${calls} calls, ${calls - refused} results and ${refused} named errors, ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

/** Runs one call against its definition, within the time bound. */
function check<T, W>(what: string, call: () => T, expected: Expected<W>, same: (got: T, want: W) => void): void {
  const fn = what.split(/[ (]/)[0];
  const count = tally.get(fn) ?? { calls: 0, refused: 0 };
  tally.set(fn, { calls: count.calls + 1, refused: count.refused + ('bad' in expected ? 1 : 0) });
  const t0 = performance.now();
  let got: T | undefined;
  let error: unknown;
  try {
    got = call();
  } catch (e) {
    error = e;
  }
  const ms = performance.now() - t0;
  assert.ok(ms < BOUND_MS, `${what}: took ${ms.toFixed(0)} ms`);
  if ('bad' in expected) {
    assert.ok(error instanceof RangeError || error instanceof TypeError, `${what}: expected an error naming ${expected.bad.join(' or ')}, got ${error === undefined ? 'a result' : String(error)}`);
    assert.ok(expected.bad.some((arg) => names(error.message, arg)), `${what}: "${error.message}" names none of ${expected.bad.join(', ')}`);
  } else {
    if (error !== undefined) assert.fail(`${what}: expected a result, got ${String(error)}`);
    same(got as T, expected.value);
  }
}

/** A uniform integer in [0, 100) (fc.double is not uniform in value). */
const percent = fc.integer({ min: 0, max: 99 });
const isSize = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x > 0;
const isKeyCount = (s: unknown): s is number => typeof s === 'number' && Number.isSafeInteger(s) && s > 0 && s <= INT32_MAX;
const FORMS = ['additive', 'bool', 'bits'] as const;
const isForm = (f: unknown): f is MaskForm => (FORMS as readonly unknown[]).includes(f);

/** Key counts past what a mask takes, not integers, or (2^31 - 1) one that only the memory guard stops. */
const HUGE_S = [2 ** 31 - 1, 2 ** 31, 2 ** 31 + 1, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 64, 2 ** 53, 2 ** 53 + 2, 1e300, Infinity, NaN, 0, -3, 2.5];
const sizeS = fc.oneof({ weight: 5, arbitrary: fc.integer({ min: 1, max: 70 }) }, { weight: 1, arbitrary: fc.constantFrom(...HUGE_S) });
/** A memory guard: none (only for small sizes), one the small masks pass, a tiny one, or a bad one. */
const guardFor = (s: number) =>
  s > 4096 || !Number.isFinite(s)
    ? fc.constantFrom(64, 1 << 16, 0, -1)
    : fc.oneof({ weight: 8, arbitrary: fc.constant(undefined) }, { weight: 2, arbitrary: fc.constantFrom(1 << 16, 64) }, { weight: 1, arbitrary: fc.constantFrom(0, NaN) });

/** The memory-guard verdict of an allocating call: 'maxBytes' when the guard is bad or the bytes exceed it. */
function guard(bytes: number, maxBytes: number | undefined): string[] {
  if (maxBytes === undefined) return [];
  return !(maxBytes > 0) || bytes > maxBytes ? ['maxBytes'] : [];
}

/** Checks a `rows` option the way the contract states it. */
function rowsRef(rows: unknown, nRows: number): { bad: string[]; start: number; end: number } {
  if (rows === undefined) return { bad: [], start: 0, end: nRows };
  const [start, end] = rows as number[];
  const ok = Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start <= end && end <= nRows;
  return { bad: ok ? [] : ['rows'], start, end };
}

interface Keys {
  causalOffset?: number;
  window?: { start: Int32Array; end: Int32Array };
  seqLens?: Int32Array;
}

/** The arguments of a key window (causalOffset, window, seqLens) that break the contract, for b * t rows over s keys. */
function keysBad(b: number, t: number, s: number, keys: Keys): string[] {
  const bad: string[] = [];
  if (keys.causalOffset !== undefined && !Number.isSafeInteger(keys.causalOffset)) bad.push('causalOffset');
  if (keys.seqLens !== undefined && (keys.seqLens.length !== b || keys.seqLens.some((n) => n < t || n > s))) bad.push('seqLens');
  if (keys.window !== undefined) {
    const { start, end } = keys.window;
    if (start.length !== b * t || end.length !== b * t) bad.push('window');
    else for (let r = 0; r < b * t; r++) if (start[r] < 0 || start[r] > end[r] || end[r] > s) bad.push('window');
  }
  return bad;
}

/** Whether row r = bi * t + ti may see key j: the definition of each option, intersected. */
function visible(r: number, j: number, t: number, s: number, keys: Keys): boolean {
  const bi = Math.floor(r / t), ti = r % t;
  if (j < 0 || j >= s) return false;
  if (keys.causalOffset !== undefined && j > ti + keys.causalOffset) return false;
  if (keys.seqLens !== undefined && j > keys.seqLens[bi] - t + ti) return false;
  if (keys.window !== undefined && (j < keys.window.start[r] || j >= keys.window.end[r])) return false;
  return true;
}



/** The result buffer of a mask call: `out` (checked), else the memory guard. */
function bufferBad(form: MaskForm, length: number, out: MaskData | undefined, maxBytes: number | undefined): string[] {
  if (out !== undefined) return out instanceof ctorOf(form) && out.length === length ? [] : ['out'];
  return guard(length * ctorOf(form).BYTES_PER_ELEMENT, maxBytes);
}

/** Mostly `good`, sometimes (1 in `odds + 1`) `bad`. */
function mostly<T>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<T>, odds = 8): fc.Arbitrary<T> {
  return fc.oneof({ weight: odds, arbitrary: good }, { weight: 1, arbitrary: bad });
}

/** Key windows for b * t rows over s keys: none, or each option, mostly well formed, sometimes with one entry broken. */
function keysArb(b: number, t: number, s: number): fc.Arbitrary<Keys> {
  const hi = isKeyCount(s) && s <= 200 ? s : 200;
  const rows = b * t;
  const window = fc
    .record({
      pairs: fc.array(fc.tuple(fc.integer({ min: 0, max: hi }), fc.integer({ min: 0, max: hi })), { minLength: rows, maxLength: rows }),
      broken: mostly(fc.constant(null), fc.tuple(fc.integer({ min: 0, max: rows - 1 }), fc.constantFrom('negative start', 'start > end', 'end > s'))),
    })
    .map(({ pairs, broken }) => {
      const start = Int32Array.from(pairs, ([x, y]) => Math.min(x, y)), end = Int32Array.from(pairs, ([x, y]) => Math.max(x, y));
      if (broken !== null) {
        const [r, how] = broken;
        if (how === 'negative start') start[r] = -1;
        else if (how === 'start > end') start[r] = end[r] + 1;
        else end[r] = hi + 1;
      }
      return { start, end };
    });
  const seqLens = fc
    .record({
      lens: fc.array(fc.integer({ min: Math.min(t, hi), max: hi }), { minLength: b, maxLength: b }),
      broken: mostly(fc.constant(null), fc.tuple(fc.integer({ min: 0, max: b - 1 }), fc.constantFrom(t - 1, hi + 1))),
    })
    .map(({ lens, broken }) => {
      if (broken !== null) lens[broken[0]] = broken[1];
      return Int32Array.from(lens);
    });
  return fc
    .record(
      {
        causalOffset: mostly(fc.integer({ min: -t - 1, max: hi + 1 }), fc.constantFrom(2 ** 40, -(2 ** 40), 2 ** 53, 0.5)),
        window,
        seqLens,
      },
      { requiredKeys: [] },
    )
    .map((keys) => Object.fromEntries(Object.entries(keys).filter(([, v]) => v !== undefined)) as Keys);
}

const rowsArb = (nRows: number) =>
  fc.option(
    fc.oneof(
      { weight: 8, arbitrary: fc.tuple(fc.integer({ min: 0, max: nRows }), fc.integer({ min: 0, max: nRows })).map(([x, y]) => [Math.min(x, y), Math.max(x, y)]) },
      { weight: 1, arbitrary: fc.constantFrom([1, 0], [0, nRows + 1], [0.5, 1], [-1, 1]) },
    ),
    { nil: undefined },
  );

/** A caller's `out` for `length` elements of `form`: none, the right buffer (filled with 7), or a wrong one. */
const outArb = (form: unknown, length: number) =>
  isForm(form) && length <= 1 << 14
    ? fc.oneof(
        { weight: 6, arbitrary: fc.constant(undefined) },
        { weight: 3, arbitrary: fc.constant(() => new (ctorOf(form))(length).fill(7)) },
        { weight: 1, arbitrary: fc.constantFrom(() => new (ctorOf(form))(length + 1).fill(7), () => new Float64Array(length).fill(7) as never) },
      )
    : fc.constant(undefined);

test(`generateMask: every form, strategy, outOfRange, causalOffset, window, seqLens, rows, out and huge s`, () => {
  const started = performance.now();
  const arb = fc
    .record({ b: fc.integer({ min: 1, max: 3 }), t: fc.integer({ min: 1, max: 4 }), k: fc.integer({ min: 1, max: 6 }), s: sizeS })
    .chain(({ b, t, k, s }) => {
      const top = isKeyCount(s) ? Math.min(s + 3, INT32_MAX) : 70;
      const index = isKeyCount(s) && s <= 70
        ? fc.oneof({ weight: 30, arbitrary: fc.integer({ min: -1, max: s - 1 }) }, { weight: 1, arbitrary: fc.integer({ min: -3, max: top }) })
        : fc.integer({ min: -3, max: top });
      return fc.record({
        b: fc.constant(b), t: fc.constant(t), k: fc.constant(k), s: fc.constant(s),
        indices: fc.array(index, { minLength: b * t * k, maxLength: b * t * k }),
        form: mostly(fc.constantFrom<unknown>('additive', 'bool', 'bits'), fc.constant('dense')),
        strategy: mostly(fc.constantFrom<unknown>(undefined, 'scatter', 'broadcast'), fc.constant('gather')),
        outOfRange: mostly(fc.constantFrom<unknown>(undefined, 'error', 'skip'), fc.constant('wrap')),
        keys: keysArb(b, t, s),
        rows: rowsArb(b * t),
        maxBytes: guardFor(s),
      }).chain((c) => {
        const [start, end] = (c.rows as number[] | undefined) ?? [0, b * t];
        const length = isKeyCount(s) && isForm(c.form) ? Math.max(0, end - start) * widthOf(c.form, s) : 0;
        return fc.record({ c: fc.constant(c), out: outArb(c.form, length) });
      });
    });
  fc.assert(
    fc.property(arb, ({ c, out: makeOut }) => {
      const { b, t, k, s, form, strategy, outOfRange, keys, rows, maxBytes } = c;
      const indices = Int32Array.from(c.indices);
      const out = makeOut?.();
      const what = `generateMask idx[${b},${t},${k}] s=${s} ${String(form)} ${String(strategy)} ${String(outOfRange)} ${JSON.stringify({ ...keys, rows, maxBytes, out: out?.length })}`;
      // The definition: every argument checked, then key j of row r kept iff some slot holds j and r sees j.
      let expected: Expected<{ data: MaskData; shape: number[] }>;
      const bad: string[] = [];
      if (!isKeyCount(s)) bad.push('s');
      if (strategy !== undefined && strategy !== 'scatter' && strategy !== 'broadcast') bad.push('strategy');
      if (!isForm(form)) bad.push('form');
      if (outOfRange !== undefined && outOfRange !== 'error' && outOfRange !== 'skip') bad.push('outOfRange');
      bad.push(...keysBad(b, t, s, keys));
      const r = rowsRef(rows, b * t);
      bad.push(...r.bad);
      if (bad.length === 0 && isForm(form)) {
        const width = widthOf(form, s);
        bad.push(...bufferBad(form, (r.end - r.start) * width, out, maxBytes));
        if ((outOfRange ?? 'error') === 'error' && indices.subarray(r.start * k, r.end * k).some((j) => j >= s)) bad.push('indices');
      }
      if (bad.length > 0) expected = { bad };
      else {
        const kept: boolean[][] = [];
        for (let row = r.start; row < r.end; row++) {
          kept.push(Array.from({ length: s }, (_, j) => indices.subarray(row * k, (row + 1) * k).includes(j) && visible(row, j, t, s, keys)));
        }
        const width = widthOf(form as MaskForm, s);
        expected = { value: { data: encode(kept, form as MaskForm, s), shape: rows === undefined ? [b, t, width] : [r.end - r.start, width] } };
      }
      check(what, () => generateMask({ data: indices, shape: [b, t, k] }, s, { form, strategy, outOfRange, ...keys, rows, maxBytes, out } as never), expected, sameMask(what));
      if ('bad' in expected && out !== undefined) assert.ok(out.every((x) => x === 7), `${what}: out untouched`);
    }),
    { numRuns: 3000 },
  );
  report('generateMask', started);
});

test('causalMask: every form and rows, huge s, b and t', () => {
  const started = performance.now();
  const dim = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 1, max: 4 }) }, { weight: 1, arbitrary: fc.constantFrom(2 ** 26, 2 ** 30, 2 ** 40, 1e300, 0, -1, 1.5) });
  const arb = fc
    .record({ b: dim, t: dim, s: sizeS, form: fc.constantFrom<unknown>('additive', 'bool', 'bits', 'additive', 'bool', 'bits', 'dense') })
    .chain((c) => {
      const nRows = isSize(c.b) && isSize(c.t) ? c.b * c.t : 4;
      const small = nRows <= 16;
      return fc.record({
        c: fc.constant(c),
        offset: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: -5, max: 80 }) }, { weight: 1, arbitrary: fc.constantFrom(2 ** 40, -(2 ** 40), 2 ** 53, 0.5) }),
        // Huge b * t: a few rows somewhere in the middle (or none, and the guard meets them all).
        rows: small ? rowsArb(nRows) : fc.option(fc.tuple(fc.integer({ min: 0, max: 2 ** 20 }), fc.integer({ min: 0, max: 3 })).map(([a, n]) => [Math.floor(nRows / 2) + a, Math.floor(nRows / 2) + a + n]), { nil: undefined }),
        maxBytes: small ? guardFor(c.s) : fc.constantFrom(64, 1 << 16),
      });
    });
  fc.assert(
    fc.property(arb, ({ c: { b, t, s, form }, offset, rows, maxBytes }) => {
      const what = `causalMask(${b}, ${t}, ${s}, ${offset}, ${String(form)}) ${JSON.stringify({ rows, maxBytes })}`;
      const bad: string[] = [];
      if (!isSize(b)) bad.push('b');
      if (!isSize(t)) bad.push('t');
      if (isSize(b) && isSize(t) && !Number.isSafeInteger(b * t)) bad.push('b');
      if (!isKeyCount(s)) bad.push('s');
      if (!Number.isSafeInteger(offset)) bad.push('offset');
      if (!isForm(form)) bad.push('form');
      let expected: Expected<{ data: MaskData; shape: number[] }>;
      if (bad.length === 0) {
        const r = rowsRef(rows, b * t);
        bad.push(...r.bad);
        if (r.bad.length === 0) bad.push(...guard((r.end - r.start) * widthOf(form as MaskForm, s) * ctorOf(form as MaskForm).BYTES_PER_ELEMENT, maxBytes));
        if (bad.length === 0) {
          const kept: boolean[][] = [];
          for (let row = r.start; row < r.end; row++) kept.push(Array.from({ length: s }, (_, j) => j <= (row % t) + offset));
          const width = widthOf(form as MaskForm, s);
          expected = { value: { data: encode(kept, form as MaskForm, s), shape: rows === undefined ? [b, t, width] : [r.end - r.start, width] } };
        } else expected = { bad };
      } else expected = { bad };
      check(what, () => causalMask(b, t, s, offset, form as MaskForm, { rows: rows as [number, number] | undefined, maxBytes }), expected, sameMask(what));
    }),
    { numRuns: 3000 },
  );
  report('causalMask', started);
});

test('windowMask: causalOffset, window and seqLens intersected, every form, rows and huge s', () => {
  const started = performance.now();
  const arb = fc
    .record({ b: fc.integer({ min: 1, max: 3 }), t: fc.integer({ min: 1, max: 4 }), s: sizeS, form: fc.constantFrom<unknown>('additive', 'bool', 'bits', 'dense') })
    .chain((c) => fc.record({ c: fc.constant(c), keys: keysArb(c.b, c.t, c.s), rows: rowsArb(c.b * c.t), maxBytes: guardFor(c.s) }));
  fc.assert(
    fc.property(arb, ({ c: { b, t, s, form }, keys, rows, maxBytes }) => {
      const what = `windowMask(${b}, ${t}, ${s}, ${String(form)}) ${JSON.stringify({ ...keys, rows, maxBytes })}`;
      const bad: string[] = [];
      if (!isKeyCount(s)) bad.push('s');
      if (!isForm(form)) bad.push('form');
      bad.push(...keysBad(b, t, s, keys));
      const r = rowsRef(rows, b * t);
      bad.push(...r.bad);
      if (bad.length === 0) bad.push(...guard((r.end - r.start) * widthOf(form as MaskForm, s) * ctorOf(form as MaskForm).BYTES_PER_ELEMENT, maxBytes));
      let expected: Expected<{ data: MaskData; shape: number[] }> = { bad };
      if (bad.length === 0) {
        const kept: boolean[][] = [];
        for (let row = r.start; row < r.end; row++) kept.push(Array.from({ length: s }, (_, j) => visible(row, j, t, s, keys)));
        const width = widthOf(form as MaskForm, s);
        expected = { value: { data: encode(kept, form as MaskForm, s), shape: rows === undefined ? [b, t, width] : [r.end - r.start, width] } };
      }
      check(what, () => windowMask(b, t, s, keys, form as MaskForm, { rows: rows as [number, number] | undefined, maxBytes }), expected, sameMask(what));
    }),
    { numRuns: 3000 },
  );
  report('windowMask', started);
});

test('pagedSlots: positions through the block table, seqLens, numPages, and huge page sizes', () => {
  const started = performance.now();
  const arb = fc
    .record({
      b: fc.integer({ min: 1, max: 3 }), t: fc.integer({ min: 1, max: 3 }), k: fc.integer({ min: 1, max: 4 }), maxBlocks: fc.integer({ min: 1, max: 4 }),
      pageSize: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 1, max: 8 }) }, { weight: 2, arbitrary: fc.constantFrom(2 ** 16, 2 ** 20, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 53, 1e300) }, { weight: 1, arbitrary: fc.constantFrom(0, -4, 2.5, NaN) }),
      numPages: fc.option(mostly(fc.integer({ min: 1, max: 2 ** 16 }), fc.constantFrom(0, 1.5)), { nil: undefined }),
    })
    .chain((c) => {
      const P = isSize(c.pageSize) ? c.pageSize : 4;
      const inTable = Math.min(c.maxBlocks * P, INT32_MAX + 1); // positions the table covers
      const pages = c.numPages !== undefined && isSize(c.numPages) ? c.numPages : 2 ** 15;
      // A huge page: page 0, 1, and the last ones whose slots fit int32 or just do not.
      const edge = Math.floor(INT32_MAX / P);
      const page = P > 2 ** 15 ? fc.constantFrom(0, 0, 1, edge, edge + 1).map((x) => Math.min(x, pages - 1)) : fc.integer({ min: 0, max: Math.min(pages - 1, 7) });
      return fc.record({
        c: fc.constant(c),
        positions: fc.array(mostly(fc.integer({ min: -1, max: inTable - 1 }), fc.integer({ min: 0, max: Math.min(inTable + P, INT32_MAX) }), 12), { minLength: c.b * c.t * c.k, maxLength: c.b * c.t * c.k }),
        table: fc.array(mostly(page, fc.oneof(fc.integer({ min: 0, max: pages + 1 }), fc.constant(-1)), 20), { minLength: c.b * c.maxBlocks, maxLength: c.b * c.maxBlocks }),
        seqLens: fc.option(mostly(fc.constant(Array.from({ length: c.b }, () => Math.min(inTable, INT32_MAX))), fc.array(fc.integer({ min: 0, max: Math.min(inTable, INT32_MAX) }), { minLength: c.b, maxLength: c.b }), 4), { nil: undefined }),
      });
    });
  fc.assert(
    fc.property(arb, ({ c: { b, t, k, maxBlocks, pageSize: P, numPages }, positions, table, seqLens }) => {
      const what = `pagedSlots idx[${b},${t},${k}] table[${b},${maxBlocks}] pageSize=${P} ${JSON.stringify({ numPages, seqLens, positions, table })}`;
      const bad: string[] = [];
      if (!isSize(P)) bad.push('pageSize');
      if (numPages !== undefined && !isSize(numPages)) bad.push('numPages');
      const want = new Int32Array(b * t * k);
      if (bad.length === 0) {
        for (let r = 0; r < b * t; r++) {
          const bi = Math.floor(r / t);
          for (let i = 0; i < k; i++) {
            const p = positions[r * k + i];
            if (p < 0) {
              want[r * k + i] = -1;
              continue;
            }
            const blk = Math.floor(p / P);
            if ((seqLens !== undefined && p >= seqLens[bi]) || blk >= maxBlocks) {
              bad.push('indices');
              continue;
            }
            const page = table[bi * maxBlocks + blk];
            if (page < 0 || page >= (numPages ?? Infinity)) bad.push('blockTable');
            else if (page * P + (p % P) > INT32_MAX) bad.push('pageSize');
            else want[r * k + i] = page * P + (p % P);
          }
        }
      }
      check(
        what,
        () => pagedSlots({ data: Int32Array.from(positions), shape: [b, t, k] }, { data: Int32Array.from(table), shape: [b, maxBlocks] }, P, { numPages, seqLens: seqLens && Int32Array.from(seqLens) }),
        bad.length > 0 ? { bad } : { value: want },
        (got, expected) => {
          assert.deepEqual(got.shape, [b, t, k], what);
          assert.deepEqual(got.data, expected, what);
        },
      );
    }),
    { numRuns: 3000 },
  );
  report('pagedSlots', started);
});

test('topk: windows, seqLens and causalOffset, ties, -Infinity, NaN (error or lowest), rows, k > s and huge k', () => {
  const started = performance.now();
  const VALUES = [-1, 0, -0, 1, 2, 0.5, -Infinity, Infinity, 1, 2];
  const arb = fc
    .record({
      b: fc.integer({ min: 1, max: 3 }), t: fc.integer({ min: 1, max: 3 }), s: fc.integer({ min: 1, max: 24 }),
      k: mostly(fc.integer({ min: 1, max: 28 }), fc.constantFrom(2 ** 31, 2 ** 53, 1e300, 0, 1.5)),
      nanPercent: fc.constantFrom(0, 0, 5),
      nan: fc.constantFrom<unknown>(undefined, 'error', 'lowest', 'lowest'),
    })
    .chain((c) =>
      fc.record({
        c: fc.constant(c),
        scores: fc.array(fc.tuple(fc.constantFrom(...VALUES), percent), { minLength: c.b * c.t * c.s, maxLength: c.b * c.t * c.s }).map((xs) => Float32Array.from(xs, ([v, u]) => (u < c.nanPercent ? NaN : v))),
        keys: keysArb(c.b, c.t, c.s),
        rows: rowsArb(c.b * c.t),
        maxBytes: isSize(c.k) && c.k <= 28 ? fc.constant(undefined) : fc.constantFrom(64, 1 << 16),
      }),
    );
  fc.assert(
    fc.property(arb, ({ c: { b, t, s, k, nan }, scores, keys, rows, maxBytes }) => {
      const what = `topk scores[${b},${t},${s}] k=${k} ${JSON.stringify({ nan, ...keys, rows, maxBytes })}`;
      const bad: string[] = [];
      if (!isSize(k)) bad.push('k');
      bad.push(...keysBad(b, t, s, keys));
      const r = rowsRef(rows, b * t);
      bad.push(...r.bad);
      if (bad.length === 0) bad.push(...guard((r.end - r.start) * k * 8 + (r.end - r.start) * 4 + s * 24, maxBytes));
      // The definition: the eligible keys in descending value (NaN below -Infinity), ties by ascending key; -1 / -Infinity past them.
      const values = new Float32Array(bad.length === 0 ? (r.end - r.start) * k : 0), indices = new Int32Array(values.length);
      for (let row = r.start; row < r.end && bad.length === 0; row++) {
        const eligible = Array.from({ length: s }, (_, j) => j).filter((j) => visible(row, j, t, s, keys));
        if (nan !== 'lowest' && eligible.some((j) => Number.isNaN(scores[row * s + j]))) {
          bad.push('scores');
          break;
        }
        const rank = (j: number) => (Number.isNaN(scores[row * s + j]) ? -Infinity : scores[row * s + j]);
        eligible.sort((x, y) => (rank(x) !== rank(y) ? (rank(y) > rank(x) ? 1 : -1) : Number.isNaN(scores[row * s + x]) !== Number.isNaN(scores[row * s + y]) ? (Number.isNaN(scores[row * s + x]) ? 1 : -1) : x - y));
        for (let i = 0; i < k; i++) {
          const o = (row - r.start) * k + i;
          indices[o] = i < eligible.length ? eligible[i] : -1;
          values[o] = i < eligible.length ? scores[row * s + eligible[i]] : -Infinity;
        }
      }
      check(
        what,
        () => topk({ data: scores, shape: [b, t, s] }, k, { nan, ...keys, rows, maxBytes } as never),
        bad.length > 0 ? { bad } : { value: { values, indices } },
        (got, want) => {
          assert.deepEqual(got.indices.data, want.indices, `${what}: indices`);
          assert.ok(got.values.data.every((v, i) => Object.is(v, want.values[i])), `${what}: values`);
          assert.deepEqual(got.indices.shape, rows === undefined ? [b, t, k] : [r.end - r.start, k], `${what}: shape`);
        },
      );
    }),
    { numRuns: 3000 },
  );
  report('topk', started);
});

test('createDsaCache + append: both layouts, every key form, full caches, non-finite keys and kv rows, bad shapes, huge sizes', () => {
  const started = performance.now();
  const MAX_BYTES = 1 << 20;
  const layout = fc.oneof(
    { weight: 4, arbitrary: fc.record({ capacity: fc.integer({ min: 1, max: 12 }) }) },
    { weight: 4, arbitrary: fc.record({ pages: fc.integer({ min: 1, max: 6 }), pageSize: fc.integer({ min: 1, max: 4 }) }) },
    { weight: 1, arbitrary: fc.constantFrom<Record<string, number>>({ pages: 2 ** 20, pageSize: 2 ** 12 }, { pages: 2, pageSize: 2 ** 31 }, { pages: 1, pageSize: 2 ** 31 }, { capacity: 2 ** 31 }, { capacity: 2 ** 30 }, { pages: 1e300, pageSize: 1 }, { pages: 3, pageSize: 0 }) },
  );
  const bad = (rate: number) => fc.tuple(percent, fc.nat(), fc.constantFrom(NaN, Infinity, -Infinity)).map(([u, at, v]) => (u < rate ? { at, v } : null));
  const call = (batch: number) =>
    fc.record({ seq: mostly(fc.integer({ min: 0, max: batch - 1 }), fc.constant(batch)), n: fc.integer({ min: 1, max: 5 }), seed: fc.integer(), badKey: bad(8), badKv: bad(8), wrongD: percent.map((u) => u < 3) });
  const arb = fc
    .record({ batch: fc.integer({ min: 1, max: 3 }), layout, d: fc.constantFrom(4, 8), keyForm: fc.constantFrom('float32', 'int8', 'fp8'), hkv: fc.integer({ min: 1, max: 2 }), dqk: fc.integer({ min: 1, max: 5 }) })
    .chain((c) => fc.record({ calls: fc.array(call(c.batch), { minLength: 1, maxLength: 6 }) }).map(({ calls }) => ({ ...c, calls })));
  fc.assert(
    fc.property(arb, ({ batch, layout, d, keyForm, hkv, dqk, calls }) => {
      const opts = { batch, ...layout, indexerDim: d, keyForm: keyForm as 'float32' | 'int8' | 'fp8', kvHeads: hkv, kvDim: dqk, shared: false, maxBytes: MAX_BYTES };
      const what = `createDsaCache(${JSON.stringify(opts)})`;
      // The definition of the cache: sizes, then at most 2^31 int32 slots, then the memory guard.
      const paged = 'pages' in layout;
      const P = paged ? layout.pageSize : layout.capacity, numPages = paged ? layout.pages : batch;
      const expectBad: string[] = [];
      if (!isSize(P)) expectBad.push(paged ? 'pageSize' : 'capacity');
      if (!isSize(numPages)) expectBad.push('pages');
      if (expectBad.length === 0 && numPages * P > 2 ** 31) expectBad.push(paged ? 'createDsaCache: pages' : 'createDsaCache: batch');
      const keyBytes = keyForm === 'float32' ? d * 4 : keyForm === 'int8' ? d + 4 : d + 4;
      if (expectBad.length === 0) expectBad.push(...guard(numPages * P * (keyBytes + hkv * dqk * 4), MAX_BYTES));
      let cache: ReturnType<typeof createDsaCache> | undefined;
      check(what, () => (cache = createDsaCache(opts)), expectBad.length > 0 ? { bad: expectBad } : { value: undefined as never }, () => {});
      if (cache === undefined) return;
      // The model: each sequence's key and kv rows so far, and the free pages.
      const stored = Array.from({ length: batch }, () => ({ keys: [] as number[][], kv: [] as number[][] }));
      let free = paged ? numPages : 0;
      for (const [c, { seq, n, seed, badKey, badKv, wrongD }] of calls.entries()) {
        const keys = Float32Array.from({ length: n * (wrongD ? d + 1 : d) }, (_, i) => Math.sin(seed + i) * 2);
        const kv = Float32Array.from({ length: n * hkv * dqk }, (_, i) => Math.cos(seed - i) * 3);
        if (badKey) keys[badKey.at % keys.length] = badKey.v;
        if (badKv) kv[badKv.at % kv.length] = badKv.v;
        const callBad: string[] = [];
        if (seq >= batch) callBad.push('seq');
        if (wrongD) callBad.push('append');
        if (callBad.length === 0) {
          const len = stored[seq].keys.length;
          const blocksNow = Math.ceil(len / P), blocksAfter = Math.ceil((len + n) / P);
          const fits = paged ? blocksAfter <= numPages && blocksAfter - blocksNow <= free : len + n <= P;
          if (!fits) callBad.push('cache');
          if (badKey) callBad.push('keys');
          if (badKv) callBad.push('kv');
          if (callBad.length === 0) {
            for (let i = 0; i < n; i++) {
              stored[seq].keys.push(Array.from(keys.subarray(i * d, (i + 1) * d)));
              stored[seq].kv.push(Array.from(kv.subarray(i * hkv * dqk, (i + 1) * hkv * dqk)));
            }
            if (paged) free -= blocksAfter - blocksNow;
          }
        }
        const w = `append #${c} to ${what} (seq ${seq}, n ${n}${badKey ? `, key ${badKey.v}` : ''}${badKv ? `, kv ${badKv.v}` : ''}${wrongD ? ', d + 1' : ''})`;
        check(w, () => cache!.append(seq, { keys: { data: keys, shape: [n, wrongD ? d + 1 : d] }, kv: { data: kv, shape: [n, hkv, dqk] } }), callBad.length > 0 ? { bad: callBad } : { value: undefined }, () => {});
        // After every call, changed or refused: the lengths, the free pages, and each token's kv row and key where the block table puts it.
        assert.deepEqual([...cache.lengths], stored.map((x) => x.keys.length), `${w}: lengths`);
        assert.equal(cache.freePages(), free, `${w}: free pages`);
        stored.forEach(({ keys: rowsK, kv: rowsV }, i) => {
          if (rowsK.length === 0) return;
          const slot = (p: number) => cache!.blockTable.data[i * cache!.maxBlocks + Math.floor(p / P)] * P + (p % P);
          rowsV.forEach((row, p) => assert.deepEqual(Array.from(cache!.kv.data.subarray(slot(p) * hkv * dqk, (slot(p) + 1) * hkv * dqk)), row, `${w}: seq ${i} kv row ${p}`));
          const all = { data: Float32Array.from(rowsK.flat()), shape: [1, rowsK.length, d] };
          if (keyForm === 'float32') {
            const got = (cache!.keys as { data: Float32Array }).data;
            rowsK.forEach((row, p) => assert.deepEqual(Array.from(got.subarray(slot(p) * d, (slot(p) + 1) * d)), row, `${w}: seq ${i} key ${p}`));
          } else if (keyForm === 'int8') {
            const want = quantizeKeys(all), got = cache!.keys as ReturnType<typeof quantizeKeys>;
            rowsK.forEach((_, p) => {
              assert.deepEqual(Array.from(got.values.data.subarray(slot(p) * d, (slot(p) + 1) * d)), Array.from(want.values.data.subarray(p * d, (p + 1) * d)), `${w}: seq ${i} int8 key ${p}`);
              assert.equal(got.scales.data[slot(p)], want.scales.data[p], `${w}: seq ${i} int8 scale ${p}`);
            });
          } else {
            // A page of P tokens: their d codes each, then their P float32 scales.
            const want = quantizeKeysFp8(all), got = (cache!.keys as { data: Uint8Array }).data;
            const gotScales = new Float32Array(got.buffer, got.byteOffset, got.length >> 2), wantScales = new Float32Array(want.data.buffer, 0, want.data.length >> 2);
            rowsK.forEach((_, p) => {
              const page = Math.floor(slot(p) / P), o = slot(p) % P, base = page * P * (d + 4);
              assert.deepEqual(Array.from(got.subarray(base + o * d, base + (o + 1) * d)), Array.from(want.data.subarray(p * d, (p + 1) * d)), `${w}: seq ${i} fp8 codes ${p}`);
              assert.equal(gotScales[(base + P * d) / 4 + o], wantScales[(rowsK.length * d) / 4 + p], `${w}: seq ${i} fp8 scale ${p}`);
            });
          }
        });
      }
    }),
    { numRuns: 1000 },
  );
  report('createDsaCache', started);
  report('append', started);
});
