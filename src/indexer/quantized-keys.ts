/**
 * Keys quantized once, DeepSeek-V3.2's FP8 key cache in int8: block-128
 * values and scales (src/indexer/quantize.ts), so repeated int8 scoring
 * (decode steps over a growing cache) neither re-quantizes the keys nor
 * copies float32 keys.
 */
import { allocLocal, allocShared, type Tensor } from '../tensor.js';
import { checkTensor } from '../validate.js';
import { QUANT_BLOCK, quantizeRowsRef } from './quantize.js';

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
