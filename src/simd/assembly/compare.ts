// The per-row kernels of compareSelections over float32 scores in the
// module's memory (src/compare/kernels.ts composes them and keeps the
// TypeScript path they must match; src/compare/simd.ts lays the memory out).
//
// A row: scores x[s], two index lists a[k], b[k] (negative = none), a bit
// per key for each list (bitsA, bitsB: ceil(s / 32) words, clear on entry;
// the caller clears them after the row), and scratch for the scores of a
// list's slots (vals). The k-th score tau of the row is usually the
// smallest score m of a's keys: when a holds k distinct keys and no other
// key scores above m, fewer than k keys score above m and at least k score
// m or more. compareMaxOutside tests that with one max over the row (a's
// cells set to -inf meanwhile): a pseudo-max and an integer NaN test a
// vector. compareCount is the general pass (keys above and at a
// candidate, the largest score below it) the caller falls back to.

const NEG_INF_BITS: i32 = 0xff800000;

/** 1 when a[0 .. k) and b[0 .. k) are equal slot by slot, every negative read as -1; else 0. */
export function compareIdentical(a: usize, b: usize, k: i32): i32 {
  const none = i32x4.splat(-1);
  let j = 0;
  for (; j + 4 <= k; j += 4) {
    const o = <usize>j << 2;
    const x = i32x4.max_s(v128.load(a + o), none);
    const y = i32x4.max_s(v128.load(b + o), none);
    if (!i32x4.all_true(i32x4.eq(x, y))) return 0;
  }
  for (; j < k; j++) {
    const x = max(load<i32>(a + (<usize>j << 2)), -1);
    const y = max(load<i32>(b + (<usize>j << 2)), -1);
    if (x != y) return 0;
  }
  return 1;
}

/**
 * Marks the keys of list[0 .. k) in `bits` and writes to `stats` (i32 at
 * 0, 4, 8, 12, f32 at 16): the distinct keys, those of them scoring above
 * -Infinity, those of them whose bit is set in `other` (0 when other is
 * 0), 1 when a score is NaN (else 0), and the smallest score (the first of
 * equal ones in slot order, as the TypeScript pass keeps it; NaN when the
 * list holds no key). With `gather` 1 the scores of the slots are gathered
 * first, vals[i] = x[list[i]] for each slot holding a key (a loop of
 * independent loads, so the misses overlap), and the stats read them;
 * with `gather` 0 neither x nor vals is read: live keys 0, no NaN,
 * smallest NaN. Returns -1, or the first slot holding a key >= s (stopped
 * there: the caller throws).
 */
export function compareMark(list: usize, k: i32, s: i32, x: usize, bits: usize, other: usize, gather: i32, vals: usize, stats: usize): i32 {
  if (gather != 0) {
    for (let i = 0; i < k; i++) {
      const key = load<i32>(list + (<usize>i << 2));
      if (key >= s) return i;
      if (key >= 0) store<f32>(vals + (<usize>i << 2), load<f32>(x + (<usize>key << 2)));
    }
  }
  let n = 0, live = 0, common = 0, nan = 0;
  let least: f32 = NaN;
  for (let i = 0; i < k; i++) {
    const key = load<i32>(list + (<usize>i << 2));
    if (key < 0) continue;
    if (key >= s) return i; // gather 0: the range is checked here
    const word = bits + ((<usize>key >>> 5) << 2);
    const bit: u32 = 1 << (<u32>key & 31);
    const w = load<u32>(word);
    if (w & bit) continue;
    store<u32>(word, w | bit);
    n++;
    if (other != 0 && (load<u32>(other + ((<usize>key >>> 5) << 2)) & bit) != 0) common++;
    if (gather == 0) continue;
    const v = load<f32>(vals + (<usize>i << 2));
    if (v > -Infinity) live++;
    if (v != v) nan = 1;
    else if (!(least <= v)) least = v; // the first score, then only a smaller one
  }
  store<i32>(stats, n);
  store<i32>(stats, live, 4);
  store<i32>(stats, common, 8);
  store<i32>(stats, nan, 12);
  store<f32>(stats, least, 16);
  return -1;
}

