// Linear-layer kernels (src/weights/linear-kernels.ts states the
// arithmetic): weights arrive in their stored form (float32, bf16 bits, or
// e4m3 codes with 128 x 128 block scales), are decoded a block of rows at a
// time into float32 values in this module's memory, and a GEMM over those
// values runs every row of x. Each dot keeps four float32 lane partials,
// lane l summing j = 4i + l in ascending i, combined as (l0 + l1) + (l2 + l3),
// then the tail (j past the last multiple of 4) added in order; the FP8
// GEMM does this per 128-block and promotes each block's dot by the product
// of the two block scales. Multiplies and adds stay separate (no fma), so
// the results equal the TypeScript reference bit for bit.

// f32 bits (c & 0x7f) << 20 hold an e4m3 magnitude scaled by 2^-120
// (normal: exponent e + 120; subnormal: m * 2^-129, an exact f32
// subnormal); multiplying by 2^120 is exact. A sign-extended code shifted
// left by 20 has its sign in bit 31 and copies of it in bits 27..30, which
// the mask clears.
const SCALE_UP: f32 = 1.329227995784916e36; // 2^120

@inline function e4m3x4(w: v128): v128 {
  return f32x4.mul(v128.and(i32x4.shl(w, 20), i32x4.splat(<i32>0x87f00000)), f32x4.splat(SCALE_UP));
}

/** NaN (0x7fc00000) in the lanes whose code is 0x7f or 0xff, else 0. */
@inline function nanLanes(w: v128): v128 {
  return v128.and(i32x4.eq(v128.and(w, i32x4.splat(0x7f)), i32x4.splat(0x7f)), i32x4.splat(0x7fc00000));
}

@inline function hasNanCode(b: v128): bool {
  return v128.any_true(i8x16.eq(v128.and(b, i8x16.splat(0x7f)), i8x16.splat(0x7f)));
}

/** The value of one code (scalar tails). */
@inline function e4m3(c: u32): f32 {
  const w = <i32><i8>c;
  if ((c & 0x7f) == 0x7f) return NaN;
  return reinterpret<f32>((w << 20) & <i32>0x87f00000) * SCALE_UP;
}

/** f32 -> its bf16 rounding (nearest, ties to even) as f32; NaN lanes are fixed by the caller. */
@inline function roundBf16(v: v128): v128 {
  const lsb = v128.and(i32x4.shr_u(v, 16), i32x4.splat(1));
  return v128.and(i32x4.add(i32x4.add(v, i32x4.splat(0x7fff)), lsb), i32x4.splat(<i32>0xffff0000));
}

@inline function roundBf16Scalar(v: f32): f32 {
  const u = reinterpret<u32>(v);
  if ((u & 0x7fffffff) > 0x7f800000) return NaN;
  return reinterpret<f32>((u + 0x7fff + ((u >> 16) & 1)) & 0xffff0000);
}

/** dst[i] = value of the bf16 bits src[i] (u16), i < count. */
export function linearDecodeBf16(src: usize, count: i32, dst: usize): void {
  const n8 = <usize>(count & ~7);
  let i: usize = 0;
  for (; i < n8; i += 8) {
    const b = v128.load(src + (i << 1));
    v128.store(dst + (i << 2), i32x4.shl(i32x4.extend_low_i16x8_u(b), 16));
    v128.store(dst + (i << 2), i32x4.shl(i32x4.extend_high_i16x8_u(b), 16), 16);
  }
  for (; i < <usize>count; i++) store<u32>(dst + (i << 2), <u32>load<u16>(src + (i << 1)) << 16);
}

/** dst[i] = e4m3 value of the code src[i] (0x7f, 0xff: NaN), i < count. */
export function linearDecodeFp8(src: usize, count: i32, dst: usize): void {
  const n16 = <usize>(count & ~15);
  let i: usize = 0;
  for (; i < n16; i += 16) {
    const b = v128.load(src + i);
    const lo = i16x8.extend_low_i8x16_s(b), hi = i16x8.extend_high_i8x16_s(b);
    const w0 = i32x4.extend_low_i16x8_s(lo), w1 = i32x4.extend_high_i16x8_s(lo);
    const w2 = i32x4.extend_low_i16x8_s(hi), w3 = i32x4.extend_high_i16x8_s(hi);
    const p = dst + (i << 2);
    if (!hasNanCode(b)) {
      v128.store(p, e4m3x4(w0));
      v128.store(p, e4m3x4(w1), 16);
      v128.store(p, e4m3x4(w2), 32);
      v128.store(p, e4m3x4(w3), 48);
    } else {
      v128.store(p, v128.or(e4m3x4(w0), nanLanes(w0)));
      v128.store(p, v128.or(e4m3x4(w1), nanLanes(w1)), 16);
      v128.store(p, v128.or(e4m3x4(w2), nanLanes(w2)), 32);
      v128.store(p, v128.or(e4m3x4(w3), nanLanes(w3)), 48);
    }
  }
  for (; i < <usize>count; i++) store<f32>(dst + (i << 2), e4m3(load<u8>(src + i)));
}

