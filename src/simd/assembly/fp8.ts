// FP8 (e4m3) indexer kernels: DeepSeek's `fp8_index` scores with the exact
// arithmetic of src/indexer/fp8.ts (fp8RowScoresRef). The dot of a query
// head and a key sums q[e] * k[e] in float32 in ascending e; products of
// two e4m3 values are exact in float32, so a multiply then an add per lane
// is that sum exactly. The lanes are therefore keys, not dims: the codes of
// a block of keys are decoded into a key-interleaved layout (4 keys' values
// of dim e side by side) and each lane walks e in order.

// f32 bits (c & 0x7f) << 20 hold an e4m3 magnitude scaled by 2^-120
// (normal: exponent e + 120, mantissa m << 20; subnormal: m * 2^-129);
// multiplying by 2^120 is exact.
const SCALE_UP: f32 = 1.329227995784916e36; // 2^120

/** The four f32x4 of 4 keys x 4 dims held as sign-extended codes in 16 bytes (dim-major: bytes 4e..4e+3 are dim e). */
@inline function decodeQuad(x: v128, out: usize): void {
  const lo = i16x8.extend_low_i8x16_s(x);
  const hi = i16x8.extend_high_i8x16_s(x);
  v128.store(out, decode4(i32x4.extend_low_i16x8_s(lo)));
  v128.store(out, decode4(i32x4.extend_high_i16x8_s(lo)), 16);
  v128.store(out, decode4(i32x4.extend_low_i16x8_s(hi)), 32);
  v128.store(out, decode4(i32x4.extend_high_i16x8_s(hi)), 48);
}

/** Four sign-extended codes -> their float32 values (0x7f / 0xff: NaN). */
@inline function decode4(w: v128): v128 {
  const magnitude = v128.and(w, i32x4.splat(0x7f));
  const value = f32x4.mul(i32x4.shl(magnitude, 20), f32x4.splat(SCALE_UP));
  const sign = v128.and(i32x4.shl(w, 24), i32x4.splat(<i32>0x80000000));
  const nan = v128.and(i32x4.eq(magnitude, i32x4.splat(0x7f)), i32x4.splat(0x7fc00000));
  return v128.or(v128.or(value, sign), nan);
}

/**
 * Decodes n keys (a multiple of 4) of dp codes each (dp a multiple of 16),
 * codes [n, dp] bytes, into out [n / 4][dp][4] float32: out[(g * dp + e) * 4 + i]
 * is the value of key 4g + i at dim e.
 */
export function fp8DecodeKeys(codes: usize, n: i32, dp: i32, out: usize): void {
  const row = <usize>dp;
  for (let g = 0; g < n; g += 4) {
    const c0 = codes + <usize>g * row;
    const c1 = c0 + row, c2 = c1 + row, c3 = c2 + row;
    const o = out + (<usize>g * row << 2);
    for (let e: usize = 0; e < row; e += 16) {
      const v0 = v128.load(c0 + e), v1 = v128.load(c1 + e), v2 = v128.load(c2 + e), v3 = v128.load(c3 + e);
      // Bytes of keys 0/1 and 2/3 interleaved, then pairs of those: 4 keys per dim.
      const a01 = i8x16.shuffle(v0, v1, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
      const a23 = i8x16.shuffle(v2, v3, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
      const b01 = i8x16.shuffle(v0, v1, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
      const b23 = i8x16.shuffle(v2, v3, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
      const p = o + (e << 4);
      decodeQuad(i8x16.shuffle(a01, a23, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23), p);
      decodeQuad(i8x16.shuffle(a01, a23, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31), p + 64);
      decodeQuad(i8x16.shuffle(b01, b23, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23), p + 128);
      decodeQuad(i8x16.shuffle(b01, b23, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31), p + 192);
    }
  }
}

/**
 * FP8 scores of one query row: q [h, dp] decoded values (zero past d and
 * past the real heads), wq [h] head weights (w * weightScale * qScale; zero
 * for padded heads), keys the interleaved block of fp8DecodeKeys, ks [n] key
 * scales, out [n]. out[j] = ks[j] * sum_h wq[h] * ReLU(sum_e q[h][e] * k_j[e]),
 * every sum in float32 and in order. n a multiple of 8, h of 4.
 */
export function indexerBlockFp8(q: usize, wq: usize, keys: usize, ks: usize, n: i32, h: i32, dp: i32, out: usize): void {
  const qRow = <usize>dp << 2;
  const group = <usize>dp << 4; // 4 keys x dp floats
  const zero = f32x4.splat(0);
  for (let j = 0; j < n; j += 8) {
    const k0 = keys + (<usize>(j >> 2)) * group;
    const k1 = k0 + group;
    let s0 = zero, s1 = zero;
    for (let hh = 0; hh < h; hh += 4) {
      const qa = q + <usize>hh * qRow;
      const qb = qa + qRow, qc = qb + qRow, qd = qc + qRow;
      let a0 = zero, a1 = zero, a2 = zero, a3 = zero;
      let b0 = zero, b1 = zero, b2 = zero, b3 = zero;
      for (let e: usize = 0; e < <usize>dp; e++) {
        const v0 = v128.load(k0 + (e << 4)), v1 = v128.load(k1 + (e << 4));
        const o = e << 2;
        let x = v128.load32_splat(qa + o);
        a0 = f32x4.add(a0, f32x4.mul(x, v0));
        b0 = f32x4.add(b0, f32x4.mul(x, v1));
        x = v128.load32_splat(qb + o);
        a1 = f32x4.add(a1, f32x4.mul(x, v0));
        b1 = f32x4.add(b1, f32x4.mul(x, v1));
        x = v128.load32_splat(qc + o);
        a2 = f32x4.add(a2, f32x4.mul(x, v0));
        b2 = f32x4.add(b2, f32x4.mul(x, v1));
        x = v128.load32_splat(qd + o);
        a3 = f32x4.add(a3, f32x4.mul(x, v0));
        b3 = f32x4.add(b3, f32x4.mul(x, v1));
      }
      const wp = wq + (<usize>hh << 2);
      // pmax(x, 0) keeps NaN, as the reference's Math.max; heads in order.
      let wh = v128.load32_splat(wp);
      s0 = f32x4.add(s0, f32x4.mul(wh, f32x4.pmax(a0, zero)));
      s1 = f32x4.add(s1, f32x4.mul(wh, f32x4.pmax(b0, zero)));
      wh = v128.load32_splat(wp, 4);
      s0 = f32x4.add(s0, f32x4.mul(wh, f32x4.pmax(a1, zero)));
      s1 = f32x4.add(s1, f32x4.mul(wh, f32x4.pmax(b1, zero)));
      wh = v128.load32_splat(wp, 8);
      s0 = f32x4.add(s0, f32x4.mul(wh, f32x4.pmax(a2, zero)));
      s1 = f32x4.add(s1, f32x4.mul(wh, f32x4.pmax(b2, zero)));
      wh = v128.load32_splat(wp, 12);
      s0 = f32x4.add(s0, f32x4.mul(wh, f32x4.pmax(a3, zero)));
      s1 = f32x4.add(s1, f32x4.mul(wh, f32x4.pmax(b3, zero)));
    }
    const kp = ks + (<usize>j << 2);
    v128.store(out + (<usize>j << 2), f32x4.mul(s0, v128.load(kp)));
    v128.store(out + (<usize>j << 2), f32x4.mul(s1, v128.load(kp, 16)), 16);
  }
}
