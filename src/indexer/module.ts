/**
 * lightningIndexer: DeepSeek-V3.2's indexer module (MaxText's `Indexer`),
 * from weights and hidden states to the top-k keys of every query.
 *
 *   q      = qr @ wqB^T                      [b, t, h, d]
 *   k      = LayerNorm(x @ wk^T; kNorm)      [b, t, d]   (eps 1e-6, with bias)
 *   RoPE   on the first ropeDim dims of q and k, non-interleaved: pairs
 *          (i, i + ropeDim/2), angle = position * freq[i]
 *   (optional) Hadamard rotation of q and k (DeepSeek's rotate_activation)
 *   keys   = [kCache; k]                     [b, s, d]  (s = sPast + t)
 *   w      = (x @ weightsProj^T) * h^-0.5 * d^-0.5      [b, t, h]
 *   scores = indexerScores(q, keys, w)       [b, t, s]
 *   top-k  over eligible keys (causal: j <= sPast + ti; and `mask`),
 *          k' = min(topK, s): with s <= topK every eligible key is kept.
 *
 * Weights use the PyTorch `nn.Linear` layout [out, in] (DeepSeek's
 * checkpoints); MaxText's `kernel`s are their transposes.
 */
import { allocLocal, allocShared, describe, product, type Alloc, type MaskData, type MaskForm, type Tensor } from '../tensor.js';
import { checkBytes, checkFinite, checkOneOf, checkSame, checkSize, checkTensor } from '../validate.js';
import { indexerScores, type IndexerScoresOptions } from './scores.js';
import { checkQuantizedKeys, isQuantizedKeys, quantizeKeys, quantizeKeysFp8, type QuantizedKeys } from './quantized-keys.js';
import { checkFp8Keys, isFp8Keys, type Fp8Keys, type ScaleFormat } from './fp8.js';
import { prepareRows, projectionRows } from './projection.js';
import { runKernel, type KernelArgs, type KernelTable, type Step } from '../plan.js';
import { checkWeight, isWeight, shareWeight, type Weight } from '../weights/weight.js';
import { checkLinearReading, type GemmImpl, type LinearOptions } from '../weights/linear.js';
import { weightKernels } from '../weights/kernels.js';
import { FP8_BLOCK } from './fp8.js';
import { topk, type TopkOptions } from '../topk/topk.js';
import { generateMask } from '../mask/masks.js';
import { checkKnownOptions } from '../options.js';

/**
 * A projection's weight [out, in]: a float32 tensor, or a `Weight` in the
 * form a checkpoint stores it (float32, bf16, FP8 e4m3 with 128 x 128 block
 * scales; src/weights/weight.ts), read by `linear`'s kernels as it is.
 */
export type ProjectionWeight = Tensor<Float32Array> | Weight;

/**
 * How the projections read an FP8 weight, as `linear` (DeepSeek's
 * gemm_impl): gemmImpl 'bf16' (default: dequantized, rounded to bf16, a
 * float GEMM) or 'fp8' (act_quant of the input with scaleFormat 'float32'
 * or 'ue8m0', then the FP8 GEMM). float32 and bf16 weights are always the
 * float GEMM.
 */
export type ProjectionReading = Pick<LinearOptions, 'gemmImpl' | 'scaleFormat'>;

export interface IndexerWeights {
  /** wq_b [h*d, qRank]: q[b,t,h*d] = qr @ wqB^T, then viewed as [h, d]. */
  wqB: ProjectionWeight;
  /** wk [d, dim]: k = x @ wk^T. */
  wk: ProjectionWeight;
  /** LayerNorm scale on k, [d]. */
  kNormWeight: Tensor<Float32Array>;
  /** LayerNorm bias on k, [d]. */
  kNormBias: Tensor<Float32Array>;
  /** weights_proj [h, dim]: head weights = x @ weightsProj^T. */
  weightsProj: ProjectionWeight;
}

