// The streaming pass of exact top-k (src/topk/radix.ts) over one chunk of a
// row of scores copied into the module's memory.

/**
 * Appends every j < n with `!(x[j] < threshold)` (so every NaN too) to the
 * candidate lists, as key index `first + j` (Int32 at idxOut) and score
 * (Float32 at valOut), from slot `count` on, in ascending order; returns the
 * new count. Sixteen scores a test: the four lane masks are OR-ed and only a
 * block holding a candidate walks its bit mask.
 */
export function topkCollect(x: usize, n: i32, threshold: f32, first: i32, idxOut: usize, valOut: usize, count: i32): i32 {
  const t = f32x4.splat(threshold);
  let c = count;
  let j = 0;
  for (; j + 16 <= n; j += 16) {
    const p = x + (<usize>j << 2);
    const a = v128.not(f32x4.lt(v128.load(p), t));
    const b = v128.not(f32x4.lt(v128.load(p, 16), t));
    const d = v128.not(f32x4.lt(v128.load(p, 32), t));
    const e = v128.not(f32x4.lt(v128.load(p, 48), t));
    if (v128.any_true(v128.or(v128.or(a, b), v128.or(d, e)))) {
      let m = i32x4.bitmask(a) | (i32x4.bitmask(b) << 4) | (i32x4.bitmask(d) << 8) | (i32x4.bitmask(e) << 12);
      while (m != 0) {
        const q = ctz(m);
        m &= m - 1;
        store<i32>(idxOut + (<usize>c << 2), first + j + q);
        store<f32>(valOut + (<usize>c << 2), load<f32>(p + (<usize>q << 2)));
        c++;
      }
    }
  }
  for (; j < n; j++) {
    const v = load<f32>(x + (<usize>j << 2));
    if (!(v < threshold)) {
      store<i32>(idxOut + (<usize>c << 2), first + j);
      store<f32>(valOut + (<usize>c << 2), v);
      c++;
    }
  }
  return c;
}
