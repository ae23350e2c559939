#!/usr/bin/python3
"""Writes the golden .npy fixtures of test/model/mla.test.ts.

A plain float32 PyTorch (1.13, CPU) restatement of DeepSeek-V3.2's
inference/model.py, written from reading it: precompute_freqs_cis (YaRN),
apply_rotary_emb (interleaved for MLA, non-interleaved for the indexer, the
2025-11-17 fix), RMSNorm, the indexer's LayerNorm, Indexer.forward and
MLA.forward's absorbed path (wkv_b's key part absorbed into q, its value part
applied after attention, then wo). Differences from model.py, all forced by
plain float32 on a CPU:

- every tensor is float32 (model.py runs bf16 activations); the indexer scores
  in float32 without act_quant / fp8_index and without the Hadamard rotation
  (an orthogonal map: the same scores in exact arithmetic);
- FP8 weights (the fp8_ case) are dequantized here as weight_dequant does,
  code value times the 128 x 128 block's scale in float32, rounded to bf16
  (DeepSeek's default dtype; the library's linear with gemmImpl 'bf16'),
  for every projection and for wkv_b's absorbed halves alike; the
  fp8gemm_ case reads the same codes as model.py's linear does with FP8
  weights, act_quant of the input (e4m3 by searching the code values, ties
  to even) then fp8_gemm, for every projection but wkv_b (dequantized, as
  the decode branch does);
- the glm_ case rotates the indexer's q and k on interleaved pairs, as
  Transformers' GlmMoeDsaIndexer (GLM-5) does;
- a step of t tokens at start_pos attends causally over the whole cache (the
  absorbed decode branch with a causal mask), where model.py's prefill branch
  only handles start_pos = 0 (it is checked equal to it below).

Each sequence of a case runs alone (bsz 1), so sequences may have different
lengths; the test batches them through one cache.

Run from the repository root: /usr/bin/python3 test/golden/mla/make.py
"""
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.dirname(os.path.abspath(__file__))

CFG = dict(
    dim=64, n_heads=4, q_lora_rank=32, kv_lora_rank=16, qk_nope_head_dim=8, qk_rope_head_dim=8, v_head_dim=8,
    index_n_heads=2, index_head_dim=16, index_topk=8, rope_theta=10000.0, rope_factor=4.0,
    original_seq_len=256, beta_fast=32, beta_slow=1, mscale=1.0, max_seq_len=512, eps=1e-6,
)
PROMPTS = [13, 9]  # prompt tokens of sequence 0 and 1
DECODES = 3  # decode steps of one token each, both sequences
SPEC = 2  # then one step of 2 tokens each (speculative)


def save(name, array):
    np.save(os.path.join(OUT, name + ".npy"), np.ascontiguousarray(array))


# ------------------------------------------------------------ model.py, restated
def precompute_freqs_cis(c):
    dim, base, factor = c["qk_rope_head_dim"], c["rope_theta"], c["rope_factor"]

    def correction_dim(rotations):
        return dim * math.log(c["original_seq_len"] / (rotations * 2 * math.pi)) / (2 * math.log(base))

    freqs = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    if c["max_seq_len"] > c["original_seq_len"]:
        low = max(math.floor(correction_dim(c["beta_fast"])), 0)
        high = min(math.ceil(correction_dim(c["beta_slow"])), dim - 1)
        if low == high:
            high += 0.001
        ramp = torch.clamp((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low), 0, 1)
        smooth = 1 - ramp
        freqs = freqs / factor * (1 - smooth) + freqs * smooth
    angles = torch.outer(torch.arange(c["max_seq_len"]), freqs)  # [max_seq_len, dim/2] float32
    return freqs, torch.polar(torch.ones_like(angles), angles)


def apply_rotary_emb(x, freqs_cis, interleaved):
    """x [b, s, h, r], freqs_cis [s, r/2]; pairs (2i, 2i+1) or (i, i + r/2)."""
    shape = x.shape
    if not interleaved:
        x = x.view(*shape[:-1], 2, -1).transpose(-1, -2).contiguous()
    z = torch.view_as_complex(x.float().view(*shape[:-1], -1, 2))  # [b, s, h, r/2]
    y = torch.view_as_real(z * freqs_cis.view(1, z.size(1), 1, z.size(-1))).flatten(3)  # [b, s, h, r]
    if not interleaved:
        y = torch.cat([y[..., 0::2], y[..., 1::2]], dim=-1)
    return y


