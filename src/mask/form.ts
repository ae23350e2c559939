/**
 * The three storage forms of one mask, and what a row of each looks like.
 * additive: Float32Array, 0 kept / DEFAULT_MASK_VALUE dropped, s per row;
 * bool: Uint8Array, 1 kept / 0 dropped, s per row;
 * bits: Uint32Array, key j is bit (j & 31) of word (j >> 5), ceil(s/32) per row,
 * bits past s are 0.
 */
import { describe, wordsPerRow, type MaskData, type MaskForm, type TypedArrayConstructor } from '../tensor.js';
import type { KernelArgs } from '../plan.js';
import { checkSizeAtMost } from '../validate.js';

export const MASK_FORMS = ['additive', 'bool', 'bits'] as const satisfies readonly MaskForm[];

export function maskCtor(form: MaskForm): TypedArrayConstructor<MaskData> {
  return (form === 'additive' ? Float32Array : form === 'bool' ? Uint8Array : Uint32Array) as TypedArrayConstructor<MaskData>;
}

/**
 * The most keys a mask row may have, in every form: key positions are int32
 * throughout (top-k indices, windows, seqLens, the WebAssembly verifier's
 * arguments), so s <= 2^31 - 1. The bit form's word arithmetic (`j >>> 5`,
 * `(s + 31) >>> 5`) is exact below it; past 2^32 it would wrap.
 */
export const MAX_KEYS = 0x7fffffff;

/** s of a mask: a positive safe integer <= MAX_KEYS (RangeError naming it otherwise). */
export function checkKeyCount(name: string, s: unknown): number {
  return checkSizeAtMost(name, s, MAX_KEYS, 'key positions are int32');
}

/** Elements per row: s, or the number of 32-key words for bits. */
export function rowWidth(form: MaskForm, s: number): number {
  return form === 'bits' ? wordsPerRow(s) : s;
}

/** The form a mask's data type stands for; TypeError for any other array. */
export function formOf(name: string, data: unknown): MaskForm {
  if (data instanceof Float32Array) return 'additive';
  if (data instanceof Uint8Array) return 'bool';
  if (data instanceof Uint32Array) return 'bits';
  throw new TypeError(`${name}.data: expected a Float32Array (additive), Uint8Array (bool) or Uint32Array (bits), got ${describe(data)}`);
}

/** Text for the memory guard: what a caller can do instead of a big dense mask. */
export function cheaperForms(rows: number, s: number): string {
  return `use form 'bits' (${rows * wordsPerRow(s) * 4} bytes), stream query blocks with rows: [start, end), or skip the mask with sparseAttention`;
}

/** Row ti of a query block may see keys j < causalLimit(ti, s, offset), i.e. j <= ti + offset. */
export function causalLimit(ti: number, s: number, offset: number): number {
  return Math.max(0, Math.min(s, ti + offset + 1));
}

/**
 * Row r (absolute, r = bi * t + ti) keeps keys in [first, limit): its
 * per-row range (`args.lo` / `args.hi`, src/window.ts) when the call has
 * one, else [0, causal limit).
 */
export function keyRange(args: KernelArgs, r: number, t: number, s: number, offset: number): [number, number] {
  const lo = args.lo as Int32Array | null | undefined, hi = args.hi as Int32Array | null | undefined;
  if (lo && hi) return [lo[r], hi[r]];
  return [0, causalLimit(r % t, s, offset)];
}
