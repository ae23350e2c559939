/**
 * DeepSeek-V3.2's block-128 activation quantization, in plain TypeScript:
 * the reference the WebAssembly path (src/simd/assembly/indexer.ts) matches
 * bit for bit, and the int8 path where WebAssembly SIMD is missing.
 *
 * Each run of 128 elements along d (the last block may be shorter) gets one
 * float32 scale = amax / 127 and values nearest(x * (127 / amax)) in
 * [-127, 127], rounding halves to even (WebAssembly's `nearest`); a block of
 * zeros has scale 0 and values 0; a block holding NaN or Infinity has scale
 * NaN (its scores are NaN). All arithmetic is float32 (Math.fround).
 *
 * The 'int7' precision quantizes the queries the same way with 63 levels
 * (scale = amax / 63, values in [-63, 63]) and the keys as int8: the
 * operands of WebAssembly's relaxed i8 x i7 dot (docs/indexer.md).
 */

export const QUANT_BLOCK = 128;

/** Rounds half to even, like WebAssembly's f32.nearest. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const diff = x - f;
  if (diff < 0.5) return f;
  if (diff > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/** Quantization levels: int8 values in [-127, 127]; the 'int7' queries in [-63, 63]. */
export const INT8_LEVELS = 127;
export const INT7_LEVELS = 63;

/**
 * Quantizes `n` rows of `d` values, src[srcAt + i*d + e], into dst[i*d + e]
 * and scales[b * scaleStride + i] (block-major, as the WebAssembly kernel),
 * with values in [-levels, levels].
 */
export function quantizeRowsRef(
  src: Float32Array,
  srcAt: number,
  n: number,
  d: number,
  dst: Int8Array,
  scales: Float32Array,
  scaleStride: number,
  levels = INT8_LEVELS,
): void {
  const nb = Math.ceil(d / QUANT_BLOCK);
  for (let i = 0; i < n; i++) {
    const x = srcAt + i * d;
    for (let b = 0; b < nb; b++) {
      const e0 = b * QUANT_BLOCK;
      const e1 = Math.min(e0 + QUANT_BLOCK, d);
      let amax = 0;
      // Math.max keeps NaN once it is in, so one non-finite value makes the block's scale NaN.
      for (let e = e0; e < e1; e++) amax = Number.isFinite(src[x + e]) ? Math.max(amax, Math.abs(src[x + e])) : NaN;
      const inv = amax > 0 ? Math.fround(levels / amax) : 0;
      scales[b * scaleStride + i] = Math.fround(amax / levels);
      for (let e = e0; e < e1; e++) dst[i * d + e] = roundHalfEven(Math.fround(src[x + e] * inv));
    }
  }
}

/**
 * The int8 score of one query row over keys [0, n): for every key j,
 * sum over heads (in order) of w[hh] * ReLU(dot), where
 * dot = sum over blocks (in order) of f32(qs * ks) * (integer dot of the block).
 * q [h, d] with scales qs[b * h + hh]; keys [n, d] with ks[b * ksStride + j].
 */
export function int8RowScoresRef(
  q: Int8Array,
  qs: Float32Array,
  w: Float32Array,
  h: number,
  keys: Int8Array,
  ks: Float32Array,
  ksStride: number,
  n: number,
  d: number,
  out: Float32Array,
  outAt: number,
): void {
  const nb = Math.ceil(d / QUANT_BLOCK);
  for (let j = 0; j < n; j++) {
    let score = 0;
    for (let hh = 0; hh < h; hh++) {
      let dot = 0;
      for (let b = 0; b < nb; b++) {
        const e1 = Math.min((b + 1) * QUANT_BLOCK, d);
        let idot = 0;
        for (let e = b * QUANT_BLOCK; e < e1; e++) idot += q[hh * d + e] * keys[j * d + e];
        dot = Math.fround(dot + Math.fround(Math.fround(qs[b * h + hh] * ks[b * ksStride + j]) * idot));
      }
      score = Math.fround(score + Math.fround(w[hh] * Math.max(dot, 0)));
    }
    out[outAt + j] = score;
  }
}
