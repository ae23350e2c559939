/**
 * compareSelections: do two top-k selections of the same rows agree, and
 * where they do not, is it among ties or near-ties of the scores, or a real
 * difference? The public edge: every argument is checked here, once; the
 * kernel (kernels.ts) then judges the rows. docs/compare.md defines each
 * verdict and derives the tolerance bounds.
 */
import { describe, int64ToInt32, product, type Tensor } from '../tensor.js';
import { checkBytes, checkFinite, checkInteger, checkOneOf, checkSize, checkTensor } from '../validate.js';
import { indexerScores } from '../indexer/scores.js';
import { PRECISIONS, PRECISION_CODE, type InputBoundArgs, type Precision } from './bounds.js';
import { compareRows, VERDICTS, DIFFERENT, type CompareKernelArgs, type Verdict } from './kernels.js';

export { VERDICTS, type Verdict } from './kernels.js';
export { PRECISIONS, type Precision } from './bounds.js';

/** How far from the k-th score a key may be and still count as a near-tie; the terms add up. */
export interface CompareTolerance {
  /** An absolute score distance (>= 0). */
  abs?: number;
  /** A distance relative to |tau|, the row's k-th score (>= 0). */
  rel?: number;
  /** The error bound of a precision: 'bf16', 'fp16', 'fp8' (e4m3, DeepSeek's act_quant) or 'int8' (the library's int8 indexer). */
  precision?: Precision;
  /**
   * What the precision holds: 'scores' (bf16 / fp16 only: the scores were
   * rounded to it) or 'inputs' (the indexer's q and keys, for bf16 / fp16
   * also w, were held in it; needs `inputs`). Default: 'inputs' when
   * `inputs` are given, else 'scores'.
   */
  precisionOf?: 'scores' | 'inputs';
}

/** The float32 indexer inputs the scores are (re)computed from, as `indexerScores` takes them. */
export interface CompareInputs {
  /** [b, t, h, d] Float32Array */
  q: Tensor<Float32Array>;
  /** [b, s, d] Float32Array */
  k: Tensor<Float32Array>;
  /** [b, t, h] Float32Array */
  w: Tensor<Float32Array>;
  /** Multiplies every head weight (default 1), as in indexerScores. */
  weightScale?: number;
  /** Row ti sees keys j <= ti + causalOffset (the others score -Infinity), as in indexerScores. */
  causalOffset?: number;
  /** precision 'fp8': whether q and keys are rotated by the Hadamard transform before quantizing (default true, DeepSeek's path; needs d a power of 2). */
  hadamard?: boolean;
}

export interface CompareOptions {
  /** Scores S [rows, s] or [b, t, s], Float32Array or Float64Array (no NaN). */
  scores?: Tensor<Float32Array | Float64Array>;
  /** Indexer inputs: the scores are recomputed from them (float32 indexerScores) unless `scores` is given; the 'inputs' bounds read them. */
  inputs?: CompareInputs;
  /** The near-tie rule; without it only exact ties are excused. */
  tolerance?: CompareTolerance;
  /** Keys per row when no scores are given: every index must be < s (default: unchecked). */
  s?: number;
  /** Memory guard for the result and the scratch (default min(4 GiB, half the memory)). */
  maxBytes?: number;
  /** `false` forces the TypeScript pass over float32 scores; default: WebAssembly SIMD where available. Same results. */
  simd?: boolean;
}

export interface CompareSummary {
  /** Rows per verdict. */
  counts: Record<Verdict, number>;
  /** Whether no row is 'different'. */
  equal: boolean;
  /** The first row whose verdict is 'different', -1 when none. */
  firstDifferent: number;
  /** The largest margin of a row whose sets differ (the farthest differing key from tau), row -1 when none. */
  worstMargin: { row: number; margin: number };
  /** The smallest gap between the k-th and the (k+1)-th score, row -1 without scores. */
  smallestGap: { row: number; gap: number };
}

