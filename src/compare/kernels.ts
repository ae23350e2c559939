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
 *
 * Float32 scores take the WebAssembly SIMD path where the engine has it
 * (compareRowsSimd below, kernels in src/simd/assembly/compare.ts): the
 * same quantities, and the same bits, by other means. A set of k distinct
 * keys is a top-k exactly when no key outside it scores above its smallest
 * score m, which one max over the row tells; only where that fails does it
 * count keys around a candidate, as the TypeScript pass does.
 */
import { inputBound, prepareRow, scoreRoundingBound, type InputBoundArgs } from './bounds.js';
import { simdRows, type SimdRows } from './simd.js';

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
  /**
   * Whether every index is known to be < s (the edge checked). When not,
   * compareRows checks them and returns false at the first row holding one
   * >= s, for the edge to name it.
   */
  indicesChecked: boolean;
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

/**
 * Judges rows [rowStart, rowEnd). Returns false, with the rows from the
 * first such on unjudged, when `indicesChecked` is false and a row holds an
 * index >= s (the edge names it); else true.
 */
export function compareRows(args: CompareKernelArgs, rowStart: number, rowEnd: number): boolean {
  const { a, b, k, scores, s, sortedA, sortedB, markA, markB } = args;
  if (args.simd && scores instanceof Float32Array) {
    const m = simdRows(k, s, 1);
    if (m !== null) return compareRowsSimd(args, m, rowStart, rowEnd);
  }
  if (!args.indicesChecked && (firstAbove(a, rowStart * k, rowEnd * k, s) >= 0 || firstAbove(b, rowStart * k, rowEnd * k, s) >= 0)) return false;
  const stamped = markA.length > 0;
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
    clearFirst(args, row);
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
      args.verdict[row] = identical ? IDENTICAL : SETS;
      continue;
    }
    const n = listDifferences(args, row, nA, nB);
    args.verdict[row] = judge(args, row, scores, base, tau, n, liveA === liveB);
  }
  return true;
}

/** The first i in [from, to) with list[i] >= s, or -1. */
function firstAbove(list: Int32Array, from: number, to: number, s: number): number {
  for (let i = from; i < to; i++) if (list[i] >= s) return i;
  return -1;
}

/** A row's first-key outputs before it is judged (none), and no NaN seen. */
function clearFirst(args: CompareKernelArgs, row: number): void {
  args.firstSlot[row] = -1;
  args.firstKey[row] = -1;
  args.firstSide[row] = 0;
  args.firstScore[row] = NaN;
  args.firstTolerance[row] = NaN;
  args.nanAt[row] = -1;
}

/**
 * compareRows on WebAssembly SIMD, float32 scores: each row's lists and
 * scores are copied into the module's memory, unless they already lie in
 * its blocks (simdBlocks, where `dsa compare` reads them), marked and
 * gathered there (compareMark: distinct keys, live keys, the smallest
 * score, the keys the sets share, every index < s), and its k-th score
 * found as the TypeScript pass finds it, candidate by candidate, with
 * exact passes (no guessed lower bound): first the one max over the keys
 * outside a set of k distinct keys (compareMaxOutside; the set is a top-k
 * and its smallest score tau when that max is at most it, and the max is
 * then the (k+1)-th score), else the counts around the candidate
 * (compareCount). The verdict of a row whose sets differ is judged here on
 * the differing keys compareDiff lists, as compareRows judges them.
 */
