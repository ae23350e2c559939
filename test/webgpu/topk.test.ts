import { test } from 'node:test';
import assert from 'node:assert/strict';
import { topk, type TopkOptions } from '../../src/topk/topk.js';
import { generateMask } from '../../src/mask/masks.js';
import type { Tensor } from '../../src/tensor.js';
import { rng } from '../../src/cli/demo-data.js';
import { bits, gpu } from './device.js';

type Scores = Tensor<Float32Array>;

/** Few distinct levels (many ties), with -0, +-Infinity and (optionally) NaN mixed in. */
function tiedScores(b: number, t: number, s: number, seed: number, nan = false): Scores {
  const next = rng(seed);
  const data = new Float32Array(b * t * s);
  for (let i = 0; i < data.length; i++) {
    const u = next();
    data[i] = u < 0.03 ? -Infinity : u < 0.04 ? Infinity : u < 0.08 ? -0 : u < 0.1 ? 0 : nan && u < 0.13 ? Number.NaN : Math.floor(next() * 6) - 3;
  }
  return { data, shape: [b, t, s] };
}

/** Distinct-ish values, ascending along the row: every key beats the threshold (the most compactions). */
function ascendingScores(t: number, s: number): Scores {
  const data = new Float32Array(t * s);
  for (let i = 0; i < data.length; i++) data[i] = (i % s) * 0.5 - 7;
  return { data, shape: [1, t, s] };
}

async function assertSame(scores: Scores, k: number, opts: TopkOptions, label: string): Promise<void> {
  const want = topk(scores, k, opts);
  const got = await gpu.topk(scores, k, opts);
  assert.deepEqual(got.indices, want.indices, `${label}: indices`);
  assert.deepEqual(got.values.shape, want.values.shape, `${label}: values shape`);
  assert.deepEqual(bits(got.values.data), bits(want.values.data), `${label}: value bits`);
}

// k > s, k = s, s not a multiple of the 256-key chunk, ties cut at the k-th (index passes over 1, 2 and 3 index bytes).
const grid: [number, number, number, number][] = [
  [1, 1, 1, 1],
  [1, 2, 7, 3],
  [2, 3, 37, 37],
  [1, 3, 300, 9],
  [2, 2, 1000, 64],
  [1, 2, 3000, 5],
  [1, 1, 600, 700],
  [1, 1, 70000, 300],
];

for (const [b, t, s, k] of grid) {
  test(`scores[${b},${t},${s}] k=${k}: ties, -0, infinities, NaN lowest, causal, masks and rows bit-identical to the CPU`, async () => {
    const scores = tiedScores(b, t, s, b * 7 + t * 5 + s + k);
    const withNaN = tiedScores(b, t, s, s + k, true);
    const keep = generateMask({ data: new Int32Array(b * t * 3).map((_, i) => (i * 7919) % s), shape: [b, t, 3] }, s, { form: 'bits' });
    const random = tiedScores(b, t, s, 99);
    const additive = { data: Float32Array.from(random.data, (x) => (x > -1 ? (x === 1 ? -0 : 0) : -1e30)), shape: [b, t, s] };
    const bool = { data: Uint8Array.from(random.data, (x) => (x > 0 ? 7 : 0)), shape: [b, t, s] };
    const cases: [Scores, TopkOptions][] = [
      [scores, {}],
      [scores, { sorted: false }],
      [withNaN, { nan: 'lowest' }],
      [scores, { causalOffset: s - t }],
      [scores, { causalOffset: -2 }],
      [scores, { mask: keep }],
      [scores, { mask: additive, causalOffset: 1 }],
      [withNaN, { mask: bool, nan: 'lowest' }],
      [scores, { rows: [b * t - 1, b * t] }],
    ];
    for (const [x, o] of cases) await assertSame(x, k, o, JSON.stringify({ ...o, mask: o.mask && o.mask.data.constructor.name }));
  });
}

test('scores[1,3,5000] k=100 ascending and descending: the k best at either end of the row', async () => {
  await assertSame(ascendingScores(3, 5000), 100, {}, 'ascending');
  const descending = ascendingScores(3, 5000);
  descending.data.reverse();
  await assertSame(descending, 100, {}, 'descending');
});

test('a bin of the top 11 bits with more keys than the tie list holds is refined over the row: equal keys (ties by index) and keys that differ in low bits', async () => {
  const s = 20000, next = rng(11);
  const data = new Float32Array(3 * s);
  for (let j = 0; j < s; j++) {
    data[j] = next() < 0.6 ? 1 : 0; // 12000 equal keys: the k-th is tied, the smallest indices win
    data[s + j] = 1 + Math.floor(next() * 4096) * 2 ** -20; // one 11-bit bin, distinct low bits
    data[2 * s + j] = next() < 0.5 ? 2 : 1 + j * 2 ** -23; // the bin of 2: equal keys; the bin of 1: below it
  }
  const scores = { data, shape: [1, 3, s] };
  for (const k of [1, 50, 2048, 11999, 12001]) await assertSame(scores, k, {}, `k=${k}`);
  await assertSame(scores, 300, { causalOffset: s - 2 }, 'causal');
});

test('a NaN at an eligible key is the CPU RangeError; at an ineligible one it is ignored', async () => {
  const scores = tiedScores(1, 3, 50, 3);
  scores.data[50 + 20] = Number.NaN;
  const cpu = (() => { try { topk(scores, 4); } catch (e) { return e as Error; } })()!;
  await assert.rejects(gpu.topk(scores, 4), (e: Error) => e instanceof RangeError && e.message === cpu.message);
  await assertSame(scores, 4, { causalOffset: 10 }, 'NaN past the causal limit');
});

test('bad arguments give the CPU errors', async () => {
  const scores = tiedScores(1, 2, 10, 1);
  const bad: [unknown, number, TopkOptions][] = [
    [{ data: new Float64Array(20), shape: [1, 2, 10] }, 3, {}],
    [scores, 0, {}],
    [scores, 3, { nan: 'high' as never }],
    [scores, 3, { mask: { data: new Uint32Array(2), shape: [1, 2, 2] } }],
    [scores, 3, { rows: [2, 1] }],
    [scores, 3, { sorted: 1 as never }],
  ];
  for (const [x, k, o] of bad) {
    let cpu: Error | undefined;
    try { topk(x as Scores, k, o); } catch (e) { cpu = e as Error; }
    assert.ok(cpu, `the CPU refuses ${JSON.stringify(o)}`);
    await assert.rejects(gpu.topk(x as Scores, k, o), (e: Error) => e.constructor === cpu!.constructor && e.message === cpu!.message);
  }
});

test('out buffers receive the result, and are left untouched when the call fails', async () => {
  const scores = tiedScores(1, 3, 40, 11);
  const out = { values: new Float32Array(9).fill(5), indices: new Int32Array(9).fill(5) };
  const got = await gpu.topk(scores, 3, { out });
  assert.equal(got.values.data, out.values);
  assert.deepEqual(out.indices, topk(scores, 3).indices.data);
  scores.data[45] = Number.NaN;
  out.values.fill(5);
  out.indices.fill(5);
  await assert.rejects(gpu.topk(scores, 3, { out }), RangeError);
  assert.ok(out.values.every((x) => x === 5) && out.indices.every((x) => x === 5), 'untouched');
});
