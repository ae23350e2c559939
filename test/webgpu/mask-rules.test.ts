// The rule masks on the GPU (maskFromThreshold, causalMask, windowMask,
// combineMasks): every form, mode and option bit-identical to the CPU on
// random cases (ties at the threshold, -0, NaN scores, -Infinity values,
// k > s, rows that straddle bool words, s not a multiple of 4 or 32), the
// CPU's errors, and a GPU-resident pipeline top-k -> threshold mask.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { causalMask, combineMasks, maskFromThreshold, windowMask } from '../../src/mask/masks.js';
import { topk } from '../../src/topk/topk.js';
import type { MaskData, MaskForm, Tensor } from '../../src/tensor.js';
import { rng } from '../attention/fixtures.js';
import { GpuTensor } from '../../src/webgpu/index.js';
import { gpu } from './device.js';

const FORMS: MaskForm[] = ['additive', 'bool', 'bits'];

const same = (got: Tensor<MaskData>, want: Tensor<MaskData>, label: string) => {
  assert.deepEqual(got.shape, want.shape, `${label}: shape`);
  assert.equal(got.data.constructor, want.data.constructor, `${label}: type`);
  const g = Buffer.from(got.data.buffer, got.data.byteOffset, got.data.byteLength), w = Buffer.from(want.data.buffer, want.data.byteOffset, want.data.byteLength);
  if (!g.equals(w)) {
    const at = g.findIndex((x, i) => x !== w[i]);
    assert.fail(`${label}: not bit-identical (first byte ${at} of ${g.length}: got ${g[at]}, want ${w[at]})`);
  }
};

const errorOf = (run: () => unknown): Error => {
  try {
    run();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
};

/**
 * Scores from few values (ties), with -0 and NaN, and k values per row: the
 * CPU top-k values of the scores (NaN, ranked lowest, made -Infinity), or
 * (arbitrary) values drawn from the same pool, whose threshold may have k
 * or more scores above it (the cut among greater keys).
 */
function thresholdCase(b: number, t: number, s: number, k: number, seed: number, arbitrary = false) {
  const next = rng(seed);
  const pool = [0, -0, 1, 1, 2, -1, 0.5, NaN, -Infinity, 3];
  const pick = () => pool[Math.floor(next() * pool.length)];
  const scores = { data: Float32Array.from({ length: b * t * s }, pick), shape: [b, t, s] };
  const values = arbitrary ? { data: Float32Array.from({ length: b * t * k }, pick), shape: [b, t, k] } : topk(scores, k, { nan: 'lowest' }).values;
  for (let i = 0; i < values.data.length; i++) if (Number.isNaN(values.data[i])) values.data[i] = -Infinity;
  return { scores, values };
}

test('maskFromThreshold: both modes, every form and row range, bit-identical to the CPU', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 40 }),
      fc.constantFrom(...FORMS), fc.constantFrom('exact' as const, 'raw' as const), fc.boolean(), fc.boolean(), fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      async (b, t, s, k, form, mode, ranged, arbitrary, seed) => {
        const { scores, values } = thresholdCase(b, t, s, k, seed, arbitrary);
        const rows: [number, number] | undefined = ranged ? [Math.min(1, b * t - 1), b * t] : undefined;
        const o = { form, mode, ...(rows ? { rows } : {}) };
        same(await gpu.maskFromThreshold(scores, values, o), maskFromThreshold(scores, values, o), `b=${b} t=${t} s=${s} k=${k} ${form} ${mode}${arbitrary ? ' arbitrary values' : ''}`);
      },
    ),
    { numRuns: 40 },
  );
});

test('maskFromThreshold with many keys: ties cut inside a segment of the row, more keys than threads', async () => {
  for (const [s, k] of [[5000, 700], [70001, 300], [3000, 2999]] as const) {
    for (const arbitrary of [false, true]) {
      const { scores, values } = thresholdCase(1, 2, s, k, s, arbitrary);
      for (const form of FORMS) {
        same(await gpu.maskFromThreshold(scores, values, { form }), maskFromThreshold(scores, values, { form }), `s=${s} k=${k} ${form}${arbitrary ? ' arbitrary values' : ''}`);
      }
    }
  }
});

