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

/**
 * bf16(f32(e4m3(w) * scale)) of four sign-extended codes; `m` is the
 * block's scale * 2^120 when `merged` (every scale of the weight below 256
 * in magnitude, so that product is exact: the TypeScript side checks), and
 * the raw bits times it is the same real product, rounded once, as
 * e4m3x4(w) * scale; else `m` is the scale and both multiplies are done.
 * `merged` and `nan` are constants where this is inlined.
 */
@inline function dequant4(w: v128, m: v128, merged: bool, nan: bool): v128 {
  const raw = v128.and(i32x4.shl(w, 20), i32x4.splat(<i32>0x87f00000));
  const r = roundBf16(merged ? f32x4.mul(raw, m) : f32x4.mul(f32x4.mul(raw, f32x4.splat(SCALE_UP)), m));
  return nan ? v128.or(r, nanLanes(w)) : r;
}

/** The block factor `dequant4` takes. */
@inline function blockFactor(sc: f32, merged: bool): f32 {
  return merged ? sc * SCALE_UP : sc;
}

/**
 * DeepSeek's weight_dequant then bf16: rows of inDim codes src [rows, inDim]
 * (output features oFirst ..), dst[i, j] = bf16(f32(e4m3(code) *
 * scales[((oFirst + i) >> 7) * nbIn + (j >> 7)])) as float32. `merged`:
 * every scale is below 256 in magnitude (see dequant4).
 */
export function linearDequantFp8Bf16(src: usize, rows: i32, inDim: i32, oFirst: i32, scales: usize, nbIn: i32, dst: usize, merged: i32): void {
  if (merged) dequantRows(src, rows, inDim, oFirst, scales, nbIn, dst, true);
  else dequantRows(src, rows, inDim, oFirst, scales, nbIn, dst, false);
}

@inline function dequantChunk(b: v128, m: v128, p: usize, merged: bool): void {
  const lo = i16x8.extend_low_i8x16_s(b), hi = i16x8.extend_high_i8x16_s(b);
  if (!hasNanCode(b)) {
    v128.store(p, dequant4(i32x4.extend_low_i16x8_s(lo), m, merged, false));
    v128.store(p, dequant4(i32x4.extend_high_i16x8_s(lo), m, merged, false), 16);
    v128.store(p, dequant4(i32x4.extend_low_i16x8_s(hi), m, merged, false), 32);
    v128.store(p, dequant4(i32x4.extend_high_i16x8_s(hi), m, merged, false), 48);
  } else {
    v128.store(p, dequant4(i32x4.extend_low_i16x8_s(lo), m, merged, true));
    v128.store(p, dequant4(i32x4.extend_high_i16x8_s(lo), m, merged, true), 16);
    v128.store(p, dequant4(i32x4.extend_low_i16x8_s(hi), m, merged, true), 32);
    v128.store(p, dequant4(i32x4.extend_high_i16x8_s(hi), m, merged, true), 48);
  }
}

