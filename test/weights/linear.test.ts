// linear over every stored weight form and both of DeepSeek's readings,
// against a plain restatement of DeepSeek-V3's `linear` (weight_dequant then
// a bf16 weight; act_quant then fp8_gemm's block promotion), bit for bit;
// the helpers (bf16 rounding, FP8 block quantization); and the edge's
// named errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { linear, type GemmImpl } from '../../src/weights/linear.js';
import { bf16Bits, bf16Value, checkWeight, dequantizeWeight, quantizeWeightFp8, toBf16, weightBytes, type Weight } from '../../src/weights/weight.js';
import { E4M3_VALUES, actQuantRows, type ScaleFormat } from '../../src/indexer/fp8.js';
import { rng, normals } from '../../src/cli/demo-data.js';
import type { Tensor } from '../../src/tensor.js';

const f32 = Math.fround;

/** A weight [out, in] of N(0, 1) values in the given form (fp8 through quantizeWeightFp8). */
function makeWeight(format: Weight['format'], out: number, inDim: number, seed: number): Weight {
  const values = normals(rng(seed), out * inDim);
  if (format === 'float32') return { format, shape: [out, inDim], data: values };
  if (format === 'bf16') return { format, shape: [out, inDim], data: toBf16(values) };
  return quantizeWeightFp8({ data: values, shape: [out, inDim] });
}

/**
 * The stated summation order of float32 products: lane l sums the products
 * j = l (mod 4) below the last multiple of 4, then (l0 + l1) + (l2 + l3),
 * then the rest in order.
 */
function orderedSum(products: number[]): number {
  const n4 = products.length - (products.length % 4);
  const lane = [0, 0, 0, 0];
  for (let j = 0; j < n4; j++) lane[j % 4] = f32(lane[j % 4] + products[j]);
  let s = f32(f32(lane[0] + lane[1]) + f32(lane[2] + lane[3]));
  for (let j = n4; j < products.length; j++) s = f32(s + products[j]);
  return s;
}

/**
 * DeepSeek-V3's `linear(x, weight)` restated: a non-FP8 weight, or an FP8
 * one under gemm_impl 'bf16' (weight_dequant, cast to bf16), is F.linear;
 * under 'fp8', act_quant(x) then fp8_gemm (a block's dot, times
 * a_s * b_s, added to the accumulator). Sums float32 in the stated order.
 */
function deepseekLinear(x: Float32Array, n: number, w: Weight, gemmImpl: GemmImpl, scaleFormat: ScaleFormat): Float32Array {
  const [out, inDim] = w.shape;
  const y = new Float32Array(n * out);
  if (w.format !== 'fp8' || gemmImpl === 'bf16') {
    let W = dequantizeWeight(w);
    if (w.format === 'fp8') W = Float32Array.from(W, (v) => bf16Value(bf16Bits(v)));
    for (let r = 0; r < n; r++) {
      for (let o = 0; o < out; o++) {
        const products: number[] = [];
        for (let j = 0; j < inDim; j++) products.push(f32(x[r * inDim + j] * W[o * inDim + j]));
        y[r * out + o] = orderedSum(products);
      }
    }
    return y;
  }
  const nb = Math.ceil(inDim / 128);
  const a = new Uint8Array(n * inDim), aS = new Float32Array(n * nb);
  actQuantRows(x, 0, n, inDim, scaleFormat, a, 0, inDim, aS, 0);
  for (let r = 0; r < n; r++) {
    for (let o = 0; o < out; o++) {
      let accum = 0;
      for (let k = 0; k < nb; k++) {
        const products: number[] = [];
        for (let j = k * 128; j < Math.min(inDim, k * 128 + 128); j++) products.push(E4M3_VALUES[a[r * inDim + j]] * E4M3_VALUES[w.data[o * inDim + j]]);
        const c = orderedSum(products);
        const scaleC = f32(aS[r * nb + k] * (w as { scale: Float32Array }).scale[Math.floor(o / 128) * nb + k]);
        accum = f32(accum + f32(c * scaleC));
      }
      y[r * out + o] = accum;
    }
  }
  return y;
}

