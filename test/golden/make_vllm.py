#!/usr/bin/python3
"""Writes the golden .npy fixtures of vLLM's cache conventions
(test/cache/vllm.test.ts, test/indexer/vllm-fp8.test.ts).

Each case is a plain NumPy / PyTorch (1.13, CPU) restatement of vLLM's code,
written from reading it:

- The indexer key-cache writer, `indexer_k_quant_and_cache` (the CUDA kernel
  in csrc/cache_kernels.cu): per token of head_dim 128, amax = max |k| over
  the 128 values, scale = max(amax, 1e-4) / 448 as a float32 division (with
  ue8m0: 2^ceil(log2 scale)), each code e4m3(k / scale) with the float32
  quotient rounded to nearest even and saturated (__NV_SATFINITE). It writes
  token `slot` into block slot // block_size at offset slot % block_size of a
  cache [num_blocks, block_size * 132] bytes: the block's codes first (128 a
  token), then its float32 scales (4 bytes a token). Slots come from the
  block table as vLLM's block table computes them:
  block_table[req, pos // block_size] * block_size + pos % block_size.
  torch 1.13 has no float8 dtype, so e4m3 rounding is done here by searching
  the 127 non-negative finite code values (ties to the even code), and the
  ue8m0 power of two is taken exactly from the float bits.
- The paged-logits reference `_ref_fp8_paged_mqa_logits` of
  tests/kernels/attention/test_deepgemm_attention.py, in float32, with
  context lengths below next_n (0 and 1 with next_n = 3): query i of a
  sequence sits at position context_len - next_n + i, and a negative one
  matches no key, so its row stays -inf.

Run from the repository root: /usr/bin/python3 test/golden/make_vllm.py
"""
import os

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
os.makedirs(OUT, exist_ok=True)
torch.manual_seed(17)
rs = np.random.RandomState(17)


def save(name, array):
    np.save(os.path.join(OUT, name + ".npy"), np.ascontiguousarray(array))


# ---------------------------------------------------------------- e4m3 by search
VALUES = np.array(
    [(m * 2.0 ** -9 if e == 0 else (8 + m) * 2.0 ** (e - 10)) for c in range(0x7F) for e, m in [((c >> 3) & 15, c & 7)]]
)  # codes 0x00..0x7e, 0 .. 448


def e4m3(x):
    """Codes of float32 values: nearest finite value, ties to the even code, saturating at +-448."""
    x = np.asarray(x, dtype=np.float32).astype(np.float64)
    a = np.minimum(np.abs(x), 448.0)
    err = np.abs(VALUES[None, :] - a[:, None])  # [n, 127]
    best = err.min(axis=1, keepdims=True)
    tie = err == best
    odd_only = tie & (np.arange(0x7F)[None, :] % 2 == 1)
    even = tie & ~odd_only
    code = np.where(even.any(axis=1), even.argmax(axis=1), tie.argmax(axis=1))
    sign = np.signbit(x).astype(np.int64) << 7
    return (code | sign).astype(np.uint8)


def ceil_pow2(scale):
    bits = np.float32(scale).view(np.uint32)
    exponent = int((bits >> 23) & 0xFF) - 127 + (1 if bits & 0x7FFFFF else 0)
    return np.float32(2.0 ** exponent)


# ---------------------------------------------------------------- the key-cache writer
def write_indexer_k_cache(k, slot_mapping, num_blocks, block_size, ue8m0):
    num_tokens, head_dim = k.shape
    assert head_dim == 128
    row = head_dim + 4
    cache = np.zeros((num_blocks, block_size * row), dtype=np.uint8)
    for token in range(num_tokens):
        slot = int(slot_mapping[token])
        if slot < 0:
            continue  # a padding token
        block, offset = slot // block_size, slot % block_size
        x = k[token].astype(np.float32)
        amax = np.float32(np.abs(x).max())
        scale = np.float32(np.maximum(amax, np.float32(1e-4)) / np.float32(448.0))  # float32 division
        if ue8m0:
            scale = ceil_pow2(scale)
        codes = e4m3(np.clip(x / scale, -448, 448).astype(np.float32))
        cache[block, offset * head_dim:(offset + 1) * head_dim] = codes
        at = block_size * head_dim + offset * 4
        cache[block, at:at + 4] = np.frombuffer(np.float32(scale).tobytes(), dtype=np.uint8)
    return cache


