/**
 * The public edge of exact top-k: every argument is checked here, once;
 * the plan then runs the radix-select kernel over row ranges, on this thread
 * (`topk`) or on the pool (`createPool().topk`).
 */
import { allocLocal, describe, wordsPerRow, type Alloc, type MaskData, type Tensor, type TypedArrayConstructor } from '../tensor.js';
import { runPlan, type Plan } from '../plan.js';
import { topkKernels } from './kernels.js';
import { checkBytes, checkInteger, checkOneOf, checkOut, checkRows, checkSame, checkSize, checkTensor } from '../validate.js';
import type { TopkKernelArgs } from './radix.js';
import { resolveRowKeys, type KeyWindowOptions } from '../window.js';
import { checkKnownOptions } from '../options.js';

const MASK_CTORS = [Float32Array, Uint8Array, Uint32Array] as TypedArrayConstructor<MaskData>[];

export interface TopkOptions extends KeyWindowOptions {
  /** true (default): slots in descending value, ties by ascending key index. false: the same set of keys, slot order unspecified. */
  sorted?: boolean;
  /** 'error' (default): a NaN at an eligible key is a RangeError naming [bi, ti, j]. 'lowest': NaN ranks below -Infinity. */
  nan?: 'error' | 'lowest';
  /** Eligibility [b, t, s]: additive (Float32, kept where exactly 0), bool (Uint8, kept where non-zero) or bits (Uint32 [b, t, ceil(s/32)]). */
  mask?: Tensor<MaskData>;
  /** Only rows [start, end) (row = bi * t + ti); the result is then [end - start, k]. */
  rows?: [number, number];
  /** Memory guard for the result (default min(4 GiB, half the memory)). */
  maxBytes?: number;
  /** Buffers for the result, [rows * k] each (a decode loop reuses them). */
  out?: { values: Float32Array; indices: Int32Array };
  /** The kernel to run: 'radix' (default) or 'sort', the O(s log s) reference. Same results. */
  kernel?: 'radix' | 'sort';
  /** Stream unmasked rows through the WebAssembly SIMD module where this engine has it (default true; false: TypeScript only). Same results. */
  simd?: boolean;
}

export interface TopkResult {
  /** [b, t, k] Float32Array (or [rows, k]); -Infinity in empty slots. */
  values: Tensor<Float32Array>;
  /** [b, t, k] Int32Array (or [rows, k]); key indices in [0, s), -1 in empty slots. */
  indices: Tensor<Int32Array>;
}

