/**
 * Linear weights as checkpoints store them (SPEC "Weights as checkpoints
 * store them"): `W [out, in]` in the PyTorch `nn.Linear` layout, kept in
 * memory in the stored form, never widened to a float32 copy.
 *
 *   float32  the values
 *   bf16     the upper 16 bits of each float32 value (Uint16Array)
 *   fp8      e4m3 codes (Uint8Array) and one float32 scale per 128 x 128
 *            block, `weight_scale_inv [ceil(out/128), ceil(in/128)]`, edge
 *            blocks partial:  W[i, j] = e4m3(code[i, j]) * scale[i >> 7, j >> 7]
 */
import { describe } from '../tensor.js';
import { checkTensor } from '../validate.js';
import { E4M3_MAX, E4M3_VALUES, e4m3Encode } from '../indexer/fp8.js';

/** Rows and columns of one block of an FP8 weight's scale grid. */
export const WEIGHT_BLOCK = 128;

export type WeightFormat = 'float32' | 'bf16' | 'fp8';

export interface Float32Weight {
  format: 'float32';
  /** [out, in] */
  shape: [number, number];
  data: Float32Array;
}

export interface Bf16Weight {
  format: 'bf16';
  /** [out, in] */
  shape: [number, number];
  /** bf16 bit patterns, row-major [out, in]. */
  data: Uint16Array;
}

export interface Fp8Weight {
  format: 'fp8';
  /** [out, in] */
  shape: [number, number];
  /** e4m3 codes, row-major [out, in]. */
  data: Uint8Array;
  /** float32 `weight_scale_inv`, row-major [ceil(out / 128), ceil(in / 128)]. */
  scale: Float32Array;
}

export type Weight = Float32Weight | Bf16Weight | Fp8Weight;

/** The number of bytes a weight keeps in memory: its codes or values, and an FP8 weight's scales. */
export function weightBytes(w: Weight): number {
  return w.data.byteLength + (w.format === 'fp8' ? w.scale.byteLength : 0);
}

/** Whether `w` looks like a `Weight` (has a `format`), as opposed to a plain `{ data, shape }` tensor. */
export function isWeight(w: unknown): w is Weight {
  return typeof w === 'object' && w !== null && 'format' in w;
}

const FORMATS: readonly WeightFormat[] = ['float32', 'bf16', 'fp8'];
const DATA_KIND = { float32: Float32Array, bf16: Uint16Array, fp8: Uint8Array } as const;

/**
 * Validates a weight at the edge: `format` one of 'float32' | 'bf16' |
 * 'fp8', `shape` [out, in] of positive integers, `data` the format's typed
 * array (Float32Array, Uint16Array, Uint8Array) of out * in elements, and
 * for fp8 `scale` a Float32Array [ceil(out/128), ceil(in/128)] of finite
 * values (a non-finite block scale is a RangeError naming the block; the
 * scale grid is 1/16384 of the codes, so the scan is cheap). Codes and
 * values are not scanned. Returns [out, in].
 */