function compareRowsSimd(args: CompareKernelArgs, m: SimdRows, rowStart: number, rowEnd: number): boolean {
  const { k, s } = args;
  const e = m.kernels;
  const f32 = m.f32, i32 = m.i32;
  let S = args.scores as Float32Array;
  let a = args.a, b = args.b;
  // Inputs that are views of this memory are read where they lie when they lie past the
  // kernels' scratch (the score block and after it: simdBlocks), else copied out first.
  const past = (x: Float32Array | Int32Array) => x.buffer === m.memory.buffer && x.byteOffset >= m.scores;
  const inPlace = past(S);
  // Lists in place must not share bytes with the scores the pass writes to (in place, or the row copied in).
  const [from, to] = inPlace ? [S.byteOffset, S.byteOffset + S.byteLength] : [m.scores, m.scores + s * 4];
  const apart = (x: Int32Array) => past(x) && (x.byteOffset >= to || x.byteOffset + x.byteLength <= from);
  const aInPlace = apart(a), bInPlace = apart(b);
  // S's row `row` is its row row - first (first > 0: a copy of the call's rows).
  let first = 0;
  if (S.buffer === m.memory.buffer && !inPlace) {
    S = S.slice(rowStart * s, rowEnd * s);
    first = rowStart;
  }
  if (a.buffer === m.memory.buffer && !aInPlace) a = a.slice();
  if (b.buffer === m.memory.buffer && !bInPlace) b = b.slice();
  // Bits clear on entry (another kernel may have used the memory since); each row clears its own after.
  i32.fill(0, m.bitsA >> 2, (m.bitsA >> 2) + m.words);
  i32.fill(0, m.bitsB >> 2, (m.bitsB >> 2) + m.words);
  const st = m.stats >> 2;
  for (let row = rowStart; row < rowEnd; row++) {
    const at = row * k;
    let pa = m.a, pb = m.b;
    if (aInPlace) pa = a.byteOffset + at * 4;
    else i32.set(a.subarray(at, at + k), m.a >> 2);
    if (bInPlace) pb = b.byteOffset + at * 4;
    else i32.set(b.subarray(at, at + k), m.b >> 2);
    let x = m.scores;
    if (inPlace) x = S.byteOffset + row * s * 4;
    else f32.set(S.subarray((row - first) * s, (row - first + 1) * s), m.scores >> 2);
    const identical = e.compareIdentical(pa, pb, k) === 1;
    if (e.compareMark(pa, k, s, x, m.bitsA, 0, 1, m.valsA, m.stats) >= 0) return false;
    const nA = i32[st], liveA = i32[st + 1], minA = f32[st + 4];
    let nan = i32[st + 3];
    let nB = nA, liveB = liveA, minB = minA, sameSet = true;
    if (!identical) {
      // B's marks alone first: where the sets are equal, B's keys score what A's do.
      if (e.compareMark(pb, k, s, x, m.bitsB, m.bitsA, 0, m.valsB, m.stats) >= 0) return false;
      nB = i32[st];
      sameSet = nA === nB && i32[st + 2] === nB;
      if (!sameSet) {
        clearBits(m, pb, k, m.bitsB);
        e.compareMark(pb, k, s, x, m.bitsB, 0, 1, m.valsB, m.stats);
        liveB = i32[st + 1];
        nan |= i32[st + 3];
        minB = f32[st + 4];
      }
    }
    clearFirst(args, row);
    // B's scores are gathered only where its set differs from A's; identical lists pass nB = 0 (B is A).
    if (nan !== 0 || !thresholdSimd(args, m, row, x, pa, nA, minA, pb, identical ? 0 : nB, minB, !sameSet)) {
      args.nanAt[row] = e.compareFirstNaN(x, s);
    } else {
      args.keysA[row] = liveA;
      args.keysB[row] = liveB;
      args.margin[row] = 0;
      if (sameSet) args.verdict[row] = identical ? IDENTICAL : SETS;
      else {
        const n = e.compareDiff(pa, pb, k, m.bitsA, m.bitsB, m.dSlot, m.dKey, m.dSide);
        args.dSlot.set(i32.subarray(m.dSlot >> 2, (m.dSlot >> 2) + n));
        args.dKey.set(i32.subarray(m.dKey >> 2, (m.dKey >> 2) + n));
        args.dSide.set(i32.subarray(m.dSide >> 2, (m.dSide >> 2) + n));
        args.verdict[row] = judge(args, row, f32, x >> 2, args.threshold[row], n, liveA === liveB);
      }
    }
    clearBits(m, pa, k, m.bitsA);
    if (!identical) clearBits(m, pb, k, m.bitsB);
  }
  return true;
}

/** Clears the bits of `list`: the whole bitmap where it is small beside k (a memset), else key by key. */
function clearBits(m: SimdRows, list: number, k: number, bits: number): void {
  if (m.words <= 16 * k) m.i32.fill(0, bits >> 2, (bits >> 2) + m.words);
  else m.kernels.compareUnmark(list, k, bits);
}

