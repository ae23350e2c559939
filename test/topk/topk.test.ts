import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { topk, type TopkOptions } from '../../src/topk/topk.js';
import { generateMask, maskFromThreshold } from '../../src/index.js';
import { createPool } from '../../src/pool/index.js';
import { DEFAULT_MASK_VALUE, type MaskData, type Tensor } from '../../src/tensor.js';

type Scores = Tensor<Float32Array>;

/** A seeded generator, so grid cases are the same on every run. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/** Small integer-valued floats (many ties), with -0, -Infinity, Infinity and (optionally) NaN mixed in. */
function tiedScores(b: number, t: number, s: number, seed: number, levels = 8, nan = false): Scores {
  const rand = rng(seed);
  const data = new Float32Array(b * t * s);
  for (let i = 0; i < data.length; i++) {
    const u = rand();
    data[i] = u < 0.02 ? -Infinity : u < 0.03 ? Infinity : u < 0.05 ? -0 : nan && u < 0.07 ? Number.NaN : Math.floor(rand() * levels) - levels / 2;
  }
  return { data, shape: [b, t, s] };
}

function normalScores(b: number, t: number, s: number, seed: number): Scores {
  const rand = rng(seed);
  const data = new Float32Array(b * t * s);
  for (let i = 0; i < data.length; i++) data[i] = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  return { data, shape: [b, t, s] };
}

/** The radix kernel, with the SIMD streaming pass and without, equals the sort reference. */
function assertSame(scores: Scores, k: number, opts: TopkOptions, label: string): void {
  const ref = topk(scores, k, { ...opts, kernel: 'sort' });
  for (const simd of [true, false]) {
    const fast = topk(scores, k, { ...opts, simd });
    assert.deepEqual(fast.indices, ref.indices, `${label} simd=${simd}: indices`);
    assert.deepEqual(fast.values, ref.values, `${label} simd=${simd}: values`);
  }
}

/** Rows of `indices` as sorted sets, for comparing selections whose slot order may differ. */
function rowSets(indices: Int32Array, k: number): number[][] {
  const sets: number[][] = [];
  for (let r = 0; r < indices.length / k; r++) sets.push([...indices.subarray(r * k, (r + 1) * k)].sort((a, b) => a - b));
  return sets;
}

test('matches the sort reference on a grid of shapes with ties, infinities and -0', () => {
  const grid: [number, number, number, number][] = [
    [1, 1, 1, 1],
    [1, 3, 7, 3],
    [2, 3, 100, 10],
    [1, 4, 1000, 64],
    [2, 2, 5000, 300],
    [1, 2, 4096, 4096],
    [1, 2, 3000, 2999],
    [1, 1, 70000, 2048],
  ];
  for (const [b, t, s, k] of grid) {
    const label = `scores[${b},${t},${s}] k=${k}`;
    assertSame(tiedScores(b, t, s, s + k), k, {}, `${label} ties`);
    assertSame(tiedScores(b, t, s, s * k, 100000), k, {}, `${label} wide`);
    assertSame(normalScores(b, t, s, s ^ k), k, {}, `${label} normal`);
  }
});

test('property: equals the sort reference for any scores, k, causal offset, nan mode, with and without SIMD', () => {
  const value = fc.oneof(
    { weight: 8, arbitrary: fc.integer({ min: -4, max: 4 }).map((v) => v) },
    { weight: 1, arbitrary: fc.constantFrom(-Infinity, Infinity, -0, Number.NaN, 3.4e38, -1e-45) },
  );
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 1, max: 1500 }),
      fc.integer({ min: 1, max: 2000 }),
      fc.option(fc.integer({ min: -5, max: 1600 })),
      fc.boolean(),
      fc.boolean(),
      fc.integer(),
      (b, t, s, k, causalOffset, sorted, simd, seed) => {
        const rand = rng(seed);
        const data = new Float32Array(b * t * s);
        const samples = fc.sample(value, { numRuns: 64, seed });
        for (let i = 0; i < data.length; i++) data[i] = samples[Math.floor(rand() * samples.length)];
        const scores = { data, shape: [b, t, s] };
        const opts: TopkOptions = { nan: 'lowest', sorted, ...(causalOffset === null ? {} : { causalOffset }) };
        const fast = topk(scores, k, { ...opts, simd });
        const ref = topk(scores, k, { ...opts, sorted: true, kernel: 'sort' });
        if (sorted) {
          assert.deepEqual(fast.indices, ref.indices);
          assert.deepEqual(fast.values, ref.values);
        } else {
          assert.deepEqual(rowSets(fast.indices.data, k), rowSets(ref.indices.data, k));
          for (let i = 0; i < fast.indices.data.length; i++) {
            const j = fast.indices.data[i];
            const row = Math.floor(i / k);
            assert.ok(Object.is(fast.values.data[i], j < 0 ? -Infinity : data[row * s + j]));
          }
        }
      },
    ),
    { numRuns: 150 },
  );
});

