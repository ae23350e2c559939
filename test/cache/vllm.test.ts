// vLLM's cache conventions as options of the DSA cache and the page-table
// transform: an FP8 cache with scaleRule 'vllm' holds the bytes of vLLM's
// indexer_k_quant_and_cache (golden, test/golden/make_vllm.py), also when
// decode steps and prefill append; pagedSlots with pastTable 'padding' equals a
// plain restatement of vLLM's triton_convert_req_index_to_global_index (a
// position in a block past the table is -1). Defaults stay as they were.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { createDsaCache } from '../../src/cache/cache.js';
import { pagedSlots } from '../../src/cache/slots.js';
import { decodeStep, prefill } from '../../src/cache/step.js';
import { quantizeKeysFp8 } from '../../src/indexer/quantized-keys.js';
import type { IndexerWeights } from '../../src/indexer/module.js';
import { createPool } from '../../src/pool/index.js';
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

test("createDsaCache scaleRule vllm: appends write vLLM's indexer_k_quant_and_cache bytes (golden: block table, slots, codes and scales, float32 and ue8m0)", () => {
  const k = load<Float32Array>('vllm_kcache_keys');
  const appends = load<Int32Array>('vllm_kcache_appends').data; // (sequence, tokens) pairs in order
  const table = load<Int32Array>('vllm_kcache_block_table');
  const slotMapping = load<Int32Array>('vllm_kcache_slot_mapping').data;
  const d = k.shape[1];
  for (const [scaleFormat, file] of [['float32', 'vllm_kcache_bytes'], ['ue8m0', 'vllm_kcache_bytes_ue8m0']] as const) {
    const want = load<Uint8Array>(file);
    const numPages = want.shape[0], P = want.shape[1] / (d + 4);
    const make = (scaleRule?: 'vllm') => createDsaCache({ batch: 2, pages: numPages, pageSize: P, indexerDim: d, kvDim: 1, keyForm: 'fp8', hadamard: false, scaleFormat, scaleRule, shared: false });
    const cache = make('vllm'), deepseek = make();
    assert.equal(cache.scaleRule, 'vllm');
    assert.equal(deepseek.scaleRule, 'deepseek');
    let token = 0;
    for (let i = 0; i < appends.length; i += 2) {
      const seq = appends[i], n = appends[i + 1];
      const inputs = { keys: { data: k.data.slice(token * d, (token + n) * d), shape: [n, d] }, kv: floats([n, 1, 1], token) };
      cache.append(seq, inputs);
      deepseek.append(seq, inputs);
      token += n;
    }
    // The cache took the pages the fixture's block table names, so its slots are vLLM's slot mapping.
    const [b, blocks] = table.shape;
    for (let bi = 0; bi < b; bi++) for (let blk = 0; blk < blocks; blk++) assert.equal(cache.blockTable.data[bi * cache.maxBlocks + blk], table.data[bi * blocks + blk], `block table [${bi}][${blk}]`);
    const seqs = load<Int32Array>('vllm_kcache_seqs').data, seen = [0, 0];
    const positions = Int32Array.from(seqs, (seq) => seen[seq]++);
    for (let i = 0; i < seqs.length; i++) {
      const slot = pagedSlots({ data: Int32Array.of(positions[i]), shape: [1, 1, 1] }, { data: cache.blockTable.data.slice(seqs[i] * cache.maxBlocks, (seqs[i] + 1) * cache.maxBlocks), shape: [1, cache.maxBlocks] }, P).data[0];
      assert.equal(slot, slotMapping[i], `token ${i}: slot`);
    }
    assert.deepEqual((cache.keys as { data: Uint8Array }).data, want.data, `${scaleFormat}: every byte of the cache`);
    // The default rule is DeepSeek's: with float32 scales its bytes differ (ue8m0 rounds most differences away).
    if (scaleFormat === 'float32') assert.notDeepEqual((deepseek.keys as { data: Uint8Array }).data, want.data, 'the default rule differs');
  }
});

const dim = 32, qRank = 24, h = 4, d = 16, hq = 4, dqk = 24;
const W: IndexerWeights = {
  wqB: floats([h * d, qRank], 1, 0.3), wk: floats([d, dim], 2, 0.3), kNormWeight: floats([d], 3), kNormBias: floats([d], 4, 0.1), weightsProj: floats([h, dim], 5),
};
const stepOpts = { ropeDim: 8, topK: 6 };
const prompt = (T: number, seed: number) => ({ x: floats([1, T, dim], seed), qr: floats([1, T, qRank], seed + 1), q: floats([T, hq, dqk], seed + 2, 2), kv: floats([T, 1, dqk], seed + 3, 2) });

