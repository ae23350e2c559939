/**
 * MLA's absorbed `wkv_b` (DeepSeek-V3.2 `MLA.forward`, decode branch):
 * per query head h, wkv_b [nHeads * (nope + v), kvRank] holds `nope` key
 * rows then `v` value rows, and
 *
 *   'model.absorbQuery'  q' [n, H, kvRank + rope] = [q_nope_h @ W_k,h, q_pe_h]
 *   'model.valueUp'      o  [n, H * v]            = latent_h @ W_v,h^T
 *
 * each one `linear` per head (src/weights/linear-kernels.ts: its kernels,
 * its one summation order, its WebAssembly path), over weights in their
 * stored form:
 *
 * - the value rows are read in place, views of each head's rows (of FP8,
 *   in segments within one 128-row scale block, so heads may start
 *   anywhere: GLM-5's nope + v = 448);
 * - the key rows are multiplied transposed, so `headWeights` keeps them
 *   transposed once per weight, in the stored format (`TransposedKeys`):
 *   codes and block scales moved, nothing re-rounded. An FP8 head's key rows
 *   go in segments within one 128-row scale block, each its own dot, the
 *   segments' dots summed in float32 in ascending order (DeepSeek-V3.2's
 *   heads, 128 key rows on a block: one segment, one dot; GLM-5's, 192 key
 *   rows from row 448h: two). That copy is the key half of wkv_b again
 *   (DeepSeek-V3.2 FP8: 8 MiB a layer, 4% of the layer's weights).
 *
 * Values are what DeepSeek's `weight_dequant` gives for the decode branch
 * (it dequantizes wkv_b whatever `gemm_impl`), which is `linear`'s gemmImpl
 * 'bf16' reading: float32 as is, bf16 bits << 16, fp8 bf16(f32(e4m3(code) *
 * scale)); a bf16 copy holds exactly those values.
 *
 * 'model.absorbQuery' args: q [n, H, nope + rope], out [n, H, kvRank + rope],
 * n, heads, nope, rope, kvRank, format, data, scale, segments, headSegments
 * (the `TransposedKeys`), simd; rows = output features of all heads,
 * [0, H * kvRank) (head h's q_pe is copied by the range holding its first).
 * 'model.valueUp' args: latent [n, H, kvRank], out [n, H * v], n, heads, v,
 * kvRank, format, data, scale (wkv_b), first (the first value row of head
 * 0: nope), stride (rows from one head's value rows to the next's: nope + v),
 * simd; rows = output features [0, H * v).
 */
import type { KernelArgs } from '../plan.js';
import { allocShared, allocLocal } from '../tensor.js';
import { linearRows } from '../weights/linear-kernels.js';
import { WEIGHT_BLOCK, type Weight, type WeightFormat } from '../weights/weight.js';

/**
 * wkv_b's key rows transposed, head by head, in segments of the
 * contraction d: head h, segment [d0, d1) is a weight [kvRank, d1 - d0] at
 * data[(h * nope + d0) * kvRank ..] (row c, column d - d0 =
 * wkv_b[h * (nope + v) + d, c]). Float32 and bf16: one segment [0, nope)
 * per head. FP8: the key rows split where their 128-row scale blocks do, so
 * each segment is within one block and its transpose one FP8 weight with
 * block scales [ceil(kvRank / 128), 1] (`scale` from segment i's at
 * i * ceil(kvRank / 128)); DeepSeek-V3.2 (nope 128, heads on blocks): one
 * segment a head.
 */
export interface TransposedKeys {
  format: WeightFormat;
  data: Float32Array | Uint16Array | Uint8Array;
  scale: Float32Array | null;
  /** Int32Array [segments * 2]: each segment's d0, d1. */
  segments: Int32Array;
  /** Int32Array [H + 1]: head h's segments are [headSegments[h], headSegments[h + 1]). */
  headSegments: Int32Array;
}

/** wkv_b read as the two per-head products need it. */
export interface HeadWeights {
  keyT: TransposedKeys;
  /** The value rows: wkv_b itself, read in place (head h's from row first + h * stride). */
  value: Weight;
  first: number;
  stride: number;
}

const prepared = new WeakMap<Weight, { key: string; weights: HeadWeights }>();
const alloc = typeof SharedArrayBuffer === 'undefined' ? allocLocal : allocShared; // pool steps read them in place

