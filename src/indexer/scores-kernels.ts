/**
 * Lightning indexer score kernels. Work is split into tiles, one per
 * (query row, key block), numbered key-block-major:
 * tile = kb * nRows + (row - rowStart). A run of tiles therefore visits one
 * key block for many query rows, so the block is copied (and quantized) once
 * and stays in cache while every head of every row passes over it; the pool
 * splits the tile range, which also spreads a single decode row (t = 1) over
 * threads. Each tile's result depends only on the tile, so any split gives
 * bit-identical scores.
 *
 * Args: q [b,t,h,d], k [b,s,d], w [b,t,h] (Float32Array), out [nRows, s];
 * for int8 the keys may instead come quantized: kq [b,s,d], kScales [b,s,nb];
 * t, s, h, d, rowStart, nRows, keyBlock, weightScale, causal, offset.
 * Ineligible keys (causal: j > ti + offset) get -Infinity and cost nothing.
 */
import type { KernelArgs } from '../plan.js';
import { simdModule, type RelaxedExports, type SimdModule } from '../simd/index.js';
import { INT7_LEVELS, INT8_LEVELS, QUANT_BLOCK, int8RowScoresRef, quantizeRowsRef } from './quantize.js';

interface ScoreArgs {
  q: Float32Array;
  /** float32 keys, or null when the keys come quantized (kq, kScales; int8 and int7). */
  k: Float32Array | null;
  /** Quantized keys [b, s, d] and their scales [b, s, nb] (quantizeKeys), or null. */
  kq: Int8Array | null;
  kScales: Float32Array | null;
  w: Float32Array;
  out: Float32Array;
  t: number;
  s: number;
  h: number;
  d: number;
  rowStart: number;
  nRows: number;
  keyBlock: number;
  weightScale: number;
  causal: boolean;
  offset: number;
}

/** Calls `visit` for each tile in [tileStart, tileEnd) with its row, batch, key range and eligible end. */
function forTiles(
  a: ScoreArgs,
  tileStart: number,
  tileEnd: number,
  visit: (row: number, bi: number, j0: number, eligibleEnd: number, outRow: number) => void,
): void {
  const { t, s, rowStart, nRows, keyBlock, causal, offset, out } = a;
  for (let tile = tileStart; tile < tileEnd; tile++) {
    const kb = Math.floor(tile / nRows);
    const row = rowStart + tile - kb * nRows;
    const bi = Math.floor(row / t);
    const ti = row - bi * t;
    const j0 = kb * keyBlock;
    const j1 = Math.min(s, j0 + keyBlock);
    const eligibleEnd = causal ? Math.min(j1, Math.max(j0, ti + offset + 1)) : j1;
    const outRow = (row - rowStart) * s;
    if (eligibleEnd > j0) visit(row, bi, j0, eligibleEnd, outRow);
    if (eligibleEnd < j1) out.fill(-Infinity, outRow + eligibleEnd, outRow + j1);
  }
}

function keyBlockEnd(a: ScoreArgs, j0: number): number {
  return Math.min(a.s, j0 + a.keyBlock);
}

/**
 * float32, plain TypeScript: the fallback where WebAssembly SIMD is missing
 * (and the floor the SIMD kernel is measured against). Dots accumulate in
 * float64 (JS numbers), which is at least as accurate as float32.
 */
export function scoresTs(args: KernelArgs, tileStart: number, tileEnd: number): void {
  const a = args as unknown as ScoreArgs;
  const { q, w, out, s, h, d, weightScale } = a;
  const k = a.k!; // float32 scores always get float32 keys
  forTiles(a, tileStart, tileEnd, (row, bi, j0, end, outRow) => {
    const qRow = row * h * d;
    for (let j = j0; j < end; j++) {
      const kj = (bi * s + j) * d;
      let score = 0;
      for (let hh = 0; hh < h; hh++) {
        const qh = qRow + hh * d;
        let d0 = 0, d1 = 0, d2 = 0, d3 = 0;
        let e = 0;
        for (; e + 4 <= d; e += 4) {
          d0 += q[qh + e] * k[kj + e];
          d1 += q[qh + e + 1] * k[kj + e + 1];
          d2 += q[qh + e + 2] * k[kj + e + 2];
          d3 += q[qh + e + 3] * k[kj + e + 3];
        }
        for (; e < d; e++) d0 += q[qh + e] * k[kj + e];
        const dot = d0 + d1 + (d2 + d3);
        // ReLU that keeps NaN, as Math.max and the SIMD kernel do.
        if (dot > 0 || dot !== dot) score += Math.fround(w[row * h + hh] * weightScale) * dot;
      }
      out[outRow + j] = score;
    }
  });
}

