// MLA's absorbed wkv_b (src/model/absorb.ts) over float32, bf16 and FP8
// weights, heads aligned to 128 x 128 scale blocks or not: against the
// weight's values (dequantizeWeight, bf16-rounded for FP8, as
// weight_dequant gives them) in float64; FP8 read in place equal bit for
// bit to the same values as a bf16 weight; any split of the output
// features equal to one pass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { absorbQueryRows, headWeights, headWeightsBytes, valueUpRows, type TransposedKeys } from '../../src/model/absorb.js';
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

const keyBytes = (k: TransposedKeys) => k.data.byteLength + (k.scale?.byteLength ?? 0);
const weightArgs = (w: Weight) => ({ format: w.format, data: w.data, scale: w.format === 'fp8' ? w.scale : null });

/** Runs both kernels over [ranges] of their output features. */
function run(w: Weight, n: number, heads: number, nope: number, rope: number, v: number, kvRank: number, q: Float32Array, latent: Float32Array, simd: boolean, split = 1) {
  const hw = headWeights(w, heads, nope, v, kvRank);
  const qOut = new Float32Array(n * heads * (kvRank + rope)).fill(NaN);
  const o = new Float32Array(n * heads * v).fill(NaN);
  const qArgs = { q, out: qOut, n, heads, nope, rope, kvRank, ...hw.keyT, simd };
  const vArgs = { latent, out: o, n, heads, v, kvRank, ...weightArgs(hw.value), first: hw.first, stride: hw.stride, simd };
  // Ranges in reverse order, cut at arbitrary points.
  const cuts = (total: number) => Array.from({ length: split + 1 }, (_, i) => Math.round((i * total) / split)).reverse();
  const a = cuts(heads * kvRank), b = cuts(heads * v);
  for (let i = 0; i < split; i++) absorbQueryRows(qArgs, a[i + 1], a[i]);
  for (let i = 0; i < split; i++) valueUpRows(vArgs, b[i + 1], b[i]);
  return { qOut, o, hw };
}

