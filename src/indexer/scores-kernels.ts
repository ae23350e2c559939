/**
 * Lightning indexer score kernels.
 *
 * Each query row r sees positions [lo[r], hi[r]) of its sequence (its
 * window, causal limit, sequence length; src/window.ts) and writes its
 * scores at out[(r - rowStart) * width + j]. Work is split into tiles, one
 * per (key block, query row) pair whose block holds a position the row
 * sees, numbered key-block-major (block kb for every row that sees it, then
 * block kb + 1...): a run of tiles visits one key block for many rows, so
 * the block is copied (and quantized or decoded) once and stays in cache
 * while every head of every row passes over it, and the pool's even split
 * of the tile range is an even split of the work, also for a decode batch
 * of very different lengths. Positions a row does not see are written
 * -Infinity by `fillOutside`, a step of their own; each tile writes only
 * the positions its row sees. Each tile's result depends only on the tile,
 * so any split gives bit-identical scores.
 *
 * Keys live in pages of `pageSize` tokens (a contiguous [b, s, d] cache is b
 * pages of s; a ragged batch one page of every packed key). Position j of
 * row r = bi * t + ti is slot `blockTable[bi][j / pageSize] * pageSize +
 * j % pageSize` with a block table, else `base[r] + j` (ragged) or
 * `bi * pageSize + j`. Float32 and int8 keys are rows of d at slot * d (int8
 * scales at slot * nb); FP8 keys use the page layout of src/indexer/fp8.ts.
 *
 * Args: q [rows, h, d] float32 (or q8 codes [rows, h, d] + qScales [rows, h]
 * for fp8), w [rows, h], out [nRows, width]; keys k | kq + kScales | k8;
 * t, h, d, width, rowStart, nRows, keyBlock, weightScale, lo, hi, base,
 * pageSize, blockTable, maxBlocks, keyEnd (per row, its sequence's key
 * count: keys past it are never read, so unused block-table entries may
 * hold anything).
 */
import type { KernelArgs } from '../plan.js';
import { simdModule, type RelaxedExports, type SimdModule } from '../simd/index.js';
import { INT7_LEVELS, INT8_LEVELS, QUANT_BLOCK, int8RowScoresRef, quantizeRowsRef } from './quantize.js';
import { E4M3_VALUES, fp8CodesAt, fp8RowScoresRef, fp8ScaleAt } from './fp8.js';

interface ScoreArgs {
  q: Float32Array;
  w: Float32Array;
  out: Float32Array;
  /** float32 keys, or null when the keys come quantized. */
  k: Float32Array | null;
  /** int8 keys [slots, d] and scales [slots, nb] (quantizeKeys; int8 and int7), or null. */
  kq: Int8Array | null;
  kScales: Float32Array | null;
  /** FP8 keys in the page layout (src/indexer/fp8.ts), or null. */
  k8: Uint8Array | null;
  /** FP8 queries: codes [rows, h, d] and scales [rows, h]. */
  q8: Uint8Array | null;
  qScales: Float32Array | null;
  t: number;
  h: number;
  d: number;
  width: number;
  rowStart: number;
  nRows: number;
  keyBlock: number;
  weightScale: number;
  lo: Int32Array;
  hi: Int32Array;
  base: Int32Array | null;
  pageSize: number;
  blockTable: Int32Array | null;
  maxBlocks: number;
  /** Per row, the key count of its sequence (paged, ragged), or null: keys are loaded no further. */
  keyEnd: Int32Array | null;
}

/** One tile: row r (batch bi) over key block [j0, loadEnd), writing positions [e0, e1). */
type Visit = (r: number, bi: number, j0: number, loadEnd: number, e0: number, e1: number, outRow: number, block: number) => void;

// Per-thread scratch of the tile walk: rows seeing each key block, grown on demand.
let perBlock = new Int32Array(0);

