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
  // Scratch: [k] x 2, [2k] x 5, [s] x 2 (when scored).
  sortedA: Int32Array;
  sortedB: Int32Array;
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
  const { a, b, k, scores, s, sortedA, sortedB } = args;
  for (let row = rowStart; row < rowEnd; row++) {
    const at = row * k;
    let identical = true;
    for (let i = 0; i < k && identical; i++) identical = (a[at + i] < 0 ? -1 : a[at + i]) === (b[at + i] < 0 ? -1 : b[at + i]);
    const nA = distinctSorted(a, at, k, sortedA);
    const nB = distinctSorted(b, at, k, sortedB);
    let sameSet = nA === nB;
    for (let i = 0; i < nA && sameSet; i++) sameSet = sortedA[i] === sortedB[i];
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
    if (!threshold(args, row, base, nA, nB)) continue; // a NaN: the edge throws
    const tau = args.threshold[row];
    let cntA = 0, cntB = 0;
    for (let i = 0; i < nA; i++) if (scores[base + sortedA[i]] > -Infinity) cntA++;
    for (let i = 0; i < nB; i++) if (scores[base + sortedB[i]] > -Infinity) cntB++;
    args.keysA[row] = cntA;
    args.keysB[row] = cntB;
    args.margin[row] = 0;
    if (identical || sameSet) {
      args.verdict[row] = identical ? IDENTICAL : SETS;
      continue;
    }
    args.verdict[row] = judge(args, row, base, tau, nA, nB, cntA === cntB);
  }
}

/** The first key of one set missing from the other, in slot order (A before B at a slot), unscored. */
function firstDifference(args: CompareKernelArgs, row: number, nA: number, nB: number): void {
  const { a, b, k, sortedA, sortedB } = args;
  const at = row * k;
  for (let i = 0; i < k; i++) {
    const x = a[at + i], y = b[at + i];
    const side = x >= 0 && !contains(sortedB, nB, x) ? 0 : y >= 0 && !contains(sortedA, nA, y) ? 1 : -1;
    if (side < 0) continue;
    args.firstSlot[row] = i;
    args.firstKey[row] = side === 0 ? x : y;
    args.firstSide[row] = side;
    return;
  }
}

/** Writes tau and the gap of `row`; false (and nanAt) when the row holds a NaN. */
function threshold(args: CompareKernelArgs, row: number, base: number, nA: number, nB: number): boolean {
  const { k, s, sortedA, sortedB } = args;
  const S = args.scores!;
  // Candidates: the smallest score among each set's keys.
  let cA = NaN, cB = NaN;
  for (let i = 0; i < nA; i++) {
    const v = S[base + sortedA[i]];
    if (!(v >= cA)) cA = v;
  }
  for (let i = 0; i < nB; i++) {
    const v = S[base + sortedB[i]];
    if (!(v >= cB)) cB = v;
  }
  let gtA = 0, eqA = 0, belowA = -Infinity, gtB = 0, eqB = 0, belowB = -Infinity;
  for (let j = 0; j < s; j++) {
    const v = S[base + j];
    if (v !== v) {
      args.nanAt[row] = j;
      return false;
    }
    if (v > cA) gtA++;
    else if (v === cA) eqA++;
    else if (v > belowA) belowA = v;
    if (v > cB) gtB++;
    else if (v === cB) eqB++;
    else if (v > belowB) belowB = v;
  }
  let tau: number, atLeast: number, below: number;
  if (s < k) {
    tau = -Infinity;
    atLeast = s;
    below = -Infinity;
  } else if (gtA < k && gtA + eqA >= k) {
    tau = cA;
    atLeast = gtA + eqA;
    below = belowA;
  } else if (gtB < k && gtB + eqB >= k) {
    tau = cB;
    atLeast = gtB + eqB;
    below = belowB;
  } else {
    const x = args.select;
    for (let j = 0; j < s; j++) x[j] = S[base + j];
    tau = kthLargest(x, s, k);
    atLeast = 0;
    below = -Infinity;
    for (let j = 0; j < s; j++) {
      const v = S[base + j];
      if (v >= tau) atLeast++;
      else if (v > below) below = v;
    }
  }
  args.threshold[row] = tau;
  // The (k+1)-th score is tau again when more than k keys reach it; with no key below, nothing can enter.
  args.gap[row] = atLeast > k ? 0 : below === -Infinity ? Infinity : tau - below;
  return true;
}

/** The verdict of a scored row whose sets differ; fills margin and the first key. */
function judge(args: CompareKernelArgs, row: number, base: number, tau: number, nA: number, nB: number, sameCount: boolean): number {
  const { a, b, k, sortedA, sortedB, dSlot, dKey, dSide, dDev, dBound, stamp } = args;
  const S = args.scores!;
  const at = row * k;
  let n = 0;
  let worstBound = 0;
  if (args.inputs !== null) prepareRow(args.inputs, row);
  for (let i = 0; i < k; i++) {
    for (let side = 0; side < 2; side++) {
      const x = side === 0 ? a[at + i] : b[at + i];
      if (x < 0 || stamp[x] === row) continue;
      if (side === 0 ? contains(sortedB, nB, x) : contains(sortedA, nA, x)) continue;
      stamp[x] = row;
      dSlot[n] = i;
      dKey[n] = x;
      dSide[n] = side;
      dDev[n] = deviation(S[base + x], tau);
      dBound[n] = args.inputs === null ? 0 : inputBound(args.inputs, row, x);
      if (dBound[n] > worstBound) worstBound = dBound[n];
      n++;
    }
  }
  // Every stamp of this row is row; the next row's are row + 1, so nothing needs clearing.
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
