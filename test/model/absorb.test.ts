// MLA's absorbed wkv_b (src/model/absorb.ts) over float32, bf16 and FP8
// weights whose heads straddle 128 x 128 scale blocks: against the
// weight's values (dequantizeWeight, bf16-rounded for FP8, as
// weight_dequant gives them) in float64, and any split of the heads
// bit-identical to one pass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { absorbQueryRows, valueUpRows } from '../../src/model/absorb.js';
import { bf16Bits, bf16Value, dequantizeWeight, quantizeWeightFp8, toBf16, type Weight } from '../../src/weights/weight.js';
import { rng } from '../../src/cli/demo-data.js';

function floats(length: number, seed: number, scale = 1): Float32Array {
  const next = rng(seed);
  return Float32Array.from({ length }, () => (next() * 2 - 1) * scale);
}

function weightOf(format: Weight['format'], data: Float32Array, shape: [number, number]): Weight {
  if (format === 'float32') return { format, shape, data };
  if (format === 'bf16') return { format, shape, data: toBf16(data) };
  return quantizeWeightFp8({ data, shape });
}

/** The values the kernels read: bf16-rounded for FP8 (weight_dequant to bf16). */
function values(w: Weight): Float32Array {
  const v = dequantizeWeight(w);
  if (w.format === 'fp8') for (let i = 0; i < v.length; i++) v[i] = bf16Value(bf16Bits(v[i]));
  return v;
}

test('absorbQuery and valueUp: per head, q_nope @ W_k and latent @ W_v^T, q_pe carried, any format and block alignment', () => {
  fc.assert(
    fc.property(
      fc.constantFrom<Weight['format']>('float32', 'bf16', 'fp8'), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 1, max: 70 }), fc.integer({ min: 1, max: 70 }), fc.integer({ min: 1, max: 150 }), fc.integer({ min: 0, max: 4 }), fc.integer(),
      (format, n, heads, nope, v, kvRank, halfRope, seed) => {
        const rope = 2 * halfRope;
        const shape: [number, number] = [heads * (nope + v), kvRank];
        const w = weightOf(format, floats(shape[0] * kvRank, seed, 0.5), shape);
        const W = values(w);
        const common = { n, heads, nope, rope, v, kvRank, format: w.format, data: w.data, scale: w.format === 'fp8' ? w.scale : null };
        const q = floats(n * heads * (nope + rope), seed + 1);
        const qOut = new Float32Array(n * heads * (kvRank + rope)).fill(NaN);
        absorbQueryRows({ ...common, q, out: qOut }, 0, heads);
        const latent = floats(n * heads * kvRank, seed + 2);
        const o = new Float32Array(n * heads * v);
        valueUpRows({ ...common, latent, out: o }, 0, heads);
        for (let r = 0; r < n; r++) for (let h = 0; h < heads; h++) {
          const qh = (r * heads + h) * (nope + rope), oh = (r * heads + h) * (kvRank + rope);
          for (let c = 0; c < kvRank; c++) {
            let want = 0, mag = 0;
            for (let d = 0; d < nope; d++) {
              want += q[qh + d] * W[(h * (nope + v) + d) * kvRank + c];
              mag += Math.abs(q[qh + d] * W[(h * (nope + v) + d) * kvRank + c]);
            }
            assert.ok(Math.abs(qOut[oh + c] - want) <= 1e-6 * mag + 1e-30, `absorb row ${r} head ${h} c ${c}`);
          }
          for (let i = 0; i < rope; i++) assert.equal(qOut[oh + kvRank + i], q[qh + nope + i], 'q_pe carried');
          for (let j = 0; j < v; j++) {
            let want = 0, mag = 0;
            for (let c = 0; c < kvRank; c++) {
              const p = latent[(r * heads + h) * kvRank + c] * W[(h * (nope + v) + nope + j) * kvRank + c];
              want += p;
              mag += Math.abs(p);
            }
            assert.ok(Math.abs(o[(r * heads + h) * v + j] - want) <= 1e-6 * mag + 1e-30, `valueUp row ${r} head ${h} j ${j}`);
          }
        }
      },
    ),
    { numRuns: 60 },
  );
});

test('absorbQuery and valueUp: heads split [0, 1) + [1, 3) equal one pass bit for bit (heads 3, 270 rows over 3 row blocks)', () => {
  const heads = 3, nope = 40, v = 50, kvRank = 200, rope = 4, n = 2;
  const w = quantizeWeightFp8({ data: floats(heads * (nope + v) * kvRank, 3, 0.2), shape: [heads * (nope + v), kvRank] });
  const common = { n, heads, nope, rope, v, kvRank, format: w.format, data: w.data, scale: w.scale };
  const q = floats(n * heads * (nope + rope), 4), latent = floats(n * heads * kvRank, 5);
  const one = new Float32Array(n * heads * (kvRank + rope)), split = new Float32Array(one.length);
  absorbQueryRows({ ...common, q, out: one }, 0, heads);
  absorbQueryRows({ ...common, q, out: split }, 1, heads);
  absorbQueryRows({ ...common, q, out: split }, 0, 1);
  assert.deepEqual(split, one);
  const o1 = new Float32Array(n * heads * v), o2 = new Float32Array(o1.length);
  valueUpRows({ ...common, latent, out: o1 }, 0, heads);
  valueUpRows({ ...common, latent, out: o2 }, 2, 3);
  valueUpRows({ ...common, latent, out: o2 }, 0, 2);
  assert.deepEqual(o2, o1);
});
