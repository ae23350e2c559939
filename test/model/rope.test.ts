// RoPE as DeepSeek-V3.2's precompute_freqs_cis / apply_rotary_emb compute it
// (src/model/rope.ts): frequencies against a float64 restatement of YaRN,
// the rotation against complex multiplication in float64, the two layouts
// the same arithmetic on permuted pairs, and the non-interleaved layout
// the one the indexer's own kernel rotates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ropeFrequencies, ropeRows, mlaSoftmaxScale, type YarnSettings } from '../../src/model/rope.js';
import { prepareRows } from '../../src/indexer/projection.js';
import { rng } from '../../src/cli/demo-data.js';

/** YaRN's inverse frequencies in float64, straight from the formulas. */
function freqsRef(dim: number, theta: number, yarn?: YarnSettings): number[] {
  const base = Array.from({ length: dim / 2 }, (_, i) => 1 / theta ** ((2 * i) / dim));
  if (!yarn) return base;
  const corr = (rot: number) => (dim * Math.log(yarn.originalSeqLen / (rot * 2 * Math.PI))) / (2 * Math.log(theta));
  const low = Math.max(Math.floor(corr(yarn.betaFast)), 0);
  let high = Math.min(Math.ceil(corr(yarn.betaSlow)), dim - 1);
  if (low === high) high += 0.001;
  return base.map((f, i) => {
    const smooth = 1 - Math.min(1, Math.max(0, (i - low) / (high - low)));
    return (f / yarn.factor) * (1 - smooth) + f * smooth;
  });
}

const yarnArb = fc.record({
  factor: fc.double({ min: 1, max: 64, noNaN: true }),
  originalSeqLen: fc.integer({ min: 16, max: 8192 }),
  betaFast: fc.integer({ min: 2, max: 64 }),
  betaSlow: fc.integer({ min: 1, max: 2 }),
});

test("ropeFrequencies: theta^(-2i/d), and YaRN blended by the ramp, within float32 rounding (DeepSeek rounds the exponent to float32) of the float64 formulas", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 64 }), fc.constantFrom(10000, 50000, 1e6), fc.option(yarnArb, { nil: undefined }), (half, theta, yarn) => {
      const got = ropeFrequencies(2 * half, theta, yarn);
      const want = freqsRef(2 * half, theta, yarn);
      // DeepSeek rounds the exponent 2i/d to float32 first: an error of ln(theta) times its rounding, then a few of the result's own.
      const tol = 6e-8 * Math.log(theta) + 4e-7;
      for (let i = 0; i < half; i++) assert.ok(Math.abs(got[i] - want[i]) <= tol * want[i], `freq ${i}: ${got[i]} vs ${want[i]}`);
    }),
  );
  // DeepSeek-V3.2's own settings: the first pairs keep theirs, the last are divided by 40.
  const ds = ropeFrequencies(64, 10000, { factor: 40, originalSeqLen: 4096, betaFast: 32, betaSlow: 1 });
  assert.equal(ds[0], 1);
  assert.equal(ds[31], Math.fround(Math.fround(1 / Math.fround(10000 ** Math.fround(62 / 64))) / 40));
  assert.throws(() => ropeFrequencies(7, 10000), /ropeDim: expected a positive even integer, got 7/);
  assert.throws(() => ropeFrequencies(8, 10000, { factor: 0, originalSeqLen: 4096, betaFast: 32, betaSlow: 1 }), /rope\.factor: expected a finite number > 0, got 0/);
});

test('mlaSoftmaxScale: d^-0.5, times (0.1 * mscale * ln(factor) + 1)^2 with YaRN', () => {
  assert.equal(mlaSoftmaxScale(192), 192 ** -0.5);
  const m = 0.1 * Math.log(40) + 1;
  assert.equal(mlaSoftmaxScale(192, { factor: 40, mscale: 1 }), 192 ** -0.5 * m * m);
});

function randomRows(n: number, width: number, seed: number): Float32Array {
  const next = rng(seed);
  return Float32Array.from({ length: n * width }, () => next() * 4 - 2);
}

test('ropeRows: each pair times cos + i sin of position * freq (float64 reference), only the rotated floats change', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 6 }), fc.boolean(), fc.integer(),
      (n, heads, half, extra, interleaved, seed) => {
        const ropeDim = 2 * half, offset = extra % 3, width = ropeDim + extra;
        const x = randomRows(n * heads, width, seed), y = x.slice();
        const positions = Int32Array.from({ length: n }, (_, r) => r * 37 + (seed & 7));
        const freqs = ropeFrequencies(ropeDim, 10000, { factor: 4, originalSeqLen: 64, betaFast: 32, betaSlow: 1 });
        ropeRows({ x: y, positions, freqs, heads, width, offset, ropeDim, interleaved }, 0, n);
        for (let r = 0; r < n; r++) {
          for (let h = 0; h < heads; h++) {
            const head = (r * heads + h) * width;
            for (let e = 0; e < width; e++) {
              if (e < offset || e >= offset + ropeDim) assert.equal(y[head + e], x[head + e], 'outside the rotated dims');
            }
            for (let i = 0; i < half; i++) {
              const a = head + offset + (interleaved ? 2 * i : i), b = a + (interleaved ? 1 : half);
              const angle = Math.fround(positions[r] * freqs[i]);
              const re = x[a] * Math.cos(angle) - x[b] * Math.sin(angle), im = x[a] * Math.sin(angle) + x[b] * Math.cos(angle);
              const scale = Math.abs(x[a]) + Math.abs(x[b]);
              assert.ok(Math.abs(y[a] - re) <= 3e-7 * scale && Math.abs(y[b] - im) <= 3e-7 * scale, `row ${r} head ${h} pair ${i}`);
            }
          }
        }
      },
    ),
  );
});

