// RMSNorm as DeepSeek-V3.2 computes it (src/model/norm.ts): against a
// float64 reference, in place equal to out of place, strided rows equal to
// contiguous ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { rmsNormRows } from '../../src/model/norm.js';
import { rng } from '../../src/cli/demo-data.js';

function floats(length: number, seed: number, scale = 1): Float32Array {
  const next = rng(seed);
  return Float32Array.from({ length }, () => (next() * 2 - 1) * scale);
}

test('rmsNormRows: weight * x / sqrt(mean(x^2) + eps) within float32 rounding of float64', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 300 }), fc.constantFrom(1e-6, 1e-5, 0.1), fc.constantFrom(1e-3, 1, 1e3), fc.integer(), (n, width, eps, scale, seed) => {
      const x = floats(n * width, seed, scale), weight = floats(width, seed + 1, 2), out = new Float32Array(n * width);
      rmsNormRows({ x, from: 0, stride: width, width, weight, eps, out, outFrom: 0, outStride: width }, 0, n);
      for (let r = 0; r < n; r++) {
        let sum = 0;
        for (let e = 0; e < width; e++) sum += x[r * width + e] ** 2;
        const inv = 1 / Math.sqrt(sum / width + eps);
        for (let e = 0; e < width; e++) {
          const want = weight[e] * x[r * width + e] * inv;
          assert.ok(Math.abs(out[r * width + e] - want) <= 4e-7 * Math.abs(want) + 1e-30, `row ${r} dim ${e}: ${out[r * width + e]} vs ${want}`);
        }
      }
    }),
  );
});

test('rmsNormRows: in place (the latent part of a kv row) equals out of place, and touches nothing past width', () => {
  const n = 3, width = 16, stride = 24;
  const rows = floats(n * stride, 9), weight = floats(width, 10);
  const out = new Float32Array(n * width);
  rmsNormRows({ x: rows, from: 0, stride, width, weight, eps: 1e-6, out, outFrom: 0, outStride: width }, 0, n);
  const inPlace = rows.slice();
  rmsNormRows({ x: inPlace, from: 0, stride, width, weight, eps: 1e-6, out: inPlace, outFrom: 0, outStride: stride }, 0, n);
  for (let r = 0; r < n; r++) {
    assert.deepEqual(inPlace.subarray(r * stride, r * stride + width), out.subarray(r * width, (r + 1) * width));
    assert.deepEqual(inPlace.subarray(r * stride + width, (r + 1) * stride), rows.subarray(r * stride + width, (r + 1) * stride));
  }
  // Only the rows asked for.
  const part = rows.slice();
  rmsNormRows({ x: part, from: 0, stride, width, weight, eps: 1e-6, out: part, outFrom: 0, outStride: stride }, 1, 2);
  assert.deepEqual(part.subarray(0, stride), rows.subarray(0, stride));
  assert.deepEqual(part.subarray(2 * stride), rows.subarray(2 * stride));
});
