/**
 * `dsa check`: verifies a mask made elsewhere (JAX, PyTorch, NumPy) against
 * the definition of the mask of its top-k indices, block by block. Additive
 * and bool blocks take a fast path (O(k) per row and a memcmp, see
 * fastPath); bit masks, and any block that fails it or has
 * repeated indices, are compared
 * byte for byte with the block generateMask builds in the same form, so the
 * first differing position in row-major order is printed.
 * Additive masks must hold exactly 0 and DEFAULT_MASK_VALUE (MaxText's
 * value), or the value given by --dropped-value (DeepSeek's PyTorch
 * reference fills with -inf); any other value differs, and the message
 * says which value it found.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import type { CliContext } from './program.js';
import type { NpyReader } from '../io/npy-file.js';
import { generateMask } from '../mask/masks.js';
import { DEFAULT_MASK_VALUE, wordsPerRow, type MaskData, type MaskForm } from '../tensor.js';
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
    .action(async (flags: CheckFlags) => {
      ctx.setExitCode((await runCheck(flags, ctx)) ? 0 : 1);
    });
}

function parseDropped(value: string): number {
  if (value === 'default') return DEFAULT_MASK_VALUE;
  const v = value === '-inf' ? -Infinity : value === 'inf' ? Infinity : Number(value);
  if (value.trim() === '' || Number.isNaN(v) || v === 0) throw new InvalidArgumentError(`expected 'default', '-inf' or a non-zero number, got '${value}'`);
  return Math.fround(v);
}

const FORM_OF_DTYPE: Record<string, MaskForm> = { float32: 'additive', bool: 'bool', uint8: 'bool', uint32: 'bits' };

async function runCheck(flags: CheckFlags, ctx: CliContext): Promise<boolean> {
  const mask = openInput('--mask', flags.mask, ['float32', 'bool', 'uint8', 'uint32'], ['b', 't', 's']);
  try {
    const indices = openInput('--indices', flags.indices, ['int32', 'int64'], ['b', 't', 'k']);
    try {
      return await compare(flags, mask, indices, ctx);
    } finally {
      indices.close();
    }
  } finally {
    mask.close();
  }
}

async function compare(flags: CheckFlags, mask: NpyReader, indices: NpyReader, ctx: CliContext): Promise<boolean> {
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
  const rowsPerBlock = blockRows(width * 8 + k * 8);
  const ctor = form === 'additive' ? Float32Array : form === 'bool' ? Uint8Array : Uint32Array;
  const maxRows = Math.min(rowsPerBlock, t);
  // Two buffers: the next block is read on the thread pool while this one is checked.
  const buffers = [new ctor(maxRows * width), new ctor(maxRows * width)];
  const indexBuffers = [new Int32Array(maxRows * k), new Int32Array(maxRows * k)];
  let expected: MaskData | null = null;
  // Dense forms: one row of the dropped value to compare each row against.
  const droppedRow = form === 'additive' ? new Float32Array(width).fill(flags.droppedValue) : form === 'bool' ? new Uint8Array(width) : null;
  const blocks = [...rowBlocks(b, t, rowsPerBlock)];
  // int32 indices are prefetched with the mask block; int64 ones are read and range-checked here.
  const readBlock = (i: number) => {
    const { row, t0, t1 } = blocks[i];
    const masked = mask.readAsync(row * width, (t1 - t0) * width, buffers[i % 2]);
    if (indices.dtype !== 'int32') return masked;
    return Promise.all([masked, indices.readAsync(row * k, (t1 - t0) * k, indexBuffers[i % 2])]);
  };
  let next: Promise<unknown> = readBlock(0);
  try {
    for (let bi = 0; bi < blocks.length; bi++) {
      const { t0, t1, row } = blocks[bi];
      const n = t1 - t0;
      await next;
      let got = buffers[bi % 2].subarray(0, n * width) as MaskData;
      const block = indices.dtype === 'int32' ? indexBuffers[bi % 2].subarray(0, n * k) : readIndexRows(indices, row, n, k, indexBuffers[bi % 2]);
      if (bi + 1 < blocks.length) next = readBlock(bi + 1);
      const offset = flags.causalOffset === undefined ? Infinity : flags.causalOffset + t0;
      const bytes = n * width * ctor.BYTES_PER_ELEMENT;
      if (droppedRow !== null && fastPath(got as Float32Array | Uint8Array, droppedRow, block, n, k, s, offset, flags)) continue;
      if (droppedRow !== null) got = mask.read(row * width, n * width, got) as MaskData; // the fast path overwrote it
      if (flags.outOfRange === 'error') checkIndicesBelow(flags.indices, block, row, t, k, s);
      // The slow path (bits, or a block that differs): build the block by the
      // library's definition and find the first differing position in order.
      expected ??= new ctor(buffers[0].length);
      const want = generateMask({ data: block, shape: [1, n, k] }, s, {
        form,
        outOfRange: flags.outOfRange,
        causalOffset: flags.causalOffset === undefined ? undefined : offset,
        out: expected.subarray(0, n * width),
      }).data;
      if (form === 'additive' && flags.droppedValue !== DEFAULT_MASK_VALUE) {
        for (let i = 0; i < n * width; i++) if (want[i] !== 0) want[i] = flags.droppedValue;
      }
      const gotBytes = Buffer.from(got.buffer, got.byteOffset, bytes);
      const wantBytes = Buffer.from(want.buffer, want.byteOffset, bytes);
      if (!gotBytes.equals(wantBytes)) {
        const i = firstDifference(got, want, n * width);
        const r = row + Math.floor(i / width);
        const at = `batch ${Math.floor(r / t)}, query ${r % t}`;
        const rowIndices = block.subarray((r - row) * k, (r - row + 1) * k);
        ctx.io.out(`mismatch: ${describeDifference(form, got, want, i, width, at, rowIndices, flags.droppedValue)}\n`);
        return false;
      }
    }
  } finally {
    // Never leave a read in flight into a buffer (or a file) about to go away.
    await next.catch(() => {});
  }
  ctx.io.out(`ok: ${form} mask [${mask.shape.join(', ')}] matches the mask of indices [${indices.shape.join(', ')}] with s = ${s}` +
    `${flags.causalOffset === undefined ? '' : `, causal offset ${flags.causalOffset}`}\n`);
  return true;
}

const MATCHES = 0;
const DIFFERS = 1;
const OUT_OF_RANGE = 2;
const REPEATS = 3;

/**
 * The fast path for additive and bool masks, O(k) per row plus a memcmp per
 * row instead of building the expected block: every key the indices keep
 * must hold the kept value (0 additive, 1 bool) and is then set to the
 * dropped value, so the row matches iff it is afterwards all dropped. Row by
 * row, so the memcmp finds the row still in the cache. True when the whole
 * block matches; false sends it to the exact slow path: a difference, an
 * index >= s under --out-of-range error (for its message), or a kept key
 * already holding the dropped value, which is a difference or a repeated
 * index (top-k never repeats one). Overwrites `got`.
 */