/** The first key block row r sees (see `blockEnd`). */
function blockStart(a: ScoreArgs, r: number): number {
  return a.lo[r] >= a.hi[r] ? 0 : Math.floor(a.lo[r] / a.keyBlock);
}

/** One past the last key block row r sees: [blockStart, blockEnd) is empty when the row sees nothing. */
function blockEnd(a: ScoreArgs, r: number): number {
  return a.lo[r] >= a.hi[r] ? 0 : Math.ceil(a.hi[r] / a.keyBlock);
}

/** The number of tiles of a call (see the header): pairs (key block, row) where the row sees the block. */
export function tileCount(lo: Int32Array, hi: Int32Array, rowStart: number, nRows: number, keyBlock: number): number {
  let n = 0;
  for (let r = rowStart; r < rowStart + nRows; r++) if (hi[r] > lo[r]) n += Math.ceil(hi[r] / keyBlock) - Math.floor(lo[r] / keyBlock);
  return n;
}

/** Calls `visit` for tiles [v0, v1) in key-block-major order. */
function forTiles(a: ScoreArgs, v0: number, v1: number, visit: Visit): void {
  const { rowStart, nRows, keyBlock, width, t } = a;
  const nKb = Math.ceil(width / keyBlock);
  if (perBlock.length < nKb + 1) perBlock = new Int32Array(nKb + 1 + (nKb >> 3));
  const count = perBlock;
  count.fill(0, 0, nKb + 1);
  for (let r = rowStart; r < rowStart + nRows; r++) {
    const kbLo = blockStart(a, r), kbHi = blockEnd(a, r);
    if (kbLo < kbHi) {
      count[kbLo]++;
      count[kbHi]--;
    }
  }
  for (let kb = 1; kb <= nKb; kb++) count[kb] += count[kb - 1];
  // Find the block of tile v0 and its place among that block's rows.
  let kb = 0, before = 0;
  while (kb < nKb && before + count[kb] <= v0) before += count[kb++];
  let skip = v0 - before;
  let r = rowStart - 1;
  for (let v = v0; v < v1; v++) {
    // The next row (after r) seeing block kb, or the first row of the next block that has any.
    for (;;) {
      r++;
      if (r === rowStart + nRows) {
        kb++;
        r = rowStart;
      }
      if (kb >= blockStart(a, r) && kb < blockEnd(a, r)) {
        if (skip === 0) break;
        skip--;
      }
    }
    const bi = Math.floor(r / t);
    const j0 = kb * keyBlock;
    const j1 = Math.min(width, j0 + keyBlock);
    const loadEnd = a.keyEnd === null ? j1 : Math.min(j1, a.keyEnd[r]);
    // The loaded block is known by the sequence's first slot (contiguous) or by (batch, block) (paged).
    const block = a.blockTable === null ? slotOf(a, r, bi, j0) : -1 - (bi * nKb + kb);
    visit(r, bi, j0, loadEnd, Math.max(j0, a.lo[r]), Math.min(j1, a.hi[r]), (r - rowStart) * width, block);
  }
}

function slotOf(a: ScoreArgs, r: number, bi: number, j: number): number {
  const P = a.pageSize;
  if (a.blockTable !== null) {
    const p = Math.floor(j / P);
    return a.blockTable[bi * a.maxBlocks + p] * P + (j - p * P);
  }
  return (a.base === null ? bi * P : a.base[r]) + j;
}

/** Calls `run(slot, at, count)` for the runs of consecutive slots holding positions [j0, j1) of row r (at = j - j0). */
function forRuns(a: ScoreArgs, r: number, bi: number, j0: number, j1: number, run: (slot: number, at: number, count: number) => void): void {
  if (a.blockTable === null) {
    if (j1 > j0) run(slotOf(a, r, bi, j0), 0, j1 - j0);
    return;
  }
  for (let j = j0; j < j1; ) {
    const end = Math.min(j1, (Math.floor(j / a.pageSize) + 1) * a.pageSize);
    run(slotOf(a, r, bi, j), j - j0, end - j);
    j = end;
  }
}

