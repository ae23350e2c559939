/**
 * DeepSeek-V3.2's FP8 indexer arithmetic, in plain TypeScript: the e4m3
 * format, `act_quant` (block-128 scales), the key cache in vLLM's page
 * layout, and the reference of `fp8_index`'s scores that the WebAssembly
 * kernel (src/simd/assembly/fp8.ts) matches bit for bit.
 *
 * e4m3 ("float8_e4m3fn"): 1 sign bit, 4 exponent bits (bias 7), 3 mantissa
 * bits; subnormals (exponent 0: m * 2^-9); no infinities; 0x7f and 0xff are
 * NaN; the largest finite value is 448 (0x7e).
 *
 * act_quant, per block of 128 values along the last dim (DeepSeek's
 * `act_quant_kernel`): amax = max |x| (NaN or +-Infinity in the block makes
 * the scale NaN), scale = f32(max(amax, 1e-4) * f32(1/448)); with
 * `scaleFormat: 'ue8m0'` the scale is rounded up to a power of two
 * (2^ceil(log2 scale), from its float bits, as `fast_round_scale`); each
 * value is e4m3(clamp(f32(x / scale), -448, 448)), rounded to nearest, ties
 * to even.
 *
 * Scale rule 'vllm' (vLLM's indexer key-cache writer,
 * `indexer_k_quant_and_cache` in csrc/cache_kernels.cu): the scale is
 * f32(max(amax, 1e-4) / 448), a float32 division instead of DeepSeek's
 * multiplication by the rounded reciprocal, so about half the scales differ
 * in the last bit and a few codes with them; the codes are the same
 * e4m3(f32(x / scale)) with saturation (`__NV_SATFINITE`).
 */
import { describe } from '../tensor.js';
import { roundHalfEven } from './quantize.js';

export const E4M3_MAX = 448;
/** The code of NaN this library writes (0xff also decodes to NaN). */
export const E4M3_NAN = 0x7f;
/** DeepSeek quantizes activations in blocks of 128 along the last dimension. */
export const FP8_BLOCK = 128;

export type ScaleFormat = 'float32' | 'ue8m0';
/** How act_quant's scale comes from amax: 'deepseek' multiplies by f32(1/448), 'vllm' divides by 448 (its key-cache writer). */
export type ScaleRule = 'deepseek' | 'vllm';

/** The value of every code, as float32-exact numbers (NaN at 0x7f and 0xff). */
export const E4M3_VALUES: Float32Array = (() => {
  const values = new Float32Array(256);
  for (let c = 0; c < 256; c++) {
    const e = (c >> 3) & 15, m = c & 7, sign = c & 0x80 ? -1 : 1;
    values[c] = e === 15 && m === 7 ? NaN : sign * (e === 0 ? m * 2 ** -9 : (8 + m) * 2 ** (e - 10));
  }
  return values;
})();

/** The value of an e4m3 code. */
export function e4m3Decode(code: number): number {
  // A code outside one byte would wrap silently (code & 0xff) to another value.
  if (!Number.isInteger(code) || code < 0 || code > 255) throw new RangeError(`code: expected an integer 0..255 (one e4m3 byte), got ${describe(code)}`);
  return E4M3_VALUES[code];
}

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/**
 * The e4m3 code nearest to `x` (ties to the even code), saturating: any
 * |x| >= 448 (Infinity included) gives +-448; NaN gives 0x7f; -0 gives 0x80.
 * `x` is taken as float32 (it is rounded to one first). Normal results
 * round the float32 bits at mantissa bit 20, ties to even, and rebias the
 * exponent (127 -> 7); subnormal ones (|x| < 2^-6) are multiples of 2^-9.
 */
export function e4m3Encode(x: number): number {
  // Storing a non-number into the Float32Array would coerce it ('1' -> 1) or throw an engine error (BigInt).
  if (typeof x !== 'number') throw new TypeError(`x: expected a number, got ${describe(x)}`);
  F32[0] = x;
  const bits = U32[0];
  const sign = (bits >>> 24) & 0x80;
  const a = bits & 0x7fffffff;
  if (a > 0x7f800000) return E4M3_NAN;
  if (a >= 0x43e00000) return sign | 0x7e; // 448
  if (a < 0x3c800000) return sign | roundHalfEven(F32[0] * (sign ? -512 : 512)); // 2^-6: subnormal (8 carries into code 0x08)
  // Round to 3 mantissa bits, ties to even; a carry moves into the exponent, as it should.
  const rounded = (a + 0x7ffff + ((a >>> 20) & 1)) >>> 20;
  return sign | (rounded - (120 << 3));
}

