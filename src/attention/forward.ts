/**
 * One DSA attention layer, both ways:
 *
 *   dsaForward:      lightningIndexer -> top-k indices -> sparseAttention
 *   dsaForwardDense: lightningIndexer -> top-k mask    -> denseAttention
 *
 * The indexer picks the same keys for every attention head (DeepSeek-V3.2),
 * so its indices [1, t, k] serve every kv head. The two give the same output
 * to float32 rounding; the sparse one never touches O(s) per query after the
 * indexer, the dense one is MaxText's formulation.
 */
import type { MaskData, Tensor } from '../tensor.js';
import { wordsPerRow } from '../tensor.js';
import { checkTensor } from '../validate.js';
import { checkKnownOptions } from '../options.js';
import { type IndexerInputs, type IndexerWeights, type KeyCache, type LightningIndexerOptions, type LightningIndexerResult, keyCacheShape, lightningIndexer } from '../indexer/module.js';
import { denseAttention } from './dense.js';
import { sparseAttention } from './sparse.js';

/** Attention inputs of one sequence: the new tokens' queries and the keys/values of all s = sPast + t tokens. */
export interface DsaAttentionInputs {
  /** [t, hq, dqk] */
  q: Tensor<Float32Array>;
  /** [s, hkv, dqk] (MLA: hkv = 1, dqk = 576, v = the first dV = 512 dims) */
  kv: Tensor<Float32Array>;
}

export interface DsaForwardOptions {
  /** Options of the indexer (topK, RoPE, causal, mask, precision...). `maskForm` is chosen by the forward. */
  indexer?: Omit<LightningIndexerOptions, 'maskForm'>;
  /** Value width (default dqk; MLA 512). */
  dV?: number;
  /** Softmax scale (default 1/sqrt(dqk)). */
  smScale?: number;
  /** `false` forces the TypeScript attention kernels. */
  simd?: boolean;
}

export interface DsaForwardResult {
  /** [t, hq, dV] */
  out: Tensor<Float32Array>;
  /** [t, hq], natural log; +Infinity for a query with no key (FlashMLA). */
  lse: Tensor<Float32Array>;
  /** The indexer's result (scores [1, t, s], top-k values and indices [1, t, k'], keys in the kCache's form). */
  indexer: LightningIndexerResult<KeyCache>;
}

/** The options of dsaForward and dsaForwardDense (the indexer's are lightningIndexer's own). */
const FORWARD_OPTIONS = ['indexer', 'dV', 'smScale', 'simd'];

export function checkForwardInputs(inputs: IndexerInputs<KeyCache>, attention: DsaAttentionInputs): { t: number; s: number; hkv: number } {
  const [b, t] = checkTensor('inputs.x', inputs.x, Float32Array, ['b', 't', 'dim']);
  if (b !== 1) throw new RangeError(`inputs.x: the forward runs one sequence, expected b = 1, got b = ${b}`);
  const sPast = inputs.kCache === undefined ? 0 : keyCacheShape(inputs.kCache)[1];
  const [tq] = checkTensor('attention.q', attention.q, Float32Array, ['t', 'hq', 'dqk']);
  const [s, hkv] = checkTensor('attention.kv', attention.kv, Float32Array, ['s', 'hkv', 'dqk']);
  if (tq !== t) throw new RangeError(`attention.q: expected t = ${t} rows (the indexer's tokens), got ${tq}`);
  if (s !== sPast + t) throw new RangeError(`attention.kv: expected s = sPast + t = ${sPast + t} keys, got ${s}`);
  return { t, s, hkv };
}

/** Repeats rows [t, 1, width] into [t, hkv, width] (one copy per kv head). */
export function perKvHead<T extends Int32Array | MaskData>(data: T, t: number, hkv: number, width: number): T {
  if (hkv === 1) return data;
  const ctor = data.constructor as new (n: number) => T;
  const out = new ctor(t * hkv * width);
  for (let r = 0; r < t; r++) {
    for (let g = 0; g < hkv; g++) (out as Int32Array).set((data as Int32Array).subarray(r * width, (r + 1) * width), (r * hkv + g) * width);
  }
  return out;
}

/**
 * DSA, sparse: the indexer's top-k indices go straight to `sparseAttention`
 * (top-k output is distinct, so `assumeUnique`; -1 slots are skipped).
 * Indexer weights and inputs as in `lightningIndexer` (b = 1); attention
 * `q` [t, hq, dqk], `kv` [s, hkv, dqk] with s = sPast + t.
 */
export function dsaForward(
  weights: IndexerWeights,
  inputs: IndexerInputs<KeyCache>,
  attention: DsaAttentionInputs,
  opts: DsaForwardOptions = {},
): DsaForwardResult {
  checkKnownOptions('dsaForward', opts, FORWARD_OPTIONS);
  const { t, hkv } = checkForwardInputs(inputs, attention);
  const indexer = lightningIndexer(weights, inputs, { ...opts.indexer });
  const k = indexer.indices.shape[2];
  const indices = { data: perKvHead(indexer.indices.data, t, hkv, k), shape: [t, hkv, k] };
  const { out, lse } = sparseAttention(attention.q, attention.kv, indices, { dV: opts.dV, smScale: opts.smScale, simd: opts.simd, assumeUnique: true });
  return { out, lse, indexer };
}

/**
 * DSA, dense: the indexer's top-k as a bit mask [t, hkv, ceil(s/32)], then
 * `denseAttention` over all s keys. Same arguments as `dsaForward`.
 */
export function dsaForwardDense(
  weights: IndexerWeights,
  inputs: IndexerInputs<KeyCache>,
  attention: DsaAttentionInputs,
  opts: DsaForwardOptions = {},
): DsaForwardResult & { mask: Tensor<MaskData> } {
  checkKnownOptions('dsaForwardDense', opts, FORWARD_OPTIONS);
  const { t, s, hkv } = checkForwardInputs(inputs, attention);
  const indexer = lightningIndexer(weights, inputs, { ...opts.indexer, maskForm: 'bits' });
  const words = wordsPerRow(s);
  const mask = { data: perKvHead(indexer.mask!.data, t, hkv, words), shape: [t, hkv, words] };
  const { out, lse } = denseAttention(attention.q, attention.kv, mask, { dV: opts.dV, smScale: opts.smScale, simd: opts.simd });
  return { out, lse, indexer, mask };
}