/**
 * Writes -Infinity at the positions each row does not see: [0, lo) and
 * [hi, width). Args as the score kernels; runs over rows [rowStart, rowEnd).
 */
export function fillOutside(args: KernelArgs, rowStart: number, rowEnd: number): void {
  const a = args as unknown as ScoreArgs;
  for (let r = rowStart; r < rowEnd; r++) {
    const o = (r - a.rowStart) * a.width;
    const lo = a.lo[r], hi = Math.max(lo, a.hi[r]);
    a.out.fill(-Infinity, o, o + lo);
    a.out.fill(-Infinity, o + hi, o + a.width);
  }
}

/**
 * float32, plain TypeScript: the fallback where WebAssembly SIMD is missing
 * (and the floor the SIMD kernel is measured against). Dots accumulate in
 * float64 (JS numbers), which is at least as accurate as float32.
 */
export function scoresTs(args: KernelArgs, tileStart: number, tileEnd: number): void {
  const a = args as unknown as ScoreArgs;
  const { q, w, out, h, d, weightScale } = a;
  const k = a.k!;
  forTiles(a, tileStart, tileEnd, (r, bi, _j0, _loadEnd, e0, e1, outRow) => {
    const qRow = r * h * d;
    forRuns(a, r, bi, e0, e1, (slot, at, count) => {
      for (let i = 0; i < count; i++) {
        const kj = (slot + i) * d;
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
          if (dot > 0 || dot !== dot) score += Math.fround(w[r * h + hh] * weightScale) * dot;
        }
        out[outRow + e0 + at + i] = score;
      }
    });
  });
}

/**
 * out[outRow + j] = block[j - j0] for j in [e0, e1): a tile's scores out of
 * the module's memory, by a loop rather than `set` of a subarray, which
 * would allocate a view per tile (a decode step has s / 512 tiles).
 */
function copyOut(out: Float32Array, outRow: number, block: Float32Array, j0: number, e0: number, e1: number): void {
  for (let j = e0; j < e1; j++) out[outRow + j] = block[j - j0];
}

/** Rounds up to a multiple of m. */
const up = (x: number, m: number) => Math.ceil(x / m) * m;

/** Copies `count` rows of d at src[from..] into dst rows `at..` of width dp, zero-padding each row past d. */
function copyRows<T extends Float32Array | Int8Array | Uint8Array>(dst: T, src: T, from: number, count: number, d: number, dp: number, at: number): void {
  if (d === dp) {
    dst.set(src.subarray(from, from + count * d), at * dp);
    return;
  }
  for (let i = 0; i < count; i++) {
    dst.set(src.subarray(from + i * d, from + (i + 1) * d), (at + i) * dp);
    dst.fill(0, (at + i) * dp + d, (at + i + 1) * dp);
  }
}

/** float32 on WebAssembly SIMD (src/simd/assembly/indexer.ts, indexerBlockF32). */
export function scoresWasm(args: KernelArgs, tileStart: number, tileEnd: number): void {
  const a = args as unknown as ScoreArgs;
  const { q, w, out, h, d, keyBlock, weightScale } = a;
  const k = a.k!;
  const m = simdModule()!;
  const dp = up(d, 8), hp = up(h, 2), kbp = up(keyBlock, 4);
  const [pk, pq, pw, po] = m.layout(kbp * dp * 4, hp * dp * 4, hp * 4, kbp * 4);
  const keys = m.f32(pk, kbp * dp), qv = m.f32(pq, hp * dp), wv = m.f32(pw, hp), ov = m.f32(po, kbp);
  qv.fill(0);
  wv.fill(0);
  let loaded = NaN, loadedRow = -1;
  // Made once per call, not per tile: a decode step walks s / 512 tiles.
  const copyKeys = (slot: number, at: number, count: number) => copyRows(keys, k, slot * d, count, d, dp, at);
  forTiles(a, tileStart, tileEnd, (r, bi, j0, loadEnd, e0, e1, outRow, block) => {
    if (loaded !== block) {
      forRuns(a, r, bi, j0, loadEnd, copyKeys);
      loaded = block;
    }
    if (loadedRow !== r) {
      copyRows(qv, q, r * h * d, h, d, dp, 0);
      for (let hh = 0; hh < h; hh++) wv[hh] = w[r * h + hh] * weightScale;
      loadedRow = r;
    }
    const n = up(e1 - j0, 4);
    if (dp === 128) m.exports.indexerBlockF32D128(pq, pw, pk, n, hp, po);
    else m.exports.indexerBlockF32(pq, pw, pk, n, hp, dp, po);
    copyOut(out, outRow, ov, j0, e0, e1);
  });
}

