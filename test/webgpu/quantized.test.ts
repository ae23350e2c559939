// The quantized indexer on the GPU: int8, int7 and fp8 scores bit-identical
// to the CPU (keys as float32 or quantized once, contiguous, ragged and
// paged, NaN blocks, multi-block d, an irrational weightScale), and the fused
// top-k over them equal to the CPU's top-k of the CPU's scores.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { indexerScores, type IndexerKeys, type IndexerScoresOptions } from '../../src/indexer/scores.js';
import { quantizeKeys, quantizeKeysFp8 } from '../../src/indexer/quantized-keys.js';
import { topk } from '../../src/topk/topk.js';
import { createDsaCache } from '../../src/cache/cache.js';
import type { Tensor } from '../../src/tensor.js';
import { rng } from '../attention/fixtures.js';
import type { IndexerTopkOptions } from '../../src/webgpu/index.js';
import { bits, gpu } from './device.js';

type F = Tensor<Float32Array>;

function normals(shape: number[], seed: number): F {
  const next = rng(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
  return { data: Float32Array.from({ length: shape.reduce((x, y) => x * y, 1) }, normal), shape };
}

/** Bit for bit, NaN matching any NaN (payloads are not part of the contract). */
function assertSameBits(got: Float32Array, want: Float32Array, label: string): void {
  assert.equal(got.length, want.length, `${label}: length`);
  const g = bits(got), w = bits(want);
  for (let i = 0; i < g.length; i++) {
    if (g[i] !== w[i] && !(Number.isNaN(got[i]) && Number.isNaN(want[i]))) assert.fail(`${label}: at ${i} got ${got[i]}, want ${want[i]}`);
  }
}

async function assertScores(q: F, k: IndexerKeys, w: F, o: IndexerScoresOptions, label: string): Promise<Float32Array> {
  const want = indexerScores(q, k, w, o);
  const got = await gpu.indexerScores(q, k, w, o);
  assert.deepEqual(got.shape, want.shape, `${label}: shape`);
  assertSameBits(got.data, want.data, label);
  return got.data;
}

/** Scatters k [b, s, d] into shuffled pages of P tokens (NaN in unused slots, -7 in unused table entries). */
function page(k: F, P: number, seed: number) {
  const [b, s, d] = k.shape;
  const blocks = Math.ceil(s / P) + 1, numPages = b * blocks + 2;
  const next = rng(seed);
  const order = Array.from({ length: numPages }, (_, i) => i).sort(() => next() - 0.5);
  const data = new Float32Array(numPages * P * d).fill(NaN);
  const table = new Int32Array(b * blocks).fill(-7);
  for (let bi = 0; bi < b; bi++) for (let blk = 0; blk * P < s; blk++) {
    const p = order[bi * blocks + blk];
    table[bi * blocks + blk] = p;
    for (let o = 0; o < P && blk * P + o < s; o++) data.set(k.data.subarray((bi * s + blk * P + o) * d, (bi * s + blk * P + o + 1) * d), (p * P + o) * d);
  }
  return { pages: { data, shape: [numPages, P, d] }, table: { data: table, shape: [b, blocks] } };
}

// d past one 128-value block, odd h, h over 64 (two GEMM blocks of pairs), tiles of several rows.
const grid: [number, number, number, number, number][] = [
  [1, 1, 1, 1, 3],
  [2, 3, 5, 20, 70],
  [1, 2, 70, 16, 9],
  [1, 3, 4, 130, 65],
  [1, 2, 64, 128, 130],
];

for (const precision of ['int8', 'int7'] as const) {
  for (const [b, t, h, d, s] of grid) {
    test(`${precision} q[${b},${t},${h},${d}] s=${s}: bit-identical to the CPU, keys float32 or quantized once, causal, rows`, async () => {
      const q = normals([b, t, h, d], s + d), k = normals([b, s, d], s + d + 1), w = normals([b, t, h], s + d + 2);
      const weightScale = h ** -0.5 * d ** -0.5;
      const base = { precision, weightScale };
      await assertScores(q, k, w, base, 'float keys');
      await assertScores(q, quantizeKeys(k), w, { ...base, causalOffset: s - t }, 'quantized keys, causal');
      if (b * t > 1) await assertScores(q, k, w, { ...base, rows: [1, b * t] }, 'rows');
    });
  }
}

test('int8: NaN and Infinity blocks, zero blocks, ragged batches and a paged cache, bit-identical to the CPU', async () => {
  const [b, t, h, d, s] = [2, 3, 3, 140, 80];
  const q = normals([b, t, h, d], 1), k = normals([b, s, d], 2), w = normals([b, t, h], 3);
  q.data[(1 * h + 1) * d + 130] = NaN; // row 1, head 1, second block
  q.data.fill(0, (2 * h) * d, (2 * h + 1) * d); // row 2, head 0: zeros
  k.data[5 * d + 3] = Infinity;
  k.data.fill(0, 9 * d, 10 * d);
  w.data[4 * h + 2] = NaN;
  await assertScores(q, k, w, { precision: 'int8' }, 'NaN, Infinity, zeros');
  // Paged: float keys quantized from the used pages only, or pages quantized once.
  const seqLens = Int32Array.from([s, t + 20]);
  const { pages, table } = page(k, 16, 4);
  for (const precision of ['int8', 'int7'] as const) {
    const want = await assertScores(q, k, w, { precision, seqLens }, `${precision} seqLens`);
    const paged = await assertScores(q, pages, w, { precision, seqLens, blockTable: table, maxLen: s }, `${precision} paged float keys`);
    assertSameBits(paged, want, `${precision} paged = contiguous`);
    await assertScores(q, quantizeKeys(pages), w, { precision, seqLens, blockTable: table }, `${precision} paged quantized keys`);
  }
  const ragged = { cuSeqlensQ: Int32Array.from([0, 2, 3, 6]), cuSeqlensK: Int32Array.from([0, 70, 71, 160]) };
  const packedQ = { data: q.data, shape: [1, 6, h, d] }, packedK = { data: k.data, shape: [1, 160, d] }, packedW = { data: w.data, shape: [1, 6, h] };
  await assertScores(packedQ, packedK, packedW, { precision: 'int8', ragged }, 'ragged');
  await assertScores(packedQ, quantizeKeys(packedK), packedW, { precision: 'int7', ragged }, 'ragged quantized keys');
  // Everything on the GPU: int8 keys as GpuTensors, the scores left there.
  const kq = quantizeKeys(k);
  const onGpu = { values: gpu.upload(kq.values), scales: gpu.upload(kq.scales) };
  const resident = await gpu.indexerScores(gpu.upload(q), onGpu, gpu.upload(w), { precision: 'int8', resident: true });
  assertSameBits((await gpu.read(resident)).data as Float32Array, indexerScores(q, kq, w, { precision: 'int8' }).data, 'GPU-resident int8 keys');
});

for (const [b, t, h, d, s] of [[1, 1, 1, 16, 5], [2, 3, 5, 64, 70], [1, 2, 64, 128, 130], [1, 2, 3, 20, 40]] as const) {
  test(`fp8 q[${b},${t},${h},${d}] s=${s}: bit-identical to the CPU, keys float32 or FP8 (132-byte pages), ue8m0, causal`, async () => {
    const q = normals([b, t, h, d], s + d), k = normals([b, s, d], s + d + 1), w = normals([b, t, h], s + d + 2);
    const hadamard = (d & (d - 1)) === 0;
    const base = { precision: 'fp8' as const, weightScale: h ** -0.5 * d ** -0.5, hadamard };
    await assertScores(q, k, w, base, 'float keys');
    await assertScores(q, quantizeKeysFp8(k, { hadamard }), w, { ...base, causalOffset: s - t }, 'FP8 keys, causal');
    await assertScores(q, k, w, { ...base, scaleFormat: 'ue8m0' }, 'ue8m0 float keys');
    await assertScores(q, quantizeKeysFp8(k, { hadamard, scaleFormat: 'ue8m0' }), w, { ...base, scaleFormat: 'ue8m0' }, 'ue8m0 FP8 keys');
  });
}

test('fp8: NaN blocks, ragged batches and a paged FP8 cache, bit-identical to the CPU', async () => {
  const [b, t, h, d, s] = [2, 2, 4, 32, 100];
  const q = normals([b, t, h, d], 5), k = normals([b, s, d], 6), w = normals([b, t, h], 7);
  q.data[(1 * h + 2) * d + 7] = NaN;
  k.data[11 * d] = -Infinity;
  await assertScores(q, k, w, { precision: 'fp8' }, 'NaN, Infinity');
  const seqLens = Int32Array.from([s, t + 30]);
  const { pages, table } = page(k, 8, 8);
  const want = await assertScores(q, k, w, { precision: 'fp8', seqLens }, 'seqLens');
  const cached = quantizeKeysFp8(pages as F);
  const paged = await assertScores(q, cached, w, { precision: 'fp8', seqLens, blockTable: table }, 'paged FP8 keys');
  assertSameBits(paged.subarray(0, want.length), want, 'paged = contiguous');
  await assertScores(q, pages, w, { precision: 'fp8', seqLens, blockTable: table, hadamard: false }, 'paged float keys');
  const ragged = { cuSeqlensQ: Int32Array.from([0, 1, 4]), cuSeqlensK: Int32Array.from([0, 60, 200]) };
  const packed = { q: { data: q.data, shape: [1, 4, h, d] }, k: { data: k.data, shape: [1, 200, d] }, w: { data: w.data, shape: [1, 4, h] } };
  await assertScores(packed.q, quantizeKeysFp8(packed.k), packed.w, { precision: 'fp8', ragged }, 'ragged FP8 keys');
  // FP8 keys on the GPU: the cache's bytes as a uint8 GpuTensor.
  const onGpu = { ...cached, data: gpu.upload({ data: cached.data, shape: [cached.data.length] }) };
  const resident = await gpu.indexerScores(q, onGpu, w, { precision: 'fp8', seqLens, blockTable: table });
  assertSameBits(resident.data, paged, 'FP8 keys as a GpuTensor');
});

test('the fused top-k in int8, int7 and fp8, causal, ragged and paged: the CPU top-k of the CPU scores, bit for bit', async () => {
  const [b, t, h, d, s] = [2, 3, 4, 64, 90];
  const q = normals([b, t, h, d], 11), k = normals([b, s, d], 12), w = normals([b, t, h], 13);
  const seqLens = Int32Array.from([s, t + 40]);
  const { pages, table } = page(k, 16, 14);
  const ragged = { cuSeqlensQ: Int32Array.from([0, 2, 6]), cuSeqlensK: Int32Array.from([0, 50, 180]) };
  const packed = { q: { data: q.data, shape: [1, 6, h, d] }, k: { data: k.data, shape: [1, 180, d] }, w: { data: w.data, shape: [1, 6, h] } };
  const cases: [string, F, IndexerKeys, F, IndexerScoresOptions, object][] = [
    ['int8 causal', q, k, w, { precision: 'int8', causalOffset: s - t }, { causalOffset: s - t }],
    ['int7 paged quantized', q, quantizeKeys(pages), w, { precision: 'int7', seqLens, blockTable: table }, { seqLens }],
    ['int8 ragged', packed.q, packed.k, packed.w, { precision: 'int8', ragged }, { ragged }],
    ['fp8 paged FP8 keys', q, quantizeKeysFp8(pages), w, { precision: 'fp8', seqLens, blockTable: table }, { seqLens }],
    ['fp8 float keys', q, k, w, { precision: 'fp8', weightScale: 0.1 }, {}],
  ];
  for (const [label, qq, kk, ww, scoreOpts, topOpts] of cases) {
    for (const topK of [5, 200]) {
      const scores = indexerScores(qq, kk, ww, scoreOpts);
      const want = topk(scores, topK, topOpts);
      const got = await gpu.indexerTopk(qq, kk, ww, topK, { ...scoreOpts, ...topOpts } as IndexerTopkOptions);
      assert.deepEqual(got.indices, want.indices, `${label} k=${topK}: indices`);
      assert.deepEqual(bits(got.values.data), bits(want.values.data), `${label} k=${topK}: values`);
    }
  }
});

test('a decode step\'s selection on the GPU: the fused top-k over a createDsaCache FP8 and int8 cache (its pages, block table, lengths) is the CPU\'s', async () => {
  for (const keyForm of ['fp8', 'int8'] as const) {
    const [h, d, t] = [4, 32, 1];
    const cache = createDsaCache({ batch: 2, pages: 12, pageSize: 8, indexerDim: d, keyForm, kvDim: 4 });
    cache.append(0, { keys: normals([37, d], 1), kv: normals([37, 1, 4], 2) });
    cache.append(1, { keys: normals([20, d], 3), kv: normals([20, 1, 4], 4) });
    const q = normals([2, t, h, d], 5), w = normals([2, t, h], 6);
    const opts = { precision: keyForm, blockTable: cache.blockTable, seqLens: cache.lengths, weightScale: h ** -0.5 * d ** -0.5 };
    const want = topk(indexerScores(q, cache.keys, w, opts), 16, { seqLens: cache.lengths });
    const got = await gpu.indexerTopk(q, cache.keys, w, 16, opts);
    assert.deepEqual(got.indices, want.indices, `${keyForm}: indices`);
    assert.deepEqual(bits(got.values.data), bits(want.values.data), `${keyForm}: values`);
  }
});
