// DeepSeek-V3.2's FP8 indexer: the e4m3 codec on all 256 codes and every
// rounding boundary, act_quant's scales, and the FP8 scores of the
// WebAssembly kernel against the plain reference (bit for bit), with the
// keys quantized once (a cache) or per call, in every serving form.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { E4M3_VALUES, actQuantRows, e4m3Decode, e4m3Encode, fp8Scale, fp8ScaleView, hadamardInPlace } from '../../src/indexer/fp8.js';
import { indexerScores } from '../../src/indexer/scores.js';
import { quantizeKeysFp8 } from '../../src/indexer/quantized-keys.js';
import { topk } from '../../src/topk/topk.js';
import { createPool } from '../../src/pool/index.js';
import { simdSupported } from '../../src/simd/index.js';
import type { Tensor } from '../../src/tensor.js';
import { rng } from '../../src/cli/demo-data.js';

const f32 = Math.fround;

/** The float32 just above / below x (x finite). */
function nextUp(x: number): number {
  const a = new Float32Array([x]), u = new Int32Array(a.buffer);
  if (x === 0) return 2 ** -149;
  u[0] += x > 0 ? 1 : -1;
  return a[0];
}
function nextDown(x: number): number {
  return -nextUp(-x);
}

/** The obviously right encoder: the nearest finite code of the same sign by search, ties to the even code, saturating. */
function nearestCode(x: number): number {
  if (Number.isNaN(x)) return 0x7f;
  const sign = x < 0 || Object.is(x, -0) ? 0x80 : 0;
  const a = Math.min(Math.abs(x), 448);
  let best = -1, bestErr = Infinity;
  for (let c = 0; c < 0x7f; c++) {
    const err = Math.abs(E4M3_VALUES[c] - a);
    if (err < bestErr || (err === bestErr && (c & 1) === 0)) {
      best = c;
      bestErr = err;
    }
  }
  return sign | best;
}

test('e4m3: every code decodes to sign x 2^(e-7) x 1.m (subnormals m x 2^-9), 0x7f/0xff are NaN, and encodes back to itself', () => {
  assert.equal(e4m3Decode(0x38), 1);
  assert.equal(e4m3Decode(0x7e), 448);
  assert.equal(e4m3Decode(0xfe), -448);
  assert.equal(e4m3Decode(0x08), 2 ** -6);
  assert.equal(e4m3Decode(0x01), 2 ** -9);
  assert.equal(e4m3Decode(0x07), 7 * 2 ** -9);
  assert.ok(Object.is(e4m3Decode(0x80), -0));
  assert.ok(Number.isNaN(e4m3Decode(0x7f)) && Number.isNaN(e4m3Decode(0xff)));
  for (let c = 0; c < 256; c++) {
    const v = e4m3Decode(c);
    if (Number.isNaN(v)) assert.equal(e4m3Encode(v), 0x7f, `code ${c}`);
    else assert.equal(e4m3Encode(v), c, `code ${c} (${v}) round trip`);
    if (c < 0x7e && c !== 0x7f) assert.ok(e4m3Decode(c + 1) > v || c === 0x7e, `code ${c + 1} is above code ${c}`);
  }
});

test('e4m3: every midpoint between neighbouring codes rounds to the even code, and its float32 neighbours to the nearer code', () => {
  for (const sign of [1, -1]) {
    for (let c = 0; c < 0x7e; c++) {
      const a = e4m3Decode(c), z = e4m3Decode(c + 1);
      const mid = f32((a + z) / 2);
      assert.equal(mid, (a + z) / 2, 'midpoints are exact in float32');
      const even = c % 2 === 0 ? c : c + 1;
      const s = sign < 0 ? 0x80 : 0;
      assert.equal(e4m3Encode(sign * mid), s | even, `midpoint of ${c} and ${c + 1} (${sign * mid})`);
      assert.equal(e4m3Encode(sign * nextDown(mid)), s | c, `just below the midpoint of ${c} and ${c + 1}`);
      assert.equal(e4m3Encode(sign * nextUp(mid)), s | (c + 1), `just above the midpoint of ${c} and ${c + 1}`);
    }
  }
  // Saturation at 448 (no infinities), NaN, signed zero, the smallest values.
  for (const x of [448, nextUp(448), 464, 480, 1e6, Infinity]) assert.equal(e4m3Encode(x), 0x7e, `${x}`);
  assert.equal(e4m3Encode(-Infinity), 0xfe);
  assert.equal(e4m3Encode(NaN), 0x7f);
  assert.equal(e4m3Encode(-0), 0x80);
  assert.equal(e4m3Encode(2 ** -10), 0, 'half the smallest subnormal rounds to even 0');
  assert.equal(e4m3Encode(nextUp(2 ** -10)), 1);
  assert.equal(e4m3Encode(2 ** -149), 0);
});