def rms_norm(x, weight, eps):
    var = x.pow(2).mean(-1, keepdim=True)
    return weight * (x * torch.rsqrt(var + eps))


class Layer:
    """One MLA + Indexer layer with its caches (float32 kv latent, rope keys, indexer keys)."""

    def __init__(self, c, w, fp8_gemm=None, indexer_interleaved=False):
        self.c, self.w, self.fp8_gemm, self.indexer_interleaved = c, w, fp8_gemm, indexer_interleaved
        self.freqs, self.freqs_cis = precompute_freqs_cis(c)
        qk_head_dim = c["qk_nope_head_dim"] + c["qk_rope_head_dim"]
        self.softmax_scale = qk_head_dim ** -0.5
        if c["max_seq_len"] > c["original_seq_len"]:
            m = 0.1 * c["mscale"] * math.log(c["rope_factor"]) + 1.0
            self.softmax_scale = self.softmax_scale * m * m
        self.kv_cache = torch.zeros(1, c["max_seq_len"], c["kv_lora_rank"])
        self.pe_cache = torch.zeros(1, c["max_seq_len"], c["qk_rope_head_dim"])
        self.k_cache = torch.zeros(1, c["max_seq_len"], c["index_head_dim"])

    def linear(self, name, x):
        """y = x W^T (model.py's linear): the float GEMM, or with FP8 weights read 'fp8' act_quant(x) then fp8_gemm."""
        if self.fp8_gemm is None:
            return x @ self.w[name].T
        codes, sb = self.fp8_gemm[name]
        return torch.from_numpy(fp8_gemm(x.numpy(), codes, sb))

    def indexer(self, x, qr, start_pos, freqs_cis, mask):
        c, w = self.c, self.w
        bsz, seqlen, _ = x.shape
        end_pos = start_pos + seqlen
        h, d, r = c["index_n_heads"], c["index_head_dim"], c["qk_rope_head_dim"]
        q = self.linear("indexer.wq_b", qr).view(bsz, seqlen, h, d)  # [b, s, h, d]
        q_pe, q_nope = torch.split(q, [r, d - r], dim=-1)
        q = torch.cat([apply_rotary_emb(q_pe, freqs_cis, self.indexer_interleaved), q_nope], dim=-1)
        k = F.layer_norm(self.linear("indexer.wk", x), (d,), w["indexer.k_norm.weight"], w["indexer.k_norm.bias"], 1e-6)  # [b, s, d]
        k_pe, k_nope = torch.split(k, [r, d - r], dim=-1)
        k = torch.cat([apply_rotary_emb(k_pe.unsqueeze(2), freqs_cis, self.indexer_interleaved).squeeze(2), k_nope], dim=-1)
        self.k_cache[:bsz, start_pos:end_pos] = k
        weights = self.linear("indexer.weights_proj", x) * h ** -0.5 * d ** -0.5  # [b, s, h]
        logits = torch.einsum("bshd,btd->bsht", q, self.k_cache[:bsz, :end_pos]).relu()  # [b, s, h, end]
        score = (logits * weights.unsqueeze(-1)).sum(dim=2) + mask  # [b, s, end]
        k_sel = min(c["index_topk"], end_pos)
        values, idx = score.topk(k_sel, dim=-1)
        return score, values, idx

    def step(self, x, start_pos):
        """x [1, s, dim] at positions start_pos ..; returns out [1, s, dim], top-k positions [1, s, k] (-1 none), and the attention inputs."""
        c, w = self.c, self.w
        bsz, seqlen, _ = x.shape
        end_pos = start_pos + seqlen
        H, nope, r, v, kvr = c["n_heads"], c["qk_nope_head_dim"], c["qk_rope_head_dim"], c["v_head_dim"], c["kv_lora_rank"]
        freqs_cis = self.freqs_cis[start_pos:end_pos]
        qr = rms_norm(self.linear("wq_a", x), w["q_norm"], c["eps"])  # [b, s, q_lora_rank]
        q = self.linear("wq_b", qr).view(bsz, seqlen, H, nope + r)
        q_nope, q_pe = torch.split(q, [nope, r], dim=-1)
        q_pe = apply_rotary_emb(q_pe, freqs_cis, True)  # [b, s, H, r]
        kv = self.linear("wkv_a", x)
        kv, k_pe = torch.split(kv, [kvr, r], dim=-1)
        kv = rms_norm(kv, w["kv_norm"], c["eps"])  # [b, s, kvr]
        k_pe = apply_rotary_emb(k_pe.unsqueeze(2), freqs_cis, True)  # [b, s, 1, r]
        self.kv_cache[:bsz, start_pos:end_pos] = kv
        self.pe_cache[:bsz, start_pos:end_pos] = k_pe.squeeze(2)
        wkv_b = w["wkv_b"].view(H, -1, kvr)  # [H, nope + v, kvr]
        q_abs = torch.einsum("bshd,hdc->bshc", q_nope, wkv_b[:, :nope])  # [b, s, H, kvr]
        scores = (torch.einsum("bshc,btc->bsht", q_abs, self.kv_cache[:bsz, :end_pos])
                  + torch.einsum("bshr,btr->bsht", q_pe, self.pe_cache[:bsz, :end_pos])) * self.softmax_scale  # [b, s, H, end]
        # causal over the cache: query i (position start_pos + i) sees keys j <= start_pos + i
        mask = torch.full((seqlen, end_pos), float("-inf")).triu_(start_pos + 1)  # [s, end]
        index_score, index_values, topk = self.indexer(x, qr, start_pos, freqs_cis, mask)
        index_mask = torch.full((bsz, seqlen, end_pos), float("-inf")).scatter_(-1, topk, 0) + mask
        p = (scores + index_mask.unsqueeze(2)).softmax(dim=-1)  # [b, s, H, end]
        o = torch.einsum("bsht,btc->bshc", p, self.kv_cache[:bsz, :end_pos])  # [b, s, H, kvr]
        o_v = torch.einsum("bshc,hdc->bshd", o, wkv_b[:, -v:])  # [b, s, H, v]
        out = self.linear("wo", o_v.flatten(2))  # [b, s, dim]
        positions = torch.where(torch.isinf(index_values), torch.full_like(topk, -1), topk)  # masked picks are none
        return dict(
            out=out, indices=positions, index_score=index_score, o=o,
            q=torch.cat([q_abs, q_pe], dim=-1), kv=torch.cat([kv, k_pe.squeeze(2)], dim=-1).unsqueeze(2),
            prefill_check=self.mha_prefill(x, q_nope, q_pe, kv, k_pe, topk, mask) if start_pos == 0 else None,
        )

    def mha_prefill(self, x, q_nope, q_pe, kv, k_pe, topk, mask):
        """model.py's MHA prefill branch (start_pos 0: keys are this call's tokens), for the self-check."""
        c, w = self.c, self.w
        bsz, seqlen, _ = x.shape
        H, nope, v = c["n_heads"], c["qk_nope_head_dim"], c["v_head_dim"]
        q = torch.cat([q_nope, q_pe], dim=-1)
        kvb = (kv @ w["wkv_b"].T).view(bsz, seqlen, H, nope + v)
        k_nope, vv = torch.split(kvb, [nope, v], dim=-1)
        k = torch.cat([k_nope, k_pe.expand(-1, -1, H, -1)], dim=-1)
        scores = torch.einsum("bshd,bthd->bsht", q, k) * self.softmax_scale
        index_mask = torch.full((bsz, seqlen, seqlen), float("-inf")).scatter_(-1, topk, 0) + mask
        scores = (scores + index_mask.unsqueeze(2)).softmax(dim=-1)
        return self.linear("wo", torch.einsum("bsht,bthd->bshd", scores, vv).flatten(2))


