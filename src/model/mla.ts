/**
 * The DSA attention layer from hidden states: DeepSeek-V3.2's `MLA.forward`
 * with its `Indexer` (inference/model.py), absorbed form, through a DSA
 * cache (src/cache/cache.ts). For m sequences of t new tokens each
 * (n = m * t rows; H = nHeads, r = qkRopeHeadDim, c = kvLoraRank):
 *
 *   qr     = q_norm(wq_a(x))                               [n, qLoraRank]   RMSNorm
 *   q      = wq_b(qr) as [n, H, nope + r]; RoPE (interleaved) on its last r
 *   kv     = wkv_a(x) as [n, c + r]: RMSNorm (kv_norm) on the first c, RoPE
 *            (interleaved) on the last r: the latent row appended to the cache
 *   q'     = [q_nope @ wkv_b's key rows, q_pe]             [n, H, c + r]
 *   step   the existing decode step (src/cache/step.ts): the indexer from x
 *          and qr (non-interleaved RoPE; interleaved for GLM-5, see
 *          indexerRopeInterleaved), top-k, sparse attention of q' over
 *          the latent rows, values = their first c dims       -> [n, H, c]
 *   o      = attention output @ wkv_b's value rows^T         [n, H * v]
 *   out    = wo(o)                                           [n, dim]
 *
 * with softmax scale (nope + r)^-0.5, times mscale^2 under YaRN. A GLM-5
 * 'shared' layer (no indexer) takes the previous full layer's top-k
 * (`indices`) and runs only the append, the slot mapping and the sparse
 * attention. Everything is one plan of kernel steps (projections from
 * src/weights/linear.ts), so the weights stay in their stored form.
 * What is the caller's: the residual, the norms around the layer, the MoE
 * or MLP, embeddings and the head (docs/model.md).
 */
import type { KernelTable, Plan, Step } from '../plan.js';
import { runPlan } from '../plan.js';
import { allocLocal, allocShared, describe, type Alloc, type Tensor, type TypedArrayConstructor } from '../tensor.js';
import { checkBytes, checkSame, checkSize, checkTensor } from '../validate.js';
import type { MlaConfig, MlaLayerWeights, IndexerLayerWeights } from './types.js';
import { checkWeight, weightBytes, type Weight } from '../weights/weight.js';
import { planLinear, type GemmImpl } from '../weights/linear.js';
import { weightKernels } from '../weights/kernels.js';
import type { ScaleFormat } from '../indexer/fp8.js';
import type { IndexerWeights } from '../indexer/module.js';
import { planDecodeStep, stepKernels, type StepOptions } from '../cache/step.js';
import { nonFiniteToken, type DsaCache } from '../cache/cache.js';
import { planSparseAttention } from '../attention/sparse.js';
import { NO_BAD_ROW } from '../mask/check.js';
import { modelKernels } from './kernels.js';
import { headWeights, headWeightsBytes } from './absorb.js';
import { mlaSoftmaxScale, ropeFrequencies } from './rope.js';

/** One layer: its shapes and its weights (a 'shared' layer has no `weights.indexer`). */
export interface MlaLayer {
  config: MlaConfig;
  weights: MlaLayerWeights;
}

export interface MlaStepInputs {
  /** [m, t, dim] Float32Array: the new tokens' hidden states (after the caller's input norm). */
  x: Tensor<Float32Array>;
  /** Int32Array [m]: the cache sequence of each row of x (default 0 .. m - 1); each at most once. */
  seqs?: Int32Array;
}

export interface MlaStepOptions {
  /**
   * [m, t, k] Int32Array: the top-k positions to attend to (a GLM-5
   * 'shared' layer: the previous full layer's `indices`, or any reuse of
   * them); the indexer does not run. Each is -1 (none) or a position in the
   * token's sequence at most its own (causal). Required for a layer
   * without indexer weights. The new tokens' indexer keys are then not
   * stored (zeros in the cache), so a layer given top-k keeps being given it.
   */
  indices?: Tensor<Int32Array>;
  /** How FP8 projection weights are read (`linear`'s gemmImpl: 'bf16' default, or 'fp8'). */
  gemmImpl?: GemmImpl;
  /** act_quant's scale rounding with gemmImpl 'fp8' ('float32' default, or 'ue8m0'). */
  scaleFormat?: ScaleFormat;
  /** Float32Array [nHeads]: FlashMLA's attention sink. */
  attnSink?: Float32Array;
  /** `false` forces the TypeScript kernels. */
  simd?: boolean;
  /** Memory guard for the step's buffers (default: min(4 GiB, half the machine's memory)). */
  maxBytes?: number;
}

