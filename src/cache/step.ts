/**
 * One DSA layer step through a cache (src/cache/cache.ts): for m sequences,
 * t new tokens each (decode: t = 1; speculative: t = next_n; a prefill
 * block: m = 1),
 *
 *   indexer q = RoPE(qr @ wqB^T), k = RoPE(LayerNorm(x @ wk^T)), w = x @ weightsProj^T
 *   append    k (rotated, quantized into the cache's form) and kv to the cache
 *   scores    over each sequence's cache (paged, seqLens: causal by position)
 *   top-k     logical positions [m, t, topK], -1 padding
 *   slots     positions -> physical cache slots through the block table
 *   attention sparse (FlashMLA's sparse decode) over the kv pages
 *
 * as one plan, so the same kernels run on this thread (`decodeStep`) or on
 * the pool (`createPool().decodeStep`), bit-identical, with the cache's
 * buffers used in place. Nothing earlier in the cache is copied; the scores
 * live in a buffer the cache keeps, so a step allocates nothing that grows
 * with the sequence length. The cache changes only when the whole step
 * succeeds. `prefill` runs a long prompt through the same step in query
 * blocks, holding the [block, s] scores of one block at a time.
 */
import type { KernelTable, Plan, Step } from '../plan.js';
import { runPlan } from '../plan.js';
import { allocLocal, describe, type Alloc, type Tensor } from '../tensor.js';
import { checkBytes, checkSame, checkSize, checkTensor } from '../validate.js';
import { checkIndexerWeights, planProjections, ropeSettings, type IndexerWeights, type LightningIndexerOptions } from '../indexer/module.js';
import { checkLinearReading } from '../weights/linear.js';
import { weightKernels } from '../weights/kernels.js';
import { planIndexerScores } from '../indexer/scores.js';
import { planTopk } from '../topk/topk.js';
import { planSparseAttention } from '../attention/sparse.js';
import { NO_BAD_ROW } from '../mask/check.js';
import { indexerKernels } from '../indexer/kernels.js';
import { topkKernels } from '../topk/kernels.js';
import { attentionKernels } from '../attention/kernels.js';
import { cacheKernels } from './kernels.js';
import { nonFiniteToken, type DsaCache, type TokenRows } from './cache.js';
import { checkKeys } from './append.js';
import { checkKnownOptions } from '../options.js';

export interface StepInputs {
  /** [m, t, dim] Float32Array: hidden states of the new tokens (m sequences, t each). */
  x: Tensor<Float32Array>;
  /** [m, t, qRank] Float32Array: their low-rank queries (MLA's q_norm(wq_a(x))). */
  qr: Tensor<Float32Array>;
  /** [m * t, hq, dqk] Float32Array: their attention queries (MLA absorbed: hq 128, dqk 576). */
  q: Tensor<Float32Array>;
  /** [m * t, hkv, dqk] Float32Array: their kv rows, appended to the cache. */
  kv: Tensor<Float32Array>;
  /** Int32Array [m]: the cache sequence of each row of x (default 0 .. m - 1); each at most once. */
  seqs?: Int32Array;
}

export interface StepOptions extends Pick<LightningIndexerOptions, 'ropeDim' | 'ropeTheta' | 'ropeFreqs' | 'eps' | 'linear'> {
  /** Keys per query (default 2048, DeepSeek-V3.2's index_topk); slots past a sequence's eligible keys hold -1. */
  topK?: number;
  /** Value width (default dqk; MLA 512). */
  dV?: number;
  /** Softmax scale (default 1/sqrt(dqk)). */
  smScale?: number;
  /** Float32Array [hq]: FlashMLA's attention sink. */
  attnSink?: Float32Array;
  /** `false` forces the TypeScript kernels. */
  simd?: boolean;
  /** Memory guard for the step's buffers (default: min(4 GiB, half the machine's memory)). */
  maxBytes?: number;
}

export interface StepResult {
  /** [m * t, hq, dV] */
  out: Tensor<Float32Array>;
  /** [m * t, hq], natural log; +Infinity for a query with no key (FlashMLA). */
  lse: Tensor<Float32Array>;
  /** [m, t, topK] Int32Array: the keys each new token attended to, as positions in its sequence (-1: none). */
  indices: Tensor<Int32Array>;
}