test('property: e4m3Encode is the nearest code by search (ties to even, saturating) for any float32', () => {
  fc.assert(
    fc.property(fc.float({ noDefaultInfinity: false }), (x) => {
      assert.equal(e4m3Encode(x), nearestCode(x), `x = ${x}`);
    }),
    { numRuns: 5000, seed: 1 },
  );
  fc.assert(
    fc.property(fc.float({ min: -500, max: 500, noNaN: true }), (x) => assert.equal(e4m3Encode(x), nearestCode(x), `x = ${x}`)),
    { numRuns: 5000, seed: 2 },
  );
});

test('act_quant: scale = f32(max(amax, 1e-4) * f32(1/448)), ue8m0 rounds it up to a power of two, codes = e4m3(x / scale); NaN or Infinity make the block NaN', () => {
  const x = Float32Array.from({ length: 256 }, (_, i) => Math.sin(i * 1.7) * (i < 128 ? 3 : 0.00001));
  const codes = new Uint8Array(256), scales = new Float32Array(2);
  actQuantRows(x, 0, 1, 256, 'float32', codes, 0, 256, scales, 0);
  for (let blk = 0; blk < 2; blk++) {
    let amax = 0;
    for (let e = blk * 128; e < (blk + 1) * 128; e++) amax = Math.max(amax, Math.abs(x[e]));
    assert.equal(scales[blk], f32(Math.max(amax, f32(1e-4)) * f32(1 / 448)), `block ${blk} scale`);
    for (let e = blk * 128; e < (blk + 1) * 128; e++) assert.equal(codes[e], e4m3Encode(Math.max(-448, Math.min(448, f32(x[e] / scales[blk])))), `value ${e}`);
  }
  assert.equal(scales[1], f32(f32(1e-4) * f32(1 / 448)), 'a block below 1e-4 uses the floor');
  // The largest value of a block maps to 448 exactly (code 0x7e) or just below.
  assert.ok(Math.abs(e4m3Decode(codes[0] & 0x7f)) <= 448);
  const up = fp8Scale(3, 'ue8m0'), raw = fp8Scale(3, 'float32');
  assert.ok(up >= raw && up < 2 * raw && Math.log2(up) === Math.round(Math.log2(up)), `ue8m0 ${up} from ${raw}`);
  assert.equal(fp8Scale(448 * 2 ** -3, 'ue8m0'), 2 ** -3, 'an exact power of two stays');
  for (const bad of [NaN, Infinity, -Infinity]) {
    const y = Float32Array.from([1, 2, bad, 4]);
    const c = new Uint8Array(4), sc = new Float32Array(1);
    actQuantRows(y, 0, 1, 4, 'float32', c, 0, 4, sc, 0);
    assert.ok(Number.isNaN(sc[0]), `${bad}: scale NaN`);
    assert.deepEqual([...c], [0x7f, 0x7f, 0x7f, 0x7f], `${bad}: NaN codes`);
  }
});

test('Hadamard rotation (scaled d^-0.5) is orthonormal: it keeps dot products', () => {
  const next = rng(3);
  const a = Float32Array.from({ length: 128 }, () => next() - 0.5), b = Float32Array.from({ length: 128 }, () => next() - 0.5);
  const dot = (x: Float32Array, y: Float32Array) => x.reduce((s, v, i) => s + v * y[i], 0);
  const before = dot(a, b);
  hadamardInPlace(a, 0, 128);
  hadamardInPlace(b, 0, 128);
  assert.ok(Math.abs(dot(a, b) - before) < 1e-5, `${dot(a, b)} vs ${before}`);
});

