import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DEFAULT_MASK_VALUE, type MaskData, type MaskForm } from '../../src/tensor.js';
import { createRowVerifier, verifyRowsFast, verifyRowsReference, type VerifyRowsOptions } from '../../src/mask/verify.js';
import { generateMask, verifyMask } from '../../src/index.js';
import { keptByIndices, encode } from './definition.js';

const forms: MaskForm[] = ['additive', 'bool', 'bits'];

interface Case {
  o: VerifyRowsOptions;
  n: number;
  indices: Int32Array;
  cells: MaskData;
}

/** Rows that mostly match their indices (k sometimes > s, padding, values >= s, repeats), then a few cells changed. */
const verifyCase = fc
  .record({
    form: fc.constantFrom(...forms),
    n: fc.integer({ min: 1, max: 6 }),
    s: fc.integer({ min: 1, max: 90 }),
    k: fc.integer({ min: 1, max: 13 }),
    t0: fc.integer({ min: 0, max: 40 }),
    offset: fc.oneof(fc.constant(Infinity), fc.integer({ min: -45, max: 60 })),
    strict: fc.boolean(),
    dropped: fc.constantFrom(DEFAULT_MASK_VALUE, -Infinity, -1e9),
    distinct: fc.boolean(),
    seed: fc.integer(),
    edits: fc.array(fc.record({ at: fc.nat(), value: fc.nat({ max: 5 }) }), { maxLength: 3 }),
  })
  .map(({ form, n, s, k, t0, offset, strict, dropped, distinct, seed, edits }): Case => {
    let x = seed | 0;
    const next = (m: number) => {
      x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + 0x9e3779b9) | 0;
      return ((x >>> 0) % m);
    };
    const indices = new Int32Array(n * k);
    for (let r = 0; r < n; r++) {
      const used = new Set<number>();
      for (let i = 0; i < k; i++) {
        let j = next(s + 4) - 2; // -2, -1 (padding) .. s + 1 (out of range)
        if (distinct && j >= 0) while (used.has(j) && used.size < s + 2) j = next(s + 2);
        used.add(j);
        indices[r * k + i] = j;
      }
    }
    // The rows the indices define (rows t0 .. t0 + n - 1 of a sequence, as keptByIndices numbers them).
    const all = new Int32Array((t0 + n) * k).fill(-1);
    all.set(indices, t0 * k);
    const kept = keptByIndices(all, t0 + n, k, s, t0, t0 + n, offset === Infinity ? undefined : offset);
    let cells = encode(kept, form, s);
    if (form === 'additive') cells = Float32Array.from(cells, (v) => (v === 0 ? 0 : dropped));
    for (const { at, value } of edits) {
      const i = at % cells.length;
      if (form === 'additive') cells[i] = [0, dropped, -0, 1, NaN, DEFAULT_MASK_VALUE][value];
      else if (form === 'bool') cells[i] = [0, 1, 2, 255, 0, 1][value];
      else cells[i] ^= 2 ** (at % 32); // may touch the bits past s, which must stay 0
    }
    return { o: { form, s, k, t0, offset, strict, dropped }, n, indices, cells };
  });

/** Whether row r keeps some key twice (the one thing the fast test may fail on wrongly). */
function keepsTwice(c: Case, r: number): boolean {
  const { s, k, t0, offset } = c.o;
  const limit = Math.max(0, Math.min(s, t0 + r + offset + 1));
  const seen = new Set<number>();
  for (let i = r * k; i < (r + 1) * k; i++) {
    const j = c.indices[i];
    if (j < 0 || j >= limit) continue;
    if (seen.has(j)) return true;
    seen.add(j);
  }
  return false;
}

function checkAgainstReference(c: Case, fast: number, what: string): void {
  const want = verifyRowsReference(c.cells, c.indices, c.n, c.o);
  // Rows before the one the fast test flags all match; the flagged row
  // differs, unless it keeps a key twice (top-k never does).
  assert.ok(fast <= want, `${what}: fast test flags row ${fast}, the definition ${want}`);
  if (fast < want) assert.ok(keepsTwice(c, fast), `${what}: row ${fast} flagged but it matches and has no repeat`);
}

