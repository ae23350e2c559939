/**
 * `dsa threshold`: MaxText's merged mask from scores and their top-k values
 * (threshold = the smallest of a row's k values), streamed in query blocks.
 */
import { Command, Option } from 'commander';
import type { CliContext } from './context.js';
import { maskFromThreshold } from '../mask/masks.js';
import { wordsPerRow, type MaskData, type MaskForm } from '../tensor.js';
import { checkOutputs, createOutput } from './outputs.js';
import { CliError, blockRows, maskDtype, openInput, rowBlocks } from './inputs.js';
import { withProgress } from './progress.js';

interface ThresholdFlags {
  scores: string;
  values: string;
  mode: 'exact' | 'raw';
  form: MaskForm;
  out: string;
}

export function thresholdCommand(ctx: CliContext): Command {
  return new Command('threshold')
    .description("build the mask of a score threshold (MaxText's merged form): exact keeps k keys, ties by increasing key")
    .requiredOption('--scores <file>', 'indexer scores .npy, [b, t, s] float32')
    .requiredOption('--values <file>', 'top-k values .npy, [b, t, k] float32 (the threshold is each row\'s smallest)')
    .addOption(new Option('--mode <mode>', 'exact: at most k keys, ties by increasing key; raw: every score >= threshold').choices(['exact', 'raw']).default('exact'))
    .addOption(new Option('--form <form>', 'additive float32, bool, or bits (uint32 [b, t, ceil(s/32)])').choices(['additive', 'bool', 'bits']).default('additive'))
    .option('--out <file>', 'output .npy', 'mask.npy')
    .action((flags: ThresholdFlags) => runThreshold(flags, ctx));
}

function runThreshold(flags: ThresholdFlags, ctx: CliContext): void {
  checkOutputs({ '--scores': flags.scores, '--values': flags.values }, { '--out': flags.out });
  const scores = openInput('--scores', flags.scores, ['float32'], ['b', 't', 's']);
  try {
    const values = openInput('--values', flags.values, ['float32'], ['b', 't', 'k']);
    try {
      const [b, t, s] = scores.shape;
      const [vb, vt, k] = values.shape;
      if (vb !== b || vt !== t) throw new CliError(`--values: shape [${values.shape.join(', ')}] must match --scores [${scores.shape.join(', ')}] in b and t`);
      const { form } = flags;
      const width = form === 'bits' ? wordsPerRow(s) : s;
      const rowsPerBlock = blockRows(s * 4 + width * 4 + k * 4);
      const out = createOutput('--out', flags.out, maskDtype(form), [b, t, width]);
      try {
        const n0 = Math.min(rowsPerBlock, t);
        const buffer = new (form === 'additive' ? Float32Array : form === 'bool' ? Uint8Array : Uint32Array)(n0 * width) as MaskData;
        const scoreBlock = new Float32Array(n0 * s);
        const valueBlock = new Float32Array(n0 * k);
        for (const { t0, t1, row } of withProgress(ctx, 'dsa threshold', b * t, rowBlocks(b, t, rowsPerBlock))) {
          const n = t1 - t0;
          const sc = scores.read(row * s, n * s, scoreBlock).subarray(0, n * s) as Float32Array;
          const va = values.read(row * k, n * k, valueBlock).subarray(0, n * k) as Float32Array;
          for (let i = 0; i < va.length; i++) {
            if (Number.isNaN(va[i])) {
              const r = row + Math.floor(i / k);
              throw new CliError(`${flags.values}: NaN at batch ${Math.floor(r / t)}, query ${r % t}, slot ${i % k}; top-k values must not be NaN`);
            }
          }
          const mask = maskFromThreshold({ data: sc, shape: [1, n, s] }, { data: va, shape: [1, n, k] }, { mode: flags.mode, form, out: buffer.subarray(0, n * width) });
          out.write(mask.data);
        }
        out.commit();
      } catch (err) {
        out.abort();
        throw err;
      }
    } finally {
      values.close();
    }
  } finally {
    scores.close();
  }
}
