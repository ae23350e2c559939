/**
 * The public edge of the mask area: every argument is checked here, once,
 * and every data-dependent check is done before anything is written (NaN
 * thresholds here; indices >= s as the plan's first step, so the pool
 * shares that scan), so after an error a caller's `out` is untouched. Each function builds a plan of row-range kernel steps; the
 * synchronous versions run it here, the pool versions (pooled.ts) on workers.
 */
import { allocLocal, product, type Alloc, type MaskData, type MaskForm, type Tensor } from '../tensor.js';
import { runPlan, type Plan, type Step } from '../plan.js';
import { maskKernels } from './kernels.js';
import { checkBytes, checkInteger, checkOneOf, checkOut, checkRows, checkSame, checkSize, checkTensor } from '../validate.js';
import { MASK_FORMS, checkKeyCount, cheaperForms, formOf, maskCtor, rowWidth } from './form.js';
import { NO_BAD_ROW } from './check.js';
import { hasRowKeys, resolveRowKeys, type KeyWindowOptions } from '../window.js';
import { checkKnownOptions } from '../options.js';

export interface GenerateMaskOptions extends KeyWindowOptions {
  /** 'scatter' (default, O(b*t*s + b*t*k)) or 'broadcast' (the O(b*t*k*s) reference); bit-identical. */
  strategy?: 'scatter' | 'broadcast';
  /** 'additive' (default, Float32 0 / DEFAULT_MASK_VALUE), 'bool' (Uint8 1 / 0) or 'bits' (Uint32, 32 keys a word). */
  form?: MaskForm;
  /** An index >= s: 'error' (default, RangeError) or 'skip' (keeps nothing). Negative indices are padding either way. */
  outOfRange?: 'error' | 'skip';
  /** Also drop keys j > ti + causalOffset, in the same pass (and keys outside a `window`, past `seqLens`, or causally ahead in a `ragged` batch). */
  /** Only rows [start, end) (row = bi * t + ti); the result is then [end - start, s or words]. */
  rows?: [number, number];
  /** A buffer for the result, of the form's type and the result's length. */
  out?: MaskData;
  /** Memory guard for the result when `out` is not given (default min(4 GiB, half the memory)). */
  maxBytes?: number;
}

export interface ThresholdMaskOptions {
  /** 'exact' (default: at most k keys, ties by increasing key) or 'raw' (every score >= threshold). */
  mode?: 'exact' | 'raw';
  form?: MaskForm;
  rows?: [number, number];
  out?: MaskData;
  maxBytes?: number;
}

export interface MaskBlockOptions {
  rows?: [number, number];
  out?: MaskData;
  maxBytes?: number;
}

/** The options each synchronous function takes (the pool's and the GPU's plans see their own). */
const KEY_WINDOW_OPTIONS = ['causalOffset', 'window', 'seqLens', 'shortSequences', 'ragged'];
const BLOCK_OPTIONS = ['rows', 'out', 'maxBytes'];
const GENERATE_OPTIONS = [...KEY_WINDOW_OPTIONS, 'strategy', 'form', 'outOfRange', ...BLOCK_OPTIONS];
const THRESHOLD_OPTIONS = ['mode', 'form', ...BLOCK_OPTIONS];

/** The result buffer: the caller's `out` (checked) or a new one within the memory guard. */
function resultBuffer(form: MaskForm, rows: number, s: number, opts: MaskBlockOptions, what: string, alloc: Alloc): MaskData {
  const ctor = maskCtor(form);
  const length = rows * rowWidth(form, s);
  if (opts.out !== undefined) return checkOut('out', opts.out, ctor, length);
  const bytes = length * ctor.BYTES_PER_ELEMENT;
  checkBytes(what, bytes, opts.maxBytes, cheaperForms(rows, s));
  try {
    return alloc(ctor, length);
  } catch (e) {
    // Past the engine's typed-array length (2^32 elements in Node 20) or its memory, with maxBytes raised.
    if (!(e instanceof RangeError)) throw e;
    throw new RangeError(`${what}: ${length} ${ctor.name} elements (${bytes} bytes) could not be allocated (${e.message}); ${cheaperForms(rows, s)}`);
  }
}

function resultShape(opts: MaskBlockOptions, start: number, end: number, b: number, t: number, width: number): number[] {
  return opts.rows !== undefined ? [end - start, width] : [b, t, width];
}