test('prefill and decodeStep on a vLLM-rule FP8 cache store the keys a float32 cache holds, quantized by quantizeKeysFp8 with scaleRule vllm; the pool gives the same bytes', async () => {
  const T = 12;
  const p = prompt(T, 11);
  const float = createDsaCache({ batch: 1, capacity: T, indexerDim: d, kvDim: dqk, keyForm: 'float32' });
  const vllm = createDsaCache({ batch: 1, capacity: T, indexerDim: d, kvDim: dqk, scaleRule: 'vllm' });
  const first = { x: { data: p.x.data.slice(0, 8 * dim), shape: [1, 8, dim] }, qr: { data: p.qr.data.slice(0, 8 * qRank), shape: [1, 8, qRank] }, q: { data: p.q.data.slice(0, 8 * hq * dqk), shape: [8, hq, dqk] }, kv: { data: p.kv.data.slice(0, 8 * dqk), shape: [8, 1, dqk] } };
  const rest = (i: number) => ({ x: { data: p.x.data.slice(i * dim, (i + 1) * dim), shape: [1, 1, dim] }, qr: { data: p.qr.data.slice(i * qRank, (i + 1) * qRank), shape: [1, 1, qRank] }, q: { data: p.q.data.slice(i * hq * dqk, (i + 1) * hq * dqk), shape: [1, hq, dqk] }, kv: { data: p.kv.data.slice(i * dqk, (i + 1) * dqk), shape: [1, 1, dqk] } });
  for (const cache of [float, vllm]) {
    prefill(W, cache, 0, first, { ...stepOpts, queryBlock: 3 });
    for (let i = 8; i < T; i++) decodeStep(W, cache, rest(i), stepOpts);
  }
  const want = quantizeKeysFp8(float.keys as Tensor<Float32Array>, { scaleRule: 'vllm' });
  assert.deepEqual((vllm.keys as { data: Uint8Array }).data, want.data, 'the vLLM rule on every appended key (rotated, as the cache does by default)');
  assert.notDeepEqual((vllm.keys as { data: Uint8Array }).data, quantizeKeysFp8(float.keys as Tensor<Float32Array>).data, 'not the DeepSeek rule');
  const pool = createPool({ threads: 2 });
  try {
    const pooled = createDsaCache({ batch: 1, capacity: T, indexerDim: d, kvDim: dqk, scaleRule: 'vllm' });
    await pool.prefill(W, pooled, 0, first, { ...stepOpts, queryBlock: 3 });
    for (let i = 8; i < T; i++) await pool.decodeStep(W, pooled, rest(i), stepOpts);
    assert.deepEqual((pooled.keys as { data: Uint8Array }).data, (vllm.keys as { data: Uint8Array }).data, 'pool = one thread');
  } finally {
    await pool.close();
  }
});

