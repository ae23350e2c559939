/**
 * linear: y = x W^T with W in the form a checkpoint stores it (float32,
 * bf16, or FP8 e4m3 with 128 x 128 block scales; src/weights/weight.ts),
 * read the way DeepSeek-V3's `linear` reads it (`inference/model.py`):
 *
 *   gemmImpl 'bf16' (default, DeepSeek's default `gemm_impl`): an FP8 weight
 *     is dequantized (`weight_dequant`: f32(e4m3(code) * scale)) and rounded
 *     to bf16, then a float GEMM;
 *   gemmImpl 'fp8': x is quantized (`act_quant`: per row, blocks of 128
 *     along `in`, the FP8 indexer's rules, `scaleFormat` 'float32' or
 *     'ue8m0'; a last partial block has its own amax, where DeepSeek asserts
 *     in % 128 == 0), then `fp8_gemm`: per 128-block partial dots of e4m3
 *     values (exact products, float32 sums), each scaled by x's block scale
 *     times the weight's block scale, accumulated across blocks in float32.
 *
 * float32 and bf16 weights are always the float GEMM (DeepSeek quantizes x
 * only for FP8 weights), so one option can be handed to a layer of mixed
 * weights. Where DeepSeek's activations and outputs are bf16, here x is
 * float32 as given (never rounded) and y is float32 (never rounded): the
 * float GEMM is sum_j f32(x[j] * v[j]) in float32, j ascending. The exact
 * order of both GEMMs is in src/weights/linear-kernels.ts; the WebAssembly
 * kernels follow it, so every path (one thread, the pool, `simd: false`)
 * gives the same bits.
 */
import type { Plan, Step } from '../plan.js';
import { runPlan } from '../plan.js';
import { allocLocal, describe, product, type Alloc, type Tensor } from '../tensor.js';
import { checkOneOf, checkOut } from '../validate.js';
import { FP8_BLOCK, type ScaleFormat } from '../indexer/fp8.js';
import { checkWeight, type Weight } from './weight.js';
import { weightKernels } from './kernels.js';

/** DeepSeek's two readings of `linear` for an FP8 weight (its `gemm_impl`). */
export type GemmImpl = 'bf16' | 'fp8';

export interface LinearOptions {
  /** How an FP8 weight is read: 'bf16' (dequantize, round to bf16, float GEMM; default) or 'fp8' (act_quant of x, FP8 GEMM). Ignored for float32 and bf16 weights. */
  gemmImpl?: GemmImpl;
  /** act_quant's scale rounding with gemmImpl 'fp8': 'float32' (default) or 'ue8m0' (powers of two, DeepSeek's `scale_fmt`). */
  scaleFormat?: ScaleFormat;
  /** Float32Array [..., out] the result is written into (and returned as the result's data). */
  out?: Float32Array;
  /** `false` forces the TypeScript kernel (the reference). */
  simd?: boolean;
}

const OPTIONS = ['gemmImpl', 'scaleFormat', 'out', 'simd'];

/** The checked reading options. */
export function checkLinearOptions(opts: unknown, where = 'linear'): { gemmImpl: GemmImpl; scaleFormat: ScaleFormat; simd: boolean } {
  if (typeof opts !== 'object' || opts === null) throw new TypeError(`${where}: expected options { ${OPTIONS.join(', ')} }, got ${describe(opts)}`);
  const o = opts as LinearOptions;
  const gemmImpl = o.gemmImpl === undefined ? 'bf16' : checkOneOf('gemmImpl', o.gemmImpl, ['bf16', 'fp8'] as const);
  const scaleFormat = o.scaleFormat === undefined ? 'float32' : checkOneOf('scaleFormat', o.scaleFormat, ['float32', 'ue8m0'] as const);
  if (o.simd !== undefined && typeof o.simd !== 'boolean') throw new TypeError(`simd: expected a boolean, got ${describe(o.simd)}`);
  return { gemmImpl, scaleFormat, simd: o.simd ?? true };
}

/**
 * A reading given as an option of its own (`{ gemmImpl, scaleFormat }`,
 * e.g. the indexer's `linear`): both checked, defaults filled, any other
 * key a TypeError naming it.
 */
