import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateMask, type GenerateMaskOptions } from '../../src/mask/masks.js';
import type { MaskData, Tensor } from '../../src/tensor.js';
import { rng } from '../../src/cli/demo-data.js';
import { gpu } from './device.js';

const FORMS = ['additive', 'bool', 'bits'] as const;

/** Indices [b, t, k] into s keys with padding (-1, -7), duplicates and (optionally) values >= s. */
function indices(b: number, t: number, k: number, s: number, seed: number, outOfRange = 0): Tensor<Int32Array> {
  const next = rng(seed);
  const data = new Int32Array(b * t * k);
  for (let i = 0; i < data.length; i++) {
    const u = next();
    data[i] = u < 0.1 ? -1 : u < 0.12 ? -7 : u < 0.12 + outOfRange ? s + Math.floor(next() * 3) : u < 0.3 && i > 0 ? data[i - 1] : Math.floor(next() * s);
  }
  return { data, shape: [b, t, k] };
}

const same = (got: Tensor<MaskData>, want: Tensor<MaskData>, label: string) => {
  assert.deepEqual(got.shape, want.shape, `${label}: shape`);
  assert.equal(got.data.constructor, want.data.constructor, `${label}: type`);
  assert.ok(Buffer.from(got.data.buffer, got.data.byteOffset, got.data.byteLength).equals(Buffer.from(want.data.buffer, want.data.byteOffset, want.data.byteLength)), `${label}: not bit-identical`);
};

// Shapes: k > s, s not a multiple of 4 or 32, rows that straddle words (bool), and s over one 65536-key chunk.
const grid: [number, number, number, number][] = [
  [1, 1, 1, 1],
  [1, 3, 9, 5],
  [2, 3, 7, 37],
  [1, 4, 33, 130],
  [2, 2, 64, 1001],
  [1, 2, 300, 70001],
];

for (const [b, t, k, s] of grid) {
  test(`idx[${b},${t},${k}] s=${s}: every form, strategy, causal offset and row range is bit-identical to the CPU`, async () => {
    const idx = indices(b, t, k, s, b * 100 + t * 10 + k + s, 0.05);
    const cases: GenerateMaskOptions[] = [
      { outOfRange: 'skip' },
      { outOfRange: 'skip', causalOffset: s - t },
      { outOfRange: 'skip', causalOffset: -1 },
      { outOfRange: 'skip', causalOffset: 2 ** 40 },
      { outOfRange: 'skip', rows: [Math.min(1, b * t - 1), b * t] },
    ];
    for (const form of FORMS) {
      for (const opts of cases) {
        for (const strategy of s > 5000 ? (['scatter'] as const) : (['scatter', 'broadcast'] as const)) {
          const o = { ...opts, form, strategy };
          same(await gpu.generateMask(idx, s, o), generateMask(idx, s, o), `${JSON.stringify(o)}`);
        }
      }
    }
  });
}

test('an index >= s is the CPU RangeError, and a caller out is left untouched', async () => {
  const idx = indices(2, 3, 5, 20, 4);
  idx.data[17] = 20;
  const cpu = (() => { try { generateMask(idx, 20); } catch (e) { return e as Error; } })()!;
  const out = new Float32Array(6 * 20).fill(42);
  await assert.rejects(gpu.generateMask(idx, 20, { out }), (e: Error) => e instanceof RangeError && e.message === cpu.message);
  assert.ok(out.every((x) => x === 42), 'out untouched');
  // With valid indices the caller's out receives the mask.
  idx.data[17] = 19;
  const got = await gpu.generateMask(idx, 20, { out });
  assert.equal(got.data, out);
  same(got, generateMask(idx, 20), 'into out');
});

test('bad arguments give the CPU errors', async () => {
  const idx = indices(1, 2, 3, 10, 5);
  const bad: [unknown, number, GenerateMaskOptions][] = [
    [{ data: new Float32Array(6), shape: [1, 2, 3] }, 10, {}],
    [{ data: new Int32Array(5), shape: [1, 2, 3] }, 10, {}],
    [idx, 0, {}],
    [idx, 10, { form: 'dense' as never }],
    [idx, 10, { rows: [1, 5] }],
    [idx, 10, { out: new Float32Array(3) }],
    [idx, 10, { maxBytes: 8 }],
  ];
  for (const [i, s, o] of bad) {
    let cpu: Error | undefined;
    try { generateMask(i as Tensor<Int32Array>, s, o); } catch (e) { cpu = e as Error; }
    assert.ok(cpu, `the CPU refuses ${JSON.stringify(o)}`);
    await assert.rejects(gpu.generateMask(i as Tensor<Int32Array>, s, o), (e: Error) => e.constructor === cpu!.constructor && e.message === cpu!.message);
  }
});