function fastPath(got: Float32Array | Uint8Array, droppedRow: Float32Array | Uint8Array, indices: Int32Array, n: number, k: number, s: number, offset: number, flags: CheckFlags): boolean {
  const cells = got instanceof Float32Array ? new Uint32Array(got.buffer, got.byteOffset, n * s) : got;
  const dropped = new Uint32Array(new Float32Array([flags.droppedValue]).buffer)[0];
  const expected = Buffer.from(droppedRow.buffer, droppedRow.byteOffset, droppedRow.byteLength);
  const rowBytes = droppedRow.byteLength;
  for (let r = 0; r < n; r++) {
    const limit = Math.min(s - 1, r + offset);
    // The row was just copied in by another thread: one sequential touch per
    // cache line lets the prefetcher bring it close before the random claims
    // (measured about 3x faster than claiming into a cold row).
    touch(cells, r * s, s);
    const status = cells instanceof Uint32Array
      ? claimRowAdditive(cells, r * s, indices, r * k, k, s, limit, dropped)
      : claimRowBool(cells, r * s, indices, r * k, k, s, limit);
    if (status === DIFFERS || status === REPEATS || (status === OUT_OF_RANGE && flags.outOfRange === 'error')) return false;
    if (!Buffer.from(got.buffer, got.byteOffset + r * rowBytes, rowBytes).equals(expected)) return false;
  }
  return true;
}

