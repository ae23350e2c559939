/**
 * RMSNorm as DeepSeek-V3.2's `RMSNorm.forward` computes it (MLA's q_norm and
 * kv_norm, Hugging Face `q_a_layernorm` / `kv_a_layernorm`), in float32:
 *
 *   var  = mean(x^2)              (summed in float64 here, rounded to float32)
 *   y    = weight * (x * rsqrt(var + eps))
 *
 * each product rounded to float32 in that order.
 *
 * 'model.rmsNorm' args: x [n, stride] (read at from + [0, width) of each row),
 * from, stride, width, weight Float32Array [width], eps, out [n, outStride]
 * (written at outFrom + [0, width) of each row), outFrom, outStride;
 * rows = tokens. x and out may be the same array.
 */
import type { KernelArgs } from '../plan.js';

const f32 = Math.fround;

export function rmsNormRows(args: KernelArgs, rowStart: number, rowEnd: number): void {
  const x = args.x as Float32Array, weight = args.weight as Float32Array, out = args.out as Float32Array;
  const from = args.from as number, stride = args.stride as number, width = args.width as number, eps = args.eps as number;
  const outFrom = args.outFrom as number, outStride = args.outStride as number;
  for (let r = rowStart; r < rowEnd; r++) {
    const at = r * stride + from, to = r * outStride + outFrom;
    let sum = 0;
    for (let e = 0; e < width; e++) sum += x[at + e] * x[at + e];
    const inv = f32(1 / Math.sqrt(f32(f32(sum / width) + eps)));
    for (let e = 0; e < width; e++) out[to + e] = f32(weight[e] * f32(x[at + e] * inv));
  }
}
