import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sparseAttention } from '../../src/attention/sparse.js';
import { sparseAttentionReference } from '../../src/attention/sparse-kernels.js';
import type { Tensor } from '../../src/tensor.js';
import { assertClose } from '../helpers/close.js';
import { randomFloats, randomIndices } from '../attention/fixtures.js';
import { gpu } from './device.js';

/** The CPU tests' tolerance against the float64 reference. */
const TOL = { rtol: 1e-5, atol: 1e-6 };

/** The float64 reference over all rows (lse = +Infinity for a query with no valid key, FlashMLA's convention). */
function reference(q: Tensor<Float32Array>, kv: Tensor<Float32Array>, indices: Tensor<Int32Array>, dV: number, smScale: number) {
  const [t, hq, dqk] = q.shape;
  const [s, hkv] = kv.shape;
  const k = indices.shape[2];
  const out = new Float64Array(t * hq * dV), lse = new Float64Array(t * hq), maxLogits = new Float64Array(t * hq);
  sparseAttentionReference({ q: q.data, kv: kv.data, indices: indices.data, out, lse, maxLogits, s, hq, hkv, dqk, dV, k, smScale, rowOffset: 0 }, 0, t);
  return { out, lse, maxLogits };
}

interface Case { t: number; hq: number; hkv: number; dqk: number; dV: number; s: number; k: number; invalid?: number; repeat?: number }
const name = (c: Case) => `q[${c.t},${c.hq},${c.dqk}] kv[${c.s},${c.hkv},${c.dqk}] idx[${c.t},${c.hkv},${c.k}] dV=${c.dV}`;

// GQA groups of 1, 3, 4 and 20 heads (two head tiles), dqk over one 64-wide chunk, k over one 32-key block, MLA's 576/512.
const grid: Case[] = [
  { t: 3, hq: 1, hkv: 1, dqk: 8, dV: 8, s: 16, k: 4 },
  { t: 5, hq: 4, hkv: 1, dqk: 19, dV: 7, s: 50, k: 33, invalid: 0.2, repeat: 0.2 },
  { t: 4, hq: 6, hkv: 2, dqk: 70, dV: 65, s: 97, k: 70, invalid: 0.1, repeat: 0.3 },
  { t: 2, hq: 20, hkv: 1, dqk: 16, dV: 16, s: 40, k: 40, repeat: 0.5 },
  { t: 2, hq: 4, hkv: 1, dqk: 576, dV: 512, s: 100, k: 64, invalid: 0.05, repeat: 0.05 },
];

for (const c of grid) {
  test(`${name(c)}: within the CPU tolerance of the float64 reference; rows; assumeUnique`, async () => {
    const q = randomFloats([c.t, c.hq, c.dqk], 1, 2);
    const kv = randomFloats([c.s, c.hkv, c.dqk], 2, 2);
    const indices = randomIndices(c.t, c.hkv, c.k, c.s, 3, c.invalid ?? 0, c.repeat ?? 0);
    const smScale = 1 / Math.sqrt(c.dqk);
    const ref = reference(q, kv, indices, c.dV, smScale);
    const got = await gpu.sparseAttention(q, kv, indices, { dV: c.dV });
    assert.deepEqual(got.out.shape, [c.t, c.hq, c.dV]);
    assertClose(got.out.data, ref.out, TOL, 'out');
    assertClose(got.lse.data, ref.lse, TOL, 'lse');
    assertClose(got.maxLogits.data, ref.maxLogits, TOL, 'maxLogits');
    const part = await gpu.sparseAttention(q, kv, indices, { dV: c.dV, rows: [1, c.t] });
    assert.deepEqual(part.out.data, got.out.data.subarray(c.hq * c.dV), 'rows: the same values');
    // assumeUnique: duplicates count as often as they are listed, as on the CPU.
    const cpu = sparseAttention(q, kv, indices, { dV: c.dV, assumeUnique: true });
    const uniq = await gpu.sparseAttention(q, kv, indices, { dV: c.dV, assumeUnique: true });
    assertClose(uniq.out.data, cpu.out.data, TOL, 'assumeUnique out vs CPU');
  });
}

test('a query with no valid key: out 0, lse +Infinity, maxLogits -Infinity (FlashMLA)', async () => {
  const q = randomFloats([3, 2, 8], 4);
  const kv = randomFloats([10, 1, 8], 5);
  const indices = { data: new Int32Array([1, 2, -1, 10, -1, -1, -1, 11, 3, 3, 3, 3]), shape: [3, 1, 4] };
  const got = await gpu.sparseAttention(q, kv, indices);
  assert.deepEqual(Array.from(got.out.data.subarray(16, 32)), Array(16).fill(0));
  assert.deepEqual(Array.from(got.lse.data.subarray(2, 4)), [Infinity, Infinity]);
  assert.deepEqual(Array.from(got.maxLogits.data.subarray(2, 4)), [-Infinity, -Infinity]);
  assert.ok(Number.isFinite(got.lse.data[0]) && Number.isFinite(got.lse.data[4]));
  // A key listed four times counts once: its weight is 1, out is its value row.
  assertClose(got.out.data.subarray(32, 40), kv.data.subarray(24, 32), TOL, 'single key');
});

test('bad arguments give the CPU errors', async () => {
  const q = randomFloats([2, 4, 8], 1), kv = randomFloats([6, 2, 8], 2), idx = randomIndices(2, 2, 3, 6, 3);
  const bad: [unknown, unknown, unknown, object][] = [
    [{ data: q.data, shape: [2, 3, 8] }, kv, idx, {}],
    [q, kv, { data: idx.data, shape: [2, 1, 6] }, {}],
    [q, kv, idx, { dV: 9 }],
    [q, kv, idx, { smScale: NaN }],
    [q, kv, { data: new Float32Array(12), shape: [2, 2, 3] }, {}],
  ];
  for (const [a, b, c, o] of bad) {
    let cpu: Error | undefined;
    try { sparseAttention(a as never, b as never, c as never, o); } catch (e) { cpu = e as Error; }
    assert.ok(cpu, `the CPU refuses ${JSON.stringify(o)}`);
    await assert.rejects(gpu.sparseAttention(a as never, b as never, c as never, o), (e: Error) => e.constructor === cpu!.constructor && e.message === cpu!.message);
  }
});
