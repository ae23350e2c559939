import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fillRange, widePattern, wideView } from '../../src/mask/fill.js';
import { DEFAULT_MASK_VALUE, type MaskData } from '../../src/tensor.js';
import { generateMask, causalMask } from '../../src/index.js';
import { assertSameBits, indexCase } from './definition.js';

const ctors = [Float32Array, Uint8Array, Uint32Array] as const;
const valuesOf = { Float32Array: [DEFAULT_MASK_VALUE, 0], Uint8Array: [0, 1], Uint32Array: [0, 0xffffffff, 0x80000001] } as Record<string, number[]>;

test('fillRange equals fill() on shared and plain memory, any byte offset and range', () => {
  fc.assert(
    fc.property(fc.constantFrom(...ctors), fc.boolean(), fc.integer({ min: 0, max: 9 }), fc.integer({ min: 0, max: 80 }), fc.nat(), fc.nat(), fc.nat(),
      (ctor, shared, offset, length, x, y, pick) => {
        const bytes = (offset + length + 2) * ctor.BYTES_PER_ELEMENT;
        const buffer = shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);
        const out = new ctor(buffer as ArrayBuffer, offset * ctor.BYTES_PER_ELEMENT, length) as MaskData;
        const want = new ctor(length) as MaskData;
        for (let i = 0; i < length; i++) out[i] = want[i] = 7;
        const start = length ? x % (length + 1) : 0, end = start + (length ? y % (length - start + 1) : 0);
        const values = valuesOf[ctor.name];
        const value = values[pick % values.length];
        fillRange(out, wideView(out), start, end, value, widePattern(ctor, value));
        want.fill(value, start, end);
        assertSameBits(out, want, `${ctor.name} shared=${shared} offset=${offset} [${start}, ${end})`);
        // Nothing outside the array was touched.
        const all = new Uint8Array(buffer);
        for (let i = 0; i < offset * ctor.BYTES_PER_ELEMENT; i++) assert.equal(all[i], 0);
        for (let i = (offset + length) * ctor.BYTES_PER_ELEMENT; i < bytes; i++) assert.equal(all[i], 0);
      }),
    { numRuns: 500 },
  );
});

test('masks written into shared out buffers at odd offsets equal the plain ones', () => {
  fc.assert(
    fc.property(indexCase, fc.integer({ min: 1, max: 7 }), ({ b, t, k, s, indices, causalOffset, rows, form }, offset) => {
      const data = Int32Array.from(indices);
      const want = generateMask({ data, shape: [b, t, k] }, s, { form, causalOffset, rows, outOfRange: 'skip' });
      const ctor = want.data.constructor as typeof Float32Array;
      const out = new ctor(new SharedArrayBuffer((want.data.length + offset) * ctor.BYTES_PER_ELEMENT), offset * ctor.BYTES_PER_ELEMENT, want.data.length) as unknown as MaskData;
      generateMask({ data, shape: [b, t, k] }, s, { form, causalOffset, rows, outOfRange: 'skip', out });
      assertSameBits(out, want.data, `shared out, offset ${offset}`);
      const c = causalMask(b, t, s, causalOffset ?? 0, form, { rows });
      const cOut = new ctor(new SharedArrayBuffer((c.data.length + offset) * ctor.BYTES_PER_ELEMENT), offset * ctor.BYTES_PER_ELEMENT, c.data.length) as unknown as MaskData;
      causalMask(b, t, s, causalOffset ?? 0, form, { rows, out: cOut });
      assertSameBits(cOut, c.data, `shared causal out, offset ${offset}`);
    }),
    { numRuns: 200 },
  );
});
