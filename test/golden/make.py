#!/usr/bin/python3
"""Writes the golden .npy fixtures of test/golden/golden.test.ts.

Each case is a plain PyTorch (1.13, CPU) or NumPy restatement of a public
reference's semantics, written from reading it:

- FlashMLA tests/ref.py: ref_sparse_attn_fwd (prefill: topk_length per query,
  attn_sink, lonely queries get lse = +inf) and ref_sparse_attn_decode
  (paged blocked_k indexed by physical slot, topk_length per batch, the sink
  as out *= 1 / (1 + exp(sink - lse))).
- vLLM tests/kernels/attention/test_deepgemm_attention.py: _ref_fp8_mqa_logits
  (a key window [ks, ke) per query row, -inf outside) and
  _ref_fp8_paged_mqa_logits (a block table, context_lens, next_n queries at
  the end of each sequence), both in float32.
- DeepSeek-V3.2 inference/kernel.py: act_quant (block 128, amax clamped to
  1e-4 times 1/448, ue8m0 rounding up to a power of two, e4m3 round to
  nearest even) and fp8_index (kScale * sum_h ReLU(q8 . k8) * w'), with e4m3
  done here by searching the 256 code values (torch 1.13 has no float8) and
  each dot summed in float32 in ascending d.

Run from the repository root: /usr/bin/python3 test/golden/make.py
"""
import os

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
os.makedirs(OUT, exist_ok=True)
torch.manual_seed(0)
rs = np.random.RandomState(0)


def save(name, array):
    np.save(os.path.join(OUT, name + ".npy"), np.ascontiguousarray(array))


# ---------------------------------------------------------------- FlashMLA prefill
def flashmla_prefill():
    s_q, s_kv, h_q, d_qk, d_v, topk = 6, 40, 4, 24, 16, 8
    q = torch.randn(s_q, h_q, d_qk)
    kv = torch.randn(s_kv, 1, d_qk)
    indices = torch.full((s_q, 1, topk), -1, dtype=torch.int32)
    for r in range(s_q):
        keys = torch.randperm(s_kv)[:topk].to(torch.int32)
        indices[r, 0] = keys
    indices[1, 0, 5:] = -1
    indices[2, 0, 3] = s_kv + 3  # >= s_kv: invalid
    indices[3, 0] = -1  # a lonely query
    topk_length = torch.tensor([8, 8, 6, 8, 3, 0], dtype=torch.int32)  # row 5 reads nothing
    attn_sink = torch.tensor([-1.0, 0.5, float("-inf"), 2.0])
    sm_scale = 0.2

    idx = indices.clone().squeeze(1).long()
    past_length = torch.arange(topk).unsqueeze(0) >= topk_length.unsqueeze(1)
    idx.masked_fill_(past_length, -1)
    invalid = (idx < 0) | (idx >= s_kv)  # [s_q, topk]
    idx.masked_fill_(invalid, 0)
    gathered = kv.squeeze(1).index_select(0, idx.flatten()).reshape(s_q, topk, d_qk)  # [s_q, topk, d_qk]
    P = q @ gathered.transpose(1, 2) * sm_scale  # [s_q, h_q, topk]
    P.masked_fill_(invalid.unsqueeze(1), float("-inf"))
    lse = torch.logsumexp(P, dim=-1)  # [s_q, h_q]
    max_logits = P.max(dim=-1).values  # [s_q, h_q]
    lse_for_o = torch.logsumexp(torch.stack([lse, attn_sink.broadcast_to(s_q, h_q)]), dim=0)
    lse_for_o = lse_for_o.masked_fill(lse_for_o == float("-inf"), float("inf"))
    out = torch.exp(P - lse_for_o.unsqueeze(-1)) @ gathered[..., :d_v]  # [s_q, h_q, d_v]
    lse = lse.masked_fill(lse == float("-inf"), float("inf"))

    save("flashmla_prefill_q", q.numpy())
    save("flashmla_prefill_kv", kv.numpy())
    save("flashmla_prefill_indices", indices.numpy())
    save("flashmla_prefill_topk_length", topk_length.numpy())
    save("flashmla_prefill_attn_sink", attn_sink.numpy())
    save("flashmla_prefill_out", out.numpy())
    save("flashmla_prefill_lse", lse.numpy())
    save("flashmla_prefill_max_logits", max_logits.numpy())
    save("flashmla_prefill_sizes", np.array([d_v], dtype=np.int32))
    save("flashmla_prefill_sm_scale", np.array([sm_scale], dtype=np.float32))


