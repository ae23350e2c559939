/**
 * The kernels of `linear` (src/weights/linear.ts), over a range of output
 * features [o0, o1) for every row of x, so any split of the outputs gives
 * the same bits. The arithmetic, for y[r, o] (float32 throughout, each
 * multiply and add rounded on its own, no fused multiply-add):
 *
 *   dot(a, b, j0, j1), the one summation order: four lane partials, lane
 *     l = 0..3 summing f32(a[j] * b[j]) over j = j0 + 4i + l below the last
 *     multiple of 4 (j0 + 4 * floor((j1 - j0) / 4)), i ascending, from +0;
 *     then (l0 + l1) + (l2 + l3); then the remaining j (at most 3) added in
 *     ascending order. (Lanes are what WebAssembly SIMD sums at once.)
 *   float GEMM ('float32' and 'bf16' weights, and 'fp8' weights read 'bf16'):
 *     y = dot(x[r], v[o], 0, in), v the weight's values: float32 as is, bf16
 *     bits << 16, fp8 bf16(f32(e4m3(code) * scale)) (DeepSeek's
 *     `weight_dequant`, then its cast to bf16, nearest even).
 *   FP8 GEMM ('fp8' weights read 'fp8'; x act_quant-ed by 'weights.actQuant'):
 *     for each 128-block kb of `in`, ascending, from y = +0:
 *       p = dot(e4m3(xq[r]), e4m3(code[o]), 128 kb, min(in, 128 kb + 128))
 *           (each product of two e4m3 values is exact in float32)
 *       y = f32(y + f32(p * f32(xs[r, kb] * scale[o >> 7, kb])))
 *     which is `fp8_gemm`'s promotion: a block's partial dot scaled by the
 *     product of the two block scales, accumulated across blocks.
 *
 * e4m3 codes 0x7f and 0xff (NaN) decode to NaN and make their outputs NaN;
 * quantizeWeightFp8 and DeepSeek's checkpoints never hold them, so the
 * WebAssembly kernels look for them once per 16 codes and decode them
 * apart.
 *
 * 'weights.actQuant' args: x [n, in] float32, n, inDim, ue8m0, xq [n, in]
 * codes, xs [n, ceil(in / 128)]; rows = rows of x.
 * 'weights.linear' args: x, xq, xs (null unless fp8 read 'fp8'), n, inDim,
 * outDim, format, data, scale (null unless fp8), fp8Gemm, y [n, out],
 * simd; rows = output features.
 */
import type { KernelArgs } from '../plan.js';
import { simdModule, type SimdModule } from '../simd/index.js';
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

let xScratch = new Float32Array(0);

/** dot(a, b, j0, j1) of the header with a read at aAt + j: the reference's summation order. */
export function dot(a: Float32Array, aAt: number, b: Float32Array, j0: number, j1: number): number {
  const n4 = j0 + ((j1 - j0) & ~3);
  let l0 = 0, l1 = 0, l2 = 0, l3 = 0;
  for (let j = j0; j < n4; j += 4) {
    l0 = Math.fround(l0 + Math.fround(a[aAt + j] * b[j]));
    l1 = Math.fround(l1 + Math.fround(a[aAt + j + 1] * b[j + 1]));
    l2 = Math.fround(l2 + Math.fround(a[aAt + j + 2] * b[j + 2]));
    l3 = Math.fround(l3 + Math.fround(a[aAt + j + 3] * b[j + 3]));
  }
  let s = Math.fround(Math.fround(l0 + l1) + Math.fround(l2 + l3));
  for (let j = n4; j < j1; j++) s = Math.fround(s + Math.fround(a[aAt + j] * b[j]));
  return s;
}

/** The kernels of src/simd/assembly/linear.ts (pointers are byte offsets into the module's memory). */
interface LinearExports {
  linearDecodeBf16(src: number, count: number, dst: number): void;
  linearDecodeFp8(src: number, count: number, dst: number): void;
  linearDequantFp8Bf16(src: number, rows: number, inDim: number, oFirst: number, scales: number, nbIn: number, dst: number, merged: number): void;
  linearGemm(x: number, n: number, inDim: number, w: number, rows: number, y: number, yStride: number): void;
  linearGemmFp8(x: number, xs: number, n: number, inDim: number, w: number, rows: number, oFirst: number, scales: number, nbIn: number, y: number, yStride: number): void;
  linearGemvBf16(x: number, inDim: number, w: number, rows: number, y: number): void;
  linearGemvFp8Bf16(x: number, inDim: number, w: number, rows: number, oFirst: number, scales: number, nbIn: number, y: number, merged: number): void;
  linearGemvFp8(xv: number, xs: number, inDim: number, w: number, rows: number, oFirst: number, scales: number, nbIn: number, y: number): void;
}

/**
 * 'weights.linear': the WebAssembly kernels where `simd` is set and the
 * module loads, else the reference. Output features go in blocks of at
 * least 4 rows (about 64 KiB of float32 values): a block's stored bytes
 * are copied into the module's memory once, decoded once into float32
 * values there (which stay in cache), and every row of x (in chunks of
 * about 8 MiB) passes over them, so each weight byte is read from memory
 * once per chunk of rows. Each output depends only on its row of x and
 * row of the weight, so any blocking and any split of the outputs give the
 * reference's bits.
 */
export function linearRows(args: KernelArgs, o0: number, o1: number): void {
  const m = args.simd ? simdModule() : null;
  if (m === null) return linearRowsTs(args, o0, o1);
  linearRowsWasm(m, args, o0, o1);
}

