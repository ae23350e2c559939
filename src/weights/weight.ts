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