export interface MlaStepResult {
  /** [m, t, dim]: the layer's output (wo), before the caller's residual add. */
  out: Tensor<Float32Array>;
  /** [m, t, k] Int32Array: the positions each new token attended to (-1: none); a shared layer's are its `indices`. */
  indices: Tensor<Int32Array>;
  /** [m * t, nHeads], natural log; +Infinity for a query with no key (FlashMLA). */
  lse: Tensor<Float32Array>;
  /** [m * t, nHeads, kvLoraRank]: the attention output over the latent rows, before wkv_b's value rows. */
  latent: Tensor<Float32Array>;
}

const STEP_OPTIONS = ['indices', 'gemmImpl', 'scaleFormat', 'attnSink', 'simd', 'maxBytes'];
const PREFILL_OPTIONS = [...STEP_OPTIONS, 'queryBlock', 'onProgress'];

function checkOptions(what: string, opts: unknown, known: readonly string[]): void {
  if (typeof opts !== 'object' || opts === null) throw new TypeError(`${what}: expected an options object, got ${describe(opts)}`);
  for (const [name, value] of Object.entries(opts)) {
    if (value !== undefined && !known.includes(name)) throw new TypeError(`${what}: unknown option '${name}' (expected one of: ${known.join(', ')})`);
  }
}

/** The layer's dimensions, each config field and weight shape checked by name. */
export function checkMlaLayer(layer: MlaLayer): {
  dim: number; heads: number; qRank: number; kvRank: number; nope: number; rope: number; v: number; indexer: boolean;
} {
  if (typeof layer !== 'object' || layer === null) throw new TypeError(`layer: expected { config, weights }, got ${describe(layer)}`);
  const { config, weights } = layer;
  if (typeof config !== 'object' || config === null) throw new TypeError(`layer.config: expected an MlaConfig, got ${describe(config)}`);
  if (typeof weights !== 'object' || weights === null) throw new TypeError(`layer.weights: expected MlaLayerWeights, got ${describe(weights)}`);
  const size = (name: keyof MlaConfig) => checkSize(`layer.config.${name}`, config[name]);
  const dim = size('dim'), heads = size('nHeads'), qRank = size('qLoraRank'), kvRank = size('kvLoraRank');
  const nope = size('qkNopeHeadDim'), rope = size('qkRopeHeadDim'), v = size('vHeadDim');
  if (rope % 2 !== 0) throw new RangeError(`layer.config.qkRopeHeadDim: expected an even size (RoPE turns pairs), got ${rope}`);
  const shape = (name: string, w: Weight, out: number, inDim: number, outName: string, inName: string) => {
    const [o, i] = checkWeight(`layer.weights.${name}`, w);
    if (o !== out || i !== inDim) throw new RangeError(`layer.weights.${name}: expected shape [${outName}, ${inName}] = [${out}, ${inDim}], got [${o}, ${i}]`);
  };
  const vector = (name: string, x: unknown, length: number, what: string) => {
    if (!(x instanceof Float32Array) || x.length !== length) {
      throw new RangeError(`layer.weights.${name}: expected a Float32Array of length ${what} = ${length}, got ${x instanceof Float32Array ? `length ${x.length}` : describe(x)}`);
    }
  };
  shape('wqA', weights.wqA, qRank, dim, 'qLoraRank', 'dim');
  vector('qNorm', weights.qNorm, qRank, 'qLoraRank');
  shape('wqB', weights.wqB, heads * (nope + rope), qRank, 'nHeads * (qkNopeHeadDim + qkRopeHeadDim)', 'qLoraRank');
  shape('wkvA', weights.wkvA, kvRank + rope, dim, 'kvLoraRank + qkRopeHeadDim', 'dim');
  vector('kvNorm', weights.kvNorm, kvRank, 'kvLoraRank');
  shape('wkvB', weights.wkvB, heads * (nope + v), kvRank, 'nHeads * (qkNopeHeadDim + vHeadDim)', 'kvLoraRank');
  shape('wo', weights.wo, dim, heads * v, 'dim', 'nHeads * vHeadDim');
  const ix = weights.indexer;
  if (ix !== undefined) {
    const h = size('indexNHeads'), d = size('indexHeadDim');
    if (rope > d) throw new RangeError(`layer.config.indexHeadDim: the indexer rotates qkRopeHeadDim = ${rope} of its dims, so needs at least that many, got ${d}`);
    shape('indexer.wqB', ix.wqB, h * d, qRank, 'indexNHeads * indexHeadDim', 'qLoraRank');
    shape('indexer.wk', ix.wk, d, dim, 'indexHeadDim', 'dim');
    vector('indexer.kNormWeight', ix.kNormWeight, d, 'indexHeadDim');
    vector('indexer.kNormBias', ix.kNormBias, d, 'indexHeadDim');
    shape('indexer.weightsProj', ix.weightsProj, h, dim, 'indexNHeads', 'dim');
    size('indexTopk');
  }
  return { dim, heads, qRank, kvRank, nope, rope, v, indexer: ix !== undefined };
}

