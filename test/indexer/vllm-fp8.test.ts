// FP8 keys with vLLM's scale rule (scaleRule: 'vllm'): the scale of each key
// is f32(max(amax, 1e-4) / 448), a float32 division, as vLLM's
// indexer_k_quant_and_cache writes it, where DeepSeek's act_quant multiplies
// by f32(1/448). Checked against a plain restatement of that rule (below, in
// float64 rounded once, which is the float32 division bit for bit), against
// the golden bytes of test/golden/make_vllm.py (a NumPy restatement of the
// CUDA kernel with e4m3 rounding by search over the code values), and
// through lightningIndexer's appends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { quantizeKeysFp8 } from '../../src/indexer/quantized-keys.js';
import { e4m3Encode, fp8CodesAt, fp8ScaleAt, fp8ScaleView, type Fp8Keys } from '../../src/indexer/fp8.js';
import { lightningIndexer, type IndexerWeights } from '../../src/indexer/module.js';
import { decodeNpy } from '../../src/io/npy.js';
import type { Tensor, TypedArray } from '../../src/tensor.js';
import { rng } from '../../src/cli/demo-data.js';

function load<T extends TypedArray>(name: string): Tensor<T> {
  const t = decodeNpy(new Uint8Array(readFileSync(new URL(`../golden/fixtures/${name}.npy`, import.meta.url))), name);
  return { data: t.data as T, shape: t.shape };
}

function floats(shape: number[], seed: number, scale = 1): Tensor<Float32Array> {
  const next = rng(seed);
  return { data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (next() * 2 - 1) * scale), shape };
}

/** vLLM's writer for one key of d <= 128 values: its float32 scale and e4m3 codes. */
function vllmKey(x: ArrayLike<number>): { scale: number; codes: number[] } {
  let amax = 0;
  for (let e = 0; e < x.length; e++) amax = Math.max(amax, Math.abs(x[e]));
  const scale = Math.fround(Math.max(amax, Math.fround(1e-4)) / 448); // one float32 division
  // e4m3Encode is the library's round-to-nearest-even, saturating e4m3 rule (tested on every code and midpoint in fp8.test.ts).
  const codes = Array.from(x, (v) => e4m3Encode(Math.min(448, Math.max(-448, Math.fround(v / scale)))));
  return { scale, codes };
}

function keyBytes(keys: Fp8Keys, slot: number): { scale: number; codes: number[] } {
  const [, P, row] = keys.shape, d = row - 4;
  const at = fp8CodesAt(slot, P, d);
  return { scale: fp8ScaleView(keys)[fp8ScaleAt(slot, P, d)], codes: [...keys.data.subarray(at, at + d)] };
}

const F32 = new Float32Array(1), U32 = new Uint32Array(F32.buffer);
const bits = (x: number) => ((F32[0] = x), U32[0]);

test('property: quantizeKeysFp8 scaleRule vllm stores the scale f32(max(amax, 1e-4) / 448) and e4m3(k / scale) for every key, d 1..128, any magnitude', () => {
  fc.assert(
    fc.property(
      fc.record({
        b: fc.integer({ min: 1, max: 2 }), s: fc.integer({ min: 1, max: 6 }), d: fc.constantFrom(4, 8, 16, 64, 128),
        magnitude: fc.constantFrom(1, 1e-3, 1e-5, 1e-7, 300, 3e4), seed: fc.integer(),
      }),
      ({ b, s, d, magnitude, seed }) => {
        const k = floats([b, s, d], seed, magnitude);
        const keys = quantizeKeysFp8(k, { hadamard: false, scaleRule: 'vllm' });
        assert.equal(keys.scaleRule, 'vllm');
        for (let slot = 0; slot < b * s; slot++) {
          const got = keyBytes(keys, slot), want = vllmKey(k.data.subarray(slot * d, (slot + 1) * d));
          assert.ok(Object.is(got.scale, want.scale), `slot ${slot}: scale ${got.scale} != ${want.scale}`);
          assert.deepEqual(got.codes, want.codes, `slot ${slot}: codes`);
        }
      },
    ),
    { numRuns: 200 },
  );
});

