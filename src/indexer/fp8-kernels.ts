/**
 * FP8 quantization as plan steps, so the pool spreads it over threads: the
 * queries of an FP8 score call (per head: optional Hadamard rotation, then
 * act_quant of its d <= 128 values) and float32 keys into the FP8 page
 * layout (src/indexer/fp8.ts).
 *
 * 'indexer.fp8.queries' args: q [rows, h, d] float32, h, d, hadamard,
 * ue8m0, q8 [rows, h, d] codes, qScales [rows, h]; over query rows.
 * 'indexer.fp8.keys' args: k [slots, d] float32, d, hadamard, ue8m0, data
 * (the page layout's bytes), pageSize, vllmScale (optional: vLLM's division
 * scale rule instead of DeepSeek's); over slots.
 */
import type { KernelArgs } from '../plan.js';
import { actQuantRows, fp8CodesAt, fp8ScaleAt, hadamardInPlace } from './fp8.js';

let rotated = new Float32Array(0);

function scratch(d: number): Float32Array {
  if (rotated.length < d) rotated = new Float32Array(d);
  return rotated;
}

export function quantizeQueriesFp8(args: KernelArgs, rowStart: number, rowEnd: number): void {
  const q = args.q as Float32Array, q8 = args.q8 as Uint8Array, qScales = args.qScales as Float32Array;
  const h = args.h as number, d = args.d as number, hadamard = args.hadamard as boolean;
  const format = args.ue8m0 ? 'ue8m0' : 'float32';
  const v = scratch(d);
  for (let head = rowStart * h; head < rowEnd * h; head++) {
    v.set(q.subarray(head * d, (head + 1) * d));
    if (hadamard) hadamardInPlace(v, 0, d);
    actQuantRows(v, 0, 1, d, format, q8, head * d, d, qScales, head);
  }
}

export function quantizeKeysFp8Rows(args: KernelArgs, slotStart: number, slotEnd: number): void {
  const k = args.k as Float32Array, data = args.data as Uint8Array;
  const d = args.d as number, pageSize = args.pageSize as number, hadamard = args.hadamard as boolean;
  const format = args.ue8m0 ? 'ue8m0' : 'float32', rule = args.vllmScale ? 'vllm' : 'deepseek';
  const scales = new Float32Array(data.buffer, data.byteOffset, data.length >>> 2);
  const v = scratch(d);
  for (let slot = slotStart; slot < slotEnd; slot++) {
    v.set(k.subarray(slot * d, (slot + 1) * d));
    if (hadamard) hadamardInPlace(v, 0, d);
    actQuantRows(v, 0, 1, d, format, data, fp8CodesAt(slot, pageSize, d), d, scales, fp8ScaleAt(slot, pageSize, d), rule);
  }
}