/** Rounds up to a multiple of m. */
const up = (x: number, m: number) => Math.ceil(x / m) * m;

/** Copies rows [n, d] at src[at..] into a [n, dp] view with zero padding. */
function copyRows<T extends Float32Array | Int8Array>(dst: T, src: T, at: number, n: number, d: number, dp: number): void {
  if (d === dp) {
    dst.set(src.subarray(at, at + n * d));
    return;
  }
  for (let i = 0; i < n; i++) {
    dst.set(src.subarray(at + i * d, at + (i + 1) * d), i * dp);
    dst.fill(0, i * dp + d, (i + 1) * dp);
  }
}

/** float32 on WebAssembly SIMD (src/simd/assembly/indexer.ts, indexerBlockF32). */
export function scoresWasm(args: KernelArgs, tileStart: number, tileEnd: number): void {
  const a = args as unknown as ScoreArgs;
  const { q, w, out, s, h, d, keyBlock, weightScale } = a;
  const k = a.k!; // float32 scores always get float32 keys
  const m = simdModule()!;
  const dp = up(d, 8), hp = up(h, 2), kbp = up(keyBlock, 4);
  const [pk, pq, pw, po] = m.layout(kbp * dp * 4, hp * dp * 4, hp * 4, kbp * 4);
  const keys = m.f32(pk, kbp * dp), qv = m.f32(pq, hp * dp), wv = m.f32(pw, hp), ov = m.f32(po, kbp);
  qv.fill(0);
  wv.fill(0);
  let loaded = -1;
  forTiles(a, tileStart, tileEnd, (row, bi, j0, end, outRow) => {
    if (loaded !== bi * s + j0) {
      copyRows(keys, k, (bi * s + j0) * d, keyBlockEnd(a, j0) - j0, d, dp);
      loaded = bi * s + j0;
    }
    copyRows(qv, q, row * h * d, h, d, dp);
    for (let hh = 0; hh < h; hh++) wv[hh] = w[row * h + hh] * weightScale;
    if (dp === 128) m.exports.indexerBlockF32D128(pq, pw, pk, up(end - j0, 4), hp, po);
    else m.exports.indexerBlockF32(pq, pw, pk, up(end - j0, 4), hp, dp, po);
    out.set(ov.subarray(0, end - j0), outRow + j0);
  });
}

/** int8 on WebAssembly SIMD: keys and the query row quantized in wasm, integer dots by i32x4.dot_i16x8_s. */
export function scoresInt8Wasm(args: KernelArgs, tileStart: number, tileEnd: number): void {
  quantizedScoresWasm(args as unknown as ScoreArgs, simdModule()!, false, tileStart, tileEnd);
}

/**
 * int7 on WebAssembly SIMD: in the relaxed module, int8 key bytes against
 * biased 7-bit query bytes by i32x4.relaxed_dot_i8x16_i7x16_add_s; in the
 * baseline module, the int8 kernels on 7-bit queries. The same bits.
 */
export function scoresInt7Wasm(args: KernelArgs, tileStart: number, tileEnd: number): void {
  const m = simdModule()!;
  if (m.relaxed) int7RelaxedScores(args as unknown as ScoreArgs, m, m.relaxed, tileStart, tileEnd);
  else quantizedScoresWasm(args as unknown as ScoreArgs, m, true, tileStart, tileEnd);
}

