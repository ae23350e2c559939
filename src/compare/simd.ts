/**
 * The module memory of compareSelections' WebAssembly SIMD path (kernels in
 * src/simd/assembly/compare.ts): one row's two index lists, the scores of
 * their slots, a bit per key for each list, the differing keys, the kernels'
 * stats, and a block of score rows (then blocks of index rows). A caller
 * that reads its inputs from files writes them straight into those blocks
 * (`simdBlocks`, as `dsa compare` does), so the kernels run on them in
 * place; other inputs are copied in a row at a time. Views stay valid until another SIMD kernel
 * runs on this thread.
 */
import { simdModule, type SimdExports } from '../simd/index.js';

/** The kernels of src/simd/assembly/compare.ts. */
export interface CompareExports {
  compareIdentical(a: number, b: number, k: number): number;
  compareMark(list: number, k: number, s: number, x: number, bits: number, other: number, gather: number, vals: number, stats: number): number;
  compareUnmark(list: number, k: number, bits: number): void;
  compareMaxOutside(x: number, n: number, list: number, k: number, vals: number): number;
  compareCount(x: number, n: number, c: number, stats: number): void;
  compareFirstNaN(x: number, n: number): number;
  compareDiff(a: number, b: number, k: number, bitsA: number, bitsB: number, dSlot: number, dKey: number, dSide: number): number;
}

/** Byte offsets of the regions, and views over the whole memory. */
export interface SimdRows {
  kernels: CompareExports;
  memory: WebAssembly.Memory;
  f32: Float32Array;
  i32: Int32Array;
  a: number;
  b: number;
  /** The scores of each list's slots, when gathered (compareMark). */
  valsA: number;
  valsB: number;
  bitsA: number;
  bitsB: number;
  /** ceil(s / 32): words of each list's bits. */
  words: number;
  dSlot: number;
  dKey: number;
  dSide: number;
  stats: number;
  /** The score block: `rows` rows of s float32. */
  scores: number;
}

/** Module memory past this is not asked for: the TypeScript pass takes such rows. */
const MAX_BYTES = 2 ** 31;

/**
 * Lays out the regions for k-slot lists over s keys and a block of `rows`
 * score rows (the same offsets for the same k and s: the block always
 * comes last), or null where the engine has no WebAssembly SIMD or the
 * memory would pass 2 GiB.
 */
export function simdRows(k: number, s: number, rows: number): SimdRows | null {
  const module = simdModule();
  const kernels = module?.exports as (SimdExports & Partial<CompareExports>) | undefined;
  if (!module || !kernels?.compareMark) return null;
  const words = Math.ceil(s / 32);
  const sizes = [k * 4, k * 4, k * 4, k * 4, words * 4, words * 4, k * 8, k * 8, k * 8, 64, rows * s * 4];
  if (sizes.reduce((x, y) => x + y + 64, 0) > MAX_BYTES) return null;
  const [a, b, valsA, valsB, bitsA, bitsB, dSlot, dKey, dSide, stats, scores] = module.layout(...sizes);
  const memory = kernels.memory;
  return {
    kernels: kernels as CompareExports, memory, f32: new Float32Array(memory.buffer), i32: new Int32Array(memory.buffer),
    a, b, valsA, valsB, bitsA, bitsB, words, dSlot, dKey, dSide, stats, scores,
  };
}

/** Blocks in the module's memory a caller reads its inputs into (simdBlocks). */
export interface SimdBlocks {
  /** [rows, s] scores. */
  scores: Float32Array;
  /** [rows, k] indices each: a block of index rows for each list. */
  a: Int32Array;
  b: Int32Array;
}

/**
 * Blocks of `rows` score rows of s keys and of `rows` index rows of k for
 * each list, in the module's memory past the kernels' scratch: inputs
 * written here are compared in place by the next compareSelections call on
 * this thread with this k and s (no copy). Null where there is no SIMD
 * path. Take them again after any other SIMD kernel has run on this thread
 * (the memory may have grown).
 */
export function simdBlocks(k: number, s: number, rows: number): SimdBlocks | null {
  const m = simdRows(k, s, rows);
  const module = simdModule();
  if (m === null || module === null || rows * (s + 2 * k) * 4 + m.scores > MAX_BYTES) return null;
  // Past the score block: lists of the same k and s find the same scratch and a block past it.
  const [a, b] = module.layout(m.scores + rows * s * 4, rows * k * 4, rows * k * 4).slice(1);
  return {
    scores: new Float32Array(m.memory.buffer, m.scores, rows * s),
    a: new Int32Array(m.memory.buffer, a, rows * k),
    b: new Int32Array(m.memory.buffer, b, rows * k),
  };
}