test('createDsaCache: scaleRule is checked, only an fp8 cache takes one, and an unknown option is a TypeError naming it', () => {
  assert.throws(() => createDsaCache({ batch: 1, capacity: 4, scaleRule: 'vLLM' as never }), { name: 'RangeError', message: /^scaleRule: expected one of 'deepseek', 'vllm', got string "vLLM"/ });
  assert.throws(() => createDsaCache({ batch: 1, capacity: 4, keyForm: 'int8', scaleRule: 'vllm' }), { name: 'RangeError', message: "scaleRule: only keyForm 'fp8' takes a scale rule, got keyForm 'int8'" });
  assert.equal(createDsaCache({ batch: 1, capacity: 4, keyForm: 'int8', scaleRule: 'deepseek', kvDim: 1 }).scaleRule, 'deepseek');
  assert.throws(() => createDsaCache({ batch: 1, capacity: 4, scalerule: 'vllm' } as never), { name: 'TypeError', message: /^createDsaCache: unknown option 'scalerule' \(expected one of: batch, capacity, pages, pageSize, / });
});

/** vLLM's triton_convert_req_index_to_global_index for one position (no context parallelism, no prefill workspace). */
function vllmGlobalIndex(tok: number, req: number, table: Int32Array, maxBlocks: number, blockSize: number): number {
  if (tok < 0) return -1; // only a padding index propagates as -1 ...
  const block = Math.floor(tok / blockSize);
  if (block >= maxBlocks) return -1; // ... or a block past the table (valid_block false)
  return table[req * maxBlocks + block] * blockSize + (tok % blockSize);
}

test("property: pagedSlots pastTable 'padding' equals vLLM's page-table transform (positions past the table -> -1); the default refuses them by name", () => {
  fc.assert(
    fc.property(
      fc.record({ b: fc.integer({ min: 1, max: 3 }), t: fc.integer({ min: 1, max: 3 }), k: fc.integer({ min: 1, max: 6 }), P: fc.integer({ min: 1, max: 8 }), maxBlocks: fc.integer({ min: 1, max: 4 }), numPages: fc.integer({ min: 1, max: 9 }), seed: fc.integer() }),
      ({ b, t, k, P, maxBlocks, numPages, seed }) => {
        const next = rng(seed);
        const table = Int32Array.from({ length: b * maxBlocks }, () => Math.floor(next() * numPages));
        const limit = maxBlocks * P;
        const positions = Int32Array.from({ length: b * t * k }, () => Math.floor(next() * (limit + 2 * P + 2)) - 2); // -2 .. past the table
        const indices = { data: positions, shape: [b, t, k] }, blockTable = { data: table, shape: [b, maxBlocks] };
        const got = pagedSlots(indices, blockTable, P, { pastTable: 'padding', numPages }).data;
        const want = Int32Array.from(positions, (p, i) => vllmGlobalIndex(p, Math.floor(i / (t * k)), table, maxBlocks, P));
        assert.deepEqual(got, want);
        const past = positions.findIndex((p) => p >= limit);
        if (past < 0) assert.deepEqual(pagedSlots(indices, blockTable, P, { numPages }).data, want, 'nothing past the table: the default agrees');
        else assert.throws(() => pagedSlots(indices, blockTable, P, { numPages, pastTable: 'error' }), { name: 'RangeError', message: new RegExp(`is position ${positions[past]}, in block ${Math.floor(positions[past] / P)}, past the table's ${maxBlocks} blocks of ${P}`) });
      },
    ),
    { numRuns: 300 },
  );
});

test("pagedSlots pastTable 'padding' keeps the other checks (seqLens, numPages, int32 slots), is checked itself, refuses unknown options, and equals the pool", async () => {
  const table = { data: Int32Array.of(3, 0, 9), shape: [1, 3] };
  const one = (...p: number[]) => ({ data: Int32Array.from(p), shape: [1, 1, p.length] });
  assert.deepEqual([...pagedSlots(one(1, 5, 12, 40, -1), { data: Int32Array.of(3, 0, 2), shape: [1, 3] }, 4, { pastTable: 'padding' }).data], [13, 1, -1, -1, -1]);
  assert.throws(() => pagedSlots(one(11), table, 4, { pastTable: 'padding', numPages: 8 }), /blockTable: sequence 0, block 2 is 9; expected a page in \[0, 8\)/);
  assert.throws(() => pagedSlots(one(7, 12), table, 4, { pastTable: 'padding', seqLens: Int32Array.of(6) }), /indices: batch 0, query 0, slot 0 is position 7, past the sequence's length 6/);
  assert.throws(() => pagedSlots(one(2 ** 30 + 5), { data: Int32Array.of(0, 2), shape: [1, 2] }, 2 ** 30, { pastTable: 'padding' }), /expected a slot <= 2147483647 \(slots are int32\)/);
  assert.throws(() => pagedSlots(one(1), table, 4, { pastTable: 'skip' as never }), { name: 'RangeError', message: `pastTable: expected one of 'error', 'padding', got string "skip"` });
  assert.throws(() => pagedSlots(one(1), table, 4, { seqlens: Int32Array.of(4) } as never), { name: 'TypeError', message: "pagedSlots: unknown option 'seqlens' (expected one of: seqLens, numPages, pastTable)" });
  const pool = createPool({ threads: 2 });
  try {
    const indices = one(0, 3, 4, 11, 12, 99, -1);
    const blockTable = { data: Int32Array.of(2, 1, 0), shape: [1, 3] };
    assert.deepEqual((await pool.pagedSlots(indices, blockTable, 4, { pastTable: 'padding' })).data, pagedSlots(indices, blockTable, 4, { pastTable: 'padding' }).data);
  } finally {
    await pool.close();
  }
});
