/**
 * indexerScores: the lightning indexer's scores,
 * I[b,t,s] = weightScale * sum_h w[b,t,h] * ReLU(q[b,t,h,:] . k[b,s,:]).
 */
import { allocLocal, describe, type Alloc, type Tensor } from '../tensor.js';
import type { Plan, Step } from '../plan.js';
import { runPlan } from '../plan.js';
import { indexerKernels } from './kernels.js';
import { checkBytes, checkFinite, checkInteger, checkOneOf, checkOut, checkRows, checkSame, checkSize, checkSizeAtMost, checkTensor } from '../validate.js';
import { simdModule } from '../simd/index.js';
import { checkQuantizedKeys, isQuantizedKeys, type QuantizedKeys } from './quantized-keys.js';
import { checkFp8Keys, isFp8Keys, FP8_BLOCK, type Fp8Keys, type ScaleFormat } from './fp8.js';
import { resolveRowKeys, type KeyWindowOptions } from '../window.js';
import { tileCount } from './scores-kernels.js';
import { checkKnownOptions } from '../options.js';

/** Indexer keys in any form: float32 rows, int8 (quantizeKeys) or FP8 (quantizeKeysFp8). */
export type IndexerKeys = Tensor<Float32Array> | QuantizedKeys | Fp8Keys;

export interface IndexerScoresOptions extends KeyWindowOptions {
  /**
   * Multiplies every head weight (default 1). DeepSeek-V3.2 and MaxText use
   * h^-0.5 * d^-0.5 (their softmax scale d^-0.5 folded into the weights);
   * the caller chooses, nothing is hidden.
   */
  weightScale?: number;
  /**
   * 'float32' (default); 'int8': q and k quantized per 128-element block
   * (one float32 scale each), integer dots, scales, ReLU and weights in
   * float32; 'int7': as 'int8' with the queries at 63 levels (values in
   * [-63, 63], scale amax / 63) against int8 keys, the operands of
   * WebAssembly's relaxed i8 x i7 dot: about twice as fast where the
   * relaxed module runs (browsers), the same bits everywhere; 'fp8':
   * DeepSeek-V3.2's FP8 indexer (`act_quant` of q and k, e4m3, d <= 128,
   * scores as `fp8_index`). docs/indexer.md defines each. A NaN or Infinity
   * makes its block's scale NaN, so the scores using it are NaN.
   */
  precision?: 'float32' | 'int8' | 'int7' | 'fp8';
  /**
   * fp8: rotate q (and float32 keys) by the Hadamard transform before
   * quantizing, as DeepSeek does (default true; needs d a power of 2). With
   * FP8 keys the keys' own `hadamard` decides, and a different value here is an error.
   */
  hadamard?: boolean;
  /** fp8: how the queries' (and float32 keys') scales are rounded: 'float32' (default) or 'ue8m0' (powers of two). */
  scaleFormat?: ScaleFormat;
  /**
   * A paged key cache: k is [numPages, pageSize, d] (float32 or int8) or FP8
   * keys [numPages, pageSize, d + 4], and sequence bi's position j lives in
   * slot blockTable[bi][j / pageSize] * pageSize + j % pageSize. Needs
   * `seqLens` (the t queries are each sequence's last tokens, vLLM's paged
   * logits); only the blocks a sequence's length uses are read.
   */
  blockTable?: Tensor<Int32Array>;
  /** Paged: positions per output row (default the longest sequence; vLLM's max_model_len). */
  maxLen?: number;
  /** Rows `[start, end)` of the b*t query rows (row = bi*t + ti); the result is `[end-start, width]`. */
  rows?: [number, number];
  /** Output buffer of the result's length (Float32Array). */
  out?: Float32Array;
  /** Memory guard for the output (default: min(4 GiB, half the machine's memory)). */
  maxBytes?: number;
  /** `false` forces the plain TypeScript kernels; default: WebAssembly SIMD where available. */
  simd?: boolean;
}

/** Keys per tile: 512 keys x d = 128 float32 is 256 KiB, an L2-sized block. */
export const KEY_BLOCK = 512;

interface KeyLayout {
  form: 'float32' | 'int8' | 'fp8';
  /** Tokens per page of the storage (contiguous: s per sequence). */
  pageSize: number;
  numPages: number;
  d: number;
}