/** Each head's segments of [0, nope): one, or (FP8) split where wkv_b's 128-row blocks split its key rows. */
function keySegments(fp8: boolean, heads: number, nope: number, v: number): { segments: Int32Array; headSegments: Int32Array } {
  const list: number[] = [], headSegments = new Int32Array(heads + 1);
  for (let h = 0; h < heads; h++) {
    headSegments[h] = list.length / 2;
    const start = h * (nope + v);
    for (let d0 = 0; d0 < nope;) {
      const d1 = fp8 ? Math.min(nope, (Math.floor((start + d0) / WEIGHT_BLOCK) + 1) * WEIGHT_BLOCK - start) : nope;
      list.push(d0, d1);
      d0 = d1;
    }
  }
  headSegments[heads] = list.length / 2;
  const segments = alloc(Int32Array, list.length);
  segments.set(list);
  const shared = alloc(Int32Array, heads + 1);
  shared.set(headSegments);
  return { segments, headSegments: shared };
}

/** The bytes `headWeights` keeps beside wkv_b (the transposed key rows), without making them. */
export function headWeightsBytes(wkvB: Weight, heads: number, nope: number, v: number, kvRank: number): number {
  const elements = heads * kvRank * nope;
  if (wkvB.format === 'float32') return elements * 4;
  if (wkvB.format === 'bf16') return elements * 2;
  const { segments } = keySegments(true, heads, nope, v);
  return elements + (segments.length / 2) * Math.ceil(kvRank / WEIGHT_BLOCK) * 4;
}

/**
 * The transposed key rows and the value rows of wkv_b (see the header),
 * made once per weight object and dims.
 */
export function headWeights(wkvB: Weight, heads: number, nope: number, v: number, kvRank: number): HeadWeights {
  const key = `${heads},${nope},${v},${kvRank}`;
  const cached = prepared.get(wkvB);
  if (cached !== undefined && cached.key === key) return cached.weights;
  const { segments, headSegments } = keySegments(wkvB.format === 'fp8', heads, nope, v);
  const src = wkvB.data;
  const data = wkvB.format === 'float32' ? alloc(Float32Array, heads * kvRank * nope) : wkvB.format === 'bf16' ? alloc(Uint16Array, heads * kvRank * nope) : alloc(Uint8Array, heads * kvRank * nope);
  const nbIn = Math.ceil(kvRank / WEIGHT_BLOCK);
  const scale = wkvB.format === 'fp8' ? alloc(Float32Array, (segments.length / 2) * nbIn) : null;
  for (let h = 0; h < heads; h++) {
    for (let i = headSegments[h]; i < headSegments[h + 1]; i++) {
      const d0 = segments[2 * i], d1 = segments[2 * i + 1], len = d1 - d0, at = (h * nope + d0) * kvRank;
      for (let d = d0; d < d1; d++) {
        const from = (h * (nope + v) + d) * kvRank;
        for (let c = 0; c < kvRank; c++) data[at + c * len + (d - d0)] = src[from + c];
      }
      if (scale !== null) {
        const block = Math.floor((h * (nope + v) + d0) / WEIGHT_BLOCK);
        scale.set((wkvB as { scale: Float32Array }).scale.subarray(block * nbIn, (block + 1) * nbIn), i * nbIn);
      }
    }
  }
  const weights: HeadWeights = { keyT: { format: wkvB.format, data, scale, segments, headSegments }, value: wkvB, first: nope, stride: nope + v };
  prepared.set(wkvB, { key, weights });
  return weights;
}

// Per-thread scratch: one head's inputs [n, in] and outputs [n, out].
let xScratch = new Float32Array(0);
let yScratch = new Float32Array(0);

function scratch(nx: number, ny: number): [Float32Array, Float32Array] {
  if (xScratch.length < nx) xScratch = new Float32Array(nx);
  if (yScratch.length < ny) yScratch = new Float32Array(ny);
  return [xScratch.subarray(0, nx), yScratch.subarray(0, ny)];
}

// Per-thread scratch: one block segment's outputs [n, rows].
let segScratch = new Float32Array(0);

/**
 * `linear` of n rows x [n, inDim] through rows [first, first + outDim) of a
 * weight [*, inDim], outputs [o0, o1) into y [n, outDim]. An FP8 weight's
 * rows go in segments that stay within one 128-row scale block, each a
 * weight of one scale row, so the rows may start anywhere; each output is
 * still one row's dot, so the segments change no bit.
 */
