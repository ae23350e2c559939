// Lightning indexer kernels: one query row (all heads) against a block of
// keys, out[j] = sum_h w[h] * ReLU(q[h] . k[j]), heads summed in order.
// The loader pads keys to a multiple of 4 rows and heads to a multiple of 2
// (zero rows, zero weights), and d to `dp` (a multiple of 8) with zeros, so
// the loops here have no tails. A 4-key x 2-head register tile (8 vector
// accumulators) loads each key vector once per head pair and each query
// vector once per 4 keys; the keys of a block stay in L1/L2 while all heads
// pass over them.

import { blockAmax, roundLanes, sum4f, sum4i } from './indexer-lanes';

/**
 * float32: q [h, dp], w [h], keys [n, dp], out [n]; h even, n a multiple
 * of 4, dp a multiple of 8.
 */
export function indexerBlockF32(q: usize, w: usize, keys: usize, n: i32, h: i32, dp: i32, out: usize): void {
  const rowBytes = <usize>dp << 2;
  const zero = f32x4.splat(0);
  for (let j = 0; j < n; j += 4) {
    const k0 = keys + <usize>j * rowBytes;
    const k1 = k0 + rowBytes, k2 = k1 + rowBytes, k3 = k2 + rowBytes;
    let s = zero;
    for (let hh = 0; hh < h; hh += 2) {
      const qa = q + <usize>hh * rowBytes;
      const qb = qa + rowBytes;
      let a0 = zero, a1 = zero, a2 = zero, a3 = zero;
      let b0 = zero, b1 = zero, b2 = zero, b3 = zero;
      for (let o: usize = 0; o < rowBytes; o += 16) {
        const x = v128.load(qa + o), y = v128.load(qb + o);
        const v0 = v128.load(k0 + o), v1 = v128.load(k1 + o), v2 = v128.load(k2 + o), v3 = v128.load(k3 + o);
        a0 = f32x4.add(a0, f32x4.mul(x, v0));
        a1 = f32x4.add(a1, f32x4.mul(x, v1));
        a2 = f32x4.add(a2, f32x4.mul(x, v2));
        a3 = f32x4.add(a3, f32x4.mul(x, v3));
        b0 = f32x4.add(b0, f32x4.mul(y, v0));
        b1 = f32x4.add(b1, f32x4.mul(y, v1));
        b2 = f32x4.add(b2, f32x4.mul(y, v2));
        b3 = f32x4.add(b3, f32x4.mul(y, v3));
      }
      const wp = w + (<usize>hh << 2);
      s = f32x4.add(s, f32x4.mul(v128.load32_splat(wp), f32x4.pmax(sum4f(a0, a1, a2, a3), zero)));
      s = f32x4.add(s, f32x4.mul(v128.load32_splat(wp, 4), f32x4.pmax(sum4f(b0, b1, b2, b3), zero)));
    }
    v128.store(out + (<usize>j << 2), s);
  }
}

/**
 * Block-128 symmetric quantization of rows src [n, dp] float32 into
 * dst [n, dp] int16 lanes holding values in [-127, 127], with one float32
 * scale per 128-element block: scale = amax / 127, v = nearest(x * (127 / amax))
 * (0 when amax = 0). Scales go to scales[b * scaleStride + i] (block-major,
 * so the scales of consecutive rows load as one vector). dp a multiple of 16.
 */
export function quantizeRows(src: usize, dst: usize, scales: usize, scaleStride: i32, n: i32, dp: i32): void {
  quantizeRowsTo(src, dst, scales, scaleStride, n, dp, 127);
}

/** quantizeRows with 63 levels: values in [-63, 63], scale = amax / 63 (the 'int7' queries). */
export function quantizeRows7(src: usize, dst: usize, scales: usize, scaleStride: i32, n: i32, dp: i32): void {
  quantizeRowsTo(src, dst, scales, scaleStride, n, dp, 63);
}

@inline function quantizeRowsTo(src: usize, dst: usize, scales: usize, scaleStride: i32, n: i32, dp: i32, levels: f32): void {
  const nb = (dp + 127) >> 7;
  for (let i = 0; i < n; i++) {
    const x = src + (<usize>i * <usize>dp << 2);
    const y = dst + (<usize>i * <usize>dp << 1);
    for (let b = 0; b < nb; b++) {
      const e0 = b << 7;
      const e1 = min(e0 + 128, dp);
      const amax = blockAmax(x, e0, e1);
      const inv: f32 = amax > 0 ? levels / amax : 0;
      store<f32>(scales + ((<usize>b * <usize>scaleStride + <usize>i) << 2), amax / levels);
      const iv = f32x4.splat(inv);
      for (let e = e0; e < e1; e += 8) {
        const p = x + (<usize>e << 2);
        v128.store(y + (<usize>e << 1), i16x8.narrow_i32x4_s(roundLanes(p, iv), roundLanes(p + 16, iv)));
      }
    }
  }
}