function linearRowsWasm(m: SimdModule, args: KernelArgs, o0: number, o1: number): void {
  if (o1 <= o0) return;
  const e = m.exports as unknown as LinearExports;
  const x = args.x as Float32Array, y = args.y as Float32Array;
  const n = args.n as number, inDim = args.inDim as number, outDim = args.outDim as number;
  const format = args.format as WeightFormat, data = args.data as Float32Array | Uint16Array | Uint8Array;
  const scale = args.scale as Float32Array | null, fp8Gemm = args.fp8Gemm as boolean;
  const nb = Math.ceil(inDim / FP8_BLOCK), width = o1 - o0;
  const codeBytes = format === 'float32' ? 0 : format === 'bf16' ? 2 : 1;
  // One row of x: stored weights are decoded in registers (no float32 block), in blocks of about 64 KiB of codes.
  const fused = n === 1 && codeBytes > 0;
  const block = Math.min(width, Math.max(4, Math.floor((fused ? 65536 / codeBytes : 16384) / inDim) & ~3));
  const chunk = Math.max(1, Math.min(n, Math.floor((8 << 20) / (4 * inDim))));
  const [px, pxs, psc, pcodes, pw, py] = m.layout(
    chunk * inDim * 4,
    fp8Gemm ? chunk * nb * 4 : 0,
    scale === null ? 0 : scale.length * 4,
    Math.max(block * inDim * codeBytes, fp8Gemm ? chunk * inDim : 0),
    fused ? 0 : block * inDim * 4,
    chunk * width * 4,
  );
  const buffer = m.exports.memory.buffer;
  const xv = new Float32Array(buffer, px, chunk * inDim), wv = new Float32Array(buffer, pw, fused ? 0 : block * inDim);
  const yv = new Float32Array(buffer, py, chunk * width);
  const codes = format === 'bf16' ? new Uint16Array(buffer, pcodes, block * inDim) : new Uint8Array(buffer, pcodes, Math.max(block * inDim, fp8Gemm ? chunk * inDim : 0));
  if (scale !== null) new Float32Array(buffer, psc, scale.length).set(scale);
  // Every block scale below 256 in magnitude: the dequantizing kernels fold the e4m3 exponent shift into the scale (src/simd/assembly/linear.ts).
  const merged = scale !== null && scale.every((v) => Math.abs(v) < 256) ? 1 : 0;
  for (let r0 = 0; r0 < n; r0 += chunk) {
    const rows = Math.min(n, r0 + chunk) - r0;
    if (fp8Gemm) {
      (codes as Uint8Array).set((args.xq as Uint8Array).subarray(r0 * inDim, (r0 + rows) * inDim));
      e.linearDecodeFp8(pcodes, rows * inDim, px);
      new Float32Array(buffer, pxs, rows * nb).set((args.xs as Float32Array).subarray(r0 * nb, (r0 + rows) * nb));
    } else {
      xv.set(x.subarray(r0 * inDim, (r0 + rows) * inDim));
    }
    for (let b0 = o0; b0 < o1; b0 += block) {
      const b1 = Math.min(o1, b0 + block), count = (b1 - b0) * inDim;
      const yAt = py + (b0 - o0) * 4;
      if (fused) {
        codes.set(data.subarray(b0 * inDim, b1 * inDim) as never);
        if (format === 'bf16') e.linearGemvBf16(px, inDim, pcodes, b1 - b0, yAt);
        else if (fp8Gemm) e.linearGemvFp8(px, pxs, inDim, pcodes, b1 - b0, b0, psc, nb, yAt);
        else e.linearGemvFp8Bf16(px, inDim, pcodes, b1 - b0, b0, psc, nb, yAt, merged);
        continue;
      }
      if (format === 'float32') wv.set((data as Float32Array).subarray(b0 * inDim, b1 * inDim));
      else {
        codes.set(data.subarray(b0 * inDim, b1 * inDim) as never);
        if (format === 'bf16') e.linearDecodeBf16(pcodes, count, pw);
        else if (fp8Gemm) e.linearDecodeFp8(pcodes, count, pw);
        else e.linearDequantFp8Bf16(pcodes, b1 - b0, inDim, b0, psc, nb, pw, merged);
      }
      if (fp8Gemm) e.linearGemmFp8(px, pxs, rows, inDim, pw, b1 - b0, b0, psc, nb, yAt, width);
      else e.linearGemm(px, rows, inDim, pw, b1 - b0, yAt, width);
    }
    for (let r = 0; r < rows; r++) y.set(yv.subarray(r * width, (r + 1) * width), (r0 + r) * outDim + o0);
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
      for (let r = 0; r < n; r++) y[r * outDim + o] = dot(x, r * inDim, v, 0, inDim);
      continue;
    }
    const xq = args.xq as Uint8Array, xs = args.xs as Float32Array;
    if (xScratch.length < inDim) xScratch = new Float32Array(inDim);
    const xv = xScratch;
    const nb = Math.ceil(inDim / FP8_BLOCK), scaleRow = (o >> 7) * nb;
    for (let r = 0; r < n; r++) {
      let acc = 0;
      for (let j = 0; j < inDim; j++) xv[j] = E4M3_VALUES[xq[r * inDim + j]];
      for (let kb = 0; kb < nb; kb++) {
        const p = dot(xv, 0, v, kb * FP8_BLOCK, Math.min(inDim, (kb + 1) * FP8_BLOCK));
        acc = Math.fround(acc + Math.fround(p * Math.fround(xs[r * nb + kb] * scale![scaleRow + kb])));
      }
      y[r * outDim + o] = acc;
    }
  }
}
