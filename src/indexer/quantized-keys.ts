/**
 * Keys quantized once, so repeated scoring (decode steps over a growing
 * cache) neither re-quantizes them nor copies float32 keys: int8 block-128
 * values and scales (src/indexer/quantize.ts), or DeepSeek-V3.2's FP8 key
 * cache in vLLM's page layout (src/indexer/fp8.ts).
 */
import { allocLocal, allocShared, describe, type Tensor } from '../tensor.js';
import { checkOneOf, checkTensor } from '../validate.js';
import { QUANT_BLOCK, quantizeRowsRef } from './quantize.js';
import { FP8_BLOCK, type Fp8Keys, type ScaleFormat, type ScaleRule } from './fp8.js';
import { checkKnownOptions } from '../options.js';
import { quantizeKeysFp8Rows } from './fp8-kernels.js';

export interface QuantizedKeys {
  /** [b, s, d] Int8Array, values in [-127, 127]. */
  values: Tensor<Int8Array>;
  /** [b, s, ceil(d/128)] Float32Array, one scale per 128-element block of each key. */
  scales: Tensor<Float32Array>;
}

export interface QuantizeKeysOptions {
  /**
   * Back the result with SharedArrayBuffer (default false), so pool calls
   * use it in place instead of copying it into shared memory on every call.
   */
  shared?: boolean;
}

/**
 * Quantizes keys k [b, s, d] (finite float32) exactly as
 * `indexerScores(..., { precision: 'int8' })` (and 'int7') does: the result passed as
 * its `k` gives bit-identical scores.
 */
export function quantizeKeys(k: Tensor<Float32Array>, opts: QuantizeKeysOptions = {}): QuantizedKeys {
  checkKnownOptions('quantizeKeys', opts, ['shared']);
  const [b, s, d] = checkTensor('k', k, Float32Array, ['b', 's', 'd']);
  const alloc = opts.shared ? allocShared : allocLocal;
  const nb = Math.ceil(d / QUANT_BLOCK);
  const values = alloc(Int8Array, b * s * d);
  const blockMajor = new Float32Array(nb * b * s);
  quantizeRowsRef(k.data, 0, b * s, d, values, blockMajor, b * s);
  const scales = alloc(Float32Array, b * s * nb);
  for (let r = 0; r < b * s; r++) for (let blk = 0; blk < nb; blk++) scales[r * nb + blk] = blockMajor[blk * b * s + r];
  return { values: { data: values, shape: [b, s, d] }, scales: { data: scales, shape: [b, s, nb] } };
}

export function isQuantizedKeys(k: unknown): k is QuantizedKeys {
  return typeof k === 'object' && k !== null && 'values' in k && 'scales' in k;
}

/** Validates quantized keys at the edge; returns [b, s, d]. */
export function checkQuantizedKeys(k: QuantizedKeys): [number, number, number] {
  const [b, s, d] = checkTensor('k.values', k.values, Int8Array, ['b', 's', 'd']);
  const [bs, ss, nb] = checkTensor('k.scales', k.scales, Float32Array, ['b', 's', 'ceil(d/128)']);
  const want = Math.ceil(d / QUANT_BLOCK);
  if (bs !== b || ss !== s || nb !== want) {
    throw new RangeError(`k.scales.shape: expected [${b}, ${s}, ${want}] for k.values [${b}, ${s}, ${d}], got [${bs}, ${ss}, ${nb}]`);
  }
  return [b, s, d];
}

export interface QuantizeKeysFp8Options {
  /** Rotate each key by the Hadamard transform first, as DeepSeek does (default true; d a power of 2). */
  hadamard?: boolean;
  /** 'float32' (default: amax / 448) or 'ue8m0' (rounded up to a power of two). */
  scaleFormat?: ScaleFormat;
  /**
   * How each scale comes from amax: 'deepseek' (default, DeepSeek's
   * act_quant: f32(max(amax, 1e-4) * f32(1/448))) or 'vllm' (vLLM's
   * indexer key-cache writer: f32(max(amax, 1e-4) / 448)), whose bytes are
   * then those vLLM's writer stores for finite keys.
   */
  scaleRule?: ScaleRule;
  /** Back the result with SharedArrayBuffer (default false), for pool calls in place. */
  shared?: boolean;
}

const FP8_KEY_OPTIONS = ['hadamard', 'scaleFormat', 'scaleRule', 'shared'] as const;

/**
 * Quantizes keys k [b, s, d] (or a paged [numPages, pageSize, d]) to FP8 as
 * DeepSeek-V3.2's indexer stores them: optional Hadamard rotation, then
 * act_quant (e4m3 codes, one float32 scale per key; d <= 128), in vLLM's
 * page layout [b, s, d + 4] (each row of s tokens is one page: codes, then
 * scales). `indexerScores(q, result, w, { precision: 'fp8' })` gives the
 * same scores as passing the float32 keys with the same options (and the
 * default scaleRule). A key holding NaN or Infinity gets scale NaN (its
 * scores are NaN). With `scaleRule: 'vllm'` and d = 128 each page is byte for
 * byte what vLLM's `indexer_k_quant_and_cache` writes into a block of its
 * indexer cache (docs/serving.md, "vLLM's conventions"). An option this
 * function does not take is a TypeError naming it.
 */
export function quantizeKeysFp8(k: Tensor<Float32Array>, opts: QuantizeKeysFp8Options = {}): Fp8Keys {
  checkKnownOptions('quantizeKeysFp8', opts, FP8_KEY_OPTIONS);
  const [b, s, d] = checkTensor('k', k, Float32Array, ['b', 's', 'd']);
  if (d > FP8_BLOCK) throw new RangeError(`k: FP8 keys need d <= ${FP8_BLOCK} (one scale per key, DeepSeek's layout), got d = ${d}`);
  if ((s * d) % 4 !== 0) throw new RangeError(`k: FP8 pages need s * d a multiple of 4 (the scales are float32 after the codes), got ${s} * ${d}`);
  const hadamard = opts.hadamard ?? true;
  if (typeof hadamard !== 'boolean') throw new TypeError(`hadamard: expected a boolean, got ${describe(hadamard)}`);
  if (hadamard && (d & (d - 1)) !== 0) throw new RangeError(`hadamard: needs d a power of 2, got d = ${d}`);
  const scaleFormat = checkOneOf('scaleFormat', opts.scaleFormat ?? 'float32', ['float32', 'ue8m0'] as const);
  const scaleRule = checkOneOf('scaleRule', opts.scaleRule ?? 'deepseek', ['deepseek', 'vllm'] as const);
  const data = (opts.shared ? allocShared : allocLocal)(Uint8Array, b * s * (d + 4));
  quantizeKeysFp8Rows({ k: k.data, d, hadamard, ue8m0: scaleFormat === 'ue8m0', data, pageSize: s, vllmScale: scaleRule === 'vllm' }, 0, b * s);
  return { data, shape: [b, s, d + 4], hadamard, scaleFormat, scaleRule };
}