const freqsOf = new WeakMap<MlaConfig, Float32Array>();

/** The layer's RoPE inverse frequencies (YaRN when `config.rope` is set), computed once per config object. */
export function mlaRopeFrequencies(config: MlaConfig): Float32Array {
  let freqs = freqsOf.get(config);
  if (freqs === undefined) {
    freqs = ropeFrequencies(config.qkRopeHeadDim, config.ropeTheta, config.rope);
    freqsOf.set(config, freqs);
  }
  return freqs;
}

/** The layer's softmax scale: DeepSeek's (qkNopeHeadDim + qkRopeHeadDim)^-0.5, times mscale^2 under YaRN. */
export function mlaScale(config: MlaConfig): number {
  return mlaSoftmaxScale(config.qkNopeHeadDim + config.qkRopeHeadDim, config.rope);
}

/** A weight as kernel args: format, data, scale (null unless fp8). */
function weightArgs(w: Weight) {
  return { format: w.format, data: w.data, scale: w.format === 'fp8' ? w.scale : null };
}

/** The indexer's weights as the decode step takes them: the projections as stored, the LayerNorm's as tensors. */
function indexerWeights(ix: IndexerLayerWeights): IndexerWeights {
  const vec = (x: Float32Array) => ({ data: x, shape: [x.length] });
  return { wqB: ix.wqB, wk: ix.wk, kNormWeight: vec(ix.kNormWeight), kNormBias: vec(ix.kNormBias), weightsProj: ix.weightsProj };
}

/**
 * Where dim j of an indexer head goes so that the step's non-interleaved
 * RoPE (pairs i, i + r/2) turns the interleaved pairs (2i, 2i + 1): 2i -> i,
 * 2i + 1 -> r/2 + i, the rest stay. Scores are sums over all dims of q and k
 * permuted alike, and LayerNorm treats dims alike, so the indexer with its
 * weights' rows permuted so is the interleaved one (to float32 rounding).
 */
function interleavedDim(j: number, rope: number): number {
  if (j >= rope) return j;
  return (j & 1) === 0 ? j >> 1 : rope / 2 + (j >> 1);
}

/** w with its rows permuted within each head of `d` rows (row h*d + j -> h*d + interleavedDim(j)); FP8 block scales stay, so no row may leave its 128-row block. */
function permuteRows(name: string, w: Weight, d: number, rope: number): Weight {
  const [out, inDim] = w.shape;
  const to = (row: number) => row - (row % d) + interleavedDim(row % d, rope);
  if (w.format === 'fp8') {
    for (let row = 0; row < out; row++) {
      if (to(row) >> 7 !== row >> 7) {
        throw new RangeError(`${name}: indexerRopeInterleaved moves row ${row} to row ${to(row)}, out of its 128-row scale block; an FP8 indexer weight needs each head's rotated rows in one block (indexHeadDim a multiple of 128)`);
      }
    }
  }
  const data = sharedAlloc(w.data.constructor as TypedArrayConstructor<typeof w.data>, w.data.length);
  for (let row = 0; row < out; row++) data.set(w.data.subarray(row * inDim, (row + 1) * inDim) as never, to(row) * inDim);
  return w.format === 'fp8' ? { format: 'fp8', shape: [out, inDim], data: data as Uint8Array, scale: w.scale } : { ...w, data } as Weight;
}