test('the fast test (TypeScript) flags exactly the first row that differs, or an earlier one with a repeated index', () => {
  fc.assert(
    fc.property(verifyCase, (c) => {
      const cells = c.cells.slice();
      checkAgainstReference(c, verifyRowsFast(cells, c.indices, c.n, c.o), `ts ${c.o.form} n=${c.n} s=${c.o.s} k=${c.o.k}`);
    }),
    { numRuns: 500 },
  );
});

test('the fast test (WebAssembly SIMD verifier) agrees with the definition the same way, reading its indices at an offset', () => {
  fc.assert(
    fc.property(verifyCase, (c) => {
      // The block's indices sit at row `at` of a larger index buffer, among rows that do not match.
      const at = c.n % 3;
      const verifier = createRowVerifier(c.o, c.n + 2, c.n + 4);
      verifier.cells.set(c.cells);
      verifier.indices.fill(c.o.s - 1);
      verifier.indices.set(c.indices, at * c.o.k);
      checkAgainstReference(c, verifier.verify(c.n, c.o.t0, at), `${verifier.simd ? 'simd' : 'ts'} ${c.o.form} n=${c.n} s=${c.o.s} k=${c.o.k} at=${at}`);
    }),
    { numRuns: 500 },
  );
});

test('verifier: a matching block passes, one wrong cell is found in its row, -0 is not 0, strict flags an index >= s', () => {
  const s = 100, k = 8, n = 5;
  const o = { form: 'additive' as const, s, k, offset: Infinity, strict: true, dropped: DEFAULT_MASK_VALUE };
  const fill = (v: ReturnType<typeof createRowVerifier>) => {
    v.cells.fill(DEFAULT_MASK_VALUE);
    for (let r = 0; r < n; r++) for (let i = 0; i < k; i++) {
      const j = (r * 7 + i * 11) % s; // distinct within a row
      v.indices[r * k + i] = j;
      v.cells[r * s + j] = 0;
    }
  };
  const verifier = createRowVerifier(o, n);
  assert.equal(verifier.simd, true, 'this engine has WebAssembly SIMD');
  fill(verifier);
  assert.equal(verifier.verify(n, 0), n);
  fill(verifier);
  verifier.cells[3 * s + 99] = 0; // kept by the mask, not by the indices
  assert.equal(verifier.verify(n, 0), 3);
  fill(verifier);
  verifier.cells[2 * s + verifier.indices[2 * k + 5]] = -0;
  assert.equal(verifier.verify(n, 0), 2);
  // An index >= s in place of a kept key: the mask 'skip' defines matches; 'error' (strict) flags the row.
  for (const [strict, want] of [[true, 4], [false, n]] as const) {
    const v = createRowVerifier({ ...o, strict }, n);
    fill(v);
    v.cells[4 * s + v.indices[4 * k]] = DEFAULT_MASK_VALUE;
    v.indices[4 * k] = s;
    assert.equal(v.verify(n, 0), want, `strict ${strict}`);
  }
});

/** The reference answer of verifyMask: the first element whose bits differ from the definition, as a position. */
function firstDifferenceByDefinition(mask: MaskData, indices: Int32Array, b: number, t: number, k: number, s: number, offset: number | undefined, dropped: number, form: MaskForm) {
  const kept = keptByIndices(indices, t, k, s, 0, b * t, offset);
  let want = encode(kept, form, s);
  if (form === 'additive') want = Float32Array.from(want, (v) => (v === 0 ? 0 : dropped));
  const width = form === 'bits' ? Math.ceil(s / 32) : s;
  const a = new Uint32Array(mask.length), e = new Uint32Array(want.length);
  a.set(mask instanceof Float32Array ? new Uint32Array(mask.buffer, mask.byteOffset, mask.length) : mask);
  e.set(want instanceof Float32Array ? new Uint32Array(want.buffer) : want);
  for (let i = 0; i < a.length; i++) {
    if (a[i] === e[i]) continue;
    const r = Math.floor(i / width);
    if (form !== 'bits') return { batch: Math.floor(r / t), query: r % t, key: i % width, kept: kept[r][i % width], got: mask[i] };
    let bit = 0;
    while (((a[i] >>> bit) & 1) === ((e[i] >>> bit) & 1)) bit++;
    const key = (i % width) * 32 + bit;
    return { batch: Math.floor(r / t), query: r % t, key, kept: key < s && kept[r][key], got: (a[i] >>> bit) & 1 };
  }
  return null;
}