/** The key cache's form: float32 keys, `quantizeKeys` output (int8) or `quantizeKeysFp8` output (fp8). */
export type KeyCache = Tensor<Float32Array> | QuantizedKeys | Fp8Keys;

export interface IndexerInputs<K extends KeyCache = Tensor<Float32Array>> {
  /** Hidden states of the t new tokens, [b, t, dim]. */
  x: Tensor<Float32Array>;
  /** Low-rank queries (MLA's q_norm(wq_a(x))), [b, t, qRank]. */
  qr: Tensor<Float32Array>;
  /**
   * Keys of the sPast earlier tokens, [b, sPast, d], as `keys` of an earlier
   * call returned them: float32, or quantized (`quantizeKeys` for int8 and
   * int7, `quantizeKeysFp8` for fp8; the new keys are then quantized and
   * appended, and scores are bit-identical). A growing cache is better kept in
   * `createDsaCache`, which appends without copying earlier tokens.
   */
  kCache?: K;
}

export interface LightningIndexerOptions {
  /** Keys per query (default 2048, DeepSeek-V3.2's index_topk). */
  topK?: number;
  /** Leading dims of each head that get RoPE (default 64). */
  ropeDim?: number;
  /** RoPE base (default 10000): freq[i] = theta^(-2i/ropeDim). */
  ropeTheta?: number;
  /** Inverse frequencies [ropeDim/2] (e.g. YaRN-corrected); overrides ropeTheta. */
  ropeFreqs?: Float32Array;
  /** LayerNorm epsilon (default 1e-6). */
  eps?: number;
  /** Query ti (position sPast + ti) sees keys j <= sPast + ti (default true). */
  causal?: boolean;
  /** Extra eligibility [b, t, s], any mask form (kept keys are eligible). */
  mask?: Tensor<MaskData>;
  /** Also return the top-k keys as a mask of this form. */
  maskForm?: MaskForm;
  /**
   * DeepSeek's rotate_activation: a Hadamard transform (scaled d^-0.5) of q
   * and k; d a power of 2. No-op for exact scores; helps int8 and fp8.
   * Default false, and true for precision 'fp8' (with an FP8 kCache, its own flag).
   */
  hadamard?: boolean;
  /** Score precision (see indexerScores). */
  precision?: 'float32' | 'int8' | 'int7' | 'fp8';
  /** fp8: scale rounding of act_quant, 'float32' (default) or 'ue8m0'. */
  scaleFormat?: ScaleFormat;
  /** How the projections read FP8 weights (default { gemmImpl: 'bf16' }); see `ProjectionReading`. */
  linear?: ProjectionReading;
  /** `false` forces the TypeScript kernels. */
  simd?: boolean;
  /** Memory guard for everything the call allocates. */
  maxBytes?: number;
}

export interface LightningIndexerResult<K extends KeyCache = Tensor<Float32Array>> {
  /** [b, t, s] scores; ineligible (causal) keys hold -Infinity. */
  scores: Tensor<Float32Array>;
  /** [b, t, k'] top-k scores, descending; -Infinity in empty slots. */
  values: Tensor<Float32Array>;
  /** [b, t, k'] key indices, ties by lower index; -1 in empty slots. k' = min(topK, s). */
  indices: Tensor<Int32Array>;
  /** [b, s, d] the keys (kCache followed by the new ones), in kCache's form (float32 without one): the next call's kCache. */
  keys: K;
  /** [b, t, s] (or bits [b, t, ceil(s/32)]) when `maskForm` is given. */
  mask?: Tensor<MaskData>;
}

/** The options lightningIndexer takes. */
export const INDEXER_OPTIONS = ['topK', 'ropeDim', 'ropeTheta', 'ropeFreqs', 'eps', 'causal', 'mask', 'maskForm', 'hadamard', 'precision', 'scaleFormat', 'linear', 'simd', 'maxBytes'];

