/**
 * Exact top-k per row by radix select on the float bits, and the sort-based
 * reference it is tested against.
 *
 * Order (SPEC "Top-k selection", jax.lax.top_k): descending value, equal
 * values by ascending key index; -0 equals +0; with `nanLowest` every NaN
 * ranks below -Infinity (NaNs among themselves by index).
 *
 * The fast kernel, per row of s keys:
 *  1. estimate a threshold from a sample of 1024 eligible scores (64 blocks
 *     of 16), set a little low so that (almost always) at least k keys
 *     score >= it;
 *  2. one streaming pass (WebAssembly SIMD for unmasked rows where the
 *     engine has it; steps 3 and 4 then run there too) collects the keys with `!(x < threshold)` (which also
 *     catches every NaN) into a candidate list, in ascending key order; if
 *     fewer than k non-NaN keys came, collect every eligible key instead;
 *  3. map candidates to order-preserving uint32 keys;
 *  4. unsorted: radix-select the k-th largest over digits of up to 11 bits
 *     of the offset from the smallest key, moving keys above the k-th's
 *     digit to the winners at each level and keeping only its bucket;
 *     sorted: one stable counting pass of the candidates on such a digit,
 *     then only the buckets down to the k-th key are finished (insertion
 *     sort of one or two keys, mostly), so equal keys keep index order.
 * Work is O(s + k) per row whatever the data (large buckets fall back to
 * radix passes, never to a comparison sort); the sample only decides
 * whether the row is read once or twice.
 */
import type { KernelArgs } from '../plan.js';
import { simdModule, type SimdModule } from '../simd/index.js';

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
  /** Per-row key ranges [lo[row], hi[row]) (src/window.ts; the causal limit already folded in), or null. */
  lo: Int32Array | null;
  hi: Int32Array | null;
  /** Eligibility [b, t, s] (additive, bool) or [b, t, ceil(s/32)] (bits); null: every key. */
  mask: Float32Array | Uint8Array | Uint32Array | null;
  maskForm: 'additive' | 'bool' | 'bits' | null;
  /** Run the streaming pass of unmasked rows on the WebAssembly SIMD module where this thread has it. */
  simd: boolean;
}

const SAMPLE_BLOCKS = 64;
const BLOCK = 16; // one 64-byte cache line of float32
const SAMPLE = SAMPLE_BLOCKS * BLOCK;

interface Scratch {
  s: number;
  k: number;
  /** Candidates: key index, and the score's float bits, turned into its key in place. */
  candIdx: Int32Array;
  candKeys: Int32Array;
  /** The same memory as candKeys, for writing the scores as they stream by. */
  candVals: Float32Array;
  winKeys: Int32Array;
  winIdx: Int32Array;
  sortKeys: Int32Array;
  sortIdx: Int32Array;
  hist: Int32Array;
  /** 256 bins for sorting one large bucket while `hist` holds the bucket ends. */
  digitHist: Int32Array;
  sample: Float32Array;
  topList: Float32Array;
  /** The smallest and largest candidate key of the current row (set by keysOf). */
  keyMin: number;
  keyMax: number;
}

// Grown on demand and reused by every later call on this thread (one per
// worker), so rows allocate nothing.
let scratch: Scratch | null = null;