test('verifyMask returns the first difference in row-major order (or null), for every form, padding, repeats, causal offsets and -inf fills', () => {
  fc.assert(
    fc.property(verifyCase, fc.integer({ min: 1, max: 3 }), fc.boolean(), (c, b, error) => {
      const { form, s, k, offset, dropped } = c.o;
      const t = c.n;
      // b batches of the case's indices: the first b - 1 hold the right mask
      // (generateMask's), the last one the case's edited cells.
      const width = form === 'bits' ? Math.ceil(s / 32) : s;
      const data = new (c.cells.constructor as { new (n: number): MaskData })(b * t * width);
      const idx = new Int32Array(b * t * k);
      const causal = offset === Infinity ? undefined : offset + c.o.t0; // row ti here is query t0 + ti of the case
      const right = generateMask({ data: c.indices, shape: [1, t, k] }, s, { form, outOfRange: 'skip', causalOffset: causal }).data;
      if (right instanceof Float32Array) right.forEach((v, i) => (right[i] = v === 0 ? 0 : dropped));
      for (let bi = 0; bi < b; bi++) {
        idx.set(c.indices, bi * t * k);
        data.set(bi === b - 1 ? c.cells : right, bi * t * width);
      }
      const opts = { causalOffset: causal, outOfRange: error ? ('error' as const) : ('skip' as const), droppedValue: dropped };
      const before = data.slice();
      let got: unknown;
      try {
        got = verifyMask({ data, shape: [b, t, width] }, { data: idx, shape: [b, t, k] }, s, opts);
      } catch (e) {
        got = e;
      }
      assert.deepEqual(data, before, 'verifyMask leaves the mask as it was');
      const want = firstDifferenceByDefinition(data, idx, b, t, k, s, opts.causalOffset, dropped, form);
      if (error) {
        // An index >= s in a row before the first difference: the RangeError of generateMask.
        const firstBad = Math.floor(idx.findIndex((j) => j >= s) / k);
        const diffRow = want === null ? Infinity : want.batch * t + want.query;
        if (idx.some((j) => j >= s) && firstBad <= diffRow) {
          assert.ok(got instanceof RangeError, `expected a RangeError, got ${JSON.stringify(got)}`);
          assert.match((got as Error).message, new RegExp(`^indices: value \\d+ at batch ${Math.floor(firstBad / t)}, query ${firstBad % t}, slot`));
          return;
        }
      }
      assert.deepEqual(got, want);
    }),
    { numRuns: 400 },
  );
});

test('verifyMask: bad arguments name what was expected', () => {
  const idx = { data: new Int32Array([0, 1]), shape: [1, 1, 2] };
  assert.throws(() => verifyMask({ data: new Float64Array(4) as unknown as Float32Array, shape: [1, 1, 4] }, idx, 4), /mask\.data: expected a Float32Array \(additive\), Uint8Array \(bool\) or Uint32Array \(bits\)/);
  assert.throws(() => verifyMask({ data: new Float32Array(5), shape: [1, 1, 5] }, idx, 4), /mask\.shape: expected \[1, 1, 4\]/);
  assert.throws(() => verifyMask({ data: new Uint32Array(1), shape: [1, 1, 1] }, idx, 4, { droppedValue: 0 }), /droppedValue: expected a non-zero number, got 0/);
  // Before: s = 2^32 + 64 wrapped to a bit row of 2 words, so a 2-word mask was checked as if it covered s.
  for (const s of [2 ** 31, 2 ** 32 + 64, 2 ** 53, 1e300]) {
    assert.throws(() => verifyMask({ data: new Uint32Array(2), shape: [1, 1, 2] }, idx, s), { name: 'RangeError', message: /^s: expected a positive integer <= 2147483647 \(key positions are int32\)/ });
  }
  const ok = new Float32Array([0, 0, DEFAULT_MASK_VALUE, DEFAULT_MASK_VALUE]);
  assert.equal(verifyMask({ data: ok, shape: [1, 1, 4] }, idx, 4), null);
  assert.deepEqual(verifyMask({ data: ok, shape: [1, 1, 4] }, idx, 4, { droppedValue: -Infinity }), { batch: 0, query: 0, key: 2, kept: false, got: DEFAULT_MASK_VALUE });
});