function keyLayout(k: IndexerKeys): KeyLayout {
  if (isFp8Keys(k)) {
    const [numPages, pageSize, d] = checkFp8Keys('k', k);
    return { form: 'fp8', pageSize, numPages, d };
  }
  if (isQuantizedKeys(k)) {
    const [numPages, pageSize, d] = checkQuantizedKeys(k);
    return { form: 'int8', pageSize, numPages, d };
  }
  const [numPages, pageSize, d] = checkTensor('k', k, Float32Array, ['b', 's', 'd']);
  return { form: 'float32', pageSize, numPages, d };
}

/**
 * Checks a block table [b, maxBlocks] against the sequence lengths: every
 * block a sequence uses exists and names a page in [0, numPages). Returns maxBlocks.
 */
export function checkBlockTable(table: unknown, b: number, seqLens: Int32Array, pageSize: number, numPages: number): number {
  const [bt, maxBlocks] = checkTensor('blockTable', table, Int32Array, ['b', 'maxBlocks']);
  checkSame('blockTable', bt, 'blockTable b', b, 'the batch b');
  const data = (table as Tensor<Int32Array>).data;
  for (let bi = 0; bi < b; bi++) {
    const used = Math.ceil(seqLens[bi] / pageSize);
    if (used > maxBlocks) {
      throw new RangeError(`blockTable: sequence ${bi} has length ${seqLens[bi]}, which needs ${used} blocks of ${pageSize}, but the table has ${maxBlocks} per sequence`);
    }
    for (let j = 0; j < used; j++) {
      const page = data[bi * maxBlocks + j];
      if (page < 0 || page >= numPages) {
        throw new RangeError(`blockTable: sequence ${bi}, block ${j} is ${page}; expected a page in [0, ${numPages})`);
      }
    }
  }
  return maxBlocks;
}

/** Every row sees [0, width), or its causal prefix j <= ti + causalOffset. */
function plainRowKeys(b: number, t: number, width: number, causalOffset: number | undefined, alloc: Alloc) {
  const lo = alloc(Int32Array, b * t), hi = alloc(Int32Array, b * t);
  for (let r = 0; r < b * t; r++) hi[r] = causalOffset === undefined ? width : Math.max(0, Math.min(width, (r % t) + causalOffset + 1));
  return { lo, hi, base: null, width };
}

