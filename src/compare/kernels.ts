/**
 * The kernel of compareSelections: two index sets A, B [rows, k] (and the
 * scores S [rows, s] when given) -> one verdict per row, with the k-th
 * score, its gap to the next, and the first differing key. Pure over typed
 * arrays and a row range; the edge (selections.ts) validated everything and
 * owns the scratch. docs/compare.md defines each quantity.
 *
 * The k-th score tau of a row is the k-th largest of its s scores (a
 * multiset: the value in the last slot of an exact top-k), -Infinity when
 * s < k. It is found without a selection when either set is a top-k: the
 * smallest score m among A's keys is tau exactly when fewer than k keys
 * score above m and at least k score m or more, which one pass over the row
 * tests (for A's and B's candidate together). Only when neither passes does
 * the row go to a quickselect over a copy.
 */
import { inputBound, prepareRow, scoreRoundingBound, type InputBoundArgs } from './bounds.js';
import { simdModule } from '../simd/index.js';

/** Verdicts, in order of strength: each implies the ones after it. */
export const VERDICTS = ['identical', 'sets', 'ties', 'nearTies', 'different'] as const;
export type Verdict = (typeof VERDICTS)[number];
export const IDENTICAL = 0, SETS = 1, TIES = 2, NEAR_TIES = 3, DIFFERENT = 4;

export interface CompareKernelArgs {
  /** [rows, k], negative = none, every value < s (checked at the edge). */
  a: Int32Array;
  b: Int32Array;
  k: number;
  /** [rows, s], or null (only identical / sets / different are decidable). */
  scores: Float32Array | Float64Array | null;
  s: number;
  /** Near-tie tolerance per key: abs + rel * |tau| + the precision's bound. */
  abs: number;
  rel: number;
  /** PRECISION_CODE of the score-rounding bound (bf16 1, fp16 2), 0 for none. */
  scoreCode: number;
  /** The input bound (precisionOf 'inputs'), or null. */
  inputs: InputBoundArgs | null;
  /** Float32 scores: pass over them with WebAssembly SIMD where this engine has it (same results). */
  simd: boolean;
  // Outputs, [rows] each.
  verdict: Uint8Array;
  threshold: Float64Array;
  gap: Float64Array;
  margin: Float64Array;
  keysA: Int32Array;
  keysB: Int32Array;
  firstSlot: Int32Array;
  firstKey: Int32Array;
  firstSide: Uint8Array;
  firstScore: Float64Array;
  firstTolerance: Float64Array;
  /** The key of the first NaN score of each row, -1 where none (the edge throws). */
  nanAt: Int32Array;
  // Scratch: [k] x 2 (sorted sets, when s is unknown), [s] x 2 (marks per key, -1 initially, when s is known),
  // [2k] x 5, [s] x 2 (stamps, -1 initially, and the selection copy, when scored).
  sortedA: Int32Array;
  sortedB: Int32Array;
  markA: Int32Array;
  markB: Int32Array;
  /**
   * Row r's marks and stamps are tag0 + r, so scratch kept between calls
   * needs no clearing: each call starts tag0 past the last one's rows.
   */
  tag0: number;
  dSlot: Int32Array;
  dKey: Int32Array;
  dSide: Uint8Array;
  dDev: Float64Array;
  dBound: Float64Array;
  stamp: Int32Array;
  select: Float64Array;
}

/** The distinct non-negative values of list[at .. at + k), sorted ascending, into `out`; returns how many. */
function distinctSorted(list: Int32Array, at: number, k: number, out: Int32Array): number {
  let n = 0;
  for (let i = 0; i < k; i++) if (list[at + i] >= 0) out[n++] = list[at + i];
  const sorted = out.subarray(0, n).sort();
  let m = 0;
  for (let i = 0; i < n; i++) if (i === 0 || sorted[i] !== sorted[i - 1]) out[m++] = sorted[i];
  return m;
}

function contains(sorted: Int32Array, n: number, x: number): boolean {
  let lo = 0, hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo < n && sorted[lo] === x;
}