// Arrays made once per weights object live in shared memory where there is one, so pool steps read them in place.
const sharedAlloc: Alloc = typeof SharedArrayBuffer === 'undefined' ? allocLocal : allocShared;

const interleavedOf = new WeakMap<IndexerLayerWeights, IndexerLayerWeights>();

/** The indexer with wq_b, wk and k_norm permuted (once per weights object) so the step's RoPE rotates interleaved pairs (GLM-5). */
function interleavedIndexer(ix: IndexerLayerWeights, d: number, rope: number): IndexerLayerWeights {
  let p = interleavedOf.get(ix);
  if (p === undefined) {
    const vec = (x: Float32Array) => {
      const y = sharedAlloc(Float32Array, x.length);
      for (let j = 0; j < x.length; j++) y[interleavedDim(j, rope)] = x[j];
      return y;
    };
    p = { wqB: permuteRows('layer.weights.indexer.wqB', ix.wqB, d, rope), wk: permuteRows('layer.weights.indexer.wk', ix.wk, d, rope), kNormWeight: vec(ix.kNormWeight), kNormBias: vec(ix.kNormBias), weightsProj: ix.weightsProj };
    interleavedOf.set(ix, p);
  }
  return p;
}

/**
 * The bytes a layer keeps beside its weights once it has run (made once
 * per weights object): wkv_b's key rows transposed (src/model/absorb.ts)
 * and, with `indexerRopeInterleaved`, the indexer's permuted wq_b, wk and
 * k_norm. Its resident weight bytes are its weights' `weightBytes` plus
 * these.
 */
export function mlaPreparedBytes(layer: MlaLayer): number {
  const { heads, kvRank, nope, v } = checkMlaLayer(layer);
  let bytes = headWeightsBytes(layer.weights.wkvB, heads, nope, v, kvRank);
  const ix = layer.weights.indexer;
  if (ix !== undefined && layer.config.indexerRopeInterleaved === true) bytes += weightBytes(ix.wqB) + weightBytes(ix.wk) + ix.kNormWeight.byteLength + ix.kNormBias.byteLength;
  return bytes;
}

/** The rows' sequences (the step's rule) and the position of each new token in its sequence. */
function checkSeqs(cache: DsaCache, m: number, t: number, seqs: unknown, alloc: Alloc): { seqs: Int32Array; positions: Int32Array } {
  let list: Int32Array;
  if (seqs === undefined) {
    if (m > cache.batch) throw new RangeError(`inputs.x: ${m} sequences, but the cache holds ${cache.batch}; pass seqs to name them`);
    list = Int32Array.from({ length: m }, (_, i) => i);
  } else if (!(seqs instanceof Int32Array) || seqs.length !== m) {
    throw new TypeError(`inputs.seqs: expected an Int32Array of length m = ${m} (one cache sequence per row of x), got ${seqs instanceof Int32Array ? `length ${seqs.length}` : describe(seqs)}`);
  } else {
    list = seqs;
  }
  const positions = alloc(Int32Array, m * t);
  for (let i = 0; i < m; i++) {
    const before = cache.lengths[cache.checkSeq(`inputs.seqs[${i}]`, list[i])];
    for (let p = 0; p < t; p++) positions[i * t + p] = before + p;
  }
  return { seqs: list, positions };
}

/** Given top-k positions [m, t, k]: each -1 or in [0, own position]; returns k. */
function checkIndices(indices: unknown, m: number, t: number, positions: Int32Array): number {
  const [mi, ti, k] = checkTensor('indices', indices, Int32Array, ['m', 't', 'k']);
  checkSame('mlaDecodeStep', mi, 'indices m', m, 'inputs.x m');
  checkSame('mlaDecodeStep', ti, 'indices t', t, 'inputs.x t');
  const data = (indices as Tensor<Int32Array>).data;
  for (let r = 0; r < m * t; r++) {
    for (let i = 0; i < k; i++) {
      const p = data[r * k + i];
      if (p < -1 || p > positions[r]) {
        throw new RangeError(`indices: row ${r} (sequence row ${Math.floor(r / t)}, token ${r % t}), slot ${i} is ${p}; expected -1 or a position in [0, ${positions[r]}] (the token's own position: attention is causal)`);
      }
    }
  }
  return k;
}

