/**
 * The error bounds behind `tolerance: { precision }` of compareSelections
 * (docs/compare.md derives each one): how far a score can move when the
 * scores, or the indexer inputs they come from, are held in a lower
 * precision. Pure functions over numbers and typed arrays, no validation.
 */
import { hadamardInPlace, E4M3_MAX } from '../indexer/fp8.js';

/** The named precisions a tolerance can be given in. */
export const PRECISIONS = ['bf16', 'fp16', 'fp8', 'int8'] as const;
export type Precision = (typeof PRECISIONS)[number];

/** Codes of the precisions in kernel arguments (0: none). */
export const PRECISION_CODE: Record<Precision, number> = { bf16: 1, fp16: 2, fp8: 3, int8: 4 };

/**
 * Unit roundoff u (half the spacing of the significands: 2^-p for p
 * significand bits with the implicit one) of the float formats; int8 is a
 * fixed-point grid per block and has none.
 */
export const UNIT_ROUNDOFF: Record<'bf16' | 'fp16' | 'fp8', number> = { bf16: 2 ** -8, fp16: 2 ** -11, fp8: 2 ** -4 };

/** Spacing of the subnormals (bf16 shares float32's exponent range; e4m3: 2^-6 * 2^-3). */
const SUBNORMAL_SPACING = [0, 2 ** -133, 2 ** -24, 2 ** -9, 0];
/** The largest value each rounds to before overflow (fp16 rounds to Infinity past 65520, e4m3 saturates at 448 in DeepSeek's clamp). */
const LARGEST = [Infinity, 3.3895313892515355e38, 65504, E4M3_MAX, Infinity];

/** float32's unit roundoff, for the evaluation error of either side's float32 arithmetic. */
const U32 = 2 ** -24;

/**
 * The score-rounding bound (`precisionOf: 'scores'`, bf16 or fp16): two
 * scores x and y that round to the same value can come out in either order;
 * rounding is monotone, so no farther pair can swap. Two values that round
 * to the same c lie in one rounding interval, whose width is at most the
 * spacing at c <= 2u * |c| <= 2u (1 + u) max(|x|, |y|), or the subnormal
 * spacing below the normal range. Past the largest finite value everything
 * rounds to one value: Infinity.
 */
export function scoreRoundingBound(code: number, x: number, y: number): number {
  const m = Math.max(Math.abs(x), Math.abs(y));
  if (m > LARGEST[code]) return Infinity;
  const u = code === 1 ? UNIT_ROUNDOFF.bf16 : UNIT_ROUNDOFF.fp16;
  return Math.max(2 * u * (1 + u) * m, SUBNORMAL_SPACING[code]);
}

/** Everything `inputBound` reads: the float32 indexer inputs of the rows and the scratch it fills per row. */
export interface InputBoundArgs {
  /** [rows, h, d] */
  q: Float32Array;
  /** [b, s, d] */
  keys: Float32Array;
  /** [rows, h] */
  w: Float32Array;
  t: number;
  s: number;
  h: number;
  d: number;
  weightScale: number;
  /** PRECISION_CODE of the precision. */
  code: number;
  /** fp8: the inputs are rotated by the Hadamard transform before quantizing (DeepSeek). */
  hadamard: boolean;
  /** Scratch [h * d] x 2, [h] x 2, [d] x 3 (Float64Array), filled by `prepareRow`. */
  qAbs: Float64Array;
  qErr: Float64Array;
  wAbs: Float64Array;
  wErr: Float64Array;
  kAbs: Float64Array;
  kErr: Float64Array;
  /** Float32Array [d] for the rotation of one vector. */
  rotate: Float32Array;
}

/** Block length of the quantized formats along d (DeepSeek's act_quant, the library's int8). */
const BLOCK = 128;

/**
 * The largest error of each element of `v` (length n, at `at`, rotated in
 * `rotate` first for fp8 with hadamard) when held in precision `code`:
 * |v| into `abs`, the bound into `err`.
 *
 * - bf16 / fp16: round to nearest, u |x|, or the subnormals' half spacing;
 *   Infinity past the largest value.
 * - fp8 (DeepSeek's act_quant): per block of 128 a float32 scale
 *   sigma = max(amax, 1e-4) / 448, x / sigma rounded to e4m3 (relative
 *   2^-4 in the normals, 2^-10 absolute among the subnormals, times sigma),
 *   plus 2^-23 |x| for the float32 division and the product code * sigma.
 * - int8 (the library's): per block sigma = amax / 127, values rounded to
 *   integers: sigma / 2, plus 2^-16 sigma for the float32 product
 *   x * (127 / amax) before rounding; an all-zero block is exact.
 */
