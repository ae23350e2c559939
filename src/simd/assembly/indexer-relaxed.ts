// The 'int7' indexer kernels on relaxed SIMD, in the relaxed build only
// (relaxed.ts). `i32x4.relaxed_dot_i8x16_i7x16_add_s(a, b, c)` multiplies 16
// signed bytes of `a` by 16 bytes of `b` and adds each group of four
// products to a lane of `c`: twice the multiply-adds of `i32x4.dot_i16x8_s`
// per instruction. It is exact and the same on every engine only while the
// top bit of every byte of `b` is clear; otherwise a byte may be read as
// signed or unsigned. So `b` holds the queries quantized to [-63, 63] plus
// 64, in [1, 127], and the integer dot is recovered exactly:
//   sum(k * q) = sum(k * (q + 64)) - 64 * sum(k)
// with sum(k) per key and block computed once per key block. Keys are int8
// in [-127, 127] (quantizeRows' values, as bytes). Pair sums of products stay
// below 2^15 (2 * 127 * 127 = 32258), so even a pmaddubsw lowering does not
// saturate; block sums stay below 2^21. The float arithmetic after the
// integer dot is the baseline kernels' (indexerBlockI8), operation for
// operation, so both builds give the same bits.

import { blockAmax, roundLanes, sum4i } from './indexer-lanes';

/** The integer sum of the 16 bytes of v in each of its four int32 lanes' groups. */
@inline function byteSums(v: v128): v128 {
  return i32x4.extadd_pairwise_i16x8_s(i16x8.extadd_pairwise_i8x16_s(v));
}

/** Horizontal int32 sum of four lanes. */
@inline function hsumi(v: v128): i32 {
  return (i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1)) + (i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3));
}

/**
 * Keys src [n, dp] float32 to int8 bytes dst [n, dp] in [-127, 127], scales
 * and byte sums per 128-element block at [b * stride + i] (block-major),
 * the values and scales of quantizeRows. dp a multiple of 16.
 */
export function quantizeKeysBytes(src: usize, dst: usize, scales: usize, sums: usize, stride: i32, n: i32, dp: i32): void {
  const nb = (dp + 127) >> 7;
  for (let i = 0; i < n; i++) {
    const x = src + (<usize>i * <usize>dp << 2);
    const y = dst + <usize>i * <usize>dp;
    for (let b = 0; b < nb; b++) {
      const e0 = b << 7;
      const e1 = min(e0 + 128, dp);
      const amax = blockAmax(x, e0, e1);
      const inv: f32 = amax > 0 ? <f32>127 / amax : 0;
      const at = (<usize>b * <usize>stride + <usize>i) << 2;
      store<f32>(scales + at, amax / <f32>127);
      const iv = f32x4.splat(inv);
      let sum = i32x4.splat(0);
      for (let e = e0; e < e1; e += 16) {
        const p = x + (<usize>e << 2);
        const lo = i16x8.narrow_i32x4_s(roundLanes(p, iv), roundLanes(p + 16, iv));
        const hi = i16x8.narrow_i32x4_s(roundLanes(p + 32, iv), roundLanes(p + 48, iv));
        const v = i8x16.narrow_i16x8_s(lo, hi);
        v128.store(y + <usize>e, v);
        sum = i32x4.add(sum, byteSums(v));
      }
      store<i32>(sums + at, hsumi(sum));
    }
  }
}

/** Byte sums per 128-element block of int8 keys keys [n, dp] (already quantized), to sums[b * stride + i]. */
export function keyBlockSums(keys: usize, sums: usize, stride: i32, n: i32, dp: i32): void {
  const nb = (dp + 127) >> 7;
  for (let i = 0; i < n; i++) {
    const y = keys + <usize>i * <usize>dp;
    for (let b = 0; b < nb; b++) {
      const e1 = min((b + 1) << 7, dp);
      let sum = i32x4.splat(0);
      for (let e = b << 7; e < e1; e += 16) sum = i32x4.add(sum, byteSums(v128.load(y + <usize>e)));
      store<i32>(sums + ((<usize>b * <usize>stride + <usize>i) << 2), hsumi(sum));
    }
  }
}

/**
 * Queries src [n, dp] float32 to 7 bits, quantizeRows7's values and scales,
 * stored as bytes value + 64 (in [1, 127]) in dst [n, dp]; scales at
 * [b * scaleStride + i]. dp a multiple of 16. Padding (zeros) becomes 64,
 * which meets zero key bytes and adds nothing.
 */