/**
 * A shared layer's attention through the cache with given top-k positions:
 * the decode step without its indexer. The cache's indexer keys of the new
 * tokens are written as zeros (a shared layer's keys are never scored).
 */
function planSharedAttention(cache: DsaCache, q: Tensor<Float32Array>, kv: Tensor<Float32Array>, indices: Tensor<Int32Array>, seqs: Int32Array, t: number, opts: StepOptions, alloc: Alloc) {
  const m = seqs.length, n = m * t, topK = indices.shape[2];
  const [, hq, dqk] = q.shape;
  const reservations = cache.reserve(seqs, t);
  const slots = alloc(Int32Array, n);
  for (let i = 0; i < m; i++) slots.set(reservations[i].slots, i * t);
  const identity = m === cache.batch && seqs.every((s, i) => s === i);
  let table = cache.blockTable;
  if (!identity) {
    table = { data: alloc(Int32Array, m * cache.maxBlocks), shape: [m, cache.maxBlocks] };
    for (let i = 0; i < m; i++) table.data.set(cache.blockTable.data.subarray(seqs[i] * cache.maxBlocks, (seqs[i] + 1) * cache.maxBlocks), i * cache.maxBlocks);
  }
  const firstBad = alloc(Int32Array, 1);
  firstBad[0] = NO_BAD_ROW;
  const append = cache.appendArgs(alloc(Float32Array, n * cache.d), kv.data, slots, firstBad);
  const finite = [
    ...cache.tokenRows(append.keys, 'kv', kv).slice(1),
    { name: 'q', data: q.data, width: hq * dqk, headDim: dqk, why: 'a step takes only finite queries' },
  ];
  const physical = alloc(Int32Array, n * topK);
  const steps: Step[] = [
    ...finite.map((rows): Step => ({ kernel: 'cache.checkKeys', args: { keys: rows.data, d: rows.width, firstBad }, rows: [0, n], writes: ['firstBad'] })),
    { kernel: 'cache.write', args: append, rows: [0, n], writes: ['kv', 'keysF32', 'keysI8', 'scalesI8', 'keysFp8'] },
    {
      kernel: 'cache.slots',
      args: { indices: indices.data, table: table.data, pageSize: cache.pageSize, maxBlocks: cache.maxBlocks, t, k: topK, hkv: 1, out: physical },
      rows: [0, n],
      writes: ['out'],
    },
  ];
  // Given indices may repeat a key: attention counts it once (assumeUnique false).
  const attention = planSparseAttention(q, cache.kv, { data: physical, shape: [n, 1, topK] }, { dV: opts.dV, smScale: opts.smScale, attnSink: opts.attnSink, simd: opts.simd, maxBytes: opts.maxBytes }, alloc);
  return {
    steps: [...steps, ...attention.steps],
    finish: () => {
      if (firstBad[0] !== NO_BAD_ROW) throw nonFiniteToken(firstBad[0], finite);
      const { out, lse } = attention.finish();
      cache.commit(reservations);
      return { out, lse, indices };
    },
  };
}

/** Every kernel an MLA step runs. */
export const mlaKernels: KernelTable = { ...stepKernels, ...weightKernels, ...modelKernels };