function inputs(b: number, t: number, h: number, d: number, s: number, seed: number) {
  const next = rng(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
  const make = (shape: number[]): Tensor<Float32Array> => ({ data: Float32Array.from({ length: shape.reduce((x, y) => x * y, 1) }, normal), shape });
  return { q: make([b, t, h, d]), k: make([b, s, d]), w: make([b, t, h]) };
}

const PATHS = simdSupported() ? [true, false] : [false];

for (const [b, t, h, d, s] of [[1, 3, 64, 128, 1100], [2, 2, 5, 64, 37], [1, 1, 3, 16, 9], [1, 2, 2, 20, 600]] as const) {
  test(`fp8 q[${b},${t},${h},${d}] s=${s}: WebAssembly equals the plain reference bit for bit; keys quantized once equal keys quantized per call`, () => {
    const { q, k, w } = inputs(b, t, h, d, s, b * 100 + s);
    const hadamard = (d & (d - 1)) === 0;
    const opts = { precision: 'fp8' as const, weightScale: 0.125, causalOffset: s - t, hadamard };
    const ref = indexerScores(q, k, w, { ...opts, simd: false });
    for (const simd of PATHS) {
      assert.deepEqual(indexerScores(q, k, w, { ...opts, simd }).data, ref.data, `float keys, simd=${simd}`);
      const cache = quantizeKeysFp8(k, { hadamard });
      assert.deepEqual(indexerScores(q, cache, w, { ...opts, simd }).data, ref.data, `cached keys, simd=${simd}`);
      const ue = { ...opts, scaleFormat: 'ue8m0' as const };
      const cacheUe = quantizeKeysFp8(k, { hadamard, scaleFormat: 'ue8m0' });
      assert.deepEqual(indexerScores(q, cacheUe, w, { ...ue, simd }).data, indexerScores(q, k, w, { ...ue, simd: false }).data, `ue8m0, simd=${simd}`);
    }
    // Causally hidden keys are -Infinity, the rest finite.
    for (let r = 0; r < b * t; r++) for (let j = 0; j < s; j++) {
      const v = ref.data[r * s + j];
      if (j > (r % t) + s - t) assert.equal(v, -Infinity);
      else assert.ok(Number.isFinite(v), `row ${r} key ${j}: ${v}`);
    }
  });
}

test('fp8 scores follow fp8_index: kScale * sum_h f32(w * weightScale * qScale) * ReLU(q8 . k8), sums in float32 in order', () => {
  const h = 3, d = 16, s = 5;
  const { q, k, w } = inputs(1, 1, h, d, s, 9);
  const cache = quantizeKeysFp8(k, { hadamard: false });
  const got = indexerScores(q, cache, w, { precision: 'fp8', hadamard: false, weightScale: 0.5 }).data;
  const q8 = new Uint8Array(h * d), qs = new Float32Array(h);
  actQuantRows(q.data, 0, h, d, 'float32', q8, 0, d, qs, 0);
  const scales = fp8ScaleView(cache);
  for (let j = 0; j < s; j++) {
    let score = 0;
    for (let hh = 0; hh < h; hh++) {
      let dot = 0;
      for (let e = 0; e < d; e++) dot = f32(dot + e4m3Decode(q8[hh * d + e]) * e4m3Decode(cache.data[j * d + e]));
      score = f32(score + f32(f32(f32(w.data[hh] * 0.5) * qs[hh]) * Math.max(dot, 0)));
    }
    assert.equal(got[j], f32(score * scales[(s * d) / 4 + j]), `key ${j}`);
  }
});

test('fp8 in every serving form: window, seqLens, ragged and paged equal the contiguous call', () => {
  const b = 2, t = 2, h = 8, d = 64, s = 700;
  const { q, k, w } = inputs(b, t, h, d, s, 21);
  const opts = { precision: 'fp8' as const };
  const full = indexerScores(q, k, w, opts);
  // Paged: pages of 64 tokens in shuffled order, a block table, seqLens = s.
  const P = 64, blocks = Math.ceil(s / P), numPages = b * blocks + 3;
  const order = Array.from({ length: numPages }, (_, i) => i).sort((x, y) => ((x * 7919) % 13) - ((y * 7919) % 13) || x - y);
  const table = new Int32Array(b * blocks);
  const pagedK = new Float32Array(numPages * P * d);
  for (let bi = 0; bi < b; bi++) for (let blk = 0; blk < blocks; blk++) {
    const page = order[bi * blocks + blk];
    table[bi * blocks + blk] = page;
    for (let o = 0; o < P && blk * P + o < s; o++) pagedK.set(k.data.subarray((bi * s + blk * P + o) * d, (bi * s + blk * P + o + 1) * d), (page * P + o) * d);
  }
  const pagedCache = quantizeKeysFp8({ data: pagedK, shape: [numPages, P, d] });
  const seqLens = Int32Array.from([s, s]);
  const paged = indexerScores(q, pagedCache, w, { ...opts, blockTable: { data: table, shape: [b, blocks] }, seqLens });
  const causal = indexerScores(q, k, w, { ...opts, causalOffset: s - t });
  assert.deepEqual(paged.data, causal.data, 'paged = contiguous causal');
  // A window: -Infinity outside, the contiguous scores inside.
  const start = Int32Array.from([0, 100, 650, 3]), end = Int32Array.from([700, 101, 700, 3]);
  const win = indexerScores(q, k, w, { ...opts, window: { start, end } });
  for (let r = 0; r < b * t; r++) for (let j = 0; j < s; j++) {
    assert.equal(win.data[r * s + j], j >= start[r] && j < end[r] ? full.data[r * s + j] : -Infinity, `row ${r} key ${j}`);
  }
});

test('fp8 on the pool: bit-identical to one thread, decode rows split over key blocks', async () => {
  const { q, k, w } = inputs(1, 1, 64, 128, 3000, 31);
  const cache = quantizeKeysFp8(k, { shared: true });
  const pool = createPool({ threads: 2 });
  try {
    const one = indexerScores(q, cache, w, { precision: 'fp8' });
    const two = await pool.indexerScores(q, cache, w, { precision: 'fp8' });
    assert.deepEqual(two.data, one.data);
  } finally {
    await pool.close();
  }
});

test('fp8 top-k recall against float32 on random normal inputs (k = 256 of 8192)', () => {
  const { q, k, w } = inputs(1, 4, 64, 128, 8192, 41);
  const exact = topk(indexerScores(q, k, w), 256);
  const fp8 = topk(indexerScores(q, k, w, { precision: 'fp8' }), 256);
  let hits = 0;
  for (let r = 0; r < 4; r++) {
    const want = new Set(exact.indices.data.subarray(r * 256, (r + 1) * 256));
    for (const j of fp8.indices.data.subarray(r * 256, (r + 1) * 256)) if (want.has(j)) hits++;
  }
  const recall = hits / (4 * 256);
  assert.ok(recall >= 0.9, `recall ${recall}`);
  console.log(`# fp8 recall@256 of 8192: ${recall}`);
});

test('fp8 errors: d > 128, a Hadamard mismatch with the keys, options of other precisions, bad FP8 keys', () => {
  const { q, k, w } = inputs(1, 1, 2, 16, 4, 1);
  const cache = quantizeKeysFp8(k);
  assert.throws(() => indexerScores(q, cache, w), /k: FP8 keys \(quantizeKeysFp8\) need precision 'fp8', got precision 'float32'/);
  assert.throws(() => indexerScores(q, cache, w, { precision: 'fp8', hadamard: false }), /hadamard: the FP8 keys were quantized with hadamard true/);
  assert.throws(() => indexerScores(q, k, w, { hadamard: true }), /only precision 'fp8' takes them/);
  const big = inputs(1, 1, 1, 256, 2, 1);
  assert.throws(() => indexerScores(big.q, big.k, big.w, { precision: 'fp8' }), /precision 'fp8': needs d <= 128/);
  assert.throws(() => quantizeKeysFp8(big.k), /FP8 keys need d <= 128/);
  const odd = inputs(1, 1, 1, 12, 4, 1);
  assert.throws(() => indexerScores(odd.q, odd.k, odd.w, { precision: 'fp8' }), /hadamard: needs d a power of 2, got d = 12/);
  assert.throws(() => indexerScores(q, { ...cache, shape: [1, 4, 19] }, w, { precision: 'fp8' }), /k\.data: expected length/);
  assert.throws(() => indexerScores(q, { ...cache, shape: [1, 4, 140] }, w, { precision: 'fp8' }), /the last dim is d \+ 4 with 1 <= d <= 128/);
});
