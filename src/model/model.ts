/**
 * Many DSA attention layers of one model, stepped together: each chosen
 * layer's weights and cache, with ONE page table for all of them (a
 * sequence's block table is the same in every layer, as in vLLM and SGLang;
 * each layer holds its own kv pages and indexer-key pages). A step runs a
 * batch through layers L0 .. L0 + n - 1 in order (`mlaDecodeStep` each);
 * what sits between two attention layers (the residual adds, the norms, the
 * MoE or MLP) is the caller's `between` callback.
 *
 * Top-k reuse: a layer that does not compute its own top-k takes the
 * previous computing layer's indices unchanged (the layer's `indices`
 * option): GLM-5's `indexer_types` 'shared' layers (config.indexerTypes),
 * or, with `indexTopkFreq`, the rule of Transformers' GlmMoeDsaConfig and
 * SGLang/vLLM's cross-layer reuse: layer i computes when
 * max(i - indexSkipTopkOffset + 1, 0) % indexTopkFreq == 0.
 *
 * All or nothing: inside a step the page table holds every layer's commit
 * and applies it once after the last layer (src/cache/page-table.ts), so a
 * failure in layer j (or in `between`) leaves every layer's cache as it was;
 * a prefill restores the table as it was before its first block.
 */
import { describe, type Tensor } from '../tensor.js';
import { checkSize } from '../validate.js';
import { checkKnownOptions } from '../options.js';
import { createDsaCache, type DsaCache, type DsaCacheOptions } from '../cache/cache.js';
import type { PageTable } from '../cache/page-table.js';
import { checkMlaLayer, mlaDecodeStep, mlaPreparedBytes, type MlaLayer, type MlaStepInputs, type MlaStepOptions, type MlaStepResult } from './mla.js';
import { shareMlaWeights } from './pooled.js';
import { layerWeightBytes, type Checkpoint } from './checkpoint.js';
import type { MlaConfig, MlaLayerWeights } from './types.js';

/** The cache of every layer: its layout and key form (indexerDim, kvDim and kvHeads are the config's). */
export type DsaModelCacheOptions = Omit<DsaCacheOptions, 'indexerDim' | 'kvDim' | 'kvHeads' | 'pageTable'>;

/** What a pool step of one layer needs (`createPool()` has it). */
export interface MlaPoolStep {
  mlaDecodeStep(cache: DsaCache, layer: MlaLayer, inputs: MlaStepInputs, opts?: MlaStepOptions): Promise<MlaStepResult>;
}

export interface DsaModelReuse {
  /**
   * Cross-layer top-k reuse (SGLang / vLLM, Transformers' index_topk_freq):
   * layer i computes its top-k when max(i - indexSkipTopkOffset + 1, 0) %
   * indexTopkFreq == 0, the others reuse the previous computing layer's.
   * Given, it replaces config.indexerTypes; 1: every layer computes.
   */
  indexTopkFreq?: number;
  /** index_skip_topk_offset (default 2, Transformers'): with it, layers 0 .. offset - 1 all compute. */
  indexSkipTopkOffset?: number;
}

export interface DsaModelOptions extends DsaModelReuse {
  config: MlaConfig;
  /** Consecutive layers, in order: each its model index and its weights (as stored). */
  layers: { index: number; weights: MlaLayerWeights }[];
  /** The cache: batch, capacity or pages (+ pageSize), keyForm, precision, ... (createDsaCache's options). */
  cache: DsaModelCacheOptions;
  /** Run every layer step on this pool (`createPool()`): the step functions then return promises. */
  pool?: MlaPoolStep;
}

/** One layer of the model. */
export interface DsaModelLayer {
  /** Its index in the model (num_hidden_layers numbering). */
  readonly index: number;
  readonly config: MlaConfig;
  /** As kept: a reusing layer's indexer is dropped (never run). */
  readonly weights: MlaLayerWeights;
  /** Its cache, on the model's page table: read it; step it only through the model. */
  readonly cache: DsaCache;
  /** null: it computes its top-k; else the model index of the layer whose top-k it reuses. */
  readonly reuses: number | null;
  /** The checkpoint's bytes for the tensors loaded (loadDsaModel), or undefined. */
  readonly storedBytes: number | undefined;
}