export function checkWeight(name: string, w: unknown): [number, number] {
  if (!isWeight(w)) {
    throw new TypeError(`${name}: expected a weight { format: 'float32' | 'bf16' | 'fp8', shape: [out, in], data, scale? }, got ${describe(w)}`);
  }
  const format = w.format as unknown;
  if (!FORMATS.includes(format as WeightFormat)) {
    throw new RangeError(`${name}.format: expected one of 'float32', 'bf16', 'fp8', got ${describe(format)}`);
  }
  const shape = w.shape as unknown;
  if (!Array.isArray(shape) || shape.length !== 2 || !shape.every((x) => Number.isSafeInteger(x) && x > 0)) {
    throw new RangeError(`${name}.shape: expected [out, in] of positive integers, got ${Array.isArray(shape) ? `[${shape.join(', ')}]` : describe(shape)}`);
  }
  const [out, inDim] = shape as [number, number];
  const kind = DATA_KIND[format as WeightFormat];
  if (!(w.data instanceof kind)) {
    throw new TypeError(`${name}.data: a '${String(format)}' weight holds a ${kind.name}, got ${describe(w.data)}`);
  }
  if (w.data.length !== out * inDim) {
    throw new RangeError(`${name}.data: expected length out * in = ${out} * ${inDim} = ${out * inDim}, got ${w.data.length}`);
  }
  if (w.format === 'fp8') {
    const rows = Math.ceil(out / WEIGHT_BLOCK), cols = Math.ceil(inDim / WEIGHT_BLOCK);
    if (!(w.scale instanceof Float32Array)) {
      throw new TypeError(`${name}.scale: expected a Float32Array [ceil(out/128), ceil(in/128)] = [${rows}, ${cols}] (weight_scale_inv), got ${describe(w.scale)}`);
    }
    if (w.scale.length !== rows * cols) {
      throw new RangeError(`${name}.scale: expected [ceil(out/128), ceil(in/128)] = [${rows}, ${cols}] (${rows * cols} values) for shape [${out}, ${inDim}], got length ${w.scale.length}`);
    }
    for (let i = 0; i < w.scale.length; i++) {
      if (!Number.isFinite(w.scale[i])) {
        throw new RangeError(`${name}.scale: block [${Math.floor(i / cols)}, ${i % cols}] is ${w.scale[i]}, expected a finite scale`);
      }
    }
  }
  return [out, inDim];
}

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** The bf16 bit pattern nearest to float32 `x` (ties to even; any NaN gives 0x7fc0, as PyTorch's `to(bfloat16)`). */
export function bf16Bits(x: number): number {
  F32[0] = x;
  const bits = U32[0];
  if ((bits & 0x7fffffff) > 0x7f800000) return 0x7fc0;
  return (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
}

/** The float32 value of a bf16 bit pattern. */
export function bf16Value(bits: number): number {
  U32[0] = (bits & 0xffff) << 16;
  return F32[0];
}

/** float32 values -> bf16 bit patterns, rounded to nearest, ties to even; NaN stays NaN (0x7fc0); overflow rounds to +-Infinity. */
export function toBf16(x: Float32Array): Uint16Array {
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = bf16Bits(x[i]);
  return out;
}

/**
 * The weight's float32 values [out, in] (a reference for tests; the kernels
 * never widen a weight): bf16 bits << 16, and for fp8
 * f32(e4m3(code[i, j]) * scale[i >> 7, j >> 7]), the float32 product of
 * DeepSeek's `weight_dequant` before its cast to the default dtype.
 */
export function dequantizeWeight(w: Weight): Float32Array {
  const [out, inDim] = checkWeight('w', w);
  if (w.format === 'float32') return w.data.slice();
  const values = new Float32Array(out * inDim);
  if (w.format === 'bf16') {
    new Uint32Array(values.buffer).set(Uint32Array.from(w.data, (b) => b << 16));
    return values;
  }
  const cols = Math.ceil(inDim / WEIGHT_BLOCK);
  for (let i = 0; i < out; i++) {
    for (let j = 0; j < inDim; j++) {
      values[i * inDim + j] = E4M3_VALUES[w.data[i * inDim + j]] * w.scale[(i >> 7) * cols + (j >> 7)];
    }
  }
  return values;
}

/**
 * Quantizes float32 values [out, in] into an FP8 weight the way DeepSeek's
 * checkpoints are made: per 128 x 128 block (edge blocks partial) scale =
 * f32(amax / 448) (a block of zeros gets scale 1), codes =
 * e4m3(f32(w / scale)), nearest, ties to even, saturating at +-448. A
 * non-finite value is a RangeError naming its position.
 */
export function quantizeWeightFp8(w: { data: Float32Array; shape: number[] }): Fp8Weight {
  const [out, inDim] = checkTensor('w', w, Float32Array, ['out', 'in']);
  const rows = Math.ceil(out / WEIGHT_BLOCK), cols = Math.ceil(inDim / WEIGHT_BLOCK);
  const data = new Uint8Array(out * inDim), scale = new Float32Array(rows * cols);
  for (let i = 0; i < w.data.length; i++) {
    if (!Number.isFinite(w.data[i])) throw new RangeError(`w: element [${Math.floor(i / inDim)}, ${i % inDim}] is ${w.data[i]}, expected finite values to quantize`);
  }
  for (let br = 0; br < rows; br++) {
    for (let bc = 0; bc < cols; bc++) {
      const i1 = Math.min(out, (br + 1) * WEIGHT_BLOCK), j1 = Math.min(inDim, (bc + 1) * WEIGHT_BLOCK);
      let amax = 0;
      for (let i = br * WEIGHT_BLOCK; i < i1; i++) for (let j = bc * WEIGHT_BLOCK; j < j1; j++) amax = Math.max(amax, Math.abs(w.data[i * inDim + j]));
      const s = amax === 0 ? 1 : Math.fround(amax / E4M3_MAX);
      scale[br * cols + bc] = s;
      for (let i = br * WEIGHT_BLOCK; i < i1; i++) {
        for (let j = bc * WEIGHT_BLOCK; j < j1; j++) data[i * inDim + j] = e4m3Encode(Math.fround(w.data[i * inDim + j] / s));
      }
    }
  }
  return { format: 'fp8', shape: [out, inDim], data, scale };
}

/**
 * The weight with its arrays backed by SharedArrayBuffer (copied once;
 * arrays already shared are kept), so pool calls read it in place instead
 * of copying it into the pool's staging on every call.
 */
export function shareWeight<W extends Weight>(w: W): W {
  checkWeight('w', w);
  const share = <T extends Float32Array | Uint16Array | Uint8Array>(a: T): T => {
    if (typeof SharedArrayBuffer !== 'function' || a.buffer instanceof SharedArrayBuffer) return a;
    const ctor = a.constructor as new (buffer: SharedArrayBuffer, offset: number, length: number) => T;
    const copy = new ctor(new SharedArrayBuffer(a.byteLength), 0, a.length);
    copy.set(a as never);
    return copy;
  };
  const shape: [number, number] = [w.shape[0], w.shape[1]];
  if (w.format === 'fp8') return { format: 'fp8', shape, data: share(w.data), scale: share(w.scale) } as W;
  return { format: w.format, shape, data: share(w.data) } as W;
}
