/**
 * `dsa mask`: a mask from a top-k indices file ([b, t, k] int32 or int64),
 * written in query blocks, so the output may be far bigger than memory
 * (t = s = 131072 is 64 GiB as float32; the bits form is 2 GiB on disk and a
 * few MiB in memory). Each block of indices is read from the file and given
 * to generateMask as its own [1, n, k] tensor with the causal offset moved
 * by the block's first query, rather than the whole tensor with `rows`:
 * the indices need not fit in memory either (1 GiB as int32, 2 GiB as int64
 * at that size).
 */
import { Command, Option } from 'commander';
import type { CliContext } from './context.js';
import { generateMask } from '../mask/masks.js';
import { wordsPerRow, type MaskData, type MaskForm } from '../tensor.js';
import { checkOutputs, createOutput } from './outputs.js';
import { withProgress } from './progress.js';
import { blockRows, checkIndicesBelow, maskDtype, openInput, parseInteger, parsePositive, readIndexRows, rowBlocks } from './inputs.js';

interface MaskFlags {
  indices: string;
  seqLen: number;
  form: MaskForm;
  causalOffset?: number;
  outOfRange: 'error' | 'skip';
  out: string;
}

export function maskCommand(ctx: CliContext): Command {
  return new Command('mask')
    .description('build the mask of top-k indices: key j of row (b, t) is kept iff some slot holds j')
    .requiredOption('--indices <file>', 'top-k indices .npy, [b, t, k] int32 or int64 (negative = padding)')
    .requiredOption('--seq-len <s>', 'number of keys s', parsePositive)
    .addOption(new Option('--form <form>', 'additive float32 (0 / -0.7*FLT_MAX), bool, or bits (uint32 [b, t, ceil(s/32)])').choices(['additive', 'bool', 'bits']).default('additive'))
    .option('--causal-offset <n>', 'also drop keys j > t + n (n = s - t for a query block at the end of the cache)', parseInteger)
    .addOption(new Option('--out-of-range <mode>', 'an index >= s: error, or skip (keeps nothing)').choices(['error', 'skip']).default('error'))
    .option('--out <file>', 'output .npy', 'mask.npy')
    .action((flags: MaskFlags) => runMask(flags, ctx));
}

function runMask(flags: MaskFlags, ctx: CliContext): void {
  checkOutputs({ '--indices': flags.indices }, { '--out': flags.out });
  const { seqLen: s, form } = flags;
  const indices = openInput('--indices', flags.indices, ['int32', 'int64'], ['b', 't', 'k']);
  try {
    const [b, t, k] = indices.shape;
    const width = form === 'bits' ? wordsPerRow(s) : s;
    const itemBytes = form === 'additive' ? 4 : form === 'bool' ? 1 : 4;
    const rowsPerBlock = blockRows(width * itemBytes + k * 8);
    const out = createOutput('--out', flags.out, maskDtype(form), [b, t, width]);
    try {
      const buffer = new (form === 'additive' ? Float32Array : form === 'bool' ? Uint8Array : Uint32Array)(Math.min(rowsPerBlock, t) * width) as MaskData;
      for (const { t0, t1, row } of withProgress(ctx, 'dsa mask', b * t, rowBlocks(b, t, rowsPerBlock))) {
        const n = t1 - t0;
        const block = readIndexRows(indices, row, n, k);
        if (flags.outOfRange === 'error') checkIndicesBelow(flags.indices, block, row, t, k, s);
        const mask = generateMask({ data: block, shape: [1, n, k] }, s, {
          form,
          outOfRange: flags.outOfRange,
          causalOffset: flags.causalOffset === undefined ? undefined : flags.causalOffset + t0,
          out: buffer.subarray(0, n * width),
        });
        out.write(mask.data);
      }
      out.commit();
    } catch (err) {
      out.abort();
      throw err;
    }
  } finally {
    indices.close();
  }
}