@inline function dequant4(w: v128, s: v128, nan: bool): v128 {
  const r = roundBf16(f32x4.mul(e4m3x4(w), s));
  return nan ? v128.or(r, nanLanes(w)) : r;
}

/**
 * DeepSeek's weight_dequant then bf16: rows of inDim codes src [rows, inDim]
 * (output features oFirst ..), dst[i, j] = bf16(f32(e4m3(code) *
 * scales[((oFirst + i) >> 7) * nbIn + (j >> 7)])) as float32.
 */
export function linearDequantFp8Bf16(src: usize, rows: i32, inDim: i32, oFirst: i32, scales: usize, nbIn: i32, dst: usize): void {
  const row = <usize>inDim;
  for (let i = 0; i < rows; i++) {
    const s0 = scales + (<usize>(((oFirst + i) >> 7) * nbIn) << 2);
    const c = src + <usize>i * row, d = dst + ((<usize>i * row) << 2);
    for (let j0: usize = 0; j0 < row; j0 += 128) {
      const sc = load<f32>(s0 + ((j0 >> 7) << 2));
      const s = f32x4.splat(sc);
      const j1 = min(row, j0 + 128), n16 = j0 + ((j1 - j0) & ~15);
      let j = j0;
      for (; j < n16; j += 16) {
        const b = v128.load(c + j);
        const lo = i16x8.extend_low_i8x16_s(b), hi = i16x8.extend_high_i8x16_s(b);
        const nan = hasNanCode(b);
        const p = d + (j << 2);
        v128.store(p, dequant4(i32x4.extend_low_i16x8_s(lo), s, nan));
        v128.store(p, dequant4(i32x4.extend_high_i16x8_s(lo), s, nan), 16);
        v128.store(p, dequant4(i32x4.extend_low_i16x8_s(hi), s, nan), 32);
        v128.store(p, dequant4(i32x4.extend_high_i16x8_s(hi), s, nan), 48);
      }
      for (; j < j1; j++) store<f32>(d + (j << 2), roundBf16Scalar(e4m3(load<u8>(c + j)) * sc));
    }
  }
}

