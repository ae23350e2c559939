/**
 * The indexer's projections and key/query preparation as kernels, so a
 * decode step can run them on the pool: `projections` (the three
 * projections of the new tokens, each `linear`'s kernel over its weight in
 * its stored form; src/weights/linear-kernels.ts) and `prepare` (LayerNorm
 * of the new keys, non-interleaved partial RoPE of keys and query heads at
 * their positions, optional Hadamard rotation; over token rows).
 *
 * 'indexer.projections' args: the indexer's three projections of n tokens
 * in one step (one dispatch on the pool, not three): q = qr wqB^T
 * [n, h*d], k = x wk^T [n, d], w = x weightsProj^T [n, h]; qr, x, q, k, w,
 * n, dim, qRank, h, d, simd, and for each weight P of wqB, wk, weightsProj:
 * P (its data), PFormat, PScale (fp8, else null), PFp8 (read by the FP8
 * GEMM); qrQ, qrS and xQ, xS: act_quant of qr and x (codes, scales; null
 * where no weight reading them is); rows = the output features of q, then
 * k, then w, [0, h*d + d + h).
 * 'indexer.prepare' args: q [n, h*d] and k [n, d] (both rewritten in place),
 * positions Int32Array [n], gamma [d], beta [d], eps, ropeDim, freqs
 * Float64Array [ropeDim / 2], h, d, rotateQ, rotateK; rows = tokens.
 */
import type { KernelArgs } from '../plan.js';
import { linearRows } from '../weights/linear-kernels.js';
import { hadamardInPlace } from './fp8.js';

/** The projections of 'indexer.projections', in the order of its output features: [input, input codes, input scales, weight, output, inDim]. */
const PARTS = [
  ['qr', 'qrQ', 'qrS', 'wqB', 'q', 'qRank'],
  ['x', 'xQ', 'xS', 'wk', 'k', 'dim'],
  ['x', 'xQ', 'xS', 'weightsProj', 'w', 'dim'],
] as const;

export function projectionRows(args: KernelArgs, o0: number, o1: number): void {
  const n = args.n as number, h = args.h as number, d = args.d as number;
  const outDims = [h * d, d, h];
  let first = 0;
  PARTS.forEach(([x, xq, xs, weight, y, inName], i) => {
    const outDim = outDims[i];
    const from = Math.max(o0, first), to = Math.min(o1, first + outDim);
    if (from < to) {
      linearRows(
        {
          x: args[x], xq: args[xq], xs: args[xs], n, inDim: args[inName], outDim, y: args[y], simd: args.simd,
          format: args[`${weight}Format`], data: args[weight], scale: args[`${weight}Scale`], fp8Gemm: args[`${weight}Fp8`],
        },
        from - first,
        to - first,
      );
    }
    first += outDim;
  });
}

/**
 * Non-interleaved RoPE on v[at .. at+ropeDim): pairs (i, i + half), in
 * float32 as DeepSeek's `precompute_freqs_cis` and `apply_rotary_emb` compute
 * it: angle = f32(position * freqs[i]), its cos and sin rounded to float32,
 * and a complex64 multiply (each product rounded, then the sum). An angle in
 * float64 drifts from torch's by up to 4e-3 in cos/sin past position 10^5,
 * enough to flip near-tie top-k picks.
 */
function rope(v: Float32Array, at: number, ropeDim: number, position: number, freqs: Float64Array): void {
  const half = ropeDim / 2;
  const f32 = Math.fround;
  for (let i = 0; i < half; i++) {
    const angle = f32(position * freqs[i]);
    const c = f32(Math.cos(angle)), sn = f32(Math.sin(angle));
    const a = v[at + i], b = v[at + half + i];
    v[at + i] = f32(a * c) - f32(b * sn);
    v[at + half + i] = f32(a * sn) + f32(b * c);
  }
}

export function prepareRows(args: KernelArgs, rowStart: number, rowEnd: number): void {
  const q = args.q as Float32Array, k = args.k as Float32Array, positions = args.positions as Int32Array;
  const gamma = args.gamma as Float32Array, beta = args.beta as Float32Array, freqs = args.freqs as Float64Array;
  const eps = args.eps as number, ropeDim = args.ropeDim as number, h = args.h as number, d = args.d as number;
  const rotateQ = args.rotateQ as boolean, rotateK = args.rotateK as boolean;
  for (let r = rowStart; r < rowEnd; r++) {
    // LayerNorm (with bias) of the key, eps inside the square root.
    let mean = 0;
    for (let e = 0; e < d; e++) mean += k[r * d + e];
    mean /= d;
    let variance = 0;
    for (let e = 0; e < d; e++) variance += (k[r * d + e] - mean) ** 2;
    const inv = 1 / Math.sqrt(variance / d + eps);
    for (let e = 0; e < d; e++) k[r * d + e] = (k[r * d + e] - mean) * inv * gamma[e] + beta[e];
    const position = positions[r];
    for (let hh = 0; hh < h; hh++) {
      rope(q, (r * h + hh) * d, ropeDim, position, freqs);
      if (rotateQ) hadamardInPlace(q, (r * h + hh) * d, d);
    }
    rope(k, r * d, ropeDim, position, freqs);
    if (rotateK) hadamardInPlace(k, r * d, d);
  }
}
