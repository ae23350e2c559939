/**
 * Logical token positions to physical cache slots (FlashInfer's page-table
 * transform): position p of sequence bi lives in slot
 * blockTable[bi][floor(p / pageSize)] * pageSize + p % pageSize. Top-k
 * returns positions; FlashMLA's sparse decode reads slots. -1 stays -1.
 *
 * 'cache.slots' args: indices [rows, k] positions, table [b, maxBlocks],
 * pageSize, maxBlocks, t (rows per sequence: row r is sequence floor(r / t)),
 * k, hkv, out [rows, hkv, k] (the slots once per kv head), padPastTable
 * (optional: a position past the table's maxBlocks gives -1, vLLM's rule); rows.
 * Every slot must fit int32 (out is Int32Array; a larger one would wrap):
 * pagedSlots checks each one first, and a DsaCache holds at most 2^31
 * slots, so its steps' slots fit.
 */
import type { KernelArgs } from '../plan.js';

export function slotsRows(args: KernelArgs, rowStart: number, rowEnd: number): void {
  const indices = args.indices as Int32Array, table = args.table as Int32Array, out = args.out as Int32Array;
  const P = args.pageSize as number, maxBlocks = args.maxBlocks as number, t = args.t as number, k = args.k as number, hkv = args.hkv as number;
  const limit = args.padPastTable ? maxBlocks * P : Infinity;
  for (let r = rowStart; r < rowEnd; r++) {
    const row = Math.floor(r / t) * maxBlocks;
    const o = r * hkv * k;
    for (let i = 0; i < k; i++) {
      const p = indices[r * k + i];
      out[o + i] = p < 0 || p >= limit ? -1 : table[row + Math.floor(p / P)] * P + (p % P);
    }
    for (let g = 1; g < hkv; g++) out.copyWithin(o + g * k, o, o + k);
  }
}
