/**
 * Exact top-k per row by radix select on the float bits, and the sort-based
 * reference it is tested against.
 *
 * Order (SPEC "Top-k selection", jax.lax.top_k): descending value, equal
 * values by ascending key index; -0 equals +0; with `nanLowest` every NaN
 * ranks below -Infinity (NaNs among themselves by index).
 *
 * The fast kernel, per row of s keys:
 *  1. estimate a threshold from a strided sample of 1024 eligible scores, set
 *     a little low so that (almost always) at least k keys score >= it;
 *  2. one streaming pass collects the keys with `!(x < threshold)` (which
 *     also catches every NaN) into a candidate list, in ascending key order;
 *     if fewer than k non-NaN keys came, collect every eligible key instead;
 *  3. map candidates to order-preserving uint32 keys and radix-select the
 *     k-th largest over 11/11/10-bit digits, moving keys above the k-th's
 *     digit to the winners at each level and keeping only its bucket;
 *  4. sort only the (at most k) winners, LSD radix on 8-bit digits, stable,
 *     so equal keys keep ascending index order.
 * Work is O(s + k) per row whatever the data; the sample only decides
 * whether the row is read once or twice.
 */
import type { KernelArgs } from '../plan.js';

/** The arguments of `topkRadix` and `topkSortReference` (all rows absolute, `row = bi * t + ti`). */
export interface TopkKernelArgs {
  /** [b, t, s] */
  scores: Float32Array;
  t: number;
  s: number;
  k: number;
  /** The first row held by the outputs. */
  row0: number;
  /** [rows, k] */
  values: Float32Array;
  /** [rows, k]; -1 in empty slots */
  indices: Int32Array;
  /** [rows]: first eligible key holding NaN (only when !nanLowest), else -1. */
  nanAt: Int32Array;
  nanLowest: boolean;
  sorted: boolean;
  /** Row ti sees keys j <= ti + causalOffset; null: no causal limit. */
  causalOffset: number | null;
  /** Eligibility [b, t, s] (additive, bool) or [b, t, ceil(s/32)] (bits); null: every key. */
  mask: Float32Array | Uint8Array | Uint32Array | null;
  maskForm: 'additive' | 'bool' | 'bits' | null;
}

const SAMPLE = 1024;

interface Scratch {
  s: number;
  k: number;
  candKeys: Uint32Array;
  candIdx: Int32Array;
  winKeys: Uint32Array;
  winIdx: Int32Array;
  sortKeys: Uint32Array;
  sortIdx: Int32Array;
  hist: Int32Array;
  sample: Float32Array;
}

// Grown on demand and reused by every later call on this thread (one per
// worker), so rows allocate nothing.
let scratch: Scratch | null = null;

function scratchFor(s: number, k: number): Scratch {
  if (scratch && scratch.s >= s && scratch.k >= k) return scratch;
  const S = Math.max(s, scratch?.s ?? 0);
  const K = Math.max(Math.min(k, s), scratch?.k ?? 0);
  scratch = {
    s: S,
    k: K,
    candKeys: new Uint32Array(S),
    candIdx: new Int32Array(S),
    winKeys: new Uint32Array(K),
    winIdx: new Int32Array(K),
    sortKeys: new Uint32Array(K),
    sortIdx: new Int32Array(K),
    hist: new Int32Array(2048),
    sample: new Float32Array(SAMPLE),
  };
  return scratch;
}

/** Whether key j of a mask row is kept; additive: exactly 0 (either sign), bool: non-zero. */
function eligible(form: TopkKernelArgs['maskForm'], mask: TopkKernelArgs['mask'], mbase: number, j: number): boolean {
  if (form === 'additive') return (mask as Float32Array)[mbase + j] === 0;
  if (form === 'bool') return (mask as Uint8Array)[mbase + j] !== 0;
  if (form === 'bits') return (((mask as Uint32Array)[mbase + (j >>> 5)] >>> (j & 31)) & 1) !== 0;
  return true;
}

/**
 * A score that (with high probability) at least k of the row's n eligible
 * keys reach: the sample's value of rank k*m/n plus three standard
 * deviations. -Infinity (collect everything) when the sample cannot tell.
 */
function estimateThreshold(a: TopkKernelArgs, sc: Scratch, base: number, n: number, mbase: number): number {
  const { scores, k, mask, maskForm } = a;
  if (n <= k) return -Infinity;
  const m = Math.min(SAMPLE, n);
  const sample = sc.sample;
  let e = 0;
  for (let i = 0; i < m; i++) {
    const j = Math.floor((i * n) / m);
    const x = scores[base + j];
    if (x === x && eligible(maskForm, mask, mbase, j)) sample[e++] = x;
  }
  const expected = (k * m) / n;
  const rank = Math.ceil(expected + 3 * Math.sqrt(expected)) + 1;
  if (rank >= e) return -Infinity;
  return selectDescending(sample, e, rank);
}