function assertSameBits(actual: Float32Array, expected: Float32Array, label: string): void {
  assert.equal(actual.length, expected.length, `${label}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(actual[i], expected[i])) assert.fail(`${label}: element ${i} is ${actual[i]}, expected ${expected[i]}`);
  }
}

const READINGS: { gemmImpl: GemmImpl; scaleFormat: ScaleFormat }[] = [
  { gemmImpl: 'bf16', scaleFormat: 'float32' },
  { gemmImpl: 'fp8', scaleFormat: 'float32' },
  { gemmImpl: 'fp8', scaleFormat: 'ue8m0' },
];

for (const format of ['float32', 'bf16', 'fp8'] as const) {
  for (const { gemmImpl, scaleFormat } of READINGS) {
    for (const [n, out, inDim] of [[1, 5, 7], [3, 130, 200], [2, 129, 256], [1, 17, 385]]) {
      test(`linear ${format} ${gemmImpl}/${scaleFormat} x[${n}, ${inDim}] W[${out}, ${inDim}]: DeepSeek's restatement bit for bit, simd and not`, () => {
        const w = makeWeight(format, out, inDim, out * 31 + inDim);
        const x = normals(rng(n * 7 + inDim), n * inDim, 3);
        const expected = deepseekLinear(x, n, w, gemmImpl, scaleFormat);
        for (const simd of [true, false]) {
          const y = linear({ data: x, shape: [n, inDim] }, w, { gemmImpl, scaleFormat, simd });
          assert.deepEqual(y.shape, [n, out]);
          assertSameBits(y.data, expected, `simd ${simd}`);
        }
      });
    }
  }
}

test('linear: random shapes and every form and reading equal the restatement (partial blocks, in not a multiple of 16)', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 300 }),
      fc.constantFrom('float32', 'bf16', 'fp8'), fc.constantFrom(...READINGS), fc.integer(),
      (n, out, inDim, format, reading, seed) => {
        const w = makeWeight(format as Weight['format'], out, inDim, seed);
        const x = normals(rng(seed + 1), n * inDim);
        const expected = deepseekLinear(x, n, w, reading.gemmImpl, reading.scaleFormat);
        for (const simd of [true, false]) {
          const y = linear({ data: x, shape: [n, inDim] }, w, { ...reading, simd });
          assertSameBits(y.data, expected, `n=${n} out=${out} in=${inDim} ${format} simd ${simd}`);
        }
      },
    ),
    { numRuns: 60 },
  );
});

test('linear: close to the float64 product of the dequantized weight (fp8 read fp8 within e4m3 error of x)', () => {
  const [n, out, inDim] = [4, 70, 300];
  const x = normals(rng(5), n * inDim);
  for (const format of ['float32', 'bf16', 'fp8'] as const) {
    const w = makeWeight(format, out, inDim, 9);
    const W = dequantizeWeight(w);
    for (const gemmImpl of ['bf16', 'fp8'] as const) {
      const y = linear({ data: x, shape: [n, inDim] }, w, { gemmImpl }).data;
      // bf16 rounding of an fp8 weight is 2^-9 relative; e4m3 of x 2^-4.
      const rel = format === 'fp8' ? (gemmImpl === 'fp8' ? 2 ** -4 + 2 ** -20 : 2 ** -8) : 2 ** -20;
      for (let r = 0; r < n; r++) {
        for (let o = 0; o < out; o++) {
          let exact = 0, magnitude = 0;
          for (let j = 0; j < inDim; j++) {
            exact += x[r * inDim + j] * W[o * inDim + j];
            magnitude += Math.abs(x[r * inDim + j] * W[o * inDim + j]);
          }
          const err = Math.abs(y[r * out + o] - exact);
          assert.ok(err <= rel * magnitude + 1e-4 * magnitude, `${format}/${gemmImpl} [${r}, ${o}]: ${y[r * out + o]} vs ${exact} (|x||w| ${magnitude})`);
        }
      }
    }
  }
});

test('linear: leading dims kept, out reused and returned, NaN in x or a NaN code gives NaN outputs', () => {
  const w = makeWeight('fp8', 3, 130, 1);
  const x = normals(rng(2), 2 * 2 * 130);
  const out = new Float32Array(12);
  const y = linear({ data: x, shape: [2, 2, 130] }, w, { out, gemmImpl: 'fp8' });
  assert.equal(y.data, out);
  assert.deepEqual(y.shape, [2, 2, 3]);
  assertSameBits(out, deepseekLinear(x, 4, w, 'fp8', 'float32'), 'out');
  const bad = { ...w, data: w.data.slice() } as Weight;
  bad.data[1 * 130 + 5] = 0x7f;
  for (const gemmImpl of ['bf16', 'fp8'] as const) {
    for (const simd of [true, false]) {
      const z = linear({ data: x.subarray(0, 130), shape: [130] }, bad, { gemmImpl, simd }).data;
      assert.ok(Number.isNaN(z[1]) && Number.isFinite(z[0]) && Number.isFinite(z[2]), `${gemmImpl} simd ${simd}: ${z}`);
    }
  }
  const xNaN = x.slice(0, 130);
  xNaN[129] = NaN;
  const z = linear({ data: xNaN, shape: [1, 130] }, w, { gemmImpl: 'fp8' }).data;
  assert.ok(z.every(Number.isNaN));
});