# ---------------------------------------------------------------- FlashMLA decode (paged)
def flashmla_decode():
    b, s_q, h_q, d_qk, d_v, topk, page, num_blocks = 2, 2, 4, 20, 12, 6, 4, 7
    q = torch.randn(b, s_q, h_q, d_qk)
    blocked_k = torch.randn(num_blocks, page, 1, d_qk)
    slots = num_blocks * page
    indices = torch.randint(0, slots, (b, s_q, topk), dtype=torch.int32)
    indices[0, 1, 4:] = -1
    indices[1, 0] = -1  # lonely
    topk_length = torch.tensor([5, 6], dtype=torch.int32)  # per batch
    attn_sink = torch.tensor([0.3, -0.7, 1.1, float("-inf")])
    sm_scale = 0.25

    fixed = torch.clamp_min(indices, 0).long()
    gathered = blocked_k.view(-1, d_qk).index_select(0, fixed.view(-1)).view(b, s_q, topk, d_qk)
    invalid = indices == -1
    invalid |= torch.arange(0, topk).view(1, 1, topk).broadcast_to(b, s_q, topk) >= topk_length.view(b, 1, 1)
    gathered = gathered.view(b * s_q, topk, d_qk)
    w = q.view(b * s_q, h_q, d_qk) @ gathered.transpose(-1, -2) * sm_scale  # [b*s_q, h_q, topk]
    w[invalid.view(b * s_q, 1, topk).broadcast_to(b * s_q, h_q, topk)] = float("-inf")
    lse = w.logsumexp(dim=-1)  # [b*s_q, h_q]
    p = torch.exp(w - lse.unsqueeze(-1))
    out = (p @ gathered[..., :d_v]).view(b, s_q, h_q, d_v)
    lse = lse.view(b, s_q, h_q)
    out = out * (1.0 / (1.0 + torch.exp(attn_sink.view(1, 1, h_q) - lse))).unsqueeze(-1)
    lonely = lse == float("-inf")
    out[lonely.unsqueeze(-1).broadcast_to(b, s_q, h_q, d_v)] = 0.0
    lse[lonely] = float("inf")

    save("flashmla_decode_q", q.numpy())
    save("flashmla_decode_blocked_k", blocked_k.numpy())
    save("flashmla_decode_indices", indices.numpy())
    save("flashmla_decode_topk_length", topk_length.numpy())
    save("flashmla_decode_attn_sink", attn_sink.numpy())
    save("flashmla_decode_out", out.numpy())
    save("flashmla_decode_lse", lse.transpose(1, 2).contiguous().numpy())  # [b, h_q, s_q], as the reference returns it
    save("flashmla_decode_sizes", np.array([d_v], dtype=np.int32))
    save("flashmla_decode_sm_scale", np.array([sm_scale], dtype=np.float32))


# ---------------------------------------------------------------- vLLM logits
def vllm_mqa_logits():
    m, n, h, d = 5, 70, 3, 16
    q = torch.randn(m, h, d)
    kv = torch.randn(n, d)
    weights = torch.randn(m, h)
    ks = torch.tensor([0, 10, 33, 69, 5], dtype=torch.int32)
    ke = torch.tensor([70, 11, 60, 70, 5], dtype=torch.int32)  # the last row sees nothing
    arange = torch.arange(0, n)[None, :]
    mask = (arange >= ks[:, None]) & (arange < ke[:, None])
    score = torch.einsum("mhd,nd->hmn", q, kv)
    logits = (score.relu() * weights.unsqueeze(-1).transpose(0, 1)).sum(dim=0)
    logits = logits.masked_fill(~mask, float("-inf"))
    save("vllm_mqa_q", q.numpy())
    save("vllm_mqa_kv", kv.numpy())
    save("vllm_mqa_weights", weights.numpy())
    save("vllm_mqa_ks", ks.numpy())
    save("vllm_mqa_ke", ke.numpy())
    save("vllm_mqa_logits", logits.numpy())