/** dst[i] = src[i] for i < n (a multiple of 16): int8 values widened to int16 lanes. */
export function widenI8(src: usize, dst: usize, n: i32): void {
  for (let i: usize = 0; i < <usize>n; i += 16) {
    const v = v128.load(src + i);
    v128.store(dst + (i << 1), i16x8.extend_low_i8x16_s(v));
    v128.store(dst + (i << 1), i16x8.extend_high_i8x16_s(v), 16);
  }
}

/**
 * int8 (in int16 lanes): q [h, dp] with scales qs[b * h + hh], keys [n, dp]
 * with scales ks[b * ksStride + j], w [h], out [n]. Per head and key:
 * dot = sum over blocks b of f32(qs * ks) * f32(integer dot of block b),
 * accumulated in float32 in block order; then out[j] = sum_h w * ReLU(dot).
 * h even, n a multiple of 4, dp a multiple of 16. The integer dot of a
 * block cannot overflow: |v| <= 127, 128 terms, < 2^21.
 */
export function indexerBlockI8(q: usize, qs: usize, w: usize, keys: usize, ks: usize, ksStride: i32, n: i32, h: i32, dp: i32, out: usize): void {
  const rowBytes = <usize>dp << 1;
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
        const o0 = <usize>(b << 8);
        const o1 = <usize>min((b + 1) << 8, dp << 1);
        let a0 = izero, a1 = izero, a2 = izero, a3 = izero;
        let b0 = izero, b1 = izero, b2 = izero, b3 = izero;
        for (let o = o0; o < o1; o += 16) {
          const x = v128.load(qa + o), y = v128.load(qb + o);
          const v0 = v128.load(k0 + o), v1 = v128.load(k1 + o), v2 = v128.load(k2 + o), v3 = v128.load(k3 + o);
          a0 = i32x4.add(a0, i32x4.dot_i16x8_s(x, v0));
          a1 = i32x4.add(a1, i32x4.dot_i16x8_s(x, v1));
          a2 = i32x4.add(a2, i32x4.dot_i16x8_s(x, v2));
          a3 = i32x4.add(a3, i32x4.dot_i16x8_s(x, v3));
          b0 = i32x4.add(b0, i32x4.dot_i16x8_s(y, v0));
          b1 = i32x4.add(b1, i32x4.dot_i16x8_s(y, v1));
          b2 = i32x4.add(b2, i32x4.dot_i16x8_s(y, v2));
          b3 = i32x4.add(b3, i32x4.dot_i16x8_s(y, v3));
        }
        const kscale = v128.load(ks + ((<usize>b * <usize>ksStride + <usize>j) << 2));
        const qsp = qs + ((<usize>b * <usize>h + <usize>hh) << 2);
        da = f32x4.add(da, f32x4.mul(f32x4.mul(v128.load32_splat(qsp), kscale), f32x4.convert_i32x4_s(sum4i(a0, a1, a2, a3))));
        db = f32x4.add(db, f32x4.mul(f32x4.mul(v128.load32_splat(qsp, 4), kscale), f32x4.convert_i32x4_s(sum4i(b0, b1, b2, b3))));
      }
      const wp = w + (<usize>hh << 2);
      s = f32x4.add(s, f32x4.mul(v128.load32_splat(wp), f32x4.pmax(da, zero)));
      s = f32x4.add(s, f32x4.mul(v128.load32_splat(wp, 4), f32x4.pmax(db, zero)));
    }
    v128.store(out + (<usize>j << 2), s);
  }
}

// d = 128 (DeepSeek-V3.2's indexer head dim), specialised: rows are a
// constant 512 (float32) or 256 (int16) bytes apart, so the 4 keys and 2
// heads of the register tile are addressed from one pointer each by
// immediate offsets. The generic kernels above need 6 live pointers, and
// V8 then spills accumulators to the stack in the inner loop.