test('toBf16: nearest, ties to even, NaN kept, overflow to Infinity, signed zero', () => {
  const cases: [number, number][] = [
    [1, 0x3f80], [1 + 2 ** -8, 0x3f80], [1 + 3 * 2 ** -8, 0x3f82], [1 + 2 ** -8 + 2 ** -20, 0x3f81], [-1.5, 0xbfc0],
    [-0, 0x8000], [Infinity, 0x7f80], [-Infinity, 0xff80], [NaN, 0x7fc0], [3.4028234663852886e38, 0x7f80], [2 ** -149, 0x0000], [2 ** -133, 0x0001],
  ];
  const bits = toBf16(Float32Array.from(cases, (c) => c[0]));
  cases.forEach(([x, expected], i) => assert.equal(bits[i], expected, `toBf16(${x})`));
  fc.assert(
    fc.property(fc.float({ noNaN: true, noDefaultInfinity: true }), (x) => {
      const b = bf16Bits(x), v = bf16Value(b);
      if (!Number.isFinite(v)) return assert.ok(Math.abs(x) >= 2 ** 127 * (2 - 2 ** -8), `${x} rounded to ${v}`); // past the halfway point to 2^128
      // No bf16 value is nearer (checked against both neighbours), and a tie went to the even pattern.
      for (const other of [b - 1, b + 1]) {
        const ov = bf16Value(other & 0xffff);
        if (!Number.isFinite(ov) || Math.sign(ov) !== Math.sign(v)) continue;
        const d0 = Math.abs(v - f32(x)), d1 = Math.abs(ov - f32(x));
        assert.ok(d0 < d1 || (d0 === d1 && (b & 1) === 0), `${x}: ${b.toString(16)} vs ${other.toString(16)}`);
      }
    }),
  );
});

test('quantizeWeightFp8: scale amax / 448 per 128 x 128 block (edge blocks partial), codes within half an e4m3 step', () => {
  const [out, inDim] = [200, 130];
  const values = normals(rng(3), out * inDim);
  values.fill(0, 0, inDim); // row 0 all zero: its block still has other rows
  const w = quantizeWeightFp8({ data: values, shape: [out, inDim] });
  assert.deepEqual(w.shape, [out, inDim]);
  assert.equal(w.scale.length, 2 * 2);
  assert.equal(weightBytes(w), out * inDim + 16);
  for (let br = 0; br < 2; br++) {
    for (let bc = 0; bc < 2; bc++) {
      let amax = 0;
      for (let i = br * 128; i < Math.min(out, br * 128 + 128); i++) for (let j = bc * 128; j < Math.min(inDim, bc * 128 + 128); j++) amax = Math.max(amax, Math.abs(values[i * inDim + j]));
      assert.equal(w.scale[br * 2 + bc], f32(amax / 448), `block [${br}, ${bc}]`);
    }
  }
  const back = dequantizeWeight(w);
  for (let i = 0; i < values.length; i++) {
    const s = w.scale[Math.floor(i / inDim / 128) * 2 + Math.floor((i % inDim) / 128)];
    assert.ok(Math.abs(back[i] - values[i]) <= Math.max(Math.abs(values[i]) * 2 ** -4, s * 2 ** -10), `element ${i}: ${back[i]} vs ${values[i]}`);
  }
  const zeros = quantizeWeightFp8({ data: new Float32Array(6), shape: [2, 3] });
  assert.deepEqual([...zeros.scale], [1]);
  assert.deepEqual([...zeros.data], [0, 0, 0, 0, 0, 0]);
  assert.throws(() => quantizeWeightFp8({ data: Float32Array.of(1, NaN), shape: [1, 2] }), /w: element \[0, 1\] is NaN/);
});