/** Called after each layer with its output; returns the next layer's hidden states [m, t, dim] (after the last layer: the range's output). */
export type Between = (
  index: number,
  out: Tensor<Float32Array>,
  info: BetweenInfo,
) => Tensor<Float32Array> | Promise<Tensor<Float32Array>>;

/** What `between` is told beside a layer's out. */
export interface BetweenInfo {
  /** [m, t, dim]: the layer's input hidden states. */
  x: Tensor<Float32Array>;
  /** [m, t, k] Int32Array: the positions its tokens attended to. */
  indices: Tensor<Int32Array>;
  /** Int32Array [m]: the cache sequence of each row. */
  seqs: Int32Array;
  /** The block's first token in the prompt (prefill); 0 in a decode step. */
  from: number;
}

export interface DsaModelStepOptions extends Pick<MlaStepOptions, 'gemmImpl' | 'scaleFormat' | 'simd' | 'maxBytes'> {
  /**
   * What sits between attention layers: `(index, out, { x, indices, seqs, from })`
   * gets layer `index`'s out and its input x and returns the next layer's
   * input (the caller's residual add, MoE or MLP, and input norm); after the
   * last layer its return is the result's x. Default: each layer's out is
   * the next layer's input. `from`: the block's first token in the prompt
   * (prefill), 0 in a decode step. Pool models may return a promise.
   */
  between?: Between;
}

export interface DsaModelPrefillOptions extends DsaModelStepOptions {
  /** Tokens per block (default 256): every layer runs block by block, the blocks in order. */
  queryBlock?: number;
  /** Called after each block with the tokens done so far and in all. */
  onProgress?: (done: number, total: number) => void;
  /**
   * Keep every layer's out, indices and lse of the whole prompt (default
   * true); false returns `layers: []` and only x, so memory holds one
   * block's results per layer (each layer's out [t, dim] and indices [t, k]
   * add up over a model's layers at long prompts; `between` sees each
   * block's anyway).
   */
  keepLayers?: boolean;
}

export interface DsaModelLayerResult {
  index: number;
  /** [m, t, dim]: the layer's out (before the caller's residual). */
  out: Tensor<Float32Array>;
  /** [m, t, k] Int32Array: the positions each token attended to (-1: none); a reusing layer's are its source's. */
  indices: Tensor<Int32Array>;
  /** [m * t, nHeads], natural log. */
  lse: Tensor<Float32Array>;
}

export interface DsaModelStepResult {
  /** Each layer's result, in order. */
  layers: DsaModelLayerResult[];
  /** [m, t, dim]: `between`'s return after the last layer (without between: the last layer's out). */
  x: Tensor<Float32Array>;
}

/** A layer's bytes: its weights as kept, what it prepares beside them (mlaPreparedBytes), its cache's pages. */
export interface DsaModelLayerBytes {
  index: number;
  /** layerWeightBytes of the weights as kept (stored forms, float32 norms). */
  weights: number;
  /** mlaPreparedBytes: wkv_b's transposed key rows, the interleaved indexer's permuted rows. */
  prepared: number;
  /** The checkpoint's bytes for the tensors loaded (loadDsaModel), or undefined. */
  stored: number | undefined;
  /** Its kv and indexer-key pages. */
  cache: number;
}

const MODEL_OPTIONS = ['config', 'layers', 'cache', 'pool', 'indexTopkFreq', 'indexSkipTopkOffset'] as const;
const STEP_OPTIONS = ['between', 'gemmImpl', 'scaleFormat', 'simd', 'maxBytes'] as const;
const PREFILL_OPTIONS = [...STEP_OPTIONS, 'queryBlock', 'onProgress', 'keepLayers'] as const;

/**
 * Whether model layer i computes its own top-k: the indexTopkFreq rule when
 * given, else config.indexerTypes (absent: every layer computes).
 */