const INV_MAX = Math.fround(1 / E4M3_MAX);
const MIN_AMAX = Math.fround(1e-4);

/** 2^ceil(log2(x)) for a positive normal float32 x, from its bits (DeepSeek's `fast_round_scale`). */
function ceilPow2(x: number): number {
  F32[0] = x;
  const bits = U32[0];
  const exponent = ((bits >>> 23) & 0xff) - 127 + ((bits & 0x7fffff) !== 0 ? 1 : 0);
  return 2 ** exponent;
}

/**
 * The block scale of amax (NaN stays NaN). Both rules are one float32
 * operation on float32 operands, so rounding the exact double result once
 * gives the float32 result bit for bit.
 */
export function fp8Scale(amax: number, format: ScaleFormat, rule: ScaleRule = 'deepseek'): number {
  if (amax !== amax) return NaN;
  const clamped = Math.max(amax, MIN_AMAX);
  const scale = Math.fround(rule === 'vllm' ? clamped / E4M3_MAX : clamped * INV_MAX);
  return format === 'ue8m0' ? ceilPow2(scale) : scale;
}

/**
 * act_quant of `n` rows of `d` values, src[srcAt + i*d + e]: codes into
 * codes[codesAt + i*codesStride + e], one scale per 128-value block into
 * scales[scalesAt + i*nb + blk] (nb = ceil(d / 128)), the scale by `rule`.
 * A block holding NaN or +-Infinity gets scale NaN and NaN codes.
 */
export function actQuantRows(
  src: Float32Array,
  srcAt: number,
  n: number,
  d: number,
  format: ScaleFormat,
  codes: Uint8Array,
  codesAt: number,
  codesStride: number,
  scales: Float32Array,
  scalesAt: number,
  rule: ScaleRule = 'deepseek',
): void {
  const nb = Math.ceil(d / FP8_BLOCK);
  for (let i = 0; i < n; i++) {
    const x = srcAt + i * d;
    for (let blk = 0; blk < nb; blk++) {
      const e0 = blk * FP8_BLOCK, e1 = Math.min(d, e0 + FP8_BLOCK);
      let amax = 0;
      for (let e = e0; e < e1; e++) amax = Number.isFinite(src[x + e]) ? Math.max(amax, Math.abs(src[x + e])) : NaN;
      const scale = fp8Scale(amax, format, rule);
      scales[scalesAt + i * nb + blk] = scale;
      for (let e = e0; e < e1; e++) {
        const v = Math.fround(src[x + e] / scale);
        codes[codesAt + i * codesStride + e] = e4m3Encode(Math.min(E4M3_MAX, Math.max(-E4M3_MAX, v)));
      }
    }
  }
}

/** In-place fast Walsh-Hadamard transform (Sylvester order) of v[at .. at+d), scaled d^-0.5 (DeepSeek's rotate_activation). */
export function hadamardInPlace(v: Float32Array, at: number, d: number): void {
  for (let len = 1; len < d; len <<= 1) {
    for (let i = 0; i < d; i += len << 1) {
      for (let j = i; j < i + len; j++) {
        const a = v[at + j], b = v[at + j + len];
        v[at + j] = a + b;
        v[at + j + len] = a - b;
      }
    }
  }
  const scale = 1 / Math.sqrt(d);
  for (let e = 0; e < d; e++) v[at + e] *= scale;
}

/**
 * A key cache in DeepSeek's FP8 serving layout (vLLM's indexer cache):
 * `data` Uint8Array of shape [numPages, pageSize, d + 4]; each page holds the
 * pageSize tokens' d e4m3 codes back to back, then their pageSize float32
 * scales (little-endian), so token o of page p has codes at byte
 * (p * pageSize + o) * d + p * pageSize * 4 and its scale at float
 * p * pageSize * (d + 4) / 4 + pageSize * d / 4 + o. A contiguous cache of
 * b sequences of s tokens is b pages of s tokens.
 */
export interface Fp8Keys {
  /** Uint8Array [numPages, pageSize, d + 4] (pageSize * d a multiple of 4). */
  data: Uint8Array;
  shape: [number, number, number];
  /** The keys were rotated by the Hadamard transform before quantizing (queries then are too). */
  hadamard: boolean;
  /** How the scales were rounded ('ue8m0': powers of two). */
  scaleFormat: ScaleFormat;
  /** How the scales were computed from amax (absent: 'deepseek'); scoring reads the stored scales either way. */
  scaleRule?: ScaleRule;
}

export function isFp8Keys(k: unknown): k is Fp8Keys {
  return typeof k === 'object' && k !== null && 'data' in k && (k as { data: unknown }).data instanceof Uint8Array && 'hadamard' in k;
}