/** Builds the plan of `indexerScores` (validates everything first). */
export function planIndexerScores(
  q: Tensor<Float32Array>,
  k: IndexerKeys,
  w: Tensor<Float32Array>,
  opts: IndexerScoresOptions,
  alloc: Alloc,
): Plan<Tensor<Float32Array>> {
  const [b, t, h, d] = checkTensor('q', q, Float32Array, ['b', 't', 'h', 'd']);
  const layout = keyLayout(k);
  const [bw, tw, hw] = checkTensor('w', w, Float32Array, ['b', 't', 'h']);
  checkSame('indexerScores', layout.d, 'k.shape[2] (d)', d, 'q.shape[3] (d)');
  checkSame('indexerScores', bw, 'w.shape[0] (b)', b, 'q.shape[0] (b)');
  checkSame('indexerScores', tw, 'w.shape[1] (t)', t, 'q.shape[1] (t)');
  checkSame('indexerScores', hw, 'w.shape[2] (h)', h, 'q.shape[2] (h)');
  const weightScale = opts.weightScale === undefined ? 1 : checkFinite('weightScale', opts.weightScale);
  const precision = opts.precision === undefined ? 'float32' : checkOneOf('precision', opts.precision, ['float32', 'int8', 'int7', 'fp8'] as const);
  if (layout.form === 'int8' && precision !== 'int8' && precision !== 'int7') {
    throw new RangeError(`k: int8 keys (quantizeKeys) need precision 'int8' or 'int7', got precision '${precision}'`);
  }
  if (layout.form === 'fp8' && precision !== 'fp8') {
    throw new RangeError(`k: FP8 keys (quantizeKeysFp8) need precision 'fp8', got precision '${precision}'`);
  }
  if (opts.causalOffset !== undefined) checkInteger('causalOffset', opts.causalOffset);
  if (opts.simd !== undefined && typeof opts.simd !== 'boolean') {
    throw new TypeError(`simd: expected a boolean, got ${typeof opts.simd}`);
  }
  // Decided on the calling thread: where its module cannot load (no SIMD, or
  // a browser main thread before initSimd()), the TypeScript kernels run.
  const simdReady = opts.simd === false ? false : simdModule() !== null;
  if (opts.simd === true && !simdReady) {
    throw new RangeError('simd: true needs the WebAssembly SIMD module, which this engine cannot load (no SIMD, or call initSimd() first); leave simd unset to fall back');
  }

  // Where each row's keys are: contiguous [b, s], one packed ragged run, or pages through a block table.
  const paged = opts.blockTable !== undefined;
  let width: number;
  let pageSize = layout.pageSize;
  let maxBlocks = 0;
  let blockTable: Int32Array | null = null;
  let keyEnd: Int32Array | null = null;
  if (paged) {
    if (opts.ragged !== undefined) throw new RangeError('blockTable and ragged: a paged call gives each sequence its length with seqLens');
    if (opts.seqLens === undefined) throw new RangeError('blockTable: a paged call needs seqLens (Int32Array [b], the tokens of each sequence)');
    if (!(opts.seqLens instanceof Int32Array) || opts.seqLens.length !== b) {
      throw new TypeError(`seqLens: expected an Int32Array of length ${b} (b, one length per sequence), got ${opts.seqLens instanceof Int32Array ? `length ${opts.seqLens.length}` : describe(opts.seqLens)}`);
    }
    let longest = 0;
    for (const n of opts.seqLens) longest = Math.max(longest, n);
    // Positions are int32 (seqLens); a wider row would only be -Infinity, and its key-block tiling O(maxLen) even for no rows.
    width = opts.maxLen === undefined ? Math.max(1, longest) : checkSizeAtMost('maxLen', opts.maxLen, 0x7fffffff, 'positions are int32, as seqLens');
    maxBlocks = checkBlockTable(opts.blockTable, b, opts.seqLens, pageSize, layout.numPages);
    blockTable = opts.blockTable!.data;
  } else {
    if (opts.maxLen !== undefined) throw new RangeError('maxLen: only a paged call (blockTable) takes maxLen; the width is s');
    if (opts.ragged === undefined) checkSame('indexerScores', layout.numPages, 'k.shape[0] (b)', b, 'q.shape[0] (b)');
    else if (layout.numPages !== 1) throw new RangeError(`k: a ragged call packs the keys as [1, totalK, d], got ${layout.numPages} sequences in k`);
    width = pageSize;
  }
  const keys = resolveRowKeys(opts, b, t, width, alloc, opts.ragged !== undefined) ?? plainRowKeys(b, t, width, opts.causalOffset, alloc);
  width = keys.width;
  if (paged) {
    keyEnd = alloc(Int32Array, b * t);
    for (let r = 0; r < b * t; r++) keyEnd[r] = opts.seqLens![Math.floor(r / t)];
  } else if (opts.ragged !== undefined) {
    const { cuSeqlensQ: cuQ, cuSeqlensK: cuK } = opts.ragged;
    keyEnd = alloc(Int32Array, b * t);
    for (let i = 0; i + 1 < cuQ.length; i++) keyEnd.fill(cuK[i + 1] - cuK[i], cuQ[i], cuQ[i + 1]);
  }

  let hadamard = false;
  let ue8m0 = false;
  if (precision === 'fp8') {
    if (d > FP8_BLOCK) throw new RangeError(`precision 'fp8': needs d <= ${FP8_BLOCK} (one scale per key and head, DeepSeek's layout), got d = ${d}`);
    // Float32 keys are quantized into FP8 pages of their own tokens: float32 scales after the codes (quantizeKeysFp8's rule).
    if (!isFp8Keys(k) && (pageSize * d) % 4 !== 0) {
      throw new RangeError(`k: precision 'fp8' quantizes float32 keys into FP8 pages, which need ${paged ? 'pageSize' : 's'} * d a multiple of 4 (the scales are float32 after the codes), got ${pageSize} * ${d}`);
    }
    hadamard = isFp8Keys(k) ? k.hadamard : true;
    if (opts.hadamard !== undefined) {
      if (typeof opts.hadamard !== 'boolean') throw new TypeError(`hadamard: expected a boolean, got ${describe(opts.hadamard)}`);
      if (isFp8Keys(k) && opts.hadamard !== k.hadamard) {
        throw new RangeError(`hadamard: the FP8 keys were quantized with hadamard ${k.hadamard}, so the queries must be too; got hadamard ${opts.hadamard}`);
      }
      hadamard = opts.hadamard;
    }
    if (hadamard && (d & (d - 1)) !== 0) throw new RangeError(`hadamard: needs d a power of 2, got d = ${d}`);
    ue8m0 = checkOneOf('scaleFormat', opts.scaleFormat ?? 'float32', ['float32', 'ue8m0'] as const) === 'ue8m0';
  } else if (opts.hadamard !== undefined || opts.scaleFormat !== undefined) {
    throw new RangeError(`hadamard and scaleFormat: only precision 'fp8' takes them, got precision '${precision}'`);
  }

  const [rowStart, rowEnd] = checkRows(opts.rows, b * t);
  const nRows = rowEnd - rowStart;
  const length = nRows * width;
  let out: Float32Array;
  if (opts.out !== undefined) {
    out = checkOut('out', opts.out, Float32Array, length);
  } else {
    checkBytes(`indexerScores output [${nRows}, ${width}] float32`, length * 4, opts.maxBytes, 'score query blocks with rows: [start, end)');
    out = alloc(Float32Array, length);
  }

  const steps: Step[] = [];
  let q8: Uint8Array | null = null, qScales: Float32Array | null = null;
  let k8: Uint8Array | null = null;
  if (precision === 'fp8') {
    q8 = alloc(Uint8Array, b * t * h * d);
    qScales = alloc(Float32Array, b * t * h);
    steps.push({ kernel: 'indexer.fp8.queries', args: { q: q.data, h, d, hadamard, ue8m0, q8, qScales }, rows: [rowStart, rowEnd], writes: ['q8', 'qScales'] });
    if (isFp8Keys(k)) k8 = k.data;
    else {
      // Float32 keys quantized once for this call, into the page layout of their own pages.
      const slots = layout.numPages * pageSize;
      k8 = alloc(Uint8Array, slots * (d + 4));
      steps.push({ kernel: 'indexer.fp8.keys', args: { k: (k as Tensor<Float32Array>).data, d, hadamard, ue8m0, data: k8, pageSize }, rows: [0, slots], writes: ['data'] });
    }
  }
  const useSimd = simdReady;
  const kernel = `indexer.scores${precision === 'int8' ? 'Int8' : precision === 'int7' ? 'Int7' : precision === 'fp8' ? 'Fp8' : ''}${useSimd ? 'Wasm' : 'Ts'}`;
  const args = {
    q: q.data,
    k: layout.form === 'float32' ? (k as Tensor<Float32Array>).data : null,
    kq: layout.form === 'int8' ? (k as QuantizedKeys).values.data : null,
    kScales: layout.form === 'int8' ? (k as QuantizedKeys).scales.data : null,
    k8, q8, qScales,
    w: w.data,
    out,
    t, h, d, width, rowStart, nRows, keyBlock: KEY_BLOCK, weightScale,
    lo: keys.lo, hi: keys.hi, base: keys.base, pageSize, blockTable, maxBlocks, keyEnd,
  };
  steps.push({ kernel: 'indexer.fillOutside', args, rows: [rowStart, rowEnd], writes: ['out'] });
  steps.push({ kernel, args, rows: [0, tileCount(keys.lo, keys.hi, rowStart, nRows, KEY_BLOCK)], writes: ['out'] });
  return {
    steps,
    finish: () => ({ data: out, shape: opts.rows === undefined ? [b, t, width] : [nRows, width] }),
  };
}

