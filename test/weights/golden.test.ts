// linear against test/weights/golden/make.py, a NumPy / PyTorch restatement
// of DeepSeek-V3's weight conversion, weight_dequant (bf16 by torch's cast),
// act_quant and fp8_gemm: the checkpoint form, the dequantized weight and
// both readings' outputs, bit for bit, on the reference and the SIMD path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { decodeNpy } from '../../src/io/npy.js';
import type { Tensor, TypedArray } from '../../src/tensor.js';
import { linear } from '../../src/weights/linear.js';
import { bf16Value, dequantizeWeight, quantizeWeightFp8, toBf16, type Fp8Weight } from '../../src/weights/weight.js';
import { actQuantRows } from '../../src/indexer/fp8.js';

function load<T extends TypedArray>(name: string): Tensor<T> {
  return decodeNpy(new Uint8Array(readFileSync(new URL(`./golden/${name}.npy`, import.meta.url))), name) as unknown as Tensor<T>;
}

function sameBits(a: ArrayLike<number>, b: ArrayLike<number>, label: string): void {
  assert.equal(a.length, b.length, `${label}: length`);
  for (let i = 0; i < b.length; i++) if (!Object.is(a[i], b[i])) assert.fail(`${label}: element ${i} is ${a[i]}, expected ${b[i]}`);
}

const w = load<Float32Array>('w'); // [130, 261]
const x = load<Float32Array>('x'); // [3, 261]
const codes = load<Uint8Array>('codes');
const scale = load<Float32Array>('scale'); // [2, 3]
const weight: Fp8Weight = { format: 'fp8', shape: [130, 261], data: codes.data, scale: scale.data };

test('golden: quantizeWeightFp8 writes the checkpoint form W[130, 261] (scale amax / 448 per block, e4m3 nearest even)', () => {
  assert.deepEqual(scale.shape, [2, 3]);
  const q = quantizeWeightFp8(w);
  sameBits(q.scale, scale.data, 'weight_scale_inv');
  sameBits(q.data, codes.data, 'codes');
});

test("golden: weight_dequant then torch's bf16 cast equals dequantizeWeight then toBf16", () => {
  const bits = toBf16(dequantizeWeight(weight));
  sameBits(Float32Array.from(bits, bf16Value), load<Float32Array>('dequant_bf16').data, 'dequantized bf16');
});

test("golden: linear x[3, 261] W[130, 261] gemmImpl 'bf16' equals the restatement, simd and not", () => {
  for (const simd of [true, false]) sameBits(linear(x, weight, { simd }).data, load<Float32Array>('y_bf16').data, `simd ${simd}`);
});

for (const scaleFormat of ['float32', 'ue8m0'] as const) {
  test(`golden: act_quant and fp8_gemm (scaleFormat ${scaleFormat}) equal the restatement, simd and not`, () => {
    const xq = new Uint8Array(3 * 261), xs = new Float32Array(3 * 3);
    actQuantRows(x.data, 0, 3, 261, scaleFormat, xq, 0, 261, xs, 0);
    sameBits(xq, load<Uint8Array>(`xq_${scaleFormat}`).data, 'act_quant codes');
    sameBits(xs, load<Float32Array>(`xs_${scaleFormat}`).data, 'act_quant scales');
    for (const simd of [true, false]) {
      sameBits(linear(x, weight, { gemmImpl: 'fp8', scaleFormat, simd }).data, load<Float32Array>(`y_fp8_${scaleFormat}`).data, `simd ${simd}`);
    }
  });
}
