/**
 * The kernels of `linear` (src/weights/linear.ts), over a range of output
 * features [o0, o1) for every row of x, so any split of the outputs gives
 * the same bits. The arithmetic, for y[r, o] (float32 throughout, no fused
 * multiply-add):
 *
 *   float GEMM ('float32' and 'bf16' weights, and 'fp8' weights read 'bf16'):
 *     y = sum over j = 0, 1, .., in - 1 (ascending) of f32(x[r, j] * v[o, j])
 *     with v the weight's value: float32 as is, bf16 bits << 16, and fp8
 *     bf16(f32(e4m3(code) * scale)) (DeepSeek's `weight_dequant`, then
 *     its cast to bf16, nearest even).
 *   FP8 GEMM ('fp8' weights read 'fp8'; x act_quant-ed by 'weights.actQuant'):
 *     for each 128-block kb of `in`, ascending:
 *       p  = sum over j in the block, ascending, of e4m3(xq[r, j]) * e4m3(code[o, j])
 *            (each product of two e4m3 values is exact in float32)
 *       y  = f32(y + f32(p * f32(xs[r, kb] * scale[o >> 7, kb])))
 *     which is `fp8_gemm`'s promotion: a block's partial dot scaled by the
 *     product of the two scales, accumulated across blocks in float32.
 *
 * 'weights.actQuant' args: x [n, in] float32, n, inDim, ue8m0, xq [n, in]
 * codes, xs [n, ceil(in / 128)]; rows = rows of x.
 * 'weights.linear' args: x, xq, xs (null unless fp8 read 'fp8'), n, inDim,
 * outDim, format, data, scale (null unless fp8), fp8Gemm, y [n, out],
 * simd; rows = output features.
 */
import type { KernelArgs } from '../plan.js';
import { E4M3_VALUES, FP8_BLOCK, actQuantRows } from '../indexer/fp8.js';
import { WEIGHT_BLOCK, type WeightFormat } from './weight.js';

export function actQuantKernel(args: KernelArgs, rowStart: number, rowEnd: number): void {
  const x = args.x as Float32Array, xq = args.xq as Uint8Array, xs = args.xs as Float32Array;
  const inDim = args.inDim as number, nb = Math.ceil(inDim / FP8_BLOCK);
  actQuantRows(x, rowStart * inDim, rowEnd - rowStart, inDim, args.ue8m0 ? 'ue8m0' : 'float32', xq, rowStart * inDim, inDim, xs, rowStart * nb);
}

// Per-thread scratch: one decoded weight row (float32 values, or e4m3 values for the FP8 GEMM).
let rowScratch = new Float32Array(0);

/** The decoded values of weight row o into v (see the header: float GEMM values, or unscaled e4m3 values for the FP8 GEMM). */
function decodeRow(format: WeightFormat, data: Float32Array | Uint16Array | Uint8Array, scale: Float32Array | null, fp8Gemm: boolean, o: number, inDim: number, v: Float32Array): void {
  const at = o * inDim;
  if (format === 'float32') {
    v.set((data as Float32Array).subarray(at, at + inDim));
    return;
  }
  const bits = new Uint32Array(v.buffer, v.byteOffset, inDim);
  if (format === 'bf16') {
    for (let j = 0; j < inDim; j++) bits[j] = data[at + j] << 16;
    return;
  }
  if (fp8Gemm) {
    for (let j = 0; j < inDim; j++) v[j] = E4M3_VALUES[data[at + j]];
    return;
  }
  const cols = Math.ceil(inDim / WEIGHT_BLOCK), scaleRow = (o >> 7) * cols;
  for (let j = 0; j < inDim; j++) {
    v[j] = E4M3_VALUES[data[at + j]] * scale![scaleRow + (j >> 7)];
    const u = bits[j];
    bits[j] = (u & 0x7fffffff) > 0x7f800000 ? 0x7fc00000 : ((u + 0x7fff + ((u >>> 16) & 1)) & 0xffff0000) >>> 0;
  }
}

/** The reference of 'weights.linear' (and its path without WebAssembly): the header's arithmetic, one output at a time. */
export function linearRowsTs(args: KernelArgs, o0: number, o1: number): void {
  const x = args.x as Float32Array, y = args.y as Float32Array;
  const n = args.n as number, inDim = args.inDim as number, outDim = args.outDim as number;
  const format = args.format as WeightFormat, data = args.data as Float32Array | Uint16Array | Uint8Array;
  const scale = args.scale as Float32Array | null, fp8Gemm = args.fp8Gemm as boolean;
  if (rowScratch.length < inDim) rowScratch = new Float32Array(inDim);
  const v = rowScratch;
  for (let o = o0; o < o1; o++) {
    decodeRow(format, data, scale, fp8Gemm, o, inDim, v);
    if (!fp8Gemm) {
      for (let r = 0; r < n; r++) {
        let acc = 0;
        for (let j = 0, xr = r * inDim; j < inDim; j++) acc = Math.fround(acc + Math.fround(x[xr + j] * v[j]));
        y[r * outDim + o] = acc;
      }
      continue;
    }
    const xq = args.xq as Uint8Array, xs = args.xs as Float32Array;
    const nb = Math.ceil(inDim / FP8_BLOCK), scaleRow = (o >> 7) * nb;
    for (let r = 0; r < n; r++) {
      let acc = 0;
      for (let kb = 0; kb < nb; kb++) {
        let p = 0;
        for (let j = kb * FP8_BLOCK, end = Math.min(inDim, j + FP8_BLOCK); j < end; j++) p = Math.fround(p + E4M3_VALUES[xq[r * inDim + j]] * v[j]);
        acc = Math.fround(acc + Math.fround(p * Math.fround(xs[r * nb + kb] * scale![scaleRow + kb])));
      }
      y[r * outDim + o] = acc;
    }
  }
}
