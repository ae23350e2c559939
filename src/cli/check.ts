/**
 * `dsa check`: verifies a mask made elsewhere (JAX, PyTorch, NumPy) against
 * the definition of the mask of its top-k indices, block by block (the
 * comparison is check-mask.ts, which the web page runs on dropped files).
 * Additive masks must hold exactly 0 and DEFAULT_MASK_VALUE (MaxText's
 * value), or the value given by --dropped-value (DeepSeek's PyTorch
 * reference fills with -inf); any other value differs, and the message
 * says which value it found.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import type { CliContext } from './context.js';
import { DEFAULT_MASK_VALUE } from '../tensor.js';
import { withProgress } from './progress.js';
import { openInput, parseInteger, parsePositive } from './inputs.js';
import { INDEX_DTYPES, MASK_DTYPES, compareMask, type CheckFlags } from './check-mask.js';

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

function runCheck(flags: CheckFlags, ctx: CliContext): boolean {
  const mask = openInput('--mask', flags.mask, MASK_DTYPES, ['b', 't', 's']);
  try {
    const indices = openInput('--indices', flags.indices, INDEX_DTYPES, ['b', 't', 'k']);
    try {
      return compareMask(flags, mask, indices, ctx.io.out, (total, blocks) => withProgress(ctx, 'dsa check', total, blocks));
    } finally {
      indices.close();
    }
  } finally {
    mask.close();
  }
}

