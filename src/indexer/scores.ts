/**
 * indexerScores: the lightning indexer's scores,
 * I[b,t,s] = weightScale * sum_h w[b,t,h] * ReLU(q[b,t,h,:] . k[b,s,:]).
 */
import { allocLocal, type Alloc, type Tensor } from '../tensor.js';
import type { Plan } from '../plan.js';
import { runPlan } from '../plan.js';
import { indexerKernels } from './kernels.js';
import { checkBytes, checkFinite, checkInteger, checkOneOf, checkOut, checkRows, checkSame, checkTensor } from '../validate.js';
import { simdModule } from '../simd/index.js';
import { checkQuantizedKeys, isQuantizedKeys, type QuantizedKeys } from './quantized-keys.js';

export interface IndexerScoresOptions {
  /**
   * Multiplies every head weight (default 1). DeepSeek-V3.2 and MaxText use
   * h^-0.5 * d^-0.5 (their softmax scale d^-0.5 folded into the weights);
   * the caller chooses, nothing is hidden.
   */
  weightScale?: number;
  /**
   * 'float32' (default), or 'int8': q and k quantized per 128-element block
   * (one float32 scale each, DeepSeek's block-128 scheme), integer dots,
   * scales, ReLU and weights in float32. A NaN or Infinity makes its
   * block's scale NaN, so the scores using it are NaN.
   * 'int7': as 'int8' with the queries at 63 levels (values in [-63, 63],
   * scale amax / 63) against int8 keys: the operands of WebAssembly's
   * relaxed i8 x i7 dot, about twice as fast where the relaxed module runs
   * (browsers), the same bits everywhere (docs/indexer.md).
   */
  precision?: 'float32' | 'int8' | 'int7';
  /**
   * Causal eligibility: query ti sees key j iff j <= ti + causalOffset
   * (s - t for a query block at the end of the cache). Ineligible scores are
   * -Infinity and are not computed. Top-k's own eligibility (its
   * causalOffset or mask) is the real guard: a -Infinity score is an
   * ordinary value to top-k and would be selected when too few keys are
   * eligible.
   */
  causalOffset?: number;
  /** Rows `[start, end)` of the b*t query rows (row = bi*t + ti); the result is `[end-start, s]`. */
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

/** Builds the plan of `indexerScores` (validates everything first). */
export function planIndexerScores(
  q: Tensor<Float32Array>,
  k: Tensor<Float32Array> | QuantizedKeys,
  w: Tensor<Float32Array>,
  opts: IndexerScoresOptions,
  alloc: Alloc,
): Plan<Tensor<Float32Array>> {
  const [b, t, h, d] = checkTensor('q', q, Float32Array, ['b', 't', 'h', 'd']);
  const quantized = isQuantizedKeys(k);
  const [bk, s, dk] = quantized ? checkQuantizedKeys(k) : checkTensor('k', k, Float32Array, ['b', 's', 'd']);
  const [bw, tw, hw] = checkTensor('w', w, Float32Array, ['b', 't', 'h']);
  checkSame('indexerScores', bk, 'k.shape[0] (b)', b, 'q.shape[0] (b)');
  checkSame('indexerScores', dk, 'k.shape[2] (d)', d, 'q.shape[3] (d)');
  checkSame('indexerScores', bw, 'w.shape[0] (b)', b, 'q.shape[0] (b)');
  checkSame('indexerScores', tw, 'w.shape[1] (t)', t, 'q.shape[1] (t)');
  checkSame('indexerScores', hw, 'w.shape[2] (h)', h, 'q.shape[2] (h)');
  const weightScale = opts.weightScale === undefined ? 1 : checkFinite('weightScale', opts.weightScale);
  const precision = opts.precision === undefined ? 'float32' : checkOneOf('precision', opts.precision, ['float32', 'int8', 'int7'] as const);
  if (quantized && precision === 'float32') {
    throw new RangeError(`k: quantized keys (quantizeKeys) need precision 'int8' or 'int7', got precision '${precision}'`);
  }
  const causal = opts.causalOffset !== undefined;
  const offset = causal ? checkInteger('causalOffset', opts.causalOffset) : 0;
  if (opts.simd !== undefined && typeof opts.simd !== 'boolean') {
    throw new TypeError(`simd: expected a boolean, got ${typeof opts.simd}`);
  }
  // Decided on the calling thread: where its module cannot load (no SIMD, or
  // a browser main thread before initSimd()), the TypeScript kernels run.
  const simdReady = opts.simd === false ? false : simdModule() !== null;
  if (opts.simd === true && !simdReady) {
    throw new RangeError('simd: true needs the WebAssembly SIMD module, which this engine cannot load (no SIMD, or call initSimd() first); leave simd unset to fall back');
  }
  const [rowStart, rowEnd] = checkRows(opts.rows, b * t);
  const nRows = rowEnd - rowStart;
  const length = nRows * s;
  let out: Float32Array;
  if (opts.out !== undefined) {
    out = checkOut('out', opts.out, Float32Array, length);
  } else {
    checkBytes(`indexerScores output [${nRows}, ${s}] float32`, length * 4, opts.maxBytes, 'score query blocks with rows: [start, end)');
    out = alloc(Float32Array, length);
  }
  const useSimd = simdReady;
  const kernel = `indexer.scores${precision === 'int8' ? 'Int8' : precision === 'int7' ? 'Int7' : ''}${useSimd ? 'Wasm' : 'Ts'}`;
  const nTiles = nRows * Math.ceil(s / KEY_BLOCK);
  return {
    steps: [
      {
        kernel,
        args: {
          q: q.data,
          k: quantized ? null : k.data,
          kq: quantized ? k.values.data : null,
          kScales: quantized ? k.scales.data : null,
          w: w.data,
          out,
          t, s, h, d, rowStart, nRows, keyBlock: KEY_BLOCK, weightScale, causal, offset,
        },
        rows: [0, nTiles],
        writes: ['out'],
      },
    ],
    finish: () => ({ data: out, shape: opts.rows === undefined ? [b, t, s] : [nRows, s] }),
  };
}

/**
 * The lightning indexer's scores.
 *
 * - q [b, t, h, d] Float32Array: indexer queries;
 * - k [b, s, d] Float32Array: indexer keys (one head, shared by all h); for
 *   int8 and int7, also keys quantized once by `quantizeKeys` (bit-identical scores);
 * - w [b, t, h] Float32Array: per-query head weights.
 *
 * Returns I [b, t, s] Float32Array (or [end-start, s] with `rows`),
 * I = weightScale * sum_h w * ReLU(q . k), accumulated in float32 or better,
 * never materialising [b, t, s, h]. Causally ineligible keys hold -Infinity.
 */
export function indexerScores(
  q: Tensor<Float32Array>,
  k: Tensor<Float32Array> | QuantizedKeys,
  w: Tensor<Float32Array>,
  opts: IndexerScoresOptions = {},
): Tensor<Float32Array> {
  return runPlan(planIndexerScores(q, k, w, opts, allocLocal), indexerKernels);
}