/**
 * What a step refuses a non-finite value in, in the order the refusal
 * looks: each token's key, kv row, then query. A non-finite query makes its
 * head's logits NaN, which attention reads as no key at all (out 0, lse
 * +Infinity): a silent wrong answer, so it is refused by name like the kv
 * rows, though it is never stored.
 */
function finiteRows(cache: DsaCache, keys: Float32Array, kv: Tensor<Float32Array>, q: Tensor<Float32Array>): TokenRows[] {
  const [, hq, dqk] = q.shape;
  return [
    ...cache.tokenRows(keys, 'inputs.kv', kv),
    { name: 'inputs.q', data: q.data, width: hq * dqk, headDim: dqk, why: 'a step takes only finite queries' },
  ];
}

/** Block views of a prefill whose kv rows and queries it checked, whole, before its first block (a step skips them). */
const prefillChecked = new WeakSet<Float32Array>();

/** Every kernel a step runs (the step crosses four areas). */
export const stepKernels: KernelTable = { ...indexerKernels, ...topkKernels, ...attentionKernels, ...cacheKernels, ...weightKernels };

/** Builds the plan of a step (validates everything and reserves the cache's slots first; the finish commits them). */
export function planDecodeStep(weights: IndexerWeights, cache: DsaCache, inputs: StepInputs, opts: StepOptions, alloc: Alloc): Plan<StepResult> {
  if (typeof inputs !== 'object' || inputs === null) throw new TypeError(`inputs: expected { x, qr, q, kv }, got ${describe(inputs)}`);
  const { h, d, dim, qRank } = checkIndexerWeights(weights);
  checkSame('decodeStep', d, 'weights.wk d', cache.d, 'the cache indexerDim');
  const [m, t, dimX] = checkTensor('inputs.x', inputs.x, Float32Array, ['m', 't', 'dim']);
  checkSame('decodeStep', dimX, 'inputs.x dim', dim, 'weights dim');
  const [mq, tq, qRankX] = checkTensor('inputs.qr', inputs.qr, Float32Array, ['m', 't', 'qRank']);
  checkSame('decodeStep', mq, 'inputs.qr m', m, 'inputs.x m');
  checkSame('decodeStep', tq, 'inputs.qr t', t, 'inputs.x t');
  checkSame('decodeStep', qRankX, 'inputs.qr qRank', qRank, 'weights.wqB qRank');
  const n = m * t;
  const [nq, hq, dqk] = checkTensor('inputs.q', inputs.q, Float32Array, ['m*t', 'hq', 'dqk']);
  checkSame('decodeStep', nq, 'inputs.q rows', n, 'm * t');
  checkSame('decodeStep', dqk, 'inputs.q dqk', cache.dqk, 'the cache kvDim');
  const [nkv, hkv, dqkKv] = checkTensor('inputs.kv', inputs.kv, Float32Array, ['m*t', 'hkv', 'dqk']);
  checkSame('decodeStep', nkv, 'inputs.kv rows', n, 'm * t');
  checkSame('decodeStep', hkv, 'inputs.kv hkv', cache.hkv, 'the cache kvHeads');
  checkSame('decodeStep', dqkKv, 'inputs.kv dqk', cache.dqk, 'the cache kvDim');
  if (hq % hkv !== 0) throw new RangeError(`inputs.q: hq must be a multiple of the cache's kvHeads = ${hkv}, got hq = ${hq}`);
  const topK = checkSize('topK', opts.topK ?? 2048);
  // The top-k values, positions and physical slots [m*t, topK] are allocated before top-k's own guard sees them.
  checkBytes(`decodeStep top-k [${n}, ${topK}]`, n * topK * (8 + 4 * hkv), opts.maxBytes, 'pass a smaller topK or fewer tokens per step');
  const { ropeDim, freqs, eps } = ropeSettings(opts, d);
  if (opts.simd !== undefined && typeof opts.simd !== 'boolean') throw new TypeError(`simd: expected a boolean, got ${describe(opts.simd)}`);
  const simd = opts.simd ?? true;
  const reading = checkLinearReading('linear', opts.linear);
  let seqs = inputs.seqs;
  if (seqs === undefined) {
    if (m > cache.batch) throw new RangeError(`inputs.x: ${m} sequences, but the cache holds ${cache.batch}; pass seqs to name them`);
    seqs = Int32Array.from({ length: m }, (_, i) => i);
  } else if (!(seqs instanceof Int32Array) || seqs.length !== m) {
    throw new TypeError(`inputs.seqs: expected an Int32Array of length m = ${m} (one cache sequence per row of x), got ${seqs instanceof Int32Array ? `length ${seqs.length}` : describe(seqs)}`);
  }

  // Validation is done: reserve the slots (changes nothing the cache shows until the finish commits).
  const reservations = cache.reserve(seqs, t);
  const newLens = alloc(Int32Array, m);
  const positions = alloc(Int32Array, n);
  const slots = alloc(Int32Array, n);
  let width = 1;
  for (let i = 0; i < m; i++) {
    const before = cache.lengths[seqs[i]];
    newLens[i] = before + t;
    width = Math.max(width, newLens[i]);
    for (let p = 0; p < t; p++) positions[i * t + p] = before + p;
    slots.set(reservations[i].slots, i * t);
  }
  // The block table of the listed sequences, in row order.
  const identity = m === cache.batch && seqs.every((s, i) => s === i);
  let table = cache.blockTable;
  if (!identity) {
    table = { data: alloc(Int32Array, m * cache.maxBlocks), shape: [m, cache.maxBlocks] };
    for (let i = 0; i < m; i++) table.data.set(cache.blockTable.data.subarray(seqs[i] * cache.maxBlocks, (seqs[i] + 1) * cache.maxBlocks), i * cache.maxBlocks);
  }
  checkBytes(`decodeStep scores [${n}, ${width}] float32`, n * width * 4, opts.maxBytes, 'run fewer tokens per step (prefill takes queryBlock)');

  const projections = planProjections(weights, inputs.qr.data, inputs.x.data, n, { h, d, dim, qRank }, reading, simd, alloc);
  const qIdx = projections.q, kNew = projections.k, wIdx = projections.w;
  const firstBad = alloc(Int32Array, 1);
  firstBad[0] = NO_BAD_ROW;
  const steps: Step[] = [
    ...projections.steps,
    {
      kernel: 'indexer.prepare',
      // Queries rotate here for float32 and int8 caches; FP8 rotates them where it quantizes them, keys rotate as they are stored.
      args: { q: qIdx, k: kNew, positions, gamma: weights.kNormWeight.data, beta: weights.kNormBias.data, eps, ropeDim, freqs, h, d, rotateQ: cache.hadamard && cache.keyForm !== 'fp8', rotateK: false },
      rows: [0, n],
      writes: ['q', 'k'],
    },
  ];
  const append = cache.appendArgs(kNew, inputs.kv.data, slots, firstBad);
  // One pass each over the new tokens' keys (made above from x), kv rows and
  // queries flags the first token holding NaN or Infinity: the write then
  // stores nothing, and the finish throws naming it. A prefill checked its
  // blocks' kv rows and queries before its first block.
  const finite = finiteRows(cache, kNew, inputs.kv, inputs.q);
  steps.push({ kernel: 'cache.checkKeys', args: append, rows: [0, n], writes: ['firstBad'] });
  if (!prefillChecked.has(inputs.q.data) || !prefillChecked.has(inputs.kv.data)) {
    for (const rows of finite.slice(1)) steps.push({ kernel: 'cache.checkKeys', args: { keys: rows.data, d: rows.width, firstBad }, rows: [0, n], writes: ['firstBad'] });
  }
  steps.push({ kernel: 'cache.write', args: append, rows: [0, n], writes: ['kv', 'keysF32', 'keysI8', 'scalesI8', 'keysFp8'] });

  const scoresOut = cache.workspace(n * width);
  const scores = planIndexerScores(
    { data: qIdx, shape: [m, t, h, d] },
    cache.keys,
    { data: wIdx, shape: [m, t, h] },
    {
      precision: cache.precision, weightScale: h ** -0.5 * d ** -0.5, blockTable: table, seqLens: newLens, maxLen: width,
      out: scoresOut, simd: opts.simd, ...(cache.keyForm === 'fp8' ? { scaleFormat: cache.scaleFormat } : {}),
    },
    alloc,
  );
  const scoresTensor = { data: scoresOut, shape: [m, t, width] };
  const values = alloc(Float32Array, n * topK), indices = alloc(Int32Array, n * topK);
  const selected = planTopk(scoresTensor, topK, { seqLens: newLens, out: { values, indices }, simd: opts.simd }, alloc);
  const physical = alloc(Int32Array, n * hkv * topK);
  const slotStep: Step = {
    kernel: 'cache.slots',
    args: { indices, table: table.data, pageSize: cache.pageSize, maxBlocks: cache.maxBlocks, t, k: topK, hkv, out: physical },
    rows: [0, n],
    writes: ['out'],
  };
  const attention = planSparseAttention(
    inputs.q,
    cache.kv,
    { data: physical, shape: [n, hkv, topK] },
    { dV: opts.dV, smScale: opts.smScale, attnSink: opts.attnSink, simd: opts.simd, assumeUnique: true, maxBytes: opts.maxBytes },
    alloc,
  );
  return {
    steps: [...steps, ...scores.steps, ...selected.steps, slotStep, ...attention.steps],
    finish: () => {
      if (firstBad[0] !== NO_BAD_ROW) throw nonFiniteToken(firstBad[0], finite);
      scores.finish();
      selected.finish(); // a NaN score (from NaN inputs) throws here, before the cache changes
      const { out, lse } = attention.finish();
      cache.commit(reservations);
      return { out, lse, indices: { data: indices, shape: [m, t, topK] } };
    },
  };
}

