// Seeded inputs and the index -> mask conversion the attention tests share.
import type { MaskForm, MaskData, Tensor } from '../../src/tensor.js';
import { DEFAULT_MASK_VALUE, wordsPerRow } from '../../src/tensor.js';
import { rng } from '../../src/cli/demo-data.js';

/** mulberry32 (the demo's seeded generator): every run sees the same data. */
export { rng };

export function randomFloats(shape: number[], seed: number, scale = 1): Tensor<Float32Array> {
  const next = rng(seed);
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = (next() * 2 - 1) * scale;
  return { data, shape };
}

/**
 * Random indices [t, hkv, k] into s keys. `invalid` is the chance of a slot
 * being -1 or >= s, `repeat` the chance of repeating an earlier slot.
 */
export function randomIndices(t: number, hkv: number, k: number, s: number, seed: number, invalid = 0, repeat = 0): Tensor<Int32Array> {
  const next = rng(seed);
  const data = new Int32Array(t * hkv * k);
  for (let row = 0; row < t * hkv; row++) {
    for (let i = 0; i < k; i++) {
      const at = row * k + i;
      const u = next();
      if (u < invalid) data[at] = next() < 0.5 ? -1 : s + Math.floor(next() * 3);
      else if (i > 0 && u < invalid + repeat) data[at] = data[row * k + Math.floor(next() * i)];
      else data[at] = Math.floor(next() * s);
    }
  }
  return { data, shape: [t, hkv, k] };
}

/** The mask [t, hkv, s] (bits: [t, hkv, ceil(s/32)]) keeping exactly the valid indices. */
export function maskOfIndices(indices: Tensor<Int32Array>, s: number, form: MaskForm): Tensor<MaskData> {
  const [t, hkv, k] = indices.shape;
  const rows = t * hkv;
  const width = form === 'bits' ? wordsPerRow(s) : s;
  const data = form === 'additive' ? new Float32Array(rows * s).fill(DEFAULT_MASK_VALUE) : form === 'bool' ? new Uint8Array(rows * s) : new Uint32Array(rows * width);
  for (let row = 0; row < rows; row++) {
    for (let i = 0; i < k; i++) {
      const j = indices.data[row * k + i];
      if (j < 0 || j >= s) continue;
      if (form === 'additive') data[row * s + j] = 0;
      else if (form === 'bool') data[row * s + j] = 1;
      else data[row * width + (j >>> 5)] |= 1 << (j & 31);
    }
  }
  return { data, shape: [t, hkv, width] };
}