/** int8 on WebAssembly SIMD: keys and the query row quantized in wasm (or keys given quantized), integer dots by i32x4.dot_i16x8_s. */
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

/**
 * How a quantized kernel's tile gets its keys (`forRuns` callbacks): int8
 * bytes and their block scales when the keys were quantized once, or floats
 * to quantize. Made once per call, not per tile: a decode step walks s / 512 tiles.
 */
function keyCopiers(a: ScoreArgs, keysF: Float32Array, keys8: Int8Array, ks: Float32Array, kbp: number, dp: number) {
  const { k, d, kq, kScales } = a;
  const nbk = Math.ceil(d / QUANT_BLOCK);
  return {
    copyQuantized: (slot: number, at: number, count: number) => {
      copyRows(keys8, kq!, slot * d, count, d, dp, at);
      for (let i = 0; i < count; i++) for (let b = 0; b < nbk; b++) ks[b * kbp + at + i] = kScales![(slot + i) * nbk + b];
    },
    copyFloats: (slot: number, at: number, count: number) => copyRows(keysF, k!, slot * d, count, d, dp, at),
  };
}

/** int8 (or, with `int7`, 7-bit queries) in int16 lanes, dots by i32x4.dot_i16x8_s. */
function quantizedScoresWasm(a: ScoreArgs, m: SimdModule, int7: boolean, tileStart: number, tileEnd: number): void {
  const { q, w, out, h, d, keyBlock, weightScale, kq, kScales } = a;
  const dp = up(d, 16), hp = up(h, 2), kbp = up(keyBlock, 4), nb = Math.ceil(dp / QUANT_BLOCK);
  // With quantized keys the float region holds their int8 bytes instead.
  const [pkf, pk, pks, pqf, pq, pqs, pw, po] = m.layout(
    kbp * dp * 4, kbp * dp * 2, nb * kbp * 4, hp * dp * 4, hp * dp * 2, nb * hp * 4, hp * 4, kbp * 4,
  );
  const keysF = m.f32(pkf, kbp * dp), keys8 = m.i8(pkf, kbp * dp), ks = m.f32(pks, nb * kbp);
  const qf = m.f32(pqf, hp * dp), wv = m.f32(pw, hp), ov = m.f32(po, kbp);
  qf.fill(0);
  wv.fill(0);
  let loaded = NaN, loadedRow = -1;
  const { copyQuantized, copyFloats } = keyCopiers(a, keysF, keys8, ks, kbp, dp);
  forTiles(a, tileStart, tileEnd, (r, bi, j0, loadEnd, e0, e1, outRow, block) => {
    if (loaded !== block) {
      const n = loadEnd - j0;
      if (kq && kScales) {
        forRuns(a, r, bi, j0, loadEnd, copyQuantized);
        // Keys past the block's end are never read into a written score; widen whole 16-lane runs.
        m.exports.widenI8(pkf, pk, up(n * dp, 16));
      } else {
        forRuns(a, r, bi, j0, loadEnd, copyFloats);
        m.exports.quantizeRows(pkf, pk, pks, kbp, up(n, 4), dp);
      }
      loaded = block;
    }
    if (loadedRow !== r) {
      copyRows(qf, q, r * h * d, h, d, dp, 0);
      if (int7) m.exports.quantizeRows7(pqf, pq, pqs, hp, hp, dp);
      else m.exports.quantizeRows(pqf, pq, pqs, hp, hp, dp);
      for (let hh = 0; hh < h; hh++) wv[hh] = w[r * h + hh] * weightScale;
      loadedRow = r;
    }
    const n = up(e1 - j0, 4);
    if (dp === 128) m.exports.indexerBlockI8D128(pq, pqs, pw, pk, pks, n, hp, po);
    else m.exports.indexerBlockI8(pq, pqs, pw, pk, pks, kbp, n, hp, dp, po);
    copyOut(out, outRow, ov, j0, e0, e1);
  });
}