test("quantizeKeysFp8 equals vLLM's indexer_k_quant_and_cache bytes (golden, d 128, float32 and ue8m0 scales) on every written slot", () => {
  const k = load<Float32Array>('vllm_kcache_keys'); // [n, 128], token order
  const slotMapping = load<Int32Array>('vllm_kcache_slot_mapping').data;
  const [n, d] = k.shape;
  for (const [scaleFormat, file] of [['float32', 'vllm_kcache_bytes'], ['ue8m0', 'vllm_kcache_bytes_ue8m0']] as const) {
    const want = load<Uint8Array>(file); // [numBlocks, P * 132]
    const numBlocks = want.shape[0], P = want.shape[1] / (d + 4);
    // Lay the keys out as pages [numBlocks, P, d] at their slots: quantizeKeysFp8 then writes vLLM's page layout.
    const paged = new Float32Array(numBlocks * P * d);
    for (let i = 0; i < n; i++) paged.set(k.data.subarray(i * d, (i + 1) * d), slotMapping[i] * d);
    const keys = quantizeKeysFp8({ data: paged, shape: [numBlocks, P, d] }, { hadamard: false, scaleRule: 'vllm', scaleFormat });
    assert.deepEqual(keys.shape, [numBlocks, P, d + 4]);
    for (const slot of slotMapping) {
      const blk = Math.floor(slot / P), off = slot % P, base = blk * P * (d + 4);
      const codesAt = base + off * d, scaleAt = base + P * d + off * 4;
      assert.deepEqual([...keys.data.subarray(codesAt, codesAt + d)], [...want.data.subarray(codesAt, codesAt + d)], `${scaleFormat}: slot ${slot} codes`);
      assert.deepEqual([...keys.data.subarray(scaleAt, scaleAt + 4)], [...want.data.subarray(scaleAt, scaleAt + 4)], `${scaleFormat}: slot ${slot} scale bytes`);
    }
    // The DeepSeek rule gives other bytes on these keys (about half the scales differ in the last bit).
    const deepseek = quantizeKeysFp8({ data: paged, shape: [numBlocks, P, d] }, { hadamard: false, scaleFormat });
    if (scaleFormat === 'float32') assert.notDeepEqual(deepseek.data, keys.data, 'the rules differ somewhere');
  }
});

test('the two rules differ by at most one float32 ulp in the scale, on about half the keys, and by few codes', () => {
  const d = 128, n = 2000;
  const k = floats([1, n, d], 5);
  const vllm = quantizeKeysFp8(k, { hadamard: false, scaleRule: 'vllm' });
  const deepseek = quantizeKeysFp8(k, { hadamard: false, scaleRule: 'deepseek' });
  assert.equal(deepseek.scaleRule, 'deepseek');
  let scalesDiffer = 0, codesDiffer = 0;
  for (let slot = 0; slot < n; slot++) {
    const a = keyBytes(vllm, slot), z = keyBytes(deepseek, slot);
    const ulps = Math.abs(bits(a.scale) - bits(z.scale));
    assert.ok(ulps <= 1, `slot ${slot}: scales ${a.scale} and ${z.scale} are ${ulps} ulps apart`);
    if (ulps === 1) scalesDiffer++;
    for (let e = 0; e < d; e++) if (a.codes[e] !== z.codes[e]) codesDiffer++;
  }
  assert.ok(scalesDiffer > n * 0.2 && scalesDiffer < n * 0.8, `${scalesDiffer} of ${n} scales differ`);
  // A code flips only where k / scale lies within an ulp of a rounding midpoint: rare on random keys.
  assert.ok(codesDiffer < n * d * 1e-3, `${codesDiffer} of ${n * d} codes differ`);
});

