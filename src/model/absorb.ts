/**
 * MLA's absorbed `wkv_b` (DeepSeek-V3.2 `MLA.forward`, decode branch) as
 * kernels over query heads, reading the weight in its stored form
 * (src/weights/weight.ts). wkv_b [nHeads * (nope + v), kvRank] is, per head
 * h, `nope` key rows then `v` value rows:
 *
 *   'model.absorbQuery'  q' [n, H, kvRank + rope]: per head, the nope part of
 *                        q through the head's key rows (q_nope @ W_k, a
 *                        transposed product), then q_pe copied after it
 *   'model.valueUp'      o [n, H * v]: per head, the attention output over
 *                        the latent rows through the head's value rows
 *                        (latent @ W_v^T)
 *
 * A weight value is what DeepSeek's `weight_dequant` gives (wkv_b is always
 * dequantized in the decode branch, whatever `gemm_impl`): float32 as is,
 * bf16 bits << 16, fp8 bf16(f32(e4m3(code) * scale)) with the scale of the
 * element's 128 x 128 block (any alignment of the head's rows to blocks).
 * Arithmetic: float32 products, summed in float32 in ascending order of
 * the contracted index (d for absorbQuery, c for valueUp).
 *
 * 'model.absorbQuery' args: q [n, H, nope + rope], out [n, H, kvRank + rope],
 * n, heads, nope, rope, v, kvRank, format, data, scale (null unless fp8);
 * rows = heads.
 * 'model.valueUp' args: latent [n, H, kvRank], out [n, H * v], n, heads,
 * nope, v, kvRank, format, data, scale; rows = heads.
 */
import type { KernelArgs } from '../plan.js';
import { E4M3_VALUES } from '../indexer/fp8.js';
import { WEIGHT_BLOCK, type WeightFormat } from '../weights/weight.js';

const f32 = Math.fround;

// Per-thread scratch: one decoded weight row, its bits for the bf16 rounding.
let row = new Float32Array(0);
let rowBits = new Uint32Array(0);

/** Weight row `o` ([in] values, the header's rule) into `row`. */
function decodeRow(format: WeightFormat, data: Float32Array | Uint16Array | Uint8Array, scale: Float32Array | null, o: number, inDim: number): Float32Array {
  if (row.length < inDim) {
    row = new Float32Array(inDim);
    rowBits = new Uint32Array(row.buffer);
  }
  const at = o * inDim;
  if (format === 'float32') {
    row.set((data as Float32Array).subarray(at, at + inDim));
  } else if (format === 'bf16') {
    for (let j = 0; j < inDim; j++) rowBits[j] = data[at + j] << 16;
  } else {
    const scaleRow = (o >> 7) * Math.ceil(inDim / WEIGHT_BLOCK);
    for (let j = 0; j < inDim; j++) {
      row[j] = E4M3_VALUES[data[at + j]] * scale![scaleRow + (j >> 7)];
      const u = rowBits[j]; // to bf16, nearest even; a NaN (code 0x7f / 0xff) stays NaN
      rowBits[j] = (u & 0x7fffffff) > 0x7f800000 ? 0x7fc00000 : ((u + 0x7fff + ((u >>> 16) & 1)) & 0xffff0000) >>> 0;
    }
  }
  return row;
}

export function absorbQueryRows(args: KernelArgs, h0: number, h1: number): void {
  const q = args.q as Float32Array, out = args.out as Float32Array;
  const n = args.n as number, heads = args.heads as number, nope = args.nope as number, rope = args.rope as number;
  const v = args.v as number, kvRank = args.kvRank as number;
  const format = args.format as WeightFormat, data = args.data as Float32Array | Uint16Array | Uint8Array, scale = args.scale as Float32Array | null;
  const qWidth = nope + rope, outWidth = kvRank + rope;
  for (let h = h0; h < h1; h++) {
    for (let r = 0; r < n; r++) out.fill(0, (r * heads + h) * outWidth, (r * heads + h) * outWidth + kvRank);
    for (let d = 0; d < nope; d++) {
      const w = decodeRow(format, data, scale, h * (nope + v) + d, kvRank);
      for (let r = 0; r < n; r++) {
        const qd = q[(r * heads + h) * qWidth + d], o = (r * heads + h) * outWidth;
        for (let c = 0; c < kvRank; c++) out[o + c] += f32(qd * w[c]);
      }
    }
    for (let r = 0; r < n; r++) {
      const from = (r * heads + h) * qWidth + nope;
      out.set(q.subarray(from, from + rope), (r * heads + h) * outWidth + kvRank);
    }
  }
}

export function valueUpRows(args: KernelArgs, h0: number, h1: number): void {
  const latent = args.latent as Float32Array, out = args.out as Float32Array;
  const n = args.n as number, heads = args.heads as number, nope = args.nope as number;
  const v = args.v as number, kvRank = args.kvRank as number;
  const format = args.format as WeightFormat, data = args.data as Float32Array | Uint16Array | Uint8Array, scale = args.scale as Float32Array | null;
  for (let h = h0; h < h1; h++) {
    for (let j = 0; j < v; j++) {
      const w = decodeRow(format, data, scale, h * (nope + v) + nope + j, kvRank);
      for (let r = 0; r < n; r++) {
        const at = (r * heads + h) * kvRank;
        let acc = 0;
        for (let c = 0; c < kvRank; c++) acc = f32(acc + f32(latent[at + c] * w[c]));
        out[(r * heads + h) * v + j] = acc;
      }
    }
  }
}