def vllm_key_cache():
    d, block_size, num_blocks = 128, 4, 5
    # Appends in this order (sequence, tokens): the pages a cache takes from its
    # free stack are then 0, then 1 and 2, then 3.
    appends = [(0, 3), (1, 5), (0, 3)]
    block_table = np.array([[0, 3], [1, 2]], dtype=np.int32)
    n = sum(t for _, t in appends)
    k = (rs.standard_normal((n, d)) * rs.choice([1.0, 1e-3, 3e-6, 40.0], size=(n, 1))).astype(np.float32)
    k[4] = 0.0  # amax 0: the 1e-4 floor
    k[7, :] = np.float32(2.0 ** -20)  # every value below the floor
    lengths = [0, 0]
    slots = []
    seqs = []
    for seq, t in appends:
        for _ in range(t):
            pos = lengths[seq]
            slots.append(int(block_table[seq, pos // block_size]) * block_size + pos % block_size)
            seqs.append(seq)
            lengths[seq] += 1
    slot_mapping = np.array(slots, dtype=np.int64)
    save("vllm_kcache_keys", k)
    save("vllm_kcache_seqs", np.array(seqs, dtype=np.int32))
    save("vllm_kcache_appends", np.array(appends, dtype=np.int32))
    save("vllm_kcache_block_table", block_table)
    save("vllm_kcache_slot_mapping", slot_mapping.astype(np.int32))
    save("vllm_kcache_bytes", write_indexer_k_cache(k, slot_mapping, num_blocks, block_size, False))
    save("vllm_kcache_bytes_ue8m0", write_indexer_k_cache(k, slot_mapping, num_blocks, block_size, True))


# ---------------------------------------------------------------- paged logits, context_len < next_n
def vllm_paged_logits_short():
    batch, next_n, h, d, block_size, num_blocks, max_model_len = 4, 3, 4, 16, 4, 10, 12
    q = torch.randn(batch, next_n, h, d)
    kv_cache = torch.randn(num_blocks, block_size, 1, d)
    weights = torch.randn(batch * next_n, h)
    context_lens = torch.tensor([0, 1, 9, 2], dtype=torch.int32)  # 0, 1 and 2 are below next_n = 3
    max_blocks = (max_model_len + block_size - 1) // block_size
    block_tables = torch.zeros(batch, max_blocks, dtype=torch.int32)
    pool = list(rs.permutation(num_blocks))
    c = 0
    for i in range(batch):
        for j in range((int(context_lens[i]) + block_size - 1) // block_size):
            block_tables[i][j] = int(pool[c])
            c += 1
    logits = torch.full([batch * next_n, max_model_len], float("-inf"))
    for i in range(batch):
        ctx = int(context_lens[i])
        q_offsets = torch.arange(ctx - next_n, ctx)  # negative for the queries before the sequence's first token
        weight_slice = weights[i * next_n:(i + 1) * next_n, :].transpose(0, 1).contiguous()  # [h, next_n]
        for blk in range((ctx + block_size - 1) // block_size):
            k_offsets = torch.arange(blk * block_size, (blk + 1) * block_size)
            kx = kv_cache[int(block_tables[i][blk])]  # [block_size, 1, d]
            mask = (k_offsets[None, :] < ctx) & (k_offsets[None, :] <= q_offsets[:, None])  # [next_n, block_size]
            s = torch.einsum("nhd,kd->hnk", q[i], kx[:, 0])  # [h, next_n, block_size]
            s = torch.where(mask[None], s, torch.tensor(float("-inf")))
            s = (torch.relu(s) * weight_slice[..., None]).sum(dim=0)  # [next_n, block_size]
            logits[i * next_n:(i + 1) * next_n, blk * block_size:(blk + 1) * block_size] = torch.where(
                k_offsets[None, :] <= q_offsets[:, None], s, torch.tensor(float("-inf"))
            )
    save("vllm_short_q", q.numpy())
    save("vllm_short_kv_cache", kv_cache.numpy())
    save("vllm_short_weights", weights.numpy())
    save("vllm_short_context_lens", context_lens.numpy())
    save("vllm_short_block_tables", block_tables.numpy())
    save("vllm_short_logits", logits.numpy())


vllm_key_cache()
vllm_paged_logits_short()