test('absorbQuery and valueUp: per head, q_nope @ W_k and latent @ W_v^T, q_pe carried, every format, any block alignment', () => {
  fc.assert(
    fc.property(
      fc.constantFrom<Weight['format']>('float32', 'bf16', 'fp8'), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 1, max: 70 }), fc.integer({ min: 1, max: 70 }), fc.integer({ min: 1, max: 150 }), fc.integer({ min: 0, max: 4 }), fc.boolean(), fc.integer({ min: 1, max: 4 }), fc.integer(),
      (format, n, heads, nope, v, kvRank, halfRope, simd, split, seed) => {
        const rope = 2 * halfRope;
        const shape: [number, number] = [heads * (nope + v), kvRank];
        const w = weightOf(format, floats(shape[0] * kvRank, seed, 0.5), shape);
        const W = values(w);
        const q = floats(n * heads * (nope + rope), seed + 1), latent = floats(n * heads * kvRank, seed + 2);
        const { qOut, o, hw } = run(w, n, heads, nope, rope, v, kvRank, q, latent, simd, split);
        assert.equal(headWeightsBytes(w, heads, nope, v, kvRank), keyBytes(hw.keyT), 'headWeightsBytes');
        for (let r = 0; r < n; r++) for (let h = 0; h < heads; h++) {
          const qh = (r * heads + h) * (nope + rope), oh = (r * heads + h) * (kvRank + rope);
          for (let c = 0; c < kvRank; c++) {
            let want = 0, mag = 0;
            for (let d = 0; d < nope; d++) {
              const p = q[qh + d] * W[(h * (nope + v) + d) * kvRank + c];
              want += p;
              mag += Math.abs(p);
            }
            assert.ok(Math.abs(qOut[oh + c] - want) <= 1e-6 * mag + 1e-30, `absorb row ${r} head ${h} c ${c}: ${qOut[oh + c]} vs ${want}`);
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

test('FP8 wkv_b, heads on 128-row blocks (nope 128, v 128, kvRank 256) or not (GLM-5: nope 192, v 256): read in place, keys transposed as FP8 (GLM-5: two segments a head), bit for bit its values as bf16 (GLM-5 keys: within rounding); splits and simd equal', () => {
  const heads = 3, nope = 128, v = 128, kvRank = 256, rope = 8, n = 2;
  const data = floats(heads * (nope + v) * kvRank, 3, 0.2);
  for (let i = 0; i < data.length; i += 9000) data[i] *= 50; // blocks of different scales
  const w = quantizeWeightFp8({ data, shape: [heads * (nope + v), kvRank] });
  const asBf16: Weight = { format: 'bf16', shape: w.shape, data: toBf16(values(w)) };
  const q = floats(n * heads * (nope + rope), 4), latent = floats(n * heads * kvRank, 5);
  const fp8 = run(w, n, heads, nope, rope, v, kvRank, q, latent, true);
  assert.equal(fp8.hw.keyT.format, 'fp8', 'the transposed key rows stay FP8');
  assert.equal(fp8.hw.value, w, 'the value rows are read in place');
  assert.equal(headWeightsBytes(w, heads, nope, v, kvRank), keyBytes(fp8.hw.keyT));
  assert.equal(keyBytes(fp8.hw.keyT), heads * kvRank * nope + ((heads * kvRank) / 128) * 4, 'the key half of wkv_b again, FP8');
  const bf16 = run(asBf16, n, heads, nope, rope, v, kvRank, q, latent, true);
  assert.deepEqual(fp8.qOut, bf16.qOut);
  assert.deepEqual(fp8.o, bf16.o);
  for (const [simd, split] of [[true, 3], [false, 1], [false, 5]] as const) {
    const other = run(w, n, heads, nope, rope, v, kvRank, q, latent, simd, split);
    assert.deepEqual(other.qOut, fp8.qOut, `simd ${simd} split ${split}`);
    assert.deepEqual(other.o, fp8.o, `simd ${simd} split ${split}`);
  }
  // Off the blocks (GLM-5's nope 192, v 256: heads start at rows 0, 448, 896): the values in place, the transposed keys bf16, bit for bit the bf16 weight of the values.
  const glm = quantizeWeightFp8({ data: floats(3 * 448 * 128, 6, 0.3).map((x, i) => (i % 7000 === 0 ? x * 40 : x)), shape: [3 * 448, 128] });
  const glmQ = floats(n * 3 * (192 + rope), 7), glmLatent = floats(n * 3 * 128, 8);
  const inPlace = run(glm, n, 3, 192, rope, 256, 128, glmQ, glmLatent, true, 3);
  assert.equal(inPlace.hw.keyT.format, 'fp8', 'the transposed keys stay FP8, in segments');
  assert.deepEqual(Array.from(inPlace.hw.keyT.headSegments), [0, 2, 4, 6]);
  assert.deepEqual(Array.from(inPlace.hw.keyT.segments), [0, 128, 128, 192, 0, 64, 64, 192, 0, 128, 128, 192]);
  assert.equal(headWeightsBytes(glm, 3, 192, 256, 128), keyBytes(inPlace.hw.keyT));
  assert.equal(inPlace.hw.value, glm, 'the value rows are read in place');
  const glmBf16 = run({ format: 'bf16', shape: glm.shape, data: toBf16(values(glm)) }, n, 3, 192, rope, 256, 128, glmQ, glmLatent, false);
  assert.deepEqual(inPlace.o, glmBf16.o, 'values: one dot a row, the same bits');
  // Keys: the two segments' dots summed, within float32 rounding of the one dot.
  for (let i = 0; i < inPlace.qOut.length; i++) assert.ok(Math.abs(inPlace.qOut[i] - glmBf16.qOut[i]) <= 1e-6 * (1 + Math.abs(glmBf16.qOut[i])), `q' ${i}`);
});
