import { test } from 'node:test';
import assert from 'node:assert/strict';
import { indexerScores } from '../../src/indexer/scores.js';
import { quantizeKeys, quantizeKeysFp8 } from '../../src/indexer/quantized-keys.js';
import { topk } from '../../src/topk/topk.js';
import { generateMask } from '../../src/mask/masks.js';
import type { Tensor } from '../../src/tensor.js';
import { randomFloats } from '../attention/fixtures.js';
import type { IndexerTopkOptions } from '../../src/webgpu/index.js';
import { bits, gpu } from './device.js';
import { assertScores, reference } from '../helpers/indexer-reference.js';

type F = Tensor<Float32Array>;

function inputs(b: number, t: number, h: number, d: number, s: number, seed: number): { q: F; k: F; w: F } {
  return { q: randomFloats([b, t, h, d], seed), k: randomFloats([b, s, d], seed + 1), w: randomFloats([b, t, h], seed + 2) };
}


// Odd h, d not a multiple of 16, h over 64 (two GEMM blocks of pairs), s over one 64-key tile, batches.
const grid: [number, number, number, number, number][] = [
  [1, 1, 1, 1, 1],
  [1, 3, 4, 8, 5],
  [2, 5, 3, 20, 37],
  [1, 2, 70, 9, 10],
  [2, 3, 2, 130, 150],
  [1, 4, 64, 128, 130],
];

for (const [b, t, h, d, s] of grid) {
  test(`q[${b},${t},${h},${d}] s=${s}: scores within the CPU tolerance, causal, rows; the fused top-k equals top-k of the scores`, async () => {
    const { q, k, w } = inputs(b, t, h, d, s, b * 1000 + t * 100 + s);
    const full = await gpu.indexerScores(q, k, w, { weightScale: 0.25 });
    assert.deepEqual(full.shape, [b, t, s]);
    assertScores(full.data, reference(q, k, w, 0.25), 'full');
    const offset = s - t - 1;
    const causal = await gpu.indexerScores(q, k, w, { causalOffset: offset });
    assertScores(causal.data, reference(q, k, w, 1, offset), 'causal');
    const r0 = Math.min(1, b * t - 1);
    const part = await gpu.indexerScores(q, k, w, { weightScale: 0.25, rows: [r0, b * t] });
    assert.deepEqual(part.shape, [b * t - r0, s]);
    assert.deepEqual(part.data, full.data.subarray(r0 * s), 'rows: the same scores');

    // Fused: exactly the selection of the GPU's own scores (the same tile arithmetic) ...
    const mask = generateMask({ data: new Int32Array(b * t * 4).map((_, i) => (i * 31) % s), shape: [b, t, 4] }, s, { form: 'bits' });
    const fusedCases: [number, IndexerTopkOptions][] = [[Math.min(5, s), {}], [s + 3, { causalOffset: offset }], [2, { mask, rows: [r0, b * t] }], [4, { weightScale: 0.25, sorted: false }]];
    for (const [topK, o] of fusedCases) {
      const scores = await gpu.indexerScores(q, k, w, { weightScale: o.weightScale, causalOffset: o.causalOffset });
      const fused = await gpu.indexerTopk(q, k, w, topK, o);
      const { weightScale: _scale, ...topkOpts } = o; // the scores' option, not top-k's
      const want = topk(scores, topK, topkOpts);
      assert.deepEqual(fused.indices, want.indices, `fused ${JSON.stringify(o)}: indices`);
      assert.deepEqual(bits(fused.values.data), bits(want.values.data), `fused ${JSON.stringify(o)}: values`);
    }
    // out buffers take the result; an option indexerTopk does not have is refused by name.
    const out = { values: new Float32Array(b * t * 2), indices: new Int32Array(b * t * 2) };
    const into = await gpu.indexerTopk(q, k, w, 2, { out });
    assert.equal(into.indices.data, out.indices);
    assert.deepEqual(out.indices, (await gpu.indexerTopk(q, k, w, 2)).indices.data);
    await assert.rejects(gpu.indexerTopk(q, k, w, 2, { keyBlock: 64 } as IndexerTopkOptions), /indexerTopk: option 'keyBlock' is not supported by the WebGPU backend yet/);
    // ... and, where the float64 scores have no near-ties, the CPU's selection.
    const cpu = topk(indexerScores(q, k, w), Math.min(3, s));
    const gpuTop = await gpu.indexerTopk(q, k, w, Math.min(3, s));
    const ref = reference(q, k, w).scores;
    for (let r = 0; r < b * t; r++) {
      const sorted = Array.from(ref.subarray(r * s, (r + 1) * s)).sort((x, y) => y - x);
      const gap = Math.min(...sorted.slice(0, Math.min(4, s)).map((x, i, a) => (i ? a[i - 1] - x : Infinity)));
      if (gap > 1e-4) assert.deepEqual(gpuTop.indices.data.subarray(r * 3, r * 3 + 3), cpu.indices.data.subarray(r * 3, r * 3 + 3), `row ${r}`);
    }
  });
}