test('rows whose sample misleads the threshold estimate fall back and stay exact', () => {
  // High scores exactly where the estimate samples (64 blocks of 16 keys,
  // spread evenly), low ones elsewhere: the estimate admits 1024 keys,
  // fewer than k.
  for (const [s, k] of [[4096, 2000], [8192, 3000]]) {
    const data = new Float32Array(2 * s).map((_, j) => (j * 7) % 5);
    for (let row = 0; row < 2; row++) {
      for (let block = 0; block < 64; block++) {
        const start = Math.floor((block * (s - 16)) / 63);
        for (let j = start; j < start + 16; j++) data[row * s + j] = 10 + row;
      }
    }
    assertSame({ data, shape: [1, 2, s] }, k, {}, `scores[1,2,${s}] k=${k} sampled blocks high`);
  }
});

test('all-equal rows take the first k keys', () => {
  const s = 10000;
  const { indices, values } = topk({ data: new Float32Array(s).fill(1.5), shape: [1, 1, s] }, 100);
  assert.deepEqual([...indices.data], Array.from({ length: 100 }, (_, i) => i));
  assert.ok(values.data.every((v) => v === 1.5));
});

test('-0 and +0 are equal values: ties by key index', () => {
  const { indices } = topk({ data: new Float32Array([-1, 0, -0, 0, -0]), shape: [1, 1, 5] }, 4);
  assert.deepEqual([...indices.data], [1, 2, 3, 4]);
});

test('k > s pads with index -1 and value -Infinity; -Infinity scores are ordinary', () => {
  const { values, indices } = topk({ data: new Float32Array([-Infinity, 2, -Infinity]), shape: [1, 1, 3] }, 5);
  assert.deepEqual([...indices.data], [1, 0, 2, -1, -1]);
  assert.deepEqual([...values.data], [2, -Infinity, -Infinity, -Infinity, -Infinity]);
  assert.deepEqual(indices.shape, [1, 1, 5]);
});

test('NaN is a RangeError naming batch, query and key; nan: lowest ranks it below -Infinity', () => {
  const data = new Float32Array(2 * 3 * 50).fill(1);
  data[(1 * 3 + 2) * 50 + 17] = Number.NaN;
  data[(1 * 3 + 2) * 50 + 40] = Number.NaN;
  const scores = { data, shape: [2, 3, 50] };
  for (const simd of [true, false]) {
    assert.throws(() => topk(scores, 4, { simd }), (e: unknown) => e instanceof RangeError && /NaN at \[1, 2, 17\]/.test(e.message) && /nan: 'lowest'/.test(e.message));
  }
  // A NaN in a row not asked for, or at a key that is not eligible, is never read.
  assert.doesNotThrow(() => topk(scores, 4, { rows: [0, 5] }));
  assert.doesNotThrow(() => topk(scores, 4, { causalOffset: 14 }));
  const row = topk({ data: new Float32Array([Number.NaN, -Infinity, Number.NaN, 1]), shape: [1, 1, 4] }, 4, { nan: 'lowest' });
  assert.deepEqual([...row.indices.data], [3, 1, 0, 2]);
});

test('causal offset: row ti selects only keys j <= ti + offset, padding the rest', () => {
  const s = 6;
  const data = Float32Array.from({ length: 3 * s }, (_, i) => (i % s) * 1);
  const { indices } = topk({ data, shape: [1, 3, s] }, 3, { causalOffset: 0 });
  assert.deepEqual([...indices.data], [0, -1, -1, 1, 0, -1, 2, 1, 0]);
  for (const offset of [-3, 0, 100, 2000]) {
    assertSame(normalScores(2, 64, 3000, offset + 9), 256, { causalOffset: offset }, `scores[2,64,3000] k=256 causal ${offset}`);
  }
});

/** The same eligibility in all three mask forms. */
function maskForms(b: number, t: number, s: number, keep: (row: number, j: number) => boolean): Tensor<MaskData>[] {
  const words = (s + 31) >>> 5;
  const additive = new Float32Array(b * t * s).fill(DEFAULT_MASK_VALUE);
  const bool = new Uint8Array(b * t * s);
  const bits = new Uint32Array(b * t * words);
  for (let r = 0; r < b * t; r++) {
    for (let j = 0; j < s; j++) {
      if (!keep(r, j)) continue;
      additive[r * s + j] = 0;
      bool[r * s + j] = 1;
      bits[r * words + (j >>> 5)] |= 1 << (j & 31);
    }
  }
  return [
    { data: additive, shape: [b, t, s] },
    { data: bool, shape: [b, t, s] },
    { data: bits, shape: [b, t, words] },
  ];
}