export function checkLinearReading(name: string, reading: unknown): { gemmImpl: GemmImpl; scaleFormat: ScaleFormat } {
  if (reading === undefined) return { gemmImpl: 'bf16', scaleFormat: 'float32' };
  if (typeof reading !== 'object' || reading === null) throw new TypeError(`${name}: expected { gemmImpl?, scaleFormat? }, got ${describe(reading)}`);
  for (const key of Object.keys(reading)) if (key !== 'gemmImpl' && key !== 'scaleFormat') throw new TypeError(`${name}: unknown option '${key}' (expected: gemmImpl, scaleFormat)`);
  const r = reading as LinearOptions;
  return {
    gemmImpl: r.gemmImpl === undefined ? 'bf16' : checkOneOf(`${name}.gemmImpl`, r.gemmImpl, ['bf16', 'fp8'] as const),
    scaleFormat: r.scaleFormat === undefined ? 'float32' : checkOneOf(`${name}.scaleFormat`, r.scaleFormat, ['float32', 'ue8m0'] as const),
  };
}

/** The shape of x [..., in] (rank >= 1, positive dims, matching data); returns the row count and in. */
function checkInput(name: string, x: unknown, inDim: number): { n: number; shape: number[] } {
  if (typeof x !== 'object' || x === null || !('data' in x) || !('shape' in x)) throw new TypeError(`${name}: expected a tensor { data, shape } of shape [..., in = ${inDim}], got ${describe(x)}`);
  const { data, shape } = x as Tensor;
  if (!(data instanceof Float32Array)) throw new TypeError(`${name}.data: expected a Float32Array, got ${describe(data)}`);
  if (!Array.isArray(shape) || shape.length < 1 || !shape.every((d) => Number.isSafeInteger(d) && d > 0)) {
    throw new RangeError(`${name}.shape: expected [..., in] of positive integers, got ${Array.isArray(shape) ? `[${shape.join(', ')}]` : describe(shape)}`);
  }
  if (shape[shape.length - 1] !== inDim) throw new RangeError(`${name}.shape: the last dim must be the weight's in = ${inDim}, got [${shape.join(', ')}]`);
  if (data.length !== product(shape)) throw new RangeError(`${name}: data.length must equal the product of shape [${shape.join(', ')}] = ${product(shape)}, got ${data.length}`);
  return { n: data.length / inDim, shape: shape.slice() };
}

/**
 * The plan of `linear`: an act_quant step over the rows of x (FP8 weights
 * read 'fp8' only), then the GEMM over the output features, which the pool
 * splits across workers.
 */
export function planLinear(x: Tensor<Float32Array>, w: Weight, opts: LinearOptions, alloc: Alloc, names = { x: 'x', w: 'w' }): Plan<Tensor<Float32Array>> {
  const [outDim, inDim] = checkWeight(names.w, w);
  const { n, shape } = checkInput(names.x, x, inDim);
  const { gemmImpl, scaleFormat, simd } = checkLinearOptions(opts);
  for (const key of Object.keys(opts)) if (!OPTIONS.includes(key)) throw new TypeError(`linear: unknown option '${key}' (expected: ${OPTIONS.join(', ')})`);
  const y = opts.out === undefined ? alloc(Float32Array, n * outDim) : checkOut('out', opts.out, Float32Array, n * outDim);
  if (y.buffer === x.data.buffer && y.byteOffset < x.data.byteOffset + x.data.byteLength && x.data.byteOffset < y.byteOffset + y.byteLength) {
    throw new RangeError(`out: must not overlap ${names.x}.data (every output reads all of its row of x)`);
  }
  const fp8Gemm = w.format === 'fp8' && gemmImpl === 'fp8';
  const steps: Step[] = [];
  let xq: Uint8Array | null = null, xs: Float32Array | null = null;
  if (fp8Gemm) {
    xq = alloc(Uint8Array, n * inDim);
    xs = alloc(Float32Array, n * Math.ceil(inDim / FP8_BLOCK));
    steps.push({ kernel: 'weights.actQuant', args: { x: x.data, n, inDim, ue8m0: scaleFormat === 'ue8m0', xq, xs }, rows: [0, n], writes: ['xq', 'xs'] });
  }
  steps.push({
    kernel: 'weights.linear',
    args: { x: x.data, xq, xs, n, inDim, outDim, format: w.format, data: w.data, scale: w.format === 'fp8' ? w.scale : null, fp8Gemm, y, simd },
    rows: [0, outDim],
    writes: ['y'],
  });
  return { steps, finish: () => ({ data: y, shape: [...shape.slice(0, -1), outDim] }) };
}

/**
 * y = x W^T. x [..., in] Float32Array, w a `Weight` [out, in]; returns
 * y [..., out] Float32Array (`out` when given). Readings and arithmetic as
 * in this file's header; errors name the argument before anything is
 * written.
 */
export function linear(x: Tensor<Float32Array>, w: Weight, opts: LinearOptions = {}): Tensor<Float32Array> {
  return runPlan(planLinear(x, w, opts, allocLocal), weightKernels);
}
