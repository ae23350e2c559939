#!/usr/bin/python3
"""Writes the golden .npy fixtures of test/weights/golden.test.ts.

A plain NumPy / PyTorch (1.13, CPU) restatement, written from reading
DeepSeek-V3's inference code (model.py `linear`, `weight_dequant`; kernel.py
`act_quant`, `fp8_gemm`):

- the FP8 checkpoint form of a weight [out, in]: per 128 x 128 block (edge
  blocks partial) scale = f32(amax / 448), codes the e4m3 value nearest to
  f32(w / scale), ties to the even code (found by searching the 256 code
  values: torch 1.13 has no float8);
- gemm_impl 'bf16': weight_dequant (f32(e4m3 * scale)), cast to bfloat16 by
  torch (round to nearest even), then y = x W^T;
- gemm_impl 'fp8': act_quant(x) per 128 along in (amax clamped to 1e-4,
  times f32(1/448); 'ue8m0' rounds the scale up to a power of two), then
  fp8_gemm: per 128-block dot of e4m3 values, times f32(a_s * b_s), added
  to a float32 accumulator;

with every sum in float32 in the library's stated order (four lane
partials j = l mod 4, (l0 + l1) + (l2 + l3), then the tail).

Run from the repository root: /usr/bin/python3 test/weights/golden/make.py
"""
import os

import numpy as np
import torch

OUT = os.path.dirname(os.path.abspath(__file__))
f32 = np.float32
rs = np.random.RandomState(16)


def save(name, array):
    np.save(os.path.join(OUT, name + ".npy"), np.ascontiguousarray(array))


def e4m3_values():
    v = np.zeros(256, dtype=np.float64)
    for c in range(256):
        e, m, sign = (c >> 3) & 15, c & 7, -1.0 if c & 0x80 else 1.0
        v[c] = np.nan if (e == 15 and m == 7) else sign * (m * 2.0**-9 if e == 0 else (8 + m) * 2.0 ** (e - 10))
    return v


E4M3 = e4m3_values()
FINITE = [c for c in range(128) if c != 0x7F]


def e4m3_encode(x):
    """Nearest code of the same sign, ties to the even code, saturating at 448 (x float32 array)."""
    out = np.zeros(x.shape, dtype=np.uint8)
    mags = E4M3[FINITE]
    for i, v in np.ndenumerate(x.astype(np.float64)):
        a = min(abs(v), 448.0)
        err = np.abs(mags - a)
        best = np.flatnonzero(err == err.min())
        code = FINITE[best[0]] if len(best) == 1 else [FINITE[b] for b in best if FINITE[b] % 2 == 0][0]
        out[i] = code | (0x80 if (v < 0 or (v == 0 and np.signbit(v))) else 0)
    return out


def ordered_sum(p):
    """Rows of float32 products p [rows, len] summed in the stated order."""
    n = p.shape[1]
    n4 = n - n % 4
    lanes = [np.zeros(p.shape[0], dtype=f32) for _ in range(4)]
    for j in range(0, n4, 4):
        for l in range(4):
            lanes[l] = (lanes[l] + p[:, j + l]).astype(f32)
    s = ((lanes[0] + lanes[1]).astype(f32) + (lanes[2] + lanes[3]).astype(f32)).astype(f32)
    for j in range(n4, n):
        s = (s + p[:, j]).astype(f32)
    return s


def quantize_weight(w):
    out, inn = w.shape
    rows, cols = -(-out // 128), -(-inn // 128)
    codes = np.zeros(w.shape, dtype=np.uint8)
    scale = np.zeros((rows, cols), dtype=f32)
    for br in range(rows):
        for bc in range(cols):
            blk = w[br * 128:(br + 1) * 128, bc * 128:(bc + 1) * 128]
            amax = f32(np.abs(blk).max())
            s = f32(1) if amax == 0 else f32(amax / f32(448))
            scale[br, bc] = s
            codes[br * 128:(br + 1) * 128, bc * 128:(bc + 1) * 128] = e4m3_encode((blk / s).astype(f32))
    return codes, scale


def weight_dequant_bf16(codes, scale):
    out, inn = codes.shape
    full = np.repeat(np.repeat(scale, 128, axis=0), 128, axis=1)[:out, :inn]
    deq = (E4M3[codes].astype(f32) * full).astype(f32)
    return torch.from_numpy(deq).to(torch.bfloat16).to(torch.float32).numpy()


def act_quant(x, ue8m0):
    n, inn = x.shape
    nb = -(-inn // 128)
    codes = np.zeros(x.shape, dtype=np.uint8)
    scales = np.zeros((n, nb), dtype=f32)
    for r in range(n):
        for b in range(nb):
            blk = x[r, b * 128:(b + 1) * 128]
            amax = max(f32(np.abs(blk).max()), f32(1e-4))
            s = f32(f32(amax) * f32(1 / 448))
            if ue8m0:
                bits = np.array([s], dtype=f32).view(np.uint32)[0]
                exp = int((bits >> 23) & 0xFF) - 127 + (1 if bits & 0x7FFFFF else 0)
                s = f32(2.0**exp)
            scales[r, b] = s
            codes[r, b * 128:(b + 1) * 128] = e4m3_encode(np.clip((blk / s).astype(f32), -448, 448))
    return codes, scales


def linear_bf16(x, wd):
    return np.stack([ordered_sum((x[r][None, :] * wd).astype(f32)) for r in range(x.shape[0])])


def fp8_gemm(xq, xs, codes, scale):
    n, inn = xq.shape
    out = codes.shape[0]
    y = np.zeros((n, out), dtype=f32)
    wv = E4M3[codes].astype(f32)
    for r in range(n):
        xv = E4M3[xq[r]].astype(f32)
        acc = np.zeros(out, dtype=f32)
        for b in range(-(-inn // 128)):
            p = ordered_sum((xv[None, b * 128:(b + 1) * 128] * wv[:, b * 128:(b + 1) * 128]).astype(f32))
            sc = (xs[r, b] * scale[np.arange(out) // 128, b]).astype(f32)
            acc = (acc + (p * sc).astype(f32)).astype(f32)
        y[r] = acc
    return y


out, inn, n = 130, 261, 3
w = (rs.randn(out, inn) * 0.05).astype(f32)
w[:, 200:] *= 40  # a second column block of larger values
x = (rs.randn(n, inn) * 2).astype(f32)
codes, scale = quantize_weight(w)
save("w", w)
save("x", x)
save("codes", codes)
save("scale", scale)
wd = weight_dequant_bf16(codes, scale)
save("dequant_bf16", wd)
save("y_bf16", linear_bf16(x, wd))
for fmt in ["float32", "ue8m0"]:
    xq, xs = act_quant(x, fmt == "ue8m0")
    save("xq_" + fmt, xq)
    save("xs_" + fmt, xs)
    save("y_fp8_" + fmt, fp8_gemm(xq, xs, codes, scale))
print("wrote", OUT)
