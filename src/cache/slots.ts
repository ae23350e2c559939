/**
 * Logical token positions to physical cache slots (FlashInfer's page-table
 * transform), at the public edge: every index checked, then the kernel of
 * slot-kernels.ts.
 */
import type { Plan } from '../plan.js';
import { runPlan } from '../plan.js';
import { cacheKernels } from './kernels.js';
import { allocLocal, describe, type Alloc, type Tensor } from '../tensor.js';
import { checkOneOf, checkSize, checkTensor, checkSame } from '../validate.js';
import { checkKnownOptions } from '../options.js';

export interface PagedSlotsOptions {
  /** Int32Array [b]: a position at or past its sequence's length is a RangeError. */
  seqLens?: Int32Array;
  /** Pages in the cache: a block entry outside [0, numPages) is a RangeError. */
  numPages?: number;
  /**
   * A position in a block past the table's maxBlocks: 'error' (default, a
   * RangeError naming it) or 'padding' (slot -1, as vLLM's
   * `triton_convert_req_index_to_global_index` gives it). The other checks
   * stay: a position at or past `seqLens`, when given, is still a RangeError.
   */
  pastTable?: 'error' | 'padding';
}

const SLOTS_OPTIONS = ['seqLens', 'numPages', 'pastTable'] as const;

/** The largest physical slot: slots are Int32Array. */
export const MAX_SLOT = 0x7fffffff;

export function planPagedSlots(indices: Tensor<Int32Array>, blockTable: Tensor<Int32Array>, pageSize: number, opts: PagedSlotsOptions, alloc: Alloc): Plan<Tensor<Int32Array>> {
  checkKnownOptions('pagedSlots', opts, SLOTS_OPTIONS);
  const [b, t, k] = checkTensor('indices', indices, Int32Array, ['b', 't', 'k']);
  const [bt, maxBlocks] = checkTensor('blockTable', blockTable, Int32Array, ['b', 'maxBlocks']);
  checkSame('pagedSlots', bt, 'blockTable b', b, 'indices b');
  const P = checkSize('pageSize', pageSize);
  const numPages = opts.numPages === undefined ? Infinity : checkSize('numPages', opts.numPages);
  const padPastTable = checkOneOf('pastTable', opts.pastTable ?? 'error', ['error', 'padding'] as const) === 'padding';
  const seqLens = opts.seqLens;
  if (seqLens !== undefined && (!(seqLens instanceof Int32Array) || seqLens.length !== b)) {
    throw new TypeError(`seqLens: expected an Int32Array of length b = ${b}, got ${seqLens instanceof Int32Array ? `length ${seqLens.length}` : describe(seqLens)}`);
  }
  const idx = indices.data, table = blockTable.data;
  for (let r = 0; r < b * t; r++) {
    const bi = Math.floor(r / t);
    for (let i = 0; i < k; i++) {
      const p = idx[r * k + i];
      if (p < 0) continue;
      const where = `batch ${bi}, query ${r % t}, slot ${i}`;
      if (seqLens !== undefined && p >= seqLens[bi]) throw new RangeError(`indices: ${where} is position ${p}, past the sequence's length ${seqLens[bi]}`);
      const blk = Math.floor(p / P);
      if (blk >= maxBlocks && padPastTable) continue;
      if (blk >= maxBlocks) throw new RangeError(`indices: ${where} is position ${p}, in block ${blk}, past the table's ${maxBlocks} blocks of ${P}`);
      const page = table[bi * maxBlocks + blk];
      if (page < 0 || page >= numPages) throw new RangeError(`blockTable: sequence ${bi}, block ${blk} is ${page}; expected a page in [0, ${numPages === Infinity ? 'numPages' : numPages})`);
      const slot = page * P + (p % P);
      if (slot > MAX_SLOT) {
        throw new RangeError(`pageSize: ${where} is position ${p}, in page ${page} (sequence ${bi}, block ${blk}) of pageSize ${P}: slot ${slot}; expected a slot <= ${MAX_SLOT} (slots are int32)`);
      }
    }
  }
  const out = alloc(Int32Array, b * t * k);
  return {
    steps: [{ kernel: 'cache.slots', args: { indices: idx, table, pageSize: P, maxBlocks, t, k, hkv: 1, out, padPastTable }, rows: [0, b * t], writes: ['out'] }],
    finish: () => ({ data: out, shape: [b, t, k] }),
  };
}

/**
 * Maps top-k positions [b, t, k] (Int32Array, -1 = none) of b sequences to
 * physical slots of a paged cache through `blockTable` [b, maxBlocks]:
 * slot = blockTable[bi][p / pageSize] * pageSize + p % pageSize; -1 stays -1.
 * Every index is checked before anything is written: a position past
 * `seqLens` or past the table, or a block entry outside [0, numPages), is a
 * RangeError naming sequence, block and value; so is a slot past 2^31 - 1
 * (slots are Int32Array), naming the position, page and pageSize. With
 * `pastTable: 'padding'` a position past the table is slot -1 instead
 * (vLLM's convention). An option it does not take is a TypeError naming it.
 */
export function pagedSlots(indices: Tensor<Int32Array>, blockTable: Tensor<Int32Array>, pageSize: number, opts: PagedSlotsOptions = {}): Tensor<Int32Array> {
  return runPlan(planPagedSlots(indices, blockTable, pageSize, opts, allocLocal), cacheKernels);
}