/** The RangeError for the first index >= s in row r: batch, query, slot, value and s. */
export function outOfRangeError(indices: Int32Array, t: number, k: number, s: number, r: number): RangeError {
  let i = r * k;
  while (indices[i] < s) i++;
  return new RangeError(
    `indices: value ${indices[i]} at batch ${Math.floor(r / t)}, query ${r % t}, slot ${i - r * k} must be < s = ${s} ` +
      `(negative indices are padding; pass outOfRange: 'skip' to drop values >= s)`,
  );
}

export function planGenerateMask(indices: Tensor<Int32Array>, s: number, opts: GenerateMaskOptions, alloc: Alloc): Plan<Tensor<MaskData>> {
  const [b, t, k] = checkTensor('indices', indices, Int32Array, ['b', 't', 'k']);
  checkKeyCount('s', s);
  const strategy = checkOneOf('strategy', opts.strategy ?? 'scatter', ['scatter', 'broadcast'] as const);
  const form = checkOneOf('form', opts.form ?? 'additive', MASK_FORMS);
  const outOfRange = checkOneOf('outOfRange', opts.outOfRange ?? 'error', ['error', 'skip'] as const);
  const offset = opts.causalOffset === undefined ? Infinity : checkInteger('causalOffset', opts.causalOffset);
  const keys = resolveRowKeys(opts, b, t, s, alloc);
  const [start, end] = checkRows(opts.rows, b * t);
  const width = rowWidth(form, s);
  const out = resultBuffer(form, end - start, s, opts, `a ${form} mask of ${end - start} rows x ${s} keys`, alloc);
  // The index check is the plan's first step (parallel on the pool); the mask
  // step writes nothing when it flagged a row, and finish throws.
  const firstBad = alloc(Int32Array, 1);
  firstBad[0] = NO_BAD_ROW;
  const steps: Step[] = [];
  if (outOfRange === 'error') {
    steps.push({ kernel: 'mask.indices.check', args: { indices: indices.data, k, s, firstBad }, rows: [start, end], writes: ['firstBad'] });
  }
  const kernel = strategy === 'broadcast' ? 'mask.broadcast' : `mask.scatter.${form}`;
  const lo = keys?.lo ?? null, hi = keys?.hi ?? null;
  steps.push({ kernel, args: { indices: indices.data, out, t, s, k, rowBase: start, offset, form, firstBad, lo, hi }, rows: [start, end], writes: ['out'] });
  return {
    steps,
    finish: () => {
      if (firstBad[0] !== NO_BAD_ROW) throw outOfRangeError(indices.data, t, k, s, firstBad[0]);
      return { data: out, shape: resultShape(opts, start, end, b, t, width) };
    },
  };
}

/**
 * The mask of top-k indices: key j of row (bi, ti) is kept iff some slot
 * has indices[bi, ti, slot] === j.
 *
 * - indices [b, t, k] Int32Array; a negative index is padding (keeps
 *   nothing, never wraps); an index >= s is a RangeError naming batch,
 *   query, slot, value and s, unless `outOfRange: 'skip'`; duplicates are
 *   allowed. A key outside the row's visible range (`causalOffset`,
 *   `window`, `seqLens`, `ragged`) is dropped.
 * - returns [b, t, s] (additive Float32Array or bool Uint8Array) or
 *   [b, t, ceil(s/32)] (bits Uint32Array); with `rows`, [end - start, ...].
 */
export function generateMask(indices: Tensor<Int32Array>, s: number, opts: GenerateMaskOptions = {}): Tensor<MaskData> {
  checkKnownOptions('generateMask', opts, GENERATE_OPTIONS);
  return runPlan(planGenerateMask(indices, s, opts, allocLocal), maskKernels);
}

