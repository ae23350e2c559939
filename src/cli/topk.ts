/**
 * `dsa topk`: exact top-k of a scores file ([b, t, s] float32), streamed in
 * query blocks: values [b, t, k] float32 and indices [b, t, k] int32 (or
 * int64, NumPy's default), descending, ties by increasing key (jax.lax.top_k).
 */
import { Command, Option } from 'commander';
import { topk } from '../topk/topk.js';
import type { CliContext } from './context.js';
import { checkOutputs, createOutput } from './outputs.js';
import { CliError, blockRows, openInput, parseInteger, parsePositive, rowBlocks } from './inputs.js';
import { withProgress } from './progress.js';

interface TopkFlags {
  scores: string;
  k: number;
  outIndices: string;
  outValues?: string;
  indexDtype: 'int32' | 'int64';
  causalOffset?: number;
  nan: 'error' | 'lowest';
}

export function topkCommand(ctx: CliContext): Command {
  return new Command('topk')
    .description('exact top-k of each row of a scores file: descending values, ties by increasing key; -1 / -inf in slots past the eligible keys')
    .requiredOption('--scores <file>', 'scores .npy, [b, t, s] float32')
    .requiredOption('--k <k>', 'keys to keep per query', parsePositive)
    .requiredOption('--out-indices <file>', 'output indices .npy, [b, t, k]')
    .option('--out-values <file>', 'output values .npy, [b, t, k] float32')
    .addOption(new Option('--index-dtype <dtype>', 'dtype of the indices file').choices(['int32', 'int64']).default('int32'))
    .option('--causal-offset <n>', 'query t may select only keys j <= t + n', parseInteger)
    .addOption(new Option('--nan <mode>', 'a NaN score: error, or lowest (ranks below -inf)').choices(['error', 'lowest']).default('error'))
    .action((flags: TopkFlags) => runTopk(flags, ctx));
}

function runTopk(flags: TopkFlags, ctx: CliContext): void {
  checkOutputs({ '--scores': flags.scores }, { '--out-indices': flags.outIndices, '--out-values': flags.outValues });
  const scores = openInput('--scores', flags.scores, ['float32'], ['b', 't', 's']);
  try {
    const [b, t, s] = scores.shape;
    const { k } = flags;
    const rowsPerBlock = blockRows(s * 4 + k * 16);
    const outIndices = createOutput('--out-indices', flags.outIndices, flags.indexDtype, [b, t, k]);
    const outValues = flags.outValues === undefined ? null : createOutput('--out-values', flags.outValues, 'float32', [b, t, k]);
    try {
      const block = new Float32Array(Math.min(rowsPerBlock, t) * s);
      for (const { bi, t0, t1, row } of withProgress(ctx, 'dsa topk', b * t, rowBlocks(b, t, rowsPerBlock))) {
        const n = t1 - t0;
        const data = scores.read(row * s, n * s, block).subarray(0, n * s) as Float32Array;
        let result;
        try {
          result = topk({ data, shape: [1, n, s] }, k, {
            nan: flags.nan,
            causalOffset: flags.causalOffset === undefined ? undefined : flags.causalOffset + t0,
          });
        } catch (err) {
          // The library names the position inside this block; name it in the file.
          const m = /NaN at \[0, (\d+), (\d+)\]/.exec((err as Error).message);
          if (!m) throw err;
          throw new CliError(`${flags.scores}: NaN at batch ${bi}, query ${t0 + Number(m[1])}, key ${m[2]}; pass --nan lowest to rank NaN below -inf`);
        }
        const idx = result.indices.data;
        outIndices.write(flags.indexDtype === 'int32' ? idx : BigInt64Array.from(idx, (v) => BigInt(v)));
        outValues?.write(result.values.data);
      }
      outIndices.commit();
      outValues?.commit();
    } catch (err) {
      outIndices.abort();
      outValues?.abort();
      throw err;
    }
  } finally {
    scores.close();
  }
}