/** Builds the plan of one layer step (validates everything, reserves the cache's slots; the finish commits them). */
export function planMlaDecodeStep(cache: DsaCache, layer: MlaLayer, inputs: MlaStepInputs, opts: MlaStepOptions, alloc: Alloc): Plan<MlaStepResult> {
  checkOptions('mlaDecodeStep', opts, STEP_OPTIONS);
  const { dim, heads, qRank, kvRank, nope, rope, v, indexer } = checkMlaLayer(layer);
  const { config, weights } = layer;
  if (typeof inputs !== 'object' || inputs === null) throw new TypeError(`inputs: expected { x, seqs? }, got ${describe(inputs)}`);
  const [m, t, dimX] = checkTensor('inputs.x', inputs.x, Float32Array, ['m', 't', 'dim']);
  checkSame('mlaDecodeStep', dimX, 'inputs.x dim', dim, 'layer.config.dim');
  checkSame('mlaDecodeStep', cache.dqk, 'the cache kvDim', kvRank + rope, 'kvLoraRank + qkRopeHeadDim');
  checkSame('mlaDecodeStep', cache.hkv, 'the cache kvHeads', 1, 'MLA\'s one latent kv head');
  if (!indexer && opts.indices === undefined) {
    throw new TypeError("indices: a layer without indexer weights (GLM-5 'shared') attends to given top-k positions; pass the previous full layer's indices");
  }
  const { seqs, positions } = checkSeqs(cache, m, t, inputs.seqs, alloc);
  const topK = opts.indices !== undefined ? checkIndices(opts.indices, m, t, positions) : config.indexTopk;
  const n = m * t;
  const freqs = mlaRopeFrequencies(config);
  const eps = config.normEps;
  checkBytes(`mlaDecodeStep [n=${n}, nHeads=${heads}]`, 4 * n * (qRank + heads * (nope + rope) + (kvRank + rope) + heads * (kvRank + rope) + heads * kvRank + heads * v + dim), opts.maxBytes, 'run fewer tokens per step (mlaPrefill takes queryBlock)');
  const linearOpts = { gemmImpl: opts.gemmImpl, scaleFormat: opts.scaleFormat, simd: opts.simd };
  const steps: Step[] = [];
  const project = (name: string, x: Tensor<Float32Array>, w: Weight, out: Float32Array) => {
    steps.push(...planLinear(x, w, { ...linearOpts, out }, alloc, { x: name, w: `layer.weights.${name}` }).steps);
  };

  // qr = q_norm(wq_a(x)); q = wq_b(qr), RoPE on each head's last r dims.
  const qr = alloc(Float32Array, n * qRank);
  project('wqA', inputs.x, weights.wqA, qr);
  steps.push({ kernel: 'model.rmsNorm', args: { x: qr, from: 0, stride: qRank, width: qRank, weight: weights.qNorm, eps, out: qr, outFrom: 0, outStride: qRank }, rows: [0, n], writes: ['out'] });
  const qFull = alloc(Float32Array, n * heads * (nope + rope));
  project('wqB', { data: qr, shape: [m, t, qRank] }, weights.wqB, qFull);
  steps.push({ kernel: 'model.rope', args: { x: qFull, positions, freqs, heads, width: nope + rope, offset: nope, ropeDim: rope, interleaved: true }, rows: [0, n], writes: ['x'] });
  // kv = wkv_a(x): kv_norm on the latent c dims, RoPE on the last r: the 576-wide row, in place.
  const kvRow = alloc(Float32Array, n * (kvRank + rope));
  project('wkvA', inputs.x, weights.wkvA, kvRow);
  steps.push({ kernel: 'model.rmsNorm', args: { x: kvRow, from: 0, stride: kvRank + rope, width: kvRank, weight: weights.kvNorm, eps, out: kvRow, outFrom: 0, outStride: kvRank + rope }, rows: [0, n], writes: ['out'] });
  steps.push({ kernel: 'model.rope', args: { x: kvRow, positions, freqs, heads: 1, width: kvRank + rope, offset: kvRank, ropeDim: rope, interleaved: true }, rows: [0, n], writes: ['x'] });
  // q' = [q_nope @ W_k, q_pe] per head (W_k kept transposed, once per weight).
  const simd = opts.simd ?? true;
  const head = headWeights(weights.wkvB, heads, nope, v, kvRank);
  const qAttn = alloc(Float32Array, n * heads * (kvRank + rope));
  steps.push({
    kernel: 'model.absorbQuery',
    args: { q: qFull, out: qAttn, n, heads, nope, rope, kvRank, ...head.keyT, simd },
    rows: [0, heads * kvRank],
    writes: ['out'],
  });

  const q = { data: qAttn, shape: [n, heads, kvRank + rope] };
  const kv = { data: kvRow, shape: [n, 1, kvRank + rope] };
  const stepOpts: StepOptions = { topK, dV: kvRank, smScale: mlaScale(config) };
  if (opts.attnSink !== undefined) stepOpts.attnSink = opts.attnSink;
  if (opts.simd !== undefined) stepOpts.simd = opts.simd;
  if (opts.maxBytes !== undefined) stepOpts.maxBytes = opts.maxBytes;
  const attention = opts.indices !== undefined
    ? planSharedAttention(cache, q, kv, opts.indices, seqs, t, stepOpts, alloc)
    : planDecodeStep(
      indexerWeights(config.indexerRopeInterleaved === true ? interleavedIndexer(weights.indexer!, config.indexHeadDim, rope) : weights.indexer!),
      cache,
      { x: inputs.x, qr: { data: qr, shape: [m, t, qRank] }, q, kv, seqs },
      // The indexer: DeepSeek's LayerNorm eps 1e-6, non-interleaved RoPE on qkRopeHeadDim dims, the same (YaRN) frequencies.
      { ...stepOpts, ropeDim: rope, ropeFreqs: freqs, eps: 1e-6, linear: { gemmImpl: opts.gemmImpl ?? 'bf16', scaleFormat: opts.scaleFormat ?? 'float32' } },
      alloc,
    );
  steps.push(...attention.steps);

  // o = the attention output through wkv_b's value rows; out = wo(o). The
  // attention's out is the array its plan gave its sparse step to write.
  const sparse = attention.steps.find((step) => step.kernel === 'attention.sparse');
  if (sparse === undefined || !(sparse.args.out instanceof Float32Array)) throw new Error('mlaDecodeStep: the attention plan has no sparse attention step');
  const latent = sparse.args.out;
  const o = alloc(Float32Array, n * heads * v);
  steps.push({
    kernel: 'model.valueUp',
    args: { latent, out: o, n, heads, v, kvRank, ...weightArgs(head.value), first: head.first, stride: head.stride, simd },
    rows: [0, heads * v],
    writes: ['out'],
  });
  const out = alloc(Float32Array, n * dim);
  project('wo', { data: o, shape: [m, t, heads * v] }, weights.wo, out);
  return {
    steps,
    finish: () => {
      const r = attention.finish();
      return { out: { data: out, shape: [m, t, dim] }, indices: r.indices, lse: r.lse, latent: r.out };
    },
  };
}

