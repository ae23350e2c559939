import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { generateMask, DEFAULT_MASK_VALUE, type MaskForm } from '../../src/index.js';
import { keptByIndices, encode, assertSameBits, indexCase } from './definition.js';

const forms: MaskForm[] = ['additive', 'bool', 'bits'];

test('every strategy and form equals the broadcast definition (skip, padding, duplicates, causal, rows)', () => {
  fc.assert(
    fc.property(indexCase, ({ b, t, k, s, indices, causalOffset, rows, form, strategy }) => {
      const data = Int32Array.from(indices);
      const [start, end] = rows ?? [0, b * t];
      const mask = generateMask({ data, shape: [b, t, k] }, s, { form, strategy, outOfRange: 'skip', causalOffset, rows });
      const width = form === 'bits' ? Math.ceil(s / 32) : s;
      assert.deepEqual(mask.shape, rows ? [end - start, width] : [b, t, width]);
      assertSameBits(mask.data, encode(keptByIndices(data, t, k, s, start, end, causalOffset), form, s), `${strategy} ${form} idx[${b},${t},${k}] s=${s}`);
    }),
    { numRuns: 300 },
  );
});

test('scatter and broadcast are bit-identical, and with outOfRange error when every index < s', () => {
  fc.assert(
    fc.property(indexCase, ({ b, t, k, s, indices, causalOffset, rows, form }) => {
      const data = Int32Array.from(indices, (j) => (j >= s ? -1 : j));
      const opts = { form, causalOffset, rows };
      const scatter = generateMask({ data, shape: [b, t, k] }, s, opts);
      const broadcast = generateMask({ data, shape: [b, t, k] }, s, { ...opts, strategy: 'broadcast' });
      assertSameBits(scatter.data, broadcast.data, `idx[${b},${t},${k}] s=${s} ${form}`);
    }),
    { numRuns: 200 },
  );
});