test('mask eligibility (additive, bool, bits) equals the reference and the same causal limit', () => {
  for (const [b, t, s, k, density] of [
    [1, 3, 100, 10, 0.5],
    [2, 4, 3000, 256, 0.9],
    [1, 4, 5000, 1000, 0.1],
    [1, 2, 777, 900, 0.7],
  ] as const) {
    const rand = rng(s);
    const keep = new Uint8Array(b * t * s).map(() => (rand() < density ? 1 : 0));
    const scores = tiedScores(b, t, s, s + 1, 16);
    const results = maskForms(b, t, s, (r, j) => keep[r * s + j] === 1).map((mask) => {
      assertSame(scores, k, { mask }, `scores[${b},${t},${s}] k=${k} mask ${mask.data.constructor.name}`);
      return topk(scores, k, { mask });
    });
    assert.deepEqual(results[1], results[0]);
    assert.deepEqual(results[2], results[0]);
    for (const [r, j] of results[0].indices.data.entries()) if (j >= 0) assert.equal(keep[Math.floor(r / k) * s + j], 1);
  }
  const [b, t, s, offset] = [2, 8, 1000, 500];
  const scores = normalScores(b, t, s, 3);
  const byOffset = topk(scores, 600, { causalOffset: offset });
  for (const mask of maskForms(b, t, s, (r, j) => j <= (r % t) + offset)) assert.deepEqual(topk(scores, 600, { mask }), byOffset);
});

test('rows [start, end) give exactly those rows of the full result', () => {
  const scores = tiedScores(2, 5, 2000, 11);
  const full = topk(scores, 50);
  for (const [start, end] of [[0, 10], [3, 7], [9, 10], [4, 4]]) {
    const part = topk(scores, 50, { rows: [start, end] });
    assert.deepEqual(part.indices.shape, [end - start, 50]);
    assert.deepEqual(part.indices.data, full.indices.data.slice(start * 50, end * 50));
    assert.deepEqual(part.values.data, full.values.data.slice(start * 50, end * 50));
  }
});

test('sorted: false selects the same set', () => {
  const scores = tiedScores(2, 3, 4000, 5, 6);
  const a = topk(scores, 700);
  const b = topk(scores, 700, { sorted: false });
  assert.deepEqual(rowSets(b.indices.data, 700), rowSets(a.indices.data, 700));
});

test('property: maskFromThreshold(scores, topk values, exact) equals generateMask(topk indices)', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 2 }),
      fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 1, max: 400 }),
      fc.integer({ min: 1, max: 450 }),
      fc.integer({ min: 2, max: 40 }),
      fc.integer(),
      (b, t, s, k, levels, seed) => {
        const scores = tiedScores(b, t, s, seed, levels);
        const { values, indices } = topk(scores, k);
        assert.deepEqual(maskFromThreshold(scores, values, { mode: 'exact', form: 'bool' }), generateMask(indices, s, { form: 'bool' }));
      },
    ),
    { numRuns: 100 },
  );
});

test('checks its arguments before computing', () => {
  const scores = normalScores(1, 2, 8, 1);
  assert.throws(() => topk({ data: new Float64Array(16), shape: [1, 2, 8] } as never, 2), TypeError);
  assert.throws(() => topk({ data: scores.data, shape: [2, 8] }, 2), /scores.shape: expected \[b, t, s\]/);
  assert.throws(() => topk(scores, 0), /k: expected a positive integer, got number 0/);
  assert.throws(() => topk(scores, 2, { nan: 'max' as never }), /nan: expected one of 'error', 'lowest'/);
  assert.throws(() => topk(scores, 2, { causalOffset: 0.5 }), /causalOffset: expected an integer/);
  assert.throws(() => topk(scores, 2, { rows: [1, 3] }), /rows: expected \[start, end\) with 0 <= start <= end <= 2, got \[1, 3\]/);
  assert.throws(() => topk(scores, 2, { mask: { data: new Int32Array(16), shape: [1, 2, 8] } as never }), TypeError);
  assert.throws(() => topk(scores, 2, { mask: { data: new Uint8Array(14), shape: [1, 2, 7] } }), /mask s = 7 must equal scores s = 8/);
  assert.throws(() => topk(scores, 2, { mask: { data: new Uint32Array(4), shape: [1, 2, 2] } }), /mask words = 2 must equal ceil\(scores s \/ 32\) = 1/);
  assert.throws(() => topk(scores, 1000, { maxBytes: 1000 }), (e: unknown) => e instanceof RangeError && /needs .* over maxBytes/.test(e.message) && /rows: \[start, end\)/.test(e.message));
});

test('pool: bit-identical to the single-threaded call, errors reject', async () => {
  const pool = createPool({ threads: 2 });
  try {
    const scores = tiedScores(2, 9, 3000, 21, 12);
    for (const opts of [{}, { sorted: false }, { causalOffset: 1000 }, { rows: [3, 17] as [number, number] }, { mask: maskForms(2, 9, 3000, (r, j) => (r + j) % 3 !== 0)[2] }]) {
      assert.deepEqual(await pool.topk(scores, 500, opts), topk(scores, 500, opts));
    }
    const withNaN = normalScores(1, 4, 100, 2);
    withNaN.data[2 * 100 + 5] = Number.NaN;
    await assert.rejects(pool.topk(withNaN, 3), (e: unknown) => e instanceof RangeError && /NaN at \[0, 2, 5\]/.test(e.message));
    await assert.rejects(pool.topk(withNaN, -1), RangeError);
  } finally {
    await pool.close();
  }
});