/** Builds the top-k plan; `alloc` backs the outputs (shared memory for the pool). */
export function planTopk(scores: Tensor<Float32Array>, k: number, opts: TopkOptions = {}, alloc: Alloc = allocLocal): Plan<TopkResult> {
  const [b, t, s] = checkTensor('scores', scores, Float32Array, ['b', 't', 's']);
  checkSize('k', k);
  const sorted = opts.sorted ?? true;
  if (typeof sorted !== 'boolean') throw new TypeError(`sorted: expected a boolean, got ${describe(sorted)}`);
  const nan = checkOneOf('nan', opts.nan ?? 'error', ['error', 'lowest'] as const);
  const causalOffset = opts.causalOffset === undefined ? null : checkInteger('causalOffset', opts.causalOffset);
  // Windows, seqLens, ragged: per-row ranges [lo, hi) with the causal limit folded in.
  const keys = resolveRowKeys(opts, b, t, s, alloc);
  const kernel = checkOneOf('kernel', opts.kernel ?? 'radix', ['radix', 'sort'] as const);
  const simd = opts.simd ?? true;
  if (typeof simd !== 'boolean') throw new TypeError(`simd: expected a boolean, got ${describe(simd)}`);
  let mask: MaskData | null = null;
  let maskForm: TopkKernelArgs['maskForm'] = null;
  if (opts.mask !== undefined) {
    const data = (opts.mask as { data?: unknown } | null)?.data;
    maskForm = data instanceof Float32Array ? 'additive' : data instanceof Uint8Array ? 'bool' : data instanceof Uint32Array ? 'bits' : null;
    if (maskForm === null) {
      throw new TypeError(`mask.data: expected a Float32Array (additive), Uint8Array (bool) or Uint32Array (bits), got ${describe(data)}`);
    }
    const [mb, mt, width] = checkTensor('mask', opts.mask, MASK_CTORS, ['b', 't', maskForm === 'bits' ? 'ceil(s/32)' : 's']);
    checkSame('topk', mb, 'mask b', b, 'scores b');
    checkSame('topk', mt, 't of mask', t, 'scores t');
    checkSame('topk', width, maskForm === 'bits' ? 'mask words' : 'mask s', maskForm === 'bits' ? wordsPerRow(s) : s, maskForm === 'bits' ? 'ceil(scores s / 32)' : 'scores s');
    mask = opts.mask.data;
  }
  const [start, end] = checkRows(opts.rows, b * t);
  const rows = end - start;
  // The outputs, plus the per-thread scratch the kernel keeps (six lists of
  // up to s candidate keys and indices).
  checkBytes(`topk of ${rows} rows, k = ${k}`, rows * k * 8 + rows * 4 + s * 24, opts.maxBytes, 'stream query blocks with rows: [start, end) or lower k');

  let values: Float32Array, indices: Int32Array;
  if (opts.out !== undefined) {
    values = checkOut('out.values', (opts.out as { values?: unknown } | null)?.values, Float32Array, rows * k);
    indices = checkOut('out.indices', opts.out.indices, Int32Array, rows * k);
  } else {
    values = alloc(Float32Array, rows * k);
    indices = alloc(Int32Array, rows * k);
  }
  const nanAt = alloc(Int32Array, rows);
  const args: TopkKernelArgs = {
    scores: scores.data, t, s, k, row0: start, values, indices, nanAt, nanLowest: nan === 'lowest', sorted, causalOffset, mask, maskForm, simd,
    lo: keys?.lo ?? null, hi: keys?.hi ?? null,
  };
  const shape = opts.rows !== undefined ? [rows, k] : [b, t, k];
  return {
    steps: [{ kernel: kernel === 'radix' ? 'topkRadix' : 'topkSortReference', args: args as never, rows: [start, end], writes: ['values', 'indices', 'nanAt'] }],
    finish() {
      // With nan: 'lowest' the kernels never flag a row, so nanAt is not read
      // (on the GPU, reading it would be a read-back the pipeline need not wait for).
      for (let r = 0; nan !== 'lowest' && r < rows; r++) {
        if (nanAt[r] >= 0) {
          const row = start + r;
          const bi = Math.floor(row / t);
          const ti = row % t;
          throw new RangeError(`scores: NaN at [${bi}, ${ti}, ${nanAt[r]}] (batch ${bi}, query ${ti}, key ${nanAt[r]}); expected no NaN at eligible keys, or pass nan: 'lowest' to rank NaN below -Infinity`);
        }
      }
      return { values: { data: values, shape: shape.slice() }, indices: { data: indices, shape } };
    },
  };
}

/**
 * Exact top-k of each row of `scores [b, t, s]` (Float32Array): `values` and
 * `indices` `[b, t, k]`, in descending value with ties by ascending key
 * index (jax.lax.top_k). O(s + k) per row (radix select), never a full sort.
 * Ineligible keys (causal offset, mask, key window, seqLens, ragged) are
 * never chosen; slots past the eligible keys (and past s) hold index -1 and
 * value -Infinity. Indices are positions on the s axis: with `ragged`
 * (scores [1, totalQ, longest sequence] from a ragged `indexerScores`) and
 * with `seqLens` they are positions within each row's sequence. NaN at an
 * eligible key is a RangeError naming it, unless `nan: 'lowest'`.
 *
 * @example
 * const { values, indices } = topk({ data: new Float32Array([1, 3, 3, 2]), shape: [1, 1, 4] }, 2);
 * // indices.data = [1, 2], values.data = [3, 3]
 */
export function topk(scores: Tensor<Float32Array>, k: number, opts: TopkOptions = {}): TopkResult {
  checkKnownOptions('topk', opts, ['causalOffset', 'window', 'seqLens', 'shortSequences', 'ragged', 'sorted', 'nan', 'mask', 'rows', 'maxBytes', 'out', 'kernel', 'simd']);
  return runPlan(planTopk(scores, k, opts, allocLocal), topkKernels);
}
