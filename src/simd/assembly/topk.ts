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

/**
 * Turns the c candidate scores at `vals` (float bits) into order-preserving
 * keys in place: a u32 that grows with the value, -0 and +0 the same key,
 * NaN key 0 (below -Infinity). Writes the smallest and largest key to
 * stats[0], stats[1]. Returns the number of non-NaN candidates, or
 * -1 - idx[i] for the first NaN when `nanLowest` is 0.
 */
export function topkKeys(idx: usize, vals: usize, c: i32, nanLowest: i32, stats: usize): i32 {
  let finite = 0;
  let min: u32 = 0xffffffff;
  let max: u32 = 0;
  for (let i = 0; i < c; i++) {
    const p = vals + (<usize>i << 2);
    const b = load<i32>(p);
    let key: u32 = 0;
    if ((b & 0x7fffffff) > 0x7f800000) {
      if (nanLowest == 0) return -1 - load<i32>(idx + (<usize>i << 2));
    } else {
      const sign = b >> 31;
      key = <u32>((((b & 0x7fffffff) ^ sign) - sign) ^ 0x80000000);
      finite++;
    }
    if (key < min) min = key;
    if (key > max) max = key;
    store<u32>(p, key);
  }
  store<u32>(stats, min);
  store<u32>(stats, max, 4);
  return finite;
}

/**
 * The sorted selection of src/topk/radix.ts `selectSorted`, the same steps:
 * a stable counting sort of the c candidates (keys, idx) into up to 2048
 * buckets of the top bits of (key - keyMin), descending, into sortKeys /
 * sortIdx; then the buckets down to the one holding rank `need` are
 * finished by insertion sort (<= 24 keys) or LSD radix on the low bits
 * (through tmpKeys / tmpIdx). hist holds 2048 i32, digitHist 256.
 */
export function topkSelectSorted(
  keys: usize, idx: usize, c: i32, need: i32, keyMin: u32, keyMax: u32,
  sortKeys: usize, sortIdx: usize, tmpKeys: usize, tmpIdx: usize, hist: usize, digitHist: usize,
): void {
  const range = keyMax - keyMin;
  const top = 32 - <i32>clz(range);
  if (top == 0) {
    memory.copy(sortKeys, keys, <usize>need << 2);
    memory.copy(sortIdx, idx, <usize>need << 2);
    return;
  }
  const shift = top > 11 ? top - 11 : 0;
  const last: u32 = (1 << (top - shift)) - 1;
  memory.fill(hist, 0, <usize>(last + 1) << 2);
  for (let i = 0; i < c; i++) {
    const h = hist + (<usize>(((load<u32>(keys + (<usize>i << 2)) - keyMin) >>> shift) & last) << 2);
    store<i32>(h, load<i32>(h) + 1);
  }
  let boundary: i32 = -1;
  let sum = 0;
  for (let d = <i32>last; d >= 0; d--) {
    const h = hist + (<usize>d << 2);
    const count = load<i32>(h);
    store<i32>(h, sum);
    sum += count;
    if (boundary < 0 && sum >= need) boundary = d;
  }
  for (let i = 0; i < c; i++) {
    const key = load<u32>(keys + (<usize>i << 2));
    const h = hist + (<usize>(((key - keyMin) >>> shift) & last) << 2);
    const pos = load<i32>(h);
    store<i32>(h, pos + 1);
    store<u32>(sortKeys + (<usize>pos << 2), key);
    store<i32>(sortIdx + (<usize>pos << 2), load<i32>(idx + (<usize>i << 2)));
  }
  if (shift == 0) return;
  let from = 0;
  for (let d = <i32>last; d >= boundary; d--) {
    const to = load<i32>(hist + (<usize>d << 2));
    if (to - from > 24) sortRange(sortKeys, sortIdx, tmpKeys, tmpIdx, digitHist, from, to, keyMin, shift);
    else if (to - from > 1) insertionSort(sortKeys, sortIdx, from, to);
    from = to;
  }
}

/** Stable insertion sort of [from, to) by descending key. */
function insertionSort(keys: usize, idx: usize, from: i32, to: i32): void {
  for (let i = from + 1; i < to; i++) {
    const key = load<u32>(keys + (<usize>i << 2));
    const j = load<i32>(idx + (<usize>i << 2));
    let p = i;
    while (p > from) {
      const prev = load<u32>(keys + (<usize>(p - 1) << 2));
      if (prev >= key) break;
      store<u32>(keys + (<usize>p << 2), prev);
      store<i32>(idx + (<usize>p << 2), load<i32>(idx + (<usize>(p - 1) << 2)));
      p--;
    }
    store<u32>(keys + (<usize>p << 2), key);
    store<i32>(idx + (<usize>p << 2), j);
  }
}

/** Stable LSD radix sort of [from, to), whose offsets from `base` agree above bit `bits`, by descending offset. */
function sortRange(keys: usize, idx: usize, tmpKeys: usize, tmpIdx: usize, hist: usize, from: i32, to: i32, base: u32, bits: i32): void {
  let srcKeys = keys, srcIdx = idx, dstKeys = tmpKeys, dstIdx = tmpIdx;
  for (let shift = 0; shift < bits; shift += 8) {
    memory.fill(hist, 0, 256 << 2);
    for (let i = from; i < to; i++) {
      const h = hist + (<usize>((~(load<u32>(srcKeys + (<usize>i << 2)) - base) >>> shift) & 255) << 2);
      store<i32>(h, load<i32>(h) + 1);
    }
    let sum = from;
    for (let d = 0; d < 256; d++) {
      const h = hist + (<usize>d << 2);
      const count = load<i32>(h);
      store<i32>(h, sum);
      sum += count;
    }
    for (let i = from; i < to; i++) {
      const key = load<u32>(srcKeys + (<usize>i << 2));
      const h = hist + (<usize>((~(key - base) >>> shift) & 255) << 2);
      const pos = load<i32>(h);
      store<i32>(h, pos + 1);
      store<u32>(dstKeys + (<usize>pos << 2), key);
      store<i32>(dstIdx + (<usize>pos << 2), load<i32>(srcIdx + (<usize>i << 2)));
    }
    const k = srcKeys; srcKeys = dstKeys; dstKeys = k;
    const x = srcIdx; srcIdx = dstIdx; dstIdx = x;
  }
  if (srcKeys != keys) {
    memory.copy(keys + (<usize>from << 2), srcKeys + (<usize>from << 2), <usize>(to - from) << 2);
    memory.copy(idx + (<usize>from << 2), srcIdx + (<usize>from << 2), <usize>(to - from) << 2);
  }
}