function headLinear(x: Float32Array, n: number, inDim: number, outDim: number, format: WeightFormat, data: Float32Array | Uint16Array | Uint8Array, scale: Float32Array | null, first: number, y: Float32Array, o0: number, o1: number, simd: boolean): void {
  const base = { x, xq: null, xs: null, n, inDim, format, fp8Gemm: false, simd };
  if (scale === null) {
    linearRows({ ...base, outDim, y, data: data.subarray(first * inDim, (first + outDim) * inDim), scale: null }, o0, o1);
    return;
  }
  const nb = Math.ceil(inDim / WEIGHT_BLOCK);
  for (let a = first + o0; a < first + o1;) {
    const block = Math.floor(a / WEIGHT_BLOCK), b = Math.min(first + o1, (block + 1) * WEIGHT_BLOCK), rows = b - a;
    if (segScratch.length < n * rows) segScratch = new Float32Array(n * WEIGHT_BLOCK);
    const seg = segScratch.subarray(0, n * rows);
    linearRows({ ...base, outDim: rows, y: seg, data: data.subarray(a * inDim, b * inDim), scale: scale.subarray(block * nb, (block + 1) * nb) }, 0, rows);
    for (let r = 0; r < n; r++) y.set(seg.subarray(r * rows, (r + 1) * rows), r * outDim + (a - first));
    a = b;
  }
}

export function absorbQueryRows(args: KernelArgs, o0: number, o1: number): void {
  const q = args.q as Float32Array, out = args.out as Float32Array;
  const n = args.n as number, heads = args.heads as number, nope = args.nope as number, rope = args.rope as number, kvRank = args.kvRank as number;
  const format = args.format as WeightFormat, data = args.data as Float32Array | Uint16Array | Uint8Array, scale = args.scale as Float32Array | null;
  const segments = args.segments as Int32Array, headSegments = args.headSegments as Int32Array, simd = args.simd as boolean;
  const qWidth = nope + rope, outWidth = kvRank + rope, nbIn = Math.ceil(kvRank / WEIGHT_BLOCK);
  const [x, y] = scratch(n * nope, n * kvRank);
  if (segScratch.length < n * kvRank) segScratch = new Float32Array(n * kvRank);
  const part = segScratch.subarray(0, n * kvRank);
  for (let h = Math.floor(o0 / kvRank); h * kvRank < o1; h++) {
    const c0 = Math.max(o0 - h * kvRank, 0), c1 = Math.min(o1 - h * kvRank, kvRank);
    for (let i = headSegments[h]; i < headSegments[h + 1]; i++) {
      // One segment's dot into `part`, then summed in float32, segments ascending.
      const d0 = segments[2 * i], d1 = segments[2 * i + 1], len = d1 - d0, at = (h * nope + d0) * kvRank;
      for (let r = 0; r < n; r++) x.set(q.subarray((r * heads + h) * qWidth + d0, (r * heads + h) * qWidth + d1), r * len);
      const first = i === headSegments[h];
      linearRows({
        x, xq: null, xs: null, n, inDim: len, outDim: kvRank, format, fp8Gemm: false, simd, y: first ? y : part,
        data: data.subarray(at, at + kvRank * len), scale: scale === null ? null : scale.subarray(i * nbIn, (i + 1) * nbIn),
      }, c0, c1);
      if (!first) for (let r = 0; r < n; r++) for (let c = c0; c < c1; c++) y[r * kvRank + c] = Math.fround(y[r * kvRank + c] + part[r * kvRank + c]);
    }
    for (let r = 0; r < n; r++) {
      const at = (r * heads + h) * outWidth;
      out.set(y.subarray(r * kvRank + c0, r * kvRank + c1), at + c0);
      if (c0 === 0) out.set(q.subarray((r * heads + h) * qWidth + nope, (r * heads + h + 1) * qWidth), at + kvRank);
    }
  }
}

export function valueUpRows(args: KernelArgs, o0: number, o1: number): void {
  const latent = args.latent as Float32Array, out = args.out as Float32Array;
  const n = args.n as number, heads = args.heads as number, v = args.v as number, kvRank = args.kvRank as number;
  const format = args.format as WeightFormat, data = args.data as Float32Array | Uint16Array | Uint8Array, scale = args.scale as Float32Array | null;
  const first = args.first as number, stride = args.stride as number, simd = args.simd as boolean;
  const [x, y] = scratch(n * kvRank, n * v);
  for (let h = Math.floor(o0 / v); h * v < o1; h++) {
    const j0 = Math.max(o0 - h * v, 0), j1 = Math.min(o1 - h * v, v);
    for (let r = 0; r < n; r++) x.set(latent.subarray((r * heads + h) * kvRank, (r * heads + h + 1) * kvRank), r * kvRank);
    headLinear(x, n, kvRank, v, format, data, scale, first + h * stride, y, j0, j1, simd);
    for (let r = 0; r < n; r++) out.set(y.subarray(r * v + j0, r * v + j1), (r * heads + h) * v + j0);
  }
}