export function planMaskFromThreshold(
  scores: Tensor<Float32Array>,
  topkValues: Tensor<Float32Array>,
  opts: ThresholdMaskOptions,
  alloc: Alloc,
): Plan<Tensor<MaskData>> {
  const [b, t, s] = checkTensor('scores', scores, Float32Array, ['b', 't', 's']);
  const [vb, vt, k] = checkTensor('topkValues', topkValues, Float32Array, ['b', 't', 'k']);
  checkKeyCount('scores s', s);
  checkSame('maskFromThreshold', vb, 'topkValues b', b, 'scores b');
  checkSame('maskFromThreshold', vt, 'topkValues t', t, 'scores t');
  const mode = checkOneOf('mode', opts.mode ?? 'exact', ['exact', 'raw'] as const);
  const form = checkOneOf('form', opts.form ?? 'additive', MASK_FORMS);
  const [start, end] = checkRows(opts.rows, b * t);
  const width = rowWidth(form, s);
  const out = resultBuffer(form, end - start, s, opts, `a ${form} mask of ${end - start} rows x ${s} keys`, alloc);
  const values = topkValues.data;
  for (let i = start * k, last = end * k; i < last; i++) {
    if (Number.isNaN(values[i])) {
      const r = Math.floor(i / k);
      throw new RangeError(`topkValues: expected no NaN, got NaN at batch ${Math.floor(r / t)}, query ${r % t}, slot ${i - r * k}`);
    }
  }
  return {
    steps: [{
      kernel: `mask.threshold.${form}`,
      args: { scores: scores.data, values, out, s, k, rowBase: start, exact: mode === 'exact', form },
      rows: [start, end],
      writes: ['out'],
    }],
    finish: () => ({ data: out, shape: resultShape(opts, start, end, b, t, width) }),
  };
}

/**
 * A mask from a score threshold (MaxText's merged form). The threshold of a
 * row is the smallest of its k top-k values.
 *
 * - scores [b, t, s] Float32Array; topkValues [b, t, k] Float32Array (no NaN).
 * - mode 'exact' (default): keep scores > threshold, at most k, by increasing
 *   key; then scores == threshold by increasing key until k are kept. Equals
 *   the index mask of topk(scores, k) for NaN-free scores. 'raw': keep every
 *   score >= threshold. A NaN score is never kept.
 * - returns the mask in `form`, [b, t, s or words] (with `rows`, [end - start, ...]).
 */
export function maskFromThreshold(scores: Tensor<Float32Array>, topkValues: Tensor<Float32Array>, opts: ThresholdMaskOptions = {}): Tensor<MaskData> {
  checkKnownOptions('maskFromThreshold', opts, THRESHOLD_OPTIONS);
  return runPlan(planMaskFromThreshold(scores, topkValues, opts, allocLocal), maskKernels);
}

export function planCombineMasks(a: Tensor<MaskData>, b: Tensor<MaskData>, opts: MaskBlockOptions, alloc: Alloc): Plan<Tensor<MaskData>> {
  const form = formOf('a', (a as { data?: unknown } | null)?.data);
  const ctor = maskCtor(form);
  const last = form === 'bits' ? 'words' : 's';
  const rank = Array.isArray(a.shape) && a.shape.length === 2 ? 2 : 3;
  const dims = rank === 2 ? ['rows', last] : ['b', 't', last];
  const shape = checkTensor('a', a, ctor, dims);
  const shapeB = checkTensor('b', b, ctor, dims);
  if (shapeB.some((d, i) => d !== shape[i])) {
    throw new RangeError(`b.shape: expected [${shape.join(', ')}] (the shape of a), got [${shapeB.join(', ')}]`);
  }
  const width = shape[rank - 1];
  const nRows = product(shape) / width;
  const [start, end] = checkRows(opts.rows, nRows);
  const length = (end - start) * width;
  let out: MaskData;
  if (opts.out !== undefined) out = checkOut('out', opts.out, ctor, length);
  else {
    checkBytes(`a ${form} mask of ${end - start} rows`, length * ctor.BYTES_PER_ELEMENT, opts.maxBytes, 'combine row blocks with rows: [start, end), or use bit masks');
    out = alloc(ctor, length);
  }
  return {
    steps: [{ kernel: `mask.combine.${form}`, args: { a: a.data, b: b.data, out, width, rowBase: start }, rows: [start, end], writes: ['out'] }],
    finish: () => ({ data: out, shape: opts.rows !== undefined ? [end - start, width] : shape }),
  };
}

/**
 * Keeps a key iff both masks keep it. a and b: the same form (type) and
 * shape, [b, t, s or words] or [rows, s or words]. An additive result is
 * exactly 0 or DEFAULT_MASK_VALUE (a value counts as kept iff it is 0);
 * never -Infinity, since masks are combined, never added.
 */
