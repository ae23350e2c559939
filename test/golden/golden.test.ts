// The library against golden outputs of the public references, restated in
// plain PyTorch / NumPy by test/golden/make.py (FlashMLA's tests/ref.py,
// vLLM's DeepGEMM logits references, DeepSeek-V3.2's act_quant and
// fp8_index). Float results within the MaxText test's 1e-3 (here much
// tighter), exact arithmetic bit for bit, FlashMLA's +inf lse for lonely queries.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { decodeNpy } from '../../src/io/npy.js';
import { sparseAttention } from '../../src/attention/sparse.js';
import { indexerScores } from '../../src/indexer/scores.js';
import { quantizeKeysFp8 } from '../../src/indexer/quantized-keys.js';
import { actQuantRows } from '../../src/indexer/fp8.js';
import type { Tensor, TypedArray } from '../../src/tensor.js';
import { assertClose } from '../helpers/close.js';

function load<T extends TypedArray>(name: string): Tensor<T> {
  const t = decodeNpy(new Uint8Array(readFileSync(new URL(`./fixtures/${name}.npy`, import.meta.url))), name);
  return { data: t.data as T, shape: t.shape };
}
const TOL = { rtol: 1e-5, atol: 1e-6 };

test('FlashMLA ref_sparse_attn_fwd: out, lse (+inf for lonely queries) and max_logits with topk_length and attn_sink, invalid indices -1 and >= s_kv', () => {
  const q = load<Float32Array>('flashmla_prefill_q');
  const kv = load<Float32Array>('flashmla_prefill_kv');
  const indices = load<Int32Array>('flashmla_prefill_indices');
  const topkLength = load<Int32Array>('flashmla_prefill_topk_length').data;
  const attnSink = load<Float32Array>('flashmla_prefill_attn_sink').data;
  const dV = load<Int32Array>('flashmla_prefill_sizes').data[0];
  const smScale = load<Float32Array>('flashmla_prefill_sm_scale').data[0];
  for (const simd of [true, false]) {
    const r = sparseAttention(q, kv, indices, { dV, smScale, topkLength, attnSink, assumeUnique: true, simd });
    assertClose(r.out.data, load<Float32Array>('flashmla_prefill_out').data, TOL, `out simd=${simd}`);
    assertClose(r.lse.data, load<Float32Array>('flashmla_prefill_lse').data, TOL, `lse simd=${simd}`);
    assertClose(r.maxLogits.data, load<Float32Array>('flashmla_prefill_max_logits').data, TOL, `max_logits simd=${simd}`);
  }
  const lse = sparseAttention(q, kv, indices, { dV, smScale, topkLength, attnSink }).lse.data;
  assert.ok(lse.subarray(3 * 4, 4 * 4).every((x) => x === Infinity), 'the lonely query: lse +inf');
  assert.ok(lse.subarray(5 * 4, 6 * 4).every((x) => x === Infinity), 'topk_length 0: lse +inf');
});

test('FlashMLA ref_sparse_attn_decode: a paged kv cache indexed by physical slot, topk_length per batch, the sink, lonely queries', () => {
  const q = load<Float32Array>('flashmla_decode_q'); // [b, s_q, h_q, d_qk]
  const blocked = load<Float32Array>('flashmla_decode_blocked_k'); // [num_blocks, page, 1, d_qk]
  const indices = load<Int32Array>('flashmla_decode_indices'); // [b, s_q, topk]
  const perBatch = load<Int32Array>('flashmla_decode_topk_length').data;
  const attnSink = load<Float32Array>('flashmla_decode_attn_sink').data;
  const dV = load<Int32Array>('flashmla_decode_sizes').data[0];
  const smScale = load<Float32Array>('flashmla_decode_sm_scale').data[0];
  const [b, sq, hq, dqk] = q.shape, topk = indices.shape[2];
  const topkLength = Int32Array.from({ length: b * sq }, (_, r) => perBatch[Math.floor(r / sq)]);
  const r = sparseAttention({ data: q.data, shape: [b * sq, hq, dqk] }, blocked, { data: indices.data, shape: [b * sq, 1, topk] }, { dV, smScale, topkLength, attnSink });
  assertClose(r.out.data, load<Float32Array>('flashmla_decode_out').data, TOL, 'out');
  // The reference returns lse as [b, h_q, s_q].
  const want = load<Float32Array>('flashmla_decode_lse').data;
  const lse = new Float32Array(b * hq * sq);
  for (let bi = 0; bi < b; bi++) for (let t = 0; t < sq; t++) for (let h = 0; h < hq; h++) lse[(bi * hq + h) * sq + t] = r.lse.data[(bi * sq + t) * hq + h];
  assertClose(lse, want, TOL, 'lse');
});