/**
 * The lightning indexer's scores.
 *
 * - q [b, t, h, d] Float32Array: indexer queries;
 * - k: indexer keys (one head, shared by all h), [b, s, d] Float32Array; for
 *   int8 and int7 also keys quantized once by `quantizeKeys`, for fp8 by
 *   `quantizeKeysFp8` (a cache; bit-identical scores); with `blockTable`, a
 *   paged cache of the same forms, [numPages, pageSize, d(+4)];
 * - w [b, t, h] Float32Array: per-query head weights.
 *
 * Returns I [b, t, width] Float32Array (or [end-start, width] with `rows`),
 * I = weightScale * sum_h w * ReLU(q . k), accumulated in float32 or better,
 * never materialising [b, t, s, h]. width is s; with `ragged` (q [1, totalQ,
 * h, d], k [1, totalK, d]) the longest sequence, positions numbered within
 * each sequence; with `blockTable` the longest sequence or `maxLen`. A key
 * a row does not see (causal offset, window, seqLens, ragged) holds
 * -Infinity and costs nothing.
 */
export function indexerScores(
  q: Tensor<Float32Array>,
  k: IndexerKeys,
  w: Tensor<Float32Array>,
  opts: IndexerScoresOptions = {},
): Tensor<Float32Array> {
  checkKnownOptions('indexerScores', opts, ['causalOffset', 'window', 'seqLens', 'shortSequences', 'ragged', 'weightScale', 'precision', 'hadamard', 'scaleFormat', 'blockTable', 'maxLen', 'rows', 'out', 'maxBytes', 'simd']);
  return runPlan(planIndexerScores(q, k, w, opts, allocLocal), indexerKernels);
}
