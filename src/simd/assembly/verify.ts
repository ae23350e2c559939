// Verification of mask rows against their top-k indices (src/mask/verify.ts,
// `dsa check`). A row matches the mask its indices define iff every kept
// key's cell holds the kept value and, once each is set to the dropped
// value, the whole row holds the dropped value: k random visits and one
// SIMD pass per row. A repeated index finds its cell already dropped and
// fails the row, like any difference; the caller then settles it exactly.
//
// All three kernels take n rows of `cells` (row stride = the row's width),
// their indices (n rows of k Int32), and `bound`: row r keeps index j iff
// 0 <= j < min(s, max(0, bound + r)) (bound = s when not causal, or
// offset + t0 + 1 for a causal block starting at query t0). With `strict`
// set, a row holding an index >= s fails too (an error under the
// out-of-range policy 'error'). They return the first failing row, or n
// when every row matches; the cells are overwritten.

@inline function rowBound(bound: i32, r: i32, s: i32): i32 {
  const b = bound + r;
  return b < 0 ? 0 : b > s ? s : b;
}

/**
 * The first of the n rows of k indices at `idx` that holds an index >= s,
 * or n: the check the 'error' out-of-range policy needs, kept out of the
 * visiting loops, where it cost more (so is this call: inlined, it slowed
 * them too). One SIMD max over the whole block (four accumulators); rows are
 * searched only when it finds one.
 */
function firstRowAbove(idx: usize, n: i32, k: i32, s: i32): i32 {
  const end = idx + ((<usize>n * <usize>k) << 2);
  let m0 = i32x4.splat(-1);
  let m1 = m0;
  let m2 = m0;
  let m3 = m0;
  let p = idx;
  for (; p + 64 <= end; p += 64) {
    m0 = i32x4.max_s(m0, v128.load(p));
    m1 = i32x4.max_s(m1, v128.load(p, 16));
    m2 = i32x4.max_s(m2, v128.load(p, 32));
    m3 = i32x4.max_s(m3, v128.load(p, 48));
  }
  const m = i32x4.max_s(i32x4.max_s(m0, m1), i32x4.max_s(m2, m3));
  let top = max(max(i32x4.extract_lane(m, 0), i32x4.extract_lane(m, 1)), max(i32x4.extract_lane(m, 2), i32x4.extract_lane(m, 3)));
  for (; p < end; p += 4) top = max(top, load<i32>(p));
  if (top < s) return n;
  for (let i = 0; i < n * k; i++) if (load<i32>(idx + (<usize>i << 2)) >= s) return i / k;
  return n;
}

/** True when the `words` 32-bit cells from `base` all equal `want`. */
@inline function allEqual32(base: usize, words: i32, want: u32): bool {
  const w = i32x4.splat(want);
  let a0 = i32x4.splat(0);
  let a1 = a0;
  let a2 = a0;
  let a3 = a0;
  const end = base + (<usize>words << 2);
  let p = base;
  // Four accumulators: one would chain every OR and run at a third the speed.
  for (; p + 64 <= end; p += 64) {
    a0 = v128.or(a0, v128.xor(v128.load(p), w));
    a1 = v128.or(a1, v128.xor(v128.load(p, 16), w));
    a2 = v128.or(a2, v128.xor(v128.load(p, 32), w));
    a3 = v128.or(a3, v128.xor(v128.load(p, 48), w));
  }
  let rest: u32 = 0;
  for (; p < end; p += 4) rest |= load<u32>(p) ^ want;
  return rest == 0 && !v128.any_true(v128.or(v128.or(a0, a1), v128.or(a2, a3)));
}

/** True when the `bytes` bytes from `base` are all zero. */
@inline function allZero8(base: usize, bytes: i32): bool {
  let a0 = i32x4.splat(0);
  let a1 = a0;
  let a2 = a0;
  let a3 = a0;
  const end = base + <usize>bytes;
  let p = base;
  for (; p + 64 <= end; p += 64) {
    a0 = v128.or(a0, v128.load(p));
    a1 = v128.or(a1, v128.load(p, 16));
    a2 = v128.or(a2, v128.load(p, 32));
    a3 = v128.or(a3, v128.load(p, 48));
  }
  let rest: u32 = 0;
  for (; p < end; p++) rest |= load<u8>(p);
  return rest == 0 && !v128.any_true(v128.or(v128.or(a0, a1), v128.or(a2, a3)));
}

// The visiting loops walk the indices by pointer, two a turn: measured
// ~25% faster than one a turn by slot (each turn of a loop costs a check).
// A visit fails the row when key j is kept and its cell does not hold the
// kept value (a difference, or a repeated index), and otherwise drops it.