export interface CompareSelectionsResult {
  rows: number;
  k: number;
  /** Keys per row (from the scores or the `s` option), null when unknown. */
  s: number | null;
  /** Whether scores were given (or recomputed): without them ties cannot be told from differences. */
  scored: boolean;
  /** The verdicts this call can give: all five with scores, else identical, sets and different. */
  decidable: readonly Verdict[];
  /** [rows] Uint8Array: index into VERDICTS. */
  verdict: Uint8Array;
  /** [rows] tau, the k-th largest score of the row (-Infinity when s < k); NaN without scores. */
  threshold: Float64Array;
  /** [rows] tau minus the (k+1)-th score: 0 where a tie straddles the k-th slot, Infinity where no key is left below tau; NaN without scores. */
  gap: Float64Array;
  /** [rows] the largest |score - tau| over keys in one set and not the other (0 when the sets are equal); NaN without scores. */
  margin: Float64Array;
  /** [rows] distinct keys of A (with scores: those scoring above -Infinity). */
  keysA: Int32Array;
  keysB: Int32Array;
  /**
   * [rows] each: the first key in one set and not the other, by slot (A
   * before B at a slot); for a 'different' row the first that breaks the
   * rule. slot -1 where the sets are equal; side 0 = in A, 1 = in B; score
   * and the tolerance it was held to NaN without scores.
   */
  first: { slot: Int32Array; key: Int32Array; side: Uint8Array; score: Float64Array; tolerance: Float64Array };
  summary: CompareSummary;
}

const OPTION_KEYS = ['scores', 'inputs', 'tolerance', 's', 'maxBytes', 'simd'];
const TOLERANCE_KEYS = ['abs', 'rel', 'precision', 'precisionOf'];
const INPUT_KEYS = ['q', 'k', 'w', 'weightScale', 'causalOffset', 'hadamard'];

function checkKeys(name: string, value: unknown, allowed: readonly string[]): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new TypeError(`${name}: expected an object, got ${describe(value)}`);
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) throw new TypeError(`${name}: unknown option '${key}' (expected: ${allowed.join(', ')})`);
  }
}

/** Index sets as Int32Array [rows, k]: rank 2 or 3 ([b, t, k]), Int32Array or BigInt64Array (range-checked). */
function indexRows(name: string, value: unknown): { data: Int32Array; shape: number[]; rows: number; k: number } {
  const rank = Array.isArray((value as Tensor | null)?.shape) ? (value as Tensor).shape.length : 2;
  const dims = rank === 3 ? ['b', 't', 'k'] : ['rows', 'k'];
  const shape = checkTensor(name, value, [Int32Array, BigInt64Array] as never, dims);
  const data = (value as Tensor).data;
  const k = shape[shape.length - 1];
  return { data: data instanceof BigInt64Array ? int64ToInt32(name, data) : (data as Int32Array), shape, rows: product(shape) / k, k };
}

function checkBelow(name: string, data: Int32Array, k: number, s: number): void {
  for (let i = 0; i < data.length; i++) {
    if (data[i] >= s) {
      throw new RangeError(`${name}: value ${data[i]} at row ${Math.floor(i / k)}, slot ${i % k} must be < s = ${s} (negative values are none)`);
    }
  }
}

/**
 * Compares two index sets row by row.
 *
 * - a, b [rows, k] (or [b, t, k]) Int32Array or BigInt64Array: key indices,
 *   negative = none, duplicates count once (as in a mask); an index >= s is
 *   a RangeError naming the set, row, slot and value.
 * - opts.scores S [rows, s] (or [b, t, s]) Float32Array / Float64Array, or
 *   opts.inputs to recompute them; NaN is a RangeError naming row and key.
 *
 * Per row, the strongest that holds: 'identical' (equal lists, every
 * negative read as -1), 'sets' (equal sets of keys), 'ties' (every key in
 * one set and not the other scores exactly tau, the k-th largest score of
 * the row), 'nearTies' (each such key within the tolerance of tau), else
 * 'different'. For ties and near-ties both sets must also hold as many keys
 * scoring above -Infinity (a key scoring -Infinity counts as none, as in
 * DeepSeek's select-then-mask). Without scores only identical, sets and
 * different are decidable (`scored: false`).
 *
 * @example
 * const r = compareSelections(
 *   { data: new Int32Array([0, 1]), shape: [1, 2] }, { data: new Int32Array([0, 2]), shape: [1, 2] },
 *   { scores: { data: new Float32Array([3, 1, 1, 0]), shape: [1, 4] } });
 * // VERDICTS[r.verdict[0]] === 'ties' (keys 1 and 2 both score the 2nd largest, 1)
 */