/**
 * One layer step of m sequences, t new tokens each, from hidden states
 * x [m, t, dim] through `cache` (kvDim = kvLoraRank + qkRopeHeadDim,
 * kvHeads 1, indexerDim = indexHeadDim): the new tokens' latent rows and
 * indexer keys are appended, each token attends to its top-k positions
 * (the indexer's, or `opts.indices` for a shared layer). Returns out
 * [m, t, dim], indices [m, t, k], lse [m * t, nHeads] and the latent
 * attention output [m * t, nHeads, kvLoraRank]. On any error the cache is
 * unchanged.
 */
export function mlaDecodeStep(cache: DsaCache, layer: MlaLayer, inputs: MlaStepInputs, opts: MlaStepOptions = {}): MlaStepResult {
  cache.acquire();
  try {
    return runPlan(planMlaDecodeStep(cache, layer, inputs, opts, allocLocal), mlaKernels);
  } finally {
    cache.release();
  }
}

export interface MlaPrefillOptions extends MlaStepOptions {
  /** Tokens per step (default 256): memory holds one block's [queryBlock, s] indexer scores. */
  queryBlock?: number;
  /** Called after each block with the tokens done so far and in all. */
  onProgress?: (done: number, total: number) => void;
}

export interface MlaPrefillResult {
  /** [1, t, dim] */
  out: Tensor<Float32Array>;
  /** [1, t, k] Int32Array: each token's top-k positions (the next shared layer's `indices`). */
  indices: Tensor<Int32Array>;
  /** [t, nHeads] */
  lse: Tensor<Float32Array>;
}