test('checkWeight and linear: named errors for every bad argument', () => {
  const good = makeWeight('fp8', 130, 129, 1);
  const x: Tensor<Float32Array> = { data: new Float32Array(129), shape: [1, 129] };
  const bad: [unknown, RegExp][] = [
    [null, /^TypeError: w: expected a weight/],
    [{ ...good, format: 'int4' }, /RangeError: w.format: expected one of 'float32', 'bf16', 'fp8', got string "int4"/],
    [{ ...good, shape: [130] }, /RangeError: w.shape: expected \[out, in\]/],
    [{ ...good, shape: [130, 0] }, /RangeError: w.shape/],
    [{ ...good, data: new Int8Array(130 * 129) }, /TypeError: w.data: a 'fp8' weight holds a Uint8Array, got Int8Array/],
    [{ format: 'bf16', shape: [2, 2], data: new Float32Array(4) }, /TypeError: w.data: a 'bf16' weight holds a Uint16Array/],
    [{ ...good, data: new Uint8Array(5) }, /RangeError: w.data: expected length out \* in = 130 \* 129 = 16770, got 5/],
    [{ ...good, scale: undefined }, /TypeError: w.scale: expected a Float32Array \[ceil\(out\/128\), ceil\(in\/128\)\] = \[2, 2\]/],
    [{ ...good, scale: new Float32Array(2) }, /RangeError: w.scale: expected \[ceil\(out\/128\), ceil\(in\/128\)\] = \[2, 2\] \(4 values\) for shape \[130, 129\], got length 2/],
    [{ ...good, scale: Float32Array.of(1, 1, Infinity, 1) }, /RangeError: w.scale: block \[1, 0\] is Infinity/],
  ];
  for (const [w, message] of bad) {
    assert.throws(() => checkWeight('w', w), (e: Error) => message.test(`${e.name}: ${e.message}`), String(message));
    assert.throws(() => linear(x, w as Weight), (e: Error) => message.test(`${e.name}: ${e.message}`), String(message));
  }
  assert.deepEqual(checkWeight('w', good), [130, 129]);
  assert.throws(() => linear({ data: new Float32Array(128), shape: [1, 128] }, good), /RangeError: x.shape: the last dim must be the weight's in = 129, got \[1, 128\]/);
  assert.throws(() => linear({ data: new Float64Array(129), shape: [129] } as never, good), /TypeError: x.data: expected a Float32Array, got Float64Array/);
  assert.throws(() => linear({ data: new Float32Array(128), shape: [1, 129] }, good), /RangeError: x: data.length must equal/);
  assert.throws(() => linear(x, good, { gemmImpl: 'int8' as never }), /RangeError: gemmImpl: expected one of 'bf16', 'fp8'/);
  assert.throws(() => linear(x, good, { scaleFormat: 'e8m0' as never }), /RangeError: scaleFormat: expected one of 'float32', 'ue8m0'/);
  assert.throws(() => linear(x, good, { simd: 1 as never }), /TypeError: simd: expected a boolean/);
  assert.throws(() => linear(x, good, { gemm: 'fp8' } as never), /TypeError: linear: unknown option 'gemm'/);
  assert.throws(() => linear(x, good, { out: new Float32Array(129) }), /RangeError: out: expected a Float32Array of length 130, got length 129/);
  const both = new Float32Array(129 + 130);
  assert.throws(() => linear({ data: both.subarray(0, 129), shape: [1, 129] }, good, { out: both.subarray(100, 230) }), /RangeError: out: must not overlap x.data/);
  assert.equal(linear({ data: both.subarray(0, 129), shape: [1, 129] }, good, { out: both.subarray(129) }).data.length, 130);
});

test('linear: block scales of any size (>= 256, subnormal) and negative ones, simd equals the reference, n = 1 and n = 3', () => {
  const [out, inDim] = [130, 260];
  const values = normals(rng(11), out * inDim);
  for (let i = 0; i < out; i++) {
    for (let j = 0; j < inDim; j++) {
      const block = (i >> 7) * 3 + (j >> 7);
      values[i * inDim + j] *= [1e6, 1e-39, 3e-3, 1e30, 1, 2 ** -140][block];
    }
  }
  const w = quantizeWeightFp8({ data: values, shape: [out, inDim] });
  assert.ok(w.scale[0] >= 256 && w.scale[1] < 2 ** -126 && w.scale[3] > 1e27, `scales ${w.scale}`);
  const negative = { ...w, scale: w.scale.map((s, i) => (i === 2 ? -s : s)) };
  for (const weight of [w, negative]) {
    for (const n of [1, 3]) {
      const x = normals(rng(n + 20), n * inDim);
      for (const { gemmImpl, scaleFormat } of READINGS) {
        const expected = deepseekLinear(x, n, weight, gemmImpl, scaleFormat);
        const y = linear({ data: x, shape: [n, inDim] }, weight, { gemmImpl, scaleFormat });
        assertSameBits(y.data, expected, `n=${n} ${gemmImpl}/${scaleFormat}`);
      }
    }
  }
});

test('linear: x of more rows than one chunk of the module (x[513, 4096]), every form and reading, simd equals the reference', () => {
  const [n, out, inDim] = [513, 5, 4096];
  const x = normals(rng(31), n * inDim);
  for (const format of ['float32', 'bf16', 'fp8'] as const) {
    const w = makeWeight(format, out, inDim, 32);
    for (const reading of READINGS) {
      if (format !== 'fp8' && reading.gemmImpl === 'fp8') continue;
      const fast = linear({ data: x, shape: [n, inDim] }, w, reading).data;
      const reference = linear({ data: x, shape: [n, inDim] }, w, { ...reading, simd: false }).data;
      assertSameBits(fast, reference, `${format} ${reading.gemmImpl}/${reading.scaleFormat}`);
    }
  }
});