export function compareSelections(a: Tensor<Int32Array | BigInt64Array>, b: Tensor<Int32Array | BigInt64Array>, opts: CompareOptions = {}): CompareSelectionsResult {
  checkKeys('compareSelections options', opts, OPTION_KEYS);
  const A = indexRows('a', a);
  const B = indexRows('b', b);
  if (A.shape.length !== B.shape.length || A.shape.some((n, i) => n !== B.shape[i])) {
    throw new RangeError(`b.shape: expected a's shape [${A.shape.join(', ')}], got [${B.shape.join(', ')}]`);
  }
  const { rows, k } = A;

  let scores: Float32Array | Float64Array | null = null;
  let s: number | null = null;
  let inputs: InputBoundArgs | null = null;
  let inputArgs: CompareInputs | null = null;
  let recompute = false;
  if (opts.simd !== undefined && typeof opts.simd !== 'boolean') throw new TypeError(`simd: expected a boolean, got ${describe(opts.simd)}`);
  if (opts.inputs !== undefined) {
    checkKeys('inputs', opts.inputs, INPUT_KEYS);
    inputArgs = opts.inputs;
    const [qb, qt, , d] = checkTensor('inputs.q', inputArgs.q, Float32Array, ['b', 't', 'h', 'd']);
    const [, ks] = checkTensor('inputs.k', inputArgs.k, Float32Array, ['b', 's', 'd']);
    if (qb * qt !== rows) throw new RangeError(`inputs.q: b * t = ${qb} * ${qt} = ${qb * qt} must equal the rows of a and b, ${rows}`);
    const [wb, wt, wh] = checkTensor('inputs.w', inputArgs.w, Float32Array, ['b', 't', 'h']);
    if (wb !== qb || wt !== qt || wh !== inputArgs.q.shape[2]) {
      throw new RangeError(`inputs.w.shape: expected [${qb}, ${qt}, ${inputArgs.q.shape[2]}] (q's b, t, h), got [${inputArgs.w.shape.join(', ')}]`);
    }
    if (inputArgs.k.shape[0] !== qb) throw new RangeError(`inputs.k.shape: b = ${inputArgs.k.shape[0]} must equal inputs.q's b = ${qb}`);
    if (inputArgs.k.shape[2] !== d) throw new RangeError(`inputs.k.shape: d = ${inputArgs.k.shape[2]} must equal inputs.q's d = ${d}`);
    if (inputArgs.weightScale !== undefined) checkFinite('inputs.weightScale', inputArgs.weightScale);
    if (inputArgs.causalOffset !== undefined) checkInteger('inputs.causalOffset', inputArgs.causalOffset);
    // Recomputed after every check below, so a bad option costs no indexer pass.
    recompute = opts.scores === undefined;
    if (inputArgs.hadamard !== undefined && typeof inputArgs.hadamard !== 'boolean') {
      throw new TypeError(`inputs.hadamard: expected a boolean, got ${describe(inputArgs.hadamard)}`);
    }
    s = ks;
  }
  if (opts.scores !== undefined) {
    const rank = Array.isArray((opts.scores as Tensor | null)?.shape) ? opts.scores.shape.length : 2;
    const shape = checkTensor('scores', opts.scores, [Float32Array, Float64Array] as never, rank === 3 ? ['b', 't', 's'] : ['rows', 's']);
    const width = shape[shape.length - 1];
    if (shape.length !== A.shape.length || shape.slice(0, -1).some((n, i) => n !== A.shape[i])) {
      throw new RangeError(`scores.shape: expected [${[...A.shape.slice(0, -1), 's'].join(', ')}] (the rows of a and b), got [${shape.join(', ')}]`);
    }
    if (s !== null && width !== s) throw new RangeError(`scores.shape: s = ${width} must equal inputs.k's s = ${s}`);
    scores = opts.scores.data;
    s = width;
  }
  if (opts.s !== undefined) {
    checkSize('s', opts.s);
    if (s !== null && opts.s !== s) throw new RangeError(`s: ${opts.s} must equal the scores' s = ${s}`);
    s = opts.s;
  }
  let abs = 0, rel = 0, scoreCode = 0;
  if (opts.tolerance !== undefined) {
    checkKeys('tolerance', opts.tolerance, TOLERANCE_KEYS);
    const t = opts.tolerance;
    if (scores === null && !recompute) throw new RangeError('tolerance: a near-tie needs scores; pass scores or inputs');
    for (const [name, v] of [['abs', t.abs], ['rel', t.rel]] as const) {
      if (v !== undefined && (checkFinite(`tolerance.${name}`, v) < 0)) throw new RangeError(`tolerance.${name}: expected a finite number >= 0, got ${v}`);
    }
    abs = t.abs ?? 0;
    rel = t.rel ?? 0;
    if (t.precisionOf !== undefined) {
      checkOneOf('tolerance.precisionOf', t.precisionOf, ['scores', 'inputs'] as const);
      if (t.precision === undefined) throw new RangeError(`tolerance.precisionOf: '${t.precisionOf}' needs tolerance.precision`);
    }
    if (t.precision !== undefined) {
      const precision = checkOneOf('tolerance.precision', t.precision, PRECISIONS);
      const of = t.precisionOf ?? (inputArgs !== null ? 'inputs' : 'scores');
      if (of === 'scores') {
        if (precision !== 'bf16' && precision !== 'fp16') {
          throw new RangeError(`tolerance.precision: '${precision}' bounds quantized indexer inputs, not rounded scores; pass inputs (q, k, w), or use 'bf16' / 'fp16' for scores`);
        }
        scoreCode = PRECISION_CODE[precision];
      } else {
        if (inputArgs === null) throw new RangeError(`tolerance.precisionOf: 'inputs' needs inputs (q, k, w)`);
        inputs = inputBoundArgs(inputArgs, precision);
      }
    }
  }

  // Data-dependent checks last: every option is checked before the indices are scanned. Given
  // float32 scores, the kernel's SIMD path checks them as it reads them; an index >= s found
  // there is named below, before any NaN (as here).
  const simd = opts.simd ?? true;
  const indicesChecked = s === null || recompute || !(scores instanceof Float32Array && simd);
  if (s !== null && indicesChecked) {
    checkBelow('a', A.data, k, s);
    checkBelow('b', B.data, k, s);
  }

  if (recompute) {
    const { q, k: keys, w, weightScale, causalOffset } = inputArgs!;
    scores = indexerScores(q, keys, w, { weightScale, causalOffset, maxBytes: opts.maxBytes }).data;
  }
  const width = s ?? 0;
  checkBytes(`compareSelections of ${rows} rows, k = ${k}`, rows * 70 + k * 72 + width * (scores === null ? 8 : 24), opts.maxBytes, 'compare row blocks');
  const args: CompareKernelArgs = {
    a: A.data, b: B.data, k, scores, s: width, abs, rel, scoreCode, inputs, simd, indicesChecked,
    verdict: new Uint8Array(rows),
    threshold: new Float64Array(rows),
    gap: new Float64Array(rows),
    margin: new Float64Array(rows),
    keysA: new Int32Array(rows),
    keysB: new Int32Array(rows),
    firstSlot: new Int32Array(rows),
    firstKey: new Int32Array(rows),
    firstSide: new Uint8Array(rows),
    firstScore: new Float64Array(rows),
    firstTolerance: new Float64Array(rows),
    nanAt: new Int32Array(rows),
    ...scratchFor(k, s, scores !== null, rows),
  };
  if (!compareRows(args, 0, rows)) {
    checkBelow('a', A.data, k, s!);
    checkBelow('b', B.data, k, s!);
  }
  for (let r = 0; r < rows; r++) {
    if (args.nanAt[r] >= 0) throw new RangeError(`scores: NaN at row ${r}, key ${args.nanAt[r]}; expected no NaN (the k-th score is undefined)`);
  }
  const result: Omit<CompareSelectionsResult, 'summary'> = {
    rows, k, s, scored: scores !== null,
    decidable: scores !== null ? VERDICTS : (['identical', 'sets', 'different'] as const),
    verdict: args.verdict, threshold: args.threshold, gap: args.gap, margin: args.margin, keysA: args.keysA, keysB: args.keysB,
    first: { slot: args.firstSlot, key: args.firstKey, side: args.firstSide, score: args.firstScore, tolerance: args.firstTolerance },
  };
  return { ...result, summary: summarizeComparison(result) };
}