test('NaN in a query row gives NaN scores in that row only; the fused top-k raises the CPU error or ranks NaN lowest', async () => {
  const { q, k, w } = inputs(1, 2, 3, 20, 9, 5);
  q.data[20 + 1] = NaN; // row 0, head 1
  const r = await gpu.indexerScores(q, k, w);
  assert.ok(r.data.subarray(0, 9).every(Number.isNaN), 'row 0 all NaN');
  assert.ok(r.data.subarray(9).every(Number.isFinite), 'row 1 finite');
  const cpu = (() => { try { topk(indexerScores(q, k, w), 2); } catch (e) { return e as Error; } })()!;
  await assert.rejects(gpu.indexerTopk(q, k, w, 2), (e: Error) => e instanceof RangeError && e.message === cpu.message);
  const lowest = await gpu.indexerTopk(q, k, w, 2, { nan: 'lowest' });
  assert.deepEqual(lowest.indices, topk(r, 2, { nan: 'lowest' }).indices);
});

test('bad arguments give the CPU errors (shapes, options, key forms and precisions, block tables)', async () => {
  const { q, k, w } = inputs(1, 2, 3, 8, 6, 1);
  const bad: [unknown, unknown, unknown, object][] = [
    [{ data: new Float32Array(5), shape: [1, 2, 3, 8] }, k, w, {}],
    [q, { data: k.data, shape: [1, 6, 7] }, w, {}],
    [q, k, w, { weightScale: Infinity }],
    [q, quantizeKeys(k), w, {}],
    [q, quantizeKeysFp8(k), w, { precision: 'int8' }],
    [q, quantizeKeysFp8(k, { hadamard: false }), w, { precision: 'fp8', hadamard: true }],
    [q, k, w, { precision: 'int8', scaleFormat: 'ue8m0' }],
    [q, k, w, { seqLens: Int32Array.from([6]), blockTable: { data: Int32Array.from([1]), shape: [1, 1] } }],
    [q, k, w, { ragged: { cuSeqlensQ: Int32Array.from([0, 2]), cuSeqlensK: Int32Array.from([0, 5]) } }],
  ];
  for (const [a, b, c, o] of bad) {
    let cpu: Error | undefined;
    try { indexerScores(a as F, b as F, c as F, o); } catch (e) { cpu = e as Error; }
    assert.ok(cpu, `the CPU refuses case ${JSON.stringify(o)}`);
    await assert.rejects(gpu.indexerScores(a as F, b as F, c as F, o), (e: Error) => e.constructor === cpu!.constructor && e.message === cpu!.message);
    await assert.rejects(gpu.indexerTopk(a as F, b as F, c as F, 2, o), (e: Error) => e.constructor === cpu!.constructor && e.message === cpu!.message);
  }
});