export function quantizeQueriesBiased(src: usize, dst: usize, scales: usize, scaleStride: i32, n: i32, dp: i32): void {
  const nb = (dp + 127) >> 7;
  const bias = i32x4.splat(64);
  for (let i = 0; i < n; i++) {
    const x = src + (<usize>i * <usize>dp << 2);
    const y = dst + <usize>i * <usize>dp;
    for (let b = 0; b < nb; b++) {
      const e0 = b << 7;
      const e1 = min(e0 + 128, dp);
      const amax = blockAmax(x, e0, e1);
      const inv: f32 = amax > 0 ? <f32>63 / amax : 0;
      store<f32>(scales + ((<usize>b * <usize>scaleStride + <usize>i) << 2), amax / <f32>63);
      const iv = f32x4.splat(inv);
      for (let e = e0; e < e1; e += 16) {
        const p = x + (<usize>e << 2);
        const lo = i16x8.narrow_i32x4_s(i32x4.add(roundLanes(p, iv), bias), i32x4.add(roundLanes(p + 16, iv), bias));
        const hi = i16x8.narrow_i32x4_s(i32x4.add(roundLanes(p + 32, iv), bias), i32x4.add(roundLanes(p + 48, iv), bias));
        v128.store(y + <usize>e, i8x16.narrow_i16x8_s(lo, hi));
      }
    }
  }
}

/**
 * int7: biased queries q [h, dp] bytes with scales qs[b * h + hh], int8 keys
 * [n, dp] bytes with scales and byte sums at [b * ksStride + j], w [h],
 * out [n]; the arithmetic of indexerBlockI8 on quantizeRows7 queries.
 * h even, n a multiple of 4, dp a multiple of 16.
 */
export function indexerBlockI7(q: usize, qs: usize, w: usize, keys: usize, ks: usize, sums: usize, ksStride: i32, n: i32, h: i32, dp: i32, out: usize): void {
  const rowBytes = <usize>dp;
  const nb = (dp + 127) >> 7;
  const zero = f32x4.splat(0);
  const izero = i32x4.splat(0);
  for (let j = 0; j < n; j += 4) {
    const k0 = keys + <usize>j * rowBytes;
    const k1 = k0 + rowBytes, k2 = k1 + rowBytes, k3 = k2 + rowBytes;
    let s = zero;
    for (let hh = 0; hh < h; hh += 2) {
      const qa = q + <usize>hh * rowBytes;
      const qb = qa + rowBytes;
      let da = zero, db = zero;
      for (let b = 0; b < nb; b++) {
        const o0 = <usize>(b << 7);
        const o1 = <usize>min((b + 1) << 7, dp);
        let a0 = izero, a1 = izero, a2 = izero, a3 = izero;
        let b0 = izero, b1 = izero, b2 = izero, b3 = izero;
        for (let o = o0; o < o1; o += 16) {
          const x = v128.load(qa + o), y = v128.load(qb + o);
          const v0 = v128.load(k0 + o), v1 = v128.load(k1 + o), v2 = v128.load(k2 + o), v3 = v128.load(k3 + o);
          a0 = i32x4.relaxed_dot_i8x16_i7x16_add_s(v0, x, a0);
          a1 = i32x4.relaxed_dot_i8x16_i7x16_add_s(v1, x, a1);
          a2 = i32x4.relaxed_dot_i8x16_i7x16_add_s(v2, x, a2);
          a3 = i32x4.relaxed_dot_i8x16_i7x16_add_s(v3, x, a3);
          b0 = i32x4.relaxed_dot_i8x16_i7x16_add_s(v0, y, b0);
          b1 = i32x4.relaxed_dot_i8x16_i7x16_add_s(v1, y, b1);
          b2 = i32x4.relaxed_dot_i8x16_i7x16_add_s(v2, y, b2);
          b3 = i32x4.relaxed_dot_i8x16_i7x16_add_s(v3, y, b3);
        }
        const at = (<usize>b * <usize>ksStride + <usize>j) << 2;
        const kscale = v128.load(ks + at);
        const bias = i32x4.shl(v128.load(sums + at), 6);
        const qsp = qs + ((<usize>b * <usize>h + <usize>hh) << 2);
        da = f32x4.add(da, f32x4.mul(f32x4.mul(v128.load32_splat(qsp), kscale), f32x4.convert_i32x4_s(i32x4.sub(sum4i(a0, a1, a2, a3), bias))));
        db = f32x4.add(db, f32x4.mul(f32x4.mul(v128.load32_splat(qsp, 4), kscale), f32x4.convert_i32x4_s(i32x4.sub(sum4i(b0, b1, b2, b3), bias))));
      }
      const wp = w + (<usize>hh << 2);
      s = f32x4.add(s, f32x4.mul(v128.load32_splat(wp), f32x4.pmax(da, zero)));
      s = f32x4.add(s, f32x4.mul(v128.load32_splat(wp, 4), f32x4.pmax(db, zero)));
    }
    v128.store(out + (<usize>j << 2), s);
  }
}