/** Validates an Fp8Keys at the edge; returns [numPages, pageSize, d]. */
export function checkFp8Keys(name: string, k: unknown): [number, number, number] {
  if (!isFp8Keys(k)) throw new TypeError(`${name}: expected FP8 keys { data: Uint8Array, shape: [numPages, pageSize, d + 4], hadamard, scaleFormat }, got ${describe(k)}`);
  const shape = k.shape as unknown;
  if (!Array.isArray(shape) || shape.length !== 3 || !shape.every((x) => Number.isInteger(x) && x > 0)) {
    throw new RangeError(`${name}.shape: expected [numPages, pageSize, d + 4] of positive integers, got ${describe(shape)}`);
  }
  const [pages, pageSize, row] = shape as number[];
  const d = row - 4;
  if (d < 1 || d > FP8_BLOCK) throw new RangeError(`${name}.shape: the last dim is d + 4 with 1 <= d <= ${FP8_BLOCK} (one scale per key), got ${row}`);
  if ((pageSize * d) % 4 !== 0) throw new RangeError(`${name}.shape: pageSize * d must be a multiple of 4 (the scales are float32), got ${pageSize} * ${d}`);
  if (k.data.length !== pages * pageSize * row) {
    throw new RangeError(`${name}.data: expected length numPages * pageSize * (d + 4) = ${pages * pageSize * row}, got ${k.data.length}`);
  }
  if (k.data.byteOffset % 4 !== 0) throw new RangeError(`${name}.data: the byte offset must be a multiple of 4 (float32 scales), got ${k.data.byteOffset}`);
  return [pages, pageSize, d];
}

/** Float32 view of an Fp8Keys' bytes (for its scales). */
export function fp8ScaleView(k: Fp8Keys): Float32Array {
  return new Float32Array(k.data.buffer, k.data.byteOffset, k.data.length >>> 2);
}

/** Byte offset of the codes of slot `slot` (= page * pageSize + offset) in the page layout. */
export function fp8CodesAt(slot: number, pageSize: number, d: number): number {
  const page = Math.floor(slot / pageSize);
  return slot * d + page * pageSize * 4;
}

/** Float index of the scale of slot `slot` in the page layout. */
export function fp8ScaleAt(slot: number, pageSize: number, d: number): number {
  const page = Math.floor(slot / pageSize), offset = slot - page * pageSize;
  return (page * pageSize * (d + 4) + pageSize * d) / 4 + offset;
}

/**
 * Rotates (optionally) and quantizes `n` key rows of d floats, src[srcAt ..],
 * into slots slot0 .. slot0 + n - 1 of a page layout (all in one page),
 * the scales by `rule`. `rotated` is scratch of d floats.
 */
export function writeFp8Keys(
  src: Float32Array,
  srcAt: number,
  n: number,
  d: number,
  hadamard: boolean,
  format: ScaleFormat,
  data: Uint8Array,
  scales: Float32Array,
  pageSize: number,
  slot0: number,
  rotated: Float32Array,
  rule: ScaleRule = 'deepseek',
): void {
  for (let i = 0; i < n; i++) {
    rotated.set(src.subarray(srcAt + i * d, srcAt + (i + 1) * d));
    if (hadamard) hadamardInPlace(rotated, 0, d);
    const slot = slot0 + i;
    actQuantRows(rotated, 0, 1, d, format, data, fp8CodesAt(slot, pageSize, d), d, scales, fp8ScaleAt(slot, pageSize, d), rule);
  }
}

/**
 * The FP8 score of one query row against keys [0, n) (the reference of
 * `fp8_index`): for each key, out = f32(kScale * sum_h f32(wq[h] *
 * ReLU(dot_h))) with dot_h = sum over e ascending of q[h][e] * k[e] in
 * float32 (each product of two e4m3 values is exact), heads summed in
 * ascending order, ReLU keeping NaN. q [h, d] and k [n, d] are decoded
 * values; wq[h] = f32(f32(w[h] * weightScale) * qScale[h]).
 */
export function fp8RowScoresRef(q: Float32Array, wq: Float32Array, h: number, keys: Float32Array, kScales: Float32Array, n: number, d: number, out: Float32Array, outAt: number): void {
  for (let j = 0; j < n; j++) {
    let score = 0;
    for (let hh = 0; hh < h; hh++) {
      let dot = 0;
      for (let e = 0; e < d; e++) dot = Math.fround(dot + q[hh * d + e] * keys[j * d + e]);
      score = Math.fround(score + Math.fround(wq[hh] * Math.max(dot, 0)));
    }
    out[outAt + j] = Math.fround(score * kScales[j]);
  }
}