function asWeight(w: ProjectionWeight): Weight {
  return isWeight(w) ? w : { format: 'float32', shape: [w.shape[0], w.shape[1]], data: w.data };
}

/** The kernels the projections run (the synchronous path; a step's table and the pool's hold them too). */
const projectionKernels: KernelTable = { ...weightKernels, 'indexer.projections': projectionRows };

/**
 * The steps of the indexer's three projections of n tokens (weights
 * checked by checkIndexerWeights, the reading by checkLinearReading): act_quant of qr and of x where an FP8
 * weight reads them by the FP8 GEMM (over tokens), then
 * 'indexer.projections' over every output feature (the pool splits them).
 * q [n, h*d] and w [n, h] from `alloc`, k [n, d] from `kAlloc`.
 */
export function planProjections(
  weights: IndexerWeights,
  qr: Float32Array,
  x: Float32Array,
  n: number,
  dims: { h: number; d: number; dim: number; qRank: number },
  reading: { gemmImpl: GemmImpl; scaleFormat: ScaleFormat },
  simd: boolean,
  alloc: Alloc,
  kAlloc: Alloc = alloc,
): { steps: Step[]; q: Float32Array; k: Float32Array; w: Float32Array } {
  const { h, d, dim, qRank } = dims;
  const { gemmImpl, scaleFormat } = reading;
  const ue8m0 = scaleFormat === 'ue8m0';
  const q = alloc(Float32Array, n * h * d), k = kAlloc(Float32Array, n * d), w = alloc(Float32Array, n * h);
  const args: KernelArgs = { qr, x, q, k, w, n, dim, qRank, h, d, simd, qrQ: null, qrS: null, xQ: null, xS: null };
  const fp8 = (name: 'wqB' | 'wk' | 'weightsProj') => {
    const weight = asWeight(weights[name]);
    args[name] = weight.data;
    args[`${name}Format`] = weight.format;
    args[`${name}Scale`] = weight.format === 'fp8' ? weight.scale : null;
    return (args[`${name}Fp8`] = weight.format === 'fp8' && gemmImpl === 'fp8');
  };
  const steps: Step[] = [];
  const quantize = (input: Float32Array, inDim: number, codes: string, scales: string) => {
    const xq = alloc(Uint8Array, n * inDim), xs = alloc(Float32Array, n * Math.ceil(inDim / FP8_BLOCK));
    args[codes] = xq;
    args[scales] = xs;
    steps.push({ kernel: 'weights.actQuant', args: { x: input, n, inDim, ue8m0, xq, xs }, rows: [0, n], writes: ['xq', 'xs'] });
  };
  const qFp8 = fp8('wqB'), kFp8 = fp8('wk'), wFp8 = fp8('weightsProj');
  if (qFp8) quantize(qr, qRank, 'qrQ', 'qrS');
  if (kFp8 || wFp8) quantize(x, dim, 'xQ', 'xS');
  steps.push({ kernel: 'indexer.projections', args, rows: [0, h * d + d + h], writes: ['q', 'k', 'w'] });
  return { steps, q, k, w };
}

/**
 * The weights with every tensor backed by SharedArrayBuffer (copied once;
 * tensors already shared are kept), so pool calls use them in place instead
 * of copying them into shared memory on every call. Weights in a stored
 * form stay in it (`shareWeight`).
 */
export function shareWeights(weights: IndexerWeights): IndexerWeights {
  checkIndexerWeights(weights);
  const share = (x: Tensor<Float32Array>): Tensor<Float32Array> => {
    if (x.data.buffer instanceof SharedArrayBuffer) return x;
    const data = allocShared(Float32Array, x.data.length);
    data.set(x.data);
    return { data, shape: x.shape.slice() };
  };
  const project = (w: ProjectionWeight): ProjectionWeight => (isWeight(w) ? shareWeight(w) : share(w));
  return { wqB: project(weights.wqB), wk: project(weights.wk), kNormWeight: share(weights.kNormWeight), kNormBias: share(weights.kNormBias), weightsProj: project(weights.weightsProj) };
}