export function computesTopk(config: MlaConfig, i: number, reuse: DsaModelReuse = {}): boolean {
  if (reuse.indexTopkFreq === undefined) return config.indexerTypes?.[i] !== 'shared';
  const offset = reuse.indexSkipTopkOffset ?? 2;
  return Math.max(i - offset + 1, 0) % reuse.indexTopkFreq === 0;
}

function checkReuse(opts: DsaModelReuse): void {
  if (opts.indexTopkFreq !== undefined) checkSize('indexTopkFreq', opts.indexTopkFreq);
  if (opts.indexSkipTopkOffset !== undefined) {
    const v = opts.indexSkipTopkOffset;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new RangeError(`indexSkipTopkOffset: expected an integer >= 0, got ${describe(v)}`);
    if (opts.indexTopkFreq === undefined) throw new RangeError('indexSkipTopkOffset: only with indexTopkFreq (the reuse rule it offsets)');
  }
}

/** What a step asks its driver for: one layer's step, or the caller's `between`. */
type Request =
  | { kind: 'layer'; cache: DsaCache; layer: MlaLayer; inputs: MlaStepInputs; opts: MlaStepOptions }
  | { kind: 'between'; between: Between; index: number; out: Tensor<Float32Array>; info: BetweenInfo };

type Answer = MlaStepResult | Tensor<Float32Array>;

function checkBetween(index: number, got: unknown, m: number, t: number, dim: number): Tensor<Float32Array> {
  const x = got as Tensor<Float32Array>;
  if (typeof got !== 'object' || got === null || !(x.data instanceof Float32Array) || !Array.isArray(x.shape)
    || x.shape.length !== 3 || x.shape[0] !== m || x.shape[1] !== t || x.shape[2] !== dim || x.data.length !== m * t * dim) {
    throw new TypeError(`between: after layer ${index}, expected hidden states { data: Float32Array, shape: [m, t, dim] = [${m}, ${t}, ${dim}] }, got ${got instanceof Promise ? 'a Promise (only a pool model awaits between)' : describe(got)}`);
  }
  return x;
}

export class DsaModel {
  readonly config: MlaConfig;
  readonly layers: readonly DsaModelLayer[];
  /** The one page table of every layer's cache. */
  readonly pageTable: PageTable;
  protected readonly pool: MlaPoolStep | undefined;