/**
 * The kernel's scratch, kept between calls on this thread and grown when a
 * call needs more: a streaming caller (dsa compare, block by block) would
 * otherwise allocate and clear three [s] arrays a block, which measured
 * slower than the comparison of a few rows. Marks and stamps are never
 * cleared between calls: each call's rows get tags past the last call's.
 */
const scratch = {
  sorted: [new Int32Array(0), new Int32Array(0)],
  diff: { slot: new Int32Array(0), key: new Int32Array(0), side: new Uint8Array(0), dev: new Float64Array(0), bound: new Float64Array(0) },
  marks: [new Int32Array(0), new Int32Array(0), new Int32Array(0)],
  select: new Float64Array(0),
  tag0: 0,
};

function scratchFor(k: number, s: number | null, scored: boolean, rows: number) {
  if (scratch.sorted[0].length < k) scratch.sorted = [new Int32Array(k), new Int32Array(k)];
  if (scratch.diff.slot.length < 2 * k) {
    scratch.diff = { slot: new Int32Array(2 * k), key: new Int32Array(2 * k), side: new Uint8Array(2 * k), dev: new Float64Array(2 * k), bound: new Float64Array(2 * k) };
  }
  const width = s ?? 0;
  // Tags (one per row) must stay int32: start over, cleared, before they would not.
  if (scratch.marks[0].length < width || scratch.tag0 + rows > 2 ** 31 - 1) {
    const n = Math.max(width, scratch.marks[0].length);
    scratch.marks = [new Int32Array(n).fill(-1), new Int32Array(n).fill(-1), new Int32Array(n).fill(-1)];
    scratch.tag0 = 0;
  }
  if (scored && scratch.select.length < width) scratch.select = new Float64Array(width);
  const tag0 = scratch.tag0;
  scratch.tag0 += rows;
  const none = new Int32Array(0);
  return {
    // Sorted lists only where s is unknown; marks only where it is known.
    sortedA: s === null ? scratch.sorted[0] : none,
    sortedB: s === null ? scratch.sorted[1] : none,
    markA: s === null ? none : scratch.marks[0],
    markB: s === null ? none : scratch.marks[1],
    stamp: scratch.marks[2],
    tag0,
    dSlot: scratch.diff.slot, dKey: scratch.diff.key, dSide: scratch.diff.side, dDev: scratch.diff.dev, dBound: scratch.diff.bound,
    select: scratch.select,
  };
}

