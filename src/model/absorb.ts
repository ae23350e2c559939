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
 *   transposed, W_k,h^T [kvRank, nope] for every head, once per weight: in
 *   the stored format where the blocks stay whole (float32, bf16; FP8 when
 *   nope, nope + v and kvRank are multiples of 128, as DeepSeek-V3.2's 128,
 *   256 and 512 are: codes and block scales moved, nothing re-rounded),
 *   else bf16. That copy is the key half of wkv_b again (DeepSeek-V3.2 FP8:
 *   8 MiB a layer, 4% of the layer's weights).
 *
 * Values are what DeepSeek's `weight_dequant` gives for the decode branch
 * (it dequantizes wkv_b whatever `gemm_impl`), which is `linear`'s gemmImpl
 * 'bf16' reading: float32 as is, bf16 bits << 16, fp8 bf16(f32(e4m3(code) *
 * scale)); a bf16 copy holds exactly those values.
 *
 * 'model.absorbQuery' args: q [n, H, nope + rope], out [n, H, kvRank + rope],
 * n, heads, nope, rope, kvRank, format, data, scale (the transposed key
 * weight [H * kvRank, nope]), simd; rows = output features of all heads,
 * [0, H * kvRank) (head h's q_pe is copied by the range holding its first).
 * 'model.valueUp' args: latent [n, H, kvRank], out [n, H * v], n, heads, v,
 * kvRank, format, data, scale (wkv_b), first (the first value row of head
 * 0: nope), stride (rows from one head's value rows to the next's: nope + v),
 * simd; rows = output features [0, H * v).
 */
import type { KernelArgs } from '../plan.js';
import { allocShared, allocLocal } from '../tensor.js';
import { linearRows } from '../weights/linear-kernels.js';
import { bf16Bits, dequantizeWeight, WEIGHT_BLOCK, type Weight, type WeightFormat } from '../weights/weight.js';

/** wkv_b read as the two per-head products need it. */
export interface HeadWeights {
  /** The key rows transposed: [H * kvRank, nope], row h * kvRank + c = wkv_b[h * (nope + v) + d, c] over d. */
  keyT: Weight;
  /** The value rows: wkv_b itself, read in place (head h's from row first + h * stride). */
  value: Weight;
  first: number;
  stride: number;
}

const prepared = new WeakMap<Weight, { key: string; weights: HeadWeights }>();
const alloc = typeof SharedArrayBuffer === 'undefined' ? allocLocal : allocShared; // pool steps read them in place

/** The weight's values as `linear` reads them with gemmImpl 'bf16', as bf16 bit patterns (exact for every format but float32). */
function bf16Values(w: Weight): Uint16Array {
  const values = dequantizeWeight(w);
  const bits = alloc(Uint16Array, values.length);
  for (let i = 0; i < values.length; i++) bits[i] = bf16Bits(values[i]);
  return bits;
}

/** The bytes `headWeights` keeps beside wkv_b (the transposed key rows), without making them. */
export function headWeightsBytes(wkvB: Weight, heads: number, nope: number, v: number, kvRank: number): number {
  const B = WEIGHT_BLOCK, elements = heads * kvRank * nope;
  if (wkvB.format === 'float32') return elements * 4;
  if (wkvB.format === 'fp8' && nope % B === 0 && (nope + v) % B === 0 && kvRank % B === 0) return elements + ((heads * kvRank) / B) * Math.ceil(nope / B) * 4;
  return elements * 2;
}

/**
 * The transposed key rows and the value rows of wkv_b (see the header),
 * made once per weight object and dims.
 */
export function headWeights(wkvB: Weight, heads: number, nope: number, v: number, kvRank: number): HeadWeights {
  const key = `${heads},${nope},${v},${kvRank}`;
  const cached = prepared.get(wkvB);
  if (cached !== undefined && cached.key === key) return cached.weights;
  const B = WEIGHT_BLOCK;
  const fp8Key = nope % B === 0 && (nope + v) % B === 0 && kvRank % B === 0;
  const rows = heads * kvRank;
  // Element (h, d, c) of the key rows sits at source index (h * (nope + v) + d) * kvRank + c; it goes to (h * kvRank + c) * nope + d.
  const transpose = <T extends Float32Array | Uint16Array | Uint8Array>(src: T, dst: T) => {
    for (let h = 0; h < heads; h++) {
      for (let d = 0; d < nope; d++) {
        const from = (h * (nope + v) + d) * kvRank;
        for (let c = 0; c < kvRank; c++) dst[(h * kvRank + c) * nope + d] = src[from + c];
      }
    }
    return dst;
  };
  let keyT: Weight;
  if (wkvB.format === 'float32') keyT = { format: 'float32', shape: [rows, nope], data: transpose(wkvB.data, alloc(Float32Array, rows * nope)) };
  else if (wkvB.format === 'bf16') keyT = { format: 'bf16', shape: [rows, nope], data: transpose(wkvB.data, alloc(Uint16Array, rows * nope)) };
  else if (fp8Key) {
    const nbIn = Math.ceil(kvRank / B), nbT = Math.ceil(nope / B);
    const scale = alloc(Float32Array, (rows / B) * nbT);
    for (let h = 0; h < heads; h++) {
      for (let cb = 0; cb < kvRank / B; cb++) {
        for (let db = 0; db < nbT; db++) scale[((h * kvRank) / B + cb) * nbT + db] = wkvB.scale[((h * (nope + v)) / B + db) * nbIn + cb];
      }
    }
    keyT = { format: 'fp8', shape: [rows, nope], data: transpose(wkvB.data, alloc(Uint8Array, rows * nope)), scale };
  } else {
    keyT = { format: 'bf16', shape: [rows, nope], data: transpose(bf16Values(wkvB), alloc(Uint16Array, rows * nope)) };
  }
  const weights: HeadWeights = { keyT, value: wkvB, first: nope, stride: nope + v };
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
  const simd = args.simd as boolean;
  const qWidth = nope + rope, outWidth = kvRank + rope;
  const [x, y] = scratch(n * nope, n * kvRank);
  for (let h = Math.floor(o0 / kvRank); h * kvRank < o1; h++) {
    const c0 = Math.max(o0 - h * kvRank, 0), c1 = Math.min(o1 - h * kvRank, kvRank);
    for (let r = 0; r < n; r++) x.set(q.subarray((r * heads + h) * qWidth, (r * heads + h) * qWidth + nope), r * nope);
    headLinear(x, n, nope, kvRank, format, data, scale, h * kvRank, y, c0, c1, simd);
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
