// The optional features (subgroups, shader-f16) change no result: on every
// software driver installed (SwiftShader offers subgroups of 4 lanes;
// lavapipe from Mesa 25 both, 8 lanes), a backend using them and one told to
// use none (`features: []`) return the same bits as the CPU for top-k (ties,
// -0, -Infinity, NaN, k > s, masks, ranges), the fused top-k and the
// quantized scores. DSA_GPU_REQUIRE_FEATURES=shader-f16,subgroups (CI) makes
// a missing feature a failure instead of a skip.
import { existsSync } from 'node:fs';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { topk } from '../../src/topk/topk.js';
import { indexerScores, type IndexerKeys } from '../../src/indexer/scores.js';
import { quantizeKeys, quantizeKeysFp8 } from '../../src/indexer/quantized-keys.js';
import { createGpu, type DsaGpu } from '../../src/webgpu/index.js';
import type { Tensor } from '../../src/tensor.js';
import { rng } from '../attention/fixtures.js';
import { LAVAPIPE, SWIFTSHADER, bits } from './adapters.js';

const drivers = [
  { icd: SWIFTSHADER, adapter: 'SwiftShader' },
  { icd: LAVAPIPE, adapter: 'llvmpipe' },
].filter((d) => existsSync(d.icd));
// A driver chosen with VK_ICD_FILENAMES is the only one; otherwise every installed one.
const chosen = process.env.VK_ICD_FILENAMES;
if (!chosen) process.env.VK_ICD_FILENAMES = drivers.map((d) => d.icd).join(':');

interface Pair {
  name: string;
  plain: DsaGpu;
  full: DsaGpu;
}

/** Per driver, a backend with every feature it offers and one with none; drivers Dawn refuses are left out. */
const pairs: Pair[] = [];
for (const flags of chosen ? [[]] : drivers.map((d) => [`adapter=${d.adapter}`])) {
  const full = await createGpu({ dawnFlags: flags }).catch(() => null);
  if (!full) continue;
  const plain = await createGpu({ dawnFlags: flags, features: [] });
  pairs.push({ name: full.adapter.description || flags.join(' '), plain, full });
}
after(() => pairs.forEach((p) => (p.plain.destroy(), p.full.destroy())));

const required = (process.env.DSA_GPU_REQUIRE_FEATURES ?? '').split(',').filter(Boolean);

test('the backends report the features they use; features: [] uses none; a feature the adapter lacks is refused by name', async (t) => {
  assert.ok(pairs.length > 0, 'no WebGPU adapter');
  t.diagnostic(pairs.map((p) => `${p.name}: ${p.full.features.join(' ') || 'no optional feature'}`).join('; '));
  for (const p of pairs) {
    assert.deepEqual(p.plain.features, []);
    for (const f of p.full.features) assert.ok(p.full.device.features.has(f), `${p.name}: ${f}`);
  }
  for (const f of required) {
    assert.ok(pairs.some((p) => p.full.features.includes(f as never)), `no installed driver offers ${f} (${pairs.map((p) => `${p.name}: ${p.full.features.join(' ') || 'none'}`).join('; ')})`);
  }
  if (!pairs.some((p) => p.full.features.includes('shader-f16'))) {
    t.diagnostic(`the shader-f16 paths go untested here: no driver offers shader-f16 (Mesa 25's lavapipe does, at ${LAVAPIPE}; CI requires it)`);
  }
  const lacking = pairs.find((p) => !p.full.features.includes('shader-f16'));
  if (lacking) {
    await assert.rejects(createGpu({ device: lacking.plain.device, features: ['shader-f16'] }), /createGpu: features: the device does not offer 'shader-f16'/);
  }
  await assert.rejects(createGpu({ features: ['fast' as never] }), /createGpu: features: expected an array of 'shader-f16', 'subgroups', got/);
  await assert.rejects(createGpu({ dawnFlags: 'adapter=x' as never }), /createGpu: dawnFlags: expected an array of strings/);
});

/** Scores drawn from a few values (many ties), with -0, -Infinity and NaN among them. */
const scoreRow = (s: number) => fc.array(fc.constantFrom(0, -0, 1, 1.5, -2, 2 ** -130, -Infinity, Infinity, NaN, 3, 3, 3), { minLength: s, maxLength: s });

