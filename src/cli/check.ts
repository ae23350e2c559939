/**
 * `dsa check`: verifies a mask made elsewhere (JAX, PyTorch, NumPy) against
 * the definition of the mask of its top-k indices, block by block. Each
 * block takes the fast test of src/mask/verify.ts (O(k) per row and one
 * SIMD pass); a block that fails it (a difference, an index >= s, or a
 * repeated index) is compared byte for byte with the block generateMask
 * builds in the same form, so the first differing position in row-major
 * order is printed.
 * Additive masks must hold exactly 0 and DEFAULT_MASK_VALUE (MaxText's
 * value), or the value given by --dropped-value (DeepSeek's PyTorch
 * reference fills with -inf); any other value differs, and the message
 * says which value it found.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import type { CliContext } from './program.js';
import type { NpyReader } from '../io/npy-file.js';
import { DEFAULT_MASK_VALUE, wordsPerRow, type MaskData, type MaskForm } from '../tensor.js';
import { createRowVerifier, settleBlock } from '../mask/verify.js';
import { withProgress } from './progress.js';
import { CliError, blockRows, checkIndicesBelow, openInput, parseInteger, parsePositive, readIndexRows, rowBlocks } from './inputs.js';

interface CheckFlags {
  droppedValue: number;
  mask: string;
  indices: string;
  seqLen?: number;
  causalOffset?: number;
  outOfRange: 'error' | 'skip';
}

export function checkCommand(ctx: CliContext): Command {
  return new Command('check')
    .description('verify a mask file against the mask its top-k indices define; exit code 1 and the first differing position on a mismatch')
    .requiredOption('--mask <file>', 'mask .npy: additive float32 [b, t, s], bool [b, t, s], or bits uint32 [b, t, ceil(s/32)]')
    .requiredOption('--indices <file>', 'top-k indices .npy, [b, t, k] int32 or int64 (negative = padding)')
    .option('--seq-len <s>', 'number of keys s (default: the mask\'s last dimension; for bits, 32 per word)', parsePositive)
    .option('--causal-offset <n>', 'the mask also drops keys j > t + n', parseInteger)
    .addOption(new Option('--out-of-range <mode>', 'an index >= s: error, or skip (keeps nothing)').choices(['error', 'skip']).default('error'))
    .option('--dropped-value <v>', "what an additive mask holds at dropped keys: 'default' (DEFAULT_MASK_VALUE, -0.7 * float32 max), '-inf', or a number", parseDropped, DEFAULT_MASK_VALUE)
    .action((flags: CheckFlags) => {
      ctx.setExitCode(runCheck(flags, ctx) ? 0 : 1);
    });
}

function parseDropped(value: string): number {
  if (value === 'default') return DEFAULT_MASK_VALUE;
  const v = value === '-inf' ? -Infinity : value === 'inf' ? Infinity : Number(value);
  if (value.trim() === '' || Number.isNaN(v) || v === 0) throw new InvalidArgumentError(`expected 'default', '-inf' or a non-zero number, got '${value}'`);
  return Math.fround(v);
}

const FORM_OF_DTYPE: Record<string, MaskForm> = { float32: 'additive', bool: 'bool', uint8: 'bool', uint32: 'bits' };

function runCheck(flags: CheckFlags, ctx: CliContext): boolean {
  const mask = openInput('--mask', flags.mask, ['float32', 'bool', 'uint8', 'uint32'], ['b', 't', 's']);
  try {
    const indices = openInput('--indices', flags.indices, ['int32', 'int64'], ['b', 't', 'k']);
    try {
      return compare(flags, mask, indices, ctx);
    } finally {
      indices.close();
    }
  } finally {
    mask.close();
  }
}

function compare(flags: CheckFlags, mask: NpyReader, indices: NpyReader, ctx: CliContext): boolean {
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
  for (const { bi, t0, t1, row } of withProgress(ctx, 'dsa check', b * t, rowBlocks(b, t, maxRows))) {
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
      ctx.io.out(`mismatch: batch ${bi}, query ${t0 + verdict.row}, ${describeDifference(form, verdict, rowIndices, flags.droppedValue)}\n`);
      return false;
    }
  }
  ctx.io.out(`ok: ${form} mask [${mask.shape.join(', ')}] matches the mask of indices [${indices.shape.join(', ')}] with s = ${s}` +
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