  constructor(opts: DsaModelOptions, stored?: (number | undefined)[]) {
    if (typeof opts !== 'object' || opts === null) throw new TypeError(`createDsaModel: expected options { config, layers, cache }, got ${describe(opts)}`);
    checkKnownOptions('createDsaModel', opts, MODEL_OPTIONS);
    checkReuse(opts);
    const { config } = opts;
    if (typeof config !== 'object' || config === null) throw new TypeError(`config: expected an MlaConfig, got ${describe(config)}`);
    if (!Array.isArray(opts.layers) || opts.layers.length === 0) throw new TypeError(`layers: expected a non-empty array of { index, weights }, got ${describe(opts.layers)}`);
    if (opts.pool !== undefined && typeof opts.pool?.mlaDecodeStep !== 'function') throw new TypeError(`pool: expected a pool (createPool()), got ${describe(opts.pool)}`);
    if (typeof opts.cache !== 'object' || opts.cache === null) throw new TypeError(`cache: expected createDsaCache's options { batch, capacity | pages, ... }, got ${describe(opts.cache)}`);
    for (const name of ['indexerDim', 'kvDim', 'kvHeads', 'pageTable'] as const) {
      if ((opts.cache as DsaCacheOptions)[name] !== undefined) throw new TypeError(`cache.${name}: the model sets it (from config, and one page table for all layers); leave it out`);
    }
    this.config = config;
    this.pool = opts.pool;
    const first = opts.layers[0]?.index;
    const layers: DsaModelLayer[] = [];
    let source: number | null = null;
    let table: PageTable | undefined;
    const kvDim = config.kvLoraRank + config.qkRopeHeadDim;
    for (let j = 0; j < opts.layers.length; j++) {
      const entry = opts.layers[j];
      if (typeof entry !== 'object' || entry === null) throw new TypeError(`layers[${j}]: expected { index, weights }, got ${describe(entry)}`);
      const { index } = entry;
      if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= config.nLayers || index !== (first as number) + j) {
        throw new RangeError(`layers[${j}].index: expected consecutive layer indices in [0, ${config.nLayers}) (layers[0].index + ${j} = ${(first as number) + j}), got ${describe(index)}`);
      }
      const computes = computesTopk(config, index, opts);
      if (!computes && source === null) {
        throw new RangeError(`layers[${j}]: layer ${index} reuses the previous layer's top-k, but no layer before it in the range computes one; start the range at a layer that computes its top-k`);
      }
      let weights = entry.weights;
      if (computes && weights?.indexer === undefined) {
        throw new RangeError(`layers[${j}].weights.indexer: layer ${index} computes its top-k (${opts.indexTopkFreq === undefined ? "config.indexerTypes says 'full'" : `indexTopkFreq ${opts.indexTopkFreq}`}) and needs its indexer weights`);
      }
      if (!computes && weights?.indexer !== undefined) {
        const { indexer: _, ...rest } = weights;
        weights = rest;
      }
      const layer = { config, weights };
      checkMlaLayer(layer);
      if (this.pool !== undefined) weights = shareMlaWeights(weights);
      // A reusing layer's indexer keys are never scored (the step writes zeros): one float32 a token, not 132 bytes.
      const keys: Partial<DsaCacheOptions> = computes
        ? { indexerDim: config.indexHeadDim }
        : { indexerDim: 1, keyForm: 'float32', precision: undefined, hadamard: false, scaleFormat: undefined, scaleRule: undefined };
      const cacheOpts: DsaCacheOptions = table === undefined
        ? { ...opts.cache, ...keys, kvDim, kvHeads: 1 }
        : { ...opts.cache, batch: undefined, capacity: undefined, pages: undefined, pageSize: undefined, ...keys, kvDim, kvHeads: 1, pageTable: table };
      if (this.pool !== undefined && cacheOpts.shared === false) throw new TypeError('cache.shared: a pool model steps the caches in place and needs them in shared memory; leave shared out or true');
      const cache = createDsaCache(cacheOpts);
      table ??= cache.pageTable;
      layers.push({ index, config, weights, cache, reuses: computes ? null : source, storedBytes: stored?.[j] });
      if (computes) source = index;
    }
    this.layers = layers;
    this.pageTable = table!;
  }

  /** Tokens sequence `seq` holds (in every layer). */
  length(seq: number): number {
    return this.pageTable.lengths[this.pageTable.checkSeq('seq', seq)];
  }

  /** Pages free in the shared pool (paged; taken once per block for all layers). */
  freePages(): number {
    return this.pageTable.freePages();
  }

  /** Empties sequence `seq` in every layer, its pages back to the pool. */
  reset(seq: number): void {
    this.pageTable.reset(seq);
  }

  /** Per layer: the weights as kept, what the layer prepares beside them, the checkpoint's bytes, the cache's. */
  bytes(): DsaModelLayerBytes[] {
    return this.layers.map((l) => {
      const c = l.cache;
      const k = c.keys as { data?: ArrayBufferView; values?: { data: ArrayBufferView }; scales?: { data: ArrayBufferView } };
      const keys = k.values !== undefined ? k.values.data.byteLength + k.scales!.data.byteLength : k.data!.byteLength;
      return {
        index: l.index,
        weights: layerWeightBytes(l.weights),
        prepared: mlaPreparedBytes({ config: l.config, weights: l.weights }),
        stored: l.storedBytes,
        cache: keys + c.kv.data.byteLength,
      };
    });
  }

  /** Pins the page table for a step or prefill (a pool model's are async): no other step, no reset, until `end`. */
  protected begin(): void {
    this.pageTable.pin();
  }

  protected end(): void {
    this.pageTable.unpin();
  }

  /** One step of every layer as requests to a driver; the page table holds the commits until the last layer, and drops them on any error. */
  protected *stepRequests(inputs: MlaStepInputs, opts: DsaModelStepOptions, from: number): Generator<Request, DsaModelStepResult, Answer> {
    const { between, ...layerOpts } = opts;
    if (between !== undefined && typeof between !== 'function') throw new TypeError(`between: expected a function (index, out, info) => next hidden states, got ${describe(between)}`);
    if (typeof inputs !== 'object' || inputs === null) throw new TypeError(`inputs: expected { x, seqs? }, got ${describe(inputs)}`);
    const table = this.pageTable;
    table.hold();
    let done = false;
    try {
      let x = inputs.x;
      const results: DsaModelLayerResult[] = [];
      const byIndex = new Map<number, Tensor<Int32Array>>();
      const seqs = inputs.seqs ?? Int32Array.from({ length: x?.shape?.[0] ?? 0 }, (_, i) => i);
      for (const layer of this.layers) {
        const stepOpts: MlaStepOptions = { ...layerOpts };
        if (layer.reuses !== null) stepOpts.indices = byIndex.get(layer.reuses)!;
        const r = (yield { kind: 'layer', cache: layer.cache, layer: { config: layer.config, weights: layer.weights }, inputs: { x, seqs: inputs.seqs }, opts: stepOpts }) as MlaStepResult;
        if (layer.reuses === null) byIndex.set(layer.index, r.indices);
        results.push({ index: layer.index, out: r.out, indices: r.indices, lse: r.lse });
        const [m, t, dim] = r.out.shape;
        x = between === undefined
          ? r.out
          : checkBetween(layer.index, yield { kind: 'between', between, index: layer.index, out: r.out, info: { x, indices: r.indices, seqs, from } }, m, t, dim);
      }
      if (!table.committed()) throw new Error('DsaModel: no layer committed its step');
      done = true;
      return { layers: results, x };
    } finally {
      table.settle(done);
    }
  }

  /** A prompt x [1, t, dim] of sequence `seq` in blocks, each block through every layer; restores the page table on any error. */
  protected *prefillRequests(seq: number, inputs: { x: Tensor<Float32Array> }, opts: DsaModelPrefillOptions): Generator<Request, DsaModelStepResult, Answer> {
    checkKnownOptions('DsaModel.prefill', opts, PREFILL_OPTIONS);
    this.pageTable.checkSeq('seq', seq);
    const { queryBlock: qb, onProgress, keepLayers: keep, ...stepOpts } = opts;
    const keepLayers = keep ?? true;
    if (typeof keepLayers !== 'boolean') throw new TypeError(`keepLayers: expected a boolean, got ${describe(keep)}`);
    const queryBlock = checkSize('queryBlock', qb ?? 256);
    if (onProgress !== undefined && typeof onProgress !== 'function') throw new TypeError(`onProgress: expected a function, got ${describe(onProgress)}`);
    if (typeof inputs !== 'object' || inputs === null) throw new TypeError(`inputs: expected { x }, got ${describe(inputs)}`);
    const x = inputs.x;
    const dim = this.config.dim;
    if (typeof x !== 'object' || x === null || !(x.data instanceof Float32Array) || !Array.isArray(x.shape) || x.shape.length !== 3 || x.shape[0] !== 1 || x.shape[2] !== dim || x.data.length !== x.shape[1] * dim) {
      throw new RangeError(`inputs.x: a prefill runs one sequence, expected a Float32Array tensor [1, t, dim = ${dim}], got ${describe(x)}`);
    }
    const t = x.shape[1];
    if (t > this.pageTable.room(seq)) {
      throw new RangeError(`cache: sequence ${seq} holds ${this.length(seq)} tokens and has room for ${this.pageTable.room(seq)} more; a prompt of ${t} does not fit (nothing was appended)`);
    }
    const snapshot = this.pageTable.snapshot();
    let done = false;
    try {
      const seqs = Int32Array.of(seq);
      const per = keepLayers ? this.layers.map((l) => ({ index: l.index, out: new Float32Array(t * dim), k: 0, indices: [] as Int32Array[], lse: [] as Float32Array[] })) : [];
      const out = new Float32Array(t * dim);
      for (let from = 0; from < t; from += queryBlock) {
        const to = Math.min(t, from + queryBlock);
        const block = yield* this.stepRequests({ x: { data: x.data.subarray(from * dim, to * dim), shape: [1, to - from, dim] }, seqs }, stepOpts, from);
        if (keepLayers) block.layers.forEach((r, j) => {
          per[j].out.set(r.out.data, from * dim);
          per[j].k = r.indices.shape[2];
          per[j].indices.push(r.indices.data);
          per[j].lse.push(r.lse.data);
        });
        out.set(block.x.data, from * dim);
        onProgress?.(to, t);
      }
      done = true;
      return {
        layers: per.map((p) => ({
          index: p.index,
          out: { data: p.out, shape: [1, t, dim] },
          indices: { data: concat(Int32Array, p.indices), shape: [1, t, p.k] },
          lse: { data: concat(Float32Array, p.lse), shape: [t, this.config.nHeads] },
        })),
        x: { data: out, shape: [1, t, dim] },
      };
    } finally {
      if (!done) this.pageTable.restore(snapshot);
    }
  }
}