let touched = 0;

function touch(cells: Uint32Array | Uint8Array, base: number, length: number): void {
  const step = 64 / cells.BYTES_PER_ELEMENT;
  let acc = 0;
  for (let i = base, end = base + length; i < end; i += step) acc |= cells[i];
  touched |= acc;
}

/** One row of the fast path, additive (bit patterns: -0 is not 0). Two copies, so each stays monomorphic. */
function claimRowAdditive(cells: Uint32Array, base: number, indices: Int32Array, first: number, k: number, s: number, limit: number, dropped: number): number {
  let status = MATCHES;
  for (let i = first, end = first + k; i < end; i++) {
    const j = indices[i];
    if (j < 0 || j > limit) {
      if (j >= s) status = OUT_OF_RANGE;
      continue;
    }
    const v = cells[base + j];
    if (v === 0) cells[base + j] = dropped;
    else return v === dropped ? REPEATS : DIFFERS;
  }
  return status;
}

function claimRowBool(cells: Uint8Array, base: number, indices: Int32Array, first: number, k: number, s: number, limit: number): number {
  let status = MATCHES;
  for (let i = first, end = first + k; i < end; i++) {
    const j = indices[i];
    if (j < 0 || j > limit) {
      if (j >= s) status = OUT_OF_RANGE;
      continue;
    }
    const v = cells[base + j];
    if (v === 1) cells[base + j] = 0;
    else return v === 0 ? REPEATS : DIFFERS;
  }
  return status;
}

function firstDifference(a: MaskData, b: MaskData, n: number): number {
  // Compare bit patterns, so -0 and NaN payloads count as differences too.
  const ai = a instanceof Float32Array ? new Uint32Array(a.buffer, a.byteOffset, n) : a;
  const bi = b instanceof Float32Array ? new Uint32Array(b.buffer, b.byteOffset, n) : b;
  for (let i = 0; i < n; i++) if (ai[i] !== bi[i]) return i;
  return -1;
}

function describeDifference(form: MaskForm, got: MaskData, want: MaskData, i: number, width: number, at: string, rowIndices: Int32Array, dropped: number): string {
  const col = i % width;
  if (form === 'bits') {
    const diff = got[i] ^ want[i];
    const bit = 31 - Math.clz32(diff & -diff);
    const key = col * 32 + bit;
    const kept = (want[i] >>> bit) & 1;
    return `${at}, key ${key}: the mask ${kept ? 'drops' : 'keeps'} it (bit ${bit} of word ${col} is ${kept ? 0 : 1}), the indices ${kept ? `keep it (slot ${rowIndices.indexOf(key)})` : 'drop it'}`;
  }
  const keptByIndices = form === 'additive' ? want[i] === 0 : want[i] === 1;
  const value = form === 'additive' ? formatFloat(got[i]) : String(got[i]);
  const meaning = form === 'additive'
    ? got[i] === 0 && !Object.is(got[i], -0) ? 'kept' : got[i] === dropped ? 'dropped' : `neither 0 nor ${dropped === DEFAULT_MASK_VALUE ? `DEFAULT_MASK_VALUE ${formatFloat(dropped)}` : `the dropped value ${formatFloat(dropped)}`}${dropped === DEFAULT_MASK_VALUE && got[i] === -Infinity ? '; pass --dropped-value -inf for masks filled with -inf' : ''}`
    : got[i] === 1 ? 'kept' : got[i] === 0 ? 'dropped' : 'neither 0 nor 1';
  return `${at}, key ${col}: the mask holds ${value} (${meaning}), the indices ${keptByIndices ? `keep it (slot ${rowIndices.indexOf(col)})` : 'drop it'}`;
}

function formatFloat(x: number): string {
  return Object.is(x, -0) ? '-0' : Number.isFinite(x) && x !== 0 ? x.toExponential(6) : String(x);
}
