/**
 * The `dsa demo` command: its flags and defaults. The pipeline (demo.ts,
 * with the whole library), the progress bar and the report (report.ts:
 * vega and vega-lite) are imported when the command runs, so the other
 * commands start without loading them.
 */
import { writeFileSync, renameSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Command, Option } from 'commander';
import type { CliContext } from './context.js';
import type { Api, DemoConfig, DemoResult } from './demo.js';
import { CliError, parsePositive } from './inputs.js';
import { checkOutputs } from './outputs.js';

// The web page imports the config from here.
export type { DemoConfig } from './demo.js';

export const DEMO_DEFAULTS: DemoConfig = {
  b: 1, t: 256, s: 16384, h: 64, d: 128, k: 2048, hq: 8, dqk: 128, dV: 128, seed: 1,
  threads: Math.min(availableParallelism(), 8), causal: true, module: false, dim: 7168, qRank: 1536, sweep: [2048, 4096, 8192, 16384], sweepRows: 16,
};

interface DemoFlags {
  b: number; t: number; s: number; h: number; d: number; k: number; hq: number; dqk: number; dv?: number;
  seed: number; threads: number; causal: boolean; module: boolean; dim: number; qRank: number; sweep: string; sweepRows: number; report: string | false; json?: string;
}

function parseSweep(value: string): number[] {
  if (value.trim() === '' || value === 'none') return [];
  return value.split(',').map((part) => parsePositive(part.trim()));
}

export function demoCommand(ctx: CliContext): Command {
  const D = DEMO_DEFAULTS;
  return new Command('demo')
    .description('run the whole DSA pipeline on seeded inputs: indexer, top-k, every mask strategy, dense and sparse attention; print a table and write an HTML report')
    .option('--b <n>', 'batch', parsePositive, D.b)
    .option('--t <n>', 'queries', parsePositive, D.t)
    .option('--s <n>', 'keys', parsePositive, D.s)
    .option('--h <n>', 'indexer heads', parsePositive, D.h)
    .option('--d <n>', 'indexer head dim', parsePositive, D.d)
    .option('--k <n>', 'top-k keys per query', parsePositive, D.k)
    .option('--hq <n>', 'attention query heads (one shared kv head, MLA-style)', parsePositive, D.hq)
    .option('--dqk <n>', 'attention q/k head dim', parsePositive, D.dqk)
    .option('--dv <n>', 'attention value dim (default: dqk)', parsePositive)
    .option('--seed <n>', 'seed of the synthetic inputs', parsePositive, D.seed)
    .option('--threads <n>', 'worker threads (1: run on this thread)', parsePositive, D.threads)
    .option('--no-causal', 'no causal mask (default: the query block sits at the end of the cache, offset s - t)')
    .option('--module', 'also run the full lightningIndexer module (projections, LayerNorm, RoPE) on seeded random weights')
    .option('--dim <n>', 'model width for --module', parsePositive, D.dim)
    .option('--q-rank <n>', 'low-rank query width for --module', parsePositive, D.qRank)
    .option('--sweep <list>', "key counts s for the time-against-s plot, comma separated, or 'none'", D.sweep.join(','))
    .option('--sweep-rows <n>', 'queries per sweep run', parsePositive, D.sweepRows)
    .option('--report <file>', 'HTML report', 'dsa-report.html')
    .option('--no-report', 'skip the HTML report')
    .addOption(new Option('--json <file>', 'also save the table and the sweep as JSON'))
    .action(async (flags: DemoFlags) => {
      // The demo reads no file; its two outputs must still be two files.
      checkOutputs({}, { '--report': flags.report, '--json': flags.json });
      const config: DemoConfig = {
        b: flags.b, t: flags.t, s: flags.s, h: flags.h, d: flags.d, k: flags.k, hq: flags.hq, dqk: flags.dqk, dV: flags.dv ?? flags.dqk,
        seed: flags.seed, threads: flags.threads, causal: flags.causal, module: Boolean(flags.module), dim: flags.dim, qRank: flags.qRank,
        sweep: parseSweep(flags.sweep), sweepRows: flags.sweepRows,
      };
      if (config.dV > config.dqk) throw new CliError(`--dv: expected at most --dqk = ${config.dqk}, got ${config.dV}`);
      const { SingleBar } = await import('cli-progress');
      const bar = ctx.io.isTTY ? new SingleBar({ format: 'dsa demo [{bar}] {percentage}% | {stage}', hideCursor: true, clearOnComplete: true, stream: process.stderr }) : null;
      bar?.start(1, 0, { stage: 'inputs' });
      let result: DemoResult;
      try {
        const { runDemo } = await import('./demo.js');
        // The pool (piscina), like the report (vega, vega-lite: half a second
        // to load), is imported when used, so every other command starts without it.
        const openPool = async (threads: number) => (await import('../pool/index.js')).createPool({ threads }) as unknown as Api;
        result = await runDemo(config, (stage, done, total) => {
          bar?.setTotal(total);
          bar?.update(done, { stage });
        }, config.threads > 1 ? openPool : undefined);
      } finally {
        bar?.stop();
      }
      const c = config;
      ctx.io.out(`dsa demo: b=${c.b} t=${c.t} s=${c.s} h=${c.h} d=${c.d} k=${c.k}, attention hq=${c.hq} dqk=${c.dqk} dV=${c.dV}, ` +
        `${c.causal ? `causal offset ${c.s - c.t}` : 'not causal'}, seed ${c.seed}, ${c.threads > 1 ? `${c.threads} worker threads` : 'this thread'}\n\n`);
      const { formatTable, formatMs } = await import('./demo.js');
      ctx.io.out(`${formatTable(result)}\n\n`);
      if (flags.report !== false) {
        const { renderReport } = await import('./report.js');
        const html = await renderReport(result);
        const tmp = `${flags.report}.${process.pid}.tmp`;
        writeFileSync(tmp, html);
        renameSync(tmp, flags.report);
        ctx.io.out(`report: ${flags.report}\n`);
      }
      if (flags.json) writeFileSync(flags.json, JSON.stringify({ config: result.config, rows: result.rows, sweep: result.sweep, totalMs: result.totalMs }, null, 2));
      ctx.io.out(`total: ${formatMs(result.totalMs)}${result.ok ? '' : '; SOME STRATEGIES DISAGREE WITH THE REFERENCE'}\n`);
      if (!result.ok) ctx.setExitCode(1);
    });
}