test('idx[1,2,3] s=5: padding keeps nothing, -1 never wraps to key s-1', () => {
  const m = generateMask({ data: new Int32Array([-1, 2, 2, -1, -1, -1]), shape: [1, 2, 3] }, 5, { form: 'bool' });
  assert.deepEqual([...m.data], [0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
  const a = generateMask({ data: new Int32Array([4, -1, 0, 1, 1, 1]), shape: [1, 2, 3] }, 5);
  const D = DEFAULT_MASK_VALUE;
  assert.deepEqual([...a.data], [0, D, D, D, 0, D, 0, D, D, D]);
  assert.ok(!a.data.includes(-Infinity));
});

test('idx[1,1,2] s=33: bits past s are 0; causal offset fused', () => {
  const m = generateMask({ data: new Int32Array([32, 0]), shape: [1, 1, 2] }, 33, { form: 'bits' });
  assert.deepEqual([...m.data], [1, 1]);
  const c = generateMask({ data: new Int32Array([32, 0, 5, 32]), shape: [1, 2, 2] }, 33, { form: 'bits', causalOffset: 4 });
  assert.deepEqual([...c.data], [1, 0, 32, 0]);
});

test('idx[2,3,4] s=10: an index >= s names batch, query, slot, value and s, and out is untouched', () => {
  const data = new Int32Array(24).fill(1);
  data[1 * 12 + 2 * 4 + 3] = 10;
  for (const form of forms) {
    const out = form === 'additive' ? new Float32Array(60).fill(7) : form === 'bool' ? new Uint8Array(60).fill(7) : new Uint32Array(6).fill(7);
    assert.throws(() => generateMask({ data, shape: [2, 3, 4] }, 10, { form, out }), {
      name: 'RangeError',
      message: /indices: value 10 at batch 1, query 2, slot 3 must be < s = 10/,
    });
    assert.ok(out.every((x: number) => x === 7), `${form} out untouched`);
  }
  // Outside the rows asked for, the bad index is not read.
  assert.equal(generateMask({ data, shape: [2, 3, 4] }, 10, { rows: [0, 5] }).shape[0], 5);
  assert.throws(() => generateMask({ data, shape: [2, 3, 4] }, 10, { rows: [5, 6] }), /batch 1, query 2, slot 3/);
});

test('bad arguments give TypeError or RangeError naming the argument, expected and actual', () => {
  const indices = { data: new Int32Array(6), shape: [1, 2, 3] };
  assert.throws(() => generateMask({ data: new Float32Array(6), shape: [1, 2, 3] } as never, 5), { name: 'TypeError', message: /indices.data: expected a Int32Array, got Float32Array/ });
  assert.throws(() => generateMask({ data: new Int32Array(6), shape: [2, 3] }, 5), { name: 'RangeError', message: /indices.shape: expected \[b, t, k\]/ });
  assert.throws(() => generateMask(indices, 0), { name: 'RangeError', message: /s: expected a positive integer <= 2147483647 \(key positions are int32\), got number 0/ });
  assert.throws(() => generateMask(indices, 2.5), /s: expected a positive integer/);
  assert.throws(() => generateMask(indices, 5, { form: 'dense' as never }), /form: expected one of 'additive', 'bool', 'bits', got string "dense"/);
  assert.throws(() => generateMask(indices, 5, { strategy: 'gather' as never }), /strategy: expected one of 'scatter', 'broadcast'/);
  assert.throws(() => generateMask(indices, 5, { outOfRange: 'wrap' as never }), /outOfRange: expected one of 'error', 'skip'/);
  assert.throws(() => generateMask(indices, 5, { causalOffset: 0.5 }), /causalOffset: expected an integer, got number 0.5/);
  assert.throws(() => generateMask(indices, 5, { rows: [1, 3] }), /rows: expected \[start, end\) with 0 <= start <= end <= 2, got \[1, 3\]/);
  assert.throws(() => generateMask(indices, 5, { out: new Float32Array(9) }), { name: 'RangeError', message: /out: expected a Float32Array of length 10, got length 9/ });
  assert.throws(() => generateMask(indices, 5, { form: 'bits', out: new Float32Array(2) }), { name: 'TypeError', message: /out: expected a Uint32Array of length 2, got Float32Array/ });
});

test('the memory guard throws before allocating and names the cheaper forms', () => {
  const indices = { data: new Int32Array(1024 * 4), shape: [1, 1024, 4] };
  assert.throws(() => generateMask(indices, 131072, { maxBytes: 1e6 }), {
    name: 'RangeError',
    message: /needs 512\.0 MiB \(536870912 bytes\), over maxBytes = 976\.6 KiB; use form 'bits' \(16777216 bytes\), stream query blocks with rows/,
  });
  assert.equal(generateMask(indices, 131072, { form: 'bits', maxBytes: 17e6 }).data.length, 1024 * 4096);
  // A caller's out is not an allocation: no guard.
  assert.equal(generateMask(indices, 64, { maxBytes: 1, out: new Float32Array(1024 * 64) }).data.length, 1024 * 64);
});

// Before: s past 2^32 wrapped the bit form's (s + 31) >>> 5 (idx[3,2,1] s=2^32: 0 words a row; s=2^53
// with strategy 'broadcast': the key loop ran on over a zero-length mask), and 1e300 passed as an integer.
test('s past 2^31 - 1 (2^31, 2^32 - 1, 2^32, 2^32 + 64, 2^53, 1e300) is a RangeError naming s, every form and strategy, out untouched', () => {
  const indices = { data: Int32Array.from([2, 0, 1, 3, 2, 5]), shape: [3, 2, 1] };
  for (const s of [2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 64, 2 ** 53, 1e300, 2 ** 53 + 2]) {
    for (const form of forms) {
      for (const strategy of ['scatter', 'broadcast'] as const) {
        for (const outOfRange of ['error', 'skip'] as const) {
          const out = new Uint32Array(6).fill(7);
          assert.throws(() => generateMask(indices, s, { form, strategy, outOfRange, causalOffset: 4, ...(form === 'bits' ? { out } : {}) }), {
            name: 'RangeError',
            message: new RegExp(`^s: expected a positive integer <= 2147483647 \\(key positions are int32\\), got number ${String(s).replace('+', '\\+')}$`),
          });
          assert.ok(out.every((x) => x === 7), `s=${s} ${form} ${strategy}: out untouched`);
        }
      }
    }
  }
});

test('s = 2^31 - 1: the memory guard counts ceil(s/32) words a bit row, and an allocation the engine refuses is named', () => {
  const s = 2 ** 31 - 1;
  const indices = { data: Int32Array.from([s - 1, 0]), shape: [2, 1, 1] };
  assert.throws(() => generateMask(indices, s, { form: 'bits', maxBytes: 1e6 }), {
    name: 'RangeError',
    message: /a bits mask of 2 rows x 2147483647 keys needs 512\.0 MiB \(536870912 bytes\), over maxBytes/,
  });
  assert.throws(() => generateMask(indices, s, { form: 'bool', maxBytes: 1e6 }), /needs 4\.00 GiB \(4294967294 bytes\)/);
  // With the guard raised past what a typed array can hold: a RangeError naming the mask, not the engine's bare one.
  const big = { data: new Int32Array(4), shape: [4, 1, 1] };
  assert.throws(() => generateMask(big, s, { maxBytes: 2 ** 40 }), {
    name: 'RangeError',
    message: /^a additive mask of 4 rows x 2147483647 keys: 8589934588 Float32Array elements \(34359738352 bytes\) could not be allocated \(.*\); use form 'bits'/,
  });
});

test('rows [a, a) give an empty block; out is filled in place and returned', () => {
  const indices = { data: new Int32Array([0, 1, 2, 3]), shape: [1, 4, 1] };
  assert.deepEqual(generateMask(indices, 4, { rows: [2, 2] }).shape, [0, 4]);
  const out = new Uint8Array(8).fill(9);
  const m = generateMask(indices, 4, { form: 'bool', rows: [1, 3], out });
  assert.equal(m.data, out);
  assert.deepEqual([...out], [0, 1, 0, 0, 0, 0, 1, 0]);
});

test('the first index >= s in row order is the one named, wherever it sits in the row', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 40 }), fc.nat(), fc.nat(), (t, k, s, p1, p2) => {
      const data = Int32Array.from({ length: 2 * t * k }, (_, i) => (i * 7) % s);
      const first = p1 % data.length, second = first + (p2 % (data.length - first));
      data[second] = s + 5;
      data[first] = s;
      const r = Math.floor(first / k);
      const out = new Float32Array(2 * t * s).fill(3);
      assert.throws(() => generateMask({ data, shape: [2, t, k] }, s, { out }), {
        name: 'RangeError',
        message: new RegExp(`value ${s} at batch ${Math.floor(r / t)}, query ${r % t}, slot ${first - r * k} must be < s = ${s}`),
      });
      assert.ok(out.every((x) => x === 3));
    }),
    { numRuns: 200 },
  );
});