test('causalMask and windowMask: offsets, windows, seqLens and ragged batches, every form and row range, bit-identical', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 200 }), fc.integer({ min: -8, max: 210 }),
      fc.constantFrom(...FORMS), fc.boolean(), fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      async (b, t, s, offset, form, ranged, seed) => {
        const rows: [number, number] | undefined = ranged ? [Math.min(1, b * t - 1), b * t] : undefined;
        const o = rows ? { rows } : {};
        const label = `b=${b} t=${t} s=${s} offset=${offset} ${form}`;
        same(await gpu.causalMask(b, t, s, offset, form, o), causalMask(b, t, s, offset, form, o), `causal ${label}`);
        const next = rng(seed);
        const start = Int32Array.from({ length: b * t }, () => Math.floor(next() * s));
        const end = start.map((x) => Math.min(s, x + Math.floor(next() * s)));
        const seqLens = Int32Array.from({ length: b }, () => t + Math.floor(next() * (s - t + 1)));
        const keyForms = [{ window: { start, end } }, { window: { start, end }, causalOffset: offset }, ...(s >= t ? [{ seqLens }] : [])];
        for (const keys of keyForms) {
          same(await gpu.windowMask(b, t, s, keys, form, o), windowMask(b, t, s, keys, form, o), `window ${label} ${Object.keys(keys).join('+')}`);
        }
      },
    ),
    { numRuns: 25 },
  );
  const ragged = { cuSeqlensQ: Int32Array.from([0, 2, 3, 7]), cuSeqlensK: Int32Array.from([0, 40, 41, 130]) };
  for (const form of FORMS) {
    same(await gpu.windowMask(1, 7, 89, { ragged }, form), windowMask(1, 7, 89, { ragged }, form), `ragged ${form}`);
  }
});

test('combineMasks: every form, rank 2 and 3, row ranges, -0 kept in additive, bit-identical', async () => {
  const next = rng(5);
  for (const form of FORMS) {
    for (const [b, t, s] of [[1, 1, 1], [2, 3, 37], [1, 5, 130]]) {
      const a = causalMask(b, t, s, Math.floor(s / 2), form), w = windowMask(b, t, s, { window: { start: Int32Array.from({ length: b * t }, () => Math.floor(next() * s)), end: Int32Array.from({ length: b * t }, () => s) } }, form);
      if (form === 'additive') (a.data as Float32Array)[0] = -0;
      if (form === 'bool') (a.data as Uint8Array)[0] = 7;
      same(await gpu.combineMasks(a, w), combineMasks(a, w), `${form} [${b}, ${t}, ${s}]`);
      const rows: [number, number] = [Math.min(1, b * t - 1), b * t];
      same(await gpu.combineMasks(a, w, { rows }), combineMasks(a, w, { rows }), `${form} rows`);
      const flat = (m: Tensor<MaskData>) => ({ data: m.data, shape: [b * t, m.shape[2]] });
      same(await gpu.combineMasks(flat(a), flat(w)), combineMasks(flat(a), flat(w)), `${form} rank 2`);
    }
  }
});

test('the rule masks give the CPU errors, and take GPU-resident inputs: top-k values -> threshold mask on the GPU', async () => {
  const { scores, values } = thresholdCase(1, 3, 50, 5, 9);
  const bad = { data: values.data.slice(), shape: values.shape };
  bad.data[7] = NaN;
  const cpu = errorOf(() => maskFromThreshold(scores, bad));
  await assert.rejects(gpu.maskFromThreshold(scores, bad), (e: Error) => e instanceof RangeError && e.message === cpu.message);
  const cpuForm = errorOf(() => causalMask(1, 2, 3, 0, 'dense' as never));
  await assert.rejects(gpu.causalMask(1, 2, 3, 0, 'dense' as never), (e: Error) => e.message === cpuForm.message);
  const a = causalMask(1, 2, 8, 0, 'bool'), c = causalMask(1, 2, 9, 0, 'bool');
  const cpuShape = errorOf(() => combineMasks(a, c));
  await assert.rejects(gpu.combineMasks(a, c), (e: Error) => e.message === cpuShape.message);
  // A pipeline on the GPU: scores -> top-k -> threshold mask, only the mask read back.
  const onGpu = gpu.upload(scores);
  const top = await gpu.topk(onGpu, 5, { resident: true, nan: 'lowest' });
  const mask = await gpu.maskFromThreshold(onGpu, top.values, { form: 'bits', resident: true });
  assert.ok(mask instanceof GpuTensor);
  const cpuTop = topk(scores, 5, { nan: 'lowest' });
  same((await gpu.read(mask)) as Tensor<MaskData>, maskFromThreshold(scores, cpuTop.values, { form: 'bits' }), 'resident pipeline');
});