/** int7 on the relaxed module: keys as int8 bytes with block sums, queries as 7-bit values + 64 (src/simd/assembly/indexer-relaxed.ts). */
function int7RelaxedScores(a: ScoreArgs, m: SimdModule, x: RelaxedExports, tileStart: number, tileEnd: number): void {
  const { q, w, out, h, d, keyBlock, weightScale, kq, kScales } = a;
  const dp = up(d, 16), hp = up(h, 2), kbp = up(keyBlock, 4), nb = Math.ceil(dp / QUANT_BLOCK);
  const [pkf, pk, pks, psum, pqf, pq, pqs, pw, po] = m.layout(
    kbp * dp * 4, kbp * dp, nb * kbp * 4, nb * kbp * 4, hp * dp * 4, hp * dp, nb * hp * 4, hp * 4, kbp * 4,
  );
  const keysF = m.f32(pkf, kbp * dp), keys8 = m.i8(pk, kbp * dp), ks = m.f32(pks, nb * kbp);
  const qf = m.f32(pqf, hp * dp), wv = m.f32(pw, hp), ov = m.f32(po, kbp);
  qf.fill(0);
  wv.fill(0);
  let loaded = NaN, loadedRow = -1;
  const { copyQuantized, copyFloats } = keyCopiers(a, keysF, keys8, ks, kbp, dp);
  forTiles(a, tileStart, tileEnd, (r, bi, j0, loadEnd, e0, e1, outRow, block) => {
    if (loaded !== block) {
      const n = loadEnd - j0;
      if (kq && kScales) {
        forRuns(a, r, bi, j0, loadEnd, copyQuantized);
        x.keyBlockSums(pk, psum, kbp, n, dp);
      } else {
        forRuns(a, r, bi, j0, loadEnd, copyFloats);
        x.quantizeKeysBytes(pkf, pk, pks, psum, kbp, up(n, 4), dp);
      }
      loaded = block;
    }
    if (loadedRow !== r) {
      copyRows(qf, q, r * h * d, h, d, dp, 0);
      x.quantizeQueriesBiased(pqf, pq, pqs, hp, hp, dp);
      for (let hh = 0; hh < h; hh++) wv[hh] = w[r * h + hh] * weightScale;
      loadedRow = r;
    }
    const n = up(e1 - j0, 4);
    if (dp === 128) x.indexerBlockI7D128(pq, pqs, pw, pk, pks, psum, n, hp, po);
    else x.indexerBlockI7(pq, pqs, pw, pk, pks, psum, kbp, n, hp, dp, po);
    copyOut(out, outRow, ov, j0, e0, e1);
  });
}

// Scratch of the TypeScript int8 and fp8 paths, kept per thread and grown on demand.
let scratch = {
  qv: new Int8Array(0), qs: new Float32Array(0), kv: new Int8Array(0), ks: new Float32Array(0), w: new Float32Array(0),
  qf: new Float32Array(0), kf: new Float32Array(0),
};

