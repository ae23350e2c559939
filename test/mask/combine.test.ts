import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { causalMask, combineMasks, generateMask, windowMask, DEFAULT_MASK_VALUE, type MaskForm } from '../../src/index.js';
import { encode, decode, assertSameBits } from './definition.js';

const forms: MaskForm[] = ['additive', 'bool', 'bits'];

test('causalMask keeps j <= ti + offset, every form and rows', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 100 }), fc.integer({ min: -8, max: 110 }), fc.constantFrom(...forms),
      (b, t, s, offset, form) => {
        const kept = Array.from({ length: b * t }, (_, r) => Array.from({ length: s }, (_, j) => j <= (r % t) + offset));
        assertSameBits(causalMask(b, t, s, offset, form).data, encode(kept, form, s), `causal[${b},${t},${s}] offset=${offset} ${form}`);
        const rows: [number, number] = [Math.floor((b * t) / 3), b * t];
        const block = causalMask(b, t, s, offset, form, { rows });
        assertSameBits(block.data, encode(kept.slice(rows[0]), form, s), 'rows');
        assert.equal(block.shape[0], rows[1] - rows[0]);
      },
    ),
    { numRuns: 200 },
  );
});

test('combineMasks keeps a key iff both keep it; additive stays exactly 0 or DEFAULT_MASK_VALUE', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 70 }), fc.constantFrom(...forms), fc.integer(), fc.integer(),
      (rows, s, form, seedA, seedB) => {
        const pick = (seed: number) => Array.from({ length: rows }, (_, r) => Array.from({ length: s }, (_, j) => ((seed ^ (r * 131 + j * 7919)) * 2654435761) % 5 > 1));
        const a = pick(seedA), b = pick(seedB);
        const shape = [1, rows, form === 'bits' ? Math.ceil(s / 32) : s];
        const got = combineMasks({ data: encode(a, form, s), shape }, { data: encode(b, form, s), shape });
        assertSameBits(got.data, encode(a.map((row, r) => row.map((x, j) => x && b[r][j])), form, s), `combine[1,${rows},${s}] ${form}`);
        assert.deepEqual(got.shape, shape);
      },
    ),
    { numRuns: 200 },
  );
});

test('combining two dropped additive keys gives DEFAULT_MASK_VALUE, never -Infinity', () => {
  const D = DEFAULT_MASK_VALUE;
  const a = { data: new Float32Array([D, D, 0, 0]), shape: [1, 1, 4] };
  const b = { data: new Float32Array([D, 0, D, 0]), shape: [1, 1, 4] };
  assert.equal(Math.fround(D + D), -Infinity); // why masks are combined, never added
  assert.deepEqual([...combineMasks(a, b).data], [D, D, D, 0]);
  const indices = { data: new Int32Array([3, 0, 1, 2]), shape: [1, 2, 2] };
  const m = combineMasks(generateMask(indices, 4), causalMask(1, 2, 4, 2));
  assert.deepEqual(decode(m.data, 4), [[true, false, false, false], [false, true, true, false]]);
  assert.ok(!m.data.includes(-Infinity));
});

test('combineMasks and causalMask reject bad inputs naming the argument', () => {
  const a = { data: new Uint8Array(8), shape: [1, 2, 4] };
  assert.throws(() => combineMasks(a, { data: new Float32Array(8), shape: [1, 2, 4] }), { name: 'TypeError', message: /b.data: expected a Uint8Array, got Float32Array/ });
  assert.throws(() => combineMasks(a, { data: new Uint8Array(8), shape: [1, 4, 2] }), /b.shape: expected \[1, 2, 4\] \(the shape of a\), got \[1, 4, 2\]/);
  assert.throws(() => combineMasks({ data: new Int32Array(8), shape: [1, 2, 4] } as never, a), { name: 'TypeError', message: /a.data: expected a Float32Array \(additive\)/ });
  const out = new Uint8Array(8).fill(5);
  assert.throws(() => combineMasks(a, { data: new Uint8Array(6), shape: [1, 2, 3] }, { out }), RangeError);
  assert.ok(out.every((x) => x === 5));
  assert.deepEqual(combineMasks({ data: new Uint8Array([1, 1, 0, 1]), shape: [2, 2] }, { data: new Uint8Array([1, 0, 1, 1]), shape: [2, 2] }, { rows: [1, 2] }).data, new Uint8Array([0, 1]));
  assert.throws(() => causalMask(1, 0, 4, 0), /t: expected a positive integer, got number 0/);
  assert.throws(() => causalMask(1, 2, 4, 1.5), /offset: expected an integer, got number 1.5/);
  assert.throws(() => causalMask(1, 2, 4, 0, 'dense' as never), /form: expected one of/);
  assert.throws(() => causalMask(1, 1024, 131072, 0, 'additive', { maxBytes: 1024 }), /needs 512\.0 MiB/);
});

test('causalMask and windowMask: s past 2^31 - 1, rows b * t past 2^53 (past 2^31 - 1 with per-row ranges) are RangeErrors naming them, every form', () => {
  for (const form of forms) {
    for (const s of [2 ** 31, 2 ** 32, 2 ** 32 + 64, 2 ** 53, 1e300]) {
      assert.throws(() => causalMask(1, 2, s, 0, form), { name: 'RangeError', message: /^s: expected a positive integer <= 2147483647 \(key positions are int32\)/ });
      assert.throws(() => causalMask(1, 2, s, 2 ** 40, form, { rows: [0, 1] }), /^RangeError: s: expected a positive integer <= 2147483647/);
      assert.throws(() => windowMask(1, 1, s, {}, form), /^RangeError: s: expected a positive integer <= 2147483647/);
      assert.throws(() => windowMask(1, 1, s, { seqLens: Int32Array.of(1) }, form), /^RangeError: s: expected a positive integer <= 2147483647/);
    }
    assert.throws(() => causalMask(2 ** 30, 2 ** 30, 4, 0, form, { rows: [0, 1] }), { name: 'RangeError', message: /^b \* t: the rows \(numbered bi \* t \+ ti\) must be a safe integer, got 1073741824 \* 1073741824$/ });
    assert.throws(() => windowMask(1e300, 1, 4, {}, form), /^RangeError: b \* t: the rows .* must be a safe integer, got 1e\+300 \* 1$/);
  }
  // Per-row ranges (one int32 range a row) for 2^40 rows: named, where the engine's bare allocation error came before.
  assert.throws(() => windowMask(2 ** 20, 2 ** 20, 8, { window: { start: new Int32Array(1), end: new Int32Array(1) } }, 'bits', { rows: [0, 1] }), {
    name: 'RangeError',
    message: /^b \* t: a window, seqLens or ragged batch gives each row its own key range; expected at most 2147483647 rows, got 1048576 \* 1048576$/,
  });
  assert.throws(() => windowMask(1, 2 ** 40, 8, { seqLens: Int32Array.of(8) }, 'bits', { rows: [0, 1] }), /^RangeError: b \* t: a window, seqLens or ragged batch/);
  // Up to the bound, rows far apart are exact: row 2^40 + 3 of a causal block.
  const t = 2 ** 40 + 7;
  const row = causalMask(1, t, 64, -(2 ** 40), 'bool', { rows: [2 ** 40 + 3, 2 ** 40 + 4] });
  assert.deepEqual([...row.data].map((x, j) => (x ? j : -1)).filter((j) => j >= 0), [0, 1, 2, 3]);
});