@inline function dequantRows(src: usize, rows: i32, inDim: i32, oFirst: i32, scales: usize, nbIn: i32, dst: usize, merged: bool): void {
  const row = <usize>inDim;
  for (let i = 0; i < rows; i++) {
    const s0 = scales + (<usize>(((oFirst + i) >> 7) * nbIn) << 2);
    const c = src + <usize>i * row, d = dst + ((<usize>i * row) << 2);
    for (let j0: usize = 0; j0 < row; j0 += 128) {
      const sc = load<f32>(s0 + ((j0 >> 7) << 2));
      const m = f32x4.splat(blockFactor(sc, merged));
      const j1 = min(row, j0 + 128), n16 = j0 + ((j1 - j0) & ~15);
      let j = j0;
      for (; j < n16; j += 16) dequantChunk(v128.load(c + j), m, d + (j << 2), merged);
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
    // Two rows of x at a time: eight chains, each weight vector loaded once for both.
    let r = 0;
    for (; r + 1 < n; r += 2) {
      const xr = x + <usize>r * row, xq = xr + row;
      let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
      for (let j: usize = 0; j < (n4 << 2); j += 16) {
        const xv = v128.load(xr + j), xu = v128.load(xq + j);
        const v0 = v128.load(w0 + j), v1 = v128.load(w1 + j), v2 = v128.load(w2 + j), v3 = v128.load(w3 + j);
        a0 = f32x4.add(a0, f32x4.mul(xv, v0));
        b0 = f32x4.add(b0, f32x4.mul(xu, v0));
        a1 = f32x4.add(a1, f32x4.mul(xv, v1));
        b1 = f32x4.add(b1, f32x4.mul(xu, v1));
        a2 = f32x4.add(a2, f32x4.mul(xv, v2));
        b2 = f32x4.add(b2, f32x4.mul(xu, v2));
        a3 = f32x4.add(a3, f32x4.mul(xv, v3));
        b3 = f32x4.add(b3, f32x4.mul(xu, v3));
      }
      let s0 = lanes(a0), s1 = lanes(a1), s2 = lanes(a2), s3 = lanes(a3);
      let t0 = lanes(b0), t1 = lanes(b1), t2 = lanes(b2), t3 = lanes(b3);
      for (let j = n4; j < <usize>inDim; j++) {
        const xj = load<f32>(xr + (j << 2)), xk = load<f32>(xq + (j << 2));
        const u0 = load<f32>(w0 + (j << 2)), u1 = load<f32>(w1 + (j << 2)), u2 = load<f32>(w2 + (j << 2)), u3 = load<f32>(w3 + (j << 2));
        s0 += xj * u0;
        s1 += xj * u1;
        s2 += xj * u2;
        s3 += xj * u3;
        t0 += xk * u0;
        t1 += xk * u1;
        t2 += xk * u2;
        t3 += xk * u3;
      }
      const yp = y + ((<usize>r * <usize>yStride + <usize>o) << 2), yq = yp + (<usize>yStride << 2);
      store<f32>(yp, s0);
      store<f32>(yp, s1, 4);
      store<f32>(yp, s2, 8);
      store<f32>(yp, s3, 12);
      store<f32>(yq, t0);
      store<f32>(yq, t1, 4);
      store<f32>(yq, t2, 8);
      store<f32>(yq, t3, 12);
    }
    for (; r < n; r++) {
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
  for (let o = 0; o < quads; o += 4) {
    const w0 = w + <usize>o * row, w1 = w0 + row, w2 = w1 + row, w3 = w2 + row;
    const sc0 = scales + ((<usize>((oFirst + o) >> 7) * nb) << 2), sc1 = scales + ((<usize>((oFirst + o + 1) >> 7) * nb) << 2);
    const sc2 = scales + ((<usize>((oFirst + o + 2) >> 7) * nb) << 2), sc3 = scales + ((<usize>((oFirst + o + 3) >> 7) * nb) << 2);
    // Two rows of x at a time where there are two (eight chains), else one.
    for (let r = 0; r < n; r += 2) {
      const pair = r + 1 < n;
      const xr = x + <usize>r * row, xq = pair ? xr + row : xr;
      const xsr = xs + ((<usize>r * nb) << 2), xsq = pair ? xsr + (nb << 2) : xsr;
      let y0: f32 = 0, y1: f32 = 0, y2: f32 = 0, y3: f32 = 0, z0: f32 = 0, z1: f32 = 0, z2: f32 = 0, z3: f32 = 0;
      for (let kb: usize = 0; kb < nb; kb++) {
        const j0 = kb << 7, j1 = min(<usize>inDim, j0 + 128);
        const n4 = j0 + ((j1 - j0) & ~3);
        let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        for (let o4 = j0 << 2; o4 < (n4 << 2); o4 += 16) {
          const xv = v128.load(xr + o4), xu = v128.load(xq + o4);
          const v0 = v128.load(w0 + o4), v1 = v128.load(w1 + o4), v2 = v128.load(w2 + o4), v3 = v128.load(w3 + o4);
          a0 = f32x4.add(a0, f32x4.mul(xv, v0));
          b0 = f32x4.add(b0, f32x4.mul(xu, v0));
          a1 = f32x4.add(a1, f32x4.mul(xv, v1));
          b1 = f32x4.add(b1, f32x4.mul(xu, v1));
          a2 = f32x4.add(a2, f32x4.mul(xv, v2));
          b2 = f32x4.add(b2, f32x4.mul(xu, v2));
          a3 = f32x4.add(a3, f32x4.mul(xv, v3));
          b3 = f32x4.add(b3, f32x4.mul(xu, v3));
        }
        let s0 = lanes(a0), s1 = lanes(a1), s2 = lanes(a2), s3 = lanes(a3);
        let t0 = lanes(b0), t1 = lanes(b1), t2 = lanes(b2), t3 = lanes(b3);
        for (let j = n4; j < j1; j++) {
          const xj = load<f32>(xr + (j << 2)), xk = load<f32>(xq + (j << 2));
          const u0 = load<f32>(w0 + (j << 2)), u1 = load<f32>(w1 + (j << 2)), u2 = load<f32>(w2 + (j << 2)), u3 = load<f32>(w3 + (j << 2));
          s0 += xj * u0;
          s1 += xj * u1;
          s2 += xj * u2;
          s3 += xj * u3;
          t0 += xk * u0;
          t1 += xk * u1;
          t2 += xk * u2;
          t3 += xk * u3;
        }
        const kb4 = kb << 2;
        const sx = load<f32>(xsr + kb4), sz = load<f32>(xsq + kb4);
        const g0 = load<f32>(sc0 + kb4), g1 = load<f32>(sc1 + kb4), g2 = load<f32>(sc2 + kb4), g3 = load<f32>(sc3 + kb4);
        y0 += s0 * (sx * g0);
        y1 += s1 * (sx * g1);
        y2 += s2 * (sx * g2);
        y3 += s3 * (sx * g3);
        z0 += t0 * (sz * g0);
        z1 += t1 * (sz * g1);
        z2 += t2 * (sz * g2);
        z3 += t3 * (sz * g3);
      }
      const yp = y + ((<usize>r * <usize>yStride + <usize>o) << 2);
      store<f32>(yp, y0);
      store<f32>(yp, y1, 4);
      store<f32>(yp, y2, 8);
      store<f32>(yp, y3, 12);
      if (pair) {
        const yq = yp + (<usize>yStride << 2);
        store<f32>(yq, z0);
        store<f32>(yq, z1, 4);
        store<f32>(yq, z2, 8);
        store<f32>(yq, z3, 12);
      }
    }
  }
  for (let o = quads; o < rows; o++) {
    const wo = w + <usize>o * row, so = scales + ((<usize>((oFirst + o) >> 7) * nb) << 2);
    for (let r = 0; r < n; r++) {
      const xr = x + <usize>r * row, xsr = xs + ((<usize>r * nb) << 2);
      let acc: f32 = 0;
      for (let kb: usize = 0; kb < nb; kb++) {
        const j0 = kb << 7;
        acc += dotRange(xr, wo, j0, min(<usize>inDim, j0 + 128)) * (load<f32>(xsr + (kb << 2)) * load<f32>(so + (kb << 2)));
      }
      store<f32>(y + ((<usize>r * <usize>yStride + <usize>o) << 2), acc);
    }
  }
}

// One row of x (decode at b = 1): the weight is decoded in registers and
// multiplied at once, two output features at a time (two accumulator
// chains), in the same lane order as linearGemm: each weight byte is read
// once and no decoded value is stored.

/** y[o] = dot(x, bf16 row o), o < rows; w [rows, inDim] bf16 bits. */
export function linearGemvBf16(x: usize, inDim: i32, w: usize, rows: i32, y: usize): void {
  const row = <usize>inDim << 1, n8 = <usize>(inDim & ~7), n4 = <usize>(inDim & ~3);
  for (let o = 0; o < rows; o += 2) {
    const two = o + 1 < rows;
    const wa = w + <usize>o * row, wb = two ? wa + row : wa;
    let a = f32x4.splat(0), b = a;
    let j: usize = 0;
    for (; j < n8; j += 8) {
      const x0 = v128.load(x + (j << 2)), x1 = v128.load(x + (j << 2), 16);
      const va = v128.load(wa + (j << 1)), vb = v128.load(wb + (j << 1));
      a = f32x4.add(a, f32x4.mul(x0, i32x4.shl(i32x4.extend_low_i16x8_u(va), 16)));
      b = f32x4.add(b, f32x4.mul(x0, i32x4.shl(i32x4.extend_low_i16x8_u(vb), 16)));
      a = f32x4.add(a, f32x4.mul(x1, i32x4.shl(i32x4.extend_high_i16x8_u(va), 16)));
      b = f32x4.add(b, f32x4.mul(x1, i32x4.shl(i32x4.extend_high_i16x8_u(vb), 16)));
    }
    if (j < n4) {
      const x0 = v128.load(x + (j << 2));
      a = f32x4.add(a, f32x4.mul(x0, i32x4.shl(i32x4.extend_low_i16x8_u(v128.load64_zero(wa + (j << 1))), 16)));
      b = f32x4.add(b, f32x4.mul(x0, i32x4.shl(i32x4.extend_low_i16x8_u(v128.load64_zero(wb + (j << 1))), 16)));
      j += 4;
    }
    let sa = lanes(a), sb = lanes(b);
    for (; j < <usize>inDim; j++) {
      const xj = load<f32>(x + (j << 2));
      sa += xj * reinterpret<f32>(<u32>load<u16>(wa + (j << 1)) << 16);
      sb += xj * reinterpret<f32>(<u32>load<u16>(wb + (j << 1)) << 16);
    }
    store<f32>(y + (<usize>o << 2), sa);
    if (two) store<f32>(y + (<usize>o << 2), sb, 4);
  }
}

/** The 16 dequantized values of codes b against x, added to acc in lane order. */
@inline function gemvChunkBf16(acc: v128, x: usize, b: v128, m: v128, merged: bool): v128 {
  const lo = i16x8.extend_low_i8x16_s(b), hi = i16x8.extend_high_i8x16_s(b);
  if (!hasNanCode(b)) {
    acc = f32x4.add(acc, f32x4.mul(v128.load(x), dequant4(i32x4.extend_low_i16x8_s(lo), m, merged, false)));
    acc = f32x4.add(acc, f32x4.mul(v128.load(x, 16), dequant4(i32x4.extend_high_i16x8_s(lo), m, merged, false)));
    acc = f32x4.add(acc, f32x4.mul(v128.load(x, 32), dequant4(i32x4.extend_low_i16x8_s(hi), m, merged, false)));
    return f32x4.add(acc, f32x4.mul(v128.load(x, 48), dequant4(i32x4.extend_high_i16x8_s(hi), m, merged, false)));
  }
  acc = f32x4.add(acc, f32x4.mul(v128.load(x), dequant4(i32x4.extend_low_i16x8_s(lo), m, merged, true)));
  acc = f32x4.add(acc, f32x4.mul(v128.load(x, 16), dequant4(i32x4.extend_high_i16x8_s(lo), m, merged, true)));
  acc = f32x4.add(acc, f32x4.mul(v128.load(x, 32), dequant4(i32x4.extend_low_i16x8_s(hi), m, merged, true)));
  return f32x4.add(acc, f32x4.mul(v128.load(x, 48), dequant4(i32x4.extend_high_i16x8_s(hi), m, merged, true)));
}

/** The 4 dequantized values of codes at c (4 bytes) against x, added to acc. */
@inline function gemvQuadBf16(acc: v128, x: usize, c: usize, m: v128, merged: bool): v128 {
  const w = i32x4.extend_low_i16x8_s(i16x8.extend_low_i8x16_s(v128.load32_zero(c)));
  return f32x4.add(acc, f32x4.mul(v128.load(x), dequant4(w, m, merged, true)));
}

/**
 * y[o] = dot(x, bf16(e4m3(code) * scale) of row o): linearDequantFp8Bf16
 * then linearGemm, fused; w [rows, inDim] codes of output features oFirst ...
 */
export function linearGemvFp8Bf16(x: usize, inDim: i32, w: usize, rows: i32, oFirst: i32, scales: usize, nbIn: i32, y: usize, merged: i32): void {
  if (merged) gemvFp8Bf16(x, inDim, w, rows, oFirst, scales, nbIn, y, true);
  else gemvFp8Bf16(x, inDim, w, rows, oFirst, scales, nbIn, y, false);
}

@inline function gemvFp8Bf16(x: usize, inDim: i32, w: usize, rows: i32, oFirst: i32, scales: usize, nbIn: i32, y: usize, merged: bool): void {
  const row = <usize>inDim, n4 = <usize>(inDim & ~3);
  for (let o = 0; o < rows; o += 2) {
    const two = o + 1 < rows;
    const wa = w + <usize>o * row, wb = two ? wa + row : wa;
    const sra = scales + (<usize>(((oFirst + o) >> 7) * nbIn) << 2);
    const srb = scales + (<usize>(((oFirst + o + (two ? 1 : 0)) >> 7) * nbIn) << 2);
    let a = f32x4.splat(0), b = a;
    for (let j0: usize = 0; j0 < row; j0 += 128) {
      const ma = f32x4.splat(blockFactor(load<f32>(sra + ((j0 >> 7) << 2)), merged));
      const mb = f32x4.splat(blockFactor(load<f32>(srb + ((j0 >> 7) << 2)), merged));
      const j1 = min(n4, j0 + 128), n16 = j0 + ((min(row, j0 + 128) - j0) & ~15);
      let j = j0;
      for (; j < n16; j += 16) {
        const xp = x + (j << 2);
        a = gemvChunkBf16(a, xp, v128.load(wa + j), ma, merged);
        b = gemvChunkBf16(b, xp, v128.load(wb + j), mb, merged);
      }
      for (; j < j1; j += 4) {
        a = gemvQuadBf16(a, x + (j << 2), wa + j, ma, merged);
        b = gemvQuadBf16(b, x + (j << 2), wb + j, mb, merged);
      }
    }
    let ya = lanes(a), yb = lanes(b);
    for (let j = n4; j < row; j++) {
      const xj = load<f32>(x + (j << 2));
      ya += xj * roundBf16Scalar(e4m3(load<u8>(wa + j)) * load<f32>(sra + ((j >> 7) << 2)));
      yb += xj * roundBf16Scalar(e4m3(load<u8>(wb + j)) * load<f32>(srb + ((j >> 7) << 2)));
    }
    store<f32>(y + (<usize>o << 2), ya);
    if (two) store<f32>(y + (<usize>o << 2), yb, 4);
  }
}

/** e4m3 values of 16 codes b (NaN codes NaN). */
@inline function codesChunk(acc: v128, x: usize, b: v128): v128 {
  const lo = i16x8.extend_low_i8x16_s(b), hi = i16x8.extend_high_i8x16_s(b);
  const w0 = i32x4.extend_low_i16x8_s(lo), w1 = i32x4.extend_high_i16x8_s(lo);
  const w2 = i32x4.extend_low_i16x8_s(hi), w3 = i32x4.extend_high_i16x8_s(hi);
  if (!hasNanCode(b)) {
    acc = f32x4.add(acc, f32x4.mul(v128.load(x), e4m3x4(w0)));
    acc = f32x4.add(acc, f32x4.mul(v128.load(x, 16), e4m3x4(w1)));
    acc = f32x4.add(acc, f32x4.mul(v128.load(x, 32), e4m3x4(w2)));
    return f32x4.add(acc, f32x4.mul(v128.load(x, 48), e4m3x4(w3)));
  }
  acc = f32x4.add(acc, f32x4.mul(v128.load(x), v128.or(e4m3x4(w0), nanLanes(w0))));
  acc = f32x4.add(acc, f32x4.mul(v128.load(x, 16), v128.or(e4m3x4(w1), nanLanes(w1))));
  acc = f32x4.add(acc, f32x4.mul(v128.load(x, 32), v128.or(e4m3x4(w2), nanLanes(w2))));
  return f32x4.add(acc, f32x4.mul(v128.load(x, 48), v128.or(e4m3x4(w3), nanLanes(w3))));
}

@inline function codesQuad(acc: v128, x: usize, c: usize): v128 {
  const w = i32x4.extend_low_i16x8_s(i16x8.extend_low_i8x16_s(v128.load32_zero(c)));
  return f32x4.add(acc, f32x4.mul(v128.load(x), v128.or(e4m3x4(w), nanLanes(w))));
}

/**
 * linearGemmFp8 of one row with the weight's codes decoded in registers:
 * xv [inDim] x's e4m3 values, xs [nbIn] its block scales, w [rows, inDim]
 * codes of output features oFirst ...
 */
export function linearGemvFp8(xv: usize, xs: usize, inDim: i32, w: usize, rows: i32, oFirst: i32, scales: usize, nbIn: i32, y: usize): void {
  const row = <usize>inDim;
  for (let o = 0; o < rows; o += 2) {
    const two = o + 1 < rows;
    const wa = w + <usize>o * row, wb = two ? wa + row : wa;
    const sra = scales + (<usize>(((oFirst + o) >> 7) * nbIn) << 2);
    const srb = scales + (<usize>(((oFirst + o + (two ? 1 : 0)) >> 7) * nbIn) << 2);
    let ya: f32 = 0, yb: f32 = 0;
    for (let j0: usize = 0; j0 < row; j0 += 128) {
      const end = min(row, j0 + 128), n4 = j0 + ((end - j0) & ~3), n16 = j0 + ((end - j0) & ~15);
      let a = f32x4.splat(0), b = a;
      let j = j0;
      for (; j < n16; j += 16) {
        a = codesChunk(a, xv + (j << 2), v128.load(wa + j));
        b = codesChunk(b, xv + (j << 2), v128.load(wb + j));
      }
      for (; j < n4; j += 4) {
        a = codesQuad(a, xv + (j << 2), wa + j);
        b = codesQuad(b, xv + (j << 2), wb + j);
      }
      let pa = lanes(a), pb = lanes(b);
      for (; j < end; j++) {
        const xj = load<f32>(xv + (j << 2));
        pa += xj * e4m3(load<u8>(wa + j));
        pb += xj * e4m3(load<u8>(wb + j));
      }
      const sx = load<f32>(xs + ((j0 >> 7) << 2));
      ya += pa * (sx * load<f32>(sra + ((j0 >> 7) << 2)));
      yb += pb * (sx * load<f32>(srb + ((j0 >> 7) << 2)));
    }
    store<f32>(y + (<usize>o << 2), ya);
    if (two) store<f32>(y + (<usize>o << 2), yb, 4);
  }
}