/**
 * One DSA layer step of m sequences, t new tokens each, through `cache`:
 * the new tokens' indexer keys and kv rows are appended (nothing earlier is
 * copied), each new token's top-k keys are chosen over its sequence's cache
 * (causally), and sparse attention reads them from the kv pages. Weights as
 * in `lightningIndexer`; the indexer's precision is the cache's (`precision`:
 * its key form, or 'int7' over int8 keys).
 * Returns `out` [m*t, hq, dV], `lse` [m*t, hq] and the chosen positions
 * `indices` [m, t, topK]. On any error the cache is unchanged.
 */
/**
 * The options of prefill: decodeStep's and its own two. decodeStep takes them all, so one options
 * object serves a prompt's prefill and the decode steps after it (queryBlock and onProgress
 * mean nothing to a step).
 */
const PREFILL_OPTIONS = ['ropeDim', 'ropeTheta', 'ropeFreqs', 'eps', 'linear', 'topK', 'dV', 'smScale', 'attnSink', 'simd', 'maxBytes', 'queryBlock', 'onProgress'];

export function decodeStep(weights: IndexerWeights, cache: DsaCache, inputs: StepInputs, opts: StepOptions = {}): StepResult {
  checkKnownOptions('decodeStep', opts, PREFILL_OPTIONS);
  cache.acquire();
  try {
    return runPlan(planDecodeStep(weights, cache, inputs, opts, allocLocal), stepKernels);
  } finally {
    cache.release();
  }
}