function inputBoundArgs(inputs: CompareInputs, precision: Precision): InputBoundArgs {
  const [, t, h, d] = inputs.q.shape;
  const s = inputs.k.shape[1];
  let hadamard = precision === 'fp8';
  if (inputs.hadamard !== undefined) {
    if (precision !== 'fp8') throw new RangeError(`inputs.hadamard: only tolerance.precision 'fp8' takes it, got '${precision}'`);
    hadamard = inputs.hadamard;
  }
  if (hadamard && (d & (d - 1)) !== 0) throw new RangeError(`inputs.hadamard: needs d a power of 2, got d = ${d}; pass hadamard: false`);
  return {
    q: inputs.q.data, keys: inputs.k.data, w: inputs.w.data, t, s, h, d,
    weightScale: inputs.weightScale ?? 1, code: PRECISION_CODE[precision], hadamard,
    qAbs: new Float64Array(h * d), qErr: new Float64Array(h * d), wAbs: new Float64Array(h), wErr: new Float64Array(h),
    kAbs: new Float64Array(d), kErr: new Float64Array(d), rotate: new Float32Array(d),
  };
}

/** The summary of per-row verdicts, margins and gaps (also over rows gathered block by block, as `dsa compare` does). */
export function summarizeComparison(r: Pick<CompareSelectionsResult, 'verdict' | 'margin' | 'gap' | 'first'>): CompareSummary {
  const counts = Object.fromEntries(VERDICTS.map((v) => [v, 0])) as Record<Verdict, number>;
  let firstDifferent = -1;
  const worstMargin = { row: -1, margin: 0 };
  const smallestGap = { row: -1, gap: Infinity };
  for (let row = 0; row < r.verdict.length; row++) {
    const v = r.verdict[row];
    counts[VERDICTS[v]]++;
    if (v === DIFFERENT && firstDifferent < 0) firstDifferent = row;
    const m = r.margin[row];
    if (r.first.slot[row] >= 0 && m === m && (worstMargin.row < 0 || m > worstMargin.margin)) {
      worstMargin.row = row;
      worstMargin.margin = m;
    }
    const g = r.gap[row];
    if (g === g && (smallestGap.row < 0 || g < smallestGap.gap)) {
      smallestGap.row = row;
      smallestGap.gap = g;
    }
  }
  return { counts, equal: counts.different === 0, firstDifferent, worstMargin, smallestGap };
}