test('vLLM _ref_fp8_mqa_logits (float32): a key window [ks, ke) per query row, -inf outside, the same -inf positions', () => {
  const q = load<Float32Array>('vllm_mqa_q'); // [m, h, d]
  const kv = load<Float32Array>('vllm_mqa_kv'); // [n, d]
  const w = load<Float32Array>('vllm_mqa_weights'); // [m, h]
  const [m, h, d] = q.shape, n = kv.shape[0];
  const window = { start: load<Int32Array>('vllm_mqa_ks').data, end: load<Int32Array>('vllm_mqa_ke').data };
  for (const simd of [true, false]) {
    const got = indexerScores({ data: q.data, shape: [1, m, h, d] }, { data: kv.data, shape: [1, n, d] }, { data: w.data, shape: [1, m, h] }, { window, simd });
    assertClose(got.data, load<Float32Array>('vllm_mqa_logits').data, { rtol: 1e-5, atol: 1e-5 }, `logits simd=${simd}`);
  }
});

test('vLLM _ref_fp8_paged_mqa_logits (float32): a block table, context_lens, next_n queries at the end of each sequence', () => {
  const q = load<Float32Array>('vllm_paged_q'); // [batch, next_n, h, d]
  const cache = load<Float32Array>('vllm_paged_kv_cache'); // [num_blocks, block_size, 1, d]
  const w = load<Float32Array>('vllm_paged_weights'); // [batch * next_n, h]
  const seqLens = load<Int32Array>('vllm_paged_context_lens').data;
  const blockTable = load<Int32Array>('vllm_paged_block_tables');
  const want = load<Float32Array>('vllm_paged_logits'); // [batch * next_n, max_model_len]
  const [batch, nextN, h, d] = q.shape, [numBlocks, blockSize] = cache.shape;
  for (const precision of ['float32'] as const) {
    const got = indexerScores(q, { data: cache.data, shape: [numBlocks, blockSize, d] }, { data: w.data, shape: [batch, nextN, h] }, {
      precision, blockTable, seqLens, maxLen: want.shape[1],
    });
    assertClose(got.data, want.data, { rtol: 1e-5, atol: 1e-5 }, 'logits');
  }
});

for (const tag of ['f32', 'ue8m0'] as const) {
  test(`DeepSeek act_quant (${tag} scales) and fp8_index: codes, scales and scores bit for bit against the NumPy restatement`, () => {
    const qRot = load<Float32Array>('deepseek_fp8_q_rotated'); // [t, h, d], already Hadamard-rotated
    const kRot = load<Float32Array>('deepseek_fp8_k_rotated'); // [s, d]
    const w = load<Float32Array>('deepseek_fp8_w');
    const weightScale = load<Float32Array>('deepseek_fp8_weight_scale').data[0];
    const [t, h, d] = qRot.shape, s = kRot.shape[0];
    const scaleFormat = tag === 'ue8m0' ? 'ue8m0' : 'float32';
    // act_quant of the queries: one scale per head.
    const q8 = new Uint8Array(t * h * d), qs = new Float32Array(t * h);
    actQuantRows(qRot.data, 0, t * h, d, scaleFormat, q8, 0, d, qs, 0);
    assert.deepEqual(q8, load<Uint8Array>(`deepseek_fp8_${tag}_q8`).data, 'query codes');
    assert.deepEqual(qs, load<Float32Array>(`deepseek_fp8_${tag}_qscales`).data, 'query scales');
    // The key cache: codes then scales in one page.
    const keys = quantizeKeysFp8({ data: kRot.data, shape: [1, s, d] }, { hadamard: false, scaleFormat });
    assert.deepEqual(keys.data.subarray(0, s * d), load<Uint8Array>(`deepseek_fp8_${tag}_k8`).data, 'key codes');
    assert.deepEqual(new Float32Array(keys.data.buffer, keys.data.byteOffset + s * d, s), load<Float32Array>(`deepseek_fp8_${tag}_kscales`).data, 'key scales');
    for (const simd of [true, false]) {
      const got = indexerScores({ data: qRot.data, shape: [1, t, h, d] }, keys, { data: w.data, shape: [1, t, h] }, { precision: 'fp8', weightScale, scaleFormat, simd });
      assert.deepEqual(got.data, load<Float32Array>(`deepseek_fp8_${tag}_scores`).data, `scores simd=${simd}`);
    }
  });
}