/** The k-th largest (1-based) of x[0 .. n), reordering x (Hoare partition, median of three; no NaN). */
export function kthLargest(x: Float64Array, n: number, k: number): number {
  const target = k - 1;
  let lo = 0, hi = n - 1;
  while (lo < hi) {
    const p0 = x[lo], p1 = x[(lo + hi) >>> 1], p2 = x[hi];
    const pivot = p0 > p1 ? (p1 > p2 ? p1 : p0 > p2 ? p2 : p0) : p0 > p2 ? p0 : p1 > p2 ? p2 : p1;
    let i = lo, j = hi;
    while (i <= j) {
      while (x[i] > pivot) i++;
      while (x[j] < pivot) j--;
      if (i <= j) {
        const v = x[i];
        x[i] = x[j];
        x[j] = v;
        i++;
        j--;
      }
    }
    // [lo, j] >= pivot, [i, hi] <= pivot, and everything strictly between is the pivot.
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else return pivot;
  }
  return x[target];
}

/** |x - tau| with equal values (both -Infinity included) at distance 0. */
function deviation(x: number, tau: number): number {
  return x === tau ? 0 : Math.abs(x - tau);
}

export function compareRows(args: CompareKernelArgs, rowStart: number, rowEnd: number): void {
  const { a, b, k, scores, s, sortedA, sortedB, markA, markB } = args;
  const stamped = markA.length > 0;
  simd = args.simd && scores instanceof Float32Array ? simdCollect(s) : null;
  for (let row = rowStart; row < rowEnd; row++) {
    const at = row * k;
    let identical = true;
    for (let i = 0; i < k && identical; i++) identical = (a[at + i] < 0 ? -1 : a[at + i]) === (b[at + i] < 0 ? -1 : b[at + i]);
    // The two sets: marks per key where s is known (O(k)), else sorted distinct lists (O(k log k)).
    let nA: number, nB: number, sameSet: boolean;
    let liveA = 0, liveB = 0, minA = NaN, minB = NaN, maxA = NaN, maxB = NaN;
    if (stamped) {
      const tag = args.tag0 + row;
      mark(a, at, k, markA, tag, scores, row * s);
      nA = marked.n;
      liveA = marked.live;
      minA = marked.min;
      maxA = marked.max;
      mark(b, at, k, markB, tag, scores, row * s);
      nB = marked.n;
      liveB = marked.live;
      minB = marked.min;
      maxB = marked.max;
      sameSet = nA === nB;
      for (let i = 0; i < k && sameSet; i++) sameSet = b[at + i] < 0 || markA[b[at + i]] === tag;
    } else {
      nA = distinctSorted(a, at, k, sortedA);
      nB = distinctSorted(b, at, k, sortedB);
      sameSet = nA === nB;
      for (let i = 0; i < nA && sameSet; i++) sameSet = sortedA[i] === sortedB[i];
    }
    args.firstSlot[row] = -1;
    args.firstKey[row] = -1;
    args.firstSide[row] = 0;
    args.firstScore[row] = NaN;
    args.firstTolerance[row] = NaN;
    args.nanAt[row] = -1;
    if (scores === null) {
      args.keysA[row] = nA;
      args.keysB[row] = nB;
      args.threshold[row] = NaN;
      args.gap[row] = NaN;
      args.margin[row] = NaN;
      args.verdict[row] = identical ? IDENTICAL : sameSet ? SETS : DIFFERENT;
      if (!sameSet) firstDifference(args, row, nA, nB);
      continue;
    }
    const base = row * s;
    // Scored: s is known, so the marks ran and gathered each set's scores.
    if (!threshold(args, row, base, minA, maxA, minB, maxB)) continue; // a NaN: the edge throws
    const tau = args.threshold[row];
    args.keysA[row] = liveA;
    args.keysB[row] = liveB;
    args.margin[row] = 0;
    if (identical || sameSet) {
      args.verdict[row] = identical ? IDENTICAL : sameSet ? SETS : DIFFERENT;
      continue;
    }
    args.verdict[row] = judge(args, row, base, tau, nA, nB, liveA === liveB);
  }
}