# ------------------------------------------------------------ weights
E4M3 = np.zeros(256, dtype=np.float64)
for code in range(256):
    e, mnt, sign = (code >> 3) & 15, code & 7, -1.0 if code & 0x80 else 1.0
    E4M3[code] = np.nan if (e == 15 and mnt == 7) else sign * (mnt * 2.0 ** -9 if e == 0 else (8 + mnt) * 2.0 ** (e - 10))
ORDER = np.argsort(E4M3[:0x7F])  # non-negative finite codes by value (already ascending)


def to_fp8(wt):
    """W [out, in] float32 -> e4m3 codes (nearest, ties to the even code) and scales [ceil(out/128), ceil(in/128)] (amax / 448)."""
    out_f, in_f = wt.shape
    sb = np.zeros(((out_f + 127) // 128, (in_f + 127) // 128), dtype=np.float32)
    codes = np.zeros(wt.shape, dtype=np.uint8)
    pos = E4M3[:0x7F]
    for bi in range(sb.shape[0]):
        for bj in range(sb.shape[1]):
            blk = wt[bi * 128:(bi + 1) * 128, bj * 128:(bj + 1) * 128]
            s = np.float32(np.abs(blk).max() / np.float32(448.0))
            sb[bi, bj] = s
            a = np.abs(blk.astype(np.float64) / np.float64(s))
            j = np.clip(np.searchsorted(pos, a), 1, len(pos) - 1)
            lo, hi = j - 1, j
            pick = np.where((a - pos[lo] < pos[hi] - a) | ((a - pos[lo] == pos[hi] - a) & (lo % 2 == 0)), lo, hi)
            codes[bi * 128:(bi + 1) * 128, bj * 128:(bj + 1) * 128] = pick.astype(np.uint8) | np.where(blk < 0, 0x80, 0).astype(np.uint8)
    return codes, sb


def dequant(codes, sb):
    """weight_dequant: f32(e4m3(code) * scale), then (DeepSeek's default dtype) rounded to bf16, nearest even."""
    rows = np.arange(codes.shape[0]) // 128
    cols = np.arange(codes.shape[1]) // 128
    u = (E4M3[codes].astype(np.float32) * sb[rows][:, cols]).astype(np.float32).view(np.uint32).astype(np.uint64)
    return (((u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000).astype(np.uint32)).view(np.float32)


def e4m3_round(a):
    """|a| <= 448 (float64) -> nearest non-negative e4m3 code, ties to the even code."""
    pos = E4M3[:0x7F]
    j = np.clip(np.searchsorted(pos, a), 1, len(pos) - 1)
    lo, hi = j - 1, j
    return np.where((a - pos[lo] < pos[hi] - a) | ((a - pos[lo] == pos[hi] - a) & (lo % 2 == 0)), lo, hi)


def act_quant(x):
    """kernel.py's act_quant along the last dim, blocks of 128: scale f32(max(amax, 1e-4) * f32(1/448)), codes of x / scale clamped to 448."""
    shape = x.shape
    x = x.reshape(-1, shape[-1]).astype(np.float32)
    nb = (shape[-1] + 127) // 128
    codes = np.zeros(x.shape, dtype=np.int64)
    scales = np.zeros((x.shape[0], nb), dtype=np.float32)
    inv = np.float32(1.0 / 448.0)
    for b in range(nb):
        blk = x[:, b * 128:(b + 1) * 128]
        s = (np.maximum(np.abs(blk).max(axis=1), np.float32(1e-4)) * inv).astype(np.float32)
        scales[:, b] = s
        v = np.clip((blk / s[:, None]).astype(np.float32), -448, 448).astype(np.float64)
        codes[:, b * 128:(b + 1) * 128] = e4m3_round(np.abs(v)) | np.where(v < 0, 0x80, 0)
    return codes, scales, shape


def fp8_gemm(x, wcodes, wscale):
    """kernel.py's fp8_gemm: per 128-block of in, the exact e4m3 dot times x's block scale times W's block scale, summed over blocks."""
    xq, xs, shape = act_quant(x)
    out_f, in_f = wcodes.shape
    y = np.zeros((xq.shape[0], out_f), dtype=np.float64)
    for b in range((in_f + 127) // 128):
        p = E4M3[xq[:, b * 128:(b + 1) * 128]] @ E4M3[wcodes[:, b * 128:(b + 1) * 128]].T  # [n, out]
        ws = wscale[np.arange(out_f) // 128, b]
        y += p * (xs[:, b][:, None].astype(np.float64) * ws[None, :].astype(np.float64))
    return y.astype(np.float32).reshape(*shape[:-1], out_f)


LINEARS = ["wq_a", "wq_b", "wkv_a", "wkv_b", "wo", "indexer.wq_b", "indexer.wk", "indexer.weights_proj"]


def make_weights(c, rs):
    H, nope, r, v = c["n_heads"], c["qk_nope_head_dim"], c["qk_rope_head_dim"], c["v_head_dim"]
    shapes = {
        "wq_a": (c["q_lora_rank"], c["dim"]),
        "wq_b": (H * (nope + r), c["q_lora_rank"]),
        "wkv_a": (c["kv_lora_rank"] + r, c["dim"]),
        "wkv_b": (H * (nope + v), c["kv_lora_rank"]),
        "wo": (c["dim"], H * v),
        "indexer.wq_b": (c["index_n_heads"] * c["index_head_dim"], c["q_lora_rank"]),
        "indexer.wk": (c["index_head_dim"], c["dim"]),
        "indexer.weights_proj": (c["index_n_heads"], c["dim"]),
    }
    w = {name: (rs.randn(*shape) / math.sqrt(shape[1])).astype(np.float32) for name, shape in shapes.items()}
    w["q_norm"] = (1 + 0.2 * rs.randn(c["q_lora_rank"])).astype(np.float32)
    w["kv_norm"] = (1 + 0.2 * rs.randn(c["kv_lora_rank"])).astype(np.float32)
    w["indexer.k_norm.weight"] = (1 + 0.2 * rs.randn(c["index_head_dim"])).astype(np.float32)
    w["indexer.k_norm.bias"] = (0.1 * rs.randn(c["index_head_dim"])).astype(np.float32)
    return w


# ------------------------------------------------------------ the cases
def min_gap(index_score, k):
    """The smallest relative gap between the k-th and (k+1)-th eligible score of any row (top-k stability)."""
    gaps = []
    for row in index_score.reshape(-1, index_score.shape[-1]):
        ok = np.sort(row[np.isfinite(row)])[::-1]
        if len(ok) > k:
            gaps.append((ok[k - 1] - ok[k]) / max(abs(ok[k - 1]), 1e-30))
    return min(gaps) if gaps else float("inf")


def run_case(prefix, w_np, xs, write=True, fp8_gemm=None, indexer_interleaved=False):
    w = {k: torch.from_numpy(v) for k, v in w_np.items()}
    steps = {}
    gap = float("inf")
    for seq, prompt in enumerate(PROMPTS):
        layer = Layer(CFG, w, fp8_gemm, indexer_interleaved)
        pos = 0
        r = layer.step(torch.from_numpy(xs["prompt%d" % seq]), 0)
        gap = min(gap, min_gap(r["index_score"].numpy(), CFG["index_topk"]))
        assert torch.allclose(r["prefill_check"], r["out"], rtol=1e-5, atol=1e-6), "absorbed != model.py's MHA prefill"
        steps["prompt%d" % seq] = r
        pos += prompt
        for i in range(DECODES):
            r = layer.step(torch.from_numpy(xs["decode"][i, seq:seq + 1]), pos)
            gap = min(gap, min_gap(r["index_score"].numpy(), CFG["index_topk"]))
            steps["decode%d_%d" % (i, seq)] = r
            pos += 1
        r = layer.step(torch.from_numpy(xs["spec"][seq:seq + 1]), pos)
        gap = min(gap, min_gap(r["index_score"].numpy(), CFG["index_topk"]))
        steps["spec_%d" % seq] = r
    if not write:
        return gap
    for seq in range(len(PROMPTS)):
        r = steps["prompt%d" % seq]
        save(prefix + "prompt%d_out" % seq, r["out"].numpy())
        save(prefix + "prompt%d_indices" % seq, r["indices"].numpy().astype(np.int32))
        if seq == 0 and prefix != "glm_":  # the MLA half's own outputs (the indexer's rotation does not reach them)
            save(prefix + "prompt0_q", r["q"].numpy()[0])
            save(prefix + "prompt0_kv", r["kv"].numpy()[0])
    # decode step i: rows (seq 0, seq 1), as the test batches them
    save(prefix + "decode_out", np.stack([np.concatenate([steps["decode%d_%d" % (i, s)]["out"].numpy() for s in range(2)]) for i in range(DECODES)]))
    save(prefix + "decode_indices", np.stack([np.concatenate([steps["decode%d_%d" % (i, s)]["indices"].numpy() for s in range(2)]) for i in range(DECODES)]).astype(np.int32))
    save(prefix + "spec_out", np.concatenate([steps["spec_%d" % s]["out"].numpy() for s in range(2)]))
    save(prefix + "spec_indices", np.concatenate([steps["spec_%d" % s]["indices"].numpy() for s in range(2)]).astype(np.int32))
    return gap


def inputs(seed):
    rs = np.random.RandomState(seed)
    w = make_weights(CFG, rs)
    xs = {
        "prompt0": rs.randn(1, PROMPTS[0], CFG["dim"]).astype(np.float32),
        "prompt1": rs.randn(1, PROMPTS[1], CFG["dim"]).astype(np.float32),
        "decode": rs.randn(DECODES, 2, 1, CFG["dim"]).astype(np.float32),
        "spec": rs.randn(2, SPEC, CFG["dim"]).astype(np.float32),
    }
    w8 = dict(w)
    for name in LINEARS:
        w8[name] = dequant(*to_fp8(w[name]))
    return w, w8, xs


# The first seed whose every top-k boundary is clear of ties (the indexer's
# ReLU makes exact-zero scores common with 2 heads; torch and the library
# break ties differently, so a tie at the boundary would pick other keys).
SEED = 66


def main():
    seed = SEED
    while True:
        w, w8, xs = inputs(seed)
        gemm = {name: to_fp8(w[name]) for name in LINEARS if name != "wkv_b"}
        gaps = [run_case("", w, xs, False), run_case("", w8, xs, False), run_case("", w8, xs, False, fp8_gemm=gemm), run_case("", w, xs, False, indexer_interleaved=True)]
        if min(gaps) > 1e-3:
            break
        seed += 1
    if seed != SEED:
        print("SEED = %d gives tie-free top-k boundaries" % seed)
    for name, x in xs.items():
        save("x_" + name, x)
    for name, x in w.items():
        save("w_" + name, x)
    freqs, _ = precompute_freqs_cis(CFG)
    save("freqs", freqs.numpy())
    # DeepSeek-V3.2's own RoPE (64 dims, YaRN factor 40 over 4096) at long-context positions: freqs_cis as torch computes it.
    ds = dict(CFG, qk_rope_head_dim=64, rope_factor=40.0, original_seq_len=4096, max_seq_len=4097)
    ds_freqs, _ = precompute_freqs_cis(ds)
    positions = torch.tensor([0, 1, 4095, 4096, 65537, 131071, 163839])
    angles = torch.outer(positions, ds_freqs)  # float32, as torch.outer(torch.arange(max_seq_len), freqs) holds them
    cis = torch.polar(torch.ones_like(angles), angles)
    save("ds_freqs", ds_freqs.numpy())
    save("ds_positions", positions.numpy().astype(np.int32))
    save("ds_cis", torch.view_as_real(cis).numpy())  # [P, 32, 2]: cos, sin
    gap = run_case("f32_", w, xs)
    # FP8 weights: codes and scales stored, the restatement runs their dequantized values.
    for name in LINEARS:
        codes, sb = to_fp8(w[name])
        save("w8_" + name, codes)
        save("w8_" + name + ".scale", sb)
    gap8 = run_case("fp8_", w8, xs)
    # The same FP8 weights read 'fp8' (gemm_impl fp8): act_quant + fp8_gemm for every projection, wkv_b dequantized.
    gap8g = run_case("fp8gemm_", w8, xs, fp8_gemm=gemm)
    print("smallest top-k gap with fp8_gemm %.3g" % gap8g)
    # GLM-5 (glm_moe_dsa): the indexer's RoPE on interleaved pairs (Transformers' GlmMoeDsaIndexer), float32 weights.
    gap_glm = run_case("glm_", w, xs, indexer_interleaved=True)
    print("smallest top-k gap with the interleaved indexer %.3g" % gap_glm)
    print("fixtures written to", OUT, "smallest top-k gap %.3g (float32), %.3g (fp8)" % (gap, gap8))


if __name__ == "__main__":
    main()