/**
 * Additive (float32) rows, s cells each, compared as bit patterns: a kept
 * cell must hold +0 (all bits 0: a constant, which measured faster than a
 * parameter), every other cell `dropped`.
 */
export function verifyRowsF32(cells: usize, idx: usize, n: i32, s: i32, k: i32, bound: i32, strict: i32, dropped: u32): i32 {
  const m = strict != 0 ? firstRowAbove(idx, n, k, s) : n;
  for (let r = 0; r < m; r++) {
    const base = cells + ((<usize>r * <usize>s) << 2);
    const limit = <u32>rowBound(bound, r, s);
    let ip = idx + ((<usize>r * <usize>k) << 2);
    const end = ip + (<usize>k << 2);
    for (; ip + 8 <= end; ip += 8) {
      const j0 = load<u32>(ip);
      const j1 = load<u32>(ip, 4);
      if (j0 < limit) {
        const p = base + (<usize>j0 << 2);
        if (load<u32>(p) != 0) return r;
        store<u32>(p, dropped);
      }
      if (j1 < limit) {
        const p = base + (<usize>j1 << 2);
        if (load<u32>(p) != 0) return r;
        store<u32>(p, dropped);
      }
    }
    if (ip < end) {
      const j = load<u32>(ip);
      if (j < limit) {
        const p = base + (<usize>j << 2);
        if (load<u32>(p) != 0) return r;
        store<u32>(p, dropped);
      }
    }
    if (!allEqual32(base, s, dropped)) return r;
  }
  return m;
}

/** Bool rows (one byte a key, 1 kept, 0 dropped), s bytes each. */
export function verifyRowsU8(cells: usize, idx: usize, n: i32, s: i32, k: i32, bound: i32, strict: i32): i32 {
  const m = strict != 0 ? firstRowAbove(idx, n, k, s) : n;
  for (let r = 0; r < m; r++) {
    const base = cells + <usize>r * <usize>s;
    const limit = <u32>rowBound(bound, r, s);
    let ip = idx + ((<usize>r * <usize>k) << 2);
    const end = ip + (<usize>k << 2);
    for (; ip + 8 <= end; ip += 8) {
      const j0 = load<u32>(ip);
      const j1 = load<u32>(ip, 4);
      if (j0 < limit) {
        const p = base + <usize>j0;
        if (load<u8>(p) != 1) return r;
        store<u8>(p, 0);
      }
      if (j1 < limit) {
        const p = base + <usize>j1;
        if (load<u8>(p) != 1) return r;
        store<u8>(p, 0);
      }
    }
    if (ip < end) {
      const j = load<u32>(ip);
      if (j < limit) {
        const p = base + <usize>j;
        if (load<u8>(p) != 1) return r;
        store<u8>(p, 0);
      }
    }
    if (!allZero8(base, s)) return r;
  }
  return m;
}

/**
 * Bit rows (key j is bit j & 31 of word j >> 5, 1 kept), ceil(s / 32)
 * words each; the bits past s in the last word must be 0.
 */
export function verifyRowsBits(cells: usize, idx: usize, n: i32, s: i32, k: i32, bound: i32, strict: i32): i32 {
  const words = (s + 31) >>> 5;
  const m = strict != 0 ? firstRowAbove(idx, n, k, s) : n;
  for (let r = 0; r < m; r++) {
    const base = cells + ((<usize>r * <usize>words) << 2);
    const limit = <u32>rowBound(bound, r, s);
    let ip = idx + ((<usize>r * <usize>k) << 2);
    const end = ip + (<usize>k << 2);
    for (; ip + 8 <= end; ip += 8) {
      const j0 = load<u32>(ip);
      const j1 = load<u32>(ip, 4);
      if (j0 < limit) {
        const p = base + (<usize>(j0 >>> 5) << 2);
        const w = load<u32>(p);
        const bit: u32 = 1 << (j0 & 31);
        if ((w & bit) == 0) return r;
        store<u32>(p, w ^ bit);
      }
      if (j1 < limit) {
        const p = base + (<usize>(j1 >>> 5) << 2);
        const w = load<u32>(p);
        const bit: u32 = 1 << (j1 & 31);
        if ((w & bit) == 0) return r;
        store<u32>(p, w ^ bit);
      }
    }
    if (ip < end) {
      const j = load<u32>(ip);
      if (j < limit) {
        const p = base + (<usize>(j >>> 5) << 2);
        const w = load<u32>(p);
        const bit: u32 = 1 << (j & 31);
        if ((w & bit) == 0) return r;
        store<u32>(p, w ^ bit);
      }
    }
    if (!allEqual32(base, words, 0)) return r;
  }
  return m;
}
