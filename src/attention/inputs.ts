/**
 * The checks dense and sparse attention share at the public edge: the query
 * and key/value tensors, the value width, the softmax scale and the rows.
 */
import type { Tensor } from '../tensor.js';
import { simdSupported } from '../simd/index.js';
import { checkBytes, checkFinite, checkRows, checkSame, checkSize, checkTensor } from '../validate.js';

export interface AttentionOptions {
  /** Value width: v is the first `dV` dims of each kv row (default dqk; MLA decode uses 512 of 576). */
  dV?: number;
  /** Softmax scale applied to q.k (default 1/sqrt(dqk); FlashMLA takes it explicitly). */
  smScale?: number;
  /** Query rows `[start, end)` of t to compute; the result holds just those rows. */
  rows?: [number, number];
  /** Memory guard for the outputs (default: the smaller of 4 GiB and half the machine's memory). */
  maxBytes?: number;
  /** WebAssembly SIMD for the dot products and p.v: default where available; false forces the TypeScript path. */
  simd?: boolean;
  /**
   * Float32Array [hq]: a per-head logit that joins each softmax's
   * denominator and attends to nothing (FlashMLA's `attn_sink`): out =
   * sum_j p_j v_j / (sum_j p_j + exp(sink)) in the logits' units; lse and
   * maxLogits are unchanged. -Infinity is no sink; NaN is an error.
   */
  attnSink?: Float32Array;
}

/** The attention sink option: a Float32Array of one non-NaN value per query head, or null. */
export function checkAttnSink(sink: unknown, hq: number): Float32Array | null {
  if (sink === undefined) return null;
  if (!(sink instanceof Float32Array) || sink.length !== hq) {
    throw new TypeError(`attnSink: expected a Float32Array of length hq = ${hq} (one per query head), got ${sink instanceof Float32Array ? `length ${sink.length}` : typeof sink}`);
  }
  const bad = sink.findIndex((x) => Number.isNaN(x));
  if (bad >= 0) throw new RangeError(`attnSink: head ${bad} is NaN; expected a number or -Infinity (no sink)`);
  return sink;
}

export interface AttentionDims {
  t: number;
  hq: number;
  hkv: number;
  dqk: number;
  dV: number;
  s: number;
  smScale: number;
  rowStart: number;
  rowEnd: number;
}

export function checkAttentionInputs(what: string, q: unknown, kv: unknown, opts: AttentionOptions): AttentionDims {
  const [t, hq, dqk] = checkTensor('q', q, Float32Array, ['t', 'hq', 'dqk']);
  const [s, hkv, dqkKv] = checkTensor('kv', kv, Float32Array, ['s', 'hkv', 'dqk']);
  checkSame(what, dqk, 'q dqk', dqkKv, 'kv dqk');
  if (hq % hkv !== 0) throw new RangeError(`q: hq must be a multiple of kv hkv = ${hkv}, got hq = ${hq}`);
  const dV = opts.dV === undefined ? dqk : checkSize('dV', opts.dV);
  if (dV > dqk) throw new RangeError(`dV: expected at most dqk = ${dqk}, got ${dV}`);
  const smScale = opts.smScale === undefined ? 1 / Math.sqrt(dqk) : checkFinite('smScale', opts.smScale);
  const [rowStart, rowEnd] = checkRows(opts.rows, t);
  const rows = rowEnd - rowStart;
  checkBytes(`${what} outputs [${rows}, ${hq}, ${dV}]`, rows * hq * (dV + 2) * 4, opts.maxBytes, 'use rows to stream query blocks');
  return { t, hq, hkv, dqk, dV, s, smScale, rowStart, rowEnd };
}

export interface AttentionResult {
  /** [rows, hq, dV] */
  out: Tensor<Float32Array>;
  /** [rows, hq], natural log of the softmax denominator over scaled logits (the sink left out); +Infinity when no key is kept. */
  lse: Tensor<Float32Array>;
}

/** Resolves the `simd` option: unset means "where available"; true where it is missing is an error. */
export function useSimd(simd: unknown): boolean {
  if (simd === undefined) return simdSupported();
  if (typeof simd !== 'boolean') throw new TypeError(`simd: expected a boolean, got ${typeof simd}`);
  if (simd && !simdSupported()) throw new RangeError('simd: true needs WebAssembly SIMD, which this engine lacks; leave simd unset to fall back');
  return simd;
}