/** A projection's [out, in], a float32 tensor or a `Weight`, checked by name. */
function checkProjection(name: string, w: unknown, dims: [string, string]): number[] {
  return isWeight(w) ? checkWeight(name, w) : checkTensor(name, w, Float32Array, dims);
}

/** The indexer's dimensions from its weights, each checked by name: h heads, d head dim, dim (model), qRank. */
export function checkIndexerWeights(weights: IndexerWeights): { h: number; d: number; dim: number; qRank: number } {
  if (typeof weights !== 'object' || weights === null) throw new TypeError(`weights: expected { wqB, wk, kNormWeight, kNormBias, weightsProj }, got ${describe(weights)}`);
  const [h, dim] = checkProjection('weights.weightsProj', weights.weightsProj, ['h', 'dim']);
  const [d, dimK] = checkProjection('weights.wk', weights.wk, ['d', 'dim']);
  checkSame('lightningIndexer', dimK, 'weights.wk dim', dim, 'weights.weightsProj dim');
  const [hd, qRank] = checkProjection('weights.wqB', weights.wqB, ['h*d', 'qRank']);
  checkSame('lightningIndexer', hd, 'weights.wqB rows', h * d, 'h*d');
  checkSame('lightningIndexer', checkTensor('weights.kNormWeight', weights.kNormWeight, Float32Array, ['d'])[0], 'weights.kNormWeight d', d, 'd');
  checkSame('lightningIndexer', checkTensor('weights.kNormBias', weights.kNormBias, Float32Array, ['d'])[0], 'weights.kNormBias d', d, 'd');
  return { h, d, dim, qRank };
}

/** RoPE and LayerNorm settings from the options: ropeDim, the inverse frequencies, eps. */
export function ropeSettings(opts: Pick<LightningIndexerOptions, 'ropeDim' | 'ropeTheta' | 'ropeFreqs' | 'eps'>, d: number): { ropeDim: number; freqs: Float64Array; eps: number } {
  const ropeDim = opts.ropeDim ?? 64;
  if (!Number.isInteger(ropeDim) || ropeDim < 0 || ropeDim % 2 !== 0 || ropeDim > d) {
    throw new RangeError(`ropeDim: expected an even integer in [0, d = ${d}], got ${String(ropeDim)}`);
  }
  const freqs = new Float64Array(ropeDim / 2);
  if (opts.ropeFreqs !== undefined) {
    if (!(opts.ropeFreqs instanceof Float32Array) || opts.ropeFreqs.length !== ropeDim / 2) {
      throw new RangeError(`ropeFreqs: expected a Float32Array of length ropeDim/2 = ${ropeDim / 2}, got ${opts.ropeFreqs instanceof Float32Array ? `length ${opts.ropeFreqs.length}` : typeof opts.ropeFreqs}`);
    }
    freqs.set(opts.ropeFreqs);
  } else {
    const theta = checkFinite('ropeTheta', opts.ropeTheta ?? 10000);
    // precompute_freqs_cis's float32: 1 / theta ** (2i / ropeDim), each step rounded.
    for (let i = 0; i < ropeDim / 2; i++) freqs[i] = Math.fround(1 / Math.fround(theta ** Math.fround((2 * i) / ropeDim)));
  }
  const eps = checkFinite('eps', opts.eps ?? 1e-6);
  return { ropeDim, freqs, eps };
}

interface Prepared {
  q: Tensor<Float32Array>;
  keys: KeyCache;
  w: Tensor<Float32Array>;
  s: number;
  k: number;
  scoreOpts: IndexerScoresOptions;
  topkOpts: TopkOptions;
  maskForm: MaskForm | undefined;
  maxBytes: number | undefined;
}