/** indexerBlockI7 with dp = 128 (one block per row; rows 128 bytes apart, addressed by immediate offsets). */
export function indexerBlockI7D128(q: usize, qs: usize, w: usize, keys: usize, ks: usize, sums: usize, n: i32, h: i32, out: usize): void {
  const zero = f32x4.splat(0);
  const izero = i32x4.splat(0);
  for (let j = 0; j < n; j += 4) {
    const kj = keys + (<usize>j << 7);
    const kscale = v128.load(ks + (<usize>j << 2));
    const bias = i32x4.shl(v128.load(sums + (<usize>j << 2)), 6);
    let s = zero;
    for (let hh = 0; hh < h; hh += 2) {
      const qh = q + (<usize>hh << 7);
      let a0 = izero, a1 = izero, a2 = izero, a3 = izero;
      let b0 = izero, b1 = izero, b2 = izero, b3 = izero;
      for (let o: usize = 0; o < 128; o += 32) {
        const qp = qh + o, kp = kj + o;
        let x = v128.load(qp), y = v128.load(qp, 128);
        let v = v128.load(kp);
        a0 = i32x4.relaxed_dot_i8x16_i7x16_add_s(v, x, a0);
        b0 = i32x4.relaxed_dot_i8x16_i7x16_add_s(v, y, b0);
        v = v128.load(kp, 128);
        a1 = i32x4.relaxed_dot_i8x16_i7x16_add_s(v, x, a1);
        b1 = i32x4.relaxed_dot_i8x16_i7x16_add_s(v, y, b1);
        v = v128.load(kp, 256);
        a2 = i32x4.relaxed_dot_i8x16_i7x16_add_s(v, x, a2);
        b2 = i32x4.relaxed_dot_i8x16_i7x16_add_s(v, y, b2);
        v = v128.load(kp, 384);
        a3 = i32x4.relaxed_dot_i8x16_i7x16_add_s(v, x, a3);
        b3 = i32x4.relaxed_dot_i8x16_i7x16_add_s(v, y, b3);
        x = v128.load(qp, 16); y = v128.load(qp, 144);
        v = v128.load(kp, 16);
        a0 = i32x4.relaxed_dot_i8x16_i7x16_add_s(v, x, a0);
        b0 = i32x4.relaxed_dot_i8x16_i7x16_add_s(v, y, b0);
        v = v128.load(kp, 144);
        a1 = i32x4.relaxed_dot_i8x16_i7x16_add_s(v, x, a1);
        b1 = i32x4.relaxed_dot_i8x16_i7x16_add_s(v, y, b1);
        v = v128.load(kp, 272);
        a2 = i32x4.relaxed_dot_i8x16_i7x16_add_s(v, x, a2);
        b2 = i32x4.relaxed_dot_i8x16_i7x16_add_s(v, y, b2);
        v = v128.load(kp, 400);
        a3 = i32x4.relaxed_dot_i8x16_i7x16_add_s(v, x, a3);
        b3 = i32x4.relaxed_dot_i8x16_i7x16_add_s(v, y, b3);
      }
      const qsp = qs + (<usize>hh << 2);
      const wp = w + (<usize>hh << 2);
      const da = f32x4.mul(f32x4.mul(v128.load32_splat(qsp), kscale), f32x4.convert_i32x4_s(i32x4.sub(sum4i(a0, a1, a2, a3), bias)));
      const db = f32x4.mul(f32x4.mul(v128.load32_splat(qsp, 4), kscale), f32x4.convert_i32x4_s(i32x4.sub(sum4i(b0, b1, b2, b3), bias)));
      s = f32x4.add(s, f32x4.mul(v128.load32_splat(wp), f32x4.pmax(da, zero)));
      s = f32x4.add(s, f32x4.mul(v128.load32_splat(wp, 4), f32x4.pmax(db, zero)));
    }
    v128.store(out + (<usize>j << 2), s);
  }
}