/** What `mark` found (no allocation): distinct keys, those scoring above -Infinity, their smallest and largest score (NaN for none). */
const marked = { n: 0, live: 0, min: NaN, max: NaN };

/**
 * Marks the keys of list[at .. at + k) with `tag` in `marks`, counting the
 * distinct ones; with scores (row at `base`) also those scoring above
 * -Infinity (a key scoring -Infinity counts as none) and the smallest
 * score, the candidate k-th score. One gather per key for all three.
 */
function mark(list: Int32Array, at: number, k: number, marks: Int32Array, tag: number, S: Float32Array | Float64Array | null, base: number): void {
  let n = 0, live = 0, min = NaN, max = NaN;
  for (let i = 0; i < k; i++) {
    const x = list[at + i];
    if (x < 0 || marks[x] === tag) continue;
    marks[x] = tag;
    n++;
    if (S === null) continue;
    const v = S[base + x];
    if (v > -Infinity) live++;
    if (!(v >= min)) min = v;
    if (!(v <= max)) max = v;
  }
  marked.n = n;
  marked.live = live;
  marked.min = min;
  marked.max = max;
}

/** Whether key x is in the other set than `side`'s (marks, or the sorted lists of the row). */
function inOther(args: CompareKernelArgs, side: number, x: number, row: number, nA: number, nB: number): boolean {
  if (args.markA.length > 0) return (side === 0 ? args.markB[x] : args.markA[x]) === args.tag0 + row;
  return side === 0 ? contains(args.sortedB, nB, x) : contains(args.sortedA, nA, x);
}

/** The first key of one set missing from the other, in slot order (A before B at a slot), unscored. */
function firstDifference(args: CompareKernelArgs, row: number, nA: number, nB: number): void {
  const { a, b, k } = args;
  const at = row * k;
  for (let i = 0; i < k; i++) {
    const x = a[at + i], y = b[at + i];
    const side = x >= 0 && !inOther(args, 0, x, row, nA, nB) ? 0 : y >= 0 && !inOther(args, 1, y, row, nA, nB) ? 1 : -1;
    if (side < 0) continue;
    args.firstSlot[row] = i;
    args.firstKey[row] = side === 0 ? x : y;
    args.firstSide[row] = side;
    return;
  }
}

/**
 * One pass over the row for candidate c: keys scoring above it (gt), at it
 * (eq), the largest score in [lower, c) (below; -Infinity when none is),
 * and the first NaN's key (nan, -1 for none). Four scores a test against
 * `lower`: almost every block of four lies below it, so the pass costs one
 * well-predicted branch per four loads (topk's pass does the same); only a
 * block holding a key at or above `lower`, or a NaN, is looked at key by
 * key. Results in `pass` (no allocation).
 */
const pass = { gt: 0, eq: 0, below: -Infinity, nan: -1 };
function countAround(S: Float32Array | Float64Array, base: number, s: number, c: number, lower: number): void {
  pass.gt = 0;
  pass.eq = 0;
  pass.below = -Infinity;
  pass.nan = -1;
  if (simd !== null) {
    countAroundSimd(simd, S as Float32Array, base, s, c, lower);
    return;
  }
  let j = 0;
  for (; j + 4 <= s; j += 4) {
    const i = base + j;
    const x0 = S[i], x1 = S[i + 1], x2 = S[i + 2], x3 = S[i + 3];
    if (!(x0 < lower && x1 < lower && x2 < lower && x3 < lower)) {
      classify(x0, c, lower, j);
      classify(x1, c, lower, j + 1);
      classify(x2, c, lower, j + 2);
      classify(x3, c, lower, j + 3);
    }
  }
  for (; j < s; j++) classify(S[base + j], c, lower, j);
}

/**
 * The SIMD path of the pass: topk's streaming kernel (src/simd/assembly/
 * topk.ts) collects the keys with `!(score < lower)` (NaN too), 128 KiB of
 * scores at a time copied into the module's memory, and only those are
 * classified. `lower` as the kernel's float32: rounded to nearest, it stays
 * <= c (a float32 score), so every key at or above c is collected; a key in
 * [lower, fround(lower)) can be missed only for `below`, which the widening
 * passes then find as the JS path does.
 */