function scratchFor(h: number, d: number, keyBlock: number) {
  const nb = Math.ceil(d / QUANT_BLOCK);
  if (scratch.kv.length < keyBlock * d || scratch.qv.length < h * d || scratch.qs.length < nb * h || scratch.ks.length < nb * keyBlock || scratch.w.length < h) {
    scratch = {
      qv: new Int8Array(h * d), qs: new Float32Array(nb * h), kv: new Int8Array(keyBlock * d),
      ks: new Float32Array(nb * keyBlock), w: new Float32Array(h), qf: new Float32Array(h * d), kf: new Float32Array(keyBlock * d),
    };
  }
  return scratch;
}

/** int8 in plain TypeScript: the exact reference arithmetic (src/indexer/quantize.ts). */
export function scoresInt8Ts(args: KernelArgs, tileStart: number, tileEnd: number): void {
  quantizedScoresTs(args as unknown as ScoreArgs, INT8_LEVELS, tileStart, tileEnd);
}

/** int7 in plain TypeScript: int8 keys, queries at 63 levels, the int8 arithmetic. */
export function scoresInt7Ts(args: KernelArgs, tileStart: number, tileEnd: number): void {
  quantizedScoresTs(args as unknown as ScoreArgs, INT7_LEVELS, tileStart, tileEnd);
}

function quantizedScoresTs(a: ScoreArgs, queryLevels: number, tileStart: number, tileEnd: number): void {
  const { q, k, w, out, h, d, keyBlock, weightScale } = a;
  const nb = Math.ceil(d / QUANT_BLOCK);
  const { qv, qs, kv, ks, w: wv } = scratchFor(h, d, keyBlock);
  let loaded = NaN, loadedRow = -1;
  forTiles(a, tileStart, tileEnd, (r, bi, j0, loadEnd, e0, e1, outRow, block) => {
    if (loaded !== block) {
      forRuns(a, r, bi, j0, loadEnd, (slot, at, count) => {
        if (a.kq && a.kScales) {
          kv.set(a.kq.subarray(slot * d, (slot + count) * d), at * d);
          for (let i = 0; i < count; i++) for (let b = 0; b < nb; b++) ks[b * keyBlock + at + i] = a.kScales[(slot + i) * nb + b];
        } else {
          const rows = new Int8Array(kv.buffer, at * d, count * d);
          const scales = new Float32Array(ks.buffer, at * 4);
          quantizeRowsRef(k!, slot * d, count, d, rows, scales, keyBlock);
        }
      });
      loaded = block;
    }
    if (loadedRow !== r) {
      quantizeRowsRef(q, r * h * d, h, d, qv, qs, h, queryLevels);
      for (let hh = 0; hh < h; hh++) wv[hh] = w[r * h + hh] * weightScale;
      loadedRow = r;
    }
    const keys = new Int8Array(kv.buffer, (e0 - j0) * d);
    const scales = new Float32Array(ks.buffer, (e0 - j0) * 4);
    int8RowScoresRef(qv, qs, wv, h, keys, scales, keyBlock, e1 - e0, d, out, outRow + e0);
  });
}

/** The FP8 weights of row r: f32(f32(w * weightScale) * qScale) per head. */
function fp8Weights(a: ScoreArgs, r: number, wq: Float32Array): void {
  const { w, h, weightScale } = a;
  const qScales = a.qScales!;
  for (let hh = 0; hh < h; hh++) wq[hh] = Math.fround(Math.fround(w[r * h + hh] * weightScale) * qScales[r * h + hh]);
}