/** The value of descending rank `rank` (0-based) among `sample[0..n)`, NaN-free; reorders the sample. */
function selectDescending(sample: Float32Array, n: number, rank: number): number {
  let lo = 0;
  let hi = n - 1;
  for (;;) {
    if (lo >= hi) return sample[lo];
    const pivot = sample[(lo + hi) >>> 1];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (sample[i] > pivot) i++;
      while (sample[j] < pivot) j--;
      if (i <= j) {
        const x = sample[i];
        sample[i] = sample[j];
        sample[j] = x;
        i++;
        j--;
      }
    }
    if (rank <= j) hi = j;
    else if (rank >= i) lo = i;
    else return sample[rank];
  }
}

/** Appends to `candIdx` every eligible key j < n with `!(score < threshold)`, in ascending order. */
function collect(a: TopkKernelArgs, candIdx: Int32Array, base: number, n: number, mbase: number, threshold: number): number {
  const scores = a.scores;
  let c = 0;
  switch (a.maskForm) {
    case null:
      for (let j = 0; j < n; j++) if (!(scores[base + j] < threshold)) candIdx[c++] = j;
      break;
    case 'additive': {
      const mask = a.mask as Float32Array;
      for (let j = 0; j < n; j++) if (mask[mbase + j] === 0 && !(scores[base + j] < threshold)) candIdx[c++] = j;
      break;
    }
    case 'bool': {
      const mask = a.mask as Uint8Array;
      for (let j = 0; j < n; j++) if (mask[mbase + j] !== 0 && !(scores[base + j] < threshold)) candIdx[c++] = j;
      break;
    }
    case 'bits': {
      const mask = a.mask as Uint32Array;
      for (let w = 0; w << 5 < n; w++) {
        let word = mask[mbase + w];
        while (word !== 0) {
          const bit = 31 - Math.clz32(word & -word);
          word &= word - 1;
          const j = (w << 5) + bit;
          if (j < n && !(scores[base + j] < threshold)) candIdx[c++] = j;
        }
      }
      break;
    }
  }
  return c;
}

/**
 * Order-preserving keys: larger value, larger key; -0 and +0 the same key;
 * NaN key 0 (below -Infinity, whose key is 0x00800000). Returns the number
 * of non-NaN candidates, or -1 - j for the first NaN at key j when NaN is an
 * error.
 */
function keysOf(a: TopkKernelArgs, bits: Int32Array, sc: Scratch, base: number, c: number): number {
  const { scores, nanLowest } = a;
  const { candIdx, candKeys } = sc;
  let finite = 0;
  for (let i = 0; i < c; i++) {
    const j = candIdx[i];
    if (scores[base + j] !== scores[base + j]) {
      if (!nanLowest) return -1 - j;
      candKeys[i] = 0;
    } else {
      const b = bits[base + j];
      const sign = b >> 31;
      candKeys[i] = ((((b & 0x7fffffff) ^ sign) - sign) ^ 0x80000000) >>> 0;
      finite++;
    }
  }
  return finite;
}

/** Radix select: moves the top `need` of the c candidates to the winners. Returns the winner count. */
function selectWinners(sc: Scratch, c: number, need: number): number {
  const { candKeys, candIdx, winKeys, winIdx, hist } = sc;
  let w = 0;
  let n = c;
  for (let level = 0; level < 3 && need < n; level++) {
    const shift = level === 0 ? 21 : level === 1 ? 10 : 0;
    const digits = level === 2 ? 1024 : 2048;
    const top = digits - 1;
    hist.fill(0, 0, digits);
    for (let i = 0; i < n; i++) hist[(candKeys[i] >>> shift) & top]++;
    let bucket = top;
    let above = 0;
    while (above + hist[bucket] < need) above += hist[bucket--];
    let kept = 0;
    for (let i = 0; i < n; i++) {
      const key = candKeys[i];
      const d = (key >>> shift) & top;
      if (d > bucket) {
        winKeys[w] = key;
        winIdx[w++] = candIdx[i];
      } else if (d === bucket) {
        candKeys[kept] = key;
        candIdx[kept++] = candIdx[i];
      }
    }
    need -= above;
    n = kept;
  }
  // Every remaining candidate now has the k-th key (or all are taken):
  // the first ones by key index win the ties.
  for (let i = 0; i < need; i++) {
    winKeys[w] = candKeys[i];
    winIdx[w++] = candIdx[i];
  }
  return w;
}

/**
 * Stable LSD radix sort of the w winners by descending key (8-bit digits,
 * skipping digits all winners share). Equal keys arrive in ascending index
 * order, so they stay so. Returns whether the result is in the sort buffers.
 */