function concat<T extends Int32Array | Float32Array>(ctor: { new (n: number): T }, parts: T[]): T {
  const out = new ctor(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p as never, at);
    at += p.length;
  }
  return out;
}

/** Runs a step's requests on this thread. */
function runSync<R>(g: Generator<Request, R, Answer>): R {
  let next = g.next();
  while (!next.done) {
    const r = next.value;
    let answer: Answer;
    try {
      answer = r.kind === 'layer' ? mlaDecodeStep(r.cache, r.layer, r.inputs, r.opts) : (r.between(r.index, r.out, r.info) as Tensor<Float32Array>);
    } catch (e) {
      g.return(undefined as never);
      throw e;
    }
    next = g.next(answer);
  }
  return next.value;
}

/** Runs a step's requests on the pool, awaiting each layer (and `between`). */
async function runPool<R>(pool: MlaPoolStep, g: Generator<Request, R, Answer>): Promise<R> {
  let next = g.next();
  while (!next.done) {
    const r = next.value;
    let answer: Answer;
    try {
      answer = r.kind === 'layer' ? await pool.mlaDecodeStep(r.cache, r.layer, r.inputs, r.opts) : await r.between(r.index, r.out, r.info);
    } catch (e) {
      g.return(undefined as never);
      throw e;
    }
    next = g.next(answer);
  }
  return next.value;
}