export function combineMasks(a: Tensor<MaskData>, b: Tensor<MaskData>, opts: MaskBlockOptions = {}): Tensor<MaskData> {
  checkKnownOptions('combineMasks', opts, BLOCK_OPTIONS);
  return runPlan(planCombineMasks(a, b, opts, allocLocal), maskKernels);
}

export function planCausalMask(
  b: number,
  t: number,
  s: number,
  offset: number,
  form: MaskForm,
  opts: MaskBlockOptions,
  alloc: Alloc,
): Plan<Tensor<MaskData>> {
  return planRangeMask(b, t, s, { causalOffset: checkInteger('offset', offset) }, form, opts, alloc, 'causal');
}

/**
 * The causal mask [b, t, s] (bits: [b, t, ceil(s/32)]): row ti keeps key j
 * iff j <= ti + offset; offset = s - t for a query block at the end of the
 * cache, 0 for self-attention. With `rows`, [end - start, ...].
 */
export function causalMask(
  b: number,
  t: number,
  s: number,
  offset: number,
  form: MaskForm = 'additive',
  opts: MaskBlockOptions = {},
): Tensor<MaskData> {
  checkKnownOptions('causalMask', opts, BLOCK_OPTIONS);
  return runPlan(planCausalMask(b, t, s, offset, form, opts, allocLocal), maskKernels);
}

export function planWindowMask(
  b: number,
  t: number,
  s: number,
  keys: KeyWindowOptions,
  form: MaskForm,
  opts: MaskBlockOptions,
  alloc: Alloc,
): Plan<Tensor<MaskData>> {
  return planRangeMask(b, t, s, keys, form, opts, alloc, 'window');
}

/** The plan of a mask that keeps each row's range of keys (causalMask, windowMask): three fills a row. */
function planRangeMask(
  b: number,
  t: number,
  s: number,
  keys: KeyWindowOptions,
  form: MaskForm,
  opts: MaskBlockOptions,
  alloc: Alloc,
  kind: 'causal' | 'window',
): Plan<Tensor<MaskData>> {
  checkSize('b', b);
  checkSize('t', t);
  if (!Number.isSafeInteger(b * t)) throw new RangeError(`b * t: the rows (numbered bi * t + ti) must be a safe integer, got ${b} * ${t}`);
  checkKeyCount('s', s);
  checkOneOf('form', form, MASK_FORMS);
  const offset = keys.causalOffset === undefined ? Infinity : checkInteger('causalOffset', keys.causalOffset);
  if (hasRowKeys(keys) && b * t > 0x7fffffff) {
    // Per-row ranges are two Int32Arrays of b * t rows, allocated before the options are read.
    throw new RangeError(`b * t: a window, seqLens or ragged batch gives each row its own key range; expected at most 2147483647 rows, got ${b} * ${t}`);
  }
  const ranges = resolveRowKeys(keys, b, t, s, alloc);
  const [start, end] = checkRows(opts.rows, b * t);
  const width = rowWidth(form, s);
  const out = resultBuffer(form, end - start, s, opts, `a ${form} ${kind} mask of ${end - start} rows x ${s} keys`, alloc);
  const lo = ranges?.lo ?? null, hi = ranges?.hi ?? null;
  return {
    steps: [{ kernel: `mask.causal.${form}`, args: { out, t, s, rowBase: start, offset, lo, hi }, rows: [start, end], writes: ['out'] }],
    finish: () => ({ data: out, shape: resultShape(opts, start, end, b, t, width) }),
  };
}

/**
 * The mask [b, t, s] (bits: [b, t, ceil(s/32)]) keeping exactly the keys
 * each row may see: `causalOffset`, `window` [start, end) per row, `seqLens`
 * [b] or `ragged` (src/window.ts), intersected. With no option every key
 * is kept. `combineMasks` with it windows any other mask. With `rows`,
 * [end - start, ...].
 */
export function windowMask(
  b: number,
  t: number,
  s: number,
  keys: KeyWindowOptions,
  form: MaskForm = 'additive',
  opts: MaskBlockOptions = {},
): Tensor<MaskData> {
  checkKnownOptions('windowMask keys', keys, KEY_WINDOW_OPTIONS);
  checkKnownOptions('windowMask', opts, BLOCK_OPTIONS);
  return runPlan(planWindowMask(b, t, s, keys, form, opts, allocLocal), maskKernels);
}