function scratchFor(s: number, k: number): Scratch {
  if (scratch && scratch.s >= s && scratch.k >= Math.min(k, s)) return scratch;
  const S = Math.max(s, scratch?.s ?? 0);
  const K = Math.max(Math.min(k, s), scratch?.k ?? 0);
  const candKeys = new Int32Array(S);
  scratch = {
    s: S,
    k: K,
    candIdx: new Int32Array(S),
    candKeys,
    candVals: new Float32Array(candKeys.buffer),
    winKeys: new Int32Array(S),
    winIdx: new Int32Array(S),
    sortKeys: new Int32Array(S),
    sortIdx: new Int32Array(S),
    hist: new Int32Array(2048),
    digitHist: new Int32Array(256),
    sample: new Float32Array(SAMPLE),
    topList: new Float32Array(TOP_LIST),
    keyMin: 0,
    keyMax: 0,
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
 * The sample is 64 blocks of 16 adjacent scores: 64 cache lines fetched
 * from memory instead of 1024.
 */
function estimateThreshold(a: TopkKernelArgs, sc: Scratch, base: number, n: number, mbase: number, first: number): number {
  const { scores, k, mask, maskForm } = a;
  if (n <= k) return -Infinity;
  const sample = sc.sample;
  const m = Math.min(SAMPLE, n);
  let e = 0;
  for (let block = 0; block < m; block += BLOCK) {
    const start = n <= SAMPLE ? block : Math.floor((block * (n - BLOCK)) / (SAMPLE - BLOCK));
    for (let j = start, end = start + Math.min(BLOCK, m - block); j < end; j++) {
      const x = scores[base + j];
      if (x === x && (maskForm === null || eligible(maskForm, mask, mbase, first + j))) sample[e++] = x;
    }
  }
  const expected = (k * m) / n;
  const rank = Math.ceil(expected + 3 * Math.sqrt(expected)) + 1;
  if (rank >= e) return -Infinity;
  return rank < TOP_LIST ? largestKept(sample, e, rank, sc.topList) : selectDescending(sample, e, rank);
}

const TOP_LIST = 64;

/**
 * The value of descending rank `rank` < TOP_LIST among `sample[0..n)`, by
 * keeping the rank + 1 largest in order: almost every sample fails the one
 * predictable test against the smallest kept, where a quickselect would
 * mispredict half its comparisons.
 */
function largestKept(sample: Float32Array, n: number, rank: number, top: Float32Array): number {
  let size = 0;
  for (let i = 0; i < n; i++) {
    const x = sample[i];
    if (size > rank) {
      if (!(x > top[rank])) continue;
    } else size++;
    let p = size - 1;
    while (p > 0 && top[p - 1] < x) {
      top[p] = top[p - 1];
      p--;
    }
    top[p] = x;
  }
  return top[rank];
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

/**
 * The SIMD path (src/simd/assembly/topk.ts): the module, a chunk buffer, the
 * candidate lists and the sort buffers in its memory, and its kernels: the
 * streaming pass, the keys, and the sorted selection (the same steps as
 * `keysOf` and `selectSorted` here, without a JIT's bounds checks).
 */
interface SimdPass {
  collect: (x: number, n: number, threshold: number, first: number, idxOut: number, valOut: number, count: number) => number;
  keys: (idx: number, vals: number, c: number, nanLowest: number, stats: number) => number;
  selectSorted: (
    keys: number, idx: number, c: number, need: number, keyMin: number, keyMax: number,
    sortKeys: number, sortIdx: number, tmpKeys: number, tmpIdx: number, hist: number, digitHist: number,
  ) => void;
  chunk: Float32Array;
  stats: Uint32Array;
  sortKeys: Int32Array;
  sortIdx: Int32Array;
  ptr: { chunk: number; idx: number; val: number; stats: number; hist: number; digitHist: number; sortKeys: number; sortIdx: number; tmpKeys: number; tmpIdx: number };
}

// Scores a chunk copied into the module's memory: 128 KiB, well inside L2.
const CHUNK = 32768;

/** Lays out the SIMD path for rows of s keys, with the candidate lists of `sc` moved into the module's memory. */
function simdPass(s: number, sc: Scratch): { pass: SimdPass; sc: Scratch } | null {
  const module = simdModule();
  const ex = module?.exports;
  if (!module || !ex?.topkCollect || !ex.topkKeys || !ex.topkSelectSorted) return null;
  const [chunk, idx, val, stats, hist, digitHist, sortKeys, sortIdx, tmpKeys, tmpIdx] = module.layout(
    CHUNK * 4, s * 4, s * 4, 8, 2048 * 4, 256 * 4, s * 4, s * 4, s * 4, s * 4,
  );
  return {
    pass: {
      collect: ex.topkCollect as SimdPass['collect'],
      keys: ex.topkKeys as SimdPass['keys'],
      selectSorted: ex.topkSelectSorted as SimdPass['selectSorted'],
      chunk: module.f32(chunk, CHUNK),
      stats: new Uint32Array(module.exports.memory.buffer, stats, 2),
      sortKeys: module.i32(sortKeys, s),
      sortIdx: module.i32(sortIdx, s),
      ptr: { chunk, idx, val, stats, hist, digitHist, sortKeys, sortIdx, tmpKeys, tmpIdx },
    },
    sc: { ...sc, candIdx: module.i32(idx, s), candKeys: module.i32(val, s), candVals: module.f32(val, s) },
  };
}

/**
 * Appends every eligible key j < n with `!(score < threshold)` (so every
 * NaN too) to the candidates, in ascending order, with its score. Keys are
 * numbered from the row's first visible key `first` (scores at base + j,
 * mask entry first + j).
 */
function collect(a: TopkKernelArgs, sc: Scratch, simd: SimdPass | null, base: number, n: number, mbase: number, first: number, threshold: number): number {
  const scores = a.scores;
  const { candIdx, candVals } = sc;
  let c = 0;
  if (simd !== null && a.maskForm === null) {
    for (let from = 0; from < n; from += CHUNK) {
      const length = Math.min(CHUNK, n - from);
      simd.chunk.set(scores.subarray(base + from, base + from + length));
      c = simd.collect(simd.ptr.chunk, length, threshold, from, simd.ptr.idx, simd.ptr.val, c);
    }
    return c;
  }
  switch (a.maskForm) {
    case null: {
      // Four scores a test: almost every block is below the threshold, and
      // one well-predicted branch per four loads keeps the pass near the
      // read floor.
      let j = 0;
      for (; j + 4 <= n; j += 4) {
        const i = base + j;
        const x0 = scores[i], x1 = scores[i + 1], x2 = scores[i + 2], x3 = scores[i + 3];
        if (!(x0 < threshold && x1 < threshold && x2 < threshold && x3 < threshold)) {
          if (!(x0 < threshold)) (candVals[c] = x0), (candIdx[c++] = j);
          if (!(x1 < threshold)) (candVals[c] = x1), (candIdx[c++] = j + 1);
          if (!(x2 < threshold)) (candVals[c] = x2), (candIdx[c++] = j + 2);
          if (!(x3 < threshold)) (candVals[c] = x3), (candIdx[c++] = j + 3);
        }
      }
      for (; j < n; j++) {
        const x = scores[base + j];
        if (!(x < threshold)) (candVals[c] = x), (candIdx[c++] = j);
      }
      break;
    }
    case 'additive': {
      const mask = a.mask as Float32Array;
      const m = mbase + first;
      for (let j = 0; j < n; j++) {
        const x = scores[base + j];
        if (mask[m + j] === 0 && !(x < threshold)) (candVals[c] = x), (candIdx[c++] = j);
      }
      break;
    }
    case 'bool': {
      const mask = a.mask as Uint8Array;
      const m = mbase + first;
      for (let j = 0; j < n; j++) {
        const x = scores[base + j];
        if (mask[m + j] !== 0 && !(x < threshold)) (candVals[c] = x), (candIdx[c++] = j);
      }
      break;
    }
    case 'bits': {
      const mask = a.mask as Uint32Array;
      const end = first + n;
      for (let w = first >>> 5; w << 5 < end; w++) {
        let word = mask[mbase + w];
        while (word !== 0) {
          const key = (w << 5) + 31 - Math.clz32(word & -word);
          word &= word - 1;
          if (key < first || key >= end) continue;
          const j = key - first;
          const x = scores[base + j];
          if (!(x < threshold)) (candVals[c] = x), (candIdx[c++] = j);
        }
      }
      break;
    }
  }
  return c;
}

/**
 * Turns the candidates' scores into order-preserving keys, in place: the
 * bit pattern of a uint32 that grows with the value (held in an Int32Array),
 * -0 and +0 the same key, NaN key 0 (below -Infinity's 0x00800000). Returns
 * the number of non-NaN candidates, or -1 - j for the first NaN, at key j,
 * when NaN is an error.
 */
function keysOf(a: TopkKernelArgs, sc: Scratch, simd: SimdPass | null, c: number): number {
  if (simd !== null) {
    const finite = simd.keys(simd.ptr.idx, simd.ptr.val, c, a.nanLowest ? 1 : 0, simd.ptr.stats);
    sc.keyMin = simd.stats[0] | 0;
    sc.keyMax = simd.stats[1] | 0;
    return finite;
  }
  const { candIdx, candKeys, candVals } = sc;
  const nanLowest = a.nanLowest;
  let finite = 0;
  let min = 0x7fffffff; // keys compared as unsigned: key ^ 0x80000000 as signed
  let max = -0x80000000;
  for (let i = 0; i < c; i++) {
    let key = 0;
    if (candVals[i] !== candVals[i]) {
      if (!nanLowest) return -1 - candIdx[i];
    } else {
      const b = candKeys[i];
      const sign = b >> 31;
      key = (((b & 0x7fffffff) ^ sign) - sign) ^ 0x80000000;
      finite++;
    }
    const rank = key ^ 0x80000000;
    if (rank < min) min = rank;
    if (rank > max) max = rank;
    candKeys[i] = key;
  }
  sc.keyMin = min ^ 0x80000000;
  sc.keyMax = max ^ 0x80000000;
  return finite;
}

/** Bits needed for key offsets from `min` up to `max` (keys as unsigned). */
function rangeBits(min: number, max: number): number {
  return 32 - Math.clz32((max - min) | 0);
}

/**
 * Radix select: moves the top `need` of the c candidates to the winners.
 * Digits are the top (at most) 11 bits of the key's offset from the
 * smallest candidate key: a row's candidates sit in a narrow band above the
 * threshold, so the first digit already splits them finely. Returns the
 * winner count.
 */
function selectWinners(sc: Scratch, c: number, need: number): number {
  const { candKeys, candIdx, winKeys, winIdx, hist } = sc;
  let w = 0;
  let n = c;
  let base = sc.keyMin;
  let top = rangeBits(base, sc.keyMax);
  while (need < n && top > 0) {
    const shift = Math.max(0, top - 11);
    const digits = 1 << (top - shift);
    const last = digits - 1;
    top = shift;
    hist.fill(0, 0, digits);
    for (let i = 0; i < n; i++) hist[((candKeys[i] - base) >>> shift) & last]++;
    let bucket = last;
    let above = 0;
    while (above + hist[bucket] < need) above += hist[bucket--];
    let kept = 0;
    for (let i = 0; i < n; i++) {
      const key = candKeys[i];
      const d = ((key - base) >>> shift) & last;
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
    base = (base + bucket * 2 ** shift) | 0;
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
 * Selection and sort in one (for `sorted`): a stable counting sort of all c
 * candidates into up to 2048 buckets (the top bits of the key's offset from
 * the smallest candidate key), in descending digit order, into the sort
 * buffers; then only the buckets up to the one holding rank `need` are
 * finished, by insertion sort (mostly one or two keys each) or, when large,
 * LSD radix on their low bits. The first `need` slots are then the top keys,
 * ties in ascending index order.
 */
function selectSorted(sc: Scratch, c: number, need: number): void {
  const { candKeys, candIdx, sortKeys, sortIdx, hist } = sc;
  const base = sc.keyMin;
  const top = rangeBits(base, sc.keyMax);
  if (top === 0) {
    // One key value: the first `need` by index.
    for (let i = 0; i < need; i++) {
      sortKeys[i] = candKeys[i];
      sortIdx[i] = candIdx[i];
    }
    return;
  }
  const shift = Math.max(0, top - 11);
  const last = (1 << (top - shift)) - 1;
  hist.fill(0, 0, last + 1);
  for (let i = 0; i < c; i++) hist[((candKeys[i] - base) >>> shift) & last]++;
  let boundary = -1;
  for (let d = last, sum = 0; d >= 0; d--) {
    const count = hist[d];
    hist[d] = sum;
    sum += count;
    if (boundary < 0 && sum >= need) boundary = d;
  }
  for (let i = 0; i < c; i++) {
    const key = candKeys[i];
    const pos = hist[((key - base) >>> shift) & last]++;
    sortKeys[pos] = key;
    sortIdx[pos] = candIdx[i];
  }
  if (shift === 0) return; // every bucket holds one key value, in index order
  // hist[d] is now the end of bucket d; buckets run from the top digit down.
  for (let d = last, from = 0; d >= boundary; d--) {
    const to = hist[d];
    if (to - from > 24) sortRange(sc, from, to, base, shift);
    else if (to - from > 1) insertionSort(sortKeys, sortIdx, from, to);
    from = to;
  }
}

/** Stable insertion sort of [from, to) by descending unsigned key. */
function insertionSort(keys: Int32Array, idx: Int32Array, from: number, to: number): void {
  for (let i = from + 1; i < to; i++) {
    const key = keys[i];
    const j = idx[i];
    const rank = key ^ 0x80000000; // unsigned order as signed
    let p = i;
    while (p > from && (keys[p - 1] ^ 0x80000000) < rank) {
      keys[p] = keys[p - 1];
      idx[p] = idx[p - 1];
      p--;
    }
    keys[p] = key;
    idx[p] = j;
  }
}

/**
 * Stable LSD radix sort of sort buffers [from, to), whose keys' offsets from
 * `base` agree above bit `bits`, by descending offset, through the winner
 * buffers.
 */
function sortRange(sc: Scratch, from: number, to: number, base: number, bits: number): void {
  const hist = sc.digitHist;
  let srcKeys = sc.sortKeys, srcIdx = sc.sortIdx, dstKeys = sc.winKeys, dstIdx = sc.winIdx;
  for (let shift = 0; shift < bits; shift += 8) {
    hist.fill(0, 0, 256);
    for (let i = from; i < to; i++) hist[(~(srcKeys[i] - base) >>> shift) & 255]++;
    for (let d = 0, sum = from; d < 256; d++) {
      const count = hist[d];
      hist[d] = sum;
      sum += count;
    }
    for (let i = from; i < to; i++) {
      const pos = hist[(~(srcKeys[i] - base) >>> shift) & 255]++;
      dstKeys[pos] = srcKeys[i];
      dstIdx[pos] = srcIdx[i];
    }
    [srcKeys, dstKeys] = [dstKeys, srcKeys];
    [srcIdx, dstIdx] = [dstIdx, srcIdx];
  }
  if (srcKeys !== sc.sortKeys) {
    sc.sortKeys.set(srcKeys.subarray(from, to), from);
    sc.sortIdx.set(srcIdx.subarray(from, to), from);
  }
}

export function topkRadix(args: KernelArgs, rowStart: number, rowEnd: number): void {
  const a = args as unknown as TopkKernelArgs;
  const { scores, t, s, k, row0, values, indices, nanAt, sorted, causalOffset, maskForm, lo, hi } = a;
  const scoreBits = new Int32Array(scores.buffer, scores.byteOffset, scores.length);
  const valueBits = new Int32Array(values.buffer, values.byteOffset, values.length);
  let sc = scratchFor(s, k);
  let simd: SimdPass | null = null;
  if (a.simd) {
    const laid = simdPass(s, sc);
    if (laid) ({ pass: simd, sc } = laid);
  }
  const maskWidth = maskForm === 'bits' ? (s + 31) >>> 5 : s;
  for (let row = rowStart; row < rowEnd; row++) {
    // The row's visible keys are [first, first + n): a per-row range, or the causal prefix.
    const first = lo === null ? 0 : lo[row];
    const n = hi !== null ? hi[row] - first : causalOffset === null ? s : Math.max(0, Math.min(s, (row % t) + causalOffset + 1));
    const base = row * s + first;
    const mbase = row * maskWidth;
    const out = (row - row0) * k;
    nanAt[row - row0] = -1;

    const threshold = estimateThreshold(a, sc, base, n, mbase, first);
    let c = collect(a, sc, simd, base, n, mbase, first, threshold);
    let finite = keysOf(a, sc, simd, c);
    if (finite >= 0 && finite < k && threshold !== -Infinity) {
      c = collect(a, sc, simd, base, n, mbase, first, -Infinity);
      finite = keysOf(a, sc, simd, c);
    }
    if (finite < 0) {
      nanAt[row - row0] = first - 1 - finite;
      values.fill(Number.NaN, out, out + k);
      indices.fill(-1, out, out + k);
      continue;
    }

    // With SIMD the sorted selection is as cheap as the unsorted one, and
    // a sorted answer is a valid unsorted one.
    const w = Math.min(k, c);
    let winIdx: Int32Array, winKeys: Int32Array;
    if (simd !== null) {
      const p = simd.ptr;
      simd.selectSorted(p.val, p.idx, c, w, sc.keyMin >>> 0, sc.keyMax >>> 0, p.sortKeys, p.sortIdx, p.tmpKeys, p.tmpIdx, p.hist, p.digitHist);
      winIdx = simd.sortIdx;
      winKeys = simd.sortKeys;
    } else if (sorted) {
      selectSorted(sc, c, w);
      winIdx = sc.sortIdx;
      winKeys = sc.sortKeys;
    } else {
      selectWinners(sc, c, w);
      winIdx = sc.winIdx;
      winKeys = sc.winKeys;
    }
    for (let i = 0; i < w; i++) {
      const j = winIdx[i];
      indices[out + i] = first + j;
      // The value back from its key, saving a scattered read of the scores;
      // zeros (the key forgets the sign) and NaN (key 0) are read back.
      const signed = winKeys[i] ^ 0x80000000;
      valueBits[out + i] = signed === 0 || signed === -0x80000000 ? scoreBits[base + j] : signed > 0 ? signed : -signed | 0x80000000;
    }
    indices.fill(-1, out + w, out + k);
    values.fill(-Infinity, out + w, out + k);
  }
}

/** The reference: per row, sort every eligible key by (value desc, NaN last, index asc) and take k. */
export function topkSortReference(args: KernelArgs, rowStart: number, rowEnd: number): void {
  const { scores, t, s, k, row0, values, indices, nanAt, nanLowest, causalOffset, mask, maskForm, lo, hi } = args as unknown as TopkKernelArgs;
  const maskWidth = maskForm === 'bits' ? (s + 31) >>> 5 : s;
  for (let row = rowStart; row < rowEnd; row++) {
    const out = (row - row0) * k;
    const limit = hi ? hi[row] : causalOffset === null ? s : (row % t) + causalOffset + 1;
    const from = lo ? lo[row] : 0;
    const keys: number[] = [];
    for (let j = from; j < s; j++) if (j < limit && eligible(maskForm, mask, row * maskWidth, j)) keys.push(j);
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