/** Validates everything and runs the projections, LayerNorm, RoPE and Hadamard: what precedes the scores. */
export function prepareLightningIndexer(weights: IndexerWeights, inputs: IndexerInputs<KeyCache>, opts: LightningIndexerOptions, alloc: Alloc): Prepared {
  const [b, t, dim] = checkTensor('inputs.x', inputs.x, Float32Array, ['b', 't', 'dim']);
  const [bq, tq, qRank] = checkTensor('inputs.qr', inputs.qr, Float32Array, ['b', 't', 'qRank']);
  checkSame('lightningIndexer', bq, 'inputs.qr b', b, 'inputs.x b');
  checkSame('lightningIndexer', tq, 'inputs.qr t', t, 'inputs.x t');
  const { h, d, dim: dimW, qRank: qRankW } = checkIndexerWeights(weights);
  checkSame('lightningIndexer', dimW, 'weights.weightsProj dim', dim, 'inputs.x dim');
  checkSame('lightningIndexer', qRankW, 'weights.wqB qRank', qRank, 'inputs.qr qRank');
  const precision = opts.precision ?? 'float32';
  if (isQuantizedKeys(inputs.kCache) && precision !== 'int8' && precision !== 'int7') {
    throw new RangeError(`inputs.kCache: quantized keys need precision 'int8' or 'int7', got precision '${precision}'`);
  }
  if (isFp8Keys(inputs.kCache) && precision !== 'fp8') {
    throw new RangeError(`inputs.kCache: FP8 keys need precision 'fp8', got precision '${precision}'`);
  }
  const [bc, sPast, dc] = inputs.kCache === undefined ? [b, 0, d] : keyCacheShape(inputs.kCache);
  checkSame('lightningIndexer', bc, 'inputs.kCache b', b, 'inputs.x b');
  checkSame('lightningIndexer', dc, 'inputs.kCache d', d, 'weights.wk d');
  const s = sPast + t;
  const topK = checkSize('topK', opts.topK ?? 2048);
  const { ropeDim, freqs, eps } = ropeSettings(opts, d);
  // Flags read as booleans: a truthy 'no' would turn causal masking on, a 'yes' would leave the rotation off.
  if (opts.causal !== undefined && typeof opts.causal !== 'boolean') throw new TypeError(`causal: expected a boolean, got ${describe(opts.causal)}`);
  if (opts.hadamard !== undefined && typeof opts.hadamard !== 'boolean') throw new TypeError(`hadamard: expected a boolean, got ${describe(opts.hadamard)}`);
  const causal = opts.causal ?? true;
  let hadamard = opts.hadamard ?? (isFp8Keys(inputs.kCache) ? inputs.kCache.hadamard : precision === 'fp8');
  if (isFp8Keys(inputs.kCache) && hadamard !== inputs.kCache.hadamard) {
    throw new RangeError(`hadamard: the FP8 kCache was quantized with hadamard ${inputs.kCache.hadamard}, got hadamard ${hadamard}`);
  }
  hadamard = hadamard === true;
  if (hadamard && (d & (d - 1)) !== 0) throw new RangeError(`hadamard: needs d a power of 2, got d = ${d}`);
  const scaleFormat = opts.scaleFormat === undefined ? undefined : checkOneOf('scaleFormat', opts.scaleFormat, ['float32', 'ue8m0'] as const);
  if (isFp8Keys(inputs.kCache) && scaleFormat !== undefined && scaleFormat !== inputs.kCache.scaleFormat) {
    throw new RangeError(`scaleFormat: the FP8 kCache has scaleFormat '${inputs.kCache.scaleFormat}', got '${scaleFormat}'`);
  }
  const maskForm = opts.maskForm === undefined ? undefined : checkOneOf('maskForm', opts.maskForm, ['additive', 'bool', 'bits'] as const);
  const k = Math.min(topK, s);
  const maskBytes = maskForm === undefined ? 0 : maskForm === 'bits' ? b * t * Math.ceil(s / 32) * 4 : b * t * s * (maskForm === 'bool' ? 1 : 4);
  const bytes = 4 * (b * t * h * d + b * s * d + b * t * h + b * t * s + 2 * b * t * k + product([h * d, qRank])) + maskBytes;
  checkBytes(`lightningIndexer [b=${b}, t=${t}, s=${s}, h=${h}, d=${d}]`, bytes, opts.maxBytes, 'run query blocks (fewer tokens t per call) or output indices only');
  const useSimd = opts.simd ?? true;
  const reading = checkLinearReading('linear', opts.linear);

  // q = qr @ wqB^T, RoPE on each head's first ropeDim dims, optional Hadamard.
  const projections = planProjections(weights, inputs.qr.data, inputs.x.data, b * t, { h, d, dim, qRank }, reading, useSimd, alloc, allocLocal);
  for (const step of projections.steps) runKernel(step, projectionKernels);
  const q = projections.q; // [b*t, h*d]
  // k = LayerNorm(x @ wk^T), RoPE, optional Hadamard; appended to the cache.
  const kNew = projections.k; // [b*t, d]
  // With fp8 the rotation happens where the keys and queries are quantized (quantizeKeysFp8, the score call).
  const rotateHere = hadamard && precision !== 'fp8';
  const positions = new Int32Array(b * t);
  for (let r = 0; r < b * t; r++) positions[r] = sPast + (r % t);
  prepareRows(
    { q, k: kNew, positions, gamma: weights.kNormWeight.data, beta: weights.kNormBias.data, eps, ropeDim, freqs, h, d, rotateQ: rotateHere, rotateK: rotateHere },
    0,
    b * t,
  );
  let keys: KeyCache;
  if (isFp8Keys(inputs.kCache)) {
    const format = scaleFormat ?? (isFp8Keys(inputs.kCache) ? inputs.kCache.scaleFormat : 'float32');
    // Shared bytes when the pool will score them (alloc is allocShared there).
    const fresh = quantizeKeysFp8({ data: kNew, shape: [b, t, d] }, { hadamard, scaleFormat: format, scaleRule: inputs.kCache.scaleRule, shared: alloc === allocShared });
    keys = concatFp8Keys(inputs.kCache, fresh, alloc);
  } else if (isQuantizedKeys(inputs.kCache)) {
    // A quantized cache: quantize the new keys (per row, exactly as scoring would) and append.
    const fresh = quantizeKeys({ data: kNew, shape: [b, t, d] });
    const nb = fresh.scales.shape[2];
    const values = alloc(Int8Array, b * s * d), scales = alloc(Float32Array, b * s * nb);
    const cache = inputs.kCache;
    for (let bi = 0; bi < b; bi++) {
      values.set(cache.values.data.subarray(bi * sPast * d, (bi + 1) * sPast * d), bi * s * d);
      values.set(fresh.values.data.subarray(bi * t * d, (bi + 1) * t * d), (bi * s + sPast) * d);
      scales.set(cache.scales.data.subarray(bi * sPast * nb, (bi + 1) * sPast * nb), bi * s * nb);
      scales.set(fresh.scales.data.subarray(bi * t * nb, (bi + 1) * t * nb), (bi * s + sPast) * nb);
    }
    keys = { values: { data: values, shape: [b, s, d] }, scales: { data: scales, shape: [b, s, nb] } };
  } else {
    const data = alloc(Float32Array, b * s * d);
    for (let bi = 0; bi < b; bi++) {
      if (sPast > 0) data.set(inputs.kCache!.data.subarray(bi * sPast * d, (bi + 1) * sPast * d), bi * s * d);
      data.set(kNew.subarray(bi * t * d, (bi + 1) * t * d), (bi * s + sPast) * d);
    }
    keys = { data, shape: [b, s, d] };
  }

  // Head weights, with MaxText/DeepSeek's h^-0.5 * d^-0.5 as indexerScores' weightScale.
  const w = projections.w; // [b*t, h]

  const scoreOpts: IndexerScoresOptions = { weightScale: h ** -0.5 * d ** -0.5, maxBytes: opts.maxBytes };
  if (causal) scoreOpts.causalOffset = sPast;
  if (opts.precision !== undefined) scoreOpts.precision = opts.precision;
  if (precision === 'fp8') {
    // Float32 keys are rotated and quantized by the score call, with the queries; FP8 keys carry their own flag.
    if (scaleFormat !== undefined) scoreOpts.scaleFormat = scaleFormat;
    if (!isFp8Keys(keys)) scoreOpts.hadamard = hadamard;
  }
  if (opts.simd !== undefined) scoreOpts.simd = opts.simd;
  const topkOpts: TopkOptions = { maxBytes: opts.maxBytes };
  if (causal) topkOpts.causalOffset = sPast;
  if (opts.mask !== undefined) topkOpts.mask = opts.mask;
  return {
    q: { data: q, shape: [b, t, h, d] },
    keys,
    w: { data: w, shape: [b, t, h] },
    s, k, scoreOpts, topkOpts, maskForm, maxBytes: opts.maxBytes,
  };
}