test('a key whose code flips between the rules: quantizeKeysFp8 gives the vLLM code under scaleRule vllm and the DeepSeek one by default', () => {
  // An amax whose two scales differ, then a value next to the midpoint 1.1875 (between codes 0x39 and 0x3a) of k / scale.
  let amax = 1;
  const deepseekScale = (a: number) => Math.fround(a * Math.fround(1 / 448));
  const vllmScale = (a: number) => Math.fround(a / 448);
  while (vllmScale(amax) === deepseekScale(amax)) amax = Math.fround(amax + 2 ** -23);
  const sv = vllmScale(amax), sd = deepseekScale(amax);
  const code = (x: number, scale: number) => e4m3Encode(Math.fround(x / scale));
  let x = Math.fround(1.1875 * sv);
  for (let step = 0; step < 64 && code(x, sv) === code(x, sd); step++) x = Math.fround(x + (sv > sd ? 1 : -1) * 2 ** -30);
  assert.notEqual(code(x, sv), code(x, sd), 'a flipping value exists next to the midpoint');
  const key = new Float32Array(8);
  key[0] = amax;
  key[3] = x;
  const vllm = keyBytes(quantizeKeysFp8({ data: key, shape: [1, 1, 8] }, { hadamard: false, scaleRule: 'vllm' }), 0);
  const deepseek = keyBytes(quantizeKeysFp8({ data: key, shape: [1, 1, 8] }, { hadamard: false }), 0);
  assert.equal(vllm.scale, sv);
  assert.equal(deepseek.scale, sd);
  assert.equal(vllm.codes[3], code(x, sv));
  assert.equal(deepseek.codes[3], code(x, sd));
  assert.deepEqual(vllm, vllmKey(key), 'the restated vLLM writer');
});

test('quantizeKeysFp8: scaleRule other than deepseek / vllm is a RangeError; an unknown option is a TypeError naming it', () => {
  const k = floats([1, 4, 8], 1);
  assert.throws(() => quantizeKeysFp8(k, { scaleRule: 'nvidia' as never }), { name: 'RangeError', message: "scaleRule: expected one of 'deepseek', 'vllm', got string \"nvidia\"" });
  assert.throws(() => quantizeKeysFp8(k, { scaleRul: 'vllm' } as never), {
    name: 'TypeError', message: "quantizeKeysFp8: unknown option 'scaleRul' (expected one of: hadamard, scaleFormat, scaleRule, shared)",
  });
  // Undefined options count as absent.
  assert.deepEqual(quantizeKeysFp8(k, { scaleRule: undefined, hadamard: undefined }).data, quantizeKeysFp8(k).data);
});

function weights(dim: number, qRank: number, h: number, d: number, seed: number): IndexerWeights {
  return {
    wqB: floats([h * d, qRank], seed), wk: floats([d, dim], seed + 1), kNormWeight: floats([d], seed + 2),
    kNormBias: floats([d], seed + 3), weightsProj: floats([h, dim], seed + 4),
  };
}

test("lightningIndexer appends new keys to a vLLM-rule FP8 cache by the cache's rule, and its result records it", () => {
  const W = weights(24, 16, 4, 16, 17);
  const x = floats([2, 3, 24], 51), qr = floats([2, 3, 16], 52), kCache = floats([2, 9, 16], 53);
  const opts = { topK: 4, ropeDim: 8, precision: 'fp8' as const };
  const float = lightningIndexer(W, { x, qr, kCache }, opts);
  const vllm = lightningIndexer(W, { x, qr, kCache: quantizeKeysFp8(kCache, { scaleRule: 'vllm' }) }, opts);
  const keys = vllm.keys as Fp8Keys;
  assert.equal(keys.scaleRule, 'vllm');
  assert.deepEqual(keys.data, quantizeKeysFp8(float.keys as Tensor<Float32Array>, { scaleRule: 'vllm' }).data, 'old and new keys by the vLLM rule');
  assert.notDeepEqual(keys.data, quantizeKeysFp8(float.keys as Tensor<Float32Array>).data, 'not by the DeepSeek rule');
});