@inline function lanes(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

/** The lane-ordered dot of x and w over [j0, j1) (j1 - j0 a multiple of 4 for the vector part; tail after). */
@inline function dotRange(x: usize, w: usize, j0: usize, j1: usize): f32 {
  const n4 = j0 + ((j1 - j0) & ~3);
  let a = f32x4.splat(0);
  let j = j0;
  for (; j < n4; j += 4) a = f32x4.add(a, f32x4.mul(v128.load(x + (j << 2)), v128.load(w + (j << 2))));
  let s = lanes(a);
  for (; j < j1; j++) s += load<f32>(x + (j << 2)) * load<f32>(w + (j << 2));
  return s;
}

/**
 * The float GEMM: y[r * yStride + o] = lane-ordered dot of x[r, :] and
 * w[o, :], r < n, o < rows; x [n, inDim] and w [rows, inDim] float32.
 * Four output rows at a time share each x load (four chains in flight).
 */
export function linearGemm(x: usize, n: i32, inDim: i32, w: usize, rows: i32, y: usize, yStride: i32): void {
  const row = <usize>inDim << 2, n4 = <usize>(inDim & ~3);
  const quads = rows & ~3;
  for (let o = 0; o < quads; o += 4) {
    const w0 = w + <usize>o * row, w1 = w0 + row, w2 = w1 + row, w3 = w2 + row;
    for (let r = 0; r < n; r++) {
      const xr = x + <usize>r * row;
      let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
      for (let j: usize = 0; j < (n4 << 2); j += 16) {
        const xv = v128.load(xr + j);
        a0 = f32x4.add(a0, f32x4.mul(xv, v128.load(w0 + j)));
        a1 = f32x4.add(a1, f32x4.mul(xv, v128.load(w1 + j)));
        a2 = f32x4.add(a2, f32x4.mul(xv, v128.load(w2 + j)));
        a3 = f32x4.add(a3, f32x4.mul(xv, v128.load(w3 + j)));
      }
      let s0 = lanes(a0), s1 = lanes(a1), s2 = lanes(a2), s3 = lanes(a3);
      for (let j = n4; j < <usize>inDim; j++) {
        const xj = load<f32>(xr + (j << 2));
        s0 += xj * load<f32>(w0 + (j << 2));
        s1 += xj * load<f32>(w1 + (j << 2));
        s2 += xj * load<f32>(w2 + (j << 2));
        s3 += xj * load<f32>(w3 + (j << 2));
      }
      const yp = y + ((<usize>r * <usize>yStride + <usize>o) << 2);
      store<f32>(yp, s0);
      store<f32>(yp, s1, 4);
      store<f32>(yp, s2, 8);
      store<f32>(yp, s3, 12);
    }
  }
  for (let o = quads; o < rows; o++) {
    for (let r = 0; r < n; r++) {
      store<f32>(y + ((<usize>r * <usize>yStride + <usize>o) << 2), dotRange(x + <usize>r * row, w + <usize>o * row, 0, <usize>inDim));
    }
  }
}

/**
 * The FP8 GEMM (fp8_gemm's promotion): x [n, inDim] and w [rows, inDim]
 * hold e4m3 values (decoded codes), xs [n, nbIn] x's block scales, scales
 * the weight's grid [*, nbIn] with w's row o the output feature oFirst + o:
 * y = sum over 128-blocks kb, in order, of f32(dot_kb * f32(xs[r, kb] *
 * scale[(oFirst + o) >> 7, kb])), each dot_kb lane-ordered over its block.
 */
export function linearGemmFp8(x: usize, xs: usize, n: i32, inDim: i32, w: usize, rows: i32, oFirst: i32, scales: usize, nbIn: i32, y: usize, yStride: i32): void {
  const row = <usize>inDim << 2, nb = <usize>nbIn;
  const quads = rows & ~3;
  for (let o = 0; o < rows; o += 4) {
    const four = o < quads;
    const w0 = w + <usize>o * row, w1 = w0 + row, w2 = w1 + row, w3 = w2 + row;
    for (let r = 0; r < n; r++) {
      const xr = x + <usize>r * row, xsr = xs + ((<usize>r * nb) << 2);
      let y0: f32 = 0, y1: f32 = 0, y2: f32 = 0, y3: f32 = 0;
      for (let kb: usize = 0; kb < nb; kb++) {
        const j0 = kb << 7, j1 = min(<usize>inDim, j0 + 128);
        const sx = load<f32>(xsr + (kb << 2));
        if (four) {
          const n4 = j0 + ((j1 - j0) & ~3);
          let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
          let j = j0;
          for (; j < n4; j += 4) {
            const xv = v128.load(xr + (j << 2));
            a0 = f32x4.add(a0, f32x4.mul(xv, v128.load(w0 + (j << 2))));
            a1 = f32x4.add(a1, f32x4.mul(xv, v128.load(w1 + (j << 2))));
            a2 = f32x4.add(a2, f32x4.mul(xv, v128.load(w2 + (j << 2))));
            a3 = f32x4.add(a3, f32x4.mul(xv, v128.load(w3 + (j << 2))));
          }
          let s0 = lanes(a0), s1 = lanes(a1), s2 = lanes(a2), s3 = lanes(a3);
          for (; j < j1; j++) {
            const xj = load<f32>(xr + (j << 2));
            s0 += xj * load<f32>(w0 + (j << 2));
            s1 += xj * load<f32>(w1 + (j << 2));
            s2 += xj * load<f32>(w2 + (j << 2));
            s3 += xj * load<f32>(w3 + (j << 2));
          }
          y0 += s0 * (sx * load<f32>(scales + ((<usize>((oFirst + o) >> 7) * nb + kb) << 2)));
          y1 += s1 * (sx * load<f32>(scales + ((<usize>((oFirst + o + 1) >> 7) * nb + kb) << 2)));
          y2 += s2 * (sx * load<f32>(scales + ((<usize>((oFirst + o + 2) >> 7) * nb + kb) << 2)));
          y3 += s3 * (sx * load<f32>(scales + ((<usize>((oFirst + o + 3) >> 7) * nb + kb) << 2)));
        } else {
          for (let oo = o; oo < rows; oo++) {
            const s = dotRange(xr, w + <usize>oo * row, j0, j1);
            const v = s * (sx * load<f32>(scales + ((<usize>((oFirst + oo) >> 7) * nb + kb) << 2)));
            if (oo == o) y0 += v;
            else if (oo == o + 1) y1 += v;
            else y2 += v;
          }
        }
      }
      const yp = y + ((<usize>r * <usize>yStride + <usize>o) << 2);
      store<f32>(yp, y0);
      if (o + 1 < rows) store<f32>(yp, y1, 4);
      if (o + 2 < rows) store<f32>(yp, y2, 8);
      if (o + 3 < rows) store<f32>(yp, y3, 12);
    }
  }
}