def vllm_paged_mqa_logits():
    batch, next_n, h, d, block_size, num_blocks, max_model_len = 3, 2, 4, 16, 8, 12, 40
    q = torch.randn(batch, next_n, h, d)
    kv_cache = torch.randn(num_blocks, block_size, 1, d)
    weights = torch.randn(batch * next_n, h)
    context_lens = torch.tensor([17, 2, 40], dtype=torch.int32)
    max_blocks = (max_model_len + block_size - 1) // block_size
    block_tables = torch.zeros(batch, max_blocks, dtype=torch.int32)
    pool = list(rs.permutation(num_blocks))
    c = 0
    for i in range(batch):
        for j in range((int(context_lens[i]) + block_size - 1) // block_size):
            block_tables[i][j] = int(pool[c % num_blocks])
            c += 1
    logits = torch.full([batch * next_n, max_model_len], float("-inf"))
    for i in range(batch):
        ctx = int(context_lens[i])
        q_offsets = torch.arange(ctx - next_n, ctx)
        weight_slice = weights[i * next_n:(i + 1) * next_n, :].transpose(0, 1).contiguous()  # [h, next_n]
        for blk in range((ctx + block_size - 1) // block_size):
            k_offsets = torch.arange(blk * block_size, (blk + 1) * block_size)
            kx = kv_cache[int(block_tables[i][blk])]  # [block_size, 1, d]
            mask = (k_offsets[None, :] < ctx) & (k_offsets[None, :] <= q_offsets[:, None])  # [next_n, block_size]
            s = torch.einsum("nhd,kd->hnk", q[i], kx[:, 0])  # [h, next_n, block_size]
            s = torch.where(mask[None], s, torch.tensor(float("-inf")))
            s = (torch.relu(s) * weight_slice[..., None]).sum(dim=0)
            logits[i * next_n:(i + 1) * next_n, blk * block_size:(blk + 1) * block_size] = torch.where(
                k_offsets[None, :] <= q_offsets[:, None], s, torch.tensor(float("-inf"))
            )
    save("vllm_paged_q", q.numpy())
    save("vllm_paged_kv_cache", kv_cache.numpy())
    save("vllm_paged_weights", weights.numpy())
    save("vllm_paged_context_lens", context_lens.numpy())
    save("vllm_paged_block_tables", block_tables.numpy())
    save("vllm_paged_logits", logits.numpy())


# ---------------------------------------------------------------- DeepSeek FP8
E4M3 = np.zeros(256, dtype=np.float64)
for c in range(256):
    e, mnt, sign = (c >> 3) & 15, c & 7, -1.0 if c & 0x80 else 1.0
    E4M3[c] = np.nan if (e == 15 and mnt == 7) else sign * (mnt * 2.0 ** -9 if e == 0 else (8 + mnt) * 2.0 ** (e - 10))
FINITE = [c for c in range(0x7F)]  # non-negative finite codes 0x00..0x7e


def e4m3_code(x):
    """Nearest e4m3 code by search, ties to the even code, saturating at 448."""
    x = float(x)
    if np.isnan(x):
        return 0x7F
    sign = 0x80 if (x < 0 or (x == 0 and np.signbit(x))) else 0
    a = min(abs(x), 448.0)
    errs = [abs(E4M3[c] - a) for c in FINITE]
    best = min(errs)
    ties = [c for c, err in zip(FINITE, errs) if err == best]
    even = [c for c in ties if c % 2 == 0]
    return sign | (even[0] if even else ties[0])


def act_quant(x, ue8m0):
    """x [n, d] float32 with d <= 128 (one block): codes [n, d] uint8, scales [n] float32."""
    n, d = x.shape
    codes = np.zeros((n, d), dtype=np.uint8)
    scales = np.zeros(n, dtype=np.float32)
    inv = np.float32(1.0 / 448.0)
    for i in range(n):
        amax = np.float32(np.max(np.abs(x[i])))
        s = np.float32(max(amax, np.float32(1e-4)) * inv)
        if ue8m0:
            s = np.float32(2.0 ** np.ceil(np.log2(np.float64(s))))
        scales[i] = s
        for e in range(d):
            v = np.float32(x[i, e] / s)
            codes[i, e] = e4m3_code(np.clip(v, -448.0, 448.0))
    return codes, scales


def hadamard(v):
    """Sylvester Walsh-Hadamard of the last dim (a power of 2), scaled d^-0.5, in float64 then float32."""
    d = v.shape[-1]
    H = np.array([[1.0]])
    while H.shape[0] < d:
        H = np.block([[H, H], [H, -H]])
    return (v.astype(np.float64) @ H.T / np.sqrt(d)).astype(np.float32)


def deepseek_fp8():
    t, s, h, d = 3, 9, 4, 32
    q = rs.randn(t, h, d).astype(np.float32)
    k = rs.randn(s, d).astype(np.float32)
    w = rs.randn(t, h).astype(np.float32)
    weight_scale = np.float32(h ** -0.5 * d ** -0.5)
    for ue8m0 in (False, True):
        tag = "ue8m0" if ue8m0 else "f32"
        # The library's float32 Hadamard is a butterfly; the fixture takes the rotated values from a
        # matrix product, so the test feeds these rotated values in with hadamard: false.
        qr, kr = hadamard(q), hadamard(k)
        q8, qs = act_quant(qr.reshape(t * h, d), ue8m0)
        k8, ks = act_quant(kr, ue8m0)
        qv, kvals = E4M3[q8].astype(np.float32), E4M3[k8].astype(np.float32)
        out = np.zeros((t, s), dtype=np.float32)
        for r in range(t):
            for j in range(s):
                score = np.float32(0)
                for hh in range(h):
                    dot = np.float32(0)
                    for e in range(d):
                        dot = np.float32(dot + np.float32(qv[r * h + hh, e] * kvals[j, e]))
                    wq = np.float32(np.float32(w[r, hh] * weight_scale) * qs[r * h + hh])
                    score = np.float32(score + np.float32(wq * max(dot, np.float32(0))))
                out[r, j] = np.float32(score * ks[j])
        save(f"deepseek_fp8_{tag}_k8", k8)
        save(f"deepseek_fp8_{tag}_kscales", ks)
        save(f"deepseek_fp8_{tag}_q8", q8.reshape(t, h, d))
        save(f"deepseek_fp8_{tag}_qscales", qs.reshape(t, h))
        save(f"deepseek_fp8_{tag}_scores", out)
        save("deepseek_fp8_q_rotated", qr)
        save("deepseek_fp8_k_rotated", kr)
    save("deepseek_fp8_w", w)
    save("deepseek_fp8_weight_scale", np.array([weight_scale], dtype=np.float32))


flashmla_prefill()
flashmla_decode()
vllm_mqa_logits()
vllm_paged_mqa_logits()
deepseek_fp8()
print("wrote", len(os.listdir(OUT)), "fixtures to", OUT)