/** Layers stepped on this thread. */
export class SyncDsaModel extends DsaModel {
  /**
   * One step of m sequences, t new tokens each: x [m, t, dim] (and seqs
   * [m]) through every layer in order, `between` after each. Returns each
   * layer's out [m, t, dim], indices [m, t, k] and lse, and the final x.
   * On any error, every layer's cache is as before.
   */
  decodeStep(inputs: MlaStepInputs, opts: DsaModelStepOptions = {}): DsaModelStepResult {
    checkKnownOptions('DsaModel.decodeStep', opts, STEP_OPTIONS);
    this.begin();
    try {
      return runSync(this.stepRequests(inputs, opts, 0));
    } finally {
      this.end();
    }
  }

  /**
   * A prompt x [1, t, dim] of sequence `seq`, in blocks of `queryBlock`
   * tokens, each block through every layer (`between` per block); equals
   * layer-by-layer prefills given the same hidden states. Returns each
   * layer's out [1, t, dim], indices [1, t, k], lse [t, nHeads], and the
   * final x. All or nothing: on any error every layer's cache is as before
   * the prompt.
   */
  prefill(seq: number, inputs: { x: Tensor<Float32Array> }, opts: DsaModelPrefillOptions = {}): DsaModelStepResult {
    this.begin();
    try {
      return runSync(this.prefillRequests(seq, inputs, opts));
    } finally {
      this.end();
    }
  }
}

