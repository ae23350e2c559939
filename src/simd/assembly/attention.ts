// Attention kernels over one block of key rows copied into the module's
// memory (src/attention/online.ts lays them out): the logits of a group of
// query heads against the block, and the p.v accumulation of the same heads.
// d must be a multiple of 4 (the TypeScript path serves other sizes).

/** [sum(a), sum(b), sum(c), sum(d)] of four f32x4 vectors. */
@inline function sum4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = f32x4.add(v128.shuffle<f32>(a, b, 0, 4, 1, 5), v128.shuffle<f32>(a, b, 2, 6, 3, 7));
  const cd = f32x4.add(v128.shuffle<f32>(c, d, 0, 4, 1, 5), v128.shuffle<f32>(c, d, 2, 6, 3, 7));
  return f32x4.add(v128.shuffle<f32>(ab, cd, 0, 1, 4, 5), v128.shuffle<f32>(ab, cd, 2, 3, 6, 7));
}

/**
 * out[i * outStride + j] = q[i] . keys[j] for heads i < h and keys j < n:
 * q [h, d], keys [n, d] (rows `d` apart), n a multiple of 4 (rows past the
 * caller's count give logits it ignores). A 4-key x 2-head register tile
 * loads each key vector once per head pair and each query vector once per
 * 4 keys; the block stays in L1/L2 while every head of the group uses it.
 */
export function attnLogits(q: usize, h: i32, keys: usize, n: i32, d: i32, out: usize, outStride: i32): void {
  const rowBytes = <usize>d << 2;
  const outBytes = <usize>outStride << 2;
  const zero = f32x4.splat(0);
  for (let j = 0; j < n; j += 4) {
    const k0 = keys + <usize>j * rowBytes;
    const k1 = k0 + rowBytes, k2 = k1 + rowBytes, k3 = k2 + rowBytes;
    let i = 0;
    for (; i + 1 < h; i += 2) {
      const qa = q + <usize>i * rowBytes;
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
      v128.store(out + <usize>i * outBytes + (<usize>j << 2), sum4(a0, a1, a2, a3));
      v128.store(out + <usize>(i + 1) * outBytes + (<usize>j << 2), sum4(b0, b1, b2, b3));
    }
    if (i < h) {
      const qa = q + <usize>i * rowBytes;
      let a0 = zero, a1 = zero, a2 = zero, a3 = zero;
      for (let o: usize = 0; o < rowBytes; o += 16) {
        const x = v128.load(qa + o);
        a0 = f32x4.add(a0, f32x4.mul(x, v128.load(k0 + o)));
        a1 = f32x4.add(a1, f32x4.mul(x, v128.load(k1 + o)));
        a2 = f32x4.add(a2, f32x4.mul(x, v128.load(k2 + o)));
        a3 = f32x4.add(a3, f32x4.mul(x, v128.load(k3 + o)));
      }
      v128.store(out + <usize>i * outBytes + (<usize>j << 2), sum4(a0, a1, a2, a3));
    }
  }
}

/**
 * acc[i * accStride + c] += sum_j p[i * pStride + j] * keys[j * rowStride + c]
 * for heads i < h, keys j < n (in order), c < d: the first d values of each
 * key row are its value. A 4-head x 8-float tile keeps 8 accumulators in
 * registers across all n keys: each value vector is loaded once per 4 heads,
 * each probability splatted once per 8 floats.
 */
export function attnAccumulate(p: usize, pStride: i32, h: i32, keys: usize, n: i32, rowStride: i32, d: i32, acc: usize, accStride: i32): void {
  const rowBytes = <usize>rowStride << 2;
  const pBytes = <usize>pStride << 2;
  const accBytes = <usize>accStride << 2;
  const d8 = <usize>(d & ~7) << 2;
  const dBytes = <usize>d << 2;
  let i = 0;
  for (; i + 3 < h; i += 4) {
    const p0 = p + <usize>i * pBytes;
    const p1 = p0 + pBytes, p2 = p1 + pBytes, p3 = p2 + pBytes;
    const y0 = acc + <usize>i * accBytes;
    const y1 = y0 + accBytes, y2 = y1 + accBytes, y3 = y2 + accBytes;
    let o: usize = 0;
    for (; o < d8; o += 32) {
      let a0 = v128.load(y0 + o), a1 = v128.load(y1 + o), a2 = v128.load(y2 + o), a3 = v128.load(y3 + o);
      let b0 = v128.load(y0 + o, 16), b1 = v128.load(y1 + o, 16), b2 = v128.load(y2 + o, 16), b3 = v128.load(y3 + o, 16);
      let row = keys + o;
      for (let j = 0; j < n; j++) {
        const jo = <usize>j << 2;
        const v = v128.load(row), w = v128.load(row, 16);
        const s0 = v128.load32_splat(p0 + jo), s1 = v128.load32_splat(p1 + jo);
        const s2 = v128.load32_splat(p2 + jo), s3 = v128.load32_splat(p3 + jo);
        a0 = f32x4.add(a0, f32x4.mul(s0, v));
        a1 = f32x4.add(a1, f32x4.mul(s1, v));
        a2 = f32x4.add(a2, f32x4.mul(s2, v));
        a3 = f32x4.add(a3, f32x4.mul(s3, v));
        b0 = f32x4.add(b0, f32x4.mul(s0, w));
        b1 = f32x4.add(b1, f32x4.mul(s1, w));
        b2 = f32x4.add(b2, f32x4.mul(s2, w));
        b3 = f32x4.add(b3, f32x4.mul(s3, w));
        row += rowBytes;
      }
      v128.store(y0 + o, a0); v128.store(y1 + o, a1); v128.store(y2 + o, a2); v128.store(y3 + o, a3);
      v128.store(y0 + o, b0, 16); v128.store(y1 + o, b1, 16); v128.store(y2 + o, b2, 16); v128.store(y3 + o, b3, 16);
    }
    for (; o < dBytes; o += 16) {
      let a0 = v128.load(y0 + o), a1 = v128.load(y1 + o), a2 = v128.load(y2 + o), a3 = v128.load(y3 + o);
      let row = keys + o;
      for (let j = 0; j < n; j++) {
        const jo = <usize>j << 2;
        const v = v128.load(row);
        a0 = f32x4.add(a0, f32x4.mul(v128.load32_splat(p0 + jo), v));
        a1 = f32x4.add(a1, f32x4.mul(v128.load32_splat(p1 + jo), v));
        a2 = f32x4.add(a2, f32x4.mul(v128.load32_splat(p2 + jo), v));
        a3 = f32x4.add(a3, f32x4.mul(v128.load32_splat(p3 + jo), v));
        row += rowBytes;
      }
      v128.store(y0 + o, a0); v128.store(y1 + o, a1); v128.store(y2 + o, a2); v128.store(y3 + o, a3);
    }
  }
  for (; i < h; i++) {
    const p0 = p + <usize>i * pBytes;
    const y0 = acc + <usize>i * accBytes;
    for (let o: usize = 0; o < dBytes; o += 16) {
      let a0 = v128.load(y0 + o);
      let row = keys + o;
      for (let j = 0; j < n; j++) {
        a0 = f32x4.add(a0, f32x4.mul(v128.load32_splat(p0 + (<usize>j << 2)), v128.load(row)));
        row += rowBytes;
      }
      v128.store(y0 + o, a0);
    }
  }
}
