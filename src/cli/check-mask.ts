/**
 * `dsa check`'s comparison over any two .npy sources (files in Node, dropped
 * Blobs in a browser worker): the mask checked block by block against the
 * definition of the mask of its top-k indices. Each block takes the fast
 * test of src/mask/verify.ts (O(k) per row and one SIMD pass); a block that
 * fails it (a difference, an index >= s, or a repeated index) is compared
 * byte for byte with the block generateMask builds in the same form, so the
 * first differing position in row-major order is printed.
 */
import { DEFAULT_MASK_VALUE, wordsPerRow, type MaskData, type MaskForm } from '../tensor.js';
import type { NpySource } from '../io/npy.js';
import { createRowVerifier, settleBlock } from '../mask/verify.js';
import { CliError, blockRows, checkIndicesBelow, readIndexRows, rowBlocks, type RowBlock } from './sources.js';

export interface CheckFlags {
  droppedValue: number;
  mask: string;
  indices: string;
  seqLen?: number;
  causalOffset?: number;
  outOfRange: 'error' | 'skip';
}

/** The dtypes `--mask` accepts, and the shape names of both inputs. */
export const MASK_DTYPES = ['float32', 'bool', 'uint8', 'uint32'] as const;
export const INDEX_DTYPES = ['int32', 'int64'] as const;

export const FORM_OF_DTYPE: Record<string, MaskForm> = { float32: 'additive', bool: 'bool', uint8: 'bool', uint32: 'bits' };

/**
 * Compares `mask` with the mask of `indices`; prints `ok: ...` or
 * `mismatch: ...` (the first differing position) through `out` and returns
 * whether they agree. Bad input throws a CliError with the CLI's message.
 * `blocks` wraps the row blocks (a progress bar, or the page's progress).
 */
export function compareMask(
  flags: CheckFlags,
  mask: NpySource,
  indices: NpySource,
  out: (text: string) => void,
  blocks: (totalRows: number, blocks: Iterable<RowBlock>) => Iterable<RowBlock> = (_, b) => b,
): boolean {
  const form = FORM_OF_DTYPE[mask.dtype];
  const [b, t, width] = mask.shape;
  const [ib, it, k] = indices.shape;
  if (ib !== b || it !== t) {
    throw new CliError(`--mask: shape [${mask.shape.join(', ')}] must match --indices [${indices.shape.join(', ')}] in b and t`);
  }
  const s = flags.seqLen ?? (form === 'bits' ? width * 32 : width);
  if (form === 'bits' ? wordsPerRow(s) !== width : s !== width) {
    const expected = form === 'bits' ? `ceil(${s} / 32) = ${wordsPerRow(s)} words` : `s = ${s} keys`;
    throw new CliError(`--mask: last dimension ${width} does not fit --seq-len ${s}: expected ${expected}`);
  }
  const ctor = form === 'additive' ? Float32Array : form === 'bool' ? Uint8Array : Uint32Array;
  const maxRows = Math.min(blockRows(width * ctor.BYTES_PER_ELEMENT), t);
  // Indices are read a few blocks at a time (fewer, larger reads measured faster).
  const indexRows = Math.max(maxRows, Math.min(blockRows(k * 4), b * t));
  const offset = flags.causalOffset ?? Infinity;
  const verifier = createRowVerifier({ form, s, k, offset, strict: flags.outOfRange === 'error', dropped: flags.droppedValue }, maxRows, indexRows);
  let first = 0; // the global row of verifier.indices[0]
  let last = 0; // one past the last row of indices read
  for (const { bi, t0, t1, row } of blocks(b * t, rowBlocks(b, t, maxRows))) {
    const n = t1 - t0;
    // Synchronous reads straight into the verifier's buffers: on this
    // machine they beat reads on the thread pool overlapped with the check
    // (the blocks then arrive in another core's cache, and each read's
    // round trip costs more than the overlap saves).
    mask.read(row * width, n * width, verifier.cells);
    if (row + n > last) {
      first = row;
      last = Math.min(b * t, row + indexRows);
      if (indices.dtype === 'int32') indices.read(first * k, (last - first) * k, verifier.indices);
      else verifier.indices.set(readIndexRows(indices, first, last - first, k));
    }
    if (verifier.verify(n, t0, row - first) === n) continue;
    // A candidate (a difference, an index >= s, or a repeated index): settle
    // the block by the library's definition, byte for byte, which finds the
    // first differing position in row-major order.
    const block = verifier.indices.slice((row - first) * k, (row - first + n) * k);
    const got = mask.read(row * width, n * width) as MaskData;
    const verdict = settleBlock(got, block, n, { form, s, k, t0, offset, strict: flags.outOfRange === 'error', dropped: flags.droppedValue });
    if (verdict === null) continue;
    if (verdict.outOfRange) checkIndicesBelow(flags.indices, block.subarray(verdict.row * k), row + verdict.row, t, k, s); // throws
    else {
      const rowIndices = block.subarray(verdict.row * k, (verdict.row + 1) * k);
      out(`mismatch: batch ${bi}, query ${t0 + verdict.row}, ${describeDifference(form, verdict, rowIndices, flags.droppedValue)}\n`);
      return false;
    }
  }
  out(`ok: ${form} mask [${mask.shape.join(', ')}] matches the mask of indices [${indices.shape.join(', ')}] with s = ${s}` +
    `${flags.causalOffset === undefined ? '' : `, causal offset ${flags.causalOffset}`}\n`);
  return true;
}

function describeDifference(form: MaskForm, cell: { key: number; got: number; kept: boolean }, rowIndices: Int32Array, dropped: number): string {
  const { key, kept, got } = cell;
  const indices = kept ? `keep it (slot ${rowIndices.indexOf(key)})` : 'drop it';
  if (form === 'bits') {
    return `key ${key}: the mask ${kept ? 'drops' : 'keeps'} it (bit ${key & 31} of word ${key >>> 5} is ${got}), the indices ${indices}`;
  }
  const value = form === 'additive' ? formatFloat(got) : String(got);
  const meaning = form === 'additive'
    ? got === 0 && !Object.is(got, -0) ? 'kept' : got === dropped ? 'dropped' : `neither 0 nor ${dropped === DEFAULT_MASK_VALUE ? `DEFAULT_MASK_VALUE ${formatFloat(dropped)}` : `the dropped value ${formatFloat(dropped)}`}${dropped === DEFAULT_MASK_VALUE && got === -Infinity ? '; pass --dropped-value -inf for masks filled with -inf' : ''}`
    : got === 1 ? 'kept' : got === 0 ? 'dropped' : 'neither 0 nor 1';
  return `key ${key}: the mask holds ${value} (${meaning}), the indices ${indices}`;
}

function formatFloat(x: number): string {
  return Object.is(x, -0) ? '-0' : Number.isFinite(x) && x !== 0 ? x.toExponential(6) : String(x);
}