/** Clears the bits of the keys of list[0 .. k) (every key < s, as compareMark checked). */
export function compareUnmark(list: usize, k: i32, bits: usize): void {
  for (let i = 0; i < k; i++) {
    const key = load<i32>(list + (<usize>i << 2));
    if (key < 0) continue;
    const word = bits + ((<usize>key >>> 5) << 2);
    store<u32>(word, load<u32>(word) & ~(<u32>1 << (<u32>key & 31)));
  }
}

/**
 * The largest score of x[0 .. n) over the keys outside list[0 .. k)
 * (every key < n), whose scores vals holds (vals[i] = x[list[i]] for each
 * slot holding a key, as compareMark gathers them): the list's cells are
 * set to -Infinity for the pass and then restored from vals. -Infinity
 * when every key is in the list; NaN when a score outside it is NaN.
 * Sixteen scores an iteration: pseudo-maxima in a tree into two
 * accumulators (pmax(acc, v) is `acc < v ? v : acc`, so a NaN v is passed
 * over), and an unsigned max of the bits doubled for the NaN test (integer
 * operations, beside the float ones: 20% faster than a self-inequality per
 * vector).
 */
export function compareMaxOutside(x: usize, n: i32, list: usize, k: i32, vals: usize): f32 {
  for (let i = 0; i < k; i++) {
    const key = load<i32>(list + (<usize>i << 2));
    if (key >= 0) store<f32>(x + (<usize>key << 2), -Infinity);
  }
  let m0 = f32x4.splat(-Infinity);
  let m1 = m0;
  let q0 = i32x4.splat(0);
  let q1 = q0;
  let j = 0;
  for (; j + 16 <= n; j += 16) {
    const p = x + (<usize>j << 2);
    const v0 = v128.load(p);
    const v1 = v128.load(p, 16);
    const v2 = v128.load(p, 32);
    const v3 = v128.load(p, 48);
    m0 = f32x4.pmax(m0, f32x4.pmax(v0, v1));
    m1 = f32x4.pmax(m1, f32x4.pmax(v2, v3));
    // The NaN test in the integer units (the float ones are busy with the maxima): a score's
    // bits shifted left once, its sign dropped, exceed 0xff000000 exactly when it is a NaN.
    q0 = i32x4.max_u(q0, i32x4.max_u(i32x4.add(v0, v0), i32x4.add(v1, v1)));
    q1 = i32x4.max_u(q1, i32x4.max_u(i32x4.add(v2, v2), i32x4.add(v3, v3)));
  }
  // pmax(v0, v1) keeps a NaN v0 and drops a NaN v1, so only the bits decide.
  const m = f32x4.pmax(m0, m1);
  let top = max(max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
  let nan = v128.any_true(i32x4.gt_u(i32x4.max_u(q0, q1), i32x4.splat(0xff000000)));
  for (; j < n; j++) {
    const v = load<f32>(x + (<usize>j << 2));
    if (v != v) nan = true;
    else if (v > top) top = v;
  }
  for (let i = 0; i < k; i++) {
    const key = load<i32>(list + (<usize>i << 2));
    if (key >= 0) store<f32>(x + (<usize>key << 2), load<f32>(vals + (<usize>i << 2)));
  }
  return nan ? NaN : top;
}

/**
 * One pass for candidate c over x[0 .. n): writes to `stats` (i32 at 0, 4,
 * f32 at 8, i32 at 12) the keys scoring above c, those scoring c, the
 * largest score below c (-Infinity when none), and 1 when a score is NaN.
 * Branch-free: a NaN lane fails every comparison and its `below` value
 * (itself) is passed over by pmax; a lane at or above c is made -Infinity
 * or a negative NaN for `below` by OR-ing in -Infinity's bits.
 */
export function compareCount(x: usize, n: i32, c: f32, stats: usize): void {
  const cv = f32x4.splat(c);
  const high = i32x4.splat(NEG_INF_BITS);
  let gt0 = i32x4.splat(0);
  let ge0 = gt0;
  let nan0 = gt0;
  let gt1 = gt0;
  let ge1 = gt0;
  let nan1 = gt0;
  let below0 = f32x4.splat(-Infinity);
  let below1 = below0;
  let j = 0;
  for (; j + 8 <= n; j += 8) {
    const p = x + (<usize>j << 2);
    const v0 = v128.load(p);
    const v1 = v128.load(p, 16);
    const ge0m = f32x4.ge(v0, cv);
    const ge1m = f32x4.ge(v1, cv);
    gt0 = i32x4.sub(gt0, f32x4.gt(v0, cv));
    gt1 = i32x4.sub(gt1, f32x4.gt(v1, cv));
    ge0 = i32x4.sub(ge0, ge0m);
    ge1 = i32x4.sub(ge1, ge1m);
    below0 = f32x4.pmax(below0, v128.or(v0, v128.and(ge0m, high)));
    below1 = f32x4.pmax(below1, v128.or(v1, v128.and(ge1m, high)));
    nan0 = v128.or(nan0, f32x4.ne(v0, v0));
    nan1 = v128.or(nan1, f32x4.ne(v1, v1));
  }
  const gtv = i32x4.add(gt0, gt1);
  const gev = i32x4.add(ge0, ge1);
  let gt = i32x4.extract_lane(gtv, 0) + i32x4.extract_lane(gtv, 1) + i32x4.extract_lane(gtv, 2) + i32x4.extract_lane(gtv, 3);
  let ge = i32x4.extract_lane(gev, 0) + i32x4.extract_lane(gev, 1) + i32x4.extract_lane(gev, 2) + i32x4.extract_lane(gev, 3);
  const bv = f32x4.pmax(below0, below1);
  let below = max(max(f32x4.extract_lane(bv, 0), f32x4.extract_lane(bv, 1)), max(f32x4.extract_lane(bv, 2), f32x4.extract_lane(bv, 3)));
  let nan = v128.any_true(v128.or(nan0, nan1));
  for (; j < n; j++) {
    const v = load<f32>(x + (<usize>j << 2));
    if (v > c) gt++;
    if (v >= c) ge++;
    else if (v < c) {
      if (v > below) below = v;
    } else nan = true;
  }
  store<i32>(stats, gt);
  store<i32>(stats, ge - gt, 4);
  store<f32>(stats, below, 8);
  store<i32>(stats, nan ? 1 : 0, 12);
}

/** The first j < n with x[j] NaN, or -1. */
export function compareFirstNaN(x: usize, n: i32): i32 {
  for (let j = 0; j < n; j++) {
    const v = load<f32>(x + (<usize>j << 2));
    if (v != v) return j;
  }
  return -1;
}

/**
 * The keys in one list and not the other, each once, in slot order (a's
 * before b's at the same slot), into dSlot, dKey, dSide (i32; side 0: in a,
 * not b). Both lists' bits must be marked (compareMark); a listed key's own
 * bit is cleared, which also tells a repeat of it. Returns how many.
 */
export function compareDiff(a: usize, b: usize, k: i32, bitsA: usize, bitsB: usize, dSlot: usize, dKey: usize, dSide: usize): i32 {
  let n = 0;
  for (let i = 0; i < k; i++) {
    for (let side = 0; side < 2; side++) {
      const key = load<i32>((side == 0 ? a : b) + (<usize>i << 2));
      if (key < 0) continue;
      const offset = (<usize>key >>> 5) << 2;
      const bit: u32 = 1 << (<u32>key & 31);
      const own = (side == 0 ? bitsA : bitsB) + offset;
      const ownWord = load<u32>(own);
      // In the other set, or listed already (its bit cleared: a key of one
      // set only is never the other set's, so clearing it misleads no test).
      if ((load<u32>((side == 0 ? bitsB : bitsA) + offset) & bit) != 0 || (ownWord & bit) == 0) continue;
      store<u32>(own, ownWord & ~bit);
      store<i32>(dSlot + (<usize>n << 2), i);
      store<i32>(dKey + (<usize>n << 2), key);
      store<i32>(dSide + (<usize>n << 2), side);
      n++;
    }
  }
  return n;
}