function sortWinners(sc: Scratch, w: number): boolean {
  const hist = sc.hist;
  hist.fill(0, 0, 1024);
  const { winKeys } = sc;
  for (let i = 0; i < w; i++) {
    const key = ~winKeys[i];
    hist[key & 255]++;
    hist[256 + ((key >>> 8) & 255)]++;
    hist[512 + ((key >>> 16) & 255)]++;
    hist[768 + (key >>> 24)]++;
  }
  let srcKeys = sc.winKeys;
  let srcIdx = sc.winIdx;
  let dstKeys = sc.sortKeys;
  let dstIdx = sc.sortIdx;
  let swapped = false;
  for (let pass = 0; pass < 4; pass++) {
    const h = pass << 8;
    const shift = pass << 3;
    let trivial = false;
    let sum = 0;
    for (let d = 0; d < 256; d++) {
      const count = hist[h + d];
      if (count === w) trivial = true;
      hist[h + d] = sum;
      sum += count;
    }
    if (trivial) continue;
    for (let i = 0; i < w; i++) {
      const key = srcKeys[i];
      const pos = hist[h + ((~key >>> shift) & 255)]++;
      dstKeys[pos] = key;
      dstIdx[pos] = srcIdx[i];
    }
    [srcKeys, dstKeys] = [dstKeys, srcKeys];
    [srcIdx, dstIdx] = [dstIdx, srcIdx];
    swapped = !swapped;
  }
  return swapped;
}

export function topkRadix(args: KernelArgs, rowStart: number, rowEnd: number): void {
  const a = args as unknown as TopkKernelArgs;
  const { scores, t, s, k, row0, values, indices, nanAt, sorted, causalOffset, maskForm } = a;
  const bits = new Int32Array(scores.buffer, scores.byteOffset, scores.length);
  const sc = scratchFor(s, k);
  const maskWidth = maskForm === 'bits' ? (s + 31) >>> 5 : s;
  for (let row = rowStart; row < rowEnd; row++) {
    const base = row * s;
    const mbase = row * maskWidth;
    const n = causalOffset === null ? s : Math.max(0, Math.min(s, (row % t) + causalOffset + 1));
    const out = (row - row0) * k;
    nanAt[row - row0] = -1;

    const threshold = estimateThreshold(a, sc, base, n, mbase);
    let c = collect(a, sc.candIdx, base, n, mbase, threshold);
    let finite = keysOf(a, bits, sc, base, c);
    if (finite >= 0 && finite < k && threshold !== -Infinity) {
      c = collect(a, sc.candIdx, base, n, mbase, -Infinity);
      finite = keysOf(a, bits, sc, base, c);
    }
    if (finite < 0) {
      nanAt[row - row0] = -1 - finite;
      values.fill(Number.NaN, out, out + k);
      indices.fill(-1, out, out + k);
      continue;
    }

    const w = selectWinners(sc, c, Math.min(k, c));
    const inSort = sorted ? sortWinners(sc, w) : false;
    const winIdx = inSort ? sc.sortIdx : sc.winIdx;
    for (let i = 0; i < w; i++) {
      const j = winIdx[i];
      indices[out + i] = j;
      values[out + i] = scores[base + j];
    }
    indices.fill(-1, out + w, out + k);
    values.fill(-Infinity, out + w, out + k);
  }
}

/** The reference: per row, sort every eligible key by (value desc, NaN last, index asc) and take k. */
export function topkSortReference(args: KernelArgs, rowStart: number, rowEnd: number): void {
  const { scores, t, s, k, row0, values, indices, nanAt, nanLowest, causalOffset, mask, maskForm } = args as unknown as TopkKernelArgs;
  const maskWidth = maskForm === 'bits' ? (s + 31) >>> 5 : s;
  for (let row = rowStart; row < rowEnd; row++) {
    const out = (row - row0) * k;
    const limit = causalOffset === null ? s : (row % t) + causalOffset + 1;
    const keys: number[] = [];
    for (let j = 0; j < s; j++) if (j < limit && eligible(maskForm, mask, row * maskWidth, j)) keys.push(j);
    const x = (j: number) => scores[row * s + j];
    const firstNaN = keys.find((j) => Number.isNaN(x(j)));
    nanAt[row - row0] = !nanLowest && firstNaN !== undefined ? firstNaN : -1;
    if (nanAt[row - row0] >= 0) {
      values.fill(Number.NaN, out, out + k);
      indices.fill(-1, out, out + k);
      continue;
    }
    const rank = (j: number) => (Number.isNaN(x(j)) ? -Infinity : x(j));
    const below = (j: number) => (Number.isNaN(x(j)) ? 1 : 0);
    keys.sort((i, j) => below(i) - below(j) || (rank(i) > rank(j) ? -1 : rank(i) < rank(j) ? 1 : 0) || i - j);
    for (let slot = 0; slot < k; slot++) {
      indices[out + slot] = slot < keys.length ? keys[slot] : -1;
      values[out + slot] = slot < keys.length ? x(keys[slot]) : -Infinity;
    }
  }
}