function countAroundSimd(sp: SimdCollect, S: Float32Array, base: number, s: number, c: number, lower: number): void {
  const t = Math.fround(lower);
  let n = 0;
  for (let from = 0; from < s; from += CHUNK) {
    const length = Math.min(CHUNK, s - from);
    sp.chunk.set(S.subarray(base + from, base + from + length));
    n = sp.collect(sp.ptr.chunk, length, t, from, sp.ptr.idx, sp.ptr.val, n);
  }
  for (let i = 0; i < n; i++) classify(sp.val[i], c, t, sp.idx[i]);
}

interface SimdCollect {
  collect: (x: number, n: number, threshold: number, first: number, idxOut: number, valOut: number, count: number) => number;
  chunk: Float32Array;
  idx: Int32Array;
  val: Float32Array;
  ptr: { chunk: number; idx: number; val: number };
}

/** Scores a chunk copied into the module's memory: 128 KiB, well inside L2 (as topk). */
const CHUNK = 32768;

/** The SIMD pass of this call (laid out at its start: nothing else uses the module's memory until it returns), or null. */
let simd: SimdCollect | null = null;

function simdCollect(s: number): SimdCollect | null {
  const module = simdModule();
  const collect = module?.exports.topkCollect as SimdCollect['collect'] | undefined;
  if (!module || !collect) return null;
  // Candidates: at most s keys per row.
  const [chunk, idx, val] = module.layout(CHUNK * 4, s * 4, s * 4);
  return { collect, chunk: module.f32(chunk, CHUNK), idx: module.i32(idx, s), val: module.f32(val, s), ptr: { chunk, idx, val } };
}

function classify(v: number, c: number, lower: number, j: number): void {
  if (v > c) pass.gt++;
  else if (v === c) pass.eq++;
  else if (v >= lower) {
    if (v > pass.below) pass.below = v;
  } else if (v !== v && pass.nan < 0) pass.nan = j;
}

/**
 * A first guess of `lower` for candidate c, the smallest of a set whose
 * largest is `max`: about 32 of the set's k keys per span below c, so a few
 * keys fall in [lower, c) and the pass finds the largest score below c
 * without tracking it at every key. -Infinity (every key looked at) where
 * no span can be guessed.
 */
function firstLower(c: number, max: number, k: number): number {
  if (!(c > -Infinity) || !(c < Infinity)) return -Infinity;
  const span = max - c;
  const step = span > 0 && span < Infinity ? (span * 32) / k : Math.abs(c) * 2 ** -10;
  const lower = c - step;
  return lower < c ? lower : -Infinity;
}