test('ropeRows: the non-interleaved layout is the interleaved arithmetic on (i, i + d/2) pairs, bit for bit; position 0 is the identity', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 16 }), fc.integer(), (n, half, seed) => {
      const d = 2 * half;
      const x = randomRows(n, d, seed);
      const inter = new Float32Array(n * d);
      for (let r = 0; r < n; r++) for (let i = 0; i < half; i++) {
        inter[r * d + 2 * i] = x[r * d + i];
        inter[r * d + 2 * i + 1] = x[r * d + half + i];
      }
      const positions = Int32Array.from({ length: n }, (_, r) => 1000 * r + 3);
      const freqs = ropeFrequencies(d, 10000);
      const args = { positions, freqs, heads: 1, width: d, offset: 0, ropeDim: d };
      ropeRows({ ...args, x, interleaved: false }, 0, n);
      ropeRows({ ...args, x: inter, interleaved: true }, 0, n);
      for (let r = 0; r < n; r++) for (let i = 0; i < half; i++) {
        assert.equal(x[r * d + i], inter[r * d + 2 * i]);
        assert.equal(x[r * d + half + i], inter[r * d + 2 * i + 1]);
      }
      const still = randomRows(1, d, seed), before = still.slice();
      ropeRows({ ...args, positions: Int32Array.of(0), x: still, interleaved: true }, 0, 1);
      for (let e = 0; e < d; e++) assert.ok(still[e] === before[e], `position 0, dim ${e}`);
    }),
  );
});

test("ropeRows non-interleaved is the indexer's own RoPE (src/indexer/projection.ts) on query heads, within float32 rounding", () => {
  const n = 3, h = 2, d = 16, ropeDim = 8;
  const freqs = ropeFrequencies(ropeDim, 10000, { factor: 4, originalSeqLen: 256, betaFast: 32, betaSlow: 1 });
  const q = randomRows(n * h, d, 5), mine = q.slice();
  const positions = Int32Array.of(0, 7, 21);
  prepareRows({ q, k: new Float32Array(n * d), positions, gamma: new Float32Array(d), beta: new Float32Array(d), eps: 1e-6, ropeDim, freqs: Float64Array.from(freqs), h, d, rotateQ: false, rotateK: false }, 0, n);
  ropeRows({ x: mine, positions, freqs, heads: h, width: d, offset: 0, ropeDim, interleaved: false }, 0, n);
  for (let i = 0; i < q.length; i++) assert.ok(Math.abs(q[i] - mine[i]) <= 1e-6 * (1 + Math.abs(q[i])), `element ${i}: ${mine[i]} vs ${q[i]}`);
});

test("DeepSeek-V3.2's RoPE (64 dims, YaRN factor 40 over 4096) at positions to 163839: torch's precompute_freqs_cis, frequencies bit for bit, cos and sin within 1 ulp", async () => {
  const { readFileSync } = await import('node:fs');
  const { decodeNpy } = await import('../../src/io/npy.js');
  const load = (name: string) => decodeNpy(new Uint8Array(readFileSync(new URL(`../golden/mla/${name}.npy`, import.meta.url))), name).data;
  const freqs = ropeFrequencies(64, 10000, { factor: 40, originalSeqLen: 4096, betaFast: 32, betaSlow: 1 });
  assert.deepEqual(Array.from(freqs), Array.from(load('ds_freqs') as Float32Array));
  const positions = load('ds_positions') as Int32Array, cis = load('ds_cis') as Float32Array;
  // Rotating (1, 0) pairs gives (cos, sin) of each angle.
  const x = new Float32Array(positions.length * 64);
  for (let i = 0; i < x.length; i += 2) x[i] = 1;
  ropeRows({ x, positions, freqs, heads: 1, width: 64, offset: 0, ropeDim: 64, interleaved: true }, 0, positions.length);
  const ulp = (v: number) => 2 ** (Math.floor(Math.log2(Math.max(Math.abs(v), 2 ** -126))) - 23);
  for (let i = 0; i < x.length; i++) assert.ok(Math.abs(x[i] - cis[i]) <= ulp(cis[i]), `position ${positions[Math.floor(i / 64)]}, pair ${(i % 64) >> 1}: ${x[i]} vs ${cis[i]}`);
});