/** indexerBlockF32 with dp = 128. */
export function indexerBlockF32D128(q: usize, w: usize, keys: usize, n: i32, h: i32, out: usize): void {
  const zero = f32x4.splat(0);
  for (let j = 0; j < n; j += 4) {
    const kj = keys + (<usize>j << 9);
    let s = zero;
    for (let hh = 0; hh < h; hh += 2) {
      const qh = q + (<usize>hh << 9);
      let a0 = zero, a1 = zero, a2 = zero, a3 = zero;
      let b0 = zero, b1 = zero, b2 = zero, b3 = zero;
      for (let o: usize = 0; o < 512; o += 32) {
        const qp = qh + o, kp = kj + o;
        let x = v128.load(qp), y = v128.load(qp, 512);
        let v = v128.load(kp);
        a0 = f32x4.add(a0, f32x4.mul(x, v));
        b0 = f32x4.add(b0, f32x4.mul(y, v));
        v = v128.load(kp, 512);
        a1 = f32x4.add(a1, f32x4.mul(x, v));
        b1 = f32x4.add(b1, f32x4.mul(y, v));
        v = v128.load(kp, 1024);
        a2 = f32x4.add(a2, f32x4.mul(x, v));
        b2 = f32x4.add(b2, f32x4.mul(y, v));
        v = v128.load(kp, 1536);
        a3 = f32x4.add(a3, f32x4.mul(x, v));
        b3 = f32x4.add(b3, f32x4.mul(y, v));
        x = v128.load(qp, 16); y = v128.load(qp, 528);
        v = v128.load(kp, 16);
        a0 = f32x4.add(a0, f32x4.mul(x, v));
        b0 = f32x4.add(b0, f32x4.mul(y, v));
        v = v128.load(kp, 528);
        a1 = f32x4.add(a1, f32x4.mul(x, v));
        b1 = f32x4.add(b1, f32x4.mul(y, v));
        v = v128.load(kp, 1040);
        a2 = f32x4.add(a2, f32x4.mul(x, v));
        b2 = f32x4.add(b2, f32x4.mul(y, v));
        v = v128.load(kp, 1552);
        a3 = f32x4.add(a3, f32x4.mul(x, v));
        b3 = f32x4.add(b3, f32x4.mul(y, v));
      }
      const wp = w + (<usize>hh << 2);
      s = f32x4.add(s, f32x4.mul(v128.load32_splat(wp), f32x4.pmax(sum4f(a0, a1, a2, a3), zero)));
      s = f32x4.add(s, f32x4.mul(v128.load32_splat(wp, 4), f32x4.pmax(sum4f(b0, b1, b2, b3), zero)));
    }
    v128.store(out + (<usize>j << 2), s);
  }
}

/** indexerBlockI8 with dp = 128 (one quantization block per row). */
export function indexerBlockI8D128(q: usize, qs: usize, w: usize, keys: usize, ks: usize, n: i32, h: i32, out: usize): void {
  const zero = f32x4.splat(0);
  const izero = i32x4.splat(0);
  for (let j = 0; j < n; j += 4) {
    const kj = keys + (<usize>j << 8);
    const kscale = v128.load(ks + (<usize>j << 2));
    let s = zero;
    for (let hh = 0; hh < h; hh += 2) {
      const qh = q + (<usize>hh << 8);
      let a0 = izero, a1 = izero, a2 = izero, a3 = izero;
      let b0 = izero, b1 = izero, b2 = izero, b3 = izero;
      for (let o: usize = 0; o < 256; o += 32) {
        const qp = qh + o, kp = kj + o;
        let x = v128.load(qp), y = v128.load(qp, 256);
        let v = v128.load(kp);
        a0 = i32x4.add(a0, i32x4.dot_i16x8_s(x, v));
        b0 = i32x4.add(b0, i32x4.dot_i16x8_s(y, v));
        v = v128.load(kp, 256);
        a1 = i32x4.add(a1, i32x4.dot_i16x8_s(x, v));
        b1 = i32x4.add(b1, i32x4.dot_i16x8_s(y, v));
        v = v128.load(kp, 512);
        a2 = i32x4.add(a2, i32x4.dot_i16x8_s(x, v));
        b2 = i32x4.add(b2, i32x4.dot_i16x8_s(y, v));
        v = v128.load(kp, 768);
        a3 = i32x4.add(a3, i32x4.dot_i16x8_s(x, v));
        b3 = i32x4.add(b3, i32x4.dot_i16x8_s(y, v));
        x = v128.load(qp, 16); y = v128.load(qp, 272);
        v = v128.load(kp, 16);
        a0 = i32x4.add(a0, i32x4.dot_i16x8_s(x, v));
        b0 = i32x4.add(b0, i32x4.dot_i16x8_s(y, v));
        v = v128.load(kp, 272);
        a1 = i32x4.add(a1, i32x4.dot_i16x8_s(x, v));
        b1 = i32x4.add(b1, i32x4.dot_i16x8_s(y, v));
        v = v128.load(kp, 528);
        a2 = i32x4.add(a2, i32x4.dot_i16x8_s(x, v));
        b2 = i32x4.add(b2, i32x4.dot_i16x8_s(y, v));
        v = v128.load(kp, 784);
        a3 = i32x4.add(a3, i32x4.dot_i16x8_s(x, v));
        b3 = i32x4.add(b3, i32x4.dot_i16x8_s(y, v));
      }
      const qsp = qs + (<usize>hh << 2);
      const wp = w + (<usize>hh << 2);
      const da = f32x4.mul(f32x4.mul(v128.load32_splat(qsp), kscale), f32x4.convert_i32x4_s(sum4i(a0, a1, a2, a3)));
      const db = f32x4.mul(f32x4.mul(v128.load32_splat(qsp, 4), kscale), f32x4.convert_i32x4_s(sum4i(b0, b1, b2, b3)));
      s = f32x4.add(s, f32x4.mul(v128.load32_splat(wp), f32x4.pmax(da, zero)));
      s = f32x4.add(s, f32x4.mul(v128.load32_splat(wp, 4), f32x4.pmax(db, zero)));
    }
    v128.store(out + (<usize>j << 2), s);
  }
}