/** Writes tau and the gap of `row`; false (and nanAt) when the row holds a NaN. */
function threshold(args: CompareKernelArgs, row: number, base: number, cA: number, maxA: number, cB: number, maxB: number): boolean {
  const { k, s } = args;
  const S = args.scores!;
  // Candidates: the smallest score among each set's keys (NaN: the set is empty); a pass tests one.
  const useA = cA === cA;
  const first = useA ? cA : cB;
  const firstMax = useA ? maxA : maxB;
  const second = useA && cB === cB && cB !== cA ? cB : NaN;
  let tau = -Infinity;
  let lower = -Infinity;
  let found = false;
  for (let pick = 0; pick < 2 && !found; pick++) {
    const c = pick === 0 ? first : second;
    if (pick === 1 && c !== c) break;
    // A NaN candidate (both sets empty) still makes the pass that finds NaNs.
    lower = c === c ? firstLower(c, pick === 0 ? firstMax : maxB, k) : -Infinity;
    countAround(S, base, s, c === c ? c : Infinity, lower);
    if (pass.nan >= 0) {
      args.nanAt[row] = pass.nan;
      return false;
    }
    // c is tau exactly when fewer than k keys score above it and at least k score it or more.
    found = s >= k && c === c && pass.gt < k && pass.gt + pass.eq >= k;
    if (found) tau = c;
  }
  if (s < k) {
    args.threshold[row] = -Infinity;
    args.gap[row] = Infinity;
    return true;
  }
  if (!found) {
    const x = args.select;
    for (let j = 0; j < s; j++) x[j] = S[base + j];
    tau = kthLargest(x, s, k);
    lower = -Infinity;
    countAround(S, base, s, tau, lower);
  }
  args.threshold[row] = tau;
  // The (k+1)-th score is tau again when more than k keys reach it; else the
  // largest below tau, which a pass with a lower `lower` finds if the guess
  // held none (twice 256 times farther, then every key).
  if (pass.gt + pass.eq > k) {
    args.gap[row] = 0;
    return true;
  }
  for (let widen = 0; pass.below === -Infinity && lower > -Infinity; widen++) {
    const next = widen < 2 ? tau - (tau - lower) * 256 : -Infinity;
    lower = next < lower ? next : -Infinity;
    countAround(S, base, s, tau, lower);
  }
  // With no key below tau, nothing can enter.
  args.gap[row] = pass.below === -Infinity ? Infinity : tau - pass.below;
  return true;
}

/** The verdict of a scored row whose sets differ; fills margin and the first key. */
function judge(args: CompareKernelArgs, row: number, base: number, tau: number, nA: number, nB: number, sameCount: boolean): number {
  const { a, b, k, dSlot, dKey, dSide, dDev, dBound, stamp } = args;
  const S = args.scores!;
  const at = row * k;
  let n = 0;
  let worstBound = 0;
  if (args.inputs !== null) prepareRow(args.inputs, row);
  // stamp[x] = tag0 + row: already among this row's differing keys.
  const tag = args.tag0 + row;
  for (let i = 0; i < k; i++) {
    for (let side = 0; side < 2; side++) {
      const x = side === 0 ? a[at + i] : b[at + i];
      if (x < 0 || stamp[x] === tag || inOther(args, side, x, row, nA, nB)) continue;
      stamp[x] = tag;
      dSlot[n] = i;
      dKey[n] = x;
      dSide[n] = side;
      dDev[n] = deviation(S[base + x], tau);
      dBound[n] = args.inputs === null ? 0 : inputBound(args.inputs, row, x);
      if (dBound[n] > worstBound) worstBound = dBound[n];
      n++;
    }
  }
  let margin = 0;
  let ties = true;
  let near = true;
  let firstBad = -1;
  for (let i = 0; i < n; i++) {
    const dev = dDev[i];
    if (dev > margin) margin = dev;
    if (dev !== 0) ties = false;
    const within = dev === 0 || (dev < Infinity && dev <= tolerance(args, S[base + dKey[i]], tau, dBound[i] + worstBound));
    if (!within) {
      near = false;
      if (firstBad < 0) firstBad = i;
    }
  }
  args.margin[row] = margin;
  const verdict = sameCount && ties ? TIES : sameCount && near ? NEAR_TIES : DIFFERENT;
  const f = firstBad >= 0 ? firstBad : 0;
  args.firstSlot[row] = dSlot[f];
  args.firstKey[row] = dKey[f];
  args.firstSide[row] = dSide[f];
  args.firstScore[row] = S[base + dKey[f]];
  args.firstTolerance[row] = tolerance(args, S[base + dKey[f]], tau, dBound[f] + worstBound);
  return verdict;
}

/** The near-tie tolerance of a key scoring x against tau; `inputBound` is E_x + max E over the row's differing keys. */
function tolerance(args: CompareKernelArgs, x: number, tau: number, inputBound: number): number {
  // rel * |tau| only where rel is set: 0 * Infinity (tau = -Infinity) would be NaN.
  let eps = args.abs + (args.rel === 0 ? 0 : args.rel * Math.abs(tau)) + inputBound;
  if (args.scoreCode !== 0) eps += scoreRoundingBound(args.scoreCode, x, tau);
  return eps;
}