/** int8 (or, with `int7`, 7-bit queries) in int16 lanes, dots by i32x4.dot_i16x8_s. */
function quantizedScoresWasm(a: ScoreArgs, m: SimdModule, int7: boolean, tileStart: number, tileEnd: number): void {
  const { q, k, w, out, s, h, d, keyBlock, weightScale } = a;
  const dp = up(d, 16), hp = up(h, 2), kbp = up(keyBlock, 4), nb = Math.ceil(dp / QUANT_BLOCK);
  const { kq, kScales } = a;
  // With quantized keys the float region holds their int8 bytes instead.
  const [pkf, pk, pks, pqf, pq, pqs, pw, po] = m.layout(
    kbp * dp * 4, kbp * dp * 2, nb * kbp * 4, hp * dp * 4, hp * dp * 2, nb * hp * 4, hp * 4, kbp * 4,
  );
  const keysF = m.f32(pkf, kbp * dp), keys8 = m.i8(pkf, kbp * dp), ks = m.f32(pks, nb * kbp);
  const qf = m.f32(pqf, hp * dp), wv = m.f32(pw, hp), ov = m.f32(po, kbp);
  qf.fill(0);
  wv.fill(0);
  let loaded = -1;
  forTiles(a, tileStart, tileEnd, (row, bi, j0, end, outRow) => {
    if (loaded !== bi * s + j0) {
      const n = keyBlockEnd(a, j0) - j0;
      if (kq && kScales) {
        copyRows(keys8, kq, (bi * s + j0) * d, n, d, dp);
        m.exports.widenI8(pkf, pk, n * dp);
        for (let j = 0; j < n; j++) for (let b = 0; b < nb; b++) ks[b * kbp + j] = kScales[(bi * s + j0 + j) * nb + b];
      } else {
        copyRows(keysF, k!, (bi * s + j0) * d, n, d, dp);
        m.exports.quantizeRows(pkf, pk, pks, kbp, up(n, 4), dp);
      }
      loaded = bi * s + j0;
    }
    copyRows(qf, q, row * h * d, h, d, dp);
    if (int7) m.exports.quantizeRows7(pqf, pq, pqs, hp, hp, dp);
    else m.exports.quantizeRows(pqf, pq, pqs, hp, hp, dp);
    for (let hh = 0; hh < h; hh++) wv[hh] = w[row * h + hh] * weightScale;
    if (dp === 128) m.exports.indexerBlockI8D128(pq, pqs, pw, pk, pks, up(end - j0, 4), hp, po);
    else m.exports.indexerBlockI8(pq, pqs, pw, pk, pks, kbp, up(end - j0, 4), hp, dp, po);
    out.set(ov.subarray(0, end - j0), outRow + j0);
  });
}

/** int7 on the relaxed module: keys as int8 bytes with block sums, queries as 7-bit values + 64 (src/simd/assembly/indexer-relaxed.ts). */
function int7RelaxedScores(a: ScoreArgs, m: SimdModule, r: RelaxedExports, tileStart: number, tileEnd: number): void {
  const { q, k, w, out, s, h, d, keyBlock, weightScale, kq, kScales } = a;
  const dp = up(d, 16), hp = up(h, 2), kbp = up(keyBlock, 4), nb = Math.ceil(dp / QUANT_BLOCK);
  const [pkf, pk, pks, psum, pqf, pq, pqs, pw, po] = m.layout(
    kbp * dp * 4, kbp * dp, nb * kbp * 4, nb * kbp * 4, hp * dp * 4, hp * dp, nb * hp * 4, hp * 4, kbp * 4,
  );
  const keysF = m.f32(pkf, kbp * dp), keys8 = m.i8(pk, kbp * dp), ks = m.f32(pks, nb * kbp);
  const qf = m.f32(pqf, hp * dp), wv = m.f32(pw, hp), ov = m.f32(po, kbp);
  qf.fill(0);
  wv.fill(0);
  let loaded = -1;
  forTiles(a, tileStart, tileEnd, (row, bi, j0, end, outRow) => {
    if (loaded !== bi * s + j0) {
      const n = keyBlockEnd(a, j0) - j0;
      if (kq && kScales) {
        copyRows(keys8, kq, (bi * s + j0) * d, n, d, dp);
        for (let j = 0; j < n; j++) for (let b = 0; b < nb; b++) ks[b * kbp + j] = kScales[(bi * s + j0 + j) * nb + b];
        r.keyBlockSums(pk, psum, kbp, n, dp);
      } else {
        copyRows(keysF, k!, (bi * s + j0) * d, n, d, dp);
        r.quantizeKeysBytes(pkf, pk, pks, psum, kbp, up(n, 4), dp);
      }
      loaded = bi * s + j0;
    }
    copyRows(qf, q, row * h * d, h, d, dp);
    r.quantizeQueriesBiased(pqf, pq, pqs, hp, hp, dp);
    for (let hh = 0; hh < h; hh++) wv[hh] = w[row * h + hh] * weightScale;
    if (dp === 128) r.indexerBlockI7D128(pq, pqs, pw, pk, pks, psum, up(end - j0, 4), hp, po);
    else r.indexerBlockI7(pq, pqs, pw, pk, pks, psum, kbp, up(end - j0, 4), hp, dp, po);
    out.set(ov.subarray(0, end - j0), outRow + j0);
  });
}