export interface PrefillInputs {
  /** [1, t, dim] Float32Array: the prompt's hidden states. */
  x: Tensor<Float32Array>;
  /** [1, t, qRank] Float32Array. */
  qr: Tensor<Float32Array>;
  /** [t, hq, dqk] Float32Array: attention queries. */
  q: Tensor<Float32Array>;
  /** [t, hkv, dqk] Float32Array: kv rows. */
  kv: Tensor<Float32Array>;
}

export interface PrefillOptions extends StepOptions {
  /** Tokens per step (default 256): memory holds the [queryBlock, s] scores of one block. */
  queryBlock?: number;
  /** Called after each block with the tokens done so far and in all. */
  onProgress?: (done: number, total: number) => void;
}

/** The blocks of a prefill, each a step's inputs (views, no copies). */
function prefillBlocks(inputs: PrefillInputs, queryBlock: number): { from: number; to: number; inputs: StepInputs }[] {
  const [b, t, dim] = checkTensor('inputs.x', inputs.x, Float32Array, ['1', 't', 'dim']);
  if (b !== 1) throw new RangeError(`inputs.x: a prefill runs one sequence, expected [1, t, dim], got b = ${b}`);
  const [, tq, qRank] = checkTensor('inputs.qr', inputs.qr, Float32Array, ['1', 't', 'qRank']);
  checkSame('prefill', tq, 'inputs.qr t', t, 'inputs.x t');
  const [tQ, hq, dqk] = checkTensor('inputs.q', inputs.q, Float32Array, ['t', 'hq', 'dqk']);
  checkSame('prefill', tQ, 'inputs.q t', t, 'inputs.x t');
  const [tKv, hkv, dqkKv] = checkTensor('inputs.kv', inputs.kv, Float32Array, ['t', 'hkv', 'dqk']);
  checkSame('prefill', tKv, 'inputs.kv t', t, 'inputs.x t');
  const blocks: { from: number; to: number; inputs: StepInputs }[] = [];
  for (let from = 0; from < t; from += queryBlock) {
    const to = Math.min(t, from + queryBlock), n = to - from;
    blocks.push({
      from,
      to,
      inputs: {
        x: { data: inputs.x.data.subarray(from * dim, to * dim), shape: [1, n, dim] },
        qr: { data: inputs.qr.data.subarray(from * qRank, to * qRank), shape: [1, n, qRank] },
        q: { data: inputs.q.data.subarray(from * hq * dqk, to * hq * dqk), shape: [n, hq, dqk] },
        kv: { data: inputs.kv.data.subarray(from * hkv * dqkKv, to * hkv * dqkKv), shape: [n, hkv, dqkKv] },
      },
    });
  }
  return blocks;
}