/** FP8 in plain TypeScript: the reference arithmetic of `fp8_index` (src/indexer/fp8.ts). */
export function scoresFp8Ts(args: KernelArgs, tileStart: number, tileEnd: number): void {
  const a = args as unknown as ScoreArgs;
  const { out, h, d, keyBlock, pageSize } = a;
  const k8 = a.k8!, q8 = a.q8!;
  const scales = new Float32Array(k8.buffer, k8.byteOffset, k8.length >>> 2);
  const { qf, kf, ks, w: wq } = scratchFor(h, d, keyBlock);
  let loaded = NaN, loadedRow = -1;
  forTiles(a, tileStart, tileEnd, (r, bi, j0, loadEnd, e0, e1, outRow, block) => {
    if (loaded !== block) {
      forRuns(a, r, bi, j0, loadEnd, (slot, at, count) => {
        for (let i = 0; i < count; i++) {
          const c = fp8CodesAt(slot + i, pageSize, d);
          for (let e = 0; e < d; e++) kf[(at + i) * d + e] = E4M3_VALUES[k8[c + e]];
          ks[at + i] = scales[fp8ScaleAt(slot + i, pageSize, d)];
        }
      });
      loaded = block;
    }
    if (loadedRow !== r) {
      for (let i = 0; i < h * d; i++) qf[i] = E4M3_VALUES[q8[r * h * d + i]];
      fp8Weights(a, r, wq);
      loadedRow = r;
    }
    const keys = new Float32Array(kf.buffer, (e0 - j0) * d * 4);
    const kScales = new Float32Array(ks.buffer, (e0 - j0) * 4);
    fp8RowScoresRef(qf, wq, h, keys, kScales, e1 - e0, d, out, outRow + e0);
  });
}

/** FP8 on WebAssembly SIMD: codes decoded in wasm into a key-interleaved block (src/simd/assembly/fp8.ts). */
export function scoresFp8Wasm(args: KernelArgs, tileStart: number, tileEnd: number): void {
  const a = args as unknown as ScoreArgs;
  const { out, h, d, keyBlock, pageSize } = a;
  const k8 = a.k8!, q8 = a.q8!;
  const scales = new Float32Array(k8.buffer, k8.byteOffset, k8.length >>> 2);
  const m = simdModule()!;
  // Keys padded to a multiple of 8 (the kernel's tile) and d to 16 (the decoder's vector); heads to 4.
  const dp = up(d, 16), hp = up(h, 4), kbp = up(keyBlock, 8);
  const [pc, pkt, pks, pq, pw, po] = m.layout(kbp * dp, kbp * dp * 4, kbp * 4, hp * dp * 4, hp * 4, kbp * 4);
  const codesU8 = m.u8(pc, kbp * dp);
  const ks = m.f32(pks, kbp), qv = m.f32(pq, hp * dp), wv = m.f32(pw, hp), ov = m.f32(po, kbp);
  qv.fill(0);
  wv.fill(0);
  codesU8.fill(0);
  const wq = scratchFor(h, d, keyBlock).w;
  let loaded = NaN, loadedRow = -1;
  // Made once per call, not per tile: a decode step walks s / 512 tiles.
  const copyCodes = (slot: number, at: number, count: number) => {
    // Consecutive slots of one page: codes back to back, scales back to back.
    copyRows(codesU8, k8, fp8CodesAt(slot, pageSize, d), count, d, dp, at);
    const from = fp8ScaleAt(slot, pageSize, d);
    for (let i = 0; i < count; i++) ks[at + i] = scales[from + i];
  };
  forTiles(a, tileStart, tileEnd, (r, bi, j0, loadEnd, e0, e1, outRow, block) => {
    if (loaded !== block) {
      const n = loadEnd - j0;
      forRuns(a, r, bi, j0, loadEnd, copyCodes);
      // Zero codes (value 0) past the block so the padded keys stay finite.
      codesU8.fill(0, n * dp, up(n, 8) * dp);
      m.exports.fp8DecodeKeys(pc, up(n, 8), dp, pkt);
      loaded = block;
    }
    if (loadedRow !== r) {
      for (let hh = 0; hh < h; hh++) for (let e = 0; e < d; e++) qv[hh * dp + e] = E4M3_VALUES[q8[(r * h + hh) * d + e]];
      fp8Weights(a, r, wq);
      wv.set(wq.subarray(0, h));
      loadedRow = r;
    }
    m.exports.indexerBlockFp8(pq, pw, pkt, pks, up(e1 - j0, 8), hp, dp, po);
    copyOut(out, outRow, ov, j0, e0, e1);
  });
}