/** A prefill's checked blocks: views of x (and of given indices), each one step of sequence seq. */
export function planMlaPrefill(cache: DsaCache, layer: MlaLayer, seq: number, inputs: { x: Tensor<Float32Array> }, opts: MlaPrefillOptions, alloc: Alloc) {
  checkOptions('mlaPrefill', opts, PREFILL_OPTIONS);
  cache.checkSeq('seq', seq);
  const { dim, heads } = checkMlaLayer(layer);
  if (typeof inputs !== 'object' || inputs === null) throw new TypeError(`inputs: expected { x }, got ${describe(inputs)}`);
  const [b, t, dimX] = checkTensor('inputs.x', inputs.x, Float32Array, ['1', 't', 'dim']);
  if (b !== 1) throw new RangeError(`inputs.x: a prefill runs one sequence, expected [1, t, dim], got b = ${b}`);
  checkSame('mlaPrefill', dimX, 'inputs.x dim', dim, 'layer.config.dim');
  const queryBlock = checkSize('queryBlock', opts.queryBlock ?? 256);
  if (opts.onProgress !== undefined && typeof opts.onProgress !== 'function') throw new TypeError(`onProgress: expected a function, got ${describe(opts.onProgress)}`);
  let k = layer.config.indexTopk;
  if (opts.indices !== undefined) {
    const [bi, ti, ki] = checkTensor('indices', opts.indices, Int32Array, ['1', 't', 'k']);
    checkSame('mlaPrefill', bi, 'indices b', 1, 'one sequence');
    checkSame('mlaPrefill', ti, 'indices t', t, 'inputs.x t');
    k = ki;
  }
  // The whole prompt before its first block, so a bad token leaves the cache unchanged.
  const x = inputs.x.data;
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i])) throw new RangeError(`inputs.x: token ${Math.floor(i / dim)}, dim ${i % dim} is ${x[i]}; a layer takes only finite hidden states (nothing was appended)`);
  }
  const seqs = Int32Array.of(seq);
  const blocks: { from: number; to: number; inputs: MlaStepInputs; opts: MlaStepOptions }[] = [];
  const stepOpts: MlaStepOptions = { gemmImpl: opts.gemmImpl, scaleFormat: opts.scaleFormat, attnSink: opts.attnSink, simd: opts.simd, maxBytes: opts.maxBytes };
  for (let from = 0; from < t; from += queryBlock) {
    const to = Math.min(t, from + queryBlock);
    const blockOpts: MlaStepOptions = { ...stepOpts };
    if (opts.indices !== undefined) blockOpts.indices = { data: opts.indices.data.subarray(from * k, to * k), shape: [1, to - from, k] };
    blocks.push({ from, to, inputs: { x: { data: x.subarray(from * dim, to * dim), shape: [1, to - from, dim] }, seqs }, opts: blockOpts });
  }
  const out = alloc(Float32Array, t * dim), indices = alloc(Int32Array, t * k), lse = alloc(Float32Array, t * heads);
  return {
    blocks,
    t,
    add(from: number, step: MlaStepResult) {
      out.set(step.out.data, from * dim);
      indices.set(step.indices.data, from * k);
      lse.set(step.lse.data, from * heads);
    },
    result: (): MlaPrefillResult => ({ out: { data: out, shape: [1, t, dim] }, indices: { data: indices, shape: [1, t, k] }, lse: { data: lse, shape: [t, heads] } }),
  };
}

/**
 * Runs a prompt x [1, t, dim] of sequence `seq` through the layer in blocks
 * of `queryBlock` tokens (each an `mlaDecodeStep`), so memory holds one
 * block's indexer scores; equals one step of all t tokens. Returns out
 * [1, t, dim], indices [1, t, k] and lse [t, nHeads]. A non-finite hidden
 * state is refused before the first block; a block that fails leaves the
 * blocks before it in the cache and throws.
 */
export function mlaPrefill(cache: DsaCache, layer: MlaLayer, seq: number, inputs: { x: Tensor<Float32Array> }, opts: MlaPrefillOptions = {}): MlaPrefillResult {
  const prompt = planMlaPrefill(cache, layer, seq, inputs, opts, allocLocal);
  for (const block of prompt.blocks) {
    prompt.add(block.from, mlaDecodeStep(cache, layer, block.inputs, block.opts));
    opts.onProgress?.(block.to, prompt.t);
  }
  return prompt.result();
}