/** Layers stepped on a pool: the same steps, bit-identical, as promises. */
export class PooledDsaModel extends DsaModel {
  /** `SyncDsaModel.decodeStep` on the pool; `between` may return a promise. */
  async decodeStep(inputs: MlaStepInputs, opts: DsaModelStepOptions = {}): Promise<DsaModelStepResult> {
    checkKnownOptions('DsaModel.decodeStep', opts, STEP_OPTIONS);
    this.begin();
    try {
      return await runPool(this.pool!, this.stepRequests(inputs, opts, 0));
    } finally {
      this.end();
    }
  }

  /** `SyncDsaModel.prefill` on the pool. */
  async prefill(seq: number, inputs: { x: Tensor<Float32Array> }, opts: DsaModelPrefillOptions = {}): Promise<DsaModelStepResult> {
    this.begin();
    try {
      return await runPool(this.pool!, this.prefillRequests(seq, inputs, opts));
    } finally {
      this.end();
    }
  }
}

/**
 * Creates a model of consecutive layers `layers` ({ index, weights }) of
 * `config`, every layer's cache (`cache`: createDsaCache's layout and key
 * options) on one page table. With `pool`, steps run on it (PooledDsaModel,
 * promises); else on this thread (SyncDsaModel).
 */
export function createDsaModel(opts: DsaModelOptions & { pool: MlaPoolStep }): PooledDsaModel;
export function createDsaModel(opts: DsaModelOptions & { pool?: undefined }): SyncDsaModel;
export function createDsaModel(opts: DsaModelOptions): SyncDsaModel | PooledDsaModel {
  return opts?.pool !== undefined ? new PooledDsaModel(opts) : new SyncDsaModel(opts);
}

export interface LoadDsaModelOptions extends DsaModelReuse {
  /** Layers [from, to) of the checkpoint (default: all). */
  from?: number;
  to?: number;
  cache: DsaModelCacheOptions;
  pool?: MlaPoolStep;
}

/**
 * Loads layers [from, to) of a checkpoint (weights as stored; a layer that
 * reuses top-k loads no indexer) into a model; each layer's `storedBytes`
 * is the checkpoint's bytes for the tensors it read.
 */
export async function loadDsaModel(checkpoint: Checkpoint, opts: LoadDsaModelOptions & { pool: MlaPoolStep }): Promise<PooledDsaModel>;
export async function loadDsaModel(checkpoint: Checkpoint, opts: LoadDsaModelOptions & { pool?: undefined }): Promise<SyncDsaModel>;
export async function loadDsaModel(checkpoint: Checkpoint, opts: LoadDsaModelOptions): Promise<SyncDsaModel | PooledDsaModel> {
  checkKnownOptions('loadDsaModel', opts, ['from', 'to', 'cache', 'pool', 'indexTopkFreq', 'indexSkipTopkOffset']);
  if (typeof opts !== 'object' || opts === null) throw new TypeError(`loadDsaModel: expected options { cache, from?, to? }, got ${describe(opts)}`);
  checkReuse(opts);
  const count = checkpoint.layerCount;
  const from = opts.from ?? 0, to = opts.to ?? count;
  if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to > count || from >= to) {
    throw new RangeError(`from, to: expected 0 <= from < to <= ${count} (the checkpoint's layers), got from ${describe(opts.from)}, to ${describe(opts.to)}`);
  }
  const reuse = { indexTopkFreq: opts.indexTopkFreq, indexSkipTopkOffset: opts.indexSkipTopkOffset };
  const layers: { index: number; weights: MlaLayerWeights }[] = [];
  const stored: number[] = [];
  for (let i = from; i < to; i++) {
    const load = { indexer: computesTopk(checkpoint.config, i, reuse) };
    layers.push({ index: i, weights: await checkpoint.loadLayer(i, load) });
    stored.push(await checkpoint.storedLayerBytes(i, load));
  }
  const model = { config: checkpoint.config, layers, cache: opts.cache, ...reuse };
  return opts.pool !== undefined ? new PooledDsaModel({ ...model, pool: opts.pool }, stored) : new SyncDsaModel(model, stored);
}
