/**
 * The indexer's projections and key/query preparation as kernels, so a
 * decode step can run them on the pool: `linearRows` (y = x W^T over a range of
 * output features) and `prepare` (LayerNorm of the new keys, non-interleaved
 * partial RoPE of keys and query heads at their positions, optional
 * Hadamard rotation; over token rows).
 *
 * `linearRows` args: x [n, inDim], W [outDim, inDim], y [n, outDim],
 * n, inDim, outDim, simd; rows = output features [o0, o1).
 * 'indexer.projections' args: the indexer's three projections of n tokens
 * in one step (one dispatch on the pool, not three): q = qr wqB^T
 * [n, h*d], k = x wk^T [n, d], w = x weightsProj^T [n, h]; qr, wqB, q, x,
 * wk, k, weightsProj, w, n, dim, qRank, h, d, simd; rows = the output
 * features of q, then k, then w, [0, h*d + d + h).
 * 'indexer.prepare' args: q [n, h*d] and k [n, d] (both rewritten in place),
 * positions Int32Array [n], gamma [d], beta [d], eps, ropeDim, freqs
 * Float64Array [ropeDim / 2], h, d, rotateQ, rotateK; rows = tokens.
 */
import type { KernelArgs } from '../plan.js';
import { simdModule } from '../simd/index.js';
import { hadamardInPlace } from './fp8.js';

/**
 * y[r, o] = x[r, :] . W[o, :] for o in [o0, o1) and every row r. On
 * WebAssembly SIMD, blocks of W rows (about 256 KiB, L2-sized) are copied
 * into the module's memory and every x row of a chunk passes over a block
 * before the next: W streams from memory once per chunk of x rows, not once
 * per row. Each dot is the same `dot` whatever the blocking or the range,
 * so any split of the output features gives bit-identical results.
 */
export function linearRows(args: KernelArgs, o0: number, o1: number): void {
  const x = args.x as Float32Array, W = args.W as Float32Array, y = args.y as Float32Array;
  const n = args.n as number, inDim = args.inDim as number, outDim = args.outDim as number;
  const m = args.simd ? simdModule() : null;
  if (m) {
    const block = Math.max(1, Math.min(o1 - o0, Math.floor(65536 / inDim)));
    const chunk = Math.max(1, Math.min(n, Math.floor((8 << 20) / (4 * inDim))));
    const [pw, px, py] = m.layout(block * inDim * 4, chunk * inDim * 4, chunk * block * 4);
    const wv = m.f32(pw, block * inDim), xv = m.f32(px, chunk * inDim), yv = m.f32(py, chunk * block);
    for (let r0 = 0; r0 < n; r0 += chunk) {
      const r1 = Math.min(n, r0 + chunk);
      xv.set(x.subarray(r0 * inDim, r1 * inDim));
      for (let b0 = o0; b0 < o1; b0 += block) {
        const b1 = Math.min(o1, b0 + block);
        wv.set(W.subarray(b0 * inDim, b1 * inDim));
        for (let r = r0; r < r1; r++) m.exports.dotRows(px + (r - r0) * inDim * 4, pw, b1 - b0, inDim, inDim, py + (r - r0) * block * 4);
        for (let r = r0; r < r1; r++) y.set(yv.subarray((r - r0) * block, (r - r0) * block + (b1 - b0)), r * outDim + b0);
      }
    }
    return;
  }
  for (let r = 0; r < n; r++) {
    for (let o = o0; o < o1; o++) {
      let acc = 0;
      for (let e = 0; e < inDim; e++) acc += x[r * inDim + e] * W[o * inDim + e];
      y[r * outDim + o] = acc;
    }
  }
}

export function projectionRows(args: KernelArgs, o0: number, o1: number): void {
  const n = args.n as number, dim = args.dim as number, qRank = args.qRank as number, h = args.h as number, d = args.d as number;
  const simd = args.simd as boolean;
  const parts = [
    { x: args.qr, W: args.wqB, y: args.q, inDim: qRank, outDim: h * d },
    { x: args.x, W: args.wk, y: args.k, inDim: dim, outDim: d },
    { x: args.x, W: args.weightsProj, y: args.w, inDim: dim, outDim: h },
  ];
  let first = 0;
  for (const part of parts) {
    const from = Math.max(o0, first), to = Math.min(o1, first + part.outDim);
    if (from < to) linearRows({ ...part, n, simd } as KernelArgs, from - first, to - first);
    first += part.outDim;
  }
}

/** Non-interleaved RoPE on v[at .. at+ropeDim): pairs (i, i + half), angle = position * freqs[i]. */
function rope(v: Float32Array, at: number, ropeDim: number, position: number, freqs: Float64Array): void {
  const half = ropeDim / 2;
  for (let i = 0; i < half; i++) {
    const angle = position * freqs[i];
    const c = Math.cos(angle), sn = Math.sin(angle);
    const a = v[at + i], b = v[at + half + i];
    v[at + i] = a * c - b * sn;
    v[at + half + i] = a * sn + b * c;
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