// Scratch of the TypeScript int8 path, kept per thread and grown on demand.
let scratch = { qv: new Int8Array(0), qs: new Float32Array(0), kv: new Int8Array(0), ks: new Float32Array(0), w: new Float32Array(0) };

/** int8 in plain TypeScript: the exact reference arithmetic (src/indexer/quantize.ts). */
export function scoresInt8Ts(args: KernelArgs, tileStart: number, tileEnd: number): void {
  quantizedScoresTs(args as unknown as ScoreArgs, INT8_LEVELS, tileStart, tileEnd);
}

/** int7 in plain TypeScript: int8 keys, queries at 63 levels, the int8 arithmetic. */
export function scoresInt7Ts(args: KernelArgs, tileStart: number, tileEnd: number): void {
  quantizedScoresTs(args as unknown as ScoreArgs, INT7_LEVELS, tileStart, tileEnd);
}

function quantizedScoresTs(a: ScoreArgs, queryLevels: number, tileStart: number, tileEnd: number): void {
  const { q, k, w, out, s, h, d, keyBlock, weightScale } = a;
  const nb = Math.ceil(d / QUANT_BLOCK);
  if (scratch.kv.length < keyBlock * d || scratch.qv.length < h * d || scratch.qs.length < nb * h || scratch.ks.length < nb * keyBlock || scratch.w.length < h) {
    scratch = {
      qv: new Int8Array(h * d), qs: new Float32Array(nb * h), kv: new Int8Array(keyBlock * d),
      ks: new Float32Array(nb * keyBlock), w: new Float32Array(h),
    };
  }
  const { qv, qs, kv, ks, w: wv } = scratch;
  let loaded = -1;
  forTiles(a, tileStart, tileEnd, (row, bi, j0, end, outRow) => {
    if (loaded !== bi * s + j0) {
      const n = keyBlockEnd(a, j0) - j0;
      if (a.kq && a.kScales) {
        kv.set(a.kq.subarray((bi * s + j0) * d, (bi * s + j0 + n) * d));
        for (let j = 0; j < n; j++) for (let b = 0; b < nb; b++) ks[b * keyBlock + j] = a.kScales[(bi * s + j0 + j) * nb + b];
      } else {
        quantizeRowsRef(k!, (bi * s + j0) * d, n, d, kv, ks, keyBlock);
      }
      loaded = bi * s + j0;
    }
    quantizeRowsRef(q, row * h * d, h, d, qv, qs, h, queryLevels);
    for (let hh = 0; hh < h; hh++) wv[hh] = w[row * h + hh] * weightScale;
    int8RowScoresRef(qv, qs, wv, h, kv, ks, keyBlock, end - j0, d, out, outRow + j0);
  });
}