function elementBounds(code: number, hadamard: boolean, src: Float32Array, at: number, n: number, rotate: Float32Array, abs: Float64Array, err: Float64Array, outAt: number): void {
  let v = src;
  let base = at;
  if (code === 3 && hadamard) {
    rotate.set(src.subarray(at, at + n));
    hadamardInPlace(rotate, 0, n);
    v = rotate;
    base = 0;
  }
  if (code === 1 || code === 2) {
    const u = code === 1 ? UNIT_ROUNDOFF.bf16 : UNIT_ROUNDOFF.fp16;
    for (let i = 0; i < n; i++) {
      const x = Math.abs(v[base + i]);
      abs[outAt + i] = x;
      err[outAt + i] = x > LARGEST[code] ? Infinity : Math.max(u * x, SUBNORMAL_SPACING[code] / 2);
    }
    return;
  }
  for (let b0 = 0; b0 < n; b0 += BLOCK) {
    const b1 = Math.min(n, b0 + BLOCK);
    let amax = 0;
    for (let i = b0; i < b1; i++) amax = Math.max(amax, Math.abs(v[base + i]));
    for (let i = b0; i < b1; i++) {
      const x = Math.abs(v[base + i]);
      abs[outAt + i] = x;
      if (code === 3) {
        const sigma = Math.max(amax, 1e-4) / E4M3_MAX;
        err[outAt + i] = UNIT_ROUNDOFF.fp8 * x + 2 ** -10 * sigma + 2 ** -23 * x;
      } else {
        err[outAt + i] = amax === 0 ? 0 : (amax / 127) * (0.5 + 2 ** -16);
      }
    }
  }
}

/** Fills the query side of the scratch for row `row`: |q|, q's bound per element, |w| and w's bound (w is rounded only in bf16/fp16). */
export function prepareRow(args: InputBoundArgs, row: number): void {
  const { h, d, code } = args;
  for (let hi = 0; hi < h; hi++) elementBounds(code, args.hadamard, args.q, (row * h + hi) * d, d, args.rotate, args.qAbs, args.qErr, hi * d);
  for (let hi = 0; hi < h; hi++) {
    const w = Math.abs(args.w[row * h + hi]);
    args.wAbs[hi] = w;
    args.wErr[hi] = code === 1 || code === 2 ? (w > LARGEST[code] ? Infinity : Math.max(UNIT_ROUNDOFF[code === 1 ? 'bf16' : 'fp16'] * w, SUBNORMAL_SPACING[code] / 2)) : 0;
  }
}

/**
 * The bound E on |score' - score| of key `key` in row `row` (prepared by
 * `prepareRow`), where score' is the indexer's score from inputs held in
 * the precision and score the float32 one:
 *
 *   E = |ws| sum_h [ dw_h * sum_i (|q_i| + dq_i)(|k_i| + dk_i)
 *                    + |w_h| * sum_i (|q_i| dk_i + |k_i| dq_i + dq_i dk_i) ]
 *       + 2 gamma_n |ws| sum_h (|w_h| + dw_h) sum_i (|q_i| + dq_i)(|k_i| + dk_i)
 *
 * ReLU is 1-Lipschitz, so the error of a dot passes through it unchanged;
 * the last term is the float32 evaluation of both scores (gamma_n =
 * n u / (1 - n u), n = d + h + 2 ceil(d/128) + log2(d) + 4 operations on the
 * longest path).
 */
export function inputBound(args: InputBoundArgs, row: number, key: number): number {
  const { h, d, code, qAbs, qErr, wAbs, wErr, kAbs, kErr } = args;
  const bi = Math.floor(row / args.t);
  elementBounds(code, args.hadamard, args.keys, (bi * args.s + key) * d, d, args.rotate, kAbs, kErr, 0);
  const n = d + h + 2 * Math.ceil(d / BLOCK) + Math.ceil(Math.log2(d)) + 4;
  const gamma = (n * U32) / (1 - n * U32);
  let err = 0;
  let magnitude = 0;
  for (let hi = 0; hi < h; hi++) {
    let dot = 0;
    let big = 0;
    for (let i = 0; i < d; i++) {
      const qa = qAbs[hi * d + i], dq = qErr[hi * d + i], ka = kAbs[i], dk = kErr[i];
      dot += qa * dk + ka * dq + dq * dk;
      big += (qa + dq) * (ka + dk);
    }
    err += wErr[hi] * big + wAbs[hi] * dot;
    magnitude += (wAbs[hi] + wErr[hi]) * big;
  }
  const ws = Math.abs(args.weightScale);
  const bound = ws * err + 2 * gamma * ws * magnitude;
  // An element past the format's range (error Infinity) times a zero gives NaN: no bound.
  return bound === bound ? bound : Infinity;
}