/** What compareCount found for a candidate (no allocation). */
const counted = { gt: 0, eq: 0, below: -Infinity };

/** compareCount for candidate c over the row at x; false when the row holds a NaN. */
function countSimd(m: SimdRows, x: number, s: number, c: number): boolean {
  m.kernels.compareCount(x, s, c, m.stats);
  const st = m.stats >> 2;
  counted.gt = m.i32[st];
  counted.eq = m.i32[st + 1];
  counted.below = m.f32[st + 2];
  return m.i32[st + 3] === 0;
}

/**
 * threshold() on the SIMD path: writes tau and the gap of `row` (its scores
 * at x, its lists at pa and pb); false when a pass met a NaN. nB = 0 when B
 * is A (identical lists); B's fast test needs its scores gathered. The candidates
 * and their order are the TypeScript pass's, so the same zero (+0 or -0) is
 * written where both are the k-th score.
 */
function thresholdSimd(args: CompareKernelArgs, m: SimdRows, row: number, x: number, pa: number, nA: number, cA: number, pb: number, nB: number, cB: number, gatheredB: boolean): boolean {
  const { k, s } = args;
  const useA = cA === cA;
  const firstC = useA ? cA : cB;
  const second = useA && nB > 0 && cB === cB && cB !== cA ? cB : NaN;
  let tau = -Infinity;
  let found = false;
  for (let pick = 0; pick < 2 && !found; pick++) {
    const c = pick === 0 ? firstC : second;
    if (pick === 1 && c !== c) break;
    const fromA = pick === 0 && useA;
    // A set of k distinct keys holding c as its smallest score: no other key above c makes c tau.
    if (c === c && (fromA ? nA : nB) === k && (fromA || gatheredB)) {
      const top = m.kernels.compareMaxOutside(x, s, fromA ? pa : pb, k, fromA ? m.valsA : m.valsB);
      if (top !== top) return false;
      if (top <= c) {
        args.threshold[row] = c;
        // The (k+1)-th score is the largest outside the set: none when the set is every key.
        args.gap[row] = s === k ? Infinity : top === c ? 0 : c - top;
        return true;
      }
    }
    if (!countSimd(m, x, s, c === c ? c : Infinity)) return false;
    found = s >= k && c === c && counted.gt < k && counted.gt + counted.eq >= k;
    if (found) tau = c;
  }
  if (s < k) {
    args.threshold[row] = -Infinity;
    args.gap[row] = Infinity;
    return true;
  }
  if (!found) {
    const sel = args.select;
    const base = x >> 2;
    for (let j = 0; j < s; j++) sel[j] = m.f32[base + j];
    tau = kthLargest(sel, s, k);
    countSimd(m, x, s, tau);
  }
  args.threshold[row] = tau;
  args.gap[row] = counted.gt + counted.eq > k ? 0 : counted.below === -Infinity ? Infinity : tau - counted.below;
  return true;
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

/**
 * The keys in one set and not the other, each once, in slot order (A's
 * before B's at a slot), into dSlot, dKey, dSide; returns how many.
 */
function listDifferences(args: CompareKernelArgs, row: number, nA: number, nB: number): number {
  const { a, b, k, dSlot, dKey, dSide, stamp } = args;
  const at = row * k;
  let n = 0;
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
      n++;
    }
  }
  return n;
}

/**
 * The verdict of a scored row whose sets differ, from its n differing keys
 * (listDifferences, or the SIMD path's compareDiff) and the row's scores
 * S[base .. base + s); fills margin and the first key.
 */
function judge(args: CompareKernelArgs, row: number, S: Float32Array | Float64Array, base: number, tau: number, n: number, sameCount: boolean): number {
  const { dKey, dDev, dBound } = args;
  let worstBound = 0;
  if (args.inputs !== null) prepareRow(args.inputs, row);
  for (let i = 0; i < n; i++) {
    dDev[i] = deviation(S[base + dKey[i]], tau);
    dBound[i] = args.inputs === null ? 0 : inputBound(args.inputs, row, dKey[i]);
    if (dBound[i] > worstBound) worstBound = dBound[i];
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
  args.firstSlot[row] = args.dSlot[f];
  args.firstKey[row] = dKey[f];
  args.firstSide[row] = args.dSide[f];
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