test('top-k: the same bits with and without the features, and as the CPU (ties, -0, +-Infinity, NaN lowest, k > s, masks, causal)', async (t) => {
  const usable = pairs.filter((p) => p.full.features.includes('subgroups'));
  if (usable.length === 0) return t.skip('no adapter offers subgroups');
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 1, max: 700 }),
      fc.integer({ min: 1, max: 80 }),
      fc.boolean(),
      fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      async (t, s, k, masked, seed) => {
        const next = rng(seed);
        const data = fc.sample(scoreRow(t * s), { numRuns: 1, seed })[0];
        const scores: Tensor<Float32Array> = { data: Float32Array.from(data), shape: [1, t, s] };
        const mask: Tensor<Uint8Array> = { data: Uint8Array.from({ length: t * s }, () => (next() < 0.7 ? 1 : 0)), shape: [1, t, s] };
        const o = { nan: 'lowest' as const, causalOffset: s - t, ...(masked ? { mask } : {}) };
        const want = topk(scores, k, o);
        for (const p of usable) {
          const a = await p.full.topk(scores, k, o), b = await p.plain.topk(scores, k, o);
          assert.deepEqual(a.indices.data, b.indices.data, `${p.name}: indices with and without`);
          assert.deepEqual(bits(a.values.data), bits(b.values.data), `${p.name}: values`);
          assert.deepEqual(a.indices.data, want.indices.data, `${p.name}: indices as the CPU`);
          assert.deepEqual(bits(a.values.data), bits(want.values.data), `${p.name}: values as the CPU`);
        }
      },
    ),
    { numRuns: 14 },
  );
});

type F = Tensor<Float32Array>;
function normals(shape: number[], seed: number, ties = false): F {
  const next = rng(seed);
  const x = () => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
  return { data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (ties ? Math.round(x() * 2) / 2 : x())), shape };
}

test('fused top-k (float32, int8, fp8) and quantized scores (int8 with d over a block, fp8): the same bits with and without the features', async (t) => {
  const usable = pairs.filter((p) => p.full.features.length > 0);
  if (usable.length === 0) return t.skip('no adapter offers an optional feature');
  // h * rows > 64 (several pair blocks), d = 200 (two int8 blocks, a part stage), s over several key tiles, small k (compactions), k > s.
  const cases: [number, number, number, number, number][] = [
    [5, 3, 200, 300, 7],
    [3, 16, 48, 140, 40],
    [2, 1, 16, 90, 100],
    [4, 2, 128, 200, 9],
  ];
  for (const [tq, h, d, s, k] of cases) {
    const q = normals([1, tq, h, d], tq + d), w = normals([1, tq, h], h), keys = normals([1, s, d], s, true);
    const forms: [string, IndexerKeys][] = [['float32', keys], ['int8', quantizeKeys(keys)]];
    if (d <= 128 && (d & (d - 1)) === 0) forms.push(['fp8', quantizeKeysFp8(keys)]); // DeepSeek's layout: one scale per key, a Hadamard rotation
    for (const [name, kf] of forms) {
      const so = { causalOffset: s - tq, ...(name === 'float32' ? {} : { precision: name as 'int8' | 'fp8' }) };
      const o = { ...so, nan: 'lowest' as const };
      const label = `${name} t=${tq} h=${h} d=${d} s=${s} k=${k}`;
      const scores = indexerScores(q, kf, w, so);
      for (const p of usable) {
        const a = await p.full.indexerTopk(q, kf, w, k, o), b = await p.plain.indexerTopk(q, kf, w, k, o);
        assert.deepEqual(a.indices.data, b.indices.data, `${p.name} ${label}: indices with and without`);
        assert.deepEqual(bits(a.values.data), bits(b.values.data), `${p.name} ${label}: values with and without`);
        if (name !== 'float32') {
          const want = topk(scores, k, { causalOffset: s - tq, nan: 'lowest' });
          assert.deepEqual(a.indices.data, want.indices.data, `${p.name} ${label}: indices as the CPU`);
          const got = await p.full.indexerScores(q, kf, w, so);
          assert.deepEqual(bits(got.data), bits(scores.data), `${p.name} ${label}: scores as the CPU`);
        }
      }
    }
  }
});