/** The prefill's result buffers, filled block by block. */
function prefillResult(t: number, hq: number, dV: number, alloc: Alloc) {
  const out = alloc(Float32Array, t * hq * dV), lse = alloc(Float32Array, t * hq);
  return {
    add(from: number, step: StepResult) {
      out.set(step.out.data, from * hq * dV);
      lse.set(step.lse.data, from * hq);
    },
    result: () => ({ out: { data: out, shape: [t, hq, dV] }, lse: { data: lse, shape: [t, hq] } }),
  };
}

/**
 * Runs a prompt of t tokens of sequence `seq` through the cache in blocks
 * of `queryBlock` tokens (each a `decodeStep`), so memory holds one block's
 * [queryBlock, s] scores, never the whole prompt's. Returns out [t, hq, dV]
 * and lse [t, hq]; equals one decodeStep of all t tokens. A block that fails
 * leaves the blocks before it in the cache and throws.
 */
export function prefill(weights: IndexerWeights, cache: DsaCache, seq: number, inputs: PrefillInputs, opts: PrefillOptions = {}): { out: Tensor<Float32Array>; lse: Tensor<Float32Array> } {
  checkKnownOptions('prefill', opts, PREFILL_OPTIONS);
  const prompt = planPrefill(cache, seq, inputs, opts, allocLocal);
  for (const block of prompt.blocks) {
    prompt.add(block.from, decodeStep(weights, cache, block.inputs, opts));
    opts.onProgress?.(block.to, prompt.t);
  }
  return prompt.result();
}

/** A prefill's checked arguments: its blocks (each a step of sequence seq), t, and the result they fill (`add`, then `result`). */
export function planPrefill(cache: DsaCache, seq: number, inputs: PrefillInputs, opts: PrefillOptions, alloc: Alloc) {
  cache.checkSeq('seq', seq);
  const queryBlock = checkSize('queryBlock', opts.queryBlock ?? 256);
  const seqs = Int32Array.of(seq);
  const blocks = prefillBlocks(inputs, queryBlock).map((block) => ({ ...block, inputs: { ...block.inputs, seqs } }));
  const [t, hq, dqk] = inputs.q.shape;
  // Room for the whole prompt, before the first block: a full cache refuses it unchanged (the
  // reservation commits nothing; each block reserves its own slots again).
  cache.reserve(seqs, t);
  // The whole prompt's kv rows and queries, one pass, before the first block, so a bad one leaves the cache unchanged.
  const flag = Int32Array.of(NO_BAD_ROW);
  const finite = finiteRows(cache, new Float32Array(0), inputs.kv, inputs.q).slice(1);
  for (const rows of finite) checkKeys({ keys: rows.data, d: rows.width, firstBad: flag }, 0, t);
  if (flag[0] !== NO_BAD_ROW) throw nonFiniteToken(flag[0], finite);
  for (const block of blocks) {
    prefillChecked.add(block.inputs.q.data);
    prefillChecked.add(block.inputs.kv.data);
  }
  return { blocks, t, ...prefillResult(t, hq, opts.dV ?? dqk, alloc) };
}
