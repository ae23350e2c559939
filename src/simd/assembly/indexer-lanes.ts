// Lane helpers shared by the indexer kernels of both builds (indexer.ts,
// indexer-relaxed.ts): horizontal sums of register tiles and the block-128
// quantization steps. Not re-exported from an entry, so they stay internal
// to the module.

/** [sum(a), sum(b), sum(c), sum(d)] of four f32x4 vectors. */
@inline export function sum4f(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = f32x4.add(v128.shuffle<f32>(a, b, 0, 4, 1, 5), v128.shuffle<f32>(a, b, 2, 6, 3, 7));
  const cd = f32x4.add(v128.shuffle<f32>(c, d, 0, 4, 1, 5), v128.shuffle<f32>(c, d, 2, 6, 3, 7));
  return f32x4.add(v128.shuffle<f32>(ab, cd, 0, 1, 4, 5), v128.shuffle<f32>(ab, cd, 2, 3, 6, 7));
}

@inline export function sum4i(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = i32x4.add(v128.shuffle<i32>(a, b, 0, 4, 1, 5), v128.shuffle<i32>(a, b, 2, 6, 3, 7));
  const cd = i32x4.add(v128.shuffle<i32>(c, d, 0, 4, 1, 5), v128.shuffle<i32>(c, d, 2, 6, 3, 7));
  return i32x4.add(v128.shuffle<i32>(ab, cd, 0, 1, 4, 5), v128.shuffle<i32>(ab, cd, 2, 3, 6, 7));
}

/**
 * The block's amax, or NaN when it holds NaN or Infinity: pmax is one maxps
 * (f32x4.max is a NaN-exact sequence in V8) and drops NaN, so non-finite
 * lanes (v - v is NaN) are tracked apart, and every score using the block is
 * NaN through its scale.
 */
@inline export function blockAmax(x: usize, e0: i32, e1: i32): f32 {
  let m = f32x4.splat(0);
  let nan = i32x4.splat(0);
  for (let e = e0; e < e1; e += 4) {
    const v = v128.load(x + (<usize>e << 2));
    m = f32x4.pmax(m, f32x4.abs(v));
    const z = f32x4.sub(v, v);
    nan = v128.or(nan, f32x4.ne(z, z));
  }
  const amax = max(max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
  return v128.any_true(nan) ? NaN : amax;
}

/**
 * nearest(x * inv) for four lanes at p, as int32 lanes, for |x * inv| <= 127:
 * adding 1.5 * 2^23 rounds to an integer, halves to even (exactly
 * f32.nearest), in the low mantissa bits; subtracting the constant's bits
 * leaves that integer. Cheaper than nearest + trunc_sat, which V8 expands
 * into a long sequence.
 */
@inline export function roundLanes(p: usize, iv: v128): v128 {
  return i32x4.sub(f32x4.add(f32x4.mul(v128.load(p), iv), f32x4.splat(12582912.0)), i32x4.splat(0x4b400000));
}