/** [b, s, d] of a key cache in any form. */
export function keyCacheShape(cache: KeyCache): [number, number, number] {
  if (isFp8Keys(cache)) return checkFp8Keys('inputs.kCache', cache);
  if (isQuantizedKeys(cache)) return checkQuantizedKeys(cache);
  const [b, s, d] = checkTensor('inputs.kCache', cache, Float32Array, ['b', 'sPast', 'd']);
  return [b, s, d];
}

/** FP8 keys [b, s1, d + 4] followed by [b, s2, d + 4]: each sequence's page gets the codes, then the scales, of both. */
function concatFp8Keys(a: Fp8Keys, z: Fp8Keys, alloc: Alloc): Fp8Keys {
  const [b, s1, row] = a.shape, s2 = z.shape[1], d = row - 4, s = s1 + s2;
  const data = alloc(Uint8Array, b * s * row);
  for (let bi = 0; bi < b; bi++) {
    const to = bi * s * row, fa = bi * s1 * row, fz = bi * s2 * row;
    data.set(a.data.subarray(fa, fa + s1 * d), to);
    data.set(z.data.subarray(fz, fz + s2 * d), to + s1 * d);
    data.set(a.data.subarray(fa + s1 * d, fa + s1 * row), to + s * d);
    data.set(z.data.subarray(fz + s2 * d, fz + s2 * row), to + s * d + s1 * 4);
  }
  return { data, shape: [b, s, row], hadamard: a.hadamard, scaleFormat: a.scaleFormat, scaleRule: a.scaleRule };
}

/**
 * The lightning indexer module. Shapes: x [b, t, dim], qr [b, t, qRank],
 * kCache [b, sPast, d] (optional), weights as in `IndexerWeights`; h and d
 * come from weightsProj [h, dim] and wk [d, dim]. Returns scores [b, t, s],
 * the top-k values and indices [b, t, min(topK, s)], the keys [b, s, d] and,
 * with `maskForm`, the top-k mask.
 */
export function lightningIndexer<K extends KeyCache = Tensor<Float32Array>>(
  weights: IndexerWeights,
  inputs: IndexerInputs<K>,
  opts: LightningIndexerOptions = {},
): LightningIndexerResult<K> {
  checkKnownOptions('lightningIndexer', opts, INDEXER_OPTIONS);
  const p = prepareLightningIndexer(weights, inputs, opts, allocLocal);
  const scores = indexerScores(p.q, p.keys, p.w, p.scoreOpts);
  const selected = topk(scores, p.k, p.topkOpts);
  const result: LightningIndexerResult<K> = { scores, values: selected.values, indices: selected.indices, keys: p.keys as K };
  if (p.maskForm !== undefined) result.mask = generateMask(selected.indices, p.s, { form: p.maskForm, maxBytes: p.maxBytes });
  return result;
}
